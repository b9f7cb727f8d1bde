#![cfg(feature = "interop")]
//! Messages that do not decode, after a valid handshake (the `bad_dist_structure`,
//! `bad_dist_fragments` and `bad_dist_ext_*` cases of OTP's distribution_SUITE). A BEAM
//! closes the connection for every one of them (`erts_net_message` ends in
//! `erts_kill_dist_connection`) and the peer that sent it sees `nodedown_reason`
//! `connection_closed`. beamlink, by default (`--on-bad-message keep`), drops only the
//! message and keeps serving the connection; with `--on-bad-message drop-link` it closes
//! the connection as a BEAM does. Either way each message is counted by what failed to
//! decode (`beamlink_bad_messages_total{kind}`: `header`, `fragment`, `term`, `control`) and
//! logged at warn level at most once a minute per kind, node-wide.
//!
//! Two kinds of sender:
//! * a real BEAM of each release in `BEAMLINK_OTP`, made to write raw bytes on its own
//!   distribution connection the way distribution_SUITE does (`erts_debug`'s `dist_ctrl`
//!   port and `prim_inet:send/2`): a corrupt distribution header, a control tuple of the
//!   wrong arity, a payload with an atom cache reference no header defined, a fragment of
//!   a sequence that never started;
//! * a raw peer driven by beamlink's own handshake state machine, for the pass-through
//!   messages a BEAM never sends (no BEAM uses the 112 form once the distribution header is
//!   negotiated), and for the library's events.

mod support;

use beamlink::node::NodeEvent;
use beamlink::proto::dist_header::DistDecoder;
use beamlink::proto::term::{Atom, Pid, Term};
use beamlink::transport::DisconnectReason;
use beamlink::{Cookie, Node, OnBadMessage};
use bytes::BytesMut;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use support::{
    BeamNode, Beamlink, Ended, Epmd, Otp, TEST_COOKIE, closed_within, dial_handshake, framed,
    http_get, metrics_addr, pass_through, raw_local, registered_port, sample, start_beamlink,
    unique_name,
};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const KINDS: [&str; 4] = ["header", "fragment", "term", "control"];

fn raw_pid(node: &str) -> Pid {
    Pid {
        node: Atom::new(node),
        id: 1,
        serial: 0,
        creation: 7,
    }
}

/// Malformed messages a raw peer `me` sends, by kind: every one is dropped by a BEAM with
/// its connection.
fn raw_bad_messages(me: &str) -> Vec<(&'static str, Vec<u8>)> {
    let pid = raw_pid(me);
    vec![
        // LINK with two elements.
        (
            "control",
            pass_through(&Term::tuple([Term::Int(1), Term::Pid(pid.clone())]), None),
        ),
        // An operation that does not exist.
        (
            "control",
            pass_through(&Term::tuple([Term::Int(99), Term::atom("x")]), None),
        ),
        // LINK whose target is an atom, not a pid.
        (
            "control",
            pass_through(
                &Term::tuple([Term::Int(1), Term::Pid(pid.clone()), Term::atom("nope")]),
                None,
            ),
        ),
        // Not a tuple at all.
        ("control", pass_through(&Term::atom("garbage"), None)),
        // REG_SEND without its payload.
        (
            "control",
            pass_through(
                &Term::tuple([
                    Term::Int(6),
                    Term::Pid(pid.clone()),
                    Term::atom(""),
                    Term::atom("net_kernel"),
                ]),
                None,
            ),
        ),
        // A LIST_EXT that claims more elements than there are bytes.
        ("term", framed(&[112, 131, 108, 0xff, 0xff, 0xff, 0xff])),
        // A byte after the payload term.
        ("term", {
            let mut m = pass_through(&Term::tuple([Term::Int(18)]), Some(&Term::Int(1)));
            m.push(0);
            m[3] += 1;
            m
        }),
        // A first byte that is neither pass-through nor a header.
        ("header", framed(&[1, 2])),
        // A distribution header announcing 255 atom cache references and holding none.
        ("header", framed(&[131, 68, 255])),
        // A continuation fragment of a sequence that never started.
        ("fragment", {
            let mut m = vec![131, 70];
            m.extend_from_slice(&1u64.to_be_bytes());
            m.extend_from_slice(&1u64.to_be_bytes());
            framed(&m)
        }),
    ]
}

/// `net_kernel` `is_auth` from the raw peer `me`; true when the answer arrives within 5 s.
async fn ping_over(
    stream: &mut TcpStream,
    decoder: &mut DistDecoder,
    buf: &mut BytesMut,
    me: &str,
) -> bool {
    support::raw_ping(stream, decoder, buf, &raw_pid(me)).await
}

/// Warn-level lines about messages of `kind` that do not decode.
fn warn_lines(bl: &Beamlink, kind: &str) -> usize {
    let needle = format!("does not decode ({kind})");
    bl.log()
        .lines()
        .filter(|l| l.contains("WARN") && l.contains(&needle))
        .count()
}

/// `series` of `/metrics` at `addr` (0 when absent).
fn scraped(addr: SocketAddr, series: &str) -> u64 {
    let exposition = http_get(addr, "/metrics");
    assert!(
        exposition.contains("# TYPE beamlink_bad_messages_total counter"),
        "{exposition}"
    );
    sample(&exposition, series).unwrap_or(0)
}

fn bad_series(kind: &str) -> String {
    format!("beamlink_bad_messages_total{{kind=\"{kind}\"}}")
}

const DROPPED_LINKS: &str = "beamlink_disconnects_total{reason=\"bad_message\"}";

/// With the default setting, a raw peer sends each malformed message twice; then a ping on
/// the same connection is answered, no nodedown is logged, `/metrics` counts every message
/// under its kind, and each kind has exactly one warn line.
///
/// Fails if the node's verdict closed the link (`Node::bad_message` answering `DropLink`),
/// without the count (`bad_message.rs`: the counter stays 0), or without the log limit
/// (`LogLimit::admit` always admitting: 2-10 warn lines per kind).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_messages_are_dropped_counted_and_logged_once_per_kind_by_default() {
    let epmd = Epmd::start();
    let name = format!("{}@127.0.0.1", unique_name("blbad"));
    let bl = start_beamlink(&epmd, &name, &["--metrics", "127.0.0.1:0"]);
    let metrics = metrics_addr(&bl);
    let addr = SocketAddr::from(([127, 0, 0, 1], registered_port(&epmd, &name)));
    let me = "fake@127.0.0.1";
    let (mut stream, established, mut buf) =
        dial_handshake(addr, raw_local(me, TEST_COOKIE, 7), &name).await;
    let mut decoder = DistDecoder::new(established.flags, 1 << 20);
    let bad = raw_bad_messages(me);
    for _round in 0..2 {
        for (_, message) in &bad {
            stream.write_all(message).await.unwrap();
        }
    }
    // Answered after the malformed messages: the link is up and they have all been read.
    assert!(
        ping_over(&mut stream, &mut decoder, &mut buf, me).await,
        "no answer after the malformed messages:\n{}",
        bl.log()
    );
    assert_eq!(bl.count("nodedown"), 0, "the link dropped:\n{}", bl.log());
    // The warn lines were written before the answer, but the test reads beamlink's stderr
    // through a pipe and a thread: the nodedown of closing the link is written after them,
    // so once it is read, they all are.
    drop(stream);
    bl.wait_log(&format!("nodedown peer={me}"), Duration::from_secs(30));
    for kind in KINDS {
        let sent = 2 * bad.iter().filter(|(k, _)| *k == kind).count() as u64;
        assert_eq!(scraped(metrics, &bad_series(kind)), sent, "{kind}");
        assert_eq!(warn_lines(&bl, kind), 1, "{kind}:\n{}", bl.log());
    }
    assert_eq!(scraped(metrics, DROPPED_LINKS), 0);
}

/// A library node with `on_bad_message(OnBadMessage::DropLink)`: for each kind, a raw peer
/// sends one malformed message then a ping. The connection closes without answering the
/// ping, the node's `NodeDown` event carries `DisconnectReason::BadMessage` with the
/// decoding error of that kind, and `Node::bad_messages` / `Node::disconnects` count it.
///
/// Fails if the reader goes on after the handler's `DropLink` verdict (removing the
/// `return DisconnectReason::BadMessage(e)` in `transport/connection/reader.rs`: the ping
/// is answered), or if the builder does not pass the setting on (`NodeBuilder::start`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_link_closes_the_connection_and_the_event_says_why() {
    let node = Node::builder()
        .name(format!("{}@127.0.0.1", unique_name("bldrop")))
        .cookie(Cookie::new(TEST_COOKIE))
        .no_epmd()
        .listen("127.0.0.1:0".parse().unwrap())
        .on_bad_message(OnBadMessage::DropLink)
        .start()
        .await
        .unwrap();
    let addr = node.listen_addr().unwrap();
    let peer_name = node.name().to_string();
    let mut dropped = 0;
    // One message of each kind, each on a connection of its own.
    let mut seen = std::collections::BTreeSet::new();
    for (i, (kind, message)) in raw_bad_messages("x@127.0.0.1").into_iter().enumerate() {
        if !seen.insert(kind) {
            continue;
        }
        let me = format!("raw{i}@127.0.0.1");
        let mut events = node.events();
        let (mut stream, established, mut buf) =
            dial_handshake(addr, raw_local(&me, TEST_COOKIE, 7), &peer_name).await;
        let mut decoder = DistDecoder::new(established.flags, 1 << 20);
        assert!(ping_over(&mut stream, &mut decoder, &mut buf, &me).await);
        stream.write_all(&message).await.unwrap();
        assert!(
            !ping_over(&mut stream, &mut decoder, &mut buf, &me).await,
            "{kind}: a ping after the malformed message was answered"
        );
        assert!(
            matches!(
                closed_within(&mut stream, Duration::from_secs(5)).await,
                Ended::Closed(_)
            ),
            "{kind}: the connection stays open"
        );
        let reason = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match events.recv().await {
                    Ok(NodeEvent::NodeDown { peer, reason }) if peer.to_string() == me => {
                        return reason;
                    }
                    Ok(_) => {}
                    Err(e) => panic!("events: {e}"),
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{kind}: no nodedown event"));
        match &reason {
            DisconnectReason::BadMessage(e) => assert_eq!(e.kind(), kind, "{e}"),
            other => panic!("{kind}: nodedown {other:?}"),
        }
        assert!(
            reason.to_string().starts_with(&format!(
                "closed on a message that does not decode ({kind})"
            )),
            "{reason}"
        );
        dropped += 1;
    }
    assert_eq!(dropped, KINDS.len());
    for kind in KINDS {
        assert_eq!(node.bad_messages().get(kind), Some(&1), "{kind}");
    }
    assert_eq!(
        node.disconnects().get("bad_message"),
        Some(&(KINDS.len() as u64))
    );
    node.shutdown().await;
}

/// Erlang expressions (evaluated on the BEAM, with `Ext` bound as below) whose iodata is
/// one malformed message of each kind, as distribution_SUITE builds them.
const BEAM_BAD_MESSAGES: [(&str, &str); 4] = [
    // A distribution header announcing 255 atom cache references and holding none.
    ("header", "[131, $D, 255]"),
    // LINK with no fields.
    ("control", "[[131, $D, 0], Ext({1})]"),
    // A SEND whose payload is an atom cache reference no header defined.
    ("term", "[[131, $D, 0], Ext({2, '', self()}), [$R, 137]]"),
    // A continuation fragment of a sequence that never started.
    ("fragment", "[131, $F, <<1:64, 1:64>>]"),
];

/// A BEAM of `otp`, ready to write raw bytes on its distribution connections: `SendBad(Node,
/// IoData)` and `Ext(Term)` bound in its REPL, and node monitoring on (with reasons).
fn bad_beam(otp: Otp, epmd: &Epmd) -> BeamNode {
    let beam = BeamNode::start(otp, epmd.port());
    for setup in [
        "erts_debug:set_internal_state(available_internal_state, true)",
        "Ext = fun(T) -> <<131, B/binary>> = term_to_binary(T), B end",
        "SendBad = fun(N, D) -> \
            prim_inet:send(erts_debug:get_internal_state({dist_ctrl, N}), D) end",
        "net_kernel:monitor_nodes(true, [nodedown_reason, {node_type, all}])",
    ] {
        beam.eval(setup)
            .unwrap_or_else(|e| panic!("{otp}: {setup}: {e}"));
    }
    beam
}

/// With the default setting, a BEAM of each release writes each malformed message twice
/// on its connection to beamlink: its next `net_adm:ping` is answered on the same
/// connection (no nodedown on either side), every message is counted under its kind in
/// `/metrics`, and the warn lines stay at one per kind and minute across all the BEAMs.
///
/// Fails if the link is closed (a `DropLink` verdict by default: the BEAM sees a nodedown),
/// without the count, or without the node-wide log limit (`bad_message.rs`: one warn line
/// per BEAM, or per message).
#[test]
fn a_beams_bad_messages_keep_its_link_by_default() {
    let epmd = Epmd::start();
    let name = format!("{}@127.0.0.1", unique_name("blkeep"));
    let bl = start_beamlink(&epmd, &name, &["--metrics", "127.0.0.1:0"]);
    let metrics = metrics_addr(&bl);
    let releases = Otp::from_env();
    let started = Instant::now();
    let mut last_beam = None;
    for &otp in &releases {
        let beam = bad_beam(otp, &epmd);
        last_beam = Some(beam.node_name().to_owned());
        assert_eq!(
            beam.eval(&format!("net_adm:ping('{name}')")).unwrap(),
            "pong"
        );
        for _round in 0..2 {
            for (kind, data) in BEAM_BAD_MESSAGES {
                assert_eq!(
                    beam.eval(&format!("SendBad('{name}', {data})")).unwrap(),
                    "ok",
                    "{otp}: {kind}"
                );
            }
        }
        // The ping goes over the same connection, after the malformed messages.
        assert_eq!(
            beam.eval(&format!("net_adm:ping('{name}')")).unwrap(),
            "pong"
        );
        assert_eq!(
            beam.eval("receive {nodedown, _, _} = D -> D after 0 -> none end")
                .unwrap(),
            "none",
            "{otp}: the connection dropped"
        );
        assert_eq!(
            bl.count(&format!("nodedown peer={}", beam.node_name())),
            0,
            "{otp}:\n{}",
            bl.log()
        );
    }
    // Each BEAM is stopped at the end of its round; the nodedown of the last one is written
    // after every warn line, so once the test's log reader has it, it has them all.
    let last_beam = last_beam.expect("BEAMLINK_OTP names a release");
    bl.wait_log(
        &format!("nodedown peer={last_beam}"),
        Duration::from_secs(30),
    );
    let minutes = started.elapsed().as_secs() as usize / 60;
    for (kind, _) in BEAM_BAD_MESSAGES {
        assert_eq!(
            scraped(metrics, &bad_series(kind)),
            2 * releases.len() as u64,
            "{kind}"
        );
        let lines = warn_lines(&bl, kind);
        assert!(
            (1..=1 + minutes).contains(&lines),
            "{kind}: {lines} warn lines in {minutes} min:\n{}",
            bl.log()
        );
    }
    assert_eq!(scraped(metrics, DROPPED_LINKS), 0);
    eprintln!(
        "kept links and counted bad messages from {}",
        releases
            .iter()
            .map(|o| o.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
}

/// With `--on-bad-message drop-link`, a BEAM of each release writes one malformed message
/// of each kind, reconnecting between them: each time beamlink closes the connection, the
/// BEAM gets `{nodedown, beamlink, [{nodedown_reason, connection_closed}, ...]}` (what a
/// BEAM that sent such a message to another BEAM gets), beamlink logs the nodedown with
/// the reason, and `/metrics` counts the message and the disconnect
/// (`beamlink_disconnects_total{reason="bad_message"}`). A second `control` message on a
/// new connection is counted but logged at debug level only.
///
/// Fails if `--on-bad-message` does not reach the node (`cli/run.rs`, `NodeBuilder`), if
/// the reader goes on after the `DropLink` verdict (`transport/connection/reader.rs`), or
/// if the log limit is per connection instead of node-wide.
#[test]
fn drop_link_closes_a_beams_connection_as_a_beam_does() {
    let epmd = Epmd::start();
    let name = format!("{}@127.0.0.1", unique_name("bldrop"));
    let bl = start_beamlink(
        &epmd,
        &name,
        &["--metrics", "127.0.0.1:0", "--on-bad-message", "drop-link"],
    );
    let metrics = metrics_addr(&bl);
    let releases = Otp::from_env();
    let started = Instant::now();
    let mut drops = 0;
    for &otp in &releases {
        let beam = bad_beam(otp, &epmd);
        let extra = [("control", BEAM_BAD_MESSAGES[1].1)];
        for (kind, data) in BEAM_BAD_MESSAGES.into_iter().chain(extra) {
            assert_eq!(
                beam.eval(&format!("net_adm:ping('{name}')")).unwrap(),
                "pong",
                "{otp}: {kind}"
            );
            assert_eq!(
                beam.eval(&format!("SendBad('{name}', {data})")).unwrap(),
                "ok",
                "{otp}: {kind}"
            );
            let reason = beam
                .eval(&format!(
                    "receive {{nodedown, '{name}', I}} -> proplists:get_value(nodedown_reason, I) \
                     after 5000 -> no_nodedown end"
                ))
                .unwrap();
            assert_eq!(reason, "connection_closed", "{otp}: {kind}:\n{}", bl.log());
            drops += 1;
            let logged = format!(
                "nodedown peer={} reason=closed on a message that does not decode ({kind})",
                beam.node_name()
            );
            bl.wait_log(&logged, Duration::from_secs(5));
        }
        assert_eq!(
            beam.eval(&format!("net_adm:ping('{name}')")).unwrap(),
            "pong"
        );
    }
    let minutes = started.elapsed().as_secs() as usize / 60;
    for (kind, _) in BEAM_BAD_MESSAGES {
        let per_release = if kind == "control" { 2 } else { 1 };
        assert_eq!(
            scraped(metrics, &bad_series(kind)),
            per_release * releases.len() as u64,
            "{kind}"
        );
        let lines = warn_lines(&bl, kind);
        assert!(
            (1..=1 + minutes).contains(&lines),
            "{kind}: {lines} warn lines in {minutes} min:\n{}",
            bl.log()
        );
    }
    assert_eq!(scraped(metrics, DROPPED_LINKS), drops);
    eprintln!(
        "{drops} connections closed as a BEAM closes them, against {}",
        releases
            .iter()
            .map(|o| o.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
}
