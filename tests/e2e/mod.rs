//! Shared harness for the live end-to-end tests: root gating, temp dirs, the gw-testd
//! throwaway daemon behind its init-style script, a loopback flooder, and the agent process.
#![allow(dead_code)]

use std::io::Read;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The one root/CI skip policy of the live tests (tests/support).
pub use super::support::require_root as need_root;

/// A temp directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("gw-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        // Configs in here must pass the trust check: mode 0755 whatever the umask.
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod temp dir");
        TempDir(p)
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn ghostwatch_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ghostwatch"))
}

/// target/<profile>/examples/gw-testd (cargo test builds examples). Never panics: Daemon's
/// drop calls it, and a panic there while unwinding would abort and leak every child.
pub fn testd_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new("."));
    profile_dir.join("examples").join("gw-testd")
}

/// Panics unless gw-testd is built. (`cargo test --test NAME` alone does not rebuild
/// examples: after changing examples/gw-testd.rs run `cargo build --examples` or `cargo test`.)
fn check_testd_bin() {
    let p = testd_bin();
    assert!(
        p.exists(),
        "{} missing: run the tests with `cargo test` (it builds examples)",
        p.display()
    );
}

pub fn init_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/gw-testd.init")
}

/// A free UDP port on 127.0.0.1 (bound then released).
pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// gw-testd started through its init script; stopped (and every PID it had killed) on drop.
pub struct Daemon {
    pub dir: PathBuf,
    pub args: Vec<String>,
}

impl Daemon {
    pub fn start(dir: &Path, args: &[&str]) -> Daemon {
        check_testd_bin();
        let d = Daemon {
            dir: dir.to_path_buf(),
            args: args.iter().map(|s| s.to_string()).collect(),
        };
        let st = Command::new("/bin/sh")
            .args(d.init_argv("start"))
            .status()
            .expect("run init script");
        assert!(
            st.success(),
            "gw-testd start failed: {}",
            std::fs::read_to_string(dir.join("gw-testd.err")).unwrap_or_default()
        );
        d
    }

    /// The argv that runs the init script with `cmd` (what a restart rule puts in its config).
    pub fn init_argv(&self, cmd: &str) -> Vec<String> {
        let mut v = vec![
            init_script().display().to_string(),
            cmd.to_string(),
            testd_bin().display().to_string(),
            self.dir.display().to_string(),
        ];
        v.extend(self.args.iter().cloned());
        v
    }

    pub fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.dir.join("gw-testd.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Waits up to `ms` for the pidfile to name a PID other than `old`.
    pub fn wait_new_pid(&self, old: u32, ms: u64) -> Option<u32> {
        let t = Instant::now();
        while t.elapsed() < Duration::from_millis(ms) {
            if let Some(p) = self.pid() {
                if p != old && alive(p) {
                    return Some(p);
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Socket inodes gw-testd reported, by proto ("udp", "udp6", "raw6").
    pub fn inode(&self, proto: &str) -> Option<u64> {
        let s = std::fs::read_to_string(self.dir.join("gw-testd.pid.socks")).ok()?;
        s.lines().find_map(|l| {
            let mut f = l.split_whitespace();
            (f.next()? == proto)
                .then(|| f.next()?.parse().ok())
                .flatten()
        })
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = Command::new("/bin/sh")
            .args(self.init_argv("stop"))
            .status();
    }
}

pub fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| !s.contains(") Z "))
            .unwrap_or(false)
}

/// Sends `count` datagrams of `size` bytes to 127.0.0.1:`port`; returns how many were sent.
/// Send errors (ENOBUFS under pressure) are tolerated: the queue just stops growing.
pub fn flood(port: u16, count: usize, size: usize) -> usize {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let buf = vec![0x5au8; size];
    let mut sent = 0;
    for _ in 0..count {
        if s.send_to(&buf, ("127.0.0.1", port)).is_ok() {
            sent += 1;
        }
    }
    sent
}

/// rx_queue (bytes) of the UDP socket bound to 127.0.0.1:`port`, from /proc/net/udp.
pub fn udp_rx_queue(port: u16) -> Option<u64> {
    let want = format!("0100007F:{port:04X}");
    let text = std::fs::read_to_string("/proc/net/udp").ok()?;
    text.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.get(1) == Some(&want.as_str()) {
            let q = f.get(4)?;
            u64::from_str_radix(q.split(':').nth(1)?, 16).ok()
        } else {
            None
        }
    })
}

/// SO_RCVBUF as /proc shows nothing of it: read via the agent's audit, or here via a probe.
/// The agent process: `ghostwatch run ARGS`, stderr captured to a file; SIGTERM then SIGKILL on drop.
pub struct AgentProc {
    pub child: Option<Child>,
    pub stderr_path: PathBuf,
}

impl AgentProc {
    pub fn start(args: &[&str], dir: &Path) -> AgentProc {
        let stderr_path = dir.join("agent.stderr");
        let err = std::fs::File::create(&stderr_path).unwrap();
        let child = Command::new(ghostwatch_bin())
            .arg("run")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("spawn ghostwatch run");
        AgentProc {
            child: Some(child),
            stderr_path,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Sends SIGTERM and waits up to `ms`; returns the exit code (None if it had to be killed).
    pub fn stop(&mut self, ms: u64) -> Option<i32> {
        let mut c = self.child.take()?;
        // SAFETY: signalling our own child.
        unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        let t = Instant::now();
        while t.elapsed() < Duration::from_millis(ms) {
            if let Ok(Some(st)) = c.try_wait() {
                return st.code();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = c.kill();
        let _ = c.wait();
        None
    }

    pub fn stderr(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.stderr_path) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }
}

impl Drop for AgentProc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Polls `f` every 20 ms until it returns Some or `ms` pass.
pub fn wait_for<T>(ms: u64, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let t = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if t.elapsed() > Duration::from_millis(ms) {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
