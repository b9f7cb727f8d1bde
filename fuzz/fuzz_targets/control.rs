//! Control messages (`proto::control`): `Control::from_terms` on arbitrary decoded terms, and
//! for every valid one the round trips `to_terms` → `from_terms` and `encode_message` →
//! `decode_message` under every flag combination that changes its form (`SEND_SENDER`,
//! `EXIT_PAYLOAD`).
//!
//! Input: `[mode, op, terms..]`, `terms` being versioned terms one after another.
//! * `mode` bit 0 clear: the first term is the control term, the second (if any) the payload,
//!   as `decode_message` reads a pass-through message (so captured frames are good seeds);
//! * bit 0 set: the control term is the tuple `{op, T1, .., Tn}` of the decoded terms, and if
//!   bit 1 is set the last one is the payload instead; this reaches every operation's field
//!   checks without the fuzzer having to build the tuple header.
#![no_main]

use beamlink::proto::control::Control;
use beamlink::proto::term::{Decoder, Term};
use beamlink_fuzz::check_control_round_trips;
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [mode, op, rest @ ..] = data else {
        return;
    };
    let buf = Bytes::copy_from_slice(rest);
    let mut decoder = Decoder::new(&buf, 0);
    let mut terms = Vec::new();
    while !decoder.is_at_end() && terms.len() < 10 {
        match decoder.term() {
            Ok(t) => terms.push(t),
            Err(_) => break,
        }
    }
    let (control, payload) = if mode & 1 == 0 {
        let mut terms = terms.into_iter();
        let Some(control) = terms.next() else {
            return;
        };
        (control, terms.next())
    } else {
        let payload = if mode & 2 == 2 { terms.pop() } else { None };
        let mut fields = vec![Term::Int(i64::from(*op))];
        fields.extend(terms);
        (Term::Tuple(fields), payload)
    };
    match Control::from_terms(control, payload) {
        Ok(c) => {
            let _ = format!("{c:?}");
            check_control_round_trips(&c);
        }
        Err(e) => {
            let _ = format!("{e} {e:?}");
        }
    }
});
