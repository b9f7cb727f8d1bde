//! Encode and decode of whole distribution messages (control term + payload, as one packet
//! with its length), the work a link does per message on top of the term codec:
//! REG_SEND with a small payload, SEND_SENDER, MONITOR_P, a gen_call (REG_SEND of
//! `{'$gen_call', {Pid, [alias | Ref]}, Request}`) and its reply (ALIAS_SEND of
//! `{[alias | Ref], Reply}`), and SPAWN_REQUEST.
//!
//! `cargo bench --bench control_codec` (add `-- --quick` for a short run). Flags are what
//! beamlink negotiates with an OTP 25 node, atom cache included: the messages are measured
//! once the connection's cache holds their atoms, as on a link that has been up a while.

use beamlink::proto::control::{Control, ProcessRef};
use beamlink::proto::dist_header::{AtomCacheOut, DistDecoder};
use beamlink::proto::flags::DistFlags;
use beamlink::proto::frame;
use beamlink::proto::term::{Atom, Pid, Reference, Term};
use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

fn pid(node: &str, id: u32) -> Pid {
    Pid {
        node: Atom::new(node),
        id,
        serial: 0,
        creation: 0x6600_aabb,
    }
}

fn reference(node: &str) -> Reference {
    Reference::new(Atom::new(node), 0x6600_aabb, &[0x1_2345, 0x6789, 0xABCD]).unwrap()
}

fn samples() -> Vec<(&'static str, Control)> {
    let beam = "app@127.0.0.1";
    let us = "beamlink@127.0.0.1";
    let seq16 = Term::tuple([Term::Int(123_456), Term::binary(vec![0xAB; 16])]);
    let mref = reference(beam);
    let alias_tag = Term::ImproperList(
        vec![Term::atom("alias")],
        Box::new(Term::reference(mref.clone())),
    );
    vec![
        (
            "reg_send_seq16",
            Control::RegSend {
                from: pid(beam, 100),
                to: Atom::new("rig_sink"),
                token: None,
                message: seq16.clone(),
            },
        ),
        (
            "send_sender_seq16",
            Control::Send {
                from: Some(pid(us, 1)),
                to: pid(beam, 100),
                token: None,
                message: seq16,
            },
        ),
        (
            "monitor_p",
            Control::MonitorP {
                from: pid(beam, 100),
                to: ProcessRef::Name(Atom::new("net_kernel")),
                reference: mref.clone(),
            },
        ),
        (
            "gen_call",
            Control::RegSend {
                from: pid(beam, 100),
                to: Atom::new("net_kernel"),
                token: None,
                message: Term::tuple([
                    Term::atom("$gen_call"),
                    Term::tuple([Term::Pid(pid(beam, 100)), alias_tag.clone()]),
                    Term::tuple([Term::atom("is_auth"), Term::atom(beam)]),
                ]),
            },
        ),
        (
            "gen_call_reply",
            Control::AliasSend {
                from: pid(us, 1),
                alias: mref.clone(),
                token: None,
                message: Term::tuple([alias_tag, Term::atom("yes")]),
            },
        ),
        (
            "spawn_request",
            Control::SpawnRequest {
                req_id: mref,
                from: pid(beam, 100),
                group_leader: pid(beam, 64),
                module: Atom::new("erlang"),
                function: Atom::new("apply"),
                arity: 2,
                opts: Term::list([Term::atom("monitor")]),
                token: None,
                args: Term::list([Term::atom("nodes"), Term::NIL]),
            },
        ),
    ]
}

fn codec(c: &mut Criterion) {
    let flags = DistFlags::negotiate(DistFlags::BEAMLINK_DEFAULT, DistFlags(0x0D_07DF_7FBC));
    for (name, control) in samples() {
        // As a link does once warmed up: the first message puts its atoms in both halves of
        // the connection's atom cache; the second, the one measured, refers to them. The
        // decoder takes the packet without its 4-byte length, as the link does.
        let mut cache = AtomCacheOut::new();
        let mut decoder = DistDecoder::new(flags, 1 << 26);
        let mut body = Bytes::new();
        for _ in 0..2 {
            let mut packet = BytesMut::new();
            frame::encode_message_cached(&control, flags, Some(&mut cache), &mut packet).unwrap();
            body = packet.freeze().slice(4..);
            assert_eq!(
                decoder.decode(&body).unwrap(),
                Some(control.clone()),
                "{name}"
            );
        }
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Bytes(body.len() as u64 + 4));
        group.bench_function("encode", |b| {
            let mut out = BytesMut::with_capacity(256);
            b.iter(|| {
                out.clear();
                frame::encode_message_cached(
                    black_box(&control),
                    flags,
                    Some(&mut cache),
                    &mut out,
                )
                .unwrap();
            })
        });
        group.bench_function("decode", |b| {
            b.iter(|| decoder.decode(black_box(&body)).unwrap())
        });
        group.finish();
    }
}

criterion_group!(benches, codec);
criterion_main!(benches);
