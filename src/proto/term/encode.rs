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
use super::{Atom, BigInt, Fun, MAX_DEPTH, Pid, Term, VERSION, keys};
use bytes::{BufMut, BytesMut};

/// Appends the version byte and `term` to `out`.
pub fn encode(term: &Term, out: &mut BytesMut) -> Result<(), EncodeError> {
    let start = out.len();
    out.put_u8(VERSION);
    encode_body(term, out).inspect_err(|_| out.truncate(start))
}

/// Appends `term` without a version byte (after a distribution header).
pub fn encode_body(term: &Term, out: &mut BytesMut) -> Result<(), EncodeError> {
    let start = out.len();
    value(term, out, 0).inspect_err(|_| out.truncate(start))
}

/// One term. Kept small, with containers and leaves in their own functions, because it is
/// part of the recursion: its frame is paid once per nesting level.
fn value(term: &Term, out: &mut BytesMut, depth: usize) -> Result<(), EncodeError> {
    match term {
        Term::Tuple(items) => tuple(items, out, depth),
        Term::List(items) => list(items, out, depth),
        Term::ImproperList(items, tail) => improper_list(items, tail, out, depth),
        Term::Map(pairs) => map(pairs, out, depth),
        Term::Fun(f) => fun(f, out, depth),
        _ => leaf(term, out),
    }
}

#[inline(never)]
fn leaf(term: &Term, out: &mut BytesMut) -> Result<(), EncodeError> {
    match term {
        Term::Int(i) => {
            int(*i, out);
            Ok(())
        }
        Term::Big(b) => big(b, out),
        Term::Float(x) => {
            if !x.is_finite() {
                return Err(EncodeError::FloatNotFinite);
            }
            out.put_u8(NEW_FLOAT_EXT);
            out.put_f64(*x);
            Ok(())
        }
        Term::Atom(a) => atom(a, out),
        Term::Binary(b) => {
            out.put_u8(BINARY_EXT);
            out.put_u32(wire_len(BINARY_EXT, b.len())?);
            out.put_slice(b);
            Ok(())
        }
        Term::Bits { data, last_bits } => bits(data, *last_bits, out),
        Term::Pid(p) => pid(p, out),
        Term::Port(p) => {
            out.put_u8(V4_PORT_EXT);
            atom(&p.node, out)?;
            out.put_u64(p.id);
            out.put_u32(p.creation);
            Ok(())
        }
        Term::Ref(r) => {
            let ids = r.ids();
            out.put_u8(NEWER_REFERENCE_EXT);
            // A Reference holds at most five words.
            out.put_u16(ids.len() as u16);
            atom(&r.node, out)?;
            out.put_u32(r.creation);
            for id in ids {
                out.put_u32(*id);
            }
            Ok(())
        }
        Term::Export(e) => {
            out.put_u8(EXPORT_EXT);
            atom(&e.module, out)?;
            atom(&e.function, out)?;
            out.put_u8(SMALL_INTEGER_EXT);
            out.put_u8(e.arity);
            Ok(())
        }
        Term::Tuple(_) | Term::List(_) | Term::ImproperList(..) | Term::Map(_) | Term::Fun(_) => {
            value(term, out, 0)
        }
    }
}

fn tuple(items: &[Term], out: &mut BytesMut, depth: usize) -> Result<(), EncodeError> {
    let inner = nested(depth)?;
    match u8::try_from(items.len()) {
        Ok(arity) => {
            out.put_u8(SMALL_TUPLE_EXT);
            out.put_u8(arity);
        }
        Err(_) => {
            out.put_u8(LARGE_TUPLE_EXT);
            out.put_u32(wire_len(LARGE_TUPLE_EXT, items.len())?);
        }
    }
    all(items, out, inner)
}

fn list(items: &[Term], out: &mut BytesMut, depth: usize) -> Result<(), EncodeError> {
    if items.is_empty() {
        out.put_u8(NIL_EXT);
        return Ok(());
    }
    // A STRING_EXT is a leaf for the depth limit, as in the decoder.
    if items.len() <= usize::from(u16::MAX) && items.iter().all(|t| byte_value(t).is_some()) {
        out.put_u8(STRING_EXT);
        out.put_u16(items.len() as u16);
        out.extend(items.iter().filter_map(byte_value));
        return Ok(());
    }
    let inner = nested(depth)?;
    out.put_u8(LIST_EXT);
    out.put_u32(wire_len(LIST_EXT, items.len())?);
    all(items, out, inner)?;
    out.put_u8(NIL_EXT);
    Ok(())
}

fn improper_list(
    items: &[Term],
    tail: &Term,
    out: &mut BytesMut,
    depth: usize,
) -> Result<(), EncodeError> {
    let inner = nested(depth)?;
    if items.is_empty() {
        return Err(EncodeError::EmptyImproperHead);
    }
    if matches!(tail, Term::List(_) | Term::ImproperList(..)) {
        return Err(EncodeError::ListTail);
    }
    out.put_u8(LIST_EXT);
    out.put_u32(wire_len(LIST_EXT, items.len())?);
    all(items, out, inner)?;
    value(tail, out, inner)
}

fn map(pairs: &[(Term, Term)], out: &mut BytesMut, depth: usize) -> Result<(), EncodeError> {
    let inner = nested(depth)?;
    out.put_u8(MAP_EXT);
    out.put_u32(wire_len(MAP_EXT, pairs.len())?);
    for (k, v) in pairs {
        value(k, out, inner)?;
        value(v, out, inner)?;
    }
    // Checked after the keys were written, so their depth was checked first.
    if keys::has_duplicate_keys(pairs) {
        return Err(EncodeError::DuplicateMapKey);
    }
    Ok(())
}

fn nested(depth: usize) -> Result<usize, EncodeError> {
    if depth >= MAX_DEPTH {
        return Err(EncodeError::TooDeep);
    }
    Ok(depth + 1)
}

fn all(items: &[Term], out: &mut BytesMut, depth: usize) -> Result<(), EncodeError> {
    for t in items {
        value(t, out, depth)?;
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

fn int(i: i64, out: &mut BytesMut) {
    if let Ok(small) = u8::try_from(i) {
        out.put_u8(SMALL_INTEGER_EXT);
        out.put_u8(small);
    } else if let Ok(word) = i32::try_from(i) {
        out.put_u8(INTEGER_EXT);
        out.put_i32(word);
    } else {
        let magnitude = i.unsigned_abs().to_le_bytes();
        let used = magnitude.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
        out.put_u8(SMALL_BIG_EXT);
        out.put_u8(used as u8);
        out.put_u8(u8::from(i < 0));
        out.put_slice(&magnitude[..used]);
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

fn big(b: &BigInt, out: &mut BytesMut) -> Result<(), EncodeError> {
    if let Some(i) = big_as_i64(b) {
        int(i, out);
        return Ok(());
    }
    let used = b
        .magnitude
        .iter()
        .rposition(|&d| d != 0)
        .map_or(0, |p| p + 1);
    match u8::try_from(used) {
        Ok(n) => {
            out.put_u8(SMALL_BIG_EXT);
            out.put_u8(n);
        }
        Err(_) => {
            out.put_u8(LARGE_BIG_EXT);
            out.put_u32(wire_len(LARGE_BIG_EXT, used)?);
        }
    }
    out.put_u8(u8::from(b.negative));
    out.put_slice(&b.magnitude[..used]);
    Ok(())
}

fn atom(a: &Atom, out: &mut BytesMut) -> Result<(), EncodeError> {
    let text = a.as_str();
    if text.len() > Atom::MAX_CHARS {
        let chars = text.chars().count();
        if chars > Atom::MAX_CHARS {
            return Err(EncodeError::AtomTooLong { chars });
        }
    }
    match u8::try_from(text.len()) {
        Ok(len) => {
            out.put_u8(SMALL_ATOM_UTF8_EXT);
            out.put_u8(len);
        }
        Err(_) => {
            out.put_u8(ATOM_UTF8_EXT);
            // At most 255 characters of at most 4 bytes.
            out.put_u16(text.len() as u16);
        }
    }
    out.put_slice(text.as_bytes());
    Ok(())
}

fn bits(data: &[u8], last_bits: u8, out: &mut BytesMut) -> Result<(), EncodeError> {
    if !(1..=7).contains(&last_bits) {
        return Err(EncodeError::BadBitCount { last_bits });
    }
    let Some((&last, head)) = data.split_last() else {
        return Err(EncodeError::EmptyBits);
    };
    out.put_u8(BIT_BINARY_EXT);
    out.put_u32(wire_len(BIT_BINARY_EXT, data.len())?);
    out.put_u8(last_bits);
    out.put_slice(head);
    out.put_u8(last & (0xff << (8 - last_bits)));
    Ok(())
}

fn pid(p: &Pid, out: &mut BytesMut) -> Result<(), EncodeError> {
    out.put_u8(NEW_PID_EXT);
    atom(&p.node, out)?;
    out.put_u32(p.id);
    out.put_u32(p.serial);
    out.put_u32(p.creation);
    Ok(())
}

fn fun(f: &Fun, out: &mut BytesMut, depth: usize) -> Result<(), EncodeError> {
    let inner = nested(depth)?;
    out.put_u8(NEW_FUN_EXT);
    let size_at = out.len();
    out.put_u32(0);
    out.put_u8(f.arity);
    out.put_slice(&f.uniq);
    out.put_u32(f.index);
    out.put_u32(wire_len(NEW_FUN_EXT, f.free_vars.len())?);
    atom(&f.module, out)?;
    int(f.old_index, out);
    int(f.old_uniq, out);
    pid(&f.pid, out)?;
    all(&f.free_vars, out, inner)?;
    // Size counts from the Size field itself to the end of the free variables.
    let size = wire_len(NEW_FUN_EXT, out.len() - size_at)?;
    out[size_at..size_at + 4].copy_from_slice(&size.to_be_bytes());
    Ok(())
}
