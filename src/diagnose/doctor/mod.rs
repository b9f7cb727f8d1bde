//! `beamlink doctor`: the survey turned into checks. Each step of each peer's chain (DNS,
//! EPMD, TCP, handshake, flags, cookie, ping, rpc) and the cluster as a whole (the mesh) is
//! `ok`, `warn`, `fail` or `skipped` (after a failure, the later steps of that peer); each
//! failure names its [`Cause`], the evidence it rests on and what to change.
//!
//! How causes are told apart (what is reliable and what is a guess):
//! * **Short names**: dialled as `app@<ip>`, the node's challenge carries its real name; a host
//!   part without a dot that is not an address is a short name (`app@web-1`). Certain: the
//!   name comes from the node itself. A node reached under its short name is a warning.
//! * **Named after a host name**: the same, with a long host name (`app@web-1.example`).
//! * **Virtual IP**: certain when the query gives one address while `tasks.<query>` gives
//!   others (the Docker Swarm layout). A node that answers under another IP than the one
//!   dialled is reported as such ([`Cause::OtherAddress`]): a virtual IP or proxy forwarding,
//!   or a node with several addresses named after another one; the two cannot be told apart
//!   from outside. A single address whose EPMD does not answer or lists nothing is only
//!   *consistent* with a virtual IP (a firewall or a stopped node look the same), so it is
//!   mentioned in the fix, never claimed.
//! * **Cookie**: the peer closes the connection right after our challenge reply. That is how
//!   a BEAM reacts to a wrong digest and to nothing else at that step.
//! * **Flags**: the peer's challenge lacks flags OTP 26 requires; named with the release that
//!   requires them.
//! * **Name in use**: the peer answers `alive` (it has a live connection to a node with our
//!   name; we answer `false` and leave it alone), or, with `--name`, the local EPMD already
//!   lists our name.
//! * **Not meshed**: visible nodes that do not list each other in `nodes(visible)`.
//!
//! # Exit code
//! 0 when nothing failed (warnings do not count). Otherwise the class of the most
//! fundamental failure, in this order: 78 configuration (virtual IP, short names, a node named
//! after a host name or another address, a name in use) > 77 refused (cookie, `not_allowed`) > 76 protocol
//! (missing flags, a port that does not speak the protocol) > 69 unavailable (DNS, EPMD,
//! ports, ping, rpc, an incomplete mesh). A configuration mistake usually causes the
//! unavailability seen downstream, so it is the one to report.

//!
//! # Layout
//! This file runs the checks and adds up the report (our own set-up, the mesh); `chain.rs`
//! turns each peer's probe into the checks of its steps; `text.rs` renders the report for
//! a terminal (`--json` serialises [`DoctorReport`] as it is).

mod chain;
mod text;

use super::checks::{Cause, Check, CheckStatus, CheckStep, Counts, ExitClass};
use super::environment::environment_checks;
use super::explain::{Context, Diagnosis, diagnose_failure, dns_checks, listing_checks};
use super::view::ClusterView;
use super::{Survey, SurveyOptions, Targets, survey};
use crate::node::Node;
use chain::chain;
use serde::Serialize;
use std::net::SocketAddr;

/// What the doctor found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DoctorReport {
    /// The node that looked (hidden, not registered in EPMD).
    pub observer: String,
    /// True when no check failed.
    pub healthy: bool,
    /// The exit code (see the module documentation for the order when several fail).
    pub exit_code: u8,
    /// The class behind the exit code.
    pub exit_class: Option<ExitClass>,
    /// Outcome counts.
    pub counts: Counts,
    /// Every check, in order: ours, DNS, EPMD listings, each peer's chain, the mesh.
    pub checks: Vec<Check>,
    /// The cluster as its members see it.
    pub cluster: ClusterView,
}

/// What the doctor knows beyond the survey.
#[derive(Clone, Debug, Default)]
pub struct DoctorContext {
    /// Where our cookie came from (a variable name or a path; never the value).
    pub cookie_source: Option<String>,
    /// True when the user chose our name (`--name`): then it is checked against the local
    /// EPMD.
    pub name_given: bool,
    /// `RELEASE_DISTRIBUTION` in the environment the doctor runs in (often the release's
    /// own container), to check the naming a release started here would get.
    pub release_distribution: Option<String>,
    /// `RELEASE_NODE` in that environment.
    pub release_node: Option<String>,
}

/// Runs every check.
pub async fn doctor(
    node: &Node,
    targets: &Targets,
    options: &SurveyOptions,
    context: &DoctorContext,
) -> DoctorReport {
    let mut checks = Vec::new();
    checks.push(our_config(node, context));
    checks.extend(environment_checks(
        context.release_distribution.as_deref(),
        context.release_node.as_deref(),
    ));
    if context.name_given {
        checks.extend(local_name_in_use(node, options).await);
    }
    let mut options = options.clone();
    options.check_virtual_ip = true;
    let survey = survey(node, targets, &options).await;
    report(&survey, context, checks)
}

fn report(survey: &Survey, context: &DoctorContext, mut checks: Vec<Check>) -> DoctorReport {
    let ctx = Context::new(survey, context.cookie_source.clone());
    checks.extend(dns_checks(survey, &ctx));
    checks.extend(listing_checks(survey, &ctx));
    for probe in &survey.probes {
        checks.extend(chain(probe, &ctx));
    }
    let cluster = ClusterView::from_survey(survey);
    let found_any = !survey.probes.is_empty();
    let dns_failed = survey.dns.as_ref().is_some_and(|d| d.result.is_err());
    if !found_any && !dns_failed {
        checks.push(Check::from_diagnosis(
            "cluster",
            CheckStatus::Fail,
            Diagnosis {
                step: CheckStep::Mesh,
                cause: Cause::NoPeers,
                summary: "no peer found to check".into(),
                evidence: vec!["discovery gave no node name".into()],
                fix: "give peers with --connect NODE, or a DNS name with --dns-query QUERY \
                      (and --peer-basename when the nodes share one)"
                    .into(),
            },
        ));
    } else if found_any {
        checks.push(mesh_check(&cluster, survey));
    }
    let mut counts = Counts::default();
    let mut worst: Option<ExitClass> = None;
    for c in &checks {
        match c.status {
            CheckStatus::Ok => counts.ok += 1,
            CheckStatus::Warn => counts.warn += 1,
            CheckStatus::Skipped => counts.skipped += 1,
            CheckStatus::Fail => {
                counts.fail += 1;
                let class = c.cause.map_or(ExitClass::Unavailable, Cause::exit_class);
                worst = worst.max(Some(class));
            }
        }
    }
    DoctorReport {
        observer: survey.observer.to_string(),
        healthy: worst.is_none(),
        exit_code: worst.map_or(0, ExitClass::code),
        exit_class: worst,
        counts,
        checks,
        cluster,
    }
}

fn our_config(node: &Node, context: &DoctorContext) -> Check {
    let mut c = Check::ok(
        "beamlink",
        CheckStep::Config,
        format!(
            "checking as {} (hidden, not registered in EPMD), peers' EPMD on port {}",
            node.name(),
            node.config().epmd_port
        ),
    );
    if let Some(source) = &context.cookie_source {
        c = c.with_evidence(format!(
            "cookie read from {source} (its value is never shown)"
        ));
    }
    c
}

/// With `--name`: is the name already registered with the EPMD on this host?
async fn local_name_in_use(node: &Node, options: &SurveyOptions) -> Option<Check> {
    let port = node.config().epmd_port;
    let epmd = SocketAddr::from(([127, 0, 0, 1], port));
    let names = crate::epmd::names(epmd, options.timeout).await.ok()?;
    let alive = node.name().alive();
    let entry = names.nodes.iter().find(|e| e.name.as_str() == alive)?;
    Some(Check::from_diagnosis(
        "beamlink",
        CheckStatus::Fail,
        Diagnosis {
            step: CheckStep::Config,
            cause: Cause::NameInUse,
            summary: format!(
                "the name {} is already in use: the EPMD on this host lists `{alive}`",
                node.name()
            ),
            evidence: vec![format!("EPMD at {epmd}: {entry}")],
            fix: format!(
                "two nodes on one host cannot share a name (a BEAM would refuse to start: \
                 \"the name {} seems to be in use by another Erlang node\"); pick another \
                 --name, or leave it out (one-shot commands pick a random one)",
                node.name()
            ),
        },
    ))
}
fn mesh_check(cluster: &ClusterView, survey: &Survey) -> Check {
    let visible = cluster
        .nodes
        .iter()
        .filter(|n| n.visible == Some(true))
        .count();
    if cluster.missing_links.is_empty() {
        let all_answered = cluster.nodes.iter().all(|n| n.error.is_none());
        return match visible {
            2.. => Check::ok(
                "cluster",
                CheckStep::Mesh,
                format!("full mesh: every pair of the {visible} visible nodes is connected"),
            ),
            1 if all_answered => Check::ok(
                "cluster",
                CheckStep::Mesh,
                "one visible node: nothing to mesh",
            ),
            _ => Check {
                summary: "fewer than two visible nodes answered: the mesh cannot be checked".into(),
                ..Check::skipped("cluster", CheckStep::Mesh)
            },
        };
    }
    let mut evidence: Vec<String> = cluster
        .missing_links
        .iter()
        .map(|l| format!("{} -- {}: {}", l.a, l.b, l.describe()))
        .collect();
    let ctx = Context::new(survey, None);
    for p in &survey.probes {
        if let Some(f) = &p.failure
            && cluster
                .missing_links
                .iter()
                .any(|l| l.a == p.name.as_str() || l.b == p.name.as_str())
        {
            let d = diagnose_failure(p, f, &ctx);
            evidence.push(format!(
                "{} is unreachable from here too ({}: {}), likely why it never meshed",
                p.name, d.step, d.summary
            ));
        }
    }
    Check::from_diagnosis(
        "cluster",
        CheckStatus::Fail,
        Diagnosis {
            step: CheckStep::Mesh,
            cause: Cause::NotMeshed,
            summary: format!(
                "not fully meshed: {} link{} between visible nodes {} missing",
                cluster.missing_links.len(),
                if cluster.missing_links.len() == 1 {
                    ""
                } else {
                    "s"
                },
                if cluster.missing_links.len() == 1 {
                    "is"
                } else {
                    "are"
                }
            ),
            evidence,
            fix: "BEAM nodes connect only when something connects them: run the same \
                  discovery on every node (dns_cluster with the same DNS_CLUSTER_QUERY, or \
                  libcluster), look for connection errors in each node's log, and try \
                  Node.connect(:\"<other>\") from one node. A node with another cookie \
                  never meshes"
                .into(),
        },
    )
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::probe::{EpmdProblem, Failure, HandshakeProblem, PeerProbe};
    use crate::proto::handshake::{HandshakeError, Step};
    use crate::proto::node_name::NodeName;

    fn failed(peer: &str, failure: Failure) -> PeerProbe {
        PeerProbe {
            failure: Some(failure),
            ..PeerProbe::unreached(NodeName::parse(peer).unwrap())
        }
    }

    fn survey(probes: Vec<PeerProbe>) -> Survey {
        Survey {
            observer: NodeName::parse("beamlink-doctor-0001@127.0.0.1").unwrap(),
            dns: None,
            listings: Vec::new(),
            probes,
            notes: Vec::new(),
            tls: false,
        }
    }

    fn cookie(peer: &str) -> PeerProbe {
        let mut p = failed(
            peer,
            Failure::Handshake {
                addr: "127.0.0.1:9100".parse().unwrap(),
                problem: HandshakeProblem::Refused(HandshakeError::ClosedByPeer {
                    step: Step::ChallengeAck,
                }),
            },
        );
        p.epmd = Some(crate::diagnose::probe::EpmdEntry {
            epmd: "127.0.0.1:4369".parse().unwrap(),
            port: 9100,
            hidden: false,
            highest_version: 6,
            lowest_version: 6,
        });
        p.tcp = Some("127.0.0.1:9100".parse().unwrap());
        p
    }

    fn no_epmd(peer: &str) -> PeerProbe {
        failed(
            peer,
            Failure::Epmd {
                epmd: "127.0.0.1:4369".parse().unwrap(),
                problem: EpmdProblem::Unreachable("connection refused".into()),
            },
        )
    }

    fn short(peer: &str) -> PeerProbe {
        let dialled = NodeName::parse(peer).unwrap();
        failed(
            peer,
            Failure::Handshake {
                addr: "127.0.0.1:9100".parse().unwrap(),
                problem: HandshakeProblem::Refused(HandshakeError::NameMismatch {
                    got: NodeName::parse(&format!("{}@host", dialled.alive())).unwrap(),
                    expected: dialled,
                }),
            },
        )
    }

    fn code(probes: Vec<PeerProbe>) -> (u8, Counts) {
        let r = report(&survey(probes), &DoctorContext::default(), Vec::new());
        assert_eq!(r.healthy, r.exit_code == 0);
        (r.exit_code, r.counts)
    }

    #[test]
    fn the_most_fundamental_failure_gives_the_exit_code() {
        assert_eq!(code(vec![no_epmd("a@127.0.0.1")]).0, 69);
        assert_eq!(
            code(vec![no_epmd("a@127.0.0.1"), cookie("b@127.0.0.1")]).0,
            77
        );
        assert_eq!(
            code(vec![
                no_epmd("a@127.0.0.1"),
                cookie("b@127.0.0.1"),
                short("c@127.0.0.1")
            ])
            .0,
            78
        );
        let (_, counts) = code(vec![cookie("b@127.0.0.1")]);
        // epmd, tcp, handshake and flags passed; cookie failed; ping and rpc skipped; the
        // mesh cannot be checked with no node reached.
        assert_eq!((counts.ok, counts.fail, counts.skipped), (4, 1, 3));
    }

    #[test]
    fn text_marks_each_step_and_folds_skipped_ones() {
        let r = report(
            &survey(vec![no_epmd("a@127.0.0.1")]),
            &DoctorContext::default(),
            Vec::new(),
        );
        let plain = r.to_text(false);
        assert!(plain.contains("[FAIL] epmd"), "{plain}");
        assert!(plain.contains("fix: EPMD must listen"), "{plain}");
        assert!(
            plain.contains("[skip] tcp, handshake, flags, cookie, ping, rpc: not run"),
            "{plain}"
        );
        assert!(plain.contains("exit 69"), "{plain}");
        assert!(!plain.contains('\x1b'));
        assert!(r.to_text(true).contains("\x1b[1;31m[FAIL]\x1b[0m"));
    }
}
