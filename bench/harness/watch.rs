//! Workload w (`--only w` or `--only watch`; not in the default set, it takes about 4½
//! minutes): what watching a cluster costs, with `--mesh` and the exporter on.
//!
//! * `--w-nodes` (default 100) visible BEAM nodes, plain `erl` processes of the run's OTP
//!   release on loopback and the run's own epmd, started by the harness ten at a time, with
//!   default VM flags and `-connect_all false`: no clustering of their own, as the releases
//!   of `tests/interop_mesh.rs`; the cookie comes from `$HOME/.erlang.cookie`, never argv.
//!   Plain processes rather than OTP `peer` children of a driver node: every pid is the
//!   BEAM's own (for `/proc`), recorded in `<state>/pids` like every other process of the
//!   run, so `scripts/bench` can stop them if the harness dies, and no driver node joins
//!   the cluster as a 101st visible node.
//! * `beamlink run --metrics 127.0.0.1:0 --mesh --connect NODE` for every node: the watcher
//!   asks only the nodes beamlink is linked to (`src/watch/watcher.rs`), and a BEAM does not
//!   pass hidden links on, so one `--connect` would watch one node and list the other 99;
//!   in a deployment the nodes come from DNS discovery, one link each, as here.
//! * Meshing: a first such beamlink is started; the harness polls its `/metrics` once a
//!   second until beamlink is linked to every node, its view holds them all, every node
//!   lists every other (`--mesh` asked the N·(N−1)/2 pairs to connect: N·(N−1)
//!   `beamlink_cluster_link` series), none is silent or missing, and `/readyz` says 200.
//!   It is stopped; the nodes stay meshed among themselves. 30 s for the handshakes'
//!   aftermath to pass.
//! * Three windows of `--w-intervals` (default 12) poll intervals of beamlink's default 5 s:
//!   unwatched; watched, by a second beamlink started the same way (the steady state: the
//!   mesh is full, nothing to ask) once it sees the full mesh again and two more intervals
//!   have passed (its first views ask each node's release, once); unwatched again, one
//!   interval after it stopped. In the watched window `/metrics` is scraped every 15 s (a
//!   Prometheus at a common scrape interval), and the harness takes beamlink's utime+stime
//!   (`/proc/<pid>/stat`), the CPU of each scrape (schedstat of its threads around it), its
//!   VmRSS at the end and the duration of each view (the `took_us` field of its `cluster:
//!   view taken` debug line: from the first query to the last answer).
//! * Per node (`--w-sample`, default every node, evenly spread): CPU time from
//!   `/proc/<pid>/task/*/schedstat` (nanoseconds: `stat`'s 10 ms ticks are too coarse for a
//!   cost under 1 ms) per interval, watched minus the mean of the two unwatched windows (which
//!   cancels a linear drift of the machine's load), as the 3-node measurement of
//!   docs/performance.md; the row is the median over the nodes.
//! * `--w-beam-args` adds `erl` arguments to every node (e.g. `+sbwt none`).

use crate::procs::{self, Spawned};
use crate::report::{Better, Goal, Row, Unit};
use crate::{Bench, log, retry};
use serde_json::json;
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// beamlink's default `--poll-interval`, which `--mesh` and `--metrics` watch at.
pub const INTERVAL: Duration = Duration::from_secs(5);
/// Between two scrapes of `/metrics` in the watched window.
const SCRAPE_EVERY: Duration = Duration::from_secs(15);
/// Nodes started at once.
const BATCH: usize = 10;
/// Between the end of the meshing and the first unwatched window.
const AFTER_MESH: Duration = Duration::from_secs(30);
/// How long the mesh may take to form before the workload gives up.
const MESH_PATIENCE: Duration = Duration::from_secs(300);

/// The workload's BEAM nodes; all are sent SIGTERM at once when dropped, then reaped.
struct Nodes(Vec<(String, Spawned)>);

impl Drop for Nodes {
    fn drop(&mut self) {
        for (_, n) in &mut self.0 {
            n.terminate();
        }
        for (_, n) in &mut self.0 {
            n.stop(Duration::from_secs(10));
        }
    }
}

/// What one window measured.
struct Window {
    seconds: f64,
    /// CPU ns of each sampled node.
    nodes_ns: Vec<u64>,
    load: (f64, f64),
}

pub fn run(bench: &mut Bench, rows: &mut Vec<Row>) {
    let n = bench.plan.w_nodes;
    let k = bench.plan.w_intervals;
    // Nodes started with extra flags say so in the row.
    let flags = if bench.plan.w_beam_args.is_empty() {
        String::new()
    } else {
        format!(" (erl {})", bench.plan.w_beam_args.join(" "))
    };
    let mut node_cpu = Row::new(
        "w.node_cpu",
        'w',
        &format!("CPU per watched BEAM node per {INTERVAL:?} interval, {n} nodes{flags}"),
        Unit::Millis,
        Better::Lower,
    )
    .sides("", "watched − unwatched, median over the nodes")
    .goal(Goal::ValueBelow(1.0));
    let mut own_pct = Row::new(
        "w.cpu",
        'w',
        &format!("beamlink's own CPU watching {n} nodes (--mesh --metrics)"),
        Unit::PercentCore,
        Better::Lower,
    )
    .sides("", "beamlink, % of one core");
    let mut own_ms = Row::new(
        "w.cpu_interval",
        'w',
        &format!("beamlink's own CPU per {INTERVAL:?} interval, {n} nodes"),
        Unit::Millis,
        Better::Lower,
    )
    .sides("", "beamlink");
    let mut scrape_cpu = Row::new(
        "w.scrape",
        'w',
        &format!("beamlink's CPU per /metrics scrape, {n} nodes, median"),
        Unit::Millis,
        Better::Lower,
    )
    .sides("", "beamlink");
    let mut rss = Row::new(
        "w.rss",
        'w',
        &format!("beamlink RSS watching {n} nodes"),
        Unit::Kib,
        Better::Lower,
    )
    .sides("", "beamlink");
    let mut view = Row::new(
        "w.view",
        'w',
        &format!("one view of {n} nodes (queries), median"),
        Unit::Millis,
        Better::Lower,
    )
    .sides("", "beamlink");
    let mut view_max = Row::new(
        "w.view_max",
        'w',
        &format!("one view of {n} nodes (queries), slowest of {k}"),
        Unit::Millis,
        Better::Lower,
    )
    .sides("", "beamlink");
    match measure(bench) {
        Ok(m) => {
            let load = m.load;
            node_cpu.beamlink.push(m.node_ms_per_interval);
            node_cpu.loads.push(load);
            own_pct.beamlink.push(m.own_pct);
            own_pct.loads.push(load);
            own_ms.beamlink.push(m.own_ms_per_interval);
            own_ms.loads.push(load);
            if let Some(v) = m.scrape_ms_median {
                scrape_cpu.beamlink.push(v);
                scrape_cpu.loads.push(load);
            }
            rss.beamlink.push(m.rss_kib);
            rss.loads.push(load);
            if let Some(v) = m.view_ms_median {
                view.beamlink.push(v);
                view.loads.push(load);
            }
            if let Some(v) = m.view_ms_max {
                view_max.beamlink.push(v);
                view_max.loads.push(load);
            }
        }
        Err(e) => bench.fail("w (watching the cluster)", e),
    }
    rows.extend([node_cpu, own_pct, own_ms, scrape_cpu, rss, view, view_max]);
}

struct Measured {
    node_ms_per_interval: f64,
    own_pct: f64,
    own_ms_per_interval: f64,
    scrape_ms_median: Option<f64>,
    rss_kib: f64,
    view_ms_median: Option<f64>,
    view_ms_max: Option<f64>,
    load: f64,
}

/// A `beamlink run --metrics 127.0.0.1:0 --mesh --connect ...` linked to every node, once
/// its view holds them all and every node lists every other.
struct Watcher {
    proc: Spawned,
    log: std::path::PathBuf,
    metrics: SocketAddr,
    /// From the start until the mesh was full.
    full_after: Duration,
}

fn start_watcher(bench: &Bench, short: &str, nodes: &Nodes) -> Result<Watcher, String> {
    let n = nodes.0.len();
    let name = bench.env.node_name(short);
    let mut c = bench.env.beamlink();
    c.env("RUST_LOG", "info,beamlink::watch::watcher=debug")
        .args(["run", "--epmd", "client", "--name", &name])
        .args(["--metrics", "127.0.0.1:0", "--mesh"]);
    for (node, _) in &nodes.0 {
        c.args(["--connect", node]);
    }
    let t0 = Instant::now();
    let mut proc = bench.env.spawn(short, c)?;
    let log_path = bench.env.log_path(short);
    let metrics = retry(Duration::from_secs(30), || metrics_addr(&log_path))?;
    let mut last_progress = Instant::now();
    loop {
        if !proc.running() {
            return Err(format!("{short} exited:\n{}", procs::tail(&log_path, 15)));
        }
        let seen = scrape(metrics).map(|(_, body)| Seen::of(&body));
        if let Ok(s) = &seen {
            if s.full(n) && http_get(metrics, "/readyz").map(|r| r.0) == Ok(200) {
                return Ok(Watcher {
                    proc,
                    log: log_path,
                    metrics,
                    full_after: t0.elapsed(),
                });
            }
            if last_progress.elapsed() >= Duration::from_secs(10) {
                log(format!(
                    "  w: {short} at {:.0} s: {}",
                    t0.elapsed().as_secs_f64(),
                    s.describe(n)
                ));
                last_progress = Instant::now();
            }
        }
        if t0.elapsed() > MESH_PATIENCE {
            return Err(format!(
                "{short}: the mesh of {n} nodes was not full after {MESH_PATIENCE:?}: {}",
                seen.map(|s| s.describe(n)).unwrap_or_else(|e| e)
            ));
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn measure(bench: &mut Bench) -> Result<Measured, String> {
    let (n, intervals) = (bench.plan.w_nodes, bench.plan.w_intervals);
    let sample = bench.plan.w_sample.unwrap_or(n).clamp(1, n);
    let window = INTERVAL * intervals as u32;
    let started = Instant::now();
    log(format!(
        "w: starting {n} BEAM nodes ({BATCH} at a time); beamlink --mesh --metrics meshes them; then windows of {intervals} × {INTERVAL:?}: unwatched, watched, unwatched"
    ));
    let nodes = start_nodes(bench, n)?;
    let nodes_up_s = started.elapsed().as_secs_f64();
    log(format!("  w: {n} nodes registered in {nodes_up_s:.0} s"));
    let sampled: Vec<(String, u32)> = (0..sample)
        .map(|i| {
            let (name, node) = &nodes.0[i * n / sample];
            (name.clone(), node.pid())
        })
        .collect();

    // ---- the mesh: a first beamlink asks the N·(N−1)/2 pairs to connect
    let mut mesher = start_watcher(bench, "wmesh", &nodes)?;
    let mesher_ticks = procs::cpu_ticks(mesher.proc.pid()).unwrap_or(0);
    let mesher_rss = procs::rss_kib(mesher.proc.pid()).unwrap_or(0);
    let connects = scrape(mesher.metrics)
        .map(|(_, b)| {
            ["true", "false", "ignored", "error"]
                .map(|r| {
                    metric(
                        &b,
                        &format!("beamlink_mesh_connects_total{{result=\"{r}\"}}"),
                    )
                    .unwrap_or(0.0)
                })
                .to_vec()
        })
        .unwrap_or_default();
    log(format!(
        "  w: beamlink linked to {n} nodes and the mesh full in {:.1} s (connect_node requests true/false/ignored/error: {connects:?}; its CPU {:.2} s, RSS {mesher_rss} KiB)",
        mesher.full_after.as_secs_f64(),
        mesher_ticks as f64 / bench.clk_tck
    ));
    mesher.proc.stop(Duration::from_secs(10));
    // Forming the mesh keeps every node busy for a while (4950 handshakes at 100 nodes):
    // let it pass before the first unwatched window.
    std::thread::sleep(AFTER_MESH);

    // ---- unwatched, watched (a second beamlink, the steady state), unwatched: the mean of
    // the two unwatched windows cancels a linear drift of the machine's load.
    let unwatched1 = window_of(&sampled, window, |_| {})?;
    let mut bl = start_watcher(bench, "wbl", &nodes)?;
    log(format!(
        "  w: beamlink again: linked and the mesh seen full in {:.1} s",
        bl.full_after.as_secs_f64()
    ));
    // No view of the start still running, and the first views' one-off questions (each
    // node's release) behind us.
    std::thread::sleep(INTERVAL * 2);
    let bl_pid = bl.proc.pid();
    let log_from = file_len(&bl.log);
    let own0 = procs::cpu_ticks(bl_pid).ok_or("no /proc stat for beamlink")?;
    let own_ns0 = procs::cpu_ns(bl_pid);
    // (ms, bytes, mesh full, beamlink's CPU ns during the scrape)
    let mut scrapes: Vec<(f64, usize, bool, u64)> = Vec::new();
    let metrics = bl.metrics;
    let watched = window_of(&sampled, window, |elapsed| {
        // A scrape at the start of the window and every SCRAPE_EVERY after it.
        let due = scrapes.len() as u32 * SCRAPE_EVERY;
        if elapsed >= due {
            let (t, c) = (Instant::now(), procs::cpu_ns(bl_pid));
            let got = scrape(metrics);
            let cpu = procs::cpu_ns(bl_pid).saturating_sub(c);
            scrapes.push((
                t.elapsed().as_secs_f64() * 1e3,
                got.as_ref().map(|(_, b)| b.len()).unwrap_or(0),
                got.map(|(_, b)| Seen::of(&b).full(n)).unwrap_or(false),
                cpu,
            ));
        }
    })?;
    let own1 = procs::cpu_ticks(bl_pid).ok_or("no /proc stat for beamlink")?;
    let own_ns1 = procs::cpu_ns(bl_pid);
    let log_to = file_len(&bl.log);
    let rss_kib = procs::settled_rss_kib(bl_pid, Duration::ZERO).ok_or("no VmRSS")?;
    let anon = procs::status_kib(bl_pid, "RssAnon:");
    let file = procs::status_kib(bl_pid, "RssFile:");
    let views = views_in(&bl.log, log_from, log_to);
    let still_full = scrape(metrics)
        .map(|(_, b)| Seen::of(&b))
        .map_err(|e| format!("/metrics after the window: {e}"))?;
    bl.proc.stop(Duration::from_secs(10));
    if !still_full.full(n) {
        return Err(format!(
            "the mesh was no longer full at the end of the watched window: {}",
            still_full.describe(n)
        ));
    }
    std::thread::sleep(INTERVAL);
    let unwatched2 = window_of(&sampled, window, |_| {})?;

    let own_s = (own1 - own0) as f64 / bench.clk_tck;
    let own_pct = own_s / watched.seconds * 100.0;
    let own_ms_per_interval = own_s * 1e3 / intervals as f64;
    // Per interval, each window normalised to its own length.
    let per_interval = |ns: u64, s: f64| ns as f64 / 1e6 / s * INTERVAL.as_secs_f64();
    let per = |w: &Window| -> Vec<f64> {
        w.nodes_ns
            .iter()
            .map(|ns| per_interval(*ns, w.seconds))
            .collect()
    };
    let (w_ms, u1_ms, u2_ms) = (per(&watched), per(&unwatched1), per(&unwatched2));
    let cost: Vec<f64> = w_ms
        .iter()
        .zip(u1_ms.iter().zip(&u2_ms))
        .map(|(w, (a, b))| w - (a + b) / 2.0)
        .collect();
    let node_ms_per_interval =
        crate::report::median(&cost).ok_or("no sampled node was measured")?;
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let took: Vec<f64> = views.iter().map(|v| v.took_us as f64 / 1e3).collect();
    let view_ms_median = crate::report::median(&took);
    let view_ms_max = took.iter().copied().reduce(f64::max);
    let scrape_cpu_ms: Vec<f64> = scrapes.iter().map(|s| s.3 as f64 / 1e6).collect();
    log(format!(
        "  w: beamlink {own_pct:.2} % of one core, {own_ms_per_interval:.1} ms per interval (scrapes: {} ms of CPU each), RSS {rss_kib:.0} KiB; per node per interval {node_ms_per_interval:.3} ms median, {:.3} mean over {sample} nodes (watched {:.3}, unwatched {:.3} / {:.3} mean); views {} (median {} ms, max {} ms); load {:.1}–{:.1} unwatched, {:.1}–{:.1} watched, {:.1}–{:.1} unwatched",
        scrape_cpu_ms
            .iter()
            .map(|v| format!("{v:.0}"))
            .collect::<Vec<_>>()
            .join(", "),
        mean(&cost),
        mean(&w_ms),
        mean(&u1_ms),
        mean(&u2_ms),
        views.len(),
        view_ms_median
            .map(|v| format!("{v:.1}"))
            .unwrap_or_else(|| "?".into()),
        view_ms_max
            .map(|v| format!("{v:.1}"))
            .unwrap_or_else(|| "?".into()),
        unwatched1.load.0,
        unwatched1.load.1,
        watched.load.0,
        watched.load.1,
        unwatched2.load.0,
        unwatched2.load.1,
    ));
    bench.measurements.push(json!({
        "workload": "w", "nodes": n, "interval_s": INTERVAL.as_secs_f64(), "intervals": intervals,
        "nodes_registered_s": nodes_up_s, "mesh_full_s": mesher.full_after.as_secs_f64(),
        "mesh_connects_true_false_ignored_error": connects,
        "mesher_cpu_s": mesher_ticks as f64 / bench.clk_tck, "mesher_rss_kib": mesher_rss,
        "watcher_linked_and_full_s": bl.full_after.as_secs_f64(),
        "window_s": [unwatched1.seconds, watched.seconds, unwatched2.seconds],
        "beamlink_cpu_ticks": own1 - own0, "clk_tck": bench.clk_tck,
        "beamlink_cpu_ns_live_threads": own_ns1.saturating_sub(own_ns0),
        "beamlink_cpu_percent_of_one_core": own_pct,
        "beamlink_cpu_ms_per_interval": own_ms_per_interval,
        "beamlink_rss_kib": rss_kib, "beamlink_rss_anon_kib": anon, "beamlink_rss_file_kib": file,
        "views": views.iter().map(|v| json!({"took_us": v.took_us, "answered": v.answered, "silent": v.silent})).collect::<Vec<_>>(),
        "view_ms_median": view_ms_median, "view_ms_max": view_ms_max,
        "scrapes": scrapes.iter().map(|(ms, bytes, full, cpu)| json!({"ms": ms, "bytes": bytes, "mesh_full": full, "beamlink_cpu_ms": *cpu as f64 / 1e6})).collect::<Vec<_>>(),
        "sampled_nodes": sampled.iter().map(|(name, _)| name).collect::<Vec<_>>(),
        "sampled_watched_ms_per_interval": w_ms,
        "sampled_unwatched_before_ms_per_interval": u1_ms,
        "sampled_unwatched_after_ms_per_interval": u2_ms,
        "sampled_cost_ms_per_interval": cost,
        "cost_ms_per_interval_median": node_ms_per_interval,
        "cost_ms_per_interval_mean": mean(&cost),
        "load1_unwatched_before": [unwatched1.load.0, unwatched1.load.1],
        "load1_watched": [watched.load.0, watched.load.1],
        "load1_unwatched_after": [unwatched2.load.0, unwatched2.load.1],
        "workload_s": started.elapsed().as_secs_f64(),
    }));
    log(format!(
        "  w: done in {:.0} s (stopping the nodes)",
        started.elapsed().as_secs_f64()
    ));
    drop(nodes);
    Ok(Measured {
        node_ms_per_interval,
        own_pct,
        own_ms_per_interval,
        scrape_ms_median: crate::report::median(&scrape_cpu_ms),
        rss_kib,
        view_ms_median,
        view_ms_max,
        load: watched.load.0,
    })
}

/// `n` visible BEAM nodes registered with the run's epmd, started `BATCH` at a time.
fn start_nodes(bench: &Bench, n: usize) -> Result<Nodes, String> {
    let mut nodes = Nodes(Vec::with_capacity(n));
    for first in (0..n).step_by(BATCH) {
        let batch: Vec<usize> = (first..(first + BATCH).min(n)).collect();
        for &i in &batch {
            let short = format!("w{i}");
            let mut c = bench.env.erl(&short, false);
            c.args(["-connect_all", "false"])
                .args(&bench.plan.w_beam_args);
            let node = bench.env.spawn(&short, c)?;
            nodes.0.push((bench.env.node_name(&short), node));
        }
        let want: BTreeSet<String> = batch
            .iter()
            .map(|i| {
                let name = bench.env.node_name(&format!("w{i}"));
                name.split('@').next().unwrap_or_default().to_owned()
            })
            .collect();
        retry(Duration::from_secs(60), || {
            let names = registered(bench)?;
            match want.iter().find(|w| !names.contains(*w)) {
                None => Ok(()),
                Some(w) => Err(format!("{w} is not registered with the run's epmd")),
            }
        })?;
    }
    Ok(nodes)
}

/// The names the run's epmd lists (`beamlink names`).
fn registered(bench: &Bench) -> Result<BTreeSet<String>, String> {
    let out = std::process::Command::new(bench.env.release.join("beamlink"))
        .args([
            "names",
            "127.0.0.1",
            "--epmd-port",
            &bench.env.epmd_port.to_string(),
        ])
        .output()
        .map_err(|e| e.to_string())?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1).map(str::to_owned))
        .collect())
}

/// CPU of the sampled nodes over `window`; `during` is called every 100 ms with the time
/// elapsed (the window is the measurement: it is waited out).
fn window_of(
    sampled: &[(String, u32)],
    window: Duration,
    mut during: impl FnMut(Duration),
) -> Result<Window, String> {
    let load0 = procs::load1();
    let before: Vec<u64> = sampled.iter().map(|(_, p)| procs::cpu_ns(*p)).collect();
    let t0 = Instant::now();
    while t0.elapsed() < window {
        during(t0.elapsed());
        std::thread::sleep(Duration::from_millis(100).min(window.saturating_sub(t0.elapsed())));
    }
    let after: Vec<u64> = sampled.iter().map(|(_, p)| procs::cpu_ns(*p)).collect();
    let seconds = t0.elapsed().as_secs_f64();
    for ((name, pid), a) in sampled.iter().zip(&after) {
        if *a == 0 {
            return Err(format!("{name} (pid {pid}) is gone"));
        }
    }
    Ok(Window {
        seconds,
        nodes_ns: after
            .iter()
            .zip(before)
            .map(|(a, b)| a.saturating_sub(b))
            .collect(),
        load: (load0, procs::load1()),
    })
}

/// The exporter's address, from beamlink's `serving /metrics addr=...` line.
fn metrics_addr(log: &std::path::Path) -> Result<SocketAddr, String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .find(|l| l.contains("serving /metrics"))
        .and_then(|l| l.split("addr=").nth(1))
        .and_then(|a| a.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| format!("no `serving /metrics` line in {}", log.display()))
}

/// HTTP/1.0 GET (no chunked body to undo): status and body.
fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(|e| format!("{addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .map_err(|e| format!("GET {path}: {e}"))?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("GET {path}: no end of the head"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("GET {path}: bad status line"))?;
    Ok((status, body.to_owned()))
}

fn scrape(addr: SocketAddr) -> Result<(u16, String), String> {
    match http_get(addr, "/metrics")? {
        (200, body) => Ok((200, body)),
        (status, _) => Err(format!("/metrics answered {status}")),
    }
}

/// The value of the series `series` (name and labels exactly as exposed).
fn metric(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// What the exporter says about the cluster.
struct Seen {
    peers: f64,
    visible: f64,
    links: usize,
    missing: f64,
    partitions: f64,
    silent: f64,
}

impl Seen {
    fn of(body: &str) -> Seen {
        let m = |s: &str| metric(body, s).unwrap_or(f64::NAN);
        Seen {
            peers: m("beamlink_peers"),
            visible: m("beamlink_cluster_nodes{kind=\"visible\"}"),
            links: body
                .lines()
                .filter(|l| l.starts_with("beamlink_cluster_link{"))
                .count(),
            missing: m("beamlink_cluster_missing_links"),
            partitions: m("beamlink_cluster_partitions"),
            silent: m("beamlink_cluster_silent_nodes"),
        }
    }

    /// Linked to all `n`, every one answering and listing every other.
    fn full(&self, n: usize) -> bool {
        let n_f = n as f64;
        self.peers == n_f
            && self.visible == n_f
            && self.links == n * (n - 1)
            && self.missing == 0.0
            && self.partitions == 1.0
            && self.silent == 0.0
    }

    fn describe(&self, n: usize) -> String {
        format!(
            "{} links, {} nodes in the view, {} of {} directed links, {} missing, {} partitions, {} silent",
            self.peers,
            self.visible,
            self.links,
            n * (n - 1),
            self.missing,
            self.partitions,
            self.silent
        )
    }
}

/// One `cluster: view taken` debug line.
struct ViewLine {
    took_us: u64,
    answered: u64,
    silent: u64,
}

fn file_len(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// The views beamlink logged between two offsets of its log.
fn views_in(path: &std::path::Path, from: u64, to: u64) -> Vec<ViewLine> {
    let bytes = std::fs::read(path).unwrap_or_default();
    let (from, to) = (from as usize, (to as usize).min(bytes.len()));
    let text = String::from_utf8_lossy(bytes.get(from..to).unwrap_or_default());
    let field = |l: &str, key: &str| -> Option<u64> {
        l.split_whitespace()
            .find_map(|w| w.strip_prefix(key)?.parse().ok())
    };
    text.lines()
        .filter(|l| l.contains("cluster: view taken"))
        .filter_map(|l| {
            Some(ViewLine {
                took_us: field(l, "took_us=")?,
                answered: field(l, "answered=").unwrap_or(0),
                silent: field(l, "silent=").unwrap_or(0),
            })
        })
        .collect()
}
