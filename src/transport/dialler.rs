//! Outgoing connections, what `net_kernel:connect_node/1` asks of the distribution module
//! (`inet_tcp_dist:setup/5`): find where the peer listens (its EPMD's `PORT_PLEASE2`,
//! `erl_epmd:port_please/3`), connect, and run our side of the handshake
//! (`dist_util:handshake_we_started/1`), each step within the setup time (`net_setuptime`).
//!
//! EPMD-less ([`DialConfig::dist_port`]): every peer listens on the same port, as a BEAM
//! started with `-erl_epmd_port PORT` assumes (`erl_epmd:port_please/3` answers that port
//! through `listen_port_please/2` without asking any EPMD); no EPMD is asked.
//!
//! Which attempts run, and what becomes of their outcome (one connection per peer, the
//! simultaneous-connect rule), is the node's: it calls [`Dialler::dial`] and gets a stream
//! whose handshake completed. `beamlink doctor` calls the steps one at a time
//! ([`Dialler::connect`], [`Dialler::handshake`]) to see each one's outcome.

use super::handshake::{self, Handshaken};
use super::{ConnectError, DistStream, HandshakeFailure, HandshakeFailureKind, random_u32};
use crate::proto::epmd::AliveName;
use crate::proto::handshake::{Initiator, LocalNode, Step};
use crate::proto::node_name::NodeName;
use crate::tls::TlsConfig;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tracing::{Instrument, debug, info_span};

/// How peers are dialled.
#[derive(Clone, Debug)]
pub struct DialConfig {
    /// The port the peers' EPMDs listen on.
    pub epmd_port: u16,
    /// EPMD-less: every peer listens on this port and no EPMD is asked.
    pub dist_port: Option<u16>,
    /// Time allowed for each step: the EPMD lookup, the TCP connect, each handshake message
    /// (the BEAM's `net_setuptime`), and the TLS handshake.
    pub setup_timeout: Duration,
    /// TLS distribution (`inet_tls_dist`): every connection starts with a TLS handshake as
    /// client, and the distribution handshake runs inside it. `None`: plain TCP.
    pub tls: Option<TlsConfig>,
}

/// Dials peers as one local node.
#[derive(Clone, Debug)]
pub struct Dialler {
    local: LocalNode,
    config: DialConfig,
}

impl Dialler {
    /// A dialler for `local` (our name, flags, creation and cookie).
    pub fn new(local: LocalNode, config: DialConfig) -> Dialler {
        Dialler { local, config }
    }

    /// How it dials.
    pub fn config(&self) -> &DialConfig {
        &self.config
    }

    /// The same dialler with another setup time (a diagnosis has a deadline of its own).
    pub fn with_setup_timeout(&self, setup_timeout: Duration) -> Dialler {
        let mut dialler = self.clone();
        dialler.config.setup_timeout = setup_timeout;
        dialler
    }

    /// Dials `peer` at `addr`, or where its EPMD says it listens, and runs the handshake.
    /// `old_connection_dead` answers the `alive` status: true when we have no live
    /// connection to the peer. The whole attempt runs in one `handshake` span.
    pub async fn dial(
        &self,
        peer: &NodeName,
        addr: Option<SocketAddr>,
        old_connection_dead: impl FnOnce() -> bool,
    ) -> Result<(Handshaken<DistStream>, SocketAddr), ConnectError> {
        let span = info_span!(
            "handshake",
            peer = %peer,
            addr = tracing::field::Empty,
            role = "initiator"
        );
        async {
            let addr = match addr {
                Some(a) => a,
                None => self.resolve(peer).await?,
            };
            tracing::Span::current().record("addr", tracing::field::display(addr));
            let stream = self.connect(peer, addr).await.map_err(ConnectError::from)?;
            let done = self
                .handshake(stream, peer, addr, old_connection_dead)
                .await
                .map_err(ConnectError::from)?;
            Ok((done, addr))
        }
        .instrument(span)
        .await
    }

    /// Where `peer` accepts distribution connections: the port its EPMD gives (or, EPMD-less,
    /// the dist port), on the address of its host.
    pub async fn resolve(&self, peer: &NodeName) -> Result<SocketAddr, ConnectError> {
        let ip = match peer.host_ip() {
            Some(ip) => ip,
            None => crate::discovery::resolve_host(peer.host())
                .await
                .map_err(|reason| ConnectError::Resolve {
                    peer: peer.clone(),
                    reason,
                })?,
        };
        if let Some(port) = self.config.dist_port {
            return Ok(SocketAddr::new(ip, port));
        }
        let epmd = SocketAddr::new(ip, self.config.epmd_port);
        let not_registered = || ConnectError::NotRegistered {
            peer: peer.clone(),
            epmd,
        };
        let alive = AliveName::new(peer.alive()).map_err(|_| not_registered())?;
        match crate::epmd::port_please(epmd, &alive, self.config.setup_timeout).await {
            Ok(Some(entry)) => Ok(SocketAddr::new(ip, entry.port)),
            Ok(None) => Err(not_registered()),
            Err(source) => Err(ConnectError::Epmd {
                peer: peer.clone(),
                source,
            }),
        }
    }

    /// A connection to `peer` at `addr`: TCP, then with TLS the TLS handshake as client
    /// (`ssl:connect/4` in `inet_tls_dist:do_setup/7`; SNI is the host part of the peer's
    /// name unless the option file says otherwise), each within the setup time. A connect
    /// that does not complete in time is reported as a timeout waiting for the first answer
    /// (`Status`).
    pub async fn connect(
        &self,
        peer: &NodeName,
        addr: SocketAddr,
    ) -> Result<DistStream, HandshakeFailure> {
        let timeout = self.config.setup_timeout;
        let fail = |kind| HandshakeFailure {
            peer: Some(peer.clone()),
            addr,
            kind,
        };
        let tcp = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => return Err(fail(HandshakeFailureKind::Connect(e.into()))),
            Err(_) => {
                return Err(fail(HandshakeFailureKind::Timeout {
                    step: Step::Status,
                    after: timeout,
                }));
            }
        };
        let Some(tls) = &self.config.tls else {
            return Ok(DistStream::plain(tcp));
        };
        let _ = tcp.set_nodelay(true);
        match crate::tls::stream::connect(tls, tcp, peer, timeout).await {
            Ok(stream) => Ok(DistStream::tls(stream)),
            Err(e) => Err(fail(HandshakeFailureKind::Tls(e))),
        }
    }

    /// Our side of the handshake with `peer` over `stream`, connected to `addr`.
    /// `old_connection_dead` answers the `alive` status (see [`Dialler::dial`]).
    pub async fn handshake(
        &self,
        stream: DistStream,
        peer: &NodeName,
        addr: SocketAddr,
        old_connection_dead: impl FnOnce() -> bool,
    ) -> Result<Handshaken<DistStream>, HandshakeFailure> {
        let challenge = random_u32().map_err(|e| HandshakeFailure {
            peer: Some(peer.clone()),
            addr,
            kind: HandshakeFailureKind::Io {
                step: Step::Name,
                source: std::io::Error::other(e).into(),
            },
        })?;
        let machine = Initiator::new(self.local.clone(), peer.clone(), challenge);
        let started = Instant::now();
        let framing = stream.framing();
        let done = handshake::initiate_framed(
            stream,
            addr,
            machine,
            framing,
            self.config.setup_timeout,
            old_connection_dead,
        )
        .await?;
        debug!(
            elapsed_us = started.elapsed().as_micros() as u64,
            "handshake complete"
        );
        Ok(done)
    }
}
