//! Where audit and error lines go: syslog (unix socket, UDP, TCP) through the `log` and `syslog`
//! crates, with reconnect, and stderr as the fallback with a count of lines that went there.
//!
//! One global sink (the `log` crate allows one logger per process): its state
//! lives in a static Mutex and is swapped on reconfigure. Nothing is dropped silently: a line
//! syslog refuses is resent once over a fresh connection, then written to stderr and counted.
//! Reconnects are tried at most once a second, so a dead syslogd costs one failed send per line.

use crate::config::{Config, Str, SyslogTarget};
use crate::sys::{Cut, cut, cut_fmt};
use core::fmt::{self, Write as _};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::sync::Mutex;
use std::time::Duration;
use syslog::{Facility, LogFormat, Logger, LoggerBackend};

/// Severity of a line (maps to syslog priority).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Err,
    Warning,
    Notice,
    Info,
}

impl Severity {
    fn to_syslog(self) -> syslog::Severity {
        match self {
            Severity::Err => syslog::Severity::LOG_ERR,
            Severity::Warning => syslog::Severity::LOG_WARNING,
            Severity::Notice => syslog::Severity::LOG_NOTICE,
            Severity::Info => syslog::Severity::LOG_INFO,
        }
    }
}

/// Counters the status file and metrics show.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SinkStats {
    pub lines_sent: u64,
    /// Lines that could not go to syslog and went to stderr instead.
    pub lines_to_stderr: u64,
    pub reconnects: u64,
}

/// Longest message (after the syslog header) sent; longer lines are cut at a char boundary.
pub const MAX_MESSAGE: usize = crate::output::audit::MAX_LINE;
/// Least time between two connection attempts.
pub const RECONNECT_INTERVAL_MS: u64 = 1000;
/// A stuck syslogd (full queue, stalled collector) may delay a line by at most this per try.
const SEND_TIMEOUT: Duration = Duration::from_millis(250);
const CONNECT_TIMEOUT: Duration = Duration::from_millis(1000);
/// What every stderr line starts with, so it is greppable next to other daemons' output.
const STDERR_PREFIX: &str = "ghostwatch: ";

/// Where lines go, resolved once at init (no DNS per line).
#[derive(Clone, Debug)]
enum Dest {
    Stderr,
    Unix(Str),
    Udp(SocketAddr),
    Tcp(SocketAddr),
}

struct State {
    dest: Dest,
    facility: Facility,
    logger: Option<Logger<LoggerBackend, Rfc3164>>,
    /// When a connection was last tried (monotonic ms), for the once-a-second limit.
    last_connect_ms: Option<u64>,
    /// Counters since the process started (they survive reconfigure). Plain integers under the
    /// lock every emit holds anyway: 32-bit MIPS and ARMv5/6 have no 64-bit atomics.
    lines_sent: u64,
    lines_to_stderr: u64,
    reconnects: u64,
}

static STATE: Mutex<State> = Mutex::new(State {
    dest: Dest::Stderr,
    facility: Facility::LOG_DAEMON,
    logger: None,
    last_connect_ms: None,
    lines_sent: 0,
    lines_to_stderr: 0,
    reconnects: 0,
});
static LOG_ONCE: std::sync::Once = std::sync::Once::new();
static LOGGER: SinkLogger = SinkLogger;

/// Installs the global logger for `target` (replacing any earlier target on reload).
///
/// Also routes `log::error!`/`warn!`/`info!` through `emit`. Fails only on a bad facility name
/// or a UDP/TCP address that does not resolve; a syslogd that is not up yet is not an error
/// (a note goes to stderr, lines go to stderr until a reconnect succeeds).
pub fn init(target: &SyslogTarget, facility: &str) -> Result<(), &'static str> {
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
    st.dest = dest;
    st.facility = facility;
    st.logger = None;
    st.last_connect_ms = Some(crate::sys::monotonic_ms());
    if matches!(st.dest, Dest::Stderr) {
        return Ok(());
    }
    match connect(&st.dest, facility) {
        Ok(l) => st.logger = Some(l),
        Err(e) => {
            let note: heapless::String<256> = cut_fmt(format_args!(
                "syslog {} not reachable yet ({e}); lines go to stderr until it is",
                DestText(&st.dest)
            ));
            write_stderr(note.as_str());
        }
    }
    Ok(())
}

/// Sends one line at `sev`. Never fails: falls back to stderr and counts it.
pub fn emit(sev: Severity, line: &str) {
    let line = cut(line, MAX_MESSAGE);
    let mut st = lock();
    if matches!(st.dest, Dest::Stderr) {
        write_stderr(line);
        st.lines_sent += 1;
        return;
    }
    if let Some(logger) = st.logger.as_mut() {
        if !peer_closed(&logger.backend) && send(logger, sev, line) {
            st.lines_sent += 1;
            return;
        }
        st.logger = None;
    }
    // Broken or never connected: one fresh connection, at most once a second.
    let now = crate::sys::monotonic_ms();
    let may_try = st
        .last_connect_ms
        .is_none_or(|t| now.saturating_sub(t) >= RECONNECT_INTERVAL_MS);
    if may_try {
        st.last_connect_ms = Some(now);
        if let Ok(mut logger) = connect(&st.dest, st.facility) {
            st.reconnects += 1;
            let ok = send(&mut logger, sev, line);
            st.logger = Some(logger);
            if ok {
                st.lines_sent += 1;
                return;
            }
        }
    }
    write_stderr(line);
    st.lines_to_stderr += 1;
}

/// The counters since the process started (they survive reconfigure).
pub fn stats() -> SinkStats {
    let st = lock();
    SinkStats {
        lines_sent: st.lines_sent,
        lines_to_stderr: st.lines_to_stderr,
        reconnects: st.reconnects,
    }
}

/// Re-applies the target and facility from a (reloaded) config.
pub fn reconfigure(cfg: &Config) -> Result<(), &'static str> {
    init(&cfg.syslog, &cfg.facility)
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

/// `HOST:PORT` to the first address it resolves to, the way std's `ToSocketAddrs for str`
/// does (an address literal first, else getaddrinfo with SOCK_STREAM hints, the first IPv4 or
/// IPv6 result with PORT set), without std's LookupHost iterator and its boxed io::Error
/// (~1.5 KiB of a router's flash).
fn resolve(addr: &str) -> Result<SocketAddr, &'static str> {
    const BAD: &str = "syslog address does not resolve (expected HOST:PORT)";
    if let Ok(a) = addr.parse::<SocketAddr>() {
        return Ok(a);
    }
    let (host, port) = addr.rsplit_once(':').ok_or(BAD)?;
    let port: u16 = port.parse().map_err(|_| BAD)?;
    let host = std::ffi::CString::new(host).map_err(|_| BAD)?;
    // SAFETY: a zeroed addrinfo is a valid "no hints" value; getaddrinfo gets valid pointers
    // and its list is walked read-only, then freed once.
    unsafe {
        let mut hints: libc::addrinfo = core::mem::zeroed();
        hints.ai_socktype = libc::SOCK_STREAM;
        let mut list: *mut libc::addrinfo = core::ptr::null_mut();
        if libc::getaddrinfo(host.as_ptr(), core::ptr::null(), &hints, &mut list) != 0 {
            return Err(BAD);
        }
        let mut found = None;
        let mut cur = list;
        while let Some(ai) = cur.as_ref() {
            found = socket_addr_of(ai);
            if found.is_some() {
                break;
            }
            cur = ai.ai_next;
        }
        libc::freeaddrinfo(list);
        found
            .map(|mut a: SocketAddr| {
                a.set_port(port);
                a
            })
            .ok_or(BAD)
    }
}

/// The IPv4 or IPv6 address of one getaddrinfo result (None for other families).
///
/// # Safety
/// `ai.ai_addr` points to `ai.ai_addrlen` readable bytes (as getaddrinfo returns it).
unsafe fn socket_addr_of(ai: &libc::addrinfo) -> Option<SocketAddr> {
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
    let len = ai.ai_addrlen as usize;
    // SAFETY: the family says which struct it is; the length is checked before reading it.
    unsafe {
        match ai.ai_family {
            libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
                let sa = ai.ai_addr.cast::<libc::sockaddr_in>().read_unaligned();
                let ip = Ipv4Addr::from(u32::from_be(sa.sin_addr.s_addr));
                Some(SocketAddrV4::new(ip, u16::from_be(sa.sin_port)).into())
            }
            libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
                let sa = ai.ai_addr.cast::<libc::sockaddr_in6>().read_unaligned();
                let ip = Ipv6Addr::from(sa.sin6_addr.s6_addr);
                let port = u16::from_be(sa.sin6_port);
                Some(SocketAddrV6::new(ip, port, sa.sin6_flowinfo, sa.sin6_scope_id).into())
            }
            _ => None,
        }
    }
}

/// Opens a connection to `dest` with send timeouts set (a stuck syslogd must not stall the
/// agent). TCP is connected here, with a timeout, because `syslog::tcp` would block for
/// minutes on an unreachable collector; unix and UDP the way `syslog::unix_custom` and
/// `syslog::udp` do, into the same `LoggerBackend`, with the same error texts.
fn connect(dest: &Dest, facility: Facility) -> Result<Logger<LoggerBackend, Rfc3164>, String> {
    let fmt = |octet_counting, hostname| Rfc3164 {
        facility,
        pid: std::process::id(),
        hostname,
        octet_counting,
    };
    let logger = match dest {
        Dest::Stderr => return Err("stderr is not a syslog".into()),
        // The text syslog::unix_custom gave (its io errors come as "Io error: ...").
        Dest::Unix(path) => Logger::new(
            unix_backend(path.as_str()).map_err(|e| format!("Io error: {e}"))?,
            fmt(false, None),
        ),
        Dest::Udp(server) => {
            let local = if server.is_ipv4() {
                SocketAddr::from((std::net::Ipv4Addr::UNSPECIFIED, 0))
            } else {
                SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 0))
            };
            let s = UdpSocket::bind(local).map_err(|e| e.to_string())?;
            Logger::new(LoggerBackend::Udp(s, *server), fmt(false, hostname()))
        }
        Dest::Tcp(server) => {
            let s =
                TcpStream::connect_timeout(server, CONNECT_TIMEOUT).map_err(|e| e.to_string())?;
            Logger::new(
                LoggerBackend::Tcp(std::io::BufWriter::new(s)),
                fmt(true, hostname()),
            )
        }
    };
    let r = match &logger.backend {
        LoggerBackend::Unix(s) => s.set_write_timeout(Some(SEND_TIMEOUT)),
        LoggerBackend::UnixStream(s) => s.get_ref().set_write_timeout(Some(SEND_TIMEOUT)),
        LoggerBackend::Udp(s, _) => s.set_write_timeout(Some(SEND_TIMEOUT)),
        LoggerBackend::Tcp(s) => s.get_ref().set_write_timeout(Some(SEND_TIMEOUT)),
    };
    r.map_err(|e| e.to_string())?;
    Ok(logger)
}

/// What syslog::unix_custom does, without boxing the error into syslog's `Error` (whose
/// `dyn Error` vtables bring io::Error's Debug code): a datagram socket connected to `path`,
/// or a stream one when `path` is a SOCK_STREAM socket (EPROTOTYPE).
fn unix_backend(path: &str) -> std::io::Result<LoggerBackend> {
    let sock = UnixDatagram::unbound()?;
    match sock.connect(path) {
        Ok(()) => Ok(LoggerBackend::Unix(sock)),
        Err(e) if e.raw_os_error() == Some(libc::EPROTOTYPE) => Ok(LoggerBackend::UnixStream(
            std::io::BufWriter::new(UnixStream::connect(path)?),
        )),
        Err(e) => Err(e),
    }
}

/// Sends one formatted line; false on any error (the caller reconnects or falls back).
fn send(logger: &mut Logger<LoggerBackend, Rfc3164>, sev: Severity, line: &str) -> bool {
    logger
        .formatter
        .format(&mut logger.backend, sev.to_syslog(), line)
        .is_ok()
}

/// True if a stream connection's peer has hung up. A write to a dead TCP peer usually
/// "succeeds" into the kernel buffer and only the *next* one fails, which would lose a line;
/// asking first makes the reconnect happen before the line is sent.
fn peer_closed(backend: &LoggerBackend) -> bool {
    use std::os::fd::AsRawFd;
    let fd = match backend {
        LoggerBackend::Tcp(s) => s.get_ref().as_raw_fd(),
        LoggerBackend::UnixStream(s) => s.get_ref().as_raw_fd(),
        _ => return false,
    };
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLRDHUP,
        revents: 0,
    };
    // SAFETY: one valid pollfd, zero timeout.
    let n = unsafe { libc::poll(&mut pfd, 1, 0) };
    n > 0 && pfd.revents & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR) != 0
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

/// RFC 3164 (BSD syslog) lines: `<PRI>Mmm dd hh:mm:ss [host ]ghostwatch[PID]: message`.
///
/// Ours rather than syslog's Formatter3164: that one stamps UTC, builds a String per line,
/// and sends TCP lines without framing (rsyslog would glue them together). This one formats
/// into a stack buffer, writes each line with one write (one datagram), never panics, and
/// frames TCP with RFC 6587 octet counting (`LEN SP MSG`), which rsyslog's imtcp accepts.
#[derive(Clone, Debug)]
pub struct Rfc3164 {
    pub facility: Facility,
    pub pid: u32,
    pub hostname: Option<heapless::String<64>>,
    pub octet_counting: bool,
}

/// Longest frame: header (PRI, timestamp, 64-byte hostname, tag, PID) plus the message.
const FRAME_MAX: usize = 160 + MAX_MESSAGE;

impl LogFormat<&str> for Rfc3164 {
    fn format<W: std::io::Write>(
        &self,
        w: &mut W,
        severity: syslog::Severity,
        message: &str,
    ) -> syslog::Result<()> {
        let mut msg = heapless::String::<FRAME_MAX>::new();
        let pri = self.facility as u8 | severity as u8;
        let mut m = Cut(msg.as_mut_view());
        let _ = write!(m, "<{pri}>");
        write_timestamp(&mut m);
        if let Some(h) = &self.hostname {
            let _ = write!(m, "{h} ");
        }
        let _ = write!(m, "ghostwatch[{}]: {message}", self.pid);
        let sent = if self.octet_counting {
            let framed: heapless::String<{ FRAME_MAX + 8 }> =
                cut_fmt(format_args!("{} {}", msg.len(), msg.as_str()));
            w.write_all(framed.as_bytes())
        } else {
            w.write_all(msg.as_bytes())
        };
        sent.and_then(|_| w.flush()).map_err(syslog::Error::Write)
    }
}

/// `Mmm dd hh:mm:ss ` in local time (RFC 3164); falls back to UTC if the zone is unknown.
fn write_timestamp(w: &mut impl fmt::Write) {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    // SAFETY: time(NULL) and localtime_r with valid pointers; tm is plain data.
    let mut tm: libc::tm = unsafe { core::mem::zeroed() };
    unsafe {
        let t = libc::time(core::ptr::null_mut());
        if libc::localtime_r(&t, &mut tm).is_null() {
            libc::gmtime_r(&t, &mut tm);
        }
    }
    let mon = MONTHS.get(tm.tm_mon as usize).copied().unwrap_or("Jan");
    let _ = write!(
        w,
        "{mon} {:2} {:02}:{:02}:{:02} ",
        tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec
    );
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

    fn render(f: &Rfc3164, msg: &str) -> String {
        let mut out = Vec::new();
        f.format(&mut out, syslog::Severity::LOG_NOTICE, msg)
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn rfc3164_header_and_octet_counting() {
        let mut f = Rfc3164 {
            facility: Facility::LOG_DAEMON,
            pid: 42,
            hostname: None,
            octet_counting: false,
        };
        let s = render(&f, "event=action result=ok");
        // daemon(3)*8 + notice(5) = 29
        assert!(s.starts_with("<29>"), "{s}");
        assert!(
            s.ends_with(" ghostwatch[42]: event=action result=ok"),
            "{s}"
        );
        // "<29>" + "Mmm dd hh:mm:ss " = 4 + 16
        assert_eq!(s.find("ghostwatch"), Some(20), "{s}");

        f.octet_counting = true;
        f.hostname = heapless::String::try_from("router").ok();
        let s = render(&f, "x");
        let (len, rest) = s.split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), rest.len());
        assert!(rest.ends_with(" router ghostwatch[42]: x"), "{s}");
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
    fn unix_backend_is_datagram_or_stream_like_syslogs() {
        let dir = std::env::temp_dir().join(format!("gw-sink-unix-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (dgram, stream) = (dir.join("dgram"), dir.join("stream"));
        let _d = UnixDatagram::bind(&dgram).unwrap();
        let _s = std::os::unix::net::UnixListener::bind(&stream).unwrap();
        let kind = |p: &std::path::Path| match unix_backend(p.to_str().unwrap()) {
            Ok(LoggerBackend::Unix(_)) => "dgram".to_string(),
            Ok(LoggerBackend::UnixStream(_)) => "stream".to_string(),
            Ok(_) => "other".to_string(),
            Err(e) => format!("Io error: {e}"),
        };
        assert_eq!(kind(&dgram), "dgram");
        assert_eq!(kind(&stream), "stream");
        assert_eq!(
            kind(&dir.join("none")),
            "Io error: No such file or directory (os error 2)"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn resolve_agrees_with_std() {
        use std::net::ToSocketAddrs;
        for a in [
            "127.0.0.1:514",
            "[::1]:601",
            "localhost:514",
            "[fe80::1%1]:514",
        ] {
            let std_first = a.to_socket_addrs().ok().and_then(|mut i| i.next());
            assert_eq!(resolve(a).ok(), std_first, "{a}");
            assert!(std_first.is_some(), "{a}");
        }
        // (No unknown name: resolving one would query the DNS server off this box.)
        for a in [
            "",
            "localhost",
            "localhost:",
            "localhost:99999",
            "localhost:-1",
        ] {
            assert!(resolve(a).is_err(), "{a}");
            assert!(
                a.to_socket_addrs().map_or(true, |mut i| i.next().is_none()),
                "{a}"
            );
        }
    }

    #[test]
    fn long_messages_are_cut_not_split() {
        let f = Rfc3164 {
            facility: Facility::LOG_USER,
            pid: 1,
            hostname: None,
            octet_counting: true,
        };
        let msg = "é".repeat(MAX_MESSAGE);
        let s = render(&f, cut(&msg, MAX_MESSAGE));
        let (len, rest) = s.split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), rest.len());
        assert!(cut("aé", 2) == "a");
    }
}
