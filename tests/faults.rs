//! Fault injection (README, "Faults it survives"): the rows of that table no other test file
//! covers. A /proc table growing while it is read, a socket closed (and its fd number reused)
//! between the decision and a clamp/drain, and a status directory that is read-only.

mod support;

use ghostwatch::act::executors::{self, Target};
use ghostwatch::observe::proc::net::{self, Proto};
use ghostwatch::observe::proc::pid::Comm;
use ghostwatch::observe::proc::{ProcRoot, Source};
use ghostwatch::output::audit::ResultKind;
use std::os::fd::AsRawFd;
use std::time::Duration;
use support::*;

/// A table that gains a row on every read(2), as /proc/net/udp does while sockets are born:
/// the header, then `rows` complete lines handed out one per read, the last one torn.
struct Growing {
    next: u32,
    rows: u32,
    pending: Vec<u8>,
}

impl Source for Growing {
    fn read_some(&mut self, buf: &mut [u8]) -> Result<usize, i32> {
        if self.pending.is_empty() && self.next <= self.rows {
            self.pending = if self.next == 0 {
                b"   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n".to_vec()
            } else if self.next == self.rows {
                format!("{:4}: 0100007F:{:04X} 0000", self.next, self.next).into_bytes()
            } else {
                format!(
                    "{:4}: 0100007F:{:04X} 00000000:0000 07 00000000:{:08X} 00:00000000 00000000     0        0 {} 2 0000000000000000 0\n",
                    self.next, self.next, self.next * 100, 10_000 + self.next
                )
                .into_bytes()
            };
            self.next += 1;
        }
        let n = self.pending.len().min(buf.len());
        buf[..n].copy_from_slice(&self.pending[..n]);
        self.pending.drain(..n);
        Ok(n)
    }
}

#[test]
fn a_table_growing_while_read_counts_whole_rows_and_the_torn_one() {
    let mut buf = [0u8; 4096];
    let src = Growing {
        next: 0,
        rows: 3000,
        pending: Vec::new(),
    };
    let mut seen = 0u64;
    let st = net::read_table(Proto::Udp, src, &mut buf, &mut |e| {
        seen += 1;
        assert_eq!(e.inode, 10_000 + seen, "rows in order, none lost");
    })
    .unwrap();
    assert_eq!((st.sockets, st.malformed), (2999, 1));
}

#[test]
fn live_udp_table_read_while_sockets_are_born_and_die() {
    // The kernel table really grows and shrinks under the reader: rows stay whole.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s2 = stop.clone();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let churn = std::thread::spawn(move || {
        let mut first = Some(ready_tx);
        while !s2.load(std::sync::atomic::Ordering::Relaxed) {
            let socks: Vec<_> = (0..200)
                .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
                .collect();
            if let Some(tx) = first.take() {
                let _ = tx.send(());
            }
            drop(socks);
        }
    });
    ready_rx.recv().unwrap();
    let root = ProcRoot::live();
    let mut buf = [0u8; 4096];
    let mut max = 0;
    let t0 = std::time::Instant::now();
    let mut reads = 0;
    // At least 100 reads and half a second of churn (a loaded machine may not run the thread
    // for a while).
    while reads < 100 || t0.elapsed() < Duration::from_millis(500) {
        let fd = root.open(b"net/udp").unwrap();
        let st = net::read_table(Proto::Udp, fd, &mut buf, &mut |_| {}).unwrap();
        assert_eq!(st.malformed, 0, "a torn row from a live table");
        max = max.max(st.sockets);
        reads += 1;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    churn.join().unwrap();
    assert!(max > 0, "the churn was never seen");
}

fn inode_of(fd: i32) -> u64 {
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: st is a valid out-pointer.
    assert_eq!(unsafe { libc::fstat(fd, &mut st) }, 0);
    st.st_ino
}

#[test]
fn clamp_and_drain_on_a_socket_closed_in_between() {
    // The decision named (pid, fd, inode); by the time the action runs the owner closed it.
    // A high fd number (dup2) so other tests' threads in this process do not take it over.
    const FD: i32 = 901;
    let me = std::process::id();
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    // SAFETY: plain fd syscalls on descriptors this test owns.
    assert_eq!(unsafe { libc::dup2(sock.as_raw_fd(), FD) }, FD);
    let t = Target {
        pid: me,
        fd: FD as u32,
        inode: inode_of(FD),
        comm: Comm::from_bytes(b""),
    };
    drop(sock);
    unsafe { libc::close(FD) };
    let gone = format!("fd {FD} is not open in process {me}");
    for o in [executors::clamp(&t, 4096), executors::drain(&t, 100, 100)] {
        assert_eq!(o.result, ResultKind::Failed);
        assert_eq!(o.reason.as_str(), gone);
    }
    // ... and the fd number now belongs to another socket: never touch that one.
    let other = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    assert_eq!(unsafe { libc::dup2(other.as_raw_fd(), FD) }, FD);
    let before = inode_of(FD);
    for o in [executors::clamp(&t, 4096), executors::drain(&t, 100, 100)] {
        assert_eq!(o.result, ResultKind::Failed);
        assert_eq!(o.reason.as_str(), "fd no longer that socket");
    }
    assert_eq!(inode_of(FD), before);
    unsafe { libc::close(FD) };
}

#[test]
fn a_read_only_status_directory_neither_stops_polls_nor_floods_the_log() {
    if !require_root("a_read_only_status_directory_neither_stops_polls_nor_floods_the_log") {
        return;
    }
    let dir = TempDir::new("rostatus");
    let ro = dir.join("ro");
    std::fs::create_dir(&ro).unwrap();
    let metrics = dir.join("metrics.prom");
    let cfg = dir.join("ro.json");
    std::fs::write(
        &cfg,
        format!(
            r#"{{"interval_ms": 20, "syslog": "stderr", "mlock": false, "oom_score_adj": 0,
  "status_file": "{}/status.json", "metrics_file": "{}"}}"#,
            ro.display(),
            metrics.display()
        ),
    )
    .unwrap();
    // A read-only tmpfs over `ro`, in a mount namespace of the agent's own: nothing is left
    // mounted when it exits.
    let err = std::fs::File::create(dir.join("agent.stderr")).unwrap();
    let child = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(format!(
            "mount -t tmpfs -o ro gw-ro '{}' && exec '{}' run -c '{}'",
            ro.display(),
            ghostwatch_bin().display(),
            cfg.display()
        ))
        .stdin(std::process::Stdio::null())
        .stderr(err)
        .spawn()
        .unwrap();
    let mut agent = AgentProc {
        child: Some(child),
        stderr_path: dir.join("agent.stderr"),
    };
    let polls = |m: &str| -> Option<u64> {
        m.lines()
            .find_map(|l| l.strip_prefix("ghostwatch_polls_total "))
            .and_then(|v| v.trim().parse().ok())
    };
    let p = wait_for(Duration::from_secs(10), || {
        polls(&std::fs::read_to_string(&metrics).ok()?).filter(|&p| p >= 150)
    })
    .unwrap_or_else(|| panic!("polls stopped: {}", agent.stderr()));
    assert_eq!(agent.stop(3_000), Some(0));
    let log = agent.stderr();
    let errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("event=error") && l.contains("cannot write"))
        .collect();
    assert!(
        !errors.is_empty(),
        "the failed writes were not audited: {log}"
    );
    assert!(
        errors[0].contains("status.json") && errors[0].contains("Read-only"),
        "{}",
        errors[0]
    );
    // Rate-limited: the first 10, then every 100th, not one per poll.
    assert!(
        errors.len() as u64 <= 10 + p / 100 + 1,
        "{} error lines for {p} polls",
        errors.len()
    );
    std::thread::sleep(Duration::from_millis(10));
}
