#![cfg(feature = "interop")]
//! Handshakes that stall or die at each step, in both roles, against the `beamlink run`
//! binary (ecosystem.md part C, items 7 and 19; B1 `ei_tmo_SUITE`): every attempt fails
//! within the setup timeout (7 s, the BEAM's `net_setuptime`), leaves no file descriptor, task
//! or half-open peer entry behind, a dial is retried, and the real BEAM connected next to it
//! never notices.
//!
//! The misbehaving peer is a raw socket driven by beamlink's own handshake state machines, so
//! it can stop or reset (SO_LINGER 0) between any two messages; a real BEAM is also stopped
//! and `kill -9`ed in the middle of a handshake.
//!
//! Every test that involves a BEAM runs once per release in `BEAMLINK_OTP` (25, 27 and 29 by
//! default), the releases in parallel threads ([`support::each_release`]).

mod support;

use beamlink::epmd::register;
use beamlink::proto::epmd::{Alive2Request, AliveName};
use beamlink::proto::handshake::{Acceptor, AcceptorStep, Initiator, Status, take_packet};
use beamlink::proto::node_name::NodeName;
use bytes::{Bytes, BytesMut};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use support::{
    BeamNode, Ended, Epmd, Otp, PingedBeamlink, TEST_COOKIE, beamlink_stats, closed_within,
    dial_handshake, fd_count, pinged_beamlink, raw_local, reset, rss_kib, settles, start_beamlink,
    unique_name, with_runtime,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// beamlink's handshake setup timeout (`NodeConfig::setup_timeout`).
const SETUP_TIMEOUT: Duration = Duration::from_secs(7);
/// Scheduling slack on a loaded 2-core machine, on top of the setup timeout.
const SLACK: Duration = Duration::from_secs(4);

/// What the raw peer does once it reached its step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// Keeps the connection open and says nothing more: beamlink must give up by itself.
    Stall,
    /// Resets the connection (SO_LINGER 0).
    Reset,
    /// Closes it normally (FIN).
    Close,
}

/// Starts `beamlink run` registered with `epmd`, with `extra` arguments.
/// Reads one 2-byte-framed handshake message.
async fn read_packet(stream: &mut TcpStream, buf: &mut BytesMut) -> Bytes {
    loop {
        if let Some(p) = take_packet(buf) {
            return p;
        }
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read_buf(buf))
            .await
            .expect("beamlink answers within 10 s")
            .expect("read");
        assert!(n > 0, "beamlink closed the connection early");
    }
}

/// Steps at which the raw initiator stops, against beamlink as acceptor.
#[derive(Clone, Copy, Debug)]
enum DialerStop {
    /// TCP connected, nothing sent.
    Connected,
    /// Our name sent, beamlink's status and challenge not read.
    NameSent,
    /// Status and challenge read, no reply sent.
    ChallengeRead,
    /// Half of the challenge reply sent.
    HalfReply,
    /// The whole reply sent: beamlink's ack (and the link) may already be up.
    ReplySent,
}

/// Plays a raw initiator called `me` against beamlink at `addr` up to `step`, then applies
/// `fault`. Returns how the connection ended (for `Stall`, the time beamlink took to close it).
async fn initiator_until(
    addr: SocketAddr,
    me: &str,
    beamlink: &str,
    step: DialerStop,
    fault: Fault,
) -> Ended {
    let mut stream = TcpStream::connect(addr).await.expect("connect to beamlink");
    let started = Instant::now();
    let mut machine = Initiator::new(
        raw_local(me, TEST_COOKIE, 9),
        NodeName::parse(beamlink).unwrap(),
        77,
    );
    let mut out = BytesMut::new();
    let mut buf = BytesMut::new();
    if !matches!(step, DialerStop::Connected) {
        machine.start(&mut out);
        stream.write_all(&out).await.unwrap();
        out.clear();
    }
    if matches!(
        step,
        DialerStop::ChallengeRead | DialerStop::HalfReply | DialerStop::ReplySent
    ) {
        // Status, then the challenge; the machine writes our reply into `out`.
        for _ in 0..2 {
            let p = read_packet(&mut stream, &mut buf).await;
            let _ = machine
                .receive(&p, &mut out)
                .expect("valid status/challenge");
        }
    }
    match step {
        DialerStop::HalfReply => {
            stream.write_all(&out[..out.len() / 2]).await.unwrap();
        }
        DialerStop::ReplySent => stream.write_all(&out).await.unwrap(),
        _ => {}
    }
    match fault {
        Fault::Stall => {
            let ended = closed_within(&mut stream, SETUP_TIMEOUT + SLACK).await;
            match ended {
                // Measured from the connect: the setup timeout runs per step.
                Ended::Closed(_) => Ended::Closed(started.elapsed()),
                open => open,
            }
        }
        Fault::Reset => {
            reset(stream);
            Ended::Closed(started.elapsed())
        }
        Fault::Close => {
            drop(stream);
            Ended::Closed(started.elapsed())
        }
    }
}

/// beamlink accepting: a raw initiator stops (stalls, resets, closes) at each step of the
/// handshake, all at once. Each stalled connection is closed by beamlink within the setup
/// timeout; afterwards its file descriptors, tasks, links and pending handshakes are back to
/// where they were, every fake name can complete a handshake (no stale half-open entry would
/// answer `nok`), and the real BEAM connected alongside kept its link.
///
/// Fails without the per-step timeout of `transport::handshake` (stalled connections stay
/// open) or without `peers.map.remove` in `Node::accept_one`'s error path (pending stays 1
/// and the same name is refused with `nok`).
#[test]
fn a_peer_dialling_beamlink_may_stall_or_vanish_at_any_step() {
    support::each_release(a_peer_dialling_beamlink_may_stall_or_vanish_at_any_step_with);
}

fn a_peer_dialling_beamlink_may_stall_or_vanish_at_any_step_with(otp: Otp) {
    let PingedBeamlink {
        beam,
        bl,
        epmd: _epmd,
        name,
        pid,
        addr,
    } = pinged_beamlink(otp, "blhsacc");
    let fds = fd_count(pid);
    let before = beamlink_stats(&beam, &name);
    assert_eq!((before.links, before.pending), (1, 0), "{before:?}");

    let steps = [
        DialerStop::Connected,
        DialerStop::NameSent,
        DialerStop::ChallengeRead,
        DialerStop::HalfReply,
        DialerStop::ReplySent,
    ];
    let faults = [Fault::Stall, Fault::Reset, Fault::Close];
    let cases: Vec<(String, DialerStop, Fault)> = steps
        .iter()
        .flat_map(|&s| faults.iter().map(move |&f| (s, f)))
        .enumerate()
        .map(|(i, (s, f))| {
            (
                format!("{}@127.0.0.1", unique_name(&format!("raw{i}"))),
                s,
                f,
            )
        })
        .collect();
    let outcomes = with_runtime(async {
        let tasks: Vec<_> = cases
            .iter()
            .cloned()
            .map(|(me, step, fault)| {
                let name = name.clone();
                tokio::spawn(async move {
                    let ended = initiator_until(addr, &me, &name, step, fault).await;
                    (me, step, fault, ended)
                })
            })
            .collect();
        let mut outcomes = Vec::new();
        for t in tasks {
            outcomes.push(t.await.unwrap());
        }
        outcomes
    });
    for (me, step, fault, ended) in &outcomes {
        eprintln!("acceptor role: {step:?}/{fault:?} as {me}: {ended:?}");
        match (step, fault, ended) {
            // The complete reply makes a link; stalling on it is a healthy idle link.
            (DialerStop::ReplySent, Fault::Stall, _) => {}
            (_, _, Ended::Closed(after)) => assert!(
                *after <= SETUP_TIMEOUT + SLACK,
                "{step:?}/{fault:?}: closed after {after:?}"
            ),
            (_, _, Ended::Open) => panic!(
                "{step:?}/{fault:?}: beamlink kept a stalled handshake open past the setup \
                 timeout:\n{}",
                bl.log()
            ),
        }
    }
    // The stalled-after-reply connections became links; they were dropped with the runtime.
    let back = settles(|| fd_count(pid), fds, Duration::from_secs(5));
    assert_eq!(back, Ok(()), "file descriptors: {fds} before");
    let after = settles(
        || beamlink_stats(&beam, &name),
        before,
        Duration::from_secs(5),
    );
    assert_eq!(after, Ok(()), "stats before: {before:?}");

    // Every name can connect now: nothing half-open remains for it.
    with_runtime(async {
        for (me, _, _, _) in &outcomes {
            let (stream, established, _) =
                dial_handshake(addr, raw_local(me, TEST_COOKIE, 10), &name).await;
            assert_eq!(established.peer.as_str(), name);
            drop(stream);
        }
    });
    let back = settles(|| fd_count(pid), fds, Duration::from_secs(5));
    assert_eq!(back, Ok(()), "file descriptors: {fds} before");
    assert_eq!(
        beam.eval(&format!("net_adm:ping('{name}')")).unwrap(),
        "pong"
    );
    let beam_peer = format!("nodedown peer={}", beam.node_name());
    assert_eq!(bl.count(&beam_peer), 0, "{}", bl.log());
    assert!(
        bl.log().contains("incoming connection failed"),
        "failures are logged:\n{}",
        bl.log()
    );
}

/// Where the raw acceptor stops, against beamlink dialling it.
#[derive(Clone, Copy, Debug)]
enum AcceptorStop {
    /// TCP accepted, nothing read.
    Accepted,
    /// beamlink's name read, no status sent.
    NameRead,
    /// Status `ok` sent, no challenge.
    StatusSent,
    /// Status and challenge sent, beamlink's reply not read.
    ChallengeSent,
    /// beamlink's reply read, no ack.
    ReplyRead,
    /// Half of the ack sent.
    HalfAck,
}

/// Plays one raw acceptor on an accepted `stream` up to `step`, then applies `fault`;
/// `None` completes the handshake and keeps the link (returned).
async fn acceptor_until(
    mut stream: TcpStream,
    me: &str,
    plan: Option<(AcceptorStop, Fault)>,
) -> (Ended, Option<TcpStream>) {
    let started = Instant::now();
    let mut machine = Acceptor::new(raw_local(me, TEST_COOKIE, 11), 4242);
    let mut out = BytesMut::new();
    let mut buf = BytesMut::new();
    let step = plan.map(|(s, _)| s);
    if !matches!(step, Some(AcceptorStop::Accepted)) {
        let name = read_packet(&mut stream, &mut buf).await;
        match machine.receive(&name, &mut out).expect("beamlink's name") {
            AcceptorStep::NameReceived { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
        machine.send_status(Status::Ok, &mut out).unwrap();
        // `out` holds the status, then the challenge.
        let status_len = 2 + u16::from_be_bytes([out[0], out[1]]) as usize;
        match step {
            Some(AcceptorStop::NameRead) => {}
            Some(AcceptorStop::StatusSent) => {
                stream.write_all(&out[..status_len]).await.unwrap();
            }
            _ => {
                stream.write_all(&out).await.unwrap();
                out.clear();
                if !matches!(step, Some(AcceptorStop::ChallengeSent)) {
                    let reply = read_packet(&mut stream, &mut buf).await;
                    let done = machine.receive(&reply, &mut out).expect("beamlink's reply");
                    match step {
                        Some(AcceptorStop::HalfAck) => {
                            stream.write_all(&out[..out.len() / 2]).await.unwrap();
                        }
                        None => {
                            assert!(matches!(done, AcceptorStep::Done(_)), "{done:?}");
                            stream.write_all(&out).await.unwrap();
                            return (Ended::Open, Some(stream));
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    let fault = plan.map(|(_, f)| f).unwrap_or(Fault::Stall);
    let ended = match fault {
        Fault::Stall => match closed_within(&mut stream, SETUP_TIMEOUT + SLACK).await {
            Ended::Closed(_) => Ended::Closed(started.elapsed()),
            open => open,
        },
        Fault::Reset => {
            reset(stream);
            Ended::Closed(started.elapsed())
        }
        Fault::Close => {
            drop(stream);
            Ended::Closed(started.elapsed())
        }
    };
    (ended, None)
}

/// beamlink dialling a `--connect` peer that is a raw acceptor: each attempt stops at the next
/// step (stall or reset); beamlink gives up within the setup timeout, dials again (the retry
/// is scheduled: the next connection arrives), and between attempts holds exactly the file
/// descriptors and tasks it held after the first failure. The last attempt completes and the
/// link comes up. The real BEAM, also a `--connect` peer, keeps its link throughout.
///
/// Fails without the per-step timeout of `transport::handshake` (the first stalled attempt
/// never ends), or without the retry of `cluster::run` (no next connection).
#[test]
fn a_peer_beamlink_dials_may_stall_or_vanish_at_any_step() {
    support::each_release(a_peer_beamlink_dials_may_stall_or_vanish_at_any_step_with);
}

fn a_peer_beamlink_dials_may_stall_or_vanish_at_any_step_with(otp: Otp) {
    let epmd = Epmd::start();
    let beam = BeamNode::start(otp, epmd.port());
    let fake = format!("{}@127.0.0.1", unique_name("rawacc"));
    let name = format!("{}@127.0.0.1", unique_name("blhsini"));
    // Each stall costs a setup timeout: one per step beamlink waits in (status, challenge,
    // ack; the ack once whole-but-absent, once half-sent); resets and closes everywhere.
    let plans = [
        Some((AcceptorStop::Accepted, Fault::Reset)),
        Some((AcceptorStop::NameRead, Fault::Stall)),
        Some((AcceptorStop::NameRead, Fault::Reset)),
        Some((AcceptorStop::StatusSent, Fault::Stall)),
        Some((AcceptorStop::StatusSent, Fault::Close)),
        Some((AcceptorStop::ChallengeSent, Fault::Stall)),
        Some((AcceptorStop::ChallengeSent, Fault::Reset)),
        Some((AcceptorStop::ReplyRead, Fault::Reset)),
        Some((AcceptorStop::ReplyRead, Fault::Close)),
        Some((AcceptorStop::HalfAck, Fault::Stall)),
        Some((AcceptorStop::HalfAck, Fault::Reset)),
        None,
    ];
    let epmd_addr: SocketAddr = format!("127.0.0.1:{}", epmd.port()).parse().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (listener, registration) = runtime.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let alive = AliveName::new(fake.split('@').next().unwrap()).unwrap();
        let registration = register(
            epmd_addr,
            &Alive2Request::new(alive, port),
            Duration::from_secs(5),
        )
        .await
        .expect("register the raw acceptor");
        (listener, registration)
    });
    let bl = start_beamlink(
        &epmd,
        &name,
        &[
            "--connect",
            &fake,
            "--connect",
            beam.node_name(),
            "--poll-interval",
            "1s",
        ],
    );
    let pid = bl.pid();
    bl.wait_log(
        &format!("nodeup peer={}", beam.node_name()),
        Duration::from_secs(10),
    );
    let mut between: Vec<(usize, support::BeamlinkStats)> = Vec::new();
    let mut link = None;
    for (i, plan) in plans.iter().enumerate() {
        let accepted = runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(10), listener.accept()).await
        });
        let (stream, _) = accepted
            .unwrap_or_else(|_| {
                panic!(
                    "attempt {i}: beamlink did not dial again (no retry scheduled):\n{}",
                    bl.log()
                )
            })
            .unwrap();
        let (ended, kept) = runtime.block_on(acceptor_until(stream, &fake, *plan));
        eprintln!("initiator role: attempt {i} {plan:?}: {ended:?}");
        if let Some((step, Fault::Stall)) = plan {
            match ended {
                Ended::Closed(after) => assert!(
                    after <= SETUP_TIMEOUT + SLACK,
                    "{step:?}: beamlink gave up after {after:?}"
                ),
                Ended::Open => panic!(
                    "{step:?}: beamlink waited past the setup timeout:\n{}",
                    bl.log()
                ),
            }
        }
        if kept.is_some() {
            link = kept;
            break;
        }
        // Between attempts (the retry comes a second later): nothing held for the peer once
        // the failed attempt is over (the assertions below check what this sees).
        let _ = settles(
            || beamlink_stats(&beam, &name).pending,
            0,
            Duration::from_millis(700),
        );
        between.push((fd_count(pid), beamlink_stats(&beam, &name)));
    }
    let link = link.expect("the last attempt completes");
    bl.wait_log(&format!("nodeup peer={fake}"), Duration::from_secs(5));
    let (fds, stats) = between[0];
    for (i, (f, s)) in between.iter().enumerate() {
        assert_eq!(
            (*f, s.pending, s.links),
            (fds, 0, 1),
            "after failed attempt {i}: fds {f} (first {fds}), {s:?}"
        );
        assert_eq!(s.tasks, stats.tasks, "tasks after failed attempt {i}");
    }
    // The new link: one socket and the two tasks of a link more.
    let up = beamlink_stats(&beam, &name);
    assert_eq!((up.links, up.pending), (2, 0), "{up:?}");
    assert_eq!(up.tasks, stats.tasks + 2, "{up:?} vs {stats:?}");
    assert_eq!(fd_count(pid), fds + 1);
    let beam_peer = format!("nodedown peer={}", beam.node_name());
    assert_eq!(bl.count(&beam_peer), 0, "{}", bl.log());
    drop(link);
    drop(registration);
}

/// A real BEAM, stopped (SIGSTOP) so that beamlink's dial hangs after the TCP connect, is
/// killed with SIGKILL: its kernel resets the connection. beamlink's attempt fails at once
/// (not after the setup timeout), it holds no socket for it, and once a new BEAM of the same
/// name is up, it connects to it.
#[test]
fn a_beam_killed_during_the_handshake_leaves_nothing_behind() {
    support::each_release(a_beam_killed_during_the_handshake_leaves_nothing_behind_with);
}

fn a_beam_killed_during_the_handshake_leaves_nothing_behind_with(otp: Otp) {
    let epmd = Epmd::start();
    let alive = unique_name("victim");
    let beam = BeamNode::builder(otp, epmd.port()).name(&alive).start();
    let target = beam.node_name().to_string();
    support::kill(beam.os_pid(), "STOP");
    let name = format!("{}@127.0.0.1", unique_name("blhskill"));
    let bl = start_beamlink(
        &epmd,
        &name,
        &["--connect", &target, "--poll-interval", "1s"],
    );
    let pid = bl.pid();
    // beamlink dials at once: the connect succeeds (the kernel accepts for the stopped BEAM),
    // the name goes out, nothing comes back.
    let port = epmd
        .names()
        .into_iter()
        .find(|(n, _)| *n == alive)
        .map(|(_, port)| port)
        .expect("the BEAM registered before it was stopped");
    assert!(
        support::wait_for(|| unread_bytes_on(port), Duration::from_secs(10)),
        "beamlink's name never reached the stopped BEAM's port {port}:\n{}",
        bl.log()
    );
    let dialling = fd_count(pid);
    let killed = Instant::now();
    beam.kill();
    assert!(
        support::wait_for(|| bl.log().contains("cannot connect"), SETUP_TIMEOUT),
        "beamlink did not notice the killed BEAM:\n{}",
        bl.log()
    );
    let noticed = killed.elapsed();
    eprintln!("beamlink noticed the killed BEAM after {noticed:?}");
    assert!(
        noticed < SETUP_TIMEOUT,
        "a reset must end the attempt, not the setup timeout ({noticed:?}):\n{}",
        bl.log()
    );
    assert_eq!(
        settles(|| fd_count(pid), dialling - 1, Duration::from_secs(3)),
        Ok(()),
        "the dial's socket is closed"
    );
    let again = BeamNode::builder(otp, epmd.port()).name(&alive).start();
    bl.wait_log(&format!("nodeup peer={target}"), Duration::from_secs(10));
    assert_eq!(
        again
            .eval(&format!("lists:member('{name}', nodes(hidden))"))
            .unwrap(),
        "true"
    );
}

/// True once a connection accepted by the kernel on 127.0.0.1:`port` (IPv4) holds bytes its
/// owner has not read: what a stopped BEAM's socket shows once a dialler's name arrived.
fn unread_bytes_on(port: u16) -> bool {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("read /proc/net/tcp");
    table.lines().skip(1).any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let local_port = fields
            .get(1)
            .and_then(|a| a.rsplit_once(':'))
            .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
        let unread = fields
            .get(4)
            .and_then(|q| q.split_once(':'))
            .and_then(|(_, rx)| u64::from_str_radix(rx, 16).ok());
        // State 01 is ESTABLISHED; the listening socket (0A) shares the port.
        local_port == Some(port) && fields.get(3) == Some(&"01") && unread.unwrap_or(0) > 0
    })
}

/// Many handshakes from unique names with the wrong cookie (ecosystem.md C 19,
/// erl_distribution_SUITE `table_waste`): beamlink keeps nothing per name: resident memory,
/// file descriptors and tasks stay flat, and the failures do not flood the log.
#[test]
fn wrong_cookie_handshakes_from_many_names_leave_nothing() {
    support::each_release(wrong_cookie_handshakes_from_many_names_leave_nothing_with);
}

fn wrong_cookie_handshakes_from_many_names_leave_nothing_with(otp: Otp) {
    let PingedBeamlink {
        beam,
        bl,
        epmd: _epmd,
        name,
        pid,
        addr,
    } = pinged_beamlink(otp, "blwaste");
    let round = |count: usize, tag: &str| {
        with_runtime(async {
            let mut tasks = Vec::new();
            for worker in 0..8 {
                let name = name.clone();
                let tag = tag.to_owned();
                tasks.push(tokio::spawn(async move {
                    for i in 0..count / 8 {
                        let me = format!("w{tag}{worker}x{i}_{}@127.0.0.1", "n".repeat(i % 200));
                        let mut stream = TcpStream::connect(addr).await.unwrap();
                        let mut machine = Initiator::new(
                            raw_local(&me, "not-the-cookie", 3),
                            NodeName::parse(&name).unwrap(),
                            1,
                        );
                        let mut out = BytesMut::new();
                        let mut buf = BytesMut::new();
                        machine.start(&mut out);
                        stream.write_all(&out).await.unwrap();
                        out.clear();
                        for _ in 0..2 {
                            let p = read_packet(&mut stream, &mut buf).await;
                            let _ = machine.receive(&p, &mut out).unwrap();
                        }
                        stream.write_all(&out).await.unwrap();
                        let ended = closed_within(&mut stream, SETUP_TIMEOUT + SLACK).await;
                        assert!(matches!(ended, Ended::Closed(_)), "wrong cookie accepted");
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
        })
    };
    round(400, "warm");
    // The refused handshakes end on beamlink's side after the peers saw them closed.
    let no_pending = || settles(|| beamlink_stats(&beam, &name).pending, 0, SETUP_TIMEOUT);
    assert_eq!(
        no_pending(),
        Ok(()),
        "handshakes still pending after the warm round"
    );
    let (rss, fds, stats) = (rss_kib(pid), fd_count(pid), beamlink_stats(&beam, &name));
    let started = Instant::now();
    round(10_000, "many");
    eprintln!("10000 wrong-cookie handshakes in {:?}", started.elapsed());
    assert_eq!(no_pending(), Ok(()), "handshakes still pending after 10000");
    let grown = rss_kib(pid).saturating_sub(rss);
    eprintln!("resident memory {rss} KiB, grew by {grown} KiB");
    assert!(
        grown < 1024,
        "RSS grew by {grown} KiB over 10000 handshakes"
    );
    assert_eq!(
        settles(|| fd_count(pid), fds, Duration::from_secs(3)),
        Ok(())
    );
    assert_eq!(
        settles(
            || beamlink_stats(&beam, &name),
            stats,
            Duration::from_secs(3)
        ),
        Ok(())
    );
    let refused = bl.count("incoming connection failed");
    eprintln!("{refused} log lines for 10400 refused handshakes");
    assert!(
        refused < 100,
        "every refused handshake was logged ({refused} lines): the log must be rate-limited"
    );
}
