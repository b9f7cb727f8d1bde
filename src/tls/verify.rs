//! Which name a server's certificate must carry, and the two verifiers rustls lacks.
//!
//! OTP's client sets `server_name_indication` to the host part of the node name
//! (`inet_tls_dist:do_setup/7`) and checks the certificate against it. For `name@10.0.1.5`
//! that is an IP address: OTP sends it as SNI anyway (RFC 6066 forbids IP literals there),
//! OTP 27 and 29 match it against the certificate's IP SANs, and OTP 25 against its DNS
//! SANs, as text. beamlink checks an IP host against the IP SANs (as OTP 27 and 29) and sends
//! no SNI for it, as rustls never does for an address: no OTP server looks at the SNI of a
//! distribution connection (`inet_tls_dist` sets neither `sni_fun` nor `sni_hosts`). A DNS
//! host is sent as SNI and checked against the DNS SANs, as OTP does.
//!
//! As a server, rustls ignores an IP address in the SNI of a ClientHello (it logs and drops
//! it, `ServerNamePayload::IpAddress` in rustls' `msgs::handshake`), so OTP clients'
//! addresses need nothing from us.

use super::ServerNameIndication;
use super::error::TlsError;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use std::net::IpAddr;
use std::sync::Arc;

/// The name the server's certificate is checked against (and sent as SNI when it is a DNS
/// name), for a peer whose node name has host part `host`.
pub fn server_name(
    sni: &ServerNameIndication,
    host: &str,
) -> Result<ServerName<'static>, TlsError> {
    let name = match sni {
        ServerNameIndication::Fixed(name) => name.as_str(),
        // With `disable` the name is not checked, but rustls still wants one.
        ServerNameIndication::HostPart | ServerNameIndication::Disable => host,
    };
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(ServerName::IpAddress(ip.into()));
    }
    ServerName::try_from(name.to_string()).map_err(|_| TlsError::BadServerName {
        name: name.to_string(),
    })
}

/// `verify_none` for a client: any certificate is taken, but the handshake signatures are
/// still checked, so the connection is at least bound to the key the server presented.
#[derive(Debug)]
pub struct AcceptAnyServerCert {
    provider: Arc<CryptoProvider>,
}

impl AcceptAnyServerCert {
    /// A verifier checking signatures with `provider`'s algorithms.
    pub fn new(provider: Arc<CryptoProvider>) -> AcceptAnyServerCert {
        AcceptAnyServerCert { provider }
    }
}

impl ServerCertVerifier for AcceptAnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// `{server_name_indication, disable}`: OTP then checks the chain but not the name. The
/// webpki verifier checks the chain and validity first and the name last, so a name error
/// means everything else passed.
#[derive(Debug)]
pub struct ChainOnlyServerVerifier {
    inner: Arc<WebPkiServerVerifier>,
}

impl ChainOnlyServerVerifier {
    /// Wraps the webpki verifier.
    pub fn new(inner: Arc<WebPkiServerVerifier>) -> ChainOnlyServerVerifier {
        ChainOnlyServerVerifier { inner }
    }
}

impl ServerCertVerifier for ChainOnlyServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_hosts_are_checked_as_addresses_and_names_as_names() {
        let host = ServerNameIndication::HostPart;
        assert!(matches!(
            server_name(&host, "10.0.1.5").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            server_name(&host, "::1").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            server_name(&host, "node1.cluster.internal").unwrap(),
            ServerName::DnsName(d) if d.as_ref() == "node1.cluster.internal"
        ));
        let fixed = ServerNameIndication::Fixed("cluster.internal".into());
        assert!(matches!(
            server_name(&fixed, "10.0.1.5").unwrap(),
            ServerName::DnsName(d) if d.as_ref() == "cluster.internal"
        ));
        assert!(matches!(
            server_name(&host, "bad host!"),
            Err(TlsError::BadServerName { .. })
        ));
    }
}
