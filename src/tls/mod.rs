//! TLS distribution, as OTP's `-proto_dist inet_tls` runs it (`lib/ssl/src/inet_tls_dist.erl`):
//! EPMD stays plain; TLS starts right after the TCP connect (`ssl:connect/4` in
//! `do_setup/7`, `ssl:handshake/3` in `accept_one/3`), and the version-6 handshake then runs
//! inside TLS with 4-byte lengths ([`crate::proto::handshake::Framing::Tls`]).
//!
//! * [`config`]: where the settings come from (PEM flags, OTP's option file) and the rustls
//!   client and server configurations built from them;
//! * [`optfile`] and `terms`: OTP's `ssl_dist_optfile` format;
//! * [`verify`]: which name a peer's certificate must carry, and the verifiers for
//!   `verify_none` and `server_name_indication, disable`;
//! * [`stream`]: the TLS handshake over a TCP stream, bounded by the setup time;
//! * [`error`]: why a TLS handshake failed, in words that name the fix.
//!
//! The crypto provider is aws-lc-rs: it has the hybrid post-quantum key exchange
//! X25519MLKEM768 that OTP 29 offers first, so an OTP 29 peer is answered without a
//! HelloRetryRequest (docs/tls.md has the measurements behind the choice).

pub mod config;
pub mod error;
pub mod optfile;
pub mod stream;
mod terms;
pub mod verify;

pub use config::{TlsConfig, TlsSources};
pub use error::TlsError;
pub use optfile::{Role, ServerNameIndication, VerifyMode};
pub use stream::{TlsSession, TlsStream};

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// A TLS protocol version beamlink speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum TlsVersion {
    /// TLS 1.2 (`'tlsv1.2'`).
    V1_2,
    /// TLS 1.3 (`'tlsv1.3'`).
    V1_3,
}

impl TlsVersion {
    fn rustls(self) -> &'static rustls::SupportedProtocolVersion {
        match self {
            TlsVersion::V1_2 => &rustls::version::TLS12,
            TlsVersion::V1_3 => &rustls::version::TLS13,
        }
    }
}

/// The crypto provider every TLS configuration uses.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Why the TLS settings are unusable (exit code 78). Never carries key material: files are
/// named by path only.
#[derive(Debug)]
#[non_exhaustive]
pub enum TlsConfigError {
    /// A file cannot be read.
    Unreadable {
        /// What the file is for.
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The option file is larger than any option file needs to be.
    OptfileTooLarge {
        /// Its path.
        path: PathBuf,
        /// The limit in bytes.
        max: usize,
    },
    /// The option file is not one Erlang term of the supported subset.
    OptfileSyntax {
        /// Its path.
        path: PathBuf,
        /// The line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// An option's value has the wrong form.
    BadOption {
        /// The option file.
        path: PathBuf,
        /// `server` or `client`.
        role: &'static str,
        /// The option as written.
        option: String,
        /// What is expected.
        expected: String,
    },
    /// An option beamlink does not support.
    UnsupportedOption {
        /// The option file.
        path: PathBuf,
        /// `server` or `client`.
        role: &'static str,
        /// The option's name.
        option: String,
    },
    /// An option of the other role (`fail_if_no_peer_cert` for a client,
    /// `server_name_indication` for a server).
    WrongRole {
        /// The option file.
        path: PathBuf,
        /// `server` or `client`.
        role: &'static str,
        /// The option's name.
        option: String,
    },
    /// `secure_renegotiate` or `reuse_sessions` with TLS 1.3 only, which OTP refuses.
    Tls12OnlyOption {
        /// The option file.
        path: PathBuf,
        /// `server` or `client`.
        role: &'static str,
        /// The option's name.
        option: &'static str,
    },
    /// The private key file is readable by group or others.
    KeyFileMode {
        /// Its path.
        path: PathBuf,
        /// Its mode bits.
        mode: u32,
    },
    /// A PEM file holds nothing usable of what it is for.
    BadPem {
        /// What was looked for: "certificate", "private key", "CA certificate".
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// What is wrong (never any of the file's content).
        reason: String,
    },
    /// A setting needs another that is missing.
    Missing {
        /// `server` or `client`.
        role: &'static str,
        /// What is missing and how to give it.
        what: &'static str,
    },
    /// `--tls-verify` without any TLS setting.
    VerifyWithoutTls,
    /// rustls refused the combination (e.g. a key that does not belong to the certificate).
    Rustls {
        /// `server` or `client`.
        role: &'static str,
        /// The certificate file involved, if any.
        certfile: Option<PathBuf>,
        /// rustls' reason.
        source: rustls::Error,
    },
}

impl fmt::Display for TlsConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use TlsConfigError as E;
        match self {
            E::Unreadable { what, path, source } => {
                write!(f, "cannot read the TLS {what} {}: {source}", path.display())
            }
            E::OptfileTooLarge { path, max } => write!(
                f,
                "TLS option file {} is larger than {max} bytes; is it the right file?",
                path.display()
            ),
            E::OptfileSyntax {
                path,
                line,
                message,
            } => write!(
                f,
                "TLS option file {} line {line}: {message} (expected the ssl_dist_optfile \
                 form [{{server, [...]}}, {{client, [...]}}].)",
                path.display()
            ),
            E::BadOption {
                path,
                role,
                option,
                expected,
            } => write!(
                f,
                "TLS option file {}, {role} options: {option}: {expected}",
                path.display()
            ),
            E::UnsupportedOption { path, role, option } => write!(
                f,
                "TLS option file {}, {role} options: {option} is not supported by beamlink \
                 (supported: certfile, keyfile, cacertfile, verify, fail_if_no_peer_cert, \
                 versions, server_name_indication, secure_renegotiate, reuse_sessions); \
                 remove it or use a copy of the file without it",
                path.display()
            ),
            E::WrongRole { path, role, option } => write!(
                f,
                "TLS option file {}: {option} belongs to the {} options, not {role}",
                path.display(),
                if *role == "server" {
                    "client"
                } else {
                    "server"
                }
            ),
            E::Tls12OnlyOption { path, role, option } => write!(
                f,
                "TLS option file {}, {role} options: {option} applies to TLS 1.2 only, and \
                 versions allows TLS 1.3 only; OTP refuses this pair (ssl: options \
                 incompatible) and its connections just fail: remove {option} or add \
                 'tlsv1.2' to versions",
                path.display()
            ),
            E::KeyFileMode { path, mode } => write!(
                f,
                "TLS private key file {} must be accessible by owner only (mode is {mode:o}; \
                 run chmod 600 {}, or mount it as a Swarm secret with mode: 0400)",
                path.display(),
                path.display()
            ),
            E::BadPem { what, path, reason } => {
                write!(f, "TLS {what} file {}: {reason}", path.display())
            }
            E::Missing { role, what } => write!(f, "TLS {role} role: {what}"),
            E::VerifyWithoutTls => f.write_str(
                "--tls-verify needs TLS: give --tls-optfile or --tls-cert/--tls-key/--tls-ca",
            ),
            E::Rustls {
                role,
                certfile,
                source,
            } => match (source, certfile) {
                (rustls::Error::InconsistentKeys(_), Some(cert)) => write!(
                    f,
                    "TLS {role} role: the private key does not belong to the certificate in {}",
                    cert.display()
                ),
                _ => write!(f, "TLS {role} role: {source}"),
            },
        }
    }
}

impl std::error::Error for TlsConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TlsConfigError::Unreadable { source, .. } => Some(source),
            TlsConfigError::Rustls { source, .. } => Some(source),
            _ => None,
        }
    }
}
