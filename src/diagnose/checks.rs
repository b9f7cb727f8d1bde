//! The vocabulary of `beamlink doctor`: which step a check is about ([`CheckStep`]), how it
//! ended ([`CheckStatus`]), why it failed ([`Cause`]) and the exit code class a failure maps
//! to ([`ExitClass`]).

use serde::Serialize;
use std::fmt;

/// Which link of the chain a check is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CheckStep {
    /// Our own settings (name, cookie source).
    Config,
    /// DNS: the query, or the host part of a peer's name.
    Dns,
    /// The peer's EPMD.
    Epmd,
    /// TCP to the distribution port.
    Tcp,
    /// The TLS handshake (TLS distribution), or a TLS/plain mismatch.
    Tls,
    /// The handshake: status and the name in the challenge.
    Handshake,
    /// Distribution flags.
    Flags,
    /// The challenge digests.
    Cookie,
    /// `net_kernel`'s `is_auth`.
    Ping,
    /// `erpc` calls.
    Rpc,
    /// The full mesh between visible nodes.
    Mesh,
}

impl fmt::Display for CheckStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CheckStep::Config => "config",
            CheckStep::Dns => "dns",
            CheckStep::Epmd => "epmd",
            CheckStep::Tcp => "tcp",
            CheckStep::Tls => "tls",
            CheckStep::Handshake => "handshake",
            CheckStep::Flags => "flags",
            CheckStep::Cookie => "cookie",
            CheckStep::Ping => "ping",
            CheckStep::Rpc => "rpc",
            CheckStep::Mesh => "mesh",
        })
    }
}

/// The outcome of a check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    /// Fine.
    Ok,
    /// Not run: an earlier step of the same peer failed.
    Skipped,
    /// Works, but something will bite.
    Warn,
    /// Broken.
    Fail,
}

/// The sysexits class a failure maps to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitClass {
    /// 69: a peer or EPMD is unavailable.
    Unavailable,
    /// 76: a protocol error.
    Protocol,
    /// 77: refused (cookie, not allowed).
    NoPerm,
    /// 78: bad configuration.
    Config,
}

impl ExitClass {
    /// The sysexits code.
    pub fn code(self) -> u8 {
        match self {
            ExitClass::Unavailable => 69,
            ExitClass::Protocol => 76,
            ExitClass::NoPerm => 77,
            ExitClass::Config => 78,
        }
    }

    /// In words.
    pub fn describe(self) -> &'static str {
        match self {
            ExitClass::Unavailable => "a peer or EPMD is unavailable",
            ExitClass::Protocol => "protocol error",
            ExitClass::NoPerm => "refused (cookie or not allowed)",
            ExitClass::Config => "configuration error",
        }
    }
}

/// Why a check failed or warns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Cause {
    /// Discovery found no peer at all.
    NoPeers,
    /// The DNS query has no A/AAAA records.
    DnsNoRecords,
    /// The DNS query failed.
    DnsFailed,
    /// The DNS name is a virtual IP: `tasks.<name>` lists the nodes behind it.
    VirtualIp,
    /// The node reached at an address is named after another address (a virtual IP or
    /// proxy forwards to it, or it has several addresses).
    OtherAddress,
    /// A peer's host name does not resolve.
    HostUnresolved,
    /// Nothing listens at the EPMD address.
    EpmdUnreachable,
    /// The EPMD address does not answer in time.
    EpmdTimeout,
    /// Something that is not EPMD answers at the EPMD address.
    EpmdBroken,
    /// EPMD answers without the expected name.
    NotRegistered,
    /// No EPMD, but a port answers the handshake: the peer runs EPMD-less and we were not
    /// given `--dist-port`.
    EpmdLess,
    /// We were given `--dist-port`, but the peer is registered with an EPMD instead.
    UsesEpmd,
    /// The distribution port does not take connections.
    PortUnreachable,
    /// The node runs with short names.
    ShortNames,
    /// The node is named after a host name, not the address it is found at.
    NameNotIp,
    /// The port EPMD gave belongs to another node.
    WrongNode,
    /// A node with our name is already connected (or registered).
    NameInUse,
    /// The peer answered `not_allowed`.
    NotAllowed,
    /// The peer closed or broke the handshake.
    HandshakeRefused,
    /// The peer stopped answering during the handshake.
    HandshakeTimeout,
    /// The peer lacks mandatory distribution flags.
    MissingFlags,
    /// The cookies differ.
    CookieMismatch,
    /// `is_auth` was not answered `yes`.
    PingFailed,
    /// The peer does not take `erpc` calls.
    RpcUnsupported,
    /// An `erpc` call failed.
    RpcFailed,
    /// Visible nodes are not all connected to each other.
    NotMeshed,
    /// A third-party peer lacks optional flags (a warning).
    OptionalFlags,
    /// The peer runs TLS distribution and we spoke plain TCP.
    TlsPeer,
    /// We spoke TLS and the peer gave no TLS answer: it runs plain TCP distribution.
    NotTls,
    /// A certificate was refused, ours by the peer or its by us.
    TlsCertificate,
    /// The TLS handshake failed otherwise (no shared version, the connection cut).
    TlsFailed,
}

impl Cause {
    /// The exit code class when this cause fails a check.
    pub fn exit_class(self) -> ExitClass {
        match self {
            Cause::VirtualIp
            | Cause::OtherAddress
            | Cause::ShortNames
            | Cause::NameNotIp
            | Cause::NameInUse
            | Cause::EpmdLess
            | Cause::UsesEpmd
            | Cause::TlsPeer
            | Cause::NotTls => ExitClass::Config,
            Cause::CookieMismatch | Cause::NotAllowed | Cause::TlsCertificate => ExitClass::NoPerm,
            Cause::EpmdBroken
            | Cause::HandshakeRefused
            | Cause::MissingFlags
            | Cause::RpcUnsupported
            | Cause::OptionalFlags
            | Cause::TlsFailed => ExitClass::Protocol,
            Cause::NoPeers
            | Cause::DnsNoRecords
            | Cause::DnsFailed
            | Cause::HostUnresolved
            | Cause::EpmdUnreachable
            | Cause::EpmdTimeout
            | Cause::NotRegistered
            | Cause::PortUnreachable
            | Cause::WrongNode
            | Cause::HandshakeTimeout
            | Cause::PingFailed
            | Cause::RpcFailed
            | Cause::NotMeshed => ExitClass::Unavailable,
        }
    }
}

/// One check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What it is about: a DNS name, an address, a node, `cluster` or `beamlink`.
    pub subject: String,
    /// The step.
    pub step: CheckStep,
    /// The outcome.
    pub status: CheckStatus,
    /// For `warn` and `fail`: why.
    pub cause: Option<Cause>,
    /// One line in plain words.
    pub summary: String,
    /// What was seen.
    pub evidence: Vec<String>,
    /// What to change.
    pub fix: Option<String>,
}

/// The summary of a step skipped after an earlier failure of the same peer.
pub(crate) const SKIPPED: &str = "not run: an earlier step failed";

impl Check {
    pub(crate) fn ok(
        subject: impl Into<String>,
        step: CheckStep,
        summary: impl Into<String>,
    ) -> Check {
        Check {
            subject: subject.into(),
            step,
            status: CheckStatus::Ok,
            cause: None,
            summary: summary.into(),
            evidence: Vec::new(),
            fix: None,
        }
    }

    pub(crate) fn skipped(subject: impl Into<String>, step: CheckStep) -> Check {
        Check {
            subject: subject.into(),
            step,
            status: CheckStatus::Skipped,
            cause: None,
            summary: SKIPPED.into(),
            evidence: Vec::new(),
            fix: None,
        }
    }

    pub(crate) fn from_diagnosis(
        subject: impl Into<String>,
        status: CheckStatus,
        d: super::explain::Diagnosis,
    ) -> Check {
        Check {
            subject: subject.into(),
            step: d.step,
            status,
            cause: Some(d.cause),
            summary: d.summary,
            evidence: d.evidence,
            fix: Some(d.fix),
        }
    }

    pub(crate) fn with_evidence(mut self, line: impl Into<String>) -> Check {
        self.evidence.push(line.into());
        self
    }
}

/// How many checks ended how.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// `ok`.
    pub ok: usize,
    /// `warn`.
    pub warn: usize,
    /// `fail`.
    pub fail: usize,
    /// `skipped`.
    pub skipped: usize,
}
