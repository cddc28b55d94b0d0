//! The logfmt audit line: `event=action rule=... result=ok ...`, one per decision.
//!
//! Built in a fixed buffer; values with spaces are double-quoted, control
//! characters escaped (never passed through). A line that would overflow is cut at a key boundary
//! and ends with `truncated=1`.
//!
//! Process names and sysctl values come from other (possibly hostile) processes, so a value is
//! never copied raw: a crafted comm like "x\nevent=recovered" must not forge a second line or
//! a second key in the operator's syslog.

use crate::output::escape::is_unsafe_char;
use core::fmt::{self, Write as _};

/// The `result=` of an audit line: the vocabulary of every attempt (`act::executors::Outcome`
/// carries one; status and metrics count them per kind).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResultKind {
    Ok,
    Failed,
    DryRun,
    Skipped,
}

impl ResultKind {
    /// Every result, in the order status and metrics list them.
    pub const ALL: [ResultKind; 4] = [
        ResultKind::Ok,
        ResultKind::Failed,
        ResultKind::DryRun,
        ResultKind::Skipped,
    ];

    /// Contract text: "ok", "failed", "skipped", "dry-run".
    pub const fn name(self) -> &'static str {
        match self {
            ResultKind::Ok => "ok",
            ResultKind::Failed => "failed",
            ResultKind::Skipped => "skipped",
            ResultKind::DryRun => "dry-run",
        }
    }

    /// The result for a contract name; `None` for anything else.
    pub fn from_name(name: &str) -> Option<ResultKind> {
        ResultKind::ALL.into_iter().find(|r| r.name() == name)
    }

    /// Position in `ALL`: the slot of this result in per-result counters.
    pub const fn index(self) -> usize {
        self as usize
    }
}

pub const MAX_LINE: usize = 1024;

/// A `Display` value rendered before it is escaped; longer than this is "does not fit".
type DisplayText = heapless::String<256>;

/// What a cut line ends with; room for it is always kept free.
const TRUNCATED: &str = " truncated=1";

/// One audit line under construction.
pub struct AuditLine {
    /// Written through `heapless::String`'s own `fmt::Write`, which refuses (writes nothing)
    /// what does not fit, so a pair can be rolled back whole.
    buf: heapless::String<MAX_LINE>,
    truncated: bool,
}

/// True if `value` cannot be written bare: empty, or holds a byte that would end or confuse
/// the pair (space, '=', '"', '\\'), or one that gets escaped (control, DEL, invalid UTF-8,
/// C1 controls).
fn needs_quotes(value: &[u8]) -> bool {
    if value.is_empty() {
        return true;
    }
    for chunk in value.utf8_chunks() {
        if !chunk.invalid().is_empty() {
            return true;
        }
        for c in chunk.valid().chars() {
            if c == ' ' || c == '=' || c == '"' || c == '\\' || is_unsafe_char(c) {
                return true;
            }
        }
    }
    false
}

/// Writes `value` as a logfmt value: bare when safe, else double-quoted with `\"` and `\\`
/// escaped and unsafe characters (`escape::is_unsafe_char`: C0, DEL, C1, U+2028/U+2029, bidi
/// overrides and isolates, invisible format characters) and invalid UTF-8 bytes as `\xNN`
/// (the character's UTF-8 bytes).
/// Returns Err only if `w` runs out of room.
pub fn write_value(w: &mut (impl fmt::Write + ?Sized), value: &[u8]) -> fmt::Result {
    if !needs_quotes(value) {
        // Checked above: valid UTF-8 with nothing to escape.
        return w.write_str(core::str::from_utf8(value).map_err(|_| fmt::Error)?);
    }
    w.write_char('"')?;
    for chunk in value.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => w.write_str("\\\"")?,
                '\\' => w.write_str("\\\\")?,
                c if is_unsafe_char(c) => {
                    let mut utf8 = [0u8; 4];
                    for b in c.encode_utf8(&mut utf8).bytes() {
                        write!(w, "\\x{b:02x}")?;
                    }
                }
                c => w.write_char(c)?,
            }
        }
        for b in chunk.invalid() {
            write!(w, "\\x{b:02x}")?;
        }
    }
    w.write_char('"')
}

/// Writes `key` keeping only [A-Za-z0-9_.-] (anything else becomes '_'), so even a
/// computed key cannot break the line's syntax.
fn write_key(w: &mut (impl fmt::Write + ?Sized), key: &str) -> fmt::Result {
    if key.is_empty() {
        return w.write_char('_');
    }
    for c in key.chars() {
        let ok = c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-';
        w.write_char(if ok { c } else { '_' })?;
    }
    Ok(())
}

/// Appends `key=value` (preceded by a space unless `buf` is empty) to a fixed string, e.g. an
/// `Outcome::detail`. Returns false, leaving `buf` unchanged, if the pair does not fit.
pub fn push_pair<const N: usize>(buf: &mut heapless::String<N>, key: &str, value: &[u8]) -> bool {
    push_pair_view(buf.as_mut_view(), key, value)
}

/// `push_pair` on the string's view: one copy of the code for every capacity.
fn push_pair_view(buf: &mut heapless::string::StringView, key: &str, value: &[u8]) -> bool {
    let before = buf.len();
    let r = (|| {
        if !buf.is_empty() {
            buf.write_char(' ')?;
        }
        write_key(buf, key)?;
        buf.write_char('=')?;
        write_value(buf, value)
    })();
    if r.is_err() {
        buf.truncate(before);
        return false;
    }
    true
}

/// Like `push_pair` for a `Display` value (numbers, enums).
pub fn push_pair_display<const N: usize>(
    buf: &mut heapless::String<N>,
    key: &str,
    v: impl fmt::Display,
) -> bool {
    let mut tmp = DisplayText::new();
    if write!(tmp.as_mut_view(), "{v}").is_err() {
        return false;
    }
    push_pair(buf, key, tmp.as_bytes())
}

impl AuditLine {
    /// Starts a line with `event=<event>` ("threshold", "action", "recovered", "error").
    pub fn new(event: &str) -> AuditLine {
        let mut line = AuditLine {
            buf: heapless::String::new(),
            truncated: false,
        };
        line.pair(|w| {
            w.write_str("event=")?;
            write_value(w, event.as_bytes())
        });
        line
    }

    /// Appends ` key=value`, quoting/escaping `value` as needed. If the pair does not fit, the
    /// line ends with ` truncated=1` and every later pair is dropped.
    pub fn kv(&mut self, key: &str, value: &[u8]) -> &mut Self {
        self.pair(|w| {
            w.write_char(' ')?;
            write_key(w, key)?;
            w.write_char('=')?;
            write_value(w, value)
        });
        self
    }

    /// Appends ` key=<Display of v>` (numbers, enums). A value longer than 256 bytes
    /// rendered is treated as not fitting (the line is marked truncated).
    pub fn kvd(&mut self, key: &str, v: impl fmt::Display) -> &mut Self {
        let mut tmp = DisplayText::new();
        if write!(tmp.as_mut_view(), "{v}").is_err() {
            self.mark_truncated();
            return self;
        }
        self.kv(key, tmp.as_bytes())
    }

    /// Appends pairs that are already logfmt (e.g. `Outcome::detail`, built with `push_pair`),
    /// one pair at a time so a cut still falls on a pair boundary.
    pub fn raw_pairs(&mut self, pairs: &str) -> &mut Self {
        for pair in split_pairs(pairs) {
            self.pair(|w| {
                w.write_char(' ')?;
                w.write_str(pair)
            });
        }
        self
    }

    /// The line so far (always valid UTF-8: values are escaped while written).
    pub fn as_str(&self) -> &str {
        &self.buf
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.buf.as_bytes()
    }

    /// True if a pair was dropped for lack of room.
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }

    /// Writes one pair with `f`; keeps it only if it fits while leaving room for the
    /// truncation marker, else rolls it back and marks the line truncated.
    fn pair(&mut self, f: impl FnOnce(&mut heapless::string::StringView) -> fmt::Result) {
        if self.truncated {
            return;
        }
        let before = self.buf.len();
        // Written through the string's view, so the formatting code is the one copy that
        // every fixed string shares rather than one per capacity.
        let ok = f(self.buf.as_mut_view()).is_ok() && self.buf.len() + TRUNCATED.len() <= MAX_LINE;
        if !ok {
            self.buf.truncate(before);
            self.mark_truncated();
        }
    }

    fn mark_truncated(&mut self) {
        if !self.truncated {
            self.truncated = true;
            // Room for the marker is reserved by `pair`, so this cannot fail.
            let _ = self.buf.push_str(TRUNCATED);
        }
    }
}

impl fmt::Display for AuditLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for AuditLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AuditLine({:?})", self.as_str())
    }
}

/// Splits `a=1 b="x y" c=\"` into pairs at spaces outside double quotes.
pub(crate) fn split_pairs(s: &str) -> impl Iterator<Item = &str> {
    let mut rest = s.trim_start_matches(' ');
    core::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let bytes = rest.as_bytes();
        let (mut in_quotes, mut escaped) = (false, false);
        let mut end = bytes.len();
        for (i, &b) in bytes.iter().enumerate() {
            if escaped {
                escaped = false;
            } else if in_quotes && b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_quotes = !in_quotes;
            } else if b == b' ' && !in_quotes {
                end = i;
                break;
            }
        }
        let (pair, tail) = rest.split_at(end);
        rest = tail.trim_start_matches(' ');
        Some(pair)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(v: &[u8]) -> String {
        let mut s = String::new();
        write_value(&mut s, v).unwrap();
        s
    }

    #[test]
    fn bare_values_stay_bare() {
        let mut l = AuditLine::new("action");
        l.kv("rule", b"zebra-clamp")
            .kv("comm", b"zebra")
            .kvd("pid", 1234)
            .kvd("rx_queue", 76755840u64);
        assert_eq!(
            l.as_str(),
            "event=action rule=zebra-clamp comm=zebra pid=1234 rx_queue=76755840"
        );
        assert!(!l.is_truncated());
    }

    #[test]
    fn hostile_comm_is_quoted_and_escaped() {
        assert_eq!(value(b"a\nb"), r#""a\x0ab""#);
        assert_eq!(value(b"\x1b[31mred"), r#""\x1b[31mred""#);
        assert_eq!(value(b"two words"), r#""two words""#);
        assert_eq!(value(b"say \"hi\""), r#""say \"hi\"""#);
        assert_eq!(value(b"a=b"), r#""a=b""#);
        assert_eq!(value(br"c:\dir"), r#""c:\\dir""#);
        assert_eq!(value(b"bad\xff\xfeutf8"), r#""bad\xff\xfeutf8""#);
        assert_eq!(value(b"del\x7f"), r#""del\x7f""#);
        // Line separator and right-to-left override: a log viewer would break the line or
        // show the rest reversed.
        assert_eq!(value("a\u{2028}b".as_bytes()), r#""a\xe2\x80\xa8b""#);
        assert_eq!(
            value("x\u{202e}txt.exe".as_bytes()),
            r#""x\xe2\x80\xaetxt.exe""#
        );
        assert_eq!(
            value("zero\u{200b}width".as_bytes()),
            r#""zero\xe2\x80\x8bwidth""#
        );
        // C1 control U+0085 (NEL) is escaped as its UTF-8 bytes.
        assert_eq!(value("x\u{85}".as_bytes()), r#""x\xc2\x85""#);
        assert_eq!(value(b""), r#""""#);
        // Valid non-ASCII text passes through.
        assert_eq!(value("路由器".as_bytes()), "路由器");
    }

    #[test]
    fn forged_pairs_cannot_escape_their_value() {
        let mut l = AuditLine::new("action");
        l.kv("comm", b"x\nevent=recovered result=ok");
        assert_eq!(
            l.as_str(),
            r#"event=action comm="x\x0aevent=recovered result=ok""#
        );
        assert!(!l.as_str().contains('\n'));
        // Keys are sanitized too.
        let mut l = AuditLine::new("error");
        l.kv("bad key=", b"1");
        assert_eq!(l.as_str(), "event=error bad_key_=1");
    }

    #[test]
    fn overflow_cuts_at_pair_boundary() {
        let mut l = AuditLine::new("threshold");
        let big = [b'a'; 300];
        for _ in 0..5 {
            l.kv("k", &big);
        }
        l.kvd("seq", 7);
        let s = l.as_str();
        assert!(l.is_truncated());
        assert!(s.len() <= MAX_LINE);
        assert!(s.ends_with(" truncated=1"), "{s}");
        // Three 302-byte pairs fit after "event=threshold"; the fourth does not.
        assert_eq!(s.matches(" k=").count(), 3);
        assert!(!s.contains("seq="));
        assert_eq!(s.matches("truncated=1").count(), 1);
        // A value that can never fit also cuts cleanly.
        let mut l = AuditLine::new("error");
        l.kv("reason", &[b' '; 2000]);
        assert_eq!(l.as_str(), "event=error truncated=1");
    }

    #[test]
    fn escaping_that_overflows_is_rolled_back() {
        // 1000 control bytes expand to 4000: must not leave half a quoted value.
        let mut l = AuditLine::new("error");
        l.kvd("seq", 1).kv("comm", &[0x01; 1000]);
        assert_eq!(l.as_str(), "event=error seq=1 truncated=1");
    }

    #[test]
    fn split_pairs_respects_quotes() {
        let v: Vec<&str> = split_pairs(r#"a=1 b="x y" c="q\" z" d="#).collect();
        assert_eq!(v, vec!["a=1", r#"b="x y""#, r#"c="q\" z""#, "d="]);
    }

    #[test]
    fn push_pair_refuses_what_does_not_fit() {
        let mut s: heapless::String<8> = heapless::String::new();
        assert!(push_pair(&mut s, "a", b"1"));
        assert!(!push_pair(&mut s, "bb", b"12345"));
        assert_eq!(s.as_str(), "a=1");
    }
}
