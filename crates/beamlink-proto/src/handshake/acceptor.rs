//! Our side when a peer dials us: `dist_util:handshake_other_started/1`.
//!
//! Feed each received message (without its 2-byte length) to [`Acceptor::receive`];
//! whatever must be sent is appended to `out`. Our challenge is an argument, as for the
//! initiator.

use super::{Established, HandshakeError, LocalNode, Message, Status, Step};
use crate::digest::Digest;
use crate::flags::DistFlags;
use crate::node_name::NodeName;
use bytes::BytesMut;

/// What the caller does after [`Acceptor::receive`].
#[derive(Debug, PartialEq, Eq)]
#[must_use]
pub enum AcceptorStep {
    /// The initiator named itself: decide and call [`Acceptor::send_status`].
    NameReceived {
        /// Its name.
        peer: NodeName,
        /// Its flags (the low 32 bits only, after an old `'n'` name).
        flags: DistFlags,
    },
    /// The initiator asked to be named (`DFLAG_NAME_ME`, a node started with
    /// `-name undefined`): choose a name on `host` and a creation, then call
    /// [`Acceptor::send_named`] (or [`Acceptor::send_status`] to refuse).
    NameMe {
        /// The host it sent, to which the name must belong.
        host: String,
        /// Its flags.
        flags: DistFlags,
    },
    /// Send what was written to `out` and wait for the next message.
    Continue,
    /// The initiator confirmed that its old connection is dead: drop ours to it, then
    /// continue (what was written to `out` must be sent).
    ReplaceOld,
    /// Send what was written to `out`; the connection is up.
    Done(Established),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AcceptorState {
    AwaitName,
    AwaitStatusDecision,
    AwaitAliveAnswer,
    AwaitComplement,
    AwaitReply,
    Finished,
}

/// Our side when a peer dials us (`handshake_other_started`).
#[derive(Debug)]
pub struct Acceptor {
    local: LocalNode,
    our_challenge: u32,
    state: AcceptorState,
    peer: Option<NodeName>,
    /// The host of an initiator that asked to be named, until it is.
    name_me_host: Option<String>,
    peer_flags: DistFlags,
    peer_creation: u32,
    old_name_message: bool,
}

impl Acceptor {
    /// A handshake for a connection we accepted.
    pub fn new(local: LocalNode, our_challenge: u32) -> Acceptor {
        Acceptor {
            local,
            our_challenge,
            state: AcceptorState::AwaitName,
            peer: None,
            name_me_host: None,
            peer_flags: DistFlags::EMPTY,
            peer_creation: 0,
            old_name_message: false,
        }
    }

    /// The peer's name, once it has sent it.
    pub fn peer(&self) -> Option<&NodeName> {
        self.peer.as_ref()
    }

    /// The step we wait for (for timeout messages).
    pub fn awaiting(&self) -> Step {
        match self.state {
            AcceptorState::AwaitName => Step::Name,
            AcceptorState::AwaitStatusDecision => Step::Status,
            AcceptorState::AwaitAliveAnswer => Step::AliveAnswer,
            AcceptorState::AwaitComplement => Step::Complement,
            AcceptorState::AwaitReply | AcceptorState::Finished => Step::ChallengeReply,
        }
    }

    /// The error to report when the peer closes the connection now.
    pub fn closed_by_peer(&self) -> HandshakeError {
        HandshakeError::ClosedByPeer {
            step: self.awaiting(),
        }
    }

    /// Handles one message from the initiator.
    pub fn receive(
        &mut self,
        msg: &[u8],
        out: &mut BytesMut,
    ) -> Result<AcceptorStep, HandshakeError> {
        let result = self.step(msg, out);
        if result.is_err() {
            self.state = AcceptorState::Finished;
        }
        result
    }

    fn step(&mut self, msg: &[u8], out: &mut BytesMut) -> Result<AcceptorStep, HandshakeError> {
        match self.state {
            AcceptorState::AwaitName => {
                let (peer, flags) = match Message::decode_name(msg)? {
                    Message::Name {
                        flags,
                        creation,
                        name,
                    } => {
                        self.peer_creation = creation;
                        (Some(name), flags)
                    }
                    Message::NameMe {
                        flags,
                        creation,
                        host,
                    } => {
                        self.peer_creation = creation;
                        self.name_me_host = Some(host);
                        (None, flags)
                    }
                    Message::OldName { flags, name } => {
                        self.old_name_message = true;
                        (Some(name), flags)
                    }
                    _ => return Err(HandshakeError::Unexpected { step: Step::Name }),
                };
                // Before the complement only the low 32 bits are known (check_dflags/2).
                let required = if self.old_name_message {
                    DistFlags(DistFlags::MANDATORY.0 & 0xFFFF_FFFF)
                } else {
                    DistFlags::MANDATORY
                };
                let missing = flags.expand_digest().missing(required);
                self.peer = peer.clone();
                self.peer_flags = flags;
                if missing != DistFlags::EMPTY {
                    Message::Status(Status::NotAllowed).encode(out);
                    return Err(HandshakeError::PeerMissingFlags { missing });
                }
                self.state = AcceptorState::AwaitStatusDecision;
                match (peer, &self.name_me_host) {
                    (Some(peer), _) => Ok(AcceptorStep::NameReceived { peer, flags }),
                    (None, Some(host)) => Ok(AcceptorStep::NameMe {
                        host: host.clone(),
                        flags,
                    }),
                    (None, None) => Err(HandshakeError::Unexpected { step: Step::Name }),
                }
            }
            AcceptorState::AwaitAliveAnswer => match Message::decode_alive_answer(msg)? {
                Message::AliveAnswer(true) => {
                    self.send_challenge(out);
                    Ok(AcceptorStep::ReplaceOld)
                }
                _ => Err(HandshakeError::AlreadyConnected),
            },
            AcceptorState::AwaitComplement => {
                let Message::Complement {
                    flags_high,
                    creation,
                } = Message::decode_complement(msg)?
                else {
                    return Err(HandshakeError::Unexpected {
                        step: Step::Complement,
                    });
                };
                self.peer_flags = DistFlags(self.peer_flags.0 | ((flags_high as u64) << 32));
                self.peer_creation = creation;
                let missing = DistFlags::missing_mandatory(self.peer_flags);
                if missing != DistFlags::EMPTY {
                    return Err(HandshakeError::PeerMissingFlags { missing });
                }
                self.state = AcceptorState::AwaitReply;
                Ok(AcceptorStep::Continue)
            }
            AcceptorState::AwaitReply => {
                let Message::ChallengeReply { challenge, digest } =
                    Message::decode_challenge_reply(msg)?
                else {
                    return Err(HandshakeError::Unexpected {
                        step: Step::ChallengeReply,
                    });
                };
                if !Digest::verify(&self.local.cookie, self.our_challenge, &digest) {
                    return Err(HandshakeError::CookieMismatch {
                        step: Step::ChallengeReply,
                    });
                }
                Message::ChallengeAck {
                    digest: Digest::compute(&self.local.cookie, challenge),
                }
                .encode(out);
                self.state = AcceptorState::Finished;
                let peer = self.peer.clone().ok_or(HandshakeError::Unexpected {
                    step: Step::ChallengeReply,
                })?;
                Ok(AcceptorStep::Done(Established {
                    peer,
                    peer_flags: self.peer_flags,
                    peer_creation: self.peer_creation,
                    flags: DistFlags::negotiate(self.offered_flags(), self.peer_flags),
                }))
            }
            AcceptorState::AwaitStatusDecision | AcceptorState::Finished => {
                Err(HandshakeError::Unexpected {
                    step: self.awaiting(),
                })
            }
        }
    }

    /// Sends the status decided after [`AcceptorStep::NameReceived`], and the challenge
    /// when the status lets the initiator go on. After `Nok` or `NotAllowed` the caller
    /// closes the connection once `out` is sent.
    pub fn send_status(
        &mut self,
        status: Status,
        out: &mut BytesMut,
    ) -> Result<(), HandshakeError> {
        if self.state != AcceptorState::AwaitStatusDecision {
            return Err(HandshakeError::Unexpected { step: Step::Status });
        }
        let next = match status {
            // An unnamed initiator goes on only once it is named (send_named).
            Status::Ok | Status::OkSimultaneous | Status::Alive | Status::Named { .. }
                if self.peer.is_none() =>
            {
                return Err(HandshakeError::Unexpected { step: Step::Status });
            }
            Status::Ok | Status::OkSimultaneous => None,
            Status::Alive => Some(AcceptorState::AwaitAliveAnswer),
            // `named:` is only for initiators that asked for it; see send_named.
            Status::Named { .. } => return Err(HandshakeError::Unexpected { step: Step::Status }),
            Status::Nok | Status::NotAllowed => Some(AcceptorState::Finished),
        };
        Message::Status(status).encode(out);
        match next {
            None => self.send_challenge(out),
            Some(state) => self.state = state,
        }
        Ok(())
    }

    /// Names an initiator that asked for it ([`AcceptorStep::NameMe`]): sends the `named:`
    /// status with `name` and `creation`, then the challenge, as `dist_util:mark_pending/1`
    /// does when `net_kernel` answers `{ok, DynNodeName, Creation}`. The name must be on
    /// the host the initiator sent (it checks); the caller picks the name and creation
    /// (`net_kernel` uses a random base-36 alive part and a fresh creation) so that no
    /// connection uses the name already.
    pub fn send_named(
        &mut self,
        name: NodeName,
        creation: u32,
        out: &mut BytesMut,
    ) -> Result<(), HandshakeError> {
        let host_matches = self.name_me_host.as_deref() == Some(name.host());
        if self.state != AcceptorState::AwaitStatusDecision || self.peer.is_some() || !host_matches
        {
            return Err(HandshakeError::Unexpected { step: Step::Status });
        }
        Message::Status(Status::Named {
            name: name.as_str().to_string(),
            creation,
        })
        .encode(out);
        self.peer = Some(name);
        self.peer_creation = creation;
        self.name_me_host = None;
        self.send_challenge(out);
        Ok(())
    }

    /// Our flags as the challenge carries them: with `NAME_ME` echoed to an initiator we
    /// named, which checks that the chosen flags say so before it takes the name
    /// (`dist_util:do_setnode/1`; `make_this_flags` adds it on a BEAM acceptor).
    fn offered_flags(&self) -> DistFlags {
        if self.peer_flags.contains(DistFlags::NAME_ME) {
            self.local.flags | DistFlags::NAME_ME
        } else {
            self.local.flags
        }
    }

    fn send_challenge(&mut self, out: &mut BytesMut) {
        Message::Challenge {
            flags: self.offered_flags(),
            challenge: self.our_challenge,
            creation: self.local.creation,
            name: self.local.name.clone(),
        }
        .encode(out);
        self.state = if self.old_name_message {
            AcceptorState::AwaitComplement
        } else {
            AcceptorState::AwaitReply
        };
    }
}
