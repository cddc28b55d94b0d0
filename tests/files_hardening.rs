//! Issue 8, item 4: no file another user plants may freeze, redirect or fake what ghostwatch
//! reads and writes. A FIFO or /dev/zero in a `--proc-root` tree never hangs `report`; planted
//! symlinks, FIFOs and files at the status/metrics temp names are neither followed, waited on
//! nor reused; a status file that cannot be written is audited, never silent.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::TempDir;

fn mkfifo(p: &Path) {
    let _ = std::fs::remove_file(p);
    let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
    // SAFETY: valid NUL-terminated path.
    assert_eq!(
        unsafe { libc::mkfifo(c.as_ptr(), 0o666) },
        0,
        "{}",
        p.display()
    );
}

/// Runs ghostwatch with `args`; a run longer than 10 s is a hang, killed and failed.
fn bounded(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ghostwatch"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let end = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ghostwatch {args:?} hung");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn fifos_and_dev_zero_in_a_proc_root_never_hang_report() {
    let dir = TempDir::new("proc-fifo");
    let root = support::seed_copy(&dir);
    mkfifo(&root.join("net/udp"));
    mkfifo(&root.join("3218/status"));
    mkfifo(&root.join("3218/comm"));
    std::fs::remove_file(root.join("net/tcp")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", root.join("net/tcp")).unwrap();
    std::fs::remove_file(root.join("vmallocinfo")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", root.join("vmallocinfo")).unwrap();
    for json in [false, true] {
        let mut args = vec!["report", "--proc-root", root.to_str().unwrap()];
        if json {
            args.push("--json");
        }
        let out = bounded(&args);
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{text}");
        // The seed's raw6 socket (zebra's) is still found: only the planted files are skipped.
        assert!(text.contains("76755840"), "{text}");
    }
    // meminfo itself a FIFO: a clear error, exit 1, no hang.
    mkfifo(&root.join("meminfo"));
    let out = bounded(&["report", "--proc-root", root.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Not a regular file"), "{err}");
}

fn agent_config(dir: &TempDir, status: &Path, metrics: &Path) -> String {
    let p = dir.path().join("c.json");
    support::write_trusted(
        &p,
        format!(
            r#"{{"syslog": "stderr", "mlock": false, "oom_score_adj": 0, "status_file": "{}", "metrics_file": "{}"}}"#,
            status.display(),
            metrics.display()
        ),
    );
    p.display().to_string()
}

#[test]
fn planted_temp_files_are_not_followed_waited_on_or_reused() {
    let dir = TempDir::new("planted");
    let out_dir = dir.path().join("run");
    std::fs::create_dir(&out_dir).unwrap();
    let status = out_dir.join("status.json");
    let metrics = out_dir.join("metrics.prom");
    // A file only root may change, which a symlink at the temp name points to.
    let victim = dir.path().join("root-only");
    std::fs::write(&victim, "keep me\n").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::symlink(&victim, out_dir.join("status.json.tmp")).unwrap();
    mkfifo(&out_dir.join("metrics.prom.tmp"));
    let cfg = agent_config(&dir, &status, &metrics);
    let out = bounded(&["run", "--once", "-c", &cfg]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(std::fs::read(&victim).unwrap(), b"keep me\n");
    let st = std::fs::read_to_string(&status).unwrap();
    assert!(st.starts_with("{\"version\""), "{st}");
    assert!(
        std::fs::read_to_string(&metrics)
            .unwrap()
            .contains("ghostwatch_polls_total 1")
    );
    for p in [&status, &metrics] {
        let m = std::fs::symlink_metadata(p).unwrap();
        assert!(m.is_file());
        assert_eq!(m.permissions().mode() & 0o7777, 0o644, "{}", p.display());
    }
    assert!(!err.contains("cannot write"), "{err}");
}

#[test]
fn a_status_file_that_cannot_be_written_is_audited() {
    let dir = TempDir::new("unwritable");
    // A directory where the status file should be: rename(2) cannot replace it.
    let status = dir.path().join("status.json");
    std::fs::create_dir(&status).unwrap();
    let metrics = dir.path().join("metrics.prom");
    let cfg = agent_config(&dir, &status, &metrics);
    let out = bounded(&["run", "--once", "-c", &cfg]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let line = err
        .lines()
        .find(|l| l.contains("event=error") && l.contains("cannot write"))
        .unwrap_or_else(|| panic!("no error line: {err}"));
    assert!(line.contains(status.to_str().unwrap()), "{line}");
    assert!(line.contains("errors_total=1"), "{line}");
    // The metrics file, which can be written, still is.
    assert!(metrics.exists());
}
