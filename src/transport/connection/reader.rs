//! The reading half of a connection: 4-byte frames, each checked against the frame cap
//! before any allocation; every message decoded and handed to the handler in order, and a
//! message that does not decode to the handler's verdict ([`OnBadMessage`]).

use super::{Connection, ConnectionConfig, ConnectionHandler, OnBadMessage, writer::io_down};
use crate::proto::dist_header::DistDecoder;
use crate::proto::frame::{self, Frame};
use crate::transport::DisconnectReason;
use bytes::BytesMut;
use std::sync::atomic::Ordering;
use tokio::io::{AsyncRead, AsyncReadExt};
use tracing::trace;

/// Spare room kept in the read buffer; small, so idle links cost little memory.
const READ_CHUNK: usize = 8 * 1024;

/// Reads until the connection ends; `buf` holds the bytes already read past the handshake.
pub(super) async fn read_loop<R: AsyncRead + Unpin, H: ConnectionHandler>(
    mut reader: R,
    mut buf: BytesMut,
    link: &Connection,
    config: &ConnectionConfig,
    handler: &H,
) -> DisconnectReason {
    let shared = &link.shared;
    let mut decoder = DistDecoder::new(link.flags(), config.max_frame as usize);
    loop {
        loop {
            let frame = match frame::take_frame(&mut buf, config.max_frame) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(e) => return DisconnectReason::Frame(e),
            };
            let Frame::Message(bytes) = frame else {
                trace!("tick received");
                continue;
            };
            shared.stats.messages_in.fetch_add(1, Ordering::Relaxed);
            match decoder.decode(&bytes) {
                Ok(Some(message)) => handler.on_message(link, message).await,
                Ok(None) => {}
                Err(e) => {
                    if handler.on_bad_message(link, &e, &bytes) == OnBadMessage::DropLink {
                        return DisconnectReason::BadMessage(e);
                    }
                }
            }
            if shared.cancel.is_cancelled() {
                return DisconnectReason::Local;
            }
        }
        if buf.is_empty() && buf.capacity() > 4 * READ_CHUNK {
            // A large message has been consumed: give its memory back.
            buf = BytesMut::with_capacity(READ_CHUNK);
        } else if buf.capacity() - buf.len() < READ_CHUNK / 4 {
            buf.reserve(READ_CHUNK);
        }
        shared.awaiting_socket.store(true, Ordering::Relaxed);
        let read = tokio::select! {
            read = reader.read_buf(&mut buf) => read,
            _ = shared.cancel.cancelled() => return DisconnectReason::Local,
        };
        shared.awaiting_socket.store(false, Ordering::Relaxed);
        match read {
            Ok(0) => return DisconnectReason::ClosedByPeer,
            Ok(n) => {
                shared.stats.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
                shared.read_something.store(true, Ordering::Relaxed);
            }
            Err(e) => return io_down(e),
        }
    }
}
