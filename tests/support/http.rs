//! The `run --metrics` exporter seen from outside: where it listens (from its log line),
//! one raw HTTP exchange, and a sample's value in the exposition.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use super::Beamlink;

/// The address `bl` serves `/metrics` on, from its `serving /metrics ... addr=` log line.
pub fn metrics_addr(bl: &Beamlink) -> SocketAddr {
    bl.wait_log("serving /metrics", Duration::from_secs(15));
    let log = bl.log();
    log.lines()
        .find(|l| l.contains("serving /metrics"))
        .and_then(|l| l.split("addr=").nth(1))
        .and_then(|a| a.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no metrics address in the log:\n{log}"))
}

/// Sends `request` as is and returns everything the server wrote before it closed (or
/// before 10 s passed). The server may close before taking all of a large request.
pub fn http_exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    let _ = s.write_all(request);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// `GET path` over HTTP/1.1.
pub fn http_get(addr: SocketAddr, path: &str) -> String {
    http_exchange(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: beamlink\r\n\r\n").as_bytes(),
    )
}

/// The status code of a response, if it has a status line.
pub fn http_status(response: &str) -> Option<u16> {
    response.split_whitespace().nth(1)?.parse().ok()
}

/// The value of the sample `series` (name and labels exactly as exposed, e.g.
/// `beamlink_bad_messages_total{kind="term"}`) in an exposition.
pub fn sample(exposition: &str, series: &str) -> Option<u64> {
    exposition
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}
