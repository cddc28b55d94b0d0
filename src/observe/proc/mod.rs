//! Readers for /proc: one streaming line reader over a reused fixed buffer, and the
//! parsers that turn its lines into small validated records.
//!
//! Nothing here allocates per line or per record; malformed input is an `Err`, never a panic.
//! All paths go through `ProcRoot`, so `--proc-root DIR` replaces /proc for every read.

pub mod diag;
pub mod meminfo;
pub mod net;
pub mod netns;
pub mod pid;
pub mod sockstat;
pub mod vmallocinfo;
pub mod zoneinfo;

use crate::sys::{self, CPath, Errno, Fd};
use core::fmt;

/// Where /proc lives: "/proc" on a live box, a fixture tree under `--proc-root`.
#[derive(Clone, Debug)]
pub struct ProcRoot {
    root: CPath,
}

impl ProcRoot {
    /// The live /proc.
    pub fn live() -> ProcRoot {
        ProcRoot {
            root: CPath::from_bytes(b"/proc").expect("static path fits"),
        }
    }

    /// A tree that mirrors /proc (fixtures, chroots). Trailing slashes are dropped.
    pub fn new(dir: &[u8]) -> Result<ProcRoot, Errno> {
        let mut d = dir;
        while d.len() > 1 && d.ends_with(b"/") {
            d = &d[..d.len() - 1];
        }
        if d.is_empty() {
            return Err(libc::EINVAL);
        }
        Ok(ProcRoot {
            root: CPath::from_bytes(d)?,
        })
    }

    /// True when this is the real /proc (not a `--proc-root` tree): only then may the agent
    /// act on processes or write outside the tree.
    pub fn is_live(&self) -> bool {
        self.root.as_bytes() == b"/proc"
    }

    /// The root directory itself.
    pub fn dir(&self) -> &CPath {
        &self.root
    }

    /// `ROOT/rel` (rel without a leading slash, e.g. b"net/udp").
    pub fn path(&self, rel: &[u8]) -> Result<CPath, Errno> {
        let mut p = self.root.clone();
        p.join(rel)?;
        Ok(p)
    }

    /// `ROOT/PID/rel` (rel may be empty for the PID directory itself).
    pub fn pid_path(&self, pid: u32, rel: &[u8]) -> Result<CPath, Errno> {
        let mut p = self.root.clone();
        p.join_u32(pid)?;
        if !rel.is_empty() {
            p.join(rel)?;
        }
        Ok(p)
    }

    /// Opens `ROOT/rel` read-only, without blocking, and only if it is a regular file (every
    /// /proc file is; a FIFO or /dev/zero in a `--proc-root` tree is Err(ENOTREG)).
    pub fn open(&self, rel: &[u8]) -> Result<Fd, Errno> {
        crate::sys::safefile::open_read(&self.path(rel)?)
    }
}

/// Why a /proc read or parse failed. Small and `Copy` so it can be logged from the poll loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcError {
    /// open/read failed with this errno (ENOENT: file absent; EACCES: not permitted).
    Io(Errno),
    /// Line `line` (1-based) is longer than the reader's buffer; it was skipped.
    LineTooLong { line: u32 },
    /// Line `line` (1-based) could not be parsed: `what` says which part.
    Malformed { line: u32, what: &'static str },
    /// A field the caller needs is absent (e.g. meminfo without MemTotal).
    Missing(&'static str),
}

impl fmt::Display for ProcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ProcError::Io(e) => write!(f, "{} (errno {e})", sys::strerror(e)),
            ProcError::LineTooLong { line } => {
                write!(f, "line {line}: longer than the read buffer, skipped")
            }
            ProcError::Malformed { line, what } => write!(f, "line {line}: malformed {what}"),
            ProcError::Missing(what) => write!(f, "missing {what}"),
        }
    }
}

/// A byte source the line reader pulls from: a /proc file, or bytes in memory (tests, fuzzing).
pub trait Source {
    /// Reads up to buf.len() bytes; Ok(0) at end.
    fn read_some(&mut self, buf: &mut [u8]) -> Result<usize, Errno>;
}

impl Source for Fd {
    fn read_some(&mut self, buf: &mut [u8]) -> Result<usize, Errno> {
        self.read(buf)
    }
}

impl Source for &Fd {
    fn read_some(&mut self, buf: &mut [u8]) -> Result<usize, Errno> {
        self.read(buf)
    }
}

/// In-memory bytes as a source. Hands out at most `chunk` bytes per read so tests can
/// exercise lines split across reads.
pub struct SliceSource<'a> {
    data: &'a [u8],
    chunk: usize,
}

impl<'a> SliceSource<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        SliceSource {
            data,
            chunk: usize::MAX,
        }
    }
    pub fn chunked(data: &'a [u8], chunk: usize) -> Self {
        SliceSource {
            data,
            chunk: chunk.max(1),
        }
    }
}

impl Source for SliceSource<'_> {
    fn read_some(&mut self, buf: &mut [u8]) -> Result<usize, Errno> {
        let n = self.data.len().min(buf.len()).min(self.chunk);
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// What `read_lines` saw besides the good lines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinesRead {
    /// Lines that did not parse (or did not fit the buffer).
    pub malformed: u32,
    /// The first of them.
    pub first_malformed: Option<ProcError>,
    /// The read error that ended the file early, and how many lines came before it.
    pub io_error: Option<(Errno, u32)>,
}

impl LinesRead {
    /// For readers that want the whole file or nothing: the malformed-line count of a file read
    /// to its end, Err(Io) if a read error cut it short.
    pub fn whole_file(&self) -> Result<u32, ProcError> {
        match self.io_error {
            Some((e, _)) => Err(ProcError::Io(e)),
            None => Ok(self.malformed),
        }
    }

    /// The first problem of any kind: the first malformed line, else the read error.
    pub fn first_error(&self) -> Option<ProcError> {
        self.first_malformed
            .or(self.io_error.map(|(e, _)| ProcError::Io(e)))
    }
}

/// The one "read a /proc file, count the lines that do not parse" loop: streams `src` through
/// `buf` and hands every line's text to `parse`. A line `parse` rejects (with what was wrong),
/// or one too long for `buf`, is counted and skipped. A read error ends the file; it is
/// returned in `io_error` with the number of lines read before it, so each reader decides
/// whether what came before is worth keeping.
pub fn read_lines<S: Source>(
    src: S,
    buf: &mut [u8],
    parse: &mut dyn FnMut(&[u8]) -> Result<(), &'static str>,
) -> LinesRead {
    let mut out = LinesRead::default();
    let note = |out: &mut LinesRead, e: ProcError| {
        out.malformed = out.malformed.saturating_add(1);
        out.first_malformed.get_or_insert(e);
    };
    let mut r = LineReader::new(src, buf);
    while let Some(line) = r.next_line() {
        match line {
            Ok(l) => {
                let no = l.no;
                if let Err(what) = parse(l.text) {
                    note(&mut out, ProcError::Malformed { line: no, what });
                }
            }
            Err(ProcError::Io(e)) => {
                out.io_error = Some((e, r.line_no()));
                break;
            }
            Err(e) => note(&mut out, e),
        }
    }
    out
}

/// One line handed out by `LineReader`: its 1-based number and its text without the newline.
#[derive(Clone, Copy, Debug)]
pub struct Line<'a> {
    pub no: u32,
    pub text: &'a [u8],
}

/// Streams lines out of a `Source` through one caller-owned buffer.
///
/// The buffer is reused for the whole file (a 7 MB /proc/net/tcp streams through 4 KiB).
/// A line longer than the buffer yields `Err(LineTooLong)` once and is skipped; reading
/// then goes on at the next line. A last line without a newline is still returned.
/// At most `MAX_FILE_BYTES` are read from one source: past that, `Err(Io(EFBIG))` once and the
/// end, so a file that never ends (a character device in a `--proc-root` tree) cannot hang us.
pub struct LineReader<'b, S: Source> {
    src: S,
    buf: &'b mut [u8],
    start: usize,
    end: usize,
    eof: bool,
    line_no: u32,
    skipping: bool,
    total: u64,
}

/// Most bytes one `LineReader` reads: /proc/net/tcp with a million sockets is ~150 MB.
pub const MAX_FILE_BYTES: u64 = 256 << 20;

impl<'b, S: Source> LineReader<'b, S> {
    pub fn new(src: S, buf: &'b mut [u8]) -> Self {
        LineReader {
            src,
            buf,
            start: 0,
            end: 0,
            eof: false,
            line_no: 0,
            skipping: false,
            total: 0,
        }
    }

    /// Number of the last line handed out (or skipped).
    pub fn line_no(&self) -> u32 {
        self.line_no
    }

    /// Bytes read from the source so far (for callers with a tighter cap than MAX_FILE_BYTES).
    pub fn bytes_read(&self) -> u64 {
        self.total
    }

    /// The next line, `None` at end of input, or an error (I/O, or an over-long line).
    #[allow(clippy::should_implement_trait)]
    pub fn next_line(&mut self) -> Option<Result<Line<'_>, ProcError>> {
        loop {
            // A complete line in the buffer?
            if let Some(pos) = self.buf[self.start..self.end]
                .iter()
                .position(|&c| c == b'\n')
            {
                let s = self.start;
                self.start += pos + 1;
                if self.skipping {
                    // Tail of an over-long line: its error was already reported.
                    self.skipping = false;
                    continue;
                }
                self.line_no += 1;
                return Some(Ok(Line {
                    no: self.line_no,
                    text: &self.buf[s..s + pos],
                }));
            }
            if self.eof {
                if self.start < self.end && !self.skipping {
                    let s = self.start;
                    self.start = self.end;
                    self.line_no += 1;
                    return Some(Ok(Line {
                        no: self.line_no,
                        text: &self.buf[s..self.end],
                    }));
                }
                return None;
            }
            // Make room: move the partial line to the front.
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.end == self.buf.len() {
                // The buffer holds part of one line with no newline: too long. Drop it,
                // report once, and skip the rest of it.
                self.end = 0;
                let was_skipping = self.skipping;
                self.skipping = true;
                if !was_skipping {
                    self.line_no += 1;
                    return Some(Err(ProcError::LineTooLong { line: self.line_no }));
                }
                continue;
            }
            match self.src.read_some(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => {
                    self.end += n;
                    self.total += n as u64;
                    if self.total > MAX_FILE_BYTES {
                        self.eof = true;
                        self.start = self.end;
                        return Some(Err(ProcError::Io(libc::EFBIG)));
                    }
                }
                Err(e) => {
                    self.eof = true;
                    self.start = self.end;
                    return Some(Err(ProcError::Io(e)));
                }
            }
        }
    }
}

/// Splits `s` on ASCII whitespace runs, like `split_whitespace` for bytes (no allocation).
pub fn fields(s: &[u8]) -> impl Iterator<Item = &[u8]> {
    s.split(|c| c.is_ascii_whitespace())
        .filter(|f| !f.is_empty())
}

/// Parses decimal digits into u64 (None on empty, junk or overflow).
pub fn parse_dec(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    Some(v)
}

/// Parses hex digits (either case) into u64 (None on empty, junk or overflow).
pub fn parse_hex(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 16 {
        return None;
    }
    let mut v: u64 = 0;
    for &c in s {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => return None,
        };
        v = (v << 4) | d as u64;
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(
        data: &[u8],
        bufsize: usize,
        chunk: usize,
    ) -> Vec<Result<(u32, Vec<u8>), ProcError>> {
        let mut buf = vec![0u8; bufsize];
        let mut r = LineReader::new(SliceSource::chunked(data, chunk), &mut buf);
        let mut out = Vec::new();
        while let Some(l) = r.next_line() {
            out.push(l.map(|l| (l.no, l.text.to_vec())));
        }
        out
    }

    #[test]
    fn splits_lines_across_reads() {
        for chunk in [1, 2, 3, 7, 100] {
            let got = collect(b"ab\ncd\n\nlast", 8, chunk);
            let want: Vec<Result<(u32, Vec<u8>), ProcError>> = vec![
                Ok((1, b"ab".to_vec())),
                Ok((2, b"cd".to_vec())),
                Ok((3, b"".to_vec())),
                Ok((4, b"last".to_vec())),
            ];
            assert_eq!(got, want, "chunk {chunk}");
        }
    }

    #[test]
    fn skips_overlong_line_once_and_goes_on() {
        let got = collect(b"short\nthis line is far too long\nok\n", 8, 3);
        assert_eq!(
            got,
            vec![
                Ok((1, b"short".to_vec())),
                Err(ProcError::LineTooLong { line: 2 }),
                Ok((3, b"ok".to_vec()))
            ]
        );
        // An over-long last line without newline.
        let got = collect(b"a\nbbbbbbbbbbbbbbbbbbbb", 8, 100);
        assert_eq!(
            got,
            vec![
                Ok((1, b"a".to_vec())),
                Err(ProcError::LineTooLong { line: 2 })
            ]
        );
    }

    #[test]
    fn empty_input_has_no_lines() {
        assert!(collect(b"", 8, 1).is_empty());
    }

    #[test]
    fn number_parsers() {
        assert_eq!(parse_dec(b"0"), Some(0));
        assert_eq!(parse_dec(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_dec(b"18446744073709551616"), None);
        assert_eq!(parse_dec(b"-1"), None);
        assert_eq!(parse_hex(b"0100007F"), Some(0x0100_007F));
        assert_eq!(parse_hex(b"003a"), Some(0x3a));
        assert_eq!(parse_hex(b"xyz"), None);
        assert_eq!(parse_hex(b""), None);
    }
}
