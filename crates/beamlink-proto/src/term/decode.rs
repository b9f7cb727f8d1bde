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
use super::{Atom, BigInt, Export, Fun, Pid, Port, Reference, Term, VERSION, keys};
use bytes::Bytes;

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

    #[inline(never)]
    fn leaf(&mut self, at: usize, tag: u8) -> Result<Term, DecodeError> {
        match tag {
            SMALL_INTEGER_EXT => Ok(Term::Int(self.u8()?.into())),
            INTEGER_EXT => Ok(Term::Int((self.u32()? as i32).into())),
            SMALL_BIG_EXT => {
                let n = self.u8()?;
                self.big(n.into())
            }
            LARGE_BIG_EXT => {
                let n = self.u32()?;
                self.big(n)
            }
            NEW_FLOAT_EXT => self.new_float(at),
            FLOAT_EXT => self.old_float(at),
            ATOM_EXT | SMALL_ATOM_EXT | ATOM_UTF8_EXT | SMALL_ATOM_UTF8_EXT | ATOM_CACHE_REF => {
                self.atom_after_tag(at, tag).map(Term::Atom)
            }
            NIL_EXT => Ok(Term::NIL),
            STRING_EXT => {
                let mut items = Vec::new();
                self.string_into(&mut items)?;
                Ok(Term::List(items))
            }
            BINARY_EXT => {
                let len = self.u32()?;
                self.slice(len as usize).map(Term::Binary)
            }
            BIT_BINARY_EXT => self.bit_binary(at),
            NEW_PID_EXT | PID_EXT => self.pid_after_tag(tag).map(Term::Pid),
            NEW_PORT_EXT | PORT_EXT | V4_PORT_EXT => self.port(tag),
            NEWER_REFERENCE_EXT | NEW_REFERENCE_EXT | REFERENCE_EXT => self.reference(at, tag),
            EXPORT_EXT => self.export(),
            COMPRESSED => Err(DecodeError::Compressed { offset: at }),
            LOCAL_EXT => Err(DecodeError::LocalFormat { offset: at }),
            _ => Err(DecodeError::UnknownTag { offset: at, tag }),
        }
    }

    fn slice(&mut self, len: usize) -> Result<Bytes, DecodeError> {
        let start = self.pos;
        self.take(len)?;
        Ok(self.buf.slice(start..self.pos))
    }

    fn big(&mut self, digits: u32) -> Result<Term, DecodeError> {
        let sign = self.u8()?;
        let bytes = self.take(digits as usize)?;
        let used = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        let magnitude = &bytes[..used];
        // The BEAM treats any non-zero sign byte as negative.
        let negative = sign != 0;
        if used <= 8 {
            let mut word = [0u8; 8];
            word[..used].copy_from_slice(magnitude);
            let value = u64::from_le_bytes(word);
            let fitted = if negative {
                0i64.checked_sub_unsigned(value)
                    .or((value == 1 << 63).then_some(i64::MIN))
            } else {
                i64::try_from(value).ok()
            };
            if let Some(i) = fitted {
                return Ok(Term::Int(i));
            }
        }
        Ok(Term::Big(BigInt {
            negative,
            magnitude: magnitude.to_vec(),
        }))
    }

    fn new_float(&mut self, at: usize) -> Result<Term, DecodeError> {
        let x = f64::from_bits(self.u64()?);
        if !x.is_finite() {
            return Err(DecodeError::FloatNotFinite { offset: at });
        }
        Ok(Term::Float(x))
    }

    /// `FLOAT_EXT`: 31 bytes of text, NUL-padded. The BEAM takes exactly
    /// `[+-]digits(.|,)digits([eE][+-]digits)` and refuses overflow; so do we.
    fn old_float(&mut self, at: usize) -> Result<Term, DecodeError> {
        let raw = self.take(31)?;
        let text = &raw[..raw.iter().position(|&b| b == 0).unwrap_or(raw.len())];
        let bad = DecodeError::BadFloatText { offset: at };
        let mut i = 0;
        let digits = |i: &mut usize| {
            let start = *i;
            while text.get(*i).is_some_and(u8::is_ascii_digit) {
                *i += 1;
            }
            *i > start
        };
        if matches!(text.first(), Some(b'+' | b'-')) {
            i += 1;
        }
        if !digits(&mut i) || !matches!(text.get(i), Some(b'.' | b',')) {
            return Err(bad);
        }
        let point = i;
        i += 1;
        if !digits(&mut i) {
            return Err(bad);
        }
        if matches!(text.get(i), Some(b'e' | b'E')) {
            i += 1;
            if matches!(text.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            if !digits(&mut i) {
                return Err(bad);
            }
        }
        if i != text.len() {
            return Err(bad);
        }
        let mut ascii = [0u8; 31];
        ascii[..text.len()].copy_from_slice(text);
        ascii[point] = b'.';
        let parsed = std::str::from_utf8(&ascii[..text.len()])
            .ok()
            .and_then(|s| s.parse::<f64>().ok());
        match parsed {
            Some(x) if x.is_finite() => Ok(Term::Float(x)),
            Some(_) => Err(DecodeError::FloatNotFinite { offset: at }),
            None => Err(bad),
        }
    }

    fn atom(&mut self) -> Result<Atom, DecodeError> {
        let at = self.pos;
        let tag = self.u8()?;
        self.atom_after_tag(at, tag)
    }

    fn atom_after_tag(&mut self, at: usize, tag: u8) -> Result<Atom, DecodeError> {
        match tag {
            SMALL_ATOM_UTF8_EXT => {
                let len = self.u8()?;
                self.utf8_atom(at, len.into())
            }
            ATOM_UTF8_EXT => {
                let len = self.u16()?;
                self.utf8_atom(at, len.into())
            }
            SMALL_ATOM_EXT => {
                let len = self.u8()?;
                self.latin1_atom(at, len.into())
            }
            ATOM_EXT => {
                let len = self.u16()?;
                self.latin1_atom(at, len.into())
            }
            ATOM_CACHE_REF => {
                let index = self.u8()?;
                let cache = self
                    .atom_cache
                    .ok_or(DecodeError::NoAtomCache { offset: at })?;
                cache
                    .get(usize::from(index))
                    .cloned()
                    .ok_or(DecodeError::AtomCacheIndex {
                        offset: at,
                        index,
                        cache_len: cache.len(),
                    })
            }
            _ => Err(DecodeError::NotAnAtom { offset: at, tag }),
        }
    }

    fn utf8_atom(&mut self, at: usize, len: usize) -> Result<Atom, DecodeError> {
        let bytes = self.take(len)?;
        let text =
            std::str::from_utf8(bytes).map_err(|_| DecodeError::AtomNotUtf8 { offset: at })?;
        if len > Atom::MAX_CHARS {
            let chars = text.chars().count();
            if chars > Atom::MAX_CHARS {
                return Err(DecodeError::AtomTooLong { offset: at, chars });
            }
        }
        Ok(Atom::new(text))
    }

    fn latin1_atom(&mut self, at: usize, len: usize) -> Result<Atom, DecodeError> {
        if len > Atom::MAX_CHARS {
            return Err(DecodeError::AtomTooLong {
                offset: at,
                chars: len,
            });
        }
        let bytes = self.take(len)?;
        Ok(match std::str::from_utf8(bytes) {
            Ok(ascii) if bytes.is_ascii() => Atom::new(ascii),
            _ => Atom::from(bytes.iter().map(|&b| char::from(b)).collect::<String>()),
        })
    }

    fn tuple(&mut self, at: usize, tag: u8, depth: usize) -> Result<Term, DecodeError> {
        let inner = Self::nested(depth, at)?;
        let arity = if tag == SMALL_TUPLE_EXT {
            self.u8()?.into()
        } else {
            self.u32()?
        };
        self.claim(at, arity, 1, 0)?;
        let mut items = Vec::with_capacity(arity as usize);
        for _ in 0..arity {
            self.settle();
            if !self.push_small_int(&mut items)? {
                items.push(self.value(inner)?);
            }
        }
        Ok(Term::Tuple(items))
    }

    /// Appends the bytes of a `STRING_EXT` (tag already read) as integers.
    fn string_into(&mut self, items: &mut Vec<Term>) -> Result<(), DecodeError> {
        let len = self.u16()?;
        let bytes = self.take(len.into())?;
        items.extend(bytes.iter().map(|&b| Term::Int(b.into())));
        Ok(())
    }

    /// `LIST_EXT`. A tail that is itself a list (`NIL_EXT`, `STRING_EXT`, `LIST_EXT`) is
    /// appended in a loop, as the BEAM does, so chained tails cost no recursion; a zero-length
    /// list is its tail.
    fn list(&mut self, at: usize, depth: usize) -> Result<Term, DecodeError> {
        let inner = Self::nested(depth, at)?;
        let mut items: Vec<Term> = Vec::new();
        let mut header_at = at;
        loop {
            let count = self.u32()?;
            self.claim(header_at, count, 1, 1)?;
            items.reserve(count as usize);
            for _ in 0..count {
                self.settle();
                if !self.push_small_int(&mut items)? {
                    items.push(self.value(inner)?);
                }
            }
            self.settle();
            header_at = self.pos;
            match self.list_tail(&mut items)? {
                Tail::Proper => return Ok(Term::List(items)),
                Tail::More => {}
                Tail::Other => break,
            }
        }
        let tail = self.value(inner)?;
        Ok(if items.is_empty() {
            tail
        } else {
            Term::ImproperList(items, Box::new(tail))
        })
    }

    /// Reads a list tail that is itself a list; leaves any other tail unread.
    #[inline(never)]
    fn list_tail(&mut self, items: &mut Vec<Term>) -> Result<Tail, DecodeError> {
        match self.peek()? {
            NIL_EXT => {
                self.pos += 1;
                Ok(Tail::Proper)
            }
            STRING_EXT => {
                self.pos += 1;
                self.string_into(items)?;
                Ok(Tail::Proper)
            }
            LIST_EXT => {
                self.pos += 1;
                Ok(Tail::More)
            }
            _ => Ok(Tail::Other),
        }
    }

    /// `BIT_BINARY_EXT`. Like the BEAM: 8 bits make a plain binary and the unused low bits of
    /// the last byte are cleared. Length 0 is refused, as OTP 27+ refuse it (OTP 25 read it
    /// as `<<>>`; no BEAM writes it).
    fn bit_binary(&mut self, at: usize) -> Result<Term, DecodeError> {
        let len = self.u32()?;
        let bits = self.u8()?;
        match (len, bits) {
            (1.., 8) => self.slice(len as usize).map(Term::Binary),
            (1.., 1..=7) => {
                let data = self.slice(len as usize)?;
                let mask = 0xffu8 << (8 - bits);
                let last = data[data.len() - 1];
                let data = if last & mask == last {
                    data
                } else {
                    let mut owned = data.to_vec();
                    if let Some(byte) = owned.last_mut() {
                        *byte &= mask;
                    }
                    Bytes::from(owned)
                };
                Ok(Term::Bits {
                    data,
                    last_bits: bits,
                })
            }
            _ => Err(DecodeError::BadBitCount {
                offset: at,
                len,
                bits,
            }),
        }
    }

    fn pid(&mut self) -> Result<Pid, DecodeError> {
        let at = self.pos;
        match self.u8()? {
            tag @ (NEW_PID_EXT | PID_EXT) => self.pid_after_tag(tag),
            tag => Err(DecodeError::NotAPid { offset: at, tag }),
        }
    }

    fn pid_after_tag(&mut self, tag: u8) -> Result<Pid, DecodeError> {
        let node = self.atom()?;
        let id = self.u32()?;
        let serial = self.u32()?;
        let creation = if tag == NEW_PID_EXT {
            self.u32()?
        } else {
            self.old_creation()?
        };
        Ok(Pid {
            node,
            id,
            serial,
            creation,
        })
    }

    fn port(&mut self, tag: u8) -> Result<Term, DecodeError> {
        let node = self.atom()?;
        let (id, creation) = match tag {
            V4_PORT_EXT => (self.u64()?, self.u32()?),
            NEW_PORT_EXT => (self.u32()?.into(), self.u32()?),
            _ => (self.u32()?.into(), self.old_creation()?),
        };
        Ok(Term::Port(Box::new(Port { node, id, creation })))
    }

    fn reference(&mut self, at: usize, tag: u8) -> Result<Term, DecodeError> {
        let words = if tag == REFERENCE_EXT { 1 } else { self.u16()? };
        if words == 0 || usize::from(words) > Reference::MAX_WORDS {
            return Err(DecodeError::BadReferenceLength { offset: at, words });
        }
        let node = self.atom()?;
        let mut ids = [0u32; Reference::MAX_WORDS];
        let creation = if tag == REFERENCE_EXT {
            ids[0] = self.u32()?;
            self.old_creation()?
        } else {
            let creation = if tag == NEWER_REFERENCE_EXT {
                self.u32()?
            } else {
                self.old_creation()?
            };
            for id in &mut ids[..usize::from(words)] {
                *id = self.u32()?;
            }
            creation
        };
        let reference = Reference::new(node, creation, &ids[..usize::from(words)])
            .ok_or(DecodeError::BadReferenceLength { offset: at, words })?;
        Ok(Term::Ref(Box::new(reference)))
    }

    /// An integer field inside a fun or an export, in any integer encoding.
    fn integer(&mut self) -> Result<i64, DecodeError> {
        let at = self.pos;
        match self.peek()? {
            SMALL_INTEGER_EXT | INTEGER_EXT | SMALL_BIG_EXT | LARGE_BIG_EXT => {
                match self.value(0)? {
                    Term::Int(i) => Ok(i),
                    _ => Err(DecodeError::IntegerOutOfRange { offset: at }),
                }
            }
            tag => Err(DecodeError::NotAnInteger { offset: at, tag }),
        }
    }

    /// `NEW_FUN_EXT`. Its Size field is not checked, as the BEAM does not check it either;
    /// the encoder always writes the right one.
    fn fun(&mut self, at: usize, depth: usize) -> Result<Term, DecodeError> {
        let inner = Self::nested(depth, at)?;
        let (mut fun, num_free) = self.fun_header()?;
        self.claim(at, num_free, 1, 0)?;
        fun.free_vars.reserve_exact(num_free as usize);
        for _ in 0..num_free {
            self.settle();
            if !self.push_small_int(&mut fun.free_vars)? {
                fun.free_vars.push(self.value(inner)?);
            }
        }
        Ok(Term::Fun(fun))
    }

    /// Everything of a fun before its free variables, out of the recursion's frames.
    #[inline(never)]
    fn fun_header(&mut self) -> Result<(Box<Fun>, u32), DecodeError> {
        let _size = self.u32()?;
        let arity = self.u8()?;
        let uniq = self.array::<16>()?;
        let index = self.u32()?;
        let num_free = self.u32()?;
        let module = self.atom()?;
        let old_index = self.integer()?;
        let old_uniq = self.integer()?;
        let pid = self.pid()?;
        let fun = Fun {
            arity,
            uniq,
            index,
            module,
            old_index,
            old_uniq,
            pid,
            free_vars: Vec::new(),
        };
        Ok((Box::new(fun), num_free))
    }

    fn export(&mut self) -> Result<Term, DecodeError> {
        let module = self.atom()?;
        let function = self.atom()?;
        let at = self.pos;
        let arity = u8::try_from(self.integer()?)
            .map_err(|_| DecodeError::IntegerOutOfRange { offset: at })?;
        Ok(Term::Export(Box::new(Export {
            module,
            function,
            arity,
        })))
    }

    fn map(&mut self, at: usize, depth: usize) -> Result<Term, DecodeError> {
        let inner = Self::nested(depth, at)?;
        let pairs = self.u32()?;
        self.claim(at, pairs, 2, 0)?;
        let mut items = Vec::with_capacity(pairs as usize);
        for _ in 0..pairs {
            self.settle();
            let key = self.value(inner)?;
            self.settle();
            let value = self.value(inner)?;
            items.push((key, value));
        }
        if keys::has_duplicate_keys(&items) {
            return Err(DecodeError::DuplicateMapKey { offset: at });
        }
        Ok(Term::Map(items))
    }
}

/// What follows a list's elements.
enum Tail {
    /// `[]` or a string: the list is complete and proper.
    Proper,
    /// Another `LIST_EXT` header, whose elements continue the list.
    More,
    /// Any other term: the list is improper.
    Other,
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
