//! OTP's `-ssl_dist_optfile` (`lib/ssl/src/ssl_dist_sup.erl` reads it with `file:consult/1`;
//! `inet_tls_dist:get_ssl_options/1` hands each role's list to `ssl`): the term
//! `[{server, Opts}, {client, Opts}].`, read into [`RoleOptions`] per role.
//!
//! Only options beamlink honours exactly are accepted; any other is refused by name, so an
//! option the cluster relies on is never dropped silently.

use super::terms::{self, Term};
use super::{TlsConfigError, TlsVersion};
use std::path::{Path, PathBuf};

/// Whether a role checks the peer's certificate (`{verify, verify_peer | verify_none}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VerifyMode {
    /// The peer's certificate must chain to the CA.
    Peer,
    /// No check at all.
    None,
}

/// The client's `server_name_indication`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerNameIndication {
    /// Not set: the host part of the peer's node name, as `inet_tls_dist:do_setup/7` sets it.
    HostPart,
    /// `disable`: no SNI, and the certificate's name is not checked (its chain still is).
    Disable,
    /// A fixed name every peer's certificate must carry, sent as SNI.
    Fixed(String),
}

/// The options of one role (`server` or `client`), as the file or the flags give them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoleOptions {
    /// `certfile`: our certificate chain (PEM).
    pub certfile: Option<PathBuf>,
    /// `keyfile`: our private key (PEM); OTP reads it from `certfile` when absent.
    pub keyfile: Option<PathBuf>,
    /// `cacertfile`: the CA certificates the peer's chain must end in.
    pub cacertfile: Option<PathBuf>,
    /// `verify`.
    pub verify: Option<VerifyMode>,
    /// `fail_if_no_peer_cert` (server only).
    pub fail_if_no_peer_cert: Option<bool>,
    /// `versions`.
    pub versions: Option<Vec<TlsVersion>>,
    /// `server_name_indication` (client only).
    pub server_name_indication: Option<ServerNameIndication>,
    /// `secure_renegotiate`: TLS 1.2 only; rustls never renegotiates and always sends the
    /// renegotiation indication, so either value is honoured as it stands.
    pub secure_renegotiate: Option<bool>,
    /// `reuse_sessions`: TLS 1.2 session reuse (client side: resumption on or off).
    pub reuse_sessions: Option<bool>,
}

/// Which role an option list belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Accepting connections.
    Server,
    /// Dialling.
    Client,
}

impl Role {
    /// `server` or `client`, as the file names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Server => "server",
            Role::Client => "client",
        }
    }
}

/// The two roles of an option file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OptFile {
    /// `{server, Opts}`.
    pub server: RoleOptions,
    /// `{client, Opts}`.
    pub client: RoleOptions,
}

/// Reads and checks the option file at `path`.
pub fn read(path: &Path) -> Result<OptFile, TlsConfigError> {
    let unreadable = |source| TlsConfigError::Unreadable {
        what: "option file",
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(unreadable)?;
    if meta.len() > terms::MAX_FILE_BYTES as u64 {
        return Err(TlsConfigError::OptfileTooLarge {
            path: path.to_path_buf(),
            max: terms::MAX_FILE_BYTES,
        });
    }
    let text = std::fs::read_to_string(path).map_err(unreadable)?;
    parse(&text, path)
}

/// Checks the text of an option file (`path` only names it in errors).
pub fn parse(text: &str, path: &Path) -> Result<OptFile, TlsConfigError> {
    let syntax = |message: String, line| TlsConfigError::OptfileSyntax {
        path: path.to_path_buf(),
        line,
        message,
    };
    let term = terms::parse(text).map_err(|e| syntax(e.message, e.line))?;
    let Term::List(entries) = term else {
        return Err(syntax(
            format!("expected [{{server, Opts}}, {{client, Opts}}], found {term}"),
            1,
        ));
    };
    let mut file = OptFile::default();
    for entry in entries {
        let role = match &entry {
            Term::Tuple(pair) if pair.len() == 2 => match (&pair[0], &pair[1]) {
                (Term::Atom(r), Term::List(opts)) if r == "server" => {
                    file.server = role_options(Role::Server, opts, path)?;
                    continue;
                }
                (Term::Atom(r), Term::List(opts)) if r == "client" => {
                    file.client = role_options(Role::Client, opts, path)?;
                    continue;
                }
                _ => entry.to_string(),
            },
            _ => entry.to_string(),
        };
        return Err(syntax(
            format!("expected {{server, [...]}} or {{client, [...]}}, found {role}"),
            1,
        ));
    }
    Ok(file)
}

fn role_options(role: Role, opts: &[Term], path: &Path) -> Result<RoleOptions, TlsConfigError> {
    let mut o = RoleOptions::default();
    for opt in opts {
        let (key, value) = match opt {
            Term::Tuple(kv) if kv.len() == 2 => match &kv[0] {
                Term::Atom(k) => (k.as_str(), &kv[1]),
                _ => return Err(bad(path, role, opt, "expected {Key, Value}")),
            },
            _ => return Err(bad(path, role, opt, "expected {Key, Value}")),
        };
        match (key, role) {
            ("certfile", _) => o.certfile = Some(file_name(path, role, opt, value)?),
            ("keyfile", _) => o.keyfile = Some(file_name(path, role, opt, value)?),
            ("cacertfile", _) => o.cacertfile = Some(file_name(path, role, opt, value)?),
            ("verify", _) => {
                o.verify = Some(match value {
                    Term::Atom(a) if a == "verify_peer" => VerifyMode::Peer,
                    Term::Atom(a) if a == "verify_none" => VerifyMode::None,
                    _ => return Err(bad(path, role, opt, "expected verify_peer or verify_none")),
                })
            }
            ("fail_if_no_peer_cert", Role::Server) => {
                o.fail_if_no_peer_cert = Some(boolean(path, role, opt, value)?)
            }
            ("versions", _) => o.versions = Some(versions(path, role, opt, value)?),
            ("server_name_indication", Role::Client) => {
                o.server_name_indication = Some(match value {
                    Term::Atom(a) if a == "disable" => ServerNameIndication::Disable,
                    Term::Str(name) if !name.is_empty() => {
                        ServerNameIndication::Fixed(name.clone())
                    }
                    _ => return Err(bad(path, role, opt, "expected a host name or disable")),
                })
            }
            ("secure_renegotiate", _) => {
                o.secure_renegotiate = Some(boolean(path, role, opt, value)?)
            }
            ("reuse_sessions", _) => o.reuse_sessions = Some(boolean(path, role, opt, value)?),
            ("fail_if_no_peer_cert", Role::Client) | ("server_name_indication", Role::Server) => {
                return Err(TlsConfigError::WrongRole {
                    path: path.to_path_buf(),
                    role: role.as_str(),
                    option: key.to_string(),
                });
            }
            _ => {
                return Err(TlsConfigError::UnsupportedOption {
                    path: path.to_path_buf(),
                    role: role.as_str(),
                    option: key.to_string(),
                });
            }
        }
    }
    check_tls13_only(&o, role, path)?;
    Ok(o)
}

/// OTP refuses `secure_renegotiate` and `reuse_sessions` when `versions` leaves out TLS 1.2
/// (`ssl` answers `{options, incompatible, [secure_renegotiate, {versions, ['tlsv1.3']}]}`
/// on OTP 27 and 29, `{options, dependency, ...}` on 25), and the distribution connection
/// then just fails. Refuse it here, saying so.
fn check_tls13_only(o: &RoleOptions, role: Role, path: &Path) -> Result<(), TlsConfigError> {
    let Some(versions) = &o.versions else {
        return Ok(());
    };
    if versions.contains(&TlsVersion::V1_2) {
        return Ok(());
    }
    for (name, set) in [
        ("secure_renegotiate", o.secure_renegotiate.is_some()),
        ("reuse_sessions", o.reuse_sessions.is_some()),
    ] {
        if set {
            return Err(TlsConfigError::Tls12OnlyOption {
                path: path.to_path_buf(),
                role: role.as_str(),
                option: name,
            });
        }
    }
    Ok(())
}

fn bad(path: &Path, role: Role, opt: &Term, expected: &str) -> TlsConfigError {
    TlsConfigError::BadOption {
        path: path.to_path_buf(),
        role: role.as_str(),
        option: opt.to_string(),
        expected: expected.to_string(),
    }
}

fn file_name(path: &Path, role: Role, opt: &Term, value: &Term) -> Result<PathBuf, TlsConfigError> {
    match value {
        // Relative names are left relative to the working directory, as `ssl` reads them.
        Term::Str(s) if !s.is_empty() => Ok(PathBuf::from(s)),
        _ => Err(bad(path, role, opt, "expected a file name string")),
    }
}

fn boolean(path: &Path, role: Role, opt: &Term, value: &Term) -> Result<bool, TlsConfigError> {
    match value {
        Term::Atom(a) if a == "true" => Ok(true),
        Term::Atom(a) if a == "false" => Ok(false),
        _ => Err(bad(path, role, opt, "expected true or false")),
    }
}

fn versions(
    path: &Path,
    role: Role,
    opt: &Term,
    value: &Term,
) -> Result<Vec<TlsVersion>, TlsConfigError> {
    let Term::List(items) = value else {
        return Err(bad(path, role, opt, "expected a list such as ['tlsv1.3']"));
    };
    let mut out = Vec::new();
    for item in items {
        let v = match item {
            Term::Atom(a) if a == "tlsv1.2" => TlsVersion::V1_2,
            Term::Atom(a) if a == "tlsv1.3" => TlsVersion::V1_3,
            _ => {
                return Err(bad(
                    path,
                    role,
                    opt,
                    "only 'tlsv1.2' and 'tlsv1.3' (beamlink speaks no older TLS)",
                ));
            }
        };
        if !out.contains(&v) {
            out.push(v);
        }
    }
    if out.is_empty() {
        return Err(bad(path, role, opt, "at least one version"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> &'static Path {
        Path::new("/etc/beamlink/ssl_dist.conf")
    }

    #[test]
    fn reads_a_cluster_option_file() {
        let text = r#"[{server, [{certfile, "/s/node.pem"}, {keyfile, "node.key"},
                        {cacertfile, "/s/ca.pem"}, {verify, verify_peer},
                        {fail_if_no_peer_cert, true}, {secure_renegotiate, true},
                        {versions, ['tlsv1.2', 'tlsv1.3']}]},
                      {client, [{certfile, "/s/node.pem"}, {verify, verify_peer},
                        {server_name_indication, disable}, {reuse_sessions, false}]}]."#;
        let f = parse(text, p()).unwrap();
        assert_eq!(f.server.certfile.as_deref(), Some(Path::new("/s/node.pem")));
        assert_eq!(
            f.server.keyfile.as_deref(),
            Some(Path::new("node.key")),
            "relative names stay relative to the working directory, as ssl reads them"
        );
        assert_eq!(f.server.verify, Some(VerifyMode::Peer));
        assert_eq!(f.server.fail_if_no_peer_cert, Some(true));
        assert_eq!(
            f.server.versions,
            Some(vec![TlsVersion::V1_2, TlsVersion::V1_3])
        );
        assert_eq!(
            f.client.server_name_indication,
            Some(ServerNameIndication::Disable)
        );
        assert_eq!(f.client.reuse_sessions, Some(false));
        assert_eq!(f.client.keyfile, None);
        let fixed = parse(
            r#"[{client, [{server_name_indication, "cluster.internal"}]}]."#,
            p(),
        )
        .unwrap();
        assert_eq!(
            fixed.client.server_name_indication,
            Some(ServerNameIndication::Fixed("cluster.internal".into()))
        );
        assert_eq!(fixed.server, RoleOptions::default());
    }

    #[test]
    fn unsupported_options_are_refused_by_name() {
        for (text, option) in [
            ("[{server, [{dhfile, \"/x\"}]}].", "dhfile"),
            ("[{client, [{ciphers, []}]}].", "ciphers"),
            ("[{client, [{password, \"pw\"}]}].", "password"),
            ("[{server, [{depth, 2}]}].", "depth"),
        ] {
            let e = parse(text, p()).unwrap_err();
            assert!(
                matches!(&e, TlsConfigError::UnsupportedOption { option: o, .. } if o == option),
                "{e}"
            );
            assert!(e.to_string().contains(option), "{e}");
            assert!(
                !e.to_string().contains("pw\""),
                "values are never echoed: {e}"
            );
        }
        let e = parse("[{client, [{fail_if_no_peer_cert, true}]}].", p()).unwrap_err();
        assert!(matches!(e, TlsConfigError::WrongRole { .. }), "{e}");
        let e = parse("[{server, [{versions, ['tlsv1.1']}]}].", p()).unwrap_err();
        assert!(e.to_string().contains("tlsv1.2"), "{e}");
        let e = parse("[{server, [{verify, maybe}]}].", p()).unwrap_err();
        assert!(e.to_string().contains("verify_peer"), "{e}");
        let e = parse("{server, []}.", p()).unwrap_err();
        assert!(matches!(e, TlsConfigError::OptfileSyntax { .. }), "{e}");
        let e = parse("[{server, [{verify, verify_peer}]}]", p()).unwrap_err();
        assert!(e.to_string().contains("full stop"), "{e}");
    }

    #[test]
    fn tls12_only_options_are_refused_with_tls13_only_as_otp_does() {
        for opt in ["secure_renegotiate", "reuse_sessions"] {
            let text = format!("[{{client, [{{versions, ['tlsv1.3']}}, {{{opt}, true}}]}}].");
            let e = parse(&text, p()).unwrap_err();
            assert!(
                matches!(e, TlsConfigError::Tls12OnlyOption { option, .. } if option == opt),
                "{e}"
            );
            let both =
                format!("[{{client, [{{versions, ['tlsv1.3', 'tlsv1.2']}}, {{{opt}, true}}]}}].");
            assert!(parse(&both, p()).is_ok());
            let unset = format!("[{{client, [{{{opt}, false}}]}}].");
            assert!(parse(&unset, p()).is_ok());
        }
    }
}
