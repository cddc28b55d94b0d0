//! Where audit and error lines go: syslog (unix socket, UDP, TCP) on our own non-blocking libc
//! sockets, with a bounded delivery ring for lines the target does not accept, and stderr.
//!
//! One global sink (the `log` crate allows one logger per process): its state lives in a static
//! Mutex and is swapped on reconfigure. Invariants:
//! - **Never blocks.** Every socket is O_NONBLOCK: a send that cannot complete at once, a TCP
//!   connect still in progress or a full datagram queue is not waited for. Connects (and resends
//!   after a refusal) are tried at most once a second, from `emit` and from `tick` (the run loop
//!   calls it between polls), never waited for.
//! - **Nothing lost silently, nothing out of order.** Every line goes into the ring (slots
//!   allocated at init, `syslog_queue_lines` of them) and is sent from its head, so late lines
//!   keep their order and their original timestamps. A line that could not be delivered at once
//!   also goes to stderr (as before the ring) and is counted queued; when the ring is full the
//!   oldest line goes (counted dropped) and one `event=dropped lines=N` line says so, first,
//!   once delivery resumes.
//! - **Allocation-free after init**: lines are formatted into fixed buffers at send time.

use crate::config::{Config, Str, SyslogFormat, SyslogTarget};
use crate::output::audit::{AuditLine, split_pairs};
use crate::output::resolve::{family, resolve, sockaddr as inet_addr};
use crate::sys::{Cut, Errno, cut, cut_fmt};
use core::fmt::{self, Write as _};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Mutex;
use syslog::Facility;

/// Severity of a line (maps to syslog priority).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Err,
    Warning,
    Notice,
    Info,
}

impl Severity {
    /// The syslog severity code (RFC 5424 table 2).
    const fn code(self) -> u8 {
        match self {
            Severity::Err => 3,
            Severity::Warning => 4,
            Severity::Notice => 5,
            Severity::Info => 6,
        }
    }
}

/// Counters the status file and metrics show.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SinkStats {
    /// Lines the target accepted (at once or late).
    pub lines_sent: u64,
    /// Lines that could not go to syslog at once and went to stderr (every queued line does).
    pub lines_to_stderr: u64,
    /// Connections made again after the first one of a target.
    pub reconnects: u64,
    /// Lines that could not be delivered at once and waited in the delivery ring.
    pub lines_queued: u64,
    /// Queued lines delivered later (with their original timestamps).
    pub lines_delivered_late: u64,
    /// Queued lines lost to a full ring (each reported by an `event=dropped` line).
    pub lines_dropped: u64,
    /// Lines waiting now.
    pub queue_len: u64,
}

/// Longest message (after the syslog header) sent; longer lines are cut at a char boundary.
pub const MAX_MESSAGE: usize = crate::output::audit::MAX_LINE;
/// Least time between two connection attempts, and between two sends after the target
/// refused one (a full queue, a full socket buffer).
pub const RECONNECT_INTERVAL_MS: u64 = 1000;
/// A TCP connect not complete after this long is given up (and tried again a second later).
pub const CONNECT_TIMEOUT_MS: u64 = 2000;
/// A target that took lines in this attempt and then found its queue full is draining (a
/// collector catching up after a restart): it is tried again this soon, not a second later.
const DRAIN_RETRY_MS: u64 = 50;
/// How often the loop looks at a TCP connect in progress while lines wait for it.
const CONNECTING_WAKE_MS: u64 = 50;
/// What every stderr line starts with, so it is greppable next to other daemons' output.
const STDERR_PREFIX: &str = "ghostwatch: ";
/// The RFC 5424 APP-NAME.
pub const APP_NAME: &str = "ghostwatch";
/// The RFC 5424 SD-ID of the pairs: a private one under 32473, the enterprise number RFC 5612
/// reserves for documentation (no number is registered for ghostwatch).
pub const SD_ID: &str = "ghostwatch@32473";
/// Most bytes of structured data in one line; pairs that do not fit are left out of it whole
/// (they stay in the message).
const SD_MAX: usize = 1536;
/// Longest line on the wire: header (PRI, version, timestamp, 64-byte hostname, app-name,
/// PID, msgid) plus structured data plus the message.
const FRAME_MAX: usize = 200 + SD_MAX + MAX_MESSAGE;
/// Room for the RFC 6587 octet count and its space.
const FRAME_BUF: usize = FRAME_MAX + 8;

/// Where lines go, resolved once at init (no DNS per line).
#[derive(Clone, Debug)]
enum Dest {
    Stderr,
    Unix(Str),
    Udp(SocketAddr),
    Tcp(SocketAddr),
}

/// Wall-clock time a line was emitted (it is sent with it, however late).
#[derive(Clone, Copy, Debug, Default)]
struct Stamp {
    secs: i64,
    usec: u32,
}

fn now_stamp() -> Stamp {
    let mut ts = crate::sys::timespec(0, 0);
    // SAFETY: ts is a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    #[allow(clippy::useless_conversion)] // time_t is 32 bits on some 32-bit targets
    Stamp {
        secs: i64::from(ts.tv_sec),
        usec: (ts.tv_nsec / 1000) as u32,
    }
}

/// One line waiting for the target.
#[derive(Clone)]
struct Slot {
    sev: Severity,
    stamp: Stamp,
    /// Could not be delivered at once: already on stderr and counted queued.
    late: bool,
    len: u16,
    text: [u8; MAX_MESSAGE],
}

/// Never read as a line (every slot is `set` first). Its bytes are all zero, like every initial
/// value of `STATE` (see `Heap`).
const EMPTY_SLOT: Slot = Slot {
    sev: Severity::Err,
    stamp: Stamp { secs: 0, usec: 0 },
    late: false,
    len: 0,
    text: [0; MAX_MESSAGE],
};

impl Slot {
    fn set(&mut self, sev: Severity, stamp: Stamp, line: &str) {
        let line = cut(line, MAX_MESSAGE);
        self.sev = sev;
        self.stamp = stamp;
        self.late = false;
        self.len = line.len() as u16;
        self.text[..line.len()].copy_from_slice(line.as_bytes());
    }

    fn text(&self) -> &str {
        core::str::from_utf8(self.text.get(..self.len as usize).unwrap_or_default()).unwrap_or("")
    }
}

/// A heap buffer whose empty state is all zero bytes (`None` is a null pointer; an empty
/// `Vec` holds a dangling one, and `Option<Vec>` marks `None` in its capacity): with every initial value zero, `STATE` is zero-initialised
/// (.bss) instead of 1.4 KiB of initialised data in the binary's file.
struct Heap<T>(Option<Box<[T]>>);

impl<T> Default for Heap<T> {
    fn default() -> Self {
        Heap(None)
    }
}

impl<T> core::ops::Deref for Heap<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        self.0.as_deref().unwrap_or(&[])
    }
}

impl<T> core::ops::DerefMut for Heap<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        self.0.as_deref_mut().unwrap_or(&mut [])
    }
}

/// The delivery ring: `slots` is allocated when the sink is configured, never in `emit`.
struct Ring {
    slots: Heap<Slot>,
    head: usize,
    len: usize,
}

impl Ring {
    fn cap(&self) -> usize {
        self.slots.len()
    }

    /// The slot `i` places after the head.
    fn at(&mut self, i: usize) -> Option<&mut Slot> {
        let cap = self.cap();
        if i >= self.len || cap == 0 {
            return None;
        }
        self.slots.get_mut((self.head + i) % cap)
    }

    /// A fresh slot at the tail; a full ring first gives up its oldest line (returned to the
    /// caller to account for, in `evicted`).
    fn push(&mut self, evicted: &mut Option<Slot>) -> Option<&mut Slot> {
        let cap = self.cap();
        if cap == 0 {
            return None;
        }
        if self.len == cap {
            if let Some(old) = self.slots.get(self.head) {
                // Only the flag and text matter to the caller; a copy, no allocation.
                *evicted = Some(old.clone());
            }
            self.head = (self.head + 1) % cap;
            self.len -= 1;
        }
        let i = (self.head + self.len) % cap;
        self.len += 1;
        self.slots.get_mut(i)
    }

    fn pop_into(&mut self, out: &mut Slot) -> bool {
        let cap = self.cap();
        match self.slots.get(self.head) {
            Some(s) if self.len > 0 => {
                out.clone_from(s);
                self.head = (self.head + 1) % cap;
                self.len -= 1;
                true
            }
            _ => false,
        }
    }

    /// Sets the capacity (allocates; at configure time only), keeping the newest lines in
    /// order. Returns the lines that no longer fit.
    fn resize(&mut self, cap: usize) -> Vec<Slot> {
        if cap == self.cap() {
            return Vec::new();
        }
        let mut old = core::mem::take(&mut self.slots);
        let (head, len) = (self.head, self.len);
        let mut kept: Vec<Slot> = Vec::with_capacity(len);
        for i in 0..len {
            let n = old.len();
            kept.push(core::mem::replace(&mut old[(head + i) % n], EMPTY_SLOT));
        }
        let lost = kept.len().saturating_sub(cap);
        let gone: Vec<Slot> = kept.drain(..lost).collect();
        self.slots = Heap(Some(vec![EMPTY_SLOT; cap].into_boxed_slice()));
        self.head = 0;
        self.len = kept.len();
        for (d, s) in self.slots.iter_mut().zip(kept) {
            *d = s;
        }
        gone
    }
}

/// The connection to the target.
enum Link {
    Down,
    /// A TCP connect in progress since `since_ms`.
    Connecting {
        fd: OwnedFd,
        since_ms: u64,
    },
    Up {
        fd: OwnedFd,
        stream: bool,
    },
}

/// The line being delivered, out of the ring: formatted once per connection settings, and for
/// a stream the part already written (`off`), so a short write resumes where it stopped.
struct Stage {
    busy: bool,
    /// An `event=dropped` line made by the sink, not one of the ring's.
    notice: bool,
    slot: Slot,
    formatted: bool,
    /// `FRAME_BUF` bytes, allocated when a syslog target is first configured (`init_with`):
    /// as an array it made the whole `STATE` initialised data (4 KiB of the binary's file).
    frame: Heap<u8>,
    len: usize,
    off: usize,
}

struct State {
    dest: Dest,
    facility: Facility,
    format: SyslogFormat,
    hostname: Option<heapless::String<64>>,
    link: Link,
    /// No connect or send before this (monotonic ms): the once-a-second limit after a failure.
    next_try_ms: u64,
    /// The errno of the last failed connect or send (0: none yet).
    last_errno: Errno,
    /// A connection to this target was made since it was configured (later ones are reconnects).
    ever_connected: bool,
    ring: Ring,
    stage: Stage,
    /// Lines of the ring not yet marked late (a connect is in progress for them).
    fresh: usize,
    /// Lines dropped since the last `event=dropped` line.
    dropped_unreported: u64,
    /// Counters since the process started (they survive reconfigure). Plain integers under the
    /// lock every emit holds anyway: 32-bit MIPS and ARMv5/6 have no 64-bit atomics.
    lines_sent: u64,
    lines_to_stderr: u64,
    reconnects: u64,
    lines_queued: u64,
    lines_delivered_late: u64,
    lines_dropped: u64,
}

static STATE: Mutex<State> = Mutex::new(State {
    dest: Dest::Stderr,
    // Read only for a syslog target, which `init_with` sets it with; LOG_KERN is 0 (see `Heap`).
    facility: Facility::LOG_KERN,
    format: SyslogFormat::Rfc3164,
    hostname: None,
    link: Link::Down,
    next_try_ms: 0,
    last_errno: 0,
    ever_connected: false,
    ring: Ring {
        slots: Heap(None),
        head: 0,
        len: 0,
    },
    stage: Stage {
        busy: false,
        notice: false,
        slot: EMPTY_SLOT,
        formatted: false,
        frame: Heap(None),
        len: 0,
        off: 0,
    },
    fresh: 0,
    dropped_unreported: 0,
    lines_sent: 0,
    lines_to_stderr: 0,
    reconnects: 0,
    lines_queued: 0,
    lines_delivered_late: 0,
    lines_dropped: 0,
});
static LOG_ONCE: std::sync::Once = std::sync::Once::new();
static LOGGER: SinkLogger = SinkLogger;

/// Installs the global logger for `target` with the default format and ring size (see
/// `init_with`).
pub fn init(target: &SyslogTarget, facility: &str) -> Result<(), &'static str> {
    init_with(
        target,
        facility,
        SyslogFormat::Rfc3164,
        crate::config::defaults::SYSLOG_QUEUE_LINES,
    )
}

/// Installs the global logger for `target` (replacing any earlier target on reload), with
/// `format` and a delivery ring of `queue_lines` lines (lines already waiting are kept, the
/// newest if the ring shrinks, and go to the new target).
///
/// Also routes `log::error!`/`warn!`/`info!` through `emit`. Fails only on a bad facility name
/// or a UDP/TCP address that does not resolve; a syslogd that is not up yet is not an error
/// (a note goes to stderr; lines wait in the ring and go to stderr until it is).
pub fn init_with(
    target: &SyslogTarget,
    facility: &str,
    format: SyslogFormat,
    queue_lines: u32,
) -> Result<(), &'static str> {
    let facility = parse_facility(facility)
        .ok_or("unknown syslog facility (expected e.g. daemon, user, local0..local7)")?;
    let dest = match target {
        SyslogTarget::Stderr => Dest::Stderr,
        SyslogTarget::Unix(path) => Dest::Unix(path.clone()),
        SyslogTarget::Udp(addr) => Dest::Udp(resolve(addr)?),
        SyslogTarget::Tcp(addr) => Dest::Tcp(resolve(addr)?),
    };
    LOG_ONCE.call_once(|| {
        if log::set_logger(&LOGGER).is_ok() {
            log::set_max_level(log::LevelFilter::Info);
        }
    });
    let mut st = lock();
    let st = &mut *st;
    st.hostname = match (&dest, format) {
        // A local syslogd stamps its own host name on BSD lines.
        (Dest::Unix(_), SyslogFormat::Rfc3164) => None,
        _ => hostname(),
    };
    st.dest = dest;
    st.facility = facility;
    st.format = format;
    st.link = Link::Down;
    st.next_try_ms = 0;
    st.last_errno = 0;
    st.ever_connected = false;
    st.stage.formatted = false;
    st.stage.off = 0;
    if st.stage.frame.len() != FRAME_BUF {
        st.stage.frame = Heap(Some(vec![0; FRAME_BUF].into_boxed_slice()));
    }
    for gone in st.ring.resize(queue_lines.max(1) as usize) {
        st.drop_line(&gone);
    }
    if matches!(st.dest, Dest::Stderr) {
        // Nothing can wait for stderr: what waited goes there now.
        st.flush_to_stderr();
        return Ok(());
    }
    let now = crate::sys::monotonic_ms();
    st.pump(now);
    if matches!(st.link, Link::Down) {
        let note: heapless::String<256> = cut_fmt(format_args!(
            "syslog {} not reachable yet ({}); lines wait for it (at most {}) and go to stderr",
            DestText(&st.dest),
            crate::sys::strerror(st.last_errno),
            st.ring.cap()
        ));
        write_stderr(note.as_str());
    }
    st.settle(now);
    Ok(())
}

/// Sends one line at `sev`, stamped now. Never blocks, never fails: a line the target does not
/// take at once waits in the ring (and goes to stderr, counted).
pub fn emit(sev: Severity, line: &str) {
    let line = cut(line, MAX_MESSAGE);
    let stamp = now_stamp();
    let mut st = lock();
    if matches!(st.dest, Dest::Stderr) {
        write_stderr(line);
        st.lines_sent += 1;
        return;
    }
    let mut evicted = None;
    if let Some(slot) = st.ring.push(&mut evicted) {
        slot.set(sev, stamp, line);
    }
    st.fresh += 1;
    if let Some(old) = evicted {
        st.drop_line(&old);
    }
    let now = crate::sys::monotonic_ms();
    st.pump(now);
    st.settle(now);
}

/// Between polls (the run loop): completes a connect in progress, reconnects (at most once a
/// second) and delivers waiting lines. Never blocks; allocates nothing.
pub fn tick(now_ms: u64) {
    let mut st = lock();
    let idle = st.ring.len == 0 && !st.stage.busy && matches!(st.link, Link::Up { .. });
    if idle || matches!(st.dest, Dest::Stderr) {
        return;
    }
    st.pump(now_ms);
    st.settle(now_ms);
}

/// When the loop should call `tick` next to deliver waiting lines (None: nothing waits).
pub fn next_wake_ms(now_ms: u64) -> Option<u64> {
    let st = lock();
    if (st.ring.len == 0 && !st.stage.busy) || matches!(st.dest, Dest::Stderr) {
        return None;
    }
    Some(match st.link {
        Link::Connecting { .. } => now_ms + CONNECTING_WAKE_MS,
        _ => st.next_try_ms.max(now_ms),
    })
}

/// The counters since the process started (they survive reconfigure).
pub fn stats() -> SinkStats {
    let st = lock();
    SinkStats {
        lines_sent: st.lines_sent,
        lines_to_stderr: st.lines_to_stderr,
        reconnects: st.reconnects,
        lines_queued: st.lines_queued,
        lines_delivered_late: st.lines_delivered_late,
        lines_dropped: st.lines_dropped,
        queue_len: (st.ring.len + usize::from(st.stage.busy)) as u64,
    }
}

/// Applies the syslog keys of `cfg` (at start).
pub fn configure(cfg: &Config) -> Result<(), &'static str> {
    init_with(
        &cfg.syslog,
        &cfg.facility,
        cfg.syslog_format,
        cfg.syslog_queue_lines,
    )
}

/// Re-applies the syslog keys from a reloaded config, when `old` had other ones (the
/// connection and the waiting lines are kept otherwise).
pub fn reconfigure(old: &Config, cfg: &Config) -> Result<(), &'static str> {
    let same = old.syslog == cfg.syslog
        && old.facility == cfg.facility
        && old.syslog_format == cfg.syslog_format
        && old.syslog_queue_lines == cfg.syslog_queue_lines;
    if same { Ok(()) } else { configure(cfg) }
}

impl State {
    /// Delivers from the stage and the ring head while the target takes lines.
    fn pump(&mut self, now: u64) {
        let mut took = false;
        loop {
            match &self.link {
                Link::Down => {
                    if now < self.next_try_ms {
                        return;
                    }
                    self.next_try_ms = now + RECONNECT_INTERVAL_MS;
                    match open(&self.dest) {
                        Ok(l) => self.link = l,
                        Err(e) => {
                            self.last_errno = e;
                            return;
                        }
                    }
                    if matches!(self.link, Link::Up { .. }) {
                        self.connected();
                    }
                }
                Link::Connecting { fd, since_ms } => {
                    match connect_result(fd) {
                        None if now.saturating_sub(*since_ms) < CONNECT_TIMEOUT_MS => return,
                        None => self.fail(now, libc::ETIMEDOUT),
                        Some(Err(e)) => self.fail(now, e),
                        Some(Ok(())) => {
                            let Link::Connecting { fd, .. } =
                                core::mem::replace(&mut self.link, Link::Down)
                            else {
                                return;
                            };
                            self.link = Link::Up { fd, stream: true };
                            self.connected();
                            continue;
                        }
                    }
                    return;
                }
                Link::Up { .. } => {
                    if now < self.next_try_ms || !self.stage_next() {
                        return;
                    }
                    if !self.send_stage(now, took) {
                        return;
                    }
                    took = true;
                }
            }
        }
    }

    fn connected(&mut self) {
        if self.ever_connected {
            self.reconnects += 1;
        }
        self.ever_connected = true;
        self.next_try_ms = 0;
        self.stage.off = 0;
    }

    /// The link broke (or a connect failed): down, and no new try for a second. A frame
    /// half-written to a stream goes again whole on the next connection.
    fn fail(&mut self, now: u64, e: Errno) {
        self.last_errno = e;
        self.link = Link::Down;
        self.next_try_ms = now + RECONNECT_INTERVAL_MS;
        self.stage.off = 0;
    }

    /// Fills the stage if it is empty: the pending `event=dropped` line first, else the ring's
    /// oldest line. False when nothing waits.
    fn stage_next(&mut self) -> bool {
        if !self.stage.busy {
            if self.dropped_unreported > 0 {
                let mut l = AuditLine::new("dropped");
                l.kvd("lines", self.dropped_unreported)
                    .kv("reason", b"syslog delivery ring full");
                self.stage
                    .slot
                    .set(Severity::Warning, now_stamp(), l.as_str());
                self.stage.slot.late = false;
                self.stage.notice = true;
                self.dropped_unreported = 0;
            } else if self.ring.pop_into(&mut self.stage.slot) {
                if !self.stage.slot.late {
                    self.fresh = self.fresh.saturating_sub(1);
                }
                self.stage.notice = false;
            } else {
                return false;
            }
            self.stage.busy = true;
            self.stage.formatted = false;
            self.stage.off = 0;
        }
        if !self.stage.formatted {
            let octet_counting = matches!(self.dest, Dest::Tcp(_));
            let pri = self.facility as u8 | self.stage.slot.sev.code();
            let hdr = Header {
                format: self.format,
                pri,
                host: self.hostname.as_deref(),
                pid: std::process::id(),
            };
            self.stage.len = frame(
                &mut self.stage.frame,
                &hdr,
                self.stage.slot.stamp,
                self.stage.slot.text(),
                octet_counting,
            );
            self.stage.formatted = true;
            self.stage.off = 0;
        }
        true
    }

    /// One attempt at the staged frame. True when it went out whole (the stage is free again).
    /// `took`: the target took a line earlier in this attempt (so it is draining, not stuck).
    fn send_stage(&mut self, now: u64, took: bool) -> bool {
        let Link::Up { fd, stream } = &self.link else {
            return false;
        };
        let (raw, stream) = (fd.as_raw_fd(), *stream);
        if stream && self.stage.off == 0 && peer_closed(raw) {
            // A write to a hung-up peer "succeeds" into the buffer and is lost: reconnect first.
            self.fail(now, libc::ECONNRESET);
            return false;
        }
        while self.stage.off < self.stage.len {
            let data = &self.stage.frame[self.stage.off..self.stage.len];
            // SAFETY: data is valid for its length; MSG_DONTWAIT never blocks, MSG_NOSIGNAL
            // keeps a hung-up stream from raising SIGPIPE.
            let n = unsafe {
                libc::send(
                    raw,
                    data.as_ptr().cast(),
                    data.len(),
                    libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                )
            };
            if n < 0 {
                match crate::sys::errno() {
                    libc::EINTR => continue,
                    // Full queue or buffer: the target is there, just not taking lines now.
                    e @ (libc::EAGAIN | libc::ENOBUFS) => {
                        self.last_errno = e;
                        let wait = if took || self.stage.off > 0 {
                            DRAIN_RETRY_MS
                        } else {
                            RECONNECT_INTERVAL_MS
                        };
                        self.next_try_ms = now + wait;
                    }
                    e => self.fail(now, e),
                }
                return false;
            }
            if !stream {
                break; // a datagram goes whole or not at all
            }
            self.stage.off += n as usize;
        }
        self.lines_sent += 1;
        if self.stage.slot.late {
            self.lines_delivered_late += 1;
        }
        self.stage.busy = false;
        self.stage.notice = false;
        self.stage.off = 0;
        true
    }

    /// After a delivery attempt: while nothing can be delivered now (no connect in progress),
    /// every waiting line not yet on stderr goes there and counts as queued.
    fn settle(&mut self, now: u64) {
        if self.fresh == 0 && !(self.stage.busy && !self.stage.slot.late && !self.stage.notice) {
            return;
        }
        let blocked = match self.link {
            Link::Down => true,
            Link::Connecting { .. } => false,
            Link::Up { .. } => now < self.next_try_ms,
        };
        if !blocked {
            return;
        }
        if self.stage.busy && !self.stage.notice && !self.stage.slot.late {
            self.stage.slot.late = true;
            self.lines_queued += 1;
            self.lines_to_stderr += 1;
            write_stderr(self.stage.slot.text());
        }
        let mut i = 0;
        while self.fresh > 0 {
            let Some(s) = self.ring.at(i) else {
                self.fresh = 0;
                break;
            };
            if !s.late {
                s.late = true;
                write_stderr(s.text());
                self.fresh -= 1;
                self.lines_queued += 1;
                self.lines_to_stderr += 1;
            }
            i += 1;
        }
    }

    /// Accounts for a line the ring gave up: dropped, reported later (and on stderr if it
    /// was not yet).
    fn drop_line(&mut self, s: &Slot) {
        if !s.late {
            write_stderr(s.text());
            self.lines_to_stderr += 1;
            self.lines_queued += 1;
            self.fresh = self.fresh.saturating_sub(1);
        }
        self.lines_dropped += 1;
        self.dropped_unreported += 1;
    }

    /// Target changed to stderr: every waiting line that is not there yet goes there now.
    fn flush_to_stderr(&mut self) {
        if self.stage.busy && !self.stage.notice && !self.stage.slot.late {
            write_stderr(self.stage.slot.text());
        }
        self.stage.busy = false;
        let mut s = EMPTY_SLOT;
        while self.ring.pop_into(&mut s) {
            if !s.late {
                write_stderr(s.text());
            }
        }
        self.fresh = 0;
        self.dropped_unreported = 0;
    }
}

/// A non-blocking socket to `dest`: Up for unix and UDP (their connect never waits), Connecting
/// for a TCP connect in progress. Err(errno) when it cannot be made now.
fn open(dest: &Dest) -> Result<Link, Errno> {
    match dest {
        Dest::Stderr => Err(libc::EINVAL),
        Dest::Unix(path) => {
            let (addr, len) = unix_addr(path.as_bytes()).ok_or(libc::ENAMETOOLONG)?;
            let fd = socket(libc::AF_UNIX, libc::SOCK_DGRAM)?;
            match connect(&fd, (&addr as *const libc::sockaddr_un).cast(), len) {
                Ok(()) => Ok(Link::Up { fd, stream: false }),
                // A stream /dev/log (as syslog::unix_custom also tries).
                Err(libc::EPROTOTYPE) => {
                    let fd = socket(libc::AF_UNIX, libc::SOCK_STREAM)?;
                    connect(&fd, (&addr as *const libc::sockaddr_un).cast(), len)?;
                    Ok(Link::Up { fd, stream: true })
                }
                Err(e) => Err(e),
            }
        }
        Dest::Udp(a) => {
            let (sa, len) = inet_addr(a);
            let fd = socket(family(a), libc::SOCK_DGRAM)?;
            // Connected, so a refusal (ICMP port unreachable) is reported on the next send.
            connect(&fd, (&sa as *const libc::sockaddr_storage).cast(), len)?;
            Ok(Link::Up { fd, stream: false })
        }
        Dest::Tcp(a) => {
            let (sa, len) = inet_addr(a);
            let fd = socket(family(a), libc::SOCK_STREAM)?;
            // A bounded kernel buffer: what a collector does not read waits in the ring
            // (counted, in order) rather than in megabytes of autotuned send buffer that a
            // collector restart throws away.
            set_sndbuf(&fd, STREAM_SNDBUF);
            match connect(&fd, (&sa as *const libc::sockaddr_storage).cast(), len) {
                Ok(()) => Ok(Link::Up { fd, stream: true }),
                Err(libc::EINPROGRESS) => Ok(Link::Connecting {
                    fd,
                    since_ms: crate::sys::monotonic_ms(),
                }),
                Err(e) => Err(e),
            }
        }
    }
}

/// SO_SNDBUF of a TCP connection to a collector (the kernel doubles it for its bookkeeping).
const STREAM_SNDBUF: libc::c_int = 32 * 1024;

fn set_sndbuf(fd: &OwnedFd, bytes: libc::c_int) {
    // SAFETY: valid fd and option value; a failure only keeps the default size.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            (&bytes as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
}

fn socket(family: libc::c_int, kind: libc::c_int) -> Result<OwnedFd, Errno> {
    // SAFETY: plain socket(2); the fd is owned (closed on drop) from here on.
    let fd = unsafe { libc::socket(family, kind | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(crate::sys::errno());
    }
    // SAFETY: fd is a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn connect(fd: &OwnedFd, addr: *const libc::sockaddr, len: libc::socklen_t) -> Result<(), Errno> {
    loop {
        // SAFETY: addr points to a socket address of `len` bytes (the callers' locals).
        if unsafe { libc::connect(fd.as_raw_fd(), addr, len) } == 0 {
            return Ok(());
        }
        match crate::sys::errno() {
            libc::EINTR => continue,
            e => return Err(e),
        }
    }
}

/// Where a TCP connect in progress stands: None still pending, else its result (SO_ERROR).
fn connect_result(fd: &OwnedFd) -> Option<Result<(), Errno>> {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one valid pollfd, zero timeout.
    if unsafe { libc::poll(&mut pfd, 1, 0) } <= 0 {
        return None;
    }
    let mut err: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: err/len are valid out-pointers of the sizes given.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut err as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    Some(match (r, err) {
        (0, 0) if pfd.revents & libc::POLLOUT != 0 => Ok(()),
        (0, 0) => Err(libc::ECONNREFUSED),
        (0, e) => Err(e),
        _ => Err(crate::sys::errno()),
    })
}

/// `sockaddr_un` for `path` (None if it does not fit sun_path with its NUL).
fn unix_addr(path: &[u8]) -> Option<(libc::sockaddr_un, libc::socklen_t)> {
    // SAFETY: sockaddr_un is plain data; zeroed is valid.
    let mut a: libc::sockaddr_un = unsafe { core::mem::zeroed() };
    a.sun_family = libc::AF_UNIX as libc::sa_family_t;
    if path.is_empty() || path.len() >= a.sun_path.len() || path.contains(&0) {
        return None;
    }
    for (d, &b) in a.sun_path.iter_mut().zip(path) {
        *d = b as libc::c_char;
    }
    let len = core::mem::offset_of!(libc::sockaddr_un, sun_path) + path.len() + 1;
    Some((a, len as libc::socklen_t))
}

/// True if a stream connection's peer has hung up. A write to a dead TCP peer usually
/// "succeeds" into the kernel buffer and only the *next* one fails, which would lose a line;
/// asking first makes the reconnect happen before the line is sent.
fn peer_closed(fd: libc::c_int) -> bool {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLRDHUP,
        revents: 0,
    };
    // SAFETY: one valid pollfd, zero timeout.
    let n = unsafe { libc::poll(&mut pfd, 1, 0) };
    n > 0 && pfd.revents & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR) != 0
}

/// What every line's header needs besides its own severity and time.
#[derive(Clone, Copy, Debug)]
struct Header<'a> {
    format: SyslogFormat,
    /// facility | severity
    pri: u8,
    host: Option<&'a str>,
    pid: u32,
}

/// Formats one line into `buf` (octet-counted when `octet_counting`, RFC 6587 `LEN SP MSG`);
/// returns its length. Never fails: what does not fit is cut.
fn frame(buf: &mut [u8], hdr: &Header<'_>, stamp: Stamp, msg: &str, octet_counting: bool) -> usize {
    let mut line = heapless::String::<FRAME_MAX>::new();
    write_line(&mut Cut(line.as_mut_view()), hdr, stamp, msg);
    let mut framed = heapless::String::<FRAME_BUF>::new();
    if octet_counting {
        let _ = write!(
            Cut(framed.as_mut_view()),
            "{} {}",
            line.len(),
            line.as_str()
        );
    } else {
        let _ = framed.push_str(&line);
    }
    let n = framed.len().min(buf.len());
    buf[..n].copy_from_slice(&framed.as_bytes()[..n]);
    n
}

/// One syslog line (no framing) in `hdr.format`:
/// RFC 3164 `<PRI>Mmm dd hh:mm:ss [HOST ]ghostwatch[PID]: MSG`,
/// RFC 5424 `<PRI>1 YYYY-MM-DDThh:mm:ss.uuuuuu+hh:mm HOST ghostwatch PID MSGID [SD] MSG`.
fn write_line(w: &mut impl fmt::Write, hdr: &Header<'_>, stamp: Stamp, msg: &str) {
    let tm = local_tm(stamp.secs);
    let pri = hdr.pri;
    match hdr.format {
        SyslogFormat::Rfc3164 => {
            const MONTHS: [&str; 12] = [
                "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
            ];
            let mon = MONTHS.get(tm.tm_mon as usize).copied().unwrap_or("Jan");
            let _ = write!(
                w,
                "<{pri}>{mon} {:2} {:02}:{:02}:{:02} ",
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec
            );
            if let Some(h) = hdr.host {
                let _ = write!(w, "{h} ");
            }
            let _ = write!(w, "{APP_NAME}[{}]: {msg}", hdr.pid);
        }
        SyslogFormat::Rfc5424 => {
            let off = tm.tm_gmtoff / 60;
            let sign = if off < 0 { '-' } else { '+' };
            let off = off.unsigned_abs();
            let _ = write!(
                w,
                "<{pri}>1 {:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}{sign}{:02}:{:02} {} {APP_NAME} {} {} ",
                tm.tm_year as i64 + 1900,
                tm.tm_mon + 1,
                tm.tm_mday,
                tm.tm_hour,
                tm.tm_min,
                tm.tm_sec,
                stamp.usec.min(999_999),
                off / 60,
                off % 60,
                hdr.host.unwrap_or("-"),
                hdr.pid,
                msgid(msg),
            );
            let mut sd = heapless::String::<SD_MAX>::new();
            write_sd(&mut sd, msg);
            let _ = write!(w, "{sd} {msg}");
        }
    }
}

/// Broken-down local time of `secs` (UTC if the zone is unknown).
fn local_tm(secs: i64) -> libc::tm {
    // SAFETY: tm is plain data; localtime_r/gmtime_r get valid pointers.
    let mut tm: libc::tm = unsafe { core::mem::zeroed() };
    // The type is localtime_r's own: libc deprecates naming `time_t` on musl (its width
    // follows musl's version; the 32-bit targets opt in to the 64-bit one, see targets/).
    let t = secs as _;
    unsafe {
        if libc::localtime_r(&t, &mut tm).is_null() {
            libc::gmtime_r(&t, &mut tm);
        }
    }
    tm
}

/// The RFC 5424 MSGID of a line: its `event=` word (a bare first pair of 1..=32 printable
/// ASCII characters), else `-`.
fn msgid(msg: &str) -> &str {
    let word = msg
        .split(' ')
        .next()
        .and_then(|p| p.strip_prefix("event="))
        .unwrap_or("");
    let ok = !word.is_empty()
        && word.len() <= 32
        && word.bytes().all(|b| b.is_ascii_graphic() && b != b'"');
    if ok { word } else { "-" }
}

/// The line's logfmt pairs as one SD-ELEMENT `[ghostwatch@32473 key="value" ...]` (`-` when it
/// has none). Values are the logfmt values without their quotes (`\"` becomes `"`; `\\` and
/// `\xNN` stay as written), escaped as RFC 5424 §6.3.3 asks: `"`, `\` and `]` get a backslash.
/// A key that is not a valid SD-NAME, or a pair that does not fit, is left out whole.
fn write_sd<const N: usize>(sd: &mut heapless::String<N>, msg: &str) {
    let _ = sd.push('[');
    let _ = sd.push_str(SD_ID);
    let start = sd.len();
    for pair in split_pairs(msg) {
        let Some((key, value)) = pair.split_once('=') else {
            continue;
        };
        let name_ok = !key.is_empty()
            && key.len() <= 32
            && key
                .bytes()
                .all(|b| b.is_ascii_graphic() && !matches!(b, b'=' | b']' | b'"'));
        if !name_ok {
            continue;
        }
        let inner = match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
            Some(v) if value.len() >= 2 => v,
            _ => value,
        };
        let before = sd.len();
        let ok = (|| -> Result<(), ()> {
            sd.push(' ').map_err(drop)?;
            sd.push_str(key).map_err(drop)?;
            sd.push_str("=\"").map_err(drop)?;
            let mut chars = inner.chars().peekable();
            while let Some(c) = chars.next() {
                let c = if c == '\\' && chars.peek() == Some(&'"') {
                    chars.next();
                    '"'
                } else {
                    c
                };
                if matches!(c, '"' | '\\' | ']') {
                    sd.push('\\').map_err(drop)?;
                }
                sd.push(c).map_err(drop)?;
            }
            sd.push('"').map_err(drop)?;
            // Room for the closing bracket.
            if sd.len() < sd.capacity() {
                Ok(())
            } else {
                Err(())
            }
        })();
        if ok.is_err() {
            sd.truncate(before);
            break;
        }
    }
    if sd.len() == start {
        sd.clear();
        let _ = sd.push('-');
    } else {
        let _ = sd.push(']');
    }
}

/// Every facility name syslog's `Facility::from_str` knows (it also takes them with `log_`).
const FACILITIES: [(&str, Facility); 24] = [
    ("kern", Facility::LOG_KERN),
    ("user", Facility::LOG_USER),
    ("mail", Facility::LOG_MAIL),
    ("daemon", Facility::LOG_DAEMON),
    ("auth", Facility::LOG_AUTH),
    ("syslog", Facility::LOG_SYSLOG),
    ("lpr", Facility::LOG_LPR),
    ("news", Facility::LOG_NEWS),
    ("uucp", Facility::LOG_UUCP),
    ("cron", Facility::LOG_CRON),
    ("authpriv", Facility::LOG_AUTHPRIV),
    ("ftp", Facility::LOG_FTP),
    ("ntp", Facility::LOG_NTP),
    ("audit", Facility::LOG_AUDIT),
    ("alert", Facility::LOG_ALERT),
    ("clock_daemon", Facility::LOG_CLOCK_DAEMON),
    ("local0", Facility::LOG_LOCAL0),
    ("local1", Facility::LOG_LOCAL1),
    ("local2", Facility::LOG_LOCAL2),
    ("local3", Facility::LOG_LOCAL3),
    ("local4", Facility::LOG_LOCAL4),
    ("local5", Facility::LOG_LOCAL5),
    ("local6", Facility::LOG_LOCAL6),
    ("local7", Facility::LOG_LOCAL7),
];

/// `daemon`, `LOG_DAEMON`, `Local0`: what syslog's `Facility::from_str` accepts. Ours because
/// that one lowercases with `str::to_lowercase`, whose Unicode case tables cost ~3 KiB of a
/// router's flash; the names are ASCII, so ASCII case folding accepts the same names.
fn parse_facility(name: &str) -> Option<Facility> {
    let name = match name.get(..4) {
        Some(p) if p.eq_ignore_ascii_case("log_") => &name[4..],
        _ => name,
    };
    FACILITIES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|&(_, f)| f)
}

/// The sink state; a panic elsewhere while it was held must not silence logging.
fn lock() -> std::sync::MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(|e| e.into_inner())
}

/// The hostname for remote syslog (local sockets get it from syslogd), cut to 64 bytes.
fn hostname() -> Option<heapless::String<64>> {
    let mut buf = [0u8; 65];
    // SAFETY: buf is valid for its length; gethostname NUL-terminates when it fits.
    if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len() - 1) } != 0 {
        return None;
    }
    let n = buf.iter().position(|&b| b == 0).unwrap_or(64);
    let name = core::str::from_utf8(buf.get(..n)?).ok()?;
    if name.is_empty() || name.contains(' ') {
        return None;
    }
    heapless::String::try_from(name).ok()
}

/// Writes `ghostwatch: line\n` to stderr in one write(2) when it fits, so lines from
/// different threads do not interleave. Errors are ignored: there is nowhere left to report.
fn write_stderr(line: &str) {
    let b: heapless::String<{ MAX_MESSAGE + 16 }> =
        cut_fmt(format_args!("{STDERR_PREFIX}{line}\n"));
    let mut data = b.as_bytes();
    while !data.is_empty() {
        // SAFETY: data is valid for data.len() bytes.
        let n = unsafe { libc::write(2, data.as_ptr().cast(), data.len()) };
        if n <= 0 {
            if n < 0 && crate::sys::errno() == libc::EINTR {
                continue;
            }
            return;
        }
        data = data.get(n as usize..).unwrap_or_default();
    }
}

struct DestText<'a>(&'a Dest);

impl fmt::Display for DestText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Dest::Stderr => f.write_str("stderr"),
            Dest::Unix(p) => write!(f, "unix:{p}"),
            Dest::Udp(a) => write!(f, "udp:{a}"),
            Dest::Tcp(a) => write!(f, "tcp:{a}"),
        }
    }
}

/// Routes `log::error!` and friends through `emit`, so library and agent messages share the
/// one path (and its fallback and counters).
struct SinkLogger;

impl log::Log for SinkLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Info
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let sev = match record.level() {
            log::Level::Error => Severity::Err,
            log::Level::Warn => Severity::Warning,
            _ => Severity::Info,
        };
        let b: heapless::String<MAX_MESSAGE> = cut_fmt(*record.args());
        emit(sev, b.as_str());
    }

    fn flush(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(format: SyslogFormat, host: Option<&str>, msg: &str, octets: bool) -> String {
        let hdr = Header {
            format,
            pri: Facility::LOG_DAEMON as u8 | Severity::Notice.code(),
            host,
            pid: 42,
        };
        let mut buf = [0u8; FRAME_BUF];
        let stamp = Stamp {
            secs: 1_765_000_000,
            usec: 123_456,
        };
        let n = frame(&mut buf, &hdr, stamp, msg, octets);
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn rfc3164_header_and_octet_counting() {
        let s = render(SyslogFormat::Rfc3164, None, "event=action result=ok", false);
        // daemon(3)*8 + notice(5) = 29
        assert!(s.starts_with("<29>"), "{s}");
        assert!(
            s.ends_with(" ghostwatch[42]: event=action result=ok"),
            "{s}"
        );
        // "<29>" + "Mmm dd hh:mm:ss " = 4 + 16
        assert_eq!(s.find("ghostwatch"), Some(20), "{s}");

        let s = render(SyslogFormat::Rfc3164, Some("router"), "x", true);
        let (len, rest) = s.split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), rest.len());
        assert!(rest.ends_with(" router ghostwatch[42]: x"), "{s}");
    }

    #[test]
    fn rfc5424_header_msgid_and_structured_data() {
        let msg =
            r#"event=action rule=zebra-clamp comm="ze bra\x1b]" note="say \"hi\" c:\\d" seq=7"#
                .to_string();
        let s = render(SyslogFormat::Rfc5424, Some("router"), &msg, false);
        let rest = s.strip_prefix("<29>1 ").expect(&s);
        let f: Vec<&str> = rest.splitn(6, ' ').collect();
        // 2025-12-06T..., local time with its offset, microseconds
        assert_eq!(f[0].len(), "2025-12-06T05:46:40.123456+00:00".len(), "{s}");
        assert!(f[0].contains(".123456"), "{s}");
        assert_eq!(&f[1..5], ["router", "ghostwatch", "42", "action"], "{s}");
        assert!(
            f[5].starts_with("[ghostwatch@32473 event=\"action\" rule=\"zebra-clamp\" "),
            "{s}"
        );
        assert!(s.ends_with(&format!("] {msg}")), "{s}");
        // ']' '"' '\' escaped inside PARAM-VALUE; logfmt's \" is a plain quote there.
        assert!(s.contains(r#" comm="ze bra\\x1b\]" "#), "{s}");
        assert!(s.contains(r#" note="say \"hi\" c:\\\\d" "#), "{s}");
        assert!(s.contains(r#" seq="7"]"#), "{s}");

        // Not logfmt (a log-crate message): no msgid, no SD; no host: "-".
        let s = render(SyslogFormat::Rfc5424, None, "plain words here", true);
        let (len, rest) = s.split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), rest.len());
        assert!(
            rest.ends_with(" - ghostwatch 42 - - plain words here"),
            "{s}"
        );
    }

    #[test]
    fn structured_data_that_does_not_fit_is_left_out_whole() {
        let big = "a".repeat(600);
        let msg = format!("event=error k1={big} k2={big} k3={big}");
        let mut sd = heapless::String::<SD_MAX>::new();
        write_sd(&mut sd, &msg);
        assert!(sd.ends_with("\"]"), "{sd}");
        assert!(sd.contains(" k2=") && !sd.contains(" k3="), "{sd}");
        let s = render(
            SyslogFormat::Rfc5424,
            Some("h"),
            cut(&msg, MAX_MESSAGE),
            true,
        );
        let (len, rest) = s.split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), rest.len());
    }

    #[test]
    fn ring_keeps_order_and_gives_up_the_oldest() {
        let mut r = Ring {
            slots: Heap(None),
            head: 0,
            len: 0,
        };
        assert!(r.resize(3).is_empty());
        let mut evicted = None;
        for i in 0..5 {
            r.push(&mut evicted)
                .unwrap()
                .set(Severity::Info, Stamp::default(), &format!("l{i}"));
        }
        assert_eq!(evicted.map(|s| s.text().to_string()).as_deref(), Some("l1"));
        let gone = r.resize(2);
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].text(), "l2");
        let mut s = EMPTY_SLOT;
        let mut got = Vec::new();
        while r.pop_into(&mut s) {
            got.push(s.text().to_string());
        }
        assert_eq!(got, ["l3", "l4"]);
    }

    #[test]
    fn facility_names_are_syslogs_own() {
        use std::str::FromStr;
        let same = |name: &str| {
            let ours = parse_facility(name).map(|f| f as u8);
            let theirs = Facility::from_str(name).ok().map(|f| f as u8);
            assert_eq!(ours, theirs, "{name}");
            ours.is_some()
        };
        for (n, _) in FACILITIES {
            assert!(same(n) && same(&format!("log_{n}")) && same(&n.to_uppercase()));
        }
        for n in crate::config::schema::FACILITIES.iter().copied() {
            assert!(same(n), "{n}");
        }
        for n in [
            "",
            "log_",
            "LOG",
            "dæmon",
            "daemonx",
            "local8",
            "log_log_kern",
        ] {
            assert!(!same(n), "{n}");
        }
    }

    #[test]
    fn long_messages_are_cut_not_split() {
        let msg = "é".repeat(MAX_MESSAGE);
        for f in SyslogFormat::ALL {
            let s = render(f, None, cut(&msg, MAX_MESSAGE), true);
            let (len, rest) = s.split_once(' ').unwrap();
            assert_eq!(len.parse::<usize>().unwrap(), rest.len());
        }
        assert!(cut("aé", 2) == "a");
    }
}
