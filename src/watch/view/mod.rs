//! The cluster as its members see it, over time: pure functions, no I/O.
//!
//! Every interval the watcher ([`super::run`]) asks each node beamlink is linked to whom
//! it is connected to (`erlang:nodes(visible)` and `erlang:nodes(hidden)`) and hands the
//! answers to [`View::build`]. From them:
//!
//! * the who-sees-whom matrix: per node, the visible nodes it lists;
//! * the connected components of the visible nodes beamlink is linked to, where a link
//!   seen from either side joins two nodes (a BEAM lists a connection until its own tick
//!   timeout, so one side may still list a link the other has dropped); more than one
//!   component is a partition;
//! * asymmetric pairs: both answered, one lists the other, the other does not;
//! * missing pairs: both answered and neither lists the other (what `--mesh` repairs).
//!
//! [`diff`] compares two views and gives the [`Transition`]s between them (a node joins or
//! leaves, stops or starts answering, a link appears or goes, a partition appears, changes
//! or heals, a link becomes or stops being asymmetric), so each change is logged once, not
//! every interval.
//!
//! Expected links are those of OTP's full mesh: `global` and `pg` assume every visible node
//! is connected to every other (`global:sync/0`, `kernel/src/global.erl`). Hidden nodes
//! (beamlink, remote shells, `bin/app rpc`) expect nothing and join no component.

use crate::proto::node_name::NodeName;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// What one node beamlink is linked to said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The node.
    pub name: NodeName,
    /// True when it publishes itself (`DFLAG_PUBLISHED` in its handshake).
    pub visible: bool,
    /// Its answer, `None` when it did not answer in time.
    pub answer: Option<Answer>,
}

/// A node's own account of its connections.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Answer {
    /// `erlang:nodes(visible)`.
    pub visible: BTreeSet<NodeName>,
    /// `erlang:nodes(hidden)`.
    pub hidden: BTreeSet<NodeName>,
}

/// A node of the view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// True for a visible node.
    pub visible: bool,
    /// True when beamlink is linked to it (and asked it); false for a node only others list.
    pub linked: bool,
    /// Its answer, when linked and it answered.
    pub answer: Option<Answer>,
}

/// An unordered pair of nodes, smaller name first.
pub type Pair = (NodeName, NodeName);

/// `(a, b)` in order.
pub fn pair(a: &NodeName, b: &NodeName) -> Pair {
    if a <= b {
        (a.clone(), b.clone())
    } else {
        (b.clone(), a.clone())
    }
}

/// The cluster at one moment; see the module documentation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct View {
    /// Every node: those beamlink is linked to and those they list (beamlink left out).
    pub nodes: BTreeMap<NodeName, Entry>,
    /// Pairs of visible linked nodes with a link seen from at least one side.
    pub links: BTreeSet<Pair>,
    /// The connected components of the visible linked nodes, each sorted, largest first.
    pub components: Vec<Vec<NodeName>>,
    /// `(a, b)`: `a` lists `b`, `b` answered and does not list `a`.
    pub asymmetric: Vec<(NodeName, NodeName)>,
    /// Visible linked pairs that both answered and neither lists the other.
    pub missing: Vec<Pair>,
}

impl View {
    /// Builds the view from the reports of the nodes beamlink is linked to (`observer` is
    /// beamlink itself, left out of every list).
    pub fn build(observer: &NodeName, reports: &[Report]) -> View {
        let mut nodes: BTreeMap<NodeName, Entry> = BTreeMap::new();
        for r in reports.iter().filter(|r| &r.name != observer) {
            nodes.insert(
                r.name.clone(),
                Entry {
                    visible: r.visible,
                    linked: true,
                    answer: r.answer.as_ref().map(|a| Answer {
                        visible: a
                            .visible
                            .iter()
                            .filter(|n| *n != observer)
                            .cloned()
                            .collect(),
                        hidden: a
                            .hidden
                            .iter()
                            .filter(|n| *n != observer)
                            .cloned()
                            .collect(),
                    }),
                },
            );
        }
        // Nodes only others list: visible if any lists it as visible.
        let mut heard: BTreeMap<NodeName, bool> = BTreeMap::new();
        for entry in nodes.values() {
            if let Some(a) = &entry.answer {
                for n in &a.visible {
                    heard.insert(n.clone(), true);
                }
                for n in &a.hidden {
                    heard.entry(n.clone()).or_insert(false);
                }
            }
        }
        for (name, visible) in heard {
            nodes.entry(name).or_insert(Entry {
                visible,
                linked: false,
                answer: None,
            });
        }

        let members: Vec<&NodeName> = nodes
            .iter()
            .filter(|(_, e)| e.visible && e.linked)
            .map(|(n, _)| n)
            .collect();
        let lists = |a: &NodeName, b: &NodeName| -> Option<bool> {
            nodes[a]
                .answer
                .as_ref()
                .map(|answer| answer.visible.contains(b))
        };
        let mut links = BTreeSet::new();
        let mut asymmetric = Vec::new();
        let mut missing = Vec::new();
        for (i, a) in members.iter().enumerate() {
            for b in &members[i + 1..] {
                let (ab, ba) = (lists(a, b), lists(b, a));
                if ab == Some(true) || ba == Some(true) {
                    links.insert(pair(a, b));
                }
                match (ab, ba) {
                    (Some(true), Some(false)) => asymmetric.push(((*a).clone(), (*b).clone())),
                    (Some(false), Some(true)) => asymmetric.push(((*b).clone(), (*a).clone())),
                    (Some(false), Some(false)) => missing.push(pair(a, b)),
                    _ => {}
                }
            }
        }
        let components = components(&members, &links);
        View {
            nodes,
            links,
            components,
            asymmetric,
            missing,
        }
    }

    /// The visible nodes beamlink is linked to.
    pub fn members(&self) -> impl Iterator<Item = &NodeName> {
        self.nodes
            .iter()
            .filter(|(_, e)| e.visible && e.linked)
            .map(|(n, _)| n)
    }

    /// Linked nodes that did not answer.
    pub fn silent(&self) -> impl Iterator<Item = &NodeName> {
        self.nodes
            .iter()
            .filter(|(_, e)| e.linked && e.answer.is_none())
            .map(|(n, _)| n)
    }

    /// The number of connected components (0 without visible linked nodes).
    pub fn partitions(&self) -> usize {
        self.components.len()
    }

    /// True when every pair of visible linked nodes is linked (seen from either side).
    pub fn is_complete(&self) -> bool {
        let n = self.members().count();
        self.links.len() == n * n.saturating_sub(1) / 2
    }

    /// Nodes beamlink is linked to, by kind: `(visible, hidden)`, and nodes only others
    /// list, by kind.
    pub fn counts(&self) -> (usize, usize) {
        let visible = self.nodes.values().filter(|e| e.visible).count();
        (visible, self.nodes.len() - visible)
    }

    /// The directed links: `(from, to)` for every linked node that answered and every
    /// visible node it lists.
    pub fn directed(&self) -> impl Iterator<Item = (&NodeName, &NodeName)> {
        self.nodes.iter().flat_map(|(from, e)| {
            e.answer
                .iter()
                .flat_map(move |a| a.visible.iter().map(move |to| (from, to)))
        })
    }
}

/// Union-find over the members; components sorted, largest first, then by first name.
fn components(members: &[&NodeName], links: &BTreeSet<Pair>) -> Vec<Vec<NodeName>> {
    let index: BTreeMap<&NodeName, usize> =
        members.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let mut parent: Vec<usize> = (0..members.len()).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for (a, b) in links {
        let (Some(&ia), Some(&ib)) = (index.get(a), index.get(b)) else {
            continue;
        };
        let (ra, rb) = (root(&mut parent, ia), root(&mut parent, ib));
        if ra != rb {
            parent[ra] = rb;
        }
    }
    let mut groups: BTreeMap<usize, Vec<NodeName>> = BTreeMap::new();
    for (i, n) in members.iter().enumerate() {
        let r = root(&mut parent, i);
        groups.entry(r).or_default().push((*n).clone());
    }
    let mut out: Vec<Vec<NodeName>> = groups.into_values().collect();
    for c in &mut out {
        c.sort();
    }
    out.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    out
}

/// A change between two views, worth one log line.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Transition {
    /// beamlink is linked to a node it was not linked to.
    Joined {
        /// The node.
        node: NodeName,
        /// Visible or hidden.
        visible: bool,
    },
    /// beamlink is no longer linked to it.
    Left {
        /// The node.
        node: NodeName,
    },
    /// A linked node did not answer in time.
    Silent {
        /// The node.
        node: NodeName,
    },
    /// It answers again.
    Answers {
        /// The node.
        node: NodeName,
    },
    /// Two visible nodes that both stayed in the view are now linked.
    LinkUp {
        /// One.
        a: NodeName,
        /// The other.
        b: NodeName,
    },
    /// They are no longer linked (neither lists the other).
    LinkDown {
        /// One.
        a: NodeName,
        /// The other.
        b: NodeName,
    },
    /// The visible nodes split into more than one component, or the split changed.
    Partitioned {
        /// The components.
        components: Vec<Vec<NodeName>>,
    },
    /// One component again.
    Healed {
        /// How many nodes it has.
        nodes: usize,
    },
    /// `from` lists `to`, `to` does not list `from`.
    Asymmetric {
        /// The side that lists.
        from: NodeName,
        /// The side that does not.
        to: NodeName,
    },
    /// That is over (both list each other, neither does, or one left).
    Symmetric {
        /// The side that listed.
        from: NodeName,
        /// The other.
        to: NodeName,
    },
}

impl Transition {
    /// True for what an operator should look at (a node lost, a partition, an asymmetric
    /// link); false for news.
    pub fn is_warning(&self) -> bool {
        matches!(
            self,
            Transition::Left { .. }
                | Transition::Silent { .. }
                | Transition::LinkDown { .. }
                | Transition::Partitioned { .. }
                | Transition::Asymmetric { .. }
        )
    }
}

fn names(list: &[NodeName]) -> String {
    list.iter()
        .map(NodeName::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for Transition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Transition::Joined { node, visible } => write!(
                f,
                "cluster: {node} joined the view ({})",
                if *visible { "visible" } else { "hidden" }
            ),
            Transition::Left { node } => write!(f, "cluster: {node} left the view"),
            Transition::Silent { node } => write!(
                f,
                "cluster: {node} did not answer in time (hung, overloaded or cut off?)"
            ),
            Transition::Answers { node } => write!(f, "cluster: {node} answers again"),
            Transition::LinkUp { a, b } => write!(f, "cluster: link {a} <-> {b} is up"),
            Transition::LinkDown { a, b } => write!(
                f,
                "cluster: link {a} <-> {b} is down (neither lists the other)"
            ),
            Transition::Partitioned { components } => {
                let groups: Vec<String> = components
                    .iter()
                    .map(|c| format!("[{}]", names(c)))
                    .collect();
                write!(
                    f,
                    "cluster: partitioned into {} components: {}",
                    components.len(),
                    groups.join(" | ")
                )
            }
            Transition::Healed { nodes } => write!(
                f,
                "cluster: partition healed: one component of {nodes} visible node{}",
                if *nodes == 1 { "" } else { "s" }
            ),
            Transition::Asymmetric { from, to } => write!(
                f,
                "cluster: asymmetric link: {from} lists {to}, {to} does not list {from}"
            ),
            Transition::Symmetric { from, to } => {
                write!(f, "cluster: link {from} -> {to} is no longer asymmetric")
            }
        }
    }
}

/// The transitions from `old` to `new`, in a stable order: nodes, answers, links,
/// partitions, asymmetric links.
pub fn diff(old: &View, new: &View) -> Vec<Transition> {
    let mut out = Vec::new();
    let linked = |v: &View| -> BTreeSet<NodeName> {
        v.nodes
            .iter()
            .filter(|(_, e)| e.linked)
            .map(|(n, _)| n.clone())
            .collect()
    };
    let (before, after) = (linked(old), linked(new));
    for node in after.difference(&before) {
        out.push(Transition::Joined {
            node: node.clone(),
            visible: new.nodes[node].visible,
        });
    }
    for node in before.difference(&after) {
        out.push(Transition::Left { node: node.clone() });
    }
    for node in before.intersection(&after) {
        let (was, is) = (
            old.nodes[node].answer.is_some(),
            new.nodes[node].answer.is_some(),
        );
        if was && !is {
            out.push(Transition::Silent { node: node.clone() });
        } else if !was && is {
            out.push(Transition::Answers { node: node.clone() });
        }
    }
    for node in after.difference(&before) {
        if new.nodes[node].answer.is_none() {
            out.push(Transition::Silent { node: node.clone() });
        }
    }
    // Links between nodes in both views; a joining or leaving node's links are news of
    // the node, not of each link.
    let stayed = |p: &Pair| before.contains(&p.0) && before.contains(&p.1);
    let stays = |p: &Pair| after.contains(&p.0) && after.contains(&p.1);
    for (a, b) in new.links.difference(&old.links) {
        if stayed(&(a.clone(), b.clone())) {
            out.push(Transition::LinkUp {
                a: a.clone(),
                b: b.clone(),
            });
        }
    }
    for (a, b) in old.links.difference(&new.links) {
        if stays(&(a.clone(), b.clone())) {
            out.push(Transition::LinkDown {
                a: a.clone(),
                b: b.clone(),
            });
        }
    }
    if new.partitions() > 1 && new.components != old.components {
        out.push(Transition::Partitioned {
            components: new.components.clone(),
        });
    } else if new.partitions() == 1 && old.partitions() > 1 {
        out.push(Transition::Healed {
            nodes: new.components[0].len(),
        });
    }
    for (from, to) in &new.asymmetric {
        if !old.asymmetric.contains(&(from.clone(), to.clone())) {
            out.push(Transition::Asymmetric {
                from: from.clone(),
                to: to.clone(),
            });
        }
    }
    for (from, to) in &old.asymmetric {
        if !new.asymmetric.contains(&(from.clone(), to.clone())) {
            out.push(Transition::Symmetric {
                from: from.clone(),
                to: to.clone(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests;
