//! Distribution headers (`erl_ext_dist.md`, "Distribution Header" and "Distribution Header
//! for Fragmented Messages"): the per-connection atom cache a BEAM uses to send atoms as
//! one-byte references, and messages split into fragments.
//!
//! Once `DFLAG_DIST_HDR_ATOM_CACHE` or `DFLAG_FRAGMENTS` is negotiated, a BEAM sends every
//! message as `131, 68, ...` (or `69`/`70` for fragments) and refuses pass-through messages
//! (`erts_prepare_dist_ext` in `external.c`), so both directions change:
//! * [`DistDecoder`] keeps the connection's atom cache (2048 slots) and reassembles fragments;
//! * [`encode_with_header`] writes `131, 68, 0` (a header that references no atom) before
//!   the control and payload terms, which then carry no version byte.
//!
//! Bounds: the fragmented messages in progress on a connection may not hold more than the
//! connection's frame cap in total, and at most [`MAX_PARTIAL_MESSAGES`] may be open at
//! once; beyond either the message is refused (a typed error) and its fragments dropped.

use super::flags::DistFlags;
use std::fmt;

mod decode;
mod encode;
#[cfg(test)]
mod tests;

pub use decode::DistDecoder;
pub use encode::{AtomCacheOut, encode_with_header, encode_with_header_and_holes};

/// `131, 68`: a message with an atom cache header.
pub const DIST_HEADER: u8 = 68;
/// `131, 69`: the first fragment of a message.
pub const DIST_FRAG_HEADER: u8 = 69;
/// `131, 70`: a following fragment.
pub const DIST_FRAG_CONT: u8 = 70;
/// Slots in a connection's atom cache (`ERTS_ATOM_CACHE_SIZE`).
pub const ATOM_CACHE_SIZE: usize = 2048;
/// Fragmented messages that may be in progress at once on one connection.
pub const MAX_PARTIAL_MESSAGES: usize = 1024;

/// True if messages on a connection with these flags carry a distribution header.
pub fn uses_header(flags: DistFlags) -> bool {
    flags.contains(DistFlags::DIST_HDR_ATOM_CACHE) || flags.contains(DistFlags::FRAGMENTS)
}

/// A malformed distribution header or fragment sequence.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeaderError {
    /// The header ends early or its fields are inconsistent.
    Truncated,
    /// An atom cache reference to a slot that holds no atom.
    EmptyCacheSlot {
        /// The slot.
        slot: usize,
    },
    /// A cache index past the 2048 slots.
    BadCacheIndex {
        /// The index.
        index: usize,
    },
    /// An atom in the header is not valid UTF-8 or is too long.
    BadAtom,
    /// A fragment header on a connection that did not negotiate fragments.
    FragmentsNotNegotiated,
    /// A fragment id of 0.
    BadFragmentId,
    /// A continuation for a sequence we have no start of.
    UnknownSequence {
        /// The sequence id.
        sequence: u64,
    },
    /// A continuation out of order (fragment ids count down by one).
    OutOfOrder {
        /// The sequence id.
        sequence: u64,
        /// The fragment id expected.
        expected: u64,
        /// The one received.
        got: u64,
    },
    /// A new sequence with an id that is already open.
    DuplicateSequence {
        /// The sequence id.
        sequence: u64,
    },
    /// Too many fragmented messages open at once.
    TooManyPartial,
    /// A fragmented message grew past the size cap.
    TooLarge {
        /// Bytes so far.
        bytes: usize,
        /// The cap.
        max: usize,
    },
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderError::Truncated => f.write_str("truncated distribution header"),
            HeaderError::EmptyCacheSlot { slot } => {
                write!(f, "atom cache reference to empty slot {slot}")
            }
            HeaderError::BadCacheIndex { index } => {
                write!(f, "atom cache index {index} out of range")
            }
            HeaderError::BadAtom => f.write_str("invalid atom in the distribution header"),
            HeaderError::FragmentsNotNegotiated => {
                f.write_str("fragment on a connection that did not negotiate fragments")
            }
            HeaderError::BadFragmentId => f.write_str("fragment id 0"),
            HeaderError::UnknownSequence { sequence } => {
                write!(f, "continuation fragment of unknown sequence {sequence}")
            }
            HeaderError::OutOfOrder {
                sequence,
                expected,
                got,
            } => write!(
                f,
                "fragment {got} of sequence {sequence} arrived where {expected} was due"
            ),
            HeaderError::DuplicateSequence { sequence } => {
                write!(f, "sequence {sequence} started twice")
            }
            HeaderError::TooManyPartial => write!(
                f,
                "more than {MAX_PARTIAL_MESSAGES} fragmented messages in progress"
            ),
            HeaderError::TooLarge { bytes, max } => {
                write!(
                    f,
                    "fragmented message of {bytes} bytes, over the {max}-byte cap"
                )
            }
        }
    }
}

impl std::error::Error for HeaderError {}

impl HeaderError {
    /// True for faults of the fragment sequence rather than of the header itself.
    pub fn is_fragment(&self) -> bool {
        matches!(
            self,
            HeaderError::FragmentsNotNegotiated
                | HeaderError::BadFragmentId
                | HeaderError::UnknownSequence { .. }
                | HeaderError::OutOfOrder { .. }
                | HeaderError::DuplicateSequence { .. }
                | HeaderError::TooManyPartial
                | HeaderError::TooLarge { .. }
        )
    }
}
