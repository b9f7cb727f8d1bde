//! [`Control`] to bytes: the control tuple and the payload written straight from the
//! message's [`Layout`](super::layout::Layout), with no term built and nothing copied but
//! the bytes (`erts_dsig_send` in `erts/emulator/beam/dist.c` encodes the same two terms).

use super::layout::{Field, Layout};
use super::{Control, ProcessRef};
use crate::flags::DistFlags;
use crate::term::parts::{atom, int, pid, reference, term, tuple_header};
use crate::term::{Atom, Enc, EncodeError, Holes, Term, VERSION};
use bytes::{BufMut, BytesMut};

impl Control {
    /// Appends the pass-through message body (`112`, the control term, the payload term)
    /// without the 4-byte length.
    pub fn encode(&self, flags: DistFlags, out: &mut BytesMut) -> Result<(), EncodeError> {
        let start = out.len();
        out.put_u8(crate::frame::PASS_THROUGH);
        self.encode_terms(flags, out, &[], true)
            .inspect_err(|_| out.truncate(start))
    }

    /// Appends the control term and the payload term, each with a version byte when
    /// `versioned` (pass-through) or without (after a distribution header), atoms found in
    /// `refs` as atom cache references. Writes the tuple directly: no term is built, nothing
    /// is copied but the bytes.
    pub fn encode_terms(
        &self,
        flags: DistFlags,
        out: &mut BytesMut,
        refs: &[Atom],
        versioned: bool,
    ) -> Result<(), EncodeError> {
        self.encode_terms_with_holes(flags, out, refs, versioned, None)
    }

    /// [`encode_terms`](Self::encode_terms), leaving large binaries out of `out` and listing
    /// them in `holes` when given.
    pub fn encode_terms_with_holes(
        &self,
        flags: DistFlags,
        out: &mut BytesMut,
        refs: &[Atom],
        versioned: bool,
        holes: Option<&mut Holes>,
    ) -> Result<(), EncodeError> {
        self.encode_layout_at(self.layout(flags), out, refs, &[], versioned, holes)
    }

    /// [`encode_terms_with_holes`](Self::encode_terms_with_holes) of this message's
    /// `layout`, with the addresses of its atoms already found in `refs` (the atom cache
    /// walked the same layout).
    pub(crate) fn encode_layout_at(
        &self,
        layout: Layout<'_>,
        out: &mut BytesMut,
        refs: &[Atom],
        at: &[(usize, u8)],
        versioned: bool,
        holes: Option<&mut Holes>,
    ) -> Result<(), EncodeError> {
        let start = out.len();
        let held = holes.as_ref().map_or(0, |h| h.len());
        let mut e = Enc {
            out,
            refs,
            at,
            holes,
        };
        let result = write_terms(layout, &mut e, versioned);
        if result.is_err() {
            if let Some(h) = e.holes {
                h.truncate(held);
            }
            out.truncate(start);
        }
        result
    }
}

fn write_terms(layout: Layout<'_>, e: &mut Enc<'_>, versioned: bool) -> Result<(), EncodeError> {
    if versioned {
        e.out.put_u8(VERSION);
    }
    tuple_header(e, layout.arity())?;
    int(e, i64::from(layout.op));
    for field in layout.fields() {
        write_field(e, *field)?;
    }
    if let Some(token) = layout.token {
        term(e, token)?;
    }
    if let Some(reason) = layout.inline() {
        term(e, reason)?;
    }
    if let Some(payload) = layout.payload() {
        if versioned {
            e.out.put_u8(VERSION);
        }
        term(e, payload)?;
    }
    Ok(())
}

fn write_field(e: &mut Enc<'_>, field: Field<'_>) -> Result<(), EncodeError> {
    match field {
        Field::Pid(p) => pid(e, p),
        Field::Atom(a) => atom(e, a),
        Field::Ref(r) => reference(e, r),
        Field::Process(ProcessRef::Pid(p)) => pid(e, p),
        Field::Process(ProcessRef::Name(a)) => atom(e, a),
        Field::Int(i) => {
            int(e, i);
            Ok(())
        }
        Field::Id(id) => term(e, &Term::from_u64(id)),
        Field::Mfa(module, function, arity) => {
            tuple_header(e, 3)?;
            atom(e, module)?;
            atom(e, function)?;
            int(e, i64::from(arity));
            Ok(())
        }
        Field::Term(t) => term(e, t),
    }
}
