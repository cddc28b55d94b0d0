//! The owner walk of the real agent on a box with tens of thousands of fds: a walk longer than
//! one slice (`owner_track::WALK_BUDGET_US`) goes on between polls, right after the poll that
//! started it, and its completion brings the next poll forward, so the owner of a new suspect
//! is acted on well before the next regular poll. The regression: the loop slept after each
//! poll and walked only one slice per poll (or per stray wake-up), so a 200 000-fd walk took
//! 10-18 polls (benches/owner_walk.sh).

mod support;

use std::os::fd::AsRawFd;
use std::process::{Child, Command};
use std::time::{Duration, Instant};
use support::*;

const BIN: &str = env!("CARGO_BIN_EXE_ghostwatch");
const INTERVAL_MS: u64 = 3_000;

/// Unbound UDP sockets without CLOEXEC, so `sleep` children inherit them; closed on drop.
struct Hog(Vec<i32>);

impl Hog {
    fn open(n: usize) -> Hog {
        Hog((0..n)
            .map(|_| {
                // SAFETY: plain socket(2); the fd is ours until drop.
                let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0) };
                assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
                fd
            })
            .collect())
    }
}

impl Drop for Hog {
    fn drop(&mut self) {
        for &fd in &self.0 {
            // SAFETY: our own fds, closed once.
            unsafe { libc::close(fd) };
        }
    }
}

/// The agent, stopped with SIGTERM (so it stops what it runs) and reaped on drop.
struct AgentProc(Child);

impl Drop for AgentProc {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

fn status_u64(path: &std::path::Path, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let at = text.find(&format!("\"{key}\":"))? + key.len() + 3;
    let digits: String = text[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

/// Waits (bounded) until `f` is Some.
fn wait_for<T>(what: &str, ms: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + Duration::from_millis(ms);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_walk_longer_than_a_slice_finishes_before_the_next_poll() {
    if !require_root("every process's fds, SO_RCVBUFFORCE") {
        return;
    }
    let dir = TempDir::new("ownerwalk");
    let status = dir.join("status.json");
    let fired = dir.join("fired");
    let comm = std::fs::read_to_string("/proc/self/comm").unwrap();
    let cfg = dir.join("cfg.json");
    std::fs::write(
        &cfg,
        format!(
            r#"{{ "interval_ms": {INTERVAL_MS}, "syslog": "stderr", "mlock": false,
  "status_file": "{}",
  "ghost_warn_kb": 536870912, "ghost_act_kb": 1073741824,
  "backlog_warn_bytes": 524288, "backlog_act_bytes": 1048576,
  "rules": [ {{ "name": "found", "trigger": "backlog", "comm": "{}",
    "action": "exec", "argv": ["/usr/bin/touch", "{}"], "timeout_s": 5 }} ] }}"#,
            status.display(),
            comm.trim_end(),
            fired.display()
        ),
    )
    .unwrap();
    // The agent first, so it inherits none of the fds below.
    let _agent = AgentProc(
        Command::new(BIN)
            .args(["run", "-c", cfg.to_str().unwrap()])
            .spawn()
            .unwrap(),
    );

    // Tens of thousands of socket fds: this process and 3 children holding the same 19 000
    // (or what the hard RLIMIT_NOFILE allows), ~4.5 µs of readlink each: several slices.
    // SAFETY: rl is a valid in/out struct.
    let per_process = unsafe {
        let mut rl: libc::rlimit = core::mem::zeroed();
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl);
        rl.rlim_cur = rl.rlim_max.min(20_000);
        libc::setrlimit(libc::RLIMIT_NOFILE, &rl);
        (rl.rlim_cur as usize).saturating_sub(1_000).min(19_000)
    };
    assert!(per_process >= 5_000, "RLIMIT_NOFILE too low: {per_process}");
    let hog = Hog::open(per_process);
    let children: Vec<ChildGuard> = (0..3)
        .map(|_| ChildGuard(Command::new("sleep").arg("60").spawn().unwrap()))
        .collect();
    drop(hog);

    // The receiver (CLOEXEC: only this process holds it), flooded just after a poll.
    let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let size: libc::c_int = 16 << 20;
    // SAFETY: a c_int option on our own socket.
    let r = unsafe {
        libc::setsockopt(
            rx.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&size as *const libc::c_int).cast(),
            4,
        )
    };
    assert_eq!(r, 0, "SO_RCVBUFFORCE");
    let first = wait_for("the first poll", 10_000, || status_u64(&status, "cycles"));
    let before = wait_for("a poll to end", 3 * INTERVAL_MS, || {
        status_u64(&status, "cycles").filter(|&c| c > first)
    });
    let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for _ in 0..50 {
        tx.send_to(&[5u8; 60_000], rx.local_addr().unwrap())
            .unwrap();
    }
    let flooded = Instant::now();
    // Poll before+1 (one interval on) sees the suspect and starts the walk; its completion
    // brings poll before+2 forward, which acts. One slice per poll would need a poll per
    // slice; waiting for the regular deadline, two intervals.
    wait_for("the exec rule (owner found)", 10 * INTERVAL_MS, || {
        fired.exists().then_some(())
    });
    let elapsed_ms = flooded.elapsed().as_millis() as u64;
    let acted = wait_for("the status", 1_000, || status_u64(&status, "cycles"));
    let walk_us = status_u64(&status, "last_walk_us").unwrap();
    let slice_us = status_u64(&status, "max_walk_slice_us").unwrap();
    eprintln!(
        "{} fds in each of 4 processes; polls {before} -> {acted}; walk {walk_us} µs, \
         longest slice {slice_us} µs; flood -> action {elapsed_ms} ms",
        per_process
    );
    assert!(
        elapsed_ms < INTERVAL_MS * 3 / 2,
        "acted {elapsed_ms} ms after the flood: the completed walk did not bring the poll forward"
    );
    assert!(
        acted <= before + 2,
        "flooded after poll {before}, owner acted on only by poll {acted} (walk {walk_us} µs)"
    );
    drop(children);
}
