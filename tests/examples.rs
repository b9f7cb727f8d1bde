#![cfg(feature = "interop")]
//! The programs in `examples/`, built by cargo and run as a user runs them, against real BEAMs
//! of every release in `BEAMLINK_OTP` (the releases of one test run in parallel, each with an
//! epmd of its own):
//!
//! * `readme`, README.md's library example: an Elixir node evaluates the `iex>` lines of the
//!   README's Elixir block and must print what the README says.
//! * `genserver`: an Elixir node calls, casts and rpc-calls the Rust GenServer; then the
//!   fixture release (`labyrinth`, a real `mix release`) calls it as an Elixir app would.
//! * `call_genserver` and `typed_messages`: Rust calls `:labyrinth_echo` of the fixture
//!   release; `typed_messages` also talks to `examples/typed_messages.exs` on an Elixir node.
//! * `link_monitor`: with `examples/link_monitor.exs`, both ways: the Elixir process sees the
//!   Rust process end (`{:EXIT, ...}` and `{:DOWN, ...}`), and the Rust process sees the
//!   Elixir process end; each once with the script on an Elixir node of its own and once
//!   with its text evaluated inside the fixture release.
//!
//! Every example takes the cookie from `BEAMLINK_COOKIE` and exits non-zero when it fails;
//! every Elixir side exits non-zero when an answer does not come.

mod support;

use beamlink::Term;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use support::{Epmd, LOOPBACK, Otp, Release, ReleaseConfig, TEST_COOKIE, unique_name, wait_for};

/// Time for a program to say it is up, or for a one-shot program to finish.
const PROGRAM_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `test` for every release of `BEAMLINK_OTP` at once, one thread each; re-raises the
/// first panic once all have finished.
fn each_release_in_parallel(test: fn(Otp)) {
    let handles: Vec<_> = Otp::from_env()
        .into_iter()
        .map(|otp| std::thread::spawn(move || test(otp)))
        .collect();
    let mut failure = None;
    for handle in handles {
        if let Err(panic) = handle.join() {
            failure.get_or_insert(panic);
        }
    }
    if let Some(panic) = failure {
        std::panic::resume_unwind(panic);
    }
}

/// `target/<profile>/examples/<name>`, which a plain `cargo test` builds before the tests
/// (`cargo test --features interop --test examples` alone does not: run `cargo build --examples` first). Panics
/// if it is missing, or older than a source file it is built from (the library's or its own),
/// so a stale build is never what gets tested.
fn example_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    // The test binary runs from target/<profile>/deps.
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    let path = profile_dir.join("examples").join(name);
    let built = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e}: a plain `cargo test` builds the examples (or run `cargo build \
                 --examples` before `cargo test --features interop --test examples`)",
                path.display()
            )
        });
    let root = support::repo_root();
    let mut sources = vec![root.join("examples").join(format!("{name}.rs"))];
    for dir in ["src", "crates/beamlink-proto/src"] {
        rust_files(&root.join(dir), &mut sources);
    }
    for source in sources {
        let changed = std::fs::metadata(&source).and_then(|m| m.modified());
        assert!(
            changed.is_ok_and(|changed| changed <= built),
            "{} is older than {}: run `cargo build --examples` (a plain `cargo test` does)",
            path.display(),
            source.display()
        );
    }
    path
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &std::path::Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

/// A command running example `name` with the test cookie in `BEAMLINK_COOKIE` and the test's
/// epmd in `ERL_EPMD_PORT`.
fn example(name: &str, epmd: &Epmd) -> Command {
    let mut command = Command::new(example_path(name));
    command
        .env("BEAMLINK_COOKIE", TEST_COOKIE)
        .env("ERL_EPMD_PORT", epmd.port().to_string())
        .env_remove("BEAMLINK_NAME")
        .env_remove("BEAMLINK_PEER")
        .env_remove("BEAMLINK_PEER_PROCESS");
    command
}

/// `elixir --name <unique>@127.0.0.1 --cookie <test cookie>` of `otp`, on the test's epmd.
fn elixir(otp: Otp, prefix: &str, epmd: &Epmd) -> Command {
    let mut command = otp.command("elixir");
    command
        .args(["--name", &format!("{}@{LOOPBACK}", unique_name(prefix))])
        .args(["--cookie", TEST_COOKIE, "--erl", "-start_epmd false"])
        .env("ERL_EPMD_PORT", epmd.port().to_string());
    command
}

/// What a running program printed (stdout and stderr, interleaved by line), with a condition
/// variable to wait on.
#[derive(Clone, Default)]
struct Output(Arc<(Mutex<Vec<String>>, Condvar)>);

impl Output {
    fn capture(&self, source: impl Read + Send + 'static) -> std::thread::JoinHandle<()> {
        let output = self.clone();
        std::thread::spawn(move || {
            let mut reader = std::io::BufReader::new(source);
            let mut line = Vec::new();
            while matches!(std::io::BufRead::read_until(&mut reader, b'\n', &mut line), Ok(n) if n > 0)
            {
                let text = String::from_utf8_lossy(&line).trim_end().to_owned();
                line.clear();
                let (lines, changed) = &*output.0;
                lines.lock().unwrap_or_else(|p| p.into_inner()).push(text);
                changed.notify_all();
            }
        })
    }

    fn text(&self) -> String {
        self.0
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .join("\n")
    }

    fn lines(&self) -> Vec<String> {
        self.0.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Waits until a line contains `needle`; returns it, or `None` after `timeout`.
    fn wait_line(&self, needle: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        let (lines, changed) = &*self.0;
        let mut lines = lines.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(line) = lines.iter().find(|line| line.contains(needle)) {
                return Some(line.clone());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            lines = changed
                .wait_timeout(lines, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

/// A program the test started; killed on drop if it is still running.
struct Program {
    what: String,
    child: Child,
    output: Output,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Program {
    fn start(what: impl Into<String>, mut command: Command) -> Program {
        let what = what.into();
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("{what}: cannot start {command:?}: {e}"));
        let output = Output::default();
        let readers = vec![
            output.capture(child.stdout.take().expect("piped stdout")),
            output.capture(child.stderr.take().expect("piped stderr")),
        ];
        Program {
            what,
            child,
            output,
            readers,
        }
    }

    /// Waits until the program prints a line containing `needle`; panics with its output
    /// if it does not within [`PROGRAM_TIMEOUT`].
    fn wait_line(&self, needle: &str) -> String {
        self.output
            .wait_line(needle, PROGRAM_TIMEOUT)
            .unwrap_or_else(|| {
                panic!(
                    "{}: no line with {needle:?} within {PROGRAM_TIMEOUT:?}; output:\n{}",
                    self.what,
                    self.output.text()
                )
            })
    }

    /// Sends SIGINT (Ctrl-C), once the program handles it (tokio installs its handler when
    /// `ctrl_c()` is first awaited, just after the program says it is up).
    fn interrupt(&self) {
        let pid = self.child.id();
        assert!(
            wait_for(|| catches_sigint(pid), PROGRAM_TIMEOUT),
            "{}: never installed a SIGINT handler; output:\n{}",
            self.what,
            self.output.text()
        );
        let status = Command::new("kill")
            .args(["-s", "INT", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "{}: kill -INT failed", self.what);
    }

    /// Waits for the program to exit (killing it after [`PROGRAM_TIMEOUT`]); its exit status
    /// and every line it printed.
    fn finish(mut self) -> (ExitStatus, Vec<String>) {
        let exited = wait_for(
            || !matches!(self.child.try_wait(), Ok(None)),
            PROGRAM_TIMEOUT,
        );
        if !exited {
            let _ = self.child.kill();
        }
        let status = self.child.wait().expect("wait for the program");
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        assert!(
            exited,
            "{}: still running after {PROGRAM_TIMEOUT:?}; output:\n{}",
            self.what,
            self.output.text()
        );
        (status, self.output.lines())
    }

    /// [`Program::finish`], asserting exit status 0; the lines it printed.
    fn succeeds(self) -> Vec<String> {
        let what = self.what.clone();
        let (status, lines) = self.finish();
        assert!(
            status.success(),
            "{what}: {status}; output:\n{}",
            lines.join("\n")
        );
        lines
    }
}

/// True when process `pid` has a handler for SIGINT (`SigCgt` in `/proc/<pid>/status`).
fn catches_sigint(pid: u32) -> bool {
    const SIGINT: u32 = 2;
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    status
        .lines()
        .find_map(|line| line.strip_prefix("SigCgt:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (SIGINT - 1)) != 0)
}

impl Drop for Program {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The `iex>` lines of README.md's Elixir block after the library example, each with the
/// line after it (what iex prints).
fn readme_calls() -> Vec<(String, String)> {
    let path = support::repo_root().join("README.md");
    let readme =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let section = &readme[readme
        .find("\n## The library\n")
        .expect("README.md has a library section")..];
    let block = &section[section
        .find("```elixir\n")
        .expect("the library section has an elixir block")..];
    let lines: Vec<&str> = block
        .lines()
        .skip(1)
        .take_while(|l| !l.starts_with("```"))
        .collect();
    let calls: Vec<(String, String)> = lines
        .windows(2)
        .filter_map(|pair| {
            let expr = pair[0].strip_prefix("iex> ")?;
            Some((expr.to_owned(), pair[1].to_owned()))
        })
        .collect();
    assert!(
        calls.len() >= 2,
        "README.md's library section shows no iex calls: {lines:?}"
    );
    calls
}

/// An Elixir script that evaluates each line of `$EXAMPLE_CALLS` in order and prints
/// `=> <inspect of the value>` for each.
const EVAL_CALLS: &str = r#"
for expr <- String.split(System.fetch_env!("EXAMPLE_CALLS"), "\n") do
  {value, _} = Code.eval_string(expr)
  IO.puts("=> " <> inspect(value))
end
"#;

/// Runs `calls` on a fresh Elixir node of `otp` and returns what each printed.
fn eval_on_elixir(otp: Otp, epmd: &Epmd, calls: &[String]) -> Vec<String> {
    let mut command = elixir(otp, "caller", epmd);
    command
        .args(["-e", EVAL_CALLS])
        .env("EXAMPLE_CALLS", calls.join("\n"));
    let lines = Program::start(format!("{otp}: elixir caller"), command).succeeds();
    lines
        .iter()
        .filter_map(|line| line.strip_prefix("=> ").map(str::to_owned))
        .collect()
}

#[test]
fn the_readme_example_answers_elixir_as_the_readme_shows() {
    each_release_in_parallel(|otp| {
        let epmd = Epmd::start();
        let calls = readme_calls();
        let program = Program::start(format!("{otp}: examples/readme"), example("readme", &epmd));
        program.wait_line("is up");
        let exprs: Vec<String> = calls.iter().map(|(expr, _)| expr.clone()).collect();
        let expected: Vec<String> = calls.iter().map(|(_, value)| value.clone()).collect();
        assert_eq!(
            eval_on_elixir(otp, &epmd, &exprs),
            expected,
            "{otp}: the README's calls"
        );
        // Ctrl-C: the example shuts down and unregisters.
        program.interrupt();
        program.succeeds();
        assert!(
            wait_for(|| epmd.names().is_empty(), Duration::from_secs(10)),
            "{otp}: still registered after Ctrl-C: {:?}",
            epmd.names()
        );
    });
}

#[test]
fn elixir_calls_casts_and_rpc_calls_the_genserver_example() {
    each_release_in_parallel(|otp| {
        let epmd = Epmd::start();
        let node = format!("{}@{LOOPBACK}", unique_name("counter"));
        let mut command = example("genserver", &epmd);
        command.arg(&node);
        let program = Program::start(format!("{otp}: examples/genserver"), command);
        program.wait_line("is up");
        let server = format!(r#"{{:counter, :"{node}"}}"#);
        let calls = [
            format!("GenServer.call({server}, {{:add, 5}})"),
            format!("GenServer.call({server}, {{:add, 2}})"),
            format!("GenServer.call({server}, :nonsense)"),
            format!("GenServer.cast({server}, :reset)"),
            // A call after the cast, from the same process: served after it.
            format!("GenServer.call({server}, {{:add, 0}})"),
            format!(r#":rpc.call(:"{node}", :counter, :value, [])"#),
        ];
        assert_eq!(
            eval_on_elixir(otp, &epmd, &calls),
            ["5", "7", "{:error, :unknown_call}", ":ok", "0", "0"],
            "{otp}"
        );
        // The same server called from inside a release, as an Elixir app would call it.
        let release = Release::start(otp, ReleaseConfig::unique(epmd.port()));
        assert_eq!(
            release.rpc(&format!("GenServer.call({server}, {{:add, 3}})")),
            "3",
            "{otp}: a call from the release"
        );
        assert_eq!(
            release.rpc(&format!(r#":rpc.call(:"{node}", :counter, :value, [])"#)),
            "3",
            "{otp}: an :rpc.call from the release"
        );
        program.interrupt();
        program.succeeds();
    });
}

#[test]
fn rust_calls_the_genserver_of_a_release() {
    each_release_in_parallel(|otp| {
        let epmd = Epmd::start();
        let release = Release::start(otp, ReleaseConfig::unique(epmd.port()));

        let mut command = example("call_genserver", &epmd);
        command.args([release.node_name(), "labyrinth_echo"]);
        let lines = Program::start(format!("{otp}: examples/call_genserver"), command).succeeds();
        let expected =
            Term::tuple([Term::atom("echo"), Term::binary(&b"hello from Rust"[..])]).to_string();
        assert!(
            lines.contains(&expected),
            "{otp}: call_genserver printed {lines:?}, not {expected}"
        );

        let mut command = example("typed_messages", &epmd);
        command.args([release.node_name(), "labyrinth_echo"]);
        let lines = Program::start(format!("{otp}: examples/typed_messages"), command).succeeds();
        for step in ["pong: Order", "echo: Order"] {
            assert!(
                lines.iter().any(|line| line.starts_with(step)),
                "{otp}: typed_messages against the release printed no {step:?}: {lines:?}"
            );
        }
    });
}

#[test]
fn typed_messages_cross_with_an_elixir_script() {
    each_release_in_parallel(|otp| {
        let epmd = Epmd::start();
        let shop_name = unique_name("shop");
        let mut command = otp.command("elixir");
        command
            .args(["--name", &format!("{shop_name}@{LOOPBACK}")])
            .args(["--cookie", TEST_COOKIE, "--erl", "-start_epmd false"])
            .arg("examples/typed_messages.exs")
            .env("ERL_EPMD_PORT", epmd.port().to_string());
        let shop = Program::start(format!("{otp}: typed_messages.exs"), command);
        shop.wait_line(":shop is up");

        let mut command = example("typed_messages", &epmd);
        command.args([&format!("{shop_name}@{LOOPBACK}"), "shop"]);
        let lines = Program::start(format!("{otp}: examples/typed_messages"), command).succeeds();
        // The script shipped the order: the reply is a Rust value again, the status a variant.
        assert!(
            lines.iter().any(|line| line.starts_with("pong: Order")
                && line.contains(r#"Shipped { tracking: "1Z42" }"#)),
            "{otp}: {lines:?}"
        );
        assert!(
            lines.iter().any(|line| line.starts_with("echo: Order")),
            "{otp}: {lines:?}"
        );
        assert!(
            shop.output
                .wait_line("got %Shop.Order{", PROGRAM_TIMEOUT)
                .is_some(),
            "{otp}: the script did not see a %Shop.Order{{}}:\n{}",
            shop.output.text()
        );
    });
}

/// Where `examples/link_monitor.exs` runs: as a script of its own (`elixir`), or inside a
/// running release (its text evaluated there with `bin/labyrinth rpc`).
#[derive(Clone, Copy, Debug)]
enum Owner {
    Script,
    Release,
}

/// Starts `examples/link_monitor` and runs `examples/link_monitor.exs <worker> <direction>`
/// against it, on `owner`; both must succeed. Returns what each printed.
fn link_monitor(otp: Otp, owner: Owner, direction: &str) -> (Vec<String>, Vec<String>) {
    let epmd = Epmd::start();
    let worker_node = format!("{}@{LOOPBACK}", unique_name("worker"));
    let mut command = example("link_monitor", &epmd);
    command.arg(&worker_node);
    let worker = Program::start(format!("{otp}: examples/link_monitor"), command);
    worker.wait_line("is up");
    let printed = match owner {
        Owner::Script => {
            let mut command = elixir(otp, "owner", &epmd);
            command.args(["examples/link_monitor.exs", &worker_node, direction]);
            Program::start(format!("{otp}: link_monitor.exs {direction}"), command).succeeds()
        }
        Owner::Release => {
            let release = Release::start(otp, ReleaseConfig::unique(epmd.port()));
            let script = std::fs::read_to_string("examples/link_monitor.exs")
                .expect("read examples/link_monitor.exs");
            let (_, printed) = release.rpc_printing(&format!(
                "System.argv([\"{worker_node}\", \"{direction}\"])\n{script}"
            ));
            // The release stops here: the worker's program sees its node go.
            printed
        }
    };
    // The owner's node has gone: the worker's program sees it and exits by itself.
    let worker = worker.succeeds();
    (worker, printed)
}

#[test]
fn elixir_sees_the_rust_process_it_links_to_and_monitors_go_down() {
    each_release_in_parallel(|otp| {
        for owner in [Owner::Script, Owner::Release] {
            elixir_sees_the_rust_process_go_down(otp, owner);
        }
    });
}

fn elixir_sees_the_rust_process_go_down(otp: Otp, owner_on: Owner) {
    let (worker, owner) = link_monitor(otp, owner_on, "stop");
    let otp = format!("{otp} ({owner_on:?})");
    assert!(
        worker.iter().any(|l| l == "stopping with reason done"),
        "{otp}: {worker:?}"
    );
    assert!(
        owner
            .iter()
            .any(|l| l.starts_with("got {:EXIT, #PID<") && l.ends_with(">, :done}")),
        "{otp}: no {{:EXIT, pid, :done}}: {owner:?}"
    );
    assert!(
        owner
            .iter()
            .any(|l| l.starts_with("got {:DOWN, ref, :process, #PID<") && l.ends_with(">, :done}")),
        "{otp}: no {{:DOWN, ref, :process, pid, :done}}: {owner:?}"
    );
}

#[test]
fn the_rust_process_sees_the_elixir_process_it_watches_go_down() {
    each_release_in_parallel(|otp| {
        for owner in [Owner::Script, Owner::Release] {
            the_rust_process_sees_the_owner_go_down(otp, owner);
        }
    });
}

fn the_rust_process_sees_the_owner_go_down(otp: Otp, owner_on: Owner) {
    let (worker, owner) = link_monitor(otp, owner_on, "exit");
    let otp = format!("{otp} ({owner_on:?})");
    for seen in ["linked process <", "monitored process <"] {
        assert!(
            worker
                .iter()
                .any(|l| l.starts_with(seen) && l.ends_with(": bye")),
            "{otp}: the worker did not print {seen:?}...: bye: {worker:?}"
        );
    }
    assert!(
        owner
            .iter()
            .any(|l| l.starts_with("worker #PID<") && l.ends_with("> ended: :normal")),
        "{otp}: {owner:?}"
    );
}
