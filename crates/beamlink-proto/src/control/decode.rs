//! Control tuple and payload to [`Control`], with the arity and element checks the BEAM
//! makes in `erts_net_message` (`erts/emulator/beam/dist.c`) before it acts on a message.

use super::{Control, ControlError, ProcessRef, SignalTarget, altact, op};
use crate::term::{Atom, Pid, Reference, Term};

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
                | op::ALTACT_SIG_SEND
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
            op::ALTACT_SIG_SEND => altact_sig(&mut f, payload)?,
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
}

/// `{37, Flags, From, To}` or `{37, Flags, From, To, Token}`, checked as
/// `erts_net_message` (`erts/emulator/beam/dist.c`) checks it: the tuple may grow in later
/// releases, so only a lower bound on its size; `Flags` is a non-negative integer of any size
/// whose low byte holds the defined bits (the others are ignored); ALIAS and NAME exclude
/// each other and say what `To` must be.
fn altact_sig(f: &mut Fields<'_>, payload: Term) -> Result<Control, ControlError> {
    let arity = f.elements.len();
    if arity < 4 {
        return Err(ControlError::WrongArity { op: f.op, arity });
    }
    let bits = match f.take(1) {
        Term::Int(v) if v >= 0 => v as u64 & 0xFF,
        Term::Big(b) if !b.negative => b.magnitude.first().copied().unwrap_or(0).into(),
        _ => return Err(f.bad("flags")),
    };
    let from = f.pid(2, "from pid")?;
    let token = if bits & altact::TOKEN == 0 {
        None
    } else if arity < 5 {
        return Err(ControlError::WrongArity { op: f.op, arity });
    } else {
        Some(f.take(4))
    };
    let to = match (bits & altact::ALIAS != 0, bits & altact::NAME != 0) {
        (true, true) => return Err(f.bad("target flags")),
        (true, false) => SignalTarget::Alias(f.reference(3, "alias")?),
        (false, true) => SignalTarget::Name(f.atom(3, "registered name")?),
        (false, false) => SignalTarget::Pid(f.pid(3, "to pid")?),
    };
    let priority = bits & altact::PRIO != 0;
    let exit = bits & altact::EXIT != 0;
    // Signals an older operation expresses decode as that operation, so a receiver handles
    // an OTP 28 alias send (the form every gen_server reply to us takes) like ALIAS_SEND.
    Ok(match (priority, exit, to) {
        (false, false, SignalTarget::Pid(to)) => Control::Send {
            from: Some(from),
            to,
            token,
            message: payload,
        },
        (false, false, SignalTarget::Name(to)) => Control::RegSend {
            from,
            to,
            token,
            message: payload,
        },
        (false, false, SignalTarget::Alias(alias)) => Control::AliasSend {
            from,
            alias,
            token,
            message: payload,
        },
        (false, true, SignalTarget::Pid(to)) => Control::Exit2 {
            from,
            to,
            token,
            reason: payload,
        },
        (priority, exit, to) => Control::AltactSig {
            from,
            to,
            priority,
            exit,
            token,
            payload,
        },
    })
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
