//! Post-handshake framing and message decoding (`proto::frame`, `proto::dist_header`):
//! `take_frame` with a small cap, then every message through `decode_message` (pass-through)
//! and through one `DistDecoder` with the flags beamlink offers, as a link reads them: atom
//! cache updates and references, fragments and their reassembly carry over from message to
//! message (ecosystem.md C4, C18).
//!
//! Input: `[cap_hi, cap_lo, stream..]`: the cap is 0..=65535 bytes.
//!
//! Checked: no panic; `Ok(None)` and errors consume nothing, and a refused length reserves
//! nothing; a pending frame reserves no more than it needs; fragments in progress never hold
//! more than the cap; every decoded message round-trips
//! (`to_terms` → `from_terms`, `encode_message` → `take_frame` → `decode_message`) with the
//! flags beamlink offers; errors format.
#![no_main]

use beamlink::proto::dist_header::DistDecoder;
use beamlink::proto::flags::DistFlags;
use beamlink::proto::frame::{self, Frame};
use beamlink_fuzz::{check_control_round_trip, measure};
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [c0, c1, stream @ ..] = data else {
        return;
    };
    let cap = u32::from(u16::from_be_bytes([*c0, *c1]));
    let mut buf = BytesMut::from(stream);
    let mut decoder = DistDecoder::new(DistFlags::BEAMLINK_DEFAULT, cap as usize);
    // What the frames so far took off the front: the buffer always holds the rest.
    let mut consumed = 0;
    loop {
        let len_before = buf.len();
        let (taken, usage) = measure(|| frame::take_frame(&mut buf, cap));
        match taken {
            Ok(Some(Frame::Tick)) => {
                consumed += 4;
                assert_eq!(buf.len(), len_before - 4);
            }
            Ok(Some(Frame::Message(bytes))) => {
                assert!(bytes.len() as u32 <= cap);
                assert_eq!(
                    &bytes[..],
                    &stream[consumed + 4..consumed + 4 + bytes.len()]
                );
                consumed += 4 + bytes.len();
                assert_eq!(buf.len(), len_before - 4 - bytes.len());
                match frame::decode_message(&bytes) {
                    Ok(control) => {
                        let _ = format!("{control:?}");
                        // Every flag combination is the `control` target's job; here, the
                        // flags beamlink offers.
                        check_control_round_trip(&control, DistFlags::BEAMLINK_DEFAULT);
                    }
                    Err(e) => {
                        let _ = format!("{e} {e:?}");
                    }
                }
                match decoder.decode(&bytes) {
                    // A pass-through message decodes as above: checked already.
                    Ok(Some(control)) if bytes.first() != Some(&112) => {
                        check_control_round_trip(&control, DistFlags::BEAMLINK_DEFAULT);
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => {}
                    Err(e) => {
                        let _ = format!("{e} {e:?}");
                    }
                }
                assert!(decoder.partial_bytes() <= cap as usize, "{decoder:?}");
            }
            Ok(None) => {
                assert_eq!(&buf[..], &stream[consumed..], "Ok(None) consumes nothing");
                // Room is made for the pending frame only: BytesMut grows the allocation it
                // already has (consumed frames included) by at most what the frame needs,
                // possibly rounded up to twice its size.
                let need = 4 + cap as usize;
                assert!(usage.largest <= 2 * (stream.len() + need), "{usage:?}");
                break;
            }
            Err(e) => {
                assert_eq!(&buf[..], &stream[consumed..], "an error consumes nothing");
                assert_eq!(usage.peak, 0, "a refused length reserves nothing");
                let _ = format!("{e} {e:?}");
                break;
            }
        }
    }
});
