//! `beamlink health [--url URL]`: one GET to a `run --metrics` exporter's `/readyz`; exit 0
//! when it answers 200, 69 otherwise. For `HEALTHCHECK CMD ["/beamlink", "health"]` in an
//! image without curl. Plain `http://` only (the exporter serves nothing else).

use super::exit;
use bytes::Bytes;
use clap::Args;
use http_body_util::Empty;
use hyper::Uri;
use hyper_util::rt::TokioIo;
use std::time::Duration;
use tokio::net::TcpStream;

#[derive(Args, Debug)]
pub(crate) struct HealthArgs {
    /// The URL to ask.
    #[arg(long, default_value = "http://127.0.0.1:9568/readyz")]
    url: String,
    /// Give up after this long.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Print nothing.
    #[arg(long, short)]
    quiet: bool,
}

/// Why the check failed.
#[derive(Debug)]
enum HealthError {
    Url(String),
    Connect(std::io::Error),
    Http(hyper::Error),
    Timeout(Duration),
}

impl std::fmt::Display for HealthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HealthError::Url(why) => f.write_str(why),
            HealthError::Connect(e) => write!(f, "cannot connect: {e}"),
            HealthError::Http(e) => write!(f, "{e}"),
            HealthError::Timeout(t) => write!(f, "no answer within {t:?}"),
        }
    }
}

pub(crate) async fn health(args: HealthArgs) -> u8 {
    let uri: Uri = match args.url.parse() {
        Ok(u) => u,
        Err(e) => {
            eprintln!("beamlink: --url {:?}: {e}", args.url);
            return exit::USAGE;
        }
    };
    match tokio::time::timeout(args.timeout, get(&uri))
        .await
        .unwrap_or(Err(HealthError::Timeout(args.timeout)))
    {
        Ok((status, body)) => {
            if !args.quiet {
                println!("{status} {}", body.trim_end());
            }
            if status == 200 {
                exit::OK
            } else {
                exit::UNAVAILABLE
            }
        }
        Err(HealthError::Url(why)) => {
            eprintln!("beamlink: --url {:?}: {why}", args.url);
            exit::USAGE
        }
        Err(e) => {
            if !args.quiet {
                eprintln!("beamlink: {}: {e}", args.url);
            }
            exit::UNAVAILABLE
        }
    }
}

/// The status and (up to 4 KiB of) the body of `GET uri`.
async fn get(uri: &Uri) -> Result<(u16, String), HealthError> {
    use http_body_util::BodyExt;
    if uri.scheme_str() != Some("http") {
        return Err(HealthError::Url("only http:// URLs".into()));
    }
    let host = uri
        .host()
        .ok_or_else(|| HealthError::Url("no host".into()))?;
    let port = uri.port_u16().unwrap_or(80);
    let host_for_connect = host.trim_start_matches('[').trim_end_matches(']');
    let stream = TcpStream::connect((host_for_connect, port))
        .await
        .map_err(HealthError::Connect)?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(HealthError::Http)?;
    let driver = tokio::spawn(connection);
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or(host);
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let request = hyper::Request::get(path)
        .header(hyper::header::HOST, authority)
        .body(Empty::<Bytes>::new())
        .map_err(|e| HealthError::Url(e.to_string()))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(HealthError::Http)?;
    let status = response.status().as_u16();
    let limited = http_body_util::Limited::new(response.into_body(), 4096);
    let body = match limited.collect().await {
        Ok(b) => String::from_utf8_lossy(&b.to_bytes()).into_owned(),
        Err(_) => String::new(),
    };
    driver.abort();
    Ok((status, body))
}
