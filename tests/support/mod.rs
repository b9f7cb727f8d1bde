//! Support for tests that run against real Erlang/OTP programs (OTP 25, 27 and 29).
//!
//! Every interop test starts with `mod support;` and gets:
//!
//! * [`Otp`]: the releases under test ([`Otp::from_env`] reads `BEAMLINK_OTP`, default
//!   `"25 27 29"`) and [`Otp::command`], a `std::process::Command` for any program of that
//!   release, run through `scripts/otp-run` (25 = the host's Debian packages, 27/29 = the
//!   chroots built by `scripts/setup`).
//! * [`Epmd`]: a real `epmd` on a free port, owned by the test and killed on drop.
//! * [`BeamNode`]: `erl -name ... -setcookie ...` driven through a small line REPL:
//!   [`BeamNode::eval`] evaluates an Erlang expression on that node and returns the printed
//!   value.
//! * [`Release`]: the `labyrinth` fixture release (`fixtures/labyrinth`) started as a daemon,
//!   with [`Release::rpc`] (`bin/labyrinth rpc`) and [`Release::remote`] (a real
//!   `bin/labyrinth remote` shell on a pty).
//! * [`Swarm`]: a simulated Docker Swarm service (network namespaces on a private bridge,
//!   an epmd and a release node per container, dnsmasq answering `tasks.<stack>_<service>`)
//!   for DNS-discovery tests; needs root.
//! * Fault injection for the reliability tests ([`fault`]): `/proc` counters, a beamlink's
//!   `:stats`, raw distribution peers that stall or reset at any step, a scriptable DNS server.
//! * The `run --metrics` exporter from outside ([`http`]): [`metrics_addr`],
//!   [`http_exchange`], [`sample`].
//! * One-shot `erl` processes and EPMD probes for the EPMD tests ([`erl_of`],
//!   [`erl_eval_of`], [`listed`], [`eventually`]).
//! * TLS distribution ([`Pki`]): a CA and certificates made with rcgen, option files, and
//!   [`tls_beam`], a BEAM started with `-proto_dist inet_tls`.
//! * Private networks ([`netns`]): a bridge with namespaces as hosts, a DNS server, an `epmd`
//!   inside a namespace; the swarm is built on them.
//! * [`free_port`], [`unique_name`], [`wait_for`].
//!
//! Nothing here skips: a missing `erl`, chroot or fixture panics with a message that names
//! what is missing and says "run scripts/setup".
//!
//! Everything is blocking (std threads and pipes). From a tokio test, call it from
//! `tokio::task::spawn_blocking` or use `#[tokio::test(flavor = "multi_thread")]`, or a
//! blocking call (e.g. an `eval` that makes the BEAM talk to a Rust node served by the same
//! runtime) stalls the runtime it waits for.

#![allow(dead_code, unused_imports)] // each test binary uses a different part of this module

mod beam_node;
mod beamlink;
mod epmd;
mod erl;
mod fault;
mod http;
pub mod netns;
mod pki;
mod process;
mod release;
mod swarm;
mod terms;

use std::ffi::OsStr;
use std::net::{Ipv4Addr, Ipv6Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub use beam_node::{BeamNode, BeamNodeBuilder, EvalError};
pub use beamlink::{
    Beamlink, beamlink_bin, beamlink_command, beamlink_command_in_netns, beamlink_oneshot,
};
pub use epmd::Epmd;
pub use erl::*;
pub use fault::*;
pub use http::*;
pub use pki::{Pki, tls_beam};
pub use release::{Release, ReleaseConfig, ReleaseError};
pub use swarm::{
    BASENAME, Container, NodeEnv, NodeEvent, NodeStatus, RollingUpdate, SERVICE, STACK, Swarm,
    SwarmBuilder, SwarmNode, cpu_time, full_mesh, millis_between,
};
pub use terms::*;

/// Cookie used when a test does not choose one. Test-only: never a real secret.
pub const TEST_COOKIE: &str = "beamlink_test_cookie";

/// Host part of node names started by this module (longnames on loopback).
pub const LOOPBACK: &str = "127.0.0.1";

/// One Erlang/OTP release the tests run against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Otp {
    /// OTP 25 / Elixir 1.14: the host's Debian bookworm packages.
    V25,
    /// OTP 27 / Elixir 1.18: Debian trixie chroot.
    V27,
    /// OTP 29 / Elixir 1.20: Debian sid chroot.
    V29,
}

impl Otp {
    /// All supported releases, oldest first.
    pub const ALL: [Otp; 3] = [Otp::V25, Otp::V27, Otp::V29];

    /// The releases named in `BEAMLINK_OTP` (space or comma separated, e.g. `"27"` or
    /// `"25 29"`), default all three. Panics on an unknown or empty selection.
    pub fn from_env() -> Vec<Otp> {
        let spec = std::env::var("BEAMLINK_OTP").unwrap_or_else(|_| "25 27 29".to_owned());
        let releases: Vec<Otp> = spec
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|part| !part.is_empty())
            .map(|part| {
                Otp::parse(part).unwrap_or_else(|| {
                    panic!("BEAMLINK_OTP={spec:?}: unknown release {part:?} (use 25, 27 and/or 29)")
                })
            })
            .collect();
        assert!(
            !releases.is_empty(),
            "BEAMLINK_OTP={spec:?} selects no release (use 25, 27 and/or 29)"
        );
        releases
    }

    /// `"25"`, `"27"` or `"29"` as a release; `None` otherwise.
    pub fn parse(text: &str) -> Option<Otp> {
        Otp::ALL.into_iter().find(|otp| otp.release() == text)
    }

    /// The release number as `erlang:system_info(otp_release)` reports it: `"25"`, `"27"`, `"29"`.
    pub fn release(self) -> &'static str {
        match self {
            Otp::V25 => "25",
            Otp::V27 => "27",
            Otp::V29 => "29",
        }
    }

    /// A command running `program` (a name such as `erl`, `epmd`, `elixir`, `mix`, or a path)
    /// from this release: `scripts/otp-run <rel> <program>`, working directory = repository
    /// root, environment inherited (see `scripts/otp-run` for what passes through). The child's
    /// pid is the program's own pid (otp-run execs), so killing it stops the program.
    /// Panics with "run scripts/setup" when the release is not installed.
    pub fn command(self, program: impl AsRef<OsStr>) -> Command {
        self.ensure_installed();
        let mut command = Command::new(otp_run());
        command
            .arg(self.release())
            .arg(program)
            .current_dir(repo_root());
        command
    }

    /// Like [`Otp::command`], inside network namespace `netns` (`ip netns exec <netns>
    /// scripts/otp-run ...`); the namespace must exist (see [`netns`]).
    pub fn command_in_netns(self, netns: &str, program: impl AsRef<OsStr>) -> Command {
        self.ensure_installed();
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", netns])
            .arg(otp_run())
            .arg(self.release())
            .arg(program)
            .current_dir(repo_root());
        command
    }

    /// Panics, naming what is missing and "run scripts/setup", unless this release's
    /// programs are installed (checked once per test binary with `scripts/otp-run --check`).
    pub fn ensure_installed(self) {
        static CHECKED: [OnceLock<Result<(), String>>; 3] =
            [OnceLock::new(), OnceLock::new(), OnceLock::new()];
        let result = CHECKED[self.index()].get_or_init(|| {
            let output = Command::new(otp_run())
                .args(["--check", self.release()])
                .current_dir(repo_root())
                .output()
                .map_err(|err| format!("cannot run {}: {err}", otp_run().display()))?;
            if output.status.success() {
                Ok(())
            } else {
                Err(String::from_utf8_lossy(&output.stderr).trim().to_owned())
            }
        });
        if let Err(reason) = result {
            panic!("{self} is not usable: {}", with_setup_hint(reason));
        }
    }

    /// Path of this release's `bin/labyrinth` (the fixture release), built or refreshed by
    /// `scripts/build-fixture` on first use in a test binary. Panics with "run scripts/setup"
    /// when it cannot be built.
    pub fn fixture_bin(self) -> PathBuf {
        static BUILT: [OnceLock<Result<PathBuf, String>>; 3] =
            [OnceLock::new(), OnceLock::new(), OnceLock::new()];
        self.ensure_installed();
        let result = BUILT[self.index()].get_or_init(|| {
            let script = repo_root().join("scripts/build-fixture");
            let output = Command::new(&script)
                .arg(self.release())
                .current_dir(repo_root())
                .output()
                .map_err(|err| format!("cannot run {}: {err}", script.display()))?;
            if !output.status.success() {
                return Err(String::from_utf8_lossy(&output.stderr).trim().to_owned());
            }
            let path = String::from_utf8_lossy(&output.stdout).trim().to_owned();
            Ok(PathBuf::from(path))
        });
        match result {
            Ok(path) => path.clone(),
            Err(reason) => panic!(
                "{self}: the labyrinth fixture release is missing and could not be built: {}",
                with_setup_hint(reason)
            ),
        }
    }

    fn index(self) -> usize {
        match self {
            Otp::V25 => 0,
            Otp::V27 => 1,
            Otp::V29 => 2,
        }
    }
}

impl std::fmt::Display for Otp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OTP {}", self.release())
    }
}

/// The repository root (from `CARGO_MANIFEST_DIR`).
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `scripts/otp-run` in this repository.
pub fn otp_run() -> PathBuf {
    repo_root().join("scripts/otp-run")
}

/// A TCP port that was free on every IPv4 address (and every IPv6 one where the host has
/// IPv6, since epmd binds both) a moment ago. Another process can still take it before the
/// caller binds it; [`Epmd::start`] retries for that reason.
///
/// The probe binds the wildcard address, as the EPMD servers and BEAMs the tests start do: a
/// port free on 127.0.0.1 can still be held on another address of the host (127.0.0.2, which
/// `fault_metrics` connects to, or a test bridge's gateway), and a wildcard bind runs into
/// it: "Address already in use" for 0.0.0.0.
///
/// The port comes from below the kernel's ephemeral range (`ip_local_port_range`), never from
/// it: a port the kernel handed out for `bind(0)` and that was then released can be picked
/// again as the source port of any outgoing connection of the machine before the caller binds
/// it, and the tests make many. Below that range only an explicit bind takes a port. Within
/// one test binary a counter hands out each port once; binaries start at different offsets
/// (from the pid), so one that follows another does not reuse its ports first.
pub fn free_port() -> u16 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let (first, span) = port_pool();
    let offset = u64::from(std::process::id()).wrapping_mul(2_654_435_761) % span;
    for _ in 0..span.min(2_000) {
        let index = (offset + NEXT.fetch_add(1, Ordering::Relaxed)) % span;
        let port = u16::try_from(first + index).expect("the pool is below 65536");
        // One probe at a time: a wildcard listener held open would take the port from the
        // next probe.
        if TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)).is_err() {
            continue;
        }
        if TcpListener::bind((Ipv6Addr::UNSPECIFIED, port)).is_ok()
            || TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).is_err()
        {
            return port;
        }
    }
    panic!(
        "no port free on both 0.0.0.0 and [::] in {first}..{}",
        first + span
    );
}

/// The ports [`free_port`] hands out: from 10000 up to the start of the kernel's ephemeral
/// range, as `(first, count)`.
fn port_pool() -> (u64, u64) {
    const FIRST: u64 = 10_000;
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .unwrap_or_else(|err| panic!("cannot read ip_local_port_range: {err}"));
    let ephemeral_start: u64 = range
        .split_whitespace()
        .next()
        .and_then(|low| low.parse().ok())
        .unwrap_or_else(|| panic!("ip_local_port_range is not two numbers: {range:?}"));
    assert!(
        ephemeral_start >= FIRST + 1_000,
        "the ephemeral range starts at {ephemeral_start}: free_port needs ports {FIRST} and up below it"
    );
    (FIRST, ephemeral_start - FIRST)
}

/// Runs `f` once per release in `BEAMLINK_OTP`, each in a thread of its own, all at once
/// (each run starts its own EPMD, BEAMs and beamlink, so runs share nothing but the CPU);
/// waits for all of them, then fails with the first release that failed. The fault tests
/// use it so that every release is exercised for little more than the slowest one's time.
pub fn each_release(f: fn(Otp)) {
    let runs: Vec<_> = Otp::from_env()
        .into_iter()
        .map(|otp| {
            let thread = std::thread::Builder::new()
                .name(format!("otp{}", otp.release()))
                .spawn(move || f(otp))
                .expect("spawn a thread per release");
            (otp, thread)
        })
        .collect();
    let mut failed = Vec::new();
    for (otp, run) in runs {
        if let Err(panic) = run.join() {
            eprintln!("{otp}: failed");
            failed.push((otp, panic));
        }
    }
    if let Some((_, panic)) = failed.into_iter().next() {
        std::panic::resume_unwind(panic);
    }
}

/// A node-name part unique within this machine for the life of this test process:
/// `<prefix>_<pid>_<counter>`, made of letters, digits and `_` (valid for `-name`,
/// `RELEASE_NODE` and EPMD).
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}_{}_{n}", std::process::id())
}

/// Polls `condition` every 20 ms until it returns true (then `true`) or `timeout` passes
/// (then `false`). The condition runs at least once.
pub fn wait_for(mut condition: impl FnMut() -> bool, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether `node` has a link up to `peer` within `timeout`: at once if it has one, else when
/// its [`::beamlink::node::NodeEvent::NodeUp`] for `peer` comes (no polling).
pub async fn node_up(
    node: &::beamlink::Node,
    peer: &::beamlink::proto::node_name::NodeName,
    timeout: Duration,
) -> bool {
    use ::beamlink::node::NodeEvent;
    use tokio::sync::broadcast::error::RecvError;
    let mut events = node.events();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        // Checked after subscribing (and after a lag) so that no NodeUp is missed.
        if node.connection(peer).is_some_and(|link| link.is_up()) {
            return true;
        }
        loop {
            match tokio::time::timeout_at(deadline, events.recv()).await {
                Err(_) | Ok(Err(RecvError::Closed)) => return false,
                Ok(Ok(NodeEvent::NodeUp { peer: up })) if &up == peer => return true,
                Ok(Ok(_)) => {}
                Ok(Err(RecvError::Lagged(_))) => break,
            }
        }
    }
}

/// `reason`, ending with the advice to run scripts/setup unless it already gives it.
fn with_setup_hint(reason: &str) -> String {
    if reason.contains("run scripts/setup") {
        reason.to_owned()
    } else {
        format!("{reason} (run scripts/setup)")
    }
}

/// Panics with "run scripts/setup" unless `program` is found in PATH.
pub fn require_tool(program: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()));
    assert!(
        found,
        "`{program}` (Debian package {package}) is not installed (run scripts/setup)"
    );
}
