//! EPMD request decoding (`EpmdRequest::decode`), as the embedded EPMD server runs it: bytes
//! arrive in chunks and the decoder is called after each.
//!
//! Input: `[seed0, seed1, stream..]`; the seed chooses the chunk boundaries.
//!
//! Checked: no panic; `Ok(None)` and errors consume nothing; feeding the stream in chunks
//! gives the same requests and the same error as feeding it at once; a decoded request
//! re-encodes to bytes that decode to the same request; nothing allocates more than 64 KiB.
#![no_main]

use beamlink::proto::epmd::{EpmdRequest, EpmdWireError};
use beamlink_fuzz::{Chunker, measure};
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

type Outcome = (Vec<EpmdRequest>, Option<EpmdWireError>);

/// Decodes everything buffered; `None` = stopped on an error.
fn drain(buf: &mut BytesMut, seen: &mut Vec<EpmdRequest>) -> Option<EpmdWireError> {
    loop {
        let before = buf.clone();
        match EpmdRequest::decode(buf) {
            Ok(Some(req)) => {
                assert!(buf.len() < before.len(), "a request takes bytes");
                seen.push(req);
            }
            Ok(None) => {
                assert_eq!(*buf, before, "Ok(None) consumes nothing");
                return None;
            }
            Err(e) => {
                assert_eq!(*buf, before, "an error consumes nothing");
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
    let (whole, usage) = measure(|| at_once(stream));
    assert!(usage.largest <= 64 * 1024 + stream.len(), "{usage:?}");
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
