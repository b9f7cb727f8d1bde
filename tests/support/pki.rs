//! The CA and certificates the TLS tests use, made with rcgen, and BEAM nodes started with
//! `-proto_dist inet_tls -ssl_dist_optfile FILE`. Node certificates carry 127.0.0.1 both as
//! an IP SAN (OTP 27, 29, beamlink) and as a DNS SAN (OTP 25 checks the host part of
//! `name@127.0.0.1` as a DNS name).

use super::{BeamNode, Epmd, Otp, unique_name};
use beamlink::tls::{TlsConfig, TlsSources};
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A CA and the certificates the tests use, in a directory the chroots of OTP 27/29 see.
pub struct Pki {
    /// Where the files are.
    pub dir: PathBuf,
    /// The cluster CA's key and parameters, to sign certificates for more addresses.
    cluster: Option<(rcgen::KeyPair, rcgen::CertificateParams)>,
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn ca(name: &str) -> (rcgen::Certificate, rcgen::KeyPair, rcgen::CertificateParams) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let cert = params.self_signed(&key).unwrap();
    (cert, key, params)
}

impl Pki {
    pub fn new() -> Pki {
        let dir = std::env::temp_dir().join(unique_name("beamlink_tls"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut pki = Pki { dir, cluster: None };
        let (cluster_ca, cluster_key, cluster_params) = ca("beamlink test CA");
        let (other_ca, other_key, other_params) = ca("some other CA");
        pki.write("ca.pem", &cluster_ca.pem(), 0o644);
        pki.write("other-ca.pem", &other_ca.pem(), 0o644);
        let cluster = rcgen::Issuer::new(cluster_params.clone(), &cluster_key);
        let other = rcgen::Issuer::new(other_params, &other_key);
        let localhost = IpAddr::V4(Ipv4Addr::LOCALHOST);
        pki.leaf("node", localhost, &cluster, None);
        pki.leaf("expired", localhost, &cluster, Some((2020, 2021)));
        pki.leaf("foreign", localhost, &other, None);
        drop(cluster);
        pki.cluster = Some((cluster_key, cluster_params));
        pki
    }

    /// A certificate of the cluster CA for `ip` (as IP SAN and DNS SAN, `node-<ip>.pem` and
    /// `.key`) and an option file naming it (`node-<ip>.conf`: mutual TLS, as
    /// [`Pki::beam_optfile`]), for the BEAM (`-ssl_dist_optfile`) and beamlink
    /// (`--tls-optfile`) alike. Returns the option file.
    pub fn node_optfile(&self, ip: IpAddr) -> PathBuf {
        let (key, params) = self.cluster.as_ref().expect("the cluster CA");
        let issuer = rcgen::Issuer::new(params.clone(), key);
        let name = format!("node-{ip}");
        self.leaf(&name, ip, &issuer, None);
        let d = self.dir.display();
        let common = format!(
            r#"{{certfile, "{d}/{name}.pem"}}, {{keyfile, "{d}/{name}.key"}}, {{cacertfile, "{d}/ca.pem"}}, {{verify, verify_peer}}"#
        );
        let file = format!("{name}.conf");
        self.write(
            &file,
            &format!(
                "[{{server, [{common}, {{fail_if_no_peer_cert, true}}]}},\n {{client, [{common}]}}].\n"
            ),
            0o644,
        );
        self.path(&file)
    }

    pub fn write(&self, file: &str, text: &str, mode: u32) {
        let path = self.dir.join(file);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    /// `<name>.pem` and `<name>.key`, for `ip` as an IP SAN and as a DNS SAN.
    /// `valid`: the years it is valid in (from 1 January to 1 January); rcgen's default
    /// (1975 to 4096) otherwise.
    fn leaf(
        &self,
        name: &str,
        ip: IpAddr,
        issuer: &rcgen::Issuer<'_, &rcgen::KeyPair>,
        valid: Option<(i32, i32)>,
    ) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.subject_alt_names = vec![
            rcgen::SanType::IpAddress(ip),
            rcgen::SanType::DnsName(ip.to_string().try_into().unwrap()),
        ];
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.extended_key_usages = vec![
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        ];
        if let Some((from, to)) = valid {
            params.not_before = rcgen::date_time_ymd(from, 1, 1);
            params.not_after = rcgen::date_time_ymd(to, 1, 1);
        }
        let cert = params.signed_by(&key, issuer).unwrap();
        self.write(&format!("{name}.pem"), &cert.pem(), 0o644);
        self.write(&format!("{name}.key"), &key.serialize_pem(), 0o600);
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// An `ssl_dist_optfile` for the BEAM: mutual TLS, `verify_peer` and
    /// `fail_if_no_peer_cert` on the server, `versions` when given.
    pub fn beam_optfile(&self, versions: Option<&str>) -> PathBuf {
        let d = self.dir.display();
        let versions = versions.map_or(String::new(), |v| format!(", {{versions, ['{v}']}}"));
        let common = format!(
            r#"{{certfile, "{d}/node.pem"}}, {{keyfile, "{d}/node.key"}}, {{cacertfile, "{d}/ca.pem"}}, {{verify, verify_peer}}{versions}"#
        );
        let text = format!(
            "[{{server, [{common}, {{fail_if_no_peer_cert, true}}]}},\n {{client, [{common}]}}].\n"
        );
        let file = format!("beam-{}.conf", versions.len());
        self.write(&file, &text, 0o644);
        self.path(&file)
    }

    /// beamlink's settings from PEM files.
    pub fn pem(&self, cert: Option<&str>, ca: &str) -> TlsConfig {
        let sources = TlsSources {
            cert: cert.map(|c| self.path(&format!("{c}.pem"))),
            key: cert.map(|c| self.path(&format!("{c}.key"))),
            ca: Some(self.path(ca)),
            ..TlsSources::default()
        };
        TlsConfig::load(&sources).unwrap().unwrap()
    }

    /// beamlink's settings from an option file.
    pub fn optfile(&self, file: &Path) -> TlsConfig {
        let sources = TlsSources {
            optfile: Some(file.to_path_buf()),
            ..TlsSources::default()
        };
        TlsConfig::load(&sources).unwrap().unwrap()
    }
}

/// A BEAM node running TLS distribution with `optfile`.
pub fn tls_beam(otp: Otp, epmd: &Epmd, optfile: &Path) -> BeamNode {
    BeamNode::builder(otp, epmd.port())
        .name(unique_name("tlsbeam"))
        .arg("-proto_dist")
        .arg("inet_tls")
        .arg("-ssl_dist_optfile")
        .arg(optfile.display().to_string())
        .start()
}
