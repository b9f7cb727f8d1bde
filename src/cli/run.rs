//! `beamlink run`: join and stay until SIGTERM or SIGINT.

use super::{NodeOpts, PeerOpts, exit};
use crate::cluster::ClusterConfig;
use crate::epmd::{EpmdMode, EpmdStatus, Registrar, RegistrarConfig};
use crate::node::{Node, NodeConfig};
use crate::proto::epmd::{Alive2Request, AliveName};
use clap::Args;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::info;

#[derive(Args, Debug)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    node: NodeOpts,
    #[command(flatten)]
    peers: PeerOpts,
    /// Distribution port to accept connections on (default: ephemeral).
    #[arg(long, value_name = "PORT")]
    listen: Option<u16>,
    /// Also register rig_sink and rig_echo, the benchmark peers.
    #[arg(long)]
    bench_services: bool,
    /// auto: use a local EPMD if one answers, else serve EPMD ourselves (and take over if
    /// it goes away); client: require a running EPMD; serve: always serve.
    #[arg(long, default_value = "auto", value_name = "MODE")]
    epmd: EpmdMode,
}

pub(crate) async fn run(args: RunArgs) -> u8 {
    let cookie = match super::cookie(&args.node) {
        Ok(c) => c,
        Err(e) => return super::config_failure(&e),
    };
    let targets = match args.peers.targets() {
        Ok(t) => t,
        Err(code) => return code,
    };
    for peer in &targets.statics {
        if let Err(e) = super::dial_target(peer.as_str()) {
            eprintln!("beamlink: --connect {:?}: {e}", peer.as_str());
            return exit::USAGE;
        }
    }
    let name = args.node.name.clone().unwrap_or_else(|| "beamlink".into());
    let toward = if name.contains('@') {
        None
    } else {
        super::address_toward(&targets, 3, args.peers.poll_interval).await
    };
    let (name, why) = match crate::config::node_name(&name, toward) {
        Ok(n) => n,
        Err(e) => return super::config_failure(&e),
    };
    if let Some(why) = why {
        info!(node = %name, "node name uses {why}");
    }
    let listen = SocketAddr::from(([0, 0, 0, 0], args.listen.unwrap_or(0)));
    let listener = match TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("beamlink: cannot listen for connections on {listen}: {e}");
            return exit::UNAVAILABLE;
        }
    };
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    let alive = match AliveName::new(name.alive()) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("beamlink: {name} cannot be registered with EPMD: {e}");
            return exit::CONFIG;
        }
    };
    // The registrar outlives the node: links close first, then the name goes.
    let registrar_stop = CancellationToken::new();
    let registrar = Registrar::start(
        RegistrarConfig::new(
            args.epmd,
            args.node.epmd_port,
            Alive2Request::new(alive, port),
        ),
        &registrar_stop,
    );
    let creation = tokio::select! {
        status = registrar.registered() => match status {
            Some(EpmdStatus::Registered { creation, .. }) => creation,
            _ => {
                eprintln!("beamlink: EPMD registration stopped");
                return exit::UNAVAILABLE;
            }
        },
        _ = wait_for_signal() => {
            registrar.shutdown().await;
            return exit::OK;
        }
    };
    info!(status = %*registrar.status().borrow(), "EPMD");
    let mut config = NodeConfig::new(name, cookie);
    config.visible = args.node.visible;
    config.epmd_port = args.node.epmd_port;
    config.connection.net_ticktime = Duration::from_secs(args.node.net_ticktime.max(1));
    // EPMD gives a new creation when we re-register after it restarts; like the BEAM we
    // keep the first one, so pids we handed out stay valid.
    config.creation = Some(creation);
    let node = match Node::start_on(config, Some(listener)).await {
        Ok(n) => n,
        Err(e) => {
            eprintln!("beamlink: {e}");
            registrar.shutdown().await;
            return exit::UNAVAILABLE;
        }
    };
    if args.bench_services {
        node.start_bench_services();
    }
    let mut cluster = ClusterConfig::statics(targets.statics, args.peers.poll_interval);
    cluster.dns = targets.dns;
    cluster.basename = targets.basename;
    let manager = tokio::spawn(crate::cluster::run(node.clone(), cluster));
    wait_for_signal().await;
    info!("shutting down");
    node.shutdown().await;
    let _ = manager.await;
    registrar.shutdown().await;
    exit::OK
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
