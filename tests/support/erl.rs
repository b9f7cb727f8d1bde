//! One-shot `erl` processes for the EPMD tests (a BEAM that registers and stays up, or one
//! that evaluates an expression and halts), and small EPMD probes: what a BEAM does on its
//! own, without [`super::BeamNode`]'s REPL.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use super::{LOOPBACK, Otp, TEST_COOKIE};

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

/// `port` on 127.0.0.1.
pub fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// True if something accepts TCP connections at `addr`. A connection to itself does not
/// count: on loopback, a connect to a port in the ephemeral range that nothing listens on
/// succeeds when the kernel picks that same port as the source (TCP simultaneous open), which
/// would end a wait for a server before it listens.
pub fn answers(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(200))
        .is_ok_and(|s| s.local_addr().ok() != s.peer_addr().ok())
}

/// `erl -name NAME@127.0.0.1` of `otp` using the EPMD on `epmd_port`, never starting an epmd
/// of its own. With `eval`, the node runs that expression (which should end with `halt()`);
/// without, it stays up until dropped. `dist_port` pins its distribution port.
/// `scripts/otp-run` execs, so the pid is the BEAM's own.
pub fn erl_of(
    otp: Otp,
    name: &str,
    epmd_port: u16,
    dist_port: Option<u16>,
    eval: Option<&str>,
) -> Proc {
    let mut cmd = otp.command("erl");
    cmd.env("ERL_EPMD_PORT", epmd_port.to_string())
        .arg("-name")
        .arg(format!("{name}@{LOOPBACK}"))
        .args([
            "-setcookie",
            TEST_COOKIE,
            "-start_epmd",
            "false",
            "-noshell",
        ])
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
        what: format!("{otp} erl -name {name}@{LOOPBACK} (ERL_EPMD_PORT={epmd_port})"),
    }
}

/// Runs `expr` on a fresh `otp` node `name` and returns what it printed with `~p`.
pub fn erl_eval_of(otp: Otp, name: &str, epmd_port: u16, expr: &str) -> String {
    let script = format!("io:format(\"~p~n\",[{expr}]), halt()");
    erl_of(otp, name, epmd_port, None, Some(&script))
        .output(Duration::from_secs(60))
        .trim()
        .to_owned()
}

/// The raw NAMES reply of the EPMD at `addr` (blocking).
pub fn raw_names(addr: SocketAddr) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).expect("connect to EPMD");
    stream.write_all(&[0, 1, b'n']).unwrap();
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).unwrap();
    reply
}

/// The node names (before `@`) the EPMD at `addr` lists; none when it does not answer.
pub fn listed(addr: SocketAddr) -> Vec<String> {
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return Vec::new();
    };
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

/// The async [`super::wait_for`]: polls `check` every 20 ms until it is true and returns how
/// long that took; panics with `what` after `limit`.
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
