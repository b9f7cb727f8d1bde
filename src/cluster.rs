//! The connection manager: keeps the node connected to every peer it should know, static
//! (`--connect`) or discovered through DNS (`--dns-query`).
//!
//! Rules, chosen against the failures users report of dns_cluster and libcluster:
//! * each poll, the peers are `basename@<ip>` for every address in the answer, or, without
//!   a basename, every node the EPMD at that address lists (ourselves excluded);
//! * new peers are dialled at once and concurrently (up to `max_dials` at a time), each
//!   attempt bounded by the handshake setup time;
//! * a failed peer is retried with a backoff of 1 s doubling up to the poll interval, and a
//!   peer whose link drops is redialled the same way;
//! * a DNS error or an empty answer never drops anything (libcluster#190); a peer that
//!   leaves DNS keeps its link until the link fails, then is forgotten;
//! * every change (DNS answer, DNS failure, a peer failing or recovering) is logged once,
//!   not at every poll (dns_cluster#13).
//!
//! One task owns the peer table; dial results come back to it over a channel, so nothing is
//! locked.

use crate::discovery::{DnsError, DnsQuery};
use crate::node::Node;
use crate::proto::node_name::NodeName;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;
use tracing::{debug, info, warn};

/// Where the peers come from.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// Peers named on the command line.
    pub statics: Vec<NodeName>,
    /// A DNS name whose addresses are peers.
    pub dns: Option<DnsQuery>,
    /// Peers found by DNS are `basename@ip`; `None` asks each address's EPMD.
    pub basename: Option<String>,
    /// Time between DNS polls; also the backoff cap.
    pub poll_interval: Duration,
    /// Dials in flight at once.
    pub max_dials: usize,
    /// Most peers tracked; answers beyond it are ignored (and logged).
    pub max_peers: usize,
}

impl ClusterConfig {
    /// Static peers only.
    pub fn statics(statics: Vec<NodeName>, poll_interval: Duration) -> ClusterConfig {
        ClusterConfig {
            statics,
            dns: None,
            basename: None,
            poll_interval,
            max_dials: 256,
            max_peers: 10_000,
        }
    }
}

struct Target {
    is_static: bool,
    /// Seen in the latest DNS answer (or EPMD listing).
    in_dns: bool,
    dialing: bool,
    backoff: Duration,
    next_attempt: Instant,
    /// The last failure we logged, to log only changes.
    last_error: Option<String>,
}

enum Event {
    Dialed {
        peer: NodeName,
        result: Result<(), String>,
    },
    Down(NodeName),
    Polled {
        peers: Result<HashSet<NodeName>, DnsError>,
        ips: Result<Vec<IpAddr>, DnsError>,
        notes: Vec<String>,
    },
}

/// Runs the manager until the node shuts down.
pub async fn run(node: Node, config: ClusterConfig) {
    let (tx, mut rx) = mpsc::channel::<Event>(1024);
    let dials = Arc::new(Semaphore::new(config.max_dials.max(1)));
    let mut targets: HashMap<NodeName, Target> = HashMap::new();
    let now = Instant::now();
    for peer in &config.statics {
        targets.insert(peer.clone(), new_target(true, now));
    }
    let mut poll = tokio::time::interval(config.poll_interval);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut retry = tokio::time::interval(Duration::from_millis(250));
    retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut events = node.events();
    let mut polling = false;
    let mut last_ips: Option<Result<Vec<IpAddr>, DnsError>> = None;
    let mut last_notes: HashSet<String> = HashSet::new();
    let cap = config.poll_interval.max(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = node.shutting_down() => return,
            _ = poll.tick(), if config.dns.is_some() && !polling => {
                polling = true;
                let dns = config.dns.clone().expect("checked");
                let basename = config.basename.clone();
                let tx = tx.clone();
                let node = node.clone();
                tokio::spawn(async move {
                    let (peers, ips, notes) = poll_once(&node, &dns, basename.as_deref()).await;
                    let _ = tx.send(Event::Polled { peers, ips, notes }).await;
                });
            }
            Some(event) = rx.recv() => match event {
                Event::Polled { peers: result, ips, notes } => {
                    polling = false;
                    if let Some(dns) = &config.dns {
                        log_dns_change(dns, last_ips.as_ref(), &ips, targets.len());
                    }
                    last_ips = Some(ips);
                    let notes: HashSet<String> = notes.into_iter().collect();
                    for note in notes.difference(&last_notes) {
                        warn!("{note}");
                    }
                    last_notes = notes;
                    if let Ok(found) = &result {
                        let now = Instant::now();
                        for t in targets.values_mut() {
                            t.in_dns = false;
                        }
                        for peer in found {
                            if peer == node.name() {
                                continue;
                            }
                            if !targets.contains_key(peer) && targets.len() >= config.max_peers {
                                warn!(limit = config.max_peers, "peer table full; {peer} ignored");
                                continue;
                            }
                            targets.entry(peer.clone()).or_insert_with(|| new_target(false, now)).in_dns = true;
                        }
                        // Peers gone from DNS are kept while their link is up.
                        targets.retain(|name, t| t.is_static || t.in_dns || t.dialing || node.link(name).is_some());
                    }
                }
                Event::Dialed { peer, result } => {
                    let Some(t) = targets.get_mut(&peer) else { continue };
                    t.dialing = false;
                    match result {
                        Ok(()) => {
                            if t.last_error.take().is_some() {
                                info!(%peer, "connected again");
                            }
                            t.backoff = Duration::from_secs(1);
                        }
                        Err(e) => {
                            if t.last_error.as_deref() != Some(e.as_str()) {
                                warn!(%peer, "cannot connect: {e} (retrying, backoff up to {cap:?})");
                                t.last_error = Some(e);
                            } else {
                                debug!(%peer, "still cannot connect");
                            }
                            t.next_attempt = Instant::now() + t.backoff;
                            t.backoff = (t.backoff * 2).min(cap);
                        }
                    }
                }
                Event::Down(peer) => {
                    if let Some(t) = targets.get_mut(&peer) {
                        t.next_attempt = Instant::now() + Duration::from_secs(1);
                    }
                    if targets.get(&peer).is_some_and(|t| !t.is_static && !t.in_dns) {
                        targets.remove(&peer);
                    }
                }
            },
            ev = events.recv() => {
                if let Ok(crate::node::NodeEvent::NodeDown { peer, .. }) = ev {
                    let _ = tx.send(Event::Down(peer)).await;
                }
            }
            _ = retry.tick() => {}
        }
        let now = Instant::now();
        for (peer, t) in targets.iter_mut() {
            if t.dialing || t.next_attempt > now || node.link(peer).is_some() {
                continue;
            }
            t.dialing = true;
            let node = node.clone();
            let peer = peer.clone();
            let tx = tx.clone();
            let dials = dials.clone();
            tokio::spawn(async move {
                let Ok(_permit) = dials.acquire_owned().await else {
                    return;
                };
                let result = node
                    .connect(&peer)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string());
                let _ = tx.send(Event::Dialed { peer, result }).await;
            });
        }
    }
}

fn new_target(is_static: bool, now: Instant) -> Target {
    Target {
        is_static,
        in_dns: !is_static,
        dialing: false,
        backoff: Duration::from_secs(1),
        next_attempt: now,
        last_error: None,
    }
}

/// Logs a DNS answer only when it differs from the previous one.
fn log_dns_change(
    dns: &DnsQuery,
    previous: Option<&Result<Vec<IpAddr>, DnsError>>,
    now: &Result<Vec<IpAddr>, DnsError>,
    tracked: usize,
) {
    let query = dns.query();
    match (previous, now) {
        (Some(Ok(old)), Ok(new)) if old == new => {}
        (Some(Err(old)), Err(new)) if old == new => {}
        (Some(Ok(old)), Ok(new)) => {
            let added: Vec<&IpAddr> = new.iter().filter(|ip| !old.contains(ip)).collect();
            let removed: Vec<&IpAddr> = old.iter().filter(|ip| !new.contains(ip)).collect();
            info!(%query, count = new.len(), ?added, ?removed, "DNS answer changed");
        }
        (_, Ok(new)) => info!(%query, count = new.len(), addresses = ?new, "DNS answer"),
        (_, Err(e)) => warn!(
            %query,
            "{e}; keeping the {tracked} peers we know and their links"
        ),
    }
}

/// One poll: the addresses, then the peer names at them.
async fn poll_once(
    node: &Node,
    dns: &DnsQuery,
    basename: Option<&str>,
) -> (
    Result<HashSet<NodeName>, DnsError>,
    Result<Vec<IpAddr>, DnsError>,
    Vec<String>,
) {
    let ips = match dns.lookup().await {
        Ok(ips) => ips,
        Err(e) => return (Err(e.clone()), Err(e), Vec::new()),
    };
    let config = node.config();
    let found =
        crate::discovery::peers_at(&ips, basename, config.epmd_port, config.setup_timeout).await;
    (Ok(found.peers.into_iter().collect()), Ok(ips), found.notes)
}
