//! The send queue of a connection: the bytes waiting to be written, in wire order, bounded
//! in bytes. Senders encode straight into it; the writer takes all of it at once.

use super::SendError;
use crate::proto::dist_header::AtomCacheOut;
use crate::proto::flags::DistFlags;
use crate::proto::term::Holes;
use bytes::{Bytes, BytesMut};

/// Appends one message to the outbox: the buffer, the connection's flags, its atom cache,
/// and where to note the large binaries it leaves out of the buffer.
pub(super) type Appender<'a> = dyn FnMut(&mut BytesMut, DistFlags, Option<&mut AtomCacheOut>, &mut Holes) -> Result<(), SendError>
    + 'a;

/// The bytes waiting to be written, in wire order.
pub(super) struct Outbox {
    /// Written in order: `chunks`, then `buf`. Chunks are finished pieces of `buf` and large
    /// binaries sent from their own buffers, never copied.
    chunks: Vec<Bytes>,
    /// Bytes in `chunks`.
    chunked: usize,
    buf: BytesMut,
    /// Scratch: the large binaries the message being encoded leaves out.
    holes: Holes,
    /// Messages queued since the writer last took the outbox.
    messages: u64,
    closed: bool,
    /// Our half of the atom cache, when the connection negotiated it.
    atoms: Option<AtomCacheOut>,
}

impl Outbox {
    pub(super) fn new(atoms: Option<AtomCacheOut>) -> Outbox {
        Outbox {
            chunks: Vec::new(),
            chunked: 0,
            buf: BytesMut::new(),
            holes: Holes::new(),
            messages: 0,
            closed: false,
            atoms,
        }
    }

    /// Bytes waiting.
    pub(super) fn queued(&self) -> usize {
        self.chunked + self.buf.len()
    }

    /// Appends one message with `write` if there is room, `None` when `capacity` bytes
    /// already wait. A message is always accepted into an empty outbox, so one larger than
    /// the capacity still goes.
    pub(super) fn append(
        &mut self,
        capacity: usize,
        flags: DistFlags,
        write: &mut Appender<'_>,
    ) -> Option<Result<(), SendError>> {
        if self.closed {
            return Some(Err(SendError::LinkClosed));
        }
        let queued = self.queued();
        if queued > 0 && queued >= capacity {
            return None;
        }
        self.holes.clear();
        let result = write(&mut self.buf, flags, self.atoms.as_mut(), &mut self.holes);
        if result.is_ok() {
            self.messages += 1;
            self.splice_holes();
        }
        Some(result)
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

    /// Hands everything waiting to the writer by swapping buffers with its spare (empty)
    /// ones, so senders fill one while the other is written. Returns the bytes and the
    /// messages handed over.
    pub(super) fn take(&mut self, buf: &mut BytesMut, chunks: &mut Vec<Bytes>) -> (usize, u64) {
        let pending = self.queued();
        std::mem::swap(&mut self.buf, buf);
        std::mem::swap(&mut self.chunks, chunks);
        self.chunked = 0;
        (pending, std::mem::take(&mut self.messages))
    }

    /// We are closing the connection: nothing more is accepted, and what waits stays for
    /// the writer's last flush ([`super::writer`]).
    pub(super) fn close_keeping(&mut self) {
        self.closed = true;
    }

    /// The connection is down: what waits is dropped and nothing more is accepted.
    pub(super) fn close(&mut self) {
        self.closed = true;
        self.buf = BytesMut::new();
        self.chunks = Vec::new();
        self.chunked = 0;
    }
}
