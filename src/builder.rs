//! [`NodeBuilder`] (documented on the type: this module is private).

use crate::cluster::{self, ClusterConfig};
use crate::config::{self, ConfigError};
use crate::discovery::{DnsError, DnsQuery};
use crate::epmd::{EpmdMode, EpmdStatus, Registrar, RegistrarConfig};
use crate::metrics::Sources;
use crate::node::{Node, NodeConfig, NodeError, OnBadMessage};
use crate::proto::digest::Cookie;
use crate::proto::epmd::{Alive2Request, AliveName};
use crate::proto::node_name::{NodeName, NodeNameError};
use crate::tls::{TlsConfig, TlsConfigError};
use crate::watch::{MeshMode, Watch, WatchConfig};
use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::info;

/// Adjusts the [`NodeConfig`] the builder made, for settings it has no method for.
type Tune = Arc<dyn Fn(&mut NodeConfig) + Send + Sync>;

/// Builds and starts a [`Node`]: one call that does what joining a cluster takes, the way
/// `beamlink run` does it. Bind the distribution listener first (EPMD needs its port),
/// register with EPMD (or serve EPMD, per [`EpmdMode`]) and take the creation EPMD hands out,
/// start the node, then, when peers are named, start the connection manager
/// ([`crate::cluster`]), and when asked the cluster watcher ([`crate::watch`]) and the
/// metrics exporter ([`crate::metrics`]). The node owns all of it: [`Node::shutdown`] closes the connections
/// first, then stops the manager, then unregisters, the order a BEAM's `init:stop/0` follows
/// (`net_kernel` goes down before `erl_epmd`), so monitors on our processes fire with
/// `noconnection` on the peers. Dropping the last clone of the [`Node`] that `start` returned
/// does the same without waiting for it (see [`Node`]).
///
/// EPMD-less ([`NodeBuilder::dist_port`]), as a BEAM started with `-start_epmd false
/// -erl_epmd_port PORT`: listen on PORT, never register with or ask an EPMD, dial every peer
/// on PORT.
///
/// ```no_run
/// # async fn demo() -> Result<(), beamlink::StartError> {
/// use beamlink::{Cookie, EpmdMode, Node};
///
/// let node = Node::builder()
///     .name("counter") // the host part: our address toward the peers
///     .cookie(Cookie::new("secret"))
///     .epmd(EpmdMode::Auto)
///     .dns_query("tasks.shop_web")
///     .peer_basename("web")
///     .start()
///     .await?;
/// node.shutdown().await;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
#[must_use = "a builder does nothing until start() is awaited"]
pub struct NodeBuilder {
    name: String,
    cookie: Option<Cookie>,
    epmd: Option<EpmdMode>,
    /// `None`: `ERL_EPMD_PORT`, else 4369 (read by `start`).
    epmd_port: Option<u16>,
    dist_port: Option<u16>,
    /// `None`: the node only dials.
    listen: Option<SocketAddr>,
    creation: Option<u32>,
    tune: Option<Tune>,
    visible: bool,
    net_ticktime: Option<Duration>,
    connect: Vec<String>,
    dns_query: Option<String>,
    dns_server: Option<SocketAddr>,
    peer_basename: Option<String>,
    poll_interval: Duration,
    registration_timeout: Option<Duration>,
    bench_services: bool,
    on_bad_message: OnBadMessage,
    watch: Option<WatchConfig>,
    metrics: Option<SocketAddr>,
    ready_min_peers: usize,
    tls: Option<TlsConfig>,
}

impl Default for NodeBuilder {
    fn default() -> NodeBuilder {
        NodeBuilder {
            name: "beamlink".into(),
            cookie: None,
            epmd: Some(EpmdMode::Auto),
            epmd_port: None,
            dist_port: None,
            listen: Some(SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0))),
            creation: None,
            tune: None,
            visible: false,
            net_ticktime: None,
            connect: Vec::new(),
            dns_query: None,
            dns_server: None,
            peer_basename: None,
            poll_interval: Duration::from_secs(5),
            registration_timeout: None,
            bench_services: false,
            on_bad_message: OnBadMessage::Keep,
            watch: None,
            metrics: None,
            ready_min_peers: 1,
            tls: None,
        }
    }
}

impl fmt::Debug for NodeBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The cookie's Debug hides its value.
        f.debug_struct("NodeBuilder")
            .field("name", &self.name)
            .field("cookie", &self.cookie)
            .field("epmd", &self.epmd)
            .field("epmd_port", &self.epmd_port)
            .field("dist_port", &self.dist_port)
            .field("listen", &self.listen)
            .field("visible", &self.visible)
            .field("connect", &self.connect)
            .field("dns_query", &self.dns_query)
            .field("peer_basename", &self.peer_basename)
            .field("on_bad_message", &self.on_bad_message)
            .field("tune", &self.tune.is_some())
            .field("watch", &self.watch)
            .field("metrics", &self.metrics)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

impl Node {
    /// A builder for a node that joins a cluster: see [`NodeBuilder`].
    pub fn builder() -> NodeBuilder {
        NodeBuilder::default()
    }
}

impl NodeBuilder {
    /// Our name: `alive@host`, or just `alive`, completed with our address toward the peers
    /// (the first static peer's, else the first DNS answer's, else the first non-loopback
    /// IPv4 address, else the first global IPv6 one). Default `beamlink`. Long names only.
    /// An IPv6 address is written as the BEAM writes it (`inet:ntoa/1`: compressed,
    /// lower case, no brackets), e.g. `beamlink@fd00:beef::3`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The cookie. Required.
    pub fn cookie(mut self, cookie: Cookie) -> Self {
        self.cookie = Some(cookie);
        self
    }

    /// How to register with EPMD (default [`EpmdMode::Auto`]: a local EPMD if one answers,
    /// else serve EPMD ourselves).
    pub fn epmd(mut self, mode: EpmdMode) -> Self {
        self.epmd = Some(mode);
        self
    }

    /// Do not register with EPMD at all: BEAM nodes cannot find us by name, only dial us at
    /// [`Node::listen_addr`]; our creation is drawn at random.
    pub fn no_epmd(mut self) -> Self {
        self.epmd = None;
        self
    }

    /// The port EPMDs listen on, ours and the peers'. Default: `ERL_EPMD_PORT` when it is
    /// set, as `erl` reads it, else 4369.
    pub fn epmd_port(mut self, port: u16) -> Self {
        self.epmd_port = Some(port);
        self
    }

    /// EPMD-less, as the BEAM's `-erl_epmd_port PORT`: listen on `port`, never register
    /// with or ask an EPMD (the [`epmd`](Self::epmd) mode is not used), and dial every peer
    /// on `port`. DNS discovery then needs a [`peer_basename`](Self::peer_basename) (there
    /// is no EPMD to list names). A [`listen`](Self::listen) address keeps its IP; its port
    /// must be 0 or `port`.
    pub fn dist_port(mut self, port: u16) -> Self {
        self.dist_port = Some(port);
        self
    }

    /// Where to accept connections (default `[::]:0`: every IPv4 and IPv6 address, an
    /// ephemeral port; see [`crate::transport::listener::bind`]).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = Some(addr);
        self
    }

    /// A node that only dials: no listener and no EPMD registration, as `beamlink ping`,
    /// `nodes` and `doctor` are. Peers cannot connect to it.
    pub fn dial_only(mut self) -> Self {
        self.listen = None;
        self.epmd = None;
        self
    }

    /// Our creation, for a node without EPMD (with EPMD the creation is the one EPMD gives).
    /// Default: drawn at random.
    pub fn creation(mut self, creation: u32) -> Self {
        self.creation = Some(creation);
        self
    }

    /// Adjusts any other setting of the [`NodeConfig`] (mailbox size, frame cap, send
    /// queue, setup timeout, ...) after the builder has filled in the rest.
    pub fn tune(mut self, tune: impl Fn(&mut NodeConfig) + Send + Sync + 'static) -> Self {
        self.tune = Some(Arc::new(tune));
        self
    }

    /// Publish as a visible node instead of hidden (default hidden).
    pub fn visible(mut self, visible: bool) -> Self {
        self.visible = visible;
        self
    }

    /// As the BEAM's `net_ticktime` (default 60 s).
    pub fn net_ticktime(mut self, ticktime: Duration) -> Self {
        self.net_ticktime = Some(ticktime);
        self
    }

    /// A peer to stay connected to, e.g. `web@10.0.1.5` (repeatable).
    pub fn connect(mut self, peer: impl Into<String>) -> Self {
        self.connect.push(peer.into());
        self
    }

    /// Poll the A and AAAA records of this name for peers, e.g. `tasks.shop_web`.
    pub fn dns_query(mut self, query: impl Into<String>) -> Self {
        self.dns_query = Some(query.into());
        self
    }

    /// Ask this DNS server instead of the system's resolv.conf.
    pub fn dns_server(mut self, server: SocketAddr) -> Self {
        self.dns_server = Some(server);
        self
    }

    /// Peers found by DNS are `basename@<ip>`; without it, every node the EPMD at each
    /// address lists.
    pub fn peer_basename(mut self, basename: impl Into<String>) -> Self {
        self.peer_basename = Some(basename.into());
        self
    }

    /// Time between DNS polls, and the cap of the reconnect backoff (default 5 s).
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// Give up if EPMD has not registered us within this time (default: wait; in
    /// [`EpmdMode::Client`] that is until an EPMD answers).
    pub fn registration_timeout(mut self, timeout: Duration) -> Self {
        self.registration_timeout = Some(timeout);
        self
    }

    /// Also register `rig_sink` and `rig_echo`, the peers `scripts/bench` measures against.
    pub fn bench_services(mut self, on: bool) -> Self {
        self.bench_services = on;
        self
    }

    /// What a message that does not decode does to its connection (default
    /// [`OnBadMessage::Keep`]: the message is dropped, the connection stays;
    /// [`OnBadMessage::DropLink`] closes it, as a BEAM does). Either way it is counted and
    /// logged ([`Node::bad_messages`]).
    pub fn on_bad_message(mut self, action: OnBadMessage) -> Self {
        self.on_bad_message = action;
        self
    }

    /// Watch the cluster ([`crate::watch`]): every `interval`, ask each node we are linked
    /// to whom it sees and how loaded it is, log the changes, and with `mesh` ask visible
    /// nodes that are not connected to connect. Default off.
    pub fn watch(mut self, interval: Duration, mesh: MeshMode) -> Self {
        self.watch = Some(WatchConfig::new(
            interval.max(Duration::from_millis(100)),
            mesh,
        ));
        self
    }

    /// Serve Prometheus metrics, `/healthz` and `/readyz` on `addr` ([`crate::metrics`]).
    /// Default off.
    pub fn metrics(mut self, addr: SocketAddr) -> Self {
        self.metrics = Some(addr);
        self
    }

    /// TLS distribution, as a BEAM started with `-proto_dist inet_tls -ssl_dist_optfile
    /// FILE`: every connection, dialled or accepted, starts with a TLS handshake and the
    /// distribution handshake runs inside it ([`crate::tls`]). A node that listens needs a
    /// certificate for the server role. Default: plain TCP. EPMD stays plain either way.
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// `/readyz` needs at least this many connections (default 1).
    pub fn ready_min_peers(mut self, peers: usize) -> Self {
        self.ready_min_peers = peers;
        self
    }

    /// Binds, registers, starts the node and, when peers are named, the connection manager.
    /// If this future is dropped before it completes, the registration is withdrawn.
    pub async fn start(mut self) -> Result<Node, StartError> {
        let cookie = self.cookie.clone().ok_or(StartError::NoCookie)?;
        if let Some(tls) = &self.tls
            && self.listen.is_some()
        {
            tls.server().map_err(StartError::Tls)?;
        }
        let epmd_port = match self.epmd_port {
            Some(port) => port,
            // EPMD-less: no EPMD is asked, so its port does not matter.
            None if self.dist_port.is_some() => 4369,
            None => epmd_port_from_env()?,
        };
        if let Some(port) = self.dist_port {
            if self.dns_query.is_some() && self.peer_basename.is_none() {
                return Err(StartError::NoBasename { dist_port: port });
            }
            self.listen = match self.listen {
                Some(addr) if addr.port() == 0 => Some(SocketAddr::new(addr.ip(), port)),
                Some(addr) if addr.port() != port => {
                    return Err(StartError::ListenPort {
                        listen: addr,
                        dist_port: port,
                    });
                }
                other => other,
            };
        }
        let mut statics = Vec::new();
        for text in &self.connect {
            let peer = NodeName::parse(text).map_err(|source| StartError::Peer {
                peer: text.clone(),
                source,
            })?;
            statics.push(peer);
        }
        let dns = match &self.dns_query {
            Some(q) => Some(DnsQuery::new(q, self.dns_server).map_err(StartError::Dns)?),
            None => None,
        };
        let toward = if self.name.contains('@') {
            None
        } else {
            address_toward(&statics, dns.as_ref(), 3, self.poll_interval).await
        };
        let (name, why) = config::node_name(&self.name, toward).map_err(StartError::Name)?;
        if let Some(why) = why {
            info!(node = %name, "node name uses {why}");
        }
        let metrics = match self.metrics {
            Some(addr) => Some(
                crate::metrics::http::bind(addr)
                    .await
                    .map_err(|source| StartError::Metrics { addr, source })?,
            ),
            None => None,
        };
        let listener = match self.listen {
            Some(addr) => Some(
                crate::transport::listener::bind(addr)
                    .await
                    .map_err(|source| StartError::Listen { addr, source })?,
            ),
            None => None,
        };
        let port = match &listener {
            Some(l) => l
                .local_addr()
                .map_err(|source| StartError::Listen {
                    addr: self
                        .listen
                        .unwrap_or(SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0))),
                    source,
                })?
                .port(),
            None => 0,
        };

        // Withdrawn if start() is dropped or fails from here on; handed to the node after.
        let stop_epmd = CancellationToken::new();
        let guard = stop_epmd.clone().drop_guard();
        let epmd = self
            .epmd
            .filter(|_| listener.is_some() && self.dist_port.is_none());
        let registration = match epmd {
            Some(mode) => {
                let alive = AliveName::new(name.alive())
                    .map_err(|_| StartError::Alive { name: name.clone() })?;
                let registrar = Registrar::start(
                    RegistrarConfig::new(mode, epmd_port, Alive2Request::new(alive, port)),
                    &stop_epmd,
                );
                let registered = registrar.registered();
                let status = match self.registration_timeout {
                    Some(t) => tokio::time::timeout(t, registered).await.ok().flatten(),
                    None => registered.await,
                };
                let Some(EpmdStatus::Registered { creation, .. }) = status else {
                    let last = registrar.status().borrow().clone();
                    registrar.shutdown().await;
                    return Err(StartError::Epmd {
                        port: epmd_port,
                        status: last.to_string(),
                    });
                };
                Some((registrar, creation))
            }
            None => None,
        };

        let mut node_config = NodeConfig::new(name, cookie);
        node_config.visible = self.visible;
        node_config.epmd_port = epmd_port;
        node_config.dist_port = self.dist_port;
        node_config.on_bad_message = self.on_bad_message;
        node_config.tls = self.tls.clone();
        if let Some(t) = self.net_ticktime {
            node_config.connection.net_ticktime = t.max(Duration::from_secs(1));
        }
        // EPMD gives a new creation when we re-register after it restarts; like the BEAM we
        // keep the first one, so pids we handed out stay valid.
        node_config.creation = registration.as_ref().map(|(_, c)| *c).or(self.creation);
        if let Some(tune) = &self.tune {
            tune(&mut node_config);
        }
        let node = match Node::start_on(node_config, listener).await {
            Ok(node) => node,
            Err(e) => {
                if let Some((registrar, _)) = registration {
                    registrar.shutdown().await;
                }
                return Err(StartError::Node(e));
            }
        };
        guard.disarm();
        if let Some((registrar, _)) = registration {
            node.attach_registrar(registrar);
        }
        if self.bench_services {
            crate::bench_services::start(&node);
        }
        let mut cluster_stats = None;
        if !statics.is_empty() || dns.is_some() {
            let mut cluster = ClusterConfig::statics(statics, self.poll_interval);
            cluster.dns = dns;
            cluster.basename = self.peer_basename;
            cluster_stats = Some(cluster.stats.clone());
            node.spawn_task(cluster::run(node.internal(), cluster));
        }
        let watch = self.watch.map(|mut config| {
            // The per-node figures are only asked for when something serves them.
            config.figures = metrics.is_some();
            Watch::new(config)
        });
        if let Some(watch) = &watch {
            node.spawn_task(crate::watch::run(node.internal(), watch.clone()));
        }
        if let Some(listener) = metrics {
            if let Ok(addr) = listener.local_addr() {
                info!(%addr, "serving /metrics, /healthz and /readyz");
            }
            let sources = Sources {
                node: node.internal(),
                cluster: cluster_stats,
                watch,
                ready_min_peers: self.ready_min_peers,
            };
            node.spawn_task(crate::metrics::http::serve(listener, sources));
        }
        Ok(node)
    }
}

/// `ERL_EPMD_PORT`, as `erl_epmd` reads it, or 4369 when it is not set.
fn epmd_port_from_env() -> Result<u16, StartError> {
    match std::env::var("ERL_EPMD_PORT") {
        Err(std::env::VarError::NotPresent) => Ok(4369),
        Ok(text) => text
            .trim()
            .parse()
            .map_err(|_| StartError::EpmdPortEnv { value: text }),
        Err(std::env::VarError::NotUnicode(text)) => Err(StartError::EpmdPortEnv {
            value: text.to_string_lossy().into_owned(),
        }),
    }
}

/// The address our name should carry: a static peer's, else the first DNS answer (up to
/// `attempts` lookups, `poll` apart).
pub(crate) async fn address_toward(
    statics: &[NodeName],
    dns: Option<&DnsQuery>,
    attempts: u32,
    poll: Duration,
) -> Option<IpAddr> {
    if let Some(ip) = statics.iter().find_map(|n| n.host_ip()) {
        return Some(ip);
    }
    let dns = dns?;
    // A dead server must not hold up start-up longer than a poll (see ClusterConfig).
    let deadline = poll.max(cluster::MIN_DNS_DEADLINE);
    for attempt in 0..attempts {
        match dns.lookup_within(deadline).await {
            Ok(ips) => return ips.first().copied(),
            Err(e) => {
                tracing::warn!(
                    "{e} (attempt {} of {attempts} to pick our address)",
                    attempt + 1
                );
                if attempt + 1 < attempts {
                    tokio::time::sleep(poll).await;
                }
            }
        }
    }
    None
}

/// Why [`NodeBuilder::start`] failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum StartError {
    /// No cookie was given.
    NoCookie,
    /// Our name is not a valid long name, or no address was found to complete it.
    Name(ConfigError),
    /// A static peer's name is not a node name.
    Peer {
        /// The text given.
        peer: String,
        /// Why it is not a name.
        source: NodeNameError,
    },
    /// The DNS query or server is unusable.
    Dns(DnsError),
    /// The distribution port could not be bound.
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The part of our name before `@` cannot be registered with EPMD.
    Alive {
        /// Our name.
        name: NodeName,
    },
    /// `ERL_EPMD_PORT` is set but is not a port number (and neither
    /// [`NodeBuilder::epmd_port`] nor [`NodeBuilder::dist_port`] was given).
    EpmdPortEnv {
        /// Its value.
        value: String,
    },
    /// EPMD did not register us (in time).
    Epmd {
        /// The EPMD port.
        port: u16,
        /// The registrar's last state, in words.
        status: String,
    },
    /// The metrics port could not be bound.
    Metrics {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// EPMD-less with DNS discovery but no basename: there is no EPMD to list names.
    NoBasename {
        /// The dist port.
        dist_port: u16,
    },
    /// EPMD-less, and the listen address has another port than the dist port.
    ListenPort {
        /// The listen address asked for.
        listen: SocketAddr,
        /// The dist port.
        dist_port: u16,
    },
    /// TLS is configured and the node listens, but the settings have no certificate for
    /// the server role.
    Tls(TlsConfigError),
    /// The node could not start.
    Node(NodeError),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::NoCookie => f.write_str("no cookie given (NodeBuilder::cookie)"),
            StartError::Name(e) => write!(f, "{e}"),
            StartError::Peer { peer, source } => write!(f, "peer {peer:?}: {source}"),
            StartError::Dns(e) => write!(f, "{e}"),
            StartError::Listen { addr, source } => {
                write!(f, "cannot listen for connections on {addr}: {source}")
            }
            StartError::Alive { name } => {
                write!(f, "{name} cannot be registered with EPMD (name too long)")
            }
            StartError::EpmdPortEnv { value } => {
                write!(f, "ERL_EPMD_PORT={value:?} is not a port number")
            }
            StartError::Epmd { port, status } => {
                write!(f, "EPMD on port {port} did not register us: {status}")
            }
            StartError::Metrics { addr, source } => {
                write!(f, "cannot serve metrics on {addr}: {source}")
            }
            StartError::NoBasename { dist_port } => write!(
                f,
                "with --dist-port {dist_port} there is no EPMD to list the nodes at the DNS \
                 addresses: pass --peer-basename NAME (the peers are NAME@<ip>)"
            ),
            StartError::ListenPort { listen, dist_port } => write!(
                f,
                "--listen {listen} conflicts with --dist-port {dist_port}: EPMD-less, every \
                 node listens on the dist port (use --listen ADDR:{dist_port}, or no --listen)"
            ),
            StartError::Tls(e) => write!(f, "{e}"),
            StartError::Node(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartError::Name(e) => Some(e),
            StartError::Peer { source, .. } => Some(source),
            StartError::Dns(e) => Some(e),
            StartError::Listen { source, .. } | StartError::Metrics { source, .. } => Some(source),
            StartError::Node(e) => Some(e),
            StartError::Tls(e) => Some(e),
            StartError::NoCookie
            | StartError::Alive { .. }
            | StartError::EpmdPortEnv { .. }
            | StartError::Epmd { .. }
            | StartError::NoBasename { .. }
            | StartError::ListenPort { .. } => None,
        }
    }
}
