//! Decoding of external-format terms. (Stub: being written.)

use super::{Atom, Term};
use bytes::Bytes;
use std::fmt;

/// Deepest nesting of tuples, lists, maps and funs the decoder accepts.
pub const MAX_DEPTH: usize = 1024;

/// Why bytes are not a valid term.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ends inside a term.
    UnexpectedEnd {
        /// Offset where more bytes were needed.
        offset: usize,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::UnexpectedEnd { offset } => write!(f, "term ends early at byte {offset}"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Decodes terms one after another from a buffer.
pub struct Decoder<'a> {
    buf: &'a Bytes,
    pos: usize,
    atom_cache: Option<&'a [Atom]>,
}

impl<'a> Decoder<'a> {
    /// A decoder reading `buf` from offset `pos`.
    pub fn new(buf: &'a Bytes, pos: usize) -> Decoder<'a> {
        Decoder {
            buf,
            pos,
            atom_cache: None,
        }
    }

    /// Resolve `ATOM_CACHE_REF` index `i` to `cache[i]`.
    pub fn with_atom_cache(mut self, cache: &'a [Atom]) -> Decoder<'a> {
        self.atom_cache = Some(cache);
        self
    }

    /// Offset of the next unread byte.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// True when every byte has been read.
    pub fn is_at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// Decodes one term that starts with the version byte 131.
    pub fn term(&mut self) -> Result<Term, DecodeError> {
        let _ = self.atom_cache;
        Err(DecodeError::UnexpectedEnd { offset: self.pos })
    }

    /// Decodes one term without a version byte (after a distribution header).
    pub fn term_body(&mut self) -> Result<Term, DecodeError> {
        Err(DecodeError::UnexpectedEnd { offset: self.pos })
    }
}

/// Decodes `buf` as exactly one term with its version byte.
pub fn decode(buf: &Bytes) -> Result<Term, DecodeError> {
    Decoder::new(buf, 0).term()
}
