//! `--mesh`: which visible nodes to ask to connect to each other, as a pure state machine
//! (no I/O, no clock: the watcher passes the time in).
//!
//! A node is asked to connect with `net_kernel:connect_node/1` run on it over `erpc`, the
//! call `Node.connect/1` makes (`kernel/src/net_kernel.erl`), so the connection is the
//! BEAM's own: its handshake, its `global` sync. Rules:
//!
//! * only pairs of visible nodes beamlink is linked to that both answered and neither lists
//!   the other ([`View::missing`]); hidden nodes and connected pairs are never touched;
//! * at most one attempt per pair per interval, never two at once, and after a failure not
//!   before the reconnect backoff of the connection manager (1 s doubling up to the
//!   interval); the next attempt asks the other side (one side may reach the other when the
//!   reverse path is blocked);
//! * OTP 25 and later default to `prevent_overlapping_partitions` (`kernel/src/global.erl`):
//!   when a node loses another, `global` on the nodes that still see both disconnects some of
//!   them so that fully connected partitions remain; reconnecting such a pair brings `global`
//!   to disconnect another, in a loop. So a pair that was connected and is disconnected while
//!   both nodes are up (seen in the previous view, or connected by beamlink within [`SETTLE`]
//!   intervals) is *split*: beamlink says so once and backs off (2, 4, ... up to 32
//!   intervals, longer at each new disconnect) instead of fighting, and reports the pair as
//!   split until it stays connected for [`SETTLE`] intervals and twice its back-off;
//! * every action is one log line; a failure that repeats the previous one is not logged
//!   again; `--mesh=report` logs once per pair what it would ask and asks nothing.

use super::view::{Pair, View};
use crate::proto::node_name::NodeName;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;
use tokio::time::Instant;

/// What `--mesh` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum MeshMode {
    /// Nothing (the default).
    #[default]
    Off,
    /// Log what it would ask, ask nothing (`--mesh=report`).
    Report,
    /// Ask (`--mesh`).
    On,
}

impl std::str::FromStr for MeshMode {
    type Err = String;
    fn from_str(s: &str) -> Result<MeshMode, String> {
        match s {
            "on" | "true" | "" => Ok(MeshMode::On),
            "report" => Ok(MeshMode::Report),
            "off" | "false" => Ok(MeshMode::Off),
            other => Err(format!(
                "--mesh={other}: use --mesh, --mesh=report or --mesh=off"
            )),
        }
    }
}

impl MeshMode {
    /// `off`, `report` or `on`.
    pub fn as_str(self) -> &'static str {
        match self {
            MeshMode::Off => "off",
            MeshMode::Report => "report",
            MeshMode::On => "on",
        }
    }
}

/// Intervals a pair beamlink connected must stay connected before it is settled; a
/// disconnect within them makes the pair split.
pub const SETTLE: u32 = 3;
/// The longest back-off of a split pair, in intervals.
pub const MAX_SPLIT_BACKOFF: u32 = 32;

/// Ask `on` to connect to `to`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connect {
    /// The node that runs `net_kernel:connect_node/1`.
    pub on: NodeName,
    /// Its argument.
    pub to: NodeName,
}

/// How an attempt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// `net_kernel:connect_node/1` returned `true`.
    Connected,
    /// It returned `false` (the node could not reach the other).
    Refused,
    /// It returned `ignored` (the node is not distributed).
    Ignored,
    /// The `erpc` call failed (timeout, connection lost), in words.
    Failed(String),
}

impl Outcome {
    /// The `result` label of `beamlink_mesh_connects_total`.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Connected => "true",
            Outcome::Refused => "false",
            Outcome::Ignored => "ignored",
            Outcome::Failed(_) => "error",
        }
    }
}

/// Something to log.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Note {
    /// `--mesh=report`: what would be asked.
    WouldConnect(Connect),
    /// An attempt ended (a first result or a change).
    Asked {
        /// The request.
        connect: Connect,
        /// Its end.
        outcome: Outcome,
    },
    /// A pair was disconnected while both nodes are up (logged when it first happens; later
    /// disconnects only lengthen the back-off).
    Split {
        /// The pair.
        pair: Pair,
        /// When beamlink had connected it: how long it stayed connected at most.
        after: Option<Duration>,
        /// When beamlink asks again.
        retry_in: Duration,
    },
    /// A split pair stayed connected.
    Settled {
        /// The pair.
        pair: Pair,
    },
}

impl Note {
    /// True for a line an operator should look at.
    pub fn is_warning(&self) -> bool {
        match self {
            Note::Split { .. } => true,
            Note::Asked { outcome, .. } => *outcome != Outcome::Connected,
            _ => false,
        }
    }
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Note::WouldConnect(c) => write!(
                f,
                "mesh (report): would ask {} to connect to {} (net_kernel:connect_node/1)",
                c.on, c.to
            ),
            Note::Asked { connect, outcome } => {
                let c = connect;
                match outcome {
                    Outcome::Connected => {
                        write!(f, "mesh: asked {} to connect to {}: true", c.on, c.to)
                    }
                    Outcome::Refused => write!(
                        f,
                        "mesh: asked {} to connect to {}: false (retrying every interval; logged again when it changes)",
                        c.on, c.to
                    ),
                    Outcome::Ignored => write!(
                        f,
                        "mesh: asked {} to connect to {}: ignored (not distributed)",
                        c.on, c.to
                    ),
                    Outcome::Failed(e) => write!(
                        f,
                        "mesh: asking {} to connect to {} failed: {e}",
                        c.on, c.to
                    ),
                }
            }
            Note::Split {
                pair: (a, b),
                after,
                retry_in,
            } => {
                write!(f, "mesh: {a} and {b} are split: ")?;
                match after {
                    Some(after) => write!(
                        f,
                        "disconnected again within {:.1}s of beamlink connecting them",
                        after.as_secs_f64()
                    )?,
                    None => f.write_str("disconnected while both are up")?,
                }
                write!(
                    f,
                    " (global's prevent_overlapping_partitions, or a network cut); not fighting it, \
                     next attempt in {:.0}s, longer each time it happens again",
                    retry_in.as_secs_f64()
                )
            }
            Note::Settled { pair: (a, b) } => {
                write!(f, "mesh: {a} and {b} stay connected; no longer split")
            }
        }
    }
}

/// The wait before asking a split pair again: 2, 4, ... up to 32 intervals.
fn split_backoff(interval: Duration, strikes: u32) -> Duration {
    interval * (1u32 << strikes.min(5)).min(MAX_SPLIT_BACKOFF)
}

/// How long a pair must stay connected before its split is over: [`SETTLE`] intervals, and
/// at least twice its back-off (a pair `global` cuts each time another is restored stays up
/// about as long as the other's back-off).
fn settle_for(interval: Duration, strikes: u32) -> Duration {
    let settle = interval * SETTLE;
    if strikes == 0 {
        settle
    } else {
        settle.max(split_backoff(interval, strikes) * 2)
    }
}

/// The planner's memory of one pair.
#[derive(Clone, Debug)]
struct PairState {
    next_at: Instant,
    in_flight: bool,
    /// Ask the greater name next (after a failure the other side is asked).
    flip: bool,
    /// The last outcome logged, to log only changes.
    logged: Option<&'static str>,
    /// When beamlink's last attempt connected the pair.
    connected_at: Option<Instant>,
    /// Disconnects right after beamlink connected the pair, in a row.
    strikes: u32,
    /// Wait after a failed attempt: 1 s doubling up to the interval, as the connection
    /// manager's reconnect backoff ([`crate::cluster`]).
    backoff: Duration,
    /// `--mesh=report`: logged.
    reported: bool,
}

impl PairState {
    fn new(now: Instant) -> PairState {
        PairState {
            next_at: now,
            in_flight: false,
            flip: false,
            logged: None,
            connected_at: None,
            strikes: 0,
            backoff: Duration::from_secs(1),
            reported: false,
        }
    }
}

/// The mesh planner; see the module documentation.
#[derive(Debug)]
pub struct Planner {
    mode: MeshMode,
    interval: Duration,
    pairs: BTreeMap<Pair, PairState>,
    previous_links: BTreeSet<Pair>,
    totals: BTreeMap<&'static str, u64>,
}

impl Planner {
    /// A planner for `mode`, planning every `interval`.
    pub fn new(mode: MeshMode, interval: Duration) -> Planner {
        Planner {
            mode,
            interval,
            pairs: BTreeMap::new(),
            previous_links: BTreeSet::new(),
            totals: BTreeMap::new(),
        }
    }

    /// The mode.
    pub fn mode(&self) -> MeshMode {
        self.mode
    }

    /// The requests to make now, and what to log, given the latest view.
    pub fn plan(&mut self, view: &View, now: Instant) -> (Vec<Connect>, Vec<Note>) {
        let mut notes = Vec::new();
        let missing: BTreeSet<&Pair> = view.missing.iter().collect();
        // Pairs that are fine now, or no longer in question.
        let previous_links = std::mem::replace(&mut self.previous_links, view.links.clone());
        self.pairs.retain(|pair, st| {
            if missing.contains(pair) || st.in_flight {
                return true;
            }
            if !view.links.contains(pair) {
                // A node left or stopped answering: nothing to ask.
                return false;
            }
            match st.connected_at {
                Some(t)
                    if now.saturating_duration_since(t) < settle_for(self.interval, st.strikes) =>
                {
                    true
                }
                _ => {
                    if st.strikes > 0 {
                        notes.push(Note::Settled { pair: pair.clone() });
                    }
                    false
                }
            }
        });
        let mut connects = Vec::new();
        for pair in missing {
            let dropped = previous_links.contains(pair);
            let st = self
                .pairs
                .entry(pair.clone())
                .or_insert_with(|| PairState::new(now));
            // Disconnected while both nodes are up and answering: a node did it (global's
            // prevent_overlapping_partitions, an operator) or the network did. Either way,
            // not again at once.
            let after = st
                .connected_at
                .take()
                .map(|t| now.saturating_duration_since(t))
                .filter(|after| *after < settle_for(self.interval, st.strikes));
            if dropped || after.is_some() {
                st.strikes += 1;
                let retry_in = split_backoff(self.interval, st.strikes);
                st.next_at = st.next_at.max(now + retry_in);
                if st.strikes == 1 {
                    notes.push(Note::Split {
                        pair: pair.clone(),
                        after,
                        retry_in,
                    });
                }
            }
            if st.in_flight || now < st.next_at {
                continue;
            }
            let (on, to) = if st.flip {
                (pair.1.clone(), pair.0.clone())
            } else {
                (pair.0.clone(), pair.1.clone())
            };
            let connect = Connect { on, to };
            st.next_at = now + self.interval;
            match self.mode {
                MeshMode::Off => {}
                MeshMode::Report => {
                    if !st.reported {
                        st.reported = true;
                        notes.push(Note::WouldConnect(connect));
                    }
                }
                MeshMode::On => {
                    st.in_flight = true;
                    connects.push(connect);
                }
            }
        }
        (connects, notes)
    }

    /// An attempt ended; what to log, if anything.
    pub fn finished(&mut self, connect: &Connect, outcome: Outcome, now: Instant) -> Option<Note> {
        *self.totals.entry(outcome.label()).or_default() += 1;
        let pair = super::view::pair(&connect.on, &connect.to);
        let st = self.pairs.get_mut(&pair)?;
        st.in_flight = false;
        let label = outcome.label();
        if outcome == Outcome::Connected {
            st.connected_at = Some(now);
            st.backoff = Duration::from_secs(1);
        } else {
            st.flip = !st.flip;
            st.next_at = st.next_at.max(now + st.backoff.min(self.interval));
            st.backoff = (st.backoff * 2).min(self.interval);
            if st.strikes > 0 {
                st.next_at = st
                    .next_at
                    .max(now + split_backoff(self.interval, st.strikes));
            }
        }
        let repeat = st.logged == Some(label) && outcome != Outcome::Connected;
        st.logged = Some(label);
        (!repeat).then_some(Note::Asked {
            connect: connect.clone(),
            outcome,
        })
    }

    /// Attempts so far by result label (`true`, `false`, `ignored`, `error`).
    pub fn totals(&self) -> &BTreeMap<&'static str, u64> {
        &self.totals
    }

    /// The pairs that are split now.
    pub fn split(&self) -> Vec<Pair> {
        self.pairs
            .iter()
            .filter(|(_, st)| st.strikes > 0)
            .map(|(p, _)| p.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests;
