#![cfg(feature = "interop")]
//! The embedded EPMD against real BEAM nodes, real `epmd -names`, and (for malformed input)
//! side by side with a real `epmd`.

mod support;

use beamlink::epmd::{Clock, EpmdServer, ServerConfig, names, register};
use beamlink::proto::epmd::{Alive2Request, AliveName};
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

const T: Duration = Duration::from_secs(5);

fn request(name: &str, port: u16) -> Alive2Request {
    Alive2Request::new(AliveName::new(name).unwrap(), port)
}

async fn server_with(config: ServerConfig) -> (EpmdServer, CancellationToken) {
    let token = CancellationToken::new();
    let server = EpmdServer::start(config, &token)
        .await
        .expect("start server");
    (server, token)
}

async fn server() -> (EpmdServer, u16) {
    let (server, _token) = server_with(ServerConfig::new(free_port())).await;
    let port = server.port();
    (server, port)
}

/// For every OTP release in `BEAMLINK_OTP`: a BEAM registers with our EPMD, a second one
/// finds it through us and pings it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beams_register_with_us_and_ping_each_other() {
    let (server, port) = server().await;
    for release in Otp::from_env() {
        let a = unique_name("a");
        let _node_a = erl_of(release, &a, port, None, None);
        let wanted = a.clone();
        eventually(
            &format!("the {release} BEAM to register with us"),
            Duration::from_secs(30),
            || {
                let registered = server.registered();
                let wanted = wanted.clone();
                async move { registered.iter().any(|n| n.name.as_str() == wanted) }
            },
        )
        .await;
        let ping = format!("net_adm:ping(list_to_atom(\"{a}@127.0.0.1\"))");
        let b = unique_name("b");
        let rel = release;
        let answer = blocking(move || erl_eval_of(rel, &b, port, &ping)).await;
        assert_eq!(answer, "pong", "{release}");
    }
    server.shutdown().await;
}

/// `net_adm:names/0,1` on a BEAM of every release parses our NAMES reply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn net_adm_names_on_a_beam_reads_our_reply() {
    let (server, port) = server().await;
    let _held = register(local(port), &request("rustnode", 4242), T)
        .await
        .unwrap();
    for release in Otp::from_env() {
        let c = unique_name("c");
        let (rel, c2) = (release, c.clone());
        let answer = blocking(move || erl_eval_of(rel, &c2, port, "net_adm:names()")).await;
        // The BEAM is registered too; net_adm:names lists in registration order.
        assert!(
            answer.starts_with("{ok,[{\"rustnode\",4242},{\""),
            "{release}: {answer}"
        );
        assert!(
            answer.contains(&format!("{{\"{c}\",")),
            "{release}: {answer}"
        );
        let rel = release;
        let explicit = blocking(move || {
            erl_eval_of(rel, &unique_name("d"), port, "net_adm:names(\"127.0.0.1\")")
        })
        .await;
        assert!(
            explicit.contains("{\"rustnode\",4242}"),
            "{release}: {explicit}"
        );
    }
    server.shutdown().await;
}

fn epmd_names_tool(port: u16) -> String {
    require_tool("epmd", "erlang-base");
    let out = Command::new("epmd")
        .args(["-port", &port.to_string(), "-names"])
        .output()
        .expect("run epmd -names");
    assert!(out.status.success(), "epmd -names failed: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn epmd_names_prints_the_same_as_for_a_real_epmd() {
    let real_port = free_port();
    let _real = Epmd::on_port(real_port, &[]);
    let (server, our_port) = server().await;
    let mut held = Vec::new();
    for (name, port) in [("alpha", 40001), ("beta", 40002), ("gamma_ü", 40003)] {
        for epmd_port in [real_port, our_port] {
            held.push(
                register(local(epmd_port), &request(name, port), T)
                    .await
                    .unwrap(),
            );
        }
    }
    let real = blocking(move || epmd_names_tool(real_port)).await;
    let ours = blocking(move || epmd_names_tool(our_port)).await;
    assert_eq!(
        ours.replace(&our_port.to_string(), "P"),
        real.replace(&real_port.to_string(), "P")
    );
    assert!(
        ours.contains(
            "name gamma_ü at port 40003\nname beta at port 40002\nname alpha at port 40001\n"
        ),
        "{ours}"
    );

    // The raw replies agree too, for NAMES (after the port) and PORT_PLEASE2.
    let real_names = blocking(move || raw_names(local(real_port))).await;
    let our_names = blocking(move || raw_names(local(our_port))).await;
    assert_eq!(our_names[4..], real_names[4..]);
    for lookup in [
        &b"\x00\x05zbeta"[..],
        b"\x00\x06zbeta\0",
        b"\x00\x07znosuch",
    ] {
        assert_eq!(
            probe(local(our_port), lookup).await,
            probe(local(real_port), lookup).await,
            "{lookup:?}"
        );
    }
    drop(held);
    server.shutdown().await;
}

/// How a connection ended after the probe sent its bytes.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    reply: Vec<u8>,
    closed: bool,
}

/// Sends `bytes` (ignoring write errors: the peer may close first) and collects the reply
/// until the peer closes or 4 s pass (more than a 1 s packet timeout, which `epmd` checks
/// only every second).
async fn probe(addr: SocketAddr, bytes: &[u8]) -> Outcome {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let _ = stream.write_all(bytes).await;
    let mut reply = Vec::new();
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(4);
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => {
                return Outcome {
                    reply,
                    closed: false,
                };
            }
            Ok(Ok(0)) | Ok(Err(_)) => {
                return Outcome {
                    reply,
                    closed: true,
                };
            }
            Ok(Ok(n)) => reply.extend_from_slice(&buf[..n]),
        }
    }
}

fn framed(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

fn alive2(name: &[u8], name_len: u16, extra: &[u8], extra_len: u16) -> Vec<u8> {
    let mut body = vec![b'x', 0x12, 0x34, 77, 0, 0, 6, 0, 5];
    body.extend_from_slice(&name_len.to_be_bytes());
    body.extend_from_slice(name);
    body.extend_from_slice(&extra_len.to_be_bytes());
    body.extend_from_slice(extra);
    framed(&body)
}

/// epmd_SUITE's bad inputs, each sent to a real `epmd -packet_timeout 1` and to our server
/// (packet timeout 1 s): the same reply bytes and the same close, except where noted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_input_is_handled_as_epmd_does() {
    let real_port = free_port();
    let _real = Epmd::on_port(real_port, &["-packet_timeout", "1"]);
    let mut config = ServerConfig::new(free_port());
    config.packet_timeout = Duration::from_secs(1);
    let (server, _token) = server_with(config).await;
    let our_port = server.port();

    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("silence", vec![]),
        ("one byte", vec![0]),
        ("length only", vec![0, 5]),
        ("partial request", vec![0, 5, b'z', b'a']),
        ("zero length", vec![0, 0]),
        ("length 3058", vec![0x0b, 0xf2]),
        ("63 000-byte packet", {
            let mut p = 63000u16.to_be_bytes().to_vec();
            p.resize(2 + 63000, b'n');
            p
        }),
        ("unknown code", framed(b"Q")),
        (
            "two requests in one segment",
            [framed(b"n"), framed(b"n")].concat(),
        ),
        ("NAMES with junk after the code", framed(b"njunk")),
        ("NUL in the name", alive2(b"a\0b", 3, b"", 0)),
        ("NUL at the end of the name", alive2(b"ab\0", 3, b"", 0)),
        ("name length past the end", alive2(b"abc", 40, b"", 0)),
        ("extra length past the end", alive2(b"abc", 3, b"xy", 900)),
        ("600-character name", alive2(&[b'n'; 600], 600, b"", 0)),
        ("name not UTF-8", alive2(b"\xc3\x28", 2, b"", 0)),
        ("1021-byte extra", alive2(b"abc", 3, &[1; 1021], 1021)),
        ("PORT_PLEASE2 without a name", framed(b"z")),
        ("PORT_PLEASE2 with a NUL inside", framed(b"za\0b")),
        (
            "PORT_PLEASE2 with a 300-character name",
            framed(&[&b"z"[..], &[b'q'; 300]].concat()),
        ),
    ];
    for len in 1..=13 {
        let mut body = vec![b'x', 0x12, 0x34, 77, 0, 0, 6, 0, 5, 0, 1, b'a', 0];
        body.truncate(len);
        cases.push(("short ALIVE2 body", framed(&body)));
    }
    let mut checks = Vec::new();
    for (what, bytes) in cases {
        checks.push(tokio::spawn(async move {
            let (real, ours) = tokio::join!(
                probe(local(real_port), &bytes),
                probe(local(our_port), &bytes)
            );
            (what, bytes.len(), real, ours)
        }));
    }
    for check in checks {
        let (what, len, mut real, mut ours) = check.await.unwrap();
        // A NAMES reply starts with the answering EPMD's own port.
        if what.starts_with("NAMES") {
            assert_eq!(ours.reply[..4], u32::from(our_port).to_be_bytes(), "{what}");
            assert_eq!(
                real.reply[..4],
                u32::from(real_port).to_be_bytes(),
                "{what}"
            );
            ours.reply.drain(..4);
            real.reply.drain(..4);
        }
        assert_eq!(
            ours.reply, real.reply,
            "{what} ({len} bytes): reply differs"
        );
        if real.reply.first() == Some(&b'v') {
            // A refused registration: epmd keeps the socket open until the client closes
            // it; we close it after the answer.
            assert_eq!(real.reply, b"v\x01\x00\x00\x00\x63", "{what}");
            assert!(ours.closed, "{what}");
        } else {
            assert_eq!(
                ours.closed, real.closed,
                "{what} ({len} bytes): close differs"
            );
            assert!(ours.closed, "{what}: left open");
        }
    }
    // Both still serve.
    assert_eq!(names(local(our_port), T).await.unwrap().nodes, vec![]);
    assert_eq!(names(local(real_port), T).await.unwrap().nodes, vec![]);
    server.shutdown().await;
}

/// epmd_SUITE buffer_overrun: 10 000 registrations with lying extra lengths or oversized
/// extras are all refused, and the server keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_lying_registrations_are_refused() {
    let (server, port) = server().await;
    let semaphore = std::sync::Arc::new(tokio::sync::Semaphore::new(32));
    let mut tasks = Vec::new();
    for i in 0..10_000u32 {
        let permit = semaphore.clone().acquire_owned().await.unwrap();
        tasks.push(tokio::spawn(async move {
            let name = format!("liar{i}");
            let bytes = if i % 2 == 0 {
                // Extra length points far past the packet.
                alive2(
                    name.as_bytes(),
                    name.len() as u16,
                    b"e",
                    2000 + (i % 1000) as u16,
                )
            } else {
                // An extra field over 1020 bytes, announced truthfully.
                let extra = vec![b'e'; 1021 + (i % 900) as usize];
                alive2(
                    name.as_bytes(),
                    name.len() as u16,
                    &extra,
                    extra.len() as u16,
                )
            };
            let outcome = probe(local(port), &bytes).await;
            drop(permit);
            assert!(outcome.closed, "liar {i} left open");
            assert!(
                outcome.reply.is_empty() || outcome.reply == b"v\x01\x00\x00\x00\x63",
                "liar {i} got {:?}",
                outcome.reply
            );
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert!(server.registered().is_empty());
    let held = register(local(port), &request("honest", 1), T)
        .await
        .unwrap();
    assert_eq!(listed_async(local(port)).await, ["honest"]);
    drop(held);
    server.shutdown().await;
}

/// epmd_SUITE: a registration whose socket is reset right after the request (before the
/// reply can be read) leaves no entry behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_reset_before_the_reply_leaves_no_entry() {
    let (server, port) = server().await;
    for round in 0..50 {
        let stream = TcpStream::connect(local(port)).await.unwrap();
        let mut stream = stream;
        stream
            .write_all(&alive2(b"zombie", 6, b"", 0))
            .await
            .unwrap();
        stream.set_zero_linger().unwrap();
        drop(stream);
        if round % 10 == 0 {
            tokio::task::yield_now().await;
        }
    }
    eventually(
        "every reset registration to be gone",
        Duration::from_secs(2),
        || async { server.registered().is_empty() },
    )
    .await;
    let held = register(local(port), &request("zombie", 1), T)
        .await
        .unwrap();
    assert!(held.creation() > 3);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_byte_on_a_registration_socket_ends_it() {
    let (server, port) = server().await;
    let mut stream = TcpStream::connect(local(port)).await.unwrap();
    stream
        .write_all(&alive2(b"chatty", 6, b"", 0))
        .await
        .unwrap();
    let mut reply = [0u8; 6];
    stream.read_exact(&mut reply).await.unwrap();
    assert_eq!(&reply[..2], b"v\0");
    assert_eq!(listed_async(local(port)).await, ["chatty"]);
    stream.write_all(b"?").await.unwrap();
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(T, stream.read_to_end(&mut rest))
        .await
        .expect("the server closes the socket");
    assert!(rest.is_empty());
    assert!(server.registered().is_empty());
    server.shutdown().await;
}

/// A server that is not killable (the default: the one a node serves) answers KILL_REQ
/// `NO` even with no name registered, and without relaxed command check ignores STOP_REQ,
/// as `epmd` does; DUMP works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unkillable_server_answers_kill_no_ignores_stop_and_dumps() {
    let (server, port) = server().await;
    let refused = Outcome {
        reply: b"NO".to_vec(),
        closed: true,
    };
    assert_eq!(probe(local(port), &framed(b"k")).await, refused);
    let _held = register(local(port), &request("keeper", 7), T)
        .await
        .unwrap();
    assert_eq!(probe(local(port), &framed(b"k")).await, refused);
    assert_eq!(
        probe(local(port), &framed(b"skeeper")).await,
        Outcome {
            reply: vec![],
            closed: true
        }
    );
    assert_eq!(listed_async(local(port)).await, ["keeper"]);
    let dump = probe(local(port), &framed(b"d")).await;
    assert!(dump.closed);
    let text = String::from_utf8_lossy(&dump.reply[4..]).into_owned();
    assert!(
        text.starts_with("active name     <keeper> at port 7, fd = "),
        "{text:?}"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creation_follows_the_injected_clock() {
    let mut config = ServerConfig::new(free_port());
    config.clock = Clock::fixed(1_000_000);
    let (server, _token) = server_with(config).await;
    let port = server.port();
    let first = register(local(port), &request("reborn", 1), T)
        .await
        .unwrap();
    assert_eq!(first.creation(), 1_000_001);
    drop(first);
    eventually("unregistration", T, || async {
        server.registered().is_empty()
    })
    .await;
    let second = register(local(port), &request("reborn", 1), T)
        .await
        .unwrap();
    assert_eq!(second.creation(), 1_000_002);
    let old = Alive2Request {
        highest_version: 5,
        lowest_version: 5,
        ..request("oldtimer", 2)
    };
    let legacy = register(local(port), &old, T).await.unwrap();
    // 1_000_001 % 3 + 1
    assert_eq!(legacy.creation(), 3);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_limit_are_closed_at_once() {
    let mut config = ServerConfig::new(free_port());
    config.max_connections = 3;
    let (server, _token) = server_with(config).await;
    let port = server.port();
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(TcpStream::connect(local(port)).await.unwrap());
    }
    // Until the server has taken the three in, a probe is answered (it is not past the
    // limit yet): probe until one is turned away.
    let deadline = tokio::time::Instant::now() + T;
    let outcome = loop {
        let outcome = probe(local(port), &framed(b"n")).await;
        if outcome.reply.is_empty() || tokio::time::Instant::now() >= deadline {
            break outcome;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(
        outcome,
        Outcome {
            reply: vec![],
            closed: true
        }
    );
    assert_eq!(server.turned_away(), 1);
    drop(idle);
    eventually("a free slot", T, || async {
        names(local(port), T).await.is_ok()
    })
    .await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_registrations_and_serves_ipv6() {
    let (server, port) = server().await;
    let ipv6_here = std::net::TcpListener::bind("[::1]:0").is_ok();
    let v6 = server.local_addrs().iter().find(|a| a.is_ipv6()).copied();
    assert_eq!(v6.is_some(), ipv6_here, "{:?}", server.local_addrs());
    let target = match v6 {
        Some(v6) => SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, v6.port())),
        None => local(port),
    };
    let mut registration = register(target, &request("sixer", 1), T).await.unwrap();
    assert_eq!(names(local(port), T).await.unwrap().nodes.len(), 1);
    server.shutdown().await;
    tokio::time::timeout(T, registration.closed())
        .await
        .expect("shutdown ends the registration");
    assert!(!answers(local(port)));
}

/// With the default packet timeout (60 s), a silent connection is closed 61 s after its
/// last byte (`epmd` closes it between 60 and 67 s, see the server's docs) and not before,
/// and each byte of a request restarts the count, as in `epmd`; paused time makes that
/// exact. Fails if the timeout counts from the accept (the trickled request is then cut off
/// after 61 s) or is not applied.
#[tokio::test(start_paused = true)]
async fn silent_connections_are_closed_after_the_default_packet_timeout() {
    let (server, _token) = server_with(ServerConfig::new(0)).await;
    let port = server.port();
    let mut silent = TcpStream::connect(local(port)).await.unwrap();
    let start = tokio::time::Instant::now();
    let mut buf = [0u8; 8];
    let read = silent.read(&mut buf).await;
    assert!(matches!(read, Ok(0)), "{read:?}");
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(61) && waited < Duration::from_secs(62),
        "closed after {waited:?} of virtual time"
    );
    // A NAMES request sent one byte a minute, 3 minutes in all, is answered.
    let mut slow = TcpStream::connect(local(port)).await.unwrap();
    for byte in [0u8, 1, b'n'] {
        tokio::time::sleep(Duration::from_secs(60)).await;
        slow.write_all(&[byte]).await.unwrap();
    }
    let mut reply = Vec::new();
    slow.read_to_end(&mut reply).await.unwrap();
    assert_eq!(reply, u32::from(port).to_be_bytes());
    // A registration is exempt: still registered long after.
    let held = register(local(port), &request("patient", 1), T)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(server.registered().len(), 1);
    drop(held);
    server.shutdown().await;
}

/// An EPMD server process on `port`: `beamlink epmd` (the binary, as an operator runs it)
/// or one OTP release's `epmd`. Killed by pid and reaped on drop unless it exited by itself.
struct EpmdProcess {
    child: std::process::Child,
}

impl EpmdProcess {
    fn spawn(mut command: Command, port: u16) -> EpmdProcess {
        let child = command
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start an EPMD");
        let mut server = EpmdProcess { child };
        assert!(
            wait_for(|| answers(local(port)), T),
            "timed out waiting for the EPMD to listen"
        );
        // What answered must be this EPMD: one that could not bind the port has exited, and
        // the test would talk to whoever holds it.
        assert!(
            matches!(server.child.try_wait(), Ok(None)),
            "the EPMD started on port {port} exited: {:?}",
            server.child.try_wait()
        );
        server
    }

    /// `beamlink epmd --epmd-port PORT ARGS` with `env` added.
    fn beamlink(port: u16, args: &[&str], env: &[(&str, &str)]) -> EpmdProcess {
        let mut command = Command::new(env!("CARGO_BIN_EXE_beamlink"));
        command
            .args(["epmd", "--epmd-port", &port.to_string()])
            .args(args)
            .env_remove("ERL_EPMD_RELAXED_COMMAND_CHECK")
            .envs(env.iter().copied());
        EpmdProcess::spawn(command, port)
    }

    /// `otp`'s `epmd -port PORT ARGS` (`scripts/otp-run` execs it: the pid is epmd's).
    fn otp(otp: Otp, port: u16, args: &[&str]) -> EpmdProcess {
        let mut command = otp.command("epmd");
        command.args(["-port", &port.to_string()]).args(args);
        EpmdProcess::spawn(command, port)
    }

    /// Waits for the server to exit by itself; its exit code.
    fn exited(&mut self) -> Option<i32> {
        let deadline = std::time::Instant::now() + T;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "beamlink epmd still runs"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for EpmdProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a command printed and how it exited.
#[derive(Debug, PartialEq, Eq)]
struct Printed {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Printed {
    /// The same, with `port` written as `P` (a NAMES header names the answering EPMD's port).
    fn port_as_p(self, port: u16) -> Printed {
        let p = |text: String| text.replace(&port.to_string(), "P");
        Printed {
            code: self.code,
            stdout: p(self.stdout),
            stderr: p(self.stderr),
        }
    }
}

fn printed(mut command: Command) -> Printed {
    let out = command.output().expect("run command");
    Printed {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// OTP `release`'s own `epmd` client (`epmd -names`, `-kill`, `-stop NAME`), pointed at the
/// EPMD on `port` with `ERL_EPMD_PORT`. It only ever talks to the local EPMD, and gives up
/// at once when nothing answers.
fn epmd_tool(otp: Otp, port: u16, args: &[&str]) -> Printed {
    let mut command = otp.command("epmd");
    command.args(args).env("ERL_EPMD_PORT", port.to_string());
    printed(command)
}

/// `beamlink names 127.0.0.1` against the EPMD on `port`.
fn beamlink_names(port: u16) -> Printed {
    let mut command = Command::new(env!("CARGO_BIN_EXE_beamlink"));
    command.args(["names", "127.0.0.1", "--epmd-port", &port.to_string()]);
    printed(command)
}

/// Runs OTP `release`'s `epmd ARGS` against Debian's epmd on `real` and `beamlink epmd` on
/// `ours`: both must print the same (ports aside) and exit alike. Returns what it printed.
async fn same_answer(release: Otp, real: u16, ours: u16, args: &[&str]) -> Printed {
    let (rel, owned) = (
        release,
        args.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
    );
    let (real_out, our_out) = blocking(move || {
        let args: Vec<&str> = owned.iter().map(String::as_str).collect();
        (
            epmd_tool(rel, real, &args).port_as_p(real),
            epmd_tool(rel, ours, &args).port_as_p(ours),
        )
    })
    .await;
    assert_eq!(our_out, real_out, "{release}: epmd {args:?}");
    our_out
}

/// For every OTP release in `BEAMLINK_OTP`, that release's `epmd -names`, `-kill` and
/// `-stop` get the same answers from `beamlink epmd` as from Debian's epmd, and
/// `beamlink names` prints exactly what `epmd -names` prints: while a name is registered,
/// `-kill` is refused (`NO`: "Killing not allowed") and `-stop` ignored; with none, `-kill`
/// is obeyed ("Killed") and both servers exit 0; then `epmd -names` and `beamlink names`
/// say "epmd: Cannot connect to local epmd" (exit 1 and 69). Fails if KILL_REQ is closed
/// without an answer, if the server does not exit on an obeyed KILL_REQ, or if the header
/// or the wording of `beamlink names` differs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn epmd_kill_stop_and_names_of_every_release_answered_as_by_epmd() {
    for release in Otp::from_env() {
        let (real_port, our_port) = (free_port(), free_port());
        let real = Epmd::on_port(real_port, &[]);
        let mut ours = EpmdProcess::beamlink(our_port, &["--packet-timeout", "1"], &[]);
        let mut held = Vec::new();
        for port in [real_port, our_port] {
            held.push(
                register(local(port), &request("keeper", 4711), T)
                    .await
                    .unwrap(),
            );
        }
        let names = same_answer(release, real_port, our_port, &["-names"]).await;
        assert_eq!(
            names.stdout, "epmd: up and running on port P with data:\nname keeper at port 4711\n",
            "{release}"
        );
        let ours_printed = blocking(move || beamlink_names(our_port)).await;
        assert_eq!(
            ours_printed.port_as_p(our_port),
            names,
            "{release}: beamlink names"
        );
        let kill = same_answer(release, real_port, our_port, &["-kill"]).await;
        assert_eq!(
            (kill.code, kill.stdout.as_str()),
            (Some(1), "Killing not allowed - living nodes in database.\n"),
            "{release}"
        );
        let stop = same_answer(release, real_port, our_port, &["-stop", "keeper"]).await;
        assert_eq!(
            (stop.code, stop.stdout.as_str()),
            (Some(1), "epmd: local epmd responded with <>\n"),
            "{release}"
        );
        drop(held);
        for port in [real_port, our_port] {
            eventually("the name to go", T, || async move {
                listed_async(local(port)).await.is_empty()
            })
            .await;
        }
        let kill = same_answer(release, real_port, our_port, &["-kill"]).await;
        assert_eq!(
            (kill.code, kill.stdout.as_str()),
            (Some(0), "Killed\n"),
            "{release}"
        );
        blocking(move || real.wait_exit(T)).await;
        assert_eq!(blocking(move || ours.exited()).await, Some(0), "{release}");
        let gone = same_answer(release, real_port, our_port, &["-names"]).await;
        let nothing = Printed {
            code: Some(1),
            stdout: String::new(),
            stderr: "epmd: Cannot connect to local epmd\n".to_owned(),
        };
        assert_eq!(gone, nothing, "{release}");
        let ours_printed = blocking(move || beamlink_names(our_port)).await;
        assert_eq!(
            ours_printed,
            Printed {
                code: Some(69),
                ..nothing
            },
            "{release}"
        );
    }
}

/// With relaxed command check (`--relaxed-command-check`, or `ERL_EPMD_RELAXED_COMMAND_CHECK`
/// set, as epmd reads it), every release's `epmd -stop` and `-kill` get Debian's
/// `epmd -relaxed_command_check` answers: `STOPPED` for a registered name, whose
/// registration socket is closed; `NOEXIST` for another (the raw answer is
/// `NOEXISTSTOPPED` from both); `-kill` obeyed while a name is registered, the server exits
/// 0 and the registration is closed. Fails if STOP_REQ is refused or answered otherwise, or
/// if the stopped name's socket stays open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relaxed_command_check_answers_stop_and_kill_as_epmd_does() {
    for (round, release) in Otp::from_env().into_iter().enumerate() {
        let (real_port, our_port) = (free_port(), free_port());
        let real = Epmd::on_port(real_port, &["-relaxed_command_check"]);
        // The flag in even rounds, the environment variable in odd ones.
        let mut ours = if round % 2 == 0 {
            EpmdProcess::beamlink(our_port, &["--relaxed-command-check"], &[])
        } else {
            EpmdProcess::beamlink(our_port, &[], &[("ERL_EPMD_RELAXED_COMMAND_CHECK", "")])
        };
        let (mut victims, mut bystanders) = (Vec::new(), Vec::new());
        for port in [real_port, our_port] {
            victims.push(
                register(local(port), &request("victim", 1), T)
                    .await
                    .unwrap(),
            );
            bystanders.push(
                register(local(port), &request("bystander", 2), T)
                    .await
                    .unwrap(),
            );
        }
        let stop = same_answer(release, real_port, our_port, &["-stop", "victim"]).await;
        assert_eq!(
            (stop.code, stop.stdout.as_str()),
            (Some(0), "STOPPED\n"),
            "{release}"
        );
        for victim in &mut victims {
            tokio::time::timeout(T, victim.closed())
                .await
                .expect("STOP_REQ closes the registration socket");
        }
        let noexist = same_answer(release, real_port, our_port, &["-stop", "victim"]).await;
        assert_eq!(
            (noexist.code, noexist.stdout.as_str()),
            (Some(0), "NOEXIST\n"),
            "{release}"
        );
        let raw = framed(b"snosuch");
        assert_eq!(
            probe(local(our_port), &raw).await,
            probe(local(real_port), &raw).await,
            "{release}"
        );
        assert_eq!(listed_async(local(our_port)).await, ["bystander"]);
        let kill = same_answer(release, real_port, our_port, &["-kill"]).await;
        assert_eq!(
            (kill.code, kill.stdout.as_str()),
            (Some(0), "Killed\n"),
            "{release}"
        );
        blocking(move || real.wait_exit(T)).await;
        assert_eq!(blocking(move || ours.exited()).await, Some(0), "{release}");
        for bystander in &mut bystanders {
            tokio::time::timeout(T, bystander.closed())
                .await
                .expect("the killed EPMD closes the registration");
        }
    }
}

/// `beamlink epmd --packet-timeout 1` beside each release's `epmd -packet_timeout 1`: a
/// silent connection is closed by both, not before 1 s (the default, 60 s, would keep it
/// past this test's end); a PORT_PLEASE2 request sent a byte every 250 ms, 2.75 s in all
/// (epmd_SUITE's `slow_get_port_nr`), is answered by both, since each byte restarts the
/// count. Fails if the flag is not wired to the server, or if the timeout counts from the
/// accept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packet_timeout_flag_closes_silent_connections_as_epmd_does() {
    let silent = |port| async move {
        let mut stream = TcpStream::connect(local(port)).await.unwrap();
        let start = std::time::Instant::now();
        let mut buf = [0u8; 8];
        let read = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut buf)).await;
        assert!(matches!(read, Ok(Ok(0))), "port {port}: {read:?}");
        start.elapsed()
    };
    let trickle = |port| async move {
        let mut stream = TcpStream::connect(local(port)).await.unwrap();
        for byte in framed(b"zslowpoke") {
            tokio::time::sleep(Duration::from_millis(250)).await;
            stream.write_all(&[byte]).await.unwrap();
        }
        let mut reply = Vec::new();
        tokio::time::timeout(T, stream.read_to_end(&mut reply))
            .await
            .expect("answered")
            .unwrap();
        reply
    };
    for release in Otp::from_env() {
        let (real_port, our_port) = (free_port(), free_port());
        let _real =
            blocking(move || EpmdProcess::otp(release, real_port, &["-packet_timeout", "1"])).await;
        let _ours = EpmdProcess::beamlink(our_port, &["--packet-timeout", "1"], &[]);
        let mut held = Vec::new();
        for port in [real_port, our_port] {
            held.push(
                register(local(port), &request("slowpoke", 1042), T)
                    .await
                    .unwrap(),
            );
        }
        let (real_silent, our_silent, real_slow, our_slow) = tokio::join!(
            silent(real_port),
            silent(our_port),
            trickle(real_port),
            trickle(our_port)
        );
        for waited in [real_silent, our_silent] {
            assert!(
                waited >= Duration::from_secs(1),
                "{release}: closed after {waited:?}"
            );
        }
        assert_eq!(our_slow, real_slow, "{release}");
        assert_eq!(&our_slow[..4], b"w\x00\x04\x12", "{release}");
    }
}

/// Refused registrations do not flood the log: `beamlink epmd` (info level) gets 1 000
/// refused ALIVE2 requests, half for a name already held, half with an extra field over
/// 1 020 bytes; at most 10 "registration refused" lines a minute reach its log (a test
/// shorter than two minutes sees at most 20), each saying why. Every request is still
/// answered `Result = 1` and closed. (That the next window's first line counts the lines not
/// written is the `LogLimit` unit test of `node::accept`.)
///
/// Fails without the rate limit of `epmd::server`'s refusal log (`Shared::log_refusal`
/// admitting every line): 1 000 lines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_refused_registrations_log_a_bounded_number_of_lines() {
    let port = free_port();
    let log_path = std::env::temp_dir().join(format!("{}.log", unique_name("refusals")));
    let log_file = std::fs::File::create(&log_path).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_beamlink"))
        .args(["epmd", "--epmd-port", &port.to_string()])
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(log_file)
        .spawn()
        .expect("start beamlink epmd");
    let server = Proc::from_child(child, "beamlink epmd");
    eventually("beamlink epmd to listen", T, || async move {
        answers(local(port))
    })
    .await;
    let held = register(local(port), &request("holder", 1), T)
        .await
        .unwrap();
    let semaphore = std::sync::Arc::new(tokio::sync::Semaphore::new(32));
    let mut tasks = Vec::new();
    for i in 0..1_000u32 {
        let permit = semaphore.clone().acquire_owned().await.unwrap();
        tasks.push(tokio::spawn(async move {
            let bytes = if i % 2 == 0 {
                alive2(b"holder", 6, b"", 0)
            } else {
                let extra = vec![b'e'; 1021];
                alive2(b"other", 5, &extra, extra.len() as u16)
            };
            let outcome = probe(local(port), &bytes).await;
            drop(permit);
            assert_eq!(outcome.reply, b"v\x01\x00\x00\x00\x63", "request {i}");
            assert!(outcome.closed, "request {i} left open");
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(listed_async(local(port)).await, ["holder"]);
    drop(held);
    server.kill();
    let log = std::fs::read_to_string(&log_path).unwrap();
    let _ = std::fs::remove_file(&log_path);
    let refused: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("registration refused"))
        .collect();
    eprintln!(
        "{} log lines for 1000 refused registrations; the last: {:?}",
        refused.len(),
        refused.last()
    );
    assert!(!refused.is_empty(), "no refusal logged:\n{log}");
    assert!(
        refused.len() <= 20,
        "{} lines for 1000 refused registrations: the log must be rate-limited",
        refused.len()
    );
    assert!(
        refused.iter().any(|l| l.contains("taken")),
        "the lines name the refusal: {refused:?}"
    );
}
