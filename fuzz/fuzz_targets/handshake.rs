//! The distribution handshake (`proto::handshake`): every `Message::decode_*` function on every
//! packet, and the `Initiator` / `Acceptor` state machines fed the packet stream as the peer's
//! side of the connection (ecosystem.md C3).
//!
//! Input: `[mode, challenge:4, stream..]`. `stream` is what the peer sends: 2-byte-length
//! packets, split with `take_packet` as the transport does. `mode` bit 0 picks the role
//! (0 = we dial `peer@127.0.0.1` as `beamlink@127.0.0.1`; 1 = we accept as
//! `peer@127.0.0.1`), bits 1..3 the status the acceptor answers a name with, bit 4 whether the
//! initiator answers `alive` with true. `challenge` is our challenge: with the one of a
//! recorded transcript (fixtures/handshake) and its cookie, the recorded messages complete
//! the handshake, so the fuzzer starts from a full exchange.
//!
//! Checked: no panic; each step returns a typed result; after an error or `Done`, every
//! further message is refused; what we send decodes with the peer's decoder; no error text
//! or `Debug` output contains the cookie; decoded messages re-encode and decode to the same
//! message.
#![no_main]

use beamlink::proto::digest::Cookie;
use beamlink::proto::flags::DistFlags;
use beamlink::proto::handshake::{
    Acceptor, AcceptorStep, HandshakeError, Initiator, InitiatorStep, LocalNode, MAX_MESSAGE,
    Message, MessageError, Status, take_packet,
};
use beamlink::proto::node_name::NodeName;
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

/// The throw-away cookie of the recorded fixtures (fixtures/README.md).
const COOKIE: &[u8] = b"beamlink-fixture-cookie";

fn local(name: &str) -> LocalNode {
    LocalNode {
        name: NodeName::parse(name).unwrap(),
        flags: DistFlags::BEAMLINK_DEFAULT,
        creation: 0x1234_5678,
        cookie: Cookie::new(COOKIE),
    }
}

thread_local! {
    /// Everything formatted during one input, searched for the cookie once at the end.
    static OUTPUT: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

fn no_cookie(text: String) {
    OUTPUT.with_borrow_mut(|out| {
        out.push_str(&text);
        out.push('\n');
    });
}

/// True if `haystack` holds the cookie. Compares the first byte before the rest: a `bcmp` per
/// position is what libFuzzer intercepts, and made this target five times slower.
fn holds_cookie(haystack: &[u8]) -> bool {
    haystack
        .windows(COOKIE.len())
        .any(|w| w[0] == COOKIE[0] && w == COOKIE)
}

/// Checks what was formatted for this input: a peer that sends the cookie's text may see it
/// quoted back in an error about its own message, which is no leak.
fn check_output(input: &[u8]) {
    let text = OUTPUT.with_borrow_mut(std::mem::take);
    if !holds_cookie(input) {
        assert!(!holds_cookie(text.as_bytes()), "cookie in output: {text}");
    }
}

fn report(e: &HandshakeError) {
    no_cookie(format!("{e} {e:?}"));
}

type Decode = fn(&[u8]) -> Result<Message, MessageError>;

const DECODERS: [Decode; 7] = [
    Message::decode_name,
    Message::decode_status,
    Message::decode_alive_answer,
    Message::decode_challenge,
    Message::decode_complement,
    Message::decode_challenge_reply,
    Message::decode_challenge_ack,
];

/// Every decoder on `packet`; what decodes re-encodes into a packet that decodes the same.
fn decode_all(packet: &[u8]) {
    for decode in DECODERS {
        match decode(packet) {
            Ok(msg) => {
                let mut out = BytesMut::new();
                msg.encode(&mut out);
                let again = take_packet(&mut out).expect("encode writes one whole packet");
                assert!(out.is_empty());
                assert_eq!(decode(&again), Ok(msg));
            }
            Err(e) => no_cookie(format!("{e} {e:?}")),
        }
    }
}

/// What we send must be readable by the peer's decoder for that step.
fn sent_decodes(out: &mut BytesMut, decode: &[Decode]) {
    let mut i = 0;
    while let Some(packet) = take_packet(out) {
        let d = decode.get(i).or(decode.last()).expect("a decoder");
        if let Err(e) = d(&packet) {
            panic!("we sent a packet the peer cannot decode: {e}");
        }
        i += 1;
    }
    assert!(out.is_empty(), "we send whole packets");
}

fn status_for(bits: u8) -> Status {
    match bits & 7 {
        0 | 6 => Status::Ok,
        1 => Status::OkSimultaneous,
        2 => Status::Nok,
        3 => Status::NotAllowed,
        4 => Status::Alive,
        _ => Status::Named {
            name: "x@y".into(),
            creation: 1,
        },
    }
}

fn run_initiator(stream: &mut BytesMut, challenge: u32, answer_alive: bool) {
    let peer = NodeName::parse("peer@127.0.0.1").unwrap();
    let mut hs = Initiator::new(local("beamlink@127.0.0.1"), peer, challenge);
    let mut out = BytesMut::new();
    hs.start(&mut out);
    sent_decodes(&mut out, &[Message::decode_name]);
    let mut over = false;
    while let Some(packet) = take_packet(stream) {
        let step = hs.receive(&packet, &mut out);
        if over {
            assert!(step.is_err(), "a finished handshake takes no more messages");
            assert!(out.is_empty());
        }
        match step {
            Ok(InitiatorStep::Continue) => {
                sent_decodes(&mut out, &[Message::decode_challenge_reply]);
            }
            Ok(InitiatorStep::Alive) => {
                assert!(out.is_empty());
                match hs.answer_alive(answer_alive, &mut out) {
                    Ok(()) => {}
                    Err(e) => {
                        report(&e);
                        over = true;
                    }
                }
                sent_decodes(&mut out, &[Message::decode_alive_answer]);
            }
            Ok(InitiatorStep::Done(est)) => {
                assert!(out.is_empty(), "the initiator sends nothing after the ack");
                no_cookie(format!("{est:?}"));
                over = true;
            }
            Err(e) => {
                report(&e);
                out.clear();
                over = true;
            }
        }
    }
    report(&hs.closed_by_peer());
    no_cookie(format!("{hs:?} {}", hs.awaiting()));
}

fn run_acceptor(stream: &mut BytesMut, challenge: u32, status_bits: u8) {
    let mut hs = Acceptor::new(local("peer@127.0.0.1"), challenge);
    let mut out = BytesMut::new();
    let mut over = false;
    while let Some(packet) = take_packet(stream) {
        let step = hs.receive(&packet, &mut out);
        if over {
            assert!(step.is_err(), "a finished handshake takes no more messages");
            assert!(out.is_empty());
        }
        match step {
            Ok(AcceptorStep::NameReceived { .. }) => {
                assert!(out.is_empty());
                // `named:` goes only to an initiator that asked for a name (NameMe below).
                let status = match status_for(status_bits) {
                    Status::Named { .. } => Status::Ok,
                    status => status,
                };
                let goes_on = matches!(status, Status::Ok | Status::OkSimultaneous | Status::Alive);
                hs.send_status(status, &mut out)
                    .expect("a status is due after the name");
                sent_decodes(
                    &mut out,
                    &[Message::decode_status, Message::decode_challenge],
                );
                if !goes_on {
                    over = true;
                }
            }
            Ok(AcceptorStep::NameMe { host, .. }) => {
                assert!(out.is_empty());
                match NodeName::parse(&format!("fz@{host}")) {
                    Ok(name) if status_bits & 1 == 0 => {
                        hs.send_named(name, 7, &mut out)
                            .expect("a name is due after NAME_ME");
                        sent_decodes(
                            &mut out,
                            &[Message::decode_status, Message::decode_challenge],
                        );
                    }
                    _ => {
                        hs.send_status(Status::NotAllowed, &mut out)
                            .expect("a refusal is due after NAME_ME");
                        sent_decodes(&mut out, &[Message::decode_status]);
                        over = true;
                    }
                }
            }
            Ok(AcceptorStep::Continue) => assert!(out.is_empty()),
            Ok(AcceptorStep::ReplaceOld) => {
                sent_decodes(&mut out, &[Message::decode_challenge]);
            }
            Ok(AcceptorStep::Done(est)) => {
                sent_decodes(&mut out, &[Message::decode_challenge_ack]);
                no_cookie(format!("{est:?}"));
                over = true;
            }
            Err(e) => {
                report(&e);
                // Only a refusal may be written on the way out.
                sent_decodes(&mut out, &[Message::decode_status]);
                over = true;
            }
        }
    }
    report(&hs.closed_by_peer());
    no_cookie(format!("{hs:?} {:?} {}", hs.peer(), hs.awaiting()));
}

fuzz_target!(|data: &[u8]| {
    let [mode, c0, c1, c2, c3, stream @ ..] = data else {
        return;
    };
    let challenge = u32::from_be_bytes([*c0, *c1, *c2, *c3]);
    let mut packets = BytesMut::from(stream);
    while let Some(packet) = take_packet(&mut packets) {
        assert!(packet.len() <= MAX_MESSAGE);
        decode_all(&packet);
    }
    let mut peer_stream = BytesMut::from(stream);
    if mode & 1 == 0 {
        run_initiator(&mut peer_stream, challenge, mode & 0x10 != 0);
    } else {
        run_acceptor(&mut peer_stream, challenge, mode >> 1);
    }
    check_output(stream);
});
