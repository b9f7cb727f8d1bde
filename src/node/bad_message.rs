//! Messages that arrive on a connection and do not decode (a corrupt distribution header,
//! fragment sequence, term or control message). A BEAM closes the connection for every one
//! of them (`erts_net_message` in `erts/emulator/beam/dist.c` ends in
//! `erts_kill_dist_connection`; its peer sees `nodedown_reason` `connection_closed`).
//! beamlink drops the message and keeps the connection unless
//! [`NodeConfig::on_bad_message`](super::NodeConfig::on_bad_message) says
//! [`OnBadMessage::DropLink`]; either way each one is counted by kind
//! ([`MessageError::kind`], for `beamlink_bad_messages_total{kind}`) and logged at warn level
//! at most once a minute per kind, node-wide: a peer that reconnects after each drop must
//! not flood the log any more than one that stays. The others go to debug level and are
//! counted in the next warn line.

use super::{Node, lock};
use crate::log_limit::LogLimit;
use crate::proto::frame::MessageError;
use crate::transport::connection::{Connection, OnBadMessage};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tracing::{debug, warn};

/// Warn-level lines per kind and window.
const LINES_PER_WINDOW: u32 = 1;
/// See [`LINES_PER_WINDOW`].
const WINDOW: Duration = Duration::from_secs(60);
/// Bytes of the message shown in the log line.
const SHOWN_BYTES: usize = 64;

/// Counts and log limits, one per kind.
#[derive(Debug)]
pub(super) struct BadMessages {
    kinds: BTreeMap<&'static str, Kind>,
}

#[derive(Debug)]
struct Kind {
    count: u64,
    log: LogLimit,
}

impl Kind {
    fn new() -> Kind {
        Kind {
            count: 0,
            log: LogLimit::new(LINES_PER_WINDOW, WINDOW),
        }
    }
}

impl Default for BadMessages {
    fn default() -> BadMessages {
        BadMessages {
            kinds: MessageError::KINDS
                .into_iter()
                .map(|k| (k, Kind::new()))
                .collect(),
        }
    }
}

impl Node {
    /// Messages that did not decode since the node started, by kind ([`MessageError::kind`]:
    /// `header`, `fragment`, `term`, `control`); every kind is present, 0 included.
    pub fn bad_messages(&self) -> BTreeMap<&'static str, u64> {
        lock(&self.inner.counters.bad_messages)
            .kinds
            .iter()
            .map(|(kind, k)| (*kind, k.count))
            .collect()
    }

    /// One message from `link` did not decode: count it, log it (rate-limited), and say
    /// whether the connection stays.
    pub(super) fn bad_message(
        &self,
        link: &Connection,
        error: &MessageError,
        bytes: &Bytes,
    ) -> OnBadMessage {
        let kind = error.kind();
        let action = self.inner.config.on_bad_message;
        let admitted = {
            let mut table = lock(&self.inner.counters.bad_messages);
            let entry = table.kinds.entry(kind).or_insert_with(Kind::new);
            entry.count += 1;
            entry.log.admit(Instant::now())
        };
        let shown = &bytes[..bytes.len().min(SHOWN_BYTES)];
        let outcome = match action {
            OnBadMessage::Keep => "dropped it, the connection stays (--on-bad-message keep)",
            OnBadMessage::DropLink => {
                "closing the connection, as a BEAM does (--on-bad-message drop-link)"
            }
        };
        let peer = link.peer();
        match admitted {
            Some(0) => warn!(
                %peer,
                "a message that does not decode ({kind}): {error}; first bytes {shown:02x?}; \
                 {outcome}; more of this kind within a minute are logged at debug level"
            ),
            Some(n) => warn!(
                %peer,
                "a message that does not decode ({kind}): {error}; first bytes {shown:02x?}; \
                 {outcome}; {n} more of this kind since the last such line"
            ),
            None => debug!(
                %peer,
                "a message that does not decode ({kind}): {error}; first bytes {shown:02x?}; \
                 {outcome}"
            ),
        }
        action
    }
}
