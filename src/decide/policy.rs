//! The decision core: a snapshot (numbers) + history + config in, decisions out.
//!
//! Pure: no file I/O, no sleeping, no logging, no clock reads — time comes
//! in as `Snapshot::now_ms` (CLOCK_MONOTONIC in the agent, a fake clock in tests).
//! `evaluate` never allocates (fixed arrays and heapless only) and costs
//! O(rules * suspects * owners), so the poll loop can call it on a box that is out of memory.
//!
//! Each trigger (ghost, backlog, available, oom_eta) is an *incident* with hysteresis: it opens
//! when its value reaches the warn level, may rise to act level, and closes only when the value
//! falls back below warn. Rules run only while their trigger is at act level; cooldown, escalation and the
//! "skip reported once" flags are per incident and reset when it closes. The hourly action window
//! is global and survives incidents (it exists to stop flapping from becoming a restart storm).
//!
//! Escalation: a rule with `escalate_after_s = E` waits E seconds from when the previous rung
//! (the nearest earlier rule of the same trigger that has a target now) *first* acted in this
//! incident, or from when the incident reached act level if there is no such rung. Counting from
//! the rung's first action rather than its latest retry is deliberate: with a cooldown shorter
//! than E, the lower rung's retries would otherwise postpone the next rung for ever (a reboot
//! rule that never fires).
//!
//! oom_eta: the value is the estimated seconds until MemAvailable reaches `min_available_kb` (or
//! 0), from `decide::eta`. Each rule gives its own `eta_s`; the incident reaches act level when
//! the estimate is below the largest of them (the horizon) and warn below twice that, and it
//! closes when the estimate is back at or above warn or memory is no longer falling. A rule runs
//! while the incident is at act level and the estimate is below its own `eta_s`, so rules with
//! decreasing `eta_s` form a ladder by urgency; a rule whose `eta_s` is not reached yet is no
//! rung (it does not hold back the rules after it).
//!
//! Results: the agent reports what became of each action (`learn`). A rung whose latest action
//! failed or proved ineffective (verification saw nothing come back, `decide::verify`) no longer
//! holds the ladder: the next rung of the same trigger acts at once, without waiting its
//! `escalate_after_s`. An ordinary failure is retried after the cooldown and counts against the
//! hourly budget like any attempt. An action that cannot work here (`Learned::Unsupported`: no
//! `pidfd_getfd` on this kernel, `Outcome::unsupported`) is a failure of its rung reported once per
//! incident: the rung is not tried again until the incident closes, and its attempt is taken
//! back out of the hourly window (nothing was done, so nothing may be rationed by it).

use crate::config::{Config, Name, Rule, Trigger};
use crate::decide::correlate::{MOVES_WITH_PM, Ratio};
use crate::decide::eta::{Estimate, Estimator};
use crate::observe::identity::FileId;
use crate::observe::owners::Owner;
use crate::observe::proc::net::SocketEntry;

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
const _: () = assert!(Trigger::ALL.len() + crate::config::MAX_RULES <= MAX_DECISIONS);

const HOUR_MS: u64 = 3_600_000;

/// How often (in polls) the tcp/udp tables are read, and owners re-walked, even when nothing
/// looks wrong: the safety net under the sockstat prefilter and the owner cache. The agent
/// spaces its periodic table reads further where they are costly (`full_scan_spacing`).
pub const FULL_SCAN_EVERY: u64 = 30;

/// The sockstat prefilter reads a protocol's tables once its queued memory reaches
/// `backlog_warn_bytes / SOCKSTAT_GATE_DIVISOR`, or less where the counter's per-CPU lag
/// (`sockstat::pcpu_lag_bytes`) could hide more than the rest of the warn level.
pub const SOCKSTAT_GATE_DIVISOR: u64 = 4;

/// The safety net's share of the agent's time: periodic full scans average at most
/// 1/SAFETY_NET_SHARE of the poll interval: 0.05 % of a core at any interval, half the quiet
/// box's budget of 0.1 % (the other half is the quiet poll itself).
pub const SAFETY_NET_SHARE: u64 = 2000;

/// Most polls between two periodic full scans, however costly they are.
pub const MAX_FULL_SCAN_EVERY: u64 = 100 * FULL_SCAN_EVERY;

/// Polls from a periodic full scan that took `cost_us` to the next one: FULL_SCAN_EVERY, or as
/// many as keep the scans within SAFETY_NET_SHARE of an `interval_ms` poll interval (a 0.5 s
/// dump of 50 000 sockets at 1 s: every 1 000 polls), at most MAX_FULL_SCAN_EVERY.
pub fn full_scan_spacing(cost_us: u64, interval_ms: u64) -> u64 {
    let share_us = (interval_ms.saturating_mul(1000) / SAFETY_NET_SHARE).max(1);
    cost_us
        .div_ceil(share_us)
        .clamp(FULL_SCAN_EVERY, MAX_FULL_SCAN_EVERY)
}

/// True when a protocol whose queues hold `mem_pages` pages (sockstat's `mem`; None: the
/// kernel did not say) may hold a socket at the backlog warn level, so its tables are worth
/// reading. `page_size` and `lag` (how far `mem` may be below the truth) in bytes.
pub fn sockstat_says_read(cfg: &Config, mem_pages: Option<u64>, page_size: u64, lag: u64) -> bool {
    mem_pages.is_none_or(|p| p >= sockstat_gate_pages(cfg, page_size, lag))
}

/// The sockstat gate in pages: `backlog_warn_bytes / SOCKSTAT_GATE_DIVISOR`, lowered to
/// `backlog_warn_bytes - lag` where that is less (0: always read).
pub fn sockstat_gate_pages(cfg: &Config, page_size: u64, lag: u64) -> u64 {
    let warn = cfg.backlog_warn_bytes;
    (warn / SOCKSTAT_GATE_DIVISOR).min(warn.saturating_sub(lag)) / page_size.max(1)
}

/// Bytes of a protocol's queued memory (sockstat `mem`, pages) that the sockets it tracks do
/// not explain: `mem × page_size − charged` (negative when the global counter lags the
/// sockets, as its per-CPU reserves let it). None when the kernel did not say.
pub fn unexplained_bytes(mem_pages: Option<u64>, page_size: u64, charged: u64) -> Option<i64> {
    let mem = i64::try_from(mem_pages?.saturating_mul(page_size)).unwrap_or(i64::MAX);
    Some(mem.saturating_sub(i64::try_from(charged).unwrap_or(i64::MAX)))
}

/// Suspect tracking: true when the suspects a protocol's last table read found may stand in
/// for reading its tables again this poll.
///
/// `then` is what that read left unexplained: `unexplained_bytes` with what every socket in
/// its tables charged (memory of sockets already closed but not yet freed, and the counter's
/// slack). `now` is the same this poll, with the tracked suspects' charges re-checked and every
/// other socket's taken as it was at the read (None when a suspect could not be re-checked).
/// A new backlog moves the counter by its size (less at most one per-CPU reserve); it can hide
/// only behind memory that leaves at the same time. The suspects' own changes are seen by the
/// re-check. So: trust only while what is unexplained stays within a margin
/// (`backlog_warn_bytes / SOCKSTAT_GATE_DIVISOR`) of what it was at the read; and, where the
/// charges are `exact` (sock_diag's SK_MEMINFO, not the text tables' queue bytes), only after a
/// read that left less than that margin plus `lag` unexplained, since memory nothing explains
/// (a closed socket's) may leave just as a new backlog arrives. `lag` is the counter's per-CPU
/// slack in bytes (`sockstat::pcpu_lag_bytes`): it widens that bound, never the change that
/// makes a read. Never on a periodic full scan.
pub fn suspects_still_explain(
    cfg: &Config,
    lag: u64,
    then: Option<i64>,
    now: Option<i64>,
    exact: bool,
    periodic: bool,
) -> bool {
    let margin = (cfg.backlog_warn_bytes / SOCKSTAT_GATE_DIVISOR).max(1);
    let bound = i64::try_from(margin.saturating_add(lag)).unwrap_or(i64::MAX);
    match (then, now) {
        (Some(t), Some(n)) => !periodic && (!exact || t < bound) && n.abs_diff(t) < margin,
        _ => false,
    }
}

/// True for the suspects whose owners are worth an fd walk: the largest queue (`rank` 0), and
/// any within the sockstat gate's margin of the backlog warn level.
pub fn owner_worthy(cfg: &Config, rank: usize, rx_queue: u64) -> bool {
    rank == 0 || rx_queue >= cfg.backlog_warn_bytes / SOCKSTAT_GATE_DIVISOR
}

/// `owner_worthy` for a suspect as the correlation sees it: its queue counted at what it holds
/// (`Suspect::held_bytes`), and every suspect that moves with Ghost (a ghost rule may aim at
/// it however small its queue looks).
pub fn suspect_worthy(cfg: &Config, rank: usize, s: &Suspect) -> bool {
    owner_worthy(cfg, rank, s.held_bytes()) || s.blame.moves_with_ghost()
}

/// A process holding a suspect socket, with what rules match on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SuspectOwner {
    pub owner: Owner,
    /// Target of /proc/PID/exe ("" if unreadable): text, for bare-name `exe` rules.
    pub exe: heapless::String<128>,
    /// Device and inode of the program it runs (stat of /proc/PID/exe), None if unreadable.
    pub exe_id: Option<FileId>,
    /// The uid it runs as when real, effective, saved and fs uid agree; None otherwise.
    pub uid: Option<u32>,
}

/// What the correlation of queues with Ghost (`decide::correlate`) says of a suspect; the
/// default says nothing (no history yet, or Ghost not growing).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SuspectBlame {
    /// How much of Ghost's growth over the window its queue's growth explains, per-mille.
    pub explains_pm: u16,
    /// Its pinning ratio, once one is trusted (sticky while it stays tracked).
    pub ratio: Option<Ratio>,
}

impl SuspectBlame {
    /// True when it moves with Ghost (`correlate::MOVES_WITH_PM`).
    pub fn moves_with_ghost(&self) -> bool {
        self.explains_pm >= MOVES_WITH_PM
    }
}

/// A socket with a large receive queue, and its owners when they were resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suspect {
    pub socket: SocketEntry,
    pub owners: heapless::Vec<SuspectOwner, MAX_SUSPECT_OWNERS>,
    pub blame: SuspectBlame,
}

impl Suspect {
    /// The memory its queue really holds: `rx_queue × pin_ratio` once a ratio is trusted
    /// (never less than `rx_queue`), else `rx_queue`.
    pub fn held_bytes(&self) -> u64 {
        let rx = self.socket.rx_queue;
        self.blame.ratio.map_or(rx, |r| r.apply(rx))
    }
}

/// True for the triggers about memory vanishing, whose rules act on the socket that moves with
/// Ghost rather than on the largest queue.
pub fn follows_ghost(trigger: Trigger) -> bool {
    matches!(trigger, Trigger::Ghost | Trigger::OomEta)
}

/// How `trigger`'s rules rank suspects, larger first — the one target order every trigger
/// shares. For the triggers that follow Ghost, a socket that moves with it comes first (most
/// of the growth explained first); then, for every trigger, the memory the queue holds
/// (`Suspect::held_bytes`: rx_queue, times its pinning ratio once one is trusted).
pub fn target_key(trigger: Trigger, s: &Suspect) -> (u16, u64) {
    let blamed = if follows_ghost(trigger) && s.blame.moves_with_ghost() {
        s.blame.explains_pm
    } else {
        0
    };
    (blamed, s.held_bytes())
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
    /// Per rule (config order): the identity of its absolute `exe` path as stat() saw it when
    /// the owners were resolved; None for rules without one, or a path that does not exist.
    pub rule_exe: [Option<FileId>; crate::config::MAX_RULES],
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

    /// The largest rx_queue among the suspects in bytes (0 without suspects).
    pub fn worst_rx_queue(&self) -> u64 {
        self.worst_suspect()
            .and_then(|i| self.suspects.get(i))
            .map_or(0, |s| s.socket.rx_queue)
    }

    /// The most memory a suspect's queue holds (`Suspect::held_bytes`; 0 without suspects):
    /// the backlog trigger's value.
    pub fn worst_held_bytes(&self) -> u64 {
        self.suspects
            .iter()
            .map(Suspect::held_bytes)
            .max()
            .unwrap_or(0)
    }

    /// Index of the suspect `trigger`'s rules aim at first among those `ok` accepts
    /// (`target_key`; the first of equals), None when none is accepted.
    pub fn best_suspect(&self, trigger: Trigger, ok: impl Fn(&Suspect) -> bool) -> Option<usize> {
        let mut best: Option<(usize, (u16, u64))> = None;
        for (i, s) in self.suspects.iter().enumerate() {
            let k = target_key(trigger, s);
            if ok(s) && best.is_none_or(|(_, b)| k > b) {
                best = Some((i, k));
            }
        }
        best.map(|(i, _)| i)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Warn,
    Act,
}

impl Level {
    /// Audit and status text: "warn", "act".
    pub fn name(self) -> &'static str {
        match self {
            Level::Warn => "warn",
            Level::Act => "act",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkipReason {
    /// `max_actions_per_hour` reached.
    RateLimit,
    /// The rule needs an owner matching comm/exe and none of the suspects has one (also: an
    /// owner-targeting rule without comm/exe, which policy refuses to aim at a random process).
    NoMatchingOwner,
}

impl SkipReason {
    /// The audit line's `reason=` text.
    pub fn text(self) -> &'static str {
        match self {
            SkipReason::RateLimit => "max_actions_per_hour reached",
            SkipReason::NoMatchingOwner => "no suspect socket owned by a matching process",
        }
    }
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

/// What became of an action, as the agent reports it back (`Policy::learn`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Learned {
    /// Carried out, and verified where there was something to verify: the rung holds.
    Worked,
    /// `result=failed`: the next rung may act at once; this one is retried after its cooldown.
    Failed,
    /// Failed because this kernel or these capabilities cannot do it: as `Failed`, and not
    /// tried again in this incident; its attempt leaves the hourly window.
    Unsupported,
    /// Carried out, but nothing came back within `verify_s`: the next rung may act at once.
    Ineffective,
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
    /// The rule's latest action in this incident failed or was ineffective: it no longer
    /// holds the next rung back.
    gave_up: bool,
    /// The rule cannot work here (`Learned::Unsupported`): not tried again in this incident.
    unsupported: bool,
}

/// What an earlier rung of a trigger means for the next one's escalation timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Gate {
    /// The timer runs from here (None: that rung has not acted yet; later rungs wait for it).
    From(Option<u64>),
    /// That rung failed or was ineffective: the next one may act now.
    Open,
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
    incidents: [Incident; Trigger::ALL.len()],
    rules: [RuleState; crate::config::MAX_RULES],
    /// The (name, trigger) each rule state belongs to: a reload that changes either drops it.
    rule_keys: [Option<(Name, Trigger)>; crate::config::MAX_RULES],
    /// Lowest ghost_kb seen since start (the `ghost_growth` baseline); None before the first
    /// evaluation.
    ghost_floor_kb: Option<i64>,
    /// When the disruptive actions of the last hour were decided, oldest first.
    disruptive_ms: heapless::Deque<u64, MAX_ACTIONS_PER_HOUR>,
    /// MemAvailable's history and slope (the oom_eta trigger's).
    eta: Estimator,
    /// The estimate of the last evaluation, for audit lines, status and metrics.
    last_eta: Option<Estimate>,
}

/// The oom_eta trigger's value while memory is not falling (no estimate): below every level,
/// and not an estimate anyone could read as "0 s left".
pub const NO_ETA: i64 = -1;

/// The oom_eta horizon: the largest `eta_s` among the oom_eta rules (0: none, trigger off).
fn eta_horizon_s(cfg: &Config) -> u64 {
    cfg.rules
        .iter()
        .filter(|r| r.trigger == Trigger::OomEta)
        .map(|r| u64::from(r.eta_s.unwrap_or(0)))
        .max()
        .unwrap_or(0)
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

/// What the triggers read from one poll.
#[derive(Clone, Copy)]
struct Readings {
    ghost_value_kb: i64,
    worst_rx_queue: u64,
    available_kb: Option<u64>,
    /// The oom_eta estimate (seconds), None while memory is not falling.
    eta_s: Option<u32>,
}

/// A trigger's value and level, or None when the trigger is off: an act threshold of 0 for
/// ghost/backlog (0 is the config's "off" convention, as for `min_available_kb`), no oom_eta
/// rule, or no MemAvailable on this kernel.
fn reading(cfg: &Config, trigger: Trigger, r: Readings) -> Option<(i64, Option<Level>)> {
    let Readings {
        ghost_value_kb,
        worst_rx_queue,
        available_kb,
        eta_s,
    } = r;
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
        Trigger::OomEta => {
            let horizon = eta_horizon_s(cfg);
            if horizon == 0 || available_kb.is_none() {
                return None;
            }
            // Inverted like available: fewer seconds left is worse.
            let Some(eta) = eta_s.map(u64::from) else {
                return Some((NO_ETA, None));
            };
            let level = if eta < horizon {
                Some(Level::Act)
            } else if eta < horizon.saturating_mul(2) {
                Some(Level::Warn)
            } else {
                None
            };
            Some((saturating_i64(eta), level))
        }
    }
}

/// True when `o` runs the program `want` names. An absolute path is compared by identity: the
/// device and inode of the owner's /proc/PID/exe against `want_id`, stat() of the path (a
/// process cannot fake that, not even with its own binary at that path in its own mount
/// namespace; a binary replaced since the owner started no longer matches until it restarts).
/// A bare name is compared with the basename of the exe's path text — a name, not an identity.
fn exe_matches(want: &str, want_id: Option<FileId>, o: &SuspectOwner) -> bool {
    if want.starts_with('/') {
        return want_id.is_some() && o.exe_id == want_id;
    }
    let exe = o.exe.strip_suffix(" (deleted)").unwrap_or(&o.exe);
    !want.is_empty() && !exe.is_empty() && exe.rsplit('/').next() == Some(want)
}

/// True when `o` passes every selector the rule sets: comm exactly, exe as in `exe_matches`,
/// and the identity: the rule's uid, or — with neither a uid nor an absolute exe, when only
/// names were given — uid 0, since any user can name a process "zebra".
fn owner_matches(rule: &Rule, rule_exe: Option<FileId>, o: &SuspectOwner) -> bool {
    let comm_ok = rule
        .comm
        .as_ref()
        .is_none_or(|c| !c.is_empty() && c.as_bytes() == o.owner.comm.as_bytes());
    let exe_ok = rule
        .exe
        .as_ref()
        .is_none_or(|e| exe_matches(e, rule_exe, o));
    let by_path = rule.exe.as_ref().is_some_and(|e| e.starts_with('/'));
    let uid_ok = match rule.uid {
        Some(u) => o.uid == Some(u),
        None => by_path || o.uid == Some(0),
    };
    comm_ok && exe_ok && uid_ok
}

/// Whom `rule` would hit in `snap`: the suspect first in `target_key` order for its trigger (the
/// socket that moves with Ghost for ghost rules, else the one holding most) — for comm/exe
/// rules among the suspects with a matching owner, that owner (the first of them).
fn select_target(rule: &Rule, rule_exe: Option<FileId>, snap: &Snapshot) -> Target {
    if rule.comm.is_none() && rule.exe.is_none() {
        if rule.action.targets_owner() {
            // Config forbids this; never aim a restart/kill at whoever happens to be worst.
            return Target::Refused;
        }
        let suspect = snap.best_suspect(rule.trigger, |_| true);
        let owner = suspect
            .and_then(|i| snap.suspects.get(i))
            .and_then(|s| (!s.owners.is_empty()).then_some(0));
        return Target::Context { suspect, owner };
    }
    let matching = |s: &Suspect| {
        s.owners
            .iter()
            .position(|o| owner_matches(rule, rule_exe, o))
    };
    let Some(suspect) = snap.best_suspect(rule.trigger, |s| matching(s).is_some()) else {
        return Target::Refused;
    };
    match snap.suspects.get(suspect).and_then(matching) {
        Some(owner) => Target::Owner { suspect, owner },
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
        let r = Readings {
            ghost_value_kb: Policy::ghost_value(cfg, self.ghost_floor_kb, ghost_kb),
            worst_rx_queue: max_rx_queue,
            available_kb,
            // The slope of the last evaluation, with this poll's MemAvailable.
            eta_s: available_kb
                .and_then(|a| self.eta.estimate(a, cfg.min_available_kb))
                .and_then(|e| e.eta_s),
        };
        Trigger::ALL
            .into_iter()
            .any(|t| reading(cfg, t, r).is_some_and(|(_, level)| level.is_some()))
    }

    /// The level of `trigger`'s open incident (None: no incident), for status output.
    pub fn level(&self, trigger: Trigger) -> Option<Level> {
        self.incidents
            .get(trigger.index())
            .and_then(|i| i.started_ms.and(i.level))
    }

    /// When `trigger`'s open incident started (snapshot clock, ms), None without one.
    pub fn incident_started_ms(&self, trigger: Trigger) -> Option<u64> {
        self.incidents
            .get(trigger.index())
            .and_then(|i| i.started_ms)
    }

    /// The oom_eta estimate of the last evaluation: MemAvailable's slope and, while it is
    /// falling, the seconds until it reaches `min_available_kb` (or 0). None before there is
    /// half a window of history, or on a kernel without MemAvailable. Computed whether or not
    /// a rule uses it, for status and metrics.
    pub fn oom_eta(&self) -> Option<Estimate> {
        self.last_eta
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
    /// Recovered first (trigger order ghost, backlog, available, oom_eta), then one Act or Skip per rule
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
        self.eta.sample(now, snap.available_kb, cfg.eta_window_s);
        self.last_eta = snap
            .available_kb
            .and_then(|a| self.eta.estimate(a, cfg.min_available_kb));
        let eta_s = self.last_eta.and_then(|e| e.eta_s);
        let readings = Readings {
            ghost_value_kb: Policy::ghost_value(cfg, Some(floor), snap.ghost_kb),
            worst_rx_queue: snap.worst_held_bytes(),
            available_kb: snap.available_kb,
            eta_s,
        };

        let mut at_act = [false; Trigger::ALL.len()];
        for t in Trigger::ALL {
            let (value, level) = match reading(cfg, t, readings) {
                Some(r) => r,
                // Off (e.g. thresholds zeroed by a reload): an open incident ends.
                None => (self.incidents[t.index()].last_value, None),
            };
            match self.incidents[t.index()].step(level, value, now) {
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
            at_act[t.index()] = level == Some(Level::Act);
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

        // Per trigger, the escalation gate set by the nearest earlier rule that could hit
        // something: None = no such rule yet (zero point: incident reached act).
        let mut rung: [Option<Gate>; Trigger::ALL.len()] = [None; Trigger::ALL.len()];
        for ((i, rule), state) in cfg.rules.iter().enumerate().zip(self.rules.iter_mut()) {
            let ts = rule.trigger.index();
            if !at_act[ts] {
                continue;
            }
            // An oom_eta rule waits for its own eta_s (not a rung until then).
            if rule.trigger == Trigger::OomEta && eta_s.is_none_or(|e| e >= rule.eta_s.unwrap_or(0))
            {
                continue;
            }
            let target = select_target(rule, snap.rule_exe.get(i).copied().flatten(), snap);
            let zero_ms = match rung[ts] {
                None => Gate::From(self.incidents[ts].act_since_ms),
                Some(g) => g,
            };
            let escalated = match (rule.escalate_after_s, zero_ms) {
                (None, _) | (_, Gate::Open) => true,
                (Some(s), Gate::From(z)) => {
                    z.is_some_and(|z| now.saturating_sub(z) >= u64::from(s) * 1000)
                }
            };
            if state.unsupported {
                // Reported once (its failed line); the next rung goes on without it.
                if target != Target::Refused {
                    rung[ts] = Some(Gate::Open);
                }
                continue;
            }
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
                rung[ts] = Some(if state.gave_up {
                    Gate::Open
                } else {
                    Gate::From(state.first_acted_ms)
                });
            }
        }
    }

    /// Learns what became of rule `rule`'s action decided at `acted_ms` (the snapshot clock of
    /// that evaluation): see the module text. A result for an action of an incident that has
    /// closed since, or for a rule the config no longer has, is ignored. Never fails, never
    /// allocates.
    pub fn learn(&mut self, cfg: &Config, rule: usize, acted_ms: u64, what: Learned) {
        self.reconfigured(cfg);
        let Some(state) = self.rules.get_mut(rule) else {
            return;
        };
        if state.first_acted_ms.is_none_or(|f| acted_ms < f) {
            return;
        }
        match what {
            Learned::Worked => state.gave_up = false,
            Learned::Failed | Learned::Ineffective => state.gave_up = true,
            Learned::Unsupported => {
                state.gave_up = true;
                state.unsupported = true;
                if cfg
                    .rules
                    .get(rule)
                    .is_some_and(|r| r.action.is_disruptive())
                {
                    refund(&mut self.disruptive_ms, acted_ms);
                }
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

/// Takes one action decided at `at_ms` back out of the hourly window (the newest such entry).
fn refund(window: &mut heapless::Deque<u64, MAX_ACTIONS_PER_HOUR>, at_ms: u64) {
    let Some(pos) = window.iter().rposition(|&t| t == at_ms) else {
        return;
    };
    let n = window.len();
    // Rotate through once, leaving out the entry at `pos`: bounded, no allocation.
    for i in 0..n {
        let Some(t) = window.pop_front() else {
            break;
        };
        if i != pos {
            let _ = window.push_back(t);
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ActionKind, Str, SyslogTarget};
    use crate::observe::proc::net::{Endpoint, Proto};
    use crate::observe::proc::pid::Comm;

    const MB: u64 = 1_000_000;

    /// Thresholds: ghost warn 100 MB / act 200 MB, backlog warn 1 MB / act 8 MB, available off.
    fn cfg() -> Config {
        Config {
            interval_ms: 1000,
            syslog: SyslogTarget::Stderr,
            facility: Name::try_from("daemon").unwrap(),
            syslog_format: Default::default(),
            syslog_queue_lines: 64,
            status_file: None,
            metrics_file: None,
            dry_run: false,
            ghost_warn_kb: 100_000,
            ghost_act_kb: 200_000,
            ghost_growth: false,
            backlog_warn_bytes: MB,
            backlog_act_bytes: 8 * MB,
            min_available_kb: 0,
            available_warn_kb: 0,
            eta_window_s: 30,
            cooldown_s: 60,
            max_actions_per_hour: 10,
            oom_score_adj: -1000,
            mlock: false,
            breadcrumb_file: Str::try_from("/var/lib/ghostwatch.reboot").unwrap(),
            drain_max_packets: 1000,
            verify_s: 3,
            protect: heapless::Vec::new(),
            watchdog_device: None,
            watchdog_timeout_s: None,
            rules: heapless::Vec::new(),
        }
    }

    fn rule(name: &str, trigger: Trigger, action: ActionKind) -> Rule {
        Rule {
            name: Name::try_from(name).unwrap(),
            trigger,
            comm: None,
            exe: None,
            uid: None,
            action,
            argv: heapless::Vec::new(),
            sysctl: None,
            value: None,
            rcvbuf: None,
            signal: 15,
            timeout_s: 10,
            escalate_after_s: None,
            eta_s: None,
        }
    }

    fn comm(mut r: Rule, c: &str) -> Rule {
        r.comm = Some(c.try_into().unwrap());
        r
    }

    fn exe(mut r: Rule, e: &str) -> Rule {
        r.exe = Some(e.try_into().unwrap());
        r
    }

    fn after(mut r: Rule, s: u32) -> Rule {
        r.escalate_after_s = Some(s);
        r
    }

    fn with_rules(mut c: Config, rules: &[Rule]) -> Config {
        c.rules = heapless::Vec::from_slice(rules).unwrap();
        c
    }

    fn suspect(rx_queue: u64, inode: u64, owners: &[(u32, &str, &str)]) -> Suspect {
        let mut s = Suspect {
            socket: SocketEntry::queued(Proto::Raw6, Endpoint::None, rx_queue, inode),
            owners: heapless::Vec::new(),
            blame: SuspectBlame::default(),
        };
        for &(pid, c, e) in owners {
            let o = SuspectOwner {
                owner: Owner {
                    inode,
                    pid,
                    fd: 3,
                    comm: Comm::from_bytes(c.as_bytes()),
                },
                exe: e.try_into().unwrap(),
                exe_id: Some(fake_id(e)),
                uid: Some(0),
            };
            s.owners.push(o).unwrap();
        }
        s
    }

    /// A stand-in for stat(): one identity per path text. " (deleted)" is a different file
    /// (the old binary), as it is for real.
    fn fake_id(path: &str) -> FileId {
        let h = path.bytes().fold(1469598103934665603u64, |h, b| {
            (h ^ b as u64).wrapping_mul(1099511628211)
        });
        FileId { dev: 8, ino: h }
    }

    fn zebra() -> Suspect {
        suspect(76_755_840, 4242, &[(1234, "zebra", "/usr/sbin/zebra")])
    }

    fn snap(now_s: u64, ghost_kb: i64, suspects: &[Suspect]) -> Snapshot {
        Snapshot {
            now_ms: now_s * 1000,
            ghost_kb,
            available_kb: None,
            suspects: heapless::Vec::from_slice(suspects).unwrap(),
            rule_exe: [None; crate::config::MAX_RULES],
        }
    }

    /// Evaluates `s` with the identities of the rules' exe paths filled in (as the agent does).
    fn eval(p: &mut Policy, c: &Config, s: &Snapshot) -> Vec<Decision> {
        let mut s = s.clone();
        for (i, r) in c.rules.iter().enumerate() {
            s.rule_exe[i] = r.exe.as_deref().filter(|e| e.starts_with('/')).map(fake_id);
        }
        let mut out = heapless::Vec::new();
        p.evaluate(c, &s, &mut out);
        out.to_vec()
    }

    /// Rule indices that acted.
    fn acted(d: &[Decision]) -> Vec<usize> {
        d.iter()
            .filter_map(|d| match d {
                Decision::Act { rule, .. } => Some(*rule),
                _ => None,
            })
            .collect()
    }

    fn threshold(trigger: Trigger, level: Level, value: i64) -> Decision {
        Decision::Threshold {
            trigger,
            level,
            value,
        }
    }

    const GHOST_OK: i64 = 50_000;
    const GHOST_WARN: i64 = 150_000;
    const GHOST_ACT: i64 = 250_000;

    #[test]
    fn scan_schedule_and_sockstat_gate() {
        // Periodic full scans every FULL_SCAN_EVERY polls, unless that would cost more than
        // 0.05 % of the time: 0.5 ms per 1 s poll.
        assert_eq!(full_scan_spacing(0, 1000), FULL_SCAN_EVERY);
        assert_eq!(full_scan_spacing(15_000, 1000), FULL_SCAN_EVERY);
        assert_eq!(full_scan_spacing(500_000, 1000), 1000);
        assert_eq!(full_scan_spacing(500_001, 1000), 1001);
        assert_eq!(full_scan_spacing(500_000, 10), 3000, "capped");
        assert_eq!(full_scan_spacing(u64::MAX, 0), MAX_FULL_SCAN_EVERY);
        assert_eq!(full_scan_spacing(50_000, 100_000), FULL_SCAN_EVERY);
        // Warn at 1 MiB: a quarter of it (64 pages of 4 KiB) opens the gate.
        let c = Config {
            backlog_warn_bytes: 1 << 20,
            ..cfg()
        };
        assert!(!sockstat_says_read(&c, Some(63), 4096, 0));
        assert!(sockstat_says_read(&c, Some(64), 4096, 0));
        assert!(sockstat_says_read(&c, None, 4096, 0), "unknown: read");
        assert!(
            !sockstat_says_read(&c, Some(0), 0, 0),
            "no page size: no division by 0"
        );
        // A lag that could hide more than 3/4 of the warn level lowers the gate: a 1 MiB warn
        // with 1 MiB of lag reads whatever sockstat says; with 896 KiB, from 32 pages.
        assert!(sockstat_says_read(&c, Some(0), 4096, 1 << 20));
        assert!(!sockstat_says_read(&c, Some(31), 4096, 896 << 10));
        assert!(sockstat_says_read(&c, Some(32), 4096, 896 << 10));
        assert!(
            !sockstat_says_read(&c, Some(63), 4096, 1 << 17),
            "3/4 of warn: unchanged"
        );
        // Unexplained memory: mem pages in bytes minus what the tracked suspects charge.
        assert_eq!(unexplained_bytes(Some(100), 4096, 409_600), Some(0));
        assert_eq!(unexplained_bytes(Some(100), 4096, 409_700), Some(-100));
        assert_eq!(unexplained_bytes(None, 4096, 0), None);
        assert_eq!(unexplained_bytes(Some(u64::MAX), 4096, 0), Some(i64::MAX));
        // Suspects stand while what they leave unexplained stays within the margin (256 KiB) of
        // the read; with exact charges, only after a read that left less than the margin plus
        // the counter's per-CPU slack unexplained (2 MiB here); never on a periodic scan, nor
        // when a suspect could not be re-checked. (lag, then, now, exact, periodic) -> stand?
        let m = (1i64 << 20) / 4;
        let lag = 2u64 << 20;
        let l = lag as i64;
        let cases = [
            ((0, Some(0), Some(m - 1), true, false), true),
            ((0, Some(-m), Some(-1), true, false), true),
            ((0, Some(0), Some(m), true, false), false),
            ((0, Some(0), Some(-m), true, false), false),
            ((0, Some(m), Some(m), true, false), false),
            (
                (lag, Some(m + (1 << 20)), Some(m + (1 << 20)), true, false),
                true,
            ),
            ((lag, Some(m + l), Some(m + l), true, false), false),
            ((lag, Some(m + l), Some(m + l), false, false), true),
            ((lag, Some(0), Some(m), true, false), false),
            ((0, Some(0), Some(0), true, true), false),
            ((0, None, Some(0), true, false), false),
            ((0, Some(0), None, true, false), false),
        ];
        for ((lag, then, now, exact, periodic), want) in cases {
            assert_eq!(
                suspects_still_explain(&c, lag, then, now, exact, periodic),
                want,
                "lag {lag} then {then:?} now {now:?} exact {exact} periodic {periodic}"
            );
        }
        // Owners are walked for the worst suspect and any within a quarter of warn.
        assert!(owner_worthy(&c, 0, 0));
        assert!(owner_worthy(&c, 3, 1 << 18));
        assert!(!owner_worthy(&c, 3, (1 << 18) - 1));
    }

    #[test]
    fn threshold_events_once_per_crossing() {
        let c = cfg();
        let mut p = Policy::new();
        let g = Trigger::Ghost;
        assert_eq!(eval(&mut p, &c, &snap(0, GHOST_OK, &[])), vec![]);
        assert_eq!(
            eval(&mut p, &c, &snap(1, 100_000, &[])),
            vec![threshold(g, Level::Warn, 100_000)],
            "warn is inclusive"
        );
        assert_eq!(eval(&mut p, &c, &snap(2, GHOST_WARN, &[])), vec![]);
        assert_eq!(
            eval(&mut p, &c, &snap(3, 200_000, &[])),
            vec![threshold(g, Level::Act, 200_000)],
            "act is inclusive"
        );
        assert_eq!(eval(&mut p, &c, &snap(4, GHOST_ACT, &[])), vec![]);
        assert_eq!(p.level(g), Some(Level::Act));
        assert_eq!(p.incident_started_ms(g), Some(1000));
    }

    #[test]
    fn straight_to_act_is_one_threshold() {
        let c = cfg();
        let mut p = Policy::new();
        let d = eval(&mut p, &c, &snap(0, GHOST_ACT, &[]));
        assert_eq!(d, vec![threshold(Trigger::Ghost, Level::Act, GHOST_ACT)]);
        assert_eq!(eval(&mut p, &c, &snap(1, GHOST_WARN, &[])), vec![]);
    }

    #[test]
    fn hysteresis_keeps_incident_until_below_warn() {
        let c = with_rules(cfg(), &[rule("note", Trigger::Ghost, ActionKind::Log)]);
        let mut p = Policy::new();
        assert_eq!(eval(&mut p, &c, &snap(0, GHOST_ACT, &[])).len(), 2);
        // act -> warn -> act: the same incident, no new threshold, cooldown still running.
        assert_eq!(eval(&mut p, &c, &snap(10, GHOST_WARN, &[])), vec![]);
        assert_eq!(p.level(Trigger::Ghost), Some(Level::Warn));
        assert_eq!(eval(&mut p, &c, &snap(20, GHOST_ACT, &[])), vec![]);
        // Rules run only at act level: at warn the due rule waits.
        assert_eq!(eval(&mut p, &c, &snap(60, GHOST_WARN, &[])), vec![]);
        assert_eq!(acted(&eval(&mut p, &c, &snap(70, GHOST_ACT, &[]))), vec![0]);
        // Below warn: recovered, held since the incident started.
        assert_eq!(
            eval(&mut p, &c, &snap(100, GHOST_OK, &[])),
            vec![Decision::Recovered {
                trigger: Trigger::Ghost,
                value: GHOST_OK,
                held_ms: 100_000,
            }]
        );
        assert_eq!(p.level(Trigger::Ghost), None);
        // A new incident: thresholds again, and the rule's cooldown was reset.
        let d = eval(&mut p, &c, &snap(110, GHOST_ACT, &[]));
        assert_eq!(d[0], threshold(Trigger::Ghost, Level::Act, GHOST_ACT));
        assert_eq!(acted(&d), vec![0]);
    }

    #[test]
    fn cooldown_per_rule_while_condition_holds() {
        let mut c = with_rules(
            cfg(),
            &[
                comm(rule("clamp", Trigger::Backlog, ActionKind::Clamp), "zebra"),
                rule("note", Trigger::Backlog, ActionKind::Log),
            ],
        );
        c.cooldown_s = 60;
        let mut p = Policy::new();
        let mut times = vec![];
        for t in (0..=180).step_by(10) {
            let d = eval(&mut p, &c, &snap(t, 0, &[zebra()]));
            if t == 0 {
                assert_eq!(
                    d,
                    vec![
                        threshold(Trigger::Backlog, Level::Act, 76_755_840),
                        Decision::Act {
                            rule: 0,
                            trigger: Trigger::Backlog,
                            suspect: Some(0),
                            owner: Some(0),
                            dry_run: false,
                        },
                        Decision::Act {
                            rule: 1,
                            trigger: Trigger::Backlog,
                            suspect: Some(0),
                            owner: Some(0),
                            dry_run: false,
                        },
                    ]
                );
            }
            if !acted(&d).is_empty() {
                times.push((t, acted(&d)));
            }
        }
        assert_eq!(
            times,
            vec![
                (0, vec![0, 1]),
                (60, vec![0, 1]),
                (120, vec![0, 1]),
                (180, vec![0, 1])
            ]
        );
    }

    #[test]
    fn rate_limit_sliding_hour() {
        let mut c = with_rules(
            cfg(),
            &[
                comm(rule("drain", Trigger::Backlog, ActionKind::Drain), "zebra"),
                rule("note", Trigger::Backlog, ActionKind::Log),
            ],
        );
        c.cooldown_s = 600;
        c.max_actions_per_hour = 3;
        let mut p = Policy::new();
        let skip_rl = skip(0, Trigger::Backlog, SkipReason::RateLimit);
        let at = |p: &mut Policy, ms: u64| {
            let mut s = snap(0, 0, &[zebra()]);
            s.now_ms = ms;
            eval(p, &c, &s)
        };
        for t in [0, 600, 1200] {
            assert_eq!(acted(&at(&mut p, t * 1000)), vec![0, 1], "t={t}");
        }
        assert_eq!(p.actions_in_last_hour(1_200_000), 3, "log is not counted");
        // The 4th disruptive action in the hour is blocked, reported once; log still runs.
        let d = at(&mut p, 1_800_000);
        assert_eq!(acted(&d), vec![1]);
        assert!(d.contains(&skip_rl));
        for t in [2400, 3000, 3599] {
            let d = at(&mut p, t * 1000);
            assert!(!d.contains(&skip_rl), "skip reported once, t={t}");
            assert!(!acted(&d).contains(&0), "t={t}");
        }
        assert!(
            !acted(&at(&mut p, 3_599_999)).contains(&0),
            "window is 3600 s"
        );
        // The action at t=0 leaves the window at exactly t=3600.
        assert_eq!(acted(&at(&mut p, 3_600_000)), vec![0, 1]);
        assert!(at(&mut p, 3_700_000).is_empty(), "window full again");
        assert_eq!(acted(&at(&mut p, 4_200_000)), vec![0, 1]);
        // The window outlives incidents: recovery does not reset it.
        let mut calm = snap(0, 0, &[]);
        calm.now_ms = 4_300_000;
        assert!(matches!(
            eval(&mut p, &c, &calm)[..],
            [Decision::Recovered { .. }]
        ));
        let d = at(&mut p, 4_310_000);
        assert_eq!(acted(&d), vec![1]);
        assert!(
            d.contains(&skip_rl),
            "a new incident reports the block again"
        );
    }

    #[test]
    fn rate_limit_counts_actions_of_one_evaluation() {
        let mut c = with_rules(
            cfg(),
            &[
                rule("rmem", Trigger::Ghost, ActionKind::Sysctl),
                comm(rule("clamp", Trigger::Ghost, ActionKind::Clamp), "zebra"),
            ],
        );
        c.max_actions_per_hour = 1;
        let mut p = Policy::new();
        let d = eval(&mut p, &c, &snap(0, GHOST_ACT, &[zebra()]));
        assert_eq!(acted(&d), vec![0]);
        assert!(d.contains(&skip(1, Trigger::Ghost, SkipReason::RateLimit)));
        c.max_actions_per_hour = 0;
        let mut p = Policy::new();
        let d = eval(&mut p, &c, &snap(0, GHOST_ACT, &[zebra()]));
        assert_eq!(
            acted(&d),
            Vec::<usize>::new(),
            "0 allows no disruptive action"
        );
    }

    fn ladder_cfg() -> Config {
        let mut c = with_rules(
            cfg(),
            &[
                comm(rule("clamp", Trigger::Ghost, ActionKind::Clamp), "zebra"),
                after(
                    comm(
                        rule("restart", Trigger::Ghost, ActionKind::Restart),
                        "zebra",
                    ),
                    30,
                ),
                after(rule("reboot", Trigger::Ghost, ActionKind::Reboot), 120),
            ],
        );
        c.cooldown_s = 600;
        c
    }

    /// Runs the ladder scenario; returns (second, rule) for every action and all decisions.
    fn run_ladder(c: &Config) -> (Vec<(u64, usize)>, Vec<Decision>) {
        let mut p = Policy::new();
        let mut acts = vec![];
        let mut all = vec![];
        // Persistent condition for 700 s, a recovery, then a new incident.
        for t in (0..=1000).step_by(10) {
            let ghost = if (700..710).contains(&t) {
                GHOST_OK
            } else {
                GHOST_ACT
            };
            let d = eval(&mut p, c, &snap(t, ghost, &[zebra()]));
            acts.extend(acted(&d).into_iter().map(|r| (t, r)));
            all.extend(d);
        }
        (acts, all)
    }

    #[test]
    fn escalation_ladder_then_reset_after_recovery() {
        let (acts, all) = run_ladder(&ladder_cfg());
        assert_eq!(
            acts,
            vec![
                (0, 0),   // clamp at once
                (30, 1),  // restart 30 s after clamp acted
                (150, 2), // reboot 120 s after restart acted
                (600, 0), // clamp again after its cooldown
                (630, 1),
                (710, 0), // new incident: the ladder starts over
                (740, 1),
                (860, 2),
            ]
        );
        let recovered: Vec<_> = all
            .iter()
            .filter(|d| matches!(d, Decision::Recovered { .. }))
            .collect();
        assert_eq!(
            recovered,
            vec![&Decision::Recovered {
                trigger: Trigger::Ghost,
                value: GHOST_OK,
                held_ms: 700_000,
            }]
        );
    }

    #[test]
    fn escalation_outlives_short_cooldowns() {
        // A lower rung retrying every 10 s must not keep postponing the next rung.
        let mut c = ladder_cfg();
        c.cooldown_s = 10;
        c.max_actions_per_hour = 64;
        let mut p = Policy::new();
        let mut first = [None; 3];
        for t in (0..=200).step_by(10) {
            for r in acted(&eval(&mut p, &c, &snap(t, GHOST_ACT, &[zebra()]))) {
                first[r].get_or_insert(t);
            }
        }
        assert_eq!(first, [Some(0), Some(30), Some(150)]);
    }

    #[test]
    fn escalation_skips_rules_that_match_nothing() {
        let c = with_rules(
            cfg(),
            &[
                comm(
                    rule("restart-bgpd", Trigger::Ghost, ActionKind::Restart),
                    "bgpd",
                ),
                after(rule("page", Trigger::Ghost, ActionKind::Exec), 20),
                // A different trigger's rung does not gate this one.
                rule("other", Trigger::Backlog, ActionKind::Log),
                after(
                    comm(rule("kill", Trigger::Ghost, ActionKind::Kill), "zebra"),
                    0,
                ),
            ],
        );
        let mut p = Policy::new();
        let mut acts = vec![];
        for t in (0..=40).step_by(10) {
            let d = eval(&mut p, &c, &snap(t, GHOST_ACT, &[zebra()]));
            if t == 0 {
                assert!(d.contains(&skip(0, Trigger::Ghost, SkipReason::NoMatchingOwner)));
            }
            acts.extend(acted(&d).into_iter().map(|r| (t, r)));
        }
        // bgpd matches nothing, so "page" escalates from the incident's start; "kill" (0 s)
        // follows "page" in the same evaluation.
        assert_eq!(acts, vec![(0, 2), (20, 1), (20, 3)]);
    }

    /// Issue 16's ladder: clamp -> drain (3 s) -> restart (10 s), cooldown 5 s, the default
    /// budget of 6, one poll a second. Each action's result is fed back as `result` says;
    /// returns (second, rule) of every action and every Skip.
    fn run_results(
        result: impl Fn(usize) -> Option<Learned>,
    ) -> (Vec<(u64, usize)>, Vec<Decision>) {
        let mut c = with_rules(
            cfg(),
            &[
                comm(rule("clamp", Trigger::Backlog, ActionKind::Clamp), "zebra"),
                after(
                    comm(rule("drain", Trigger::Backlog, ActionKind::Drain), "zebra"),
                    3,
                ),
                after(
                    comm(
                        rule("restart", Trigger::Backlog, ActionKind::Restart),
                        "zebra",
                    ),
                    10,
                ),
            ],
        );
        c.cooldown_s = 5;
        c.max_actions_per_hour = 6;
        let mut p = Policy::new();
        let (mut acts, mut skips) = (vec![], vec![]);
        for t in 0..=25 {
            let d = eval(&mut p, &c, &snap(t, 0, &[zebra()]));
            for r in acted(&d) {
                acts.push((t, r));
                if let Some(l) = result(r) {
                    p.learn(&c, r, t * 1000, l);
                }
            }
            skips.extend(d.into_iter().filter(|d| matches!(d, Decision::Skip { .. })));
        }
        (acts, skips)
    }

    #[test]
    fn unsupported_rungs_hand_over_at_once_reported_once_and_cost_nothing() {
        // Before results were learned (nothing fed back): the dead rungs are retried every
        // cooldown, spend the budget, and restart is refused (issue 16's defect).
        let (acts, skips) = run_results(|_| None);
        assert_eq!(
            acts,
            vec![(0, 0), (3, 1), (5, 0), (8, 1), (10, 0), (13, 1)],
            "six failed attempts in 13 s"
        );
        assert_eq!(skips[0], skip(2, Trigger::Backlog, SkipReason::RateLimit));
        // Learned: each dead rung acts once, the next one acts on the following poll, the
        // budget holds only what was really done.
        let dead = |r| {
            Some(if r < 2 {
                Learned::Unsupported
            } else {
                Learned::Worked
            })
        };
        let (acts, skips) = run_results(dead);
        assert_eq!(
            acts,
            vec![(0, 0), (1, 1), (2, 2), (7, 2), (12, 2), (17, 2), (22, 2)]
        );
        assert!(skips.is_empty(), "{skips:?}");
        let mut p = Policy::new();
        let c = with_rules(
            cfg(),
            &[comm(
                rule("clamp", Trigger::Backlog, ActionKind::Clamp),
                "zebra",
            )],
        );
        assert_eq!(acted(&eval(&mut p, &c, &snap(0, 0, &[zebra()]))), vec![0]);
        assert_eq!(p.actions_in_last_hour(0), 1);
        p.learn(&c, 0, 0, Learned::Unsupported);
        assert_eq!(p.actions_in_last_hour(0), 0, "given back");
        // Not retried in this incident, whatever the cooldown...
        for t in [60, 120, 3600] {
            assert_eq!(
                acted(&eval(&mut p, &c, &snap(t, 0, &[zebra()]))),
                Vec::<usize>::new()
            );
        }
        // ...and tried (and reported) again in the next one.
        assert!(matches!(
            eval(&mut p, &c, &snap(3601, 0, &[]))[..],
            [Decision::Recovered { .. }]
        ));
        assert_eq!(
            acted(&eval(&mut p, &c, &snap(3602, 0, &[zebra()]))),
            vec![0]
        );
    }

    #[test]
    fn failed_or_ineffective_rungs_let_the_next_act_at_once() {
        for bad in [Learned::Failed, Learned::Ineffective] {
            // clamp fails or frees nothing: drain acts on the next poll instead of at 3 s;
            // drain works: restart waits its 10 s from drain's first action. Ordinary failures
            // are retried after the cooldown and count against the budget.
            let (acts, _) = run_results(|r| Some(if r == 0 { bad } else { Learned::Worked }));
            assert_eq!(
                acts,
                vec![(0, 0), (1, 1), (5, 0), (6, 1), (10, 0), (11, 1)],
                "{bad:?}"
            );
            // Restart was due at 11 (10 s after drain's first action) but the sixth attempt
            // filled the budget: ordinary failures count.
        }
        // A rung that fails and then works on its retry holds the ladder again.
        let c = with_rules(
            cfg(),
            &[
                comm(rule("clamp", Trigger::Backlog, ActionKind::Clamp), "zebra"),
                after(
                    comm(rule("kill", Trigger::Backlog, ActionKind::Kill), "zebra"),
                    100,
                ),
            ],
        );
        let mut c = c;
        c.cooldown_s = 5;
        let mut p = Policy::new();
        assert_eq!(acted(&eval(&mut p, &c, &snap(0, 0, &[zebra()]))), vec![0]);
        p.learn(&c, 0, 0, Learned::Ineffective);
        // The verdict on a retry that worked closes the gate again (kill waits its 100 s).
        assert_eq!(
            acted(&eval(&mut p, &c, &snap(5, 0, &[zebra()]))),
            vec![0, 1]
        );
        let mut p = Policy::new();
        assert_eq!(acted(&eval(&mut p, &c, &snap(0, 0, &[zebra()]))), vec![0]);
        p.learn(&c, 0, 0, Learned::Failed);
        p.learn(&c, 0, 0, Learned::Worked);
        assert_eq!(
            acted(&eval(&mut p, &c, &snap(1, 0, &[zebra()]))),
            Vec::<usize>::new()
        );
        assert_eq!(
            acted(&eval(&mut p, &c, &snap(100, 0, &[zebra()]))),
            vec![0, 1]
        );
        // A late verdict on an action of an incident that has closed changes nothing.
        let mut p = Policy::new();
        eval(&mut p, &c, &snap(0, 0, &[zebra()]));
        eval(&mut p, &c, &snap(1, 0, &[]));
        eval(&mut p, &c, &snap(2, 0, &[zebra()]));
        p.learn(&c, 0, 0, Learned::Unsupported);
        assert_eq!(p.actions_in_last_hour(2), 2, "not given back");
        assert_eq!(acted(&eval(&mut p, &c, &snap(7, 0, &[zebra()]))), vec![0]);
        p.learn(&c, 9, 0, Learned::Failed); // no such rule: ignored
    }

    #[test]
    fn names_alone_match_only_root_and_identity_beats_names() {
        // The worst socket belongs to an unprivileged impostor named "zebra" running its own
        // copy of the binary; the real zebra (root, the real file) holds a smaller one.
        let mut impostor = suspect(90 * MB, 1, &[(66, "zebra", "/usr/sbin/zebra")]);
        impostor.owners[0].uid = Some(65534);
        impostor.owners[0].exe_id = Some(fake_id("/home/eve/zebra"));
        let real = suspect(8 * MB, 2, &[(10, "zebra", "/usr/sbin/zebra")]);
        let suspects = [impostor, real];
        let with_uid = |mut r: Rule, u: u32| {
            r.uid = Some(u);
            r
        };
        let cases: &[(Rule, Option<(usize, usize)>)] = &[
            // comm only: uid 0 owners only.
            (
                comm(rule("r", Trigger::Backlog, ActionKind::Kill), "zebra"),
                Some((1, 0)),
            ),
            // A bare exe name is a name too.
            (
                exe(rule("r", Trigger::Backlog, ActionKind::Clamp), "zebra"),
                Some((1, 0)),
            ),
            // The absolute path is compared by device and inode, not by its text.
            (
                exe(
                    rule("r", Trigger::Backlog, ActionKind::Drain),
                    "/usr/sbin/zebra",
                ),
                Some((1, 0)),
            ),
            // An explicit uid matches that account (here: the impostor's).
            (
                with_uid(
                    comm(rule("r", Trigger::Backlog, ActionKind::Restart), "zebra"),
                    65534,
                ),
                Some((0, 0)),
            ),
            (
                with_uid(
                    exe(
                        rule("r", Trigger::Backlog, ActionKind::Restart),
                        "/usr/sbin/zebra",
                    ),
                    65534,
                ),
                None,
            ),
        ];
        for (r, want) in cases {
            let c = with_rules(cfg(), core::slice::from_ref(r));
            let d = eval(&mut Policy::new(), &c, &snap(0, 0, &suspects));
            let got = d.iter().find_map(|d| match *d {
                Decision::Act { suspect, owner, .. } => Some((suspect.unwrap(), owner.unwrap())),
                _ => None,
            });
            assert_eq!(got, *want, "{r:?}");
        }
        // Mixed credentials (a setuid program another user started) match no identity.
        let mut mixed = suspects.clone();
        mixed[1].owners[0].uid = None;
        let c = with_rules(
            cfg(),
            &[comm(rule("r", Trigger::Backlog, ActionKind::Kill), "zebra")],
        );
        let d = eval(&mut Policy::new(), &c, &snap(0, 0, &mixed));
        assert!(
            !d.iter().any(|d| matches!(d, Decision::Act { .. })),
            "{d:?}"
        );
    }

    #[test]
    fn comm_and_exe_matching() {
        let suspects = [
            suspect(9 * MB, 1, &[(10, "sshd", "/usr/sbin/sshd")]),
            suspect(
                7 * MB,
                2,
                &[
                    (20, "zebra", "/usr/sbin/zebra (deleted)"),
                    (21, "zebra", "/opt/quagga/zebra"),
                ],
            ),
        ];
        let cases: &[(Rule, Option<(usize, usize)>)] = &[
            (
                comm(rule("r", Trigger::Backlog, ActionKind::Restart), "zebra"),
                Some((1, 0)),
            ),
            (
                exe(rule("r", Trigger::Backlog, ActionKind::Restart), "zebra"),
                Some((1, 0)),
            ),
            (
                exe(
                    rule("r", Trigger::Backlog, ActionKind::Restart),
                    "/opt/quagga/zebra",
                ),
                Some((1, 1)),
            ),
            // The running binary was replaced: the path names another file now.
            (
                exe(
                    rule("r", Trigger::Backlog, ActionKind::Restart),
                    "/usr/sbin/zebra",
                ),
                None,
            ),
            (
                exe(
                    rule("r", Trigger::Backlog, ActionKind::Restart),
                    "sbin/zebra",
                ),
                None,
            ),
            (
                exe(rule("r", Trigger::Backlog, ActionKind::Restart), "zeb"),
                None,
            ),
            (
                comm(rule("r", Trigger::Backlog, ActionKind::Restart), "zebr"),
                None,
            ),
            (
                exe(
                    comm(rule("r", Trigger::Backlog, ActionKind::Kill), "zebra"),
                    "/opt/quagga/zebra",
                ),
                Some((1, 1)),
            ),
            (
                exe(
                    comm(rule("r", Trigger::Backlog, ActionKind::Kill), "sshd"),
                    "zebra",
                ),
                None,
            ),
            (
                comm(rule("r", Trigger::Backlog, ActionKind::Log), "sshd"),
                Some((0, 0)),
            ),
            (
                comm(rule("r", Trigger::Backlog, ActionKind::Log), "ntpd"),
                None,
            ),
        ];
        for (r, want) in cases {
            let c = with_rules(cfg(), core::slice::from_ref(r));
            let mut p = Policy::new();
            let d = eval(&mut p, &c, &snap(0, 0, &suspects));
            let got = d.iter().find_map(|d| match *d {
                Decision::Act { suspect, owner, .. } => Some((suspect.unwrap(), owner.unwrap())),
                _ => None,
            });
            assert_eq!(got, *want, "{r:?}");
            let skip_nm = skip(0, Trigger::Backlog, SkipReason::NoMatchingOwner);
            assert_eq!(d.contains(&skip_nm), want.is_none(), "{r:?}");
            // At most one NoMatchingOwner per rule per incident.
            let d = eval(&mut p, &c, &snap(3600, 0, &suspects));
            assert!(!d.contains(&skip_nm), "{r:?}");
        }
    }

    #[test]
    fn target_is_the_worst_matching_suspect_even_unsorted() {
        let suspects = [
            suspect(9 * MB, 1, &[(20, "zebra", "")]),
            suspect(20 * MB, 2, &[(30, "ospfd", ""), (31, "zebra", "")]),
            suspect(12 * MB, 3, &[(40, "zebra", "")]),
        ];
        let c = with_rules(
            cfg(),
            &[comm(rule("r", Trigger::Ghost, ActionKind::Drain), "zebra")],
        );
        let d = eval(&mut Policy::new(), &c, &snap(0, GHOST_ACT, &suspects));
        assert!(d.contains(&Decision::Act {
            rule: 0,
            trigger: Trigger::Ghost,
            suspect: Some(1),
            owner: Some(1),
            dry_run: false,
        }));
        assert_eq!(snap(0, 0, &suspects).worst_suspect(), Some(1));
    }

    fn blamed(mut s: Suspect, explains_pm: u16, ratio: Option<u32>) -> Suspect {
        s.blame = SuspectBlame {
            explains_pm,
            ratio: ratio.map(Ratio),
        };
        s
    }

    #[test]
    fn ghost_rules_aim_at_the_socket_that_moves_with_ghost() {
        // The decoy holds the larger queue; the culprit grows with Ghost.
        let decoy = suspect(60 * MB, 1, &[(10, "ntpd", "")]);
        let culprit = blamed(suspect(3 * MB, 2, &[(20, "zebra", "")]), 900, None);
        let weak = blamed(suspect(5 * MB, 3, &[(30, "zebra", "")]), 400, None);
        let suspects = [decoy.clone(), culprit.clone(), weak];
        let mut c = with_rules(
            cfg(),
            &[
                rule("note", Trigger::Ghost, ActionKind::Log),
                comm(rule("drain", Trigger::Ghost, ActionKind::Drain), "zebra"),
                rule("note-backlog", Trigger::Backlog, ActionKind::Log),
            ],
        );
        c.backlog_act_bytes = 50 * MB;
        let d = eval(&mut Policy::new(), &c, &snap(0, GHOST_ACT, &suspects));
        let targets: Vec<_> = d
            .iter()
            .filter_map(|d| match *d {
                Decision::Act { rule, suspect, .. } => Some((rule, suspect)),
                _ => None,
            })
            .collect();
        // Without comm the ghost rule names the culprit, with comm it drains it (not the
        // 5 MB zebra socket that explains less); the backlog rule keeps to the largest queue.
        assert_eq!(targets, vec![(0, Some(1)), (1, Some(1)), (2, Some(0))]);
        // Nothing moves with Ghost: the largest queue, as before.
        let quiet = [decoy, blamed(culprit, 499, None)];
        let d = eval(&mut Policy::new(), &c, &snap(0, GHOST_ACT, &quiet));
        assert!(d.contains(&Decision::Act {
            rule: 0,
            trigger: Trigger::Ghost,
            suspect: Some(0),
            owner: Some(0),
            dry_run: false,
        }));
    }

    #[test]
    fn backlog_counts_what_a_queue_holds_once_a_ratio_is_trusted() {
        let c = with_rules(
            cfg(),
            &[comm(
                rule("drain", Trigger::Backlog, ActionKind::Drain),
                "zebra",
            )],
        );
        // 2 MB queued, 34× pinned: 68 MB held, over the 8 MB act level; the 5 MB decoy is not.
        let s = [
            suspect(5 * MB, 1, &[(10, "zebra", "")]),
            blamed(suspect(2 * MB, 2, &[(20, "zebra", "")]), 0, Some(3400)),
        ];
        assert_eq!(s[1].held_bytes(), 68 * MB);
        let mut p = Policy::new();
        let d = eval(&mut p, &c, &snap(0, 0, &s));
        assert_eq!(d[0], threshold(Trigger::Backlog, Level::Act, 68_000_000));
        assert!(matches!(
            d[1],
            Decision::Act {
                suspect: Some(1),
                ..
            }
        ));
        // Without a ratio the same queues stay under the act level; a ratio under 1 counts 1.
        let plain = [s[0].clone(), blamed(s[1].clone(), 0, Some(40))];
        let d = eval(&mut Policy::new(), &c, &snap(0, 0, &plain));
        assert_eq!(d, vec![threshold(Trigger::Backlog, Level::Warn, 5_000_000)]);
    }

    #[test]
    fn rules_without_selector() {
        let mut c = with_rules(
            cfg(),
            &[
                rule("restart-any", Trigger::Ghost, ActionKind::Restart),
                rule("note", Trigger::Ghost, ActionKind::Log),
                rule("rmem", Trigger::Ghost, ActionKind::Sysctl),
            ],
        );
        c.backlog_act_bytes = 0; // off: only the ghost incident speaks
        let act = |rule, suspect, owner| Decision::Act {
            rule,
            trigger: Trigger::Ghost,
            suspect,
            owner,
            dry_run: false,
        };
        let refused = skip(0, Trigger::Ghost, SkipReason::NoMatchingOwner);
        let mut p = Policy::new();
        let d = eval(&mut p, &c, &snap(0, GHOST_ACT, &[zebra()]));
        assert_eq!(
            d[1..],
            [refused, act(1, Some(0), Some(0)), act(2, Some(0), Some(0))]
        );
        let d = eval(&mut p, &c, &snap(60, GHOST_ACT, &[suspect(5, 9, &[])]));
        assert_eq!(d, [act(1, Some(0), None), act(2, Some(0), None)]);
        let d = eval(&mut p, &c, &snap(120, GHOST_ACT, &[]));
        assert_eq!(d, [act(1, None, None), act(2, None, None)]);
    }

    #[test]
    fn ghost_growth_baseline_moves_down_only() {
        let mut c = cfg();
        c.ghost_growth = true;
        let c = with_rules(c, &[rule("note", Trigger::Ghost, ActionKind::Log)]);
        let mut p = Policy::new();
        assert!(
            !p.wants_owners(&c, 900_000, 0, None),
            "no baseline yet: growth 0"
        );
        assert_eq!(eval(&mut p, &c, &snap(0, 500_000, &[])), vec![]);
        assert_eq!(p.ghost_floor_kb(), Some(500_000));
        assert!(p.wants_owners(&c, 650_000, 0, None));
        assert_eq!(
            eval(&mut p, &c, &snap(1, 650_000, &[])),
            vec![threshold(Trigger::Ghost, Level::Warn, 150_000)]
        );
        // A lower reading becomes the new baseline at once.
        let d = eval(&mut p, &c, &snap(2, 400_000, &[]));
        assert!(matches!(d[..], [Decision::Recovered { value: 0, .. }]));
        assert_eq!(p.ghost_floor_kb(), Some(400_000));
        // Rising again does not move the baseline up.
        let d = eval(&mut p, &c, &snap(3, 700_000, &[]));
        assert_eq!(d[0], threshold(Trigger::Ghost, Level::Act, 300_000));
        assert_eq!(p.ghost_floor_kb(), Some(400_000));
        // Absolute mode reads the same numbers as they are.
        let mut abs = Policy::new();
        assert_eq!(
            eval(&mut abs, &cfg(), &snap(0, 500_000, &[]))[0],
            threshold(Trigger::Ghost, Level::Act, 500_000)
        );
    }

    #[test]
    fn available_is_inverted_and_off_without_data() {
        let mut c = cfg();
        c.min_available_kb = 50_000;
        c.available_warn_kb = 100_000;
        let c = with_rules(c, &[rule("note", Trigger::Available, ActionKind::Log)]);
        let a = Trigger::Available;
        let mut p = Policy::new();
        let at = |p: &mut Policy, t: u64, avail: Option<u64>| {
            let mut s = snap(t, 0, &[]);
            s.available_kb = avail;
            eval(p, &c, &s)
        };
        assert_eq!(at(&mut p, 0, Some(200_000)), vec![]);
        assert_eq!(
            at(&mut p, 0, Some(100_000)),
            vec![],
            "warn is strictly below"
        );
        assert_eq!(
            at(&mut p, 1, Some(90_000)),
            vec![threshold(a, Level::Warn, 90_000)]
        );
        let d = at(&mut p, 2, Some(40_000));
        assert_eq!(d[0], threshold(a, Level::Act, 40_000));
        assert_eq!(acted(&d), vec![0]);
        assert_eq!(at(&mut p, 3, Some(60_000)), vec![], "still in the incident");
        assert_eq!(
            at(&mut p, 4, Some(150_000)),
            vec![Decision::Recovered {
                trigger: a,
                value: 150_000,
                held_ms: 3000,
            }]
        );
        // No MemAvailable: the trigger is off; an open incident closes.
        assert_eq!(at(&mut p, 5, None), vec![]);
        at(&mut p, 6, Some(40_000));
        let d = at(&mut p, 7, None);
        assert!(matches!(
            d[..],
            [Decision::Recovered {
                trigger: Trigger::Available,
                ..
            }]
        ));
        assert!(!p.wants_owners(&c, 0, 0, None));
        // min_available_kb 0: off whatever the reading.
        let mut off = cfg();
        off.available_warn_kb = 100_000;
        let mut s = snap(0, 0, &[]);
        s.available_kb = Some(1);
        assert_eq!(eval(&mut Policy::new(), &off, &s), vec![]);
    }

    #[test]
    fn wants_owners_from_warn_level() {
        let mut c = cfg();
        c.min_available_kb = 50_000;
        c.available_warn_kb = 100_000;
        let p = Policy::new();
        assert!(!p.wants_owners(&c, GHOST_OK, MB - 1, Some(100_000)));
        assert!(p.wants_owners(&c, 100_000, 0, None));
        assert!(p.wants_owners(&c, 0, MB, None));
        assert!(p.wants_owners(&c, 0, 0, Some(99_999)));
    }

    #[test]
    fn backlog_value_is_the_worst_suspect() {
        let c = cfg();
        let mut p = Policy::new();
        let s = [suspect(2 * MB, 1, &[]), suspect(9 * MB, 2, &[])];
        assert_eq!(
            eval(&mut p, &c, &snap(0, 0, &s)),
            vec![threshold(Trigger::Backlog, Level::Act, 9_000_000)]
        );
        assert!(matches!(
            eval(&mut p, &c, &snap(1, 0, &[]))[..],
            [Decision::Recovered { value: 0, .. }]
        ));
    }

    #[test]
    fn warn_above_act_still_has_hysteresis() {
        let mut c = cfg();
        c.ghost_warn_kb = 300_000;
        let mut p = Policy::new();
        assert_eq!(eval(&mut p, &c, &snap(0, GHOST_ACT, &[])).len(), 1);
        assert_eq!(
            eval(&mut p, &c, &snap(1, 199_999, &[])).len(),
            1,
            "recovered"
        );
    }

    #[test]
    fn dry_run_shows_the_same_ladder() {
        let real = ladder_cfg();
        let mut dry = ladder_cfg();
        dry.dry_run = true;
        let (real_acts, real_all) = run_ladder(&real);
        let (dry_acts, dry_all) = run_ladder(&dry);
        assert_eq!(real_acts, dry_acts);
        let undry = |d: &Decision| match *d {
            Decision::Act {
                rule,
                trigger,
                suspect,
                owner,
                dry_run,
            } => {
                assert!(dry_run);
                Decision::Act {
                    rule,
                    trigger,
                    suspect,
                    owner,
                    dry_run: false,
                }
            }
            other => other,
        };
        assert_eq!(real_all, dry_all.iter().map(undry).collect::<Vec<_>>());
    }

    #[test]
    fn dry_run_counts_for_rate_limit() {
        let mut c = with_rules(cfg(), &[rule("rmem", Trigger::Ghost, ActionKind::Sysctl)]);
        c.dry_run = true;
        c.cooldown_s = 0;
        c.max_actions_per_hour = 2;
        let mut p = Policy::new();
        let n: usize = (0..5)
            .map(|t| acted(&eval(&mut p, &c, &snap(t, GHOST_ACT, &[]))).len())
            .sum();
        assert_eq!(n, 2);
    }

    #[test]
    fn reload_keeps_incidents_and_drops_changed_rules() {
        let a = rule("a", Trigger::Ghost, ActionKind::Log);
        let b = rule("b", Trigger::Ghost, ActionKind::Log);
        let c1 = with_rules(cfg(), &[a.clone(), b.clone()]);
        let mut p = Policy::new();
        assert_eq!(
            acted(&eval(&mut p, &c1, &snap(0, GHOST_ACT, &[]))),
            vec![0, 1]
        );

        // Index 1 renamed: its history goes, "a" keeps its cooldown, the incident stays open.
        let c2 = with_rules(
            cfg(),
            &[a.clone(), rule("c", Trigger::Ghost, ActionKind::Log)],
        );
        p.reconfigured(&c2);
        assert_eq!(p.incident_started_ms(Trigger::Ghost), Some(0));
        assert_eq!(
            eval(&mut p, &c2, &snap(10, GHOST_ACT, &[])),
            vec![Decision::Act {
                rule: 1,
                trigger: Trigger::Ghost,
                suspect: None,
                owner: None,
                dry_run: false,
            }]
        );

        // Shrinking drops index 1; growing back starts it fresh.
        let c3 = with_rules(cfg(), core::slice::from_ref(&a));
        p.reconfigured(&c3);
        assert_eq!(eval(&mut p, &c3, &snap(20, GHOST_ACT, &[])), vec![]);
        p.reconfigured(&c2);
        assert_eq!(
            acted(&eval(&mut p, &c2, &snap(30, GHOST_ACT, &[]))),
            vec![1]
        );

        // Same name, other trigger: a different rule now.
        let mut a_backlog = a.clone();
        a_backlog.trigger = Trigger::Backlog;
        let c4 = with_rules(cfg(), &[a_backlog, b]);
        p.reconfigured(&c4);
        // Without the call, evaluate notices the change itself.
        let c5 = with_rules(cfg(), &[a, rule("d", Trigger::Ghost, ActionKind::Log)]);
        assert_eq!(
            acted(&eval(&mut p, &c5, &snap(40, GHOST_ACT, &[]))),
            vec![0, 1]
        );
    }

    #[test]
    fn reload_with_new_thresholds_recovers_open_incidents() {
        let mut p = Policy::new();
        eval(&mut p, &cfg(), &snap(0, GHOST_ACT, &[]));
        let mut higher = cfg();
        higher.ghost_warn_kb = 1_000_000;
        higher.ghost_act_kb = 2_000_000;
        p.reconfigured(&higher);
        assert!(matches!(
            eval(&mut p, &higher, &snap(5, GHOST_ACT, &[]))[..],
            [Decision::Recovered { held_ms: 5000, .. }]
        ));
    }

    // ---- oom_eta, on a fake clock ------------------------------------------------------

    const MIB_KB: u64 = 1024;

    /// Floor 256 MiB (no available warn stage of note), ghost/backlog quiet.
    fn eta_cfg(rules: &[Rule]) -> Config {
        let mut c = with_rules(cfg(), rules);
        c.min_available_kb = 256 * MIB_KB;
        c.available_warn_kb = 256 * MIB_KB;
        c.cooldown_s = 10;
        c
    }

    fn eta_rule(name: &str, eta_s: u32, action: ActionKind) -> Rule {
        let mut r = rule(name, Trigger::OomEta, action);
        r.eta_s = Some(eta_s);
        r
    }

    /// Runs MemAvailable `f(t_ms)` in 1 s polls over `secs` seconds; returns every decision
    /// with its time (s).
    fn run_avail(
        p: &mut Policy,
        c: &Config,
        secs: u64,
        suspects: &[Suspect],
        f: impl Fn(u64) -> u64,
    ) -> Vec<(u64, Decision)> {
        let mut all = vec![];
        for t in 0..=secs {
            let mut s = snap(t, 0, suspects);
            s.available_kb = Some(f(t * 1000));
            all.extend(eval(p, c, &s).into_iter().map(|d| (t, d)));
        }
        all
    }

    fn first_act(all: &[(u64, Decision)], trigger: Trigger) -> Option<u64> {
        all.iter().find_map(|(t, d)| match d {
            Decision::Act { trigger: tr, .. } if *tr == trigger => Some(*t),
            _ => None,
        })
    }

    fn eta_events(all: &[(u64, Decision)]) -> Vec<(u64, Decision)> {
        all.iter()
            .filter(|(_, d)| {
                matches!(
                    d,
                    Decision::Threshold {
                        trigger: Trigger::OomEta,
                        ..
                    } | Decision::Recovered {
                        trigger: Trigger::OomEta,
                        ..
                    } | Decision::Act {
                        trigger: Trigger::OomEta,
                        ..
                    }
                )
            })
            .cloned()
            .collect()
    }

    /// 2 GiB free for a minute, then a leak of `mib_s` MiB/s down to nothing.
    fn leak(mib_s: u64) -> impl Fn(u64) -> u64 {
        move |t_ms| {
            let lost = t_ms.saturating_sub(60_000) * mib_s * MIB_KB / 1000;
            (2048 * MIB_KB).saturating_sub(lost)
        }
    }

    #[test]
    fn a_fast_leak_acts_well_before_the_available_threshold() {
        let c = eta_cfg(&[
            eta_rule("eta", 60, ActionKind::Log),
            rule("avail", Trigger::Available, ActionKind::Log),
        ]);
        let all = run_avail(&mut Policy::new(), &c, 200, &[], leak(20));
        let eta = first_act(&all, Trigger::OomEta).unwrap();
        let avail = first_act(&all, Trigger::Available).unwrap();
        // 1792 MiB of headroom at 20 MiB/s: the floor is reached 89.6 s into the leak.
        assert_eq!(avail, 60 + 90);
        assert!(
            eta <= 60 + 45,
            "oom_eta acted at {eta} s, available at {avail} s"
        );
        assert!(avail - eta >= 45, "oom_eta {eta} s, available {avail} s");
        // Its threshold line came first, warn (estimate < 120 s) or straight to act.
        let ev = eta_events(&all);
        assert!(matches!(ev[0].1, Decision::Threshold { .. }), "{ev:?}");
    }

    #[test]
    fn slow_growth_a_dip_and_a_sawtooth_open_no_incident() {
        let c = eta_cfg(&[eta_rule("eta", 120, ActionKind::Log)]);
        // Slow benign growth: 100 kB/s for an hour, 1.8 GB above the floor (5 h away).
        let slow = run_avail(&mut Policy::new(), &c, 3600, &[], |t| {
            2048 * MIB_KB - t / 10
        });
        assert_eq!(eta_events(&slow), vec![], "slow growth");
        // A one-off dip to just above the floor.
        let dip = run_avail(&mut Policy::new(), &c, 300, &[], |t| {
            if t == 150_000 {
                260 * MIB_KB
            } else {
                2048 * MIB_KB
            }
        });
        assert_eq!(eta_events(&dip), vec![], "one dip");
        // Sawtooth: 200 MB taken over 3 s, held 2 s, freed, every 10 s; with ±8 MB of
        // noise on every reading.
        let saw = |t_ms: u64| {
            let phase = t_ms % 10_000;
            let held = match phase {
                0..3000 => 200 * MIB_KB * phase / 3000,
                3000..5000 => 200 * MIB_KB,
                _ => 0,
            };
            let noise = (t_ms / 1000).wrapping_mul(2_654_435_761) % (16 * MIB_KB);
            1024 * MIB_KB - held + noise
        };
        let p = &mut Policy::new();
        let all = run_avail(p, &c, 900, &[], saw);
        assert_eq!(eta_events(&all), vec![], "sawtooth");
        // Allocate-and-free bursts that reach below halfway to the floor for a moment.
        let bursts = run_avail(&mut Policy::new(), &c, 900, &[], |t_ms| {
            if t_ms % 20_000 < 2000 {
                400 * MIB_KB
            } else {
                1024 * MIB_KB
            }
        });
        assert_eq!(eta_events(&bursts), vec![], "bursts");
    }

    #[test]
    fn a_leak_that_stops_closes_the_incident() {
        let c = eta_cfg(&[eta_rule("eta", 60, ActionKind::Log)]);
        let mut p = Policy::new();
        // 20 MiB/s for 50 s (1 GiB), then flat well above the floor.
        let all = run_avail(&mut p, &c, 300, &[], |t_ms| leak(20)(t_ms.min(110_000)));
        let ev = eta_events(&all);
        let acted: Vec<u64> = ev
            .iter()
            .filter(|(_, d)| matches!(d, Decision::Act { .. }))
            .map(|(t, _)| *t)
            .collect();
        let closed: Vec<_> = ev
            .iter()
            .filter_map(|(t, d)| match d {
                Decision::Recovered { value, .. } => Some((*t, *value)),
                _ => None,
            })
            .collect();
        assert_eq!(closed.len(), 1, "{ev:?}");
        // The estimate lags the stop by less than a window; nothing acts after the close.
        let (t, _) = closed[0];
        assert!((110..=140).contains(&t), "recovered at {t} s: {ev:?}");
        assert!(!acted.is_empty() && acted.iter().all(|&a| a < t), "{ev:?}");
        assert_eq!(p.level(Trigger::OomEta), None);
        // The estimate is gone once memory is flat for a window: not 0, not huge.
        assert_eq!(p.oom_eta().unwrap().eta_s, None);
        assert_eq!(p.oom_eta().unwrap().slope_mkb_s, 0);
    }

    #[test]
    fn eta_rules_form_a_ladder_by_their_own_eta_s_and_target_like_ghost() {
        let c = eta_cfg(&[
            eta_rule("note", 600, ActionKind::Log),
            comm(eta_rule("drain", 30, ActionKind::Drain), "zebra"),
            after(eta_rule("reboot", 30, ActionKind::Reboot), 20),
        ]);
        let mut p = Policy::new();
        let all = run_avail(&mut p, &c, 240, &[zebra()], leak(10));
        let first = |rule: usize| {
            all.iter().find_map(|(t, d)| match d {
                Decision::Act { rule: r, .. } if *r == rule => Some(*t),
                _ => None,
            })
        };
        let (note, drain, reboot) = (first(0).unwrap(), first(1).unwrap(), first(2).unwrap());
        // 1792 MiB at 10 MiB/s: the floor is 179 s into the leak, at 239 s.
        assert!(note < drain, "{note} {drain}");
        assert!((60 + 130..=60 + 155).contains(&drain), "drain at {drain}");
        assert_eq!(
            reboot,
            drain + 20,
            "escalates from the drain, not from the note"
        );
        let target = all.iter().find_map(|(_, d)| match *d {
            Decision::Act {
                rule: 1,
                suspect,
                owner,
                ..
            } => Some((suspect, owner)),
            _ => None,
        });
        assert_eq!(
            target,
            Some((Some(0), Some(0))),
            "the zebra owner of the worst socket"
        );
        assert!(
            p.wants_owners(&c, 0, 0, Some(300 * MIB_KB)),
            "an incident wants owners"
        );
    }

    #[test]
    fn oom_eta_is_off_without_rules_or_memavailable_but_still_estimated() {
        // No oom_eta rule: no incident, but the estimate is there for status and metrics.
        let c = eta_cfg(&[]);
        let mut p = Policy::new();
        let all = run_avail(&mut p, &c, 100, &[], leak(20));
        assert_eq!(eta_events(&all), vec![]);
        let e = p.oom_eta().unwrap();
        assert_eq!(e.slope_mkb_s, -20 * 1024 * 1000);
        assert_eq!(e.eta_s, Some((2048 - 256 - 800) / 20));
        // No MemAvailable: no estimate, and an open incident closes.
        let c = eta_cfg(&[eta_rule("eta", 600, ActionKind::Log)]);
        let mut p = Policy::new();
        run_avail(&mut p, &c, 100, &[], leak(20));
        assert_eq!(p.level(Trigger::OomEta), Some(Level::Act));
        let d = eval(&mut p, &c, &snap(101, 0, &[]));
        assert!(
            matches!(
                d[..],
                [Decision::Recovered {
                    trigger: Trigger::OomEta,
                    ..
                }]
            ),
            "{d:?}"
        );
        assert_eq!(p.oom_eta(), None);
    }
}
