#![cfg(feature = "interop")]
//! beamlink on a network with IPv6 addresses only, against real BEAMs started with
//! `-proto_dist inet6_tcp`, one OTP release of `BEAMLINK_OTP` per pair of namespaces (all in
//! parallel).
//!
//! ```text
//!   beam netns (fd00:beef::2)  ==veth==  beamlink netns (fd00:beef::3)
//!   epmd, labyrinth@fd00:beef::2         beamlink@fd00:beef::3 (serves EPMD), disco@...,
//!                                        dnsmasq: peers.v6.test AAAA fd00:beef::2
//! ```
//!
//! Both namespaces have `lo` with `::1` only (127.0.0.1 removed) and no IPv4 address at all.
//! `beamlink run` without peers names itself after its IPv6 address, serves EPMD (nothing
//! answers at 127.0.0.1 or ::1) and registers with it over `::1`; the BEAM dials it by name
//! and the contract's rows hold. A second `beamlink run` finds the BEAM through a DNS answer
//! with an AAAA record only, names itself `disco@fd00:beef::3`, registers with the first
//! one's EPMD over `::1`, listens on `--listen [fd00:beef::3]:9100`, and connects.

mod support;

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use support::netns::{NsEpmd, ip};
use support::{Beamlink, Otp, Release, ReleaseConfig, TEST_COOKIE, wait_for};

const BEAM_IP: &str = "fd00:beef::2";
const OUR_IP: &str = "fd00:beef::3";
const QUERY: &str = "peers.v6.test";
const DNS_PORT: u16 = 5353;
const PATIENCE: Duration = Duration::from_secs(45);

#[test]
fn a_beam_on_ipv6_only_dials_beamlink_by_name() {
    let otps = Otp::from_env();
    std::thread::scope(|scope| {
        let runs: Vec<_> = otps
            .iter()
            .map(|&otp| scope.spawn(move || ipv6_only(otp)))
            .collect();
        for run in runs {
            if let Err(panic) = run.join() {
                std::panic::resume_unwind(panic);
            }
        }
    });
}

fn ipv6_only(otp: Otp) {
    let pair = Pair::create();
    let _epmd = NsEpmd::start(otp, &pair.beam, None);
    let _dns = Dnsmasq::start(&pair.ours);
    let home = Beamlink::start_with(
        support::beamlink_command_in_netns(&pair.ours, &["run", "--name", "beamlink"]),
        TEST_COOKIE,
    );
    let ours = format!("beamlink@{OUR_IP}");
    home.wait_log(&format!("node started node={ours}"), PATIENCE);
    home.wait_log("serving EPMD on port 4369 and registered with it", PATIENCE);
    let log = home.log();
    assert!(
        log.contains("node name uses the first global IPv6 address"),
        "{otp}: {log}"
    );
    assert!(log.contains("listen=Some([::]:"), "{otp}: {log}");

    let beam = format!("labyrinth@{BEAM_IP}");
    let release = Release::start(
        otp,
        ReleaseConfig::new(beam.clone(), 4369)
            .netns(pair.beam.clone())
            .env(
                "ELIXIR_ERL_OPTIONS",
                "-start_epmd false -proto_dist inet6_tcp",
            ),
    );
    assert_eq!(
        release.rpc(&format!(r#"Node.ping(:"{ours}")"#)),
        ":pong",
        "{otp}: the BEAM dials {ours}"
    );
    contract_rows(&release, otp, &beam, &ours);

    let server = format!("[{OUR_IP}]:{DNS_PORT}");
    let listen = format!("[{OUR_IP}]:9100");
    let disco = Beamlink::start_with(
        support::beamlink_command_in_netns(
            &pair.ours,
            &[
                "run",
                "--name",
                "disco",
                "--dns-query",
                QUERY,
                "--dns-server",
                &server,
                "--peer-basename",
                "labyrinth",
                "--poll-interval",
                "1s",
                "--listen",
                &listen,
            ],
        ),
        TEST_COOKIE,
    );
    let disco_name = format!("disco@{OUR_IP}");
    disco.wait_log(&format!("nodeup peer={beam} "), PATIENCE);
    let log = disco.log();
    assert!(
        log.contains(&format!("node started node={disco_name}")),
        "{otp}: {log}"
    );
    assert!(
        log.contains(&format!(
            "node name uses the address that routes to {BEAM_IP}"
        )),
        "{otp}: {log}"
    );
    assert!(
        log.contains("registered with the EPMD at [::1]:4369"),
        "{otp}: {log}"
    );
    assert!(
        log.contains(&format!("listen=Some({listen})")),
        "{otp}: {log}"
    );
    let hidden = release.rpc("Node.list(:hidden)");
    for name in [&ours, &disco_name] {
        assert!(
            hidden.contains(&format!(r#":"{name}""#)),
            "{otp}: Node.list(:hidden) lacks {name}: {hidden}"
        );
    }
    contract_rows(&release, otp, &beam, &disco_name);
    eprintln!(
        "[ipv6] {otp}: {beam} dialled {ours}; {disco_name} found it by AAAA; contract rows hold"
    );
    drop((disco, home, release));
}

/// The contract's rows about beamlink `r`, asked on `node` through its release.
fn contract_rows(release: &Release, otp: Otp, node: &str, r: &str) {
    let rows = [
        (
            format!(r#":"{r}" in Node.list(:connected)"#),
            "true".to_owned(),
        ),
        (format!(r#":"{r}" in Node.list()"#), "false".to_owned()),
    ];
    for (expr, want) in rows {
        assert_eq!(release.rpc(&expr), want, "{otp} on {node}: {expr}");
    }
    release.assert_contract_rows(otp, node, r);
}

/// Two namespaces joined by a veth pair, with IPv6 addresses only; deleted on drop.
struct Pair {
    beam: String,
    ours: String,
}

impl Pair {
    fn create() -> Pair {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let base = format!("bl6-{}-{n}", std::process::id());
        let pair = Pair {
            beam: format!("{base}-b"),
            ours: format!("{base}-o"),
        };
        ip(&["netns", "add", &pair.beam]);
        ip(&["netns", "add", &pair.ours]);
        // Created inside the first namespace, so the interface names never meet the host's.
        ip(&[
            "-n", &pair.beam, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0",
            "netns", &pair.ours,
        ]);
        for (ns, addr) in [(&pair.beam, BEAM_IP), (&pair.ours, OUR_IP)] {
            ip(&["-n", ns, "link", "set", "lo", "up"]);
            // IPv6 only: bringing lo up gave it 127.0.0.1 too.
            ip(&["-n", ns, "addr", "del", "127.0.0.1/8", "dev", "lo"]);
            let cidr = format!("{addr}/64");
            ip(&["-n", ns, "addr", "add", &cidr, "dev", "eth0", "nodad"]);
            ip(&["-n", ns, "link", "set", "eth0", "up"]);
        }
        let v4 = Command::new("ip")
            .args(["-n", &pair.ours, "-4", "-o", "addr"])
            .output()
            .expect("ip addr");
        assert!(v4.stdout.is_empty(), "an IPv4 address is left: {v4:?}");
        pair
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        for ns in [&self.ours, &self.beam] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// dnsmasq in a namespace answering `QUERY` with one AAAA record (the BEAM) and nothing else.
struct Dnsmasq(Child);

impl Dnsmasq {
    fn start(ns: &str) -> Dnsmasq {
        let child = Command::new("ip")
            .args(["netns", "exec", ns, "dnsmasq"])
            .args(support::netns::DNSMASQ_FLAGS)
            .args(["--pid-file=", "--local-ttl=0", "--log-facility=-"])
            .arg(format!("--listen-address={OUR_IP}"))
            .arg(format!("--port={DNS_PORT}"))
            .arg(format!("--host-record={QUERY},{BEAM_IP}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start dnsmasq: {e} (run scripts/setup)"));
        let mut dns = Dnsmasq(child);
        let filter = format!("sport = :{DNS_PORT}");
        let listening = wait_for(
            || {
                matches!(dns.0.try_wait(), Ok(None))
                    && Command::new("ip")
                        .args(["netns", "exec", ns, "ss", "-Hltn", &filter])
                        .output()
                        .is_ok_and(|o| !o.stdout.is_empty())
            },
            Duration::from_secs(10),
        );
        assert!(listening, "dnsmasq did not start in {ns}");
        dns
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
