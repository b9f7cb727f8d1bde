//! The serde mapping of `term::typed`, row by row of its table, both ways, and its errors:
//! kind and path.

use beamlink_proto::term::typed::{Error, ErrorKind, Options, PathSegment};
use beamlink_proto::term::{
    Atom, BigInt, Pid, Reference, Term, from_term, from_term_with, to_term, to_term_with,
};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

fn atom(text: &str) -> Term {
    Term::atom(text)
}

fn bin(text: &str) -> Term {
    Term::binary(Bytes::copy_from_slice(text.as_bytes()))
}

fn map(pairs: Vec<(Term, Term)>) -> Term {
    Term::Map(pairs)
}

/// `value` maps to `term`, and `term` maps back to `value`.
fn both_ways<T>(value: T, term: Term)
where
    T: Serialize + for<'de> Deserialize<'de> + PartialEq + std::fmt::Debug,
{
    assert_eq!(to_term(&value).unwrap(), term, "{value:?} to a term");
    assert_eq!(from_term::<T>(&term).unwrap(), value, "{term} to a value");
}

fn err<T: for<'de> Deserialize<'de> + std::fmt::Debug>(term: &Term) -> Error {
    from_term::<T>(term).expect_err("must not decode")
}

#[test]
fn scalars() {
    both_ways(true, atom("true"));
    both_ways(false, atom("false"));
    both_ways(-5i8, Term::Int(-5));
    both_ways(300u16, Term::Int(300));
    both_ways(i64::MIN, Term::Int(i64::MIN));
    both_ways(
        u64::MAX,
        Term::Big(BigInt {
            negative: false,
            magnitude: vec![0xff; 8],
        }),
    );
    both_ways(
        i128::MIN,
        Term::Big(BigInt {
            negative: true,
            magnitude: {
                let mut m = vec![0; 15];
                m.push(0x80);
                m
            },
        }),
    );
    both_ways(
        u128::MAX,
        Term::Big(BigInt {
            negative: false,
            magnitude: vec![0xff; 16],
        }),
    );
    both_ways(1i128, Term::Int(1));
    both_ways(2.5f64, Term::Float(2.5));
    both_ways(-0.5f32, Term::Float(-0.5));
    both_ways('é', bin("é"));
    both_ways("héllo".to_string(), bin("héllo"));
}

#[test]
fn lenient_reads() {
    // Elixir's `2` for a float field; an Erlang charlist for a String; a code point for a char.
    assert_eq!(from_term::<f64>(&Term::Int(2)).unwrap(), 2.0);
    let charlist = Term::list([Term::Int('h' as i64), Term::Int('é' as i64)]);
    assert_eq!(from_term::<String>(&charlist).unwrap(), "hé");
    assert_eq!(from_term::<String>(&Term::NIL).unwrap(), "");
    assert_eq!(from_term::<char>(&Term::Int('x' as i64)).unwrap(), 'x');
    // A binary into a plain Vec<u8>, a list of bytes into a byte buffer.
    assert_eq!(from_term::<Vec<u8>>(&bin("ab")).unwrap(), b"ab");
    let bytes = Term::list([Term::Int(1), Term::Int(255)]);
    assert_eq!(
        from_term::<serde_bytes::ByteBuf>(&bytes)
            .unwrap()
            .into_vec(),
        [1, 255]
    );
    // Borrowing from the term.
    let term = bin("borrowed");
    let text: &str = from_term(&term).unwrap();
    assert_eq!(text, "borrowed");
}

#[test]
fn integers_out_of_range_and_floats() {
    let e = err::<u8>(&Term::Int(256));
    assert_eq!(
        e.kind(),
        &ErrorKind::IntegerOutOfRange {
            expected: "u8",
            value: "256".into()
        }
    );
    assert!(matches!(
        err::<i64>(&to_term(&u64::MAX).unwrap()).kind(),
        ErrorKind::IntegerOutOfRange {
            expected: "i64",
            ..
        }
    ));
    let huge = Term::Big(BigInt {
        negative: false,
        magnitude: vec![1; 17],
    });
    assert!(matches!(
        err::<u128>(&huge).kind(),
        ErrorKind::IntegerOutOfRange { .. }
    ));
    assert!(matches!(
        err::<u32>(&Term::Float(1.0)).kind(),
        ErrorKind::InvalidType { .. }
    ));
    assert!(matches!(
        err::<f64>(&Term::Int(1 << 54)).kind(),
        ErrorKind::InvalidValue { .. }
    ));
    assert!(matches!(
        err::<f32>(&Term::Float(1e300)).kind(),
        ErrorKind::InvalidValue { .. }
    ));
    assert_eq!(
        to_term(&f64::NAN).unwrap_err().kind(),
        &ErrorKind::FloatNotFinite
    );
    assert_eq!(
        to_term(&vec![1.0, f64::INFINITY]).unwrap_err().to_string(),
        "[1]: float is not finite (the BEAM has no NaN or infinity)"
    );
}

#[test]
fn bytes_and_binaries() {
    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Blobs {
        plain: Vec<u8>,
        #[serde(with = "serde_bytes")]
        binary: Vec<u8>,
        bytes: Bytes,
    }
    both_ways(
        Blobs {
            plain: vec![1, 2],
            binary: vec![3, 4],
            bytes: Bytes::from_static(&[5]),
        },
        map(vec![
            (atom("plain"), Term::list([Term::Int(1), Term::Int(2)])),
            (atom("binary"), Term::binary(&[3u8, 4][..])),
            (atom("bytes"), Term::binary(&[5u8][..])),
        ]),
    );
    let e = err::<String>(&Term::binary(&[0xff_u8][..]));
    assert_eq!(e.kind(), &ErrorKind::NotUtf8);
}

#[test]
fn options_unit_and_none() {
    both_ways(None::<u8>, atom("nil"));
    both_ways(Some(3u8), Term::Int(3));
    both_ways((), Term::tuple([]));
    both_ways(Some(()), Term::tuple([]));
    both_ways(None::<()>, atom("nil"));
    let erlang = Options::erlang();
    assert_eq!(
        to_term_with(&None::<u8>, erlang).unwrap(),
        atom("undefined")
    );
    assert_eq!(
        from_term_with::<Option<u8>>(&atom("undefined"), erlang).unwrap(),
        None
    );
    // With Erlang's convention, nil is an ordinary atom.
    assert!(from_term_with::<Option<u8>>(&atom("nil"), erlang).is_err());
    let custom = Options::default().with_none_atom("none");
    assert_eq!(to_term_with(&None::<u8>, custom).unwrap(), atom("none"));
    assert_eq!(custom.none_atom(), "none");
}

#[test]
fn sequences_tuples_and_maps() {
    both_ways(vec![1u8, 2], Term::list([Term::Int(1), Term::Int(2)]));
    both_ways(Vec::<String>::new(), Term::NIL);
    both_ways(
        (1u8, "a".to_string()),
        Term::tuple([Term::Int(1), bin("a")]),
    );
    both_ways(
        [7u8; 3],
        Term::tuple([Term::Int(7), Term::Int(7), Term::Int(7)]),
    );
    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Point(i32, i32);
    both_ways(Point(1, -1), Term::tuple([Term::Int(1), Term::Int(-1)]));
    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Meters(f64);
    both_ways(Meters(1.5), Term::Float(1.5));
    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Unit;
    both_ways(Unit, Term::tuple([]));

    let mut scores = BTreeMap::new();
    scores.insert("ada".to_string(), 3u32);
    scores.insert("bob".to_string(), 1);
    both_ways(
        scores,
        map(vec![(bin("ada"), Term::Int(3)), (bin("bob"), Term::Int(1))]),
    );
    let mut by_atom = BTreeMap::new();
    by_atom.insert(Atom::new("ok"), vec![1u8]);
    both_ways(by_atom, map(vec![(atom("ok"), Term::list([Term::Int(1)]))]));

    let e = err::<(u8, u8)>(&Term::tuple([Term::Int(1)]));
    assert_eq!(
        e.kind(),
        &ErrorKind::InvalidLength {
            expected: "a tuple of 2 elements".into(),
            len: 1
        }
    );
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
#[serde(rename_all = "snake_case")]
enum Shape {
    Empty,
    Circle(f64),
    Pair(i32, String),
    Rect { w: u32, h: u32 },
    Point((i32, i32)),
    Nothing(),
}

#[test]
fn enums() {
    both_ways(Shape::Empty, atom("empty"));
    both_ways(
        Shape::Circle(2.0),
        Term::tuple([atom("circle"), Term::Float(2.0)]),
    );
    both_ways(
        Shape::Pair(1, "x".into()),
        Term::tuple([atom("pair"), Term::Int(1), bin("x")]),
    );
    both_ways(
        Shape::Rect { w: 1, h: 2 },
        Term::tuple([
            atom("rect"),
            map(vec![(atom("w"), Term::Int(1)), (atom("h"), Term::Int(2))]),
        ]),
    );
    both_ways(
        Shape::Point((1, 2)),
        Term::tuple([atom("point"), Term::tuple([Term::Int(1), Term::Int(2)])]),
    );
    both_ways(Shape::Nothing(), Term::tuple([atom("nothing")]));

    let e = err::<Shape>(&atom("hexagon"));
    assert!(matches!(e.kind(), ErrorKind::UnknownVariant { variant, .. } if variant == "hexagon"));
    let e = err::<Shape>(&atom("circle"));
    assert_eq!(
        e.to_string(),
        "expected a tuple {circle, value}, found atom circle"
    );
    let e = err::<Shape>(&Term::tuple([atom("empty"), Term::Int(1)]));
    assert!(matches!(e.kind(), ErrorKind::InvalidType { .. }), "{e}");
    let e = err::<Shape>(&Term::tuple([atom("pair"), Term::Int(1)]));
    assert!(
        matches!(e.kind(), ErrorKind::InvalidLength { len: 2, .. }),
        "{e}"
    );
    let e = err::<Shape>(&Term::tuple([
        atom("rect"),
        map(vec![(atom("w"), Term::Int(1)), (atom("h"), atom("nil"))]),
    ]));
    assert_eq!(
        e.to_string(),
        ".rect.h: expected an integer, found atom nil"
    );
    let e = err::<Shape>(&Term::tuple([atom("pair"), Term::Int(1), Term::Int(2)]));
    assert_eq!(
        e.path(),
        [PathSegment::Variant("pair".into()), PathSegment::Index(1)]
    );
    let e = err::<Shape>(&Term::Int(1));
    assert!(
        e.to_string()
            .starts_with("expected an atom or a tuple tagged with an atom"),
        "{e}"
    );
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
#[serde(rename = "Elixir.MyApp.User")]
struct User {
    name: String,
    email: Option<String>,
    tags: Vec<String>,
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct Plain {
    name: String,
}

#[test]
fn elixir_structs() {
    let user = User {
        name: "ada".into(),
        email: None,
        tags: vec!["x".into()],
    };
    let term = map(vec![
        (atom("__struct__"), atom("Elixir.MyApp.User")),
        (atom("name"), bin("ada")),
        (atom("email"), atom("nil")),
        (atom("tags"), Term::list([bin("x")])),
    ]);
    both_ways(user, term.clone());

    // A plain struct ignores __struct__; binary keys work; a missing Option is None.
    assert_eq!(
        from_term::<Plain>(&term).unwrap(),
        Plain { name: "ada".into() }
    );
    let loose = map(vec![
        (bin("name"), bin("b")),
        (bin("tags"), Term::NIL),
        (atom("__struct__"), atom("Elixir.MyApp.User")),
    ]);
    assert_eq!(from_term::<User>(&loose).unwrap().email, None);

    let e = err::<User>(&map(vec![
        (atom("name"), bin("a")),
        (atom("tags"), Term::NIL),
    ]));
    assert_eq!(
        e.kind(),
        &ErrorKind::NotAStruct {
            expected: "Elixir.MyApp.User"
        }
    );
    let e = err::<User>(&map(vec![
        (atom("__struct__"), atom("Elixir.Other")),
        (atom("name"), bin("a")),
        (atom("tags"), Term::NIL),
    ]));
    assert_eq!(
        e.to_string(),
        "expected struct Elixir.MyApp.User, found __struct__ 'Elixir.Other'"
    );
    let e = err::<User>(&map(vec![
        (atom("__struct__"), atom("Elixir.MyApp.User")),
        (atom("name"), bin("a")),
    ]));
    assert_eq!(e.kind(), &ErrorKind::MissingField { field: "tags" });
    let e = err::<User>(&atom("nil"));
    assert_eq!(
        e.to_string(),
        "expected a map (struct Elixir.MyApp.User), found atom nil"
    );

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Strict {
        name: String,
    }
    let e = err::<Strict>(&map(vec![
        (atom("name"), bin("a")),
        (atom("age"), Term::Int(1)),
    ]));
    assert!(
        matches!(e.kind(), ErrorKind::UnknownField { field, .. } if field == "age"),
        "{e}"
    );
    // __struct__ is skipped before deny_unknown_fields sees it.
    assert!(
        from_term::<Strict>(&map(vec![
            (atom("__struct__"), atom("Elixir.S")),
            (atom("name"), bin("a"))
        ]))
        .is_ok()
    );
}

#[test]
fn error_paths_name_the_failing_part() {
    #[derive(Deserialize, Debug)]
    #[allow(dead_code)]
    struct Team {
        users: Vec<User>,
        lookup: HashMap<String, Vec<u8>>,
    }
    let user = |email: Term| {
        map(vec![
            (atom("__struct__"), atom("Elixir.MyApp.User")),
            (atom("name"), bin("n")),
            (atom("email"), email),
            (atom("tags"), Term::NIL),
        ])
    };
    let team = map(vec![
        (
            atom("users"),
            Term::list([user(atom("nil")), user(bin("a@b")), user(Term::Int(5))]),
        ),
        (atom("lookup"), map(vec![])),
    ]);
    let e = err::<Team>(&team);
    assert_eq!(
        e.to_string(),
        ".users[2].email: expected a UTF-8 binary, found integer 5"
    );
    assert_eq!(e.path_string(), ".users[2].email");
    assert_eq!(
        e.path(),
        [
            PathSegment::Field("users".into()),
            PathSegment::Index(2),
            PathSegment::Field("email".into())
        ]
    );
    let team = map(vec![
        (atom("users"), Term::NIL),
        (
            atom("lookup"),
            map(vec![(bin("k"), Term::list([Term::Int(256)]))]),
        ),
    ]);
    assert_eq!(
        err::<Team>(&team).to_string(),
        r#".lookup["k"][0]: integer 256 out of range for u8"#
    );
    // A visitor's own refusal names the term, not serde's view of it.
    let e = err::<bool>(&atom("yes"));
    assert_eq!(e.to_string(), "expected true or false, found atom yes");
    let e = err::<Pid>(&atom("nil"));
    assert_eq!(e.to_string(), "expected a pid, found atom nil");
    // Serializing: the path too.
    #[derive(Serialize)]
    struct Holder {
        inner: Vec<Shape>,
    }
    let e = to_term(&Holder {
        inner: vec![Shape::Empty, Shape::Circle(f64::NAN)],
    })
    .unwrap_err();
    assert_eq!(e.path_string(), ".inner[1].circle");
}

#[test]
fn terms_pids_references_and_atoms_pass_through() {
    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Envelope {
        from: Pid,
        reference: Reference,
        tag: Atom,
        payload: Term,
    }
    let node = Atom::new("shop@127.0.0.1");
    let pid = Pid {
        node: node.clone(),
        id: 80,
        serial: 0,
        creation: 1_700_000_000,
    };
    let reference = Reference::new(node, 1_700_000_000, &[1, 2, 3]).unwrap();
    let payload = Term::ImproperList(vec![Term::Int(1)], Box::new(atom("tail")));
    let envelope = Envelope {
        from: pid.clone(),
        reference: reference.clone(),
        tag: Atom::new("order"),
        payload: payload.clone(),
    };
    both_ways(
        envelope,
        map(vec![
            (atom("from"), Term::Pid(pid)),
            (atom("reference"), Term::reference(reference)),
            (atom("tag"), atom("order")),
            (atom("payload"), payload),
        ]),
    );
    let long = "a".repeat(256);
    assert_eq!(
        to_term(&Atom::new(&long)).unwrap_err().kind(),
        &ErrorKind::AtomTooLong { chars: 256 }
    );
}

#[test]
fn buffered_enums_and_any() {
    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    #[serde(tag = "type", rename_all = "snake_case")]
    enum Event {
        Joined { name: String, admin: Option<bool> },
        Left { name: String },
    }
    let joined = Event::Joined {
        name: "ada".into(),
        admin: None,
    };
    // The tag is written as a binary (serde hands it over as a string) ...
    assert_eq!(
        to_term(&joined).unwrap(),
        map(vec![
            (atom("type"), bin("joined")),
            (atom("name"), bin("ada")),
            (atom("admin"), atom("nil"))
        ])
    );
    // ... and read from an atom or a binary.
    let from_elixir = map(vec![
        (atom("type"), atom("joined")),
        (atom("name"), bin("ada")),
        (atom("admin"), atom("nil")),
    ]);
    assert_eq!(from_term::<Event>(&from_elixir).unwrap(), joined);

    #[derive(Deserialize, PartialEq, Debug)]
    #[serde(untagged)]
    enum Loose {
        Number(i64),
        Text(String),
        Flags(Vec<bool>),
    }
    assert_eq!(from_term::<Loose>(&Term::Int(3)).unwrap(), Loose::Number(3));
    assert_eq!(
        from_term::<Loose>(&bin("t")).unwrap(),
        Loose::Text("t".into())
    );
    assert_eq!(
        from_term::<Loose>(&Term::list([atom("true")])).unwrap(),
        Loose::Flags(vec![true])
    );

    // A pid cannot go through serde's buffering.
    #[derive(Deserialize, Debug)]
    #[serde(untagged)]
    #[allow(dead_code)]
    enum WithPid {
        Pid(Pid),
    }
    let pid = Term::Pid(Pid {
        node: Atom::new("a@b"),
        id: 1,
        serial: 0,
        creation: 1,
    });
    assert!(from_term::<WithPid>(&pid).is_err());
}

#[test]
fn any_is_bounded_in_depth() {
    let mut deep = Term::NIL;
    for _ in 0..200 {
        deep = Term::list([deep]);
    }
    #[derive(Deserialize, Debug)]
    #[serde(untagged)]
    #[allow(dead_code)]
    enum Anything {
        Text(String),
        Nested(Vec<Anything>),
    }
    let e = err::<Anything>(&deep);
    // serde's untagged enums flatten the inner error into their own message.
    assert!(
        !matches!(e.kind(), ErrorKind::IntegerOutOfRange { .. }),
        "{e}"
    );
    // Visiting the term itself stops at the limit.
    struct Depth;
    impl<'de> Deserialize<'de> for Depth {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Depth, D::Error> {
            struct V;
            impl<'de> serde::de::Visitor<'de> for V {
                type Value = Depth;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("anything")
                }
                fn visit_seq<A: serde::de::SeqAccess<'de>>(
                    self,
                    mut seq: A,
                ) -> Result<Depth, A::Error> {
                    while seq.next_element::<Depth>()?.is_some() {}
                    Ok(Depth)
                }
            }
            d.deserialize_any(V)
        }
    }
    let e = from_term::<Depth>(&deep).map(|_| ()).unwrap_err();
    assert_eq!(e.kind(), &ErrorKind::TooDeep);
    // One step per level walked: the root and MAX_SERDE_DEPTH levels below it.
    assert_eq!(
        e.path().len(),
        beamlink_proto::term::typed::MAX_SERDE_DEPTH + 1
    );
}
