//! `ghostwatch report`: the whole seed investigation in one command — the accounting equation
//! term by term, Ghost, process RSS vs used memory, Shmem, the top sockets by receive queue with
//! their owners, and a verdict in plain words. Human text by default, the contract JSON with --json.
//!
//! Collection (`collect`) does the I/O once into a `Findings`; the verdict and both writers are
//! pure functions of it. Socket tables are streamed: only the top N sockets are ever kept.
//!
//! OWNER: processes.

mod json;

use crate::ghost::{self, Ghost};
use crate::owners::{self, Owners, WalkMode};
use crate::proc::meminfo::{Field, MemInfo};
use crate::proc::net::{Proto, SocketEntry, TableStats};
use crate::proc::netns::NetnsTable;
use crate::proc::pid::{self, Comm};
use crate::proc::sockstat::SockStat;
use crate::proc::vmallocinfo::VmallocSummary;
use crate::proc::{ProcError, ProcRoot};
use crate::sockets::{Note, Scanner, SourceKind};
use crate::sys::{self, Errno};
use core::fmt;
use json::JsonWriter;
use std::io::{self, Write};

/// Most sockets `--top` may ask for.
pub const MAX_TOP: usize = 100;

/// Most "skipped" notes one report carries (one per table plus a handful more).
pub const MAX_SKIPS: usize = 24;

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

#[derive(Clone, Copy, Debug)]
pub struct Options {
    pub top: usize,
    pub json: bool,
}

/// Something the report could not read (or read only in part), said in the "Skipped" section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skip {
    /// /proc/vmallocinfo unreadable (root-only on most kernels); `needed` when meminfo's
    /// VmallocUsed reads 0, so Ghost now includes the vmalloc'd pages.
    Vmallocinfo {
        error: ProcError,
        needed: bool,
    },
    /// Lines of vmallocinfo that did not parse.
    VmallocinfoMalformed(u32),
    /// Lines of meminfo that did not parse.
    MeminfoMalformed(u32),
    Sockstat(ProcError),
    /// A socket table could not be opened or read to the end.
    Table(Proto, ProcError),
    /// A socket table had `count` lines that did not parse; `first` is the first of them.
    TableMalformed(Proto, u32, ProcError),
    /// fd directories not readable: owners of sockets in those processes are unknown.
    /// `as_root`: denied even to root (another user namespace, an LSM, a process exiting).
    FdDenied {
        pids: u32,
        as_root: bool,
    },
    /// PIDs that exited (or lacked fd/) during the owner walk.
    FdVanished(u32),
    /// More owners than `owners::MAX_OWNERS`: the list is cut.
    OwnersTruncated,
    /// status files: denied / gone / unparsable.
    StatusDenied(u32),
    StatusVanished(u32),
    StatusMalformed(u32),
    /// The proc root itself could not be listed: no processes, no owners.
    ProcWalk(Errno),
    /// The socket source fell back or a network namespace could not be read.
    Sockets(Note),
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = |n: u32| if n == 1 { "" } else { "es" };
        match *self {
            Skip::Vmallocinfo { error, needed } => {
                match error {
                    ProcError::Io(libc::EACCES) => {
                        f.write_str("vmallocinfo: Permission denied (root only)")?
                    }
                    ProcError::Io(libc::ENOENT) => f.write_str("vmallocinfo: not present")?,
                    e => write!(f, "vmallocinfo: {e}")?,
                }
                f.write_str(if needed {
                    " — meminfo's VmallocUsed reads 0 on this kernel, so Ghost includes \
                     vmalloc'd pages: run as root for an exact figure"
                } else {
                    " — not needed: meminfo's VmallocUsed is used"
                })
            }
            Skip::VmallocinfoMalformed(n) => {
                write!(f, "vmallocinfo: {n} malformed line(s) ignored")
            }
            Skip::MeminfoMalformed(n) => write!(f, "meminfo: {n} malformed line(s) ignored"),
            Skip::Sockstat(e) => write!(f, "net/sockstat: {e}"),
            Skip::Table(p, ProcError::Io(libc::ENOENT)) => write!(
                f,
                "net/{}: not present (protocol not built into this kernel?)",
                p.name()
            ),
            Skip::Table(p, e) => write!(f, "net/{}: {e} — its sockets are not listed", p.name()),
            Skip::TableMalformed(p, n, e) => write!(
                f,
                "net/{}: {n} malformed line(s) skipped (first: {e})",
                p.name()
            ),
            Skip::FdDenied { pids, as_root } => write!(
                f,
                "fd of {pids} process{} not readable — {}",
                s(pids),
                if as_root {
                    "even as root (another user namespace, an LSM, or exiting)"
                } else {
                    "run as root to see owners"
                }
            ),
            Skip::FdVanished(n) => write!(
                f,
                "fd of {n} process{} gone during the walk (exited, or no fd directory)",
                s(n)
            ),
            Skip::OwnersTruncated => write!(
                f,
                "owners: more than {} found, list cut",
                owners::MAX_OWNERS
            ),
            Skip::StatusDenied(n) => write!(
                f,
                "status of {n} process{} not readable — their RSS is not counted",
                s(n)
            ),
            Skip::StatusVanished(n) => write!(
                f,
                "status of {n} process{} gone (exited during the walk) — not counted",
                s(n)
            ),
            Skip::StatusMalformed(n) => {
                write!(f, "status of {n} process{} malformed — not counted", s(n))
            }
            Skip::ProcWalk(e) => write!(
                f,
                "process list: {} — no process RSS, no socket owners",
                sys::strerror(e)
            ),
            Skip::Sockets(n) => n.fmt(f),
        }
    }
}

/// The process walk: every PID's status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcSummary {
    /// PIDs whose status was read (processes and kernel threads).
    pub count: u32,
    pub kernel_threads: u32,
    /// Sum of VmRSS over every process (shared pages count once per process).
    pub rss_total_kb: u64,
    /// The process with the largest VmRSS: (pid, comm, kB).
    pub largest: Option<(u32, Comm, u64)>,
    pub denied: u32,
    pub vanished: u32,
    pub malformed: u32,
}

/// Everything one report needs, collected once.
#[derive(Clone, Debug)]
pub struct Findings {
    pub mem: MemInfo,
    pub ghost: Ghost,
    /// /proc/vmallocinfo summary, when it could be read.
    pub vmalloc: Option<VmallocSummary>,
    pub page_size: u64,
    pub sockstat: Option<SockStat>,
    /// Per table, in `Proto::ALL` order.
    pub tables: [TableStats; Proto::COUNT],
    /// Bytes queued for reading per table, in `Proto::ALL` order.
    pub rx_queued: [u64; Proto::COUNT],
    /// The largest receive queues, largest first.
    pub top: heapless::Vec<SocketEntry, MAX_TOP>,
    /// Where the sockets came from, and the network namespaces they were read in.
    pub socket_source: SourceKind,
    pub netns: NetnsTable,
    pub owners: Owners,
    pub procs: ProcSummary,
    pub skipped: heapless::Vec<Skip, MAX_SKIPS>,
}

impl Findings {
    pub fn mem_total_kb(&self) -> u64 {
        self.ghost.mem_total_kb
    }

    /// MemAvailable, or MemFree + Buffers + Cached on kernels before 3.14 that lack it.
    pub fn available_kb(&self) -> u64 {
        let g = |f| self.mem.get(f).unwrap_or(0);
        self.mem.get(Field::MemAvailable).unwrap_or_else(|| {
            g(Field::MemFree)
                .saturating_add(g(Field::Buffers))
                .saturating_add(g(Field::Cached))
        })
    }

    /// free(1)'s "used": MemTotal - MemFree - Buffers - Cached - SReclaimable.
    pub fn used_kb(&self) -> u64 {
        let g = |f| self.mem.get(f).unwrap_or(0);
        g(Field::MemTotal)
            .saturating_sub(g(Field::MemFree))
            .saturating_sub(g(Field::Buffers))
            .saturating_sub(g(Field::Cached))
            .saturating_sub(g(Field::SReclaimable))
    }

    pub fn shmem_kb(&self) -> u64 {
        self.mem.get(Field::Shmem).unwrap_or(0)
    }

    /// Ghost as tenths of a percent of MemTotal (684 = 68.4%); 0 if MemTotal is 0.
    pub fn ghost_permille(&self) -> i64 {
        let total = self.mem_total_kb() as i128;
        if total == 0 {
            return 0;
        }
        (self.ghost.ghost_kb as i128 * 1000 / total) as i64
    }

    pub fn sockets_total(&self) -> u64 {
        self.tables.iter().map(|t| t.sockets as u64).sum()
    }

    pub fn rx_queued_total(&self) -> u64 {
        self.rx_queued
            .iter()
            .fold(0u64, |a, &b| a.saturating_add(b))
    }

    /// How many of the eight inet tables (tcp..udplite6) could be opened and read.
    pub fn inet_tables_read(&self) -> usize {
        Proto::ALL
            .iter()
            .zip(self.tables.iter())
            .filter(|(p, t)| {
                p.is_inet() && !matches!(t.first_error, Some(ProcError::Io(_)) if t.sockets == 0)
            })
            .count()
    }

    fn skip(&mut self, s: Skip) {
        // Capacity covers every kind of note; if it ever ran out, a lost note beats a panic.
        let _ = self.skipped.push(s);
    }
}

/// Inserts `e` into `top` (sorted by rx_queue then drops, descending) if it ranks among the
/// first `n`. Equal keys keep arrival order, so the result does not depend on the sort algorithm.
fn offer(top: &mut heapless::Vec<SocketEntry, MAX_TOP>, n: usize, e: &SocketEntry) {
    let n = n.min(MAX_TOP);
    // Idle sockets without an inode (TIME_WAIT, closing) have no owner and nothing queued.
    if n == 0 || (e.inode == 0 && e.rx_queue == 0) {
        return;
    }
    let key = |s: &SocketEntry| (s.rx_queue, s.drops);
    if top.len() >= n {
        match top.last() {
            Some(last) if key(e) > key(last) => {
                top.pop();
            }
            _ => return,
        }
    }
    let pos = top.partition_point(|s| key(s) >= key(e));
    let _ = top.insert(pos, *e);
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 { n as u64 } else { 4096 }
}

/// Reads everything from `root`. Only meminfo is required: Err (naming the file) if it cannot
/// be read or has no MemTotal; every other gap becomes a `Skip` note.
pub fn collect(root: &ProcRoot, top_n: usize) -> Result<Findings, String> {
    let mut buf = [0u8; 4096];
    let mem_path = root
        .path(b"meminfo")
        .map_err(|e| format!("{}/meminfo: {}", root.dir(), sys::strerror(e)))?;
    let mem = sys::Fd::open_ro(&mem_path)
        .map_err(ProcError::Io)
        .and_then(|fd| MemInfo::read(fd, &mut buf))
        .map_err(|e| match e {
            ProcError::Missing(what) => {
                format!("{mem_path}: no {what} line — is this a /proc tree?")
            }
            e => format!("{mem_path}: {e}"),
        })?;

    let page_size = page_size();
    let vmalloc = root
        .open(b"vmallocinfo")
        .map_err(ProcError::Io)
        .and_then(|fd| VmallocSummary::read(fd, &mut buf));
    let ghost = ghost::compute(&mem, vmalloc.as_ref().ok().map(|v| v.vmalloc_kb(page_size)))
        .map_err(|what| format!("{mem_path}: no {what} line — is this a /proc tree?"))?;

    let mut f = Findings {
        mem,
        ghost,
        vmalloc: vmalloc.as_ref().ok().copied(),
        page_size,
        sockstat: None,
        tables: [TableStats::default(); Proto::COUNT],
        rx_queued: [0; Proto::COUNT],
        top: heapless::Vec::new(),
        socket_source: SourceKind::Proc,
        netns: NetnsTable::default(),
        owners: Owners::default(),
        procs: ProcSummary::default(),
        skipped: heapless::Vec::new(),
    };
    if f.mem.malformed > 0 {
        f.skip(Skip::MeminfoMalformed(f.mem.malformed));
    }
    match vmalloc {
        Ok(v) if v.malformed > 0 => f.skip(Skip::VmallocinfoMalformed(v.malformed)),
        Ok(_) => {}
        Err(error) => {
            let needed = f.mem.get(Field::VmallocUsed).unwrap_or(0) == 0;
            f.skip(Skip::Vmallocinfo { error, needed })
        }
    }
    match root
        .open(b"net/sockstat")
        .map_err(ProcError::Io)
        .and_then(|fd| SockStat::read(fd, &mut buf))
    {
        Ok(s) => f.sockstat = Some(s),
        Err(e) => f.skip(Skip::Sockstat(e)),
    }

    // Every socket, in every network namespace, streamed (sock_diag, or the text tables
    // through one 4 KiB buffer); only the top N are kept.
    {
        let mut scanner = Scanner::new(root, Scanner::is_live_root(root));
        let Findings {
            tables,
            rx_queued,
            top,
            ..
        } = &mut f;
        scanner.scan(root, &mut buf, &|_| true, tables, &mut |e| {
            let q = &mut rx_queued[e.proto.index()];
            *q = q.saturating_add(e.rx_queue);
            offer(top, top_n, e);
        });
        f.socket_source = scanner.kind();
        f.netns = scanner.netns.clone();
        for n in scanner.take_notes() {
            f.skip(Skip::Sockets(n));
        }
    }
    for (i, proto) in Proto::ALL.into_iter().enumerate() {
        let t = f.tables[i];
        match t.first_error {
            // Text unix rows carry no queue: a tree without net/unix loses nothing worth a note.
            Some(ProcError::Io(libc::ENOENT)) if proto == Proto::Unix => {}
            Some(ProcError::Io(e)) => f.skip(Skip::Table(proto, ProcError::Io(e))),
            Some(first) if t.malformed > 0 => {
                f.skip(Skip::TableMalformed(proto, t.malformed, first))
            }
            _ => {}
        }
    }

    // Owners of the listed sockets: one walk of every fd, all holders of shared sockets.
    let mut inodes = [0u64; MAX_TOP];
    for (slot, s) in inodes.iter_mut().zip(f.top.iter()) {
        *slot = s.inode;
    }
    let mut owners = Owners::default();
    owners::find_owners(
        root,
        &inodes[..f.top.len()],
        WalkMode::AllOwners,
        &mut owners,
    );
    f.owners = owners;

    // Every process's RSS (status is world-readable, so this works unprivileged).
    let mut procs = ProcSummary::default();
    let status_buf = &mut buf[..1024];
    let walked = pid::for_each_pid(root, &mut |p| match pid::read_status(root, p, status_buf) {
        Ok(st) => {
            procs.count += 1;
            match st.vm_rss_kb {
                None => procs.kernel_threads += 1,
                Some(kb) => {
                    procs.rss_total_kb = procs.rss_total_kb.saturating_add(kb);
                    if procs.largest.is_none_or(|(_, _, max)| kb > max) {
                        procs.largest = Some((p, st.name, kb));
                    }
                }
            }
        }
        Err(ProcError::Io(libc::EACCES | libc::EPERM)) => procs.denied += 1,
        Err(ProcError::Io(libc::ENOENT | libc::ESRCH)) => procs.vanished += 1,
        Err(_) => procs.malformed += 1,
    });
    f.procs = procs;
    if let Err(e) = walked {
        f.skip(Skip::ProcWalk(e));
    } else {
        let o = &f.owners;
        let notes = [
            (
                o.pids_denied > 0,
                Skip::FdDenied {
                    pids: o.pids_denied,
                    // SAFETY: geteuid has no preconditions and cannot fail.
                    as_root: unsafe { libc::geteuid() } == 0,
                },
            ),
            (o.pids_vanished > 0, Skip::FdVanished(o.pids_vanished)),
            (o.truncated, Skip::OwnersTruncated),
            (procs.denied > 0, Skip::StatusDenied(procs.denied)),
            (procs.vanished > 0, Skip::StatusVanished(procs.vanished)),
            (procs.malformed > 0, Skip::StatusMalformed(procs.malformed)),
        ];
        for (on, note) in notes {
            if on {
                f.skip(note);
            }
        }
    }
    Ok(f)
}

// ------------------------------------------------------------------------------------------
// Verdict

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

/// A size in kB, printed the way people say it: "2.47 GiB", "73.2 MiB", "512 kB".
pub struct Kb(pub u64);

impl fmt::Display for Kb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kb = self.0 as f64;
        if self.0 >= 1024 * 1024 {
            write!(f, "{:.2} GiB", kb / (1024.0 * 1024.0))
        } else if self.0 >= 1024 {
            write!(f, "{:.1} MiB", kb / 1024.0)
        } else {
            write!(f, "{} kB", self.0)
        }
    }
}

/// A size in bytes, printed like `Kb` ("73.2 MiB", "1.1 kB", "600 bytes").
pub struct Bytes(pub u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 >= 1024 {
            if self.0 < 1024 * 1024 {
                return write!(f, "{:.1} kB", self.0 as f64 / 1024.0);
            }
            return Kb(self.0 / 1024).fmt(f);
        }
        write!(f, "{} bytes", self.0)
    }
}

/// `kb` as a share of `total`: "68%", or "0.7%" below 10% where whole percents would say 0.
pub struct Pct(pub u64, pub u64);

impl fmt::Display for Pct {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.1 == 0 {
            return f.write_str("?");
        }
        let tenths = (self.0 as u128 * 1000 / self.1 as u128) as u64;
        if tenths < 100 {
            write!(f, "{}.{}", tenths / 10, tenths % 10)
        } else {
            write!(f, "{}", tenths / 10)
        }
    }
}

/// Process names for people: control characters as \xNN (and `\` as `\\`, so the escape is
/// unambiguous), invalid UTF-8 as U+FFFD: a comm can never move the cursor or recolour the terminal.
pub struct Printable<'a>(pub &'a [u8]);

impl fmt::Display for Printable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chunk in self.0.utf8_chunks() {
            for c in chunk.valid().chars() {
                if c == '\\' {
                    f.write_str("\\\\")?;
                } else if c.is_control() {
                    write!(f, "\\x{:02x}", c as u32)?;
                } else {
                    fmt::Write::write_char(f, c)?;
                }
            }
            if !chunk.invalid().is_empty() {
                f.write_str("\u{FFFD}")?;
            }
        }
        Ok(())
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
        let n = self.0.owners.of(self.1).count();
        let same = self.0.owners.of(self.1).all(|o| o.comm == first.comm);
        write!(f, "{}", Printable(first.comm.as_bytes()))?;
        if n == 1 {
            write!(f, " (pid {})", first.pid)
        } else if same && n <= 4 {
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

// ------------------------------------------------------------------------------------------
// Writers

/// `"{}"` of a Display value into a stack buffer (for column widths), cut at 64 bytes.
fn small_text(v: &dyn fmt::Display) -> heapless::String<64> {
    let mut s = heapless::String::new();
    let _ = fmt::Write::write_fmt(&mut s, format_args!("{v}"));
    s
}

const MIB: f64 = 1024.0;

/// The human report.
pub fn write_text(r: &Findings, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "VERDICT: {}", Verdict(r))?;
    writeln!(out)?;

    let g = &r.ghost;
    writeln!(
        out,
        "Accounting equation (/proc/meminfo)               kB         MiB"
    )?;
    let row = |out: &mut dyn Write, label: &dyn fmt::Display, kb: i64, note: &str| {
        writeln!(
            out,
            "  {:<36} {:>12} {:>11.1}{}",
            small_text(label).as_str(),
            kb,
            kb as f64 / MIB,
            note
        )
    };
    row(out, &"MemTotal", g.mem_total_kb as i64, "")?;
    for t in &g.terms {
        let note = match t.name {
            "VmallocUsed" if g.vmalloc_source == ghost::VmallocSource::Vmallocinfo => {
                "   (from vmallocinfo: meminfo reads 0 on this kernel)"
            }
            "Hugetlb" if r.mem.get(Field::Hugetlb).is_none() => {
                "   (HugePages_Total x Hugepagesize)"
            }
            _ => "",
        };
        row(out, &format_args!("- {}", t.name), t.kb as i64, note)?;
    }
    row(out, &"= accounted", g.accounted_kb as i64, "")?;
    let pm = r.ghost_permille();
    let ghost_note = small_text(&format_args!(
        "   {}{}.{}% of RAM",
        if pm < 0 { "-" } else { "" },
        pm.unsigned_abs() / 10,
        pm.unsigned_abs() % 10
    ));
    row(
        out,
        &"Ghost = MemTotal - accounted",
        g.ghost_kb,
        ghost_note.as_str(),
    )?;
    writeln!(out)?;

    writeln!(
        out,
        "Memory                                               kB         MiB"
    )?;
    let mrow = |out: &mut dyn Write, label: &dyn fmt::Display, kb: u64, note: &str| {
        writeln!(
            out,
            "  {:<44} {:>12} {:>11.1}{}",
            small_text(label).as_str(),
            kb,
            kb as f64 / MIB,
            note
        )
    };
    mrow(
        out,
        &"used (Total-Free-Buffers-Cached-SReclaimable)",
        r.used_kb(),
        "",
    )?;
    let p = &r.procs;
    mrow(
        out,
        &format_args!(
            "process RSS total ({} processes)",
            p.count.saturating_sub(p.kernel_threads)
        ),
        p.rss_total_kb,
        "   (shared pages count once per process)",
    )?;
    if let Some((pid, comm, kb)) = p.largest {
        mrow(
            out,
            &format_args!("  largest: {} (pid {pid})", Printable(comm.as_bytes())),
            kb,
            "",
        )?;
    }
    mrow(out, &"Shmem (tmpfs, shared memory)", r.shmem_kb(), "")?;
    mrow(out, &"MemAvailable", r.available_kb(), "")?;
    if let Some(s) = &r.sockstat {
        if let Some(pages) = s.tcp_mem_pages {
            mrow(
                out,
                &"TCP buffers (sockstat mem)",
                pages.saturating_mul(r.page_size) / 1024,
                "",
            )?;
        }
        if let Some(pages) = s.udp_mem_pages {
            mrow(
                out,
                &"UDP buffers (sockstat mem)",
                pages.saturating_mul(r.page_size) / 1024,
                "",
            )?;
        }
    }
    writeln!(out)?;

    write_socket_table(r, out)?;
    writeln!(out)?;

    if r.skipped.is_empty() {
        writeln!(out, "Skipped: nothing — every file was readable.")?;
    } else {
        writeln!(out, "Skipped")?;
        for s in &r.skipped {
            writeln!(out, "  - {s}")?;
        }
    }
    Ok(())
}

fn write_socket_table(r: &Findings, out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "Sockets by receive queue (top {} of {}; {} queued in all; via {}, {} network namespace{})",
        r.top.len(),
        r.sockets_total(),
        Bytes(r.rx_queued_total()),
        r.socket_source.name(),
        r.netns.list.len(),
        if r.netns.list.len() == 1 { "" } else { "s" }
    )?;
    // Idle sockets say nothing to the reader: list the ones with data queued or dropped.
    let busy = || r.top.iter().filter(|s| s.rx_queue > 0 || s.drops > 0);
    if busy().next().is_none() {
        writeln!(out, "  every receive queue is empty.")?;
        return Ok(());
    }
    let width = busy()
        .map(|s| small_text(&LocalIn(r, s)).len())
        .max()
        .unwrap_or(5)
        .max(5);
    writeln!(
        out,
        "  {:<8} {:<width$} {:>12} {:>10} {:>8} {:>10} {:>6}  OWNERS",
        "PROTO", "LOCAL", "RX_QUEUE", "TX_QUEUE", "DROPS", "INODE", "UID"
    )?;
    for s in busy() {
        write!(
            out,
            "  {:<8} {:<width$} {:>12} {:>10} {:>8} {:>10} {:>6}  ",
            s.proto.name(),
            small_text(&LocalIn(r, s)).as_str(),
            s.rx_queue,
            s.tx_queue,
            s.drops,
            s.inode,
            s.uid
        )?;
        let mut n = 0;
        for o in r.owners.of(s.inode) {
            if n == 4 {
                write!(out, " +{} more", r.owners.of(s.inode).count() - 4)?;
                break;
            }
            if n > 0 {
                out.write_all(b",")?;
            }
            write!(out, "{}/{}", o.pid, Printable(o.comm.as_bytes()))?;
            n += 1;
        }
        if n == 0 {
            out.write_all(if r.owners.pids_denied > 0 { b"?" } else { b"-" })?;
        }
        writeln!(out)?;
    }
    let idle = r.top.len() - busy().count();
    if idle > 0 {
        writeln!(
            out,
            "  ({idle} more of the top {} have empty queues; see --json)",
            r.top.len()
        )?;
    }
    Ok(())
}

/// The `--json` report: one object, the contract in PRODUCT.md plus extras.
pub fn write_json(r: &Findings, out: &mut dyn Write) -> io::Result<()> {
    let mut w = JsonWriter::new(out);
    w.begin_object()?;
    w.key("verdict")?;
    w.display(&Verdict(r))?;
    w.field_str("verdict_kind", verdict_kind(r).name().as_bytes())?;
    w.field_u64("mem_total_kb", r.mem_total_kb())?;
    w.field_u64("available_kb", r.available_kb())?;
    w.field_u64("used_kb", r.used_kb())?;
    w.field_u64("shmem_kb", r.shmem_kb())?;
    w.field_u64("free_kb", r.mem.get(Field::MemFree).unwrap_or(0))?;

    let g = &r.ghost;
    w.key("ghost")?;
    w.begin_object()?;
    w.key("ghost_kb")?;
    w.i64(g.ghost_kb)?;
    w.field_u64("accounted_kb", g.accounted_kb)?;
    w.field_u64("mem_total_kb", g.mem_total_kb)?;
    w.key("ghost_percent")?;
    w.tenths(r.ghost_permille())?;
    w.key("terms")?;
    w.begin_object()?;
    for t in &g.terms {
        w.field_u64(t.name, t.kb)?;
    }
    w.end_object()?;
    w.field_str("vmalloc_source", g.vmalloc_source.name().as_bytes())?;
    w.key("vmallocinfo_kb")?;
    match r.vmalloc {
        Some(v) => w.u64(v.vmalloc_kb(r.page_size))?,
        None => w.null()?,
    }
    w.end_object()?;

    w.key("sockets")?;
    w.begin_array()?;
    for s in &r.top {
        w.begin_object()?;
        w.field_str("proto", s.proto.name().as_bytes())?;
        w.key("local")?;
        w.display(&s.local)?;
        w.key("remote")?;
        w.display(&s.remote)?;
        w.field_u64("rx_queue", s.rx_queue)?;
        w.field_u64("tx_queue", s.tx_queue)?;
        w.field_u64("drops", s.drops)?;
        w.field_u64("inode", s.inode)?;
        w.field_u64("uid", s.uid as u64)?;
        w.field_u64("netns", s.netns)?;
        if let Some(name) = r.netns.name_of(s.netns) {
            w.field_str("netns_name", name.as_bytes())?;
        }
        w.key("owners")?;
        w.begin_array()?;
        for o in r.owners.of(s.inode) {
            w.begin_object()?;
            w.field_u64("pid", o.pid as u64)?;
            w.field_str("comm", o.comm.as_bytes())?;
            w.field_u64("fd", o.fd as u64)?;
            w.end_object()?;
        }
        w.end_array()?;
        w.end_object()?;
    }
    w.end_array()?;

    w.key("sockets_total")?;
    w.begin_object()?;
    for (i, p) in Proto::ALL.into_iter().enumerate() {
        w.field_u64(p.name(), r.tables[i].sockets as u64)?;
    }
    w.end_object()?;
    w.key("malformed_lines")?;
    w.begin_object()?;
    for (i, p) in Proto::ALL.into_iter().enumerate() {
        w.field_u64(p.name(), r.tables[i].malformed as u64)?;
    }
    w.end_object()?;
    w.field_u64("rx_queue_total_bytes", r.rx_queued_total())?;
    w.field_str("socket_source", r.socket_source.name().as_bytes())?;
    w.key("netns")?;
    w.begin_array()?;
    for n in &r.netns.list {
        w.begin_object()?;
        w.field_u64("inode", n.inode)?;
        if !n.name.is_empty() {
            w.field_str("name", n.name.as_bytes())?;
        }
        w.key("home")?;
        w.bool(n.inode == r.netns.home)?;
        w.end_object()?;
    }
    w.end_array()?;

    let p = &r.procs;
    w.key("processes")?;
    w.begin_object()?;
    w.field_u64("rss_total_kb", p.rss_total_kb)?;
    w.field_u64("count", p.count as u64)?;
    w.field_u64("kernel_threads", p.kernel_threads as u64)?;
    w.key("largest")?;
    match p.largest {
        Some((pid, comm, kb)) => {
            w.begin_object()?;
            w.field_u64("pid", pid as u64)?;
            w.field_str("comm", comm.as_bytes())?;
            w.field_u64("rss_kb", kb)?;
            w.end_object()?;
        }
        None => w.null()?,
    }
    w.end_object()?;

    let o = &r.owners;
    w.key("owner_walk")?;
    w.begin_object()?;
    w.field_u64("pids_scanned", o.pids_scanned as u64)?;
    w.field_u64("pids_denied", o.pids_denied as u64)?;
    w.field_u64("pids_vanished", o.pids_vanished as u64)?;
    w.key("truncated")?;
    w.bool(o.truncated)?;
    w.end_object()?;

    w.key("skipped")?;
    w.begin_array()?;
    for s in &r.skipped {
        w.display(s)?;
    }
    w.end_array()?;
    w.end_object()?;
    drop(w);
    out.write_all(b"\n")
}

/// Collects everything from `root` and writes the report to `out`.
/// Unreadable parts are skipped and named in the report; only a missing/garbled meminfo is an Err
/// (its text names the file). A failed write to `out` is an Err too.
pub fn run(
    root: &ProcRoot,
    opts: Options,
    out: &mut dyn io::Write,
) -> Result<(), std::string::String> {
    let f = collect(root, opts.top.clamp(1, MAX_TOP))?;
    let written = if opts.json {
        write_json(&f, out)
    } else {
        write_text(&f, out)
    };
    written.map_err(|e| format!("writing the report: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::owners::Owner;
    use crate::proc::net::Endpoint;

    fn sock(inode: u64, rx: u64) -> SocketEntry {
        SocketEntry {
            proto: Proto::Udp,
            local: Endpoint::Inet {
                ip: [127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                v6: false,
                port: 514,
            },
            remote: Endpoint::None,
            state: 7,
            tx_queue: 0,
            rx_queue: rx,
            drops: 0,
            uid: 0,
            inode,
            netns: 0,
        }
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
        Findings {
            mem,
            ghost,
            vmalloc: None,
            page_size: 4096,
            sockstat: None,
            tables: [TableStats::default(); Proto::COUNT],
            rx_queued: [0; Proto::COUNT],
            top: heapless::Vec::new(),
            socket_source: SourceKind::Proc,
            netns: NetnsTable::default(),
            owners: Owners::default(),
            procs: ProcSummary::default(),
            skipped: heapless::Vec::new(),
        }
    }

    fn own(f: &mut Findings, inode: u64, pid: u32, comm: &[u8]) {
        let o = Owner {
            inode,
            pid,
            fd: 3,
            comm: Comm::from_bytes(comm),
        };
        f.owners.owners.push(o).unwrap();
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
        let mut out = Vec::new();
        write_json(&f, &mut out).unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(
            s.contains(r#""owners":[{"pid":1,"comm":"x\"y","fd":3}]"#),
            "{s}"
        );
        assert!(
            s.contains(r#""skipped":["fd of 3 processes not readable"#),
            "{s}"
        );
        let mut out = Vec::new();
        write_text(&f, &mut out).unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(s.contains("1/x\"y"), "{s}");
        assert!(
            s.contains("  - fd of 3 processes not readable — run as root"),
            "{s}"
        );
    }
}
