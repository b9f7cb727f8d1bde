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
//!
//! Addresses ([`bind`]): `[::]:PORT`, what a bare `--listen PORT` means, is one dual-stack
//! socket that takes IPv4 and IPv6 connections alike (as `inet6_tcp_dist:listen/2` does on
//! a host whose `net.ipv6.bindv6only` is 0); on a host without IPv6 it falls back to
//! `0.0.0.0:PORT`. Any other address is bound as given. A peer that came in over IPv4 on the
//! dual-stack socket is reported with its IPv4 address, not the IPv4-mapped IPv6 one.

use super::handshake::{self, AcceptPolicy, Handshaken};
use super::{DistStream, HandshakeFailure, HandshakeFailureKind, random_u32};
use crate::proto::handshake::{Acceptor, LocalNode};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
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
    /// TLS distribution (`inet_tls_dist`): every accepted connection starts with a TLS
    /// handshake as server ([`crate::tls::TlsConfig::server`]). `None`: plain TCP.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// Binds the distribution listener on `addr`: see the module documentation for `[::]`.
pub async fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    if addr.ip() != IpAddr::V6(Ipv6Addr::UNSPECIFIED) {
        return TcpListener::bind(addr).await;
    }
    match dual_stack(addr) {
        Ok(listener) => Ok(listener),
        // No IPv6 in this kernel or namespace (ipv6.disable=1, disable_ipv6 everywhere).
        Err(e) if no_ipv6(&e) => {
            let v4 = SocketAddr::from((Ipv4Addr::UNSPECIFIED, addr.port()));
            warn!(error = %e, "IPv6 is not available here; listening on {v4} only");
            TcpListener::bind(v4).await
        }
        Err(e) => Err(e),
    }
}

/// One socket on `[::]:port` that also takes IPv4 connections (`IPV6_V6ONLY` off, whatever
/// the host's default).
fn dual_stack(addr: SocketAddr) -> io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::IPV6, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_only_v6(false)?;
    // As tokio's TcpListener::bind: a restarted node can take its port back at once.
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

fn no_ipv6(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EAFNOSUPPORT | libc::EADDRNOTAVAIL)
    )
}

/// `addr` with an IPv4-mapped IPv6 address (`::ffff:10.0.0.5`, an IPv4 peer on the
/// dual-stack socket) written as the IPv4 address it is.
fn unmapped(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::from((v4, v6.port())),
            None => addr,
        },
        v4 => v4,
    }
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
                Ok((stream, addr)) => {
                    backoff = Duration::from_millis(10);
                    (stream, unmapped(addr))
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

/// One incoming connection, from the accepted socket to the node's verdict. With TLS, the
/// TLS handshake comes first (`ssl:handshake/3` in `inet_tls_dist:accept_one/3`), within
/// the setup time; its failure reaches the node as any failed handshake does.
async fn accept_one<H: AcceptHandler>(
    handler: &H,
    config: &ListenerConfig,
    tcp: TcpStream,
    addr: SocketAddr,
) {
    let Ok(challenge) = random_u32() else {
        warn!("the OS random source failed; connection closed");
        return;
    };
    let timeout = config.setup_timeout;
    let stream = match &config.tls {
        None => DistStream::plain(tcp),
        Some(server) => {
            let _ = tcp.set_nodelay(true);
            match crate::tls::stream::accept(server.clone(), tcp, timeout).await {
                Ok(stream) => DistStream::tls(stream),
                Err(e) => {
                    let failure = HandshakeFailure {
                        peer: None,
                        addr,
                        kind: HandshakeFailureKind::Tls(e),
                    };
                    handler.finish(handler.policy(), addr, Err(failure));
                    return;
                }
            }
        }
    };
    let machine = Acceptor::new(config.local.clone(), challenge);
    let mut policy = handler.policy();
    let framing = stream.framing();
    let outcome =
        handshake::accept_framed(stream, addr, machine, framing, timeout, &mut policy).await;
    handler.finish(policy, addr, outcome);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bare port takes IPv4 and IPv6 peers on one socket, and an IPv4 peer is seen with
    /// its IPv4 address.
    #[tokio::test]
    async fn the_dual_stack_listener_takes_both_families() {
        let listener = bind(SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)))
            .await
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let v6_here = std::net::TcpListener::bind("[::1]:0").is_ok();
        let mut peers = vec![SocketAddr::from((Ipv4Addr::LOCALHOST, port))];
        if v6_here {
            peers.push(SocketAddr::from((Ipv6Addr::LOCALHOST, port)));
        }
        for peer in peers {
            let _client = tokio::net::TcpStream::connect(peer).await.unwrap();
            let (_, from) = listener.accept().await.unwrap();
            assert_eq!(unmapped(from).ip(), peer.ip(), "{peer}");
        }
    }
}
