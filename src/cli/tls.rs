//! The TLS distribution flags (`contract.md`, "Secure and EPMD-less wiring"): read, checked
//! and turned into a [`TlsConfig`] before anything joins the cluster.

use super::exit;
use crate::tls::{Role, TlsConfig, TlsSources, VerifyMode};
use clap::{Args, ValueEnum};
use std::path::PathBuf;

/// `--tls-verify`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum VerifyArg {
    /// The peer's certificate must chain to the CA, in both roles.
    Peer,
    /// Check nothing (logs a warning at start).
    None,
}

/// TLS distribution settings shared by every subcommand that joins a cluster.
#[derive(Args, Debug, Clone, Default)]
pub(crate) struct TlsOpts {
    /// TLS distribution from OTP's ssl_dist_optfile ([{server, Opts}, {client, Opts}].), the
    /// file the BEAM nodes use; an option beamlink does not support is refused by name.
    #[arg(long, env = "BEAMLINK_TLS_OPTFILE", value_name = "PATH")]
    pub tls_optfile: Option<PathBuf>,
    /// Our certificate chain (PEM); wins over the option file's certfile.
    #[arg(long, env = "BEAMLINK_TLS_CERT", value_name = "PATH")]
    pub tls_cert: Option<PathBuf>,
    /// Our private key (PEM, owner-only permissions); wins over the option file's keyfile.
    #[arg(long, env = "BEAMLINK_TLS_KEY", value_name = "PATH")]
    pub tls_key: Option<PathBuf>,
    /// The CA certificates peers' certificates must chain to (PEM); wins over cacertfile.
    #[arg(long, env = "BEAMLINK_TLS_CA", value_name = "PATH")]
    pub tls_ca: Option<PathBuf>,
    /// peer (default): the peer must present a certificate that chains to the CA, in both
    /// roles; none: check nothing. Wins over the option file's verify.
    #[arg(
        long,
        env = "BEAMLINK_TLS_VERIFY",
        value_enum,
        value_name = "peer|none"
    )]
    pub tls_verify: Option<VerifyArg>,
}

impl TlsOpts {
    fn sources(&self) -> TlsSources {
        TlsSources {
            optfile: self.tls_optfile.clone(),
            cert: self.tls_cert.clone(),
            key: self.tls_key.clone(),
            ca: self.tls_ca.clone(),
            verify: self.tls_verify.map(|v| match v {
                VerifyArg::Peer => VerifyMode::Peer,
                VerifyArg::None => VerifyMode::None,
            }),
        }
    }
}

/// Loads the TLS settings (`None`: plain TCP distribution), logging the one warning
/// `verify none` earns. On error, prints it and gives exit code 78.
pub(crate) fn load(opts: &TlsOpts) -> Result<Option<TlsConfig>, u8> {
    let config = TlsConfig::load(&opts.sources()).map_err(|e| {
        eprintln!("beamlink: {e}");
        exit::CONFIG
    })?;
    if let Some(c) = &config
        && !c.insecure_roles().is_empty()
    {
        let roles: Vec<&str> = c
            .insecure_roles()
            .iter()
            .map(|r| Role::as_str(*r))
            .collect();
        tracing::warn!(
            "TLS peer verification is off ({}): any certificate is accepted",
            roles.join(" and ")
        );
    }
    Ok(config)
}
