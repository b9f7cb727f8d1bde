//! Watching (and with `--mesh`, meshing) the cluster from beside it, as `beamlink run` does.
//!
//! A hidden node that sits beside a cluster, never a member, is the one place that can see
//! every node's view at once. Every interval the watcher ([`run`]) asks each node beamlink is
//! linked to, read-only over `erpc`, whom it is connected to and how loaded it is; the
//! answers become a [`View`] (who sees whom, components, asymmetric links), the changes
//! are logged once ([`view::diff`]), and with `--mesh` the [`Planner`] asks nodes that are
//! not connected to connect (`net_kernel:connect_node/1`). The latest [`Snapshot`] is what
//! `GenServer.call({:beamlink, R}, :cluster)` answers ([`term::cluster_term`]) and what the
//! Prometheus exporter ([`crate::metrics`]) serves.
//!
//! * [`view`]: the who-sees-whom view and its transitions (pure).
//! * [`planner`]: the mesh planner (pure).
//! * `watcher` ([`run`]): the loop: queries with a per-node deadline, so one hung node cannot stall
//!   the view of the others.
//! * [`term`]: the view as the map `:cluster` returns.

pub mod planner;
pub mod term;
pub mod view;
mod watcher;

pub use planner::{MeshMode, Planner};
pub use view::{Transition, View};
pub use watcher::run;

use crate::diagnose::BeamStats;
use crate::proto::node_name::NodeName;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// How the watcher runs.
#[derive(Clone, Debug)]
pub struct WatchConfig {
    /// Time between views.
    pub interval: Duration,
    /// What `--mesh` does.
    pub mesh: MeshMode,
    /// How long one node may take to answer all of a view's questions.
    pub query_timeout: Duration,
    /// How long a node may take to answer `net_kernel:connect_node/1` (its own connect
    /// is bounded by its `net_setuptime`, 7 s by default).
    pub connect_timeout: Duration,
    /// Also ask each node for its figures (memory, processes, run queue, uptime) every
    /// view: four more calls per node, so only when something serves them (`--metrics`).
    pub figures: bool,
}

impl WatchConfig {
    /// Every `interval`, each node given the interval (at least 1 s, at most 5 s) to answer.
    pub fn new(interval: Duration, mesh: MeshMode) -> WatchConfig {
        WatchConfig {
            interval,
            mesh,
            query_timeout: interval.clamp(Duration::from_secs(1), Duration::from_secs(5)),
            connect_timeout: Duration::from_secs(15),
            figures: false,
        }
    }
}

/// The cluster at the latest view.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// When the view was taken.
    pub at: SystemTime,
    /// Who sees whom.
    pub view: View,
    /// The figures of the BEAM nodes that answered.
    pub stats: BTreeMap<NodeName, BeamStats>,
    /// `erlang:system_info(otp_release)` of each BEAM node.
    pub releases: BTreeMap<NodeName, String>,
    /// Pairs `--mesh` found split (see [`planner`]).
    pub split: Vec<view::Pair>,
}

/// What the watcher shares with the `:cluster` call and the exporter.
#[derive(Debug)]
pub struct Watch {
    config: WatchConfig,
    latest: Mutex<Option<Arc<Snapshot>>>,
    connects: Mutex<BTreeMap<&'static str, u64>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Watch {
    /// Shared state for a watcher configured by `config`.
    pub fn new(config: WatchConfig) -> Arc<Watch> {
        Arc::new(Watch {
            config,
            latest: Mutex::new(None),
            connects: Mutex::new(BTreeMap::new()),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &WatchConfig {
        &self.config
    }

    /// The latest view, once there is one.
    pub fn latest(&self) -> Option<Arc<Snapshot>> {
        lock(&self.latest).clone()
    }

    /// `net_kernel:connect_node/1` requests so far, by result (`true`, `false`, `ignored`,
    /// `error`).
    pub fn connects(&self) -> BTreeMap<&'static str, u64> {
        lock(&self.connects).clone()
    }

    fn publish(&self, snapshot: Snapshot) {
        *lock(&self.latest) = Some(Arc::new(snapshot));
    }

    fn set_connects(&self, totals: &BTreeMap<&'static str, u64>) {
        *lock(&self.connects) = totals.clone();
    }
}
