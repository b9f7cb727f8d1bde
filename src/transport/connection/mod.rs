//! A live connection after the handshake: its handle ([`Connection`], in `handle.rs`), the
//! send queue (`outbox.rs`), the reader (`reader.rs`) and the writer with the tick rule
//! (`writer.rs`, the rule itself in [`crate::transport::tick`]): what `dist_util:con_loop/2`
//! does for a BEAM connection.
//!
//! * Reading: 4-byte frames, each checked against the frame cap before any allocation;
//!   every message is decoded and handed to the [`ConnectionHandler`] in order. A message that
//!   does not decode is reported; the handler's answer ([`OnBadMessage`]) says whether it is
//!   skipped and the link stays up, or the link goes down as a BEAM's does
//!   ([`DisconnectReason::BadMessage`]).
//! * Writing: senders encode their message straight into the link's output buffer (no
//!   allocation, no channel hop; the order of the buffer is the order of the wire). The
//!   buffer is bounded in bytes: [`Connection::send`] waits while it is full,
//!   [`Connection::try_send`] fails with [`SendError::QueueFull`]. The writer swaps the
//!   buffer out and writes all of it in one go. If a write makes no progress for a whole
//!   net_ticktime, the peer has stopped reading: the link goes down
//!   ([`DisconnectReason::SendStalled`]) and every waiting sender gets [`SendError::LinkClosed`].
//!   Other links are not affected.
//! * Ticks: every `net_ticktime / intensity` we write a tick if we wrote nothing since the
//!   last interval, and we count intervals in which nothing arrived; after `intensity` such
//!   intervals in a row the peer is declared down ([`DisconnectReason::TickTimeout`]), the BEAM's
//!   rule, so detection takes between (I-1)/I and (I+1)/I of net_ticktime. An interval in
//!   which the reader was held up by a full mailbox is not silence: the peer's ticks wait
//!   unread in the socket, and counting starts again once the reader waits on it.

mod handle;
mod outbox;
mod reader;
mod writer;

pub use handle::Connection;

use super::DisconnectReason;
use crate::proto::control::Control;
use crate::proto::dist_header::AtomCacheOut;
use crate::proto::flags::DistFlags;
use crate::proto::frame::{self, MessageError};
use crate::proto::node_name::NodeName;
use crate::proto::term::EncodeError;
use bytes::{Bytes, BytesMut};
use handle::Shared;
use outbox::Outbox;
use reader::read_loop;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, debug, info_span};
use writer::write_loop;

/// Link settings.
#[derive(Clone, Debug)]
pub struct ConnectionConfig {
    /// The BEAM's `net_ticktime`: a peer silent this long is down.
    pub net_ticktime: Duration,
    /// The BEAM's `net_tickintensity`: ticks per net_ticktime.
    pub tick_intensity: u32,
    /// Largest packet accepted from the peer.
    pub max_frame: u32,
    /// Bytes that may wait in the send queue before senders wait.
    pub send_queue_bytes: usize,
}

impl Default for ConnectionConfig {
    fn default() -> ConnectionConfig {
        ConnectionConfig {
            net_ticktime: Duration::from_secs(60),
            tick_intensity: 4,
            max_frame: frame::DEFAULT_MAX_FRAME,
            send_queue_bytes: 16 * 1024 * 1024,
        }
    }
}

/// What the link needs to know about the connection.
#[derive(Clone, Debug)]
pub struct ConnectionInfo {
    /// The peer's name.
    pub peer: NodeName,
    /// The peer's address.
    pub addr: SocketAddr,
    /// The negotiated flags.
    pub flags: DistFlags,
    /// The flags the peer offered.
    pub peer_flags: DistFlags,
    /// The peer's creation.
    pub peer_creation: u32,
    /// A number unique to this link within the process.
    pub id: u64,
    /// What the TLS session agreed on; `None` on plain TCP.
    pub tls: Option<crate::tls::TlsSession>,
}

/// What becomes of a connection on which a message arrived that does not decode.
///
/// A BEAM kills the connection (`erts_net_message` in `erts/emulator/beam/dist.c` ends in
/// `erts_kill_dist_connection`, for a corrupt header, term or control message alike); its
/// peer sees the connection close (`nodedown_reason` `connection_closed`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnBadMessage {
    /// Drop the message, keep the connection (beamlink's default: one malformed message
    /// from a peer should not take down everything else on that link).
    #[default]
    Keep,
    /// Close the connection, as a BEAM does ([`DisconnectReason::BadMessage`]).
    DropLink,
}

impl OnBadMessage {
    /// `keep` or `drop-link`, as on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            OnBadMessage::Keep => "keep",
            OnBadMessage::DropLink => "drop-link",
        }
    }
}

impl fmt::Display for OnBadMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for OnBadMessage {
    type Err = String;

    fn from_str(s: &str) -> Result<OnBadMessage, String> {
        match s {
            "keep" => Ok(OnBadMessage::Keep),
            "drop-link" => Ok(OnBadMessage::DropLink),
            _ => Err(format!("{s:?}: use keep or drop-link")),
        }
    }
}

/// Receives what arrives on a link. The node implements it.
pub trait ConnectionHandler: Send + Sync + 'static {
    /// A message arrived. Nothing more is read from this link until the future completes,
    /// so a slow consumer slows only this peer.
    fn on_message(&self, link: &Connection, message: Control) -> impl Future<Output = ()> + Send;
    /// A message could not be decoded. It is dropped; the answer says whether the link
    /// stays up.
    fn on_bad_message(
        &self,
        link: &Connection,
        error: &MessageError,
        bytes: &Bytes,
    ) -> OnBadMessage;
    /// The link is down. Called once, after both halves stopped.
    fn on_down(&self, link: &Connection, reason: DisconnectReason);
}

/// Why a message could not be queued.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// The link is down.
    LinkClosed,
    /// The send queue is full ([`Connection::try_send`] only).
    QueueFull,
    /// The message cannot be encoded.
    Encode(EncodeError),
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::LinkClosed => f.write_str("the connection is down"),
            SendError::QueueFull => f.write_str("the send queue is full"),
            SendError::Encode(e) => write!(f, "cannot encode the message: {e}"),
        }
    }
}

impl std::error::Error for SendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SendError::Encode(e) => Some(e),
            SendError::LinkClosed | SendError::QueueFull => None,
        }
    }
}

/// Counters of one link.
#[derive(Debug, Default)]
pub struct ConnectionStats {
    /// Messages received (ticks excluded).
    pub messages_in: AtomicU64,
    /// Messages sent (ticks excluded).
    pub messages_out: AtomicU64,
    /// Bytes received.
    pub bytes_in: AtomicU64,
    /// Bytes sent.
    pub bytes_out: AtomicU64,
    /// Tick intervals in a row, up to the last one that ended, in which nothing arrived; the
    /// peer is declared down when it reaches `net_tickintensity` (4).
    pub ticks_missed: AtomicU64,
}

/// What a connection is made of: the two halves of a stream whose handshake completed
/// (for the node, the halves of a [`crate::transport::DistStream`]), the bytes already read
/// past the handshake, its facts and settings, and the handler that receives what arrives.
pub struct ConnectionParts<R, W, H> {
    /// The reading half.
    pub reader: R,
    /// The writing half.
    pub writer: W,
    /// Bytes read past the last handshake message; the first frames of the connection.
    pub leftover: BytesMut,
    /// The connection's facts.
    pub info: ConnectionInfo,
    /// Ticks, frame cap, send queue.
    pub config: ConnectionConfig,
    /// Receives the messages and the end of the connection.
    pub handler: Arc<H>,
}

/// Starts a connection: its reader and writer run as tasks on `tracker`, in one `link`
/// span, and stop when `shutdown` is cancelled.
pub fn spawn<R, W, H>(
    parts: ConnectionParts<R, W, H>,
    tracker: &TaskTracker,
    shutdown: &CancellationToken,
) -> Connection
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
    H: ConnectionHandler,
{
    let ConnectionParts {
        reader,
        writer,
        leftover,
        info,
        config,
        handler,
    } = parts;
    let span = info_span!("link", peer = %info.peer, addr = %info.addr, id = info.id);
    let atom_cache = info
        .flags
        .contains(DistFlags::DIST_HDR_ATOM_CACHE)
        .then(AtomCacheOut::new);
    let shared = Arc::new(Shared {
        info,
        connected_at: SystemTime::now(),
        outbox: Mutex::new(Outbox::new(atom_cache)),
        capacity: config.send_queue_bytes.max(1),
        data_ready: Notify::new(),
        space_ready: Notify::new(),
        cancel: shutdown.child_token(),
        read_something: AtomicBool::new(false),
        awaiting_socket: AtomicBool::new(false),
        down: OnceLock::new(),
        halves_left: AtomicU8::new(2),
        stats: ConnectionStats::default(),
    });
    let handle = Connection { shared };
    let h = handle.clone();
    let cfg = config.clone();
    let hd = handler.clone();
    tracker.spawn(
        async move {
            let reason = read_loop(reader, leftover, &h, &cfg, &*hd).await;
            finish(&h, reason, &*hd);
        }
        .instrument(span.clone()),
    );
    let h = handle.clone();
    tracker.spawn(
        async move {
            let reason = write_loop(writer, &h, &config).await;
            finish(&h, reason, &*handler);
        }
        .instrument(span),
    );
    handle
}

/// One half stopped: the connection is down. The last half to stop tells the handler.
fn finish<H: ConnectionHandler>(link: &Connection, reason: DisconnectReason, handler: &H) {
    let local = matches!(reason, DisconnectReason::Local);
    let _ = link.shared.down.set(reason);
    link.shared.cancel.cancel();
    // Senders waiting for room see the cancellation; later ones see the closed outbox. When we
    // close it ourselves, what was queued before stays for the writer's last flush.
    if local {
        link.shared.outbox().close_keeping();
    } else {
        link.shared.outbox().close();
    }
    link.shared.space_ready.notify_waiters();
    if link.shared.halves_left.fetch_sub(1, Ordering::AcqRel) == 1 {
        let reason = link
            .shared
            .down
            .get()
            .cloned()
            .unwrap_or(DisconnectReason::Local);
        debug!(%reason, "link down");
        handler.on_down(link, reason);
    }
}

#[cfg(test)]
mod tests;
