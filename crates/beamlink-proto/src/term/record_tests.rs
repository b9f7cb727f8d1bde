//! Native records (`RECORD_EXT`) against bytes OTP 29.1's `term_to_binary/1` wrote, and the
//! inputs its `binary_to_term/1` refuses.

use super::*;

fn record(module: &str, name: &str, exported: bool, fields: Vec<(&str, Term)>) -> Term {
    Term::Record(Box::new(Record {
        module: Atom::new(module),
        name: Atom::new(name),
        exported,
        fields: fields.into_iter().map(|(n, v)| (Atom::new(n), v)).collect(),
    }))
}

#[test]
fn captured_native_records_decode_and_reencode() {
    let cases: Vec<(&[u8], Term)> = vec![
        // -export_record([point]). #point{x = 1, y = 2}
        (
            &[
                131, 67, 0, 0, 0, 2, 1, 119, 3, 110, 114, 50, 119, 5, 112, 111, 105, 110, 116, 119,
                1, 120, 119, 1, 121, 97, 1, 97, 2,
            ],
            record(
                "nr2",
                "point",
                true,
                vec![("x", Term::Int(1)), ("y", Term::Int(2))],
            ),
        ),
        // #empty{}, not exported.
        (
            &[
                131, 67, 0, 0, 0, 0, 0, 119, 3, 110, 114, 50, 119, 5, 101, 109, 112, 116, 121,
            ],
            record("nr2", "empty", false, vec![]),
        ),
        // #big{a = {1, self()}, b = "str", c = 3.5} on nonode@nohost.
        (
            &[
                131, 67, 0, 0, 0, 3, 0, 119, 3, 110, 114, 50, 119, 3, 98, 105, 103, 119, 1, 97,
                119, 1, 98, 119, 1, 99, 104, 2, 97, 1, 88, 119, 13, 110, 111, 110, 111, 100, 101,
                64, 110, 111, 104, 111, 115, 116, 0, 0, 0, 10, 0, 0, 0, 0, 0, 0, 0, 0, 107, 0, 3,
                115, 116, 114, 70, 64, 12, 0, 0, 0, 0, 0, 0,
            ],
            record(
                "nr2",
                "big",
                false,
                vec![
                    (
                        "a",
                        Term::tuple([
                            Term::Int(1),
                            Term::Pid(Pid {
                                node: Atom::new("nonode@nohost"),
                                id: 10,
                                serial: 0,
                                creation: 0,
                            }),
                        ]),
                    ),
                    (
                        "b",
                        Term::list([Term::Int(115), Term::Int(116), Term::Int(114)]),
                    ),
                    ("c", Term::Float(3.5)),
                ],
            ),
        ),
    ];
    for (bytes, expected) in cases {
        let decoded = decode(&Bytes::copy_from_slice(bytes)).unwrap();
        assert_eq!(decoded, expected);
        let mut out = bytes::BytesMut::new();
        encode(&decoded, &mut out).unwrap();
        assert_eq!(&out[..], bytes);
        assert_eq!(decoded.clone(), decoded);
    }
}

#[test]
fn records_otp_refuses_are_refused() {
    // Flags byte 2 (OTP 29.1: badarg), and `x` named twice (badarg).
    let bad_flags = [
        131, 67, 0, 0, 0, 1, 2, 119, 4, 110, 111, 112, 101, 119, 1, 114, 119, 1, 120, 97, 1,
    ];
    let twice = [
        131, 67, 0, 0, 0, 2, 0, 119, 4, 110, 111, 112, 101, 119, 1, 114, 119, 1, 120, 119, 1, 120,
        97, 1, 97, 2,
    ];
    for bytes in [&bad_flags[..], &twice[..]] {
        assert_eq!(
            decode(&Bytes::copy_from_slice(bytes)),
            Err(DecodeError::BadRecord { offset: 1 })
        );
    }
    // A field name that is not an atom; a count the input cannot hold.
    let not_atom = [
        131, 67, 0, 0, 0, 1, 0, 119, 1, 109, 119, 1, 114, 97, 1, 97, 1,
    ];
    assert!(decode(&Bytes::copy_from_slice(&not_atom)).is_err());
    let huge = [131, 67, 255, 255, 255, 255, 0, 119, 1, 109, 119, 1, 114];
    assert!(matches!(
        decode(&Bytes::copy_from_slice(&huge)),
        Err(DecodeError::CountExceedsInput { .. })
    ));
    let dup = record("m", "r", false, vec![("x", Term::NIL), ("x", Term::NIL)]);
    assert_eq!(
        encode(&dup, &mut bytes::BytesMut::new()),
        Err(EncodeError::DuplicateRecordField)
    );
}
