//! The agent's configuration: one JSON file parsed with serde-json-core into bounded heapless
//! structures (no heap), validated with errors that say `FILE:LINE:COL: what and what is allowed`.
//!
//! OWNER: config. The types below are shared with policy, act and agent: add fields, don't rename.

use heapless::{String, Vec};

pub const MAX_RULES: usize = 16;
pub const MAX_ARGV: usize = 8;
/// Longest argv element, path or sysctl value (bytes).
pub const MAX_STR: usize = 128;

pub type Str = String<MAX_STR>;
pub type Name = String<32>;
pub type CommStr = String<16>;

/// Where audit lines go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyslogTarget {
    /// A local syslog socket path (default /dev/log).
    Unix(Str),
    /// A collector, "HOST:PORT".
    Udp(Str),
    Tcp(Str),
    Stderr,
}

/// Which measurement a rule reacts to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Trigger {
    Ghost,
    Backlog,
    Available,
}

impl Trigger {
    pub fn name(self) -> &'static str {
        match self {
            Trigger::Ghost => "ghost",
            Trigger::Backlog => "backlog",
            Trigger::Available => "available",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActionKind {
    Log,
    Exec,
    Restart,
    Sysctl,
    Clamp,
    Drain,
    Kill,
    Reboot,
}

impl ActionKind {
    pub fn name(self) -> &'static str {
        match self {
            ActionKind::Log => "log",
            ActionKind::Exec => "exec",
            ActionKind::Restart => "restart",
            ActionKind::Sysctl => "sysctl",
            ActionKind::Clamp => "clamp",
            ActionKind::Drain => "drain",
            ActionKind::Kill => "kill",
            ActionKind::Reboot => "reboot",
        }
    }

    /// Actions that touch the box (everything but `log`): these count against
    /// `max_actions_per_hour`.
    pub fn is_disruptive(self) -> bool {
        self != ActionKind::Log
    }

    /// Actions aimed at the offending socket's owner: these need `comm` or `exe`.
    pub fn targets_owner(self) -> bool {
        matches!(
            self,
            ActionKind::Restart | ActionKind::Clamp | ActionKind::Drain | ActionKind::Kill
        )
    }
}

/// One remediation rule. Rules are tried in file order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub name: Name,
    pub trigger: Trigger,
    /// Matches the owner's comm exactly.
    pub comm: Option<CommStr>,
    /// Matches the owner's exe path exactly, or its basename if this has no '/'.
    pub exe: Option<Str>,
    pub action: ActionKind,
    /// exec/restart: program and arguments, run without a shell. `{pid}`, `{comm}`,
    /// `{inode}` are replaced by the target's values.
    pub argv: Vec<Str, MAX_ARGV>,
    /// sysctl: dotted name, e.g. "net.core.rmem_max".
    pub sysctl: Option<Str>,
    /// sysctl: value to write.
    pub value: Option<Str>,
    /// clamp: new SO_RCVBUF in bytes (the kernel doubles it for bookkeeping).
    pub rcvbuf: Option<u32>,
    /// kill: signal number (config accepts "TERM", "SIGKILL", 9, ...).
    pub signal: i32,
    /// exec/restart: kill the command after this long.
    pub timeout_s: u32,
    /// Run only once the condition has held this long since the previous matching rule acted.
    pub escalate_after_s: Option<u32>,
}

/// The whole configuration, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub interval_ms: u32,
    pub syslog: SyslogTarget,
    /// Syslog facility name ("daemon", "user", "local0".."local7", ...).
    pub facility: Name,
    pub status_file: Option<Str>,
    pub metrics_file: Option<Str>,
    pub dry_run: bool,
    pub ghost_warn_kb: u64,
    pub ghost_act_kb: u64,
    /// Compare Ghost's growth over the lowest value seen since start instead of its absolute value.
    pub ghost_growth: bool,
    pub backlog_warn_bytes: u64,
    pub backlog_act_bytes: u64,
    /// Act when MemAvailable falls below this (0: off).
    pub min_available_kb: u64,
    /// Warn (and clear incidents only above) this MemAvailable level (default 2 x min_available_kb).
    pub available_warn_kb: u64,
    pub cooldown_s: u32,
    pub max_actions_per_hour: u32,
    /// Written to /proc/self/oom_score_adj at start (-1000: never chosen by the OOM killer).
    pub oom_score_adj: i32,
    /// mlockall(MCL_CURRENT|MCL_FUTURE) at start so the agent is never paged out.
    pub mlock: bool,
    /// reboot: file written (and synced) before rebooting, naming the rule and the reason.
    pub breadcrumb_file: Str,
    /// drain: most packets discarded per action.
    pub drain_max_packets: u32,
    pub rules: Vec<Rule, MAX_RULES>,
}

/// A config that failed to parse or validate: position (1-based) and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub line: u32,
    pub col: u32,
    pub msg: String<256>,
}

impl Config {
    /// The config used without -c and without /etc/ghostwatch.json: observe and log only.
    pub fn embedded_default() -> Config {
        todo!()
    }
}

/// Parses and validates config text.
pub fn parse(text: &[u8]) -> Result<Config, ConfigError> {
    let _ = text;
    todo!()
}

/// Largest config file accepted (bytes).
pub const MAX_FILE: usize = 16 * 1024;

/// A config file that could not be read or is invalid. Display: `PATH:LINE:COL: message`
/// (LINE:COL are 0:0 when the file could not be read at all).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadError {
    pub path: Str,
    pub err: ConfigError,
}

impl core::fmt::Display for LoadError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.path, self.err.line, self.err.col, self.err.msg
        )
    }
}

/// Reads `path` (at most MAX_FILE bytes, into a stack buffer) and parses it.
pub fn load(path: &str) -> Result<Config, LoadError> {
    let _ = path;
    todo!()
}
