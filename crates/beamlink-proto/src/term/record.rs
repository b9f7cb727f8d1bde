//! OTP 29 native records (`-record #name{...}` terms, tag `RECORD_EXT`): the value type.
//! Its codec lives with the other containers (`decode/containers.rs`, `encode.rs`).

use super::{Atom, Term};

/// A native record, `#module:name{field = value, ...}`, as OTP 29 sends it.
///
/// Fields keep the order they arrived in (a BEAM writes them in the order of the record's
/// definition); a field name appears at most once.
#[derive(Clone, PartialEq, Debug)]
pub struct Record {
    /// The module that defines the record.
    pub module: Atom,
    /// The record's name.
    pub name: Atom,
    /// Whether the module exports the record (`-export_record`), bit 0 of the flags byte.
    pub exported: bool,
    /// Field names and values.
    pub fields: Vec<(Atom, Term)>,
}

impl Record {
    /// The value of field `name`.
    pub fn get(&self, name: &str) -> Option<&Term> {
        self.fields
            .iter()
            .find(|(field, _)| field.as_str() == name)
            .map(|(_, value)| value)
    }

    /// True if two fields have the same name (neither side of a connection accepts that).
    pub(crate) fn has_duplicate_fields(&self) -> bool {
        let mut seen = std::collections::HashSet::with_capacity(self.fields.len());
        !self.fields.iter().all(|(name, _)| seen.insert(name))
    }
}
