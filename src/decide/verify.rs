//! Verification: did an action bring anything back? A small state machine fed with numbers.
//!
//! Pure: no I/O, no clock reads. After an action on a socket or its owner the agent keeps a
//! `Check` with what the decision saw (the target socket's queue, MemAvailable, Ghost) and, at
//! each of the next polls, hands it a `Reading`: the target's queue as re-read through the same
//! means as suspect tracking (a pidfd peek at the owner's fd, or the poll's table read; None when
//! neither could say), MemAvailable and Ghost now. The check ends in one `Verdict`:
//!
//! - `Verified` as soon as at least half of the queue came back (queue_before - queue_after >=
//!   queue_before / 2, and > 0). A socket that is gone (the owner restarted or killed) has
//!   queue 0. Where the queue cannot be re-read, memory is the evidence: MemAvailable gained, or
//!   Ghost shrank, by at least half the queue's size. `freed_kb` is the queue freed (kB), or that
//!   memory gain when the queue is unknown.
//! - `Ineffective` when `verify_s` has passed since the action without that: policy learns it
//!   (`Learned::Ineffective`), so the next rung acts at once.
//!
//! A clamp caps the queue but does not empty it: unless the owner reads, it proves ineffective
//! and the ladder moves on, which is what a clamp that did not save the box should do.

/// What the decision saw, and what the polls since have learnt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Check {
    /// When the action was carried out (ms, the agent's clock); the deadline runs from here.
    pub since_ms: u64,
    /// The target socket's queue when the decision was taken (bytes).
    pub queue_before: u64,
    pub available_before_kb: Option<u64>,
    pub ghost_before_kb: i64,
    /// The last queue a reading could give (None: none could yet).
    pub queue_last: Option<u64>,
}

/// One poll's figures for a check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reading {
    pub now_ms: u64,
    /// The target socket's queue now (bytes; 0 when the socket is gone), None when unknown.
    pub queue: Option<u64>,
    pub available_kb: Option<u64>,
    pub ghost_kb: i64,
}

/// Why an action was ineffective (the audit line's `reason=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Why {
    /// The queue was re-read and less than half of it came back.
    QueueHeld,
    /// The queue could not be re-read and memory did not come back either.
    Unreadable,
}

impl Why {
    pub fn text(self) -> &'static str {
        match self {
            Why::QueueHeld => "less than half of the queue came back within verify_s",
            Why::Unreadable => {
                "queue could not be re-read and memory did not come back within verify_s"
            }
        }
    }
}

/// Where a check stands after a reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing yet, time left.
    Pending,
    Verified {
        freed_kb: u64,
        queue_after: Option<u64>,
        /// MemAvailable gained and Ghost shrunk since the decision (kB, negative: lost/grew).
        available_gain_kb: Option<i64>,
        ghost_drop_kb: i64,
        after_ms: u64,
    },
    Ineffective {
        why: Why,
        queue_after: Option<u64>,
        available_gain_kb: Option<i64>,
        ghost_drop_kb: i64,
        after_ms: u64,
    },
}

fn signed(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Check {
    /// A check of an action carried out at `since_ms` on a socket that queued `queue_before`.
    pub fn new(
        since_ms: u64,
        queue_before: u64,
        available_before_kb: Option<u64>,
        ghost_before_kb: i64,
    ) -> Check {
        Check {
            since_ms,
            queue_before,
            available_before_kb,
            ghost_before_kb,
            queue_last: None,
        }
    }

    /// Takes one reading; `verify_ms` is `verify_s` in ms. Never fails.
    pub fn step(&mut self, r: &Reading, verify_ms: u64) -> Verdict {
        if r.queue.is_some() {
            self.queue_last = r.queue;
        }
        let available_gain_kb = match (r.available_kb, self.available_before_kb) {
            (Some(now), Some(then)) => Some(signed(now).saturating_sub(signed(then))),
            _ => None,
        };
        let ghost_drop_kb = self.ghost_before_kb.saturating_sub(r.ghost_kb);
        let after_ms = r.now_ms.saturating_sub(self.since_ms);
        let before = self.queue_before;
        let freed = match r.queue {
            Some(q) => {
                let freed = before.saturating_sub(q);
                (freed > 0 && freed >= before.div_ceil(2)).then_some(freed.div_ceil(1024))
            }
            None => {
                let mem = available_gain_kb.unwrap_or(0).max(ghost_drop_kb);
                let want = i64::try_from(before.div_ceil(2048))
                    .unwrap_or(i64::MAX)
                    .max(1);
                (mem >= want).then_some(mem.unsigned_abs())
            }
        };
        if let Some(freed_kb) = freed {
            return Verdict::Verified {
                freed_kb,
                queue_after: r.queue,
                available_gain_kb,
                ghost_drop_kb,
                after_ms,
            };
        }
        if after_ms < verify_ms {
            return Verdict::Pending;
        }
        Verdict::Ineffective {
            why: if self.queue_last.is_some() {
                Why::QueueHeld
            } else {
                Why::Unreadable
            },
            queue_after: self.queue_last,
            available_gain_kb,
            ghost_drop_kb,
            after_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1 << 20;

    fn reading(t_ms: u64, queue: Option<u64>, avail: u64, ghost: i64) -> Reading {
        Reading {
            now_ms: t_ms,
            queue,
            available_kb: Some(avail),
            ghost_kb: ghost,
        }
    }

    #[test]
    fn a_drained_queue_is_verified_with_what_it_freed() {
        let mut c = Check::new(1000, 40 * MB, Some(500_000), 90_000);
        // The first poll after: the drain emptied it.
        let v = c.step(&reading(2000, Some(4096), 540_000, 50_000), 3000);
        assert_eq!(
            v,
            Verdict::Verified {
                freed_kb: 40 * 1024 - 4,
                queue_after: Some(4096),
                available_gain_kb: Some(40_000),
                ghost_drop_kb: 40_000,
                after_ms: 1000,
            }
        );
        // A socket that is gone (restart, kill) has given everything back.
        let mut c = Check::new(0, 40 * MB, None, 0);
        assert!(matches!(
            c.step(&reading(1000, Some(0), 0, 0), 3000),
            Verdict::Verified {
                freed_kb: 40960,
                ..
            }
        ));
    }

    #[test]
    fn a_held_queue_is_ineffective_at_the_deadline_and_not_before() {
        let mut c = Check::new(1000, 40 * MB, Some(500_000), 90_000);
        // Clamped, not read: the queue stays; memory noise does not count while it is known.
        for t in [2000, 3000, 3999] {
            let v = c.step(&reading(t, Some(40 * MB), 600_000, 0), 3000);
            assert_eq!(v, Verdict::Pending, "t={t}");
        }
        // Half is not quite enough... but is at exactly half.
        let mut h = c;
        assert!(matches!(
            h.step(&reading(3999, Some(20 * MB + 1), 0, 0), 3000),
            Verdict::Pending
        ));
        assert!(matches!(
            h.step(&reading(3999, Some(20 * MB), 0, 0), 3000),
            Verdict::Verified { .. }
        ));
        let v = c.step(&reading(4000, Some(39 * MB), 500_000, 90_000), 3000);
        assert_eq!(
            v,
            Verdict::Ineffective {
                why: Why::QueueHeld,
                queue_after: Some(39 * MB),
                available_gain_kb: Some(0),
                ghost_drop_kb: 0,
                after_ms: 3000,
            }
        );
    }

    #[test]
    fn an_unreadable_queue_falls_back_to_memory() {
        // 40 MiB queued: 20 MiB of MemAvailable or Ghost coming back is the evidence.
        let mut c = Check::new(0, 40 * MB, Some(100_000), 60_000);
        assert_eq!(
            c.step(&reading(1000, None, 110_000, 60_000), 3000),
            Verdict::Pending
        );
        assert!(matches!(
            c.step(&reading(2000, None, 100_000, 60_000 - 20_480), 3000),
            Verdict::Verified {
                freed_kb: 20_480,
                queue_after: None,
                ..
            }
        ));
        let mut c = Check::new(0, 40 * MB, None, 60_000);
        let v = c.step(&reading(3000, None, 0, 60_000), 3000);
        assert!(
            matches!(
                v,
                Verdict::Ineffective {
                    why: Why::Unreadable,
                    ..
                }
            ),
            "{v:?}"
        );
        // A queue read once is remembered for the verdict.
        let mut c = Check::new(0, 40 * MB, None, 0);
        c.step(&reading(1000, Some(30 * MB), 0, 0), 3000);
        let v = c.step(&reading(3000, None, 0, 0), 3000);
        assert!(
            matches!(
                v,
                Verdict::Ineffective {
                    why: Why::QueueHeld,
                    queue_after: Some(q),
                    ..
                } if q == 30 * MB
            ),
            "{v:?}"
        );
        // Nothing queued before: nothing to free, only memory can tell.
        let mut c = Check::new(0, 0, Some(0), 0);
        assert_eq!(c.step(&reading(0, Some(0), 0, 0), 3000), Verdict::Pending);
    }
}
