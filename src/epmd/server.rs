//! An embedded EPMD that real BEAM nodes can use as their EPMD (`erl_dist_protocol.md`
//! "EPMD Protocol"; behaviour copied from `erts/epmd/src/epmd_srv.c`).
//!
//! What it does, request by request:
//! * ALIVE2_REQ, only from a local peer (127.0.0.0/8, `::1`, or the address the connection
//!   arrived on, as `epmd` decides it); from elsewhere the connection is closed without an
//!   answer. A name gets a creation the way `epmd` computes it (32 bits from the Unix time of
//!   its first registration for version-6 requests, bumped by one on each re-registration of a
//!   name among the last 1000 unregistered ones; 1..3 for older versions) and
//!   stays registered until its socket closes or sends any further byte. A duplicate name, a
//!   name `epmd` refuses (not UTF-8, over 255 characters, extra over 1020 bytes) or a full
//!   table is answered with `Result = 1`; unlike `epmd`, which keeps such a socket open
//!   until the client closes it, the server then closes it. Also unlike `epmd`, an empty
//!   name is refused (`epmd` registers it, and lists it as `name  at port P`).
//! * PORT_PLEASE2_REQ and NAMES_REQ from anyone, answered byte for byte as `epmd` does.
//! * DUMP_REQ from local peers (the connection id stands in for `epmd`'s file descriptor).
//! * KILL_REQ (`epmd -kill`) from local peers, as `do_request` answers it: `NO` while names
//!   are registered; `OK` when none are (or always, with
//!   [`ServerConfig::relaxed_command_check`]), after which the server stops, as `epmd`
//!   exits through `epmd_cleanup_exit`. A server that is not [`ServerConfig::killable`] (the
//!   default: the one a node serves, which holds the node's own name) answers `NO` always:
//!   a KILL_REQ cannot take a node's EPMD away. From other peers: closed without an answer.
//! * STOP_REQ (`epmd -stop NAME`) from local peers: without
//!   [`ServerConfig::relaxed_command_check`] closed without an answer, as `epmd` does
//!   ("Disallowed STOP_REQ"); with it, the name is unregistered and its registration socket
//!   closed (`node_unreg`, `conn_close_fd`), answered `STOPPED`, and an unknown name is
//!   answered `NOEXISTSTOPPED`: `do_request` sends `NOEXIST` and then falls through to
//!   `STOPPED` (every release up to OTP 29 does; `epmd -stop` reads 7 bytes and prints
//!   `NOEXIST`). A STOP_REQ without a name is ignored.
//! * Anything malformed (see [`EpmdWireError`]) or a second request on the same connection:
//!   closed without an answer.
//!
//! Bounds: at most [`ServerConfig::max_connections`] connections at once, registrations
//! included; a connection past that is accepted and closed at once (as `epmd` does when its
//! table is full) and counted in a warning. At most [`ServerConfig::max_registrations`]
//! names. Refused registrations are logged at most 10 a minute (any local process can ask
//! for a taken name in a loop); the rest go to debug and are counted in the next line. A
//! connection that stays silent, before its request is complete, for more than
//! [`ServerConfig::packet_timeout`] is closed: each byte restarts the count, as each read
//! updates `mod_time` in `epmd`'s `do_read`. `epmd`'s `run` loop compares whole seconds
//! (`mod_time + packet_timeout < now`) once a second (every `IDLE_TIMEOUT`, 5 s, for a
//! packet timeout of 5 s or more), so it closes a connection between `packet_timeout` and
//! `packet_timeout` + 2 s (+ 5 s) after its last byte; this server closes it
//! `packet_timeout` + 1 s after, the first moment `epmd` may be sure it timed out.
//! Registrations are exempt once registered. Replies are written under the packet timeout.
//!
//! Every connection runs in a task with a `epmd_conn` tracing span carrying the peer
//! address; all tasks are tracked and awaited by [`EpmdServer::shutdown`].

use super::error::{EpmdError, describe};
use super::registry::{Refusal, Registry};
use crate::log_limit::LogLimit;
use crate::proto::epmd::{
    Alive2Response, EpmdRequest, EpmdWireError, MAX_REQUEST_LEN, NamesEntry, NamesResponse,
    Port2Response, encode_dump,
};
use bytes::{BufMut, BytesMut};
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, debug, info, info_span, warn};

/// The source of "now" for creations: Unix time in seconds, truncated to 32 bits as `epmd`
/// does. Injected so tests get deterministic creations.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> u32 + Send + Sync>);

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock(Arc::new(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as u32)
        }))
    }

    /// A clock that always reads `seconds`.
    pub fn fixed(seconds: u32) -> Clock {
        Clock(Arc::new(move || seconds))
    }

    /// A clock backed by `now`.
    pub fn from_fn(now: impl Fn() -> u32 + Send + Sync + 'static) -> Clock {
        Clock(Arc::new(now))
    }

    /// The current reading.
    pub fn now(&self) -> u32 {
        (self.0)()
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Clock")
    }
}

/// Settings of the embedded EPMD.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The port (4369 unless `ERL_EPMD_PORT`). 0 picks a free one (tests).
    pub port: u16,
    /// IPv4 address to listen on; `0.0.0.0` (the default) as `epmd`.
    pub ipv4: Ipv4Addr,
    /// IPv6 address to also listen on (IPv6-only socket, as `epmd`); `::` by default. If it
    /// cannot be bound the server logs a warning and serves IPv4 only.
    pub ipv6: Option<Ipv6Addr>,
    /// Connections served at once, registrations included (default 1024).
    pub max_connections: usize,
    /// Names registered at once (default 1000).
    pub max_registrations: usize,
    /// How long a connection may stay silent before its request is complete (default 60 s,
    /// `epmd`'s `-packet_timeout` and its default; counted as the module docs say).
    pub packet_timeout: Duration,
    /// Whether a KILL_REQ may stop the server (`epmd -kill`). Off by default, so a server
    /// embedded in a node answers `NO` however few names it holds; `beamlink epmd` turns it
    /// on and then behaves as `epmd`.
    pub killable: bool,
    /// `epmd -relaxed_command_check`: a KILL_REQ is obeyed even while names are registered
    /// (if [`killable`](Self::killable)), and STOP_REQ unregisters names. Off by default.
    pub relaxed_command_check: bool,
    /// Source of creations.
    pub clock: Clock,
}

impl ServerConfig {
    /// Defaults for serving on `port`.
    pub fn new(port: u16) -> ServerConfig {
        ServerConfig {
            port,
            ipv4: Ipv4Addr::UNSPECIFIED,
            ipv6: Some(Ipv6Addr::UNSPECIFIED),
            max_connections: 1024,
            max_registrations: 1000,
            packet_timeout: Duration::from_secs(60),
            killable: false,
            relaxed_command_check: false,
            clock: Clock::system(),
        }
    }
}

struct Shared {
    registry: Mutex<Registry>,
    /// Per connection that registers (or tries to): cancelled when a STOP_REQ takes its name,
    /// which closes its socket as `epmd`'s `conn_close_fd` does.
    evictions: Mutex<HashMap<u64, CancellationToken>>,
    port: u16,
    packet_timeout: Duration,
    killable: bool,
    relaxed_command_check: bool,
    clock: Clock,
    next_connection: AtomicU64,
    turned_away: AtomicU64,
    /// Cancelled when the server stops because it obeyed a KILL_REQ.
    killed: CancellationToken,
    /// Refused registrations written to the log (see [`Shared::log_refusal`]).
    refusals: Mutex<LogLimit>,
}

/// Refused registrations logged per [`REFUSAL_WINDOW`]; the rest go to debug and are counted
/// in the next line. Any local process can ask for a taken name or send a bad request in a
/// loop: that must not flood the log.
const REFUSALS_PER_WINDOW: u32 = 10;
/// See [`REFUSALS_PER_WINDOW`].
const REFUSAL_WINDOW: Duration = Duration::from_secs(60);

impl Shared {
    fn registry(&self) -> MutexGuard<'_, Registry> {
        // No code panics while holding the lock; recover the table if one ever did.
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn evictions(&self) -> MutexGuard<'_, HashMap<u64, CancellationToken>> {
        self.evictions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How long a connection may stay silent before it is closed (see the module docs).
    fn idle_limit(&self) -> Duration {
        self.packet_timeout + Duration::from_secs(1)
    }

    /// Logs a refused registration (at warn level when `serious`), at most
    /// [`REFUSALS_PER_WINDOW`] a window; the others at debug level, counted in the next line.
    fn log_refusal(&self, what: fmt::Arguments<'_>, serious: bool) {
        let admitted = self
            .refusals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .admit(std::time::Instant::now());
        match admitted {
            Some(not_logged) if serious => {
                warn!(not_logged, "registration refused: {what}")
            }
            Some(not_logged) => info!(not_logged, "registration refused: {what}"),
            None => debug!("registration refused: {what}"),
        }
    }
}

/// A running embedded EPMD.
pub struct EpmdServer {
    shared: Arc<Shared>,
    addrs: Vec<SocketAddr>,
    cancel: CancellationToken,
    tracker: TaskTracker,
}

impl fmt::Debug for EpmdServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EpmdServer")
            .field("addrs", &self.addrs)
            .finish_non_exhaustive()
    }
}

fn bind_listener(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    if addr.is_ipv6() {
        // Leave IPv4 to the IPv4 socket, so both can hold the same port.
        socket.set_only_v6(true)?;
    }
    // Lets a server that takes over from a dead epmd bind while its old connections linger.
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

impl EpmdServer {
    /// Binds and starts serving. Stops when `shutdown` is cancelled (or on
    /// [`shutdown`](Self::shutdown)). Fails if the IPv4 address cannot be bound (port in use).
    pub async fn start(
        config: ServerConfig,
        shutdown: &CancellationToken,
    ) -> Result<EpmdServer, EpmdError> {
        let v4 = SocketAddr::new(IpAddr::V4(config.ipv4), config.port);
        let listener = bind_listener(v4).map_err(|source| EpmdError::Bind {
            addr: v4,
            source: source.into(),
        })?;
        let local = listener.local_addr().map_err(|source| EpmdError::Bind {
            addr: v4,
            source: source.into(),
        })?;
        let mut listeners = vec![(listener, local)];
        if let Some(ip) = config.ipv6 {
            let v6 = SocketAddr::new(IpAddr::V6(ip), local.port());
            match bind_listener(v6).and_then(|l| Ok((l.local_addr()?, l))) {
                Ok((addr, listener)) => listeners.push((listener, addr)),
                Err(err) => warn!(addr = %v6, error = %describe(&err), "EPMD not served on IPv6"),
            }
        }
        let shared = Arc::new(Shared {
            registry: Mutex::new(Registry::new(config.max_registrations)),
            evictions: Mutex::new(HashMap::new()),
            port: local.port(),
            packet_timeout: config.packet_timeout,
            killable: config.killable,
            relaxed_command_check: config.relaxed_command_check,
            clock: config.clock,
            next_connection: AtomicU64::new(1),
            turned_away: AtomicU64::new(0),
            killed: CancellationToken::new(),
            refusals: Mutex::new(LogLimit::new(REFUSALS_PER_WINDOW, REFUSAL_WINDOW)),
        });
        let cancel = shutdown.child_token();
        let tracker = TaskTracker::new();
        let permits = Arc::new(Semaphore::new(config.max_connections));
        let addrs = listeners.iter().map(|(_, a)| *a).collect::<Vec<_>>();
        for (listener, addr) in listeners {
            let accept = accept_loop(
                listener,
                shared.clone(),
                permits.clone(),
                cancel.clone(),
                tracker.clone(),
            );
            tracker.spawn(accept.instrument(info_span!("epmd_listener", %addr)));
        }
        info!(addrs = ?addrs, "serving EPMD");
        Ok(EpmdServer {
            shared,
            addrs,
            cancel,
            tracker,
        })
    }

    /// The addresses listened on (IPv4 first).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The port served.
    pub fn port(&self) -> u16 {
        self.shared.port
    }

    /// The registered names, as NAMES lists them.
    pub fn registered(&self) -> Vec<NamesEntry> {
        self.shared.registry().names()
    }

    /// Connections closed at once because [`ServerConfig::max_connections`] were open.
    pub fn turned_away(&self) -> u64 {
        self.shared.turned_away.load(Ordering::Relaxed)
    }

    /// Resolves when the server has stopped itself because it obeyed a KILL_REQ (only a
    /// [`ServerConfig::killable`] server does); [`shutdown`](Self::shutdown) then waits for
    /// its tasks.
    pub async fn killed(&self) {
        self.shared.killed.cancelled().await;
    }

    /// Stops accepting, closes every connection (which ends every registration), and waits
    /// for all tasks.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        self.tracker.close();
        self.tracker.wait().await;
        info!(addrs = ?self.addrs, "EPMD server stopped");
    }

    /// Waits until the shutdown token given to [`start`](Self::start) is cancelled and
    /// every task has ended.
    pub async fn wait(self) {
        self.cancel.cancelled().await;
        self.shutdown().await;
    }
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    permits: Arc<Semaphore>,
    cancel: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(err) => {
                // Typically out of file descriptors: pause instead of spinning.
                warn!(error = %describe(&err), "EPMD accept failed");
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(100)) => continue,
                }
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            let n = shared.turned_away.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                warn!(%peer, turned_away = n, "EPMD connection limit reached; closing new connections");
            }
            drop(stream);
            continue;
        };
        let connection = Connection {
            shared: shared.clone(),
            cancel: cancel.clone(),
            id: shared.next_connection.fetch_add(1, Ordering::Relaxed),
            peer,
            _permit: permit,
        };
        tracker.spawn(
            connection
                .serve(stream)
                .instrument(info_span!("epmd_conn", %peer)),
        );
    }
}

/// True for the peers `epmd` lets register: loopback, or the address the connection was
/// made to (a node on this host dialling one of its own addresses).
fn is_local_peer(peer: SocketAddr, local: Option<SocketAddr>) -> bool {
    let ip = peer.ip().to_canonical();
    ip.is_loopback() || local.is_some_and(|l| l.ip().to_canonical() == ip)
}

enum ReadOutcome {
    Request(EpmdRequest),
    Malformed(EpmdWireError),
    Closed,
    /// No byte for the idle limit before the request was complete.
    Silent,
}

struct Connection {
    shared: Arc<Shared>,
    cancel: CancellationToken,
    id: u64,
    peer: SocketAddr,
    _permit: OwnedSemaphorePermit,
}

/// Ends a registration however its task ends (EOF, stray byte, write error, shutdown,
/// STOP_REQ, panic), so no name outlives its socket. Made before the name is registered, so
/// a STOP_REQ always finds the connection's eviction token.
struct Unregister {
    shared: Arc<Shared>,
    id: u64,
}

impl Unregister {
    fn new(shared: Arc<Shared>, id: u64, evicted: CancellationToken) -> Unregister {
        shared.evictions().insert(id, evicted);
        Unregister { shared, id }
    }
}

impl Drop for Unregister {
    fn drop(&mut self) {
        self.shared.evictions().remove(&self.id);
        if let Some(name) = self.shared.registry().unregister(self.id) {
            info!(%name, "unregistered");
        }
    }
}

impl Connection {
    async fn serve(self, mut stream: TcpStream) {
        let local_peer = is_local_peer(self.peer, stream.local_addr().ok());
        let idle = self.shared.idle_limit();
        let outcome = tokio::select! {
            _ = self.cancel.cancelled() => return,
            outcome = read_request(&mut stream, idle) => outcome,
        };
        let request = match outcome {
            ReadOutcome::Request(request) => request,
            ReadOutcome::Closed => return,
            ReadOutcome::Silent => {
                debug!(?idle, "closing: silent before the request was complete");
                return;
            }
            ReadOutcome::Malformed(EpmdWireError::Alive2Refused {
                highest_version,
                problem,
            }) if local_peer => {
                self.shared.log_refusal(format_args!("{problem}"), false);
                self.reply(&mut stream, |out| {
                    Alive2Response::refused(highest_version).encode(out)
                })
                .await;
                return;
            }
            ReadOutcome::Malformed(err) => {
                debug!(error = %err, "closing: malformed request");
                return;
            }
        };
        match request {
            EpmdRequest::Alive2(_)
            | EpmdRequest::Dump
            | EpmdRequest::Kill
            | EpmdRequest::Stop(_)
                if !local_peer =>
            {
                debug!(
                    code = request.code(),
                    "closing: request only served to local peers"
                );
            }
            EpmdRequest::Alive2(request) => {
                let highest_version = request.highest_version;
                let evicted = CancellationToken::new();
                let guard = Unregister::new(self.shared.clone(), self.id, evicted.clone());
                let now = self.shared.clock.now();
                let result = self.shared.registry().register(&request, self.id, now);
                let registered = result.is_ok();
                let response = match result {
                    Ok(creation) => {
                        info!(name = %request.name, port = request.port, creation, "registered");
                        Alive2Response::accepted(highest_version, creation)
                    }
                    Err(Refusal::Duplicate) => {
                        self.shared
                            .log_refusal(format_args!("name {} taken", request.name), false);
                        Alive2Response::refused(highest_version)
                    }
                    Err(Refusal::Full) => {
                        self.shared.log_refusal(
                            format_args!("{}: registration table full", request.name),
                            true,
                        );
                        Alive2Response::refused(highest_version)
                    }
                };
                if self.reply(&mut stream, |out| response.encode(out)).await && registered {
                    self.hold_registration(stream, &evicted).await;
                }
                drop(guard);
            }
            EpmdRequest::PortPlease2(request) => {
                let reply = match self.shared.registry().lookup(&request.name) {
                    Some(node) => Port2Response::Found(node),
                    None => Port2Response::NotFound { result: 1 },
                };
                self.reply(&mut stream, |out| reply.encode(out)).await;
            }
            EpmdRequest::Names => {
                let reply = NamesResponse {
                    epmd_port: u32::from(self.shared.port),
                    nodes: self.shared.registry().names(),
                };
                self.reply(&mut stream, |out| reply.encode(out)).await;
            }
            EpmdRequest::Dump => {
                let (active, old) = self.shared.registry().dump();
                let port = u32::from(self.shared.port);
                self.reply(&mut stream, |out| encode_dump(port, &active, &old, out))
                    .await;
            }
            EpmdRequest::Kill => self.kill(&mut stream).await,
            EpmdRequest::Stop(request) => self.stop(&mut stream, request.name()).await,
            // A request the codec learns before this server does: `epmd` closes on a request
            // it does not know (`epmd_srv.c`, `do_request`).
            other => debug!(code = other.code(), "closing: request not served"),
        }
    }

    /// KILL_REQ from a local peer (`epmd_srv.c`, `do_request`).
    async fn kill(&self, stream: &mut TcpStream) {
        let shared = &self.shared;
        if !shared.killable {
            info!("KILL_REQ refused: this EPMD stops only with its owner (a node)");
            self.reply(stream, |out| out.put_slice(b"NO")).await;
            return;
        }
        if !shared.relaxed_command_check && !shared.registry().is_empty() {
            info!("KILL_REQ refused: names are registered");
            self.reply(stream, |out| out.put_slice(b"NO")).await;
            return;
        }
        self.reply(stream, |out| out.put_slice(b"OK")).await;
        info!("KILL_REQ obeyed: stopping");
        shared.killed.cancel();
        self.cancel.cancel();
    }

    /// STOP_REQ from a local peer (`epmd_srv.c`, `do_request`).
    async fn stop(&self, stream: &mut TcpStream, name: &[u8]) {
        if !self.shared.relaxed_command_check {
            info!("STOP_REQ refused: not started with relaxed command check");
            return;
        }
        let stopped = self.shared.registry().unregister_name(name);
        let answer: &[u8] = match stopped {
            Some((connection, name)) => {
                info!(%name, "unregistered by STOP_REQ");
                if let Some(evict) = self.shared.evictions().get(&connection) {
                    evict.cancel();
                }
                b"STOPPED"
            }
            None => {
                info!(name = %String::from_utf8_lossy(name), "STOP_REQ for a name not registered");
                // epmd sends NOEXIST, then falls through to STOPPED.
                b"NOEXISTSTOPPED"
            }
        };
        self.reply(stream, |out| out.put_slice(answer)).await;
    }

    /// Writes one answer in a single write (a BEAM's `net_adm:names` needs the first four
    /// bytes in one segment) under the packet timeout; false if it could not be sent.
    async fn reply(&self, stream: &mut TcpStream, encode: impl FnOnce(&mut BytesMut)) -> bool {
        let mut out = BytesMut::new();
        encode(&mut out);
        let write = async {
            stream.write_all(&out).await?;
            stream.flush().await
        };
        tokio::select! {
            _ = self.cancel.cancelled() => false,
            written = tokio::time::timeout(self.shared.packet_timeout, write) => match written {
                Ok(Ok(())) => true,
                Ok(Err(err)) => {
                    debug!(error = %describe(&err), "reply not sent");
                    false
                }
                Err(_) => {
                    debug!("reply not sent: peer does not read");
                    false
                }
            },
        }
    }

    /// Keeps a registration until its socket closes, errs, or sends anything (which `epmd`
    /// treats as the end of the registration), until a STOP_REQ takes its name, or until
    /// shutdown.
    async fn hold_registration(&self, mut stream: TcpStream, evicted: &CancellationToken) {
        let mut byte = [0u8; 1];
        tokio::select! {
            _ = self.cancel.cancelled() => debug!("shutdown: closing registration"),
            _ = evicted.cancelled() => debug!("closing the registration a STOP_REQ ended"),
            read = stream.read(&mut byte) => match read {
                Ok(0) => debug!("registration socket closed"),
                Ok(_) => info!("unexpected byte on a registration socket: unregistering"),
                Err(err) => debug!(error = %describe(&err), "registration socket failed"),
            },
        }
    }
}

/// Reads exactly one request, giving up after `idle` without a byte. Never buffers more than
/// the largest request plus its length field; bytes after the request (a second request in
/// the same segment) are malformed.
async fn read_request(stream: &mut TcpStream, idle: Duration) -> ReadOutcome {
    const MAX_FRAME: usize = 2 + MAX_REQUEST_LEN;
    let mut buf = BytesMut::with_capacity(64);
    loop {
        match EpmdRequest::decode(&mut buf) {
            Ok(Some(request)) if buf.is_empty() => return ReadOutcome::Request(request),
            Ok(Some(_)) => {
                return ReadOutcome::Malformed(EpmdWireError::RequestOverrun { extra: buf.len() });
            }
            Ok(None) => {}
            Err(err) => return ReadOutcome::Malformed(err),
        }
        let room = MAX_FRAME - buf.len();
        let mut window = (&mut buf).limit(room);
        match tokio::time::timeout(idle, stream.read_buf(&mut window)).await {
            Err(_) => return ReadOutcome::Silent,
            Ok(Ok(0) | Err(_)) => return ReadOutcome::Closed,
            Ok(Ok(_)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_local_peer;
    use std::net::SocketAddr;

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn local_peers_as_epmd_decides() {
        let here = Some(addr("10.0.1.7:4369"));
        assert!(is_local_peer(addr("127.0.0.1:5000"), here));
        assert!(is_local_peer(addr("127.8.9.10:5000"), here));
        assert!(is_local_peer(addr("[::1]:5000"), Some(addr("[::1]:4369"))));
        assert!(is_local_peer(addr("[::ffff:127.0.0.1]:5000"), None));
        // A node on this host dialling the host's own address.
        assert!(is_local_peer(addr("10.0.1.7:5000"), here));
        assert!(!is_local_peer(addr("10.0.1.8:5000"), here));
        assert!(!is_local_peer(addr("10.0.1.8:5000"), None));
        assert!(!is_local_peer(
            addr("[fd00::2]:5000"),
            Some(addr("[fd00::1]:4369"))
        ));
    }
}
