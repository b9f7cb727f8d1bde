//! The watcher task of `run`: every interval (and shortly after a node connects or
//! disconnects) it asks every visible node beamlink is linked to, concurrently and
//! read-only, whom
//! it sees ([`crate::diagnose`]'s `erlang:nodes` questions, the ones `beamlink nodes`
//! asks) and, when figures are served, how loaded it is ([`crate::diagnose::beam_stats`]);
//! each node has
//! [`WatchConfig::query_timeout`] for all of it, so a hung node (SIGSTOP, overloaded) is
//! reported as silent without delaying the view of the others. The view's changes are
//! logged once; with `--mesh` the planner's requests run as tasks of their own, one per
//! pair at most.
//!
//! Nothing here dials: a node that is not linked when its turn comes is skipped, so the
//! connection manager's backoff ([`crate::cluster`]) stays the only thing that dials.

use super::planner::{Connect, Outcome, Planner};
use super::view::{Answer, Report, View, diff};
use super::{MeshMode, Snapshot, Watch};
use crate::diagnose::BeamStats;
use crate::node::{Node, NodeEvent, PeerInfo};
use crate::proto::flags::DistFlags;
use crate::proto::node_name::NodeName;
use crate::proto::term::Term;
use futures_util::StreamExt;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{debug, info, warn};

/// Nodes asked at once.
const MAX_CONCURRENT_QUERIES: usize = 64;
/// A view triggered by a node going up or down waits this long for others to follow.
const SETTLE_AFTER_EVENT: Duration = Duration::from_millis(200);

/// One node's answers.
struct Answered {
    report: Report,
    stats: Option<BeamStats>,
    /// `None`: not asked (known already); `Some(None)`: not a BEAM.
    release: Option<Option<String>>,
}

/// A view in progress: polled by the watcher's own task (a view is no task of its own, so
/// the node's task count does not move with it).
type Viewing = Pin<Box<dyn Future<Output = Vec<Answered>> + Send>>;

/// Runs the watcher until the node shuts down; the latest view goes to `watch`.
pub async fn run(node: Node, watch: Arc<Watch>) {
    let config = watch.config().clone();
    {
        let (me, w) = (node.name().clone(), watch.clone());
        node.set_cluster_source(Arc::new(move || super::term::cluster_term(&me, &w)));
    }
    let (tx, mut rx) = mpsc::channel::<(Connect, Outcome)>(256);
    let mut planner = Planner::new(config.mesh, config.interval);
    let mut previous = View::default();
    let mut releases: BTreeMap<NodeName, Option<String>> = BTreeMap::new();
    let mut tick = tokio::time::interval(config.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut events = node.events();
    let mut viewing: Option<Viewing> = None;
    // When the view in progress started: its duration goes on the debug line, which the
    // bench's workload w reads (docs/performance.md).
    let mut view_began = Instant::now();
    let mut soon: Option<Instant> = None;
    let mut tasks = JoinSet::new();
    if config.mesh != MeshMode::Off {
        info!(
            mode = config.mesh.as_str(),
            interval = ?config.interval,
            "mesh: asking visible nodes that are not connected to connect (net_kernel:connect_node/1)"
        );
    }
    loop {
        let start_view = tokio::select! {
            _ = node.shutting_down() => {
                tasks.shutdown().await;
                return;
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => false,
            _ = tick.tick() => true,
            _ = tokio::time::sleep_until(soon.unwrap_or_else(Instant::now)), if soon.is_some() => {
                soon = None;
                true
            }
            ev = events.recv() => {
                let changed = matches!(
                    ev,
                    Ok(NodeEvent::NodeUp { .. } | NodeEvent::NodeDown { .. })
                        | Err(tokio::sync::broadcast::error::RecvError::Lagged(_))
                );
                if changed && soon.is_none() {
                    soon = Some(Instant::now() + SETTLE_AFTER_EVENT);
                }
                false
            }
            answers = async { viewing.as_mut().expect("guarded").await }, if viewing.is_some() => {
                viewing = None;
                let took = view_began.elapsed();
                let view = absorb(&node, &watch, &mut planner, &previous, &mut releases, answers, took);
                if config.mesh != MeshMode::Off {
                    let (connects, notes) = planner.plan(&view, Instant::now());
                    for note in notes {
                        log_line(note.is_warning(), &note.to_string());
                    }
                    for connect in connects {
                        // One line per request: what fault_mesh.rs counts per pair.
                        debug!("mesh: request: {} connect_node({})", connect.on, connect.to);
                        let (node, tx) = (node.internal(), tx.clone());
                        let timeout = config.connect_timeout;
                        tasks.spawn(async move {
                            let outcome = ask_to_connect(&node, &connect, timeout).await;
                            let _ = tx.send((connect, outcome)).await;
                        });
                    }
                }
                previous = view;
                false
            }
            Some((connect, outcome)) = rx.recv() => {
                if let Some(note) = planner.finished(&connect, outcome, Instant::now()) {
                    log_line(note.is_warning(), &note.to_string());
                }
                watch.set_connects(planner.totals());
                false
            }
        };
        if start_view && viewing.is_none() {
            // Visible nodes only: they are the cluster. Hidden ones (remote shells, other
            // beamlinks, C nodes) appear through what the visible ones list.
            let peers: Vec<PeerInfo> = node
                .peers()
                .into_iter()
                .filter(|p| p.name != *node.name() && p.peer_flags.contains(DistFlags::PUBLISHED))
                .collect();
            let known: Vec<NodeName> = releases.keys().cloned().collect();
            let node = node.internal();
            let (timeout, figures) = (config.query_timeout, config.figures);
            view_began = Instant::now();
            viewing = Some(Box::pin(async move {
                futures_util::stream::iter(peers)
                    .map(|peer| {
                        let asked = !known.contains(&peer.name);
                        let node = node.internal();
                        async move { ask(&node, peer, timeout, asked, figures).await }
                    })
                    .buffer_unordered(MAX_CONCURRENT_QUERIES)
                    .collect()
                    .await
            }));
        }
    }
}

fn log_line(warning: bool, line: &str) {
    if warning {
        warn!("{line}");
    } else {
        info!("{line}");
    }
}

/// Builds the view from the answers, logs its changes and publishes the snapshot.
fn absorb(
    node: &Node,
    watch: &Watch,
    planner: &mut Planner,
    previous: &View,
    releases: &mut BTreeMap<NodeName, Option<String>>,
    answers: Vec<Answered>,
    took: Duration,
) -> View {
    let mut stats = BTreeMap::new();
    let mut reports = Vec::with_capacity(answers.len());
    for a in answers {
        if let Some(release) = a.release {
            releases.insert(a.report.name.clone(), release);
        }
        if let Some(s) = a.stats {
            stats.insert(a.report.name.clone(), s);
        }
        reports.push(a.report);
    }
    releases.retain(|n, _| reports.iter().any(|r| &r.name == n));
    let view = View::build(node.name(), &reports);
    debug!(
        answered = reports.iter().filter(|r| r.answer.is_some()).count(),
        silent = reports.iter().filter(|r| r.answer.is_none()).count(),
        took_us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
        "cluster: view taken"
    );
    for t in diff(previous, &view) {
        log_line(t.is_warning(), &t.to_string());
    }
    watch.publish(Snapshot {
        at: SystemTime::now(),
        stats,
        releases: releases
            .iter()
            .filter_map(|(n, r)| r.clone().map(|r| (n.clone(), r)))
            .collect(),
        split: planner.split(),
        view: view.clone(),
    });
    view
}

/// Everything one node is asked in a view, within `timeout` in all.
async fn ask(
    node: &Node,
    peer: PeerInfo,
    timeout: Duration,
    ask_release: bool,
    figures: bool,
) -> Answered {
    let name = peer.name.clone();
    let visible = peer.peer_flags.contains(DistFlags::PUBLISHED);
    // Not linked any more: asking would dial.
    if node.connection(&name).is_none() {
        return silent(name, visible);
    }
    let questions = async {
        let release = async {
            if !ask_release {
                return None;
            }
            let answer = node
                .rpc_call(
                    &name,
                    "erlang",
                    "system_info",
                    vec![Term::atom("otp_release")],
                    timeout,
                )
                .await;
            Some(answer.ok().and_then(|t| crate::diagnose::text_of(&t)))
        };
        let stats = async {
            if figures {
                crate::diagnose::beam_stats(node, &name, timeout).await.ok()
            } else {
                None
            }
        };
        tokio::join!(
            crate::diagnose::peer_nodes(node, &name, timeout),
            stats,
            release,
        )
    };
    let answered = tokio::time::timeout(timeout, questions).await;
    match answered {
        Ok((nodes, stats, release)) => {
            let answer = match nodes {
                Ok(n) => Some(Answer {
                    visible: n.visible.into_iter().collect(),
                    hidden: n.hidden.into_iter().collect(),
                }),
                Err(e) => {
                    debug!(peer = %name, "cannot ask whom it sees: {e:?}");
                    None
                }
            };
            Answered {
                report: Report {
                    name: peer.name,
                    visible,
                    answer,
                },
                stats,
                release,
            }
        }
        Err(_) => silent(peer.name, visible),
    }
}

fn silent(name: NodeName, visible: bool) -> Answered {
    Answered {
        report: Report {
            name,
            visible,
            answer: None,
        },
        stats: None,
        release: None,
    }
}

/// `net_kernel:connect_node(To)` run on `On`.
async fn ask_to_connect(node: &Node, connect: &Connect, timeout: Duration) -> Outcome {
    if node.connection(&connect.on).is_none() {
        return Outcome::Failed("beamlink is no longer linked to it".into());
    }
    let result = node
        .rpc_call(
            &connect.on,
            "net_kernel",
            "connect_node",
            vec![Term::Atom(connect.to.as_atom().clone())],
            timeout,
        )
        .await;
    match result {
        Ok(t) if t.is_atom("true") => Outcome::Connected,
        Ok(t) if t.is_atom("false") => Outcome::Refused,
        Ok(t) if t.is_atom("ignored") => Outcome::Ignored,
        Ok(other) => Outcome::Failed(format!("it answered {other}")),
        Err(e) => Outcome::Failed(e.to_string()),
    }
}
