#![cfg(feature = "interop")]
//! Proves the real-BEAM test support (tests/support) against every release in BEAMLINK_OTP:
//! epmd, erl nodes driven through the REPL, cross-release distribution through one epmd, and
//! the labyrinth fixture release answering `rpc` and a real `remote` shell.

mod support;

use std::time::Duration;

use support::{BeamNode, Epmd, EvalError, Otp, Release, ReleaseConfig};

fn quoted(text: &str) -> String {
    format!("\"{text}\"")
}

#[test]
fn beam_node_evaluates_on_each_release() {
    let releases = Otp::from_env();
    let epmd = Epmd::start_with(releases[0]);
    for otp in releases {
        let node = BeamNode::start(otp, epmd.port());
        assert_eq!(
            node.eval("erlang:system_info(otp_release)").unwrap(),
            quoted(otp.release()),
            "{otp}"
        );
        let (name, _host) = node.node_name().split_once('@').unwrap();
        assert!(
            epmd.names()
                .iter()
                .any(|(registered, _)| registered == name),
            "{otp}: {name} is not registered with epmd: {:?}",
            epmd.names()
        );
        // os_pid is the BEAM itself, also through otp-run and the chroot.
        assert_eq!(
            node.eval("os:getpid()").unwrap(),
            quoted(&node.os_pid().to_string()),
            "{otp}"
        );
        // Bindings persist between requests; errors come back as errors.
        assert_eq!(node.eval("X = 20 + 1").unwrap(), "21", "{otp}");
        assert_eq!(node.eval("X * 2.").unwrap(), "42", "{otp}");
        match node.eval("1 / 0") {
            Err(EvalError::Exception { error, .. }) => {
                assert!(error.contains("badarith"), "{otp}: {error}")
            }
            other => panic!("{otp}: 1 / 0 gave {other:?}"),
        }
        match node.eval("foo(") {
            Err(EvalError::Parse { .. }) => {}
            other => panic!("{otp}: `foo(` gave {other:?}"),
        }
        assert_eq!(
            node.eval("\"two\\nlines\"").unwrap(),
            "\"two\\nlines\"",
            "{otp}: a value always comes back on one line"
        );
    }
}

#[test]
fn beam_nodes_of_different_releases_ping_through_one_epmd() {
    let releases = Otp::from_env();
    // Each release with the next one (cyclically), served by the epmd of a third party where
    // possible, so every release's epmd and every pairing direction is used once.
    let pairs: Vec<(Otp, Otp, Otp)> = match releases.len() {
        1 => vec![(releases[0], releases[0], releases[0])],
        2 => vec![(releases[0], releases[1], releases[1])],
        n => (0..n)
            .map(|i| (releases[i], releases[(i + 1) % n], releases[(i + 2) % n]))
            .collect(),
    };
    for (a, b, epmd_otp) in pairs {
        let epmd = Epmd::start_with(epmd_otp);
        let node_a = BeamNode::start(a, epmd.port());
        let node_b = BeamNode::start(b, epmd.port());
        let context = format!("{a} -> {b} via {epmd_otp}'s epmd");
        assert_eq!(
            node_a
                .eval(&format!("net_adm:ping('{}')", node_b.node_name()))
                .unwrap(),
            "pong",
            "{context}"
        );
        assert_eq!(
            node_a
                .eval(&format!(
                    "rpc:call('{}', erlang, system_info, [otp_release])",
                    node_b.node_name()
                ))
                .unwrap(),
            quoted(b.release()),
            "{context}"
        );
        let sees_a = format!("lists:member('{}', nodes())", node_a.node_name());
        node_b
            .wait_until(&sees_a, "true", Duration::from_secs(5))
            .unwrap();
        // Killing the BEAM by its pid (what tests do) takes it off the network.
        node_a.kill();
        node_b
            .wait_until(&sees_a, "false", Duration::from_secs(10))
            .unwrap_or_else(|err| panic!("{context}: after killing {}: {err}", node_a.os_pid()));
    }
}

#[test]
fn labyrinth_release_answers_rpc_and_remote() {
    let releases = Otp::from_env();
    let epmd = Epmd::start_with(releases[0]);
    for otp in releases {
        let release = Release::start(otp, ReleaseConfig::unique(epmd.port()));
        let node = release.node_name().to_owned();
        assert_eq!(
            release.rpc("GenServer.call(:labyrinth_echo, {:echo, :hello})"),
            "{:echo, :hello}",
            "{otp}"
        );
        assert_eq!(
            release.rpc("GenServer.call(:labyrinth_echo, :info).otp_release"),
            quoted(otp.release()),
            "{otp}"
        );
        // No DNS_CLUSTER_QUERY: the poller is not running.
        assert_eq!(release.rpc("Process.whereis(Labyrinth.DnsPoller)"), "nil");
        assert_eq!(
            release.remote("node()"),
            format!(":{}", quoted(&node)),
            "{otp}"
        );
        assert_eq!(
            release.remote("Enum.sum(1..100)"),
            "5050",
            "{otp}: remote shell"
        );

        // A hidden erl node of the same release talks to the release's echo server.
        let probe = BeamNode::builder(otp, epmd.port()).hidden(true).start();
        assert_eq!(
            probe
                .eval(&format!(
                    "gen_server:call({{labyrinth_echo, '{node}'}}, {{echo, [probe, 1]}})"
                ))
                .unwrap(),
            "{echo,[probe,1]}",
            "{otp}"
        );
        assert_eq!(
            probe
                .eval(&format!(
                    "{{labyrinth_echo, '{node}'}} ! {{ping, self(), 7}}, \
                     receive {{pong, T}} -> T after 5000 -> timeout end"
                ))
                .unwrap(),
            "7",
            "{otp}"
        );
        let hidden = release.rpc("GenServer.call(:labyrinth_echo, :info).hidden");
        assert!(
            hidden.contains(probe.node_name()),
            "{otp}: :info.hidden = {hidden}"
        );
        let beam = release.os_pid();
        drop(release);
        assert!(
            !std::path::Path::new(&format!("/proc/{beam}")).exists()
                || std::fs::read_to_string(format!("/proc/{beam}/stat"))
                    .is_ok_and(|stat| stat.contains(") Z")),
            "{otp}: release BEAM {beam} still runs after drop"
        );
    }
}
