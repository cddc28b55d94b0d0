//! Keeps named processes out of the OOM killer's reach: the watchdog feeder (an OOM kill of
//! `feeddog` is a hardware reset with no trace) and the agent itself get oom_score_adj -1000.
//!
//! Finding new PIDs cheaply, without a /proc walk every poll: the kernel hands out PIDs in
//! increasing order (wrapping at pid_max) and /proc/loadavg's last field is the last PID it
//! handed out. Each poll reads that one small file; when it moved, only the PIDs handed out
//! since the poll *before the previous one* are probed (two polls back, so a fork seen as
//! `sh` is probed again after it has exec'd `feeddog`). Each probe is one read of
//! /proc/PID/comm, ENOENT for a PID that already exited. When more than `PROBE_MAX` PIDs were
//! handed out (a fork storm, a wrap) or loadavg cannot be read (a fixture tree), the protector
//! walks /proc once instead; it also walks every `SWEEP_EVERY` polls as a safety net (a
//! process that renamed itself). On a router that is ~100 comm reads, well under a millisecond.
//!
//! Matching is as hostile-proof as the rest of the agent: a bare name matches `comm` only for
//! processes whose real uid is 0 (any user can name a process "feeddog"; -1000 would make
//! that user's memory hog unkillable); an absolute path matches by the device and inode of
//! /proc/PID/exe against those of the path, resolved when the config is loaded.
//!
//! Setting -1000 needs CAP_SYS_RESOURCE (lowering below the process's oom_score_adj_min, 0
//! by default). Without it the kernel says EACCES; the protector then lowers a positive value
//! to 0 (allowed) and audits `result=failed` with the reason, once per PID.
//!
//! Nothing here allocates: paths are stack `CPath`s, the directory walk reuses libc's DIR.

use crate::config::Str;
use crate::observe::proc::{ProcRoot, pid};
use crate::sys::{self, CPath, Errno, Fd};

/// Longest `protect` list.
pub const MAX_PROTECT: usize = 8;
/// Most PIDs probed one by one in a poll; above this a single /proc walk is cheaper.
pub const PROBE_MAX: u32 = 256;
/// A full /proc walk at least this often (polls), whatever loadavg says.
pub const SWEEP_EVERY: u64 = 60;
/// What protected processes get.
pub const PROTECTED_ADJ: i32 = -1000;
/// Failed PIDs remembered so a sweep does not audit the same failure again.
const FAILED_MEMORY: usize = 16;

/// One `protect` entry as resolved at config load.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Matcher {
    /// comm equality (the name cut to 15 bytes, as the kernel cuts it), uid 0 only.
    Comm(heapless::Vec<u8, 15>),
    /// device + inode of the configured absolute path; None if it could not be stat'ed
    /// (the binary is not installed yet: re-resolved at every sweep).
    Exe { path: Str, id: Option<(u64, u64)> },
}

/// What happened to one process, for its `event=protect` line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProtectEvent {
    pub pid: u32,
    pub comm: pid::Comm,
    /// Ok: oom_score_adj is now -1000. Err(errno) of the -1000 write.
    pub result: Result<(), Errno>,
    /// oom_score_adj read back after the attempt (None if unreadable).
    pub now_adj: Option<i32>,
}

impl ProtectEvent {
    /// The audit reason for a failed attempt.
    pub fn reason(&self) -> Option<&'static str> {
        match self.result {
            Ok(()) => None,
            Err(libc::EACCES) | Err(libc::EPERM) => Some(
                "kernel refused -1000: needs CAP_SYS_RESOURCE (lowered to 0 where it was higher)",
            ),
            Err(libc::ENOENT) | Err(libc::ESRCH) => Some("process exited"),
            Err(_) => Some("cannot write oom_score_adj"),
        }
    }
}

/// The protector's state: resolved names, the last PIDs seen, its kept-open loadavg.
pub struct Protector {
    matchers: heapless::Vec<Matcher, MAX_PROTECT>,
    loadavg: Option<Fd>,
    /// last_pid at the previous poll and the one before (0: unknown).
    last_pids: [u32; 2],
    pid_max: u32,
    polls: u64,
    failed: heapless::Deque<u32, FAILED_MEMORY>,
}

impl Default for Protector {
    fn default() -> Self {
        Protector::new()
    }
}

impl Protector {
    pub fn new() -> Protector {
        Protector {
            matchers: heapless::Vec::new(),
            loadavg: None,
            last_pids: [0; 2],
            pid_max: 0,
            polls: 0,
            failed: heapless::Deque::new(),
        }
    }

    /// Takes the config's `protect` list (names or absolute exe paths); the next poll sweeps.
    pub fn configure(&mut self, root: &ProcRoot, list: &[Str]) {
        self.matchers.clear();
        for entry in list {
            let m = if entry.starts_with('/') {
                Matcher::Exe {
                    path: entry.clone(),
                    id: stat_id(entry.as_bytes()),
                }
            } else {
                let mut name = heapless::Vec::new();
                let _ = name.extend_from_slice(&entry.as_bytes()[..entry.len().min(15)]);
                Matcher::Comm(name)
            };
            let _ = self.matchers.push(m);
        }
        self.last_pids = [0; 2];
        self.polls = 0;
        if self.pid_max == 0 {
            self.pid_max = read_pid_max(root);
        }
    }

    /// True if nothing is configured (the agent's own protection is separate).
    pub fn is_empty(&self) -> bool {
        self.matchers.is_empty()
    }

    /// One poll: probes new PIDs (or sweeps) and calls `report` for each process whose
    /// oom_score_adj it changed or failed to change. Never allocates.
    pub fn poll(&mut self, root: &ProcRoot, report: &mut dyn FnMut(ProtectEvent)) {
        if self.matchers.is_empty() {
            return;
        }
        self.polls += 1;
        let last = self.read_last_pid(root);
        let sweep = self.polls == 1 || self.polls % SWEEP_EVERY == 0;
        match last {
            Some(now) if !sweep && self.last_pids[0] != 0 => {
                let since = self.last_pids[0];
                self.last_pids = [self.last_pids[1], now];
                let n = pid_distance(since, now, self.pid_max);
                if n == 0 {
                    return;
                }
                if n > PROBE_MAX {
                    self.sweep(root, report);
                    return;
                }
                let mut p = since;
                for _ in 0..n {
                    p = if p >= self.pid_max.saturating_sub(1) {
                        1
                    } else {
                        p + 1
                    };
                    self.check(root, p, report);
                }
            }
            Some(now) => {
                // First poll after (re)configuration: seed both slots, sweep once.
                self.last_pids = [now, now];
                self.sweep(root, report);
            }
            None => {
                if sweep || self.polls % 10 == 0 {
                    self.sweep(root, report);
                }
            }
        }
    }

    /// Walks every PID under the root once.
    fn sweep(&mut self, root: &ProcRoot, report: &mut dyn FnMut(ProtectEvent)) {
        for m in self.matchers.iter_mut() {
            if let Matcher::Exe {
                path,
                id: id @ None,
            } = m
            {
                *id = stat_id(path.as_bytes());
            }
        }
        let _ = pid::for_each_pid(root, &mut |p| self.check(root, p, report));
    }

    /// Protects `p` if it matches; reports a change or a (first) failure.
    fn check(&mut self, root: &ProcRoot, p: u32, report: &mut dyn FnMut(ProtectEvent)) {
        let Ok(comm) = pid::read_comm(root, p) else {
            return;
        };
        if !self.matches(root, p, &comm) {
            return;
        }
        if read_adj(root, p) == Some(PROTECTED_ADJ) {
            return;
        }
        let ev = set_protected(root, p, comm);
        if ev.result.is_err() {
            if self.failed.iter().any(|&f| f == p) {
                return;
            }
            if self.failed.is_full() {
                self.failed.pop_front();
            }
            let _ = self.failed.push_back(p);
        }
        report(ev);
    }

    fn matches(&self, root: &ProcRoot, p: u32, comm: &pid::Comm) -> bool {
        let mut uid_checked: Option<bool> = None;
        for m in &self.matchers {
            match m {
                Matcher::Comm(name) => {
                    if comm.as_bytes() != name.as_slice() {
                        continue;
                    }
                    let root_owned =
                        *uid_checked.get_or_insert_with(|| real_uid(root, p) == Some(0));
                    if root_owned {
                        return true;
                    }
                }
                Matcher::Exe { id: Some(want), .. } => {
                    let got = root
                        .pid_path(p, b"exe")
                        .ok()
                        .and_then(|path| stat_id(path.as_bytes()));
                    if got == Some(*want) {
                        return true;
                    }
                }
                Matcher::Exe { id: None, .. } => {}
            }
        }
        false
    }

    /// The last PID the kernel handed out, from /proc/loadavg ("0.00 0.01 0.05 1/123 4567").
    fn read_last_pid(&mut self, root: &ProcRoot) -> Option<u32> {
        if self.loadavg.is_none() {
            self.loadavg = root.open(b"loadavg").ok();
        }
        let fd = self.loadavg.as_ref()?;
        let mut buf = [0u8; 128];
        let got = fd.rewind().and_then(|_| fd.read(&mut buf));
        let n = match got {
            Ok(n) => n,
            Err(_) => {
                self.loadavg = None;
                return None;
            }
        };
        let text = buf.get(..n)?;
        let last = text
            .split(|c| c.is_ascii_whitespace())
            .filter(|f| !f.is_empty())
            .nth(4)?;
        sys::parse_u32(last)
    }
}

/// How many PIDs were handed out going from `from` to `to` (wrapping at pid_max).
fn pid_distance(from: u32, to: u32, pid_max: u32) -> u32 {
    if to >= from {
        to - from
    } else {
        // Wrapped: pid_max-1 is the highest PID, allocation restarts above the reserved low PIDs.
        pid_max.saturating_sub(from).saturating_add(to)
    }
}

/// /proc/sys/kernel/pid_max (default 32768 if unreadable: only used to follow a wrap).
fn read_pid_max(root: &ProcRoot) -> u32 {
    let mut buf = [0u8; 32];
    root.path(b"sys/kernel/pid_max")
        .ok()
        .and_then(|p| sys::read_file(&p, &mut buf).ok().map(trim))
        .and_then(sys::parse_u32)
        .unwrap_or(32_768)
}

fn trim(b: &[u8]) -> &[u8] {
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    &b[..end]
}

/// The real uid of `p` (first field of status's Uid line).
fn real_uid(root: &ProcRoot, p: u32) -> Option<u32> {
    let mut buf = [0u8; 1024];
    pid::read_status(root, p, &mut buf).ok().map(|s| s.uid)
}

/// (st_dev, st_ino) of `path`, following symlinks (so /proc/PID/exe gives the binary's).
fn stat_id(path: &[u8]) -> Option<(u64, u64)> {
    let c = CPath::from_bytes(path).ok()?;
    // SAFETY: zeroed stat is a valid out-buffer; path is NUL-terminated.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    if unsafe { libc::stat(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some((st.st_dev as u64, st.st_ino as u64))
}

/// /proc/PID/oom_score_adj as a number.
pub fn read_adj(root: &ProcRoot, p: u32) -> Option<i32> {
    let mut buf = [0u8; 16];
    let path = root.pid_path(p, b"oom_score_adj").ok()?;
    let t = trim(sys::read_file(&path, &mut buf).ok()?);
    let (neg, digits) = match t.strip_prefix(b"-") {
        Some(d) => (true, d),
        None => (false, t),
    };
    let v = sys::parse_u32(digits)? as i32;
    Some(if neg { -v } else { v })
}

/// Writes `value` to the oom_score_adj file at `path`.
fn write_adj(path: &CPath, value: i32) -> Result<(), Errno> {
    let mut num = [0u8; 12];
    let mut text: heapless::Vec<u8, 12> = heapless::Vec::new();
    if value < 0 {
        let _ = text.push(b'-');
    }
    let _ = text.extend_from_slice(sys::fmt_u64(value.unsigned_abs() as u64, &mut num));
    Fd::open(path, libc::O_WRONLY)?.write_all(&text)
}

/// Sets `p`'s oom_score_adj to -1000; on EACCES lowers a positive value to 0 instead.
pub fn set_protected(root: &ProcRoot, p: u32, comm: pid::Comm) -> ProtectEvent {
    let result = root.pid_path(p, b"oom_score_adj").and_then(|path| {
        write_adj(&path, PROTECTED_ADJ).inspect_err(|&e| {
            if e == libc::EACCES && read_adj(root, p).is_some_and(|v| v > 0) {
                let _ = write_adj(&path, 0);
            }
        })
    });
    ProtectEvent {
        pid: p,
        comm,
        result,
        now_adj: read_adj(root, p),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_follows_a_wrap() {
        assert_eq!(pid_distance(100, 100, 32768), 0);
        assert_eq!(pid_distance(100, 150, 32768), 50);
        assert_eq!(pid_distance(32760, 5, 32768), 13);
    }

    #[test]
    fn own_adj_reads_back() {
        let root = ProcRoot::live();
        let me = std::process::id();
        assert!(read_adj(&root, me).is_some());
        assert_eq!(read_adj(&root, u32::MAX - 1), None);
    }

    #[test]
    fn last_pid_moves_when_a_process_starts() {
        let root = ProcRoot::live();
        let mut p = Protector::new();
        let a = p.read_last_pid(&root).expect("loadavg");
        let child = std::process::Command::new("true").status().unwrap();
        assert!(child.success());
        let b = p.read_last_pid(&root).expect("loadavg");
        assert_ne!(a, b);
    }
}
