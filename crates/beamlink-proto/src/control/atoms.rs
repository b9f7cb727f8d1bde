//! The atoms of a message, in the order they are written, for the sender's atom cache
//! (the atom cache map that `erts_encode_dist_ext` in `erts/emulator/beam/external.c`
//! fills while it encodes the control message).

use super::layout::{Field, Layout, Tail};
use super::{Control, ProcessRef};
use crate::flags::DistFlags;
use crate::term::Atom;

impl Control {
    /// Calls `f` with the atoms of the control tuple as it is sent with `flags`, then with
    /// those of the terms it carries (at most `payload_budget` subterms of those are
    /// visited). The trace token is not visited.
    pub fn visit_atoms<'a, F>(&'a self, flags: DistFlags, f: &mut F, payload_budget: usize)
    where
        F: FnMut(&'a Atom) + ?Sized,
    {
        visit_layout(&self.layout(flags), f, payload_budget);
    }
}

/// [`Control::visit_atoms`] on a layout already built (the atom cache builds it once for
/// the walk and the encoding).
pub(crate) fn visit_layout<'a, F>(layout: &Layout<'a>, f: &mut F, payload_budget: usize)
where
    F: FnMut(&'a Atom) + ?Sized,
{
    let mut left = payload_budget;
    for field in layout.fields() {
        match *field {
            Field::Pid(p) | Field::Process(ProcessRef::Pid(p)) => f(&p.node),
            Field::Atom(a) | Field::Process(ProcessRef::Name(a)) => f(a),
            Field::Ref(r) => f(&r.node),
            Field::Mfa(module, function, _) => {
                f(module);
                f(function);
            }
            Field::Term(t) => left = t.visit_atoms(f, left),
            Field::Int(_) | Field::Id(_) => {}
        }
    }
    match layout.tail {
        Tail::Payload(t) | Tail::Inline(t) => {
            t.visit_atoms(f, left);
        }
        Tail::None => {}
    }
}
