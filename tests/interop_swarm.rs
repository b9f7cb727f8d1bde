#![cfg(feature = "interop")]
//! DNS discovery end to end in a simulated Docker Swarm (`support::Swarm`): release nodes of
//! the OTP releases in `BEAMLINK_OTP` (mixed in one cluster, meshing among themselves like
//! `dns_cluster`), dnsmasq answering `tasks.<stack>_<service>`, and the real `beamlink run`
//! binary in its own container, twice side by side:
//!
//! * `--peer-basename labyrinth --dns-server <bridge>` with the Swarm name, and
//! * no basename (ask each address's EPMD for its names), through the container's
//!   resolv.conf and its search list (a Kubernetes-style short name).
//!
//! Both name themselves (`--name beamlink`) in a container whose first interface is a decoy.
//! The measured numbers are printed (`cargo test --features interop --test interop_swarm -- --nocapture`).

mod support;

use std::collections::HashSet;
use std::net::IpAddr;
use std::time::{Duration, Instant, SystemTime};
use support::{BASENAME, Beamlink, Container, Swarm, cpu_time, millis_between, wait_for};

/// beamlink's poll interval in these tests.
const POLL: Duration = Duration::from_secs(1);
const POLL_ARG: &str = "1s";
/// beamlink's handshake setup timeout (`NodeConfig::setup_timeout`, the BEAM's net_setuptime).
const SETUP_TIMEOUT: Duration = Duration::from_secs(7);
/// How long to wait for something that should take a few poll intervals before failing (the
/// time bounds the issue asks for are checked separately, on measured timestamps).
const PATIENCE: Duration = Duration::from_secs(45);

/// One `beamlink run` under test, in its own container.
struct Probe {
    mode: &'static str,
    container: Container,
    beamlink: Beamlink,
    name: String,
    started: SystemTime,
}

impl Probe {
    /// Log lines from byte `from` on.
    fn log_since(&self, from: usize) -> String {
        let log = self.beamlink.log();
        log.get(from..).unwrap_or_default().to_owned()
    }

    fn wait_nodeup(&self, peer: &str, timeout: Duration) {
        let needle = format!("nodeup peer={peer} ");
        assert!(
            wait_for(|| self.beamlink.log().contains(&needle), timeout),
            "{}: beamlink did not connect to {peer} within {timeout:?}; log:\n{}",
            self.mode,
            self.beamlink.log()
        );
    }
}

/// Starts both beamlinks (basename mode and EPMD-names mode) and checks how they named
/// themselves.
fn start_probes(swarm: &mut Swarm) -> Vec<Probe> {
    let query = swarm.query();
    let headless = swarm.headless_query();
    let server = swarm.dns_server();
    let modes: [(&'static str, Vec<&str>); 2] = [
        (
            "--peer-basename",
            vec![
                "--peer-basename",
                BASENAME,
                "--dns-query",
                &query,
                "--dns-server",
                &server,
            ],
        ),
        ("EPMD names", vec!["--dns-query", &headless]),
    ];
    let first_answer = swarm.records()[0];
    let mut probes = Vec::new();
    for (mode, peer_args) in modes {
        let container = swarm.add_client(true);
        if probes.is_empty() {
            // The decoy is a real trap: with no peer to route toward, the name falls back to
            // the first non-loopback IPv4 address, which is the decoy's.
            let decoy = container.decoy().expect("decoy interface");
            let mut alone = container.beamlink(&["run", "--name", "beamlink"]);
            alone.wait_log("node started", Duration::from_secs(20));
            assert!(
                alone
                    .log()
                    .contains(&format!("node started node=beamlink@{decoy} ")),
                "without peers beamlink should name itself after the decoy {decoy}; log:\n{}",
                alone.log()
            );
            alone.terminate(Duration::from_secs(5));
        }
        let mut args = vec!["run", "--name", "beamlink", "--poll-interval", POLL_ARG];
        args.extend(peer_args);
        let started = SystemTime::now();
        let beamlink = container.beamlink(&args);
        beamlink.wait_log("node started", Duration::from_secs(20));
        let ip = container.ipv4().expect("client has IPv4");
        let name = format!("beamlink@{ip}");
        let log = beamlink.log();
        // Self-naming: the address that routes to the first DNS answer, not the decoy
        // interface listed first, and the log says why.
        assert!(
            log.contains(&format!("node started node={name} ")),
            "{mode}: expected to be named {name} (decoy {:?}); log:\n{log}",
            container.decoy()
        );
        assert!(
            log.contains(&format!(
                "node name uses the address that routes to {first_answer}"
            )),
            "{mode}: the log does not say why the name is {name}; log:\n{log}"
        );
        eprintln!(
            "[swarm] {mode}: named itself {name} (first DNS answer {first_answer}, decoy {} ignored)",
            container.decoy().map(|d| d.to_string()).unwrap_or_default()
        );
        probes.push(Probe {
            mode,
            container,
            beamlink,
            name,
            started,
        });
    }
    probes
}

/// Every release node lists every probe in `Node.list(:hidden)`, and first saw it come up
/// within `bound` of `since(probe)`; returns the worst delay per probe in ms.
fn check_all_nodes_list_probes(
    swarm: &Swarm,
    probes: &[Probe],
    since: impl Fn(&Probe) -> SystemTime,
    nodes: Option<&[String]>,
    bound: Duration,
    what: &str,
) -> Vec<i64> {
    let statuses = swarm.statuses();
    let mut worst = vec![i64::MIN; probes.len()];
    for (node, status) in &statuses {
        if nodes.is_some_and(|only| !only.contains(node)) {
            continue;
        }
        for (i, probe) in probes.iter().enumerate() {
            assert!(
                status.hidden.contains(&probe.name),
                "{what}: {node} does not list {} ({}) in Node.list(:hidden): {:?}",
                probe.name,
                probe.mode,
                status.hidden
            );
            let up = status
                .first_up(&probe.name)
                .unwrap_or_else(|| panic!("{what}: {node} saw no nodeup of {}", probe.name));
            let delay = millis_between(since(probe), up);
            worst[i] = worst[i].max(delay);
            assert!(
                delay <= bound.as_millis() as i64,
                "{what}: {node} saw {} ({}) come up {delay} ms after the start, more than {bound:?}",
                probe.name,
                probe.mode
            );
        }
    }
    worst
}

/// The failure lines a beamlink wrote about the phantom addresses: the peer `basename@ip`
/// could not be dialled, or the EPMD at `ip` could not be asked for names.
fn phantoms_reported(log: &str, phantoms: &HashSet<IpAddr>) -> usize {
    let mut seen = HashSet::new();
    for line in log.lines() {
        let ip = if line.contains("cannot connect") {
            line.split_whitespace()
                .find_map(|t| t.strip_prefix(&format!("peer={BASENAME}@")))
                .and_then(|t| t.parse::<IpAddr>().ok())
        } else if let Some((_, rest)) = line.split_once("EPMD at ") {
            rest.split_whitespace()
                .next()
                .and_then(|t| t.trim_end_matches(':').rsplit_once(':'))
                .and_then(|(ip, _port)| ip.parse::<IpAddr>().ok())
        } else {
            None
        };
        if let Some(ip) = ip.filter(|ip| phantoms.contains(ip)) {
            seen.insert(ip);
        }
    }
    seen.len()
}

/// Discovery, self-naming, a rolling update, a DNS outage and 200 records, in one IPv4 swarm
/// of three release nodes (one per selected OTP release, round-robin), for both discovery
/// modes at once.
#[test]
fn beamlink_follows_a_swarm_service_through_dns() {
    let t_setup = Instant::now();
    let mut swarm = Swarm::builder().nodes(3).start();
    eprintln!(
        "[swarm] up in {:.1}s: {} on {}; DNS {} -> {:?}",
        t_setup.elapsed().as_secs_f64(),
        swarm.describe(),
        swarm.bridge(),
        swarm.query(),
        swarm.records()
    );

    // ---- 1. discovery: every release node lists beamlink within three poll intervals ----
    let probes = start_probes(&mut swarm);
    for probe in &probes {
        for node in swarm.node_names() {
            probe.wait_nodeup(&node, PATIENCE);
        }
    }
    let worst =
        check_all_nodes_list_probes(&swarm, &probes, |p| p.started, None, 3 * POLL, "discovery");
    for (probe, ms) in probes.iter().zip(&worst) {
        eprintln!(
            "[swarm] {}: all {} release nodes list {} in Node.list(:hidden) {ms} ms after beamlink started (bound {} ms)",
            probe.mode,
            swarm.nodes().len(),
            probe.name,
            (3 * POLL).as_millis()
        );
    }
    // beamlink's own view, asked from a release: every release node.
    let first = &swarm.nodes()[0];
    for probe in &probes {
        let seen = first.release().rpc(&format!(
            r#":rpc.call(:"{}", :erlang, :nodes, [:connected])"#,
            probe.name
        ));
        for node in swarm.node_names() {
            assert!(
                seen.contains(&format!(":\"{node}\"")),
                "{}: nodes(:connected) on beamlink lacks {node}: {seen}",
                probe.mode
            );
        }
    }

    // ---- 2. rolling update: connected to the new node within two poll intervals ---------
    let old = swarm.node_names()[1].clone();
    let update = swarm.begin_rolling_update(&old);
    for probe in &probes {
        probe.wait_nodeup(&update.new, PATIENCE);
    }
    let new_only = [update.new.clone()];
    let worst = check_all_nodes_list_probes(
        &swarm,
        &probes,
        |_| update.dns_switched_at,
        Some(&new_only),
        2 * POLL,
        "rolling update",
    );
    for (probe, ms) in probes.iter().zip(&worst) {
        eprintln!(
            "[swarm] {}: rolling update {} -> {}: the new node saw beamlink {ms} ms after DNS switched (bound {} ms)",
            probe.mode,
            update.old,
            update.new,
            (2 * POLL).as_millis()
        );
    }
    // The old node left DNS but still runs: its link is kept.
    std::thread::sleep(2 * POLL);
    let offsets: Vec<usize> = probes.iter().map(|p| p.beamlink.log().len()).collect();
    for probe in &probes {
        let log = probe.beamlink.log();
        assert!(
            !log.contains(&format!("nodedown peer={old} ")),
            "{}: the link to {old} dropped while it was still running; log:\n{log}",
            probe.mode
        );
    }
    swarm.finish_rolling_update(&update);
    for probe in &probes {
        let needle = format!("nodedown peer={old} ");
        assert!(
            wait_for(|| probe.beamlink.log().contains(&needle), PATIENCE),
            "{}: no nodedown for the stopped {old}; log:\n{}",
            probe.mode,
            probe.beamlink.log()
        );
    }
    // Gone from DNS and link failed: forgotten, never dialled again.
    std::thread::sleep(3 * POLL);
    for (probe, &from) in probes.iter().zip(&offsets) {
        let after = probe.log_since(from);
        let redials: Vec<&str> = after
            .lines()
            .filter(|l| l.contains(&old) && !l.contains("nodedown"))
            .collect();
        assert!(
            redials.is_empty(),
            "{}: {old} was dialled again after it left DNS and stopped: {redials:#?}",
            probe.mode
        );
    }

    // ---- 3. DNS down for ten seconds: no link dropped, the failure logged once ----------
    let offsets: Vec<usize> = probes.iter().map(|p| p.beamlink.log().len()).collect();
    let outage_start = SystemTime::now();
    swarm.stop_dns();
    std::thread::sleep(Duration::from_secs(10));
    let statuses = swarm.statuses();
    for (probe, &from) in probes.iter().zip(&offsets) {
        let during = probe.log_since(from);
        let failures: Vec<&str> = during
            .lines()
            .filter(|l| l.contains("keeping the"))
            .collect();
        assert_eq!(
            failures.len(),
            1,
            "{}: the DNS failure must be logged once in ten seconds of polls; log since the outage:\n{during}\nwhole log:\n{}",
            probe.mode,
            probe.beamlink.log()
        );
        assert!(
            !during.contains("nodedown"),
            "{}: a link dropped during the DNS outage:\n{during}",
            probe.mode
        );
        for (node, status) in &statuses {
            assert!(
                status.hidden.contains(&probe.name),
                "{}: {node} lost {} during the DNS outage: {:?}",
                probe.mode,
                probe.name,
                status.hidden
            );
            let downs: Vec<_> = status
                .downs(&probe.name)
                .into_iter()
                .filter(|t| *t >= outage_start)
                .collect();
            assert!(
                downs.is_empty(),
                "{}: {node} saw {} go down during the outage",
                probe.mode,
                probe.name
            );
        }
        eprintln!(
            "[swarm] {}: DNS down 10 s: {} failure line ({}), no link dropped",
            probe.mode,
            failures.len(),
            failures[0].trim()
        );
    }
    swarm.start_dns();
    for (probe, &from) in probes.iter().zip(&offsets) {
        assert!(
            wait_for(
                || probe.log_since(from).contains("DNS answers again"),
                PATIENCE
            ),
            "{}: the end of the DNS outage is not logged:\n{}",
            probe.mode,
            probe.log_since(from)
        );
        // Over the whole outage: one line per kind of failure at most (a restarting server
        // may briefly give NXDOMAIN for one search-list candidate after timeouts), one line
        // for the recovery.
        let during = probe.log_since(from);
        let timeouts = during
            .lines()
            .filter(|l| l.contains("keeping the") && l.contains("failed:"))
            .count();
        let empty = during
            .lines()
            .filter(|l| l.contains("keeping the") && l.contains("has no A or AAAA"))
            .count();
        let recovered: Vec<&str> = during
            .lines()
            .filter(|l| l.contains("DNS answers again"))
            .collect();
        assert!(
            timeouts == 1 && empty <= 1 && recovered.len() == 1,
            "{}: each kind of DNS failure and the recovery must be logged once:\n{during}",
            probe.mode
        );
        eprintln!("[swarm] {}: {}", probe.mode, recovered[0].trim());
    }

    // ---- 4. 200 A records, most with nothing behind them: rounds stay bounded -----------
    let offsets: Vec<usize> = probes.iter().map(|p| p.beamlink.log().len()).collect();
    let real = swarm.records().len();
    let cpu_before: Vec<Duration> = probes
        .iter()
        .map(|p| cpu_time(p.beamlink.pid()).expect("beamlink cpu time"))
        .collect();
    let t0 = Instant::now();
    let phantoms: HashSet<IpAddr> = swarm.add_phantom_records(200 - real).into_iter().collect();
    let mut round = vec![None; probes.len()];
    let all_reported = wait_for(
        || {
            for (i, (probe, &from)) in probes.iter().zip(&offsets).enumerate() {
                if round[i].is_none()
                    && phantoms_reported(&probe.log_since(from), &phantoms) == phantoms.len()
                {
                    round[i] = Some(t0.elapsed());
                }
            }
            round.iter().all(Option::is_some)
        },
        PATIENCE,
    );
    for (i, probe) in probes.iter().enumerate() {
        assert!(
            all_reported,
            "{}: after {PATIENCE:?} only {} of {} phantom addresses were tried; log:\n{}",
            probe.mode,
            phantoms_reported(&probe.log_since(offsets[i]), &phantoms),
            phantoms.len(),
            probe.log_since(offsets[i])
        );
    }
    let cpu_round: Vec<Duration> = probes
        .iter()
        .map(|p| cpu_time(p.beamlink.pid()).expect("beamlink cpu time"))
        .collect();
    let steady_offsets: Vec<usize> = probes.iter().map(|p| p.beamlink.log().len()).collect();
    let steady_start = Instant::now();
    std::thread::sleep(Duration::from_secs(10));
    let steady = steady_start.elapsed();
    for (probe, &from) in probes.iter().zip(&steady_offsets) {
        // Each phantom keeps failing the same way (however the wording varies): logged
        // once, not at every retry.
        let again = probe.log_since(from);
        let warnings = again.lines().filter(|l| l.contains("WARN")).count();
        let relogged = phantoms_reported(&again, &phantoms);
        eprintln!(
            "[swarm] {}: {warnings} warning lines in the next 10 s of retries, {relogged} about phantoms",
            probe.mode
        );
        assert_eq!(
            relogged, 0,
            "{}: phantom failures logged again while retrying:\n{again}",
            probe.mode
        );
    }
    let total = t0.elapsed();
    for (i, probe) in probes.iter().enumerate() {
        let round = round[i].expect("measured");
        let cpu_now = cpu_time(probe.beamlink.pid()).expect("beamlink cpu time");
        let steady_cpu = cpu_now.saturating_sub(cpu_round[i]);
        let total_cpu = cpu_now.saturating_sub(cpu_before[i]);
        eprintln!(
            "[swarm] {}: 200 records ({} phantom): every phantom tried and failed within {:.2}s \
             (sanity bound {:?}); CPU {:.0} ms during that round, {:.0} ms in the next {:.1}s of \
             retries ({:.1}% of one core), {:.0} ms over {:.1}s in all",
            probe.mode,
            phantoms.len(),
            round.as_secs_f64(),
            2 * SETUP_TIMEOUT,
            cpu_round[i].saturating_sub(cpu_before[i]).as_secs_f64() * 1000.0,
            steady_cpu.as_secs_f64() * 1000.0,
            steady.as_secs_f64(),
            100.0 * steady_cpu.as_secs_f64() / steady.as_secs_f64(),
            total_cpu.as_secs_f64() * 1000.0,
            total.as_secs_f64()
        );
        assert!(
            round < 2 * SETUP_TIMEOUT,
            "{}: a round over 200 records took {round:?}: dials are not concurrent or not bounded",
            probe.mode
        );
        let during = probe.log_since(offsets[i]);
        assert!(
            !during.contains("nodedown"),
            "{}: a real link dropped while 200 records were polled:\n{during}",
            probe.mode
        );
        if let Some(sample) = during
            .lines()
            .find(|l| l.contains("cannot connect") || l.contains("EPMD at "))
        {
            eprintln!("[swarm] {}: e.g. {}", probe.mode, sample.trim());
        }
    }
    // The real nodes are still all connected both ways.
    let statuses = swarm.statuses();
    for (node, status) in &statuses {
        for probe in &probes {
            assert!(
                status.hidden.contains(&probe.name),
                "{}: {node} lost {} among 200 records",
                probe.mode,
                probe.name
            );
        }
    }
    let phantom_list: Vec<IpAddr> = phantoms.into_iter().collect();
    swarm.remove_records(&phantom_list);
    let t_down = Instant::now();
    drop(probes);
    drop(swarm);
    eprintln!(
        "[swarm] torn down in {:.1}s; whole test {:.1}s",
        t_down.elapsed().as_secs_f64(),
        t_setup.elapsed().as_secs_f64()
    );
}

/// A BEAM reachable only over IPv6 (`-proto_dist inet6_tcp`, an AAAA record, no IPv4 address)
/// is discovered and connected, next to an IPv4 one, in both modes; then the service scales
/// up by one node (connected within two poll intervals of its DNS record) and back down (its
/// record goes, then it stops: the link drops and the node is not dialled again).
#[test]
fn an_ipv6_only_beam_is_discovered_and_the_service_scales() {
    let mut swarm = Swarm::builder().nodes(1).ipv6_nodes(1).start();
    let records = swarm.records();
    assert!(
        records.iter().any(IpAddr::is_ipv6) && records.iter().any(IpAddr::is_ipv4),
        "the DNS answer must hold an A and an AAAA record: {records:?}"
    );
    eprintln!(
        "[swarm ipv6] {} ; DNS {} -> {records:?}",
        swarm.describe(),
        swarm.query()
    );
    let probes = start_probes(&mut swarm);
    let v6_node = swarm
        .nodes()
        .iter()
        .find(|n| n.ip().is_ipv6())
        .expect("an IPv6 node")
        .name()
        .to_owned();
    for probe in &probes {
        for node in swarm.node_names() {
            probe.wait_nodeup(&node, PATIENCE);
        }
        assert!(
            probe.container.ipv6().is_some(),
            "the client container is dual-stack"
        );
    }
    let worst = check_all_nodes_list_probes(
        &swarm,
        &probes,
        |p| p.started,
        None,
        3 * POLL,
        "ipv6 discovery",
    );
    let v6 = swarm.node(&v6_node);
    for (probe, ms) in probes.iter().zip(&worst) {
        let seen = v6.release().rpc(&format!(
            r#":rpc.call(:"{}", :erlang, :nodes, [:connected])"#,
            probe.name
        ));
        assert!(
            seen.contains(&format!(":\"{v6_node}\"")),
            "{}: beamlink's nodes(:connected) lacks {v6_node}: {seen}",
            probe.mode
        );
        eprintln!(
            "[swarm ipv6] {}: {v6_node} ({}) lists {} in Node.list(:hidden); every node saw it within {ms} ms",
            probe.mode,
            v6.otp(),
            probe.name
        );
    }

    // Scale up: a new task gets its record once it answers.
    let added = swarm.add_node();
    let published = SystemTime::now();
    for probe in &probes {
        probe.wait_nodeup(&added, PATIENCE);
    }
    let new_only = [added.clone()];
    let worst = check_all_nodes_list_probes(
        &swarm,
        &probes,
        |_| published,
        Some(&new_only),
        2 * POLL,
        "scale up",
    );
    for (probe, ms) in probes.iter().zip(&worst) {
        eprintln!(
            "[swarm ipv6] {}: scaled up: {added} saw beamlink {ms} ms after its DNS record appeared",
            probe.mode
        );
    }
    // Scale down: record dropped, node stopped; the link drops and it is never dialled again.
    let offsets: Vec<usize> = probes.iter().map(|p| p.beamlink.log().len()).collect();
    swarm.remove_node(&added);
    for probe in &probes {
        let needle = format!("nodedown peer={added} ");
        assert!(
            wait_for(|| probe.beamlink.log().contains(&needle), PATIENCE),
            "{}: no nodedown for the removed {added}; log:\n{}",
            probe.mode,
            probe.beamlink.log()
        );
    }
    std::thread::sleep(3 * POLL);
    for (probe, &from) in probes.iter().zip(&offsets) {
        let after = probe.log_since(from);
        let redials: Vec<&str> = after
            .lines()
            .filter(|l| l.contains(&added) && !l.contains("nodedown"))
            .collect();
        assert!(
            redials.is_empty(),
            "{}: {added} was dialled again after it left DNS and stopped: {redials:#?}",
            probe.mode
        );
    }
}
