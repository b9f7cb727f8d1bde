//! Failures in plain words: for each way a peer's chain can stop (and for the DNS answer and
//! the EPMD listings) the [`Cause`], the evidence and the fix. `doctor` shows them in full,
//! `nodes` shows the cause and summary of an unreachable node.

use super::Survey;
use super::checks::{Cause, Check, CheckStatus, CheckStep};
use super::probe::{EpmdProblem, Failure, HandshakeProblem, PeerProbe};
use crate::discovery::DnsError;
use crate::node::RpcCallError;
use crate::proto::flags::DistFlags;
use crate::proto::handshake::{HandshakeError, Step};
use crate::proto::node_name::NodeName;
use std::net::{IpAddr, SocketAddr};

/// What the classification needs to know about the survey.
pub(crate) struct Context {
    pub(crate) observer: NodeName,
    pub(crate) cookie_source: Option<String>,
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
            single_record,
            tasks,
        }
    }

    /// A hint for an address that gave nothing useful, when it was a DNS answer's only one.
    fn virtual_ip_hint(&self, ip: IpAddr) -> Option<String> {
        let (query, only) = self.single_record.as_ref()?;
        (*only == ip).then(|| {
            format!(
                " {query} gave this single address: if it is a service's virtual IP (Docker \
                 Swarm VIP, Kubernetes ClusterIP), query the nodes' own addresses instead \
                 (tasks.<service> in Swarm, a headless service in Kubernetes)."
            )
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

fn epmd_failure(epmd: SocketAddr, problem: &EpmdProblem, ctx: &Context) -> Diagnosis {
    let hint = ctx.virtual_ip_hint(epmd.ip()).unwrap_or_default();
    let port = epmd.port();
    match problem {
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

fn not_registered(
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

fn handshake_failure(
    probe: &PeerProbe,
    addr: SocketAddr,
    problem: &HandshakeProblem,
    ctx: &Context,
) -> Diagnosis {
    let name = &probe.name;
    let observer = &ctx.observer;
    match problem {
        HandshakeProblem::Refused(HandshakeError::NameMismatch { expected, got }) => {
            name_mismatch(expected, got, ctx)
        }
        HandshakeProblem::Refused(
            HandshakeError::ClosedByPeer {
                step: Step::ChallengeAck,
            }
            | HandshakeError::CookieMismatch { .. },
        ) => Diagnosis {
            step: CheckStep::Cookie,
            cause: Cause::CookieMismatch,
            summary: format!("{name} rejected our challenge reply: the cookies differ"),
            evidence: vec![
                format!(
                    "it closed the connection right after our challenge reply, made with \
                     our cookie ({})",
                    cookie_hint(ctx)
                ),
                format!(
                    "its log shows: ** Connection attempt from node {observer} rejected. \
                     Invalid challenge reply. **"
                ),
            ],
            fix: "give every node and beamlink the same cookie: RELEASE_COOKIE (or the \
                  release's releases/COOKIE file) for releases, -setcookie or \
                  ~/.erlang.cookie for erl; beamlink reads --cookie-file, BEAMLINK_COOKIE, \
                  RELEASE_COOKIE or ~/.erlang.cookie. A node with another cookie than the \
                  others never meshes with them either"
                .into(),
        },
        HandshakeProblem::Refused(HandshakeError::PeerMissingFlags { missing }) => {
            let names = missing.names();
            let since = crate::proto::flags::FLAG_NAMES
                .iter()
                .filter(|(f, _)| missing.contains(*f))
                .filter_map(|(f, _)| DistFlags::required_since(*f))
                .max()
                .unwrap_or(26);
            Diagnosis {
                step: CheckStep::Flags,
                cause: Cause::MissingFlags,
                summary: format!(
                    "{name} cannot handle {names:?}, which OTP {since} and later require"
                ),
                evidence: vec![format!(
                    "its challenge offers distribution flags without {}",
                    names.join(", ")
                )],
                fix: format!(
                    "the peer is a release older than OTP {since} or a third-party node \
                     (jinterface, Pyrlang, ergo, an old erl_interface) that does not implement \
                     {}: upgrade it. BEAM nodes of OTP {since} and later refuse it too and \
                     log \"Connection attempt ... rejected since it cannot handle {names:?}\"",
                    names.join(", ")
                ),
            }
        }
        HandshakeProblem::Refused(HandshakeError::NotAllowed) => Diagnosis {
            step: CheckStep::Handshake,
            cause: Cause::NotAllowed,
            summary: format!("{name} refused us with status not_allowed"),
            evidence: vec![format!(
                "status not_allowed in answer to our name {observer}"
            )],
            fix: "its allow list (net_kernel:allow/1) excludes our name: add it, or the \
                  node requires distribution flags beamlink does not offer (its log says \
                  which: \"cannot handle [...]\")"
                .into(),
        },
        HandshakeProblem::Refused(HandshakeError::AlreadyConnected) => Diagnosis {
            step: CheckStep::Handshake,
            cause: Cause::NameInUse,
            summary: format!(
                "the name {observer} is already in use: {name} has a live connection to \
                 another node of that name"
            ),
            evidence: vec![format!(
                "{name} answered status alive to our name; we answered false, leaving that \
                 connection alone"
            )],
            fix: "two nodes must never share a name: pick another --name (or leave it out; \
                  one-shot commands pick a random one). Replicas each need their own \
                  RELEASE_NODE=<app>@<their ip>"
                .into(),
        },
        HandshakeProblem::Refused(e @ HandshakeError::ClosedByPeer { step: Step::Status }) => {
            Diagnosis {
                step: CheckStep::Handshake,
                cause: Cause::HandshakeRefused,
                summary: format!("{name} ({addr}) {e}"),
                evidence: vec![format!("no status after our name {observer}")],
                fix: "look at the node's log: it refused the name, or the port EPMD gave is \
                      not a distribution port"
                    .into(),
            }
        }
        HandshakeProblem::Refused(e) => Diagnosis {
            step: CheckStep::Handshake,
            cause: Cause::HandshakeRefused,
            summary: format!("{name} ({addr}) {e}"),
            evidence: vec![format!("handshake with {addr}: {e}")],
            fix: "the port EPMD gave does not speak the distribution protocol as a BEAM \
                  does: check what listens there"
                .into(),
        },
        HandshakeProblem::Timeout { step, after } => Diagnosis {
            step: CheckStep::Handshake,
            cause: Cause::HandshakeTimeout,
            summary: format!(
                "{addr} accepted the TCP connection but sent no {step} within {after:?}"
            ),
            evidence: vec![format!("waiting for the {step} message from {addr}")],
            fix: "is that port a BEAM's distribution port? A proxy, or a node too busy to \
                  answer, holds the connection without answering"
                .into(),
        },
        HandshakeProblem::Io { step, reason } => Diagnosis {
            step: CheckStep::Handshake,
            cause: Cause::HandshakeTimeout,
            summary: format!("the connection to {addr} failed during the {step} step"),
            evidence: vec![reason.clone()],
            fix: "look at the node's log: the connection was cut during the handshake".into(),
        },
    }
}

fn name_mismatch(expected: &NodeName, got: &NodeName, ctx: &Context) -> Diagnosis {
    let evidence = vec![format!(
        "we dialled {expected}; its challenge names it {got}"
    )];
    if got.alive() != expected.alive() {
        return Diagnosis {
            step: CheckStep::Handshake,
            cause: Cause::WrongNode,
            summary: format!(
                "the port EPMD gave for {} belongs to {got}",
                expected.alive()
            ),
            evidence,
            fix: "the EPMD registration is stale, or another node took the port: restart \
                  the node (and its EPMD)"
                .into(),
        };
    }
    if !got.is_long() {
        return Diagnosis {
            step: CheckStep::Handshake,
            cause: Cause::ShortNames,
            summary: format!(
                "{got} runs with short names: dialled as {expected}, it answered as {got}"
            ),
            evidence: vec![
                evidence[0].clone(),
                format!(
                    "the host part `{}` has no dot and is not an IP address: a short name",
                    got.host()
                ),
            ],
            fix: format!(
                "start it with long names: RELEASE_DISTRIBUTION=name and \
                 RELEASE_NODE={}@<its IP> (erl: -name {}@<ip>). A short-names node is \
                 reachable only as {got} by nodes that also use short names and resolve \
                 `{}`; it cannot connect to long-name nodes, and DNS discovery dials \
                 <basename>@<ip>",
                got.alive(),
                got.alive(),
                got.host()
            ),
        };
    }
    if let (Some(dialled), Some(real)) = (expected.host_ip(), got.host_ip())
        && dialled != real
    {
        let instead = match &ctx.tasks {
            Some((tasks, _)) => format!("--dns-query {tasks}"),
            None => "--dns-query tasks.<service> (Docker Swarm) or a headless service \
                     (Kubernetes)"
                .to_string(),
        };
        return Diagnosis {
            step: CheckStep::Handshake,
            cause: Cause::OtherAddress,
            summary: format!(
                "the node reached at {dialled} is named after another address: dialled \
                 {expected}, {got} answered"
            ),
            evidence,
            fix: format!(
                "either {dialled} forwards connections to the node (a virtual IP, load \
                 balancer or NAT): dial the nodes' own addresses, e.g. {instead}; or the \
                 node has several addresses (a task on several networks) and is named after \
                 another one: name it after the address its peers use (RELEASE_NODE={}@<that \
                 IP>; `hostname -i` prints every address)",
                got.alive()
            ),
        };
    }
    Diagnosis {
        step: CheckStep::Handshake,
        cause: Cause::NameNotIp,
        summary: format!(
            "{got} is named after a host name, not the address it was found at: dialled as \
             {expected}, it refuses that name"
        ),
        evidence,
        fix: format!(
            "peers that find it through DNS dial {expected}. Name it after its IP: \
             RELEASE_DISTRIBUTION=name RELEASE_NODE={}@<its IP> (e.g. in rel/env.sh.eex; \
             check that the command giving the IP prints one address), or connect to it by \
             its name: --connect {got}",
            got.alive()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::probe::PeerProbe;

    fn name(s: &str) -> NodeName {
        NodeName::parse(s).unwrap()
    }

    fn context() -> Context {
        let survey = Survey {
            observer: name("beamlink-doctor-0001@10.0.0.1"),
            dns: None,
            listings: Vec::new(),
            probes: Vec::new(),
            notes: Vec::new(),
        };
        Context::new(&survey, Some("RELEASE_COOKIE".into()))
    }

    fn refused(peer: &str, e: HandshakeError) -> (PeerProbe, Failure) {
        let failure = Failure::Handshake {
            addr: "10.0.0.5:9100".parse().unwrap(),
            problem: HandshakeProblem::Refused(e),
        };
        let probe = PeerProbe {
            failure: Some(failure.clone()),
            ..PeerProbe::unreached(name(peer))
        };
        (probe, failure)
    }

    fn mismatch(got: &str) -> Diagnosis {
        let (probe, failure) = refused(
            "app@10.0.0.5",
            HandshakeError::NameMismatch {
                expected: name("app@10.0.0.5"),
                got: name(got),
            },
        );
        diagnose_failure(&probe, &failure, &context())
    }

    #[test]
    fn the_name_in_the_challenge_tells_the_naming_mistakes_apart() {
        let short = mismatch("app@web-1");
        assert_eq!(short.cause, Cause::ShortNames);
        assert!(short.fix.contains("RELEASE_DISTRIBUTION=name"));
        assert!(short.fix.contains("RELEASE_NODE=app@<its IP>"));
        assert_eq!(mismatch("app@web-1.example.com").cause, Cause::NameNotIp);
        assert_eq!(mismatch("app@10.0.0.9").cause, Cause::OtherAddress);
        assert_eq!(mismatch("other@10.0.0.5").cause, Cause::WrongNode);
    }

    #[test]
    fn refusals_name_cookie_flags_and_names_in_use() {
        let ctx = context();
        let (p, f) = refused(
            "app@10.0.0.5",
            HandshakeError::ClosedByPeer {
                step: Step::ChallengeAck,
            },
        );
        let cookie = diagnose_failure(&p, &f, &ctx);
        assert_eq!(
            (cookie.step, cookie.cause),
            (CheckStep::Cookie, Cause::CookieMismatch)
        );
        assert!(cookie.evidence.iter().any(|e| e.contains("RELEASE_COOKIE")));
        assert!(
            cookie
                .evidence
                .iter()
                .any(|e| e.contains("beamlink-doctor-0001@10.0.0.1 rejected"))
        );

        let (p, f) = refused(
            "app@10.0.0.5",
            HandshakeError::PeerMissingFlags {
                missing: DistFlags::UNLINK_ID | DistFlags::V4_NC,
            },
        );
        let flags = diagnose_failure(&p, &f, &ctx);
        assert_eq!(
            (flags.step, flags.cause),
            (CheckStep::Flags, Cause::MissingFlags)
        );
        assert!(flags.summary.contains("UNLINK_ID") && flags.summary.contains("OTP 26"));
        let (p, f) = refused(
            "app@10.0.0.5",
            HandshakeError::PeerMissingFlags {
                missing: DistFlags::HANDSHAKE_23,
            },
        );
        assert!(diagnose_failure(&p, &f, &ctx).summary.contains("OTP 25"));

        let (p, f) = refused("app@10.0.0.5", HandshakeError::AlreadyConnected);
        assert_eq!(diagnose_failure(&p, &f, &ctx).cause, Cause::NameInUse);
        let (p, f) = refused("app@10.0.0.5", HandshakeError::NotAllowed);
        assert_eq!(diagnose_failure(&p, &f, &ctx).cause, Cause::NotAllowed);
    }

    #[test]
    fn a_single_address_is_called_a_virtual_ip_only_with_tasks_evidence() {
        let one: Vec<IpAddr> = vec!["10.0.0.2".parse().unwrap()];
        let tasks: Vec<IpAddr> = vec!["10.0.0.5".parse().unwrap(), "10.0.0.6".parse().unwrap()];
        let survey = |tasks_answer| Survey {
            observer: name("d@10.0.0.1"),
            dns: Some(crate::diagnose::DnsAnswer {
                query: "app_web".into(),
                result: Ok(one.clone()),
                tasks: tasks_answer,
            }),
            listings: Vec::new(),
            probes: Vec::new(),
            notes: Vec::new(),
        };
        let with_tasks = survey(Some(("tasks.app_web".into(), Ok(tasks.clone()))));
        let checks = dns_checks(&with_tasks, &Context::new(&with_tasks, None));
        let vip = checks
            .iter()
            .find(|c| c.cause == Some(Cause::VirtualIp))
            .expect("a virtual IP check");
        assert_eq!(vip.status, CheckStatus::Fail);
        assert!(
            vip.fix
                .as_deref()
                .unwrap_or("")
                .contains("--dns-query tasks.app_web")
        );

        let without = survey(Some((
            "tasks.app_web".into(),
            Err(DnsError::NoRecords {
                query: "tasks.app_web".into(),
            }),
        )));
        let ctx = Context::new(&without, None);
        assert!(
            dns_checks(&without, &ctx)
                .iter()
                .all(|c| c.status == CheckStatus::Ok)
        );
        // Only a hint in what the EPMD failure at that address says.
        let d = epmd_failure(
            "10.0.0.2:4369".parse().unwrap(),
            &EpmdProblem::Unreachable("refused".into()),
            &ctx,
        );
        assert_eq!(d.cause, Cause::EpmdUnreachable);
        assert!(d.fix.contains("single address") && d.fix.contains("ERL_EPMD_ADDRESS"));
        let elsewhere = epmd_failure(
            "10.0.0.3:4369".parse().unwrap(),
            &EpmdProblem::Unreachable("refused".into()),
            &ctx,
        );
        assert!(!elsewhere.fix.contains("single address"));
    }
}
