//! Incoming connections, the node's half: the status a peer's name gets (`net_kernel`'s
//! answer to `dist_util:mark_pending/1`): `ok`; `alive` when a connection to that name is
//! up (the peer may then say it is a new incarnation, and the old connection is replaced);
//! `nok` or `ok_simultaneous` when we are dialling it at the same moment (the greater name's
//! attempt wins; our half of the rule is in [`super::connect`]); `not_allowed` while
//! shutting down or for our own name. Refused handshakes are logged, rate-limited. The
//! accept loop and the handshake itself are the transport's
//! ([`crate::transport::listener`]).

use super::peers::{PeerState, answer};
use super::{Node, lock};
use crate::log_limit::LogLimit;
use crate::proto::flags::DistFlags;
use crate::proto::handshake::Status;
use crate::proto::node_name::NodeName;
use crate::transport::connection::Connection;
use crate::transport::handshake::{AcceptPolicy, Handshaken};
use crate::transport::listener::AcceptHandler;
use crate::transport::{DistStream, HandshakeFailure, HandshakeFailureKind};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tracing::{debug, warn};

/// The node as the listener sees it.
pub(super) struct Accepting(pub(super) Node);

impl AcceptHandler for Accepting {
    type Policy = Policy;

    fn policy(&self) -> Policy {
        Policy {
            node: self.0.clone(),
            peer: None,
            replaced: None,
        }
    }

    fn finish(
        &self,
        policy: Policy,
        addr: SocketAddr,
        outcome: Result<Handshaken<DistStream>, HandshakeFailure>,
    ) {
        self.0.accepted(policy, addr, outcome);
    }
}

/// The node's answers during one incoming handshake.
pub(super) struct Policy {
    node: Node,
    /// The peer, once its name got a status that lets the handshake go on.
    peer: Option<NodeName>,
    /// The connection an `alive` answer replaced, closed when the handshake ends.
    replaced: Option<Connection>,
}

impl AcceptPolicy for Policy {
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
                peers.map.insert(peer.clone(), PeerState::incoming());
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
        peers.map.insert(peer.clone(), PeerState::incoming());
    }
}

impl Node {
    /// An incoming handshake ended.
    fn accepted(
        &self,
        mut policy: Policy,
        addr: SocketAddr,
        outcome: Result<Handshaken<DistStream>, HandshakeFailure>,
    ) {
        if let Some(old) = policy.replaced.take() {
            old.close();
        }
        let Some(peer) = policy.peer.take() else {
            if let Err(e) = outcome {
                self.log_refused(&e);
            }
            return;
        };
        let mut peers = lock(&self.inner.peers);
        if !matches!(peers.map.get(&peer), Some(PeerState::Pending { .. })) {
            return;
        }
        match outcome {
            Ok(done) => {
                self.install(peers, done, addr);
            }
            Err(e) => {
                let waiters = match peers.map.remove(&peer) {
                    Some(PeerState::Pending { waiters, .. }) => waiters,
                    _ => Vec::new(),
                };
                drop(peers);
                self.log_refused(&e);
                answer(waiters, &Err(e.into()));
            }
        }
    }

    fn log_refused(&self, e: &HandshakeFailure) {
        self.count_handshake_failure(e);
        if matches!(
            e.kind,
            HandshakeFailureKind::Superseded | HandshakeFailureKind::Declined
        ) {
            debug!(%e);
            return;
        }
        let admitted = lock(&self.inner.peers).refusals.admit(Instant::now());
        match admitted {
            Some(0) => warn!("incoming connection failed: {e}"),
            Some(n) => warn!("incoming connection failed: {e} ({n} more not logged)"),
            None => debug!("incoming connection failed: {e}"),
        }
    }
}

/// Refused incoming handshakes logged at warn level per [`REFUSAL_WINDOW`]; the rest go to
/// debug and are counted in the next warn line. A peer retrying a wrong cookie in a loop, or
/// a port scanner, must not flood the log, yet each refusal names the peer and its address.
const REFUSALS_PER_WINDOW: u32 = 10;
/// See [`REFUSALS_PER_WINDOW`].
const REFUSAL_WINDOW: Duration = Duration::from_secs(60);

/// The rate limit of [`REFUSALS_PER_WINDOW`].
pub(super) struct RefusalLog(LogLimit);

impl Default for RefusalLog {
    fn default() -> RefusalLog {
        RefusalLog(LogLimit::new(REFUSALS_PER_WINDOW, REFUSAL_WINDOW))
    }
}

impl RefusalLog {
    /// See [`LogLimit::admit`].
    fn admit(&mut self, now: Instant) -> Option<u64> {
        self.0.admit(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_logged_ten_a_minute_and_the_rest_counted() {
        let mut log = RefusalLog::default();
        let t0 = Instant::now();
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
