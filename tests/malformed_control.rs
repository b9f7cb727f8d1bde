//! Malformed control messages after a valid handshake (the `bad_dist_structure` case of
//! OTP's distribution_SUITE): the BEAM drops the whole connection for them; beamlink drops
//! only the message, logs each kind once, and keeps serving the link.
//!
//! No BEAM can be made to send these, so the peer here is a raw socket driven by our own
//! handshake state machine.

mod support;

use beamlink::proto::digest::Cookie;
use beamlink::proto::flags::DistFlags;
use beamlink::proto::handshake::{Initiator, LocalNode};
use beamlink::proto::node_name::NodeName;
use beamlink::proto::term::{Atom, Pid, Reference, Term, encode};
use beamlink::transport::handshake::initiate;
use bytes::{BufMut, BytesMut};
use std::time::Duration;
use support::{Beamlink, Epmd, TEST_COOKIE, unique_name};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn frame(control: &Term, payload: Option<&Term>) -> Vec<u8> {
    let mut body = BytesMut::new();
    body.put_u8(112);
    encode(control, &mut body).unwrap();
    if let Some(p) = payload {
        encode(p, &mut body).unwrap();
    }
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(&body);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_control_messages_close_nothing_and_are_logged_once() {
    let epmd = Epmd::start();
    let name = format!("{}@127.0.0.1", unique_name("blbad"));
    let bl = Beamlink::start(
        &[
            "run",
            "--name",
            &name,
            "--epmd",
            "client",
            "--epmd-port",
            &epmd.port().to_string(),
        ],
        TEST_COOKIE,
    );
    bl.wait_log("node started", Duration::from_secs(10));
    let port = epmd
        .names()
        .into_iter()
        .find(|(n, _)| name.starts_with(&format!("{n}@")))
        .map(|(_, p)| p)
        .expect("beamlink registered");
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let me = NodeName::parse("fake@127.0.0.1").unwrap();
    let local = LocalNode {
        name: me.clone(),
        flags: DistFlags::BEAMLINK_DEFAULT,
        creation: 7,
        cookie: Cookie::new(TEST_COOKIE),
    };
    let stream = TcpStream::connect(addr).await.unwrap();
    let machine = Initiator::new(local, NodeName::parse(&name).unwrap(), 42);
    let done = initiate(stream, addr, machine, Duration::from_secs(5), || true)
        .await
        .unwrap();
    let mut stream = done.stream;
    let established = done.established;
    let our_pid = Pid {
        node: Atom::new("fake@127.0.0.1"),
        id: 1,
        serial: 0,
        creation: 7,
    };
    let bad = [
        // LINK with two elements.
        frame(
            &Term::tuple([Term::Int(1), Term::Pid(our_pid.clone())]),
            None,
        ),
        // An operation that does not exist.
        frame(&Term::tuple([Term::Int(99), Term::atom("x")]), None),
        // LINK whose target is an atom, not a pid.
        frame(
            &Term::tuple([Term::Int(1), Term::Pid(our_pid.clone()), Term::atom("nope")]),
            None,
        ),
        // Not a tuple at all.
        frame(&Term::atom("garbage"), None),
        // REG_SEND without its payload.
        frame(
            &Term::tuple([
                Term::Int(6),
                Term::Pid(our_pid.clone()),
                Term::atom(""),
                Term::atom("net_kernel"),
            ]),
            None,
        ),
        // A corrupt term: a LIST_EXT that claims more elements than there are bytes.
        {
            let mut f = vec![0, 0, 0, 7, 112, 131, 108, 0xff, 0xff, 0xff, 0xff];
            f[3] = 7;
            f
        },
    ];
    for round in 0..2 {
        for f in &bad {
            stream.write_all(f).await.unwrap();
        }
        let _ = round;
    }
    // The link still works: a ping gets its answer.
    let mref = Reference::new(Atom::new("fake@127.0.0.1"), 7, &[1, 2, 3]).unwrap();
    let tag = Term::reference(mref);
    let call = Term::tuple([
        Term::atom("$gen_call"),
        Term::tuple([Term::Pid(our_pid.clone()), tag.clone()]),
        Term::tuple([Term::atom("is_auth"), Term::atom("fake@127.0.0.1")]),
    ]);
    let reg_send = Term::tuple([
        Term::Int(6),
        Term::Pid(our_pid.clone()),
        Term::atom(""),
        Term::atom("net_kernel"),
    ]);
    stream
        .write_all(&frame(&reg_send, Some(&call)))
        .await
        .unwrap();
    let mut buf = BytesMut::new();
    let mut decoder = beamlink::proto::dist_header::DistDecoder::new(established.flags, 1 << 20);
    let reply = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            stream.read_buf(&mut buf).await.unwrap();
            while let Ok(Some(f)) = beamlink::proto::frame::take_frame(&mut buf, 1 << 20) {
                if let beamlink::proto::frame::Frame::Message(m) = f
                    && let Some(c) = decoder.decode(&m).unwrap()
                {
                    return c;
                }
            }
        }
    })
    .await
    .expect("no reply to the ping after the malformed messages");
    match reply {
        beamlink::proto::control::Control::Send { message, .. } => {
            assert_eq!(message, Term::tuple([tag, Term::atom("yes")]))
        }
        other => panic!("unexpected reply {other:?}"),
    }
    let log = bl.log();
    assert_eq!(bl.count("nodedown"), 0, "the link dropped:\n{log}");
    // Each kind once at warn level, whatever the number of occurrences.
    for needle in [
        "operation 1 with 2 elements",
        "unknown operation 99",
        "operation 1 has a bad to pid",
        "not a tuple starting with an operation number",
        "operation 6 without its payload",
        "corrupt term",
    ] {
        assert_eq!(
            log.lines()
                .filter(|l| l.contains("WARN") && l.contains(needle))
                .count(),
            1,
            "{needle:?} should be logged once at warn level:\n{log}"
        );
    }
}
