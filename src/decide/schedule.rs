//! When the next poll is due: an absolute CLOCK_MONOTONIC deadline that only a poll moves (or
//! `poll_now` brings forward).
//!
//! Signals (HUP, CHLD) and command deadlines wake the loop early; those wake-ups must never
//! push the next poll back, so the loop asks `due(now)` after every wake-up and only `polled`
//! advances the deadline. Pure: time comes in as numbers (tests use plain values).

/// The poll deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    next_ms: u64,
    interval_ms: u64,
}

impl Schedule {
    /// First poll due at once (`now_ms`).
    pub fn new(now_ms: u64, interval_ms: u32) -> Schedule {
        Schedule {
            next_ms: now_ms,
            interval_ms: interval_ms.max(1) as u64,
        }
    }

    /// True when a poll is due at `now_ms`.
    pub fn due(&self, now_ms: u64) -> bool {
        now_ms >= self.next_ms
    }

    /// The absolute deadline of the next poll.
    pub fn next_ms(&self) -> u64 {
        self.next_ms
    }

    /// A poll that was due ran and ended at `now_ms`: the next is one interval after the last
    /// deadline; a poll that overran a whole interval does not cause a burst (the next is one
    /// interval from now).
    pub fn polled(&mut self, now_ms: u64) {
        self.next_ms += self.interval_ms;
        if self.next_ms <= now_ms {
            self.next_ms = now_ms + self.interval_ms;
        }
    }

    /// Makes a poll due at `now_ms` (never later than it was): news that cannot wait for the
    /// next deadline, e.g. an owner walk that completed between polls. The polls after it
    /// keep the interval from this one.
    pub fn poll_now(&mut self, now_ms: u64) {
        self.next_ms = self.next_ms.min(now_ms);
    }

    /// A reload changed the interval: the next deadline moves to one new interval after the
    /// last poll (never earlier than now).
    pub fn set_interval(&mut self, interval_ms: u32, now_ms: u64) {
        let new = interval_ms.max(1) as u64;
        if new == self.interval_ms {
            return;
        }
        let last = self.next_ms.saturating_sub(self.interval_ms);
        self.interval_ms = new;
        self.next_ms = (last + new).max(now_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn early_wakeups_never_postpone_the_poll() {
        let mut s = Schedule::new(1_000, 200);
        assert!(s.due(1_000));
        s.polled(1_003);
        assert_eq!(s.next_ms(), 1_200);
        // 200 wake-ups (signals) before the deadline change nothing.
        for t in 1_004..1_204 {
            assert_eq!(s.due(t), t >= 1_200);
        }
        assert_eq!(s.next_ms(), 1_200);
        s.polled(1_201);
        assert_eq!(s.next_ms(), 1_400, "no drift from a late wake-up");
    }

    #[test]
    fn a_poll_pulled_in_restarts_the_interval_from_itself() {
        let mut s = Schedule::new(0, 1_000);
        s.polled(5);
        s.poll_now(400);
        assert!(s.due(400));
        s.polled(402);
        assert_eq!(s.next_ms(), 1_400);
        s.poll_now(2_000);
        assert_eq!(s.next_ms(), 1_400, "never postpones a poll");
    }

    #[test]
    fn an_overrun_does_not_burst() {
        let mut s = Schedule::new(0, 100);
        s.polled(750);
        assert_eq!(s.next_ms(), 850);
    }

    #[test]
    fn interval_change_counts_from_the_last_poll() {
        let mut s = Schedule::new(0, 1_000);
        s.polled(5); // next 1000, last poll deadline 0
        s.set_interval(200, 50);
        assert_eq!(s.next_ms(), 200);
        s.set_interval(5_000, 600);
        assert_eq!(s.next_ms(), 5_000);
        s.set_interval(100, 4_000);
        assert_eq!(s.next_ms(), 4_000, "never in the past");
    }
}
