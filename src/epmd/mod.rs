//! EPMD: the client ([`client`]), the embedded server ([`server`]), and the [`Registrar`]
//! that keeps this node registered according to `--epmd auto|client|serve` (contract.md).
//!
//! # Registration modes
//! * [`EpmdMode::Auto`]: register with the local EPMD if one answers;
//!   otherwise serve EPMD on that port and register with ourselves. When the EPMD we are
//!   registered with goes away, register with the next one that answers, or take the port
//!   over and serve. BEAM nodes on the host then find us: OTP's `erl_epmd` (OTP 25, checked
//!   in its code) notices the closed socket, waits 2 s, and retries every 2 s, so they are
//!   registered with us about 2 s after their EPMD died.
//! * [`EpmdMode::Client`]: only ever register with a running EPMD; while there is none, retry
//!   (backoff from [`RegistrarConfig::retry_min`] to [`RegistrarConfig::retry_max`], 1 s by
//!   default, well inside the 3 s within which OTP's `epmd_reconnect` test expects nodes to
//!   be back).
//! * [`EpmdMode::Serve`]: always serve EPMD ourselves.
//!
//! The local EPMD is asked at `127.0.0.1:<port>`, then at `[::1]:<port>` when nothing
//! answers there: `erl_epmd:register_node/3` registers over `::1` for `inet6_tcp` nodes, and
//! on a host or namespace with IPv6 addresses only, `127.0.0.1` is unreachable.
//!
//! # State and creation
//! [`Registrar::status`] is a `watch` of [`EpmdStatus`] for health checks and `doctor`; each
//! change is logged once. The node's creation comes from the registration. A
//! re-registration gets a **new** creation (EPMD bumps it for a name it remembers, a new EPMD
//! starts from the clock), exposed in [`EpmdStatus::Registered`]. A BEAM ignores the
//! creation of its re-registrations and keeps its original one: pids and references it
//! created stay valid and peers see no change. The node runtime decides whether to do the
//! same (recommended: keep the first creation for the life of the process; only a restarted
//! node should present a new creation, because peers treat a new creation as a new
//! incarnation and consider the old pids dead).

pub mod client;
mod error;
mod registry;
pub mod server;

pub use client::{DEFAULT_TIMEOUT, Registration, names, port_please, register};
pub(crate) use error::describe;
pub use error::{EpmdError, EpmdStep};
pub use server::{Clock, EpmdServer, ServerConfig};

use crate::proto::epmd::{Alive2Request, NamesResponse};
use serde::Serialize;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, debug, info, info_span, warn};

/// How the node finds an EPMD to register with (`--epmd`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum EpmdMode {
    /// Use a local EPMD if one answers, else serve; take over when it goes away.
    #[default]
    Auto,
    /// Require a running EPMD; wait for it to come back.
    Client,
    /// Always serve EPMD.
    Serve,
}

/// A `--epmd` value that is not `auto`, `client` or `serve`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownEpmdMode(pub String);

impl fmt::Display for UnknownEpmdMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown EPMD mode {:?} (use auto, client or serve)",
            self.0
        )
    }
}

impl std::error::Error for UnknownEpmdMode {}

impl FromStr for EpmdMode {
    type Err = UnknownEpmdMode;
    fn from_str(text: &str) -> Result<EpmdMode, UnknownEpmdMode> {
        match text {
            "auto" => Ok(EpmdMode::Auto),
            "client" => Ok(EpmdMode::Client),
            "serve" => Ok(EpmdMode::Serve),
            other => Err(UnknownEpmdMode(other.to_owned())),
        }
    }
}

impl fmt::Display for EpmdMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EpmdMode::Auto => "auto",
            EpmdMode::Client => "client",
            EpmdMode::Serve => "serve",
        })
    }
}

/// Which EPMD holds our registration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum EpmdKind {
    /// Another process's EPMD (a real `epmd`, or another beamlink's).
    External,
    /// Our own embedded server.
    Embedded,
}

/// The registrar's state, published through [`Registrar::status`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum EpmdStatus {
    /// Before the first attempt has finished.
    Starting,
    /// Registered.
    Registered {
        /// Whose EPMD.
        kind: EpmdKind,
        /// Its address.
        epmd: SocketAddr,
        /// The creation of this registration.
        creation: u32,
    },
    /// Not registered; retrying. `reason` is the last failure.
    Waiting {
        /// Why the last attempt failed, or why the registration ended.
        reason: Arc<EpmdError>,
    },
    /// Shut down; the name is unregistered.
    Stopped,
}

impl fmt::Display for EpmdStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EpmdStatus::Starting => f.write_str("starting"),
            EpmdStatus::Registered {
                kind: EpmdKind::External,
                epmd,
                creation,
            } => write!(
                f,
                "registered with the EPMD at {epmd} (creation {creation})"
            ),
            EpmdStatus::Registered {
                kind: EpmdKind::Embedded,
                epmd,
                creation,
            } => write!(
                f,
                "serving EPMD on port {} and registered with it (creation {creation})",
                epmd.port()
            ),
            EpmdStatus::Waiting { reason } => write!(f, "not registered, retrying: {reason}"),
            EpmdStatus::Stopped => f.write_str("stopped"),
        }
    }
}

/// Settings of the [`Registrar`].
#[derive(Clone, Debug)]
pub struct RegistrarConfig {
    /// `--epmd`.
    pub mode: EpmdMode,
    /// `--epmd-port` / `ERL_EPMD_PORT`; the local EPMD is at `127.0.0.1:<port>` or
    /// `[::1]:<port>`.
    pub epmd_port: u16,
    /// Our registration (name before `@`, distribution port).
    pub request: Alive2Request,
    /// Timeout of each EPMD exchange (default 5 s; the EPMD is local).
    pub timeout: Duration,
    /// First retry delay after a failed attempt (default 250 ms); it doubles up to
    /// [`retry_max`](Self::retry_max).
    pub retry_min: Duration,
    /// Longest retry delay (default 1 s).
    pub retry_max: Duration,
    /// The embedded server's settings; its port is replaced by `epmd_port`.
    pub server: ServerConfig,
}

impl RegistrarConfig {
    /// Defaults for registering `request` in `mode` on `epmd_port`.
    pub fn new(mode: EpmdMode, epmd_port: u16, request: Alive2Request) -> RegistrarConfig {
        RegistrarConfig {
            mode,
            epmd_port,
            request,
            timeout: Duration::from_secs(5),
            retry_min: Duration::from_millis(250),
            retry_max: Duration::from_secs(1),
            server: ServerConfig::new(epmd_port),
        }
    }
}

/// Keeps the node registered with an EPMD, following the [`EpmdMode`], in one background
/// task (tracked, stopped by the shutdown token or [`shutdown`](Registrar::shutdown)).
#[derive(Debug)]
pub struct Registrar {
    status: watch::Receiver<EpmdStatus>,
    cancel: CancellationToken,
    tracker: TaskTracker,
}

impl Registrar {
    /// Starts the registrar task; the first attempt runs at once. Follow
    /// [`status`](Self::status) (or await [`registered`](Self::registered)) to learn the
    /// outcome.
    pub fn start(config: RegistrarConfig, shutdown: &CancellationToken) -> Registrar {
        let (status_tx, status) = watch::channel(EpmdStatus::Starting);
        let cancel = shutdown.child_token();
        let tracker = TaskTracker::new();
        let mut server = config.server.clone();
        server.port = config.epmd_port;
        let driver = Driver {
            epmds: [
                SocketAddr::from((Ipv4Addr::LOCALHOST, config.epmd_port)),
                SocketAddr::from((Ipv6Addr::LOCALHOST, config.epmd_port)),
            ],
            server_config: server,
            config,
            server: None,
            status: status_tx,
            cancel: cancel.clone(),
        };
        let span = info_span!("epmd_registrar", mode = %driver.config.mode, name = %driver.config.request.name);
        tracker.spawn(driver.run().instrument(span));
        tracker.close();
        Registrar {
            status,
            cancel,
            tracker,
        }
    }

    /// The current state, updated on every change. Clone what you need out of
    /// `borrow()` rather than keeping the guard: while a guard is held the registrar cannot
    /// publish the next state.
    pub fn status(&self) -> watch::Receiver<EpmdStatus> {
        self.status.clone()
    }

    /// Waits until registered and returns the status then (always
    /// [`EpmdStatus::Registered`]); `None` if the registrar stopped first. Wrap it in a
    /// timeout and read [`status`](Self::status) for the reason of a failure.
    pub async fn registered(&self) -> Option<EpmdStatus> {
        let mut status = self.status.clone();
        let seen = status
            .wait_for(|s| matches!(s, EpmdStatus::Registered { .. } | EpmdStatus::Stopped))
            .await
            .ok()?
            .clone();
        matches!(seen, EpmdStatus::Registered { .. }).then_some(seen)
    }

    /// Unregisters, stops the embedded server if one runs, and waits for it all.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        self.tracker.wait().await;
    }
}

/// Dropping the registrar tells its task to unregister and stop, without waiting for it.
impl Drop for Registrar {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

struct Driver {
    config: RegistrarConfig,
    server_config: ServerConfig,
    /// The local EPMD's addresses, in the order they are tried.
    epmds: [SocketAddr; 2],
    server: Option<EpmdServer>,
    status: watch::Sender<EpmdStatus>,
    cancel: CancellationToken,
}

impl Driver {
    fn set(&self, status: EpmdStatus) {
        self.status.send_replace(status);
    }

    /// Registers with the local EPMD: at the first address where one answers; when none
    /// does, the first address's failure.
    async fn register_local(&self) -> Result<Registration, EpmdError> {
        let [v4, v6] = self.epmds;
        let request = &self.config.request;
        match register(v4, request, self.config.timeout).await {
            Err(err) if err.is_unreachable() => {
                debug!(error = %err, "no EPMD at {v4}; trying {v6}");
                match register(v6, request, self.config.timeout).await {
                    Err(e6) if e6.is_unreachable() => Err(err),
                    other => other,
                }
            }
            other => other,
        }
    }

    /// One registration attempt, serving EPMD first when the mode says so.
    async fn attempt(&mut self) -> Result<Registration, EpmdError> {
        let serve_now = match self.config.mode {
            EpmdMode::Serve => true,
            EpmdMode::Client => false,
            EpmdMode::Auto if self.server.is_some() => false,
            EpmdMode::Auto => match self.register_local().await {
                Err(err) if err.is_unreachable() => {
                    debug!(error = %err, "no EPMD answers; serving it");
                    true
                }
                other => return other,
            },
        };
        if serve_now && self.server.is_none() {
            let server = EpmdServer::start(self.server_config.clone(), &self.cancel).await?;
            self.server = Some(server);
        }
        self.register_local().await
    }

    async fn run(mut self) {
        let mut delay = self.config.retry_min;
        let mut waiting_logged = false;
        let cancel = self.cancel.clone();
        while !cancel.is_cancelled() {
            let attempt = tokio::select! {
                _ = cancel.cancelled() => break,
                attempt = self.attempt() => attempt,
            };
            match attempt {
                Ok(mut registration) => {
                    let kind = if self.server.is_some() {
                        EpmdKind::Embedded
                    } else {
                        EpmdKind::External
                    };
                    let status = EpmdStatus::Registered {
                        kind,
                        epmd: registration.epmd(),
                        creation: registration.creation(),
                    };
                    info!(%status, "EPMD registration");
                    self.set(status);
                    delay = self.config.retry_min;
                    let ended = tokio::select! {
                        _ = self.cancel.cancelled() => break,
                        ended = registration.closed() => ended,
                    };
                    warn!(error = %ended, "EPMD registration lost; registering again");
                    waiting_logged = true;
                    self.set(EpmdStatus::Waiting {
                        reason: Arc::new(ended),
                    });
                    // Try again at once: another EPMD may answer, or the port is free to take.
                    continue;
                }
                Err(err) => {
                    if waiting_logged {
                        debug!(error = %err, "EPMD registration attempt failed");
                    } else {
                        warn!(error = %err, retry_max = ?self.config.retry_max, "not registered with EPMD; retrying");
                        waiting_logged = true;
                    }
                    self.set(EpmdStatus::Waiting {
                        reason: Arc::new(err),
                    });
                }
            }
            tokio::select! {
                _ = self.cancel.cancelled() => break,
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(self.config.retry_max);
        }
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
        info!("EPMD registrar stopped");
        self.set(EpmdStatus::Stopped);
    }
}

/// One node in a [`NamesReport`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NamesReportEntry {
    /// The name before `@`.
    pub name: String,
    /// Its distribution port.
    pub port: u16,
}

/// What `beamlink names HOST` reports; serialisable for `--json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NamesReport {
    /// The EPMD asked.
    pub epmd: SocketAddr,
    /// The port the EPMD says it listens on.
    pub epmd_port: u32,
    /// The registered nodes, in EPMD's order.
    pub nodes: Vec<NamesReportEntry>,
}

impl NamesReport {
    /// Builds the report from a NAMES reply of the EPMD at `epmd`.
    pub fn new(epmd: SocketAddr, reply: &NamesResponse) -> NamesReport {
        NamesReport {
            epmd,
            epmd_port: reply.epmd_port,
            nodes: reply
                .nodes
                .iter()
                .map(|n| NamesReportEntry {
                    name: n.name.as_str().to_owned(),
                    port: n.port,
                })
                .collect(),
        }
    }

    /// The first line `epmd -names` prints (`epmd_call` in `epmd_cli.c`), without its
    /// newline: `epmd: up and running on port <P> with data:`, P being the port the EPMD
    /// reports.
    pub fn header(&self) -> String {
        format!("epmd: up and running on port {} with data:", self.epmd_port)
    }

    /// The lines `epmd -names` prints after its header: `name <n> at port <p>`, one per
    /// node, without newlines.
    pub fn lines(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("name {} at port {}", n.name, n.port))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::epmd::{AliveName, NamesEntry};

    #[test]
    fn modes_parse_and_print() {
        for mode in [EpmdMode::Auto, EpmdMode::Client, EpmdMode::Serve] {
            assert_eq!(mode.to_string().parse::<EpmdMode>(), Ok(mode));
        }
        assert_eq!(
            "server".parse::<EpmdMode>().unwrap_err().to_string(),
            "unknown EPMD mode \"server\" (use auto, client or serve)"
        );
    }

    #[test]
    fn names_report_lines_and_json() {
        let reply = NamesResponse {
            epmd_port: 4369,
            nodes: vec![NamesEntry {
                name: AliveName::new("minotaur").unwrap(),
                port: 41234,
            }],
        };
        let report = NamesReport::new("10.0.1.5:4369".parse().unwrap(), &reply);
        assert_eq!(
            report.header(),
            "epmd: up and running on port 4369 with data:"
        );
        assert_eq!(report.lines(), ["name minotaur at port 41234"]);
        assert_eq!(
            serde_json::to_string(&report).unwrap(),
            r#"{"epmd":"10.0.1.5:4369","epmd_port":4369,"nodes":[{"name":"minotaur","port":41234}]}"#
        );
    }
}
