//! The last resort's memory: the breadcrumb a `reboot` action leaves, and reading it back at
//! the next start.
//!
//! The reboot sequence (the agent runs it, `Agent::reboot`): (1) with `watchdog_device` set,
//! stop petting, so the hardware resets the box even if what follows hangs with memory
//! exhausted; (2) one `event=reboot` audit line naming the rule, the trigger, Ghost,
//! MemAvailable, the worst socket and its owner; (3) the breadcrumb: that same line plus the
//! kernel's boot_id, written and fsynced (before the global sync, so a sync that hangs on a
//! stuck filesystem cannot cost it); (4) sync(2); (5) reboot(2). If reboot(2) fails, the
//! action's audit line says why; with a watchdog the reset still comes.
//!
//! At the next start `take_breadcrumb` reads the file, the start line carries it as
//! `last_reboot="..."`, and the file is removed. A breadcrumb written in the *current* boot
//! (reboot(2) failed and the box stayed up) is reported with `last_reboot_same_boot=1`.
//!
//! The breadcrumb file sits in a root-owned directory but is read as untrusted: no symlinks,
//! regular files only, at most `MAX_CRUMB` bytes, first line only; the audit writer escapes it.

use crate::sys::{self, CPath, Fd};

/// Most bytes of a breadcrumb read back.
pub const MAX_CRUMB: usize = 512;

/// The running kernel's boot_id (a UUID that changes at every boot), or empty if unreadable.
pub fn boot_id() -> heapless::String<40> {
    let mut out = heapless::String::new();
    let mut buf = [0u8; 64];
    if let Ok(p) = CPath::from_bytes(b"/proc/sys/kernel/random/boot_id") {
        if let Ok(got) = sys::read_file(&p, &mut buf) {
            let got = got.split(|&c| c == b'\n').next().unwrap_or(&[]);
            sys::push_lossy(&mut out, got);
        }
    }
    out
}

/// A breadcrumb read back at start.
#[derive(Debug, PartialEq, Eq)]
pub struct Crumb<'b> {
    /// Its first line (raw bytes: escape before logging).
    pub text: &'b [u8],
    /// It carries the current boot's boot_id: reboot(2) did not happen.
    pub same_boot: bool,
}

/// Reads the breadcrumb at `path` into `buf` and removes the file. Returns None if there is
/// none, it is not a regular file (a symlink is refused, not followed), or it is unreadable;
/// a refused file is left in place. `current_boot_id` comes from `boot_id()`.
pub fn take_breadcrumb<'b>(
    path: &str,
    current_boot_id: &str,
    buf: &'b mut [u8; MAX_CRUMB],
) -> Option<Crumb<'b>> {
    let c = CPath::from_bytes(path.as_bytes()).ok()?;
    let fd = Fd::open(&c, libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK).ok()?;
    // SAFETY: zeroed stat is a valid out-buffer for fstat on an fd we own.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    if unsafe { libc::fstat(fd.raw(), &mut st) } != 0 || st.st_mode & libc::S_IFMT != libc::S_IFREG
    {
        return None;
    }
    let n = fd.read_full(buf).ok()?;
    drop(fd);
    // SAFETY: path is NUL-terminated.
    unsafe { libc::unlink(c.as_ptr()) };
    let text = buf.get(..n)?;
    let text = text.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let same_boot = !current_boot_id.is_empty() && {
        let mut want: heapless::String<56> = heapless::String::new();
        let _ = want.push_str("boot_id=");
        let _ = want.push_str(current_boot_id);
        text.windows(want.len()).any(|w| w == want.as_bytes())
    };
    Some(Crumb { text, same_boot })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("gw-crumb-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn reads_first_line_and_removes() {
        let d = tmp("a");
        let f = d.join("reboot-reason");
        std::fs::write(&f, "event=reboot rule=r boot_id=1234\nsecond line\n").unwrap();
        let mut buf = [0u8; MAX_CRUMB];
        let c = take_breadcrumb(f.to_str().unwrap(), "other", &mut buf).unwrap();
        assert_eq!(c.text, b"event=reboot rule=r boot_id=1234");
        assert!(!c.same_boot);
        assert!(!f.exists());
        let mut buf = [0u8; MAX_CRUMB];
        assert_eq!(take_breadcrumb(f.to_str().unwrap(), "", &mut buf), None);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn same_boot_is_noticed() {
        let d = tmp("b");
        let f = d.join("crumb");
        let id = boot_id();
        assert!(!id.is_empty(), "no boot_id on this kernel");
        std::fs::write(&f, format!("event=reboot boot_id={id}\n")).unwrap();
        let mut buf = [0u8; MAX_CRUMB];
        assert!(
            take_breadcrumb(f.to_str().unwrap(), &id, &mut buf)
                .unwrap()
                .same_boot
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn symlink_and_directory_refused_and_kept() {
        let d = tmp("c");
        let target = d.join("secret");
        std::fs::write(&target, "not a crumb").unwrap();
        let link = d.join("crumb");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let mut buf = [0u8; MAX_CRUMB];
        assert_eq!(take_breadcrumb(link.to_str().unwrap(), "", &mut buf), None);
        assert!(link.symlink_metadata().is_ok() && target.exists());
        let mut buf = [0u8; MAX_CRUMB];
        assert_eq!(take_breadcrumb(d.to_str().unwrap(), "", &mut buf), None);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn long_crumb_is_cut() {
        let d = tmp("d");
        let f = d.join("crumb");
        std::fs::write(&f, "x".repeat(4000)).unwrap();
        let mut buf = [0u8; MAX_CRUMB];
        let c = take_breadcrumb(f.to_str().unwrap(), "", &mut buf).unwrap();
        assert_eq!(c.text.len(), MAX_CRUMB);
        let _ = std::fs::remove_dir_all(&d);
    }
}
