//! The distribution handshake (`erts/doc/guides/erl_dist_protocol.md`, "Distribution
//! Handshake"; `lib/kernel/src/dist_util.erl`): its messages, their framing (a 2-byte length
//! on plain TCP, 4 bytes inside TLS: [`Framing`]), and the two state machines ([`Initiator`],
//! [`Acceptor`]).
//!
//! Version 6 only: we send `'N'`; as acceptor we also take the old `'n'` name followed by
//! the `'c'` complement, as OTP 25.3+ does.
//!
//! `DFLAG_NAME_ME` (a node started with `-name undefined@host -dist_listen false`): its
//! `'N'` carries only a host ([`Message::NameMe`]); the acceptor answers `'s'`
//! `named:` with the full name and a creation it chose, then its challenge with `NAME_ME`
//! among its flags (`dist_util:mark_pending/1`, `send_status/2`, `do_setnode/1`;
//! `net_kernel:generate_node_name/2`). The name and creation are the caller's to choose:
//! see [`Acceptor::send_named`].

mod acceptor;
mod codec;
#[cfg(test)]
mod codec_tests;
mod framing;
mod initiator;
#[cfg(test)]
mod machine_tests;
mod session;

pub use acceptor::{Acceptor, AcceptorStep};
pub use framing::{Framing, FramingError};
pub use initiator::{Initiator, InitiatorStep};
pub use session::{Established, HandshakeError, LocalNode};

use super::digest::Digest;
use super::flags::DistFlags;
use super::node_name::{NodeName, NodeNameError};
use bytes::{Bytes, BytesMut};
use std::fmt;

/// Which handshake step a message or an error belongs to, for error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Step {
    /// The initiator's name message (`'N'`/`'n'`).
    Name,
    /// The acceptor's status (`'s'`).
    Status,
    /// The initiator's answer to `alive`.
    AliveAnswer,
    /// The acceptor's challenge (`'N'`).
    Challenge,
    /// The initiator's flags complement (`'c'`), after an old `'n'` name.
    Complement,
    /// The initiator's challenge reply (`'r'`).
    ChallengeReply,
    /// The acceptor's challenge ack (`'a'`).
    ChallengeAck,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Name => "name",
            Step::Status => "status",
            Step::AliveAnswer => "alive answer",
            Step::Challenge => "challenge",
            Step::Complement => "complement",
            Step::ChallengeReply => "challenge reply",
            Step::ChallengeAck => "challenge ack",
        })
    }
}

/// A malformed handshake message.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MessageError {
    /// The message is empty or shorter than its fixed fields.
    TooShort {
        /// The step being decoded.
        step: Step,
        /// Bytes present.
        len: usize,
    },
    /// The first byte is not a tag this step takes.
    UnexpectedTag {
        /// The step being decoded.
        step: Step,
        /// The tag received.
        tag: u8,
    },
    /// A name length field points past the end of the message.
    NameLength {
        /// The step being decoded.
        step: Step,
    },
    /// The name is not `alive@host` (or not UTF-8).
    BadName {
        /// The step being decoded.
        step: Step,
        /// What is wrong with it; `None` when it is not UTF-8.
        reason: Option<NodeNameError>,
    },
    /// A status text that no OTP release sends.
    UnknownStatus {
        /// The text, lossily decoded and cut to 64 bytes.
        text: String,
    },
    /// The old `'n'` name message with a version other than 5.
    OldVersion {
        /// The version field.
        version: u16,
    },
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessageError::TooShort { step, len } => {
                write!(f, "{step} message of {len} bytes is too short")
            }
            MessageError::UnexpectedTag { step, tag } => {
                write!(
                    f,
                    "unexpected tag {tag} ({:?}) in the {step} step",
                    *tag as char
                )
            }
            MessageError::NameLength { step } => {
                write!(f, "name length points past the end of the {step} message")
            }
            MessageError::BadName {
                step,
                reason: Some(r),
            } => {
                write!(f, "bad node name in the {step} message: {r}")
            }
            MessageError::BadName { step, reason: None } => {
                write!(f, "node name in the {step} message is not UTF-8")
            }
            MessageError::UnknownStatus { text } => write!(f, "unknown status {text:?}"),
            MessageError::OldVersion { version } => {
                write!(
                    f,
                    "old-style name message with version {version} (only 5 exists)"
                )
            }
        }
    }
}

impl std::error::Error for MessageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MessageError::BadName {
                reason: Some(r), ..
            } => Some(r),
            _ => None,
        }
    }
}

/// Handshake status values (`dist_util.erl` `mark_pending`, `recv_status`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Status {
    /// Go on.
    Ok,
    /// Go on; the acceptor dropped its own attempt towards us.
    OkSimultaneous,
    /// The acceptor's own attempt towards us wins; give up.
    Nok,
    /// Refused (missing flags, not allowed).
    NotAllowed,
    /// The acceptor already has a live connection to this name; answer true or false.
    Alive,
    /// A dynamic name was assigned (`DFLAG_NAME_ME`).
    Named {
        /// The full name given to us.
        name: String,
        /// Our creation.
        creation: u32,
    },
}

impl Status {
    fn text(&self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::OkSimultaneous => "ok_simultaneous",
            Status::Nok => "nok",
            Status::NotAllowed => "not_allowed",
            Status::Alive => "alive",
            Status::Named { .. } => "named:",
        }
    }
}

/// A handshake message. `encode` writes it with its 2-byte length.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Message {
    /// `'N'`: the initiator's name (version 6).
    Name {
        /// Its flags.
        flags: DistFlags,
        /// Its creation.
        creation: u32,
        /// Its full name.
        name: NodeName,
    },
    /// `'N'` with `DFLAG_NAME_ME`: an initiator started with `-name undefined` or
    /// `-sname undefined` sends only its host and asks the acceptor for a name
    /// (`dist_util:recv_name_new/2`).
    NameMe {
        /// Its flags (`NAME_ME` among them).
        flags: DistFlags,
        /// Its creation (replaced by the one the acceptor assigns).
        creation: u32,
        /// Its host name, without `@`.
        host: String,
    },
    /// `'n'`: the old name message (version 5), followed later by a complement.
    OldName {
        /// The low 32 bits of its flags.
        flags: DistFlags,
        /// Its full name.
        name: NodeName,
    },
    /// `'s'`: the acceptor's status.
    Status(Status),
    /// `'s'` + `true`/`false`: the initiator's answer to `alive`.
    AliveAnswer(bool),
    /// `'N'`: the acceptor's challenge.
    Challenge {
        /// Its flags.
        flags: DistFlags,
        /// The challenge to answer.
        challenge: u32,
        /// Its creation.
        creation: u32,
        /// Its full name.
        name: NodeName,
    },
    /// `'c'`: the high flag bits and creation after an old name message.
    Complement {
        /// Bits 32..63 of the flags.
        flags_high: u32,
        /// The initiator's creation.
        creation: u32,
    },
    /// `'r'`: the initiator's challenge and its digest of ours.
    ChallengeReply {
        /// The initiator's challenge to us.
        challenge: u32,
        /// Digest of the acceptor's challenge.
        digest: Digest,
    },
    /// `'a'`: the acceptor's digest of the initiator's challenge.
    ChallengeAck {
        /// The digest.
        digest: Digest,
    },
}

/// Largest handshake message: the 2-byte length field allows no more.
pub const MAX_MESSAGE: usize = u16::MAX as usize;

/// Takes one 2-byte-length-prefixed message off `buf`, or `None` until it is complete.
pub fn take_packet(buf: &mut BytesMut) -> Option<Bytes> {
    if buf.len() < 2 {
        return None;
    }
    let len = u16::from_be_bytes([buf[0], buf[1]]) as usize;
    if buf.len() < 2 + len {
        return None;
    }
    let _ = buf.split_to(2);
    Some(buf.split_to(len).freeze())
}
