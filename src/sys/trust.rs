//! Which files ghostwatch may obey: the config decides what runs as root, so it must be a
//! regular file that only root can change, reached through directories only root can change.
//!
//! Nothing here allocates (config loading is proven allocation-free) and no
//! open can block: a FIFO planted where the config should be is refused, never waited on.
//!
//! The rules (OpenSSH's StrictModes, with the sticky-directory rule of sudo and systemd):
//! - the file and every directory above it are owned by root (or by the user running
//!   ghostwatch, when that is not root: such a run cannot do more than that user can);
//! - none of them is writable by group or others. A root-owned directory with the sticky bit
//!   (`/tmp`, mode 1777) is accepted: others may add entries there but cannot rename or remove
//!   root's, and everything below it is checked the same way;
//! - no component is a symbolic link, and the file is a regular file (not a FIFO, device or
//!   directory), opened `O_NOFOLLOW|O_NONBLOCK` and re-checked through the open descriptor.

// Errors carry the path inline (no heap, by design), as config errors do.
#![allow(clippy::result_large_err)]

use crate::sys::{self, CPath, Errno, Fd};
use core::fmt;

/// Why a file is not trusted. Display says what is wrong and how to fix it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Distrust {
    /// A system call failed on the file itself (ENOENT, EACCES, ...).
    Io(Errno),
    /// The file (or a directory on its path, `dir` true) is a symbolic link.
    Symlink { dir: bool },
    /// The file is a FIFO, socket, device or directory.
    NotRegular { kind: &'static str },
    /// Owned by this uid, which is neither root nor the user running ghostwatch.
    Owner { uid: u32, dir: bool },
    /// Group or others may write it (`mode` is the permission bits).
    Writable { mode: u32, dir: bool },
    /// Larger than the caller's limit (bytes).
    TooBig { size: u64, max: u64 },
}

/// A `Distrust` about `path`, where `at` is the length of the path prefix it concerns (the
/// whole path for the file, a shorter prefix for a directory on the way).
#[derive(Clone, Debug)]
pub struct TrustError {
    pub path: CPath,
    pub at: usize,
    pub why: Distrust,
}

impl fmt::Display for TrustError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = sys::Lossy(self.path.as_bytes());
        let part = sys::Lossy(self.path.as_bytes().get(..self.at).unwrap_or(&[]));
        match self.why {
            Distrust::Io(e) => write!(
                f,
                "cannot read the config: {} (errno {e})",
                sys::strerror(e)
            ),
            Distrust::Symlink { dir: false } => write!(
                f,
                "refusing a config that is a symbolic link (whoever can change the link chooses what runs as root); fix: give -c the real file's path"
            ),
            Distrust::Symlink { dir: true } => write!(
                f,
                "refusing a config reached through the symbolic link {part}; fix: give -c the real path"
            ),
            Distrust::NotRegular { kind } => write!(
                f,
                "refusing a config that is {kind}, not a regular file; fix: point -c at a regular file"
            ),
            Distrust::Owner { uid, dir: false } => write!(
                f,
                "refusing a config owned by uid {uid}, not root (its owner could make ghostwatch run anything as root); fix: chown root:root {whole}"
            ),
            Distrust::Owner { uid, dir: true } => write!(
                f,
                "refusing a config in {part}, a directory owned by uid {uid}, not root (its owner could replace the config); fix: chown root:root {part}, or move the config to a root-owned directory"
            ),
            Distrust::Writable { mode, dir: false } => write!(
                f,
                "refusing a config that group or others can write (mode {mode:04o}); fix: chmod go-w {whole}"
            ),
            Distrust::Writable { mode, dir: true } => write!(
                f,
                "refusing a config in {part}, a directory group or others can write (mode {mode:04o}), so they could replace it; fix: chmod go-w {part}, or move the config"
            ),
            Distrust::TooBig { max, .. } => write!(
                f,
                "the config is larger than {max} bytes (MAX_FILE); remove unused rules"
            ),
        }
    }
}

/// lstat(2) into a zeroed struct. Returns Err(errno).
fn lstat(p: &CPath) -> Result<libc::stat, Errno> {
    // SAFETY: p is NUL-terminated; st is a valid out-pointer.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    if unsafe { libc::lstat(p.as_ptr(), &mut st) } != 0 {
        return Err(sys::errno());
    }
    Ok(st)
}

/// fstat(2) of an open descriptor. Returns Err(errno).
pub fn fstat(fd: &Fd) -> Result<libc::stat, Errno> {
    // SAFETY: st is a valid out-pointer; fd is open.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    if unsafe { libc::fstat(fd.raw(), &mut st) } != 0 {
        return Err(sys::errno());
    }
    Ok(st)
}

/// What a file type is called in messages ("a FIFO", "a directory", ...).
pub fn kind_name(mode: libc::mode_t) -> &'static str {
    match mode & libc::S_IFMT {
        libc::S_IFREG => "a regular file",
        libc::S_IFDIR => "a directory",
        libc::S_IFIFO => "a FIFO",
        libc::S_IFSOCK => "a socket",
        libc::S_IFCHR => "a character device",
        libc::S_IFBLK => "a block device",
        libc::S_IFLNK => "a symbolic link",
        _ => "a special file",
    }
}

/// True if files owned by `uid` may steer this process: root's, or our own effective uid's.
fn trusted_owner(uid: u32) -> bool {
    // SAFETY: geteuid has no preconditions.
    uid == 0 || uid == unsafe { libc::geteuid() }
}

/// Checks one directory on the path (`p` cut to `at` bytes).
fn check_dir(p: &CPath, at: usize) -> Result<(), TrustError> {
    let fail = |why| TrustError {
        path: p.clone(),
        at,
        why,
    };
    let mut dir = p.clone();
    dir.truncate(at);
    let st = lstat(&dir).map_err(|e| fail(Distrust::Io(e)))?;
    match st.st_mode & libc::S_IFMT {
        libc::S_IFDIR => {}
        libc::S_IFLNK => return Err(fail(Distrust::Symlink { dir: true })),
        _ => return Err(fail(Distrust::Io(libc::ENOTDIR))),
    }
    if !trusted_owner(st.st_uid) {
        return Err(fail(Distrust::Owner {
            uid: st.st_uid,
            dir: true,
        }));
    }
    let sticky_root = st.st_mode & libc::S_ISVTX != 0 && st.st_uid == 0;
    if st.st_mode & 0o022 != 0 && !sticky_root {
        return Err(fail(Distrust::Writable {
            mode: st.st_mode & 0o7777,
            dir: true,
        }));
    }
    Ok(())
}

/// Opens `path` read-only if it is a file ghostwatch may obey (see the module comment) and at
/// most `max_bytes` long. Relative paths are checked from `/` through the working directory.
/// Returns the open descriptor, or what is wrong with which component. Never blocks on a
/// FIFO, never follows a symbolic link, never allocates.
pub fn open_trusted(path: &[u8], max_bytes: u64) -> Result<Fd, TrustError> {
    let mut full = CPath::new();
    let early = |why| TrustError {
        path: CPath::from_bytes(path).unwrap_or_default(),
        at: 0,
        why,
    };
    if path.is_empty() {
        return Err(early(Distrust::Io(libc::ENOENT)));
    }
    if !path.starts_with(b"/") {
        let mut cwd = [0u8; CPath::CAP + 1];
        // SAFETY: cwd is valid for its length; getcwd NUL-terminates on success.
        let r = unsafe { libc::getcwd(cwd.as_mut_ptr().cast(), cwd.len()) };
        if r.is_null() {
            return Err(early(Distrust::Io(sys::errno())));
        }
        let n = cwd.iter().position(|&b| b == 0).unwrap_or(0);
        full.push(cwd.get(..n).unwrap_or(&[]))
            .map_err(|e| early(Distrust::Io(e)))?;
        if !full.as_bytes().ends_with(b"/") {
            full.push(b"/").map_err(|e| early(Distrust::Io(e)))?;
        }
    }
    full.push(path).map_err(|e| early(Distrust::Io(e)))?;

    // Every directory from "/" down to the file's parent.
    let bytes = full.as_bytes();
    let last_slash = bytes.iter().rposition(|&b| b == b'/').unwrap_or(0);
    check_dir(&full, 1)?;
    for (i, &b) in bytes.iter().enumerate().take(last_slash + 1).skip(1) {
        if b == b'/' && bytes.get(i - 1) != Some(&b'/') {
            check_dir(&full, i)?;
        }
    }

    let whole = full.len();
    let fail = |why| TrustError {
        path: full.clone(),
        at: whole,
        why,
    };
    let st = lstat(&full).map_err(|e| fail(Distrust::Io(e)))?;
    match st.st_mode & libc::S_IFMT {
        libc::S_IFREG => {}
        libc::S_IFLNK => return Err(fail(Distrust::Symlink { dir: false })),
        m => {
            return Err(fail(Distrust::NotRegular { kind: kind_name(m) }));
        }
    }
    let fd = Fd::open(
        &full,
        libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY,
    )
    .map_err(|e| {
        fail(if e == libc::ELOOP {
            Distrust::Symlink { dir: false }
        } else {
            Distrust::Io(e)
        })
    })?;
    // The checks that matter are repeated on what was actually opened.
    let st = fstat(&fd).map_err(|e| fail(Distrust::Io(e)))?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(fail(Distrust::NotRegular {
            kind: kind_name(st.st_mode),
        }));
    }
    if !trusted_owner(st.st_uid) {
        return Err(fail(Distrust::Owner {
            uid: st.st_uid,
            dir: false,
        }));
    }
    if st.st_mode & 0o022 != 0 {
        return Err(fail(Distrust::Writable {
            mode: st.st_mode & 0o7777,
            dir: false,
        }));
    }
    let size = st.st_size.max(0) as u64;
    if size > max_bytes {
        return Err(fail(Distrust::TooBig {
            size,
            max: max_bytes,
        }));
    }
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn msg(path: &str) -> String {
        match open_trusted(path.as_bytes(), 1 << 20) {
            Ok(_) => "ok".to_string(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn system_files_are_trusted_and_links_are_not() {
        // /etc/passwd: root-owned 0644 in root-owned 0755 directories on every Linux.
        assert_eq!(msg("/etc/passwd"), "ok");
        assert!(msg("/proc/self/exe").contains("symbolic link"));
        assert!(msg("/nonexistent/x").contains("No such file or directory"));
        assert!(msg("/dev/null").contains("a character device"));
        assert!(msg("/etc").contains("a directory"));
    }

    #[test]
    fn private_dir_under_sticky_tmp_is_trusted() {
        let dir = std::env::temp_dir().join(format!("gw-trust-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let f = dir.join("c.json");
        std::fs::write(&f, "{}").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let p = f.to_str().unwrap();
        assert_eq!(msg(p), "ok");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(
            msg(p).contains("(mode 0666); fix: chmod go-w"),
            "{}",
            msg(p)
        );
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(msg(p).contains("a directory group or others can write"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
