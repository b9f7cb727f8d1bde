//! Settings shared by the subcommands: the cookie (erl's rules, `lib/kernel/src/auth.erl`),
//! our node name and the address it carries.

use crate::proto::digest::Cookie;
use crate::proto::node_name::{NodeName, NodeNameError};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};

/// Why the configuration is unusable (exit code 78).
#[derive(Debug)]
#[non_exhaustive]
pub enum ConfigError {
    /// The cookie file cannot be read.
    CookieFileUnreadable {
        /// Its path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
        /// Our user id when the file is on a read-only mount (a Docker or Kubernetes
        /// secret), where only the secret's definition can change its owner.
        read_only_mount_uid: Option<u32>,
    },
    /// The cookie file is readable by group or others.
    CookieFileMode {
        /// Its path.
        path: PathBuf,
        /// Its mode bits.
        mode: u32,
        /// Our user id when the file is on a read-only mount (a Docker or Kubernetes
        /// secret), where chmod cannot help.
        read_only_mount_uid: Option<u32>,
    },
    /// The cookie file is not a regular file.
    CookieFileNotRegular {
        /// Its path.
        path: PathBuf,
    },
    /// The cookie has characters erl refuses.
    BadCookieCharacters {
        /// Where it came from (a variable name or a path).
        source: String,
    },
    /// The cookie is empty.
    EmptyCookie {
        /// Where it came from.
        source: String,
    },
    /// No cookie anywhere.
    NoCookie,
    /// The node name is not usable.
    BadName {
        /// The text given.
        name: String,
        /// Why.
        reason: NodeNameError,
    },
    /// `RELEASE_DISTRIBUTION` asks for something other than long names.
    Distribution {
        /// Its value.
        value: String,
    },
    /// No address to put in our node name.
    NoAddress,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::CookieFileUnreadable {
                path,
                source,
                read_only_mount_uid,
            } => {
                write!(
                    f,
                    "cannot read the cookie file {}: {source}",
                    path.display()
                )?;
                match read_only_mount_uid {
                    Some(uid) if source.kind() == std::io::ErrorKind::PermissionDenied => {
                        write!(
                            f,
                            " (it is on a read-only mount, as a Docker secret is: give the \
                             secret uid: \"{uid}\" and mode: 0400 in the stack file, or \
                             runAsUser {uid} and defaultMode 0400 in Kubernetes)"
                        )
                    }
                    _ => Ok(()),
                }
            }
            ConfigError::CookieFileMode {
                path,
                mode,
                read_only_mount_uid: Some(uid),
            } => write!(
                f,
                "cookie file {} must be accessible by owner only (mode is {mode:o}) and is \
                 on a read-only mount, as a Docker secret is, so chmod cannot change it: \
                 give the secret mode: 0400 and uid: \"{uid}\" (the user beamlink runs as) \
                 in the stack file (Kubernetes: defaultMode 0400 and runAsUser {uid})",
                path.display()
            ),
            ConfigError::CookieFileMode {
                path,
                mode,
                read_only_mount_uid: None,
            } => write!(
                f,
                "cookie file {} must be accessible by owner only (mode is {mode:o}; \
                 run chmod 400 {})",
                path.display(),
                path.display()
            ),
            ConfigError::CookieFileNotRegular { path } => {
                write!(f, "cookie file {} is not a regular file", path.display())
            }
            ConfigError::BadCookieCharacters { source } => write!(
                f,
                "the cookie from {source} has bad characters (only printable ASCII is allowed)"
            ),
            ConfigError::EmptyCookie { source } => write!(f, "the cookie from {source} is empty"),
            ConfigError::NoCookie => f.write_str(
                "no cookie: set BEAMLINK_COOKIE or RELEASE_COOKIE, pass --cookie-file, \
                 or create ~/.erlang.cookie",
            ),
            ConfigError::BadName { name, reason } => {
                write!(f, "node name {name:?} is not usable: {reason}")
            }
            ConfigError::Distribution { value } => write!(
                f,
                "RELEASE_DISTRIBUTION={value}: beamlink needs long names; \
                 use RELEASE_DISTRIBUTION=name and RELEASE_NODE=<app>@<ip>"
            ),
            ConfigError::NoAddress => f.write_str(
                "no non-loopback IPv4 or global IPv6 address found for our node name; \
                 pass --name NAME@IP",
            ),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::CookieFileUnreadable { source, .. } => Some(source),
            ConfigError::BadName { reason, .. } => Some(reason),
            _ => None,
        }
    }
}

/// Our user id when `path` is on a read-only mount (`statvfs` says `ST_RDONLY`), as Docker
/// and Kubernetes mount secrets; `None` otherwise or when that cannot be told.
fn read_only_mount_uid(path: &Path) -> Option<u32> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs writes only into `stat`, a plain struct we own; the path is a valid
    // NUL-terminated string for the duration of the call.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) };
    // SAFETY: geteuid cannot fail and has no preconditions.
    (rc == 0 && stat.f_flag & libc::ST_RDONLY != 0).then(|| unsafe { libc::geteuid() })
}

/// Cleans a cookie the way auth.erl does: trailing spaces and line ends dropped, then only
/// printable ASCII allowed.
fn clean_cookie(raw: &[u8], source: &str) -> Result<Cookie, ConfigError> {
    let end = raw
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\r' | b'\n'))
        .map_or(0, |i| i + 1);
    let text = &raw[..end];
    if text.is_empty() {
        return Err(ConfigError::EmptyCookie {
            source: source.to_string(),
        });
    }
    if !text.iter().all(|b| (0x20..0x7f).contains(b)) {
        return Err(ConfigError::BadCookieCharacters {
            source: source.to_string(),
        });
    }
    Ok(Cookie::new(text.to_vec()))
}

/// Reads a cookie file with erl's checks: a regular file, no group or other permission
/// bits, printable ASCII.
pub fn read_cookie_file(path: &Path) -> Result<Cookie, ConfigError> {
    let meta = std::fs::metadata(path).map_err(|source| ConfigError::CookieFileUnreadable {
        path: path.to_path_buf(),
        source,
        read_only_mount_uid: None,
    })?;
    if !meta.is_file() {
        return Err(ConfigError::CookieFileNotRegular {
            path: path.to_path_buf(),
        });
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(ConfigError::CookieFileMode {
                path: path.to_path_buf(),
                mode,
                read_only_mount_uid: read_only_mount_uid(path),
            });
        }
    }
    let raw = std::fs::read(path).map_err(|source| ConfigError::CookieFileUnreadable {
        read_only_mount_uid: read_only_mount_uid(path),
        path: path.to_path_buf(),
        source,
    })?;
    clean_cookie(&raw, &path.display().to_string())
}

/// Finds the cookie: `--cookie-file`, then `BEAMLINK_COOKIE`, then `RELEASE_COOKIE`, then
/// `~/.erlang.cookie`, then `$XDG_CONFIG_HOME/erlang/.erlang.cookie` (erl's order for the
/// last two). `env` is the environment lookup (a parameter so tests need no process env).
#[cfg(test)]
pub fn load_cookie(
    cookie_file: Option<&Path>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Cookie, ConfigError> {
    load_cookie_with_source(cookie_file, env).map(|(cookie, _)| cookie)
}

/// The cookie (`--cookie-file`, then `BEAMLINK_COOKIE`, then `RELEASE_COOKIE`, then erl's
/// files), and where it came from (a variable name or a path, never
/// the value), for messages such as the doctor's cookie advice.
pub fn load_cookie_with_source(
    cookie_file: Option<&Path>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<(Cookie, String), ConfigError> {
    if let Some(path) = cookie_file {
        return read_cookie_file(path).map(|c| (c, path.display().to_string()));
    }
    for var in ["BEAMLINK_COOKIE", "RELEASE_COOKIE"] {
        if let Some(value) = env(var) {
            return clean_cookie(value.as_bytes(), var).map(|c| (c, var.to_string()));
        }
    }
    let home = env("HOME").map(PathBuf::from);
    let mut candidates = Vec::new();
    if let Some(h) = &home {
        candidates.push(h.join(".erlang.cookie"));
    }
    let xdg = env("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| home.map(|h| h.join(".config")));
    if let Some(x) = xdg {
        candidates.push(x.join("erlang").join(".erlang.cookie"));
    }
    for path in candidates {
        if path.exists() {
            return read_cookie_file(&path).map(|c| (c, path.display().to_string()));
        }
    }
    Err(ConfigError::NoCookie)
}

/// Checks `RELEASE_DISTRIBUTION`: only `name` (long names) works with beamlink.
pub fn check_distribution(value: Option<&str>) -> Result<(), ConfigError> {
    match value {
        None | Some("name") | Some("") => Ok(()),
        Some(other) => Err(ConfigError::Distribution {
            value: other.to_string(),
        }),
    }
}

/// Our address as seen by `toward`: the source address the routing table picks (no packet
/// is sent), or, when there is no peer to go by, the first non-loopback IPv4 address, else
/// (a host with IPv6 addresses only) the first IPv6 address that is neither loopback nor
/// link-local (a link-local address needs a zone, which a node name cannot carry).
pub fn local_address(toward: Option<IpAddr>) -> Result<IpAddr, ConfigError> {
    if let Some(peer) = toward {
        if peer.is_loopback() {
            return Ok(peer);
        }
        let bind: SocketAddr = if peer.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        if let Ok(sock) = UdpSocket::bind(bind)
            && sock.connect((peer, 9)).is_ok()
            && let Ok(local) = sock.local_addr()
        {
            return Ok(local.ip());
        }
    }
    let addrs = if_addrs::get_if_addrs().map_err(|_| ConfigError::NoAddress)?;
    let usable = || addrs.iter().filter(|i| !i.is_loopback()).map(|i| i.ip());
    usable()
        .find(|ip| ip.is_ipv4())
        .or_else(|| usable().find(|ip| matches!(ip, IpAddr::V6(v6) if !v6.is_unicast_link_local())))
        .ok_or(ConfigError::NoAddress)
}

/// Why a `--listen` value is not `[ADDR:]PORT`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadListen(pub String);

impl fmt::Display for BadListen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not [ADDR:]PORT (e.g. 9100, 10.0.1.9:9100, [::]:9100, [fd00::2]:9100)",
            self.0
        )
    }
}

impl std::error::Error for BadListen {}

/// Parses `--listen [ADDR:]PORT`. A bare port is `[::]:PORT`, every IPv4 and IPv6 address
/// (see [`crate::transport::listener::bind`]); an IPv6 address is written in brackets.
pub fn parse_listen(text: &str) -> Result<SocketAddr, BadListen> {
    if let Ok(port) = text.parse::<u16>() {
        return Ok(SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, port)));
    }
    text.parse::<SocketAddr>()
        .map_err(|_| BadListen(text.to_string()))
}

/// Our node name: `name` may be `alive@host` or just `alive`, completed with the address
/// that routes toward `toward`.
pub fn node_name(
    name: &str,
    toward: Option<IpAddr>,
) -> Result<(NodeName, Option<String>), ConfigError> {
    let bad = |reason| ConfigError::BadName {
        name: name.to_string(),
        reason,
    };
    if name.contains('@') {
        return NodeName::parse_long(name).map(|n| (n, None)).map_err(bad);
    }
    let ip = local_address(toward)?;
    let why = match toward {
        Some(peer) => format!("the address that routes to {peer}"),
        None if ip.is_ipv6() => "the first global IPv6 address (no IPv4 address here)".into(),
        None => "the first non-loopback IPv4 address".to_string(),
    };
    NodeName::from_parts(name, &ip.to_string())
        .map(|n| (n, Some(why)))
        .map_err(bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn cookie_files_follow_erls_rules() {
        let dir = std::env::temp_dir().join(format!("beamlink-cookie-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("c");
        std::fs::write(&f, "SECRETCOOKIE\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = load_cookie(Some(&f), no_env).unwrap_err();
        assert!(matches!(
            err,
            ConfigError::CookieFileMode { mode: 0o644, .. }
        ));
        assert!(err.to_string().contains("owner only"));
        assert!(!err.to_string().contains("SECRETCOOKIE"));
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o400)).unwrap();
        let c = load_cookie(Some(&f), no_env).unwrap();
        assert_eq!(c.len(), "SECRETCOOKIE".len());
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&f, "bad\x01cookie").unwrap();
        assert!(matches!(
            load_cookie(Some(&f), no_env),
            Err(ConfigError::BadCookieCharacters { .. })
        ));
        std::fs::write(&f, "\n").unwrap();
        assert!(matches!(
            load_cookie(Some(&f), no_env),
            Err(ConfigError::EmptyCookie { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn environment_order() {
        let env = |k: &str| match k {
            "BEAMLINK_COOKIE" => Some("a".to_string()),
            "RELEASE_COOKIE" => Some("bb".to_string()),
            _ => None,
        };
        assert_eq!(load_cookie(None, env).unwrap().len(), 1);
        let env = |k: &str| (k == "RELEASE_COOKIE").then(|| "bb".to_string());
        assert_eq!(load_cookie(None, env).unwrap().len(), 2);
        let env = |k: &str| (k == "HOME").then(|| "/nonexistent-home".to_string());
        assert!(matches!(load_cookie(None, env), Err(ConfigError::NoCookie)));
    }

    #[test]
    fn names_are_completed_with_the_routed_address() {
        let (n, why) = node_name("beamlink", Some("127.0.0.1".parse().unwrap())).unwrap();
        assert_eq!(n.as_str(), "beamlink@127.0.0.1");
        assert!(why.unwrap().contains("127.0.0.1"));
        assert!(node_name("x@host", None).is_err());
        assert!(check_distribution(Some("sname")).is_err());
        assert!(check_distribution(Some("name")).is_ok());
        let (v6, _) = node_name("beamlink", Some("::1".parse().unwrap())).unwrap();
        assert_eq!(v6.as_str(), "beamlink@::1");
    }

    #[test]
    fn listen_takes_an_address_or_a_bare_port() {
        assert_eq!(parse_listen("9100"), Ok("[::]:9100".parse().unwrap()));
        assert_eq!(
            parse_listen("10.0.1.9:9100"),
            Ok("10.0.1.9:9100".parse().unwrap())
        );
        assert_eq!(parse_listen("[::]:9100"), Ok("[::]:9100".parse().unwrap()));
        assert_eq!(
            parse_listen("[fd00::2]:9100"),
            Ok("[fd00::2]:9100".parse().unwrap())
        );
        for bad in ["fd00::2:9100", "10.0.1.9", "host:9100", "65536", ""] {
            assert!(parse_listen(bad).is_err(), "{bad}");
        }
    }
}
