#![cfg(feature = "interop")]
//! TLS distribution through the `beamlink` binary against real BEAM nodes started with
//! `-proto_dist inet_tls -ssl_dist_optfile FILE` (mutual TLS: `verify_peer` and
//! `fail_if_no_peer_cert` on the BEAM), for every release in `BEAMLINK_OTP` (25, 27, 29;
//! OTP 25 and 27 speak TLS 1.2 there, OTP 29 TLS 1.3).
//!
//! * `run` initiating (`--connect`) and accepting (the BEAM dials it by name through EPMD),
//!   once with the BEAM's own option file (`--tls-optfile`) and once with the PEM flags: the
//!   BEAM sees it in `nodes(hidden)`, and `net_adm:ping`, `rpc:call(R, erlang, nodes,
//!   [connected])` and `gen_server:call({beamlink, R}, info)` (which shows the TLS version)
//!   answer. Fails without the dialler's or the listener's TLS (`src/transport/dialler.rs`
//!   `connect`, `src/transport/listener.rs` `accept_one`), or without the 4-byte framing
//!   (`DistStream::framing`).
//! * `ping` and `nodes` over TLS; `doctor`'s `tls` check.
//! * Failures, each with its message and exit code, none of them hanging: plain `ping` to
//!   the TLS node (78, at once: its TLS alert), TLS `ping` to a plain node (78, no TLS
//!   answer within the setup time), no client certificate, an unknown CA, an expired
//!   certificate, a name mismatch (77), and `doctor`'s causes for both mismatches; a plain
//!   BEAM dialling a TLS `run` and a TLS BEAM dialling a plain `run` (the log names it).
//!   The key file permissions are checked in `interop_tls.rs`
//!   (`bad_tls_settings_stop_the_binary_with_exit_78`).

mod support;

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};
use support::{
    BeamNode, Beamlink, Epmd, Otp, Pki, TEST_COOKIE, beamlink_oneshot, tls_beam, unique_name,
};

/// `beamlink run` named `alive@127.0.0.1`, registered with `epmd`, with `extra` flags.
fn run(epmd: &Epmd, alive: &str, extra: &[&str]) -> (Beamlink, String) {
    let name = format!("{}@127.0.0.1", unique_name(alive));
    let port = epmd.port().to_string();
    let mut args = vec![
        "run",
        "--name",
        &name,
        "--epmd",
        "client",
        "--epmd-port",
        &port,
    ];
    args.extend_from_slice(extra);
    let bl = Beamlink::start(&args, TEST_COOKIE);
    bl.wait_log("node started", Duration::from_secs(10));
    (bl, name)
}

fn eval(beam: &BeamNode, expr: &str) -> String {
    beam.eval(expr)
        .unwrap_or_else(|e| panic!("{expr} on {}: {e:?}", beam.node_name()))
}

/// What the BEAM must see of a beamlink `r` connected over TLS `version`.
fn assert_beam_sees(beam: &BeamNode, r: &str, version: &str, what: &str) {
    let r = format!("'{r}'");
    let deadline = Instant::now() + Duration::from_secs(10);
    while eval(beam, &format!("lists:member({r}, nodes(hidden))")) != "true" {
        assert!(
            Instant::now() < deadline,
            "{what}: {r} never in nodes(hidden)"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(eval(beam, &format!("net_adm:ping({r})")), "pong", "{what}");
    let nodes = eval(beam, &format!("rpc:call({r}, erlang, nodes, [connected])"));
    assert!(nodes.contains(beam.node_name()), "{what}: {nodes}");
    let info = eval(
        beam,
        &format!(
            "[maps:get(tls, P) || P <- maps:get(peers, gen_server:call({{beamlink, {r}}}, \
             info)), maps:get(name, P) =:= node()]"
        ),
    );
    assert!(
        info.contains(&format!("version => '{version}'")) && info.contains("cipher_suite"),
        "{what}: tls in :info = {info}"
    );
}

fn oneshot(args: &[&str]) -> (Output, String, Duration) {
    let started = Instant::now();
    let out = beamlink_oneshot(args, Some(TEST_COOKIE));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out, text, started.elapsed())
}

/// `beamlink ping target` with `tls` flags: the exit code and what it printed, checked to
/// end well inside the setup time plus the command's own start.
fn ping(epmd: &Epmd, target: &str, tls: &[&str], what: &str) -> (i32, String) {
    let port = epmd.port().to_string();
    let args = [&["ping", target, "--epmd-port", &port][..], tls].concat();
    let (out, text, took) = oneshot(&args);
    eprintln!("{what}: exit {:?} in {took:?}: {text}", out.status.code());
    assert!(took < Duration::from_secs(9), "{what}: took {took:?}");
    (out.status.code().unwrap_or(-1), text)
}

struct Flags {
    optfile: String,
    pem: Vec<String>,
}

impl Flags {
    fn new(pki: &Pki, optfile: &Path) -> Flags {
        let p = |f: &str| pki.path(f).display().to_string();
        Flags {
            optfile: optfile.display().to_string(),
            pem: vec![
                "--tls-cert".into(),
                p("node.pem"),
                "--tls-key".into(),
                p("node.key"),
                "--tls-ca".into(),
                p("ca.pem"),
            ],
        }
    }

    fn optfile(&self) -> Vec<&str> {
        vec!["--tls-optfile", &self.optfile]
    }

    fn pem(&self) -> Vec<&str> {
        self.pem.iter().map(String::as_str).collect()
    }
}

#[test]
fn run_ping_nodes_and_doctor_join_a_tls_cluster_in_both_roles() {
    let pki = Pki::new();
    let optfile = pki.beam_optfile(None);
    let flags = Flags::new(&pki, &optfile);
    for otp in Otp::from_env() {
        let version = if otp == Otp::V29 {
            "tlsv1.3"
        } else {
            "tlsv1.2"
        };
        let epmd = Epmd::start_with(otp);
        let beam = tls_beam(otp, &epmd, &optfile);
        let target = beam.node_name().to_string();
        for (how, tls) in [("optfile", flags.optfile()), ("PEM", flags.pem())] {
            // Initiating.
            let what = format!("{otp} {how}, run --connect");
            let extra = [&["--connect", &target][..], &tls].concat();
            let (mut bl, r) = run(&epmd, "tlsdial", &extra);
            bl.wait_log("nodeup", Duration::from_secs(15));
            assert_beam_sees(&beam, &r, version, &what);
            assert!(bl.terminate(Duration::from_secs(10)).is_some(), "{what}");

            // Accepting: the BEAM finds it through EPMD and dials.
            let what = format!("{otp} {how}, the BEAM dials run");
            let (mut bl, r) = run(&epmd, "tlsacc", &tls);
            assert_eq!(
                eval(&beam, &format!("net_adm:ping('{r}')")),
                "pong",
                "{what}"
            );
            assert_beam_sees(&beam, &r, version, &what);
            // The BEAM's pong can overtake our nodeup log line: the connection starts
            // reading before the node announces it.
            bl.wait_log("nodeup", Duration::from_secs(10));
            assert!(bl.terminate(Duration::from_secs(10)).is_some(), "{what}");

            let (code, text) = ping(&epmd, &target, &tls, &format!("{otp} {how} ping"));
            assert_eq!(code, 0, "{otp} {how}: {text}");
            assert!(text.contains(&format!("pong from {target}")), "{text}");
        }

        let port = epmd.port().to_string();
        let nodes_args = [
            &["nodes", "--connect", &target, "--epmd-port", &port][..],
            &flags.optfile(),
        ]
        .concat();
        let (out, text, _) = oneshot(&nodes_args);
        assert_eq!(out.status.code(), Some(0), "{otp} nodes: {text}");
        assert!(text.contains(&target), "{otp} nodes: {text}");

        let doctor_args = [
            &["doctor", "--connect", &target, "--epmd-port", &port][..],
            &flags.pem(),
        ]
        .concat();
        let (out, text, _) = oneshot(&doctor_args);
        assert_eq!(out.status.code(), Some(0), "{otp} doctor: {text}");
        assert!(
            text.contains(&format!("TLS {version} with")),
            "{otp}: {text}"
        );
        beam.kill();
    }
}

#[test]
fn tls_failures_are_named_with_their_exit_codes() {
    let pki = Pki::new();
    let optfile = pki.beam_optfile(None);
    let flags = Flags::new(&pki, &optfile);
    let p = |f: &str| pki.path(f).display().to_string();
    let d = pki.dir.display();
    pki.write(
        "wrong-name.conf",
        &format!(
            r#"[{{client, [{{certfile, "{d}/node.pem"}}, {{keyfile, "{d}/node.key"}}, {{cacertfile, "{d}/ca.pem"}}, {{server_name_indication, "wrong.example"}}]}}]."#
        ),
        0o644,
    );
    let wrong_name = p("wrong-name.conf");
    let (node_pem, node_key) = (p("node.pem"), p("node.key"));
    let (ca, other_ca) = (p("ca.pem"), p("other-ca.pem"));
    let (expired_pem, expired_key) = (p("expired.pem"), p("expired.key"));
    for (n, otp) in Otp::from_env().into_iter().enumerate() {
        let epmd = Epmd::start_with(otp);
        let beam = tls_beam(otp, &epmd, &optfile);
        let target = beam.node_name().to_string();
        let plain = BeamNode::builder(otp, epmd.port())
            .name(unique_name("plainbeam"))
            .start();
        let plain_target = plain.node_name().to_string();

        // Plain to TLS: the BEAM's alert names it at once.
        let started = Instant::now();
        let (code, text) = ping(&epmd, &target, &[], &format!("{otp} plain to TLS"));
        assert_eq!(code, 78, "{otp}: {text}");
        assert!(text.contains("speaks TLS distribution"), "{otp}: {text}");
        assert!(text.contains("--tls-optfile"), "{otp}: {text}");
        assert!(started.elapsed() < Duration::from_secs(3), "{otp}");

        // TLS, no client certificate: the BEAM (fail_if_no_peer_cert) refuses.
        let (code, text) = ping(
            &epmd,
            &target,
            &["--tls-ca", &ca],
            &format!("{otp} no cert"),
        );
        assert_eq!(code, 77, "{otp}: {text}");
        assert!(
            text.contains("requires a client certificate") || text.contains("handshake_failure"),
            "{otp}: {text}"
        );

        // The BEAM's certificate from a CA we do not trust.
        let args = [
            "--tls-cert",
            &node_pem,
            "--tls-key",
            &node_key,
            "--tls-ca",
            &other_ca,
        ];
        let (code, text) = ping(&epmd, &target, &args, &format!("{otp} unknown CA"));
        assert_eq!(code, 77, "{otp}: {text}");
        assert!(text.contains("does not chain to our CA"), "{otp}: {text}");

        // Our certificate has expired: the BEAM refuses it.
        let args = [
            "--tls-cert",
            &expired_pem,
            "--tls-key",
            &expired_key,
            "--tls-ca",
            &ca,
        ];
        let (code, text) = ping(&epmd, &target, &args, &format!("{otp} expired"));
        assert_eq!(code, 77, "{otp}: {text}");
        assert!(
            text.contains("expired") || text.contains("refused our certificate"),
            "{otp}: {text}"
        );

        // The BEAM's certificate does not carry the name we check.
        let args = ["--tls-optfile", &wrong_name];
        let (code, text) = ping(&epmd, &target, &args, &format!("{otp} name mismatch"));
        assert_eq!(code, 77, "{otp}: {text}");
        assert!(
            text.contains("not valid for \"wrong.example\""),
            "{otp}: {text}"
        );

        // doctor names both mismatches as their own causes, with the fix.
        let port = epmd.port().to_string();
        let doctor = |peer: &str, tls: &[&str]| {
            let args = [
                &[
                    "doctor",
                    "--json",
                    "--timeout",
                    "2s",
                    "--connect",
                    peer,
                    "--epmd-port",
                    &port,
                ][..],
                tls,
            ]
            .concat();
            oneshot(&args)
        };
        let (out, text, took) = doctor(&target, &[]);
        assert_eq!(out.status.code(), Some(78), "{otp}: {text}");
        assert!(text.contains("\"cause\": \"tls_peer\""), "{otp}: {text}");
        assert!(text.contains("--tls-optfile"), "{otp}: {text}");
        assert!(took < Duration::from_secs(5), "{otp}: {took:?}");
        let (out, text, took) = doctor(&plain_target, &flags.optfile());
        assert_eq!(out.status.code(), Some(78), "{otp}: {text}");
        assert!(text.contains("\"cause\": \"not_tls\""), "{otp}: {text}");
        assert!(took < Duration::from_secs(6), "{otp}: {took:?}");

        // TLS to a plain node: no TLS answer, bounded by the setup time (7 s). Once: it
        // costs the whole setup time.
        if n == 0 {
            let (code, text) = ping(
                &epmd,
                &plain_target,
                &flags.optfile(),
                &format!("{otp} TLS to plain"),
            );
            assert_eq!(code, 78, "{otp}: {text}");
            assert!(text.contains("plain TCP distribution"), "{otp}: {text}");
        }

        // A plain BEAM dials a TLS run, and the TLS BEAM a plain run: each run names it.
        let (tls_run, r) = run(&epmd, "tlsrun", &flags.optfile());
        assert_eq!(
            eval(&plain, &format!("net_adm:ping('{r}')")),
            "pang",
            "{otp}"
        );
        tls_run.wait_log(
            "spoke plain TCP distribution to our TLS listener",
            Duration::from_secs(10),
        );
        let (plain_run, r) = run(&epmd, "plainrun", &[]);
        assert_eq!(
            eval(&beam, &format!("net_adm:ping('{r}')")),
            "pang",
            "{otp}"
        );
        plain_run.wait_log("speaks TLS distribution", Duration::from_secs(10));
        assert!(
            plain_run.log().contains("--tls-optfile"),
            "{}",
            plain_run.log()
        );

        beam.kill();
        plain.kill();
    }
}
