//! The embedded EPMD against real BEAM nodes, real `epmd -names`, and (for malformed input)
//! side by side with a real `epmd`.

mod epmd_util;

use beamlink::epmd::{Clock, EpmdServer, ServerConfig, names, register};
use beamlink::proto::epmd::{Alive2Request, AliveName};
use epmd_util::*;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;
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
    for release in blocking(releases).await {
        let a = unique("a");
        let _node_a = erl_of(&release, &a, port, None, None);
        let wanted = a.clone();
        eventually(
            &format!("the OTP {release} BEAM to register with us"),
            Duration::from_secs(30),
            || {
                let registered = server.registered();
                let wanted = wanted.clone();
                async move { registered.iter().any(|n| n.name.as_str() == wanted) }
            },
        )
        .await;
        let ping = format!("net_adm:ping(list_to_atom(\"{a}@127.0.0.1\"))");
        let b = unique("b");
        let rel = release.clone();
        let answer = blocking(move || erl_eval_of(&rel, &b, port, &ping)).await;
        assert_eq!(answer, "pong", "OTP {release}");
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
    for release in blocking(releases).await {
        let c = unique("c");
        let (rel, c2) = (release.clone(), c.clone());
        let answer = blocking(move || erl_eval_of(&rel, &c2, port, "net_adm:names()")).await;
        // The BEAM is registered too; net_adm:names lists in registration order.
        assert!(
            answer.starts_with("{ok,[{\"rustnode\",4242},{\""),
            "OTP {release}: {answer}"
        );
        assert!(
            answer.contains(&format!("{{\"{c}\",")),
            "OTP {release}: {answer}"
        );
        let rel = release.clone();
        let explicit =
            blocking(move || erl_eval_of(&rel, &unique("d"), port, "net_adm:names(\"127.0.0.1\")"))
                .await;
        assert!(
            explicit.contains("{\"rustnode\",4242}"),
            "OTP {release}: {explicit}"
        );
    }
    server.shutdown().await;
}

fn epmd_names_tool(port: u16) -> String {
    require("epmd");
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
    let _real = epmd(real_port, &[]);
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
    let _real = epmd(real_port, &["-packet_timeout", "1"]);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_and_stop_are_refused_and_dump_works() {
    let (server, port) = server().await;
    let _held = register(local(port), &request("keeper", 7), T)
        .await
        .unwrap();
    assert_eq!(
        probe(local(port), &framed(b"k")).await,
        Outcome {
            reply: vec![],
            closed: true
        }
    );
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
    // Let the server take them in before the next one arrives.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let outcome = probe(local(port), &framed(b"n")).await;
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

/// With the default packet timeout (60 s), a silent connection is closed after 60 s and not
/// before; paused time makes that exact.
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
        waited >= Duration::from_secs(60) && waited < Duration::from_secs(61),
        "closed after {waited:?} of virtual time"
    );
    // A registration is exempt: still registered long after.
    let held = register(local(port), &request("patient", 1), T)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(server.registered().len(), 1);
    drop(held);
    server.shutdown().await;
}
