//! One peer, one step at a time: the chain `net_kernel:connect_node/1` walks (host
//! resolution, EPMD `PORT_PLEASE2`, TCP connect, the distribution handshake) followed by the
//! `is_auth` call `Node.ping` makes and `erpc` calls that ask the peer what it is and whom
//! it sees. Each step keeps its evidence, and the first failing step ends the chain with a
//! typed [`Failure`].
//!
//! The handshake is run here rather than through [`Node::connect`] so that its outcome is
//! seen in full (the name in the challenge, the status) and so that an `alive` status is
//! answered `false`: a diagnosis must never replace another node's live connection. A
//! successful handshake is handed to the node with [`Node::adopt`], so the link is the one
//! the later steps use.
//!
//! EPMD-less (`--dist-port P`, the node's [`NodeConfig::dist_port`]): no EPMD is asked, the
//! peer is dialled on P; when nothing speaks the protocol there, its host's EPMD is asked
//! for its names, to tell a node that uses EPMD after all ([`Failure::DistPort`]). The other
//! way round, when nothing listens at a peer's EPMD address, the ports EPMD-less
//! deployments use ([`super::EPMD_LESS_PORTS`]) are tried: a handshake answered there means
//! the peer runs without EPMD ([`Failure::EpmdLess`]). Both live in `epmd_less.rs`.
//!
//! [`NodeConfig::dist_port`]: crate::node::NodeConfig::dist_port

use super::epmd_less::{connect_failure, epmd_less_port};
use crate::discovery::resolve_host;
use crate::epmd::{EpmdError, EpmdStep};
use crate::node::{CallError, Dest, Node, RpcCallError, RpcError};
use crate::proto::epmd::{AliveName, NodeType};
use crate::proto::flags::DistFlags;
use crate::proto::handshake::{FramingError, HandshakeError, Step};
use crate::proto::node_name::NodeName;
use crate::proto::term::Term;
use crate::tls::{TlsError, TlsSession};
use crate::transport::{HandshakeFailure, HandshakeFailureKind};
use serde::Serialize;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// What the peer's EPMD said about it (`PORT2_RESP`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EpmdEntry {
    /// The EPMD asked.
    pub epmd: SocketAddr,
    /// The distribution port.
    pub port: u16,
    /// Registered as a hidden node (type 72, what C-nodes use) rather than a normal one (77).
    pub hidden: bool,
    /// Highest distribution protocol version it registered.
    pub highest_version: u16,
    /// Lowest distribution protocol version it registered.
    pub lowest_version: u16,
}

/// A connection that is up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connected {
    /// The peer's distribution address.
    pub addr: SocketAddr,
    /// The flags it offered.
    pub peer_flags: DistFlags,
    /// The flags the connection uses.
    pub flags: DistFlags,
    /// Its creation.
    pub creation: u32,
    /// True if this probe found the link already up (a `--watch` round after the first).
    pub reused: bool,
    /// How long the TCP connect and the handshake took (when this probe ran them).
    pub connect_time: Option<Duration>,
}

impl Connected {
    /// True when the peer publishes itself (`DFLAG_PUBLISHED`): a visible node, which every
    /// other visible node is expected to be connected to.
    pub fn published(&self) -> bool {
        self.peer_flags.contains(DistFlags::PUBLISHED)
    }
}

/// What a peer runs, as far as it tells.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "version", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Software {
    /// A BEAM; `erlang:system_info(otp_release)`.
    Otp(String),
    /// Another beamlink node; the version its `beamlink` GenServer reports.
    Beamlink(String),
    /// It answers `erpc` but neither question.
    Unknown,
}

impl std::fmt::Display for Software {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Software::Otp(r) => write!(f, "OTP {r}"),
            Software::Beamlink(v) => write!(f, "beamlink {v}"),
            Software::Unknown => f.write_str("unknown"),
        }
    }
}

/// The nodes a peer is connected to, by its own account (`erlang:nodes(visible)` and
/// `erlang:nodes(hidden)`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerNodes {
    /// Visible connections.
    pub visible: Vec<NodeName>,
    /// Hidden connections (ours included).
    pub hidden: Vec<NodeName>,
}

/// Why talking to an EPMD failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EpmdProblem {
    /// The TCP connection was refused or had no route (nothing listens there).
    Unreachable(String),
    /// No answer in time (packets dropped, or an EPMD that does not answer).
    Timeout(Duration),
    /// It answered, but not as EPMD does.
    Broken(String),
}

impl EpmdProblem {
    /// The kind of an EPMD client error.
    pub(crate) fn of(e: &EpmdError) -> EpmdProblem {
        match e {
            EpmdError::Unreachable { .. } => EpmdProblem::Unreachable(e.to_string()),
            EpmdError::Timeout { after, .. } => EpmdProblem::Timeout(*after),
            EpmdError::Io {
                step: EpmdStep::Connect,
                ..
            } => EpmdProblem::Unreachable(e.to_string()),
            _ => EpmdProblem::Broken(e.to_string()),
        }
    }
}

/// Why the handshake failed.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum HandshakeProblem {
    /// The peer refused us or broke the protocol (the typed reason).
    Refused(HandshakeError),
    /// The peer sent nothing for `step` within the setup time.
    Timeout {
        /// The message we waited for.
        step: Step,
        /// The time we waited.
        after: Duration,
    },
    /// The connection failed.
    Io {
        /// The step we were in.
        step: Step,
        /// The error.
        reason: String,
    },
    /// We spoke plain TCP and the peer answered with a TLS record: it runs TLS distribution.
    TlsPeer,
    /// TLS failed (a refused certificate, or no TLS answer: a plain-TCP node).
    Tls(TlsError),
}

/// The step at which a peer's chain stopped, with its evidence.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Failure {
    /// The host part of its name does not resolve.
    Resolve {
        /// The host.
        host: String,
        /// What the resolver said.
        reason: String,
    },
    /// The EPMD on its host did not answer properly.
    Epmd {
        /// The EPMD address.
        epmd: SocketAddr,
        /// What went wrong.
        problem: EpmdProblem,
    },
    /// Nothing listens at its EPMD address, but `port` answers the distribution handshake:
    /// the peer runs without EPMD (`-erl_epmd_port`), and we were not told `--dist-port`.
    EpmdLess {
        /// The EPMD address.
        epmd: SocketAddr,
        /// What went wrong there.
        problem: EpmdProblem,
        /// The port that answers the handshake.
        port: u16,
    },
    /// EPMD-less (`--dist-port`): nothing speaks the distribution protocol at the dist port.
    DistPort {
        /// The address dialled.
        addr: SocketAddr,
        /// What happened there.
        reason: String,
        /// True if the connect timed out rather than being refused.
        timed_out: bool,
        /// An EPMD that answered at the host anyway, and the names it lists.
        epmd: Option<(SocketAddr, Vec<(String, u16)>)>,
    },
    /// Its EPMD answered, without this name.
    NotRegistered {
        /// The EPMD address.
        epmd: SocketAddr,
        /// What that EPMD lists instead (`None` if the NAMES request failed).
        registered: Option<Vec<(String, u16)>>,
    },
    /// The distribution port EPMD gave does not take connections.
    Connect {
        /// The address dialled.
        addr: SocketAddr,
        /// What the OS said.
        reason: String,
        /// True if the connect timed out (packets dropped) rather than being refused.
        timed_out: bool,
    },
    /// The handshake failed.
    Handshake {
        /// The address dialled.
        addr: SocketAddr,
        /// Why.
        problem: HandshakeProblem,
    },
    /// Connected, but `net_kernel` did not answer `is_auth` with `yes`.
    Ping {
        /// What happened instead.
        error: PingError,
    },
    /// The handshake succeeded, but the link was replaced by another connection to the same
    /// peer, and connecting again failed.
    Reconnect {
        /// Why the new connection failed.
        reason: String,
    },
    /// Connected and pinged, but an `erpc` call failed.
    Rpc {
        /// The call, as `m:f(args)`.
        call: String,
        /// How it failed.
        error: RpcCallError,
    },
}

/// Everything learnt about one peer.
#[derive(Clone, Debug)]
pub struct PeerProbe {
    /// The name dialled.
    pub name: NodeName,
    /// Its host's address.
    pub ip: Option<IpAddr>,
    /// What its EPMD said.
    pub epmd: Option<EpmdEntry>,
    /// The distribution address a TCP connection was opened to (before the handshake).
    pub tcp: Option<SocketAddr>,
    /// What the TLS session agreed on, when we dial over TLS and its handshake succeeded.
    pub tls: Option<TlsSession>,
    /// The connection, once up.
    pub connected: Option<Connected>,
    /// Round trip of the `is_auth` call.
    pub ping: Option<Duration>,
    /// What it runs.
    pub software: Option<Software>,
    /// Whom it sees.
    pub nodes: Option<PeerNodes>,
    /// Where the chain stopped.
    pub failure: Option<Failure>,
}

impl PeerProbe {
    /// A peer nothing is known about yet.
    pub fn unreached(name: NodeName) -> PeerProbe {
        PeerProbe {
            ip: name.host_ip(),
            name,
            epmd: None,
            tcp: None,
            tls: None,
            connected: None,
            ping: None,
            software: None,
            nodes: None,
            failure: None,
        }
    }

    fn fail(mut self, failure: Failure) -> PeerProbe {
        self.failure = Some(failure);
        self
    }
}

/// Walks the chain for `peer` with `timeout` per step.
pub async fn probe(node: &Node, peer: &NodeName, timeout: Duration) -> PeerProbe {
    let mut probe = PeerProbe::unreached(peer.clone());
    if let Some(link) = node.connection(peer) {
        let info = link.info();
        probe.connected = Some(Connected {
            addr: info.addr,
            peer_flags: info.peer_flags,
            flags: info.flags,
            creation: info.peer_creation,
            reused: true,
            connect_time: None,
        });
        probe.ip = Some(info.addr.ip());
        probe.tcp = Some(info.addr);
        probe.tls = info.tls.clone();
    } else {
        probe = match dial(node, probe, timeout).await {
            Ok(p) => p,
            Err(p) => return p,
        };
    }
    match ping(node, peer, timeout).await {
        Ok(rtt) => probe.ping = Some(rtt),
        Err(error) => return probe.fail(Failure::Ping { error }),
    }
    match software(node, peer, timeout).await {
        Ok(s) => probe.software = Some(s),
        Err(f) => return probe.fail(f),
    }
    match peer_nodes(node, peer, timeout).await {
        Ok(n) => probe.nodes = Some(n),
        Err(f) => return probe.fail(f),
    }
    probe
}

/// Resolution, EPMD, TCP and handshake; `Err` carries the probe with its failure.
async fn dial(
    node: &Node,
    mut probe: PeerProbe,
    timeout: Duration,
) -> Result<PeerProbe, PeerProbe> {
    let peer = probe.name.clone();
    let ip = match probe.ip {
        Some(ip) => ip,
        None => {
            let resolved = tokio::time::timeout(timeout, resolve_host(peer.host())).await;
            match resolved {
                Ok(Ok(ip)) => ip,
                Ok(Err(reason)) => {
                    return Err(probe.fail(Failure::Resolve {
                        host: peer.host().to_string(),
                        reason,
                    }));
                }
                Err(_) => {
                    return Err(probe.fail(Failure::Resolve {
                        host: peer.host().to_string(),
                        reason: format!("no answer within {timeout:?}"),
                    }));
                }
            }
        }
    };
    probe.ip = Some(ip);
    let epmd = SocketAddr::new(ip, node.config().epmd_port);
    if let Some(port) = node.config().dist_port {
        return handshake_at(node, probe, SocketAddr::new(ip, port), timeout).await;
    }
    let Ok(alive) = AliveName::new(peer.alive()) else {
        return Err(probe.fail(Failure::NotRegistered {
            epmd,
            registered: None,
        }));
    };
    let entry = match crate::epmd::port_please(epmd, &alive, timeout).await {
        Ok(Some(entry)) => entry,
        Ok(None) => {
            let registered = crate::epmd::names(epmd, timeout).await.ok().map(|r| {
                r.nodes
                    .iter()
                    .map(|e| (e.name.as_str().to_string(), e.port))
                    .collect()
            });
            return Err(probe.fail(Failure::NotRegistered { epmd, registered }));
        }
        Err(e) => {
            let problem = EpmdProblem::of(&e);
            if let EpmdProblem::Unreachable(_) = problem
                && let Some(port) = epmd_less_port(node, &peer, ip, timeout).await
            {
                return Err(probe.fail(Failure::EpmdLess {
                    epmd,
                    problem,
                    port,
                }));
            }
            return Err(probe.fail(Failure::Epmd { epmd, problem }));
        }
    };
    probe.epmd = Some(EpmdEntry {
        epmd,
        port: entry.port,
        hidden: entry.node_type != NodeType::Normal,
        highest_version: entry.highest_version,
        lowest_version: entry.lowest_version,
    });
    handshake_at(node, probe, SocketAddr::new(ip, entry.port), timeout).await
}

/// TCP and handshake with the peer at `addr`.
async fn handshake_at(
    node: &Node,
    mut probe: PeerProbe,
    addr: SocketAddr,
    timeout: Duration,
) -> Result<PeerProbe, PeerProbe> {
    let peer = probe.name.clone();
    let started = Instant::now();
    let dialler = node.dialler().with_setup_timeout(timeout);
    let stream = match dialler.connect(&peer, addr).await {
        Ok(s) => s,
        Err(HandshakeFailure {
            kind: HandshakeFailureKind::Timeout { after, .. },
            ..
        }) => {
            let reason = format!("no answer within {after:?}");
            return Err(probe.fail(connect_failure(node, addr, reason, true, timeout).await));
        }
        Err(HandshakeFailure {
            kind: HandshakeFailureKind::Connect(source),
            ..
        }) => {
            let reason = describe_io(&source);
            return Err(probe.fail(connect_failure(node, addr, reason, false, timeout).await));
        }
        Err(e) => {
            probe.tcp = Some(addr); // TLS failed: TCP connected
            return Err(probe.fail(handshake_failure(e, addr)));
        }
    };
    probe.tcp = Some(addr);
    probe.tls = stream.tls_session();
    // `false` to `alive`: never take a name over from a node that is connected under it.
    let done = match dialler.handshake(stream, &peer, addr, || false).await {
        Ok(d) => d,
        Err(e) => return Err(probe.fail(handshake_failure(e, addr))),
    };
    let connected = Connected {
        addr,
        peer_flags: done.established.peer_flags,
        flags: done.established.flags,
        creation: done.established.peer_creation,
        reused: false,
        connect_time: Some(started.elapsed()),
    };
    if node.adopt(done, addr).is_none() {
        // Another handshake with this peer is under way; its link serves as well.
        if let Err(e) = node.connect(&peer).await {
            return Err(probe.fail(Failure::Reconnect {
                reason: e.to_string(),
            }));
        }
    }
    probe.connected = Some(connected);
    Ok(probe)
}

fn handshake_failure(e: HandshakeFailure, addr: SocketAddr) -> Failure {
    let problem = match e.kind {
        HandshakeFailureKind::Protocol(p) => HandshakeProblem::Refused(p),
        HandshakeFailureKind::Timeout { step, after } => HandshakeProblem::Timeout { step, after },
        HandshakeFailureKind::Io { step, source } => HandshakeProblem::Io {
            step,
            reason: describe_io(&source),
        },
        HandshakeFailureKind::Connect(source) => {
            return Failure::Connect {
                addr,
                reason: describe_io(&source),
                timed_out: false,
            };
        }
        HandshakeFailureKind::Tls(e) => HandshakeProblem::Tls(e),
        HandshakeFailureKind::Framing {
            error: FramingError::TlsRecord { .. },
            ..
        } => HandshakeProblem::TlsPeer,
        other => HandshakeProblem::Io {
            step: Step::Status,
            reason: format!("{other:?}"),
        },
    };
    Failure::Handshake { addr, problem }
}

/// `connection refused` rather than `Connection refused (os error 111)`.
pub(crate) fn describe_io(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = match text.rfind(" (os error ") {
        Some(at) if text.ends_with(')') => text[..at].to_string(),
        _ => text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Why the `is_auth` ping failed.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum PingError {
    /// `net_kernel` answered something other than `yes`.
    Answered(Term),
    /// The call failed (timeout, the connection dropped, no such process).
    Call(CallError),
}

impl std::fmt::Display for PingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PingError::Answered(t) => write!(f, "net_kernel answered {t} instead of yes"),
            PingError::Call(CallError::NodeDown(_)) => {
                f.write_str("the connection dropped during the call")
            }
            PingError::Call(CallError::Timeout) => f.write_str("net_kernel did not answer in time"),
            PingError::Call(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for PingError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PingError::Call(e) => Some(e),
            PingError::Answered(_) => None,
        }
    }
}

/// The `is_auth` call `Node.ping` / `net_adm:ping/1` makes; the round trip on success.
pub async fn ping(node: &Node, peer: &NodeName, timeout: Duration) -> Result<Duration, PingError> {
    let mut me = node.spawn_process();
    let request = Term::tuple([
        Term::atom("is_auth"),
        Term::Atom(node.name().as_atom().clone()),
    ]);
    let started = Instant::now();
    let reply = me
        .call(&Dest::name("net_kernel", peer), request, timeout)
        .await;
    let rtt = started.elapsed();
    match reply {
        Ok(r) if r.is_atom("yes") => Ok(rtt),
        Ok(other) => Err(PingError::Answered(other)),
        Err(e) => Err(PingError::Call(e)),
    }
}

async fn software(node: &Node, peer: &NodeName, timeout: Duration) -> Result<Software, Failure> {
    let release = node
        .rpc_call(
            peer,
            "erlang",
            "system_info",
            vec![Term::atom("otp_release")],
            timeout,
        )
        .await;
    match release {
        Ok(t) => Ok(text_of(&t).map_or(Software::Unknown, Software::Otp)),
        Err(RpcCallError::Raised(RpcError::Error { reason, .. })) if reason.is_atom("undef") => {
            // Not a BEAM: maybe another beamlink, which says what it is through its GenServer.
            let mut me = node.spawn_process();
            match me
                .call(&Dest::name("beamlink", peer), Term::atom("info"), timeout)
                .await
            {
                Ok(Term::Map(entries)) => Ok(entries
                    .iter()
                    .find(|(k, _)| k.is_atom("version"))
                    .and_then(|(_, v)| text_of(v))
                    .map_or(Software::Unknown, Software::Beamlink)),
                _ => Ok(Software::Unknown),
            }
        }
        Err(error) => Err(Failure::Rpc {
            call: "erlang:system_info(otp_release)".into(),
            error,
        }),
    }
}

/// Whom `peer` is connected to: `erlang:nodes(connected, #{node_type => true})` (OTP 25.1
/// and later: one call), else `erlang:nodes(visible)` and `erlang:nodes(hidden)` asked at
/// once. Fewer calls is less work for a node that is asked every interval ([`crate::watch`]).
pub(crate) async fn peer_nodes(
    node: &Node,
    peer: &NodeName,
    timeout: Duration,
) -> Result<PeerNodes, Failure> {
    let typed = node
        .rpc_call(
            peer,
            "erlang",
            "nodes",
            vec![
                Term::atom("connected"),
                Term::Map(vec![(Term::atom("node_type"), Term::atom("true"))]),
            ],
            timeout,
        )
        .await;
    match typed {
        Ok(reply) => Ok(typed_nodes(&reply)),
        // Before OTP 25.1, or not a BEAM: the two classic calls.
        Err(RpcCallError::Raised(RpcError::Error { reason, .. }))
            if reason.is_atom("undef") || reason.is_atom("badarg") =>
        {
            classic_nodes(node, peer, timeout).await
        }
        Err(error) => Err(Failure::Rpc {
            call: "erlang:nodes(connected, #{node_type => true})".into(),
            error,
        }),
    }
}

/// `[{Node, #{node_type => visible | hidden}}]`, sorted by kind.
fn typed_nodes(reply: &Term) -> PeerNodes {
    let mut out = PeerNodes::default();
    for item in reply.as_list().unwrap_or_default() {
        let Some([name, info]) = item.as_tuple().and_then(|t| <&[Term; 2]>::try_from(t).ok())
        else {
            continue;
        };
        let Some(name) = name
            .as_atom()
            .and_then(|a| NodeName::parse(a.as_str()).ok())
        else {
            continue;
        };
        let hidden = match info {
            Term::Map(fields) => fields
                .iter()
                .any(|(k, v)| k.is_atom("node_type") && v.is_atom("hidden")),
            _ => false,
        };
        if hidden {
            out.hidden.push(name);
        } else {
            out.visible.push(name);
        }
    }
    out.visible.sort();
    out.hidden.sort();
    out
}

/// `erlang:nodes(visible)` and `erlang:nodes(hidden)`, asked at once.
async fn classic_nodes(
    node: &Node,
    peer: &NodeName,
    timeout: Duration,
) -> Result<PeerNodes, Failure> {
    let ask = |kind: &'static str| async move {
        let reply = node
            .rpc_call(peer, "erlang", "nodes", vec![Term::atom(kind)], timeout)
            .await
            .map_err(|error| Failure::Rpc {
                call: format!("erlang:nodes({kind})"),
                error,
            })?;
        let mut list: Vec<NodeName> = reply
            .as_list()
            .unwrap_or_default()
            .iter()
            .filter_map(|t| t.as_atom())
            .filter_map(|a| NodeName::parse(a.as_str()).ok())
            .collect();
        list.sort();
        Ok::<_, Failure>(list)
    };
    let (visible, hidden) = tokio::join!(ask("visible"), ask("hidden"));
    Ok(PeerNodes {
        visible: visible?,
        hidden: hidden?,
    })
}

/// A charlist or a binary as text.
pub(crate) fn text_of(t: &Term) -> Option<String> {
    match t {
        Term::Binary(b) => String::from_utf8(b.to_vec()).ok(),
        Term::List(items) => items
            .iter()
            .map(|c| c.as_i64().and_then(|c| char::from_u32(c as u32)))
            .collect(),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
