//! Outgoing connections and the rules `net_kernel` applies to them: one handshake per peer
//! at a time (a second caller while one is under way waits for its outcome); a connection
//! already up is returned; and the simultaneous connect, when the peer dials us while we
//! dial it: the greater name's attempt wins (the acceptor's half of the rule is in
//! [`super::accept`]), and a dial answered `nok` waits for the peer's winning attempt, as
//! `dist_util` does, so its callers get that connection. The sockets, the EPMD lookup and
//! the handshake itself are the transport's ([`crate::transport::dialler`]).

use super::peers::{Joined, Outcome, PeerState, answer, enlist, outcome_of};
use super::{Node, lock};
use crate::proto::handshake::HandshakeError;
use crate::proto::node_name::NodeName;
use crate::transport::connection::Connection;
use crate::transport::dialler::Dialler;
use crate::transport::handshake::Handshaken;
use crate::transport::{ConnectError, DistStream, HandshakeFailure, HandshakeFailureKind};
use std::net::SocketAddr;
use tokio::sync::oneshot;

/// What a dial comes to once its handshake ended.
enum Next {
    /// The outcome, for this caller and those that waited for it.
    Done(Outcome),
    /// Another handshake with the same peer decides: wait for it.
    Wait(oneshot::Receiver<Outcome>),
    /// The peer answered `nok`: its own attempt towards us wins and is on its way. Wait for
    /// it; the error stands if it does not come.
    AwaitPeer(oneshot::Receiver<Outcome>, ConnectError),
}

impl Node {
    /// Connects to `peer` (or returns the existing link): EPMD lookup at the peer's host,
    /// TCP connect, handshake.
    pub async fn connect(&self, peer: &NodeName) -> Result<Connection, ConnectError> {
        self.connect_with(peer, None).await
    }

    /// Connects to `peer` at a known distribution address, skipping EPMD.
    pub async fn connect_addr(
        &self,
        peer: &NodeName,
        addr: SocketAddr,
    ) -> Result<Connection, ConnectError> {
        self.connect_with(peer, Some(addr)).await
    }

    /// Takes over a connection whose handshake the caller ran itself with
    /// [`crate::transport::dialler::Dialler::handshake`] (as `beamlink doctor` does, to
    /// see every step), and starts its link. If a link to that peer is already up, the new
    /// connection is closed and the existing link returned; if another handshake with it is
    /// under way, the new connection is closed and `None` returned.
    pub fn adopt(&self, done: Handshaken<DistStream>, addr: SocketAddr) -> Option<Connection> {
        let peers = lock(&self.inner.peers);
        match peers.map.get(&done.established.peer) {
            Some(PeerState::Up(link)) => return Some(link.clone()),
            Some(PeerState::Pending { .. }) => return None,
            None => {}
        }
        if self.inner.shutdown.is_cancelled() {
            return None;
        }
        Some(self.install(peers, done, addr))
    }

    /// How this node dials: the steps of [`Node::connect`] one at a time.
    pub(crate) fn dialler(&self) -> &Dialler {
        &self.inner.dialler
    }

    async fn connect_with(&self, peer: &NodeName, addr: Option<SocketAddr>) -> Outcome {
        if peer == self.name() {
            return Err(ConnectError::Ourselves);
        }
        if self.inner.shutdown.is_cancelled() {
            return Err(ConnectError::ShuttingDown);
        }
        let attempt = match self.begin_outgoing(peer) {
            Ok(id) => id,
            Err(Joined::Up(link)) => return Ok(link),
            Err(Joined::Wait(rx)) => return outcome_of(rx).await,
        };
        // `alive` from the peer: it still has a connection to a node of our name. Ours is
        // dead if we have none to it.
        let node = self.internal();
        let name = peer.clone();
        let result = self
            .inner
            .dialler
            .dial(peer, addr, move || node.connection(&name).is_none())
            .await;
        match self.finish_outgoing(peer, attempt, result) {
            Next::Done(outcome) => outcome,
            Next::Wait(rx) => outcome_of(rx).await,
            Next::AwaitPeer(rx, e) => self.await_peer_attempt(peer, rx, e).await,
        }
    }

    /// Our attempt's id if it is the one to run; otherwise the connection or the attempt
    /// under way to wait for.
    fn begin_outgoing(&self, peer: &NodeName) -> Result<u64, Joined> {
        let mut peers = lock(&self.inner.peers);
        if let Some(state) = peers.map.get_mut(peer) {
            return Err(state.join());
        }
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
        Ok(id)
    }

    /// Our dial got `nok` in a simultaneous connect: the peer's attempt towards us wins. As
    /// `dist_util` does (the losing initiator waits to be replaced, it does not fail), wait
    /// up to the setup time for that attempt to reach us, and give its outcome to every
    /// caller. Without this, a caller dialling at the very moment the peer dials us got an
    /// error although a link came up a millisecond later.
    async fn await_peer_attempt(
        &self,
        peer: &NodeName,
        rx: oneshot::Receiver<Outcome>,
        e: ConnectError,
    ) -> Outcome {
        let setup = self.inner.config.setup_timeout;
        if let Ok(outcome) = tokio::time::timeout(setup, outcome_of(rx)).await {
            return outcome;
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
                }) => enlist(waiters),
                Some(PeerState::Pending {
                    outgoing: None,
                    waiters,
                    ..
                }) => {
                    // It never came: everyone waiting gets the peer's answer.
                    answer(std::mem::take(waiters), &Err(e.clone()));
                    peers.map.remove(peer);
                    return Err(e);
                }
                _ => return Err(e),
            }
        };
        outcome_of(rx).await
    }

    fn finish_outgoing(
        &self,
        peer: &NodeName,
        attempt: u64,
        result: Result<(Handshaken<DistStream>, SocketAddr), ConnectError>,
    ) -> Next {
        let mut peers = lock(&self.inner.peers);
        let ours = matches!(
            peers.map.get(peer),
            Some(PeerState::Pending { outgoing: Some(id), .. }) if *id == attempt
        );
        if !ours {
            // An incoming handshake took over (simultaneous connect): its outcome is ours.
            drop(result);
            return match peers.map.get_mut(peer).map(PeerState::join) {
                Some(Joined::Up(link)) => Next::Done(Ok(link)),
                Some(Joined::Wait(rx)) => Next::Wait(rx),
                None => Next::Done(Err(HandshakeFailure {
                    peer: Some(peer.clone()),
                    addr: SocketAddr::from(([0, 0, 0, 0], 0)),
                    kind: HandshakeFailureKind::Superseded,
                }
                .into())),
            };
        }
        let e = match result {
            Ok((done, addr)) => return Next::Done(Ok(self.install(peers, done, addr))),
            Err(e) => e,
        };
        if let ConnectError::Handshake(h) = &e {
            self.count_handshake_failure(h);
        }
        let lost = matches!(
            &e,
            ConnectError::Handshake(h)
                if matches!(h.kind, HandshakeFailureKind::Protocol(HandshakeError::SimultaneousLost))
        );
        if let Some(PeerState::Pending {
            outgoing,
            incoming,
            waiters,
        }) = peers.map.get_mut(peer)
        {
            if lost {
                // Our attempt is over; the entry now waits for the peer's.
                *outgoing = None;
                return Next::AwaitPeer(enlist(waiters), e);
            }
            if *incoming {
                // The peer is dialling us at the same moment; its link may still come.
                return Next::Done(Err(e));
            }
            answer(std::mem::take(waiters), &Err(e.clone()));
        }
        peers.map.remove(peer);
        Next::Done(Err(e))
    }
}
