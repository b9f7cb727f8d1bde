//! Framing after the handshake (`erl_dist_protocol.md`, "Protocol between connected
//! nodes"): every packet is a 4-byte length and that many bytes; length 0 is a tick. A
//! message in pass-through form is `112`, the control term, then the payload term, each with
//! its own version byte.

use super::control::{Control, ControlError};
use super::flags::DistFlags;
use super::term::{DecodeError, Decoder, EncodeError, Holes};
use bytes::{BufMut, Bytes, BytesMut};
use std::fmt;

/// First byte of a pass-through message.
pub const PASS_THROUGH: u8 = 112;

/// Default cap on one packet: 64 MiB.
pub const DEFAULT_MAX_FRAME: u32 = 64 * 1024 * 1024;

/// One packet off the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// A keep-alive (length 0).
    Tick,
    /// A message, without its length.
    Message(Bytes),
}

/// A packet that must not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// The length prefix exceeds the configured cap; nothing was allocated for it.
    TooLarge {
        /// The announced length.
        len: u32,
        /// The cap.
        max: u32,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::TooLarge { len, max } => {
                write!(f, "announced a {len}-byte packet, over the {max}-byte cap")
            }
        }
    }
}

impl std::error::Error for FrameError {}

/// Takes one packet off `buf`: `Ok(None)` until it is complete. The length is checked
/// against `max` before anything is reserved, and `buf` is asked to grow only to what the
/// packet needs.
pub fn take_frame(buf: &mut BytesMut, max: u32) -> Result<Option<Frame>, FrameError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    let total = 4 + len as usize;
    if buf.len() < total {
        buf.reserve(total - buf.len());
        return Ok(None);
    }
    let _ = buf.split_to(4);
    if len == 0 {
        return Ok(Some(Frame::Tick));
    }
    Ok(Some(Frame::Message(buf.split_to(len as usize).freeze())))
}

/// Appends a tick.
pub fn encode_tick(out: &mut BytesMut) {
    out.put_u32(0);
}

/// Appends `control` as one packet (length included).
pub fn encode_message(
    control: &Control,
    flags: DistFlags,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    encode_message_cached(control, flags, None, out)
}

/// Appends `control` as one packet (length included), its atoms through the connection's
/// atom cache when there is one (`DFLAG_DIST_HDR_ATOM_CACHE` negotiated).
pub fn encode_message_cached(
    control: &Control,
    flags: DistFlags,
    cache: Option<&mut super::dist_header::AtomCacheOut>,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    encode_message_with_holes(control, flags, cache, out, None)
}

/// [`encode_message_cached`], leaving binaries of at least
/// [`ZERO_COPY_MIN`](super::term::ZERO_COPY_MIN) bytes out of `out` and listing them in
/// `holes` (the length prefix counts them): the caller sends them from their own buffers.
pub fn encode_message_with_holes(
    control: &Control,
    flags: DistFlags,
    cache: Option<&mut super::dist_header::AtomCacheOut>,
    out: &mut BytesMut,
    mut holes: Option<&mut Holes>,
) -> Result<(), EncodeError> {
    let start = out.len();
    let held = holes.as_ref().map_or(0, |h| h.len());
    out.put_u32(0);
    let encoded = match cache {
        Some(cache) if flags.contains(DistFlags::DIST_HDR_ATOM_CACHE) => {
            cache.encode_with_holes(control, flags, out, holes.as_deref_mut())
        }
        _ if super::dist_header::uses_header(flags) => {
            super::dist_header::encode_with_header_and_holes(
                control,
                flags,
                out,
                holes.as_deref_mut(),
            )
        }
        _ => {
            out.put_u8(PASS_THROUGH);
            control.encode_terms_with_holes(flags, out, &[], true, holes.as_deref_mut())
        }
    };
    if let Err(e) = encoded {
        out.truncate(start);
        return Err(e);
    }
    let left_out: usize = holes.map_or(0, |h| h[held..].iter().map(|(_, b)| b.len()).sum());
    let len = (out.len() - start - 4 + left_out) as u32;
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

/// Why a received message cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MessageError {
    /// The first byte is neither pass-through nor a negotiated header.
    UnknownHeader {
        /// The byte.
        byte: u8,
    },
    /// A distribution header (atom cache or fragment) on a connection that did not
    /// negotiate it.
    HeaderNotNegotiated,
    /// A term is corrupt.
    Term(DecodeError),
    /// Bytes after the payload term.
    TrailingBytes,
    /// The terms are fine but do not form a valid control message.
    Control(ControlError),
    /// The distribution header or the fragment sequence is malformed.
    Header(super::dist_header::HeaderError),
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessageError::UnknownHeader { byte } => {
                write!(f, "message starts with {byte}, not a known header")
            }
            MessageError::HeaderNotNegotiated => {
                f.write_str("distribution header on a connection that did not negotiate one")
            }
            MessageError::Term(e) => write!(f, "corrupt term: {e}"),
            MessageError::TrailingBytes => f.write_str("bytes after the payload term"),
            MessageError::Control(e) => write!(f, "invalid control message: {e}"),
            MessageError::Header(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for MessageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MessageError::Term(e) => Some(e),
            MessageError::Control(e) => Some(e),
            MessageError::Header(e) => Some(e),
            MessageError::UnknownHeader { .. }
            | MessageError::HeaderNotNegotiated
            | MessageError::TrailingBytes => None,
        }
    }
}

impl MessageError {
    /// What failed to decode, as a short fixed word (the `kind` label of
    /// `beamlink_bad_messages_total`): `header` (the first byte or the distribution header's
    /// atom cache), `fragment` (the fragment sequence), `term` (the external term format of
    /// the control message or the payload, or bytes after it), `control` (the terms decode
    /// but are no valid control message). A BEAM drops the connection for each of these
    /// (`erts_net_message` in `erts/emulator/beam/dist.c`).
    pub fn kind(&self) -> &'static str {
        match self {
            MessageError::UnknownHeader { .. } | MessageError::HeaderNotNegotiated => "header",
            MessageError::Header(e) if e.is_fragment() => "fragment",
            MessageError::Header(_) => "header",
            MessageError::Term(_) | MessageError::TrailingBytes => "term",
            MessageError::Control(_) => "control",
        }
    }

    /// Every value [`MessageError::kind`] returns.
    pub const KINDS: [&'static str; 4] = ["header", "fragment", "term", "control"];
}

impl From<DecodeError> for MessageError {
    fn from(e: DecodeError) -> MessageError {
        MessageError::Term(e)
    }
}

/// Decodes one message received on a connection with the given flags.
pub fn decode_message(data: &Bytes) -> Result<Control, MessageError> {
    match data.first() {
        Some(&PASS_THROUGH) => {
            let mut d = Decoder::new(data, 1);
            let control = d.term()?;
            let payload = if d.is_at_end() { None } else { Some(d.term()?) };
            if !d.is_at_end() {
                return Err(MessageError::TrailingBytes);
            }
            Control::from_terms(control, payload).map_err(MessageError::Control)
        }
        Some(&super::term::VERSION) => Err(MessageError::HeaderNotNegotiated),
        Some(&byte) => Err(MessageError::UnknownHeader { byte }),
        None => Err(MessageError::UnknownHeader { byte: 0 }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_and_messages_are_split() {
        let mut buf = BytesMut::from(&[0, 0, 0, 0, 0, 0, 0, 2, 9][..]);
        assert_eq!(take_frame(&mut buf, 10), Ok(Some(Frame::Tick)));
        assert_eq!(take_frame(&mut buf, 10), Ok(None));
        buf.put_u8(8);
        assert_eq!(
            take_frame(&mut buf, 10),
            Ok(Some(Frame::Message(Bytes::from_static(&[9, 8]))))
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn oversized_lengths_are_refused_from_the_header_alone() {
        let mut buf = BytesMut::from(&[0xFF, 0xFF, 0xFF, 0xFF][..]);
        assert_eq!(
            take_frame(&mut buf, DEFAULT_MAX_FRAME),
            Err(FrameError::TooLarge {
                len: u32::MAX,
                max: DEFAULT_MAX_FRAME
            })
        );
        assert!(buf.capacity() < 1024);
    }

    #[test]
    fn unknown_headers_are_typed_errors() {
        assert_eq!(
            decode_message(&Bytes::from_static(&[1, 2])),
            Err(MessageError::UnknownHeader { byte: 1 })
        );
        assert_eq!(
            decode_message(&Bytes::from_static(&[131, 68, 0])),
            Err(MessageError::HeaderNotNegotiated)
        );
    }
}
