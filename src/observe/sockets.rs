//! Every socket of the box, once per network namespace, through the best source the kernel
//! offers: NETLINK_SOCK_DIAG (`proc::diag`) where it has it, the /proc/net text tables
//! otherwise, for netlink/packet, and always under `--proc-root`.
//!
//! Used by `report` and by the agent's loop alike. Nothing here allocates after `Scanner::new`:
//! the netlink receive buffer and the namespace table are made once. Entering another
//! namespace is `setns` there, one netlink socket made inside it, `setns` back through a
//! kept fd of our own (the socket stays bound to the namespace it was made in).

use crate::observe::proc::diag::{self, Diag, DiagError, NsError};
use crate::observe::proc::net::{ProcNet, Proto, SocketEntry, SocketSource, TableStats};
use crate::observe::proc::netns::{self, NetnsTable};
use crate::observe::proc::{ProcError, ProcRoot};
use crate::sys::{Errno, Fd};

/// Which source the sockets came from (`report`'s `socket_source`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceKind {
    /// NETLINK_SOCK_DIAG (netlink and packet sockets still from their text tables).
    SockDiag,
    /// The /proc/net text tables.
    Proc,
}

impl SourceKind {
    pub fn name(self) -> &'static str {
        match self {
            SourceKind::SockDiag => "sock_diag",
            SourceKind::Proc => "proc",
        }
    }
}

/// Something a scan could not do as planned. The scanner records each kind once (the agent
/// logs them, the report lists them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Note {
    /// No NETLINK_SOCK_DIAG at all (socket() failed): every table is read as text.
    NoSockDiag(Errno),
    /// The kernel lacks the diag family for this table: it is read as text from now on.
    Unsupported(Proto, Errno),
    /// A namespace could not be entered (or its netlink socket made); its sockets are read
    /// from /proc/PID/net text where possible. `netns` is its inode.
    NsEnter { netns: u64, errno: Errno },
    /// setns back to our own namespace failed: namespaces other than ours are no longer
    /// entered (the thread stays where it is; its reads are still correct for that namespace).
    Stranded(Errno),
}

impl core::fmt::Display for Note {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        use crate::sys::strerror;
        match *self {
            Note::NoSockDiag(e) => write!(
                f,
                "sock_diag: NETLINK_SOCK_DIAG unavailable ({}), socket tables read as /proc text",
                strerror(e)
            ),
            Note::Unsupported(p, e) => write!(
                f,
                "sock_diag: no {} in this kernel ({}), {} read as /proc text",
                diag::module_of(p).unwrap_or("diag module"),
                strerror(e),
                p.name()
            ),
            Note::NsEnter { netns, errno } => write!(
                f,
                "netns {netns}: cannot enter ({}), its sockets read from /proc/PID/net text",
                strerror(errno)
            ),
            Note::Stranded(e) => write!(
                f,
                "netns: cannot return to our own namespace ({}), other namespaces not read",
                strerror(e)
            ),
        }
    }
}

/// Most notes kept between `take_notes` calls.
pub const MAX_NOTES: usize = 16;

/// Most network namespaces other than our own (and those `pin`ned) one scan reads when the
/// scanner is bounded (`Scanner::bounded`, the agent): anyone can make namespaces
/// (`unshare -Urn`), each costs a setns, a netlink socket and its dumps (~0.1-0.2 ms), so
/// the rest wait their turn in a rotation. With N namespaces besides ours, each is read at
/// least once every ceil(N / NETNS_PER_POLL) scans.
pub const NETNS_PER_POLL: usize = 16;

/// Most namespaces pinned (read every scan whatever the rotation): the agent's suspects'.
pub const MAX_PINNED: usize = 16;

/// What the last scan did with the namespaces (the status file shows it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NsScan {
    /// Namespaces known (ours included), and sightings beyond the table (not read).
    pub known: u32,
    pub dropped: u32,
    /// Namespaces other than ours read in the last scan, and the time that took (µs).
    pub read: u32,
    pub cost_us: u64,
    /// Namespaces other than ours not read in the last scan (waiting their turn).
    pub deferred: u32,
    /// Scans one rotation takes: every namespace is read at least once in this many
    /// (1 when nothing is deferred).
    pub rotation_scans: u32,
}

impl NsScan {
    /// Mean cost of one namespace other than ours in the last scan (µs; 0: none read).
    pub fn cost_per_ns_us(&self) -> u64 {
        self.cost_us.checked_div(u64::from(self.read)).unwrap_or(0)
    }
}

/// Per-table results of one scan, summed over namespaces.
pub type Tables = [TableStats; Proto::COUNT];

/// The socket reader: source choice, namespaces, buffers.
pub struct Scanner {
    live: bool,
    diag: Option<Diag>,
    home: Option<Fd>,
    stranded: bool,
    /// The namespaces the next scan reads (refresh with `discover`).
    pub netns: NetnsTable,
    notes: heapless::Vec<Note, MAX_NOTES>,
    noted_ns: heapless::Vec<u64, { netns::MAX_NETNS }>,
    /// The last scan's unix datagram bytes whose receiver sock_diag cannot name (senders
    /// without a peer: `diag::UnixSenders::unattributed`), summed over namespaces.
    pub unix_unattributed: u64,
    /// The last scan read some unix table as /proc text, which shows no queue lengths.
    pub unix_text: bool,
    /// Namespaces other than ours read per scan at most (usize::MAX: all, as `report` does).
    pub per_scan: usize,
    /// Where the rotation goes on: index into `netns.list` of the next namespace to read.
    cursor: usize,
    /// Namespaces read every scan whatever the rotation (inodes; `pin`).
    pinned: heapless::Vec<u64, MAX_PINNED>,
    /// What the last scan did with the namespaces.
    pub ns_scan: NsScan,
}

impl Scanner {
    /// A scanner for `root`. The live /proc uses sock_diag when the kernel has it; a tree given
    /// with --proc-root (fixtures, chroots) is only ever read as text, in one namespace.
    pub fn new(root: &ProcRoot, live: bool) -> Scanner {
        let mut s = Scanner {
            live,
            diag: None,
            home: None,
            stranded: false,
            netns: NetnsTable::default(),
            notes: heapless::Vec::new(),
            noted_ns: heapless::Vec::new(),
            unix_unattributed: 0,
            unix_text: false,
            per_scan: usize::MAX,
            cursor: 1,
            pinned: heapless::Vec::new(),
            ns_scan: NsScan::default(),
        };
        if live {
            match Diag::open() {
                Ok(mut d) => {
                    // The modules this kernel lacks, asked once (their tables read as text).
                    for p in d.probe() {
                        s.note(Note::Unsupported(p, libc::ENOENT));
                    }
                    s.diag = Some(d);
                }
                Err(e) => s.note(Note::NoSockDiag(e)),
            }
            s.home = netns::open_home().ok();
        }
        s.discover(root);
        s
    }

    /// True for a live /proc (`ProcRoot::live`) rather than a tree under --proc-root.
    pub fn is_live_root(root: &ProcRoot) -> bool {
        root.dir().as_bytes() == b"/proc"
    }

    pub fn kind(&self) -> SourceKind {
        if self.diag.is_some() {
            SourceKind::SockDiag
        } else {
            SourceKind::Proc
        }
    }

    /// What this kernel lacks of sock_diag, by name (the start line's `missing=`): "sock_diag"
    /// when there is no NETLINK_SOCK_DIAG at all, else each diag module not there
    /// (`diag::module_of`; "udplite_diag" only where udp_diag is there). Nothing under
    /// --proc-root (never asked).
    pub fn missing(&self) -> heapless::Vec<&'static str, { Proto::COUNT }> {
        let mut out = heapless::Vec::new();
        if !self.live {
            return out;
        }
        let Some(d) = self.diag.as_ref() else {
            let _ = out.push("sock_diag");
            return out;
        };
        for p in Proto::ALL {
            let Some(m) = diag::module_of(p).filter(|_| d.unsupported[p.index()]) else {
                continue;
            };
            if p == Proto::UdpLite && d.unsupported[Proto::Udp.index()] {
                continue;
            }
            if !out.contains(&m) {
                let _ = out.push(m);
            }
        }
        out
    }

    /// Drops the notes of what the kernel lacks (`NoSockDiag`, `Unsupported`) still waiting to
    /// be taken: for a caller that said them another way (the agent's start line, `missing`).
    pub fn forget_kernel_notes(&mut self) {
        self.notes
            .retain(|n| !matches!(n, Note::NoSockDiag(_) | Note::Unsupported(..)));
    }

    /// Tables the kernel's sock_diag lacks (read as text).
    pub fn unsupported(&self) -> impl Iterator<Item = Proto> + '_ {
        Proto::ALL
            .into_iter()
            .filter(|p| self.diag.as_ref().is_some_and(|d| d.unsupported[p.index()]))
    }

    /// Re-reads which network namespaces exist (a walk of /proc/PID/ns/net; ~1 readlink per
    /// process). Under --proc-root there is only the tree's own net/ (namespace 0).
    pub fn discover(&mut self, root: &ProcRoot) {
        if !self.live {
            self.netns = NetnsTable::default();
            let _ = self.netns.list.push(netns::Netns { inode: 0, pid: 0 });
            return;
        }
        let home = self
            .home
            .as_ref()
            .and_then(|fd| netns::inode_of_fd(fd).ok())
            .unwrap_or(0);
        netns::discover(root, home, true, &mut self.netns);
    }

    /// Test seam: dump `proto` with kernel protocol number `protocol` (one no diag handler
    /// serves makes the kernel answer ENOENT, as a kernel without that family would).
    #[doc(hidden)]
    pub fn override_protocol_for_test(&mut self, proto: Proto, protocol: u8) {
        if let Some(d) = self.diag.as_mut() {
            d.protocol_override = Some((proto, protocol));
        }
    }

    /// Bounds each scan to our own namespace, the pinned ones and `per_scan` others, in a
    /// rotation (the agent's loop; `report` reads every namespace).
    pub fn bounded(&mut self, per_scan: usize) {
        self.per_scan = per_scan.max(1);
    }

    /// Namespaces to read every scan whatever the rotation (the agent's suspects'); the
    /// first MAX_PINNED distinct ones are kept.
    pub fn pin(&mut self, inodes: impl Iterator<Item = u64>) {
        self.pinned.clear();
        for i in inodes {
            if i != 0 && !self.pinned.contains(&i) {
                let _ = self.pinned.push(i);
            }
        }
    }

    /// Which namespaces (by index in `netns.list`) this scan reads: ours (index 0), the pinned
    /// ones, and the next `per_scan` others from the cursor on, wrapping; the cursor moves on
    /// past them. `picked[i]` says; returns how many others take turns (not pinned) and how
    /// many of them are left for later scans.
    fn pick(&mut self, picked: &mut [bool; netns::MAX_NETNS]) -> (u32, u32) {
        let n = self.netns.list.len();
        picked[..n].fill(false);
        if n == 0 {
            return (0, 0);
        }
        picked[0] = true;
        let others = n - 1;
        let mut pinned = 0;
        for (i, ns) in self.netns.list.iter().enumerate().skip(1) {
            if self.pinned.contains(&ns.inode) {
                picked[i] = true;
                pinned += 1;
            }
        }
        let free = others - pinned;
        if free <= self.per_scan {
            picked[1..n].fill(true);
            self.cursor = 1;
            return (free as u32, 0);
        }
        if self.cursor == 0 || self.cursor >= n {
            self.cursor = 1;
        }
        let mut taken = 0;
        let mut i = self.cursor;
        while taken < self.per_scan {
            if !picked[i] {
                picked[i] = true;
                taken += 1;
            }
            i = if i + 1 >= n { 1 } else { i + 1 };
        }
        self.cursor = i;
        (free as u32, (free - taken) as u32)
    }

    fn note(&mut self, n: Note) {
        let _ = self.notes.push(n);
    }

    /// Notes since the last call (each problem is noted once per scanner).
    pub fn take_notes(&mut self) -> heapless::Vec<Note, MAX_NOTES> {
        core::mem::take(&mut self.notes)
    }

    /// Reads every table `want` accepts in every known namespace, calling `f` for each socket
    /// (its `netns` set) and summing per-table stats into `tables` (reset first).
    /// `text_buf` is the line buffer for the text tables (4 KiB is plenty).
    pub fn scan(
        &mut self,
        root: &ProcRoot,
        text_buf: &mut [u8],
        want: &dyn Fn(Proto) -> bool,
        tables: &mut Tables,
        f: &mut dyn FnMut(&SocketEntry),
    ) {
        *tables = [TableStats::default(); Proto::COUNT];
        self.unix_unattributed = 0;
        self.unix_text = false;
        let mut picked = [false; netns::MAX_NETNS];
        let (free, deferred) = self.pick(&mut picked);
        self.ns_scan = NsScan {
            known: self.netns.list.len() as u32,
            dropped: self.netns.dropped,
            read: 0,
            cost_us: 0,
            deferred,
            rotation_scans: if deferred == 0 {
                1
            } else {
                free.div_ceil(self.per_scan as u32)
            },
        };
        for (i, &pick) in picked.iter().enumerate().take(self.netns.list.len()) {
            if !pick {
                continue;
            }
            let (inode, pid) = (self.netns.list[i].inode, self.netns.list[i].pid);
            let home = i == 0;
            let ns_start_us = if home { 0 } else { crate::sys::monotonic_us() };
            // Into the namespace for sock_diag (ours: the socket we keep), unless every table
            // wanted this time is read as text anyway (a quiet poll: raw on a kernel without
            // raw_diag, netlink, packet), which needs no setns.
            let diag_wanted = self.diag.as_ref().is_some_and(|d| {
                Proto::ALL
                    .into_iter()
                    .any(|p| want(p) && diag::request_of(p).is_some() && !d.unsupported[p.index()])
            });
            let mut use_diag = self.diag.is_some() && (home || diag_wanted);
            if use_diag && !home {
                use_diag = self.enter(root, i);
            }
            if !home && !use_diag && pid == 0 {
                continue; // named only, not enterable: no /proc/PID/net to read either
            }
            let text_root;
            let text_root = if home {
                root
            } else {
                match root
                    .pid_path(pid, b"")
                    .and_then(|p| ProcRoot::new(p.as_bytes()))
                {
                    Ok(r) => {
                        text_root = r;
                        &text_root
                    }
                    Err(_) => continue,
                }
            };
            for proto in Proto::ALL {
                if !want(proto) {
                    continue;
                }
                let mut g = |e: &SocketEntry| {
                    let mut e = *e;
                    e.netns = inode;
                    f(&e);
                };
                let mut st = None;
                if use_diag && diag::request_of(proto).is_some() {
                    let d = self.diag.as_mut().expect("use_diag implies diag");
                    if !d.unsupported[proto.index()] {
                        match d.table(proto, &mut g) {
                            Ok(s) => {
                                if proto == Proto::Unix {
                                    self.unix_unattributed =
                                        self.unix_unattributed.saturating_add(d.unix_unattributed);
                                }
                                st = Some(s)
                            }
                            Err(DiagError::Unsupported(e)) => {
                                let _ = self.notes.push(Note::Unsupported(proto, e));
                            }
                            Err(e) => {
                                st = Some(TableStats {
                                    first_error: Some(ProcError::Io(e.errno())),
                                    ..TableStats::default()
                                })
                            }
                        }
                    }
                }
                let st = st.unwrap_or_else(|| {
                    if proto == Proto::Unix {
                        self.unix_text = true;
                    }
                    ProcNet {
                        root: text_root,
                        buf: &mut *text_buf,
                    }
                    .for_each(proto, &mut g)
                });
                let t = &mut tables[proto.index()];
                t.sockets = t.sockets.saturating_add(st.sockets);
                t.malformed = t.malformed.saturating_add(st.malformed);
                // A table missing from a namespace other than ours is not news.
                if t.first_error.is_none()
                    && (home || st.first_error != Some(ProcError::Io(libc::ENOENT)))
                {
                    t.first_error = st.first_error;
                }
            }
            if !home && use_diag {
                self.leave();
            }
            if !home {
                self.ns_scan.read += 1;
                self.ns_scan.cost_us = self
                    .ns_scan
                    .cost_us
                    .saturating_add(crate::sys::monotonic_us().saturating_sub(ns_start_us));
            }
        }
    }

    /// Points the diag socket at namespace `i`; false (noted once per namespace) if it cannot.
    fn enter(&mut self, root: &ProcRoot, i: usize) -> bool {
        if self.stranded {
            return false;
        }
        let ns = &self.netns.list[i];
        let inode = ns.inode;
        let res = match (
            &self.home,
            netns::open_ns(root, ns, self.netns.name_of(inode)),
        ) {
            (None, _) => Err(NsError::Enter(libc::ENOENT)),
            (_, Err(e)) => Err(NsError::Enter(e)),
            (Some(home), Ok(fd)) => match self.diag.as_mut() {
                Some(d) => d.reopen_in(&fd, home),
                None => Err(NsError::Enter(libc::ENOENT)),
            },
        };
        match res {
            Ok(()) => true,
            Err(NsError::Return(e)) => {
                self.stranded = true;
                self.note(Note::Stranded(e));
                false
            }
            // Its process exited since discovery: nothing to say, the next discovery drops it.
            Err(NsError::Enter(libc::ENOENT | libc::ESRCH)) => false,
            Err(NsError::Enter(errno) | NsError::Socket(errno)) => {
                if !self.noted_ns.contains(&inode) {
                    let _ = self.noted_ns.push(inode);
                    self.note(Note::NsEnter {
                        netns: inode,
                        errno,
                    });
                }
                false
            }
        }
    }

    /// Points the diag socket back at our own namespace.
    fn leave(&mut self) {
        if let Some(d) = self.diag.as_mut() {
            if d.reopen_here().is_err() {
                // Without a socket of our own namespace, text it is.
                self.diag = None;
                self.note(Note::NoSockDiag(libc::EMFILE));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scanner over a fixture root (text only) with `n` namespaces besides ours.
    fn with_namespaces(n: u64) -> Scanner {
        let root = ProcRoot::new(b"tests/fixtures").unwrap();
        let mut s = Scanner::new(&root, false);
        for i in 0..n {
            s.netns
                .list
                .push(netns::Netns {
                    inode: 1000 + i,
                    pid: 1 + i as u32,
                })
                .unwrap();
        }
        s
    }

    #[test]
    fn the_rotation_reads_every_namespace_within_its_bound() {
        let mut s = with_namespaces(40);
        s.bounded(16);
        s.pin([1005u64, 0, 1005].into_iter());
        let mut seen = [0u32; 41];
        let mut picked = [false; netns::MAX_NETNS];
        // 39 take turns, 16 a scan: every one within ceil(39 / 16) = 3 scans, in any window.
        for scan in 0..9 {
            let (free, deferred) = s.pick(&mut picked);
            assert_eq!((free, deferred), (39, 39 - 16));
            assert!(picked[0], "ours every scan");
            assert!(picked[6], "the pinned one every scan");
            assert_eq!(picked[..41].iter().filter(|&&p| p).count(), 1 + 1 + 16);
            for (i, &p) in picked[..41].iter().enumerate() {
                if p {
                    seen[i] += 1;
                }
            }
            if scan % 3 == 2 {
                assert!(
                    seen.iter().all(|&c| c > 0),
                    "after {} scans: {seen:?}",
                    scan + 1
                );
                seen = [0; 41];
            }
        }
        // Unbounded (report) or under the cap: all of them, nothing deferred.
        let mut r = with_namespaces(40);
        assert_eq!(r.pick(&mut picked), (40, 0));
        assert!(picked[..41].iter().all(|&p| p));
        let mut few = with_namespaces(10);
        few.bounded(16);
        assert_eq!(few.pick(&mut picked), (10, 0));
    }
}
