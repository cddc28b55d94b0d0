//! The agent's configuration: one JSON file parsed into bounded heapless structures (no heap),
//! validated with errors that say `FILE:LINE:COL: what and what is allowed`.
//!
//! The types below are shared with policy, act and agent: add fields, don't rename.
//!
//! Parsing runs in three passes, none of which allocates:
//! 1. `scan` checks JSON syntax and the schema (keys, types, lengths, counts, duplicates) and
//!    records where every key, value and string-array item sits;
//! 2. the private `Raw*` structs (every field optional) are read from the text at those
//!    positions: whole numbers, booleans, strings unescaped by `scan::unescape`, string arrays
//!    item by item (it was serde-json-core's derived `Deserialize` until issue 16: the same
//!    results, ~10 KiB less code, ~17 KB less stack; a test in config/validate.rs compares the
//!    two);
//! 3. `validate` applies defaults and checks meaning (ranges, enums, cross-field rules), pointing
//!    at the offending key or value through the positions from pass 1.
//!
//! This file holds the types, their defaults and `parse`/`load`; passes 2 and 3 are in
//! config/validate.rs.
//!
//! docs/CONFIG.md is the reference for every key; `schema` holds the same table as data.

// Errors carry their message inline (no heap, by design), so they are large; boxing them
// would allocate, which this module must not do.
#![allow(clippy::result_large_err)]

pub mod argv;
mod scan;
pub(crate) mod schema;
mod validate;

use core::fmt;

use heapless::{String, Vec};

use crate::sys::{cut_fmt, cut_str};
use scan::Layout;

pub const MAX_RULES: usize = 16;
pub const MAX_ARGV: usize = 8;
/// Longest `protect` list.
pub const MAX_PROTECT: usize = 8;
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

impl SyslogTarget {
    /// `defaults::SYSLOG` as a target: the local socket it names.
    pub fn default_target() -> SyslogTarget {
        let path = defaults::SYSLOG
            .strip_prefix("unix:")
            .unwrap_or(defaults::SYSLOG);
        SyslogTarget::Unix(cut_str(path))
    }
}

/// How syslog lines are written (`syslog_format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SyslogFormat {
    /// BSD syslog: `<PRI>Mmm dd hh:mm:ss [HOST ]ghostwatch[PID]: MSG`.
    #[default]
    Rfc3164,
    /// `<PRI>1 TIMESTAMP HOST ghostwatch PID MSGID [SD] MSG`, the pairs also as structured data.
    Rfc5424,
}

impl SyslogFormat {
    /// Every format, in the order config messages and docs list them.
    pub const ALL: [SyslogFormat; 2] = [SyslogFormat::Rfc3164, SyslogFormat::Rfc5424];

    /// Contract name: "rfc3164", "rfc5424".
    pub const fn name(self) -> &'static str {
        match self {
            SyslogFormat::Rfc3164 => "rfc3164",
            SyslogFormat::Rfc5424 => "rfc5424",
        }
    }

    /// The format for a contract name; `None` for anything else.
    pub fn from_name(name: &str) -> Option<SyslogFormat> {
        SyslogFormat::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// Which measurement a rule reacts to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Trigger {
    Ghost,
    Backlog,
    Available,
    /// The estimated time until MemAvailable reaches its floor (`decide::eta`).
    OomEta,
}

impl Trigger {
    /// Every trigger, in the order of per-trigger arrays (`index`), config messages and output.
    pub const ALL: [Trigger; 4] = [
        Trigger::Ghost,
        Trigger::Backlog,
        Trigger::Available,
        Trigger::OomEta,
    ];

    /// Contract name: "ghost", "backlog", "available", "oom_eta".
    pub const fn name(self) -> &'static str {
        match self {
            Trigger::Ghost => "ghost",
            Trigger::Backlog => "backlog",
            Trigger::Available => "available",
            Trigger::OomEta => "oom_eta",
        }
    }

    /// The trigger for a contract name; `None` for anything else.
    pub fn from_name(name: &str) -> Option<Trigger> {
        Trigger::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Position in `ALL`: the slot of this trigger in per-trigger arrays.
    pub const fn index(self) -> usize {
        self as usize
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
    /// Every action, in the order config messages and docs list them.
    pub const ALL: [ActionKind; 8] = [
        ActionKind::Log,
        ActionKind::Exec,
        ActionKind::Restart,
        ActionKind::Sysctl,
        ActionKind::Clamp,
        ActionKind::Drain,
        ActionKind::Kill,
        ActionKind::Reboot,
    ];

    /// Contract name: "log", "exec", "restart", ...
    pub const fn name(self) -> &'static str {
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

    /// The action for a contract name; `None` for anything else.
    pub fn from_name(name: &str) -> Option<ActionKind> {
        ActionKind::ALL.into_iter().find(|a| a.name() == name)
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
    /// An absolute path matches the owner whose /proc/PID/exe is that very file (device and
    /// inode); a bare name matches the basename of the exe's path text (a name, not an identity).
    pub exe: Option<Str>,
    /// Matches owners running as this uid (`uid`, or `user` resolved at load). Without it and
    /// without an absolute `exe`, a rule matches only owners running as uid 0: a name alone
    /// is something any user can take.
    pub uid: Option<u32>,
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
    /// oom_eta: act while the estimated seconds until MemAvailable reaches its floor are
    /// below this (required by, and only accepted with, `trigger: "oom_eta"`).
    pub eta_s: Option<u32>,
}

/// The whole configuration, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub interval_ms: u32,
    pub syslog: SyslogTarget,
    /// Syslog facility name ("daemon", "user", "local0".."local7", ...).
    pub facility: Name,
    /// Line format on the syslog target.
    pub syslog_format: SyslogFormat,
    /// Lines the delivery ring holds while syslog does not accept them.
    pub syslog_queue_lines: u32,
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
    /// oom_eta: seconds of MemAvailable history the slope is fitted over.
    pub eta_window_s: u32,
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
    /// How long after an action on a socket or its owner the agent waits for memory to come
    /// back before it audits the action ineffective (`decide::verify`).
    pub verify_s: u32,
    /// Processes kept out of the OOM killer's reach (oom_score_adj -1000): comm names (root's
    /// processes only) or absolute exe paths. The agent itself is covered by `oom_score_adj`.
    pub protect: Vec<Str, MAX_PROTECT>,
    /// A watchdog device the agent owns and pets each healthy poll (None: not the agent's job).
    pub watchdog_device: Option<Str>,
    /// WDIOC_SETTIMEOUT for `watchdog_device` (None: keep the driver's timeout).
    pub watchdog_timeout_s: Option<u32>,
    pub rules: Vec<Rule, MAX_RULES>,
}

/// Capacity of an error message (long enough for the list of every top-level key).
pub const MSG_CAP: usize = 512;

/// A config that failed to parse or validate: position (1-based) and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub line: u32,
    pub col: u32,
    pub msg: String<MSG_CAP>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.col, self.msg)
    }
}

/// The config used when no file is given and /etc/ghostwatch.json does not exist: every
/// default, and one `log` rule per socket-related trigger, so the agent observes and reports
/// but never touches the box. `Config::embedded_default()` parses exactly this text.
pub const EMBEDDED_DEFAULT_JSON: &str = r#"{
  "rules": [
    { "name": "ghost-log", "trigger": "ghost", "action": "log" },
    { "name": "backlog-log", "trigger": "backlog", "action": "log" }
  ]
}
"#;

/// Defaults of the top-level keys (docs/CONFIG.md lists the same values).
pub mod defaults {
    pub const INTERVAL_MS: u32 = 1000;
    pub const SYSLOG: &str = "unix:/dev/log";
    pub const FACILITY: &str = "daemon";
    /// Audit lines kept for syslog while it does not accept them (`syslog_queue_lines`).
    pub const SYSLOG_QUEUE_LINES: u32 = 64;
    pub const GHOST_WARN_KB: u64 = 65_536;
    pub const GHOST_ACT_KB: u64 = 131_072;
    pub const BACKLOG_WARN_BYTES: u64 = 4 << 20;
    pub const BACKLOG_ACT_BYTES: u64 = 16 << 20;
    pub const COOLDOWN_S: u32 = 60;
    pub const ETA_WINDOW_S: u32 = 30;
    pub const MAX_ACTIONS_PER_HOUR: u32 = 6;
    pub const OOM_SCORE_ADJ: i32 = -1000;
    pub const BREADCRUMB_FILE: &str = "/var/lib/ghostwatch/reboot-reason";
    pub const DRAIN_MAX_PACKETS: u32 = 100_000;
    pub const VERIFY_S: u32 = 3;
    /// drain: longest time one drain action runs (ms).
    pub const DRAIN_MAX_MS: u64 = 2000;
    /// clamp: SO_RCVBUF when a rule gives none (validation requires `rcvbuf`, so this is a
    /// guard, not a documented default).
    pub const CLAMP_RCVBUF: u32 = 262_144;
    /// Rule defaults.
    pub const TIMEOUT_S: u32 = 30;
    pub const SIGNAL: i32 = libc::SIGTERM;
}

impl Default for Config {
    /// Every top-level default and no rules (the agent then only watches and warns).
    fn default() -> Self {
        Config {
            interval_ms: defaults::INTERVAL_MS,
            syslog: SyslogTarget::default_target(),
            facility: cut_str(defaults::FACILITY),
            syslog_format: SyslogFormat::Rfc3164,
            syslog_queue_lines: defaults::SYSLOG_QUEUE_LINES,
            status_file: None,
            metrics_file: None,
            dry_run: false,
            ghost_warn_kb: defaults::GHOST_WARN_KB,
            ghost_act_kb: defaults::GHOST_ACT_KB,
            ghost_growth: false,
            backlog_warn_bytes: defaults::BACKLOG_WARN_BYTES,
            backlog_act_bytes: defaults::BACKLOG_ACT_BYTES,
            min_available_kb: 0,
            available_warn_kb: 0,
            eta_window_s: defaults::ETA_WINDOW_S,
            cooldown_s: defaults::COOLDOWN_S,
            max_actions_per_hour: defaults::MAX_ACTIONS_PER_HOUR,
            oom_score_adj: defaults::OOM_SCORE_ADJ,
            mlock: true,
            breadcrumb_file: cut_str(defaults::BREADCRUMB_FILE),
            drain_max_packets: defaults::DRAIN_MAX_PACKETS,
            verify_s: defaults::VERIFY_S,
            protect: Vec::new(),
            watchdog_device: None,
            watchdog_timeout_s: None,
            rules: Vec::new(),
        }
    }
}

impl Config {
    /// The config used without -c and without /etc/ghostwatch.json: observe and log only.
    /// Returns `EMBEDDED_DEFAULT_JSON` parsed (a test proves it parses; should it ever not,
    /// this falls back to `Config::default()`, which has no rules and acts on nothing).
    pub fn embedded_default() -> Config {
        let mut cfg = Config::default();
        cfg.set_embedded_default();
        cfg
    }

    /// `embedded_default`, in place (no ~28 KB temporary on the caller's stack).
    pub fn set_embedded_default(&mut self) {
        if parse_into(EMBEDDED_DEFAULT_JSON.as_bytes(), self).is_err() {
            self.reset();
        }
    }

    /// Sets every field to its default in place. Field by field on purpose: assigning a
    /// whole `Config::default()` would put a 26 KB temporary on the stack.
    fn reset(&mut self) {
        self.interval_ms = defaults::INTERVAL_MS;
        self.syslog = SyslogTarget::default_target();
        self.facility = cut_str(defaults::FACILITY);
        self.syslog_format = SyslogFormat::Rfc3164;
        self.syslog_queue_lines = defaults::SYSLOG_QUEUE_LINES;
        self.status_file = None;
        self.metrics_file = None;
        self.dry_run = false;
        self.ghost_warn_kb = defaults::GHOST_WARN_KB;
        self.ghost_act_kb = defaults::GHOST_ACT_KB;
        self.ghost_growth = false;
        self.backlog_warn_bytes = defaults::BACKLOG_WARN_BYTES;
        self.backlog_act_bytes = defaults::BACKLOG_ACT_BYTES;
        self.min_available_kb = 0;
        self.available_warn_kb = 0;
        self.eta_window_s = defaults::ETA_WINDOW_S;
        self.cooldown_s = defaults::COOLDOWN_S;
        self.max_actions_per_hour = defaults::MAX_ACTIONS_PER_HOUR;
        self.oom_score_adj = defaults::OOM_SCORE_ADJ;
        self.mlock = true;
        self.breadcrumb_file = cut_str(defaults::BREADCRUMB_FILE);
        self.drain_max_packets = defaults::DRAIN_MAX_PACKETS;
        self.verify_s = defaults::VERIFY_S;
        self.protect.clear();
        self.watchdog_device = None;
        self.watchdog_timeout_s = None;
        self.rules.clear();
    }
}

/// Parses and validates config text (UTF-8 JSON; empty text or `{}` means all defaults).
/// Returns the validated `Config`, or the first problem in the text with its 1-based
/// LINE:COL and a message naming the key and what is allowed. Never allocates, never panics.
pub fn parse(text: &[u8]) -> Result<Config, ConfigError> {
    let mut cfg = Config::default();
    parse_into(text, &mut cfg)?;
    Ok(cfg)
}

/// `parse`, filling `cfg` in place instead of returning a 26 KB value (`load_into` and
/// `Config::embedded_default` use it to keep their stack small). On Err, `cfg` holds a mix of defaults and parsed values: don't use it
/// (parse into a spare `Config` when the old one must survive a bad reload).
pub fn parse_into(text: &[u8], cfg: &mut Config) -> Result<(), ConfigError> {
    let mut lay = Layout::new();
    scan::scan_into(text, &mut lay)?;
    validate::validate(text, &lay, cfg)
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
/// Returns the validated config; a file that cannot be opened or read, or is larger than
/// MAX_FILE, is a LoadError at 0:0 naming the OS reason or the limit; an invalid one carries
/// the position from `parse`. Never allocates.
pub fn load(path: &str) -> Result<Config, LoadError> {
    let mut cfg = Config::default();
    load_into(path, &mut cfg)?;
    Ok(cfg)
}

/// `load`, filling `cfg` in place (see `parse_into`; on Err `cfg` must not be used).
pub fn load_into(path: &str, cfg: &mut Config) -> Result<(), LoadError> {
    let fail = |err: ConfigError| LoadError {
        path: cut_str(path),
        err,
    };
    let file_error = |args: fmt::Arguments| {
        fail(ConfigError {
            line: 0,
            col: 0,
            msg: cut_fmt(args),
        })
    };
    let os = |e: crate::sys::Errno| {
        file_error(format_args!(
            "cannot read the config: {} (errno {e})",
            crate::sys::strerror(e)
        ))
    };
    // Not a regular root-owned file that only root can change: refused (see `trust`).
    let fd = crate::sys::trust::open_trusted(path.as_bytes(), MAX_FILE as u64)
        .map_err(|e| file_error(format_args!("{e}")))?;
    // One byte more than allowed, to tell "exactly MAX_FILE" from "too big".
    let mut buf = [0u8; MAX_FILE + 1];
    let n = fd.read_full(&mut buf).map_err(os)?;
    if n > MAX_FILE {
        return Err(file_error(format_args!(
            "the config is larger than {MAX_FILE} bytes (MAX_FILE); remove unused rules"
        )));
    }
    parse_into(buf.get(..n).unwrap_or(&[]), cfg).map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Config {
        match parse(text.as_bytes()) {
            Ok(c) => c,
            Err(e) => panic!("{text}\n-> {e}"),
        }
    }

    fn bad(text: &str) -> std::string::String {
        match parse(text.as_bytes()) {
            Ok(_) => panic!("accepted: {text}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn enum_tables_round_trip() {
        for (i, t) in Trigger::ALL.into_iter().enumerate() {
            assert_eq!(t.index(), i);
            assert_eq!(Trigger::from_name(t.name()), Some(t));
        }
        for a in ActionKind::ALL {
            assert_eq!(ActionKind::from_name(a.name()), Some(a));
        }
        assert_eq!(Trigger::from_name("Ghost"), None);
        assert_eq!(ActionKind::from_name(""), None);
    }

    #[test]
    fn embedded_default_parses_and_only_logs() {
        let cfg = parse(EMBEDDED_DEFAULT_JSON.as_bytes()).unwrap();
        assert_eq!(cfg, Config::embedded_default());
        assert_eq!(cfg.rules.len(), 2);
        assert!(cfg.rules.iter().all(|r| r.action == ActionKind::Log));
        assert_eq!(cfg.rules[0].trigger, Trigger::Ghost);
        assert_eq!(cfg.rules[1].trigger, Trigger::Backlog);
        let mut no_rules = cfg.clone();
        no_rules.rules.clear();
        assert_eq!(no_rules, Config::default());
    }

    #[test]
    fn empty_means_defaults() {
        assert_eq!(ok(""), Config::default());
        assert_eq!(ok("{}"), Config::default());
        assert_eq!(ok("\u{feff}{}\n"), Config::default());
        let d = Config::default();
        assert_eq!(d.interval_ms, 1000);
        assert_eq!(d.syslog, SyslogTarget::Unix(cut_str("/dev/log")));
        assert_eq!(d.facility, "daemon");
        assert_eq!((d.ghost_warn_kb, d.ghost_act_kb), (65536, 131072));
        assert_eq!(
            (d.backlog_warn_bytes, d.backlog_act_bytes),
            (4194304, 16777216)
        );
        assert_eq!((d.min_available_kb, d.available_warn_kb), (0, 0));
        assert_eq!((d.cooldown_s, d.max_actions_per_hour), (60, 6));
        assert_eq!((d.oom_score_adj, d.mlock), (-1000, true));
        assert_eq!(d.breadcrumb_file, "/var/lib/ghostwatch/reboot-reason");
        assert_eq!(d.drain_max_packets, 100000);
    }

    #[test]
    fn null_means_default() {
        assert_eq!(
            ok(r#"{"interval_ms": null, "syslog": null, "rules": null}"#),
            Config::default()
        );
    }

    #[test]
    fn every_key_is_read() {
        let cfg = ok(r#"{
            "interval_ms": 250, "syslog": "udp:10.0.0.1:514", "facility": "local3",
            "status_file": "/run/gw.status", "metrics_file": "/run/gw.prom", "dry_run": true,
            "ghost_warn_kb": 1000, "ghost_act_kb": 2000, "ghost_growth": true,
            "backlog_warn_bytes": 10, "backlog_act_bytes": 20, "min_available_kb": 300,
            "available_warn_kb": 400, "cooldown_s": 5, "max_actions_per_hour": 0,
            "oom_score_adj": 0, "mlock": false, "breadcrumb_file": "/data/why",
            "drain_max_packets": 7,
            "rules": [{"name": "r", "trigger": "available", "comm": "zebra",
                       "exe": "/usr/sbin/zebra", "action": "exec", "argv": ["/bin/x", "{pid}"],
                       "signal": "SIGKILL", "timeout_s": 9, "escalate_after_s": 12}]
        }"#);
        assert_eq!(cfg.interval_ms, 250);
        assert_eq!(cfg.syslog, SyslogTarget::Udp(cut_str("10.0.0.1:514")));
        assert_eq!(cfg.facility, "local3");
        assert_eq!(cfg.status_file.as_deref(), Some("/run/gw.status"));
        assert_eq!(cfg.metrics_file.as_deref(), Some("/run/gw.prom"));
        assert!(cfg.dry_run && cfg.ghost_growth && !cfg.mlock);
        assert_eq!((cfg.ghost_warn_kb, cfg.ghost_act_kb), (1000, 2000));
        assert_eq!((cfg.backlog_warn_bytes, cfg.backlog_act_bytes), (10, 20));
        assert_eq!((cfg.min_available_kb, cfg.available_warn_kb), (300, 400));
        assert_eq!((cfg.cooldown_s, cfg.max_actions_per_hour), (5, 0));
        assert_eq!((cfg.oom_score_adj, cfg.drain_max_packets), (0, 7));
        assert_eq!(cfg.breadcrumb_file, "/data/why");
        let r = &cfg.rules[0];
        assert_eq!(r.name, "r");
        assert_eq!(r.trigger, Trigger::Available);
        assert_eq!(r.comm.as_deref(), Some("zebra"));
        assert_eq!(r.exe.as_deref(), Some("/usr/sbin/zebra"));
        assert_eq!(r.action, ActionKind::Exec);
        assert_eq!(r.argv.len(), 2);
        assert_eq!(r.argv[1], "{pid}");
        assert_eq!(r.signal, libc::SIGKILL);
        assert_eq!((r.timeout_s, r.escalate_after_s), (9, Some(12)));
        assert_eq!(
            (r.sysctl.as_ref(), r.value.as_ref(), r.rcvbuf),
            (None, None, None)
        );
    }

    #[test]
    fn rule_defaults_and_action_fields() {
        let cfg = ok(r#"{"rules": [
            {"trigger": "ghost", "action": "log"},
            {"trigger": "backlog", "action": "clamp", "comm": "zebra", "rcvbuf": 65536},
            {"trigger": "backlog", "action": "sysctl", "sysctl": "net.core.rmem_max", "value": "262144"},
            {"trigger": "backlog", "action": "kill", "exe": "zebra", "signal": 9}
        ]}"#);
        let names: std::vec::Vec<&str> = cfg.rules.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["rule1", "rule2", "rule3", "rule4"]);
        assert_eq!(cfg.rules[0].signal, libc::SIGTERM);
        assert_eq!(cfg.rules[0].timeout_s, 30);
        assert_eq!(cfg.rules[0].escalate_after_s, None);
        assert_eq!(cfg.rules[1].rcvbuf, Some(65536));
        assert_eq!(cfg.rules[2].sysctl.as_deref(), Some("net.core.rmem_max"));
        assert_eq!(cfg.rules[2].value.as_deref(), Some("262144"));
        assert_eq!(cfg.rules[3].signal, 9);
    }

    #[test]
    fn oom_eta_needs_eta_s_and_a_window_of_four_polls() {
        let c = ok(r#"{"rules": [{"trigger": "oom_eta", "eta_s": 120, "action": "log"}]}"#);
        assert_eq!(c.rules[0].trigger, Trigger::OomEta);
        assert_eq!(c.rules[0].eta_s, Some(120));
        assert_eq!(c.eta_window_s, defaults::ETA_WINDOW_S);
        let c = ok(r#"{"eta_window_s": 600, "min_available_kb": 9000}"#);
        assert_eq!(c.eta_window_s, 600);
        assert!(
            bad(r#"{"rules": [{"trigger": "oom_eta", "action": "log"}]}"#)
                .starts_with(r#"1:24: rules[0] has trigger "oom_eta" but no "eta_s""#)
        );
        assert_eq!(
            bad(r#"{"rules": [{"trigger": "ghost", "eta_s": 5, "action": "log"}]}"#),
            r#"1:33: "eta_s" in rules[0] is only used by trigger "oom_eta" (this rule's trigger is "ghost")"#
        );
        for v in ["0", "86401"] {
            let e = bad(&format!(
                r#"{{"rules": [{{"trigger": "oom_eta", "eta_s": {v}, "action": "log"}}]}}"#
            ));
            assert!(e.contains("must be between 1 and 86400"), "{e}");
        }
        assert!(bad(r#"{"eta_window_s": 1}"#).contains("between 2 and 3600"));
        assert_eq!(
            bad(
                r#"{"interval_ms": 1000, "eta_window_s": 3, "rules": [{"trigger": "oom_eta", "eta_s": 9, "action": "log"}]}"#
            ),
            r#"1:64: rules[0] has trigger "oom_eta" but "eta_window_s" (3) holds fewer than 4 polls of "interval_ms" (1000); make it at least 4"#
        );
    }

    #[test]
    fn escapes_are_unescaped() {
        let cfg = ok(r#"{"status_file": "/run/g\u00e9\/s", "rules": [
            {"trigger": "ghost", "action": "exec", "argv": ["/bin/echo", "a\tb\"c"], "signal": "\u0054ERM"}]}"#);
        assert_eq!(cfg.status_file.as_deref(), Some("/run/gé/s"));
        assert_eq!(cfg.rules[0].argv[1], "a\tb\"c");
        assert_eq!(cfg.rules[0].signal, libc::SIGTERM);
    }

    #[test]
    fn one_sided_thresholds_follow_each_other() {
        let c = ok(r#"{"ghost_act_kb": 32768}"#);
        assert_eq!((c.ghost_warn_kb, c.ghost_act_kb), (16384, 32768));
        let c = ok(r#"{"ghost_warn_kb": 200000}"#);
        assert_eq!((c.ghost_warn_kb, c.ghost_act_kb), (200000, 400000));
        let c = ok(r#"{"ghost_warn_kb": 100}"#);
        assert_eq!((c.ghost_warn_kb, c.ghost_act_kb), (100, 131072));
        let c = ok(r#"{"backlog_act_bytes": 1}"#);
        assert_eq!((c.backlog_warn_bytes, c.backlog_act_bytes), (1, 1));
        let c = ok(r#"{"min_available_kb": 5000}"#);
        assert_eq!(c.available_warn_kb, 10000);
        assert_eq!(
            bad(r#"{"ghost_warn_kb": 9, "ghost_act_kb": 8}"#),
            r#"1:19: "ghost_warn_kb" (9) must not be above "ghost_act_kb" (8)"#
        );
        assert_eq!(
            bad(r#"{"min_available_kb": 9, "available_warn_kb": 8}"#),
            r#"1:46: "available_warn_kb" (8) must not be below "min_available_kb" (9)"#
        );
    }

    #[test]
    fn syslog_format_and_queue() {
        let d = ok("{}");
        assert_eq!(
            (d.syslog_format, d.syslog_queue_lines),
            (SyslogFormat::Rfc3164, 64)
        );
        let c = ok(r#"{"syslog_format": "rfc5424", "syslog_queue_lines": 1024}"#);
        assert_eq!(
            (c.syslog_format, c.syslog_queue_lines),
            (SyslogFormat::Rfc5424, 1024)
        );
        let e = bad(r#"{"syslog_format": "RFC5424"}"#);
        assert_eq!(
            e,
            "1:19: unknown syslog_format \"RFC5424\" (expected one of: rfc3164, rfc5424)"
        );
        let e = bad(r#"{"syslog_queue_lines": 0}"#);
        assert!(e.contains("between 1 and 1024, got 0"), "{e}");
        for f in SyslogFormat::ALL {
            assert_eq!(SyslogFormat::from_name(f.name()), Some(f));
        }
    }

    #[test]
    fn syslog_targets() {
        let t = |s: &str| ok(&format!(r#"{{"syslog": "{s}"}}"#)).syslog;
        assert_eq!(t("stderr"), SyslogTarget::Stderr);
        assert_eq!(
            t("unix:/var/run/log"),
            SyslogTarget::Unix(cut_str("/var/run/log"))
        );
        assert_eq!(
            t("tcp:logs.example:6514"),
            SyslogTarget::Tcp(cut_str("logs.example:6514"))
        );
        assert_eq!(t("udp:[::1]:514"), SyslogTarget::Udp(cut_str("[::1]:514")));
        for (s, why) in [
            ("udp:host:0", "port must be a number from 1 to 65535"),
            ("udp:host:65536", "port must be a number from 1 to 65535"),
            ("udp:host:", "port must be a number from 1 to 65535"),
            ("udp:host", "needs HOST:PORT"),
            ("tcp::514", "needs a host"),
            ("udp:::1:514", "IPv6 hosts need brackets"),
            ("unix:dev/log", "must be absolute"),
            ("syslog", "must be \\\"unix:/PATH\\\""),
            ("udp:a b:514", "not a host name"),
        ] {
            let e = bad(&format!(r#"{{"syslog": "{s}"}}"#));
            assert!(e.starts_with("1:12: \"syslog\""), "{s}: {e}");
            assert!(e.contains(why.replace("\\\"", "\"").as_str()), "{s}: {e}");
        }
    }

    #[test]
    fn signals() {
        let sig = |s: &str| {
            parse(format!(r#"{{"rules": [{{"trigger": "ghost", "action": "kill", "comm": "x", "signal": {s}}}]}}"#).as_bytes())
                .map(|c| c.rules[0].signal)
                .map_err(|e| e.msg.as_str().to_owned())
        };
        assert_eq!(sig("\"TERM\""), Ok(libc::SIGTERM));
        assert_eq!(sig("\"SIGTERM\""), Ok(libc::SIGTERM));
        assert_eq!(sig("\"sigkill\""), Ok(libc::SIGKILL));
        assert_eq!(sig("\"HUP\""), Ok(libc::SIGHUP));
        assert_eq!(sig("1"), Ok(1));
        assert_eq!(sig("64"), Ok(64));
        assert_eq!(
            sig("65").unwrap_err(),
            "\"signal\" in rules[0] must be between 1 and 64, got 65"
        );
        assert!(sig("0").is_err());
        assert!(sig("-9").is_err());
        assert!(sig("1.5").is_err());
        assert!(sig("true").is_err());
        assert!(
            sig("\"TERMINATE\"")
                .unwrap_err()
                .starts_with("unknown signal \"TERMINATE\" in rules[0] (expected a number from 1 to 64 or one of: HUP, INT,")
        );
    }

    #[test]
    fn config_error_display_is_line_col_message() {
        assert_eq!(
            bad("{\n  \"x\": 1}"),
            format!(
                "2:3: unknown key \"x\" (expected one of: {})",
                schema::TOP
                    .iter()
                    .map(|k| k.name)
                    .collect::<std::vec::Vec<_>>()
                    .join(", ")
            )
        );
    }

    #[test]
    fn docs_list_every_key_with_its_range() {
        let doc = include_str!("../docs/CONFIG.md");
        for k in schema::TOP.iter().chain(schema::RULE) {
            let head = format!("| `{}` |", k.name);
            let row = doc.lines().find(|l| l.starts_with(&head));
            let Some(row) = row else {
                panic!("docs/CONFIG.md has no table row for `{}`", k.name)
            };
            if let schema::Kind::Int { min, max } = k.kind {
                assert!(
                    row.contains(&format!("{min} – {max}")),
                    "docs/CONFIG.md row for `{}` lacks its range {min} – {max}",
                    k.name
                );
            }
        }
        for w in schema::FACILITIES
            .iter()
            .chain(&ActionKind::ALL.map(ActionKind::name))
        {
            assert!(doc.contains(w), "{w}");
        }
    }

    #[test]
    fn load_reports_os_errors_and_size_limit() {
        let e = load("/nonexistent/ghostwatch.json").unwrap_err();
        assert_eq!(
            e.to_string(),
            "/nonexistent/ghostwatch.json:0:0: cannot read the config: No such file or directory (errno 2)"
        );
        let dir = std::env::temp_dir().join(format!("gw-config-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // A trusted place (see `trust`): 0755 whatever the umask.
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let big = dir.join("big.json");
        let mut text = std::string::String::from("{}");
        text.push_str(&" ".repeat(MAX_FILE - 2));
        std::fs::write(&big, &text).unwrap();
        assert!(
            load(big.to_str().unwrap()).is_ok(),
            "exactly MAX_FILE is fine"
        );
        text.push(' ');
        std::fs::write(&big, &text).unwrap();
        let e = load(big.to_str().unwrap()).unwrap_err();
        assert_eq!((e.err.line, e.err.col), (0, 0));
        assert!(e.err.msg.contains("larger than 16384 bytes"), "{e}");
        let e = load(dir.to_str().unwrap()).unwrap_err();
        assert!(e.err.msg.contains("a directory, not a regular file"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
