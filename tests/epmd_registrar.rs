#![cfg(feature = "interop")]
//! The registrar's `--epmd auto|client|serve` policies against a real `epmd` and real BEAMs.
//! The measured durations are printed (run with `--nocapture`), never asserted.

mod epmd_util;

use beamlink::epmd::{
    EpmdError, EpmdKind, EpmdMode, EpmdStatus, Registrar, RegistrarConfig, names,
};
use beamlink::proto::epmd::{Alive2Request, AliveName};
use epmd_util::*;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

const T: Duration = Duration::from_secs(5);

fn config(mode: EpmdMode, port: u16, name: &str) -> RegistrarConfig {
    RegistrarConfig::new(
        mode,
        port,
        Alive2Request::new(AliveName::new(name).unwrap(), 47001),
    )
}

fn kind_of(status: &EpmdStatus) -> Option<EpmdKind> {
    match status {
        EpmdStatus::Registered { kind, .. } => Some(*kind),
        _ => None,
    }
}

/// Waits until the status satisfies `wanted`; returns it and how long that took.
async fn status_becomes(
    status: &mut watch::Receiver<EpmdStatus>,
    limit: Duration,
    wanted: impl Fn(&EpmdStatus) -> bool,
) -> (EpmdStatus, Duration) {
    let start = Instant::now();
    let waited = tokio::time::timeout(limit, status.wait_for(|s| wanted(s)))
        .await
        .map(|seen| seen.expect("registrar alive").clone());
    let seen = waited
        .unwrap_or_else(|_| panic!("status did not change in {limit:?}: {}", *status.borrow()));
    (seen, start.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_without_an_epmd_serves_and_beams_register_with_us() {
    let port = free_port();
    let token = CancellationToken::new();
    let registrar = Registrar::start(config(EpmdMode::Auto, port, "autorust"), &token);
    let status = tokio::time::timeout(T, registrar.registered())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kind_of(&status), Some(EpmdKind::Embedded), "{status}");

    for release in blocking(releases).await {
        let beam = unique("guest");
        let _guest = erl_of(&release, &beam, port, None, None);
        let wanted = beam.clone();
        eventually(
            &format!("the OTP {release} BEAM to register with our EPMD"),
            Duration::from_secs(30),
            || {
                let wanted = wanted.clone();
                async move { listed_async(local(port)).await.contains(&wanted) }
            },
        )
        .await;
        let ping = format!("net_adm:ping(list_to_atom(\"{beam}@127.0.0.1\"))");
        let (rel, pinger) = (release.clone(), unique("pinger"));
        assert_eq!(
            blocking(move || erl_eval_of(&rel, &pinger, port, &ping)).await,
            "pong",
            "OTP {release}"
        );
    }
    assert!(
        listed_async(local(port))
            .await
            .contains(&"autorust".to_owned())
    );

    registrar.shutdown().await;
    assert!(
        !answers(local(port)),
        "the embedded EPMD stops with the registrar"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_takes_over_from_a_killed_epmd_and_the_beam_follows() {
    let port = free_port();
    let epmd = epmd(port, &[]);
    let token = CancellationToken::new();
    let registrar = Registrar::start(config(EpmdMode::Auto, port, "survivor"), &token);
    let status = tokio::time::timeout(T, registrar.registered())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kind_of(&status), Some(EpmdKind::External), "{status}");

    // One BEAM of every release, registered with the real epmd.
    let mut followers = Vec::new();
    for release in blocking(releases).await {
        let beam = unique("follower");
        let node = erl_of(&release, &beam, port, None, None);
        followers.push((release, beam, node));
    }
    let wanted: Vec<String> = followers.iter().map(|(_, b, _)| b.clone()).collect();
    eventually(
        "the BEAMs to register with epmd",
        Duration::from_secs(30),
        || {
            let wanted = wanted.clone();
            async move {
                let listed = listed_async(local(port)).await;
                wanted.iter().all(|w| listed.contains(w))
            }
        },
    )
    .await;

    let mut watch = registrar.status();
    let killed = Instant::now();
    epmd.kill();
    let (status, serving_after) =
        status_becomes(&mut watch, T, |s| kind_of(s) == Some(EpmdKind::Embedded)).await;
    println!("takeover: serving EPMD {serving_after:?} after epmd was killed ({status})");
    let mut back: Vec<Option<Duration>> = vec![None; followers.len()];
    while back.iter().any(Option::is_none) {
        assert!(
            killed.elapsed() < Duration::from_secs(15),
            "BEAMs not back with us 15 s after the kill: {wanted:?} / {back:?}"
        );
        let listed = listed_async(local(port)).await;
        let elapsed = killed.elapsed();
        for (i, w) in wanted.iter().enumerate() {
            if back[i].is_none() && listed.contains(w) {
                back[i] = Some(elapsed);
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for ((release, beam, _), after) in followers.iter().zip(&back) {
        println!(
            "takeover: the OTP {release} BEAM re-registered with us {:?} after the kill",
            after.unwrap()
        );
        let ping = format!("net_adm:ping(list_to_atom(\"{beam}@127.0.0.1\"))");
        let (rel, pinger) = (release.clone(), unique("pinger"));
        assert_eq!(
            blocking(move || erl_eval_of(&rel, &pinger, port, &ping)).await,
            "pong",
            "OTP {release}"
        );
    }
    registrar.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_mode_reregisters_when_epmd_comes_back() {
    let port = free_port();
    let first = epmd(port, &[]);
    let token = CancellationToken::new();
    let registrar = Registrar::start(config(EpmdMode::Client, port, "patient"), &token);
    let before = tokio::time::timeout(T, registrar.registered())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kind_of(&before), Some(EpmdKind::External));

    let mut watch = registrar.status();
    first.kill();
    let (waiting, _) =
        status_becomes(&mut watch, T, |s| matches!(s, EpmdStatus::Waiting { .. })).await;
    // A watch keeps only the latest status: on a loaded machine a retry's failure (refused,
    // or reset by the dying epmd) may replace "dropped the registration" before this task
    // looks. Either way it names the lost EPMD.
    let waiting = waiting.to_string();
    assert!(
        waiting.contains("dropped the registration of `patient`")
            || waiting.contains(&format!("EPMD at 127.0.0.1:{port}")),
        "{waiting}"
    );
    // Client mode never serves: nothing answers on the port while epmd is down.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!answers(local(port)), "client mode must not serve EPMD");
    let current = watch.borrow().clone();
    let EpmdStatus::Waiting { reason } = &current else {
        panic!("expected waiting");
    };
    assert!(reason.is_unreachable(), "{reason}");

    let back = Instant::now();
    let _second = epmd(port, &[]);
    let started = back.elapsed();
    eventually(
        "re-registration with the new epmd",
        Duration::from_secs(10),
        || async { listed_async(local(port)).await == ["patient"] },
    )
    .await;
    println!(
        "client mode: re-registered {:?} after the new epmd was started ({started:?} of that \
         was epmd starting up)",
        back.elapsed()
    );
    let after = watch.borrow().clone();
    assert_eq!(kind_of(&after), Some(EpmdKind::External), "{after}");
    registrar.shutdown().await;
    eventually("unregistration on shutdown", T, || async {
        listed_async(local(port)).await.is_empty()
    })
    .await;
    assert!(matches!(*watch.borrow(), EpmdStatus::Stopped));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_reports_stopped_and_unregisters() {
    let port = free_port();
    let _epmd = epmd(port, &[]);
    let token = CancellationToken::new();
    let registrar = Registrar::start(config(EpmdMode::Client, port, "leaver"), &token);
    tokio::time::timeout(T, registrar.registered())
        .await
        .unwrap()
        .unwrap();
    let watch = registrar.status();
    assert_eq!(listed_async(local(port)).await, ["leaver"]);
    token.cancel();
    registrar.shutdown().await;
    assert!(matches!(*watch.borrow(), EpmdStatus::Stopped));
    eventually("unregistration", T, || async {
        listed_async(local(port)).await.is_empty()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_mode_without_epmd_waits_and_names_the_address() {
    let port = free_port();
    let token = CancellationToken::new();
    let registrar = Registrar::start(config(EpmdMode::Client, port, "hopeful"), &token);
    let mut watch = registrar.status();
    let (status, _) =
        status_becomes(&mut watch, T, |s| matches!(s, EpmdStatus::Waiting { .. })).await;
    assert_eq!(
        status.to_string(),
        format!(
            "not registered, retrying: EPMD at 127.0.0.1:{port} unreachable: connection refused"
        )
    );
    let _epmd = epmd(port, &[]);
    let (status, _) = status_becomes(&mut watch, T, |s| kind_of(s).is_some()).await;
    assert_eq!(kind_of(&status), Some(EpmdKind::External));
    registrar.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_mode_serves_and_waits_when_the_port_is_taken() {
    let port = free_port();
    let token = CancellationToken::new();
    let registrar = Registrar::start(config(EpmdMode::Serve, port, "host"), &token);
    let status = tokio::time::timeout(T, registrar.registered())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kind_of(&status), Some(EpmdKind::Embedded));
    assert_eq!(names(local(port), T).await.unwrap().nodes.len(), 1);
    registrar.shutdown().await;

    let taken = free_port();
    let _epmd = epmd(taken, &[]);
    let registrar = Registrar::start(config(EpmdMode::Serve, taken, "host"), &token);
    let mut watch = registrar.status();
    let (status, _) =
        status_becomes(&mut watch, T, |s| matches!(s, EpmdStatus::Waiting { .. })).await;
    let EpmdStatus::Waiting { reason } = &status else {
        unreachable!()
    };
    assert!(matches!(**reason, EpmdError::Bind { .. }), "{reason}");
    assert!(
        reason
            .to_string()
            .starts_with(&format!("cannot serve EPMD on 0.0.0.0:{taken}: address")),
        "{reason}"
    );
    assert!(
        listed_async(local(taken)).await.is_empty(),
        "serve mode never registers elsewhere"
    );
    registrar.shutdown().await;
}

/// Two beamlinks in auto mode on one port: the first serves, the second registers with it;
/// when the first stops, the second takes the port over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_mode_hands_the_port_over_between_beamlinks() {
    let port = free_port();
    let token = CancellationToken::new();
    let first = Registrar::start(config(EpmdMode::Auto, port, "first"), &token);
    let status = tokio::time::timeout(T, first.registered())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kind_of(&status), Some(EpmdKind::Embedded));
    let second = Registrar::start(config(EpmdMode::Auto, port, "second"), &token);
    let status = tokio::time::timeout(T, second.registered())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kind_of(&status), Some(EpmdKind::External));
    let EpmdStatus::Registered {
        creation: before, ..
    } = status
    else {
        unreachable!()
    };
    let mut watch = second.status();
    let stopping = Instant::now();
    first.shutdown().await;
    let (status, took) =
        status_becomes(&mut watch, T, |s| kind_of(s) == Some(EpmdKind::Embedded)).await;
    println!(
        "second beamlink took the EPMD port over {:?} after the first began to stop \
         ({took:?} after its shutdown returned)",
        stopping.elapsed()
    );
    let EpmdStatus::Registered {
        creation: after, ..
    } = status
    else {
        unreachable!()
    };
    assert_ne!(before, 0);
    assert_ne!(after, 0);
    assert_eq!(listed_async(local(port)).await, ["second"]);
    second.shutdown().await;
}
