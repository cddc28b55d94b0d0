//! Per-process readers: comm, cmdline, status (VmRSS, Uid), stat (starttime), exe, fd/.
//!
//! OWNER: processes. A PID that vanishes mid-read is Err(Io(ENOENT|ESRCH)), never a panic.

use super::{ProcError, ProcRoot};
use crate::sys::Errno;
use core::fmt;

/// A task's comm (at most 15 bytes, kernel TASK_COMM_LEN - 1). Raw bytes: may hold
/// control characters or invalid UTF-8; escaping is the writers' job.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Comm {
    bytes: [u8; 16],
    len: u8,
}

impl Comm {
    /// Takes at most 16 bytes of `b`, stopping at a newline.
    pub fn from_bytes(b: &[u8]) -> Comm {
        let b = match b.iter().position(|&c| c == b'\n') {
            Some(i) => &b[..i],
            None => b,
        };
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
    /// Clock ticks since boot when the process started: with the PID, identifies it across reuse.
    pub starttime: u64,
}

pub fn read_comm(root: &ProcRoot, pid: u32) -> Result<Comm, Errno> {
    let _ = (root, pid);
    todo!()
}

/// /proc/PID/status, read through `buf` (1 KiB is plenty per line).
pub fn read_status(root: &ProcRoot, pid: u32, buf: &mut [u8]) -> Result<Status, ProcError> {
    let _ = (root, pid, buf);
    todo!()
}

pub fn read_stat(root: &ProcRoot, pid: u32, buf: &mut [u8]) -> Result<Stat, ProcError> {
    let _ = (root, pid, buf);
    todo!()
}

/// /proc/PID/cmdline with NULs turned into spaces (trailing one dropped); cut to `buf`.
pub fn read_cmdline<'b>(root: &ProcRoot, pid: u32, buf: &'b mut [u8]) -> Result<&'b [u8], Errno> {
    let _ = (root, pid, buf);
    todo!()
}

/// Target of /proc/PID/exe (" (deleted)" suffix kept as the kernel shows it).
pub fn read_exe<'b>(root: &ProcRoot, pid: u32, buf: &'b mut [u8]) -> Result<&'b [u8], Errno> {
    let _ = (root, pid, buf);
    todo!()
}

/// Calls `f(pid)` for every numeric entry of the proc root. Err only if the root is unreadable.
pub fn for_each_pid(root: &ProcRoot, f: &mut dyn FnMut(u32)) -> Result<(), Errno> {
    let _ = (root, f);
    todo!()
}

/// Calls `f(fd, inode)` for every fd of PID whose link reads `socket:[INODE]`.
/// Err(EACCES) if the fd directory may not be read, Err(ENOENT) if the PID is gone.
pub fn for_each_socket_fd(
    root: &ProcRoot,
    pid: u32,
    f: &mut dyn FnMut(u32, u64),
) -> Result<(), Errno> {
    let _ = (root, pid, f);
    todo!()
}

/// Parses `socket:[12345]` into 12345.
pub fn parse_socket_link(link: &[u8]) -> Option<u64> {
    let _ = link;
    todo!()
}
