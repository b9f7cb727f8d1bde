//! Why a TLS handshake failed, each cause in its own words with the fix. `Display` reads as
//! a sentence about the peer (the transport puts its name and address first).

use rustls::{AlertDescription, CertificateError};
use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

/// A failed TLS handshake. Clone (I/O errors shared behind `Arc`), as the transport's
/// failures are, so every caller waiting on one attempt gets it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum TlsError {
    /// No TLS answer in time, or the connection closed without one: a plain-TCP distribution
    /// node reads our ClientHello as the start of a 5 635-byte handshake message and waits
    /// until its setup timer (7 s) closes the connection.
    NoTlsAnswer {
        /// How long we waited.
        after: Duration,
        /// The peer closed the connection (rather than our timer firing).
        closed: bool,
    },
    /// A client spoke plain distribution to our TLS listener: its first bytes are not a TLS
    /// record.
    PlainClient,
    /// The name to check the server's certificate against is not a DNS name or an address.
    BadServerName {
        /// The name.
        name: String,
    },
    /// The peer's certificate does not chain to our CA.
    UnknownCa,
    /// The peer's certificate has expired (or is not valid yet).
    Expired {
        /// rustls' account, with the dates when it has them.
        detail: String,
    },
    /// The server's certificate does not carry the name we checked.
    NameMismatch {
        /// The name (or address) we checked.
        expected: String,
        /// The names the certificate carries.
        presented: Vec<String>,
    },
    /// Another problem with the peer's certificate.
    BadPeerCertificate {
        /// rustls' account.
        detail: String,
    },
    /// The peer presented no certificate, and we require one.
    NoPeerCertificate,
    /// The peer ended the handshake with an alert.
    Alert(AlertDescription),
    /// The socket failed.
    Io(Arc<io::Error>),
    /// Any other TLS failure.
    Protocol(rustls::Error),
}

impl TlsError {
    /// Classifies what tokio-rustls returned for a TLS handshake that ran for `after`.
    pub fn from_io(e: io::Error, after: Duration) -> TlsError {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            return TlsError::NoTlsAnswer {
                after,
                closed: true,
            };
        }
        TlsError::unwrap_io(e).unwrap_or_else(|e| TlsError::Io(Arc::new(e)))
    }

    /// The TLS failure an I/O error on a TLS stream carries, or the error back when it
    /// carries none. Under TLS 1.3 the server checks our certificate after our side of the
    /// TLS handshake is done, so its refusal arrives as an alert while the distribution
    /// handshake reads.
    pub fn unwrap_io(e: io::Error) -> Result<TlsError, io::Error> {
        let is_rustls = e
            .get_ref()
            .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some());
        if !is_rustls {
            return Err(e);
        }
        match e
            .into_inner()
            .map(|inner| inner.downcast::<rustls::Error>())
        {
            Some(Ok(tls)) => Ok(TlsError::from(*tls)),
            _ => Err(io::Error::other("TLS failure")),
        }
    }
}

impl From<rustls::Error> for TlsError {
    fn from(e: rustls::Error) -> TlsError {
        match e {
            rustls::Error::InvalidCertificate(c) => match c {
                CertificateError::UnknownIssuer => TlsError::UnknownCa,
                CertificateError::Expired
                | CertificateError::ExpiredContext { .. }
                | CertificateError::NotValidYet
                | CertificateError::NotValidYetContext { .. } => TlsError::Expired {
                    detail: format!("{}", rustls::Error::InvalidCertificate(c)),
                },
                CertificateError::NotValidForNameContext {
                    expected,
                    presented,
                } => TlsError::NameMismatch {
                    expected: server_name_text(&expected),
                    presented,
                },
                CertificateError::NotValidForName => TlsError::NameMismatch {
                    expected: String::new(),
                    presented: Vec::new(),
                },
                other => TlsError::BadPeerCertificate {
                    detail: format!("{}", rustls::Error::InvalidCertificate(other)),
                },
            },
            rustls::Error::NoCertificatesPresented => TlsError::NoPeerCertificate,
            rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType) => {
                TlsError::PlainClient
            }
            rustls::Error::AlertReceived(alert) => TlsError::Alert(alert),
            other => TlsError::Protocol(other),
        }
    }
}

fn server_name_text(name: &rustls::pki_types::ServerName<'_>) -> String {
    match name {
        rustls::pki_types::ServerName::DnsName(d) => d.as_ref().to_string(),
        rustls::pki_types::ServerName::IpAddress(ip) => std::net::IpAddr::from(*ip).to_string(),
        other => format!("{other:?}"),
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::NoTlsAnswer { after, closed } => write!(
                f,
                "gave no TLS answer ({} after {:.1} s): is the peer plain TCP distribution? \
                 A plain node waits for the rest of what it takes for a handshake message \
                 until its setup timer closes the connection; drop the TLS settings to join \
                 a plain cluster",
                if *closed {
                    "it closed the connection"
                } else {
                    "nothing"
                },
                after.as_secs_f32()
            ),
            TlsError::PlainClient => f.write_str(
                "spoke plain TCP distribution to our TLS listener (its first bytes are no TLS \
                 record): start it with -proto_dist inet_tls and the cluster's option file, \
                 or drop beamlink's TLS settings to join a plain cluster",
            ),
            TlsError::BadServerName { name } => write!(
                f,
                "cannot be checked: {name:?} is neither a DNS name nor an IP address"
            ),
            TlsError::UnknownCa => f.write_str(
                "presented a certificate that does not chain to our CA (unknown issuer): \
                 --tls-ca / cacertfile must hold the CA that signed the cluster's certificates",
            ),
            TlsError::Expired { detail } => write!(
                f,
                "presented a certificate outside its validity period ({detail}): renew it"
            ),
            TlsError::NameMismatch {
                expected,
                presented,
            } => {
                write!(
                    f,
                    "presented a certificate that is not valid for {expected:?}"
                )?;
                if !presented.is_empty() {
                    write!(f, " (it names {})", presented.join(", "))?;
                }
                f.write_str(
                    ": the certificate of a name@IP node needs that address as an IP SAN \
                     (OTP 27, 29 and beamlink check IP SANs; OTP 25 checks a DNS SAN of the \
                     same text, so certificates for mixed clusters carry both)",
                )
            }
            TlsError::BadPeerCertificate { detail } => {
                write!(f, "presented a certificate we refuse: {detail}")
            }
            TlsError::NoPeerCertificate => f.write_str(
                "presented no client certificate, and we require one (verify peer / \
                 fail_if_no_peer_cert): the peer's option file needs certfile and keyfile \
                 in its client options",
            ),
            TlsError::Alert(alert) => alert_text(f, alert),
            TlsError::Io(e) => write!(f, "failed during the TLS handshake: {e}"),
            TlsError::Protocol(e) => write!(f, "failed the TLS handshake: {e}"),
        }
    }
}

/// What the alert a peer sent says about us, and the fix.
fn alert_text(f: &mut fmt::Formatter<'_>, alert: &AlertDescription) -> fmt::Result {
    match alert {
        AlertDescription::UnknownCA => f.write_str(
            "refused our certificate (TLS alert unknown_ca): it does not trust the CA that \
             signed it; our certificate must chain to the peer's cacertfile",
        ),
        AlertDescription::CertificateExpired => f.write_str(
            "refused our certificate as expired (TLS alert certificate_expired): renew \
             --tls-cert / certfile",
        ),
        AlertDescription::BadCertificate | AlertDescription::CertificateUnknown => write!(
            f,
            "refused our certificate (TLS alert {}): it does not trust it, or it does not \
             carry the name the peer dialled (our node name's host: an IP SAN for a name@IP \
             node, and for OTP 25 peers also a DNS SAN of the same text)",
            alert_name(alert)
        ),
        AlertDescription::CertificateRequired => f.write_str(
            "requires a client certificate (TLS alert certificate_required): give \
             --tls-cert/--tls-key, or certfile/keyfile in the client options",
        ),
        AlertDescription::HandshakeFailure => f.write_str(
            "refused the TLS handshake (alert handshake_failure): OTP answers so under TLS \
             1.2 when it requires a client certificate we did not send (give --tls-cert/\
             --tls-key), when it refuses our certificate's name, or when no cipher suite or \
             group is shared",
        ),
        AlertDescription::ProtocolVersion => f.write_str(
            "shares no TLS version with us (TLS alert protocol_version): OTP 25 and 27 speak \
             TLS 1.2 only unless their option file names versions",
        ),
        other => write!(
            f,
            "ended the TLS handshake with alert {}",
            alert_name(other)
        ),
    }
}

/// The alert as OTP and the RFCs spell it.
fn alert_name(alert: &AlertDescription) -> String {
    let debug = format!("{alert:?}");
    let mut out = String::new();
    let mut previous_upper = true;
    for c in debug.chars() {
        if c.is_ascii_uppercase() && !previous_upper {
            out.push('_');
        }
        previous_upper = c.is_ascii_uppercase();
        out.push(c.to_ascii_lowercase());
    }
    out
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TlsError::Io(e) => Some(&**e),
            TlsError::Protocol(e) => Some(e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cause_has_its_own_words() {
        let cases: Vec<(TlsError, &str)> = vec![
            (
                TlsError::from(rustls::Error::InvalidCertificate(
                    CertificateError::UnknownIssuer,
                )),
                "does not chain to our CA",
            ),
            (
                TlsError::from(rustls::Error::InvalidCertificate(CertificateError::Expired)),
                "validity period",
            ),
            (
                TlsError::from(rustls::Error::NoCertificatesPresented),
                "presented no client certificate",
            ),
            (
                TlsError::from(rustls::Error::AlertReceived(AlertDescription::UnknownCA)),
                "unknown_ca",
            ),
            (
                TlsError::from(rustls::Error::AlertReceived(
                    AlertDescription::CertificateRequired,
                )),
                "requires a client certificate",
            ),
            (
                TlsError::from(rustls::Error::AlertReceived(
                    AlertDescription::CertificateExpired,
                )),
                "certificate_expired",
            ),
            (
                TlsError::from_io(
                    io::Error::from(io::ErrorKind::UnexpectedEof),
                    Duration::from_secs(7),
                ),
                "plain TCP distribution",
            ),
        ];
        for (e, needle) in cases {
            assert!(e.to_string().contains(needle), "{e}");
        }
        let wrapped = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext {
                expected: rustls::pki_types::ServerName::try_from("10.0.1.5").unwrap(),
                presented: vec!["DnsName(\"10.0.1.5\")".into()],
            }),
        );
        let e = TlsError::from_io(wrapped, Duration::ZERO);
        assert!(matches!(&e, TlsError::NameMismatch { expected, .. } if expected == "10.0.1.5"));
        assert!(e.to_string().contains("IP SAN"), "{e}");
        assert_eq!(
            alert_name(&AlertDescription::BadCertificate),
            "bad_certificate"
        );
        assert_eq!(alert_name(&AlertDescription::UnknownCA), "unknown_ca");
    }
}
