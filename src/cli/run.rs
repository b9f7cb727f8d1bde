//! `beamlink run`: join and stay until SIGTERM or SIGINT.

use super::{NodeOpts, PeerOpts, exit};
use crate::node::{Node, NodeConfig};
use crate::proto::node_name::NodeName;
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
    /// Distribution port to accept connections on (default: ephemeral).
    #[arg(long, value_name = "PORT")]
    listen: Option<u16>,
}

pub(crate) async fn run(args: RunArgs) -> u8 {
    let cookie = match super::cookie(&args.node) {
        Ok(c) => c,
        Err(e) => return super::config_failure(&e),
    };
    let mut statics = Vec::new();
    for text in &args.peers.connect {
        match NodeName::parse(text) {
            Ok(n) => statics.push(n),
            Err(e) => {
                eprintln!("beamlink: --connect {text:?}: {e}");
                return exit::USAGE;
            }
        }
    }
    let toward = statics.iter().find_map(|n| n.host_ip());
    let name = args.node.name.clone().unwrap_or_else(|| "beamlink".into());
    let (name, why) = match crate::config::node_name(&name, toward) {
        Ok(n) => n,
        Err(e) => return super::config_failure(&e),
    };
    if let Some(why) = why {
        info!(node = %name, "node name uses {why}");
    }
    let mut config = NodeConfig::new(name, cookie);
    config.visible = args.node.visible;
    config.epmd_port = args.node.epmd_port;
    config.link.net_ticktime = Duration::from_secs(args.node.net_ticktime.max(1));
    config.listen = Some(SocketAddr::from(([0, 0, 0, 0], args.listen.unwrap_or(0))));
    let node = match Node::start(config).await {
        Ok(n) => n,
        Err(e) => {
            eprintln!("beamlink: {e}");
            return exit::UNAVAILABLE;
        }
    };
    for peer in statics {
        let n = node.clone();
        let poll = args.peers.poll_interval;
        tokio::spawn(async move { keep_connected(n, peer, poll).await });
    }
    wait_for_signal().await;
    info!("shutting down");
    node.shutdown().await;
    exit::OK
}

/// Keeps a static peer connected: retries with a capped backoff (1 s doubling up to the
/// poll interval), and reconnects when its link drops.
async fn keep_connected(node: Node, peer: NodeName, cap: Duration) {
    let mut backoff = Duration::from_secs(1);
    loop {
        match node.connect(&peer).await {
            Ok(link) => {
                backoff = Duration::from_secs(1);
                tokio::select! {
                    _ = link.closed() => {}
                    _ = node.shutting_down() => return,
                }
            }
            Err(e) => {
                warn!(%peer, "cannot connect: {e}; retrying in {backoff:?}");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = node.shutting_down() => return,
                }
                backoff = (backoff * 2).min(cap.max(Duration::from_secs(1)));
            }
        }
    }
}

async fn wait_for_signal() {
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
