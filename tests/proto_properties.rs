//! Property tests for the round trips of the protocol core that tests/term_codec.rs (terms),
//! tests/term_limits.rs (term resource bounds) and crates/beamlink-proto/src/epmd/ (EPMD fixtures
//! and mutations) do not cover: arbitrary EPMD requests and responses, handshake messages
//! and control messages encode and decode back to themselves, and a stream of frames split
//! at arbitrary boundaries gives the same frames. The fuzz targets in fuzz/ check the other
//! direction (arbitrary bytes).

mod support;

use beamlink::proto::control::{Control, ProcessRef, SignalTarget};
use beamlink::proto::digest::Digest;
use beamlink::proto::dist_header::{AtomCacheOut, DistDecoder};
use beamlink::proto::epmd::{
    Alive2Request, Alive2Response, AliveName, EpmdRequest, Extra, NamesEntry, NamesResponse,
    NodeEntry, NodeType, Port2Response, PortPlease2Request, StopRequest,
};
use beamlink::proto::flags::DistFlags;
use beamlink::proto::frame::{self, Frame};
use beamlink::proto::handshake::{Message, MessageError, Status, take_packet};
use beamlink::proto::node_name::NodeName;
use beamlink::proto::term::{Reference, Term};
use bytes::BytesMut;
use proptest::prelude::*;
use support::{arb_atom, arb_node, arb_pid, arb_term};

// ---- EPMD ----------------------------------------------------------------------------------

/// Names EPMD stores: plain ones, any non-NUL Unicode up to 255 characters, and names that
/// contain the NAMES line separator " at port ". Newlines are left out: a NAMES reply is
/// line-based, so a name with one cannot be listed (real `epmd` has the same limit).
fn arb_alive_name() -> impl Strategy<Value = AliveName> {
    prop_oneof![
        3 => "[a-zA-Z0-9_-]{1,20}".prop_map(|s| AliveName::new(&s).unwrap()),
        2 => prop::collection::vec(any::<char>().prop_filter("no NUL, no newline", |c| *c != '\0' && *c != '\n'), 1..=255)
            .prop_map(|cs| AliveName::new(&cs.into_iter().collect::<String>()).unwrap()),
        1 => "[a-z]{1,5} at port [0-9]{1,5}".prop_map(|s| AliveName::new(&s).unwrap()),
    ]
}

fn arb_extra() -> impl Strategy<Value = Extra> {
    prop_oneof![
        3 => Just(Extra::default()),
        1 => prop::collection::vec(any::<u8>(), 0..=1020).prop_map(|b| Extra::new(b).unwrap()),
    ]
}

fn arb_alive2_request() -> impl Strategy<Value = Alive2Request> {
    (
        any::<u16>(),
        any::<u8>(),
        any::<u8>(),
        any::<u16>(),
        any::<u16>(),
        arb_alive_name(),
        arb_extra(),
    )
        .prop_map(
            |(port, node_type, protocol, highest_version, lowest_version, name, extra)| {
                Alive2Request {
                    port,
                    node_type: NodeType::from_byte(node_type),
                    protocol,
                    highest_version,
                    lowest_version,
                    name,
                    extra,
                }
            },
        )
}

fn arb_request() -> impl Strategy<Value = EpmdRequest> {
    prop_oneof![
        arb_alive2_request().prop_map(EpmdRequest::Alive2),
        (arb_alive_name(), any::<bool>()).prop_map(|(name, nul_terminated)| {
            EpmdRequest::PortPlease2(PortPlease2Request {
                name,
                nul_terminated,
            })
        }),
        Just(EpmdRequest::Names),
        Just(EpmdRequest::Dump),
        Just(EpmdRequest::Kill),
        prop::collection::vec(any::<u8>(), 1..=100)
            .prop_map(|body| { EpmdRequest::Stop(StopRequest { body: body.into() }) }),
    ]
}

fn arb_port2_response() -> impl Strategy<Value = Port2Response> {
    prop_oneof![
        arb_alive2_request().prop_map(|r| Port2Response::Found(NodeEntry::from(&r))),
        (1u8..).prop_map(|result| Port2Response::NotFound { result }),
    ]
}

fn arb_names_response() -> impl Strategy<Value = NamesResponse> {
    (
        any::<u32>(),
        prop::collection::vec(
            (arb_alive_name(), any::<u16>()).prop_map(|(name, port)| NamesEntry { name, port }),
            0..20,
        ),
    )
        .prop_map(|(epmd_port, nodes)| NamesResponse { epmd_port, nodes })
}

/// Cuts `bytes` at the given points (taken modulo its length) into non-empty chunks, in
/// order.
fn split_at_points(bytes: &[u8], points: &[prop::sample::Index]) -> Vec<Vec<u8>> {
    let mut cuts: Vec<usize> = points.iter().map(|p| p.index(bytes.len() + 1)).collect();
    cuts.push(0);
    cuts.push(bytes.len());
    cuts.sort_unstable();
    cuts.dedup();
    cuts.windows(2)
        .map(|w| bytes[w[0]..w[1]].to_vec())
        .collect()
}

// ---- handshake -----------------------------------------------------------------------------

/// Names the acceptor takes: exactly one `@`, both parts non-empty, at most 255 characters.
fn arb_node_name() -> impl Strategy<Value = NodeName> {
    let part = |max| {
        prop::collection::vec(any::<char>().prop_filter("no @", |c| *c != '@'), 1..max)
            .prop_map(|cs| cs.into_iter().collect::<String>())
    };
    prop_oneof![
        "[a-z]{1,12}@[a-z0-9.]{1,20}".prop_map(|s| NodeName::parse(&s).unwrap()),
        (part(120), part(120))
            .prop_map(|(alive, host)| NodeName::parse(&format!("{alive}@{host}")).unwrap()),
    ]
}

fn arb_status() -> impl Strategy<Value = Status> {
    prop_oneof![
        Just(Status::Ok),
        Just(Status::OkSimultaneous),
        Just(Status::Nok),
        Just(Status::NotAllowed),
        Just(Status::Alive),
        (".{0,300}", any::<u32>()).prop_map(|(name, creation)| Status::Named { name, creation }),
    ]
}

type Decode = fn(&[u8]) -> Result<Message, MessageError>;

/// A message and the decoder of the step it is sent in.
fn arb_message() -> impl Strategy<Value = (Message, Decode)> {
    let flags = any::<u64>().prop_map(DistFlags);
    let digest = any::<[u8; 16]>().prop_map(Digest);
    prop_oneof![
        // NAME_ME in the flags makes the name a bare host (the next case).
        (flags.clone(), any::<u32>(), arb_node_name()).prop_map(|(flags, creation, name)| (
            Message::Name {
                flags: DistFlags(flags.0 & !DistFlags::NAME_ME.0),
                creation,
                name
            },
            Message::decode_name as Decode
        )),
        (flags.clone(), any::<u32>(), arb_node_name()).prop_map(|(flags, creation, name)| (
            Message::NameMe {
                flags: flags | DistFlags::NAME_ME,
                creation,
                host: name.host().to_string(),
            },
            Message::decode_name as Decode
        )),
        // The old name message carries only 32 bits of flags.
        (any::<u32>(), arb_node_name()).prop_map(|(flags, name)| (
            Message::OldName {
                flags: DistFlags(flags.into()),
                name
            },
            Message::decode_name as Decode
        )),
        arb_status().prop_map(|s| (Message::Status(s), Message::decode_status as Decode)),
        any::<bool>().prop_map(|a| (
            Message::AliveAnswer(a),
            Message::decode_alive_answer as Decode
        )),
        (flags, any::<u32>(), any::<u32>(), arb_node_name()).prop_map(
            |(flags, challenge, creation, name)| (
                Message::Challenge {
                    flags,
                    challenge,
                    creation,
                    name
                },
                Message::decode_challenge as Decode
            )
        ),
        (any::<u32>(), any::<u32>()).prop_map(|(flags_high, creation)| (
            Message::Complement {
                flags_high,
                creation
            },
            Message::decode_complement as Decode
        )),
        (any::<u32>(), digest.clone()).prop_map(|(challenge, digest)| (
            Message::ChallengeReply { challenge, digest },
            Message::decode_challenge_reply as Decode
        )),
        digest.prop_map(|digest| (
            Message::ChallengeAck { digest },
            Message::decode_challenge_ack as Decode
        )),
    ]
}

// ---- control messages ----------------------------------------------------------------------

fn arb_reference() -> impl Strategy<Value = Reference> {
    (
        arb_node(),
        any::<u32>(),
        prop::collection::vec(any::<u32>(), 1..=5),
    )
        .prop_map(|(node, creation, ids)| Reference::new(node, creation, &ids).unwrap())
}

fn arb_process() -> impl Strategy<Value = ProcessRef> {
    prop_oneof![
        arb_pid().prop_map(ProcessRef::Pid),
        arb_atom().prop_map(ProcessRef::Name),
    ]
}

fn arb_token() -> impl Strategy<Value = Option<Term>> {
    prop::option::of(arb_term())
}

/// Every control message beamlink can send or receive, with arbitrary fields.
fn arb_control() -> impl Strategy<Value = Control> {
    prop_oneof![
        (arb_pid(), arb_pid()).prop_map(|(from, to)| Control::Link { from, to }),
        (
            prop::option::of(arb_pid()),
            arb_pid(),
            arb_token(),
            arb_term()
        )
            .prop_map(|(from, to, token, message)| Control::Send {
                from,
                to,
                token,
                message
            }),
        (arb_pid(), arb_atom(), arb_token(), arb_term()).prop_map(|(from, to, token, message)| {
            Control::RegSend {
                from,
                to,
                token,
                message,
            }
        }),
        (arb_pid(), arb_pid(), arb_token(), arb_term(), any::<bool>()).prop_map(
            |(from, to, token, reason, exit2)| if exit2 {
                Control::Exit2 {
                    from,
                    to,
                    token,
                    reason,
                }
            } else {
                Control::Exit {
                    from,
                    to,
                    token,
                    reason,
                }
            }
        ),
        (arb_pid(), arb_pid()).prop_map(|(from, to)| Control::Unlink { from, to }),
        (arb_pid(), arb_pid()).prop_map(|(from, to)| Control::GroupLeader { from, to }),
        (arb_pid(), arb_process(), arb_reference(), any::<bool>()).prop_map(
            |(from, to, reference, demonitor)| if demonitor {
                Control::DemonitorP {
                    from,
                    to,
                    reference,
                }
            } else {
                Control::MonitorP {
                    from,
                    to,
                    reference,
                }
            }
        ),
        (arb_process(), arb_pid(), arb_reference(), arb_term()).prop_map(
            |(from, to, reference, reason)| Control::MonitorPExit {
                from,
                to,
                reference,
                reason
            }
        ),
        (
            arb_reference(),
            arb_pid(),
            arb_pid(),
            arb_atom(),
            arb_atom(),
            arb_term(),
            arb_token(),
            prop::collection::vec(arb_term(), 0..4),
        )
            .prop_map(
                |(req_id, from, group_leader, module, function, opts, token, args)| {
                    Control::SpawnRequest {
                        req_id,
                        from,
                        group_leader,
                        module,
                        function,
                        arity: args.len() as u8,
                        opts,
                        token,
                        args: Term::List(args),
                    }
                }
            ),
        (
            arb_reference(),
            arb_pid(),
            any::<u8>(),
            arb_term(),
            arb_token()
        )
            .prop_map(|(req_id, to, flags, result, token)| Control::SpawnReply {
                req_id,
                to,
                flags,
                result,
                token
            }),
        (arb_pid(), arb_reference(), arb_token(), arb_term()).prop_map(
            |(from, alias, token, message)| Control::AliasSend {
                from,
                alias,
                token,
                message
            }
        ),
        (
            arb_pid(),
            prop_oneof![
                arb_pid().prop_map(SignalTarget::Pid),
                arb_atom().prop_map(SignalTarget::Name),
                arb_reference().prop_map(SignalTarget::Alias),
            ],
            any::<(bool, bool)>(),
            arb_token(),
            arb_term()
        )
            .prop_map(
                |(from, to, (priority, exit), token, payload)| Control::AltactSig {
                    from,
                    to,
                    priority,
                    exit,
                    token,
                    payload
                }
            ),
        (1u64.., arb_pid(), arb_pid(), any::<bool>()).prop_map(|(id, from, to, ack)| if ack {
            Control::UnlinkIdAck { id, from, to }
        } else {
            Control::UnlinkId { id, from, to }
        }),
    ]
}

/// The flag combinations that change how a control message is written.
const FLAG_SETS: [DistFlags; 5] = [
    DistFlags::EMPTY,
    DistFlags::SEND_SENDER,
    DistFlags::EXIT_PAYLOAD,
    DistFlags(DistFlags::SEND_SENDER.0 | DistFlags::EXIT_PAYLOAD.0),
    DistFlags(DistFlags::SEND_SENDER.0 | DistFlags::EXIT_PAYLOAD.0 | DistFlags::ALTACT_SIG.0),
];

/// What `control` is after a trip over a connection with `flags`: `SEND` does not carry the
/// sender, so without `SEND_SENDER` it is lost; a non-priority `ALTACT_SIG_SEND` that an older
/// operation expresses decodes as that operation.
fn as_received(control: &Control, flags: DistFlags) -> Control {
    match control {
        Control::AltactSig {
            from,
            to,
            priority: false,
            exit,
            token,
            payload,
        } => {
            let (from, token, payload) = (from.clone(), token.clone(), payload.clone());
            match (exit, to) {
                (false, SignalTarget::Pid(to)) => Control::Send {
                    from: Some(from),
                    to: to.clone(),
                    token,
                    message: payload,
                },
                (false, SignalTarget::Name(to)) => Control::RegSend {
                    from,
                    to: to.clone(),
                    token,
                    message: payload,
                },
                (false, SignalTarget::Alias(alias)) => Control::AliasSend {
                    from,
                    alias: alias.clone(),
                    token,
                    message: payload,
                },
                (true, SignalTarget::Pid(to)) => Control::Exit2 {
                    from,
                    to: to.clone(),
                    token,
                    reason: payload,
                },
                (true, _) => control.clone(),
            }
        }
        Control::Send {
            to, token, message, ..
        } if !flags.contains(DistFlags::SEND_SENDER) => Control::Send {
            from: None,
            to: to.clone(),
            token: token.clone(),
            message: message.clone(),
        },
        other => other.clone(),
    }
}

/// One packet of a stream: a control message or a tick.
fn arb_packet() -> impl Strategy<Value = Option<Control>> {
    prop_oneof![1 => Just(None), 4 => arb_control().prop_map(Some)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn epmd_requests_round_trip(req in arb_request()) {
        let mut out = BytesMut::new();
        req.encode(&mut out);
        let bytes = out.to_vec();
        prop_assert_eq!(EpmdRequest::decode(&mut out), Ok(Some(req.clone())));
        prop_assert!(out.is_empty());
        // Byte by byte, as a slow client sends it: nothing until the last byte.
        let mut buf = BytesMut::new();
        for (i, b) in bytes.iter().enumerate() {
            buf.extend_from_slice(&[*b]);
            let got = EpmdRequest::decode(&mut buf);
            if i + 1 < bytes.len() {
                prop_assert_eq!(got, Ok(None));
                prop_assert_eq!(buf.len(), i + 1);
            } else {
                prop_assert_eq!(got, Ok(Some(req.clone())));
            }
        }
    }

    #[test]
    fn alive2_responses_round_trip(
        extended in any::<bool>(),
        result in any::<u8>(),
        creation in any::<u32>(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..4),
    ) {
        let resp = if extended {
            Alive2Response::Extended { result, creation }
        } else {
            Alive2Response::Short { result, creation: creation as u16 }
        };
        let mut out = BytesMut::new();
        resp.encode(&mut out);
        let mut buf = BytesMut::new();
        let mut got = None;
        for chunk in split_at_points(&out, &cuts) {
            prop_assert_eq!(got, None, "decoded before its last byte");
            buf.extend_from_slice(&chunk);
            got = Alive2Response::decode(&mut buf).unwrap();
        }
        prop_assert_eq!(got, Some(resp));
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn port2_responses_round_trip(resp in arb_port2_response()) {
        let mut out = BytesMut::new();
        resp.encode(&mut out);
        prop_assert_eq!(Port2Response::decode(&out), Ok(resp));
    }

    #[test]
    fn names_responses_round_trip(resp in arb_names_response()) {
        let mut out = BytesMut::new();
        resp.encode(&mut out);
        prop_assert_eq!(NamesResponse::decode(&out), Ok(resp));
    }

    #[test]
    fn handshake_messages_round_trip((msg, decode) in arb_message()) {
        let mut out = BytesMut::new();
        msg.encode(&mut out);
        let packet = take_packet(&mut out).unwrap();
        prop_assert!(out.is_empty());
        prop_assert_eq!(decode(&packet), Ok(msg));
    }

    #[test]
    fn controls_round_trip_under_every_flag_set(control in arb_control()) {
        for flags in FLAG_SETS {
            let expected = as_received(&control, flags);
            let (c, payload) = control.to_terms(flags);
            prop_assert_eq!(Control::from_terms(c, payload.cloned()), Ok(expected.clone()));
            let mut out = BytesMut::new();
            frame::encode_message(&control, flags, &mut out).unwrap();
            let Ok(Some(Frame::Message(bytes))) = frame::take_frame(&mut out, u32::MAX) else {
                panic!("no whole frame");
            };
            prop_assert!(out.is_empty());
            prop_assert_eq!(frame::decode_message(&bytes), Ok(expected));
        }
    }

    #[test]
    fn frames_split_anywhere_arrive_whole(
        packets in prop::collection::vec(arb_packet(), 1..8),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..20),
    ) {
        // As a link writes and reads them: through the atom cache, entries set up by one
        // message and referred to by the next.
        let flags = DistFlags::BEAMLINK_DEFAULT;
        let mut cache = AtomCacheOut::new();
        let mut decoder = DistDecoder::new(flags, frame::DEFAULT_MAX_FRAME as usize);
        let mut stream = BytesMut::new();
        for p in &packets {
            match p {
                None => frame::encode_tick(&mut stream),
                Some(c) => {
                    frame::encode_message_cached(c, flags, Some(&mut cache), &mut stream).unwrap()
                }
            }
        }
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        for chunk in split_at_points(&stream, &cuts) {
            buf.extend_from_slice(&chunk);
            while let Some(f) = frame::take_frame(&mut buf, frame::DEFAULT_MAX_FRAME).unwrap() {
                frames.push(f);
            }
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(frames.len(), packets.len());
        for (f, p) in frames.iter().zip(&packets) {
            match (f, p) {
                (Frame::Tick, None) => {}
                (Frame::Message(bytes), Some(c)) => {
                    prop_assert_eq!(decoder.decode(bytes), Ok(Some(as_received(c, flags))));
                }
                _ => prop_assert!(false, "frame {:?} for packet {:?}", f, p),
            }
        }
    }
}

/// A name with a newline registers (EPMD only refuses NUL) but cannot be listed in a NAMES
/// reply: this pins the limit the NAMES strategy above works around.
#[test]
fn names_with_a_newline_do_not_survive_a_names_reply() {
    let resp = NamesResponse {
        epmd_port: 4369,
        nodes: vec![NamesEntry {
            name: AliveName::new("a\nb").unwrap(),
            port: 1,
        }],
    };
    let mut out = BytesMut::new();
    resp.encode(&mut out);
    assert!(NamesResponse::decode(&out).is_err());
}
