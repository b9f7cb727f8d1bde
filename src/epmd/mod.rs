//! EPMD client and server. (Temporary minimal client until the full module lands.)

pub mod client;

use std::fmt;

/// EPMD failure.
#[derive(Debug)]
pub struct EpmdError(pub std::io::Error);

impl fmt::Display for EpmdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EPMD: {}", self.0)
    }
}

impl std::error::Error for EpmdError {}
