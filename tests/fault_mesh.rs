#![cfg(feature = "interop")]
//! `beamlink run --mesh` when the cluster misbehaves (issue 18, "mesh faults"), against real
//! releases in the simulated Docker Swarm (`support::Swarm`): three `labyrinth` nodes, one per
//! OTP release in `BEAMLINK_OTP` (25, 27 and 29 by default), their own clustering off, so
//! every connection between them is one `--mesh` asked for (or `global` made):
//!
//! * a partition between two of them (iptables inside a container this test made), held for
//!   30 s and healed: `--mesh` asks each pair at most once per interval (no connect storm
//!   while the cut refuses every attempt at once), the partition is logged and counted in
//!   `beamlink_cluster_partitions`, then cleared; the nodes run with
//!   `prevent_overlapping_partitions` true and do not flap once healed;
//! * a node that hangs (SIGSTOP) while watched: the others keep being reported every
//!   interval, the stopped one is reported silent within an interval and a query timeout;
//!   resumed (SIGCONT), it answers again.

mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::{
    BASENAME, Beamlink, Container, NodeStatus, Swarm, TEST_COOKIE, beamlink_command_in_netns,
    full_mesh, wait_for,
};

/// beamlink's poll (and view) interval; the query timeout is the same (`WatchConfig::new`).
const POLL: Duration = Duration::from_secs(2);
const POLL_ARG: &str = "2s";
/// How long the partition lasts.
const PARTITION: Duration = Duration::from_secs(30);
/// beamlink's metrics port inside its container.
const METRICS_PORT: u16 = 9568;
/// How long to wait for what should take a few intervals before failing; the bounds the
/// issue sets are checked on measured timestamps.
const PATIENCE: Duration = Duration::from_secs(60);
/// Log line of each `net_kernel:connect_node/1` request (debug level, `beamlink::watch`).
const REQUEST: &str = "mesh: request: ";

/// `beamlink run --mesh` in `client`, with the mesh's per-request debug line on.
fn mesh_beamlink(swarm: &Swarm, client: &Container) -> Beamlink {
    let (query, server) = (swarm.query(), swarm.dns_server());
    let metrics = format!("0.0.0.0:{METRICS_PORT}");
    let mut command = beamlink_command_in_netns(
        client.netns(),
        &[
            "run",
            "--name",
            "beamlink",
            "--poll-interval",
            POLL_ARG,
            "--dns-query",
            &query,
            "--dns-server",
            &server,
            "--peer-basename",
            BASENAME,
            "--mesh",
            "--metrics",
            &metrics,
        ],
    );
    command.env("RUST_LOG", "info,beamlink::watch=debug");
    Beamlink::start_with(command, TEST_COOKIE)
}

/// `GET path` over HTTP/1.1: the body of a 200.
fn http_body(addr: SocketAddr, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let status: u16 = text.split_whitespace().nth(1)?.parse().ok()?;
    (status == 200).then(|| text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()))?
}

/// The value of an unlabelled series in beamlink's exposition at `addr`.
fn metric(addr: SocketAddr, name: &str) -> Option<f64> {
    http_body(addr, "/metrics")?.lines().find_map(|l| {
        let (n, v) = l.split_once(' ')?;
        (n == name).then(|| v.trim().parse().ok()).flatten()
    })
}

/// A rule in a container's own netfilter tables (never the host's).
fn iptables(container: &Container, args: &[&str]) {
    container.iptables(args);
}

/// The rules that cut `a_box` off from `b_ip` both ways, refusing at once (a reset for TCP),
/// so that every connect attempt fails immediately and nothing but beamlink's own pacing
/// limits how often it asks.
fn cut_rules(b_ip: &str) -> [[&str; 8]; 2] {
    [
        [
            "INPUT",
            "-s",
            b_ip,
            "-p",
            "tcp",
            "-j",
            "REJECT",
            "--reject-with=tcp-reset",
        ],
        [
            "OUTPUT",
            "-d",
            b_ip,
            "-p",
            "tcp",
            "-j",
            "REJECT",
            "--reject-with=tcp-reset",
        ],
    ]
}

/// Microseconds since the epoch of a tracing-fmt line's leading RFC 3339 UTC timestamp
/// (`2026-11-27T01:23:45.123456Z ...`).
fn line_micros(line: &str) -> Option<i64> {
    let stamp = line.split_whitespace().next()?;
    let (date, time) = stamp.strip_suffix('Z')?.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>());
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.split(':').map(|p| p.parse::<i64>());
    let (h, min, s) = (t.next()?.ok()?, t.next()?.ok()?, t.next()?.ok()?);
    let micros: i64 = format!("{frac:0<6}")[..6].parse().ok()?;
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + h) * 60 + min) * 60_000_000 + s * 1_000_000 + micros)
}

/// The connect requests logged in `log`: (time in µs, the unordered pair).
fn requests(log: &str) -> Vec<(i64, (String, String))> {
    log.lines()
        .filter_map(|l| {
            let rest = &l[l.find(REQUEST)? + REQUEST.len()..];
            let (on, to) = rest.split_once(" connect_node(")?;
            let to = to.split(')').next()?;
            let pair = if on < to {
                (on.to_owned(), to.to_owned())
            } else {
                (to.to_owned(), on.to_owned())
            };
            Some((line_micros(l)?, pair))
        })
        .collect()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

/// A partition between two BEAM namespaces (both directions refused at once, so nothing but
/// beamlink's pacing limits its attempts) held for 30 s, then healed, with `--mesh` on and the
/// nodes' `prevent_overlapping_partitions` true. While it lasts, beamlink asks each pair to
/// connect at most once per two intervals: every pair in question was dropped while both
/// nodes were up, so it is split and backed off (contract.md `--mesh`); that is stricter than
/// the issue's "at most one per pair per interval". Checked on the debug line of each request:
/// successive requests for a pair at least two intervals apart (less 10 % jitter), no more
/// than the partition's length over two intervals, plus one. The partition is logged and
/// `beamlink_cluster_partitions` goes above 1, then the heal is logged and the metric is 1
/// again; once healed, for five intervals, no node goes down and the metric stays 1.
///
/// Fails without the planner's per-pair gate (`if st.in_flight || now < st.next_at` in
/// `watch::planner::Planner::plan`): the cut pair is asked at every view, 2 s apart (checked:
/// 13 requests in 30 s, gaps of 2 s).
#[test]
fn a_partition_healed_after_30s_causes_no_connect_storm_and_no_flapping() {
    let mut swarm = Swarm::builder()
        .nodes(3)
        .release_clustering(false)
        .release_env(
            "ELIXIR_ERL_OPTIONS",
            "-start_epmd false -kernel net_ticktime 4 -kernel prevent_overlapping_partitions true",
        )
        .start();
    eprintln!("[mesh-fault] swarm: {}", swarm.describe());
    let client = swarm.add_client(false);
    let metrics_addr = SocketAddr::from((client.ipv4().expect("client IPv4"), METRICS_PORT));
    let beamlink = mesh_beamlink(&swarm, &client);
    assert!(
        wait_for(|| full_mesh(&swarm.statuses()), PATIENCE),
        "the nodes did not mesh; statuses {:?}; log:\n{}",
        swarm.statuses(),
        beamlink.log()
    );
    assert!(
        wait_for(
            || metric(metrics_addr, "beamlink_cluster_partitions") == Some(1.0),
            PATIENCE
        ),
        "beamlink_cluster_partitions is not 1 once meshed"
    );

    // ---- the cut -------------------------------------------------------------------------
    let (a, b) = (&swarm.nodes()[0], &swarm.nodes()[1]);
    let (a_box, b_ip) = (a.container().clone(), b.ip().to_string());
    let from = beamlink.log().len();
    let cut_at = Instant::now();
    let cut_ms = now_ms();
    for rule in cut_rules(&b_ip) {
        let mut args = vec!["-I"];
        args.extend(rule);
        iptables(&a_box, &args);
    }
    let mut partitions_seen = Vec::new();
    assert!(
        wait_for(
            || {
                let p = metric(metrics_addr, "beamlink_cluster_partitions");
                partitions_seen.push(p);
                beamlink.log()[from..].contains("cluster: partitioned into")
                    && p.is_some_and(|p| p > 1.0)
            },
            PATIENCE
        ),
        "the partition is not reported (metric samples {partitions_seen:?}); log:\n{}",
        &beamlink.log()[from..]
    );
    eprintln!(
        "[mesh-fault] {}",
        beamlink.log()[from..]
            .lines()
            .find(|l| l.contains("partitioned into"))
            .unwrap_or_default()
    );
    // The partition lasts its 30 s whatever happens meanwhile: what beamlink asks during it
    // is the point.
    std::thread::sleep(PARTITION.saturating_sub(cut_at.elapsed()));
    let during = beamlink.log()[from..].to_owned();
    for rule in cut_rules(&b_ip) {
        let mut args = vec!["-D"];
        args.extend(rule);
        iptables(&a_box, &args);
    }
    let healed_from = Instant::now();

    // ---- at most one request per pair per interval ----------------------------------------
    let mut per_pair: BTreeMap<(String, String), Vec<i64>> = BTreeMap::new();
    for (at, pair) in requests(&during) {
        per_pair.entry(pair).or_default().push(at);
    }
    // Every pair asked about meanwhile was connected before the cut and dropped while both
    // nodes were up (by the cut or by `global`): split, so backed off for at least two
    // intervals after each attempt; at most one per interval is what the issue demands, the
    // back-off is stricter. 10 % off the gap for the view's own jitter.
    let window = PARTITION.as_secs_f64();
    let cap = (window / (2 * POLL).as_secs_f64()).ceil() as usize + 1;
    let min_gap = (2 * POLL.as_micros() as i64) * 9 / 10;
    assert!(
        !per_pair.is_empty(),
        "--mesh asked nothing during the partition; log:\n{during}"
    );
    for (pair, times) in &per_pair {
        let gaps: Vec<i64> = times.windows(2).map(|w| w[1] - w[0]).collect();
        eprintln!(
            "[mesh-fault] {} <-> {}: {} requests in {window:.0} s (cap {cap}), gaps {:?} ms",
            pair.0,
            pair.1,
            times.len(),
            gaps.iter().map(|g| g / 1000).collect::<Vec<_>>()
        );
        assert!(
            times.len() <= cap,
            "{pair:?}: {} requests in {window} s; log:\n{during}",
            times.len()
        );
        assert!(
            gaps.iter().all(|g| *g >= min_gap),
            "{pair:?}: requests less than an interval apart: {gaps:?} µs; log:\n{during}"
        );
    }
    let first_request = per_pair.values().flatten().min().copied().unwrap_or(0) / 1000;
    eprintln!(
        "[mesh-fault] first request {} ms after the cut; results so far: {}",
        first_request - cut_ms,
        http_body(metrics_addr, "/metrics")
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("beamlink_mesh_connects_total{"))
            .collect::<Vec<_>>()
            .join(", ")
    );

    // ---- healed, reported, and no flapping -------------------------------------------------
    let healed = wait_for(
        || {
            metric(metrics_addr, "beamlink_cluster_partitions") == Some(1.0)
                && full_mesh(&swarm.statuses())
        },
        PATIENCE,
    );
    assert!(healed, "not healed; log:\n{}", &beamlink.log()[from..]);
    assert!(
        wait_for(
            || beamlink.log()[from..].contains("cluster: partition healed"),
            PATIENCE
        ),
        "the heal is not logged:\n{}",
        &beamlink.log()[from..]
    );
    eprintln!(
        "[mesh-fault] healed {:.1} s after the cut was removed",
        healed_from.elapsed().as_secs_f64()
    );
    let downs = |statuses: &[(String, NodeStatus)]| -> usize {
        let names: Vec<&String> = statuses.iter().map(|(n, _)| n).collect();
        statuses
            .iter()
            .map(|(_, s)| {
                s.events
                    .iter()
                    .filter(|e| !e.up && names.contains(&&e.node))
                    .count()
            })
            .sum()
    };
    let before = downs(&swarm.statuses());
    let watched = Instant::now();
    let mut samples = Vec::new();
    // Five intervals in which nothing may happen: the window is the assertion.
    while watched.elapsed() < 5 * POLL {
        samples.push(metric(metrics_addr, "beamlink_cluster_partitions"));
        std::thread::sleep(Duration::from_millis(250));
    }
    let statuses = swarm.statuses();
    let after = downs(&statuses);
    eprintln!(
        "[mesh-fault] after the heal, over {:?}: {} nodedowns between the nodes, partition samples {:?}",
        5 * POLL,
        after - before,
        samples
    );
    assert_eq!(
        after,
        before,
        "the nodes flapped after the heal: {statuses:?}; log:\n{}",
        &beamlink.log()[from..]
    );
    assert!(
        samples.iter().all(|s| *s == Some(1.0)),
        "beamlink_cluster_partitions moved after the heal: {samples:?}"
    );
    assert!(full_mesh(&statuses), "{statuses:?}");
    drop(beamlink);
}

/// Resumes a stopped BEAM even when the test fails midway.
struct Resume(u32);

impl Drop for Resume {
    fn drop(&mut self) {
        support::kill(self.0, "CONT");
    }
}

/// `(at_ms, answered)` of beamlink's `:cluster` view, asked from `asker`'s release node.
fn cluster_view(
    asker: &support::SwarmNode,
    beamlink: &str,
) -> Option<(i64, BTreeMap<String, bool>)> {
    let text = asker
        .release()
        .try_rpc(&format!(
            r##"(c = GenServer.call({{:beamlink, :"{beamlink}"}}, :cluster); {{c.at_ms, Enum.map(c.nodes, fn {{n, m}} -> "#{{n}}=#{{m.answered}}" end) |> Enum.join(" ")}})"##
        ))
        .ok()?;
    let (at, nodes) = text.strip_prefix('{')?.split_once(", ")?;
    let answered = nodes
        .trim_end_matches('}')
        .trim_matches('"')
        .split_whitespace()
        .filter_map(|e| {
            let (n, a) = e.split_once('=')?;
            Some((n.to_owned(), a == "true"))
        })
        .collect();
    Some((at.parse().ok()?, answered))
}

/// A BEAM node that hangs (SIGSTOP) while beamlink watches it does not stall the view of the
/// others: the first view after the stop reports it silent within an interval plus the query
/// timeout, and every following view (at most an interval plus the query timeout apart) still
/// has the other two answering; the nodes keep their links (net_ticktime 60 s). Resumed
/// (SIGCONT), it answers again.
///
/// Fails without the per-node deadline of `watch::watcher::ask` (the `tokio::time::timeout`
/// around a node's questions and the timeout given to each `rpc_call`): the view waits for
/// the stopped node and no new view comes.
#[test]
fn a_hung_node_does_not_stall_the_view_of_the_others() {
    let mut swarm = Swarm::builder()
        .nodes(3)
        .release_clustering(false)
        .release_env("ELIXIR_ERL_OPTIONS", "-start_epmd false")
        .start();
    eprintln!("[mesh-hang] swarm: {}", swarm.describe());
    let client = swarm.add_client(false);
    let beamlink_name = format!("beamlink@{}", client.ipv4().expect("client IPv4"));
    let beamlink = mesh_beamlink(&swarm, &client);
    assert!(
        wait_for(|| full_mesh(&swarm.statuses()), PATIENCE),
        "the nodes did not mesh; log:\n{}",
        beamlink.log()
    );
    let names = swarm.node_names();
    let (asker, hung) = (&swarm.nodes()[0], &swarm.nodes()[2]);
    let hung_name = hung.name().to_owned();
    assert!(
        wait_for(
            || cluster_view(asker, &beamlink_name)
                .is_some_and(|(_, a)| names.iter().all(|n| a.get(n) == Some(&true))),
            PATIENCE
        ),
        "not every node answers before the stop; log:\n{}",
        beamlink.log()
    );

    let from = beamlink.log().len();
    let stopped_ms = now_ms();
    support::kill(hung.release().os_pid(), "STOP");
    let resume = Resume(hung.release().os_pid());
    let bound = (2 * POLL + Duration::from_secs(1)).as_millis() as i64;
    let mut views: Vec<(i64, BTreeMap<String, bool>)> = Vec::new();
    let collected = wait_for(
        || {
            if let Some(v) = cluster_view(asker, &beamlink_name)
                && v.0 > stopped_ms
                && views.last().is_none_or(|l| l.0 != v.0)
            {
                views.push(v);
            }
            views.len() >= 5
        },
        PATIENCE,
    );
    for (at, answered) in &views {
        eprintln!("[mesh-hang] view at +{} ms: {answered:?}", at - stopped_ms);
    }
    assert!(
        collected,
        "fewer than 5 views in {PATIENCE:?} while {hung_name} is stopped: {views:?}; log:\n{}",
        &beamlink.log()[from..]
    );
    let silent_at = views
        .iter()
        .find(|(_, a)| a.get(&hung_name) == Some(&false))
        .map(|(at, _)| at - stopped_ms)
        .unwrap_or_else(|| panic!("{hung_name} never reported silent: {views:?}"));
    eprintln!(
        "[mesh-hang] {hung_name} reported silent {silent_at} ms after SIGSTOP (bound {bound} ms)"
    );
    assert!(silent_at <= bound, "reported silent after {silent_at} ms");
    // Every view from the second on: the others answered, the hung one did not.
    for (at, answered) in views.iter().skip(1) {
        for n in &names {
            let want = *n != hung_name;
            assert_eq!(
                answered.get(n),
                Some(&want),
                "view at +{} ms: {n}: {answered:?}",
                at - stopped_ms
            );
        }
    }
    // Every view beamlink took meanwhile (its debug line), not only those the slow rpc
    // above saw: none may wait for the stopped node.
    let taken: Vec<i64> = beamlink.log()[from..]
        .lines()
        .filter(|l| l.contains("cluster: view taken"))
        .filter_map(line_micros)
        .collect();
    let gaps: Vec<i64> = taken.windows(2).map(|w| (w[1] - w[0]) / 1000).collect();
    let gap_bound = (2 * POLL + Duration::from_millis(1500)).as_millis() as i64;
    eprintln!(
        "[mesh-hang] {} views while stopped, gaps {gaps:?} ms (bound {gap_bound})",
        taken.len()
    );
    assert!(
        taken.len() >= 5,
        "{} views logged while stopped",
        taken.len()
    );
    assert!(
        gaps.iter().all(|g| *g <= gap_bound),
        "views stalled: gaps {gaps:?} ms (bound {gap_bound})"
    );
    assert!(
        beamlink.log()[from..].contains(&format!("cluster: {hung_name} did not answer in time")),
        "the silent node is not logged:\n{}",
        &beamlink.log()[from..]
    );

    drop(resume);
    assert!(
        wait_for(
            || beamlink.log()[from..].contains(&format!("cluster: {hung_name} answers again")),
            PATIENCE
        ),
        "{hung_name} does not answer again after SIGCONT:\n{}",
        &beamlink.log()[from..]
    );
    assert!(
        wait_for(|| full_mesh(&swarm.statuses()), PATIENCE),
        "the mesh did not survive the stop: {:?}",
        swarm.statuses()
    );
    drop(beamlink);
}
