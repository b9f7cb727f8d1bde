//! `Serialize`/`Deserialize` for the term types themselves, so a typed message can carry a
//! pid to reply to, a reference, an atom, or any term as it is.
//!
//! serde has no way to hand a serializer a value of a type it does not know, so a [`Term`]
//! crosses serde as a newtype with a reserved name holding its external format bytes, and an
//! [`Atom`] as a newtype holding its text. This module's serializer and deserializer
//! recognise the names and turn them back into the term and the atom; any other serde format
//! sees the bytes and the text.

use super::super::{Atom, Pid, Reference, Term, decode, encode};
use super::{ATOM_NEWTYPE, TERM_NEWTYPE, describe};
use ::serde::de::{self, Deserialize, Deserializer, SeqAccess, Unexpected, Visitor};
use ::serde::ser::{self, Serialize, Serializer};
use bytes::{Bytes, BytesMut};
use std::fmt;

/// External format bytes, serialized as serde bytes.
struct Encoded<'a>(&'a [u8]);

impl Serialize for Encoded<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.0)
    }
}

impl Serialize for Term {
    /// The term itself with this module's serializer; its external format bytes with others.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut bytes = BytesMut::new();
        encode(self, &mut bytes).map_err(ser::Error::custom)?;
        serializer.serialize_newtype_struct(TERM_NEWTYPE, &Encoded(&bytes))
    }
}

impl<'de> Deserialize<'de> for Term {
    /// Any term with this module's deserializer; external format bytes with others.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Term, D::Error> {
        deserializer.deserialize_newtype_struct(TERM_NEWTYPE, TermVisitor)
    }
}

struct TermVisitor;

impl TermVisitor {
    fn decode<E: de::Error>(bytes: Bytes) -> Result<Term, E> {
        decode(&bytes).map_err(E::custom)
    }
}

impl<'de> Visitor<'de> for TermVisitor {
    type Value = Term;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a term in the external term format")
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Term, E> {
        Self::decode(Bytes::copy_from_slice(v))
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Term, E> {
        Self::decode(Bytes::from(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Term, A::Error> {
        let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(byte) = seq.next_element::<u8>()? {
            bytes.push(byte);
        }
        Self::decode(Bytes::from(bytes))
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Term, D::Error> {
        d.deserialize_byte_buf(self)
    }
}

impl Serialize for Atom {
    /// An atom with this module's serializer; its text with others.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_newtype_struct(ATOM_NEWTYPE, self.as_str())
    }
}

impl<'de> Deserialize<'de> for Atom {
    /// An atom with this module's deserializer; text with others.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Atom, D::Error> {
        deserializer.deserialize_newtype_struct(ATOM_NEWTYPE, AtomVisitor)
    }
}

struct AtomVisitor;

impl<'de> Visitor<'de> for AtomVisitor {
    type Value = Atom;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an atom")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Atom, E> {
        let chars = v.chars().count();
        if chars > Atom::MAX_CHARS {
            return Err(E::invalid_value(
                Unexpected::Str(v),
                &"at most 255 characters",
            ));
        }
        Ok(Atom::new(v))
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Atom, D::Error> {
        d.deserialize_str(self)
    }
}

impl Serialize for Pid {
    /// The pid term with this module's serializer (see [`Term`]'s implementation).
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Term::Pid(self.clone()).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Pid {
    /// A pid term (see [`Term`]'s implementation).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Pid, D::Error> {
        match Term::deserialize(deserializer)? {
            Term::Pid(pid) => Ok(pid),
            other => Err(de::Error::invalid_type(
                Unexpected::Other(&describe(&other)),
                &"a pid",
            )),
        }
    }
}

impl Serialize for Reference {
    /// The reference term with this module's serializer (see [`Term`]'s implementation).
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Term::Ref(Box::new(self.clone())).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Reference {
    /// A reference term (see [`Term`]'s implementation).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Reference, D::Error> {
        match Term::deserialize(deserializer)? {
            Term::Ref(reference) => Ok(*reference),
            other => Err(de::Error::invalid_type(
                Unexpected::Other(&describe(&other)),
                &"a reference",
            )),
        }
    }
}
