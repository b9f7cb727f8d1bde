//! The `beamlink` command line (`contract.md`): argument parsing, logging set-up, and the
//! mapping of failures to sysexits codes.

mod doctor;
mod epmd;
mod health;
mod nodes;
mod ping;
mod run;
mod tls;

use crate::config::{self, ConfigError};
use crate::diagnose::Targets;
use crate::discovery::DnsQuery;
use crate::node::{ConnectError, Node};
use crate::proto::digest::Cookie;
use crate::proto::node_name::{NodeName, NodeNameError};
use clap::{Args, Parser, Subcommand};
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use tracing_subscriber::filter::LevelFilter;

/// Exit codes (sysexits, as `ecosystem.md` suggests).
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// Bad usage.
    pub const USAGE: u8 = 64;
    /// A peer or EPMD is unavailable.
    pub const UNAVAILABLE: u8 = 69;
    /// Internal error.
    pub const SOFTWARE: u8 = 70;
    /// The peer broke the protocol.
    pub const PROTOCOL: u8 = 76;
    /// The cookie was refused.
    pub const NOPERM: u8 = 77;
    /// Bad configuration.
    pub const CONFIG: u8 = 78;
}

#[derive(Parser, Debug)]
#[command(
    name = "beamlink",
    version,
    about = "A hidden Erlang distribution node: joins BEAM clusters, answers ping/rpc, \
             and explains why nodes fail to connect."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Naming, cookie and EPMD options shared by every subcommand that joins a cluster.
#[derive(Args, Debug, Clone)]
pub(crate) struct NodeOpts {
    /// Our node name: `alive@host` or `alive` (then the host is our IP address toward the
    /// peers). Long names only. `run` also reads BEAMLINK_NAME; the one-shots do not, so
    /// that one started beside `run` (`docker exec`) never takes its name.
    #[arg(long)]
    pub name: Option<String>,
    /// Read the cookie from this file (owner-only permissions, as erl requires). Otherwise
    /// BEAMLINK_COOKIE, RELEASE_COOKIE, then ~/.erlang.cookie.
    #[arg(long, env = "BEAMLINK_COOKIE_FILE", value_name = "PATH")]
    pub cookie_file: Option<PathBuf>,
    /// The EPMD port.
    #[arg(
        long,
        env = "ERL_EPMD_PORT",
        default_value_t = 4369,
        value_name = "PORT"
    )]
    pub epmd_port: u16,
    /// EPMD-less, like the BEAM's -erl_epmd_port PORT: no EPMD at all; listen on PORT (run)
    /// and dial every peer on PORT.
    #[arg(long, env = "ERL_DIST_PORT", value_name = "PORT")]
    pub dist_port: Option<u16>,
    /// Publish as a visible node instead of hidden.
    #[arg(long)]
    pub visible: bool,
    /// As the BEAM's net_ticktime, in seconds.
    #[arg(
        long,
        env = "BEAMLINK_NET_TICKTIME",
        default_value_t = 60,
        value_name = "SECS"
    )]
    pub net_ticktime: u64,
    /// TLS distribution.
    #[command(flatten)]
    pub tls: tls::TlsOpts,
}

/// Where the peers are.
#[derive(Args, Debug, Clone, Default)]
pub(crate) struct PeerOpts {
    /// A static peer, e.g. minotaur@10.0.1.5 (repeatable).
    #[arg(long = "connect", value_name = "NODE")]
    pub connect: Vec<String>,
    /// Poll the A and AAAA records of this DNS name, e.g. tasks.<stack>_<service>.
    #[arg(long, env = "DNS_CLUSTER_QUERY", value_name = "QUERY")]
    pub dns_query: Option<String>,
    /// Peers found by DNS are NAME@<ip>; without it, every node their EPMD lists.
    #[arg(long, env = "BEAMLINK_PEER_BASENAME", value_name = "NAME")]
    pub peer_basename: Option<String>,
    /// Ask this DNS server instead of the system's resolv.conf.
    #[arg(long, env = "BEAMLINK_DNS_SERVER", value_name = "IP[:PORT]")]
    pub dns_server: Option<String>,
    /// Time between DNS polls (e.g. 5s, 500ms, 1m); also the cap of the reconnect backoff.
    #[arg(
        long,
        env = "BEAMLINK_POLL_INTERVAL",
        default_value = "5s",
        value_parser = humantime::parse_duration,
        value_name = "DURATION"
    )]
    pub poll_interval: Duration,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Join and stay: register, discover, connect, answer queries, until SIGTERM/SIGINT.
    Run(run::RunArgs),
    /// Handshake with NODE and ask its net_kernel, as Node.ping does.
    Ping(ping::PingArgs),
    /// Connect to every peer, ask each whom it sees, and print the cluster and its missing
    /// links.
    #[command(after_help = nodes::EXIT_CODES)]
    Nodes(nodes::NodesArgs),
    /// Walk DNS, EPMD, TCP, handshake, flags, cookie, ping and rpc for every peer and say
    /// which step fails and what to change.
    #[command(after_help = doctor::EXIT_CODES)]
    Doctor(doctor::DoctorArgs),
    /// The names registered with the EPMD at HOST, as `epmd -names` lists them.
    Names(epmd::NamesArgs),
    /// Run only the embedded EPMD server.
    Epmd(epmd::EpmdArgs),
    /// Ask a `run --metrics` exporter's /readyz: exit 0 when ready, 69 otherwise (for
    /// HEALTHCHECK in images without curl).
    Health(health::HealthArgs),
}

/// Runs the command line; returns the process exit code.
pub fn main() -> ExitCode {
    one_malloc_arena();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let default_level = match cli.command {
        Command::Run(_) | Command::Epmd(_) => LevelFilter::INFO,
        _ => LevelFilter::WARN,
    };
    init_tracing(default_level);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("beamlink: cannot start the async runtime: {e}");
            return ExitCode::from(exit::SOFTWARE);
        }
    };
    let code = runtime.block_on(async move {
        match cli.command {
            Command::Run(args) => run::run(args).await,
            Command::Ping(args) => ping::ping(args).await,
            Command::Nodes(args) => nodes::nodes(args).await,
            Command::Doctor(args) => doctor::doctor(args).await,
            Command::Names(args) => epmd::names(args).await,
            Command::Epmd(args) => epmd::serve(args).await,
            Command::Health(args) => health::health(args).await,
        }
    });
    ExitCode::from(code)
}

/// One glibc malloc arena for the whole process, unless the environment says otherwise
/// (`MALLOC_ARENA_MAX`, `GLIBC_TUNABLES`). With glibc's default of an arena per contending
/// thread, the hour-long soak with 100 peers saw resident memory grow 13 % in steps that
/// never came back; the same soak with one arena stayed flat (docs/reliability.md). The
/// library leaves the allocator to the program that embeds it.
fn one_malloc_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none()
        && std::env::var_os("GLIBC_TUNABLES").is_none()
    {
        // SAFETY: mallopt only sets an allocator parameter; called before any other thread
        // exists.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
    }
}

/// Logs to stderr, filtered by `RUST_LOG` as `target=level` directives (`info`,
/// `beamlink=debug,hickory=warn`). A `RUST_LOG` that does not parse is reported and the
/// default level used. `Targets` rather than `EnvFilter`: span and field filters are not
/// worth the regex engine they bring (0.7 of the 4.4 MiB an idle `run` kept resident,
/// workload f in docs/performance.md).
fn init_tracing(default_level: LevelFilter) {
    use std::io::IsTerminal;
    use tracing_subscriber::{filter::Targets, layer::SubscriberExt, util::SubscriberInitExt};
    let default = Targets::new().with_default(default_level);
    let (filter, bad_directive) = match std::env::var("RUST_LOG") {
        Ok(text) if !text.trim().is_empty() => match text.parse::<Targets>() {
            Ok(filter) => (filter, None),
            Err(e) => (default, Some((text, e))),
        },
        _ => (default, None),
    };
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = tracing_subscriber::registry()
        .with(fmt)
        .with(filter)
        .try_init();
    if let Some((text, e)) = bad_directive {
        tracing::warn!(
            "RUST_LOG={text:?} is not a list of target=level directives ({e}); logging at {default_level}"
        );
    }
}

/// The cookie per the options and the environment.
pub(crate) fn cookie(opts: &NodeOpts) -> Result<Cookie, ConfigError> {
    cookie_with_source(opts).map(|(cookie, _)| cookie)
}

/// The cookie and where it came from (a variable name or a path), after checking that
/// `RELEASE_DISTRIBUTION` asks for long names.
pub(crate) fn cookie_with_source(opts: &NodeOpts) -> Result<(Cookie, String), ConfigError> {
    config::check_distribution(std::env::var("RELEASE_DISTRIBUTION").ok().as_deref())?;
    config::load_cookie_with_source(opts.cookie_file.as_deref(), |k| std::env::var(k).ok())
}

impl PeerOpts {
    /// The static peers and the DNS query, checked; on error, prints it and gives the exit
    /// code. EPMD-less (`dist_port`), DNS discovery needs a basename: no EPMD lists names.
    pub(crate) fn targets(&self, dist_port: Option<u16>) -> Result<Targets, u8> {
        if let Some(port) = dist_port
            && self.dns_query.is_some()
            && self.peer_basename.is_none()
        {
            let e = crate::builder::StartError::NoBasename { dist_port: port };
            eprintln!("beamlink: {e}");
            return Err(exit::CONFIG);
        }
        let mut statics = Vec::new();
        for text in &self.connect {
            match NodeName::parse(text) {
                Ok(n) => statics.push(n),
                Err(e) => {
                    eprintln!("beamlink: --connect {text:?}: {e}");
                    return Err(exit::USAGE);
                }
            }
        }
        let dns = match &self.dns_query {
            None => None,
            Some(q) => {
                let server = match self
                    .dns_server
                    .as_deref()
                    .map(crate::discovery::parse_server)
                {
                    Some(None) => {
                        eprintln!("beamlink: --dns-server must be IP or IP:PORT");
                        return Err(exit::USAGE);
                    }
                    Some(s) => s,
                    None => None,
                };
                match DnsQuery::new(q, server) {
                    Ok(d) => Some(d),
                    Err(e) => {
                        eprintln!("beamlink: {e}");
                        return Err(exit::CONFIG);
                    }
                }
            }
        };
        Ok(Targets {
            statics,
            dns,
            basename: self.peer_basename.clone(),
        })
    }
}

/// The address our name should carry (see [`crate::builder`]).
pub(crate) async fn address_toward(
    targets: &Targets,
    attempts: u32,
    poll: Duration,
) -> Option<IpAddr> {
    crate::builder::address_toward(&targets.statics, targets.dns.as_ref(), attempts, poll).await
}

/// A node for a one-shot command: named `beamlink-<sub>-<4 hex>@<ip>` unless `--name` says
/// otherwise, hidden unless `visible`, listening nowhere, not registered in EPMD, dialling
/// on `--dist-port` when given. Returns the
/// node and where its cookie came from; on error, prints it and gives the exit code.
///
/// `doctor` passes `release_env = false`: it reports `RELEASE_DISTRIBUTION` as a finding
/// instead of refusing to run.
pub(crate) async fn oneshot_node(
    opts: &NodeOpts,
    sub: &str,
    toward: Option<IpAddr>,
    visible: bool,
    release_env: bool,
) -> Result<(Node, String), u8> {
    let loaded = if release_env {
        cookie_with_source(opts)
    } else {
        config::load_cookie_with_source(opts.cookie_file.as_deref(), |k| std::env::var(k).ok())
    };
    let (cookie, source) = loaded.map_err(|e| config_failure(&e))?;
    let tls = tls::load(&opts.tls)?;
    let name = opts.name.clone().unwrap_or_else(|| oneshot_alive(sub));
    let (name, _) = config::node_name(&name, toward).map_err(|e| config_failure(&e))?;
    let mut builder = Node::builder()
        .name(name.as_str())
        .cookie(cookie)
        .dial_only()
        .visible(visible)
        .epmd_port(opts.epmd_port)
        .net_ticktime(Duration::from_secs(opts.net_ticktime));
    if let Some(port) = opts.dist_port {
        builder = builder.dist_port(port);
    }
    if let Some(tls) = tls {
        builder = builder.tls(tls);
    }
    let started = builder.start().await;
    match started {
        Ok(n) => Ok((n, source)),
        Err(e) => {
            eprintln!("beamlink: {e}");
            Err(exit::SOFTWARE)
        }
    }
}

/// What `doctor` and `nodes` start from: the peers to look at (`no_peers` is printed when
/// there are none) and a hidden one-shot node named after `sub`, with where its cookie came
/// from. On error, prints it and gives the exit code.
pub(crate) async fn surveyor(
    node: &NodeOpts,
    peers: &PeerOpts,
    sub: &str,
    release_env: bool,
    no_peers: &str,
) -> Result<(Targets, Node, String), u8> {
    let targets = peers.targets(node.dist_port)?;
    if targets.is_empty() {
        eprintln!("beamlink: {no_peers}: give --connect NODE or --dns-query QUERY");
        return Err(exit::USAGE);
    }
    if node.visible {
        eprintln!("beamlink: {sub} always joins hidden (--visible ignored)");
    }
    let toward = address_toward(&targets, 1, peers.poll_interval).await;
    let (node, cookie_source) = oneshot_node(node, sub, toward, false, release_env).await?;
    Ok((targets, node, cookie_source))
}

/// Prints a configuration error and gives its exit code.
pub(crate) fn config_failure(e: &ConfigError) -> u8 {
    eprintln!("beamlink: {e}");
    exit::CONFIG
}

/// The exit code for a failed connection.
pub(crate) fn connect_exit_code(e: &ConnectError) -> u8 {
    match e {
        ConnectError::Handshake(h) if h.is_cookie_mismatch() || h.is_tls_refusal() => exit::NOPERM,
        ConnectError::Handshake(h) if h.is_tls_mismatch() => exit::CONFIG,
        ConnectError::Handshake(h) => match &h.kind {
            crate::transport::HandshakeFailureKind::Protocol(_) => exit::PROTOCOL,
            _ => exit::UNAVAILABLE,
        },
        ConnectError::Ourselves => exit::USAGE,
        _ => exit::UNAVAILABLE,
    }
}

/// Parses a node we are told to dial (`--connect`, `ping`'s target) with the rules a
/// long-names BEAM applies before it dials (`net_kernel:connect_node/1` answers `false` for
/// each): one `@`, non-empty parts, at most 255 characters, and a host that is an IP address
/// or a fully qualified ASCII name. The part before `@` is left to the peer. Without the host
/// checks, `--connect app@myhost` or a non-ASCII host was accepted and then retried forever.
pub(crate) fn dial_target(text: &str) -> Result<NodeName, NodeNameError> {
    let name = NodeName::parse(text)?;
    if let Some(ch) = name
        .host()
        .chars()
        .find(|c| !c.is_ascii() || c.is_ascii_whitespace() || c.is_ascii_control())
    {
        return Err(NodeNameError::BadHostChar { ch });
    }
    if !name.is_long() {
        return Err(NodeNameError::ShortHost {
            host: name.host().to_string(),
        });
    }
    Ok(name)
}

/// A one-shot command's default name: `beamlink-<sub>-<4 hex>`.
pub(crate) fn oneshot_alive(sub: &str) -> String {
    let n = crate::node::random_u32().unwrap_or(0) & 0xFFFF;
    format!("beamlink-{sub}-{n:04x}")
}
