//! The handshake state machines, as `dist_util.erl` runs them: `handshake_we_started/1`
//! ([`Initiator`]) and `handshake_other_started/1` ([`Acceptor`]).
//!
//! Feed each received message (without its 2-byte length) to `receive`; whatever must be
//! sent is appended to `out`. Our challenge is an argument: the caller draws it from the OS
//! CSPRNG, a test passes the one a recorded exchange used.

use super::{Message, MessageError, Status, Step};
use crate::digest::{Cookie, Digest};
use crate::flags::DistFlags;
use crate::node_name::NodeName;
use bytes::BytesMut;
use std::fmt;

/// What the handshake needs to know about our own node.
#[derive(Clone, Debug)]
pub struct LocalNode {
    /// Our full name.
    pub name: NodeName,
    /// The flags we offer.
    pub flags: DistFlags,
    /// Our creation (from the EPMD registration).
    pub creation: u32,
    /// The cookie both sides must share.
    pub cookie: Cookie,
}

/// The outcome of a completed handshake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Established {
    /// The peer's name.
    pub peer: NodeName,
    /// The flags the peer offered.
    pub peer_flags: DistFlags,
    /// The peer's creation.
    pub peer_creation: u32,
    /// The flags the connection uses: what both sides offer.
    pub flags: DistFlags,
}

/// Why a handshake failed. `Display` reads as a sentence about the peer, for messages such
/// as "minotaur@10.0.1.5 rejected our challenge reply: cookie mismatch".
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The peer sent a malformed message.
    Malformed(MessageError),
    /// The peer sent a message this step does not take.
    Unexpected {
        /// The step we were in.
        step: Step,
    },
    /// The peer closed the connection while we waited for `step`.
    ClosedByPeer {
        /// The step we were waiting for.
        step: Step,
    },
    /// The peer answered with `not_allowed`.
    NotAllowed,
    /// The peer answered `nok`: its own connection attempt towards us wins.
    SimultaneousLost,
    /// The peer already has a live connection to our name and we said it is not dead.
    AlreadyConnected,
    /// The peer assigned us a name, which we never ask for.
    UnexpectedNamed,
    /// The challenge came from a node with another name than the one we dialled.
    NameMismatch {
        /// The name we dialled.
        expected: NodeName,
        /// The name in the challenge.
        got: NodeName,
    },
    /// The peer lacks flags the protocol requires.
    PeerMissingFlags {
        /// The missing flags.
        missing: DistFlags,
    },
    /// The peer's digest does not match ours.
    CookieMismatch {
        /// The step that carried the wrong digest.
        step: Step,
    },
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::Malformed(e) => write!(f, "sent a malformed handshake message: {e}"),
            HandshakeError::Unexpected { step } => {
                write!(f, "sent a message out of turn in the {step} step")
            }
            HandshakeError::ClosedByPeer {
                step: Step::ChallengeAck,
            } => f.write_str("rejected our challenge reply: cookie mismatch"),
            HandshakeError::ClosedByPeer { step: Step::Status } => f.write_str(
                "closed the connection without answering our name \
                 (it refused the name, or it is not an Erlang node)",
            ),
            HandshakeError::ClosedByPeer { step } => {
                write!(f, "closed the connection while we waited for its {step}")
            }
            HandshakeError::NotAllowed => f.write_str(
                "refused the connection (status not_allowed: it requires flags we lack \
                 or its allow list excludes us)",
            ),
            HandshakeError::SimultaneousLost => f.write_str(
                "is connecting to us at the same time and its attempt wins (status nok)",
            ),
            HandshakeError::AlreadyConnected => {
                f.write_str("already has a live connection to a node with our name")
            }
            HandshakeError::UnexpectedNamed => {
                f.write_str("assigned us a dynamic name, which we did not ask for")
            }
            HandshakeError::NameMismatch { expected, got } => write!(
                f,
                "answered as {got} although we dialled {expected} \
                 (a node must be dialled by the exact name it uses)"
            ),
            HandshakeError::PeerMissingFlags { missing } => {
                let names = missing.names();
                let since = names_since(*missing);
                write!(f, "cannot handle {names:?}, required{since}")
            }
            HandshakeError::CookieMismatch { step } => {
                write!(f, "sent a wrong {step}: cookie mismatch")
            }
        }
    }
}

fn names_since(missing: DistFlags) -> String {
    let newest = crate::flags::FLAG_NAMES
        .iter()
        .filter(|(f, _)| missing.contains(*f))
        .filter_map(|(f, _)| DistFlags::required_since(*f))
        .max();
    match newest {
        Some(otp) => format!(" since OTP {otp}"),
        None => String::new(),
    }
}

impl std::error::Error for HandshakeError {}

impl From<MessageError> for HandshakeError {
    fn from(e: MessageError) -> HandshakeError {
        HandshakeError::Malformed(e)
    }
}

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
                        (name, flags)
                    }
                    Message::OldName { flags, name } => {
                        self.old_name_message = true;
                        (name, flags)
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
                self.peer = Some(peer.clone());
                self.peer_flags = flags;
                if missing != DistFlags::EMPTY {
                    Message::Status(Status::NotAllowed).encode(out);
                    return Err(HandshakeError::PeerMissingFlags { missing });
                }
                self.state = AcceptorState::AwaitStatusDecision;
                Ok(AcceptorStep::NameReceived { peer, flags })
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
                    flags: DistFlags::negotiate(self.local.flags, self.peer_flags),
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
            Status::Ok | Status::OkSimultaneous => None,
            Status::Alive => Some(AcceptorState::AwaitAliveAnswer),
            Status::Nok | Status::NotAllowed | Status::Named { .. } => {
                Some(AcceptorState::Finished)
            }
        };
        Message::Status(status).encode(out);
        match next {
            None => self.send_challenge(out),
            Some(state) => self.state = state,
        }
        Ok(())
    }

    fn send_challenge(&mut self, out: &mut BytesMut) {
        Message::Challenge {
            flags: self.local.flags,
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

#[cfg(test)]
mod tests {
    use super::super::take_packet;
    use super::*;

    fn local(name: &str, cookie: &str, creation: u32) -> LocalNode {
        LocalNode {
            name: NodeName::parse(name).unwrap(),
            flags: DistFlags::BEAMLINK_DEFAULT,
            creation,
            cookie: Cookie::new(cookie),
        }
    }

    /// Runs both machines against each other; returns what each side ended with.
    fn run(
        a_cookie: &str,
        b_cookie: &str,
        dial: &str,
    ) -> (
        Result<Established, HandshakeError>,
        Option<Result<Established, HandshakeError>>,
    ) {
        let mut a = Initiator::new(
            local("a@10.0.0.1", a_cookie, 11),
            NodeName::parse(dial).unwrap(),
            0xA,
        );
        let mut b = Acceptor::new(local("b@10.0.0.2", b_cookie, 22), 0xB);
        let (mut to_b, mut to_a) = (BytesMut::new(), BytesMut::new());
        a.start(&mut to_b);
        let mut a_result = None;
        let mut b_result = None;
        for _ in 0..10 {
            while let Some(p) = take_packet(&mut to_b) {
                match b.receive(&p, &mut to_a) {
                    Ok(AcceptorStep::NameReceived { .. }) => {
                        b.send_status(Status::Ok, &mut to_a).unwrap()
                    }
                    Ok(AcceptorStep::Done(e)) => b_result = Some(Ok(e)),
                    Ok(_) => {}
                    Err(e) => b_result = Some(Err(e)),
                }
            }
            if b_result.as_ref().is_some_and(|r| r.is_err()) {
                // The BEAM closes silently on a bad digest.
                to_a.clear();
                a_result.get_or_insert(Err(a.closed_by_peer()));
            }
            while let Some(p) = take_packet(&mut to_a) {
                match a.receive(&p, &mut to_b) {
                    Ok(InitiatorStep::Done(e)) => a_result = Some(Ok(e)),
                    Ok(_) => {}
                    Err(e) => a_result = Some(Err(e)),
                }
            }
        }
        (a_result.unwrap(), b_result)
    }

    #[test]
    fn both_sides_agree_on_the_connection() {
        let (a, b) = run("c", "c", "b@10.0.0.2");
        let (a, b) = (a.unwrap(), b.unwrap().unwrap());
        assert_eq!(a.peer.as_str(), "b@10.0.0.2");
        assert_eq!(b.peer.as_str(), "a@10.0.0.1");
        assert_eq!((a.peer_creation, b.peer_creation), (22, 11));
        assert_eq!(a.flags, b.flags);
        assert!(a.flags.is_hidden());
    }

    #[test]
    fn wrong_cookie_is_refused_by_the_acceptor() {
        let (a, b) = run("c", "other", "b@10.0.0.2");
        assert_eq!(
            b.unwrap().unwrap_err(),
            HandshakeError::CookieMismatch {
                step: Step::ChallengeReply
            }
        );
        let a = a.unwrap_err();
        assert_eq!(
            a.to_string(),
            "rejected our challenge reply: cookie mismatch"
        );
    }

    #[test]
    fn the_challenge_must_come_from_the_name_we_dialled() {
        let (a, _) = run("c", "c", "b@localhost.local");
        assert!(matches!(a, Err(HandshakeError::NameMismatch { .. })));
    }

    #[test]
    fn peers_missing_otp26_flags_get_not_allowed() {
        let mut b = Acceptor::new(local("b@h.x", "c", 1), 5);
        let mut msg = BytesMut::new();
        Message::Name {
            flags: DistFlags::MANDATORY_25,
            creation: 3,
            name: NodeName::parse("old@h.x").unwrap(),
        }
        .encode(&mut msg);
        let p = take_packet(&mut msg).unwrap();
        let mut out = BytesMut::new();
        let err = b.receive(&p, &mut out).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot handle [\"UNLINK_ID\", \"V4_NC\"], required since OTP 26"
        );
        let status = take_packet(&mut out).unwrap();
        assert_eq!(&status[..], b"snot_allowed");
    }

    #[test]
    fn old_name_message_is_completed_by_a_complement() {
        let mut b = Acceptor::new(local("b@h.x", "c", 1), 5);
        let mut msg = BytesMut::new();
        let flags = DistFlags::BEAMLINK_DEFAULT;
        Message::OldName {
            flags,
            name: NodeName::parse("j@h.x").unwrap(),
        }
        .encode(&mut msg);
        let mut out = BytesMut::new();
        let step = b
            .receive(&take_packet(&mut msg).unwrap(), &mut out)
            .unwrap();
        assert!(matches!(step, AcceptorStep::NameReceived { .. }));
        b.send_status(Status::Ok, &mut out).unwrap();
        assert_eq!(b.awaiting(), Step::Complement);
        Message::Complement {
            flags_high: (flags.0 >> 32) as u32,
            creation: 99,
        }
        .encode(&mut msg);
        let step = b
            .receive(&take_packet(&mut msg).unwrap(), &mut out)
            .unwrap();
        assert_eq!(step, AcceptorStep::Continue);
        Message::ChallengeReply {
            challenge: 8,
            digest: Digest::compute(&Cookie::new("c"), 5),
        }
        .encode(&mut msg);
        let AcceptorStep::Done(e) = b
            .receive(&take_packet(&mut msg).unwrap(), &mut out)
            .unwrap()
        else {
            panic!("not done")
        };
        assert_eq!(e.peer_creation, 99);
        assert_eq!(e.peer_flags, flags);
    }

    #[test]
    fn alive_is_answered_and_replaces_the_old_link() {
        let mut b = Acceptor::new(local("b@h.x", "c", 1), 5);
        let mut a = Initiator::new(local("a@h.x", "c", 2), NodeName::parse("b@h.x").unwrap(), 6);
        let (mut to_b, mut to_a) = (BytesMut::new(), BytesMut::new());
        a.start(&mut to_b);
        let step = b
            .receive(&take_packet(&mut to_b).unwrap(), &mut to_a)
            .unwrap();
        assert!(matches!(step, AcceptorStep::NameReceived { .. }));
        b.send_status(Status::Alive, &mut to_a).unwrap();
        let step = a
            .receive(&take_packet(&mut to_a).unwrap(), &mut to_b)
            .unwrap();
        assert_eq!(step, InitiatorStep::Alive);
        a.answer_alive(true, &mut to_b).unwrap();
        let step = b
            .receive(&take_packet(&mut to_b).unwrap(), &mut to_a)
            .unwrap();
        assert_eq!(step, AcceptorStep::ReplaceOld);
        assert_eq!(b.awaiting(), Step::ChallengeReply);
    }

    #[test]
    fn nok_and_not_allowed_end_the_initiator() {
        for (status, err) in [
            (Status::Nok, HandshakeError::SimultaneousLost),
            (Status::NotAllowed, HandshakeError::NotAllowed),
        ] {
            let mut a =
                Initiator::new(local("a@h.x", "c", 2), NodeName::parse("b@h.x").unwrap(), 6);
            let mut out = BytesMut::new();
            a.start(&mut out);
            out.clear();
            let mut msg = BytesMut::new();
            Message::Status(status).encode(&mut msg);
            let p = take_packet(&mut msg).unwrap();
            assert_eq!(a.receive(&p, &mut out), Err(err));
        }
    }

    #[test]
    fn messages_out_of_turn_are_errors_not_panics() {
        let mut a = Initiator::new(local("a@h.x", "c", 2), NodeName::parse("b@h.x").unwrap(), 6);
        let mut out = BytesMut::new();
        assert!(a.receive(b"sok", &mut out).is_err());
        let mut b = Acceptor::new(local("b@h.x", "c", 1), 5);
        assert!(b.send_status(Status::Ok, &mut out).is_err());
        assert!(b.receive(b"r", &mut out).is_err());
        assert!(b.receive(b"N", &mut out).is_err());
    }
}
