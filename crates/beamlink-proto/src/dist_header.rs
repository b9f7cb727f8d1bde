//! Distribution headers (`erl_ext_dist.md`, "Distribution Header" and "Distribution Header
//! for Fragmented Messages"): the per-connection atom cache a BEAM uses to send atoms as
//! one-byte references, and messages split into fragments.
//!
//! Once `DFLAG_DIST_HDR_ATOM_CACHE` or `DFLAG_FRAGMENTS` is negotiated, a BEAM sends every
//! message as `131, 68, ...` (or `69`/`70` for fragments) and refuses pass-through messages
//! (`erts_prepare_dist_ext` in `external.c`), so both directions change:
//! * [`DistDecoder`] keeps the connection's atom cache (2048 slots) and reassembles fragments;
//! * [`encode_with_header`] writes `131, 68, 0` (a header that references no atom) before
//!   the control and payload terms, which then carry no version byte.
//!
//! Bounds: the fragmented messages in progress on a connection may not hold more than the
//! connection's frame cap in total, and at most [`MAX_PARTIAL_MESSAGES`] may be open at
//! once; beyond either the message is refused (a typed error) and its fragments dropped.

use super::control::Control;
use super::flags::DistFlags;
use super::frame::{MessageError, PASS_THROUGH};
use super::term::{Atom, Decoder, EncodeError, Holes, VERSION};
use bytes::{BufMut, Bytes, BytesMut};
use std::collections::HashMap;
use std::fmt;

/// `131, 68`: a message with an atom cache header.
pub const DIST_HEADER: u8 = 68;
/// `131, 69`: the first fragment of a message.
pub const DIST_FRAG_HEADER: u8 = 69;
/// `131, 70`: a following fragment.
pub const DIST_FRAG_CONT: u8 = 70;
/// Slots in a connection's atom cache (`ERTS_ATOM_CACHE_SIZE`).
pub const ATOM_CACHE_SIZE: usize = 2048;
/// Fragmented messages that may be in progress at once on one connection.
pub const MAX_PARTIAL_MESSAGES: usize = 1024;

/// True if messages on a connection with these flags carry a distribution header.
pub fn uses_header(flags: DistFlags) -> bool {
    flags.contains(DistFlags::DIST_HDR_ATOM_CACHE) || flags.contains(DistFlags::FRAGMENTS)
}

/// A malformed distribution header or fragment sequence.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeaderError {
    /// The header ends early or its fields are inconsistent.
    Truncated,
    /// An atom cache reference to a slot that holds no atom.
    EmptyCacheSlot {
        /// The slot.
        slot: usize,
    },
    /// A cache index past the 2048 slots.
    BadCacheIndex {
        /// The index.
        index: usize,
    },
    /// An atom in the header is not valid UTF-8 or is too long.
    BadAtom,
    /// A fragment header on a connection that did not negotiate fragments.
    FragmentsNotNegotiated,
    /// A fragment id of 0.
    BadFragmentId,
    /// A continuation for a sequence we have no start of.
    UnknownSequence {
        /// The sequence id.
        sequence: u64,
    },
    /// A continuation out of order (fragment ids count down by one).
    OutOfOrder {
        /// The sequence id.
        sequence: u64,
        /// The fragment id expected.
        expected: u64,
        /// The one received.
        got: u64,
    },
    /// A new sequence with an id that is already open.
    DuplicateSequence {
        /// The sequence id.
        sequence: u64,
    },
    /// Too many fragmented messages open at once.
    TooManyPartial,
    /// A fragmented message grew past the size cap.
    TooLarge {
        /// Bytes so far.
        bytes: usize,
        /// The cap.
        max: usize,
    },
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderError::Truncated => f.write_str("truncated distribution header"),
            HeaderError::EmptyCacheSlot { slot } => {
                write!(f, "atom cache reference to empty slot {slot}")
            }
            HeaderError::BadCacheIndex { index } => {
                write!(f, "atom cache index {index} out of range")
            }
            HeaderError::BadAtom => f.write_str("invalid atom in the distribution header"),
            HeaderError::FragmentsNotNegotiated => {
                f.write_str("fragment on a connection that did not negotiate fragments")
            }
            HeaderError::BadFragmentId => f.write_str("fragment id 0"),
            HeaderError::UnknownSequence { sequence } => {
                write!(f, "continuation fragment of unknown sequence {sequence}")
            }
            HeaderError::OutOfOrder {
                sequence,
                expected,
                got,
            } => write!(
                f,
                "fragment {got} of sequence {sequence} arrived where {expected} was due"
            ),
            HeaderError::DuplicateSequence { sequence } => {
                write!(f, "sequence {sequence} started twice")
            }
            HeaderError::TooManyPartial => write!(
                f,
                "more than {MAX_PARTIAL_MESSAGES} fragmented messages in progress"
            ),
            HeaderError::TooLarge { bytes, max } => {
                write!(
                    f,
                    "fragmented message of {bytes} bytes, over the {max}-byte cap"
                )
            }
        }
    }
}

impl std::error::Error for HeaderError {}

struct Partial {
    atoms: Vec<Atom>,
    data: BytesMut,
    next_fragment: u64,
}

/// Decodes the messages of one connection, in order: keeps its atom cache and its
/// fragmented messages in progress.
pub struct DistDecoder {
    flags: DistFlags,
    cache: Vec<Option<Atom>>,
    partial: HashMap<u64, Partial>,
    partial_total: usize,
    max_message: usize,
}

impl fmt::Debug for DistDecoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DistDecoder")
            .field("flags", &self.flags)
            .field("partial", &self.partial.len())
            .finish()
    }
}

impl DistDecoder {
    /// A decoder for a connection with the negotiated `flags`; fragmented messages may not
    /// exceed `max_message` bytes.
    pub fn new(flags: DistFlags, max_message: usize) -> DistDecoder {
        DistDecoder {
            flags,
            cache: Vec::new(),
            partial: HashMap::new(),
            partial_total: 0,
            max_message,
        }
    }

    /// Bytes held by fragmented messages in progress (at most the size cap, across all of
    /// them).
    pub fn partial_bytes(&self) -> usize {
        self.partial_total
    }

    fn drop_partial(&mut self, sequence: u64) {
        if let Some(p) = self.partial.remove(&sequence) {
            self.partial_total -= p.data.len();
        }
    }

    /// Decodes one received message (a frame without its length). `Ok(None)` when it was a
    /// fragment and the message is not complete yet.
    pub fn decode(&mut self, data: &Bytes) -> Result<Option<Control>, MessageError> {
        match (data.first(), data.get(1)) {
            (Some(&PASS_THROUGH), _) => super::frame::decode_message(data).map(Some),
            (Some(&VERSION), Some(&kind))
                if uses_header(self.flags)
                    && matches!(kind, DIST_HEADER | DIST_FRAG_HEADER | DIST_FRAG_CONT) =>
            {
                self.decode_header(data, kind)
            }
            (Some(&VERSION), _) => Err(MessageError::HeaderNotNegotiated),
            (Some(&byte), _) => Err(MessageError::UnknownHeader { byte }),
            (None, _) => Err(MessageError::UnknownHeader { byte: 0 }),
        }
    }

    fn decode_header(&mut self, data: &Bytes, kind: u8) -> Result<Option<Control>, MessageError> {
        let header = |e: HeaderError| MessageError::Header(e);
        let mut r = Cursor { data, pos: 2 };
        match kind {
            DIST_HEADER => {
                let atoms = self.read_atoms(&mut r).map_err(header)?;
                decode_terms(data, r.pos, &atoms).map(Some)
            }
            DIST_FRAG_HEADER => {
                if !self.flags.contains(DistFlags::FRAGMENTS) {
                    return Err(header(HeaderError::FragmentsNotNegotiated));
                }
                let sequence = r.u64().map_err(header)?;
                let fragment = r.u64().map_err(header)?;
                let atoms = self.read_atoms(&mut r).map_err(header)?;
                match fragment {
                    0 => Err(header(HeaderError::BadFragmentId)),
                    1 => decode_terms(data, r.pos, &atoms).map(Some),
                    _ => {
                        if self.partial.contains_key(&sequence) {
                            self.drop_partial(sequence);
                            return Err(header(HeaderError::DuplicateSequence { sequence }));
                        }
                        if self.partial.len() >= MAX_PARTIAL_MESSAGES {
                            return Err(header(HeaderError::TooManyPartial));
                        }
                        let body = &data[r.pos..];
                        if self.partial_total + body.len() > self.max_message {
                            return Err(header(HeaderError::TooLarge {
                                bytes: self.partial_total + body.len(),
                                max: self.max_message,
                            }));
                        }
                        self.partial_total += body.len();
                        // Every fragment but the last is as large as this one: reserve for
                        // all of them at once, so reassembly copies each byte once.
                        // The count comes from the peer: reserve at most 1 MiB up front, the
                        // rest grows as fragments arrive.
                        let expected = (body.len() as u64)
                            .saturating_mul(fragment)
                            .min(self.max_message as u64)
                            .min(1 << 20) as usize;
                        let mut data = BytesMut::with_capacity(expected);
                        data.extend_from_slice(body);
                        self.partial.insert(
                            sequence,
                            Partial {
                                atoms,
                                data,
                                next_fragment: fragment - 1,
                            },
                        );
                        Ok(None)
                    }
                }
            }
            _ => {
                if !self.flags.contains(DistFlags::FRAGMENTS) {
                    return Err(header(HeaderError::FragmentsNotNegotiated));
                }
                let sequence = r.u64().map_err(header)?;
                let fragment = r.u64().map_err(header)?;
                let Some(p) = self.partial.get_mut(&sequence) else {
                    return Err(header(HeaderError::UnknownSequence { sequence }));
                };
                if fragment != p.next_fragment {
                    let expected = p.next_fragment;
                    self.drop_partial(sequence);
                    return Err(header(HeaderError::OutOfOrder {
                        sequence,
                        expected,
                        got: fragment,
                    }));
                }
                let body = &data[r.pos..];
                if self.partial_total + body.len() > self.max_message {
                    let bytes = self.partial_total + body.len();
                    self.drop_partial(sequence);
                    return Err(header(HeaderError::TooLarge {
                        bytes,
                        max: self.max_message,
                    }));
                }
                self.partial_total += body.len();
                p.data.extend_from_slice(body);
                if fragment > 1 {
                    p.next_fragment -= 1;
                    return Ok(None);
                }
                let Some(p) = self.partial.remove(&sequence) else {
                    return Err(header(HeaderError::UnknownSequence { sequence }));
                };
                self.partial_total -= p.data.len();
                let whole = p.data.freeze();
                decode_terms(&whole, 0, &p.atoms).map(Some)
            }
        }
    }

    /// Reads the atom cache part of a header: the new entries go into the cache, and the
    /// message's table of atoms comes back.
    fn read_atoms(&mut self, r: &mut Cursor<'_>) -> Result<Vec<Atom>, HeaderError> {
        let count = r.u8()? as usize;
        if count == 0 {
            return Ok(Vec::new());
        }
        let flag_bytes = r.take(count / 2 + 1)?;
        let nibble = |i: usize| (flag_bytes[i / 2] >> ((i % 2) * 4)) & 0x0f;
        let long_atoms = nibble(count) & 1 == 1;
        if self.cache.is_empty() {
            self.cache = vec![None; ATOM_CACHE_SIZE];
        }
        let mut atoms = Vec::with_capacity(count);
        for i in 0..count {
            let flags = nibble(i);
            let segment = (flags & 7) as usize;
            let index = segment * 256 + r.u8()? as usize;
            if index >= ATOM_CACHE_SIZE {
                return Err(HeaderError::BadCacheIndex { index });
            }
            if flags & 8 != 0 {
                let len = if long_atoms {
                    r.u16()? as usize
                } else {
                    r.u8()? as usize
                };
                let text = std::str::from_utf8(r.take(len)?).map_err(|_| HeaderError::BadAtom)?;
                if text.chars().count() > Atom::MAX_CHARS {
                    return Err(HeaderError::BadAtom);
                }
                let atom = Atom::new(text);
                self.cache[index] = Some(atom.clone());
                atoms.push(atom);
            } else {
                match &self.cache[index] {
                    Some(atom) => atoms.push(atom.clone()),
                    None => return Err(HeaderError::EmptyCacheSlot { slot: index }),
                }
            }
        }
        Ok(atoms)
    }
}

fn decode_terms(data: &Bytes, pos: usize, atoms: &[Atom]) -> Result<Control, MessageError> {
    let mut d = Decoder::new(data, pos).with_atom_cache(atoms);
    let control = d.term_body()?;
    let payload = if d.is_at_end() {
        None
    } else {
        Some(d.term_body()?)
    };
    if !d.is_at_end() {
        return Err(MessageError::TrailingBytes);
    }
    Control::from_terms(control, payload).map_err(MessageError::Control)
}

struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], HeaderError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or(HeaderError::Truncated)?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, HeaderError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, HeaderError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u64(&mut self) -> Result<u64, HeaderError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::term::{Pid, Term, encode};

    fn flags() -> DistFlags {
        DistFlags::BEAMLINK_DEFAULT | DistFlags::DIST_HDR_ATOM_CACHE | DistFlags::FRAGMENTS
    }

    fn reg_send() -> Control {
        Control::RegSend {
            from: Pid {
                node: Atom::new("a@h.x"),
                id: 1,
                serial: 0,
                creation: 3,
            },
            to: Atom::new("rig_sink"),
            token: None,
            message: Term::binary(vec![7u8; 300]),
        }
    }

    #[test]
    fn a_header_without_atoms_round_trips() {
        let mut out = BytesMut::new();
        encode_with_header(&reg_send(), flags(), &mut out).unwrap();
        assert_eq!(&out[..3], &[131, 68, 0]);
        let mut d = DistDecoder::new(flags(), 1 << 20);
        assert_eq!(d.decode(&out.freeze()).unwrap(), Some(reg_send()));
    }

    /// Builds `131, 68` with the given (new?, index, text) atom entries, then the terms.
    fn with_atoms(entries: &[(bool, usize, &str)], body: &[u8]) -> Bytes {
        let mut out = vec![131, 68, entries.len() as u8];
        let mut nibbles: Vec<u8> = entries
            .iter()
            .map(|(new, idx, _)| ((*new as u8) << 3) | (idx / 256) as u8)
            .collect();
        nibbles.push(0);
        for pair in nibbles.chunks(2) {
            out.push(pair[0] | (pair.get(1).copied().unwrap_or(0) << 4));
        }
        for (new, idx, text) in entries {
            out.push((idx % 256) as u8);
            if *new {
                out.push(text.len() as u8);
                out.extend_from_slice(text.as_bytes());
            }
        }
        out.extend_from_slice(body);
        Bytes::from(out)
    }

    #[test]
    fn cached_atoms_are_remembered_between_messages() {
        // {6, Pid, '', name} with ATOM_CACHE_REF 0 = '', 1 = rig_sink; the pid's node inline.
        let mut body = BytesMut::new();
        body.put_slice(&[104, 4, 97, 6]);
        let pid = Term::Pid(Pid {
            node: Atom::new("a@h.x"),
            id: 1,
            serial: 0,
            creation: 3,
        });
        let mut p = BytesMut::new();
        encode(&pid, &mut p).unwrap();
        body.put_slice(&p[1..]);
        body.put_slice(&[82, 0, 82, 1]);
        body.put_slice(&[106]);
        let mut d = DistDecoder::new(flags(), 1 << 20);
        let first = with_atoms(&[(true, 5, ""), (true, 300, "rig_sink")], &body);
        match d.decode(&first).unwrap() {
            Some(Control::RegSend { to, message, .. }) => {
                assert_eq!(to.as_str(), "rig_sink");
                assert_eq!(message, Term::NIL);
            }
            other => panic!("{other:?}"),
        }
        let second = with_atoms(&[(false, 5, ""), (false, 300, "")], &body);
        assert!(matches!(
            d.decode(&second),
            Ok(Some(Control::RegSend { .. }))
        ));
        let empty = with_atoms(&[(false, 6, ""), (false, 300, "")], &body);
        assert_eq!(
            d.decode(&empty),
            Err(MessageError::Header(HeaderError::EmptyCacheSlot {
                slot: 6
            }))
        );
    }

    #[test]
    fn fragments_are_reassembled_in_order_and_checked() {
        let mut whole = BytesMut::new();
        encode_with_header(&reg_send(), flags(), &mut whole).unwrap();
        let terms = &whole[3..];
        let (a, rest) = terms.split_at(40);
        let (b, c) = rest.split_at(100);
        let first = |seq: u64, frags: u64| {
            let mut v = vec![131, 69];
            v.extend_from_slice(&seq.to_be_bytes());
            v.extend_from_slice(&frags.to_be_bytes());
            v.push(0);
            v.extend_from_slice(a);
            Bytes::from(v)
        };
        let cont = |seq: u64, id: u64, part: &[u8]| {
            let mut v = vec![131, 70];
            v.extend_from_slice(&seq.to_be_bytes());
            v.extend_from_slice(&id.to_be_bytes());
            v.extend_from_slice(part);
            Bytes::from(v)
        };
        let mut d = DistDecoder::new(flags(), 1 << 20);
        assert_eq!(d.decode(&first(9, 3)), Ok(None));
        assert_eq!(d.decode(&first(10, 3)), Ok(None));
        assert_eq!(d.decode(&cont(9, 2, b)), Ok(None));
        assert_eq!(d.decode(&cont(9, 1, c)).unwrap(), Some(reg_send()));
        assert_eq!(
            d.decode(&cont(10, 1, c)),
            Err(MessageError::Header(HeaderError::OutOfOrder {
                sequence: 10,
                expected: 2,
                got: 1
            }))
        );
        assert_eq!(
            d.decode(&cont(11, 1, c)),
            Err(MessageError::Header(HeaderError::UnknownSequence {
                sequence: 11
            }))
        );
        assert_eq!(d.partial_bytes(), 0);
        let mut small = DistDecoder::new(flags(), 100);
        assert_eq!(small.decode(&first(1, 3)), Ok(None));
        assert!(matches!(
            small.decode(&cont(1, 2, b)),
            Err(MessageError::Header(HeaderError::TooLarge { .. }))
        ));
        let no_frag = DistFlags(DistFlags::BEAMLINK_DEFAULT.0 & !DistFlags::FRAGMENTS.0);
        let mut d = DistDecoder::new(no_frag, 1 << 20);
        assert_eq!(
            d.decode(&first(1, 3)),
            Err(MessageError::Header(HeaderError::FragmentsNotNegotiated))
        );
    }

    #[test]
    fn truncated_headers_are_typed_errors() {
        let mut d = DistDecoder::new(flags(), 1 << 20);
        for bytes in [
            &[131u8, 68][..],
            &[131, 68, 2],
            &[131, 68, 1, 8, 0],
            &[131, 69, 0, 0],
        ] {
            assert!(d.decode(&Bytes::copy_from_slice(bytes)).is_err());
        }
        let no_header = DistFlags(
            DistFlags::BEAMLINK_DEFAULT.0
                & !(DistFlags::FRAGMENTS.0 | DistFlags::DIST_HDR_ATOM_CACHE.0),
        );
        let plain = DistDecoder::new(no_header, 1 << 20).decode(&Bytes::from_static(&[131, 68, 0]));
        assert_eq!(plain, Err(MessageError::HeaderNotNegotiated));
    }
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
        }
    }

    fn slot_of(atom: &Atom) -> usize {
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
        } = self;
        atoms.clear();
        entries.clear();
        control.visit_atoms(
            &mut |a| {
                if atoms.len() < MAX_HEADER_ATOMS && !atoms.contains(a) {
                    atoms.push(a.clone());
                }
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
        match control.encode_terms_with_holes(flags, out, atoms, false, holes) {
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

#[cfg(test)]
mod cache_out_tests {
    use super::*;
    use crate::term::{Pid, Reference, Term};

    fn flags() -> DistFlags {
        DistFlags::BEAMLINK_DEFAULT
    }

    fn msg(i: i64) -> Control {
        Control::RegSend {
            from: Pid {
                node: Atom::new("a@h.x"),
                id: 1,
                serial: 0,
                creation: 3,
            },
            to: Atom::new("rig_sink"),
            token: None,
            message: Term::tuple([
                Term::atom("seq"),
                Term::Int(i),
                Term::reference(Reference::new(Atom::new("a@h.x"), 3, &[1, 2, 3]).unwrap()),
            ]),
        }
    }

    #[test]
    fn our_encoder_and_our_decoder_agree_message_after_message() {
        let mut out_cache = AtomCacheOut::new();
        let mut decoder = DistDecoder::new(flags(), 1 << 20);
        let mut sizes = Vec::new();
        for i in 0..5 {
            let mut out = BytesMut::new();
            out_cache.encode(&msg(i), flags(), &mut out).unwrap();
            sizes.push(out.len());
            assert_eq!(decoder.decode(&out.freeze()).unwrap(), Some(msg(i)));
        }
        // The first message carries the atom texts, the next ones only references.
        assert!(sizes[1] < sizes[0], "{sizes:?}");
        assert_eq!(sizes[1], sizes[4]);
    }

    #[test]
    fn a_failed_encode_leaves_the_cache_alone() {
        let mut out_cache = AtomCacheOut::new();
        let bad = Control::RegSend {
            from: Pid {
                node: Atom::new("a@h.x"),
                id: 1,
                serial: 0,
                creation: 3,
            },
            to: Atom::new("x"),
            token: None,
            message: Term::Float(f64::NAN),
        };
        let mut out = BytesMut::new();
        assert!(out_cache.encode(&bad, flags(), &mut out).is_err());
        assert!(out.is_empty());
        // The decoder never saw the atoms: the next message must carry them again.
        let mut decoder = DistDecoder::new(flags(), 1 << 20);
        let mut out = BytesMut::new();
        out_cache.encode(&msg(1), flags(), &mut out).unwrap();
        assert_eq!(decoder.decode(&out.freeze()).unwrap(), Some(msg(1)));
    }

    #[test]
    fn colliding_atoms_in_one_message_stay_right() {
        // Find two atoms that share a slot.
        let first = Atom::new("a0");
        let slot = AtomCacheOut::slot_of(&first);
        let second = (1..100_000)
            .map(|i| Atom::new(&format!("a{i}")))
            .find(|a| AtomCacheOut::slot_of(a) == slot)
            .unwrap();
        let m = Control::RegSend {
            from: Pid {
                node: Atom::new("a@h.x"),
                id: 1,
                serial: 0,
                creation: 3,
            },
            to: first.clone(),
            token: None,
            message: Term::tuple([Term::Atom(second.clone()), Term::Atom(first.clone())]),
        };
        let mut out_cache = AtomCacheOut::new();
        let mut decoder = DistDecoder::new(flags(), 1 << 20);
        for _ in 0..3 {
            let mut out = BytesMut::new();
            out_cache.encode(&m, flags(), &mut out).unwrap();
            assert_eq!(decoder.decode(&out.freeze()).unwrap(), Some(m.clone()));
        }
    }
}
