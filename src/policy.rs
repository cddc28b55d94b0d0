//! The decision core: a snapshot (numbers) + history + config in, decisions out.
//!
//! OWNER: policy. Pure: no file I/O, no sleeping, no logging, no clock reads — time comes
//! in as `Snapshot::now_ms` (CLOCK_MONOTONIC in the agent, a fake clock in tests).

use crate::config::{Config, Trigger};
use crate::owners::Owner;
use crate::proc::net::SocketEntry;

/// Most suspects (worst-backlog sockets) a snapshot carries.
pub const MAX_SUSPECTS: usize = 8;
/// Most owners considered per suspect.
pub const MAX_SUSPECT_OWNERS: usize = 8;
/// Most decisions one evaluation returns.
pub const MAX_DECISIONS: usize = 32;

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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Warn,
    Act,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkipReason {
    /// `max_actions_per_hour` reached.
    RateLimit,
    /// The rule needs an owner matching comm/exe and none of the suspects has one.
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

/// History between evaluations: incidents, per-rule last action, the hourly action window.
#[derive(Clone, Debug, Default)]
pub struct Policy {}

impl Policy {
    pub fn new() -> Policy {
        todo!()
    }

    /// True when any trigger is at or above its warn level: the agent then resolves
    /// suspect owners before calling `evaluate` (cheap polls otherwise).
    pub fn wants_owners(
        &self,
        cfg: &Config,
        ghost_kb: i64,
        max_rx_queue: u64,
        available_kb: Option<u64>,
    ) -> bool {
        let _ = (cfg, ghost_kb, max_rx_queue, available_kb);
        todo!()
    }

    /// After a config reload: keeps incidents, drops per-rule state of rules that are gone/renamed.
    pub fn reconfigured(&mut self, cfg: &Config) {
        let _ = cfg;
        todo!()
    }

    /// Evaluates one snapshot; appends decisions to `out` (cleared first).
    pub fn evaluate(
        &mut self,
        cfg: &Config,
        snap: &Snapshot,
        out: &mut heapless::Vec<Decision, MAX_DECISIONS>,
    ) {
        let _ = (cfg, snap, out);
        todo!()
    }
}
