//! The receiving half: a connection's atom cache as the peer fills it, and fragmented
//! messages reassembled in order (`erts_prepare_dist_ext` in
//! `erts/emulator/beam/external.c`, `erts_net_message` in `dist.c`).

use super::{
    ATOM_CACHE_SIZE, DIST_FRAG_CONT, DIST_FRAG_HEADER, DIST_HEADER, HeaderError,
    MAX_PARTIAL_MESSAGES, uses_header,
};
use crate::control::Control;
use crate::flags::DistFlags;
use crate::frame::{MessageError, PASS_THROUGH};
use crate::term::{Atom, Decoder, VERSION};
use bytes::{Bytes, BytesMut};
use std::collections::HashMap;
use std::fmt;

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
            (Some(&PASS_THROUGH), _) => crate::frame::decode_message(data).map(Some),
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
