//! The logfmt audit line: `event=action rule=... result=ok ...`, one per decision.
//!
//! OWNER: actions. Built in a fixed buffer; values with spaces are double-quoted, control
//! characters escaped (never passed through). A line that would overflow is cut at a key boundary
//! and ends with `truncated=1`.

use core::fmt;

pub const MAX_LINE: usize = 1024;

/// One audit line under construction.
pub struct AuditLine {
    buf: heapless::Vec<u8, MAX_LINE>,
}

impl AuditLine {
    /// Starts a line with `event=<event>` ("threshold", "action", "recovered", "error").
    pub fn new(event: &str) -> AuditLine {
        let _ = event;
        todo!()
    }

    /// Appends ` key=value`, quoting/escaping `value` as needed.
    pub fn kv(&mut self, key: &str, value: &[u8]) -> &mut Self {
        let _ = (key, value);
        todo!()
    }

    /// Appends ` key=<Display of v>` (numbers, enums).
    pub fn kvd(&mut self, key: &str, v: impl fmt::Display) -> &mut Self {
        let _ = (key, v);
        todo!()
    }

    /// Appends already-formatted logfmt pairs (e.g. an Outcome's detail `old=1 new=2`),
    /// preceded by one space.
    pub fn raw(&mut self, pairs: &str) -> &mut Self {
        let _ = pairs;
        todo!()
    }

    pub fn as_str(&self) -> &str {
        todo!()
    }
}
