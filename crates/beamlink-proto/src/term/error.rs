//! Errors of the term codec: why bytes are not a term, why a term cannot be written.

use std::fmt;

/// Why bytes are not a valid term. Offsets count from the start of the decoder's buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ends inside a term.
    UnexpectedEnd {
        /// Offset where more bytes were needed.
        offset: usize,
    },
    /// The first byte is not the version byte 131.
    BadVersion {
        /// Offset of the byte.
        offset: usize,
        /// The byte found.
        found: u8,
    },
    /// A tag this codec does not know (or one no BEAM produces any more, like `FUN_EXT`).
    UnknownTag {
        /// Offset of the tag.
        offset: usize,
        /// The tag byte.
        tag: u8,
    },
    /// A compressed term (tag 80): never allowed inside a distribution message.
    Compressed {
        /// Offset of the tag.
        offset: usize,
    },
    /// A `LOCAL_EXT` term (tag 121): node-local, never allowed inside a distribution message.
    LocalFormat {
        /// Offset of the tag.
        offset: usize,
    },
    /// An `ATOM_CACHE_REF` while no atom cache was given to the decoder.
    NoAtomCache {
        /// Offset of the tag.
        offset: usize,
    },
    /// An `ATOM_CACHE_REF` past the end of the atom cache.
    AtomCacheIndex {
        /// Offset of the tag.
        offset: usize,
        /// The index found.
        index: u8,
        /// How many atoms the cache holds.
        cache_len: usize,
    },
    /// Tuples, lists, maps and funs nested deeper than [`MAX_DEPTH`](super::MAX_DEPTH).
    TooDeep {
        /// Offset of the container that would be one level too deep.
        offset: usize,
    },
    /// A declared element count that the remaining bytes cannot hold (every element takes at
    /// least one byte, every map pair two).
    CountExceedsInput {
        /// Offset of the container's tag.
        offset: usize,
        /// The declared count.
        declared: u32,
        /// Bytes left for it.
        available: usize,
    },
    /// An atom of more than 255 characters.
    AtomTooLong {
        /// Offset of the atom's tag.
        offset: usize,
        /// Its length in characters.
        chars: usize,
    },
    /// A UTF-8 atom whose bytes are not valid UTF-8.
    AtomNotUtf8 {
        /// Offset of the atom's tag.
        offset: usize,
    },
    /// A float that is infinite or NaN.
    FloatNotFinite {
        /// Offset of the float's tag.
        offset: usize,
    },
    /// A `FLOAT_EXT` whose text is not a decimal float the BEAM would read.
    BadFloatText {
        /// Offset of the float's tag.
        offset: usize,
    },
    /// A map holding the same key twice.
    DuplicateMapKey {
        /// Offset of the map's tag.
        offset: usize,
    },
    /// A native record with a flags byte other than 0 or 1, or a field named twice (OTP 29
    /// refuses both).
    BadRecord {
        /// Offset of the record's tag.
        offset: usize,
    },
    /// A reference with no id words or more than five.
    BadReferenceLength {
        /// Offset of the reference's tag.
        offset: usize,
        /// The declared number of words.
        words: u16,
    },
    /// An old pid, port or reference tag (8-bit creation) with a creation above 3, which the
    /// BEAM refuses.
    BadCreation {
        /// Offset of the creation byte.
        offset: usize,
        /// The creation found.
        creation: u8,
    },
    /// A `BIT_BINARY_EXT` whose bit count does not fit its length (bits 1..=8 for a
    /// non-empty one, 0 for an empty one).
    BadBitCount {
        /// Offset of the bitstring's tag.
        offset: usize,
        /// Declared length in bytes.
        len: u32,
        /// Declared bits in the last byte.
        bits: u8,
    },
    /// Where an atom must be (a node name, a module, a function), another tag.
    NotAnAtom {
        /// Offset of the tag.
        offset: usize,
        /// The tag found.
        tag: u8,
    },
    /// Where a pid must be (inside a fun), another tag.
    NotAPid {
        /// Offset of the tag.
        offset: usize,
        /// The tag found.
        tag: u8,
    },
    /// Where an integer must be (inside a fun or an export), another tag.
    NotAnInteger {
        /// Offset of the tag.
        offset: usize,
        /// The tag found.
        tag: u8,
    },
    /// An integer field out of its range (an export's arity outside 0..=255, a fun's old
    /// index or uniq outside `i64`).
    IntegerOutOfRange {
        /// Offset of the integer's tag.
        offset: usize,
    },
    /// Bytes left after the one term [`decode`](super::decode) expects.
    TrailingBytes {
        /// Offset of the first byte after the term.
        offset: usize,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use DecodeError::*;
        match self {
            UnexpectedEnd { offset } => write!(f, "term ends early at byte {offset}"),
            BadVersion { offset, found } => {
                write!(f, "byte {offset}: version byte {found}, expected 131")
            }
            UnknownTag { offset, tag } => write!(f, "byte {offset}: unknown term tag {tag}"),
            Compressed { offset } => {
                write!(
                    f,
                    "byte {offset}: compressed term, not allowed in distribution"
                )
            }
            LocalFormat { offset } => {
                write!(
                    f,
                    "byte {offset}: LOCAL_EXT term, not allowed in distribution"
                )
            }
            NoAtomCache { offset } => {
                write!(
                    f,
                    "byte {offset}: atom cache reference without an atom cache"
                )
            }
            AtomCacheIndex {
                offset,
                index,
                cache_len,
            } => write!(
                f,
                "byte {offset}: atom cache index {index} outside a cache of {cache_len}"
            ),
            TooDeep { offset } => write!(
                f,
                "byte {offset}: nesting deeper than {} levels",
                super::MAX_DEPTH
            ),
            CountExceedsInput {
                offset,
                declared,
                available,
            } => write!(
                f,
                "byte {offset}: declared count {declared} does not fit in the {available} bytes left"
            ),
            AtomTooLong { offset, chars } => {
                write!(f, "byte {offset}: atom of {chars} characters (max 255)")
            }
            AtomNotUtf8 { offset } => write!(f, "byte {offset}: atom text is not UTF-8"),
            FloatNotFinite { offset } => write!(f, "byte {offset}: float is not finite"),
            BadFloatText { offset } => write!(f, "byte {offset}: FLOAT_EXT text is not a float"),
            DuplicateMapKey { offset } => write!(f, "byte {offset}: map holds a key twice"),
            BadRecord { offset } => write!(
                f,
                "byte {offset}: native record with unknown flags or a field named twice"
            ),
            BadReferenceLength { offset, words } => {
                write!(
                    f,
                    "byte {offset}: reference of {words} words (1..=5 allowed)"
                )
            }
            BadCreation { offset, creation } => {
                write!(
                    f,
                    "byte {offset}: 8-bit creation {creation} (0..=3 allowed)"
                )
            }
            BadBitCount { offset, len, bits } => {
                write!(
                    f,
                    "byte {offset}: bitstring of {len} bytes with {bits} bits in the last"
                )
            }
            NotAnAtom { offset, tag } => {
                write!(f, "byte {offset}: tag {tag} where an atom must be")
            }
            NotAPid { offset, tag } => write!(f, "byte {offset}: tag {tag} where a pid must be"),
            NotAnInteger { offset, tag } => {
                write!(f, "byte {offset}: tag {tag} where an integer must be")
            }
            IntegerOutOfRange { offset } => write!(f, "byte {offset}: integer out of range"),
            TrailingBytes { offset } => write!(f, "bytes left after the term at byte {offset}"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Why a term cannot be encoded.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    /// An atom longer than 255 characters.
    AtomTooLong {
        /// Its length in characters.
        chars: usize,
    },
    /// An infinite or NaN float (the BEAM has neither).
    FloatNotFinite,
    /// A [`Term::Bits`](super::Term::Bits) whose `last_bits` is outside 1..=7.
    BadBitCount {
        /// The value found.
        last_bits: u8,
    },
    /// A [`Term::Bits`](super::Term::Bits) without data bytes.
    EmptyBits,
    /// An [`Term::ImproperList`](super::Term::ImproperList) with no head elements.
    EmptyImproperHead,
    /// An [`Term::ImproperList`](super::Term::ImproperList) whose tail is a list: it would
    /// decode as a different list.
    ListTail,
    /// A length or count too large for its field on the wire.
    TooLong {
        /// Tag of the term whose field overflows.
        tag: u8,
        /// The length or count.
        len: usize,
    },
    /// A map with the same key twice (the BEAM refuses to decode it).
    DuplicateMapKey,
    /// A native record names a field twice (a BEAM would refuse it).
    DuplicateRecordField,
    /// Nesting deeper than [`MAX_DEPTH`](super::MAX_DEPTH) (we would refuse to decode it).
    TooDeep,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use EncodeError::*;
        match self {
            AtomTooLong { chars } => write!(f, "atom of {chars} characters"),
            FloatNotFinite => f.write_str("float is not finite"),
            BadBitCount { last_bits } => {
                write!(
                    f,
                    "bitstring with {last_bits} bits in the last byte (1..=7 allowed)"
                )
            }
            EmptyBits => f.write_str("bitstring without data bytes"),
            EmptyImproperHead => f.write_str("improper list without head elements"),
            ListTail => f.write_str("improper list whose tail is a list"),
            TooLong { tag, len } => write!(f, "length {len} too large for term tag {tag}"),
            DuplicateMapKey => f.write_str("map holds a key twice"),
            DuplicateRecordField => f.write_str("native record names a field twice"),
            TooDeep => write!(f, "nesting deeper than {} levels", super::MAX_DEPTH),
        }
    }
}

impl std::error::Error for EncodeError {}
