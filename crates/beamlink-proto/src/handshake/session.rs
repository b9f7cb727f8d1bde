//! What a handshake starts from and ends with: our node's identity, the established
//! connection's parameters, and the handshake's error (`dist_util.erl` reports the same
//! failures through `?shutdown2`).

use super::{MessageError, Step};
use crate::digest::Cookie;
use crate::flags::DistFlags;
use crate::node_name::NodeName;
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

impl std::error::Error for HandshakeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HandshakeError::Malformed(e) => Some(e),
            _ => None,
        }
    }
}

impl From<MessageError> for HandshakeError {
    fn from(e: MessageError) -> HandshakeError {
        HandshakeError::Malformed(e)
    }
}
