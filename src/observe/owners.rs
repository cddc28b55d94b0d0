//! inode -> owning processes: one walk over PID/fd/* for a requested set of socket inodes.
//!
//! Owners are bounded per socket: each requested socket has its own slot of up to
//! `MAX_OWNERS_PER_SOCKET` listed holders plus a count of the rest, so a socket shared by a
//! crowd of forked workers can never take another socket's owners away. Tolerates PIDs that
//! vanish or deny access mid-walk (counted, not fatal).

use crate::observe::proc::ProcRoot;
use crate::observe::proc::pid::{self, Comm};

/// Most owners listed per socket; further holders are counted in `SocketOwners::more`.
pub const MAX_OWNERS_PER_SOCKET: usize = 16;

/// One process holding one of the requested sockets, through fd number `fd`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner {
    pub inode: u64,
    pub pid: u32,
    pub fd: u32,
    pub comm: Comm,
}

/// Stop as soon as every requested inode has one owner (agent fast path), or walk every
/// process so shared sockets list (and count) every holder (report).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalkMode {
    FirstOwner,
    AllOwners,
}

/// The holders of one requested socket.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SocketOwners {
    pub inode: u64,
    /// The first holders seen, at most MAX_OWNERS_PER_SOCKET, in PID order after a walk.
    pub listed: heapless::Vec<Owner, MAX_OWNERS_PER_SOCKET>,
    /// Holders beyond `listed` (counted, not named).
    pub more: u32,
    /// The PID recorded last: one process holding the socket on several fds is one owner.
    last_pid: u32,
}

impl SocketOwners {
    /// Records holder `pid`: listed (`owner()` is called only then) while there is room, else
    /// counted in `more`. The PID recorded last is not counted twice. True when counted only.
    fn record(&mut self, pid: u32, owner: impl FnOnce() -> Owner) -> bool {
        if self.last_pid == pid {
            return false;
        }
        self.last_pid = pid;
        if self.listed.is_full() {
            self.more = self.more.saturating_add(1);
            return true;
        }
        let _ = self.listed.push(owner());
        false
    }
}

/// Result of a walk for up to `N` sockets (the caller's own bound: report `MAX_TOP`, agent
/// `MAX_SUSPECTS`). Fixed size, no heap.
#[derive(Clone, Debug)]
pub struct Owners<const N: usize> {
    /// One slot per requested inode, sorted by inode.
    sockets: heapless::Vec<SocketOwners, N>,
    pub pids_scanned: u32,
    /// fd directories that could not be read (not root, or hidepid).
    pub pids_denied: u32,
    /// PIDs that exited between listing and reading.
    pub pids_vanished: u32,
    /// Some socket had more than MAX_OWNERS_PER_SOCKET holders (the rest are in its `more`).
    pub truncated: bool,
}

impl<const N: usize> Default for Owners<N> {
    fn default() -> Self {
        Owners {
            sockets: heapless::Vec::new(),
            pids_scanned: 0,
            pids_denied: 0,
            pids_vanished: 0,
            truncated: false,
        }
    }
}

impl<const N: usize> Owners<N> {
    fn slot(&self, inode: u64) -> Option<&SocketOwners> {
        let i = self
            .sockets
            .binary_search_by_key(&inode, |s| s.inode)
            .ok()?;
        self.sockets.get(i)
    }

    /// Listed owners of `inode`, in PID order (empty if it was not asked for).
    pub fn of(&self, inode: u64) -> core::slice::Iter<'_, Owner> {
        self.slot(inode).map_or(&[][..], |s| &s.listed[..]).iter()
    }

    /// Holders of `inode` beyond the listed ones.
    pub fn more(&self, inode: u64) -> u32 {
        self.slot(inode).map_or(0, |s| s.more)
    }

    /// Every socket's owners, sorted by inode.
    pub fn sockets(&self) -> &[SocketOwners] {
        &self.sockets
    }

    /// Makes a slot for `inode` (kept sorted). False when 0, already there, or N are taken.
    fn want(&mut self, inode: u64) -> bool {
        if inode == 0 {
            return false;
        }
        match self.sockets.binary_search_by_key(&inode, |s| s.inode) {
            Ok(_) => false,
            Err(pos) => {
                let slot = SocketOwners {
                    inode,
                    ..SocketOwners::default()
                };
                self.sockets.insert(pos, slot).is_ok()
            }
        }
    }

    /// Records `owner` in its socket's slot (made if missing and there is room): listed while
    /// the slot has room, else counted in `more`. A PID already recorded last is skipped.
    /// Returns false when the socket has no slot.
    pub fn add(&mut self, owner: Owner) -> bool {
        self.want(owner.inode);
        let Ok(i) = self.sockets.binary_search_by_key(&owner.inode, |s| s.inode) else {
            return false;
        };
        if self.sockets[i].record(owner.pid, || owner) {
            self.truncated = true;
        }
        true
    }
}

/// Walks ROOT/*/fd once and records the owners of `inodes` into `out` (cleared first).
///
/// `inodes` is in priority order (largest queue first): if more than N are given, the first N
/// distinct non-zero ones get slots. Each slot fills on its own, so no socket's holders can
/// crowd out another's. `AllOwners` visits every PID; `FirstOwner` stops once every slot has
/// an owner.
///
/// Never fails: a PID whose fd directory is denied counts in `pids_denied`, one that exits
/// mid-walk (or lacks fd/) in `pids_vanished`; an unreadable root leaves the slots empty with
/// `pids_scanned` 0. A process holding a socket on several fds is one owner (its first fd
/// seen). Inode 0 (no socket) is never matched. Allocates nothing.
pub fn find_owners<const N: usize>(
    root: &ProcRoot,
    inodes: &[u64],
    mode: WalkMode,
    out: &mut Owners<N>,
) {
    start_walk(inodes, out);
    let _ = walk_from(root, Cursor::START, mode, &mut || true, out);
}

/// Clears `out` and makes its slots for `inodes` (the first N distinct non-zero ones), ready
/// for `walk_from`.
pub fn start_walk<const N: usize>(inodes: &[u64], out: &mut Owners<N>) {
    out.sockets.clear();
    out.pids_scanned = 0;
    out.pids_denied = 0;
    out.pids_vanished = 0;
    out.truncated = false;
    for &ino in inodes {
        if out.sockets.is_full() {
            break;
        }
        out.want(ino);
    }
}

/// Where a walk cut by `walk_from` goes on: a process, and a place in its fd table.
///
/// On the live /proc the process is a PID (/proc lists PIDs in ascending order, so a process
/// that forks or exits between two steps is seen as any walk would see it); in a tree under
/// --proc-root it is the number of entries of the listing done (stable while the tree is).
/// A walk cut inside a process resumes at the next fd of that same process (`pid::FdCursor`),
/// unless the PID now names another process (its start time changed): that one is walked
/// from its first fd.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cursor {
    process: u32,
    fds: pid::FdCursor,
    starttime: u64,
}

impl Cursor {
    /// The start of a walk.
    pub const START: Cursor = Cursor {
        process: 0,
        fds: pid::FdCursor::START,
        starttime: 0,
    };

    /// True when the walk stopped inside a process's fd table (not between two processes).
    pub fn inside_a_process(&self) -> bool {
        !self.fds.at_start()
    }
}

/// /proc/PID/stat's start time, 0 if unreadable (gone, or a tree without stat files).
fn starttime(root: &ProcRoot, p: u32) -> u64 {
    let mut buf = [0u8; 512];
    pid::read_stat(root, p, &mut buf).map_or(0, |s| s.starttime)
}

/// The walk of `find_owners` from `from` (`Cursor::START`: the start), adding to `out`
/// (prepared by `start_walk`). `go_on` is asked after each process and after every fd read
/// inside one, so one process with a huge fd table cannot hold the walk: false stops the walk
/// there and the cursor to resume from is returned; None when the walk is complete (owners
/// then sorted by PID). A walk cut anywhere finds what one uncut walk of the same processes
/// finds; each process counts once in `pids_scanned` however often it is cut.
pub fn walk_from<const N: usize>(
    root: &ProcRoot,
    from: Cursor,
    mode: WalkMode,
    go_on: &mut dyn FnMut() -> bool,
    out: &mut Owners<N>,
) -> Option<Cursor> {
    if out.sockets.is_empty() {
        return None;
    }
    let by_pid = root.is_live();
    let mut resume = None;
    let mut index = 0u32;
    let _ = pid::for_each_pid_until(root, &mut |p| {
        index += 1;
        if (by_pid && p < from.process) || (!by_pid && index <= from.process) {
            return true;
        }
        // The process the walk was cut inside (the first one not skipped) goes on from its
        // fd cursor, unless its PID was reused since.
        let mut fds = pid::FdCursor::START;
        let first = if by_pid {
            p == from.process
        } else {
            index == from.process.saturating_add(1)
        };
        if first && !from.fds.at_start() && (!by_pid || starttime(root, p) == from.starttime) {
            fds = from.fds;
        }
        if fds.at_start() {
            out.pids_scanned += 1;
        }
        // comm is read once per PID (per slice), and only if it is listed as a holder.
        let mut comm: Option<Comm> = None;
        let mut truncated = false;
        let sockets = &mut out.sockets;
        let walked = pid::walk_socket_fds(
            root,
            p,
            fds,
            &mut |fd, ino| {
                let Ok(i) = sockets.binary_search_by_key(&ino, |s| s.inode) else {
                    return;
                };
                truncated |= sockets[i].record(p, || Owner {
                    inode: ino,
                    pid: p,
                    fd,
                    comm: *comm.get_or_insert_with(|| pid::read_comm(root, p).unwrap_or_default()),
                });
            },
            go_on,
        );
        out.truncated |= truncated;
        match walked {
            Ok(None) => {}
            Ok(Some(at)) => {
                resume = Some(Cursor {
                    process: if by_pid { p } else { index - 1 },
                    fds: at,
                    starttime: if by_pid { starttime(root, p) } else { 0 },
                });
                return false;
            }
            Err(libc::EACCES) | Err(libc::EPERM) => out.pids_denied += 1,
            // ENOENT/ESRCH: exited since the listing. Anything else: unreadable all the same.
            Err(_) => out.pids_vanished += 1,
        }
        let more = match mode {
            WalkMode::AllOwners => true,
            WalkMode::FirstOwner => out.sockets.iter().any(|s| s.listed.is_empty()),
        };
        if more && !go_on() {
            resume = Some(Cursor {
                process: if by_pid { p.saturating_add(1) } else { index },
                ..Cursor::START
            });
            return false;
        }
        more
    });
    if resume.is_none() {
        for s in out.sockets.iter_mut() {
            crate::sys::sort_unstable_by(&mut s.listed, |a, b| a.pid < b.pid);
        }
    }
    resume
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;
    use std::os::unix::io::AsRawFd;
    use std::os::unix::process::CommandExt;
    use std::path::{Path, PathBuf};

    /// A throwaway proc-like tree under the target dir, removed on drop.
    struct Tree(PathBuf);
    impl Tree {
        fn new(name: &str) -> Tree {
            let d = std::env::temp_dir().join(format!("gw-owners-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir_all(&d).unwrap();
            Tree(d)
        }
        fn pid(&self, pid: u32, comm: &str, fds: &[(u32, &str)]) {
            let p = self.0.join(pid.to_string());
            std::fs::create_dir_all(p.join("fd")).unwrap();
            std::fs::write(p.join("comm"), format!("{comm}\n")).unwrap();
            for (fd, target) in fds {
                symlink(target, p.join("fd").join(fd.to_string())).unwrap();
            }
        }
        fn root(&self) -> ProcRoot {
            ProcRoot::new(self.0.as_os_str().as_encoded_bytes()).unwrap()
        }
        fn path(&self) -> &Path {
            &self.0
        }
    }
    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    type Few = Owners<4>;

    fn pids(o: &Few, inode: u64) -> Vec<(u32, u32, Vec<u8>)> {
        o.of(inode)
            .map(|o| (o.pid, o.fd, o.comm.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn shared_socket_lists_every_holder_once() {
        let t = Tree::new("shared");
        t.pid(300, "child", &[(4, "socket:[77]"), (5, "socket:[88]")]);
        t.pid(
            200,
            "parent",
            &[(3, "socket:[77]"), (9, "socket:[77]"), (1, "/dev/null")],
        );
        t.pid(100, "other", &[(3, "socket:[99]")]);
        std::fs::create_dir_all(t.path().join("net")).unwrap();
        let mut o = Few::default();
        find_owners(&t.root(), &[77, 88], WalkMode::AllOwners, &mut o);
        let p77 = pids(&o, 77);
        assert_eq!(p77.len(), 2);
        assert_eq!((p77[0].0, p77[0].2.as_slice()), (200, b"parent".as_slice()));
        assert!(p77[0].1 == 3 || p77[0].1 == 9, "one owner per process");
        assert_eq!(p77[1], (300, 4, b"child".to_vec()));
        assert_eq!(pids(&o, 88), vec![(300, 5, b"child".to_vec())]);
        assert_eq!(o.pids_scanned, 3);
        assert_eq!((o.pids_denied, o.pids_vanished, o.truncated), (0, 0, false));
        let inodes: Vec<u64> = o.sockets().iter().map(|s| s.inode).collect();
        assert_eq!(inodes, vec![77, 88]);
        assert_eq!((o.more(77), o.more(88), o.of(99).count()), (0, 0, 0));
    }

    #[test]
    fn a_crowd_is_bounded_per_socket_and_cannot_take_another_sockets_owners() {
        let t = Tree::new("crowd");
        // 40 forked workers share socket 7 and hold it before (lower PIDs than) the owner of
        // the flooded socket 9; an unrequested socket 8 is everywhere too.
        for pid in 100..140 {
            t.pid(pid, "worker", &[(3, "socket:[7]"), (4, "socket:[8]")]);
        }
        t.pid(900, "culprit", &[(5, "socket:[9]")]);
        let mut o = Owners::<2>::default();
        find_owners(&t.root(), &[9, 7, 8], WalkMode::AllOwners, &mut o);
        // Priority order: 9 and 7 got the two slots, 8 was left out.
        assert_eq!(pids_of(&o, 9), vec![900]);
        assert_eq!(o.of(8).count(), 0);
        // Which 16 are listed follows directory order (PID order on the real /proc).
        let p7 = pids_of(&o, 7);
        assert_eq!(p7.len(), MAX_OWNERS_PER_SOCKET);
        assert!(p7.windows(2).all(|w| w[0] < w[1]) && p7.iter().all(|p| (100..140).contains(p)));
        assert_eq!(o.more(7), 40 - MAX_OWNERS_PER_SOCKET as u32);
        assert_eq!((o.more(9), o.pids_scanned, o.truncated), (0, 41, true));
        // The agent's fast path still stops at the first owner of every slot.
        find_owners(&t.root(), &[7], WalkMode::FirstOwner, &mut o);
        assert_eq!((o.of(7).count(), o.more(7)), (1, 0));
        assert!(o.pids_scanned <= 2, "{} PIDs walked", o.pids_scanned);
    }

    fn pids_of<const N: usize>(o: &Owners<N>, inode: u64) -> Vec<u32> {
        o.of(inode).map(|o| o.pid).collect()
    }

    #[test]
    fn add_lists_then_counts_and_skips_a_repeated_pid() {
        let mut o = Owners::<1>::default();
        let own = |pid| Owner {
            inode: 5,
            pid,
            fd: 3,
            comm: Comm::from_bytes(b"w"),
        };
        for pid in 1..=20 {
            assert!(o.add(own(pid)));
            assert!(o.add(own(pid)), "same PID again: no second count");
        }
        assert_eq!((o.of(5).count(), o.more(5)), (MAX_OWNERS_PER_SOCKET, 4));
        // No room for a second socket, and inode 0 is never one.
        let mut other = own(1);
        other.inode = 6;
        assert!(!o.add(other));
        other.inode = 0;
        assert!(!o.add(other));
    }

    #[test]
    fn first_owner_stops_early_and_gaps_are_counted() {
        let t = Tree::new("first");
        t.pid(10, "a", &[(3, "socket:[5]")]);
        t.pid(11, "b", &[(3, "socket:[5]")]);
        // A PID directory without fd/ (exited mid-walk, or a garbled tree).
        std::fs::create_dir_all(t.path().join("12")).unwrap();
        let mut o = Few::default();
        find_owners(&t.root(), &[5], WalkMode::FirstOwner, &mut o);
        assert_eq!(o.of(5).count(), 1);
        find_owners(&t.root(), &[5], WalkMode::AllOwners, &mut o);
        assert_eq!(o.of(5).count(), 2);
        assert_eq!(o.pids_vanished, 1);
        // Nothing asked for: no walk at all.
        find_owners(&t.root(), &[0], WalkMode::AllOwners, &mut o);
        assert_eq!((o.sockets().len(), o.pids_scanned), (0, 0));
    }

    /// Walks to the end from the start, cutting every `every`-th time `go_on` is asked and
    /// calling `between` after each cut. Returns the number of slices.
    fn walk_cut<const M: usize>(
        root: &ProcRoot,
        inodes: &[u64],
        every: u32,
        out: &mut Owners<M>,
        between: &mut dyn FnMut(u32),
    ) -> u32 {
        start_walk(inodes, out);
        let (mut from, mut slices, mut asked) = (Some(Cursor::START), 0u32, 0u32);
        while let Some(f) = from {
            let mut go_on = || {
                asked += 1;
                asked % every != 0
            };
            from = walk_from(root, f, WalkMode::AllOwners, &mut go_on, out);
            slices += 1;
            assert!(slices < 1_000_000, "the walk does not end");
            between(slices);
        }
        slices
    }

    fn owner_rows<const M: usize>(o: &Owners<M>) -> Vec<(u64, u32, u32, Vec<u8>)> {
        o.sockets()
            .iter()
            .flat_map(|s| s.listed.iter())
            .map(|o| (o.inode, o.pid, o.fd, o.comm.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn a_huge_fd_table_is_walked_in_slices_that_find_what_one_walk_finds() {
        let t = Tree::new("huge");
        // One process with 600 fds, its sockets early, in the middle and last; others around.
        let mut fds: Vec<(u32, String)> = (0..600).map(|fd| (fd, "/dev/null".into())).collect();
        fds[3].1 = "socket:[41]".into();
        fds[300].1 = "socket:[42]".into();
        fds[301].1 = "socket:[41]".into();
        fds[599].1 = "socket:[43]".into();
        let fds: Vec<(u32, &str)> = fds.iter().map(|(f, l)| (*f, l.as_str())).collect();
        t.pid(500, "hog", &fds);
        t.pid(100, "small", &[(3, "socket:[43]")]);
        t.pid(900, "late", &[(7, "socket:[42]"), (8, "pipe:[5]")]);
        let root = t.root();
        let inodes = [41, 42, 43];
        let mut whole = Few::default();
        find_owners(&root, &inodes, WalkMode::AllOwners, &mut whole);
        assert_eq!(owner_rows(&whole).len(), 5);
        for every in [1, 2, 7, 64, 599, 600, 601] {
            let mut cut = Few::default();
            let slices = walk_cut(&root, &inodes, every, &mut cut, &mut |_| {});
            assert!(
                slices as usize > 603 / every as usize,
                "every {every}: {slices}"
            );
            assert_eq!(owner_rows(&cut), owner_rows(&whole), "every {every}");
            assert_eq!(cut.pids_scanned, 3, "every {every}");
            assert_eq!((cut.pids_vanished, cut.pids_denied), (0, 0));
        }
    }

    #[test]
    fn live_walk_cut_inside_a_changing_fd_table_never_hangs_and_finds_what_stayed() {
        // Our own fd table: sockets held throughout (low, middle and high fds) among 400
        // others, while between slices fds are closed and opened and a child holding one of
        // the sockets exits mid-walk.
        let mut keep = Vec::new();
        let mut churn = Vec::new();
        for _ in 0..3 {
            keep.push(std::net::UdpSocket::bind("127.0.0.1:0").unwrap());
            churn.extend((0..200).map(|_| std::fs::File::open("/dev/null").unwrap()));
        }
        let late = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let inode = |fd: i32| {
            let mut sb: libc::stat = unsafe { core::mem::zeroed() };
            assert_eq!(unsafe { libc::fstat(fd, &mut sb) }, 0);
            sb.st_ino
        };
        let mut inodes: Vec<u64> = keep.iter().map(|s| inode(s.as_raw_fd())).collect();
        inodes.push(inode(late.as_raw_fd()));
        let raw = late.as_raw_fd();
        let mut cmd = std::process::Command::new("sleep");
        cmd.arg("30");
        // SAFETY: dup2 is async-signal-safe; the child holds a copy as fd 9.
        unsafe {
            cmd.pre_exec(move || match libc::dup2(raw, 9) {
                -1 => Err(std::io::Error::last_os_error()),
                _ => Ok(()),
            });
        }
        let mut child = Some(cmd.spawn().unwrap());
        let root = ProcRoot::live();
        let mut o = Few::default();
        let slices = walk_cut(&root, &inodes, 5, &mut o, &mut |n| {
            if n % 3 == 0 {
                churn.truncate(churn.len().saturating_sub(10));
            } else {
                churn.push(std::fs::File::open("/dev/null").unwrap());
            }
            if n == 40 {
                if let Some(mut c) = child.take() {
                    let _ = c.kill();
                    let _ = c.wait();
                }
            }
        });
        if let Some(mut c) = child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        assert!(slices > 80, "{slices} slices");
        let me = std::process::id();
        for s in &keep {
            let fd = s.as_raw_fd() as u32;
            let ino = inode(s.as_raw_fd());
            let got: Vec<(u32, u32)> = o.of(ino).map(|o| (o.pid, o.fd)).collect();
            assert!(got.contains(&(me, fd)), "{ino}: {got:?}");
        }
        assert!(o.of(inodes[3]).any(|o| o.pid == me));
    }

    #[test]
    fn live_resume_goes_on_after_the_cut_fd_unless_the_pid_was_reused() {
        let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let ino = |s: &std::net::UdpSocket| {
            let mut sb: libc::stat = unsafe { core::mem::zeroed() };
            assert_eq!(unsafe { libc::fstat(s.as_raw_fd(), &mut sb) }, 0);
            sb.st_ino
        };
        let (low, high) = if a.as_raw_fd() < b.as_raw_fd() {
            (ino(&a), ino(&b))
        } else {
            (ino(&b), ino(&a))
        };
        let root = ProcRoot::live();
        let me = std::process::id();
        // Cut our own fd walk right after the lower socket.
        let seen = core::cell::Cell::new(false);
        let fds = pid::walk_socket_fds(
            &root,
            me,
            pid::FdCursor::START,
            &mut |_, i| seen.set(seen.get() || i == low),
            &mut || !seen.get(),
        )
        .unwrap()
        .expect("cut after the lower socket");
        let cut = Cursor {
            process: me,
            fds,
            starttime: starttime(&root, me),
        };
        assert!(cut.inside_a_process() && cut.starttime > 0);
        let mut o = Few::default();
        start_walk(&[low, high], &mut o);
        assert_eq!(
            walk_from(&root, cut, WalkMode::AllOwners, &mut || true, &mut o),
            None
        );
        assert!(
            !o.of(low).any(|o| o.pid == me),
            "re-read an fd before the cut"
        );
        assert!(o.of(high).any(|o| o.pid == me), "lost an fd after the cut");
        // Another process under the same PID (start time differs): walked from its first fd.
        let reused = Cursor {
            starttime: cut.starttime + 1,
            ..cut
        };
        start_walk(&[low, high], &mut o);
        assert_eq!(
            walk_from(&root, reused, WalkMode::AllOwners, &mut || true, &mut o),
            None
        );
        assert!(o.of(low).any(|o| o.pid == me) && o.of(high).any(|o| o.pid == me));
    }

    #[test]
    fn live_forked_child_shares_the_socket() {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut sb: libc::stat = unsafe { core::mem::zeroed() };
        assert_eq!(unsafe { libc::fstat(sock.as_raw_fd(), &mut sb) }, 0);
        let raw = sock.as_raw_fd();
        let mut cmd = std::process::Command::new("sleep");
        cmd.arg("30");
        // SAFETY: dup2 is async-signal-safe; it hands the child a non-CLOEXEC copy as fd 9.
        unsafe {
            cmd.pre_exec(move || {
                if libc::dup2(raw, 9) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().unwrap();
        // The child holds fd 9 once it has exec'd; wait for that (bounded).
        let mut o = Few::default();
        for _ in 0..200 {
            find_owners(&ProcRoot::live(), &[sb.st_ino], WalkMode::AllOwners, &mut o);
            let execd = o
                .of(sb.st_ino)
                .any(|o| o.pid == child.id() && o.comm.as_bytes() == b"sleep");
            if execd {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
        let got: Vec<u32> = o.of(sb.st_ino).map(|o| o.pid).collect();
        assert!(got.contains(&std::process::id()), "{got:?}");
        assert!(got.contains(&child.id()), "{got:?}");
        let c = o.of(sb.st_ino).find(|o| o.pid == child.id()).unwrap();
        assert_eq!((c.fd, c.comm.as_bytes()), (9, b"sleep".as_slice()));
    }
}
