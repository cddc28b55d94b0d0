//! /proc/net socket tables: tcp, tcp6, udp, udp6, raw, raw6, udplite, udplite6, netlink, packet.
//!
//! OWNER: parsers. Addresses are decoded from the kernel's byte order; `Endpoint`'s Display
//! is the `local` text of the report (netstat style, e.g. `127.0.0.1:5353`, `:::58`).

use super::{ProcError, ProcRoot, Source};
use core::fmt;

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
}

impl Proto {
    pub const ALL: [Proto; 10] = [
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
    ];

    /// Contract name: "tcp", "udp6", "udplite", "netlink", ...
    pub fn name(self) -> &'static str {
        todo!()
    }

    /// Path under the proc root, e.g. b"net/raw6".
    pub fn file(self) -> &'static [u8] {
        todo!()
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
    None,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let _ = f;
        todo!()
    }
}

/// One socket line, validated. Queues in bytes (for tcp: tx/rx queue column; for netlink and
/// packet rx_queue is the Rmem column). `drops` is 0 where the table has no such column.
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
}

/// What one table read saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableStats {
    pub sockets: u32,
    pub malformed: u32,
    /// First error seen (I/O or a bad line), for the "skipped" note in reports and logs.
    pub first_error: Option<ProcError>,
}

/// Parses one data line of the table for `proto` (header lines are an Err).
pub fn parse_line(proto: Proto, line: &[u8]) -> Result<SocketEntry, &'static str> {
    let _ = (proto, line);
    todo!()
}

/// Streams a whole table through `buf`, calling `f` for every socket. The header and bad
/// lines are skipped (bad ones counted); only an unreadable source is an Err.
pub fn read_table<S: Source>(
    proto: Proto,
    src: S,
    buf: &mut [u8],
    f: &mut dyn FnMut(&SocketEntry),
) -> Result<TableStats, ProcError> {
    let _ = (proto, src, buf, f);
    todo!()
}

/// Where socket lists come from. /proc text today; NETLINK_SOCK_DIAG later behind the same call.
pub trait SocketSource {
    /// Calls `f` for every socket of `proto`; returns what was seen (missing table: first_error Io(ENOENT)).
    fn for_each(&mut self, proto: Proto, f: &mut dyn FnMut(&SocketEntry)) -> TableStats;
}

/// The /proc/net text tables under a proc root, read through one reused buffer.
pub struct ProcNet<'a> {
    pub root: &'a ProcRoot,
    pub buf: &'a mut [u8],
}

impl SocketSource for ProcNet<'_> {
    fn for_each(&mut self, proto: Proto, f: &mut dyn FnMut(&SocketEntry)) -> TableStats {
        let _ = (proto, f);
        todo!()
    }
}
