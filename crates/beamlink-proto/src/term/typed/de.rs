//! Terms to Rust values: a serde `Deserializer` over a borrowed [`Term`] (the mapping is the
//! table of the module docs). The Rust type leads: each `deserialize_*` checks that the term
//! is of a kind that type accepts and reports the term it found otherwise.

use super::super::{BigInt, Term, encode};
use super::access::{ByteSeq, Enum, Map, Seq};
use super::error::{Error, ErrorKind};
use super::{
    ATOM_NEWTYPE, ELIXIR_PREFIX, MAX_SERDE_DEPTH, Options, STRUCT_KEY, TERM_NEWTYPE, describe,
};
use ::serde::de::{self, Expected, Visitor};
use bytes::BytesMut;

/// Deserializes Rust values from a borrowed [`Term`]. [`from_term`](super::from_term) is the
/// usual way in.
///
/// ```
/// use beamlink_proto::term::Term;
/// use beamlink_proto::term::typed::Deserializer;
/// use serde::Deserialize;
///
/// let term = Term::tuple([Term::Int(1), Term::binary("one")]);
/// let (n, name) = <(u8, &str)>::deserialize(Deserializer::new(&term))?;
/// assert_eq!((n, name), (1, "one"));
/// # Ok::<(), beamlink_proto::term::typed::Error>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Deserializer<'de> {
    term: &'de Term,
    options: Options,
    depth: usize,
}

impl<'de> Deserializer<'de> {
    /// A deserializer of `term` with Elixir's conventions.
    pub fn new(term: &'de Term) -> Deserializer<'de> {
        Deserializer::with_options(term, Options::default())
    }

    /// A deserializer of `term` with `options`.
    pub fn with_options(term: &'de Term, options: Options) -> Deserializer<'de> {
        Deserializer {
            term,
            options,
            depth: 0,
        }
    }

    /// A deserializer for `term`, a part of this one's term.
    pub(crate) fn child(&self, term: &'de Term) -> Result<Deserializer<'de>, Error> {
        if self.depth >= MAX_SERDE_DEPTH {
            return Err(Error::new(ErrorKind::TooDeep));
        }
        Ok(Deserializer {
            term,
            options: self.options,
            depth: self.depth + 1,
        })
    }

    pub(crate) fn term(&self) -> &'de Term {
        self.term
    }

    /// The term is not what `expected` describes.
    pub(crate) fn invalid(&self, expected: impl std::fmt::Display) -> Error {
        Error::new(ErrorKind::InvalidType {
            expected: expected.to_string(),
            found: describe(self.term),
        })
    }

    /// Finishes a visit of this deserializer's term: a visitor's own refusal of the term
    /// names the term, not serde's view of it.
    fn done<T>(&self, result: Result<T, Error>) -> Result<T, Error> {
        result.map_err(|e| e.refine(|| describe(self.term)))
    }

    /// The integer, for an integer type whose name is `ty`.
    fn integer<T>(&self, ty: &'static str) -> Result<T, Error>
    where
        T: TryFrom<i64> + TryFrom<i128> + TryFrom<u128>,
    {
        let fits = match self.term {
            Term::Int(i) => T::try_from(*i).ok(),
            Term::Big(b) => match wide(b) {
                Some(Wide::Negative(i)) => T::try_from(i).ok(),
                Some(Wide::Positive(u)) => T::try_from(u).ok(),
                None => None,
            },
            _ => return Err(self.invalid("an integer")),
        };
        fits.ok_or_else(|| {
            Error::new(ErrorKind::IntegerOutOfRange {
                expected: ty,
                value: self.term.to_string(),
            })
        })
    }

    fn float(&self) -> Result<f64, Error> {
        /// Integers up to this magnitude are exact in an `f64`.
        const EXACT: u64 = 1 << 53;
        match self.term {
            Term::Float(x) => Ok(*x),
            Term::Int(i) if i.unsigned_abs() <= EXACT => Ok(*i as f64),
            Term::Int(_) | Term::Big(_) => Err(Error::new(ErrorKind::InvalidValue {
                expected: "a float, or an integer of at most 2^53".into(),
                found: describe(self.term),
            })),
            _ => Err(self.invalid("a float")),
        }
    }

    /// The Elixir struct check: `name` is the Rust struct's serde name.
    fn check_struct(&self, name: &'static str, pairs: &[(Term, Term)]) -> Result<(), Error> {
        if !name.starts_with(ELIXIR_PREFIX) {
            return Ok(());
        }
        match pairs.iter().find(|(k, _)| k.is_atom(STRUCT_KEY)) {
            None => Err(Error::new(ErrorKind::NotAStruct { expected: name })),
            Some((_, module)) if module.is_atom(name) => Ok(()),
            Some((_, module)) => Err(Error::new(ErrorKind::WrongStruct {
                expected: name,
                found: module.to_string(),
            })),
        }
    }
}

/// An integer that does not fit an `i64` but may fit 128 bits.
enum Wide {
    Negative(i128),
    Positive(u128),
}

fn wide(b: &BigInt) -> Option<Wide> {
    if b.magnitude.len() > 16 {
        return None;
    }
    let mut word = [0u8; 16];
    word[..b.magnitude.len()].copy_from_slice(&b.magnitude);
    let magnitude = u128::from_le_bytes(word);
    if b.negative {
        0i128.checked_sub_unsigned(magnitude).map(Wide::Negative)
    } else {
        Some(Wide::Positive(magnitude))
    }
}

/// The characters of a charlist, if `items` is one.
fn charlist(items: &[Term]) -> Option<String> {
    items
        .iter()
        .map(|t| {
            t.as_i64()
                .and_then(|i| u32::try_from(i).ok())
                .and_then(char::from_u32)
        })
        .collect()
}

/// The bytes of a list of integers 0..=255, if `items` is one.
fn byte_list(items: &[Term]) -> Option<Vec<u8>> {
    items
        .iter()
        .map(|t| t.as_i64().and_then(|i| u8::try_from(i).ok()))
        .collect()
}

macro_rules! integer {
    ($($method:ident $visit:ident $ty:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            let value = self.integer::<$ty>(stringify!($ty))?;
            self.done(visitor.$visit(value))
        }
    )*};
}

impl<'de> de::Deserializer<'de> for Deserializer<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let result = match self.term {
            Term::Int(i) => visitor.visit_i64(*i),
            Term::Big(b) => match wide(b) {
                Some(Wide::Negative(i)) => visitor.visit_i128(i),
                Some(Wide::Positive(u)) => match u64::try_from(u) {
                    Ok(u) => visitor.visit_u64(u),
                    Err(_) => visitor.visit_u128(u),
                },
                None => {
                    return Err(Error::new(ErrorKind::Unsupported {
                        found: describe(self.term),
                    }));
                }
            },
            Term::Float(x) => visitor.visit_f64(*x),
            Term::Atom(a) => match a.as_str() {
                "true" => visitor.visit_bool(true),
                "false" => visitor.visit_bool(false),
                text if text == self.options.none_atom() => visitor.visit_none(),
                text => visitor.visit_borrowed_str(text),
            },
            Term::Binary(b) => match std::str::from_utf8(b) {
                Ok(text) => visitor.visit_borrowed_str(text),
                Err(_) => visitor.visit_borrowed_bytes(b),
            },
            Term::Tuple(items) if items.is_empty() => visitor.visit_unit(),
            Term::Tuple(items) | Term::List(items) => visitor.visit_seq(Seq::new(self, items)),
            Term::Map(pairs) => visitor.visit_map(Map::new(self, pairs, false)),
            Term::Bits { .. }
            | Term::Pid(_)
            | Term::Port(_)
            | Term::Ref(_)
            | Term::Fun(_)
            | Term::Export(_)
            | Term::Record(_)
            | Term::ImproperList(..) => {
                return Err(Error::new(ErrorKind::Unsupported {
                    found: describe(self.term),
                }));
            }
        };
        self.done(result)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.term {
            Term::Atom(a) if a.as_str() == "true" => self.done(visitor.visit_bool(true)),
            Term::Atom(a) if a.as_str() == "false" => self.done(visitor.visit_bool(false)),
            _ => Err(self.invalid("true or false")),
        }
    }

    integer! {
        deserialize_i8 visit_i8 i8
        deserialize_i16 visit_i16 i16
        deserialize_i32 visit_i32 i32
        deserialize_i64 visit_i64 i64
        deserialize_i128 visit_i128 i128
        deserialize_u8 visit_u8 u8
        deserialize_u16 visit_u16 u16
        deserialize_u32 visit_u32 u32
        deserialize_u64 visit_u64 u64
        deserialize_u128 visit_u128 u128
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let x = self.float()?;
        let narrow = x as f32;
        if narrow.is_finite() {
            self.done(visitor.visit_f32(narrow))
        } else {
            Err(Error::new(ErrorKind::InvalidValue {
                expected: "a float within the range of an f32".into(),
                found: describe(self.term),
            }))
        }
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let x = self.float()?;
        self.done(visitor.visit_f64(x))
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let c = match self.term {
            Term::Binary(b) => std::str::from_utf8(b).ok().and_then(|s| {
                let mut chars = s.chars();
                chars.next().filter(|_| chars.next().is_none())
            }),
            Term::Int(i) => u32::try_from(*i).ok().and_then(char::from_u32),
            _ => None,
        };
        match c {
            Some(c) => self.done(visitor.visit_char(c)),
            None => Err(self.invalid("a one-character UTF-8 binary or a code point")),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.term {
            Term::Binary(b) => match std::str::from_utf8(b) {
                Ok(text) => self.done(visitor.visit_borrowed_str(text)),
                Err(_) => Err(Error::new(ErrorKind::NotUtf8)),
            },
            Term::List(items) => match charlist(items) {
                Some(text) => self.done(visitor.visit_string(text)),
                None => Err(self.invalid("a UTF-8 binary")),
            },
            _ => Err(self.invalid("a UTF-8 binary")),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.term {
            Term::Binary(b) => self.done(visitor.visit_borrowed_bytes(b)),
            Term::List(items) => match byte_list(items) {
                Some(bytes) => self.done(visitor.visit_byte_buf(bytes)),
                None => Err(self.invalid("a binary")),
            },
            _ => Err(self.invalid("a binary")),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        if self.term.is_atom(self.options.none_atom()) {
            self.done(visitor.visit_none())
        } else {
            self.done(visitor.visit_some(self))
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.term {
            Term::Tuple(items) if items.is_empty() => self.done(visitor.visit_unit()),
            _ => Err(self.invalid("{} (the empty tuple)")),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        match name {
            TERM_NEWTYPE => {
                let mut bytes = BytesMut::new();
                encode(self.term, &mut bytes)
                    .map_err(|e| Error::new(ErrorKind::EmbeddedEncode(e)))?;
                self.done(visitor.visit_byte_buf(bytes.to_vec()))
            }
            ATOM_NEWTYPE => match self.term {
                Term::Atom(a) => self.done(visitor.visit_borrowed_str(a.as_str())),
                _ => Err(self.invalid("an atom")),
            },
            _ => self.done(visitor.visit_newtype_struct(self)),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.term {
            Term::List(items) => self.done(visitor.visit_seq(Seq::new(self, items))),
            Term::Binary(b) => self.done(visitor.visit_seq(ByteSeq::new(b))),
            _ => Err(self.invalid("a list")),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, Error> {
        match self.term {
            Term::Tuple(items) if items.len() == len => {
                self.done(visitor.visit_seq(Seq::new(self, items)))
            }
            Term::Tuple(items) => Err(Error::new(ErrorKind::InvalidLength {
                expected: format!("a tuple of {len} elements"),
                len: items.len(),
            })),
            _ => Err(self.invalid(format_args!("a tuple of {len} elements"))),
        }
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_tuple(len, visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.term {
            Term::Map(pairs) => self.done(visitor.visit_map(Map::new(self, pairs, false))),
            _ => Err(self.invalid("a map")),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.term {
            Term::Map(pairs) => {
                self.check_struct(name, pairs)?;
                let skip_struct_key = !fields.contains(&STRUCT_KEY);
                self.done(visitor.visit_map(Map::new(self, pairs, skip_struct_key)))
            }
            _ => Err(self.invalid(format_args!("a map (struct {name})"))),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.term {
            Term::Atom(tag) => self.done(visitor.visit_enum(Enum::new(self, tag, None))),
            Term::Tuple(items) => match items.split_first() {
                Some((Term::Atom(tag), rest)) => {
                    self.done(visitor.visit_enum(Enum::new(self, tag, Some(rest))))
                }
                _ => Err(self.invalid("an atom or a tuple tagged with an atom")),
            },
            _ => Err(self.invalid(format_args!(
                "an atom or a tuple tagged with an atom ({})",
                &visitor as &dyn Expected
            ))),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.term {
            Term::Atom(a) => self.done(visitor.visit_borrowed_str(a.as_str())),
            Term::Binary(b) => match std::str::from_utf8(b) {
                Ok(text) => self.done(visitor.visit_borrowed_str(text)),
                Err(_) => Err(Error::new(ErrorKind::NotUtf8)),
            },
            Term::Int(i) if *i >= 0 => self.done(visitor.visit_u64(i.unsigned_abs())),
            _ => Err(self.invalid("an atom")),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }
}
