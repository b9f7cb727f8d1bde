//! Decode and encode of representative distribution terms, and decode of the same bytes
//! with the `eetf` crate (the measured reason for not using it).
//!
//! `cargo bench --bench term_codec` (add `-- --quick` for a short run).

use beamlink::proto::term::{self, Atom, Pid, Reference, Term};
use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

fn pid(node: &str, id: u32) -> Term {
    Term::Pid(Pid {
        node: Atom::new(node),
        id,
        serial: 0,
        creation: 0x6600_aabb,
    })
}

fn samples() -> Vec<(&'static str, Term)> {
    let mref = Reference::new(Atom::new("app@127.0.0.1"), 0x6600_aabb, &[1, 2, 3]).unwrap();
    vec![
        // SEND_SENDER-style control message.
        (
            "control_tuple",
            Term::tuple(vec![
                Term::Int(22),
                pid("rust@127.0.0.1", 1),
                pid("app@127.0.0.1", 100),
            ]),
        ),
        (
            "seq_16b",
            Term::tuple(vec![Term::atom("seq"), Term::binary(vec![7u8; 16])]),
        ),
        ("binary_1k", Term::binary(vec![1u8; 1024])),
        ("binary_64k", Term::binary(vec![2u8; 65536])),
        (
            "gen_call_alias",
            Term::tuple(vec![
                Term::atom("$gen_call"),
                Term::tuple(vec![
                    pid("app@127.0.0.1", 100),
                    Term::ImproperList(vec![Term::atom("alias")], Box::new(Term::reference(mref))),
                ]),
                Term::tuple(vec![Term::atom("is_auth"), Term::atom("app@127.0.0.1")]),
            ]),
        ),
        (
            "list_1000_ints",
            Term::List((0..1000).map(Term::Int).collect()),
        ),
        (
            "map_10",
            Term::Map(
                (0..10)
                    .map(|i| {
                        (
                            Term::atom(&format!("key_{i}")),
                            Term::tuple(vec![Term::Int(i), Term::binary(vec![i as u8; 8])]),
                        )
                    })
                    .collect(),
            ),
        ),
    ]
}

fn codec(c: &mut Criterion) {
    for (name, t) in samples() {
        let mut out = BytesMut::new();
        term::encode(&t, &mut out).unwrap();
        let bytes: Bytes = out.freeze();
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function("decode/beamlink", |b| {
            b.iter(|| term::decode(black_box(&bytes)).unwrap())
        });
        group.bench_function("decode/eetf", |b| {
            b.iter(|| eetf::Term::decode(std::io::Cursor::new(black_box(&bytes[..]))).unwrap())
        });
        group.bench_function("encode/beamlink", |b| {
            let mut out = BytesMut::with_capacity(bytes.len());
            b.iter(|| {
                out.clear();
                term::encode(black_box(&t), &mut out).unwrap();
            })
        });
        group.finish();
    }
}

criterion_group!(benches, codec);
criterion_main!(benches);
