//! The node runtime: our name and creation, the peers we are connected to, the local
//! processes and the built-in services that answer what a BEAM asks (`net_kernel`'s
//! `is_auth`, monitors on names we do not have). It sees node names and control messages,
//! never bytes: [`crate::transport`] does the rest.
//!
//! # Where [`Node`]'s methods are
//! One `impl Node` block per concern, in the file of that concern:
//! * `mod.rs`, identity and life cycle (a node is started by [`Node::builder`]):
//!   [`shutdown`](Node::shutdown), [`shutting_down`](Node::shutting_down),
//!   [`name`](Node::name), [`creation`](Node::creation), [`flags`](Node::flags),
//!   [`listen_addr`](Node::listen_addr), [`config`](Node::config), [`uptime`](Node::uptime),
//!   [`make_ref`](Node::make_ref), [`is_local`](Node::is_local),
//!   [`epmd_status`](Node::epmd_status) (the registration [`crate::NodeBuilder`] made).
//! * `peers.rs`, the peer table and nodeup/nodedown: [`events`](Node::events),
//!   [`connections`](Node::connections), [`connection`](Node::connection),
//!   [`connection_by_atom`](Node::connection_by_atom),
//!   [`pending_connections`](Node::pending_connections), [`peers`](Node::peers),
//!   [`connected_nodes`](Node::connected_nodes).
//! * `connect.rs`, dialling (coalescing, simultaneous connects): [`connect`](Node::connect),
//!   [`connect_addr`](Node::connect_addr), [`adopt`](Node::adopt).
//! * `accept.rs`, accepting (the status of an incoming name, `alive`): nothing public; the
//!   transport's listener calls it.
//! * `process.rs`, the process table: [`registered`](Node::registered),
//!   [`unregister`](Node::unregister), [`whereis`](Node::whereis),
//!   [`process_count`](Node::process_count).
//! * `handle.rs`, processes owned by Rust code: [`spawn_process`](Node::spawn_process),
//!   [`send`](Node::send).
//! * `gen_server.rs`: [`spawn_gen_server`](Node::spawn_gen_server).
//! * `rpc.rs`, rpc and erpc both ways: [`register_rpc`](Node::register_rpc),
//!   [`apply`](Node::apply), [`rpc_call`](Node::rpc_call).
//! * `services.rs`, the built-in services (`net_kernel`, `rex`, the `beamlink` GenServer).
//! * `counters.rs`, what the exporter reads: [`handshake_failures`](Node::handshake_failures),
//!   [`disconnects`](Node::disconnects); `bad_message.rs`, messages that do not decode
//!   (counted, logged, and the connection kept or closed per
//!   [`NodeConfig::on_bad_message`]): [`bad_messages`](Node::bad_messages).
//! * `router.rs` (where inbound control messages go) and `signals.rs` (exit signals, links,
//!   monitors, aliases): nothing public.
//!
//! Shutdown order ([`Node::shutdown`]): stop accepting, close every link (so monitors
//! on our processes fire with `noconnection` on the peers), wait for every task, then drop
//! the EPMD registration.

mod accept;
mod bad_message;
mod connect;
mod counters;
mod gen_server;
mod handle;
mod peers;
pub(crate) mod process;
mod router;
mod rpc;
mod services;
mod signals;

pub use crate::transport::ConnectError;
pub use crate::transport::connection::OnBadMessage;
pub use crate::transport::random_u32;
pub use gen_server::{CallReply, Caller, GenServer};
pub use handle::{CallError, Dest, Process, SendError};
pub use peers::{NodeEvent, PeerInfo};
pub use process::{Envelope, RegisterError};
pub use rpc::{RpcCall, RpcCallError, RpcError, RpcFuture, RpcHandler, RpcResult};
pub(crate) use services::register_service;

use crate::proto::digest::Cookie;
use crate::proto::flags::DistFlags;
use crate::proto::handshake::LocalNode;
use crate::proto::node_name::NodeName;
use crate::proto::term::{Pid, Reference};
use crate::transport::connection::ConnectionConfig;
use crate::transport::dialler::{DialConfig, Dialler};
use crate::transport::listener::{self, ListenerConfig};
use peers::Peers;
use process::ProcessTable;
use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How a node is set up.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// Our full name (long names only).
    pub name: NodeName,
    /// The cookie.
    pub cookie: Cookie,
    /// Publish as a visible node (`DFLAG_PUBLISHED`) instead of hidden.
    pub visible: bool,
    /// Where to accept connections; `None` for a node that only dials (one-shot commands).
    pub listen: Option<SocketAddr>,
    /// The EPMD port peers' EPMDs listen on.
    pub epmd_port: u16,
    /// EPMD-less (`--dist-port`, the BEAM's `-erl_epmd_port`): every peer is dialled on this
    /// port and no EPMD is asked.
    pub dist_port: Option<u16>,
    /// Time allowed for each handshake step (the BEAM's `net_setuptime`).
    pub setup_timeout: Duration,
    /// Link settings (ticks, frame cap, send queue).
    pub connection: ConnectionConfig,
    /// Messages a mailbox holds before senders wait.
    pub mailbox_capacity: usize,
    /// Handshakes of incoming connections in progress at once; more are closed at once.
    pub max_pending_handshakes: usize,
    /// Our creation; `None` draws a random one (a node not registered in EPMD).
    pub creation: Option<u32>,
    /// Offer the distribution header (atom cache and fragments), as every BEAM does; off,
    /// messages use the plain pass-through form.
    pub dist_header: bool,
    /// What a message that does not decode does to its connection (`--on-bad-message`):
    /// by default it is dropped and the connection stays; a BEAM closes the connection.
    pub on_bad_message: OnBadMessage,
    /// TLS distribution, handed to the transport (which dials and accepts over TLS; the
    /// node sees only the session's description). `None`: plain TCP.
    pub tls: Option<crate::tls::TlsConfig>,
}

impl NodeConfig {
    /// Defaults for a node called `name` with `cookie`: hidden, listening on an ephemeral
    /// port of every IPv4 and IPv6 address, BEAM timings.
    pub fn new(name: NodeName, cookie: Cookie) -> NodeConfig {
        NodeConfig {
            name,
            cookie,
            visible: false,
            listen: Some(SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 0))),
            epmd_port: 4369,
            dist_port: None,
            setup_timeout: Duration::from_secs(7),
            connection: ConnectionConfig::default(),
            mailbox_capacity: 65_536,
            max_pending_handshakes: 256,
            creation: None,
            dist_header: true,
            on_bad_message: OnBadMessage::Keep,
            tls: None,
        }
    }

    /// The flags we offer.
    pub fn flags(&self) -> DistFlags {
        let mut flags = DistFlags::BEAMLINK_DEFAULT;
        if self.visible {
            flags = flags | DistFlags::PUBLISHED;
        }
        if !self.dist_header {
            flags =
                DistFlags(flags.0 & !(DistFlags::DIST_HDR_ATOM_CACHE.0 | DistFlags::FRAGMENTS.0));
        }
        flags
    }
}

/// Why a node could not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum NodeError {
    /// The distribution port could not be bound.
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The OS random source failed.
    Random(getrandom::Error),
    /// TLS is configured and the node listens, but the TLS settings cannot serve
    /// (no certificate for the server role).
    Tls(crate::tls::TlsConfigError),
}

impl fmt::Display for NodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeError::Listen { addr, source } => {
                write!(f, "cannot listen for connections on {addr}: {source}")
            }
            NodeError::Random(e) => write!(f, "the OS random source failed: {e}"),
            NodeError::Tls(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for NodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            NodeError::Listen { source, .. } => Some(source),
            NodeError::Random(e) => Some(e),
            NodeError::Tls(e) => Some(e),
        }
    }
}

/// A running node. Cheap to clone; every clone is the same node. [`Node::builder`] starts one
/// that joins a cluster (see [`crate::NodeBuilder`] for an example).
///
/// The node runs until [`Node::shutdown`], or until the last `Node` the caller holds (the
/// one `start` returned and its clones) is dropped: then it stops as `shutdown` does, in a
/// task of the current tokio runtime (or at once, without waiting, outside one). A `Node`
/// handed to a callback by the node itself (a [`crate::node::GenServer`]'s context, say) does
/// not keep it running.
#[derive(Clone)]
pub struct Node {
    inner: Arc<Inner>,
    /// Present in the handles the caller holds, absent in the node's own tasks' handles.
    #[expect(
        dead_code,
        reason = "held for its Drop: the last caller's handle stops the node"
    )]
    owner: Option<Arc<Owner>>,
}

/// Stops the node when the caller's last handle goes.
struct Owner {
    inner: Arc<Inner>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        if self.inner.shutdown.is_cancelled() {
            return;
        }
        let node = Node {
            inner: self.inner.clone(),
            owner: None,
        };
        tracing::debug!(node = %node.name(), "the last handle was dropped: stopping the node");
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move { node.shutdown().await });
            }
            Err(_) => node.stop_now(),
        }
    }
}

pub(crate) struct Inner {
    name: NodeName,
    creation: u32,
    flags: DistFlags,
    config: NodeConfig,
    started: Instant,
    listen_addr: Option<SocketAddr>,
    dialler: Dialler,
    peers: Mutex<Peers>,
    processes: Mutex<ProcessTable>,
    remote_monitors: Mutex<HashMap<Reference, signals::RemoteMonitor>>,
    aliases: Mutex<HashMap<Reference, Pid>>,
    rpc: rpc::RpcTable,
    next_ref: AtomicU64,
    next_link_id: AtomicU64,
    events: broadcast::Sender<NodeEvent>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    /// The EPMD registration [`crate::NodeBuilder`] made; withdrawn last at shutdown.
    registrar: Mutex<Option<crate::epmd::Registrar>>,
    /// Failed handshakes and lost connections, for the exporter.
    counters: counters::Counters,
    /// What the `beamlink` GenServer answers to `:cluster` (set by the watcher of `run`).
    cluster: Mutex<Option<ClusterSource>>,
}

/// Gives the answer to `GenServer.call({:beamlink, R}, :cluster)` (see [`crate::watch`]).
pub(crate) type ClusterSource = Arc<dyn Fn() -> crate::proto::term::Term + Send + Sync>;

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node")
            .field("name", &self.inner.name)
            .field("creation", &self.inner.creation)
            .finish()
    }
}

/// Locks a table, recovering from a panic in another holder: the tables stay consistent
/// because no critical section can panic half-way through an update.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Node {
    /// Starts a node on a listener bound by the caller (who needed its port first, to
    /// register it with EPMD); `config.listen` is not used.
    pub(crate) async fn start_on(
        config: NodeConfig,
        listener: Option<TcpListener>,
    ) -> Result<Node, NodeError> {
        let creation = match config.creation {
            Some(c) => c,
            // 0 is reserved and 1..3 belong to old-style EPMD creations.
            None => random_u32().map_err(NodeError::Random)?.max(4),
        };
        let server_tls = match (&config.tls, &listener) {
            (Some(tls), Some(_)) => Some(tls.server().map_err(NodeError::Tls)?),
            _ => None,
        };
        let listen_addr = listener.as_ref().and_then(|l| l.local_addr().ok());
        let (events, _) = broadcast::channel(1024);
        let local = LocalNode {
            name: config.name.clone(),
            flags: config.flags(),
            creation,
            cookie: config.cookie.clone(),
        };
        let dialler = Dialler::new(
            local.clone(),
            DialConfig {
                epmd_port: config.epmd_port,
                dist_port: config.dist_port,
                setup_timeout: config.setup_timeout,
                tls: config.tls.clone(),
            },
        );
        let inner = Arc::new(Inner {
            name: config.name.clone(),
            creation,
            flags: config.flags(),
            started: Instant::now(),
            listen_addr,
            dialler,
            peers: Mutex::new(Peers::default()),
            processes: Mutex::new(ProcessTable::default()),
            remote_monitors: Mutex::new(HashMap::new()),
            aliases: Mutex::new(HashMap::new()),
            rpc: rpc::RpcTable::default(),
            next_ref: AtomicU64::new(1),
            next_link_id: AtomicU64::new(1),
            events,
            shutdown: CancellationToken::new(),
            tracker: TaskTracker::new(),
            registrar: Mutex::new(None),
            cluster: Mutex::new(None),
            counters: counters::Counters::default(),
            config,
        });
        let owner = Some(Arc::new(Owner {
            inner: inner.clone(),
        }));
        let node = Node { inner, owner };
        services::start_builtin(&node);
        if let Some(listener) = listener {
            let config = ListenerConfig {
                local,
                setup_timeout: node.inner.config.setup_timeout,
                max_pending_handshakes: node.inner.config.max_pending_handshakes,
                tls: server_tls,
            };
            listener::spawn(
                listener,
                config,
                accept::Accepting(node.internal()),
                &node.inner.tracker,
                &node.inner.shutdown,
            );
        }
        tracing::info!(
            node = %node.name(),
            creation,
            listen = ?listen_addr,
            hidden = !node.inner.config.visible,
            tls = node.inner.config.tls.is_some(),
            "node started"
        );
        Ok(node)
    }

    /// Our name.
    pub fn name(&self) -> &NodeName {
        &self.inner.name
    }

    /// Our creation.
    pub fn creation(&self) -> u32 {
        self.inner.creation
    }

    /// The flags we offer.
    pub fn flags(&self) -> DistFlags {
        self.inner.flags
    }

    /// Where we accept connections.
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        self.inner.listen_addr
    }

    /// The configuration the node runs with.
    pub fn config(&self) -> &NodeConfig {
        &self.inner.config
    }

    /// Time since start.
    pub fn uptime(&self) -> Duration {
        self.inner.started.elapsed()
    }

    /// Resolves once shutdown has begun.
    pub async fn shutting_down(&self) {
        self.inner.shutdown.cancelled().await
    }

    /// A new reference of this node.
    pub fn make_ref(&self) -> Reference {
        let n = self.inner.next_ref.fetch_add(1, Ordering::Relaxed);
        let ids = [(n & 0x3_FFFF) as u32, (n >> 18) as u32, (n >> 50) as u32];
        Reference::new(self.inner.name.as_atom().clone(), self.inner.creation, &ids)
            .expect("three words is a valid reference")
    }

    /// True if `pid` names a process of this node incarnation.
    pub fn is_local(&self, pid: &Pid) -> bool {
        pid.node == *self.inner.name.as_atom() && pid.creation == self.inner.creation
    }

    /// Stops the node: closes every connection first (so monitors on our processes fire with
    /// `noconnection` on the peers), waits for all its tasks (the connection manager among
    /// them), then withdraws the EPMD registration if the node has one.
    ///
    /// Dropping the caller's last handle does the same without waiting (see [`Node`]).
    pub async fn shutdown(&self) {
        self.inner.shutdown.cancel();
        for link in self.connections() {
            link.close();
        }
        self.inner.tracker.close();
        self.inner.tracker.wait().await;
        tracing::info!(node = %self.name(), "node stopped");
        let registrar = lock(&self.inner.registrar).take();
        if let Some(registrar) = registrar {
            registrar.shutdown().await;
        }
    }

    /// What dropping the last handle does outside a runtime: every task is told to stop and
    /// the EPMD registration is withdrawn (dropping the registrar cancels it), nobody waits.
    fn stop_now(&self) {
        self.inner.shutdown.cancel();
        for link in self.connections() {
            link.close();
        }
        self.inner.tracker.close();
        drop(lock(&self.inner.registrar).take());
    }

    /// A handle for the node's own tasks: it does not keep the node running (see [`Node`]).
    pub(crate) fn internal(&self) -> Node {
        Node {
            inner: self.inner.clone(),
            owner: None,
        }
    }

    /// Where the node's EPMD registration stands; `None` for a node that is not registered
    /// (started without [`crate::NodeBuilder`], or with [`crate::NodeBuilder::no_epmd`]).
    pub fn epmd_status(&self) -> Option<tokio::sync::watch::Receiver<crate::epmd::EpmdStatus>> {
        lock(&self.inner.registrar).as_ref().map(|r| r.status())
    }

    /// Hands the node the registration to withdraw at shutdown.
    pub(crate) fn attach_registrar(&self, registrar: crate::epmd::Registrar) {
        *lock(&self.inner.registrar) = Some(registrar);
    }

    /// Runs `task` as one of the node's own: shutdown waits for it. The task must end once
    /// [`Node::shutting_down`] resolves.
    pub(crate) fn spawn_task(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        self.inner.tracker.spawn(task);
    }

    /// Makes `:cluster` calls to the `beamlink` GenServer answer with `source()`.
    pub(crate) fn set_cluster_source(&self, source: ClusterSource) {
        *lock(&self.inner.cluster) = Some(source);
    }

    /// The answer to `:cluster`, when something watches the cluster.
    pub(crate) fn cluster_answer(&self) -> Option<crate::proto::term::Term> {
        let source = lock(&self.inner.cluster).clone();
        source.map(|s| s())
    }
}
