//! What a BEAM node says about its own load, read over `erpc` with functions every node
//! has (nothing is loaded on it): `erlang:memory/0`, `erlang:system_info(process_count)`,
//! `erlang:statistics(run_queue)` and `erlang:statistics(wall_clock)` (ERTS's
//! `erl_bif_info.c`). Used by `beamlink nodes --stats` and by the watcher of `run`
//! ([`crate::watch`]) for the `beamlink_beam_*` metrics.
//!
//! The calls are made concurrently over the one connection: one round trip, four
//! short-lived processes on the node.

use super::probe::Failure;
use crate::node::Node;
use crate::proto::node_name::NodeName;
use crate::proto::term::Term;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// One node's figures.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BeamStats {
    /// `erlang:memory/0`: bytes by kind (`total`, `processes`, `binary`, `ets`, ...).
    pub memory: BTreeMap<String, u64>,
    /// `erlang:system_info(process_count)`.
    pub processes: u64,
    /// `erlang:statistics(run_queue)`: processes ready to run, all normal run queues.
    pub run_queue: u64,
    /// Milliseconds since the node started (`erlang:statistics(wall_clock)`, first element).
    pub uptime_ms: u64,
}

impl BeamStats {
    /// `erlang:memory(total)`, when the node reported it.
    pub fn total_memory(&self) -> Option<u64> {
        self.memory.get("total").copied()
    }
}

/// Asks `peer` for its figures, each call limited to `timeout`. A node that is not a BEAM
/// (another beamlink) answers `undef`: that is an `Err` like any failed call.
pub async fn beam_stats(
    node: &Node,
    peer: &NodeName,
    timeout: Duration,
) -> Result<BeamStats, Failure> {
    let call = |function: &'static str, args: Vec<Term>, what: &'static str| async move {
        node.rpc_call(peer, "erlang", function, args, timeout)
            .await
            .map_err(|error| Failure::Rpc {
                call: what.into(),
                error,
            })
    };
    let (memory, processes, run_queue, wall_clock) = tokio::join!(
        call("memory", vec![], "erlang:memory()"),
        call(
            "system_info",
            vec![Term::atom("process_count")],
            "erlang:system_info(process_count)"
        ),
        call(
            "statistics",
            vec![Term::atom("run_queue")],
            "erlang:statistics(run_queue)"
        ),
        call(
            "statistics",
            vec![Term::atom("wall_clock")],
            "erlang:statistics(wall_clock)"
        ),
    );
    Ok(BeamStats {
        memory: parse_memory(&memory?),
        processes: non_negative(&processes?),
        run_queue: non_negative(&run_queue?),
        uptime_ms: wall_clock?
            .as_tuple()
            .and_then(|t| t.first())
            .map(non_negative)
            .unwrap_or(0),
    })
}

/// `[{total, N}, {processes, N}, ...]`; anything else in the list is skipped.
fn parse_memory(t: &Term) -> BTreeMap<String, u64> {
    t.as_list()
        .unwrap_or_default()
        .iter()
        .filter_map(|item| match item.as_tuple() {
            Some([kind, value]) => Some((kind.as_atom()?.as_str().to_string(), value.as_i64()?)),
            _ => None,
        })
        .filter_map(|(k, v)| u64::try_from(v).ok().map(|v| (k, v)))
        .collect()
}

fn non_negative(t: &Term) -> u64 {
    t.as_i64().and_then(|v| u64::try_from(v).ok()).unwrap_or(0)
}

/// The figures of the nodes that have them, one row each, for `beamlink nodes --stats`
/// (empty when none has).
pub fn stats_table(nodes: &[super::NodeView]) -> String {
    use std::fmt::Write as _;
    let header = ["NODE", "MEMORY", "PROCESSES", "RUN QUEUE", "UPTIME"].map(String::from);
    let rows: Vec<[String; 5]> = nodes
        .iter()
        .filter_map(|n| {
            let s = n.stats.as_ref()?;
            Some([
                n.name.clone(),
                s.total_memory().map_or_else(|| "-".into(), human_bytes),
                s.processes.to_string(),
                s.run_queue.to_string(),
                humantime::format_duration(Duration::from_secs(s.uptime_ms / 1000)).to_string(),
            ])
        })
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    let widths: Vec<usize> = (0..5)
        .map(|i| {
            rows.iter()
                .map(|r| r[i].len())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (cell, w))| {
                if i == 0 {
                    format!("{cell:w$}")
                } else {
                    format!("{cell:>w$}")
                }
            })
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    out
}

/// Bytes in IEC units for a table: `412.3 MiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_is_read_from_the_kind_value_list() {
        let t = Term::list([
            Term::tuple([Term::atom("total"), Term::Int(25_000_000)]),
            Term::tuple([Term::atom("ets"), Term::Int(400_000)]),
            Term::atom("junk"),
            Term::tuple([Term::atom("bad"), Term::Int(-1)]),
        ]);
        let m = parse_memory(&t);
        assert_eq!(m.len(), 2);
        assert_eq!(m["total"], 25_000_000);
        assert_eq!(parse_memory(&Term::atom("undefined")).len(), 0);
    }

    #[test]
    fn bytes_read_in_iec_units() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(3 * 1024 * 1024 / 2), "1.5 MiB");
    }
}
