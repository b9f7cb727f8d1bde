#![cfg(feature = "interop")]
//! `beamlink doctor` and `beamlink nodes` against real BEAM nodes of the releases in
//! `BEAMLINK_OTP`: each failure an operator meets is reproduced and the doctor must name its
//! cause and fix (and exit with the right sysexits code); a healthy cluster of mixed releases
//! is all green; `nodes` shows a node kept out of the mesh.
//!
//! Failures that need a host of their own (an EPMD limited to loopback, a distribution port
//! bound elsewhere, a virtual IP) run in network namespaces (`support/netns.rs`).

mod support;

use beamlink::proto::digest::Cookie;
use beamlink::proto::epmd::{Alive2Request, AliveName};
use beamlink::proto::flags::DistFlags;
use beamlink::proto::handshake::{Acceptor, LocalNode, Status};
use beamlink::proto::node_name::NodeName;
use beamlink::transport::handshake::{AcceptPolicy, accept};
use serde_json::Value;
use std::net::Ipv4Addr;
use std::process::{Child, Stdio};
use std::time::Duration;
use support::netns::{Dns, Net, NsEpmd};
use support::{
    BeamNode, Beamlink, Epmd, Otp, Release, ReleaseConfig, TEST_COOKIE, beamlink_command,
    beamlink_oneshot, unique_name, wait_for,
};

const OTHER_COOKIE: &str = "another_cookie_51c3";
const LOOPBACK: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// A finished one-shot command.
struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Outcome {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", self.stdout, self.stderr))
    }

    fn assert_code(&self, code: i32, what: &str) {
        assert_eq!(
            self.code, code,
            "{what}: exit code; stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
    }

    /// Neither cookie used by these tests appears anywhere in the output.
    fn assert_no_cookie(&self) {
        for cookie in [TEST_COOKIE, OTHER_COOKIE] {
            assert!(
                !self.stdout.contains(cookie) && !self.stderr.contains(cookie),
                "the cookie was printed:\n{}\n{}",
                self.stdout,
                self.stderr
            );
        }
    }
}

fn beamlink(args: &[&str]) -> Outcome {
    let out = beamlink_oneshot(args, Some(TEST_COOKIE));
    let outcome = Outcome {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    outcome.assert_no_cookie();
    outcome
}

/// `(subject, step, cause)` of every failed check.
fn failures(report: &Value) -> Vec<(String, String, String)> {
    checks(report)
        .into_iter()
        .filter(|c| c["status"] == "fail")
        .map(|c| {
            (
                c["subject"].as_str().unwrap_or("").to_string(),
                c["step"].as_str().unwrap_or("").to_string(),
                c["cause"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn checks(report: &Value) -> Vec<Value> {
    report["checks"].as_array().cloned().unwrap_or_default()
}

/// The failed check of `subject` at `step`, which must have `cause`.
fn failed_check(report: &Value, subject: &str, step: &str, cause: &str) -> Value {
    let found = checks(report).into_iter().find(|c| {
        c["subject"] == subject && c["step"] == step && c["status"] == "fail" && c["cause"] == cause
    });
    found.unwrap_or_else(|| {
        panic!(
            "no failed {step} check with cause {cause} for {subject}; failures: {:?}\n{}",
            failures(report),
            serde_json::to_string_pretty(report).unwrap_or_default()
        )
    })
}

fn fix_of(check: &Value) -> String {
    check["fix"].as_str().unwrap_or("").to_string()
}

fn text_of(check: &Value) -> String {
    let evidence: Vec<&str> = check["evidence"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e.as_str()).collect())
        .unwrap_or_default();
    format!(
        "{} | {} | {}",
        check["summary"].as_str().unwrap_or(""),
        evidence.join(" | "),
        fix_of(check)
    )
}

/// Makes `nodes` ping each other until each lists all the others in `nodes()`.
fn mesh(nodes: &[&BeamNode]) {
    for (i, a) in nodes.iter().enumerate() {
        for b in &nodes[i + 1..] {
            assert_eq!(
                a.eval(&format!("net_adm:ping('{}')", b.node_name()))
                    .unwrap(),
                "pong",
                "{} -> {}",
                a.node_name(),
                b.node_name()
            );
        }
    }
    for a in nodes {
        a.wait_until(
            "length(nodes())",
            &(nodes.len() - 1).to_string(),
            Duration::from_secs(10),
        )
        .unwrap();
    }
}

/// An `erl -sname` node (BeamNode speaks long names only); killed on drop.
struct ShortNode {
    child: Child,
    alive: String,
}

impl ShortNode {
    fn start(otp: Otp, epmd: &Epmd) -> ShortNode {
        let alive = unique_name("short");
        let child = otp
            .command("erl")
            .args(["-noshell", "-sname", &alive, "-setcookie", TEST_COOKIE])
            .args(["-start_epmd", "false"])
            .env("ERL_EPMD_PORT", epmd.port().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{otp}: cannot start erl -sname: {e}"));
        let node = ShortNode { child, alive };
        assert!(
            epmd.wait_registered(&node.alive, Duration::from_secs(30)),
            "{otp}: erl -sname {} did not register",
            node.alive
        );
        node
    }
}

impl Drop for ShortNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_healthy_cluster_of_mixed_releases_is_all_green() {
    let releases = Otp::from_env();
    let epmd = Epmd::start();
    let nodes: Vec<BeamNode> = (0..3)
        .map(|i| BeamNode::start(releases[i % releases.len()], epmd.port()))
        .collect();
    mesh(&nodes.iter().collect::<Vec<_>>());
    // Discovery as in production: a DNS name, and every node its address's EPMD lists.
    let dns = Dns::start(LOOPBACK, &[("cluster.beamlink.test", vec![LOOPBACK])]);
    let port = epmd.port().to_string();
    let server = dns.server();
    let common = [
        "--dns-query",
        "cluster.beamlink.test",
        "--dns-server",
        &server,
        "--epmd-port",
        &port,
    ];

    let json = beamlink(&[&["doctor", "--json"][..], &common].concat());
    json.assert_code(0, "doctor on a healthy cluster");
    let report = json.json();
    assert_eq!(report["healthy"], true);
    assert_eq!(report["counts"]["fail"], 0, "{}", json.stdout);
    assert_eq!(report["counts"]["warn"], 0, "{}", json.stdout);
    for node in &nodes {
        let rpc = checks(&report)
            .into_iter()
            .find(|c| c["subject"] == node.node_name() && c["step"] == "rpc")
            .unwrap_or_else(|| panic!("no rpc check for {}: {}", node.node_name(), json.stdout));
        assert_eq!(rpc["status"], "ok");
        let summary = rpc["summary"].as_str().unwrap_or("");
        assert!(
            summary.contains(&format!("OTP {}", node.otp().release())),
            "{summary}"
        );
    }
    let mesh_check = checks(&report)
        .into_iter()
        .find(|c| c["step"] == "mesh")
        .expect("a mesh check");
    assert_eq!(mesh_check["status"], "ok", "{}", json.stdout);

    let text = beamlink(&[&["doctor"][..], &common].concat());
    text.assert_code(0, "doctor, text");
    assert!(text.stdout.contains("healthy"), "{}", text.stdout);
    assert!(!text.stdout.contains("[FAIL]") && !text.stdout.contains("[warn]"));
    assert!(
        !text.stdout.contains('\x1b'),
        "no colour when stdout is not a terminal"
    );
    eprintln!("{}", text.stdout);

    let view = beamlink(&[&["nodes", "--json"][..], &common].concat());
    view.assert_code(0, "nodes on a healthy cluster");
    let view = view.json();
    assert_eq!(view["missing_links"], Value::Array(Vec::new()));
    let listed = view["nodes"].as_array().expect("nodes");
    assert_eq!(listed.len(), 3, "{view}");
    for node in &nodes {
        let entry = listed
            .iter()
            .find(|n| n["name"] == node.node_name())
            .unwrap_or_else(|| panic!("{} missing from {view}", node.node_name()));
        assert_eq!(entry["otp_release"], node.otp().release());
        assert_eq!(entry["visible"], true);
        assert_eq!(entry["connected"].as_array().map(Vec::len), Some(2));
        assert!(
            !entry["hidden"]
                .as_array()
                .unwrap()
                .iter()
                .any(|h| h.as_str().unwrap_or("").starts_with("beamlink-nodes-")),
            "our own connection is left out: {entry}"
        );
    }
    let table = beamlink(&[&["nodes"][..], &common].concat());
    table.assert_code(0, "nodes, text");
    assert!(
        table
            .stdout
            .contains("full mesh: every pair of the 3 visible nodes is connected"),
        "{}",
        table.stdout
    );

    // --watch: one JSON document per line per poll, until SIGTERM (exit 0).
    let mut watch = Beamlink::start_with(
        beamlink_command(
            &[
                &["nodes", "--watch", "--json", "--poll-interval", "200ms"][..],
                &common,
            ]
            .concat(),
        ),
        TEST_COOKIE,
    );
    let rounds = |watch: &Beamlink| {
        watch
            .log()
            .lines()
            .filter(|l| l.starts_with('{'))
            .map(|l| serde_json::from_str::<Value>(l).expect("one JSON document per line"))
            .collect::<Vec<_>>()
    };
    assert!(
        wait_for(|| rounds(&watch).len() >= 3, Duration::from_secs(30)),
        "{}",
        watch.log()
    );
    for round in rounds(&watch) {
        assert_eq!(round["nodes"].as_array().map(Vec::len), Some(3), "{round}");
        assert_eq!(round["missing_links"], Value::Array(Vec::new()));
    }
    let status = watch.terminate(Duration::from_secs(5));
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{}", watch.log());
}

#[test]
fn cookie_short_names_host_names_and_unknown_names_are_told_apart() {
    for otp in Otp::from_env() {
        let epmd = Epmd::start();
        let port = epmd.port().to_string();
        let good = BeamNode::start(otp, epmd.port());
        let other_cookie = BeamNode::builder(otp, epmd.port())
            .cookie(OTHER_COOKIE)
            .start();
        let short = ShortNode::start(otp, &epmd);
        let host_named = BeamNode::builder(otp, epmd.port())
            .host("web-1.beamlink.invalid")
            .start();
        let short_dialled = format!("{}@127.0.0.1", short.alive);
        let host_alive = host_named.node_name().split('@').next().unwrap();
        let host_dialled = format!("{host_alive}@127.0.0.1");
        let nosuch = format!("{}@127.0.0.1", unique_name("nosuch"));

        let all = beamlink(&[
            "doctor",
            "--json",
            "--epmd-port",
            &port,
            "--connect",
            good.node_name(),
            "--connect",
            other_cookie.node_name(),
            "--connect",
            &short_dialled,
            "--connect",
            &host_dialled,
            "--connect",
            &nosuch,
        ]);
        // Configuration mistakes (short names, a host-name node) outrank the rest.
        all.assert_code(78, &format!("{otp}: several failures"));
        let report = all.json();
        assert!(
            !failures(&report)
                .iter()
                .any(|(s, _, _)| s == good.node_name()),
            "{otp}: the good node passes: {:?}",
            failures(&report)
        );

        let cookie = failed_check(
            &report,
            other_cookie.node_name(),
            "cookie",
            "cookie_mismatch",
        );
        assert!(
            text_of(&cookie).contains("RELEASE_COOKIE"),
            "{otp}: {}",
            text_of(&cookie)
        );

        let sname = failed_check(&report, &short_dialled, "handshake", "short_names");
        let fix = fix_of(&sname);
        assert!(
            fix.contains("RELEASE_DISTRIBUTION=name")
                && fix.contains(&format!("RELEASE_NODE={}@<its IP>", short.alive)),
            "{otp}: {fix}"
        );

        let named = failed_check(&report, &host_dialled, "handshake", "name_not_ip");
        assert!(
            text_of(&named).contains(host_named.node_name()),
            "{otp}: {}",
            text_of(&named)
        );

        let unknown = failed_check(&report, &nosuch, "epmd", "not_registered");
        let good_alive = good.node_name().split('@').next().unwrap();
        assert!(
            text_of(&unknown).contains(good_alive),
            "{otp}: what EPMD lists is shown: {}",
            text_of(&unknown)
        );

        // One failure at a time: each class has its exit code.
        let alone = |node: &str| beamlink(&["doctor", "--epmd-port", &port, "--connect", node]);
        let c = alone(other_cookie.node_name());
        c.assert_code(77, &format!("{otp}: cookie mismatch"));
        assert!(
            c.stdout.contains("[FAIL] cookie") && c.stdout.contains("the cookies differ"),
            "{otp}: {}",
            c.stdout
        );
        alone(&nosuch).assert_code(69, &format!("{otp}: not registered"));
        alone(&short_dialled).assert_code(78, &format!("{otp}: short names"));

        // Run where the release runs: its environment says short names before any peer does.
        let out = beamlink_command(&["doctor", "--json", "--epmd-port", &port, "--connect"])
            .arg(good.node_name())
            .env("BEAMLINK_COOKIE", TEST_COOKIE)
            .env("RELEASE_DISTRIBUTION", "sname")
            .env("RELEASE_NODE", "myapp")
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(78),
            "{otp}: sname in the environment"
        );
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        let env = failed_check(&report, "environment", "config", "short_names");
        assert!(
            fix_of(&env).contains("RELEASE_NODE=myapp@<the node's IP>"),
            "{}",
            fix_of(&env)
        );
        eprintln!("{otp}:\n{}", c.stdout);
    }
}

/// Answers every handshake as a node whose flags are `flags` would.
struct Accepting;

impl AcceptPolicy for Accepting {
    fn status_for(&mut self, _peer: &NodeName, _flags: DistFlags) -> Status {
        Status::Ok
    }
    fn replace_old(&mut self, _peer: &NodeName) {}
}

#[test]
fn a_peer_without_the_flags_otp_26_requires_is_named_with_the_flags() {
    // A third-party node of the OTP 25 era: every OTP 25 mandatory flag, none of OTP 26's.
    let flags = DistFlags::MANDATORY_25
        | DistFlags::DIST_MONITOR
        | DistFlags::DIST_MONITOR_NAME
        | DistFlags::SPAWN;
    for otp in Otp::from_env() {
        let epmd = Epmd::start_with(otp);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let alive = unique_name("oldpeer");
        let name = NodeName::parse(&format!("{alive}@127.0.0.1")).unwrap();
        let (registration, server) = rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let request = Alive2Request::new(AliveName::new(&alive).unwrap(), port);
            let epmd_addr = ([127, 0, 0, 1], epmd.port()).into();
            let registration =
                beamlink::epmd::register(epmd_addr, &request, Duration::from_secs(5))
                    .await
                    .unwrap();
            let local = LocalNode {
                name: name.clone(),
                flags,
                creation: 7,
                cookie: Cookie::new(TEST_COOKIE),
            };
            let server = tokio::spawn(async move {
                while let Ok((stream, addr)) = listener.accept().await {
                    let machine = Acceptor::new(local.clone(), 0x1234_5678);
                    let _ = accept(
                        stream,
                        addr,
                        machine,
                        Duration::from_secs(5),
                        &mut Accepting,
                    )
                    .await;
                }
            });
            (registration, server)
        });
        let out = beamlink(&[
            "doctor",
            "--json",
            "--epmd-port",
            &epmd.port().to_string(),
            "--connect",
            name.as_str(),
        ]);
        out.assert_code(76, &format!("{otp} epmd: missing flags"));
        let report = out.json();
        let check = failed_check(&report, name.as_str(), "flags", "missing_flags");
        let text = text_of(&check);
        assert!(
            text.contains("UNLINK_ID") && text.contains("V4_NC") && text.contains("OTP 26"),
            "{text}"
        );
        if otp == Otp::from_env()[0] {
            let shown = beamlink(&[
                "doctor",
                "--epmd-port",
                &epmd.port().to_string(),
                "--connect",
                name.as_str(),
            ]);
            eprintln!("{}", shown.stdout);
        }
        server.abort();
        drop(registration);
        rt.shutdown_timeout(Duration::from_secs(5));
    }
}

#[test]
fn a_name_already_in_use_is_not_taken_over() {
    for otp in Otp::from_env() {
        let epmd = Epmd::start();
        let port = epmd.port().to_string();
        let beam = BeamNode::start(otp, epmd.port());
        let taken = format!("{}@127.0.0.1", unique_name("taken"));
        let running = Beamlink::start_with(
            support::run_command_at(&port, &taken, &["--connect", beam.node_name()]),
            TEST_COOKIE,
        );
        running.wait_log("nodeup", Duration::from_secs(15));
        let out = beamlink(&[
            "doctor",
            "--json",
            "--name",
            &taken,
            "--epmd-port",
            &port,
            "--connect",
            beam.node_name(),
        ]);
        out.assert_code(78, &format!("{otp}: name in use"));
        let report = out.json();
        let local = failed_check(&report, "beamlink", "config", "name_in_use");
        assert!(text_of(&local).contains(&taken), "{}", text_of(&local));
        let alive = failed_check(&report, beam.node_name(), "handshake", "name_in_use");
        assert!(
            text_of(&alive).contains("status alive"),
            "{}",
            text_of(&alive)
        );
        // We answered `false` to `alive`: the running node keeps its connection.
        assert_eq!(
            beam.eval(&format!("lists:member('{taken}', nodes(hidden))"))
                .unwrap(),
            "true",
            "{otp}"
        );
        assert_eq!(running.count("nodedown"), 0, "{}", running.log());
        if otp == Otp::from_env()[0] {
            let shown = beamlink(&[
                "doctor",
                "--name",
                &taken,
                "--epmd-port",
                &port,
                "--connect",
                beam.node_name(),
            ]);
            eprintln!("{}", shown.stdout);
        }
    }
}

#[test]
fn an_empty_dns_answer_and_a_wrong_basename_are_named() {
    for otp in Otp::from_env() {
        let epmd = Epmd::start();
        let port = epmd.port().to_string();
        let beam = BeamNode::start(otp, epmd.port());
        let dns = Dns::start(LOOPBACK, &[("app.beamlink.test", vec![LOOPBACK])]);
        let server = dns.server();

        let empty = beamlink(&[
            "doctor",
            "--json",
            "--dns-query",
            "nothing.beamlink.test",
            "--dns-server",
            &server,
            "--epmd-port",
            &port,
        ]);
        empty.assert_code(69, "no records");
        failed_check(
            &empty.json(),
            "nothing.beamlink.test",
            "dns",
            "dns_no_records",
        );

        let wrong = beamlink(&[
            "doctor",
            "--json",
            "--dns-query",
            "app.beamlink.test",
            "--dns-server",
            &server,
            "--peer-basename",
            "wrongname",
            "--epmd-port",
            &port,
        ]);
        wrong.assert_code(69, &format!("{otp}: wrong basename"));
        let report = wrong.json();
        let check = failed_check(&report, "wrongname@127.0.0.1", "epmd", "not_registered");
        let text = text_of(&check);
        let alive = beam.node_name().split('@').next().unwrap();
        assert!(
            text.contains(alive) && text.contains("--peer-basename"),
            "{otp}: {text}"
        );
        // One address and no tasks.<name>: a virtual IP is only mentioned, not claimed.
        assert!(
            !failures(&report).iter().any(|(_, _, c)| c == "virtual_ip"),
            "{:?}",
            failures(&report)
        );
    }
}

#[test]
fn nodes_shows_the_links_a_node_kept_out_of_the_mesh_lacks() {
    let releases = Otp::from_env();
    let otp = |i: usize| releases[i % releases.len()];
    let epmd = Epmd::start();
    let port = epmd.port().to_string();
    let a = BeamNode::start(otp(0), epmd.port());
    let b = BeamNode::start(otp(1), epmd.port());
    mesh(&[&a, &b]);
    // Started after the others, never connected: BEAM nodes mesh only when told to.
    let late = BeamNode::start(otp(2), epmd.port());
    // Another cookie: it cannot mesh with anyone.
    let stranger = BeamNode::builder(otp(0), epmd.port())
        .cookie(OTHER_COOKIE)
        .start();

    let three = [
        "--epmd-port",
        &port,
        "--connect",
        a.node_name(),
        "--connect",
        b.node_name(),
        "--connect",
        late.node_name(),
    ];
    let view = beamlink(&[&["nodes", "--json"][..], &three].concat());
    view.assert_code(0, "nodes: every node answered");
    let view = view.json();
    let pairs: Vec<(String, String, Value, Value)> = view["missing_links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["a"].as_str().unwrap().to_string(),
                l["b"].as_str().unwrap().to_string(),
                l["a_lists_b"].clone(),
                l["b_lists_a"].clone(),
            )
        })
        .collect();
    let mut expected = vec![
        sorted_pair(a.node_name(), late.node_name()),
        sorted_pair(b.node_name(), late.node_name()),
    ];
    expected.sort();
    let mut got: Vec<(String, String)> = pairs
        .iter()
        .map(|(x, y, _, _)| (x.clone(), y.clone()))
        .collect();
    got.sort();
    assert_eq!(got, expected, "{view}");
    assert!(
        pairs
            .iter()
            .all(|(_, _, ab, ba)| *ab == Value::Bool(false) && *ba == Value::Bool(false)),
        "{view}"
    );

    let table = beamlink(&[&["nodes"][..], &three].concat());
    table.assert_code(0, "nodes, text");
    assert!(
        table.stdout.contains("missing links (2;"),
        "{}",
        table.stdout
    );
    assert!(
        table.stdout.contains(&format!(
            "{} -- {}: neither lists the other",
            expected[0].0, expected[0].1
        )),
        "{}",
        table.stdout
    );
    eprintln!("{}", table.stdout);

    let doctor = beamlink(&[&["doctor", "--json"][..], &three].concat());
    doctor.assert_code(69, "doctor: not meshed");
    let check = failed_check(&doctor.json(), "cluster", "mesh", "not_meshed");
    assert!(text_of(&check).contains(late.node_name()));

    // With the stranger: it is unreachable (cookie) and misses a link to everyone.
    let four = [&three[..], &["--connect", stranger.node_name()][..]].concat();
    let view = beamlink(&[&["nodes", "--json"][..], &four].concat());
    view.assert_code(77, "nodes: a node refused our cookie");
    let view = view.json();
    let entry = view["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == stranger.node_name())
        .cloned()
        .expect("the stranger is listed");
    assert_eq!(entry["error"]["cause"], "cookie_mismatch", "{entry}");
    let with_stranger = view["missing_links"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["a"] == stranger.node_name() || l["b"] == stranger.node_name())
        .count();
    assert_eq!(with_stranger, 3, "{view}");
    let table = beamlink(&[&["nodes"][..], &four].concat());
    assert!(
        table.stdout.contains("UNREACHABLE (cookie)"),
        "{}",
        table.stdout
    );
    let doctor = beamlink(&[&["doctor"][..], &four].concat());
    doctor.assert_code(77, "doctor: cookie outranks the mesh");
    assert!(
        doctor.stdout.contains("likely why it never meshed"),
        "{}",
        doctor.stdout
    );
}

fn sorted_pair(x: &str, y: &str) -> (String, String) {
    if x < y {
        (x.to_string(), y.to_string())
    } else {
        (y.to_string(), x.to_string())
    }
}

#[test]
fn in_namespaces_a_guarded_epmd_a_closed_port_and_a_virtual_ip_are_named() {
    let releases = Otp::from_env();
    let otp = |i: usize| releases[i % releases.len()];
    let mut net = Net::create();
    let guarded_ns = net.add_ns(2);
    let closed_ns = net.add_ns(3);
    let task_ns = [net.add_ns(4), net.add_ns(5)];
    let _vip_ns = net.add_ns(9);
    let ip = |i: u8| net.ip(i);
    let dns = Dns::start(
        net.gateway(),
        &[
            ("svc", vec![ip(9)]),
            ("tasks.svc", vec![ip(4), ip(5)]),
            ("broken", vec![ip(2), ip(3)]),
        ],
    );

    // EPMD hardened with ERL_EPMD_ADDRESS=127.0.0.1: the node runs, nobody else finds it.
    let _guarded_epmd = NsEpmd::start(otp(0), &guarded_ns, Some("127.0.0.1"));
    let _guarded = BeamNode::builder(otp(0), 4369)
        .name("app")
        .host(ip(2).to_string())
        .netns(&guarded_ns)
        .start();
    // The distribution port bound to loopback only: EPMD answers, the port does not.
    let _closed_epmd = NsEpmd::start(otp(1), &closed_ns, None);
    let _closed = BeamNode::builder(otp(1), 4369)
        .name("app")
        .host(ip(3).to_string())
        .netns(&closed_ns)
        .arg("-kernel")
        .arg("inet_dist_use_interface")
        .arg("{127,0,0,1}")
        .start();
    // Two tasks of a service, meshing through their own DNS poller (as dns_cluster does).
    let mut task_epmds = Vec::new();
    let mut tasks = Vec::new();
    for (i, ns) in task_ns.iter().enumerate() {
        let host = ip(4 + i as u8);
        task_epmds.push(NsEpmd::start(otp(2 + i), ns, None));
        tasks.push(Release::start(
            otp(2 + i),
            ReleaseConfig::new(format!("labyrinth@{host}"), 4369)
                .netns(ns)
                .env("DNS_CLUSTER_QUERY", "tasks.svc")
                .env("DNS_CLUSTER_RESOLVER", dns.server())
                .env("DNS_POLL_INTERVAL_MS", "300"),
        ));
    }
    let other = |i: usize| format!(":\"{}\"", tasks[1 - i].node_name());
    for (i, task) in tasks.iter().enumerate() {
        let meshed = wait_for(
            || task.rpc("Node.list()") == format!("[{}]", other(i)),
            Duration::from_secs(30),
        );
        assert!(meshed, "{} did not mesh: {}", task.node_name(), task.log());
    }
    let server = dns.server();
    let doctor = |query: &str, basename: &str| {
        beamlink(&[
            "doctor",
            "--json",
            "--dns-query",
            query,
            "--dns-server",
            &server,
            "--peer-basename",
            basename,
        ])
    };

    let healthy = doctor("tasks.svc", "labyrinth");
    healthy.assert_code(0, "the tasks");
    assert_eq!(healthy.json()["counts"]["fail"], 0, "{}", healthy.stdout);
    let view = beamlink(&[
        "nodes",
        "--json",
        "--dns-query",
        "tasks.svc",
        "--dns-server",
        &server,
    ]);
    view.assert_code(0, "nodes in namespaces, EPMD discovery");
    let view = view.json();
    assert_eq!(view["nodes"].as_array().map(Vec::len), Some(2), "{view}");
    assert_eq!(view["missing_links"], Value::Array(Vec::new()), "{view}");

    let vip = doctor("svc", "labyrinth");
    vip.assert_code(78, "the service's virtual IP");
    let report = vip.json();
    let check = failed_check(&report, "svc", "dns", "virtual_ip");
    assert!(
        fix_of(&check).contains("--dns-query tasks.svc"),
        "{}",
        fix_of(&check)
    );
    let at_vip = failed_check(
        &report,
        &format!("labyrinth@{}", ip(9)),
        "epmd",
        "epmd_unreachable",
    );
    // With tasks.svc's answer as evidence, the EPMD check at the virtual IP says what it is
    // and nothing about firewalls or ERL_EPMD_ADDRESS.
    assert!(
        fix_of(&at_vip).contains(&format!("{} is svc's virtual IP", ip(9)))
            && fix_of(&at_vip).contains("--dns-query tasks.svc")
            && !fix_of(&at_vip).contains("firewall"),
        "{}",
        fix_of(&at_vip)
    );

    let shown = beamlink(&[
        "doctor",
        "--dns-query",
        "svc",
        "--dns-server",
        &server,
        "--peer-basename",
        "labyrinth",
    ]);
    eprintln!("{}", shown.stdout);

    let broken = doctor("broken", "app");
    broken.assert_code(69, "EPMD and port unreachable");
    let report = broken.json();
    let epmd = failed_check(
        &report,
        &format!("app@{}", ip(2)),
        "epmd",
        "epmd_unreachable",
    );
    assert!(
        fix_of(&epmd).contains("ERL_EPMD_ADDRESS"),
        "{}",
        fix_of(&epmd)
    );
    let port = failed_check(
        &report,
        &format!("app@{}", ip(3)),
        "tcp",
        "port_unreachable",
    );
    assert!(
        fix_of(&port).contains("inet_dist_listen_min"),
        "{}",
        fix_of(&port)
    );
    let text = beamlink(&[
        "doctor",
        "--dns-query",
        "broken",
        "--dns-server",
        &server,
        "--peer-basename",
        "app",
    ]);
    eprintln!("{}", text.stdout);
    drop(tasks);
}

/// `--dist-port` against a node that registers with EPMD: nothing answers at the dist port,
/// but the EPMD at its host lists it, so the doctor says it uses EPMD and to drop
/// `--dist-port` (the other way round, EPMD-less nodes without `--dist-port`, is in
/// `interop_epmdless`, which runs no epmd at all).
#[test]
fn a_dist_port_for_a_node_that_uses_epmd_is_named() {
    for otp in Otp::from_env() {
        let epmd = Epmd::start();
        let port = epmd.port().to_string();
        let node = BeamNode::start(otp, epmd.port());
        let unused = support::free_port().to_string();
        let out = beamlink(&[
            "doctor",
            "--json",
            "--epmd-port",
            &port,
            "--dist-port",
            &unused,
            "--connect",
            node.node_name(),
        ]);
        out.assert_code(78, &format!("{otp}: --dist-port for a node with EPMD"));
        let report = out.json();
        let check = failed_check(&report, node.node_name(), "tcp", "uses_epmd");
        let alive = node.node_name().split('@').next().unwrap();
        let text = text_of(&check);
        assert!(
            text.contains(&format!(
                "--dist-port {unused}: 127.0.0.1:{unused} refuses connections"
            )) && text.contains(&format!("lists {alive} at port")),
            "{otp}: {text}"
        );
        assert!(fix_of(&check).contains("drop --dist-port"), "{otp}: {text}");
    }
}
