//! Post-handshake framing and message decoding (`proto::frame`): `take_frame` with a small
//! cap, then `decode_message` on every message (ecosystem.md C4, C18).
//!
//! Input: `[cap_hi, cap_lo, stream..]`: the cap is 0..=65535 bytes.
//!
//! Checked: no panic; `Ok(None)` and errors consume nothing, and a refused length reserves
//! nothing; a pending frame reserves no more than it needs; every decoded message round-trips
//! (`encode_message` → `take_frame` → `decode_message`) under every flag combination that
//! changes its form; errors format.
#![no_main]

use beamlink::proto::frame::{self, Frame};
use beamlink_fuzz::{check_control_round_trips, measure};
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [c0, c1, stream @ ..] = data else {
        return;
    };
    let cap = u32::from(u16::from_be_bytes([*c0, *c1]));
    let mut buf = BytesMut::from(stream);
    loop {
        let before = buf.clone();
        let (taken, usage) = measure(|| frame::take_frame(&mut buf, cap));
        match taken {
            Ok(Some(Frame::Tick)) => assert_eq!(buf.len(), before.len() - 4),
            Ok(Some(Frame::Message(bytes))) => {
                assert!(bytes.len() as u32 <= cap);
                assert_eq!(buf.len(), before.len() - 4 - bytes.len());
                match frame::decode_message(&bytes) {
                    Ok(control) => {
                        let _ = format!("{control:?}");
                        check_control_round_trips(&control);
                    }
                    Err(e) => {
                        let _ = format!("{e} {e:?}");
                    }
                }
            }
            Ok(None) => {
                assert_eq!(buf, before, "Ok(None) consumes nothing");
                // Room is made for the pending frame only: BytesMut grows the allocation it
                // already has (consumed frames included) by at most what the frame needs,
                // possibly rounded up to twice its size.
                let need = 4 + cap as usize;
                assert!(usage.largest <= 2 * (stream.len() + need), "{usage:?}");
                break;
            }
            Err(e) => {
                assert_eq!(buf, before, "an error consumes nothing");
                assert_eq!(usage.peak, 0, "a refused length reserves nothing");
                let _ = format!("{e} {e:?}");
                break;
            }
        }
    }
});
