//! `ghostwatch report`: the whole seed investigation in one command — the accounting equation
//! term by term, Ghost, process RSS vs used memory, Shmem, the top sockets by receive queue with
//! their owners, and a verdict in plain words. Human text by default, the contract JSON with --json.
//!
//! Collection (`collect`) does the I/O once into a `Findings`; the verdict and both writers are
//! pure functions of it. Socket tables are streamed: only the top N sockets are ever kept.

mod collect;
mod json;
mod text;
mod units;
mod verdict;
pub mod watch;

pub use crate::output::escape::Printable;
pub use collect::{Findings, ProcSummary, Skip, collect};
pub use json::write_json;
pub use text::write_text;
pub use units::{Bytes, Kb, Pct};
pub use verdict::{
    BIG_BACKLOG_BYTES, GHOST_SIGNIFICANT_KB, GHOST_SIGNIFICANT_PERCENT, HUGE_BACKLOG_BYTES,
    LOW_AVAILABLE_PERCENT, Verdict, VerdictKind, verdict_kind,
};

use crate::observe::proc::ProcRoot;

/// Sockets the watch lists (ranked), whose owners the report looks for.
pub const MAX_LISTED: usize = 8;

/// One ranked socket.
#[derive(Clone, Debug)]
pub struct Ranked {
    /// As the last sample that saw it read it.
    pub socket: crate::observe::proc::net::SocketEntry,
    pub blame: crate::decide::correlate::Blame,
}

/// What a watch saw.
#[derive(Clone, Debug)]
pub struct Watch {
    pub seconds: u32,
    /// None with fewer than two samples.
    pub window: Option<crate::decide::correlate::Window>,
    /// Most explaining first.
    pub ranked: heapless::Vec<Ranked, MAX_LISTED>,
    /// Ghost (kB) per sample, oldest first.
    pub ghost_series: heapless::Vec<i64, { watch::MAX_SAMPLES }>,
    /// The first ranked socket's queue per sample (None: not among the largest then).
    pub queue_series: heapless::Vec<Option<u64>, { watch::MAX_SAMPLES }>,
}

impl Watch {
    /// The socket that moved with Ghost, when Ghost grew and one did.
    pub fn culprit(&self) -> Option<&Ranked> {
        let grew = self.window.is_some_and(|w| w.ghost_grew());
        self.ranked
            .first()
            .filter(|r| grew && r.blame.moves_with_ghost())
    }
}

/// Most sockets `--top` may ask for.
pub const MAX_TOP: usize = 100;

/// Most "skipped" notes one report carries (one per table plus a handful more).
pub const MAX_SKIPS: usize = 24;

#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    pub top: usize,
    pub json: bool,
    /// `--watch S`: sample for S seconds first and add the correlation verdict.
    pub watch_s: Option<u32>,
    /// stderr is a terminal: a progress line while watching.
    pub progress: bool,
    /// stdout is a terminal: sparklines in the text report.
    pub tty: bool,
}

/// Collects everything from `root` and writes the report to `out`.
/// Unreadable parts are skipped and named in the report; only a missing/garbled meminfo is an Err
/// (its text names the file). A failed write to `out` (a bug: too deep JSON) is an Err too.
pub fn run(
    root: &ProcRoot,
    opts: Options,
    out: &mut dyn core::fmt::Write,
) -> Result<(), std::string::String> {
    let watched = match opts.watch_s {
        Some(s) => Some(watch::watch(root, s, opts.progress)?),
        None => None,
    };
    let mut also = [0u64; MAX_LISTED];
    let n = watched.as_ref().map_or(0, |w| {
        for (slot, r) in also.iter_mut().zip(&w.ranked) {
            *slot = r.socket.inode;
        }
        w.ranked.len()
    });
    let mut f = collect(root, opts.top.clamp(1, MAX_TOP), &also[..n])?;
    f.watch = watched;
    let written = if opts.json {
        write_json(&f, out)
    } else {
        write_text(&f, out, opts.tty)
    };
    // Writing into memory fails only on a bug (JSON nested deeper than json::MAX_DEPTH).
    written.map_err(|_| "the report could not be formatted (a bug: please report it)".into())
}

#[cfg(test)]
mod tests {
    use super::collect::offer;
    use super::*;
    use crate::observe::ghost;
    use crate::observe::owners::Owner;
    use crate::observe::proc::ProcError;
    use crate::observe::proc::meminfo::{Field, MemInfo};
    use crate::observe::proc::net::Endpoint;
    use crate::observe::proc::net::{Proto, SocketEntry};
    use crate::observe::proc::pid::Comm;

    fn sock(inode: u64, rx: u64) -> SocketEntry {
        let local = Endpoint::Inet {
            ip: [127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            v6: false,
            port: 514,
        };
        SocketEntry::queued(Proto::Udp, local, rx, inode)
    }

    /// A 1 GiB box: `free`, `active` (LRU, stands in for all process and cache pages),
    /// `shmem`, `available`; whatever is left over is Ghost.
    fn box_with(free: u64, active: u64, ghost: u64, shmem: u64, available: u64) -> Findings {
        let total = 1024 * 1024;
        let mut mem = MemInfo::default();
        let slab = total - free - active - ghost;
        for (f, v) in [
            (Field::MemTotal, total),
            (Field::MemFree, free),
            (Field::MemAvailable, available),
            (Field::Active, active),
            (Field::Inactive, 0),
            (Field::Slab, slab),
            (Field::Shmem, shmem),
            (Field::VmallocUsed, 0),
        ] {
            mem.set(f, Some(v));
        }
        let ghost = ghost::compute(&mem, None).unwrap();
        // Synthetic boxes read every table; tests that want otherwise overwrite `tables`.
        Findings::new(mem, ghost, None, 4096)
    }

    fn own(f: &mut Findings, inode: u64, pid: u32, comm: &[u8]) {
        let o = Owner {
            inode,
            pid,
            fd: 3,
            comm: Comm::from_bytes(comm),
        };
        assert!(f.owners.add(o));
    }

    #[test]
    fn top_n_keeps_the_largest_in_arrival_order_for_ties() {
        let mut top = heapless::Vec::new();
        for (ino, rx) in [(1, 0), (2, 50), (3, 0), (4, 900), (5, 50), (6, 10), (7, 0)] {
            offer(&mut top, 3, &sock(ino, rx));
        }
        let got: Vec<(u64, u64)> = top.iter().map(|s| (s.inode, s.rx_queue)).collect();
        assert_eq!(got, vec![(4, 900), (2, 50), (5, 50)]);
        // Idle sockets without an inode (TIME_WAIT) are never listed.
        let mut top = heapless::Vec::new();
        offer(&mut top, 3, &sock(0, 0));
        assert!(top.is_empty());
        offer(&mut top, 0, &sock(9, 9));
        assert!(top.is_empty());
    }

    #[test]
    fn verdict_blames_the_owner_of_the_big_queue() {
        let mut f = box_with(50_000, 200_000, 700_000, 1000, 60_000);
        f.top.push(sock(27123, 76_755_840)).unwrap();
        own(&mut f, 27123, 3218, b"zebra");
        assert_eq!(verdict_kind(&f), VerdictKind::GhostSocket);
        let v = Verdict(&f).to_string();
        assert!(v.starts_with("GHOST MEMORY: 683.6 MiB (66% of RAM)"), "{v}");
        assert!(v.contains("held by zebra (pid 3218), 73.2 MiB"), "{v}");
        assert!(v.contains("Restarting or stopping zebra frees it"), "{v}");
        // Several processes of different names share it.
        own(&mut f, 27123, 4000, b"helper");
        let v = Verdict(&f).to_string();
        assert!(v.contains("zebra (pid 3218) and 1 other process,"), "{v}");
    }

    #[test]
    fn verdict_when_owner_is_hidden() {
        let mut f = box_with(50_000, 200_000, 700_000, 1000, 60_000);
        f.top.push(sock(5, 8 << 20)).unwrap();
        f.owners.pids_denied = 12;
        let v = Verdict(&f).to_string();
        assert!(
            v.contains("a process this user cannot see (run as root"),
            "{v}"
        );
    }

    #[test]
    fn verdict_ghost_without_socket_points_at_drivers() {
        let mut f = box_with(50_000, 200_000, 700_000, 1000, 60_000);
        f.top.push(sock(5, 4096)).unwrap();
        assert_eq!(verdict_kind(&f), VerdictKind::GhostNoSocket);
        let v = Verdict(&f).to_string();
        assert!(v.contains("no socket holds a large receive queue"), "{v}");
        assert!(v.contains("ethtool -S"), "{v}");
        // With no table readable, "no socket" would be a guess: the verdict says so instead.
        for t in f.tables.iter_mut() {
            t.first_error = Some(ProcError::Io(libc::EACCES));
        }
        f.top.clear();
        let v = Verdict(&f).to_string();
        assert!(
            v.contains("no socket table under net/ could be read"),
            "{v}"
        );
    }

    #[test]
    fn verdict_other_cases() {
        // Huge queue, small Ghost (small packets: the cost is in Slab).
        let mut f = box_with(600_000, 200_000, 10_000, 1000, 700_000);
        f.top.push(sock(5, 200 << 20)).unwrap();
        assert_eq!(verdict_kind(&f), VerdictKind::SocketBacklog);
        assert!(Verdict(&f).to_string().starts_with("SOCKET BACKLOG"));
        // tmpfs full.
        let f = box_with(30_000, 900_000, 10_000, 600_000, 40_000);
        assert_eq!(verdict_kind(&f), VerdictKind::Shmem);
        assert!(Verdict(&f).to_string().contains("df -h -t tmpfs"));
        // Processes.
        let mut f = box_with(30_000, 900_000, 10_000, 1000, 40_000);
        f.procs.rss_total_kb = 850_000;
        f.procs.largest = Some((77, Comm::from_bytes(b"java"), 800_000));
        assert_eq!(verdict_kind(&f), VerdictKind::Processes);
        assert!(
            Verdict(&f)
                .to_string()
                .contains("the largest java (pid 77)")
        );
        // Low, unexplained.
        let mut f = box_with(30_000, 100_000, 10_000, 1000, 40_000);
        f.procs.rss_total_kb = 50_000;
        assert_eq!(verdict_kind(&f), VerdictKind::LowMemory);
        // Healthy.
        let f = box_with(600_000, 200_000, 10_000, 1000, 700_000);
        assert_eq!(verdict_kind(&f), VerdictKind::Healthy);
        assert!(Verdict(&f).to_string().starts_with("OK: Ghost is 9.8 MiB"));
    }

    #[test]
    fn sizes_and_names_print_for_people() {
        assert_eq!(Kb(2_591_452).to_string(), "2.47 GiB");
        assert_eq!(Kb(74_957).to_string(), "73.2 MiB");
        assert_eq!(Kb(512).to_string(), "512 kB");
        assert_eq!(Bytes(76_755_840).to_string(), "73.2 MiB");
        assert_eq!(Bytes(2304).to_string(), "2.2 kB");
        assert_eq!(Bytes(0).to_string(), "0 bytes");
        assert_eq!(Pct(2_591_452, 3_788_284).to_string(), "68");
        assert_eq!(Pct(187_640, 24_684_092).to_string(), "0.7");
        assert_eq!(Pct(1, 0).to_string(), "?");
        assert_eq!(
            Printable(b"a\\b\x1b[0m\n\xff").to_string(),
            "a\\\\b\\x1b[0m\\x0a\u{fffd}"
        );
    }

    #[test]
    fn json_and_text_render_synthetic_findings() {
        let mut f = box_with(50_000, 200_000, 700_000, 1000, 60_000);
        f.top.push(sock(27123, 1 << 30)).unwrap();
        own(&mut f, 27123, 1, b"x\"y");
        f.skip(Skip::FdDenied {
            pids: 3,
            as_root: false,
        });
        let mut s = String::new();
        write_json(&f, &mut s).unwrap();
        assert!(
            s.contains(r#""owners":[{"pid":1,"comm":"x\"y","fd":3}]"#),
            "{s}"
        );
        assert!(
            s.contains(r#""skipped":["fd of 3 processes not readable"#),
            "{s}"
        );
        let mut s = String::new();
        write_text(&f, &mut s, false).unwrap();
        assert!(s.contains("1/x\"y"), "{s}");
        assert!(
            s.contains("  - fd of 3 processes not readable — run as root"),
            "{s}"
        );
    }
}
