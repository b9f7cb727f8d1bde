//! The `beamlink` command line (`contract.md`): argument parsing, logging set-up, and the
//! mapping of failures to sysexits codes.

mod ping;
mod run;

use crate::config::{self, ConfigError};
use crate::node::ConnectError;
use crate::proto::digest::Cookie;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

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
    /// peers). Long names only.
    #[arg(long, env = "BEAMLINK_NAME")]
    pub name: Option<String>,
    /// Read the cookie from this file (owner-only permissions, as erl requires). Otherwise
    /// BEAMLINK_COOKIE, RELEASE_COOKIE, then ~/.erlang.cookie.
    #[arg(long, value_name = "PATH")]
    pub cookie_file: Option<PathBuf>,
    /// The EPMD port.
    #[arg(
        long,
        env = "ERL_EPMD_PORT",
        default_value_t = 4369,
        value_name = "PORT"
    )]
    pub epmd_port: u16,
    /// Publish as a visible node instead of hidden.
    #[arg(long)]
    pub visible: bool,
    /// As the BEAM's net_ticktime, in seconds.
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    pub net_ticktime: u64,
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
    #[arg(long, value_name = "NAME")]
    pub peer_basename: Option<String>,
    /// Ask this DNS server instead of the system's resolv.conf.
    #[arg(long, value_name = "IP[:PORT]")]
    pub dns_server: Option<String>,
    /// Time between DNS polls.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub poll_interval: Duration,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Join and stay: register, discover, connect, answer queries, until SIGTERM/SIGINT.
    Run(run::RunArgs),
    /// Handshake with NODE and ask its net_kernel, as Node.ping does.
    Ping(ping::PingArgs),
}

/// Runs the command line; returns the process exit code.
pub fn main() -> ExitCode {
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
        Command::Run(_) => "info",
        _ => "warn",
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
        }
    });
    ExitCode::from(code)
}

fn init_tracing(default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// The cookie per the options and the environment.
pub(crate) fn cookie(opts: &NodeOpts) -> Result<Cookie, ConfigError> {
    config::check_distribution(std::env::var("RELEASE_DISTRIBUTION").ok().as_deref())?;
    config::load_cookie(opts.cookie_file.as_deref(), |k| std::env::var(k).ok())
}

/// Prints a configuration error and gives its exit code.
pub(crate) fn config_failure(e: &ConfigError) -> u8 {
    eprintln!("beamlink: {e}");
    exit::CONFIG
}

/// The exit code for a failed connection.
pub(crate) fn connect_exit_code(e: &ConnectError) -> u8 {
    match e {
        ConnectError::Handshake(h) if h.is_cookie_mismatch() => exit::NOPERM,
        ConnectError::Handshake(h) => match &h.kind {
            crate::transport::HandshakeFailureKind::Protocol(_) => exit::PROTOCOL,
            _ => exit::UNAVAILABLE,
        },
        ConnectError::Ourselves => exit::USAGE,
        _ => exit::UNAVAILABLE,
    }
}

/// A one-shot command's default name: `beamlink-<sub>-<4 hex>`.
pub(crate) fn oneshot_alive(sub: &str) -> String {
    let n = crate::node::random_u32().unwrap_or(0) & 0xFFFF;
    format!("beamlink-{sub}-{n:04x}")
}
