//! `report --watch S`: samples Ghost, MemAvailable and the largest receive queues for S seconds,
//! then ranks the sockets by how much of Ghost's growth their queue's growth explains
//! (`decide::correlate`, the agent's own measure) and says in plain words which socket moved
//! with Ghost and how many times its queue the memory it pins is.
//!
//! The sampling does I/O and sleeps (`watch`); the verdict and the sparklines are pure.

use super::units::{Bytes, Kb};
use super::{Findings, Ranked, Watch, collect};
use crate::decide::correlate::{Blame, History, Key};
use crate::observe::proc::ProcRoot;
use crate::observe::proc::net::{Proto, SocketEntry, TableStats, insert_top};
use crate::observe::sockets::Scanner;
use crate::output::escape::Printable;
use crate::sys;
use core::fmt;

/// Most seconds `--watch` takes.
pub const MAX_WATCH_S: u32 = 3600;
/// Samples over a watch (the window), at most: one every `S / 60` seconds, at least 250 ms apart.
pub const MAX_SAMPLES: usize = 61;
/// Shortest time between two samples (ms).
pub const MIN_SAMPLE_MS: u64 = 250;
/// Sockets followed per sample: the largest queues.
pub const WATCH_SOCKETS: usize = 64;
/// Time between samples for a watch of `seconds`: S/60, at least `MIN_SAMPLE_MS`.
pub fn sample_ms(seconds: u32) -> u64 {
    (u64::from(seconds) * 1000 / (MAX_SAMPLES as u64 - 1)).max(MIN_SAMPLE_MS)
}

/// Samples `root` for `seconds` (clamped to 1..=MAX_WATCH_S). `progress`: a line on stderr,
/// rewritten in place (for a terminal). Err only when meminfo cannot be read at the start.
pub fn watch(root: &ProcRoot, seconds: u32, progress: bool) -> Result<Watch, String> {
    let seconds = seconds.clamp(1, MAX_WATCH_S);
    let step = sample_ms(seconds);
    let samples = (u64::from(seconds) * 1000 / step + 1).min(MAX_SAMPLES as u64) as usize;
    let mut h: Box<History<MAX_SAMPLES, WATCH_SOCKETS>> = Box::default();
    let mut last: Vec<SocketEntry> = Vec::new();
    let mut buf = [0u8; 4096];
    let mut scanner = Scanner::new(root, Scanner::is_live_root(root));
    let mut tables = [TableStats::default(); Proto::COUNT];
    let start = sys::monotonic_ms();
    let mut first_ghost = None;
    for i in 0..samples {
        let due = start + i as u64 * step;
        let now = sys::monotonic_ms();
        if due > now {
            std::thread::sleep(std::time::Duration::from_millis(due - now));
        }
        let now = sys::monotonic_ms();
        let ghost = match collect::measure(root, &mut buf) {
            Ok((mem, _, g)) => Some((
                g.ghost_kb,
                mem.get(crate::observe::proc::meminfo::Field::MemAvailable),
            )),
            Err(e) if i == 0 => return Err(e),
            Err(_) => None, // a sample lost; the window goes on
        };
        let Some((ghost_kb, avail)) = ghost else {
            continue;
        };
        h.sample(now, ghost_kb, avail);
        let mut top: heapless::Vec<SocketEntry, WATCH_SOCKETS> = heapless::Vec::new();
        scanner.scan(root, &mut buf, &|_| true, &mut tables, &mut |e| {
            if e.rx_queue > 0 && e.inode != 0 {
                insert_top(&mut top, WATCH_SOCKETS, e.rx_queue, |s| s.rx_queue, || *e);
            }
        });
        for e in &top {
            h.socket(key(e), e.rx_queue);
            match last.iter_mut().find(|s| key(s) == key(e)) {
                Some(s) => *s = *e,
                None => last.push(*e),
            }
        }
        let _ = scanner.take_notes(); // the final report says them
        let g0 = *first_ghost.get_or_insert(ghost_kb);
        if progress {
            let growth = ghost_kb - g0;
            sys::Out::STDERR.print(format_args!(
                "\rwatching: {} of {seconds} s, Ghost {}{}\x1b[K",
                now.saturating_sub(start) / 1000,
                if growth < 0 { "-" } else { "+" },
                Kb(growth.unsigned_abs())
            ));
        }
    }
    if progress {
        sys::Out::STDERR.print(format_args!("\r\x1b[K"));
    }
    let mut blame: heapless::Vec<Blame, WATCH_SOCKETS> = heapless::Vec::new();
    let window = h.rank(&mut blame);
    let mut w = Watch {
        seconds,
        window,
        ranked: heapless::Vec::new(),
        ghost_series: heapless::Vec::new(),
        queue_series: heapless::Vec::new(),
    };
    for b in blame.iter() {
        let Some(socket) = last.iter().find(|s| key(s) == b.key) else {
            continue;
        };
        if w.ranked
            .push(Ranked {
                socket: *socket,
                blame: *b,
            })
            .is_err()
        {
            break;
        }
    }
    let mut q = [None; MAX_SAMPLES];
    let mut g = [0i64; MAX_SAMPLES];
    let k = w.ranked.first().map_or(Key::default(), |r| r.blame.key);
    let n = h.series(k, &mut q, &mut g);
    for i in 0..n {
        let _ = w.ghost_series.push(g[i]);
        let _ = w.queue_series.push(q[i]);
    }
    Ok(w)
}

fn key(e: &SocketEntry) -> Key {
    Key {
        netns: e.netns,
        inode: e.inode,
    }
}

/// The watch's verdict in plain words, e.g. "Ghost +412 MiB in 20 s; raw6 :::58 (zebra, pid
/// 3218) grew in step: its queue grew 12 MiB, Ghost grew 34.0× that."
pub struct WatchVerdict<'a>(pub &'a Findings, pub &'a Watch);

impl fmt::Display for WatchVerdict<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (r, w) = (self.0, self.1);
        let Some(win) = w.window else {
            return write!(
                f,
                "watched {} s but took fewer than two samples: nothing to compare",
                w.seconds
            );
        };
        let g = win.ghost_growth_kb;
        write!(
            f,
            "Ghost {}{} in {} s",
            if g < 0 { "-" } else { "+" },
            Kb(g.unsigned_abs()),
            (win.span_ms + 500) / 1000
        )?;
        if let Some(drop) = win.available_drop_kb.filter(|&d| d > 0) {
            write!(f, " (MemAvailable -{})", Kb(drop as u64))?;
        }
        if !win.ghost_grew() {
            return f.write_str(
                ": not growing, so no socket is blamed over this window (watch longer, or while \
                 memory is vanishing)",
            );
        }
        let Some(c) = w.culprit() else {
            return f.write_str(
                "; no socket's queue grew in step with it: the memory is not held by a receive \
                 queue this report can see (a driver, the kernel, or a socket beyond the 64 \
                 largest queues)",
            );
        };
        f.write_str("; ")?;
        Named(r, &c.socket).fmt(f)?;
        let b = &c.blame;
        write!(
            f,
            " grew in step (explains {}% of it): its queue grew {} (shows {} now)",
            b.explains_pm / 10,
            Bytes(b.queue_growth.max(0) as u64),
            Bytes(b.queue_now)
        )?;
        match b.measured {
            Some(ratio) => write!(
                f,
                ", Ghost grew {ratio}× that — each byte it shows pins about {ratio} bytes"
            ),
            None => f.write_str(
                ", too little growth or too few samples for a pinning ratio to be trusted",
            ),
        }
    }
}

/// "raw6 :::58 (zebra, pid 3218)": a socket with its first owner.
pub struct Named<'a>(pub &'a Findings, pub &'a SocketEntry);

impl fmt::Display for Named<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (r, s) = (self.0, self.1);
        write!(f, "{} {}", s.proto.name(), super::verdict::LocalIn(r, s))?;
        let mut owners = r.owners.of(s.inode);
        match owners.next() {
            Some(o) => {
                write!(f, " ({}, pid {}", Printable(o.comm.as_bytes()), o.pid)?;
                let more = owners.count() + r.owners.more(s.inode) as usize;
                if more > 0 {
                    write!(f, ", +{more} more")?;
                }
                f.write_str(")")
            }
            None => write!(f, " (inode {}, owner not found)", s.inode),
        }
    }
}

/// A text sparkline of `values` (None: a gap), scaled from their least to their most.
pub struct Spark<'a>(pub &'a [Option<i64>]);

impl fmt::Display for Spark<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
        let known = self.0.iter().flatten();
        let (lo, hi) = (
            known.clone().min().copied().unwrap_or(0),
            known.max().copied().unwrap_or(0),
        );
        // 64-bit arithmetic (128-bit division costs ~1 KiB of a router's flash): spans too wide
        // for `d * 7` to fit are scaled down by 8 first, which only blurs spans above 2^60.
        let span = hi.saturating_sub(lo).max(1).unsigned_abs();
        let shift = if span > u64::MAX >> 4 { 3 } else { 0 };
        let span = (span >> shift).max(1);
        for v in self.0 {
            match v {
                None => f.write_str(" ")?,
                Some(v) => {
                    let d = v.saturating_sub(lo).max(0).unsigned_abs() >> shift;
                    let i = (d.min(span) * 7 + span / 2) / span;
                    fmt::Write::write_char(f, BARS[i.min(7) as usize])?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparkline_scales_and_shows_gaps() {
        let v = [Some(0), Some(1), None, Some(7), Some(14)];
        assert_eq!(Spark(&v).to_string(), "▁▂ ▅█");
        assert_eq!(Spark(&[Some(5), Some(5)]).to_string(), "▁▁");
        assert_eq!(Spark(&[]).to_string(), "");
        assert_eq!(Spark(&[Some(i64::MIN), Some(i64::MAX)]).to_string(), "▁█");
        let wide = [Some(0), Some(i64::MAX / 4 * 3), Some(i64::MAX)];
        assert_eq!(
            Spark(&wide).to_string(),
            "▁▆█",
            "spans above 2^60 are scaled, not overflowed"
        );
    }

    #[test]
    fn sample_spacing() {
        assert_eq!(sample_ms(1), 250);
        assert_eq!(sample_ms(5), 250);
        assert_eq!(sample_ms(20), 333);
        assert_eq!(sample_ms(3600), 60_000);
    }
}
