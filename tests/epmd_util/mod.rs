//! Helpers for the EPMD integration tests: free ports, and real `epmd` / `erl` processes that
//! are killed by pid when dropped. Tests that need them fail loudly when they are missing.
#![allow(dead_code)]

use std::io::Read;
use std::net::{Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The cookie of every test BEAM; only ever used between test processes.
pub const COOKIE: &str = "beamlinkepmdtests";

/// A free TCP port on 127.0.0.1 that is free on `[::]` too (epmd binds both).
pub fn free_port() -> u16 {
    for _ in 0..100 {
        let v4 = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = v4.local_addr().unwrap().port();
        if TcpListener::bind((Ipv6Addr::LOCALHOST, port)).is_ok()
            || TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).is_err()
        {
            return port;
        }
    }
    panic!("no free port found");
}

pub fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Panics (the test fails) when `program` is not installed.
pub fn require(program: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "`{program}` is not on PATH: these tests need Erlang/OTP (Debian: apt-get install erlang-base)"
    );
}

/// A child process killed (by its own pid) and reaped on drop.
pub struct Proc {
    child: Child,
    what: String,
}

impl Proc {
    /// Owns `child` (killed and reaped on drop); `what` names it in failures.
    pub fn from_child(child: Child, what: &str) -> Proc {
        Proc {
            child,
            what: what.to_owned(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process now and waits for it.
    pub fn kill(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the process to exit on its own and returns its stdout; kills it and panics
    /// after `limit`.
    pub fn output(mut self, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut out = String::new();
                if let Some(mut stdout) = self.child.stdout.take() {
                    stdout.read_to_string(&mut out).unwrap();
                }
                let mut err = String::new();
                if let Some(mut stderr) = self.child.stderr.take() {
                    stderr.read_to_string(&mut err).unwrap();
                }
                assert!(
                    status.success(),
                    "{} failed ({status}):\n{out}\n{err}",
                    self.what
                );
                return out;
            }
            if Instant::now() > deadline {
                self.stop();
                panic!("{} did not finish within {limit:?}", self.what);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Polls `check` every 20 ms until it is true; panics with `what` after `limit`.
pub fn wait_until(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// True if something accepts TCP connections at `addr`.
pub fn answers(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// A real `epmd` in the foreground on `port` (with extra arguments such as
/// `-packet_timeout 1`), ready when this returns.
pub fn epmd(port: u16, extra: &[&str]) -> Proc {
    require("epmd");
    let child = Command::new("epmd")
        .arg("-port")
        .arg(port.to_string())
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start epmd");
    let proc = Proc {
        child,
        what: format!("epmd -port {port}"),
    };
    wait_until("epmd to listen", Duration::from_secs(5), || {
        answers(local(port))
    });
    proc
}

static NODE_SEQ: AtomicU32 = AtomicU32::new(0);

/// A unique node name prefix for this test process.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}x{}",
        std::process::id(),
        NODE_SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// The OTP releases to run BEAMs of: `BEAMLINK_OTP` (e.g. `"25 27 29"`, the default), as
/// the rest of the suite does. Each must be installed (`scripts/otp-run --check`); a missing
/// one fails the test and says so.
pub fn releases() -> Vec<String> {
    let spec = std::env::var("BEAMLINK_OTP").unwrap_or_else(|_| "25 27 29".to_owned());
    let releases: Vec<String> = spec
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|r| !r.is_empty())
        .map(str::to_owned)
        .collect();
    assert!(
        !releases.is_empty(),
        "BEAMLINK_OTP={spec:?} names no release"
    );
    for release in &releases {
        let check = Command::new(otp_run())
            .args(["--check", release])
            .output()
            .expect("run scripts/otp-run --check");
        assert!(
            check.status.success(),
            "OTP {release} is not installed (run scripts/setup): {}",
            String::from_utf8_lossy(&check.stderr).trim()
        );
    }
    releases
}

fn otp_run() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/otp-run")
}

/// `erl -name NAME@127.0.0.1` of OTP `release` using the EPMD on `epmd_port`, never
/// starting an epmd of its own. With `eval`, the node runs that expression (which should
/// end with `halt()`); without, it stays up until dropped. `dist_port` pins its
/// distribution port. `scripts/otp-run` execs, so the pid is the BEAM's own.
pub fn erl_of(
    release: &str,
    name: &str,
    epmd_port: u16,
    dist_port: Option<u16>,
    eval: Option<&str>,
) -> Proc {
    require("erl");
    let mut cmd = Command::new(otp_run());
    cmd.args([release, "erl"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("ERL_EPMD_PORT", epmd_port.to_string())
        .arg("-name")
        .arg(format!("{name}@127.0.0.1"))
        .args(["-setcookie", COOKIE, "-start_epmd", "false", "-noshell"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(port) = dist_port {
        let port = port.to_string();
        cmd.args(["-kernel", "inet_dist_listen_min", &port])
            .args(["inet_dist_listen_max", &port]);
    }
    if let Some(expr) = eval {
        cmd.arg("-eval").arg(expr);
    } else {
        // A node that stays up must not fill its output pipes.
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
    }
    Proc {
        child: cmd.spawn().expect("start erl"),
        what: format!("OTP {release} erl -name {name}@127.0.0.1 (ERL_EPMD_PORT={epmd_port})"),
    }
}

/// [`erl_of`] with the host's OTP 25.
pub fn erl(name: &str, epmd_port: u16, dist_port: Option<u16>, eval: Option<&str>) -> Proc {
    erl_of("25", name, epmd_port, dist_port, eval)
}

/// Runs `expr` on a fresh OTP `release` node `name` and returns what it printed with `~p`.
pub fn erl_eval_of(release: &str, name: &str, epmd_port: u16, expr: &str) -> String {
    let script = format!("io:format(\"~p~n\",[{expr}]), halt()");
    erl_of(release, name, epmd_port, None, Some(&script))
        .output(Duration::from_secs(60))
        .trim()
        .to_owned()
}

/// [`erl_eval_of`] with the host's OTP 25.
pub fn erl_eval(name: &str, epmd_port: u16, expr: &str) -> String {
    erl_eval_of("25", name, epmd_port, expr)
}

/// The raw NAMES reply of the EPMD at `addr` (blocking).
pub fn raw_names(addr: SocketAddr) -> Vec<u8> {
    use std::io::Write;
    let mut stream = TcpStream::connect(addr).expect("connect to EPMD");
    stream.write_all(&[0, 1, b'n']).unwrap();
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).unwrap();
    reply
}

/// The node names (before `@`) the EPMD at `addr` lists.
pub fn listed(addr: SocketAddr) -> Vec<String> {
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return Vec::new();
    };
    use std::io::Write;
    if stream.write_all(&[0, 1, b'n']).is_err() {
        return Vec::new();
    }
    let mut reply = Vec::new();
    if stream.read_to_end(&mut reply).is_err() || reply.len() < 4 {
        return Vec::new();
    }
    String::from_utf8_lossy(&reply[4..])
        .lines()
        .filter_map(|l| l.strip_prefix("name "))
        .filter_map(|l| l.rsplit_once(" at port ").map(|(n, _)| n.to_owned()))
        .collect()
}

/// Runs blocking helper code off the async runtime's worker threads.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f)
        .await
        .expect("blocking helper panicked")
}

/// [`listed`] without blocking the runtime.
pub async fn listed_async(addr: SocketAddr) -> Vec<String> {
    blocking(move || listed(addr)).await
}

/// Polls `check` every 20 ms until it is true and returns how long that took; panics with
/// `what` after `limit`.
pub async fn eventually<F, Fut>(what: &str, limit: Duration, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    start.elapsed()
}
