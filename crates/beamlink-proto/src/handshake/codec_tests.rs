//! Handshake messages: documented bytes, round trips, malformed input.

use super::*;

fn name(s: &str) -> NodeName {
    NodeName::parse(s).unwrap()
}

#[test]
fn name_message_matches_the_documented_bytes() {
    // `dist_util:send_name/1` for rust@127.0.0.1, flags 0x507070FBC, creation 0x12345678.
    let mut out = BytesMut::new();
    Message::Name {
        flags: DistFlags(0x5_0707_0FBC),
        creation: 0x1234_5678,
        name: name("rust@127.0.0.1"),
    }
    .encode(&mut out);
    let mut expected = vec![
        0x00, 0x1D, 0x4E, 0x00, 0x00, 0x00, 0x05, 0x07, 0x07, 0x0F, 0xBC, 0x12, 0x34, 0x56, 0x78,
        0x00, 0x0E,
    ];
    expected.extend_from_slice(b"rust@127.0.0.1");
    assert_eq!(&out[..], &expected[..]);
    let packet = take_packet(&mut out).unwrap();
    assert!(out.is_empty());
    assert_eq!(
        Message::decode_name(&packet).unwrap(),
        Message::Name {
            flags: DistFlags(0x5_0707_0FBC),
            creation: 0x1234_5678,
            name: name("rust@127.0.0.1"),
        }
    );
}

#[test]
fn every_message_round_trips() {
    let d = Digest([7; 16]);
    let cases = [
        (
            Step::Name,
            Message::OldName {
                flags: DistFlags(0x7fbc),
                name: name("a@b.c"),
            },
        ),
        (Step::Status, Message::Status(Status::OkSimultaneous)),
        (
            Step::Status,
            Message::Status(Status::Named {
                name: "x@h".into(),
                creation: 9,
            }),
        ),
        (Step::AliveAnswer, Message::AliveAnswer(false)),
        (
            Step::Challenge,
            Message::Challenge {
                flags: DistFlags(1 << 40),
                challenge: u32::MAX,
                creation: 4,
                name: name("z@10.0.0.1"),
            },
        ),
        (
            Step::Complement,
            Message::Complement {
                flags_high: 0xd,
                creation: 77,
            },
        ),
        (
            Step::ChallengeReply,
            Message::ChallengeReply {
                challenge: 1,
                digest: d,
            },
        ),
        (Step::ChallengeAck, Message::ChallengeAck { digest: d }),
    ];
    for (step, msg) in cases {
        let mut out = BytesMut::new();
        msg.encode(&mut out);
        let p = take_packet(&mut out).unwrap();
        let decoded = match step {
            Step::Name => Message::decode_name(&p),
            Step::Status => Message::decode_status(&p),
            Step::AliveAnswer => Message::decode_alive_answer(&p),
            Step::Challenge => Message::decode_challenge(&p),
            Step::Complement => Message::decode_complement(&p),
            Step::ChallengeReply => Message::decode_challenge_reply(&p),
            Step::ChallengeAck => Message::decode_challenge_ack(&p),
        };
        assert_eq!(decoded.unwrap(), msg);
    }
}

#[test]
fn malformed_messages_give_typed_errors() {
    assert_eq!(
        Message::decode_name(b""),
        Err(MessageError::TooShort {
            step: Step::Name,
            len: 0
        })
    );
    assert_eq!(
        Message::decode_name(b"X"),
        Err(MessageError::UnexpectedTag {
            step: Step::Name,
            tag: b'X'
        })
    );
    // Name length 0xFFFF with 3 bytes of name.
    let mut m = vec![b'N', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF];
    m.extend_from_slice(b"a@b");
    assert_eq!(
        Message::decode_name(&m),
        Err(MessageError::NameLength { step: Step::Name })
    );
    let mut m = vec![b'N', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3];
    m.extend_from_slice(b"abc");
    assert!(matches!(
        Message::decode_name(&m),
        Err(MessageError::BadName {
            reason: Some(NodeNameError::NoAt),
            ..
        })
    ));
    assert!(matches!(
        Message::decode_status(b"swhatever"),
        Err(MessageError::UnknownStatus { .. })
    ));
    assert!(matches!(
        Message::decode_challenge_ack(b"a123"),
        Err(MessageError::TooShort { .. })
    ));
    assert!(matches!(
        Message::decode_challenge(b"n\0\0\0\0"),
        Err(MessageError::UnexpectedTag { .. })
    ));
}

#[test]
fn packets_wait_for_all_their_bytes() {
    let mut buf = BytesMut::from(&[0u8, 3, b'a', b'b'][..]);
    assert!(take_packet(&mut buf).is_none());
    assert_eq!(buf.len(), 4);
    buf.extend_from_slice(b"c\x00");
    assert_eq!(&take_packet(&mut buf).unwrap()[..], b"abc");
    assert_eq!(&buf[..], b"\x00");
}

#[test]
fn a_bad_name_is_the_source_of_the_handshake_error() {
    use std::error::Error as _;
    let mut m = vec![b'N', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3];
    m.extend_from_slice(b"abc");
    let error = HandshakeError::Malformed(Message::decode_name(&m).unwrap_err());
    let message = error.source().expect("the malformed message");
    let name = message.source().expect("the name's problem");
    assert_eq!(name.to_string(), NodeNameError::NoAt.to_string());
}
