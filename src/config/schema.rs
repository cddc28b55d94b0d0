//! The config schema as data: every key, its JSON type, its capacity or range.
//!
//! One table serves the scanner (types, lengths, counts, unknown keys) and the validator
//! (ranges, allowed words), so a key's limits are written down exactly once. docs/CONFIG.md
//! documents the same table; `tests/config_check.rs` keeps them honest.

use super::{MAX_ARGV, MAX_PROTECT, MAX_RULES, MAX_STR};

/// What JSON value a key takes. `null` is accepted for every key and means "as if absent".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A whole number in `min..=max`.
    Int {
        min: i64,
        max: i64,
    },
    Bool,
    /// A string of at most `cap` bytes (after unescaping).
    Str {
        cap: usize,
    },
    /// A signal: a name ("TERM", "SIGKILL") or a number.
    Signal,
    /// An array of at most `max_items` strings of at most `cap` bytes each.
    StrList {
        cap: usize,
        max_items: usize,
    },
    /// The array of rule objects.
    Rules {
        max_items: usize,
    },
}

impl Kind {
    /// How type errors describe what was expected ("must be ...").
    pub fn expected(self) -> &'static str {
        match self {
            Kind::Int { .. } => "a number",
            Kind::Bool => "true or false",
            Kind::Str { .. } => "a string",
            Kind::Signal => "a signal name or number",
            Kind::StrList { .. } => "an array of strings",
            Kind::Rules { .. } => "an array of rule objects",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeySpec {
    pub name: &'static str,
    pub kind: Kind,
}

const fn int(name: &'static str, min: i64, max: i64) -> KeySpec {
    KeySpec {
        name,
        kind: Kind::Int { min, max },
    }
}

const fn text(name: &'static str, cap: usize) -> KeySpec {
    KeySpec {
        name,
        kind: Kind::Str { cap },
    }
}

const fn flag(name: &'static str) -> KeySpec {
    KeySpec {
        name,
        kind: Kind::Bool,
    }
}

/// kB ceiling for memory thresholds: 1 TiB, far above any router and far below overflow.
pub const MAX_KB: i64 = 1 << 30;
/// Byte ceiling for backlog thresholds (1 TiB).
pub const MAX_BYTES: i64 = 1 << 40;
/// Longest time a rule may wait or a cooldown may last: one day.
pub const MAX_DELAY_S: i64 = 86_400;
/// Longest watchdog timeout accepted (s); hardware watchdogs top out well below this.
pub const MAX_WATCHDOG_S: i64 = 3600;
/// Most lines the syslog delivery ring may hold (each slot takes ~1 KiB, locked in RAM).
pub const MAX_SYSLOG_QUEUE_LINES: i64 = 1024;
/// Longest rule name; matches `config::Name`.
pub const NAME_CAP: usize = 32;
/// Longest comm the kernel reports (TASK_COMM_LEN 16 minus the NUL).
pub const COMM_CAP: usize = 15;
/// Enum-like words (trigger, action, facility) fit here; longer values are reported as unknown.
pub const WORD_CAP: usize = MAX_STR;

/// Top-level keys, in the order docs/CONFIG.md lists them (and unknown-key messages show them).
pub const TOP: &[KeySpec] = &[
    int("interval_ms", 10, 3_600_000),
    text("syslog", MAX_STR),
    text("facility", WORD_CAP),
    text("syslog_format", WORD_CAP),
    int("syslog_queue_lines", 1, MAX_SYSLOG_QUEUE_LINES),
    text("status_file", MAX_STR),
    text("metrics_file", MAX_STR),
    flag("dry_run"),
    int("ghost_warn_kb", 1, MAX_KB),
    int("ghost_act_kb", 1, MAX_KB),
    flag("ghost_growth"),
    int("backlog_warn_bytes", 1, MAX_BYTES),
    int("backlog_act_bytes", 1, MAX_BYTES),
    int("min_available_kb", 0, MAX_KB),
    int("available_warn_kb", 0, MAX_KB),
    int("eta_window_s", 2, 3600),
    int("cooldown_s", 0, MAX_DELAY_S),
    int("max_actions_per_hour", 0, 64),
    int("oom_score_adj", -1000, 1000),
    flag("mlock"),
    text("breadcrumb_file", MAX_STR),
    int("drain_max_packets", 1, 10_000_000),
    int("verify_s", 1, 3600),
    KeySpec {
        name: "protect",
        kind: Kind::StrList {
            cap: MAX_STR,
            max_items: MAX_PROTECT,
        },
    },
    text("watchdog_device", MAX_STR),
    int("watchdog_timeout_s", 1, MAX_WATCHDOG_S),
    KeySpec {
        name: "rules",
        kind: Kind::Rules {
            max_items: MAX_RULES,
        },
    },
];

/// Keys of one rule object.
pub const RULE: &[KeySpec] = &[
    text("name", NAME_CAP),
    text("trigger", WORD_CAP),
    text("comm", COMM_CAP),
    text("exe", MAX_STR),
    int("uid", 0, u32::MAX as i64 - 1),
    text("user", NAME_CAP),
    text("action", WORD_CAP),
    KeySpec {
        name: "argv",
        kind: Kind::StrList {
            cap: MAX_STR,
            max_items: MAX_ARGV,
        },
    },
    text("sysctl", MAX_STR),
    text("value", MAX_STR),
    int("rcvbuf", 4096, 1 << 30),
    KeySpec {
        name: "signal",
        kind: Kind::Signal,
    },
    int("timeout_s", 1, 3600),
    int("escalate_after_s", 0, MAX_DELAY_S),
    int("eta_s", 1, MAX_DELAY_S),
];

/// Index of `name` in `table`, if it is a key there.
pub fn index_of(table: &[KeySpec], name: &[u8]) -> Option<usize> {
    table.iter().position(|k| k.name.as_bytes() == name)
}

/// The spec of key `name` (a name from the table itself; unknown names get a harmless
/// unbounded Int so a typo in our own code cannot panic).
pub fn spec(table: &[KeySpec], name: &str) -> KeySpec {
    match index_of(table, name.as_bytes()) {
        Some(i) => table
            .get(i)
            .copied()
            .unwrap_or(int("?", i64::MIN, i64::MAX)),
        None => int("?", i64::MIN, i64::MAX),
    }
}

/// The facility names the `syslog` crate understands (without its "log_" aliases).
pub const FACILITIES: &[&str] = &[
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
    "ftp", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
];

/// Signal names accepted (with or without "SIG"), with their numbers on this target.
pub const SIGNALS: &[(&str, i32)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ABRT", libc::SIGABRT),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("WINCH", libc::SIGWINCH),
    ("PWR", libc::SIGPWR),
];
/// Largest signal number accepted (SIGRTMAX on Linux).
pub const MAX_SIGNAL: i64 = 64;
