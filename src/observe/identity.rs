//! Who a process really is, beyond the name it gave itself: the file it runs (device and inode
//! of /proc/PID/exe, compared with stat() of the configured path as root sees it) and the
//! account it runs as. Rules with a process action match on these; `comm` alone is a name any
//! user can take (`prctl(PR_SET_NAME)`), and the text of /proc/PID/exe is a path any user can
//! reproduce inside their own user and mount namespace.
//!
//! No allocation (the agent resolves owners in its poll loop): /etc/passwd is
//! streamed through `LineReader`, paths are `CPath`s.

use crate::observe::proc::{LineReader, ProcRoot, fields};
use crate::sys::{self, CPath};

/// A file's identity: its device and inode (what stat() reports, following links).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
}

/// stat(2) of `path` (following links): the identity of the file it names, None if it cannot
/// be examined.
pub fn stat_id(path: &CPath) -> Option<FileId> {
    // SAFETY: path is NUL-terminated; st is a valid out-pointer.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    if unsafe { libc::stat(path.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some(FileId {
        dev: st.st_dev,
        ino: st.st_ino,
    })
}

/// The identity of the program `pid` runs: stat() of ROOT/PID/exe, which the kernel resolves to
/// the executable's inode even when its path is in another mount namespace or was deleted.
/// None for kernel threads, vanished PIDs, or without permission.
pub fn exe_id(root: &ProcRoot, pid: u32) -> Option<FileId> {
    stat_id(&root.pid_path(pid, b"exe").ok()?)
}

/// The identity of the configured `path` (absolute), as root sees it now. None if it is not
/// an absolute path or does not exist.
pub fn path_id(path: &str) -> Option<FileId> {
    if !path.starts_with('/') {
        return None;
    }
    stat_id(&CPath::from_bytes(path.as_bytes()).ok()?)
}

/// The uid `pid` runs as, when it is one uid: the real, effective, saved and filesystem uids
/// of /proc/PID/status all equal. None when they differ (a setuid program started by another
/// user is not that user, nor root), or when the status cannot be read.
pub fn uid_of(root: &ProcRoot, pid: u32, buf: &mut [u8]) -> Option<u32> {
    let fd = crate::sys::safefile::open_read(&root.pid_path(pid, b"status").ok()?).ok()?;
    let mut r = LineReader::new(fd, buf);
    while let Some(line) = r.next_line() {
        let Ok(line) = line else { continue };
        let Some(rest) = line.text.strip_prefix(b"Uid:") else {
            continue;
        };
        let mut it = fields(rest).map(sys::parse_u32);
        let first = it.next()??;
        let mut n = 1;
        for u in it {
            if u? != first {
                return None;
            }
            n += 1;
        }
        return (n == 4).then_some(first);
    }
    None
}

/// Where user names are looked up.
pub const PASSWD: &str = "/etc/passwd";

/// The uid of user `name` in `passwd_path` (`name:x:UID:...` lines), None if absent. Streams
/// the file through a stack buffer; NSS sources (LDAP, ...) are not consulted: a router's
/// daemons are local accounts, and `uid` takes a number where they are not.
pub fn lookup_user(passwd_path: &str, name: &str) -> Option<u32> {
    if name.is_empty() || name.contains(':') {
        return None;
    }
    let fd =
        crate::sys::safefile::open_read(&CPath::from_bytes(passwd_path.as_bytes()).ok()?).ok()?;
    let mut buf = [0u8; 512];
    let mut r = LineReader::new(fd, &mut buf);
    while let Some(line) = r.next_line() {
        let Ok(line) = line else { continue };
        let mut parts = line.text.split(|&b| b == b':');
        if parts.next() != Some(name.as_bytes()) {
            continue;
        }
        parts.next()?;
        return sys::parse_u32(parts.next()?);
    }
    None
}

/// What `check` says about a rule whose process action could hit a process other than the
/// daemon meant (exit status stays 0: the rule is valid, its reach is the operator's call).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// Absolute exe, no uid: any account that may execute the file can start a match.
    AnyUserOfExe,
    /// A non-root uid and no absolute exe: any process of that account with the name matches.
    AnyProcessOfUid(u32),
}

impl core::fmt::Display for Reach {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Reach::AnyUserOfExe => f.write_str(
                "matches a process of ANY user that runs this \"exe\" (whoever may execute the file can start one and have it acted on); add \"user\" or \"uid\" for the account the daemon runs as",
            ),
            Reach::AnyProcessOfUid(u) => write!(
                f,
                "matches any process of uid {u} with that name (the account can start impostors); add \"exe\" with the daemon's absolute path"
            ),
        }
    }
}

/// Whether a rule with a process action (`targets_owner`), naming `exe` and `uid`, could act
/// on an impostor; None when its identity is tight (absolute exe and uid, or names with uid 0).
pub fn reach(targets_owner: bool, exe: Option<&str>, uid: Option<u32>) -> Option<Reach> {
    if !targets_owner {
        return None;
    }
    // (An exe that does not exist here is not reported: configs are checked at image build
    // time, on a host without the router's binaries.)
    let abs = exe.filter(|e| e.starts_with('/'));
    match (abs, uid) {
        (Some(_), None) => Some(Reach::AnyUserOfExe),
        (None, Some(u)) if u != 0 => Some(Reach::AnyProcessOfUid(u)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_uid_0_and_unknown_users_are_none() {
        assert_eq!(lookup_user(PASSWD, "root"), Some(0));
        assert_eq!(lookup_user(PASSWD, "no-such-user-gw"), None);
        assert_eq!(lookup_user(PASSWD, ""), None);
        assert_eq!(lookup_user(PASSWD, "root:x"), None);
    }

    #[test]
    fn own_exe_and_uid() {
        let root = ProcRoot::live();
        let me = std::process::id();
        let exe = std::env::current_exe().unwrap();
        assert_eq!(exe_id(&root, me), path_id(exe.to_str().unwrap()));
        assert!(exe_id(&root, me).is_some());
        assert_eq!(path_id("relative/path"), None);
        let mut buf = [0u8; 1024];
        // SAFETY: getuid has no preconditions.
        assert_eq!(uid_of(&root, me, &mut buf), Some(unsafe { libc::getuid() }));
    }
}
