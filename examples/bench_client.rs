//! The Rust side of `scripts/bench`, built only from the public library API: library nodes
//! that send to `rig_sink` (workloads b and c) and library nodes that just stay connected
//! (the idle peers of workloads f and g).
//!
//! ```text
//! BEAMLINK_COOKIE=... bench_client agent --name ra@127.0.0.1
//! BEAMLINK_COOKIE=... bench_client peers --target bl@127.0.0.1 --count 1000 --prefix p [--net-ticktime 8]
//! ```
//! `ERL_EPMD_PORT` is honoured; the nodes do not listen and do not register with EPMD.
//! `--tls-optfile FILE` (before the subcommand) makes every node dial over TLS with OTP's
//! `ssl_dist_optfile` (docs/tls.md), for the TLS workloads.
//!
//! `agent` reads one command per line on stdin and answers each with one line
//! `RESULT <json>` on stdout (`{"error": ...}` when it failed); it stops at end of input:
//! * `prepare NODE`: connect to NODE and check that its `rig_sink` answers;
//! * `tput NODE KIND N WARM`: send WARM, then N messages of KIND (`tuple16` =
//!   `{Seq, <<16 bytes>>}`, `bin1k`, `bin64k`) to `{rig_sink, NODE}`, each batch followed by
//!   `{rig_done, Pid, Ref}`; the N batch is timed until `{rig_done, Ref, N}` arrives;
//! * `connect NODE N PAUSE_MS`: N cycles of `Node::connect` (EPMD lookup, TCP, TLS when
//!   configured, distribution handshake; timed) then close and wait until the link is gone,
//!   PAUSE_MS apart; the same statistics as `bench_driver`'s `{connect, ...}`.
//!
//! `peers` starts COUNT nodes, connects each to the target (a few at a time), prints
//! `RESULT {"up": U, "failed": F, "ms": T}`, holds the links until stdin closes (or a
//! `quit` line), then shuts every node down and prints `RESULT {"stopped": COUNT}`. A
//! `status` line is answered with `RESULT {"connected": K}`, the peers whose link is up.

use beamlink::node::{Dest, Envelope, Node, Process};
use beamlink::proto::digest::Cookie;
use beamlink::proto::node_name::NodeName;
use beamlink::proto::term::Term;
use beamlink::tls::{TlsConfig, TlsSources};
use bytes::Bytes;
use clap::{Parser, Subcommand};
use serde_json::{Value, json};
use std::io::BufRead;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// How long one batch may take before the run counts as failed.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Parser)]
#[command(about = "Rust load generator and idle peers for scripts/bench")]
struct Cli {
    /// Dial over TLS with this OTP ssl_dist_optfile.
    #[arg(long, global = true)]
    tls_optfile: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Send workloads on command (see the module docs).
    Agent {
        /// Our node name.
        #[arg(long)]
        name: String,
    },
    /// Hold COUNT idle links to TARGET until stdin closes.
    Peers {
        /// The node every peer connects to.
        #[arg(long)]
        target: String,
        /// How many peer nodes.
        #[arg(long)]
        count: usize,
        /// Peer names are PREFIX<i>@127.0.0.1.
        #[arg(long)]
        prefix: String,
        /// Handshakes in flight at once.
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// Every peer's net_ticktime, in seconds (ticks every quarter of it).
        #[arg(long, default_value_t = 60)]
        net_ticktime: u64,
    },
}

fn main() {
    let cli = Cli::parse();
    let Ok(cookie) = std::env::var("BEAMLINK_COOKIE") else {
        eprintln!("bench_client: set BEAMLINK_COOKIE");
        std::process::exit(78);
    };
    let epmd_port = match std::env::var("ERL_EPMD_PORT") {
        Ok(p) => p.parse().unwrap_or_else(|_| {
            eprintln!("bench_client: ERL_EPMD_PORT={p:?} is not a port");
            std::process::exit(78);
        }),
        Err(_) => 4369,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let tls = match cli.tls_optfile.clone() {
        None => None,
        Some(optfile) => {
            let sources = TlsSources {
                optfile: Some(optfile),
                ..TlsSources::default()
            };
            match TlsConfig::load(&sources) {
                Ok(tls) => tls,
                Err(e) => {
                    eprintln!("bench_client: {e}");
                    std::process::exit(78);
                }
            }
        }
    };
    let settings = Settings {
        cookie: Cookie::new(cookie),
        epmd_port,
        tls,
        net_ticktime: Duration::from_secs(60),
    };
    let code = runtime.block_on(async move {
        match cli.command {
            Command::Agent { name } => agent(&settings, &name).await,
            Command::Peers {
                target,
                count,
                prefix,
                concurrency,
                net_ticktime,
            } => {
                let settings = Settings {
                    net_ticktime: Duration::from_secs(net_ticktime.max(1)),
                    ..settings
                };
                peers(&settings, &target, count, &prefix, concurrency).await
            }
        }
    });
    std::process::exit(code);
}

struct Settings {
    cookie: Cookie,
    epmd_port: u16,
    tls: Option<TlsConfig>,
    net_ticktime: Duration,
}

impl Settings {
    async fn node(&self, name: &str) -> Result<Node, String> {
        let mut builder = Node::builder()
            .name(name)
            .cookie(self.cookie.clone())
            .dial_only()
            .epmd_port(self.epmd_port)
            .net_ticktime(self.net_ticktime);
        if let Some(tls) = &self.tls {
            builder = builder.tls(tls.clone());
        }
        builder.start().await.map_err(|e| e.to_string())
    }
}

fn result(value: Value) {
    println!("RESULT {value}");
}

/// stdin lines, read on a thread so that the runtime never blocks on them.
fn stdin_lines() -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel(16);
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            if tx.blocking_send(line).is_err() {
                break;
            }
        }
    });
    rx
}

// ------------------------------------------------------------------------------- agent

async fn agent(settings: &Settings, name: &str) -> i32 {
    let node = match settings.node(name).await {
        Ok(n) => n,
        Err(e) => {
            eprintln!("bench_client: {e}");
            return 69;
        }
    };
    let mut process = node.spawn_process();
    result(json!({ "ready": node.name().as_str() }));
    let mut lines = stdin_lines();
    while let Some(line) = lines.recv().await {
        let words: Vec<&str> = line.split_whitespace().collect();
        let answer = match words.as_slice() {
            [] => continue,
            ["quit"] => break,
            ["prepare", target] => prepare(&node, &mut process, target).await,
            ["tput", target, kind, n, warm] => {
                tput(&node, &mut process, target, kind, n, warm).await
            }
            ["connect", target, n, pause_ms] => connect_cycles(&node, target, n, pause_ms).await,
            _ => Err(format!("unknown command {line:?}")),
        };
        result(answer.unwrap_or_else(|e| json!({ "error": e })));
    }
    drop(process);
    node.shutdown().await;
    0
}

async fn prepare(node: &Node, process: &mut Process, target: &str) -> Result<Value, String> {
    let target = NodeName::parse(target).map_err(|e| format!("{target}: {e}"))?;
    node.connect(&target).await.map_err(|e| e.to_string())?;
    let dest = Dest::name("rig_sink", &target);
    batch(node, process, &dest, Kind::Tuple16, 0).await?;
    Ok(json!({ "connected": target.as_str() }))
}

#[derive(Clone, Copy)]
enum Kind {
    Tuple16,
    Bin1k,
    Bin64k,
}

impl Kind {
    fn parse(text: &str) -> Result<Kind, String> {
        match text {
            "tuple16" => Ok(Kind::Tuple16),
            "bin1k" => Ok(Kind::Bin1k),
            "bin64k" => Ok(Kind::Bin64k),
            _ => Err(format!("unknown kind {text:?}")),
        }
    }

    fn payload(self) -> Bytes {
        match self {
            Kind::Tuple16 => Bytes::from(vec![0xAB; 16]),
            Kind::Bin1k => Bytes::from(vec![0xCD; 1024]),
            Kind::Bin64k => Bytes::from(vec![0xEF; 65536]),
        }
    }
}

async fn tput(
    node: &Node,
    process: &mut Process,
    target: &str,
    kind: &str,
    n: &str,
    warm: &str,
) -> Result<Value, String> {
    let target = NodeName::parse(target).map_err(|e| format!("{target}: {e}"))?;
    let kind = Kind::parse(kind)?;
    let n: u64 = n.parse().map_err(|_| format!("bad count {n:?}"))?;
    let warm: u64 = warm.parse().map_err(|_| format!("bad count {warm:?}"))?;
    let dest = Dest::name("rig_sink", &target);
    batch(node, process, &dest, kind, warm).await?;
    let elapsed = batch(node, process, &dest, kind, n).await?;
    let ns = elapsed.as_nanos() as f64;
    Ok(json!({ "ns": ns as u64, "count": n, "msgs_per_s": n as f64 / (ns / 1e9) }))
}

/// Sends `n` messages of `kind` and then `{rig_done, Pid, Ref}`; the time until the sink's
/// reply says it counted all `n`.
async fn batch(
    node: &Node,
    process: &mut Process,
    dest: &Dest,
    kind: Kind,
    n: u64,
) -> Result<Duration, String> {
    while process.recv_timeout(Duration::ZERO).await.is_some() {}
    let payload = kind.payload();
    let from = process.pid().clone();
    let started = Instant::now();
    for seq in 1..=n {
        let message = match kind {
            Kind::Tuple16 => Term::tuple([Term::Int(seq as i64), Term::Binary(payload.clone())]),
            Kind::Bin1k | Kind::Bin64k => Term::Binary(payload.clone()),
        };
        node.send(Some(&from), dest, message)
            .await
            .map_err(|e| e.to_string())?;
    }
    let reference = node.make_ref();
    let done = Term::tuple([
        Term::atom("rig_done"),
        Term::Pid(from.clone()),
        Term::reference(reference.clone()),
    ]);
    node.send(Some(&from), dest, done)
        .await
        .map_err(|e| e.to_string())?;
    let deadline = started + RUN_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(envelope) = process.recv_timeout(left).await else {
            return Err(format!("no rig_done reply within {RUN_TIMEOUT:?}"));
        };
        let Envelope::Message { message, .. } = envelope else {
            continue;
        };
        if let Some([label, r, count]) = message.as_tuple()
            && label.is_atom("rig_done")
            && r.as_ref() == Some(&reference)
        {
            let elapsed = started.elapsed();
            return match count.as_u64() {
                Some(c) if c == n => Ok(elapsed),
                _ => Err(format!("the sink counted {count}, we sent {n}")),
            };
        }
    }
}

// ----------------------------------------------------------------------------- connect

async fn connect_cycles(
    node: &Node,
    target: &str,
    n: &str,
    pause_ms: &str,
) -> Result<Value, String> {
    let target = NodeName::parse(target).map_err(|e| format!("{target}: {e}"))?;
    let n: usize = n.parse().map_err(|_| format!("bad count {n:?}"))?;
    let pause = Duration::from_millis(
        pause_ms
            .parse()
            .map_err(|_| format!("bad pause {pause_ms:?}"))?,
    );
    disconnect(node, &target).await;
    tokio::time::sleep(pause).await;
    let mut samples = Vec::with_capacity(n);
    let mut failures = 0u64;
    let mut last_error = Value::Null;
    for _ in 0..n {
        let started = Instant::now();
        match node.connect(&target).await {
            Ok(_) => samples.push(started.elapsed().as_nanos() as f64),
            Err(e) => {
                failures += 1;
                last_error = json!(e.to_string());
            }
        }
        disconnect(node, &target).await;
        tokio::time::sleep(pause).await;
    }
    Ok(json!({
        "connect": stats(&mut samples),
        "failures": failures,
        "last_error": last_error,
        "pause_ms": pause.as_millis() as u64,
    }))
}

/// Closes the link to `target` and waits (at most a second, as `bench_driver` does) until
/// the node no longer lists it, so that the next connect starts from nothing.
async fn disconnect(node: &Node, target: &NodeName) {
    if let Some(connection) = node.connection(target) {
        connection.close();
        let _ = tokio::time::timeout(Duration::from_secs(1), connection.closed()).await;
    }
    for _ in 0..1000 {
        if node.connection(target).is_none() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Nearest-rank statistics in microseconds, the keys `bench_driver:stats/1` uses.
fn stats(samples_ns: &mut [f64]) -> Value {
    if samples_ns.is_empty() {
        return json!({ "n": 0 });
    }
    samples_ns.sort_by(f64::total_cmp);
    let len = samples_ns.len();
    let rank =
        |p: f64| samples_ns[((p / 100.0 * len as f64).ceil() as usize).clamp(1, len) - 1] / 1e3;
    json!({
        "n": len,
        "min_us": samples_ns[0] / 1e3,
        "median_us": rank(50.0),
        "p90_us": rank(90.0),
        "p99_us": rank(99.0),
        "max_us": samples_ns[len - 1] / 1e3,
        "mean_us": samples_ns.iter().sum::<f64>() / len as f64 / 1e3,
    })
}

// ------------------------------------------------------------------------------- peers

async fn peers(
    settings: &Settings,
    target: &str,
    count: usize,
    prefix: &str,
    concurrency: usize,
) -> i32 {
    let target = match NodeName::parse(target) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("bench_client: {target}: {e}");
            return 64;
        }
    };
    let started = Instant::now();
    let mut nodes = Vec::with_capacity(count);
    let mut failed = 0usize;
    let mut errors = Vec::new();
    let mut next = 0usize;
    while next < count {
        let chunk: Vec<usize> = (next..count.min(next + concurrency.max(1))).collect();
        next += chunk.len();
        let attempts = chunk.into_iter().map(|i| {
            let target = target.clone();
            let name = format!("{prefix}{i}@127.0.0.1");
            async move {
                let node = settings.node(&name).await?;
                let mut last = String::new();
                for _ in 0..3 {
                    match node.connect(&target).await {
                        Ok(_) => return Ok(node),
                        Err(e) => last = e.to_string(),
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                node.shutdown().await;
                Err(format!("{name}: {last}"))
            }
        });
        for outcome in futures_util::future::join_all(attempts).await {
            match outcome {
                Ok(node) => nodes.push(node),
                Err(e) => {
                    failed += 1;
                    if errors.len() < 5 {
                        errors.push(e);
                    }
                }
            }
        }
    }
    result(json!({
        "up": nodes.len(),
        "failed": failed,
        "errors": errors,
        "ms": started.elapsed().as_millis() as u64,
    }));
    let mut lines = stdin_lines();
    while let Some(line) = lines.recv().await {
        match line.trim() {
            "quit" => break,
            "status" => {
                let connected = nodes
                    .iter()
                    .filter(|n| n.connected_nodes().contains(&target))
                    .count();
                result(json!({ "connected": connected }));
            }
            _ => result(json!({ "error": format!("unknown command {line:?}") })),
        }
    }
    let stopped = nodes.len();
    futures_util::future::join_all(nodes.iter().map(|n| n.shutdown())).await;
    result(json!({ "stopped": stopped }));
    0
}
