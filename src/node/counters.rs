//! What the node counts for the Prometheus exporter ([`crate::metrics`]): handshakes that
//! failed, by cause ([`HandshakeFailure::cause`]), and connections lost, by reason
//! ([`DisconnectReason::label`]). A handful of fixed labels each, so the maps stay small.

use super::{Node, lock};
use crate::transport::{DisconnectReason, HandshakeFailure};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Totals since the node started.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    handshake_failures: Mutex<BTreeMap<&'static str, u64>>,
    disconnects: Mutex<BTreeMap<&'static str, u64>>,
    /// Messages that did not decode, by kind (see `bad_message.rs`).
    pub(super) bad_messages: Mutex<super::bad_message::BadMessages>,
}

impl Node {
    /// Handshakes (ours and the peers') that failed since the node started, by cause:
    /// `cookie`, `timeout`, `refused`, `io`, `protocol`.
    pub fn handshake_failures(&self) -> BTreeMap<&'static str, u64> {
        lock(&self.inner.counters.handshake_failures).clone()
    }

    /// Connections lost since the node started, by reason: `closed_by_peer`, `io`,
    /// `tick_timeout`, `send_stalled`, `protocol`, `bad_message`, `local`.
    pub fn disconnects(&self) -> BTreeMap<&'static str, u64> {
        lock(&self.inner.counters.disconnects).clone()
    }

    pub(super) fn count_handshake_failure(&self, e: &HandshakeFailure) {
        if let Some(cause) = e.cause() {
            *lock(&self.inner.counters.handshake_failures)
                .entry(cause)
                .or_default() += 1;
        }
    }

    pub(super) fn count_disconnect(&self, reason: &DisconnectReason) {
        *lock(&self.inner.counters.disconnects)
            .entry(reason.label())
            .or_default() += 1;
    }
}
