//! Peer discovery through DNS, as Phoenix's `dns_cluster` and libcluster's `DNSPoll` do it:
//! the A and AAAA records of a name such as `tasks.<stack>_<service>` (one record per Swarm
//! task, or per pod behind a Kubernetes headless service), asked through hickory-resolver,
//! never through the blocking std resolver.
//!
//! The system's resolver configuration is used (`/etc/resolv.conf`, search list and
//! `ndots` included; inside `ip netns exec` that is the namespace's
//! `/etc/netns/<ns>/resolv.conf`), unless a server is given. Answers are never cached: each
//! poll asks again.
//!
//! [`peers_at`] turns an answer into peer names, the way `run`, `nodes` and `doctor` all do:
//! `basename@<ip>` for each address, or every name the EPMD at each address lists.
//! Names are parsed leniently: Swarm's `tasks.<stack>_<service>` has an underscore, which
//! the strict IDNA parsing hickory applies to `&str` names refuses.

use crate::epmd::EpmdError;
use crate::proto::epmd::NamesResponse;
use crate::proto::node_name::NodeName;
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{
    ConnectionConfig, LookupIpStrategy, NameServerConfig, ResolverConfig,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::Name;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::OnceLock;
use std::time::Duration;

/// Why a DNS question got no usable answer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DnsError {
    /// The resolver configuration could not be read.
    Config {
        /// What the resolver said.
        reason: String,
    },
    /// The query is not a DNS name.
    BadName {
        /// The text given.
        query: String,
        /// Why it is not a name.
        reason: String,
    },
    /// The name exists but has no A or AAAA record (or does not exist: NXDOMAIN).
    NoRecords {
        /// The name asked.
        query: String,
    },
    /// The question failed (timeout, server unreachable, SERVFAIL, ...).
    Failed {
        /// The name asked.
        query: String,
        /// What the resolver said.
        reason: String,
    },
}

impl fmt::Display for DnsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DnsError::Config { reason } => write!(f, "cannot set up the DNS resolver: {reason}"),
            DnsError::BadName { query, reason } => {
                write!(f, "{query:?} is not a DNS name: {reason}")
            }
            DnsError::NoRecords { query } => write!(f, "{query} has no A or AAAA records"),
            DnsError::Failed { query, reason } => {
                write!(f, "DNS lookup of {query} failed: {reason}")
            }
        }
    }
}

impl std::error::Error for DnsError {}

/// A DNS name to poll.
#[derive(Clone)]
pub struct DnsQuery {
    query: String,
    server: Option<SocketAddr>,
    name: Name,
    resolver: TokioResolver,
}

impl fmt::Debug for DnsQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DnsQuery")
            .field("query", &self.query)
            .finish()
    }
}

impl DnsQuery {
    /// Polls `query` through the system's resolver, or through `server` if given.
    pub fn new(query: &str, server: Option<SocketAddr>) -> Result<DnsQuery, DnsError> {
        let name = parse_name(query)?;
        let config_err = |e: &dyn fmt::Display| DnsError::Config {
            reason: e.to_string(),
        };
        let mut builder = match server {
            None => TokioResolver::builder_tokio().map_err(|e| config_err(&e))?,
            Some(addr) => {
                let mut udp = ConnectionConfig::udp();
                udp.port = addr.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = addr.port();
                let ns = NameServerConfig::new(addr.ip(), true, vec![udp, tcp]);
                TokioResolver::builder_with_config(
                    ResolverConfig::from_name_servers(vec![ns]),
                    TokioRuntimeProvider::default(),
                )
            }
        };
        let opts = builder.options_mut();
        opts.cache_size = 0;
        if server.is_some() {
            // resolv.conf's `options timeout: attempts:` apply otherwise, as for the BEAM.
            opts.timeout = Duration::from_secs(2);
            opts.attempts = 2;
        }
        // Both record types, in parallel, whatever the library's default of the day (an
        // "A, then AAAA only if no A" strategy would hide IPv6-only peers in mixed answers).
        opts.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        let resolver = builder.build().map_err(|e| config_err(&e))?;
        Ok(DnsQuery {
            query: query.to_string(),
            server,
            name,
            resolver,
        })
    }

    /// The name polled.
    pub fn query(&self) -> &str {
        &self.query
    }

    /// The DNS server asked, when not the system's.
    pub fn server(&self) -> Option<SocketAddr> {
        self.server
    }

    /// [`lookup`](Self::lookup), given up after `deadline` (a dead server otherwise costs
    /// the resolver's timeout × attempts for every search-list candidate and record type).
    pub async fn lookup_within(&self, deadline: Duration) -> Result<Vec<IpAddr>, DnsError> {
        match tokio::time::timeout(deadline, self.lookup()).await {
            Ok(result) => result,
            Err(_) => Err(DnsError::Failed {
                query: self.query.clone(),
                reason: format!("no answer within {:.1}s", deadline.as_secs_f64()),
            }),
        }
    }

    /// The addresses the name has now, sorted, without duplicates.
    pub async fn lookup(&self) -> Result<Vec<IpAddr>, DnsError> {
        match self.resolver.lookup_ip(self.name.clone()).await {
            Ok(answer) => {
                let mut ips: Vec<IpAddr> = answer.iter().collect();
                ips.sort();
                ips.dedup();
                if ips.is_empty() {
                    Err(DnsError::NoRecords {
                        query: self.query.clone(),
                    })
                } else {
                    Ok(ips)
                }
            }
            Err(e) if e.is_no_records_found() => Err(DnsError::NoRecords {
                query: self.query.clone(),
            }),
            Err(e) => Err(DnsError::Failed {
                query: self.query.clone(),
                reason: e.to_string(),
            }),
        }
    }
}

/// A DNS name from text: IDNA for international names, plain ASCII (underscores allowed)
/// otherwise.
fn parse_name(text: &str) -> Result<Name, DnsError> {
    Name::from_str_relaxed(text).map_err(|e| DnsError::BadName {
        query: text.to_string(),
        reason: e.to_string(),
    })
}

/// Parses `IP` or `IP:PORT` (port 53 by default; `[v6]:port` for IPv6 with a port).
pub fn parse_server(text: &str) -> Option<SocketAddr> {
    if let Ok(sa) = text.parse::<SocketAddr>() {
        return Some(sa);
    }
    text.parse::<IpAddr>()
        .ok()
        .map(|ip| SocketAddr::new(ip, 53))
}

fn system_resolver() -> Result<&'static TokioResolver, String> {
    static RESOLVER: OnceLock<Result<TokioResolver, String>> = OnceLock::new();
    RESOLVER
        .get_or_init(|| {
            TokioResolver::builder_tokio()
                .and_then(|b| b.build())
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| e.clone())
}

/// The first address of `host` from the system's resolver configuration (host parts of
/// node names that are not IP addresses).
pub async fn resolve_host(host: &str) -> Result<IpAddr, String> {
    let resolver = system_resolver()?;
    let name = parse_name(host).map_err(|e| e.to_string())?;
    let answer = resolver.lookup_ip(name).await.map_err(|e| e.to_string())?;
    answer
        .iter()
        .next()
        .ok_or_else(|| format!("no address for {host}"))
}

/// What the EPMD at one address answered to a NAMES request.
#[derive(Debug)]
pub struct EpmdListing {
    /// The address asked.
    pub ip: IpAddr,
    /// The EPMD's socket address (`ip` and the EPMD port).
    pub epmd: SocketAddr,
    /// Its answer.
    pub result: Result<NamesResponse, EpmdError>,
}

/// The peers found at the addresses of a DNS answer.
#[derive(Debug, Default)]
pub struct PeersAt {
    /// The peers, sorted, without duplicates.
    pub peers: Vec<NodeName>,
    /// Without a basename: what each address's EPMD listed, in the order of the addresses.
    pub listings: Vec<EpmdListing>,
    /// Problems worth a log line (an EPMD that did not answer, a name that is not usable).
    pub notes: Vec<String>,
}

/// Asks the EPMD at every address (on `epmd_port`, concurrently) for its names.
pub async fn list_names(ips: &[IpAddr], epmd_port: u16, timeout: Duration) -> Vec<EpmdListing> {
    let lookups = ips.iter().map(|ip| async move {
        let epmd = SocketAddr::new(*ip, epmd_port);
        EpmdListing {
            ip: *ip,
            epmd,
            result: crate::epmd::names(epmd, timeout).await,
        }
    });
    futures_util::future::join_all(lookups).await
}

/// The peers at `ips`: `basename@<ip>` for each address, or, without a basename, every node
/// the EPMD at each address lists (named `<name>@<ip>`).
pub async fn peers_at(
    ips: &[IpAddr],
    basename: Option<&str>,
    epmd_port: u16,
    timeout: Duration,
) -> PeersAt {
    let mut found = PeersAt::default();
    match basename {
        Some(base) => {
            for ip in ips {
                match NodeName::from_parts(base, &ip.to_string()) {
                    Ok(n) => found.peers.push(n),
                    Err(e) => found
                        .notes
                        .push(format!("{base}@{ip} is not a usable name: {e}")),
                }
            }
        }
        None => {
            found.listings = list_names(ips, epmd_port, timeout).await;
            for listing in &found.listings {
                match &listing.result {
                    Ok(reply) => {
                        for entry in &reply.nodes {
                            if is_release_helper(entry.name.as_str()) {
                                continue;
                            }
                            if let Ok(n) =
                                NodeName::from_parts(entry.name.as_str(), &listing.ip.to_string())
                            {
                                found.peers.push(n);
                            }
                        }
                    }
                    Err(e) => found.notes.push(format!("EPMD at {}: {e}", listing.epmd)),
                }
            }
        }
    }
    found.peers.sort();
    found.peers.dedup();
    found
}

/// Whether an EPMD name is one of the short-lived hidden nodes a `mix release` script
/// starts for `bin/<app> rpc` (`rpc-<hex>-<node>`) and `bin/<app> remote`
/// (`rem-<hex>-<node>`), `<hex>` being 4 random hex digits. They are operators' shells,
/// not peers: dialling them only adds a link that fails a moment later.
pub fn is_release_helper(alive: &str) -> bool {
    let Some(rest) = alive
        .strip_prefix("rpc-")
        .or_else(|| alive.strip_prefix("rem-"))
    else {
        return false;
    };
    match rest.split_once('-') {
        Some((random, node)) => {
            !node.is_empty()
                && (1..=8).contains(&random.len())
                && random.bytes().all(|b| b.is_ascii_hexdigit())
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_rpc_and_remote_shells_are_not_peers() {
        for helper in ["rpc-1a2b-labyrinth", "rem-00ff-web", "rem-c0de-my-app"] {
            assert!(is_release_helper(helper), "{helper}");
        }
        for peer in [
            "labyrinth",
            "rpc",
            "rpc-",
            "rpc-1a2b",
            "rpc-xyz1-app",
            "remote-1a2b-app",
            "rem--app",
            "rem-123456789-app",
        ] {
            assert!(!is_release_helper(peer), "{peer}");
        }
    }

    #[test]
    fn servers_parse_with_and_without_port() {
        assert_eq!(
            parse_server("10.0.0.1"),
            Some("10.0.0.1:53".parse().unwrap())
        );
        assert_eq!(
            parse_server("10.0.0.1:5353"),
            Some("10.0.0.1:5353".parse().unwrap())
        );
        assert_eq!(
            parse_server("[fd00::1]:53"),
            Some("[fd00::1]:53".parse().unwrap())
        );
        assert_eq!(
            parse_server("fd00::1"),
            Some("[fd00::1]:53".parse().unwrap())
        );
        assert_eq!(parse_server("nonsense"), None);
    }

    #[test]
    fn swarm_names_with_underscores_are_names() {
        // Docker Swarm: tasks.<stack>_<service>.
        for query in [
            "tasks.shop_web",
            "tasks.maze_labyrinth",
            "web_1",
            "myapp-headless",
        ] {
            let name = parse_name(query).unwrap_or_else(|e| panic!("{query}: {e}"));
            assert_eq!(name.to_string(), query);
            assert!(!name.is_fqdn(), "{query}: the search list must still apply");
        }
        assert!(parse_name("tasks.maze_labyrinth.").unwrap().is_fqdn());
        let long = "a".repeat(64);
        assert!(matches!(parse_name(&long), Err(DnsError::BadName { .. })));
        let server = Some("127.0.0.1:53".parse().unwrap());
        assert_eq!(
            DnsQuery::new("tasks.shop_web", server).unwrap().query(),
            "tasks.shop_web"
        );
    }
}
