//! The bridge between `beamlink::term::Term` and `eetf::Term` (feature `eetf`): every term
//! kind both ways, agreement with each crate's own codec, and a typed error for each value
//! one side cannot hold.

mod support;

use beamlink::term::{
    self, Atom, BigInt, EetfError, Export, Fun, MAX_DEPTH, Pid, Port, Reference, Term,
};
use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use std::io::Cursor;

fn pid() -> Pid {
    Pid {
        node: Atom::new("shop@127.0.0.1"),
        id: 81,
        serial: 2,
        creation: 1_733_000_000,
    }
}

/// One term of every kind the codec has, nested in the containers.
fn every_kind() -> Vec<Term> {
    let node = Atom::new("shop@127.0.0.1");
    let leaves = vec![
        Term::Int(7),
        Term::Int(-70_000),
        Term::Int(1 << 40),
        Term::Int(i64::MIN),
        Term::Big(BigInt {
            negative: true,
            magnitude: vec![1, 2, 3, 4, 5, 6, 7, 8, 9],
        }),
        Term::Float(-2.5),
        Term::atom("ok"),
        Term::atom("Elixir.MyApp.User"),
        Term::atom("héllo"),
        Term::binary(&b"bytes"[..]),
        Term::binary(Bytes::new()),
        Term::Bits {
            data: Bytes::from_static(&[0xab, 0xc0]),
            last_bits: 3,
        },
        Term::Pid(pid()),
        Term::Port(Box::new(Port {
            node: node.clone(),
            id: 1 << 40,
            creation: 9,
        })),
        Term::reference(Reference::new(node.clone(), 9, &[1, 2, 3, 4, 5]).unwrap()),
        Term::Export(Box::new(Export {
            module: Atom::new("lists"),
            function: Atom::new("map"),
            arity: 2,
        })),
        Term::Fun(Box::new(Fun {
            arity: 1,
            uniq: [7; 16],
            index: 3,
            module: Atom::new("erl_eval"),
            old_index: 3,
            old_uniq: -12,
            pid: pid(),
            free_vars: vec![Term::atom("captured"), Term::Float(1.0)],
        })),
        Term::NIL,
    ];
    let mut all = leaves.clone();
    all.push(Term::Tuple(leaves.clone()));
    all.push(Term::Tuple(vec![]));
    all.push(Term::List(leaves.clone()));
    all.push(Term::ImproperList(
        vec![Term::atom("a"), Term::Pid(pid())],
        Box::new(Term::atom("tail")),
    ));
    all.push(Term::Map(
        leaves
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), Term::Int(i as i64)))
            .collect(),
    ));
    all.push(Term::Map(vec![(
        Term::atom("nested"),
        Term::Map(vec![(Term::binary(&b"k"[..]), Term::List(leaves))]),
    )]));
    all
}

fn ours(t: &Term) -> Vec<u8> {
    let mut out = BytesMut::new();
    term::encode(t, &mut out).unwrap();
    out.to_vec()
}

fn theirs(t: &eetf::Term) -> Vec<u8> {
    let mut out = Vec::new();
    t.encode(&mut out).unwrap();
    out
}

#[test]
fn every_kind_converts_both_ways() {
    for t in every_kind() {
        let converted = eetf::Term::try_from(&t).unwrap_or_else(|e| panic!("{t}: {e}"));
        let back = Term::try_from(&converted).unwrap();
        assert!(back.exact_eq(&t), "{t} came back as {back}");
        // By value too.
        assert!(
            Term::try_from(eetf::Term::try_from(t.clone()).unwrap())
                .unwrap()
                .exact_eq(&t)
        );
    }
}

#[test]
fn conversions_agree_with_each_codec() {
    for t in every_kind() {
        let converted = eetf::Term::try_from(&t).unwrap();
        // eetf decodes our bytes to what the bridge makes of the term ...
        let decoded = eetf::Term::decode(Cursor::new(ours(&t)))
            .unwrap_or_else(|e| panic!("eetf cannot decode our {t}: {e}"));
        assert_eq!(decoded, converted, "{t}");
        // ... and we decode eetf's bytes to the term.
        let back = term::decode(&Bytes::from(theirs(&converted))).unwrap();
        assert!(back.exact_eq(&t), "{t}: eetf's bytes decode to {back}");
    }
}

#[test]
fn eetf_only_shapes_are_normalised() {
    use eetf::{BigInteger, ByteList, FixInteger, ImproperList, List};
    // A bignum that fits an i64 is an Int; a byte list is a list.
    assert_eq!(
        Term::try_from(eetf::Term::from(BigInteger::from(5i64))).unwrap(),
        Term::Int(5)
    );
    assert_eq!(
        Term::try_from(eetf::Term::from(ByteList::from(vec![1, 2]))).unwrap(),
        Term::list([Term::Int(1), Term::Int(2)])
    );
    // [1 | [2]] is [1, 2]; [1 | [2 | x]] is [1, 2 | x]; [ | x] is x.
    let one = || eetf::Term::from(FixInteger::from(1));
    let two = || eetf::Term::from(FixInteger::from(2));
    let x = || eetf::Term::from(eetf::Atom::from("x"));
    let nested = ImproperList::from((vec![two()], x()));
    assert_eq!(
        Term::try_from(eetf::Term::from(ImproperList::from((
            vec![one()],
            eetf::Term::from(List::from(vec![two()]))
        ))))
        .unwrap(),
        Term::list([Term::Int(1), Term::Int(2)])
    );
    assert_eq!(
        Term::try_from(eetf::Term::from(ImproperList::from((
            vec![one()],
            eetf::Term::from(nested)
        ))))
        .unwrap(),
        Term::ImproperList(vec![Term::Int(1), Term::Int(2)], Box::new(Term::atom("x")))
    );
    assert_eq!(
        Term::try_from(eetf::Term::from(ImproperList::from((vec![], x())))).unwrap(),
        Term::atom("x")
    );
    // A bitstring with 8 bits in its last byte is a binary.
    assert_eq!(
        Term::try_from(eetf::Term::from(eetf::BitBinary::from((vec![1, 2], 8)))).unwrap(),
        Term::binary(&[1u8, 2][..])
    );
}

#[test]
fn what_one_side_cannot_hold_is_a_typed_error() {
    let long = "a".repeat(256);
    let eetf_atom = |name: &str| eetf::Term::from(eetf::Atom::from(name));
    let fix = |i: i32| eetf::Term::from(eetf::FixInteger::from(i));

    // beamlink -> eetf
    let cases: Vec<(Term, EetfError)> = vec![
        (
            Term::Atom(Atom::new(&long)),
            EetfError::AtomTooLong { chars: 256 },
        ),
        (Term::Float(f64::NAN), EetfError::FloatNotFinite),
        (
            Term::Bits {
                data: Bytes::from_static(&[1]),
                last_bits: 8,
            },
            EetfError::BadBitCount { bits: 8 },
        ),
        (
            Term::Bits {
                data: Bytes::new(),
                last_bits: 3,
            },
            EetfError::BadBitCount { bits: 3 },
        ),
        (
            Term::Map(vec![(Term::Int(1), Term::NIL), (Term::Int(1), Term::NIL)]),
            EetfError::DuplicateMapKey,
        ),
        (
            Term::Fun(Box::new(Fun {
                arity: 0,
                uniq: [0; 16],
                index: 0,
                module: Atom::new("m"),
                old_index: 0,
                old_uniq: 1 << 40,
                pid: pid(),
                free_vars: vec![],
            })),
            EetfError::FunFieldOutOfRange { field: "old_uniq" },
        ),
        (
            Term::tuple([Term::list([Term::Float(f64::INFINITY)])]),
            EetfError::FloatNotFinite,
        ),
    ];
    for (t, expected) in cases {
        assert_eq!(eetf::Term::try_from(&t), Err(expected), "{t:?}");
    }

    // eetf -> beamlink
    let cases: Vec<(eetf::Term, EetfError)> = vec![
        (eetf_atom(&long), EetfError::AtomTooLong { chars: 256 }),
        (
            eetf::Term::from(eetf::Float { value: f64::NAN }),
            EetfError::FloatNotFinite,
        ),
        (
            eetf::Term::from(eetf::BitBinary::from((vec![1], 0))),
            EetfError::BadBitCount { bits: 0 },
        ),
        (
            eetf::Term::from(eetf::BitBinary::from((vec![1], 9))),
            EetfError::BadBitCount { bits: 9 },
        ),
        (
            eetf::Term::from(eetf::Reference::from(("a@b", vec![]))),
            EetfError::ReferenceLength { words: 0 },
        ),
        (
            eetf::Term::from(eetf::Reference::from(("a@b", vec![1; 6]))),
            EetfError::ReferenceLength { words: 6 },
        ),
        (
            eetf::Term::InternalFun(Box::new(eetf::InternalFun::Old {
                module: eetf::Atom::from("m"),
                pid: eetf::Pid::new("a@b", 1, 0, 1),
                free_vars: vec![],
                index: 0,
                uniq: 0,
            })),
            EetfError::OldFun,
        ),
        (
            // Different to eetf, the same integer to the BEAM.
            eetf::Term::from(eetf::Map::from([
                (fix(1), fix(0)),
                (eetf::Term::from(eetf::BigInteger::from(1i64)), fix(0)),
            ])),
            EetfError::DuplicateMapKey,
        ),
    ];
    for (t, expected) in cases {
        assert_eq!(Term::try_from(&t), Err(expected), "{t}");
    }

    // Nesting past the codec's own limit, both ways.
    let mut deep = Term::NIL;
    let mut deep_eetf = eetf::Term::from(eetf::List::nil());
    for _ in 0..=MAX_DEPTH {
        deep = Term::tuple([deep]);
        deep_eetf = eetf::Term::from(eetf::Tuple::from(vec![deep_eetf]));
    }
    assert_eq!(eetf::Term::try_from(&deep), Err(EetfError::TooDeep));
    assert_eq!(Term::try_from(&deep_eetf), Err(EetfError::TooDeep));
}

proptest! {
    #[test]
    fn any_term_comes_back_from_eetf(t in support::arb_term()) {
        let converted = eetf::Term::try_from(&t).unwrap();
        let back = Term::try_from(converted).unwrap();
        prop_assert!(back.exact_eq(&t), "{} came back as {}", t, back);
    }
}
