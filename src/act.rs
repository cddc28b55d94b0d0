//! Action executors: exec/restart, sysctl, clamp, drain, kill, reboot. Each returns an
//! `Outcome` the agent audits. I/O lives here; deciding *whether* to act lives in policy.
//!
//! OWNER: actions.

use crate::proc::ProcRoot;
use crate::proc::pid::Comm;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResultKind {
    Ok,
    Failed,
    Skipped,
    DryRun,
}

impl ResultKind {
    /// Contract text: "ok", "failed", "skipped", "dry-run".
    pub fn name(self) -> &'static str {
        match self {
            ResultKind::Ok => "ok",
            ResultKind::Failed => "failed",
            ResultKind::Skipped => "skipped",
            ResultKind::DryRun => "dry-run",
        }
    }
}

/// What happened, for the audit line. `detail` holds extra logfmt pairs (e.g. `old=212992 new=4096`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub result: ResultKind,
    pub reason: heapless::String<128>,
    pub detail: heapless::String<192>,
    pub duration_ms: u64,
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

/// Runs `argv` directly (no shell) with an empty fixed environment (PATH only), substituting
/// `{pid}`, `{comm}`, `{inode}` from `target`; kills its process group after `timeout_ms` or
/// as soon as `stop()` says the agent is shutting down. Ok only on exit status 0.
pub fn exec(
    argv: &[crate::config::Str],
    target: Option<&Target>,
    timeout_ms: u64,
    stop: &dyn Fn() -> bool,
) -> Outcome {
    let _ = (argv, target, timeout_ms, stop);
    todo!()
}

/// Writes `value` to ROOT/sys/<name with dots as slashes>; detail says `old=... new=...`.
pub fn sysctl(root: &ProcRoot, name: &str, value: &str) -> Outcome {
    let _ = (root, name, value);
    todo!()
}

/// Caps the target's live socket: pidfd_open + pidfd_getfd, then SO_RCVBUF = rcvbuf on the
/// duplicate (Linux >= 5.6, CAP_SYS_PTRACE). Checks the duplicate is the expected inode.
pub fn clamp(target: &Target, rcvbuf: u32) -> Outcome {
    let _ = (target, rcvbuf);
    todo!()
}

/// Discards the target socket's queued data through a duplicate (recv MSG_DONTWAIT|MSG_TRUNC),
/// bounded by `max_packets` and `max_ms`; detail says how many packets and bytes.
pub fn drain(target: &Target, max_packets: u32, max_ms: u64) -> Outcome {
    let _ = (target, max_packets, max_ms);
    todo!()
}

/// Signals the target. Refuses PID 1 and the agent itself.
pub fn kill(target: &Target, signal: i32) -> Outcome {
    let _ = (target, signal);
    todo!()
}

/// sync, write `breadcrumb_text` to `breadcrumb_file` (fsync), then reboot(2).
pub fn reboot(breadcrumb_file: &str, breadcrumb_text: &str) -> Outcome {
    let _ = (breadcrumb_file, breadcrumb_text);
    todo!()
}
