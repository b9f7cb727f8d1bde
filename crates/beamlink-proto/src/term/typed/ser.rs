//! Rust values to terms: a serde `Serializer` whose output is a [`Term`] (the mapping is the
//! table of the module docs).

use super::super::keys::has_duplicate_keys;
use super::super::{Atom, BigInt, Term, decode, trim_magnitude};
use super::error::{Error, ErrorKind, PathSegment};
use super::{ATOM_NEWTYPE, ELIXIR_PREFIX, Options, STRUCT_KEY, TERM_NEWTYPE, describe};
use ::serde::ser::{self, Serialize};
use bytes::Bytes;

/// Serializes Rust values into [`Term`]s. `&Serializer` is the serde `Serializer`;
/// [`to_term`](super::to_term) is the usual way in.
///
/// ```
/// use beamlink_proto::term::typed::{Options, Serializer};
/// use serde::Serialize;
///
/// let term = Some(5).serialize(&Serializer::with_options(Options::erlang()))?;
/// assert_eq!(term.to_string(), "5");
/// # Ok::<(), beamlink_proto::term::typed::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Serializer {
    options: Options,
}

impl Serializer {
    /// A serializer with Elixir's conventions.
    pub fn new() -> Serializer {
        Serializer::default()
    }

    /// A serializer with `options`.
    pub fn with_options(options: Options) -> Serializer {
        Serializer { options }
    }
}

/// Most elements reserved up front from a length hint: hints come from `Serialize` code.
const MAX_RESERVE: usize = 4096;

/// An atom term for `text`, which must fit the BEAM's 255 characters.
pub(crate) fn atom(text: &str) -> Result<Term, Error> {
    let chars = if text.len() <= Atom::MAX_CHARS {
        0
    } else {
        text.chars().count()
    };
    if chars > Atom::MAX_CHARS {
        return Err(Error::new(ErrorKind::AtomTooLong { chars }));
    }
    Ok(Term::atom(text))
}

/// The path segment of the value under `key` in a map.
pub(crate) fn key_segment(key: &Term) -> PathSegment {
    match key {
        Term::Atom(a) => PathSegment::Field(a.as_str().to_owned()),
        Term::Binary(b) => match std::str::from_utf8(b) {
            Ok(s) => PathSegment::Key(format!("{s:?}")),
            Err(_) => PathSegment::Key(key.to_string()),
        },
        _ => PathSegment::Key(key.to_string()),
    }
}

fn float(value: f64) -> Result<Term, Error> {
    if value.is_finite() {
        Ok(Term::Float(value))
    } else {
        Err(Error::new(ErrorKind::FloatNotFinite))
    }
}

fn big(negative: bool, magnitude: u128) -> Term {
    Term::Big(BigInt {
        negative,
        magnitude: trim_magnitude(magnitude.to_le_bytes().to_vec()),
    })
}

impl<'a> ser::Serializer for &'a Serializer {
    type Ok = Term;
    type Error = Error;
    type SerializeSeq = Elements<'a>;
    type SerializeTuple = Elements<'a>;
    type SerializeTupleStruct = Elements<'a>;
    type SerializeTupleVariant = Elements<'a>;
    type SerializeMap = MapBuilder<'a>;
    type SerializeStruct = StructBuilder<'a>;
    type SerializeStructVariant = StructBuilder<'a>;

    fn serialize_bool(self, v: bool) -> Result<Term, Error> {
        Ok(Term::boolean(v))
    }

    fn serialize_i8(self, v: i8) -> Result<Term, Error> {
        Ok(Term::Int(v.into()))
    }

    fn serialize_i16(self, v: i16) -> Result<Term, Error> {
        Ok(Term::Int(v.into()))
    }

    fn serialize_i32(self, v: i32) -> Result<Term, Error> {
        Ok(Term::Int(v.into()))
    }

    fn serialize_i64(self, v: i64) -> Result<Term, Error> {
        Ok(Term::Int(v))
    }

    fn serialize_i128(self, v: i128) -> Result<Term, Error> {
        Ok(match i64::try_from(v) {
            Ok(i) => Term::Int(i),
            Err(_) => big(v < 0, v.unsigned_abs()),
        })
    }

    fn serialize_u8(self, v: u8) -> Result<Term, Error> {
        Ok(Term::Int(v.into()))
    }

    fn serialize_u16(self, v: u16) -> Result<Term, Error> {
        Ok(Term::Int(v.into()))
    }

    fn serialize_u32(self, v: u32) -> Result<Term, Error> {
        Ok(Term::Int(v.into()))
    }

    fn serialize_u64(self, v: u64) -> Result<Term, Error> {
        Ok(Term::from_u64(v))
    }

    fn serialize_u128(self, v: u128) -> Result<Term, Error> {
        Ok(match i64::try_from(v) {
            Ok(i) => Term::Int(i),
            Err(_) => big(false, v),
        })
    }

    fn serialize_f32(self, v: f32) -> Result<Term, Error> {
        float(v.into())
    }

    fn serialize_f64(self, v: f64) -> Result<Term, Error> {
        float(v)
    }

    fn serialize_char(self, v: char) -> Result<Term, Error> {
        let mut buf = [0; 4];
        Ok(Term::Binary(Bytes::copy_from_slice(
            v.encode_utf8(&mut buf).as_bytes(),
        )))
    }

    fn serialize_str(self, v: &str) -> Result<Term, Error> {
        Ok(Term::Binary(Bytes::copy_from_slice(v.as_bytes())))
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<Term, Error> {
        Ok(Term::Binary(Bytes::copy_from_slice(v)))
    }

    fn serialize_none(self) -> Result<Term, Error> {
        atom(self.options.none_atom())
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Term, Error> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<Term, Error> {
        Ok(Term::Tuple(Vec::new()))
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<Term, Error> {
        Ok(Term::Tuple(Vec::new()))
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<Term, Error> {
        atom(variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<Term, Error> {
        match name {
            TERM_NEWTYPE => match value.serialize(self)? {
                Term::Binary(bytes) => {
                    decode(&bytes).map_err(|e| Error::new(ErrorKind::EmbeddedDecode(e)))
                }
                other => Err(Error::new(ErrorKind::InvalidType {
                    expected: "a term in the external format".into(),
                    found: describe(&other),
                })),
            },
            ATOM_NEWTYPE => match value.serialize(self)? {
                Term::Binary(bytes) => match std::str::from_utf8(&bytes) {
                    Ok(text) => atom(text),
                    Err(_) => Err(Error::new(ErrorKind::NotUtf8)),
                },
                other => Err(Error::new(ErrorKind::InvalidType {
                    expected: "an atom's text".into(),
                    found: describe(&other),
                })),
            },
            _ => value.serialize(self),
        }
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Term, Error> {
        let tag = atom(variant)?;
        let value = value
            .serialize(self)
            .map_err(|e| e.at(PathSegment::Variant(variant.into())))?;
        Ok(Term::Tuple(vec![tag, value]))
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<Elements<'a>, Error> {
        Ok(Elements::new(self, len.unwrap_or(0), Shape::List))
    }

    fn serialize_tuple(self, len: usize) -> Result<Elements<'a>, Error> {
        Ok(Elements::new(self, len, Shape::Tuple))
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<Elements<'a>, Error> {
        Ok(Elements::new(self, len, Shape::Tuple))
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Elements<'a>, Error> {
        let mut elements = Elements::new(self, len + 1, Shape::Variant(variant));
        elements.items.push(atom(variant)?);
        Ok(elements)
    }

    fn serialize_map(self, len: Option<usize>) -> Result<MapBuilder<'a>, Error> {
        Ok(MapBuilder {
            ser: self,
            pairs: Vec::with_capacity(len.unwrap_or(0).min(MAX_RESERVE)),
            key: None,
        })
    }

    fn serialize_struct(self, name: &'static str, len: usize) -> Result<StructBuilder<'a>, Error> {
        let mut pairs = Vec::with_capacity(len.min(MAX_RESERVE) + 1);
        if name.starts_with(ELIXIR_PREFIX) {
            pairs.push((Term::atom(STRUCT_KEY), atom(name)?));
        }
        Ok(StructBuilder {
            ser: self,
            pairs,
            variant: None,
        })
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<StructBuilder<'a>, Error> {
        atom(variant)?;
        Ok(StructBuilder {
            ser: self,
            pairs: Vec::with_capacity(len.min(MAX_RESERVE)),
            variant: Some(variant),
        })
    }
}

/// What a run of elements becomes.
enum Shape {
    List,
    Tuple,
    /// A tuple whose first element is the variant's tag (already pushed).
    Variant(&'static str),
}

/// The elements of a list, tuple, tuple struct or tuple variant.
pub struct Elements<'a> {
    ser: &'a Serializer,
    items: Vec<Term>,
    shape: Shape,
}

impl<'a> Elements<'a> {
    fn new(ser: &'a Serializer, len: usize, shape: Shape) -> Elements<'a> {
        Elements {
            ser,
            items: Vec::with_capacity(len.min(MAX_RESERVE)),
            shape,
        }
    }

    fn push<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        let (index, variant) = match self.shape {
            Shape::Variant(variant) => (self.items.len() - 1, Some(variant)),
            _ => (self.items.len(), None),
        };
        let term = value.serialize(self.ser).map_err(|e| {
            let e = e.at(PathSegment::Index(index));
            match variant {
                Some(v) => e.at(PathSegment::Variant(v.into())),
                None => e,
            }
        })?;
        self.items.push(term);
        Ok(())
    }

    fn finish(self) -> Term {
        match self.shape {
            Shape::List => Term::List(self.items),
            Shape::Tuple | Shape::Variant(_) => Term::Tuple(self.items),
        }
    }
}

/// serde's four element-wise traits differ only in the name of the method that adds one.
macro_rules! elements {
    ($($trait:ident :: $add:ident),*) => {$(
        impl ser::$trait for Elements<'_> {
            type Ok = Term;
            type Error = Error;

            fn $add<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
                self.push(value)
            }

            fn end(self) -> Result<Term, Error> {
                Ok(self.finish())
            }
        }
    )*};
}

elements!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

/// The pairs of a map.
pub struct MapBuilder<'a> {
    ser: &'a Serializer,
    pairs: Vec<(Term, Term)>,
    key: Option<Term>,
}

impl ser::SerializeMap for MapBuilder<'_> {
    type Ok = Term;
    type Error = Error;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        self.key = Some(key.serialize(self.ser)?);
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        let Some(key) = self.key.take() else {
            return Err(Error::new(ErrorKind::Custom(
                "serialize_value called before serialize_key".into(),
            )));
        };
        let value = value
            .serialize(self.ser)
            .map_err(|e| e.at(key_segment(&key)))?;
        self.pairs.push((key, value));
        Ok(())
    }

    fn end(self) -> Result<Term, Error> {
        if has_duplicate_keys(&self.pairs) {
            let key = self
                .pairs
                .iter()
                .enumerate()
                .find(|(i, (k, _))| self.pairs[i + 1..].iter().any(|(o, _)| o.exact_eq(k)))
                .map_or_else(String::new, |(_, (k, _))| describe(k));
            return Err(Error::new(ErrorKind::DuplicateMapKey { key }));
        }
        Ok(Term::Map(self.pairs))
    }
}

/// The fields of a struct or struct variant.
pub struct StructBuilder<'a> {
    ser: &'a Serializer,
    pairs: Vec<(Term, Term)>,
    variant: Option<&'static str>,
}

impl StructBuilder<'_> {
    fn field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), Error> {
        let variant = self.variant;
        let at = |e: Error| {
            let e = e.at(PathSegment::Field(key.into()));
            match variant {
                Some(v) => e.at(PathSegment::Variant(v.into())),
                None => e,
            }
        };
        let name = atom(key).map_err(at)?;
        let value = value.serialize(self.ser).map_err(at)?;
        self.pairs.push((name, value));
        Ok(())
    }

    fn finish(self) -> Result<Term, Error> {
        let map = Term::Map(self.pairs);
        Ok(match self.variant {
            Some(variant) => Term::Tuple(vec![atom(variant)?, map]),
            None => map,
        })
    }
}

/// A struct and a struct variant are filled alike; the builder knows which it is.
macro_rules! fields {
    ($($trait:ident),*) => {$(
        impl ser::$trait for StructBuilder<'_> {
            type Ok = Term;
            type Error = Error;

            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<(), Error> {
                self.field(key, value)
            }

            fn end(self) -> Result<Term, Error> {
                self.finish()
            }
        }
    )*};
}

fields!(SerializeStruct, SerializeStructVariant);
