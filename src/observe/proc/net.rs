//! /proc/net socket tables: tcp, tcp6, udp, udp6, raw, raw6, udplite, udplite6, netlink, packet.
//!
//! Each table streams through one caller-owned buffer (4 KiB is plenty: the longest line,
//! tcp6, is under 200 bytes); every line becomes a validated `SocketEntry` or is counted as
//! malformed. Addresses are decoded from the kernel's byte order; `Endpoint`'s Display is the
//! `local` text of the report (netstat style, e.g. `127.0.0.1:5353`, `:::58`).
//!
//! Line layouts (kernel printf formats, stable from 3.10 to 6.x):
//! - tcp/tcp6 (`get_tcp4_sock`, `get_tcp6_sock`; time-wait and SYN_RECV lines are shorter):
//!   `sl local rem st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ...`
//! - udp/udp6/udplite/udplite6/raw/raw6 (`udp4_format_sock`, `raw_sock_seq_show`): the same
//!   ten columns then `ref pointer drops`. For raw sockets the local "port" is the IP protocol.
//! - netlink (`netlink_seq_show`): `sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode`
//!   (Dump is a pointer on 3.10, an int later; ten columns either way).
//! - packet (`packet_seq_show`): `sk RefCnt Type Proto Iface R Rmem User Inode`.
//! - unix (`unix_seq_show`): `Num: RefCount Protocol Flags Type St Inode [Path]`; no queue
//!   column, so text-read unix rows have rx_queue 0 (sock_diag's UNIX_DIAG_RQLEN has it). The
//!   path is the rest of the line; the kernel prints an abstract name's NULs as `@`.

use super::{ProcError, ProcRoot, Source, fields, parse_dec, parse_hex, read_lines};
use core::fmt;
use core::net::{Ipv4Addr, Ipv6Addr};

/// A socket table, named as in the report contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Proto {
    Tcp,
    Tcp6,
    Udp,
    Udp6,
    Raw,
    Raw6,
    UdpLite,
    UdpLite6,
    Netlink,
    Packet,
    Unix,
}

impl Proto {
    /// How many tables there are (per-table arrays are indexed by `index`).
    pub const COUNT: usize = 11;

    pub const ALL: [Proto; Proto::COUNT] = [
        Proto::Tcp,
        Proto::Tcp6,
        Proto::Udp,
        Proto::Udp6,
        Proto::Raw,
        Proto::Raw6,
        Proto::UdpLite,
        Proto::UdpLite6,
        Proto::Netlink,
        Proto::Packet,
        Proto::Unix,
    ];

    /// Position in `ALL`.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Contract name: "tcp", "udp6", "udplite", "netlink", ...
    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Tcp6 => "tcp6",
            Proto::Udp => "udp",
            Proto::Udp6 => "udp6",
            Proto::Raw => "raw",
            Proto::Raw6 => "raw6",
            Proto::UdpLite => "udplite",
            Proto::UdpLite6 => "udplite6",
            Proto::Netlink => "netlink",
            Proto::Packet => "packet",
            Proto::Unix => "unix",
        }
    }

    /// Path under the proc root, e.g. b"net/raw6".
    pub fn file(self) -> &'static [u8] {
        match self {
            Proto::Tcp => b"net/tcp",
            Proto::Tcp6 => b"net/tcp6",
            Proto::Udp => b"net/udp",
            Proto::Udp6 => b"net/udp6",
            Proto::Raw => b"net/raw",
            Proto::Raw6 => b"net/raw6",
            Proto::UdpLite => b"net/udplite",
            Proto::UdpLite6 => b"net/udplite6",
            Proto::Netlink => b"net/netlink",
            Proto::Packet => b"net/packet",
            Proto::Unix => b"net/unix",
        }
    }

    /// The table for a contract name ("tcp", "raw6", ...); `None` for anything else.
    pub fn from_name(name: &str) -> Option<Proto> {
        Proto::ALL.iter().copied().find(|p| p.name() == name)
    }

    /// True for the tables whose addresses are IPv6 (four 8-hex-digit groups).
    pub fn is_v6(self) -> bool {
        matches!(
            self,
            Proto::Tcp6 | Proto::Udp6 | Proto::Raw6 | Proto::UdpLite6
        )
    }

    /// True for the tables with the inet layout (everything but netlink, packet and unix).
    pub fn is_inet(self) -> bool {
        !matches!(self, Proto::Netlink | Proto::Packet | Proto::Unix)
    }
}

/// One end of a socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// IPv4 (first 4 bytes of `ip`) or IPv6; `port` is the protocol number for raw sockets.
    Inet {
        ip: [u8; 16],
        v6: bool,
        port: u16,
    },
    Netlink {
        protocol: u32,
        portid: u32,
    },
    Packet {
        ptype: u16,
        proto: u16,
        ifindex: u32,
    },
    /// An AF_UNIX name: a path, or `@name` for an abstract one (NULs shown as `@`).
    Unix(UnixName),
    /// The peer of a connected AF_UNIX socket, by inode.
    UnixPeer(u64),
    None,
}

/// An AF_UNIX socket name as shown (at most `sun_path`'s 108 bytes); empty when unbound.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct UnixName {
    bytes: [u8; 108],
    len: u8,
}

impl UnixName {
    /// `raw` as the kernel's /proc/net/unix prints it (already `@` for abstract), cut at 108.
    pub fn from_shown(raw: &[u8]) -> UnixName {
        let mut n = UnixName {
            bytes: [0; 108],
            len: 0,
        };
        let len = raw.len().min(108);
        n.bytes[..len].copy_from_slice(&raw[..len]);
        n.len = len as u8;
        n
    }

    /// `sun_path` bytes as sock_diag gives them: a leading NUL makes it abstract (every NUL
    /// shown as `@`, like /proc/net/unix and ss); a path loses its terminating NULs.
    pub fn from_sun_path(raw: &[u8]) -> UnixName {
        let raw = if raw.first() == Some(&0) {
            raw
        } else {
            let end = raw.iter().position(|&c| c == 0).unwrap_or(raw.len());
            &raw[..end]
        };
        let mut n = UnixName::from_shown(raw);
        for c in n.bytes[..n.len as usize].iter_mut() {
            if *c == 0 {
                *c = b'@';
            }
        }
        n
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

impl fmt::Debug for UnixName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UnixName({self})")
    }
}

impl fmt::Display for UnixName {
    /// `*` when unbound. Another process chose these bytes: anything but printable ASCII is
    /// written as `\xNN` (and `\` as `\\`), so a name can never steer a terminal or a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.len == 0 {
            return f.write_str("*");
        }
        for &c in self.as_bytes() {
            match c {
                b'\\' => f.write_str("\\\\")?,
                0x20..=0x7e => fmt::Write::write_char(f, c as char)?,
                _ => write!(f, "\\x{c:02x}")?,
            }
        }
        Ok(())
    }
}

impl fmt::Display for Endpoint {
    /// netstat style: `127.0.0.1:5353`, `:::58`, `::1:123` (v6 without brackets, as netstat
    /// prints it), `netlink:0:1234`, `packet:0003:2`, `*`. No allocation: core's address
    /// Display writes straight into the formatter.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Endpoint::Inet {
                ip,
                v6: false,
                port,
            } => {
                let a = Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3]);
                write!(f, "{a}:{port}")
            }
            Endpoint::Inet { ip, v6: true, port } => {
                write!(f, "{}:{port}", Ipv6Addr::from(ip))
            }
            Endpoint::Netlink { protocol, portid } => write!(f, "netlink:{protocol}:{portid}"),
            Endpoint::Packet { proto, ifindex, .. } => write!(f, "packet:{proto:04x}:{ifindex}"),
            Endpoint::Unix(name) => name.fmt(f),
            Endpoint::UnixPeer(inode) => write!(f, "peer:{inode}"),
            Endpoint::None => f.write_str("*"),
        }
    }
}

/// One socket line, validated. Queues in bytes (for tcp: tx/rx queue column; for netlink and
/// packet rx_queue is the Rmem column). `drops` is 0 where the table has no such column.
/// `netns` is the inode of the network namespace the socket lives in (0: unknown, e.g. a
/// fixture tree under --proc-root).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SocketEntry {
    pub proto: Proto,
    pub local: Endpoint,
    pub remote: Endpoint,
    pub state: u8,
    pub tx_queue: u64,
    pub rx_queue: u64,
    pub drops: u64,
    pub uid: u32,
    pub inode: u64,
    pub netns: u64,
    /// Bytes the socket has charged to its protocol's memory (what sockstat's `mem` counts):
    /// SK_MEMINFO rmem_alloc + wmem_queued + fwd_alloc from sock_diag; from the text tables,
    /// the best they offer (rx_queue + tx_queue). Suspect tracking compares it with `mem`.
    pub charged: u64,
    /// Where `rx_queue` came from, and so what it can see.
    pub rx_source: RxSource,
}

impl SocketEntry {
    /// Tests' socket: `rx_queue` queued (and charged) on `local`, state 7, nothing else
    /// set; `rx_source` sock_diag. Tests change the fields they care about. Not behind
    /// cfg(test) so that integration tests share it (the release binary links nothing unused).
    #[doc(hidden)]
    pub fn queued(proto: Proto, local: Endpoint, rx_queue: u64, inode: u64) -> SocketEntry {
        SocketEntry {
            proto,
            local,
            remote: Endpoint::None,
            state: 7,
            tx_queue: 0,
            rx_queue,
            drops: 0,
            uid: 0,
            inode,
            netns: 0,
            charged: rx_queue,
            rx_source: RxSource::SockDiag,
        }
    }
}

/// Where a socket row's `rx_queue` came from (`rx_queue_source` in the JSON): the sources see
/// different things, so a row says which it is. Closed set: `ALL`/`name`/`from_name`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RxSource {
    /// The /proc/net text column (rx_queue / Rmem). /proc/net/unix has no queue column: its
    /// rows read 0 whatever they hold.
    Text,
    /// sock_diag's own queue length, the whole queue: inet `idiag_rqueue` (what the text
    /// tables print), unix stream/seqpacket bytes queued, a unix listener's pending
    /// connections.
    SockDiag,
    /// A unix datagram socket nothing (that sock_diag can see) has sent to: UNIX_DIAG_RQLEN,
    /// which for datagrams is the length of the first datagram only.
    FirstDatagram,
    /// A unix datagram socket with connected senders: what they have queued and not yet had
    /// consumed (their wmem_alloc, truesize), the first datagram's length if that is more.
    /// The kernel charges unix datagrams to the sender, so the receiver's own SK_MEMINFO
    /// rmem_alloc stays 0 however much it holds.
    PeerWmem,
}

impl RxSource {
    pub const ALL: [RxSource; 4] = [
        RxSource::Text,
        RxSource::SockDiag,
        RxSource::FirstDatagram,
        RxSource::PeerWmem,
    ];

    pub fn name(self) -> &'static str {
        match self {
            RxSource::Text => "text",
            RxSource::SockDiag => "sock_diag",
            RxSource::FirstDatagram => "sock_diag_first_datagram",
            RxSource::PeerWmem => "sock_diag_peer_wmem",
        }
    }

    pub fn from_name(name: &str) -> Option<RxSource> {
        RxSource::ALL.into_iter().find(|r| r.name() == name)
    }
}

/// Keeps `top` sorted by `key` descending and at most `n` long (and within its capacity): the
/// candidate whose key is `cand` is built with `make` and inserted only if it ranks among the
/// first `n`. Equal keys keep arrival order, so the result does not depend on how the tables
/// are walked. The one top-N list: the agent's suspects and the report's top sockets.
pub fn insert_top<T, K: Ord, const N: usize>(
    top: &mut heapless::Vec<T, N>,
    n: usize,
    cand: K,
    key: impl Fn(&T) -> K,
    make: impl FnOnce() -> T,
) {
    let n = n.min(N);
    if n == 0 {
        return;
    }
    if top.len() >= n {
        match top.last() {
            Some(last) if cand > key(last) => {
                top.truncate(n - 1);
            }
            _ => return,
        }
    }
    let pos = top.partition_point(|s| key(s) >= cand);
    let _ = top.insert(pos, make());
}

/// What one table read saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableStats {
    pub sockets: u32,
    pub malformed: u32,
    /// First error seen (I/O or a bad line), for the "skipped" note in reports and logs.
    pub first_error: Option<ProcError>,
}

/// Decodes an `ADDR:PORT` column of an inet table. ADDR is 8 hex digits (IPv4) or 32 (IPv6):
/// each 8-digit group is a u32 the kernel printed from memory holding network-order bytes,
/// so turning it back into bytes with the host's byte order restores the address.
fn parse_inet_endpoint(s: &[u8], v6: bool) -> Result<Endpoint, &'static str> {
    let colon = s
        .iter()
        .position(|&c| c == b':')
        .ok_or("address without ':'")?;
    let (addr, port) = (&s[..colon], &s[colon + 1..]);
    let groups = if v6 { 4 } else { 1 };
    if addr.len() != groups * 8 {
        return Err("address length");
    }
    let mut ip = [0u8; 16];
    for (g, hex) in addr.chunks_exact(8).enumerate() {
        let word = parse_hex(hex).ok_or("address hex")? as u32;
        ip[g * 4..g * 4 + 4].copy_from_slice(&word.to_ne_bytes());
    }
    if port.len() != 4 {
        return Err("port");
    }
    let port = parse_hex(port).ok_or("port")? as u16;
    Ok(Endpoint::Inet { ip, v6, port })
}

/// Splits "AAAAAAAA:BBBBBBBB" (hex) into two numbers.
fn parse_hex_pair(s: &[u8]) -> Option<(u64, u64)> {
    let colon = s.iter().position(|&c| c == b':')?;
    Some((parse_hex(&s[..colon])?, parse_hex(&s[colon + 1..])?))
}

/// The `tx_queue:rx_queue` column: the kernel prints both with `%08X` from 32-bit ints, so
/// each is exactly 8 hex digits. Anything wider is not kernel text (a value the kernel cannot
/// hold must not become a multi-gigabyte "backlog").
fn parse_queues(s: &[u8]) -> Option<(u64, u64)> {
    let colon = s.iter().position(|&c| c == b':')?;
    if colon != 8 || s.len() != 17 {
        return None;
    }
    parse_hex_pair(s)
}

/// True if `line` is a table's column header rather than a socket.
fn is_header(proto: Proto, line: &[u8]) -> bool {
    let first = fields(line).next();
    if proto.is_inet() {
        first == Some(b"sl")
    } else if proto == Proto::Unix {
        first == Some(b"Num")
    } else {
        first == Some(b"sk")
    }
}

fn parse_inet(proto: Proto, line: &[u8]) -> Result<SocketEntry, &'static str> {
    let mut it = fields(line);
    let sl = it.next().ok_or("empty line")?;
    if sl == b"sl" {
        return Err("header");
    }
    // "12:" — the slot number; checked so a shifted or foreign line is not misread.
    match sl.split_last() {
        Some((b':', digits)) if parse_dec(digits).is_some() => {}
        _ => return Err("slot"),
    }
    let v6 = proto.is_v6();
    let local = parse_inet_endpoint(it.next().ok_or("local address")?, v6)?;
    let remote = parse_inet_endpoint(it.next().ok_or("remote address")?, v6)?;
    let st = it.next().ok_or("state")?;
    let state = match parse_hex(st) {
        Some(v) if st.len() == 2 => v as u8,
        _ => return Err("state"),
    };
    let (tx_queue, rx_queue) = it
        .next()
        .and_then(parse_queues)
        .ok_or("tx_queue:rx_queue")?;
    it.next().and_then(parse_hex_pair).ok_or("tr:tm->when")?;
    it.next().and_then(parse_hex).ok_or("retrnsmt")?;
    let uid = it
        .next()
        .and_then(parse_dec)
        .and_then(|v| u32::try_from(v).ok())
        .ok_or("uid")?;
    // timeout: "%8d" (may be negative on some kernels); only its presence matters.
    it.next().ok_or("timeout")?;
    let inode = it.next().and_then(parse_dec).ok_or("inode")?;
    let drops = if matches!(proto, Proto::Tcp | Proto::Tcp6) {
        0
    } else {
        // udp/raw: ref pointer drops
        it.next().ok_or("ref")?;
        it.next().ok_or("pointer")?;
        it.next().and_then(parse_dec).ok_or("drops")?
    };
    Ok(SocketEntry {
        proto,
        local,
        remote,
        state,
        tx_queue,
        rx_queue,
        drops,
        uid,
        inode,
        netns: 0,
        charged: rx_queue.saturating_add(tx_queue),
        rx_source: RxSource::Text,
    })
}

/// Checks an `sk` column is there. It is a `%pK` pointer: hex, zeros under kptr_restrict, or
/// the literal `(____ptrval____)` before the kernel's RNG is ready (seen on 6.1 at boot), so
/// its form is not checked; nothing reads its value.
fn check_sk(s: Option<&[u8]>) -> Result<(), &'static str> {
    match s {
        Some(b"sk") => Err("header"),
        Some(_) => Ok(()),
        None => Err("sk"),
    }
}

fn dec<T: TryFrom<u64>>(s: Option<&[u8]>, what: &'static str) -> Result<T, &'static str> {
    s.and_then(parse_dec)
        .and_then(|v| T::try_from(v).ok())
        .ok_or(what)
}

fn parse_netlink(line: &[u8]) -> Result<SocketEntry, &'static str> {
    let mut it = fields(line);
    check_sk(it.next())?;
    let protocol: u32 = dec(it.next(), "Eth")?;
    let portid: u32 = dec(it.next(), "Pid")?;
    it.next().and_then(parse_hex).ok_or("Groups")?;
    // `%-8d` of an int: at most i32::MAX (a wider number is not kernel text).
    let rmem = u64::from(dec::<i32>(it.next(), "Rmem")?.unsigned_abs());
    let wmem = u64::from(dec::<i32>(it.next(), "Wmem")?.unsigned_abs());
    it.next().ok_or("Dump")?; // a pointer on 3.10, an int later
    it.next().ok_or("Locks")?;
    let drops: u64 = dec(it.next(), "Drops")?;
    let inode: u64 = dec(it.next(), "Inode")?;
    Ok(SocketEntry {
        proto: Proto::Netlink,
        local: Endpoint::Netlink { protocol, portid },
        remote: Endpoint::None,
        state: 0,
        tx_queue: wmem,
        rx_queue: rmem,
        drops,
        uid: 0,
        inode,
        netns: 0,
        charged: rmem + wmem,
        rx_source: RxSource::Text,
    })
}

fn parse_packet(line: &[u8]) -> Result<SocketEntry, &'static str> {
    let mut it = fields(line);
    check_sk(it.next())?;
    it.next().and_then(parse_dec).ok_or("RefCnt")?;
    let ptype: u16 = dec(it.next(), "Type")?;
    let proto_hex = it.next().ok_or("Proto")?;
    let proto = match parse_hex(proto_hex) {
        Some(v) if proto_hex.len() == 4 => v as u16,
        _ => return Err("Proto"),
    };
    let ifindex: u32 = dec(it.next(), "Iface")?;
    it.next().and_then(parse_dec).ok_or("R")?;
    // `%-6u` of an unsigned int.
    let rmem = u64::from(dec::<u32>(it.next(), "Rmem")?);
    let uid: u32 = dec(it.next(), "User")?;
    let inode: u64 = dec(it.next(), "Inode")?;
    Ok(SocketEntry {
        proto: Proto::Packet,
        local: Endpoint::Packet {
            ptype,
            proto,
            ifindex,
        },
        remote: Endpoint::None,
        state: 0,
        tx_queue: 0,
        rx_queue: rmem,
        drops: 0,
        uid,
        inode,
        netns: 0,
        charged: rmem,
        rx_source: RxSource::Text,
    })
}

fn parse_unix(line: &[u8]) -> Result<SocketEntry, &'static str> {
    let mut it = fields(line);
    match it.next() {
        Some(b"Num") => return Err("header"),
        Some(num) if num.ends_with(b":") => {}
        _ => return Err("Num"),
    }
    it.next().and_then(parse_hex).ok_or("RefCount")?;
    it.next().and_then(parse_hex).ok_or("Protocol")?;
    it.next().and_then(parse_hex).ok_or("Flags")?;
    it.next().and_then(parse_hex).ok_or("Type")?;
    let state = it.next().and_then(parse_hex).ok_or("St")? as u8;
    let ino = it.next().ok_or("Inode")?;
    let inode = parse_dec(ino).ok_or("Inode")?;
    // The path is everything after the single space that follows the inode (it may hold spaces).
    let after = (ino.as_ptr() as usize - line.as_ptr() as usize) + ino.len();
    let path = line.get(after + 1..).unwrap_or(b"");
    Ok(SocketEntry {
        proto: Proto::Unix,
        local: Endpoint::Unix(UnixName::from_shown(path)),
        remote: Endpoint::None,
        state,
        tx_queue: 0,
        rx_queue: 0,
        drops: 0,
        uid: 0,
        inode,
        netns: 0,
        charged: 0,
        rx_source: RxSource::Text,
    })
}

/// Parses one data line of the table for `proto`. Err("header") for the column header line,
/// otherwise Err names the first column that is missing or not a number of the right form.
pub fn parse_line(proto: Proto, line: &[u8]) -> Result<SocketEntry, &'static str> {
    match proto {
        Proto::Netlink => parse_netlink(line),
        Proto::Packet => parse_packet(line),
        Proto::Unix => parse_unix(line),
        _ => parse_inet(proto, line),
    }
}

/// Streams a whole table through `buf`, calling `f` for every socket. The header and bad
/// lines are skipped (bad ones counted in `malformed`, the first one kept in `first_error`);
/// blank lines are ignored. Err(Io) only if the source fails before any line was read; a
/// read error later ends the table with the sockets seen so far and `first_error = Io`.
pub fn read_table<S: Source>(
    proto: Proto,
    src: S,
    buf: &mut [u8],
    f: &mut dyn FnMut(&SocketEntry),
) -> Result<TableStats, ProcError> {
    let mut stats = TableStats::default();
    let read = read_lines(src, buf, &mut |line| {
        if line.iter().all(|c| c.is_ascii_whitespace()) || is_header(proto, line) {
            return Ok(());
        }
        let entry = parse_line(proto, line)?;
        stats.sockets = stats.sockets.saturating_add(1);
        f(&entry);
        Ok(())
    });
    if let Some((e, 0)) = read.io_error {
        if stats.sockets == 0 && read.malformed == 0 {
            return Err(ProcError::Io(e));
        }
    }
    stats.malformed = read.malformed;
    stats.first_error = read.first_error();
    Ok(stats)
}

/// Where socket lists come from: these /proc text tables, or NETLINK_SOCK_DIAG (`proc::diag`).
pub trait SocketSource {
    /// Calls `f` for every socket of `proto`; returns what was seen (missing table: first_error Io(ENOENT)).
    fn for_each(&mut self, proto: Proto, f: &mut dyn FnMut(&SocketEntry)) -> TableStats;
}

/// The /proc/net text tables under a proc root, read through one reused buffer (4 KiB).
pub struct ProcNet<'a> {
    pub root: &'a ProcRoot,
    pub buf: &'a mut [u8],
}

impl SocketSource for ProcNet<'_> {
    /// Opens `ROOT/net/<table>` and streams it. A table that cannot be opened (module not
    /// loaded, IPv6 disabled, fixture without it) gives zero sockets and `first_error = Io`.
    fn for_each(&mut self, proto: Proto, f: &mut dyn FnMut(&SocketEntry)) -> TableStats {
        let fd = match self.root.open(proto.file()) {
            Ok(fd) => fd,
            Err(e) => {
                return TableStats {
                    first_error: Some(ProcError::Io(e)),
                    ..TableStats::default()
                };
            }
        };
        match read_table(proto, &fd, self.buf, f) {
            Ok(stats) => stats,
            Err(e) => TableStats {
                first_error: Some(e),
                ..TableStats::default()
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::proc::SliceSource;

    fn text(e: &Endpoint) -> String {
        e.to_string()
    }

    /// 127.0.0.1 and the last word of ::1 as this CPU's kernel prints them: `%08X` of the
    /// network-order word loaded as a native u32 (derived for big-endian, see
    /// tests/fixtures/make_big_endian.py).
    const LO4: &str = if cfg!(target_endian = "little") {
        "0100007F"
    } else {
        "7F000001"
    };
    const ONE: &str = if cfg!(target_endian = "little") {
        "01000000"
    } else {
        "00000001"
    };

    #[test]
    fn insert_top_keeps_the_largest_in_arrival_order() {
        let mut top: heapless::Vec<(u64, char), 4> = heapless::Vec::new();
        for (k, c) in [
            (5, 'a'),
            (9, 'b'),
            (5, 'c'),
            (1, 'd'),
            (7, 'e'),
            (5, 'f'),
            (9, 'g'),
        ] {
            insert_top(&mut top, 3, k, |x: &(u64, char)| x.0, || (k, c));
        }
        assert_eq!(top.as_slice(), &[(9, 'b'), (9, 'g'), (7, 'e')]);
        insert_top(&mut top, 0, 99, |x: &(u64, char)| x.0, || (99, 'z'));
        assert_eq!(top.len(), 3);
    }

    #[test]
    fn names_and_files() {
        for p in Proto::ALL {
            assert_eq!(p.file(), format!("net/{}", p.name()).as_bytes());
            assert_eq!(Proto::from_name(p.name()), Some(p));
        }
    }

    #[test]
    fn udp_line_decodes_loopback() {
        let l = format!(
            "  118: {LO4}:14E9 00000000:0000 07 00000000:00001200 00:00000000 00000000     0        0 23456 2 ffff8880 17"
        );
        let e = parse_line(Proto::Udp, l.as_bytes()).unwrap();
        assert_eq!(text(&e.local), "127.0.0.1:5353");
        assert_eq!(text(&e.remote), "0.0.0.0:0");
        assert_eq!((e.state, e.rx_queue, e.tx_queue), (7, 0x1200, 0));
        assert_eq!((e.uid, e.inode, e.drops), (0, 23456, 17));
    }

    #[test]
    fn columns_wider_than_the_kernel_prints_are_rejected() {
        // rx_queue is %08X of an int: 9 hex digits (here ~68 GB) is not kernel text.
        let wide = b"   58: 00000000000000000000000000000000:003A 00000000000000000000000000000000:0000 07 00000000:FFFFFFFFF 00:00000000 00000000     0        0 21532 2 ffff88003a8c0000 0";
        assert_eq!(parse_line(Proto::Raw6, wide), Err("tx_queue:rx_queue"));
        let short = b"   58: 00000000000000000000000000000000:003A 00000000000000000000000000000000:0000 07 0000000:04933380 00:00000000 00000000     0        0 21532 2 ffff88003a8c0000 0";
        assert_eq!(parse_line(Proto::Raw6, short), Err("tx_queue:rx_queue"));
        // netlink Rmem is %-8d of an int; packet Rmem %-6u of an unsigned int.
        let nl =
            b"ffff8800 0   1234       00000000 2147483648 0        0     2        0        8765";
        assert_eq!(parse_line(Proto::Netlink, nl), Err("Rmem"));
        let nl =
            b"ffff8800 0   1234       00000000 2147483647 0        0     2        0        8765";
        assert_eq!(
            parse_line(Proto::Netlink, nl).unwrap().rx_queue,
            2_147_483_647
        );
        let pk = b"ffff8800 3      3    0003   2     1 4294967296 0      9999";
        assert_eq!(parse_line(Proto::Packet, pk), Err("Rmem"));
    }

    #[test]
    fn raw6_icmpv6_and_v6_text() {
        let l = b"   58: 00000000000000000000000000000000:003A 00000000000000000000000000000000:0000 07 00000000:04933380 00:00000000 00000000     0        0 21532 2 ffff88003a8c0000 0";
        let e = parse_line(Proto::Raw6, l).unwrap();
        assert_eq!(text(&e.local), ":::58");
        assert_eq!(e.rx_queue, 76_755_840);
        let lo = format!("000000000000000000000000{ONE}:007B");
        let lo = parse_inet_endpoint(lo.as_bytes(), true).unwrap();
        assert_eq!(text(&lo), "::1:123");
    }

    #[test]
    fn tcp_has_no_drops_and_header_is_rejected() {
        let l = b"   0: 0100007F:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000   999        0 3456 1 0000000000000000 100 0 0 10 0";
        let e = parse_line(Proto::Tcp, l).unwrap();
        assert_eq!((e.state, e.uid, e.inode, e.drops), (0x0A, 999, 3456, 0));
        let h = b"  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode";
        assert_eq!(parse_line(Proto::Tcp, h), Err("header"));
        // A v6 table refuses v4-length addresses.
        assert_eq!(parse_line(Proto::Tcp6, l), Err("address length"));
    }

    #[test]
    fn netlink_and_packet() {
        let n = b"ffff88003a9f6800 0   1234       00000000 2048     0        0     2        5        12345   ";
        let e = parse_line(Proto::Netlink, n).unwrap();
        assert_eq!(text(&e.local), "netlink:0:1234");
        assert_eq!((e.rx_queue, e.drops, e.inode), (2048, 5, 12345));
        let p = b"ffff8880038e6000 3      3    0003   2     1 4352   0      24108 ";
        let e = parse_line(Proto::Packet, p).unwrap();
        assert_eq!(text(&e.local), "packet:0003:2");
        assert_eq!((e.rx_queue, e.uid, e.inode), (4352, 0, 24108));
        assert_eq!(text(&Endpoint::None), "*");
    }

    #[test]
    fn unix_lines_path_abstract_and_unbound() {
        let h = b"Num       RefCount Protocol Flags    Type St Inode Path";
        assert_eq!(parse_line(Proto::Unix, h), Err("header"));
        let l = b"0000000014506a62: 00000002 00000000 00010000 0001 01 26032 /run/my socket";
        let e = parse_line(Proto::Unix, l).unwrap();
        assert_eq!((e.inode, e.state, e.rx_queue), (26032, 1, 0));
        assert_eq!(text(&e.local), "/run/my socket");
        let l = b"0000000014506a62: 00000002 00000000 00010000 0002 07 9 @gw\x1b[31m";
        assert_eq!(
            text(&parse_line(Proto::Unix, l).unwrap().local),
            "@gw\\x1b[31m"
        );
        let l = b"0000000014506a62: 00000003 00000000 00000000 0001 03 26033";
        assert_eq!(text(&parse_line(Proto::Unix, l).unwrap().local), "*");
        assert_eq!(parse_line(Proto::Unix, b"00: 1 0 0 1 3"), Err("Inode"));
        // sock_diag's raw sun_path: abstract (leading NUL), and a path with its terminator.
        assert_eq!(UnixName::from_sun_path(b"\0a\0b").to_string(), "@a@b");
        assert_eq!(
            UnixName::from_sun_path(b"/dev/log\0").to_string(),
            "/dev/log"
        );
        assert_eq!(UnixName::from_sun_path(b"\n\\").to_string(), "\\x0a\\\\");
    }

    #[test]
    fn read_table_counts_bad_lines_and_skips_header() {
        let data = b"   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
  1: 0100007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 11 2 0 0\n\
garbage\n\
  2: 0100007F:0035 00000000:0000 07 00000000:00000";
        let mut buf = [0u8; 4096];
        let mut seen = Vec::new();
        let st = read_table(
            Proto::Udp,
            SliceSource::chunked(data, 7),
            &mut buf,
            &mut |e| seen.push(e.inode),
        )
        .unwrap();
        assert_eq!(seen, vec![11]);
        assert_eq!(st.sockets, 1);
        assert_eq!(st.malformed, 2);
        assert_eq!(
            st.first_error,
            Some(ProcError::Malformed {
                line: 3,
                what: "slot"
            })
        );
    }
}
