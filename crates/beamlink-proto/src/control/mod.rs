//! Control messages (`erts/doc/guides/erl_dist_protocol.md`, "Protocol between connected
//! nodes"; `erts/emulator/beam/dist.c` `erts_net_message`): the signals nodes exchange once
//! connected.
//!
//! [`Control`] folds the wire variants together: a trace token is an `Option`, and
//! `PAYLOAD_EXIT` and `EXIT` are one variant whose reason travels inline or as the payload
//! depending on the negotiated flags. Decoding checks arity and element types the way the
//! BEAM does before it acts on a message.
//!
//! One purpose per file:
//! * this module: the enum, its operation codes and its error;
//! * `layout`: the one description of how each variant goes on the wire (operation code,
//!   tuple fields, trace token, reason or payload), which every writer walks;
//! * `decode`: control tuple and payload to [`Control`] ([`Control::from_terms`]);
//! * `encode`: [`Control`] to bytes, written directly with no term built;
//! * `atoms`: the atoms of a message, for the atom cache ([`Control::visit_atoms`]);
//! * `reference`: a second encoder that builds the term tree (`Control::to_terms`), kept
//!   for tests only (`cfg(test)` or the `reference-encoder` feature).

use super::flags::DistFlags;
use super::term::{Atom, Pid, Reference, Term};
use std::fmt;

mod atoms;
mod decode;
mod encode;
mod layout;
pub(crate) use atoms::visit_layout;
#[cfg(any(test, feature = "reference-encoder"))]
mod reference;
#[cfg(test)]
mod tests;

/// Operation numbers (`enum dop` in `erts/emulator/beam/dist.h`).
#[allow(missing_docs)]
pub mod op {
    pub const LINK: u8 = 1;
    pub const SEND: u8 = 2;
    pub const EXIT: u8 = 3;
    pub const UNLINK: u8 = 4;
    pub const REG_SEND: u8 = 6;
    pub const GROUP_LEADER: u8 = 7;
    pub const EXIT2: u8 = 8;
    pub const SEND_TT: u8 = 12;
    pub const EXIT_TT: u8 = 13;
    pub const REG_SEND_TT: u8 = 16;
    pub const EXIT2_TT: u8 = 18;
    pub const MONITOR_P: u8 = 19;
    pub const DEMONITOR_P: u8 = 20;
    pub const MONITOR_P_EXIT: u8 = 21;
    pub const SEND_SENDER: u8 = 22;
    pub const SEND_SENDER_TT: u8 = 23;
    pub const PAYLOAD_EXIT: u8 = 24;
    pub const PAYLOAD_EXIT_TT: u8 = 25;
    pub const PAYLOAD_EXIT2: u8 = 26;
    pub const PAYLOAD_EXIT2_TT: u8 = 27;
    pub const PAYLOAD_MONITOR_P_EXIT: u8 = 28;
    pub const SPAWN_REQUEST: u8 = 29;
    pub const SPAWN_REQUEST_TT: u8 = 30;
    pub const SPAWN_REPLY: u8 = 31;
    pub const SPAWN_REPLY_TT: u8 = 32;
    pub const ALIAS_SEND: u8 = 33;
    pub const ALIAS_SEND_TT: u8 = 34;
    pub const UNLINK_ID: u8 = 35;
    pub const UNLINK_ID_ACK: u8 = 36;
    pub const ALTACT_SIG_SEND: u8 = 37;
}

/// The bits of `ALTACT_SIG_SEND`'s flags element (`ERTS_DOP_ALTACT_SIG_FLG_*` in
/// `erts/emulator/beam/dist.h`).
#[allow(missing_docs)]
pub mod altact {
    pub const PRIO: u64 = 1 << 0;
    pub const TOKEN: u64 = 1 << 1;
    pub const ALIAS: u64 = 1 << 2;
    pub const NAME: u64 = 1 << 3;
    pub const EXIT: u64 = 1 << 4;
}

/// A process named in a monitor: by pid or by registered name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ProcessRef {
    /// A pid.
    Pid(Pid),
    /// A registered name (on the node the message is for, or from).
    Name(Atom),
}

impl fmt::Display for ProcessRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProcessRef::Pid(p) => write!(f, "{p}"),
            ProcessRef::Name(a) => write!(f, "{a}"),
        }
    }
}

/// Where an `ALTACT_SIG_SEND` signal goes (`ERTS_DOP_ALTACT_SIG_FLG_ALIAS` / `_NAME`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SignalTarget {
    /// A process.
    Pid(Pid),
    /// A registered name on the receiving node.
    Name(Atom),
    /// A process alias.
    Alias(Reference),
}

impl fmt::Display for SignalTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignalTarget::Pid(p) => write!(f, "{p}"),
            SignalTarget::Name(a) => write!(f, "{a}"),
            SignalTarget::Alias(r) => write!(f, "{r}"),
        }
    }
}

/// A control message with its payload, if it has one.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Control {
    /// `LINK`: `from` links to `to`.
    Link {
        /// Linking process.
        from: Pid,
        /// Linked process.
        to: Pid,
    },
    /// `SEND`, `SEND_TT`, `SEND_SENDER`, `SEND_SENDER_TT`: a message to a pid.
    Send {
        /// The sender (always known with `DFLAG_SEND_SENDER`).
        from: Option<Pid>,
        /// The receiver.
        to: Pid,
        /// seq_trace token.
        token: Option<Term>,
        /// The message.
        message: Term,
    },
    /// `REG_SEND`, `REG_SEND_TT`: a message to a registered name.
    RegSend {
        /// The sender.
        from: Pid,
        /// The registered name.
        to: Atom,
        /// seq_trace token.
        token: Option<Term>,
        /// The message.
        message: Term,
    },
    /// `EXIT`, `EXIT_TT`, `PAYLOAD_EXIT`, `PAYLOAD_EXIT_TT`: a linked process exited.
    Exit {
        /// The process that exited.
        from: Pid,
        /// The linked process.
        to: Pid,
        /// seq_trace token.
        token: Option<Term>,
        /// Exit reason.
        reason: Term,
    },
    /// `UNLINK` (obsolete; OTP 26+ drops a connection that sends it, and so do we never
    /// send it).
    Unlink {
        /// Unlinking process.
        from: Pid,
        /// Unlinked process.
        to: Pid,
    },
    /// `GROUP_LEADER`: `from` becomes the group leader of `to`.
    GroupLeader {
        /// New group leader.
        from: Pid,
        /// Process whose group leader changes.
        to: Pid,
    },
    /// `EXIT2`, `EXIT2_TT`, `PAYLOAD_EXIT2`, `PAYLOAD_EXIT2_TT`: `exit/2`.
    Exit2 {
        /// The process that called `exit/2`.
        from: Pid,
        /// The target.
        to: Pid,
        /// seq_trace token.
        token: Option<Term>,
        /// Exit reason.
        reason: Term,
    },
    /// `MONITOR_P`: `from` monitors `to`.
    MonitorP {
        /// Monitoring process.
        from: Pid,
        /// Monitored process, by pid or by name.
        to: ProcessRef,
        /// Monitor reference.
        reference: Reference,
    },
    /// `DEMONITOR_P`: the monitor ends.
    DemonitorP {
        /// Monitoring process.
        from: Pid,
        /// Monitored process.
        to: ProcessRef,
        /// Monitor reference.
        reference: Reference,
    },
    /// `MONITOR_P_EXIT`, `PAYLOAD_MONITOR_P_EXIT`: a monitored process is gone.
    MonitorPExit {
        /// The monitored process, as it was monitored (pid or name).
        from: ProcessRef,
        /// The monitoring process.
        to: Pid,
        /// Monitor reference.
        reference: Reference,
        /// Exit reason.
        reason: Term,
    },
    /// `SPAWN_REQUEST`, `SPAWN_REQUEST_TT`.
    SpawnRequest {
        /// Request id; also the monitor reference when `monitor` is in `opts`.
        req_id: Reference,
        /// Requesting process.
        from: Pid,
        /// Group leader for the new process.
        group_leader: Pid,
        /// Module.
        module: Atom,
        /// Function.
        function: Atom,
        /// Arity (the length of `args`).
        arity: u8,
        /// Spawn options (`monitor`, `link`, ...).
        opts: Term,
        /// seq_trace token.
        token: Option<Term>,
        /// Arguments: a proper list of `arity` elements.
        args: Term,
    },
    /// `SPAWN_REPLY`, `SPAWN_REPLY_TT`.
    SpawnReply {
        /// The request's id.
        req_id: Reference,
        /// The requesting process.
        to: Pid,
        /// 1 = a link was set up, 2 = a monitor was set up.
        flags: u8,
        /// The new pid, or an error atom.
        result: Term,
        /// seq_trace token.
        token: Option<Term>,
    },
    /// `ALIAS_SEND`, `ALIAS_SEND_TT`: a message to a process alias.
    AliasSend {
        /// The sender.
        from: Pid,
        /// The alias.
        alias: Reference,
        /// seq_trace token.
        token: Option<Term>,
        /// The message.
        message: Term,
    },
    /// `ALTACT_SIG_SEND` (OTP 28+, `DFLAG_ALTACT_SIG`): a message or an exit signal to a
    /// pid, a registered name or an alias, possibly a priority signal (EEP 76). The tuple is
    /// `{37, Flags, From, To}` or `{37, Flags, From, To, Token}`, the message or exit reason
    /// the payload (`erts_dsig_send_msg` and `erts_dsig_send_exit2` in
    /// `erts/emulator/beam/dist.c`). [`Control::AliasSend`] is sent in this form to a peer
    /// that negotiated `DFLAG_ALTACT_SIG`, as OTP 28 does (OTP 30 drops `ALIAS_SEND`).
    ///
    /// It is always written as `ALTACT_SIG_SEND`: send it only to a peer that negotiated
    /// `DFLAG_ALTACT_SIG` (OTP 27 and older drop a connection on an unknown operation).
    ///
    /// Decoding yields this variant only for what no older operation expresses: priority
    /// signals, and exit signals to a name or an alias. A non-priority message decodes as
    /// [`Control::Send`], [`Control::RegSend`] or [`Control::AliasSend`], a non-priority
    /// exit signal to a pid as [`Control::Exit2`].
    AltactSig {
        /// The sender.
        from: Pid,
        /// The receiver.
        to: SignalTarget,
        /// A priority signal (`erlang:send(To, Msg, [priority])`, `exit/3` with
        /// `[priority]`).
        priority: bool,
        /// An exit signal whose reason is `payload`, rather than a message.
        exit: bool,
        /// seq_trace token.
        token: Option<Term>,
        /// The message, or the exit reason.
        payload: Term,
    },
    /// `UNLINK_ID`: `from` removes its link to `to`.
    UnlinkId {
        /// Unlink operation id (never 0).
        id: u64,
        /// Unlinking process.
        from: Pid,
        /// Unlinked process.
        to: Pid,
    },
    /// `UNLINK_ID_ACK`: `from` acknowledges the unlink `id` of `to`.
    UnlinkIdAck {
        /// The acknowledged id.
        id: u64,
        /// Acknowledging process.
        from: Pid,
        /// The process that sent `UNLINK_ID`.
        to: Pid,
    },
}

/// Why a control message is invalid. The BEAM drops the connection for these; what
/// beamlink does is the node's setting (`on_bad_message` of its `NodeConfig`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ControlError {
    /// The control term is not a tuple whose first element is a small integer.
    NotAControlTuple,
    /// An operation number that does not exist (or that we never negotiate).
    UnknownOperation {
        /// The number.
        op: i64,
    },
    /// The tuple has the wrong number of elements.
    WrongArity {
        /// Operation.
        op: u8,
        /// Elements present.
        arity: usize,
    },
    /// An element has the wrong type.
    BadField {
        /// Operation.
        op: u8,
        /// Which element.
        field: &'static str,
    },
    /// The operation needs a payload term and there is none.
    MissingPayload {
        /// Operation.
        op: u8,
    },
    /// The operation takes no payload and one came.
    UnexpectedPayload {
        /// Operation.
        op: u8,
    },
}

impl fmt::Display for ControlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ControlError::NotAControlTuple => {
                f.write_str("control message is not a tuple starting with an operation number")
            }
            ControlError::UnknownOperation { op } => write!(f, "unknown operation {op}"),
            ControlError::WrongArity { op, arity } => {
                write!(f, "operation {op} with {arity} elements")
            }
            ControlError::BadField { op, field } => {
                write!(f, "operation {op} has a bad {field}")
            }
            ControlError::MissingPayload { op } => write!(f, "operation {op} without its payload"),
            ControlError::UnexpectedPayload { op } => {
                write!(f, "operation {op} with a payload it does not take")
            }
        }
    }
}

impl std::error::Error for ControlError {}

impl Control {
    /// The operation code this message is sent with, given the connection's flags: the
    /// trace-token form when it carries a token, SEND_SENDER when negotiated, and the
    /// payload forms of the exit signals with `DFLAG_EXIT_PAYLOAD`.
    pub fn op(&self, flags: DistFlags) -> u8 {
        self.layout(flags).op
    }
}
