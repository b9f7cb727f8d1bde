//! `beamlink run`: join and stay until SIGTERM or SIGINT.

use super::{NodeOpts, PeerOpts, exit};
use crate::builder::StartError;
use crate::epmd::EpmdMode;
use crate::node::{Node, OnBadMessage};
use crate::watch::MeshMode;
use clap::Args;
use std::net::SocketAddr;
use std::time::Duration;
use tracing::{info, warn};

#[derive(Args, Debug)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    node: NodeOpts,
    #[command(flatten)]
    peers: PeerOpts,
    /// Where to accept distribution connections: PORT (every IPv4 and IPv6 address),
    /// ADDR:PORT or [IPV6]:PORT (default: every address, an ephemeral port; with
    /// --dist-port, that port).
    #[arg(long, value_name = "[ADDR:]PORT", value_parser = crate::config::parse_listen)]
    listen: Option<SocketAddr>,
    /// Also register rig_sink and rig_echo, the benchmark peers.
    #[arg(long)]
    bench_services: bool,
    /// auto (default): use a local EPMD if one answers, else serve EPMD ourselves (and take
    /// over if it goes away); client: require a running EPMD; serve: always serve. Not used
    /// with --dist-port.
    #[arg(long, value_name = "MODE")]
    epmd: Option<EpmdMode>,
    /// Ask visible BEAM nodes that are not connected to each other to connect
    /// (net_kernel:connect_node/1 over erpc); --mesh=report only logs what it would ask.
    #[arg(
        long,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "on",
        value_name = "report"
    )]
    mesh: Option<MeshMode>,
    /// Watch the cluster: every DURATION ask each visible node whom it sees and log what
    /// changes (on with --mesh and --metrics too, every poll interval).
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    view_interval: Option<Duration>,
    /// Serve Prometheus metrics at /metrics, and /healthz, /readyz, on [ADDR:]PORT (a bare
    /// port binds 127.0.0.1).
    #[arg(long, value_parser = crate::metrics::parse_addr, value_name = "[ADDR:]PORT")]
    metrics: Option<SocketAddr>,
    /// What a message from a peer that does not decode does: keep (drop the message, keep
    /// the connection) or drop-link (close the connection, as a BEAM does). Either way it
    /// is counted (beamlink_bad_messages_total) and logged, once a minute per kind.
    #[arg(long, default_value = "keep", value_name = "keep|drop-link")]
    on_bad_message: OnBadMessage,
    /// /readyz is ready when linked to at least N peers (and, with --mesh, the visible
    /// mesh is complete).
    #[arg(long, default_value_t = 1, value_name = "N")]
    ready_min_peers: usize,
}

pub(crate) async fn run(args: RunArgs) -> u8 {
    let cookie = match super::cookie(&args.node) {
        Ok(c) => c,
        Err(e) => return super::config_failure(&e),
    };
    let tls = match super::tls::load(&args.node.tls) {
        Ok(t) => t,
        Err(code) => return code,
    };
    // Checked here for the command line's own messages and exit codes; the builder parses
    // the same values again.
    let targets = match args.peers.targets(args.node.dist_port) {
        Ok(t) => t,
        Err(code) => return code,
    };
    for peer in &targets.statics {
        if let Err(e) = super::dial_target(peer.as_str()) {
            eprintln!("beamlink: --connect {:?}: {e}", peer.as_str());
            return exit::USAGE;
        }
    }
    // BEAMLINK_NAME is run's alone (see NodeOpts::name).
    let name = args
        .node
        .name
        .clone()
        .or_else(|| {
            std::env::var("BEAMLINK_NAME")
                .ok()
                .filter(|n| !n.is_empty())
        })
        .unwrap_or_else(|| "beamlink".into());
    let mut builder = Node::builder()
        .name(name)
        .cookie(cookie)
        .epmd_port(args.node.epmd_port)
        .visible(args.node.visible)
        .net_ticktime(Duration::from_secs(args.node.net_ticktime))
        .poll_interval(args.peers.poll_interval)
        .bench_services(args.bench_services)
        .on_bad_message(args.on_bad_message)
        .ready_min_peers(args.ready_min_peers);
    // Watching asks every visible node something each interval: only when asked for.
    if args.mesh.is_some() || args.metrics.is_some() || args.view_interval.is_some() {
        builder = builder.watch(
            args.view_interval.unwrap_or(args.peers.poll_interval),
            args.mesh.unwrap_or_default(),
        );
    }
    if let Some(addr) = args.metrics {
        builder = builder.metrics(addr);
    }
    if let Some(tls) = tls {
        builder = builder.tls(tls);
    }
    if let Some(listen) = args.listen {
        builder = builder.listen(listen);
    }
    match (args.node.dist_port, args.epmd) {
        (Some(port), mode) => {
            if let Some(mode) = mode {
                warn!("--epmd {mode} is not used with --dist-port {port} (no EPMD at all)");
            }
            builder = builder.dist_port(port);
        }
        (None, mode) => builder = builder.epmd(mode.unwrap_or_default()),
    }
    for peer in &targets.statics {
        builder = builder.connect(peer.as_str());
    }
    if let Some(dns) = &targets.dns {
        builder = builder.dns_query(dns.query());
        if let Some(server) = dns.server() {
            builder = builder.dns_server(server);
        }
    }
    if let Some(basename) = targets.basename {
        builder = builder.peer_basename(basename);
    }
    let node = tokio::select! {
        started = builder.start() => match started {
            Ok(node) => node,
            Err(e) => {
                eprintln!("beamlink: {e}");
                return start_failure(&e);
            }
        },
        // Dropping the start withdraws a registration in progress.
        _ = wait_for_signal() => return exit::OK,
    };
    wait_for_signal().await;
    info!("shutting down");
    node.shutdown().await;
    exit::OK
}

/// The exit code of a failed start.
fn start_failure(e: &StartError) -> u8 {
    match e {
        StartError::Listen { .. }
        | StartError::Metrics { .. }
        | StartError::Epmd { .. }
        | StartError::Node(_) => exit::UNAVAILABLE,
        StartError::Peer { .. } => exit::USAGE,
        _ => exit::CONFIG,
    }
}

pub(crate) async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
