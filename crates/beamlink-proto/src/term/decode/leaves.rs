//! Terms that hold no other term: numbers, atoms, binaries, pids, ports, references and
//! external funs.

use super::Decoder;
use crate::term::error::DecodeError;
use crate::term::tag::*;
use crate::term::{Atom, BigInt, Export, Pid, Port, Reference, Term};
use bytes::Bytes;

impl Decoder<'_> {
    #[inline(never)]
    pub(super) fn leaf(&mut self, at: usize, tag: u8) -> Result<Term, DecodeError> {
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

    pub(super) fn slice(&mut self, len: usize) -> Result<Bytes, DecodeError> {
        let start = self.pos;
        self.take(len)?;
        Ok(self.buf.slice(start..self.pos))
    }

    pub(super) fn big(&mut self, digits: u32) -> Result<Term, DecodeError> {
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

    pub(super) fn new_float(&mut self, at: usize) -> Result<Term, DecodeError> {
        let x = f64::from_bits(self.u64()?);
        if !x.is_finite() {
            return Err(DecodeError::FloatNotFinite { offset: at });
        }
        Ok(Term::Float(x))
    }

    /// `FLOAT_EXT`: 31 bytes of text, NUL-padded. The BEAM takes exactly
    /// `[+-]digits(.|,)digits([eE][+-]digits)` and refuses overflow; so do we.
    pub(super) fn old_float(&mut self, at: usize) -> Result<Term, DecodeError> {
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

    pub(super) fn atom(&mut self) -> Result<Atom, DecodeError> {
        let at = self.pos;
        let tag = self.u8()?;
        self.atom_after_tag(at, tag)
    }

    pub(super) fn atom_after_tag(&mut self, at: usize, tag: u8) -> Result<Atom, DecodeError> {
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

    pub(super) fn utf8_atom(&mut self, at: usize, len: usize) -> Result<Atom, DecodeError> {
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

    pub(super) fn latin1_atom(&mut self, at: usize, len: usize) -> Result<Atom, DecodeError> {
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

    /// `BIT_BINARY_EXT`. Like the BEAM: 8 bits make a plain binary and the unused low bits of
    /// the last byte are cleared. Length 0 is refused, as OTP 27+ refuse it (OTP 25 read it
    /// as `<<>>`; no BEAM writes it).
    pub(super) fn bit_binary(&mut self, at: usize) -> Result<Term, DecodeError> {
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

    pub(super) fn pid(&mut self) -> Result<Pid, DecodeError> {
        let at = self.pos;
        match self.u8()? {
            tag @ (NEW_PID_EXT | PID_EXT) => self.pid_after_tag(tag),
            tag => Err(DecodeError::NotAPid { offset: at, tag }),
        }
    }

    pub(super) fn pid_after_tag(&mut self, tag: u8) -> Result<Pid, DecodeError> {
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

    pub(super) fn port(&mut self, tag: u8) -> Result<Term, DecodeError> {
        let node = self.atom()?;
        let (id, creation) = match tag {
            V4_PORT_EXT => (self.u64()?, self.u32()?),
            NEW_PORT_EXT => (self.u32()?.into(), self.u32()?),
            _ => (self.u32()?.into(), self.old_creation()?),
        };
        Ok(Term::Port(Box::new(Port { node, id, creation })))
    }

    pub(super) fn reference(&mut self, at: usize, tag: u8) -> Result<Term, DecodeError> {
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
    pub(super) fn integer(&mut self) -> Result<i64, DecodeError> {
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

    pub(super) fn export(&mut self) -> Result<Term, DecodeError> {
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
}
