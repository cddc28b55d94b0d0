//! The one test harness (every integration test says `mod support;`): the skip policy (root,
//! programs only `.ci/run` installs), temp dirs, child guards, polling, free ports, /proc/net
//! rows, a private rsyslogd, the gw-testd daemon and agent process (`daemon`), a JSON reader
//! and the report contract check (`json`). The counting allocator of the no-allocation tests is
//! `counting_alloc.rs`, included by path only where a test binary wants it as its allocator.
#![allow(dead_code)]

pub mod daemon;
pub mod json;
pub mod oldkernel;

#[allow(unused_imports)]
pub use daemon::*;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How to get the programs that only `.ci/run` installs (pass to `require_program`).
pub const INSTALL_RSYSLOG: &str = "apt-get install rsyslog";
pub const INSTALL_BUSYBOX: &str = "apt-get install busybox-static";
pub const INSTALL_SYSTEMD: &str = "apt-get install systemd";
/// Debian's `prometheus` package ships `promtool`.
pub const INSTALL_PROMTOOL: &str = "apt-get install prometheus";

/// The one skip policy of the tests. Outside CI: one line on the real stderr (written past
/// libtest's capture, so a plain `cargo test` shows it) naming the test, what it needs and how
/// to get it, then false. Under CI=true a skip would hide a regression: it panics instead.
fn skip(need: &str, how: &str) -> bool {
    let current = std::thread::current();
    let test = current.name().unwrap_or("?");
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test} needs {need}, and CI=true forbids skipping ({how})");
    }
    // One write, so the line is not interleaved with libtest's own output.
    let line = format!("SKIPPED {test}: needs {need} ({how})\n");
    use std::io::Write;
    let _ = std::io::stderr().write_all(line.as_bytes());
    false
}

/// True if the test may go on as root; otherwise skips (see `skip`). `what` says why root.
pub fn require_root(what: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    root || skip(&format!("root: {what}"), "run it as root")
}

/// True if `program` is an executable on PATH; otherwise skips (see `skip`), saying how to
/// get it (`install`, e.g. INSTALL_RSYSLOG). For programs only `.ci/run` installs.
pub fn require_program(program: &str, install: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let found = std::env::var_os("PATH").is_some_and(|p| {
        std::env::split_paths(&p).any(|d| {
            std::fs::metadata(d.join(program))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    });
    found || skip(&format!("{program}, not on PATH"), install)
}

/// A directory under the system temp dir, removed (with everything in it) on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "gw-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        // Configs in here must pass the trust check: mode 0755 whatever the umask.
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod temp dir");
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    /// `name` inside the directory.
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A path another user can reach: `path` itself, or a copy of it (symlinks kept) in a fresh
/// world-readable temp directory, removed when this is dropped.
pub struct Reachable {
    pub path: PathBuf,
    _copy: Option<TempDir>,
}

/// `path` as seen by an unprivileged user (tests that run a binary or read a tree as nobody): a
/// checkout under a directory only root can enter (root's home is mode 0700) is out of their
/// reach, so the file or tree is copied to a temp directory they can enter. Itself when every
/// directory above it lets others search it and others may read it.
pub fn reachable_by_others(path: &Path) -> Reachable {
    use std::os::unix::fs::PermissionsExt;
    let path = path.canonicalize().expect("canonicalize");
    let others =
        |p: &Path, bit: u32| std::fs::metadata(p).is_ok_and(|m| m.permissions().mode() & bit != 0);
    let reachable = path.ancestors().skip(1).all(|a| others(a, 0o001)) && others(&path, 0o004);
    if reachable {
        return Reachable { path, _copy: None };
    }
    let dir = TempDir::new("reachable");
    let dest = dir.join(&path.file_name().expect("a file name").to_string_lossy());
    let st = Command::new("cp")
        .args(["-a", "--"])
        .arg(&path)
        .arg(&dest)
        .status()
        .expect("run cp");
    assert!(st.success(), "cp -a {} {}", path.display(), dest.display());
    Reachable {
        path: dest,
        _copy: Some(dir),
    }
}

/// A child process killed (SIGKILL) and reaped on drop, so a failing assert leaves nothing.
pub struct ChildGuard(pub Child);

impl ChildGuard {
    pub fn pid(&self) -> u32 {
        self.0.id()
    }
    pub fn is_running(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(None))
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One row of /proc/net/udp: queue sizes and inode for the socket bound to 127.0.0.1:`port`.
#[derive(Debug, Clone, Copy)]
pub struct UdpRow {
    pub rx_queue: u64,
    pub tx_queue: u64,
    pub inode: u64,
}

/// Every row of /proc/net/udp as (local address text, row) (test-only parse; the product's
/// parser lives in proc::net).
pub fn udp_rows() -> Vec<(String, UdpRow)> {
    let text = std::fs::read_to_string("/proc/net/udp").unwrap_or_default();
    let row = |line: &str| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (tx, rx) = f.get(4)?.split_once(':')?;
        let r = UdpRow {
            tx_queue: u64::from_str_radix(tx, 16).ok()?,
            rx_queue: u64::from_str_radix(rx, 16).ok()?,
            inode: f.get(9)?.parse().ok()?,
        };
        Some((f.get(1)?.to_string(), r))
    };
    text.lines().skip(1).filter_map(row).collect()
}

/// The row of the UDP socket bound to 127.0.0.1:`port`.
pub fn udp_row(port: u16) -> Option<UdpRow> {
    let want = format!("0100007F:{port:04X}");
    udp_rows()
        .into_iter()
        .find(|(l, _)| *l == want)
        .map(|(_, r)| r)
}

/// rx_queue of the UDP socket bound to 127.0.0.1:`port`.
pub fn udp_rx_queue(port: u16) -> Option<u64> {
    udp_row(port).map(|r| r.rx_queue)
}

/// The row of UDP socket `inode` (None once it is gone).
pub fn udp_row_by_inode(inode: u64) -> Option<UdpRow> {
    udp_rows()
        .into_iter()
        .find(|(_, r)| r.inode == inode)
        .map(|(_, r)| r)
}

/// Alive and not a zombie waiting to be reaped.
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z'))
    })
}

/// The fd number under /proc/`pid`/fd whose link reads `socket:[inode]`.
pub fn find_socket_fd(pid: u32, inode: u64) -> Option<u32> {
    let want = format!("socket:[{inode}]");
    for e in std::fs::read_dir(format!("/proc/{pid}/fd")).ok()? {
        let e = e.ok()?;
        if std::fs::read_link(e.path()).ok()?.to_str() == Some(want.as_str()) {
            return e.file_name().to_str()?.parse().ok();
        }
    }
    None
}

/// PIDs whose /proc/PID/cmdline contains `needle` (to prove no leftover process).
pub fn pids_with_cmdline(needle: &str) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if let Ok(c) = std::fs::read(format!("/proc/{pid}/cmdline")) {
            let c = String::from_utf8_lossy(&c).replace('\0', " ");
            if c.contains(needle) {
                out.push(pid);
            }
        }
    }
    out
}

/// Polls `f` every 20 ms until it returns Some or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A free loopback port (picked by the kernel, then released for the daemon).
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("free udp port")
}

pub fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("free tcp port")
}

/// Starts this test binary again with `GW_HELPER=mode`, running only `test_name`, and waits
/// for the line starting with `ready_prefix` on its stdout. Returns the guard and that line.
/// The helper exits when its stdin closes, so it cannot outlive the test by much.
pub fn spawn_self_helper(test_name: &str, mode: &str, ready_prefix: &str) -> (ChildGuard, String) {
    let exe = std::env::current_exe().expect("current_exe");
    let child = Command::new(exe)
        .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env("GW_HELPER", mode)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn helper");
    let mut guard = ChildGuard(child);
    let out = guard.0.stdout.take().expect("helper stdout");
    // Read on a thread so a helper that never gets ready fails the test instead of hanging it.
    let (tx, rx) = std::sync::mpsc::channel();
    let prefix = ready_prefix.to_string();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(out);
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                // libtest prints "test NAME ... " on the same line first.
                Ok(_) => {
                    if let Some(i) = line.find(&prefix) {
                        let _ = tx.send(line[i..].trim().to_string());
                        return;
                    }
                }
            }
        }
    });
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(ready) => (guard, ready),
        Err(_) => panic!("helper {mode} did not get ready"),
    }
}

/// Parses `key=value` out of a space-separated line.
pub fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

/// A private rsyslogd: its own config, socket, ports, pid file and output file in a temp dir.
/// It never reads /etc/rsyslog.conf or touches /dev/log. Killed and reaped on drop.
pub struct Rsyslogd {
    pub dir: TempDir,
    pub sock: PathBuf,
    pub out: PathBuf,
    pub udp_port: u16,
    pub tcp_port: u16,
    child: Option<Child>,
}

impl Rsyslogd {
    /// Writes the config and starts the daemon; waits until all three inputs listen.
    pub fn start() -> Rsyslogd {
        Rsyslogd::start_with(
            "%programname%[%procid%] %syslogseverity-text% %msg%\\n",
            "",
            "",
        )
    }

    /// `start` with the output file's rsyslog `template` string and `actions` (rsyslog
    /// config text, e.g. loading and running mmpstrucdata) before the file is written. The
    /// unix socket keeps the timestamps the lines carry (UseSysTimeStamp off), as UDP and TCP do;
    /// `unix_opts` are more imuxsock input parameters (e.g. `UseSpecialParser="off"`, so that
    /// RFC 5424 lines on the socket are parsed as such).
    pub fn start_with(template: &str, actions: &str, unix_opts: &str) -> Rsyslogd {
        let dir = TempDir::new("rsyslog");
        let sock = dir.path().join("log.sock");
        let out = dir.path().join("out.log");
        let mut r = Rsyslogd {
            sock,
            out,
            udp_port: free_udp_port(),
            tcp_port: free_tcp_port(),
            dir,
            child: None,
        };
        let conf = format!(
            r#"global(workDirectory="{dir}")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="{sock}" RateLimit.Interval="0" UseSysTimeStamp="off" IgnoreTimestamp="off" {unix_opts})
module(load="imudp")
input(type="imudp" address="127.0.0.1" port="{udp}")
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="{tcp}")
template(name="gwfmt" type="string" string="{template}")
{actions}
*.* action(type="omfile" file="{out}" template="gwfmt")
"#,
            dir = r.dir.path().display(),
            sock = r.sock.display(),
            out = r.out.display(),
            udp = r.udp_port,
            tcp = r.tcp_port,
        );
        std::fs::write(r.dir.path().join("rsyslog.conf"), conf).expect("write rsyslog.conf");
        r.restart();
        r
    }

    /// (Re)starts the daemon with the same config, socket and ports.
    pub fn restart(&mut self) {
        self.stop();
        let conf = self.dir.path().join("rsyslog.conf");
        let pidfile = self.dir.path().join("rsyslogd.pid");
        let child = Command::new("rsyslogd")
            .arg("-n")
            .arg("-f")
            .arg(&conf)
            .arg("-i")
            .arg(&pidfile)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn rsyslogd");
        self.child = Some(child);
        let tcp = self.tcp_port;
        let up = wait_for(Duration::from_secs(10), || {
            let sock_ok = self.sock.exists();
            let tcp_ok = std::net::TcpStream::connect(("127.0.0.1", tcp)).is_ok();
            let udp_ok = udp_listening(self.udp_port);
            (sock_ok && tcp_ok && udp_ok).then_some(())
        });
        assert!(up.is_some(), "rsyslogd did not come up");
    }

    /// Stops the daemon the way an operator would (SIGTERM: it writes out what it received)
    /// and reaps it.
    pub fn stop_gracefully(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let _ = wait_for(Duration::from_secs(10), || c.try_wait().ok().flatten());
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills the daemon (SIGKILL, as a crash would) and reaps it.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Waits up to 5 s for `needle` to show up in the output file; returns the matching line.
    pub fn wait_line(&self, needle: &str) -> Option<String> {
        wait_for(Duration::from_secs(5), || {
            let text = std::fs::read_to_string(&self.out).ok()?;
            text.lines()
                .find(|l| l.contains(needle))
                .map(str::to_string)
        })
    }
}

impl Drop for Rsyslogd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// True if something is bound to 127.0.0.1:`port` in /proc/net/udp.
fn udp_listening(port: u16) -> bool {
    udp_row(port).is_some()
}

/// Writes a config the way `ghostwatch check` trusts it (issue 8): mode 0644 whatever the
/// umask, owned by whoever runs the test (root under CI), inside a TempDir (mode 0755).
/// A copy of the seed fixture tree (tests/fixtures/seed) at `dir/proc`, for tests that damage
/// or rewire a /proc tree without touching the shared fixture.
pub fn seed_copy(dir: &TempDir) -> PathBuf {
    let root = dir.path().join("proc");
    let seed = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/seed");
    assert!(
        std::process::Command::new("cp")
            .args(["-a", seed, root.to_str().unwrap()])
            .status()
            .unwrap()
            .success()
    );
    root
}

pub fn write_trusted(p: impl AsRef<Path>, text: impl AsRef<[u8]>) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(p.as_ref(), text).expect("write config");
    std::fs::set_permissions(p.as_ref(), std::fs::Permissions::from_mode(0o644))
        .expect("chmod config");
}

/// Makes `dir` a directory holding one link per busybox applet, to use as the only PATH entry
/// of a script that must run with busybox's tools alone (as on a router).
pub fn busybox_applets(dir: &Path) {
    std::fs::create_dir_all(dir).expect("create applet dir");
    let list = Command::new("busybox")
        .arg("--list")
        .output()
        .expect("busybox --list");
    let busybox = std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("busybox"))
                .find(|p| p.is_file())
        })
        .expect("busybox on PATH");
    for name in String::from_utf8_lossy(&list.stdout)
        .lines()
        .chain(["busybox"])
    {
        let _ = std::os::unix::fs::symlink(&busybox, dir.join(name));
    }
}
