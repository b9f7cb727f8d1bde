//! A real `epmd` owned by one test.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::Duration;

use super::process::{OutputLog, spawn_line_reader};
use super::{LOOPBACK, Otp, free_port, wait_for};

/// How many free ports [`Epmd::start_with`] tries before giving up (another process can take
/// a port between [`free_port`] and epmd's bind).
const PORT_ATTEMPTS: usize = 5;

/// `epmd -port <free port>` in the foreground, from one OTP release. Its pid belongs to the
/// test: it is killed and reaped on drop. Point BEAMs at it with `ERL_EPMD_PORT` (which
/// [`super::BeamNode`] and [`super::Release`] do when given [`Epmd::port`]).
pub struct Epmd {
    child: Child,
    port: u16,
    otp: Otp,
    output: OutputLog,
}

impl Epmd {
    /// Starts the host's (OTP 25) epmd. Panics if it cannot start.
    pub fn start() -> Epmd {
        Epmd::start_with(Otp::V25)
    }

    /// Starts `otp`'s epmd on a free port and waits until it accepts connections.
    /// Panics (with epmd's output) if it cannot start.
    pub fn start_with(otp: Otp) -> Epmd {
        let mut failures = Vec::new();
        for _ in 0..PORT_ATTEMPTS {
            match Epmd::try_start(otp, free_port(), &[]) {
                Ok(epmd) => return epmd,
                Err(failure) => failures.push(failure),
            }
        }
        panic!("{otp}: epmd did not start: {}", failures.join("; "));
    }

    /// Starts `otp`'s epmd on `port` (e.g. the port of one that was killed, to restart it),
    /// retrying for a few seconds while the port is still held. Panics if it cannot start.
    pub fn start_on(otp: Otp, port: u16) -> Epmd {
        Epmd::start_on_with(otp, port, &[])
    }

    /// The host's (OTP 25) epmd on `port` with `extra` arguments (e.g. `-packet_timeout 1`),
    /// as [`Epmd::start_on`].
    pub fn on_port(port: u16, extra: &[&str]) -> Epmd {
        Epmd::start_on_with(Otp::V25, port, extra)
    }

    /// [`Epmd::start_on`] with `extra` arguments after `-port PORT`.
    pub fn start_on_with(otp: Otp, port: u16, extra: &[&str]) -> Epmd {
        let mut last = String::new();
        for _ in 0..PORT_ATTEMPTS {
            match Epmd::try_start(otp, port, extra) {
                Ok(epmd) => return epmd,
                Err(failure) => last = failure,
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        panic!("{otp}: epmd did not start on port {port}: {last}");
    }

    fn try_start(otp: Otp, port: u16, extra: &[&str]) -> Result<Epmd, String> {
        let output = OutputLog::default();
        let mut child = otp
            .command("epmd")
            .args(["-port", &port.to_string()])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|err| panic!("{otp}: cannot start epmd: {err}"));
        for source in [
            Box::new(child.stdout.take().expect("piped stdout")) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().expect("piped stderr")),
        ] {
            let log = output.clone();
            spawn_line_reader("epmd-output", source, move |line| log.push(line));
        }
        // An epmd that cannot bind the port exits: stop waiting then.
        let mut exited = false;
        let answered = wait_for(
            || {
                exited = !matches!(child.try_wait(), Ok(None));
                exited || TcpStream::connect((LOOPBACK, port)).is_ok()
            },
            Duration::from_secs(10),
        );
        if answered && !exited {
            return Ok(Epmd {
                child,
                port,
                otp,
                output,
            });
        }
        let _ = child.kill();
        let status = child.wait();
        Err(format!("port {port}: {status:?}: {}", output.text()))
    }

    /// The port epmd listens on (all interfaces, as epmd does by default).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The release whose epmd this is.
    pub fn otp(&self) -> Otp {
        self.otp
    }

    /// Kills epmd now and waits for it.
    pub fn kill(self) {}

    /// Waits for epmd to exit by itself (after a KILL_REQ it obeyed) and returns what it
    /// printed; panics if it fails or is still running after `limit`.
    pub fn wait_exit(mut self, limit: Duration) -> String {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for epmd") {
                assert!(
                    status.success(),
                    "epmd failed ({status}): {}",
                    self.output.text()
                );
                return self.output.text();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "epmd on port {} did not exit within {limit:?}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Pid of the epmd process.
    pub fn os_pid(&self) -> u32 {
        self.child.id()
    }

    /// The registered nodes, `(name, distribution port)`, from a NAMES request (what
    /// `epmd -names` prints). Panics if epmd does not answer.
    pub fn names(&self) -> Vec<(String, u16)> {
        let mut stream = TcpStream::connect((LOOPBACK, self.port))
            .unwrap_or_else(|err| panic!("epmd on port {}: connect: {err}", self.port));
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("set read timeout");
        // NAMES_REQ: 2-byte length 1, then 'n' (110).
        stream
            .write_all(&[0, 1, 110])
            .unwrap_or_else(|err| panic!("epmd on port {}: NAMES: {err}", self.port));
        let mut reply = Vec::new();
        stream
            .read_to_end(&mut reply)
            .unwrap_or_else(|err| panic!("epmd on port {}: NAMES reply: {err}", self.port));
        // 4-byte epmd port, then lines "name <name> at port <port>".
        let text = String::from_utf8_lossy(reply.get(4..).unwrap_or_default()).into_owned();
        text.lines()
            .filter_map(|line| {
                let rest = line.strip_prefix("name ")?;
                let (name, port) = rest.rsplit_once(" at port ")?;
                Some((name.to_owned(), port.trim().parse().ok()?))
            })
            .collect()
    }

    /// Waits until `name` (the part before `@`) is registered; false after `timeout`.
    pub fn wait_registered(&self, name: &str, timeout: Duration) -> bool {
        wait_for(
            || {
                self.names()
                    .iter()
                    .any(|(registered, _)| registered == name)
            },
            timeout,
        )
    }
}

impl Drop for Epmd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
