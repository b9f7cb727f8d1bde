#![cfg(feature = "interop")]
//! A soak: `beamlink run` (with `--bench-services`) under load from many BEAM peers (OTP's
//! `peer` module, started by one driver node per release in `BEAMLINK_OTP`), replaced a few
//! at a time, as a rolling update replaces tasks (ecosystem.md part C, items 15 and 23).
//! beamlink's file descriptors and resident memory (from `/proc`), and its tokio tasks, links
//! and pending handshakes (its `:stats` call) are sampled throughout.
//!
//! In CI (`cargo test`) it is short: 12 peers, 50 messages and one rpc call per peer per
//! second, a replacement of a quarter of them every 15 s, three times. It asserts that with
//! the same number of peers connected after the replacements, file descriptors and memory
//! are within 10 % of what they were before them and tasks are exactly as many, that once all
//! peers are gone tasks, links and file descriptors are back to what they were with none,
//! that every peer's load ran to the end, and that every churn shows up as one nodedown and
//! one nodeup.
//!
//! `scripts/soak` runs the long version (100 peers, one replacement round a minute, an
//! hour) through the same test, with these variables:
//! `BEAMLINK_SOAK_PEERS`, `BEAMLINK_SOAK_ROUNDS`, `BEAMLINK_SOAK_ROUND_SECS`,
//! `BEAMLINK_SOAK_REPLACE` (peers replaced per round), `BEAMLINK_SOAK_RATE` (messages per
//! peer per second), `BEAMLINK_SOAK_CSV` (a file for the samples).

mod support;

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use support::{
    BeamNode, Beamlink, BeamlinkStats, Epmd, Otp, Pki, TEST_COOKIE, beamlink_stats, fd_count,
    http_get, http_status, metrics_addr, rss_kib, thread_count, unique_name,
};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The driver's peer manager, registered as `soak`: starts peers (each running the load
/// loop, registered there as `soak_load`), replaces the oldest, stops them all, and says how
/// many peers run and how many of their load loops are alive.
fn manager(target: &str, prefix: &str, rate: u64, tls_args: &str) -> String {
    format!(
        r#"Target = '{target}', Rate = {rate}, Prefix = "{prefix}",
Load = fun() ->
    true = net_kernel:connect_node(Target),
    Blob = binary:copy(<<"x">>, 200),
    Round = fun Round(I) ->
        [{{rig_sink, Target}} ! {{soak, I + K, Blob}} || K <- lists:seq(1, Rate)],
        Ref = make_ref(),
        {{rig_sink, Target}} ! {{rig_done, self(), Ref}},
        receive {{rig_done, Ref, _}} -> ok after 30000 -> exit(sink_timeout) end,
        Target = rpc:call(Target, erlang, node, [], 30000),
        timer:sleep(1000),
        Round(I + Rate)
    end,
    Round(0)
end,
Start = fun(N) ->
    {{ok, P, Node}} = peer:start(#{{name => Prefix ++ integer_to_list(N), host => "127.0.0.1",
        args => ["-setcookie", atom_to_list(erlang:get_cookie()), "-hidden",
                 "-connect_all", "false", "-start_epmd", "false",
                 "+S", "1:1", "+A", "1", "+sbwt", "none", "+sbwtdcpu", "none",
                 "+sbwtdio", "none"{tls_args}]}}),
    LoadPid = erpc:call(Node, erlang, spawn, [Load]),
    true = erpc:call(Node, erlang, register, [soak_load, LoadPid]),
    {{P, Node}}
end,
register(soak, spawn(fun() ->
    Loop = fun L(Peers, Next) ->
        receive
            {{start, K, From}} ->
                New = [Start(Next + I) || I <- lists:seq(0, K - 1)],
                From ! {{soak, ok}}, L(Peers ++ New, Next + K);
            {{replace, K, From}} ->
                {{Old, Keep}} = lists:split(min(K, length(Peers)), Peers),
                [peer:stop(P) || {{P, _}} <- Old],
                New = [Start(Next + I) || I <- lists:seq(0, K - 1)],
                From ! {{soak, ok}}, L(Keep ++ New, Next + K);
            {{stop_all, From}} ->
                [peer:stop(P) || {{P, _}} <- Peers],
                From ! {{soak, ok}}, L([], Next);
            {{health, From}} ->
                Alive = [N || {{_, N}} <- Peers,
                              is_pid(catch erpc:call(N, erlang, whereis, [soak_load], 5000))],
                From ! {{soak, {{length(Peers), length(Alive)}}}}, L(Peers, Next)
        end
    end,
    Loop([], 0)
end)), ok"#
    )
}

/// Sends `command` to the driver's manager and waits for its answer.
fn ask(driver: &BeamNode, command: &str, timeout: Duration) -> String {
    driver
        .eval_timeout(
            &format!(
                "soak ! {{{command}, self()}}, \
                 receive {{soak, SoakReply}} -> SoakReply after {} -> timeout end",
                timeout.as_millis()
            )
            .replace("SoakReply", &unique_name("Reply").replace('_', "")),
            timeout + Duration::from_secs(5),
        )
        .unwrap_or_else(|e| panic!("soak {command}: {e}"))
}

#[derive(Clone, Copy, Debug)]
struct Sample {
    at: Duration,
    fds: usize,
    rss_kib: u64,
    threads: u64,
    stats: BeamlinkStats,
}

struct Sampler {
    pid: u32,
    started: Instant,
    csv: Option<std::fs::File>,
    samples: Vec<Sample>,
}

impl Sampler {
    fn take(&mut self, driver: &BeamNode, name: &str, label: &str) -> Sample {
        let sample = Sample {
            at: self.started.elapsed(),
            fds: fd_count(self.pid),
            rss_kib: rss_kib(self.pid),
            threads: thread_count(self.pid),
            stats: beamlink_stats(driver, name),
        };
        let line = format!(
            "{:.0},{},{},{},{},{},{},{label}",
            sample.at.as_secs_f64(),
            sample.fds,
            sample.rss_kib,
            sample.threads,
            sample.stats.tasks,
            sample.stats.links,
            sample.stats.pending
        );
        eprintln!("[soak] {line}");
        if let Some(f) = &mut self.csv {
            let _ = writeln!(f, "{line}");
        }
        self.samples.push(sample);
        sample
    }
}

/// Polls until `read` gives `want`, for up to `timeout`; the last value otherwise.
fn settle<T: PartialEq + Copy>(mut read: impl FnMut() -> T, want: T, timeout: Duration) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        let got = read();
        if got == want || Instant::now() >= deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn rolling_replacements_under_load_leave_no_residue() {
    let peers = env_or("BEAMLINK_SOAK_PEERS", 12);
    let rounds = env_or("BEAMLINK_SOAK_ROUNDS", 3);
    let round_secs = env_or("BEAMLINK_SOAK_ROUND_SECS", 15);
    let replace = env_or("BEAMLINK_SOAK_REPLACE", (peers / 4).max(1));
    let rate = env_or("BEAMLINK_SOAK_RATE", 50);
    let tls = env_or("BEAMLINK_SOAK_TLS", 0) == 1;
    let mesh = env_or("BEAMLINK_SOAK_MESH", 0) == 1;
    let scrape_secs = env_or("BEAMLINK_SOAK_SCRAPE_SECS", 0);
    let otps = Otp::from_env();
    let epmd = Epmd::start();
    let alive = unique_name("blsoak");
    let name = format!("{alive}@127.0.0.1");
    let port = epmd.port().to_string();
    // TLS: the driver runs TLS distribution too (it pings beamlink, asks it for :stats and
    // reaches its peers over distribution, which `peer:start` uses by default), so drivers,
    // peers and beamlink all read the same `ssl_dist_optfile`.
    let pki = tls.then(Pki::new);
    let optfile = pki
        .as_ref()
        .map(|p| p.beam_optfile(None).display().to_string());
    let mut extra = vec!["--bench-services"];
    if let Some(f) = &optfile {
        extra.extend(["--tls-optfile", f.as_str()]);
    }
    if mesh {
        extra.push("--mesh");
    }
    if scrape_secs > 0 {
        extra.extend(["--metrics", "127.0.0.1:0"]);
    }
    let bl = Beamlink::start_with(support::run_command_at(&port, &name, &extra), TEST_COOKIE);
    bl.wait_log("node started", Duration::from_secs(15));
    let tls_args = optfile.as_ref().map_or(String::new(), |f| {
        format!(r#", "-proto_dist", "inet_tls", "-ssl_dist_optfile", "{f}""#)
    });
    let drivers: Vec<BeamNode> = otps
        .iter()
        .map(|&otp| {
            let mut builder = BeamNode::builder(otp, epmd.port())
                .name(unique_name(&format!("driver{}", otp.release())))
                // With --mesh the drivers are visible, so that the watcher has nodes to
                // query (it asks visible nodes only; the peers stay hidden).
                .hidden(!mesh);
            if let Some(f) = &optfile {
                builder = builder
                    .arg("-proto_dist")
                    .arg("inet_tls")
                    .arg("-ssl_dist_optfile")
                    .arg(f.clone());
            }
            let driver = builder.start();
            let prefix = unique_name(&format!("soak{}p", otp.release()));
            driver
                .eval(&manager(&name, &prefix, rate, &tls_args))
                .unwrap();
            assert_eq!(
                driver.eval(&format!("net_adm:ping('{name}')")).unwrap(),
                "pong"
            );
            driver
        })
        .collect();
    let csv = std::env::var("BEAMLINK_SOAK_CSV").ok().map(|path| {
        let mut f = std::fs::File::create(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let _ = writeln!(f, "seconds,fds,rss_kib,threads,tasks,links,pending,phase");
        f
    });
    let mut sampler = Sampler {
        pid: bl.pid(),
        started: Instant::now(),
        csv,
        samples: Vec::new(),
    };
    let observer = &drivers[0];
    let idle = sampler.take(observer, &name, "no peers");
    // The exporter scraped every `scrape_secs` by a thread of its own from here on (after
    // the idle sample, whose FD count must not hold a scrape's connection).
    let scrapes = Arc::new(AtomicU64::new(0));
    let stop_scraping = Arc::new(AtomicBool::new(false));
    let scraper = (scrape_secs > 0).then(|| {
        let addr = metrics_addr(&bl);
        let (scrapes, stop) = (scrapes.clone(), stop_scraping.clone());
        std::thread::spawn(move || -> Result<(), String> {
            let mut next = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                if Instant::now() >= next {
                    let response = http_get(addr, "/metrics");
                    if http_status(&response) != Some(200) {
                        return Err(response.chars().take(300).collect());
                    }
                    scrapes.fetch_add(1, Ordering::Relaxed);
                    next += Duration::from_secs(scrape_secs);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            Ok(())
        })
    });
    let share = |total: u64, i: usize| {
        total / drivers.len() as u64 + u64::from((i as u64) < total % drivers.len() as u64)
    };
    // All drivers at once, each in its own thread.
    let on_all = |command: &dyn Fn(usize) -> String, timeout: Duration| {
        std::thread::scope(|scope| {
            let handles: Vec<_> = drivers
                .iter()
                .enumerate()
                .map(|(i, d)| {
                    let c = command(i);
                    scope.spawn(move || ask(d, &c, timeout))
                })
                .collect();
            for h in handles {
                assert_eq!(h.join().unwrap(), "ok");
            }
        })
    };
    let boot = Duration::from_secs(30 + peers * 3);
    on_all(&|i| format!("start, {}", share(peers, i)), boot);
    let links = peers + drivers.len() as u64;
    let up = settle(
        || beamlink_stats(observer, &name).links,
        links,
        Duration::from_secs(30),
    );
    assert_eq!(up, links, "not every peer connected:\n{}", bl.log());
    std::thread::sleep(Duration::from_secs(round_secs.min(10)));
    let first = sampler.take(observer, &name, "loaded");

    let mut replaced = 0;
    for round in 0..rounds {
        let started = Instant::now();
        on_all(&|i| format!("replace, {}", share(replace, i)), boot);
        replaced += replace;
        let up = settle(
            || beamlink_stats(observer, &name).links,
            links,
            Duration::from_secs(30),
        );
        assert_eq!(up, links, "round {round}: peers missing:\n{}", bl.log());
        while started.elapsed() < Duration::from_secs(round_secs) {
            std::thread::sleep(Duration::from_secs(1));
        }
        sampler.take(observer, &name, &format!("after round {}", round + 1));
    }
    // The same load as at `first`: resources where they were.
    let last = sampler.take(observer, &name, "loaded, after the replacements");
    // The long run's criterion: after the first ten minutes RSS grows less than 5 %.
    if let Some(ten) = sampler
        .samples
        .iter()
        .skip(2)
        .find(|s| s.at >= Duration::from_secs(600))
        .copied()
    {
        let growth = (last.rss_kib as f64 - ten.rss_kib as f64) * 100.0 / ten.rss_kib as f64;
        eprintln!(
            "[soak] RSS after 10 min {} KiB, at the end {} KiB: {growth:+.1} %",
            ten.rss_kib, last.rss_kib
        );
        assert!(
            growth < 5.0,
            "RSS grew {growth:.1} % after 10 min: {ten:?} -> {last:?}"
        );
    }
    let tasks = settle(
        || beamlink_stats(observer, &name).tasks,
        first.stats.tasks,
        Duration::from_secs(10),
    );
    assert_eq!(
        tasks, first.stats.tasks,
        "tasks grew: {first:?} -> {last:?}"
    );
    assert!(
        last.fds as f64 <= first.fds as f64 * 1.1 + 1.0,
        "file descriptors grew: {first:?} -> {last:?}"
    );
    assert!(
        last.rss_kib as f64 <= first.rss_kib as f64 * 1.1,
        "resident memory grew more than 10 %: {first:?} -> {last:?}"
    );
    for d in &drivers {
        let health = ask(d, "health", Duration::from_secs(30));
        let counts: Vec<u64> = health
            .trim_matches(|c| c == '{' || c == '}')
            .split(',')
            .map(|n| n.trim().parse().unwrap())
            .collect();
        assert_eq!(counts[0], counts[1], "load loops died: {health}");
    }

    on_all(&|_| "stop_all".to_owned(), boot);
    let drivers_only = drivers.len() as u64;
    let gone = settle(
        || beamlink_stats(observer, &name),
        BeamlinkStats {
            tasks: idle.stats.tasks,
            links: drivers_only,
            pending: 0,
        },
        Duration::from_secs(30),
    );
    let end = sampler.take(observer, &name, "all peers gone");
    assert_eq!(
        gone, idle.stats,
        "tasks or links left behind: {idle:?} -> {end:?}"
    );
    let fds = settle(|| fd_count(bl.pid()), idle.fds, Duration::from_secs(10));
    assert_eq!(fds, idle.fds, "file descriptors left behind");

    stop_scraping.store(true, Ordering::Relaxed);
    if let Some(scraper) = scraper {
        let result = scraper.join().unwrap();
        eprintln!(
            "[soak] {} scrapes of /metrics, every {scrape_secs} s",
            scrapes.load(Ordering::Relaxed)
        );
        if let Err(response) = result {
            panic!("a scrape did not answer 200: {response}");
        }
    }
    drop(pki);

    let started_peers = peers + replaced;
    let log = bl.log();
    let nodeups = log
        .lines()
        .filter(|l| l.contains("nodeup peer=soak"))
        .count() as u64;
    let nodedowns = log
        .lines()
        .filter(|l| l.contains("nodedown peer=soak"))
        .count() as u64;
    eprintln!(
        "[soak] {started_peers} peers started, {nodeups} nodeups, {nodedowns} nodedowns; \
         RSS {} -> {} -> {} KiB; tasks {} -> {} -> {}; fds {} -> {} -> {}",
        first.rss_kib,
        last.rss_kib,
        end.rss_kib,
        first.stats.tasks,
        last.stats.tasks,
        end.stats.tasks,
        first.fds,
        last.fds,
        end.fds
    );
    assert_eq!(nodeups, started_peers, "one nodeup per peer");
    assert_eq!(nodedowns, started_peers, "one nodedown per peer");
    assert!(!log.contains("panicked"), "{log}");
}
