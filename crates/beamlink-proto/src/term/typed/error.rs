//! Why a Rust value and a term do not map onto each other, and where inside the value.

use super::super::{DecodeError, EncodeError};
use std::fmt;

/// One step from a container to a part of it, in terms of the Rust value.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PathSegment {
    /// A struct field, or the value under an atom key of a map: printed `.name`.
    Field(String),
    /// An element of a list or tuple, or a field of a tuple struct or tuple variant
    /// (counted from 0, the variant's tag not counted): printed `[2]`.
    Index(usize),
    /// The value under a map key that is not an atom, the key written as a term:
    /// printed `["key"]`, `[7]`.
    Key(String),
    /// The fields of an enum variant: printed `.variant`.
    Variant(String),
}

impl fmt::Display for PathSegment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathSegment::Field(name) | PathSegment::Variant(name) => write!(f, ".{name}"),
            PathSegment::Index(i) => write!(f, "[{i}]"),
            PathSegment::Key(key) => write!(f, "[{key}]"),
        }
    }
}

/// What went wrong (see [`Error`] for where).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The term is not of the kind the Rust type needs.
    InvalidType {
        /// What the Rust type accepts, e.g. `a UTF-8 binary`.
        expected: String,
        /// The term found, e.g. `atom nil`.
        found: String,
    },
    /// The term has the right kind but a value the Rust type refuses (serde's
    /// `invalid_value`, e.g. an `f64` too large for an `f32`).
    InvalidValue {
        /// What the Rust type accepts.
        expected: String,
        /// The value found.
        found: String,
    },
    /// A tuple (or a tuple variant's fields) of another length than the Rust type has.
    InvalidLength {
        /// What the Rust type accepts, e.g. `a tuple of 3 elements`.
        expected: String,
        /// The length found.
        len: usize,
    },
    /// An integer outside the range of the Rust integer type.
    IntegerOutOfRange {
        /// The Rust type, e.g. `u8`.
        expected: &'static str,
        /// The integer found.
        value: String,
    },
    /// An enum variant the Rust enum does not have.
    UnknownVariant {
        /// The variant (atom) found.
        variant: String,
        /// The variants the enum has.
        expected: &'static [&'static str],
    },
    /// A key the Rust struct has no field for (only with `#[serde(deny_unknown_fields)]`).
    UnknownField {
        /// The key found.
        field: String,
        /// The fields the struct has.
        expected: &'static [&'static str],
    },
    /// A field of the Rust struct that the map lacks (and that is neither an `Option` nor
    /// `#[serde(default)]`).
    MissingField {
        /// The field.
        field: &'static str,
    },
    /// A struct field given twice (an atom key and a binary key of the same name).
    DuplicateField {
        /// The field.
        field: &'static str,
    },
    /// A map (built by a `Serialize` implementation) holding the same key twice, which the
    /// BEAM refuses to decode.
    DuplicateMapKey {
        /// The key, written as a term.
        key: String,
    },
    /// The Rust struct is an Elixir struct (renamed `Elixir.…`) and the map has no
    /// `__struct__` key.
    NotAStruct {
        /// The module the Rust struct names, e.g. `Elixir.MyApp.User`.
        expected: &'static str,
    },
    /// The Rust struct is an Elixir struct and the map's `__struct__` names another module.
    WrongStruct {
        /// The module the Rust struct names.
        expected: &'static str,
        /// The `__struct__` found.
        found: String,
    },
    /// A binary that is not UTF-8 where a string is needed.
    NotUtf8,
    /// A float that is infinite or NaN: the BEAM has neither.
    FloatNotFinite,
    /// An atom (a struct field, an enum variant, an [`Atom`](crate::term::Atom), an Elixir
    /// struct's module) longer than the 255 characters the BEAM allows.
    AtomTooLong {
        /// Its length in characters.
        chars: usize,
    },
    /// A term that the Rust type does not describe (serde's `deserialize_any`: untagged and
    /// internally tagged enums, `#[serde(flatten)]`, `serde_json::Value`) and that serde's
    /// data model has no place for: a pid, port, reference, fun, bitstring, improper list or
    /// an integer beyond 128 bits.
    Unsupported {
        /// The term found.
        found: String,
    },
    /// Nesting deeper than [`MAX_SERDE_DEPTH`](super::MAX_SERDE_DEPTH) where the Rust type
    /// does not bound it.
    TooDeep,
    /// A [`Term`](crate::term::Term) carried inside a serialized value whose external format
    /// bytes do not decode (a `Serialize` implementation misusing the term newtype).
    EmbeddedDecode(DecodeError),
    /// A [`Term`](crate::term::Term) to be handed to a `Deserialize` implementation that
    /// cannot be encoded (a hand-built term nested too deep, or with a NaN).
    EmbeddedEncode(EncodeError),
    /// A message from a `Serialize` or `Deserialize` implementation (serde's
    /// `Error::custom`): the one kind this module does not choose.
    Custom(String),
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ErrorKind::*;
        match self {
            InvalidType { expected, found } => write!(f, "expected {expected}, found {found}"),
            InvalidValue { expected, found } => {
                write!(f, "invalid value {found}, expected {expected}")
            }
            InvalidLength { expected, len } => {
                write!(f, "expected {expected}, found {len} elements")
            }
            IntegerOutOfRange { expected, value } => {
                write!(f, "integer {value} out of range for {expected}")
            }
            UnknownVariant { variant, expected } => {
                write!(f, "unknown variant {variant}, expected one of {expected:?}")
            }
            UnknownField { field, expected } => {
                write!(f, "unknown field {field}, expected one of {expected:?}")
            }
            MissingField { field } => write!(f, "missing field {field}"),
            DuplicateField { field } => write!(f, "field {field} given twice"),
            DuplicateMapKey { key } => write!(f, "map holds the key {key} twice"),
            NotAStruct { expected } => {
                write!(
                    f,
                    "expected struct {expected}, found a map without __struct__"
                )
            }
            WrongStruct { expected, found } => {
                write!(f, "expected struct {expected}, found __struct__ {found}")
            }
            NotUtf8 => f.write_str("binary is not UTF-8"),
            FloatNotFinite => f.write_str("float is not finite (the BEAM has no NaN or infinity)"),
            AtomTooLong { chars } => write!(f, "atom of {chars} characters (max 255)"),
            Unsupported { found } => write!(
                f,
                "{found} cannot be read without a Rust type that asks for it"
            ),
            TooDeep => write!(f, "nesting deeper than {} levels", super::MAX_SERDE_DEPTH),
            EmbeddedDecode(_) => f.write_str("embedded term does not decode"),
            EmbeddedEncode(_) => f.write_str("embedded term cannot be encoded"),
            Custom(message) => f.write_str(message),
        }
    }
}

/// Why a value could not become a term ([`to_term`](super::to_term)) or a term a value
/// ([`from_term`](super::from_term)): an [`ErrorKind`] and the [path](Error::path) to the part
/// of the value that failed.
///
/// Prints as `<path>: <kind>`, e.g. `.users[2].email: expected a UTF-8 binary, found atom nil`
/// (just `<kind>` at the root).
#[derive(Clone, PartialEq, Eq)]
pub struct Error(Box<Inner>);

#[derive(Clone, PartialEq, Eq)]
struct Inner {
    kind: ErrorKind,
    /// Outermost first.
    path: Vec<PathSegment>,
    /// Made by serde's `invalid_type`/`invalid_value`, whose `found` is serde's view of what
    /// the visitor got (a string for an atom): the deserializer of the term it is about
    /// replaces it with a description of the term.
    refine_found: bool,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind) -> Error {
        Error(Box::new(Inner {
            kind,
            path: Vec::new(),
            refine_found: false,
        }))
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.0.kind
    }

    /// Where, from the root of the value to the part that failed (empty at the root).
    pub fn path(&self) -> &[PathSegment] {
        &self.0.path
    }

    /// [`Error::path`] as text, e.g. `.users[2].email` (empty at the root).
    pub fn path_string(&self) -> String {
        self.0.path.iter().map(ToString::to_string).collect()
    }

    /// This error, one step further from the root: `segment` goes in front of the path.
    pub(crate) fn at(mut self, segment: PathSegment) -> Error {
        self.0.path.insert(0, segment);
        self
    }

    /// Replaces serde's `found` with `found` when this error was made by a visitor refusing
    /// the very term `found` describes (nothing was added to the path since).
    pub(crate) fn refine(mut self, found: impl FnOnce() -> String) -> Error {
        if self.0.refine_found && self.0.path.is_empty() {
            self.0.refine_found = false;
            if let ErrorKind::InvalidType { found: f, .. }
            | ErrorKind::InvalidValue { found: f, .. } = &mut self.0.kind
            {
                *f = found();
            }
        }
        self
    }

    fn from_serde(kind: ErrorKind) -> Error {
        let mut e = Error::new(kind);
        e.0.refine_found = true;
        e
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for segment in &self.0.path {
            write!(f, "{segment}")?;
        }
        if !self.0.path.is_empty() {
            f.write_str(": ")?;
        }
        write!(f, "{}", self.0.kind)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("path", &self.path_string())
            .field("kind", &self.0.kind)
            .finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.0.kind {
            ErrorKind::EmbeddedDecode(e) => Some(e),
            ErrorKind::EmbeddedEncode(e) => Some(e),
            _ => None,
        }
    }
}

impl ::serde::ser::Error for Error {
    fn custom<T: fmt::Display>(message: T) -> Error {
        Error::new(ErrorKind::Custom(message.to_string()))
    }
}

impl ::serde::de::Error for Error {
    fn custom<T: fmt::Display>(message: T) -> Error {
        Error::new(ErrorKind::Custom(message.to_string()))
    }

    fn invalid_type(
        found: ::serde::de::Unexpected<'_>,
        expected: &dyn ::serde::de::Expected,
    ) -> Error {
        Error::from_serde(ErrorKind::InvalidType {
            expected: expected.to_string(),
            found: found.to_string(),
        })
    }

    fn invalid_value(
        found: ::serde::de::Unexpected<'_>,
        expected: &dyn ::serde::de::Expected,
    ) -> Error {
        Error::from_serde(ErrorKind::InvalidValue {
            expected: expected.to_string(),
            found: found.to_string(),
        })
    }

    fn invalid_length(len: usize, expected: &dyn ::serde::de::Expected) -> Error {
        Error::new(ErrorKind::InvalidLength {
            expected: expected.to_string(),
            len,
        })
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Error {
        Error::new(ErrorKind::UnknownVariant {
            variant: variant.to_owned(),
            expected,
        })
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Error {
        Error::new(ErrorKind::UnknownField {
            field: field.to_owned(),
            expected,
        })
    }

    fn missing_field(field: &'static str) -> Error {
        Error::new(ErrorKind::MissingField { field })
    }

    fn duplicate_field(field: &'static str) -> Error {
        Error::new(ErrorKind::DuplicateField { field })
    }
}
