//! What of the DNS answers is worth a log line (see the module documentation of
//! [`crate::cluster`]): an answer when it changes, each kind of failure once per outage
//! whatever the resolver's wording, and the end of an outage with its length.

use crate::discovery::{DnsError, DnsQuery};
use std::net::IpAddr;
use std::time::Duration;
use tokio::time::Instant;
use tracing::{info, warn};

/// What a poll's DNS result changed, worth one log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum DnsNote {
    /// The first answer.
    First(Vec<IpAddr>),
    /// The answer differs from the previous one.
    Changed {
        now: Vec<IpAddr>,
        added: Vec<IpAddr>,
        removed: Vec<IpAddr>,
    },
    /// A failure of a kind not yet logged during this outage.
    Failing(DnsError),
    /// Answers again after failing.
    Recovered {
        now: Vec<IpAddr>,
        after: Duration,
        failed_polls: u32,
    },
}

/// The kinds of DNS failure told apart in the log (a resolver's wording varies from one
/// attempt to the next; the kind does not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FailureKind {
    Config,
    BadName,
    NoRecords,
    Failed,
}

fn failure_kind(e: &DnsError) -> FailureKind {
    match e {
        DnsError::Config { .. } => FailureKind::Config,
        DnsError::BadName { .. } => FailureKind::BadName,
        DnsError::NoRecords { .. } => FailureKind::NoRecords,
        _ => FailureKind::Failed,
    }
}

/// The DNS outage under way.
#[derive(Debug)]
struct Outage {
    since: Instant,
    polls: u32,
    logged: Vec<FailureKind>,
}

/// Decides which poll results are worth a log line: answers when they change, each kind of
/// failure once per outage, and the end of an outage.
#[derive(Debug, Default)]
pub(super) struct DnsReport {
    last_answer: Option<Vec<IpAddr>>,
    outage: Option<Outage>,
}

impl DnsReport {
    pub(super) fn observe(
        &mut self,
        result: &Result<Vec<IpAddr>, DnsError>,
        now: Instant,
    ) -> Option<DnsNote> {
        match result {
            Err(e) => {
                let outage = self.outage.get_or_insert(Outage {
                    since: now,
                    polls: 0,
                    logged: Vec::new(),
                });
                outage.polls += 1;
                let kind = failure_kind(e);
                if outage.logged.contains(&kind) {
                    None
                } else {
                    outage.logged.push(kind);
                    Some(DnsNote::Failing(e.clone()))
                }
            }
            Ok(ips) => {
                let previous = self.last_answer.replace(ips.clone());
                if let Some(outage) = self.outage.take() {
                    return Some(DnsNote::Recovered {
                        now: ips.clone(),
                        after: now.saturating_duration_since(outage.since),
                        failed_polls: outage.polls,
                    });
                }
                match previous {
                    None => Some(DnsNote::First(ips.clone())),
                    Some(old) if old == *ips => None,
                    Some(old) => Some(DnsNote::Changed {
                        now: ips.clone(),
                        added: ips.iter().filter(|ip| !old.contains(ip)).copied().collect(),
                        removed: old.iter().filter(|ip| !ips.contains(ip)).copied().collect(),
                    }),
                }
            }
        }
    }
}

pub(super) fn log_dns_note(dns: &DnsQuery, note: &DnsNote, tracked: usize) {
    let query = dns.query();
    match note {
        DnsNote::First(ips) => info!(%query, count = ips.len(), addresses = ?ips, "DNS answer"),
        DnsNote::Changed {
            now,
            added,
            removed,
        } => info!(%query, count = now.len(), ?added, ?removed, "DNS answer changed"),
        DnsNote::Failing(e) => warn!(
            %query,
            "{e}; keeping the {tracked} peers we know and their links"
        ),
        DnsNote::Recovered {
            now,
            after,
            failed_polls,
        } => info!(
            %query,
            count = now.len(),
            addresses = ?now,
            "DNS answers again after {:.1}s ({failed_polls} failed polls)",
            after.as_secs_f64()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn failed(reason: &str) -> Result<Vec<IpAddr>, DnsError> {
        Err(DnsError::Failed {
            query: "tasks.s_web".into(),
            reason: reason.into(),
        })
    }

    #[test]
    fn dns_changes_are_reported_once() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut r = DnsReport::default();
        let a = ips(&["10.0.0.2", "10.0.0.3"]);
        assert_eq!(
            r.observe(&Ok(a.clone()), t0),
            Some(DnsNote::First(a.clone()))
        );
        assert_eq!(r.observe(&Ok(a.clone()), t0 + s), None);
        let b = ips(&["10.0.0.3", "10.0.0.4"]);
        assert_eq!(
            r.observe(&Ok(b.clone()), t0 + 2 * s),
            Some(DnsNote::Changed {
                now: b.clone(),
                added: ips(&["10.0.0.4"]),
                removed: ips(&["10.0.0.2"]),
            })
        );
        // An outage: the wording of a timeout varies, it is still logged once; another kind
        // of failure is logged once too.
        assert!(matches!(
            r.observe(&failed("request timed out"), t0 + 3 * s),
            Some(DnsNote::Failing(DnsError::Failed { .. }))
        ));
        assert_eq!(
            r.observe(&failed("no connections available"), t0 + 4 * s),
            None
        );
        assert_eq!(r.observe(&failed("request timed out"), t0 + 5 * s), None);
        let empty = Err(DnsError::NoRecords {
            query: "tasks.s_web".into(),
        });
        assert!(matches!(
            r.observe(&empty, t0 + 6 * s),
            Some(DnsNote::Failing(DnsError::NoRecords { .. }))
        ));
        assert_eq!(r.observe(&empty, t0 + 7 * s), None);
        assert_eq!(r.observe(&failed("request timed out"), t0 + 8 * s), None);
        assert_eq!(
            r.observe(&Ok(b.clone()), t0 + 9 * s),
            Some(DnsNote::Recovered {
                now: b.clone(),
                after: 6 * s,
                failed_polls: 6,
            })
        );
        assert_eq!(r.observe(&Ok(b.clone()), t0 + 10 * s), None);
        // The next outage is logged again.
        assert!(
            r.observe(&failed("request timed out"), t0 + 11 * s)
                .is_some()
        );
    }
}
