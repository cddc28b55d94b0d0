//! The agent's configuration: one JSON file parsed with serde-json-core into bounded heapless
//! structures (no heap), validated with errors that say `FILE:LINE:COL: what and what is allowed`.
//!
//! OWNER: config. The types below are shared with policy, act and agent: add fields, don't rename.
//!
//! Parsing runs in three passes, none of which allocates:
//! 1. `scan` checks JSON syntax and the schema (keys, types, lengths, counts, duplicates) and
//!    records where every key and value sits, because serde-json-core's errors carry no position;
//! 2. serde-json-core deserializes into private `Raw*` structs (every field optional);
//! 3. `validate` applies defaults and checks meaning (ranges, enums, cross-field rules), pointing
//!    at the offending key or value through the positions from pass 1.
//!
//! docs/CONFIG.md is the reference for every key; `schema` holds the same table as data.

// Errors carry their message inline (no heap, by design), so they are large; boxing them
// would allocate, which this module must not do.
#![allow(clippy::result_large_err)]

mod scan;
mod schema;

use core::fmt::{self, Write as _};

use heapless::{String, Vec};
use serde::Deserialize;

use scan::{KeyAt, Layout, Place, Shown, Slot};
use schema::KeySpec;

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

/// A message buffer that keeps what fits and drops the rest, so formatting never fails.
pub(crate) struct Msg(String<MSG_CAP>);

impl Msg {
    fn new() -> Self {
        Msg(String::new())
    }
}

impl fmt::Write for Msg {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            if self.0.push(c).is_err() {
                break;
            }
        }
        Ok(())
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
    pub const GHOST_WARN_KB: u64 = 65_536;
    pub const GHOST_ACT_KB: u64 = 131_072;
    pub const BACKLOG_WARN_BYTES: u64 = 4 << 20;
    pub const BACKLOG_ACT_BYTES: u64 = 16 << 20;
    pub const COOLDOWN_S: u32 = 60;
    pub const MAX_ACTIONS_PER_HOUR: u32 = 6;
    pub const OOM_SCORE_ADJ: i32 = -1000;
    pub const BREADCRUMB_FILE: &str = "/var/lib/ghostwatch/reboot-reason";
    pub const DRAIN_MAX_PACKETS: u32 = 100_000;
    /// Rule defaults.
    pub const TIMEOUT_S: u32 = 30;
    pub const SIGNAL: i32 = libc::SIGTERM;
}

/// Copies as much of `s` as fits into a bounded string (whole characters only).
fn bounded<const N: usize>(s: &str) -> String<N> {
    let mut out = String::new();
    for c in s.chars() {
        if out.push(c).is_err() {
            break;
        }
    }
    out
}

impl Default for Config {
    /// Every top-level default and no rules (the agent then only watches and warns).
    fn default() -> Self {
        Config {
            interval_ms: defaults::INTERVAL_MS,
            syslog: SyslogTarget::Unix(bounded("/dev/log")),
            facility: bounded(defaults::FACILITY),
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
            cooldown_s: defaults::COOLDOWN_S,
            max_actions_per_hour: defaults::MAX_ACTIONS_PER_HOUR,
            oom_score_adj: defaults::OOM_SCORE_ADJ,
            mlock: true,
            breadcrumb_file: bounded(defaults::BREADCRUMB_FILE),
            drain_max_packets: defaults::DRAIN_MAX_PACKETS,
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
        if parse_into(EMBEDDED_DEFAULT_JSON.as_bytes(), &mut cfg).is_err() {
            cfg.reset();
        }
        cfg
    }

    /// Sets every field to its default in place. Field by field on purpose: assigning a
    /// whole `Config::default()` would put a 26 KB temporary on the stack.
    fn reset(&mut self) {
        self.interval_ms = defaults::INTERVAL_MS;
        self.syslog = SyslogTarget::Unix(bounded("/dev/log"));
        self.facility = bounded(defaults::FACILITY);
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
        self.cooldown_s = defaults::COOLDOWN_S;
        self.max_actions_per_hour = defaults::MAX_ACTIONS_PER_HOUR;
        self.oom_score_adj = defaults::OOM_SCORE_ADJ;
        self.mlock = true;
        self.breadcrumb_file = bounded(defaults::BREADCRUMB_FILE);
        self.drain_max_packets = defaults::DRAIN_MAX_PACKETS;
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

/// `parse`, filling `cfg` in place instead of returning a 26 KB value (keeps the stack of a
/// reload small). On Err, `cfg` holds a mix of defaults and parsed values: don't use it
/// (parse into a spare `Config` when the old one must survive a bad reload).
pub fn parse_into(text: &[u8], cfg: &mut Config) -> Result<(), ConfigError> {
    let mut lay = Layout::new();
    scan::scan_into(text, &mut lay)?;
    let raw = if lay.empty {
        RawConfig::default()
    } else {
        deserialize(text, lay.body, text.len())?
    };
    Validator { text, lay: &lay }.config(&raw, cfg)
}

/// Runs serde-json-core on `text[start..end]`, a span the scan already accepted.
/// Fails only if serde-json-core refuses what the scanner accepted (a bug, reported as such).
fn deserialize<'t, T: Deserialize<'t>>(
    text: &'t [u8],
    start: usize,
    end: usize,
) -> Result<T, ConfigError> {
    let span = text.get(start..end).unwrap_or(&[]);
    // serde-json-core unescapes into this buffer; the scan proved every string fits.
    let mut unescaped = [0u8; MAX_STR];
    serde_json_core::from_slice_escaped::<T>(span, &mut unescaped)
        .map(|(v, _)| v)
        .map_err(|e| {
            scan::error_at(
                text,
                start,
                format_args!(
                    "serde-json-core rejected a config the checker accepted ({e}); please report this"
                ),
            )
        })
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
        path: bounded(path),
        err,
    };
    let file_error = |args: fmt::Arguments| {
        let mut msg = Msg::new();
        let _ = msg.write_fmt(args);
        fail(ConfigError {
            line: 0,
            col: 0,
            msg: msg.0,
        })
    };
    let os = |e: crate::sys::Errno| {
        file_error(format_args!(
            "cannot read the config: {} (errno {e})",
            crate::sys::strerror(e)
        ))
    };
    // Not a regular root-owned file that only root can change: refused (see `trust`).
    let fd = crate::trust::open_trusted(path.as_bytes(), MAX_FILE as u64)
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

// ---- pass 2: what serde-json-core fills in ------------------------------------------------

/// The top level as written. Every field is optional; numbers are i64 so that range errors
/// are ours (with a position), not serde's. The scan guarantees every value fits.
/// `rules` is absent on purpose: serde skips it, and each rule is deserialized on its own
/// from the span the scan recorded, so one `RawRule` (1.6 KB), not sixteen, is on the stack
/// at a time — serde moving a 26 KB array through its frames cost ~400 KB of stack.
#[derive(Debug, Default, Deserialize)]
struct RawConfig {
    interval_ms: Option<i64>,
    syslog: Option<Str>,
    facility: Option<Str>,
    status_file: Option<Str>,
    metrics_file: Option<Str>,
    dry_run: Option<bool>,
    ghost_warn_kb: Option<i64>,
    ghost_act_kb: Option<i64>,
    ghost_growth: Option<bool>,
    backlog_warn_bytes: Option<i64>,
    backlog_act_bytes: Option<i64>,
    min_available_kb: Option<i64>,
    available_warn_kb: Option<i64>,
    cooldown_s: Option<i64>,
    max_actions_per_hour: Option<i64>,
    oom_score_adj: Option<i64>,
    mlock: Option<bool>,
    breadcrumb_file: Option<Str>,
    drain_max_packets: Option<i64>,
}

/// One rule as written. `signal` is absent on purpose: it may be a string or a number, and
/// serde-json-core cannot deserialize "either" (no deserialize_any), so serde skips it and
/// the validator reads it from the position the scan recorded.
#[derive(Debug, Default, Deserialize)]
struct RawRule {
    name: Option<Str>,
    trigger: Option<Str>,
    comm: Option<Str>,
    exe: Option<Str>,
    action: Option<Str>,
    argv: Option<Vec<Str, MAX_ARGV>>,
    sysctl: Option<Str>,
    value: Option<Str>,
    rcvbuf: Option<i64>,
    timeout_s: Option<i64>,
    escalate_after_s: Option<i64>,
}

// ---- pass 3: defaults and meaning ---------------------------------------------------------

/// Lists allowed words in messages: `a, b, c`.
struct OneOf<'a>(&'a [&'a str]);

impl fmt::Display for OneOf<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, w) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(w)?;
        }
        Ok(())
    }
}

struct Validator<'a> {
    text: &'a [u8],
    lay: &'a Layout,
}

impl Validator<'_> {
    fn err(&self, at: usize, args: fmt::Arguments) -> ConfigError {
        scan::error_at(self.text, at, args)
    }

    /// Where a key's value sits, for errors: the value if present, else `fallback`.
    fn val_at(slot: Option<Slot>, fallback: usize) -> usize {
        slot.map_or(fallback, |s| s.val)
    }

    /// Checks `v` against the key's range; returns it, or `default` when absent.
    fn ranged(
        &self,
        v: Option<i64>,
        spec: KeySpec,
        place: Place,
        slot: Option<Slot>,
        default: i64,
    ) -> Result<i64, ConfigError> {
        let Some(v) = v else { return Ok(default) };
        if let schema::Kind::Int { min, max } = spec.kind {
            if v < min || v > max {
                return Err(self.err(
                    Self::val_at(slot, 0),
                    format_args!(
                        "{} must be between {min} and {max}, got {v}",
                        KeyAt(spec.name, place)
                    ),
                ));
            }
        }
        Ok(v)
    }

    /// A top-level number: range-checked, or `default` when absent.
    fn top_int(&self, v: Option<i64>, name: &str, default: i64) -> Result<i64, ConfigError> {
        self.ranged(
            v,
            schema::spec(schema::TOP, name),
            Place::Top,
            self.lay.top(name),
            default,
        )
    }

    /// A top-level path: must be absolute.
    fn path(&self, v: &Option<Str>, name: &str) -> Result<Option<Str>, ConfigError> {
        match v {
            Some(p) if !p.starts_with('/') => Err(self.err(
                Self::val_at(self.lay.top(name), 0),
                format_args!(
                    "{} must be an absolute path, got {}",
                    KeyAt(name, Place::Top),
                    Shown(p.as_bytes())
                ),
            )),
            other => Ok(other.clone()),
        }
    }

    /// Fills `cfg` from the raw top level and each rule's span.
    fn config(&self, raw: &RawConfig, cfg: &mut Config) -> Result<(), ConfigError> {
        cfg.reset();
        let u32_of = |v: i64| u32::try_from(v).unwrap_or(u32::MAX);
        let u64_of = |v: i64| u64::try_from(v).unwrap_or(0);

        cfg.interval_ms =
            u32_of(self.top_int(raw.interval_ms, "interval_ms", defaults::INTERVAL_MS.into())?);
        if let Some(s) = &raw.syslog {
            cfg.syslog = self.syslog(s)?;
        }
        if let Some(f) = &raw.facility {
            if !schema::FACILITIES.contains(&f.as_str()) {
                return Err(self.err(
                    Self::val_at(self.lay.top("facility"), 0),
                    format_args!(
                        "unknown facility {} (expected one of: {})",
                        Shown(f.as_bytes()),
                        OneOf(schema::FACILITIES)
                    ),
                ));
            }
            cfg.facility = bounded(f);
        }
        cfg.status_file = self.path(&raw.status_file, "status_file")?;
        cfg.metrics_file = self.path(&raw.metrics_file, "metrics_file")?;
        if let Some(p) = self.path(&raw.breadcrumb_file, "breadcrumb_file")? {
            cfg.breadcrumb_file = p;
        }
        cfg.dry_run = raw.dry_run.unwrap_or(false);
        cfg.ghost_growth = raw.ghost_growth.unwrap_or(false);
        cfg.mlock = raw.mlock.unwrap_or(true);

        (cfg.ghost_warn_kb, cfg.ghost_act_kb) = self.pair(
            raw.ghost_warn_kb,
            raw.ghost_act_kb,
            ("ghost_warn_kb", "ghost_act_kb"),
            (defaults::GHOST_WARN_KB, defaults::GHOST_ACT_KB),
            schema::MAX_KB,
        )?;
        (cfg.backlog_warn_bytes, cfg.backlog_act_bytes) = self.pair(
            raw.backlog_warn_bytes,
            raw.backlog_act_bytes,
            ("backlog_warn_bytes", "backlog_act_bytes"),
            (defaults::BACKLOG_WARN_BYTES, defaults::BACKLOG_ACT_BYTES),
            schema::MAX_BYTES,
        )?;

        cfg.min_available_kb = u64_of(self.top_int(raw.min_available_kb, "min_available_kb", 0)?);
        let min = cfg.min_available_kb;
        cfg.available_warn_kb = match raw.available_warn_kb {
            None => min.saturating_mul(2).min(u64_of(schema::MAX_KB)),
            Some(_) => {
                let warn = u64_of(self.top_int(raw.available_warn_kb, "available_warn_kb", 0)?);
                if warn < min {
                    return Err(self.err(
                        Self::val_at(self.lay.top("available_warn_kb"), 0),
                        format_args!(
                            "\"available_warn_kb\" ({warn}) must not be below \"min_available_kb\" ({min})"
                        ),
                    ));
                }
                warn
            }
        };
        cfg.cooldown_s =
            u32_of(self.top_int(raw.cooldown_s, "cooldown_s", defaults::COOLDOWN_S.into())?);
        cfg.max_actions_per_hour = u32_of(self.top_int(
            raw.max_actions_per_hour,
            "max_actions_per_hour",
            defaults::MAX_ACTIONS_PER_HOUR.into(),
        )?);
        cfg.oom_score_adj = i32::try_from(self.top_int(
            raw.oom_score_adj,
            "oom_score_adj",
            defaults::OOM_SCORE_ADJ.into(),
        )?)
        .unwrap_or(defaults::OOM_SCORE_ADJ);
        cfg.drain_max_packets = u32_of(self.top_int(
            raw.drain_max_packets,
            "drain_max_packets",
            defaults::DRAIN_MAX_PACKETS.into(),
        )?);

        for (r, slots) in self.lay.rules.iter().enumerate().take(self.lay.n_rules) {
            {
                let raw: RawRule = deserialize(self.text, slots.start, slots.end)?;
                let rule = self.rule(r, &raw, cfg)?;
                if let Some(first) = cfg.rules.iter().position(|x| x.name == rule.name) {
                    let at = self
                        .lay
                        .rule_key(r, "name")
                        .map_or_else(|| self.rule_start(r), |s| s.val);
                    return Err(self.err(
                        at,
                        format_args!(
                            "duplicate rule name {} in rules[{r}] (rules[{first}] has it too)",
                            Shown(rule.name.as_bytes())
                        ),
                    ));
                }
                // The scan caps rules at MAX_RULES, so this push cannot fail.
                let _ = cfg.rules.push(rule);
            }
        }
        Ok(())
    }

    /// A warn/act threshold pair. When only one is set, the other follows it (warn at most
    /// half of act, act at least twice warn) instead of clashing with its default.
    fn pair(
        &self,
        warn: Option<i64>,
        act: Option<i64>,
        names: (&str, &str),
        default: (u64, u64),
        max: i64,
    ) -> Result<(u64, u64), ConfigError> {
        let to_u64 = |v: i64| u64::try_from(v).unwrap_or(0);
        let w = self.top_int(warn, names.0, 0)?;
        let a = self.top_int(act, names.1, 0)?;
        Ok(match (warn, act) {
            (Some(_), Some(_)) => {
                if w > a {
                    return Err(self.err(
                        Self::val_at(self.lay.top(names.0), 0),
                        format_args!(
                            "\"{}\" ({w}) must not be above \"{}\" ({a})",
                            names.0, names.1
                        ),
                    ));
                }
                (to_u64(w), to_u64(a))
            }
            (Some(_), None) => {
                let a = default.1.max(to_u64(w).saturating_mul(2)).min(to_u64(max));
                (to_u64(w), a)
            }
            (None, Some(_)) => (default.0.min(to_u64(a) / 2).max(1), to_u64(a)),
            (None, None) => default,
        })
    }

    fn syslog(&self, s: &Str) -> Result<SyslogTarget, ConfigError> {
        let at = Self::val_at(self.lay.top("syslog"), 0);
        let shown = Shown(s.as_bytes());
        if s == "stderr" {
            return Ok(SyslogTarget::Stderr);
        }
        if let Some(path) = s.strip_prefix("unix:") {
            if !path.starts_with('/') {
                return Err(self.err(
                    at,
                    format_args!("\"syslog\" unix socket path must be absolute, got {shown}"),
                ));
            }
            return Ok(SyslogTarget::Unix(bounded(path)));
        }
        let (udp, hostport) = match (s.strip_prefix("udp:"), s.strip_prefix("tcp:")) {
            (Some(hp), _) => (true, hp),
            (_, Some(hp)) => (false, hp),
            _ => {
                return Err(self.err(
                    at,
                    format_args!(
                        "\"syslog\" must be \"unix:/PATH\", \"udp:HOST:PORT\", \"tcp:HOST:PORT\" or \"stderr\", got {shown}"
                    ),
                ));
            }
        };
        let Some((host, port)) = hostport.rsplit_once(':') else {
            return Err(self.err(
                at,
                format_args!("\"syslog\" needs HOST:PORT after the protocol, got {shown}"),
            ));
        };
        let port_ok = !port.is_empty()
            && port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u16>().is_ok_and(|p| p >= 1);
        if !port_ok {
            return Err(self.err(
                at,
                format_args!("\"syslog\" port must be a number from 1 to 65535, got {shown}"),
            ));
        }
        let bracketed = host.len() > 2 && host.starts_with('[') && host.ends_with(']');
        if host.is_empty() || host == "[]" {
            return Err(self.err(
                at,
                format_args!("\"syslog\" needs a host before the port, got {shown}"),
            ));
        }
        if host.contains(':') && !bracketed {
            return Err(self.err(
                at,
                format_args!(
                    "\"syslog\" IPv6 hosts need brackets, e.g. \"udp:[::1]:514\", got {shown}"
                ),
            ));
        }
        if host
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control() || b == b'/')
        {
            return Err(self.err(
                at,
                format_args!("\"syslog\" host is not a host name or address, got {shown}"),
            ));
        }
        let hp = bounded(hostport);
        Ok(if udp {
            SyslogTarget::Udp(hp)
        } else {
            SyslogTarget::Tcp(hp)
        })
    }

    fn rule_start(&self, r: usize) -> usize {
        self.lay.rules.get(r).map_or(0, |x| x.start)
    }

    /// Validates rule `r` against the already-validated top level `cfg`.
    fn rule(&self, r: usize, raw: &RawRule, cfg: &Config) -> Result<Rule, ConfigError> {
        let start = self.rule_start(r);
        let slot = |name: &str| self.lay.rule_key(r, name);
        let at = |name: &str| Self::val_at(slot(name), start);
        let key_at = |name: &str| slot(name).map_or(start, |s| s.key);
        let place = Place::Rule(r);
        let int = |v: Option<i64>, name: &str, default: i64| {
            self.ranged(
                v,
                schema::spec(schema::RULE, name),
                place,
                slot(name),
                default,
            )
        };
        let non_empty = |v: &Option<Str>, name: &str| -> Result<(), ConfigError> {
            match v {
                Some(s) if s.is_empty() => Err(self.err(
                    at(name),
                    format_args!("{} must not be empty", KeyAt(name, place)),
                )),
                _ => Ok(()),
            }
        };

        let name: Name = match &raw.name {
            Some(n) => {
                let ok = !n.is_empty()
                    && n.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
                if !ok {
                    return Err(self.err(
                        at("name"),
                        format_args!(
                            "rule name {} in rules[{r}] must be letters, digits, '_', '-' or '.' (it appears in syslog lines as rule=NAME)",
                            Shown(n.as_bytes())
                        ),
                    ));
                }
                bounded(n)
            }
            None => {
                let mut n = Msg::new();
                let _ = write!(n, "rule{}", r + 1);
                bounded(&n.0)
            }
        };

        let Some(trigger_text) = &raw.trigger else {
            return Err(self.err(
                start,
                format_args!(
                    "rules[{r}] needs \"trigger\" (one of: {})",
                    OneOf(schema::TRIGGERS)
                ),
            ));
        };
        let trigger = match trigger_text.as_str() {
            "ghost" => Trigger::Ghost,
            "backlog" => Trigger::Backlog,
            "available" => Trigger::Available,
            other => {
                return Err(self.err(
                    at("trigger"),
                    format_args!(
                        "unknown trigger {} in rules[{r}] (expected one of: {})",
                        Shown(other.as_bytes()),
                        OneOf(schema::TRIGGERS)
                    ),
                ));
            }
        };
        if trigger == Trigger::Available && cfg.min_available_kb == 0 {
            return Err(self.err(
                at("trigger"),
                format_args!(
                    "rules[{r}] has trigger \"available\" but \"min_available_kb\" is 0 (off), so it would never fire; set min_available_kb"
                ),
            ));
        }

        let Some(action_text) = &raw.action else {
            return Err(self.err(
                start,
                format_args!(
                    "rules[{r}] needs \"action\" (one of: {})",
                    OneOf(schema::ACTIONS)
                ),
            ));
        };
        let action = match action_text.as_str() {
            "log" => ActionKind::Log,
            "exec" => ActionKind::Exec,
            "restart" => ActionKind::Restart,
            "sysctl" => ActionKind::Sysctl,
            "clamp" => ActionKind::Clamp,
            "drain" => ActionKind::Drain,
            "kill" => ActionKind::Kill,
            "reboot" => ActionKind::Reboot,
            other => {
                return Err(self.err(
                    at("action"),
                    format_args!(
                        "unknown action {} in rules[{r}] (expected one of: {})",
                        Shown(other.as_bytes()),
                        OneOf(schema::ACTIONS)
                    ),
                ));
            }
        };
        let action_at = at("action");
        let act = action.name();

        non_empty(&raw.comm, "comm")?;
        non_empty(&raw.exe, "exe")?;
        if let Some(exe) = &raw.exe {
            if exe.contains('/') && !exe.starts_with('/') {
                return Err(self.err(
                    at("exe"),
                    format_args!(
                        "\"exe\" in rules[{r}] must be an absolute path or a bare program name, got {}",
                        Shown(exe.as_bytes())
                    ),
                ));
            }
        }
        if action.targets_owner() && raw.comm.is_none() && raw.exe.is_none() {
            return Err(self.err(
                action_at,
                format_args!(
                    "action \"{act}\" in rules[{r}] would act on whatever process owns the worst socket; name its comm or exe"
                ),
            ));
        }

        // Keys that only one action reads: reject them elsewhere so nobody believes
        // e.g. that "rcvbuf" limits a drain.
        let only_for = |name: &str, users: &[ActionKind], what: &str| -> Result<(), ConfigError> {
            if slot(name).is_some() && !users.contains(&action) {
                return Err(self.err(
                    key_at(name),
                    format_args!(
                        "{} is only used by action {what} (this rule's action is \"{act}\")",
                        KeyAt(name, place)
                    ),
                ));
            }
            Ok(())
        };
        only_for(
            "argv",
            &[ActionKind::Exec, ActionKind::Restart],
            "\"exec\" or \"restart\"",
        )?;
        only_for("sysctl", &[ActionKind::Sysctl], "\"sysctl\"")?;
        only_for("value", &[ActionKind::Sysctl], "\"sysctl\"")?;
        only_for("rcvbuf", &[ActionKind::Clamp], "\"clamp\"")?;

        let argv = raw.argv.clone().unwrap_or_default();
        if matches!(action, ActionKind::Exec | ActionKind::Restart) {
            match &raw.argv {
                None => {
                    return Err(self.err(
                        action_at,
                        format_args!(
                            "action \"{act}\" in rules[{r}] needs \"argv\" (the program and its arguments, e.g. [\"/etc/init.d/zebra\", \"restart\"])"
                        ),
                    ));
                }
                Some(v) if v.is_empty() => {
                    return Err(self.err(
                        at("argv"),
                        format_args!("\"argv\" in rules[{r}] must not be empty"),
                    ));
                }
                Some(v) if v.first().is_some_and(|p| p.is_empty()) => {
                    let item = self.lay.rules.get(r).map_or(start, |x| x.argv[0]);
                    return Err(self.err(
                        item,
                        format_args!("rules[{r}].argv[0] (the program) must not be empty"),
                    ));
                }
                Some(_) => {}
            }
        }

        if action == ActionKind::Sysctl {
            let Some(name) = &raw.sysctl else {
                return Err(self.err(
                    action_at,
                    format_args!(
                        "action \"sysctl\" in rules[{r}] needs \"sysctl\" (a name such as net.core.rmem_max)"
                    ),
                ));
            };
            let ok = !name.is_empty()
                && !name.starts_with('.')
                && !name.contains("..")
                && name
                    .bytes()
                    .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-'));
            if !ok {
                return Err(self.err(
                    at("sysctl"),
                    format_args!(
                        "\"sysctl\" in rules[{r}] must be a dotted name of a-z, 0-9, '_', '.', '-' (no '/' or '..'), got {}",
                        Shown(name.as_bytes())
                    ),
                ));
            }
            let Some(value) = &raw.value else {
                return Err(self.err(
                    action_at,
                    format_args!(
                        "action \"sysctl\" in rules[{r}] needs \"value\" (the text to write, e.g. \"4194304\")"
                    ),
                ));
            };
            if value.is_empty() || value.chars().any(|c| c.is_control() && c != '\t') {
                return Err(self.err(
                    at("value"),
                    format_args!(
                        "\"value\" in rules[{r}] must be non-empty text without line breaks or control characters"
                    ),
                ));
            }
        }

        let rcvbuf = int(raw.rcvbuf, "rcvbuf", 0)?;
        if action == ActionKind::Clamp && raw.rcvbuf.is_none() {
            return Err(self.err(
                action_at,
                format_args!(
                    "action \"clamp\" in rules[{r}] needs \"rcvbuf\" (bytes, 4096 to {})",
                    1u32 << 30
                ),
            ));
        }

        let signal = self.signal(r)?;
        let timeout_s = int(raw.timeout_s, "timeout_s", defaults::TIMEOUT_S.into())?;
        let escalate = int(raw.escalate_after_s, "escalate_after_s", 0)?;

        Ok(Rule {
            name,
            trigger,
            comm: raw.comm.as_deref().map(bounded),
            exe: raw.exe.clone(),
            action,
            argv,
            sysctl: raw.sysctl.clone(),
            value: raw.value.clone(),
            rcvbuf: raw
                .rcvbuf
                .map(|_| u32::try_from(rcvbuf).unwrap_or(u32::MAX)),
            signal,
            timeout_s: u32::try_from(timeout_s).unwrap_or(defaults::TIMEOUT_S),
            escalate_after_s: raw
                .escalate_after_s
                .map(|_| u32::try_from(escalate).unwrap_or(0)),
        })
    }

    /// Rule `r`'s signal, read from the text at the position the scan recorded (see RawRule).
    fn signal(&self, r: usize) -> Result<i32, ConfigError> {
        let Some(slot) = self.lay.rule_key(r, "signal") else {
            return Ok(defaults::SIGNAL);
        };
        let token = self.text.get(slot.val..slot.end).unwrap_or(&[]);
        let unknown = |shown: Shown| {
            self.err(
                slot.val,
                format_args!(
                    "unknown signal {shown} in rules[{r}] (expected a number from 1 to {} or one of: {})",
                    schema::MAX_SIGNAL,
                    Signals
                ),
            )
        };
        if let Some(inner) = token
            .strip_prefix(b"\"")
            .and_then(|t| t.strip_suffix(b"\""))
        {
            let mut buf = [0u8; MAX_STR];
            let name = scan::unescape(inner, &mut buf).unwrap_or(inner);
            let bare = match name.get(..3) {
                Some(p) if p.eq_ignore_ascii_case(b"SIG") => name.get(3..).unwrap_or(&[]),
                _ => name,
            };
            return schema::SIGNALS
                .iter()
                .find(|(n, _)| n.as_bytes().eq_ignore_ascii_case(bare))
                .map(|&(_, num)| num)
                .ok_or_else(|| unknown(Shown(name)));
        }
        let num = core::str::from_utf8(token)
            .ok()
            .and_then(|t| t.parse::<i64>().ok());
        match num {
            Some(n) if (1..=schema::MAX_SIGNAL).contains(&n) => {
                Ok(i32::try_from(n).unwrap_or(defaults::SIGNAL))
            }
            _ => Err(self.err(
                slot.val,
                format_args!(
                    "\"signal\" in rules[{r}] must be between 1 and {}, got {}",
                    schema::MAX_SIGNAL,
                    core::str::from_utf8(token).unwrap_or("?")
                ),
            )),
        }
    }
}

/// The accepted signal names, for messages.
struct Signals;

impl fmt::Display for Signals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (n, _)) in schema::SIGNALS.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(n)?;
        }
        Ok(())
    }
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
        assert_eq!(d.syslog, SyslogTarget::Unix(bounded("/dev/log")));
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
        assert_eq!(cfg.syslog, SyslogTarget::Udp(bounded("10.0.0.1:514")));
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
    fn syslog_targets() {
        let t = |s: &str| ok(&format!(r#"{{"syslog": "{s}"}}"#)).syslog;
        assert_eq!(t("stderr"), SyslogTarget::Stderr);
        assert_eq!(
            t("unix:/var/run/log"),
            SyslogTarget::Unix(bounded("/var/run/log"))
        );
        assert_eq!(
            t("tcp:logs.example:6514"),
            SyslogTarget::Tcp(bounded("logs.example:6514"))
        );
        assert_eq!(t("udp:[::1]:514"), SyslogTarget::Udp(bounded("[::1]:514")));
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
        for w in schema::FACILITIES.iter().chain(schema::ACTIONS) {
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
