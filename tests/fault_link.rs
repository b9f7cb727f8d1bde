#![cfg(feature = "interop")]
//! Faults on live links (ecosystem.md part C, items 4, 5 and 9, and "nothing lost"):
//!
//! * length bombs (a 1 GiB or 0xFFFFFFFF packet length, then silence) and term bombs (a
//!   LIST_EXT, MAP_EXT or BINARY_EXT claiming 2^32-1 elements or bytes, 100 000 nested
//!   tuples) sent by a raw peer after a valid handshake, to the `beamlink run` binary: refused
//!   from the header alone, resident memory flat, the real BEAM next to it unaffected;
//! * a peer that stops reading, in the binary (memory bounded, the link dropped, others
//!   unaffected) and in the library (senders wait, then get an error);
//! * a peer that reads slowly but steadily keeps its link;
//! * messages from a BEAM through a slow consumer all arrive, in order; when a link drops
//!   mid-stream, the Rust sender gets an error for what was not accepted and the drop is
//!   reported to its monitor.
//!
//! Every test that involves a BEAM runs once per release in `BEAMLINK_OTP` (25, 27 and 29 by
//! default), the releases in parallel threads ([`support::each_release`]).
//!
//! The send-queue policy these tests pin down (see `transport::connection`):
//! * each link has one output buffer, bounded at `ConnectionConfig::send_queue_bytes` (16 MiB by
//!   default). A message is always accepted into an empty buffer, so one larger message still
//!   goes;
//! * `Connection::send` (and `Process::send`, `Node::send`) wait while the buffer is full;
//!   `Connection::try_send` fails at once with `QueueFull`;
//! * the peer must keep reading: if a write makes no progress for a whole net_ticktime, the
//!   link is dropped (`stopped reading`), waiting senders get `LinkClosed`, monitors fire
//!   `noconnection`. Bytes already accepted into the buffer are lost with the link, as on a
//!   BEAM: the loss is reported (nodedown, DOWN), never silent;
//! * a full local mailbox holds up the link it is fed from (TCP back-pressure to the BEAM);
//!   nothing is dropped.

mod support;

use beamlink::node::{Dest, Envelope, Node, SendError};
use beamlink::proto::control::Control;
use beamlink::proto::digest::Cookie;
use beamlink::proto::dist_header::DistDecoder;
use beamlink::proto::node_name::NodeName;
use beamlink::proto::term::{Atom, Pid, Term};
use bytes::BytesMut;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use support::{
    BeamNode, Ended, Epmd, Otp, PingedBeamlink, TEST_COOKIE, closed_within, dial_handshake,
    fd_count, framed, pass_through, pinged_beamlink, raw_local, registered_port, rss_kib,
    start_beamlink, unique_name,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn raw_pid(node: &str) -> Pid {
    Pid {
        node: Atom::new(node),
        id: 1,
        serial: 0,
        creation: 9,
    }
}

/// A REG_SEND from the raw peer `me` to `name` carrying `payload` (raw bytes, version byte
/// included), so that the payload can be anything, corrupt included.
fn reg_send_raw(me: &str, name: &str, payload: &[u8]) -> Vec<u8> {
    let control = Term::tuple([
        Term::Int(6),
        Term::Pid(raw_pid(me)),
        Term::atom(""),
        Term::atom(name),
    ]);
    let mut msg = pass_through(&control, None);
    msg.drain(..4);
    msg.extend_from_slice(payload);
    framed(&msg)
}

/// `net_kernel` `is_auth` through the raw link; true when the answer arrives.
async fn ping_over(
    stream: &mut TcpStream,
    decoder: &mut DistDecoder,
    leftover: &mut BytesMut,
    me: &str,
) -> bool {
    support::raw_ping(stream, decoder, leftover, &raw_pid(me)).await
}

/// A packet length of 1 GiB, then of 0xFFFFFFFF, each followed by silence or by a trickle of
/// bytes: beamlink drops that link from the 4-byte header alone (over its 64 MiB cap),
/// allocates nothing for it, and the BEAM connected next to it keeps its link.
///
/// Fails without the cap check in `proto::frame::take_frame` (the link stays open waiting
/// for a gigabyte, and the trickle is buffered).
#[test]
fn length_bombs_are_refused_from_the_header() {
    support::each_release(length_bombs_are_refused_from_the_header_with);
}

fn length_bombs_are_refused_from_the_header_with(otp: Otp) {
    let PingedBeamlink {
        beam,
        bl,
        epmd: _epmd,
        name,
        pid,
        addr,
    } = pinged_beamlink(otp, "bllen");
    let rt = runtime();
    let fds = fd_count(pid);
    for (len, trickle) in [
        (1u32 << 30, false),
        (u32::MAX, false),
        (1 << 30, true),
        (u32::MAX, true),
        (64 * 1024 * 1024 + 1, true),
    ] {
        let rss = rss_kib(pid);
        let me = format!("{}@127.0.0.1", unique_name("bomb"));
        let ended = rt.block_on(async {
            let (mut stream, _, _) =
                dial_handshake(addr, raw_local(&me, TEST_COOKIE, 9), &name).await;
            stream.write_all(&len.to_be_bytes()).await.unwrap();
            if trickle {
                // 2 MiB behind the header, as long as beamlink takes it.
                let chunk = vec![0x5a; 64 * 1024];
                for _ in 0..32 {
                    let write = stream.write_all(&chunk);
                    match tokio::time::timeout(Duration::from_secs(2), write).await {
                        Ok(Ok(())) => {}
                        _ => break,
                    }
                }
            }
            closed_within(&mut stream, Duration::from_secs(5)).await
        });
        let grown = rss_kib(pid).saturating_sub(rss);
        eprintln!("length {len:#x} (trickle {trickle}): {ended:?}, RSS grew {grown} KiB");
        assert!(
            matches!(ended, Ended::Closed(_)),
            "length {len:#x}: link still open:\n{}",
            bl.log()
        );
        assert!(grown < 1024, "length {len:#x}: RSS grew by {grown} KiB");
    }
    assert_eq!(
        support::settles(|| fd_count(pid), fds, Duration::from_secs(3)),
        Ok(())
    );
    assert!(
        bl.log().contains("over the 67108864-byte cap"),
        "the reason is logged:\n{}",
        bl.log()
    );
    assert_eq!(
        beam.eval(&format!("net_adm:ping('{name}')")).unwrap(),
        "pong"
    );
    assert_eq!(
        bl.count(&format!("nodedown peer={}", beam.node_name())),
        0,
        "{}",
        bl.log()
    );
}

/// Terms whose headers announce far more than the message holds, and a 100 000-deep
/// nesting, as the payload and as the control message of messages on a live link: each is
/// refused (logged as a corrupt term) without allocating what it announces; the link and the
/// BEAM's link stay up, and the next message on the same link is answered.
///
/// Fails if a decoder reserves what a count announces before checking the bytes (resident
/// memory jumps by gigabytes, or the node aborts), or recurses without a depth limit (stack
/// overflow kills the node).
#[test]
fn term_bombs_are_refused_and_the_link_goes_on() {
    support::each_release(term_bombs_are_refused_and_the_link_goes_on_with);
}

fn term_bombs_are_refused_and_the_link_goes_on_with(otp: Otp) {
    let PingedBeamlink {
        beam,
        bl,
        epmd: _epmd,
        name,
        pid,
        addr,
    } = pinged_beamlink(otp, "blterm");
    let me = format!("{}@127.0.0.1", unique_name("termbomb"));
    let mut deep = vec![131u8];
    for _ in 0..100_000 {
        deep.extend_from_slice(&[104, 1]);
    }
    deep.push(106);
    let bombs: Vec<(&str, Vec<u8>)> = vec![
        ("LIST_EXT 2^32-1", vec![131, 108, 0xff, 0xff, 0xff, 0xff]),
        (
            "MAP_EXT 2^32-1",
            vec![131, 116, 0xff, 0xff, 0xff, 0xff, 100, 0, 1, b'a'],
        ),
        (
            "BINARY_EXT 4 GiB",
            vec![131, 109, 0xff, 0xff, 0xff, 0xff, 1, 2, 3],
        ),
        (
            "LARGE_TUPLE_EXT 2^32-1",
            vec![131, 105, 0xff, 0xff, 0xff, 0xff],
        ),
        ("100 000 nested tuples", deep),
    ];
    let rt = runtime();
    rt.block_on(async {
        let (mut stream, established, mut leftover) =
            dial_handshake(addr, raw_local(&me, TEST_COOKIE, 9), &name).await;
        // One decoder for the link: beamlink's replies use the atom cache it builds up.
        let mut decoder = DistDecoder::new(established.flags, 1 << 20);
        assert!(ping_over(&mut stream, &mut decoder, &mut leftover, &me).await);
        for (what, bomb) in &bombs {
            let rss = rss_kib(pid);
            // As the payload of a REG_SEND to net_kernel, and as the control message.
            stream
                .write_all(&reg_send_raw(&me, "net_kernel", bomb))
                .await
                .unwrap();
            let mut as_control = vec![112u8];
            as_control.extend_from_slice(bomb);
            stream.write_all(&framed(&as_control)).await.unwrap();
            let answered = ping_over(&mut stream, &mut decoder, &mut leftover, &me).await;
            let grown = rss_kib(pid).saturating_sub(rss);
            eprintln!("{what}: RSS grew {grown} KiB; link answers: {answered}");
            assert!(
                answered,
                "{what}: the link no longer answers:\n{}",
                bl.log()
            );
            // Refused from the header: nothing for what the term announces. The deep
            // nesting is refused at the depth limit, after reading that far: a bound in
            // proportion to the bytes received (sent twice, kept once in the read buffer).
            let bound = 1024 + 8 * bomb.len() as u64 / 1024;
            assert!(
                grown < bound,
                "{what}: RSS grew by {grown} KiB (bound {bound})"
            );
        }
        // While the raw peer still holds its connection: dropping the stream below ends
        // the link normally, and that nodedown is not the bombs' doing.
        assert_eq!(bl.count(&format!("nodedown peer={me}")), 0, "{}", bl.log());
    });
    assert!(bl.log().contains("corrupt term"), "{}", bl.log());
    assert_eq!(
        beam.eval(&format!("net_adm:ping('{name}')")).unwrap(),
        "pong"
    );
}

/// A raw peer asks `rig_echo` for 64 KiB echoes as fast as it can and never reads the
/// answers. beamlink's output buffer for that link fills (16 MiB), then the echo service waits
/// (and with it that link's reader: the peer's own writes stall too); after a net_ticktime
/// (4 s here) without write progress, the link is dropped. Resident memory stays bounded by
/// the buffer, and a BEAM pinging beamlink all along never waits.
///
/// Fails without the write deadline of `transport::connection` (the link never drops), or if the
/// output buffer were unbounded (memory grows with what the peer sends).
#[test]
fn a_peer_that_stops_reading_is_dropped_and_nobody_else_waits() {
    support::each_release(a_peer_that_stops_reading_is_dropped_and_nobody_else_waits_with);
}

fn a_peer_that_stops_reading_is_dropped_and_nobody_else_waits_with(otp: Otp) {
    let epmd = Epmd::start();
    let name = format!("{}@127.0.0.1", unique_name("blstall"));
    let bl = start_beamlink(&epmd, &name, &["--bench-services", "--net-ticktime", "4"]);
    let beam = BeamNode::builder(otp, epmd.port())
        .arg("-kernel")
        .arg("net_ticktime")
        .arg("4")
        .start();
    assert_eq!(
        beam.eval(&format!("net_adm:ping('{name}')")).unwrap(),
        "pong"
    );
    let pid = bl.pid();
    let addr: SocketAddr = format!("127.0.0.1:{}", registered_port(&epmd, &name))
        .parse()
        .unwrap();
    let rss = rss_kib(pid);
    let me = format!("{}@127.0.0.1", unique_name("deaf"));
    let rt = runtime();
    let flood = rt.spawn({
        let name = name.clone();
        let me = me.clone();
        async move {
            let (mut stream, _, _) =
                dial_handshake(addr, raw_local(&me, TEST_COOKIE, 9), &name).await;
            let blob = Term::binary(vec![7u8; 64 * 1024]);
            let ping = Term::tuple([Term::atom("ping"), Term::Pid(raw_pid(&me)), blob]);
            let control = Term::tuple([
                Term::Int(6),
                Term::Pid(raw_pid(&me)),
                Term::atom(""),
                Term::atom("rig_echo"),
            ]);
            let packet = pass_through(&control, Some(&ping));
            let started = Instant::now();
            let mut sent = 0usize;
            // Ticks are not needed: beamlink sees our requests as traffic until it stops
            // reading us, and then it is its write deadline that counts.
            loop {
                let write = stream.write_all(&packet);
                match tokio::time::timeout(Duration::from_secs(30), write).await {
                    Ok(Ok(())) => sent += packet.len(),
                    Ok(Err(_)) => break,
                    Err(_) => panic!("the link was not dropped within 30 s"),
                }
            }
            (sent, started.elapsed())
        }
    });
    // While the flood goes on, the BEAM's link answers.
    let mut pings = 0;
    let mut peak = rss;
    while !flood.is_finished() {
        assert_eq!(
            beam.eval(&format!("net_adm:ping('{name}')")).unwrap(),
            "pong"
        );
        pings += 1;
        peak = peak.max(rss_kib(pid));
        std::thread::sleep(Duration::from_millis(200));
    }
    let (sent, took) = rt.block_on(flood).unwrap();
    eprintln!(
        "the deaf peer wrote {} KiB before beamlink dropped it after {took:?}; \
         {pings} pings meanwhile; RSS {rss} KiB -> peak {peak} KiB",
        sent / 1024
    );
    assert!(pings >= 3, "the BEAM was not served meanwhile");
    bl.wait_log(&format!("nodedown peer={me}"), Duration::from_secs(5));
    assert!(
        bl.log().contains("stopped reading"),
        "the reason is logged:\n{}",
        bl.log()
    );
    let grown = peak.saturating_sub(rss);
    assert!(
        grown < 48 * 1024,
        "RSS grew by {grown} KiB: more than the 16 MiB buffer and the socket buffers"
    );
    assert_eq!(
        bl.count(&format!("nodedown peer={}", beam.node_name())),
        0,
        "{}",
        bl.log()
    );
}

/// A library node on loopback, using `epmd` to find BEAMs (not registered itself).
fn rust_node(
    rt: &tokio::runtime::Runtime,
    epmd: &Epmd,
    alive: &str,
    ticktime: Duration,
    mailbox: usize,
) -> Node {
    let builder = Node::builder()
        .name(format!("{alive}@127.0.0.1"))
        .cookie(Cookie::new(TEST_COOKIE))
        .no_epmd()
        .epmd_port(epmd.port())
        .listen(SocketAddr::from(([127, 0, 0, 1], 0)))
        .net_ticktime(ticktime)
        .tune(move |config| config.mailbox_capacity = mailbox);
    rt.block_on(builder.start()).unwrap()
}

/// The library: a raw peer that completed a handshake and then reads nothing. A Rust
/// process sends it 1 MiB messages: `send` waits once the output buffer is full, and when
/// the link is dropped for making no progress (net_ticktime 2 s here), the waiting send
/// returns `LinkClosed`; a `try_send` on the full link fails at once with `QueueFull`. A
/// Rust process sending to a real BEAM meanwhile is never held up.
///
/// Fails if `send` dropped messages instead of waiting (it would never block nor fail), or
/// if the waiting sender were not woken when the link drops (the send hangs).
#[test]
fn senders_to_a_peer_that_stops_reading_wait_then_get_an_error() {
    support::each_release(senders_to_a_peer_that_stops_reading_wait_then_get_an_error_with);
}

fn senders_to_a_peer_that_stops_reading_wait_then_get_an_error_with(otp: Otp) {
    let epmd = Epmd::start();
    let beam = BeamNode::builder(otp, epmd.port())
        .arg("-kernel")
        .arg("net_ticktime")
        .arg("2")
        .start();
    beam.eval("register(sink, self()), ok").unwrap();
    let rt = runtime();
    let _guard = rt.enter();
    let node = rust_node(
        &rt,
        &epmd,
        &unique_name("rsstall"),
        Duration::from_secs(2),
        64,
    );
    let addr = node.listen_addr().unwrap();
    let me = format!("{}@127.0.0.1", unique_name("deaf"));
    let our_name = node.name().to_string();
    let (stream, _, _) = rt.block_on(dial_handshake(
        addr,
        raw_local(&me, TEST_COOKIE, 9),
        &our_name,
    ));
    // The peer keeps ticking so that only the write side can fail.
    let (mut reader, mut writer) = stream.into_split();
    let ticker = rt.spawn(async move {
        loop {
            if writer.write_all(&[0, 0, 0, 0]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
    let beam_name = NodeName::parse(beam.node_name()).unwrap();
    let outcome = rt.block_on(async {
        let peer = NodeName::parse(&me).unwrap();
        let up = support::node_up(&node, &peer, Duration::from_secs(5)).await;
        let link = node.connection(&peer).filter(|_| up).expect("link up");
        let sender = node.spawn_process();
        let to = Dest::Pid(raw_pid(&me));
        let big = Term::binary(vec![1u8; 1 << 20]);
        let started = Instant::now();
        let mut accepted = 0;
        let mut saw_full = false;
        let error = loop {
            // While it waits, another process keeps talking to the BEAM.
            let other = node.spawn_process();
            other
                .send(Dest::name("sink", &beam_name), Term::atom("still_here"))
                .await
                .expect("the BEAM's link is not held up");
            let probe = Control::Send {
                from: None,
                to: raw_pid(&me),
                token: None,
                message: Term::atom("probe"),
            };
            if link.try_send(&probe) == Err(beamlink::transport::connection::SendError::QueueFull) {
                saw_full = true;
            }
            let send = sender.send(to.clone(), big.clone());
            match tokio::time::timeout(Duration::from_secs(20), send).await {
                Ok(Ok(())) => accepted += 1,
                Ok(Err(e)) => break e,
                Err(_) => panic!("send neither succeeded nor failed within 20 s"),
            }
        };
        (accepted, saw_full, error, started.elapsed())
    });
    let (accepted, saw_full, error, took) = outcome;
    eprintln!("{accepted} x 1 MiB accepted, then after {took:?}: {error}");
    assert!(
        matches!(
            error,
            SendError::Link(beamlink::transport::connection::SendError::LinkClosed)
                | SendError::Connect(_)
        ),
        "{error:?}"
    );
    assert!(accepted >= 8, "the buffer took {accepted} MiB");
    assert!(saw_full, "try_send never reported a full buffer");
    let mut buf = vec![0u8; 1 << 16];
    let closed = rt.block_on(async {
        loop {
            match tokio::time::timeout(Duration::from_secs(5), reader.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => {}
                Err(_) => return false,
            }
        }
    });
    assert!(closed, "beamlink did not close the stalled connection");
    ticker.abort();
    let got = beam
        .eval("length([M || M <- element(2, process_info(self(), messages)), M =:= still_here])")
        .unwrap();
    assert!(
        got.parse::<usize>().unwrap() >= accepted,
        "the BEAM got {got} messages"
    );
    rt.block_on(node.shutdown());
}

/// A peer that reads slowly but steadily (64 KiB every 100 ms) while beamlink writes 8 MiB to
/// it with net_ticktime 4 s: the writes take several net_ticktimes in total (beyond what the
/// kernel's socket buffers absorb) but progress all the time, so the link must stay up (the
/// BEAM drops a link for silence, not for a slow reader). Progress is seen when the kernel
/// reports room in the socket's send buffer, once about a third of it is free (up to 1.3 MiB
/// with Linux's default 4 MiB maximum): a reader must take at least that much per
/// net_ticktime.
///
/// Fails when the write deadline covers the whole buffered output instead of each write's
/// progress (the 7 MiB gathered behind the first message cannot drain within 4 s).
#[test]
fn a_slow_but_steady_reader_keeps_its_link() {
    let epmd = Epmd::start();
    let rt = runtime();
    let _guard = rt.enter();
    let node = rust_node(
        &rt,
        &epmd,
        &unique_name("rsslow"),
        Duration::from_secs(4),
        64,
    );
    let addr = node.listen_addr().unwrap();
    let me = format!("{}@127.0.0.1", unique_name("slow"));
    let our_name = node.name().to_string();
    // A small receive buffer (no autotuning), so the kernel cannot absorb the messages.
    let stream = rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(64 * 1024).unwrap();
        let stream = socket.connect(addr).await.unwrap();
        let machine = beamlink::proto::handshake::Initiator::new(
            raw_local(&me, TEST_COOKIE, 9),
            NodeName::parse(&our_name).unwrap(),
            5,
        );
        beamlink::transport::handshake::initiate(
            stream,
            addr,
            machine,
            Duration::from_secs(5),
            || true,
        )
        .await
        .unwrap()
        .stream
    });
    let (mut reader, mut writer) = stream.into_split();
    let ticker = rt.spawn(async move {
        loop {
            if writer.write_all(&[0, 0, 0, 0]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
    let read = rt.spawn(async move {
        let mut total = 0usize;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => return total,
                Ok(n) => total += n,
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let sent = rt.block_on(async {
        let sender = node.spawn_process();
        for _ in 0..8 {
            sender
                .send(Dest::Pid(raw_pid(&me)), Term::binary(vec![3u8; 1 << 20]))
                .await
                .unwrap();
        }
        // Wait until everything went out, or the link dropped.
        let link = node
            .connection(&NodeName::parse(&me).unwrap())
            .expect("link");
        let started = Instant::now();
        while link
            .stats()
            .bytes_out
            .load(std::sync::atomic::Ordering::Relaxed)
            < 8 << 20
            && link.is_up()
            && started.elapsed() < Duration::from_secs(30)
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        (link.is_up(), started.elapsed())
    });
    eprintln!(
        "8 MiB to a slow reader: link up {} after {:?}",
        sent.0, sent.1
    );
    assert!(
        sent.0,
        "a reader that keeps reading was dropped as stalled after {:?}",
        sent.1
    );
    assert!(sent.1 > Duration::from_secs(4), "the reader was not slow");
    ticker.abort();
    rt.block_on(node.shutdown());
    let _ = rt.block_on(read);
}

/// "Nothing lost": a BEAM sends 20 000 numbered messages to a Rust process whose mailbox
/// holds 16 and which takes its time; every message arrives, in order. The full mailbox holds
/// up the link (and, through TCP, the BEAM's sender) instead of dropping anything.
///
/// Fails if delivery into a full mailbox dropped messages (`try_send` in `Node::deliver`).
#[test]
fn messages_through_a_slow_consumer_all_arrive_in_order() {
    support::each_release(messages_through_a_slow_consumer_all_arrive_in_order_with);
}

fn messages_through_a_slow_consumer_all_arrive_in_order_with(otp: Otp) {
    let epmd = Epmd::start();
    let beam = BeamNode::start(otp, epmd.port());
    let rt = runtime();
    let _guard = rt.enter();
    let node = rust_node(
        &rt,
        &epmd,
        &unique_name("rsslowc"),
        Duration::from_secs(60),
        16,
    );
    let mut consumer = node.spawn_process();
    consumer.register("slow_consumer").unwrap();
    // Not in EPMD: the BEAM uses the connection we make.
    rt.block_on(node.connect(&NodeName::parse(beam.node_name()).unwrap()))
        .unwrap();
    const N: i64 = 20_000;
    let receiving = rt.spawn(async move {
        let mut got = Vec::with_capacity(N as usize);
        while got.len() < N as usize {
            match consumer.recv_timeout(Duration::from_secs(30)).await {
                Some(Envelope::Message { message, .. }) => {
                    got.push(message.as_i64().expect("a number"));
                    if got.len() % 500 == 0 {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
                Some(other) => panic!("unexpected {other:?}"),
                None => break,
            }
        }
        got
    });
    let target = node.name().to_string();
    let started = Instant::now();
    let sent = beam
        .eval_timeout(
            &format!(
                "T = {{slow_consumer, '{target}'}}, \
                 lists:foreach(fun(I) -> T ! I end, lists:seq(1, {N})), sent"
            ),
            Duration::from_secs(60),
        )
        .unwrap();
    assert_eq!(sent, "sent");
    let got = rt.block_on(receiving).unwrap();
    eprintln!(
        "{} messages through a 16-message mailbox in {:?}",
        got.len(),
        started.elapsed()
    );
    assert_eq!(got.len(), N as usize, "messages lost");
    assert!(
        got.iter().zip(1..).all(|(a, b)| *a == b),
        "out of order: {:?}",
        got.iter().zip(1..).find(|(a, b)| **a != *b)
    );
    rt.block_on(node.shutdown());
}

/// A Rust process that stops reading its (16-message) mailbox for three net_ticktimes
/// while a BEAM keeps sending to it: the full mailbox holds up the link's reader, so the
/// BEAM's ticks wait unread in the socket too. That is our own back-pressure, not a silent
/// peer: the link must stay up (the BEAM sees no nodedown), and once the process reads
/// again, every message arrives, in order.
///
/// Fails when tick supervision counts the intervals in which the reader waited for a full
/// mailbox as silence (`DisconnectReason::TickTimeout` after a net_ticktime).
#[test]
fn a_consumer_pausing_longer_than_net_ticktime_keeps_the_link() {
    support::each_release(a_consumer_pausing_longer_than_net_ticktime_keeps_the_link_with);
}

fn a_consumer_pausing_longer_than_net_ticktime_keeps_the_link_with(otp: Otp) {
    let epmd = Epmd::start();
    let beam = BeamNode::builder(otp, epmd.port())
        .arg("-kernel")
        .arg("net_ticktime")
        .arg("2")
        .start();
    beam.eval("net_kernel:monitor_nodes(true, [{node_type, all}]), ok")
        .unwrap();
    let rt = runtime();
    let _guard = rt.enter();
    let node = rust_node(
        &rt,
        &epmd,
        &unique_name("rspause"),
        Duration::from_secs(2),
        16,
    );
    let mut events = node.events();
    let mut consumer = node.spawn_process();
    consumer.register("pausing").unwrap();
    let beam_name = NodeName::parse(beam.node_name()).unwrap();
    rt.block_on(node.connect(&beam_name)).unwrap();
    const N: i64 = 2_000;
    let target = node.name().to_string();
    beam.eval(&format!(
        "spawn(fun() -> [begin {{pausing, '{target}'}} ! I, timer:sleep(2) end \
         || I <- lists:seq(1, {N})] end), ok"
    ))
    .unwrap();
    // Three net_ticktimes without reading.
    std::thread::sleep(Duration::from_secs(6));
    let got = rt.block_on(async {
        let mut got = Vec::new();
        while got.len() < N as usize {
            match consumer.recv_timeout(Duration::from_secs(10)).await {
                Some(Envelope::Message { message, .. }) => got.push(message.as_i64().unwrap()),
                other => panic!("after {} messages: {other:?}", got.len()),
            }
        }
        got
    });
    assert!(
        got.iter().zip(1..).all(|(a, b)| *a == b),
        "out of order or lost"
    );
    let downs = rt.block_on(async {
        let mut downs = Vec::new();
        while let Ok(Ok(e)) = tokio::time::timeout(Duration::from_millis(100), events.recv()).await
        {
            if let beamlink::node::NodeEvent::NodeDown { reason, .. } = e {
                downs.push(reason.to_string());
            }
        }
        downs
    });
    assert!(downs.is_empty(), "the link dropped: {downs:?}");
    let beam_saw = beam
        .eval("receive {nodedown, _, _} = D -> D after 0 -> none end")
        .unwrap();
    assert_eq!(beam_saw, "none");
    rt.block_on(node.shutdown());
}

/// "Nothing lost", the other way: a Rust process streams numbered messages to a BEAM
/// process, monitoring it. The BEAM process, after 3 000 of them, bars beamlink
/// (`net_kernel:allow/1`) and drops the connection. The BEAM received 1..k in order with no
/// gap; every message after the last one the sender had accepted got an error (the link is
/// gone and a new connection is refused); what was accepted but not delivered is exactly what
/// was in flight when the link dropped, and the drop was reported: the monitor fired
/// `noconnection`.
///
/// Fails if sends after the drop succeeded silently (dropped on the floor), or if the monitor
/// did not fire.
#[test]
fn a_link_dropped_mid_stream_is_reported_to_the_sender() {
    support::each_release(a_link_dropped_mid_stream_is_reported_to_the_sender_with);
}

fn a_link_dropped_mid_stream_is_reported_to_the_sender_with(otp: Otp) {
    let epmd = Epmd::start();
    let beam = BeamNode::start(otp, epmd.port());
    let rt = runtime();
    let _guard = rt.enter();
    let node = rust_node(
        &rt,
        &epmd,
        &unique_name("rsdrop"),
        Duration::from_secs(60),
        64,
    );
    let me = node.name().to_string();
    beam.eval(&format!(
        "Sink = spawn(fun() -> \
           Loop = fun L(Acc) -> receive \
             {{get, From}} -> From ! {{got, lists:reverse(Acc)}}; \
             I when is_integer(I), I =:= 3000 -> \
               net_kernel:allow(['nobody@127.0.0.1']), \
               erlang:disconnect_node('{me}'), L([I | Acc]); \
             I when is_integer(I) -> L([I | Acc]) end end, \
           Loop([]) end), register(stream_sink, Sink), ok"
    ))
    .unwrap();
    let beam_name = NodeName::parse(beam.node_name()).unwrap();
    let (accepted, error, down) = rt.block_on(async {
        let mut sender = node.spawn_process();
        let sink = Dest::name("stream_sink", &beam_name);
        let mref = sender.monitor(&sink).await;
        let mut accepted = 0i64;
        let error = loop {
            match sender.send(sink.clone(), Term::Int(accepted + 1)).await {
                Ok(()) => accepted += 1,
                Err(e) => break e,
            }
            assert!(accepted < 10_000_000, "sends never failed");
        };
        let down = match sender.recv_timeout(Duration::from_secs(10)).await {
            Some(Envelope::Down {
                reference, reason, ..
            }) if reference == mref => reason,
            other => panic!("expected the monitor to fire, got {other:?}"),
        };
        (accepted, error, down)
    });
    eprintln!("accepted {accepted}, then: {error}; monitor: {down}");
    // The sink answers `get` only after its backlog: everything delivered before the drop is
    // still queued behind it. The BEAM checks the order itself; printing a list of tens of
    // thousands of integers back through the shell is what made this slow and fragile.
    // Without an answer, where the sink and net_kernel stand says why (pass 9 of a ten-pass
    // loop once saw `no_answer` on OTP 29 under the full suite's load; not reproduced in 40
    // runs alone).
    let got = beam
        .eval_timeout(
            "stream_sink ! {get, self()}, \
             receive {got, L} -> N = length(L), {N, L =:= lists:seq(1, N)} \
             after 60000 -> {no_answer, \
               [{P, catch erlang:process_info(whereis(P), \
                   [status, current_stacktrace, message_queue_len])} \
                || P <- [stream_sink, net_kernel]]} end",
            Duration::from_secs(70),
        )
        .unwrap();
    assert!(
        !got.starts_with("{no_answer"),
        "the sink did not answer within 60 s: {got}"
    );
    let (delivered, in_order) = got
        .trim_matches(|c| c == '{' || c == '}')
        .split_once(',')
        .unwrap_or_else(|| panic!("not a {{count, in_order}} answer from the sink: {got}"));
    let delivered: i64 = delivered.parse().expect("a count");
    eprintln!("delivered {delivered} of {accepted}");
    assert_eq!(in_order, "true", "the BEAM got a gap or reordering");
    assert!(
        (3000..=accepted).contains(&delivered),
        "delivered {delivered} of {accepted} accepted"
    );
    assert!(
        matches!(error, SendError::Connect(_) | SendError::Link(_)),
        "{error:?}"
    );
    assert!(down.is_atom("noconnection"), "{down}");
    rt.block_on(node.shutdown());
}
