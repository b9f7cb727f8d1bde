#![cfg(feature = "interop")]
//! The binary's reliability and security contract (ecosystem.md part C, items 6, 12, 14, 20
//! and 21; contract.md): names a BEAM refuses, cookie files checked as erl checks them, the
//! cookie never printed, SIGTERM as PID 1 of a PID namespace, EPMD killed and restarted
//! under `beamlink run --epmd client`, `RUST_LOG` filtering, and one malloc arena.
//!
//! Every test that involves a BEAM runs once per release in `BEAMLINK_OTP` (25, 27 and 29 by
//! default), the releases in parallel threads ([`support::each_release`]).

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::{
    BeamNode, Beamlink, Epmd, Otp, TEST_COOKIE, beamlink_command, free_port, unique_name,
};

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn run_with(mut command: Command, cookie: Option<&str>) -> Output {
    if let Some(c) = cookie {
        command.env("BEAMLINK_COOKIE", c);
    }
    command.stdin(Stdio::null()).output().expect("run beamlink")
}

/// A scratch directory under /tmp (visible inside the OTP chroots), removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(unique_name(tag));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    /// Writes `contents` to `name` with `mode`.
    fn file(&self, name: &str, contents: &[u8], mode: u32) -> PathBuf {
        let path = self.0.join(name);
        let _ = std::fs::remove_file(&path);
        std::fs::write(&path, contents).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Node names a long-names BEAM refuses (erl_distribution_SUITE's illegal names), given as
/// our `--name` (to `run` and `ping`) or as a node to dial (`--connect`, `ping`'s target):
/// each is a configuration error (exit 78) or a usage error (64) with a message naming the
/// problem, before any network activity. A real BEAM refuses to dial the same names
/// (`net_kernel:connect_node/1` gives `false`) and stays up; the 256-character one cannot
/// even be an atom there.
///
/// Fails without the host checks of `cli::dial_target` (`--connect app@dotless` and a
/// non-ASCII host were accepted and then retried forever).
#[test]
fn names_the_beam_refuses_are_configuration_errors() {
    support::each_release(names_the_beam_refuses_are_configuration_errors_with);
}

fn names_the_beam_refuses_are_configuration_errors_with(otp: Otp) {
    let epmd = Epmd::start();
    let port = epmd.port().to_string();
    let long = format!("{}@127.0.0.1", "a".repeat(250));
    let cases: [(&str, &str); 6] = [
        ("a@b@c", "more than one '@'"),
        ("bl@h\u{f4}st.example", "in the host part"),
        (&long, "more than the 255"),
        ("bl@", "nothing after the '@'"),
        ("@127.0.0.1", "nothing before the '@'"),
        (
            "bl@dotless",
            "neither an IP address nor a fully qualified name",
        ),
    ];
    let beam = BeamNode::start(otp, epmd.port());
    for (name, reason) in cases {
        let runs: [(&str, Vec<&str>, &[i32]); 4] = [
            (
                "run --name",
                vec![
                    "run",
                    "--name",
                    name,
                    "--epmd",
                    "client",
                    "--epmd-port",
                    &port,
                ],
                &[78],
            ),
            (
                "ping --name",
                vec!["ping", "--name", name, "x@127.0.0.1", "--epmd-port", &port],
                &[78],
            ),
            (
                "run --connect",
                vec![
                    "run",
                    "--name",
                    "ok@127.0.0.1",
                    "--epmd",
                    "client",
                    "--epmd-port",
                    &port,
                    "--connect",
                    name,
                ],
                &[64, 78],
            ),
            ("ping", vec!["ping", name, "--epmd-port", &port], &[64, 78]),
        ];
        for (how, args, codes) in runs {
            let out = run_with(beamlink_command(&args), Some(TEST_COOKIE));
            let all = text(&out);
            eprintln!("{how} {name:.40}: {:?} {}", out.status.code(), all.trim());
            assert!(
                out.status.code().is_some_and(|c| codes.contains(&c)),
                "{how} {name}: exit {:?}, want {codes:?}: {all}",
                out.status
            );
            assert!(all.contains(reason), "{how} {name}: {all}");
            assert!(all.starts_with("beamlink: "), "one clear line: {all}");
        }
        if name.chars().count() <= 255 {
            let quoted = name.replace('\'', "\\'");
            let refused = beam
                .eval(&format!("net_kernel:connect_node('{quoted}')"))
                .unwrap();
            assert_eq!(refused, "false", "{otp} dials {name}");
        }
    }
    assert_eq!(beam.eval("is_alive()").unwrap(), "true");
}

/// What `erl` makes of a cookie file: `Ok(cookie)` when it starts with it, `Err(output)` when
/// it refuses. erl reads `$HOME/.erlang.cookie` once distribution starts.
fn erl_verdict(otp: Otp, epmd: &Epmd, home: &Path) -> Result<String, String> {
    let out = otp
        .command("erl")
        .args([
            "-noshell",
            "-name",
            &format!("{}@127.0.0.1", unique_name("cookiecheck")),
            "-start_epmd",
            "false",
            "-eval",
            "io:format(\"COOKIE[~s]~n\", [erlang:get_cookie()]), halt().",
        ])
        .env("ERL_EPMD_PORT", epmd.port().to_string())
        .env("HOME", home)
        // A refused cookie makes erl halt with a crash dump in its working directory (the
        // repository): 0 seconds means none is written.
        .env("ERL_CRASH_DUMP_SECONDS", "0")
        .stdin(Stdio::null())
        .output()
        .expect("run erl");
    let all = text(&out);
    match all
        .split("COOKIE[")
        .nth(1)
        .and_then(|r| r.split(']').next())
    {
        Some(cookie) if out.status.success() => Ok(cookie.to_owned()),
        _ => Err(all),
    }
}

/// Cookie files, each given both to `erl` (as `~/.erlang.cookie`) and to `beamlink ping
/// --cookie-file`: group/other-readable (0644) is refused by both, beamlink with exit 78 and a
/// message naming the path and its mode; a trailing newline is fine for both (and the cookie
/// works against a BEAM that has it); an empty file, a lone newline and a control character
/// are refused by both. Through `run` too.
#[test]
fn cookie_files_are_checked_as_erl_checks_them() {
    support::each_release(cookie_files_are_checked_as_erl_checks_them_with);
}

fn cookie_files_are_checked_as_erl_checks_them_with(otp: Otp) {
    let epmd = Epmd::start();
    let port = epmd.port().to_string();
    let good = "Fine-Cookie-123";
    let beam = BeamNode::builder(otp, epmd.port()).cookie(good).start();
    let scratch = Scratch::new("cookies");
    // (contents, mode, accepted by both)
    let cases: [(&[u8], u32, bool); 7] = [
        (b"Fine-Cookie-123\n", 0o644, false),
        (b"Fine-Cookie-123\n", 0o640, false),
        (b"Fine-Cookie-123\n", 0o600, true),
        (b"Fine-Cookie-123", 0o400, true),
        (b"", 0o600, false),
        (b"Fine\x01Cookie\n", 0o600, false),
        (b"\n", 0o400, false),
    ];
    for (contents, mode, accepted) in cases {
        let home = scratch.0.join(format!("home{mode:o}{}", contents.len()));
        std::fs::create_dir_all(&home).unwrap();
        let path = home.join(".erlang.cookie");
        let _ = std::fs::remove_file(&path);
        std::fs::write(&path, contents).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let erl = erl_verdict(otp, &epmd, &home);
        let out = run_with(
            beamlink_command(&[
                "ping",
                beam.node_name(),
                "--epmd-port",
                &port,
                "--cookie-file",
                path.to_str().unwrap(),
            ]),
            None,
        );
        let all = text(&out);
        eprintln!(
            "{:?} mode {mode:o}: beamlink {:?} {}; erl {}",
            String::from_utf8_lossy(contents),
            out.status.code(),
            all.trim(),
            match &erl {
                Ok(c) => format!("accepts {c:?}"),
                Err(e) => format!("refuses: {}", e.lines().next().unwrap_or("")),
            }
        );
        assert_eq!(erl.is_ok(), accepted, "erl's verdict differs: {erl:?}");
        if accepted {
            assert_eq!(out.status.code(), Some(0), "{all}");
            assert!(all.starts_with("pong"), "{all}");
            assert_eq!(erl.as_deref(), Ok(good), "erl reads the same cookie");
        } else {
            assert_eq!(out.status.code(), Some(78), "{all}");
            assert!(
                all.contains(path.to_str().unwrap()),
                "names the path: {all}"
            );
            if mode & 0o077 != 0 {
                assert!(
                    all.contains(&format!("{mode:o}")) && all.contains("owner only"),
                    "names the mode and what is required: {all}"
                );
            }
            assert!(!all.contains("Fine-Cookie"), "{all}");
        }
    }
    let bad = scratch.file("open", b"Fine-Cookie-123\n", 0o644);
    let out = run_with(
        beamlink_command(&[
            "run",
            "--name",
            "cookiefile@127.0.0.1",
            "--epmd",
            "client",
            "--epmd-port",
            &port,
            "--cookie-file",
            bad.to_str().unwrap(),
        ]),
        None,
    );
    assert_eq!(out.status.code(), Some(78), "{}", text(&out));
    assert!(text(&out).contains(bad.to_str().unwrap()));
}

/// The cookie appears nowhere: not in the output of `run`, `ping`, `names`, `nodes`,
/// `doctor` (text and `--json`) at `RUST_LOG=trace`, in success and in error paths (a wrong
/// cookie in both directions, a cookie file readable by others, a cookie with a control
/// character), nor in `run`'s command line.
/// A cookie file on a read-only mount, as Docker and Kubernetes mount secrets: chmod cannot
/// help there, so the refusal names what can (the secret's `mode: 0400` and `uid` in the stack
/// file). Group-readable as root, and owner-only but root's as uid 10001 (the image's USER).
/// The mount lives in a private mount namespace (`unshare --mount`) and goes with it.
#[test]
fn cookie_secrets_on_read_only_mounts_name_the_stack_file_fix() {
    let scratch = Scratch::new("ro-secret");
    // Runs `beamlink ping` (which reads the cookie before anything else) inside a private
    // mount namespace where <scratch>/secrets is a read-only tmpfs holding `cookie` with
    // `mode`, as the user `as_user` (setpriv) or root.
    let refusal = |mode: &str, as_user: Option<u32>| -> (Option<i32>, String) {
        let dir = scratch.0.join("secrets");
        std::fs::create_dir_all(&dir).unwrap();
        let user = as_user.map_or(String::new(), |uid| {
            format!("setpriv --reuid={uid} --regid={uid} --clear-groups ")
        });
        let script = format!(
            "set -e; mount -t tmpfs -o mode=0755 tmpfs {dir}; printf Fine-Cookie-123 > {dir}/cookie; \
             chmod {mode} {dir}/cookie; mount -o remount,ro {dir}; \
             exec {user}{bin} ping nobody@127.0.0.1 --epmd-port 1 --cookie-file {dir}/cookie",
            dir = dir.display(),
            bin = support::beamlink_bin(),
        );
        let mut c = Command::new("unshare");
        c.args(["--mount", "--propagation", "private", "sh", "-c", &script]);
        let out = run_with(c, None);
        (out.status.code(), text(&out))
    };
    let (code, all) = refusal("444", None);
    eprintln!("0444 on a read-only mount: {code:?} {}", all.trim());
    assert_eq!(code, Some(78), "{all}");
    assert!(all.contains("read-only mount"), "{all}");
    assert!(
        all.contains("mode: 0400") && all.contains("uid: \"0\""),
        "{all}"
    );
    assert!(!all.contains("chmod 400"), "no impossible advice: {all}");
    assert!(!all.contains("Fine-Cookie"), "{all}");

    let (code, all) = refusal("400", Some(10001));
    eprintln!("0400 root's, read by uid 10001: {code:?} {}", all.trim());
    assert_eq!(code, Some(78), "{all}");
    assert!(all.contains("Permission denied"), "{all}");
    assert!(all.contains("uid: \"10001\""), "{all}");
}

/// The one-shots read the settings `run` takes from the environment (`BEAMLINK_COOKIE_FILE`,
/// `BEAMLINK_PEER_BASENAME`, ...), so `docker exec <task> /beamlink doctor` works with no flags
/// where `run`'s environment is set; but not `BEAMLINK_NAME`, which names the `run` beside
/// them.
#[test]
fn one_shots_read_runs_environment_but_not_its_name() {
    let scratch = Scratch::new("env-fallbacks");
    let open = scratch.file("open", b"Fine-Cookie-123\n", 0o644);
    let mut c = beamlink_command(&["ping", "nobody@127.0.0.1", "--epmd-port", "1"]);
    c.env("BEAMLINK_COOKIE_FILE", &open);
    let out = run_with(c, None);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(78), "{all}");
    assert!(
        all.contains(open.to_str().unwrap()) && all.contains("owner only"),
        "BEAMLINK_COOKIE_FILE is read: {all}"
    );

    // A name `run` would refuse: the one-shot must not even look at it.
    let mut c = beamlink_command(&["ping", "nobody@127.0.0.1", "--epmd-port", "1"]);
    c.env("BEAMLINK_NAME", "not a name@");
    let out = run_with(c, Some(TEST_COOKIE));
    let all = text(&out);
    assert_eq!(out.status.code(), Some(69), "EPMD port 1 is closed: {all}");
    assert!(!all.contains("not a name"), "{all}");

    // `doctor` with only the environment: the query, the basename and the cookie file.
    let good = scratch.file("good", b"Fine-Cookie-123\n", 0o600);
    let mut c = beamlink_command(&["doctor", "--json", "--timeout", "2s", "--epmd-port", "1"]);
    c.env("BEAMLINK_COOKIE_FILE", &good)
        .env("DNS_CLUSTER_QUERY", "localhost")
        .env("BEAMLINK_PEER_BASENAME", "labyrinth")
        .env("BEAMLINK_POLL_INTERVAL", "1s");
    let out = run_with(c, None);
    let doc = String::from_utf8_lossy(&out.stdout);
    assert!(
        doc.contains("labyrinth@127.0.0.1") && doc.contains(good.to_str().unwrap()),
        "the basename and the cookie file come from the environment: {}",
        text(&out)
    );
}

#[test]
fn the_cookie_never_appears_in_any_output() {
    support::each_release(the_cookie_never_appears_in_any_output_with);
}

fn the_cookie_never_appears_in_any_output_with(otp: Otp) {
    const SECRET: &str = "Zq9-SeCrEt-C00kie-8472";
    const WRONG: &str = "Wr0ng-SeCrEt-Kuk1e-5531";
    let epmd = Epmd::start();
    let port = epmd.port().to_string();
    let beam = BeamNode::builder(otp, epmd.port()).cookie(SECRET).start();
    let stranger = BeamNode::builder(otp, epmd.port()).cookie(WRONG).start();
    let scratch = Scratch::new("secret");
    let good_file = scratch.file("good", format!("{SECRET}\n").as_bytes(), 0o400);
    let open_file = scratch.file("open", format!("{SECRET}\n").as_bytes(), 0o644);
    let mut outputs: Vec<(String, String)> = Vec::new();
    let traced = |args: &[&str]| {
        let mut c = beamlink_command(args);
        c.env("RUST_LOG", "trace");
        c
    };

    // run: dials the BEAM, is pinged by it, refuses the stranger, stops on SIGTERM.
    let name = format!("{}@127.0.0.1", unique_name("blsecret"));
    let mut bl = Beamlink::start_with(
        traced(&[
            "run",
            "--name",
            &name,
            "--epmd",
            "client",
            "--epmd-port",
            &port,
            "--connect",
            beam.node_name(),
        ]),
        SECRET,
    );
    bl.wait_log("nodeup", Duration::from_secs(15));
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", bl.pid())).unwrap();
    assert!(!String::from_utf8_lossy(&cmdline).contains(SECRET));
    assert_eq!(
        beam.eval(&format!("net_adm:ping('{name}')")).unwrap(),
        "pong"
    );
    assert_eq!(
        stranger.eval(&format!("net_adm:ping('{name}')")).unwrap(),
        "pang"
    );
    bl.wait_log("incoming connection failed", Duration::from_secs(5));
    assert_eq!(
        bl.terminate(Duration::from_secs(10)).and_then(|s| s.code()),
        Some(0)
    );
    let log = bl.log();
    assert!(log.contains("DEBUG"), "verbose logging is on:\n{log}");
    outputs.push(("run".into(), log));

    let mut file_run = Beamlink::start_with(
        traced(&[
            "run",
            "--name",
            &format!("{}@127.0.0.1", unique_name("blsecretf")),
            "--epmd",
            "client",
            "--epmd-port",
            &port,
            "--cookie-file",
            good_file.to_str().unwrap(),
            "--connect",
            beam.node_name(),
        ]),
        "",
    );
    file_run.wait_log("nodeup", Duration::from_secs(15));
    file_run.terminate(Duration::from_secs(10));
    outputs.push(("run --cookie-file".into(), file_run.log()));

    let target = beam.node_name().to_owned();
    let oneshots: Vec<(&str, Vec<&str>, Option<&str>)> = vec![
        (
            "ping",
            vec!["ping", &target, "--epmd-port", &port],
            Some(SECRET),
        ),
        (
            "ping (wrong cookie)",
            vec!["ping", &target, "--epmd-port", &port],
            Some(WRONG),
        ),
        (
            "ping --cookie-file",
            vec![
                "ping",
                &target,
                "--epmd-port",
                &port,
                "--cookie-file",
                good_file.to_str().unwrap(),
            ],
            None,
        ),
        (
            "ping --cookie-file (mode 644)",
            vec![
                "ping",
                &target,
                "--epmd-port",
                &port,
                "--cookie-file",
                open_file.to_str().unwrap(),
            ],
            None,
        ),
        (
            "names",
            vec!["names", "127.0.0.1", "--epmd-port", &port],
            None,
        ),
        (
            "names --json",
            vec!["names", "127.0.0.1", "--epmd-port", &port, "--json"],
            None,
        ),
        (
            "nodes",
            vec!["nodes", "--connect", &target, "--epmd-port", &port],
            Some(SECRET),
        ),
        (
            "nodes --json",
            vec![
                "nodes",
                "--connect",
                &target,
                "--epmd-port",
                &port,
                "--json",
            ],
            Some(SECRET),
        ),
        (
            "nodes --json (wrong cookie)",
            vec![
                "nodes",
                "--connect",
                &target,
                "--epmd-port",
                &port,
                "--json",
            ],
            Some(WRONG),
        ),
        (
            "doctor",
            vec!["doctor", "--connect", &target, "--epmd-port", &port],
            Some(SECRET),
        ),
        (
            "doctor --json",
            vec![
                "doctor",
                "--connect",
                &target,
                "--epmd-port",
                &port,
                "--json",
            ],
            Some(SECRET),
        ),
        (
            "doctor (wrong cookie)",
            vec!["doctor", "--connect", &target, "--epmd-port", &port],
            Some(WRONG),
        ),
        (
            "doctor --json (wrong cookie)",
            vec![
                "doctor",
                "--connect",
                &target,
                "--epmd-port",
                &port,
                "--json",
            ],
            Some(WRONG),
        ),
    ];
    for (what, args, cookie) in oneshots {
        let out = run_with(traced(&args), cookie);
        outputs.push((format!("{what} (exit {:?})", out.status.code()), text(&out)));
    }
    // A cookie with a control character, from each variable.
    for var in ["BEAMLINK_COOKIE", "RELEASE_COOKIE"] {
        let mut c = traced(&["ping", &target, "--epmd-port", &port]);
        c.env(var, format!("{SECRET}\x07"));
        let out = run_with(c, None);
        assert_eq!(out.status.code(), Some(78), "{}", text(&out));
        outputs.push((format!("{var} with a control character"), text(&out)));
    }
    let mut total = 0;
    for (what, output) in &outputs {
        total += output.len();
        assert!(
            !output.contains(SECRET) && !output.contains(WRONG),
            "{what} printed the cookie:\n{output}"
        );
    }
    eprintln!(
        "{} outputs, {} KiB at trace level, no cookie in any",
        outputs.len(),
        total / 1024
    );
}

/// The host pid of a child of `parent` (unshare's forked child), from `/proc/*/stat`.
fn child_of(parent: u32) -> Option<u32> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // The command name is in parentheses and may hold spaces: fields follow the last ')'.
            let ppid: u32 = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            (ppid == parent).then_some(pid)
        })
}

/// `beamlink run` as PID 1 of a new PID namespace (`unshare --pid --fork --mount-proc`, as
/// in a container without an init): tokio's SIGTERM handler works there (PID 1 ignores
/// signals it has no handler for). On SIGTERM it closes its links first (the BEAM sees
/// nodedown `connection_closed`, a monitor on `{beamlink, R}` fires `noconnection`), then
/// unregisters from EPMD, and exits 0 within 5 s.
#[test]
fn sigterm_as_pid_1_closes_links_unregisters_and_exits_0() {
    support::each_release(sigterm_as_pid_1_closes_links_unregisters_and_exits_0_with);
}

fn sigterm_as_pid_1_closes_links_unregisters_and_exits_0_with(otp: Otp) {
    let epmd = Epmd::start();
    let port = epmd.port().to_string();
    let beam = BeamNode::start(otp, epmd.port());
    let alive = unique_name("blpid1");
    let name = format!("{alive}@127.0.0.1");
    let mut command = Command::new("unshare");
    command
        .args(["--pid", "--fork", "--mount-proc", "--kill-child"])
        .arg(support::beamlink_bin())
        .args([
            "run",
            "--name",
            &name,
            "--epmd",
            "client",
            "--epmd-port",
            &port,
            "--connect",
            beam.node_name(),
        ])
        .env("RUST_LOG", "info")
        .env_remove("RELEASE_COOKIE");
    let mut bl = Beamlink::start_with(command, TEST_COOKIE);
    bl.wait_log("nodeup", Duration::from_secs(15));
    let unshare = bl.pid();
    let pid = child_of(unshare).expect("unshare's child");
    let nspid = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find(|l| l.starts_with("NSpid:"))
        .map(str::to_owned)
        .unwrap();
    assert!(nspid.trim().ends_with("\t1"), "not PID 1: {nspid}");
    assert!(epmd.wait_registered(&alive, Duration::from_secs(5)));
    beam.eval(&format!(
        "net_kernel:monitor_nodes(true, [{{node_type, all}}, nodedown_reason]), \
         Mon = erlang:monitor(process, {{beamlink, '{name}'}}), ok"
    ))
    .unwrap();
    let started = Instant::now();
    support::kill(pid, "TERM");
    let status = bl.wait(Duration::from_secs(10));
    let took = started.elapsed();
    eprintln!("PID 1 exited with {status:?} after {took:?}");
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{}", bl.log());
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(
        !epmd.names().iter().any(|(n, _)| *n == alive),
        "still registered"
    );
    let nodedown = beam
        .eval(&format!(
            "receive {{nodedown, '{name}', Info}} -> proplists:get_value(nodedown_reason, Info) \
             after 5000 -> timeout end"
        ))
        .unwrap();
    assert_eq!(nodedown, "connection_closed");
    let down = beam
        .eval("receive {'DOWN', Mon, process, _, Why} -> Why after 5000 -> timeout end")
        .unwrap();
    assert_eq!(down, "noconnection");
    let log = bl.log();
    let at = |needle: &str| {
        log.find(needle)
            .unwrap_or_else(|| panic!("no {needle:?} in:\n{log}"))
    };
    let closed = log.rfind("nodedown").expect("links closed");
    assert!(
        closed < at("node stopped") && at("node stopped") < at("EPMD registrar stopped"),
        "links must close before the EPMD registration goes:\n{log}"
    );
}

/// `beamlink run --epmd client`: the real epmd is killed (SIGKILL) and restarted on its port.
/// beamlink registers again within 3 s (OTP's epmd_reconnect bar), keeps its links, and a
/// BEAM started afterwards finds it through the new epmd and pings it. One-shot commands
/// facing no EPMD exit 69 (`ping` names the address it tried, `names` says what `epmd -names`
/// says); `ERL_EPMD_PORT` is honoured.
#[test]
fn epmd_killed_and_restarted_beamlink_registers_again() {
    support::each_release(epmd_killed_and_restarted_beamlink_registers_again_with);
}

fn epmd_killed_and_restarted_beamlink_registers_again_with(otp: Otp) {
    let epmd = Epmd::start();
    let epmd_port = epmd.port();
    let port = epmd_port.to_string();
    let before = BeamNode::start(otp, epmd_port);
    let alive = unique_name("blepmd");
    let name = format!("{alive}@127.0.0.1");
    let bl = Beamlink::start(
        &[
            "run",
            "--name",
            &name,
            "--epmd",
            "client",
            "--epmd-port",
            &port,
            "--connect",
            before.node_name(),
        ],
        TEST_COOKIE,
    );
    bl.wait_log("nodeup", Duration::from_secs(15));
    assert!(epmd.wait_registered(&alive, Duration::from_secs(5)));
    drop(epmd);
    bl.wait_log("registration lost", Duration::from_secs(5));
    let restarted = Epmd::start_on(Otp::V25, epmd_port);
    let started = Instant::now();
    assert!(
        restarted.wait_registered(&alive, Duration::from_secs(10)),
        "not registered again:\n{}",
        bl.log()
    );
    let took = started.elapsed();
    eprintln!("registered with the restarted epmd after {took:?}");
    assert!(took <= Duration::from_secs(3), "{took:?}");
    let after = BeamNode::start(otp, epmd_port);
    assert_eq!(
        after.eval(&format!("net_adm:ping('{name}')")).unwrap(),
        "pong"
    );
    assert_eq!(
        before
            .eval(&format!("lists:member('{name}', nodes(hidden))"))
            .unwrap(),
        "true",
        "the link survived the EPMD restart"
    );
    assert_eq!(bl.count("nodedown"), 0, "{}", bl.log());

    // One-shots without an EPMD: 69; ping names the address, names says what
    // `epmd -names` says.
    let closed = free_port().to_string();
    let out = run_with(
        beamlink_command(&["ping", "x@127.0.0.1", "--epmd-port", &closed]),
        Some(TEST_COOKIE),
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(69), "ping: {all}");
    assert!(
        all.contains(&format!("127.0.0.1:{closed}")),
        "ping names the address: {all}"
    );
    let out = run_with(
        beamlink_command(&["names", "127.0.0.1", "--epmd-port", &closed]),
        None,
    );
    assert_eq!(out.status.code(), Some(69), "names: {}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "epmd: Cannot connect to local epmd\n"
    );
    let mut c = beamlink_command(&["names", "127.0.0.1"]);
    c.env("ERL_EPMD_PORT", &port);
    let out = run_with(c, None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains(&format!("name {alive} at port")));
}

/// `RUST_LOG` (contract.md: logs go to stderr, filtered by it) takes `target=level`
/// directives: a target set to `warn` silences that target's info lines and leaves the
/// others; a directive that does not parse is reported in a warning and the default level
/// (info for `run`) is used, rather than logging nothing.
///
/// Fails if `init_tracing` ignores `RUST_LOG` or drops the warning for a bad one.
#[test]
fn rust_log_filters_by_target_and_a_bad_filter_is_reported() {
    let run_with_log = |rust_log: &str| {
        let port = free_port().to_string();
        let name = format!("{}@127.0.0.1", unique_name("rustlog"));
        let mut command = beamlink_command(&[
            "run",
            "--name",
            &name,
            "--epmd",
            "serve",
            "--epmd-port",
            &port,
        ]);
        command.env("RUST_LOG", rust_log);
        let mut bl = Beamlink::start_with(command, TEST_COOKIE);
        // Logged by beamlink::epmd (the registrar), before beamlink::node says "node started".
        bl.wait_log("EPMD registration", Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(300));
        bl.terminate(Duration::from_secs(5));
        bl.log()
    };

    let quiet_node = run_with_log("beamlink::node=warn,info");
    assert!(!quiet_node.contains("node started"), "{quiet_node}");
    assert!(
        !quiet_node.contains("not a list of target=level"),
        "{quiet_node}"
    );

    let bad = run_with_log("[span{field=1}]=debug");
    assert!(
        bad.contains("RUST_LOG=\"[span{field=1}]=debug\" is not a list of target=level directives"),
        "{bad}"
    );
    assert!(
        bad.contains("node started"),
        "default level not used: {bad}"
    );
}

/// glibc's secondary malloc arenas of `pid`: each is a 64 MiB reservation aligned to 64 MiB
/// (HEAP_MAX_SIZE on 64-bit), split into an `rw-p` part and a `---p` part, without a name.
fn secondary_malloc_arenas(pid: u32) -> usize {
    const HEAP: u64 = 64 << 20;
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let regions: Vec<(u64, u64)> = maps
        .lines()
        .filter(|l| l.split_whitespace().nth(5).is_none())
        .filter_map(|l| {
            let (a, b) = l.split_whitespace().next()?.split_once('-')?;
            Some((
                u64::from_str_radix(a, 16).ok()?,
                u64::from_str_radix(b, 16).ok()?,
            ))
        })
        .collect();
    let mut count = 0;
    for (i, &(start, _)) in regions.iter().enumerate() {
        if start % HEAP != 0 {
            continue;
        }
        let mut end = start;
        for &(a, b) in &regions[i..] {
            if a != end || end - start >= HEAP {
                break;
            }
            end = b;
        }
        if end - start == HEAP {
            count += 1;
        }
    }
    count
}

/// `beamlink run` keeps one malloc arena (it calls `mallopt(M_ARENA_MAX, 1)`: the long
/// soak's resident memory grew with glibc's per-thread arenas and stayed flat with one), and
/// leaves the choice to the operator who sets `MALLOC_ARENA_MAX`. Checked after a BEAM has
/// connected and sent it messages and rpc calls, so every worker thread has allocated.
///
/// Fails without `one_malloc_arena` (the first beamlink then has an arena per worker).
#[test]
fn run_keeps_one_malloc_arena_unless_the_environment_says_otherwise() {
    support::each_release(run_keeps_one_malloc_arena_unless_the_environment_says_otherwise_with);
}

fn run_keeps_one_malloc_arena_unless_the_environment_says_otherwise_with(otp: Otp) {
    let epmd = Epmd::start();
    let beam = BeamNode::start(otp, epmd.port());
    let mut arenas = Vec::new();
    for arena_max in [None, Some("8")] {
        let name = format!("{}@127.0.0.1", unique_name("arena"));
        let mut command = support::run_command(&epmd, &name, &["--bench-services"]);
        command
            .env_remove("MALLOC_ARENA_MAX")
            .env_remove("GLIBC_TUNABLES");
        if let Some(max) = arena_max {
            command.env("MALLOC_ARENA_MAX", max);
        }
        let bl = support::start_prepared(command);
        let sent = beam
            .eval(&format!(
                "pong = net_adm:ping('{name}'), \
                 [{{rig_sink, '{name}'}} ! {{n, I, binary:copy(<<1>>, 100)}} || I <- lists:seq(1, 20000)], \
                 [erpc:call('{name}', erlang, node, []) || _ <- lists:seq(1, 50)], sent"
            ))
            .unwrap();
        assert_eq!(sent, "sent");
        arenas.push(secondary_malloc_arenas(bl.pid()));
    }
    assert_eq!(arenas[0], 0, "beamlink run has secondary malloc arenas");
    assert!(
        arenas[1] >= 1,
        "with MALLOC_ARENA_MAX=8 the worker threads should have arenas of their own: {arenas:?}"
    );
}
