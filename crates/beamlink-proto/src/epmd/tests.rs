use super::*;
use bytes::BytesMut;

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!("../../fixtures/epmd/", $name))
    };
}

fn decode_request(bytes: &[u8]) -> Result<Option<EpmdRequest>, EpmdWireError> {
    EpmdRequest::decode(&mut BytesMut::from(bytes))
}

fn encoded_request(request: &EpmdRequest) -> Vec<u8> {
    let mut out = BytesMut::new();
    request.encode(&mut out);
    out.to_vec()
}

/// A request fixture decodes, consumes everything, and re-encodes to the same bytes.
fn request_round_trip(bytes: &[u8]) -> EpmdRequest {
    let mut buf = BytesMut::from(bytes);
    let request = EpmdRequest::decode(&mut buf).unwrap().unwrap();
    assert!(buf.is_empty());
    assert_eq!(encoded_request(&request), bytes);
    request
}

fn alive2_round_trip(bytes: &[u8]) -> Alive2Response {
    let mut buf = BytesMut::from(bytes);
    let response = Alive2Response::decode(&mut buf).unwrap().unwrap();
    assert!(buf.is_empty());
    let mut out = BytesMut::new();
    response.encode(&mut out);
    assert_eq!(&out[..], bytes);
    response
}

fn port2_round_trip(bytes: &[u8]) -> Port2Response {
    let response = Port2Response::decode(bytes).unwrap();
    let mut out = BytesMut::new();
    response.encode(&mut out);
    assert_eq!(&out[..], bytes);
    response
}

fn names_round_trip(bytes: &[u8]) -> NamesResponse {
    let response = NamesResponse::decode(bytes).unwrap();
    let mut out = BytesMut::new();
    response.encode(&mut out);
    assert_eq!(&out[..], bytes);
    response
}

#[test]
fn fixture_alive2_req() {
    let EpmdRequest::Alive2(req) = request_round_trip(fixture!("alive2_req.bin")) else {
        panic!("not ALIVE2");
    };
    assert_eq!(req.name.as_str(), "fixture");
    assert_eq!(req.port, 40123);
    assert_eq!(req.node_type, NodeType::Normal);
    assert_eq!((req.highest_version, req.lowest_version), (6, 5));
    assert!(req.extra.as_bytes().is_empty());
}

#[test]
fn fixture_alive2_req_v5() {
    let EpmdRequest::Alive2(req) = request_round_trip(fixture!("alive2_req_v5.bin")) else {
        panic!("not ALIVE2");
    };
    assert_eq!(req.name.as_str(), "legacy");
    assert_eq!((req.highest_version, req.lowest_version), (5, 5));
}

#[test]
fn fixture_alive2_x_resp() {
    let resp = alive2_round_trip(fixture!("alive2_x_resp.bin"));
    assert!(matches!(resp, Alive2Response::Extended { result: 0, .. }));
    assert!(resp.creation() > 3, "32-bit creation from the clock");
}

#[test]
fn fixture_alive2_x_resp_refused() {
    let resp = alive2_round_trip(fixture!("alive2_x_resp_refused.bin"));
    assert_eq!(resp, Alive2Response::refused(6));
}

#[test]
fn fixture_alive2_resp_v5() {
    let resp = alive2_round_trip(fixture!("alive2_resp_v5.bin"));
    assert_eq!(resp.result(), 0);
    assert!(matches!(
        resp,
        Alive2Response::Short {
            creation: 1..=3,
            ..
        }
    ));
}

#[test]
fn fixture_port_please2() {
    let EpmdRequest::PortPlease2(req) = request_round_trip(fixture!("port_please2_req.bin")) else {
        panic!("not PORT_PLEASE2");
    };
    assert_eq!(req.name.as_str(), "fixture");
    assert!(!req.nul_terminated);
    request_round_trip(fixture!("port_please2_req_unknown.bin"));
}

#[test]
fn fixture_port2_resp_found() {
    let Port2Response::Found(node) = port2_round_trip(fixture!("port2_resp_found.bin")) else {
        panic!("not found");
    };
    assert_eq!(node.port, 40123);
    assert_eq!(node.name.as_str(), "fixture");
    assert_eq!((node.highest_version, node.lowest_version), (6, 5));
}

#[test]
fn fixture_port2_resp_not_found() {
    assert_eq!(
        port2_round_trip(fixture!("port2_resp_not_found.bin")),
        Port2Response::NotFound { result: 1 }
    );
}

#[test]
fn fixture_names() {
    assert_eq!(
        request_round_trip(fixture!("names_req.bin")),
        EpmdRequest::Names
    );
    let names = names_round_trip(fixture!("names_resp.bin"));
    assert_eq!(names.nodes.len(), 1);
    assert_eq!(names.nodes[0].to_string(), "name fixture at port 40123");
    let empty = names_round_trip(fixture!("names_resp_empty.bin"));
    assert_eq!(empty.epmd_port, names.epmd_port);
    assert!(empty.nodes.is_empty());
}

#[test]
fn fixture_kill() {
    assert_eq!(
        request_round_trip(fixture!("kill_req.bin")),
        EpmdRequest::Kill
    );
}

/// STOP_REQ as `epmd -stop NAME` sends it (`stop_cli` in `epmd_cli.c`: the name without a
/// NUL), and the C-string name `epmd_srv.c` compares.
#[test]
fn stop_carries_its_name_up_to_the_first_nul() {
    let stop = request_round_trip(b"\x00\x07skeeper");
    let EpmdRequest::Stop(req) = &stop else {
        panic!("{stop:?}")
    };
    assert_eq!(req.name(), b"keeper");
    let odd = request_round_trip(b"\x00\x05sa\0bc");
    let EpmdRequest::Stop(req) = &odd else {
        panic!("{odd:?}")
    };
    assert_eq!((req.name(), &req.body[..]), (&b"a"[..], &b"a\0bc"[..]));
    let empty = request_round_trip(b"\x00\x02s\0");
    let EpmdRequest::Stop(req) = &empty else {
        panic!("{empty:?}")
    };
    assert_eq!(req.name(), b"");
    // Nothing after the code: epmd ignores it.
    assert_eq!(
        decode_request(b"\x00\x01s"),
        Err(EpmdWireError::StopWithoutName)
    );
}

#[test]
fn alive2_example_encodes() {
    let req = Alive2Request {
        lowest_version: 5,
        ..Alive2Request::new(AliveName::new("rust").unwrap(), 5555)
    };
    assert_eq!(
        encoded_request(&EpmdRequest::Alive2(req)),
        [
            0x00, 0x11, 0x78, 0x15, 0xB3, 0x48, 0x00, 0x00, 0x06, 0x00, 0x05, 0x00, 0x04, 0x72,
            0x75, 0x73, 0x74, 0x00, 0x00
        ]
    );
}

#[test]
fn partial_requests_wait_and_consume_nothing() {
    let whole = fixture!("alive2_req.bin");
    for cut in 0..whole.len() {
        let mut buf = BytesMut::from(&whole[..cut]);
        assert_eq!(EpmdRequest::decode(&mut buf), Ok(None), "cut at {cut}");
        assert_eq!(buf.len(), cut);
    }
}

#[test]
fn bytes_after_a_request_stay_in_the_buffer() {
    let mut buf = BytesMut::from(&b"\x00\x01n\x00\x01n"[..]);
    assert_eq!(EpmdRequest::decode(&mut buf), Ok(Some(EpmdRequest::Names)));
    assert_eq!(&buf[..], b"\x00\x01n");
}

#[test]
fn bad_lengths_are_refused_from_the_header_alone() {
    assert_eq!(
        decode_request(b"\x00\x00"),
        Err(EpmdWireError::RequestLength { length: 0 })
    );
    assert_eq!(
        decode_request(&3058u16.to_be_bytes()),
        Err(EpmdWireError::RequestLength { length: 3058 })
    );
    assert_eq!(
        decode_request(&63000u16.to_be_bytes()),
        Err(EpmdWireError::RequestLength { length: 63000 })
    );
    // 3057 is the largest length epmd takes: it waits for the body.
    assert_eq!(decode_request(&3057u16.to_be_bytes()), Ok(None));
}

#[test]
fn unknown_code() {
    assert_eq!(
        decode_request(b"\x00\x01Q"),
        Err(EpmdWireError::UnknownRequest { code: b'Q' })
    );
}

/// Builds an ALIVE2 request body with explicit (possibly lying) lengths.
fn alive2_body(name: &[u8], name_len: u16, extra: &[u8], extra_len: u16) -> Vec<u8> {
    let mut body = vec![b'x', 0x12, 0x34, 77, 0, 0, 6, 0, 5];
    body.extend_from_slice(&name_len.to_be_bytes());
    body.extend_from_slice(name);
    body.extend_from_slice(&extra_len.to_be_bytes());
    body.extend_from_slice(extra);
    body
}

fn framed(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

#[test]
fn short_alive2_bodies_are_refused() {
    for len in 1..=13usize {
        let mut body = alive2_body(b"", 0, b"", 0);
        body.resize(len, 0);
        assert_eq!(
            decode_request(&framed(&body)),
            Err(EpmdWireError::Alive2TooShort { length: len as u16 }),
            "body of {len} bytes"
        );
    }
}

#[test]
fn lying_alive2_lengths_are_refused() {
    let body = alive2_body(b"abc", 4, b"", 0);
    assert_eq!(
        decode_request(&framed(&body)),
        Err(EpmdWireError::Alive2NameOverrun {
            name_len: 4,
            length: 16
        })
    );
    let body = alive2_body(b"abc", 3, b"xy", 3);
    assert_eq!(
        decode_request(&framed(&body)),
        Err(EpmdWireError::Alive2ExtraOverrun {
            name_len: 3,
            extra_len: 3,
            length: 18
        })
    );
    let body = alive2_body(b"abc", 3, b"", 65535);
    assert!(matches!(
        decode_request(&framed(&body)),
        Err(EpmdWireError::Alive2ExtraOverrun { .. })
    ));
}

#[test]
fn nul_in_alive2_name_closes() {
    for name in [&b"a\0b"[..], b"ab\0", b"\0"] {
        let body = alive2_body(name, name.len() as u16, b"", 0);
        assert_eq!(
            decode_request(&framed(&body)),
            Err(EpmdWireError::NulInName {
                request: code::ALIVE2_REQ
            })
        );
    }
}

#[test]
fn names_epmd_answers_with_result_1() {
    let refused = |name: &[u8], extra: &[u8]| {
        let body = alive2_body(name, name.len() as u16, extra, extra.len() as u16);
        match decode_request(&framed(&body)) {
            Err(EpmdWireError::Alive2Refused {
                highest_version: 6,
                problem,
            }) => problem,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(
        refused(&[b'a'; 600], b""),
        FieldError::NameTooLong { chars: 600 }
    );
    assert_eq!(
        refused("é".repeat(300).as_bytes(), b""),
        FieldError::NameTooLong { chars: 300 }
    );
    assert_eq!(
        refused(&[b'a'; 1021], b""),
        FieldError::NameTooManyBytes { bytes: 1021 }
    );
    assert_eq!(refused(b"\xff\xfe", b""), FieldError::NameNotUtf8);
    // A UTF-16 surrogate encoded in UTF-8, which epmd's verify_utf8 also refuses.
    assert_eq!(refused(b"\xed\xa0\x80", b""), FieldError::NameNotUtf8);
    assert_eq!(
        refused(b"abc", &[7; 1021]),
        FieldError::ExtraTooLong { bytes: 1021 }
    );
    assert_eq!(refused(b"", b"z"), FieldError::EmptyName);
}

#[test]
fn names_epmd_accepts() {
    let accepted = |name: &str, extra: &[u8]| {
        let body = alive2_body(
            name.as_bytes(),
            name.len() as u16,
            extra,
            extra.len() as u16,
        );
        let Ok(Some(EpmdRequest::Alive2(req))) = decode_request(&framed(&body)) else {
            panic!("{name:?} refused");
        };
        assert_eq!(req.name.as_str(), name);
        assert_eq!(req.extra.as_bytes(), extra);
    };
    accepted(&"a".repeat(255), b"");
    accepted(&"ö".repeat(255), b"");
    accepted("𝄞名", b"\0\0with NULs\0");
    accepted("x", &[1; 1020]);
}

#[test]
fn alive2_tolerates_bytes_after_extra_as_epmd_does() {
    let mut body = alive2_body(b"abc", 3, b"", 0);
    body.extend_from_slice(b"junk");
    let Ok(Some(EpmdRequest::Alive2(req))) = decode_request(&framed(&body)) else {
        panic!("refused");
    };
    assert_eq!(req.name.as_str(), "abc");
}

#[test]
fn port_please2_rules() {
    let decode = |body: &[u8]| decode_request(&framed(body));
    let Ok(Some(EpmdRequest::PortPlease2(req))) = decode(b"zabc\0") else {
        panic!("trailing NUL refused");
    };
    assert!(req.nul_terminated);
    assert_eq!(
        encoded_request(&EpmdRequest::PortPlease2(req)),
        framed(b"zabc\0")
    );
    assert_eq!(
        decode(b"z"),
        Err(EpmdWireError::PortPleaseName {
            problem: FieldError::EmptyName
        })
    );
    assert_eq!(
        decode(b"z\0"),
        Err(EpmdWireError::PortPleaseName {
            problem: FieldError::EmptyName
        })
    );
    assert_eq!(
        decode(b"za\0b"),
        Err(EpmdWireError::NulInName {
            request: code::PORT_PLEASE2_REQ
        })
    );
    let long = [&b"z"[..], &[b'a'; 256]].concat();
    assert!(matches!(
        decode(&long),
        Err(EpmdWireError::PortPleaseName {
            problem: FieldError::NameTooLong { chars: 256 }
        })
    ));
}

#[test]
fn alive2_response_forms() {
    assert_eq!(
        Alive2Response::accepted(6, 0x1234_5678),
        Alive2Response::Extended {
            result: 0,
            creation: 0x1234_5678
        }
    );
    assert_eq!(
        Alive2Response::accepted(5, 2),
        Alive2Response::Short {
            result: 0,
            creation: 2
        }
    );
    assert_eq!(
        Alive2Response::refused(5),
        Alive2Response::Short {
            result: 1,
            creation: 99
        }
    );
    let mut buf = BytesMut::from(&b"v\0\0\0"[..]);
    assert_eq!(Alive2Response::decode(&mut buf), Ok(None));
    assert_eq!(buf.len(), 4);
    assert_eq!(
        Alive2Response::decode(&mut BytesMut::from(&b"w\0"[..])),
        Err(EpmdWireError::UnexpectedCode {
            response: ResponseKind::Alive2,
            code: b'w'
        })
    );
}

#[test]
fn port2_response_errors() {
    let found = fixture!("port2_resp_found.bin");
    for cut in 0..found.len() {
        assert_eq!(
            Port2Response::decode(&found[..cut]),
            Err(EpmdWireError::Truncated {
                response: ResponseKind::Port2,
                len: cut
            }),
            "cut at {cut}"
        );
    }
    let mut longer = found.to_vec();
    longer.push(0);
    assert_eq!(
        Port2Response::decode(&longer),
        Err(EpmdWireError::TrailingBytes {
            response: ResponseKind::Port2,
            extra: 1
        })
    );
    assert_eq!(
        Port2Response::decode(b"w\x01\x00"),
        Err(EpmdWireError::TrailingBytes {
            response: ResponseKind::Port2,
            extra: 1
        })
    );
    assert!(matches!(
        Port2Response::decode(b"y\x00"),
        Err(EpmdWireError::UnexpectedCode { code: b'y', .. })
    ));
    assert!(matches!(
        Port2Response::decode(&vec![b'w'; MAX_PORT2_REPLY_LEN + 1]),
        Err(EpmdWireError::TooLong { .. })
    ));
}

#[test]
fn names_response_errors() {
    let decode = |text: &[u8]| NamesResponse::decode(&[&[0, 0, 0x11, 0x11][..], text].concat());
    assert!(decode(b"name a at port 1\nname b at port 65535\n").is_ok());
    assert_eq!(
        decode(b"name a at port 1\nname b at port 2").unwrap_err(),
        EpmdWireError::Truncated {
            response: ResponseKind::Names,
            len: 37
        }
    );
    for (bad, line) in [
        (&b"name a at port 65536\n"[..], 1),
        (b"name a at port 01\n", 1),
        (b"name a at port \n", 1),
        (b"name a at port 1x\n", 1),
        (b"name a at port 1\nnom b at port 2\n", 2),
        (b"name a port 1\n", 1),
        (b"\n", 1),
    ] {
        assert_eq!(
            decode(bad).unwrap_err(),
            EpmdWireError::NamesLine { line },
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    let odd = decode(b"name a at port 9 at port 10\n").unwrap();
    assert_eq!(odd.nodes[0].name.as_str(), "a at port 9");
    assert!(matches!(
        NamesResponse::decode(&[0, 0]),
        Err(EpmdWireError::Truncated { len: 2, .. })
    ));
    assert!(matches!(
        NamesResponse::decode(&vec![b'\n'; MAX_NAMES_REPLY_LEN + 1]),
        Err(EpmdWireError::TooLong { .. })
    ));
}

#[test]
fn dump_format_matches_epmd() {
    let mut out = BytesMut::new();
    let entry = DumpEntry {
        name: AliveName::new("a").unwrap(),
        port: 34731,
        fd: 5,
    };
    encode_dump(
        14369,
        std::slice::from_ref(&entry),
        std::slice::from_ref(&entry),
        &mut out,
    );
    // The active line is what a real epmd 25 sent for the same node.
    let mut expected = 14369u32.to_be_bytes().to_vec();
    expected.extend_from_slice(b"active name     <a> at port 34731, fd = 5\n\0");
    expected.extend_from_slice(b"old/unused name <a>, port = 34731, fd = 5 \n\0");
    assert_eq!(&out[..], &expected[..]);
}

/// A small deterministic generator, so the mutation test needs no RNG crate and reruns
/// identically.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn mutate(rng: &mut Lcg, seed: &[u8]) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    for _ in 0..=rng.below(4) {
        match rng.below(4) {
            0 if !bytes.is_empty() => {
                let at = rng.below(bytes.len());
                bytes[at] = rng.next() as u8;
            }
            1 if !bytes.is_empty() => {
                bytes.truncate(rng.below(bytes.len()));
            }
            2 => {
                let at = rng.below(bytes.len() + 1);
                bytes.insert(at, rng.next() as u8);
            }
            _ => {
                let at = rng.below(bytes.len() + 1);
                let len = rng.below(300);
                bytes.splice(at..at, std::iter::repeat_n(rng.next() as u8, len));
            }
        }
    }
    bytes
}

/// Thousands of mutated requests and replies; every one decodes or gives
/// a typed error, none panics.
#[test]
fn mutated_inputs_never_panic() {
    let mut rng = Lcg(0x5eed);
    let requests: [&[u8]; 4] = [
        fixture!("alive2_req.bin"),
        fixture!("alive2_req_v5.bin"),
        fixture!("port_please2_req.bin"),
        fixture!("names_req.bin"),
    ];
    let replies: [&[u8]; 6] = [
        fixture!("alive2_x_resp.bin"),
        fixture!("alive2_resp_v5.bin"),
        fixture!("port2_resp_found.bin"),
        fixture!("port2_resp_not_found.bin"),
        fixture!("names_resp.bin"),
        fixture!("names_resp_empty.bin"),
    ];
    for round in 0..12_000 {
        let seed = requests[round % requests.len()];
        let bytes = mutate(&mut rng, seed);
        let mut buf = BytesMut::from(&bytes[..]);
        if let Ok(Some(req)) = EpmdRequest::decode(&mut buf) {
            // Whatever decodes must encode into a request that decodes to the same value.
            let again = decode_request(&encoded_request(&req)).unwrap().unwrap();
            assert_eq!(again, req);
        }
        let reply = mutate(&mut rng, replies[round % replies.len()]);
        let _ = Alive2Response::decode(&mut BytesMut::from(&reply[..]));
        if let Ok(found) = Port2Response::decode(&reply) {
            let mut out = BytesMut::new();
            found.encode(&mut out);
            assert_eq!(&out[..], &reply[..]);
        }
        if let Ok(names) = NamesResponse::decode(&reply) {
            let mut out = BytesMut::new();
            names.encode(&mut out);
            assert_eq!(&out[..], &reply[..]);
        }
    }
}

#[test]
fn error_texts_name_the_problem() {
    assert_eq!(
        EpmdWireError::RequestLength { length: 0 }.to_string(),
        "request length 0 (EPMD accepts 1..=3057)"
    );
    assert_eq!(
        EpmdWireError::Alive2Refused {
            highest_version: 6,
            problem: FieldError::NameTooLong { chars: 600 }
        }
        .to_string(),
        "registration refused: the node name has 600 characters, more than 255"
    );
}
