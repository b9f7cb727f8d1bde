//! The handshake: a refusal (cookie, flags, `not_allowed`, a name in use), a timeout, and
//! the naming mistakes the name in the peer's challenge reveals (short names, a node named
//! after a host name or another address, another node behind the port).

use super::{Context, Diagnosis, cookie_hint};
use crate::diagnose::checks::{Cause, CheckStep};
use crate::diagnose::probe::{HandshakeProblem, PeerProbe};
use crate::proto::flags::DistFlags;
use crate::proto::handshake::{HandshakeError, Step};
use crate::proto::node_name::NodeName;
use std::net::SocketAddr;

pub(super) fn handshake_failure(
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
        HandshakeProblem::TlsPeer => super::tls::tls_peer(probe, addr),
        HandshakeProblem::Tls(e) => super::tls::tls_failure(probe, addr, e),
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
