//! inode -> owning processes: one walk over PID/fd/* for a requested set of socket inodes.
//!
//! OWNER: processes. Tolerates PIDs that vanish or deny access mid-walk (counted, not fatal).

use crate::proc::ProcRoot;
use crate::proc::pid::Comm;

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
pub fn find_owners(root: &ProcRoot, inodes: &[u64], mode: WalkMode, out: &mut Owners) {
    let _ = (root, inodes, mode, out);
    todo!()
}
