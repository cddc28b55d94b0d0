//! Config trust (issue 8, item 1): `check`, `run` and a SIGHUP reload refuse, with exit 2 and a
//! message that says how to fix it, a config another user could have written: not owned by
//! root, writable by group/others, a symlink, reached through a symlink or a directory others
//! can write, not a regular file (a FIFO must never hang them), or oversized.

mod support;

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{ChildGuard, TempDir, require_root};

const BIN: &str = env!("CARGO_BIN_EXE_ghostwatch");
const GOOD: &str = r#"{ "rules": [ { "name": "l", "trigger": "ghost", "action": "log" } ] }"#;

/// A private root-owned 0755 directory (TempDir lives in /tmp, which is sticky: accepted).
fn private_dir(tag: &str) -> TempDir {
    let d = TempDir::new(tag);
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    d
}

/// Writes a config owned by the current user, mode 0644.
fn write_good(p: &Path) {
    std::fs::write(p, GOOD).unwrap();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o644)).unwrap();
}

/// Runs ghostwatch with `args`, killing it after 5 s (a hang is a failure, not a stuck test).
/// Returns (exit code, stderr).
fn run_bounded(args: &[&str]) -> (i32, String) {
    let child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut g = ChildGuard(child);
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        if let Ok(Some(st)) = g.0.try_wait() {
            let mut err = String::new();
            use std::io::Read;
            let _ = g.0.stderr.take().unwrap().read_to_string(&mut err);
            return (st.code().unwrap_or(-1), err);
        }
        assert!(Instant::now() < end, "ghostwatch {args:?} hung for 5 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn check(p: &Path) -> (i32, String) {
    run_bounded(&["check", "-c", p.to_str().unwrap()])
}

fn run_once(p: &Path) -> (i32, String) {
    run_bounded(&["run", "--once", "--dry-run", "-c", p.to_str().unwrap()])
}

/// Both `check` and `run` refuse `p` with exit 2 and a message containing `want`.
fn refused(p: &Path, want: &str) {
    for (what, (code, err)) in [("check", check(p)), ("run", run_once(p))] {
        assert_eq!(code, 2, "{what} {}: {err}", p.display());
        assert!(
            err.starts_with(&format!("{}:0:0: ", p.display())),
            "{what}: {err}"
        );
        assert!(err.contains(want), "{what}: want {want:?} in {err}");
    }
}

#[test]
fn a_good_private_config_is_accepted() {
    let d = private_dir("trust-ok");
    let f = d.path().join("ok.json");
    write_good(&f);
    let (code, err) = check(&f);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn writable_by_group_or_others_is_refused() {
    let d = private_dir("trust-mode");
    let f = d.path().join("c.json");
    write_good(&f);
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o666)).unwrap();
    refused(&f, "group or others can write (mode 0666); fix: chmod go-w");
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o664)).unwrap();
    refused(&f, "(mode 0664)");
}

#[test]
fn not_owned_by_root_is_refused() {
    if !require_root("chown a config to nobody") {
        return;
    }
    let d = private_dir("trust-owner");
    let f = d.path().join("c.json");
    write_good(&f);
    std::os::unix::fs::chown(&f, Some(65534), Some(65534)).unwrap();
    refused(&f, "owned by uid 65534, not root");
    refused(&f, "fix: chown root:root");
    // A directory on the way owned by someone else is refused too.
    std::os::unix::fs::chown(&f, Some(0), Some(0)).unwrap();
    std::os::unix::fs::chown(d.path(), Some(65534), Some(65534)).unwrap();
    refused(&f, "a directory owned by uid 65534");
}

#[test]
fn symlinks_are_refused_at_every_component() {
    let d = private_dir("trust-link");
    let real = d.path().join("real.json");
    write_good(&real);
    let link = d.path().join("link.json");
    symlink(&real, &link).unwrap();
    refused(&link, "a symbolic link");
    let sub = d.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o755)).unwrap();
    write_good(&sub.join("c.json"));
    let via = d.path().join("via");
    symlink(&sub, &via).unwrap();
    refused(&via.join("c.json"), "reached through the symbolic link");
}

#[test]
fn fifo_and_devices_are_refused_without_hanging() {
    let d = private_dir("trust-fifo");
    let fifo = d.path().join("c.json");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    refused(&fifo, "a FIFO, not a regular file");
    let (code, err) = check(Path::new("/dev/zero"));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("a character device"), "{err}");
    refused(d.path(), "a directory, not a regular file");
}

#[test]
fn a_directory_others_can_write_is_refused_but_sticky_root_tmp_is_not() {
    let d = private_dir("trust-dir");
    let sub = d.path().join("open");
    std::fs::create_dir(&sub).unwrap();
    let f = sub.join("c.json");
    write_good(&f);
    std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o777)).unwrap();
    refused(&f, "a directory group or others can write (mode 0777)");
    // Sticky and root-owned (like /tmp): others cannot replace root's entries there.
    std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o1777)).unwrap();
    // SAFETY: geteuid has no preconditions.
    let code = check(&f).0;
    if unsafe { libc::geteuid() } == 0 {
        assert_eq!(code, 0);
    } else {
        // Sticky directories count only when root owns them.
        assert_eq!(code, 2);
    }
}

#[test]
fn oversize_is_refused() {
    let d = private_dir("trust-big");
    let f = d.path().join("big.json");
    std::fs::write(&f, format!("{{}}{}", " ".repeat(16 * 1024))).unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
    refused(&f, "larger than 16384 bytes");
}

#[test]
fn sighup_reload_refuses_a_fifo_and_keeps_running() {
    let d = private_dir("trust-hup");
    let f = d.path().join("c.json");
    std::fs::write(
        &f,
        r#"{ "interval_ms": 100, "syslog": "stderr", "mlock": false, "oom_score_adj": 0,
             "rules": [ { "name": "l", "trigger": "ghost", "action": "log" } ] }"#,
    )
    .unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
    let child = Command::new(BIN)
        .args(["run", "--dry-run", "-c", f.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut g = ChildGuard(child);
    let pid = g.pid() as libc::pid_t;
    std::thread::sleep(Duration::from_millis(500));
    std::fs::remove_file(&f).unwrap();
    let c = std::ffi::CString::new(f.to_str().unwrap()).unwrap();
    // SAFETY: valid path; plain signals to our own child.
    unsafe {
        assert_eq!(libc::mkfifo(c.as_ptr(), 0o644), 0);
        libc::kill(pid, libc::SIGHUP);
    }
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let end = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Ok(Some(st)) = g.0.try_wait() {
            break st;
        }
        assert!(Instant::now() < end, "the agent hung after a FIFO reload");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    use std::io::Read;
    let _ = g.0.stderr.take().unwrap().read_to_string(&mut err);
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(
        err.contains("config reload failed") && err.contains("a FIFO"),
        "{err}"
    );
    assert!(err.contains("event=stop"), "{err}");
}
