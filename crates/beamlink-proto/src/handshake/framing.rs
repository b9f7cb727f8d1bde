//! How handshake messages are framed on the wire: a 2-byte length on plain TCP
//! (`inet_tcp_dist`: `{packet, 2}` until `dist_util` switches to 4), a 4-byte length inside
//! TLS (`inet_tls_dist:fam_listen/3` and `do_setup/7` open the TLS socket with `{packet, 4}`
//! from the start, so the whole handshake runs 4-byte framed).
//!
//! The state machines write every message with the 2-byte length ([`Message::encode`]);
//! [`Framing::frame_outgoing`] re-prefixes them for a 4-byte connection, so the machines
//! carry no framing state.
//!
//! Plain and TLS distribution on the same port never work, and the BEAM does not say so;
//! the first bytes do: a TLS node answers a plain name message at once with a TLS alert
//! record (`15 03 03 00 02 02 0a`, seen from OTP 25, 27 and 29), and a TLS client opens with
//! a handshake record (`16 03 01 ...`). Neither can start a plain handshake message: they
//! would announce 5 379 and 5 635 bytes, far more than any handshake message holds.
//!
//! [`Message::encode`]: super::Message::encode

use super::MAX_MESSAGE;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use std::fmt;

/// The length prefix of handshake messages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Framing {
    /// 2-byte length: distribution over plain TCP.
    #[default]
    Plain,
    /// 4-byte length: distribution inside TLS (`inet_tls_dist`).
    Tls,
}

/// What the first bytes on a plain connection say instead of a handshake message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FramingError {
    /// A TLS record arrived where a plain handshake message was due: the peer runs TLS
    /// distribution (`-proto_dist inet_tls`).
    TlsRecord {
        /// The record type: 21 (alert, a TLS node's answer to our plain name) or 22
        /// (handshake, a TLS client's hello).
        content_type: u8,
    },
    /// A 4-byte length announcing more than any handshake message holds.
    TooLong {
        /// The announced length.
        len: u32,
    },
}

impl fmt::Display for FramingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FramingError::TlsRecord { content_type: 21 } => {
                f.write_str("answered with a TLS alert: it speaks TLS distribution")
            }
            FramingError::TlsRecord { .. } => {
                f.write_str("opened with a TLS hello: it speaks TLS distribution")
            }
            FramingError::TooLong { len } => write!(
                f,
                "announced a handshake message of {len} bytes (at most {MAX_MESSAGE})"
            ),
        }
    }
}

impl std::error::Error for FramingError {}

/// TLS record types a TLS peer can open with: alert and handshake.
const TLS_ALERT: u8 = 21;
const TLS_HANDSHAKE: u8 = 22;

impl Framing {
    /// Bytes in the length prefix.
    pub fn prefix_len(self) -> usize {
        match self {
            Framing::Plain => 2,
            Framing::Tls => 4,
        }
    }

    /// Takes one message off `buf` (without its length), `Ok(None)` until it is complete.
    /// Nothing is allocated for a length before it is checked.
    pub fn take_packet(self, buf: &mut BytesMut) -> Result<Option<Bytes>, FramingError> {
        match self {
            Framing::Plain => {
                if let Some(content_type) = tls_record_start(buf) {
                    return Err(FramingError::TlsRecord { content_type });
                }
                Ok(super::take_packet(buf))
            }
            Framing::Tls => {
                if buf.len() < 4 {
                    return Ok(None);
                }
                let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
                if len as usize > MAX_MESSAGE {
                    return Err(FramingError::TooLong { len });
                }
                if buf.len() < 4 + len as usize {
                    return Ok(None);
                }
                buf.advance(4);
                Ok(Some(buf.split_to(len as usize).freeze()))
            }
        }
    }

    /// Rewrites `out`, a run of 2-byte-framed messages as the state machines write them,
    /// into this framing. A trailing partial message (none is ever written) is kept as is.
    pub fn frame_outgoing(self, out: &mut BytesMut) {
        if self == Framing::Plain || out.is_empty() {
            return;
        }
        let mut framed = BytesMut::with_capacity(out.len() + 8);
        while let Some(message) = super::take_packet(out) {
            framed.put_u32(message.len() as u32);
            framed.put_slice(&message);
        }
        framed.put_slice(out);
        *out = framed;
    }
}

/// The record type if `buf` starts like a TLS record (type, then protocol version 3.x);
/// `None` when it does not, or when fewer than 3 bytes are there to tell.
fn tls_record_start(buf: &[u8]) -> Option<u8> {
    match buf {
        [t @ (TLS_ALERT | TLS_HANDSHAKE), 3, minor, ..] if *minor <= 4 => Some(*t),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handshake::{Message, Status};

    #[test]
    fn tls_framing_uses_four_byte_lengths() {
        let mut out = BytesMut::new();
        Message::Status(Status::Ok).encode(&mut out);
        Message::AliveAnswer(true).encode(&mut out);
        Framing::Tls.frame_outgoing(&mut out);
        assert_eq!(&out[..], b"\0\0\0\x03sok\0\0\0\x05strue");
        let a = Framing::Tls.take_packet(&mut out).unwrap().unwrap();
        let b = Framing::Tls.take_packet(&mut out).unwrap().unwrap();
        assert_eq!((&a[..], &b[..]), (&b"sok"[..], &b"strue"[..]));
        assert!(out.is_empty());
    }

    #[test]
    fn plain_framing_is_left_alone() {
        let mut out = BytesMut::new();
        Message::Status(Status::Ok).encode(&mut out);
        Framing::Plain.frame_outgoing(&mut out);
        assert_eq!(&out[..], b"\0\x03sok");
        assert_eq!(
            Framing::Plain.take_packet(&mut out).unwrap().unwrap(),
            &b"sok"[..]
        );
    }

    #[test]
    fn four_byte_packets_wait_for_all_their_bytes_and_are_capped() {
        let mut buf = BytesMut::from(&b"\0\0\0\x03ab"[..]);
        assert_eq!(Framing::Tls.take_packet(&mut buf), Ok(None));
        buf.put_u8(b'c');
        assert_eq!(
            Framing::Tls.take_packet(&mut buf).unwrap().unwrap(),
            &b"abc"[..]
        );
        let mut huge = BytesMut::from(&[0xff, 0xff, 0xff, 0xff][..]);
        assert_eq!(
            Framing::Tls.take_packet(&mut huge),
            Err(FramingError::TooLong { len: u32::MAX })
        );
        let mut partial = BytesMut::from(&[0u8, 0][..]);
        assert_eq!(Framing::Tls.take_packet(&mut partial), Ok(None));
    }

    #[test]
    fn tls_records_on_a_plain_connection_are_named() {
        // A TLS node's answer to a plain name message (OTP 25, 27, 29 alike).
        let mut alert = BytesMut::from(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x0a][..]);
        let e = Framing::Plain.take_packet(&mut alert).unwrap_err();
        assert_eq!(e, FramingError::TlsRecord { content_type: 21 });
        assert!(e.to_string().contains("TLS distribution"));
        // A TLS client hello.
        let mut hello = BytesMut::from(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01][..]);
        assert_eq!(
            Framing::Plain.take_packet(&mut hello),
            Err(FramingError::TlsRecord { content_type: 22 })
        );
        // Two bytes are not enough to tell; nothing is consumed.
        let mut short = BytesMut::from(&[0x15, 0x03][..]);
        assert_eq!(Framing::Plain.take_packet(&mut short), Ok(None));
        assert_eq!(short.len(), 2);
    }
}
