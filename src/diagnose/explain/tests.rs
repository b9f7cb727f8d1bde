//! The explanations against the failures they tell apart.

use super::lookup::epmd_failure;
use super::*;
use crate::diagnose::checks::CheckStatus;
use crate::diagnose::probe::{EpmdProblem, HandshakeProblem, PeerProbe};
use crate::discovery::DnsError;
use crate::proto::flags::DistFlags;
use crate::proto::handshake::{HandshakeError, Step};
use std::net::IpAddr;

fn name(s: &str) -> NodeName {
    NodeName::parse(s).unwrap()
}

fn context() -> Context {
    let survey = Survey {
        observer: name("beamlink-doctor-0001@10.0.0.1"),
        dns: None,
        listings: Vec::new(),
        probes: Vec::new(),
        notes: Vec::new(),
        tls: false,
    };
    Context::new(&survey, Some("RELEASE_COOKIE".into()))
}

fn refused(peer: &str, e: HandshakeError) -> (PeerProbe, Failure) {
    let failure = Failure::Handshake {
        addr: "10.0.0.5:9100".parse().unwrap(),
        problem: HandshakeProblem::Refused(e),
    };
    let probe = PeerProbe {
        failure: Some(failure.clone()),
        ..PeerProbe::unreached(name(peer))
    };
    (probe, failure)
}

fn mismatch(got: &str) -> Diagnosis {
    let (probe, failure) = refused(
        "app@10.0.0.5",
        HandshakeError::NameMismatch {
            expected: name("app@10.0.0.5"),
            got: name(got),
        },
    );
    diagnose_failure(&probe, &failure, &context())
}

#[test]
fn the_name_in_the_challenge_tells_the_naming_mistakes_apart() {
    let short = mismatch("app@web-1");
    assert_eq!(short.cause, Cause::ShortNames);
    assert!(short.fix.contains("RELEASE_DISTRIBUTION=name"));
    assert!(short.fix.contains("RELEASE_NODE=app@<its IP>"));
    assert_eq!(mismatch("app@web-1.example.com").cause, Cause::NameNotIp);
    assert_eq!(mismatch("app@10.0.0.9").cause, Cause::OtherAddress);
    assert_eq!(mismatch("other@10.0.0.5").cause, Cause::WrongNode);
}

#[test]
fn refusals_name_cookie_flags_and_names_in_use() {
    let ctx = context();
    let (p, f) = refused(
        "app@10.0.0.5",
        HandshakeError::ClosedByPeer {
            step: Step::ChallengeAck,
        },
    );
    let cookie = diagnose_failure(&p, &f, &ctx);
    assert_eq!(
        (cookie.step, cookie.cause),
        (CheckStep::Cookie, Cause::CookieMismatch)
    );
    assert!(cookie.evidence.iter().any(|e| e.contains("RELEASE_COOKIE")));
    assert!(
        cookie
            .evidence
            .iter()
            .any(|e| e.contains("beamlink-doctor-0001@10.0.0.1 rejected"))
    );

    let (p, f) = refused(
        "app@10.0.0.5",
        HandshakeError::PeerMissingFlags {
            missing: DistFlags::UNLINK_ID | DistFlags::V4_NC,
        },
    );
    let flags = diagnose_failure(&p, &f, &ctx);
    assert_eq!(
        (flags.step, flags.cause),
        (CheckStep::Flags, Cause::MissingFlags)
    );
    assert!(flags.summary.contains("UNLINK_ID") && flags.summary.contains("OTP 26"));
    let (p, f) = refused(
        "app@10.0.0.5",
        HandshakeError::PeerMissingFlags {
            missing: DistFlags::HANDSHAKE_23,
        },
    );
    assert!(diagnose_failure(&p, &f, &ctx).summary.contains("OTP 25"));

    let (p, f) = refused("app@10.0.0.5", HandshakeError::AlreadyConnected);
    assert_eq!(diagnose_failure(&p, &f, &ctx).cause, Cause::NameInUse);
    let (p, f) = refused("app@10.0.0.5", HandshakeError::NotAllowed);
    assert_eq!(diagnose_failure(&p, &f, &ctx).cause, Cause::NotAllowed);
}

#[test]
fn a_single_address_is_called_a_virtual_ip_only_with_tasks_evidence() {
    let one: Vec<IpAddr> = vec!["10.0.0.2".parse().unwrap()];
    let tasks: Vec<IpAddr> = vec!["10.0.0.5".parse().unwrap(), "10.0.0.6".parse().unwrap()];
    let survey = |tasks_answer| Survey {
        observer: name("d@10.0.0.1"),
        dns: Some(crate::diagnose::DnsAnswer {
            query: "app_web".into(),
            result: Ok(one.clone()),
            tasks: tasks_answer,
        }),
        listings: Vec::new(),
        probes: Vec::new(),
        notes: Vec::new(),
        tls: false,
    };
    let with_tasks = survey(Some(("tasks.app_web".into(), Ok(tasks.clone()))));
    let certain = Context::new(&with_tasks, None);
    let checks = dns_checks(&with_tasks, &certain);
    let vip = checks
        .iter()
        .find(|c| c.cause == Some(Cause::VirtualIp))
        .expect("a virtual IP check");
    assert_eq!(vip.status, CheckStatus::Fail);
    assert!(
        vip.fix
            .as_deref()
            .unwrap_or("")
            .contains("--dns-query tasks.app_web")
    );
    // With that evidence, what EPMD at the virtual IP does not answer says so plainly.
    let at_vip = epmd_failure(
        "10.0.0.2:4369".parse().unwrap(),
        &EpmdProblem::Unreachable("no route to host".into()),
        &certain,
    );
    assert!(
        at_vip.fix.contains("10.0.0.2 is app_web's virtual IP"),
        "{}",
        at_vip.fix
    );
    assert!(at_vip.fix.contains("--dns-query tasks.app_web"));
    assert!(!at_vip.fix.contains("firewall"), "{}", at_vip.fix);
    let timeout = epmd_failure(
        "10.0.0.2:4369".parse().unwrap(),
        &EpmdProblem::Timeout(std::time::Duration::from_secs(2)),
        &certain,
    );
    assert!(
        timeout.summary.contains("virtual IP"),
        "{}",
        timeout.summary
    );
    assert!(timeout.fix.contains("--dns-query tasks.app_web"));

    let without = survey(Some((
        "tasks.app_web".into(),
        Err(DnsError::NoRecords {
            query: "tasks.app_web".into(),
        }),
    )));
    let ctx = Context::new(&without, None);
    assert!(
        dns_checks(&without, &ctx)
            .iter()
            .all(|c| c.status == CheckStatus::Ok)
    );
    // Only a hint in what the EPMD failure at that address says.
    let d = epmd_failure(
        "10.0.0.2:4369".parse().unwrap(),
        &EpmdProblem::Unreachable("refused".into()),
        &ctx,
    );
    assert_eq!(d.cause, Cause::EpmdUnreachable);
    assert!(d.fix.contains("single address") && d.fix.contains("ERL_EPMD_ADDRESS"));
    let elsewhere = epmd_failure(
        "10.0.0.3:4369".parse().unwrap(),
        &EpmdProblem::Unreachable("refused".into()),
        &ctx,
    );
    assert!(!elsewhere.fix.contains("single address"));
}

#[test]
fn epmd_less_mismatches_name_the_port_both_ways() {
    let peer = name("app@10.0.0.5");
    let diagnose = |failure: Failure| {
        let probe = PeerProbe {
            failure: Some(failure.clone()),
            ..PeerProbe::unreached(peer.clone())
        };
        diagnose_failure(&probe, &failure, &context())
    };
    let no_epmd = diagnose(Failure::EpmdLess {
        epmd: "10.0.0.5:4369".parse().unwrap(),
        problem: EpmdProblem::Unreachable("connection refused".into()),
        port: 6789,
    });
    assert_eq!(no_epmd.cause, Cause::EpmdLess);
    assert_eq!(
        no_epmd.summary,
        "no EPMD at 10.0.0.5:4369, but 6789 answers the distribution handshake: pass \
         --dist-port 6789"
    );
    let dist_port = |epmd| {
        diagnose(Failure::DistPort {
            addr: "10.0.0.5:6789".parse().unwrap(),
            reason: "connection refused".into(),
            timed_out: false,
            epmd,
        })
    };
    let registered = dist_port(Some((
        "10.0.0.5:4369".parse().unwrap(),
        vec![("app".to_string(), 41234)],
    )));
    assert_eq!(registered.cause, Cause::UsesEpmd);
    assert!(registered.summary.contains("lists app at port 41234"));
    assert!(registered.fix.contains("drop --dist-port"));
    let other = dist_port(Some(("10.0.0.5:4369".parse().unwrap(), Vec::new())));
    assert_eq!(other.cause, Cause::PortUnreachable);
    assert!(other.summary.contains("an EPMD answers at 10.0.0.5:4369"));
    let nothing = dist_port(None);
    assert_eq!(nothing.cause, Cause::PortUnreachable);
    assert!(nothing.fix.contains("-erl_epmd_port 6789"));
    assert_eq!(Cause::EpmdLess.exit_class().code(), 78);
}
