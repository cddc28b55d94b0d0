//! `ghostwatch report` against the real kernel: a child process ("gw-sockhold") holds sockets of
//! every kind the seed incident involves and never reads them; the test floods them on loopback
//! and checks that the built binary names each backlogged socket and its owner, that Ghost grows
//! by the bytes a 1 GiB UDP queue pins, that forked holders are all listed, and that an
//! unprivileged run degrades instead of failing.
//!
//! The holder is this test binary re-executed in a helper mode (env GW_LIVE_HELPER), so CI needs
//! no extra program. It forks once so that the holder is a single-threaded process whose comm
//! prctl(PR_SET_NAME) really sets (libtest runs each test in a secondary thread). Also here:
//! the whole report on the live /proc as root and as nobody, and one of our own sockets. Every
//! test but the last needs root (raw sockets, SO_RCVBUFFORCE, reading every /proc/PID/fd).

mod support;

use std::io::Write;
use std::net::{TcpStream, UdpSocket};
use std::os::unix::io::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use support::json::{self, Value, check_contract};
use support::{ghostwatch, require_root, udp_row_by_inode};

const HELPER_ENV: &str = "GW_LIVE_HELPER";
/// The helper reports to the test on this descriptor.
const REPORT_FD: libc::c_int = 3;
const HOLDER_COMM: &str = "gw-sockhold";

/// The live tests measure box-wide numbers (Ghost, top sockets): run them one at a time.
static LIVE: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Entry point of the re-executed helper; an ordinary (empty) test otherwise.
#[test]
fn helper_entry() {
    if let Ok(mode) = std::env::var(HELPER_ENV) {
        helper::run(&mode);
    }
}

mod helper {
    //! Runs in the re-executed test binary. Only libc calls and stack buffers after fork():
    //! the parent process has other threads, so the forked holder must not allocate.

    use super::{HOLDER_COMM, REPORT_FD};
    use std::io::Write;

    /// Forks the holder, waits for it, exits. Never returns.
    pub fn run(mode: &str) -> ! {
        let m = match mode {
            "sockets" => Mode::Sockets,
            "ghost" => Mode::Ghost,
            "share" => Mode::Share,
            "crowd" => Mode::Crowd,
            _ => std::process::exit(2),
        };
        // SAFETY: getpid/fork have no preconditions; the child only calls libc (see hold()).
        let me = unsafe { libc::getpid() };
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            hold(m, me);
        }
        // SAFETY: plain syscalls on our own descriptors and child.
        unsafe {
            libc::close(REPORT_FD);
            let mut st = 0;
            while pid > 0
                && libc::waitpid(pid, &mut st, 0) < 0
                && *libc::__errno_location() == libc::EINTR
            {}
        }
        std::process::exit(0);
    }

    #[derive(Clone, Copy, PartialEq)]
    enum Mode {
        /// udp4, udp6, raw ICMPv6, an accepted TCP connection and a NETLINK_ROUTE socket.
        Sockets,
        /// One UDP socket with SO_RCVBUFFORCE = 1 GiB.
        Ghost,
        /// One UDP socket shared with a forked grandchild.
        Share,
        /// A pre-forking daemon's crowd: one UDP socket shared by CROWD_SHARERS forked
        /// children, CROWD_IDLE children holding an idle UDP socket each, and last (highest
        /// PID) one child "gw-culprit" holding a socket the test floods.
        Crowd,
    }

    /// SO_RCVBUFFORCE: queues big enough to rank in the top 10 on a box others flood too.
    fn rcvbuf_force(fd: libc::c_int, bytes: libc::c_int) {
        // SAFETY: option value is a c_int of the stated size.
        let r = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                (&bytes as *const libc::c_int).cast(),
                core::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r != 0 {
            fail("SO_RCVBUFFORCE");
        }
    }

    /// Forks a child that sets PDEATHSIG (so it dies with the holder), closes the report pipe
    /// and, in the child, runs `f` and then pauses forever. Returns the child's PID.
    fn fork_member(holder: libc::pid_t, f: impl FnOnce()) -> libc::pid_t {
        // SAFETY: the holder is single-threaded; the child calls only libc.
        let g = unsafe { libc::fork() };
        if g < 0 {
            fail("fork");
        }
        if g == 0 {
            unsafe {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                if libc::getppid() != holder {
                    libc::_exit(1);
                }
                libc::close(REPORT_FD);
            }
            f();
            loop {
                // SAFETY: pause just waits for the SIGKILL.
                unsafe { libc::pause() };
            }
        }
        g
    }

    fn say(args: std::fmt::Arguments<'_>) {
        let mut buf = [0u8; 160];
        let mut w = &mut buf[..];
        let _ = w.write_fmt(args);
        let n = 160 - w.len();
        // SAFETY: buf holds n initialised bytes.
        unsafe { libc::write(REPORT_FD, buf.as_ptr().cast(), n) };
    }

    fn fail(what: &str) -> ! {
        // SAFETY: errno location is thread-local and valid.
        let e = unsafe { *libc::__errno_location() };
        say(format_args!("error {what} errno {e}\n"));
        // SAFETY: _exit skips atexit handlers that belong to the parent's runtime.
        unsafe { libc::_exit(1) }
    }

    fn inode(fd: libc::c_int) -> u64 {
        // SAFETY: st is a valid out-pointer.
        let mut st: libc::stat = unsafe { core::mem::zeroed() };
        if unsafe { libc::fstat(fd, &mut st) } != 0 {
            fail("fstat");
        }
        st.st_ino
    }

    fn sock(domain: libc::c_int, ty: libc::c_int, proto: libc::c_int, what: &str) -> libc::c_int {
        // SAFETY: plain syscall.
        let fd = unsafe { libc::socket(domain, ty, proto) };
        if fd < 0 {
            fail(what);
        }
        fd
    }

    /// Binds to 127.0.0.1:0 and returns the port the kernel chose.
    fn bind4(fd: libc::c_int) -> u16 {
        // SAFETY: sockaddr_in is plain data; lengths match the structs passed.
        unsafe {
            let mut a: libc::sockaddr_in = core::mem::zeroed();
            a.sin_family = libc::AF_INET as libc::sa_family_t;
            a.sin_addr.s_addr = u32::from_ne_bytes([127, 0, 0, 1]);
            let len = core::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            if libc::bind(fd, (&a as *const libc::sockaddr_in).cast(), len) != 0 {
                fail("bind4");
            }
            let mut l = len;
            libc::getsockname(fd, (&mut a as *mut libc::sockaddr_in).cast(), &mut l);
            u16::from_be(a.sin_port)
        }
    }

    /// Binds to [::1]:0 and returns the port the kernel chose.
    fn bind6(fd: libc::c_int) -> u16 {
        // SAFETY: as bind4.
        unsafe {
            let mut a: libc::sockaddr_in6 = core::mem::zeroed();
            a.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            a.sin6_addr.s6_addr[15] = 1;
            let len = core::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
            if libc::bind(fd, (&a as *const libc::sockaddr_in6).cast(), len) != 0 {
                fail("bind6");
            }
            let mut l = len;
            libc::getsockname(fd, (&mut a as *mut libc::sockaddr_in6).cast(), &mut l);
            u16::from_be(a.sin6_port)
        }
    }

    /// An rtnetlink socket subscribed to link events with a link dump request in flight: the
    /// kernel queues the first dump chunk at send time, and nobody ever reads it.
    fn netlink_with_pending_dump() -> libc::c_int {
        let fd = sock(
            libc::AF_NETLINK,
            libc::SOCK_RAW,
            libc::NETLINK_ROUTE,
            "netlink",
        );
        // SAFETY: sockaddr_nl is plain data; the request is a fixed 32-byte buffer.
        unsafe {
            let mut a: libc::sockaddr_nl = core::mem::zeroed();
            a.nl_family = libc::AF_NETLINK as libc::sa_family_t;
            a.nl_groups = libc::RTMGRP_LINK as u32;
            let len = core::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t;
            if libc::bind(fd, (&a as *const libc::sockaddr_nl).cast(), len) != 0 {
                fail("bind netlink");
            }
            // nlmsghdr (16 bytes) + ifinfomsg (16 bytes, AF_UNSPEC: every link).
            let mut req = [0u8; 32];
            req[0..4].copy_from_slice(&32u32.to_ne_bytes());
            req[4..6].copy_from_slice(&libc::RTM_GETLINK.to_ne_bytes());
            let flags = (libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16;
            req[6..8].copy_from_slice(&flags.to_ne_bytes());
            req[8..12].copy_from_slice(&1u32.to_ne_bytes());
            if libc::send(fd, req.as_ptr().cast(), req.len(), 0) != req.len() as isize {
                fail("send RTM_GETLINK");
            }
        }
        fd
    }

    fn hold(mode: Mode, parent: libc::pid_t) -> ! {
        let mut name = [0u8; 16];
        name[..HOLDER_COMM.len()].copy_from_slice(HOLDER_COMM.as_bytes());
        // SAFETY: prctl with a NUL-terminated name; PDEATHSIG so a killed helper takes us along.
        unsafe {
            libc::prctl(libc::PR_SET_NAME, name.as_ptr());
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if libc::getppid() != parent {
                libc::_exit(1);
            }
        }
        match mode {
            Mode::Sockets => {
                let u4 = sock(libc::AF_INET, libc::SOCK_DGRAM, 0, "udp4");
                say(format_args!("udp {} {}\n", inode(u4), bind4(u4)));
                let u6 = sock(libc::AF_INET6, libc::SOCK_DGRAM, 0, "udp6");
                say(format_args!("udp6 {} {}\n", inode(u6), bind6(u6)));
                let r6 = sock(libc::AF_INET6, libc::SOCK_RAW, libc::IPPROTO_ICMPV6, "raw6");
                say(format_args!("raw6 {} 0\n", inode(r6)));
                let nl = netlink_with_pending_dump();
                say(format_args!("netlink {} 0\n", inode(nl)));
                let l = sock(libc::AF_INET, libc::SOCK_STREAM, 0, "tcp listen");
                let port = bind4(l);
                // SAFETY: plain syscalls.
                if unsafe { libc::listen(l, 1) } != 0 {
                    fail("listen");
                }
                // The test connects and sends; we accept (so the socket has an inode and an
                // owner) and never read.
                say(format_args!("tcplisten {} {port}\n", inode(l)));
                let c = unsafe { libc::accept(l, core::ptr::null_mut(), core::ptr::null_mut()) };
                if c < 0 {
                    fail("accept");
                }
                say(format_args!("tcp {} {port}\n", inode(c)));
            }
            Mode::Ghost => {
                let u = sock(libc::AF_INET, libc::SOCK_DGRAM, 0, "udp4");
                rcvbuf_force(u, 1 << 30);
                say(format_args!("udp {} {}\n", inode(u), bind4(u)));
            }
            Mode::Share => {
                let u = sock(libc::AF_INET, libc::SOCK_DGRAM, 0, "udp4");
                say(format_args!("udp {} {}\n", inode(u), bind4(u)));
                // SAFETY: getpid has no preconditions.
                let me = unsafe { libc::getpid() };
                let g = fork_member(me, || {});
                say(format_args!("grandchild {g}\n"));
            }
            Mode::Crowd => {
                let me = unsafe { libc::getpid() };
                let shared = sock(libc::AF_INET, libc::SOCK_DGRAM, 0, "udp4 shared");
                rcvbuf_force(shared, 8 << 20);
                say(format_args!("shared {} {}\n", inode(shared), bind4(shared)));
                for _ in 0..super::CROWD_SHARERS {
                    let g = fork_member(me, || {});
                    say(format_args!("member {g}\n"));
                }
                // From here on only the sharers hold it.
                unsafe { libc::close(shared) };
                for _ in 0..super::CROWD_IDLE {
                    let g = fork_member(me, || {
                        let u = sock(libc::AF_INET, libc::SOCK_DGRAM, 0, "udp4 idle");
                        bind4(u);
                    });
                    say(format_args!("member {g}\n"));
                }
                let u = sock(libc::AF_INET, libc::SOCK_DGRAM, 0, "udp4 culprit");
                rcvbuf_force(u, 16 << 20);
                say(format_args!("udp {} {}\n", inode(u), bind4(u)));
                let culprit = fork_member(me, || unsafe {
                    libc::prctl(libc::PR_SET_NAME, c"gw-culprit".as_ptr());
                });
                unsafe { libc::close(u) };
                say(format_args!("culprit {culprit}\nmember {culprit}\n"));
            }
        }
        // SAFETY: plain syscalls.
        say(format_args!("pid {}\nready\n", unsafe { libc::getpid() }));
        unsafe { libc::close(REPORT_FD) };
        // Reap the grandchild when the test kills it, so no zombie outlives the test.
        loop {
            let mut st = 0;
            if unsafe { libc::waitpid(-1, &mut st, 0) } < 0
                && unsafe { *libc::__errno_location() } == libc::ECHILD
            {
                unsafe { libc::pause() };
            }
        }
    }
}

/// The crowd: forked children sharing one socket, and idle processes holding one each.
const CROWD_SHARERS: usize = 85;
const CROWD_IDLE: usize = 300;

/// One socket the holder opened: kind (the report's proto name, or "tcplisten"), inode, port.
#[derive(Clone, Debug)]
struct HeldSocket {
    kind: String,
    inode: u64,
    port: u16,
}

/// The re-executed helper and its holder process; killed and reaped on drop.
struct Holder {
    helper: Child,
    pid: u32,
    grandchild: Option<u32>,
    /// The crowd's members (crowd mode), in fork order; the last one is the culprit.
    members: Vec<u32>,
    culprit: Option<u32>,
    sockets: Vec<HeldSocket>,
    /// The TCP peer that sent the unread bytes (kept open until the report ran).
    _tcp_peer: Option<TcpStream>,
}

/// Bytes the TCP peer sends and the holder never reads.
const TCP_UNREAD: usize = 32 * 1024;

impl Holder {
    fn spawn(mode: &str) -> Holder {
        let mut fds = [0; 2];
        // SAFETY: fds is a valid out-array; O_CLOEXEC so concurrent spawns don't inherit it.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        let (rd, wr) = (fds[0], fds[1]);
        let mut cmd = Command::new(std::env::current_exe().expect("test binary path"));
        cmd.args(["--exact", "helper_entry", "--nocapture", "--test-threads=1"])
            .env(HELPER_ENV, mode)
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        // SAFETY: dup2/fcntl are async-signal-safe; the child gets the pipe as fd 3.
        unsafe {
            cmd.pre_exec(move || {
                let r = if wr == REPORT_FD {
                    libc::fcntl(wr, libc::F_SETFD, 0)
                } else {
                    libc::dup2(wr, REPORT_FD)
                };
                if r < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let helper = cmd.spawn().expect("spawn helper");
        // SAFETY: our copy of the write end; the helper holds its own.
        unsafe { libc::close(wr) };
        let mut h = Holder {
            helper,
            pid: 0,
            grandchild: None,
            members: Vec::new(),
            culprit: None,
            sockets: Vec::new(),
            _tcp_peer: None,
        };
        let mut lines = PipeLines::new(rd);
        loop {
            let line = lines
                .next(Duration::from_secs(20))
                .unwrap_or_else(|e| panic!("helper ({mode}) stopped talking: {e}"));
            let w: Vec<&str> = line.split_whitespace().collect();
            match w.as_slice() {
                ["ready"] => break,
                ["pid", p] => h.pid = p.parse().expect("pid"),
                ["grandchild", p] => h.grandchild = Some(p.parse().expect("grandchild pid")),
                ["member", p] => h.members.push(p.parse().expect("member pid")),
                ["culprit", p] => h.culprit = Some(p.parse().expect("culprit pid")),
                ["error", ..] => panic!("helper ({mode}) failed: {line}"),
                [kind, ino, port] => {
                    let s = HeldSocket {
                        kind: kind.to_string(),
                        inode: ino.parse().expect("inode"),
                        port: port.parse().expect("port"),
                    };
                    if s.kind == "tcplisten" {
                        let mut peer = TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
                        peer.write_all(&[0x5a; TCP_UNREAD]).expect("send tcp");
                        h._tcp_peer = Some(peer);
                    }
                    h.sockets.push(s);
                }
                _ => panic!("helper ({mode}) said {line:?}"),
            }
        }
        assert!(h.pid > 0, "helper never said its pid");
        h
    }

    fn socket(&self, kind: &str) -> &HeldSocket {
        self.sockets
            .iter()
            .find(|s| s.kind == kind)
            .unwrap_or_else(|| panic!("holder has no {kind} socket"))
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        // Grandchild first (the holder reaps it), then the holder (the helper reaps it and
        // exits), then the helper (we reap it): every process is reaped by its own parent.
        if let Some(g) = self.grandchild {
            kill_and_wait_gone(g);
        }
        for &m in &self.members {
            // SAFETY: plain syscall; the holder reaps them.
            unsafe { libc::kill(m as libc::pid_t, libc::SIGKILL) };
        }
        for &m in &self.members {
            kill_and_wait_gone(m);
        }
        if self.pid > 0 {
            kill_and_wait_gone(self.pid);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.helper.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.helper.kill();
        let _ = self.helper.wait();
    }
}

/// SIGKILLs `pid` and waits (up to 5 s) until its parent has reaped it.
fn kill_and_wait_gone(pid: u32) {
    // SAFETY: plain syscall.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && std::path::Path::new(&format!("/proc/{pid}")).exists() {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Line reader over the helper's pipe with a timeout, so a wedged helper fails the test.
struct PipeLines {
    fd: libc::c_int,
    pending: Vec<u8>,
}

impl PipeLines {
    fn new(fd: libc::c_int) -> PipeLines {
        PipeLines {
            fd,
            pending: Vec::new(),
        }
    }

    fn next(&mut self, timeout: Duration) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(i) = self.pending.iter().position(|&c| c == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=i).collect();
                return Ok(String::from_utf8_lossy(&line[..i]).into_owned());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err("timeout".into());
            }
            let mut p = libc::pollfd {
                fd: self.fd,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let r = unsafe { libc::poll(&mut p, 1, left.as_millis() as libc::c_int) };
            if r <= 0 {
                continue;
            }
            let mut buf = [0u8; 512];
            // SAFETY: buf valid for its length.
            let n = unsafe { libc::read(self.fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                return Err("helper closed the pipe".into());
            }
            self.pending.extend_from_slice(&buf[..n as usize]);
        }
    }
}

impl Drop for PipeLines {
    fn drop(&mut self) {
        // SAFETY: we own the read end.
        unsafe { libc::close(self.fd) };
    }
}

/// `ghostwatch report --json --top N`, parsed.
fn report_json(top: usize) -> Value {
    let n = top.to_string();
    let (st, out, err) = ghostwatch(&["report", "--json", "--top", &n]);
    assert!(st.success(), "report failed: {st}\nstderr: {err}");
    json::parse(&out).unwrap_or_else(|e| panic!("report --json is not JSON ({e}):\n{out}"))
}

fn ghost_kb(report: &Value) -> i64 {
    report.at("ghost.ghost_kb").i64()
}

/// A socket field as u64 (inodes and queues are never negative).
fn num(sock: &Value, key: &str) -> u64 {
    sock.at(key).i64() as u64
}

/// The report's entry for `inode`, with a readable failure listing what it did show.
fn report_socket(report: &Value, inode: u64) -> &Value {
    let socks = report.at("sockets").arr();
    socks
        .iter()
        .find(|s| num(s, "inode") == inode)
        .unwrap_or_else(|| {
            let shown: Vec<String> = socks
                .iter()
                .map(|s| {
                    let proto = s.at("proto").str();
                    format!("{proto}:{}:{}", num(s, "inode"), num(s, "rx_queue"))
                })
                .collect();
            panic!("inode {inode} not in the report's sockets: {shown:?}")
        })
}

/// (pid, comm) of every owner the report lists for a socket.
fn owners(sock: &Value) -> Vec<(u32, String)> {
    sock.at("owners")
        .arr()
        .iter()
        .map(|o| (o.at("pid").i64() as u32, o.at("comm").str().to_string()))
        .collect()
}

fn flood_udp(bind: &str, dest: (&str, u16), count: usize, size: usize) {
    let s = UdpSocket::bind(bind).expect("bind flooder");
    let payload = vec![0xa5u8; size];
    for _ in 0..count {
        // A full receive queue drops silently; a local ENOBUFS is retried once after a pause.
        if s.send_to(&payload, dest).is_err() {
            std::thread::sleep(Duration::from_millis(1));
            let _ = s.send_to(&payload, dest);
        }
    }
}

/// ICMPv6 echo requests to ::1: every raw ICMPv6 socket on the box gets a copy of each
/// request and of the kernel's reply, exactly how zebra's `raw6 :::58` socket filled up.
fn flood_icmp6(count: u16, size: usize) {
    // SAFETY: plain socket syscalls with correctly sized sockaddr_in6.
    unsafe {
        let fd = libc::socket(libc::AF_INET6, libc::SOCK_RAW, libc::IPPROTO_ICMPV6);
        assert!(fd >= 0, "raw ICMPv6 socket for the flood");
        let mut to: libc::sockaddr_in6 = core::mem::zeroed();
        to.sin6_family = libc::AF_INET6 as libc::sa_family_t;
        to.sin6_addr.s6_addr[15] = 1;
        let mut pkt = vec![0u8; size];
        pkt[0] = 128; // echo request; the kernel fills the checksum for ICMPv6 raw sockets
        pkt[4..6].copy_from_slice(&0x6777u16.to_be_bytes());
        for seq in 0..count {
            pkt[6..8].copy_from_slice(&seq.to_be_bytes());
            libc::sendto(
                fd,
                pkt.as_ptr().cast(),
                pkt.len(),
                0,
                (&to as *const libc::sockaddr_in6).cast(),
                core::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
            );
        }
        libc::close(fd);
    }
}

#[test]
fn report_names_every_backlogged_socket_and_its_owner() {
    if !require_root("raw ICMPv6 socket and every process's fds") {
        return;
    }
    let _g = serial();
    let h = Holder::spawn("sockets");
    let u4 = h.socket("udp").clone();
    let u6 = h.socket("udp6").clone();
    flood_udp("127.0.0.1:0", ("127.0.0.1", u4.port), 64, 1000);
    flood_udp("[::1]:0", ("::1", u6.port), 64, 1000);
    flood_icmp6(48, 1000);

    // The report lists sockets of every network namespace: on a shared box other namespaces'
    // queues compete for the top, so ask for the most it lists.
    let rep = report_json(100);
    for kind in ["udp", "udp6", "raw6", "tcp", "netlink"] {
        let held = h.socket(kind);
        let s = report_socket(&rep, held.inode);
        assert_eq!(s.at("proto").str(), kind, "{held:?}");
        let rx = num(s, "rx_queue");
        assert!(rx > 0, "{kind} inode {} has rx_queue 0", held.inode);
        if kind == "tcp" {
            assert_eq!(
                rx, TCP_UNREAD as u64,
                "tcp rx_queue is the unread byte count"
            );
        }
        let o = owners(s);
        assert!(
            o.contains(&(h.pid, HOLDER_COMM.to_string())),
            "{kind} inode {} owners {o:?}, want pid {} {HOLDER_COMM}",
            held.inode,
            h.pid
        );
    }
    // The seed's culprit line: raw6 on protocol 58.
    let raw = report_socket(&rep, h.socket("raw6").inode);
    let local = raw.at("local").str();
    assert!(local.ends_with(":58"), "raw6 local {local:?}");
}

#[test]
fn report_lists_every_process_sharing_a_socket() {
    if !require_root("reading another process's fds") {
        return;
    }
    let _g = serial();
    let h = Holder::spawn("share");
    let g = h.grandchild.expect("grandchild pid");
    let u = h.socket("udp").clone();
    flood_udp("127.0.0.1:0", ("127.0.0.1", u.port), 64, 1000);
    let rep = report_json(20);
    let o = owners(report_socket(&rep, u.inode));
    for pid in [h.pid, g] {
        assert!(
            o.contains(&(pid, HOLDER_COMM.to_string())),
            "owners {o:?} lack pid {pid}"
        );
    }
}

#[test]
fn a_crowd_of_processes_cannot_hide_the_owner_of_a_flooded_socket() {
    if !require_root("reading every process's fds, SO_RCVBUFFORCE") {
        return;
    }
    let _g = serial();
    let h = Holder::spawn("crowd");
    let culprit = h.culprit.expect("culprit pid");
    assert_eq!(h.members.len(), CROWD_SHARERS + CROWD_IDLE + 1);
    let shared = h.socket("shared").clone();
    let flooded = h.socket("udp").clone();
    flood_udp("127.0.0.1:0", ("127.0.0.1", shared.port), 3000, 1000);
    flood_udp("127.0.0.1:0", ("127.0.0.1", flooded.port), 8000, 1000);
    let sharers = &h.members[..CROWD_SHARERS];

    // The default --top (10) and a long list full of idle sockets held by lower PIDs.
    for top in [10, 100] {
        let rep = report_json(top);
        let s = report_socket(&rep, flooded.inode);
        assert!(num(s, "rx_queue") > 8 << 20, "flood did not queue: {s:?}");
        assert_eq!(
            owners(s),
            vec![(culprit, "gw-culprit".to_string())],
            "top {top}"
        );
        assert_eq!(num(s, "owners_more"), 0);
        let s = report_socket(&rep, shared.inode);
        assert!(num(s, "rx_queue") > 4 << 20, "flood did not queue: {s:?}");
        let o = owners(s);
        assert_eq!(o.len(), 16, "top {top}: listed owners of the shared socket");
        assert!(o.iter().all(|(p, _)| sharers.contains(p)), "{o:?}");
        assert_eq!(
            o.len() as u64 + num(s, "owners_more"),
            CROWD_SHARERS as u64,
            "top {top}: holders of the shared socket"
        );
        // Every PID was visited: the crowd alone is more than a bounded walk would reach.
        let walked = rep.at("owner_walk.pids_scanned").i64() as usize;
        assert!(walked > CROWD_SHARERS + CROWD_IDLE, "walked {walked} PIDs");
    }
    // The text report names the culprit and counts the crowd.
    let (st, text, err) = ghostwatch(&["report"]);
    assert!(st.success(), "{err}");
    assert!(text.contains(&format!("{culprit}/gw-culprit")), "{text}");
    assert!(
        text.contains(&format!("+{} more", CROWD_SHARERS - 4)),
        "{text}"
    );

    // Every process of the crowd is gone once the holder is dropped.
    let members = h.members.clone();
    drop(h);
    let left: Vec<u32> = members
        .into_iter()
        .filter(|m| std::path::Path::new(&format!("/proc/{m}")).exists())
        .collect();
    assert!(left.is_empty(), "crowd members left behind: {left:?}");
}

/// Raises net.ipv4.udp_mem (pages) so `extra_bytes` more UDP memory fits; restores it on drop.
struct UdpMemGuard {
    original: Option<String>,
}

const UDP_MEM: &str = "/proc/sys/net/ipv4/udp_mem";

impl UdpMemGuard {
    fn ensure(extra_bytes: u64) -> UdpMemGuard {
        let orig = std::fs::read_to_string(UDP_MEM).expect("read udp_mem");
        let v: Vec<u64> = orig
            .split_whitespace()
            .map(|x| x.parse().expect("udp_mem number"))
            .collect();
        assert_eq!(v.len(), 3, "udp_mem {orig:?}");
        let page = 4096u64;
        let in_use = std::fs::read_to_string("/proc/net/sockstat")
            .ok()
            .and_then(|t| {
                let l = t.lines().find(|l| l.starts_with("UDP:"))?.to_string();
                let mut f = l.split_whitespace();
                f.position(|w| w == "mem")?;
                f.next()?.parse::<u64>().ok()
            })
            .unwrap_or(0);
        // Margin: other processes' UDP traffic while we flood, and per-skb overhead.
        let need = in_use + extra_bytes * 3 / 2 / page;
        if v[2] >= need && v[1] >= need {
            return UdpMemGuard { original: None };
        }
        let new = format!("{} {} {}\n", v[0], v[1].max(need), v[2].max(need * 2));
        std::fs::write(UDP_MEM, new).expect("raise udp_mem");
        UdpMemGuard {
            original: Some(orig),
        }
    }
}

impl Drop for UdpMemGuard {
    fn drop(&mut self) {
        if let Some(o) = &self.original {
            let _ = std::fs::write(UDP_MEM, o);
        }
    }
}

#[test]
fn ghost_rises_by_the_bytes_an_unread_udp_queue_pins() {
    if !require_root("SO_RCVBUFFORCE and udp_mem") {
        return;
    }
    let _g = serial();
    const DATAGRAMS: usize = 17_000;
    const SIZE: usize = 60_000;
    let _mem = UdpMemGuard::ensure((DATAGRAMS * SIZE) as u64 * 2);
    let h = Holder::spawn("ghost");
    let u = h.socket("udp").clone();
    let before = ghost_kb(&report_json(5));

    flood_udp("127.0.0.1:0", ("127.0.0.1", u.port), DATAGRAMS, SIZE);
    let queued = udp_row_by_inode(u.inode)
        .map(|r| r.rx_queue)
        .expect("holder socket in /proc/net/udp");
    let rep = report_json(5);
    let after = ghost_kb(&rep);
    let rise = (after - before) * 1024;
    println!(
        "ghost before {before} kB, after {after} kB, rise {} MB, rx_queue {} MB",
        rise >> 20,
        queued >> 20
    );
    assert!(queued > 500 << 20, "flood did not queue: rx_queue {queued}");
    assert!(
        rise as f64 >= 0.7 * queued as f64,
        "Ghost rose {rise} bytes for {queued} queued bytes (want >= 70%)"
    );
    // The biggest queue on the box is ours, owned by the holder.
    let top = rep.at("sockets.0");
    assert_eq!(num(top, "inode"), u.inode);
    assert!(owners(top).contains(&(h.pid, HOLDER_COMM.to_string())));

    // Killing the owner frees the queue: the socket leaves the table and Ghost falls back.
    drop(h);
    let deadline = Instant::now() + Duration::from_secs(10);
    while udp_row_by_inode(u.inode).map(|r| r.rx_queue).is_some() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        udp_row_by_inode(u.inode).map(|r| r.rx_queue).is_none(),
        "socket outlived its owner"
    );
    // UDP sockets are freed after an RCU grace period (SOCK_RCU_FREE): the queue's pages come
    // back a little after the socket leaves the table.
    let mut freed = ghost_kb(&report_json(5));
    let t0 = Instant::now();
    while (after - freed) * 1024 < rise / 2 && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
        freed = ghost_kb(&report_json(5));
    }
    println!(
        "ghost after kill {freed} kB ({} ms after the socket left the table)",
        t0.elapsed().as_millis()
    );
    assert!(
        (after - freed) * 1024 >= rise / 2,
        "Ghost did not fall back after the kill: {after} -> {freed} kB"
    );
}

#[test]
fn unprivileged_report_exits_zero_and_says_what_it_skipped() {
    if !require_root("setpriv to nobody") {
        return;
    }
    let _g = serial();
    // A checkout under root's 0700 home is out of nobody's reach: then nobody runs a copy.
    let bin = support::reachable_by_others(std::path::Path::new(env!("CARGO_BIN_EXE_ghostwatch")));
    for json_flag in [false, true] {
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&bin.path)
            .arg("report");
        if json_flag {
            cmd.arg("--json");
        }
        let out = cmd.output().expect("run setpriv");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "report as nobody (json={json_flag}) failed: {}\n{stdout}\n{stderr}",
            out.status
        );
        let all = format!("{stdout}{stderr}").to_lowercase();
        assert!(
            all.contains("skip"),
            "report as nobody (json={json_flag}) does not say what it skipped:\n{stdout}\n{stderr}"
        );
        if json_flag {
            let v = json::parse(&stdout).expect("report --json as nobody is JSON");
            assert!(v.at("ghost").has("ghost_kb"));
            check_contract(&v);
            assert!(v.at("owner_walk.pids_denied").i64() > 0);
            assert_eq!(v.at("ghost.vmallocinfo_kb"), &Value::Null);
        } else {
            let t = stdout;
            assert!(t.starts_with("VERDICT: "), "{t}");
            assert!(t.contains("\nSkipped\n"), "{t}");
            assert!(t.contains("vmallocinfo: Permission denied"), "{t}");
            assert!(t.contains("run as root to see owners"), "{t}");
        }
    }
}

#[test]
fn live_report_as_root() {
    if !require_root("live report as root") {
        return;
    }
    let _g = serial();
    let (st, t, err) = ghostwatch(&["report"]);
    assert!(st.success(), "{st:?} {err}");
    assert!(t.starts_with("VERDICT: "), "{t}");
    let (st, out, _) = ghostwatch(&["report", "--json"]);
    assert!(st.success());
    let v = json::parse(&out).unwrap();
    check_contract(&v);
    assert!(v.at("processes.count").i64() > 1);
    assert!(
        v.at("ghost.vmallocinfo_kb") != &Value::Null,
        "root reads vmallocinfo"
    );
}

#[test]
fn live_unread_udp_socket_is_found_with_its_owner() {
    let _g = serial();
    // A socket of ours with unread datagrams on loopback: report must list it and name us.
    let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = rx.local_addr().unwrap();
    for _ in 0..64 {
        tx.send_to(&[0x5a; 1000], addr).unwrap();
    }
    let mut sb: libc::stat = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::fstat(rx.as_raw_fd(), &mut sb) }, 0);
    let (st, out, _) = ghostwatch(&["report", "--json", "--top", "100"]);
    assert!(st.success());
    let v = json::parse(&out).unwrap();
    let s = v
        .at("sockets")
        .arr()
        .iter()
        .find(|s| s.at("inode").i64() == sb.st_ino as i64)
        .expect("our socket is among the top 100");
    assert_eq!(s.at("proto").str(), "udp");
    assert_eq!(s.at("local").str(), addr.to_string());
    assert!(s.at("rx_queue").i64() >= 64_000, "{s:?}");
    let me = std::process::id() as i64;
    assert!(
        s.at("owners").arr().iter().any(|o| o.at("pid").i64() == me),
        "{s:?}"
    );
}
