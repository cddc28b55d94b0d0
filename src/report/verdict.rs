//! The report's verdict: which of a handful of situations the findings show (pure, thresholds
//! below), and the paragraph that says it in plain words with the owner to blame.

use super::Findings;
use super::units::{Bytes, Kb, Pct};
use crate::observe::proc::net::SocketEntry;
use crate::output::escape::Printable;
use core::fmt;

/// Ghost counts as significant from this share of MemTotal (percent) ...
pub const GHOST_SIGNIFICANT_PERCENT: u64 = 10;
/// ... and this size: a 10% "Ghost" of a tiny VM is accounting noise, not a leak.
pub const GHOST_SIGNIFICANT_KB: u64 = 16 * 1024;
/// A receive queue this large is worth blaming (bytes).
pub const BIG_BACKLOG_BYTES: u64 = 1024 * 1024;
/// A backlog this large is named in the verdict even when Ghost is small (the cost may sit in Slab).
pub const HUGE_BACKLOG_BYTES: u64 = 16 * 1024 * 1024;
/// Memory is "low" below this share of MemTotal available (percent).
pub const LOW_AVAILABLE_PERCENT: u64 = 10;

/// What the report concludes, most urgent first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VerdictKind {
    /// Significant Ghost and a socket with a big unread receive queue: blame its owner.
    GhostSocket,
    /// Significant Ghost but no big receive queue: driver/DMA pages or another alloc_pages user.
    GhostNoSocket,
    /// Little Ghost, but a huge receive queue (the cost sits in Slab for small packets).
    SocketBacklog,
    /// Little available memory, mostly in Shmem/tmpfs.
    Shmem,
    /// Little available memory, mostly in processes.
    Processes,
    /// Little available memory, and none of the above explains it.
    LowMemory,
    Healthy,
}

impl VerdictKind {
    /// Stable machine name for JSON.
    pub fn name(self) -> &'static str {
        match self {
            VerdictKind::GhostSocket => "ghost_socket",
            VerdictKind::GhostNoSocket => "ghost_no_socket",
            VerdictKind::SocketBacklog => "socket_backlog",
            VerdictKind::Shmem => "shmem",
            VerdictKind::Processes => "processes",
            VerdictKind::LowMemory => "low_memory",
            VerdictKind::Healthy => "healthy",
        }
    }
}

/// Classifies `f` (pure; thresholds are the pub consts above).
pub fn verdict_kind(f: &Findings) -> VerdictKind {
    let total = f.mem_total_kb();
    let ghost = f.ghost.ghost_kb.max(0) as u64;
    let ghost_big = ghost >= GHOST_SIGNIFICANT_KB
        && ghost.saturating_mul(100) >= total.saturating_mul(GHOST_SIGNIFICANT_PERCENT);
    let backlog = f.top.first().map_or(0, |s| s.rx_queue);
    let low = f.available_kb().saturating_mul(100) < total.saturating_mul(LOW_AVAILABLE_PERCENT);
    let shmem = f.shmem_kb();
    let rss = f.procs.rss_total_kb;
    if ghost_big && backlog >= BIG_BACKLOG_BYTES {
        VerdictKind::GhostSocket
    } else if ghost_big {
        VerdictKind::GhostNoSocket
    } else if backlog >= HUGE_BACKLOG_BYTES {
        VerdictKind::SocketBacklog
    } else if shmem.saturating_mul(100) >= total.saturating_mul(25)
        || (low && shmem >= rss && shmem.saturating_mul(10) >= total)
    {
        VerdictKind::Shmem
    } else if low && rss.saturating_mul(4) >= total {
        VerdictKind::Processes
    } else if low {
        VerdictKind::LowMemory
    } else {
        VerdictKind::Healthy
    }
}

/// "zebra (pid 3218)", "syslogd (pids 400, 401)", "httpd (pid 3007) and 5 other processes".
struct OwnerList<'a>(&'a Findings, u64);

impl fmt::Display for OwnerList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut it = self.0.owners.of(self.1);
        let Some(first) = it.next() else {
            return if self.0.owners.pids_denied > 0 {
                f.write_str("a process this user cannot see (run as root to name it)")
            } else {
                f.write_str("no process (nothing holds an fd to it)")
            };
        };
        let listed = self.0.owners.of(self.1).count();
        let n = listed + self.0.owners.more(self.1) as usize;
        let same = self.0.owners.of(self.1).all(|o| o.comm == first.comm);
        write!(f, "{}", Printable(first.comm.as_bytes()))?;
        if n == 1 {
            write!(f, " (pid {})", first.pid)
        } else if same && n <= 4 && n == listed {
            write!(f, " (pids {}", first.pid)?;
            for o in it {
                write!(f, ", {}", o.pid)?;
            }
            f.write_str(")")
        } else {
            write!(
                f,
                " (pid {}) and {} other process{}",
                first.pid,
                n - 1,
                if n == 2 { "" } else { "es" }
            )
        }
    }
}

/// A socket's local end, with its network namespace when it is not the report's own:
/// `127.0.0.1:9 (netns blue)`, `:::58 (netns 4026532301)`.
pub struct LocalIn<'a>(pub &'a Findings, pub &'a SocketEntry);

impl fmt::Display for LocalIn<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (r, s) = (self.0, self.1);
        write!(f, "{}", s.local)?;
        if s.netns != 0 && s.netns != r.netns.home {
            match r.netns.name_of(s.netns) {
                Some(name) => write!(f, " (netns {name})")?,
                None => write!(f, " (netns {})", s.netns)?,
            }
        }
        Ok(())
    }
}

/// The verdict in plain words (one paragraph).
pub struct Verdict<'a>(pub &'a Findings);

impl fmt::Display for Verdict<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.0;
        let total = r.mem_total_kb();
        let ghost = r.ghost.ghost_kb.max(0) as u64;
        let pct = |kb: u64| Pct(kb, total);
        let avail = r.available_kb();
        match verdict_kind(r) {
            VerdictKind::GhostSocket | VerdictKind::SocketBacklog => {
                let Some(s) = r.top.first() else {
                    return Ok(());
                };
                if verdict_kind(r) == VerdictKind::GhostSocket {
                    write!(
                        f,
                        "GHOST MEMORY: {} ({}% of RAM) is held by the kernel outside every \
                         meminfo category. Largest unread receive queue: ",
                        Kb(ghost),
                        pct(ghost)
                    )?;
                } else {
                    write!(
                        f,
                        "SOCKET BACKLOG: Ghost is small ({}), but a receive queue is large \
                         (its packets' memory is counted in Slab or Ghost): ",
                        Kb(ghost)
                    )?;
                }
                write!(
                    f,
                    "{} {} (inode {}) held by {}, {}.",
                    s.proto.name(),
                    LocalIn(r, s),
                    s.inode,
                    OwnerList(r, s.inode),
                    Bytes(s.rx_queue)
                )?;
                if let Some(o) = r.owners.of(s.inode).next() {
                    write!(
                        f,
                        " Restarting or stopping {} frees it",
                        Printable(o.comm.as_bytes())
                    )?;
                } else {
                    f.write_str(" Closing the socket (restarting its owner) frees it")?;
                }
                f.write_str("; the OOM killer cannot see this memory.")
            }
            VerdictKind::GhostNoSocket => {
                write!(
                    f,
                    "GHOST MEMORY: {} ({}% of RAM) is held by the kernel outside every meminfo \
                     category",
                    Kb(ghost),
                    pct(ghost)
                )?;
                if r.inet_tables_read() == 0 {
                    // Without the tables we cannot rule sockets out: say so, not "no socket".
                    return f.write_str(
                        ", and no socket table under net/ could be read, so the sockets holding \
                         it (the usual cause) cannot be named: see Skipped below.",
                    );
                }
                f.write_str(", and no socket holds a large receive queue")?;
                match r.top.first() {
                    Some(s) if s.rx_queue > 0 => write!(
                        f,
                        " (largest: {}, {} {})",
                        Bytes(s.rx_queue),
                        s.proto.name(),
                        s.local
                    )?,
                    _ => {}
                }
                f.write_str(
                    ". Suspect pages taken straight from the page allocator by a driver (DMA \
                     rings, page pools) or a kernel module: check `dmesg`, `ethtool -S <iface>` \
                     for rx buffer/page-pool counters and `lsmod` for out-of-tree modules, then \
                     run this report again to see whether Ghost grows. The OOM killer cannot \
                     see this memory.",
                )
            }
            VerdictKind::Shmem => write!(
                f,
                "SHMEM/TMPFS: {} ({}% of RAM) is in shared memory and tmpfs files, which no \
                 single process's RSS shows; {} is available. Check `df -h -t tmpfs` (/tmp, \
                 /run, /dev/shm) and `ipcs -m`; deleting files or shm segments frees it.",
                Kb(r.shmem_kb()),
                pct(r.shmem_kb()),
                Kb(avail)
            ),
            VerdictKind::Processes => {
                write!(
                    f,
                    "LOW MEMORY, held by processes: only {} ({}%) is available; processes \
                     hold {} of RSS",
                    Kb(avail),
                    pct(avail),
                    Kb(r.procs.rss_total_kb)
                )?;
                if let Some((p, comm, kb)) = r.procs.largest {
                    write!(
                        f,
                        ", the largest {} (pid {p}) with {}",
                        Printable(comm.as_bytes()),
                        Kb(kb)
                    )?;
                }
                f.write_str(". Ghost is small: this is ordinary process memory.")
            }
            VerdictKind::LowMemory => write!(
                f,
                "LOW MEMORY: only {} ({}%) is available, but neither Ghost ({}), processes \
                 ({}) nor Shmem ({}) explains it; look at the largest terms of the equation \
                 below (Slab: `slabtop`).",
                Kb(avail),
                pct(avail),
                Kb(ghost),
                Kb(r.procs.rss_total_kb),
                Kb(r.shmem_kb())
            ),
            VerdictKind::Healthy => {
                write!(
                    f,
                    "OK: Ghost is {} ({}% of RAM), {} ({}%) is available",
                    Kb(ghost),
                    pct(ghost),
                    Kb(avail),
                    pct(avail)
                )?;
                match r.top.first() {
                    Some(s) if s.rx_queue > 0 => write!(
                        f,
                        "; the largest receive queue is {} ({} {}).",
                        Bytes(s.rx_queue),
                        s.proto.name(),
                        s.local
                    ),
                    _ => f.write_str("; no socket has unread data queued."),
                }
            }
        }
    }
}
