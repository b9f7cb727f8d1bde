#![cfg(feature = "interop")]
//! EPMD-less clusters (`--dist-port`, the BEAM's `-erl_epmd_port`), end to end in the
//! simulated Swarm (`support::Swarm::epmd_less`): one release node per OTP release in
//! `BEAMLINK_OTP`, each in its own container, started as Elixir's release docs say
//! (`-start_epmd false -erl_epmd_port 6789` in `vm.args` and `remote.vm.args`), meshing among
//! themselves through DNS on that one port. Three `beamlink run --dist-port 6789` join it,
//! each in a container of its own (every host has its own address, so all share the port):
//! one with `--connect` to every node, one through DNS discovery (`--dns-query
//! --peer-basename`), and one with no peers that the BEAMs dial by name. The one-shots
//! (`ping`, `nodes`, `doctor`) work with `--dist-port` too, and `doctor` without it names the
//! port to pass.
//!
//! This binary starts no `epmd` at all (test binaries run one after another): the process
//! table is checked for one, and nothing may listen on port 4369 in any container, beamlink's
//! embedded EPMD included.

mod support;

use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::process::Output;
use std::time::Duration;
use support::{
    BASENAME, Beamlink, Container, Otp, Swarm, TEST_COOKIE, beamlink_command_in_netns, wait_for,
};

/// The port every node listens on and dials: the one Elixir's `vm.args` template shows.
const PORT: u16 = 6789;
const PORT_ARG: &str = "6789";
/// How long to wait for something that takes a few poll intervals.
const PATIENCE: Duration = Duration::from_secs(45);

#[test]
fn beamlink_joins_an_epmd_less_cluster_and_the_beams_dial_it() {
    let otps = Otp::from_env();
    let mut swarm = Swarm::builder()
        .nodes(otps.len())
        .otps(otps)
        .epmd_less(PORT)
        .start();
    eprintln!("[epmd-less] {}", swarm.describe());
    let query = swarm.query();
    let server = swarm.dns_server();
    let nodes = swarm.node_names();

    let connect_box = swarm.add_client(false);
    let dns_box = swarm.add_client(false);
    let quiet_box = swarm.add_client(false);
    let oneshot_box = swarm.add_client(false);
    let mut connect_args = vec!["run", "--dist-port", PORT_ARG, "--name", "statics"];
    for node in &nodes {
        connect_args.extend(["--connect", node.as_str()]);
    }
    let dns_args = [
        "run",
        "--dist-port",
        PORT_ARG,
        "--name",
        "disco",
        "--dns-query",
        &query,
        "--dns-server",
        &server,
        "--peer-basename",
        BASENAME,
        "--poll-interval",
        "1s",
    ];
    let statics = connect_box.beamlink(&connect_args);
    let disco = dns_box.beamlink(&dns_args);
    // ERL_DIST_PORT is --dist-port's environment variable.
    let mut quiet_command =
        beamlink_command_in_netns(quiet_box.netns(), &["run", "--name", "quiet"]);
    quiet_command.env("ERL_DIST_PORT", PORT_ARG);
    let quiet = Beamlink::start_with(quiet_command, TEST_COOKIE);

    let named = |prefix: &str, container: &Container| {
        format!("{prefix}@{}", container.ipv4().expect("an IPv4 client"))
    };
    let statics_name = named("statics", &connect_box);
    let disco_name = named("disco", &dns_box);
    let quiet_name = named("quiet", &quiet_box);
    for (beamlink, name) in [(&statics, &statics_name), (&disco, &disco_name)] {
        for node in &nodes {
            let needle = format!("nodeup peer={node} ");
            assert!(
                wait_for(|| beamlink.log().contains(&needle), PATIENCE),
                "{name} did not connect to {node}; log:\n{}",
                beamlink.log()
            );
        }
    }
    quiet.wait_log(&format!("node started node={quiet_name}"), PATIENCE);
    for beamlink in [&statics, &disco, &quiet] {
        let log = beamlink.log();
        assert!(
            log.contains(&format!("listen=Some([::]:{PORT})")),
            "beamlink listens on [::]:{PORT}; log:\n{log}"
        );
        assert!(!log.contains("EPMD"), "beamlink spoke of EPMD; log:\n{log}");
    }

    for node in swarm.nodes() {
        let release = node.release();
        let otp = node.otp();
        // The BEAM dials the beamlink that has no peers, by name, on the shared port.
        assert_eq!(
            release.rpc(&format!(r#"Node.ping(:"{quiet_name}")"#)),
            ":pong",
            "{otp}: Node.ping({quiet_name})"
        );
        let hidden = release.rpc("Node.list(:hidden)");
        let visible = release.rpc("Node.list()");
        for beamlink in [&statics_name, &disco_name, &quiet_name] {
            let atom = format!(r#":"{beamlink}""#);
            assert!(
                hidden.contains(&atom),
                "{otp}: Node.list(:hidden) lacks {beamlink}: {hidden}"
            );
            assert!(
                !visible.contains(&atom),
                "{otp}: Node.list() shows {beamlink}: {visible}"
            );
            contract_rows(release, otp, node.name(), beamlink);
        }
        eprintln!(
            "[epmd-less] {otp}: {} lists {statics_name}, {disco_name} and {quiet_name} as hidden; contract rows hold",
            node.name()
        );
    }

    // The one-shots, from a container of their own: they dial on the port, listen nowhere.
    let oneshot = |args: &[&str]| -> Output {
        beamlink_command_in_netns(oneshot_box.netns(), args)
            .env("BEAMLINK_COOKIE", TEST_COOKIE)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run beamlink")
    };
    let first = &nodes[0];
    let ping = oneshot(&["ping", "--dist-port", PORT_ARG, first]);
    assert_exit(&ping, 0, "ping --dist-port");
    assert!(stdout(&ping).starts_with(&format!("pong from {first}")));
    let discovery = [
        "--dns-query",
        &query,
        "--dns-server",
        &server,
        "--peer-basename",
        BASENAME,
    ];
    let mut nodes_args = vec!["nodes", "--dist-port", PORT_ARG, "--json"];
    nodes_args.extend(discovery);
    let view = oneshot(&nodes_args);
    assert_exit(&view, 0, "nodes --dist-port");
    for node in &nodes {
        assert!(stdout(&view).contains(node.as_str()), "nodes lacks {node}");
    }
    let mut doctor_args = vec!["doctor", "--dist-port", PORT_ARG];
    doctor_args.extend(discovery);
    let doctor = oneshot(&doctor_args);
    assert_exit(&doctor, 0, "doctor --dist-port");
    assert!(
        stdout(&doctor).contains(&format!(
            "EPMD-less: not asked; port {PORT} is the dist port"
        )),
        "{}",
        stdout(&doctor)
    );
    // Without --dist-port, the doctor finds no EPMD but the port that answers.
    let lost = oneshot(&["doctor", "--connect", first]);
    assert_exit(&lost, 78, "doctor without --dist-port");
    let ip = first.split_once('@').expect("a node name").1;
    let advice = format!(
        "no EPMD at {ip}:4369, but {PORT} answers the distribution handshake: pass --dist-port {PORT}"
    );
    assert!(stdout(&lost).contains(&advice), "{}", stdout(&lost));
    // Refused configurations.
    let no_base = oneshot(&[
        "nodes",
        "--dist-port",
        PORT_ARG,
        "--dns-query",
        &query,
        "--dns-server",
        &server,
    ]);
    assert_exit(&no_base, 78, "nodes --dist-port without --peer-basename");
    assert!(String::from_utf8_lossy(&no_base.stderr).contains("pass --peer-basename"));
    let port_clash = oneshot(&["run", "--dist-port", PORT_ARG, "--listen", "[::]:9100"]);
    assert_exit(&port_clash, 78, "run --dist-port 6789 --listen [::]:9100");
    eprintln!(
        "[epmd-less] ping, nodes and doctor work with --dist-port; doctor names the port without it"
    );

    // No EPMD anywhere: no epmd process, nothing on 4369 in any container.
    let netns: Vec<&str> = swarm
        .nodes()
        .iter()
        .map(|n| n.container().netns())
        .chain([&connect_box, &dns_box, &quiet_box, &oneshot_box].map(|c| c.netns()))
        .collect();
    assert_no_epmd(&netns);
    let addresses: Vec<IpAddr> = swarm
        .nodes()
        .iter()
        .map(|n| n.ip())
        .chain([&connect_box, &dns_box, &quiet_box].map(|c| IpAddr::V4(c.ipv4().expect("IPv4"))))
        .collect();
    for ip in addresses {
        let epmd = SocketAddr::new(ip, 4369);
        assert!(
            TcpStream::connect_timeout(&epmd, Duration::from_secs(2)).is_err(),
            "something listens on {epmd}"
        );
    }
    drop((statics, disco, quiet));
}

/// The contract's rows about a beamlink `r`, asked on `node` through its release.
fn contract_rows(release: &support::Release, otp: Otp, node: &str, r: &str) {
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
        assert_eq!(release.rpc(&expr), want, "{otp} on {node}: {expr}");
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn assert_exit(output: &Output, code: i32, what: &str) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "{what}: stdout:\n{}\nstderr:\n{}",
        stdout(output),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Fails if the process table holds a live `epmd` in one of `netns`, or, under CI (where
/// test binaries run one at a time and nothing else does), anywhere. On a shared developer
/// machine other people's epmds in other namespaces are listed, not failed.
fn assert_no_epmd(netns: &[&str]) {
    let ours: Vec<u64> = netns
        .iter()
        .map(|ns| {
            std::fs::metadata(format!("/run/netns/{ns}"))
                .unwrap_or_else(|e| panic!("namespace {ns}: {e}"))
                .ino()
        })
        .collect();
    let strict = std::env::var_os("CI").is_some();
    let mut foreign = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("read /proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // `pid (comm) state ...`; a zombie is the `epmd -daemon` parent that already exited.
        let Some((comm, rest)) = stat.split_once(" (").and_then(|(_, r)| r.rsplit_once(") "))
        else {
            continue;
        };
        if comm != "epmd" || rest.starts_with('Z') {
            continue;
        }
        let net = std::fs::metadata(format!("/proc/{pid}/ns/net")).map(|m| m.ino());
        let mine = net.as_ref().is_ok_and(|ino| ours.contains(ino));
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
            .unwrap_or_default();
        assert!(
            !mine && !strict,
            "an epmd runs during the EPMD-less test: pid {pid} `{}`{}",
            cmdline.trim(),
            if mine {
                ", in one of the test's namespaces"
            } else {
                " (under CI nothing else runs: a test before this one left it behind)"
            }
        );
        foreign.push(format!("{pid} `{}`", cmdline.trim()));
    }
    if !foreign.is_empty() {
        eprintln!(
            "[epmd-less] epmd processes of other users of this machine, outside the test's \
             namespaces: {foreign:?}"
        );
    }
}
