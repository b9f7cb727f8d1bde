//! The DNS answer and the EPMDs: what the query gave (and whether it is a virtual IP), what
//! each EPMD listed, why an EPMD did not tell us a peer's port, and the EPMD-less
//! mismatches (a peer without EPMD while we ask one, a peer with EPMD while we use
//! `--dist-port`).

use super::{Context, Diagnosis, ips};
use crate::diagnose::Survey;
use crate::diagnose::checks::{Cause, Check, CheckStatus, CheckStep};
use crate::diagnose::probe::EpmdProblem;
use crate::discovery::DnsError;
use crate::proto::node_name::NodeName;
use std::net::SocketAddr;

pub(crate) fn dns_checks(survey: &Survey, ctx: &Context) -> Vec<Check> {
    let Some(dns) = &survey.dns else {
        return Vec::new();
    };
    let q = &dns.query;
    let mut out = Vec::new();
    match &dns.result {
        Ok(addrs) => {
            out.push(Check::ok(
                q,
                CheckStep::Dns,
                format!(
                    "{q} resolves to {} address{}: {}",
                    addrs.len(),
                    if addrs.len() == 1 { "" } else { "es" },
                    ips(addrs)
                ),
            ));
            if let Some((tasks, task_ips)) = &ctx.tasks {
                out.push(Check::from_diagnosis(
                    q,
                    CheckStatus::Fail,
                    Diagnosis {
                        step: CheckStep::Dns,
                        cause: Cause::VirtualIp,
                        summary: format!(
                            "{q} is a virtual IP, not the nodes' own addresses: {tasks} \
                             lists the tasks behind it"
                        ),
                        evidence: vec![
                            format!("{q} -> {} (one record)", ips(addrs)),
                            format!("{tasks} -> {}", ips(task_ips)),
                        ],
                        fix: format!(
                            "use --dns-query {tasks} (and DNS_CLUSTER_QUERY={tasks} for \
                             dns_cluster or libcluster in the app), or deploy the service \
                             with endpoint_mode: dnsrr. A virtual IP hands each connection \
                             to some task, so EPMD and the distribution port answer for a \
                             node under another name, or not at all"
                        ),
                    },
                ));
            }
        }
        Err(e) => {
            let (cause, fix) = match e {
                DnsError::NoRecords { .. } => (
                    Cause::DnsNoRecords,
                    format!(
                        "check the name: in Docker Swarm it is tasks.<stack>_<service> (with \
                         the stack prefix), in Kubernetes a headless service \
                         <service>.<namespace>.svc.cluster.local; the nodes must be running \
                         and on a network this host shares. Check from here with \
                         `getent hosts {q}`"
                    ),
                ),
                _ => (
                    Cause::DnsFailed,
                    "check that a DNS server answers from here (/etc/resolv.conf, or pass \
                     --dns-server IP)"
                        .to_string(),
                ),
            };
            out.push(Check::from_diagnosis(
                q,
                CheckStatus::Fail,
                Diagnosis {
                    step: CheckStep::Dns,
                    cause,
                    summary: e.to_string(),
                    evidence: vec![format!("A and AAAA lookup of {q}: {e}")],
                    fix,
                },
            ));
        }
    }
    out
}

/// Without a basename, each DNS address's EPMD is where the peers come from.
pub(crate) fn listing_checks(survey: &Survey, ctx: &Context) -> Vec<Check> {
    let mut out = Vec::new();
    for listing in &survey.listings {
        let subject = listing.ip.to_string();
        match &listing.result {
            Ok(reply) if !reply.nodes.is_empty() => {
                let names: Vec<String> = reply
                    .nodes
                    .iter()
                    .map(|n| format!("{} (port {})", n.name, n.port))
                    .collect();
                out.push(Check::ok(
                    subject,
                    CheckStep::Epmd,
                    format!("EPMD at {} lists {}", listing.epmd, names.join(", ")),
                ));
            }
            Ok(_) => out.push(Check::from_diagnosis(
                subject,
                CheckStatus::Fail,
                not_registered(None, listing.epmd, Some(&[]), ctx),
            )),
            Err(e) => {
                let problem = EpmdProblem::of(e);
                out.push(Check::from_diagnosis(
                    subject,
                    CheckStatus::Fail,
                    epmd_failure(listing.epmd, &problem, ctx),
                ));
            }
        }
    }
    out
}

pub(super) fn epmd_failure(epmd: SocketAddr, problem: &EpmdProblem, ctx: &Context) -> Diagnosis {
    let hint = ctx.virtual_ip_hint(epmd.ip()).unwrap_or_default();
    let port = epmd.port();
    // Nothing at a known virtual IP: that is the whole story, no firewall or EPMD advice.
    let at_vip = |summary: String, evidence: String, cause| Diagnosis {
        step: CheckStep::Epmd,
        cause,
        summary,
        evidence: vec![evidence],
        fix: hint.trim_start().to_string(),
    };
    match problem {
        EpmdProblem::Unreachable(text) if ctx.is_known_virtual_ip(epmd.ip()) => at_vip(
            format!("no EPMD answers at {epmd}, a virtual IP"),
            text.clone(),
            Cause::EpmdUnreachable,
        ),
        EpmdProblem::Timeout(after) if ctx.is_known_virtual_ip(epmd.ip()) => at_vip(
            format!("no EPMD answers at {epmd}, a virtual IP, within {after:?}"),
            format!("no reply from {epmd} within {after:?}"),
            Cause::EpmdTimeout,
        ),
        EpmdProblem::Unreachable(text) => Diagnosis {
            step: CheckStep::Epmd,
            cause: Cause::EpmdUnreachable,
            summary: format!("nothing accepts connections at {epmd}: no EPMD there"),
            evidence: vec![text.clone()],
            fix: format!(
                "EPMD must listen on the address peers dial. EPMD is not running there, or \
                 listens elsewhere: ERL_EPMD_ADDRESS (e.g. 127.0.0.1) limits it to those \
                 addresses, so unset it or add {}; or a firewall rejects TCP {port}: open it \
                 between the nodes. If the nodes use another EPMD port (ERL_EPMD_PORT), pass \
                 the same --epmd-port.{hint}",
                epmd.ip()
            ),
        },
        EpmdProblem::Timeout(after) => Diagnosis {
            step: CheckStep::Epmd,
            cause: Cause::EpmdTimeout,
            summary: format!("EPMD at {epmd} did not answer within {after:?}"),
            evidence: vec![format!("no reply from {epmd} within {after:?}")],
            fix: format!(
                "a firewall drops TCP {port} between this host and {}, or nothing routes \
                 there: open TCP {port} (EPMD) and the distribution ports between the \
                 nodes.{hint}",
                epmd.ip()
            ),
        },
        EpmdProblem::Broken(text) => Diagnosis {
            step: CheckStep::Epmd,
            cause: Cause::EpmdBroken,
            summary: format!("{epmd} does not answer as EPMD does"),
            evidence: vec![text.clone()],
            fix: format!(
                "something other than EPMD listens on port {port}: check --epmd-port \
                 (ERL_EPMD_PORT) against the port the nodes' EPMD uses"
            ),
        },
    }
}

/// No EPMD at `epmd`, but `port` answers the handshake.
pub(super) fn epmd_less(
    name: &NodeName,
    epmd: SocketAddr,
    problem: &EpmdProblem,
    port: u16,
) -> Diagnosis {
    let seen = match problem {
        EpmdProblem::Unreachable(text) | EpmdProblem::Broken(text) => text.clone(),
        EpmdProblem::Timeout(after) => format!("no reply within {after:?}"),
    };
    Diagnosis {
        step: CheckStep::Epmd,
        cause: Cause::EpmdLess,
        summary: format!(
            "no EPMD at {epmd}, but {port} answers the distribution handshake: pass \
             --dist-port {port}"
        ),
        evidence: vec![
            format!("EPMD at {epmd}: {seen}"),
            format!(
                "{}:{port} answered our handshake as {name}'s host",
                epmd.ip()
            ),
        ],
        fix: format!(
            "{name} runs without EPMD (-start_epmd false -erl_epmd_port {port}): every \
             node listens on, and dials, port {port}. Pass --dist-port {port} (or set \
             ERL_DIST_PORT={port})"
        ),
    }
}

/// EPMD-less: nothing speaks the protocol at the dist port `addr`; `epmd` is an EPMD that
/// answered at the host anyway, with its names.
pub(super) fn dist_port_failure(
    name: &NodeName,
    addr: SocketAddr,
    reason: &str,
    timed_out: bool,
    epmd: Option<&(SocketAddr, Vec<(String, u16)>)>,
) -> Diagnosis {
    let port = addr.port();
    let what = if timed_out {
        "does not answer"
    } else {
        "refuses connections"
    };
    let mut evidence = vec![format!("TCP connect to {addr}: {reason}")];
    let Some((epmd, listed)) = epmd else {
        return Diagnosis {
            step: CheckStep::Tcp,
            cause: Cause::PortUnreachable,
            summary: format!("--dist-port {port}: {addr} {what}, and no EPMD answers there"),
            evidence,
            fix: format!(
                "start {name} without EPMD on the same port (-start_epmd false \
                 -erl_epmd_port {port} in vm.args, or ELIXIR_ERL_OPTIONS), and open TCP \
                 {port} between the nodes"
            ),
        };
    };
    let entry = listed.iter().find(|(n, _)| n == name.alive());
    evidence.push(match listed.as_slice() {
        [] => format!("EPMD at {epmd} answers and lists no names"),
        list => format!(
            "EPMD at {epmd} lists: {}",
            list.iter()
                .map(|(n, p)| format!("{n} at port {p}"))
                .collect::<Vec<_>>()
                .join("; ")
        ),
    });
    let summary = match entry {
        Some((_, listed_port)) => format!(
            "--dist-port {port}: {addr} {what}, but the EPMD at {epmd} lists {} at port \
             {listed_port}: it uses EPMD",
            name.alive()
        ),
        None => format!(
            "--dist-port {port}: {addr} {what}, and an EPMD answers at {epmd} although \
             --dist-port was given"
        ),
    };
    Diagnosis {
        step: CheckStep::Tcp,
        cause: if entry.is_some() {
            Cause::UsesEpmd
        } else {
            Cause::PortUnreachable
        },
        summary,
        evidence,
        fix: format!(
            "the nodes at {} register with EPMD: drop --dist-port (and ERL_DIST_PORT) to \
             find them through it, or start them without EPMD (-start_epmd false \
             -erl_epmd_port {port})",
            addr.ip()
        ),
    }
}

pub(super) fn not_registered(
    peer: Option<&NodeName>,
    epmd: SocketAddr,
    registered: Option<&[(String, u16)]>,
    ctx: &Context,
) -> Diagnosis {
    let hint = ctx.virtual_ip_hint(epmd.ip()).unwrap_or_default();
    let listed = match registered {
        Some([]) => format!("EPMD at {epmd} lists no names"),
        Some(list) => format!(
            "EPMD at {epmd} lists: {}",
            list.iter()
                .map(|(n, p)| format!("{n} at port {p}"))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        None => format!("EPMD at {epmd} did not list its names"),
    };
    let (summary, fix) = match (peer, registered) {
        (Some(peer), Some(list)) if !list.is_empty() => (
            format!(
                "EPMD at {epmd} answers, but `{}` is not registered there",
                peer.alive()
            ),
            format!(
                "the node runs under another name, or is not running. If it is one of those \
                 listed, dial that name: --connect <name>@{}, or with DNS discovery \
                 --peer-basename <name> (the part of RELEASE_NODE before the @; without \
                 --peer-basename every listed node is dialled).{hint}",
                epmd.ip()
            ),
        ),
        (peer, _) => (
            match peer {
                Some(peer) => format!(
                    "EPMD at {epmd} answers, but `{}` is not registered there",
                    peer.alive()
                ),
                None => format!("EPMD at {epmd} answers, but no node is registered there"),
            },
            format!(
                "no BEAM is registered on that host: the node is not running, runs without \
                 distribution (RELEASE_DISTRIBUTION=none), or registered with an EPMD on \
                 another port (ERL_EPMD_PORT: pass the same --epmd-port).{hint}"
            ),
        ),
    };
    Diagnosis {
        step: CheckStep::Epmd,
        cause: Cause::NotRegistered,
        summary,
        evidence: vec![listed],
        fix,
    }
}
