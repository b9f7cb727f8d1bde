//! The transport's errors: a handshake that failed ([`HandshakeFailure`]), a connection that
//! could not be made ([`ConnectError`]), and why a running connection ended
//! ([`DisconnectReason`]). Each names the peer and the step.

use crate::proto::frame::{FrameError, MessageError};
use crate::proto::handshake::{FramingError, HandshakeError, Step};
use crate::proto::node_name::NodeName;
use crate::tls::TlsError;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Why a connection attempt or a handshake failed. I/O errors are shared (`Arc`) so that one
/// failure can be handed to every caller waiting on the same attempt.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum HandshakeFailureKind {
    /// TCP connect failed.
    Connect(Arc<io::Error>),
    /// Reading or writing failed during `step`.
    Io {
        /// The step we were in.
        step: Step,
        /// The I/O error.
        source: Arc<io::Error>,
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
    /// The bytes where a handshake message was due are not one: a TLS record on a plain
    /// connection, or an oversized length.
    Framing {
        /// The step we were in.
        step: Step,
        /// What arrived instead.
        error: FramingError,
    },
    /// The TLS handshake under the distribution handshake failed.
    Tls(TlsError),
}

/// A failed handshake, naming the peer and the step.
#[derive(Clone, Debug)]
pub struct HandshakeFailure {
    /// The peer's name, once known.
    pub peer: Option<NodeName>,
    /// The peer's address.
    pub addr: SocketAddr,
    /// What went wrong.
    pub kind: HandshakeFailureKind,
}

impl HandshakeFailure {
    /// The `cause` label of `beamlink_handshake_failures_total`: `cookie`, `timeout`,
    /// `refused` (the TCP connect failed, or the peer answered `not_allowed`),
    /// `io`, `protocol`, `tls` (a TLS failure, or a TLS peer spoken to in plain TCP); `None`
    /// for outcomes that are not failures (a simultaneous connect
    /// resolved for the other side, a handshake we declined while shutting down).
    pub fn cause(&self) -> Option<&'static str> {
        if self.is_cookie_mismatch() {
            return Some("cookie");
        }
        Some(match &self.kind {
            HandshakeFailureKind::Connect(e) if e.kind() == io::ErrorKind::TimedOut => "timeout",
            HandshakeFailureKind::Connect(_) => "refused",
            HandshakeFailureKind::Timeout { .. } => "timeout",
            HandshakeFailureKind::Io { .. } => "io",
            HandshakeFailureKind::Protocol(
                HandshakeError::SimultaneousLost | HandshakeError::AlreadyConnected,
            ) => return None,
            HandshakeFailureKind::Protocol(HandshakeError::NotAllowed) => "refused",
            HandshakeFailureKind::Protocol(_) => "protocol",
            HandshakeFailureKind::Framing { .. } if self.is_tls_peer() => "tls",
            HandshakeFailureKind::Framing { .. } => "protocol",
            HandshakeFailureKind::Tls(_) => "tls",
            HandshakeFailureKind::Superseded | HandshakeFailureKind::Declined => return None,
        })
    }

    /// True if the peer runs TLS distribution and we spoke plain TCP to it.
    pub fn is_tls_peer(&self) -> bool {
        matches!(
            self.kind,
            HandshakeFailureKind::Framing {
                error: FramingError::TlsRecord { .. },
                ..
            }
        )
    }

    /// True if one side runs TLS distribution and the other plain TCP: a plain name
    /// answered with a TLS record, a TLS hello that got no TLS answer, or plain bytes on
    /// our TLS listener. The fix is a setting, on our side or the peer's.
    pub fn is_tls_mismatch(&self) -> bool {
        self.is_tls_peer()
            || matches!(
                self.kind,
                HandshakeFailureKind::Tls(TlsError::NoTlsAnswer { .. } | TlsError::PlainClient)
            )
    }

    /// True if the TLS handshake failed over a certificate (ours refused by the peer, or
    /// its refused by us): an authentication failure, as a cookie mismatch is.
    pub fn is_tls_refusal(&self) -> bool {
        use rustls::AlertDescription as A;
        match &self.kind {
            HandshakeFailureKind::Tls(e) => match e {
                TlsError::UnknownCa
                | TlsError::Expired { .. }
                | TlsError::NameMismatch { .. }
                | TlsError::BadPeerCertificate { .. }
                | TlsError::NoPeerCertificate => true,
                // OTP answers handshake_failure under TLS 1.2 when it requires a client
                // certificate we did not send.
                TlsError::Alert(a) => matches!(
                    a,
                    A::UnknownCA
                        | A::CertificateExpired
                        | A::BadCertificate
                        | A::CertificateUnknown
                        | A::CertificateRequired
                        | A::HandshakeFailure
                        | A::AccessDenied
                ),
                _ => false,
            },
            _ => false,
        }
    }

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
            HandshakeFailureKind::Framing {
                step: Step::Name,
                error: FramingError::TlsRecord { .. },
            } => f.write_str(
                "speaks TLS distribution (it opened with a TLS hello) but we accept plain TCP: \
                 pass --tls-optfile (or --tls-cert/--tls-key/--tls-ca)",
            ),
            HandshakeFailureKind::Framing {
                error: FramingError::TlsRecord { .. },
                ..
            } => f.write_str(
                "speaks TLS distribution (it answered our plain name with a TLS alert): \
                 pass --tls-optfile (or --tls-cert/--tls-key/--tls-ca)",
            ),
            HandshakeFailureKind::Framing { step, error } => {
                write!(f, "{error} in the {step} step")
            }
            HandshakeFailureKind::Tls(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for HandshakeFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            HandshakeFailureKind::Connect(e) | HandshakeFailureKind::Io { source: e, .. } => {
                Some(&**e)
            }
            HandshakeFailureKind::Protocol(e) => Some(e),
            HandshakeFailureKind::Framing { error, .. } => Some(error),
            HandshakeFailureKind::Tls(e) => Some(e),
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
    /// The peer sent a message that does not decode, and the node's setting is to close
    /// the connection for it, as a BEAM does
    /// ([`OnBadMessage::DropLink`](crate::transport::connection::OnBadMessage::DropLink)).
    BadMessage(MessageError),
    /// We closed it (shutdown, replacement, disconnect).
    Local,
}

impl DisconnectReason {
    /// The `reason` label of `beamlink_disconnects_total`.
    pub fn label(&self) -> &'static str {
        match self {
            DisconnectReason::ClosedByPeer => "closed_by_peer",
            DisconnectReason::Io { .. } => "io",
            DisconnectReason::TickTimeout => "tick_timeout",
            DisconnectReason::SendStalled => "send_stalled",
            DisconnectReason::Frame(_) => "protocol",
            DisconnectReason::BadMessage(_) => "bad_message",
            DisconnectReason::Local => "local",
        }
    }
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
            DisconnectReason::BadMessage(e) => write!(
                f,
                "closed on a message that does not decode ({}): {e}",
                e.kind()
            ),
            DisconnectReason::Local => f.write_str("closed by us"),
        }
    }
}

/// Why we could not connect to a peer.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum ConnectError {
    /// The name's host could not be resolved.
    Resolve {
        /// The peer.
        peer: NodeName,
        /// What the resolver said.
        reason: String,
    },
    /// Its EPMD could not tell us its port.
    Epmd {
        /// The peer.
        peer: NodeName,
        /// The EPMD error.
        source: crate::epmd::EpmdError,
    },
    /// Its EPMD answered but the name is not registered there.
    NotRegistered {
        /// The peer.
        peer: NodeName,
        /// The EPMD we asked.
        epmd: SocketAddr,
    },
    /// The TCP connection or the handshake failed.
    Handshake(Box<HandshakeFailure>),
    /// The node is shutting down.
    ShuttingDown,
    /// The name is our own.
    Ourselves,
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::Resolve { peer, reason } => {
                write!(f, "cannot resolve the host of {peer}: {reason}")
            }
            ConnectError::Epmd { peer, source } => write!(f, "cannot look up {peer}: {source}"),
            ConnectError::NotRegistered { peer, epmd } => write!(
                f,
                "{peer} is not registered with the EPMD at {epmd} (is the node running, \
                 and under this name?)"
            ),
            ConnectError::Handshake(e) => write!(f, "{e}"),
            ConnectError::ShuttingDown => f.write_str("the node is shutting down"),
            ConnectError::Ourselves => f.write_str("that is our own name"),
        }
    }
}

impl std::error::Error for ConnectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConnectError::Handshake(e) => Some(&**e),
            ConnectError::Epmd { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<HandshakeFailure> for ConnectError {
    fn from(failure: HandshakeFailure) -> ConnectError {
        ConnectError::Handshake(Box::new(failure))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(kind: HandshakeFailureKind) -> HandshakeFailure {
        HandshakeFailure {
            peer: None,
            addr: "10.0.0.1:4370".parse().unwrap(),
            kind,
        }
    }

    #[test]
    fn handshake_failures_have_a_cause_label() {
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        let cases = [
            (
                HandshakeFailureKind::Connect(refused.into()),
                Some("refused"),
            ),
            (
                HandshakeFailureKind::Connect(io::Error::from(io::ErrorKind::TimedOut).into()),
                Some("timeout"),
            ),
            (
                HandshakeFailureKind::Timeout {
                    step: Step::Challenge,
                    after: Duration::from_secs(7),
                },
                Some("timeout"),
            ),
            (
                HandshakeFailureKind::Protocol(HandshakeError::ClosedByPeer {
                    step: Step::ChallengeAck,
                }),
                Some("cookie"),
            ),
            (
                HandshakeFailureKind::Protocol(HandshakeError::NotAllowed),
                Some("refused"),
            ),
            (
                HandshakeFailureKind::Protocol(HandshakeError::UnexpectedNamed),
                Some("protocol"),
            ),
            (
                HandshakeFailureKind::Protocol(HandshakeError::SimultaneousLost),
                None,
            ),
            (HandshakeFailureKind::Superseded, None),
        ];
        for (kind, cause) in cases {
            let f = failure(kind);
            assert_eq!(f.cause(), cause, "{f}");
        }
        assert_eq!(DisconnectReason::TickTimeout.label(), "tick_timeout");
    }
}
