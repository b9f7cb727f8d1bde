//! How each [`Control`] goes on the wire, described once: the operation code the flags
//! choose, the tuple's fields after it, the trace token, and the reason or message that
//! follows. The direct encoder, the atom walk and the reference encoder all walk this
//! description, so a variant's layout is written in one place (`erts_dsig_send_*` in
//! `erts/emulator/beam/dist.c` build the same tuples).

use super::{Control, ProcessRef, SignalTarget, altact, op};
use crate::flags::DistFlags;
use crate::term::{Atom, Pid, Reference, Term};

/// `''`, the cookie field of `SEND` and `REG_SEND`.
static EMPTY_ATOM: Atom = Atom::EMPTY;

/// Fields after the operation code, at most (`SPAWN_REQUEST`).
const MAX_FIELDS: usize = 5;

/// One element of a control tuple, borrowed from the message.
#[derive(Clone, Copy, Debug)]
pub(super) enum Field<'a> {
    Pid(&'a Pid),
    Atom(&'a Atom),
    Ref(&'a Reference),
    Process(&'a ProcessRef),
    Int(i64),
    /// An unlink id: a small or big integer.
    Id(u64),
    /// `{Module, Function, Arity}`.
    Mfa(&'a Atom, &'a Atom, u8),
    Term(&'a Term),
}

/// What follows the control tuple's fields.
#[derive(Clone, Copy, Debug)]
pub(super) enum Tail<'a> {
    /// Nothing.
    None,
    /// A second term after the control tuple: a message, arguments, or an exit reason with
    /// `DFLAG_EXIT_PAYLOAD`.
    Payload(&'a Term),
    /// An exit reason as the tuple's last element (no `DFLAG_EXIT_PAYLOAD`).
    Inline(&'a Term),
}

/// A message as it goes on the wire:
/// `{op, fields.., token?, inline reason?}` and then the payload, if any.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Layout<'a> {
    pub(super) op: u8,
    fields: [Field<'a>; MAX_FIELDS],
    len: usize,
    pub(super) token: Option<&'a Term>,
    pub(super) tail: Tail<'a>,
}

impl<'a> Layout<'a> {
    fn new(op: u8, fields: &[Field<'a>], token: &'a Option<Term>, tail: Tail<'a>) -> Self {
        let mut all = [Field::Int(0); MAX_FIELDS];
        all[..fields.len()].copy_from_slice(fields);
        Layout {
            op,
            fields: all,
            len: fields.len(),
            token: token.as_ref(),
            tail,
        }
    }

    /// The fields after the operation code, without the token.
    pub(super) fn fields(&self) -> &[Field<'a>] {
        &self.fields[..self.len]
    }

    /// Elements of the control tuple, the operation code included.
    pub(super) fn arity(&self) -> usize {
        1 + self.len + usize::from(self.token.is_some()) + usize::from(self.inline().is_some())
    }

    /// The exit reason written as the tuple's last element, if it is.
    pub(super) fn inline(&self) -> Option<&'a Term> {
        match self.tail {
            Tail::Inline(reason) => Some(reason),
            _ => None,
        }
    }

    /// The payload term, if one follows the control tuple.
    pub(super) fn payload(&self) -> Option<&'a Term> {
        match self.tail {
            Tail::Payload(payload) => Some(payload),
            _ => None,
        }
    }
}

/// The plain or trace-token operation, by whether a token is present.
fn traced(token: &Option<Term>, plain: u8, with_token: u8) -> u8 {
    if token.is_some() { with_token } else { plain }
}

/// `ALTACT_SIG_SEND`'s flags element: `bits`, and the token bit when a token follows.
fn altact_bits(bits: u64, token: &Option<Term>) -> i64 {
    let token_bit = if token.is_some() { altact::TOKEN } else { 0 };
    // Five defined bits: always a small integer.
    (bits | token_bit) as i64
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

impl Control {
    /// This message's wire layout under a connection's flags.
    pub(crate) fn layout(&self, flags: DistFlags) -> Layout<'_> {
        use Field as F;
        let payload_exits = flags.contains(DistFlags::EXIT_PAYLOAD);
        // Exit signals carry their reason as payload only with DFLAG_EXIT_PAYLOAD.
        let reason = |r| {
            if payload_exits {
                Tail::Payload(r)
            } else {
                Tail::Inline(r)
            }
        };
        match self {
            Control::Link { from, to } => {
                Layout::new(op::LINK, &[F::Pid(from), F::Pid(to)], &None, Tail::None)
            }
            Control::Unlink { from, to } => {
                Layout::new(op::UNLINK, &[F::Pid(from), F::Pid(to)], &None, Tail::None)
            }
            Control::GroupLeader { from, to } => Layout::new(
                op::GROUP_LEADER,
                &[F::Pid(from), F::Pid(to)],
                &None,
                Tail::None,
            ),
            Control::Send {
                from,
                to,
                token,
                message,
            } => {
                // The sender travels only with DFLAG_SEND_SENDER; otherwise the old cookie.
                let (op, sender) = match from {
                    Some(from) if flags.contains(DistFlags::SEND_SENDER) => (
                        traced(token, op::SEND_SENDER, op::SEND_SENDER_TT),
                        F::Pid(from),
                    ),
                    _ => (traced(token, op::SEND, op::SEND_TT), F::Atom(&EMPTY_ATOM)),
                };
                Layout::new(op, &[sender, F::Pid(to)], token, Tail::Payload(message))
            }
            Control::RegSend {
                from,
                to,
                token,
                message,
            } => Layout::new(
                traced(token, op::REG_SEND, op::REG_SEND_TT),
                &[F::Pid(from), F::Atom(&EMPTY_ATOM), F::Atom(to)],
                token,
                Tail::Payload(message),
            ),
            Control::Exit {
                from,
                to,
                token,
                reason: r,
            } => Layout::new(
                exit_op(true, payload_exits, token.is_some()),
                &[F::Pid(from), F::Pid(to)],
                token,
                reason(r),
            ),
            Control::Exit2 {
                from,
                to,
                token,
                reason: r,
            } => Layout::new(
                exit_op(false, payload_exits, token.is_some()),
                &[F::Pid(from), F::Pid(to)],
                token,
                reason(r),
            ),
            Control::MonitorP {
                from,
                to,
                reference,
            } => Layout::new(
                op::MONITOR_P,
                &[F::Pid(from), F::Process(to), F::Ref(reference)],
                &None,
                Tail::None,
            ),
            Control::DemonitorP {
                from,
                to,
                reference,
            } => Layout::new(
                op::DEMONITOR_P,
                &[F::Pid(from), F::Process(to), F::Ref(reference)],
                &None,
                Tail::None,
            ),
            Control::MonitorPExit {
                from,
                to,
                reference,
                reason: r,
            } => Layout::new(
                if payload_exits {
                    op::PAYLOAD_MONITOR_P_EXIT
                } else {
                    op::MONITOR_P_EXIT
                },
                &[F::Process(from), F::Pid(to), F::Ref(reference)],
                &None,
                reason(r),
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
            } => Layout::new(
                traced(token, op::SPAWN_REQUEST, op::SPAWN_REQUEST_TT),
                &[
                    F::Ref(req_id),
                    F::Pid(from),
                    F::Pid(group_leader),
                    F::Mfa(module, function, *arity),
                    F::Term(opts),
                ],
                token,
                Tail::Payload(args),
            ),
            Control::SpawnReply {
                req_id,
                to,
                flags: reply_flags,
                result,
                token,
            } => Layout::new(
                traced(token, op::SPAWN_REPLY, op::SPAWN_REPLY_TT),
                &[
                    F::Ref(req_id),
                    F::Pid(to),
                    F::Int(i64::from(*reply_flags)),
                    F::Term(result),
                ],
                token,
                Tail::None,
            ),
            // OTP 28+ sends alias messages as ALTACT_SIG_SEND when negotiated
            // (erts_dsig_send_msg), and OTP 30 no longer takes ALIAS_SEND.
            Control::AliasSend {
                from,
                alias,
                token,
                message,
            } if flags.contains(DistFlags::ALTACT_SIG) => Layout::new(
                op::ALTACT_SIG_SEND,
                &[
                    F::Int(altact_bits(altact::ALIAS, token)),
                    F::Pid(from),
                    F::Ref(alias),
                ],
                token,
                Tail::Payload(message),
            ),
            Control::AliasSend {
                from,
                alias,
                token,
                message,
            } => Layout::new(
                traced(token, op::ALIAS_SEND, op::ALIAS_SEND_TT),
                &[F::Pid(from), F::Ref(alias)],
                token,
                Tail::Payload(message),
            ),
            Control::AltactSig {
                from,
                to,
                priority,
                exit,
                token,
                payload,
            } => {
                let (target_bit, target) = match to {
                    SignalTarget::Pid(p) => (0, F::Pid(p)),
                    SignalTarget::Name(a) => (altact::NAME, F::Atom(a)),
                    SignalTarget::Alias(r) => (altact::ALIAS, F::Ref(r)),
                };
                let mut bits = target_bit;
                if *priority {
                    bits |= altact::PRIO;
                }
                if *exit {
                    bits |= altact::EXIT;
                }
                Layout::new(
                    op::ALTACT_SIG_SEND,
                    &[F::Int(altact_bits(bits, token)), F::Pid(from), target],
                    token,
                    Tail::Payload(payload),
                )
            }
            Control::UnlinkId { id, from, to } => Layout::new(
                op::UNLINK_ID,
                &[F::Id(*id), F::Pid(from), F::Pid(to)],
                &None,
                Tail::None,
            ),
            Control::UnlinkIdAck { id, from, to } => Layout::new(
                op::UNLINK_ID_ACK,
                &[F::Id(*id), F::Pid(from), F::Pid(to)],
                &None,
                Tail::None,
            ),
        }
    }
}
