//! The external term format (`erts/doc/guides/erl_ext_dist.md`): the values that travel
//! inside distribution messages, and their codec.
//!
//! beamlink has its own codec instead of the `eetf` crate: `eetf` panics on atom-cache
//! references and distribution headers, trusts declared lengths, and mis-encodes lists of
//! negative integers. This codec
//!
//! * never panics and checks every declared length against the bytes present before it
//!   allocates, so decoding never allocates more than [`MAX_ALLOC_PER_INPUT_BYTE`] bytes per
//!   input byte; nesting is limited to [`MAX_DEPTH`] (see the `decode` module for the
//!   measured stack use);
//! * decodes binaries without copying (they are slices of the received [`Bytes`]);
//! * encodes the way the BEAM's `term_to_binary(T, [{minor_version, 2}])` does (the
//!   encoding of distribution; smallest integer form, `STRING_EXT` for short lists of bytes,
//!   `SMALL_ATOM_UTF8_EXT` atoms), so a decoded BEAM term re-encodes to the same bytes
//!   (checked against a real BEAM by `tests/term_differential.rs`);
//! * resolves `ATOM_CACHE_REF` through a caller-supplied table (the distribution header's
//!   atom cache);
//! * reads and writes OTP 29's native records (`RECORD_EXT`, [`Record`]), which a BEAM sends
//!   only to a node that offers `DFLAG_NATIVE_RECORDS`.
//!
//! A [`Term`] is built with its constructors, printed as Erlang prints it, and encoded and
//! decoded as the BEAM's `term_to_binary` / `binary_to_term` do:
//!
//! ```
//! use beamlink_proto::term::{Term, decode, encode};
//! use bytes::BytesMut;
//!
//! // {:ok, "hi", [1, 2]} in Elixir; printed the way Erlang's ~p does
//! let term = Term::tuple([
//!     Term::atom("ok"),
//!     Term::binary(&b"hi"[..]),
//!     Term::List(vec![Term::Int(1), Term::Int(2)]),
//! ]);
//! assert_eq!(term.to_string(), "{ok,<<104,105>>,[1,2]}");
//!
//! let mut bytes = BytesMut::new();
//! encode(&term, &mut bytes)?;
//! assert_eq!(bytes[..3], [131, 104, 3]); // version, SMALL_TUPLE_EXT, arity
//! assert_eq!(decode(&bytes.freeze())?, term);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Rust values map to terms with serde ([`to_term`], [`from_term`]; feature `serde`), by the
//! table in [`typed`].

mod decode;
mod display;
#[cfg(feature = "eetf")]
mod eetf_bridge;
mod encode;
mod error;
mod keys;
mod record;
#[cfg(test)]
mod record_tests;
pub mod tag;
#[cfg(feature = "serde")]
pub mod typed;

pub use decode::{Decoder, MAX_ALLOC_PER_INPUT_BYTE, MAX_DEPTH, decode};
#[cfg(feature = "eetf")]
pub use eetf_bridge::EetfError;
pub(crate) use encode::{Enc, atom_address, parts};
pub use encode::{Holes, ZERO_COPY_MIN, encode, encode_body, encode_body_with_refs};
pub use error::{DecodeError, EncodeError};
pub use record::Record;
#[cfg(feature = "serde")]
pub use typed::{from_term, from_term_with, to_term, to_term_with};

use bytes::Bytes;
use smol_str::SmolStr;
use std::fmt;

/// Version byte that starts every encoded term.
pub const VERSION: u8 = 131;

/// An atom. Atoms are at most 255 characters; node names are atoms too.
///
/// Stored inline when short (up to 23 bytes), so decoding the atoms of a control message
/// usually allocates nothing.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Atom(SmolStr);

impl Atom {
    /// Longest atom the BEAM accepts, in characters.
    pub const MAX_CHARS: usize = 255;

    /// `''`, the atom SEND and REG_SEND carry in their unused field.
    pub const EMPTY: Atom = Atom(SmolStr::new_inline(""));

    /// An atom with this text. Length is checked when the atom is encoded.
    pub fn new(text: &str) -> Atom {
        Atom(SmolStr::new(text))
    }

    /// The atom's text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl From<&str> for Atom {
    fn from(text: &str) -> Atom {
        Atom::new(text)
    }
}

impl From<String> for Atom {
    fn from(text: String) -> Atom {
        Atom(SmolStr::from(text))
    }
}

impl fmt::Debug for Atom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Atom {
    /// Prints the atom as Erlang source would: quoted when it is not a plain lowercase word.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.as_str();
        let plain = s.chars().next().is_some_and(|c| c.is_ascii_lowercase())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '@');
        if plain {
            f.write_str(s)
        } else {
            write!(f, "'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
        }
    }
}

/// A process identifier (`NEW_PID_EXT`).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Pid {
    /// The node the process lives on.
    pub node: Atom,
    /// Process number (32 bits with `DFLAG_V4_NC`).
    pub id: u32,
    /// Serial (32 bits with `DFLAG_V4_NC`).
    pub serial: u32,
    /// Creation of the node incarnation that made it.
    pub creation: u32,
}

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{}.{}.{}>", self.node, self.id, self.serial)
    }
}

/// A port identifier (`NEW_PORT_EXT` or `V4_PORT_EXT`).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Port {
    /// The node the port lives on.
    pub node: Atom,
    /// Port number.
    pub id: u64,
    /// Creation of the node incarnation that made it.
    pub creation: u32,
}

/// A reference (`NEWER_REFERENCE_EXT`): 1 to 5 words of id (`DFLAG_V4_NC` allows 5).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Reference {
    /// The node that made it.
    pub node: Atom,
    /// Creation of the node incarnation that made it.
    pub creation: u32,
    words: [u32; Reference::MAX_WORDS],
    len: u8,
}

impl Reference {
    /// The most id words a reference may have.
    pub const MAX_WORDS: usize = 5;

    /// A reference from its id words; `None` if there are none or more than five.
    pub fn new(node: Atom, creation: u32, ids: &[u32]) -> Option<Reference> {
        if ids.is_empty() || ids.len() > Self::MAX_WORDS {
            return None;
        }
        let mut words = [0; Self::MAX_WORDS];
        words[..ids.len()].copy_from_slice(ids);
        Some(Reference {
            node,
            creation,
            words,
            len: ids.len() as u8,
        })
    }

    /// The id words, first word first (as on the wire).
    pub fn ids(&self) -> &[u32] {
        &self.words[..self.len as usize]
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#Ref<{}", self.node)?;
        for w in self.ids().iter().rev() {
            write!(f, ".{w}")?;
        }
        f.write_str(">")
    }
}

/// An integer that does not fit in an `i64` (`SMALL_BIG_EXT` / `LARGE_BIG_EXT`).
///
/// Integers that fit in an `i64` are always [`Term::Int`], whatever their encoding.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct BigInt {
    /// True for negative numbers.
    pub negative: bool,
    /// Magnitude, little-endian bytes, without trailing (most significant) zero bytes.
    pub magnitude: Vec<u8>,
}

/// A local fun (`NEW_FUN_EXT`). Kept whole so it can be passed back to the BEAM.
#[derive(Clone, PartialEq, Debug)]
pub struct Fun {
    /// Number of arguments.
    pub arity: u8,
    /// MD5 of the module's code.
    pub uniq: [u8; 16],
    /// Index in the module's fun table.
    pub index: u32,
    /// Module that defined it.
    pub module: Atom,
    /// Old index (an integer term on the wire).
    pub old_index: i64,
    /// Old uniq (an integer term on the wire).
    pub old_uniq: i64,
    /// Process that created it.
    pub pid: Pid,
    /// Captured variables.
    pub free_vars: Vec<Term>,
}

/// An external fun `fun M:F/A` (`EXPORT_EXT`).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Export {
    /// Module.
    pub module: Atom,
    /// Function.
    pub function: Atom,
    /// Arity.
    pub arity: u8,
}

/// An Erlang term.
///
/// Lists: `[]` is `List(vec![])`; a proper list is `List`; `ImproperList(head, tail)` has a
/// non-empty head and a tail that is not a list. Lists of small integers arrive as `List`
/// whatever their encoding (`STRING_EXT` included).
#[derive(PartialEq, Debug)]
#[non_exhaustive]
pub enum Term {
    /// Any integer that fits in an `i64`.
    Int(i64),
    /// Any other integer.
    Big(BigInt),
    /// A float (finite; the BEAM refuses others).
    Float(f64),
    /// An atom (`true`, `false` and `undefined` are atoms too).
    Atom(Atom),
    /// A binary (whole bytes).
    Binary(Bytes),
    /// A bitstring whose last byte holds `last_bits` (1..=7) bits, most significant first.
    Bits {
        /// The bytes; the unused low bits of the last one are zero.
        data: Bytes,
        /// Bits used in the last byte.
        last_bits: u8,
    },
    /// A pid.
    Pid(Pid),
    /// A port.
    Port(Box<Port>),
    /// A reference.
    Ref(Box<Reference>),
    /// A local fun.
    Fun(Box<Fun>),
    /// An external fun.
    Export(Box<Export>),
    /// A tuple.
    Tuple(Vec<Term>),
    /// A proper list; `[]` when empty.
    List(Vec<Term>),
    /// An improper list: non-empty head elements and a non-list tail.
    ImproperList(Vec<Term>, Box<Term>),
    /// A map, in the order its pairs were decoded or built.
    Map(Vec<(Term, Term)>),
    /// An OTP 29 native record (`RECORD_EXT`).
    Record(Box<Record>),
}

impl Term {
    /// `[]`.
    pub const NIL: Term = Term::List(Vec::new());

    /// An atom term.
    pub fn atom(text: &str) -> Term {
        Term::Atom(Atom::new(text))
    }

    /// A tuple term.
    pub fn tuple(elements: impl Into<Vec<Term>>) -> Term {
        Term::Tuple(elements.into())
    }

    /// A proper list term.
    pub fn list(elements: impl Into<Vec<Term>>) -> Term {
        Term::List(elements.into())
    }

    /// A binary term.
    pub fn binary(bytes: impl Into<Bytes>) -> Term {
        Term::Binary(bytes.into())
    }

    /// A reference term.
    pub fn reference(r: Reference) -> Term {
        Term::Ref(Box::new(r))
    }

    /// `true` or `false`.
    pub fn boolean(value: bool) -> Term {
        Term::atom(if value { "true" } else { "false" })
    }

    /// The atom, if this is one.
    pub fn as_atom(&self) -> Option<&Atom> {
        match self {
            Term::Atom(a) => Some(a),
            _ => None,
        }
    }

    /// True if this is the atom `name`.
    pub fn is_atom(&self, name: &str) -> bool {
        matches!(self, Term::Atom(a) if a.as_str() == name)
    }

    /// The elements, if this is a tuple.
    pub fn as_tuple(&self) -> Option<&[Term]> {
        match self {
            Term::Tuple(t) => Some(t),
            _ => None,
        }
    }

    /// The elements, if this is a proper list (`[]` included).
    pub fn as_list(&self) -> Option<&[Term]> {
        match self {
            Term::List(l) => Some(l),
            _ => None,
        }
    }

    /// The pid, if this is one.
    pub fn as_pid(&self) -> Option<&Pid> {
        match self {
            Term::Pid(p) => Some(p),
            _ => None,
        }
    }

    /// The reference, if this is one.
    pub fn as_ref(&self) -> Option<&Reference> {
        match self {
            Term::Ref(r) => Some(r),
            _ => None,
        }
    }

    /// The integer, if this is one that fits in an `i64`.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Term::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The integer, if this is a non-negative one that fits in a `u64` (ids of `UNLINK_ID`).
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Term::Int(i) => u64::try_from(*i).ok(),
            Term::Big(b) if !b.negative && b.magnitude.len() <= 8 => {
                let mut word = [0u8; 8];
                word[..b.magnitude.len()].copy_from_slice(&b.magnitude);
                Some(u64::from_le_bytes(word))
            }
            _ => None,
        }
    }

    /// An integer term for any `u64`.
    pub fn from_u64(value: u64) -> Term {
        match i64::try_from(value) {
            Ok(i) => Term::Int(i),
            Err(_) => Term::Big(BigInt {
                negative: false,
                magnitude: trim_magnitude(value.to_le_bytes().to_vec()),
            }),
        }
    }

    /// Calls `f` with the atoms of this term (node names of pids, references and ports
    /// included), visiting at most `budget` subterms; returns what is left of the budget.
    /// Generic, so that the atom cache's closure is inlined into the walk (it runs for
    /// every atom of every message sent).
    pub fn visit_atoms<'a, F>(&'a self, f: &mut F, budget: usize) -> usize
    where
        F: FnMut(&'a Atom) + ?Sized,
    {
        if budget == 0 {
            return 0;
        }
        let mut left = budget - 1;
        match self {
            Term::Atom(a) => f(a),
            Term::Pid(p) => f(&p.node),
            Term::Port(p) => f(&p.node),
            Term::Ref(r) => f(&r.node),
            Term::Export(e) => {
                f(&e.module);
                f(&e.function);
            }
            Term::Fun(fun) => {
                f(&fun.module);
                f(&fun.pid.node);
                for t in &fun.free_vars {
                    left = t.visit_atoms(f, left);
                }
            }
            Term::Tuple(items) | Term::List(items) => {
                for t in items {
                    left = t.visit_atoms(f, left);
                }
            }
            Term::ImproperList(items, tail) => {
                for t in items {
                    left = t.visit_atoms(f, left);
                }
                left = tail.visit_atoms(f, left);
            }
            Term::Map(pairs) => {
                for (k, v) in pairs {
                    left = k.visit_atoms(f, left);
                    left = v.visit_atoms(f, left);
                }
            }
            Term::Record(r) => {
                f(&r.module);
                f(&r.name);
                for (name, value) in &r.fields {
                    f(name);
                    left = value.visit_atoms(f, left);
                }
            }
            _ => {}
        }
        left
    }

    /// The bytes, if this is a binary.
    pub fn as_binary(&self) -> Option<&Bytes> {
        match self {
            Term::Binary(b) => Some(b),
            _ => None,
        }
    }
}

pub(crate) fn trim_magnitude(mut magnitude: Vec<u8>) -> Vec<u8> {
    while magnitude.last() == Some(&0) {
        magnitude.pop();
    }
    magnitude
}

impl From<Atom> for Term {
    fn from(a: Atom) -> Term {
        Term::Atom(a)
    }
}

impl From<Pid> for Term {
    fn from(p: Pid) -> Term {
        Term::Pid(p)
    }
}

impl From<Reference> for Term {
    fn from(r: Reference) -> Term {
        Term::Ref(Box::new(r))
    }
}

impl From<i64> for Term {
    fn from(i: i64) -> Term {
        Term::Int(i)
    }
}

impl From<bool> for Term {
    fn from(b: bool) -> Term {
        Term::boolean(b)
    }
}

impl Clone for Term {
    /// Written out (not derived) so that a nesting level costs one small frame: terms may be
    /// [`MAX_DEPTH`] deep.
    fn clone(&self) -> Term {
        match self {
            Term::Tuple(items) => Term::Tuple(clone_all(items)),
            Term::List(items) => Term::List(clone_all(items)),
            Term::ImproperList(items, tail) => {
                Term::ImproperList(clone_all(items), Box::new(Term::clone(tail)))
            }
            Term::Map(pairs) => {
                let mut out = Vec::with_capacity(pairs.len());
                for (k, v) in pairs {
                    out.push((k.clone(), v.clone()));
                }
                Term::Map(out)
            }
            Term::Fun(f) => Term::Fun(f.clone_boxed()),
            Term::Record(r) => Term::Record(r.clone_boxed()),
            _ => self.clone_leaf(),
        }
    }
}

impl Fun {
    #[inline(never)]
    fn clone_boxed(&self) -> Box<Fun> {
        Box::new(Fun {
            arity: self.arity,
            uniq: self.uniq,
            index: self.index,
            module: self.module.clone(),
            old_index: self.old_index,
            old_uniq: self.old_uniq,
            pid: self.pid.clone(),
            free_vars: clone_all(&self.free_vars),
        })
    }
}

impl Record {
    #[inline(never)]
    fn clone_boxed(&self) -> Box<Record> {
        let mut fields = Vec::with_capacity(self.fields.len());
        for (name, value) in &self.fields {
            fields.push((name.clone(), value.clone()));
        }
        Box::new(Record {
            module: self.module.clone(),
            name: self.name.clone(),
            exported: self.exported,
            fields,
        })
    }
}

fn clone_all(items: &[Term]) -> Vec<Term> {
    let mut out = Vec::with_capacity(items.len());
    for t in items {
        out.push(t.clone());
    }
    out
}

impl Term {
    #[inline(never)]
    fn clone_leaf(&self) -> Term {
        match self {
            Term::Int(i) => Term::Int(*i),
            Term::Big(b) => Term::Big(b.clone()),
            Term::Float(x) => Term::Float(*x),
            Term::Atom(a) => Term::Atom(a.clone()),
            Term::Binary(b) => Term::Binary(b.clone()),
            Term::Bits { data, last_bits } => Term::Bits {
                data: data.clone(),
                last_bits: *last_bits,
            },
            Term::Pid(p) => Term::Pid(p.clone()),
            Term::Port(p) => Term::Port(p.clone()),
            Term::Ref(r) => Term::Ref(r.clone()),
            Term::Export(e) => Term::Export(e.clone()),
            Term::Tuple(_)
            | Term::List(_)
            | Term::ImproperList(..)
            | Term::Map(_)
            | Term::Record(_)
            | Term::Fun(_) => self.clone(),
        }
    }
}
