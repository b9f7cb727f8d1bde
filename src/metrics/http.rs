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
