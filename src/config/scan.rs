//! A position-tracking JSON scanner that knows the config schema.
//!
//! This pass runs first: it checks the JSON syntax and the schema (known keys, JSON types,
//! string lengths, item counts, duplicate keys) and records where every key and value sits, so
//! pass 2 reads the values from there and later semantic errors can point at them too. It never
//! allocates and never recurses deeper than the schema (object > rules > rule > argv), so
//! hostile input cannot exhaust the stack. It accepts a subset of what serde-json-core (pass 2
//! until issue 16) accepted: no raw control characters, no surrogate escapes (serde-json-core
//! refuses those too), no escaped keys, no NUL; pass 2 reads everything it accepts to the same
//! values serde-json-core did (the differential test in config/validate.rs).

// Errors carry their message inline (no heap, by design), so they are large; boxing them
// would allocate, which this module must not do.
#![allow(clippy::result_large_err)]

use core::fmt::{self, Write};

use super::schema::{self, KeySpec, Kind};
use super::{ConfigError, MAX_ARGV, MAX_RULES};

/// Where a key and its value sit (byte offsets into the text).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Slot {
    /// The key's opening quote.
    pub key: usize,
    /// The value's first byte.
    pub val: usize,
    /// One past the value's last byte.
    pub end: usize,
    /// The value was `null` (treated as absent).
    pub is_null: bool,
}

/// Which string array a scan is in (for messages and where item positions go).
#[derive(Clone, Copy, Debug)]
enum List {
    Argv(usize),
    Protect,
}

impl fmt::Display for List {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            List::Argv(r) => write!(f, "rules[{r}].argv"),
            List::Protect => f.write_str("protect"),
        }
    }
}

pub const N_TOP: usize = schema::TOP.len();
pub const N_RULE: usize = schema::RULE.len();

/// Where one rule's parts sit.
#[derive(Clone, Copy, Debug, Default)]
pub struct RuleSlots {
    /// The rule's opening brace.
    pub start: usize,
    /// One past its closing brace.
    pub end: usize,
    pub keys: [Option<Slot>; N_RULE],
    /// Each argv item's opening quote.
    pub argv: [usize; MAX_ARGV],
    /// How many of `argv` are items.
    pub n_argv: usize,
}

/// What the scan learned: where everything is. Positions are byte offsets; `pos_of` turns
/// them into LINE:COL only when an error needs one.
#[derive(Clone, Debug)]
pub struct Layout {
    /// No JSON value at all (empty or whitespace-only file): all defaults.
    pub empty: bool,
    /// Offset of the first byte after a UTF-8 byte-order mark, if any (0 otherwise).
    pub body: usize,
    pub top: [Option<Slot>; N_TOP],
    pub rules: [RuleSlots; MAX_RULES],
    pub n_rules: usize,
    /// Each `protect` item's opening quote.
    pub protect: [usize; super::MAX_PROTECT],
    /// How many of `protect` are items.
    pub n_protect: usize,
}

impl Layout {
    /// Where top-level key `name` sits, if it is present and not null.
    pub fn top(&self, name: &str) -> Option<Slot> {
        let i = schema::index_of(schema::TOP, name.as_bytes())?;
        self.top.get(i).copied().flatten().filter(|s| !s.is_null)
    }

    /// Where key `name` of rule `r` sits, if present and not null.
    pub fn rule_key(&self, r: usize, name: &str) -> Option<Slot> {
        let i = schema::index_of(schema::RULE, name.as_bytes())?;
        let rule = self.rules.get(r)?;
        rule.keys.get(i).copied().flatten().filter(|s| !s.is_null)
    }
}

/// 1-based LINE:COL of byte offset `at` (columns count UTF-8 characters; a byte-order mark
/// does not count). Offsets past the end give the position just after the last byte.
pub fn pos_of(text: &[u8], at: usize) -> (u32, u32) {
    let at = at.min(text.len());
    let before = text.get(..at).unwrap_or(text);
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
    let mut col = 1 + before
        .get(line_start..)
        .unwrap_or(&[])
        .iter()
        .filter(|&&b| !(0x80..0xC0).contains(&b))
        .count();
    if line_start == 0 && text.starts_with(BOM) && at >= BOM.len() {
        col -= 1;
    }
    (
        u32::try_from(line).unwrap_or(u32::MAX),
        u32::try_from(col).unwrap_or(u32::MAX),
    )
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// An error at byte offset `at` of `text`.
pub fn error_at(text: &[u8], at: usize, args: fmt::Arguments) -> ConfigError {
    let (line, col) = pos_of(text, at);
    ConfigError {
        line,
        col,
        msg: crate::sys::cut_fmt(args),
    }
}

/// Shows user text in a message: quoted, at most 40 characters, control characters escaped,
/// invalid UTF-8 as \xNN. Keeps one-line messages one line and readable.
pub struct Shown<'a>(pub &'a [u8]);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MAX_CHARS: usize = 40;
        f.write_char('"')?;
        let mut n = 0;
        for chunk in self.0.utf8_chunks() {
            for c in chunk.valid().chars() {
                if n == MAX_CHARS {
                    return f.write_str("...\"");
                }
                n += 1;
                match c {
                    '"' => f.write_str("\\\"")?,
                    '\\' => f.write_str("\\\\")?,
                    '\n' => f.write_str("\\n")?,
                    '\t' => f.write_str("\\t")?,
                    c if c.is_control() => write!(f, "\\u{:04x}", c as u32)?,
                    c => f.write_char(c)?,
                }
            }
            for b in chunk.invalid() {
                if n == MAX_CHARS {
                    return f.write_str("...\"");
                }
                n += 1;
                write!(f, "\\x{b:02x}")?;
            }
        }
        f.write_char('"')
    }
}

/// Which object a key belongs to, for messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    Top,
    Rule(usize),
}

/// A key in its place, shown as `"interval_ms"` or `"timeout_s" in rules[0]`.
pub struct KeyAt<'a>(pub &'a str, pub Place);

impl fmt::Display for KeyAt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.1 {
            Place::Top => write!(f, "\"{}\"", self.0),
            Place::Rule(r) => write!(f, "\"{}\" in rules[{r}]", self.0),
        }
    }
}

/// The JSON value that starts at a position, judged by its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Found {
    Object,
    Array,
    String,
    Number,
    True,
    False,
    Null,
    /// Not the start of any JSON value (or end of file).
    Nothing,
}

impl Found {
    fn describe(self) -> &'static str {
        match self {
            Found::Object => "an object",
            Found::Array => "an array",
            Found::String => "a string",
            Found::Number => "a number",
            Found::True | Found::False => "a boolean",
            Found::Null => "null",
            Found::Nothing => "nothing",
        }
    }
}

/// A scanned string token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StrTok {
    /// Bytes between the quotes, still escaped.
    pub raw: (usize, usize),
    /// Length in bytes once unescaped.
    pub len: usize,
    pub escaped: bool,
}

/// A scanned number token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NumTok {
    pub start: usize,
    pub end: usize,
    /// Has a fraction or an exponent.
    pub fractional: bool,
    /// The value when it is a whole number that fits an i64.
    pub int: Option<i64>,
}

/// The scanner state: the text and a cursor, plus the open brackets for end-of-file messages.
pub struct Scanner<'a> {
    text: &'a [u8],
    i: usize,
    opens: [(usize, u8); 4],
    depth: usize,
}

/// Checks syntax and schema of a whole config text; returns where everything sits.
/// Fails with the first problem in file order, positioned at the offending byte.
#[cfg(test)]
pub fn scan(text: &[u8]) -> Result<Layout, ConfigError> {
    let mut lay = Layout::new();
    scan_into(text, &mut lay)?;
    Ok(lay)
}

impl Layout {
    pub fn new() -> Self {
        Layout {
            empty: false,
            body: 0,
            top: [None; N_TOP],
            rules: [RuleSlots::default(); MAX_RULES],
            n_rules: 0,
            protect: [0; super::MAX_PROTECT],
            n_protect: 0,
        }
    }
}

/// `scan` into a caller's (fresh) Layout: it is 9 KB, and returning it by value would copy it.
pub fn scan_into(text: &[u8], lay: &mut Layout) -> Result<(), ConfigError> {
    let mut s = Scanner::new(text);
    if text.starts_with(BOM) {
        s.i = BOM.len();
        lay.body = BOM.len();
    }
    s.skip_ws();
    match s.peek() {
        None => {
            lay.empty = true;
            return Ok(());
        }
        Some(b'{') => s.object(lay, Place::Top)?,
        Some(_) => {
            let found = s.found();
            if found == Found::Nothing {
                return Err(s.bad_value(format_args!("the config object")));
            }
            return Err(s.err(
                s.i,
                format_args!(
                    "the config must be a JSON object ({{ ... }}), got {}",
                    found.describe()
                ),
            ));
        }
    }
    s.skip_ws();
    if s.peek().is_some() {
        return Err(s.err(
            s.i,
            format_args!("unexpected text after the end of the config object"),
        ));
    }
    Ok(())
}

impl<'a> Scanner<'a> {
    pub fn new(text: &'a [u8]) -> Self {
        Scanner {
            text,
            i: 0,
            opens: [(0, 0); 4],
            depth: 0,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.i).copied()
    }

    fn peek_at(&self, i: usize) -> Option<u8> {
        self.text.get(i).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    fn err(&self, at: usize, args: fmt::Arguments) -> ConfigError {
        error_at(self.text, at, args)
    }

    fn open(&mut self, bracket: u8) {
        if let Some(slot) = self.opens.get_mut(self.depth) {
            *slot = (self.i, bracket);
        }
        self.depth += 1;
        self.i += 1;
    }

    fn close(&mut self) {
        self.depth = self.depth.saturating_sub(1);
        self.i += 1;
    }

    /// The error for end of file inside the innermost open bracket.
    fn eof(&self) -> ConfigError {
        let inner = self.depth.checked_sub(1).and_then(|d| self.opens.get(d));
        match inner {
            Some(&(at, b)) => {
                let (line, col) = pos_of(self.text, at);
                self.err(
                    self.i,
                    format_args!(
                        "unexpected end of file (the '{}' at {line}:{col} is not closed)",
                        b as char
                    ),
                )
            }
            None => self.err(self.i, format_args!("unexpected end of file")),
        }
    }

    /// Describes the byte at the cursor for "expected X, got Y" messages.
    fn got(&self) -> Got<'_> {
        Got(self.text.get(self.i..).unwrap_or(&[]))
    }

    /// The error for "expected X here", with hints for common non-JSON habits.
    fn expected(&self, what: fmt::Arguments) -> ConfigError {
        match self.peek() {
            None => self.eof(),
            Some(b'/' | b'#') => self.err(
                self.i,
                format_args!("JSON does not allow comments (expected {what})"),
            ),
            _ => self.err(self.i, format_args!("expected {what}, got {}", self.got())),
        }
    }

    /// The error for a position where a value should start but none does.
    fn bad_value(&self, what: fmt::Arguments) -> ConfigError {
        let rest = self.text.get(self.i..).unwrap_or(&[]);
        match self.peek() {
            None => self.eof(),
            Some(b'\'') => self.err(
                self.i,
                format_args!("JSON strings need double quotes, not single quotes (in {what})"),
            ),
            Some(c) if c.is_ascii_alphabetic() => {
                let n = rest
                    .iter()
                    .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
                    .count();
                self.err(
                    self.i,
                    format_args!(
                        "unexpected {} (text needs double quotes; booleans are true or false)",
                        Shown(rest.get(..n).unwrap_or(rest))
                    ),
                )
            }
            _ => self.expected(format_args!("a value for {what}")),
        }
    }

    /// What JSON value starts at the cursor.
    fn found(&self) -> Found {
        let rest = self.text.get(self.i..).unwrap_or(&[]);
        let word_ends = |n: usize| {
            !rest
                .get(n)
                .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
        };
        match rest.first() {
            Some(b'{') => Found::Object,
            Some(b'[') => Found::Array,
            Some(b'"') => Found::String,
            Some(b'-' | b'0'..=b'9') => Found::Number,
            _ if rest.starts_with(b"true") && word_ends(4) => Found::True,
            _ if rest.starts_with(b"false") && word_ends(5) => Found::False,
            _ if rest.starts_with(b"null") && word_ends(4) => Found::Null,
            _ => Found::Nothing,
        }
    }

    /// Scans the string at the cursor (which is on its opening quote). Rejects what JSON
    /// rejects (raw control characters, bad escapes, invalid UTF-8) plus surrogate escapes
    /// (`unescape` reads one `\uXXXX` as one character, as serde-json-core did) and NUL (paths
    /// and argv are C strings).
    pub fn string(&mut self) -> Result<StrTok, ConfigError> {
        let open = self.i;
        self.i += 1;
        let start = self.i;
        let mut len = 0usize;
        let mut escaped = false;
        loop {
            let Some(c) = self.peek() else {
                return Err(self.err(open, format_args!("unterminated string (no closing '\"')")));
            };
            match c {
                b'"' => {
                    let tok = StrTok {
                        raw: (start, self.i),
                        len,
                        escaped,
                    };
                    self.i += 1;
                    return Ok(tok);
                }
                b'\\' => {
                    escaped = true;
                    len += self.escape()?;
                }
                b'\n' | b'\r' => {
                    return Err(self.err(
                        open,
                        format_args!("string not closed before the end of its line (missing '\"')"),
                    ));
                }
                0..=0x1f => {
                    return Err(self.err(
                        self.i,
                        format_args!(
                            "control character (byte 0x{c:02x}) in a string; write it as an escape such as \\t"
                        ),
                    ));
                }
                0x80.. => {
                    let width = match c {
                        0xC2..=0xDF => 2,
                        0xE0..=0xEF => 3,
                        0xF0..=0xF4 => 4,
                        _ => 0,
                    };
                    let ok = width > 0
                        && self
                            .text
                            .get(self.i..self.i + width)
                            .is_some_and(|s| core::str::from_utf8(s).is_ok());
                    if !ok {
                        return Err(self.err(
                            self.i,
                            format_args!("invalid UTF-8 in a string (the config must be UTF-8)"),
                        ));
                    }
                    self.i += width;
                    len += width;
                }
                _ => {
                    self.i += 1;
                    len += 1;
                }
            }
        }
    }

    /// Scans one escape (cursor on the backslash); returns its unescaped length in bytes.
    fn escape(&mut self) -> Result<usize, ConfigError> {
        let at = self.i;
        let Some(c) = self.peek_at(at + 1) else {
            return Err(self.err(at, format_args!("unterminated string (no closing '\"')")));
        };
        match c {
            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {
                self.i += 2;
                Ok(1)
            }
            b'u' => {
                let hex = self
                    .text
                    .get(at + 2..at + 6)
                    .and_then(|h| core::str::from_utf8(h).ok())
                    .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
                    .and_then(|h| u32::from_str_radix(h, 16).ok());
                let Some(cp) = hex else {
                    return Err(self.err(
                        at,
                        format_args!("invalid escape: \\u needs four hex digits"),
                    ));
                };
                if cp == 0 {
                    return Err(
                        self.err(at, format_args!("strings must not contain NUL (\\u0000)"))
                    );
                }
                let Some(ch) = char::from_u32(cp) else {
                    return Err(self.err(
                        at,
                        format_args!(
                            "\\u{cp:04X} is half of a surrogate pair, which is not supported; write the character itself (UTF-8)"
                        ),
                    ));
                };
                self.i += 6;
                Ok(ch.len_utf8())
            }
            _ => Err(self.err(
                at,
                format_args!(
                    "invalid escape {} (JSON allows \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)",
                    Shown(self.text.get(at..at + 2).unwrap_or(&[]))
                ),
            )),
        }
    }

    /// Scans the number at the cursor with JSON's grammar.
    pub fn number(&mut self) -> Result<NumTok, ConfigError> {
        let start = self.i;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.i += 1;
        }
        let mut int: Option<i64> = Some(0);
        match self.peek() {
            Some(b'0') => {
                self.i += 1;
                if self.peek().is_some_and(|b| b.is_ascii_digit()) {
                    return Err(
                        self.err(start, format_args!("numbers must not have leading zeros"))
                    );
                }
            }
            Some(b'1'..=b'9') => {
                while let Some(d @ b'0'..=b'9') = self.peek() {
                    let d = i64::from(d - b'0');
                    // Accumulate negatively for negative numbers so i64::MIN fits.
                    int = int.and_then(|n| n.checked_mul(10)).and_then(|n| {
                        if negative {
                            n.checked_sub(d)
                        } else {
                            n.checked_add(d)
                        }
                    });
                    self.i += 1;
                }
            }
            _ => return Err(self.bad_number(start)),
        }
        let mut fractional = false;
        if self.peek() == Some(b'.') {
            self.i += 1;
            self.digits(start)?;
            fractional = true;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            self.digits(start)?;
            fractional = true;
        }
        if self
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
        {
            return Err(self.bad_number(start));
        }
        Ok(NumTok {
            start,
            end: self.i,
            fractional,
            int: if fractional { None } else { int },
        })
    }

    /// Skips one or more digits (a fraction's or an exponent's); none is a bad number that
    /// started at `start`.
    fn digits(&mut self, start: usize) -> Result<(), ConfigError> {
        if !self.peek().is_some_and(|b| b.is_ascii_digit()) {
            return Err(self.bad_number(start));
        }
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.i += 1;
        }
        Ok(())
    }

    /// The error for a malformed number starting at `start` ("64k", "0x10", "1.", "-").
    fn bad_number(&self, start: usize) -> ConfigError {
        let rest = self.text.get(start..).unwrap_or(&[]);
        let n = rest
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'+' | b'-'))
            .count();
        self.err(
            start,
            format_args!(
                "invalid number {} (numbers are plain decimal digits: no units, no hex)",
                Shown(rest.get(..n).unwrap_or(rest))
            ),
        )
    }

    /// True (and the container closed) when the cursor is on `close` ('}' or ']'); Err if a
    /// comma, at `comma`, came right before it.
    fn container_ends(&mut self, close: u8, comma: Option<usize>) -> Result<bool, ConfigError> {
        if self.peek() != Some(close) {
            return Ok(false);
        }
        if let Some(at) = comma {
            return Err(self.err(
                at,
                format_args!(
                    "trailing comma before '{}' (JSON does not allow one)",
                    close as char
                ),
            ));
        }
        self.close();
        Ok(true)
    }

    /// Scans an object of `place`'s schema (cursor on '{'), recording slots in `lay`.
    fn object(&mut self, lay: &mut Layout, place: Place) -> Result<(), ConfigError> {
        let table = match place {
            Place::Top => schema::TOP,
            Place::Rule(_) => schema::RULE,
        };
        self.open(b'{');
        let mut comma: Option<usize> = None;
        loop {
            self.skip_ws();
            match self.peek() {
                Some(b'}') => {
                    self.container_ends(b'}', comma)?;
                    return Ok(());
                }
                Some(b'"') => {}
                Some(b'\'') => {
                    return Err(self.err(
                        self.i,
                        format_args!("JSON keys need double quotes, not single quotes"),
                    ));
                }
                _ => return Err(self.expected(format_args!("a key in double quotes or '}}'"))),
            }
            let key_at = self.i;
            let key = self.string()?;
            let name = self.text.get(key.raw.0..key.raw.1).unwrap_or(&[]);
            if key.escaped {
                return Err(self.err(
                    key_at,
                    format_args!("keys must be plain text, without escapes"),
                ));
            }
            let Some(k) = schema::index_of(table, name) else {
                return Err(self.unknown_key(key_at, name, place, table));
            };
            let spec = table.get(k).copied().unwrap_or(KeySpec {
                name: "?",
                kind: Kind::Bool,
            });
            let slots: &mut [Option<Slot>] = match place {
                Place::Top => &mut lay.top,
                Place::Rule(r) => match lay.rules.get_mut(r) {
                    Some(rule) => &mut rule.keys,
                    None => &mut [],
                },
            };
            if let Some(Some(first)) = slots.get(k) {
                let (line, col) = pos_of(self.text, first.key);
                return Err(self.err(
                    key_at,
                    format_args!(
                        "duplicate key {} (first set at {line}:{col})",
                        KeyAt(spec.name, place)
                    ),
                ));
            }
            self.skip_ws();
            if self.peek() != Some(b':') {
                return Err(self.expected(format_args!("':' after key \"{}\"", spec.name)));
            }
            self.i += 1;
            self.skip_ws();
            let val_at = self.i;
            let is_null = self.value(lay, place, spec)?;
            let slot = Slot {
                key: key_at,
                val: val_at,
                end: self.i,
                is_null,
            };
            let slots: &mut [Option<Slot>] = match place {
                Place::Top => &mut lay.top,
                Place::Rule(r) => match lay.rules.get_mut(r) {
                    Some(rule) => &mut rule.keys,
                    None => &mut [],
                },
            };
            if let Some(s) = slots.get_mut(k) {
                *s = Some(slot);
            }
            self.skip_ws();
            match self.peek() {
                Some(b',') => comma = Some(self.i),
                Some(b'}') => comma = None,
                Some(b'"') => {
                    return Err(self.err(
                        self.i,
                        format_args!(
                            "expected ',' or '}}' after the value of {}, got '\"' (missing ','?)",
                            KeyAt(spec.name, place)
                        ),
                    ));
                }
                _ => {
                    return Err(self.expected(format_args!(
                        "',' or '}}' after the value of {}",
                        KeyAt(spec.name, place)
                    )));
                }
            }
            if comma.is_some() {
                self.i += 1;
            }
        }
    }

    fn unknown_key(&self, at: usize, name: &[u8], place: Place, table: &[KeySpec]) -> ConfigError {
        struct Keys<'t>(&'t [KeySpec]);
        impl fmt::Display for Keys<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                for (i, k) in self.0.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    f.write_str(k.name)?;
                }
                Ok(())
            }
        }
        match place {
            Place::Top => self.err(
                at,
                format_args!(
                    "unknown key {} (expected one of: {})",
                    Shown(name),
                    Keys(table)
                ),
            ),
            Place::Rule(r) => self.err(
                at,
                format_args!(
                    "unknown key {} in rules[{r}] (expected one of: {})",
                    Shown(name),
                    Keys(table)
                ),
            ),
        }
    }

    fn type_error(&self, what: &dyn fmt::Display, expected: &str, found: Found) -> ConfigError {
        if found == Found::Nothing {
            return self.bad_value(format_args!("{what}"));
        }
        self.err(
            self.i,
            format_args!("{what} must be {expected}, got {}", found.describe()),
        )
    }

    /// Scans the value of a key with `spec` at the cursor; returns whether it was null.
    fn value(
        &mut self,
        lay: &mut Layout,
        place: Place,
        spec: KeySpec,
    ) -> Result<bool, ConfigError> {
        let what = KeyAt(spec.name, place);
        let found = self.found();
        if found == Found::Null {
            self.i += 4;
            return Ok(true);
        }
        match spec.kind {
            Kind::Int { min, max } => match found {
                Found::Number => {
                    let n = self.number()?;
                    let token = self.text.get(n.start..n.end).unwrap_or(&[]);
                    if n.fractional {
                        return Err(self.err(
                            n.start,
                            format_args!("{what} must be a whole number, got {}", Tok(token)),
                        ));
                    }
                    if n.int.is_none() {
                        return Err(self.err(
                            n.start,
                            format_args!(
                                "{what} must be between {min} and {max}, got {}",
                                Tok(token)
                            ),
                        ));
                    }
                }
                Found::String => {
                    let at = self.i;
                    let tok = self.string()?;
                    let inner = self.text.get(tok.raw.0..tok.raw.1).unwrap_or(&[]);
                    let numeric = !inner.is_empty() && inner.iter().all(|b| b.is_ascii_digit());
                    return Err(self.err(
                        at,
                        format_args!(
                            "{what} must be a number, got a string{}",
                            if numeric { " (remove the quotes)" } else { "" }
                        ),
                    ));
                }
                _ => return Err(self.type_error(&what, "a number", found)),
            },
            Kind::Bool => match found {
                Found::True => self.i += 4,
                Found::False => self.i += 5,
                _ => return Err(self.type_error(&what, "true or false", found)),
            },
            Kind::Str { cap } => match found {
                Found::String => self.bounded_string(&what, cap)?,
                _ => return Err(self.type_error(&what, "a string", found)),
            },
            Kind::Signal => match found {
                Found::String => self.bounded_string(&what, schema::WORD_CAP)?,
                Found::Number => {
                    let n = self.number()?;
                    if n.int.is_none() {
                        let token = self.text.get(n.start..n.end).unwrap_or(&[]);
                        return Err(self.err(
                            n.start,
                            format_args!(
                                "{what} must be a signal number from 1 to {}, got {}",
                                schema::MAX_SIGNAL,
                                Tok(token)
                            ),
                        ));
                    }
                }
                _ => return Err(self.type_error(&what, spec.kind.expected(), found)),
            },
            Kind::StrList { cap, max_items } => match (found, place) {
                (Found::Array, Place::Rule(r)) => {
                    self.str_list(lay, List::Argv(r), cap, max_items)?
                }
                (Found::Array, Place::Top) => self.str_list(lay, List::Protect, cap, max_items)?,
                _ => return Err(self.type_error(&what, spec.kind.expected(), found)),
            },
            Kind::Rules { max_items } => match found {
                Found::Array => self.rules(lay, max_items)?,
                _ => return Err(self.type_error(&what, spec.kind.expected(), found)),
            },
        }
        Ok(false)
    }

    /// Scans a string that must fit `cap` bytes once unescaped.
    fn bounded_string(&mut self, what: &dyn fmt::Display, cap: usize) -> Result<(), ConfigError> {
        let at = self.i;
        let tok = self.string()?;
        if tok.len > cap {
            return Err(self.err(
                at,
                format_args!("{what} is too long ({} bytes; at most {cap})", tok.len),
            ));
        }
        Ok(())
    }

    /// Scans a string array (cursor on '['): a rule's argv or the top-level `protect`,
    /// recording each item's position.
    fn str_list(
        &mut self,
        lay: &mut Layout,
        list: List,
        cap: usize,
        max_items: usize,
    ) -> Result<(), ConfigError> {
        self.open(b'[');
        let mut n = 0usize;
        let mut comma: Option<usize> = None;
        loop {
            self.skip_ws();
            if self.container_ends(b']', comma)? {
                return Ok(());
            }
            if n > 0 && comma.is_none() {
                return Err(self.expected(format_args!("',' or ']' after {list}[{}]", n - 1)));
            }
            if n == max_items {
                return Err(match list {
                    List::Argv(r) => self.err(
                        self.i,
                        format_args!(
                            "too many items in \"argv\" in rules[{r}] (at most {max_items})"
                        ),
                    ),
                    List::Protect => self.err(
                        self.i,
                        format_args!("too many items in \"protect\" (at most {max_items})"),
                    ),
                });
            }
            let found = self.found();
            if found != Found::String {
                return Err(self.type_error(&format_args!("{list}[{n}]"), "a string", found));
            }
            let slot = match list {
                List::Argv(r) => lay.rules.get_mut(r).and_then(|rule| rule.argv.get_mut(n)),
                List::Protect => lay.protect.get_mut(n),
            };
            if let Some(slot) = slot {
                *slot = self.i;
            }
            self.bounded_string(&format_args!("{list}[{n}]"), cap)?;
            n += 1;
            match list {
                List::Argv(r) => {
                    if let Some(rule) = lay.rules.get_mut(r) {
                        rule.n_argv = n;
                    }
                }
                List::Protect => lay.n_protect = n,
            }
            self.skip_ws();
            comma = None;
            if self.peek() == Some(b',') {
                comma = Some(self.i);
                self.i += 1;
            }
        }
    }

    /// Scans the rules array (cursor on '[').
    fn rules(&mut self, lay: &mut Layout, max_items: usize) -> Result<(), ConfigError> {
        self.open(b'[');
        let mut comma: Option<usize> = None;
        loop {
            self.skip_ws();
            if self.container_ends(b']', comma)? {
                return Ok(());
            }
            let n = lay.n_rules;
            if n > 0 && comma.is_none() {
                return Err(self.expected(format_args!("',' or ']' after rules[{}]", n - 1)));
            }
            if n == max_items {
                return Err(self.err(self.i, format_args!("too many rules (at most {max_items})")));
            }
            let found = self.found();
            if found != Found::Object {
                return Err(self.type_error(&format_args!("rules[{n}]"), "an object", found));
            }
            if let Some(rule) = lay.rules.get_mut(n) {
                rule.start = self.i;
            }
            lay.n_rules += 1;
            self.object(lay, Place::Rule(n))?;
            if let Some(rule) = lay.rules.get_mut(n) {
                rule.end = self.i;
            }
            self.skip_ws();
            comma = None;
            if self.peek() == Some(b',') {
                comma = Some(self.i);
                self.i += 1;
            }
        }
    }
}

/// The unparsed text of a number token, for messages (bounded like `Shown`, without quotes).
struct Tok<'a>(&'a [u8]);

impl fmt::Display for Tok<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Number tokens are ASCII by construction.
        let s = core::str::from_utf8(self.0).unwrap_or("?");
        match s.get(..40) {
            Some(head) if s.len() > 40 => write!(f, "{head}..."),
            _ => f.write_str(s),
        }
    }
}

/// Describes the text at a position: `'x'`, `'é'`, `a newline`, `byte 0xff`, `end of file`.
struct Got<'a>(&'a [u8]);

impl fmt::Display for Got<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(&b) = self.0.first() else {
            return f.write_str("end of file");
        };
        match b {
            b'\n' | b'\r' => f.write_str("end of line"),
            b'\'' => f.write_str("\"'\""),
            0x21..=0x7e => write!(f, "'{}'", b as char),
            0x80.. => {
                let head = self.0.get(..4).unwrap_or(self.0);
                match head
                    .utf8_chunks()
                    .next()
                    .and_then(|c| c.valid().chars().next())
                {
                    Some(c) if !c.is_control() => write!(f, "'{c}'"),
                    _ => write!(f, "byte 0x{b:02x}"),
                }
            }
            _ => write!(f, "byte 0x{b:02x}"),
        }
    }
}

/// Unescapes a JSON string body (as validated by `Scanner::string`) into `out`; returns the
/// bytes written, or None if it does not fit. Stops at the end of `raw` or at an unescaped '"'
/// (the closing quote, when `raw` runs on past the body), so it also reads a string straight
/// from the text at its opening quote + 1 (`string_at`).
///
/// The escapes are JSON's: `\" \\ \/ \b \f \n \r \t` and `\uXXXX` as that one character in
/// UTF-8 (a surrogate half is no character: None, but the scan refuses those before).
pub fn unescape<'o>(raw: &[u8], out: &'o mut [u8]) -> Option<&'o [u8]> {
    let mut n = 0;
    let mut i = 0;
    while let Some(&c) = raw.get(i) {
        i += 1;
        let mut tmp = [0u8; 4];
        let bytes: &[u8] = match c {
            b'"' => break,
            b'\\' => {
                let e = *raw.get(i)?;
                i += 1;
                let ch = match e {
                    b'b' => '\x08',
                    b'f' => '\x0c',
                    b'n' => '\n',
                    b'r' => '\r',
                    b't' => '\t',
                    b'u' => {
                        let hex = raw.get(i..i + 4)?;
                        i += 4;
                        let cp = hex
                            .iter()
                            .try_fold(0u32, |cp, &h| Some(cp << 4 | char::from(h).to_digit(16)?))?;
                        char::from_u32(cp)?
                    }
                    // '"', '\\' and '/' stand for themselves (the scan allows no others).
                    other => char::from(other),
                };
                ch.encode_utf8(&mut tmp).as_bytes()
            }
            _ => core::slice::from_ref(&c),
        };
        out.get_mut(n..n + bytes.len())?.copy_from_slice(bytes);
        n += bytes.len();
    }
    out.get(..n)
}

/// The string whose opening quote is at `at` in `text` (a string the scan accepted), unescaped.
/// None if it is longer than `MAX_STR` bytes once unescaped (the scan caps every string the
/// config holds at that) or is not a string the scan accepted.
pub fn string_at(text: &[u8], at: usize) -> Option<super::Str> {
    let mut buf = [0u8; super::MAX_STR];
    let body = text.get(at..)?.strip_prefix(b"\"")?;
    let bytes = unescape(body, &mut buf)?;
    super::Str::try_from(core::str::from_utf8(bytes).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> (u32, u32, std::string::String) {
        match scan(text.as_bytes()) {
            Ok(_) => panic!("scan accepted {text:?}"),
            Err(e) => (e.line, e.col, e.msg.as_str().to_owned()),
        }
    }

    #[test]
    fn positions_count_lines_and_characters() {
        let t = "ab\ncdé\nxyz".as_bytes();
        assert_eq!(pos_of(t, 0), (1, 1));
        assert_eq!(pos_of(t, 1), (1, 2));
        assert_eq!(pos_of(t, 3), (2, 1));
        // 'é' is two bytes but one column.
        assert_eq!(pos_of(t, 8), (3, 1));
        assert_eq!(pos_of(t, 7), (2, 4));
        assert_eq!(pos_of(t, 999), (3, 4));
        let bom = b"\xEF\xBB\xBF{}";
        assert_eq!(pos_of(bom, 3), (1, 1));
    }

    #[test]
    fn empty_and_whitespace_are_valid() {
        assert!(scan(b"").unwrap().empty);
        assert!(scan(b" \n\t\r\n").unwrap().empty);
        assert!(!scan(b"{}").unwrap().empty);
        assert!(scan(b"\xEF\xBB\xBF{}").is_ok());
    }

    #[test]
    fn records_slots() {
        let t = "{\n  \"interval_ms\": 500,\n  \"rules\": [ {\"name\": \"a\", \"argv\": [\"x\", \"y\"]} ]\n}";
        let lay = scan(t.as_bytes()).unwrap();
        let s = lay.top("interval_ms").unwrap();
        assert_eq!(pos_of(t.as_bytes(), s.key), (2, 3));
        assert_eq!(pos_of(t.as_bytes(), s.val), (2, 18));
        assert_eq!(&t[s.val..s.end], "500");
        assert_eq!(lay.n_rules, 1);
        let n = lay.rule_key(0, "name").unwrap();
        assert_eq!(&t[n.val..n.end], "\"a\"");
        assert_eq!(&t[lay.rules[0].argv[1]..lay.rules[0].argv[1] + 3], "\"y\"");
        assert!(lay.rule_key(0, "comm").is_none());
    }

    #[test]
    fn null_counts_as_absent_but_is_recorded() {
        let lay = scan(br#"{"status_file": null}"#).unwrap();
        assert!(lay.top("status_file").is_none());
        let i = schema::index_of(schema::TOP, b"status_file").unwrap();
        assert!(lay.top[i].unwrap().is_null);
        assert!(
            err(r#"{"status_file": null, "status_file": "/x"}"#)
                .2
                .starts_with("duplicate")
        );
    }

    #[test]
    fn syntax_errors_have_positions() {
        assert_eq!(
            err("{\n  \"interval_ms\": 5\n  \"dry_run\": true\n}"),
            (
                3,
                3,
                "expected ',' or '}' after the value of \"interval_ms\", got '\"' (missing ','?)"
                    .into()
            )
        );
        assert_eq!(
            err("{\"dry_run\": true,}"),
            (
                1,
                17,
                "trailing comma before '}' (JSON does not allow one)".into()
            )
        );
        assert_eq!(
            err("{\"dry_run\": true"),
            (
                1,
                17,
                "unexpected end of file (the '{' at 1:1 is not closed)".into()
            )
        );
        assert_eq!(
            err("{} x"),
            (
                1,
                4,
                "unexpected text after the end of the config object".into()
            )
        );
        assert_eq!(
            err("{ // hi\n}"),
            (
                1,
                3,
                "JSON does not allow comments (expected a key in double quotes or '}')".into()
            )
        );
        assert_eq!(
            err("{\"dry_run\": yes}"),
            (
                1,
                13,
                "unexpected \"yes\" (text needs double quotes; booleans are true or false)".into()
            )
        );
        assert_eq!(
            err("{\"syslog\": \"abc\n\"}"),
            (
                1,
                12,
                "string not closed before the end of its line (missing '\"')".into()
            )
        );
        assert_eq!(
            err("[1]"),
            (
                1,
                1,
                "the config must be a JSON object ({ ... }), got an array".into()
            )
        );
        assert_eq!(
            err("{'dry_run': true}"),
            (
                1,
                2,
                "JSON keys need double quotes, not single quotes".into()
            )
        );
    }

    #[test]
    fn numbers_follow_json_grammar() {
        let num = |t: &str| Scanner::new(t.as_bytes()).number();
        assert_eq!(num("123").unwrap().int, Some(123));
        assert_eq!(num("-1000").unwrap().int, Some(-1000));
        assert_eq!(num("-9223372036854775808").unwrap().int, Some(i64::MIN));
        assert_eq!(num("9223372036854775808").unwrap().int, None);
        assert!(num("1.5").unwrap().fractional);
        assert!(num("1e3").unwrap().fractional);
        assert!(num("0").is_ok());
        for bad in ["01", "-", "1.", "1e", "64k", "0x10", "1.2.3", "-a"] {
            assert!(num(bad).is_err(), "{bad} accepted");
        }
        assert_eq!(
            err("{\"interval_ms\": 64k}").2,
            "invalid number \"64k\" (numbers are plain decimal digits: no units, no hex)"
        );
    }

    #[test]
    fn strings_are_checked_and_measured() {
        let s = |t: &str| Scanner::new(t.as_bytes()).string();
        assert_eq!(s(r#""abc""#).unwrap().len, 3);
        assert_eq!(s(r#""a\nb""#).unwrap().len, 3);
        assert_eq!(s(r#""\u00e9""#).unwrap().len, 2);
        assert_eq!(s("\"é\"").unwrap().len, 2);
        assert!(s(r#""\ud83d\ude00""#).is_err());
        assert!(s(r#""\u0000""#).is_err());
        assert!(s(r#""\x""#).is_err());
        assert!(s(r#""\u12""#).is_err());
        assert!(s("\"a\tb\"").is_err());
        assert!(s("\"abc").is_err());
        assert!(Scanner::new(b"\"\xff\"").string().is_err());
        assert!(Scanner::new(b"\"\xc3\"").string().is_err());
        assert!(Scanner::new(b"\"\xed\xa0\x80\"").string().is_err());
    }

    #[test]
    fn unescape_matches_measured_length() {
        for raw in [r"abc", r"a\nb\t\\\/\u00e9\u4e2d", r#"q\"q"#, "é"] {
            let quoted = format!("\"{raw}\"");
            let tok = Scanner::new(quoted.as_bytes()).string().unwrap();
            let mut buf = [0u8; 64];
            let out = unescape(raw.as_bytes(), &mut buf).unwrap();
            assert_eq!(out.len(), tok.len, "{raw}");
        }
        let mut small = [0u8; 2];
        assert!(unescape(b"abc", &mut small).is_none());
    }

    #[test]
    fn schema_errors() {
        assert_eq!(
            err(r#"{"rules": [{"trigerr": "ghost"}]}"#).2,
            "unknown key \"trigerr\" in rules[0] (expected one of: name, trigger, comm, exe, uid, user, action, argv, sysctl, value, rcvbuf, signal, timeout_s, escalate_after_s, eta_s)"
        );
        assert_eq!(
            err(r#"{"interval_ms": "1000"}"#).2,
            "\"interval_ms\" must be a number, got a string (remove the quotes)"
        );
        assert_eq!(
            err(r#"{"dry_run": 1}"#).2,
            "\"dry_run\" must be true or false, got a number"
        );
        assert_eq!(
            err(r#"{"rules": [{"argv": ["a", 2]}]}"#).2,
            "rules[0].argv[1] must be a string, got a number"
        );
        assert_eq!(
            err(r#"{"rules": [{"comm": "0123456789abcdef"}]}"#).2,
            "\"comm\" in rules[0] is too long (16 bytes; at most 15)"
        );
        assert_eq!(
            err(r#"{"rules": ["x"]}"#).2,
            "rules[0] must be an object, got a string"
        );
        let many = format!("{{\"rules\": [{}]}}", ["{}"; 17].join(","));
        assert_eq!(err(&many).2, "too many rules (at most 16)");
        let argv = format!(
            "{{\"rules\": [{{\"argv\": [{}]}}]}}",
            ["\"a\""; 9].join(",")
        );
        assert_eq!(
            err(&argv).2,
            "too many items in \"argv\" in rules[0] (at most 8)"
        );
        assert_eq!(
            err("{\"interval_ms\": 1,\n \"interval_ms\": 2}"),
            (
                2,
                2,
                "duplicate key \"interval_ms\" (first set at 1:2)".into()
            )
        );
        assert_eq!(
            err(r#"{"interval_ms": 99999999999999999999}"#).2,
            "\"interval_ms\" must be between 10 and 3600000, got 99999999999999999999"
        );
        assert_eq!(
            err(r#"{"interval_ms": 1.5}"#).2,
            "\"interval_ms\" must be a whole number, got 1.5"
        );
    }

    #[test]
    fn shown_truncates_and_escapes() {
        let long = "x".repeat(100);
        assert_eq!(
            format!("{}", Shown(long.as_bytes())),
            format!("\"{}...\"", "x".repeat(40))
        );
        assert_eq!(format!("{}", Shown(b"a\nb\"\xff")), "\"a\\nb\\\"\\xff\"");
    }
}
