//! Encoding of terms in the external format. (Stub: being written.)

use super::Term;
use bytes::BytesMut;
use std::fmt;

/// Why a term cannot be encoded.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    /// An atom longer than 255 characters.
    AtomTooLong {
        /// Its length in characters.
        chars: usize,
    },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::AtomTooLong { chars } => write!(f, "atom of {chars} characters"),
        }
    }
}

impl std::error::Error for EncodeError {}

/// Appends the version byte and `term` to `out`.
pub fn encode(term: &Term, out: &mut BytesMut) -> Result<(), EncodeError> {
    out.extend_from_slice(&[super::VERSION]);
    encode_body(term, out)
}

/// Appends `term` without a version byte (after a distribution header).
pub fn encode_body(_term: &Term, _out: &mut BytesMut) -> Result<(), EncodeError> {
    Ok(())
}
