//! The handshake messages as bytes: [`Message::encode`] and one decoder per step
//! (`dist_util:send_name/1`, `recv_name/1`, `recv_status/1`, `send_challenge/4`,
//! `recv_challenge/1`, `send_challenge_reply/3`, `recv_challenge_ack/1`).

use super::{Message, MessageError, Status, Step};
use crate::digest::Digest;
use crate::flags::DistFlags;
use crate::node_name::{NodeName, NodeNameError};
use bytes::{BufMut, BytesMut};

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
            Message::NameMe {
                flags,
                creation,
                host,
            } => {
                out.put_u8(b'N');
                out.put_u64(flags.0);
                out.put_u32(*creation);
                out.put_u16(host.len() as u16);
                out.put_slice(host.as_bytes());
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
                if flags.contains(DistFlags::NAME_ME) {
                    // Only a host, which must not be empty or hold an `@`
                    // (`dist_util:is_name_ok/2`).
                    let host = r.host16()?;
                    return Ok(Message::NameMe {
                        flags,
                        creation,
                        host,
                    });
                }
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

    /// A host with a 2-byte length, as a NAME_ME initiator sends it.
    fn host16(&mut self) -> Result<String, MessageError> {
        let len = self.u16()? as usize;
        let step = self.step;
        let bytes = self
            .take(len)
            .map_err(|_| MessageError::NameLength { step })?;
        let host =
            std::str::from_utf8(bytes).map_err(|_| MessageError::BadName { step, reason: None })?;
        let reason = if host.is_empty() {
            NodeNameError::EmptyHost
        } else if host.contains('@') {
            NodeNameError::SeveralAts
        } else if host.chars().count() > crate::term::Atom::MAX_CHARS {
            NodeNameError::TooLong {
                chars: host.chars().count(),
            }
        } else {
            return Ok(host.to_string());
        };
        Err(MessageError::BadName {
            step,
            reason: Some(reason),
        })
    }

    fn rest(&mut self) -> &'a [u8] {
        let s = &self.msg[self.pos..];
        self.pos = self.msg.len();
        s
    }
}
