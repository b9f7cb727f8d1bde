//! A second encoder that builds the control message as a term tree, from the same
//! [`Layout`](super::layout::Layout) as the direct encoder. Tests encode the tree with the
//! term encoder and compare bytes, and round-trip it through [`Control::from_terms`]; the
//! library itself never needs it, so it exists only under `cfg(test)` or the
//! `reference-encoder` feature (for the root package's property tests and the fuzz targets).

use super::layout::Field;
use super::{Control, ProcessRef};
use crate::flags::DistFlags;
use crate::term::Term;

impl Control {
    /// The control term and payload this message is sent as, given the connection's flags.
    /// Payloads are borrowed, never copied.
    pub fn to_terms(&self, flags: DistFlags) -> (Term, Option<&Term>) {
        let layout = self.layout(flags);
        let mut tuple = Vec::with_capacity(layout.arity());
        tuple.push(Term::Int(i64::from(layout.op)));
        tuple.extend(layout.fields().iter().map(|f| field_term(*f)));
        tuple.extend(layout.token.cloned());
        tuple.extend(layout.inline().cloned());
        (Term::Tuple(tuple), layout.payload())
    }
}

fn field_term(field: Field<'_>) -> Term {
    match field {
        Field::Pid(p) | Field::Process(ProcessRef::Pid(p)) => Term::Pid(p.clone()),
        Field::Atom(a) | Field::Process(ProcessRef::Name(a)) => Term::Atom(a.clone()),
        Field::Ref(r) => Term::reference(r.clone()),
        Field::Int(i) => Term::Int(i),
        Field::Id(id) => Term::from_u64(id),
        Field::Mfa(module, function, arity) => Term::tuple([
            Term::Atom(module.clone()),
            Term::Atom(function.clone()),
            Term::Int(i64::from(arity)),
        ]),
        Field::Term(t) => t.clone(),
    }
}
