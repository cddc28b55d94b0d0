//! Issue 8 live tests: what a local user names or runs may not steer the root agent.
//! - placeholders: a process named `;id>/tmp/gNN;#` never gets its name run as shell code;
//! - owner identity: an unprivileged impostor with the target's name is never acted on.
//!
//! The daemons are examples/gw-testd started directly (no shell: the names are hostile), the
//! agent's audit lines go to its stderr (`"syslog": "stderr"`).

mod support;

use std::time::Duration;

use std::process::{Command, Stdio};
use support::*;

const MIB: u64 = 1 << 20;

/// gw-testd on a loopback UDP port with `extra` options; waits for its pidfile.
fn testd(dir: &TempDir, tag: &str, port: u16, extra: &[&str]) -> (ChildGuard, u32) {
    let pidfile = dir.join(&format!("{tag}.pid"));
    let child = Command::new(testd_bin())
        .args([
            "--udp",
            &port.to_string(),
            "--pidfile",
            pidfile.to_str().unwrap(),
        ])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn gw-testd");
    let g = ChildGuard(child);
    let pid = wait_for(Duration::from_millis(5_000), || {
        std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
    })
    .expect("gw-testd pidfile");
    (g, pid)
}

#[allow(dead_code)]
/// Real uid of `pid` (first Uid field of /proc/PID/status).
fn uid_of(pid: u32) -> Option<u32> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn config(dir: &TempDir, name: &str, rules: &str) -> String {
    let p = dir.join(name);
    support::write_trusted(
        &p,
        format!(
            "{{\n  \"interval_ms\": 200,\n  \"syslog\": \"stderr\",\n  \"backlog_warn_bytes\": {},\n  \"backlog_act_bytes\": {},\n  \"ghost_warn_kb\": 536870912,\n  \"ghost_act_kb\": 1073741824,\n  \"cooldown_s\": 30,\n  \"mlock\": false,\n  \"oom_score_adj\": 0,\n  \"rules\": {rules}\n}}\n",
            MIB,
            4 * MIB
        ),
    );
    p.display().to_string()
}

fn check(path: &str) -> (i32, String) {
    let out = Command::new(ghostwatch_bin())
        .args(["check", "-c", path])
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout),
    )
}

/// A path under /tmp the hostile name points at; removed on drop whatever happened.
struct Marker(String);

impl Drop for Marker {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn a_hostile_process_name_never_runs_as_shell_code() {
    if !require_root("a_hostile_process_name_never_runs_as_shell_code") {
        return;
    }
    let dir = TempDir::new("placeholder");
    let marker = Marker(format!("/tmp/g{:02}", std::process::id() % 100));
    let _ = std::fs::remove_file(&marker.0);
    // 14 bytes: fits the kernel's 15-byte comm.
    let hostile = format!(";id>{};#", marker.0);
    assert!(hostile.len() <= 15, "{hostile}");
    let out = dir.join("out");

    // 1. A template that splices the name into a shell script is refused by check and run.
    let spliced = config(
        &dir,
        "spliced.json",
        &format!(
            "[{{ \"name\": \"x\", \"trigger\": \"backlog\", \"comm\": \"{hostile}\", \"action\": \"exec\", \"argv\": [\"/bin/sh\", \"-c\", \"echo {{comm}} > {}\"] }}]",
            out.display()
        ),
    );
    let (code, msg) = check(&spliced);
    assert_eq!(code, 2, "{msg}");
    assert!(msg.contains("rules[0].argv[2]: {comm}"), "{msg}");
    for shell_as_script in [
        r#"["/bin/sh", "-c", "{comm}"]"#,
        r#"["/bin/sh", "{comm}"]"#,
        r#"["/usr/bin/{comm}"]"#,
    ] {
        let p = config(
            &dir,
            "script.json",
            &format!(
                "[{{ \"name\": \"x\", \"trigger\": \"backlog\", \"action\": \"exec\", \"argv\": {shell_as_script} }}]"
            ),
        );
        let (code, msg) = check(&p);
        assert_eq!(code, 2, "{shell_as_script}: {msg}");
    }

    // 2. The documented form passes the name as $1: the script sees it as inert text.
    let port = free_udp_port();
    let (_d, pid) = testd(&dir, "hostile", port, &["--comm", &hostile]);
    let cfg = config(
        &dir,
        "positional.json",
        &format!(
            "[{{ \"name\": \"note-owner\", \"trigger\": \"backlog\", \"comm\": \"{hostile}\", \"action\": \"exec\", \"argv\": [\"/bin/sh\", \"-c\", \"printf %s \\\"$1\\\" > {}\", \"sh\", \"{{comm}}\"] }}]",
            out.display()
        ),
    );
    let (code, msg) = check(&cfg);
    assert_eq!(code, 0, "{msg}");
    flood(port, 300, 60_000);
    assert!(udp_row(port).map(|r| r.rx_queue).unwrap_or(0) > 4 * MIB);
    let mut agent = AgentProc::start(&["-c", &cfg], dir.path());
    let got = wait_for(Duration::from_millis(15_000), || {
        std::fs::read(&out).ok().filter(|b| !b.is_empty())
    })
    .unwrap_or_else(|| panic!("the command never ran; agent: {}", agent.stderr()));
    assert_eq!(agent.stop(3_000), Some(0), "{}", agent.stderr());
    assert_eq!(
        got,
        hostile.as_bytes(),
        "the script saw the name as one argument"
    );
    assert!(
        !std::path::Path::new(&marker.0).exists(),
        "the process name ran as code: {} exists",
        marker.0
    );
    let err = agent.stderr();
    assert!(
        err.contains(&format!("pid={pid}")) && err.contains("rule=note-owner"),
        "{err}"
    );
}
