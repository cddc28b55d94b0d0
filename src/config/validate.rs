//! Passes 2 and 3 of parsing a config (see config.rs): the `Raw*` structs are filled from the
//! text at the positions the scan recorded, then `Validator` applies defaults and checks meaning
//! (ranges, enums, cross-field rules), pointing at the offending key or value through the
//! same positions.

use core::fmt;

use heapless::Vec;

use crate::sys::{cut_fmt, cut_str};

use super::scan::{self, KeyAt, Layout, Place, Shown, Slot};
use super::schema::{self, KeySpec};
use super::{
    ActionKind, Config, ConfigError, MAX_ARGV, Name, Rule, Str, SyslogFormat, SyslogTarget,
    Trigger, defaults,
};

/// Fills `cfg` from `text`, which the scan accepted into `lay`: defaults for what is absent,
/// the first problem (with its position) as Err. On Err `cfg` must not be used.
pub(super) fn validate(text: &[u8], lay: &Layout, cfg: &mut Config) -> Result<(), ConfigError> {
    let raw = if lay.empty {
        RawConfig::default()
    } else {
        RawConfig::read(text, lay).map_err(|Unread| unread(text, lay.body))?
    };
    Validator { text, lay }.config(&raw, cfg)
}

// ---- pass 2: the values, read where the scan found them ---------------------------------

/// A value pass 2 could not read where the scan recorded one: scanner and reader disagree,
/// which is a bug (the differential test below holds them to serde-json-core's results).
#[derive(Debug)]
struct Unread;

/// The error for `Unread`, at the start of the object whose value it was.
fn unread(text: &[u8], at: usize) -> ConfigError {
    scan::error_at(
        text,
        at,
        format_args!(
            "the config reader could not read a value the checker accepted; please report this"
        ),
    )
}

/// The whole number in `slot`. Int and Signal slots hold what `Scanner::number` accepted
/// there: `-`? digits without a leading zero, no fraction, no exponent, within i64 (`-0` is 0).
fn int(text: &[u8], slot: Option<Slot>) -> Result<Option<i64>, Unread> {
    let Some(s) = slot else { return Ok(None) };
    let token = text.get(s.val..s.end).ok_or(Unread)?;
    let n = core::str::from_utf8(token)
        .ok()
        .and_then(|t| t.parse().ok());
    n.map(Some).ok_or(Unread)
}

/// The boolean in `slot` (the scan accepted `true` or `false` there).
fn flag(text: &[u8], slot: Option<Slot>) -> Option<bool> {
    slot.map(|s| text.get(s.val) == Some(&b't'))
}

/// The string in `slot`, unescaped.
fn string(text: &[u8], slot: Option<Slot>) -> Result<Option<Str>, Unread> {
    slot.map(|s| scan::string_at(text, s.val).ok_or(Unread))
        .transpose()
}

/// The string array in `slot`, from its items' positions.
fn list<const N: usize>(
    text: &[u8],
    slot: Option<Slot>,
    items: &[usize],
) -> Result<Option<Vec<Str, N>>, Unread> {
    if slot.is_none() {
        return Ok(None);
    }
    let mut v = Vec::new();
    for &at in items {
        let s = scan::string_at(text, at).ok_or(Unread)?;
        v.push(s).map_err(|_| Unread)?;
    }
    Ok(Some(v))
}

/// The top level as written. Every field is optional; numbers are i64 so that range errors
/// are ours (with a position). The scan guarantees every value fits.
/// `rules` is absent on purpose: each rule is read on its own (`RawRule::read`), so one
/// `RawRule` (~2.3 KB), not sixteen, is on the stack at a time.
#[derive(Debug, Default)]
#[cfg_attr(test, derive(PartialEq, serde::Deserialize))]
struct RawConfig {
    interval_ms: Option<i64>,
    syslog: Option<Str>,
    facility: Option<Str>,
    syslog_format: Option<Str>,
    syslog_queue_lines: Option<i64>,
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
    eta_window_s: Option<i64>,
    cooldown_s: Option<i64>,
    max_actions_per_hour: Option<i64>,
    oom_score_adj: Option<i64>,
    mlock: Option<bool>,
    breadcrumb_file: Option<Str>,
    drain_max_packets: Option<i64>,
    verify_s: Option<i64>,
    protect: Option<Vec<Str, { super::MAX_PROTECT }>>,
    watchdog_device: Option<Str>,
    watchdog_timeout_s: Option<i64>,
}

impl RawConfig {
    /// The top-level values of `text`, which the scan accepted into `lay`.
    fn read(text: &[u8], lay: &Layout) -> Result<RawConfig, Unread> {
        let top = |name: &str| lay.top(name);
        let i = |name: &str| int(text, top(name));
        let s = |name: &str| string(text, top(name));
        let b = |name: &str| flag(text, top(name));
        let protect = lay.protect.get(..lay.n_protect).ok_or(Unread)?;
        Ok(RawConfig {
            interval_ms: i("interval_ms")?,
            syslog: s("syslog")?,
            facility: s("facility")?,
            syslog_format: s("syslog_format")?,
            syslog_queue_lines: i("syslog_queue_lines")?,
            status_file: s("status_file")?,
            metrics_file: s("metrics_file")?,
            dry_run: b("dry_run"),
            ghost_warn_kb: i("ghost_warn_kb")?,
            ghost_act_kb: i("ghost_act_kb")?,
            ghost_growth: b("ghost_growth"),
            backlog_warn_bytes: i("backlog_warn_bytes")?,
            backlog_act_bytes: i("backlog_act_bytes")?,
            min_available_kb: i("min_available_kb")?,
            available_warn_kb: i("available_warn_kb")?,
            eta_window_s: i("eta_window_s")?,
            cooldown_s: i("cooldown_s")?,
            max_actions_per_hour: i("max_actions_per_hour")?,
            oom_score_adj: i("oom_score_adj")?,
            mlock: b("mlock"),
            breadcrumb_file: s("breadcrumb_file")?,
            drain_max_packets: i("drain_max_packets")?,
            verify_s: i("verify_s")?,
            protect: list(text, top("protect"), protect)?,
            watchdog_device: s("watchdog_device")?,
            watchdog_timeout_s: i("watchdog_timeout_s")?,
        })
    }
}

/// One rule as written. `signal` is absent on purpose: it may be a string or a number, so the
/// validator reads it from the position the scan recorded (`Validator::signal`).
#[derive(Debug, Default)]
#[cfg_attr(test, derive(PartialEq, serde::Deserialize))]
struct RawRule {
    name: Option<Str>,
    trigger: Option<Str>,
    comm: Option<Str>,
    exe: Option<Str>,
    uid: Option<i64>,
    user: Option<Str>,
    action: Option<Str>,
    argv: Option<Vec<Str, MAX_ARGV>>,
    sysctl: Option<Str>,
    value: Option<Str>,
    rcvbuf: Option<i64>,
    timeout_s: Option<i64>,
    escalate_after_s: Option<i64>,
    eta_s: Option<i64>,
}

impl RawRule {
    /// Rule `r` of `text`, which the scan accepted into `lay`.
    fn read(text: &[u8], lay: &Layout, r: usize) -> Result<RawRule, Unread> {
        let key = |name: &str| lay.rule_key(r, name);
        let i = |name: &str| int(text, key(name));
        let s = |name: &str| string(text, key(name));
        let slots = lay.rules.get(r).ok_or(Unread)?;
        let argv = slots.argv.get(..slots.n_argv).ok_or(Unread)?;
        Ok(RawRule {
            name: s("name")?,
            trigger: s("trigger")?,
            comm: s("comm")?,
            exe: s("exe")?,
            uid: i("uid")?,
            user: s("user")?,
            action: s("action")?,
            argv: list(text, key("argv"), argv)?,
            sysctl: s("sysctl")?,
            value: s("value")?,
            rcvbuf: i("rcvbuf")?,
            timeout_s: i("timeout_s")?,
            escalate_after_s: i("escalate_after_s")?,
            eta_s: i("eta_s")?,
        })
    }
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
            cfg.facility = cut_str(f);
        }
        if let Some(f) = &raw.syslog_format {
            const NAMES: [&str; 2] = [SyslogFormat::ALL[0].name(), SyslogFormat::ALL[1].name()];
            cfg.syslog_format = SyslogFormat::from_name(f).ok_or_else(|| {
                self.err(
                    Self::val_at(self.lay.top("syslog_format"), 0),
                    format_args!(
                        "unknown syslog_format {} (expected one of: {})",
                        Shown(f.as_bytes()),
                        OneOf(&NAMES)
                    ),
                )
            })?;
        }
        cfg.syslog_queue_lines = u32_of(self.top_int(
            raw.syslog_queue_lines,
            "syslog_queue_lines",
            defaults::SYSLOG_QUEUE_LINES.into(),
        )?);
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
        cfg.eta_window_s = u32_of(self.top_int(
            raw.eta_window_s,
            "eta_window_s",
            defaults::ETA_WINDOW_S.into(),
        )?);
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
        cfg.verify_s = u32_of(self.top_int(raw.verify_s, "verify_s", defaults::VERIFY_S.into())?);

        if let Some(list) = &raw.protect {
            self.protect(list, cfg)?;
        }
        cfg.watchdog_device = self.path(&raw.watchdog_device, "watchdog_device")?;

        for (r, slots) in self.lay.rules.iter().enumerate().take(self.lay.n_rules) {
            {
                let raw = RawRule::read(self.text, self.lay, r)
                    .map_err(|Unread| unread(self.text, slots.start))?;
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
        self.watchdog_timeout(raw.watchdog_timeout_s, cfg)
    }

    /// `protect`: names (as comm shows them, at most 15 bytes) or absolute exe paths.
    fn protect(&self, list: &[Str], cfg: &mut Config) -> Result<(), ConfigError> {
        for (i, entry) in list.iter().enumerate() {
            let at = self.lay.protect.get(i).copied().unwrap_or(0);
            let bad = if entry.is_empty() {
                Some("must not be empty")
            } else if entry.contains('/') && !entry.starts_with('/') {
                Some("must be a process name or an absolute exe path")
            } else if !entry.contains('/') && entry.len() > schema::COMM_CAP {
                Some("is longer than a process name can be (15 bytes, as comm shows it)")
            } else {
                None
            };
            if let Some(why) = bad {
                return Err(self.err(
                    at,
                    format_args!("protect[{i}] {} {why}", Shown(entry.as_bytes())),
                ));
            }
            // The scan caps the list at MAX_PROTECT, so this push cannot fail.
            let _ = cfg.protect.push(entry.clone());
        }
        Ok(())
    }

    /// `watchdog_timeout_s`: needs `watchdog_device`, and must outlast what can keep the loop
    /// from petting in normal operation: two intervals plus the longest action that runs inside
    /// a poll (a drain, `DRAIN_MAX_MS`; commands run beside the loop and do not count).
    fn watchdog_timeout(&self, v: Option<i64>, cfg: &mut Config) -> Result<(), ConfigError> {
        if v.is_none() {
            return Ok(());
        }
        let t = self.top_int(v, "watchdog_timeout_s", 0)?;
        let at = Self::val_at(self.lay.top("watchdog_timeout_s"), 0);
        if cfg.watchdog_device.is_none() {
            return Err(self.err(
                at,
                format_args!("\"watchdog_timeout_s\" needs \"watchdog_device\""),
            ));
        }
        let need_ms = 2 * u64::from(cfg.interval_ms) + defaults::DRAIN_MAX_MS;
        let need_s = need_ms.div_ceil(1000);
        if u64::try_from(t).unwrap_or(0) < need_s {
            return Err(self.err(
                at,
                format_args!(
                    "\"watchdog_timeout_s\" ({t}) must be at least {need_s}: two intervals plus the longest action inside a poll (a drain, {} ms)",
                    defaults::DRAIN_MAX_MS
                ),
            ));
        }
        cfg.watchdog_timeout_s = u32::try_from(t).ok();
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
            return Ok(SyslogTarget::Unix(cut_str(path)));
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
        let hp = cut_str(hostport);
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
                cut_str(n)
            }
            None => cut_fmt(format_args!("rule{}", r + 1)),
        };

        let Some(trigger_text) = &raw.trigger else {
            return Err(self.err(
                start,
                format_args!(
                    "rules[{r}] needs \"trigger\" (one of: {})",
                    OneOf(&Trigger::ALL.map(Trigger::name))
                ),
            ));
        };
        let Some(trigger) = Trigger::from_name(trigger_text) else {
            return Err(self.err(
                at("trigger"),
                format_args!(
                    "unknown trigger {} in rules[{r}] (expected one of: {})",
                    Shown(trigger_text.as_bytes()),
                    OneOf(&Trigger::ALL.map(Trigger::name))
                ),
            ));
        };
        if trigger == Trigger::Available && cfg.min_available_kb == 0 {
            return Err(self.err(
                at("trigger"),
                format_args!(
                    "rules[{r}] has trigger \"available\" but \"min_available_kb\" is 0 (off), so it would never fire; set min_available_kb"
                ),
            ));
        }
        let eta_s = int(raw.eta_s, "eta_s", 0)?;
        match (trigger == Trigger::OomEta, raw.eta_s.is_some()) {
            (true, false) => {
                return Err(self.err(
                    at("trigger"),
                    format_args!(
                        "rules[{r}] has trigger \"oom_eta\" but no \"eta_s\" (act while the estimated seconds until MemAvailable reaches min_available_kb are below it, 1 to {})",
                        schema::MAX_DELAY_S
                    ),
                ));
            }
            (false, true) => {
                return Err(self.err(
                    key_at("eta_s"),
                    format_args!(
                        "{} is only used by trigger \"oom_eta\" (this rule's trigger is \"{}\")",
                        KeyAt("eta_s", place),
                        trigger.name()
                    ),
                ));
            }
            _ => {}
        }
        // The slope needs a few samples: at least four polls inside the window.
        let window_ms = u64::from(cfg.eta_window_s) * 1000;
        let need_ms = 4 * u64::from(cfg.interval_ms);
        if trigger == Trigger::OomEta && window_ms < need_ms {
            return Err(self.err(
                at("trigger"),
                format_args!(
                    "rules[{r}] has trigger \"oom_eta\" but \"eta_window_s\" ({}) holds fewer than 4 polls of \"interval_ms\" ({}); make it at least {}",
                    cfg.eta_window_s,
                    cfg.interval_ms,
                    need_ms.div_ceil(1000)
                ),
            ));
        }

        let Some(action_text) = &raw.action else {
            return Err(self.err(
                start,
                format_args!(
                    "rules[{r}] needs \"action\" (one of: {})",
                    OneOf(&ActionKind::ALL.map(ActionKind::name))
                ),
            ));
        };
        let Some(action) = ActionKind::from_name(action_text) else {
            return Err(self.err(
                at("action"),
                format_args!(
                    "unknown action {} in rules[{r}] (expected one of: {})",
                    Shown(action_text.as_bytes()),
                    OneOf(&ActionKind::ALL.map(ActionKind::name))
                ),
            ));
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
        let uid = match (&raw.user, slot("uid")) {
            (Some(_), Some(_)) => {
                return Err(self.err(
                    key_at("user"),
                    format_args!("rules[{r}] has both \"uid\" and \"user\"; give one of them"),
                ));
            }
            (Some(user), None) => {
                match crate::observe::identity::lookup_user(crate::observe::identity::PASSWD, user)
                {
                    Some(u) => Some(u),
                    None => {
                        return Err(self.err(
                            at("user"),
                            format_args!(
                                "unknown user {} in rules[{r}] (not in {}); give its number as \"uid\"",
                                Shown(user.as_bytes()),
                                crate::observe::identity::PASSWD
                            ),
                        ));
                    }
                }
            }
            (None, Some(_)) => Some(u32::try_from(int(raw.uid, "uid", 0)?).unwrap_or(u32::MAX)),
            (None, None) => None,
        };
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
                Some(v) => {
                    if let Err(e) = crate::config::argv::check_template(v) {
                        let item = self
                            .lay
                            .rules
                            .get(r)
                            .and_then(|x| x.argv.get(e.item).copied())
                            .unwrap_or(start);
                        return Err(
                            self.err(item, format_args!("rules[{r}].argv[{}]: {}", e.item, e.why))
                        );
                    }
                }
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
                && !crate::sys::contains(name, "..")
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
            comm: raw.comm.as_deref().map(cut_str),
            exe: raw.exe.clone(),
            uid,
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
            eta_s: raw.eta_s.map(|_| u32::try_from(eta_s).unwrap_or(1)),
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
            let decoded = scan::string_at(self.text, slot.val);
            let name = decoded.as_ref().map_or(inner, |s| s.as_bytes());
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
    //! Pass 2 against the one it replaced: serde-json-core deserializing the spans the scan
    //! accepted (issue 16 moved serde-json-core to a dev-dependency for exactly this). The
    //! `Raw*` structs are all pass 3 gets from pass 2 (`signal` it reads from the text), so
    //! equal structs on every text the scan accepts mean an equal `Config` or the same error.

    use super::*;
    use crate::config::MAX_STR;

    /// Pass 2 before issue 16, verbatim but for the error type.
    fn deserialize<'t, T: serde::Deserialize<'t>>(
        text: &'t [u8],
        start: usize,
        end: usize,
    ) -> Result<T, std::string::String> {
        let span = text.get(start..end).unwrap_or(&[]);
        let mut unescaped = [0u8; MAX_STR];
        serde_json_core::from_slice_escaped::<T>(span, &mut unescaped)
            .map(|(v, _)| v)
            .map_err(|e| e.to_string())
    }

    /// Both readers on `text`: false if the scan refuses it, a panic if they differ.
    fn same_as_serde(text: &[u8]) -> bool {
        let mut lay = Layout::new();
        if scan::scan_into(text, &mut lay).is_err() {
            return false;
        }
        let show = || std::string::String::from_utf8_lossy(text).into_owned();
        if lay.empty {
            return true;
        }
        let old: RawConfig = deserialize(text, lay.body, text.len())
            .unwrap_or_else(|e| panic!("serde-json-core refused {:?}: {e}", show()));
        let new = RawConfig::read(text, &lay).unwrap_or_else(|_| panic!("unread: {:?}", show()));
        assert_eq!(new, old, "top level of {:?}", show());
        for r in 0..lay.n_rules {
            let slots = &lay.rules[r];
            let old: RawRule = deserialize(text, slots.start, slots.end).unwrap_or_else(|e| {
                panic!("serde-json-core refused rules[{r}] of {:?}: {e}", show())
            });
            let new = RawRule::read(text, &lay, r)
                .unwrap_or_else(|_| panic!("unread rules[{r}]: {:?}", show()));
            assert_eq!(new, old, "rules[{r}] of {:?}", show());
            // The signal name the validator reads, against serde-json-core's reading.
            if let Some(sig) = lay.rule_key(r, "signal").filter(|s| text[s.val] == b'"') {
                let old: Str = deserialize(text, sig.val, sig.end).unwrap();
                assert_eq!(scan::string_at(text, sig.val), Some(old), "{:?}", show());
            }
        }
        true
    }

    /// The string literal `quoted` (with its quotes) read by `scan::string_at` and by
    /// serde-json-core; both must agree, and the scan must accept it.
    fn decode(quoted: &str) -> Str {
        let t = quoted.as_bytes();
        let tok = scan::Scanner::new(t).string();
        assert!(tok.is_ok(), "scan refused {quoted}");
        let old: Str = deserialize(t, 0, t.len()).unwrap();
        let new = scan::string_at(t, 0).unwrap();
        assert_eq!(new, old, "{quoted}");
        assert_eq!(new.len(), tok.unwrap().len, "{quoted}");
        new
    }

    #[test]
    fn every_escape_decodes_as_serde_json_core_did() {
        for (quoted, want) in [
            (r#""""#, ""),
            (r#""plain""#, "plain"),
            (r#""\"""#, "\""),
            (r#""\\""#, "\\"),
            (r#""\/""#, "/"),
            (r#""\b""#, "\u{8}"),
            (r#""\f""#, "\u{c}"),
            (r#""\n""#, "\n"),
            (r#""\r""#, "\r"),
            (r#""\t""#, "\t"),
            (r#""\u0001""#, "\u{1}"),
            (r#""\u001F""#, "\u{1f}"),
            (r#""\u0041\u0062""#, "Ab"),
            (r#""\u007f""#, "\u{7f}"),
            (r#""\u0080""#, "\u{80}"),
            (r#""\u00e9\u00E9""#, "éé"),
            (r#""\u07FF""#, "\u{7ff}"),
            (r#""\u0800""#, "\u{800}"),
            (r#""\u4e2d\u6587""#, "中文"),
            (r#""\uD7FF""#, "\u{d7ff}"),
            (r#""\uE000""#, "\u{e000}"),
            (r#""\uFFFD\uffff""#, "\u{fffd}\u{ffff}"),
            ("\"é中😀\"", "é中😀"),
            (r#""a\\\"b\\""#, "a\\\"b\\"),
            (r#""\\u0041""#, "\\u0041"),
            (r#""/run/g\u00e9\/s\n""#, "/run/gé/s\n"),
            (r#""x\ty\r\nz\b\f""#, "x\ty\r\nz\u{8}\u{c}"),
        ] {
            assert_eq!(decode(quoted), want, "{quoted}");
        }
        // Every \uXXXX that is a character, in both cases of hex digit.
        for cp in (1..=0xFFFFu32).filter(|c| !(0xD800..=0xDFFF).contains(c)) {
            let want = char::from_u32(cp).unwrap().to_string();
            assert_eq!(decode(&format!("\"\\u{cp:04x}\"")), want.as_str());
            assert_eq!(decode(&format!("\"\\u{cp:04X}\"")), want.as_str());
        }
    }

    #[test]
    fn surrogates_are_refused_by_scan_and_serde_json_core_alike() {
        // JSON's way to write 😀 in ASCII: neither the scan nor serde-json-core (its
        // `char::from_u32` per escape) reads surrogate pairs, so the scan refuses them with a
        // message saying so and pass 2 never sees one; the decoder would refuse them too.
        for quoted in [
            r#""\ud83d\ude00""#,
            r#""\uD800""#,
            r#""\uDFFF""#,
            r#""a\udbff\udfffb""#,
        ] {
            let t = quoted.as_bytes();
            let e = scan::Scanner::new(t).string().unwrap_err();
            assert!(e.msg.contains("half of a surrogate pair"), "{e}");
            assert!(deserialize::<Str>(t, 0, t.len()).is_err(), "{quoted}");
            assert_eq!(scan::string_at(t, 0), None, "{quoted}");
        }
        let e = crate::config::parse(br#"{"status_file": "/\ud83d\ude00"}"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "1:19: \\uD83D is half of a surrogate pair, which is not supported; write the character itself (UTF-8)"
        );
    }

    #[test]
    fn strings_fill_max_str_exactly() {
        let full = format!("\"{}\"", "\\u00e9".repeat(MAX_STR / 2));
        assert_eq!(decode(&full).len(), MAX_STR);
        let over = format!("\"{}x\"", "\\u00e9".repeat(MAX_STR / 2));
        assert_eq!(scan::string_at(over.as_bytes(), 0), None);
    }

    #[test]
    fn numbers_read_as_serde_json_core_did() {
        for n in [
            "0",
            "-0",
            "1",
            "-1",
            "3600000",
            "9223372036854775807",
            "-9223372036854775808",
        ] {
            let text =
                format!(r#"{{"interval_ms": {n}, "rules": [{{"uid": {n}, "signal": {n}}}]}}"#);
            assert!(same_as_serde(text.as_bytes()), "{text}");
        }
        // What the scan refuses for Int keys never reaches pass 2.
        for n in [
            "1e3",
            "1.0",
            "-0.0",
            "0e0",
            "9223372036854775808",
            "-9223372036854775809",
        ] {
            let text = format!(r#"{{"interval_ms": {n}}}"#);
            assert!(!same_as_serde(text.as_bytes()), "{text}");
        }
    }

    /// xorshift64*, as tests/config_fuzz.rs.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    /// tests/config_fuzz.rs's alphabet, with the escape letters and hex digits.
    const ALPHABET: &[u8] = b"{}[]:,\"\\ \n\t-+.0123456789eEtrufalsn/#'u\x00\xff\xc3\xa9xyz_bfAFcd";

    /// tests/config_fuzz.rs's seeds and every shipped or tested good config, plus strings with
    /// every escape in every kind of string value.
    const SEEDS: &[&str] = &[
        include_str!("../../init/ghostwatch.json"),
        include_str!("../../init/ghostwatch.openwrt.json"),
        include_str!("../../init/ghostwatch.zebra-box.json"),
        include_str!("../../tests/data/config/good_all_actions.json"),
        include_str!("../../tests/data/config/good_bom_crlf.json"),
        include_str!("../../tests/data/config/good_braces.json"),
        include_str!("../../tests/data/config/good_empty.json"),
        include_str!("../../tests/data/config/good_nulls.json"),
        include_str!("../../tests/vm/guest/ghostwatch-B.json"),
        include_str!("../../tests/vm/guest/ghostwatch-B-eta.json"),
        include_str!("../../tests/vm/guest/ghostwatch-C.json"),
        include_str!("../../tests/vm/guest/ghostwatch-D.json"),
        crate::config::EMBEDDED_DEFAULT_JSON,
        r#"{"syslog": "udp:[::1]:514", "rules": [{"trigger": "backlog", "comm": "zebra", "action": "kill", "signal": "SIGKILL", "argv": null}]}"#,
        r#"{"status_file": "/run/g\u00e9\/s\n", "ghost_warn_kb": 1, "ghost_act_kb": 1}"#,
        r#"{"syslog": "unix:\/dev\/log\t", "facility": "l\u006fcal0", "protect": ["a\"b", "\\x", "\u4e2d\b\f\r"],
            "watchdog_device": "/dev/w\u0061tchdog", "watchdog_timeout_s": -0, "oom_score_adj": -1000,
            "rules": [{"name": "n\u0031", "trigger": "gh\u006fst", "comm": "\u00e9t\u00e9", "exe": "\/bin\/x",
                       "user": "r\u006fot", "action": "ex\u0065c", "argv": ["\/bin\/sh", "-c", "echo \"{pid}\"\n", ""],
                       "sysctl": "a.b", "value": "\u0031\t2", "signal": "\u0053IGTERM", "uid": 0, "rcvbuf": 4096,
                       "timeout_s": 9, "escalate_after_s": 0, "eta_s": 1}, {"signal": -0}, {}]}"#,
    ];

    fn mutate(rng: &mut Rng, seed: &[u8]) -> std::vec::Vec<u8> {
        let mut t = seed.to_vec();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(t.len() + 1);
            match rng.below(7) {
                0 | 1 if at < t.len() => t[at] = ALPHABET[rng.below(ALPHABET.len())],
                2 if at < t.len() => {
                    t.remove(at);
                }
                3 => t.insert(at, ALPHABET[rng.below(ALPHABET.len())]),
                4 => t.truncate(at),
                5 => {
                    let len = rng.below(64).min(t.len() - at.min(t.len()));
                    let chunk = t[at..at + len].to_vec();
                    let to = rng.below(t.len() + 1);
                    t.splice(to..to, chunk);
                }
                _ if at < t.len() => t[at] = rng.next() as u8,
                _ => {}
            }
        }
        t
    }

    #[test]
    fn pass_2_reads_what_serde_json_core_read() {
        for seed in SEEDS {
            assert!(same_as_serde(seed.as_bytes()), "seed refused: {seed}");
        }
        let cases = std::env::var("GW_FUZZ_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(30_000usize);
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut accepted = 0;
        for i in 0..cases {
            let text = mutate(&mut rng, SEEDS[i % SEEDS.len()].as_bytes());
            accepted += usize::from(same_as_serde(&text));
        }
        println!("{cases} mutated configs, {accepted} scanned and read alike by both");
        assert!(
            accepted > cases / 10,
            "too few accepted to compare: {accepted}"
        );
    }
}
