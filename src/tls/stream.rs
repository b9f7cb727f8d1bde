//! The TLS handshake over a connected TCP stream, in either role, bounded by the setup time
//! as OTP bounds `ssl:connect/4` and `ssl:handshake/3` by `net_kernel:connecttime()`.

use super::config::TlsConfig;
use super::error::TlsError;
use super::verify::server_name;
use crate::proto::node_name::NodeName;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// A TLS connection over TCP, either role.
pub type TlsStream = tokio_rustls::TlsStream<TcpStream>;

/// What a TLS connection agreed on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsSession {
    /// `TLSv1_2` or `TLSv1_3`.
    pub version: String,
    /// The cipher suite, as rustls names it (e.g. `TLS13_AES_256_GCM_SHA384`).
    pub cipher_suite: String,
    /// The key exchange group (e.g. `X25519MLKEM768`), when known.
    pub key_exchange: Option<String>,
}

impl TlsSession {
    /// What `stream` agreed on.
    pub fn of(stream: &TlsStream) -> TlsSession {
        let common: &rustls::CommonState = match stream {
            tokio_rustls::TlsStream::Client(s) => s.get_ref().1,
            tokio_rustls::TlsStream::Server(s) => s.get_ref().1,
        };
        TlsSession {
            version: common
                .protocol_version()
                .map_or_else(|| "unknown".into(), |v| format!("{v:?}")),
            cipher_suite: common
                .negotiated_cipher_suite()
                .map_or_else(|| "unknown".into(), |s| format!("{:?}", s.suite())),
            key_exchange: common
                .negotiated_key_exchange_group()
                .map(|g| format!("{:?}", g.name())),
        }
    }
}

/// Runs the client side of the TLS handshake with `peer` over `tcp`, sending SNI and
/// checking the certificate as [`super::verify`] describes.
pub async fn connect(
    config: &TlsConfig,
    tcp: TcpStream,
    peer: &NodeName,
    timeout: Duration,
) -> Result<TlsStream, TlsError> {
    let name = server_name(config.server_name_indication(), peer.host())?;
    let connector = tokio_rustls::TlsConnector::from(config.client());
    let started = Instant::now();
    match tokio::time::timeout(timeout, connector.connect(name, tcp)).await {
        Ok(Ok(stream)) => Ok(tokio_rustls::TlsStream::Client(stream)),
        Ok(Err(e)) => Err(TlsError::from_io(e, started.elapsed())),
        Err(_) => Err(TlsError::NoTlsAnswer {
            after: timeout,
            closed: false,
        }),
    }
}

/// Runs the server side of the TLS handshake over an accepted `tcp`, with the server
/// configuration ([`TlsConfig::server`], checked when the listener starts).
pub async fn accept(
    server: Arc<rustls::ServerConfig>,
    tcp: TcpStream,
    timeout: Duration,
) -> Result<TlsStream, TlsError> {
    let acceptor = tokio_rustls::TlsAcceptor::from(server);
    let started = Instant::now();
    match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
        Ok(Ok(stream)) => Ok(tokio_rustls::TlsStream::Server(stream)),
        Ok(Err(e)) => Err(TlsError::from_io(e, started.elapsed())),
        Err(_) => Err(TlsError::NoTlsAnswer {
            after: timeout,
            closed: false,
        }),
    }
}
