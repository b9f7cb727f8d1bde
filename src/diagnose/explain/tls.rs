//! TLS distribution (`inet_tls_dist`): a TLS/plain mismatch either way, and a TLS handshake
//! that failed over a certificate or otherwise. Each names the side to change and how.

use super::Diagnosis;
use crate::diagnose::checks::{Cause, CheckStep};
use crate::diagnose::probe::PeerProbe;
use crate::tls::TlsError;
use std::net::SocketAddr;

/// We spoke plain TCP; the peer answered with a TLS record.
pub(super) fn tls_peer(probe: &PeerProbe, addr: SocketAddr) -> Diagnosis {
    let name = &probe.name;
    Diagnosis {
        step: CheckStep::Tls,
        cause: Cause::TlsPeer,
        summary: format!(
            "{name} ({addr}) speaks TLS distribution (-proto_dist inet_tls) and we dialled \
             plain TCP"
        ),
        evidence: vec![format!(
            "it answered our plain name message with a TLS alert record"
        )],
        fix: "pass --tls-optfile FILE (the cluster's ssl_dist_optfile, BEAMLINK_TLS_OPTFILE) \
              or --tls-cert/--tls-key/--tls-ca with the cluster's certificates"
            .into(),
    }
}

/// The TLS handshake with the peer failed.
pub(super) fn tls_failure(probe: &PeerProbe, addr: SocketAddr, e: &TlsError) -> Diagnosis {
    let name = &probe.name;
    let evidence = vec![format!("TLS with {addr}: {e}")];
    let (cause, summary, fix) = match e {
        TlsError::NoTlsAnswer { .. } | TlsError::PlainClient => (
            Cause::NotTls,
            format!("{name} ({addr}) gave no TLS answer: it runs plain TCP distribution"),
            "drop the TLS settings (--tls-optfile, --tls-cert, ...) to reach a plain \
             cluster, or start the node with -proto_dist inet_tls -ssl_dist_optfile FILE"
                .to_string(),
        ),
        TlsError::UnknownCa => (
            Cause::TlsCertificate,
            format!("{name}'s certificate does not chain to our CA"),
            "--tls-ca (or cacertfile) must hold the CA that signed the cluster's \
             certificates"
                .to_string(),
        ),
        TlsError::Expired { .. } => (
            Cause::TlsCertificate,
            format!("{name}'s certificate is outside its validity period"),
            "renew the node's certificate (and check both clocks)".to_string(),
        ),
        TlsError::NameMismatch { .. } => (
            Cause::TlsCertificate,
            format!("{name}'s certificate does not carry the name we dialled"),
            format!(
                "its certificate needs {} as a SAN (an IP SAN for an address; OTP 25 peers \
                 check a DNS SAN of the same text, so certificates for mixed clusters carry \
                 both), or set server_name_indication in the client options",
                name.host()
            ),
        ),
        TlsError::Alert(_) | TlsError::NoPeerCertificate | TlsError::BadPeerCertificate { .. } => (
            Cause::TlsCertificate,
            format!("{name} ({addr}) and we do not accept each other's certificate: {e}"),
            "our certificate must chain to the peer's cacertfile and carry our node name's \
             host as a SAN; the peer's must chain to --tls-ca. With fail_if_no_peer_cert \
             the peer requires --tls-cert/--tls-key (or certfile/keyfile in the client \
             options)"
                .to_string(),
        ),
        _ => (
            Cause::TlsFailed,
            format!("the TLS handshake with {name} ({addr}) failed: {e}"),
            "look at the node's log (ssl logs why it ended the handshake)".to_string(),
        ),
    };
    Diagnosis {
        step: CheckStep::Tls,
        cause,
        summary,
        evidence,
        fix,
    }
}
