#![cfg(feature = "interop")]
//! The protocol core against real BEAM nodes of every release in `BEAMLINK_OTP` (25, 27,
//! 29): a hidden link with beamlink as initiator and as acceptor, `Node.ping` both ways,
//! a wrong cookie, ticks, a stopped peer, and the embedded EPMD serving real BEAMs.

mod support;

use std::time::{Duration, Instant};
use support::{BeamNode, Beamlink, Epmd, Otp, TEST_COOKIE, beamlink_oneshot, unique_name};

fn atom(name: &str) -> String {
    format!("'{name}'")
}

fn flags_of(log: &str) -> String {
    log.lines()
        .find(|l| l.contains("nodeup"))
        .and_then(|l| l.split("flags=").nth(1))
        .and_then(|f| f.split_whitespace().next())
        .unwrap_or("?")
        .to_string()
}

#[test]
fn hidden_link_and_ping_in_both_roles() {
    for otp in Otp::from_env() {
        let epmd = Epmd::start();
        let port = epmd.port().to_string();
        let beam = BeamNode::start(otp, epmd.port());
        let beam_name = beam.node_name().to_string();

        // beamlink dials the BEAM.
        let initiator = format!("{}@127.0.0.1", unique_name("blinit"));
        let bl = Beamlink::start(
            &[
                "run",
                "--name",
                &initiator,
                "--epmd",
                "client",
                "--epmd-port",
                &port,
                "--connect",
                &beam_name,
            ],
            TEST_COOKIE,
        );
        bl.wait_log("nodeup", Duration::from_secs(10));
        beam.wait_until(
            &format!("lists:member({}, nodes(hidden))", atom(&initiator)),
            "true",
            Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!(
            beam.eval(&format!("lists:member({}, nodes())", atom(&initiator)))
                .unwrap(),
            "false",
            "{otp}: beamlink must not be a visible node"
        );
        assert_eq!(
            beam.eval(&format!(
                "lists:member({}, nodes(connected))",
                atom(&initiator)
            ))
            .unwrap(),
            "true"
        );
        assert_eq!(
            beam.eval(&format!("net_adm:ping({})", atom(&initiator)))
                .unwrap(),
            "pong"
        );
        eprintln!(
            "{otp}: beamlink as initiator, negotiated flags {}",
            flags_of(&bl.log())
        );

        // The BEAM dials beamlink.
        let acceptor = format!("{}@127.0.0.1", unique_name("blacc"));
        let bl2 = Beamlink::start(
            &[
                "run",
                "--name",
                &acceptor,
                "--epmd",
                "client",
                "--epmd-port",
                &port,
            ],
            TEST_COOKIE,
        );
        bl2.wait_log("node started", Duration::from_secs(10));
        assert_eq!(
            beam.eval(&format!("net_adm:ping({})", atom(&acceptor)))
                .unwrap(),
            "pong"
        );
        assert_eq!(
            beam.eval(&format!("lists:member({}, nodes(hidden))", atom(&acceptor)))
                .unwrap(),
            "true"
        );
        assert_eq!(
            beam.eval(&format!("lists:member({}, nodes())", atom(&acceptor)))
                .unwrap(),
            "false"
        );
        bl2.wait_log("nodeup", Duration::from_secs(5));
        eprintln!(
            "{otp}: beamlink as acceptor, negotiated flags {}",
            flags_of(&bl2.log())
        );

        // beamlink ping.
        let out = beamlink_oneshot(
            &["ping", &beam_name, "--epmd-port", &port],
            Some(TEST_COOKIE),
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{otp}: beamlink ping failed: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.starts_with("pong"), "{otp}: {stdout}");
        eprintln!("{otp}: {}", stdout.trim());
    }
}

#[test]
fn a_wrong_cookie_is_named_and_never_printed() {
    let wrong = "not-the-cookie-4b1d";
    for otp in Otp::from_env() {
        let epmd = Epmd::start();
        let beam = BeamNode::start(otp, epmd.port());
        let out = beamlink_oneshot(
            &[
                "ping",
                beam.node_name(),
                "--epmd-port",
                &epmd.port().to_string(),
            ],
            Some(wrong),
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(77), "{otp}: {stdout} {stderr}");
        assert!(stdout.contains(beam.node_name()), "{otp}: {stdout}");
        assert!(stdout.contains("cookie mismatch"), "{otp}: {stdout}");
        assert!(
            !stdout.contains(wrong) && !stderr.contains(wrong),
            "{otp}: cookie printed"
        );
        // At trace level too.
        let mut c = support::beamlink_command(&[
            "ping",
            beam.node_name(),
            "--epmd-port",
            &epmd.port().to_string(),
        ]);
        c.env("BEAMLINK_COOKIE", wrong).env("RUST_LOG", "trace");
        let out = c.output().unwrap();
        let all = [out.stdout, out.stderr].concat();
        assert!(
            !String::from_utf8_lossy(&all).contains(wrong),
            "{otp}: cookie in trace output"
        );
    }
}

/// net_ticktime 4 on both sides: 30 s of idleness keeps the link; a SIGSTOPped BEAM is
/// declared down by beamlink, and a SIGSTOPped beamlink by the BEAM, within the BEAM's
/// bounds ((I-1)/I .. (I+1)/I of net_ticktime, I = 4: 3 s to 5 s).
#[test]
fn ticks_keep_idle_links_and_detect_stopped_peers() {
    let releases = Otp::from_env();
    let handles: Vec<_> = releases
        .into_iter()
        .map(|otp| std::thread::spawn(move || ticks_for(otp)))
        .collect();
    for h in handles {
        if let Err(panic) = h.join() {
            std::panic::resume_unwind(panic);
        }
    }
}

const NODEDOWN_COLLECTOR: &str = r#"register(nd, spawn(fun() ->
    net_kernel:monitor_nodes(true, [{node_type, all}, nodedown_reason]),
    Loop = fun L(Acc) -> receive {get, From} -> From ! {nd, lists:reverse(Acc)}, L(Acc);
                                 M -> L([{erlang:monotonic_time(millisecond), M} | Acc]) end end,
    Loop([]) end)), ok"#;

const NODEDOWN_EVENTS: &str = "nd ! {get, self()}, receive {nd, A} -> [element(1, E) || {_, E} <- A] after 2000 -> timeout end";

fn ticks_for(otp: Otp) {
    let epmd = Epmd::start();
    let port = epmd.port().to_string();
    let beam = BeamNode::builder(otp, epmd.port())
        .arg("-kernel")
        .arg("net_ticktime")
        .arg("4")
        .start();
    beam.eval(NODEDOWN_COLLECTOR).unwrap();
    let name = format!("{}@127.0.0.1", unique_name("bltick"));
    let bl = Beamlink::start(
        &[
            "run",
            "--name",
            &name,
            "--epmd",
            "client",
            "--epmd-port",
            &port,
            "--net-ticktime",
            "4",
            "--connect",
            beam.node_name(),
        ],
        TEST_COOKIE,
    );
    bl.wait_log("nodeup", Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(30));
    assert_eq!(
        bl.count("nodedown"),
        0,
        "{otp}: link dropped while idle:\n{}",
        bl.log()
    );
    assert_eq!(
        beam.eval(NODEDOWN_EVENTS).unwrap(),
        "[nodeup]",
        "{otp}: BEAM saw the link drop"
    );

    // The BEAM stops: beamlink declares it down.
    beam_signal(&beam, "STOP");
    let stopped = Instant::now();
    bl.wait_log("nodedown", Duration::from_secs(10));
    let detected = stopped.elapsed();
    beam_signal(&beam, "CONT");
    eprintln!("{otp}: beamlink declared the stopped BEAM down after {detected:?}");
    assert!(
        detected >= Duration::from_millis(2500) && detected <= Duration::from_secs(7),
        "{otp}: detection after {detected:?}, outside 3-5 s (with scheduling slack)"
    );

    // beamlink stops: the BEAM declares it down.
    let deadline = Instant::now() + Duration::from_secs(20);
    while bl.count("nodeup") < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        bl.count("nodeup") >= 2,
        "{otp}: no reconnect:\n{}",
        bl.log()
    );
    beam.wait_until(
        &format!("lists:member('{name}', nodes(hidden))"),
        "true",
        Duration::from_secs(10),
    )
    .unwrap();
    bl.signal("STOP");
    let stopped = Instant::now();
    beam.wait_until(
        &format!("lists:member('{name}', nodes(hidden))"),
        "false",
        Duration::from_secs(10),
    )
    .unwrap();
    let detected = stopped.elapsed();
    bl.signal("CONT");
    eprintln!("{otp}: the BEAM declared the stopped beamlink down after {detected:?}");
    assert!(
        detected >= Duration::from_millis(2500) && detected <= Duration::from_secs(7),
        "{otp}: BEAM detection after {detected:?}"
    );
}

fn beam_signal(beam: &BeamNode, name: &str) {
    let _ = std::process::Command::new("kill")
        .args([&format!("-{name}"), &beam.os_pid().to_string()])
        .status();
}

/// `beamlink epmd` serves real BEAM nodes: they register with it, find each other through
/// it, and `beamlink names` prints what `epmd -names` prints.
#[test]
fn the_embedded_epmd_serves_real_beams() {
    for otp in Otp::from_env() {
        let port = support::free_port();
        let ports = port.to_string();
        let mut server = Beamlink::start(&["epmd", "--epmd-port", &ports], TEST_COOKIE);
        server.wait_log("serving EPMD", Duration::from_secs(5));
        let a = BeamNode::start(otp, port);
        let b = BeamNode::start(otp, port);
        assert_eq!(
            b.eval(&format!("net_adm:ping('{}')", a.node_name()))
                .unwrap(),
            "pong",
            "{otp}: BEAMs cannot find each other through the embedded EPMD"
        );
        let out = beamlink_oneshot(&["names", "127.0.0.1", "--epmd-port", &ports], None);
        assert!(out.status.success());
        let theirs = std::process::Command::new("epmd")
            .args(["-port", &ports, "-names"])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&theirs.stdout),
            "{otp}: beamlink names differs from epmd -names"
        );
        let ours: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(String::from)
            .collect();
        assert_eq!(ours.len(), 3, "{otp}: {ours:?}");
        assert_eq!(
            ours[0],
            format!("epmd: up and running on port {port} with data:")
        );
        let alive_a = a.node_name().split('@').next().unwrap().to_string();
        assert!(
            ours.iter()
                .any(|l| l.starts_with(&format!("name {alive_a} at port ")))
        );
        drop(a);
        drop(b);
        assert_eq!(
            server
                .terminate(Duration::from_secs(5))
                .and_then(|s| s.code()),
            Some(0)
        );
    }
}

/// A node started with a dynamic name (`-name undefined@127.0.0.1 -dist_listen false`, OTP
/// 23+; `net_kernel` requires `-dist_listen false` for it) asks beamlink to name it
/// (`DFLAG_NAME_ME`): beamlink gives it a name on its host and a creation in the `named:`
/// status, as `dist_util` does, and the connection comes up under that name.
#[test]
fn a_name_me_peer_is_named_by_beamlink() {
    for otp in Otp::from_env() {
        let epmd = Epmd::start();
        let port = epmd.port().to_string();
        let acceptor = format!("{}@127.0.0.1", unique_name("blnameme"));
        let bl = Beamlink::start(
            &[
                "run",
                "--name",
                &acceptor,
                "--epmd",
                "client",
                "--epmd-port",
                &port,
            ],
            TEST_COOKIE,
        );
        bl.wait_log("node started", Duration::from_secs(10));
        // net_adm:ping needs a name already; connect_node is what names the node.
        let eval = format!(
            "R = net_kernel:connect_node('{acceptor}'), \
             io:format(\"named ~p ~p ~p ~p~n\", [R, node(), erlang:system_info(creation), \
             rpc:call('{acceptor}', erlang, nodes, [hidden])]), halt()."
        );
        let out = otp
            .command("erl")
            .args(["-name", "undefined@127.0.0.1", "-dist_listen", "false"])
            .args(["-setcookie", TEST_COOKIE, "-noshell", "-eval", &eval])
            .env("ERL_EPMD_PORT", &port)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let line = stdout
            .lines()
            .find_map(|l| l.strip_prefix("named "))
            .unwrap_or_else(|| panic!("{otp}: {stdout} {}", String::from_utf8_lossy(&out.stderr)));
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields[0], "true", "{otp}: connect_node: {line}");
        let name = fields[1].trim_matches('\'');
        assert!(
            name.ends_with("@127.0.0.1") && !name.starts_with("undefined"),
            "{otp}: named {name}"
        );
        assert_ne!(fields[2], "0", "{otp}: creation");
        assert!(fields[3].contains(name), "{otp}: beamlink's nodes: {line}");
        bl.wait_log(&format!("nodeup peer={name}"), Duration::from_secs(5));
        eprintln!("{otp}: NAME_ME peer named {name}: {}", flags_of(&bl.log()));
    }
}
