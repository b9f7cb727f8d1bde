//! `erl` nodes driven through a line REPL on their stdin/stdout.
//!
//! The node runs `erl -noshell -name <name>@<host> -setcookie <cookie> [-hidden]
//! -start_epmd false [extra args] -eval <REPL>` with `ERL_EPMD_PORT` set. The REPL (Erlang
//! source below, loaded with `-eval`) reads one request per line, `<seq> <hex of the
//! expression's UTF-8>`, evaluates it with `erl_scan` / `erl_parse` / `erl_eval` in one
//! long-lived process (bindings persist between requests; `self()` is always that process, so
//! `receive` works), and prints one line `<tag> <seq> <kind> <text>`: kind `ok` with the value
//! printed by `~0tp`, `exception` with `{Class, Reason, Stack}`, or `parse_error`. `<tag>` is
//! random per node, so anything else the node prints (logger reports, `io:format` in an
//! expression) cannot be mistaken for a reply; such lines are kept for error messages. The
//! node halts when its stdin closes.

use std::fmt;
use std::io::Write;
use std::process::{Child, ChildStdin, Stdio};
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::time::{Duration, Instant, SystemTime};

use super::process::{OutputLog, spawn_line_reader};
use super::{LOOPBACK, Otp, TEST_COOKIE, unique_name};

/// The evaluator loaded with `-eval`. It reads `BEAMLINK_REPL_TAG` from its environment.
const REPL: &str = r#"
Tag = os:getenv("BEAMLINK_REPL_TAG"),
ok = io:setopts(standard_io, [{encoding, unicode}]),
Send = fun(Seq, Kind, Chars) ->
    OneLine = [case C of $\n -> $\s; $\r -> $\s; _ -> C end
               || C <- unicode:characters_to_list(Chars)],
    io:put_chars(standard_io, [Tag, $\s, integer_to_list(Seq), $\s, Kind, $\s, OneLine, $\n])
end,
Eval = fun(Src, Bindings) ->
    case erl_scan:string(Src) of
        {ok, Tokens, _} ->
            case erl_parse:parse_exprs(Tokens) of
                {ok, Exprs} ->
                    try erl_eval:exprs(Exprs, Bindings) of
                        {value, Value, Next} -> {"ok", io_lib:format("~0tp", [Value]), Next}
                    catch Class:Reason:Stack ->
                        {"exception",
                         io_lib:format("~0tp", [{Class, Reason, lists:sublist(Stack, 4)}]),
                         Bindings}
                    end;
                {error, {_, Mod, Desc}} -> {"parse_error", Mod:format_error(Desc), Bindings}
            end;
        {error, {_, Mod, Desc}, _} -> {"parse_error", Mod:format_error(Desc), Bindings}
    end
end,
Loop = fun Loop(Bindings) ->
    case io:get_line(standard_io, "") of
        Line when is_list(Line); is_binary(Line) ->
            [SeqText, Hex] = string:split(string:trim(unicode:characters_to_list(Line)), " "),
            Src = unicode:characters_to_list(binary:decode_hex(list_to_binary(Hex))),
            {Kind, Text, Next} = Eval(Src, Bindings),
            Send(list_to_integer(SeqText), Kind, Text),
            Loop(Next);
        _Eof ->
            erlang:halt(0)
    end
end,
Send(0, "ready", atom_to_list(node())),
Loop(erl_eval:new_bindings()).
"#;

/// Replies that may wait unread (stale replies of timed-out requests included).
const REPLY_QUEUE: usize = 64;
/// Default limit for one [`BeamNode::eval`].
const EVAL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a node may take to boot and print its ready line.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a node may take to halt after its stdin closed, before it is killed.
const HALT_GRACE: Duration = Duration::from_secs(3);

/// Why [`BeamNode::eval`] or [`BeamNode::wait_until`] gave no value.
#[derive(Clone, PartialEq, Eq)]
pub enum EvalError {
    /// The expression does not scan or parse; `message` is erl_scan's or erl_parse's.
    Parse {
        /// Node that was asked.
        node: String,
        /// The expression sent.
        expr: String,
        /// The parser's message.
        message: String,
    },
    /// Evaluation raised; `error` is `{Class, Reason, Stack}` printed with `~0tp`.
    Exception {
        /// Node that was asked.
        node: String,
        /// The expression sent.
        expr: String,
        /// `{Class, Reason, Stack}` (top 4 frames).
        error: String,
    },
    /// No reply within the time limit. The REPL may still be busy with this expression; later
    /// requests queue up behind it.
    Timeout {
        /// Node that was asked.
        node: String,
        /// The expression sent.
        expr: String,
        /// The limit that passed.
        after: Duration,
    },
    /// The node exited or closed its stdout; `output` is what it printed last.
    NodeDown {
        /// Node that was asked.
        node: String,
        /// The expression sent.
        expr: String,
        /// The node's last output lines.
        output: String,
    },
    /// [`BeamNode::wait_until`]: the expression never printed `expected` in time.
    NotReached {
        /// Node that was asked.
        node: String,
        /// The expression polled.
        expr: String,
        /// The value waited for.
        expected: String,
        /// The last value or error seen.
        last: String,
        /// The limit that passed.
        after: Duration,
    },
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EvalError::Parse {
                node,
                expr,
                message,
            } => write!(f, "{node}: cannot parse `{expr}`: {message}"),
            EvalError::Exception { node, expr, error } => {
                write!(f, "{node}: `{expr}` raised {error}")
            }
            EvalError::Timeout { node, expr, after } => {
                write!(f, "{node}: no reply to `{expr}` within {after:?}")
            }
            EvalError::NodeDown { node, expr, output } => write!(
                f,
                "{node}: node exited while evaluating `{expr}`; its last output:\n{output}"
            ),
            EvalError::NotReached {
                node,
                expr,
                expected,
                last,
                after,
            } => write!(
                f,
                "{node}: `{expr}` did not return {expected} within {after:?} (last: {last})"
            ),
        }
    }
}

impl fmt::Debug for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for EvalError {}

/// One line the REPL printed with our tag, or the end of its output.
enum ReplyLine {
    Reply {
        seq: u64,
        kind: String,
        text: String,
    },
    Closed,
}

struct Repl {
    stdin: Option<ChildStdin>,
    replies: Receiver<ReplyLine>,
    next_seq: u64,
}

/// Options for [`BeamNode`]; made by [`BeamNode::builder`].
#[derive(Clone, Debug)]
pub struct BeamNodeBuilder {
    otp: Otp,
    epmd_port: u16,
    name: String,
    host: String,
    cookie: String,
    hidden: bool,
    args: Vec<String>,
    env: Vec<(String, String)>,
    netns: Option<String>,
}

impl BeamNodeBuilder {
    /// Node name before `@` (default: [`unique_name`]`("beam")`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Host part after `@` (default 127.0.0.1).
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.host = host.into();
        self
    }

    /// `-setcookie` value (default [`TEST_COOKIE`]).
    pub fn cookie(mut self, cookie: impl Into<String>) -> Self {
        self.cookie = cookie.into();
        self
    }

    /// Start with `-hidden`.
    pub fn hidden(mut self, hidden: bool) -> Self {
        self.hidden = hidden;
        self
    }

    /// One more `erl` argument, placed before `-eval` (e.g. `-kernel`, `net_ticktime`, `60`).
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// An environment variable for the node.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Run inside network namespace `netns` (`ip netns exec`).
    pub fn netns(mut self, netns: impl Into<String>) -> Self {
        self.netns = Some(netns.into());
        self
    }

    /// Starts the node and waits until its REPL is ready (distribution is up and registered
    /// with epmd by then). Panics with the node's output if it does not come up.
    pub fn start(self) -> BeamNode {
        let otp = self.otp;
        let node = format!("{}@{}", self.name, self.host);
        let tag = format!(
            "BEAMLINK-REPL-{:x}-{}",
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|elapsed| elapsed.as_nanos())
                .unwrap_or_default(),
            unique_name("r")
        );
        let mut command = match &self.netns {
            Some(netns) => otp.command_in_netns(netns, "erl"),
            None => otp.command("erl"),
        };
        command
            .args(["-noshell", "-name", &node, "-setcookie", &self.cookie])
            .args(self.hidden.then_some("-hidden"))
            .args(["-start_epmd", "false"])
            .args(&self.args)
            .args(["-eval", REPL])
            .env("ERL_EPMD_PORT", self.epmd_port.to_string())
            .env("BEAMLINK_REPL_TAG", &tag)
            .envs(self.env.iter().map(|(key, value)| (key, value)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|err| panic!("{otp}: cannot start erl for {node}: {err}"));

        let output = OutputLog::default();
        let (sender, replies) = sync_channel(REPLY_QUEUE);
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        spawn_stdout_reader(stdout, format!("{tag} "), sender, output.clone());
        let log = output.clone();
        spawn_line_reader("beam-stderr", stderr, move |line| {
            log.push(format!("stderr: {line}"))
        });

        let os_pid = child.id();
        let beam = BeamNode {
            otp,
            node,
            os_pid,
            child: Mutex::new(child),
            repl: Mutex::new(Repl {
                stdin: None, // taken from the child in finish_start
                replies,
                next_seq: 1,
            }),
            output,
        };
        beam.finish_start(START_TIMEOUT)
    }
}

fn spawn_stdout_reader(
    stdout: std::process::ChildStdout,
    prefix: String,
    sender: SyncSender<ReplyLine>,
    output: OutputLog,
) {
    let closed = sender.clone();
    std::thread::Builder::new()
        .name("beam-stdout".to_owned())
        .spawn(move || {
            let reader = spawn_line_reader("beam-stdout-lines", stdout, move |line| {
                match parse_reply(&line, &prefix) {
                    Some(reply) => {
                        let _ = sender.send(reply);
                    }
                    None => output.push(line),
                }
            });
            let _ = reader.join();
            let _ = closed.send(ReplyLine::Closed);
        })
        .expect("spawn stdout watcher thread");
}

fn parse_reply(line: &str, prefix: &str) -> Option<ReplyLine> {
    let rest = line.strip_prefix(prefix)?;
    let mut parts = rest.splitn(3, ' ');
    let seq = parts.next()?.parse().ok()?;
    let kind = parts.next()?.to_owned();
    let text = parts.next().unwrap_or_default().to_owned();
    Some(ReplyLine::Reply { seq, kind, text })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A running `erl` node of one release, evaluated through its REPL. Killed (and reaped) on drop.
pub struct BeamNode {
    otp: Otp,
    node: String,
    os_pid: u32,
    child: Mutex<Child>,
    repl: Mutex<Repl>,
    output: OutputLog,
}

impl BeamNode {
    /// Options for a node of `otp` that uses the epmd on `epmd_port` (see [`super::Epmd`]).
    pub fn builder(otp: Otp, epmd_port: u16) -> BeamNodeBuilder {
        BeamNodeBuilder {
            otp,
            epmd_port,
            name: unique_name("beam"),
            host: LOOPBACK.to_owned(),
            cookie: TEST_COOKIE.to_owned(),
            hidden: false,
            args: Vec::new(),
            env: Vec::new(),
            netns: None,
        }
    }

    /// A visible node of `otp` with a unique name and [`TEST_COOKIE`], using the epmd on
    /// `epmd_port`.
    pub fn start(otp: Otp, epmd_port: u16) -> BeamNode {
        BeamNode::builder(otp, epmd_port).start()
    }

    fn finish_start(self, timeout: Duration) -> BeamNode {
        {
            let mut child = self.child.lock().expect("child lock");
            let mut repl = self.repl.lock().expect("repl lock");
            repl.stdin = child.stdin.take();
        }
        let ready = {
            let repl = self.repl.lock().expect("repl lock");
            repl.replies.recv_timeout(timeout)
        };
        match ready {
            Ok(ReplyLine::Reply { seq: 0, kind, text }) if kind == "ready" && text == self.node => {
                self
            }
            other => {
                let what = match other {
                    Ok(ReplyLine::Reply { kind, text, .. }) => format!("unexpected {kind} {text}"),
                    Ok(ReplyLine::Closed) => "it exited".to_owned(),
                    Err(_) => format!("no ready line within {timeout:?}"),
                };
                // Drop kills the process; its output is captured first.
                let output = self.output.text();
                panic!(
                    "{}: node {} did not start ({what}); its output:\n{output}",
                    self.otp, self.node
                );
            }
        }
    }

    /// The full node name, `name@host`.
    pub fn node_name(&self) -> &str {
        &self.node
    }

    /// The node's release.
    pub fn otp(&self) -> Otp {
        self.otp
    }

    /// Pid of the BEAM (the `erl` child execs down to `beam.smp`, also through otp-run).
    pub fn os_pid(&self) -> u32 {
        self.os_pid
    }

    /// Everything the node printed that was not a REPL reply (last lines; stderr prefixed).
    pub fn output(&self) -> String {
        self.output.text()
    }

    /// Evaluates an Erlang expression sequence (a trailing `.` is optional) on the node and
    /// returns its value printed with `~0tp` on one line, e.g. `"27"` (with the quotes),
    /// `pong`, `[1,2]`. 10 s limit.
    pub fn eval(&self, expr: &str) -> Result<String, EvalError> {
        self.eval_timeout(expr, EVAL_TIMEOUT)
    }

    /// [`BeamNode::eval`] with an explicit time limit.
    pub fn eval_timeout(&self, expr: &str, timeout: Duration) -> Result<String, EvalError> {
        let mut source = expr.trim().to_owned();
        if !source.ends_with('.') {
            source.push('.');
        }
        let mut repl = self
            .repl
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let seq = repl.next_seq;
        repl.next_seq += 1;
        let request = format!("{seq} {}\n", hex(source.as_bytes()));
        let written = match repl.stdin.as_mut() {
            Some(stdin) => stdin
                .write_all(request.as_bytes())
                .and_then(|()| stdin.flush()),
            None => Err(std::io::ErrorKind::BrokenPipe.into()),
        };
        if written.is_err() {
            return Err(self.node_down(expr));
        }
        let deadline = Instant::now() + timeout;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match repl.replies.recv_timeout(remaining) {
                Ok(ReplyLine::Reply {
                    seq: reply_seq,
                    kind,
                    text,
                }) if reply_seq == seq => {
                    return match kind.as_str() {
                        "ok" => Ok(text),
                        "exception" => Err(EvalError::Exception {
                            node: self.node.clone(),
                            expr: expr.to_owned(),
                            error: text,
                        }),
                        _ => Err(EvalError::Parse {
                            node: self.node.clone(),
                            expr: expr.to_owned(),
                            message: text,
                        }),
                    };
                }
                // A late reply to an earlier request that timed out.
                Ok(ReplyLine::Reply { .. }) => continue,
                Ok(ReplyLine::Closed) | Err(RecvTimeoutError::Disconnected) => {
                    // Keep the end-of-output marker for later calls.
                    return Err(self.node_down(expr));
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err(EvalError::Timeout {
                        node: self.node.clone(),
                        expr: expr.to_owned(),
                        after: timeout,
                    });
                }
            }
        }
    }

    fn node_down(&self, expr: &str) -> EvalError {
        EvalError::NodeDown {
            node: self.node.clone(),
            expr: expr.to_owned(),
            output: self.output.text(),
        }
    }

    /// Re-evaluates `expr` (every 50 ms) until it returns exactly `expected` (as printed by
    /// [`BeamNode::eval`]). Exceptions count as "not yet"; a node that exits ends the wait.
    pub fn wait_until(
        &self,
        expr: &str,
        expected: &str,
        timeout: Duration,
    ) -> Result<(), EvalError> {
        let deadline = Instant::now() + timeout;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let last = match self.eval_timeout(expr, remaining.max(Duration::from_millis(100))) {
                Ok(value) if value == expected => return Ok(()),
                Ok(value) => value,
                Err(err @ EvalError::NodeDown { .. }) => return Err(err),
                Err(err) => err.to_string(),
            };
            if Instant::now() >= deadline {
                return Err(EvalError::NotReached {
                    node: self.node.clone(),
                    expr: expr.to_owned(),
                    expected: expected.to_owned(),
                    last,
                    after: timeout,
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the node now (SIGKILL) and reaps it.
    pub fn kill(&self) {
        let mut child = self
            .child
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for BeamNode {
    fn drop(&mut self) {
        // Closing stdin makes the REPL halt the node; kill it if it takes too long.
        if let Ok(mut repl) = self.repl.lock() {
            repl.stdin = None;
        }
        let mut child = self
            .child
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let halted = super::wait_for(|| !matches!(child.try_wait(), Ok(None)), HALT_GRACE);
        if !halted {
            let _ = child.kill();
        }
        let _ = child.wait();
    }
}
