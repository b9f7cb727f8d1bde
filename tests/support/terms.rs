//! Shared by the term tests: proptest strategies for arbitrary terms and small helpers.

use beamlink::proto::term::{
    self, Atom, BigInt, DecodeError, Export, Fun, Pid, Port, Reference, Term,
};
use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

/// `term_to_binary`-style bytes of `t` (version byte included).
pub fn enc(t: &Term) -> Vec<u8> {
    let mut out = BytesMut::new();
    term::encode(t, &mut out).expect("encodable term");
    out.to_vec()
}

/// Decodes exactly one versioned term.
pub fn dec(bytes: &[u8]) -> Result<Term, DecodeError> {
    term::decode(&Bytes::copy_from_slice(bytes))
}

/// Integers, biased towards the boundaries of the encodings.
pub fn arb_int() -> impl Strategy<Value = i64> {
    prop_oneof![
        Just(0i64),
        Just(255),
        Just(256),
        Just(-1),
        Just(i32::MAX as i64),
        Just(i32::MAX as i64 + 1),
        Just(i32::MIN as i64),
        Just(i32::MIN as i64 - 1),
        Just(i64::MAX),
        Just(i64::MIN),
        -300i64..300,
        any::<i32>().prop_map(i64::from),
        any::<i64>(),
    ]
}

/// Integers that do not fit in an `i64`, normalised as the decoder makes them.
pub fn arb_big() -> impl Strategy<Value = BigInt> {
    (
        any::<bool>(),
        prop::collection::vec(any::<u8>(), 8..40),
        1u8..=255,
    )
        .prop_filter_map("fits i64", |(negative, mut magnitude, top)| {
            magnitude.push(top);
            if magnitude.len() == 9 && magnitude[8] == 0 {
                return None;
            }
            Some(BigInt {
                negative,
                magnitude,
            })
        })
}

pub fn arb_atom() -> impl Strategy<Value = Atom> {
    prop_oneof![
        3 => "[a-z][a-z0-9_@]{0,12}".prop_map(|s| Atom::new(&s)),
        1 => prop::collection::vec(any::<char>(), 0..=255)
            .prop_map(|cs| Atom::from(cs.into_iter().collect::<String>())),
        1 => prop::collection::vec(prop::char::range('\u{80}', '\u{7ff}'), 100..=255)
            .prop_map(|cs| Atom::from(cs.into_iter().collect::<String>())),
    ]
}

pub fn arb_node() -> impl Strategy<Value = Atom> {
    prop_oneof![
        Just(Atom::new("app@127.0.0.1")),
        "[a-z]{1,8}@[a-z]{1,8}".prop_map(|s| Atom::new(&s)),
    ]
}

pub fn arb_pid() -> impl Strategy<Value = Pid> {
    (arb_node(), any::<u32>(), any::<u32>(), 1u32..).prop_map(|(node, id, serial, creation)| Pid {
        node,
        id,
        serial,
        creation,
    })
}

pub fn arb_float() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(0.0),
        Just(-0.0),
        Just(f64::MAX),
        Just(f64::MIN_POSITIVE),
        Just(5e-324),
        any::<f64>().prop_filter("finite", |x| x.is_finite()),
    ]
}

pub fn arb_leaf() -> impl Strategy<Value = Term> {
    prop_oneof![
        4 => arb_int().prop_map(Term::Int),
        1 => arb_big().prop_map(Term::Big),
        2 => arb_float().prop_map(Term::Float),
        3 => arb_atom().prop_map(Term::Atom),
        2 => prop::collection::vec(any::<u8>(), 0..40).prop_map(|b| Term::Binary(b.into())),
        1 => (prop::collection::vec(any::<u8>(), 1..10), 1u8..=7).prop_map(|(mut data, last_bits)| {
            if let Some(last) = data.last_mut() {
                *last &= 0xff << (8 - last_bits);
            }
            Term::Bits { data: data.into(), last_bits }
        }),
        1 => arb_pid().prop_map(Term::Pid),
        1 => (arb_node(), any::<u64>(), 1u32..)
            .prop_map(|(node, id, creation)| Term::Port(Box::new(Port { node, id, creation }))),
        1 => (arb_node(), 1u32.., prop::collection::vec(any::<u32>(), 1..=5)).prop_map(
            |(node, creation, ids)| Term::Ref(Box::new(Reference::new(node, creation, &ids).unwrap()))
        ),
        1 => (arb_atom(), arb_atom(), any::<u8>()).prop_map(|(module, function, arity)| {
            Term::Export(Box::new(Export { module, function, arity }))
        }),
        1 => Just(Term::NIL),
        1 => prop::collection::vec(0i64..=255, 1..20).prop_map(|v| Term::List(v.into_iter().map(Term::Int).collect())),
    ]
}

/// Keys unique under both `==` and `=:=` (OTP 25 also calls `0.0` and `-0.0` the same key).
fn unique_keys(pairs: Vec<(Term, Term)>) -> Vec<(Term, Term)> {
    let mut out: Vec<(Term, Term)> = Vec::with_capacity(pairs.len());
    for (k, v) in pairs {
        if !out.iter().any(|(k2, _)| k2 == &k || k2.exact_eq(&k)) {
            out.push((k, v));
        }
    }
    out
}

/// Any encodable term, nested a few levels.
pub fn arb_term() -> impl Strategy<Value = Term> {
    arb_leaf().prop_recursive(4, 64, 10, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..10).prop_map(Term::Tuple),
            prop::collection::vec(inner.clone(), 0..10).prop_map(Term::List),
            (prop::collection::vec(inner.clone(), 1..6), arb_leaf())
                .prop_filter("tail is a list", |(_, tail)| !matches!(tail, Term::List(_)))
                .prop_map(|(head, tail)| Term::ImproperList(head, Box::new(tail))),
            prop::collection::vec((inner.clone(), inner.clone()), 0..40)
                .prop_map(|pairs| Term::Map(unique_keys(pairs))),
            (
                any::<u8>(),
                any::<[u8; 16]>(),
                any::<u32>(),
                arb_atom(),
                any::<i32>(),
                any::<i32>(),
                arb_pid(),
                prop::collection::vec(inner, 0..4),
            )
                .prop_map(
                    |(arity, uniq, index, module, old_index, old_uniq, pid, free_vars)| {
                        Term::Fun(Box::new(Fun {
                            arity,
                            uniq,
                            index,
                            module,
                            old_index: old_index.into(),
                            old_uniq: old_uniq.into(),
                            pid,
                            free_vars,
                        }))
                    }
                ),
        ]
    })
}
