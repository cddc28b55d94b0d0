//! NETLINK_SOCK_DIAG: the kernel's socket dump (what `ss` uses), as a `SocketSource`.
//!
//! One netlink socket and one receive buffer, both made once; a dump walks the kernel's
//! messages in place and hands each socket to the caller as a `SocketEntry`, so nothing is
//! allocated per message. Families: INET_DIAG for tcp, udp, udplite (v4/v6) and raw (raw_diag,
//! kernel >= 4.14), UNIX_DIAG for AF_UNIX. netlink and packet sockets always come from their
//! small /proc/net text tables.
//!
//! Receive queues follow the /proc/net text semantics so both sources agree: `idiag_rqueue` is
//! what the text tables print for every inet protocol (tcp: bytes not yet read, or the accept
//! backlog of a listener; udp: `udp_rqueue_get`; raw: `sk_rmem_alloc`). Unix: UNIX_DIAG_RQLEN
//! (stream and seqpacket: bytes queued; listener: pending connections) — except datagram
//! sockets, where RQLEN (like SIOCINQ) is the first datagram's length and SK_MEMINFO's
//! rmem_alloc is 0 whatever the queue holds: the kernel charges unix datagrams to their sender
//! (`sk_wmem_alloc`, RQLEN's `wqueue`). So the unix table is dumped twice: peers and queues
//! first (`UnixSenders`), then in full, each datagram receiver's `rx_queue` raised to what its
//! connected senders have queued (`RxSource::PeerWmem`, truesize). Unconnected senders
//! (sendto() a bound name) cannot be tied to a receiver; their bytes are counted apart
//! (`Diag::unix_unattributed`). `drops` is SK_MEMINFO_DROPS (`sk_drops`; the udp/raw text column).
//!
//! A family the kernel lacks (module not built) answers ENOENT; `Diag` then remembers it and
//! the caller reads that table as text.

use super::ProcError;
use super::net::{Endpoint, Proto, RxSource, SocketEntry, TableStats, UnixName};
use crate::sys::{self, Errno, Fd};

const NETLINK_SOCK_DIAG: libc::c_int = 4;
const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLMSG_HDRLEN: usize = 16;
/// inet_diag_msg: family, state, timer, retrans, sockid (48), expires, rqueue, wqueue, uid, inode.
const INET_DIAG_MSG_LEN: usize = 72;
/// unix_diag_msg: family, type, state, pad, ino, cookie[2].
const UNIX_DIAG_MSG_LEN: usize = 16;
const INET_DIAG_SKMEMINFO: u16 = 7;
const SK_MEMINFO_RMEM_ALLOC: usize = 0;
const SK_MEMINFO_FWD_ALLOC: usize = 4;
const SK_MEMINFO_WMEM_QUEUED: usize = 5;
/// Index of sk_drops in the SK_MEMINFO array (the last of SK_MEMINFO_VARS = 9 on 4.x-6.x).
pub const SK_MEMINFO_DROPS: usize = 8;
const UNIX_DIAG_NAME: u16 = 0;
const UNIX_DIAG_PEER: u16 = 2;
const UNIX_DIAG_RQLEN: u16 = 4;
const UNIX_DIAG_UID: u16 = 7;
const UDIAG_SHOW_NAME: u32 = 0x01;
const UDIAG_SHOW_PEER: u32 = 0x04;
const UDIAG_SHOW_RQLEN: u32 = 0x10;
const UDIAG_SHOW_UID: u32 = 0x40;
const UDIAG_SHOW_ALL: u32 = UDIAG_SHOW_NAME | UDIAG_SHOW_PEER | UDIAG_SHOW_RQLEN | UDIAG_SHOW_UID;
const SOCK_DGRAM: u8 = libc::SOCK_DGRAM as u8;
/// Most connected unix datagram receivers whose senders' queues one dump attributes (the
/// largest are kept).
pub const MAX_UNIX_SENDERS: usize = 64;
const IPPROTO_UDPLITE: u8 = 136;
const TCP_LISTEN: u8 = 10;

/// Receive buffer size: the kernel sizes dump messages to the reader's buffer, up to 32 KiB.
pub const RECV_BUF: usize = 32 * 1024;

/// The request that dumps `proto`: (address family, protocol); None for the text-only tables.
pub fn request_of(proto: Proto) -> Option<(u8, u8)> {
    let inet = libc::AF_INET as u8;
    let inet6 = libc::AF_INET6 as u8;
    Some(match proto {
        Proto::Tcp => (inet, libc::IPPROTO_TCP as u8),
        Proto::Tcp6 => (inet6, libc::IPPROTO_TCP as u8),
        Proto::Udp => (inet, libc::IPPROTO_UDP as u8),
        Proto::Udp6 => (inet6, libc::IPPROTO_UDP as u8),
        Proto::UdpLite => (inet, IPPROTO_UDPLITE),
        Proto::UdpLite6 => (inet6, IPPROTO_UDPLITE),
        Proto::Raw => (inet, libc::IPPROTO_RAW as u8),
        Proto::Raw6 => (inet6, libc::IPPROTO_RAW as u8),
        Proto::Unix => (libc::AF_UNIX as u8, 0),
        Proto::Netlink | Proto::Packet => return None,
    })
}

/// The diag families, each with its IPv6 twin (one kernel module serves both).
const FAMILIES: [(Proto, Option<Proto>); 5] = [
    (Proto::Tcp, Some(Proto::Tcp6)),
    (Proto::Udp, Some(Proto::Udp6)),
    (Proto::UdpLite, Some(Proto::UdpLite6)),
    (Proto::Raw, Some(Proto::Raw6)),
    (Proto::Unix, None),
];

/// The kernel module that serves `proto`'s dumps (the name in `missing=`); None for the
/// text-only tables. udplite is served by udp_diag: "udplite_diag" names a kernel whose
/// udp_diag has no UDP-Lite.
pub fn module_of(proto: Proto) -> Option<&'static str> {
    Some(match proto {
        Proto::Tcp | Proto::Tcp6 => "tcp_diag",
        Proto::Udp | Proto::Udp6 => "udp_diag",
        Proto::UdpLite | Proto::UdpLite6 => "udplite_diag",
        Proto::Raw | Proto::Raw6 => "raw_diag",
        Proto::Unix => "unix_diag",
        Proto::Netlink | Proto::Packet => return None,
    })
}

/// Why a dump failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiagError {
    /// The kernel has no handler for this family/protocol (ENOENT, EOPNOTSUPP, EINVAL from an
    /// old kernel): read the text table instead.
    Unsupported(Errno),
    /// send/recv failed, or the kernel answered with another error.
    Io(Errno),
    /// A message did not fit its declared length: the dump was cut there.
    Malformed(&'static str),
}

impl DiagError {
    pub fn errno(self) -> Errno {
        match self {
            DiagError::Unsupported(e) | DiagError::Io(e) => e,
            DiagError::Malformed(_) => libc::EPROTO,
        }
    }
}

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(off..off + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(off..off + 4)?.try_into().ok()?))
}

const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Walks the rtattrs in `b`: calls `f(type, payload)` for each well-formed one; stops at the
/// first that overruns.
fn for_each_attr(mut b: &[u8], f: &mut dyn FnMut(u16, &[u8])) {
    while b.len() >= 4 {
        let (Some(len), Some(ty)) = (u16_at(b, 0), u16_at(b, 2)) else {
            return;
        };
        let len = len as usize;
        if len < 4 || len > b.len() {
            return;
        }
        f(ty & 0x3fff, &b[4..len]);
        b = b.get(align4(len)..).unwrap_or(&[]);
    }
}

/// Decodes one inet_diag_msg (payload of a SOCK_DIAG_BY_FAMILY message) for `proto`.
pub fn parse_inet(proto: Proto, p: &[u8]) -> Result<SocketEntry, &'static str> {
    if p.len() < INET_DIAG_MSG_LEN {
        return Err("short inet_diag_msg");
    }
    let v6 = proto.is_v6();
    let ep = |port_off: usize, addr_off: usize| {
        let mut ip = [0u8; 16];
        let n = if v6 { 16 } else { 4 };
        ip[..n].copy_from_slice(&p[addr_off..addr_off + n]);
        Endpoint::Inet {
            ip,
            v6,
            port: u16::from_be_bytes([p[port_off], p[port_off + 1]]),
        }
    };
    let rd = |off| u32_at(p, off).unwrap_or(0);
    let mut drops = 0u64;
    let mut charged = None;
    for_each_attr(&p[INET_DIAG_MSG_LEN..], &mut |ty, data| {
        if ty == INET_DIAG_SKMEMINFO {
            if let Some(d) = u32_at(data, SK_MEMINFO_DROPS * 4) {
                drops = d as u64;
            }
            charged = charged_of(data);
        }
    });
    // A tcp listener's idiag_wqueue is its backlog limit; the text table says 0 there.
    let listener = matches!(proto, Proto::Tcp | Proto::Tcp6) && p[1] == TCP_LISTEN;
    Ok(SocketEntry {
        proto,
        local: ep(4, 8),
        remote: ep(6, 24),
        state: p[1],
        tx_queue: if listener { 0 } else { rd(60) as u64 },
        rx_queue: rd(56) as u64,
        drops,
        uid: rd(64),
        inode: rd(68) as u64,
        netns: 0,
        charged: charged.unwrap_or(rd(56) as u64 + rd(60) as u64),
        rx_source: RxSource::SockDiag,
    })
}

/// Memory a socket has charged to its protocol, from its SK_MEMINFO array (u32 each, as
/// INET_DIAG_SKMEMINFO and getsockopt SO_MEMINFO give it): rmem_alloc + wmem_queued +
/// fwd_alloc. None if the array is too short.
pub fn charged_of(meminfo: &[u8]) -> Option<u64> {
    let at = |i: usize| u32_at(meminfo, i * 4).map(u64::from);
    Some(at(SK_MEMINFO_RMEM_ALLOC)? + at(SK_MEMINFO_WMEM_QUEUED)? + at(SK_MEMINFO_FWD_ALLOC)?)
}

/// Decodes one unix_diag_msg with its NAME, PEER, RQLEN and UID attributes. `rx_queue` is
/// UNIX_DIAG_RQLEN's as the kernel gives it (`RxSource::FirstDatagram` for a datagram socket:
/// `unix_inq_len` counts only the head of a datagram queue); `Diag::dump` raises it to what
/// the socket's connected senders hold.
pub fn parse_unix(p: &[u8]) -> Result<SocketEntry, &'static str> {
    if p.len() < UNIX_DIAG_MSG_LEN {
        return Err("short unix_diag_msg");
    }
    let dgram = p[1] == SOCK_DGRAM && p[2] != TCP_LISTEN;
    let mut e = SocketEntry {
        proto: Proto::Unix,
        local: Endpoint::Unix(UnixName::from_shown(b"")),
        remote: Endpoint::None,
        state: p[2],
        tx_queue: 0,
        rx_queue: 0,
        drops: 0,
        uid: 0,
        inode: u32_at(p, 4).unwrap_or(0) as u64,
        netns: 0,
        charged: 0,
        rx_source: if dgram {
            RxSource::FirstDatagram
        } else {
            RxSource::SockDiag
        },
    };
    for_each_attr(&p[UNIX_DIAG_MSG_LEN..], &mut |ty, data| match ty {
        UNIX_DIAG_NAME => e.local = Endpoint::Unix(UnixName::from_sun_path(data)),
        UNIX_DIAG_PEER => {
            if let Some(peer) = u32_at(data, 0).filter(|&i| i != 0) {
                e.remote = Endpoint::UnixPeer(peer as u64);
            }
        }
        UNIX_DIAG_RQLEN => {
            e.rx_queue = u32_at(data, 0).unwrap_or(0) as u64;
            e.tx_queue = u32_at(data, 4).unwrap_or(0) as u64;
        }
        UNIX_DIAG_UID => e.uid = u32_at(data, 0).unwrap_or(0),
        _ => {}
    });
    Ok(e)
}

/// What connected unix datagram senders hold, per receiver: a sender's UNIX_DIAG_RQLEN
/// `wqueue` is its `sk_wmem_alloc` (`unix_outq_len`), the truesize of every datagram it sent
/// that no one has read yet — which sits in its peer's receive queue. (The kernel charges
/// unix datagrams to the sender: the receiver's own SK_MEMINFO rmem_alloc reads 0 whatever it
/// holds, and its RQLEN is the first datagram's length.) Bounded: the largest
/// `MAX_UNIX_SENDERS` receivers are kept.
#[derive(Clone, Debug, Default)]
pub struct UnixSenders {
    /// (receiver inode, bytes its connected senders have queued)
    held: heapless::Vec<(u64, u64), MAX_UNIX_SENDERS>,
    /// Bytes queued by datagram senders with no peer (sendto() to a bound name): they sit in
    /// some receiver's queue that sock_diag does not name.
    pub unattributed: u64,
}

impl UnixSenders {
    pub fn clear(&mut self) {
        self.held.clear();
        self.unattributed = 0;
    }

    /// Takes in one unix_diag_msg (with PEER and RQLEN): a datagram sender's queued bytes.
    pub fn offer(&mut self, p: &[u8]) {
        let Ok(e) = parse_unix(p) else {
            return;
        };
        if e.rx_source != RxSource::FirstDatagram || e.tx_queue == 0 {
            return;
        }
        let Endpoint::UnixPeer(peer) = e.remote else {
            self.unattributed = self.unattributed.saturating_add(e.tx_queue);
            return;
        };
        if let Some(h) = self.held.iter_mut().find(|h| h.0 == peer) {
            h.1 = h.1.saturating_add(e.tx_queue);
        } else if self.held.push((peer, e.tx_queue)).is_err() {
            // Full: replace the smallest if this one is larger.
            if let Some(min) = self.held.iter_mut().min_by_key(|h| h.1) {
                if min.1 < e.tx_queue {
                    *min = (peer, e.tx_queue);
                }
            }
        }
    }

    /// Bytes the connected senders of receiver `inode` have queued (0: none seen).
    pub fn queued_for(&self, inode: u64) -> u64 {
        self.held
            .iter()
            .filter(|h| h.0 == inode)
            .fold(0, |a, h| a.saturating_add(h.1))
    }
}

/// A NETLINK_SOCK_DIAG socket (bound to the network namespace it was made in) and its buffer.
pub struct Diag {
    fd: Fd,
    buf: Box<[u8]>,
    seq: u32,
    /// Per `Proto::index`: the kernel answered "unsupported" once; read that table as text.
    pub unsupported: [bool; Proto::COUNT],
    /// Test seam: request this protocol number for that table instead of the real one.
    #[doc(hidden)]
    pub protocol_override: Option<(Proto, u8)>,
    senders: UnixSenders,
    /// The last unix dump's `UnixSenders::unattributed`: bytes queued by datagram senders
    /// without a peer, in receivers whose rows show only their first datagram.
    pub unix_unattributed: u64,
}

fn diag_socket() -> Result<Fd, Errno> {
    // SAFETY: plain syscall; the fd is owned by `Fd` from here on.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            NETLINK_SOCK_DIAG,
        )
    };
    if fd < 0 {
        Err(sys::errno())
    } else {
        Ok(Fd::from_raw(fd))
    }
}

impl Diag {
    /// A socket in the calling thread's network namespace. Err(errno) if the kernel has no
    /// NETLINK_SOCK_DIAG (EPROTONOSUPPORT) or sockets cannot be made.
    pub fn open() -> Result<Diag, Errno> {
        Ok(Diag {
            fd: diag_socket()?,
            buf: vec![0u8; RECV_BUF].into_boxed_slice(),
            seq: 0,
            unsupported: [false; Proto::COUNT],
            protocol_override: None,
            senders: UnixSenders::default(),
            unix_unattributed: 0,
        })
    }

    /// Replaces the socket with a fresh one in the calling thread's namespace (buffer kept).
    pub fn reopen_here(&mut self) -> Result<(), Errno> {
        self.fd = diag_socket()?;
        Ok(())
    }

    /// Replaces the socket with one made in the namespace `ns` (an open nsfs file), keeping
    /// the buffer: setns there, socket(), setns back to `home`. setns needs CAP_SYS_ADMIN.
    /// Err(Return) means the way back failed and the thread is still in `ns`.
    pub fn reopen_in(&mut self, ns: &Fd, home: &Fd) -> Result<(), NsError> {
        // SAFETY: setns on valid fds; the kernel checks the namespace type.
        if unsafe { libc::setns(ns.raw(), libc::CLONE_NEWNET) } != 0 {
            return Err(NsError::Enter(sys::errno()));
        }
        let made = diag_socket();
        // SAFETY: as above.
        if unsafe { libc::setns(home.raw(), libc::CLONE_NEWNET) } != 0 {
            return Err(NsError::Return(sys::errno()));
        }
        self.fd = made.map_err(NsError::Socket)?;
        Ok(())
    }

    fn send(&mut self, req: &[u8]) -> Result<(), Errno> {
        // SAFETY: a zeroed sockaddr_nl with nl_family set addresses the kernel.
        let mut sa: libc::sockaddr_nl = unsafe { core::mem::zeroed() };
        sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        loop {
            // SAFETY: req and sa are valid for the lengths given.
            let n = unsafe {
                libc::sendto(
                    self.fd.raw(),
                    req.as_ptr().cast(),
                    req.len(),
                    0,
                    (&sa as *const libc::sockaddr_nl).cast(),
                    core::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
                )
            };
            if n >= 0 {
                return Ok(());
            }
            let e = sys::errno();
            if e != libc::EINTR {
                return Err(e);
            }
        }
    }

    /// Dumps every socket of `proto` in this socket's namespace, calling `f` for each.
    /// Returns the number of sockets. On Err the socket may hold the rest of the dump, so it
    /// is drained before the next request (messages carry our sequence number; stale ones
    /// are skipped).
    ///
    /// Unix is dumped twice: first only peers and queue lengths, to learn what each connected
    /// datagram sender has queued (`UnixSenders`), then in full, each datagram receiver's
    /// `rx_queue` raised to what its senders hold (`RxSource::PeerWmem`).
    pub fn dump(
        &mut self,
        proto: Proto,
        f: &mut dyn FnMut(&SocketEntry),
    ) -> Result<u32, DiagError> {
        if proto != Proto::Unix {
            return self.walk(proto, UDIAG_SHOW_ALL, u32::MAX, &mut |p| {
                f(&parse_inet(proto, p)?);
                Ok(())
            });
        }
        let mut senders = core::mem::take(&mut self.senders);
        senders.clear();
        let first = self.walk(
            proto,
            UDIAG_SHOW_PEER | UDIAG_SHOW_RQLEN,
            u32::MAX,
            &mut |p| {
                senders.offer(p);
                Ok(())
            },
        );
        let res = first.and_then(|_| {
            self.walk(proto, UDIAG_SHOW_ALL, u32::MAX, &mut |p| {
                let mut e = parse_unix(p)?;
                if e.rx_source == RxSource::FirstDatagram {
                    let held = senders.queued_for(e.inode);
                    if held > e.rx_queue {
                        e.rx_queue = held;
                        e.rx_source = RxSource::PeerWmem;
                    }
                }
                f(&e);
                Ok(())
            })
        });
        self.unix_unattributed = senders.unattributed;
        self.senders = senders;
        res
    }

    /// Sends one dump request for `proto` (`show`: the unix attributes wanted; `states`: the
    /// socket states wanted, a bit per state) and hands each socket's message payload to `f`.
    /// Returns the number of messages.
    fn walk(
        &mut self,
        proto: Proto,
        show: u32,
        states: u32,
        f: &mut dyn FnMut(&[u8]) -> Result<(), &'static str>,
    ) -> Result<u32, DiagError> {
        let (family, mut protocol) =
            request_of(proto).ok_or(DiagError::Unsupported(libc::ENOENT))?;
        if let Some((p, n)) = self.protocol_override {
            if p == proto {
                protocol = n;
            }
        }
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut req = [0u8; NLMSG_HDRLEN + 56];
        let body_len = if family == libc::AF_UNIX as u8 {
            24
        } else {
            56
        };
        let total = NLMSG_HDRLEN + body_len;
        req[0..4].copy_from_slice(&(total as u32).to_ne_bytes());
        req[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        req[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
        req[8..12].copy_from_slice(&seq.to_ne_bytes());
        let b = &mut req[NLMSG_HDRLEN..];
        b[0] = family;
        b[1] = protocol;
        if family == libc::AF_UNIX as u8 {
            // unix_diag_req: family, protocol, pad, states, ino, show, cookie[2]
            b[4..8].copy_from_slice(&states.to_ne_bytes());
            b[12..16].copy_from_slice(&show.to_ne_bytes());
        } else {
            // inet_diag_req_v2: family, protocol, ext, pad (raw: sdiag_raw_protocol), states, id
            b[2] = 1 << (INET_DIAG_SKMEMINFO - 1);
            b[4..8].copy_from_slice(&states.to_ne_bytes());
        }
        self.send(&req[..total]).map_err(DiagError::Io)?;

        let mut count = 0u32;
        loop {
            // SAFETY: buf is valid for its length.
            let n = unsafe {
                libc::recv(
                    self.fd.raw(),
                    self.buf.as_mut_ptr().cast(),
                    self.buf.len(),
                    0,
                )
            };
            if n < 0 {
                let e = sys::errno();
                if e == libc::EINTR {
                    continue;
                }
                return Err(DiagError::Io(e));
            }
            if n == 0 {
                return Err(DiagError::Malformed("dump ended without NLMSG_DONE"));
            }
            let data = &self.buf[..n as usize];
            let mut off = 0;
            while off + NLMSG_HDRLEN <= data.len() {
                let len = u32_at(data, off).unwrap_or(0) as usize;
                let ty = u16_at(data, off + 4).unwrap_or(0);
                let mseq = u32_at(data, off + 8).unwrap_or(0);
                if len < NLMSG_HDRLEN || off + len > data.len() {
                    return Err(DiagError::Malformed("netlink message length"));
                }
                let payload = &data[off + NLMSG_HDRLEN..off + len];
                off += align4(len);
                if mseq != seq {
                    continue; // the tail of an earlier, interrupted dump
                }
                match ty {
                    // A dump that failed says so in NLMSG_DONE's int (e.g. -ENOENT when no
                    // handler serves the protocol); 0 or absent means done.
                    NLMSG_DONE if u32_at(payload, 0).is_none_or(|e| e as i32 >= 0) => {
                        return Ok(count);
                    }
                    NLMSG_DONE | NLMSG_ERROR => {
                        let err = u32_at(payload, 0).map_or(libc::EPROTO, |e| -(e as i32));
                        return Err(match err {
                            libc::ENOENT | libc::EOPNOTSUPP | libc::EINVAL => {
                                DiagError::Unsupported(err)
                            }
                            e => DiagError::Io(e),
                        });
                    }
                    SOCK_DIAG_BY_FAMILY => {
                        f(payload).map_err(DiagError::Malformed)?;
                        count = count.saturating_add(1);
                    }
                    _ => {}
                }
            }
        }
    }

    /// Asks once which diag modules this kernel lacks: per family (tcp, udp, udplite, raw, unix)
    /// one dump request for no socket state, which the kernel answers with NLMSG_DONE where a
    /// handler serves it (after finding nothing to send) and ENOENT where none does (module
    /// absent: OpenWrt's optional kmod-inet-diag, raw_diag before 4.10). Marks `unsupported`
    /// for both address families of each missing one; returns the v4 (or unix) tables marked.
    /// Five round trips, no allocation. A family whose probe fails otherwise is left to the
    /// scan to find out.
    pub fn probe(&mut self) -> heapless::Vec<Proto, 5> {
        let mut missing = heapless::Vec::new();
        for (p, twin) in FAMILIES {
            match self.walk(p, 0, 0, &mut |_| Ok(())) {
                Err(DiagError::Unsupported(_)) => {
                    self.unsupported[p.index()] = true;
                    if let Some(t) = twin {
                        self.unsupported[t.index()] = true;
                    }
                    let _ = missing.push(p);
                }
                Err(DiagError::Malformed(_)) => {
                    let _ = self.reopen_here();
                }
                _ => {}
            }
        }
        missing
    }

    /// Dumps `proto` as a `TableStats` (the text readers' shape): Err(Unsupported) marks the
    /// protocol in `unsupported` and is returned so the caller reads the text table instead.
    pub fn table(
        &mut self,
        proto: Proto,
        f: &mut dyn FnMut(&SocketEntry),
    ) -> Result<TableStats, DiagError> {
        match self.dump(proto, f) {
            Ok(n) => Ok(TableStats {
                sockets: n,
                ..TableStats::default()
            }),
            Err(DiagError::Unsupported(e)) => {
                self.unsupported[proto.index()] = true;
                Err(DiagError::Unsupported(e))
            }
            Err(DiagError::Io(e)) => Ok(TableStats {
                first_error: Some(ProcError::Io(e)),
                ..TableStats::default()
            }),
            Err(DiagError::Malformed(what)) => {
                // Drop whatever is left of this dump with the socket; the next one starts clean.
                let _ = self.reopen_here();
                Ok(TableStats {
                    malformed: 1,
                    first_error: Some(ProcError::Malformed { line: 0, what }),
                    ..TableStats::default()
                })
            }
        }
    }
}

/// Why entering another network namespace failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NsError {
    /// setns into the namespace failed (EPERM without CAP_SYS_ADMIN).
    Enter(Errno),
    /// The socket could not be made inside it.
    Socket(Errno),
    /// setns back home failed: this thread is still in the other namespace.
    Return(Errno),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(ty: u16, data: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&((4 + data.len()) as u16).to_ne_bytes());
        v.extend_from_slice(&ty.to_ne_bytes());
        v.extend_from_slice(data);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v
    }

    #[test]
    fn inet_message_decodes() {
        let mut p = vec![0u8; INET_DIAG_MSG_LEN];
        p[0] = libc::AF_INET as u8;
        p[1] = 7;
        p[4..6].copy_from_slice(&5353u16.to_be_bytes());
        p[8..12].copy_from_slice(&[127, 0, 0, 1]);
        p[56..60].copy_from_slice(&4608u32.to_ne_bytes());
        p[64..68].copy_from_slice(&1000u32.to_ne_bytes());
        p[68..72].copy_from_slice(&23456u32.to_ne_bytes());
        let mut mem = [0u8; 36];
        mem[32..36].copy_from_slice(&17u32.to_ne_bytes());
        p.extend(attr(INET_DIAG_SKMEMINFO, &mem));
        let e = parse_inet(Proto::Udp, &p).unwrap();
        assert_eq!(e.local.to_string(), "127.0.0.1:5353");
        assert_eq!(e.remote.to_string(), "0.0.0.0:0");
        assert_eq!(
            (e.rx_queue, e.uid, e.inode, e.drops, e.state),
            (4608, 1000, 23456, 17, 7)
        );
        assert_eq!(parse_inet(Proto::Udp, &p[..71]), Err("short inet_diag_msg"));
        // A truncated attribute is ignored, not read past.
        let mut bad = p[..INET_DIAG_MSG_LEN].to_vec();
        bad.extend_from_slice(&[200, 0, 7, 0, 1, 2]);
        assert_eq!(parse_inet(Proto::Udp, &bad).unwrap().drops, 0);
    }

    #[test]
    fn unix_message_decodes() {
        let mut p = vec![0u8; UNIX_DIAG_MSG_LEN];
        p[1] = libc::SOCK_DGRAM as u8;
        p[2] = 7;
        p[4..8].copy_from_slice(&777u32.to_ne_bytes());
        p.extend(attr(UNIX_DIAG_NAME, b"\0gw-test"));
        p.extend(attr(UNIX_DIAG_PEER, &778u32.to_ne_bytes()));
        let mut rq = [0u8; 8];
        rq[..4].copy_from_slice(&300u32.to_ne_bytes());
        p.extend(attr(UNIX_DIAG_RQLEN, &rq));
        p.extend(attr(UNIX_DIAG_UID, &42u32.to_ne_bytes()));
        let e = parse_unix(&p).unwrap();
        assert_eq!(e.local.to_string(), "@gw-test");
        assert_eq!(e.remote.to_string(), "peer:778");
        assert_eq!((e.inode, e.rx_queue, e.uid, e.state), (777, 300, 42, 7));
        let bare = parse_unix(&p[..UNIX_DIAG_MSG_LEN]).unwrap();
        assert_eq!(bare.local.to_string(), "*");
        assert_eq!(e.rx_source, RxSource::FirstDatagram);
    }

    /// A unix_diag_msg as the first (peers and queues) pass of a unix dump sees it.
    fn unix_msg(ty: i32, state: u8, ino: u32, peer: u32, rq: u32, wq: u32) -> Vec<u8> {
        let mut p = vec![0u8; UNIX_DIAG_MSG_LEN];
        p[1] = ty as u8;
        p[2] = state;
        p[4..8].copy_from_slice(&ino.to_ne_bytes());
        if peer != 0 {
            p.extend(attr(UNIX_DIAG_PEER, &peer.to_ne_bytes()));
        }
        let mut q = [0u8; 8];
        q[..4].copy_from_slice(&rq.to_ne_bytes());
        q[4..].copy_from_slice(&wq.to_ne_bytes());
        p.extend(attr(UNIX_DIAG_RQLEN, &q));
        p
    }

    #[test]
    fn datagram_senders_are_counted_against_their_peer() {
        // What 6.18 shows for a pair with 200 x 12 000 bytes queued at 101 (ss -xm: the
        // receiver r0 and Recv-Q 12000, the sender Send-Q 3328000), two senders connected to a
        // bound receiver 300, one unconnected sender, a stream pair and a listener.
        let mut s = UnixSenders::default();
        for m in [
            unix_msg(libc::SOCK_DGRAM, 1, 101, 102, 12_000, 0),
            unix_msg(libc::SOCK_DGRAM, 1, 102, 101, 0, 3_328_000),
            unix_msg(libc::SOCK_DGRAM, 7, 300, 0, 60_000, 0),
            unix_msg(libc::SOCK_DGRAM, 1, 301, 300, 0, 66_560),
            unix_msg(libc::SOCK_DGRAM, 1, 302, 300, 0, 66_560),
            unix_msg(libc::SOCK_DGRAM, 7, 303, 0, 0, 99_840),
            unix_msg(libc::SOCK_STREAM, 1, 400, 401, 0, 5_000),
            unix_msg(libc::SOCK_DGRAM, TCP_LISTEN, 500, 0, 3, 128),
        ] {
            s.offer(&m);
        }
        assert_eq!(s.queued_for(101), 3_328_000);
        assert_eq!(s.queued_for(102), 0);
        assert_eq!(s.queued_for(300), 133_120);
        assert_eq!(s.queued_for(401), 0, "stream RQLEN is already whole");
        assert_eq!(s.unattributed, 99_840);
        // Bounded: past MAX_UNIX_SENDERS receivers the largest are kept.
        let mut b = UnixSenders::default();
        for i in 0..(MAX_UNIX_SENDERS as u32 + 10) {
            b.offer(&unix_msg(
                libc::SOCK_DGRAM,
                1,
                10_000 + i,
                1 + i,
                0,
                100 + i,
            ));
        }
        assert_eq!(b.held.len(), MAX_UNIX_SENDERS);
        assert_eq!(b.queued_for(1), 0);
        assert_eq!(
            b.queued_for(MAX_UNIX_SENDERS as u64 + 10),
            100 + MAX_UNIX_SENDERS as u64 + 9
        );
    }
}
