//! Operator tools on top of the node: `beamlink nodes`, the cluster as each member sees it,
//! and `beamlink doctor`, which walks the chain a BEAM walks to reach a peer (DNS, EPMD, TCP,
//! handshake, flags, cookie, `is_auth` ping, `erpc`) for every peer and says in plain words
//! which link is broken and what to change.
//!
//! Both start with a [`survey`]: resolve the DNS query (as `run` does, through
//! [`crate::discovery`]), list the names at each address's EPMD when no basename is given,
//! then [`probe`] every peer concurrently. The survey uses a node that only dials; it is
//! hidden, so it never becomes part of the mesh it observes, and its own connections are not
//! counted as links the cluster should have.
//!
//! * [`ClusterView`] ([`ClusterView::from_survey`]): per node its address, what it runs, whom
//!   it is connected to, and which expected links are missing (every pair of visible nodes
//!   should be connected).
//! * [`DoctorReport`] ([`doctor`]): one [`Check`] per step and peer, `ok` / `warn` / `fail` /
//!   `skipped`, each failure with a typed [`Cause`], its evidence and the fix, and an exit
//!   code ([`DoctorReport::exit_code`]).
//!
//! The cookie is never part of any of these values: at most the name of the variable or file
//! it came from.

mod checks;
mod doctor;
mod environment;
mod epmd_less;
mod explain;
mod probe;
mod stats;
mod view;

pub(crate) use doctor::{DoctorContext, doctor};
pub(crate) use probe::{PeerProbe, PingError, Software, peer_nodes, ping, probe, text_of};
pub(crate) use stats::{BeamStats, beam_stats, stats_table};
pub(crate) use view::{ClusterView, NodeView};

use crate::discovery::{DnsError, DnsQuery, EpmdListing};
use crate::node::Node;
use crate::proto::node_name::NodeName;
use futures_util::StreamExt;
use std::net::IpAddr;
use std::time::Duration;

/// Which peers to look at: the same sources `run` connects to.
#[derive(Clone, Debug, Default)]
pub struct Targets {
    /// Peers named on the command line (`--connect`).
    pub statics: Vec<NodeName>,
    /// A DNS name whose addresses are peers (`--dns-query`).
    pub dns: Option<DnsQuery>,
    /// Peers found by DNS are `basename@<ip>`; `None` asks each address's EPMD.
    pub basename: Option<String>,
}

impl Targets {
    /// True when there is nothing to look at.
    pub fn is_empty(&self) -> bool {
        self.statics.is_empty() && self.dns.is_none()
    }
}

/// How a survey runs.
#[derive(Clone, Debug)]
pub struct SurveyOptions {
    /// Limit for each step (EPMD exchange, TCP connect, each handshake message, each call).
    pub timeout: Duration,
    /// Peers probed at once.
    pub max_concurrent: usize,
    /// Also resolve `tasks.<query>` when the query gives one address, to recognise a
    /// Docker Swarm virtual IP.
    pub check_virtual_ip: bool,
}

impl Default for SurveyOptions {
    fn default() -> SurveyOptions {
        SurveyOptions {
            timeout: Duration::from_secs(5),
            max_concurrent: 64,
            check_virtual_ip: false,
        }
    }
}

/// The answer to the DNS query.
#[derive(Clone, Debug)]
pub struct DnsAnswer {
    /// The name asked.
    pub query: String,
    /// Its addresses.
    pub result: Result<Vec<IpAddr>, DnsError>,
    /// With [`SurveyOptions::check_virtual_ip`], when the query is not a `tasks.` name and
    /// gave exactly one address: `tasks.<query>` and its answer.
    pub tasks: Option<(String, Result<Vec<IpAddr>, DnsError>)>,
}

/// What a survey found.
#[derive(Debug)]
pub struct Survey {
    /// The node that looked.
    pub observer: NodeName,
    /// The DNS answer, with a DNS query.
    pub dns: Option<DnsAnswer>,
    /// Without a basename: what the EPMD at each DNS address listed.
    pub listings: Vec<EpmdListing>,
    /// Every peer, sorted by name (static and discovered together).
    pub probes: Vec<PeerProbe>,
    /// Discovery problems (names that are not usable and the like).
    pub notes: Vec<String>,
    /// The observer dials over TLS: each peer's chain has a `tls` step.
    pub tls: bool,
}

/// Resolves the targets and probes every peer (at most `max_concurrent` at once).
pub async fn survey(node: &Node, targets: &Targets, options: &SurveyOptions) -> Survey {
    let mut peers: Vec<NodeName> = targets.statics.clone();
    let mut dns = None;
    let mut listings = Vec::new();
    let mut notes = Vec::new();
    if let Some(query) = &targets.dns {
        let result = query.lookup().await;
        let mut tasks = None;
        if options.check_virtual_ip
            && let Ok(ips) = &result
            && ips.len() == 1
            && !query.query().starts_with("tasks.")
        {
            let name = format!("tasks.{}", query.query());
            let answer = match DnsQuery::new(&name, query.server()) {
                Ok(q) => q.lookup().await,
                Err(e) => Err(e),
            };
            tasks = Some((name, answer));
        }
        if let Ok(ips) = &result {
            let found = crate::discovery::peers_at(
                ips,
                targets.basename.as_deref(),
                node.config().epmd_port,
                options.timeout,
            )
            .await;
            peers.extend(found.peers);
            listings = found.listings;
            notes = found.notes;
        }
        dns = Some(DnsAnswer {
            query: query.query().to_string(),
            result,
            tasks,
        });
    }
    peers.sort();
    peers.dedup();
    peers.retain(|p| p != node.name());
    let timeout = options.timeout;
    let mut probes: Vec<PeerProbe> = futures_util::stream::iter(peers)
        .map(|peer| async move { probe(node, &peer, timeout).await })
        .buffer_unordered(options.max_concurrent.max(1))
        .collect()
        .await;
    probes.sort_by(|a, b| a.name.cmp(&b.name));
    Survey {
        observer: node.name().clone(),
        dns,
        listings,
        probes,
        notes,
        tls: node.config().tls.is_some(),
    }
}
