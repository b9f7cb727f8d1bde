//! serde for terms: Rust values to [`Term`]s and back ([`to_term`], [`from_term`]), so a
//! message to or from a BEAM can be a `#[derive(Serialize, Deserialize)]` type instead of a
//! hand-built term tree. (Feature `serde`, on by default.)
//!
//! The mapping follows what Elixir code writes: structs are maps with atom keys, strings are
//! UTF-8 binaries, `None` is `nil`, enum variants are atoms or tuples tagged with an atom
//! (`:ok`, `{:error, reason}`), and a struct renamed `Elixir.Some.Module` is that Elixir
//! struct.
//!
//! ```
//! use beamlink_proto::term::{Term, from_term, to_term};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize, Debug, PartialEq)]
//! #[serde(rename = "Elixir.MyApp.User")] // %MyApp.User{}
//! struct User {
//!     name: String,
//!     email: Option<String>,
//!     role: Role,
//! }
//!
//! #[derive(Serialize, Deserialize, Debug, PartialEq)]
//! #[serde(rename_all = "snake_case")]
//! enum Role {
//!     Admin,        // :admin
//!     Member(u32),  // {:member, 3}
//! }
//!
//! let user = User { name: "ada".into(), email: None, role: Role::Member(3) };
//! let term = to_term(&user)?;
//! assert_eq!(
//!     term.to_string(),
//!     r#"#{'__struct__' => 'Elixir.MyApp.User',name => <<97,100,97>>,email => nil,role => {member,3}}"#
//! );
//! assert_eq!(from_term::<User>(&term)?, user);
//! # Ok::<(), beamlink_proto::term::typed::Error>(())
//! ```
//!
//! # The mapping
//!
//! | Rust (serde data model) | term (Elixir notation) | when decoding, also accepted |
//! |---|---|---|
//! | `bool` | `true`, `false` | |
//! | `i8` … `i128`, `u8` … `u128` | integer (a bignum past `i64`) | an integer outside the Rust type's range is [`ErrorKind::IntegerOutOfRange`] |
//! | `f32`, `f64` | float; NaN and infinities are [`ErrorKind::FloatNotFinite`] | an integer of at most 2^53 in magnitude (Elixir's `2` for `2.0`) |
//! | `char` | one-character UTF-8 binary `"é"` | an integer code point (`?é`) |
//! | `String`, `&str` | UTF-8 binary (an Elixir string) | into `String`: a charlist (an Erlang string, `~c"abc"`); a binary that is not UTF-8 is [`ErrorKind::NotUtf8`] |
//! | `Vec<u8>`, `[u8]` as they are | list of integers `[1, 2, 3]` (serde sees a sequence) | a binary |
//! | `#[serde(with = "serde_bytes")]`, `serde_bytes::ByteBuf`, `bytes::Bytes` | binary `<<1, 2, 3>>` | a list of integers 0..=255 |
//! | `Option<T>`: `None` | `nil`, or the atom [`Options::none_atom`] names (`undefined` with [`Options::erlang`]) | a missing struct key |
//! | `Some(x)` | `x` itself, so `Some(None)` reads back as `None` | |
//! | `()`, unit struct `struct S;` | `{}` (the empty tuple) | |
//! | newtype struct `struct S(T)` | `T` itself | |
//! | tuple `(A, B)`, tuple struct `struct S(A, B)`, array `[T; N]` | tuple `{a, b}` | |
//! | `Vec<T>`, slices, sets, other sequences | proper list `[a, b]` | |
//! | map `HashMap<K, V>`, `BTreeMap<K, V>` | map; each key by this table (`String` keys are binary keys, [`Atom`] keys atom keys) | |
//! | struct `struct S { a: A, b: B }` | map with atom keys `%{a: a, b: b}` | binary keys; a `__struct__` key is ignored unless the struct has such a field |
//! | struct with `#[serde(rename = "Elixir.MyApp.User")]` | Elixir struct `%MyApp.User{...}`: the map above plus `__struct__: MyApp.User` | `__struct__` must be that module, else [`ErrorKind::NotAStruct`] or [`ErrorKind::WrongStruct`] |
//! | unit variant `E::Admin` | atom `:admin` (with `#[serde(rename_all = "snake_case")]`; `:Admin` without) | |
//! | newtype variant `E::Circle(2.0)` | `{:circle, 2.0}` | |
//! | tuple variant `E::Pair(1, 2)` | `{:pair, 1, 2}` (the tag, then the fields) | |
//! | struct variant `E::Rect { w: 1, h: 2 }` | `{:rect, %{w: 1, h: 2}}` | |
//! | [`Atom`] | atom | |
//! | [`Term`], [`Pid`], [`Reference`] | the term itself (any kind: a pid to reply to, a ref, a fun) | |
//!
//! An OTP 29 native record ([`crate::term::Record`]) reaches a Rust value only through a
//! [`Term`] field; decoding one into any other type is an `Unsupported` error.
//!
//! Choices behind the table:
//! * `Vec<u8>` stays a list because serde gives the serializer a sequence of `u8` with no
//!   hint that it is a byte buffer. Binaries, which is what Elixir code means by bytes, need
//!   `serde_bytes` (or `bytes::Bytes`):
//!   ```
//!   use serde::{Deserialize, Serialize};
//!   #[derive(Serialize, Deserialize)]
//!   struct Upload {
//!       #[serde(with = "serde_bytes")]
//!       data: Vec<u8>, // <<...>>, not [1, 2, ...]
//!   }
//!   ```
//! * `()` is `{}` rather than `nil` so that `Option<()>` keeps `Some(())` apart from `None`;
//!   to send `:ok`, use a unit variant (`enum Reply { Ok, Error(String) }` with
//!   `rename_all = "snake_case"` is `:ok | {:error, reason}`).
//! * Tuple variants are flat (`{:pair, 1, 2}`, not `{:pair, {1, 2}}`) as Erlang tagged tuples
//!   are; a newtype variant holding a tuple, `E::Point((1, 2))`, is `{:point, {1, 2}}`.
//! * `nil` is read back only as the configured none atom: with [`Options::erlang`], `nil` is
//!   an ordinary atom (and `undefined` is `None`), so one Rust type reads one convention.
//! * Decoding a `String` from a charlist is allowed because Erlang APIs answer with charlists;
//!   encoding always writes a binary. Atoms are not strings: an atom where a `String` is
//!   expected is an error (use [`Atom`], or an enum of unit variants).
//! * Internally tagged, adjacently tagged and untagged enums and `#[serde(flatten)]` work
//!   through serde's buffering: there an atom reads as a string, `nil` as `None`, `{}` as `()`;
//!   their tags and flattened keys are written as binaries (serde hands them over as strings),
//!   and a pid, port, reference, fun, bitstring or improper list inside them is
//!   [`ErrorKind::Unsupported`].
//! * [`Term`], [`Pid`], [`Reference`] and [`Atom`] implement `Serialize`/`Deserialize` for any
//!   serde format; outside this module a term travels as its external format bytes and an atom
//!   as its text. serde cannot hand a serializer a value of a type it does not know, so even
//!   here a `Term` inside a Rust value is encoded and decoded once on its way through (a pid
//!   or a reference costs a few dozen bytes; a large binary is copied).
//!
//! # Errors
//!
//! [`Error`] says what failed ([`ErrorKind`]) and where: the [path](Error::path) from the root
//! of the value to the part that failed, printed as `.users[2].email: expected a UTF-8 binary,
//! found atom nil`. Struct fields and atom keys print as `.name`, list and tuple elements as
//! `[2]`, other map keys as `["key"]`, enum variants as `.variant`.
//!
//! Decoding follows the Rust type, so the nesting of the term that is walked is bounded by
//! the type, except through `deserialize_any` (untagged enums, `serde_json::Value`-like types),
//! which is limited to [`MAX_SERDE_DEPTH`] levels.
//!
//! [`Atom`]: crate::term::Atom
//! [`Pid`]: crate::term::Pid
//! [`Reference`]: crate::term::Reference

mod access;
mod de;
mod error;
mod ser;
mod special;

pub use de::Deserializer;
pub use error::{Error, ErrorKind, PathSegment};
pub use ser::Serializer;

use super::Term;
use ::serde::{Deserialize, Serialize};

/// Deepest nesting [`from_term`] walks when the Rust type does not bound it
/// (`deserialize_any`), as serde_json's default recursion limit.
pub const MAX_SERDE_DEPTH: usize = 128;

/// Newtype name under which a [`Term`] crosses serde as its external format bytes.
pub(crate) const TERM_NEWTYPE: &str = "$beamlink_proto::Term";
/// Newtype name under which an atom crosses serde as its text.
pub(crate) const ATOM_NEWTYPE: &str = "$beamlink_proto::Atom";

/// The prefix of an Elixir module's atom; a struct renamed to such a name is an Elixir struct.
pub(crate) const ELIXIR_PREFIX: &str = "Elixir.";

/// The key holding an Elixir struct's module.
pub(crate) const STRUCT_KEY: &str = "__struct__";

/// Settings of the mapping. The default is Elixir's conventions.
///
/// ```
/// use beamlink_proto::term::typed::Options;
/// use beamlink_proto::term::{Term, from_term_with, to_term_with};
///
/// let erlang = Options::erlang();
/// assert_eq!(to_term_with(&None::<u8>, erlang)?, Term::atom("undefined"));
/// assert_eq!(from_term_with::<Option<u8>>(&Term::atom("undefined"), erlang)?, None);
/// # Ok::<(), beamlink_proto::term::typed::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    none_atom: &'static str,
}

impl Options {
    /// Elixir's conventions: `None` is `nil`. The same as [`Options::default`].
    pub const fn elixir() -> Options {
        Options { none_atom: "nil" }
    }

    /// Erlang's conventions: `None` is `undefined`.
    pub const fn erlang() -> Options {
        Options {
            none_atom: "undefined",
        }
    }

    /// These options with `None` written and read as the atom `atom` (e.g. `"none"`).
    pub const fn with_none_atom(self, atom: &'static str) -> Options {
        Options { none_atom: atom }
    }

    /// The atom that stands for `None`.
    pub const fn none_atom(&self) -> &'static str {
        self.none_atom
    }
}

impl Default for Options {
    fn default() -> Options {
        Options::elixir()
    }
}

/// The term for `value`, with Elixir's conventions ([`Options::elixir`]).
///
/// ```
/// use beamlink_proto::term::{Term, to_term};
///
/// #[derive(serde::Serialize)]
/// #[serde(rename_all = "snake_case")]
/// enum Shape {
///     Circle(f64),
///     Rect { w: u32, h: u32 },
/// }
///
/// assert_eq!(to_term(&Shape::Circle(2.0))?.to_string(), "{circle,2.0}");
/// assert_eq!(to_term(&Shape::Rect { w: 1, h: 2 })?.to_string(), "{rect,#{w => 1,h => 2}}");
/// # Ok::<(), beamlink_proto::term::typed::Error>(())
/// ```
pub fn to_term<T: Serialize + ?Sized>(value: &T) -> Result<Term, Error> {
    to_term_with(value, Options::default())
}

/// The term for `value`, with `options`.
pub fn to_term_with<T: Serialize + ?Sized>(value: &T, options: Options) -> Result<Term, Error> {
    value.serialize(&Serializer::with_options(options))
}

/// A `T` read from `term`, with Elixir's conventions ([`Options::elixir`]). `T` may borrow
/// from the term (`&str` from a binary, or an atom's text).
///
/// ```
/// use beamlink_proto::term::{Term, from_term};
///
/// #[derive(serde::Deserialize, Debug)]
/// struct Order {
///     id: u64,
///     items: Vec<String>,
/// }
///
/// let term = Term::Map(vec![
///     (Term::atom("id"), Term::Int(7)),
///     (Term::atom("items"), Term::list([Term::binary("tea"), Term::atom("nil")])),
/// ]);
/// let err = from_term::<Order>(&term).unwrap_err();
/// assert_eq!(err.to_string(), ".items[1]: expected a UTF-8 binary, found atom nil");
/// ```
pub fn from_term<'de, T: Deserialize<'de>>(term: &'de Term) -> Result<T, Error> {
    from_term_with(term, Options::default())
}

/// A `T` read from `term`, with `options`.
pub fn from_term_with<'de, T: Deserialize<'de>>(
    term: &'de Term,
    options: Options,
) -> Result<T, Error> {
    T::deserialize(Deserializer::with_options(term, options))
}

/// A short description of a term for error messages: its kind and, when short, its text.
pub(crate) fn describe(term: &Term) -> String {
    const MAX: usize = 40;
    let kind = match term {
        Term::Int(_) | Term::Big(_) => "integer",
        Term::Float(_) => "float",
        Term::Atom(_) => "atom",
        Term::Binary(_) => "binary",
        Term::Bits { .. } => "bitstring",
        Term::Pid(_) => "pid",
        Term::Port(_) => "port",
        Term::Ref(_) => "reference",
        Term::Fun(_) | Term::Export(_) => "fun",
        Term::Tuple(_) => "tuple",
        Term::List(_) => "list",
        Term::ImproperList(..) => "improper list",
        Term::Map(_) => "map",
        Term::Record(_) => "record",
    };
    let text = match term {
        Term::Binary(b) => match std::str::from_utf8(b) {
            Ok(s) if !s.chars().any(char::is_control) => format!("{s:?}"),
            _ => term.to_string(),
        },
        _ => term.to_string(),
    };
    if text.chars().count() <= MAX {
        format!("{kind} {text}")
    } else {
        let short: String = text.chars().take(MAX).collect();
        format!("{kind} {short}…")
    }
}
