//! Records what a real BEAM sends to beamlink, for the byte fixtures under `fixtures/`.
//!
//! ```text
//! cargo run --example capture_fixtures -- --erl erl --otp 25 --out fixtures
//! cargo run --example capture_fixtures -- --erl "scripts/otp-run 27 erl" --otp 27 --out fixtures
//! ```
//!
//! It starts its own `epmd` on a free port and a BEAM node `peer@127.0.0.1` with the fixture
//! cookie (never a real one), puts a recording TCP proxy in front of the BEAM, and connects
//! beamlink through it. Then it asks the BEAM (over erpc) to ping us, call our GenServer,
//! erpc and rpc us, and monitor a name we do not have, so every kind of message the BEAM
//! sends for those operations passes the proxy. From OTP 28 on it also has the BEAM send us a
//! priority message and calls one of the BEAM's gen_servers, whose reply comes to an alias
//! (both `ALTACT_SIG_SEND`); from OTP 29 on, the BEAM sends us a native record. It writes:
//! * `handshake/otp<N>-initiator.transcript`: our handshake as initiator, one line per
//!   message (`>` we sent, `<` the BEAM sent), hex;
//! * `dist/otp<N>-<what>.bin`: single frames the BEAM sent after the handshake (length
//!   prefix included).

use beamlink::node::Node;
use beamlink::proto::digest::Cookie;
use beamlink::proto::frame::{Frame, take_frame};
use beamlink::proto::handshake::take_packet;
use beamlink::proto::node_name::NodeName;
use beamlink::proto::term::Term;
use bytes::BytesMut;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The cookie every fixture uses. Not a secret: it exists only in these fixtures.
const FIXTURE_COOKIE: &str = "beamlink-fixture-cookie";

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Bytes seen in each direction, in order, with the direction of each chunk.
#[derive(Default)]
struct Recording {
    /// (true = we sent, bytes)
    chunks: Vec<(bool, Vec<u8>)>,
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    ours: bool,
    rec: Arc<Mutex<Recording>>,
) {
    let mut buf = vec![0u8; 65536];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        rec.lock().unwrap().chunks.push((ours, buf[..n].to_vec()));
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
}

/// Accepts one connection on `listener` and forwards it to `target`, recording both ways.
async fn proxy_one(listener: TcpListener, target: SocketAddr, rec: Arc<Mutex<Recording>>) {
    let (client, _) = listener.accept().await.unwrap();
    let server = TcpStream::connect(target).await.unwrap();
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    tokio::spawn(pump(cr, sw, true, rec.clone()));
    tokio::spawn(pump(sr, cw, false, rec));
}

fn op_name(c: &beamlink::proto::control::Control) -> &'static str {
    use beamlink::proto::control::Control as C;
    match c {
        C::Link { .. } => "link",
        C::Send { .. } => "send",
        C::RegSend { .. } => "reg_send",
        C::Exit { .. } => "exit",
        C::Exit2 { .. } => "exit2",
        C::MonitorP { .. } => "monitor_p",
        C::DemonitorP { .. } => "demonitor_p",
        C::MonitorPExit { .. } => "monitor_p_exit",
        C::SpawnRequest { .. } => "spawn_request",
        C::SpawnReply { .. } => "spawn_reply",
        C::AliasSend { .. } => "alias_send",
        C::AltactSig { .. } => "altact_sig",
        C::UnlinkId { .. } => "unlink_id",
        C::UnlinkIdAck { .. } => "unlink_id_ack",
        _ => "other",
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let opt = |name: &str, default: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
            .unwrap_or_else(|| default.to_string())
    };
    let erl: Vec<String> = opt("--erl", "erl")
        .split_whitespace()
        .map(String::from)
        .collect();
    let otp = opt("--otp", "25");
    let out = PathBuf::from(opt("--out", "fixtures"));
    // With the distribution header (the default, as between BEAMs) frames go to
    // dist-header/; with --no-header, plain pass-through frames go to dist/.
    let header = !args.iter().any(|a| a == "--no-header");
    let dist_dir = if header { "dist-header" } else { "dist" };
    std::fs::create_dir_all(out.join("handshake")).unwrap();
    std::fs::create_dir_all(out.join(dist_dir)).unwrap();

    let epmd_port = free_port();
    let _epmd = Killed(
        Command::new("epmd")
            .args(["-port", &epmd_port.to_string()])
            .stdout(Stdio::null())
            .spawn()
            .expect("epmd on PATH"),
    );
    std::thread::sleep(Duration::from_millis(300));
    let _beam = Killed(
        Command::new(&erl[0])
            .args(&erl[1..])
            .args([
                "-name",
                "peer@127.0.0.1",
                "-setcookie",
                FIXTURE_COOKIE,
                "-noshell",
            ])
            .args(["-eval", "receive stop -> halt() end."])
            .env("ERL_EPMD_PORT", epmd_port.to_string())
            .stdout(Stdio::null())
            .spawn()
            .expect("erl"),
    );
    let peer = NodeName::parse("peer@127.0.0.1").unwrap();
    let epmd = SocketAddr::from(([127, 0, 0, 1], epmd_port));
    let alive = beamlink::proto::epmd::AliveName::new("peer").unwrap();
    let started = std::time::Instant::now();
    let port = loop {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the BEAM did not register with epmd within 30 s (run from a directory the \
             OTP chroot can see, such as /tmp)"
        );
        if let Ok(Some(e)) = beamlink::epmd::port_please(epmd, &alive, Duration::from_secs(1)).await
        {
            break e.port;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    let rec = Arc::new(Mutex::new(Recording::default()));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = listener.local_addr().unwrap();
    tokio::spawn(proxy_one(
        listener,
        SocketAddr::from(([127, 0, 0, 1], port)),
        rec.clone(),
    ));

    let node = Node::builder()
        .name("beamlink@127.0.0.1")
        .cookie(Cookie::new(FIXTURE_COOKIE))
        .dial_only()
        .epmd_port(epmd_port)
        .tune(move |config| config.dist_header = header)
        .start()
        .await
        .unwrap();
    node.connect_addr(&peer, proxy).await.unwrap();

    // Make the BEAM send each kind of message over the recorded connection.
    let me = Term::atom("beamlink@127.0.0.1");
    let t = Duration::from_secs(10);
    let steps: Vec<(&str, &str, &str, Vec<Term>)> = vec![
        ("ping", "net_adm", "ping", vec![me.clone()]),
        (
            "erpc_nodes",
            "erpc",
            "call",
            vec![
                me.clone(),
                Term::atom("erlang"),
                Term::atom("nodes"),
                Term::list([Term::atom("connected")]),
            ],
        ),
        (
            "genserver_info",
            "gen_server",
            "call",
            vec![
                Term::tuple([Term::atom("beamlink"), me.clone()]),
                Term::atom("info"),
            ],
        ),
        (
            "block_call",
            "rpc",
            "block_call",
            vec![
                me.clone(),
                Term::atom("erlang"),
                Term::atom("node"),
                Term::NIL,
            ],
        ),
        (
            "noproc_call",
            "gen_server",
            "call",
            vec![
                Term::tuple([Term::atom("nosuch"), me.clone()]),
                Term::atom("x"),
                Term::Int(1000),
            ],
        ),
        (
            // The BEAM sends 200 kB back to us: more than its 64 KiB fragment size.
            "big_send",
            "erlang",
            "send",
            vec![
                Term::tuple([Term::atom("beamlink"), me.clone()]),
                Term::binary(vec![0x5au8; 200_000]),
            ],
        ),
    ];
    let release: u32 = otp.parse().unwrap_or(0);
    let mut steps = steps;
    if release >= 28 {
        // erlang:send/3 with [priority] to a remote name: ALTACT_SIG_SEND with NAME|PRIO.
        steps.push((
            "priority_send",
            "erlang",
            "send",
            vec![
                Term::tuple([Term::atom("beamlink"), me.clone()]),
                Term::atom("priority_hello"),
                Term::list([Term::atom("priority")]),
            ],
        ));
    }
    if release >= 29 {
        // The BEAM decodes the record in the spawn request's arguments and sends it back.
        steps.push((
            "native_record",
            "erlang",
            "send",
            vec![
                Term::tuple([Term::atom("beamlink"), me.clone()]),
                Term::Record(Box::new(beamlink::proto::term::Record {
                    module: beamlink::proto::term::Atom::new("fixture"),
                    name: beamlink::proto::term::Atom::new("point"),
                    exported: true,
                    fields: vec![
                        (beamlink::proto::term::Atom::new("x"), Term::Int(1)),
                        (beamlink::proto::term::Atom::new("y"), Term::atom("two")),
                    ],
                })),
            ],
        ));
    }
    let mut marks = Vec::new();
    for (what, m, f, a) in steps {
        let before = rec.lock().unwrap().chunks.len();
        let r = node.rpc_call(&peer, m, f, a, t).await;
        eprintln!("{what}: {r:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
        marks.push((what, before, rec.lock().unwrap().chunks.len()));
    }
    if release >= 28 {
        // A gen_server call from us: the BEAM replies to our alias, with ALTACT_SIG_SEND.
        let before = rec.lock().unwrap().chunks.len();
        let mut process = node.spawn_process();
        let dest = beamlink::node::Dest::name("application_controller", &peer);
        let r = process
            .call(&dest, Term::atom("which_applications"), t)
            .await;
        eprintln!("alias_reply: {:?}", r.map(|_| "reply"));
        tokio::time::sleep(Duration::from_millis(200)).await;
        marks.push(("alias_reply", before, rec.lock().unwrap().chunks.len()));
    }

    // The handshake: 2-byte packets until the ack, then 4-byte frames.
    let chunks = rec.lock().unwrap().chunks.clone();
    let (mut ours, mut theirs) = (BytesMut::new(), BytesMut::new());
    let mut decoder = None;
    let mut lines = vec![
        "# beamlink handshake transcript".to_string(),
        format!("# otp: {otp}"),
        "# role: initiator".to_string(),
        format!("# cookie: {FIXTURE_COOKIE}"),
        "# local: beamlink@127.0.0.1".to_string(),
        "# peer: peer@127.0.0.1".to_string(),
    ];
    let mut handshake_done = false;
    let mut dist_index = 0;
    for (i, (is_ours, bytes)) in chunks.iter().enumerate() {
        let buf = if *is_ours { &mut ours } else { &mut theirs };
        buf.extend_from_slice(bytes);
        if !handshake_done {
            while let Some(p) = take_packet(buf) {
                lines.push(format!("{} {}", if *is_ours { ">" } else { "<" }, hex(&p)));
                if !is_ours && p.first() == Some(&b'a') {
                    handshake_done = true;
                    break;
                }
            }
            continue;
        }
        if *is_ours {
            ours.clear();
            continue;
        }
        while let Ok(Some(frame)) = take_frame(&mut theirs, u32::MAX) {
            let Frame::Message(m) = frame else { continue };
            let what = marks
                .iter()
                .find(|(_, a, b)| i >= *a && i < *b)
                .map(|(w, _, _)| *w)
                .unwrap_or("other");
            let mut framed = (m.len() as u32).to_be_bytes().to_vec();
            framed.extend_from_slice(&m);
            let decoder = decoder.get_or_insert_with(|| {
                beamlink::proto::dist_header::DistDecoder::new(node.flags(), usize::MAX)
            });
            let op = match decoder.decode(&m) {
                Ok(Some(c)) => op_name(&c),
                Ok(None) => "fragment",
                Err(_) => "undecodable",
            };
            let name = format!("otp{otp}-{what}-{dist_index:02}-{op}.bin");
            std::fs::write(out.join(dist_dir).join(&name), framed).unwrap();
            dist_index += 1;
        }
    }
    std::fs::write(
        out.join("handshake").join(format!(
            "otp{otp}-initiator{}.transcript",
            if header { "" } else { "-pass-through" }
        )),
        lines.join("\n") + "\n",
    )
    .unwrap();
    eprintln!(
        "wrote {} dist frames and the handshake transcript",
        dist_index
    );
    node.shutdown().await;
}
