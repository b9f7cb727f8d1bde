//! EPMD client and server. (Temporary minimal client until the full module lands.)

pub mod client;

use std::fmt;

/// EPMD failure.
#[derive(Debug)]
pub struct EpmdError(pub std::io::Error);

impl fmt::Display for EpmdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EPMD: {}", self.0)
    }
}

impl std::error::Error for EpmdError {}

/// The names registered with the EPMD at `addr` (temporary).
pub async fn names_at(
    addr: std::net::SocketAddr,
    timeout: std::time::Duration,
) -> Result<Vec<String>, EpmdError> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let work = async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.write_all(&[0, 1, 110]).await?;
        let mut resp = Vec::new();
        s.read_to_end(&mut resp).await?;
        let text = String::from_utf8_lossy(resp.get(4..).unwrap_or(&[])).into_owned();
        Ok::<_, std::io::Error>(
            text.lines()
                .filter_map(|l| l.strip_prefix("name "))
                .filter_map(|l| l.split(" at port ").next())
                .map(String::from)
                .collect(),
        )
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(r) => r.map_err(EpmdError),
        Err(_) => Err(EpmdError(std::io::ErrorKind::TimedOut.into())),
    }
}
