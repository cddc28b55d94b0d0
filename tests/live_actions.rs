//! Actions against the real kernel: clamp + drain a flooded UDP socket owned by another
//! process, exec with timeouts and process groups, sysctl on a fake proc root, kill, and the
//! reboot breadcrumb (through the seam: the real reboot(2) is never called).

mod support;

use ghostwatch::act::children;
use ghostwatch::act::executors::{self, Target};
use ghostwatch::config::Str;
use ghostwatch::observe::proc::ProcRoot;
use ghostwatch::observe::proc::pid::Comm;
use ghostwatch::output::audit::ResultKind;
use std::time::Duration;
use support::*;

const HELPER_ENV: &str = "GW_HELPER";
const HOLDER_MODE: &str = "udp-holder";
/// What the holder asks for with SO_RCVBUFFORCE (the kernel doubles it).
const HOLDER_RCVBUF: i32 = 64 << 20;

/// Helper mode, not a test: when re-executed with GW_HELPER=udp-holder this process binds an
/// unread UDP socket on 127.0.0.1 with a 64 MiB receive buffer, prints its port, and waits for
/// stdin to close. Run normally it does nothing.
#[test]
fn helper_udp_holder() {
    if std::env::var(HELPER_ENV).as_deref() != Ok(HOLDER_MODE) {
        return;
    }
    // SAFETY: plain socket calls on a fresh fd; sockaddr_in is plain data.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0);
        assert!(fd >= 0, "socket");
        let v: libc::c_int = HOLDER_RCVBUF;
        let r = libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&v as *const libc::c_int).cast(),
            4,
        );
        assert_eq!(r, 0, "SO_RCVBUFFORCE (needs CAP_NET_ADMIN)");
        let mut sa: libc::sockaddr_in = core::mem::zeroed();
        sa.sin_family = libc::AF_INET as libc::sa_family_t;
        sa.sin_addr.s_addr = u32::from_ne_bytes([127, 0, 0, 1]);
        let len = core::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        assert_eq!(
            libc::bind(fd, (&sa as *const libc::sockaddr_in).cast(), len),
            0
        );
        let mut got: libc::sockaddr_in = core::mem::zeroed();
        let mut glen = len;
        libc::getsockname(fd, (&mut got as *mut libc::sockaddr_in).cast(), &mut glen);
        println!("HELPER_READY port={} fd={fd}", u16::from_be(got.sin_port));
    }
    // Hold the socket, never read it, until the test closes our stdin (or dies).
    let mut sink = Vec::new();
    let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
    std::process::exit(0);
}

/// Sends `n` datagrams of `size` bytes to 127.0.0.1:`port`; a full queue just drops them.
fn flood(port: u16, n: usize, size: usize) {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("flood socket");
    let payload = vec![0x5au8; size];
    for _ in 0..n {
        let _ = s.send_to(&payload, ("127.0.0.1", port));
    }
}

fn rx_queue(port: u16) -> u64 {
    udp_row(port)
        .expect("holder socket in /proc/net/udp")
        .rx_queue
}

fn comm_of(pid: u32) -> Comm {
    let c = std::fs::read(format!("/proc/{pid}/comm")).unwrap_or_default();
    Comm::from_bytes(&c)
}

#[test]
fn clamp_and_drain_a_flooded_socket_of_another_process() {
    if !require_root("clamp/drain need CAP_SYS_PTRACE and SO_RCVBUFFORCE") {
        return;
    }
    let (mut holder, ready) = spawn_self_helper("helper_udp_holder", HOLDER_MODE, "HELPER_READY");
    let port: u16 = field(&ready, "port")
        .and_then(|p| p.parse().ok())
        .expect("port");
    let pid = holder.pid();
    let row = udp_row(port).expect("holder row");
    let fd = find_socket_fd(pid, row.inode).expect("holder fd in /proc/PID/fd");
    let target = Target {
        pid,
        fd,
        inode: row.inode,
        comm: comm_of(pid),
    };

    flood(port, 2000, 60_000);
    let flooded = rx_queue(port);
    println!("after flood: rx_queue={flooded}");
    assert!(flooded > 32 << 20, "flood queued only {flooded} bytes");

    // A stale inode or fd must be refused before anything is changed.
    let stale = executors::clamp(
        &Target {
            inode: row.inode + 1,
            ..target
        },
        65536,
    );
    assert_eq!(stale.result, ResultKind::Failed);
    assert_eq!(stale.reason.as_str(), "fd no longer that socket");
    let wrong_fd = executors::clamp(&Target { fd: 999, ..target }, 65536);
    assert_eq!(wrong_fd.result, ResultKind::Failed);
    assert!(wrong_fd.reason.contains("not open"), "{}", wrong_fd.reason);

    let c = executors::clamp(&target, 65536);
    println!("clamp: {c:?}");
    assert_eq!(c.result, ResultKind::Ok, "{}", c.reason);
    assert_eq!(
        c.detail.as_str(),
        format!("old_rcvbuf={} new_rcvbuf=131072", HOLDER_RCVBUF * 2)
    );

    let d = executors::drain(&target, 1_000_000, 10_000);
    println!("drain: {d:?}");
    assert_eq!(d.result, ResultKind::Ok, "{}", d.reason);
    let packets: u64 = field(&d.detail, "packets").unwrap().parse().unwrap();
    let bytes: u64 = field(&d.detail, "bytes").unwrap().parse().unwrap();
    assert!(packets > 500, "{}", d.detail);
    assert_eq!(bytes, packets * 60_000);
    let drained = rx_queue(port);
    println!("after drain: rx_queue={drained} ({} ms)", d.duration_ms);
    assert!(drained < 4096, "rx_queue still {drained}");

    // The owner was not harmed: same PID, still running, same socket.
    assert!(holder.is_running());
    assert_eq!(udp_row(port).map(|r| r.inode), Some(row.inode));

    // The cap holds for the owner's socket: a new flood queues about the clamped size only
    // (131072 accounted, plus the one datagram that crossed the limit).
    flood(port, 2000, 60_000);
    let reflooded = rx_queue(port);
    println!("after second flood: rx_queue={reflooded}");
    assert!(reflooded > 0 && reflooded <= 2 * 131_072, "{reflooded}");
    assert!(holder.is_running());

    // A bounded drain stops at its packet limit and says so.
    let d = executors::drain(&target, 1, 1000);
    assert_eq!(d.result, ResultKind::Ok);
    assert!(d.detail.starts_with("packets=1 "), "{}", d.detail);
    assert_eq!(d.reason.as_str(), "stopped after 1 packets");

    // SIGTERM (sysupgrade, reboot) ends a drain at once: the watchdog's magic close waits for
    // the poll, and procd's halt sends SIGKILL 1 s after SIGTERM. (The stop flag stays set in
    // this test binary; it only makes an open(2) that EINTR interrupts give up, and nothing
    // here is interrupted.)
    assert!(rx_queue(port) > 0, "the second flood queued nothing");
    ghostwatch::sys::request_stop();
    let d = executors::drain(&target, 1_000_000, 10_000);
    assert_eq!(d.result, ResultKind::Ok);
    assert_eq!(d.reason.as_str(), "stopped: the agent is stopping");
    assert!(d.detail.starts_with("packets=0 "), "{}", d.detail);
}

#[test]
fn drain_refuses_stream_sockets() {
    if !require_root("drain needs CAP_SYS_PTRACE") {
        return;
    }
    // Our own TCP listener: pidfd_getfd on ourselves works and shows the type check.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    use std::os::fd::AsRawFd;
    let fd = l.as_raw_fd() as u32;
    let link = std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap();
    let inode: u64 = link
        .to_str()
        .and_then(|s| s.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok())
        .unwrap();
    let t = Target {
        pid: std::process::id(),
        fd,
        inode,
        comm: comm_of(std::process::id()),
    };
    let d = executors::drain(&t, 10, 100);
    assert_eq!(d.result, ResultKind::Failed);
    assert_eq!(d.reason.as_str(), "refusing to drain a stream socket");
}

fn argv(a: &[&str]) -> Vec<Str> {
    a.iter().map(|s| Str::try_from(*s).unwrap()).collect()
}

fn never() -> bool {
    false
}

#[test]
fn exec_reports_exit_status_and_failures() {
    let o = children::run_blocking(&argv(&["true"]), None, 5000, &never);
    assert_eq!(o.result, ResultKind::Ok, "{}", o.reason);

    let o = children::run_blocking(&argv(&["sh", "-c", "exit 3"]), None, 5000, &never);
    assert_eq!(o.result, ResultKind::Failed);
    assert_eq!(o.reason.as_str(), "exit status 3");

    let o = children::run_blocking(&argv(&["sh", "-c", "kill -9 $$"]), None, 5000, &never);
    assert_eq!(o.reason.as_str(), "killed by signal 9");

    let o = children::run_blocking(&argv(&["/nonexistent/restart-zebra"]), None, 5000, &never);
    assert_eq!(o.result, ResultKind::Failed);
    assert_eq!(o.reason.as_str(), "exec failed: No such file or directory");

    let o = children::run_blocking(&[], None, 5000, &never);
    assert_eq!(o.reason.as_str(), "empty argv");
}

#[test]
fn exec_gets_a_clean_env_and_substituted_args() {
    let t = Target {
        pid: 4242,
        fd: 7,
        inode: 99,
        comm: Comm::from_bytes(b"zeb ra"),
    };
    // Config strings hold at most 128 bytes, so the script is terse.
    // {comm} is a whole item (issue 8): the script gets it as one argument, $2.
    let script = r#"[ -z "$HOME" ]&&[ $PATH = /usr/sbin:/usr/bin:/sbin:/bin ]&&[ "$1/$2" = "4242 99/zeb ra" ]&&[ $PWD = / ]&&! read x"#;
    let o = children::run_blocking(
        &argv(&["sh", "-c", script, "sh", "{pid} {inode}", "{comm}"]),
        Some(&t),
        5000,
        &never,
    );
    assert_eq!(o.result, ResultKind::Ok, "{}", o.reason);
}

#[test]
fn exec_timeout_kills_the_whole_group() {
    // A background grandchild in the same group must die too.
    let marker = "987651";
    let o = children::run_blocking(
        &argv(&["sh", "-c", &format!("sleep {marker} & exec sleep {marker}")]),
        None,
        300,
        &never,
    );
    assert_eq!(o.result, ResultKind::Failed);
    assert_eq!(o.reason.as_str(), "timeout after 300 ms");
    assert!(
        o.duration_ms >= 300 && o.duration_ms < 2000,
        "{}",
        o.duration_ms
    );
    let left = wait_for(Duration::from_secs(2), || {
        pids_with_cmdline(&format!("sleep {marker}"))
            .is_empty()
            .then_some(())
    });
    assert!(left.is_some(), "leftover: {:?}", pids_with_cmdline(marker));

    // A command that ignores SIGTERM is SIGKILLed after the 1 s grace.
    let marker = "987652";
    let o = children::run_blocking(
        &argv(&["sh", "-c", &format!("trap '' TERM; sleep {marker} & wait")]),
        None,
        200,
        &never,
    );
    assert_eq!(o.reason.as_str(), "timeout after 200 ms");
    assert!(
        o.duration_ms >= 1200 && o.duration_ms < 3000,
        "{}",
        o.duration_ms
    );
    let left = wait_for(Duration::from_secs(2), || {
        pids_with_cmdline(&format!("sleep {marker}"))
            .is_empty()
            .then_some(())
    });
    assert!(left.is_some(), "leftover: {:?}", pids_with_cmdline(marker));
}

#[test]
fn exec_stops_when_the_agent_stops() {
    let t0 = std::time::Instant::now();
    let stop = move || t0.elapsed() > Duration::from_millis(100);
    let o = children::run_blocking(&argv(&["sleep", "987653"]), None, 60_000, &stop);
    assert_eq!(o.reason.as_str(), "stopped: agent shutting down");
    assert!(o.duration_ms < 2000);
    assert!(pids_with_cmdline("sleep 987653").is_empty());
}

#[test]
fn sysctl_on_a_fake_proc_root() {
    let dir = TempDir::new("sysctl");
    let core = dir.path().join("sys/net/core");
    std::fs::create_dir_all(&core).unwrap();
    std::fs::write(core.join("rmem_max"), "212992\n").unwrap();
    std::fs::write(core.join("rmem_tab"), "4096\t131072\t6291456\n").unwrap();
    let root = ProcRoot::new(dir.path().to_str().unwrap().as_bytes()).unwrap();

    let o = executors::sysctl(&root, "net.core.rmem_max", "4096");
    assert_eq!(o.result, ResultKind::Ok, "{}", o.reason);
    assert_eq!(o.detail.as_str(), "old=212992 new=4096");
    assert_eq!(
        std::fs::read_to_string(core.join("rmem_max")).unwrap(),
        "4096"
    );

    let o = executors::sysctl(&root, "net.core.rmem_tab", "4096 8192 16384");
    assert_eq!(
        o.detail.as_str(),
        r#"old="4096\x09131072\x096291456" new="4096 8192 16384""#
    );

    let o = executors::sysctl(&root, "net.core.nope", "1");
    assert_eq!(o.result, ResultKind::Failed);
    assert!(
        o.reason.ends_with("No such file or directory"),
        "{}",
        o.reason
    );
    assert!(o.reason.contains("/sys/net/core/nope"), "{}", o.reason);

    let o = executors::sysctl(&root, "net.core..rmem_max", "1");
    assert_eq!(o.result, ResultKind::Failed);
    let o = executors::sysctl(&root, "....etc.passwd", "1");
    assert_eq!(o.result, ResultKind::Failed);
}

#[test]
fn kill_refuses_pid1_and_self_and_signals_a_child() {
    let me = std::process::id();
    let init = Target {
        pid: 1,
        fd: 0,
        inode: 0,
        comm: Comm::from_bytes(b""),
    };
    assert_eq!(
        executors::kill(&ProcRoot::live(), &init, 0).reason.as_str(),
        "refusing to signal PID 1"
    );
    let o = executors::kill(&ProcRoot::live(), &Target { pid: me, ..init }, 0);
    assert_eq!(o.reason.as_str(), "refusing to signal ghostwatch itself");

    let mut child = ChildGuard(
        std::process::Command::new("sleep")
            .arg("987654")
            .spawn()
            .unwrap(),
    );
    let pid = child.pid();
    let t = Target {
        pid,
        comm: comm_of(pid),
        ..init
    };
    // A comm that no longer matches (PID reused) is refused, and nothing is signalled.
    let o = executors::kill(
        &ProcRoot::live(),
        &Target {
            comm: Comm::from_bytes(b"zebra"),
            ..t
        },
        libc::SIGTERM,
    );
    assert_eq!(o.result, ResultKind::Failed);
    assert_eq!(o.reason.as_str(), format!("pid {pid} is no longer zebra"));
    assert!(child.is_running());

    let o = executors::kill(&ProcRoot::live(), &t, libc::SIGTERM);
    assert_eq!(o.result, ResultKind::Ok, "{}", o.reason);
    use std::os::unix::process::ExitStatusExt;
    let st = child.0.wait().unwrap();
    assert_eq!(st.signal(), Some(libc::SIGTERM));

    // Reaped: the PID is gone now.
    let o = executors::kill(&ProcRoot::live(), &t, libc::SIGTERM);
    assert_eq!(o.result, ResultKind::Failed);
    assert_eq!(o.reason.as_str(), "No such process");
}

static FAKE_REBOOTS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

fn fake_reboot() -> libc::c_int {
    FAKE_REBOOTS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    0
}

fn failing_reboot() -> libc::c_int {
    // SAFETY: sets this thread's errno.
    unsafe { *libc::__errno_location() = libc::EPERM };
    -1
}

#[test]
fn reboot_writes_the_breadcrumb_through_the_seam() {
    let dir = TempDir::new("reboot");
    let crumb = dir.path().join("new/dir/ghostwatch.reboot");
    let text = "event=action action=reboot rule=last-resort ghost_kb=2591452 seq=7";
    let o = executors::reboot_with(crumb.to_str().unwrap(), text, fake_reboot);
    assert_eq!(o.result, ResultKind::Ok, "{}", o.reason);
    assert_eq!(FAKE_REBOOTS.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(
        std::fs::read_to_string(&crumb).unwrap(),
        format!("{text}\n")
    );

    // reboot(2) refused: failed with the errno; a breadcrumb that cannot be written is
    // reported but does not stop the attempt.
    let o = executors::reboot_with("/proc/no/such/dir/crumb", text, failing_reboot);
    assert_eq!(o.result, ResultKind::Failed);
    assert!(
        o.reason
            .starts_with("reboot: Operation not permitted; breadcrumb"),
        "{}",
        o.reason
    );
}
