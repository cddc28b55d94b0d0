//! Collection: the report's only I/O. Reads meminfo, vmallocinfo, sockstat, every socket table
//! (streamed, only the top N kept), the owners of the listed sockets and every process's RSS
//! into one `Findings`; every gap but meminfo becomes a `Skip` note.

use super::{MAX_LISTED, MAX_SKIPS, MAX_TOP, Watch};
use crate::observe::ghost::{self, Ghost};
use crate::observe::owners::{self, Owners, WalkMode};
use crate::observe::proc::meminfo::{Field, MemInfo};
use crate::observe::proc::net::{Proto, SocketEntry, TableStats, insert_top};
use crate::observe::proc::netns::NetnsTable;
use crate::observe::proc::pid::{self, Comm};
use crate::observe::proc::sockstat::SockStat;
use crate::observe::proc::vmallocinfo::VmallocSummary;
use crate::observe::proc::zoneinfo::PcpSummary;
use crate::observe::proc::{ProcError, ProcRoot};
use crate::observe::sockets::{Note, Scanner, SourceKind};
use crate::sys::caps::{self, Cap};
use crate::sys::{self, Errno};
use core::fmt;

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
    /// Lines of sockstat that did not parse.
    SockstatMalformed(u32),
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
    /// status files: denied / gone / unparsable.
    StatusDenied(u32),
    StatusVanished(u32),
    StatusMalformed(u32),
    /// The proc root itself could not be listed: no processes, no owners.
    ProcWalk(Errno),
    /// The socket source fell back or a network namespace could not be read.
    Sockets(Note),
    /// Unix sockets were read from /proc/net/unix, which has no queue columns.
    UnixText,
    /// Bytes queued by unix datagram senders without a peer (sendto() to a bound name):
    /// their receivers' rows show only the first datagram.
    UnixUnattributed(u64),
    /// A syscall the agent uses that this kernel lacks (`sys::caps`; live /proc only).
    Kernel(Cap),
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
            Skip::SockstatMalformed(n) => {
                write!(f, "net/sockstat: {n} malformed line(s) ignored")
            }
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
            Skip::UnixText => f.write_str(
                "net/unix: read as /proc text, which shows no queue lengths — unix receive \
                 queues are not seen (rx_queue 0, rx_queue_source \"text\")",
            ),
            Skip::Kernel(c) => write!(
                f,
                "kernel: no {} (Linux >= {}) — the agent's {}",
                c.name(),
                c.since(),
                c.without()
            ),
            Skip::UnixUnattributed(b) => write!(
                f,
                "unix: {b} bytes queued by datagram senders without a peer — sock_diag does \
                 not say which socket holds them; those receivers show their first datagram \
                 only (rx_queue_source \"sock_diag_first_datagram\")"
            ),
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
    pub tables: [TableStats; Proto::ALL.len()],
    /// Bytes queued for reading per table, in `Proto::ALL` order.
    pub rx_queued: [u64; Proto::ALL.len()],
    /// The largest receive queues, largest first.
    pub top: heapless::Vec<SocketEntry, MAX_TOP>,
    /// Where the sockets came from, and the network namespaces they were read in.
    pub socket_source: SourceKind,
    pub netns: NetnsTable,
    /// Owners of the listed sockets and of those `--watch` ranks.
    pub owners: Owners<{ MAX_TOP + MAX_LISTED }>,
    pub procs: ProcSummary,
    pub skipped: heapless::Vec<Skip, MAX_SKIPS>,
    /// What `--watch` saw over its window (None without it).
    pub watch: Option<Watch>,
}

impl Findings {
    /// Findings with the memory side filled in and nothing else read yet: no sockstat, empty
    /// tables, no sockets, owners, processes or notes.
    pub fn new(
        mem: MemInfo,
        ghost: Ghost,
        vmalloc: Option<VmallocSummary>,
        page_size: u64,
    ) -> Self {
        Findings {
            mem,
            ghost,
            vmalloc,
            page_size,
            sockstat: None,
            tables: [TableStats::default(); Proto::ALL.len()],
            rx_queued: [0; Proto::ALL.len()],
            top: heapless::Vec::new(),
            socket_source: SourceKind::Proc,
            netns: NetnsTable::default(),
            owners: Owners::default(),
            procs: ProcSummary::default(),
            skipped: heapless::Vec::new(),
            watch: None,
        }
    }

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
        let total = self.mem_total_kb();
        if total == 0 {
            return 0;
        }
        // As (ghost_kb as i128 * 1000 / total as i128) as i64: truncated toward zero.
        let g = self.ghost.ghost_kb;
        let permille = crate::sys::per_mille(g.unsigned_abs(), total) as i64;
        if g < 0 {
            permille.wrapping_neg()
        } else {
            permille
        }
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

    pub(super) fn skip(&mut self, s: Skip) {
        // Capacity covers every kind of note; if it ever ran out, a lost note beats a panic.
        let _ = self.skipped.push(s);
    }
}

/// Inserts `e` into `top` (sorted by rx_queue then drops, descending) if it ranks among the
/// first `n` (see `proc::net::insert_top`).
pub(super) fn offer(top: &mut heapless::Vec<SocketEntry, MAX_TOP>, n: usize, e: &SocketEntry) {
    // Idle sockets without an inode (TIME_WAIT, closing) have no owner and nothing queued.
    if e.inode == 0 && e.rx_queue == 0 {
        return;
    }
    let key = |s: &SocketEntry| (s.rx_queue, s.drops);
    insert_top(top, n, key(e), key, || *e);
}

/// meminfo, vmallocinfo and zoneinfo into Ghost: (meminfo, the vmallocinfo read, Ghost). Err
/// (naming the file) when meminfo cannot be read or lacks what the equation needs.
pub(super) fn measure(
    root: &ProcRoot,
    buf: &mut [u8; 4096],
) -> Result<(MemInfo, Result<VmallocSummary, ProcError>, Ghost), String> {
    let mem_path = root
        .path(b"meminfo")
        .map_err(|e| format!("{}/meminfo: {}", root.dir(), sys::strerror(e)))?;
    let mem = crate::sys::safefile::open_read(&mem_path)
        .map_err(ProcError::Io)
        .and_then(|fd| MemInfo::read(fd, buf))
        .map_err(|e| match e {
            ProcError::Missing(what) => {
                format!("{mem_path}: no {what} line — is this a /proc tree?")
            }
            e => format!("{mem_path}: {e}"),
        })?;

    let page_size = sys::page_size();
    let vmalloc = root
        .open(b"vmallocinfo")
        .map_err(ProcError::Io)
        .and_then(|fd| VmallocSummary::read(fd, buf));
    let mut ghost = ghost::compute(&mem, vmalloc.as_ref().ok().map(|v| v.vmalloc_kb(page_size)))
        .map_err(|e| match e {
            ghost::GhostError::Missing(_) => {
                format!("{mem_path}: {e} — is this a /proc tree?")
            }
            ghost::GhostError::Malformed(_) => format!("{mem_path}: {e}"),
        })?;
    // Free pages on the per-CPU lists are free memory MemFree leaves out (optional file: a
    // tree without it, or a kernel that hides it, keeps the plain equation).
    if let Ok(pcp) = root
        .open(b"zoneinfo")
        .map_err(ProcError::Io)
        .and_then(|fd| PcpSummary::read(fd, buf))
    {
        if pcp.lists > 0 {
            ghost.add_pcp_free(pcp.free_kb(page_size));
        }
    }
    Ok((mem, vmalloc, ghost))
}

/// Reads everything from `root`. Only meminfo is required: Err (naming the file) if it cannot
/// be read or has no MemTotal; every other gap becomes a `Skip` note. The owners of the
/// sockets in `also_owners` (at most `MAX_LISTED`: those `--watch` ranks) are looked for too.
pub fn collect(root: &ProcRoot, top_n: usize, also_owners: &[u64]) -> Result<Findings, String> {
    let mut buf = [0u8; 4096];
    let (mem, vmalloc, ghost) = measure(root, &mut buf)?;
    let page_size = sys::page_size();
    let mut f = Findings::new(mem, ghost, vmalloc.as_ref().ok().copied(), page_size);
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
        Ok(s) => {
            if s.malformed > 0 {
                f.skip(Skip::SockstatMalformed(s.malformed));
            }
            f.sockstat = Some(s);
        }
        Err(e) => f.skip(Skip::Sockstat(e)),
    }

    // Every socket, in every network namespace, streamed (sock_diag, or the text tables
    // through one 4 KiB buffer); only the top N are kept.
    {
        let live = Scanner::is_live_root(root);
        let mut scanner = Scanner::new(root, live);
        // What this kernel lacks of what the agent would use (not a tree's: never asked there).
        if live {
            for c in caps::get().missing() {
                f.skip(Skip::Kernel(c));
            }
        }
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
        if scanner.unix_text && f.tables[Proto::Unix.index()].sockets > 0 {
            f.skip(Skip::UnixText);
        }
        if scanner.unix_unattributed > 0 {
            f.skip(Skip::UnixUnattributed(scanner.unix_unattributed));
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
    let mut inodes = [0u64; MAX_TOP + MAX_LISTED];
    let extra = also_owners.iter().take(MAX_LISTED);
    let listed = f.top.iter().map(|s| s.inode).chain(extra.copied());
    let mut n = 0;
    for (slot, inode) in inodes.iter_mut().zip(listed) {
        *slot = inode;
        n += 1;
    }
    let mut owners = Owners::default();
    owners::find_owners(root, &inodes[..n], WalkMode::AllOwners, &mut owners);
    f.owners = owners;

    // Every process's RSS (status and statm are world-readable, so this works unprivileged).
    // The live /proc is read through statm (the same count, far cheaper for the kernel to
    // print) and the largest process's name from its comm; a --proc-root tree through status.
    let mut procs = ProcSummary::default();
    let status_buf = &mut buf[..1024];
    let statm = root.is_live();
    let page_size = sys::page_size();
    let walked = pid::for_each_pid(root, &mut |p| {
        let rss = if statm {
            pid::read_statm_rss_kb(root, p, page_size).map(|kb| (kb, Comm::default()))
        } else {
            pid::read_status(root, p, status_buf).map(|st| (st.vm_rss_kb, st.name))
        };
        match rss {
            Ok((rss, name)) => {
                procs.count += 1;
                match rss {
                    None => procs.kernel_threads += 1,
                    Some(kb) => {
                        procs.rss_total_kb = procs.rss_total_kb.saturating_add(kb);
                        if procs.largest.is_none_or(|(_, _, max)| kb > max) {
                            procs.largest = Some((p, name, kb));
                        }
                    }
                }
            }
            Err(ProcError::Io(libc::EACCES | libc::EPERM)) => procs.denied += 1,
            Err(ProcError::Io(libc::ENOENT | libc::ESRCH)) => procs.vanished += 1,
            Err(_) => procs.malformed += 1,
        }
    });
    if statm {
        if let Some((p, name, _)) = procs.largest.as_mut() {
            // Gone since: its name is unknown, the figures stand.
            *name = pid::read_comm(root, *p).unwrap_or_else(|_| Comm::from_bytes(b"?"));
        }
    }
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
