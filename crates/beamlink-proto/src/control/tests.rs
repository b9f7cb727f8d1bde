//! Round trips through both encoders, the direct encoder against the term tree, and
//! malformed tuples.

use super::*;
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
