//! Our side when we dial: `dist_util:handshake_we_started/1`.
//!
//! Feed each received message (without its 2-byte length) to [`Initiator::receive`];
//! whatever must be sent is appended to `out`. Our challenge is an argument: the caller
//! draws it from the OS CSPRNG, a test passes the one a recorded exchange used.

use super::{Established, HandshakeError, LocalNode, Message, Status, Step};
use crate::digest::Digest;
use crate::flags::DistFlags;
use crate::node_name::NodeName;
use bytes::BytesMut;

/// What the caller does after [`Initiator::receive`].
#[derive(Debug, PartialEq, Eq)]
#[must_use]
pub enum InitiatorStep {
    /// Send what was written to `out` and wait for the next message.
    Continue,
    /// The acceptor has a live connection to our name: call [`Initiator::answer_alive`].
    Alive,
    /// Send what was written to `out`; the connection is up.
    Done(Established),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InitiatorState {
    Start,
    AwaitStatus,
    AwaitAliveDecision,
    AwaitChallenge,
    AwaitAck,
    Finished,
}

/// Our side when we dial (`handshake_we_started`).
#[derive(Debug)]
pub struct Initiator {
    local: LocalNode,
    peer: NodeName,
    our_challenge: u32,
    state: InitiatorState,
    peer_flags: DistFlags,
    peer_creation: u32,
}

impl Initiator {
    /// A handshake towards `peer`, the exact name we dial.
    pub fn new(local: LocalNode, peer: NodeName, our_challenge: u32) -> Initiator {
        Initiator {
            local,
            peer,
            our_challenge,
            state: InitiatorState::Start,
            peer_flags: DistFlags::EMPTY,
            peer_creation: 0,
        }
    }

    /// The name we dialled.
    pub fn peer(&self) -> &NodeName {
        &self.peer
    }

    /// Writes our name message. Call once, first.
    pub fn start(&mut self, out: &mut BytesMut) {
        debug_assert_eq!(self.state, InitiatorState::Start);
        Message::Name {
            flags: self.local.flags,
            creation: self.local.creation,
            name: self.local.name.clone(),
        }
        .encode(out);
        self.state = InitiatorState::AwaitStatus;
    }

    /// The step we wait for (for timeout messages).
    pub fn awaiting(&self) -> Step {
        match self.state {
            InitiatorState::Start | InitiatorState::AwaitStatus => Step::Status,
            InitiatorState::AwaitAliveDecision => Step::AliveAnswer,
            InitiatorState::AwaitChallenge => Step::Challenge,
            InitiatorState::AwaitAck | InitiatorState::Finished => Step::ChallengeAck,
        }
    }

    /// The error to report when the peer closes the connection now.
    pub fn closed_by_peer(&self) -> HandshakeError {
        HandshakeError::ClosedByPeer {
            step: self.awaiting(),
        }
    }

    /// Handles one message from the acceptor.
    pub fn receive(
        &mut self,
        msg: &[u8],
        out: &mut BytesMut,
    ) -> Result<InitiatorStep, HandshakeError> {
        let result = self.step(msg, out);
        if result.is_err() {
            self.state = InitiatorState::Finished;
        }
        result
    }

    fn step(&mut self, msg: &[u8], out: &mut BytesMut) -> Result<InitiatorStep, HandshakeError> {
        match self.state {
            InitiatorState::AwaitStatus => match Message::decode_status(msg)? {
                Message::Status(Status::Ok | Status::OkSimultaneous) => {
                    self.state = InitiatorState::AwaitChallenge;
                    Ok(InitiatorStep::Continue)
                }
                Message::Status(Status::Nok) => Err(HandshakeError::SimultaneousLost),
                Message::Status(Status::NotAllowed) => Err(HandshakeError::NotAllowed),
                Message::Status(Status::Alive) => {
                    self.state = InitiatorState::AwaitAliveDecision;
                    Ok(InitiatorStep::Alive)
                }
                _ => Err(HandshakeError::UnexpectedNamed),
            },
            InitiatorState::AwaitChallenge => {
                let Message::Challenge {
                    flags,
                    challenge,
                    creation,
                    name,
                } = Message::decode_challenge(msg)?
                else {
                    return Err(HandshakeError::Unexpected {
                        step: Step::Challenge,
                    });
                };
                if name != self.peer {
                    return Err(HandshakeError::NameMismatch {
                        expected: self.peer.clone(),
                        got: name,
                    });
                }
                let missing = DistFlags::missing_mandatory(flags);
                if missing != DistFlags::EMPTY {
                    return Err(HandshakeError::PeerMissingFlags { missing });
                }
                self.peer_flags = flags;
                self.peer_creation = creation;
                Message::ChallengeReply {
                    challenge: self.our_challenge,
                    digest: Digest::compute(&self.local.cookie, challenge),
                }
                .encode(out);
                self.state = InitiatorState::AwaitAck;
                Ok(InitiatorStep::Continue)
            }
            InitiatorState::AwaitAck => {
                let Message::ChallengeAck { digest } = Message::decode_challenge_ack(msg)? else {
                    return Err(HandshakeError::Unexpected {
                        step: Step::ChallengeAck,
                    });
                };
                if !Digest::verify(&self.local.cookie, self.our_challenge, &digest) {
                    return Err(HandshakeError::CookieMismatch {
                        step: Step::ChallengeAck,
                    });
                }
                self.state = InitiatorState::Finished;
                Ok(InitiatorStep::Done(Established {
                    peer: self.peer.clone(),
                    peer_flags: self.peer_flags,
                    peer_creation: self.peer_creation,
                    flags: DistFlags::negotiate(self.local.flags, self.peer_flags),
                }))
            }
            InitiatorState::Start
            | InitiatorState::AwaitAliveDecision
            | InitiatorState::Finished => Err(HandshakeError::Unexpected {
                step: self.awaiting(),
            }),
        }
    }

    /// Answers `alive`: `true` if our old connection to the acceptor is dead (we have no
    /// connection to it), `false` to give up.
    pub fn answer_alive(&mut self, dead: bool, out: &mut BytesMut) -> Result<(), HandshakeError> {
        if self.state != InitiatorState::AwaitAliveDecision {
            return Err(HandshakeError::Unexpected {
                step: Step::AliveAnswer,
            });
        }
        Message::AliveAnswer(dead).encode(out);
        if dead {
            self.state = InitiatorState::AwaitChallenge;
            Ok(())
        } else {
            self.state = InitiatorState::Finished;
            Err(HandshakeError::AlreadyConnected)
        }
    }
}
