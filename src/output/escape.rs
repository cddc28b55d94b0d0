//! Bytes other processes control (process names, socket paths, config text) are escaped for the
//! format they land in, by one escaper per format: JSON (`report --json` and the status file)
//! and terminal text (`Printable`, the human report) here, logfmt in `audit::write_value` (the
//! audit line's own module), config error messages in `config::scan::Shown` (quoted and cut).

use core::fmt::{self, Write as _};

/// True for a character no untrusted text may put on an operator's screen or in a log as is:
/// controls (C0, DEL, C1), the line and paragraph separators (U+2028, U+2029, which end a line
/// for many log viewers and JavaScript), the bidirectional overrides, embeddings and isolates
/// (U+202A–U+202E, U+2066–U+2069, U+200E/F, U+061C: they reorder what follows, so `abc` can be
/// shown as `cba`), and the other invisible format characters and odd spaces (zero-width
/// joiners, U+FEFF, word joiners, tag characters, no-break and typographic spaces) that make
/// two different names look alike. Every escaper below escapes exactly these (plus its own
/// syntax characters).
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{00A0}' | '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}'
            | '\u{1680}' | '\u{17B4}' | '\u{17B5}' | '\u{180B}'..='\u{180F}'
            | '\u{2000}'..='\u{200F}' | '\u{2028}'..='\u{202F}' | '\u{205F}'..='\u{206F}'
            | '\u{3000}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFFB}' | '\u{FFFE}' | '\u{FFFF}'
            | '\u{0600}'..='\u{0605}' | '\u{06DD}' | '\u{070F}' | '\u{0890}' | '\u{0891}'
            | '\u{08E2}' | '\u{110BD}' | '\u{110CD}' | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}' | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}')
}

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
    for (i, c) in s.char_indices() {
        let esc = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\t' => "\\t",
            '\r' => "\\r",
            c if is_unsafe_char(c) => "",
            _ => continue,
        };
        // `i` starts a char, so both cuts fall on char boundaries.
        w.write_str(s.get(start..i).unwrap_or(""))?;
        if esc.is_empty() {
            // \uXXXX, as a surrogate pair above the BMP (tag characters).
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                write!(w, "\\u{u:04x}")?;
            }
        } else {
            w.write_str(esc)?;
        }
        start = i + c.len_utf8();
    }
    w.write_str(s.get(start..).unwrap_or(""))
}

/// Process names for people: control characters as \xNN, the other unsafe characters
/// (`is_unsafe_char`: separators, bidi overrides, invisibles) as \u{XXXX} (and `\` as `\\`, so
/// the escape is unambiguous), invalid UTF-8 as U+FFFD: a comm can never move the cursor,
/// recolour the terminal, reorder the text after it or pass for another name.
pub struct Printable<'a>(pub &'a [u8]);

impl fmt::Display for Printable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chunk in self.0.utf8_chunks() {
            for c in chunk.valid().chars() {
                if c == '\\' {
                    f.write_str("\\\\")?;
                } else if c.is_control() && (c as u32) < 0x100 {
                    write!(f, "\\x{:02x}", c as u32)?;
                } else if is_unsafe_char(c) {
                    write!(f, "\\u{{{:04x}}}", c as u32)?;
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
        assert_eq!(
            esc("a\u{2028}b\u{202e}c".as_bytes()),
            r#""a\u2028b\u202ec""#
        );
        assert_eq!(esc("tag\u{E0041}".as_bytes()), r#""tag\udb40\udc41""#);
        assert_eq!(
            Printable("a\u{2029}b\u{202e}c\n".as_bytes()).to_string(),
            r"a\u{2029}b\u{202e}c\x0a"
        );
        assert_eq!(Printable("路由器".as_bytes()).to_string(), "路由器");
        assert_eq!(esc(b""), "\"\"");
    }

    #[test]
    fn display_values_are_escaped_too() {
        let v = format_args!("/run/a\"b\n{}", 1);
        assert_eq!(JsonText(&v).to_string(), r#""/run/a\"b\n1""#);
    }
}
