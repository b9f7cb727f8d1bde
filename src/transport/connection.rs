//! A live connection after the handshake: the reader, the writer with its bounded send
//! queue, and tick supervision (`net_kernel`'s ticker and `dist_util:con_loop/2`).
//!
//! * Reading: 4-byte frames, each checked against the frame cap before any allocation;
//!   every message is decoded and handed to the [`ConnectionHandler`] in order. A message that
//!   does not decode is reported and skipped: the link stays up.
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

use super::DisconnectReason;
use crate::proto::control::Control;
use crate::proto::dist_header::{AtomCacheOut, DistDecoder};
use crate::proto::flags::DistFlags;
use crate::proto::frame::{self, Frame, MessageError};
use crate::proto::node_name::NodeName;
use crate::proto::term::EncodeError;
use crate::proto::term::Holes;
use bytes::{Bytes, BytesMut};
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, debug, info_span, trace};

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
}

/// Receives what arrives on a link. The node implements it.
pub trait ConnectionHandler: Send + Sync + 'static {
    /// A message arrived. Nothing more is read from this link until the future completes,
    /// so a slow consumer slows only this peer.
    fn on_message(&self, link: &Connection, message: Control) -> impl Future<Output = ()> + Send;
    /// A message could not be decoded; it is dropped and the link stays up.
    fn on_bad_message(&self, link: &Connection, error: MessageError, bytes: &Bytes);
    /// The link is down. Called once, after both halves stopped.
    fn on_down(&self, link: &Connection, reason: DisconnectReason);
}

/// Why a message could not be queued.
#[derive(Debug, Clone, PartialEq, Eq)]
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

impl std::error::Error for SendError {}

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
}

/// Appends one message to the outbox: the buffer, the connection's flags, its atom cache.
type Appender<'a> = dyn FnMut(&mut BytesMut, DistFlags, Option<&mut AtomCacheOut>, &mut Holes) -> Result<(), SendError>
    + 'a;

/// The bytes waiting to be written, in wire order.
struct Outbox {
    /// Written in order: `chunks`, then `buf`. Chunks are finished pieces of `buf` and large
    /// binaries sent from their own buffers, never copied.
    chunks: Vec<Bytes>,
    /// Bytes in `chunks`.
    chunked: usize,
    buf: BytesMut,
    /// Scratch: the large binaries the message being encoded leaves out.
    holes: Holes,
    messages: u64,
    closed: bool,
    /// Our half of the atom cache, when the connection negotiated it.
    atoms: Option<AtomCacheOut>,
}

impl Outbox {
    fn queued(&self) -> usize {
        self.chunked + self.buf.len()
    }

    /// Moves the bytes before each hole of the last message into `chunks`, each hole's
    /// binary after them.
    fn splice_holes(&mut self) {
        let mut consumed = 0;
        for (pos, binary) in self.holes.drain(..) {
            let head = self.buf.split_to(pos - consumed).freeze();
            consumed = pos;
            self.chunked += head.len() + binary.len();
            if !head.is_empty() {
                self.chunks.push(head);
            }
            self.chunks.push(binary);
        }
    }
}

struct Shared {
    info: ConnectionInfo,
    connected_at: SystemTime,
    outbox: Mutex<Outbox>,
    /// Bytes the outbox may hold before senders wait.
    capacity: usize,
    /// The writer waits here for bytes.
    data_ready: Notify,
    /// Senders wait here for room.
    space_ready: Notify,
    cancel: CancellationToken,
    read_something: AtomicBool,
    /// True while the reader waits on the socket; false while it decodes or waits for a
    /// full mailbox to make room. Only the first is the peer's silence: a reader held up by
    /// our own back-pressure has unread ticks in the socket, and the peer is not to blame.
    awaiting_socket: AtomicBool,
    down: OnceLock<DisconnectReason>,
    halves_left: AtomicU8,
    stats: ConnectionStats,
}

/// A cheap, cloneable handle to a live link: send on it, look at it, close it.
#[derive(Clone)]
pub struct Connection {
    shared: Arc<Shared>,
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

    /// Appends with `write` if the outbox has room: `None` when it is full. A message is
    /// always accepted into an empty outbox, so one larger than the capacity still goes.
    fn try_queue(&self, write: &mut Appender<'_>) -> Option<Result<(), SendError>> {
        let mut outbox = self.shared.outbox.lock().unwrap_or_else(|e| e.into_inner());
        if outbox.closed {
            return Some(Err(SendError::LinkClosed));
        }
        let queued = outbox.queued();
        if queued > 0 && queued >= self.shared.capacity {
            return None;
        }
        let state = &mut *outbox;
        state.holes.clear();
        let result = write(
            &mut state.buf,
            self.shared.info.flags,
            state.atoms.as_mut(),
            &mut state.holes,
        );
        if result.is_ok() {
            state.messages += 1;
            state.splice_holes();
        }
        drop(outbox);
        let was_empty = queued == 0;
        if was_empty {
            self.shared.data_ready.notify_one();
        }
        Some(result)
    }
}

/// Starts a link over the two halves of a connected stream whose handshake completed.
/// `leftover` holds bytes already read past the handshake. Both halves run as tasks on
/// `tracker` and stop when `shutdown` is cancelled.
#[allow(clippy::too_many_arguments)]
pub fn spawn<R, W, H>(
    reader: R,
    writer: W,
    leftover: BytesMut,
    info: ConnectionInfo,
    config: ConnectionConfig,
    handler: Arc<H>,
    tracker: &TaskTracker,
    shutdown: &CancellationToken,
) -> Connection
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
    H: ConnectionHandler,
{
    let span = info_span!("link", peer = %info.peer, addr = %info.addr, id = info.id);
    let atom_cache = info
        .flags
        .contains(DistFlags::DIST_HDR_ATOM_CACHE)
        .then(AtomCacheOut::new);
    let shared = Arc::new(Shared {
        info,
        connected_at: SystemTime::now(),
        outbox: Mutex::new(Outbox {
            chunks: Vec::new(),
            chunked: 0,
            buf: BytesMut::new(),
            holes: Holes::new(),
            messages: 0,
            closed: false,
            atoms: atom_cache,
        }),
        capacity: config.send_queue_bytes.max(1),
        data_ready: Notify::new(),
        space_ready: Notify::new(),
        cancel: shutdown.child_token(),
        read_something: AtomicBool::new(true),
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

fn finish<H: ConnectionHandler>(link: &Connection, reason: DisconnectReason, handler: &H) {
    let _ = link.shared.down.set(reason);
    link.shared.cancel.cancel();
    // Senders waiting for room see the cancellation; later ones see the closed outbox.
    {
        let mut outbox = link.shared.outbox.lock().unwrap_or_else(|e| e.into_inner());
        outbox.closed = true;
        outbox.buf = BytesMut::new();
        outbox.chunks = Vec::new();
        outbox.chunked = 0;
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

fn io_down(e: std::io::Error) -> DisconnectReason {
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof
        | std::io::ErrorKind::ConnectionReset
        | std::io::ErrorKind::BrokenPipe => DisconnectReason::ClosedByPeer,
        kind => DisconnectReason::Io {
            kind,
            message: e.to_string(),
        },
    }
}

/// Spare room kept in the read buffer; small, so idle links cost little memory.
const READ_CHUNK: usize = 8 * 1024;

async fn read_loop<R: AsyncRead + Unpin, H: ConnectionHandler>(
    mut reader: R,
    mut buf: BytesMut,
    link: &Connection,
    config: &ConnectionConfig,
    handler: &H,
) -> DisconnectReason {
    let stats = &link.shared.stats;
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
            stats.messages_in.fetch_add(1, Ordering::Relaxed);
            match decoder.decode(&bytes) {
                Ok(Some(message)) => handler.on_message(link, message).await,
                Ok(None) => {}
                Err(e) => handler.on_bad_message(link, e, &bytes),
            }
            if link.shared.cancel.is_cancelled() {
                return DisconnectReason::Local;
            }
        }
        if buf.is_empty() && buf.capacity() > 4 * READ_CHUNK {
            // A large message has been consumed: give its memory back.
            buf = BytesMut::with_capacity(READ_CHUNK);
        } else if buf.capacity() - buf.len() < READ_CHUNK / 4 {
            buf.reserve(READ_CHUNK);
        }
        link.shared.awaiting_socket.store(true, Ordering::Relaxed);
        let read = tokio::select! {
            read = reader.read_buf(&mut buf) => read,
            _ = link.shared.cancel.cancelled() => return DisconnectReason::Local,
        };
        link.shared.awaiting_socket.store(false, Ordering::Relaxed);
        match read {
            Ok(0) => return DisconnectReason::ClosedByPeer,
            Ok(n) => {
                stats.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
                link.shared.read_something.store(true, Ordering::Relaxed);
            }
            Err(e) => return io_down(e),
        }
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(
    mut writer: W,
    link: &Connection,
    config: &ConnectionConfig,
) -> DisconnectReason {
    let shared = &link.shared;
    let intensity = config.tick_intensity.max(1);
    let period = config.net_ticktime / intensity;
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut wrote = false;
    let mut silent_intervals = 0u32;
    // Double buffering: senders fill one buffer while the other is written.
    let mut spare = BytesMut::new();
    let mut spare_chunks: Vec<Bytes> = Vec::new();
    let reason = loop {
        if shared.cancel.is_cancelled() {
            break DisconnectReason::Local;
        }
        let data = shared.data_ready.notified();
        tokio::pin!(data);
        data.as_mut().enable();
        let (pending, messages) = {
            let mut outbox = shared.outbox.lock().unwrap_or_else(|e| e.into_inner());
            let pending = outbox.queued();
            std::mem::swap(&mut outbox.buf, &mut spare);
            std::mem::swap(&mut outbox.chunks, &mut spare_chunks);
            outbox.chunked = 0;
            (pending, std::mem::take(&mut outbox.messages))
        };
        if pending > 0 {
            let written = if spare_chunks.is_empty() {
                write_with_deadline(&mut writer, &spare, config.net_ticktime).await
            } else {
                write_parts(&mut writer, &spare_chunks, &spare, config.net_ticktime).await
            };
            spare_chunks.clear();
            if let Err(reason) = written {
                break reason;
            }
            shared
                .stats
                .messages_out
                .fetch_add(messages, Ordering::Relaxed);
            shared
                .stats
                .bytes_out
                .fetch_add(pending as u64, Ordering::Relaxed);
            spare.clear();
            if spare.capacity() > 4 * shared.capacity.max(1 << 20) {
                spare = BytesMut::new();
            }
            shared.space_ready.notify_waiters();
            wrote = true;
            continue;
        }
        tokio::select! {
            biased;
            _ = shared.cancel.cancelled() => break DisconnectReason::Local,
            _ = data => {}
            _ = ticker.tick() => {
                let heard = shared.read_something.swap(false, Ordering::Relaxed);
                if heard || !shared.awaiting_socket.load(Ordering::Relaxed) {
                    silent_intervals = 0;
                } else {
                    silent_intervals += 1;
                    if silent_intervals >= intensity {
                        break DisconnectReason::TickTimeout;
                    }
                }
                if !wrote {
                    if let Err(reason) =
                        write_with_deadline(&mut writer, &[0, 0, 0, 0], config.net_ticktime).await
                    {
                        break reason;
                    }
                    trace!("tick sent");
                }
                wrote = false;
            }
        }
    };
    let _ = writer.shutdown().await;
    reason
}

/// Writes `chunks` then `tail` with vectored writes; each write must make progress within
/// `deadline`.
async fn write_parts<W: AsyncWrite + Unpin>(
    writer: &mut W,
    chunks: &[Bytes],
    tail: &[u8],
    deadline: Duration,
) -> Result<(), DisconnectReason> {
    let parts: Vec<&[u8]> = chunks
        .iter()
        .map(|c| &c[..])
        .chain(std::iter::once(tail))
        .filter(|p| !p.is_empty())
        .collect();
    let (mut index, mut offset) = (0, 0);
    while index < parts.len() {
        let slices: Vec<std::io::IoSlice<'_>> = parts[index..]
            .iter()
            .take(64)
            .enumerate()
            .map(|(i, p)| std::io::IoSlice::new(if i == 0 { &p[offset..] } else { p }))
            .collect();
        let mut n = match tokio::time::timeout(deadline, writer.write_vectored(&slices)).await {
            Ok(Ok(0)) => return Err(io_down(std::io::ErrorKind::WriteZero.into())),
            Ok(Ok(n)) => n,
            Ok(Err(e)) => return Err(io_down(e)),
            Err(_) => return Err(DisconnectReason::SendStalled),
        };
        while n > 0 {
            let left = parts[index].len() - offset;
            if n >= left {
                n -= left;
                index += 1;
                offset = 0;
            } else {
                offset += n;
                n = 0;
            }
        }
    }
    Ok(())
}

/// Writes all of `bytes`; `SendStalled` only if the peer takes nothing at all for a whole
/// `deadline`. The deadline applies to each write's progress, not to the whole buffer: a
/// reader that is slow but keeps reading (a 16 MiB buffer over a 200 KB/s path takes longer
/// than a net_ticktime) is not a stalled one, and the BEAM does not drop it either.
async fn write_with_deadline<W: AsyncWrite + Unpin>(
    writer: &mut W,
    bytes: &[u8],
    deadline: Duration,
) -> Result<(), DisconnectReason> {
    let mut rest = bytes;
    while !rest.is_empty() {
        match tokio::time::timeout(deadline, writer.write(rest)).await {
            Ok(Ok(0)) => return Err(io_down(std::io::ErrorKind::WriteZero.into())),
            Ok(Ok(n)) => rest = &rest[n..],
            Ok(Err(e)) => return Err(io_down(e)),
            Err(_) => return Err(DisconnectReason::SendStalled),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Recorder {
        messages: Mutex<Vec<Control>>,
        bad: Mutex<Vec<MessageError>>,
        down: Mutex<Option<DisconnectReason>>,
    }

    impl ConnectionHandler for Recorder {
        async fn on_message(&self, _link: &Connection, message: Control) {
            self.messages.lock().unwrap().push(message);
        }
        fn on_bad_message(&self, _link: &Connection, error: MessageError, _bytes: &Bytes) {
            self.bad.lock().unwrap().push(error);
        }
        fn on_down(&self, _link: &Connection, reason: DisconnectReason) {
            *self.down.lock().unwrap() = Some(reason);
        }
    }

    fn info() -> ConnectionInfo {
        ConnectionInfo {
            peer: NodeName::parse("peer@10.0.0.1").unwrap(),
            addr: "10.0.0.1:1".parse().unwrap(),
            flags: DistFlags::BEAMLINK_DEFAULT,
            peer_flags: DistFlags::BEAMLINK_DEFAULT,
            peer_creation: 1,
            id: 1,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_peer_is_declared_down_by_the_beam_rule() {
        let (ours, theirs) = tokio::io::duplex(1 << 16);
        let (r, w) = tokio::io::split(ours);
        let rec = Arc::new(Recorder::default());
        let tracker = TaskTracker::new();
        let config = ConnectionConfig {
            net_ticktime: Duration::from_secs(4),
            ..ConnectionConfig::default()
        };
        let started = tokio::time::Instant::now();
        let link = spawn(
            r,
            w,
            BytesMut::new(),
            info(),
            config,
            rec.clone(),
            &tracker,
            &CancellationToken::new(),
        );
        link.closed().await;
        tracker.close();
        tracker.wait().await;
        let elapsed = started.elapsed();
        assert_eq!(
            *rec.down.lock().unwrap(),
            Some(DisconnectReason::TickTimeout)
        );
        // (I-1)/I*T ..= (I+1)/I*T with T = 4 s, I = 4.
        assert!(elapsed >= Duration::from_secs(3) && elapsed <= Duration::from_secs(5));
        drop(theirs);
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_link_ticks() {
        let (ours, theirs) = tokio::io::duplex(1 << 16);
        let (r, w) = tokio::io::split(ours);
        let (mut their_r, mut their_w) = tokio::io::split(theirs);
        let rec = Arc::new(Recorder::default());
        let tracker = TaskTracker::new();
        let config = ConnectionConfig {
            net_ticktime: Duration::from_secs(4),
            ..ConnectionConfig::default()
        };
        let link = spawn(
            r,
            w,
            BytesMut::new(),
            info(),
            config,
            rec.clone(),
            &tracker,
            &CancellationToken::new(),
        );
        // The peer ticks too, every second, for 30 s: the link stays up.
        let mut got = [0u8; 4];
        for _ in 0..30 {
            their_w.write_all(&[0, 0, 0, 0]).await.unwrap();
            tokio::time::timeout(Duration::from_secs(2), their_r.read_exact(&mut got))
                .await
                .expect("we tick at least every net_ticktime/4")
                .unwrap();
            assert_eq!(got, [0, 0, 0, 0]);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        assert!(link.is_up());
        link.close();
        tracker.close();
        tracker.wait().await;
        assert_eq!(*rec.down.lock().unwrap(), Some(DisconnectReason::Local));
    }

    #[tokio::test]
    async fn oversized_frames_close_the_link_and_bad_messages_do_not() {
        let (ours, theirs) = tokio::io::duplex(1 << 16);
        let (r, w) = tokio::io::split(ours);
        let (_their_r, mut their_w) = tokio::io::split(theirs);
        let rec = Arc::new(Recorder::default());
        let tracker = TaskTracker::new();
        let config = ConnectionConfig {
            max_frame: 1024,
            ..ConnectionConfig::default()
        };
        let link = spawn(
            r,
            w,
            BytesMut::new(),
            info(),
            config,
            rec.clone(),
            &tracker,
            &CancellationToken::new(),
        );
        // A message with an unknown header byte: reported, link stays up.
        their_w.write_all(&[0, 0, 0, 2, 1, 2]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(link.is_up());
        assert_eq!(rec.bad.lock().unwrap().len(), 1);
        their_w.write_all(&[0xFF, 0xFF, 0xFF, 0xFF]).await.unwrap();
        link.closed().await;
        tracker.close();
        tracker.wait().await;
        assert!(matches!(
            *rec.down.lock().unwrap(),
            Some(DisconnectReason::Frame(_))
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn a_peer_that_stops_reading_fills_the_queue_then_the_link_drops() {
        let (ours, _theirs) = tokio::io::duplex(1024);
        let (r, w) = tokio::io::split(ours);
        let rec = Arc::new(Recorder::default());
        let tracker = TaskTracker::new();
        let config = ConnectionConfig {
            net_ticktime: Duration::from_secs(4),
            send_queue_bytes: 64 * 1024,
            ..ConnectionConfig::default()
        };
        let link = spawn(
            r,
            w,
            BytesMut::new(),
            info(),
            config,
            rec.clone(),
            &tracker,
            &CancellationToken::new(),
        );
        let packet = Bytes::from(vec![0u8; 8 * 1024]);
        let mut queued = 0;
        loop {
            let mut write =
                |out: &mut BytesMut, _: DistFlags, _: Option<&mut AtomCacheOut>, _: &mut Holes| {
                    out.extend_from_slice(&packet);
                    Ok(())
                };
            match link.try_queue(&mut write) {
                Some(Ok(())) => queued += 1,
                Some(Err(e)) => panic!("{e}"),
                None => break,
            }
            tokio::task::yield_now().await;
        }
        assert!(queued >= 8, "queue accepted {queued} packets");
        // A waiting sender is released with an error when the link gives up.
        let waiting = link.send_packet(packet.clone());
        assert_eq!(waiting.await, Err(SendError::LinkClosed));
        tracker.close();
        tracker.wait().await;
        assert_eq!(
            *rec.down.lock().unwrap(),
            Some(DisconnectReason::SendStalled)
        );
    }
}
