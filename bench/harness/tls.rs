//! Workload t: distribution over TLS (`-proto_dist inet_tls -ssl_dist_optfile FILE`).
//!
//! A second set of nodes that speak TLS only, started next to the plain ones on the same
//! epmd: a BEAM target (`bench_target`), `beamlink run --bench-services`, a hidden BEAM
//! driver (`bench_driver`) and a Rust agent (`bench_client --tls-optfile`), all with one
//! option file: mutual TLS, `verify_peer`, the server requiring the client's certificate,
//! no `versions` (so OTP 25 and 27 negotiate TLS 1.2, OTP 29 TLS 1.3: docs/tls.md). The CA
//! and the node certificate (127.0.0.1 as an IP SAN and a DNS SAN, ECDSA P-256) are made
//! with `openssl` when the workload starts.
//!
//! One round:
//! * connect: the TLS driver times N `net_kernel:connect_node/1` + disconnect cycles to the
//!   TLS BEAM target, then the Rust agent times N `Node::connect` + close cycles to the same
//!   target (EPMD lookup, TCP, TLS handshake, distribution handshake); then the same pair
//!   over plain TCP with the plain driver and agent, for context;
//! * throughput, 1 KiB and 64 KiB binaries: BEAM→BEAM over TLS, BEAM→beamlink over TLS,
//!   BEAM→BEAM over TLS, Rust→BEAM over TLS; each beamlink number is paired with the
//!   BEAM→BEAM number just before it, as in workloads a–c.

use crate::procs::{self, Agent, Spawned};
use crate::report::{Better, Goal, Row, Unit};
use crate::{Bench, SHORT, TPUT_TIMEOUT, log, retry};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The TLS nodes of the run.
struct TlsNodes {
    beam_target: Spawned,
    beamlink_target: Spawned,
    driver: Agent,
    rust: Agent,
    beam_name: String,
    beamlink_name: String,
}

impl TlsNodes {
    fn stop(mut self) {
        self.driver.finish(Duration::from_secs(2));
        self.rust.finish(Duration::from_secs(5));
        self.driver.proc.stop(Duration::from_secs(5));
        self.rust.proc.stop(Duration::from_secs(5));
        self.beamlink_target.stop(Duration::from_secs(5));
        self.beam_target.stop(Duration::from_secs(5));
    }
}

/// Runs `openssl` with `args` in `dir`.
fn openssl(dir: &Path, args: &[&str]) -> Result<(), String> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|e| format!("openssl (install it: apt-get install openssl): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "openssl {}: {}",
            args.first().unwrap_or(&""),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A CA, one certificate for every node, and the option file that names them.
fn make_pki(dir: &Path) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=beamlink bench CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(dir, &ca)?;
    let mut csr = vec!["req"];
    csr.extend(ec);
    csr.extend([
        "-keyout",
        "node.key",
        "-out",
        "node.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    openssl(dir, &csr)?;
    // OTP 25's client checks the host part of name@127.0.0.1 as a DNS name, 27 and 29 as
    // an IP address (docs/tls.md): the certificate carries both.
    std::fs::write(
        dir.join("node.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n",
    )
    .map_err(|e| e.to_string())?;
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "node.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "node.ext",
            "-out",
            "node.pem",
        ],
    )?;
    let path = |f: &str| dir.join(f).display().to_string();
    let common = format!(
        "{{certfile, \"{}\"}}, {{keyfile, \"{}\"}}, {{cacertfile, \"{}\"}}, {{verify, verify_peer}}",
        path("node.pem"),
        path("node.key"),
        path("ca.pem")
    );
    let optfile = dir.join("ssl_dist.conf");
    std::fs::write(
        &optfile,
        format!(
            "[{{server, [{common}, {{fail_if_no_peer_cert, true}}]}},\n {{client, [{common}]}}].\n"
        ),
    )
    .map_err(|e| e.to_string())?;
    Ok(optfile)
}

fn start(bench: &Bench) -> Result<(TlsNodes, Value), String> {
    let t0 = Instant::now();
    let env = &bench.env;
    let optfile = make_pki(&env.state.join("tls"))?;
    let opt = optfile.display().to_string();
    let tls_args = ["-proto_dist", "inet_tls", "-ssl_dist_optfile", &opt];

    let beam_name = env.node_name("tbt");
    let mut bt = env.erl("tbt", false);
    bt.args(tls_args).args(["-s", "bench_target", "start"]);
    let beam_target = env.spawn("tls_beam_target", bt)?;

    let beamlink_name = env.node_name("tbl");
    let mut bl = env.beamlink();
    bl.args(["run", "--bench-services", "--epmd", "client", "--name"])
        .arg(&beamlink_name)
        .args(["--tls-optfile", &opt]);
    let beamlink_target = env.spawn("tls_beamlink_target", bl)?;

    let mut drv = env.erl("tdrv", true);
    drv.args(tls_args).args(["-s", "bench_driver", "main"]);
    let mut driver = env.spawn_agent("tls_driver", drv)?;
    driver.next_result(SHORT)?;

    let mut rc = env.bench_client();
    rc.args([
        "--tls-optfile",
        &opt,
        "agent",
        "--name",
        &env.node_name("trust"),
    ]);
    let mut rust = env.spawn_agent("tls_rust_client", rc)?;
    rust.next_result(SHORT)?;

    let mut info = json!({ "optfile": "mutual TLS, verify_peer, fail_if_no_peer_cert, no versions (OTP defaults)" });
    info["beam_target"] = retry(Duration::from_secs(30), || {
        driver.ask(&format!("{{prepare, '{beam_name}'}}."), SHORT)
    })?;
    info["beamlink_target"] = retry(Duration::from_secs(30), || {
        driver.ask(&format!("{{prepare, '{beamlink_name}'}}."), SHORT)
    })?;
    retry(Duration::from_secs(30), || {
        rust.ask(&format!("prepare {beam_name}"), SHORT)
    })?;
    log(format!(
        "t: TLS nodes ready in {:.1} s (BEAM target {beam_name}, beamlink target {beamlink_name})",
        t0.elapsed().as_secs_f64()
    ));
    let nodes = TlsNodes {
        beam_target,
        beamlink_target,
        driver,
        rust,
        beam_name,
        beamlink_name,
    };
    Ok((nodes, info))
}

/// Workload t: adds its rows to `rows`; its processes are stopped before it returns.
pub fn run(bench: &mut Bench, rows: &mut Vec<Row>) {
    let (mut nodes, info) = match start(bench) {
        Ok(v) => v,
        Err(e) => {
            bench.fail("t (starting the TLS nodes)", e);
            return;
        }
    };
    bench.info["tls"] = info;
    let first = rows.len();
    let connect_row = |id: &str, title: &str, tls: bool| {
        let (b, r) = if tls {
            ("BEAM→BEAM (TLS)", "beamlink→BEAM (TLS)")
        } else {
            ("BEAM→BEAM", "beamlink→BEAM")
        };
        Row::new(id, 't', title, Unit::Micros, Better::Lower)
            .sides(b, r)
            .goal(if tls {
                Goal::RatioAtMost(1.0)
            } else {
                Goal::None
            })
    };
    rows.push(connect_row(
        "t.connect.median",
        "TLS: connect (TCP + TLS + dist handshake), median",
        true,
    ));
    rows.push(connect_row(
        "t.connect.p99",
        "TLS: connect (TCP + TLS + dist handshake), p99",
        true,
    ));
    rows.push(connect_row(
        "t.plain_connect.median",
        "plain TCP, same run: connect + dist handshake, median",
        false,
    ));
    let sizes: Vec<(&'static str, &'static str, u64, u64, u64)> = bench
        .plan
        .sizes
        .iter()
        .filter(|s| s.kind != "tuple16")
        .map(|s| (s.kind, s.label, s.payload, s.n, s.warm))
        .collect();
    for &(kind, label, payload, _, _) in &sizes {
        let unit = Unit::MsgsPerS { payload };
        rows.push(
            Row::new(
                &format!("t.{kind}.to_beamlink"),
                't',
                &format!("TLS: BEAM sends {label} to beamlink"),
                unit,
                Better::Higher,
            )
            .sides("BEAM→BEAM (TLS)", "BEAM→beamlink (TLS)")
            .goal(Goal::RatioAtLeast(1.0)),
        );
        rows.push(
            Row::new(
                &format!("t.{kind}.from_beamlink"),
                't',
                &format!("TLS: beamlink (Rust) sends {label} to a BEAM"),
                unit,
                Better::Higher,
            )
            .sides("BEAM→BEAM (TLS)", "beamlink→BEAM (TLS)")
            .goal(Goal::RatioAtLeast(1.0)),
        );
    }
    let ix = |rows: &Vec<Row>, id: &str| {
        first + rows[first..].iter().position(|r| r.id == id).unwrap_or(0)
    };

    let (n, pause) = (bench.plan.connect_n, bench.plan.connect_pause_ms);
    for round in 1..=bench.plan.rounds {
        log(format!("t: round {round}/{}", bench.plan.rounds));
        // Connect, over TLS then plain.
        let load = procs::load1();
        let target = nodes.beam_name.clone();
        let beam = ask(
            sink(bench),
            &mut nodes.driver,
            &format!("{{connect, '{target}', {n}, {pause}}}."),
            "t.connect BEAM",
            round,
        );
        let rust = ask(
            sink(bench),
            &mut nodes.rust,
            &format!("connect {target} {n} {pause}"),
            "t.connect beamlink",
            round,
        );
        if let (Some(b), Some(r)) = (beam, rust) {
            for (id, key) in [
                ("t.connect.median", "median_us"),
                ("t.connect.p99", "p99_us"),
            ] {
                let (bv, rv) = (num(&b["connect"][key]), num(&r["connect"][key]));
                let i = ix(rows, id);
                rows[i].pair(bv, rv, load);
            }
            log(format!(
                "  t.connect TLS: median BEAM {} µs, beamlink {} µs; p99 {} / {} µs; failures {} / {} (load {load:.1})",
                b["connect"]["median_us"],
                r["connect"]["median_us"],
                b["connect"]["p99_us"],
                r["connect"]["p99_us"],
                b["failures"],
                r["failures"]
            ));
        }
        let load = procs::load1();
        let target = bench.beam_target_name.clone();
        let command = format!("{{connect, '{target}', {n}, {pause}}}.");
        let beam = ask(
            Sink {
                measurements: &mut bench.measurements,
                errors: &mut bench.errors,
            },
            &mut bench.driver,
            &command,
            "t.plain_connect BEAM",
            round,
        );
        let rust = ask(
            Sink {
                measurements: &mut bench.measurements,
                errors: &mut bench.errors,
            },
            &mut bench.rust,
            &format!("connect {target} {n} {pause}"),
            "t.plain_connect beamlink",
            round,
        );
        if let (Some(b), Some(r)) = (beam, rust) {
            let (bv, rv) = (
                num(&b["connect"]["median_us"]),
                num(&r["connect"]["median_us"]),
            );
            let i = ix(rows, "t.plain_connect.median");
            rows[i].pair(bv, rv, load);
            log(format!(
                "  t.connect plain: median BEAM {bv:.0} µs, beamlink {rv:.0} µs (load {load:.1})"
            ));
        }
        // Throughput over TLS.
        for &(kind, _, _, count, warm) in &sizes {
            for (suffix, from_rust) in [("to_beamlink", false), ("from_beamlink", true)] {
                let id = format!("t.{kind}.{suffix}");
                let load = procs::load1();
                let beam_cmd = format!("{{tput, '{}', {kind}, {count}, {warm}}}.", nodes.beam_name);
                // The receiver's CPU per message, next to the rate: over TLS the receiving
                // BEAM decrypts in its `ssl` processes, and the pairs differ only in the sender.
                let msgs = (count + warm) as f64;
                let receiver = nodes.beam_target.pid();
                let r0 = procs::cpu_ticks(receiver);
                let beam = ask(
                    sink(bench),
                    &mut nodes.driver,
                    &beam_cmd,
                    &format!("{id} BEAM→BEAM"),
                    round,
                );
                let beam_rx = bench.cpu_us_per_msg(r0, procs::cpu_ticks(receiver), msgs);
                let receiver = if from_rust {
                    nodes.beam_target.pid()
                } else {
                    nodes.beamlink_target.pid()
                };
                let r0 = procs::cpu_ticks(receiver);
                let other = if from_rust {
                    let c = format!("tput {} {kind} {count} {warm}", nodes.beam_name);
                    ask(
                        sink(bench),
                        &mut nodes.rust,
                        &c,
                        &format!("{id} beamlink→BEAM"),
                        round,
                    )
                } else {
                    let c = format!(
                        "{{tput, '{}', {kind}, {count}, {warm}}}.",
                        nodes.beamlink_name
                    );
                    ask(
                        sink(bench),
                        &mut nodes.driver,
                        &c,
                        &format!("{id} BEAM→beamlink"),
                        round,
                    )
                };
                let other_rx = bench.cpu_us_per_msg(r0, procs::cpu_ticks(receiver), msgs);
                if let (Some(b), Some(o)) = (beam, other) {
                    let (bv, ov) = (num(&b["msgs_per_s"]), num(&o["msgs_per_s"]));
                    let i = ix(rows, &id);
                    rows[i].pair(bv, ov, load);
                    log(format!(
                        "  {id}: BEAM→BEAM {bv:.0} msg/s, {} {ov:.0} msg/s, ×{:.2}; receiver CPU per message {} / {} µs (load {load:.1})",
                        rows[i].beamlink_side,
                        ov / bv,
                        beam_rx.map_or("?".into(), |v| format!("{v:.2}")),
                        other_rx.map_or("?".into(), |v| format!("{v:.2}")),
                    ));
                    bench.measurements.push(json!({
                        "workload": "t", "what": format!("{id} receiver cpu"), "round": round,
                        "beam_pair_receiver_cpu_us_per_msg": beam_rx,
                        "receiver_cpu_us_per_msg": other_rx,
                        "receiver": if from_rust { "BEAM" } else { "beamlink" },
                    }));
                }
            }
        }
    }
    nodes.stop();
}

fn sink(bench: &mut Bench) -> Sink<'_> {
    Sink {
        measurements: &mut bench.measurements,
        errors: &mut bench.errors,
    }
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

/// Where measurements and failures go (`Bench`'s fields, borrowed apart from its agents).
struct Sink<'a> {
    measurements: &'a mut Vec<Value>,
    errors: &'a mut Vec<String>,
}

/// One command to an agent; the answer is recorded as a measurement.
fn ask(out: Sink<'_>, agent: &mut Agent, command: &str, what: &str, round: usize) -> Option<Value> {
    let load = procs::load1();
    let error = match agent.ask(command, TPUT_TIMEOUT) {
        Ok(v) if v.get("error").is_none() => {
            out.measurements.push(json!({
                "workload": "t", "what": what, "round": round, "command": command,
                "result": v, "load1": load,
            }));
            return Some(v);
        }
        Ok(v) => v["error"].to_string(),
        Err(e) => e,
    };
    log(format!("FAILED {what} round {round}: {error}"));
    out.errors.push(format!("{what} round {round}: {error}"));
    None
}
