//! Commands the agent runs (exec and restart actions): spawned with a clean slate, watched
//! without blocking the poll loop, killed with their process group on timeout, reaped, audited.
//!
//! A command gets an empty environment plus a fixed PATH, cwd `/`, stdio on /dev/null, its own
//! process group, the `oom_score_adj` the agent started with (the agent lowers its own to
//! -1000; a daemon it restarts must not inherit OOM immunity) and no descriptor above 2 (the
//! agent's syslog socket, kept-open /proc files and whatever its parent leaked stay behind).
//!
//! No threads: `Running::poll` is `waitpid(WNOHANG)` plus the clock, called at every wake-up
//! of the loop (SIGCHLD wakes it, see `agent`). Spawning allocates (argv, std's Command);
//! polling a running command does not.

use crate::act::{Outcome, ResultKind, Target};
use crate::audit::AuditLine;
use crate::config::Str;
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
    child: std::process::Child,
    pgid: libc::pid_t,
    started_ms: u64,
    timeout_ms: u64,
    reaped: bool,
    /// Set once the group got SIGTERM: why, and when SIGKILL follows.
    stopping: Option<(Stop, u64)>,
}

impl Running {
    /// Spawns `argv` (placeholders filled from `target`), no shell. Err is the failed outcome
    /// ("empty argv", "exec failed: No such file or directory").
    // Outcome is a fixed-size value by design (no heap in the loop); boxing would allocate.
    #[allow(clippy::result_large_err)]
    pub fn spawn(
        argv: &[Str],
        target: Option<&Target>,
        timeout_ms: u64,
    ) -> Result<Running, Outcome> {
        use std::os::unix::process::CommandExt;
        use std::process::{Command, Stdio};

        let start = monotonic_ms();
        let failed = |args: core::fmt::Arguments<'_>| {
            let mut o = Outcome::failed(args);
            o.duration_ms = monotonic_ms().saturating_sub(start);
            o
        };
        if argv.is_empty() {
            return Err(failed(format_args!("empty argv")));
        }
        // {comm} is the target's own choice: one inert argument, or no command at all.
        let fill = target.map(|t| crate::argv::Fill {
            pid: t.pid,
            comm: t.comm.as_bytes(),
            inode: t.inode,
        });
        let items = crate::argv::substitute_all(argv, fill.as_ref())
            .map_err(|why| failed(format_args!("{why}")))?;
        let Some((prog, args)) = items.split_first() else {
            return Err(failed(format_args!("empty argv")));
        };
        let mut adj = heapless::String::<12>::new();
        let _ = core::fmt::Write::write_fmt(&mut adj, format_args!("{}", start_oom_score_adj()));
        let mut cmd = Command::new(prog);
        cmd.args(args)
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        // SAFETY: the closure only makes raw syscalls on stack data (async-signal-safe), as
        // required between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                // execvp, which std calls next, searches this PATH and passes this environ.
                environ = CLEAN_ENV.0.as_ptr();
                clean_slate_in_child(adj.as_bytes());
                Ok(())
            })
        };
        match cmd.spawn() {
            Ok(child) => Ok(Running {
                pgid: child.id() as libc::pid_t,
                child,
                started_ms: start,
                timeout_ms,
                reaped: false,
                stopping: None,
            }),
            Err(e) => {
                let e = e.raw_os_error().unwrap_or(libc::EIO);
                Err(failed(format_args!("exec failed: {}", strerror(e))))
            }
        }
    }

    /// The command's PID (also its process group).
    pub fn pid(&self) -> u32 {
        self.pgid as u32
    }

    /// Looks at the command without blocking: `Some(outcome)` once it is over (exited, or
    /// stopped and its group gone or SIGKILLed), else None. `shutting_down` stops it now.
    ///
    /// Reasons: "exit status 3", "killed by signal 9", "timeout after 30000 ms", "stopped:
    /// agent shutting down". The group is killed only on timeout/stop, so a service the
    /// command (re)starts in the background survives a normal exit. The group is signalled
    /// only while its leader is unreaped or members live, so the PGID cannot have been reused.
    pub fn poll(&mut self, now_ms: u64, shutting_down: bool) -> Option<Outcome> {
        use std::os::unix::process::ExitStatusExt;
        if !self.reaped {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    self.reaped = true;
                    if self.stopping.is_none() {
                        let mut o = Outcome::new(ResultKind::Ok);
                        if let Some(code) = status.code() {
                            if code != 0 {
                                o = Outcome::failed(format_args!("exit status {code}"));
                            }
                        } else if let Some(sig) = status.signal() {
                            o = Outcome::failed(format_args!("killed by signal {sig}"));
                        }
                        return Some(self.finish(o, now_ms));
                    }
                }
                Ok(None) => {}
                // ECHILD cannot happen for a child we own; treat any error as "cannot watch it".
                Err(_) => {
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
        let group_gone = self.reaped && unsafe { libc::kill(-self.pgid, 0) } != 0;
        if !group_gone {
            if now_ms < kill_at {
                return None;
            }
            // SAFETY: the group is ours (process_group(0)) and still has members.
            unsafe { libc::kill(-self.pgid, libc::SIGKILL) };
            if !self.reaped {
                let _ = self.child.wait();
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
        unsafe { libc::kill(-self.pgid, libc::SIGTERM) };
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

/// Between fork and exec: give the command the agent's original oom_score_adj and mark every
/// descriptor above 2 close-on-exec. Only raw syscalls on stack data (async-signal-safe).
/// Marking instead of closing keeps std's own exec-error pipe working (it is CLOEXEC already).
fn clean_slate_in_child(oom_adj: &[u8]) {
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
    let r = unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, CLOSE_RANGE_CLOEXEC) };
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
