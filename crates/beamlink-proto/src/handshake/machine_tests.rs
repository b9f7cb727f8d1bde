//! Both state machines run against each other, and against the messages a BEAM sends.

use super::*;
use crate::digest::Cookie;
use crate::flags::DistFlags;
use crate::node_name::NodeName;
use bytes::BytesMut;

fn local(name: &str, cookie: &str, creation: u32) -> LocalNode {
    LocalNode {
        name: NodeName::parse(name).unwrap(),
        flags: DistFlags::BEAMLINK_DEFAULT,
        creation,
        cookie: Cookie::new(cookie),
    }
}

/// Runs both machines against each other; returns what each side ended with.
fn run(
    a_cookie: &str,
    b_cookie: &str,
    dial: &str,
) -> (
    Result<Established, HandshakeError>,
    Option<Result<Established, HandshakeError>>,
) {
    let mut a = Initiator::new(
        local("a@10.0.0.1", a_cookie, 11),
        NodeName::parse(dial).unwrap(),
        0xA,
    );
    let mut b = Acceptor::new(local("b@10.0.0.2", b_cookie, 22), 0xB);
    let (mut to_b, mut to_a) = (BytesMut::new(), BytesMut::new());
    a.start(&mut to_b);
    let mut a_result = None;
    let mut b_result = None;
    for _ in 0..10 {
        while let Some(p) = take_packet(&mut to_b) {
            match b.receive(&p, &mut to_a) {
                Ok(AcceptorStep::NameReceived { .. }) => {
                    b.send_status(Status::Ok, &mut to_a).unwrap()
                }
                Ok(AcceptorStep::Done(e)) => b_result = Some(Ok(e)),
                Ok(_) => {}
                Err(e) => b_result = Some(Err(e)),
            }
        }
        if b_result.as_ref().is_some_and(|r| r.is_err()) {
            // The BEAM closes silently on a bad digest.
            to_a.clear();
            a_result.get_or_insert(Err(a.closed_by_peer()));
        }
        while let Some(p) = take_packet(&mut to_a) {
            match a.receive(&p, &mut to_b) {
                Ok(InitiatorStep::Done(e)) => a_result = Some(Ok(e)),
                Ok(_) => {}
                Err(e) => a_result = Some(Err(e)),
            }
        }
    }
    (a_result.unwrap(), b_result)
}

#[test]
fn both_sides_agree_on_the_connection() {
    let (a, b) = run("c", "c", "b@10.0.0.2");
    let (a, b) = (a.unwrap(), b.unwrap().unwrap());
    assert_eq!(a.peer.as_str(), "b@10.0.0.2");
    assert_eq!(b.peer.as_str(), "a@10.0.0.1");
    assert_eq!((a.peer_creation, b.peer_creation), (22, 11));
    assert_eq!(a.flags, b.flags);
    assert!(a.flags.is_hidden());
}

#[test]
fn wrong_cookie_is_refused_by_the_acceptor() {
    let (a, b) = run("c", "other", "b@10.0.0.2");
    assert_eq!(
        b.unwrap().unwrap_err(),
        HandshakeError::CookieMismatch {
            step: Step::ChallengeReply
        }
    );
    let a = a.unwrap_err();
    assert_eq!(
        a.to_string(),
        "rejected our challenge reply: cookie mismatch"
    );
}

#[test]
fn the_challenge_must_come_from_the_name_we_dialled() {
    let (a, _) = run("c", "c", "b@localhost.local");
    assert!(matches!(a, Err(HandshakeError::NameMismatch { .. })));
}

#[test]
fn peers_missing_otp26_flags_get_not_allowed() {
    let mut b = Acceptor::new(local("b@h.x", "c", 1), 5);
    let mut msg = BytesMut::new();
    Message::Name {
        flags: DistFlags::MANDATORY_25,
        creation: 3,
        name: NodeName::parse("old@h.x").unwrap(),
    }
    .encode(&mut msg);
    let p = take_packet(&mut msg).unwrap();
    let mut out = BytesMut::new();
    let err = b.receive(&p, &mut out).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot handle [\"UNLINK_ID\", \"V4_NC\"], required since OTP 26"
    );
    let status = take_packet(&mut out).unwrap();
    assert_eq!(&status[..], b"snot_allowed");
}

#[test]
fn old_name_message_is_completed_by_a_complement() {
    let mut b = Acceptor::new(local("b@h.x", "c", 1), 5);
    let mut msg = BytesMut::new();
    let flags = DistFlags::BEAMLINK_DEFAULT;
    Message::OldName {
        flags,
        name: NodeName::parse("j@h.x").unwrap(),
    }
    .encode(&mut msg);
    let mut out = BytesMut::new();
    let step = b
        .receive(&take_packet(&mut msg).unwrap(), &mut out)
        .unwrap();
    assert!(matches!(step, AcceptorStep::NameReceived { .. }));
    b.send_status(Status::Ok, &mut out).unwrap();
    assert_eq!(b.awaiting(), Step::Complement);
    Message::Complement {
        flags_high: (flags.0 >> 32) as u32,
        creation: 99,
    }
    .encode(&mut msg);
    let step = b
        .receive(&take_packet(&mut msg).unwrap(), &mut out)
        .unwrap();
    assert_eq!(step, AcceptorStep::Continue);
    Message::ChallengeReply {
        challenge: 8,
        digest: Digest::compute(&Cookie::new("c"), 5),
    }
    .encode(&mut msg);
    let AcceptorStep::Done(e) = b
        .receive(&take_packet(&mut msg).unwrap(), &mut out)
        .unwrap()
    else {
        panic!("not done")
    };
    assert_eq!(e.peer_creation, 99);
    assert_eq!(e.peer_flags, flags);
}

#[test]
fn alive_is_answered_and_replaces_the_old_link() {
    let mut b = Acceptor::new(local("b@h.x", "c", 1), 5);
    let mut a = Initiator::new(local("a@h.x", "c", 2), NodeName::parse("b@h.x").unwrap(), 6);
    let (mut to_b, mut to_a) = (BytesMut::new(), BytesMut::new());
    a.start(&mut to_b);
    let step = b
        .receive(&take_packet(&mut to_b).unwrap(), &mut to_a)
        .unwrap();
    assert!(matches!(step, AcceptorStep::NameReceived { .. }));
    b.send_status(Status::Alive, &mut to_a).unwrap();
    let step = a
        .receive(&take_packet(&mut to_a).unwrap(), &mut to_b)
        .unwrap();
    assert_eq!(step, InitiatorStep::Alive);
    a.answer_alive(true, &mut to_b).unwrap();
    let step = b
        .receive(&take_packet(&mut to_b).unwrap(), &mut to_a)
        .unwrap();
    assert_eq!(step, AcceptorStep::ReplaceOld);
    assert_eq!(b.awaiting(), Step::ChallengeReply);
}

#[test]
fn nok_and_not_allowed_end_the_initiator() {
    for (status, err) in [
        (Status::Nok, HandshakeError::SimultaneousLost),
        (Status::NotAllowed, HandshakeError::NotAllowed),
    ] {
        let mut a = Initiator::new(local("a@h.x", "c", 2), NodeName::parse("b@h.x").unwrap(), 6);
        let mut out = BytesMut::new();
        a.start(&mut out);
        out.clear();
        let mut msg = BytesMut::new();
        Message::Status(status).encode(&mut msg);
        let p = take_packet(&mut msg).unwrap();
        assert_eq!(a.receive(&p, &mut out), Err(err));
    }
}

#[test]
fn messages_out_of_turn_are_errors_not_panics() {
    let mut a = Initiator::new(local("a@h.x", "c", 2), NodeName::parse("b@h.x").unwrap(), 6);
    let mut out = BytesMut::new();
    assert!(a.receive(b"sok", &mut out).is_err());
    let mut b = Acceptor::new(local("b@h.x", "c", 1), 5);
    assert!(b.send_status(Status::Ok, &mut out).is_err());
    assert!(b.receive(b"r", &mut out).is_err());
    assert!(b.receive(b"N", &mut out).is_err());
}

/// The name message of `erl -name undefined@127.0.0.1 -dist_listen false` (OTP 29.1),
/// captured: flags with NAME_ME, creation 0, and only the host.
const NAME_ME_FROM_OTP29: &str = "4e0000006f07df7fbc0000000000093132372e302e302e31";

#[test]
fn a_name_me_initiator_is_named_then_challenged() {
    let msg: Vec<u8> = (0..NAME_ME_FROM_OTP29.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&NAME_ME_FROM_OTP29[i..i + 2], 16).unwrap())
        .collect();
    let mut acceptor = Acceptor::new(local("b@127.0.0.1", "c", 9), 77);
    let mut out = BytesMut::new();
    let step = acceptor.receive(&msg, &mut out).unwrap();
    let AcceptorStep::NameMe { host, flags } = step else {
        panic!("{step:?}")
    };
    assert_eq!(host, "127.0.0.1");
    assert!(flags.contains(DistFlags::NAME_ME));
    assert_eq!(acceptor.peer(), None);
    // Unnamed, it may not simply go on; the name must be on its host.
    assert!(acceptor.send_status(Status::Ok, &mut out).is_err());
    let elsewhere = NodeName::parse("X1@10.0.0.1").unwrap();
    assert!(acceptor.send_named(elsewhere, 5, &mut out).is_err());
    assert!(out.is_empty());

    let name = NodeName::parse("3BK0KCJJ0Q18O@127.0.0.1").unwrap();
    acceptor
        .send_named(name.clone(), 0x1234_5678, &mut out)
        .unwrap();
    // 's' "named:" Len:16 Name Creation:32, as dist_util:send_status/2 writes it.
    let status = take_packet(&mut out).unwrap();
    let mut expected = b"snamed:".to_vec();
    expected.extend_from_slice(&(name.as_str().len() as u16).to_be_bytes());
    expected.extend_from_slice(name.as_str().as_bytes());
    expected.extend_from_slice(&0x1234_5678u32.to_be_bytes());
    assert_eq!(&status[..], &expected[..]);
    assert_eq!(
        Message::decode_status(&status),
        Ok(Message::Status(Status::Named {
            name: name.as_str().to_string(),
            creation: 0x1234_5678
        }))
    );
    // The challenge echoes NAME_ME: the initiator takes the name only if the chosen flags
    // say so (dist_util:do_setnode/1).
    let challenge = take_packet(&mut out).unwrap();
    let Ok(Message::Challenge { flags, .. }) = Message::decode_challenge(&challenge) else {
        panic!("no challenge")
    };
    assert!(flags.contains(DistFlags::NAME_ME));
    let mut reply = BytesMut::new();
    Message::ChallengeReply {
        challenge: 5,
        digest: Digest::compute(&Cookie::new("c"), 77),
    }
    .encode(&mut reply);
    let reply = take_packet(&mut reply).unwrap();
    let AcceptorStep::Done(done) = acceptor.receive(&reply, &mut out).unwrap() else {
        panic!("not done")
    };
    assert_eq!(done.peer, name);
    assert_eq!(done.peer_creation, 0x1234_5678);
}

#[test]
fn a_name_me_host_must_be_a_bare_host() {
    for host in ["", "a@b"] {
        let mut msg = vec![b'N'];
        msg.extend_from_slice(&(DistFlags::MANDATORY.0 | DistFlags::NAME_ME.0).to_be_bytes());
        msg.extend_from_slice(&0u32.to_be_bytes());
        msg.extend_from_slice(&(host.len() as u16).to_be_bytes());
        msg.extend_from_slice(host.as_bytes());
        assert!(matches!(
            Message::decode_name(&msg),
            Err(MessageError::BadName { .. })
        ));
    }
}
