//! The `--json` report (`write_json`) and the tiny streaming JSON writer under it: no
//! allocation, commas and nesting tracked in a fixed stack, every string escaped (process names
//! can hold any byte).
//!
//! It writes exactly what it is told; the caller keeps keys unique. Nesting deeper than
//! `MAX_DEPTH` is a programming error reported as a `fmt::Error`, not a panic.

use super::Findings;
use super::verdict::{Verdict, verdict_kind};
use crate::observe::proc::meminfo::Field;
use crate::observe::proc::net::Proto;
use crate::output::escape::{JsonStr, JsonText};
use core::fmt::{self, Write};

/// Deepest object/array nesting the writer tracks.
pub const MAX_DEPTH: usize = 16;

pub struct JsonWriter<'w> {
    out: &'w mut dyn Write,
    /// One entry per open container: true once it holds a value (so the next needs a comma).
    has_item: heapless::Vec<bool, MAX_DEPTH>,
    /// A key was just written: the next value follows it without a comma.
    after_key: bool,
}

impl<'w> JsonWriter<'w> {
    pub fn new(out: &'w mut dyn Write) -> Self {
        JsonWriter {
            out,
            has_item: heapless::Vec::new(),
            after_key: false,
        }
    }

    /// Writes the separator a new value needs in the current container.
    fn sep(&mut self) -> fmt::Result {
        if self.after_key {
            self.after_key = false;
            return Ok(());
        }
        if let Some(last) = self.has_item.last_mut() {
            if *last {
                self.out.write_str(",")?;
            }
            *last = true;
        }
        Ok(())
    }

    /// Opens `{` or `[`; deeper than MAX_DEPTH is a bug, reported as a failed write.
    fn open(&mut self, c: &str) -> fmt::Result {
        self.sep()?;
        self.has_item.push(false).map_err(|_| fmt::Error)?;
        self.out.write_str(c)
    }

    fn close(&mut self, c: &str) -> fmt::Result {
        self.has_item.pop();
        self.out.write_str(c)
    }

    pub fn begin_object(&mut self) -> fmt::Result {
        self.open("{")
    }
    pub fn end_object(&mut self) -> fmt::Result {
        self.close("}")
    }
    pub fn begin_array(&mut self) -> fmt::Result {
        self.open("[")
    }
    pub fn end_array(&mut self) -> fmt::Result {
        self.close("]")
    }

    /// Writes `"key":`; the next call writes its value.
    pub fn key(&mut self, k: &str) -> fmt::Result {
        self.sep()?;
        write!(self.out, "{}", JsonStr(k.as_bytes()))?;
        self.out.write_str(":")?;
        self.after_key = true;
        Ok(())
    }

    /// A string value from raw bytes (escaped; invalid UTF-8 becomes U+FFFD).
    pub fn str(&mut self, s: &[u8]) -> fmt::Result {
        self.sep()?;
        write!(self.out, "{}", JsonStr(s))
    }

    /// A string value from anything Display-able (escaped), without allocating.
    pub fn display(&mut self, v: &dyn core::fmt::Display) -> fmt::Result {
        self.sep()?;
        write!(self.out, "{}", JsonText(v))
    }

    pub fn u64(&mut self, v: u64) -> fmt::Result {
        self.sep()?;
        write!(self.out, "{v}")
    }

    pub fn i64(&mut self, v: i64) -> fmt::Result {
        self.sep()?;
        write!(self.out, "{v}")
    }

    pub fn bool(&mut self, v: bool) -> fmt::Result {
        self.sep()?;
        self.out.write_str(if v { "true" } else { "false" })
    }

    pub fn null(&mut self) -> fmt::Result {
        self.sep()?;
        self.out.write_str("null")
    }

    /// A fixed-point number with one decimal from tenths (e.g. 684 -> 68.4): exact, no floats.
    pub fn tenths(&mut self, tenths: i64) -> fmt::Result {
        self.sep()?;
        let sign = if tenths < 0 { "-" } else { "" };
        let a = tenths.unsigned_abs();
        write!(self.out, "{sign}{}.{}", a / 10, a % 10)
    }

    /// A pinning ratio as a JSON number with one decimal (34.1).
    pub fn ratio(&mut self, r: crate::decide::correlate::Ratio) -> fmt::Result {
        self.sep()?;
        write!(self.out, "{r}")
    }

    /// `"key": <u64>` in one call.
    pub fn field_u64(&mut self, k: &str, v: u64) -> fmt::Result {
        self.key(k)?;
        self.u64(v)
    }

    /// `"key": "<escaped bytes>"` in one call.
    pub fn field_str(&mut self, k: &str, v: &[u8]) -> fmt::Result {
        self.key(k)?;
        self.str(v)
    }
}

/// The `--json` report: one object. The interface contract fixes `ghost`, `sockets` (with
/// `owners`) and `processes.rss_total_kb`; every other field is an extra.
pub fn write_json(r: &Findings, out: &mut dyn fmt::Write) -> fmt::Result {
    let mut w = JsonWriter::new(out);
    w.begin_object()?;
    w.key("verdict")?;
    w.display(&Verdict(r))?;
    w.field_str("verdict_kind", verdict_kind(r).name().as_bytes())?;
    w.field_u64("mem_total_kb", r.mem_total_kb())?;
    w.field_u64("available_kb", r.available_kb())?;
    w.field_u64("used_kb", r.used_kb())?;
    w.field_u64("shmem_kb", r.shmem_kb())?;
    w.field_u64("free_kb", r.mem.get(Field::MemFree).unwrap_or(0))?;

    let g = &r.ghost;
    w.key("ghost")?;
    w.begin_object()?;
    w.key("ghost_kb")?;
    w.i64(g.ghost_kb)?;
    w.field_u64("accounted_kb", g.accounted_kb)?;
    w.field_u64("mem_total_kb", g.mem_total_kb)?;
    w.key("ghost_percent")?;
    w.tenths(r.ghost_permille())?;
    w.key("terms")?;
    w.begin_object()?;
    for t in &g.terms {
        w.field_u64(t.name, t.kb)?;
    }
    w.end_object()?;
    w.field_str("vmalloc_source", g.vmalloc_source.name().as_bytes())?;
    w.key("vmallocinfo_kb")?;
    match r.vmalloc {
        Some(v) => w.u64(v.vmalloc_kb(r.page_size))?,
        None => w.null()?,
    }
    w.end_object()?;

    w.key("sockets")?;
    w.begin_array()?;
    for s in &r.top {
        w.begin_object()?;
        w.field_str("proto", s.proto.name().as_bytes())?;
        w.key("local")?;
        w.display(&s.local)?;
        w.key("remote")?;
        w.display(&s.remote)?;
        w.field_u64("rx_queue", s.rx_queue)?;
        w.field_str("rx_queue_source", s.rx_source.name().as_bytes())?;
        w.field_u64("tx_queue", s.tx_queue)?;
        w.field_u64("drops", s.drops)?;
        w.field_u64("inode", s.inode)?;
        w.field_u64("uid", s.uid as u64)?;
        w.field_u64("netns", s.netns)?;
        if let Some(name) = r.netns.name_of(s.netns) {
            w.field_str("netns_name", name.as_bytes())?;
        }
        w.key("owners")?;
        w.begin_array()?;
        for o in r.owners.of(s.inode) {
            w.begin_object()?;
            w.field_u64("pid", o.pid as u64)?;
            w.field_str("comm", o.comm.as_bytes())?;
            w.field_u64("fd", o.fd as u64)?;
            w.end_object()?;
        }
        w.end_array()?;
        w.field_u64("owners_more", r.owners.more(s.inode) as u64)?;
        w.end_object()?;
    }
    w.end_array()?;

    w.key("sockets_total")?;
    w.begin_object()?;
    for (i, p) in Proto::ALL.into_iter().enumerate() {
        w.field_u64(p.name(), r.tables[i].sockets as u64)?;
    }
    w.end_object()?;
    w.key("malformed_lines")?;
    w.begin_object()?;
    for (i, p) in Proto::ALL.into_iter().enumerate() {
        w.field_u64(p.name(), r.tables[i].malformed as u64)?;
    }
    w.end_object()?;
    w.field_u64("rx_queue_total_bytes", r.rx_queued_total())?;
    w.field_str("socket_source", r.socket_source.name().as_bytes())?;
    w.key("netns")?;
    w.begin_array()?;
    for n in &r.netns.list {
        w.begin_object()?;
        w.field_u64("inode", n.inode)?;
        if let Some(name) = r.netns.name_of(n.inode) {
            w.field_str("name", name.as_bytes())?;
        }
        w.key("home")?;
        w.bool(n.inode == r.netns.home)?;
        w.end_object()?;
    }
    w.end_array()?;

    let p = &r.procs;
    w.key("processes")?;
    w.begin_object()?;
    w.field_u64("rss_total_kb", p.rss_total_kb)?;
    w.field_u64("count", p.count as u64)?;
    w.field_u64("kernel_threads", p.kernel_threads as u64)?;
    w.key("largest")?;
    match p.largest {
        Some((pid, comm, kb)) => {
            w.begin_object()?;
            w.field_u64("pid", pid as u64)?;
            w.field_str("comm", comm.as_bytes())?;
            w.field_u64("rss_kb", kb)?;
            w.end_object()?;
        }
        None => w.null()?,
    }
    w.end_object()?;

    let o = &r.owners;
    w.key("owner_walk")?;
    w.begin_object()?;
    w.field_u64("pids_scanned", o.pids_scanned as u64)?;
    w.field_u64("pids_denied", o.pids_denied as u64)?;
    w.field_u64("pids_vanished", o.pids_vanished as u64)?;
    w.key("truncated")?;
    w.bool(o.truncated)?;
    w.end_object()?;

    if let Some(x) = &r.watch {
        write_watch(&mut w, r, x)?;
    }

    w.key("skipped")?;
    w.begin_array()?;
    for s in &r.skipped {
        w.display(s)?;
    }
    w.end_array()?;
    w.end_object()?;
    drop(w);
    out.write_str("\n")
}

/// `.watch`: the window, Ghost's growth, the sockets ranked by how much of it they explain
/// (each with `inode`), the culprit's pinning ratio.
fn write_watch(w: &mut JsonWriter<'_>, r: &Findings, x: &super::Watch) -> fmt::Result {
    w.key("watch")?;
    w.begin_object()?;
    w.field_u64("seconds", u64::from(x.seconds))?;
    w.key("verdict")?;
    w.display(&super::watch::WatchVerdict(r, x))?;
    let win = x.window;
    w.field_u64("samples", win.map_or(0, |v| v.samples as u64))?;
    w.field_u64("window_ms", win.map_or(0, |v| v.span_ms))?;
    w.key("ghost_growth_kb")?;
    w.i64(win.map_or(0, |v| v.ghost_growth_kb))?;
    w.key("ghost_kb")?;
    w.i64(win.map_or(r.ghost.ghost_kb, |v| v.ghost_now_kb))?;
    w.key("available_drop_kb")?;
    match win.and_then(|v| v.available_drop_kb) {
        Some(d) => w.i64(d)?,
        None => w.null()?,
    }
    w.key("ghost_grew")?;
    w.bool(win.is_some_and(|v| v.ghost_grew()))?;
    let culprit = x.culprit();
    w.key("culprit_inode")?;
    match culprit {
        Some(c) => w.u64(c.socket.inode)?,
        None => w.null()?,
    }
    w.key("pin_ratio")?;
    match culprit.and_then(|c| c.blame.measured) {
        Some(ratio) => w.ratio(ratio)?,
        None => w.null()?,
    }
    w.key("sockets")?;
    w.begin_array()?;
    for s in &x.ranked {
        let b = &s.blame;
        w.begin_object()?;
        w.field_str("proto", s.socket.proto.name().as_bytes())?;
        w.key("local")?;
        w.display(&s.socket.local)?;
        w.field_u64("inode", s.socket.inode)?;
        w.field_u64("netns", s.socket.netns)?;
        w.field_u64("rx_queue", b.queue_now)?;
        w.key("queue_growth")?;
        w.i64(b.queue_growth)?;
        w.key("ghost_growth_kb")?;
        w.i64(b.ghost_growth_kb)?;
        w.field_u64("explains_pm", u64::from(b.explains_pm))?;
        w.key("moves_with_ghost")?;
        w.bool(b.moves_with_ghost())?;
        w.field_u64("samples", b.samples as u64)?;
        w.key("pin_ratio")?;
        match b.measured {
            Some(ratio) => w.ratio(ratio)?,
            None => w.null()?,
        }
        w.key("owners")?;
        w.begin_array()?;
        for o in r.owners.of(s.socket.inode) {
            w.begin_object()?;
            w.field_u64("pid", o.pid as u64)?;
            w.field_str("comm", o.comm.as_bytes())?;
            w.end_object()?;
        }
        w.end_array()?;
        w.end_object()?;
    }
    w.end_array()?;
    w.end_object()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_too_deep_is_an_error_not_a_panic() {
        let mut v = String::new();
        let mut w = JsonWriter::new(&mut v);
        for _ in 0..MAX_DEPTH {
            w.begin_array().unwrap();
        }
        assert!(w.begin_object().is_err());
        assert_eq!(
            v,
            "[".repeat(MAX_DEPTH),
            "nothing written for the refused object"
        );
    }

    #[test]
    fn nests_with_commas() {
        let mut v = String::new();
        let mut w = JsonWriter::new(&mut v);
        w.begin_object().unwrap();
        w.field_u64("a", 1).unwrap();
        w.key("b").unwrap();
        w.begin_array().unwrap();
        for i in 0..3 {
            w.begin_object().unwrap();
            w.field_u64("i", i).unwrap();
            w.key("t").unwrap();
            w.tenths(-5).unwrap();
            w.end_object().unwrap();
        }
        w.end_array().unwrap();
        w.key("c").unwrap();
        w.display(&format_args!("x{}\u{1}", 2)).unwrap();
        w.key("e").unwrap();
        w.begin_array().unwrap();
        w.end_array().unwrap();
        w.key("n").unwrap();
        w.null().unwrap();
        w.end_object().unwrap();
        assert_eq!(
            v,
            r#"{"a":1,"b":[{"i":0,"t":-0.5},{"i":1,"t":-0.5},{"i":2,"t":-0.5}],"c":"x2\u0001","e":[],"n":null}"#
        );
    }
}
