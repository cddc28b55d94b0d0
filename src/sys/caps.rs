//! What this kernel offers of the syscalls newer than the oldest kernel ghostwatch supports
//! (Linux 3.10): probed once, by a handful of calls that change nothing, and kept in a static.
//!
//! Each probe is a call that fails harmlessly where the syscall exists (a bad descriptor, an
//! empty range) and answers ENOSYS where it does not, as a kernel without it (or a seccomp
//! filter emulating one) does. Only ENOSYS (or, for close_range's CLOEXEC flag, EINVAL) counts
//! as missing: any other answer means the kernel knows the call. Netlink families (sock_diag)
//! are the socket scanner's (`observe::proc::diag::Diag::probe`).
//!
//! The static is read without a syscall afterwards, so the child side of a fork (which must not
//! probe or allocate) can consult it (`cached`).

use core::sync::atomic::{AtomicU8, Ordering};

/// A kernel feature ghostwatch uses and falls back from (closed set, `ALL`/`name` pattern).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cap {
    /// pidfd_open (Linux 5.3): kill pins its target; without it kill(2) by PID.
    PidfdOpen,
    /// pidfd_getfd (Linux 5.6): clamp, drain and the suspect re-check.
    PidfdGetfd,
    /// close_range (Linux 5.9).
    CloseRange,
    /// close_range's CLOSE_RANGE_CLOEXEC flag (Linux 5.11): the children's descriptors above 2
    /// marked close-on-exec in one call; without it a walk of /proc/self/fd.
    CloseRangeCloexec,
}

impl Cap {
    pub const ALL: [Cap; 4] = [
        Cap::PidfdOpen,
        Cap::PidfdGetfd,
        Cap::CloseRange,
        Cap::CloseRangeCloexec,
    ];

    /// The name in `missing=` and in the report.
    pub fn name(self) -> &'static str {
        match self {
            Cap::PidfdOpen => "pidfd_open",
            Cap::PidfdGetfd => "pidfd_getfd",
            Cap::CloseRange => "close_range",
            Cap::CloseRangeCloexec => "close_range_cloexec",
        }
    }

    /// The first kernel that has it, e.g. "5.6".
    pub fn since(self) -> &'static str {
        match self {
            Cap::PidfdOpen => "5.3",
            Cap::PidfdGetfd => "5.6",
            Cap::CloseRange => "5.9",
            Cap::CloseRangeCloexec => "5.11",
        }
    }

    /// What ghostwatch does without it (the report's words).
    pub fn without(self) -> &'static str {
        match self {
            Cap::PidfdOpen => "kill signals by PID with kill(2) (no pidfd to pin the process)",
            Cap::PidfdGetfd => {
                "clamp and drain cannot run (failed at once, the ladder moves on); \
                 suspects are re-read from the socket tables"
            }
            Cap::CloseRange | Cap::CloseRangeCloexec => {
                "commands' inherited descriptors are marked close-on-exec by a walk of \
                 /proc/self/fd"
            }
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// The probed set: one bit per `Cap` present.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caps(u8);

impl Caps {
    /// Every feature present (a kernel >= 5.11).
    pub const ALL: Caps = Caps(0b1111);

    pub fn has(self, c: Cap) -> bool {
        self.0 & c.bit() != 0
    }

    /// Those not present, in `Cap::ALL` order; close_range's CLOEXEC flag only where
    /// close_range itself is there (5.9 and 5.10: without close_range it goes without saying).
    pub fn missing(self) -> impl Iterator<Item = Cap> {
        Cap::ALL.into_iter().filter(move |&c| {
            !self.has(c) && (c != Cap::CloseRangeCloexec || self.has(Cap::CloseRange))
        })
    }

    /// `self` without `c` (tests).
    pub fn without(self, c: Cap) -> Caps {
        Caps(self.0 & !c.bit())
    }
}

/// Bit 7: probed; bits 0..3: `Caps`.
static PROBED: AtomicU8 = AtomicU8::new(0);
const DONE: u8 = 0x80;

/// ENOSYS from `r` (a raw syscall's result): the kernel lacks the call.
fn enosys(r: libc::c_long) -> bool {
    r < 0 && super::errno() == libc::ENOSYS
}

/// Runs the probes (five syscalls, no allocation). `get` keeps the answer; call this directly
/// only to look again.
pub fn probe() -> Caps {
    let mut bits = 0u8;
    // SAFETY: integer syscalls. pidfd_open of ourselves returns a descriptor we close at once;
    // pidfd_getfd on -1 fails with EBADF where it exists; close_range from u32::MAX up closes
    // nothing (no such descriptor) and fails with EINVAL where the CLOEXEC flag is unknown.
    unsafe {
        let fd = libc::syscall(libc::SYS_pidfd_open, libc::getpid(), 0);
        if !enosys(fd) {
            bits |= Cap::PidfdOpen.bit();
        }
        if fd >= 0 {
            libc::close(fd as libc::c_int);
        }
        if !enosys(libc::syscall(libc::SYS_pidfd_getfd, -1, 0, 0)) {
            bits |= Cap::PidfdGetfd.bit();
        }
        const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
        let r = libc::syscall(
            libc::SYS_close_range,
            u32::MAX,
            u32::MAX,
            CLOSE_RANGE_CLOEXEC,
        );
        if r == 0 {
            bits |= Cap::CloseRange.bit() | Cap::CloseRangeCloexec.bit();
        } else if !enosys(r) {
            bits |= Cap::CloseRange.bit();
            if super::errno() != libc::EINVAL {
                bits |= Cap::CloseRangeCloexec.bit();
            }
        }
    }
    Caps(bits)
}

/// This kernel's features: probed at the first call, the same answer afterwards.
pub fn get() -> Caps {
    cached().unwrap_or_else(|| {
        let c = probe();
        PROBED.store(DONE | c.0, Ordering::Relaxed);
        c
    })
}

/// The probed features, None before the first `get` (no syscall: safe in a forked child).
pub fn cached() -> Option<Caps> {
    let v = PROBED.load(Ordering::Relaxed);
    (v & DONE != 0).then_some(Caps(v & !DONE))
}

/// Whether this kernel has `c` (`get`).
pub fn has(c: Cap) -> bool {
    get().has(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_bits_distinct() {
        let mut seen = 0u8;
        for c in Cap::ALL {
            assert_eq!(seen & c.bit(), 0, "{}", c.name());
            seen |= c.bit();
            assert!(!c.without().is_empty() && c.since().starts_with('5'));
        }
        assert_eq!(Caps(seen), Caps::ALL);
        assert_eq!(Caps::ALL.missing().count(), 0);
        let old = Caps::ALL.without(Cap::PidfdGetfd);
        assert!(!old.has(Cap::PidfdGetfd) && old.has(Cap::PidfdOpen));
        assert_eq!(
            old.missing().map(Cap::name).collect::<Vec<_>>(),
            ["pidfd_getfd"]
        );
        let v5_4 = Caps(Cap::PidfdOpen.bit());
        let names = |c: Caps| c.missing().map(Cap::name).collect::<Vec<_>>();
        assert_eq!(names(v5_4), ["pidfd_getfd", "close_range"]);
        let v5_10 = Caps::ALL.without(Cap::CloseRangeCloexec);
        assert_eq!(names(v5_10), ["close_range_cloexec"]);
        assert_eq!(names(Caps(0)), ["pidfd_open", "pidfd_getfd", "close_range"]);
    }

    /// The probe on the kernel the tests run on: stable and cached.
    #[test]
    fn probe_is_stable_and_cached() {
        let a = probe();
        assert_eq!(probe(), a);
        assert_eq!(get(), a);
        assert_eq!(cached(), Some(a));
        // CLOEXEC implies close_range; pidfd_getfd came after pidfd_open.
        assert!(!a.has(Cap::CloseRangeCloexec) || a.has(Cap::CloseRange));
        assert!(!a.has(Cap::PidfdGetfd) || a.has(Cap::PidfdOpen));
        // A kernel >= 5.11 (unless a seccomp filter says otherwise) has them all.
        let rel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let mut v = rel
            .split(|c: char| !c.is_ascii_digit())
            .map(|n| n.parse().unwrap_or(0));
        let (major, minor): (u32, u32) = (v.next().unwrap_or(0), v.next().unwrap_or(0));
        let filtered = std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
            s.lines()
                .any(|l| l.starts_with("Seccomp:") && !l.ends_with('0'))
        });
        if (major, minor) >= (5, 11) && !filtered {
            assert_eq!(a, Caps::ALL, "on {rel}");
        }
    }
}
