//! `scripts/demo`: beamlink joins a simulated Docker Swarm service through DNS, end to end,
//! narrated for a person. It is the test harness's own swarm (`support::Swarm`: network
//! namespaces as containers, an epmd and a `labyrinth` release node in each, dnsmasq playing
//! Swarm's DNS), so the demo and the swarm tests share one description of it; and since it is
//! a test target (`harness = false`), `scripts/test` runs it too: every step asserts what it
//! shows.
//!
//! Steps: the swarm; what DNS answers inside a container; `beamlink run --dns-query ...` in a
//! container of its own, until it is connected to every task; a real remote shell
//! (`bin/labyrinth remote`) on a release node asking the cluster about beamlink; `beamlink
//! nodes`; SIGTERM and teardown.
//!
//! `cargo test --all-features --test demo -- --keep` leaves everything running until
//! Enter or Ctrl-C. `BEAMLINK_BIN` picks the binary (`scripts/demo` passes the release build).
//! Needs root (network namespaces); a test filter that does not match "demo" skips it, as
//! libtest would, and `--list` lists it.

mod support;

use std::time::{Duration, Instant};
use support::{BASENAME, Swarm, beamlink_bin, beamlink_command_in_netns, full_mesh};

/// Release nodes in the service (one per OTP release of `BEAMLINK_OTP`, round-robin).
const TASKS: usize = 3;
/// How long beamlink may take to connect to every task (a few poll intervals).
const PATIENCE: Duration = Duration::from_secs(60);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        println!("demo: test");
        return;
    }
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    if !filters.is_empty() && !filters.iter().any(|f| "demo".contains(f.as_str())) {
        return;
    }
    let keep = args.iter().any(|a| a == "--keep");
    let started = Instant::now();
    println!(
        "beamlink demo: a hidden Rust node joins a (simulated) Docker Swarm service through DNS"
    );

    step(
        1,
        "Starting a simulated swarm: service labyrinth of stack maze",
    );
    let mut swarm = Swarm::builder().nodes(TASKS).start();
    say(&format!(
        "bridge {} {}/24 (the \"overlay network\"; no route out of it)",
        swarm.bridge(),
        swarm.gateway()
    ));
    say(&format!(
        "dnsmasq on {} (pid {}) plays Swarm's DNS: {} = one A record per running task",
        swarm.dns_server(),
        swarm.dns_pid().unwrap_or(0),
        swarm.query()
    ));
    for node in swarm.nodes() {
        say(&format!(
            "container {}  {}  {}  (BEAM pid {})",
            node.container().netns(),
            node.name(),
            node.otp(),
            node.release().os_pid()
        ));
    }
    // The tasks find each other through DNS on their own poll; the demo shows that mesh, so it
    // waits for it (the last task to answer joined DNS last).
    let meshed = support::wait_for(|| full_mesh(&swarm.statuses()), PATIENCE);
    assert!(
        meshed,
        "the release nodes did not mesh through DNS within {PATIENCE:?}: {:?}",
        swarm.statuses()
    );
    say(&format!(
        "up, and meshed through DNS, in {:.1}s",
        started.elapsed().as_secs_f64()
    ));

    let client = swarm.add_client(false);
    let ns = client.netns().to_owned();
    let query = swarm.query();
    step(
        2,
        &format!("What DNS answers inside a container (getent ahostsv4 {query})"),
    );
    let answer = support::netns::exec(&ns, &["getent", "ahostsv4", &query]);
    let mut ips: Vec<String> = answer
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect();
    ips.sort();
    ips.dedup();
    let want: Vec<String> = swarm.records().iter().map(|ip| ip.to_string()).collect();
    say(&format!("{query} -> {}", ips.join(" ")));
    say("(a Swarm service name without tasks. would give one virtual IP: never dial that)");
    assert_eq!(ips, want, "DNS inside the container answers every task");

    let bl_ip = client.ipv4().expect("the client container has IPv4");
    let bl_node = format!("beamlink@{bl_ip}");
    let run_args = [
        "run",
        "--name",
        "beamlink",
        "--dns-query",
        &query,
        "--peer-basename",
        BASENAME,
        "--poll-interval",
        "2s",
    ];
    step(
        3,
        &format!("Starting beamlink in its own container {ns} ({bl_ip})"),
    );
    say(&format!(
        "BEAMLINK_COOKIE=<the cluster's cookie> {} {}",
        beamlink_bin(),
        run_args.join(" ")
    ));
    let mut beamlink = client.beamlink(&run_args);
    let connected = support::wait_for(|| beamlink.count("nodeup") >= TASKS, PATIENCE);
    say("its log (stderr), trimmed:");
    for line in beamlink.log().lines().filter(|l| {
        [
            "node name uses",
            "node started",
            "DNS answer",
            "nodeup",
            "cannot connect",
        ]
        .iter()
        .any(|k| l.contains(k))
    }) {
        say(&format!("  {}", trim_log_line(line)));
    }
    assert!(
        connected,
        "beamlink did not connect to the {TASKS} tasks within {PATIENCE:?}:\n{}",
        beamlink.log()
    );

    let first = &swarm.nodes()[0];
    step(
        4,
        &format!(
            "A release node's view, from a real remote shell: bin/labyrinth remote on {} ({})",
            first.name(),
            first.otp()
        ),
    );
    let others: Vec<&str> = swarm.nodes()[1..].iter().map(|n| n.name()).collect();
    // Each expression, and the names its answer must contain.
    for (expr, names) in [
        ("Node.list()".to_owned(), others.clone()),
        ("Node.list(:hidden)".to_owned(), vec![bl_node.as_str()]),
        (
            format!(":rpc.call(:\"{bl_node}\", :erlang, :nodes, [:connected])"),
            swarm.nodes().iter().map(|n| n.name()).collect(),
        ),
        (
            format!(
                "Map.take(GenServer.call({{:beamlink, :\"{bl_node}\"}}, :info), [:name, :version, :uptime_ms])"
            ),
            vec![bl_node.as_str()],
        ),
    ] {
        let value = first.release().remote(&expr);
        say(&format!("iex> {expr}"));
        say(&value);
        for name in names {
            assert!(value.contains(name), "{expr} should show {name}: {value}");
        }
    }
    say("Node.list(): the other release nodes (they found each other through DNS);");
    say("Node.list(:hidden): beamlink (and remote shells while they run);");
    say("beamlink's nodes(:connected): every release node;");
    say(":info: beamlink's own map (name, version, uptime; and peers with address and flags).");

    step(5, "The cluster as beamlink sees it: beamlink nodes");
    let mut nodes = beamlink_command_in_netns(
        &ns,
        &["nodes", "--dns-query", &query, "--peer-basename", BASENAME],
    );
    let out = nodes
        .env("BEAMLINK_COOKIE", support::TEST_COOKIE)
        .output()
        .expect("run beamlink nodes");
    let text = String::from_utf8_lossy(&out.stdout);
    for line in text.lines() {
        say(&format!("  {line}"));
    }
    assert!(
        out.status.success(),
        "beamlink nodes: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for node in swarm.nodes() {
        assert!(
            text.contains(node.name()),
            "beamlink nodes lists {}",
            node.name()
        );
    }

    if keep {
        step(6, "Left running until Enter or Ctrl-C (--keep)");
        say(&format!(
            "a remote shell on a release node (RELEASE_COOKIE: TEST_COOKIE in tests/support/mod.rs): {}",
            swarm.nodes()[0].release().remote_shell_hint()
        ));
        say(&format!(
            "a shell inside beamlink's container: ip netns exec {ns} bash"
        ));
        say(&format!(
            "ask beamlink: ip netns exec {ns} env BEAMLINK_COOKIE=... {} nodes --dns-query {query} --peer-basename {BASENAME}",
            beamlink_bin()
        ));
        wait_for_enter_or_ctrl_c();
    }

    step(
        if keep { 7 } else { 6 },
        "SIGTERM to beamlink, then teardown",
    );
    let status = beamlink.terminate(Duration::from_secs(10));
    let stopped: Vec<String> = beamlink
        .log()
        .lines()
        .filter(|l| l.contains("shutting down") || l.contains("node stopped"))
        .map(trim_log_line)
        .collect();
    say(&format!("beamlink on SIGTERM: {}", stopped.join("; ")));
    assert!(
        status.is_some_and(|s| s.success()),
        "beamlink exits 0 on SIGTERM: {status:?}\n{}",
        beamlink.log()
    );
    drop(beamlink);
    drop(swarm);
    say("release nodes, epmds, dnsmasq, namespaces and the bridge removed");
    println!("\ndone in {:.1}s", started.elapsed().as_secs_f64());
}

fn step(n: u32, title: &str) {
    println!("\n[{n}] {title}");
}

fn say(text: &str) {
    println!("      {text}");
}

/// A log line without its timestamp and module path.
fn trim_log_line(line: &str) -> String {
    let rest = line.split_once("Z ").map_or(line, |(_, r)| r).trim_start();
    let rest = match rest.split_once(": ") {
        Some((head, tail)) if head.contains("beamlink::") => {
            format!("{} {tail}", head.split_whitespace().next().unwrap_or(""))
        }
        _ => rest.to_owned(),
    };
    rest.chars().take(150).collect()
}

/// Blocks until a line on stdin (or its end) or SIGINT, so that teardown runs either way.
fn wait_for_enter_or_ctrl_c() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let mut line = String::new();
        let stdin = tokio::task::spawn_blocking(move || std::io::stdin().read_line(&mut line));
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = stdin => {}
        }
    });
    // A blocked stdin read would keep the runtime's shutdown waiting: leave it behind.
    runtime.shutdown_background();
}
