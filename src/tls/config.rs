//! Where TLS settings come from and the rustls configurations built from them.
//!
//! Precedence (docs/contract.md): the PEM flags (`--tls-cert`, `--tls-key`, `--tls-ca`) win
//! over the option file's `certfile`, `keyfile` and `cacertfile` in both roles, and
//! `--tls-verify` over its `verify`. Without an option file, `verify` is `peer` in both
//! roles and a server requires the client's certificate. With one, each role keeps what the
//! file says and OTP's defaults otherwise: a client verifies the server (`verify_peer`, the
//! default since OTP 26), a server asks for no certificate (`verify_none`) and, with
//! `verify_peer`, accepts a client without one unless `fail_if_no_peer_cert` is true.
//!
//! Without `versions`, both TLS 1.2 and 1.3 are offered: that meets OTP 25 and 27, which
//! speak TLS 1.2 only unless their file names `versions` (`inet_tls_dist:dist_defaults/1`),
//! and OTP 29, which negotiates 1.3.

use super::optfile::{self, OptFile, Role, RoleOptions, ServerNameIndication, VerifyMode};
use super::verify::{AcceptAnyServerCert, ChainOnlyServerVerifier};
use super::{TlsConfigError, TlsVersion, provider};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The TLS settings as given on the command line and in the environment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsSources {
    /// `--tls-optfile` / `BEAMLINK_TLS_OPTFILE`.
    pub optfile: Option<PathBuf>,
    /// `--tls-cert`.
    pub cert: Option<PathBuf>,
    /// `--tls-key`.
    pub key: Option<PathBuf>,
    /// `--tls-ca`.
    pub ca: Option<PathBuf>,
    /// `--tls-verify`.
    pub verify: Option<VerifyMode>,
}

impl TlsSources {
    /// True when no TLS setting is given: distribution runs over plain TCP.
    pub fn is_plain(&self) -> bool {
        self.optfile.is_none() && self.cert.is_none() && self.key.is_none() && self.ca.is_none()
    }
}

/// Ready-to-use TLS configurations for both roles.
#[derive(Clone)]
pub struct TlsConfig {
    client: Arc<ClientConfig>,
    server: Result<Arc<ServerConfig>, &'static str>,
    sni: ServerNameIndication,
    insecure: Vec<Role>,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("sni", &self.sni)
            .field("server", &self.server.is_ok())
            .field("insecure", &self.insecure)
            .finish_non_exhaustive()
    }
}

impl TlsConfig {
    /// Loads the settings: `Ok(None)` for plain TCP distribution. Reads and checks every
    /// file now (the key file's permissions too), so a bad setting stops the start.
    pub fn load(sources: &TlsSources) -> Result<Option<TlsConfig>, TlsConfigError> {
        if sources.is_plain() {
            return match sources.verify {
                Some(_) => Err(TlsConfigError::VerifyWithoutTls),
                None => Ok(None),
            };
        }
        let file = match &sources.optfile {
            Some(path) => Some(optfile::read(path)?),
            None => None,
        };
        TlsConfig::build(sources, file.as_ref()).map(Some)
    }

    fn build(sources: &TlsSources, file: Option<&OptFile>) -> Result<TlsConfig, TlsConfigError> {
        let empty = RoleOptions::default();
        let client = merge(
            sources,
            file.map_or(&empty, |f| &f.client),
            Role::Client,
            file,
        );
        let server = merge(
            sources,
            file.map_or(&empty, |f| &f.server),
            Role::Server,
            file,
        );
        let insecure = [(Role::Server, &server), (Role::Client, &client)]
            .into_iter()
            .filter(|(_, o)| o.verify == Some(VerifyMode::None))
            .map(|(r, _)| r)
            .collect();
        let sni = client
            .server_name_indication
            .clone()
            .unwrap_or(ServerNameIndication::HostPart);
        let client_config = client_config(&client, &sni)?;
        let server_config = if server.certfile.is_some() {
            Ok(server_config(&server)?)
        } else {
            Err(
                "no certificate to present: give --tls-cert/--tls-key or certfile/keyfile \
                 in the server options",
            )
        };
        Ok(TlsConfig {
            client: client_config,
            server: server_config,
            sni,
            insecure,
        })
    }

    /// The configuration for connections we dial.
    pub fn client(&self) -> Arc<ClientConfig> {
        self.client.clone()
    }

    /// The configuration for connections we accept; an error when no server certificate is
    /// configured (a one-shot command that only dials needs none).
    pub fn server(&self) -> Result<Arc<ServerConfig>, TlsConfigError> {
        self.server.clone().map_err(|what| TlsConfigError::Missing {
            role: Role::Server.as_str(),
            what,
        })
    }

    /// What the client sends as SNI and checks the server's certificate against.
    pub fn server_name_indication(&self) -> &ServerNameIndication {
        &self.sni
    }

    /// The roles that check nothing (`verify_none`), for the warning at start.
    pub fn insecure_roles(&self) -> &[Role] {
        &self.insecure
    }
}

/// One role's options after the flags are laid over the file.
fn merge(
    sources: &TlsSources,
    from_file: &RoleOptions,
    role: Role,
    file: Option<&OptFile>,
) -> RoleOptions {
    let mut o = from_file.clone();
    if let Some(cert) = &sources.cert {
        o.certfile = Some(cert.clone());
        // A key flag, or the file's key only when it came with the file's certificate.
        o.keyfile = sources.key.clone();
    }
    if let Some(key) = &sources.key {
        o.keyfile = Some(key.clone());
    }
    if let Some(ca) = &sources.ca {
        o.cacertfile = Some(ca.clone());
    }
    let verify_flag = sources.verify;
    match (verify_flag, file) {
        (Some(v), _) => {
            o.verify = Some(v);
            if role == Role::Server {
                o.fail_if_no_peer_cert = Some(v == VerifyMode::Peer);
            }
        }
        (None, None) => {
            o.verify = Some(VerifyMode::Peer);
            if role == Role::Server {
                o.fail_if_no_peer_cert = Some(true);
            }
        }
        (None, Some(_)) => {
            o.verify.get_or_insert(match role {
                Role::Client => VerifyMode::Peer,
                Role::Server => VerifyMode::None,
            });
        }
    }
    // OTP reads the key from the certificate file when no key file is named.
    if o.keyfile.is_none() {
        o.keyfile = o.certfile.clone();
    }
    o
}

fn versions(o: &RoleOptions) -> Vec<&'static rustls::SupportedProtocolVersion> {
    let mut v = o
        .versions
        .clone()
        .unwrap_or_else(|| vec![TlsVersion::V1_3, TlsVersion::V1_2]);
    v.sort_unstable_by(|a, b| b.cmp(a));
    v.into_iter().map(TlsVersion::rustls).collect()
}

fn roots(o: &RoleOptions, role: Role) -> Result<Arc<RootCertStore>, TlsConfigError> {
    let Some(path) = &o.cacertfile else {
        return Err(TlsConfigError::Missing {
            role: role.as_str(),
            what: "verify_peer needs the CA certificates: give --tls-ca or cacertfile",
        });
    };
    let mut store = RootCertStore::empty();
    for cert in read_certs(path, "CA certificate")? {
        store.add(cert).map_err(|e| TlsConfigError::BadPem {
            what: "CA certificate",
            path: path.clone(),
            reason: format!("not a usable CA certificate: {e}"),
        })?;
    }
    Ok(Arc::new(store))
}

fn client_config(
    o: &RoleOptions,
    sni: &ServerNameIndication,
) -> Result<Arc<ClientConfig>, TlsConfigError> {
    let role = Role::Client;
    let rustls_error = |source| TlsConfigError::Rustls {
        role: role.as_str(),
        certfile: o.certfile.clone(),
        source,
    };
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions(o))
        .map_err(rustls_error)?;
    let builder = match o.verify {
        Some(VerifyMode::None) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyServerCert::new(provider))),
        _ => {
            let webpki = WebPkiServerVerifier::builder_with_provider(roots(o, role)?, provider)
                .build()
                .map_err(|e| TlsConfigError::BadPem {
                    what: "CA certificate",
                    path: o.cacertfile.clone().unwrap_or_default(),
                    reason: e.to_string(),
                })?;
            if *sni == ServerNameIndication::Disable {
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(ChainOnlyServerVerifier::new(
                        webpki,
                    )))
            } else {
                builder.with_webpki_verifier(webpki)
            }
        }
    };
    let mut config = match identity(o, role)? {
        Some((certs, key)) => builder
            .with_client_auth_cert(certs, key)
            .map_err(rustls_error)?,
        None => builder.with_no_client_auth(),
    };
    config.enable_sni = *sni != ServerNameIndication::Disable;
    if o.reuse_sessions == Some(false) {
        config.resumption = rustls::client::Resumption::disabled();
    }
    Ok(Arc::new(config))
}

fn server_config(o: &RoleOptions) -> Result<Arc<ServerConfig>, TlsConfigError> {
    let role = Role::Server;
    let rustls_error = |source| TlsConfigError::Rustls {
        role: role.as_str(),
        certfile: o.certfile.clone(),
        source,
    };
    let provider = provider();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions(o))
        .map_err(rustls_error)?;
    let builder = match o.verify {
        Some(VerifyMode::Peer) => {
            let mut verifier =
                WebPkiClientVerifier::builder_with_provider(roots(o, role)?, provider);
            if o.fail_if_no_peer_cert != Some(true) {
                verifier = verifier.allow_unauthenticated();
            }
            let verifier = verifier.build().map_err(|e| TlsConfigError::BadPem {
                what: "CA certificate",
                path: o.cacertfile.clone().unwrap_or_default(),
                reason: e.to_string(),
            })?;
            builder.with_client_cert_verifier(verifier)
        }
        _ => builder.with_no_client_auth(),
    };
    let Some((certs, key)) = identity(o, role)? else {
        return Err(TlsConfigError::Missing {
            role: role.as_str(),
            what: "no certificate to present: give --tls-cert/--tls-key or certfile/keyfile",
        });
    };
    let mut config = builder.with_single_cert(certs, key).map_err(rustls_error)?;
    if o.reuse_sessions == Some(false) {
        config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        config.send_tls13_tickets = 0;
    }
    Ok(Arc::new(config))
}

/// Our certificate chain and key, if the role has a certificate.
#[allow(clippy::type_complexity)]
fn identity(
    o: &RoleOptions,
    role: Role,
) -> Result<Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>, TlsConfigError> {
    let Some(certfile) = &o.certfile else {
        if o.keyfile.is_some() {
            return Err(TlsConfigError::Missing {
                role: role.as_str(),
                what: "a private key without a certificate: give --tls-cert or certfile too",
            });
        }
        return Ok(None);
    };
    let keyfile = o.keyfile.as_ref().unwrap_or(certfile);
    let certs = read_certs(certfile, "certificate")?;
    let key = read_key(keyfile)?;
    Ok(Some((certs, key)))
}

fn read_certs(
    path: &Path,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let bytes = std::fs::read(path).map_err(|source| TlsConfigError::Unreadable {
        what,
        path: path.to_path_buf(),
        source,
    })?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsConfigError::BadPem {
            what,
            path: path.to_path_buf(),
            reason: pem_reason(&e),
        })?;
    if certs.is_empty() {
        return Err(TlsConfigError::BadPem {
            what,
            path: path.to_path_buf(),
            reason: "no PEM CERTIFICATE block in it".into(),
        });
    }
    Ok(certs)
}

/// Reads a private key with the cookie's treatment: a regular file that only its owner may
/// read (as erl demands of `.erlang.cookie`), and nothing of it in any message.
pub fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsConfigError> {
    let unreadable = |source| TlsConfigError::Unreadable {
        what: "private key",
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(unreadable)?;
    if !meta.is_file() {
        return Err(TlsConfigError::BadPem {
            what: "private key",
            path: path.to_path_buf(),
            reason: "not a regular file".into(),
        });
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(TlsConfigError::KeyFileMode {
                path: path.to_path_buf(),
                mode,
            });
        }
    }
    // The key's PEM text lives no longer than it takes to decode it.
    let bytes = zeroize::Zeroizing::new(std::fs::read(path).map_err(unreadable)?);
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| TlsConfigError::BadPem {
        what: "private key",
        path: path.to_path_buf(),
        reason: pem_reason(&e),
    })
}

/// What is wrong with a PEM file, without any of its content.
fn pem_reason(e: &rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error as P;
    match e {
        P::NoItemsFound => "no PEM block of the right kind in it".into(),
        P::MissingSectionEnd { .. } => "a PEM block has no END line".into(),
        P::IllegalSectionStart { .. } => "a malformed BEGIN line".into(),
        P::Base64Decode(_) => "a PEM block is not valid base64".into(),
        _ => "not a PEM file beamlink can read".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    struct Pki {
        dir: PathBuf,
    }

    impl Drop for Pki {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn pki(tag: &str) -> Pki {
        let dir = std::env::temp_dir().join(format!("beamlink-tls-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = params.self_signed(&ca_key).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
        let issuer = rcgen::Issuer::new(
            rcgen::CertificateParams::new(Vec::<String>::new()).unwrap(),
            &ca_key,
        );
        let cert = params.signed_by(&key, &issuer).unwrap();
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(dir.join("node.pem"), cert.pem()).unwrap();
        std::fs::write(dir.join("node.key"), key.serialize_pem()).unwrap();
        std::fs::set_permissions(dir.join("node.key"), std::fs::Permissions::from_mode(0o600))
            .unwrap();
        Pki { dir }
    }

    fn pem_sources(p: &Pki) -> TlsSources {
        TlsSources {
            cert: Some(p.dir.join("node.pem")),
            key: Some(p.dir.join("node.key")),
            ca: Some(p.dir.join("ca.pem")),
            ..TlsSources::default()
        }
    }

    #[test]
    fn plain_unless_something_is_given() {
        assert!(TlsConfig::load(&TlsSources::default()).unwrap().is_none());
        let only_verify = TlsSources {
            verify: Some(VerifyMode::None),
            ..TlsSources::default()
        };
        assert!(matches!(
            TlsConfig::load(&only_verify),
            Err(TlsConfigError::VerifyWithoutTls)
        ));
    }

    #[test]
    fn pem_flags_give_mutual_tls_in_both_roles() {
        let p = pki("pem");
        let c = TlsConfig::load(&pem_sources(&p)).unwrap().unwrap();
        assert!(c.server().is_ok());
        assert!(c.insecure_roles().is_empty());
        assert!(c.client().client_auth_cert_resolver.has_certs());
        assert_eq!(c.server_name_indication(), &ServerNameIndication::HostPart);
    }

    #[test]
    fn the_key_gets_the_cookies_treatment() {
        let p = pki("key");
        let key = p.dir.join("node.key");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = TlsConfig::load(&pem_sources(&p)).unwrap_err();
        assert!(
            matches!(e, TlsConfigError::KeyFileMode { mode: 0o644, .. }),
            "{e}"
        );
        let text = e.to_string();
        assert!(
            text.contains("chmod 600") && text.contains("0400"),
            "{text}"
        );
        assert!(!text.contains("PRIVATE KEY"), "{text}");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o400)).unwrap();
        assert!(TlsConfig::load(&pem_sources(&p)).is_ok());
        // A key that is not a key: the error names the file, never its content.
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n").unwrap();
        let e = TlsConfig::load(&pem_sources(&p)).unwrap_err();
        assert!(matches!(e, TlsConfigError::BadPem { .. }), "{e}");
        assert!(!e.to_string().contains("c2VjcmV0"), "{e}");
    }

    #[test]
    fn flags_win_over_the_option_file() {
        let p = pki("merge");
        let optfile = p.dir.join("ssl_dist.conf");
        std::fs::write(
            &optfile,
            r#"[{server, [{certfile, "/nonexistent/s.pem"}, {verify, verify_none}]},
                {client, [{certfile, "/nonexistent/c.pem"}, {verify, verify_none},
                          {server_name_indication, disable}]}]."#,
        )
        .unwrap();
        let only_file = TlsSources {
            optfile: Some(optfile.clone()),
            ..TlsSources::default()
        };
        let e = TlsConfig::load(&only_file).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/"), "{e}");
        let both = TlsSources {
            optfile: Some(optfile),
            ..pem_sources(&p)
        };
        let c = TlsConfig::load(&both).unwrap().unwrap();
        assert!(c.server().is_ok());
        assert_eq!(c.insecure_roles(), &[Role::Server, Role::Client]);
        assert_eq!(c.server_name_indication(), &ServerNameIndication::Disable);
        let verify_flag = TlsSources {
            verify: Some(VerifyMode::Peer),
            ..both
        };
        let c = TlsConfig::load(&verify_flag).unwrap().unwrap();
        assert!(c.insecure_roles().is_empty());
    }

    #[test]
    fn option_file_defaults_follow_otp() {
        let p = pki("defaults");
        let optfile = p.dir.join("ssl_dist.conf");
        let d = p.dir.display();
        // The key comes from the certificate file when keyfile is absent, as in OTP.
        let combined = p.dir.join("combined.pem");
        let mut both = std::fs::read(p.dir.join("node.pem")).unwrap();
        both.extend(std::fs::read(p.dir.join("node.key")).unwrap());
        std::fs::write(&combined, both).unwrap();
        std::fs::set_permissions(&combined, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(
            &optfile,
            format!(
                r#"[{{server, [{{certfile, "{d}/combined.pem"}}]}},
                    {{client, [{{cacertfile, "{d}/ca.pem"}}]}}]."#
            ),
        )
        .unwrap();
        let c = TlsConfig::load(&TlsSources {
            optfile: Some(optfile.clone()),
            ..TlsSources::default()
        })
        .unwrap()
        .unwrap();
        assert!(c.server().is_ok());
        assert_eq!(
            c.insecure_roles(),
            &[Role::Server],
            "server: verify_none by default"
        );
        assert!(!c.client().client_auth_cert_resolver.has_certs());
        // A client without a CA cannot verify the server.
        std::fs::write(&optfile, "[{client, [{verify, verify_peer}]}].").unwrap();
        let e = TlsConfig::load(&TlsSources {
            optfile: Some(optfile),
            ..TlsSources::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("cacertfile"), "{e}");
    }

    #[test]
    fn a_dial_only_setup_has_no_server_role() {
        let p = pki("client");
        let sources = TlsSources {
            ca: Some(p.dir.join("ca.pem")),
            ..TlsSources::default()
        };
        let c = TlsConfig::load(&sources).unwrap().unwrap();
        let e = c.server().unwrap_err();
        assert!(e.to_string().contains("--tls-cert"), "{e}");
    }
}
