//! The Prometheus exporter of `beamlink run --metrics [ADDR:]PORT`, and the health
//! endpoints Docker and Kubernetes probe: `/metrics` ([`encode`]), `/healthz` (the process
//! is up) and `/readyz` (linked to at least `--ready-min-peers` peers and, with `--mesh`,
//! the visible mesh complete: [`Readiness`]). Served by [`http`] (hyper, HTTP/1 only).
//! Off by default: no listener unless asked.

pub mod encode;
pub mod http;

use crate::cluster::ClusterStats;
use crate::node::Node;
use crate::watch::{MeshMode, Watch};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

/// The port the documentation uses with `--metrics`, and the default of `beamlink health`.
pub const DEFAULT_PORT: u16 = 9568;

/// What the exporter reads at each request.
#[derive(Clone, Debug)]
pub struct Sources {
    /// The node (its connections).
    pub node: Node,
    /// The connection manager's counters, when it runs.
    pub cluster: Option<Arc<ClusterStats>>,
    /// The watcher's view, when it runs.
    pub watch: Option<Arc<Watch>>,
    /// `--ready-min-peers`.
    pub ready_min_peers: usize,
}

/// Whether `/readyz` says ready, and why not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// Ready.
    Ready,
    /// Not ready, with the reasons in words.
    NotReady(Vec<String>),
}

impl fmt::Display for Readiness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Readiness::Ready => f.write_str("ready"),
            Readiness::NotReady(why) => write!(f, "not ready: {}", why.join("; ")),
        }
    }
}

impl Sources {
    /// Ready when linked to at least `ready_min_peers` peers and, with `--mesh` (or
    /// `--mesh=report`), the latest view shows every pair of visible nodes linked.
    pub fn readiness(&self) -> Readiness {
        let mut why = Vec::new();
        let peers = self.node.connections().len();
        if peers < self.ready_min_peers {
            why.push(format!(
                "linked to {peers} of the {} peers required (--ready-min-peers)",
                self.ready_min_peers
            ));
        }
        if let Some(watch) = &self.watch
            && watch.config().mesh != MeshMode::Off
        {
            match watch.latest() {
                None => why.push("no cluster view yet".into()),
                Some(s) if !s.view.is_complete() => why.push(format!(
                    "the visible mesh is not complete ({} partition{}, {} missing link{})",
                    s.view.partitions(),
                    if s.view.partitions() == 1 { "" } else { "s" },
                    s.view.missing.len(),
                    if s.view.missing.len() == 1 { "" } else { "s" },
                )),
                Some(_) => {}
            }
        }
        if why.is_empty() {
            Readiness::Ready
        } else {
            Readiness::NotReady(why)
        }
    }
}

/// `[ADDR:]PORT`: a bare port is 127.0.0.1.
pub fn parse_addr(text: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = text.parse::<u16>() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    text.parse::<SocketAddr>()
        .map_err(|_| format!("--metrics {text:?}: use PORT, ADDR:PORT or [ADDR6]:PORT"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_port_binds_loopback() {
        assert_eq!(parse_addr("9568"), Ok("127.0.0.1:9568".parse().unwrap()));
        assert_eq!(
            parse_addr("0.0.0.0:9568"),
            Ok("0.0.0.0:9568".parse().unwrap())
        );
        assert_eq!(parse_addr("[::1]:9568"), Ok("[::1]:9568".parse().unwrap()));
        assert!(parse_addr("localhost:9568").is_err());
        assert!(parse_addr("70000").is_err());
    }
}
