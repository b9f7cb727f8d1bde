//! OS process helpers: liveness by pid, signals, and bounded capture of a child's output.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Lines kept by an [`OutputLog`]; older lines are dropped first.
const OUTPUT_LOG_LINES: usize = 400;

/// The last [`OUTPUT_LOG_LINES`] lines a child printed, for error messages.
#[derive(Clone, Default)]
pub(crate) struct OutputLog(Arc<Mutex<VecDeque<String>>>);

impl OutputLog {
    pub(crate) fn push(&self, line: String) {
        let mut lines = self.0.lock().unwrap_or_else(|poison| poison.into_inner());
        if lines.len() == OUTPUT_LOG_LINES {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    /// All kept lines, newline-separated.
    pub(crate) fn text(&self) -> String {
        let lines = self.0.lock().unwrap_or_else(|poison| poison.into_inner());
        lines
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Reads `source` line by line on a thread until EOF, handing each line (without its line
/// ending, invalid UTF-8 replaced) to `on_line`.
pub(crate) fn spawn_line_reader(
    name: &str,
    source: impl Read + Send + 'static,
    mut on_line: impl FnMut(String) + Send + 'static,
) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let mut reader = BufReader::new(source);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        while matches!(buf.last(), Some(b'\n' | b'\r')) {
                            buf.pop();
                        }
                        on_line(String::from_utf8_lossy(&buf).into_owned());
                    }
                }
            }
        })
        .expect("spawn output reader thread")
}

/// The state letter of `/proc/<pid>/stat`, `None` when the process is gone.
fn state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces: the state follows the last ')'.
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// True while `pid` exists and is not a zombie (a zombie has exited; `kill -0` still succeeds on
/// it until its parent reaps it, which for orphans can take a while).
pub(crate) fn is_alive(pid: u32) -> bool {
    !matches!(state(pid), None | Some('Z' | 'X'))
}

/// The parent pid of `pid`, if it still exists.
pub(crate) fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The command name (`comm`) of `pid`, if it still exists.
pub(crate) fn command_name(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|name| name.trim().to_owned())
}

/// Sends `signal` (e.g. "TERM", "KILL") to `pid`; a process that is already gone is fine.
pub(crate) fn signal(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args(["-s", signal, &pid.to_string()])
        .stderr(std::process::Stdio::null())
        .status();
}

/// SIGTERM, then SIGKILL if `pid` is still alive after `grace`; waits until it is gone.
/// Returns false if it survived even SIGKILL for 5 s.
pub(crate) fn terminate(pid: u32, grace: Duration) -> bool {
    if !is_alive(pid) {
        return true;
    }
    signal(pid, "TERM");
    if super::wait_for(|| !is_alive(pid), grace) {
        return true;
    }
    signal(pid, "KILL");
    super::wait_for(|| !is_alive(pid), Duration::from_secs(5))
}
