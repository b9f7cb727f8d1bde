//! The tokio transport: owns sockets and buffers, runs the handshake state machines of
//! [`crate::proto::handshake`] over a stream ([`handshake`]), and keeps a connection alive
//! once it is up ([`link`]). It makes no decision a node must make (which status to give an
//! incoming name, where a message goes); those come in through traits.

pub mod connection;
pub mod handshake;

use crate::proto::frame::FrameError;
use crate::proto::handshake::{HandshakeError, Step};
use crate::proto::node_name::NodeName;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

/// Why a connection attempt or a handshake failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum HandshakeFailureKind {
    /// TCP connect failed.
    Connect(io::Error),
    /// Reading or writing failed during `step`.
    Io {
        /// The step we were in.
        step: Step,
        /// The I/O error.
        source: io::Error,
    },
    /// The peer did not send its `step` message within the setup time.
    Timeout {
        /// The step we waited for.
        step: Step,
        /// The setup time.
        after: Duration,
    },
    /// The peer broke the protocol or refused us.
    Protocol(HandshakeError),
    /// We gave up because another connection to the same node won.
    Superseded,
    /// We refused the peer (status `not_allowed`, e.g. while shutting down).
    Declined,
}

/// A failed handshake, naming the peer and the step.
#[derive(Debug)]
pub struct HandshakeFailure {
    /// The peer's name, once known.
    pub peer: Option<NodeName>,
    /// The peer's address.
    pub addr: SocketAddr,
    /// What went wrong.
    pub kind: HandshakeFailureKind,
}

impl HandshakeFailure {
    /// True if the peer refused our cookie (or we refused its).
    pub fn is_cookie_mismatch(&self) -> bool {
        matches!(
            self.kind,
            HandshakeFailureKind::Protocol(
                HandshakeError::CookieMismatch { .. }
                    | HandshakeError::ClosedByPeer {
                        step: Step::ChallengeAck
                    }
            )
        )
    }
}

impl fmt::Display for HandshakeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.peer {
            Some(peer) => write!(f, "{peer} ({}) ", self.addr)?,
            None => write!(f, "{} ", self.addr)?,
        }
        match &self.kind {
            HandshakeFailureKind::Connect(e) => write!(f, "refused the TCP connection: {e}"),
            HandshakeFailureKind::Io { step, source } => {
                write!(f, "failed during the handshake ({step} step): {source}")
            }
            HandshakeFailureKind::Timeout { step, after } => {
                write!(f, "sent no {step} within {} s", after.as_secs_f32())
            }
            HandshakeFailureKind::Protocol(e) => write!(f, "{e}"),
            HandshakeFailureKind::Superseded => {
                f.write_str("is already connected through another connection")
            }
            HandshakeFailureKind::Declined => f.write_str("was refused by us (not_allowed)"),
        }
    }
}

impl std::error::Error for HandshakeFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            HandshakeFailureKind::Connect(e) | HandshakeFailureKind::Io { source: e, .. } => {
                Some(e)
            }
            HandshakeFailureKind::Protocol(e) => Some(e),
            _ => None,
        }
    }
}

/// Why an established link ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// The peer closed the connection.
    ClosedByPeer,
    /// Reading or writing failed.
    Io {
        /// The error's kind.
        kind: io::ErrorKind,
        /// Its text.
        message: String,
    },
    /// Nothing arrived for a whole net_ticktime.
    TickTimeout,
    /// The peer stopped reading: queued data made no progress for a whole net_ticktime.
    SendStalled,
    /// The peer sent a packet over the size cap.
    Frame(FrameError),
    /// We closed it (shutdown, replacement, disconnect).
    Local,
}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DisconnectReason::ClosedByPeer => f.write_str("connection closed by the peer"),
            DisconnectReason::Io { message, .. } => write!(f, "connection failed: {message}"),
            DisconnectReason::TickTimeout => f.write_str("not responding (net_tick_timeout)"),
            DisconnectReason::SendStalled => {
                f.write_str("stopped reading: our send queue made no progress for a net_ticktime")
            }
            DisconnectReason::Frame(e) => write!(f, "protocol error: {e}"),
            DisconnectReason::Local => f.write_str("closed by us"),
        }
    }
}
