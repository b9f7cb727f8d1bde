//! Decoding of external-format terms (`erl_ext_dist.md`): every tag an OTP release can
//! still produce, old 8-bit-creation pids/ports/refs, Latin-1 atoms and `FLOAT_EXT` included.
//!
//! What it accepts follows `binary_to_term/1` of OTP 25+ (checked against a real BEAM by
//! `tests/term_differential.rs`), with these deliberate differences:
//! * nesting is limited to [`MAX_DEPTH`] (the BEAM has no limit);
//! * compressed terms (80) and `LOCAL_EXT` (121) are refused: distribution never carries them;
//! * `NEWER_REFERENCE_EXT` with zero id words is refused (OTP 25 accepts it; no BEAM makes it);
//! * an `EXPORT_EXT` arity above 255 is refused (OTP 25 accepts it; no function has one);
//! * `0.0` and `-0.0` are different map keys, as in OTP 27+ (OTP 25 calls them duplicates);
//! * the BEAM-internal tags 73 and 75 (atom-table indexes) are refused;
//! * pids, ports and references naming the decoding BEAM itself are checked by the BEAM
//!   against its own limits; a codec does not know which node it decodes for.
//!
//! # Resource bounds
//! * Every declared count is checked before anything is allocated for it: the elements still
//!   owed by all open containers (one byte per element, two per map pair, one per list tail)
//!   must fit in the bytes that remain. So the element slots allocated at any time never
//!   exceed the input bytes, and the heap used while decoding stays below
//!   [`MAX_ALLOC_PER_INPUT_BYTE`] times the bytes from the start position to the end of the
//!   buffer, plus a few hundred bytes (measured by `tests/term_limits.rs`).
//! * Recursion is limited to [`MAX_DEPTH`] nested tuples, lists, maps and funs (a
//!   `STRING_EXT` is a leaf; chained list tails are read in a loop). Measured at that depth
//!   by `tests/term_limits.rs` on a 2 MiB thread (a tokio worker's stack): an optimised build
//!   uses at most about 500 KiB to decode, 180 KiB to encode, 80 KiB to drop, 740 KiB to
//!   clone or `Debug`-format a term; an unoptimised (debug) build up to about 1.7 MiB to
//!   decode, which still fits but with little room.
//! * Duplicate map keys are found with a hash set (std's randomly keyed SipHash, so no input
//!   can force collisions): expected time linear in the keys' size.

use super::error::DecodeError;
use super::tag::*;
use super::{Atom, Term, VERSION};
use bytes::Bytes;

mod containers;
mod leaves;

/// Deepest nesting of tuples, lists, maps and funs the decoder (and the encoder) accepts.
pub const MAX_DEPTH: usize = 1024;

/// Upper bound of heap bytes allocated while decoding, per byte of input.
///
/// The worst case is a `STRING_EXT`, where each byte becomes one [`Term`] slot, during the
/// reallocation that appends it to the head of a list.
pub const MAX_ALLOC_PER_INPUT_BYTE: usize = 3 * std::mem::size_of::<Term>();

/// Decodes terms one after another from a buffer.
pub struct Decoder<'a> {
    buf: &'a Bytes,
    pos: usize,
    atom_cache: Option<&'a [Atom]>,
    /// Bytes owed to elements that open containers still have to read, after the one being
    /// decoded (each takes at least one byte).
    owed: usize,
}

impl<'a> Decoder<'a> {
    /// A decoder reading `buf` from offset `pos`.
    pub fn new(buf: &'a Bytes, pos: usize) -> Decoder<'a> {
        Decoder {
            buf,
            pos,
            atom_cache: None,
            owed: 0,
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

    /// Decodes one term that starts with the version byte 131. On error the position is
    /// left where it was.
    pub fn term(&mut self) -> Result<Term, DecodeError> {
        self.guarded(|d| {
            let at = d.pos;
            let version = d.u8()?;
            if version != VERSION {
                return Err(DecodeError::BadVersion {
                    offset: at,
                    found: version,
                });
            }
            d.value(0)
        })
    }

    /// Decodes one term without a version byte (after a distribution header). On error the
    /// position is left where it was.
    pub fn term_body(&mut self) -> Result<Term, DecodeError> {
        self.guarded(|d| d.value(0))
    }

    fn guarded(
        &mut self,
        run: impl FnOnce(&mut Self) -> Result<Term, DecodeError>,
    ) -> Result<Term, DecodeError> {
        let start = self.pos;
        self.owed = 0;
        let result = run(self);
        if result.is_err() {
            self.pos = start;
        }
        self.owed = 0;
        result
    }

    // ---- raw reads -------------------------------------------------------------------------

    /// Bytes this term may still use: what remains minus what open containers are owed.
    fn available(&self) -> usize {
        self.buf
            .len()
            .saturating_sub(self.pos)
            .saturating_sub(self.owed)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.available() {
            return Err(DecodeError::UnexpectedEnd { offset: self.pos });
        }
        let buf: &'a [u8] = self.buf;
        let bytes = &buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        self.array().map(u16::from_be_bytes)
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        self.array().map(u32::from_be_bytes)
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        self.array().map(u64::from_be_bytes)
    }

    fn peek(&self) -> Result<u8, DecodeError> {
        match self.buf.get(self.pos) {
            Some(&b) if self.available() > 0 => Ok(b),
            _ => Err(DecodeError::UnexpectedEnd { offset: self.pos }),
        }
    }

    /// Claims `count * per_item + extra` bytes for what a container at `at` will read after
    /// its header; fails before anything is allocated if they are not there.
    fn claim(
        &mut self,
        at: usize,
        count: u32,
        per_item: usize,
        extra: usize,
    ) -> Result<(), DecodeError> {
        let need = (count as usize)
            .saturating_mul(per_item)
            .saturating_add(extra);
        let available = self.available();
        if need > available {
            return Err(DecodeError::CountExceedsInput {
                offset: at,
                declared: count,
                available,
            });
        }
        self.owed += need;
        Ok(())
    }

    /// The next element of an open container starts: its byte is no longer owed.
    fn settle(&mut self) {
        self.owed = self.owed.saturating_sub(1);
    }

    /// The 8-bit creation of the old pid, port and reference tags: the BEAM takes only the
    /// 2-bit values 0..=3 there.
    fn old_creation(&mut self) -> Result<u32, DecodeError> {
        let at = self.pos;
        let creation = self.u8()?;
        if creation > 3 {
            return Err(DecodeError::BadCreation {
                offset: at,
                creation,
            });
        }
        Ok(creation.into())
    }

    fn nested(depth: usize, at: usize) -> Result<usize, DecodeError> {
        if depth >= MAX_DEPTH {
            return Err(DecodeError::TooDeep { offset: at });
        }
        Ok(depth + 1)
    }

    // ---- terms -----------------------------------------------------------------------------

    /// One term. Kept small, with containers and leaves in their own functions, because it
    /// is part of the recursion: its frame is paid once per nesting level.
    fn value(&mut self, depth: usize) -> Result<Term, DecodeError> {
        let at = self.pos;
        let tag = self.u8()?;
        match tag {
            SMALL_TUPLE_EXT | LARGE_TUPLE_EXT => self.tuple(at, tag, depth),
            LIST_EXT => self.list(at, depth),
            MAP_EXT => self.map(at, depth),
            NEW_FUN_EXT => self.fun(at, depth),
            RECORD_EXT => self.record(at, depth),
            _ => self.leaf(at, tag),
        }
    }

    /// Appends the next term to `items` if it is a small integer, the most common element;
    /// returns false, reading nothing, otherwise. Built in place: passing a 48-byte
    /// `Result<Term, _>` back per element costs more than decoding it (the copy defeats
    /// store-to-load forwarding). It returns before any recursion, so it adds no frame to it.
    fn push_small_int(&mut self, items: &mut Vec<Term>) -> Result<bool, DecodeError> {
        match self.peek()? {
            SMALL_INTEGER_EXT => {
                let [_, byte] = self.array::<2>()?;
                items.push(Term::Int(byte.into()));
            }
            INTEGER_EXT => {
                let [_, a, b, c, d] = self.array::<5>()?;
                items.push(Term::Int(i32::from_be_bytes([a, b, c, d]).into()));
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// Decodes `buf` as exactly one term with its version byte; trailing bytes are an error.
pub fn decode(buf: &Bytes) -> Result<Term, DecodeError> {
    let mut decoder = Decoder::new(buf, 0);
    let term = decoder.term()?;
    if !decoder.is_at_end() {
        return Err(DecodeError::TrailingBytes {
            offset: decoder.position(),
        });
    }
    Ok(term)
}
