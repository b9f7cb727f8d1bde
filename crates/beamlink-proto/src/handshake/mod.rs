//! The distribution handshake (`erts/doc/guides/erl_dist_protocol.md`, "Distribution
//! Handshake"; `lib/kernel/src/dist_util.erl`): its messages, their 2-byte-length framing,
//! and the two state machines ([`Initiator`], [`Acceptor`]).
//!
//! Version 6 only: we send `'N'`; as acceptor we also take the old `'n'` name followed by
//! the `'c'` complement, as OTP 25.3+ does.

mod machine;

pub use machine::{
    Acceptor, AcceptorStep, Established, HandshakeError, Initiator, InitiatorStep, LocalNode,
};

use super::digest::Digest;
use super::flags::DistFlags;
use super::node_name::{NodeName, NodeNameError};
use bytes::{BufMut, Bytes, BytesMut};
use std::fmt;

/// Which handshake step a message or an error belongs to, for error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// The initiator's name message (`'N'`/`'n'`).
    Name,
    /// The acceptor's status (`'s'`).
    Status,
    /// The initiator's answer to `alive`.
    AliveAnswer,
    /// The acceptor's challenge (`'N'`).
    Challenge,
    /// The initiator's flags complement (`'c'`), after an old `'n'` name.
    Complement,
    /// The initiator's challenge reply (`'r'`).
    ChallengeReply,
    /// The acceptor's challenge ack (`'a'`).
    ChallengeAck,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Name => "name",
            Step::Status => "status",
            Step::AliveAnswer => "alive answer",
            Step::Challenge => "challenge",
            Step::Complement => "complement",
            Step::ChallengeReply => "challenge reply",
            Step::ChallengeAck => "challenge ack",
        })
    }
}

/// A malformed handshake message.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MessageError {
    /// The message is empty or shorter than its fixed fields.
    TooShort {
        /// The step being decoded.
        step: Step,
        /// Bytes present.
        len: usize,
    },
    /// The first byte is not a tag this step takes.
    UnexpectedTag {
        /// The step being decoded.
        step: Step,
        /// The tag received.
        tag: u8,
    },
    /// A name length field points past the end of the message.
    NameLength {
        /// The step being decoded.
        step: Step,
    },
    /// The name is not `alive@host` (or not UTF-8).
    BadName {
        /// The step being decoded.
        step: Step,
        /// What is wrong with it; `None` when it is not UTF-8.
        reason: Option<NodeNameError>,
    },
    /// A status text that no OTP release sends.
    UnknownStatus {
        /// The text, lossily decoded and cut to 64 bytes.
        text: String,
    },
    /// The old `'n'` name message with a version other than 5.
    OldVersion {
        /// The version field.
        version: u16,
    },
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessageError::TooShort { step, len } => {
                write!(f, "{step} message of {len} bytes is too short")
            }
            MessageError::UnexpectedTag { step, tag } => {
                write!(
                    f,
                    "unexpected tag {tag} ({:?}) in the {step} step",
                    *tag as char
                )
            }
            MessageError::NameLength { step } => {
                write!(f, "name length points past the end of the {step} message")
            }
            MessageError::BadName {
                step,
                reason: Some(r),
            } => {
                write!(f, "bad node name in the {step} message: {r}")
            }
            MessageError::BadName { step, reason: None } => {
                write!(f, "node name in the {step} message is not UTF-8")
            }
            MessageError::UnknownStatus { text } => write!(f, "unknown status {text:?}"),
            MessageError::OldVersion { version } => {
                write!(
                    f,
                    "old-style name message with version {version} (only 5 exists)"
                )
            }
        }
    }
}

impl std::error::Error for MessageError {}

/// Handshake status values (`dist_util.erl` `mark_pending`, `recv_status`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// Go on.
    Ok,
    /// Go on; the acceptor dropped its own attempt towards us.
    OkSimultaneous,
    /// The acceptor's own attempt towards us wins; give up.
    Nok,
    /// Refused (missing flags, not allowed).
    NotAllowed,
    /// The acceptor already has a live connection to this name; answer true or false.
    Alive,
    /// A dynamic name was assigned (`DFLAG_NAME_ME`).
    Named {
        /// The full name given to us.
        name: String,
        /// Our creation.
        creation: u32,
    },
}

impl Status {
    fn text(&self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::OkSimultaneous => "ok_simultaneous",
            Status::Nok => "nok",
            Status::NotAllowed => "not_allowed",
            Status::Alive => "alive",
            Status::Named { .. } => "named:",
        }
    }
}

/// A handshake message. `encode` writes it with its 2-byte length.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// `'N'`: the initiator's name (version 6).
    Name {
        /// Its flags.
        flags: DistFlags,
        /// Its creation.
        creation: u32,
        /// Its full name.
        name: NodeName,
    },
    /// `'n'`: the old name message (version 5), followed later by a complement.
    OldName {
        /// The low 32 bits of its flags.
        flags: DistFlags,
        /// Its full name.
        name: NodeName,
    },
    /// `'s'`: the acceptor's status.
    Status(Status),
    /// `'s'` + `true`/`false`: the initiator's answer to `alive`.
    AliveAnswer(bool),
    /// `'N'`: the acceptor's challenge.
    Challenge {
        /// Its flags.
        flags: DistFlags,
        /// The challenge to answer.
        challenge: u32,
        /// Its creation.
        creation: u32,
        /// Its full name.
        name: NodeName,
    },
    /// `'c'`: the high flag bits and creation after an old name message.
    Complement {
        /// Bits 32..63 of the flags.
        flags_high: u32,
        /// The initiator's creation.
        creation: u32,
    },
    /// `'r'`: the initiator's challenge and its digest of ours.
    ChallengeReply {
        /// The initiator's challenge to us.
        challenge: u32,
        /// Digest of the acceptor's challenge.
        digest: Digest,
    },
    /// `'a'`: the acceptor's digest of the initiator's challenge.
    ChallengeAck {
        /// The digest.
        digest: Digest,
    },
}

/// Largest handshake message: the 2-byte length field allows no more.
pub const MAX_MESSAGE: usize = u16::MAX as usize;

/// Takes one 2-byte-length-prefixed message off `buf`, or `None` until it is complete.
pub fn take_packet(buf: &mut BytesMut) -> Option<Bytes> {
    if buf.len() < 2 {
        return None;
    }
    let len = u16::from_be_bytes([buf[0], buf[1]]) as usize;
    if buf.len() < 2 + len {
        return None;
    }
    let _ = buf.split_to(2);
    Some(buf.split_to(len).freeze())
}

fn put_name(out: &mut BytesMut, name: &NodeName) {
    out.put_u16(name.as_str().len() as u16);
    out.put_slice(name.as_str().as_bytes());
}

impl Message {
    /// Appends the message with its 2-byte length.
    pub fn encode(&self, out: &mut BytesMut) {
        let start = out.len();
        out.put_u16(0);
        match self {
            Message::Name {
                flags,
                creation,
                name,
            } => {
                out.put_u8(b'N');
                out.put_u64(flags.0);
                out.put_u32(*creation);
                put_name(out, name);
            }
            Message::OldName { flags, name } => {
                out.put_u8(b'n');
                out.put_u16(5);
                out.put_u32(flags.0 as u32);
                out.put_slice(name.as_str().as_bytes());
            }
            Message::Status(status) => {
                out.put_u8(b's');
                out.put_slice(status.text().as_bytes());
                if let Status::Named { name, creation } = status {
                    out.put_u16(name.len() as u16);
                    out.put_slice(name.as_bytes());
                    out.put_u32(*creation);
                }
            }
            Message::AliveAnswer(answer) => {
                out.put_u8(b's');
                out.put_slice(if *answer { b"true" } else { b"false" });
            }
            Message::Challenge {
                flags,
                challenge,
                creation,
                name,
            } => {
                out.put_u8(b'N');
                out.put_u64(flags.0);
                out.put_u32(*challenge);
                out.put_u32(*creation);
                put_name(out, name);
            }
            Message::Complement {
                flags_high,
                creation,
            } => {
                out.put_u8(b'c');
                out.put_u32(*flags_high);
                out.put_u32(*creation);
            }
            Message::ChallengeReply { challenge, digest } => {
                out.put_u8(b'r');
                out.put_u32(*challenge);
                out.put_slice(&digest.0);
            }
            Message::ChallengeAck { digest } => {
                out.put_u8(b'a');
                out.put_slice(&digest.0);
            }
        }
        let len = (out.len() - start - 2) as u16;
        out[start..start + 2].copy_from_slice(&len.to_be_bytes());
    }

    /// Decodes the initiator's first message (`'N'` or `'n'`), without its length prefix.
    pub fn decode_name(msg: &[u8]) -> Result<Message, MessageError> {
        let step = Step::Name;
        let mut r = Reader::new(msg, step);
        match r.u8()? {
            b'N' => {
                let flags = DistFlags(r.u64()?);
                let creation = r.u32()?;
                // NAME_ME peers send only a host; we never assign names, so we refuse them
                // like any other malformed name.
                let name = r.name16()?;
                Ok(Message::Name {
                    flags,
                    creation,
                    name,
                })
            }
            b'n' => {
                let version = r.u16()?;
                if version != 5 {
                    return Err(MessageError::OldVersion { version });
                }
                let flags = DistFlags(r.u32()? as u64);
                let name = parse_name(r.rest(), step)?;
                Ok(Message::OldName { flags, name })
            }
            tag => Err(MessageError::UnexpectedTag { step, tag }),
        }
    }

    /// Decodes the acceptor's status.
    pub fn decode_status(msg: &[u8]) -> Result<Message, MessageError> {
        let step = Step::Status;
        let mut r = Reader::new(msg, step);
        match r.u8()? {
            b's' => {}
            tag => return Err(MessageError::UnexpectedTag { step, tag }),
        }
        let text = r.rest();
        let status = match text {
            b"ok" => Status::Ok,
            b"ok_simultaneous" => Status::OkSimultaneous,
            b"nok" => Status::Nok,
            b"not_allowed" => Status::NotAllowed,
            b"alive" => Status::Alive,
            _ if text.starts_with(b"named:") => {
                let mut r = Reader::new(&text[6..], step);
                let len = r.u16()? as usize;
                let name = r.take(len).map_err(|_| MessageError::NameLength { step })?;
                let name = String::from_utf8(name.to_vec())
                    .map_err(|_| MessageError::BadName { step, reason: None })?;
                let creation = r.u32()?;
                Status::Named { name, creation }
            }
            _ => {
                let cut = &text[..text.len().min(64)];
                return Err(MessageError::UnknownStatus {
                    text: String::from_utf8_lossy(cut).into_owned(),
                });
            }
        };
        Ok(Message::Status(status))
    }

    /// Decodes the initiator's answer to `alive`.
    pub fn decode_alive_answer(msg: &[u8]) -> Result<Message, MessageError> {
        let step = Step::AliveAnswer;
        match msg {
            b"strue" => Ok(Message::AliveAnswer(true)),
            b"sfalse" => Ok(Message::AliveAnswer(false)),
            [b's', ..] => Err(MessageError::UnknownStatus {
                text: String::from_utf8_lossy(&msg[1..msg.len().min(65)]).into_owned(),
            }),
            [tag, ..] => Err(MessageError::UnexpectedTag { step, tag: *tag }),
            [] => Err(MessageError::TooShort { step, len: 0 }),
        }
    }

    /// Decodes the acceptor's challenge (only `'N'`, as OTP 25+ accepts).
    pub fn decode_challenge(msg: &[u8]) -> Result<Message, MessageError> {
        let step = Step::Challenge;
        let mut r = Reader::new(msg, step);
        match r.u8()? {
            b'N' => {}
            tag => return Err(MessageError::UnexpectedTag { step, tag }),
        }
        let flags = DistFlags(r.u64()?);
        let challenge = r.u32()?;
        let creation = r.u32()?;
        let name = r.name16()?;
        Ok(Message::Challenge {
            flags,
            challenge,
            creation,
            name,
        })
    }

    /// Decodes the complement that follows an old name message.
    pub fn decode_complement(msg: &[u8]) -> Result<Message, MessageError> {
        let step = Step::Complement;
        let mut r = Reader::new(msg, step);
        match r.u8()? {
            b'c' => {}
            tag => return Err(MessageError::UnexpectedTag { step, tag }),
        }
        Ok(Message::Complement {
            flags_high: r.u32()?,
            creation: r.u32()?,
        })
    }

    /// Decodes the initiator's challenge reply.
    pub fn decode_challenge_reply(msg: &[u8]) -> Result<Message, MessageError> {
        let step = Step::ChallengeReply;
        let mut r = Reader::new(msg, step);
        match r.u8()? {
            b'r' => {}
            tag => return Err(MessageError::UnexpectedTag { step, tag }),
        }
        let challenge = r.u32()?;
        let digest = r.digest()?;
        Ok(Message::ChallengeReply { challenge, digest })
    }

    /// Decodes the acceptor's challenge ack.
    pub fn decode_challenge_ack(msg: &[u8]) -> Result<Message, MessageError> {
        let step = Step::ChallengeAck;
        let mut r = Reader::new(msg, step);
        match r.u8()? {
            b'a' => {}
            tag => return Err(MessageError::UnexpectedTag { step, tag }),
        }
        Ok(Message::ChallengeAck {
            digest: r.digest()?,
        })
    }
}

fn parse_name(bytes: &[u8], step: Step) -> Result<NodeName, MessageError> {
    let text =
        std::str::from_utf8(bytes).map_err(|_| MessageError::BadName { step, reason: None })?;
    NodeName::parse(text).map_err(|e| MessageError::BadName {
        step,
        reason: Some(e),
    })
}

/// Reads fixed fields off a message; every read checks the length first.
struct Reader<'a> {
    msg: &'a [u8],
    pos: usize,
    step: Step,
}

impl<'a> Reader<'a> {
    fn new(msg: &'a [u8], step: Step) -> Reader<'a> {
        Reader { msg, pos: 0, step }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], MessageError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.msg.len());
        match end {
            Some(end) => {
                let s = &self.msg[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(MessageError::TooShort {
                step: self.step,
                len: self.msg.len(),
            }),
        }
    }

    fn u8(&mut self) -> Result<u8, MessageError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, MessageError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, MessageError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, MessageError> {
        Ok(((self.u32()? as u64) << 32) | self.u32()? as u64)
    }

    fn digest(&mut self) -> Result<Digest, MessageError> {
        let b = self.take(16)?;
        let mut d = [0; 16];
        d.copy_from_slice(b);
        Ok(Digest(d))
    }

    /// A name with a 2-byte length; bytes after it are ignored, as the BEAM does.
    fn name16(&mut self) -> Result<NodeName, MessageError> {
        let len = self.u16()? as usize;
        let step = self.step;
        let bytes = self
            .take(len)
            .map_err(|_| MessageError::NameLength { step })?;
        parse_name(bytes, step)
    }

    fn rest(&mut self) -> &'a [u8] {
        let s = &self.msg[self.pos..];
        self.pos = self.msg.len();
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> NodeName {
        NodeName::parse(s).unwrap()
    }

    #[test]
    fn name_message_matches_the_documented_bytes() {
        // protocol.md §2.2: rust@127.0.0.1, flags 0x507070FBC, creation 0x12345678.
        let mut out = BytesMut::new();
        Message::Name {
            flags: DistFlags(0x5_0707_0FBC),
            creation: 0x1234_5678,
            name: name("rust@127.0.0.1"),
        }
        .encode(&mut out);
        let mut expected = vec![
            0x00, 0x1D, 0x4E, 0x00, 0x00, 0x00, 0x05, 0x07, 0x07, 0x0F, 0xBC, 0x12, 0x34, 0x56,
            0x78, 0x00, 0x0E,
        ];
        expected.extend_from_slice(b"rust@127.0.0.1");
        assert_eq!(&out[..], &expected[..]);
        let packet = take_packet(&mut out).unwrap();
        assert!(out.is_empty());
        assert_eq!(
            Message::decode_name(&packet).unwrap(),
            Message::Name {
                flags: DistFlags(0x5_0707_0FBC),
                creation: 0x1234_5678,
                name: name("rust@127.0.0.1"),
            }
        );
    }

    #[test]
    fn every_message_round_trips() {
        let d = Digest([7; 16]);
        let cases = [
            (
                Step::Name,
                Message::OldName {
                    flags: DistFlags(0x7fbc),
                    name: name("a@b.c"),
                },
            ),
            (Step::Status, Message::Status(Status::OkSimultaneous)),
            (
                Step::Status,
                Message::Status(Status::Named {
                    name: "x@h".into(),
                    creation: 9,
                }),
            ),
            (Step::AliveAnswer, Message::AliveAnswer(false)),
            (
                Step::Challenge,
                Message::Challenge {
                    flags: DistFlags(1 << 40),
                    challenge: u32::MAX,
                    creation: 4,
                    name: name("z@10.0.0.1"),
                },
            ),
            (
                Step::Complement,
                Message::Complement {
                    flags_high: 0xd,
                    creation: 77,
                },
            ),
            (
                Step::ChallengeReply,
                Message::ChallengeReply {
                    challenge: 1,
                    digest: d,
                },
            ),
            (Step::ChallengeAck, Message::ChallengeAck { digest: d }),
        ];
        for (step, msg) in cases {
            let mut out = BytesMut::new();
            msg.encode(&mut out);
            let p = take_packet(&mut out).unwrap();
            let decoded = match step {
                Step::Name => Message::decode_name(&p),
                Step::Status => Message::decode_status(&p),
                Step::AliveAnswer => Message::decode_alive_answer(&p),
                Step::Challenge => Message::decode_challenge(&p),
                Step::Complement => Message::decode_complement(&p),
                Step::ChallengeReply => Message::decode_challenge_reply(&p),
                Step::ChallengeAck => Message::decode_challenge_ack(&p),
            };
            assert_eq!(decoded.unwrap(), msg);
        }
    }

    #[test]
    fn malformed_messages_give_typed_errors() {
        assert_eq!(
            Message::decode_name(b""),
            Err(MessageError::TooShort {
                step: Step::Name,
                len: 0
            })
        );
        assert_eq!(
            Message::decode_name(b"X"),
            Err(MessageError::UnexpectedTag {
                step: Step::Name,
                tag: b'X'
            })
        );
        // Name length 0xFFFF with 3 bytes of name.
        let mut m = vec![b'N', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF];
        m.extend_from_slice(b"a@b");
        assert_eq!(
            Message::decode_name(&m),
            Err(MessageError::NameLength { step: Step::Name })
        );
        let mut m = vec![b'N', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3];
        m.extend_from_slice(b"abc");
        assert!(matches!(
            Message::decode_name(&m),
            Err(MessageError::BadName {
                reason: Some(NodeNameError::NoAt),
                ..
            })
        ));
        assert!(matches!(
            Message::decode_status(b"swhatever"),
            Err(MessageError::UnknownStatus { .. })
        ));
        assert!(matches!(
            Message::decode_challenge_ack(b"a123"),
            Err(MessageError::TooShort { .. })
        ));
        assert!(matches!(
            Message::decode_challenge(b"n\0\0\0\0"),
            Err(MessageError::UnexpectedTag { .. })
        ));
    }

    #[test]
    fn packets_wait_for_all_their_bytes() {
        let mut buf = BytesMut::from(&[0u8, 3, b'a', b'b'][..]);
        assert!(take_packet(&mut buf).is_none());
        assert_eq!(buf.len(), 4);
        buf.extend_from_slice(b"c\x00");
        assert_eq!(&take_packet(&mut buf).unwrap()[..], b"abc");
        assert_eq!(&buf[..], b"\x00");
    }
}
