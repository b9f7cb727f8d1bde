//! The `beamlink` binary under test: a long-running `beamlink run` (or `beamlink epmd`)
//! whose output is collected, and one-shot commands.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Path of the binary cargo built for these tests.
/// The binary under test: `BEAMLINK_BIN` when set (e.g. the static release build),
/// else the one cargo built for this test.
pub fn beamlink_bin() -> &'static str {
    static BIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        std::env::var("BEAMLINK_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_beamlink").to_owned())
    })
}

/// A `beamlink` command with a clean environment for the cookie: no BEAMLINK_COOKIE or
/// RELEASE_COOKIE from the caller, HOME pointed at an empty directory.
pub fn beamlink_command(args: &[&str]) -> Command {
    let mut c = Command::new(beamlink_bin());
    c.args(args);
    clean_env(&mut c);
    c
}

/// [`beamlink_command`] inside network namespace `netns` (`ip netns exec`, which execs: the
/// child's pid is beamlink's own).
pub fn beamlink_command_in_netns(netns: &str, args: &[&str]) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", netns, beamlink_bin()]).args(args);
    clean_env(&mut c);
    c
}

fn clean_env(c: &mut Command) {
    c.env_remove("BEAMLINK_COOKIE")
        .env_remove("RELEASE_COOKIE")
        .env_remove("BEAMLINK_NAME")
        .env_remove("BEAMLINK_COOKIE_FILE")
        .env_remove("BEAMLINK_PEER_BASENAME")
        .env_remove("BEAMLINK_DNS_SERVER")
        .env_remove("BEAMLINK_POLL_INTERVAL")
        .env_remove("BEAMLINK_NET_TICKTIME")
        .env_remove("DNS_CLUSTER_QUERY")
        .env("HOME", empty_home())
        .env("RUST_LOG", "info");
}

fn empty_home() -> String {
    let dir = std::env::temp_dir().join(format!("beamlink-test-home-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    dir.display().to_string()
}

/// Runs a one-shot command (`ping`, `names`, ...) with `cookie` in BEAMLINK_COOKIE.
pub fn beamlink_oneshot(args: &[&str], cookie: Option<&str>) -> Output {
    let mut c = beamlink_command(args);
    if let Some(cookie) = cookie {
        c.env("BEAMLINK_COOKIE", cookie);
    }
    c.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", beamlink_bin()))
}

/// A running `beamlink` process; SIGTERM then SIGKILL on drop.
pub struct Beamlink {
    child: Option<Child>,
    log: Arc<Mutex<String>>,
    stopped: bool,
}

impl Beamlink {
    /// Starts `beamlink ARGS` with `cookie` in BEAMLINK_COOKIE.
    pub fn start(args: &[&str], cookie: &str) -> Beamlink {
        Self::start_with(beamlink_command(args), cookie)
    }

    /// Starts a prepared command (from [`beamlink_command`], maybe wrapped in a netns).
    pub fn start_with(mut command: Command, cookie: &str) -> Beamlink {
        command
            .env("BEAMLINK_COOKIE", cookie)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", beamlink_bin()));
        let log = Arc::new(Mutex::new(String::new()));
        for pipe in [
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let mut l = log.lock().unwrap_or_else(|e| e.into_inner());
                    l.push_str(&line);
                    l.push('\n');
                }
            });
        }
        Beamlink {
            child: Some(child),
            log,
            stopped: false,
        }
    }

    /// Everything printed so far (stdout and stderr).
    pub fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The OS pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Waits until the log contains `text`; panics with the log otherwise.
    pub fn wait_log(&self, text: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.log().contains(text) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "beamlink did not log {text:?} within {timeout:?}; log:\n{}",
            self.log()
        );
    }

    /// How many times `text` appears in the log.
    pub fn count(&self, text: &str) -> usize {
        self.log().matches(text).count()
    }

    /// Sends a signal by name (`TERM`, `STOP`, `CONT`, `KILL`).
    pub fn signal(&self, name: &str) {
        let _ = Command::new("kill")
            .args([&format!("-{name}"), &self.pid().to_string()])
            .status();
    }

    /// SIGTERM, then waits for the exit status (SIGKILL after `timeout`).
    pub fn terminate(&mut self, timeout: Duration) -> Option<ExitStatus> {
        self.signal("TERM");
        let status = self.wait(timeout);
        if status.is_none() {
            self.signal("KILL");
            let _ = self.wait(Duration::from_secs(5));
        }
        self.stopped = true;
        status
    }

    /// Waits for the process to exit by itself.
    pub fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Beamlink {
    fn drop(&mut self) {
        if self.stopped {
            return;
        }
        if let Some(child) = self.child.as_mut()
            && let Ok(None) = child.try_wait()
        {
            self.signal("CONT");
            self.signal("TERM");
            if self.wait(Duration::from_secs(5)).is_none()
                && let Some(child) = self.child.as_mut()
            {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}
