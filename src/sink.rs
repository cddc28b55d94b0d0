//! Where audit and error lines go: syslog (unix socket, UDP, TCP) through the `log` and `syslog`
//! crates, with reconnect, and stderr as the fallback with a count of lines that went there.
//!
//! OWNER: actions.

use crate::config::{Config, SyslogTarget};

/// Severity of a line (maps to syslog priority).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Err,
    Warning,
    Notice,
    Info,
}

/// Counters the status file and metrics show.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SinkStats {
    pub lines_sent: u64,
    /// Lines that could not go to syslog and went to stderr instead.
    pub lines_to_stderr: u64,
    pub reconnects: u64,
}

/// Installs the global logger for `target` (replacing any earlier target on reload).
pub fn init(target: &SyslogTarget, facility: &str) -> Result<(), &'static str> {
    let _ = (target, facility);
    todo!()
}

/// Sends one line at `sev`. Never fails: falls back to stderr and counts it.
pub fn emit(sev: Severity, line: &str) {
    let _ = (sev, line);
    todo!()
}

pub fn stats() -> SinkStats {
    todo!()
}

/// Re-applies the target and facility from a (reloaded) config.
pub fn reconfigure(cfg: &Config) -> Result<(), &'static str> {
    init(&cfg.syslog, &cfg.facility)
}
