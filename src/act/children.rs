//! Commands the agent runs (exec and restart actions): spawned with a clean slate, watched
//! without blocking the poll loop, killed with their process group on timeout, reaped, audited.
//!
//! A command gets an empty environment plus a fixed PATH, cwd `/`, stdio on /dev/null, its own
//! process group, the `oom_score_adj` the agent started with (the agent lowers its own to
//! -1000; a daemon it restarts must not inherit OOM immunity) and no descriptor above 2 (the
//! agent's syslog socket, kept-open /proc files and whatever its parent leaked stay behind).
//!
//! No threads: `Running::poll` is `waitpid(WNOHANG)` plus the clock, called at every wake-up
//! of the loop (SIGCHLD wakes it, see `agent`). Spawning allocates (the filled-in argv);
//! polling a running command does not.

use crate::act::executors::{Outcome, Target};
use crate::config::Str;
use crate::output::audit::AuditLine;
use crate::output::audit::ResultKind;
use crate::sys::{self, monotonic_ms, strerror};
use core::sync::atomic::{AtomicI32, Ordering};

/// The only environment a command gets: no inherited secrets, no LD_PRELOAD, a fixed PATH.
pub const EXEC_PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";
/// The same as the `environ` a command gets: set in the child after fork (as std does for a
/// Command whose environment was changed), so neither std's environment map (a BTreeMap of
/// OsStrings, several KiB of code on a router's flash) nor an allocation per spawn is needed.
struct CleanEnv([*const libc::c_char; 2]);
// SAFETY: pointers to a 'static C string literal, never written.
unsafe impl Sync for CleanEnv {}
static CLEAN_ENV: CleanEnv = CleanEnv([
    c"PATH=/usr/sbin:/usr/bin:/sbin:/bin".as_ptr(),
    core::ptr::null(),
]);
unsafe extern "C" {
    /// The C library's environment (musl and glibc both define it).
    static mut environ: *const *const libc::c_char;
}
/// Grace between SIGTERM and SIGKILL of a command's process group.
pub const KILL_GRACE_MS: u64 = 1000;
/// How often a group that got SIGTERM is looked at (its members are not our children, so no
/// SIGCHLD says when they are gone).
const STOPPING_POLL_MS: u64 = 50;
/// Commands that may run at once; one more is refused (`result=skipped`).
pub const MAX_RUNNING: usize = 8;

/// The agent's oom_score_adj before it protected itself: what its commands get back.
static START_OOM_ADJ: AtomicI32 = AtomicI32::new(0);

/// Reads /proc/self/oom_score_adj and remembers it for commands spawned later. Call once at
/// start, before the agent lowers its own value. Unreadable: commands get 0.
pub fn remember_oom_score_adj() {
    let mut buf = [0u8; 16];
    let v = sys::CPath::from_bytes(b"/proc/self/oom_score_adj")
        .and_then(|p| sys::read_file(&p, &mut buf).map(|b| parse_i32(b.trim_ascii())))
        .ok()
        .flatten()
        .unwrap_or(0);
    START_OOM_ADJ.store(v, Ordering::Relaxed);
}

/// The value commands get (see `remember_oom_score_adj`).
pub fn start_oom_score_adj() -> i32 {
    START_OOM_ADJ.load(Ordering::Relaxed)
}

fn parse_i32(b: &[u8]) -> Option<i32> {
    core::str::from_utf8(b).ok()?.parse().ok()
}

/// Why a command was stopped before it ended by itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    Timeout,
    Shutdown,
    WaitFailed,
}

/// One command in flight.
pub struct Running {
    /// The command's PID, also its process group.
    pid: libc::pid_t,
    started_ms: u64,
    timeout_ms: u64,
    reaped: bool,
    /// Set once the group got SIGTERM: why, and when SIGKILL follows.
    stopping: Option<(Stop, u64)>,
}

impl Running {
    /// Spawns `argv` (placeholders filled from `target`), no shell. Err is the failed outcome
    /// ("empty argv", "exec failed: No such file or directory").
    ///
    /// fork + execvp done here rather than with std's `Command` (which does the same for a
    /// command with a `pre_exec` step): what the child does is listed in `exec_in_child`, and
    /// an exec failure comes back through a close-on-exec pipe, as with std. Everything the
    /// child needs is prepared before the fork, because between fork and exec only
    /// async-signal-safe calls are allowed (no allocation).
    // Outcome is a fixed-size value by design (no heap in the loop); boxing would allocate.
    #[allow(clippy::result_large_err)]
    pub fn spawn(
        argv: &[Str],
        target: Option<&Target>,
        timeout_ms: u64,
    ) -> Result<Running, Outcome> {
        let start = monotonic_ms();
        let failed = |args: core::fmt::Arguments<'_>| {
            let mut o = Outcome::failed(args);
            o.duration_ms = monotonic_ms().saturating_sub(start);
            o
        };
        let exec_failed = |e: sys::Errno| failed(format_args!("exec failed: {}", strerror(e)));
        if argv.is_empty() {
            return Err(failed(format_args!("empty argv")));
        }
        // {comm} is the target's own choice: one inert argument, or no command at all.
        let fill = target.map(|t| crate::config::argv::Fill {
            pid: t.pid,
            comm: t.comm.as_bytes(),
            inode: t.inode,
        });
        let items = crate::config::argv::substitute_all(argv, fill.as_ref())
            .map_err(|why| failed(format_args!("{why}")))?;
        if items.is_empty() {
            return Err(failed(format_args!("empty argv")));
        }
        // The items as C strings, one buffer, and the NULL-terminated pointer array execvp
        // takes. A NUL inside an item would cut it short: refused, as std's Command does.
        let mut text: Vec<u8> = Vec::new();
        for it in &items {
            let b = std::os::unix::ffi::OsStrExt::as_bytes(it.as_os_str());
            if b.contains(&0) {
                return Err(exec_failed(libc::EINVAL));
            }
            text.extend_from_slice(b);
            text.push(0);
        }
        let mut ptrs: Vec<*const libc::c_char> = Vec::with_capacity(items.len() + 1);
        let mut at = 0;
        for it in &items {
            ptrs.push(text[at..].as_ptr().cast());
            at += it.len() + 1;
        }
        ptrs.push(core::ptr::null());
        let mut adj = heapless::String::<12>::new();
        let _ = core::fmt::Write::write_fmt(&mut adj, format_args!("{}", start_oom_score_adj()));
        let dev_null = sys::CPath::from_bytes(b"/dev/null").map_err(exec_failed)?;
        let null_in = sys::Fd::open(&dev_null, libc::O_RDONLY).map_err(exec_failed)?;
        let null_out = sys::Fd::open(&dev_null, libc::O_WRONLY).map_err(exec_failed)?;
        let mut pipe = [-1 as libc::c_int; 2];
        // SAFETY: pipe is a valid array of two descriptors.
        if unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(exec_failed(sys::errno()));
        }
        let (report_rd, report_wr) = (sys::Fd::from_raw(pipe[0]), sys::Fd::from_raw(pipe[1]));
        let child = ChildSetup {
            prog: ptrs[0],
            argv: ptrs.as_ptr(),
            null_in: null_in.raw(),
            null_out: null_out.raw(),
            report: report_wr.raw(),
            oom_adj: adj.as_bytes(),
            close_range_cloexec: sys::caps::has(sys::caps::Cap::CloseRangeCloexec),
        };
        // SAFETY: fork has no memory-safety preconditions; the child only runs exec_in_child.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(exec_failed(sys::errno()));
        }
        if pid == 0 {
            // SAFETY: in the child of a fork, before exec: only async-signal-safe calls.
            unsafe { exec_in_child(&child) }
        }
        drop(report_wr);
        // The exec closes the pipe's write end: EOF means the command runs; four bytes are
        // the errno of the step that failed (the child has then exited).
        let mut buf = [0u8; 4];
        let n = report_rd.read_full(&mut buf);
        if n == Ok(0) {
            return Ok(Running {
                pid,
                started_ms: start,
                timeout_ms,
                reaped: false,
                stopping: None,
            });
        }
        let e = match n {
            Ok(4) => i32::from_ne_bytes(buf),
            Ok(_) => libc::EIO,
            Err(e) => {
                // Cannot tell whether it runs (a pipe read does not fail in practice): stop it.
                // SAFETY: our own child, not reaped yet.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                e
            }
        };
        wait_blocking(pid);
        Err(exec_failed(e))
    }

    /// The command's PID (also its process group).
    pub fn pid(&self) -> u32 {
        self.pid as u32
    }

    /// Looks at the command without blocking: `Some(outcome)` once it is over (exited, or
    /// stopped and its group gone or SIGKILLed), else None. `shutting_down` stops it now.
    ///
    /// Reasons: "exit status 3", "killed by signal 9", "timeout after 30000 ms", "stopped:
    /// agent shutting down". The group is killed only on timeout/stop, so a service the
    /// command (re)starts in the background survives a normal exit. The group is signalled
    /// only while its leader is unreaped or members live, so the PGID cannot have been reused.
    pub fn poll(&mut self, now_ms: u64, shutting_down: bool) -> Option<Outcome> {
        if !self.reaped {
            let mut status = 0;
            // SAFETY: status is a valid out-pointer; WNOHANG never blocks.
            match unsafe { libc::waitpid(self.pid, &mut status, libc::WNOHANG) } {
                0 => {}
                r if r > 0 => {
                    self.reaped = true;
                    if self.stopping.is_none() {
                        let mut o = Outcome::new(ResultKind::Ok);
                        if libc::WIFEXITED(status) {
                            let code = libc::WEXITSTATUS(status);
                            if code != 0 {
                                o = Outcome::failed(format_args!("exit status {code}"));
                            }
                        } else if libc::WIFSIGNALED(status) {
                            let sig = libc::WTERMSIG(status);
                            o = Outcome::failed(format_args!("killed by signal {sig}"));
                        }
                        return Some(self.finish(o, now_ms));
                    }
                }
                // ECHILD cannot happen for a child we own; treat any error as "cannot watch it".
                _ => {
                    self.reaped = true;
                    self.begin_stop(Stop::WaitFailed, now_ms);
                }
            }
        }
        if self.stopping.is_none() {
            if shutting_down {
                self.begin_stop(Stop::Shutdown, now_ms);
            } else if now_ms.saturating_sub(self.started_ms) >= self.timeout_ms {
                self.begin_stop(Stop::Timeout, now_ms);
            } else {
                return None;
            }
        }
        let (why, kill_at) = self.stopping?;
        // SAFETY: signal 0 only checks whether any member of our child's group is left.
        let group_gone = self.reaped && unsafe { libc::kill(-self.pid, 0) } != 0;
        if !group_gone {
            if now_ms < kill_at {
                return None;
            }
            // SAFETY: the group is ours (setpgid in the child) and still has members.
            unsafe { libc::kill(-self.pid, libc::SIGKILL) };
            if !self.reaped {
                wait_blocking(self.pid);
                self.reaped = true;
            }
        }
        let o = match why {
            Stop::Timeout => Outcome::failed(format_args!("timeout after {} ms", self.timeout_ms)),
            Stop::Shutdown => Outcome::failed(format_args!("stopped: agent shutting down")),
            Stop::WaitFailed => Outcome::failed(format_args!("could not wait for command; killed")),
        };
        Some(self.finish(o, now_ms))
    }

    /// When `poll` next has something to do without a SIGCHLD (timeout, SIGKILL, group check).
    pub fn next_wake_ms(&self, now_ms: u64) -> u64 {
        match self.stopping {
            Some((_, kill_at)) => kill_at.min(now_ms + STOPPING_POLL_MS),
            None => self.started_ms.saturating_add(self.timeout_ms),
        }
    }

    fn begin_stop(&mut self, why: Stop, now_ms: u64) {
        // SAFETY: our child's own group; the leader is unreaped or the group is checked first.
        unsafe { libc::kill(-self.pid, libc::SIGTERM) };
        self.stopping = Some((why, now_ms + KILL_GRACE_MS));
    }

    fn finish(&self, mut o: Outcome, now_ms: u64) -> Outcome {
        o.duration_ms = now_ms.saturating_sub(self.started_ms);
        o
    }
}

/// Runs `argv` to the end, blocking (tests and tools; the agent never waits like this):
/// `Running::spawn` then `poll` every 10 ms; `stop()` true stops it like an agent shutdown.
pub fn run_blocking(
    argv: &[Str],
    target: Option<&Target>,
    timeout_ms: u64,
    stop: &dyn Fn() -> bool,
) -> Outcome {
    let mut r = match Running::spawn(argv, target, timeout_ms) {
        Ok(r) => r,
        Err(o) => return o,
    };
    loop {
        if let Some(o) = r.poll(monotonic_ms(), stop()) {
            return o;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Waits for `pid` (our child) to end, retrying on EINTR; its status is not needed.
fn wait_blocking(pid: libc::pid_t) {
    let mut status = 0;
    // SAFETY: status is a valid out-pointer.
    while unsafe { libc::waitpid(pid, &mut status, 0) } < 0 && sys::errno() == libc::EINTR {}
}

/// What the child of `Running::spawn` needs, all prepared before the fork.
struct ChildSetup<'a> {
    prog: *const libc::c_char,
    /// NULL-terminated, pointing into the parent's (copied) buffer.
    argv: *const *const libc::c_char,
    /// /dev/null opened for reading (stdin) and for writing (stdout, stderr), close-on-exec.
    null_in: libc::c_int,
    null_out: libc::c_int,
    /// The write end of the close-on-exec pipe an exec failure is reported through.
    report: libc::c_int,
    oom_adj: &'a [u8],
    /// close_range with CLOSE_RANGE_CLOEXEC works here (`sys::caps`, probed in the parent):
    /// else the child walks /proc/self/fd without trying it.
    close_range_cloexec: bool,
}

/// The child's side of `Running::spawn`, in the order std's `Command` does it: stdio on
/// /dev/null, cwd `/`, its own process group, an empty signal mask and SIGPIPE back to its
/// default (the agent ignores it), then the clean slate (oom_score_adj, descriptors above 2
/// close-on-exec), the clean environment and execvp (which searches that environment's
/// PATH). A step that fails, or the exec, sends its errno through `report` and the child
/// exits 127. Only raw syscalls on data prepared before the fork (async-signal-safe).
///
/// # Safety
/// Call only in the child of a fork, with `c`'s pointers valid (they are copies of the
/// parent's memory).
unsafe fn exec_in_child(c: &ChildSetup<'_>) -> ! {
    let fail = |e: libc::c_int| -> ! {
        let b = e.to_ne_bytes();
        // SAFETY: b is 4 valid bytes; _exit ends the child without running the parent's
        // atexit handlers or flushing its buffers.
        unsafe {
            libc::write(c.report, b.as_ptr().cast(), b.len());
            libc::_exit(127)
        }
    };
    let ok = |r: libc::c_int| {
        if r < 0 {
            fail(sys::errno())
        }
    };
    // SAFETY: plain syscalls on descriptors and NUL-terminated literals; set is a valid
    // sigset_t; `environ` is the C library's and this process has one thread.
    unsafe {
        for (from, to) in [(c.null_in, 0), (c.null_out, 1), (c.null_out, 2)] {
            while libc::dup2(from, to) < 0 {
                if sys::errno() != libc::EINTR {
                    fail(sys::errno())
                }
            }
        }
        ok(libc::chdir(c"/".as_ptr()));
        ok(libc::setpgid(0, 0));
        let mut set: libc::sigset_t = core::mem::zeroed();
        libc::sigemptyset(&mut set);
        ok(libc::pthread_sigmask(
            libc::SIG_SETMASK,
            &set,
            core::ptr::null_mut(),
        ));
        if libc::signal(libc::SIGPIPE, libc::SIG_DFL) == libc::SIG_ERR {
            fail(sys::errno())
        }
        clean_slate_in_child(c.oom_adj, c.close_range_cloexec);
        environ = CLEAN_ENV.0.as_ptr();
        libc::execvp(c.prog, c.argv);
    }
    fail(sys::errno())
}

/// Between fork and exec: give the command the agent's original oom_score_adj and mark every
/// descriptor above 2 close-on-exec: one close_range call where the kernel has its CLOEXEC flag
/// (`one_call`, Linux >= 5.11), else a walk of /proc/self/fd. Only raw syscalls on stack data
/// (async-signal-safe, no allocation). Marking instead of closing keeps the exec-error pipe
/// working (it is CLOEXEC already).
fn clean_slate_in_child(oom_adj: &[u8], one_call: bool) {
    // SAFETY: NUL-terminated literal path; write/close on the fd just opened.
    unsafe {
        let fd = libc::open(
            c"/proc/self/oom_score_adj".as_ptr(),
            libc::O_WRONLY | libc::O_CLOEXEC,
        );
        if fd >= 0 {
            libc::write(fd, oom_adj.as_ptr().cast(), oom_adj.len());
            libc::close(fd);
        }
    }
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: integer syscall (Linux >= 5.11 for the CLOEXEC flag).
    let r = if one_call {
        unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, CLOSE_RANGE_CLOEXEC) }
    } else {
        -1
    };
    if r != 0 {
        cloexec_by_listing();
    }
}

/// Older kernels: walk /proc/self/fd with getdents64 into a stack buffer, falling back to
/// every number below RLIMIT_NOFILE (capped) when /proc is not there.
fn cloexec_by_listing() {
    let set = |fd: libc::c_int| {
        // SAFETY: fcntl on a descriptor number; a closed one just fails with EBADF.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    };
    // SAFETY: NUL-terminated literal path.
    let dir = unsafe {
        libc::open(
            c"/proc/self/fd".as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if dir < 0 {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: lim is a valid out-pointer.
        let max = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
            lim.rlim_cur.min(65_536) as libc::c_int
        } else {
            1024
        };
        (3..max).for_each(set);
        return;
    }
    let mut buf = [0u8; 1024];
    loop {
        // SAFETY: buf is valid for its length; dir is a directory fd we own.
        let n = unsafe { libc::syscall(libc::SYS_getdents64, dir, buf.as_mut_ptr(), buf.len()) };
        if n <= 0 {
            break;
        }
        let mut off = 0usize;
        while off + 19 < n as usize {
            // struct linux_dirent64: u64 ino, i64 off, u16 reclen, u8 type, name[].
            let reclen = u16::from_ne_bytes([buf[off + 16], buf[off + 17]]) as usize;
            if reclen == 0 || off + reclen > n as usize {
                break;
            }
            let name = &buf[off + 19..off + reclen];
            let name = &name[..name.iter().position(|&c| c == 0).unwrap_or(name.len())];
            if let Some(fd) = sys::parse_u32(name) {
                if fd > 2 && fd as libc::c_int != dir {
                    set(fd as libc::c_int);
                }
            }
            off += reclen;
        }
    }
    // SAFETY: our own directory fd.
    unsafe { libc::close(dir) };
}

/// A running command with what its audit line needs once it ends.
pub struct Job {
    pub run: Running,
    /// The rule's name: one command per rule at a time.
    pub rule: crate::config::Name,
    /// The audit line up to the result (event, rule, action, trigger, measurements at start).
    pub line: AuditLine,
}

/// The commands in flight (fixed capacity, no allocation to poll).
#[derive(Default)]
pub struct Children {
    jobs: heapless::Vec<Job, MAX_RUNNING>,
}

impl Children {
    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    pub fn is_full(&self) -> bool {
        self.jobs.is_full()
    }

    /// True while a command of rule `name` runs.
    pub fn runs(&self, name: &str) -> bool {
        self.jobs.iter().any(|j| j.rule.as_str() == name)
    }

    /// Adds a started job; gives it back if the table is full.
    #[allow(clippy::result_large_err)]
    pub fn push(&mut self, job: Job) -> Result<(), Job> {
        self.jobs.push(job)
    }

    /// Polls every job; hands each finished one to `done` with its outcome and drops it.
    pub fn reap(&mut self, now_ms: u64, shutting_down: bool, done: &mut dyn FnMut(Job, Outcome)) {
        let mut i = 0;
        while i < self.jobs.len() {
            if let Some(o) = self.jobs[i].run.poll(now_ms, shutting_down) {
                let job = self.jobs.swap_remove(i);
                done(job, o);
            } else {
                i += 1;
            }
        }
    }

    /// The earliest time a job needs looking at without a SIGCHLD, if any runs.
    pub fn next_wake_ms(&self, now_ms: u64) -> Option<u64> {
        self.jobs.iter().map(|j| j.run.next_wake_ms(now_ms)).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(a: &[&str]) -> Vec<Str> {
        a.iter().map(|s| Str::try_from(*s).unwrap()).collect()
    }

    /// Runs `argv` to its end and returns the outcome's reason ("" when it exited 0).
    fn run_to_end(a: &[&str]) -> String {
        let mut r = Running::spawn(&argv(a), None, 5000).unwrap();
        loop {
            if let Some(o) = r.poll(monotonic_ms(), false) {
                return o.reason.as_str().to_string();
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    #[test]
    fn command_environment_is_exactly_path() {
        assert_eq!(CLEAN_ENV.0[1], core::ptr::null());
        // SAFETY: a NUL-terminated literal.
        let first = unsafe { core::ffi::CStr::from_ptr(CLEAN_ENV.0[0]) };
        assert_eq!(first.to_str().unwrap(), format!("PATH={EXEC_PATH}"));
        // What the shell itself adds (PWD, SHLVL, _) aside, the command sees PATH only: none
        // of this test process's variables (cargo sets CARGO_* for it).
        assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some());
        let script = r#"test "$(env | grep -v -e '^PWD=' -e '^SHLVL=' -e '^_=')" = "PATH=$0""#;
        assert_eq!(run_to_end(&["sh", "-c", script, EXEC_PATH]), "");
        assert_eq!(run_to_end(&["sh", "-c", "exit 3"]), "exit status 3");
    }

    #[test]
    fn command_gets_default_sigpipe_and_an_empty_signal_mask() {
        // This test process ignores SIGPIPE (Rust's runtime does) and its thread blocks
        // SIGUSR1 for a moment: neither may reach the command (as with std's Command).
        // SAFETY: a valid sigset for this thread's mask, restored below.
        let mut set: libc::sigset_t = unsafe { core::mem::zeroed() };
        unsafe {
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGUSR1);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, core::ptr::null_mut());
        }
        let bit = |sig: i32| format!("{}", 1u64 << (sig - 1));
        let script = r#"s=/proc/$$/status;i=$(sed -n 's/^SigIgn:\t//p' $s);b=$(sed -n 's/^SigBlk:\t//p' $s);[ $((0x$i&$1)) = 0 ]&&[ $((0x$b&$2)) = 0 ]"#;
        let (pipe, usr1) = (bit(libc::SIGPIPE), bit(libc::SIGUSR1));
        let got = run_to_end(&["sh", "-c", script, "sh", &pipe, &usr1]);
        // SAFETY: as above.
        unsafe { libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, core::ptr::null_mut()) };
        assert_eq!(got, "");
    }

    #[test]
    fn poll_does_not_block_and_reports_the_end() {
        let mut r = Running::spawn(&argv(&["sh", "-c", "sleep 0.3; exit 4"]), None, 5000).unwrap();
        let t0 = monotonic_ms();
        assert!(r.poll(t0, false).is_none());
        assert!(monotonic_ms() - t0 < 50, "poll blocked");
        let o = loop {
            if let Some(o) = r.poll(monotonic_ms(), false) {
                break o;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        assert_eq!(o.reason.as_str(), "exit status 4");
        assert!(o.duration_ms >= 300, "{}", o.duration_ms);
    }

    #[test]
    fn table_reaps_only_finished_jobs() {
        let mut c = Children::default();
        for (name, script) in [("slow", "sleep 5"), ("fast", "true")] {
            let run = Running::spawn(&argv(&["sh", "-c", script]), None, 10_000).unwrap();
            let job = Job {
                run,
                rule: crate::config::Name::try_from(name).unwrap(),
                line: AuditLine::new("action"),
            };
            assert!(c.push(job).is_ok());
        }
        assert!(c.runs("slow") && c.runs("fast") && !c.runs("other"));
        let mut ended = Vec::new();
        for _ in 0..200 {
            c.reap(monotonic_ms(), false, &mut |j, o| {
                ended.push((j.rule.to_string(), o.result))
            });
            if !ended.is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(ended, vec![("fast".to_string(), ResultKind::Ok)]);
        assert_eq!(c.len(), 1);
        // Shutting down stops the slow one (TERM, it goes at once).
        let mut stopped = Vec::new();
        for _ in 0..200 {
            c.reap(monotonic_ms(), true, &mut |_, o| stopped.push(o.reason));
            if c.is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(stopped.len(), 1);
        assert_eq!(stopped[0].as_str(), "stopped: agent shutting down");
    }
}
