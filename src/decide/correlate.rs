//! Blame what moves: a short bounded history of Ghost, MemAvailable and the queues of the
//! sockets being watched, and the ranking of those sockets by how much of Ghost's growth their
//! own growth explains over the same window — not by the size of their queue.
//!
//! Why: a queued packet can pin a whole page (or a page-pool chunk) while its `truesize`
//! counts only its slice, so a queue may understate the memory it holds many times over (the
//! field report: Recv-Q 76 MB, Ghost 2.6 GB, about 34×). The largest queue is then not always
//! the one that costs most; the one that *grows with Ghost* is.
//!
//! The measure (`rank`), over the last `N` samples, for each socket seen at least twice:
//! - **in step**: the share of Ghost's rises (sum of its positive steps) that happened between
//!   two samples in which the socket's queue rose too;
//! - **steady**: the queue's net growth over the sum of its absolute steps (1 for a queue that
//!   only grows, about 0 for one that goes up and down, 0 for one that does not move);
//! - **enough**: `min(1, MAX_PIN_RATIO × queue growth / Ghost growth)` — no queue pins more
//!   than `MAX_PIN_RATIO` times what it shows, so a small queue that happens to creep up while
//!   Ghost grows by far more cannot take the blame.
//!
//! `explains` is their product in per-mille. A socket *moves with Ghost* at `MOVES_WITH_PM`
//! or more. Its **pinning ratio** is Ghost's growth ÷ its queue's growth, both summed over the
//! steps of the window in which its queue grew (for a queue that grows all along: over the
//! window), trusted only when it moves with Ghost, Ghost grew by `MIN_GHOST_GROWTH_KB` over
//! the window and over those steps, the queue by `MIN_QUEUE_GROWTH_BYTES`, `MIN_SAMPLES`
//! samples saw it, and the ratio is at most `MAX_PIN_RATIO`. A trusted ratio stays with its socket (a queue that reached its rcvbuf cap
//! stops growing, and so does Ghost, but the pages stay pinned) until a later window measures
//! it again or the socket leaves the history.
//!
//! Pure and allocation-free: fixed arrays sized by the const parameters; time comes in.

/// No queue is taken to pin more than this many times what it shows (a 64 KiB page-pool chunk
/// held by one 512-byte skb is 128×). Caps the "enough" factor and a trusted ratio.
pub const MAX_PIN_RATIO: u64 = 128;
/// A socket moves with Ghost when it explains at least this much of the growth (per-mille).
pub const MOVES_WITH_PM: u16 = 500;
/// Least Ghost growth over the window (kB) before any ratio is trusted: 8 MiB, above the
/// noise of per-CPU page lists and the page cache's churn.
pub const MIN_GHOST_GROWTH_KB: i64 = 8 * 1024;
/// Least queue growth over the window (bytes) before its ratio is trusted: 256 KiB.
pub const MIN_QUEUE_GROWTH_BYTES: u64 = 256 * 1024;
/// Least samples that saw the socket in the window before its ratio is trusted.
pub const MIN_SAMPLES: usize = 4;

/// Which socket: its inode within its network namespace.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Key {
    pub netns: u64,
    pub inode: u64,
}

/// A pinning ratio in hundredths (3412 = 34.12×), printed "34.1".
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ratio(pub u32);

impl Ratio {
    /// `bytes × ratio`, never below `bytes` (a ratio under 1 — small packets whose cost went
    /// to Slab — does not make a queue hold less than it shows).
    pub fn apply(self, bytes: u64) -> u64 {
        let r = u64::from(self.0).max(100);
        let whole = (bytes / 100).saturating_mul(r);
        whole.saturating_add(bytes % 100 * r / 100)
    }
}

impl core::fmt::Display for Ratio {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // One decimal, rounded half up.
        let tenths = self.0.saturating_add(5) / 10;
        write!(f, "{}.{}", tenths / 10, tenths % 10)
    }
}

/// What the window shows of Ghost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Samples in the window.
    pub samples: usize,
    /// From the first sample to the last, ms.
    pub span_ms: u64,
    /// Ghost at the last sample minus at the first, kB.
    pub ghost_growth_kb: i64,
    /// Ghost at the last sample, kB.
    pub ghost_now_kb: i64,
    /// MemAvailable at the first sample minus at the last (kB; None where either is unknown).
    pub available_drop_kb: Option<i64>,
}

impl Window {
    /// True when Ghost grew enough over the window for blame and ratios to mean something.
    pub fn ghost_grew(&self) -> bool {
        self.ghost_growth_kb >= MIN_GHOST_GROWTH_KB
    }
}

/// One socket's part in the window's Ghost growth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Blame {
    pub key: Key,
    /// How much of Ghost's growth its queue's growth explains, per-mille (see the module).
    pub explains_pm: u16,
    /// Its queue at the last sample that saw it, bytes.
    pub queue_now: u64,
    /// Its queue's growth between the first and last sample that saw it, bytes.
    pub queue_growth: i64,
    /// Ghost's growth over the same samples, kB.
    pub ghost_growth_kb: i64,
    /// Samples of the window that saw it.
    pub samples: usize,
    /// The pinning ratio measured in this window, when trusted.
    pub measured: Option<Ratio>,
    /// The ratio to use for it: `measured`, or the last one trusted while it stayed tracked.
    pub ratio: Option<Ratio>,
}

impl Blame {
    /// True when it explains at least `MOVES_WITH_PM` of the growth.
    pub fn moves_with_ghost(&self) -> bool {
        self.explains_pm >= MOVES_WITH_PM
    }
}

/// `queue_now` for samples that did not see the socket.
const UNSEEN: u64 = u64::MAX;

#[derive(Clone, Copy, Debug)]
struct Track<const N: usize> {
    key: Option<Key>,
    /// Queue per sample slot (`UNSEEN` where that sample did not see it).
    rx: [u64; N],
    /// Sequence number of the last sample that saw it.
    last_seq: u64,
    /// The last trusted ratio (sticky, see the module).
    ratio: Option<Ratio>,
}

impl<const N: usize> Track<N> {
    const EMPTY: Self = Track {
        key: None,
        rx: [UNSEEN; N],
        last_seq: 0,
        ratio: None,
    };
}

/// The last `N` samples of Ghost and MemAvailable, and the queues of up to `S` sockets in them.
#[derive(Clone, Debug)]
pub struct History<const N: usize, const S: usize> {
    t_ms: [u64; N],
    ghost_kb: [i64; N],
    available_kb: [Option<u64>; N],
    /// Samples begun so far (the next slot is `seq % N`).
    seq: u64,
    tracks: [Track<N>; S],
}

impl<const N: usize, const S: usize> Default for History<N, S> {
    fn default() -> Self {
        History {
            t_ms: [0; N],
            ghost_kb: [0; N],
            available_kb: [None; N],
            seq: 0,
            tracks: [Track::EMPTY; S],
        }
    }
}

impl<const N: usize, const S: usize> History<N, S> {
    /// Starts a sample: Ghost and MemAvailable now. The sockets seen in it follow (`socket`).
    pub fn sample(&mut self, now_ms: u64, ghost_kb: i64, available_kb: Option<u64>) {
        if N == 0 {
            return;
        }
        let slot = (self.seq % N as u64) as usize;
        self.seq += 1;
        self.t_ms[slot] = now_ms;
        self.ghost_kb[slot] = ghost_kb;
        self.available_kb[slot] = available_kb;
        let seq = self.seq;
        for t in self.tracks.iter_mut() {
            t.rx[slot] = UNSEEN;
            // Not seen for a whole window: its place is free.
            if t.key.is_some() && seq.saturating_sub(t.last_seq) >= N as u64 {
                *t = Track::EMPTY;
            }
        }
    }

    /// Records socket `key`'s queue in the current sample. A socket new to the history takes a
    /// free place, or the place of the one seen longest ago (of equals, the smaller queue), when
    /// that is older than this sample; else it is not tracked.
    pub fn socket(&mut self, key: Key, rx_queue: u64) {
        if N == 0 || self.seq == 0 {
            return;
        }
        let slot = ((self.seq - 1) % N as u64) as usize;
        let seq = self.seq;
        let rx = rx_queue.min(UNSEEN - 1);
        if let Some(t) = self.tracks.iter_mut().find(|t| t.key == Some(key)) {
            t.rx[slot] = rx;
            t.last_seq = seq;
            return;
        }
        let victim = self
            .tracks
            .iter_mut()
            .filter(|t| t.key.is_none() || t.last_seq < seq)
            .min_by_key(|t| {
                let q = t.rx[((t.last_seq.max(1) - 1) % N as u64) as usize];
                (t.key.is_some(), t.last_seq, q)
            });
        if let Some(t) = victim {
            *t = Track::EMPTY;
            t.key = Some(key);
            t.rx[slot] = rx;
            t.last_seq = seq;
        }
    }

    /// Drops what the history knows of `key` (its queue was drained or clamped by an action:
    /// its growth and ratio start over).
    pub fn forget(&mut self, key: Key) {
        for t in self.tracks.iter_mut().filter(|t| t.key == Some(key)) {
            *t = Track::EMPTY;
        }
    }

    /// Samples in the window (at most `N`).
    pub fn samples(&self) -> usize {
        (self.seq.min(N as u64)) as usize
    }

    /// The window's slots, oldest first.
    fn slots(&self) -> impl Iterator<Item = usize> + '_ {
        let n = self.samples() as u64;
        (self.seq - n..self.seq).map(|s| (s % N as u64) as usize)
    }

    /// The window: None before two samples.
    pub fn window(&self) -> Option<Window> {
        if self.samples() < 2 {
            return None;
        }
        let first = self.slots().next()?;
        let last = ((self.seq - 1) % N as u64) as usize;
        let avail = match (self.available_kb[first], self.available_kb[last]) {
            (Some(a), Some(b)) => Some(sat_i64(a).saturating_sub(sat_i64(b))),
            _ => None,
        };
        Some(Window {
            samples: self.samples(),
            span_ms: self.t_ms[last].saturating_sub(self.t_ms[first]),
            ghost_growth_kb: self.ghost_kb[last].saturating_sub(self.ghost_kb[first]),
            ghost_now_kb: self.ghost_kb[last],
            available_drop_kb: avail,
        })
    }

    /// Ranks every tracked socket seen at least twice in the window into `out` (cleared
    /// first), most explaining first (then largest queue growth, then largest queue), and
    /// remembers the ratios it trusts. Returns the window (None before two samples; `out` then
    /// empty).
    pub fn rank<const M: usize>(&mut self, out: &mut heapless::Vec<Blame, M>) -> Option<Window> {
        out.clear();
        let w = self.window()?;
        // Sum of Ghost's rises between consecutive samples.
        let mut rises: u64 = 0;
        let mut prev: Option<usize> = None;
        for s in self.slots() {
            if let Some(p) = prev {
                rises =
                    rises.saturating_add(pos(self.ghost_kb[s].saturating_sub(self.ghost_kb[p])));
            }
            prev = Some(s);
        }
        let slots: heapless::Vec<usize, N> = self.slots().collect();
        for ti in 0..S {
            let Some(key) = self.tracks[ti].key else {
                continue;
            };
            let b = self.blame_of(ti, key, &slots, rises, &w);
            if let Some(b) = b {
                if b.measured.is_some() {
                    self.tracks[ti].ratio = b.measured;
                }
                if out.push(b).is_err() {
                    break;
                }
            }
        }
        out.sort_unstable_by(|a, b| {
            (b.explains_pm, b.queue_growth, b.queue_now, a.key.inode).cmp(&(
                a.explains_pm,
                a.queue_growth,
                a.queue_now,
                b.key.inode,
            ))
        });
        Some(w)
    }

    /// One socket's `Blame` (None when fewer than two samples saw it).
    fn blame_of(
        &self,
        ti: usize,
        key: Key,
        slots: &[usize],
        rises: u64,
        w: &Window,
    ) -> Option<Blame> {
        let t = &self.tracks[ti];
        let (mut first, mut last): (Option<usize>, Option<usize>) = (None, None);
        let (mut in_step, mut moved, mut seen) = (0u64, 0u64, 0usize);
        // Over the steps in which the queue grew: Ghost's change (kB) and the queue's growth.
        let (mut step_ghost, mut step_queue) = (0i64, 0u64);
        for &s in slots {
            if t.rx[s] == UNSEEN {
                continue;
            }
            seen += 1;
            if let Some(l) = last {
                let dq = t.rx[s] as i64 - t.rx[l] as i64;
                let dg = self.ghost_kb[s].saturating_sub(self.ghost_kb[l]);
                if dq > 0 {
                    in_step = in_step.saturating_add(pos(dg));
                    step_ghost = step_ghost.saturating_add(dg);
                    step_queue = step_queue.saturating_add(dq as u64);
                }
                moved = moved.saturating_add(dq.unsigned_abs());
            }
            first.get_or_insert(s);
            last = Some(s);
        }
        let (first, last) = (first?, last?);
        if seen < 2 {
            return None;
        }
        let queue_growth = t.rx[last] as i64 - t.rx[first] as i64;
        let ghost_growth_kb = self.ghost_kb[last].saturating_sub(self.ghost_kb[first]);
        let grown = pos(queue_growth);
        let in_step_pm = if rises == 0 { 0 } else { pm(in_step, rises) };
        let steady_pm = if moved == 0 { 0 } else { pm(grown, moved) };
        let window_bytes = pos(w.ghost_growth_kb).saturating_mul(1024);
        let enough_pm = if window_bytes == 0 {
            0
        } else {
            pm(grown.saturating_mul(MAX_PIN_RATIO), window_bytes)
        };
        let explains_pm = (in_step_pm * steady_pm / 1000 * enough_pm / 1000) as u16;
        // The ratio: Ghost's growth over the queue's, both over the steps in which the queue
        // grew (a queue that stopped while Ghost went on must not inflate it).
        let step_bytes = pos(step_ghost).saturating_mul(1024);
        let measured = (w.ghost_grew()
            && step_ghost >= MIN_GHOST_GROWTH_KB
            && step_queue >= MIN_QUEUE_GROWTH_BYTES
            && seen >= MIN_SAMPLES
            && explains_pm >= MOVES_WITH_PM
            && step_bytes <= step_queue.saturating_mul(MAX_PIN_RATIO))
        .then(|| {
            Ratio(u32::try_from(step_bytes.saturating_mul(100) / step_queue).unwrap_or(u32::MAX))
        });
        Some(Blame {
            key,
            explains_pm,
            queue_now: t.rx[last],
            queue_growth,
            ghost_growth_kb,
            samples: seen,
            measured,
            ratio: measured.or(t.ratio),
        })
    }

    /// The ratio last trusted for `key` (sticky), None when none is or it is not tracked.
    pub fn ratio_of(&self, key: Key) -> Option<Ratio> {
        self.tracks
            .iter()
            .find(|t| t.key == Some(key))
            .and_then(|t| t.ratio)
    }

    /// The queue series of `key` over the window, oldest first (None where a sample did not
    /// see it), and Ghost's (kB): for sparklines.
    pub fn series(&self, key: Key, out: &mut [Option<u64>; N], ghost: &mut [i64; N]) -> usize {
        let t = self.tracks.iter().find(|t| t.key == Some(key));
        let mut n = 0;
        for s in self.slots() {
            out[n] = t.and_then(|t| (t.rx[s] != UNSEEN).then_some(t.rx[s]));
            ghost[n] = self.ghost_kb[s];
            n += 1;
        }
        n
    }
}

fn pos(v: i64) -> u64 {
    v.max(0) as u64
}

fn sat_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// `a / b` in per-mille, at most 1000 (b > 0).
fn pm(a: u64, b: u64) -> u64 {
    if a >= b {
        1000
    } else {
        crate::sys::per_mille(a, b).min(1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1 << 20;
    type H = History<16, 8>;

    fn key(inode: u64) -> Key {
        Key { netns: 1, inode }
    }

    /// One sample per second: Ghost (kB) and the sockets' queues (bytes).
    fn feed(h: &mut H, t: u64, ghost_kb: i64, socks: &[(u64, u64)]) {
        h.sample(t * 1000, ghost_kb, Some(10_000_000 - ghost_kb as u64));
        for &(inode, rx) in socks {
            h.socket(key(inode), rx);
        }
    }

    fn ranked(h: &mut H) -> (Option<Window>, Vec<Blame>) {
        let mut out = heapless::Vec::<Blame, 8>::new();
        let w = h.rank(&mut out);
        (w, out.to_vec())
    }

    /// A tiny deterministic noise source (no rand crate).
    fn noise(seed: &mut u64) -> i64 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((*seed >> 33) % 2001) as i64 - 1000
    }

    #[test]
    fn the_culprit_that_grows_with_ghost_beats_a_larger_steady_decoy() {
        let mut h = H::default();
        // Decoy: 60 MiB, steady. Culprit: +512 KiB a second while Ghost grows 34× that.
        for t in 0..12u64 {
            let culprit = 2 * MB + t * 512 * 1024;
            feed(
                &mut h,
                t,
                100_000 + (t * 512 * 34) as i64,
                &[(1, 60 * MB), (2, culprit)],
            );
        }
        let (w, r) = ranked(&mut h);
        let w = w.unwrap();
        assert_eq!(w.samples, 12);
        assert_eq!(w.span_ms, 11_000);
        assert_eq!(w.ghost_growth_kb, 11 * 512 * 34);
        assert_eq!(w.available_drop_kb, Some(11 * 512 * 34));
        assert!(w.ghost_grew());
        assert_eq!(r[0].key, key(2), "{r:?}");
        assert_eq!(r[0].explains_pm, 1000);
        assert!(r[0].moves_with_ghost());
        assert_eq!(r[0].queue_growth, (11 * 512 * 1024) as i64);
        assert_eq!(r[0].measured, Some(Ratio(3400)));
        assert_eq!(r[0].ratio.unwrap().to_string(), "34.0");
        assert_eq!(r[1].key, key(1));
        assert_eq!(r[1].explains_pm, 0, "a steady queue explains nothing");
        assert_eq!(r[1].ratio, None);
        // The ratio makes the culprit's 7.5 MiB hold ~255 MiB: more than the decoy's 60.
        assert!(r[0].ratio.unwrap().apply(r[0].queue_now) > 60 * MB * 4);
    }

    #[test]
    fn noise_is_not_blamed_and_noisy_ghost_still_finds_the_culprit() {
        let mut h = H::default();
        let mut seed = 7;
        for t in 0..16u64 {
            // A socket read promptly: its queue jumps around a few hundred kB.
            let jitter = (300 * 1024 + noise(&mut seed) * 200) as u64;
            // Ghost: the culprit's 1 MiB/s at 20×, plus ±1 MiB of noise.
            let ghost = 50_000 + (t * 1024 * 20) as i64 + noise(&mut seed);
            let culprit = t * MB;
            feed(&mut h, t, ghost, &[(1, jitter), (2, culprit), (3, 40 * MB)]);
        }
        let (_, r) = ranked(&mut h);
        assert_eq!(r[0].key, key(2), "{r:?}");
        assert!(r[0].explains_pm >= 900, "{r:?}");
        let ratio = r[0].measured.unwrap().0;
        assert!((1900..=2100).contains(&ratio), "{ratio}");
        for b in &r[1..] {
            assert!(!b.moves_with_ghost(), "{b:?}");
            assert_eq!(b.measured, None);
        }
    }

    #[test]
    fn a_small_queue_that_creeps_up_cannot_take_blame_for_much_more() {
        let mut h = H::default();
        // Ghost +64 MiB (a leak no socket shows); one queue creeps up 4 kB a second.
        for t in 0..10u64 {
            feed(&mut h, t, (t * 8 * 1024) as i64, &[(1, 1000 + t * 4096)]);
        }
        let (w, r) = ranked(&mut h);
        assert!(w.unwrap().ghost_grew());
        // 36 kB × MAX_PIN_RATIO is 6 % of 72 MiB: that is the most it could explain.
        assert!(r[0].explains_pm <= 63, "{r:?}");
        assert!(!r[0].moves_with_ghost());
        assert_eq!(r[0].measured, None);
    }

    #[test]
    fn a_culprit_that_stops_growing_loses_the_blame_but_keeps_its_ratio() {
        let mut h = H::default();
        let mut t = 0;
        // Grows with Ghost for 16 s: blamed, ratio 30×.
        while t < 16 {
            feed(&mut h, t, (t * 1024 * 30) as i64, &[(2, t * MB)]);
            t += 1;
        }
        let (_, r) = ranked(&mut h);
        assert!(r[0].moves_with_ghost());
        assert_eq!(r[0].measured, Some(Ratio(3000)));
        // Then it stops (its rcvbuf is full); Ghost goes on growing for another reason.
        let stopped = 15 * MB;
        let mut shares = Vec::new();
        while t < 40 {
            feed(&mut h, t, (t * 1024 * 30) as i64, &[(2, stopped)]);
            let (_, r) = ranked(&mut h);
            shares.push(r[0].explains_pm);
            t += 1;
        }
        assert!(shares.windows(2).all(|w| w[1] <= w[0]), "{shares:?}");
        let (_, r) = ranked(&mut h);
        assert_eq!(
            r[0].explains_pm, 0,
            "a window of no growth explains nothing"
        );
        assert_eq!(r[0].measured, None);
        assert_eq!(r[0].ratio, Some(Ratio(3000)), "what it pins, it still pins");
        assert_eq!(h.ratio_of(key(2)), Some(Ratio(3000)));
        // Ghost stops too: nothing grew, nothing is measured, the sticky ratio stands.
        for _ in 0..16 {
            feed(&mut h, t, (40 * 1024 * 30) as i64, &[(2, stopped)]);
            t += 1;
        }
        let (w, r) = ranked(&mut h);
        assert!(!w.unwrap().ghost_grew());
        assert_eq!(r[0].ratio, Some(Ratio(3000)));
        // Forgotten (drained by an action): gone, ratio and all.
        h.forget(key(2));
        assert_eq!(h.ratio_of(key(2)), None);
    }

    #[test]
    fn a_ratio_needs_growth_and_samples() {
        // Too little Ghost growth (4 MiB over the window).
        let mut h = H::default();
        for t in 0..8u64 {
            feed(&mut h, t, (t * 512) as i64, &[(2, t * 64 * 1024)]);
        }
        let (w, r) = ranked(&mut h);
        assert!(!w.unwrap().ghost_grew());
        assert!(r[0].moves_with_ghost(), "it does move with Ghost");
        assert_eq!(r[0].measured, None, "but the growth is too small to trust");
        // Too few samples (3) despite large growth.
        let mut h = H::default();
        for t in 0..3u64 {
            feed(&mut h, t, (t * 40 * 1024) as i64, &[(2, t * 2 * MB)]);
        }
        assert_eq!(ranked(&mut h).1[0].measured, None);
        feed(&mut h, 3, 3 * 40 * 1024, &[(2, 6 * MB)]);
        assert_eq!(ranked(&mut h).1[0].measured, Some(Ratio(2000)));
        // A ratio beyond MAX_PIN_RATIO is not believed.
        let mut h = H::default();
        for t in 0..8u64 {
            feed(&mut h, t, (t * 100 * 1024) as i64, &[(2, t * 300 * 1024)]);
        }
        let r = ranked(&mut h).1;
        assert_eq!(r[0].measured, None, "{r:?}");
    }

    #[test]
    fn bounded_tracks_unseen_samples_and_eviction() {
        let mut h = History::<4, 2>::default();
        let mut out = heapless::Vec::<Blame, 4>::new();
        assert_eq!(h.rank(&mut out), None);
        h.socket(key(9), 1); // before any sample: ignored
        h.sample(0, 0, None);
        h.socket(key(1), 10);
        h.socket(key(2), 20);
        h.socket(key(3), 30); // no room this sample: both places were used in it
        h.sample(1000, 10, None);
        h.socket(key(1), 11);
        h.socket(key(3), 31); // takes 2's place (seen longest ago)
        let w = h.rank(&mut out).unwrap();
        assert_eq!(w.available_drop_kb, None);
        assert_eq!(out.len(), 1, "3 is seen once, 2 is gone: {out:?}");
        assert_eq!(out[0].key, key(1));
        // A socket unseen in a sample: steps run between the samples that saw it.
        h.sample(2000, 20, None);
        h.sample(3000, 30, None);
        h.socket(key(1), 13);
        h.rank(&mut out).unwrap();
        let b = out.iter().find(|b| b.key == key(1)).unwrap();
        assert_eq!((b.samples, b.queue_growth, b.ghost_growth_kb), (3, 3, 30));
        // Unseen for a whole window: dropped.
        for t in 4..9 {
            h.sample(t * 1000, 0, None);
        }
        h.rank(&mut out).unwrap();
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(h.samples(), 4);
    }

    #[test]
    fn ratio_applies_never_below_one() {
        assert_eq!(Ratio(3400).apply(1000), 34_000);
        assert_eq!(Ratio(50).apply(1000), 1000);
        assert_eq!(Ratio(u32::MAX).apply(u64::MAX), u64::MAX);
        assert_eq!(Ratio(3412).to_string(), "34.1");
        assert_eq!(Ratio(96).to_string(), "1.0");
        assert_eq!(Ratio(4).to_string(), "0.0");
    }

    #[test]
    fn series_for_sparklines() {
        let mut h = H::default();
        for t in 0..3u64 {
            let socks = [(5, t)];
            feed(&mut h, t, t as i64 * 10, if t == 1 { &[] } else { &socks });
        }
        let (mut q, mut g) = ([None; 16], [0; 16]);
        assert_eq!(h.series(key(5), &mut q, &mut g), 3);
        assert_eq!(&q[..3], &[Some(0), None, Some(2)]);
        assert_eq!(&g[..3], &[0, 10, 20]);
    }
}
