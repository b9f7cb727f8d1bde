//! The `labyrinth` fixture release (fixtures/labyrinth) run as a daemon.
//!
//! `bin/labyrinth daemon` starts the BEAM under `run_erl` (detached); the release's own
//! RELEASE_TMP (pipe and logs) is a fresh directory under /tmp, so several nodes can share one
//! release directory. `rpc` and `remote` each boot a hidden helper node
//! (`rpc-XXXX-<node>` / `rem-XXXX-<node>`) that connects to the daemon.

use std::fmt;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::process::{command_name, is_alive, parent_of, terminate};
use super::{Otp, TEST_COOKIE, otp_run, require_tool, unique_name, wait_for};

/// How long the daemon may take until `:labyrinth_echo` answers.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Limit for one `bin/labyrinth rpc` or `remote` session.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// SIGTERM makes the BEAM run `init:stop()`; SIGKILL after this.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// Bytes of remote-shell output kept; beyond it the session fails.
const REMOTE_OUTPUT_LIMIT: usize = 1 << 20;
/// Printed before a value by `rpc` and `remote`; the code spells it in two halves so the
/// terminal's echo of the typed line never contains it.
const RESULT_MARKER: &str = "BEAMLINK-RESULT:";
const RESULT_MARKER_CODE: &str = r#""BEAMLINK" <> "-RESULT:""#;

/// How to run a [`Release`]: node name, cookie, epmd port, environment, network namespace.
#[derive(Clone, Debug)]
pub struct ReleaseConfig {
    node: String,
    cookie: String,
    epmd_port: u16,
    env: Vec<(String, String)>,
    netns: Option<String>,
    dist_port: Option<u16>,
}

impl ReleaseConfig {
    /// `RELEASE_NODE=node` (full `name@host`), `RELEASE_DISTRIBUTION=name`,
    /// `RELEASE_COOKIE=`[`TEST_COOKIE`], `ERL_EPMD_PORT=epmd_port`.
    pub fn new(node: impl Into<String>, epmd_port: u16) -> Self {
        ReleaseConfig {
            node: node.into(),
            cookie: TEST_COOKIE.to_owned(),
            epmd_port,
            env: Vec::new(),
            netns: None,
            dist_port: None,
        }
    }

    /// A unique `labyrinth_<pid>_<n>@127.0.0.1` node on the epmd at `epmd_port`.
    pub fn unique(epmd_port: u16) -> Self {
        ReleaseConfig::new(
            format!("{}@{}", unique_name("labyrinth"), super::LOOPBACK),
            epmd_port,
        )
    }

    /// `RELEASE_COOKIE` value.
    pub fn cookie(mut self, cookie: impl Into<String>) -> Self {
        self.cookie = cookie.into();
        self
    }

    /// One more environment variable for the daemon and its rpc/remote helpers (e.g.
    /// `DNS_CLUSTER_QUERY`).
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// EPMD-less, as Elixir's release docs set it up: the daemon's `vm.args` gets
    /// `-start_epmd false -erl_epmd_port <port>` and `remote.vm.args` (the `rpc`/`remote`
    /// helpers) the same plus `-dist_listen false`, so a helper does not try to listen on
    /// the daemon's port (files in RELEASE_TMP, named by RELEASE_VM_ARGS and
    /// RELEASE_REMOTE_VM_ARGS).
    pub fn epmd_less(mut self, port: u16) -> Self {
        self.dist_port = Some(port);
        self
    }

    /// Run the daemon and every helper inside network namespace `netns`.
    pub fn netns(mut self, netns: impl Into<String>) -> Self {
        self.netns = Some(netns.into());
        self
    }
}

/// Why `bin/labyrinth rpc` or `remote` gave no value.
#[derive(Clone, PartialEq, Eq)]
pub enum ReleaseError {
    /// The command failed or printed no result line.
    Failed {
        /// Node asked.
        node: String,
        /// `rpc` or `remote`.
        command: &'static str,
        /// The expression sent.
        expr: String,
        /// Exit status and output.
        details: String,
    },
    /// The command did not finish in time.
    Timeout {
        /// Node asked.
        node: String,
        /// `rpc` or `remote`.
        command: &'static str,
        /// The expression sent.
        expr: String,
        /// Output so far.
        output: String,
    },
}

impl fmt::Display for ReleaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReleaseError::Failed {
                node,
                command,
                expr,
                details,
            } => write!(
                f,
                "{node}: bin/labyrinth {command} `{expr}` failed: {details}"
            ),
            ReleaseError::Timeout {
                node,
                command,
                expr,
                output,
            } => write!(
                f,
                "{node}: bin/labyrinth {command} `{expr}` timed out; output so far:\n{output}"
            ),
        }
    }
}

impl fmt::Debug for ReleaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for ReleaseError {}

/// A running `labyrinth` daemon. On drop its BEAM gets SIGTERM (then SIGKILL), the `run_erl`
/// that supervised it is stopped if it lingers, and its RELEASE_TMP is removed.
pub struct Release {
    otp: Otp,
    config: ReleaseConfig,
    bin: PathBuf,
    tmp: PathBuf,
    os_pid: u32,
    run_erl_pid: Option<u32>,
}

impl Release {
    /// Asserts docs/contract.md's rows about a beamlink `r` (a hidden node connected to
    /// `node`, this release's node), asked through `rpc`: `node()` and `nodes()` over rpc,
    /// `nodes(connected)` over erpc, `undef` for an unknown function, and the `:beamlink`
    /// GenServer's `:nodes`.
    pub fn assert_contract_rows(&self, otp: Otp, node: &str, r: &str) {
        let rows = [
            (
                format!(r#":rpc.call(:"{r}", :erlang, :node, [])"#),
                format!(r#":"{r}""#),
            ),
            (
                format!(r#":rpc.call(:"{r}", :erlang, :nodes, [])"#),
                "[]".to_owned(),
            ),
            (
                format!(r#":"{node}" in :erpc.call(:"{r}", :erlang, :nodes, [:connected])"#),
                "true".to_owned(),
            ),
            (
                format!(
                    r#"match?({{:badrpc, {{:EXIT, {{:undef, _}}}}}}, :rpc.call(:"{r}", :nosuch, :fun, []))"#
                ),
                "true".to_owned(),
            ),
            (
                format!(r#":"{node}" in GenServer.call({{:beamlink, :"{r}"}}, :nodes)"#),
                "true".to_owned(),
            ),
        ];
        for (expr, want) in rows {
            assert_eq!(self.rpc(&expr), want, "{otp} on {node}: {expr}");
        }
    }

    /// Builds (if needed) and starts `otp`'s labyrinth release as a daemon, waits until its
    /// `:labyrinth_echo` server answers. Panics with the daemon's log if it does not come up.
    pub fn start(otp: Otp, config: ReleaseConfig) -> Release {
        let bin = otp.fixture_bin();
        let tmp = std::env::temp_dir().join(format!("beamlink-{}", unique_name("release")));
        std::fs::create_dir_all(&tmp)
            .unwrap_or_else(|err| panic!("cannot create {}: {err}", tmp.display()));
        if let Some(port) = config.dist_port {
            let args = format!("-start_epmd false -erl_epmd_port {port}");
            for (file, text) in [
                ("vm.args", args.clone()),
                ("remote.vm.args", format!("{args} -dist_listen false")),
            ] {
                let path = tmp.join(file);
                std::fs::write(&path, format!("{text}\n"))
                    .unwrap_or_else(|err| panic!("cannot write {}: {err}", path.display()));
            }
        }
        let mut release = Release {
            otp,
            config,
            bin,
            tmp,
            os_pid: 0,
            run_erl_pid: None,
        };
        let output = release
            .command(["daemon"])
            .output()
            .unwrap_or_else(|err| panic!("{otp}: cannot run bin/labyrinth daemon: {err}"));
        assert!(
            output.status.success(),
            "{otp}: bin/labyrinth daemon for {} failed: {}",
            release.config.node,
            describe_output(&output)
        );
        let deadline = Instant::now() + START_TIMEOUT;
        let mut last = String::new();
        while Instant::now() < deadline {
            match release.try_rpc("{System.pid(), Process.whereis(:labyrinth_echo) != nil}") {
                Ok(answer) => {
                    if let Some(pid) = parse_ready(&answer) {
                        release.os_pid = pid;
                        release.run_erl_pid = run_erl_of(pid);
                        return release;
                    }
                    last = answer;
                }
                Err(err) => last = err.to_string(),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "{otp}: release {} did not come up within {START_TIMEOUT:?} (last rpc: {last}); log:\n{}",
            release.config.node,
            release.log()
        );
    }

    /// The full node name (`RELEASE_NODE`).
    pub fn node_name(&self) -> &str {
        &self.config.node
    }

    /// The release's OTP.
    pub fn otp(&self) -> Otp {
        self.otp
    }

    /// Pid of the daemon's BEAM.
    pub fn os_pid(&self) -> u32 {
        self.os_pid
    }

    /// This node's RELEASE_TMP (run_erl pipe and `log/erlang.log.*`).
    pub fn release_tmp(&self) -> &std::path::Path {
        &self.tmp
    }

    /// `bin/labyrinth <args>` with this node's environment, for the release's OTP (and in its
    /// network namespace).
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut command = match &self.config.netns {
            Some(netns) => self.otp.command_in_netns(netns, &self.bin),
            None => self.otp.command(&self.bin),
        };
        command.args(args).envs(self.env());
        command
    }

    fn env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            ("RELEASE_DISTRIBUTION".to_owned(), "name".to_owned()),
            ("RELEASE_NODE".to_owned(), self.config.node.clone()),
            ("RELEASE_COOKIE".to_owned(), self.config.cookie.clone()),
            ("RELEASE_TMP".to_owned(), self.tmp.display().to_string()),
            (
                "ERL_EPMD_PORT".to_owned(),
                self.config.epmd_port.to_string(),
            ),
            // The test owns epmd: never let a node spawn `epmd -daemon` behind its back.
            (
                "ELIXIR_ERL_OPTIONS".to_owned(),
                "-start_epmd false".to_owned(),
            ),
        ];
        if self.config.dist_port.is_some() {
            for (var, file) in [
                ("RELEASE_VM_ARGS", "vm.args"),
                ("RELEASE_REMOTE_VM_ARGS", "remote.vm.args"),
            ] {
                env.push((var.to_owned(), self.tmp.join(file).display().to_string()));
            }
        }
        env.extend(self.config.env.iter().cloned());
        env
    }

    /// The line an operator types for a remote shell on this node, its environment written
    /// out but the cookie (`RELEASE_COOKIE=...`: it never goes on a screen).
    pub fn remote_shell_hint(&self) -> String {
        let env: Vec<(String, String)> = self
            .env()
            .into_iter()
            .map(|(key, value)| {
                let value = if key == "RELEASE_COOKIE" {
                    "...".to_owned()
                } else {
                    shell_quote(&value)
                };
                (key, value)
            })
            .collect();
        self.remote_shell_command(&env)
    }

    /// `[ip netns exec NS] [env K=V ...] scripts/otp-run RELEASE bin/labyrinth remote`, the
    /// values in `env` already quoted.
    fn remote_shell_command(&self, env: &[(String, String)]) -> String {
        let mut line = String::new();
        if let Some(netns) = &self.config.netns {
            line.push_str(&format!("ip netns exec {} ", shell_quote(netns)));
        }
        if !env.is_empty() {
            line.push_str("env ");
            for (key, value) in env {
                line.push_str(&format!("{key}={value} "));
            }
        }
        line.push_str(&format!(
            "{} {} {} remote",
            shell_quote(&otp_run().display().to_string()),
            self.otp.release(),
            shell_quote(&self.bin.display().to_string())
        ));
        line
    }

    /// Evaluates Elixir `expr` on the node with `bin/labyrinth rpc` and returns
    /// `inspect(value)` (unlimited). Panics on failure.
    pub fn rpc(&self, expr: &str) -> String {
        self.try_rpc(expr).unwrap_or_else(|err| panic!("{err}"))
    }

    /// [`Release::rpc`] that also returns the other lines the evaluation printed (its
    /// `IO.puts` go to the caller of `bin/labyrinth rpc`, as do those of processes it spawns).
    pub fn rpc_printing(&self, expr: &str) -> (String, Vec<String>) {
        self.rpc_output(expr).unwrap_or_else(|err| panic!("{err}"))
    }

    /// [`Release::rpc`] returning the failure instead of panicking.
    pub fn try_rpc(&self, expr: &str) -> Result<String, ReleaseError> {
        self.rpc_output(expr).map(|(value, _)| value)
    }

    fn rpc_output(&self, expr: &str) -> Result<(String, Vec<String>), ReleaseError> {
        let code = format!(
            "IO.puts({RESULT_MARKER_CODE} <> inspect(({expr}), limit: :infinity, printable_limit: :infinity))"
        );
        let child = self
            .command(["rpc", code.as_str()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|err| self.failed("rpc", expr, format!("cannot run: {err}")))?;
        let output = wait_output(child, COMMAND_TIMEOUT).ok_or_else(|| ReleaseError::Timeout {
            node: self.config.node.clone(),
            command: "rpc",
            expr: expr.to_owned(),
            output: String::new(),
        })?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let printed = stdout
            .lines()
            .filter(|line| !line.starts_with(RESULT_MARKER))
            .map(str::to_owned)
            .collect();
        match stdout
            .lines()
            .find_map(|line| line.strip_prefix(RESULT_MARKER))
        {
            Some(value) if output.status.success() => Ok((value.to_owned(), printed)),
            _ => Err(self.failed("rpc", expr, describe_output(&output))),
        }
    }

    /// Evaluates Elixir `expr` in a real remote shell (`bin/labyrinth remote`, on a pty made by
    /// `script`), leaves it with Ctrl-G `q` (the node keeps running) and returns
    /// `inspect(value)`. One line of input: keep `expr` short (a pty line holds 4095 bytes).
    /// Panics on failure.
    pub fn remote(&self, expr: &str) -> String {
        self.try_remote(expr).unwrap_or_else(|err| panic!("{err}"))
    }

    /// [`Release::remote`] returning the failure instead of panicking.
    pub fn try_remote(&self, expr: &str) -> Result<String, ReleaseError> {
        require_tool("script", "bsdutils");
        let shell_command = self.remote_shell_command(&[]);
        let mut child = Command::new("script")
            .args(["-qfec", &shell_command, "/dev/null"])
            .current_dir(super::repo_root())
            .envs(self.env())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            // The shell's own stderr is the pty; this is only script's.
            .stderr(Stdio::null())
            .spawn()
            .map_err(|err| self.failed("remote", expr, format!("cannot run script: {err}")))?;
        let screen = Screen::capture(child.stdout.take().expect("piped stdout"));
        let mut stdin = child.stdin.take().expect("piped stdin");
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        let prompt = format!("iex({})", self.config.node);
        let line = format!(
            "IO.puts({RESULT_MARKER_CODE} <> inspect(({expr}), limit: :infinity, printable_limit: :infinity))\n"
        );

        let result = (|| {
            screen.wait_contains(&prompt, deadline)?;
            stdin.write_all(line.as_bytes()).ok()?;
            let value = screen.wait_line_after(RESULT_MARKER, deadline)?;
            // Ctrl-G opens the user switch menu; `q` quits this shell, not the node.
            stdin.write_all(b"\x07").ok()?;
            screen.wait_contains("-->", deadline)?;
            stdin.write_all(b"q\n").ok()?;
            Some(value)
        })();
        drop(stdin);
        let exited = wait_for(
            || !matches!(child.try_wait(), Ok(None)),
            Duration::from_secs(10),
        );
        if !exited {
            let _ = child.kill();
        }
        let _ = child.wait();
        match result {
            Some(value) => Ok(value),
            None if Instant::now() >= deadline => Err(ReleaseError::Timeout {
                node: self.config.node.clone(),
                command: "remote",
                expr: expr.to_owned(),
                output: screen.text(),
            }),
            None => Err(self.failed("remote", expr, screen.text())),
        }
    }

    /// The daemon's console log (`RELEASE_TMP/log/erlang.log.*`, oldest first).
    pub fn log(&self) -> String {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.tmp.join("log"))
            .map(|entries| entries.flatten().map(|entry| entry.path()).collect())
            .unwrap_or_default();
        files.sort();
        files
            .iter()
            .filter(|path| {
                path.file_name()
                    .is_some_and(|name| name.to_string_lossy().starts_with("erlang.log"))
            })
            .filter_map(|path| std::fs::read(path).ok())
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .collect()
    }

    fn failed(&self, command: &'static str, expr: &str, details: String) -> ReleaseError {
        ReleaseError::Failed {
            node: self.config.node.clone(),
            command,
            expr: expr.to_owned(),
            details,
        }
    }
}

impl Drop for Release {
    fn drop(&mut self) {
        if self.os_pid != 0 && !terminate(self.os_pid, STOP_GRACE) {
            eprintln!(
                "{}: BEAM {} survived SIGKILL",
                self.config.node, self.os_pid
            );
        }
        // run_erl exits once its child is gone; stop it only if it lingers.
        if let Some(pid) = self.run_erl_pid
            && !wait_for(|| !is_alive(pid), Duration::from_secs(3))
        {
            terminate(pid, Duration::from_secs(2));
        }
        let _ = std::fs::remove_dir_all(&self.tmp);
    }
}

/// `{pid, true}` (the rpc answer once `:labyrinth_echo` runs) -> the BEAM's pid.
fn parse_ready(answer: &str) -> Option<u32> {
    let inner = answer.strip_prefix("{\"")?.strip_suffix("\", true}")?;
    inner.parse().ok()
}

/// The `run_erl` above a daemon's BEAM (run_erl starts it through `sh -c`).
fn run_erl_of(beam: u32) -> Option<u32> {
    let mut pid = parent_of(beam)?;
    for _ in 0..2 {
        if command_name(pid).as_deref() == Some("run_erl") {
            return Some(pid);
        }
        pid = parent_of(pid)?;
    }
    None
}

fn describe_output(output: &Output) -> String {
    format!(
        "{}; stdout: {}; stderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout).trim(),
        String::from_utf8_lossy(&output.stderr).trim()
    )
}

/// Waits for `child` with a limit (killing it when exceeded); `None` on timeout.
fn wait_output(mut child: std::process::Child, timeout: Duration) -> Option<Output> {
    let mut pipes = [
        child
            .stdout
            .take()
            .map(|pipe| Box::new(pipe) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|pipe| Box::new(pipe) as Box<dyn Read + Send>),
    ]
    .map(|pipe| {
        pipe.map(|mut pipe| {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                let _ = pipe.read_to_end(&mut bytes);
                bytes
            })
        })
    });
    let finished = wait_for(|| !matches!(child.try_wait(), Ok(None)), timeout);
    if !finished {
        let _ = child.kill();
    }
    let status = child.wait().ok()?;
    let mut take = |index: usize| {
        pipes[index]
            .take()
            .and_then(|reader| reader.join().ok())
            .unwrap_or_default()
    };
    let stdout = take(0);
    let stderr = take(1);
    finished.then_some(Output {
        status,
        stdout,
        stderr,
    })
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// What a pty session printed so far (bounded), with a condition variable to wait on.
#[derive(Clone)]
struct Screen(Arc<(Mutex<ScreenText>, Condvar)>);

#[derive(Default)]
struct ScreenText {
    bytes: Vec<u8>,
    closed: bool,
}

impl Screen {
    fn capture(mut source: impl Read + Send + 'static) -> Screen {
        let screen = Screen(Arc::default());
        let shared = screen.clone();
        std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            loop {
                let read = source.read(&mut chunk);
                let (lock, changed) = &*shared.0;
                let mut text = lock.lock().unwrap_or_else(|poison| poison.into_inner());
                match read {
                    Ok(n) if n > 0 && text.bytes.len() + n <= REMOTE_OUTPUT_LIMIT => {
                        text.bytes.extend_from_slice(&chunk[..n]);
                    }
                    _ => {
                        text.closed = true;
                        changed.notify_all();
                        return;
                    }
                }
                changed.notify_all();
            }
        });
        screen
    }

    fn text(&self) -> String {
        let text = self.0.0.lock().unwrap_or_else(|poison| poison.into_inner());
        String::from_utf8_lossy(&text.bytes).replace('\r', "")
    }

    /// Waits until `found` returns Some for the text so far; None when the output ends or the
    /// deadline passes.
    fn wait<T>(&self, deadline: Instant, mut found: impl FnMut(&str) -> Option<T>) -> Option<T> {
        let (lock, changed) = &*self.0;
        let mut text = lock.lock().unwrap_or_else(|poison| poison.into_inner());
        loop {
            if let Some(value) = found(&String::from_utf8_lossy(&text.bytes)) {
                return Some(value);
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if text.closed || remaining.is_zero() {
                return None;
            }
            text = changed
                .wait_timeout(text, remaining)
                .unwrap_or_else(|poison| poison.into_inner())
                .0;
        }
    }

    fn wait_contains(&self, needle: &str, deadline: Instant) -> Option<()> {
        self.wait(deadline, |text| text.contains(needle).then_some(()))
    }

    /// The rest of the first complete line after `marker`, without terminal control sequences.
    fn wait_line_after(&self, marker: &str, deadline: Instant) -> Option<String> {
        self.wait(deadline, |text| {
            let start = text.find(marker)? + marker.len();
            let line_end = text[start..].find('\n')?;
            Some(strip_control(&text[start..start + line_end]))
        })
    }
}

/// Removes ANSI escape sequences (`ESC [ ... letter`) and carriage returns.
fn strip_control(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => {
                if chars.next() == Some('[') {
                    for c in chars.by_ref() {
                        if c.is_ascii_alphabetic() || c == '~' {
                            break;
                        }
                    }
                }
            }
            '\r' => {}
            _ => out.push(c),
        }
    }
    out
}
