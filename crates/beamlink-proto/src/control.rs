//! Control messages (`erts/doc/guides/erl_dist_protocol.md`, "Protocol between connected
//! nodes"; `erts/emulator/beam/dist.c` `erts_net_message`): the signals nodes exchange once
//! connected.
//!
//! [`Control`] folds the wire variants together: a trace token is an `Option`, and
//! `PAYLOAD_EXIT` and `EXIT` are one variant whose reason travels inline or as the payload
//! depending on the negotiated flags. Decoding checks arity and element types the way the
//! BEAM does before it acts on a message.

use super::flags::DistFlags;
use super::term::{Atom, Enc, EncodeError, Holes, Pid, Reference, Term};
use bytes::{BufMut, BytesMut};
use std::fmt;

/// Operation numbers (`dist.h`).
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
}

/// `''`, as a place `visit_atoms` can lend out.
static EMPTY_ATOM: Atom = Atom::EMPTY;

/// A process named in a monitor: by pid or by registered name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ProcessRef {
    /// A pid.
    Pid(Pid),
    /// A registered name (on the node the message is for, or from).
    Name(Atom),
}

impl ProcessRef {
    fn to_term(&self) -> Term {
        match self {
            ProcessRef::Pid(p) => Term::Pid(p.clone()),
            ProcessRef::Name(a) => Term::Atom(a.clone()),
        }
    }
}

impl fmt::Display for ProcessRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProcessRef::Pid(p) => write!(f, "{p}"),
            ProcessRef::Name(a) => write!(f, "{a}"),
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

/// Why a control message is invalid. The BEAM drops the connection for these; we drop
/// only the message and log it (see the link).
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

/// Reads the fields of one control tuple, moving each out (no copies on the receive path).
struct Fields<'a> {
    op: u8,
    elements: &'a mut [Term],
}

impl Fields<'_> {
    fn arity(&self, expected: usize) -> Result<(), ControlError> {
        if self.elements.len() == expected {
            Ok(())
        } else {
            Err(ControlError::WrongArity {
                op: self.op,
                arity: self.elements.len(),
            })
        }
    }

    fn bad(&self, field: &'static str) -> ControlError {
        ControlError::BadField { op: self.op, field }
    }

    /// Element `i`, moved out; each element is taken once.
    fn take(&mut self, i: usize) -> Term {
        std::mem::replace(&mut self.elements[i], Term::NIL)
    }

    fn pid(&mut self, i: usize, field: &'static str) -> Result<Pid, ControlError> {
        match self.take(i) {
            Term::Pid(p) => Ok(p),
            _ => Err(self.bad(field)),
        }
    }

    fn atom(&mut self, i: usize, field: &'static str) -> Result<Atom, ControlError> {
        match self.take(i) {
            Term::Atom(a) => Ok(a),
            _ => Err(self.bad(field)),
        }
    }

    fn reference(&mut self, i: usize, field: &'static str) -> Result<Reference, ControlError> {
        match self.take(i) {
            Term::Ref(r) => Ok(*r),
            _ => Err(self.bad(field)),
        }
    }

    fn process(&mut self, i: usize, field: &'static str) -> Result<ProcessRef, ControlError> {
        match self.take(i) {
            Term::Pid(p) => Ok(ProcessRef::Pid(p)),
            Term::Atom(a) => Ok(ProcessRef::Name(a)),
            _ => Err(self.bad(field)),
        }
    }

    fn id(&mut self, i: usize) -> Result<u64, ControlError> {
        match self.take(i).as_u64() {
            Some(id) if id != 0 => Ok(id),
            _ => Err(self.bad("unlink id")),
        }
    }
}

impl Control {
    /// Builds a control message from its decoded control term and payload.
    pub fn from_terms(control: Term, payload: Option<Term>) -> Result<Control, ControlError> {
        let Term::Tuple(mut elements) = control else {
            return Err(ControlError::NotAControlTuple);
        };
        let op = match elements.first() {
            Some(Term::Int(op)) => *op,
            _ => return Err(ControlError::NotAControlTuple),
        };
        let op = u8::try_from(op).map_err(|_| ControlError::UnknownOperation { op })?;
        let mut f = Fields {
            op,
            elements: &mut elements,
        };
        let takes_payload = matches!(
            op,
            op::SEND
                | op::REG_SEND
                | op::SEND_TT
                | op::REG_SEND_TT
                | op::SEND_SENDER
                | op::SEND_SENDER_TT
                | op::PAYLOAD_EXIT
                | op::PAYLOAD_EXIT_TT
                | op::PAYLOAD_EXIT2
                | op::PAYLOAD_EXIT2_TT
                | op::PAYLOAD_MONITOR_P_EXIT
                | op::SPAWN_REQUEST
                | op::SPAWN_REQUEST_TT
                | op::ALIAS_SEND
                | op::ALIAS_SEND_TT
        );
        let payload = match (takes_payload, payload) {
            (true, Some(p)) => p,
            (true, None) => return Err(ControlError::MissingPayload { op }),
            (false, Some(_)) => return Err(ControlError::UnexpectedPayload { op }),
            (false, None) => Term::NIL,
        };
        let control = match op {
            op::LINK => {
                f.arity(3)?;
                Control::Link {
                    from: f.pid(1, "from pid")?,
                    to: f.pid(2, "to pid")?,
                }
            }
            op::SEND | op::SEND_TT => {
                f.arity(if op == op::SEND { 3 } else { 4 })?;
                Control::Send {
                    from: None,
                    to: f.pid(2, "to pid")?,
                    token: (op == op::SEND_TT).then(|| f.take(3)),
                    message: payload,
                }
            }
            op::SEND_SENDER | op::SEND_SENDER_TT => {
                f.arity(if op == op::SEND_SENDER { 3 } else { 4 })?;
                Control::Send {
                    from: Some(f.pid(1, "from pid")?),
                    to: f.pid(2, "to pid")?,
                    token: (op == op::SEND_SENDER_TT).then(|| f.take(3)),
                    message: payload,
                }
            }
            op::REG_SEND | op::REG_SEND_TT => {
                f.arity(if op == op::REG_SEND { 4 } else { 5 })?;
                Control::RegSend {
                    from: f.pid(1, "from pid")?,
                    to: f.atom(3, "registered name")?,
                    token: (op == op::REG_SEND_TT).then(|| f.take(4)),
                    message: payload,
                }
            }
            op::EXIT | op::EXIT2 => {
                f.arity(4)?;
                let (from, to, reason) = (f.pid(1, "from pid")?, f.pid(2, "to pid")?, f.take(3));
                exit(op == op::EXIT, from, to, None, reason)
            }
            op::EXIT_TT | op::EXIT2_TT => {
                f.arity(5)?;
                let (from, to) = (f.pid(1, "from pid")?, f.pid(2, "to pid")?);
                let token = Some(f.take(3));
                exit(op == op::EXIT_TT, from, to, token, f.take(4))
            }
            op::PAYLOAD_EXIT | op::PAYLOAD_EXIT2 => {
                f.arity(3)?;
                let (from, to) = (f.pid(1, "from pid")?, f.pid(2, "to pid")?);
                exit(op == op::PAYLOAD_EXIT, from, to, None, payload)
            }
            op::PAYLOAD_EXIT_TT | op::PAYLOAD_EXIT2_TT => {
                f.arity(4)?;
                let (from, to) = (f.pid(1, "from pid")?, f.pid(2, "to pid")?);
                let token = Some(f.take(3));
                exit(op == op::PAYLOAD_EXIT_TT, from, to, token, payload)
            }
            op::UNLINK => {
                f.arity(3)?;
                Control::Unlink {
                    from: f.pid(1, "from pid")?,
                    to: f.pid(2, "to pid")?,
                }
            }
            op::GROUP_LEADER => {
                f.arity(3)?;
                Control::GroupLeader {
                    from: f.pid(1, "group leader pid")?,
                    to: f.pid(2, "to pid")?,
                }
            }
            op::MONITOR_P | op::DEMONITOR_P => {
                f.arity(4)?;
                let (from, to) = (f.pid(1, "from pid")?, f.process(2, "monitored process")?);
                let reference = f.reference(3, "monitor reference")?;
                if op == op::MONITOR_P {
                    Control::MonitorP {
                        from,
                        to,
                        reference,
                    }
                } else {
                    Control::DemonitorP {
                        from,
                        to,
                        reference,
                    }
                }
            }
            op::MONITOR_P_EXIT => {
                f.arity(5)?;
                Control::MonitorPExit {
                    from: f.process(1, "monitored process")?,
                    to: f.pid(2, "to pid")?,
                    reference: f.reference(3, "monitor reference")?,
                    reason: f.take(4),
                }
            }
            op::PAYLOAD_MONITOR_P_EXIT => {
                f.arity(4)?;
                Control::MonitorPExit {
                    from: f.process(1, "monitored process")?,
                    to: f.pid(2, "to pid")?,
                    reference: f.reference(3, "monitor reference")?,
                    reason: payload,
                }
            }
            op::SPAWN_REQUEST | op::SPAWN_REQUEST_TT => {
                f.arity(if op == op::SPAWN_REQUEST { 6 } else { 7 })?;
                let Term::Tuple(mfa) = f.take(4) else {
                    return Err(f.bad("{M, F, A}"));
                };
                let Ok([Term::Atom(module), Term::Atom(function), Term::Int(arity)]) =
                    <[Term; 3]>::try_from(mfa)
                else {
                    return Err(f.bad("{M, F, A}"));
                };
                let arity = u8::try_from(arity).map_err(|_| f.bad("arity"))?;
                match payload.as_list() {
                    Some(args) if args.len() == arity as usize => {}
                    Some(_) => return Err(f.bad("arity")),
                    None => return Err(f.bad("argument list")),
                }
                Control::SpawnRequest {
                    req_id: f.reference(1, "request id")?,
                    from: f.pid(2, "from pid")?,
                    group_leader: f.pid(3, "group leader")?,
                    module,
                    function,
                    arity,
                    opts: f.take(5),
                    token: (op == op::SPAWN_REQUEST_TT).then(|| f.take(6)),
                    args: payload,
                }
            }
            op::SPAWN_REPLY | op::SPAWN_REPLY_TT => {
                f.arity(if op == op::SPAWN_REPLY { 5 } else { 6 })?;
                let flags = f
                    .take(3)
                    .as_i64()
                    .and_then(|v| u8::try_from(v).ok())
                    .ok_or_else(|| f.bad("flags"))?;
                Control::SpawnReply {
                    req_id: f.reference(1, "request id")?,
                    to: f.pid(2, "to pid")?,
                    flags,
                    result: f.take(4),
                    token: (op == op::SPAWN_REPLY_TT).then(|| f.take(5)),
                }
            }
            op::ALIAS_SEND | op::ALIAS_SEND_TT => {
                f.arity(if op == op::ALIAS_SEND { 3 } else { 4 })?;
                Control::AliasSend {
                    from: f.pid(1, "from pid")?,
                    alias: f.reference(2, "alias")?,
                    token: (op == op::ALIAS_SEND_TT).then(|| f.take(3)),
                    message: payload,
                }
            }
            op::UNLINK_ID | op::UNLINK_ID_ACK => {
                f.arity(4)?;
                let (id, from, to) = (f.id(1)?, f.pid(2, "from pid")?, f.pid(3, "to pid")?);
                if op == op::UNLINK_ID {
                    Control::UnlinkId { id, from, to }
                } else {
                    Control::UnlinkIdAck { id, from, to }
                }
            }
            _ => return Err(ControlError::UnknownOperation { op: op as i64 }),
        };
        Ok(control)
    }

    /// The operation code this message is sent with, given the connection's flags: the
    /// trace-token form when it carries a token, SEND_SENDER when negotiated, and the
    /// payload forms of the exit signals with `DFLAG_EXIT_PAYLOAD`.
    pub fn op(&self, flags: DistFlags) -> u8 {
        let payload_exits = flags.contains(DistFlags::EXIT_PAYLOAD);
        let traced = |token: &Option<Term>, plain: u8, with_token: u8| {
            if token.is_some() { with_token } else { plain }
        };
        match self {
            Control::Link { .. } => op::LINK,
            Control::Unlink { .. } => op::UNLINK,
            Control::GroupLeader { .. } => op::GROUP_LEADER,
            Control::Send {
                from: Some(_),
                token,
                ..
            } if flags.contains(DistFlags::SEND_SENDER) => {
                traced(token, op::SEND_SENDER, op::SEND_SENDER_TT)
            }
            Control::Send { token, .. } => traced(token, op::SEND, op::SEND_TT),
            Control::RegSend { token, .. } => traced(token, op::REG_SEND, op::REG_SEND_TT),
            Control::Exit { token, .. } => exit_op(true, payload_exits, token.is_some()),
            Control::Exit2 { token, .. } => exit_op(false, payload_exits, token.is_some()),
            Control::MonitorP { .. } => op::MONITOR_P,
            Control::DemonitorP { .. } => op::DEMONITOR_P,
            Control::MonitorPExit { .. } if payload_exits => op::PAYLOAD_MONITOR_P_EXIT,
            Control::MonitorPExit { .. } => op::MONITOR_P_EXIT,
            Control::SpawnRequest { token, .. } => {
                traced(token, op::SPAWN_REQUEST, op::SPAWN_REQUEST_TT)
            }
            Control::SpawnReply { token, .. } => traced(token, op::SPAWN_REPLY, op::SPAWN_REPLY_TT),
            Control::AliasSend { token, .. } => traced(token, op::ALIAS_SEND, op::ALIAS_SEND_TT),
            Control::UnlinkId { .. } => op::UNLINK_ID,
            Control::UnlinkIdAck { .. } => op::UNLINK_ID_ACK,
        }
    }

    /// The control term and payload this message is sent as, given the connection's flags.
    /// Payloads are borrowed, never copied.
    pub fn to_terms(&self, flags: DistFlags) -> (Term, Option<&Term>) {
        let op = self.op(flags);
        let payload_exits = flags.contains(DistFlags::EXIT_PAYLOAD);
        let pid = |p: &Pid| Term::Pid(p.clone());
        let reference = |r: &Reference| Term::reference(r.clone());
        // The fields after the operation code; the trace token, when there is one, follows
        // them, and a reason that is not sent as payload comes last.
        let (fields, token, payload): (Vec<Term>, &Option<Term>, Option<&Term>) = match self {
            Control::Link { from, to }
            | Control::Unlink { from, to }
            | Control::GroupLeader { from, to } => (vec![pid(from), pid(to)], &None, None),
            Control::Send {
                from,
                to,
                token,
                message,
            } => {
                let sender = match from {
                    Some(from) if op == op::SEND_SENDER || op == op::SEND_SENDER_TT => pid(from),
                    _ => Term::atom(""),
                };
                (vec![sender, pid(to)], token, Some(message))
            }
            Control::RegSend {
                from,
                to,
                token,
                message,
            } => (
                vec![pid(from), Term::atom(""), Term::Atom(to.clone())],
                token,
                Some(message),
            ),
            Control::Exit {
                from,
                to,
                token,
                reason,
            }
            | Control::Exit2 {
                from,
                to,
                token,
                reason,
            } => (vec![pid(from), pid(to)], token, Some(reason)),
            Control::MonitorP {
                from,
                to,
                reference: r,
            }
            | Control::DemonitorP {
                from,
                to,
                reference: r,
            } => (vec![pid(from), to.to_term(), reference(r)], &None, None),
            Control::MonitorPExit {
                from,
                to,
                reference: r,
                reason,
            } => (
                vec![from.to_term(), pid(to), reference(r)],
                &None,
                Some(reason),
            ),
            Control::SpawnRequest {
                req_id,
                from,
                group_leader,
                module,
                function,
                arity,
                opts,
                token,
                args,
            } => {
                let mfa = Term::tuple([
                    Term::Atom(module.clone()),
                    Term::Atom(function.clone()),
                    Term::Int(*arity as i64),
                ]);
                let fields = vec![
                    reference(req_id),
                    pid(from),
                    pid(group_leader),
                    mfa,
                    opts.clone(),
                ];
                (fields, token, Some(args))
            }
            Control::SpawnReply {
                req_id,
                to,
                flags: reply_flags,
                result,
                token,
            } => {
                let fields = vec![
                    reference(req_id),
                    pid(to),
                    Term::Int(*reply_flags as i64),
                    result.clone(),
                ];
                (fields, token, None)
            }
            Control::AliasSend {
                from,
                alias,
                token,
                message,
            } => (vec![pid(from), reference(alias)], token, Some(message)),
            Control::UnlinkId { id, from, to } | Control::UnlinkIdAck { id, from, to } => {
                (vec![Term::from_u64(*id), pid(from), pid(to)], &None, None)
            }
        };
        let mut tuple = Vec::with_capacity(fields.len() + 3);
        tuple.push(Term::Int(op as i64));
        tuple.extend(fields);
        tuple.extend(token.iter().cloned());
        let reason_in_tuple = !payload_exits && self.reason_is_payload_only_with_flag();
        match payload {
            Some(reason) if reason_in_tuple => {
                tuple.push(reason.clone());
                (Term::Tuple(tuple), None)
            }
            payload => (Term::Tuple(tuple), payload),
        }
    }

    /// Exit signals carry their reason as payload only with `DFLAG_EXIT_PAYLOAD`; without
    /// it, the reason is the control tuple's last element. Both encoders ask this.
    fn reason_is_payload_only_with_flag(&self) -> bool {
        matches!(
            self,
            Control::Exit { .. } | Control::Exit2 { .. } | Control::MonitorPExit { .. }
        )
    }

    /// Calls `f` with the atoms of the control tuple, then with those of the payload
    /// (at most `payload_budget` payload subterms are visited).
    pub fn visit_atoms<'a>(&'a self, f: &mut dyn FnMut(&'a Atom), payload_budget: usize) {
        let process = |p: &'a ProcessRef, f: &mut dyn FnMut(&'a Atom)| match p {
            ProcessRef::Pid(p) => f(&p.node),
            ProcessRef::Name(a) => f(a),
        };
        let payload = match self {
            Control::Link { from, to }
            | Control::Unlink { from, to }
            | Control::GroupLeader { from, to }
            | Control::UnlinkId { from, to, .. }
            | Control::UnlinkIdAck { from, to, .. } => {
                f(&from.node);
                f(&to.node);
                None
            }
            Control::Send {
                from, to, message, ..
            } => {
                match from {
                    Some(from) => f(&from.node),
                    None => f(&EMPTY_ATOM),
                }
                f(&to.node);
                Some(message)
            }
            Control::RegSend {
                from, to, message, ..
            } => {
                f(&from.node);
                f(&EMPTY_ATOM);
                f(to);
                Some(message)
            }
            Control::Exit {
                from, to, reason, ..
            }
            | Control::Exit2 {
                from, to, reason, ..
            } => {
                f(&from.node);
                f(&to.node);
                Some(reason)
            }
            Control::MonitorP {
                from,
                to,
                reference,
            }
            | Control::DemonitorP {
                from,
                to,
                reference,
            } => {
                f(&from.node);
                process(to, f);
                f(&reference.node);
                None
            }
            Control::MonitorPExit {
                from,
                to,
                reference,
                reason,
            } => {
                process(from, f);
                f(&to.node);
                f(&reference.node);
                Some(reason)
            }
            Control::SpawnRequest {
                req_id,
                from,
                module,
                function,
                args,
                ..
            } => {
                f(&req_id.node);
                f(&from.node);
                f(module);
                f(function);
                Some(args)
            }
            Control::SpawnReply {
                req_id, to, result, ..
            } => {
                f(&req_id.node);
                f(&to.node);
                Some(result)
            }
            Control::AliasSend {
                from,
                alias,
                message,
                ..
            } => {
                f(&from.node);
                f(&alias.node);
                Some(message)
            }
        };
        if let Some(p) = payload {
            p.visit_atoms(f, payload_budget);
        }
    }

    /// Appends the pass-through message body (`112`, the control term, the payload term)
    /// without the 4-byte length.
    pub fn encode(&self, flags: DistFlags, out: &mut BytesMut) -> Result<(), EncodeError> {
        let start = out.len();
        out.put_u8(super::frame::PASS_THROUGH);
        self.encode_terms(flags, out, &[], true)
            .inspect_err(|_| out.truncate(start))
    }

    /// Appends the control term and the payload term, each with a version byte when
    /// `versioned` (pass-through) or without (after a distribution header), atoms found in
    /// `refs` as atom cache references. Writes the tuple directly: no term is built, nothing
    /// is copied but the bytes.
    pub fn encode_terms(
        &self,
        flags: DistFlags,
        out: &mut BytesMut,
        refs: &[Atom],
        versioned: bool,
    ) -> Result<(), EncodeError> {
        self.encode_terms_with_holes(flags, out, refs, versioned, None)
    }

    /// [`encode_terms`](Self::encode_terms), leaving large binaries out of `out` and listing
    /// them in `holes` when given.
    pub fn encode_terms_with_holes(
        &self,
        flags: DistFlags,
        out: &mut BytesMut,
        refs: &[Atom],
        versioned: bool,
        holes: Option<&mut Holes>,
    ) -> Result<(), EncodeError> {
        let start = out.len();
        let held = holes.as_ref().map_or(0, |h| h.len());
        let mut e = Enc { out, refs, holes };
        let result = self.write_terms(flags, &mut e, versioned);
        if result.is_err() {
            if let Some(h) = e.holes {
                h.truncate(held);
            }
            out.truncate(start);
        }
        result
    }

    fn write_terms(
        &self,
        flags: DistFlags,
        e: &mut Enc<'_>,
        versioned: bool,
    ) -> Result<(), EncodeError> {
        use super::term::parts::{atom, int, pid, reference, term, tuple_header};
        let start = |e: &mut Enc<'_>, op: u8, arity: usize, token: &Option<Term>| {
            if versioned {
                e.out.put_u8(super::term::VERSION);
            }
            tuple_header(e, arity + usize::from(token.is_some()))?;
            int(e, op as i64);
            Ok::<(), EncodeError>(())
        };
        let token_then = |e: &mut Enc<'_>, token: &Option<Term>| match token {
            Some(t) => term(e, t),
            None => Ok(()),
        };
        let empty = Atom::EMPTY;
        let payload_exits = flags.contains(DistFlags::EXIT_PAYLOAD);
        let op = self.op(flags);
        let process = |e: &mut Enc<'_>, p: &ProcessRef| match p {
            ProcessRef::Pid(p) => pid(e, p),
            ProcessRef::Name(a) => atom(e, a),
        };
        let payload: Option<&Term> = match self {
            Control::Link { from, to }
            | Control::Unlink { from, to }
            | Control::GroupLeader { from, to } => {
                start(e, op, 3, &None)?;
                pid(e, from)?;
                pid(e, to)?;
                None
            }
            Control::Send {
                from,
                to,
                token,
                message,
            } => {
                start(e, op, 3, token)?;
                match from {
                    Some(from) if op == op::SEND_SENDER || op == op::SEND_SENDER_TT => {
                        pid(e, from)?
                    }
                    _ => atom(e, &empty)?,
                }
                pid(e, to)?;
                token_then(e, token)?;
                Some(message)
            }
            Control::RegSend {
                from,
                to,
                token,
                message,
            } => {
                start(e, op, 4, token)?;
                pid(e, from)?;
                atom(e, &empty)?;
                atom(e, to)?;
                token_then(e, token)?;
                Some(message)
            }
            Control::Exit {
                from,
                to,
                token,
                reason,
            }
            | Control::Exit2 {
                from,
                to,
                token,
                reason,
            } => {
                start(e, op, 3 + usize::from(!payload_exits), token)?;
                pid(e, from)?;
                pid(e, to)?;
                token_then(e, token)?;
                Some(reason)
            }
            Control::MonitorP {
                from,
                to,
                reference: r,
            }
            | Control::DemonitorP {
                from,
                to,
                reference: r,
            } => {
                start(e, op, 4, &None)?;
                pid(e, from)?;
                process(e, to)?;
                reference(e, r)?;
                None
            }
            Control::MonitorPExit {
                from,
                to,
                reference: r,
                reason,
            } => {
                start(e, op, 4 + usize::from(!payload_exits), &None)?;
                process(e, from)?;
                pid(e, to)?;
                reference(e, r)?;
                Some(reason)
            }
            Control::SpawnRequest {
                req_id,
                from,
                group_leader,
                module,
                function,
                arity,
                opts,
                token,
                args,
            } => {
                start(e, op, 6, token)?;
                reference(e, req_id)?;
                pid(e, from)?;
                pid(e, group_leader)?;
                tuple_header(e, 3)?;
                atom(e, module)?;
                atom(e, function)?;
                int(e, *arity as i64);
                term(e, opts)?;
                token_then(e, token)?;
                Some(args)
            }
            Control::SpawnReply {
                req_id,
                to,
                flags: reply_flags,
                result,
                token,
            } => {
                start(e, op, 5, token)?;
                reference(e, req_id)?;
                pid(e, to)?;
                int(e, *reply_flags as i64);
                term(e, result)?;
                token_then(e, token)?;
                None
            }
            Control::AliasSend {
                from,
                alias,
                token,
                message,
            } => {
                start(e, op, 3, token)?;
                pid(e, from)?;
                reference(e, alias)?;
                token_then(e, token)?;
                Some(message)
            }
            Control::UnlinkId { id, from, to } | Control::UnlinkIdAck { id, from, to } => {
                start(e, op, 4, &None)?;
                term(e, &Term::from_u64(*id))?;
                pid(e, from)?;
                pid(e, to)?;
                None
            }
        };
        match payload {
            Some(reason) if !payload_exits && self.reason_is_payload_only_with_flag() => {
                term(e, reason)?
            }
            Some(p) => {
                if versioned {
                    e.out.put_u8(super::term::VERSION);
                }
                term(e, p)?;
            }
            None => {}
        }
        Ok(())
    }
}

fn exit(is_exit: bool, from: Pid, to: Pid, token: Option<Term>, reason: Term) -> Control {
    if is_exit {
        Control::Exit {
            from,
            to,
            token,
            reason,
        }
    } else {
        Control::Exit2 {
            from,
            to,
            token,
            reason,
        }
    }
}

/// The operation of an EXIT (`is_exit`) or EXIT2 signal: with the reason as payload
/// (`DFLAG_EXIT_PAYLOAD`) or in the control tuple, with a trace token or without.
fn exit_op(is_exit: bool, payload_exits: bool, traced: bool) -> u8 {
    match (is_exit, payload_exits, traced) {
        (true, true, false) => op::PAYLOAD_EXIT,
        (true, true, true) => op::PAYLOAD_EXIT_TT,
        (true, false, false) => op::EXIT,
        (true, false, true) => op::EXIT_TT,
        (false, true, false) => op::PAYLOAD_EXIT2,
        (false, true, true) => op::PAYLOAD_EXIT2_TT,
        (false, false, false) => op::EXIT2,
        (false, false, true) => op::EXIT2_TT,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pid(node: &str, id: u32) -> Pid {
        Pid {
            node: Atom::new(node),
            id,
            serial: 0,
            creation: 7,
        }
    }

    fn r() -> Reference {
        Reference::new(Atom::new("a@h.x"), 7, &[1, 2, 3]).unwrap()
    }

    #[test]
    fn send_uses_send_sender_only_when_negotiated() {
        let msg = Control::Send {
            from: Some(pid("a@h.x", 1)),
            to: pid("b@h.x", 2),
            token: None,
            message: Term::atom("hi"),
        };
        let (c, _) = msg.to_terms(DistFlags::SEND_SENDER);
        assert_eq!(c.as_tuple().unwrap()[0], Term::Int(22));
        let (c, p) = msg.to_terms(DistFlags::EMPTY);
        assert_eq!(c.as_tuple().unwrap()[0], Term::Int(2));
        assert_eq!(c.as_tuple().unwrap()[1], Term::atom(""));
        let back = Control::from_terms(c, p.cloned()).unwrap();
        assert_eq!(
            back,
            Control::Send {
                from: None,
                to: pid("b@h.x", 2),
                token: None,
                message: Term::atom("hi")
            }
        );
    }

    #[test]
    fn exits_round_trip_in_both_forms() {
        let msgs = [
            Control::Exit {
                from: pid("a@h.x", 1),
                to: pid("b@h.x", 2),
                token: None,
                reason: Term::atom("noconnection"),
            },
            Control::Exit2 {
                from: pid("a@h.x", 1),
                to: pid("b@h.x", 2),
                token: Some(Term::atom("tok")),
                reason: Term::atom("kill"),
            },
            Control::MonitorPExit {
                from: ProcessRef::Name(Atom::new("beamlink")),
                to: pid("b@h.x", 2),
                reference: r(),
                reason: Term::atom("noproc"),
            },
        ];
        for m in msgs {
            for flags in [DistFlags::EMPTY, DistFlags::EXIT_PAYLOAD] {
                let (c, p) = m.to_terms(flags);
                assert_eq!(p.is_some(), flags == DistFlags::EXIT_PAYLOAD);
                assert_eq!(Control::from_terms(c, p.cloned()).unwrap(), m);
            }
        }
    }

    #[test]
    fn every_simple_message_round_trips() {
        let msgs = [
            Control::Link {
                from: pid("a@h.x", 1),
                to: pid("b@h.x", 2),
            },
            Control::RegSend {
                from: pid("a@h.x", 1),
                to: Atom::new("net_kernel"),
                token: None,
                message: Term::NIL,
            },
            Control::MonitorP {
                from: pid("a@h.x", 1),
                to: ProcessRef::Name(Atom::new("rex")),
                reference: r(),
            },
            Control::DemonitorP {
                from: pid("a@h.x", 1),
                to: ProcessRef::Pid(pid("b@h.x", 3)),
                reference: r(),
            },
            Control::SpawnReply {
                req_id: r(),
                to: pid("a@h.x", 1),
                flags: 2,
                result: Term::Pid(pid("b@h.x", 9)),
                token: None,
            },
            Control::AliasSend {
                from: pid("a@h.x", 1),
                alias: r(),
                token: None,
                message: Term::Int(5),
            },
            Control::UnlinkId {
                id: u64::MAX,
                from: pid("a@h.x", 1),
                to: pid("b@h.x", 2),
            },
            Control::UnlinkIdAck {
                id: 1,
                from: pid("a@h.x", 1),
                to: pid("b@h.x", 2),
            },
        ];
        for m in msgs {
            let (c, p) = m.to_terms(DistFlags::BEAMLINK_DEFAULT);
            assert_eq!(Control::from_terms(c, p.cloned()).unwrap(), m);
        }
    }

    #[test]
    fn direct_encoding_matches_the_term_tree() {
        let msgs = [
            Control::Link {
                from: pid("a@h.x", 1),
                to: pid("b@h.x", 2),
            },
            Control::Send {
                from: Some(pid("a@h.x", 1)),
                to: pid("b@h.x", 2),
                token: None,
                message: Term::atom("m"),
            },
            Control::Send {
                from: None,
                to: pid("b@h.x", 2),
                token: Some(Term::atom("t")),
                message: Term::Int(1),
            },
            Control::RegSend {
                from: pid("a@h.x", 1),
                to: Atom::new("rex"),
                token: Some(Term::Int(3)),
                message: Term::NIL,
            },
            Control::Exit {
                from: pid("a@h.x", 1),
                to: pid("b@h.x", 2),
                token: Some(Term::Int(9)),
                reason: Term::atom("x"),
            },
            Control::Exit2 {
                from: pid("a@h.x", 1),
                to: pid("b@h.x", 2),
                token: None,
                reason: Term::atom("kill"),
            },
            Control::MonitorP {
                from: pid("a@h.x", 1),
                to: ProcessRef::Name(Atom::new("rex")),
                reference: r(),
            },
            Control::DemonitorP {
                from: pid("a@h.x", 1),
                to: ProcessRef::Pid(pid("b@h.x", 3)),
                reference: r(),
            },
            Control::MonitorPExit {
                from: ProcessRef::Name(Atom::new("x")),
                to: pid("b@h.x", 2),
                reference: r(),
                reason: Term::atom("noproc"),
            },
            Control::SpawnRequest {
                req_id: r(),
                from: pid("a@h.x", 1),
                group_leader: pid("a@h.x", 1),
                module: Atom::new("erpc"),
                function: Atom::new("execute_call"),
                arity: 1,
                opts: Term::list([Term::atom("monitor")]),
                token: None,
                args: Term::list([Term::Int(1)]),
            },
            Control::SpawnReply {
                req_id: r(),
                to: pid("a@h.x", 1),
                flags: 2,
                result: Term::atom("notsup"),
                token: Some(Term::Int(1)),
            },
            Control::AliasSend {
                from: pid("a@h.x", 1),
                alias: r(),
                token: None,
                message: Term::Int(5),
            },
            Control::UnlinkId {
                id: u64::MAX,
                from: pid("a@h.x", 1),
                to: pid("b@h.x", 2),
            },
            Control::UnlinkIdAck {
                id: 7,
                from: pid("a@h.x", 1),
                to: pid("b@h.x", 2),
            },
        ];
        for m in msgs {
            for flags in [
                DistFlags::EMPTY,
                DistFlags::SEND_SENDER | DistFlags::EXIT_PAYLOAD,
            ] {
                let (c, p) = m.to_terms(flags);
                let mut tree = BytesMut::from(&[super::super::frame::PASS_THROUGH][..]);
                super::super::term::encode(&c, &mut tree).unwrap();
                if let Some(p) = p {
                    super::super::term::encode(p, &mut tree).unwrap();
                }
                let mut direct = BytesMut::new();
                m.encode(flags, &mut direct).unwrap();
                assert_eq!(direct, tree, "{m:?} with {flags:?}");
            }
        }
    }

    #[test]
    fn malformed_control_tuples_are_typed_errors() {
        let p = Term::Pid(pid("a@h.x", 1));
        let cases = [
            (Term::atom("x"), None, ControlError::NotAControlTuple),
            (Term::tuple([]), None, ControlError::NotAControlTuple),
            (
                Term::tuple([Term::Int(99)]),
                None,
                ControlError::UnknownOperation { op: 99 },
            ),
            (
                Term::tuple([Term::Int(-1)]),
                None,
                ControlError::UnknownOperation { op: -1 },
            ),
            (
                Term::tuple([Term::Int(1), p.clone()]),
                None,
                ControlError::WrongArity { op: 1, arity: 2 },
            ),
            (
                Term::tuple([Term::Int(1), p.clone(), Term::atom("x")]),
                None,
                ControlError::BadField {
                    op: 1,
                    field: "to pid",
                },
            ),
            (
                Term::tuple([Term::Int(22), p.clone(), p.clone()]),
                None,
                ControlError::MissingPayload { op: 22 },
            ),
            (
                Term::tuple([Term::Int(1), p.clone(), p.clone()]),
                Some(Term::NIL),
                ControlError::UnexpectedPayload { op: 1 },
            ),
            (
                Term::tuple([Term::Int(35), Term::Int(0), p.clone(), p.clone()]),
                None,
                ControlError::BadField {
                    op: 35,
                    field: "unlink id",
                },
            ),
        ];
        for (c, payload, err) in cases {
            assert_eq!(Control::from_terms(c, payload), Err(err));
        }
    }
}
