//! The cluster view of `beamlink nodes`: per node its address, what it runs and whom it is
//! connected to, by its own account (`erlang:nodes/1` over `erpc`), and the links the
//! cluster should have but does not.
//!
//! Expected links: BEAM nodes form a full mesh of visible connections (`global` and `pg`
//! rely on it), so every pair of visible nodes among the peers should list each other in
//! `nodes(visible)`. Hidden nodes (beamlink itself, remote shells, `bin/app rpc` helpers)
//! are shown but expect nothing. A peer we could not reach still counts when its EPMD
//! registration says it is running as a normal node: the others should see it.

use super::Survey;
use super::checks::{Cause, CheckStep};
use super::explain::{Context, diagnose_failure};
use super::probe::{PeerProbe, Software};
use crate::proto::node_name::NodeName;
use serde::Serialize;
use std::fmt::Write as _;

/// The DNS part of the view.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DnsView {
    /// The name asked.
    pub query: String,
    /// Its addresses.
    pub addresses: Vec<String>,
    /// Why it gave none.
    pub error: Option<String>,
}

/// Why a node is missing from the view.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NodeError {
    /// The step that failed.
    pub step: CheckStep,
    /// The cause.
    pub cause: Cause,
    /// In plain words.
    pub message: String,
}

/// One node of the view.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NodeView {
    /// Its name.
    pub name: String,
    /// Its distribution address.
    pub address: Option<String>,
    /// `erlang:system_info(otp_release)`, for a BEAM.
    pub otp_release: Option<String>,
    /// What it runs.
    pub software: Option<Software>,
    /// True for a visible (published) node, false for a hidden one, unknown if unreachable.
    pub visible: Option<bool>,
    /// The visible nodes it is connected to.
    pub connected: Vec<String>,
    /// The hidden nodes it is connected to, the observer left out.
    pub hidden: Vec<String>,
    /// Why it could not be asked.
    pub error: Option<NodeError>,
    /// Its figures (`beamlink nodes --stats`), when asked and it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<super::BeamStats>,
}

/// A link the cluster should have and does not. `None` when that side could not be asked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MissingLink {
    /// One node.
    pub a: String,
    /// The other.
    pub b: String,
    /// Whether `a` lists `b` among its visible connections.
    pub a_lists_b: Option<bool>,
    /// Whether `b` lists `a`.
    pub b_lists_a: Option<bool>,
}

impl MissingLink {
    /// The situation in words.
    pub fn describe(&self) -> String {
        match (self.a_lists_b, self.b_lists_a) {
            (Some(false), Some(false)) => "neither lists the other".to_string(),
            (Some(false), Some(true)) => {
                format!("{} lists {} but not the other way round", self.b, self.a)
            }
            (Some(true), Some(false)) => {
                format!("{} lists {} but not the other way round", self.a, self.b)
            }
            (Some(false), None) => format!(
                "{} does not list {}; {} could not be asked",
                self.a, self.b, self.b
            ),
            (None, Some(false)) => format!(
                "{} does not list {}; {} could not be asked",
                self.b, self.a, self.a
            ),
            _ => "connected".to_string(),
        }
    }
}

/// The cluster as its members see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClusterView {
    /// The node that asked (hidden, one-shot).
    pub observer: String,
    /// The DNS answer, with a DNS query.
    pub dns: Option<DnsView>,
    /// Every peer, sorted by name.
    pub nodes: Vec<NodeView>,
    /// Links between visible nodes that are not there.
    pub missing_links: Vec<MissingLink>,
    /// Discovery problems.
    pub notes: Vec<String>,
}

impl ClusterView {
    /// Builds the view from a survey.
    pub fn from_survey(survey: &Survey) -> ClusterView {
        let context = Context::new(survey, None);
        let observer = &survey.observer;
        let nodes = survey
            .probes
            .iter()
            .map(|p| node_view(p, observer, &context))
            .collect();
        let mut notes = survey.notes.clone();
        for listing in &survey.listings {
            if let Err(e) = &listing.result {
                notes.push(e.to_string());
            }
        }
        ClusterView {
            observer: observer.to_string(),
            dns: survey.dns.as_ref().map(|d| DnsView {
                query: d.query.clone(),
                addresses: d
                    .result
                    .as_ref()
                    .map(|ips| ips.iter().map(|ip| ip.to_string()).collect())
                    .unwrap_or_default(),
                error: d.result.as_ref().err().map(|e| e.to_string()),
            }),
            nodes,
            missing_links: missing_links(&survey.probes),
            notes,
        }
    }

    /// The failures, for the exit code.
    pub fn causes(&self) -> Vec<Cause> {
        let mut out: Vec<Cause> = self
            .nodes
            .iter()
            .filter_map(|n| n.error.as_ref().map(|e| e.cause))
            .collect();
        if self.dns.as_ref().is_some_and(|d| d.error.is_some()) {
            out.push(Cause::DnsNoRecords);
        }
        out
    }

    /// The view as a table for a terminal.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let visible = self
            .nodes
            .iter()
            .filter(|n| n.visible == Some(true))
            .count();
        let _ = writeln!(
            out,
            "cluster seen from {} (hidden): {} node{}, {} visible, {} missing link{}",
            self.observer,
            self.nodes.len(),
            plural(self.nodes.len()),
            visible,
            self.missing_links.len(),
            plural(self.missing_links.len())
        );
        if let Some(dns) = &self.dns {
            match &dns.error {
                None => {
                    let _ = writeln!(out, "DNS {} -> {}", dns.query, dns.addresses.join(", "));
                }
                Some(e) => {
                    let _ = writeln!(out, "DNS {}: {e}", dns.query);
                }
            }
        }
        for note in &self.notes {
            let _ = writeln!(out, "note: {note}");
        }
        if self.nodes.is_empty() {
            let _ = writeln!(out, "\nno nodes found");
            return out;
        }
        let rows: Vec<[String; 4]> = self
            .nodes
            .iter()
            .map(|n| {
                let runs = match (&n.software, n.visible) {
                    (Some(s), Some(false)) => format!("{s} (hidden)"),
                    (Some(s), _) => s.to_string(),
                    (None, _) => "-".to_string(),
                };
                let sees = match &n.error {
                    Some(e) => format!("UNREACHABLE ({}): {}", e.step, e.message),
                    None if n.connected.is_empty() => "(no visible connections)".to_string(),
                    None => n.connected.join(", "),
                };
                [
                    n.name.clone(),
                    n.address.clone().unwrap_or_else(|| "-".into()),
                    runs,
                    sees,
                ]
            })
            .collect();
        let header = [
            "NODE".to_string(),
            "ADDRESS".to_string(),
            "RUNS".to_string(),
            "CONNECTED TO (visible)".to_string(),
        ];
        let width = |i: usize| {
            rows.iter()
                .map(|r| r[i].len())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        };
        let widths = [width(0), width(1), width(2)];
        out.push('\n');
        for (row, node) in
            std::iter::once((&header, None)).chain(rows.iter().zip(self.nodes.iter().map(Some)))
        {
            let _ = writeln!(
                out,
                "{:w0$}  {:w1$}  {:w2$}  {}",
                row[0],
                row[1],
                row[2],
                row[3],
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2]
            );
            if let Some(n) = node
                && !n.hidden.is_empty()
            {
                let _ = writeln!(
                    out,
                    "{:w$}  hidden connections: {}",
                    "",
                    n.hidden.join(", "),
                    w = widths[0]
                );
            }
        }
        out.push('\n');
        if self.missing_links.is_empty() {
            if visible >= 2 {
                let _ = writeln!(
                    out,
                    "full mesh: every pair of the {visible} visible nodes is connected"
                );
            }
        } else {
            let _ = writeln!(
                out,
                "missing links ({}; every pair of visible nodes should be connected):",
                self.missing_links.len()
            );
            for link in &self.missing_links {
                let _ = writeln!(out, "  {} -- {}: {}", link.a, link.b, link.describe());
            }
        }
        out
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn node_view(p: &PeerProbe, observer: &NodeName, context: &Context) -> NodeView {
    let names = |list: &[NodeName]| -> Vec<String> {
        list.iter()
            .filter(|n| *n != observer)
            .map(|n| n.to_string())
            .collect()
    };
    NodeView {
        name: p.name.to_string(),
        address: p
            .connected
            .as_ref()
            .map(|c| c.addr.to_string())
            .or_else(|| {
                p.epmd
                    .as_ref()
                    .zip(p.ip)
                    .map(|(e, ip)| format!("{}", std::net::SocketAddr::new(ip, e.port)))
            }),
        otp_release: match &p.software {
            Some(Software::Otp(r)) => Some(r.clone()),
            _ => None,
        },
        software: p.software.clone(),
        visible: p.connected.as_ref().map(|c| c.published()),
        connected: p
            .nodes
            .as_ref()
            .map(|n| names(&n.visible))
            .unwrap_or_default(),
        hidden: p
            .nodes
            .as_ref()
            .map(|n| names(&n.hidden))
            .unwrap_or_default(),
        error: p.failure.as_ref().map(|f| {
            let d = diagnose_failure(p, f, context);
            NodeError {
                step: d.step,
                cause: d.cause,
                message: d.summary,
            }
        }),
        stats: None,
    }
}

/// The visible-node pairs that are not connected. A node counts when it was reached and
/// publishes itself, or when it was not reached but its EPMD has it registered as a normal
/// node (it runs; the others should see it).
fn missing_links(probes: &[PeerProbe]) -> Vec<MissingLink> {
    let expected: Vec<&PeerProbe> = probes
        .iter()
        .filter(|p| match (&p.connected, &p.nodes) {
            (Some(c), Some(_)) => c.published(),
            (Some(c), None) => c.published(),
            (None, _) => p.epmd.as_ref().is_some_and(|e| !e.hidden),
        })
        .collect();
    let lists = |p: &PeerProbe, other: &NodeName| -> Option<bool> {
        p.nodes.as_ref().map(|n| n.visible.contains(other))
    };
    let mut out = Vec::new();
    for (i, a) in expected.iter().enumerate() {
        for b in &expected[i + 1..] {
            let a_lists_b = lists(a, &b.name);
            let b_lists_a = lists(b, &a.name);
            if a_lists_b == Some(false) || b_lists_a == Some(false) {
                out.push(MissingLink {
                    a: a.name.to_string(),
                    b: b.name.to_string(),
                    a_lists_b,
                    b_lists_a,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::probe::{Connected, EpmdEntry, PeerNodes};
    use crate::proto::flags::DistFlags;

    fn name(s: &str) -> NodeName {
        NodeName::parse(s).unwrap()
    }

    fn reached(n: &str, published: bool, visible: &[&str]) -> PeerProbe {
        let flags = if published {
            DistFlags::BEAMLINK_DEFAULT | DistFlags::PUBLISHED
        } else {
            DistFlags::BEAMLINK_DEFAULT
        };
        PeerProbe {
            name: name(n),
            ip: None,
            epmd: None,
            tcp: None,
            tls: None,
            connected: Some(Connected {
                addr: "127.0.0.1:1".parse().unwrap(),
                peer_flags: flags,
                flags,
                creation: 1,
                reused: false,
                connect_time: None,
            }),
            ping: None,
            software: None,
            nodes: Some(PeerNodes {
                visible: visible.iter().map(|v| name(v)).collect(),
                hidden: Vec::new(),
            }),
            failure: None,
        }
    }

    #[test]
    fn a_full_mesh_has_no_missing_links_and_hidden_nodes_expect_nothing() {
        let probes = [
            reached("a@h.x", true, &["b@h.x"]),
            reached("b@h.x", true, &["a@h.x"]),
            reached("shell@h.x", false, &[]),
        ];
        assert!(missing_links(&probes).is_empty());
    }

    #[test]
    fn a_node_outside_the_mesh_misses_a_link_to_everyone() {
        let mut unreachable = PeerProbe {
            nodes: None,
            connected: None,
            ..reached("d@h.x", true, &[])
        };
        unreachable.epmd = Some(EpmdEntry {
            epmd: "127.0.0.1:4369".parse().unwrap(),
            port: 1,
            hidden: false,
            highest_version: 6,
            lowest_version: 6,
        });
        let probes = [
            reached("a@h.x", true, &["b@h.x"]),
            reached("b@h.x", true, &["a@h.x"]),
            reached("c@h.x", true, &[]),
            unreachable,
        ];
        let missing = missing_links(&probes);
        let pairs: Vec<(&str, &str)> = missing
            .iter()
            .map(|m| (m.a.as_str(), m.b.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("a@h.x", "c@h.x"),
                ("a@h.x", "d@h.x"),
                ("b@h.x", "c@h.x"),
                ("b@h.x", "d@h.x"),
                ("c@h.x", "d@h.x"),
            ]
        );
        assert_eq!(missing[0].describe(), "neither lists the other");
        assert_eq!(
            missing[1].describe(),
            "a@h.x does not list d@h.x; d@h.x could not be asked"
        );
    }
}
