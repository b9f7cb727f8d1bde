//! Incoming connections: the accept loop of the distribution listener
//! (`inet_tcp_dist:accept/1` and `accept_connection/5`). Each accepted connection runs the
//! acceptor's side of the handshake (`dist_util:handshake_other_started/1`) in a task of
//! its own, in a `handshake` span, with the node's answers coming through an
//! [`AcceptHandler`].
//!
//! Bounds: at most [`ListenerConfig::max_pending_handshakes`] handshakes run at once; a
//! connection beyond that is closed at once (a peer flooding us with connections cannot
//! starve the ones already in progress). Each handshake step has the setup time. A failing
//! `accept` (out of file descriptors and the like) is retried after a pause that doubles
//! from 10 ms up to 1 s, so the loop never spins.

use super::handshake::{self, AcceptPolicy, Handshaken};
use super::{DistStream, HandshakeFailure, random_u32};
use crate::proto::handshake::{Acceptor, LocalNode};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, info_span, warn};

/// The node's side of incoming connections (`net_kernel`'s part of accepting).
pub trait AcceptHandler: Send + Sync + 'static {
    /// The node's answers during one handshake.
    type Policy: AcceptPolicy + Send;
    /// A handshake begins: the policy that answers for the node during it.
    fn policy(&self) -> Self::Policy;
    /// The handshake ended; `policy` is the one [`AcceptHandler::policy`] gave for it. On
    /// success the node takes the stream over.
    fn finish(
        &self,
        policy: Self::Policy,
        addr: SocketAddr,
        outcome: Result<Handshaken<DistStream>, HandshakeFailure>,
    );
}

/// How incoming connections are handled.
#[derive(Clone, Debug)]
pub struct ListenerConfig {
    /// Our side of the handshake: name, flags, creation, cookie.
    pub local: LocalNode,
    /// Time allowed for each handshake step (the BEAM's `net_setuptime`).
    pub setup_timeout: Duration,
    /// Handshakes in progress at once; more connections are closed at once.
    pub max_pending_handshakes: usize,
}

/// Binds the distribution listener on `addr`.
pub async fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Accepts connections on `listener` until `shutdown` is cancelled, on a task of
/// `tracker`; each handshake runs on a task of its own there, and stops at shutdown too.
pub fn spawn<H: AcceptHandler>(
    listener: TcpListener,
    config: ListenerConfig,
    handler: H,
    tracker: &TaskTracker,
    shutdown: &CancellationToken,
) {
    let accept = Accept {
        limit: Arc::new(Semaphore::new(config.max_pending_handshakes)),
        config,
        handler: Arc::new(handler),
        tracker: tracker.clone(),
        shutdown: shutdown.clone(),
    };
    tracker.spawn(accept.run(listener));
}

struct Accept<H> {
    config: ListenerConfig,
    handler: Arc<H>,
    limit: Arc<Semaphore>,
    tracker: TaskTracker,
    shutdown: CancellationToken,
}

impl<H: AcceptHandler> Accept<H> {
    async fn run(self, listener: TcpListener) {
        let mut backoff = Duration::from_millis(10);
        loop {
            let accepted = tokio::select! {
                _ = self.shutdown.cancelled() => return,
                a = listener.accept() => a,
            };
            let (stream, addr) = match accepted {
                Ok(a) => {
                    backoff = Duration::from_millis(10);
                    a
                }
                Err(e) => {
                    warn!(error = %e, "accept failed; retrying in {backoff:?}");
                    tokio::select! {
                        _ = self.shutdown.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            };
            self.handshake(stream, addr);
        }
    }

    /// Runs the handshake of one accepted connection on a task of its own.
    fn handshake(&self, stream: TcpStream, addr: SocketAddr) {
        let Ok(permit) = self.limit.clone().try_acquire_owned() else {
            warn!(%addr, "too many handshakes in progress; connection closed");
            return;
        };
        let span = info_span!(
            "handshake",
            %addr,
            peer = tracing::field::Empty,
            role = "acceptor"
        );
        let handler = self.handler.clone();
        let config = self.config.clone();
        let shutdown = self.shutdown.clone();
        self.tracker.spawn(
            async move {
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    _ = accept_one(&*handler, &config, stream, addr) => {}
                }
                drop(permit);
            }
            .instrument(span),
        );
    }
}

/// One incoming connection, from the accepted socket to the node's verdict.
async fn accept_one<H: AcceptHandler>(
    handler: &H,
    config: &ListenerConfig,
    stream: TcpStream,
    addr: SocketAddr,
) {
    let stream = DistStream::plain(stream);
    let Ok(challenge) = random_u32() else {
        warn!("the OS random source failed; connection closed");
        return;
    };
    let machine = Acceptor::new(config.local.clone(), challenge);
    let mut policy = handler.policy();
    let timeout = config.setup_timeout;
    let outcome = handshake::accept(stream, addr, machine, timeout, &mut policy).await;
    handler.finish(policy, addr, outcome);
}
