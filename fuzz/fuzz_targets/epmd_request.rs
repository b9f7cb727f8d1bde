//! EPMD request decoding (`EpmdRequest::decode`), as the embedded EPMD server runs it: bytes
//! arrive in chunks and the decoder is called after each.
//!
//! Input: `[seed0, seed1, stream..]`; the seed chooses the chunk boundaries.
//!
//! Checked: no panic; `Ok(None)` and errors consume nothing; feeding the stream in chunks
//! gives the same requests and the same error as feeding it at once; a decoded request
//! re-encodes to bytes that decode to the same request; no decode allocates more than 64 KiB.
#![no_main]

use beamlink::proto::epmd::{EpmdRequest, EpmdWireError};
use beamlink_fuzz::{Chunker, measure};
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

type Outcome = (Vec<EpmdRequest>, Option<EpmdWireError>);

/// Decodes everything buffered; `None` = stopped on an error.
fn drain(buf: &mut BytesMut, seen: &mut Vec<EpmdRequest>) -> Option<EpmdWireError> {
    loop {
        // Consuming advances the start of the buffer, so its start and length tell.
        let before = (buf.as_ptr(), buf.len());
        let (decoded, usage) = measure(|| EpmdRequest::decode(buf));
        assert!(usage.largest <= 64 * 1024, "one decode allocated {usage:?}");
        match decoded {
            Ok(Some(req)) => {
                assert!(buf.len() < before.1, "a request takes bytes");
                seen.push(req);
            }
            Ok(None) => {
                assert_eq!(
                    (buf.as_ptr(), buf.len()),
                    before,
                    "Ok(None) consumes nothing"
                );
                return None;
            }
            Err(e) => {
                assert_eq!(
                    (buf.as_ptr(), buf.len()),
                    before,
                    "an error consumes nothing"
                );
                let _ = format!("{e} {e:?}");
                return Some(e);
            }
        }
    }
}

fn at_once(stream: &[u8]) -> Outcome {
    let mut buf = BytesMut::from(stream);
    let mut seen = Vec::new();
    let err = drain(&mut buf, &mut seen);
    (seen, err)
}

fn in_chunks(stream: &[u8], seed: &[u8]) -> Outcome {
    let mut buf = BytesMut::new();
    let mut seen = Vec::new();
    for chunk in Chunker::new(seed).split(stream) {
        buf.extend_from_slice(chunk);
        if let Some(e) = drain(&mut buf, &mut seen) {
            return (seen, Some(e));
        }
    }
    (seen, None)
}

fuzz_target!(|data: &[u8]| {
    let [s0, s1, stream @ ..] = data else {
        return;
    };
    let whole = at_once(stream);
    let chunked = in_chunks(stream, &[*s0, *s1]);
    assert_eq!(whole, chunked, "chunk boundaries change the outcome");
    for req in &whole.0 {
        let mut out = BytesMut::new();
        req.encode(&mut out);
        let mut again = out.clone();
        assert_eq!(EpmdRequest::decode(&mut again), Ok(Some(req.clone())));
        assert!(again.is_empty());
    }
});
