//! The observe stage: everything a poll reads — meminfo (kept-open fd), Ghost, the socket tables
//! (sockstat-gated, with suspect tracking between reads), the suspects' owners (owner cache) —
//! into a `Snapshot` for policy. Must not decide or act; read failures go to the recorder.

use super::owner_track;
use super::record::{Recorder, Seen};
use crate::act::executors::{self, Target};
use crate::config::{self, Config};
use crate::decide::correlate::{self, Blame, History};
use crate::decide::policy::{self, Snapshot, Suspect, SuspectBlame, SuspectOwner};
use crate::observe::ghost::{self, Ghost};
use crate::observe::identity::{self, FileId};
use crate::observe::proc::meminfo::{Field, MemInfo};
use crate::observe::proc::net::{Proto, SocketEntry, TableStats, insert_top};
use crate::observe::proc::sockstat::SockStat;
use crate::observe::proc::vmallocinfo::VmallocSummary;
use crate::observe::proc::zoneinfo::PcpSummary;
use crate::observe::proc::{ProcRoot, pid};
use crate::observe::sockets::{NETNS_PER_POLL, Scanner};
use crate::output::audit::AuditLine;
use crate::output::sink::Severity;
use crate::sys::{self, Fd};
use core::fmt::Write as _;

/// What suspect tracking keeps of a sockstat family's last table read
/// (`policy::suspects_still_explain`).
#[derive(Clone, Copy, Debug, Default)]
struct Baseline {
    /// Bytes of the family's queued memory (sockstat `mem`) no socket in the tables explained.
    unexplained: Option<i64>,
    /// Bytes charged by the sockets tracking does not re-check, as they were at the read.
    untracked: u64,
    /// The charges came from sock_diag (exact), not the text tables (estimates).
    exact: bool,
}

/// The sockstat family a protocol's queued memory is counted in: 0 tcp, 1 udp (suspect
/// tracking); None for the tables read every poll (raw, netlink, packet) or with the periodic
/// scan (unix).
fn family(p: Proto) -> Option<usize> {
    match p {
        Proto::Tcp | Proto::Tcp6 => Some(0),
        Proto::Udp | Proto::Udp6 | Proto::UdpLite | Proto::UdpLite6 => Some(1),
        _ => None,
    }
}

/// The per-CPU slack of sockstat's `mem` on this kernel (`sockstat::pcpu_lag_bytes`), read once
/// from ROOT/sys/net/core/mem_pcpu_rsv, ROOT/sys/kernel/osrelease and the cpu lines of ROOT/stat.
fn sockstat_lag(root: &ProcRoot, page_size: u64) -> u64 {
    let mut buf = [0u8; 512];
    let read = |rel: &[u8], buf: &mut [u8; 512]| -> Option<usize> {
        root.open(rel).ok()?.read_full(buf).ok()
    };
    let cpus = root
        .open(b"stat")
        .map(|fd| crate::observe::proc::sockstat::count_cpus(fd, &mut buf[..]))
        .unwrap_or(0);
    let rsv = read(b"sys/net/core/mem_pcpu_rsv", &mut buf)
        .and_then(|n| crate::observe::proc::parse_dec(buf[..n].trim_ascii()));
    let n = read(b"sys/kernel/osrelease", &mut buf).unwrap_or(0);
    crate::observe::proc::sockstat::pcpu_lag_bytes(rsv, &buf[..n], cpus, page_size)
}

/// Polls in the correlation window (`decide::correlate`): 16 polls, 15 s at the default
/// interval of 1 s.
pub const HISTORY_SAMPLES: usize = 16;
/// Sockets the correlation history follows: the suspects, with room for some that drop out of
/// the top list for a poll or two.
pub const HISTORY_SOCKETS: usize = 2 * policy::MAX_SUSPECTS;

/// How often (in polls) /proc/vmallocinfo is re-read where meminfo's VmallocUsed is 0.
const VMALLOCINFO_EVERY: u64 = 10;

/// One poll's memory figures (meminfo read and Ghost computed).
#[derive(Clone, Debug)]
pub struct Measured {
    pub ghost: Ghost,
    pub available_kb: Option<u64>,
}

/// The observe stage's state: read buffers, the suspects and their owners, tracking baselines.
pub struct Observer {
    meminfo_fd: Option<Fd>,
    buf: [u8; 4096],
    suspects: heapless::Vec<Suspect, { policy::MAX_SUSPECTS }>,
    owners: owner_track::OwnerTrack,
    /// How far sockstat's `mem` may be from the truth, bytes (`sockstat::pcpu_lag_bytes`).
    sockstat_lag: u64,
    /// The poll (cycle) of the next periodic full scan (`policy::full_scan_spacing`).
    next_full_scan: u64,
    /// Suspect tracking, per sockstat family (tcp, udp), from its last table read.
    baseline: [Baseline; 2],
    /// Most time one poll (or one slice between polls) spends in the owner walk; `run --once`
    /// lifts it (one poll must finish the walk).
    pub owner_walk_budget_us: u64,
    /// Identity of each rule's absolute `exe`, re-stat()ed with every owner resolution.
    rule_exe: [Option<FileId>; config::MAX_RULES],
    scanner: Scanner,
    vmalloc_kb: Option<u64>,
    page_size: u64,
    /// Polls begun (`begin_poll`).
    cycles: u64,
    seen: Seen,
    /// The per-poll namespace cap bit and was audited: once, until it stops biting.
    netns_cap_audited: bool,
    /// Ghost, MemAvailable and the suspects' queues over the last polls, and their ranking.
    history: History<HISTORY_SAMPLES, HISTORY_SOCKETS>,
    blame: heapless::Vec<Blame, HISTORY_SOCKETS>,
    /// Which tables this poll's `read_sockets` read: tcp, udp families, and the unix dump.
    read_now: [bool; 3],
}

impl Observer {
    /// Opens meminfo (Err names the file: nothing to watch without it) and picks the socket
    /// source for `root`. Inlined into `Agent::new`, so the ~38 KB are built where the agent
    /// keeps them, not on a frame of their own and moved (mlockall keeps every stack page).
    #[inline(always)]
    pub fn new(root: &ProcRoot) -> Result<Observer, String> {
        let meminfo_fd = root
            .open(b"meminfo")
            .map_err(|e| format!("{}/meminfo: {}", root.dir(), sys::strerror(e)))?;
        Ok(Observer {
            meminfo_fd: Some(meminfo_fd),
            buf: [0; 4096],
            suspects: heapless::Vec::new(),
            owners: owner_track::OwnerTrack::default(),
            sockstat_lag: sockstat_lag(root, sys::page_size()),
            next_full_scan: 1,
            baseline: [Baseline::default(); 2],
            owner_walk_budget_us: owner_track::WALK_BUDGET_US,
            rule_exe: [None; config::MAX_RULES],
            scanner: {
                let mut s = Scanner::new(root, Scanner::is_live_root(root));
                s.bounded(NETNS_PER_POLL);
                s
            },
            vmalloc_kb: None,
            page_size: sys::page_size(),
            cycles: 0,
            seen: Seen::default(),
            netns_cap_audited: false,
            history: History::default(),
            blame: heapless::Vec::new(),
            read_now: [false; 3],
        })
    }

    /// Starts a poll; returns its number (1 for the first).
    pub fn begin_poll(&mut self) -> u64 {
        self.cycles += 1;
        self.cycles
    }

    /// Polls begun so far.
    pub fn cycles(&self) -> u64 {
        self.cycles
    }

    /// The start line's `missing=`: what this kernel lacks of what the agent uses (the
    /// syscalls of `sys::caps`, sock_diag and its modules), probed once; nothing when it lacks
    /// nothing. Said here once: the scanner's notes of the same are dropped.
    pub fn missing_pairs(&mut self, l: &mut AuditLine) {
        let mut names = heapless::String::<160>::new();
        let caps = crate::sys::caps::get().missing().map(|c| c.name());
        for n in caps.chain(self.scanner.missing()) {
            let sep = if names.is_empty() { "" } else { " " };
            let _ = write!(crate::sys::Cut(names.as_mut_view()), "{sep}{n}");
        }
        self.scanner.forget_kernel_notes();
        if !names.is_empty() {
            l.kv("missing", names.as_bytes());
        }
    }

    /// What was seen last (for status and metrics).
    pub fn seen(&self) -> &Seen {
        &self.seen
    }

    /// The owner walk's figures: (longest slice, last complete walk), µs.
    pub fn walk_figures(&self) -> (u64, u64) {
        (self.owners.max_slice_us, self.owners.last_walk_us)
    }

    /// meminfo and Ghost; None (recorded as a read error) when meminfo is unreadable or Ghost
    /// cannot be computed from it.
    pub fn measure(&mut self, root: &ProcRoot, rec: &mut Recorder) -> Option<Measured> {
        let mi = self.read_meminfo(root, rec)?;
        let vm = self.vmallocinfo_kb(root, &mi);
        let g = match ghost::compute(&mi, vm) {
            Ok(mut g) => {
                // Free pages parked on the per-CPU lists are not Ghost (proc::zoneinfo).
                if let Some(kb) = self.pcp_free_kb(root) {
                    g.add_pcp_free(kb);
                }
                g
            }
            Err(what) => {
                // Unknown, not a guess: no Ghost rule runs on it and the files say null.
                rec.read_error("meminfo", what);
                self.seen.ghost_unknown = true;
                return None;
            }
        };
        let available_kb = mi.get(Field::MemAvailable);
        self.seen.ghost_unknown = false;
        self.seen.ghost_kb = g.ghost_kb;
        self.seen.mem_total_kb = g.mem_total_kb;
        self.seen.available_kb = available_kb;
        Some(Measured {
            ghost: g,
            available_kb,
        })
    }

    /// The full-scan question for this poll: is the periodic safety net due?
    pub fn full_scan_due(&self) -> bool {
        self.cycles >= self.next_full_scan
    }

    /// Resolves the suspects' owners (`resolve_owners`); false while an owner walk spanning
    /// polls has not yet found an owner for a suspect that needs one: deciding then would audit
    /// a false "no matching owner", so the poll waits for the walk.
    pub fn owners_known(&mut self, cfg: &Config, root: &ProcRoot) -> bool {
        self.resolve_owners(cfg, root);
        let unowned =
            |(i, s): (usize, &Suspect)| policy::suspect_worthy(cfg, i, s) && s.owners.is_empty();
        !(self.owners.walking() && self.suspects.iter().enumerate().any(unowned))
    }

    /// Adds this poll to the correlation history (Ghost, MemAvailable, every suspect's queue),
    /// ranks the suspects by how much of Ghost's growth they explain and marks each with its
    /// part and pinning ratio (`decide::correlate`); the culprit goes to the files. Call after
    /// `read_sockets`. Allocates nothing.
    pub fn correlate(&mut self, now_ms: u64, m: &Measured) {
        self.history
            .sample(now_ms, m.ghost.ghost_kb, m.available_kb);
        for s in self.suspects.iter() {
            let key = correlate::Key {
                netns: s.socket.netns,
                inode: s.socket.inode,
            };
            self.history.socket(key, s.socket.rx_queue);
        }
        let window = self.history.rank(&mut self.blame);
        for s in self.suspects.iter_mut() {
            let key = correlate::Key {
                netns: s.socket.netns,
                inode: s.socket.inode,
            };
            let b = self.blame.iter().find(|b| b.key == key);
            s.blame = SuspectBlame {
                // Blame only while Ghost grows; a trusted ratio stays while it is tracked.
                explains_pm: b
                    .filter(|_| window.is_some_and(|w| w.ghost_grew()))
                    .map_or(0, |b| b.explains_pm),
                ratio: b.and_then(|b| b.ratio),
            };
        }
        self.seen.culprit = self
            .suspects
            .iter()
            .filter(|s| s.blame.moves_with_ghost() || s.blame.ratio.is_some())
            .max_by_key(|s| policy::target_key(crate::config::Trigger::Ghost, s))
            .map(|s| crate::output::status::Culprit {
                socket: s.socket,
                explains_pm: s.blame.explains_pm,
                pin_ratio: s.blame.ratio,
            });
    }

    /// The largest memory a suspect's queue holds (`Suspect::held_bytes`; 0 without any).
    pub fn worst_held(&self) -> u64 {
        self.suspects
            .iter()
            .map(Suspect::held_bytes)
            .max()
            .unwrap_or(0)
    }

    /// The snapshot policy decides on; the suspects move into it until `give_back`.
    pub fn snapshot(&mut self, now_ms: u64, m: &Measured) -> Snapshot {
        Snapshot {
            now_ms,
            ghost_kb: m.ghost.ghost_kb,
            available_kb: m.available_kb,
            suspects: core::mem::take(&mut self.suspects),
            rule_exe: self.rule_exe,
        }
    }

    /// Takes the suspects back after the decisions were carried out.
    pub fn give_back(&mut self, snap: Snapshot) {
        self.suspects = snap.suspects;
    }

    /// An action ran on the sockets tracking follows, yet sockstat's `mem` need not move (a
    /// drained UDP socket keeps its forward allocation): forget the baselines so the next poll
    /// re-reads the tables and sees the recovery instead of a stale suspect.
    pub fn forget_baselines(&mut self) {
        self.baseline = [Baseline::default(); 2];
    }

    /// Reads meminfo through the kept-open fd (reopened if it went bad).
    fn read_meminfo(&mut self, root: &ProcRoot, rec: &mut Recorder) -> Option<MemInfo> {
        if self.meminfo_fd.is_none() {
            // A meminfo that cannot be reopened is counted and logged like any read error (a
            // blind agent also stops petting an owned watchdog: the operator must see why).
            match root.open(b"meminfo") {
                Ok(fd) => self.meminfo_fd = Some(fd),
                Err(e) => {
                    rec.read_error("meminfo", sys::strerror(e));
                    return None;
                }
            }
        }
        let fd = self.meminfo_fd.as_ref()?;
        if let Err(e) = fd.rewind() {
            self.meminfo_fd = None;
            rec.read_error("meminfo", sys::strerror(e));
            return None;
        }
        match MemInfo::read(fd, &mut self.buf) {
            Ok(m) => Some(m),
            Err(e) => {
                self.meminfo_fd = None;
                rec.read_error("meminfo", e);
                None
            }
        }
    }

    /// Free pages on the per-CPU page lists (/proc/zoneinfo), read every poll (they move as
    /// fast as MemFree); None where zoneinfo is absent or shows no lists.
    fn pcp_free_kb(&mut self, root: &ProcRoot) -> Option<u64> {
        let s = root
            .open(b"zoneinfo")
            .ok()
            .and_then(|fd| PcpSummary::read(fd, &mut self.buf).ok())?;
        (s.lists > 0).then(|| s.free_kb(self.page_size))
    }

    /// Vmalloc from /proc/vmallocinfo, only where meminfo's VmallocUsed is 0/absent (4.4-5.2),
    /// refreshed every VMALLOCINFO_EVERY polls.
    fn vmallocinfo_kb(&mut self, root: &ProcRoot, mi: &MemInfo) -> Option<u64> {
        if mi.get(Field::VmallocUsed).unwrap_or(0) != 0 {
            return None;
        }
        if self.vmalloc_kb.is_none() || self.cycles % VMALLOCINFO_EVERY == 0 {
            self.vmalloc_kb = root
                .open(b"vmallocinfo")
                .ok()
                .and_then(|fd| VmallocSummary::read(fd, &mut self.buf).ok())
                .map(|s| s.vmalloc_kb(self.page_size));
        }
        self.vmalloc_kb
    }

    /// Reads the socket tables into `self.suspects` (top MAX_SUSPECTS by rx_queue).
    ///
    /// The tcp and udp tables cost milliseconds on hosts with large hash tables even when
    /// empty, so they are read only when /proc/net/sockstat says their protocol holds enough
    /// queued memory for one socket to reach the warn level, when Ghost or MemAvailable is in
    /// trouble anyway, or every policy::FULL_SCAN_EVERY polls. raw, netlink and packet (not covered by
    /// sockstat's memory counters, and cheap) are always read.
    pub fn read_sockets(&mut self, cfg: &Config, root: &ProcRoot, full: bool, rec: &mut Recorder) {
        let periodic = self.full_scan_due();
        let mut read = [true, true];
        let is_tcp = |p: Proto| family(p) == Some(0);
        let is_udp = |p: Proto| family(p) == Some(1);
        // A family that has suspects is re-read when it cannot be tracked even if its queued
        // memory is now below the gate: else a drained socket stays the worst at its pre-drain
        // queue and the incident never ends (seen in tests/vm).
        let held = [0, 1].map(|f| {
            self.suspects
                .iter()
                .any(|s| family(s.socket.proto) == Some(f))
        });
        // A unix socket at the backlog warn level is re-read every poll while it stays there
        // (the unix table is otherwise read with the periodic scans only): else the incident
        // would "recover" on the next poll that does not read it, and a drain go unseen.
        let held_unix = self
            .suspects
            .iter()
            .any(|s| s.socket.proto == Proto::Unix && s.socket.rx_queue >= cfg.backlog_warn_bytes);
        let mut mem = [None, None];
        if let Ok(ss) = root
            .open(b"net/sockstat")
            .map_err(crate::observe::proc::ProcError::Io)
            .and_then(|fd| SockStat::read(fd, &mut self.buf))
        {
            mem = [ss.tcp_mem_pages, ss.udp_mem_pages];
            if !full {
                for f in 0..2 {
                    read[f] = held[f]
                        || policy::sockstat_says_read(
                            cfg,
                            mem[f],
                            self.page_size,
                            self.sockstat_lag,
                        );
                }
            }
        }
        // Suspect tracking: the suspects a family's last read tracked are re-checked through
        // their owners' fds; while they still explain the family's queued memory (a box-wide
        // total), they stand in for dumping every socket again (policy::suspects_still_explain).
        let tracked = self.tracked(cfg);
        let fresh = self.recheck_suspects(root, &tracked);
        for f in 0..2 {
            let b = self.baseline[f];
            let now = fresh[f].and_then(|c| {
                policy::unexplained_bytes(mem[f], self.page_size, c.saturating_add(b.untracked))
            });
            if read[f]
                && policy::suspects_still_explain(
                    cfg,
                    self.sockstat_lag,
                    b.unexplained,
                    now,
                    b.exact,
                    periodic,
                )
            {
                read[f] = false;
            }
        }
        let (read_tcp, read_udp) = (read[0], read[1]);
        self.read_now = [read_tcp, read_udp, periodic];
        // Suspects of the families not re-read this poll stay if tracked and still queued; the
        // rest are found again. The kept ones are in order again after their re-check.
        let mut i = 0;
        self.suspects.retain(|s| {
            let keep = tracked[i]
                && s.socket.rx_queue > 0
                && family(s.socket.proto).is_some_and(|f| !read[f]);
            i += 1;
            keep
        });
        self.suspects
            .sort_unstable_by_key(|s| (core::cmp::Reverse(s.socket.rx_queue), s.socket.inode));
        let scan_start_us = sys::monotonic_us();
        // Network namespaces come and go: look for new ones with the periodic full scan.
        if full && periodic && self.cycles > 1 {
            self.scanner.discover(root);
        }
        // Unix queues are bounded by their senders' buffers (a datagram receiver's is what its
        // connected senders hold, diag::UnixSenders) and in no sockstat counter; the unix
        // dump (two passes) rides along with the periodic full scans, and with every poll
        // while a unix socket is at the warn level.
        let want = |proto: Proto| match proto {
            p if is_tcp(p) => read_tcp,
            p if is_udp(p) => read_udp,
            Proto::Unix => periodic || held_unix,
            _ => true,
        };
        let mut seen = 0u64;
        let mut all_charged = [0u64; 2];
        // The suspects' namespaces are read every poll; the rest take turns (NETNS_PER_POLL).
        self.scanner
            .pin(self.suspects.iter().map(|s| s.socket.netns));
        let suspects = &mut self.suspects;
        let mut per_table = [TableStats::default(); Proto::COUNT];
        self.scanner.scan(
            root,
            &mut self.buf,
            &want,
            &mut per_table,
            &mut |s: &SocketEntry| {
                seen += 1;
                if let Some(f) = family(s.proto) {
                    all_charged[f] = all_charged[f].saturating_add(s.charged);
                }
                if s.rx_queue > 0 {
                    insert_top(
                        suspects,
                        policy::MAX_SUSPECTS,
                        s.rx_queue,
                        |x: &Suspect| x.socket.rx_queue,
                        || Suspect {
                            socket: *s,
                            owners: heapless::Vec::new(),
                            blame: policy::SuspectBlame::default(),
                        },
                    );
                }
            },
        );
        let tables = Proto::ALL.iter().filter(|&&p| want(p)).count() as u32;
        if periodic {
            // The safety net keeps to its share of the time however many sockets there are.
            let cost_us = sys::monotonic_us().saturating_sub(scan_start_us);
            self.next_full_scan = self.cycles.saturating_add(policy::full_scan_spacing(
                cost_us,
                u64::from(cfg.interval_ms),
            ));
        }
        // Suspect tracking's baseline: what each family read this poll leaves unexplained, and
        // what the sockets it will not re-check charge.
        let tracked = self.tracked(cfg);
        let diag = self.scanner.kind() == crate::observe::sockets::SourceKind::SockDiag;
        for f in (0..2).filter(|&f| read[f]) {
            let exact = diag && !self.scanner.unsupported().any(|p| family(p) == Some(f));
            let tracked_charged = self
                .suspects
                .iter()
                .zip(tracked)
                .filter(|(s, t)| *t && family(s.socket.proto) == Some(f))
                .map(|(s, _)| s.socket.charged)
                .fold(0u64, u64::saturating_add);
            self.baseline[f] = Baseline {
                unexplained: policy::unexplained_bytes(mem[f], self.page_size, all_charged[f]),
                untracked: all_charged[f].saturating_sub(tracked_charged),
                exact,
            };
        }
        // A table the kernel lacks (udplite without CONFIG_IP_UDPLITE) is normal; a garbled
        // or unreadable one is logged (read_error rate-limits) and the poll goes on.
        let bad = Proto::ALL
            .into_iter()
            .find_map(|p| match per_table[p.index()].first_error {
                None | Some(crate::observe::proc::ProcError::Io(libc::ENOENT)) => None,
                Some(e) => Some((p, e)),
            });
        // Source fallbacks and namespaces we cannot enter: each is noted once by the scanner.
        for n in self.scanner.take_notes() {
            let mut l = AuditLine::new("error");
            let mut msg = heapless::String::<160>::new();
            let _ = write!(msg, "{n}");
            l.kv("reason", msg.as_bytes());
            rec.emit(Severity::Warning, l);
        }
        self.seen.sockets_seen = seen;
        self.seen.tables_read = tables;
        let ns = self.scanner.ns_scan;
        self.seen.netns = ns;
        // The namespace cap biting is said once (not every poll), again only after it stopped.
        let capped = ns.deferred > 0 || ns.dropped > 0;
        if capped && !self.netns_cap_audited {
            let mut l = AuditLine::new("netns_capped");
            l.kvd("namespaces", u64::from(ns.known))
                .kvd("per_poll", NETNS_PER_POLL as u64)
                .kvd("rotation_polls", u64::from(ns.rotation_scans))
                .kvd("dropped", u64::from(ns.dropped));
            rec.emit(Severity::Notice, l);
        }
        self.netns_cap_audited = capped;
        self.seen.worst = self.suspects.first().map(|s| s.socket);
        if let Some((proto, e)) = bad {
            let mut what = heapless::String::<16>::new();
            sys::push_lossy(&mut what, proto.file());
            rec.read_error(&what, e);
        }
    }

    /// Which suspects tracking follows between reads: those whose owners are sought
    /// (`policy::owner_worthy`), by position in `self.suspects`.
    fn tracked(&self, cfg: &Config) -> [bool; policy::MAX_SUSPECTS] {
        let mut t = [false; policy::MAX_SUSPECTS];
        for (i, s) in self.suspects.iter().enumerate() {
            t[i] = policy::suspect_worthy(cfg, i, s);
        }
        t
    }

    /// Suspect tracking's re-check: each tracked tcp/udp suspect is read again through one of
    /// its remembered owners' fds (`executors::peek`), its queue, charge and drops updated in place.
    /// Returns per family (tcp, udp) what its tracked suspects charge now; None where one could
    /// not be re-checked (no owner known yet, owner gone, kernel < 5.6, not the live /proc):
    /// that family is read again.
    fn recheck_suspects(
        &mut self,
        root: &ProcRoot,
        tracked: &[bool; policy::MAX_SUSPECTS],
    ) -> [Option<u64>; 2] {
        let mut sum = [Some(0u64); 2];
        let live = root.is_live();
        for (s, &t) in self.suspects.iter_mut().zip(tracked) {
            let Some(f) = family(s.socket.proto) else {
                continue;
            };
            if !t || sum[f].is_none() {
                continue;
            }
            let peeked = if live {
                self.owners.of(root, s.socket.inode).next().and_then(|o| {
                    executors::peek(&Target {
                        pid: o.pid,
                        fd: o.fd,
                        inode: o.inode,
                        comm: o.comm,
                    })
                    .ok()
                })
            } else {
                None
            };
            sum[f] = match (sum[f], peeked) {
                (Some(c), Some(p)) => {
                    s.socket.rx_queue = p.rx_queue;
                    s.socket.charged = p.charged;
                    s.socket.drops = p.drops;
                    Some(c.saturating_add(p.charged))
                }
                _ => None,
            };
        }
        sum
    }

    /// The queue of an action's target socket now, for its verification (`decide::verify`),
    /// through the same means as suspect tracking: a peek through the owner's fd (live /proc;
    /// fails once the owner is gone or on kernels without pidfd_getfd), else this poll's
    /// `suspects` when they came from a table read that covers the socket's protocol: its
    /// queue there, or — absent from them — 0 (gone, or empty), or at most the smallest listed
    /// queue when the list is full. None when neither can say.
    pub fn queue_of(
        &self,
        root: &ProcRoot,
        target: &Target,
        proto: Proto,
        suspects: &[Suspect],
    ) -> Option<u64> {
        if root.is_live() {
            if let Ok(p) = executors::peek(target) {
                return Some(p.rx_queue);
            }
        }
        if let Some(s) = suspects.iter().find(|s| s.socket.inode == target.inode) {
            return Some(s.socket.rx_queue);
        }
        let read = match (family(proto), proto) {
            (Some(f), _) => self.read_now[f],
            (None, Proto::Unix) => self.read_now[2],
            (None, _) => true,
        };
        if !read {
            return None;
        }
        Some(if suspects.len() < policy::MAX_SUSPECTS {
            0
        } else {
            suspects
                .iter()
                .map(|s| s.socket.rx_queue)
                .min()
                .unwrap_or(0)
        })
    }

    /// Resolves owners (and their exe) of the current suspects through the owner cache: a
    /// remembered owner costs one readlink per poll; a walk runs under a budget (owner_track).
    fn resolve_owners(&mut self, cfg: &Config, root: &ProcRoot) {
        // Owners are sought for the sockets that can matter: the largest, and every one within
        // reach of the warn level. Small queues come and go; walking for them would never end.
        let mut inodes: heapless::Vec<u64, { policy::MAX_SUSPECTS }> = heapless::Vec::new();
        for (i, s) in self.suspects.iter().enumerate() {
            if policy::suspect_worthy(cfg, i, s) {
                let _ = inodes.push(s.socket.inode);
            }
        }
        // Remembered owners re-validated by one readlink each; the fd walk only when one is
        // missing or moved (or periodically), under a per-poll time budget (owner_track).
        self.owners
            .update(root, &inodes, self.cycles, self.owner_walk_budget_us);
        for s in self.suspects.iter_mut() {
            s.owners.clear();
            for o in self.owners.of(root, s.socket.inode) {
                let mut exe = heapless::String::<128>::new();
                if let Ok(p) = pid::read_exe(root, o.pid, &mut self.buf) {
                    sys::push_lossy(&mut exe, p);
                }
                // Who it is beyond its name: the file it runs and the account it runs as.
                let owner = SuspectOwner {
                    owner: *o,
                    exe,
                    exe_id: identity::exe_id(root, o.pid),
                    uid: identity::uid_of(root, o.pid, &mut self.buf),
                };
                if s.owners.push(owner).is_err() {
                    break;
                }
            }
        }
        // The rules' exe paths as root sees them now (a binary upgraded since the last walk
        // is a new inode).
        for (slot, r) in self.rule_exe.iter_mut().zip(cfg.rules.iter()) {
            *slot = r.exe.as_deref().and_then(identity::path_id);
        }
    }

    /// The suspects of the last poll, worst first (for tests and benches).
    pub fn suspects(&self) -> &[Suspect] {
        &self.suspects
    }

    /// True while an owner walk is split over several slices (see `owner_track`).
    pub fn owner_walk_pending(&self) -> bool {
        self.owners.walking()
    }

    /// Walks owners for one budget's worth; decisions wait for the next poll.
    pub fn owner_walk_slice(&mut self, root: &ProcRoot) {
        self.owners
            .resume_walk(root, self.cycles, self.owner_walk_budget_us);
    }
}

/// The seed fixture tree (tests of this stage and of the stages after it).
#[cfg(test)]
pub(super) fn seed() -> ProcRoot {
    ProcRoot::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/seed").as_bytes()).unwrap()
}

/// One poll's observation of the seed tree with `cfg`, owners known: what the act and verify
/// stage tests start from.
#[cfg(test)]
pub(super) fn observed_seed(cfg: &Config) -> (ProcRoot, Observer, Recorder, Measured) {
    let (root, mut rec) = (seed(), Recorder::default());
    let mut o = Observer::new(&root).unwrap();
    o.begin_poll();
    let m = o.measure(&root, &mut rec).unwrap();
    o.read_sockets(cfg, &root, true, &mut rec);
    assert!(o.owners_known(cfg, &root));
    (root, o, rec, m)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stage alone on a fixture tree: meminfo to Ghost, the tables to the worst socket, the
    /// owner walk to zebra, and a snapshot that holds them.
    #[test]
    fn observes_the_seed_box_on_its_own() {
        let (root, cfg, mut rec) = (seed(), Config::embedded_default(), Recorder::default());
        let mut o = Observer::new(&root).unwrap();
        assert_eq!(o.begin_poll(), 1);
        assert!(o.full_scan_due(), "the first poll reads every table");
        let m = o.measure(&root, &mut rec).unwrap();
        assert_eq!(m.ghost.ghost_kb, 2_591_452);
        assert_eq!(o.seen().ghost_kb, 2_591_452);
        o.read_sockets(&cfg, &root, true, &mut rec);
        assert_eq!(o.worst_held(), 76_755_840);
        assert!(o.owners_known(&cfg, &root));
        let snap = o.snapshot(1_000, &m);
        assert!(
            o.suspects().is_empty(),
            "the suspects moved into the snapshot"
        );
        assert_eq!(snap.suspects[0].socket.proto, Proto::Raw6);
        assert_eq!(snap.suspects[0].owners[0].owner.comm.as_bytes(), b"zebra");
        o.give_back(snap);
        assert!(!o.suspects().is_empty(), "and back after give_back");
        assert_eq!(rec.stats().read_errors, 0);
    }

    #[test]
    fn a_tree_without_meminfo_is_refused_by_name() {
        let root = ProcRoot::new(b"/nonexistent-gw-tree").unwrap();
        let e = Observer::new(&root).err().unwrap();
        assert!(e.contains("/nonexistent-gw-tree/meminfo"), "{e}");
    }
}
