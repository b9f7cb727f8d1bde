//! The peer table: at most one connection per peer, and the state of each peer (a handshake
//! under way, or connected), as `net_kernel` keeps it. Its rules live beside it: dialling in
//! [`super::connect`] (coalescing, simultaneous connects), accepting in [`super::accept`]
//! (the status an incoming name gets, `alive` replacement). Here: what the table tells
//! callers, the start of a connection once a handshake succeeded, and the nodeup and
//! nodedown events.

use super::{Node, lock};
use crate::proto::flags::DistFlags;
use crate::proto::node_name::NodeName;
use crate::transport::connection::{self, Connection, ConnectionInfo, ConnectionParts};
use crate::transport::handshake::Handshaken;
use crate::transport::{ConnectError, DisconnectReason, DistStream};
use rustc_hash::FxHashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard};
use std::time::SystemTime;
use tokio::sync::{broadcast, oneshot};
use tracing::info;

/// A peer connection going up or down.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
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
    /// What the TLS session agreed on; `None` on plain TCP.
    pub tls: Option<crate::tls::TlsSession>,
}

/// The outcome of a handshake, as those waiting for it get it.
pub(super) type Outcome = Result<Connection, ConnectError>;

/// One caller waiting for a handshake's outcome.
pub(super) type Waiter = oneshot::Sender<Outcome>;

pub(super) enum PeerState {
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

/// What a caller that finds a peer in the table gets.
pub(super) enum Joined {
    /// The connection.
    Up(Connection),
    /// The outcome of the handshake under way, when it ends.
    Wait(oneshot::Receiver<Outcome>),
}

impl PeerState {
    /// A handshake of the peer's, nobody waiting for it yet.
    pub(super) fn incoming() -> PeerState {
        PeerState::Pending {
            outgoing: None,
            incoming: true,
            waiters: Vec::new(),
        }
    }

    /// The connection, or a place among those waiting for the handshake under way.
    pub(super) fn join(&mut self) -> Joined {
        match self {
            PeerState::Up(link) => Joined::Up(link.clone()),
            PeerState::Pending { waiters, .. } => Joined::Wait(enlist(waiters)),
        }
    }
}

/// One more caller waiting for a handshake's outcome.
pub(super) fn enlist(waiters: &mut Vec<Waiter>) -> oneshot::Receiver<Outcome> {
    let (tx, rx) = oneshot::channel();
    waiters.push(tx);
    rx
}

/// Waits for the outcome of a handshake; the node shutting down ends the wait.
pub(super) async fn outcome_of(rx: oneshot::Receiver<Outcome>) -> Outcome {
    rx.await.unwrap_or_else(|_| Err(ConnectError::ShuttingDown))
}

/// Gives every waiter the outcome.
pub(super) fn answer(waiters: Vec<Waiter>, outcome: &Outcome) {
    for w in waiters {
        let _ = w.send(outcome.clone());
    }
}

#[derive(Default)]
pub(super) struct Peers {
    pub(super) map: FxHashMap<NodeName, PeerState>,
    pub(super) next_attempt: u64,
    pub(super) refusals: super::accept::RefusalLog,
}

impl Node {
    /// nodeup / nodedown events from now on.
    pub fn events(&self) -> broadcast::Receiver<NodeEvent> {
        self.inner.events.subscribe()
    }

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
                    tls: i.tls.clone(),
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

    /// A handshake with a peer succeeded: starts the connection over its stream, puts it in
    /// the table (in place of the handshake's entry), announces it and answers everyone
    /// who waited for it.
    pub(super) fn install(
        &self,
        mut peers: MutexGuard<'_, Peers>,
        done: Handshaken<DistStream>,
        addr: SocketAddr,
    ) -> Connection {
        let link = self.start_connection(done, addr);
        let waiters = match peers
            .map
            .insert(link.peer().clone(), PeerState::Up(link.clone()))
        {
            Some(PeerState::Pending { waiters, .. }) => waiters,
            _ => Vec::new(),
        };
        drop(peers);
        self.node_up(&link);
        answer(waiters, &Ok(link.clone()));
        link
    }

    fn start_connection(&self, done: Handshaken<DistStream>, addr: SocketAddr) -> Connection {
        let Handshaken {
            stream,
            established,
            leftover,
        } = done;
        let tls = stream.tls_session();
        let (reader, writer) = stream.into_split();
        let info = ConnectionInfo {
            peer: established.peer,
            addr,
            flags: established.flags,
            peer_flags: established.peer_flags,
            peer_creation: established.peer_creation,
            id: self.inner.next_link_id.fetch_add(1, Ordering::Relaxed),
            tls,
        };
        let parts = ConnectionParts {
            reader,
            writer,
            leftover,
            info,
            config: self.inner.config.connection.clone(),
            handler: Arc::new(super::router::Router::new(self.internal())),
        };
        connection::spawn(parts, &self.inner.tracker, &self.inner.shutdown)
    }

    fn node_up(&self, link: &Connection) {
        let i = link.info();
        info!(
            peer = %i.peer,
            addr = %i.addr,
            flags = %i.flags,
            hidden = i.flags.is_hidden(),
            tls = i.tls.as_ref().map_or("none", |t| t.version.as_str()),
            "nodeup"
        );
        let _ = self.inner.events.send(NodeEvent::NodeUp {
            peer: i.peer.clone(),
        });
    }

    /// Called by the router when a link is down: forget it and tell everyone.
    pub(super) fn connection_down(&self, link: &Connection, reason: DisconnectReason) {
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
        self.count_disconnect(&reason);
        let _ = self.inner.events.send(NodeEvent::NodeDown {
            peer: peer.clone(),
            reason,
        });
    }
}
