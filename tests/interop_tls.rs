#![cfg(feature = "interop")]
//! TLS distribution against real BEAM nodes started with `-proto_dist inet_tls
//! -ssl_dist_optfile FILE`, for every release in `BEAMLINK_OTP` (25, 27, 29), with TLS 1.2
//! and 1.3: beamlink dials the BEAM (TLS, then the handshake with 4-byte framing) and the
//! BEAM dials beamlink (a test-local accept loop), and the BEAM sees a hidden node that
//! answers `net_adm:ping` and `rpc:call(R, erlang, nodes, [connected])`. Then the failures
//! that must be named: plain against TLS either way, no client certificate, an unknown CA,
//! an expired certificate, a name mismatch. And the binary's exit 78 for TLS settings it
//! cannot use (an unsupported option, a key others can read).
//!
//! The CA and certificates come from `support::Pki` (rcgen; node certificates carry
//! 127.0.0.1 both as an IP SAN and as a DNS SAN, for OTP 25).

mod support;

use beamlink::node::Node;
use beamlink::proto::digest::Cookie;
use beamlink::proto::epmd::{Alive2Request, AliveName};
use beamlink::proto::flags::DistFlags;
use beamlink::proto::handshake::{Acceptor, Framing, Initiator, LocalNode, Status};
use beamlink::proto::node_name::NodeName;
use beamlink::tls::{TlsConfig, TlsError, TlsSession};
use beamlink::transport::handshake::{self, AcceptPolicy};
use beamlink::transport::{DistStream, HandshakeFailure};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};
use support::{BeamNode, Epmd, Otp, Pki, TEST_COOKIE, registered_port, tls_beam, unique_name};
use tokio::net::{TcpListener, TcpStream};

const SETUP: Duration = Duration::from_secs(7);

/// Evaluates `expr` on the BEAM. The call blocks until the BEAM answers, which may need
/// this runtime (the BEAM talks to our node meanwhile): `block_in_place` lets the other
/// workers run.
async fn eval(beam: &BeamNode, expr: String) -> String {
    tokio::task::block_in_place(|| beam.eval(&expr).unwrap())
}

fn local(node: &Node) -> LocalNode {
    LocalNode {
        name: node.name().clone(),
        flags: node.flags(),
        creation: node.creation(),
        cookie: Cookie::new(TEST_COOKIE),
    }
}

async fn oneshot_node(alive: &str) -> Node {
    Node::builder()
        .name(format!("{}@127.0.0.1", unique_name(alive)))
        .cookie(Cookie::new(TEST_COOKIE))
        .dial_only()
        .start()
        .await
        .unwrap()
}

/// TLS, then the distribution handshake, as beamlink's dialler will run them.
async fn dial(
    tls: &TlsConfig,
    node: &Node,
    peer: &NodeName,
    addr: SocketAddr,
) -> Result<
    (
        TlsSession,
        beamlink::transport::handshake::Handshaken<DistStream>,
    ),
    String,
> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let stream = beamlink::tls::stream::connect(tls, tcp, peer, SETUP)
        .await
        .map_err(|e| format!("TLS: {e}"))?;
    let stream = DistStream::tls(stream);
    let session = stream.tls_session().expect("a TLS stream");
    let machine = Initiator::new(local(node), peer.clone(), 0x7e57);
    let done = handshake::initiate_framed(stream, addr, machine, Framing::Tls, SETUP, || true)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    Ok((session, done))
}

struct AllowAll;

impl AcceptPolicy for AllowAll {
    fn status_for(&mut self, _: &NodeName, _: DistFlags) -> Status {
        Status::Ok
    }
    fn replace_old(&mut self, _: &NodeName) {}
}

/// Asserts what a BEAM sees of a connected beamlink `r`.
async fn assert_beam_sees(beam: &BeamNode, r: &NodeName, what: &str) {
    let r = format!("'{}'", r.as_str());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let hidden = eval(beam, format!("lists:member({r}, nodes(hidden))")).await;
        if hidden == "true" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {r} never in nodes(hidden)"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        eval(beam, format!("net_adm:ping({r})")).await,
        "pong",
        "{what}"
    );
    let nodes = eval(beam, format!("rpc:call({r}, erlang, nodes, [connected])")).await;
    assert!(
        nodes.contains(beam.node_name()),
        "{what}: rpc nodes(connected) = {nodes}"
    );
    let visible = eval(beam, format!("lists:member({r}, nodes())")).await;
    assert_eq!(visible, "false", "{what}: beamlink must be hidden");
}

/// beamlink dials the BEAM with `tls`, and the BEAM sees it.
async fn beamlink_dials(beam: &BeamNode, epmd: &Epmd, tls: &TlsConfig, what: &str) -> TlsSession {
    let node = oneshot_node("tlsdial").await;
    let peer = NodeName::parse(beam.node_name()).unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], registered_port(epmd, beam.node_name())));
    let (session, done) = dial(tls, &node, &peer, addr)
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(node.adopt(done, addr).is_some(), "{what}: not adopted");
    assert_beam_sees(beam, node.name(), what).await;
    node.shutdown().await;
    session
}

/// The BEAM dials beamlink, which accepts with `tls` in a test-local accept loop (the
/// binary's listener is shown in `interop_tls_cli.rs`).
async fn beam_dials(beam: &BeamNode, epmd: &Epmd, tls: &TlsConfig, what: &str) -> TlsSession {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let alive = unique_name("tlsacc");
    let registration = beamlink::epmd::client::register(
        SocketAddr::from(([127, 0, 0, 1], epmd.port())),
        &Alive2Request::new(AliveName::new(&alive).unwrap(), port),
        SETUP,
    )
    .await
    .unwrap();
    // The test's own accept loop below serves the port registered above.
    let node = Node::builder()
        .name(format!("{alive}@127.0.0.1"))
        .cookie(Cookie::new(TEST_COOKIE))
        .dial_only()
        .creation(registration.creation())
        .start()
        .await
        .unwrap();
    let server = tls.server().unwrap();
    let acceptor_node = node.clone();
    let accepted = tokio::spawn(async move {
        let (tcp, addr) = listener.accept().await.unwrap();
        let stream = beamlink::tls::stream::accept(server, tcp, SETUP)
            .await
            .map_err(|e| format!("TLS: {e}"))?;
        let stream = DistStream::tls(stream);
        let session = stream.tls_session().expect("a TLS stream");
        let machine = Acceptor::new(local(&acceptor_node), 0xacce);
        let done =
            handshake::accept_framed(stream, addr, machine, Framing::Tls, SETUP, &mut AllowAll)
                .await
                .map_err(|e| format!("handshake: {e}"))?;
        acceptor_node
            .adopt(done, addr)
            .ok_or_else(|| "not adopted".to_string())?;
        Ok::<_, String>(session)
    });
    let r = format!("'{}'", node.name().as_str());
    let ping = eval(beam, format!("net_adm:ping({r})")).await;
    let session = accepted
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{what}: {e} (BEAM ping: {ping})"));
    assert_eq!(ping, "pong", "{what}");
    assert_beam_sees(beam, node.name(), what).await;
    node.shutdown().await;
    drop(registration);
    session
}

fn expect_version(session: &TlsSession, version: &str, what: &str) {
    assert_eq!(session.version, version, "{what}: {session:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn beamlink_joins_tls_clusters_in_both_roles() {
    let pki = Pki::new();
    for otp in Otp::from_env() {
        let epmd = Epmd::start_with(otp);
        // Without `versions`: OTP 25 and 27 speak TLS 1.2 only, OTP 29 negotiates TLS 1.3
        // and offers X25519MLKEM768 first. Then the other version, named in the file.
        let (default_version, other) = match otp {
            Otp::V29 => ("TLSv1_3", ("tlsv1.2", "TLSv1_2")),
            _ => ("TLSv1_2", ("tlsv1.3", "TLSv1_3")),
        };
        for (versions, expected) in [(None, default_version), (Some(other.0), other.1)] {
            let optfile = pki.beam_optfile(versions);
            let beam = tls_beam(otp, &epmd, &optfile);
            let what = format!("{otp} versions {versions:?}");

            // Dial with the BEAM's own option file.
            let s = beamlink_dials(
                &beam,
                &epmd,
                &pki.optfile(&optfile),
                &format!("{what}, beamlink dials"),
            )
            .await;
            expect_version(&s, expected, &what);
            eprintln!("{what}: beamlink dials: {s:?}");
            if otp == Otp::V29 && versions.is_none() {
                assert_eq!(s.key_exchange.as_deref(), Some("X25519MLKEM768"), "{what}");
            }

            // Accept with the PEM flags.
            let s = beam_dials(
                &beam,
                &epmd,
                &pki.pem(Some("node"), "ca.pem"),
                &format!("{what}, BEAM dials"),
            )
            .await;
            expect_version(&s, expected, &what);
            eprintln!("{what}: BEAM dials: {s:?}");
            if otp == Otp::V29 && versions.is_none() {
                // aws-lc-rs takes OTP 29's first key share: no HelloRetryRequest.
                assert_eq!(s.key_exchange.as_deref(), Some("X25519MLKEM768"), "{what}");
            }
            beam.kill();
        }
    }
}

fn failure_text(otp: Otp, case: &str, r: Result<(TlsSession, impl Sized), String>) -> String {
    match r {
        Ok((s, _)) => panic!("{otp} {case}: expected a failure, got a connection ({s:?})"),
        Err(e) => {
            eprintln!("{otp} {case}: {e}");
            e
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn plain_tls_and_certificate_failures_are_named() {
    let pki = Pki::new();
    for otp in Otp::from_env() {
        let epmd = Epmd::start_with(otp);
        let optfile = pki.beam_optfile(None);
        let beam = tls_beam(otp, &epmd, &optfile);
        let peer = NodeName::parse(beam.node_name()).unwrap();
        let addr = SocketAddr::from(([127, 0, 0, 1], registered_port(&epmd, beam.node_name())));
        let node = oneshot_node("tlsfail").await;

        // Plain TCP distribution to a TLS node: its alert names the cause at once.
        let started = Instant::now();
        let tcp = TcpStream::connect(addr).await.unwrap();
        let machine = Initiator::new(local(&node), peer.clone(), 1);
        let e: HandshakeFailure = handshake::initiate(tcp, addr, machine, SETUP, || true)
            .await
            .unwrap_err();
        eprintln!("{otp} plain to TLS: {e}");
        assert!(e.is_tls_peer(), "{otp}: {e}");
        assert!(e.to_string().contains("speaks TLS distribution"), "{e}");
        assert!(e.to_string().contains("--tls-optfile"), "{e}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{otp}: {:?}",
            started.elapsed()
        );

        // No client certificate: the BEAM (fail_if_no_peer_cert) refuses; TLS 1.2 says so
        // during the TLS handshake, TLS 1.3 after it, while the distribution handshake reads.
        let e = failure_text(
            otp,
            "no client certificate",
            dial(&pki.pem(None, "ca.pem"), &node, &peer, addr).await,
        );
        assert!(
            e.contains("requires a client certificate") || e.contains("handshake_failure"),
            "{otp}: {e}"
        );

        // A BEAM certificate from a CA we do not trust.
        let e = failure_text(
            otp,
            "unknown CA",
            dial(&pki.pem(Some("node"), "other-ca.pem"), &node, &peer, addr).await,
        );
        assert!(e.contains("does not chain to our CA"), "{otp}: {e}");

        // Our certificate from a CA the BEAM does not trust.
        let e = failure_text(
            otp,
            "our CA unknown to the BEAM",
            dial(&pki.pem(Some("foreign"), "ca.pem"), &node, &peer, addr).await,
        );
        assert!(
            e.contains("unknown_ca") || e.contains("refused"),
            "{otp}: {e}"
        );

        // Our certificate has expired.
        let e = failure_text(
            otp,
            "expired",
            dial(&pki.pem(Some("expired"), "ca.pem"), &node, &peer, addr).await,
        );
        assert!(e.contains("expired") || e.contains("refused"), "{otp}: {e}");

        // The BEAM's certificate does not carry the name we check.
        let d = pki.dir.display();
        pki.write(
            "wrong-name.conf",
            &format!(
                r#"[{{client, [{{certfile, "{d}/node.pem"}}, {{keyfile, "{d}/node.key"}}, {{cacertfile, "{d}/ca.pem"}}, {{server_name_indication, "wrong.example"}}]}}]."#
            ),
            0o644,
        );
        let e = failure_text(
            otp,
            "name mismatch",
            dial(
                &pki.optfile(&pki.path("wrong-name.conf")),
                &node,
                &peer,
                addr,
            )
            .await,
        );
        assert!(e.contains("not valid for \"wrong.example\""), "{otp}: {e}");
        assert!(e.contains("IP SAN"), "{otp}: {e}");
        beam.kill();

        // TLS to a plain node: no TLS answer; the plain node waits for 5 635 bytes.
        let plain = BeamNode::builder(otp, epmd.port())
            .name(unique_name("plainbeam"))
            .start();
        let peer = NodeName::parse(plain.node_name()).unwrap();
        let addr = SocketAddr::from(([127, 0, 0, 1], registered_port(&epmd, plain.node_name())));
        let tcp = TcpStream::connect(addr).await.unwrap();
        let short = Duration::from_secs(2);
        let e = beamlink::tls::stream::connect(&pki.pem(Some("node"), "ca.pem"), tcp, &peer, short)
            .await
            .unwrap_err();
        eprintln!("{otp} TLS to plain: {e}");
        assert!(
            matches!(e, TlsError::NoTlsAnswer { closed: false, .. }),
            "{otp}: {e}"
        );
        assert!(e.to_string().contains("plain TCP distribution"), "{e}");
        plain.kill();
        node.shutdown().await;
    }
}

/// Runs `beamlink ping` with `args` and `env`, expecting exit 78; gives stderr.
fn ping_config_error(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut command = support::beamlink_command(&[&["ping", "nobody@127.0.0.1"], args].concat());
    command
        .env("BEAMLINK_COOKIE", TEST_COOKIE)
        .env_remove("BEAMLINK_TLS_OPTFILE")
        .env_remove("BEAMLINK_TLS_CERT")
        .env_remove("BEAMLINK_TLS_KEY")
        .env_remove("BEAMLINK_TLS_CA")
        .env_remove("BEAMLINK_TLS_VERIFY")
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null());
    let out = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(78), "{args:?}: {stderr}");
    stderr
}

#[test]
fn bad_tls_settings_stop_the_binary_with_exit_78() {
    let pki = Pki::new();
    let cert = pki.path("node.pem").display().to_string();
    let key = pki.path("node.key").display().to_string();
    let ca = pki.path("ca.pem").display().to_string();
    let pem = ["--tls-cert", &cert, "--tls-key", &key, "--tls-ca", &ca];

    // An option beamlink does not support is named, from the flag and from the variable.
    pki.write("dh.conf", "[{server, [{dhfile, \"/x.pem\"}]}].", 0o644);
    let optfile = pki.path("dh.conf").display().to_string();
    let e = ping_config_error(&["--tls-optfile", &optfile], &[]);
    assert!(e.contains("dhfile is not supported"), "{e}");
    let e = ping_config_error(&[], &[("BEAMLINK_TLS_OPTFILE", &optfile)]);
    assert!(e.contains("dhfile is not supported"), "{e}");

    // TLS 1.3 only with a TLS 1.2 option: refused with the reason OTP keeps to itself.
    pki.write(
        "reneg.conf",
        "[{client, [{versions, ['tlsv1.3']}, {secure_renegotiate, true}]}].",
        0o644,
    );
    let reneg = pki.path("reneg.conf").display().to_string();
    let e = ping_config_error(&["--tls-optfile", &reneg], &[]);
    assert!(e.contains("applies to TLS 1.2 only"), "{e}");

    // A key readable by others: the fix, and nothing of the key.
    std::fs::set_permissions(pki.path("node.key"), std::fs::Permissions::from_mode(0o640)).unwrap();
    let e = ping_config_error(&pem, &[]);
    assert!(e.contains("chmod 600") && e.contains("mode: 0400"), "{e}");
    assert!(!e.contains("PRIVATE KEY"), "{e}");
    // The same files from the variables, as for every other option.
    let env = [
        ("BEAMLINK_TLS_CERT", cert.as_str()),
        ("BEAMLINK_TLS_KEY", key.as_str()),
        ("BEAMLINK_TLS_CA", ca.as_str()),
    ];
    let e = ping_config_error(&[], &env);
    assert!(e.contains("chmod 600") && e.contains("mode: 0400"), "{e}");
    std::fs::set_permissions(pki.path("node.key"), std::fs::Permissions::from_mode(0o600)).unwrap();

    // --tls-verify alone turns nothing on.
    let e = ping_config_error(&["--tls-verify", "none"], &[]);
    assert!(e.contains("--tls-verify needs TLS"), "{e}");
    let e = ping_config_error(&[], &[("BEAMLINK_TLS_VERIFY", "none")]);
    assert!(e.contains("--tls-verify needs TLS"), "{e}");

    // `run` with an option file that has no server certificate cannot accept over TLS.
    pki.write(
        "client-only.conf",
        &format!(
            "[{{client, [{{cacertfile, \"{}\"}}]}}].",
            pki.path("ca.pem").display()
        ),
        0o644,
    );
    let client_only = pki.path("client-only.conf").display().to_string();
    let out = support::beamlink_oneshot(
        &[
            "run",
            "--name",
            "tlsrun@127.0.0.1",
            "--tls-optfile",
            &client_only,
        ],
        Some(TEST_COOKIE),
    );
    let e = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{e}");
    assert!(e.contains("no certificate to present"), "{e}");
}
