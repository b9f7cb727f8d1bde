//! Decoder tests (captured header layouts, fragments) and encoder tests (our atom cache
//! read back by our decoder).

mod decode {
    use super::super::*;
    use crate::control::Control;
    use crate::frame::MessageError;
    use crate::term::Atom;
    use crate::term::{Pid, Term, encode};
    use bytes::{BufMut, Bytes, BytesMut};

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

mod encode {
    use super::super::*;
    use crate::control::Control;
    use crate::flags::DistFlags;
    use crate::term::Atom;
    use crate::term::{Pid, Reference, Term};
    use bytes::BytesMut;

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
