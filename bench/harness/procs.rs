//! The processes a run starts (epmd, BEAM nodes, beamlink, the Rust client) and how the
//! harness talks to them. Every pid is appended to `<state>/pids` as soon as it exists, so
//! that `scripts/bench` can stop exactly these processes if the harness itself dies; the
//! harness stops them itself (SIGTERM, then SIGKILL) when their handle is dropped.

use serde_json::Value;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

/// Where everything lives and how every process is started.
pub struct Env {
    /// The repository root.
    pub repo: PathBuf,
    /// cargo's `target/release` (where `beamlink` and the examples are).
    pub release: PathBuf,
    /// Per-run directory under /tmp (visible inside the OTP chroots).
    pub state: PathBuf,
    /// The OTP release of every BEAM of the run.
    pub otp: String,
    /// Our own epmd's port.
    pub epmd_port: u16,
    /// Distinguishes this run's node names from anyone else's.
    pub tag: String,
    cookie: String,
}

impl Env {
    pub fn new(repo: PathBuf, release: PathBuf, otp: String) -> Result<Env, String> {
        let tag = format!("{:x}", std::process::id());
        let state = state_dir();
        let home = state.join("home");
        std::fs::create_dir_all(&home).map_err(|e| format!("{}: {e}", home.display()))?;
        std::fs::create_dir_all(state.join("ebin")).map_err(|e| e.to_string())?;
        let cookie = random_cookie()?;
        // BEAMs read the cookie from $HOME/.erlang.cookie (owner-only), never from argv.
        let cookie_file = home.join(".erlang.cookie");
        std::fs::write(&cookie_file, &cookie).map_err(|e| e.to_string())?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&cookie_file, std::fs::Permissions::from_mode(0o400))
            .map_err(|e| e.to_string())?;
        Ok(Env {
            repo,
            release,
            state,
            otp,
            epmd_port: free_port()?,
            tag,
            cookie,
        })
    }

    /// `name_<tag>@127.0.0.1`.
    pub fn node_name(&self, name: &str) -> String {
        format!("{name}_{}@127.0.0.1", self.tag)
    }

    pub fn log_path(&self, name: &str) -> PathBuf {
        self.state.join(format!("{name}.log"))
    }

    fn common(&self, c: &mut Command) {
        c.current_dir(&self.state)
            .env("HOME", self.state.join("home"))
            .env("ERL_EPMD_PORT", self.epmd_port.to_string())
            .env("BEAMLINK_COOKIE", &self.cookie)
            .env_remove("RELEASE_COOKIE")
            .env_remove("BEAMLINK_NAME")
            .env_remove("DNS_CLUSTER_QUERY")
            .env_remove("ERL_FLAGS")
            .env_remove("ERL_AFLAGS")
            .env_remove("ERL_ZFLAGS");
    }

    /// A program of the selected OTP release, through scripts/otp-run.
    pub fn otp_command(&self, program: &str) -> Command {
        let mut c = Command::new(self.repo.join("scripts/otp-run"));
        c.arg(&self.otp).arg(program);
        self.common(&mut c);
        c
    }

    /// `erl` for a distributed node of this run: our epmd only, our code path.
    pub fn erl(&self, name: &str, hidden: bool) -> Command {
        let mut c = self.otp_command("erl");
        c.args([
            "-noshell",
            "-start_epmd",
            "false",
            "-name",
            &self.node_name(name),
        ]);
        if hidden {
            c.arg("-hidden");
        }
        c.arg("-pa").arg(self.state.join("ebin"));
        c
    }

    /// `target/release/beamlink`.
    pub fn beamlink(&self) -> Command {
        let mut c = Command::new(self.release.join("beamlink"));
        self.common(&mut c);
        c
    }

    /// `target/release/examples/bench_client`.
    pub fn bench_client(&self) -> Command {
        let mut c = Command::new(self.release.join("examples/bench_client"));
        self.common(&mut c);
        c
    }

    fn record_pid(&self, pid: u32) {
        if let Ok(mut f) = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.state.join("pids"))
        {
            let _ = writeln!(f, "{pid}");
        }
    }

    /// Starts `command` with stdout and stderr in `<state>/<name>.log`, stdin closed.
    pub fn spawn(&self, name: &str, mut command: Command) -> Result<Spawned, String> {
        let log = File::create(self.log_path(name)).map_err(|e| e.to_string())?;
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {name}: {e}"))?;
        self.record_pid(child.id());
        Ok(Spawned {
            name: name.to_owned(),
            child,
        })
    }

    /// Starts a process that speaks the `RESULT <json>` line protocol on stdout.
    pub fn spawn_agent(&self, name: &str, mut command: Command) -> Result<Agent, String> {
        let log = File::create(self.log_path(name)).map_err(|e| e.to_string())?;
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log.try_clone().map_err(|e| e.to_string())?)
            .spawn()
            .map_err(|e| format!("cannot start {name}: {e}"))?;
        self.record_pid(child.id());
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = channel();
        let mut log = log;
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                match line.strip_prefix("RESULT ") {
                    Some(json) => {
                        if tx.send(json.to_owned()).is_err() {
                            break;
                        }
                    }
                    None => {
                        let _ = writeln!(log, "{line}");
                    }
                }
            }
        });
        Ok(Agent {
            proc: Spawned {
                name: name.to_owned(),
                child,
            },
            stdin,
            results: rx,
            log_path: self.log_path(name),
        })
    }

    /// Removes the state directory (unless the user wants to look at the logs).
    pub fn cleanup(&self, keep: bool) {
        if keep {
            eprintln!("[bench] logs kept in {}", self.state.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.state);
        }
    }
}

/// `/tmp/beamlink-bench-<our pid in hex>`: scripts/bench finds it from our pid.
pub fn state_dir() -> PathBuf {
    PathBuf::from(format!("/tmp/beamlink-bench-{:x}", std::process::id()))
}

fn random_cookie() -> Result<String, String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| e.to_string())?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// A TCP port of 127.0.0.1 that nobody listens on right now.
pub fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

/// Waits until something accepts TCP connections on `port` of 127.0.0.1.
pub fn wait_listening(port: u16, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// A started process; stopped when dropped.
pub struct Spawned {
    pub name: String,
    child: Child,
}

impl Spawned {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// True while the process runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM without waiting (to stop many processes at once, then [`stop`](Self::stop)
    /// each).
    pub fn terminate(&mut self) {
        if self.running() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
        }
    }

    /// SIGTERM, then SIGKILL after `grace`.
    pub fn stop(&mut self, grace: Duration) {
        if !self.running() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if !self.running() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(5));
    }
}

/// A process driven by command lines, answering `RESULT <json>` lines.
pub struct Agent {
    pub proc: Spawned,
    stdin: Option<ChildStdin>,
    results: Receiver<String>,
    log_path: PathBuf,
}

impl Agent {
    /// The next result line, parsed; an `{"error": ...}` result is an error.
    pub fn next_result(&mut self, timeout: Duration) -> Result<Value, String> {
        let line = match self.results.recv_timeout(timeout) {
            Ok(l) => l,
            Err(RecvTimeoutError::Timeout) => {
                return Err(format!(
                    "{}: no answer within {timeout:?} (log: {})",
                    self.proc.name,
                    self.log_path.display()
                ));
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err(format!(
                    "{} exited (log: {}):\n{}",
                    self.proc.name,
                    self.log_path.display(),
                    tail(&self.log_path, 15)
                ));
            }
        };
        let value: Value = serde_json::from_str(&line)
            .map_err(|e| format!("{}: bad result line {line:?}: {e}", self.proc.name))?;
        if let Some(err) = value.get("error") {
            return Err(format!("{}: {err}", self.proc.name));
        }
        Ok(value)
    }

    /// Sends one command line and waits for its result.
    pub fn ask(&mut self, command: &str, timeout: Duration) -> Result<Value, String> {
        self.send_line(command)?;
        self.next_result(timeout)
    }

    pub fn send_line(&mut self, line: &str) -> Result<(), String> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| format!("{}: stdin closed", self.proc.name))?;
        writeln!(stdin, "{line}")
            .and_then(|_| stdin.flush())
            .map_err(|e| format!("{}: cannot write a command: {e}", self.proc.name))
    }

    /// Closes stdin (the agents stop at end of input) and waits for a last result line,
    /// if the agent prints one.
    pub fn finish(&mut self, timeout: Duration) -> Option<Value> {
        self.stdin = None;
        self.next_result(timeout).ok()
    }

    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }
}

/// The last `n` lines of a log, for error messages.
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

// ------------------------------------------------------------------------------- /proc

/// VmRSS of `pid`, in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmRSS:")
}

/// A `... kB` field of `/proc/<pid>/status` (`VmRSS:`, `RssAnon:`, `RssFile:`).
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// VmRSS after `settle`: the median of five samples 200 ms apart, so that a collection or
/// an allocator returning memory just then does not decide the number.
pub fn settled_rss_kib(pid: u32, settle: Duration) -> Option<f64> {
    std::thread::sleep(settle);
    let mut samples = Vec::new();
    for i in 0..5 {
        if i > 0 {
            std::thread::sleep(Duration::from_millis(200));
        }
        samples.push(rss_kib(pid)? as f64);
    }
    crate::report::median(&samples)
}

/// utime + stime of `pid` (all threads), in clock ticks.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces: fields are counted after its closing ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime and stime are fields 14 and 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// CPU time of the live threads of `pid` in nanoseconds (`/proc/<pid>/task/*/schedstat`,
/// first field), 0 when the process is gone. Finer than [`cpu_ticks`] (10 ms ticks), but a
/// thread that exits takes its time with it: for processes whose threads live as long as
/// they do (a BEAM's schedulers).
pub fn cpu_ns(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux when that fails).
pub fn clock_ticks_per_s() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// The 1-minute load average.
pub fn load1() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(f64::NAN)
}

/// Pids whose parent is `pid` (a BEAM's erl_child_setup).
pub fn children_of(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| {
                    let rest = &s[s.rfind(')')? + 2..];
                    rest.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(pid)
        })
        .collect()
}

/// (user, kernel) instructions retired by `pid` over `window`, counted by `perf stat`;
/// `None` when perf is missing or not allowed to count (perf_event_paranoid). Returns after
/// `window`.
pub fn perf_instructions(pid: u32, window: Duration) -> Option<(u64, u64)> {
    let out = Command::new("perf")
        .args([
            "stat",
            "-x",
            ",",
            "-e",
            "instructions:u,instructions:k",
            "-p",
        ])
        .arg(pid.to_string())
        .args(["--", "sleep"])
        .arg(format!("{:.3}", window.as_secs_f64()))
        .stdout(Stdio::null())
        .output()
        .ok()?;
    // CSV on stderr: value,unit,event,...
    let text = String::from_utf8_lossy(&out.stderr);
    let count = |event: &str| -> Option<u64> {
        text.lines()
            .find(|l| l.split(',').nth(2).is_some_and(|e| e.starts_with(event)))
            .and_then(|l| l.split(',').next()?.trim().parse().ok())
    };
    Some((count("instructions:u")?, count("instructions:k")?))
}

/// TCP counters of this network namespace, all connections together: segments sent
/// (`Tcp: OutSegs` of `/proc/net/snmp`), pure ACKs received (`TcpExt: TCPPureAcks` of
/// `/proc/net/netstat`) and delayed ACKs sent (`TcpExt: DelayedACKs`). On loopback every
/// segment sent is also received, so per message of a run they say how the bytes were cut
/// into segments and how often the receiver acknowledged them.
#[derive(Clone, Copy, Debug)]
pub struct TcpCounters {
    pub out_segs: u64,
    pub pure_acks: u64,
    pub delayed_acks: u64,
}

impl TcpCounters {
    pub fn read() -> Option<TcpCounters> {
        let snmp = std::fs::read_to_string("/proc/net/snmp").ok()?;
        let netstat = std::fs::read_to_string("/proc/net/netstat").ok()?;
        Some(TcpCounters {
            out_segs: counter(&snmp, "Tcp:", "OutSegs")?,
            pure_acks: counter(&netstat, "TcpExt:", "TCPPureAcks")?,
            delayed_acks: counter(&netstat, "TcpExt:", "DelayedACKs")?,
        })
    }

    /// The counters between `self` (before) and `after`, per message.
    pub fn per_msg(self, after: TcpCounters, msgs: f64) -> [f64; 3] {
        let d = |a: u64, b: u64| b.saturating_sub(a) as f64 / msgs;
        [
            d(self.out_segs, after.out_segs),
            d(self.pure_acks, after.pure_acks),
            d(self.delayed_acks, after.delayed_acks),
        ]
    }
}

/// One counter of a `/proc/net/{snmp,netstat}` file: a header line and a value line that
/// both start with `prefix`.
fn counter(text: &str, prefix: &str, name: &str) -> Option<u64> {
    let mut lines = text.lines().filter(|l| l.starts_with(prefix));
    let names = lines.next()?;
    let values = lines.next()?;
    let at = names.split_whitespace().position(|n| n == name)?;
    values.split_whitespace().nth(at)?.parse().ok()
}
