#![cfg(feature = "interop")]
//! The EPMD client against a real `epmd` (and real `erl` nodes), on free ports.

mod epmd_util;

use beamlink::epmd::{EpmdError, EpmdStep, names, port_please, register};
use beamlink::proto::epmd::{Alive2Request, AliveName, NodeType};
use epmd_util::*;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const T: Duration = Duration::from_secs(5);

fn request(name: &str, port: u16) -> Alive2Request {
    Alive2Request::new(AliveName::new(name).unwrap(), port)
}

fn alive(name: &str) -> AliveName {
    AliveName::new(name).unwrap()
}

#[tokio::test]
async fn register_names_and_port_please() {
    let port = free_port();
    let _epmd = epmd(port, &[]);
    let registration = register(local(port), &request("rusty", 5555), T)
        .await
        .unwrap();
    assert!(
        registration.creation() > 3,
        "epmd hands out 32-bit creations"
    );
    assert_eq!(registration.epmd(), local(port));

    let listed = names(local(port), T).await.unwrap();
    assert_eq!(listed.epmd_port, u32::from(port));
    let lines: Vec<String> = listed.nodes.iter().map(|n| n.to_string()).collect();
    assert_eq!(lines, ["name rusty at port 5555"]);

    let node = port_please(local(port), &alive("rusty"), T)
        .await
        .unwrap()
        .expect("registered");
    assert_eq!(node.port, 5555);
    assert_eq!(node.node_type, NodeType::Hidden);
    assert_eq!((node.highest_version, node.lowest_version), (6, 6));
    assert_eq!(
        port_please(local(port), &alive("nosuch"), T).await.unwrap(),
        None
    );
}

#[tokio::test]
async fn port_please_finds_real_beams() {
    let port = free_port();
    let _epmd = epmd(port, &[]);
    for release in blocking(releases).await {
        let dist = free_port();
        let name = unique("beamy");
        let _node = erl_of(&release, &name, port, Some(dist), None);
        let wanted = name.clone();
        eventually(
            &format!("the OTP {release} BEAM to register"),
            Duration::from_secs(30),
            || {
                let wanted = wanted.clone();
                async move { listed_async(local(port)).await.contains(&wanted) }
            },
        )
        .await;
        let node = port_please(local(port), &alive(&name), T)
            .await
            .unwrap()
            .expect("the BEAM is registered");
        assert_eq!(node.port, dist, "OTP {release}");
        assert_eq!(node.node_type, NodeType::Normal, "OTP {release}");
        assert_eq!(node.highest_version, 6, "OTP {release}");
        println!(
            "OTP {release} registers versions {}..{}",
            node.lowest_version, node.highest_version
        );
    }
}

#[tokio::test]
async fn duplicate_name_is_refused() {
    let port = free_port();
    let _epmd = epmd(port, &[]);
    let _first = register(local(port), &request("dup", 1000), T)
        .await
        .unwrap();
    let err = register(local(port), &request("dup", 1001), T)
        .await
        .unwrap_err();
    assert!(matches!(err, EpmdError::NameTaken { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("name `dup` already registered at 127.0.0.1:{port}")
    );
}

#[tokio::test]
async fn dropping_the_registration_unregisters() {
    let port = free_port();
    let _epmd = epmd(port, &[]);
    let registration = register(local(port), &request("fleeting", 1000), T)
        .await
        .unwrap();
    assert_eq!(listed_async(local(port)).await, ["fleeting"]);
    drop(registration);
    eventually("epmd to drop the name", Duration::from_secs(5), || async {
        listed_async(local(port)).await.is_empty()
    })
    .await;
    // And the name is free again; a remembered name gets the next creation.
    let again = register(local(port), &request("fleeting", 1000), T)
        .await
        .unwrap();
    assert!(again.creation() > 3);
}

#[tokio::test]
async fn registration_reports_epmd_killed() {
    let port = free_port();
    let epmd = epmd(port, &[]);
    let mut registration = register(local(port), &request("orphan", 1000), T)
        .await
        .unwrap();
    epmd.kill();
    let closed = tokio::time::timeout(Duration::from_secs(5), registration.closed())
        .await
        .expect("closed() completes when epmd dies");
    assert!(
        matches!(closed, EpmdError::RegistrationClosed { .. }),
        "{closed:?}"
    );
    assert!(
        closed.to_string().starts_with(&format!(
            "EPMD at 127.0.0.1:{port} dropped the registration of `orphan`"
        )),
        "{closed}"
    );
}

#[tokio::test]
async fn unreachable_epmd_is_named() {
    let port = free_port();
    let err = names(local(port), T).await.unwrap_err();
    assert!(err.is_unreachable());
    assert_eq!(
        err.to_string(),
        format!("EPMD at 127.0.0.1:{port} unreachable: connection refused")
    );
}

/// A fake EPMD that answers every connection with `reply` (or never answers when `None`).
async fn fake_epmd(reply: Option<Vec<u8>>) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut request = [0u8; 64];
            let _ = stream.read(&mut request).await;
            match &reply {
                Some(bytes) => {
                    let _ = stream.write_all(bytes).await;
                }
                None => held.push(stream),
            }
        }
    });
    (addr, task)
}

#[tokio::test]
async fn silent_epmd_times_out_at_the_step() {
    let (addr, task) = fake_epmd(None).await;
    let err = names(addr, Duration::from_millis(300)).await.unwrap_err();
    assert!(
        matches!(
            err,
            EpmdError::Timeout {
                step: EpmdStep::ReadNames,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!("EPMD at {addr} did not answer within 300ms (reading the NAMES reply)")
    );
    let err = register(addr, &request("x", 1), Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        EpmdError::Timeout {
            step: EpmdStep::ReadAlive2,
            ..
        }
    ));
    task.abort();
}

#[tokio::test]
async fn malformed_and_oversized_replies_are_refused() {
    let (addr, task) = fake_epmd(Some(b"\0\0\x11\x11name x at port 12\nGARBAGE".to_vec())).await;
    let err = names(addr, T).await.unwrap_err();
    assert!(matches!(err, EpmdError::Malformed { .. }), "{err:?}");
    let err = register(addr, &request("x", 1), T).await.unwrap_err();
    assert!(matches!(err, EpmdError::Malformed { .. }), "{err:?}");
    task.abort();

    let mut huge = vec![0, 0, 0x11, 0x11];
    huge.extend(std::iter::repeat_n(b'a', 2 << 20));
    let (addr, task) = fake_epmd(Some(huge)).await;
    let err = names(addr, T).await.unwrap_err();
    assert!(
        err.to_string().contains("more than the 1048576 accepted"),
        "{err}"
    );
    let err = port_please(addr, &alive("x"), T).await.unwrap_err();
    assert!(matches!(err, EpmdError::Malformed { .. }), "{err:?}");
    task.abort();

    let (addr, task) = fake_epmd(Some(Vec::new())).await;
    let err = port_please(addr, &alive("x"), T).await.unwrap_err();
    assert!(
        matches!(
            err,
            EpmdError::ClosedEarly {
                step: EpmdStep::ReadPort2,
                ..
            }
        ),
        "{err:?}"
    );
    task.abort();
}
