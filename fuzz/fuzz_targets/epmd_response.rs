//! EPMD response decoding, as the client runs it: `Alive2Response::decode` incrementally on a
//! registration socket, `Port2Response::decode` and `NamesResponse::decode` on everything
//! read up to EOF (ecosystem.md C1).
//!
//! Input: `[seed0, seed1, reply..]`; the seed chooses the chunk boundaries for ALIVE2.
//!
//! Checked: no panic, a typed error or a value for each decoder; ALIVE2 gives the same answer
//! whatever the chunking and `Ok(None)` consumes nothing; PORT2 and NAMES replies that decode
//! re-encode to exactly the bytes received; no allocation above 64 KiB.
#![no_main]

use beamlink::proto::epmd::{Alive2Response, NamesResponse, Port2Response};
use beamlink_fuzz::{Chunker, measure};
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

fn alive2_in_chunks(reply: &[u8], seed: &[u8]) -> Option<Alive2Response> {
    let mut buf = BytesMut::new();
    for chunk in Chunker::new(seed).split(reply) {
        buf.extend_from_slice(chunk);
        // Consuming advances the start of the buffer, so its start and length tell.
        let before = (buf.as_ptr(), buf.len());
        match Alive2Response::decode(&mut buf) {
            Ok(Some(r)) => return Some(r),
            Ok(None) => assert_eq!(
                (buf.as_ptr(), buf.len()),
                before,
                "Ok(None) consumes nothing"
            ),
            Err(_) => {
                assert_eq!(
                    (buf.as_ptr(), buf.len()),
                    before,
                    "an error consumes nothing"
                );
                return None;
            }
        }
    }
    None
}

fuzz_target!(|data: &[u8]| {
    let [s0, s1, reply @ ..] = data else {
        return;
    };
    let ((alive2, port2, names), usage) = measure(|| {
        let mut buf = BytesMut::from(reply);
        let alive2 = Alive2Response::decode(&mut buf).map(|r| r.map(|r| (r, buf.len())));
        (
            alive2,
            Port2Response::decode(reply),
            NamesResponse::decode(reply),
        )
    });
    assert!(usage.largest <= 64 * 1024 + reply.len(), "{usage:?}");

    let chunked = alive2_in_chunks(reply, &[*s0, *s1]);
    match &alive2 {
        Ok(Some((r, left))) => {
            assert_eq!(chunked, Some(*r));
            let mut out = BytesMut::new();
            r.encode(&mut out);
            assert_eq!(&out[..], &reply[..reply.len() - left]);
        }
        Ok(None) => assert_eq!(chunked, None),
        Err(e) => {
            assert_eq!(chunked, None);
            let _ = format!("{e} {e:?}");
        }
    }
    match &port2 {
        Ok(r) => {
            let mut out = BytesMut::new();
            r.encode(&mut out);
            assert_eq!(&out[..], reply, "PORT2 reply re-encodes to its bytes");
        }
        Err(e) => {
            let _ = format!("{e} {e:?}");
        }
    }
    match &names {
        Ok(r) => {
            let mut out = BytesMut::new();
            r.encode(&mut out);
            assert_eq!(&out[..], reply, "NAMES reply re-encodes to its bytes");
        }
        Err(e) => {
            let _ = format!("{e} {e:?}");
        }
    }
});
