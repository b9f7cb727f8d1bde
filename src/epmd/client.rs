//! Minimal PORT_PLEASE2 client (temporary).

use super::EpmdError;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A registered node.
#[derive(Debug, Clone)]
pub struct NodeEntry {
    /// Its distribution port.
    pub port: u16,
}

/// Asks the EPMD at `epmd` for `alive`'s port.
pub async fn port_please(
    epmd: SocketAddr,
    alive: &str,
    timeout: Duration,
) -> Result<Option<NodeEntry>, EpmdError> {
    let work = async {
        let mut s = tokio::net::TcpStream::connect(epmd).await?;
        let mut req = Vec::new();
        req.extend_from_slice(&((alive.len() + 1) as u16).to_be_bytes());
        req.push(122);
        req.extend_from_slice(alive.as_bytes());
        s.write_all(&req).await?;
        let mut resp = Vec::new();
        s.read_to_end(&mut resp).await?;
        if resp.len() >= 4 && resp[0] == 119 && resp[1] == 0 {
            Ok(Some(NodeEntry {
                port: u16::from_be_bytes([resp[2], resp[3]]),
            }))
        } else {
            Ok(None)
        }
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(r) => r.map_err(EpmdError),
        Err(_) => Err(EpmdError(std::io::ErrorKind::TimedOut.into())),
    }
}
