//! The parts of a term handed to a visitor one at a time: list and tuple elements, the bytes
//! of a binary read as a sequence, map pairs, and an enum's tag and fields. Each adds its
//! step to the path of an error that comes out of a part.

use super::super::{Atom, Term};
use super::de::Deserializer;
use super::error::{Error, PathSegment};
use super::ser::key_segment;
use super::{STRUCT_KEY, describe};
use ::serde::de::value::BorrowedStrDeserializer;
use ::serde::de::{
    self, DeserializeSeed, EnumAccess, IntoDeserializer, MapAccess, SeqAccess, VariantAccess,
    Visitor,
};

/// The elements of a list or tuple.
pub(crate) struct Seq<'de> {
    parent: Deserializer<'de>,
    items: std::slice::Iter<'de, Term>,
    index: usize,
}

impl<'de> Seq<'de> {
    pub(crate) fn new(parent: Deserializer<'de>, items: &'de [Term]) -> Seq<'de> {
        Seq {
            parent,
            items: items.iter(),
            index: 0,
        }
    }
}

impl<'de> SeqAccess<'de> for Seq<'de> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        let Some(item) = self.items.next() else {
            return Ok(None);
        };
        let index = self.index;
        self.index += 1;
        self.parent
            .child(item)
            .and_then(|d| seed.deserialize(d))
            .map(Some)
            .map_err(|e| e.at(PathSegment::Index(index)))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

/// The bytes of a binary, read as a sequence of `u8` (a plain `Vec<u8>`).
pub(crate) struct ByteSeq<'de> {
    bytes: std::slice::Iter<'de, u8>,
    index: usize,
}

impl<'de> ByteSeq<'de> {
    pub(crate) fn new(bytes: &'de [u8]) -> ByteSeq<'de> {
        ByteSeq {
            bytes: bytes.iter(),
            index: 0,
        }
    }
}

impl<'de> SeqAccess<'de> for ByteSeq<'de> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        let index = self.index;
        match self.bytes.next() {
            None => Ok(None),
            Some(&byte) => {
                self.index += 1;
                let d: de::value::U8Deserializer<Error> = byte.into_deserializer();
                seed.deserialize(d)
                    .map(Some)
                    .map_err(|e| e.at(PathSegment::Index(index)))
            }
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.bytes.len())
    }
}

/// The pairs of a map; for a struct, without the `__struct__` pair.
pub(crate) struct Map<'de> {
    parent: Deserializer<'de>,
    pairs: std::slice::Iter<'de, (Term, Term)>,
    value: Option<&'de (Term, Term)>,
    skip_struct_key: bool,
}

impl<'de> Map<'de> {
    pub(crate) fn new(
        parent: Deserializer<'de>,
        pairs: &'de [(Term, Term)],
        skip_struct_key: bool,
    ) -> Map<'de> {
        Map {
            parent,
            pairs: pairs.iter(),
            value: None,
            skip_struct_key,
        }
    }
}

impl<'de> MapAccess<'de> for Map<'de> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let pair = loop {
            match self.pairs.next() {
                None => return Ok(None),
                Some((key, _)) if self.skip_struct_key && key.is_atom(STRUCT_KEY) => continue,
                Some(pair) => break pair,
            }
        };
        self.value = Some(pair);
        self.parent
            .child(&pair.0)
            .and_then(|d| seed.deserialize(d))
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let Some((key, value)) = self.value.take() else {
            return Err(de::Error::custom("next_value called before next_key"));
        };
        self.parent
            .child(value)
            .and_then(|d| seed.deserialize(d))
            .map_err(|e| e.at(key_segment(key)))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.pairs.len())
    }
}

/// An enum: a bare atom (a unit variant), or a tuple whose first element is the tag.
pub(crate) struct Enum<'de> {
    parent: Deserializer<'de>,
    tag: &'de Atom,
    /// The tuple's elements after the tag; `None` for a bare atom.
    fields: Option<&'de [Term]>,
}

impl<'de> Enum<'de> {
    pub(crate) fn new(
        parent: Deserializer<'de>,
        tag: &'de Atom,
        fields: Option<&'de [Term]>,
    ) -> Enum<'de> {
        Enum {
            parent,
            tag,
            fields,
        }
    }

    fn segment(&self) -> PathSegment {
        PathSegment::Variant(self.tag.as_str().to_owned())
    }

    fn invalid(&self, expected: String) -> Error {
        Error::new(super::ErrorKind::InvalidType {
            expected,
            found: describe(self.parent.term()),
        })
    }
}

impl<'de> EnumAccess<'de> for Enum<'de> {
    type Error = Error;
    type Variant = Enum<'de>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Enum<'de>), Error> {
        let tag: BorrowedStrDeserializer<'de, Error> =
            BorrowedStrDeserializer::new(self.tag.as_str());
        let variant = seed.deserialize(tag)?;
        Ok((variant, self))
    }
}

impl<'de> VariantAccess<'de> for Enum<'de> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        match self.fields {
            None => Ok(()),
            Some(_) => Err(self.invalid(format!("the atom {} (a unit variant)", self.tag))),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        match self.fields {
            Some([value]) => self
                .parent
                .child(value)
                .and_then(|d| seed.deserialize(d))
                .map_err(|e| e.at(self.segment())),
            _ => Err(self.invalid(format!("a tuple {{{}, value}}", self.tag))),
        }
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, Error> {
        match self.fields {
            Some(fields) if fields.len() == len => visitor
                .visit_seq(Seq::new(self.parent, fields))
                .map_err(|e| e.at(self.segment())),
            Some(fields) => Err(Error::new(super::ErrorKind::InvalidLength {
                expected: format!("a tuple of {} elements", len + 1),
                len: fields.len() + 1,
            })),
            None => Err(self.invalid(format!(
                "a tuple {{{}, ...}} of {} elements",
                self.tag,
                len + 1
            ))),
        }
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.fields {
            Some([Term::Map(pairs)]) => visitor
                .visit_map(Map::new(self.parent, pairs, true))
                .map_err(|e| e.at(self.segment())),
            _ => Err(self.invalid(format!("a tuple {{{}, map}}", self.tag))),
        }
    }
}
