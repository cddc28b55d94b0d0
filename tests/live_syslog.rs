//! The sink against real syslog daemons: a private rsyslogd (unix socket, UDP, TCP) that is
//! killed and restarted mid-way, and busybox syslogd in a private mount namespace.
//!
//! The sink is process-global, so the tests here take one lock and run one at a time.

mod support;

use ghostwatch::config::{Str, SyslogTarget};
use ghostwatch::output::audit::AuditLine;
use ghostwatch::output::sink::{self, Severity};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use support::*;

static SINK_LOCK: Mutex<()> = Mutex::new(());

fn target_str(s: &str) -> Str {
    Str::try_from(s).expect("fits")
}

/// An audit line with a unique token and a hostile comm, as the agent would send it.
fn audit(token: &str) -> String {
    let mut l = AuditLine::new("action");
    l.kv("rule", token.as_bytes())
        .kv("comm", b"ze bra\x1b[31m")
        .kvd("pid", 4242)
        .kv("result", b"ok");
    l.as_str().to_string()
}

/// Runs `f` with fd 2 redirected to a file; returns what was written to it.
fn capture_stderr(dir: &TempDir, f: impl FnOnce()) -> String {
    use std::os::fd::AsRawFd;
    let path = dir.path().join("stderr.txt");
    let file = std::fs::File::create(&path).unwrap();
    // SAFETY: dup/dup2 on valid descriptors; fd 2 is restored before returning.
    let saved = unsafe { libc::dup(2) };
    assert!(saved >= 0);
    unsafe { libc::dup2(file.as_raw_fd(), 2) };
    f();
    unsafe {
        libc::dup2(saved, 2);
        libc::close(saved);
    }
    std::fs::read_to_string(&path).unwrap_or_default()
}

/// Waits past the sink's once-a-second reconnect limit.
fn past_reconnect_limit() {
    std::thread::sleep(Duration::from_millis(sink::RECONNECT_INTERVAL_MS + 150));
}

#[test]
fn rsyslogd_unix_udp_tcp_with_crash_and_restart() {
    if !require_program("rsyslogd", INSTALL_RSYSLOG) {
        return;
    }
    let _g = SINK_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let mut rs = Rsyslogd::start();
    let me = std::process::id();
    let tag = format!("ghostwatch[{me}]");

    // unix socket
    let unix = SyslogTarget::Unix(target_str(rs.sock.to_str().unwrap()));
    sink::init(&unix, "daemon").expect("init unix");
    sink::emit(Severity::Notice, &audit("via-unix"));
    let got = rs
        .wait_line("rule=via-unix")
        .expect("unix line in rsyslog output");
    assert!(got.starts_with(&format!("{tag} notice ")), "{got}");
    assert!(
        got.contains(r#"comm="ze bra\x1b[31m""#),
        "escaped comm intact: {got}"
    );

    // log::warn! goes the same way
    log::warn!("via-log-crate {}", 7);
    let got = rs.wait_line("via-log-crate 7").expect("log crate line");
    assert!(got.starts_with(&format!("{tag} warning ")), "{got}");

    // udp
    let udp = SyslogTarget::Udp(target_str(&format!("127.0.0.1:{}", rs.udp_port)));
    sink::init(&udp, "local3").expect("init udp");
    sink::emit(Severity::Err, &audit("via-udp"));
    let got = rs.wait_line("rule=via-udp").expect("udp line");
    assert!(got.starts_with(&format!("{tag} err ")), "{got}");

    // tcp: several lines back to back must stay separate (framing)
    let tcp = SyslogTarget::Tcp(target_str(&format!("127.0.0.1:{}", rs.tcp_port)));
    sink::init(&tcp, "daemon").expect("init tcp");
    for i in 0..3 {
        sink::emit(Severity::Info, &audit(&format!("via-tcp-{i}")));
    }
    for i in 0..3 {
        let got = rs
            .wait_line(&format!("rule=via-tcp-{i} "))
            .expect("tcp line");
        // rsyslog's %msg% keeps the space after "tag:", hence the trim.
        let rest = got
            .strip_prefix(&format!("{tag} info "))
            .unwrap_or_default();
        assert!(rest.trim_start().starts_with("event=action rule="), "{got}");
    }

    // Kill rsyslogd: the next line goes to stderr, prefixed and counted, not lost.
    let before = sink::stats();
    rs.stop();
    past_reconnect_limit();
    let dir = TempDir::new("stderr");
    let line = audit("while-dead");
    let err = capture_stderr(&dir, || sink::emit(Severity::Warning, &line));
    let after = sink::stats();
    assert_eq!(err, format!("ghostwatch: {line}\n"));
    assert_eq!(after.lines_to_stderr, before.lines_to_stderr + 1);
    assert_eq!(after.lines_sent, before.lines_sent);

    // While it stays dead, lines cost almost nothing (reconnects are rate-limited).
    let t0 = Instant::now();
    let err = capture_stderr(&dir, || {
        for _ in 0..100 {
            sink::emit(Severity::Info, "event=threshold seq=1");
        }
    });
    let dead_cost = t0.elapsed();
    println!("100 lines with syslogd dead: {dead_cost:?}");
    assert_eq!(err.lines().count(), 100);
    assert!(dead_cost < Duration::from_millis(500), "{dead_cost:?}");
    assert_eq!(sink::stats().lines_to_stderr, after.lines_to_stderr + 100);

    // Restart: the sink reconnects by itself and the line arrives.
    rs.restart();
    past_reconnect_limit();
    sink::emit(Severity::Notice, &audit("after-restart-tcp"));
    rs.wait_line("rule=after-restart-tcp")
        .expect("line after reconnect (tcp)");
    let s = sink::stats();
    assert_eq!(s.reconnects, after.reconnects + 1);

    // Same for the unix socket (a datagram socket: the send itself fails).
    sink::init(&unix, "daemon").expect("init unix again");
    sink::emit(Severity::Notice, &audit("unix-before-crash"));
    rs.wait_line("rule=unix-before-crash").expect("unix line");
    rs.stop();
    let before = sink::stats();
    let err = capture_stderr(&dir, || sink::emit(Severity::Notice, &audit("unix-dead")));
    assert!(err.contains("rule=unix-dead"), "{err}");
    assert_eq!(sink::stats().lines_to_stderr, before.lines_to_stderr + 1);
    rs.restart();
    past_reconnect_limit();
    sink::emit(Severity::Notice, &audit("unix-after-restart"));
    rs.wait_line("rule=unix-after-restart")
        .expect("line after reconnect (unix)");
    assert_eq!(sink::stats().reconnects, before.reconnects + 1);

    // stderr as the configured target: sent, not counted as a fallback.
    sink::init(&SyslogTarget::Stderr, "daemon").unwrap();
    let before = sink::stats();
    let err = capture_stderr(&dir, || sink::emit(Severity::Info, "event=recovered seq=3"));
    assert_eq!(err, "ghostwatch: event=recovered seq=3\n");
    let s = sink::stats();
    assert_eq!(s.lines_sent, before.lines_sent + 1);
    assert_eq!(s.lines_to_stderr, before.lines_to_stderr);

    // Bad settings are refused up front.
    assert!(sink::init(&unix, "nonsense").is_err());
    let bad = SyslogTarget::Udp(target_str("no-port-here"));
    assert!(sink::init(&bad, "daemon").is_err());
    sink::init(&SyslogTarget::Stderr, "daemon").unwrap();
}

/// Kills and reaps the daemon (and so its private mount namespace) on drop.
struct Busybox(ChildGuard);

#[test]
fn busybox_syslogd_in_a_private_mount_namespace() {
    if !require_root("busybox syslogd needs its own mount namespace for /dev/log")
        || !require_program("busybox", INSTALL_BUSYBOX)
        || !require_program("unshare", "apt-get install util-linux")
    {
        return;
    }
    let _g = SINK_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let dir = TempDir::new("busybox");
    let out = dir.path().join("messages");
    // A tmpfs over /dev in a private namespace: busybox creates its /dev/log there and the
    // host's /dev/log is never touched. We reach the socket through /proc/PID/root.
    let script = format!(
        "mount -t tmpfs gw-dev /dev && exec busybox syslogd -n -O {}",
        out.display()
    );
    let child = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn unshare");
    let bb = Busybox(ChildGuard(child));
    let sock = format!("/proc/{}/root/dev/log", bb.0.pid());
    let up = wait_for(Duration::from_secs(5), || {
        std::os::unix::net::UnixDatagram::unbound()
            .and_then(|s| s.connect(&sock))
            .ok()
    });
    assert!(up.is_some(), "busybox syslogd did not create {sock}");

    sink::init(&SyslogTarget::Unix(target_str(&sock)), "daemon").expect("init");
    sink::emit(Severity::Notice, &audit("via-busybox"));
    let got = wait_for(Duration::from_secs(5), || {
        let t = std::fs::read_to_string(&out).ok()?;
        t.lines()
            .find(|l| l.contains("rule=via-busybox"))
            .map(str::to_string)
    })
    .expect("line in busybox log");
    println!("busybox: {got}");
    assert!(
        got.contains(&format!(
            "daemon.notice ghostwatch[{}]: event=action",
            std::process::id()
        )),
        "{got}"
    );
    sink::init(&SyslogTarget::Stderr, "daemon").unwrap();
    drop(bb);
}
