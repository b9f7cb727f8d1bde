//! The peers we are connected to, and the rules `net_kernel` applies to connection attempts:
//! one link per peer; a second dial while one is pending waits for it; simultaneous
//! connects resolved by comparing names (the greater name's attempt wins: the acceptor
//! answers `nok` when its own name is greater, else it drops its own attempt and answers
//! `ok_simultaneous`; a dial answered `nok` waits for the peer's winning attempt, as
//! `dist_util` does, so its callers get that link); an incoming name that already has a live
//! link gets `alive`.

use super::{Node, lock, random_u32};
use crate::proto::flags::DistFlags;
use crate::proto::handshake::{Acceptor, HandshakeError, Initiator, LocalNode, Status};
use crate::proto::node_name::NodeName;
use crate::transport::connection::{self, Connection, ConnectionInfo};
use crate::transport::handshake::{self, AcceptPolicy, Handshaken};
use crate::transport::{DisconnectReason, HandshakeFailure, HandshakeFailureKind};
use rustc_hash::FxHashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, oneshot};
use tracing::{Instrument, debug, info, info_span, warn};

/// A peer connection going up or down.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeEvent {
    /// A link to the peer is up.
    NodeUp {
        /// The peer.
        peer: NodeName,
    },
    /// The link to the peer is down.
    NodeDown {
        /// The peer.
        peer: NodeName,
        /// Why.
        reason: DisconnectReason,
    },
}

/// What we know about a connected peer.
#[derive(Clone, Debug)]
pub struct PeerInfo {
    /// Its name.
    pub name: NodeName,
    /// Its address.
    pub addr: SocketAddr,
    /// The flags in use.
    pub flags: DistFlags,
    /// The flags it offered.
    pub peer_flags: DistFlags,
    /// Its creation.
    pub creation: u32,
    /// When the link came up.
    pub connected_since: SystemTime,
    /// True when the connection is hidden.
    pub hidden: bool,
}

/// Why we could not connect to a peer.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConnectError {
    /// The name's host could not be resolved.
    Resolve {
        /// The peer.
        peer: NodeName,
        /// What the resolver said.
        reason: String,
    },
    /// Its EPMD could not tell us its port.
    Epmd {
        /// The peer.
        peer: NodeName,
        /// The EPMD error.
        source: crate::epmd::EpmdError,
    },
    /// Its EPMD answered but the name is not registered there.
    NotRegistered {
        /// The peer.
        peer: NodeName,
        /// The EPMD we asked.
        epmd: SocketAddr,
    },
    /// The TCP connection or the handshake failed.
    Handshake(HandshakeFailure),
    /// The node is shutting down.
    ShuttingDown,
    /// The name is our own.
    Ourselves,
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::Resolve { peer, reason } => {
                write!(f, "cannot resolve the host of {peer}: {reason}")
            }
            ConnectError::Epmd { peer, source } => write!(f, "cannot look up {peer}: {source}"),
            ConnectError::NotRegistered { peer, epmd } => write!(
                f,
                "{peer} is not registered with the EPMD at {epmd} (is the node running, \
                 and under this name?)"
            ),
            ConnectError::Handshake(e) => write!(f, "{e}"),
            ConnectError::ShuttingDown => f.write_str("the node is shutting down"),
            ConnectError::Ourselves => f.write_str("that is our own name"),
        }
    }
}

impl std::error::Error for ConnectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConnectError::Handshake(e) => Some(e),
            ConnectError::Epmd { source, .. } => Some(source),
            _ => None,
        }
    }
}

type Waiter = oneshot::Sender<Result<Connection, Arc<ConnectError>>>;

/// How a dial that did not produce a link ends.
enum Outcome {
    Failed(Arc<ConnectError>),
    /// Another handshake with the same peer decides: wait for it.
    Wait(oneshot::Receiver<Result<Connection, Arc<ConnectError>>>),
    /// The peer answered `nok`: its own attempt towards us wins and is on its way. Wait for
    /// it; the error stands if it does not come.
    AwaitPeer(
        oneshot::Receiver<Result<Connection, Arc<ConnectError>>>,
        Arc<ConnectError>,
    ),
}

enum PeerState {
    /// A handshake is under way.
    Pending {
        /// Our own attempt, by id; `None` once an incoming handshake took over.
        outgoing: Option<u64>,
        /// An incoming handshake from the peer is running.
        incoming: bool,
        /// Dialers waiting for the outcome.
        waiters: Vec<Waiter>,
    },
    /// Connected.
    Up(Connection),
}

#[derive(Default)]
pub(super) struct Peers {
    map: FxHashMap<NodeName, PeerState>,
    next_attempt: u64,
    refusals: RefusalLog,
}

/// Refused incoming handshakes logged at warn level per [`REFUSAL_WINDOW`]; the rest go to
/// debug and are counted in the next warn line. A peer retrying a wrong cookie in a loop, or
/// a port scanner, must not flood the log (ecosystem.md C 6: "logs peer+address
/// (rate-limited)").
const REFUSALS_PER_WINDOW: u32 = 10;
/// See [`REFUSALS_PER_WINDOW`].
const REFUSAL_WINDOW: Duration = Duration::from_secs(60);

/// The rate limit of [`REFUSALS_PER_WINDOW`].
#[derive(Default)]
struct RefusalLog {
    window_start: Option<std::time::Instant>,
    logged: u32,
    suppressed: u64,
}

impl RefusalLog {
    /// `Some(n)` if this refusal is logged at warn level, `n` being how many were not since
    /// the last one that was; `None` if it is not.
    fn admit(&mut self, now: std::time::Instant) -> Option<u64> {
        match self.window_start {
            Some(start) if now.duration_since(start) < REFUSAL_WINDOW => {
                if self.logged < REFUSALS_PER_WINDOW {
                    self.logged += 1;
                    Some(std::mem::take(&mut self.suppressed))
                } else {
                    self.suppressed += 1;
                    None
                }
            }
            _ => {
                self.window_start = Some(now);
                self.logged = 1;
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

impl Node {
    /// The live links.
    pub fn connections(&self) -> Vec<Connection> {
        lock(&self.inner.peers)
            .map
            .values()
            .filter_map(|s| match s {
                PeerState::Up(l) => Some(l.clone()),
                PeerState::Pending { .. } => None,
            })
            .collect()
    }

    /// Connection attempts, ours or a peer's, whose handshake is under way.
    pub fn pending_connections(&self) -> usize {
        lock(&self.inner.peers)
            .map
            .values()
            .filter(|s| matches!(s, PeerState::Pending { .. }))
            .count()
    }

    /// The link to `peer`, if it is up.
    pub fn connection(&self, peer: &NodeName) -> Option<Connection> {
        self.connection_by_atom(peer.as_atom())
    }

    /// The link to the node whose name is `node` (the atom in a pid), if it is up.
    pub fn connection_by_atom(&self, node: &crate::proto::term::Atom) -> Option<Connection> {
        match lock(&self.inner.peers).map.get(node) {
            Some(PeerState::Up(l)) => Some(l.clone()),
            _ => None,
        }
    }

    /// The connected peers.
    pub fn peers(&self) -> Vec<PeerInfo> {
        self.connections()
            .iter()
            .map(|l| {
                let i = l.info();
                PeerInfo {
                    name: i.peer.clone(),
                    addr: i.addr,
                    flags: i.flags,
                    peer_flags: i.peer_flags,
                    creation: i.peer_creation,
                    connected_since: l.connected_at(),
                    hidden: i.flags.is_hidden(),
                }
            })
            .collect()
    }

    /// The names of connected peers.
    pub fn connected_nodes(&self) -> Vec<NodeName> {
        self.connections()
            .iter()
            .map(|l| l.peer().clone())
            .collect()
    }

    /// Connects to `peer` (or returns the existing link): EPMD lookup at the peer's host,
    /// TCP connect, handshake.
    pub async fn connect(&self, peer: &NodeName) -> Result<Connection, Arc<ConnectError>> {
        self.connect_with(peer, None).await
    }

    /// Connects to `peer` at a known distribution address, skipping EPMD.
    pub async fn connect_addr(
        &self,
        peer: &NodeName,
        addr: SocketAddr,
    ) -> Result<Connection, Arc<ConnectError>> {
        self.connect_with(peer, Some(addr)).await
    }

    /// Takes over a connection whose handshake the caller ran itself with
    /// [`crate::transport::handshake::initiate`] (as [`crate::diagnose`] does, to see every
    /// step), and starts its link. If a link to that peer is already up, the new connection
    /// is closed and the existing link returned; if another handshake with it is under way,
    /// the new connection is closed and `None` returned.
    pub fn adopt(&self, done: Handshaken<TcpStream>, addr: SocketAddr) -> Option<Connection> {
        let peer = done.established.peer.clone();
        let mut peers = lock(&self.inner.peers);
        match peers.map.get(&peer) {
            Some(PeerState::Up(link)) => return Some(link.clone()),
            Some(PeerState::Pending { .. }) => return None,
            None => {}
        }
        if self.inner.shutdown.is_cancelled() {
            return None;
        }
        let link = self.start_link(done, addr);
        peers.map.insert(peer, PeerState::Up(link.clone()));
        drop(peers);
        self.node_up(&link);
        Some(link)
    }

    async fn connect_with(
        &self,
        peer: &NodeName,
        addr: Option<SocketAddr>,
    ) -> Result<Connection, Arc<ConnectError>> {
        if peer == self.name() {
            return Err(Arc::new(ConnectError::Ourselves));
        }
        if self.inner.shutdown.is_cancelled() {
            return Err(Arc::new(ConnectError::ShuttingDown));
        }
        enum Start {
            Attempt(u64),
            Wait(oneshot::Receiver<Result<Connection, Arc<ConnectError>>>),
            Up(Connection),
        }
        let start = {
            let mut peers = lock(&self.inner.peers);
            match peers.map.get_mut(peer) {
                Some(PeerState::Up(link)) => Start::Up(link.clone()),
                Some(PeerState::Pending { waiters, .. }) => {
                    let (tx, rx) = oneshot::channel();
                    waiters.push(tx);
                    Start::Wait(rx)
                }
                None => {
                    peers.next_attempt += 1;
                    let id = peers.next_attempt;
                    peers.map.insert(
                        peer.clone(),
                        PeerState::Pending {
                            outgoing: Some(id),
                            incoming: false,
                            waiters: Vec::new(),
                        },
                    );
                    Start::Attempt(id)
                }
            }
        };
        let attempt = match start {
            Start::Up(link) => return Ok(link),
            Start::Wait(rx) => {
                return rx
                    .await
                    .unwrap_or(Err(Arc::new(ConnectError::ShuttingDown)));
            }
            Start::Attempt(id) => id,
        };
        let span = info_span!("handshake", peer = %peer, role = "initiator");
        let result = self.dial(peer, addr).instrument(span).await;
        match self.finish_outgoing(peer, attempt, result) {
            Ok(link) => Ok(link),
            Err(Outcome::Failed(e)) => Err(e),
            Err(Outcome::Wait(rx)) => rx
                .await
                .unwrap_or(Err(Arc::new(ConnectError::ShuttingDown))),
            Err(Outcome::AwaitPeer(rx, e)) => self.await_peer_attempt(peer, rx, e).await,
        }
    }

    /// Our dial got `nok` in a simultaneous connect: the peer's attempt towards us wins. As
    /// `dist_util` does (the losing initiator waits to be replaced, it does not fail), wait
    /// up to the setup time for that attempt to reach us, and give its outcome to every
    /// caller. Without this, a caller dialling at the very moment the peer dials us got an
    /// error although a link came up a millisecond later.
    async fn await_peer_attempt(
        &self,
        peer: &NodeName,
        rx: oneshot::Receiver<Result<Connection, Arc<ConnectError>>>,
        e: Arc<ConnectError>,
    ) -> Result<Connection, Arc<ConnectError>> {
        let closed = || Err(Arc::new(ConnectError::ShuttingDown));
        if let Ok(result) = tokio::time::timeout(self.inner.config.setup_timeout, rx).await {
            return result.unwrap_or_else(|_| closed());
        }
        let rx = {
            let mut peers = lock(&self.inner.peers);
            match peers.map.get_mut(peer) {
                Some(PeerState::Up(link)) => return Ok(link.clone()),
                // Its handshake is under way; it has a setup time of its own.
                Some(PeerState::Pending {
                    incoming: true,
                    waiters,
                    ..
                }) => {
                    let (tx, rx) = oneshot::channel();
                    waiters.push(tx);
                    rx
                }
                Some(PeerState::Pending {
                    outgoing: None,
                    waiters,
                    ..
                }) => {
                    // It never came: everyone waiting gets the peer's answer.
                    for w in std::mem::take(waiters) {
                        let _ = w.send(Err(e.clone()));
                    }
                    peers.map.remove(peer);
                    return Err(e);
                }
                _ => return Err(e),
            }
        };
        rx.await.unwrap_or_else(|_| closed())
    }

    async fn dial(
        &self,
        peer: &NodeName,
        addr: Option<SocketAddr>,
    ) -> Result<(Handshaken<TcpStream>, SocketAddr), ConnectError> {
        let addr = match addr {
            Some(a) => a,
            None => self.lookup(peer).await?,
        };
        let timeout = self.inner.config.setup_timeout;
        let fail = |kind| {
            ConnectError::Handshake(HandshakeFailure {
                peer: Some(peer.clone()),
                addr,
                kind,
            })
        };
        let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(fail(HandshakeFailureKind::Connect(e))),
            Err(_) => {
                return Err(fail(HandshakeFailureKind::Timeout {
                    step: crate::proto::handshake::Step::Status,
                    after: timeout,
                }));
            }
        };
        let _ = stream.set_nodelay(true);
        let challenge = random_u32().map_err(|e| {
            fail(HandshakeFailureKind::Io {
                step: crate::proto::handshake::Step::Name,
                source: std::io::Error::other(e),
            })
        })?;
        let machine = Initiator::new(self.local_node(), peer.clone(), challenge);
        let node = self.clone();
        let peer_name = peer.clone();
        let started = std::time::Instant::now();
        let done = handshake::initiate(stream, addr, machine, timeout, move || {
            node.connection(&peer_name).is_none()
        })
        .await
        .map_err(ConnectError::Handshake)?;
        debug!(
            elapsed_us = started.elapsed().as_micros() as u64,
            "handshake complete"
        );
        Ok((done, addr))
    }

    /// Asks the EPMD on the peer's host for its distribution port.
    async fn lookup(&self, peer: &NodeName) -> Result<SocketAddr, ConnectError> {
        let ip = match peer.host_ip() {
            Some(ip) => ip,
            None => crate::discovery::resolve_host(peer.host())
                .await
                .map_err(|reason| ConnectError::Resolve {
                    peer: peer.clone(),
                    reason,
                })?,
        };
        let epmd = SocketAddr::new(ip, self.inner.config.epmd_port);
        let alive = crate::proto::epmd::AliveName::new(peer.alive()).map_err(|_| {
            ConnectError::NotRegistered {
                peer: peer.clone(),
                epmd,
            }
        })?;
        match crate::epmd::port_please(epmd, &alive, self.inner.config.setup_timeout).await {
            Ok(Some(entry)) => Ok(SocketAddr::new(ip, entry.port)),
            Ok(None) => Err(ConnectError::NotRegistered {
                peer: peer.clone(),
                epmd,
            }),
            Err(source) => Err(ConnectError::Epmd {
                peer: peer.clone(),
                source,
            }),
        }
    }

    pub(super) fn local_node(&self) -> LocalNode {
        LocalNode {
            name: self.inner.name.clone(),
            flags: self.inner.flags,
            creation: self.inner.creation,
            cookie: self.inner.config.cookie.clone(),
        }
    }

    fn finish_outgoing(
        &self,
        peer: &NodeName,
        attempt: u64,
        result: Result<(Handshaken<TcpStream>, SocketAddr), ConnectError>,
    ) -> Result<Connection, Outcome> {
        let mut peers = lock(&self.inner.peers);
        let ours = matches!(
            peers.map.get(peer),
            Some(PeerState::Pending { outgoing: Some(id), .. }) if *id == attempt
        );
        if !ours {
            // An incoming handshake took over (simultaneous connect): its outcome is ours.
            drop(result);
            return match peers.map.get_mut(peer) {
                Some(PeerState::Up(l)) => Ok(l.clone()),
                Some(PeerState::Pending { waiters, .. }) => {
                    let (tx, rx) = oneshot::channel();
                    waiters.push(tx);
                    Err(Outcome::Wait(rx))
                }
                None => Err(Outcome::Failed(Arc::new(ConnectError::Handshake(
                    HandshakeFailure {
                        peer: Some(peer.clone()),
                        addr: SocketAddr::from(([0, 0, 0, 0], 0)),
                        kind: HandshakeFailureKind::Superseded,
                    },
                )))),
            };
        }
        match result {
            Ok((done, addr)) => {
                let link = self.start_link(done, addr);
                let waiters = match peers.map.insert(peer.clone(), PeerState::Up(link.clone())) {
                    Some(PeerState::Pending { waiters, .. }) => waiters,
                    _ => Vec::new(),
                };
                drop(peers);
                self.node_up(&link);
                for w in waiters {
                    let _ = w.send(Ok(link.clone()));
                }
                Ok(link)
            }
            Err(e) => {
                let lost = matches!(
                    &e,
                    ConnectError::Handshake(HandshakeFailure {
                        kind: HandshakeFailureKind::Protocol(HandshakeError::SimultaneousLost),
                        ..
                    })
                );
                let e = Arc::new(e);
                if lost
                    && let Some(PeerState::Pending {
                        outgoing, waiters, ..
                    }) = peers.map.get_mut(peer)
                {
                    // Our attempt is over; the entry now waits for the peer's.
                    *outgoing = None;
                    let (tx, rx) = oneshot::channel();
                    waiters.push(tx);
                    return Err(Outcome::AwaitPeer(rx, e));
                }
                if let Some(PeerState::Pending {
                    incoming, waiters, ..
                }) = peers.map.get_mut(peer)
                {
                    if *incoming {
                        // The peer is dialling us at the same moment; its link may still come.
                        drop(peers);
                        return Err(Outcome::Failed(e));
                    }
                    for w in std::mem::take(waiters) {
                        let _ = w.send(Err(e.clone()));
                    }
                }
                peers.map.remove(peer);
                Err(Outcome::Failed(e))
            }
        }
    }

    fn start_link(&self, done: Handshaken<TcpStream>, addr: SocketAddr) -> Connection {
        let Handshaken {
            stream,
            established,
            leftover,
        } = done;
        let (r, w) = stream.into_split();
        let info = ConnectionInfo {
            peer: established.peer,
            addr,
            flags: established.flags,
            peer_flags: established.peer_flags,
            peer_creation: established.peer_creation,
            id: self.inner.next_link_id.fetch_add(1, Ordering::Relaxed),
        };
        connection::spawn(
            r,
            w,
            leftover,
            info,
            self.inner.config.connection.clone(),
            Arc::new(super::router::Router::new(self.clone())),
            &self.inner.tracker,
            &self.inner.shutdown,
        )
    }

    fn node_up(&self, link: &Connection) {
        let i = link.info();
        info!(
            peer = %i.peer,
            addr = %i.addr,
            flags = %i.flags,
            hidden = i.flags.is_hidden(),
            "nodeup"
        );
        let _ = self.inner.events.send(NodeEvent::NodeUp {
            peer: i.peer.clone(),
        });
    }

    /// Called by the router when a link is down: forget it and tell everyone.
    pub(super) fn link_down(&self, link: &Connection, reason: DisconnectReason) {
        let peer = link.peer();
        {
            let mut peers = lock(&self.inner.peers);
            if let Some(PeerState::Up(current)) = peers.map.get(peer)
                && current.info().id == link.info().id
            {
                peers.map.remove(peer);
            }
        }
        info!(peer = %peer, %reason, "nodedown");
        let _ = self.inner.events.send(NodeEvent::NodeDown {
            peer: peer.clone(),
            reason,
        });
    }
}

/// The node's answers during an incoming handshake.
struct Policy<'a> {
    node: &'a Node,
    peer: Option<NodeName>,
    replaced: Option<Connection>,
}

impl AcceptPolicy for Policy<'_> {
    fn status_for(&mut self, peer: &NodeName, _flags: DistFlags) -> Status {
        if self.node.inner.shutdown.is_cancelled() {
            return Status::NotAllowed;
        }
        if peer == self.node.name() {
            return Status::NotAllowed;
        }
        let mut peers = lock(&self.node.inner.peers);
        let status = match peers.map.get_mut(peer) {
            None => {
                peers.map.insert(
                    peer.clone(),
                    PeerState::Pending {
                        outgoing: None,
                        incoming: true,
                        waiters: Vec::new(),
                    },
                );
                Status::Ok
            }
            Some(PeerState::Up(_)) => Status::Alive,
            Some(PeerState::Pending {
                outgoing, incoming, ..
            }) => {
                if *incoming {
                    // A second incoming attempt while one runs: keep the first.
                    return Status::Nok;
                }
                if outgoing.is_some() && self.node.name() > peer {
                    Status::Nok
                } else {
                    // Our attempt lost (the greater name's wins), or already got `nok` and
                    // we are waiting for exactly this one.
                    *outgoing = None;
                    *incoming = true;
                    Status::OkSimultaneous
                }
            }
        };
        if matches!(status, Status::Ok | Status::OkSimultaneous | Status::Alive) {
            self.peer = Some(peer.clone());
        }
        status
    }

    fn replace_old(&mut self, peer: &NodeName) {
        let mut peers = lock(&self.node.inner.peers);
        if let Some(PeerState::Up(old)) = peers.map.remove(peer) {
            self.replaced = Some(old);
        }
        peers.map.insert(
            peer.clone(),
            PeerState::Pending {
                outgoing: None,
                incoming: true,
                waiters: Vec::new(),
            },
        );
    }
}

/// Accepts connections until shutdown; each handshake runs in its own task.
pub(super) async fn accept_loop(node: Node, listener: TcpListener) {
    let limit = Arc::new(Semaphore::new(node.inner.config.max_pending_handshakes));
    let mut backoff = Duration::from_millis(10);
    loop {
        let accepted = tokio::select! {
            _ = node.inner.shutdown.cancelled() => return,
            a = listener.accept() => a,
        };
        let (stream, addr) = match accepted {
            Ok(a) => {
                backoff = Duration::from_millis(10);
                a
            }
            Err(e) => {
                // Out of file descriptors and the like: wait rather than spin.
                warn!(error = %e, "accept failed; retrying in {backoff:?}");
                tokio::select! {
                    _ = node.inner.shutdown.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            warn!(%addr, "too many handshakes in progress; connection closed");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let n = node.clone();
        let span = info_span!("handshake", %addr, role = "acceptor");
        node.inner.tracker.spawn(
            async move {
                tokio::select! {
                    _ = n.inner.shutdown.cancelled() => {}
                    _ = n.accept_one(stream, addr) => {}
                }
                drop(permit);
            }
            .instrument(span),
        );
    }
}

impl Node {
    async fn accept_one(&self, stream: TcpStream, addr: SocketAddr) {
        let Ok(challenge) = random_u32() else {
            warn!("the OS random source failed; connection closed");
            return;
        };
        let machine = Acceptor::new(self.local_node(), challenge);
        let mut policy = Policy {
            node: self,
            peer: None,
            replaced: None,
        };
        let timeout = self.inner.config.setup_timeout;
        let result = handshake::accept(stream, addr, machine, timeout, &mut policy).await;
        if let Some(old) = policy.replaced.take() {
            old.close();
        }
        let Some(peer) = policy.peer.clone() else {
            if let Err(e) = result {
                self.log_refused(&e);
            }
            return;
        };
        let mut peers = lock(&self.inner.peers);
        let Some(PeerState::Pending { waiters, .. }) = peers.map.get_mut(&peer) else {
            return;
        };
        let waiters = std::mem::take(waiters);
        match result {
            Ok(done) => {
                let link = self.start_link(done, addr);
                peers.map.insert(peer, PeerState::Up(link.clone()));
                drop(peers);
                self.node_up(&link);
                for w in waiters {
                    let _ = w.send(Ok(link.clone()));
                }
            }
            Err(e) => {
                peers.map.remove(&peer);
                drop(peers);
                self.log_refused(&e);
                let e = Arc::new(ConnectError::Handshake(e));
                for w in waiters {
                    let _ = w.send(Err(e.clone()));
                }
            }
        }
    }
}

impl Node {
    fn log_refused(&self, e: &HandshakeFailure) {
        if matches!(
            e.kind,
            HandshakeFailureKind::Superseded | HandshakeFailureKind::Declined
        ) {
            debug!(%e);
            return;
        }
        let admitted = lock(&self.inner.peers)
            .refusals
            .admit(std::time::Instant::now());
        match admitted {
            Some(0) => warn!("incoming connection failed: {e}"),
            Some(n) => warn!("incoming connection failed: {e} ({n} more not logged)"),
            None => debug!("incoming connection failed: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_logged_ten_a_minute_and_the_rest_counted() {
        let mut log = RefusalLog::default();
        let t0 = std::time::Instant::now();
        for _ in 0..REFUSALS_PER_WINDOW {
            assert_eq!(log.admit(t0), Some(0));
        }
        for _ in 0..5 {
            assert_eq!(log.admit(t0 + Duration::from_secs(30)), None);
        }
        // The next window's first line says how many were not logged.
        assert_eq!(log.admit(t0 + REFUSAL_WINDOW), Some(5));
        assert_eq!(log.admit(t0 + REFUSAL_WINDOW), Some(0));
    }
}
