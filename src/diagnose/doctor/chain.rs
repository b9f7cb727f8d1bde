//! One peer's chain as checks: each step it got through (with what was seen there, and a
//! warning where something works but will not for long), the step that failed with its
//! diagnosis, and the later steps marked skipped.

use crate::diagnose::checks::{Cause, Check, CheckStatus, CheckStep};
use crate::diagnose::explain::{Context, diagnose_failure};
use crate::diagnose::probe::{Failure, HandshakeProblem, PeerProbe, Software};
use crate::proto::flags::DistFlags;

/// The checks of one peer: each step up to the failing one, then `skipped`.
pub(super) fn chain(probe: &PeerProbe, ctx: &Context) -> Vec<Check> {
    let subject = probe.name.to_string();
    let steps: Vec<CheckStep> = [
        CheckStep::Epmd,
        CheckStep::Tcp,
        CheckStep::Tls,
        CheckStep::Handshake,
        CheckStep::Flags,
        CheckStep::Cookie,
        CheckStep::Ping,
        CheckStep::Rpc,
    ]
    .into_iter()
    // A plain-TCP survey has no TLS step, unless the peer spoke TLS to us.
    .filter(|s| *s != CheckStep::Tls || ctx.tls || tls_failure(probe))
    .collect();
    let mut out = Vec::new();
    if let Some(failure) = &probe.failure {
        let d = diagnose_failure(probe, failure, ctx);
        let failed_at = d.step;
        if failed_at != CheckStep::Dns {
            for step in steps.iter().take_while(|s| **s != failed_at) {
                out.extend(passed(probe, *step, ctx));
            }
        }
        out.push(Check::from_diagnosis(&subject, CheckStatus::Fail, d));
        let after = steps
            .iter()
            .skip_while(|s| **s != failed_at)
            .skip(1)
            .copied();
        let after: Vec<CheckStep> = if failed_at == CheckStep::Dns {
            steps.to_vec()
        } else {
            after.collect()
        };
        for step in after {
            out.push(Check::skipped(&subject, step));
        }
    } else {
        for step in steps {
            out.extend(passed(probe, step, ctx));
        }
    }
    out
}

fn tls_failure(probe: &PeerProbe) -> bool {
    matches!(
        &probe.failure,
        Some(Failure::Handshake {
            problem: HandshakeProblem::TlsPeer | HandshakeProblem::Tls(_),
            ..
        })
    )
}

/// The check for a step the peer got through.
fn passed(probe: &PeerProbe, step: CheckStep, ctx: &Context) -> Option<Check> {
    let subject = probe.name.to_string();
    let name = &probe.name;
    let connected = probe.connected.as_ref();
    let reused = connected.is_some_and(|c| c.reused);
    Some(match step {
        CheckStep::Epmd => match (&probe.epmd, reused) {
            (_, true) => Check::ok(&subject, step, "already connected (EPMD not asked)"),
            (Some(e), _) => {
                let check = Check::ok(
                    &subject,
                    step,
                    format!(
                        "EPMD at {} lists {} at port {}",
                        e.epmd,
                        name.alive(),
                        e.port
                    ),
                )
                .with_evidence(format!(
                    "{} node, distribution versions {}..{}",
                    if e.hidden { "hidden" } else { "normal" },
                    e.lowest_version,
                    e.highest_version
                ));
                if e.highest_version < 6 {
                    Check {
                        status: CheckStatus::Warn,
                        cause: Some(Cause::MissingFlags),
                        fix: Some(
                            "it registered distribution version 5 only: an OTP 22 or older \
                             node, which OTP 25 and later refuse; upgrade it"
                                .into(),
                        ),
                        ..check
                    }
                } else {
                    check
                }
            }
            // EPMD-less (--dist-port): the peer was dialled on the dist port.
            (None, _) => match probe.tcp {
                Some(addr) => Check::ok(
                    &subject,
                    step,
                    format!(
                        "EPMD-less: not asked; port {} is the dist port",
                        addr.port()
                    ),
                ),
                None => return None,
            },
        },
        CheckStep::Tcp => match (connected, probe.tcp) {
            (Some(c), _) if c.reused => {
                Check::ok(&subject, step, format!("already connected to {}", c.addr))
            }
            (Some(c), _) => {
                let mut check = Check::ok(&subject, step, format!("connected to {}", c.addr));
                if let Some(t) = c.connect_time {
                    check = check.with_evidence(format!(
                        "TCP connect and handshake took {:.1} ms",
                        t.as_secs_f64() * 1e3
                    ));
                }
                check
            }
            (None, Some(addr)) => Check::ok(&subject, step, format!("connected to {addr}")),
            (None, None) => return None,
        },
        CheckStep::Tls => {
            // No check at all for a plain-TCP link.
            let session = probe.tls.as_ref()?;
            let mut check = Check::ok(
                &subject,
                step,
                format!(
                    "TLS {} with {}",
                    session.otp_version(),
                    session.cipher_suite
                ),
            );
            if let Some(group) = &session.key_exchange {
                check = check.with_evidence(format!("key exchange {group}"));
            }
            check
        }
        CheckStep::Handshake => {
            let Some(c) = connected else {
                // The chain failed at a later step of the handshake (flags, cookie): the
                // status was ok and the challenge carried the name we dialled.
                return Some(Check::ok(
                    &subject,
                    step,
                    format!(
                        "{name} accepted our name (status ok) and its challenge names it {name}"
                    ),
                ));
            };
            let check = Check::ok(
                &subject,
                step,
                format!("{name} accepted our name and answered under its own"),
            )
            .with_evidence(format!("creation {}", c.creation));
            if !name.is_long() {
                Check {
                    status: CheckStatus::Warn,
                    cause: Some(Cause::ShortNames),
                    summary: format!(
                        "{name} uses short names: it accepts us, but cannot connect to \
                         long-name nodes"
                    ),
                    fix: Some(format!(
                        "start it with long names: RELEASE_DISTRIBUTION=name and \
                         RELEASE_NODE={}@<its IP>",
                        name.alive()
                    )),
                    ..check
                }
            } else {
                check
            }
        }
        CheckStep::Flags => {
            let Some(c) = connected else {
                return Some(Check::ok(
                    &subject,
                    step,
                    "its challenge offers every flag OTP 26 and later require",
                ));
            };
            let check = Check::ok(
                &subject,
                step,
                format!(
                    "it offers every flag OTP 26 and later require; it is {}",
                    if c.published() {
                        "a visible node"
                    } else {
                        "a hidden node"
                    }
                ),
            )
            .with_evidence(format!(
                "offered {}: {}",
                c.peer_flags,
                c.peer_flags.names().join(" ")
            ));
            let optional =
                DistFlags::SPAWN | DistFlags::DIST_MONITOR | DistFlags::DIST_MONITOR_NAME;
            let lacking = c.peer_flags.expand_digest().missing(optional);
            if lacking != DistFlags::EMPTY {
                Check {
                    status: CheckStatus::Warn,
                    cause: Some(Cause::OptionalFlags),
                    summary: format!(
                        "it lacks {}: {}",
                        lacking.names().join(", "),
                        if lacking.contains(DistFlags::SPAWN) {
                            "erpc and rpc:call from OTP 25+ nodes to it fail"
                        } else {
                            "monitors on its processes only watch the connection"
                        }
                    ),
                    fix: Some("upgrade the peer (a third-party node)".into()),
                    ..check
                }
            } else {
                check
            }
        }
        CheckStep::Cookie => {
            connected?;
            let check = Check::ok(&subject, step, "both challenge digests matched");
            match &ctx.cookie_source {
                Some(s) => check.with_evidence(format!("our cookie from {s}")),
                None => check,
            }
        }
        CheckStep::Ping => {
            let rtt = probe.ping?;
            Check::ok(
                &subject,
                step,
                format!(
                    "net_kernel answered yes to is_auth in {:.2} ms",
                    rtt.as_secs_f64() * 1e3
                ),
            )
        }
        CheckStep::Rpc => {
            let software = probe.software.as_ref()?;
            let nodes = probe.nodes.as_ref()?;
            let hidden = nodes.hidden.iter().filter(|n| **n != ctx.observer).count();
            let what = match software {
                Software::Otp(r) => format!("erpc works: it runs OTP {r}"),
                other => format!("erpc works: it runs {other}"),
            };
            Check::ok(
                &subject,
                step,
                format!(
                    "{what}, connected to {} visible and {hidden} other hidden node{}",
                    nodes.visible.len(),
                    if hidden == 1 { "" } else { "s" }
                ),
            )
        }
        CheckStep::Config | CheckStep::Dns | CheckStep::Mesh => return None,
    })
}
