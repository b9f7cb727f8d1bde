//! Node names (`alive@host`) and the rules the BEAM applies to them
//! (`lib/kernel/src/inet_tcp_dist.erl` `splitnode/3`, `dist_util.erl` `is_name_ok/2`).

use super::term::Atom;
use std::fmt;
use std::net::IpAddr;

/// A full node name, `alive@host`.
///
/// Equal, hashed and ordered as its atom (the position of the `@` follows from it), so a map
/// keyed by node names can be searched with the atom of a pid.
#[derive(Clone)]
pub struct NodeName {
    atom: Atom,
    at: usize,
}

impl PartialEq for NodeName {
    fn eq(&self, other: &NodeName) -> bool {
        self.atom == other.atom
    }
}

impl Eq for NodeName {}

impl std::hash::Hash for NodeName {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.atom.hash(state)
    }
}

impl PartialOrd for NodeName {
    fn partial_cmp(&self, other: &NodeName) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for NodeName {
    fn cmp(&self, other: &NodeName) -> std::cmp::Ordering {
        self.atom.cmp(&other.atom)
    }
}

impl std::borrow::Borrow<Atom> for NodeName {
    fn borrow(&self) -> &Atom {
        &self.atom
    }
}

/// Why a text is not a usable node name.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NodeNameError {
    /// No `@` in the name.
    NoAt,
    /// More than one `@`, as in `a@b@c`.
    SeveralAts,
    /// Nothing before the `@`.
    EmptyAlive,
    /// Nothing after the `@`.
    EmptyHost,
    /// Longer than an atom may be (255 characters).
    TooLong {
        /// Length in characters.
        chars: usize,
    },
    /// A character the alive part may not hold (we allow letters, digits, `_`, `-`, `.`).
    BadAliveChar {
        /// The offending character.
        ch: char,
    },
    /// The host part holds a character no host name has (whitespace, control, non-ASCII).
    BadHostChar {
        /// The offending character.
        ch: char,
    },
    /// The host has no dot and is not an IP address: a short name, refused where long names
    /// are needed.
    ShortHost {
        /// The host part.
        host: String,
    },
}

impl fmt::Display for NodeNameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeNameError::NoAt => f.write_str("no '@' in the node name"),
            NodeNameError::SeveralAts => f.write_str("more than one '@' in the node name"),
            NodeNameError::EmptyAlive => f.write_str("nothing before the '@'"),
            NodeNameError::EmptyHost => f.write_str("nothing after the '@'"),
            NodeNameError::TooLong { chars } => {
                write!(f, "{chars} characters, more than the 255 an atom may hold")
            }
            NodeNameError::BadAliveChar { ch } => write!(
                f,
                "character {ch:?} in the part before '@' (use letters, digits, '_' and '-')"
            ),
            NodeNameError::BadHostChar { ch } => write!(f, "character {ch:?} in the host part"),
            NodeNameError::ShortHost { host } => write!(
                f,
                "host {host:?} is neither an IP address nor a fully qualified name \
                 (long names are required: use name@<ip> or name@<host.domain>)"
            ),
        }
    }
}

impl std::error::Error for NodeNameError {}

impl NodeName {
    /// Parses a peer's name the way the BEAM's acceptor does: exactly one `@`, non-empty
    /// parts, at most 255 characters. Short names are accepted (OTP's `erl_call` calls itself
    /// `c17@myhost`).
    pub fn parse(text: &str) -> Result<NodeName, NodeNameError> {
        // Counting characters is only needed when the bytes could be too many.
        if text.len() > Atom::MAX_CHARS {
            let chars = text.chars().count();
            if chars > Atom::MAX_CHARS {
                return Err(NodeNameError::TooLong { chars });
            }
        }
        let at = text.find('@').ok_or(NodeNameError::NoAt)?;
        if text[at + 1..].contains('@') {
            return Err(NodeNameError::SeveralAts);
        }
        if at == 0 {
            return Err(NodeNameError::EmptyAlive);
        }
        if at + 1 == text.len() {
            return Err(NodeNameError::EmptyHost);
        }
        Ok(NodeName {
            atom: Atom::new(text),
            at,
        })
    }

    /// Parses a name this node will use or dial: [`parse`](Self::parse), plus the checks a
    /// long-names BEAM makes before it connects (a host with a dot or an IP address) and a
    /// conservative alive part (letters, digits, `_`, `-`, `.`, as releases use).
    pub fn parse_long(text: &str) -> Result<NodeName, NodeNameError> {
        let name = NodeName::parse(text)?;
        if let Some(ch) = name
            .alive()
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
        {
            return Err(NodeNameError::BadAliveChar { ch });
        }
        let host = name.host();
        if let Some(ch) = host
            .chars()
            .find(|c| !c.is_ascii() || c.is_ascii_whitespace() || c.is_ascii_control())
        {
            return Err(NodeNameError::BadHostChar { ch });
        }
        if !name.is_long() {
            return Err(NodeNameError::ShortHost {
                host: host.to_string(),
            });
        }
        Ok(name)
    }

    /// `alive@host` from its parts, with the checks of [`parse_long`](Self::parse_long).
    pub fn from_parts(alive: &str, host: &str) -> Result<NodeName, NodeNameError> {
        let host = match host.parse::<IpAddr>() {
            // Both spellings must agree with what a BEAM prints, so canonicalise.
            Ok(ip) => ip.to_string(),
            Err(_) => host.to_string(),
        };
        NodeName::parse_long(&format!("{alive}@{host}"))
    }

    /// The part before `@`: what EPMD registers.
    pub fn alive(&self) -> &str {
        &self.atom.as_str()[..self.at]
    }

    /// The part after `@`.
    pub fn host(&self) -> &str {
        &self.atom.as_str()[self.at + 1..]
    }

    /// The host as an IP address, if it is one.
    pub fn host_ip(&self) -> Option<IpAddr> {
        self.host().parse().ok()
    }

    /// True for a long name: the host has a dot or is an IP address.
    pub fn is_long(&self) -> bool {
        self.host().contains('.') || self.host_ip().is_some()
    }

    /// The whole name.
    pub fn as_str(&self) -> &str {
        self.atom.as_str()
    }

    /// The whole name as the atom that pids, refs and control messages carry.
    pub fn as_atom(&self) -> &Atom {
        &self.atom
    }
}

impl fmt::Display for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl std::str::FromStr for NodeName {
    type Err = NodeNameError;
    fn from_str(s: &str) -> Result<NodeName, NodeNameError> {
        NodeName::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_alive_and_host() {
        let n = NodeName::parse("minotaur@10.0.1.5").unwrap();
        assert_eq!(n.alive(), "minotaur");
        assert_eq!(n.host(), "10.0.1.5");
        assert!(n.is_long());
        assert_eq!(n.host_ip(), Some("10.0.1.5".parse().unwrap()));
    }

    #[test]
    fn refuses_what_the_beam_refuses() {
        assert_eq!(NodeName::parse("nohost"), Err(NodeNameError::NoAt));
        assert_eq!(NodeName::parse("a@b@c"), Err(NodeNameError::SeveralAts));
        assert_eq!(NodeName::parse("@h"), Err(NodeNameError::EmptyAlive));
        assert_eq!(NodeName::parse("a@"), Err(NodeNameError::EmptyHost));
        let long = format!("{}@h.x", "a".repeat(260));
        assert!(matches!(
            NodeName::parse(&long),
            Err(NodeNameError::TooLong { .. })
        ));
    }

    #[test]
    fn short_names_are_peers_but_not_ours() {
        let erl_call = NodeName::parse("c17@myhost").unwrap();
        assert!(!erl_call.is_long());
        assert!(matches!(
            NodeName::parse_long("app@myhost"),
            Err(NodeNameError::ShortHost { .. })
        ));
        assert!(NodeName::parse_long("app@myhost.example").is_ok());
        assert!(NodeName::parse_long("app@::1").is_ok());
        assert!(matches!(
            NodeName::parse_long("a b@10.0.0.1"),
            Err(NodeNameError::BadAliveChar { ch: ' ' })
        ));
    }

    #[test]
    fn from_parts_canonicalises_ips() {
        let n = NodeName::from_parts("x", "0:0:0:0:0:0:0:1").unwrap();
        assert_eq!(n.as_str(), "x@::1");
    }
}
