//! A rate limit for warn-level lines that peers can trigger at will (refused handshakes,
//! messages that do not decode): a peer retrying in a loop, or a port scanner, must not
//! flood the log, yet the lines that are written name the peer, and the count of those that
//! were not rides on the next one.

use std::time::{Duration, Instant};

/// At most `per_window` lines per `window`; the rest are counted.
#[derive(Debug)]
pub(crate) struct LogLimit {
    per_window: u32,
    window: Duration,
    window_start: Option<Instant>,
    logged: u32,
    suppressed: u64,
}

impl LogLimit {
    pub(crate) const fn new(per_window: u32, window: Duration) -> LogLimit {
        LogLimit {
            per_window,
            window,
            window_start: None,
            logged: 0,
            suppressed: 0,
        }
    }

    /// `Some(n)` if this line is written at warn level, `n` being how many were not since
    /// the last one that was; `None` if it goes to debug level only.
    pub(crate) fn admit(&mut self, now: Instant) -> Option<u64> {
        match self.window_start {
            Some(start) if now.duration_since(start) < self.window => {
                if self.logged < self.per_window {
                    self.logged += 1;
                    Some(std::mem::take(&mut self.suppressed))
                } else {
                    self.suppressed += 1;
                    None
                }
            }
            _ => {
                self.window_start = Some(now);
                self.logged = 1;
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}
