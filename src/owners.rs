//! inode -> owning processes: one walk over PID/fd/* for a requested set of socket inodes.
//!
//! OWNER: processes. Tolerates PIDs that vanish or deny access mid-walk (counted, not fatal).

use crate::proc::ProcRoot;
use crate::proc::pid::{self, Comm};

/// Most owners kept per walk (a socket shared by many forked workers lists up to this many in all).
pub const MAX_OWNERS: usize = 64;

/// One process holding one of the requested sockets, through fd number `fd`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner {
    pub inode: u64,
    pub pid: u32,
    pub fd: u32,
    pub comm: Comm,
}

/// Stop as soon as every requested inode has one owner (agent fast path), or walk every
/// process so shared sockets list every holder (report).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalkMode {
    FirstOwner,
    AllOwners,
}

/// Result of a walk.
#[derive(Clone, Debug, Default)]
pub struct Owners {
    pub owners: heapless::Vec<Owner, MAX_OWNERS>,
    pub pids_scanned: u32,
    /// fd directories that could not be read (not root, or hidepid).
    pub pids_denied: u32,
    /// PIDs that exited between listing and reading.
    pub pids_vanished: u32,
    /// More owners existed than MAX_OWNERS.
    pub truncated: bool,
}

impl Owners {
    /// Owners of `inode`, in PID order.
    pub fn of(&self, inode: u64) -> impl Iterator<Item = &Owner> {
        self.owners.iter().filter(move |o| o.inode == inode)
    }
}

/// Walks ROOT/*/fd once and records the owners of `inodes` into `out` (cleared first).
///
/// Never fails: a PID whose fd directory is denied counts in `pids_denied`, one that exits
/// mid-walk (or lacks fd/) in `pids_vanished`; an unreadable root leaves `out` empty with
/// `pids_scanned` 0. A process holding a socket on several fds is one owner (its first fd seen).
/// Owners end up sorted by (inode, pid). Inode 0 (no socket) is never matched.
pub fn find_owners(root: &ProcRoot, inodes: &[u64], mode: WalkMode, out: &mut Owners) {
    *out = Owners::default();
    let wanted = |ino: u64| ino != 0 && inodes.contains(&ino);
    if !inodes.iter().any(|&i| wanted(i)) {
        return;
    }
    let _ = pid::for_each_pid_until(root, &mut |p| {
        out.pids_scanned += 1;
        // comm is read once per PID, and only if it holds a wanted socket.
        let mut comm: Option<Comm> = None;
        let mut truncated = false;
        let owners = &mut out.owners;
        let walked = pid::for_each_socket_fd(root, p, &mut |fd, ino| {
            if !wanted(ino) || owners.iter().any(|o| o.inode == ino && o.pid == p) {
                return;
            }
            let c = *comm.get_or_insert_with(|| pid::read_comm(root, p).unwrap_or_default());
            let owner = Owner {
                inode: ino,
                pid: p,
                fd,
                comm: c,
            };
            if owners.push(owner).is_err() {
                truncated = true;
            }
        });
        out.truncated |= truncated;
        match walked {
            Ok(()) => {}
            Err(libc::EACCES) | Err(libc::EPERM) => out.pids_denied += 1,
            // ENOENT/ESRCH: exited since the listing. Anything else: unreadable all the same.
            Err(_) => out.pids_vanished += 1,
        }
        match mode {
            WalkMode::AllOwners => !out.truncated,
            WalkMode::FirstOwner => !inodes
                .iter()
                .filter(|&&i| wanted(i))
                .all(|&i| out.owners.iter().any(|o| o.inode == i)),
        }
    });
    out.owners.sort_unstable_by_key(|o| (o.inode, o.pid));
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

    fn pids(o: &Owners, inode: u64) -> Vec<(u32, u32, Vec<u8>)> {
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
        let mut o = Owners::default();
        find_owners(&t.root(), &[77, 88], WalkMode::AllOwners, &mut o);
        let p77 = pids(&o, 77);
        assert_eq!(p77.len(), 2);
        assert_eq!((p77[0].0, p77[0].2.as_slice()), (200, b"parent".as_slice()));
        assert!(p77[0].1 == 3 || p77[0].1 == 9, "one owner per process");
        assert_eq!(p77[1], (300, 4, b"child".to_vec()));
        assert_eq!(pids(&o, 88), vec![(300, 5, b"child".to_vec())]);
        assert_eq!(o.pids_scanned, 3);
        assert_eq!((o.pids_denied, o.pids_vanished, o.truncated), (0, 0, false));
        let sorted: Vec<_> = o.owners.iter().map(|o| (o.inode, o.pid)).collect();
        let mut want = sorted.clone();
        want.sort();
        assert_eq!(sorted, want);
    }

    #[test]
    fn first_owner_stops_early_and_gaps_are_counted() {
        let t = Tree::new("first");
        t.pid(10, "a", &[(3, "socket:[5]")]);
        t.pid(11, "b", &[(3, "socket:[5]")]);
        // A PID directory without fd/ (exited mid-walk, or a garbled tree).
        std::fs::create_dir_all(t.path().join("12")).unwrap();
        let mut o = Owners::default();
        find_owners(&t.root(), &[5], WalkMode::FirstOwner, &mut o);
        assert_eq!(o.of(5).count(), 1);
        find_owners(&t.root(), &[5], WalkMode::AllOwners, &mut o);
        assert_eq!(o.of(5).count(), 2);
        assert_eq!(o.pids_vanished, 1);
        // Nothing asked for: no walk at all.
        find_owners(&t.root(), &[0], WalkMode::AllOwners, &mut o);
        assert_eq!((o.owners.len(), o.pids_scanned), (0, 0));
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
        let mut o = Owners::default();
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
