//! Unix datagram queues are measured whole (issue 20). The kernel charges a unix datagram to
//! its sender, so a never-read receiver's own figures show nothing of what it holds: its
//! SK_MEMINFO rmem_alloc reads 0 and UNIX_DIAG_RQLEN (like SIOCINQ) is the first datagram's
//! length. What its connected senders have queued is theirs (`wmem_alloc`), and that is what
//! `report` and the agent now count against the receiver. Root only (SO_SNDBUFFORCE lifts the
//! sender's buffer as a flood by many sockets, or a privileged process, would); the sockets
//! are this test's own and close with it.

mod support;

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;
use support::json;
use support::*;

const COUNT: usize = 200;
const SIZE: usize = 12_000;

fn inode_of(fd: i32) -> u64 {
    // SAFETY: st is a valid out-pointer.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::fstat(fd, &mut st) }, 0);
    st.st_ino
}

/// A connected datagram pair with COUNT × SIZE bytes queued at `.1`, never read.
fn flooded_pair() -> (UnixDatagram, UnixDatagram) {
    let (tx, rx) = UnixDatagram::pair().unwrap();
    let big: libc::c_int = 64 << 20;
    // SAFETY: setsockopt(SO_SNDBUFFORCE) with a valid int on our own socket.
    let r = unsafe {
        libc::setsockopt(
            tx.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDBUFFORCE,
            (&big as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0, "SO_SNDBUFFORCE");
    tx.set_nonblocking(true).unwrap();
    let buf = vec![0x75u8; SIZE];
    for i in 0..COUNT {
        tx.send(&buf)
            .unwrap_or_else(|e| panic!("datagram {i} not queued: {e}"));
    }
    (tx, rx)
}

#[test]
fn a_never_read_datagram_queue_is_reported_whole_and_triggers_the_backlog_rule() {
    if !require_root("SO_SNDBUFFORCE and sock_diag") {
        return;
    }
    let (tx, rx) = flooded_pair();
    let ino = inode_of(rx.as_raw_fd());
    let (st, text, err) = ghostwatch(&["report", "--json", "--top", "20"]);
    assert!(st.success(), "{err}");
    let rep = json::parse(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    let row = rep
        .at("sockets")
        .arr()
        .iter()
        .find(|s| s.at("inode").i64() as u64 == ino)
        .unwrap_or_else(|| panic!("receiver {ino} not among the top sockets: {text}"));
    let q = row.at("rx_queue").i64() as u64;
    println!("receiver {ino}: rx_queue {q}");
    assert!(
        q >= (COUNT * SIZE) as u64,
        "rx_queue {q} < {}",
        COUNT * SIZE
    );
    assert_eq!(row.at("rx_queue_source").str(), "sock_diag_peer_wmem");

    // The agent's backlog trigger sees the same figure (one test: a second flooded pair
    // would compete for the top).
    let dir = TempDir::new("unixq");
    let cfg = dir.join("unixq.json");
    write_trusted(
        &cfg,
        format!(
            r#"{{
  "interval_ms": 100,
  "syslog": "stderr",
  "backlog_warn_bytes": {},
  "backlog_act_bytes": {},
  "ghost_warn_kb": 536870912,
  "ghost_act_kb": 1073741824,
  "mlock": false,
  "oom_score_adj": 0,
  "rules": [ {{ "name": "unix-note", "trigger": "backlog", "action": "log" }} ]
}}
"#,
            1 << 20,
            2 << 20
        ),
    );
    let agent = AgentProc::start(&["-c", cfg.to_str().unwrap()], dir.path());
    let line = wait_for(Duration::from_secs(15), || {
        agent
            .stderr()
            .lines()
            .find(|l| l.contains("event=action") && l.contains("rule=unix-note"))
            .map(str::to_string)
    })
    .unwrap_or_else(|| panic!("no backlog action; stderr:\n{}", agent.stderr()));
    println!("{line}");
    assert!(line.contains(&format!("inode={ino}")), "{line}");
    let q: u64 = field(&line, "rx_queue")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no rx_queue= in {line}"));
    assert!(q >= (COUNT * SIZE) as u64, "{line}");
    // Held while it holds (the unix table is re-read every poll while a socket is at the warn
    // level, not only with the periodic scans) ...
    std::thread::sleep(Duration::from_millis(1_000));
    let recovered = |a: &AgentProc| {
        a.stderr()
            .lines()
            .any(|l| l.contains("event=recovered") && l.contains("trigger=backlog"))
    };
    assert!(
        !recovered(&agent),
        "recovered while still queued:\n{}",
        agent.stderr()
    );
    // ... and over once it is read.
    rx.set_nonblocking(true).unwrap();
    let mut buf = vec![0u8; SIZE];
    while rx.recv(&mut buf).is_ok() {}
    wait_for(Duration::from_secs(5), || recovered(&agent).then_some(()))
        .unwrap_or_else(|| panic!("no recovery after the drain:\n{}", agent.stderr()));
    drop(agent);
    drop((tx, rx));
}
