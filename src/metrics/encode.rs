//! The exposition: every metric of `docs/contract.md` ("Watching and meshing the cluster"),
//! in the Prometheus text format 0.0.4, encoded by the `prometheus` crate's
//! `TextEncoder`.
//!
//! Why not `prometheus-client`: it writes OpenMetrics only, where a counter's family is
//! `x` and its sample `x_total`; `promtool check metrics` (Prometheus 2.42, Debian
//! bookworm) parses the 0.0.4 format and rejects that as a family without help text.
//!
//! Every scrape builds a fresh registry from the current state, so nodes that left take
//! their series with them. Label values are node names, kinds and results: never the
//! cookie or key material.

use super::Sources;
use prometheus::core::Collector;
use prometheus::{
    Encoder, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};
use std::collections::BTreeSet;
use std::sync::atomic::Ordering;

/// `text/plain; version=0.0.4`.
pub const CONTENT_TYPE: &str = prometheus::TEXT_FORMAT;

/// Registers `metric`; a name clash is a programming error caught by the tests.
fn add<C: Collector + Clone + 'static>(registry: &Registry, metric: &C) {
    registry
        .register(Box::new(metric.clone()))
        .expect("metric names are unique");
}

fn gauge(registry: &Registry, name: &str, help: &str, value: i64) {
    let g = IntGauge::new(name, help).expect("valid metric name");
    g.set(value);
    add(registry, &g);
}

fn counter(registry: &Registry, name: &str, help: &str, value: u64) {
    let c = IntCounter::new(name, help).expect("valid metric name");
    c.inc_by(value);
    add(registry, &c);
}

fn gauge_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric name");
    add(registry, &g);
    g
}

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric name");
    add(registry, &c);
    c
}

fn as_i64(v: impl TryInto<i64>) -> i64 {
    v.try_into().unwrap_or(i64::MAX)
}

/// The exposition of the current state.
pub fn exposition(sources: &Sources) -> String {
    let registry = Registry::new();
    let node = &sources.node;
    gauge(&registry, "beamlink_up", "1 while beamlink runs.", 1);
    let connected: BTreeSet<String> = node
        .peers()
        .into_iter()
        .map(|p| p.name.to_string())
        .collect();
    gauge(
        &registry,
        "beamlink_peers",
        "Distribution connections beamlink has now.",
        as_i64(connected.len()),
    );
    let peer_up = gauge_vec(
        &registry,
        "beamlink_peer_up",
        "1 when beamlink is connected to the node, 0 for a peer it should reach and does not.",
        &["node"],
    );
    for name in &connected {
        peer_up.with_label_values(&[name.as_str()]).set(1);
    }
    if let Some(cluster) = &sources.cluster {
        for target in cluster.targets() {
            let name = target.to_string();
            if !connected.contains(&name) {
                peer_up.with_label_values(&[name.as_str()]).set(0);
            }
        }
        counter(
            &registry,
            "beamlink_dns_polls_total",
            "DNS polls made.",
            cluster.dns_polls.load(Ordering::Relaxed),
        );
        counter(
            &registry,
            "beamlink_dns_failures_total",
            "DNS polls that got no answer or no records.",
            cluster.dns_failures.load(Ordering::Relaxed),
        );
    }
    connection_metrics(&registry, node);
    let handshakes = counter_vec(
        &registry,
        "beamlink_handshake_failures_total",
        "Distribution handshakes (ours and the peers') that failed, by cause (cookie, timeout, refused, io, protocol).",
        &["cause"],
    );
    for (cause, n) in node.handshake_failures() {
        handshakes.with_label_values(&[cause]).inc_by(n);
    }
    let disconnects = counter_vec(
        &registry,
        "beamlink_disconnects_total",
        "Connections lost, by reason (closed_by_peer, io, tick_timeout, send_stalled, protocol, bad_message, local).",
        &["reason"],
    );
    for (reason, n) in node.disconnects() {
        disconnects.with_label_values(&[reason]).inc_by(n);
    }
    let bad = counter_vec(
        &registry,
        "beamlink_bad_messages_total",
        "Messages from peers that did not decode, by what failed (header, fragment, term, control); dropped, and with --on-bad-message drop-link their connection closed.",
        &["kind"],
    );
    for (kind, n) in node.bad_messages() {
        bad.with_label_values(&[kind]).inc_by(n);
    }
    if let Some(watch) = &sources.watch {
        cluster_metrics(&registry, watch);
    }
    let mut out = Vec::new();
    // Encoding into a Vec cannot fail but for a metric without samples, which cannot be.
    let _ = TextEncoder::new().encode(&registry.gather(), &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// Traffic of each connection since it came up (a reconnect starts again from zero, which
/// Prometheus reads as a counter reset).
fn connection_metrics(registry: &Registry, node: &crate::node::Node) {
    let families = [
        (
            "beamlink_peer_bytes_received_total",
            "Bytes received from the node on the current connection.",
        ),
        (
            "beamlink_peer_bytes_sent_total",
            "Bytes sent to the node on the current connection.",
        ),
        (
            "beamlink_peer_messages_received_total",
            "Messages (ticks excluded) received from the node on the current connection.",
        ),
        (
            "beamlink_peer_messages_sent_total",
            "Messages (ticks excluded) sent to the node on the current connection.",
        ),
    ]
    .map(|(name, help)| counter_vec(registry, name, help, &["node"]));
    let ticks_missed = gauge_vec(
        registry,
        "beamlink_peer_ticks_missed",
        "Tick intervals in a row in which nothing arrived from the node (it is declared down at net_tickintensity, 4).",
        &["node"],
    );
    for connection in node.connections() {
        let name = connection.peer().to_string();
        let stats = connection.stats();
        ticks_missed
            .with_label_values(&[name.as_str()])
            .set(as_i64(stats.ticks_missed.load(Ordering::Relaxed)));
        let values = [
            stats.bytes_in.load(Ordering::Relaxed),
            stats.bytes_out.load(Ordering::Relaxed),
            stats.messages_in.load(Ordering::Relaxed),
            stats.messages_out.load(Ordering::Relaxed),
        ];
        for (family, value) in families.iter().zip(values) {
            family.with_label_values(&[name.as_str()]).inc_by(value);
        }
    }
}

fn cluster_metrics(registry: &Registry, watch: &crate::watch::Watch) {
    let connects = counter_vec(
        registry,
        "beamlink_mesh_connects_total",
        "net_kernel:connect_node/1 requests --mesh made, by result (true, false, ignored, error).",
        &["result"],
    );
    for (result, n) in watch.connects() {
        connects.with_label_values(&[result]).inc_by(n);
    }
    let Some(s) = watch.latest() else { return };
    let view = &s.view;
    let nodes = gauge_vec(
        registry,
        "beamlink_cluster_nodes",
        "Nodes in the cluster view (linked to beamlink or listed by a node it is linked to), by kind.",
        &["kind"],
    );
    let (visible, hidden) = view.counts();
    nodes.with_label_values(&["visible"]).set(as_i64(visible));
    nodes.with_label_values(&["hidden"]).set(as_i64(hidden));
    let links = gauge_vec(
        registry,
        "beamlink_cluster_link",
        "1 for each direction seen: node `from` lists `to` in erlang:nodes(visible).",
        &["from", "to"],
    );
    for (from, to) in view.directed() {
        links
            .with_label_values(&[from.as_str(), to.as_str()])
            .set(1);
    }
    gauge(
        registry,
        "beamlink_cluster_partitions",
        "Connected components of the visible nodes beamlink is linked to (1 is healthy, 0 without any).",
        as_i64(view.partitions()),
    );
    gauge(
        registry,
        "beamlink_cluster_asymmetric_links",
        "Pairs where one node lists the other and the other does not.",
        as_i64(view.asymmetric.len()),
    );
    gauge(
        registry,
        "beamlink_cluster_missing_links",
        "Pairs of visible nodes that both answered and neither lists the other.",
        as_i64(view.missing.len()),
    );
    gauge(
        registry,
        "beamlink_cluster_silent_nodes",
        "Linked nodes that did not answer the latest view in time.",
        as_i64(view.silent().count()),
    );
    gauge(
        registry,
        "beamlink_mesh_split_pairs",
        "Pairs --mesh connected that were disconnected again (prevent_overlapping_partitions); backed off.",
        as_i64(s.split.len()),
    );
    let memory = gauge_vec(
        registry,
        "beamlink_beam_memory_bytes",
        "erlang:memory/0 of each BEAM node, by kind.",
        &["node", "kind"],
    );
    let processes = gauge_vec(
        registry,
        "beamlink_beam_processes",
        "erlang:system_info(process_count) of each BEAM node.",
        &["node"],
    );
    let run_queue = gauge_vec(
        registry,
        "beamlink_beam_run_queue",
        "erlang:statistics(run_queue) of each BEAM node.",
        &["node"],
    );
    let uptime = gauge_vec(
        registry,
        "beamlink_beam_uptime_seconds",
        "Seconds since each BEAM node started (erlang:statistics(wall_clock)).",
        &["node"],
    );
    for (name, st) in &s.stats {
        let name = name.as_str();
        for (kind, bytes) in &st.memory {
            memory
                .with_label_values(&[name, kind.as_str()])
                .set(as_i64(*bytes));
        }
        processes
            .with_label_values(&[name])
            .set(as_i64(st.processes));
        run_queue
            .with_label_values(&[name])
            .set(as_i64(st.run_queue));
        uptime
            .with_label_values(&[name])
            .set(as_i64(st.uptime_ms / 1000));
    }
    let info = gauge_vec(
        registry,
        "beamlink_beam_info",
        "1 per BEAM node, with its OTP release.",
        &["node", "otp_release"],
    );
    for (name, release) in &s.releases {
        info.with_label_values(&[name.as_str(), release.as_str()])
            .set(1);
    }
}
