//! The decision core: a snapshot (numbers) + history + config in, decisions out.
//!
//! OWNER: policy. Pure: no file I/O, no sleeping, no logging, no clock reads — time comes
//! in as `Snapshot::now_ms` (CLOCK_MONOTONIC in the agent, a fake clock in tests).
//! `evaluate` never allocates (fixed arrays and heapless only) and costs
//! O(rules * suspects * owners), so the poll loop can call it on a box that is out of memory.
//!
//! Each trigger (ghost, backlog, available) is an *incident* with hysteresis: it opens when its
//! value reaches the warn level, may rise to act level, and closes only when the value falls back
//! below warn. Rules run only while their trigger is at act level; cooldown, escalation and the
//! "skip reported once" flags are per incident and reset when it closes. The hourly action window
//! is global and survives incidents (it exists to stop flapping from becoming a restart storm).

use crate::config::{Config, Name, Rule, Trigger};
use crate::owners::Owner;
use crate::proc::net::SocketEntry;

/// Most suspects (worst-backlog sockets) a snapshot carries.
pub const MAX_SUSPECTS: usize = 8;
/// Most owners considered per suspect.
pub const MAX_SUSPECT_OWNERS: usize = 8;
/// Most decisions one evaluation returns.
pub const MAX_DECISIONS: usize = 32;
/// Largest `max_actions_per_hour` honoured (the size of the action-time ring); larger values
/// are treated as this.
pub const MAX_ACTIONS_PER_HOUR: usize = 64;

/// One evaluation emits at most one Threshold or Recovered per trigger plus one decision per
/// rule, so `out` can never overflow.
const _: () = assert!(TRIGGERS.len() + crate::config::MAX_RULES <= MAX_DECISIONS);

const HOUR_MS: u64 = 3_600_000;
const TRIGGERS: [Trigger; 3] = [Trigger::Ghost, Trigger::Backlog, Trigger::Available];

/// A process holding a suspect socket, with what rules match on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SuspectOwner {
    pub owner: Owner,
    /// Target of /proc/PID/exe ("" if unreadable).
    pub exe: heapless::String<128>,
}

/// A socket with a large receive queue, and its owners when they were resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suspect {
    pub socket: SocketEntry,
    pub owners: heapless::Vec<SuspectOwner, MAX_SUSPECT_OWNERS>,
}

/// What one poll measured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub now_ms: u64,
    pub ghost_kb: i64,
    /// None where the kernel has no MemAvailable (< 3.14).
    pub available_kb: Option<u64>,
    /// Worst sockets by rx_queue, descending.
    pub suspects: heapless::Vec<Suspect, MAX_SUSPECTS>,
}

impl Snapshot {
    /// Index of the suspect with the largest rx_queue (the first of equals), None without
    /// suspects. Does not rely on `suspects` being sorted.
    pub fn worst_suspect(&self) -> Option<usize> {
        let mut best: Option<(usize, u64)> = None;
        for (i, s) in self.suspects.iter().enumerate() {
            if best.is_none_or(|(_, rx)| s.socket.rx_queue > rx) {
                best = Some((i, s.socket.rx_queue));
            }
        }
        best.map(|(i, _)| i)
    }

    /// The largest rx_queue among the suspects in bytes (0 without suspects): the backlog
    /// trigger's value.
    pub fn worst_rx_queue(&self) -> u64 {
        self.worst_suspect()
            .and_then(|i| self.suspects.get(i))
            .map_or(0, |s| s.socket.rx_queue)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Warn,
    Act,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkipReason {
    /// `max_actions_per_hour` reached.
    RateLimit,
    /// The rule needs an owner matching comm/exe and none of the suspects has one (also: an
    /// owner-targeting rule without comm/exe, which policy refuses to aim at a random process).
    NoMatchingOwner,
}

/// One decision. Indices point into the config's rules and the snapshot's suspects/owners.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// A trigger crossed into `level` (reported once per crossing).
    Threshold {
        trigger: Trigger,
        level: Level,
        value: i64,
    },
    /// A trigger fell back below its warn level after `held_ms` in an incident.
    Recovered {
        trigger: Trigger,
        value: i64,
        held_ms: u64,
    },
    /// Run rule `rule` (dry_run: decide and audit, touch nothing).
    Act {
        rule: usize,
        trigger: Trigger,
        suspect: Option<usize>,
        owner: Option<usize>,
        dry_run: bool,
    },
    /// Rule `rule` wanted to act but may not.
    Skip {
        rule: usize,
        trigger: Trigger,
        reason: SkipReason,
    },
}

/// One trigger's incident. `started_ms == None`: no incident open.
#[derive(Clone, Copy, Debug, Default)]
struct Incident {
    started_ms: Option<u64>,
    level: Option<Level>,
    /// When this incident first reached act level: escalation's zero point. Dips to warn do
    /// not move it (the incident is one event; noise around the act line must not postpone
    /// the ladder).
    act_since_ms: Option<u64>,
    /// Last value seen while the trigger was on, for Recovered when it is switched off.
    last_value: i64,
}

/// What one incident step reports.
enum Step {
    Quiet,
    Entered(Level),
    Recovered { held_ms: u64 },
}

impl Incident {
    /// Moves the incident to `level` (None: below warn, or trigger off) at `now_ms`.
    fn step(&mut self, level: Option<Level>, value: i64, now_ms: u64) -> Step {
        self.last_value = value;
        let Some(started) = self.started_ms else {
            let Some(l) = level else {
                return Step::Quiet;
            };
            // A jump straight to act is one crossing and one audit line (level=act), not two.
            self.started_ms = Some(now_ms);
            self.level = level;
            if l == Level::Act {
                self.act_since_ms = Some(now_ms);
            }
            return Step::Entered(l);
        };
        match level {
            None => {
                *self = Incident::default();
                Step::Recovered {
                    held_ms: now_ms.saturating_sub(started),
                }
            }
            Some(l) => {
                self.level = level;
                // act -> warn -> act within one incident is not a new crossing.
                if l == Level::Act && self.act_since_ms.is_none() {
                    self.act_since_ms = Some(now_ms);
                    Step::Entered(Level::Act)
                } else {
                    Step::Quiet
                }
            }
        }
    }
}

/// Per-rule history within the current incident of the rule's trigger.
#[derive(Clone, Copy, Debug, Default)]
struct RuleState {
    /// When the rule first acted in this incident: the zero point of the next rung's
    /// escalation timer.
    first_acted_ms: Option<u64>,
    /// When the rule last acted: its cooldown runs from here.
    last_acted_ms: Option<u64>,
    skipped_no_match: bool,
    skipped_rate_limit: bool,
}

/// Whom a rule would hit in this snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    /// comm/exe matched this owner of this suspect.
    Owner { suspect: usize, owner: usize },
    /// A rule without comm/exe whose action does not aim at an owner (log, exec, sysctl,
    /// reboot): it gets the worst suspect and its first owner for context, when there are any.
    Context {
        suspect: Option<usize>,
        owner: Option<usize>,
    },
    /// No owner matches, or the rule would aim at an owner without saying which.
    Refused,
}

/// History between evaluations: incidents, per-rule last action, the hourly action window.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    incidents: [Incident; 3],
    rules: [RuleState; crate::config::MAX_RULES],
    /// The (name, trigger) each rule state belongs to: a reload that changes either drops it.
    rule_keys: [Option<(Name, Trigger)>; crate::config::MAX_RULES],
    /// Lowest ghost_kb seen since start (the `ghost_growth` baseline); None before the first
    /// evaluation.
    ghost_floor_kb: Option<i64>,
    /// When the disruptive actions of the last hour were decided, oldest first.
    disruptive_ms: heapless::Deque<u64, MAX_ACTIONS_PER_HOUR>,
}

fn slot(t: Trigger) -> usize {
    match t {
        Trigger::Ghost => 0,
        Trigger::Backlog => 1,
        Trigger::Available => 2,
    }
}

fn saturating_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The level of `value` against `warn`/`act` for a trigger that fires upwards; `warn` above
/// `act` is treated as `act` so hysteresis still has a floor.
fn level_up(value: i64, warn: u64, act: u64) -> Option<Level> {
    let act = saturating_i64(act);
    let warn = saturating_i64(warn).min(act);
    if value >= act {
        Some(Level::Act)
    } else if value >= warn {
        Some(Level::Warn)
    } else {
        None
    }
}

/// A trigger's value and level, or None when the trigger is off: an act threshold of 0 for
/// ghost/backlog (0 is the config's "off" convention, as for `min_available_kb`), or no
/// MemAvailable on this kernel.
fn reading(
    cfg: &Config,
    trigger: Trigger,
    ghost_value_kb: i64,
    worst_rx_queue: u64,
    available_kb: Option<u64>,
) -> Option<(i64, Option<Level>)> {
    match trigger {
        Trigger::Ghost => (cfg.ghost_act_kb != 0).then(|| {
            let level = level_up(ghost_value_kb, cfg.ghost_warn_kb, cfg.ghost_act_kb);
            (ghost_value_kb, level)
        }),
        Trigger::Backlog => (cfg.backlog_act_bytes != 0).then(|| {
            let value = saturating_i64(worst_rx_queue);
            let level = level_up(value, cfg.backlog_warn_bytes, cfg.backlog_act_bytes);
            (value, level)
        }),
        Trigger::Available => {
            let avail = available_kb.filter(|_| cfg.min_available_kb != 0)?;
            // Inverted: less is worse. A warn level below the act level means "no warn stage".
            let warn = cfg.available_warn_kb.max(cfg.min_available_kb);
            let level = if avail < cfg.min_available_kb {
                Some(Level::Act)
            } else if avail < warn {
                Some(Level::Warn)
            } else {
                None
            };
            Some((saturating_i64(avail), level))
        }
    }
}

/// True when `exe` (a /proc/PID/exe target) is the program `want` names: the exact path, or
/// the basename when `want` has no '/'. A replaced binary (" (deleted)", typical right after a
/// firmware upgrade) still matches; an unreadable exe ("") never does.
fn exe_matches(want: &str, exe: &str) -> bool {
    let exe = exe.strip_suffix(" (deleted)").unwrap_or(exe);
    if want.is_empty() || exe.is_empty() {
        return false;
    }
    if want.contains('/') {
        exe == want
    } else {
        exe.rsplit('/').next() == Some(want)
    }
}

/// True when `o` passes every selector the rule sets (comm exactly, exe as in `exe_matches`).
fn owner_matches(rule: &Rule, o: &SuspectOwner) -> bool {
    let comm_ok = rule
        .comm
        .as_ref()
        .is_none_or(|c| !c.is_empty() && c.as_bytes() == o.owner.comm.as_bytes());
    let exe_ok = rule.exe.as_ref().is_none_or(|e| exe_matches(e, &o.exe));
    comm_ok && exe_ok
}

/// Whom `rule` would hit in `snap`: for comm/exe rules the matching owner of the suspect with
/// the largest rx_queue (first owner of the first such suspect on ties).
fn select_target(rule: &Rule, snap: &Snapshot) -> Target {
    if rule.comm.is_none() && rule.exe.is_none() {
        if rule.action.targets_owner() {
            // Config forbids this; never aim a restart/kill at whoever happens to be worst.
            return Target::Refused;
        }
        let suspect = snap.worst_suspect();
        let owner = suspect
            .and_then(|i| snap.suspects.get(i))
            .and_then(|s| (!s.owners.is_empty()).then_some(0));
        return Target::Context { suspect, owner };
    }
    let mut best: Option<(u64, usize, usize)> = None;
    for (si, s) in snap.suspects.iter().enumerate() {
        if best.is_some_and(|(rx, _, _)| s.socket.rx_queue <= rx) {
            continue;
        }
        if let Some(oi) = s.owners.iter().position(|o| owner_matches(rule, o)) {
            best = Some((s.socket.rx_queue, si, oi));
        }
    }
    match best {
        Some((_, suspect, owner)) => Target::Owner { suspect, owner },
        None => Target::Refused,
    }
}

impl Policy {
    /// A policy with no history: no incidents, no actions, no ghost baseline yet.
    pub fn new() -> Policy {
        Policy::default()
    }

    /// The ghost trigger's value for `ghost_kb` given a baseline floor (absolute, or growth
    /// over the lowest value seen when `cfg.ghost_growth`).
    fn ghost_value(cfg: &Config, floor_kb: Option<i64>, ghost_kb: i64) -> i64 {
        if cfg.ghost_growth {
            let floor = floor_kb.map_or(ghost_kb, |f| f.min(ghost_kb));
            ghost_kb.saturating_sub(floor)
        } else {
            ghost_kb
        }
    }

    /// True when any trigger is at or above its warn level: the agent then resolves
    /// suspect owners before calling `evaluate` (cheap polls otherwise). Reads only; the
    /// ghost baseline is learned by `evaluate`. Never fails.
    pub fn wants_owners(
        &self,
        cfg: &Config,
        ghost_kb: i64,
        max_rx_queue: u64,
        available_kb: Option<u64>,
    ) -> bool {
        let ghost_value = Policy::ghost_value(cfg, self.ghost_floor_kb, ghost_kb);
        TRIGGERS.iter().any(|&t| {
            reading(cfg, t, ghost_value, max_rx_queue, available_kb)
                .is_some_and(|(_, level)| level.is_some())
        })
    }

    /// The level of `trigger`'s open incident (None: no incident), for status output.
    pub fn level(&self, trigger: Trigger) -> Option<Level> {
        self.incidents
            .get(slot(trigger))
            .and_then(|i| i.started_ms.and(i.level))
    }

    /// When `trigger`'s open incident started (snapshot clock, ms), None without one.
    pub fn incident_started_ms(&self, trigger: Trigger) -> Option<u64> {
        self.incidents.get(slot(trigger)).and_then(|i| i.started_ms)
    }

    /// The lowest ghost_kb seen since start (the `ghost_growth` baseline), None before the
    /// first evaluation.
    pub fn ghost_floor_kb(&self) -> Option<i64> {
        self.ghost_floor_kb
    }

    /// How many disruptive actions were decided in the hour before `now_ms` (dry-run ones
    /// included), for status and metrics.
    pub fn actions_in_last_hour(&self, now_ms: u64) -> usize {
        self.disruptive_ms
            .iter()
            .filter(|&&t| now_ms.saturating_sub(t) < HOUR_MS)
            .count()
    }

    /// Adopts a reloaded config: incidents, the ghost baseline and the hourly window are kept;
    /// the history of a rule is dropped when its index no longer exists or its name or trigger
    /// changed (it is a different rule now). Never fails. `evaluate` does the same check on
    /// every call, so forgetting this call cannot attribute history to the wrong rule.
    pub fn reconfigured(&mut self, cfg: &Config) {
        for (i, (state, key)) in self.rules.iter_mut().zip(&mut self.rule_keys).enumerate() {
            let rule = cfg.rules.get(i);
            let same = match (key.as_ref(), rule) {
                (None, None) => true,
                (Some((name, trigger)), Some(r)) => *name == r.name && *trigger == r.trigger,
                _ => false,
            };
            if !same {
                *state = RuleState::default();
                *key = rule.map(|r| (r.name.clone(), r.trigger));
            }
        }
    }

    /// Evaluates one snapshot; appends decisions to `out` (cleared first): Threshold and
    /// Recovered first (trigger order ghost, backlog, available), then one Act or Skip per rule
    /// that is due, in file order. An action is recorded as taken when it is decided (dry run
    /// or not; the agent reports nothing back). Never fails and never allocates.
    pub fn evaluate(
        &mut self,
        cfg: &Config,
        snap: &Snapshot,
        out: &mut heapless::Vec<Decision, MAX_DECISIONS>,
    ) {
        out.clear();
        let now = snap.now_ms;
        self.reconfigured(cfg);

        let floor = self
            .ghost_floor_kb
            .map_or(snap.ghost_kb, |f| f.min(snap.ghost_kb));
        self.ghost_floor_kb = Some(floor);
        let ghost_value = Policy::ghost_value(cfg, Some(floor), snap.ghost_kb);
        let worst_rx = snap.worst_rx_queue();

        let mut at_act = [false; TRIGGERS.len()];
        for t in TRIGGERS {
            let (value, level) = match reading(cfg, t, ghost_value, worst_rx, snap.available_kb) {
                Some(r) => r,
                // Off (e.g. thresholds zeroed by a reload): an open incident ends.
                None => (self.incidents[slot(t)].last_value, None),
            };
            match self.incidents[slot(t)].step(level, value, now) {
                Step::Quiet => {}
                Step::Entered(level) => push(
                    out,
                    Decision::Threshold {
                        trigger: t,
                        level,
                        value,
                    },
                ),
                Step::Recovered { held_ms } => {
                    push(
                        out,
                        Decision::Recovered {
                            trigger: t,
                            value,
                            held_ms,
                        },
                    );
                    self.forget_incident(t);
                }
            }
            at_act[slot(t)] = level == Some(Level::Act);
        }

        while self
            .disruptive_ms
            .front()
            .is_some_and(|&t| now.saturating_sub(t) >= HOUR_MS)
        {
            self.disruptive_ms.pop_front();
        }
        let max_per_hour = (cfg.max_actions_per_hour as usize).min(MAX_ACTIONS_PER_HOUR);
        let cooldown_ms = u64::from(cfg.cooldown_s) * 1000;

        // Per trigger, the escalation zero point set by the nearest earlier rule that could hit
        // something: None = no such rule yet (zero point: incident reached act),
        // Some(None) = there is one and it has not acted yet (later rungs wait for it).
        let mut rung: [Option<Option<u64>>; TRIGGERS.len()] = [None; TRIGGERS.len()];
        for ((i, rule), state) in cfg.rules.iter().enumerate().zip(self.rules.iter_mut()) {
            let ts = slot(rule.trigger);
            if !at_act[ts] {
                continue;
            }
            let target = select_target(rule, snap);
            let zero_ms = match rung[ts] {
                None => self.incidents[ts].act_since_ms,
                Some(first_acted) => first_acted,
            };
            let escalated = match rule.escalate_after_s {
                None => true,
                Some(s) => zero_ms.is_some_and(|z| now.saturating_sub(z) >= u64::from(s) * 1000),
            };
            let cooled = state
                .last_acted_ms
                .is_none_or(|t| now.saturating_sub(t) >= cooldown_ms);
            if escalated && cooled {
                let disruptive = rule.action.is_disruptive();
                match target {
                    Target::Refused => {
                        if !state.skipped_no_match {
                            state.skipped_no_match = true;
                            push(out, skip(i, rule.trigger, SkipReason::NoMatchingOwner));
                        }
                    }
                    _ if disruptive && self.disruptive_ms.len() >= max_per_hour => {
                        if !state.skipped_rate_limit {
                            state.skipped_rate_limit = true;
                            push(out, skip(i, rule.trigger, SkipReason::RateLimit));
                        }
                    }
                    Target::Owner { suspect, owner } => {
                        act(state, &mut self.disruptive_ms, disruptive, now);
                        push(out, decide(cfg, i, rule, Some(suspect), Some(owner)));
                    }
                    Target::Context { suspect, owner } => {
                        act(state, &mut self.disruptive_ms, disruptive, now);
                        push(out, decide(cfg, i, rule, suspect, owner));
                    }
                }
            }
            if target != Target::Refused {
                rung[ts] = Some(state.first_acted_ms);
            }
        }
    }

    /// Ends `trigger`'s incident for its rules: cooldown, escalation and skip flags start over.
    fn forget_incident(&mut self, trigger: Trigger) {
        for (state, key) in self.rules.iter_mut().zip(&self.rule_keys) {
            if key.as_ref().is_some_and(|(_, t)| *t == trigger) {
                *state = RuleState::default();
            }
        }
    }
}

/// Records that a rule acted at `now_ms` (and in the hourly window when `disruptive`). The
/// caller checked the limit, which is at most the window's size, so the window is never full
/// here; dropping the oldest entry is only a guard.
fn act(
    state: &mut RuleState,
    window: &mut heapless::Deque<u64, MAX_ACTIONS_PER_HOUR>,
    disruptive: bool,
    now_ms: u64,
) {
    state.first_acted_ms.get_or_insert(now_ms);
    state.last_acted_ms = Some(now_ms);
    if disruptive {
        if window.is_full() {
            window.pop_front();
        }
        let _ = window.push_back(now_ms);
    }
}

fn decide(
    cfg: &Config,
    rule_index: usize,
    rule: &Rule,
    suspect: Option<usize>,
    owner: Option<usize>,
) -> Decision {
    Decision::Act {
        rule: rule_index,
        trigger: rule.trigger,
        suspect,
        owner,
        dry_run: cfg.dry_run,
    }
}

fn skip(rule: usize, trigger: Trigger, reason: SkipReason) -> Decision {
    Decision::Skip {
        rule,
        trigger,
        reason,
    }
}

/// Appends `d`; `out` is sized (see the const assert above) so this cannot drop anything.
fn push(out: &mut heapless::Vec<Decision, MAX_DECISIONS>, d: Decision) {
    let _ = out.push(d);
}
