//! The record stage: every audit line the agent sends (numbered with `seq`), the counters behind
//! the status and metrics files, and writing those files after each poll.
//! Must not read the box or decide: it is handed decisions, outcomes and figures, and writes them.

use crate::act::executors::Outcome;
use crate::config::{Config, Trigger};
use crate::decide::eta::Estimate;
use crate::decide::policy::{Decision, Level, NO_ETA, Policy, Snapshot};
use crate::decide::verify::Verdict;
use crate::observe::ghost::{Ghost, MAX_TERMS, Term};
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
    /// The socket that moves with Ghost or holds a trusted pinning ratio.
    pub culprit: Option<status::Culprit>,
    pub sockets_seen: u64,
    pub tables_read: u32,
    /// The namespaces the last socket read covered, and what they cost.
    pub netns: NsScan,
}

/// How many sockets, and how many moved Ghost terms, an `event=snapshot` line names.
pub const SNAPSHOT_SOCKETS: usize = 3;
pub const SNAPSHOT_TERMS: usize = 3;
/// Longest `local=` text a snapshot line carries (a unix path may be 108 bytes).
const SNAPSHOT_LOCAL: usize = 64;

/// The Ghost equation's terms at one moment.
pub type Terms = heapless::Vec<Term, MAX_TERMS>;

/// The record stage's state: the counters the files show, and the Ghost terms each open
/// incident started with (what `event=snapshot` lines measure their movement against).
#[derive(Default)]
pub struct Recorder {
    stats: Stats,
    opened_terms: [Option<Terms>; Trigger::ALL.len()],
    /// The policy's oom_eta estimate of this poll, for audit lines (`measurement_pairs`).
    eta: Option<Estimate>,
    /// When the last poll ended (monotonic µs; 0: none yet), for `max_poll_gap_us`.
    last_end_us: u64,
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

    /// The policy's own incident state, action budget and oom_eta estimate, for the files and
    /// the audit lines: one source of truth. An incident that opened on this poll keeps
    /// `ghost`'s terms (its snapshot lines' zero); one that closed drops them.
    pub fn decided(&mut self, policy: &Policy, now_ms: u64, ghost: &Ghost) {
        for t in Trigger::ALL {
            self.stats.incidents[t.index()] = IncidentLevel::from(policy.level(t));
            let slot = &mut self.opened_terms[t.index()];
            match policy.incident_started_ms(t) {
                None => *slot = None,
                Some(at) if at == now_ms || slot.is_none() => *slot = Some(ghost.terms.clone()),
                Some(_) => {}
            }
        }
        self.stats.actions_last_hour = policy.actions_in_last_hour(now_ms) as u64;
        self.eta = policy.oom_eta();
        self.stats.oom_eta_s = self.eta.and_then(|e| e.eta_s);
    }

    /// The oom_eta estimate the last decisions were taken on (for `measurement_pairs`).
    pub fn eta(&self) -> Option<Estimate> {
        self.eta
    }

    /// The body of the `event=snapshot` line that follows rule `rule`'s action line: the state
    /// the decision was taken on — MemAvailable, Ghost, the top sockets (proto, local,
    /// rx_queue, first owner's pid and comm, escaped) and the Ghost terms that moved most since
    /// `trigger`'s incident opened. Built when the decision is carried out; sent, numbered
    /// after its action line, by `emit_snapshot` (a command's action line comes when it ends).
    pub fn snapshot_line(
        &self,
        rule: &[u8],
        trigger: Trigger,
        snap: &Snapshot,
        ghost: &Ghost,
    ) -> AuditLine {
        let mut l = AuditLine::new("snapshot");
        l.kv("rule", rule)
            .kv("trigger", trigger.name().as_bytes())
            .kvd("ghost_kb", snap.ghost_kb);
        if let Some(a) = snap.available_kb {
            l.kvd("available_kb", a);
        }
        // The terms that moved most since the incident opened, largest change first.
        if let Some(then) = &self.opened_terms[trigger.index()] {
            let mut moved: heapless::Vec<(&'static str, i64), MAX_TERMS> = heapless::Vec::new();
            for t in &ghost.terms {
                if let Some(old) = then.iter().find(|o| o.name == t.name) {
                    let d = i128::from(t.kb) - i128::from(old.kb);
                    let d = d.clamp(i64::MIN.into(), i64::MAX.into()) as i64;
                    if d != 0 {
                        let _ = moved.push((t.name, d));
                    }
                }
            }
            crate::sys::sort_unstable_by(&mut moved, |a, b| {
                (core::cmp::Reverse(a.1.unsigned_abs()), a.0)
                    < (core::cmp::Reverse(b.1.unsigned_abs()), b.0)
            });
            for &(name, d) in moved.iter().take(SNAPSHOT_TERMS) {
                let mut key = heapless::String::<40>::new();
                let _ = write!(key, "moved_{name}_kb");
                l.kvd(&key, format_args!("{d:+}"));
            }
        }
        // The worst sockets, worst first (the snapshot's order is not relied on).
        let mut order: heapless::Vec<usize, { crate::decide::policy::MAX_SUSPECTS }> =
            (0..snap.suspects.len()).collect();
        let queue = |i: usize| snap.suspects.get(i).map_or(0, |s| s.socket.rx_queue);
        crate::sys::sort_unstable_by(&mut order, |&a, &b| queue(a) > queue(b));
        for (n, s) in order
            .iter()
            .filter_map(|&i| snap.suspects.get(i))
            .take(SNAPSHOT_SOCKETS)
            .enumerate()
        {
            let mut local = heapless::String::<SNAPSHOT_LOCAL>::new();
            let _ = write!(sys::Cut(local.as_mut_view()), "{}", s.socket.local);
            let key = |k: &str| {
                let mut key = heapless::String::<24>::new();
                let _ = write!(key, "top{}_{k}", n + 1);
                key
            };
            l.kv(&key("proto"), s.socket.proto.name().as_bytes())
                .kv(&key("local"), local.as_bytes())
                .kvd(&key("rx_queue"), s.socket.rx_queue);
            if let Some(o) = s.owners.first() {
                l.kvd(&key("pid"), o.owner.pid)
                    .kv(&key("comm"), o.owner.comm.as_bytes());
            }
        }
        l
    }

    /// Sends a `snapshot_line` right after its action line: `action_seq=` names that line.
    pub fn emit_snapshot(&mut self, body: &AuditLine) {
        let mut l = AuditLine::new("snapshot");
        l.kvd("action_seq", self.stats.seq);
        l.raw_pairs(body.as_str().strip_prefix("event=snapshot").unwrap_or(""));
        self.emit(Severity::Info, l);
    }

    /// Audits the end of an action's verification: `event=verified` (with `freed_kb=`) or
    /// `event=ineffective` (with `reason=`), the queue before and after, MemAvailable and
    /// Ghost before and after. `Verdict::Pending` audits nothing.
    pub fn verdict(&mut self, about: &VerifyAbout<'_>, v: &Verdict) {
        let (event, reason, queue_after, gain, drop, after_ms, freed) = match *v {
            Verdict::Pending => return,
            Verdict::Verified {
                freed_kb,
                queue_after,
                available_gain_kb,
                ghost_drop_kb,
                after_ms,
            } => (
                "verified",
                None,
                queue_after,
                available_gain_kb,
                ghost_drop_kb,
                after_ms,
                Some(freed_kb),
            ),
            Verdict::Ineffective {
                why,
                queue_after,
                available_gain_kb,
                ghost_drop_kb,
                after_ms,
            } => (
                "ineffective",
                Some(why.text()),
                queue_after,
                available_gain_kb,
                ghost_drop_kb,
                after_ms,
                None,
            ),
        };
        let mut l = AuditLine::new(event);
        l.kv("rule", about.rule)
            .kv("action", about.action.as_bytes())
            .kv("trigger", about.trigger.name().as_bytes())
            .kv("proto", about.proto.as_bytes())
            .kvd("inode", about.inode)
            .kvd("pid", about.pid)
            .kv("comm", about.comm);
        if let Some(f) = freed {
            l.kvd("freed_kb", f);
        }
        l.kvd("queue_before", about.check.queue_before);
        if let Some(q) = queue_after {
            l.kvd("queue_after", q);
        }
        if let Some(a) = about.check.available_before_kb {
            l.kvd("available_kb_before", a);
        }
        if let (Some(a), Some(g)) = (about.check.available_before_kb, gain) {
            l.kvd("available_kb", sys::Wide(i128::from(a) + i128::from(g)));
        }
        l.kvd("ghost_kb_before", about.check.ghost_before_kb)
            .kvd(
                "ghost_kb",
                sys::Wide(i128::from(about.check.ghost_before_kb) - i128::from(drop)),
            )
            .kvd("after_ms", after_ms);
        if let Some(r) = reason {
            l.kv("reason", r.as_bytes());
        }
        let sev = if freed.is_some() {
            Severity::Notice
        } else {
            Severity::Warning
        };
        self.emit(sev, l);
    }

    /// Audits a decision that is not an action to carry out (threshold, recovered, skip; a
    /// skip's line is followed by its snapshot line). Returns false for `Decision::Act`, which
    /// the act stage audits with its outcome.
    pub fn decision(&mut self, cfg: &Config, d: &Decision, snap: &Snapshot, ghost: &Ghost) -> bool {
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
                let first = snap.best_suspect(trigger, |_| true);
                measurement_pairs(&mut l, snap, trigger, first, None, self.eta);
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
                l.kv("trigger", trigger.name().as_bytes());
                // oom_eta recovers with no estimate once memory stops falling: no value then.
                if !(trigger == Trigger::OomEta && value == NO_ETA) {
                    l.kvd("value", value);
                }
                l.kvd("held_ms", held_ms);
                measurement_pairs(&mut l, snap, trigger, None, None, self.eta);
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
                measurement_pairs(&mut l, snap, trigger, None, None, self.eta);
                l.kv("result", ResultKind::Skipped.name().as_bytes())
                    .kv("reason", reason.text().as_bytes());
                self.emit(Severity::Warning, l);
                let body = self.snapshot_line(r.name.as_bytes(), trigger, snap, ghost);
                self.emit_snapshot(&body);
            }
            Decision::Act { .. } => return false,
        }
        true
    }

    /// Counts an action's outcome and emits its audit line (`l` holds the pairs up to the
    /// result: event, rule, action, trigger, measurements), then its `snapshot` line when there
    /// is one. Returns true when the action ran (ok or failed), i.e. it may have changed the
    /// sockets the observe stage tracks.
    pub fn action_done(
        &mut self,
        mut l: AuditLine,
        outcome: &Outcome,
        snapshot: Option<&AuditLine>,
    ) -> bool {
        self.stats.actions[outcome.result.index()] += 1;
        outcome.audit_pairs(&mut l);
        let sev = if outcome.result == ResultKind::Failed {
            Severity::Err
        } else {
            Severity::Warning
        };
        self.emit(sev, l);
        if let Some(body) = snapshot {
            self.emit_snapshot(body);
        }
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
        s.culprit = seen.culprit;
        s.sockets_seen = seen.sockets_seen;
        s.tables_read = seen.tables_read;
        s.netns = seen.netns;
        if let Some(us) = cycle_us {
            s.last_cycle_us = us;
        }
        s.max_cycle_us = s.max_cycle_us.max(s.last_cycle_us);
        let end_us = sys::monotonic_us();
        if self.last_end_us != 0 {
            s.max_poll_gap_us = s
                .max_poll_gap_us
                .max(end_us.saturating_sub(self.last_end_us));
        }
        self.last_end_us = end_us;
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

/// What a verdict line names: the rule, its action and target, and the check.
pub struct VerifyAbout<'a> {
    pub rule: &'a [u8],
    pub action: &'static str,
    pub trigger: Trigger,
    pub proto: &'static str,
    pub inode: u64,
    pub pid: u32,
    pub comm: &'a [u8],
    pub check: &'a crate::decide::verify::Check,
}

/// The measurement pairs every audit line carries: the suspect socket (when there is one),
/// its owner, ghost_kb and available_kb; on oom_eta lines also the estimate (`eta_s=`, while
/// memory is falling) and the slope it came from (`slope_kb_s=`).
pub fn measurement_pairs(
    l: &mut AuditLine,
    snap: &Snapshot,
    trigger: Trigger,
    suspect: Option<usize>,
    owner: Option<usize>,
    eta: Option<Estimate>,
) {
    let s = suspect
        .or(if trigger == Trigger::Backlog {
            snap.best_suspect(trigger, |_| true)
        } else {
            None
        })
        .and_then(|i| snap.suspects.get(i));
    if let Some(s) = s {
        l.kv("proto", s.socket.proto.name().as_bytes())
            .kvd("inode", s.socket.inode);
        let o = owner.and_then(|i| s.owners.get(i)).or(s.owners.first());
        if let Some(o) = o {
            l.kvd("pid", o.owner.pid)
                .kv("comm", o.owner.comm.as_bytes());
        }
        l.kvd("rx_queue", s.socket.rx_queue);
        if let Some(r) = s.blame.ratio {
            l.kvd("pin_ratio", r);
        }
        if s.blame.explains_pm > 0 {
            l.kvd("explains_pm", s.blame.explains_pm);
        }
    }
    l.kvd("ghost_kb", snap.ghost_kb);
    if let Some(a) = snap.available_kb {
        l.kvd("available_kb", a);
    }
    if let Some(e) = eta.filter(|_| trigger == Trigger::OomEta) {
        if let Some(s) = e.eta_s {
            l.kvd("eta_s", s);
        }
        l.kvd("slope_kb_s", e.slope_kb_s());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::policy::{Suspect, SuspectOwner};
    use crate::observe::ghost::VmallocSource;
    use crate::observe::owners::Owner;
    use crate::observe::proc::net::{Endpoint, Proto, UnixName};
    use crate::observe::proc::pid::Comm;
    use crate::output::audit::MAX_LINE;

    fn ghost(terms: &[(&'static str, u64)]) -> Ghost {
        Ghost {
            mem_total_kb: 1_000_000,
            accounted_kb: 0,
            ghost_kb: 0,
            terms: terms.iter().map(|&(name, kb)| Term { name, kb }).collect(),
            vmalloc_source: VmallocSource::Meminfo,
        }
    }

    fn suspect(proto: Proto, local: Endpoint, rx: u64, pid: u32, comm: &[u8]) -> Suspect {
        let mut s = Suspect {
            socket: SocketEntry::queued(proto, local, rx, pid.into()),
            owners: heapless::Vec::new(),
            blame: Default::default(),
        };
        let o = SuspectOwner {
            owner: Owner {
                inode: pid.into(),
                pid,
                fd: 3,
                comm: Comm::from_bytes(comm),
            },
            exe: heapless::String::new(),
            exe_id: None,
            uid: Some(0),
        };
        s.owners.push(o).unwrap();
        s
    }

    /// The snapshot line: the terms that moved most since the incident opened (largest first),
    /// the three worst sockets (worst first, whatever the snapshot's order), hostile names and
    /// paths escaped and cut, and a bounded line that is never truncated.
    #[test]
    fn snapshot_line_names_the_state_the_decision_was_taken_on() {
        let cfg = crate::config::parse(
            br#"{"syslog": "stderr", "backlog_warn_bytes": 1000, "backlog_act_bytes": 2000,
                 "rules": [{"name": "r", "trigger": "backlog", "action": "log"}]}"#,
        )
        .unwrap();
        let hostile = b"x\nseq=1 \x1b[31m";
        let long_path = [b'p'; 108];
        let suspects = [
            suspect(Proto::Udp, Endpoint::None, 5_000, 11, b"small"),
            suspect(
                Proto::Unix,
                Endpoint::Unix(UnixName::from_shown(&long_path)),
                9_000,
                12,
                hostile,
            ),
            suspect(Proto::Raw6, Endpoint::None, 7_000, 13, b"zebra"),
            suspect(Proto::Udp, Endpoint::None, 6_000, 14, b"ntpd"),
        ];
        let mut snap = Snapshot {
            now_ms: 1000,
            ghost_kb: 1234,
            available_kb: Some(500),
            suspects: heapless::Vec::from_slice(&suspects).unwrap(),
            rule_exe: [None; crate::config::MAX_RULES],
        };
        let mut p = Policy::new();
        let mut out = heapless::Vec::new();
        p.evaluate(&cfg, &snap, &mut out);
        let mut rec = Recorder::default();
        let opened = ghost(&[
            ("MemFree", 1000),
            ("Slab", 100),
            ("Active", 50),
            ("Inactive", 7),
        ]);
        rec.decided(&p, 1000, &opened);
        // A poll later the incident goes on: the baseline stays where it opened.
        snap.now_ms = 2000;
        p.evaluate(&cfg, &snap, &mut out);
        let now = ghost(&[
            ("MemFree", 400),
            ("Slab", 180),
            ("Active", 49),
            ("Inactive", 7),
        ]);
        rec.decided(&p, 2000, &now);
        let l = rec.snapshot_line(b"r", Trigger::Backlog, &snap, &now);
        let s = l.as_str();
        assert!(!l.is_truncated() && s.len() < MAX_LINE, "{s}");
        assert!(!s.contains('\n') && !s.contains('\x1b'), "{s}");
        assert!(
            s.starts_with(
                "event=snapshot rule=r trigger=backlog ghost_kb=1234 available_kb=500 \
                 moved_MemFree_kb=-600 moved_Slab_kb=+80 moved_Active_kb=-1 top1_proto=unix "
            ),
            "{s}"
        );
        assert!(
            s.contains(&format!(" top1_local={} ", "p".repeat(64))),
            "{s}"
        );
        assert!(
            s.contains(r#" top1_rx_queue=9000 top1_pid=12 top1_comm="x\x0aseq=1 \x1b[31m" "#),
            "{s}"
        );
        assert!(
            s.contains(" top2_proto=raw6 ") && s.contains(" top3_comm=ntpd"),
            "{s}"
        );
        assert!(!s.contains("top4") && !s.contains("small"), "{s}");
        assert!(!s.contains("Inactive"), "unmoved terms are left out: {s}");
        // Once the incident closes its baseline goes: no moved terms without one.
        snap.suspects.clear();
        p.evaluate(&cfg, &snap, &mut out);
        rec.decided(&p, 3000, &now);
        let l = rec.snapshot_line(b"r", Trigger::Backlog, &snap, &now);
        assert!(!l.as_str().contains("moved_"), "{}", l.as_str());
    }
}
