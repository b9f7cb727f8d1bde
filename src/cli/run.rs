//! `beamlink run`: join and stay until SIGTERM or SIGINT.

use super::{NodeOpts, PeerOpts, exit};
use crate::cluster::ClusterConfig;
use crate::discovery::DnsQuery;
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
    /// Also register rig_sink and rig_echo, the benchmark peers.
    #[arg(long)]
    bench_services: bool,
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
    let dns = match &args.peers.dns_query {
        None => None,
        Some(q) => {
            let server = match args
                .peers
                .dns_server
                .as_deref()
                .map(crate::discovery::parse_server)
            {
                Some(None) => {
                    eprintln!("beamlink: --dns-server must be IP or IP:PORT");
                    return exit::USAGE;
                }
                Some(s) => s,
                None => None,
            };
            match DnsQuery::new(q, server) {
                Ok(d) => Some(d),
                Err(e) => {
                    eprintln!("beamlink: {e}");
                    return exit::CONFIG;
                }
            }
        }
    };
    let name = args.node.name.clone().unwrap_or_else(|| "beamlink".into());
    let mut toward = statics.iter().find_map(|n| n.host_ip());
    if toward.is_none()
        && !name.contains('@')
        && let Some(dns) = &dns
    {
        toward = first_answer(dns, args.peers.poll_interval).await;
    }
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
    if args.bench_services {
        node.start_bench_services();
    }
    let mut cluster = ClusterConfig::statics(statics, args.peers.poll_interval);
    cluster.dns = dns;
    cluster.basename = args.peers.peer_basename.clone();
    let manager = tokio::spawn(crate::cluster::run(node.clone(), cluster));
    wait_for_signal().await;
    info!("shutting down");
    node.shutdown().await;
    let _ = manager.await;
    exit::OK
}

/// The first address DNS gives, to pick our own address from; waits up to three polls.
async fn first_answer(dns: &DnsQuery, poll: Duration) -> Option<std::net::IpAddr> {
    for attempt in 0..3 {
        match dns.lookup().await {
            Ok(ips) => return ips.first().copied(),
            Err(e) => {
                warn!("{e} (attempt {} of 3 to pick our address)", attempt + 1);
                tokio::time::sleep(poll).await;
            }
        }
    }
    None
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
