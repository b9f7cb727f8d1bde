//! Failures in plain words: for each way a peer's chain can stop (and for the DNS answer and
//! the EPMD listings) the [`Cause`], the evidence and the fix. `doctor` shows them in full,
//! `nodes` shows the cause and summary of an unreachable node.
//!
//! By where the chain stopped: `lookup.rs` for the DNS answer and the EPMDs, `tls.rs` for
//! TLS distribution (a TLS/plain mismatch, a refused certificate), `handshake.rs`
//! for the handshake and the naming mistakes it reveals, this file for the rest (host
//! resolution, TCP, ping, rpc) and the dispatch over [`Failure`].

mod handshake;
mod lookup;
mod tls;

pub(crate) use lookup::{dns_checks, listing_checks};

use super::Survey;
use super::checks::{Cause, CheckStep};
use super::probe::{Failure, PeerProbe};
use crate::node::RpcCallError;
use crate::proto::node_name::NodeName;
use handshake::handshake_failure;
use lookup::{dist_port_failure, epmd_failure, epmd_less, not_registered};
use std::net::IpAddr;

/// What the classification needs to know about the survey.
pub(crate) struct Context {
    pub(crate) observer: NodeName,
    pub(crate) cookie_source: Option<String>,
    /// We dial over TLS.
    pub(crate) tls: bool,
    /// The query and its only address, when the answer had one record.
    single_record: Option<(String, IpAddr)>,
    /// `tasks.<query>` and its addresses, when those differ from the query's.
    tasks: Option<(String, Vec<IpAddr>)>,
}

impl Context {
    pub(crate) fn new(survey: &Survey, cookie_source: Option<String>) -> Context {
        let mut single_record = None;
        let mut tasks = None;
        if let Some(dns) = &survey.dns
            && let Ok(ips) = &dns.result
            && ips.len() == 1
        {
            single_record = Some((dns.query.clone(), ips[0]));
            if let Some((name, Ok(task_ips))) = &dns.tasks
                && task_ips != ips
            {
                tasks = Some((name.clone(), task_ips.clone()));
            }
        }
        Context {
            observer: survey.observer.clone(),
            cookie_source,
            tls: survey.tls,
            single_record,
            tasks,
        }
    }

    /// True when `ip` is the query's only address and `tasks.<query>` gave others: a Docker
    /// Swarm virtual IP, certainly.
    fn is_known_virtual_ip(&self, ip: IpAddr) -> bool {
        self.tasks.is_some()
            && self
                .single_record
                .as_ref()
                .is_some_and(|(_, only)| *only == ip)
    }

    /// A hint for an address that gave nothing useful, when it was a DNS answer's only one.
    fn virtual_ip_hint(&self, ip: IpAddr) -> Option<String> {
        let (query, only) = self.single_record.as_ref()?;
        if *only != ip {
            return None;
        }
        Some(match &self.tasks {
            Some((tasks, _)) => format!(
                " Here {ip} is {query}'s virtual IP ({tasks} lists the tasks behind it): \
                 it forwards connections to some task, or nowhere (without IPVS, or when \
                 nothing behind it listens on the port), so dial the tasks themselves: \
                 --dns-query {tasks}."
            ),
            None => format!(
                " {query} gave this single address: if it is a service's virtual IP (Docker \
                 Swarm VIP, Kubernetes ClusterIP), query the nodes' own addresses instead \
                 (tasks.<service> in Swarm, a headless service in Kubernetes)."
            ),
        })
    }
}

/// A failure in words.
pub(crate) struct Diagnosis {
    pub(crate) step: CheckStep,
    pub(crate) cause: Cause,
    pub(crate) summary: String,
    pub(crate) evidence: Vec<String>,
    pub(crate) fix: String,
}

fn ips(list: &[IpAddr]) -> String {
    list.iter()
        .map(|ip| ip.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn cookie_hint(ctx: &Context) -> String {
    match &ctx.cookie_source {
        Some(s) => format!("ours comes from {s}"),
        None => "ours comes from BEAMLINK_COOKIE, RELEASE_COOKIE, --cookie-file or \
                 ~/.erlang.cookie"
            .to_string(),
    }
}

/// The diagnosis for the step at which a peer's chain stopped.
pub(crate) fn diagnose_failure(probe: &PeerProbe, failure: &Failure, ctx: &Context) -> Diagnosis {
    let name = &probe.name;
    match failure {
        Failure::Resolve { host, reason } => Diagnosis {
            step: CheckStep::Dns,
            cause: Cause::HostUnresolved,
            summary: format!("the host {host} of {name} does not resolve: {reason}"),
            evidence: vec![format!("lookup of {host}: {reason}")],
            fix: format!(
                "name the node after its IP address (RELEASE_NODE=<app>@<ip>), or make \
                 {host} resolvable from here (DNS or /etc/hosts)"
            ),
        },
        Failure::Epmd { epmd, problem } => epmd_failure(*epmd, problem, ctx),
        Failure::EpmdLess {
            epmd,
            problem,
            port,
        } => epmd_less(name, *epmd, problem, *port),
        Failure::DistPort {
            addr,
            reason,
            timed_out,
            epmd,
        } => dist_port_failure(name, *addr, reason, *timed_out, epmd.as_ref()),
        Failure::NotRegistered { epmd, registered } => {
            not_registered(Some(name), *epmd, registered.as_deref(), ctx)
        }
        Failure::Connect {
            addr,
            reason,
            timed_out,
        } => Diagnosis {
            step: CheckStep::Tcp,
            cause: Cause::PortUnreachable,
            summary: format!(
                "EPMD says {} listens on port {}, but {addr} {}",
                name.alive(),
                addr.port(),
                if *timed_out {
                    "does not answer"
                } else {
                    "refuses connections"
                }
            ),
            evidence: vec![format!("TCP connect to {addr}: {reason}")],
            fix: format!(
                "the distribution port is not reachable from here. The node may listen on \
                 another interface only (-kernel inet_dist_use_interface must cover {}, the \
                 address in its name), or a firewall closes the port: pin the range, e.g. \
                 ERL_AFLAGS=\"-kernel inet_dist_listen_min 9100 inet_dist_listen_max 9155\", \
                 and open it (and TCP {}) between all nodes",
                addr.ip(),
                probe.epmd.as_ref().map_or(4369, |e| e.epmd.port())
            ),
        },
        Failure::Handshake { addr, problem } => handshake_failure(probe, *addr, problem, ctx),
        Failure::Ping { error } => Diagnosis {
            step: CheckStep::Ping,
            cause: Cause::PingFailed,
            summary: format!("{name} is connected but its net_kernel did not answer is_auth"),
            evidence: vec![error.to_string()],
            fix: "the node may be overloaded or shutting down; look at its log".into(),
        },
        Failure::Reconnect { reason } => Diagnosis {
            step: CheckStep::Ping,
            cause: Cause::PingFailed,
            summary: format!("{name}: the connection was replaced and reconnecting failed"),
            evidence: vec![reason.clone()],
            fix: "run the doctor again; if it persists, look at the node's log".into(),
        },
        Failure::Rpc { call, error } => {
            let unsupported = matches!(error, RpcCallError::Refused(r) if r.is_atom("notsup"));
            Diagnosis {
                step: CheckStep::Rpc,
                cause: if unsupported {
                    Cause::RpcUnsupported
                } else {
                    Cause::RpcFailed
                },
                summary: if unsupported {
                    format!(
                        "{name} does not take spawn requests: erpc and, from OTP 25 on, \
                         rpc:call to it fail"
                    )
                } else {
                    format!("erpc {call} on {name} failed: {error}")
                },
                evidence: vec![format!("{call}: {error}")],
                fix: if unsupported {
                    "the peer is not a BEAM or lacks DFLAG_SPAWN: upgrade it or call it \
                     with messages instead of rpc"
                        .into()
                } else {
                    format!(
                        "the node answered ping but not {call}: it may be overloaded; look \
                         at its log"
                    )
                },
            }
        }
    }
}

#[cfg(test)]
mod tests;
