//! Byte fixtures captured from real BEAM nodes (`fixtures/README.md`): every handshake
//! transcript replays through our state machine byte for byte, and every captured frame
//! decodes and re-encodes to the same bytes.

use beamlink::proto::control::Control;
use beamlink::proto::digest::Cookie;
use beamlink::proto::flags::DistFlags;
use beamlink::proto::frame::{self, Frame};
use beamlink::proto::handshake::{Initiator, InitiatorStep, LocalNode, Message, take_packet};
use beamlink::proto::node_name::NodeName;
use beamlink::proto::term::{Decoder, encode};
use bytes::{Bytes, BytesMut};
use std::path::{Path, PathBuf};

fn fixtures(dir: &str, ext: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no fixtures in {}", root.display());
    files
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

struct Transcript {
    header: Vec<(String, String)>,
    /// (true = we sent, message without its length)
    messages: Vec<(bool, Vec<u8>)>,
}

fn read_transcript(path: &Path) -> Transcript {
    let text = std::fs::read_to_string(path).unwrap();
    let mut t = Transcript {
        header: Vec::new(),
        messages: Vec::new(),
    };
    for line in text.lines() {
        if let Some(h) = line.strip_prefix("# ") {
            if let Some((k, v)) = h.split_once(": ") {
                t.header.push((k.to_string(), v.to_string()));
            }
        } else if let Some(m) = line.strip_prefix("> ") {
            t.messages.push((true, unhex(m)));
        } else if let Some(m) = line.strip_prefix("< ") {
            t.messages.push((false, unhex(m)));
        }
    }
    t
}

impl Transcript {
    fn get(&self, key: &str) -> &str {
        &self.header.iter().find(|(k, _)| k == key).unwrap().1
    }
}

#[test]
fn initiator_transcripts_replay_byte_for_byte() {
    for path in fixtures("handshake", "transcript") {
        let t = read_transcript(&path);
        if t.get("role") != "initiator" {
            continue;
        }
        // Our name message gives our flags and creation; our reply gives our challenge.
        let (_, first) = &t.messages[0];
        let Message::Name {
            flags, creation, ..
        } = Message::decode_name(first).unwrap()
        else {
            panic!("{}: first message is not a name", path.display())
        };
        let reply = t
            .messages
            .iter()
            .find(|(ours, m)| *ours && m[0] == b'r')
            .unwrap();
        let Message::ChallengeReply { challenge, .. } =
            Message::decode_challenge_reply(&reply.1).unwrap()
        else {
            unreachable!()
        };
        let local = LocalNode {
            name: NodeName::parse(t.get("local")).unwrap(),
            flags,
            creation,
            cookie: Cookie::new(t.get("cookie")),
        };
        let mut machine = Initiator::new(local, NodeName::parse(t.get("peer")).unwrap(), challenge);
        let mut out = BytesMut::new();
        machine.start(&mut out);
        let mut sent = Vec::new();
        let mut done = None;
        for (ours, m) in &t.messages {
            if *ours {
                continue;
            }
            while let Some(p) = take_packet(&mut out) {
                sent.push(p.to_vec());
            }
            match machine.receive(m, &mut out).unwrap() {
                InitiatorStep::Done(e) => done = Some(e),
                InitiatorStep::Continue => {}
                InitiatorStep::Alive => panic!("unexpected alive"),
            }
        }
        while let Some(p) = take_packet(&mut out) {
            sent.push(p.to_vec());
        }
        let recorded: Vec<Vec<u8>> = t
            .messages
            .iter()
            .filter(|(o, _)| *o)
            .map(|(_, m)| m.clone())
            .collect();
        assert_eq!(sent, recorded, "{}", path.display());
        let done = done.unwrap_or_else(|| panic!("{}: handshake not done", path.display()));
        assert_eq!(
            DistFlags::missing_mandatory(done.peer_flags),
            DistFlags::EMPTY
        );
        assert!(done.flags.is_hidden());
    }
}

#[test]
fn captured_frames_decode_and_reencode_identically() {
    // The flags of the captured connections: what beamlink offered (without the
    // distribution header: these are the pass-through captures) and every OTP 25+ node
    // offers too.
    let no_header = DistFlags(
        DistFlags::BEAMLINK_DEFAULT.0
            & !(DistFlags::DIST_HDR_ATOM_CACHE.0 | DistFlags::FRAGMENTS.0),
    );
    for path in fixtures("dist", "bin") {
        let flags = DistFlags::negotiate(no_header, peer_flags(&path));
        let raw = std::fs::read(&path).unwrap();
        let mut buf = BytesMut::from(&raw[..]);
        let Some(Frame::Message(bytes)) = frame::take_frame(&mut buf, u32::MAX).unwrap() else {
            panic!("{}: not a message frame", path.display())
        };
        assert!(buf.is_empty(), "{}: trailing bytes", path.display());
        let control =
            frame::decode_message(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));

        // Each term re-encodes to the BEAM's bytes.
        let mut d = Decoder::new(&bytes, 1);
        let mut reencoded = BytesMut::from(&[frame::PASS_THROUGH][..]);
        while !d.is_at_end() {
            let t = d.term().unwrap();
            encode(&t, &mut reencoded).unwrap();
        }
        assert_eq!(&reencoded[..], &bytes[..], "{}: term bytes", path.display());

        // The control message, encoded the way we send it, is the same frame.
        let mut ours = BytesMut::new();
        frame::encode_message(&control, flags, &mut ours).unwrap();
        assert_eq!(
            Bytes::from(ours.to_vec()),
            Bytes::from(raw.clone()),
            "{}: control message {control:?}",
            path.display()
        );
        let _: &Control = &control;
    }
}

/// What the BEAM of a capture offered: OTP 25 and 27 the same flags, OTP 29 also
/// ALTACT_SIG and NATIVE_RECORDS (its challenge in `handshake/otp29-initiator.transcript`).
fn peer_flags(path: &Path) -> DistFlags {
    let name = path.file_name().unwrap().to_string_lossy();
    if name.starts_with("otp29-") {
        DistFlags(0x6D_07DF_7FBD)
    } else {
        DistFlags(0x0D_07DF_7FBD)
    }
}

/// The OTP 29 captures hold what OTP 28+ sends with ALTACT_SIG and NATIVE_RECORDS
/// negotiated: a gen_server reply to our alias as `ALTACT_SIG_SEND` {37, ALIAS, From, Alias},
/// `erlang:send/3` with `[priority]` to a registered name as {37, PRIO|NAME, From, Name},
/// and a native record (`RECORD_EXT`, tag 67) inside a message.
#[test]
fn otp29_sends_altact_signals_and_native_records() {
    use beamlink::proto::control::SignalTarget;
    use beamlink::proto::dist_header::DistDecoder;
    for dir in ["dist", "dist-header"] {
        let files = fixtures(dir, "bin");
        let mut seen = (false, false, false);
        let mut decoder = DistDecoder::new(
            DistFlags::negotiate(DistFlags::BEAMLINK_DEFAULT, DistFlags(0x6D_07DF_7FBD)),
            64 << 20,
        );
        let mut ordered: Vec<&PathBuf> = files
            .iter()
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("otp29-")
            })
            .collect();
        ordered.sort_by_key(|p| {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            name.split('-').nth(2).unwrap().parse::<u32>().unwrap()
        });
        for path in ordered {
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            let raw = std::fs::read(path).unwrap();
            let mut buf = BytesMut::from(&raw[..]);
            let Some(Frame::Message(bytes)) = frame::take_frame(&mut buf, u32::MAX).unwrap() else {
                continue;
            };
            let Some(control) = decoder.decode(&bytes).unwrap() else {
                continue;
            };
            if name.contains("alias_reply") && name.ends_with("alias_send.bin") {
                // The control tuple starts {37, 4, ...}: small tuple of 4, op 37, flags 4.
                let at = bytes.windows(6).position(|w| w == [104, 4, 97, 37, 97, 4]);
                assert!(at.is_some(), "{name}: not ALTACT_SIG_SEND with ALIAS");
                assert!(matches!(control, Control::AliasSend { .. }), "{name}");
                seen.0 = true;
            }
            if name.contains("priority_send") && name.ends_with("altact_sig.bin") {
                let Control::AltactSig {
                    to: SignalTarget::Name(to),
                    priority: true,
                    exit: false,
                    token: None,
                    payload,
                    ..
                } = &control
                else {
                    panic!("{name}: {control:?}")
                };
                assert_eq!(to.as_str(), "beamlink");
                assert_eq!(
                    *payload,
                    beamlink::proto::term::Term::atom("priority_hello")
                );
                seen.1 = true;
            }
            if name.contains("native_record") && name.ends_with("reg_send.bin") {
                let Control::RegSend { message, .. } = &control else {
                    panic!("{name}: {control:?}")
                };
                let beamlink::proto::term::Term::Record(r) = message else {
                    panic!("{name}: {message:?}")
                };
                assert_eq!((r.module.as_str(), r.name.as_str()), ("fixture", "point"));
                assert!(r.exported);
                assert_eq!(r.get("x"), Some(&beamlink::proto::term::Term::Int(1)));
                assert_eq!(r.get("y"), Some(&beamlink::proto::term::Term::atom("two")));
                seen.2 = true;
            }
        }
        assert_eq!(
            seen,
            (true, true, true),
            "{dir}: alias reply, priority, record"
        );
    }
}

/// Frames with distribution headers (atom cache references, fragments), decoded in the order
/// the BEAM sent them, since the atom cache carries over from message to message.
#[test]
fn header_frames_decode_in_order_and_reencode() {
    use beamlink::proto::dist_header::DistDecoder;
    let files = fixtures("dist-header", "bin");
    let mut releases: Vec<String> = files
        .iter()
        .map(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .split('-')
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    releases.dedup();
    for release in releases {
        let mut ordered: Vec<&PathBuf> = files
            .iter()
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with(&format!("{release}-"))
            })
            .collect();
        let flags = DistFlags::negotiate(DistFlags::BEAMLINK_DEFAULT, peer_flags(ordered[0]));
        // Capture order is the frame index, the third dash-separated field.
        ordered.sort_by_key(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .split('-')
                .nth(2)
                .unwrap()
                .parse::<u32>()
                .unwrap()
        });
        let mut decoder = DistDecoder::new(flags, 64 << 20);
        let (mut complete, mut fragments, mut cached_refs) = (0, 0, 0);
        for path in ordered {
            let raw = std::fs::read(path).unwrap();
            let mut buf = BytesMut::from(&raw[..]);
            let Some(Frame::Message(bytes)) = frame::take_frame(&mut buf, u32::MAX).unwrap() else {
                panic!("{}: not a message frame", path.display())
            };
            assert_eq!(bytes[0], 131, "{}: no distribution header", path.display());
            if bytes[1] == 68 && bytes[2] > 0 {
                cached_refs += 1;
            }
            match decoder
                .decode(&bytes)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            {
                None => fragments += 1,
                Some(control) => {
                    complete += 1;
                    let mut ours = BytesMut::new();
                    frame::encode_message(&control, flags, &mut ours).unwrap();
                    let Some(Frame::Message(again)) =
                        frame::take_frame(&mut ours, u32::MAX).unwrap()
                    else {
                        unreachable!()
                    };
                    let back = DistDecoder::new(flags, 64 << 20).decode(&again).unwrap();
                    assert_eq!(back, Some(control), "{}", path.display());
                }
            }
        }
        assert_eq!(
            decoder.partial_bytes(),
            0,
            "{release}: a fragmented message never completed"
        );
        assert!(
            fragments >= 4,
            "{release}: the 200 kB message should come in fragments"
        );
        assert!(
            cached_refs > 0,
            "{release}: no atom cache references captured"
        );
        assert!(complete >= 20, "{release}: {complete} messages");
    }
}

#[test]
fn truncated_and_corrupted_frames_give_typed_errors() {
    use beamlink::proto::dist_header::DistDecoder;
    let flags = DistFlags::negotiate(DistFlags::BEAMLINK_DEFAULT, DistFlags(0x0D_07DF_7FBD));
    for path in fixtures("dist-header", "bin") {
        let raw = std::fs::read(&path).unwrap();
        let body = Bytes::from(raw[4..].to_vec());
        for cut in 0..body.len().min(300) {
            let _ = DistDecoder::new(flags, 1 << 20).decode(&body.slice(..cut));
        }
        for i in 0..body.len().min(300) {
            for v in [0u8, 0x7f, 0xff] {
                let mut b = body.to_vec();
                b[i] = v;
                let _ = DistDecoder::new(flags, 1 << 20).decode(&Bytes::from(b));
            }
        }
    }
    for path in fixtures("dist", "bin") {
        let raw = std::fs::read(&path).unwrap();
        let body = Bytes::from(raw[4..].to_vec());
        for cut in 0..body.len() {
            let r = frame::decode_message(&body.slice(..cut));
            assert!(r.is_err(), "{}: truncated at {cut} decoded", path.display());
        }
        // Every single-byte change: an error or a message, never a panic.
        for i in 0..body.len() {
            for v in [0u8, 0x7f, 0xff] {
                let mut b = body.to_vec();
                b[i] = v;
                let _ = frame::decode_message(&Bytes::from(b));
            }
        }
    }
    for path in fixtures("handshake", "transcript") {
        let t = read_transcript(&path);
        for (_, m) in &t.messages {
            for cut in 0..m.len() {
                let m = &m[..cut];
                let _ = Message::decode_name(m);
                let _ = Message::decode_status(m);
                let _ = Message::decode_challenge(m);
                let _ = Message::decode_challenge_reply(m);
                let _ = Message::decode_challenge_ack(m);
            }
        }
    }
}
