//! Round trips through both encoders, the direct encoder against the term tree, and
//! malformed tuples.

use super::*;
use crate::flags::DistFlags;
use bytes::BytesMut;

fn pid(node: &str, id: u32) -> Pid {
    Pid {
        node: Atom::new(node),
        id,
        serial: 0,
        creation: 7,
    }
}

fn r() -> Reference {
    Reference::new(Atom::new("a@h.x"), 7, &[1, 2, 3]).unwrap()
}

#[test]
fn send_uses_send_sender_only_when_negotiated() {
    let msg = Control::Send {
        from: Some(pid("a@h.x", 1)),
        to: pid("b@h.x", 2),
        token: None,
        message: Term::atom("hi"),
    };
    let (c, _) = msg.to_terms(DistFlags::SEND_SENDER);
    assert_eq!(c.as_tuple().unwrap()[0], Term::Int(22));
    let (c, p) = msg.to_terms(DistFlags::EMPTY);
    assert_eq!(c.as_tuple().unwrap()[0], Term::Int(2));
    assert_eq!(c.as_tuple().unwrap()[1], Term::atom(""));
    let back = Control::from_terms(c, p.cloned()).unwrap();
    assert_eq!(
        back,
        Control::Send {
            from: None,
            to: pid("b@h.x", 2),
            token: None,
            message: Term::atom("hi")
        }
    );
}

#[test]
fn exits_round_trip_in_both_forms() {
    let msgs = [
        Control::Exit {
            from: pid("a@h.x", 1),
            to: pid("b@h.x", 2),
            token: None,
            reason: Term::atom("noconnection"),
        },
        Control::Exit2 {
            from: pid("a@h.x", 1),
            to: pid("b@h.x", 2),
            token: Some(Term::atom("tok")),
            reason: Term::atom("kill"),
        },
        Control::MonitorPExit {
            from: ProcessRef::Name(Atom::new("beamlink")),
            to: pid("b@h.x", 2),
            reference: r(),
            reason: Term::atom("noproc"),
        },
    ];
    for m in msgs {
        for flags in [DistFlags::EMPTY, DistFlags::EXIT_PAYLOAD] {
            let (c, p) = m.to_terms(flags);
            assert_eq!(p.is_some(), flags == DistFlags::EXIT_PAYLOAD);
            assert_eq!(Control::from_terms(c, p.cloned()).unwrap(), m);
        }
    }
}

#[test]
fn every_simple_message_round_trips() {
    let msgs = [
        Control::Link {
            from: pid("a@h.x", 1),
            to: pid("b@h.x", 2),
        },
        Control::RegSend {
            from: pid("a@h.x", 1),
            to: Atom::new("net_kernel"),
            token: None,
            message: Term::NIL,
        },
        Control::MonitorP {
            from: pid("a@h.x", 1),
            to: ProcessRef::Name(Atom::new("rex")),
            reference: r(),
        },
        Control::DemonitorP {
            from: pid("a@h.x", 1),
            to: ProcessRef::Pid(pid("b@h.x", 3)),
            reference: r(),
        },
        Control::SpawnReply {
            req_id: r(),
            to: pid("a@h.x", 1),
            flags: 2,
            result: Term::Pid(pid("b@h.x", 9)),
            token: None,
        },
        Control::AliasSend {
            from: pid("a@h.x", 1),
            alias: r(),
            token: None,
            message: Term::Int(5),
        },
        Control::UnlinkId {
            id: u64::MAX,
            from: pid("a@h.x", 1),
            to: pid("b@h.x", 2),
        },
        Control::UnlinkIdAck {
            id: 1,
            from: pid("a@h.x", 1),
            to: pid("b@h.x", 2),
        },
    ];
    for m in msgs {
        let (c, p) = m.to_terms(DistFlags::BEAMLINK_DEFAULT);
        assert_eq!(Control::from_terms(c, p.cloned()).unwrap(), m);
    }
}

#[test]
fn direct_encoding_matches_the_term_tree() {
    let msgs = [
        Control::Link {
            from: pid("a@h.x", 1),
            to: pid("b@h.x", 2),
        },
        Control::Send {
            from: Some(pid("a@h.x", 1)),
            to: pid("b@h.x", 2),
            token: None,
            message: Term::atom("m"),
        },
        Control::Send {
            from: None,
            to: pid("b@h.x", 2),
            token: Some(Term::atom("t")),
            message: Term::Int(1),
        },
        Control::RegSend {
            from: pid("a@h.x", 1),
            to: Atom::new("rex"),
            token: Some(Term::Int(3)),
            message: Term::NIL,
        },
        Control::Exit {
            from: pid("a@h.x", 1),
            to: pid("b@h.x", 2),
            token: Some(Term::Int(9)),
            reason: Term::atom("x"),
        },
        Control::Exit2 {
            from: pid("a@h.x", 1),
            to: pid("b@h.x", 2),
            token: None,
            reason: Term::atom("kill"),
        },
        Control::MonitorP {
            from: pid("a@h.x", 1),
            to: ProcessRef::Name(Atom::new("rex")),
            reference: r(),
        },
        Control::DemonitorP {
            from: pid("a@h.x", 1),
            to: ProcessRef::Pid(pid("b@h.x", 3)),
            reference: r(),
        },
        Control::MonitorPExit {
            from: ProcessRef::Name(Atom::new("x")),
            to: pid("b@h.x", 2),
            reference: r(),
            reason: Term::atom("noproc"),
        },
        Control::SpawnRequest {
            req_id: r(),
            from: pid("a@h.x", 1),
            group_leader: pid("a@h.x", 1),
            module: Atom::new("erpc"),
            function: Atom::new("execute_call"),
            arity: 1,
            opts: Term::list([Term::atom("monitor")]),
            token: None,
            args: Term::list([Term::Int(1)]),
        },
        Control::SpawnReply {
            req_id: r(),
            to: pid("a@h.x", 1),
            flags: 2,
            result: Term::atom("notsup"),
            token: Some(Term::Int(1)),
        },
        Control::AliasSend {
            from: pid("a@h.x", 1),
            alias: r(),
            token: None,
            message: Term::Int(5),
        },
        Control::UnlinkId {
            id: u64::MAX,
            from: pid("a@h.x", 1),
            to: pid("b@h.x", 2),
        },
        Control::UnlinkIdAck {
            id: 7,
            from: pid("a@h.x", 1),
            to: pid("b@h.x", 2),
        },
    ];
    for m in msgs {
        for flags in [
            DistFlags::EMPTY,
            DistFlags::SEND_SENDER | DistFlags::EXIT_PAYLOAD,
        ] {
            let (c, p) = m.to_terms(flags);
            let mut tree = BytesMut::from(&[crate::frame::PASS_THROUGH][..]);
            crate::term::encode(&c, &mut tree).unwrap();
            if let Some(p) = p {
                crate::term::encode(p, &mut tree).unwrap();
            }
            let mut direct = BytesMut::new();
            m.encode(flags, &mut direct).unwrap();
            assert_eq!(direct, tree, "{m:?} with {flags:?}");
        }
    }
}

#[test]
fn malformed_control_tuples_are_typed_errors() {
    let p = Term::Pid(pid("a@h.x", 1));
    let cases = [
        (Term::atom("x"), None, ControlError::NotAControlTuple),
        (Term::tuple([]), None, ControlError::NotAControlTuple),
        (
            Term::tuple([Term::Int(99)]),
            None,
            ControlError::UnknownOperation { op: 99 },
        ),
        (
            Term::tuple([Term::Int(-1)]),
            None,
            ControlError::UnknownOperation { op: -1 },
        ),
        (
            Term::tuple([Term::Int(1), p.clone()]),
            None,
            ControlError::WrongArity { op: 1, arity: 2 },
        ),
        (
            Term::tuple([Term::Int(1), p.clone(), Term::atom("x")]),
            None,
            ControlError::BadField {
                op: 1,
                field: "to pid",
            },
        ),
        (
            Term::tuple([Term::Int(22), p.clone(), p.clone()]),
            None,
            ControlError::MissingPayload { op: 22 },
        ),
        (
            Term::tuple([Term::Int(1), p.clone(), p.clone()]),
            Some(Term::NIL),
            ControlError::UnexpectedPayload { op: 1 },
        ),
        (
            Term::tuple([Term::Int(35), Term::Int(0), p.clone(), p.clone()]),
            None,
            ControlError::BadField {
                op: 35,
                field: "unlink id",
            },
        ),
    ];
    for (c, payload, err) in cases {
        assert_eq!(Control::from_terms(c, payload), Err(err));
    }
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// `erlang:send({beamlink, Node}, priority_hello, [priority])` from OTP 29.1, captured as a
/// pass-through message (`fixtures/dist/otp29-priority_send-26-altact_sig.bin`):
/// `{37, PRIO|NAME, From, beamlink}` and the message.
const PRIORITY_SEND: &str = "708368046125610958770e70656572403132372e302e302e3100000061000000006b12f57577086265616d6c696e6b83770e7072696f726974795f68656c6c6f";

/// The start of a gen_server reply to our alias from OTP 29.1
/// (`fixtures/dist/otp29-alias_reply-31-alias_send.bin`): `{37, ALIAS, From, Alias}`.
const ALIAS_REPLY_CONTROL: &str = "8368046125610458770e70656572403132372e302e302e310000002d000000006b12f5755a000377126265616d6c696e6b403132372e302e302e318101cf68000000110000000000000000";

#[test]
fn captured_altact_sig_send_decodes_and_reencodes() {
    let bytes = bytes::Bytes::from(unhex(PRIORITY_SEND));
    let control = crate::frame::decode_message(&bytes).unwrap();
    let Control::AltactSig {
        to: SignalTarget::Name(ref to),
        priority: true,
        exit: false,
        token: None,
        ref payload,
        ..
    } = control
    else {
        panic!("{control:?}")
    };
    assert_eq!(
        (to.as_str(), payload),
        ("beamlink", &Term::atom("priority_hello"))
    );
    let mut again = BytesMut::new();
    control
        .encode(DistFlags::BEAMLINK_DEFAULT, &mut again)
        .unwrap();
    assert_eq!(&again[..], &bytes[..]);

    // An OTP 28+ alias send is an AliasSend, and goes back out the same way to a peer that
    // negotiated ALTACT_SIG, as ALIAS_SEND (33) to one that did not.
    let mut reply = unhex(&format!("70{ALIAS_REPLY_CONTROL}"));
    reply.extend_from_slice(&[131, 106]);
    let reply = bytes::Bytes::from(reply);
    let control = crate::frame::decode_message(&reply).unwrap();
    assert!(matches!(control, Control::AliasSend { .. }), "{control:?}");
    let mut again = BytesMut::new();
    control
        .encode(DistFlags::BEAMLINK_DEFAULT, &mut again)
        .unwrap();
    assert_eq!(&again[..], &reply[..]);
    let old = DistFlags(DistFlags::BEAMLINK_DEFAULT.0 & !DistFlags::ALTACT_SIG.0);
    assert_eq!(control.op(old), op::ALIAS_SEND);
    assert_eq!(control.op(DistFlags::BEAMLINK_DEFAULT), op::ALTACT_SIG_SEND);
}

#[test]
fn altact_sig_send_forms_follow_erts_net_message() {
    let from = Term::Pid(pid("a@h.x", 1));
    let alias = Term::reference(r());
    let tuple = |flags: Term, to: Term, rest: &[Term]| {
        let mut t = vec![Term::Int(37), flags, from.clone(), to];
        t.extend_from_slice(rest);
        Term::Tuple(t)
    };
    let decode = |c: Term| Control::from_terms(c, Some(Term::atom("reason")));
    // exit/3 with [priority] to an alias (erts_dsig_send_exit2): PRIO|ALIAS|EXIT.
    assert_eq!(
        decode(tuple(Term::Int(0b10101), alias.clone(), &[])),
        Ok(Control::AltactSig {
            from: pid("a@h.x", 1),
            to: SignalTarget::Alias(r()),
            priority: true,
            exit: true,
            token: None,
            payload: Term::atom("reason"),
        })
    );
    // A token, bits above the defined ones (a bignum), and an extra element a later
    // release may add are all taken as the BEAM takes them.
    let big = Term::Big(crate::term::BigInt {
        negative: false,
        magnitude: vec![0b0111, 0, 0, 0, 0, 0, 0, 0, 1],
    });
    let extra = [Term::atom("tok"), Term::atom("future")];
    let Ok(Control::AltactSig {
        priority: true,
        token: Some(token),
        to: SignalTarget::Alias(_),
        exit: false,
        ..
    }) = decode(tuple(big, alias.clone(), &extra))
    else {
        panic!("bignum flags")
    };
    assert_eq!(token, Term::atom("tok"));
    // Non-priority forms decode as the older operations.
    assert!(matches!(
        decode(tuple(Term::Int(0b10000), from.clone(), &[])),
        Ok(Control::Exit2 { .. })
    ));
    assert!(matches!(
        decode(tuple(Term::Int(0), from.clone(), &[])),
        Ok(Control::Send { from: Some(_), .. })
    ));
    // What the BEAM refuses.
    let bad = |flags: i64, to: Term| decode(tuple(Term::Int(flags), to, &[]));
    assert!(matches!(
        bad(-1, from.clone()),
        Err(ControlError::BadField { op: 37, .. })
    ));
    assert!(matches!(
        bad(0b1100, alias.clone()),
        Err(ControlError::BadField { .. })
    ));
    assert!(matches!(
        bad(0b0100, from.clone()),
        Err(ControlError::BadField { .. })
    ));
    assert!(matches!(
        bad(0b1000, alias.clone()),
        Err(ControlError::BadField { .. })
    ));
    assert_eq!(
        bad(0b0010, alias.clone()),
        Err(ControlError::WrongArity { op: 37, arity: 4 })
    );
    assert_eq!(
        Control::from_terms(Term::tuple([Term::Int(37), Term::Int(0), from]), None),
        Err(ControlError::MissingPayload { op: 37 })
    );
}

#[test]
fn operation_numbers_match_dist_h() {
    // enum dop in erts/emulator/beam/dist.h (OTP 28), and ERTS_DOP_ALTACT_SIG_FLG_*.
    let ours = [
        op::LINK,
        op::SEND,
        op::EXIT,
        op::UNLINK,
        op::REG_SEND,
        op::GROUP_LEADER,
        op::EXIT2,
        op::SEND_TT,
        op::EXIT_TT,
        op::REG_SEND_TT,
        op::EXIT2_TT,
        op::MONITOR_P,
        op::DEMONITOR_P,
        op::MONITOR_P_EXIT,
        op::SEND_SENDER,
        op::SEND_SENDER_TT,
        op::PAYLOAD_EXIT,
        op::PAYLOAD_EXIT_TT,
        op::PAYLOAD_EXIT2,
        op::PAYLOAD_EXIT2_TT,
        op::PAYLOAD_MONITOR_P_EXIT,
        op::SPAWN_REQUEST,
        op::SPAWN_REQUEST_TT,
        op::SPAWN_REPLY,
        op::SPAWN_REPLY_TT,
        op::ALIAS_SEND,
        op::ALIAS_SEND_TT,
        op::UNLINK_ID,
        op::UNLINK_ID_ACK,
        op::ALTACT_SIG_SEND,
    ];
    let otp = [
        1, 2, 3, 4, 6, 7, 8, 12, 13, 16, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
        32, 33, 34, 35, 36, 37,
    ];
    assert_eq!(ours, otp);
    assert_eq!(
        [
            altact::PRIO,
            altact::TOKEN,
            altact::ALIAS,
            altact::NAME,
            altact::EXIT
        ],
        [1, 2, 4, 8, 16]
    );
}
