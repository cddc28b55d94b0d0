//! The agent's firmware duties, live with the real binary: `protect` (real processes, real
//! oom_score_adj), the watchdog (through the FIFO stand-in: no watchdog device can be created
//! here and softdog is not loadable), and the reboot sequence (run with CAP_SYS_BOOT removed
//! from the bounding set, verified before the rule can fire, so reboot(2) fails with EPERM
//! and everything before it — stop petting, audit, breadcrumb — happens for real).
//!
//! Setting oom_score_adj to -1000 needs CAP_SYS_RESOURCE. These machines run root *without*
//! it (the kernel answers EACCES); the tests check whichever behaviour the running kernel
//! allows: -1000 and result=ok with the capability, result=failed with the reason and a
//! positive value lowered to 0 without it.

mod support;

use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use support::{ChildGuard, Rsyslogd, TempDir, wait_for};

fn ready(what: &str) -> bool {
    support::require_root(what) && support::require_program("rsyslogd", support::INSTALL_RSYSLOG)
}

fn write_config(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
}

fn start_agent(config: &Path) -> ChildGuard {
    start_agent_with(Command::new(env!("CARGO_BIN_EXE_ghostwatch")), config)
}

fn start_agent_with(mut c: Command, config: &Path) -> ChildGuard {
    let child = c
        .arg("run")
        .arg("-c")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("start ghostwatch");
    ChildGuard(child)
}

fn signal(pid: u32, sig: i32) {
    // SAFETY: plain kill of a child this test started.
    unsafe { libc::kill(pid as i32, sig) };
}

/// A bit of a capability mask line ("CapEff:\t000001fffeffffff") of /proc/PID/status.
fn has_cap(pid: &str, line: &str, cap: u32) -> bool {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let hex = s
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{line}:")))
        .unwrap()
        .trim();
    u64::from_str_radix(hex, 16).unwrap() & (1 << cap) != 0
}

const CAP_SYS_BOOT: u32 = 22;
const CAP_SYS_RESOURCE: u32 = 24;

fn adj(pid: u32) -> i32 {
    std::fs::read_to_string(format!("/proc/{pid}/oom_score_adj"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn set_adj(pid: u32, v: i32) {
    std::fs::write(format!("/proc/{pid}/oom_score_adj"), v.to_string()).unwrap();
}

/// A copy of `sleep` named `name` (so its comm is `name`), started with `uid` if given.
fn named_sleeper(dir: &Path, name: &str, uid: Option<u32>) -> ChildGuard {
    let bin = dir.join(name);
    if !bin.exists() {
        std::fs::copy("/bin/sleep", &bin).unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let mut c = Command::new(&bin);
    c.arg("60");
    if let Some(u) = uid {
        c.uid(u).gid(u);
    }
    let g = ChildGuard(c.spawn().unwrap());
    // Wait until it has exec'd (comm is the new name).
    let pid = g.pid();
    wait_for(Duration::from_secs(5), || {
        let c = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
        (c.trim() == name).then_some(())
    })
    .expect("sleeper exec'd");
    g
}

/// What the kernel allows: with CAP_SYS_RESOURCE the process is at -1000 and the line says
/// ok; without, the line says failed, why, and a positive value was lowered to 0.
fn assert_protected(line: &str, pid: u32) {
    if has_cap("self", "CapEff", CAP_SYS_RESOURCE) {
        assert!(line.contains("result=ok"), "{line}");
        assert_eq!(adj(pid), -1000);
    } else {
        println!("note: no CAP_SYS_RESOURCE here: -1000 is refused, checking the fallback");
        assert!(line.contains("result=failed"), "{line}");
        assert!(line.contains("CAP_SYS_RESOURCE"), "{line}");
        assert_eq!(adj(pid), 0, "a positive oom_score_adj is lowered to 0");
        assert!(line.contains("oom_score_adj=0"), "{line}");
    }
}

#[test]
fn protect_names_paths_and_new_pids() {
    if !ready("protect with real processes") {
        return;
    }
    let syslog = Rsyslogd::start();
    let t = TempDir::new("protect");
    // Readable and executable by uid 65534 too.
    std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o755)).unwrap();

    let feeder = named_sleeper(t.path(), "gw-feeddog", None);
    let by_path = named_sleeper(t.path(), "gw-other", None);
    let not_root = named_sleeper(t.path(), "gw-feeddog", Some(65534));
    for p in [feeder.pid(), by_path.pid(), not_root.pid()] {
        set_adj(p, 500);
    }
    let cfg = t.path().join("ghostwatch.json");
    write_config(
        &cfg,
        &format!(
            "{{ \"interval_ms\": 200, \"mlock\": false, \"syslog\": \"unix:{}\",\n  \"ghost_warn_kb\": 1073741824, \"ghost_act_kb\": 1073741824,\n  \"backlog_warn_bytes\": 1099511627776, \"backlog_act_bytes\": 1099511627776,\n  \"protect\": [\"gw-feeddog\", \"{}\"] }}\n",
            syslog.sock.display(),
            t.path().join("gw-other").display()
        ),
    );
    let agent = start_agent(&cfg);

    // The agent itself.
    let self_line = syslog.wait_line("target=self").expect("self protect line");
    assert!(
        self_line.contains(&format!("pid={} ", agent.pid())),
        "{self_line}"
    );

    // By name, at start.
    let l = syslog
        .wait_line(&format!("event=protect pid={} ", feeder.pid()))
        .expect("feeder protected at start");
    assert!(l.contains("comm=gw-feeddog"), "{l}");
    assert_protected(&l, feeder.pid());

    // By exe path.
    let l = syslog
        .wait_line(&format!("event=protect pid={} ", by_path.pid()))
        .expect("exe-path match protected");
    assert!(l.contains("comm=gw-other"), "{l}");
    assert_protected(&l, by_path.pid());

    // A new PID of that name, after start: found through the new-PID probe.
    let late = named_sleeper(t.path(), "gw-feeddog", None);
    set_adj(late.pid(), 500);
    let l = syslog
        .wait_line(&format!("event=protect pid={} ", late.pid()))
        .expect("a feeder started later is protected");
    assert_protected(&l, late.pid());

    // Not root: the same name does not match (any user can name a process gw-feeddog).
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(adj(not_root.pid()), 500, "a non-root namesake was touched");
    let log = std::fs::read_to_string(&syslog.out).unwrap();
    assert!(!log.contains(&format!("pid={} ", not_root.pid())), "{log}");

    // One line per process: later polls and sweeps do not repeat a failure.
    let count = |pid: u32| log.matches(&format!("event=protect pid={pid} ")).count();
    assert_eq!(count(feeder.pid()), 1, "{log}");
    drop(agent);
}

/// Makes a FIFO and opens its read end (non-blocking), as the watchdog stand-in.
fn fifo(dir: &Path) -> (PathBuf, std::fs::File) {
    let p = dir.join("watchdog");
    let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
    // SAFETY: valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&p)
        .unwrap();
    (p, f)
}

/// Reads what is in the FIFO now: (bytes, writer closed).
fn drain(f: &mut std::fs::File) -> (Vec<u8>, bool) {
    use std::io::Read;
    let mut out = Vec::new();
    let mut buf = [0u8; 256];
    loop {
        match f.read(&mut buf) {
            Ok(0) => return (out, true),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return (out, false),
            Err(e) => panic!("{e}"),
        }
    }
}

/// A config with the watchdog stand-in and a status file in `t` (its `cycles` counts polls).
/// Ghost and backlog thresholds sit out of reach, so other tests' floods on this shared host do
/// not make every poll a full socket scan.
fn watchdog_config(t: &Path, syslog: &Rsyslogd, wd: &Path) -> PathBuf {
    let cfg = t.join("ghostwatch.json");
    write_config(
        &cfg,
        &format!(
            "{{ \"interval_ms\": 200, \"mlock\": false, \"syslog\": \"unix:{}\",\n  \"status_file\": \"{}\",\n  \"ghost_warn_kb\": 1073741824, \"ghost_act_kb\": 1073741824,\n  \"backlog_warn_bytes\": 1099511627776, \"backlog_act_bytes\": 1099511627776,\n  \"watchdog_device\": \"{}\", \"watchdog_timeout_s\": 5 }}\n",
            syslog.sock.display(),
            t.join("status.json").display(),
            wd.display()
        ),
    );
    cfg
}

/// Polls done so far, from the status file's `"cycles":N` (the agent rewrites it each poll).
fn cycles(status: &Path) -> Option<u64> {
    let s = std::fs::read_to_string(status).ok()?;
    let rest = s.split("\"cycles\":").nth(1)?;
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// Waits until the agent has done `n` more polls than `from` (generous: the host is shared,
/// and a debug build's poll of a busy host's sockets can take a second).
fn wait_polls(status: &Path, from: u64, n: u64) {
    wait_for(Duration::from_secs(30), || {
        (cycles(status)? >= from + n).then_some(())
    })
    .unwrap_or_else(|| panic!("the agent did not poll {n} more times"));
}

/// Waits until `pid` is stopped (state T), so nothing it does can land after this returns.
fn wait_stopped(pid: u32) {
    wait_for(Duration::from_secs(5), || {
        let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        s.rsplit_once(") ")?.1.starts_with('T').then_some(())
    })
    .expect("agent stopped");
}

#[test]
fn watchdog_pets_each_healthy_poll_and_closes_on_term() {
    if !ready("watchdog stand-in") {
        return;
    }
    let syslog = Rsyslogd::start();
    let t = TempDir::new("wd-term");
    let (wd, mut reader) = fifo(t.path());
    let cfg = watchdog_config(t.path(), &syslog, &wd);
    let status = t.path().join("status.json");
    let agent = start_agent(&cfg);
    let start = syslog.wait_line("event=start").expect("start line");
    assert!(start.contains("watchdog_kind=fifo-stand-in"), "{start}");
    assert!(start.contains("watchdog_timeout_s=5"), "{start}");
    // One pet per poll: with k polls done, k or k - 1 bytes (the last poll may not have
    // petted yet), k between the counts read just before and just after the drain.
    wait_polls(&status, 0, 4);
    let before = cycles(&status).unwrap();
    let (pets, closed) = drain(&mut reader);
    let after = cycles(&status).unwrap();
    assert!(!closed);
    let p = pets.len() as u64;
    assert!(
        before.saturating_sub(1) <= p && p <= after,
        "{p} pets for {before}..={after} polls: not one per poll"
    );
    assert!(pets.iter().all(|&b| b == 0), "pets are NUL bytes: {pets:?}");

    // SIGSTOP: a stuck loop pets nothing.
    signal(agent.pid(), libc::SIGSTOP);
    wait_stopped(agent.pid());
    let _ = drain(&mut reader);
    std::thread::sleep(Duration::from_millis(600));
    assert!(drain(&mut reader).0.is_empty(), "a stopped agent petted");
    signal(agent.pid(), libc::SIGCONT);

    signal(agent.pid(), libc::SIGTERM);
    let stop = syslog.wait_line("event=stop").expect("stop line");
    assert!(stop.contains("watchdog=closed"), "{stop}");
    let (tail, closed) = wait_for(Duration::from_secs(5), || {
        let (b, c) = drain(&mut reader);
        c.then_some((b, c))
    })
    .expect("writer closed");
    assert!(closed);
    assert_eq!(tail.last(), Some(&b'V'), "no magic close: {tail:?}");
    drop(agent);
}

#[test]
fn watchdog_sigkill_leaves_no_magic_close() {
    if !ready("watchdog stand-in, SIGKILL") {
        return;
    }
    let syslog = Rsyslogd::start();
    let t = TempDir::new("wd-kill");
    let (wd, mut reader) = fifo(t.path());
    let cfg = watchdog_config(t.path(), &syslog, &wd);
    let mut agent = start_agent(&cfg);
    syslog.wait_line("event=start").expect("start line");
    wait_polls(&t.path().join("status.json"), 0, 2);
    let _ = agent.0.kill();
    let _ = agent.0.wait();
    let (tail, closed) = drain(&mut reader);
    assert!(closed, "writer still open");
    assert!(!tail.is_empty(), "no pets before the kill");
    assert!(!tail.contains(&b'V'), "magic close after SIGKILL: {tail:?}");
}

/// A poll that cannot read meminfo is not healthy: the agent keeps running, the pets stop.
#[test]
fn watchdog_not_petted_when_polls_fail() {
    if !ready("watchdog stand-in, failing polls") {
        return;
    }
    let syslog = Rsyslogd::start();
    let t = TempDir::new("wd-sick");
    let root = t.path().join("proc");
    std::fs::create_dir_all(&root).unwrap();
    let seed = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/seed/meminfo");
    std::fs::copy(&seed, root.join("meminfo")).unwrap();
    let (wd, mut reader) = fifo(t.path());
    let cfg = watchdog_config(t.path(), &syslog, &wd);
    let child = Command::new(env!("CARGO_BIN_EXE_ghostwatch"))
        .arg("run")
        .arg("--proc-root")
        .arg(&root)
        .arg("-c")
        .arg(&cfg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let agent = ChildGuard(child);
    syslog.wait_line("event=start").expect("start line");
    wait_polls(&t.path().join("status.json"), 0, 2);
    assert!(
        !drain(&mut reader).0.is_empty(),
        "healthy polls petted nothing"
    );
    // The proc root loses meminfo (its kept-open fd now reads a garbled file, then the file
    // is gone): one error line, then polls that cannot measure (the status file still counts
    // them). After the drain, three more such polls must write nothing.
    std::fs::write(root.join("meminfo"), "garbage\n").unwrap();
    std::fs::remove_file(root.join("meminfo")).unwrap();
    syslog.wait_line("meminfo").expect("read error audited");
    let status = t.path().join("status.json");
    let errors = || {
        std::fs::read_to_string(&syslog.out)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("event=error") && l.contains("meminfo"))
            .count()
    };
    let _ = drain(&mut reader);
    let c0 = cycles(&status).unwrap();
    let e0 = errors();
    wait_polls(&status, c0, 3);
    // Each of those polls said why (the first ten read errors are all logged).
    if e0 <= 7 {
        assert!(
            wait_for(Duration::from_secs(5), || (errors() >= e0 + 3)
                .then_some(()))
            .is_some(),
            "failing polls were silent: {} error lines after {e0}",
            errors()
        );
    }
    assert!(
        drain(&mut reader).0.is_empty(),
        "polls that cannot read meminfo petted the watchdog"
    );
    drop(agent);
}

/// The reboot sequence for real, minus the reboot: CAP_SYS_BOOT is dropped from the agent's
/// bounding set (and checked in the running agent before the rule may fire), so reboot(2)
/// fails with EPERM. Then the next start reports the breadcrumb.
#[test]
fn reboot_sequence_stops_petting_writes_breadcrumb_and_next_start_reports_it() {
    if !ready("reboot sequence")
        || !support::require_program("setpriv", "apt-get install util-linux")
    {
        return;
    }
    // setpriv must really drop CAP_SYS_BOOT, or this test must not run at all.
    let probe = Command::new("setpriv")
        .args([
            "--bounding-set",
            "-sys_boot",
            "--",
            "cat",
            "/proc/self/status",
        ])
        .output()
        .unwrap();
    let status = String::from_utf8_lossy(&probe.stdout);
    for key in ["CapBnd:", "CapEff:"] {
        let hex = status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .expect("cap line")
            .trim();
        assert_eq!(
            u64::from_str_radix(hex, 16).unwrap() & (1 << CAP_SYS_BOOT),
            0,
            "setpriv left CAP_SYS_BOOT in {key}: refusing to run a reboot test"
        );
    }

    let syslog = Rsyslogd::start();
    let t = TempDir::new("reboot");
    let (wd, mut reader) = fifo(t.path());
    let crumb = t.path().join("state/reboot-reason");
    let cfg = t.path().join("ghostwatch.json");
    // MemAvailable is always below 1 TiB: the available trigger is at act level at once; the
    // reboot rule waits 3 s, long enough to check the running agent's capabilities.
    write_config(
        &cfg,
        &format!(
            "{{ \"interval_ms\": 200, \"mlock\": false, \"syslog\": \"unix:{}\", \"status_file\": \"{}\",\n  \"ghost_warn_kb\": 1073741824, \"ghost_act_kb\": 1073741824,\n  \"backlog_warn_bytes\": 1099511627776, \"backlog_act_bytes\": 1099511627776,\n  \"watchdog_device\": \"{}\", \"breadcrumb_file\": \"{}\",\n  \"min_available_kb\": 1073741824, \"available_warn_kb\": 1073741824,\n  \"rules\": [ {{ \"name\": \"last-resort\", \"trigger\": \"available\", \"action\": \"reboot\", \"escalate_after_s\": 3 }} ] }}\n",
            syslog.sock.display(),
            t.path().join("status.json").display(),
            wd.display(),
            crumb.display()
        ),
    );
    let mut c = Command::new("setpriv");
    c.args(["--bounding-set", "-sys_boot", "--"])
        .arg(env!("CARGO_BIN_EXE_ghostwatch"));
    let agent = start_agent_with(c, &cfg);
    syslog.wait_line("event=start").expect("start line");
    let pid = agent.pid().to_string();
    if has_cap(&pid, "CapEff", CAP_SYS_BOOT) || has_cap(&pid, "CapBnd", CAP_SYS_BOOT) {
        signal(agent.pid(), libc::SIGKILL);
        panic!("the agent holds CAP_SYS_BOOT: killed it before its reboot rule could fire");
    }
    let status = t.path().join("status.json");
    wait_polls(&status, 0, 2);
    assert!(
        !drain(&mut reader).0.is_empty(),
        "no pets before the reboot"
    );

    let reboot = syslog
        .wait_line("event=reboot")
        .or_else(|| syslog.wait_line("event=reboot"))
        .expect("event=reboot line");
    assert!(reboot.contains("rule=last-resort"), "{reboot}");
    assert!(reboot.contains("watchdog=stopped"), "{reboot}");
    assert!(reboot.contains("available_kb="), "{reboot}");
    let action = syslog
        .wait_line("action=reboot")
        .expect("the reboot action's audit line");
    assert!(action.contains("result=failed"), "{action}");
    assert!(action.contains("Operation not permitted"), "{action}");

    let text = std::fs::read_to_string(&crumb).expect("breadcrumb written");
    assert!(text.starts_with("event=reboot rule=last-resort"), "{text}");
    let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    assert!(
        text.contains(&format!("boot_id={}", boot_id.trim())),
        "{text}"
    );

    // Petting stopped for good: the agent keeps polling, the FIFO stays silent.
    let _ = drain(&mut reader);
    let c0 = cycles(&status).unwrap();
    wait_polls(&status, c0, 3);
    assert!(
        drain(&mut reader).0.is_empty(),
        "petted after the last resort"
    );
    // And a clean stop now must not disarm the watchdog: the reset has to come.
    signal(agent.pid(), libc::SIGTERM);
    let stop = syslog.wait_line("event=stop").expect("stop line");
    assert!(stop.contains("watchdog=left-running"), "{stop}");
    let (tail, closed) = wait_for(Duration::from_secs(5), || {
        let (b, c) = drain(&mut reader);
        c.then_some((b, c))
    })
    .expect("writer closed");
    assert!(
        closed && !tail.contains(&b'V'),
        "magic close after the last resort"
    );
    drop(agent);

    // The next start: last_reboot in the start line, the breadcrumb gone.
    let syslog2 = Rsyslogd::start();
    write_config(
        &cfg,
        &format!(
            "{{ \"interval_ms\": 200, \"mlock\": false, \"syslog\": \"unix:{}\", \"breadcrumb_file\": \"{}\" }}\n",
            syslog2.sock.display(),
            crumb.display()
        ),
    );
    let agent = start_agent(&cfg);
    let start = syslog2.wait_line("event=start").expect("start line");
    assert!(
        start.contains("last_reboot=\"event=reboot rule=last-resort"),
        "{start}"
    );
    assert!(start.contains("last_reboot_same_boot=1"), "{start}");
    assert!(!crumb.exists(), "breadcrumb not removed");
    drop(agent);
}

/// A pseudo-terminal whose slave this test holds open with TIOCEXCL: a character device that
/// answers a second open with EBUSY, as a watchdog held by procd or a feeder does (none can be
/// created here). The exclusion does not bind CAP_SYS_ADMIN, so the agent runs without it.
struct HeldDevice {
    _master: std::fs::File,
    _slave: std::fs::File,
    path: PathBuf,
}

fn held_device() -> HeldDevice {
    use std::os::fd::FromRawFd;
    // SAFETY: plain libc calls on a fresh pty master; results checked.
    unsafe {
        let m = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        assert!(m >= 0, "posix_openpt");
        assert_eq!(libc::grantpt(m), 0);
        assert_eq!(libc::unlockpt(m), 0);
        let mut name = [0 as libc::c_char; 64];
        assert_eq!(libc::ptsname_r(m, name.as_mut_ptr(), name.len()), 0);
        let path = PathBuf::from(
            std::ffi::CStr::from_ptr(name.as_ptr())
                .to_str()
                .unwrap()
                .to_string(),
        );
        let s = libc::open(
            name.as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        );
        assert!(s >= 0, "open {}", path.display());
        assert_eq!(libc::ioctl(s, libc::TIOCEXCL), 0, "TIOCEXCL");
        HeldDevice {
            _master: std::fs::File::from_raw_fd(m),
            _slave: std::fs::File::from_raw_fd(s),
            path,
        }
    }
}

const CAP_SYS_ADMIN: u32 = 21;

/// issue 19: a `watchdog_device` another process holds (procd on OpenWrt) is reported by
/// `check`, naming the holder, without opening the device; `run` gets EBUSY, audits it once
/// with the holder, never retries, and polls on.
#[test]
fn a_held_watchdog_is_warned_by_check_and_reported_once_by_run() {
    if !support::require_root("a device only CAP_SYS_ADMIN may reopen; setpriv")
        || !support::require_program("setpriv", "apt-get install util-linux")
    {
        return;
    }
    let dev = held_device();
    let me = std::process::id();
    // The emulation holds: without CAP_SYS_ADMIN a second open is EBUSY.
    let probe = Command::new("setpriv")
        .args(["--bounding-set", "-sys_admin", "--", "sh", "-c"])
        .arg(format!("exec 3>'{}'", dev.path.display()))
        .output()
        .unwrap();
    let why = String::from_utf8_lossy(&probe.stderr);
    assert!(
        !probe.status.success() && why.contains("busy"),
        "a second open of a TIOCEXCL pty did not fail with EBUSY: {why}"
    );

    let t = TempDir::new("wd-held");
    let status = t.path().join("status.json");
    let cfg = t.path().join("ghostwatch.json");
    write_config(
        &cfg,
        &format!(
            "{{ \"interval_ms\": 100, \"mlock\": false, \"syslog\": \"stderr\", \"status_file\": \"{}\",\n  \"ghost_warn_kb\": 1073741824, \"ghost_act_kb\": 1073741824,\n  \"backlog_warn_bytes\": 1099511627776, \"backlog_act_bytes\": 1099511627776,\n  \"watchdog_device\": \"{}\", \"watchdog_timeout_s\": 5 }}\n",
            status.display(),
            dev.path.display()
        ),
    );

    // check: a warning naming this process, exit 0, and the device left alone.
    let out = Command::new(env!("CARGO_BIN_EXE_ghostwatch"))
        .args(["check", "-c"])
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let want = format!(
        "warning: watchdog_device \"{}\" is held by pid {me} (",
        dev.path.display()
    );
    assert!(err.contains(&want), "no holder warning: {err}");
    assert_eq!(err.matches("is held by").count(), 1, "{err}");

    // run, without CAP_SYS_ADMIN: one EBUSY line over many polls, then a clean stop.
    let log = t.path().join("agent.stderr");
    let mut c = Command::new("setpriv");
    c.args(["--bounding-set", "-sys_admin", "--"])
        .arg(env!("CARGO_BIN_EXE_ghostwatch"))
        .stderr(std::fs::File::create(&log).unwrap());
    let agent = start_agent_with(c, &cfg);
    wait_polls(&status, 0, 1);
    let pid = agent.pid().to_string();
    assert!(
        !has_cap(&pid, "CapEff", CAP_SYS_ADMIN),
        "the agent kept CAP_SYS_ADMIN: the device would open"
    );
    wait_polls(&status, cycles(&status).unwrap(), 20);
    signal(agent.pid(), libc::SIGTERM);
    wait_for(Duration::from_secs(5), || {
        std::fs::read_to_string(&log)
            .ok()?
            .contains("event=stop")
            .then_some(())
    })
    .expect("stop line");
    drop(agent);
    let text = std::fs::read_to_string(&log).unwrap();
    let busy: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("cannot open the watchdog"))
        .collect();
    assert_eq!(busy.len(), 1, "not exactly one EBUSY line:\n{text}");
    assert!(
        busy[0].contains("busy: another process") && busy[0].contains(&format!("holder_pid={me} ")),
        "{}",
        busy[0]
    );
    let stop = text.lines().find(|l| l.contains("event=stop")).unwrap();
    assert!(!stop.contains("watchdog="), "no watchdog to close: {stop}");
    assert!(!text.contains("watchdog write failed"), "{text}");
    eprintln!(
        "held watchdog: {} EBUSY line over {} polls",
        busy.len(),
        cycles(&status).unwrap()
    );
}

/// What sysupgrade and a reboot send: SIGTERM, then SIGKILL (procd's halt after 1 s, the
/// sysupgrade stage2 after 3 s, procd's service stop after the instance's term_timeout). The
/// magic close must land in between; this measures SIGTERM -> 'V' on the FIFO stand-in.
#[test]
fn the_magic_close_follows_sigterm_within_procds_one_second() {
    if !ready("watchdog stand-in, SIGTERM timing") {
        return;
    }
    let mut worst = Duration::ZERO;
    for i in 0..5u64 {
        let syslog = Rsyslogd::start();
        let t = TempDir::new("wd-term-time");
        let (wd, mut reader) = fifo(t.path());
        let cfg = watchdog_config(t.path(), &syslog, &wd);
        let status = t.path().join("status.json");
        let agent = start_agent(&cfg);
        wait_polls(&status, 0, 2);
        // Land the signal at different points of the 200 ms interval.
        std::thread::sleep(Duration::from_millis(37 * i));
        let _ = drain(&mut reader);
        let sent = std::time::Instant::now();
        signal(agent.pid(), libc::SIGTERM);
        let tail = wait_for(Duration::from_secs(5), || {
            let (b, closed) = drain(&mut reader);
            (b.contains(&b'V') || closed).then_some(b)
        })
        .expect("writer closed or V");
        let took = sent.elapsed();
        assert_eq!(tail.last(), Some(&b'V'), "no magic close: {tail:?}");
        worst = worst.max(took);
        drop(agent);
    }
    eprintln!("SIGTERM -> magic close: worst of 5 {worst:?}");
    assert!(
        worst < Duration::from_secs(1),
        "the magic close took {worst:?}: procd's halt sends SIGKILL 1 s after SIGTERM"
    );
}
