//! Encoding of terms in the external format, byte for byte as `term_to_binary(T,
//! [{minor_version, 2}])` of OTP 25+ writes them (the default of `term_to_binary/1` from
//! OTP 26, and what distribution always uses):
//!
//! * integers: `SMALL_INTEGER_EXT` for 0..=255, `INTEGER_EXT` for other `i32`, otherwise
//!   `SMALL_BIG_EXT` (`LARGE_BIG_EXT` past 255 magnitude bytes), whatever their [`Term`] form;
//! * `NEW_FLOAT_EXT`; `SMALL_ATOM_UTF8_EXT`, or `ATOM_UTF8_EXT` past 255 bytes;
//! * `STRING_EXT` for a proper, non-empty list of at most 65535 integers in 0..=255,
//!   otherwise `LIST_EXT` (improper lists too); `NIL_EXT` for `[]`;
//! * `BINARY_EXT`, `BIT_BINARY_EXT` (unused low bits cleared);
//! * `NEW_PID_EXT`, `NEWER_REFERENCE_EXT`; `V4_PORT_EXT` for every port, as OTP 27+ do
//!   (OTP 25 writes `NEW_PORT_EXT` below 2^28; every release from 24 on reads both);
//! * `MAP_EXT` with the pairs in their stored order, `NEW_FUN_EXT` with its Size computed,
//!   `EXPORT_EXT`.
//!
//! On error nothing is appended to the output.

use super::error::EncodeError;
use super::tag::*;
use super::{Atom, BigInt, Fun, MAX_DEPTH, Pid, Record, Reference, Term, VERSION, keys};
use bytes::{BufMut, BytesMut};

/// Appends the version byte and `term` to `out`.
pub fn encode(term: &Term, out: &mut BytesMut) -> Result<(), EncodeError> {
    let start = out.len();
    out.put_u8(VERSION);
    encode_body(term, out).inspect_err(|_| out.truncate(start))
}

/// Appends `term` without a version byte (after a distribution header).
pub fn encode_body(term: &Term, out: &mut BytesMut) -> Result<(), EncodeError> {
    encode_body_with_refs(term, out, &[])
}

/// Appends `term` without a version byte; an atom found in `refs` (the atoms of the
/// message's distribution header) is written as `ATOM_CACHE_REF` to its index.
pub fn encode_body_with_refs(
    term: &Term,
    out: &mut BytesMut,
    refs: &[Atom],
) -> Result<(), EncodeError> {
    let start = out.len();
    let mut e = Enc {
        out,
        refs,
        at: &[],
        holes: None,
    };
    value(term, &mut e, 0).inspect_err(|_| e.out.truncate(start))
}

/// Binaries at least this long may be left out of the encoded bytes and sent from their own
/// buffer (see [`Holes`]).
pub const ZERO_COPY_MIN: usize = 4096;

/// Large binaries left out of an encoding: each is `(offset, bytes)`, the bytes belonging at
/// that offset of the output. The caller sends them from their own buffers (vectored
/// writes), so a large binary is never copied by the encoder.
pub type Holes = Vec<(usize, bytes::Bytes)>;

/// Where the bytes go, which atoms are written as references, and where large binaries are
/// left out.
pub(crate) struct Enc<'a> {
    pub(crate) out: &'a mut BytesMut,
    pub(crate) refs: &'a [Atom],
    /// Atoms of the message being written, by address (see [`atom_address`]), with their
    /// index in `refs`: the atom cache walked the same message just before, so most atoms
    /// are found here without comparing their text.
    pub(crate) at: &'a [(usize, u8)],
    pub(crate) holes: Option<&'a mut Holes>,
}

/// Where an atom of the message lives: the key of [`Enc::at`]. Only compared, never turned
/// back into a reference.
pub(crate) fn atom_address(a: &Atom) -> usize {
    std::ptr::from_ref(a) as usize
}

/// Encoders for the parts of a term, for writing control tuples without building them.
pub(crate) mod parts {
    use super::*;

    /// A tuple header of `arity` elements.
    pub(crate) fn tuple_header(e: &mut Enc<'_>, arity: usize) -> Result<(), EncodeError> {
        match u8::try_from(arity) {
            Ok(arity) => {
                e.out.put_u8(SMALL_TUPLE_EXT);
                e.out.put_u8(arity);
            }
            Err(_) => {
                e.out.put_u8(LARGE_TUPLE_EXT);
                e.out.put_u32(wire_len(LARGE_TUPLE_EXT, arity)?);
            }
        }
        Ok(())
    }

    /// An integer in its smallest form.
    pub(crate) fn int(e: &mut Enc<'_>, i: i64) {
        super::int(i, e)
    }

    /// An atom (a reference when it is in the header).
    pub(crate) fn atom(e: &mut Enc<'_>, a: &Atom) -> Result<(), EncodeError> {
        super::atom(a, e)
    }

    /// A pid.
    pub(crate) fn pid(e: &mut Enc<'_>, p: &Pid) -> Result<(), EncodeError> {
        super::pid(p, e)
    }

    /// A reference.
    pub(crate) fn reference(e: &mut Enc<'_>, r: &Reference) -> Result<(), EncodeError> {
        super::reference(r, e)
    }

    /// Any term.
    pub(crate) fn term(e: &mut Enc<'_>, t: &Term) -> Result<(), EncodeError> {
        super::value(t, e, 0)
    }
}

/// One term. Kept small, with containers and leaves in their own functions, because it is
/// part of the recursion: its frame is paid once per nesting level.
fn value(term: &Term, e: &mut Enc<'_>, depth: usize) -> Result<(), EncodeError> {
    match term {
        Term::Tuple(items) => tuple(items, e, depth),
        Term::List(items) => list(items, e, depth),
        Term::ImproperList(items, tail) => improper_list(items, tail, e, depth),
        Term::Map(pairs) => map(pairs, e, depth),
        Term::Fun(f) => fun(f, e, depth),
        Term::Record(r) => record(r, e, depth),
        _ => leaf(term, e),
    }
}

#[inline(never)]
fn leaf(term: &Term, e: &mut Enc<'_>) -> Result<(), EncodeError> {
    match term {
        Term::Int(i) => {
            int(*i, e);
            Ok(())
        }
        Term::Big(b) => big(b, e),
        Term::Float(x) => {
            if !x.is_finite() {
                return Err(EncodeError::FloatNotFinite);
            }
            e.out.put_u8(NEW_FLOAT_EXT);
            e.out.put_f64(*x);
            Ok(())
        }
        Term::Atom(a) => atom(a, e),
        Term::Binary(b) => {
            e.out.put_u8(BINARY_EXT);
            e.out.put_u32(wire_len(BINARY_EXT, b.len())?);
            match &mut e.holes {
                Some(holes) if b.len() >= ZERO_COPY_MIN => holes.push((e.out.len(), b.clone())),
                _ => e.out.put_slice(b),
            }
            Ok(())
        }
        Term::Bits { data, last_bits } => bits(data, *last_bits, e),
        Term::Pid(p) => pid(p, e),
        Term::Port(p) => {
            e.out.put_u8(V4_PORT_EXT);
            atom(&p.node, e)?;
            e.out.put_u64(p.id);
            e.out.put_u32(p.creation);
            Ok(())
        }
        Term::Ref(r) => reference(r, e),
        Term::Export(x) => {
            e.out.put_u8(EXPORT_EXT);
            atom(&x.module, e)?;
            atom(&x.function, e)?;
            e.out.put_u8(SMALL_INTEGER_EXT);
            e.out.put_u8(x.arity);
            Ok(())
        }
        Term::Tuple(_)
        | Term::List(_)
        | Term::ImproperList(..)
        | Term::Map(_)
        | Term::Fun(_)
        | Term::Record(_) => value(term, e, 0),
    }
}

fn tuple(items: &[Term], e: &mut Enc<'_>, depth: usize) -> Result<(), EncodeError> {
    let inner = nested(depth)?;
    match u8::try_from(items.len()) {
        Ok(arity) => {
            e.out.put_u8(SMALL_TUPLE_EXT);
            e.out.put_u8(arity);
        }
        Err(_) => {
            e.out.put_u8(LARGE_TUPLE_EXT);
            e.out.put_u32(wire_len(LARGE_TUPLE_EXT, items.len())?);
        }
    }
    all(items, e, inner)
}

fn list(items: &[Term], e: &mut Enc<'_>, depth: usize) -> Result<(), EncodeError> {
    if items.is_empty() {
        e.out.put_u8(NIL_EXT);
        return Ok(());
    }
    // A STRING_EXT is a leaf for the depth limit, as in the decoder.
    if items.len() <= usize::from(u16::MAX) && items.iter().all(|t| byte_value(t).is_some()) {
        e.out.put_u8(STRING_EXT);
        e.out.put_u16(items.len() as u16);
        e.out.extend(items.iter().filter_map(byte_value));
        return Ok(());
    }
    let inner = nested(depth)?;
    e.out.put_u8(LIST_EXT);
    e.out.put_u32(wire_len(LIST_EXT, items.len())?);
    all(items, e, inner)?;
    e.out.put_u8(NIL_EXT);
    Ok(())
}

fn improper_list(
    items: &[Term],
    tail: &Term,
    e: &mut Enc<'_>,
    depth: usize,
) -> Result<(), EncodeError> {
    let inner = nested(depth)?;
    if items.is_empty() {
        return Err(EncodeError::EmptyImproperHead);
    }
    if matches!(tail, Term::List(_) | Term::ImproperList(..)) {
        return Err(EncodeError::ListTail);
    }
    e.out.put_u8(LIST_EXT);
    e.out.put_u32(wire_len(LIST_EXT, items.len())?);
    all(items, e, inner)?;
    value(tail, e, inner)
}

fn map(pairs: &[(Term, Term)], e: &mut Enc<'_>, depth: usize) -> Result<(), EncodeError> {
    let inner = nested(depth)?;
    e.out.put_u8(MAP_EXT);
    e.out.put_u32(wire_len(MAP_EXT, pairs.len())?);
    for (k, v) in pairs {
        value(k, e, inner)?;
        value(v, e, inner)?;
    }
    // Checked after the keys were written, so their depth was checked first.
    if keys::has_duplicate_keys(pairs) {
        return Err(EncodeError::DuplicateMapKey);
    }
    Ok(())
}

/// `RECORD_EXT`, laid out as OTP 29.1's `term_to_binary/1` writes it.
fn record(r: &Record, e: &mut Enc<'_>, depth: usize) -> Result<(), EncodeError> {
    let inner = nested(depth)?;
    if r.has_duplicate_fields() {
        return Err(EncodeError::DuplicateRecordField);
    }
    e.out.put_u8(RECORD_EXT);
    e.out.put_u32(wire_len(RECORD_EXT, r.fields.len())?);
    e.out.put_u8(u8::from(r.exported));
    atom(&r.module, e)?;
    atom(&r.name, e)?;
    for (name, _) in &r.fields {
        atom(name, e)?;
    }
    for (_, value) in &r.fields {
        self::value(value, e, inner)?;
    }
    Ok(())
}

fn nested(depth: usize) -> Result<usize, EncodeError> {
    if depth >= MAX_DEPTH {
        return Err(EncodeError::TooDeep);
    }
    Ok(depth + 1)
}

fn all(items: &[Term], e: &mut Enc<'_>, depth: usize) -> Result<(), EncodeError> {
    for t in items {
        value(t, e, depth)?;
    }
    Ok(())
}

fn wire_len(tag: u8, len: usize) -> Result<u32, EncodeError> {
    u32::try_from(len).map_err(|_| EncodeError::TooLong { tag, len })
}

/// The integer's value when it is one in 0..=255 (such lists become `STRING_EXT`).
fn byte_value(term: &Term) -> Option<u8> {
    match term {
        Term::Int(i) => u8::try_from(*i).ok(),
        Term::Big(b) => big_as_i64(b).and_then(|i| u8::try_from(i).ok()),
        _ => None,
    }
}

fn int(i: i64, e: &mut Enc<'_>) {
    if let Ok(small) = u8::try_from(i) {
        e.out.put_u8(SMALL_INTEGER_EXT);
        e.out.put_u8(small);
    } else if let Ok(word) = i32::try_from(i) {
        e.out.put_u8(INTEGER_EXT);
        e.out.put_i32(word);
    } else {
        let magnitude = i.unsigned_abs().to_le_bytes();
        let used = magnitude.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
        e.out.put_u8(SMALL_BIG_EXT);
        e.out.put_u8(used as u8);
        e.out.put_u8(u8::from(i < 0));
        e.out.put_slice(&magnitude[..used]);
    }
}

/// The value of a [`BigInt`] that fits in an `i64` (built by hand, not normalised).
fn big_as_i64(b: &BigInt) -> Option<i64> {
    let used = b
        .magnitude
        .iter()
        .rposition(|&d| d != 0)
        .map_or(0, |p| p + 1);
    if used > 8 {
        return None;
    }
    let mut word = [0u8; 8];
    word[..used].copy_from_slice(&b.magnitude[..used]);
    let value = u64::from_le_bytes(word);
    if b.negative {
        0i64.checked_sub_unsigned(value)
            .or((value == 1 << 63).then_some(i64::MIN))
    } else {
        i64::try_from(value).ok()
    }
}

fn big(b: &BigInt, e: &mut Enc<'_>) -> Result<(), EncodeError> {
    if let Some(i) = big_as_i64(b) {
        int(i, e);
        return Ok(());
    }
    let used = b
        .magnitude
        .iter()
        .rposition(|&d| d != 0)
        .map_or(0, |p| p + 1);
    match u8::try_from(used) {
        Ok(n) => {
            e.out.put_u8(SMALL_BIG_EXT);
            e.out.put_u8(n);
        }
        Err(_) => {
            e.out.put_u8(LARGE_BIG_EXT);
            e.out.put_u32(wire_len(LARGE_BIG_EXT, used)?);
        }
    }
    e.out.put_u8(u8::from(b.negative));
    e.out.put_slice(&b.magnitude[..used]);
    Ok(())
}

fn atom(a: &Atom, e: &mut Enc<'_>) -> Result<(), EncodeError> {
    let address = atom_address(a);
    if let Some(&(_, index)) = e.at.iter().find(|(at, _)| *at == address) {
        e.out.put_u8(ATOM_CACHE_REF);
        e.out.put_u8(index);
        return Ok(());
    }
    if let Some(index) = e.refs.iter().position(|r| r == a) {
        e.out.put_u8(ATOM_CACHE_REF);
        e.out.put_u8(index as u8);
        return Ok(());
    }
    let text = a.as_str();
    if text.len() > Atom::MAX_CHARS {
        let chars = text.chars().count();
        if chars > Atom::MAX_CHARS {
            return Err(EncodeError::AtomTooLong { chars });
        }
    }
    match u8::try_from(text.len()) {
        Ok(len) => {
            e.out.put_u8(SMALL_ATOM_UTF8_EXT);
            e.out.put_u8(len);
        }
        Err(_) => {
            e.out.put_u8(ATOM_UTF8_EXT);
            // At most 255 characters of at most 4 bytes.
            e.out.put_u16(text.len() as u16);
        }
    }
    e.out.put_slice(text.as_bytes());
    Ok(())
}

fn bits(data: &[u8], last_bits: u8, e: &mut Enc<'_>) -> Result<(), EncodeError> {
    if !(1..=7).contains(&last_bits) {
        return Err(EncodeError::BadBitCount { last_bits });
    }
    let Some((&last, head)) = data.split_last() else {
        return Err(EncodeError::EmptyBits);
    };
    e.out.put_u8(BIT_BINARY_EXT);
    e.out.put_u32(wire_len(BIT_BINARY_EXT, data.len())?);
    e.out.put_u8(last_bits);
    e.out.put_slice(head);
    e.out.put_u8(last & (0xff << (8 - last_bits)));
    Ok(())
}

fn reference(r: &Reference, e: &mut Enc<'_>) -> Result<(), EncodeError> {
    let ids = r.ids();
    e.out.put_u8(NEWER_REFERENCE_EXT);
    // A Reference holds at most five words.
    e.out.put_u16(ids.len() as u16);
    atom(&r.node, e)?;
    e.out.put_u32(r.creation);
    for id in ids {
        e.out.put_u32(*id);
    }
    Ok(())
}

fn pid(p: &Pid, e: &mut Enc<'_>) -> Result<(), EncodeError> {
    e.out.put_u8(NEW_PID_EXT);
    atom(&p.node, e)?;
    e.out.put_u32(p.id);
    e.out.put_u32(p.serial);
    e.out.put_u32(p.creation);
    Ok(())
}

fn fun(f: &Fun, e: &mut Enc<'_>, depth: usize) -> Result<(), EncodeError> {
    let inner = nested(depth)?;
    e.out.put_u8(NEW_FUN_EXT);
    let size_at = e.out.len();
    e.out.put_u32(0);
    e.out.put_u8(f.arity);
    e.out.put_slice(&f.uniq);
    e.out.put_u32(f.index);
    e.out.put_u32(wire_len(NEW_FUN_EXT, f.free_vars.len())?);
    atom(&f.module, e)?;
    int(f.old_index, e);
    int(f.old_uniq, e);
    pid(&f.pid, e)?;
    all(&f.free_vars, e, inner)?;
    // Size counts from the Size field itself to the end of the free variables.
    let size = wire_len(NEW_FUN_EXT, e.out.len() - size_at)?;
    e.out[size_at..size_at + 4].copy_from_slice(&size.to_be_bytes());
    Ok(())
}
