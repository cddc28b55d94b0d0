//! `HOST:PORT` of the `udp:`/`tcp:` syslog targets to a socket address, without musl's
//! getaddrinfo (issue 16: its resolver, resolv.conf and hosts readers, RFC 3484 sort, stdio,
//! strtol and qsort were ~21 KiB of a router's flash, for one lookup at start and reload;
//! this is ~4 KiB).
//!
//! - Literals: a dotted quad, `[IPv6]`, `[IPv6%N]` (numeric scope), in the forms std's
//!   parsers take (own parsers: musl's inet_pton was larger).
//! - Names (letters, digits, `-`, `_`; labels of 1–63 bytes, at most 253 bytes, one trailing
//!   dot allowed, the last label not all digits): `/etc/hosts` first — the first line naming
//!   it (as address or alias, any case), an IPv4 line before an IPv6 one wherever they are;
//!   then `localhost` is 127.0.0.1 even without a hosts line (RFC 6761: never asked of DNS;
//!   musl would ask); then DNS over UDP to the `nameserver`s of `/etc/resolv.conf` (at most
//!   3, 127.0.0.1 when none), as musl does it: `search`/`domain` suffixes first for a name
//!   with fewer dots than `ndots` (and no trailing dot), the search stopping at the first
//!   answer that is not NXDOMAIN; A first, AAAA when the name has no A; all nameservers asked
//!   at once, resent every `timeout`/`attempts`, `timeout` (5 s, attempts 2: musl's
//!   defaults) per question, and the whole lookup cut at `MAX_LOOKUP_MS`.
//!
//! What answers is untrusted (the agent is root): one connect()ed UDP socket per nameserver
//! (the kernel drops datagrams from other sources), a random query id (getrandom, else
//! /dev/urandom, else the clock), the id, QR, opcode and the question checked (else the
//! datagram is ignored and the wait goes on), every read bounds-checked, compression
//! pointers never followed (a pointer ends a name being skipped, so no walk can loop), the
//! first record of the type asked taken as musl takes it (see `answer`). SERVFAIL, REFUSED,
//! a garbled answer, a refusal (ICMP) or a truncated answer (TC, or longer than 512 bytes)
//! count as that nameserver failing: there is no TCP fallback (an A or AAAA answer for one
//! name fits 512 bytes). The two files are read only when regular (a FIFO never blocks us),
//! in a fixed 1 KiB buffer, at most `MAX_FILE_BYTES` of each, lines over 1 KiB skipped.
//! No allocation.

use crate::observe::proc::LineReader;
use crate::sys::{self, CPath};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

const BAD: &str = "syslog address does not resolve (expected HOST:PORT)";

/// The whole lookup of one name (every search suffix, A and AAAA) ends within this.
pub const MAX_LOOKUP_MS: u64 = 10_000;
/// What is read of /etc/hosts and /etc/resolv.conf at most.
pub const MAX_FILE_BYTES: usize = 1 << 20;

/// Where names are looked up: the system's files, or a test's (with its DNS port).
pub struct Sources<'a> {
    pub hosts: &'a [u8],
    pub resolv_conf: &'a [u8],
    pub dns_port: u16,
}

pub const SYSTEM: Sources<'static> = Sources {
    hosts: b"/etc/hosts",
    resolv_conf: b"/etc/resolv.conf",
    dns_port: 53,
};

/// `HOST:PORT` to the address to send to (see the module comment), from the system's files.
pub fn resolve(addr: &str) -> Result<SocketAddr, &'static str> {
    resolve_from(addr, &SYSTEM)
}

/// `resolve` with names looked up in `src`.
pub fn resolve_from(addr: &str, src: &Sources<'_>) -> Result<SocketAddr, &'static str> {
    let (host, port) = addr.rsplit_once(':').ok_or(BAD)?;
    let port: u16 = port.parse().map_err(|_| BAD)?;
    let mut a = match host.strip_prefix('[') {
        Some(h) => literal(h.strip_suffix(']').ok_or(BAD)?.as_bytes(), true),
        None => literal(host.as_bytes(), false).or_else(|| lookup(host.as_bytes(), src)),
    }
    .ok_or(BAD)?;
    a.set_port(port);
    Ok(a)
}

/// An address literal (port 0): a dotted quad unless `v6_only`, else IPv6 with an optional
/// numeric `%scope`. The forms std's parsers take (no leading zeros in a quad, no inet_aton
/// short forms): musl's inet_pton was 728 bytes of flash.
fn literal(text: &[u8], v6_only: bool) -> Option<SocketAddr> {
    let (ip, scope) = match text.iter().position(|&b| b == b'%') {
        Some(i) => (&text[..i], Some(sys::parse_u32(&text[i + 1..])?)),
        None => (text, None),
    };
    if let (false, None, Some(v4)) = (v6_only, scope, ipv4(ip)) {
        return Some(SocketAddr::from((v4, 0)));
    }
    Some(SocketAddrV6::new(ipv6(ip)?.into(), 0, 0, scope.unwrap_or(0)).into())
}

/// A dotted quad: four decimal numbers 0–255, none with a leading zero.
fn ipv4(s: &[u8]) -> Option<[u8; 4]> {
    let mut out = [0u8; 4];
    let (mut i, mut rest) = (0, s);
    loop {
        let n = rest.iter().position(|&b| b == b'.').unwrap_or(rest.len());
        if n > 1 && rest[0] == b'0' {
            return None;
        }
        *out.get_mut(i)? = u8::try_from(sys::parse_u32(&rest[..n])?).ok()?;
        if n == rest.len() {
            return (i == 3).then_some(out);
        }
        (i, rest) = (i + 1, &rest[n + 1..]);
    }
}

/// IPv6 text (RFC 4291 §2.2): eight groups of 1–4 hex digits, one `::` for a run of zero
/// groups, the last 32 bits optionally a dotted quad.
fn ipv6(s: &[u8]) -> Option<[u8; 16]> {
    let mut w = [0u8; 16];
    let (mut n, mut i, mut gap) = (0, 0, None);
    if s.starts_with(b"::") {
        (i, gap) = (2, Some(0));
    }
    while i < s.len() {
        let rest = &s[i..];
        let hex = rest.iter().take_while(|b| b.is_ascii_hexdigit()).count();
        if rest.get(hex) == Some(&b'.') {
            w.get_mut(n..n + 4)?.copy_from_slice(&ipv4(rest)?);
            n += 4;
            break;
        }
        if hex == 0 || hex > 4 || n == 16 {
            return None;
        }
        // All hex digits (`hex` counted them): 0-9, a-f or A-F.
        let v = rest[..hex].iter().fold(0u16, |v, &b| {
            let d = if b <= b'9' {
                b - b'0'
            } else {
                (b | 0x20) - b'a' + 10
            };
            v << 4 | d as u16
        });
        w[n..n + 2].copy_from_slice(&v.to_be_bytes());
        (n, i) = (n + 2, i + hex);
        if i < s.len() {
            if s[i] != b':' {
                return None;
            }
            i += 1;
            if s.get(i) == Some(&b':') {
                if gap.is_some() {
                    return None;
                }
                (i, gap) = (i + 1, Some(n));
            } else if i == s.len() {
                return None; // a trailing single ':'
            }
        }
    }
    match gap {
        Some(g) if n < 16 => {
            w.copy_within(g..n, 16 - (n - g));
            w[g..16 - (n - g)].fill(0);
        }
        None if n == 16 => {}
        _ => return None,
    }
    Some(w)
}

/// The next blank-separated word of `s` (empty at its end); `s` moves past it.
fn word<'a>(s: &mut &'a [u8]) -> &'a [u8] {
    let t = s.trim_ascii_start();
    let (w, rest) = t.split_at(
        t.iter()
            .position(u8::is_ascii_whitespace)
            .unwrap_or(t.len()),
    );
    *s = rest;
    w
}

/// `s` up to a `#` (a comment).
fn uncomment(s: &[u8]) -> &[u8] {
    &s[..s.iter().position(|&b| b == b'#').unwrap_or(s.len())]
}

/// A name: the hosts file, localhost, then DNS (see the module comment).
fn lookup(name: &[u8], src: &Sources<'_>) -> Option<SocketAddr> {
    let bare = name.strip_suffix(b".").unwrap_or(name);
    let mut q = [0u8; QUERY_MAX];
    // Also the check that it is a host name at all: nothing else is looked up.
    query(bare, &mut q)?;
    if let Some(a) = from_hosts(src.hosts, bare) {
        return Some(a);
    }
    if bare.eq_ignore_ascii_case(b"localhost") {
        return Some(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0).into());
    }
    let mut conf = Conf::new();
    // A missing or unreadable resolv.conf: musl's defaults (127.0.0.1).
    let _ = each_line(src.resolv_conf, &mut |l| {
        conf.line(l);
        false
    });
    for a in &mut conf.ns {
        a.set_port(src.dns_port);
    }
    let conf = &conf;
    let end = now_ms().wrapping_add(MAX_LOOKUP_MS as u32);
    let mut out = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
    let dots = name.iter().filter(|&&b| b == b'.').count();
    if bare.len() == name.len() && dots < conf.opt[NDOTS] as usize {
        let mut search = &conf.search[..conf.search_len];
        loop {
            let d = word(&mut search);
            if d.is_empty() {
                break;
            }
            let mut full = [0u8; 512];
            let len = bare.len() + 1 + d.len();
            full[..bare.len()].copy_from_slice(bare);
            full[bare.len()] = b'.';
            full[bare.len() + 1..len].copy_from_slice(d);
            let full = full[..len].strip_suffix(b".").unwrap_or(&full[..len]);
            let Some(n) = query(full, &mut q) else {
                continue;
            };
            match ask(&mut q[..n], conf, end, &mut out) {
                Reply::Addr => return Some(out),
                Reply::NxDomain => {}
                _ => return None,
            }
        }
    }
    // (q again: a search suffix may have been written there.)
    let qlen = query(bare, &mut q)?;
    match ask(&mut q[..qlen], conf, end, &mut out) {
        Reply::Addr => Some(out),
        _ => None,
    }
}

/// `name` in the hosts file at `path`: the first IPv4 line naming it, else the first IPv6 one.
fn from_hosts(path: &[u8], name: &[u8]) -> Option<SocketAddr> {
    let mut v6 = None;
    let mut v4 = None;
    let _ = each_line(path, &mut |line| {
        let mut rest = uncomment(line);
        let addr = word(&mut rest);
        loop {
            let w = word(&mut rest);
            if w.is_empty() {
                return false;
            }
            if w.eq_ignore_ascii_case(name) {
                break;
            }
        }
        match literal(addr, false) {
            Some(a) if a.is_ipv4() => v4 = Some(a),
            a if v6.is_none() => v6 = a,
            _ => {}
        }
        v4.is_some()
    });
    v4.or(v6)
}

/// Calls `f` with each line of the regular file at `path` (without its newline) until it
/// returns true, through the /proc readers' `LineReader` in a 1 KiB buffer: longer lines are
/// skipped, and nothing past MAX_FILE_BYTES is read. A read error ends the file.
fn each_line(path: &[u8], f: &mut dyn FnMut(&[u8]) -> bool) -> Result<(), sys::Errno> {
    let fd = sys::open_regular_ro(&CPath::from_bytes(path)?)?;
    let mut buf = [0u8; 1024];
    let mut lines = LineReader::new(fd, &mut buf);
    while let Some(line) = lines.next_line() {
        if let Ok(l) = line {
            if f(l.text) {
                break;
            }
        }
        if lines.bytes_read() >= MAX_FILE_BYTES as u64 {
            break;
        }
    }
    Ok(())
}

/// The resolv.conf keywords read (in any case).
const KEYWORDS: [&[u8]; 4] = [b"nameserver", b"search", b"domain", b"options"];
const NDOTS: usize = 0;
const TIMEOUT: usize = 1;
const ATTEMPTS: usize = 2;
/// The `options` kept (in `Conf::opt`, musl's defaults there): name, least, most.
const OPTIONS: [(&[u8], u32, u32); 3] = [
    (b"ndots:", 0, 15),
    (b"timeout:", 1, 60),
    (b"attempts:", 1, 10),
];

/// What resolv.conf says, read as musl's `__get_resolv_conf` reads it (except that a
/// keyword may follow blanks and be in any case, and `#` ends a search list): at most 3 `nameserver`s, the last `search`/`domain` line
/// winning, `options` `ndots:N` (≤ 15), `timeout:N` (1–60 s), `attempts:N` (1–10; musl
/// would divide by 0).
struct Conf {
    ns: [SocketAddr; 3],
    nns: usize,
    search: [u8; 256],
    search_len: usize,
    opt: [u32; 3],
}

impl Conf {
    fn new() -> Conf {
        Conf {
            ns: [SocketAddr::from((Ipv4Addr::LOCALHOST, 0)); 3],
            nns: 0,
            search: [0; 256],
            search_len: 0,
            opt: [1, 5, 2],
        }
    }

    fn line(&mut self, mut line: &[u8]) {
        // Through one call, not a comparison unrolled per byte and keyword (flash).
        let kw = word(&mut line);
        match KEYWORDS.iter().position(|k| k.eq_ignore_ascii_case(kw)) {
            Some(0) => {
                if let (Some(slot), Some(a)) =
                    (self.ns.get_mut(self.nns), literal(word(&mut line), false))
                {
                    *slot = a;
                    self.nns += 1;
                }
            }
            Some(1 | 2) => {
                let s = uncomment(line);
                if let Some(to) = self.search.get_mut(..s.len()) {
                    to.copy_from_slice(s);
                    self.search_len = s.len();
                }
            }
            Some(3) => loop {
                let o = word(&mut line);
                if o.is_empty() {
                    break;
                }
                for (v, &(key, lo, hi)) in self.opt.iter_mut().zip(&OPTIONS) {
                    if let Some(n) = o.strip_prefix(key).and_then(sys::parse_u32) {
                        *v = n.clamp(lo, hi);
                    }
                }
            },
            _ => {}
        }
    }

    /// The nameservers to ask (127.0.0.1 when none was named).
    fn servers(&self) -> &[SocketAddr] {
        &self.ns[..self.nns.max(1)]
    }
}

const A: u16 = 1;
const AAAA: u16 = 28;
/// Header (12) + name (≤ 255) + type and class (4).
const QUERY_MAX: usize = 272;
/// Without EDNS a UDP answer is at most 512 bytes (RFC 1035 §4.2.1).
const ANSWER_MAX: usize = 512;

/// A nameserver's verdict on one question (or Ignore: not an answer to it).
#[derive(Debug, PartialEq)]
enum Reply {
    /// The address is in the caller's `out`.
    Addr,
    NxDomain,
    NoData,
    Fail,
    Ignore,
}

/// `q`'s name's A address, else its AAAA one (see the module comment).
fn ask(q: &mut [u8], conf: &Conf, end: u32, out: &mut SocketAddr) -> Reply {
    match exchange(q, A, conf, end, out) {
        Reply::NoData => exchange(q, AAAA, conf, end, out),
        r => r,
    }
}

/// A query for A records of `name` (without a trailing dot) into `q`, its id 0 and the name
/// lowercased; its length. None when `name` is not a host name: letters, digits, `-` and
/// `_` in labels of 1–63 bytes, at most 253 bytes, the last label not all digits
/// (`1.2.3.256`, `127.1`: no names).
fn query(name: &[u8], q: &mut [u8; QUERY_MAX]) -> Option<usize> {
    if name.len() > 253 {
        return None;
    }
    // Recursion desired, one question.
    q[..12].copy_from_slice(&[0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    let (mut label, mut n, mut digits, mut last_digits) = (12, 13, true, true);
    for &b in name.iter().chain(b".") {
        if b == b'.' {
            let len = n - label - 1;
            if !(1..=63).contains(&len) {
                return None;
            }
            q[label] = len as u8;
            (label, last_digits, digits) = (n, digits, true);
        } else if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            q[n] = b.to_ascii_lowercase();
            digits &= b.is_ascii_digit();
        } else {
            return None;
        }
        n += 1;
    }
    if last_digits {
        return None;
    }
    // `label` is where the root's 0 goes.
    q[label..label + 5].copy_from_slice(&[0, 0, A as u8, 0, 1]);
    Some(label + 5)
}

/// The monotonic clock in ms, wrapping (deadlines here are seconds away: compared by the
/// sign of their difference; 32-bit arithmetic is cheaper on 32-bit CPUs).
fn now_ms() -> u32 {
    sys::monotonic_ms() as u32
}

/// A 16-bit random number: getrandom(2) without blocking (early at boot the pool may not be
/// ready), else /dev/urandom (getrandom is Linux 3.17+), else the clock.
fn random_u16() -> u16 {
    let mut b = [0u8; 2];
    // SAFETY: b is valid for 2 bytes; the descriptor is ours, closed once.
    unsafe {
        if libc::getrandom(b.as_mut_ptr().cast(), 2, libc::GRND_NONBLOCK) == 2 {
            return u16::from_ne_bytes(b);
        }
        let fd = libc::open(c"/dev/urandom".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        if fd >= 0 {
            let n = libc::read(fd, b.as_mut_ptr().cast(), 2);
            libc::close(fd);
            if n == 2 {
                return u16::from_ne_bytes(b);
            }
        }
    }
    let t = sys::monotonic_us();
    (t ^ (t >> 16) ^ (t >> 32)) as u16
}

/// A connected, non-blocking UDP socket to `a` (-1 if none could be made).
fn udp_to(a: &SocketAddr) -> libc::c_int {
    let (sa, len) = sockaddr(a);
    let sa: *const libc::sockaddr_storage = &sa;
    // SAFETY: socket(2), and connect with a valid sockaddr; closed here if connect fails.
    unsafe {
        let fd = libc::socket(
            family(a),
            libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        );
        if fd >= 0 && libc::connect(fd, sa.cast(), len) != 0 {
            libc::close(fd);
            return -1;
        }
        fd
    }
}

/// Asks every nameserver of `conf` at once for `q`'s name, of `qtype`, with a fresh id: the
/// first verdict (see `wait`), or Fail.
fn exchange(q: &mut [u8], qtype: u16, conf: &Conf, end: u32, out: &mut SocketAddr) -> Reply {
    let n = q.len();
    q[n - 3] = qtype as u8;
    q[..2].copy_from_slice(&random_u16().to_ne_bytes());
    let mut pfd = [libc::pollfd {
        fd: -1,
        events: libc::POLLIN,
        revents: 0,
    }; 3];
    for (p, a) in pfd.iter_mut().zip(conf.servers()) {
        p.fd = udp_to(a);
    }
    let r = wait(&mut pfd, q, conf, end, out);
    for p in pfd {
        if p.fd >= 0 {
            // SAFETY: our own descriptor, closed once.
            unsafe { libc::close(p.fd) };
        }
    }
    r
}

/// Sends `q` on every socket of `pfd`, again every timeout/attempts, until a datagram gives
/// a verdict, every socket failed (closed and -1), `timeout` passed or `end` did.
fn wait(
    pfd: &mut [libc::pollfd; 3],
    q: &[u8],
    conf: &Conf,
    end: u32,
    out: &mut SocketAddr,
) -> Reply {
    let now = now_ms();
    let timeout = conf.opt[TIMEOUT] * 1000;
    let end = if (end.wrapping_sub(now) as i32) < timeout as i32 {
        end
    } else {
        now.wrapping_add(timeout)
    };
    let mut next_send = now;
    let mut buf = [0u8; ANSWER_MAX];
    loop {
        let now = now_ms();
        let left = end.wrapping_sub(now) as i32;
        if pfd.iter().all(|p| p.fd < 0) || left <= 0 || sys::stop_requested() {
            return Reply::Fail;
        }
        if next_send.wrapping_sub(now) as i32 <= 0 {
            for p in pfd.iter() {
                // SAFETY: q is valid for its length; a failure shows on the next recv.
                unsafe { libc::send(p.fd, q.as_ptr().cast(), q.len(), libc::MSG_NOSIGNAL) };
            }
            next_send = now.wrapping_add(timeout / conf.opt[ATTEMPTS]);
        }
        let ms = (next_send.wrapping_sub(now) as i32).min(left);
        // SAFETY: pfd is valid for 3 entries (negative fds are ignored).
        if unsafe { libc::poll(pfd.as_mut_ptr(), 3, ms) } <= 0 {
            continue;
        }
        // One datagram per ready socket and wake-up (poll says at once if there are more).
        for p in pfd.iter_mut().filter(|p| p.revents != 0) {
            // SAFETY: buf is valid for its length. MSG_TRUNC: the datagram's real length.
            let n =
                unsafe { libc::recv(p.fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_TRUNC) };
            // An error (ICMP refused, ...) or an answer too long for us: this one failed.
            let r = match buf.get(..n as usize) {
                _ if n < 0 && sys::errno() == libc::EAGAIN => Reply::Ignore,
                Some(pkt) if n >= 0 => answer(pkt, q, out),
                _ => Reply::Fail,
            };
            match r {
                Reply::Ignore => {}
                Reply::Fail => {
                    // SAFETY: our own descriptor, closed once (then -1).
                    unsafe { libc::close(p.fd) };
                    p.fd = -1;
                }
                r => return r,
            }
        }
    }
}

/// The offset after the name at `off` of `pkt`: its labels up to the root's 0 or a
/// compression pointer, which ends a name and is never followed (so no walk can loop).
/// None for label types 0x40 and 0x80 or a name running off the end.
fn skip_name(pkt: &[u8], mut off: usize) -> Option<usize> {
    loop {
        match *pkt.get(off)? {
            0 => return Some(off + 1),
            0xC0.. => return Some(off + 2),
            0x40..0xC0 => return None,
            b => off += 1 + b as usize,
        }
    }
}

/// What the datagram `pkt` says to query `q` (see `Reply`). Ignore unless it is a response
/// to q: q's id, QR set, opcode 0, q's one question (any case: DNS 0x20). Else the first
/// record of q's type (A or AAAA, class IN, of the right length) in the answer section,
/// whatever its owner, as musl takes it (a recursive server puts the CNAME chain there; a
/// nameserver that wanted to lie could name any address anyway). Fail when TC is set, the
/// rcode is neither NOERROR nor NXDOMAIN or the records are garbled.
fn answer(pkt: &[u8], q: &[u8], out: &mut SocketAddr) -> Reply {
    let flags = be16(pkt, 2).unwrap_or(0);
    let question = pkt
        .get(12..q.len())
        .is_some_and(|e| e.eq_ignore_ascii_case(&q[12..]));
    if !question || pkt[..2] != q[..2] || flags & 0xF800 != 0x8000 || pkt[4..6] != [0, 1] {
        return Reply::Ignore;
    }
    if flags & 0x0200 != 0 {
        return Reply::Fail; // truncated (TC)
    }
    match flags & 0xF {
        0 => records(pkt, q, out).unwrap_or(Reply::Fail),
        3 => Reply::NxDomain,
        _ => Reply::Fail,
    }
}

fn records(pkt: &[u8], q: &[u8], out: &mut SocketAddr) -> Option<Reply> {
    let want = q.get(q.len() - 4..)?; // type, class IN
    let mut off = q.len();
    for _ in 0..be16(pkt, 6)? {
        let at = skip_name(pkt, off)?;
        let rdlen = be16(pkt, at + 8)? as usize;
        let rdata = pkt.get(at + 10..at + 10 + rdlen)?;
        off = at + 10 + rdlen;
        if pkt[at..at + 4] != *want {
            continue;
        }
        let ip: IpAddr = match rdata.len() {
            4 if want[1] == A as u8 => <[u8; 4]>::try_from(rdata).ok()?.into(),
            16 if want[1] == AAAA as u8 => <[u8; 16]>::try_from(rdata).ok()?.into(),
            _ => continue,
        };
        *out = SocketAddr::new(ip, 0);
        return Some(Reply::Addr);
    }
    Some(Reply::NoData)
}

/// A big-endian u16 at `off`.
fn be16(pkt: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_be_bytes(pkt.get(off..off + 2)?.try_into().ok()?))
}

/// The socket family of `a`: AF_INET or AF_INET6.
pub fn family(a: &SocketAddr) -> libc::c_int {
    if a.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    }
}

/// `a` as a sockaddr_in/sockaddr_in6 in a sockaddr_storage, with its length.
pub fn sockaddr(a: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain data; zeroed is valid, and big enough for both.
    let mut ss: libc::sockaddr_storage = unsafe { core::mem::zeroed() };
    let len = match a {
        SocketAddr::V4(v4) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: v4.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(*v4.ip()).to_be(),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage has room and alignment for a sockaddr_in.
            unsafe {
                (&mut ss as *mut libc::sockaddr_storage)
                    .cast::<libc::sockaddr_in>()
                    .write(sin)
            };
            size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(v6) => {
            // SAFETY: plain data; zeroed is valid.
            let mut sin6: libc::sockaddr_in6 = unsafe { core::mem::zeroed() };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = v6.port().to_be();
            sin6.sin6_addr.s6_addr = v6.ip().octets();
            sin6.sin6_flowinfo = v6.flowinfo();
            sin6.sin6_scope_id = v6.scope_id();
            // SAFETY: as above, for a sockaddr_in6.
            unsafe {
                (&mut ss as *mut libc::sockaddr_storage)
                    .cast::<libc::sockaddr_in6>()
                    .write(sin6)
            };
            size_of::<libc::sockaddr_in6>()
        }
    };
    (ss, len as libc::socklen_t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv6Addr, ToSocketAddrs};

    const CNAME: u16 = 5;

    /// `super::answer` with the address in the verdict.
    #[derive(Debug, PartialEq)]
    enum R {
        Addr(SocketAddr),
        NxDomain,
        NoData,
        Fail,
        Ignore,
    }

    fn answer(pkt: &[u8], q: &[u8]) -> R {
        let mut out = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
        match super::answer(pkt, q, &mut out) {
            Reply::Addr => R::Addr(out),
            Reply::NxDomain => R::NxDomain,
            Reply::NoData => R::NoData,
            Reply::Fail => R::Fail,
            Reply::Ignore => R::Ignore,
        }
    }

    /// A file of `text` in a fresh temp dir (removed when the guard drops).
    struct Tmp(std::path::PathBuf);
    impl Tmp {
        fn new(tag: &str, text: &[u8]) -> Tmp {
            let d = std::env::temp_dir().join(format!("gw-resolve-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("f"), text).unwrap();
            Tmp(d)
        }
        fn path(&self) -> Vec<u8> {
            self.0.join("f").into_os_string().into_encoded_bytes()
        }
    }
    impl Drop for Tmp {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn v4(s: &str) -> Option<SocketAddr> {
        Some(SocketAddr::new(s.parse::<Ipv4Addr>().unwrap().into(), 0))
    }
    fn v6(s: &str, scope: u32) -> Option<SocketAddr> {
        Some(SocketAddrV6::new(s.parse::<Ipv6Addr>().unwrap(), 0, 0, scope).into())
    }

    #[test]
    fn literals_agree_with_std() {
        for a in [
            "127.0.0.1:514",
            "[::1]:601",
            "[fe80::1%1]:514",
            "[::ffff:1.2.3.4]:514",
            "[2001:db8::7]:0514",
            "192.0.2.1:6514",
            "0.0.0.0:514",
            "255.255.255.255:65535",
            "[fe80::1%0]:514",
        ] {
            let std_first = a.to_socket_addrs().ok().and_then(|mut i| i.next());
            assert_eq!(resolve(a).ok(), std_first, "{a}");
            assert!(std_first.is_some(), "{a}");
        }
        // localhost: std (glibc here) may list ::1 first when the hosts file has both; ours
        // takes IPv4 first. Either way it is one of std's.
        for a in ["localhost:514", "localhost:+514"] {
            let ours = resolve(a).unwrap();
            assert!(ours.ip().is_loopback() && ours.port() == 514, "{a}: {ours}");
            assert!(
                a.to_socket_addrs().unwrap().any(|s| s == ours),
                "{a}: {ours}"
            );
        }
        let ours = resolve("LOCALHOST.:514").unwrap();
        assert!(ours.ip().is_loopback(), "{ours}");
        // (No unknown name: resolving one would query the DNS server off this box.)
        for a in [
            "",
            "localhost",
            "localhost:",
            "localhost:99999",
            "localhost:-1",
            "[1.2.3.4]:514",
            "[localhost]:514",
            "[fe80::1%lo]:514",
            "[fe80::1%]:514",
            "[fe80::1%+1]:514",
            "[::1]",
            "[::1:514",
            "::1]:514",
            "[::1]x:514",
            "1.2.3.4%1:514",
        ] {
            assert!(resolve(a).is_err(), "{a}");
            assert!(
                a.to_socket_addrs().map_or(true, |mut i| i.next().is_none()),
                "{a}"
            );
        }
        // Stricter than glibc behind std: inet_aton's short and octal forms, bytes after NUL,
        // names that are not host names (never sent to DNS).
        for a in [
            "127.1:514",
            "1.2.3.04:514",
            "0x7f.0.0.1:514",
            "1.2.3.4\0evil:514",
            "a b:514",
            "a..b:514",
            "-:514",
            "é.lan:514",
            "1.2.3.256:514",
        ] {
            assert!(resolve(a).is_err(), "{a:?}");
        }
    }

    #[test]
    fn address_parsers_agree_with_std() {
        let v4 = [
            "0.0.0.0",
            "1.2.3.4",
            "255.255.255.255",
            "256.1.1.1",
            "1.2.3",
            "1.2.3.4.5",
            "01.2.3.4",
            "1.2.3.04",
            "1..2.3",
            ".1.2.3",
            "1.2.3.",
            "a.b.c.d",
            "1.2.3.4 ",
            "+1.2.3.4",
            "",
            "0x1.2.3.4",
            "4294967296.1.1.1",
            "127.1",
        ];
        for t in v4 {
            assert_eq!(
                ipv4(t.as_bytes()),
                t.parse::<Ipv4Addr>().ok().map(|a| a.octets()),
                "{t:?}"
            );
        }
        let v6 = [
            "::",
            "::1",
            "1::",
            "1::2",
            "1:2:3:4:5:6:7:8",
            "1:2:3:4:5:6:7::",
            "::2:3:4:5:6:7:8",
            "1::2:3:4:5:6:7:8",
            "1:2:3:4:5:6:7:8:9",
            "1:2:3:4:5:6:7",
            "fe80::1",
            "FE80::ABCD:ef01",
            "::ffff:1.2.3.4",
            "::1.2.3.4",
            "1:2:3:4:5:6:1.2.3.4",
            "1:2:3:4:5:6:7:1.2.3.4",
            "::ffff:1.2.3",
            "::ffff:1.2.3.04",
            "1:::2",
            ":::",
            ":1",
            "1:",
            "1::2:",
            "::1::",
            "12345::",
            "g::",
            "1:2",
            "",
            ":",
            "1.2.3.4",
            "::1 ",
            " ::1",
            "0:0:0:0:0:0:0:0",
            "2001:db8::7",
            "1:2:3:4::5:1.2.3.4",
            "::1.2.3.4:5",
        ];
        for t in v6 {
            assert_eq!(
                ipv6(t.as_bytes()),
                t.parse::<Ipv6Addr>().ok().map(|a| a.octets()),
                "{t:?}"
            );
        }
    }

    #[test]
    fn host_names_as_dns_takes_them() {
        let long = format!(
            "{}.{}.{}.{}",
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(61)
        );
        assert_eq!(long.len(), 253);
        let mut q = [0u8; QUERY_MAX];
        for ok in [
            "a",
            "loghost.lan",
            "LOG-host_1.example",
            "x.1a",
            "1a",
            &long,
        ] {
            assert!(query(ok.as_bytes(), &mut q).is_some(), "{ok}");
        }
        let label64 = format!("{}.lan", "a".repeat(64));
        let long254 = format!("{long}x");
        let bad = [
            "", ".", "..", "a..b", ".a", "a.", "1.2", "a.123", "12", "a b", "a/b", "a:b", "a\0",
        ];
        for bad in bad.iter().chain([&label64.as_str(), &long254.as_str()]) {
            assert!(query(bad.as_bytes(), &mut q).is_none(), "{bad}");
        }
    }

    const HOSTS: &str = "# /etc/hosts of an OpenWrt box, with what people add to it\n\
        127.0.0.1 localhost\n\
        \n\
        ::1     localhost ip6-localhost ip6-loopback\n\
        ff02::1 ip6-allnodes\n\
        192.168.1.1\tOpenWrt.lan\topenwrt  # the router\n\
        fd00::5 v6only.lan\n\
        10.0.0.7 # loghost.lan commented out\n\
        10.0.0.8 dup.lan\n\
        10.0.0.9 dup.lan\n\
        fd00::9 both.lan\n\
        garbage both.lan\n\
        10.0.0.10 both.lan\r\n\
        fe80::1%2 scoped.lan\n\
        10.0.0.11 last.lan";

    #[test]
    fn hosts_file_first_line_ipv4_first_any_case() {
        let f = Tmp::new("hosts", HOSTS.as_bytes());
        let p = f.path();
        let cases = [
            ("localhost", v4("127.0.0.1")),
            ("ip6-localhost", v6("::1", 0)),
            ("openwrt", v4("192.168.1.1")),
            ("OPENWRT.LAN", v4("192.168.1.1")),
            ("v6only.lan", v6("fd00::5", 0)),
            ("loghost.lan", None),
            ("dup.lan", v4("10.0.0.8")),
            ("both.lan", v4("10.0.0.10")),
            ("scoped.lan", v6("fe80::1", 2)),
            ("last.lan", v4("10.0.0.11")),
            ("lan", None),
            ("openwrt.la", None),
            ("garbage", None),
        ];
        for (name, want) in cases {
            assert_eq!(from_hosts(&p, name.as_bytes()), want, "{name}");
        }
        // Through resolve_from, with a DNS port nobody listens on (never reached here).
        let src = Sources {
            hosts: &p,
            resolv_conf: b"/nonexistent",
            dns_port: 9,
        };
        assert_eq!(
            resolve_from("both.lan.:601", &src),
            "10.0.0.10:601".parse().map_err(|_| "")
        );
        assert_eq!(
            resolve_from("[::1]:601", &src),
            "[::1]:601".parse().map_err(|_| "")
        );
    }

    #[test]
    fn localhost_without_a_hosts_line() {
        let src = Sources {
            hosts: b"/nonexistent",
            resolv_conf: b"/nonexistent",
            dns_port: 9,
        };
        assert_eq!(
            resolve_from("localhost:514", &src),
            "127.0.0.1:514".parse().map_err(|_| "")
        );
    }

    #[test]
    fn lines_are_read_bounded_and_only_from_regular_files() {
        // A line longer than the buffer is skipped whole; the last line needs no newline.
        let mut text = vec![b'x'; 5000];
        text.extend_from_slice(b" 1.1.1.1 skipped.lan\n2.2.2.2 kept.lan\n3.3.3.3 end.lan");
        let f = Tmp::new("lines", &text);
        let mut lines = Vec::new();
        each_line(&f.path(), &mut |l| {
            lines.push(String::from_utf8_lossy(l).into_owned());
            false
        })
        .unwrap();
        assert_eq!(lines, ["2.2.2.2 kept.lan", "3.3.3.3 end.lan"]);
        // Past MAX_FILE_BYTES nothing more is read.
        let mut big = b"\n".repeat(MAX_FILE_BYTES + 4096);
        big.extend_from_slice(b"4.4.4.4 far.lan\n");
        let f = Tmp::new("big", &big);
        assert_eq!(from_hosts(&f.path(), b"far.lan"), None);
        // A FIFO or a device is refused at once (a FIFO nobody writes would block a read).
        let fifo = Tmp::new("fifo", b"");
        let path = fifo.0.join("fifo");
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let t = std::time::Instant::now();
        assert_eq!(each_line(c.as_bytes(), &mut |_| false), Err(sys::ENOTREG));
        assert_eq!(each_line(b"/dev/zero", &mut |_| false), Err(sys::ENOTREG));
        assert!(t.elapsed().as_secs() < 2);
    }

    fn conf(text: &str) -> Conf {
        let mut c = Conf::new();
        text.lines().for_each(|l| c.line(l.as_bytes()));
        c
    }

    #[test]
    fn resolv_conf_as_musl_reads_it() {
        let c = conf("");
        assert_eq!((c.nns, c.opt, c.search_len), (0, [1, 5, 2], 0));
        assert_eq!(c.servers(), ["127.0.0.1:0".parse().unwrap()]);

        // OpenWrt's /tmp/resolv.conf.d/resolv.conf.auto style, and more.
        let c = conf(
            "# Interface wan\n\
             search lan example.com\n\
             nameserver bogus\n\
             nameservers 9.9.9.9\n\
             #nameserver 8.8.8.8\n \
             nameserver 127.0.0.1\n\
             nameserver\t::1\n\
             nameserver fe80::1%3 # link-local\n\
             nameserver 10.0.0.1\n\
             options rotate ndots:2 timeout:30 attempts:9\n\
             domain corp.example # the office\n",
        );
        let ns = c.servers();
        assert_eq!(ns.len(), 3);
        assert_eq!(ns[0], "127.0.0.1:0".parse().unwrap());
        assert_eq!(ns[1], "[::1]:0".parse().unwrap());
        assert_eq!(
            ns[2],
            SocketAddrV6::new(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1), 0, 0, 3).into()
        );
        assert_eq!(c.opt, [2, 30, 9]);
        assert_eq!(c.search[..c.search_len].trim_ascii(), b"corp.example");

        // Out-of-range options are clamped (timeout and attempts at least 1: musl would divide
        // by zero on attempts:0); a value without digits leaves the default.
        let c = conf("options ndots:99 timeout:0 attempts:0\noptions timeout:x\nsearch a\n");
        assert_eq!(c.opt, [15, 1, 1]);
        assert_eq!(c.search[..c.search_len].trim_ascii(), b"a");
        // An empty search line empties the list (musl: the line's newline is its blank).
        let c = conf("search a\nsearch\n");
        assert_eq!(c.search[..c.search_len].trim_ascii(), b"");
        let c = conf("options timeout:99999 attempts:12 ndots:0");
        assert_eq!(c.opt, [0, 60, 10]);
    }

    #[test]
    fn query_bytes() {
        let mut q = [0u8; QUERY_MAX];
        let n = query(b"LogHost.Lan", &mut q).unwrap();
        #[rustfmt::skip]
        let want: &[u8] = &[
            0, 0, // id (exchange sets a random one)
            0x01, 0x00, // RD (recursion desired), a standard query
            0, 1, 0, 0, 0, 0, 0, 0, // one question, no other records
            7, b'l', b'o', b'g', b'h', b'o', b's', b't', 3, b'l', b'a', b'n', 0, // lowercased
            0, 1, 0, 1, // A (exchange sets AAAA when asking for that), IN
        ];
        assert_eq!(&q[..n], want);
        let long = format!(
            "{}.{}.{}.{}",
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(61)
        );
        assert_eq!(query(long.as_bytes(), &mut q), Some(12 + 255 + 4));
    }

    /// The query for loghost.example (id 0x1234) of `qtype`.
    fn q(qtype: u16) -> Vec<u8> {
        let mut q = [0u8; QUERY_MAX];
        let n = query(b"loghost.example", &mut q).unwrap();
        q[..2].copy_from_slice(&[0x12, 0x34]);
        q[n - 3] = qtype as u8;
        q[..n].to_vec()
    }

    /// Header of an answer to q(): id 0x1234, `flags`, one question, `an` answers.
    fn header(flags: u16, an: u16) -> Vec<u8> {
        let mut p = vec![0x12, 0x34];
        p.extend_from_slice(&flags.to_be_bytes());
        p.extend_from_slice(&[0, 1]);
        p.extend_from_slice(&an.to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, 0]);
        p
    }

    /// The question of q(qtype) as a server echoes it (offset 12; "example" at 20).
    fn question_of(qtype: u16) -> Vec<u8> {
        let mut p = b"\x07loghost\x07example\x00".to_vec();
        p.extend_from_slice(&[0, qtype as u8, 0, 1]);
        p
    }

    /// A resource record: `owner` (wire form), type, class IN, TTL 300, `rdata`.
    fn rr(owner: &[u8], rtype: u16, rdata: &[u8]) -> Vec<u8> {
        let mut p = owner.to_vec();
        p.extend_from_slice(&rtype.to_be_bytes());
        p.extend_from_slice(&[0, 1, 0, 0, 1, 0x2c]);
        p.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        p.extend_from_slice(rdata);
        p
    }

    fn packet(flags: u16, qtype: u16, answers: &[Vec<u8>]) -> Vec<u8> {
        let mut p = header(flags, answers.len() as u16);
        p.extend(question_of(qtype));
        answers.iter().for_each(|a| p.extend_from_slice(a));
        p
    }

    const PTR_Q: &[u8] = &[0xC0, 12]; // the question's name

    #[test]
    fn well_formed_answers() {
        // 0x8180: QR, RD, RA, NOERROR. The owner is a pointer to the question's name.
        let ok = packet(0x8180, A, &[rr(PTR_Q, A, &[192, 0, 2, 7])]);
        assert_eq!(
            answer(&ok, &q(A)),
            R::Addr(SocketAddr::from(([192, 0, 2, 7], 0)))
        );
        // The same, the owner written out in another case (DNS 0x20 echo) and uncompressed.
        let caps = packet(
            0x8180,
            A,
            &[rr(b"\x07LogHost\x07EXAMPLE\x00", A, &[192, 0, 2, 8])],
        );
        assert_eq!(
            answer(&caps, &q(A)),
            R::Addr(SocketAddr::from(([192, 0, 2, 8], 0)))
        );
        // AAAA.
        let six = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9];
        let p = packet(0x8180, AAAA, &[rr(PTR_Q, AAAA, &six)]);
        assert_eq!(
            answer(&p, &q(AAAA)),
            R::Addr(SocketAddr::new(six.into(), 0))
        );
        // An A record answers no AAAA question (and an AAAA-sized A record is skipped).
        let p = packet(0x8180, AAAA, &[rr(PTR_Q, A, &[192, 0, 2, 7])]);
        assert_eq!(answer(&p, &q(AAAA)), R::NoData);
        let p = packet(
            0x8180,
            A,
            &[rr(PTR_Q, A, &six), rr(PTR_Q, A, &[1, 2, 3, 4, 5])],
        );
        assert_eq!(answer(&p, &q(A)), R::NoData);
        // NOERROR without records (the name has no A), NXDOMAIN, SERVFAIL, REFUSED.
        assert_eq!(answer(&packet(0x8180, A, &[]), &q(A)), R::NoData);
        assert_eq!(answer(&packet(0x8183, A, &[]), &q(A)), R::NxDomain);
        assert_eq!(answer(&packet(0x8182, A, &[]), &q(A)), R::Fail);
        assert_eq!(answer(&packet(0x8185, A, &[]), &q(A)), R::Fail);
        // Truncated (TC, 0x0200), even with an address in it.
        let tc = packet(0x8380, A, &[rr(PTR_Q, A, &[192, 0, 2, 7])]);
        assert_eq!(answer(&tc, &q(A)), R::Fail);
        // An A record of another name is taken too (as musl takes it: see `answer`); one of
        // class CH is not.
        let other = packet(0x8180, A, &[rr(b"\x05other\xC0\x14", A, &[6, 6, 6, 6])]);
        assert_eq!(
            answer(&other, &q(A)),
            R::Addr(SocketAddr::from(([6, 6, 6, 6], 0)))
        );
        let mut ch = rr(PTR_Q, A, &[6, 6, 6, 6]);
        ch[5] = 3; // class 3 (CHAOS)
        assert_eq!(answer(&packet(0x8180, A, &[ch]), &q(A)), R::NoData);
    }

    #[test]
    fn cname_then_a() {
        // loghost.example CNAME real.example (rdata: "real" + a pointer to "example" at 20),
        // then the A of real.example, its owner a pointer to the CNAME's rdata (offset 45:
        // 12 header + 21 question + 2 owner + 10 type..rdlength).
        let cname = rr(PTR_Q, CNAME, b"\x04real\xC0\x14");
        let a = rr(&[0xC0, 45], A, &[198, 51, 100, 1]);
        let p = packet(0x8180, A, &[cname.clone(), a]);
        assert_eq!(
            answer(&p, &q(A)),
            R::Addr(SocketAddr::from(([198, 51, 100, 1], 0)))
        );
        // Ten CNAMEs, then the address: the first record of the type asked, whatever owns it.
        let mut chain = Vec::new();
        for i in 0..10u8 {
            let owner = if i == 0 {
                PTR_Q.to_vec()
            } else {
                vec![2, b'c', b'0' + i - 1, 0]
            };
            chain.push(rr(&owner, CNAME, &[2, b'c', b'0' + i, 0]));
        }
        chain.push(rr(b"\x02c9\x00", AAAA, &[0; 16]));
        chain.push(rr(b"\x02c9\x00", A, &[1, 1, 1, 1]));
        let p = packet(0x8180, A, &chain);
        assert_eq!(
            answer(&p, &q(A)),
            R::Addr(SocketAddr::from(([1, 1, 1, 1], 0)))
        );
        // A CNAME whose target has no A in the answer (the server did not follow it), or a
        // CNAME loop: no data (then the AAAA question is asked).
        assert_eq!(
            answer(&packet(0x8180, A, std::slice::from_ref(&cname)), &q(A)),
            R::NoData
        );
        let back = rr(&[0xC0, 45], CNAME, &[0xC0, 12]);
        assert_eq!(answer(&packet(0x8180, A, &[cname, back]), &q(A)), R::NoData);
    }

    #[test]
    fn hostile_answers() {
        let ok = packet(0x8180, A, &[rr(PTR_Q, A, &[192, 0, 2, 7])]);
        // Not an answer to our query: ignored (the wait goes on).
        let mut wrong_id = ok.clone();
        wrong_id[1] ^= 1;
        assert_eq!(answer(&wrong_id, &q(A)), R::Ignore);
        let mut query_not_response = ok.clone();
        query_not_response[2] &= 0x7F;
        assert_eq!(answer(&query_not_response, &q(A)), R::Ignore);
        let mut opcode = ok.clone();
        opcode[2] |= 0x10; // opcode 2 (STATUS)
        assert_eq!(answer(&opcode, &q(A)), R::Ignore);
        assert_eq!(answer(&ok, &q(AAAA)), R::Ignore); // another question type
        let mut other_name = ok.clone();
        other_name[13] = b'x';
        assert_eq!(answer(&other_name, &q(A)), R::Ignore);
        let mut two_questions = ok.clone();
        two_questions[5] = 2;
        assert_eq!(answer(&two_questions, &q(A)), R::Ignore);
        // Every short prefix: never an address, never a panic.
        for n in 0..ok.len() {
            let r = answer(&ok[..n], &q(A));
            assert!(matches!(r, R::Ignore | R::Fail), "{n}: {r:?}");
        }
        // More answers counted than there are: garbled, this server failed.
        let mut overcount = packet(0x8180, A, &[rr(PTR_Q, CNAME, b"\x05other\x00")]);
        overcount[7] = 2;
        assert_eq!(answer(&overcount, &q(A)), R::Fail);
        // rdlength past the end.
        let mut long_rdata = ok.clone();
        let at = long_rdata.len() - 5;
        long_rdata[at] = 200;
        assert_eq!(answer(&long_rdata, &q(A)), R::Fail);
        // Pointer loops cannot hang or mislead: a pointer ends a name and is never followed,
        // so an owner pointing at itself or forward, or a CNAME target pointing at itself, is
        // skipped over; the record after it is read where it is.
        let self_ptr = packet(0x8180, A, &[rr(&[0xC0, 33], A, &[6, 6, 6, 6])]);
        assert_eq!(
            answer(&self_ptr, &q(A)),
            R::Addr(SocketAddr::from(([6, 6, 6, 6], 0)))
        );
        let forward = packet(0x8180, A, &[rr(&[0xC0, 40], A, &[6, 6, 6, 7])]);
        assert_eq!(
            answer(&forward, &q(A)),
            R::Addr(SocketAddr::from(([6, 6, 6, 7], 0)))
        );
        let cname_self = packet(0x8180, A, &[rr(PTR_Q, CNAME, &[0xC0, 45])]);
        assert_eq!(answer(&cname_self, &q(A)), R::NoData);
        // A question that is a pointer (to itself): not our question.
        let mut qloop = header(0x8180, 0);
        qloop.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1]);
        assert_eq!(answer(&qloop, &q(A)), R::Ignore);
        // An owner whose labels run past the end.
        let mut runs_off = header(0x8180, 1);
        runs_off.extend(question_of(A));
        runs_off.extend_from_slice(&[63, b'a', b'b']);
        assert_eq!(answer(&runs_off, &q(A)), R::Fail);
        // Label types 0x40 and 0x80 (extended/reserved).
        let ext = packet(0x8180, A, &[rr(&[0x41, b'x', 0], A, &[6, 6, 6, 6])]);
        assert_eq!(answer(&ext, &q(A)), R::Fail);
    }

    #[test]
    fn names_are_skipped_not_followed() {
        // Labels, then the root; a pointer (two bytes) ends the name wherever it points.
        assert_eq!(skip_name(b"\x03abc\x02de\x00rest", 0), Some(8));
        assert_eq!(skip_name(b"\x03abc\xC0\x00", 0), Some(6));
        assert_eq!(skip_name(b"\xC0\x00", 0), Some(2));
        assert_eq!(skip_name(b"\x03ab", 0), None);
        assert_eq!(skip_name(b"\x03abc", 0), None);
        assert_eq!(skip_name(b"\x41abc", 0), None);
        assert_eq!(skip_name(b"\x80abc", 0), None);
        assert_eq!(skip_name(b"", 0), None);
    }

    #[test]
    fn query_ids_vary() {
        let ids: Vec<u16> = (0..16).map(|_| random_u16()).collect();
        assert!(ids.iter().any(|&i| i != ids[0]), "{ids:?}");
    }

    #[test]
    fn a_refused_nameserver_fails_at_once() {
        // Nothing listens on that port of 127.0.0.1: ICMP port unreachable, ECONNREFUSED on
        // the connected socket, no waiting for the timeout.
        let port = {
            let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            s.local_addr().unwrap().port()
        };
        let f = Tmp::new("refused", b"nameserver 127.0.0.1\n");
        let p = f.path();
        let src = Sources {
            hosts: b"/nonexistent",
            resolv_conf: &p,
            dns_port: port,
        };
        let t = std::time::Instant::now();
        assert!(resolve_from("loghost.invalid:514", &src).is_err());
        assert!(t.elapsed().as_millis() < 2000, "{:?}", t.elapsed());
    }
}
