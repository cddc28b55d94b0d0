//! gw-testd: a throwaway daemon for ghostwatch's live tests. It binds sockets and never reads
//! them, like zebra's raw6 socket in the field report. Not shipped; built by `cargo test`.
//!
//!   gw-testd [--udp PORT] [--udp6 PORT] [--raw6] [--rcvbuf BYTES] [--pidfile FILE] [--fork]
//!            [--comm NAME] [--setuid UID] [--reader PORT]
//!
//! --reader: the opposite of a leak, a daemon that reads promptly (like a DNS or NTP server):
//! a UDP socket on [::]:PORT (default rcvbuf) that the main loop reads, instead of sleeping.
//!
//! --comm: the name to take instead of "gw-testd" (impostors, hostile names). --setuid: after
//! binding (as root, so SO_RCVBUFFORCE works) and writing the pidfile, drop to UID (gid too).
//!
//! It sets its comm to "gw-testd", writes its PID (and the socket inodes, one `proto inode`
//! per line, to FILE.socks) and sleeps until killed. --fork: a child keeps the same sockets.

use std::io::Write;

fn fail(msg: &str) -> ! {
    eprintln!("gw-testd: {msg}");
    std::process::exit(1)
}

fn inode(fd: i32) -> u64 {
    // SAFETY: fstat on an fd we own into a zeroed struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        fail("fstat");
    }
    st.st_ino as u64
}

fn set_rcvbuf(fd: i32, bytes: i32) {
    // SO_RCVBUFFORCE (root) beats rmem_max; fall back to SO_RCVBUF otherwise.
    for opt in [libc::SO_RCVBUFFORCE, libc::SO_RCVBUF] {
        // SAFETY: valid fd and option value pointer.
        let r = unsafe {
            libc::setsockopt(fd, libc::SOL_SOCKET, opt, (&bytes as *const i32).cast(), 4)
        };
        if r == 0 {
            return;
        }
    }
}

fn udp(port: u16, v6: bool, rcvbuf: i32) -> i32 {
    // SAFETY: plain socket calls on stack-allocated sockaddrs.
    unsafe {
        let fam = if v6 { libc::AF_INET6 } else { libc::AF_INET };
        let fd = libc::socket(fam, libc::SOCK_DGRAM, 0);
        if fd < 0 {
            fail("socket");
        }
        set_rcvbuf(fd, rcvbuf);
        let r = if v6 {
            let mut a: libc::sockaddr_in6 = std::mem::zeroed();
            a.sin6_family = libc::AF_INET6 as u16;
            a.sin6_port = port.to_be();
            a.sin6_addr.s6_addr[15] = 1;
            libc::bind(
                fd,
                (&a as *const libc::sockaddr_in6).cast(),
                std::mem::size_of_val(&a) as u32,
            )
        } else {
            let mut a: libc::sockaddr_in = std::mem::zeroed();
            a.sin_family = libc::AF_INET as u16;
            a.sin_port = port.to_be();
            a.sin_addr.s_addr = u32::from_ne_bytes([127, 0, 0, 1]);
            libc::bind(
                fd,
                (&a as *const libc::sockaddr_in).cast(),
                std::mem::size_of_val(&a) as u32,
            )
        };
        if r != 0 {
            fail(&format!(
                "bind port {port}: {}",
                std::io::Error::last_os_error()
            ));
        }
        fd
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    let (mut udp4, mut udp6, mut raw6, mut rcvbuf, mut pidfile, mut fork) =
        (None, None, false, 64 << 20, None, false);
    let (mut comm, mut setuid) = (String::from("gw-testd"), None::<u32>);
    let mut reader = None::<u16>;
    while let Some(a) = it.next() {
        let mut val = || {
            it.next()
                .cloned()
                .unwrap_or_else(|| fail(&format!("{a} needs a value")))
        };
        match a.as_str() {
            "--udp" => udp4 = Some(val().parse::<u16>().unwrap_or_else(|_| fail("bad port"))),
            "--udp6" => udp6 = Some(val().parse::<u16>().unwrap_or_else(|_| fail("bad port"))),
            "--raw6" => raw6 = true,
            "--rcvbuf" => rcvbuf = val().parse::<i32>().unwrap_or_else(|_| fail("bad rcvbuf")),
            "--pidfile" => pidfile = Some(val()),
            "--fork" => fork = true,
            "--comm" => comm = val(),
            "--setuid" => setuid = Some(val().parse().unwrap_or_else(|_| fail("bad uid"))),
            "--reader" => reader = Some(val().parse::<u16>().unwrap_or_else(|_| fail("bad port"))),
            _ => fail(&format!("unknown argument {a}")),
        }
    }
    let name = std::ffi::CString::new(comm).unwrap_or_else(|_| fail("bad comm"));
    // SAFETY: prctl with a NUL-terminated name.
    unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr() as libc::c_ulong, 0, 0, 0) };
    let mut socks = String::new();
    if let Some(p) = udp4 {
        socks += &format!("udp {}\n", inode(udp(p, false, rcvbuf)));
    }
    if let Some(p) = udp6 {
        socks += &format!("udp6 {}\n", inode(udp(p, true, rcvbuf)));
    }
    if raw6 {
        // SAFETY: plain socket call.
        let fd = unsafe { libc::socket(libc::AF_INET6, libc::SOCK_RAW, 58) };
        if fd < 0 {
            fail("raw6 socket (needs root)");
        }
        set_rcvbuf(fd, rcvbuf);
        socks += &format!("raw6 {}\n", inode(fd));
    }
    let read_fd = reader.map(|p| {
        let fd = reader_socket(p);
        socks += &format!("udp6 {}\n", inode(fd));
        fd
    });
    if fork {
        // SAFETY: single-threaded here; the child only sleeps.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            loop {
                // SAFETY: pause just waits for a signal.
                unsafe { libc::pause() };
            }
        }
        socks += &format!("child {pid}\n");
    }
    if let Some(p) = pidfile {
        let tmp = format!("{p}.tmp");
        std::fs::write(format!("{p}.socks"), &socks)
            .unwrap_or_else(|e| fail(&format!("{p}.socks: {e}")));
        let mut f = std::fs::File::create(&tmp).unwrap_or_else(|e| fail(&format!("{tmp}: {e}")));
        let _ = writeln!(f, "{}", std::process::id());
        drop(f);
        std::fs::rename(&tmp, &p).unwrap_or_else(|e| fail(&format!("{p}: {e}")));
    }
    if let Some(uid) = setuid {
        // SAFETY: plain credential syscalls; the group first, while we still may.
        let ok =
            unsafe { libc::setresgid(uid, uid, uid) == 0 && libc::setresuid(uid, uid, uid) == 0 };
        if !ok {
            fail("setuid");
        }
    }
    if let Some(fd) = read_fd {
        let mut buf = [0u8; 65536];
        loop {
            // SAFETY: a blocking read into our own buffer; errors (EINTR) just retry.
            unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
        }
    }
    loop {
        // SAFETY: pause just waits for a signal (SIGTERM's default action ends us).
        unsafe { libc::pause() };
    }
}

/// A UDP socket on [::]:`port` with the default receive buffer (--reader).
fn reader_socket(port: u16) -> i32 {
    // SAFETY: plain socket calls on a stack-allocated sockaddr.
    unsafe {
        let fd = libc::socket(libc::AF_INET6, libc::SOCK_DGRAM, 0);
        if fd < 0 {
            fail("socket");
        }
        let mut a: libc::sockaddr_in6 = std::mem::zeroed();
        a.sin6_family = libc::AF_INET6 as u16;
        a.sin6_port = port.to_be();
        let r = libc::bind(
            fd,
            (&a as *const libc::sockaddr_in6).cast(),
            std::mem::size_of_val(&a) as u32,
        );
        if r != 0 {
            fail(&format!(
                "bind [::]:{port}: {}",
                std::io::Error::last_os_error()
            ));
        }
        fd
    }
}
