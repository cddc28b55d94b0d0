//! Suspect tracking on the live kernel: between table reads the agent keeps its suspects and
//! re-checks them through their owners' fds; it must not mistake an unchanged box-wide total
//! for an unchanged box. The regression: one queue drained while another socket's grew by as
//! much, sockstat's UDP `mem` stayed put, and the new backlog waited ~30 polls for the
//! periodic full scan (benches/agent_budget.sh missed 5 of 29 fresh floods).

mod support;

use ghostwatch::agent::Agent;
use ghostwatch::config::{Config, SyslogTarget};
use ghostwatch::observe::proc::ProcRoot;
use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use support::*;

const KIB: u64 = 1024;

/// The tests flood loopback and watch box-wide counters: one at a time.
static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A UDP receiver on loopback that queues up to 16 MiB (SO_RCVBUFFORCE: root).
fn receiver() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let size: libc::c_int = 16 << 20;
    // SAFETY: a c_int option on our own socket.
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&size as *const libc::c_int).cast(),
            4,
        )
    };
    assert_eq!(r, 0, "SO_RCVBUFFORCE");
    s
}

fn inode_of(s: &UdpSocket) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/proc/self/fd/{}", s.as_raw_fd()))
        .unwrap()
        .ino()
}

/// Sends `n` datagrams of 8 000 bytes to `to`.
fn flood(tx: &UdpSocket, to: &UdpSocket, n: usize) {
    for _ in 0..n {
        tx.send_to(&[7u8; 8_000], to.local_addr().unwrap()).unwrap();
    }
}

/// Reads everything queued on `s`.
fn drain(s: &UdpSocket) {
    s.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 9_000];
    while s.recv(&mut buf).is_ok() {}
}

/// A config that logs nothing but backlog thresholds at `warn` bytes (no rules, Ghost off),
/// to stderr, its status file in `dir`.
fn watch_backlog_only(dir: &TempDir, warn: u64) -> Config {
    ghostwatch::output::sink::init(&SyslogTarget::Stderr, "daemon").unwrap();
    let mut cfg = Config::embedded_default();
    cfg.syslog = SyslogTarget::Stderr;
    cfg.mlock = false;
    cfg.status_file =
        Some(heapless::String::try_from(dir.join("status.json").to_str().unwrap()).unwrap());
    cfg.ghost_warn_kb = u64::MAX / 4;
    cfg.ghost_act_kb = u64::MAX / 2;
    cfg.backlog_warn_bytes = warn;
    cfg.backlog_act_bytes = u64::MAX / 2;
    cfg.rules.clear();
    cfg
}

/// One poll, then the owner walk's slices until it is complete, as `run`'s loop does between
/// polls (a box with many fds takes several 50 ms slices).
fn poll_as_run_does(agent: &mut Agent, now: u64) {
    agent.poll(now);
    while agent.owner_walk_pending() {
        agent.owner_walk_slice();
    }
}

fn rx_of(agent: &Agent, inode: u64) -> Option<u64> {
    agent
        .suspects()
        .iter()
        .find(|s| s.socket.inode == inode)
        .map(|s| s.socket.rx_queue)
}

#[test]
fn a_queue_draining_while_another_grows_as_much_is_not_mistaken_for_no_change() {
    if !require_root("SO_RCVBUFFORCE and pidfd_getfd of the agent's own sockets") {
        return;
    }
    let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
    let dir = TempDir::new("tracking");
    let cfg = watch_backlog_only(&dir, 1 << 20);

    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let a = receiver();
    let b = receiver();
    let (ia, ib) = (inode_of(&a), inode_of(&b));
    flood(&tx, &a, 300); // ~2.4 MB payload, ~2.7 MB charged

    let mut agent = Agent::new(cfg, ProcRoot::live()).unwrap();
    let mut now = 1_000;
    let mut poll = |agent: &mut Agent| {
        poll_as_run_does(agent, now);
        now += 1_000;
    };
    // Poll 1 reads everything; the next ones find A's owner (this process) and track A.
    for _ in 0..4 {
        poll(&mut agent);
    }
    let before = rx_of(&agent, ia).expect("A is a suspect");
    assert!(before >= 2_000 * KIB, "A queues {before} bytes");

    // Tracking re-checks A each poll: more data on A shows without a table read.
    flood(&tx, &a, 50);
    poll(&mut agent);
    let grown = rx_of(&agent, ia).expect("A is still a suspect");
    assert!(
        grown > before,
        "A's queue seen growing: {before} -> {grown}"
    );

    // The swap, inside one interval: A drained by its owner, B flooded by as much.
    drain(&a);
    flood(&tx, &b, 350);
    poll(&mut agent);
    poll(&mut agent);
    let cycles = agent.cycles();
    assert!(
        cycles < 30,
        "the periodic full scan (poll 31) must not be what finds B"
    );
    let got = rx_of(&agent, ib);
    assert!(
        got.is_some_and(|rx| rx >= 2_000 * KIB),
        "B (inode {ib}) not among the suspects two polls after its flood: {:?}",
        agent
            .suspects()
            .iter()
            .map(|s| (s.socket.inode, s.socket.rx_queue))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        rx_of(&agent, ia),
        None,
        "A, drained, is no suspect any more"
    );
    drop((a, b, tx));
}

#[test]
fn a_new_flood_on_a_quiet_box_is_found_by_the_next_poll() {
    if !require_root("SO_RCVBUFFORCE") {
        return;
    }
    let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
    let dir = TempDir::new("tracking-new");
    let cfg = watch_backlog_only(&dir, 512 * KIB);
    let mut agent = Agent::new(cfg, ProcRoot::live()).unwrap();
    let mut now = 1_000;
    for _ in 0..3 {
        poll_as_run_does(&mut agent, now);
        now += 1_000;
    }
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let c = receiver();
    let ic = inode_of(&c);
    flood(&tx, &c, 300);
    poll_as_run_does(&mut agent, now);
    let got = rx_of(&agent, ic);
    eprintln!("{}", std::fs::read_to_string("/proc/net/sockstat").unwrap());
    assert!(
        got.is_some_and(|rx| rx >= 2_000 * KIB),
        "C (inode {ic}) not found by the poll after its flood: {:?}",
        agent
            .suspects()
            .iter()
            .map(|s| (s.socket.inode, s.socket.rx_queue))
            .collect::<Vec<_>>()
    );
    drop((c, tx));
}
