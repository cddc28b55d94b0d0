//! Issue 8, item 9: malformed or hostile input is refused or escaped, never silently wrong.
//! - a meminfo term that does not parse (negative MemFree) makes Ghost unknown for the poll
//!   (audited; report says so) instead of leaving the term out and inflating Ghost;
//! - a queue column wider than the kernel prints is rejected;
//! - names with separators, bidi overrides and newlines are escaped, in full, in the report's
//!   text and JSON and in audit lines.

mod support;

use std::path::Path;
use std::process::{Command, Output};
use support::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_ghostwatch");

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn edit(p: &Path, from: &str, to: &str) {
    let t = std::fs::read_to_string(p).unwrap();
    assert!(t.contains(from), "{}: {from}", p.display());
    std::fs::write(p, t.replace(from, to)).unwrap();
}

#[test]
fn a_negative_memfree_makes_ghost_unknown_not_inflated() {
    let dir = TempDir::new("memfree");
    let root = support::seed_copy(&dir);
    edit(
        &root.join("meminfo"),
        "MemFree:          109316 kB",
        "MemFree:         -109316 kB",
    );
    // report: says why, exit 1 (as for an unreadable meminfo).
    let out = run(&["report", "--proc-root", root.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("malformed MemFree line, so Ghost is unknown"),
        "{err}"
    );
    // run: the poll audits the error and no ghost rule fires on an inflated figure.
    let cfg = dir.path().join("c.json");
    let status = dir.path().join("status.json");
    support::write_trusted(
        &cfg,
        format!(
            r#"{{"syslog": "stderr", "mlock": false, "oom_score_adj": 0, "ghost_warn_kb": 1024, "ghost_act_kb": 2048,
            "status_file": "{}", "rules": [{{"name": "ghost-log", "trigger": "ghost", "action": "log"}}]}}"#,
            status.display()
        ),
    );
    let out = run(&[
        "run",
        "--once",
        "--proc-root",
        root.to_str().unwrap(),
        "-c",
        cfg.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.lines().any(|l| l.contains("event=error")
            && l.contains("meminfo: malformed MemFree line, so Ghost is unknown")),
        "{err}"
    );
    assert!(!err.contains("event=threshold"), "{err}");
    assert!(!err.contains("rule=ghost-log"), "{err}");
    let st = std::fs::read_to_string(&status).unwrap();
    assert!(st.contains("\"ghost_kb\":null"), "{st}");
}

#[test]
fn a_queue_wider_than_the_kernel_prints_is_rejected() {
    let dir = TempDir::new("wide");
    let root = support::seed_copy(&dir);
    // 9 hex digits: 68 GB "queued" on a 3.7 GB box. The kernel prints exactly 8.
    edit(
        &root.join("net/raw6"),
        "00000000:04933380",
        "00000000:FFFFFFFFF",
    );
    let out = run(&["report", "--json", "--proc-root", root.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(!text.contains("68719476735"), "{text}");
    assert!(!text.contains("\"inode\":27123"), "{text}");
}

#[test]
fn separators_bidi_and_newlines_in_a_name_are_escaped_everywhere() {
    let dir = TempDir::new("names");
    let root = support::seed_copy(&dir);
    // zebra renamed by itself: a right-to-left override, a line separator, then a newline and
    // more text (the kernel keeps up to 15 bytes, newlines included).
    let name = "z\u{202e}b\u{2028}\nevil";
    assert!(name.len() <= 15);
    std::fs::write(root.join("3218/comm"), format!("{name}\n")).unwrap();
    let r = root.to_str().unwrap();

    let out = run(&["report", "--proc-root", r]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0));
    assert!(text.contains(r"z\u{202e}b\u{2028}\x0aevil"), "{text}");
    assert!(!text.contains('\u{202e}') && !text.contains('\u{2028}'));

    let out = run(&["report", "--json", "--proc-root", r]);
    let json = String::from_utf8_lossy(&out.stdout);
    assert!(json.contains(r#""z\u202eb\u2028\nevil""#), "{json}");
    assert!(!json.contains('\u{202e}') && !json.contains('\u{2028}'));

    let cfg = dir.path().join("c.json");
    support::write_trusted(
        &cfg,
        r#"{"syslog": "stderr", "mlock": false, "oom_score_adj": 0,
            "backlog_warn_bytes": 1048576, "backlog_act_bytes": 4194304,
            "rules": [{"name": "note", "trigger": "backlog", "action": "log"}]}"#,
    );
    let out = run(&[
        "run",
        "--once",
        "--proc-root",
        r,
        "-c",
        cfg.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let line = err
        .lines()
        .find(|l| l.contains("event=action") && l.contains("rule=note"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(
        line.contains(r#"comm="z\xe2\x80\xaeb\xe2\x80\xa8\x0aevil""#),
        "{line}"
    );
}

/// An argument that is not UTF-8 is a usage error (exit 2, said on stderr), not a crash.
#[test]
fn a_non_utf8_argument_is_a_usage_error() {
    use std::os::unix::ffi::OsStrExt;
    let out = Command::new(BIN)
        .args(["report", "--proc-root"])
        .arg(std::ffi::OsStr::from_bytes(b"/tmp/\xff"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("argument 3 is not valid UTF-8"), "{err}");
}

/// Started with stdin, stdout and stderr closed (as a careless init may), the agent opens
/// /dev/null on them first, so no file or socket it opens later (a status file, the
/// watchdog) becomes its stderr and receives a copy of every audit line.
#[test]
fn closed_std_descriptors_are_opened_on_dev_null() {
    use std::os::unix::process::CommandExt;
    let d = TempDir::new("closed-fds");
    let cfg = d.path().join("c.json");
    support::write_trusted(&cfg, r#"{"syslog": "stderr", "interval_ms": 100}"#);
    let seed = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/seed");
    let mut cmd = Command::new(BIN);
    cmd.args(["run", "--dry-run", "--proc-root", seed, "-c"])
        .arg(&cfg);
    // SAFETY: close is async-signal-safe; the child closes its own 0, 1 and 2 before exec.
    unsafe {
        cmd.pre_exec(|| {
            for fd in 0..3 {
                libc::close(fd);
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    let pid = child.id();
    // Past exec and start-up (its config read and first polls).
    std::thread::sleep(std::time::Duration::from_millis(500));
    let links: Vec<_> = (0..3)
        .map(|fd| std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).ok())
        .collect();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let st = child.wait().unwrap();
    for (fd, l) in links.iter().enumerate() {
        assert_eq!(
            l.as_deref(),
            Some(Path::new("/dev/null")),
            "fd {fd} of the agent: {links:?}"
        );
    }
    assert_eq!(st.code(), Some(0));
}
