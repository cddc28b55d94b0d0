//! The `oom_eta` estimator: how many seconds until MemAvailable reaches its floor at the rate it
//! is falling now.
//!
//! A fixed ring of MemAvailable samples (no allocation) spaced at least `window / SAMPLES` apart,
//! so that whatever the poll interval the ring spans the configured window; the poll's own
//! reading joins the fit as the newest point when it is not kept. The slope is Theil–Sen's:
//! the median of the slopes between samples at least half the window's samples apart (pairs
//! closer than that measure noise more than trend). The median ignores a minority of outliers,
//! so a one-off dip, or one allocation burst, does not tilt it; a sawtooth whose teeth are
//! shorter than half the window has pairs falling and rising in equal numbers and a median near
//! zero. The estimate is `(MemAvailable - floor) / -slope`, and exists only while the slope is
//! negative and the estimate is at most `MAX_ETA_S`: "not falling" is absent, not 0 or a huge
//! number.
//!
//! Pure: time comes in as a number (CLOCK_MONOTONIC ms in the agent, a fake clock in tests).

use core::fmt;

/// Samples the ring keeps.
pub const SAMPLES: usize = 32;
/// Points a fit uses at most: the ring and the poll's own reading.
const POINTS: usize = SAMPLES + 1;
/// Pairs a fit compares at most: for n points, each with those at least n/2 later.
const PAIRS: usize = (POINTS - POINTS / 2) * (POINTS - POINTS / 2 + 1) / 2;
/// Fewest points a slope is fitted on.
pub const MIN_POINTS: usize = 4;
/// Longest estimate reported (s): one day, the largest `eta_s` a rule may give. Beyond it memory
/// counts as not falling.
pub const MAX_ETA_S: u64 = 86_400;

/// One estimate: the slope, and the time to the floor when memory is falling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Estimate {
    /// The fitted slope of MemAvailable in thousandths of a kB per second (< 0: falling).
    pub slope_mkb_s: i64,
    /// Seconds until MemAvailable reaches the floor at that slope (0: at or below it already);
    /// None when memory is not falling, or so slowly that it would take more than `MAX_ETA_S`.
    pub eta_s: Option<u32>,
}

impl Estimate {
    /// The slope in kB/s as audit lines show it (`slope_kb_s=-20480.5`).
    pub fn slope_kb_s(&self) -> SlopeKbS {
        SlopeKbS(self.slope_mkb_s)
    }
}

/// A slope in thousandths of a kB/s, written in kB/s with one decimal, without floats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlopeKbS(pub i64);

impl fmt::Display for SlopeKbS {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let a = self.0.unsigned_abs();
        write!(f, "{sign}{}.{}", a / 1000, a % 1000 / 100)
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Sample {
    t_ms: u64,
    kb: u64,
}

/// The history of MemAvailable and the last fitted slope.
#[derive(Clone, Debug, Default)]
pub struct Estimator {
    ring: [Sample; SAMPLES],
    /// Samples in the ring (at most SAMPLES).
    len: usize,
    /// Where the next kept sample goes.
    next: usize,
    /// The slope fitted at the last `sample` (thousandths of a kB/s); None without enough history.
    slope_mkb_s: Option<i64>,
}

impl Estimator {
    pub fn new() -> Estimator {
        Estimator::default()
    }

    /// Takes the poll's MemAvailable reading (None: the kernel has none, which forgets the
    /// history) at `now_ms` and refits the slope over the last `window_s` seconds. Keeps the
    /// reading in the ring when it is at least `window / SAMPLES` after the newest kept one. A
    /// clock that went backwards starts the history over. Never allocates.
    pub fn sample(&mut self, now_ms: u64, kb: Option<u64>, window_s: u32) {
        let Some(kb) = kb else {
            *self = Estimator::default();
            return;
        };
        let window_ms = u64::from(window_s).saturating_mul(1000).max(1);
        let gap_ms = (window_ms / SAMPLES as u64).max(1);
        let newest = self.newest();
        if newest.is_some_and(|s| now_ms < s.t_ms) {
            *self = Estimator::default();
        }
        let keep = self
            .newest()
            .is_none_or(|s| now_ms.saturating_sub(s.t_ms) >= gap_ms);
        if keep {
            if let Some(slot) = self.ring.get_mut(self.next) {
                *slot = Sample { t_ms: now_ms, kb };
            }
            self.next = (self.next + 1) % SAMPLES;
            self.len = (self.len + 1).min(SAMPLES);
        }
        let live = (!keep).then_some(Sample { t_ms: now_ms, kb });
        self.slope_mkb_s = self.fit(now_ms, window_ms, live);
    }

    /// The slope fitted at the last `sample`, thousandths of a kB/s.
    pub fn slope_mkb_s(&self) -> Option<i64> {
        self.slope_mkb_s
    }

    /// The estimate for a MemAvailable of `avail_kb` against `floor_kb`, at the last fitted
    /// slope; None before there is enough history for a slope.
    pub fn estimate(&self, avail_kb: u64, floor_kb: u64) -> Option<Estimate> {
        let slope = self.slope_mkb_s?;
        // 64-bit arithmetic (128-bit division costs ~1 KiB of a router's flash): exact up to
        // 18 PB of headroom, whole seconds above that.
        let eta_s = (slope < 0).then(|| {
            let headroom = avail_kb.saturating_sub(floor_kb);
            let s = slope.unsigned_abs();
            match headroom.checked_mul(1000) {
                Some(h) => h / s,
                None => (headroom / s).saturating_mul(1000),
            }
        });
        Some(Estimate {
            slope_mkb_s: slope,
            eta_s: eta_s
                .filter(|&e| e <= MAX_ETA_S)
                .and_then(|e| u32::try_from(e).ok()),
        })
    }

    fn newest(&self) -> Option<Sample> {
        if self.len == 0 {
            return None;
        }
        self.ring.get((self.next + SAMPLES - 1) % SAMPLES).copied()
    }

    /// Theil–Sen over the kept samples of the last `window_ms` and the `live` reading: None
    /// with fewer than MIN_POINTS points or when they span less than half the window.
    fn fit(&self, now_ms: u64, window_ms: u64, live: Option<Sample>) -> Option<i64> {
        let since = now_ms.saturating_sub(window_ms);
        let mut pts = [Sample::default(); POINTS];
        let mut n = 0;
        let oldest = (self.next + SAMPLES - self.len) % SAMPLES;
        for k in 0..self.len {
            let Some(&s) = self.ring.get((oldest + k) % SAMPLES) else {
                continue;
            };
            if s.t_ms >= since {
                if let Some(p) = pts.get_mut(n) {
                    *p = s;
                    n += 1;
                }
            }
        }
        if let (Some(s), Some(p)) = (live, pts.get_mut(n)) {
            *p = s;
            n += 1;
        }
        let pts = pts.get(..n)?;
        let (first, last) = (pts.first()?, pts.last()?);
        if n < MIN_POINTS || last.t_ms.saturating_sub(first.t_ms) < window_ms / 2 {
            return None;
        }
        let mut slopes = [0i64; PAIRS];
        let mut m = 0;
        let half = n / 2;
        for (i, a) in pts.iter().enumerate() {
            for b in pts.iter().skip(i + half) {
                // Saturating 64-bit arithmetic (no 128-bit division, ~1 KiB of flash): exact
                // while a difference times 10^6 fits i64, i.e. below 9 PB.
                let dt = i64::try_from(b.t_ms.saturating_sub(a.t_ms).max(1)).unwrap_or(i64::MAX);
                let dv = if b.kb >= a.kb {
                    i64::try_from(b.kb - a.kb).unwrap_or(i64::MAX)
                } else {
                    i64::try_from(a.kb - b.kb).map_or(i64::MIN, |d| -d)
                };
                if let Some(slot) = slopes.get_mut(m) {
                    *slot = dv.saturating_mul(1_000_000) / dt;
                    m += 1;
                }
            }
        }
        let slopes = slopes.get_mut(..m)?;
        if slopes.is_empty() {
            return None;
        }
        // The median through the shared sort (`sys::sort_unstable_by`): select_nth_unstable's
        // introselect was 1.3 KiB of the binary for this one call.
        crate::sys::sort_unstable_by(slopes, |a, b| a < b);
        slopes.get(slopes.len() / 2).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1024;

    /// Feeds `f(t)` (kB) once per `step_ms` from `from_s` to `to_s`; returns the estimator.
    fn feed(e: &mut Estimator, from_s: u64, to_s: u64, step_ms: u64, f: impl Fn(u64) -> u64) {
        let mut t = from_s * 1000;
        while t <= to_s * 1000 {
            e.sample(t, Some(f(t)), 30);
            t += step_ms;
        }
    }

    #[test]
    fn a_steady_leak_is_measured_exactly() {
        let mut e = Estimator::new();
        // 10 MB/s down from 2 GB, at 1 s and at 100 ms polls.
        for step in [1000, 100] {
            e = Estimator::new();
            feed(&mut e, 0, 60, step, |t| 2048 * MB - 10 * MB * t / 1000);
            assert_eq!(e.slope_mkb_s(), Some(-10 * 1024 * 1000), "step {step}");
        }
        let now = 2048 * MB - 600 * MB;
        let est = e.estimate(now, 448 * MB).unwrap();
        assert_eq!(est.eta_s, Some(100));
        assert_eq!(est.slope_kb_s().to_string(), "-10240.0");
        assert_eq!(e.estimate(400 * MB, 448 * MB).unwrap().eta_s, Some(0));
    }

    #[test]
    fn no_estimate_before_half_a_window_nor_when_not_falling() {
        let mut e = Estimator::new();
        feed(&mut e, 0, 14, 1000, |t| 1_000_000 - t);
        assert_eq!(e.slope_mkb_s(), None, "14 s of a 30 s window");
        assert_eq!(e.estimate(1, 0), None);
        feed(&mut e, 15, 15, 1000, |t| 1_000_000 - t);
        assert!(e.slope_mkb_s().is_some());
        let mut flat = Estimator::new();
        feed(&mut flat, 0, 60, 1000, |_| 500_000);
        let est = flat.estimate(500_000, 0).unwrap();
        assert_eq!((est.slope_mkb_s, est.eta_s), (0, None));
        let mut rising = Estimator::new();
        feed(&mut rising, 0, 60, 1000, |t| 500_000 + t);
        assert_eq!(rising.estimate(560_000, 0).unwrap().eta_s, None);
        // Falling so slowly that the floor is more than a day away: not falling.
        let mut slow = Estimator::new();
        feed(&mut slow, 0, 60, 1000, |t| 10_000_000 - t / 100);
        assert_eq!(slow.slope_mkb_s(), Some(-10_000));
        assert_eq!(slow.estimate(10_000_000, 0).unwrap().eta_s, None);
        assert_eq!(slow.estimate(864_000, 0).unwrap().eta_s, Some(86_400));
        assert_eq!(slow.estimate(864_010, 0).unwrap().eta_s, None);
    }

    #[test]
    fn a_dip_and_a_sawtooth_do_not_tilt_the_median() {
        // One poll 500 MB low, then back.
        let mut e = Estimator::new();
        feed(&mut e, 0, 60, 1000, |t| {
            if t == 45_000 { 1_500_000 } else { 2_000_000 }
        });
        assert_eq!(e.slope_mkb_s(), Some(0));
        // 200 MB taken for 2 s every 7 s.
        let mut e = Estimator::new();
        for t in 0..=120u64 {
            let kb = if t % 7 < 2 {
                2_000_000 - 200 * MB
            } else {
                2_000_000
            };
            e.sample(t * 1000, Some(kb), 30);
            if t >= 15 {
                let est = e.estimate(kb, 0).unwrap();
                assert!(est.eta_s.is_none_or(|s| s > 3600), "t={t} {est:?}");
            }
        }
    }

    #[test]
    fn history_is_bounded_and_restarts_on_a_clock_jump_or_no_data() {
        let mut e = Estimator::new();
        feed(&mut e, 0, 1000, 1000, |t| 5_000_000 - t);
        assert_eq!(e.len, SAMPLES);
        e.sample(10_000, Some(5), 30);
        assert_eq!((e.len, e.slope_mkb_s()), (1, None), "clock went back");
        e.sample(11_000, None, 30);
        assert_eq!((e.len, e.slope_mkb_s()), (0, None));
        // Extreme values neither overflow nor panic.
        let mut e = Estimator::new();
        for t in 0..40u64 {
            e.sample(t, Some(if t % 2 == 0 { u64::MAX } else { 0 }), 2);
        }
        let _ = e.estimate(u64::MAX, 0);
        assert_eq!(SlopeKbS(-1).to_string(), "-0.0");
        assert_eq!(SlopeKbS(1_250).to_string(), "1.2");
    }
}
