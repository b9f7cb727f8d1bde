//! The exporter's HTTP server: hyper 1, HTTP/1 only, GET and HEAD on three paths.
//!
//! Bounds (an exporter is reachable by whatever can reach its port):
//! * at most [`MAX_CONNECTIONS`] connections at once; one beyond is closed at once,
//!   unanswered;
//! * the request head must arrive within [`HEADER_TIMEOUT`] (slowloris), and a whole
//!   connection lasts at most [`CONNECTION_TIMEOUT`]; no keep-alive, one request per
//!   connection (Prometheus reconnects at each scrape);
//! * a request head larger than [`MAX_HEAD`] (a 1 MiB request line, say) is answered
//!   `431` or `414` by hyper and the connection closed; request bodies are never read;
//! * anything but `/metrics`, `/healthz` and `/readyz` is `404`; a method other than GET
//!   and HEAD is `405`.

use super::{Readiness, Sources};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::debug;

/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 32;
/// Time for a request's head to arrive.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest life of a connection.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(15);
/// Largest request head (hyper's smallest allowed buffer).
pub const MAX_HEAD: usize = 8192;

/// Binds the exporter's listener (before the node starts, so a port in use fails the start).
pub async fn bind(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves `listener` until the node shuts down; connections in progress are then dropped
/// and awaited.
pub async fn serve(listener: TcpListener, sources: Sources) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let sources = Arc::new(sources);
    let node = sources.node.clone();
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = node.shutting_down() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        debug!("metrics: accept failed: {e}");
                        // EMFILE and the like: do not spin.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    debug!(%peer, "metrics: {MAX_CONNECTIONS} connections already; closed");
                    continue;
                };
                let sources = sources.clone();
                connections.spawn(async move {
                    let _slot = slot;
                    let service = hyper::service::service_fn(move |req| {
                        let sources = sources.clone();
                        async move { Ok::<_, Infallible>(respond(&sources, &req)) }
                    });
                    let connection = hyper::server::conn::http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(HEADER_TIMEOUT)
                        .max_buf_size(MAX_HEAD)
                        .keep_alive(false)
                        .serve_connection(TokioIo::new(stream), service);
                    match tokio::time::timeout(CONNECTION_TIMEOUT, connection).await {
                        Ok(Err(e)) => debug!(%peer, "metrics: {e}"),
                        Err(_) => debug!(%peer, "metrics: connection timed out"),
                        Ok(Ok(())) => {}
                    }
                });
            }
        }
    }
    connections.shutdown().await;
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// The answer to one request.
pub fn respond(sources: &Sources, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    route(sources, req.method(), req.uri().path())
}

fn route(sources: &Sources, method: &Method, path: &str) -> Response<Full<Bytes>> {
    if !matches!(path, "/metrics" | "/healthz" | "/readyz") {
        return text(
            StatusCode::NOT_FOUND,
            "not found: /metrics, /healthz, /readyz\n",
        );
    }
    if method != Method::GET && method != Method::HEAD {
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "GET or HEAD\n");
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let mut response = match path {
        "/metrics" => {
            let mut r = text(StatusCode::OK, super::encode::exposition(sources));
            r.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static(super::encode::CONTENT_TYPE),
            );
            r
        }
        "/healthz" => text(StatusCode::OK, "ok\n"),
        _ => match sources.readiness() {
            Readiness::Ready => text(StatusCode::OK, "ready\n"),
            not => text(StatusCode::SERVICE_UNAVAILABLE, format!("{not}\n")),
        },
    };
    if method == Method::HEAD {
        *response.body_mut() = Full::new(Bytes::new());
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::Node;
    use crate::proto::digest::Cookie;
    use std::net::SocketAddr;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    async fn exporter() -> (Node, SocketAddr) {
        let node = Node::builder()
            .name("exporter@127.0.0.1")
            .cookie(Cookie::new("never-shown-cookie"))
            .dial_only()
            .start()
            .await
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let sources = Sources {
            node: node.clone(),
            cluster: None,
            watch: None,
            ready_min_peers: 1,
        };
        node.spawn_task(serve(listener, sources));
        (node, addr)
    }

    /// Sends `request`, returns everything the server wrote before closing.
    async fn exchange(addr: SocketAddr, request: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).await.unwrap();
        // The server may close before reading all of a huge request.
        let _ = s.write_all(request).await;
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out).await;
        String::from_utf8_lossy(&out).into_owned()
    }

    fn status(response: &str) -> Option<u16> {
        response.split_whitespace().nth(1)?.parse().ok()
    }

    #[tokio::test]
    async fn only_the_documented_paths_and_methods_are_served() {
        let (node, addr) = exporter().await;
        let metrics = exchange(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert_eq!(status(&metrics), Some(200), "{metrics}");
        assert!(metrics.contains("text/plain; version=0.0.4"), "{metrics}");
        assert!(metrics.contains("\nbeamlink_up 1\n"), "{metrics}");
        assert!(!metrics.contains("never-shown-cookie"));
        let health = exchange(addr, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert_eq!(status(&health), Some(200));
        // Not linked to any peer: not ready, and why.
        let ready = exchange(addr, b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert_eq!(status(&ready), Some(503));
        assert!(ready.contains("linked to 0 of the 1 peers"), "{ready}");
        let head = exchange(addr, b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert_eq!(status(&head), Some(200));
        assert!(!head.contains("ok\n"), "HEAD has no body: {head}");
        for (request, code) in [
            (&b"GET /debug HTTP/1.1\r\nHost: x\r\n\r\n"[..], 404),
            (b"GET /metrics/../etc HTTP/1.1\r\nHost: x\r\n\r\n", 404),
            (
                b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
                405,
            ),
            (b"DELETE /readyz HTTP/1.1\r\nHost: x\r\n\r\n", 405),
        ] {
            let r = exchange(addr, request).await;
            assert_eq!(
                status(&r),
                Some(code),
                "{}: {r}",
                String::from_utf8_lossy(request)
            );
        }
        node.shutdown().await;
    }

    #[tokio::test]
    async fn a_huge_request_line_is_refused_and_the_server_goes_on() {
        let (node, addr) = exporter().await;
        let mut request = b"GET /".to_vec();
        request.extend(std::iter::repeat_n(b'a', 1 << 20));
        request.extend(b" HTTP/1.1\r\nHost: x\r\n\r\n");
        let r = exchange(addr, &request).await;
        assert!(
            matches!(status(&r), Some(414 | 431)),
            "a 1 MiB request line: {}",
            &r[..r.len().min(200)]
        );
        let ok = exchange(addr, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert_eq!(status(&ok), Some(200));
        node.shutdown().await;
    }

    /// Time is paused: the header timeout elapses as soon as every task waits.
    #[tokio::test(start_paused = true)]
    async fn a_slow_client_is_cut_off_and_connections_are_bounded() {
        let (node, addr) = exporter().await;
        // A request head that never ends is closed after HEADER_TIMEOUT.
        let mut slow = TcpStream::connect(addr).await.unwrap();
        slow.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        let started = tokio::time::Instant::now();
        let mut buf = Vec::new();
        let _ = slow.read_to_end(&mut buf).await;
        let waited = started.elapsed();
        assert!(
            waited >= HEADER_TIMEOUT && waited < CONNECTION_TIMEOUT,
            "closed after {waited:?}"
        );
        // MAX_CONNECTIONS idle connections hold every slot: the next is closed unanswered.
        let mut held = Vec::new();
        for _ in 0..MAX_CONNECTIONS {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(b"GET").await.unwrap();
            held.push(s);
        }
        tokio::task::yield_now().await;
        let mut extra = TcpStream::connect(addr).await.unwrap();
        let _ = extra
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await;
        let mut out = Vec::new();
        let closed =
            tokio::time::timeout(Duration::from_secs(1), extra.read_to_end(&mut out)).await;
        assert!(
            matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
            "the connection beyond the bound was served: {:?}",
            String::from_utf8_lossy(&out)
        );
        drop(held);
        node.shutdown().await;
    }
}
