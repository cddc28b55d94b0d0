//! Network namespaces: which distinct ones the box has (`/proc/PID/ns/net` identity), one
//! process to reach each through, and the names `ip netns` gave them (`/run/netns/NAME`).
//!
//! A namespace is named by the inode of its nsfs file, as `readlink /proc/PID/ns/net` prints
//! it (`net:[4026531840]`) and as `stat` of a `/run/netns` bind mount gives it.

use super::ProcRoot;
use super::pid;
use crate::sys::{self, CPath, Dir, Errno, Fd};

/// Most namespaces tracked; more are counted in `NetnsTable::dropped`. Anyone may make
/// network namespaces (`unshare -Urn`), so this is large and an entry small (16 bytes); the
/// scanner reads a bounded number of them per poll (`sockets::NETNS_PER_POLL`).
pub const MAX_NETNS: usize = 1024;
/// Most `/run/netns` names kept (root made those).
pub const MAX_NAMED: usize = 64;

/// One network namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Netns {
    /// nsfs inode: the identity every socket row carries as `netns`.
    pub inode: u64,
    /// A process living in it (0: only known from /run/netns).
    pub pid: u32,
}

/// The namespaces seen by the last `discover`, the agent's own first.
#[derive(Clone, Debug, Default)]
pub struct NetnsTable {
    pub list: heapless::Vec<Netns, MAX_NETNS>,
    /// The names `ip netns` gave (inode, name under /run/netns).
    pub names: heapless::Vec<(u64, heapless::String<64>), MAX_NAMED>,
    /// Inode of the namespace this process runs in (0 if unknown).
    pub home: u64,
    /// Sightings (one per process) of namespaces beyond MAX_NETNS, which are not read.
    pub dropped: u32,
}

impl NetnsTable {
    /// The name of namespace `inode`, if it has one.
    pub fn name_of(&self, inode: u64) -> Option<&str> {
        self.names
            .iter()
            .find(|n| n.0 == inode)
            .map(|n| n.1.as_str())
    }

    fn add(&mut self, inode: u64, pid: u32) -> Option<&mut Netns> {
        if let Some(i) = self.list.iter().position(|n| n.inode == inode) {
            return self.list.get_mut(i);
        }
        let n = Netns { inode, pid };
        if self.list.push(n).is_err() {
            self.dropped = self.dropped.saturating_add(1);
            return None;
        }
        self.list.last_mut()
    }
}

/// Parses `net:[4026531840]` (the target of a /proc/PID/ns/net link).
pub fn parse_ns_link(link: &[u8]) -> Option<u64> {
    let inner = link.strip_prefix(b"net:[")?.strip_suffix(b"]")?;
    super::parse_dec(inner)
}

/// Inode of the namespace `path` (an nsfs file or a bind mount of one) refers to.
pub fn inode_of_path(path: &CPath) -> Result<u64, Errno> {
    // SAFETY: path is NUL-terminated; st is a valid out-pointer.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    if unsafe { libc::stat(path.as_ptr(), &mut st) } != 0 {
        return Err(sys::errno());
    }
    Ok(st.st_ino)
}

/// Inode of the namespace the open nsfs file `fd` refers to.
pub fn inode_of_fd(fd: &Fd) -> Result<u64, Errno> {
    // SAFETY: st is a valid out-pointer.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    if unsafe { libc::fstat(fd.raw(), &mut st) } != 0 {
        return Err(sys::errno());
    }
    Ok(st.st_ino)
}

/// Opens this thread's own network namespace (kept to come back after a setns).
pub fn open_home() -> Result<Fd, Errno> {
    Fd::open_ro(&CPath::from_bytes(b"/proc/thread-self/ns/net")?)
        .or_else(|_| Fd::open_ro(&CPath::from_bytes(b"/proc/self/ns/net")?))
}

/// Opens namespace `ns` for setns: through its process when it has one (checking the process
/// still lives in it: PIDs get reused), else through its /run/netns name (`name`).
pub fn open_ns(root: &ProcRoot, ns: &Netns, name: Option<&str>) -> Result<Fd, Errno> {
    let fd = if ns.pid != 0 {
        Fd::open_ro(&root.pid_path(ns.pid, b"ns/net")?)?
    } else {
        let mut p = CPath::from_bytes(b"/run/netns/")?;
        p.push(name.ok_or(libc::ENOENT)?.as_bytes())?;
        Fd::open_ro(&p)?
    };
    if inode_of_fd(&fd)? != ns.inode {
        return Err(libc::ESRCH);
    }
    Ok(fd)
}

/// Fills `out` with every distinct network namespace: the caller's own (`home`, first), one
/// per distinct /proc/PID/ns/net, then the named ones of /run/netns (with `names`). Processes
/// whose ns link cannot be read (exited, not ours to see) are passed over.
pub fn discover(root: &ProcRoot, home: u64, names: bool, out: &mut NetnsTable) {
    out.list.clear();
    out.names.clear();
    out.dropped = 0;
    out.home = home;
    out.add(home, 0);
    let mut buf = [0u8; 64];
    let _ = pid::for_each_pid(root, &mut |p| {
        let Ok(path) = root.pid_path(p, b"ns/net") else {
            return;
        };
        if let Some(inode) = sys::readlink(&path, &mut buf).ok().and_then(parse_ns_link) {
            if let Some(n) = out.add(inode, p) {
                if n.pid == 0 && inode != home {
                    n.pid = p;
                }
            }
        }
    });
    if names {
        add_names(out);
    }
}

/// Names from /run/netns (ip netns): a bind mount of the namespace's nsfs file per name.
fn add_names(out: &mut NetnsTable) {
    let Ok(dir_path) = CPath::from_bytes(b"/run/netns") else {
        return;
    };
    let Ok(mut dir) = Dir::open(&dir_path) else {
        return;
    };
    while let Ok(Some(name)) = dir.next_name() {
        let mut p = dir_path.clone();
        if p.join(name).is_err() || name.len() > 64 {
            continue;
        }
        let Ok(inode) = inode_of_path(&p) else {
            continue;
        };
        // /run/netns is root's, but a name is still shown to people: keep it printable.
        let mut shown = heapless::String::<64>::new();
        for &c in name {
            let _ = shown.push(if (0x20..0x7f).contains(&c) {
                c as char
            } else {
                '?'
            });
        }
        if out.add(inode, 0).is_some() && out.name_of(inode).is_none() {
            let _ = out.names.push((inode, shown));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ns_link_parses() {
        assert_eq!(parse_ns_link(b"net:[4026531840]"), Some(4026531840));
        assert_eq!(parse_ns_link(b"mnt:[4026531840]"), None);
        assert_eq!(parse_ns_link(b"net:[]"), None);
        assert_eq!(parse_ns_link(b"net:[12"), None);
    }

    #[test]
    fn table_dedups_and_bounds() {
        let mut t = NetnsTable::default();
        for i in 0..(MAX_NETNS as u64 + 5) {
            t.add(100 + i, 1);
            t.add(100 + i, 2);
        }
        assert_eq!(t.list.len(), MAX_NETNS);
        assert_eq!(t.dropped, 10);
        assert_eq!(t.list[0].pid, 1);
        assert_eq!(t.name_of(100), None);
    }
}
