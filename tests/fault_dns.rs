#![cfg(feature = "interop")]
//! DNS answers a Swarm or Kubernetes DNS gives in bad moments (ecosystem.md part C, item 13),
//! beyond what `interop_swarm.rs` covers (records added and removed, the server down, 200
//! records): the same address several times in one answer, an empty NOERROR answer,
//! NXDOMAIN, SERVFAIL. dnsmasq cannot be made to give these on demand, so a scripted
//! responder on loopback ([`support::FakeDns`]) answers `beamlink run --dns-server`; the
//! peer is a real BEAM.
//!
//! Every test that involves a BEAM runs once per release in `BEAMLINK_OTP` (25, 27 and 29 by
//! default), the releases in parallel threads ([`support::each_release`]).

mod support;

use std::net::Ipv4Addr;
use std::time::Duration;
use support::{
    BeamNode, Beamlink, DnsAnswer, Epmd, FakeDns, Otp, TEST_COOKIE, beamlink_stats, unique_name,
    wait_for,
};

const LOCAL: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);

/// Waits until the fake server has been asked `polls` more times (each poll asks A and AAAA).
fn wait_polls(dns: &FakeDns, polls: u64) {
    let start = dns.questions();
    assert!(
        wait_for(
            || dns.questions() >= start + 2 * polls,
            Duration::from_secs(5 * polls + 10)
        ),
        "beamlink stopped polling"
    );
}

/// One link to the BEAM from an answer listing its address three times; then, for several
/// polls each, an empty answer, NXDOMAIN and SERVFAIL, then the address again. The link is
/// never dropped and never dialled again (one nodeup on both sides, no nodedown), each kind of
/// failure is logged once however many polls it lasts, and the recovery once.
///
/// Fails if a failed or empty answer were taken as "no peers" and their links closed or
/// their targets forgotten (the recovery would dial again: a second nodeup), or if every
/// failing poll were logged.
#[test]
fn duplicate_empty_and_failed_answers_never_touch_a_live_link() {
    support::each_release(duplicate_empty_and_failed_answers_never_touch_a_live_link_with);
}

fn duplicate_empty_and_failed_answers_never_touch_a_live_link_with(otp: Otp) {
    let epmd = Epmd::start();
    let basename = unique_name("web");
    let beam = BeamNode::builder(otp, epmd.port()).name(&basename).start();
    beam.eval(
        "net_kernel:monitor_nodes(true, [{node_type, all}]), \
         register(nd, spawn(fun() -> net_kernel:monitor_nodes(true, [{node_type, all}]), \
         L = fun Loop(Acc) -> receive {get, F} -> F ! {nd, lists:reverse(Acc)}, Loop(Acc); \
         {E, N, _} -> Loop([{E, N} | Acc]) end end, L([]) end)), ok",
    )
    .unwrap();
    let dns = FakeDns::start(DnsAnswer::Records(vec![LOCAL, LOCAL, LOCAL]));
    let server = dns.addr().to_string();
    let name = format!("{}@127.0.0.1", unique_name("bldns"));
    let port = epmd.port().to_string();
    let bl = Beamlink::start(
        &[
            "run",
            "--name",
            &name,
            "--epmd",
            "client",
            "--epmd-port",
            &port,
            "--dns-query",
            "tasks.maze_web",
            "--dns-server",
            &server,
            "--peer-basename",
            &basename,
            "--poll-interval",
            "1s",
        ],
        TEST_COOKIE,
    );
    let up = format!("nodeup peer={}", beam.node_name());
    bl.wait_log(&up, Duration::from_secs(15));
    wait_polls(&dns, 3);

    for (answer, logged) in [
        (DnsAnswer::Records(Vec::new()), "has no A or AAAA records"),
        (DnsAnswer::NxDomain, "has no A or AAAA records"),
        (DnsAnswer::ServFail, "DNS lookup of tasks.maze_web failed"),
    ] {
        dns.set(answer.clone());
        wait_polls(&dns, 4);
        assert_eq!(
            bl.count(logged),
            1,
            "{answer:?}: logged once per outage:\n{}",
            bl.log()
        );
        assert_eq!(bl.count("nodedown"), 0, "{answer:?}:\n{}", bl.log());
        assert_eq!(
            beam.eval(&format!("lists:member('{name}', nodes(hidden))"))
                .unwrap(),
            "true",
            "{answer:?}"
        );
    }
    dns.set(DnsAnswer::Records(vec![LOCAL, LOCAL]));
    wait_polls(&dns, 3);
    assert_eq!(bl.count("DNS answers again"), 1, "{}", bl.log());
    assert_eq!(bl.count(&up), 1, "dialled again:\n{}", bl.log());
    assert_eq!(bl.count("nodedown"), 0, "{}", bl.log());
    let stats = beamlink_stats(&beam, &name);
    assert_eq!((stats.links, stats.pending), (1, 0), "{stats:?}");
    let events = beam
        .eval(&format!(
            "nd ! {{get, self()}}, receive {{nd, A}} -> [E || {{E, N}} <- A, N =:= '{name}'] \
             after 2000 -> timeout end"
        ))
        .unwrap();
    assert_eq!(events, "[nodeup]", "the BEAM saw the link change");
    eprintln!(
        "{} DNS questions answered; log:\n{}",
        dns.questions(),
        bl.log()
            .lines()
            .filter(|l| l.contains("DNS") || l.contains("records"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
