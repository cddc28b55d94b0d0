//! Files the root agent writes (status, metrics, breadcrumb, sysctl) and reads (everything under
//! the proc root), opened so that nothing another user plants can redirect, freeze or fake them.
//!
//! No allocation (status files are written every poll).
//! - `replace`: a temp file `PATH.tmp` created `O_CREAT|O_EXCL|O_NOFOLLOW` with mode 0644 (a
//!   stale or planted one — symlink, FIFO, someone else's file — is unlinked first, never
//!   opened), checked to be a regular file, written, then renamed over PATH. rename(2) replaces
//!   whatever PATH was (a planted symlink is replaced, not followed); a directory there fails.
//! - `open_write_existing`: an existing regular file (sysctl), `O_NOFOLLOW|O_NONBLOCK`.
//! - `open_read`: `O_NONBLOCK`, and only a regular file (a FIFO or /dev/zero planted in a
//!   `--proc-root` tree is refused instead of hanging `report`).

use crate::sys::{self, CPath, Errno, Fd};

/// The read side lives in `sys` (its `read_file` uses it): re-exported here with the write side.
pub use crate::sys::{ENOTREG, open_regular_ro as open_read, require_regular};

/// Opens an existing regular file for writing (truncating it), not through a symlink (ELOOP)
/// and without blocking. For /proc/sys files: the kernel's are regular files.
pub fn open_write_existing(path: &CPath) -> Result<Fd, Errno> {
    let fd = Fd::open(
        path,
        libc::O_WRONLY | libc::O_TRUNC | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY,
    )?;
    require_regular(&fd)?;
    Ok(fd)
}

/// Creates `tmp` afresh: O_EXCL (never an existing file), O_NOFOLLOW, mode 0644 whatever the
/// umask. A leftover at that name (our own after a crash, or something planted) is unlinked
/// and the create retried once.
fn create_fresh(tmp: &CPath) -> Result<Fd, Errno> {
    let flags = libc::O_WRONLY
        | libc::O_CREAT
        | libc::O_EXCL
        | libc::O_NOFOLLOW
        | libc::O_NONBLOCK
        | libc::O_NOCTTY;
    let fd = match Fd::open(tmp, flags) {
        Err(libc::EEXIST) => {
            // unlink removes the name only: a symlink's target or a hard link's other names
            // are untouched.
            // SAFETY: tmp is NUL-terminated.
            if unsafe { libc::unlink(tmp.as_ptr()) } != 0 {
                return Err(sys::errno());
            }
            Fd::open(tmp, flags)?
        }
        other => other?,
    };
    require_regular(&fd)?;
    // SAFETY: fchmod on an fd we own.
    if unsafe { libc::fchmod(fd.raw(), 0o644) } != 0 {
        return Err(sys::errno());
    }
    Ok(fd)
}

/// Replaces `path` with `data` atomically (see the module comment); with `sync`, the data and
/// the directory entry are fsynced first (the breadcrumb must survive the reboot that follows).
/// Returns Err(errno); the temp file is removed on failure.
pub fn replace(path: &[u8], data: &[u8], sync: bool) -> Result<(), Errno> {
    let dst = CPath::from_bytes(path)?;
    let mut tmp = dst.clone();
    tmp.push(b".tmp")?;
    let written = create_fresh(&tmp).and_then(|fd| {
        fd.write_all(data)?;
        // SAFETY: fsync on an fd we own.
        if sync && unsafe { libc::fsync(fd.raw()) } != 0 {
            return Err(sys::errno());
        }
        Ok(())
    });
    // SAFETY: both paths are NUL-terminated.
    let renamed = written.and_then(|()| {
        if unsafe { libc::rename(tmp.as_ptr(), dst.as_ptr()) } != 0 {
            Err(sys::errno())
        } else {
            Ok(())
        }
    });
    if let Err(e) = renamed {
        // Only if we created it: EEXIST/ELOOP from create_fresh left someone else's name alone.
        if e != libc::EEXIST && e != libc::ELOOP {
            // SAFETY: as above.
            unsafe { libc::unlink(tmp.as_ptr()) };
        }
        return Err(e);
    }
    if sync {
        sync_parent(&dst);
    }
    Ok(())
}

/// fsyncs the directory holding `path` (best effort: the rename is durable once it is).
fn sync_parent(path: &CPath) {
    let b = path.as_bytes();
    let Some(i) = b.iter().rposition(|&c| c == b'/') else {
        return;
    };
    let dir = if i == 0 { &b[..1] } else { &b[..i] };
    if let Ok(d) = CPath::from_bytes(dir) {
        if let Ok(fd) = Fd::open(&d, libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NONBLOCK) {
            // SAFETY: fsync on an fd we own.
            unsafe { libc::fsync(fd.raw()) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    struct Dir(std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::set_permissions(&self.0, std::fs::Permissions::from_mode(0o755));
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    fn dir(tag: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("gw-safefile-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }
    fn mkfifo(p: &std::path::Path) {
        let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
        // SAFETY: valid path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o666) }, 0);
    }
    fn put(p: &std::path::Path, data: &[u8]) -> Result<(), Errno> {
        replace(p.to_str().unwrap().as_bytes(), data, false)
    }

    #[test]
    fn a_planted_symlink_is_never_followed() {
        let d = dir("link");
        let victim = d.0.join("root-only");
        std::fs::write(&victim, "secret\n").unwrap();
        let status = d.0.join("status.json");
        std::os::unix::fs::symlink(&victim, d.0.join("status.json.tmp")).unwrap();
        put(&status, b"{}\n").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"secret\n");
        assert_eq!(std::fs::read(&status).unwrap(), b"{}\n");
        // A symlink at the destination itself is replaced, not written through.
        std::fs::remove_file(&status).unwrap();
        std::os::unix::fs::symlink(&victim, &status).unwrap();
        put(&status, b"{}\n").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"secret\n");
        assert!(std::fs::symlink_metadata(&status).unwrap().is_file());
    }

    #[test]
    fn a_planted_fifo_never_blocks() {
        let d = dir("fifo");
        let status = d.0.join("m.prom");
        mkfifo(&d.0.join("m.prom.tmp"));
        put(&status, b"x 1\n").unwrap();
        assert_eq!(std::fs::read(&status).unwrap(), b"x 1\n");
        let fifo = d.0.join("fifo");
        mkfifo(&fifo);
        let c = CPath::from_bytes(fifo.to_str().unwrap().as_bytes()).unwrap();
        assert_eq!(open_read(&c).err(), Some(ENOTREG));
        // No reader: ENXIO from the non-blocking open; with one it would be ENOTREG.
        assert!(open_write_existing(&c).is_err());
        let zero = CPath::from_bytes(b"/dev/zero").unwrap();
        assert_eq!(open_read(&zero).err(), Some(ENOTREG));
    }

    #[test]
    fn a_precreated_file_is_replaced_by_a_fresh_0644_one() {
        let d = dir("pre");
        let status = d.0.join("s");
        let planted = d.0.join("s.tmp");
        std::fs::write(&planted, "attacker\n").unwrap();
        std::fs::set_permissions(&planted, std::fs::Permissions::from_mode(0o666)).unwrap();
        // A second name keeps the planted inode alive (and its number taken) throughout.
        let keep = d.0.join("keep");
        std::fs::hard_link(&planted, &keep).unwrap();
        let before = std::fs::metadata(&planted).unwrap().ino();
        put(&status, b"ok\n").unwrap();
        let m = std::fs::metadata(&status).unwrap();
        assert_ne!(m.ino(), before, "the planted inode became the status file");
        assert_eq!(std::fs::read(&keep).unwrap(), b"attacker\n");
        assert_eq!(m.mode() & 0o7777, 0o644);
        assert_eq!(std::fs::read(&status).unwrap(), b"ok\n");
    }

    #[test]
    fn a_read_only_directory_is_an_error_not_a_hang() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            // Root writes through 0555 directories; a read-only mount is the root case.
            let c = CPath::from_bytes(b"/proc/gw-no-such-file").unwrap();
            assert!(replace(c.as_bytes(), b"x", false).is_err());
            return;
        }
        let d = dir("ro");
        std::fs::set_permissions(&d.0, std::fs::Permissions::from_mode(0o555)).unwrap();
        assert_eq!(put(&d.0.join("s"), b"x"), Err(libc::EACCES));
    }
}
