//! The agent's end-to-end pieces: the gw-testd throwaway daemon behind its init-style script,
//! a loopback flooder, and the `ghostwatch run` process.

use super::{alive, wait_for};
use std::io::Read;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
pub fn ghostwatch_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ghostwatch"))
}

/// Runs the built binary with `args` to the end; returns (exit status, stdout, stderr).
pub fn ghostwatch(args: &[&str]) -> (std::process::ExitStatus, String, String) {
    let out = Command::new(ghostwatch_bin())
        .args(args)
        .output()
        .expect("run ghostwatch");
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
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

/// target/<profile>/examples/gw-oldkernel (issue 16's seccomp kernel emulation), when built.
pub fn oldkernel_bin() -> Option<PathBuf> {
    let p = testd_bin().with_file_name("gw-oldkernel");
    p.exists().then_some(p)
}

pub fn init_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/gw-testd.init")
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
        wait_for(Duration::from_millis(ms), || {
            self.pid().filter(|&p| p != old && alive(p))
        })
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

/// The agent process: `ghostwatch run ARGS`, stderr captured to a file; SIGTERM then SIGKILL on drop.
pub struct AgentProc {
    pub child: Option<Child>,
    pub stderr_path: PathBuf,
}

impl AgentProc {
    pub fn start(args: &[&str], dir: &Path) -> AgentProc {
        AgentProc::start_under(&[], args, dir)
    }

    /// `start` with the agent run by `wrapper` (a program and its arguments that exec the rest,
    /// e.g. gw-oldkernel 5.4 --); `wrapper` empty: the agent itself.
    pub fn start_under(wrapper: &[&str], args: &[&str], dir: &Path) -> AgentProc {
        AgentProc::start_bin_under(wrapper, &ghostwatch_bin(), args, dir)
    }

    /// `start` with another build of the agent (e.g. main's, for before/after figures).
    pub fn start_bin(bin: &Path, args: &[&str], dir: &Path) -> AgentProc {
        AgentProc::start_bin_under(&[], bin, args, dir)
    }

    fn start_bin_under(wrapper: &[&str], gw: &Path, args: &[&str], dir: &Path) -> AgentProc {
        let stderr_path = dir.join("agent.stderr");
        let err = std::fs::File::create(&stderr_path).unwrap();
        let mut cmd = match wrapper.split_first() {
            Some((prog, rest)) => {
                let mut c = Command::new(prog);
                c.args(rest).arg(gw);
                c
            }
            None => Command::new(gw),
        };
        let child = cmd
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
    /// SIGTERM first: the agent then stops the commands it still runs (their own process
    /// groups, which a SIGKILL of the agent would orphan: a restart script finishing after the
    /// test's cleanup would leave a daemon behind). SIGKILL only if it does not exit in 3 s.
    fn drop(&mut self) {
        let _ = self.stop(3_000);
    }
}
