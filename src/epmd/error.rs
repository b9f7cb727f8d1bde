//! [`EpmdError`], the one error type of the EPMD layer (client, server and registrar).

use crate::proto::epmd::{AliveName, EpmdWireError};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Where an exchange with an EPMD was when it failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EpmdStep {
    /// Opening the TCP connection.
    Connect,
    /// Sending ALIVE2_REQ.
    SendAlive2,
    /// Waiting for ALIVE2_RESP / ALIVE2_X_RESP.
    ReadAlive2,
    /// Sending PORT_PLEASE2_REQ.
    SendPortPlease2,
    /// Reading PORT2_RESP.
    ReadPort2,
    /// Sending NAMES_REQ.
    SendNames,
    /// Reading the NAMES reply.
    ReadNames,
}

impl fmt::Display for EpmdStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EpmdStep::Connect => "connecting",
            EpmdStep::SendAlive2 => "sending the registration (ALIVE2) request",
            EpmdStep::ReadAlive2 => "waiting for the registration (ALIVE2) reply",
            EpmdStep::SendPortPlease2 => "sending the port lookup (PORT_PLEASE2) request",
            EpmdStep::ReadPort2 => "reading the port lookup (PORT2) reply",
            EpmdStep::SendNames => "sending the NAMES request",
            EpmdStep::ReadNames => "reading the NAMES reply",
        })
    }
}

/// Everything that can go wrong talking to, or being, an EPMD. Each variant names the EPMD
/// address and, where there is one, the step. Clone: I/O errors are shared (`Arc`).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum EpmdError {
    /// The TCP connection could not be opened.
    Unreachable {
        /// The EPMD address.
        epmd: SocketAddr,
        /// Why.
        source: Arc<io::Error>,
    },
    /// No progress within the call's timeout.
    Timeout {
        /// The EPMD address.
        epmd: SocketAddr,
        /// Where it stalled.
        step: EpmdStep,
        /// The timeout.
        after: Duration,
    },
    /// A socket error after connecting.
    Io {
        /// The EPMD address.
        epmd: SocketAddr,
        /// Where it happened.
        step: EpmdStep,
        /// The error.
        source: Arc<io::Error>,
    },
    /// EPMD closed the connection before its reply was complete.
    ClosedEarly {
        /// The EPMD address.
        epmd: SocketAddr,
        /// Where.
        step: EpmdStep,
    },
    /// EPMD's reply is malformed.
    Malformed {
        /// The EPMD address.
        epmd: SocketAddr,
        /// Which reply.
        step: EpmdStep,
        /// What is wrong with it.
        source: EpmdWireError,
    },
    /// EPMD refused the registration (`Result` non-zero). A real `epmd` does that for a name
    /// that is already registered, which is why the BEAM reports `duplicate_name` for any
    /// refusal; beamlink's server also refuses when its registration table is full.
    NameTaken {
        /// The EPMD address.
        epmd: SocketAddr,
        /// The name.
        name: AliveName,
    },
    /// EPMD closed a registration socket: the name is no longer registered there.
    RegistrationClosed {
        /// The EPMD address.
        epmd: SocketAddr,
        /// The name that was registered.
        name: AliveName,
        /// The socket error, if it was not a plain close.
        source: Option<Arc<io::Error>>,
    },
    /// The embedded server could not listen.
    Bind {
        /// The address it tried.
        addr: SocketAddr,
        /// Why.
        source: Arc<io::Error>,
    },
}

/// `connection refused` rather than `Connection refused (os error 111)`.
pub(crate) fn describe(err: &io::Error) -> String {
    let text = err.to_string();
    let text = match text.rfind(" (os error ") {
        Some(at) if text.ends_with(')') => &text[..at],
        _ => &text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

impl fmt::Display for EpmdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EpmdError::Unreachable { epmd, source } => {
                write!(f, "EPMD at {epmd} unreachable: {}", describe(source))
            }
            EpmdError::Timeout { epmd, step, after } => {
                write!(f, "EPMD at {epmd} did not answer within {after:?} ({step})")
            }
            EpmdError::Io { epmd, step, source } => {
                write!(f, "EPMD at {epmd}: {} while {step}", describe(source))
            }
            EpmdError::ClosedEarly { epmd, step } => {
                write!(f, "EPMD at {epmd} closed the connection while {step}")
            }
            EpmdError::Malformed { epmd, step, source } => {
                write!(
                    f,
                    "EPMD at {epmd} sent a malformed reply while {step}: {source}"
                )
            }
            EpmdError::NameTaken { epmd, name } => {
                write!(f, "name `{name}` already registered at {epmd}")
            }
            EpmdError::RegistrationClosed { epmd, name, source } => {
                write!(f, "EPMD at {epmd} dropped the registration of `{name}`")?;
                match source {
                    Some(source) => write!(f, ": {}", describe(source)),
                    None => f.write_str(": connection closed"),
                }
            }
            EpmdError::Bind { addr, source } => {
                write!(f, "cannot serve EPMD on {addr}: {}", describe(source))
            }
        }
    }
}

impl std::error::Error for EpmdError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            EpmdError::Unreachable { source, .. }
            | EpmdError::Io { source, .. }
            | EpmdError::Bind { source, .. } => Some(source),
            EpmdError::Malformed { source, .. } => Some(source),
            EpmdError::RegistrationClosed {
                source: Some(source),
                ..
            } => Some(source),
            _ => None,
        }
    }
}

impl EpmdError {
    /// The EPMD address the error is about (for [`Bind`](EpmdError::Bind), the listen
    /// address).
    pub fn epmd(&self) -> SocketAddr {
        match self {
            EpmdError::Unreachable { epmd, .. }
            | EpmdError::Timeout { epmd, .. }
            | EpmdError::Io { epmd, .. }
            | EpmdError::ClosedEarly { epmd, .. }
            | EpmdError::Malformed { epmd, .. }
            | EpmdError::NameTaken { epmd, .. }
            | EpmdError::RegistrationClosed { epmd, .. } => *epmd,
            EpmdError::Bind { addr, .. } => *addr,
        }
    }

    /// True when nothing answered at the address (refused, unreachable or timed out while
    /// connecting): the case in which `--epmd auto` serves EPMD itself.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            EpmdError::Unreachable { .. }
                | EpmdError::Timeout {
                    step: EpmdStep::Connect,
                    ..
                }
        )
    }
}
