//! The record stage: every audit line the agent sends (numbered with `seq`), the counters behind
//! the status and metrics files, and writing those files after each poll.
//! Must not read the box or decide: it is handed decisions, outcomes and figures, and writes them.

use crate::act::executors::Outcome;
use crate::config::{Config, Trigger};
use crate::decide::policy::{Decision, Level, Policy, Snapshot};
use crate::observe::proc::net::SocketEntry;
use crate::observe::sockets::NsScan;
use crate::output::audit::{AuditLine, ResultKind};
use crate::output::sink::{self, Severity};
use crate::output::status::{self, IncidentLevel, Stats};
use crate::sys;
use core::fmt::Write as _;

/// What the observe stage saw last, handed to the recorder for the files (plain numbers).
#[derive(Clone, Copy, Debug, Default)]
pub struct Seen {
    pub ghost_kb: i64,
    /// meminfo was read but Ghost could not be computed (the files say null).
    pub ghost_unknown: bool,
    pub mem_total_kb: u64,
    pub available_kb: Option<u64>,
    pub worst: Option<SocketEntry>,
    pub sockets_seen: u64,
    pub tables_read: u32,
    /// The namespaces the last socket read covered, and what they cost.
    pub netns: NsScan,
}

/// The record stage's state: the counters the files show.
#[derive(Default)]
pub struct Recorder {
    stats: Stats,
}

impl Recorder {
    /// The counters as the files show them (for tests and benches).
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Sends an audit line with the next sequence number.
    pub fn emit(&mut self, sev: Severity, mut line: AuditLine) {
        self.stats.seq += 1;
        line.kvd("seq", self.stats.seq);
        sink::emit(sev, line.as_str());
    }

    /// Counts a failed read and audits it, the first 10 and then every 100th.
    pub fn read_error(&mut self, what: &str, err: impl core::fmt::Display) {
        self.stats.read_errors += 1;
        // One line per distinct failure would be ideal; a failing /proc read is rare enough
        // that one line per poll, rate-limited to the first 10 and then every 100th, is fine.
        let n = self.stats.read_errors;
        if n <= 10 || n % 100 == 0 {
            let mut l = AuditLine::new("error");
            let mut msg = heapless::String::<160>::new();
            let _ = write!(msg, "{what}: {err}");
            l.kv("reason", msg.as_bytes()).kvd("errors_total", n);
            self.emit(Severity::Err, l);
        }
    }

    /// The policy's own incident state and action budget, for the files: one source of truth.
    pub fn decided(&mut self, policy: &Policy, now_ms: u64) {
        for t in Trigger::ALL {
            self.stats.incidents[t.index()] = IncidentLevel::from(policy.level(t));
        }
        self.stats.actions_last_hour = policy.actions_in_last_hour(now_ms) as u64;
    }

    /// Audits a decision that is not an action to carry out (threshold, recovered, skip).
    /// Returns false for `Decision::Act`, which the act stage audits with its outcome.
    pub fn decision(&mut self, cfg: &Config, d: &Decision, snap: &Snapshot) -> bool {
        match *d {
            Decision::Threshold {
                trigger,
                level,
                value,
            } => {
                let mut l = AuditLine::new("threshold");
                l.kv("trigger", trigger.name().as_bytes())
                    .kv("level", level.name().as_bytes())
                    .kvd("value", value);
                measurement_pairs(
                    &mut l,
                    snap,
                    trigger,
                    snap.suspects.first().map(|_| 0),
                    None,
                );
                let sev = if level == Level::Act {
                    Severity::Warning
                } else {
                    Severity::Notice
                };
                self.emit(sev, l);
            }
            Decision::Recovered {
                trigger,
                value,
                held_ms,
            } => {
                let mut l = AuditLine::new("recovered");
                l.kv("trigger", trigger.name().as_bytes())
                    .kvd("value", value)
                    .kvd("held_ms", held_ms);
                measurement_pairs(&mut l, snap, trigger, None, None);
                self.emit(Severity::Notice, l);
            }
            Decision::Skip {
                rule,
                trigger,
                reason,
            } => {
                self.stats.actions[ResultKind::Skipped.index()] += 1;
                let Some(r) = cfg.rules.get(rule) else {
                    return true;
                };
                let mut l = AuditLine::new("action");
                l.kv("rule", r.name.as_bytes())
                    .kv("action", r.action.name().as_bytes())
                    .kv("trigger", trigger.name().as_bytes());
                measurement_pairs(&mut l, snap, trigger, None, None);
                l.kv("result", ResultKind::Skipped.name().as_bytes())
                    .kv("reason", reason.text().as_bytes());
                self.emit(Severity::Warning, l);
            }
            Decision::Act { .. } => return false,
        }
        true
    }

    /// Counts an action's outcome and emits its audit line (`l` holds the pairs up to the
    /// result: event, rule, action, trigger, measurements). Returns true when the action ran
    /// (ok or failed), i.e. it may have changed the sockets the observe stage tracks.
    pub fn action_done(&mut self, mut l: AuditLine, outcome: &Outcome) -> bool {
        self.stats.actions[outcome.result.index()] += 1;
        outcome.audit_pairs(&mut l);
        let sev = if outcome.result == ResultKind::Failed {
            Severity::Err
        } else {
            Severity::Warning
        };
        self.emit(sev, l);
        matches!(outcome.result, ResultKind::Ok | ResultKind::Failed)
    }

    /// Ends a poll: takes the observe stage's figures, then rewrites the status and metrics
    /// files; a failure (read-only directory, a planted directory at the path, ...) is audited,
    /// the first 10 and then every 100th. `cycle_us`: None where the poll ended before timing.
    pub fn end_poll(
        &mut self,
        cfg: &Config,
        cycles: u64,
        seen: &Seen,
        walk: (u64, u64),
        cycle_us: Option<u64>,
    ) {
        let s = &mut self.stats;
        s.cycles = cycles;
        s.ghost_kb = seen.ghost_kb;
        s.ghost_unknown = seen.ghost_unknown;
        s.mem_total_kb = seen.mem_total_kb;
        s.available_kb = seen.available_kb;
        s.worst = seen.worst;
        s.sockets_seen = seen.sockets_seen;
        s.tables_read = seen.tables_read;
        s.netns = seen.netns;
        if let Some(us) = cycle_us {
            s.last_cycle_us = us;
        }
        s.max_cycle_us = s.max_cycle_us.max(s.last_cycle_us);
        (s.max_walk_slice_us, s.last_walk_us) = walk;
        let Err((path, e)) = status::write_all(&self.stats, &status::Outputs::of(cfg)) else {
            return;
        };
        self.stats.write_errors += 1;
        let n = self.stats.write_errors;
        if n <= 10 || n % 100 == 0 {
            let mut msg = heapless::String::<192>::new();
            let _ = write!(msg, "cannot write {path}: {}", sys::strerror(e));
            let mut l = AuditLine::new("error");
            l.kv("reason", msg.as_bytes()).kvd("errors_total", n);
            self.emit(Severity::Err, l);
        }
    }
}

/// The measurement pairs every audit line carries: the suspect socket (when there is one),
/// its owner, ghost_kb and available_kb.
pub fn measurement_pairs(
    l: &mut AuditLine,
    snap: &Snapshot,
    trigger: Trigger,
    suspect: Option<usize>,
    owner: Option<usize>,
) {
    let s = suspect
        .and_then(|i| snap.suspects.get(i))
        .or(if trigger == Trigger::Backlog {
            snap.suspects.first()
        } else {
            None
        });
    if let Some(s) = s {
        l.kv("proto", s.socket.proto.name().as_bytes())
            .kvd("inode", s.socket.inode);
        let o = owner.and_then(|i| s.owners.get(i)).or(s.owners.first());
        if let Some(o) = o {
            l.kvd("pid", o.owner.pid)
                .kv("comm", o.owner.comm.as_bytes());
        }
        l.kvd("rx_queue", s.socket.rx_queue);
    }
    l.kvd("ghost_kb", snap.ghost_kb);
    if let Some(a) = snap.available_kb {
        l.kvd("available_kb", a);
    }
}
