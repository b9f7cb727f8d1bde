//! The tick rule of a distribution connection, as the BEAM applies it: `net_kernel`'s ticker
//! sends each connection a `tick` every `net_ticktime / net_tickintensity`, and the
//! connection process (`dist_util:con_loop/2`, its `send_tick`) then
//! * writes a tick (an empty packet, four zero bytes) if nothing was written since the
//!   last interval, so that the peer hears from us however quiet we are;
//! * counts the intervals in a row in which nothing was read; after `intensity` of them the
//!   peer is down (`net_tick_timeout`). Detection therefore takes between (I-1)/I and
//!   (I+1)/I of `net_ticktime`, depending on where in an interval the peer fell silent.
//!
//! One addition: an interval at whose end our reader is held up (decoding, or waiting for a
//! full mailbox to make room) is not silence. The peer's ticks wait unread in the socket
//! then, and counting starts again once the reader waits on the socket.
//!
//! [`TickState`] is that rule alone, with no clock and no socket: the connection's writer
//! tells it what happened and does what [`TickState::interval_elapsed`] answers.

use std::time::Duration;

/// What to do at the end of an interval.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum TickAction {
    /// Nothing: we wrote during the interval, so the peer heard from us.
    Nothing,
    /// Write a tick: we wrote nothing during the interval.
    SendTick,
    /// The peer sent nothing for `intensity` intervals in a row: it is down.
    PeerDown,
}

/// The tick rule's state for one connection.
#[derive(Clone, Debug)]
pub struct TickState {
    intensity: u32,
    /// Intervals in a row in which the peer was silent.
    silent: u32,
    read: bool,
    wrote: bool,
    held_up: bool,
}

impl TickState {
    /// The state of a connection whose handshake just completed (the peer was heard) with
    /// `intensity` intervals per `net_ticktime` (at least one).
    pub fn new(intensity: u32) -> TickState {
        TickState {
            intensity: intensity.max(1),
            silent: 0,
            read: true,
            wrote: false,
            held_up: false,
        }
    }

    /// The length of an interval: `net_ticktime / intensity`.
    pub fn interval(&self, net_ticktime: Duration) -> Duration {
        net_ticktime / self.intensity
    }

    /// Intervals in a row, up to the last one that ended, in which the peer was silent (the
    /// peer is down when this reaches the intensity).
    pub fn silent(&self) -> u32 {
        self.silent
    }

    /// Something arrived from the peer (a tick or a message).
    pub fn read(&mut self) {
        self.read = true;
    }

    /// We wrote something to the peer (not a tick the rule asked for).
    pub fn wrote(&mut self) {
        self.wrote = true;
    }

    /// Our reader is held up (not waiting on the socket) as the interval ends.
    pub fn reader_held_up(&mut self) {
        self.held_up = true;
    }

    /// An interval ended: what to do. The events seen so far count for this interval only.
    pub fn interval_elapsed(&mut self) -> TickAction {
        let heard = std::mem::take(&mut self.read) | std::mem::take(&mut self.held_up);
        if heard {
            self.silent = 0;
        } else {
            self.silent += 1;
            if self.silent >= self.intensity {
                return TickAction::PeerDown;
            }
        }
        if std::mem::take(&mut self.wrote) {
            TickAction::Nothing
        } else {
            TickAction::SendTick
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::{Instant, MissedTickBehavior, interval_at};

    /// `n` intervals that each end with the rule asking for a tick.
    fn ticks(state: &mut TickState, n: u32) {
        for _ in 0..n {
            assert_eq!(state.interval_elapsed(), TickAction::SendTick);
        }
    }

    #[test]
    fn an_idle_connection_ticks_every_interval_while_the_peer_ticks_too() {
        let mut state = TickState::new(4);
        for _ in 0..100 {
            state.read();
            assert_eq!(state.interval_elapsed(), TickAction::SendTick);
        }
    }

    #[test]
    fn writing_replaces_the_tick_for_that_interval_only() {
        let mut state = TickState::new(4);
        state.read();
        state.wrote();
        assert_eq!(state.interval_elapsed(), TickAction::Nothing);
        state.read();
        assert_eq!(state.interval_elapsed(), TickAction::SendTick);
    }

    #[test]
    fn a_silent_peer_is_down_after_intensity_intervals_in_a_row() {
        for intensity in 1..=8 {
            let mut state = TickState::new(intensity);
            // The handshake counts as heard: the first interval is not silence, and
            // `intensity - 1` silent ones are not enough.
            ticks(&mut state, 1 + intensity - 1);
            assert_eq!(state.interval_elapsed(), TickAction::PeerDown);
        }
    }

    #[test]
    fn one_read_starts_the_count_again() {
        let mut state = TickState::new(4);
        // The first interval (the handshake was heard), then three silent ones.
        ticks(&mut state, 1 + 3);
        state.read();
        ticks(&mut state, 4);
        assert_eq!(state.interval_elapsed(), TickAction::PeerDown);
    }

    #[test]
    fn a_reader_held_up_by_a_full_mailbox_is_not_silence() {
        let mut state = TickState::new(4);
        let _ = state.interval_elapsed();
        // Far longer than net_ticktime, the reader waits for our own mailbox.
        for _ in 0..40 {
            state.reader_held_up();
            assert_eq!(state.interval_elapsed(), TickAction::SendTick);
        }
        // Waiting on the socket again: the count starts from zero.
        ticks(&mut state, 3);
        assert_eq!(state.interval_elapsed(), TickAction::PeerDown);
    }

    #[test]
    fn intensity_zero_is_taken_as_one() {
        let mut state = TickState::new(0);
        assert_eq!(
            state.interval(Duration::from_secs(60)),
            Duration::from_secs(60)
        );
        let _ = state.interval_elapsed();
        assert_eq!(state.interval_elapsed(), TickAction::PeerDown);
    }

    /// Drives the rule with a tokio interval, as the connection's writer does, for a peer
    /// that sends something every `peer_every` until `silent_from` (both from the start),
    /// and we never write. Returns when the peer was declared down and how many ticks we
    /// sent until then.
    async fn run(
        net_ticktime: Duration,
        intensity: u32,
        peer_every: Duration,
        silent_from: Duration,
    ) -> (Duration, u32) {
        let start = Instant::now();
        let mut state = TickState::new(intensity);
        let period = state.interval(net_ticktime);
        let mut ticker = interval_at(start + period, period);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut next_read = start + peer_every;
        let mut ticks = 0;
        loop {
            tokio::select! {
                biased;
                _ = tokio::time::sleep_until(next_read), if next_read < start + silent_from => {
                    state.read();
                    next_read += peer_every;
                }
                _ = ticker.tick() => match state.interval_elapsed() {
                    TickAction::PeerDown => return (start.elapsed(), ticks),
                    TickAction::SendTick => ticks += 1,
                    TickAction::Nothing => {}
                },
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn detection_takes_between_three_and_five_quarters_of_net_ticktime() {
        let t = Duration::from_secs(60);
        // The peer falls silent at points spread over one interval (15 s).
        for offset_s in [0u64, 1, 5, 10, 14] {
            let silent_from = Duration::from_secs(120 + offset_s);
            let (down_at, _) = run(t, 4, Duration::from_secs(1), silent_from).await;
            let detection = down_at - silent_from;
            assert!(
                detection >= t * 3 / 4 && detection <= t * 5 / 4,
                "silent from {silent_from:?}: down after {detection:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_peer_ticking_every_quarter_net_ticktime_stays_up() {
        let t = Duration::from_secs(60);
        // It ticks at the BEAM's own pace for an hour, then stops.
        let hour = Duration::from_secs(3600);
        let (down_at, ticks) = run(t, 4, t / 4, hour).await;
        assert!(down_at > hour, "declared down at {down_at:?}");
        // We ticked once an interval all along (we never wrote anything else).
        assert_eq!(u64::from(ticks), down_at.as_secs() / 15 - 1);
    }
}
