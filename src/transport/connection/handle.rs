//! The handle of a running connection, [`Connection`]: cheap to clone, shared by everyone
//! who sends on it. Senders encode their message straight into the outbox (no allocation,
//! no channel hop; the order of the outbox is the order of the wire) and wait, or fail,
//! while it is full.

use super::outbox::{Appender, Outbox};
use super::{ConnectionInfo, ConnectionStats, SendError};
use crate::proto::control::Control;
use crate::proto::dist_header::AtomCacheOut;
use crate::proto::flags::DistFlags;
use crate::proto::frame;
use crate::proto::node_name::NodeName;
use crate::proto::term::Holes;
use crate::transport::DisconnectReason;
use bytes::{Bytes, BytesMut};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU8};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::SystemTime;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// What the handle, the reader and the writer of one connection share.
pub(super) struct Shared {
    pub(super) info: ConnectionInfo,
    pub(super) connected_at: SystemTime,
    pub(super) outbox: Mutex<Outbox>,
    /// Bytes the outbox may hold before senders wait.
    pub(super) capacity: usize,
    /// The writer waits here for bytes.
    pub(super) data_ready: Notify,
    /// Senders wait here for room.
    pub(super) space_ready: Notify,
    pub(super) cancel: CancellationToken,
    /// Set by the reader when bytes arrive; taken by the writer at each tick interval.
    pub(super) read_something: AtomicBool,
    /// True while the reader waits on the socket; false while it decodes or waits for a
    /// full mailbox to make room. Only the first is the peer's silence: a reader held up by
    /// our own back-pressure has unread ticks in the socket, and the peer is not to blame.
    pub(super) awaiting_socket: AtomicBool,
    pub(super) down: OnceLock<DisconnectReason>,
    /// The reader and the writer; the last to stop reports the connection down.
    pub(super) halves_left: AtomicU8,
    pub(super) stats: ConnectionStats,
}

impl Shared {
    pub(super) fn outbox(&self) -> MutexGuard<'_, Outbox> {
        // No critical section can panic half-way through an update.
        self.outbox.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A cheap, cloneable handle to a live link: send on it, look at it, close it.
#[derive(Clone)]
pub struct Connection {
    pub(super) shared: Arc<Shared>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("peer", &self.shared.info.peer)
            .field("id", &self.shared.info.id)
            .finish()
    }
}

impl Connection {
    /// The connection's facts.
    pub fn info(&self) -> &ConnectionInfo {
        &self.shared.info
    }

    /// The peer's name.
    pub fn peer(&self) -> &NodeName {
        &self.shared.info.peer
    }

    /// The negotiated flags.
    pub fn flags(&self) -> DistFlags {
        self.shared.info.flags
    }

    /// When the handshake completed.
    pub fn connected_at(&self) -> SystemTime {
        self.shared.connected_at
    }

    /// The counters.
    pub fn stats(&self) -> &ConnectionStats {
        &self.shared.stats
    }

    /// True until the link is down.
    pub fn is_up(&self) -> bool {
        !self.shared.cancel.is_cancelled()
    }

    /// Closes the link; the handler's `on_down` follows.
    pub fn close(&self) {
        let _ = self.shared.down.set(DisconnectReason::Local);
        self.shared.cancel.cancel();
    }

    /// Resolves when the link is down.
    pub async fn closed(&self) {
        self.shared.cancel.cancelled().await
    }

    /// Encodes `message` as one packet, for [`Connection::send_packet`].
    pub fn encode(&self, message: &Control) -> Result<Bytes, SendError> {
        let mut out = BytesMut::with_capacity(128);
        frame::encode_message(message, self.flags(), &mut out).map_err(SendError::Encode)?;
        Ok(out.freeze())
    }

    /// Queues `message`, waiting while the output buffer is full.
    pub async fn send(&self, message: &Control) -> Result<(), SendError> {
        self.queue_with(|out, flags, atoms, holes| {
            frame::encode_message_with_holes(message, flags, atoms, out, Some(holes))
                .map_err(SendError::Encode)
        })
        .await
    }

    /// Queues `message`, or fails at once if the output buffer is full.
    pub fn try_send(&self, message: &Control) -> Result<(), SendError> {
        match self.try_queue(&mut |out, flags, atoms, holes| {
            frame::encode_message_with_holes(message, flags, atoms, out, Some(holes))
                .map_err(SendError::Encode)
        }) {
            Some(result) => result,
            None => Err(SendError::QueueFull),
        }
    }

    /// Queues an already encoded packet (length prefix included), waiting for room.
    pub async fn send_packet(&self, packet: Bytes) -> Result<(), SendError> {
        self.queue_with(|out, _, _, _| {
            out.extend_from_slice(&packet);
            Ok(())
        })
        .await
    }

    /// Appends with `write` when there is room; waits for room otherwise.
    async fn queue_with(
        &self,
        mut write: impl FnMut(
            &mut BytesMut,
            DistFlags,
            Option<&mut AtomCacheOut>,
            &mut Holes,
        ) -> Result<(), SendError>,
    ) -> Result<(), SendError> {
        if let Some(result) = self.try_queue(&mut write) {
            return result;
        }
        loop {
            // Full: register for a wake-up, then look again, so a drain in between is not
            // missed.
            let space = self.shared.space_ready.notified();
            tokio::pin!(space);
            space.as_mut().enable();
            if let Some(result) = self.try_queue(&mut write) {
                return result;
            }
            tokio::select! {
                _ = space => {}
                _ = self.shared.cancel.cancelled() => return Err(SendError::LinkClosed),
            }
        }
    }

    /// Appends with `write` if the outbox has room: `None` when it is full (see
    /// [`Outbox::append`]). The writer is woken when the outbox was empty.
    pub(super) fn try_queue(&self, write: &mut Appender<'_>) -> Option<Result<(), SendError>> {
        let mut outbox = self.shared.outbox();
        let was_empty = outbox.queued() == 0;
        let result = outbox.append(self.shared.capacity, self.shared.info.flags, write)?;
        drop(outbox);
        if was_empty {
            self.shared.data_ready.notify_one();
        }
        Some(result)
    }
}
