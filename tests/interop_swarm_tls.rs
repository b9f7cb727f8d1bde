#![cfg(feature = "interop")]
//! A TLS cluster in the simulated Docker Swarm (`support::Swarm`): three `labyrinth`
//! releases, one per OTP release in `BEAMLINK_OTP` (25, 27 and 29 by default), started with
//! `-proto_dist inet_tls -ssl_dist_optfile FILE` (mutual TLS, each node with a certificate of
//! its own naming its address as IP SAN and DNS SAN, since OTP 25 checks the DNS SANs), mesh
//! among themselves through their DNS poller; `beamlink run --tls-optfile FILE --dns-query
//! tasks.<stack>_<service> --peer-basename labyrinth` in a container of its own discovers
//! and joins them:
//!
//! * the releases' links among themselves are TLS (`net_kernel:node_info/2`'s protocol);
//! * every release lists beamlink in `Node.list(:hidden)`, over TLS too;
//! * `:rpc.call(beamlink, :erlang, :nodes, [:connected])` lists every release;
//! * beamlink's `:info` shows, per release, the TLS version that release speaks (1.2 for
//!   OTP 25 and 27, 1.3 for 29) and a cipher suite;
//! * `beamlink nodes --tls-optfile FILE` (a one-shot in the same container) shows every
//!   release seeing the other two.
//!
//! Fails without TLS in beamlink's dialler (the releases would refuse the plain name, the
//! nodes never list beamlink), without `:ssl` in the fixture release (the releases do not
//! boot with `inet_tls`), or with certificates lacking the DNS SAN (OTP 25 refuses them).

mod support;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use support::{BASENAME, Otp, Pki, Swarm, TEST_COOKIE, beamlink_command_in_netns, wait_for};

/// How long what should take a few poll intervals may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(60);

/// The TLS version an `inet_tls` node of `otp` and beamlink agree on (see docs/tls.md).
fn tls_version(otp: Otp) -> &'static str {
    if otp == Otp::V29 {
        "tlsv1.3"
    } else {
        "tlsv1.2"
    }
}

#[test]
fn beamlink_discovers_and_joins_a_tls_swarm_of_otp_releases() {
    let pki = Arc::new(Pki::new());
    let for_nodes = Arc::clone(&pki);
    let mut swarm = Swarm::builder()
        .nodes(3)
        .node_env(Arc::new(move |ip: IpAddr| {
            let optfile = for_nodes.node_optfile(ip);
            vec![(
                "ELIXIR_ERL_OPTIONS".to_owned(),
                format!(
                    "-start_epmd false -proto_dist inet_tls -ssl_dist_optfile {}",
                    optfile.display()
                ),
            )]
        }))
        .start();
    eprintln!("[swarm tls] {}", swarm.describe());
    let names = swarm.node_names();

    // The releases mesh among themselves, over TLS.
    for node in swarm.nodes() {
        let others: Vec<&String> = names.iter().filter(|n| *n != node.name()).collect();
        assert!(
            wait_for(
                || {
                    let visible = node.status().visible;
                    others.iter().all(|o| visible.contains(o))
                },
                PATIENCE
            ),
            "{} ({}) never listed {others:?}: {:?}",
            node.name(),
            node.otp(),
            node.status()
        );
        let protocols = node.release().rpc(
            "for n <- Node.list(), do: :net_kernel.node_info(n, :address) |> elem(1) |> elem(3)",
        );
        assert_eq!(
            protocols,
            "[:tls, :tls]",
            "{}: the releases' own links",
            node.name()
        );
    }

    let client = swarm.add_client(false);
    let ip = client.ipv4().expect("the client container has IPv4");
    let optfile = pki.node_optfile(IpAddr::V4(ip)).display().to_string();
    let query = swarm.query();
    let server = swarm.dns_server();
    let tls_dns = [
        "--tls-optfile",
        optfile.as_str(),
        "--dns-query",
        &query,
        "--dns-server",
        &server,
        "--peer-basename",
        BASENAME,
    ];
    let args = [
        &["run", "--name", "beamlink", "--poll-interval", "1s"][..],
        &tls_dns,
    ]
    .concat();
    let beamlink = client.beamlink(&args);
    beamlink.wait_log("node started", Duration::from_secs(20));
    let me = format!("beamlink@{ip}");
    for node in &names {
        beamlink.wait_log(&format!("nodeup peer={node} "), PATIENCE);
    }

    for node in swarm.nodes() {
        assert!(
            wait_for(|| node.status().hidden.contains(&me), PATIENCE),
            "{} ({}) never listed {me} in Node.list(:hidden): {:?}",
            node.name(),
            node.otp(),
            node.status()
        );
        let protocol = node.release().rpc(&format!(
            r#":net_kernel.node_info(:"{me}", :address) |> elem(1) |> elem(3)"#
        ));
        assert_eq!(protocol, ":tls", "{}: the link to {me}", node.name());
        let seen = node.release().rpc(&format!(
            r#":rpc.call(:"{me}", :erlang, :nodes, [:connected])"#
        ));
        for other in &names {
            assert!(
                seen.contains(&format!(":\"{other}\"")),
                "asked from {}: nodes(:connected) on {me} lacks {other}: {seen}",
                node.name()
            );
        }
        let tls = node.release().rpc(&format!(
            r#"GenServer.call({{:beamlink, :"{me}"}}, :info).peers |> Enum.find(&(&1.name == node())) |> Map.get(:tls)"#
        ));
        let version = tls_version(node.otp());
        assert!(
            tls.contains(&format!("version: :\"{version}\"")) && tls.contains("cipher_suite: "),
            "{} ({}): tls in beamlink's :info = {tls}",
            node.name(),
            node.otp()
        );
        eprintln!(
            "[swarm tls] {} ({}) lists {me} over TLS; beamlink's :info: {tls}",
            node.name(),
            node.otp()
        );
    }

    // The one-shot `nodes` from the same container: every release sees the other two.
    let nodes_args = [&["nodes"][..], &tls_dns].concat();
    let out = beamlink_command_in_netns(client.netns(), &nodes_args)
        .env("BEAMLINK_COOKIE", TEST_COOKIE)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("beamlink nodes");
    let table = String::from_utf8_lossy(&out.stdout);
    eprintln!(
        "[swarm tls] beamlink nodes:\n{table}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "beamlink nodes:\n{table}");
    assert!(
        table.contains("full mesh: every pair of the 3 visible nodes is connected"),
        "beamlink nodes:\n{table}"
    );
    for node in &names {
        let row = table
            .lines()
            .find(|l| l.split_whitespace().next() == Some(node.as_str()))
            .unwrap_or_else(|| panic!("beamlink nodes has no row for {node}:\n{table}"));
        for other in names.iter().filter(|o| *o != node) {
            assert!(
                row.contains(other.as_str()),
                "beamlink nodes: {node} does not see {other}:\n{table}"
            );
        }
    }
    drop(beamlink);
    drop(swarm);
}
