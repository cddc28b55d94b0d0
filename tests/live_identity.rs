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

/// The live tests here all run root daemons and agents that act on whatever matches on the
/// whole box: one at a time, or one test's agent acts on another's daemons.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

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
    let _serial = serial();
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
    assert!(udp_rx_queue(port).unwrap_or(0) > 4 * MIB);
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

/// Every audit line of `action` (e.g. "clamp") in the agent's stderr, as its `pid=` values.
fn action_pids(err: &str, rule: &str) -> Vec<String> {
    err.lines()
        .filter(|l| l.contains("event=action") && l.contains(&format!("rule={rule} ")))
        .filter_map(|l| {
            l.split_whitespace()
                .find_map(|f| f.strip_prefix("pid="))
                .map(str::to_string)
        })
        .collect()
}

#[test]
fn an_unprivileged_impostor_with_the_same_name_is_never_acted_on() {
    let _serial = serial();
    if !require_root("an_unprivileged_impostor_with_the_same_name_is_never_acted_on") {
        return;
    }
    let dir = TempDir::new("impostor");
    // The impostor: uid nobody, named like the target, with the larger flooded socket.
    let (p_imp, p_real) = (free_udp_port(), free_udp_port());
    let (mut imp, imp_pid) = testd(
        &dir,
        "imp",
        p_imp,
        &["--comm", "gw-victim", "--setuid", "65534"],
    );
    wait_for(Duration::from_millis(5_000), || {
        (uid_of(imp_pid) == Some(65534)).then_some(())
    })
    .expect("impostor dropped to nobody");
    // The real daemon: root, the same name, a smaller (but over the act level) backlog.
    let (mut real, real_pid) = testd(&dir, "real", p_real, &["--comm", "gw-victim"]);
    flood(p_imp, 400, 60_000);
    flood(p_real, 150, 60_000);
    let imp_q = udp_rx_queue(p_imp).unwrap_or(0);
    assert!(
        imp_q > udp_rx_queue(p_real).unwrap_or(0) && imp_q > 8 * MIB,
        "{imp_q}"
    );

    // Rules written the way docs/CONFIG.md used to teach: comm only (now: uid 0 owners only).
    let marker = dir.join("restarted");
    let rules = format!(
        "[{{ \"name\": \"clamp\", \"trigger\": \"backlog\", \"comm\": \"gw-victim\", \"action\": \"clamp\", \"rcvbuf\": 65536 }},
          {{ \"name\": \"drain\", \"trigger\": \"backlog\", \"comm\": \"gw-victim\", \"action\": \"drain\" }},
          {{ \"name\": \"restart\", \"trigger\": \"backlog\", \"comm\": \"gw-victim\", \"action\": \"restart\", \"argv\": [\"/bin/sh\", \"-c\", \"echo $1 >> {}\", \"sh\", \"{{pid}}\"] }},
          {{ \"name\": \"kill\", \"trigger\": \"backlog\", \"comm\": \"gw-victim\", \"action\": \"kill\" }}]",
        marker.display()
    );
    let cfg = config(&dir, "impostor.json", &rules);
    let mut agent = AgentProc::start(&["-c", &cfg], dir.path());
    wait_for(Duration::from_millis(15_000), || {
        (!real.is_running()).then_some(())
    })
    .unwrap_or_else(|| panic!("the real daemon was not killed; agent: {}", agent.stderr()));
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(agent.stop(3_000), Some(0), "{}", agent.stderr());
    let err = agent.stderr();

    let want = vec![real_pid.to_string()];
    for rule in ["clamp", "drain", "kill"] {
        let pids = action_pids(&err, rule);
        assert!(!pids.is_empty(), "no {rule} line: {err}");
        assert!(
            pids.iter().all(|p| *p == want[0]),
            "{rule} hit {pids:?}: {err}"
        );
    }
    let restarted = std::fs::read_to_string(&marker).unwrap_or_default();
    assert_eq!(
        restarted.split_whitespace().collect::<Vec<_>>(),
        want,
        "restart ran for"
    );
    assert!(imp.is_running(), "the impostor was killed");
    assert!(
        udp_rx_queue(p_imp).unwrap_or(0) >= imp_q,
        "the impostor's socket was drained"
    );
    // The threshold line may name the impostor (it does own the worst socket); no action may.
    assert!(
        !err.lines()
            .any(|l| l.contains("event=action") && l.contains(&format!("pid={imp_pid} "))),
        "an action aimed at the impostor: {err}"
    );
}

#[test]
fn an_exe_rule_is_not_fooled_by_another_binary_at_the_same_path() {
    let _serial = serial();
    if !require_root("an_exe_rule_is_not_fooled_by_another_binary_at_the_same_path")
        || !support::require_program("unshare", "apt-get install -y util-linux")
    {
        return;
    }
    let dir = TempDir::new("exe-id");
    let orig = testd_bin();
    let copy = dir.join("gw-testd-copy");
    std::fs::copy(&orig, &copy).unwrap();
    // The impostor runs its own copy *at the real path* inside its own mount namespace, so
    // /proc/PID/exe reads the same text; only device+inode tell them apart.
    let (p_imp, p_real) = (free_udp_port(), free_udp_port());
    let imp_pidfile = dir.join("imp.pid");
    let script = format!(
        "mount --bind {} {} && exec {} --udp {p_imp} --comm gw-victim --pidfile {}",
        copy.display(),
        orig.display(),
        orig.display(),
        imp_pidfile.display()
    );
    let child = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .stdin(Stdio::null())
        .spawn()
        .expect("unshare");
    let _imp = ChildGuard(child);
    let imp_pid: u32 = wait_for(Duration::from_millis(5_000), || {
        std::fs::read_to_string(&imp_pidfile)
            .ok()
            .and_then(|s| s.trim().parse().ok())
    })
    .expect("impostor pidfile");
    let (mut real, real_pid) = testd(&dir, "real", p_real, &["--comm", "gw-victim"]);
    assert_eq!(
        std::fs::read_link(format!("/proc/{imp_pid}/exe")).ok(),
        std::fs::read_link(format!("/proc/{real_pid}/exe")).ok(),
        "the impostor's exe must read like the real one for this test to mean anything"
    );
    flood(p_imp, 400, 60_000);
    flood(p_real, 150, 60_000);
    let rules = format!(
        "[{{ \"name\": \"kill\", \"trigger\": \"backlog\", \"comm\": \"gw-victim\", \"exe\": \"{}\", \"uid\": 0, \"action\": \"kill\" }}]",
        orig.display()
    );
    let cfg = config(&dir, "exe.json", &rules);
    let (code, msg) = check(&cfg);
    assert_eq!(code, 0, "{msg}");
    let mut agent = AgentProc::start(&["-c", &cfg], dir.path());
    wait_for(Duration::from_millis(15_000), || {
        (!real.is_running()).then_some(())
    })
    .unwrap_or_else(|| panic!("the real daemon was not killed; agent: {}", agent.stderr()));
    assert_eq!(agent.stop(3_000), Some(0), "{}", agent.stderr());
    let err = agent.stderr();
    assert!(alive(imp_pid), "the impostor was killed: {err}");
    assert_eq!(
        action_pids(&err, "kill"),
        vec![real_pid.to_string()],
        "{err}"
    );
}

#[test]
fn check_explains_rules_an_impostor_could_match() {
    let dir = TempDir::new("reach");
    let exe = testd_bin();
    let cases = [
        // (identity keys, expected warning or "" for none)
        ("\"comm\": \"zebra\"".to_string(), ""),
        (
            format!("\"exe\": \"{}\"", exe.display()),
            "matches a process of ANY user",
        ),
        (
            "\"comm\": \"zebra\", \"uid\": 102".to_string(),
            "matches any process of uid 102",
        ),
        (format!("\"exe\": \"{}\", \"uid\": 102", exe.display()), ""),
        (
            format!("\"exe\": \"{}\", \"user\": \"root\"", exe.display()),
            "",
        ),
    ];
    for (keys, want) in cases {
        let cfg = config(
            &dir,
            "reach.json",
            &format!(
                "[{{ \"name\": \"k\", \"trigger\": \"backlog\", {keys}, \"action\": \"kill\" }}]"
            ),
        );
        let out = Command::new(ghostwatch_bin())
            .args(["check", "-c", &cfg])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{keys}: {err}");
        if want.is_empty() {
            assert!(err.is_empty(), "{keys}: {err}");
        } else {
            assert!(
                err.starts_with(&format!("{cfg}: warning: rules[0] \"k\" (kill): "))
                    && err.contains(want),
                "{keys}: {err}"
            );
        }
    }
    // Both keys, or an unknown user, are errors.
    for (keys, want) in [
        (
            "\"comm\": \"z\", \"uid\": 1, \"user\": \"root\"",
            "has both \"uid\" and \"user\"",
        ),
        (
            "\"comm\": \"z\", \"user\": \"no-such-user-gw\"",
            "unknown user \"no-such-user-gw\"",
        ),
    ] {
        let cfg = config(
            &dir,
            "bad.json",
            &format!(
                "[{{ \"name\": \"k\", \"trigger\": \"backlog\", {keys}, \"action\": \"kill\" }}]"
            ),
        );
        let (code, msg) = check(&cfg);
        assert_eq!(code, 2, "{msg}");
        assert!(msg.contains(want), "{msg}");
    }
}
