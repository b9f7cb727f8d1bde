//! The writing half of a connection: it takes everything the outbox holds and writes it in
//! one go (vectored when large binaries travel in their own buffers), and keeps the tick
//! rule of [`crate::transport::tick`]. A write that makes no progress for a whole
//! net_ticktime means the peer stopped reading: the connection goes down
//! ([`DisconnectReason::SendStalled`]). When we close a connection ourselves (shutdown,
//! replacement), what was queued before the close is written first, for at most
//! [`FLUSH_ON_CLOSE`]; a connection that failed drops what waits.

use super::{Connection, ConnectionConfig};
use crate::transport::DisconnectReason;
use crate::transport::tick::{TickAction, TickState};
use bytes::{Bytes, BytesMut};
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::time::{Instant, MissedTickBehavior, interval_at};
use tracing::trace;

/// The tick: an empty packet.
const TICK: [u8; 4] = [0, 0, 0, 0];

/// How long a connection we close may take to write what was queued before the close: the
/// last messages, exit signals and DOWNs of processes that ended just before a shutdown
/// reach the peer, and a peer that reads nothing cannot hold the shutdown up.
const FLUSH_ON_CLOSE: Duration = Duration::from_secs(1);

/// Writes until the connection ends, then shuts the stream down.
pub(super) async fn write_loop<W: AsyncWrite + Unpin>(
    mut writer: W,
    link: &Connection,
    config: &ConnectionConfig,
) -> DisconnectReason {
    let shared = &link.shared;
    let mut ticks = TickState::new(config.tick_intensity);
    let period = ticks.interval(config.net_ticktime);
    let mut ticker = interval_at(Instant::now() + period, period);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
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
        let (pending, messages) = shared.outbox().take(&mut spare, &mut spare_chunks);
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
            ticks.wrote();
            continue;
        }
        tokio::select! {
            biased;
            _ = shared.cancel.cancelled() => break DisconnectReason::Local,
            _ = data => {}
            _ = ticker.tick() => {
                if shared.read_something.swap(false, Ordering::Relaxed) {
                    ticks.read();
                }
                if !shared.awaiting_socket.load(Ordering::Relaxed) {
                    ticks.reader_held_up();
                }
                let action = ticks.interval_elapsed();
                shared
                    .stats
                    .ticks_missed
                    .store(u64::from(ticks.silent()), Ordering::Relaxed);
                match action {
                    TickAction::PeerDown => break DisconnectReason::TickTimeout,
                    TickAction::SendTick => {
                        if let Err(reason) =
                            write_with_deadline(&mut writer, &TICK, config.net_ticktime).await
                        {
                            break reason;
                        }
                        trace!("tick sent");
                    }
                    TickAction::Nothing => {}
                }
            }
        }
    };
    if matches!(reason, DisconnectReason::Local) {
        let (pending, _) = {
            let mut outbox = shared.outbox();
            let taken = outbox.take(&mut spare, &mut spare_chunks);
            outbox.close();
            taken
        };
        if pending > 0 {
            let flush = async {
                if spare_chunks.is_empty() {
                    write_with_deadline(&mut writer, &spare, FLUSH_ON_CLOSE).await
                } else {
                    write_parts(&mut writer, &spare_chunks, &spare, FLUSH_ON_CLOSE).await
                }
            };
            let flushed = tokio::time::timeout(FLUSH_ON_CLOSE, flush).await;
            trace!(
                pending,
                ok = matches!(flushed, Ok(Ok(()))),
                "flushed on close"
            );
        }
    }
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
        let mut n = progress(deadline, writer.write_vectored(&slices)).await?;
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
        let n = progress(deadline, writer.write(rest)).await?;
        rest = &rest[n..];
    }
    Ok(())
}

/// One write, which must take some bytes within `deadline`: how many it took.
async fn progress(
    deadline: Duration,
    write: impl Future<Output = std::io::Result<usize>>,
) -> Result<usize, DisconnectReason> {
    match tokio::time::timeout(deadline, write).await {
        Ok(Ok(0)) => Err(io_down(std::io::ErrorKind::WriteZero.into())),
        Ok(Ok(n)) => Ok(n),
        Ok(Err(e)) => Err(io_down(e)),
        Err(_) => Err(DisconnectReason::SendStalled),
    }
}

/// The reason a connection ends on an I/O error: the peer closing it, or another failure.
pub(super) fn io_down(e: std::io::Error) -> DisconnectReason {
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
