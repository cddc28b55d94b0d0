//! Per-process readers: comm, status (VmRSS, Uid), stat (starttime), exe, fd/.
//!
//! A PID that vanishes mid-read is Err(Io(ENOENT|ESRCH)), never a panic.

use super::{LineReader, ProcError, ProcRoot, fields, parse_dec};
use crate::sys::{self, Dir, Errno};
use core::fmt;

/// A task's comm (at most 15 bytes, kernel TASK_COMM_LEN - 1). Raw bytes: may hold
/// control characters or invalid UTF-8; escaping is the writers' job.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Comm {
    bytes: [u8; 16],
    len: u8,
}

impl Comm {
    /// Takes at most 16 bytes of `b` without the one newline /proc/PID/comm ends with. A
    /// newline inside the name (a process may call itself "a\nb") is kept: the writers escape
    /// it, and dropping what follows would hide part of the name.
    pub fn from_bytes(b: &[u8]) -> Comm {
        let b = b.strip_suffix(b"\n").unwrap_or(b);
        let n = b.len().min(16);
        let mut c = Comm {
            bytes: [0; 16],
            len: n as u8,
        };
        c.bytes[..n].copy_from_slice(&b[..n]);
        c
    }
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

impl fmt::Debug for Comm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Comm({:?})",
            crate::sys::Lossy(self.as_bytes()).to_string()
        )
    }
}

/// The parts of /proc/PID/status ghostwatch uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Status {
    pub name: Comm,
    pub tgid: u32,
    pub ppid: u32,
    /// Real uid (first of the four Uid values).
    pub uid: u32,
    /// None for kernel threads (no VmRSS line).
    pub vm_rss_kb: Option<u64>,
}

/// The parts of /proc/PID/stat ghostwatch uses (comm may contain ')' and spaces).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stat {
    pub state: u8,
    pub ppid: u32,
    /// Field 9, the kernel's PF_* flags (PF_KTHREAD marks a kernel thread).
    pub flags: u64,
    /// Clock ticks since boot when the process started: with the PID, identifies it across reuse.
    pub starttime: u64,
}

/// PF_KTHREAD in /proc/PID/stat's flags (include/linux/sched.h, stable since 2.6.27).
pub const PF_KTHREAD: u64 = 0x0020_0000;

impl Stat {
    /// True for a kernel thread (never a target for a signal).
    pub fn is_kernel_thread(&self) -> bool {
        self.flags & PF_KTHREAD != 0
    }
}

/// /proc/PID/comm (the kernel's task name, at most 15 bytes plus a newline).
/// Returns Err(errno): ENOENT/ESRCH if the PID is gone, EACCES if not permitted.
pub fn read_comm(root: &ProcRoot, pid: u32) -> Result<Comm, Errno> {
    let mut buf = [0u8; 32];
    let got = sys::read_file(&root.pid_path(pid, b"comm")?, &mut buf)?;
    Ok(Comm::from_bytes(got))
}

/// The value after "Key:" in a status line, trimmed of the tab/spaces the kernel pads with.
fn status_value<'l>(line: &'l [u8], key: &[u8]) -> Option<&'l [u8]> {
    let rest = line.strip_prefix(key)?.strip_prefix(b":")?;
    let start = rest.iter().position(|&c| c != b' ' && c != b'\t')?;
    Some(&rest[start..])
}

/// The resident set of a process in kB from /proc/PID/statm (`size resident shared text lib
/// data dt`, in pages): the count status prints as VmRSS, at a fraction of the kernel's cost
/// (seven numbers instead of ~55 formatted lines; 13 vs 18 ms for 570 processes here).
/// Ok(None) for a task without memory (kernel thread, zombie: every field 0).
pub fn read_statm_rss_kb(
    root: &ProcRoot,
    pid: u32,
    page_size: u64,
) -> Result<Option<u64>, ProcError> {
    let mut buf = [0u8; 128];
    let text = sys::read_file(
        &root.pid_path(pid, b"statm").map_err(ProcError::Io)?,
        &mut buf,
    )
    .map_err(ProcError::Io)?;
    parse_statm(text, page_size)
}

/// Parses a statm text (see `read_statm_rss_kb`).
pub fn parse_statm(text: &[u8], page_size: u64) -> Result<Option<u64>, ProcError> {
    let bad = |what| ProcError::Malformed { line: 1, what };
    let mut f = fields(text);
    let size = f.next().and_then(parse_dec).ok_or(bad("statm size"))?;
    let resident = f.next().and_then(parse_dec).ok_or(bad("statm resident"))?;
    Ok((size != 0).then(|| resident.saturating_mul(page_size) / 1024))
}

/// /proc/PID/status, read through `buf` (1 KiB is plenty per line).
/// Returns Err(Io(errno)) if the file cannot be read (ENOENT/ESRCH: PID gone; EACCES: denied),
/// Err(Missing(..)) if Name, Tgid, PPid or Uid is absent, Err(Malformed) for an unparsable value.
/// Over-long lines (e.g. Cpus_allowed on huge machines) are skipped: none of them is needed.
pub fn read_status(root: &ProcRoot, pid: u32, buf: &mut [u8]) -> Result<Status, ProcError> {
    let fd =
        crate::sys::safefile::open_read(&root.pid_path(pid, b"status").map_err(ProcError::Io)?)
            .map_err(ProcError::Io)?;
    parse_status(fd, buf)
}

/// Parses a status file from `src` through `buf` (see `read_status`; fuzzed in fuzz/).
pub fn parse_status<S: super::Source>(src: S, buf: &mut [u8]) -> Result<Status, ProcError> {
    let mut r = LineReader::new(src, buf);
    let mut st = Status::default();
    let (mut name, mut tgid, mut ppid, mut uid) = (false, false, false, false);
    while let Some(line) = r.next_line() {
        let line = match line {
            Ok(l) => l,
            Err(ProcError::LineTooLong { .. }) => continue,
            Err(e) => return Err(e),
        };
        let bad = |what| ProcError::Malformed {
            line: line.no,
            what,
        };
        let t = line.text;
        if let Some(v) = t.strip_prefix(b"Name:") {
            // The name may legitimately start with spaces; only the kernel's tab is padding.
            st.name = Comm::from_bytes(v.strip_prefix(b"\t").unwrap_or(v));
            name = true;
        } else if let Some(v) = status_value(t, b"Tgid") {
            st.tgid = sys::parse_u32(v).ok_or(bad("Tgid"))?;
            tgid = true;
        } else if let Some(v) = status_value(t, b"PPid") {
            st.ppid = sys::parse_u32(v).ok_or(bad("PPid"))?;
            ppid = true;
        } else if let Some(v) = status_value(t, b"Uid") {
            st.uid = fields(v)
                .next()
                .and_then(sys::parse_u32)
                .ok_or(bad("Uid"))?;
            uid = true;
        } else if let Some(v) = status_value(t, b"VmRSS") {
            let mut f = fields(v);
            let kb = f.next().and_then(parse_dec).ok_or(bad("VmRSS"))?;
            if f.next() != Some(b"kB".as_slice()) {
                return Err(bad("VmRSS unit"));
            }
            st.vm_rss_kb = Some(kb);
        }
    }
    for (seen, what) in [(name, "Name"), (tgid, "Tgid"), (ppid, "PPid"), (uid, "Uid")] {
        if !seen {
            return Err(ProcError::Missing(what));
        }
    }
    Ok(st)
}

/// /proc/PID/stat through `buf` (512 bytes hold the first 22 fields of any kernel's line).
/// The comm field may hold spaces and ')', so fields are counted after the LAST ')'.
/// Returns Err(Io(errno)) if unreadable, Err(Malformed) if state, ppid or starttime is missing.
pub fn read_stat(root: &ProcRoot, pid: u32, buf: &mut [u8]) -> Result<Stat, ProcError> {
    let path = root.pid_path(pid, b"stat").map_err(ProcError::Io)?;
    let text = sys::read_file(&path, buf).map_err(ProcError::Io)?;
    parse_stat(text)
}

/// Parses the text of a stat file (see `read_stat`).
pub fn parse_stat(text: &[u8]) -> Result<Stat, ProcError> {
    let bad = |what| ProcError::Malformed { line: 1, what };
    let close = text.iter().rposition(|&c| c == b')').ok_or(bad("comm"))?;
    // Field 3 (state) is the first after the comm; starttime is field 22.
    let mut f = fields(&text[close + 1..]);
    let state = match f.next() {
        Some([s]) => *s,
        _ => return Err(bad("state")),
    };
    let ppid = f.next().and_then(sys::parse_u32).ok_or(bad("ppid"))?;
    // Fields 5-8 (pgrp, session, tty_nr, tpgid), then 9: flags.
    let flags = f.nth(4).and_then(parse_dec).ok_or(bad("flags"))?;
    let starttime = f.nth(12).and_then(parse_dec).ok_or(bad("starttime"))?;
    Ok(Stat {
        state,
        ppid,
        flags,
        starttime,
    })
}

/// Target of /proc/PID/exe (" (deleted)" suffix kept as the kernel shows it).
/// Err(ENOENT) for kernel threads and gone PIDs, Err(EACCES) for other users' processes.
pub fn read_exe<'b>(root: &ProcRoot, pid: u32, buf: &'b mut [u8]) -> Result<&'b [u8], Errno> {
    sys::readlink(&root.pid_path(pid, b"exe")?, buf)
}

/// Calls `f(pid)` for every numeric entry of the proc root. Err only if the root is unreadable.
pub fn for_each_pid(root: &ProcRoot, f: &mut dyn FnMut(u32)) -> Result<(), Errno> {
    for_each_pid_until(root, &mut |pid| {
        f(pid);
        true
    })
}

/// Like `for_each_pid`, but stops as soon as `f` returns false (e.g. every owner found).
/// Err(errno) if the root cannot be opened or listed.
pub fn for_each_pid_until(root: &ProcRoot, f: &mut dyn FnMut(u32) -> bool) -> Result<(), Errno> {
    let mut dir = Dir::open(root.dir())?;
    while let Some(name) = dir.next_name()? {
        // Non-numeric entries are files like meminfo, and "self"/"thread-self" links.
        if let Some(pid) = sys::parse_u32(name) {
            if pid != 0 && !f(pid) {
                break;
            }
        }
    }
    Ok(())
}

/// Calls `f(fd, inode)` for every fd of PID whose link reads `socket:[INODE]`.
/// Err(EACCES) if the fd directory may not be read, Err(ENOENT) if the PID is gone.
/// Fds closed during the walk are skipped; links that are not sockets are ignored.
pub fn for_each_socket_fd(
    root: &ProcRoot,
    pid: u32,
    f: &mut dyn FnMut(u32, u64),
) -> Result<(), Errno> {
    walk_socket_fds(root, pid, FdCursor::START, f, &mut || true).map(|_| ())
}

/// Where a walk of one process's fd directory stopped, to go on from there in a later call.
///
/// On the live /proc it is the directory position after the last fd handled (the kernel lists
/// a process's fds in ascending order, and a position means "the next open fd from here", so
/// it stays valid across opens however the table changes) plus that fd, which is never read
/// twice. In a tree under --proc-root it is the number of entries handled (a listing order
/// stays the same only while the tree does, as for `owners::walk_from`'s process cursor).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FdCursor {
    handled: u32,
    pos: i64,
    last_fd: u32,
}

impl FdCursor {
    /// Before the first fd.
    pub const START: FdCursor = FdCursor {
        handled: 0,
        pos: 0,
        last_fd: 0,
    };

    pub fn at_start(&self) -> bool {
        self.handled == 0
    }
}

impl Default for FdCursor {
    fn default() -> FdCursor {
        FdCursor::START
    }
}

/// `for_each_socket_fd` from `from`, and interruptible: `go_on()` is asked after every fd whose
/// link was read; false stops the walk and returns Ok(Some(cursor)) to resume from. Ok(None):
/// the walk reached the end of the fd table. Fds opened below the cursor after it was taken
/// are not seen (a later walk sees them); nothing is known about an fd but what its readlink
/// says at that moment. Errors as `for_each_socket_fd` (a PID gone since the cut: ENOENT).
pub fn walk_socket_fds(
    root: &ProcRoot,
    pid: u32,
    from: FdCursor,
    f: &mut dyn FnMut(u32, u64),
    go_on: &mut dyn FnMut() -> bool,
) -> Result<Option<FdCursor>, Errno> {
    let mut path = root.pid_path(pid, b"fd")?;
    let mut dir = Dir::open(&path)?;
    let live = root.is_live();
    let mut at = from;
    if live && !from.at_start() {
        dir.seek(from.pos);
    }
    let base = path.len();
    let mut link = [0u8; 64];
    let mut skip = if live { 0 } else { from.handled };
    while let Some(name) = dir.next_name()? {
        if skip > 0 {
            skip -= 1;
            continue;
        }
        at.handled = at.handled.saturating_add(1);
        let Some(fd) = sys::parse_u32(name) else {
            continue;
        };
        // Ascending on the live /proc: an fd at or below the cursor was handled already.
        if live && !from.at_start() && fd <= from.last_fd {
            continue;
        }
        path.truncate(base);
        path.join_u32(fd)?;
        match sys::readlink(&path, &mut link) {
            Ok(target) => {
                if let Some(inode) = parse_socket_link(target) {
                    f(fd, inode);
                }
            }
            // Closed since the listing, or a path too long to be a socket link.
            Err(libc::ENOENT) | Err(libc::ENAMETOOLONG) => {}
            Err(e) => return Err(e),
        }
        if !go_on() {
            at.pos = dir.tell();
            at.last_fd = fd;
            return Ok(Some(at));
        }
    }
    Ok(None)
}

/// Parses `socket:[12345]` into 12345 (None for any other link text).
pub fn parse_socket_link(link: &[u8]) -> Option<u64> {
    let digits = link.strip_prefix(b"socket:[")?.strip_suffix(b"]")?;
    parse_dec(digits)
}

#[cfg(test)]
mod tests {
    #[test]
    fn statm_gives_the_resident_set_and_none_for_a_task_without_memory() {
        // A shell on 6.18 (pages of 4 KiB): resident 1 023 pages = 4 092 kB, as its VmRSS.
        assert_eq!(
            parse_statm(b"2571 1023 769 253 0 253 0\n", 4096),
            Ok(Some(4092))
        );
        // A kernel thread or a zombie: every field 0.
        assert_eq!(parse_statm(b"0 0 0 0 0 0 0\n", 4096), Ok(None));
        assert!(parse_statm(b"", 4096).is_err());
        assert!(parse_statm(b"12 x 3\n", 4096).is_err());
        assert_eq!(
            parse_statm(b"1 18446744073709551615\n", 4096),
            Ok(Some(u64::MAX / 1024))
        );
        // The live kernel agrees with status's VmRSS for this process (both read now).
        let root = ProcRoot::live();
        let me = std::process::id();
        let kb = read_statm_rss_kb(&root, me, sys::page_size())
            .unwrap()
            .unwrap();
        let mut buf = [0u8; 1024];
        let st = read_status(&root, me, &mut buf).unwrap().vm_rss_kb.unwrap();
        assert!(kb.abs_diff(st) < 1024, "statm {kb} kB vs status {st} kB");
    }

    use super::*;
    use std::os::unix::io::AsRawFd;

    fn me() -> u32 {
        std::process::id()
    }

    #[test]
    fn socket_links() {
        assert_eq!(parse_socket_link(b"socket:[27123]"), Some(27123));
        assert_eq!(parse_socket_link(b"socket:[]"), None);
        assert_eq!(parse_socket_link(b"socket:[12"), None);
        assert_eq!(parse_socket_link(b"pipe:[12]"), None);
        assert_eq!(parse_socket_link(b"/dev/null"), None);
        assert_eq!(parse_socket_link(b"socket:[1a]"), None);
    }

    #[test]
    fn stat_comm_with_parens_and_spaces() {
        let line = b"3218 (a) b) (c) S 1 3218 3218 0 -1 4202816 1 0 0 0 0 0 0 0 20 0 1 0 2931 \
                     115920896 573 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 17 2 0 0 0 0 0\n";
        let st = parse_stat(line).unwrap();
        assert_eq!(
            st,
            Stat {
                state: b'S',
                ppid: 1,
                flags: 4202816,
                starttime: 2931
            }
        );
        assert!(parse_stat(b"1 (x) S 0 1 1").is_err());
        assert!(parse_stat(b"1 (x S 0").is_err());
        assert!(parse_stat(b"").is_err());
    }

    #[test]
    fn reads_self_from_live_proc() {
        let root = ProcRoot::live();
        let comm = read_comm(&root, me()).unwrap();
        assert!(!comm.as_bytes().is_empty() && comm.as_bytes().len() <= 15);
        let mut buf = [0u8; 1024];
        let st = read_status(&root, me(), &mut buf).unwrap();
        assert_eq!(st.tgid, me());
        assert_eq!(st.name, comm);
        assert_eq!(st.uid, unsafe { libc::getuid() });
        assert!(st.vm_rss_kb.unwrap_or(0) > 0);
        let stat = read_stat(&root, me(), &mut buf).unwrap();
        assert_eq!(stat.ppid, st.ppid);
        assert!(stat.starttime > 0);
        let mut exe = [0u8; 512];
        assert!(read_exe(&root, me(), &mut exe).unwrap().starts_with(b"/"));
        let mut found = false;
        for_each_pid(&root, &mut |p| found |= p == me()).unwrap();
        assert!(found);
    }

    #[test]
    fn kernel_thread_has_no_rss() {
        // PID 2 is kthreadd on every Linux since 2.6; skip quietly inside odd PID namespaces.
        let root = ProcRoot::live();
        let mut buf = [0u8; 1024];
        if let Ok(st) = read_status(&root, 2, &mut buf) {
            if st.name.as_bytes() == b"kthreadd" {
                assert_eq!(st.vm_rss_kb, None);
                assert!(read_stat(&root, 2, &mut buf).unwrap().is_kernel_thread());
            }
        }
        assert!(!read_stat(&root, me(), &mut buf).unwrap().is_kernel_thread());
    }

    #[test]
    fn finds_own_socket_fd() {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut sb: libc::stat = unsafe { core::mem::zeroed() };
        assert_eq!(unsafe { libc::fstat(sock.as_raw_fd(), &mut sb) }, 0);
        let mut hits = Vec::new();
        for_each_socket_fd(&ProcRoot::live(), me(), &mut |fd, ino| {
            if ino == sb.st_ino {
                hits.push(fd)
            }
        })
        .unwrap();
        assert_eq!(hits, vec![sock.as_raw_fd() as u32]);
    }

    #[test]
    fn fd_positions_survive_reopening_and_a_cut_walk_resumes_at_the_next_fd() {
        let socks: Vec<std::net::UdpSocket> = (0..40)
            .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        let mut ours: Vec<u32> = socks.iter().map(|s| s.as_raw_fd() as u32).collect();
        ours.sort_unstable();
        let root = ProcRoot::live();
        // What `walk_socket_fds` relies on: a position from one open of the directory, given
        // to a fresh open, lists from the entry after it.
        let path = root.pid_path(me(), b"fd").unwrap();
        let mut d = Dir::open(&path).unwrap();
        let mut names = Vec::new();
        while let Some(n) = d.next_name().unwrap() {
            names.push(n.to_vec());
            if names.len() == 10 {
                break;
            }
        }
        let pos = d.tell();
        let tenth = sys::parse_u32(&names[9]).unwrap();
        drop(d);
        let mut d = Dir::open(&path).unwrap();
        d.seek(pos);
        let next = sys::parse_u32(d.next_name().unwrap().unwrap()).unwrap();
        assert!(next > tenth, "{next} after {tenth}");
        // Cut after every fd: each of our sockets is reported exactly once, in fd order.
        let (mut from, mut got, mut slices) = (Some(FdCursor::START), Vec::new(), 0);
        while let Some(f) = from {
            from =
                walk_socket_fds(&root, me(), f, &mut |fd, _| got.push(fd), &mut || false).unwrap();
            slices += 1;
        }
        got.retain(|fd| ours.contains(fd));
        assert_eq!(got, ours);
        assert!(slices > ours.len());
    }

    #[test]
    fn missing_pid_is_enoent() {
        let root = ProcRoot::live();
        // PIDs never exceed 2^22 (PID_MAX_LIMIT).
        let gone = 4_194_304 + 17;
        assert_eq!(read_comm(&root, gone), Err(libc::ENOENT));
        let mut buf = [0u8; 256];
        assert_eq!(
            read_status(&root, gone, &mut buf),
            Err(ProcError::Io(libc::ENOENT))
        );
        assert_eq!(
            for_each_socket_fd(&root, gone, &mut |_, _| {}),
            Err(libc::ENOENT)
        );
    }
}
