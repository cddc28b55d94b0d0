//! Action executors: exec/restart, sysctl, clamp, drain, kill, reboot. Each returns an
//! `Outcome` the agent audits. I/O lives here; deciding *whether* to act lives in policy.
//!
//! No executor panics or returns early without an `Outcome`: a failure is
//! `result=failed` with a reason an operator can act on ("needs CAP_SYS_PTRACE").

use crate::observe::proc::ProcRoot;
use crate::observe::proc::pid::Comm;
use crate::output::audit::{AuditLine, ResultKind, push_pair, push_pair_display};
use crate::sys::caps::{self, Cap};
use crate::sys::{self, CPath, Cut, Errno, Fd, monotonic_ms, strerror};
use core::fmt::{self, Write as _};

/// What happened, for the audit line. `detail` holds extra logfmt pairs (e.g. `old=212992 new=4096`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub result: ResultKind,
    pub reason: heapless::String<128>,
    pub detail: heapless::String<192>,
    pub duration_ms: u64,
    /// True when the attempt cannot work on this kernel at all (a syscall or netlink family
    /// it lacks, e.g. `pidfd_getfd needs Linux >= 5.6`): `result` is `failed`, and trying
    /// again later will not help. The policy hands over to the next rung at once instead of
    /// retrying; a transient failure (EPERM, a vanished process) leaves this false.
    pub unsupported: bool,
}

impl Outcome {
    /// An outcome with `result`, no reason, no detail, 0 ms.
    pub fn new(result: ResultKind) -> Outcome {
        Outcome {
            result,
            reason: heapless::String::new(),
            detail: heapless::String::new(),
            duration_ms: 0,
            unsupported: false,
        }
    }

    /// A failed outcome that cannot succeed on this kernel (`unsupported` set); `args` names
    /// the kernel need, e.g. "pidfd_getfd needs Linux >= 5.6".
    pub fn unsupported(args: fmt::Arguments<'_>) -> Outcome {
        let mut o = Outcome::failed(args);
        o.unsupported = true;
        o
    }

    /// A failed outcome whose reason is `args`, cut (at a char boundary) if longer than 128 bytes.
    pub fn failed(args: fmt::Arguments<'_>) -> Outcome {
        let mut o = Outcome::new(ResultKind::Failed);
        o.set_reason(args);
        o
    }

    /// Replaces the reason with `args` (cut to fit, never an error).
    pub fn set_reason(&mut self, args: fmt::Arguments<'_>) {
        self.reason.clear();
        let _ = Cut(self.reason.as_mut_view()).write_fmt(args);
    }

    /// Appends this outcome to an audit line, the one way every executor's result is
    /// audited: `result=`, `reason=` (when not empty), `duration_ms=`, then the detail pairs.
    pub fn audit_pairs(&self, l: &mut AuditLine) {
        l.kv("result", self.result.name().as_bytes());
        if !self.reason.is_empty() {
            l.kv("reason", self.reason.as_bytes());
        }
        l.kvd("duration_ms", self.duration_ms);
        l.raw_pairs(&self.detail);
    }

    /// Sets `duration_ms` to the time since `start_ms` (a `sys::monotonic_ms()` value).
    fn timed(mut self, start_ms: u64) -> Outcome {
        self.duration_ms = monotonic_ms().saturating_sub(start_ms);
        self
    }
}

/// The kernel feature without which `action` cannot work at all (clamp and drain:
/// pidfd_getfd); None for actions that work on every kernel ghostwatch supports (kill falls
/// back to kill(2), commands to a walk of /proc/self/fd). `check` warns with it.
pub fn kernel_need(action: crate::config::ActionKind) -> Option<Cap> {
    use crate::config::ActionKind;
    match action {
        ActionKind::Clamp | ActionKind::Drain => Some(Cap::PidfdGetfd),
        _ => None,
    }
}

/// The process and socket an action aims at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    pub pid: u32,
    /// The fd number of the socket inside `pid`.
    pub fd: u32,
    pub inode: u64,
    pub comm: Comm,
}

// exec/restart commands: see `children` (spawned there, polled by the agent's loop).

// Placeholders ({pid}, {comm}, {inode}) are checked at load and filled in `argv`.

/// Writes `value` to ROOT/sys/<name with dots as slashes>; detail says `old=... new=...`.
///
/// `new` is what the file reads back after the write (the kernel may clamp). As in sysctl(8),
/// a '/' in the name stands for a '.' in the path (VLAN interfaces: `net.ipv4.conf.eth0/100.rp_filter`).
/// Fails (reason names the step and errno) on a name with empty or ".." parts, or if the
/// file cannot be read or written.
pub fn sysctl(root: &ProcRoot, name: &str, value: &str) -> Outcome {
    let start = monotonic_ms();
    let path = match sysctl_path(root, name) {
        Ok(p) => p,
        Err(why) => return Outcome::failed(format_args!("{why}")).timed(start),
    };
    if let Err(why) = no_symlink_beneath(root, &path) {
        return Outcome::failed(format_args!("{why}")).timed(start);
    }
    let mut old_buf = [0u8; 256];
    let old = match sys::read_file(&path, &mut old_buf) {
        Ok(b) => trim_ws(b),
        Err(e) => {
            return Outcome::failed(format_args!("read {path}: {}", strerror(e))).timed(start);
        }
    };
    // O_NOFOLLOW|O_NONBLOCK and a regular-file check: no planted link or FIFO is written to.
    let written = crate::sys::safefile::open_write_existing(&path)
        .and_then(|fd| fd.write_all(value.as_bytes()));
    if let Err(e) = written {
        return Outcome::failed(format_args!("write {path}: {}", strerror(e))).timed(start);
    }
    let mut new_buf = [0u8; 256];
    let new = match sys::read_file(&path, &mut new_buf) {
        Ok(b) => trim_ws(b),
        Err(e) => {
            return Outcome::failed(format_args!("read back {path}: {}", strerror(e))).timed(start);
        }
    };
    let mut o = Outcome::new(ResultKind::Ok);
    push_pair(&mut o.detail, "old", old);
    push_pair(&mut o.detail, "new", new);
    o.timed(start)
}

/// Under a `--proc-root` tree, refuses a sysctl path with a symlink in any component below
/// the root (lstat of each prefix): a planted `DIR/sys/net -> /proc/sys/net` must not turn a
/// diagnosis run into a write to the live kernel or anywhere else. The live /proc/sys has no
/// symlinks, and the check is skipped there. (A tree rewritten between the check and the open
/// is outside this guard: a tree someone else can write is not one to run actions on.)
fn no_symlink_beneath(root: &ProcRoot, path: &CPath) -> Result<(), &'static str> {
    if root.is_live() {
        return Ok(());
    }
    let base = root.dir().len();
    let full = path.as_bytes();
    for (i, &c) in full.iter().enumerate().skip(base + 1) {
        if c != b'/' && i + 1 != full.len() {
            continue;
        }
        let mut p = path.clone();
        p.truncate(if c == b'/' { i } else { i + 1 });
        // SAFETY: p is NUL-terminated; st is a valid out-pointer.
        let mut st: libc::stat = unsafe { core::mem::zeroed() };
        if unsafe { libc::lstat(p.as_ptr(), &mut st) } == 0
            && st.st_mode & libc::S_IFMT == libc::S_IFLNK
        {
            return Err("refusing a symlink under --proc-root");
        }
    }
    Ok(())
}

/// ROOT/sys/a/b/c for "a.b.c" (a '/' in the name becomes '.').
fn sysctl_path(root: &ProcRoot, name: &str) -> Result<CPath, &'static str> {
    let mut p = root.path(b"sys").map_err(|_| "sysctl path too long")?;
    for part in name.split('.') {
        if part.is_empty() || part == ".." || part == "." || part.contains('\0') {
            return Err("bad sysctl name (empty or '..' part)");
        }
        p.push(b"/").map_err(|_| "sysctl path too long")?;
        for b in part.bytes() {
            let b = if b == b'/' { b'.' } else { b };
            p.push(&[b]).map_err(|_| "sysctl path too long")?;
        }
    }
    Ok(p)
}

fn trim_ws(b: &[u8]) -> &[u8] {
    b.trim_ascii()
}

/// Why `steal_fd` failed: the step and its errno (0 for checks that are not syscalls).
#[derive(Clone, Copy, Debug)]
struct StealError {
    step: &'static str,
    errno: Errno,
}

impl StealError {
    /// The operator-facing failed Outcome.
    fn outcome(self, t: &Target) -> Outcome {
        match (self.step, self.errno) {
            ("pid", _) => Outcome::failed(format_args!("bad pid {}", t.pid)),
            ("fd", _) => Outcome::failed(format_args!("bad fd {}", t.fd)),
            ("inode", _) => Outcome::failed(format_args!("fd no longer that socket")),
            // pidfd_open (5.3) predates pidfd_getfd (5.6): either way the fix is the same kernel.
            (_, libc::ENOSYS) => {
                Outcome::unsupported(format_args!("pidfd_getfd needs Linux >= 5.6"))
            }
            (_, libc::EPERM) => Outcome::failed(format_args!("needs CAP_SYS_PTRACE")),
            (_, libc::ESRCH) => Outcome::failed(format_args!("process {} is gone", t.pid)),
            ("pidfd_getfd", libc::EBADF) => {
                Outcome::failed(format_args!("fd {} is not open in process {}", t.fd, t.pid))
            }
            (step, e) => Outcome::failed(format_args!("{step}: {}", strerror(e))),
        }
    }
}

/// Duplicates fd `t.fd` of process `t.pid` into this process (pidfd_open + pidfd_getfd) and
/// checks it is still the socket `t.inode`. Both descriptors are closed on every path (Fd).
fn steal_fd(t: &Target) -> Result<Fd, StealError> {
    let fail = |step, errno| StealError { step, errno };
    let pid = libc::pid_t::try_from(t.pid)
        .ok()
        .filter(|&p| p > 0)
        .ok_or(fail("pid", 0))?;
    let fd_no = libc::c_int::try_from(t.fd).map_err(|_| fail("fd", 0))?;
    // Probed once at start: on an older kernel no syscall is tried at all.
    if !caps::has(Cap::PidfdGetfd) {
        return Err(fail("pidfd_getfd", libc::ENOSYS));
    }
    // SAFETY: raw syscalls with integer arguments; results are checked.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if pidfd < 0 {
        return Err(fail("pidfd_open", sys::errno()));
    }
    let pidfd = Fd::from_raw(pidfd as libc::c_int);
    // SAFETY: as above.
    let dup = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.raw(), fd_no, 0) };
    if dup < 0 {
        return Err(fail("pidfd_getfd", sys::errno()));
    }
    let dup = Fd::from_raw(dup as libc::c_int);
    // SAFETY: st is a valid out-pointer; fstat on an fd we own.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    if unsafe { libc::fstat(dup.raw(), &mut st) } != 0 {
        return Err(fail("fstat", sys::errno()));
    }
    if st.st_mode & libc::S_IFMT != libc::S_IFSOCK || st.st_ino != t.inode {
        return Err(fail("inode", 0));
    }
    Ok(dup)
}

/// getsockopt(level, opt) as an int.
fn sockopt_int(fd: &Fd, level: libc::c_int, opt: libc::c_int) -> Result<libc::c_int, Errno> {
    let mut v: libc::c_int = 0;
    let mut len = core::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: v and len are valid out-pointers of the advertised size.
    let r = unsafe {
        libc::getsockopt(
            fd.raw(),
            level,
            opt,
            (&mut v as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if r == 0 { Ok(v) } else { Err(sys::errno()) }
}

/// getsockopt SO_MEMINFO (Linux >= 4.12; 55 on every architecture, absent from some libc
/// releases).
const SO_MEMINFO: libc::c_int = 55;

/// A suspect socket as a live re-check sees it (`peek`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peek {
    /// As sock_diag's idiag_rqueue: unread bytes (SIOCINQ) for a stream socket, rmem_alloc
    /// for the rest.
    pub rx_queue: u64,
    /// rmem_alloc + wmem_queued + fwd_alloc (`diag::charged_of`).
    pub charged: u64,
    pub drops: u64,
}

/// Reads the target socket's queue now, through a duplicate of its owner's fd (pidfd_getfd,
/// Linux >= 5.6; the duplicate is checked to be the socket `t.inode` and closed on return):
/// getsockopt SO_MEMINFO, and ioctl SIOCINQ for a stream socket. Reads only: the owner's
/// socket is not changed. Err(errno) when any step fails (0 for a check that is no syscall).
pub fn peek(t: &Target) -> Result<Peek, Errno> {
    let fd = steal_fd(t).map_err(|e| e.errno)?;
    let mut mi = [0u32; 9];
    let mut len = core::mem::size_of_val(&mi) as libc::socklen_t;
    // SAFETY: mi and len are valid out-pointers of the advertised size.
    let r = unsafe {
        libc::getsockopt(
            fd.raw(),
            libc::SOL_SOCKET,
            SO_MEMINFO,
            mi.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if r != 0 {
        return Err(sys::errno());
    }
    let mut bytes = [0u8; 36];
    for (b, v) in bytes.chunks_exact_mut(4).zip(mi) {
        b.copy_from_slice(&v.to_ne_bytes());
    }
    let bytes = &bytes[..(len as usize).min(36)];
    let charged = crate::observe::proc::diag::charged_of(bytes).ok_or(0)?;
    let drops = u64::from(mi[crate::observe::proc::diag::SK_MEMINFO_DROPS]);
    let rx_queue = if sockopt_int(&fd, libc::SOL_SOCKET, libc::SO_TYPE)? == libc::SOCK_STREAM {
        let mut n: libc::c_int = 0;
        // SAFETY: FIONREAD (SIOCINQ) writes one int to n.
        if unsafe { libc::ioctl(fd.raw(), libc::FIONREAD, &mut n) } != 0 {
            return Err(sys::errno());
        }
        n.max(0) as u64
    } else {
        u64::from(mi[0])
    };
    Ok(Peek {
        rx_queue,
        charged,
        drops,
    })
}

/// Caps the target's live socket: pidfd_open + pidfd_getfd, then SO_RCVBUF = rcvbuf on the
/// duplicate (Linux >= 5.6, CAP_SYS_PTRACE). Checks the duplicate is the expected inode.
///
/// The duplicate shares the owner's socket, so the cap applies to the owner; already queued
/// data stays (see `drain`). Detail: `old_rcvbuf= new_rcvbuf=` as getsockopt reports them
/// (the kernel doubles the requested value). Reasons: "pidfd_getfd needs Linux >= 5.6",
/// "needs CAP_SYS_PTRACE", "fd no longer that socket", "process N is gone", errno text.
pub fn clamp(target: &Target, rcvbuf: u32) -> Outcome {
    let start = monotonic_ms();
    let fd = match steal_fd(target) {
        Ok(fd) => fd,
        Err(e) => return e.outcome(target).timed(start),
    };
    let Ok(want) = libc::c_int::try_from(rcvbuf) else {
        return Outcome::failed(format_args!("rcvbuf {rcvbuf} too large")).timed(start);
    };
    let old = match sockopt_int(&fd, libc::SOL_SOCKET, libc::SO_RCVBUF) {
        Ok(v) => v,
        Err(e) => {
            return Outcome::failed(format_args!("getsockopt SO_RCVBUF: {}", strerror(e)))
                .timed(start);
        }
    };
    // SAFETY: want is a c_int living across the call.
    let r = unsafe {
        libc::setsockopt(
            fd.raw(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&want as *const libc::c_int).cast(),
            core::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r != 0 {
        let e = sys::errno();
        return Outcome::failed(format_args!("setsockopt SO_RCVBUF: {}", strerror(e))).timed(start);
    }
    let new = match sockopt_int(&fd, libc::SOL_SOCKET, libc::SO_RCVBUF) {
        Ok(v) => v,
        Err(e) => {
            return Outcome::failed(format_args!("read back SO_RCVBUF: {}", strerror(e)))
                .timed(start);
        }
    };
    let mut o = Outcome::new(ResultKind::Ok);
    push_pair_display(&mut o.detail, "old_rcvbuf", old);
    push_pair_display(&mut o.detail, "new_rcvbuf", new);
    o.timed(start)
}

/// Discards the target socket's queued data through a duplicate (recv MSG_DONTWAIT|MSG_TRUNC),
/// bounded by `max_packets` and `max_ms`; detail says how many packets and bytes.
///
/// `bytes` sums the datagram lengths MSG_TRUNC reports (payload, not kernel truesize). Stream
/// sockets are refused: discarding part of a TCP stream would corrupt the owner's protocol.
/// Ok when the queue was emptied (EAGAIN) or a bound was hit; failed on any other recv error.
pub fn drain(target: &Target, max_packets: u32, max_ms: u64) -> Outcome {
    let start = monotonic_ms();
    let fd = match steal_fd(target) {
        Ok(fd) => fd,
        Err(e) => return e.outcome(target).timed(start),
    };
    match sockopt_int(&fd, libc::SOL_SOCKET, libc::SO_TYPE) {
        Ok(libc::SOCK_STREAM) => {
            return Outcome::failed(format_args!("refusing to drain a stream socket")).timed(start);
        }
        Ok(_) => {}
        Err(e) => {
            return Outcome::failed(format_args!("getsockopt SO_TYPE: {}", strerror(e)))
                .timed(start);
        }
    }
    let mut buf = [0u8; 64];
    let (mut packets, mut bytes) = (0u32, 0u64);
    let mut o = Outcome::new(ResultKind::Ok);
    while packets < max_packets {
        // The clock is cheap (vDSO) but not free: look every 64 packets.
        if packets % 64 == 0 && monotonic_ms().saturating_sub(start) >= max_ms {
            o.set_reason(format_args!("stopped after {max_ms} ms"));
            break;
        }
        // SIGTERM: the agent is stopping (sysupgrade, reboot). Its watchdog's magic close
        // waits for this poll to end, and procd's halt sends SIGKILL 1 s after SIGTERM.
        if packets % 64 == 0 && sys::stop_requested() {
            o.set_reason(format_args!("stopped: the agent is stopping"));
            break;
        }
        // SAFETY: buf is valid for buf.len() bytes; MSG_TRUNC only changes the return value.
        let n = unsafe {
            libc::recv(
                fd.raw(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT | libc::MSG_TRUNC,
            )
        };
        if n < 0 {
            let e = sys::errno();
            if e == libc::EINTR {
                continue;
            }
            if e != libc::EAGAIN && e != libc::EWOULDBLOCK {
                o = Outcome::failed(format_args!("recv: {}", strerror(e)));
            }
            break;
        }
        packets += 1;
        bytes += n as u64;
    }
    if packets >= max_packets {
        o.set_reason(format_args!("stopped after {max_packets} packets"));
    }
    push_pair_display(&mut o.detail, "packets", packets);
    push_pair_display(&mut o.detail, "bytes", bytes);
    o.timed(start)
}

/// Signals the target. Refuses PID 1, the agent itself and kernel threads (PF_KTHREAD).
///
/// Also refuses PID 0 and PIDs above i32::MAX (kill(2) would signal a whole process group).
/// The signal goes through a pidfd when the kernel has one (Linux >= 5.3), after checking
/// ROOT/PID/comm (`root` is the `--proc-root`, like every other read) still equals
/// `target.comm` (when given), so a PID reused since the decision is not hit; the kernel-thread
/// check reads the live /proc/PID/stat of the pinned process. Reasons: "refusing to signal PID
/// 1", "refusing to signal ghostwatch itself", "refusing to signal a kernel thread", "pid N is
/// no longer COMM", errno text ("No such process").
pub fn kill(root: &ProcRoot, target: &Target, signal: i32) -> Outcome {
    let start = monotonic_ms();
    let pid = target.pid;
    // SAFETY: getpid has no preconditions.
    let me = unsafe { libc::getpid() } as u32;
    if pid == 1 {
        return Outcome::failed(format_args!("refusing to signal PID 1")).timed(start);
    }
    if pid == me {
        return Outcome::failed(format_args!("refusing to signal ghostwatch itself")).timed(start);
    }
    let Some(p) = libc::pid_t::try_from(pid).ok().filter(|&p| p > 0) else {
        return Outcome::failed(format_args!("bad pid {pid}")).timed(start);
    };
    // SAFETY: integer syscall; result checked. Without pidfd_open (probed once) ENOSYS at once.
    let pidfd = if caps::has(Cap::PidfdOpen) {
        unsafe { libc::syscall(libc::SYS_pidfd_open, p, 0) }
    } else {
        -1
    };
    if pidfd < 0 {
        let e = if caps::has(Cap::PidfdOpen) {
            sys::errno()
        } else {
            libc::ENOSYS
        };
        if e != libc::ENOSYS {
            return Outcome::failed(format_args!("{}", strerror(e))).timed(start);
        }
        // Old kernel: plain kill(2), with the (small) PID-reuse race it always had.
        // SAFETY: p > 0, so this signals exactly one process.
        if unsafe { libc::kill(p, signal) } != 0 {
            return Outcome::failed(format_args!("{}", strerror(sys::errno()))).timed(start);
        }
        return Outcome::new(ResultKind::Ok).timed(start);
    }
    let pidfd = Fd::from_raw(pidfd as libc::c_int);
    // The pidfd pins the process: if /proc/PID/comm matches now, the signal hits that process.
    if !target.comm.as_bytes().is_empty() {
        let mut buf = [0u8; 64];
        let live = root
            .pid_path(pid, b"comm")
            .and_then(|path| sys::read_file(&path, &mut buf).map(Comm::from_bytes));
        match live {
            Ok(c) if c.as_bytes() == target.comm.as_bytes() => {}
            Ok(_) | Err(_) => {
                return Outcome::failed(format_args!(
                    "pid {pid} is no longer {}",
                    sys::Lossy(target.comm.as_bytes())
                ))
                .timed(start);
            }
        }
    }
    // A kernel thread ignores most signals, but one is never a remediation target (a PID
    // confusion or a hostile fixture); unreadable stat: the process is gone, refuse too.
    let mut buf = [0u8; 512];
    match crate::observe::proc::pid::read_stat(&ProcRoot::live(), pid, &mut buf) {
        Ok(st) if !st.is_kernel_thread() => {}
        Ok(_) => {
            return Outcome::failed(format_args!("refusing to signal a kernel thread"))
                .timed(start);
        }
        Err(e) => return Outcome::failed(format_args!("pid {pid}: {e}")).timed(start),
    }
    // SAFETY: integer syscall on our pidfd; null siginfo means "as kill(2)".
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.raw(),
            signal,
            core::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if r != 0 {
        return Outcome::failed(format_args!("{}", strerror(sys::errno()))).timed(start);
    }
    Outcome::new(ResultKind::Ok).timed(start)
}

/// The final reboot(2) call; returns 0 or -1 with errno (never returns on success).
pub type RebootFn = fn() -> libc::c_int;

/// reboot(RB_AUTOBOOT): the real thing.
pub fn reboot_syscall() -> libc::c_int {
    // SAFETY: no memory arguments; needs CAP_SYS_BOOT.
    unsafe { libc::reboot(libc::RB_AUTOBOOT) }
}

/// sync, write `breadcrumb_text` to `breadcrumb_file` (fsync), then reboot(2).
///
/// Returns only if reboot(2) failed (e.g. "reboot: Operation not permitted"). A breadcrumb that
/// cannot be written does not stop the reboot: this is the last resort before the OOM killer.
pub fn reboot(breadcrumb_file: &str, breadcrumb_text: &str) -> Outcome {
    reboot_with(breadcrumb_file, breadcrumb_text, reboot_syscall)
}

/// `reboot` with the final syscall replaced by `do_reboot` (tests pass a fake: nothing here
/// may ever reboot a developer's machine). Ok if `do_reboot` returns 0.
pub fn reboot_with(breadcrumb_file: &str, breadcrumb_text: &str, do_reboot: RebootFn) -> Outcome {
    let start = monotonic_ms();
    let crumb = write_breadcrumb(breadcrumb_file, breadcrumb_text);
    // SAFETY: sync has no preconditions. The breadcrumb is already fsynced; this flushes
    // everyone else's dirty data before the box goes down.
    unsafe { libc::sync() };
    let r = do_reboot();
    let mut o = if r == 0 {
        Outcome::new(ResultKind::Ok)
    } else {
        Outcome::failed(format_args!("reboot: {}", strerror(sys::errno())))
    };
    if let Err(e) = crumb {
        let mut why: heapless::String<128> = heapless::String::new();
        let _ = write!(
            Cut(why.as_mut_view()),
            "{}; breadcrumb {breadcrumb_file}: {}",
            o.reason,
            strerror(e)
        );
        o.reason = why;
    }
    o.timed(start)
}

/// Replaces the breadcrumb file (a fresh 0644 temp file, fsynced, renamed over it: no planted
/// link or FIFO is followed; see `safefile::replace`), creating the parent directory if
/// missing. Returns Err(errno).
fn write_breadcrumb(file: &str, text: &str) -> Result<(), Errno> {
    if let Some(slash) = file.rfind('/').filter(|&i| i > 0) {
        sys::mkdir_all(&file.as_bytes()[..slash])?;
    }
    let mut line: heapless::Vec<u8, 1024> = heapless::Vec::new();
    let _ = line.extend_from_slice(text.as_bytes());
    if !text.ends_with('\n') {
        let _ = line.push(b'\n');
    }
    crate::sys::safefile::replace(file.as_bytes(), &line, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(pid: u32, comm: &[u8]) -> Target {
        Target {
            pid,
            fd: 3,
            inode: 77,
            comm: Comm::from_bytes(comm),
        }
    }

    #[test]
    fn sysctl_names_map_to_paths() {
        let root = ProcRoot::new(b"/r").unwrap();
        let p = sysctl_path(&root, "net.core.rmem_max").unwrap();
        assert_eq!(p.as_bytes(), b"/r/sys/net/core/rmem_max");
        let p = sysctl_path(&root, "net.ipv4.conf.eth0/100.rp_filter").unwrap();
        assert_eq!(p.as_bytes(), b"/r/sys/net/ipv4/conf/eth0.100/rp_filter");
        assert!(sysctl_path(&root, "net..x").is_err());
        assert!(sysctl_path(&root, "").is_err());
        assert!(sysctl_path(&root, "...").is_err());
    }

    #[test]
    fn a_missing_syscall_is_unsupported_a_refusal_is_not() {
        let t = target(42, b"d");
        let enosys = StealError {
            step: "pidfd_getfd",
            errno: libc::ENOSYS,
        };
        let o = enosys.outcome(&t);
        assert_eq!(o.result, ResultKind::Failed);
        assert!(o.unsupported);
        assert_eq!(o.reason.as_str(), "pidfd_getfd needs Linux >= 5.6");
        for errno in [libc::EPERM, libc::ESRCH, libc::EBADF] {
            let o = StealError {
                step: "pidfd_getfd",
                errno,
            }
            .outcome(&t);
            assert_eq!(o.result, ResultKind::Failed);
            assert!(!o.unsupported, "errno {errno}");
        }
        assert!(!Outcome::failed(format_args!("x")).unsupported);
        assert!(!Outcome::new(ResultKind::Ok).unsupported);
    }

    #[test]
    fn reasons_are_cut_not_lost() {
        let long = "x".repeat(300);
        let o = Outcome::failed(format_args!("write {long}"));
        assert_eq!(o.reason.len(), 128);
        assert!(o.reason.starts_with("write xx"));
    }

    #[test]
    fn result_table_round_trips() {
        for (i, r) in ResultKind::ALL.into_iter().enumerate() {
            assert_eq!(r.index(), i);
            assert_eq!(ResultKind::from_name(r.name()), Some(r));
        }
        assert_eq!(ResultKind::from_name("dry_run"), None);
    }

    #[test]
    fn outcome_and_detail_pairs() {
        let mut o = Outcome::new(ResultKind::Ok);
        assert!(push_pair_display(&mut o.detail, "old", 212992));
        assert!(push_pair(&mut o.detail, "new", b"4096\t8192"));
        o.duration_ms = 3;
        let mut l = AuditLine::new("action");
        l.kv("action", b"sysctl");
        o.audit_pairs(&mut l);
        l.kvd("seq", 9);
        // The order the agent has always written (README's example line).
        assert_eq!(
            l.as_str(),
            r#"event=action action=sysctl result=ok duration_ms=3 old=212992 new="4096\x098192" seq=9"#
        );
        o.result = ResultKind::Failed;
        o.reason.push_str("exit status 3").unwrap();
        o.detail.clear();
        let mut l = AuditLine::new("action");
        o.audit_pairs(&mut l);
        assert_eq!(
            l.as_str(),
            r#"event=action result=failed reason="exit status 3" duration_ms=3"#
        );
    }

    #[test]
    fn kill_refuses_init_self_and_groups() {
        let me = std::process::id();
        assert_eq!(
            kill(&ProcRoot::live(), &target(1, b""), 0).reason.as_str(),
            "refusing to signal PID 1"
        );
        assert_eq!(
            kill(&ProcRoot::live(), &target(me, b""), 0).reason.as_str(),
            "refusing to signal ghostwatch itself"
        );
        assert_eq!(
            kill(&ProcRoot::live(), &target(0, b""), 0).reason.as_str(),
            "bad pid 0"
        );
        assert_eq!(
            kill(&ProcRoot::live(), &target(u32::MAX, b""), 0)
                .reason
                .as_str(),
            "bad pid 4294967295"
        );
    }

    #[test]
    fn kill_refuses_a_kernel_thread() {
        // PID 2 is kthreadd on every Linux since 2.6 (outside odd PID namespaces). Signal 0
        // would "succeed" on it; the refusal must come first.
        let comm = std::fs::read_to_string("/proc/2/comm").unwrap_or_default();
        if comm.trim() != "kthreadd" {
            println!("SKIPPED: PID 2 is not kthreadd here");
            return;
        }
        let live = ProcRoot::live();
        let o = kill(&live, &target(2, b"kthreadd"), 0);
        assert_eq!(o.reason.as_str(), "refusing to signal a kernel thread");
        // An ordinary process of ours passes the check (signal 0 delivers nothing).
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        // spawn() returns once exec closed the CLOEXEC pipe, which the kernel does before it
        // renames the task: wait for the comm to say "sleep".
        let comm_path = format!("/proc/{}/comm", child.id());
        for _ in 0..200 {
            if std::fs::read_to_string(&comm_path).is_ok_and(|c| c.trim() == "sleep") {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let o = kill(&live, &target(child.id(), b"sleep"), 0);
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(o.result, ResultKind::Ok, "{}", o.reason);
    }

    #[test]
    fn kill_checks_comm_under_the_proc_root() {
        // A live child whose comm, as the proc root shows it, is not the one decided on:
        // kill must read the root (not the live /proc) and refuse.
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id();
        let dir = std::env::temp_dir().join(format!("gw-act-kill-{}", std::process::id()));
        std::fs::create_dir_all(dir.join(pid.to_string())).unwrap();
        std::fs::write(dir.join(pid.to_string()).join("comm"), b"other\n").unwrap();
        let root = ProcRoot::new(dir.to_str().unwrap().as_bytes()).unwrap();
        let o = kill(&root, &target(pid, b"sleep"), libc::SIGKILL);
        let alive = child.try_wait().unwrap().is_none();
        let _ = child.kill();
        let _ = child.wait();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(o.reason.as_str(), format!("pid {pid} is no longer sleep"));
        assert!(alive, "kill signalled although the root's comm differs");
    }

    #[test]
    fn steal_fd_reports_missing_process() {
        // PID numbers above pid_max are never in use.
        let o = clamp(&target(i32::MAX as u32, b""), 4096);
        assert_eq!(o.result, ResultKind::Failed);
        assert!(!o.reason.is_empty());
    }
}
