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
    /// The version as OTP spells it (`ssl:connection_information/2`'s `protocol`):
    /// `tlsv1.2`, `tlsv1.3`.
    pub fn otp_version(&self) -> String {
        match self.version.strip_prefix("TLSv") {
            Some(rest) => format!("tlsv{}", rest.replace('_', ".")),
            None => self.version.to_ascii_lowercase(),
        }
    }

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::TlsSources;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn a_plain_client_on_a_tls_listener_is_named() {
        let dir = std::env::temp_dir().join(format!("beamlink-tls-plain-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        std::fs::write(dir.join("c.pem"), cert.pem()).unwrap();
        std::fs::write(dir.join("k.pem"), key.serialize_pem()).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.join("k.pem"), std::fs::Permissions::from_mode(0o600))
            .unwrap();
        let config = TlsConfig::load(&TlsSources {
            cert: Some(dir.join("c.pem")),
            key: Some(dir.join("k.pem")),
            verify: Some(crate::tls::VerifyMode::None),
            ..TlsSources::default()
        })
        .unwrap()
        .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::spawn(async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            // A plain name message: 2-byte length, 'N', flags, creation, name.
            let mut name = vec![0, 29, b'N', 0, 0, 0, 5, 7, 7, 15, 188, 0, 0, 0, 1, 0, 14];
            name.extend_from_slice(b"rust@127.0.0.1");
            s.write_all(&name).await.unwrap();
            s
        });
        let (tcp, _) = listener.accept().await.unwrap();
        let e = accept(config.server().unwrap(), tcp, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(matches!(e, TlsError::PlainClient), "{e}");
        assert!(e.to_string().contains("-proto_dist inet_tls"), "{e}");
        drop(client.await);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
