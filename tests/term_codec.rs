//! The term codec on byte vectors: every tag in both directions, malformed input, bombs,
//! and property tests (encode/decode round trip, no panic on any bytes).

mod support;

use beamlink::proto::term::{
    self, Atom, BigInt, DecodeError, Decoder, EncodeError, Export, MAX_DEPTH, Pid, Port, Reference,
    Term, decode, encode, encode_body,
};
use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use support::{arb_term, dec, enc};

/// `bytes` decode to `t` and `t` encodes to `bytes`.
fn both(bytes: &[u8], t: Term) {
    assert_eq!(dec(bytes).as_ref(), Ok(&t), "decoding {bytes:?}");
    assert_eq!(enc(&t), bytes, "encoding {t:?}");
}

/// `bytes` decode to `t`, which encodes canonically to `canonical`.
fn decodes_to(bytes: &[u8], t: Term, canonical: &[u8]) {
    assert_eq!(dec(bytes).as_ref(), Ok(&t), "decoding {bytes:?}");
    assert_eq!(enc(&t), canonical, "re-encoding {t:?}");
}

fn v(prefix: &[u8], rest: &[u8]) -> Vec<u8> {
    [prefix, rest].concat()
}

fn encode_err(t: &Term) -> EncodeError {
    let mut out = BytesMut::from(&b"keep"[..]);
    let err = encode(t, &mut out).expect_err("must not encode");
    assert_eq!(&out[..], b"keep", "a failed encode appends nothing");
    err
}

fn node(name: &str) -> Atom {
    Atom::new(name)
}

fn pid(name: &str, id: u32, serial: u32, creation: u32) -> Pid {
    Pid {
        node: node(name),
        id,
        serial,
        creation,
    }
}

fn ints(values: &[i64]) -> Term {
    Term::List(values.iter().map(|&i| Term::Int(i)).collect())
}

fn big(negative: bool, magnitude: &[u8]) -> Term {
    Term::Big(BigInt {
        negative,
        magnitude: magnitude.to_vec(),
    })
}

// ---- integers ------------------------------------------------------------------------------

#[test]
fn integers_use_the_smallest_encoding() {
    both(&[131, 97, 0], Term::Int(0));
    both(&[131, 97, 255], Term::Int(255));
    both(&[131, 98, 0, 0, 1, 0], Term::Int(256));
    both(&[131, 98, 255, 255, 255, 255], Term::Int(-1));
    both(&[131, 98, 127, 255, 255, 255], Term::Int(i32::MAX.into()));
    both(&[131, 98, 128, 0, 0, 0], Term::Int(i32::MIN.into()));
    both(&[131, 110, 4, 0, 0, 0, 0, 128], Term::Int(1 << 31));
    both(&[131, 110, 4, 1, 1, 0, 0, 128], Term::Int(-(1 << 31) - 1));
    both(
        &[131, 110, 8, 0, 255, 255, 255, 255, 255, 255, 255, 127],
        Term::Int(i64::MAX),
    );
    both(
        &[131, 110, 8, 1, 0, 0, 0, 0, 0, 0, 0, 128],
        Term::Int(i64::MIN),
    );
}

#[test]
fn big_integers_outside_i64() {
    both(
        &[131, 110, 8, 0, 0, 0, 0, 0, 0, 0, 0, 128],
        big(false, &[0, 0, 0, 0, 0, 0, 0, 128]),
    );
    both(
        &[131, 110, 8, 1, 1, 0, 0, 0, 0, 0, 0, 128],
        big(true, &[1, 0, 0, 0, 0, 0, 0, 128]),
    );
    both(
        &[131, 110, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        big(false, &[0, 0, 0, 0, 0, 0, 0, 0, 1]),
    );
    let mut magnitude = vec![7u8; 255];
    both(&v(&[131, 110, 255, 1], &magnitude), big(true, &magnitude));
    magnitude.push(9);
    both(
        &v(&[131, 111, 0, 0, 1, 0, 0], &magnitude),
        big(false, &magnitude),
    );
}

#[test]
fn non_normalised_big_integers_are_normalised() {
    decodes_to(&[131, 110, 2, 0, 1, 0], Term::Int(1), &[131, 97, 1]);
    decodes_to(&[131, 110, 0, 0], Term::Int(0), &[131, 97, 0]);
    decodes_to(&[131, 110, 1, 1, 0], Term::Int(0), &[131, 97, 0]);
    // The BEAM reads any non-zero sign byte as negative.
    decodes_to(
        &[131, 110, 1, 2, 5],
        Term::Int(-5),
        &[131, 98, 255, 255, 255, 251],
    );
    decodes_to(&[131, 111, 0, 0, 0, 1, 0, 5], Term::Int(5), &[131, 97, 5]);
    decodes_to(
        &[131, 110, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0],
        big(false, &[0, 0, 0, 0, 0, 0, 0, 0, 1]),
        &[131, 110, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
    );
    // A hand-built BigInt that fits is written as the integer it is.
    assert_eq!(enc(&big(true, &[1, 0, 0])), [131, 98, 255, 255, 255, 255]);
    assert_eq!(enc(&big(false, &[])), [131, 97, 0]);
    assert_eq!(Term::from_u64(u64::MAX).as_u64(), Some(u64::MAX));
    assert_eq!(
        dec(&enc(&Term::from_u64(u64::MAX))).unwrap().as_u64(),
        Some(u64::MAX)
    );
}

// ---- floats --------------------------------------------------------------------------------

#[test]
fn new_floats() {
    both(&[131, 70, 63, 248, 0, 0, 0, 0, 0, 0], Term::Float(1.5));
    let bytes = enc(&Term::Float(-0.0));
    assert_eq!(bytes, [131, 70, 128, 0, 0, 0, 0, 0, 0, 0]);
    match dec(&bytes) {
        Ok(Term::Float(x)) => assert!(x == 0.0 && x.is_sign_negative()),
        other => panic!("{other:?}"),
    }
    for bits in [
        0x7ff0_0000_0000_0000u64,
        0xfff0_0000_0000_0000,
        0x7ff8_0000_0000_0001,
    ] {
        let bytes = v(&[131, 70], &bits.to_be_bytes());
        assert_eq!(dec(&bytes), Err(DecodeError::FloatNotFinite { offset: 1 }));
    }
    assert_eq!(
        encode_err(&Term::Float(f64::NAN)),
        EncodeError::FloatNotFinite
    );
    assert_eq!(
        encode_err(&Term::Float(f64::INFINITY)),
        EncodeError::FloatNotFinite
    );
}

fn float_ext(text: &str) -> Vec<u8> {
    let mut bytes = vec![131, 99];
    bytes.extend_from_slice(text.as_bytes());
    bytes.resize(33, 0);
    bytes
}

#[test]
fn old_text_floats() {
    let canonical = [131, 70, 63, 248, 0, 0, 0, 0, 0, 0];
    decodes_to(
        &float_ext("1.50000000000000000000e+00"),
        Term::Float(1.5),
        &canonical,
    );
    decodes_to(&float_ext("1,5"), Term::Float(1.5), &canonical);
    decodes_to(
        &float_ext("+1.5e+3"),
        Term::Float(1500.0),
        &enc(&Term::Float(1500.0)),
    );
    decodes_to(
        &float_ext("-1.5E3"),
        Term::Float(-1500.0),
        &enc(&Term::Float(-1500.0)),
    );
    // Full precision, unlike eetf's f32.
    assert_eq!(
        dec(&float_ext("1.00000000000000005551e-01")),
        Ok(Term::Float(0.1))
    );
    assert_eq!(
        dec(&float_ext("4.94065645841246544177e-324")),
        Ok(Term::Float(5e-324))
    );
    assert_eq!(dec(&float_ext("1.0e-400")), Ok(Term::Float(0.0)));
    // Text after the first NUL is ignored, as by the BEAM; 31 bytes without NUL are fine.
    assert_eq!(dec(&float_ext("1.5\0zz")), Ok(Term::Float(1.5)));
    assert_eq!(
        dec(&float_ext("1.50000000000000000000000000000")),
        Ok(Term::Float(1.5))
    );
    for bad in [
        "15", "1.", ".5", "1.5e", " 1.5", "1.5 ", "1.5xyz", "inf", "nan", "0x1p3", "", "1e5",
    ] {
        assert_eq!(
            dec(&float_ext(bad)),
            Err(DecodeError::BadFloatText { offset: 1 }),
            "{bad:?}"
        );
    }
    assert_eq!(
        dec(&float_ext("1.0e400")),
        Err(DecodeError::FloatNotFinite { offset: 1 })
    );
    assert_eq!(
        dec(&float_ext("1.5")[..20]),
        Err(DecodeError::UnexpectedEnd { offset: 2 })
    );
}

// ---- atoms ---------------------------------------------------------------------------------

#[test]
fn atoms() {
    both(&[131, 119, 2, b'o', b'k'], Term::atom("ok"));
    both(&[131, 119, 0], Term::atom(""));
    both(&[131, 119, 2, 195, 169], Term::atom("é"));
    let long = "a".repeat(255);
    both(&v(&[131, 119, 255], long.as_bytes()), Term::atom(&long));
    // 128 two-byte characters: 256 bytes, so ATOM_UTF8_EXT.
    let accents = "é".repeat(128);
    both(
        &v(&[131, 118, 1, 0], accents.as_bytes()),
        Term::atom(&accents),
    );
    let most = "é".repeat(255);
    both(&v(&[131, 118, 1, 254], most.as_bytes()), Term::atom(&most));
    let four = "𝄞".repeat(255);
    both(&v(&[131, 118, 3, 252], four.as_bytes()), Term::atom(&four));
    // An ATOM_UTF8_EXT that would fit a SMALL_ATOM_UTF8_EXT is read too.
    decodes_to(
        &[131, 118, 0, 2, b'o', b'k'],
        Term::atom("ok"),
        &[131, 119, 2, b'o', b'k'],
    );
    assert_eq!(dec(&[131, 119, 1, 0]), Ok(Term::atom("\0")));
}

#[test]
fn latin1_atoms_are_converted_to_utf8() {
    decodes_to(
        &[131, 100, 0, 2, 0xe9, b'A'],
        Term::atom("éA"),
        &[131, 119, 3, 195, 169, b'A'],
    );
    decodes_to(
        &[131, 115, 2, b'o', b'k'],
        Term::atom("ok"),
        &[131, 119, 2, b'o', b'k'],
    );
    decodes_to(
        &[131, 115, 1, 0xff],
        Term::atom("ÿ"),
        &[131, 119, 2, 195, 191],
    );
    let latin = vec![0xe9u8; 255];
    assert_eq!(
        dec(&v(&[131, 100, 0, 255], &latin)),
        Ok(Term::atom(&"é".repeat(255)))
    );
    assert_eq!(
        dec(&v(&[131, 100, 1, 0], &[b'a'; 256])),
        Err(DecodeError::AtomTooLong {
            offset: 1,
            chars: 256
        })
    );
}

#[test]
fn bad_atoms() {
    for bytes in [
        &[131, 119, 1, 255][..],
        &[131, 119, 2, 0xc0, 0x80],
        &[131, 119, 3, 0xed, 0xa0, 0x80],
    ] {
        assert_eq!(
            dec(bytes),
            Err(DecodeError::AtomNotUtf8 { offset: 1 }),
            "{bytes:?}"
        );
    }
    let too_long = "é".repeat(256);
    assert_eq!(
        dec(&v(&[131, 118, 2, 0], too_long.as_bytes())),
        Err(DecodeError::AtomTooLong {
            offset: 1,
            chars: 256
        })
    );
    // 65 535-byte atoms: too long whatever the bytes.
    let huge = vec![b'a'; 65535];
    assert_eq!(
        dec(&v(&[131, 118, 255, 255], &huge)),
        Err(DecodeError::AtomTooLong {
            offset: 1,
            chars: 65535
        })
    );
    assert_eq!(
        dec(&v(&[131, 100, 255, 255], &huge)),
        Err(DecodeError::AtomTooLong {
            offset: 1,
            chars: 65535
        })
    );
    assert_eq!(
        encode_err(&Term::atom(&"x".repeat(256))),
        EncodeError::AtomTooLong { chars: 256 }
    );
    assert_eq!(
        encode_err(&Term::atom(&"é".repeat(256))),
        EncodeError::AtomTooLong { chars: 256 }
    );
}

#[test]
fn atom_cache_references() {
    let cache = [Atom::new("zero"), Atom::new("one")];
    let buf = Bytes::from_static(&[82, 1, 82, 2, 82, 0]);
    let mut d = Decoder::new(&buf, 0).with_atom_cache(&cache);
    assert_eq!(d.term_body(), Ok(Term::atom("one")));
    assert_eq!(
        d.term_body(),
        Err(DecodeError::AtomCacheIndex {
            offset: 2,
            index: 2,
            cache_len: 2
        })
    );
    assert_eq!(d.position(), 2, "a failed decode consumes nothing");
    let mut d = Decoder::new(&buf, 4);
    assert_eq!(d.term_body(), Err(DecodeError::NoAtomCache { offset: 4 }));
    // Node names of pids may come from the cache too.
    let buf = Bytes::from_static(&[88, 82, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3]);
    let got = Decoder::new(&buf, 0).with_atom_cache(&cache).term_body();
    assert_eq!(got, Ok(Term::Pid(pid("zero", 1, 2, 3))));
}

// ---- tuples, lists, maps -------------------------------------------------------------------

#[test]
fn tuples() {
    both(&[131, 104, 0], Term::tuple(vec![]));
    both(
        &[131, 104, 2, 97, 1, 106],
        Term::tuple(vec![Term::Int(1), Term::NIL]),
    );
    let many: Vec<Term> = (0..256).map(|_| Term::NIL).collect();
    both(&v(&[131, 105, 0, 0, 1, 0], &[106; 256]), Term::Tuple(many));
    decodes_to(
        &[131, 105, 0, 0, 0, 1, 97, 1],
        Term::tuple(vec![Term::Int(1)]),
        &[131, 104, 1, 97, 1],
    );
}

#[test]
fn lists_and_strings() {
    both(&[131, 106], Term::NIL);
    both(&[131, 107, 0, 3, 1, 2, 3], ints(&[1, 2, 3]));
    both(&[131, 107, 0, 3, b'a', b'b', b'c'], ints(&[97, 98, 99]));
    // Negative integers never go into a STRING_EXT (eetf's bug writes [-1, 2] as [255, 2]).
    both(
        &[131, 108, 0, 0, 0, 2, 98, 255, 255, 255, 255, 97, 2, 106],
        ints(&[-1, 2]),
    );
    both(&[131, 108, 0, 0, 0, 1, 98, 0, 0, 1, 0, 106], ints(&[256]));
    both(
        &[131, 108, 0, 0, 0, 2, 119, 1, b'a', 97, 1, 106],
        Term::list(vec![Term::atom("a"), Term::Int(1)]),
    );
    let max: Vec<i64> = vec![7; 65535];
    assert_eq!(&enc(&ints(&max))[..4], [131, 107, 255, 255]);
    assert!(dec(&enc(&ints(&max))) == Ok(ints(&max)));
    let over: Vec<i64> = vec![7; 65536];
    assert_eq!(&enc(&ints(&over))[..6], [131, 108, 0, 1, 0, 0]);
    assert!(dec(&enc(&ints(&over))) == Ok(ints(&over)));
    decodes_to(&[131, 107, 0, 0], Term::NIL, &[131, 106]);
}

#[test]
fn improper_lists() {
    let one_two = Term::ImproperList(vec![Term::Int(1)], Box::new(Term::Int(2)));
    both(&[131, 108, 0, 0, 0, 1, 97, 1, 97, 2], one_two);
    let t = Term::ImproperList(vec![Term::Int(1), Term::Int(2)], Box::new(Term::Int(3)));
    both(&[131, 108, 0, 0, 0, 2, 97, 1, 97, 2, 97, 3], t);
    // A tail that is a list is part of the list, as in the BEAM.
    decodes_to(
        &[131, 108, 0, 0, 0, 1, 97, 1, 108, 0, 0, 0, 1, 97, 2, 106],
        ints(&[1, 2]),
        &[131, 107, 0, 2, 1, 2],
    );
    decodes_to(
        &[131, 108, 0, 0, 0, 1, 97, 1, 107, 0, 1, 2],
        ints(&[1, 2]),
        &[131, 107, 0, 2, 1, 2],
    );
    decodes_to(
        &[131, 108, 0, 0, 0, 1, 97, 1, 108, 0, 0, 0, 1, 97, 2, 97, 3],
        Term::ImproperList(vec![Term::Int(1), Term::Int(2)], Box::new(Term::Int(3))),
        &[131, 108, 0, 0, 0, 2, 97, 1, 97, 2, 97, 3],
    );
    // A LIST_EXT of length zero is its tail.
    decodes_to(&[131, 108, 0, 0, 0, 0, 97, 1], Term::Int(1), &[131, 97, 1]);
    decodes_to(&[131, 108, 0, 0, 0, 0, 106], Term::NIL, &[131, 106]);
    assert_eq!(
        encode_err(&Term::ImproperList(vec![], Box::new(Term::Int(1)))),
        EncodeError::EmptyImproperHead
    );
    assert_eq!(
        encode_err(&Term::ImproperList(vec![Term::Int(1)], Box::new(Term::NIL))),
        EncodeError::ListTail
    );
    let nested = Term::ImproperList(vec![Term::Int(1)], Box::new(Term::Int(2)));
    assert_eq!(
        encode_err(&Term::ImproperList(vec![Term::Int(1)], Box::new(nested))),
        EncodeError::ListTail
    );
}

/// The `{[alias | Mref], yes}` payload of protocol.md appendix A.
#[test]
fn gen_call_reply_with_alias_tag() {
    let mref = Reference::new(node("app@127.0.0.1"), 0x6600_aabb, &[1, 2, 3]).unwrap();
    let t = Term::tuple(vec![
        Term::ImproperList(vec![Term::atom("alias")], Box::new(Term::reference(mref))),
        Term::atom("yes"),
    ]);
    let mut bytes = vec![131, 104, 2, 108, 0, 0, 0, 1, 119, 5];
    bytes.extend_from_slice(b"alias");
    bytes.extend_from_slice(&[90, 0, 3, 119, 13]);
    bytes.extend_from_slice(b"app@127.0.0.1");
    bytes.extend_from_slice(&[
        0x66, 0, 0xaa, 0xbb, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 119, 3,
    ]);
    bytes.extend_from_slice(b"yes");
    both(&bytes, t);
}

#[test]
fn maps() {
    both(&[131, 116, 0, 0, 0, 0], Term::Map(vec![]));
    // #{a => 1, <<"b">> => [2]} as written by OTP 25 with minor_version 2.
    both(
        &[
            131, 116, 0, 0, 0, 2, 119, 1, 97, 97, 1, 109, 0, 0, 0, 1, 98, 107, 0, 1, 2,
        ],
        Term::Map(vec![
            (Term::atom("a"), Term::Int(1)),
            (Term::binary(&b"b"[..]), ints(&[2])),
        ]),
    );
    // The stored order is kept both ways.
    let reversed = Term::Map(vec![(Term::Int(2), Term::NIL), (Term::Int(1), Term::NIL)]);
    both(&[131, 116, 0, 0, 0, 2, 97, 2, 106, 97, 1, 106], reversed);
}

#[test]
fn duplicate_map_keys() {
    assert_eq!(
        dec(&[131, 116, 0, 0, 0, 2, 97, 1, 97, 1, 97, 1, 97, 2]),
        Err(DecodeError::DuplicateMapKey { offset: 1 })
    );
    // Same integer, different encodings.
    assert_eq!(
        dec(&[131, 116, 0, 0, 0, 2, 97, 1, 106, 110, 1, 0, 1, 106]),
        Err(DecodeError::DuplicateMapKey { offset: 1 })
    );
    // Same list, STRING_EXT and LIST_EXT.
    assert_eq!(
        dec(&[
            131, 116, 0, 0, 0, 2, 107, 0, 1, 5, 106, 108, 0, 0, 0, 1, 97, 5, 106, 106
        ]),
        Err(DecodeError::DuplicateMapKey { offset: 1 })
    );
    // Maps as keys are equal whatever their pair order.
    let inner_ab = [116, 0, 0, 0, 2, 97, 1, 106, 97, 2, 106];
    let inner_ba = [116, 0, 0, 0, 2, 97, 2, 106, 97, 1, 106];
    let outer = [
        &[131, 116, 0, 0, 0, 2][..],
        &inner_ab,
        &[106],
        &inner_ba,
        &[106],
    ]
    .concat();
    assert_eq!(dec(&outer), Err(DecodeError::DuplicateMapKey { offset: 1 }));
    // Larger maps go through the hash set.
    let mut many = vec![131, 116, 0, 0, 0, 40];
    for i in 0..40u8 {
        many.extend_from_slice(&[97, if i == 39 { 3 } else { i }, 106]);
    }
    assert_eq!(dec(&many), Err(DecodeError::DuplicateMapKey { offset: 1 }));
    many[6 + 39 * 3 + 1] = 200;
    assert!(matches!(dec(&many), Ok(Term::Map(pairs)) if pairs.len() == 40));
    // 1 and 1.0 are different keys; 0.0 and -0.0 too (as in OTP 27+).
    assert!(
        dec(&[
            131, 116, 0, 0, 0, 2, 97, 1, 106, 70, 63, 240, 0, 0, 0, 0, 0, 0, 106
        ])
        .is_ok()
    );
    assert!(
        dec(&[
            131, 116, 0, 0, 0, 2, 70, 0, 0, 0, 0, 0, 0, 0, 0, 106, 70, 128, 0, 0, 0, 0, 0, 0, 0,
            106
        ])
        .is_ok()
    );
    let dup = Term::Map(vec![(Term::Int(1), Term::NIL), (Term::Int(1), Term::NIL)]);
    assert_eq!(encode_err(&dup), EncodeError::DuplicateMapKey);
}

// ---- binaries ------------------------------------------------------------------------------

#[test]
fn binaries_are_zero_copy() {
    both(&[131, 109, 0, 0, 0, 0], Term::binary(&b""[..]));
    both(
        &[131, 109, 0, 0, 0, 3, 1, 2, 3],
        Term::binary(&[1u8, 2, 3][..]),
    );
    let buf = Bytes::from(vec![131, 104, 1, 109, 0, 0, 0, 3, 1, 2, 3]);
    let t = decode(&buf).unwrap();
    let bin = t.as_tuple().unwrap()[0].as_binary().unwrap();
    assert_eq!(
        bin.as_ptr(),
        buf[8..].as_ptr(),
        "the binary points into the received buffer"
    );
}

#[test]
fn bitstrings() {
    let one_bit = Term::Bits {
        data: Bytes::from_static(&[128]),
        last_bits: 1,
    };
    both(&[131, 77, 0, 0, 0, 1, 1, 128], one_bit.clone());
    both(
        &[131, 77, 0, 0, 0, 2, 7, 1, 254],
        Term::Bits {
            data: Bytes::from_static(&[1, 254]),
            last_bits: 7,
        },
    );
    // Unused bits are cleared, as by the BEAM.
    decodes_to(
        &[131, 77, 0, 0, 0, 1, 1, 255],
        one_bit,
        &[131, 77, 0, 0, 0, 1, 1, 128],
    );
    assert_eq!(
        enc(&Term::Bits {
            data: Bytes::from_static(&[255]),
            last_bits: 3
        }),
        [131, 77, 0, 0, 0, 1, 3, 224]
    );
    // 8 bits are a whole-byte binary; an empty one is refused, as OTP 27+ refuse it.
    decodes_to(
        &[131, 77, 0, 0, 0, 1, 8, 255],
        Term::binary(&[255u8][..]),
        &[131, 109, 0, 0, 0, 1, 255],
    );
    for (len, bits) in [(1u32, 0u8), (1, 9), (1, 255), (0, 0), (0, 1), (0, 8)] {
        let mut bytes = vec![131, 77];
        bytes.extend_from_slice(&len.to_be_bytes());
        bytes.push(bits);
        bytes.extend(std::iter::repeat_n(0, len as usize));
        assert_eq!(
            dec(&bytes),
            Err(DecodeError::BadBitCount {
                offset: 1,
                len,
                bits
            })
        );
    }
    for last_bits in [0, 8, 9] {
        let t = Term::Bits {
            data: Bytes::from_static(&[1]),
            last_bits,
        };
        assert_eq!(encode_err(&t), EncodeError::BadBitCount { last_bits });
    }
    assert_eq!(
        encode_err(&Term::Bits {
            data: Bytes::new(),
            last_bits: 3
        }),
        EncodeError::EmptyBits
    );
}

// ---- pids, ports, references ---------------------------------------------------------------

fn with_node(tag: u8, name: &str, rest: &[u8]) -> Vec<u8> {
    let mut bytes = vec![131, tag, 119, name.len() as u8];
    bytes.extend_from_slice(name.as_bytes());
    bytes.extend_from_slice(rest);
    bytes
}

#[test]
fn pids() {
    // Appendix A of protocol.md.
    let bytes = with_node(
        88,
        "rust@127.0.0.1",
        &[0, 0, 0, 1, 0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78],
    );
    both(&bytes, Term::Pid(pid("rust@127.0.0.1", 1, 0, 0x1234_5678)));
    both(
        &with_node(88, "a", &[255; 12]),
        Term::Pid(pid("a", u32::MAX, u32::MAX, u32::MAX)),
    );
    decodes_to(
        &with_node(103, "a", &[0, 0, 0, 1, 0, 0, 0, 2, 3]),
        Term::Pid(pid("a", 1, 2, 3)),
        &with_node(88, "a", &[0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3]),
    );
    decodes_to(
        &[131, 88, 100, 0, 1, b'a', 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3],
        Term::Pid(pid("a", 1, 2, 3)),
        &with_node(88, "a", &[0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3]),
    );
    // The 8-bit creation of the old tags is a 2-bit value for the BEAM.
    assert_eq!(
        dec(&with_node(103, "a", &[0, 0, 0, 1, 0, 0, 0, 2, 4])),
        Err(DecodeError::BadCreation {
            offset: 13,
            creation: 4
        })
    );
    assert_eq!(
        dec(&with_node(102, "a", &[0, 0, 0, 1, 101])),
        Err(DecodeError::BadCreation {
            offset: 9,
            creation: 101
        })
    );
    assert_eq!(
        dec(&[131, 88, 97, 1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0]),
        Err(DecodeError::NotAnAtom { offset: 2, tag: 97 })
    );
}

#[test]
fn ports() {
    let port = |id, creation| {
        Term::Port(Box::new(Port {
            node: node("a"),
            id,
            creation,
        }))
    };
    // Like OTP 27+: every port as V4_PORT_EXT; NEW_PORT_EXT (OTP 25) still decodes.
    decodes_to(
        &with_node(89, "a", &[0, 0, 0, 5, 0, 0, 0, 1]),
        port(5, 1),
        &with_node(120, "a", &[0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 1]),
    );
    both(
        &with_node(120, "a", &[0, 0, 0, 0, 15, 255, 255, 255, 0, 0, 0, 1]),
        port((1 << 28) - 1, 1),
    );
    both(
        &with_node(120, "a", &[0, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 1]),
        port(1 << 28, 1),
    );
    decodes_to(
        &with_node(89, "a", &[255, 255, 255, 255, 0, 0, 0, 1]),
        port(u32::MAX.into(), 1),
        &with_node(120, "a", &[0, 0, 0, 0, 255, 255, 255, 255, 0, 0, 0, 1]),
    );
    both(
        &with_node(120, "a", &[0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]),
        port(1 << 32, 1),
    );
    both(&with_node(120, "a", &[255; 12]), port(u64::MAX, u32::MAX));
    both(
        &with_node(120, "a", &[0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 1]),
        port(5, 1),
    );
    decodes_to(
        &with_node(102, "a", &[0, 0, 0, 7, 2]),
        port(7, 2),
        &with_node(120, "a", &[0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 2]),
    );
}

#[test]
fn references() {
    let r = |words: &[u32], creation| {
        Term::reference(Reference::new(node("a"), creation, words).unwrap())
    };
    both(
        &with_node(90, "a", &[0, 0, 0, 9, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3])
            .into_iter()
            .enumerate()
            .flat_map(|(i, b)| if i == 2 { vec![0, 3, b] } else { vec![b] })
            .collect::<Vec<u8>>(),
        r(&[1, 2, 3], 9),
    );
    let five = [
        &[131, 90, 0, 5, 119, 1, b'a', 0, 0, 0, 9][..],
        &[0, 0, 0, 1].repeat(5),
    ]
    .concat();
    both(&five, r(&[1; 5], 9));
    // NEW_REFERENCE_EXT and REFERENCE_EXT (8-bit creation) become NEWER_REFERENCE_EXT.
    decodes_to(
        &[131, 114, 0, 2, 119, 1, b'a', 2, 0, 0, 0, 7, 0, 0, 0, 8],
        r(&[7, 8], 2),
        &[
            131, 90, 0, 2, 119, 1, b'a', 0, 0, 0, 2, 0, 0, 0, 7, 0, 0, 0, 8,
        ],
    );
    decodes_to(
        &[131, 101, 119, 1, b'a', 0, 0, 0, 7, 2],
        r(&[7], 2),
        &[131, 90, 0, 1, 119, 1, b'a', 0, 0, 0, 2, 0, 0, 0, 7],
    );
    for (tag, words) in [(90u8, 0u16), (90, 6), (114, 0), (114, 6)] {
        let mut bytes = vec![131, tag, 0, words as u8, 119, 1, b'a', 0, 0, 0, 1];
        bytes.extend(std::iter::repeat_n(0, 4 * usize::from(words)));
        assert_eq!(
            dec(&bytes),
            Err(DecodeError::BadReferenceLength { offset: 1, words })
        );
    }
}

// ---- funs ----------------------------------------------------------------------------------

/// `fun() -> ok end` from an `erl -eval` on OTP 25 (an `erl_eval` fun with one free variable).
const EVAL_FUN: [u8; 138] = [
    131, 112, 0, 0, 0, 136, 0, 6, 83, 97, 170, 70, 21, 144, 209, 189, 241, 235, 98, 209, 166, 235,
    8, 0, 0, 0, 43, 0, 0, 0, 1, 119, 8, 101, 114, 108, 95, 101, 118, 97, 108, 97, 43, 98, 0, 50,
    155, 13, 88, 119, 13, 110, 111, 110, 111, 100, 101, 64, 110, 111, 104, 111, 115, 116, 0, 0, 0,
    9, 0, 0, 0, 0, 0, 0, 0, 0, 104, 6, 97, 4, 106, 119, 4, 110, 111, 110, 101, 119, 4, 110, 111,
    110, 101, 116, 0, 0, 0, 0, 108, 0, 0, 0, 1, 104, 5, 119, 6, 99, 108, 97, 117, 115, 101, 97, 4,
    106, 106, 108, 0, 0, 0, 1, 104, 3, 119, 4, 97, 116, 111, 109, 97, 4, 119, 2, 111, 107, 106,
    106,
];

#[test]
fn local_funs() {
    let t = dec(&EVAL_FUN).unwrap();
    let Term::Fun(fun) = &t else { panic!("{t:?}") };
    assert_eq!(
        (fun.arity, fun.index, fun.module.as_str()),
        (0, 43, "erl_eval")
    );
    assert_eq!((fun.old_index, fun.old_uniq), (43, 3316493));
    assert_eq!(fun.pid, pid("nonode@nohost", 9, 0, 0));
    assert_eq!(fun.free_vars.len(), 1);
    assert_eq!(enc(&t), EVAL_FUN, "Size is recomputed to the BEAM's value");
    // The BEAM ignores the Size field; so do we.
    let mut wrong_size = EVAL_FUN;
    wrong_size[5] = 0;
    assert_eq!(dec(&wrong_size), Ok(t));
    let mut no_pid = EVAL_FUN;
    no_pid[48] = 97;
    assert_eq!(
        dec(&no_pid),
        Err(DecodeError::NotAPid {
            offset: 48,
            tag: 97
        })
    );
}

#[test]
fn exports() {
    let map2 = Term::Export(Box::new(Export {
        module: node("lists"),
        function: node("map"),
        arity: 2,
    }));
    both(
        &[
            131, 113, 119, 5, b'l', b'i', b's', b't', b's', 119, 3, b'm', b'a', b'p', 97, 2,
        ],
        map2.clone(),
    );
    decodes_to(
        &[
            131, 113, 100, 0, 5, b'l', b'i', b's', b't', b's', 100, 0, 3, b'm', b'a', b'p', 98, 0,
            0, 0, 2,
        ],
        map2,
        &[
            131, 113, 119, 5, b'l', b'i', b's', b't', b's', 119, 3, b'm', b'a', b'p', 97, 2,
        ],
    );
    assert_eq!(
        dec(&[131, 113, 119, 1, b'a', 119, 1, b'b', 98, 0, 0, 1, 0]),
        Err(DecodeError::IntegerOutOfRange { offset: 8 })
    );
    assert_eq!(
        dec(&[131, 113, 119, 1, b'a', 119, 1, b'b', 119, 1, b'c']),
        Err(DecodeError::NotAnInteger {
            offset: 8,
            tag: 119
        })
    );
    assert_eq!(
        dec(&[131, 113, 97, 1, 119, 1, b'b', 97, 1]),
        Err(DecodeError::NotAnAtom { offset: 2, tag: 97 })
    );
}

// ---- framing: version byte, bodies, trailing bytes -------------------------------------------

#[test]
fn versions_bodies_and_sequences() {
    assert_eq!(
        dec(&[130, 97, 1]),
        Err(DecodeError::BadVersion {
            offset: 0,
            found: 130
        })
    );
    assert_eq!(dec(&[]), Err(DecodeError::UnexpectedEnd { offset: 0 }));
    assert_eq!(
        dec(&[131, 97, 1, 0]),
        Err(DecodeError::TrailingBytes { offset: 3 })
    );
    assert_eq!(
        dec(&[131, 80, 0, 0, 0, 1, 120]),
        Err(DecodeError::Compressed { offset: 1 })
    );
    assert_eq!(
        dec(&[131, 121, 0]),
        Err(DecodeError::LocalFormat { offset: 1 })
    );
    for tag in [0u8, 68, 69, 75, 117, 122, 131, 255] {
        assert_eq!(
            dec(&[131, tag, 0]),
            Err(DecodeError::UnknownTag { offset: 1, tag })
        );
    }
    // Pass-through messages: 112, control term, payload term, each with its 131.
    let buf = Bytes::from_static(&[112, 131, 104, 1, 97, 6, 131, 119, 2, b'h', b'i']);
    let mut d = Decoder::new(&buf, 1);
    assert_eq!(d.term(), Ok(Term::tuple(vec![Term::Int(6)])));
    assert_eq!(d.position(), 6);
    assert!(!d.is_at_end());
    assert_eq!(d.term(), Ok(Term::atom("hi")));
    assert!(d.is_at_end());
    // After a distribution header, terms come without 131.
    let buf = Bytes::from_static(&[104, 1, 97, 6, 119, 2, b'h', b'i']);
    let mut d = Decoder::new(&buf, 0);
    assert_eq!(d.term_body(), Ok(Term::tuple(vec![Term::Int(6)])));
    assert_eq!(d.term_body(), Ok(Term::atom("hi")));
    let mut out = BytesMut::new();
    encode_body(&Term::tuple(vec![Term::Int(6)]), &mut out).unwrap();
    encode_body(&Term::atom("hi"), &mut out).unwrap();
    assert_eq!(&out[..], &buf[..]);
}

// ---- malformed input -----------------------------------------------------------------------

fn sample_encodings() -> Vec<Vec<u8>> {
    let mref = Reference::new(node("app@127.0.0.1"), 7, &[1, 2, 3]).unwrap();
    let terms = [
        Term::tuple(vec![
            Term::Int(2),
            Term::atom(""),
            Term::Pid(pid("app@127.0.0.1", 100, 0, 7)),
        ]),
        Term::list(vec![
            Term::Int(-1),
            Term::Float(2.5),
            Term::Int(1 << 40),
            big(true, &[1; 20]),
        ]),
        Term::ImproperList(vec![Term::atom("alias")], Box::new(Term::reference(mref))),
        Term::Map(vec![
            (Term::atom("k"), Term::binary(&b"value"[..])),
            (Term::Int(1), ints(&[1, 2])),
        ]),
        Term::Bits {
            data: Bytes::from_static(&[1, 2, 128]),
            last_bits: 1,
        },
        Term::Port(Box::new(Port {
            node: node("n@h"),
            id: 1 << 40,
            creation: 3,
        })),
        Term::Export(Box::new(Export {
            module: node("m"),
            function: node("f"),
            arity: 1,
        })),
    ];
    let mut all: Vec<Vec<u8>> = terms.iter().map(enc).collect();
    all.push(EVAL_FUN.to_vec());
    all.push(float_ext("1.5"));
    all.push(vec![131, 100, 0, 2, 0xe9, b'A']);
    all
}

#[test]
fn every_truncation_is_a_typed_error() {
    for bytes in sample_encodings() {
        assert!(dec(&bytes).is_ok(), "{bytes:?}");
        for cut in 0..bytes.len() {
            let err = dec(&bytes[..cut]).expect_err("truncated");
            assert!(
                matches!(
                    err,
                    DecodeError::UnexpectedEnd { .. } | DecodeError::CountExceedsInput { .. }
                ),
                "cut at {cut} of {bytes:?}: {err:?}"
            );
        }
    }
}

#[test]
fn every_single_byte_change_is_handled() {
    for bytes in sample_encodings() {
        for i in 0..bytes.len() {
            let mut changed = bytes.clone();
            for b in 0..=255u8 {
                changed[i] = b;
                let _ = dec(&changed);
            }
        }
    }
}

#[test]
fn oversized_lengths() {
    let max = [255u8, 255, 255, 255];
    for tag in [104u8, 105, 107, 108, 109, 111, 116] {
        let len_bytes: &[u8] = match tag {
            104 => &max[..1],
            107 => &max[..2],
            _ => &max,
        };
        let bytes = [&[131, tag][..], len_bytes, &[97, 1, 106]].concat();
        let err = dec(&bytes).expect_err("oversized");
        assert!(
            matches!(
                err,
                DecodeError::CountExceedsInput { .. } | DecodeError::UnexpectedEnd { .. }
            ),
            "tag {tag}: {err:?}"
        );
    }
}

// ---- bombs ---------------------------------------------------------------------------------

#[test]
fn bombs_are_typed_errors() {
    assert_eq!(
        dec(&[131, 108, 255, 255, 255, 255]),
        Err(DecodeError::CountExceedsInput {
            offset: 1,
            declared: u32::MAX,
            available: 0
        })
    );
    assert_eq!(
        dec(&[131, 116, 255, 255, 255, 255, 97, 1]),
        Err(DecodeError::CountExceedsInput {
            offset: 1,
            declared: u32::MAX,
            available: 2
        })
    );
    assert_eq!(
        dec(&[131, 116, 0, 0, 0, 2, 97, 1, 97]),
        Err(DecodeError::CountExceedsInput {
            offset: 1,
            declared: 2,
            available: 3
        })
    );
    assert_eq!(
        dec(&[131, 109, 255, 255, 255, 255, 1, 2]),
        Err(DecodeError::UnexpectedEnd { offset: 6 })
    );
    assert_eq!(
        dec(&[131, 105, 255, 255, 255, 255]),
        Err(DecodeError::CountExceedsInput {
            offset: 1,
            declared: u32::MAX,
            available: 0
        })
    );
    assert_eq!(
        dec(&[131, 111, 255, 255, 255, 255, 0]),
        Err(DecodeError::UnexpectedEnd { offset: 7 })
    );
    // Nested declared counts are owed together: an inner list cannot claim the outer's bytes.
    // The outer list is owed 2 bytes (one element, one tail): 6 of the inner's 8 remain.
    assert_eq!(
        dec(&[
            131, 108, 0, 0, 0, 2, 108, 0, 0, 0, 6, 106, 106, 106, 106, 106, 106, 106, 106
        ]),
        Err(DecodeError::CountExceedsInput {
            offset: 6,
            declared: 6,
            available: 6
        })
    );
}

fn deep(open: &[u8], leaf: &[u8], close: &[u8], levels: usize) -> Vec<u8> {
    let mut bytes = vec![131];
    for _ in 0..levels {
        bytes.extend_from_slice(open);
    }
    bytes.extend_from_slice(leaf);
    for _ in 0..levels {
        bytes.extend_from_slice(close);
    }
    bytes
}

#[test]
fn nesting_is_limited() {
    let shapes: [(&[u8], &[u8]); 4] = [
        (&[108, 0, 0, 0, 1], &[106]),     // [[[...]]]
        (&[104, 1], &[]),                 // {{{...}}}
        (&[116, 0, 0, 0, 1, 106], &[]),   // #{[] => #{[] => ...}}
        (&[108, 0, 0, 0, 1, 97, 1], &[]), // [1|[1|...]]: a tail chain, flattened
    ];
    for (open, close) in shapes {
        let leaf = [98, 255, 255, 255, 255];
        let at_limit = deep(open, &leaf, close, MAX_DEPTH);
        let over = deep(open, &leaf, close, MAX_DEPTH + 1);
        let bomb = deep(open, &leaf, close, 100_000);
        if open == [108, 0, 0, 0, 1, 97, 1] {
            // Chained tails do not nest: 100 000 of them make one improper list.
            let t = dec(&bomb).unwrap();
            let Term::ImproperList(head, _) = &t else {
                panic!()
            };
            assert_eq!(head.len(), 100_000);
            continue;
        }
        assert!(dec(&at_limit).is_ok(), "{open:?} at the limit");
        assert!(
            matches!(dec(&over), Err(DecodeError::TooDeep { .. })),
            "{open:?} over"
        );
        assert!(
            matches!(dec(&bomb), Err(DecodeError::TooDeep { .. })),
            "{open:?} bomb"
        );
        let t = dec(&at_limit).unwrap();
        assert!(enc(&t) == at_limit, "{open:?} re-encodes");
    }
    // Improper tails nest: [1|{[1|{...}]}].
    let bomb = deep(&[108, 0, 0, 0, 1, 97, 1, 104, 1], &[97, 1], &[], 100_000);
    assert!(matches!(dec(&bomb), Err(DecodeError::TooDeep { .. })));
    // Funs nest through their free variables.
    let fun_open: Vec<u8> = EVAL_FUN[1..76].to_vec();
    let bomb = deep(&fun_open, &[97, 1], &[], 100_000);
    assert!(matches!(dec(&bomb), Err(DecodeError::TooDeep { .. })));
    // The encoder refuses what the decoder would refuse.
    let mut t = Term::Int(1);
    for _ in 0..MAX_DEPTH {
        t = Term::tuple(vec![t]);
    }
    assert!(encode(&t, &mut BytesMut::new()).is_ok());
    let t = Term::tuple(vec![t]);
    assert_eq!(encode_err(&t), EncodeError::TooDeep);
    // Strings are leaves: one more level than containers is fine.
    let mut t = ints(&[1, 2]);
    for _ in 0..MAX_DEPTH {
        t = Term::list(vec![t]);
    }
    assert!(dec(&enc(&t)) == Ok(t), "deep strings round-trip");
}

// ---- Display / errors ----------------------------------------------------------------------

#[test]
fn errors_display_their_place() {
    let err = dec(&[131, 108, 255, 255, 255, 255]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "byte 1: declared count 4294967295 does not fit in the 0 bytes left"
    );
    assert_eq!(
        EncodeError::TooDeep.to_string(),
        format!("nesting deeper than {MAX_DEPTH} levels")
    );
    let _ = term::tag::NEW_PID_EXT;
}

// ---- properties ----------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn encode_then_decode_is_identity(t in arb_term()) {
        let bytes = enc(&t);
        let back = dec(&bytes).unwrap();
        prop_assert_eq!(&back, &t);
        prop_assert!(back.exact_eq(&t));
        // Canonical: the decoded term encodes to the same bytes.
        prop_assert_eq!(enc(&back), bytes);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let buf = Bytes::from(bytes);
        let cache = [Atom::new("a"), Atom::new("b")];
        let _ = decode(&buf);
        let _ = Decoder::new(&buf, 0).term_body();
        let _ = Decoder::new(&buf, 0).with_atom_cache(&cache).term_body();
    }

    #[test]
    fn mutated_encodings_never_panic(
        t in arb_term(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut bytes = enc(&t);
        for (at, b) in edits {
            let i = at.index(bytes.len());
            bytes[i] = b;
        }
        if let Ok(back) = dec(&bytes) {
            // Whatever is accepted encodes again.
            let _ = encode(&back, &mut BytesMut::new());
        }
    }
}
