//! Owning the hardware watchdog (`watchdog_device`), for boxes without a feeder of their own.
//!
//! The agent opens the device once at start, sets `watchdog_timeout_s` with WDIOC_SETTIMEOUT,
//! and pets it from the poll loop only, once per healthy poll: if the loop hangs (a stuck
//! /proc read, memory exhausted) the petting stops and the hardware resets the box. A clean
//! stop (SIGTERM, `--once`) writes the magic close character 'V' before closing, so stopping
//! the agent does not reset the box; SIGKILL or a crash leaves the timer running. As the last
//! resort the agent stops petting *before* its reboot sequence, so the box resets even if
//! reboot(2) never returns.
//!
//! Test seam: a FIFO at `watchdog_device` is accepted in place of the character device (no
//! ioctls; the bytes written are what a test reads). These machines cannot offer a real one:
//! their kernel has `# CONFIG_SOFT_WATCHDOG is not set` (/proc/config.gz) and no module support
//! (no /proc/modules), so softdog cannot be loaded, and there is no /sys/class/watchdog. The
//! real device path (WDIOC_SETTIMEOUT on an i6300esb) runs in the router-in-a-box guest
//! (tests/router_in_a_box.rs, scenario C). Anything else that is not a character device is
//! refused.

use crate::sys::{self, CPath, Errno, Fd};

/// Linux `_IOC` encoding for the watchdog ioctls (`'W'`, int argument).
#[cfg(any(
    target_arch = "mips",
    target_arch = "mips64",
    target_arch = "powerpc",
    target_arch = "powerpc64",
    target_arch = "sparc64"
))]
mod ioc {
    pub const READ: u64 = 2;
    pub const WRITE: u64 = 4;
    pub const DIRSHIFT: u64 = 29;
}
#[cfg(not(any(
    target_arch = "mips",
    target_arch = "mips64",
    target_arch = "powerpc",
    target_arch = "powerpc64",
    target_arch = "sparc64"
)))]
mod ioc {
    pub const READ: u64 = 2;
    pub const WRITE: u64 = 1;
    pub const DIRSHIFT: u64 = 30;
}

const fn wdioc(dir: u64, nr: u64) -> u64 {
    (dir << ioc::DIRSHIFT) | (4 << 16) | ((b'W' as u64) << 8) | nr
}

/// `_IOWR('W', 6, int)`: set the timeout (s); the driver writes back what it set.
pub const WDIOC_SETTIMEOUT: u64 = wdioc(ioc::READ | ioc::WRITE, 6);
/// `_IOR('W', 7, int)`: read the timeout (s).
pub const WDIOC_GETTIMEOUT: u64 = wdioc(ioc::READ, 7);

/// Why the watchdog could not be taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenError {
    /// open(2) failed (EBUSY: another process, e.g. the feeder, holds it).
    Open(Errno),
    /// The path is neither a character device nor the FIFO test seam.
    NotADevice,
}

impl core::fmt::Display for OpenError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            OpenError::Open(libc::EBUSY) => {
                f.write_str("busy: another process (a watchdog feeder?) holds it")
            }
            OpenError::Open(e) => f.write_str(sys::strerror(*e)),
            OpenError::NotADevice => f.write_str("not a character device"),
        }
    }
}

/// The open watchdog. Dropping it without `close_clean` leaves the timer running (the box
/// resets when it expires): that is what a crash should do.
pub struct Watchdog {
    fd: Fd,
    /// False once the last resort stopped petting; never true again.
    petting: bool,
    /// The timeout the driver reports (None for the FIFO seam or a driver without GETTIMEOUT).
    pub timeout_s: Option<u32>,
    /// Err(errno) if WDIOC_SETTIMEOUT was refused (the device keeps its own timeout).
    pub set_result: Result<(), Errno>,
    pub is_stand_in: bool,
}

impl Watchdog {
    /// Opens `path` (O_WRONLY|O_NONBLOCK|O_CLOEXEC) and, for a character device, sets
    /// `timeout_s` when given. Opening a watchdog starts its timer: pet within the timeout.
    pub fn open(path: &str, timeout_s: Option<u32>) -> Result<Watchdog, OpenError> {
        let c = CPath::from_bytes(path.as_bytes()).map_err(OpenError::Open)?;
        let fd = Fd::open(&c, libc::O_WRONLY | libc::O_NONBLOCK).map_err(OpenError::Open)?;
        // SAFETY: zeroed stat is a valid out-buffer for fstat on an fd we own.
        let mut st: libc::stat = unsafe { core::mem::zeroed() };
        if unsafe { libc::fstat(fd.raw(), &mut st) } != 0 {
            return Err(OpenError::Open(sys::errno()));
        }
        let kind = st.st_mode & libc::S_IFMT;
        let mut w = Watchdog {
            fd,
            petting: true,
            timeout_s: None,
            set_result: Ok(()),
            is_stand_in: kind == libc::S_IFIFO,
        };
        if w.is_stand_in {
            w.timeout_s = timeout_s;
            return Ok(w);
        }
        if kind != libc::S_IFCHR {
            // Not ours to write to: close without 'V' is harmless on a non-device.
            return Err(OpenError::NotADevice);
        }
        if let Some(t) = timeout_s {
            let mut v: libc::c_int = t as libc::c_int;
            // SAFETY: the ioctl reads and writes one int through a valid pointer.
            let r = unsafe { libc::ioctl(w.fd.raw(), WDIOC_SETTIMEOUT as _, &mut v) };
            w.set_result = if r == 0 { Ok(()) } else { Err(sys::errno()) };
        }
        let mut v: libc::c_int = 0;
        // SAFETY: as above.
        if unsafe { libc::ioctl(w.fd.raw(), WDIOC_GETTIMEOUT as _, &mut v) } == 0 && v > 0 {
            w.timeout_s = Some(v as u32);
        }
        // Pet at once: the timer started at open.
        let _ = w.pet();
        Ok(w)
    }

    /// One keepalive (a NUL byte, as busybox's `watchdog` writes). Ok(false) once petting
    /// stopped for good. Never allocates.
    pub fn pet(&self) -> Result<bool, Errno> {
        if !self.petting {
            return Ok(false);
        }
        self.fd.write_all(b"\0").map(|_| true)
    }

    /// The last resort: never pet again, so the hardware resets the box within its timeout
    /// even if reboot(2) hangs. The device stays open (closing it could let a driver without
    /// nowayout stop the timer).
    pub fn stop_petting(&mut self) {
        self.petting = false;
    }

    pub fn is_petting(&self) -> bool {
        self.petting
    }

    /// A clean stop: writes the magic close 'V' and closes, so the driver disarms the timer.
    /// After `stop_petting` it does nothing: the reset must still happen.
    pub fn close_clean(self) -> Result<(), Errno> {
        if !self.petting {
            // Dropping closes without 'V': the timer keeps running.
            return Ok(());
        }
        self.fd.write_all(b"V")
    }
}

/// A process that holds a watchdog open (see `holders`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    /// `/proc/PID/comm`, as the kernel shows it (untrusted: escape before printing).
    pub comm: String,
}

/// `major:minor` of a device number.
fn dev_pair(rdev: libc::dev_t) -> (u32, u32) {
    (libc::major(rdev), libc::minor(rdev))
}

/// Which watchdog (the N of `watchdogN`) the character device `rdev` is. The legacy misc
/// device `/dev/watchdog` (10:130) is the first one registered, watchdog0; `/dev/watchdogN`
/// are found in `/sys/class/watchdog/watchdogN/dev`. None: not a watchdog this kernel lists.
fn watchdog_index(rdev: libc::dev_t) -> Option<u32> {
    let (maj, min) = dev_pair(rdev);
    if (maj, min) == (10, 130) {
        return Some(0);
    }
    let want = format!("{maj}:{min}");
    for e in std::fs::read_dir("/sys/class/watchdog").ok()?.flatten() {
        let name = e.file_name();
        let n = name.to_str()?.strip_prefix("watchdog")?.parse().ok()?;
        let dev = std::fs::read_to_string(e.path().join("dev")).unwrap_or_default();
        if dev.trim() == want {
            return Some(n);
        }
    }
    None
}

/// The processes other than this one that hold `path` open, found by walking
/// `/proc/PID/fd/*` (stat through each link, never an open: opening a free watchdog would
/// arm it). A character device matches by device number, and `/dev/watchdog` and
/// `/dev/watchdog0` match each other (the kernel lets only one of them be open, EBUSY);
/// the FIFO test seam matches by inode. For `check` and the start line, never the poll loop
/// (it allocates). Processes whose fd directory cannot be read (another PID namespace, no
/// privilege) are not seen. Err: `path` cannot be stat'ed.
pub fn holders(path: &str) -> Result<Vec<Holder>, Errno> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let m = std::fs::metadata(path).map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))?;
    let is_char = m.file_type().is_char_device();
    let want_rdev = m.rdev() as libc::dev_t;
    let want_index = if is_char {
        watchdog_index(want_rdev)
    } else {
        None
    };
    let same = |fm: &std::fs::Metadata| -> bool {
        if is_char {
            if !fm.file_type().is_char_device() {
                return false;
            }
            let r = fm.rdev() as libc::dev_t;
            r == want_rdev || (want_index.is_some() && watchdog_index(r) == want_index)
        } else {
            fm.dev() == m.dev() && fm.ino() == m.ino()
        }
    };
    let me = std::process::id();
    let mut out = Vec::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Ok(out);
    };
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(p.path().join("fd")) else {
            continue;
        };
        let held = fds
            .flatten()
            .any(|fd| std::fs::metadata(fd.path()).is_ok_and(|fm| same(&fm)));
        if held {
            let comm = std::fs::read_to_string(p.path().join("comm")).unwrap_or_default();
            out.push(Holder {
                pid,
                comm: comm.trim_end_matches('\n').to_string(),
            });
        }
    }
    out.sort_by_key(|h| h.pid);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn ioctl_numbers_match_the_kernel_headers() {
        // linux/watchdog.h on x86_64: _IOWR('W', 6, int) and _IOR('W', 7, int).
        assert_eq!(WDIOC_SETTIMEOUT, 0xC004_5706);
        assert_eq!(WDIOC_GETTIMEOUT, 0x8004_5707);
    }

    #[test]
    fn regular_file_is_refused() {
        let p = std::env::temp_dir().join(format!("gw-wd-{}", std::process::id()));
        std::fs::write(&p, b"").unwrap();
        let r = Watchdog::open(p.to_str().unwrap(), Some(10));
        assert!(matches!(r, Err(OpenError::NotADevice)));
        let _ = std::fs::remove_file(&p);
        assert!(matches!(
            Watchdog::open("/nonexistent/watchdog", None),
            Err(OpenError::Open(libc::ENOENT))
        ));
    }

    /// A character device that is not a watchdog: the ioctls fail (ENOTTY), which is reported,
    /// and the device is used with its own timeout (the path a driver without SETTIMEOUT takes).
    #[test]
    fn char_device_without_watchdog_ioctls() {
        let w = Watchdog::open("/dev/null", Some(30)).unwrap();
        assert!(!w.is_stand_in);
        // The kernel says ENOTTY; qemu-user (targets/build.sh --test runs this on foreign CPUs)
        // answers ENOSYS for ioctls it does not translate before they reach the kernel.
        assert!(
            matches!(w.set_result, Err(e) if e == libc::ENOTTY || e == libc::ENOSYS),
            "{:?}",
            w.set_result
        );
        assert_eq!(w.timeout_s, None);
        assert_eq!(w.pet(), Ok(true));
        w.close_clean().unwrap();
    }

    /// `holders` finds another process that holds the path open, and not this one. The FIFO
    /// seam stands in for the device (matched by inode); `/dev/null` (a character device) is
    /// held by most processes, this one's own fds excluded.
    #[test]
    fn holders_names_the_other_processes_that_hold_it() {
        let p = std::env::temp_dir().join(format!("gw-wdhold-{}", std::process::id()));
        let _ = std::fs::remove_file(&p);
        let c = CPath::from_bytes(p.to_str().unwrap().as_bytes()).unwrap();
        // SAFETY: valid path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let path = p.to_str().unwrap();
        // Our own read end does not count.
        let mine = Fd::open(&c, libc::O_RDONLY | libc::O_NONBLOCK).unwrap();
        assert_eq!(holders(path), Ok(vec![]));
        // A child holding it open (the shell opens it read-write, which never blocks).
        let mut child = std::process::Command::new("sh")
            .args([
                "-c",
                &format!("exec 3<>'{path}'; echo ready; exec sleep 30"),
            ])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        use std::io::BufRead;
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let h = holders(path).unwrap();
        let _ = child.kill();
        let _ = child.wait();
        drop(mine);
        let _ = std::fs::remove_file(&p);
        // The shell or, once it exec'ed, sleep: the same process and fd either way.
        assert_eq!(h.len(), 1, "{h:?}");
        assert_eq!(h[0].pid, child.id());
        assert!(["sh", "sleep"].contains(&h[0].comm.as_str()), "{h:?}");
        assert_eq!(holders("/nonexistent/watchdog"), Err(libc::ENOENT));
    }

    #[test]
    fn the_legacy_device_is_watchdog0() {
        assert_eq!(watchdog_index(libc::makedev(10, 130)), Some(0));
        // /dev/null (1:3) is no watchdog.
        assert_eq!(watchdog_index(libc::makedev(1, 3)), None);
    }

    #[test]
    fn fifo_stand_in_sees_pets_and_magic_close() {
        let p = std::env::temp_dir().join(format!("gw-wdfifo-{}", std::process::id()));
        let _ = std::fs::remove_file(&p);
        let c = CPath::from_bytes(p.to_str().unwrap().as_bytes()).unwrap();
        // SAFETY: valid path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let reader = Fd::open(&c, libc::O_RDONLY | libc::O_NONBLOCK).unwrap();
        let w = Watchdog::open(p.to_str().unwrap(), Some(7)).unwrap();
        assert!(w.is_stand_in);
        assert_eq!(w.timeout_s, Some(7));
        assert_eq!(w.pet(), Ok(true));
        assert_eq!(w.pet(), Ok(true));
        let mut buf = [0u8; 16];
        assert_eq!(reader.read(&mut buf), Ok(2));
        w.close_clean().unwrap();
        assert_eq!(reader.read(&mut buf), Ok(1));
        assert_eq!(buf[0], b'V');

        // After stop_petting: no pets, and the close writes no 'V'.
        let mut w = Watchdog::open(p.to_str().unwrap(), None).unwrap();
        w.stop_petting();
        assert_eq!(w.pet(), Ok(false));
        w.close_clean().unwrap();
        assert_eq!(
            reader.read(&mut buf),
            Ok(0),
            "nothing written, writer closed"
        );
        let _ = std::fs::remove_file(&p);
    }
}
