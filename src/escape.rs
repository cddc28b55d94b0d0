//! Bytes other processes control (process names, socket paths, config text) are escaped for the
//! format they land in, by one escaper per format: JSON (`report --json` and the status file)
//! and terminal text (`Printable`, the human report) here, logfmt in `audit::write_value` (the
//! audit line's own module), config error messages in `config::scan::Shown` (quoted and cut).

use core::fmt::{self, Write as _};

/// Displays bytes as a quoted JSON string: `"` and `\` escaped, control characters (and DEL)
/// as \u00XX (\n, \t, \r by name), invalid UTF-8 replaced by \ufffd. Never allocates.
pub struct JsonStr<'a>(pub &'a [u8]);

impl fmt::Display for JsonStr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_char('"')?;
        for chunk in self.0.utf8_chunks() {
            escape_json(f, chunk.valid())?;
            if !chunk.invalid().is_empty() {
                f.write_str("\\ufffd")?;
            }
        }
        f.write_char('"')
    }
}

/// Displays any `Display` value (an address, a socket path) as a quoted JSON string, escaped
/// like `JsonStr`, without rendering it into a buffer first.
pub struct JsonText<'a>(pub &'a dyn fmt::Display);

impl fmt::Display for JsonText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_char('"')?;
        write!(JsonEscaping(f), "{}", self.0)?;
        f.write_char('"')
    }
}

/// Routes `fmt::Write` text through the JSON escaper.
struct JsonEscaping<'a, 'b>(&'a mut fmt::Formatter<'b>);

impl fmt::Write for JsonEscaping<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        escape_json(self.0, s)
    }
}

fn escape_json(w: &mut dyn fmt::Write, s: &str) -> fmt::Result {
    let mut start = 0;
    for (i, &c) in s.as_bytes().iter().enumerate() {
        let esc = match c {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\t' => "\\t",
            b'\r' => "\\r",
            0..=0x1f | 0x7f => "",
            _ => continue,
        };
        // `i` is an ASCII byte, so both cuts fall on char boundaries.
        w.write_str(s.get(start..i).unwrap_or(""))?;
        if esc.is_empty() {
            write!(w, "\\u{c:04x}")?;
        } else {
            w.write_str(esc)?;
        }
        start = i + 1;
    }
    w.write_str(s.get(start..).unwrap_or(""))
}

/// Process names for people: control characters as \xNN (and `\` as `\\`, so the escape is
/// unambiguous), invalid UTF-8 as U+FFFD: a comm can never move the cursor or recolour the terminal.
pub struct Printable<'a>(pub &'a [u8]);

impl fmt::Display for Printable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chunk in self.0.utf8_chunks() {
            for c in chunk.valid().chars() {
                if c == '\\' {
                    f.write_str("\\\\")?;
                } else if c.is_control() {
                    write!(f, "\\x{:02x}", c as u32)?;
                } else {
                    fmt::Write::write_char(f, c)?;
                }
            }
            if !chunk.invalid().is_empty() {
                f.write_str("\u{FFFD}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(s: &[u8]) -> String {
        JsonStr(s).to_string()
    }

    #[test]
    fn escapes_everything_a_comm_can_hold() {
        assert_eq!(esc(b"zebra"), "\"zebra\"");
        assert_eq!(esc(b"a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(
            esc(b"x\ny\tz\x01\x1b\x7f"),
            "\"x\\ny\\tz\\u0001\\u001b\\u007f\""
        );
        assert_eq!(esc(b"\xff\xfeok"), "\"\\ufffd\\ufffdok\"");
        assert_eq!(esc("pré".as_bytes()), "\"pré\"");
        assert_eq!(esc(b""), "\"\"");
    }

    #[test]
    fn display_values_are_escaped_too() {
        let v = format_args!("/run/a\"b\n{}", 1);
        assert_eq!(JsonText(&v).to_string(), r#""/run/a\"b\n1""#);
    }
}
