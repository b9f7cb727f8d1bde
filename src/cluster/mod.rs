//! The connection manager: keeps the node connected to every peer it should know, static
//! (`--connect`) or discovered through DNS (`--dns-query`).
//!
//! Rules, chosen against the failures users report of dns_cluster and libcluster:
//! * each poll, the peers are `basename@<ip>` for every address in the answer, or, without
//!   a basename, every node the EPMD at that address lists (ourselves and a release's
//!   `rpc-`/`rem-` shells excluded: [`crate::discovery::is_release_helper`]);
//! * new peers are dialled at once and concurrently (up to `max_dials` at a time), each
//!   attempt bounded by the handshake setup time;
//! * a failed peer is retried with a backoff of 1 s doubling up to the poll interval, and a
//!   peer whose link drops is redialled the same way;
//! * a DNS error or an empty answer never drops anything (libcluster#190); a peer that
//!   leaves DNS keeps its link until the link fails, then is forgotten;
//! * every change (DNS answer, DNS failure, a peer failing or recovering) is logged once,
//!   not at every poll (dns_cluster#13). Failures are compared by kind, not wording: a
//!   vanished host answers "no route to host" one attempt and times out the next, a dead DNS
//!   server times out in several ways; that is not news. While DNS keeps failing, each kind
//!   (no answer, no records) is logged once and the recovery once, with the outage's length;
//!   a peer's failure is logged again only when its class changes (unreachable, not
//!   registered, cookie refused, protocol); an EPMD that cannot be asked for its names is
//!   logged once until it answers again.
//!
//! One task owns the peer table; dial results come back to it over a channel, so nothing is
//! locked.

mod dns_report;

use crate::discovery::{DnsError, DnsQuery};
use crate::node::{ConnectError, Node};
use crate::proto::node_name::NodeName;
use dns_report::{DnsReport, log_dns_note};
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
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
    /// Counters the manager keeps for the exporter ([`crate::metrics`]).
    pub stats: Arc<ClusterStats>,
}

/// What the manager counts and tracks, read by the Prometheus exporter.
#[derive(Debug, Default)]
pub struct ClusterStats {
    /// DNS polls made.
    pub dns_polls: AtomicU64,
    /// DNS polls that failed (no answer, or no records).
    pub dns_failures: AtomicU64,
    /// The peers the manager keeps connected (static and discovered), sorted.
    targets: std::sync::Mutex<Vec<NodeName>>,
}

impl ClusterStats {
    /// The peers the manager keeps connected now (static and discovered).
    pub fn targets(&self) -> Vec<NodeName> {
        self.targets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set_targets(&self, targets: &HashMap<NodeName, Target>) {
        let mut names: Vec<NodeName> = targets.keys().cloned().collect();
        names.sort();
        *self.targets.lock().unwrap_or_else(|e| e.into_inner()) = names;
    }
}

/// The shortest time a DNS lookup is given, however short the poll interval.
pub const MIN_DNS_DEADLINE: Duration = Duration::from_secs(2);

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
            stats: Arc::default(),
        }
    }

    /// How long one DNS lookup may take: the poll interval, at least 2 s. A poll that waits
    /// longer for a dead server only delays noticing (and logging) the failure.
    pub fn dns_deadline(&self) -> Duration {
        self.poll_interval.max(MIN_DNS_DEADLINE)
    }
}

struct Target {
    is_static: bool,
    /// Seen in the latest DNS answer (or EPMD listing).
    in_dns: bool,
    dialing: bool,
    backoff: Duration,
    next_attempt: Instant,
    /// The class of the last failure we logged, to log only changes.
    last_error: Option<FailureClass>,
}

enum Event {
    Dialed {
        peer: NodeName,
        result: Result<(), (FailureClass, String)>,
    },
    Polled {
        peers: Result<HashSet<NodeName>, DnsError>,
        ips: Result<Vec<IpAddr>, DnsError>,
        notes: Vec<Note>,
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
    config.stats.set_targets(&targets);
    let mut poll = tokio::time::interval(config.poll_interval);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut retry = tokio::time::interval(Duration::from_millis(250));
    retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut events = node.events();
    let mut polling = false;
    let mut dns_report = DnsReport::default();
    let mut last_notes: HashSet<String> = HashSet::new();
    let cap = config.poll_interval.max(Duration::from_secs(1));
    // DNS polls and dials run in tasks of their own (a slow DNS server or peer must not hold
    // up the others); at shutdown they are aborted and awaited before the manager returns.
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            _ = node.shutting_down() => {
                tasks.shutdown().await;
                return;
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            _ = poll.tick(), if config.dns.is_some() && !polling => {
                polling = true;
                let dns = config.dns.clone().expect("checked");
                let basename = config.basename.clone();
                let deadline = config.dns_deadline();
                let tx = tx.clone();
                let node = node.clone();
                tasks.spawn(async move {
                    let (peers, ips, notes) =
                        poll_once(&node, &dns, deadline, basename.as_deref()).await;
                    let _ = tx.send(Event::Polled { peers, ips, notes }).await;
                });
            }
            Some(event) = rx.recv() => match event {
                Event::Polled { peers: result, ips, notes } => {
                    polling = false;
                    config.stats.dns_polls.fetch_add(1, Ordering::Relaxed);
                    if ips.is_err() {
                        config.stats.dns_failures.fetch_add(1, Ordering::Relaxed);
                    }
                    if let Some(dns) = &config.dns
                        && let Some(note) = dns_report.observe(&ips, Instant::now())
                    {
                        log_dns_note(dns, &note, targets.len());
                    }
                    for note in &notes {
                        if !last_notes.contains(&note.key) {
                            warn!("{}", note.text);
                        }
                    }
                    last_notes = notes.into_iter().map(|n| n.key).collect();
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
                        targets.retain(|name, t| t.is_static || t.in_dns || t.dialing || node.connection(name).is_some());
                        config.stats.set_targets(&targets);
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
                        Err((_, e)) if !t.is_static && !t.in_dns => {
                            // It left DNS while we dialled: forget it.
                            debug!(%peer, "cannot connect ({e}); no longer in DNS, forgotten");
                            targets.remove(&peer);
                            config.stats.set_targets(&targets);
                        }
                        Err((class, e)) => {
                            if t.last_error != Some(class) {
                                warn!(%peer, "cannot connect: {e} (retrying, backoff up to {cap:?})");
                                t.last_error = Some(class);
                            } else {
                                debug!(%peer, "still cannot connect: {e}");
                            }
                            t.next_attempt = Instant::now() + t.backoff;
                            t.backoff = (t.backoff * 2).min(cap);
                        }
                    }
                }
            },
            // Handled here, before the dial loop below runs: a peer whose link just dropped
            // is redialled after a second (or forgotten if it left DNS), not at once.
            ev = events.recv() => {
                if let Ok(crate::node::NodeEvent::NodeDown { peer, .. }) = ev {
                    match targets.get_mut(&peer) {
                        Some(t) if t.is_static || t.in_dns => {
                            t.next_attempt = Instant::now() + Duration::from_secs(1);
                        }
                        Some(_) => {
                            debug!(%peer, "link down and no longer in DNS: forgotten");
                            targets.remove(&peer);
                            config.stats.set_targets(&targets);
                        }
                        None => {}
                    }
                }
            }
            _ = retry.tick() => {}
        }
        let now = Instant::now();
        for (peer, t) in targets.iter_mut() {
            if t.dialing || t.next_attempt > now || node.connection(peer).is_some() {
                continue;
            }
            t.dialing = true;
            let node = node.clone();
            let peer = peer.clone();
            let tx = tx.clone();
            let dials = dials.clone();
            tasks.spawn(async move {
                let Ok(_permit) = dials.acquire_owned().await else {
                    return;
                };
                let result = node
                    .connect(&peer)
                    .await
                    .map(|_| ())
                    .map_err(|e| (FailureClass::of(&e), e.to_string()));
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

/// Classes of dial failure, each logged once per streak (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FailureClass {
    /// The host, its EPMD or its distribution port does not answer.
    Unreachable,
    /// The host part of the name does not resolve.
    Unresolved,
    /// Its EPMD answers but the name is not registered.
    NotRegistered,
    /// The cookie was refused.
    Cookie,
    /// The peer or its EPMD broke the protocol or refused us.
    Protocol,
    /// Anything else (a simultaneous connect won, shutting down).
    Other,
}

impl FailureClass {
    fn of(e: &ConnectError) -> FailureClass {
        use crate::transport::HandshakeFailureKind as H;
        match e {
            ConnectError::Epmd {
                source: crate::epmd::EpmdError::Malformed { .. },
                ..
            } => FailureClass::Protocol,
            ConnectError::Epmd { .. } => FailureClass::Unreachable,
            ConnectError::Resolve { .. } => FailureClass::Unresolved,
            ConnectError::NotRegistered { .. } => FailureClass::NotRegistered,
            ConnectError::Handshake(h) if h.is_cookie_mismatch() => FailureClass::Cookie,
            ConnectError::Handshake(h) => match h.kind {
                H::Connect(_) | H::Io { .. } | H::Timeout { .. } => FailureClass::Unreachable,
                H::Protocol(_) => FailureClass::Protocol,
                _ => FailureClass::Other,
            },
            _ => FailureClass::Other,
        }
    }
}

/// A warning from a poll, logged when its key was not among the previous poll's.
#[derive(Debug)]
struct Note {
    key: String,
    text: String,
}

/// One poll: the addresses, then the peer names at them.
async fn poll_once(
    node: &Node,
    dns: &DnsQuery,
    deadline: Duration,
    basename: Option<&str>,
) -> (
    Result<HashSet<NodeName>, DnsError>,
    Result<Vec<IpAddr>, DnsError>,
    Vec<Note>,
) {
    let ips = match dns.lookup_within(deadline).await {
        Ok(ips) => ips,
        Err(e) => return (Err(e.clone()), Err(e), Vec::new()),
    };
    let config = node.config();
    let found =
        crate::discovery::peers_at(&ips, basename, config.epmd_port, config.setup_timeout).await;
    // One note per address that failed, keyed so a failure is logged once, not every poll.
    let mut notes: Vec<Note> = found
        .listings
        .iter()
        .filter_map(|listing| {
            listing.result.as_ref().err().map(|e| Note {
                key: format!("epmd {}", listing.ip),
                text: format!(
                    "cannot list the nodes at {}: {e} (asking every poll)",
                    listing.ip
                ),
            })
        })
        .collect();
    if basename.is_some() {
        notes.extend(found.notes.iter().map(|n| Note {
            key: n.clone(),
            text: n.clone(),
        }));
    }
    (Ok(found.peers.into_iter().collect()), Ok(ips), notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A DNS poll still waiting for a server that never answers when the node shuts down
    /// stops with the manager: once the manager's task has been awaited, nothing it spawned
    /// is left running. Without the JoinSet and its shutdown, the poll task outlived
    /// the manager by its whole DNS deadline (3 s here).
    #[tokio::test]
    async fn polls_in_flight_stop_and_are_awaited_at_shutdown() {
        use crate::proto::digest::Cookie;
        let silent_dns = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let node = Node::builder()
            .name("manager@127.0.0.1")
            .cookie(Cookie::new("c"))
            .no_epmd()
            .listen(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
            .start()
            .await
            .unwrap();
        let mut config = ClusterConfig::statics(Vec::new(), Duration::from_secs(3));
        config.dns =
            Some(DnsQuery::new("tasks.s_web.", Some(silent_dns.local_addr().unwrap())).unwrap());
        config.basename = Some("web".into());
        let manager = tokio::spawn(run(node.clone(), config));
        // The first poll starts at once: its query reaching the silent server means it is in
        // flight.
        silent_dns.set_nonblocking(true).unwrap();
        let silent_dns = tokio::net::UdpSocket::from_std(silent_dns).unwrap();
        tokio::time::timeout(Duration::from_secs(5), silent_dns.recv_from(&mut [0; 512]))
            .await
            .expect("the first poll asks the DNS server at once")
            .unwrap();
        let metrics = tokio::runtime::Handle::current().metrics();
        assert!(
            metrics.num_alive_tasks() >= 2,
            "manager and its poll are running"
        );

        node.shutdown().await;
        tokio::time::timeout(Duration::from_secs(1), manager)
            .await
            .expect("the manager returns at shutdown")
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(1);
        while metrics.num_alive_tasks() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            metrics.num_alive_tasks(),
            0,
            "tasks left after the manager returned"
        );
    }

    #[test]
    fn a_dead_host_is_one_failure_class_however_it_fails() {
        use crate::epmd::{EpmdError, EpmdStep};
        use crate::transport::{HandshakeFailure, HandshakeFailureKind};
        let peer = NodeName::parse("web@10.0.0.9").unwrap();
        let epmd: std::net::SocketAddr = "10.0.0.9:4369".parse().unwrap();
        let no_route = ConnectError::Epmd {
            peer: peer.clone(),
            source: EpmdError::Unreachable {
                epmd,
                source: std::io::Error::from(std::io::ErrorKind::HostUnreachable).into(),
            },
        };
        let timed_out = ConnectError::Epmd {
            peer: peer.clone(),
            source: EpmdError::Timeout {
                epmd,
                step: EpmdStep::SendNames,
                after: Duration::from_secs(7),
            },
        };
        let port_closed = ConnectError::from(HandshakeFailure {
            peer: Some(peer.clone()),
            addr: "10.0.0.9:40000".parse().unwrap(),
            kind: HandshakeFailureKind::Connect(
                std::io::Error::from(std::io::ErrorKind::ConnectionRefused).into(),
            ),
        });
        assert_ne!(no_route.to_string(), timed_out.to_string());
        for e in [&no_route, &timed_out, &port_closed] {
            assert_eq!(FailureClass::of(e), FailureClass::Unreachable, "{e}");
        }
        let gone = ConnectError::NotRegistered { peer, epmd };
        assert_eq!(FailureClass::of(&gone), FailureClass::NotRegistered);
    }
}
