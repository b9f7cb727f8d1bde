//! Fault injection for the reliability tests (`tests/fault_*.rs`, `tests/soak.rs`):
//!
//! * what a process holds, read from `/proc`: [`fd_count`], [`rss_kib`], [`thread_count`];
//! * what a running beamlink says about itself: [`beamlink_stats`] (its `:stats` call, asked
//!   from a BEAM node);
//! * raw distribution peers driven by beamlink's own sans-IO state machines, which can stop
//!   or reset at any step: [`raw_local`], [`dial_handshake`], [`pass_through`], [`reset`],
//!   [`closed_within`];
//! * [`FakeDns`]: a UDP DNS responder on loopback whose answer the test sets at any moment
//!   (records with duplicates, an empty NOERROR answer, NXDOMAIN, SERVFAIL), which dnsmasq
//!   cannot be made to give on demand.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use beamlink::proto::control::Control;
use beamlink::proto::digest::Cookie;
use beamlink::proto::dist_header::DistDecoder;
use beamlink::proto::flags::DistFlags;
use beamlink::proto::frame::{Frame, take_frame};
use beamlink::proto::handshake::{Established, Initiator, LocalNode};
use beamlink::proto::node_name::NodeName;
use beamlink::proto::term::{Atom, Pid, Reference, Term, encode};
use bytes::{BufMut, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{BeamNode, Beamlink, Epmd, Otp, TEST_COOKIE, unique_name};

/// Open file descriptors of `pid` (entries of `/proc/<pid>/fd`).
pub fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/fd: {e}"))
        .count()
}

/// Resident memory of `pid` in KiB (`VmRSS` of `/proc/<pid>/status`).
pub fn rss_kib(pid: u32) -> u64 {
    status_field(pid, "VmRSS:")
}

/// Threads of `pid` (`Threads` of `/proc/<pid>/status`).
pub fn thread_count(pid: u32) -> u64 {
    status_field(pid, "Threads:")
}

fn status_field(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/status: {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("/proc/{pid}/status has no {field}"))
}

/// A running beamlink's resource counters, from `gen_server:call({beamlink, R}, stats)`
/// evaluated on `beam`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BeamlinkStats {
    /// tokio tasks alive.
    pub tasks: u64,
    /// Live links.
    pub links: u64,
    /// Handshakes under way.
    pub pending: u64,
}

/// Asks the beamlink `node` for its `:stats` from `beam`. Panics if it does not answer.
pub fn beamlink_stats(beam: &BeamNode, node: &str) -> BeamlinkStats {
    let text = beam
        .eval(&format!(
            "(fun(#{{tasks := T, links := L, pending := P}}) -> {{T, L, P}} end)\
             (gen_server:call({{beamlink, '{node}'}}, stats, 5000))"
        ))
        .unwrap_or_else(|e| panic!("stats of {node}: {e}"));
    let numbers: Vec<u64> = text
        .trim_matches(|c| c == '{' || c == '}')
        .split(',')
        .map(|n| n.trim().parse().unwrap_or_else(|_| panic!("stats: {text}")))
        .collect();
    BeamlinkStats {
        tasks: numbers[0],
        links: numbers[1],
        pending: numbers[2],
    }
}

/// Polls `read` until it returns `want` (then true) or `timeout` passes.
pub fn settles<T: PartialEq + Copy + std::fmt::Debug>(
    mut read: impl FnMut() -> T,
    want: T,
    timeout: Duration,
) -> Result<(), T> {
    let deadline = Instant::now() + timeout;
    loop {
        let got = read();
        if got == want {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(got);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The command `beamlink run --name NAME --epmd client` with `epmd`, plus `extra` arguments.
pub fn run_command(epmd: &Epmd, name: &str, extra: &[&str]) -> std::process::Command {
    run_command_at(&epmd.port().to_string(), name, extra)
}

/// The command `beamlink run --name NAME --epmd client --epmd-port EPMD_PORT` plus `extra`.
pub fn run_command_at(epmd_port: &str, name: &str, extra: &[&str]) -> std::process::Command {
    let mut args = vec![
        "run",
        "--name",
        name,
        "--epmd",
        "client",
        "--epmd-port",
        epmd_port,
    ];
    args.extend_from_slice(extra);
    super::beamlink_command(&args)
}

/// [`run_command`] started, once it says so.
pub fn start_beamlink(epmd: &Epmd, name: &str, extra: &[&str]) -> Beamlink {
    start_prepared(run_command(epmd, name, extra))
}

/// A prepared `beamlink run` command started, once it says so.
pub fn start_prepared(command: std::process::Command) -> Beamlink {
    let bl = Beamlink::start_with(command, TEST_COOKIE);
    bl.wait_log("node started", Duration::from_secs(15));
    bl
}

/// A live beamlink that a BEAM node has pinged: where most fault tests start. Fields drop in
/// order: the BEAM, then beamlink, then their EPMD.
pub struct PingedBeamlink {
    pub beam: BeamNode,
    pub bl: Beamlink,
    pub epmd: Epmd,
    /// beamlink's node name, `<prefix>_..@127.0.0.1`.
    pub name: String,
    pub pid: u32,
    /// beamlink's distribution address.
    pub addr: SocketAddr,
}

/// Starts an EPMD, beamlink named after `prefix` and a BEAM node of `otp`, and has the BEAM
/// ping beamlink.
pub fn pinged_beamlink(otp: Otp, prefix: &str) -> PingedBeamlink {
    let epmd = Epmd::start();
    let name = format!("{}@127.0.0.1", unique_name(prefix));
    let bl = start_beamlink(&epmd, &name, &[]);
    let beam = BeamNode::start(otp, epmd.port());
    assert_eq!(
        beam.eval(&format!("net_adm:ping('{name}')")).unwrap(),
        "pong"
    );
    let pid = bl.pid();
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, registered_port(&epmd, &name)));
    PingedBeamlink {
        beam,
        bl,
        epmd,
        name,
        pid,
        addr,
    }
}

/// The distribution port `node` (`alive@host`) registered with `epmd`.
pub fn registered_port(epmd: &Epmd, node: &str) -> u16 {
    let alive = node.split('@').next().unwrap_or(node);
    epmd.names()
        .into_iter()
        .find(|(n, _)| n == alive)
        .map(|(_, p)| p)
        .unwrap_or_else(|| panic!("{alive} is not registered with epmd {}", epmd.port()))
}

/// What a raw peer called `name` tells the handshake about itself: beamlink's own flags,
/// `creation`, `cookie`.
pub fn raw_local(name: &str, cookie: &str, creation: u32) -> LocalNode {
    LocalNode {
        name: NodeName::parse(name).expect("raw peer name"),
        flags: DistFlags::BEAMLINK_DEFAULT,
        creation,
        cookie: Cookie::new(cookie),
    }
}

/// Dials `addr` as `me` and completes a handshake with `peer` (who must have the same
/// cookie). Panics if it fails.
pub async fn dial_handshake(
    addr: SocketAddr,
    me: LocalNode,
    peer: &str,
) -> (TcpStream, Established, BytesMut) {
    let stream = TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    let machine = Initiator::new(me, NodeName::parse(peer).expect("peer name"), 0x5eed);
    let done = beamlink::transport::handshake::initiate(
        stream,
        addr,
        machine,
        Duration::from_secs(10),
        || true,
    )
    .await
    .unwrap_or_else(|e| panic!("handshake with {peer}: {e}"));
    (done.stream, done.established, done.leftover)
}

/// One framed pass-through message: length, 112, the control term, the payload term.
/// `net_kernel` `is_auth` from `from` (a pid of the raw peer) through a raw link, as a
/// pass-through REG_SEND; true when the answer arrives within 5 s. `decoder` and `leftover`
/// carry the link's state between calls.
pub async fn raw_ping(
    stream: &mut TcpStream,
    decoder: &mut DistDecoder,
    leftover: &mut BytesMut,
    from: &Pid,
) -> bool {
    let me = from.node.clone();
    let tag = Term::reference(Reference::new(me.clone(), from.creation, &[1, 2, 3]).unwrap());
    let call = Term::tuple([
        Term::atom("$gen_call"),
        Term::tuple([Term::Pid(from.clone()), tag.clone()]),
        Term::tuple([Term::atom("is_auth"), Term::Atom(me)]),
    ]);
    let reg_send = Term::tuple([
        Term::Int(6),
        Term::Pid(from.clone()),
        Term::atom(""),
        Term::atom("net_kernel"),
    ]);
    if stream
        .write_all(&pass_through(&reg_send, Some(&call)))
        .await
        .is_err()
    {
        return false;
    }
    let wanted = Term::tuple([tag, Term::atom("yes")]);
    let answered = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            while let Ok(Some(frame)) = take_frame(leftover, 1 << 20) {
                if let Frame::Message(m) = frame
                    && let Ok(Some(Control::Send { message, .. })) = decoder.decode(&m)
                    && message == wanted
                {
                    return true;
                }
            }
            match stream.read_buf(leftover).await {
                Ok(0) | Err(_) => return false,
                Ok(_) => {}
            }
        }
    });
    answered.await.unwrap_or(false)
}

pub fn pass_through(control: &Term, payload: Option<&Term>) -> Vec<u8> {
    let mut body = BytesMut::new();
    body.put_u8(112);
    encode(control, &mut body).expect("control term encodes");
    if let Some(p) = payload {
        encode(p, &mut body).expect("payload encodes");
    }
    framed(&body)
}

/// `bytes` behind a 4-byte length.
pub fn framed(bytes: &[u8]) -> Vec<u8> {
    let mut out = (bytes.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(bytes);
    out
}

/// Closes `stream` with a TCP RST (SO_LINGER 0), as a killed peer's kernel does when data
/// was still unread.
pub fn reset(stream: TcpStream) {
    stream.set_zero_linger().expect("SO_LINGER 0");
    drop(stream);
}

/// How the other side ended a connection we only read from.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// EOF or RST, after this long.
    Closed(Duration),
    /// Still open after the limit.
    Open,
}

/// Reads (and discards) until the peer closes the connection or `limit` passes.
pub async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Ended {
    let started = Instant::now();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let left = limit.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => return Ended::Open,
            Ok(Ok(0)) | Ok(Err(_)) => return Ended::Closed(started.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

/// The answer [`FakeDns`] gives to every question.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DnsAnswer {
    /// NOERROR with these A records, in this order, duplicates included; AAAA questions get
    /// NOERROR and no records. An empty list is an empty NOERROR answer (NODATA).
    Records(Vec<Ipv4Addr>),
    /// NXDOMAIN: the name does not exist.
    NxDomain,
    /// SERVFAIL.
    ServFail,
}

/// A DNS server on `127.0.0.1:<free port>` (UDP) answering every question with the current
/// [`DnsAnswer`]. Stops on drop.
pub struct FakeDns {
    addr: SocketAddr,
    answer: Arc<Mutex<DnsAnswer>>,
    questions: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeDns {
    /// Starts answering `answer`.
    pub fn start(answer: DnsAnswer) -> FakeDns {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a UDP port");
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("read timeout");
        let addr = socket.local_addr().expect("local address");
        let answer = Arc::new(Mutex::new(answer));
        let questions = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (answer, questions, stop) = (answer.clone(), questions.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut buf = [0u8; 1500];
                while !stop.load(Ordering::Relaxed) {
                    let Ok((n, from)) = socket.recv_from(&mut buf) else {
                        continue;
                    };
                    questions.fetch_add(1, Ordering::Relaxed);
                    let current = answer.lock().unwrap_or_else(|p| p.into_inner()).clone();
                    if let Some(reply) = dns_reply(&buf[..n], &current) {
                        let _ = socket.send_to(&reply, from);
                    }
                }
            })
        };
        FakeDns {
            addr,
            answer,
            questions,
            stop,
            thread: Some(thread),
        }
    }

    /// `127.0.0.1:<port>`, for `--dns-server`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Changes the answer from now on.
    pub fn set(&self, answer: DnsAnswer) {
        *self.answer.lock().unwrap_or_else(|p| p.into_inner()) = answer;
    }

    /// Questions received so far.
    pub fn questions(&self) -> u64 {
        self.questions.load(Ordering::Relaxed)
    }
}

impl Drop for FakeDns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The reply to one query (RFC 1035 section 4): the header with the query's id, the question
/// copied, then the answer records (name = pointer to the question, TTL 0).
fn dns_reply(query: &[u8], answer: &DnsAnswer) -> Option<Vec<u8>> {
    if query.len() < 12 {
        return None;
    }
    // The question: labels up to the root, then QTYPE and QCLASS.
    let mut at = 12;
    loop {
        let len = *query.get(at)? as usize;
        at += 1;
        if len == 0 {
            break;
        }
        at += len;
    }
    let question = query.get(12..at + 4)?;
    let qtype = u16::from_be_bytes([query[at], query[at + 1]]);
    let (rcode, records): (u8, Vec<Ipv4Addr>) = match answer {
        DnsAnswer::Records(ips) if qtype == 1 => (0, ips.clone()),
        DnsAnswer::Records(_) => (0, Vec::new()),
        DnsAnswer::NxDomain => (3, Vec::new()),
        DnsAnswer::ServFail => (2, Vec::new()),
    };
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(&query[0..2]);
    // QR, opcode copied, AA, RD copied; RA; rcode.
    out.push(0x84 | (query[2] & 0x79));
    out.push(0x80 | rcode);
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&(records.len() as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(question);
    for ip in records {
        out.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4]);
        out.extend_from_slice(&ip.octets());
    }
    Some(out)
}

/// Sends `kill -<signal>` to `pid`.
pub fn kill(pid: u32, signal: &str) {
    let _ = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status();
}

/// Runs `f` on a fresh multi-thread tokio runtime (the BEAM helpers are blocking: they must
/// not run on the runtime the Rust side needs).
pub fn with_runtime<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(f)
}
