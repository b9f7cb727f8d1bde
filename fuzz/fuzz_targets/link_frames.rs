//! The link reader's frame splitting (`transport::connection` `read_loop`) without tokio: the same
//! stream fed in fuzzer-chosen chunks, with the read loop's buffer policy, must give the same
//! frames and the same error as the stream fed at once.
//!
//! Input: `[cap_hi, cap_lo, seed0, seed1, stream..]`; the cap is 0..=65535 bytes (scaled
//! up to 64 MiB when cap_hi's top bit is set), the seed picks the chunk boundaries.
//!
//! The buffer policy copied from `read_loop`: after draining the frames, a buffer that is
//! empty and holds more than 4 x READ_CHUNK is replaced by a fresh READ_CHUNK one; otherwise
//! READ_CHUNK more is reserved when less than a quarter of it is spare. A read appends at most
//! the spare capacity (`read_buf`).
#![no_main]

use beamlink::proto::frame::{self, Frame, FrameError};
use beamlink_fuzz::Chunker;
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

/// `transport::connection::READ_CHUNK`.
const READ_CHUNK: usize = 8 * 1024;

type Outcome = (Vec<Frame>, Option<FrameError>);

fn drain(buf: &mut BytesMut, cap: u32, frames: &mut Vec<Frame>) -> Option<FrameError> {
    loop {
        match frame::take_frame(buf, cap) {
            Ok(Some(f)) => frames.push(f),
            Ok(None) => return None,
            Err(e) => return Some(e),
        }
    }
}

fn at_once(stream: &[u8], cap: u32) -> Outcome {
    let mut buf = BytesMut::from(stream);
    let mut frames = Vec::new();
    let err = drain(&mut buf, cap, &mut frames);
    (frames, err)
}

fn as_the_link_reads(stream: &[u8], cap: u32, seed: &[u8]) -> Outcome {
    let mut chunker = Chunker::new(seed);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut rest = stream;
    loop {
        if let Some(e) = drain(&mut buf, cap, &mut frames) {
            return (frames, Some(e));
        }
        if buf.is_empty() && buf.capacity() > 4 * READ_CHUNK {
            buf = BytesMut::with_capacity(READ_CHUNK);
        } else if buf.capacity() - buf.len() < READ_CHUNK / 4 {
            buf.reserve(READ_CHUNK);
        }
        if rest.is_empty() {
            return (frames, None);
        }
        // A read gives what the peer sent so far, at most the spare room of the buffer.
        let spare = buf.capacity() - buf.len();
        let n = chunker.size().min(rest.len()).min(spare.max(1));
        buf.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        // The buffer never holds more than one whole frame plus a read's worth of spare.
        let bound = 4 + cap as usize + 4 * READ_CHUNK;
        assert!(
            buf.capacity() <= 2 * bound,
            "buffer grew to {}",
            buf.capacity()
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let [c0, c1, s0, s1, stream @ ..] = data else {
        return;
    };
    let mut cap = u32::from(u16::from_be_bytes([*c0 & 0x7f, *c1]));
    if *c0 & 0x80 != 0 {
        cap = cap.saturating_mul(1024).min(frame::DEFAULT_MAX_FRAME);
    }
    let whole = at_once(stream, cap);
    let chunked = as_the_link_reads(stream, cap, &[*s0, *s1]);
    assert_eq!(whole, chunked, "chunk boundaries change the frames");
});
