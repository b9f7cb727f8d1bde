//! The sending half: a header that references no atom, or our half of the atom cache
//! (the atom cache map of `erts_encode_dist_ext` in `erts/emulator/beam/external.c`).

use super::{ATOM_CACHE_SIZE, DIST_HEADER};
use crate::control::{Control, visit_layout};
use crate::flags::DistFlags;
use crate::term::{Atom, EncodeError, Holes, VERSION, atom_address};
use bytes::{BufMut, BytesMut};
use std::fmt;

/// Appends `control` as a message body with a distribution header that references no atom
/// (`131, 68, 0`), for connections that negotiated headers; no length prefix.
pub fn encode_with_header(
    control: &Control,
    flags: DistFlags,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    encode_with_header_and_holes(control, flags, out, None)
}

/// [`encode_with_header`], leaving large binaries out of `out` and listing them in `holes`
/// when given.
pub fn encode_with_header_and_holes(
    control: &Control,
    flags: DistFlags,
    out: &mut BytesMut,
    holes: Option<&mut Holes>,
) -> Result<(), EncodeError> {
    let start = out.len();
    out.put_slice(&[VERSION, DIST_HEADER, 0]);
    control
        .encode_terms_with_holes(flags, out, &[], false, holes)
        .inspect_err(|_| out.truncate(start))
}

/// Our half of a connection's atom cache: which atom each of the 2048 slots holds at the
/// peer. Messages encoded through it send their atoms as one-byte references once the peer
/// has them, as a BEAM does. Use one per connection, and encode messages in the order they
/// go on the wire (the peer applies the new entries in that order).
pub struct AtomCacheOut {
    slots: Vec<Option<Atom>>,
    /// Per-message scratch, kept to avoid allocating for every message: the message's
    /// atoms, and for each its slot and whether the peer must be sent its text.
    atoms: Vec<Atom>,
    entries: Vec<(usize, bool)>,
    /// Each atom occurrence visited in the message, by address, with its index in `atoms`:
    /// the encoder then finds them without comparing text again.
    at: Vec<(usize, u8)>,
}

impl fmt::Debug for AtomCacheOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let used = self.slots.iter().filter(|s| s.is_some()).count();
        write!(f, "AtomCacheOut({used} atoms)")
    }
}

impl Default for AtomCacheOut {
    fn default() -> AtomCacheOut {
        AtomCacheOut::new()
    }
}

/// Most atoms one header may carry (`ERTS_MAX_INTERNAL_ATOM_CACHE_ENTRIES`).
const MAX_HEADER_ATOMS: usize = 255;
/// Payload terms visited when looking for atoms to cache; atoms past it go inline.
const MAX_ATOM_SCAN: usize = 256;

impl AtomCacheOut {
    /// An empty cache (the state of a new connection).
    pub fn new() -> AtomCacheOut {
        AtomCacheOut {
            // Allocated by the first message that carries atoms: an idle link costs nothing.
            slots: Vec::new(),
            atoms: Vec::new(),
            entries: Vec::new(),
            at: Vec::new(),
        }
    }

    pub(super) fn slot_of(atom: &Atom) -> usize {
        // FNV-1a: any fixed function works, the slot is sent with the atom.
        let mut h: u32 = 0x811c_9dc5;
        for b in atom.as_str().bytes() {
            h ^= b as u32;
            h = h.wrapping_mul(0x0100_0193);
        }
        h as usize % ATOM_CACHE_SIZE
    }

    /// Appends `control` as a message body (no length prefix) with a distribution header
    /// whose atoms go through the cache. On error nothing is appended and the cache is as
    /// it was.
    pub fn encode(
        &mut self,
        control: &Control,
        flags: DistFlags,
        out: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        self.encode_with_holes(control, flags, out, None)
    }

    /// [`encode`](Self::encode), leaving large binaries out of `out` and listing them in
    /// `holes` when given.
    pub fn encode_with_holes(
        &mut self,
        control: &Control,
        flags: DistFlags,
        out: &mut BytesMut,
        holes: Option<&mut Holes>,
    ) -> Result<(), EncodeError> {
        let AtomCacheOut {
            slots,
            atoms,
            entries,
            at,
        } = self;
        atoms.clear();
        entries.clear();
        at.clear();
        // One layout for the walk and the encoding.
        let layout = control.layout(flags);
        visit_layout(
            &layout,
            &mut |a| {
                let index = match atoms.iter().position(|x| x == a) {
                    Some(i) => i,
                    None if atoms.len() < MAX_HEADER_ATOMS => {
                        atoms.push(a.clone());
                        atoms.len() - 1
                    }
                    None => return,
                };
                // At most 255 atoms: the index fits.
                at.push((atom_address(a), index as u8));
            },
            MAX_ATOM_SCAN,
        );
        let start = out.len();
        out.put_slice(&[VERSION, DIST_HEADER, atoms.len() as u8]);
        if !atoms.is_empty() {
            if slots.is_empty() {
                *slots = vec![None; ATOM_CACHE_SIZE];
            }
            let mut long_atoms = false;
            for (i, a) in atoms.iter().enumerate() {
                let slot = Self::slot_of(a);
                // Sent as text unless the peer holds it, and no earlier entry of this
                // message took the slot (the peer applies entries in order).
                let new = slots[slot].as_ref() != Some(a)
                    || entries[..i].iter().any(|(s, n)| *n && *s == slot);
                long_atoms |= new && a.as_str().len() > 255;
                entries.push((slot, new));
            }
            let nibble = |i: usize| -> u8 {
                match entries.get(i) {
                    Some((slot, new)) => ((*new as u8) << 3) | (slot >> 8) as u8,
                    None => long_atoms as u8,
                }
            };
            for i in (0..=entries.len()).step_by(2) {
                let high = if i < entries.len() { nibble(i + 1) } else { 0 };
                out.put_u8(nibble(i) | (high << 4));
            }
            for (a, (slot, new)) in atoms.iter().zip(entries.iter()) {
                out.put_u8((*slot & 0xff) as u8);
                if *new {
                    let text = a.as_str().as_bytes();
                    if long_atoms {
                        out.put_u16(text.len() as u16);
                    } else {
                        out.put_u8(text.len() as u8);
                    }
                    out.put_slice(text);
                }
            }
        }
        match control.encode_layout_at(layout, out, atoms, at, false, holes) {
            Ok(()) => {
                for (a, (slot, new)) in atoms.iter().zip(entries.iter()) {
                    if *new {
                        slots[*slot] = Some(a.clone());
                    }
                }
                Ok(())
            }
            Err(e) => {
                out.truncate(start);
                Err(e)
            }
        }
    }
}
