//! The naming a release started in the doctor's own environment would get: Elixir
//! releases read `RELEASE_DISTRIBUTION` (default `sname`) and `RELEASE_NODE`, so running the
//! doctor where the release runs (its container) shows a short-names or host-name setup
//! before any peer does.

use super::checks::{Cause, Check, CheckStatus, CheckStep};
use super::explain::Diagnosis;
use std::net::IpAddr;

/// What a release started in this environment would be called: `RELEASE_DISTRIBUTION` and
/// `RELEASE_NODE` as `bin/<app>` reads them (Elixir releases default to short names).
/// Nothing when neither is set.
pub(crate) fn environment_checks(distribution: Option<&str>, node: Option<&str>) -> Vec<Check> {
    if distribution.is_none() && node.is_none() {
        return Vec::new();
    }
    let subject = "environment";
    let to_long = |alive: &str| {
        format!("set RELEASE_DISTRIBUTION=name and RELEASE_NODE={alive}@<the node's IP>")
    };
    let alive = node
        .map(|n| n.split('@').next().unwrap_or(n))
        .filter(|a| !a.is_empty())
        .unwrap_or("<app>");
    let fail = |cause, summary: String, evidence: String, fix: String, status| {
        Check::from_diagnosis(
            subject,
            status,
            Diagnosis {
                step: CheckStep::Config,
                cause,
                summary,
                evidence: vec![evidence],
                fix,
            },
        )
    };
    let mut out = Vec::new();
    match distribution {
        Some("name") => {}
        Some("sname") | None => {
            let evidence = match distribution {
                Some(d) => format!("RELEASE_DISTRIBUTION={d}"),
                None => format!(
                    "RELEASE_NODE={} is set, RELEASE_DISTRIBUTION is not: releases default \
                     to sname",
                    node.unwrap_or("")
                ),
            };
            out.push(fail(
                Cause::ShortNames,
                "a release started with this environment runs with short names: nodes that \
                 find it by IP cannot connect to it, nor it to them"
                    .into(),
                evidence,
                to_long(alive),
                CheckStatus::Fail,
            ));
            return out;
        }
        Some("none") => {
            out.push(fail(
                Cause::NotRegistered,
                "RELEASE_DISTRIBUTION=none: a release started here has no distribution".into(),
                "RELEASE_DISTRIBUTION=none".into(),
                to_long(alive),
                CheckStatus::Warn,
            ));
            return out;
        }
        Some(other) => {
            out.push(fail(
                Cause::ShortNames,
                format!("RELEASE_DISTRIBUTION={other} is not a value releases know"),
                format!("RELEASE_DISTRIBUTION={other}"),
                to_long(alive),
                CheckStatus::Warn,
            ));
            return out;
        }
    }
    let Some(node) = node else {
        return out;
    };
    let evidence = format!("RELEASE_NODE={node}");
    match node.split_once('@') {
        None => out.push(fail(
            Cause::NameNotIp,
            format!(
                "RELEASE_NODE={node} has no host part: the release adds this host's name, \
                 not its IP, and peers that find it by DNS dial {node}@<ip>"
            ),
            evidence,
            format!("RELEASE_NODE={node}@<the node's IP>"),
            CheckStatus::Warn,
        )),
        Some((a, host)) if host.parse::<IpAddr>().is_ok() => out.push(Check::ok(
            subject,
            CheckStep::Config,
            format!("RELEASE_DISTRIBUTION=name and RELEASE_NODE={a}@{host}: named after its IP"),
        )),
        Some((a, host)) if host.contains('.') => out.push(fail(
            Cause::NameNotIp,
            format!(
                "RELEASE_NODE={node} is named after a host name: peers that find it by DNS \
                 dial {a}@<ip> and it refuses that name"
            ),
            evidence,
            format!("RELEASE_NODE={a}@<the node's IP>, unless every peer dials it as {node}"),
            CheckStatus::Warn,
        )),
        Some((a, host)) => out.push(fail(
            Cause::NameNotIp,
            format!(
                "RELEASE_NODE={node} with RELEASE_DISTRIBUTION=name: the host `{host}` has no \
                 dot, so the node does not start (\"Can't set long node name\")"
            ),
            evidence,
            format!("RELEASE_NODE={a}@<the node's IP>"),
            CheckStatus::Fail,
        )),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_release_environment_is_checked_for_short_names_and_host_names() {
        let causes = |d: Option<&str>, n: Option<&str>| -> Vec<(CheckStatus, Option<Cause>)> {
            environment_checks(d, n)
                .iter()
                .map(|c| (c.status, c.cause))
                .collect()
        };
        assert!(causes(None, None).is_empty());
        let short = environment_checks(Some("sname"), Some("app"));
        assert_eq!(short[0].cause, Some(Cause::ShortNames));
        assert_eq!(short[0].status, CheckStatus::Fail);
        assert_eq!(
            short[0].fix.as_deref(),
            Some("set RELEASE_DISTRIBUTION=name and RELEASE_NODE=app@<the node's IP>")
        );
        // Releases default to sname.
        assert_eq!(
            causes(None, Some("app@10.0.0.5")),
            [(CheckStatus::Fail, Some(Cause::ShortNames))]
        );
        assert_eq!(
            causes(Some("name"), Some("app@10.0.0.5")),
            [(CheckStatus::Ok, None)]
        );
        assert_eq!(
            causes(Some("name"), Some("app@web-1.example.com")),
            [(CheckStatus::Warn, Some(Cause::NameNotIp))]
        );
        assert_eq!(
            causes(Some("name"), Some("app@web-1")),
            [(CheckStatus::Fail, Some(Cause::NameNotIp))]
        );
        assert_eq!(
            causes(Some("name"), Some("app")),
            [(CheckStatus::Warn, Some(Cause::NameNotIp))]
        );
    }
}
