//! Property tests of the serde mapping: any value of nested structs, enums, options, maps and
//! binaries becomes a term and comes back equal, directly and through the external format
//! bytes, with Elixir's and Erlang's conventions.

use beamlink_proto::term::typed::Options;
use beamlink_proto::term::{self, from_term_with, to_term_with};
use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

#[derive(Serialize, Deserialize, PartialEq, Debug, Clone)]
#[serde(rename = "Elixir.Shop.Order")]
struct Order {
    id: u64,
    customer: Customer,
    lines: Vec<Line>,
    note: Option<String>,
    status: Status,
    #[serde(with = "serde_bytes")]
    receipt: Vec<u8>,
    checksum: Vec<u8>,
    attrs: HashMap<String, Attr>,
    nested: BTreeMap<i32, HashMap<String, Option<Vec<i16>>>>,
    position: (f64, i32, char),
    total_cents: i128,
    gift: Option<Gift>,
    marker: (),
}

#[derive(Serialize, Deserialize, PartialEq, Debug, Clone)]
struct Customer {
    name: String,
    vip: bool,
    age: Option<u8>,
}

#[derive(Serialize, Deserialize, PartialEq, Debug, Clone)]
#[serde(rename = "Elixir.Shop.Line")]
struct Line {
    sku: String,
    qty: u32,
    price: f32,
}

#[derive(Serialize, Deserialize, PartialEq, Debug, Clone)]
struct Gift(String);

#[derive(Serialize, Deserialize, PartialEq, Debug, Clone)]
#[serde(rename_all = "snake_case")]
enum Status {
    Pending,
    Paid(f64),
    Shipped { tracking: String, eta: Option<u32> },
    Split(u8, String),
    Held(Option<Box<Status>>),
}

#[derive(Serialize, Deserialize, PartialEq, Debug, Clone)]
#[serde(rename_all = "snake_case")]
enum Attr {
    Flag(bool),
    Text(String),
    Count(i64),
    Blob(#[serde(with = "serde_bytes")] Vec<u8>),
    Pair(u16, Option<String>),
}

fn finite() -> impl Strategy<Value = f64> {
    prop_oneof![
        proptest::num::f64::NORMAL,
        proptest::num::f64::SUBNORMAL,
        proptest::num::f64::ZERO,
    ]
}

fn status() -> impl Strategy<Value = Status> {
    let leaf = prop_oneof![
        Just(Status::Pending),
        finite().prop_map(Status::Paid),
        (any::<String>(), any::<Option<u32>>())
            .prop_map(|(tracking, eta)| Status::Shipped { tracking, eta }),
        (any::<u8>(), any::<String>()).prop_map(|(n, s)| Status::Split(n, s)),
    ];
    leaf.prop_recursive(3, 8, 1, |inner| {
        proptest::option::of(inner).prop_map(|s| Status::Held(s.map(Box::new)))
    })
}

fn attr() -> impl Strategy<Value = Attr> {
    prop_oneof![
        any::<bool>().prop_map(Attr::Flag),
        any::<String>().prop_map(Attr::Text),
        any::<i64>().prop_map(Attr::Count),
        proptest::collection::vec(any::<u8>(), 0..16).prop_map(Attr::Blob),
        (any::<u16>(), any::<Option<String>>()).prop_map(|(n, s)| Attr::Pair(n, s)),
    ]
}

fn line() -> impl Strategy<Value = Line> {
    (
        any::<String>(),
        any::<u32>(),
        proptest::num::f32::NORMAL | proptest::num::f32::ZERO,
    )
        .prop_map(|(sku, qty, price)| Line { sku, qty, price })
}

prop_compose! {
    fn order()(
        id in any::<u64>(),
        customer in (any::<String>(), any::<bool>(), any::<Option<u8>>())
            .prop_map(|(name, vip, age)| Customer { name, vip, age }),
        lines in proptest::collection::vec(line(), 0..4),
        note in any::<Option<String>>(),
        status in status(),
        receipt in proptest::collection::vec(any::<u8>(), 0..32),
        checksum in proptest::collection::vec(any::<u8>(), 0..8),
        attrs in proptest::collection::hash_map(any::<String>(), attr(), 0..4),
        nested in proptest::collection::btree_map(
            any::<i32>(),
            proptest::collection::hash_map(
                any::<String>(),
                proptest::option::of(proptest::collection::vec(any::<i16>(), 0..4)),
                0..3,
            ),
            0..3,
        ),
        position in (finite(), any::<i32>(), any::<char>()),
        total_cents in any::<i128>(),
        gift in proptest::option::of(any::<String>().prop_map(Gift)),
    ) -> Order {
        Order {
            id, customer, lines, note, status, receipt, checksum, attrs, nested, position,
            total_cents, gift, marker: (),
        }
    }
}

type Scalars = ((i8, u16, i32, u64, i64, u128), String, Vec<bool>);

fn options() -> impl Strategy<Value = Options> {
    prop_oneof![Just(Options::elixir()), Just(Options::erlang())]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn values_come_back_from_their_term(order in order(), options in options()) {
        let term = to_term_with(&order, options).unwrap();
        let back: Order = from_term_with(&term, options).unwrap();
        prop_assert_eq!(back, order);
    }

    #[test]
    fn values_come_back_through_the_external_format(order in order(), options in options()) {
        let term = to_term_with(&order, options).unwrap();
        let mut bytes = BytesMut::new();
        term::encode(&term, &mut bytes).unwrap();
        let decoded = term::decode(&Bytes::from(bytes)).unwrap();
        let back: Order = from_term_with(&decoded, options).unwrap();
        prop_assert_eq!(back, order);
    }

    #[test]
    fn scalars_come_back(
        values in (any::<i8>(), any::<u16>(), any::<i32>(), any::<u64>(), any::<i64>(), any::<u128>()),
        text in any::<String>(),
        flags in any::<Vec<bool>>(),
    ) {
        let term = to_term_with(&(values, &text, &flags), Options::default()).unwrap();
        let back: Scalars = from_term_with(&term, Options::default()).unwrap();
        prop_assert_eq!(back, (values, text, flags));
    }
}
