//! Live end-to-end tests of `ghostwatch run` on the real kernel (root): a throwaway daemon
//! (examples/gw-testd) holds a UDP socket it never reads, managed by an init-style script;
//! the test floods it on loopback; the agent, configured through a real JSON file, must
//! remediate, and its audit lines are read back from a real rsyslogd started by the test.

mod e2e;
mod support;

use e2e::*;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use support::{INSTALL_RSYSLOG, Rsyslogd, require_program};

fn unix_target(r: &Rsyslogd) -> String {
    format!("unix:{}", r.sock.display())
}

fn udp_target(r: &Rsyslogd) -> String {
    format!("udp:127.0.0.1:{}", r.udp_port)
}

fn log_lines(r: &Rsyslogd) -> Vec<String> {
    std::fs::read_to_string(&r.out)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

const MIB: u64 = 1 << 20;

/// The backlog trigger is box-wide: an agent acts on the worst sockets of the whole box and
/// reports `recovered` only once no socket on it is over the warn level. Two flood tests at
/// once would each see the other's flood (one test's clamp agent drained the dry-run test's
/// socket, and its own never recovered), so they run one at a time.
static FLOOD: Mutex<()> = Mutex::new(());

fn one_flood_at_a_time() -> MutexGuard<'static, ()> {
    FLOOD.lock().unwrap_or_else(|e| e.into_inner())
}

/// A daemon comm of this test in this test process, so that no rule can match another test's
/// daemon (nor one of a concurrent run elsewhere on the box). At most 15 bytes.
fn testd_name(tag: &str) -> String {
    let name = format!("gw{tag}-{}", std::process::id() % 100_000);
    assert!(name.len() <= 15, "comm {name:?} too long");
    name
}

/// Writes a config file; `rules` is the JSON array text.
fn write_config(dir: &TempDir, name: &str, syslog: &str, extra: &str, rules: &str) -> String {
    let p = dir.path(name);
    let text = format!(
        "{{\n  \"interval_ms\": 200,\n  \"syslog\": \"{syslog}\",\n  \"backlog_warn_bytes\": {},\n  \"backlog_act_bytes\": {},\n  \"ghost_warn_kb\": 536870912,\n  \"ghost_act_kb\": 1073741824,\n  \"cooldown_s\": 30,\n  \"mlock\": false,\n  \"oom_score_adj\": 0,\n{extra}  \"rules\": {rules}\n}}\n",
        MIB,
        4 * MIB
    );
    support::write_trusted(&p, text);
    p.display().to_string()
}

fn json_argv(v: &[String]) -> String {
    let items: Vec<String> = v.iter().map(|s| format!("\"{s}\"")).collect();
    format!("[{}]", items.join(", "))
}

/// The audit lines (the message part) the syslog daemon received that contain every needle.
fn find_line(log: &Rsyslogd, needles: &[&str], ms: u64) -> Option<String> {
    wait_for(ms, || {
        log_lines(log)
            .into_iter()
            .find(|l| needles.iter().all(|n| l.contains(n)))
    })
}

/// "TABLE inode=N rx_queue=N" of every socket queueing more than `bytes` (backlog is box-wide:
/// a failing recovery names what else holds it up).
fn queues_over(bytes: u64) -> Vec<String> {
    let mut out = Vec::new();
    for t in ["udp", "udp6", "raw", "raw6", "tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/net/{t}")).unwrap_or_default();
        for l in text.lines().skip(1) {
            let f: Vec<&str> = l.split_whitespace().collect();
            let rx = f.get(4).and_then(|q| q.split_once(':'));
            let rx = rx.and_then(|(_, rx)| u64::from_str_radix(rx, 16).ok());
            if let (Some(rx), Some(ino)) = (rx.filter(|&rx| rx > bytes), f.get(9)) {
                out.push(format!("{t} inode={ino} rx_queue={rx}"));
            }
        }
    }
    out
}

fn kv<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|f| f.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

#[test]
fn restart_rule_restarts_the_owner_and_frees_the_backlog() {
    if !need_root("restart_rule_restarts_the_owner_and_frees_the_backlog")
        || !require_program("rsyslogd", INSTALL_RSYSLOG)
    {
        return;
    }
    let _flood = one_flood_at_a_time();
    let name = testd_name("restart");
    let dir = TempDir::new("restart");
    let log = Rsyslogd::start();
    let port = free_udp_port();
    let d = Daemon::start(&dir.0, &["--comm", &name, "--udp", &port.to_string()]);
    let pid0 = d.pid().expect("daemon pid");
    let inode0 = d.inode("udp").expect("daemon socket inode");
    let rules = format!(
        "[{{ \"name\": \"restart-testd\", \"trigger\": \"backlog\", \"comm\": \"{name}\", \"action\": \"restart\", \"argv\": {}, \"timeout_s\": 20 }}]",
        json_argv(&d.init_argv("restart"))
    );
    let cfg = write_config(&dir, "restart.json", &unix_target(&log), "", &rules);

    flood(port, 300, 60_000);
    let queued = udp_rx_queue(port).unwrap();
    assert!(queued > 4 * MIB, "flood queued only {queued} bytes");

    let mut agent = AgentProc::start(&["-c", &cfg], &dir.0);
    let line = find_line(
        &log,
        &["event=action", "rule=restart-testd", "result="],
        15_000,
    )
    .unwrap_or_else(|| {
        panic!(
            "no action line; syslog has: {:?}\nagent stderr: {}",
            log_lines(&log),
            agent.stderr()
        )
    });
    assert_eq!(kv(&line, "result"), Some("ok"), "{line}");
    assert_eq!(kv(&line, "action"), Some("restart"), "{line}");
    assert_eq!(kv(&line, "trigger"), Some("backlog"), "{line}");
    assert_eq!(kv(&line, "proto"), Some("udp"), "{line}");
    assert_eq!(
        kv(&line, "inode"),
        Some(inode0.to_string().as_str()),
        "{line}"
    );
    assert_eq!(kv(&line, "pid"), Some(pid0.to_string().as_str()), "{line}");
    assert_eq!(kv(&line, "comm"), Some(name.as_str()), "{line}");
    assert!(
        kv(&line, "duration_ms").is_some() && kv(&line, "seq").is_some(),
        "{line}"
    );

    let pid1 = d
        .wait_new_pid(pid0, 5_000)
        .expect("daemon came back with a new PID");
    assert_ne!(pid1, pid0);
    assert!(!alive(pid0), "old daemon still running");
    assert_eq!(
        udp_rx_queue(port),
        Some(0),
        "backlog not gone after restart"
    );
    find_line(&log, &["event=recovered", "trigger=backlog"], 5_000).unwrap_or_else(|| {
        panic!(
            "recovered line; sockets over the warn level on the box: {:?}",
            queues_over(MIB)
        )
    });
    assert_eq!(
        agent.stop(2_000),
        Some(0),
        "agent did not exit 0 on SIGTERM: {}",
        agent.stderr()
    );
}

#[test]
fn clamp_and_drain_keep_the_pid_and_cap_the_socket() {
    if !need_root("clamp_and_drain_keep_the_pid_and_cap_the_socket")
        || !require_program("rsyslogd", INSTALL_RSYSLOG)
    {
        return;
    }
    let _flood = one_flood_at_a_time();
    let name = testd_name("clamp");
    let dir = TempDir::new("clamp");
    let log = Rsyslogd::start();
    let port = free_udp_port();
    let d = Daemon::start(&dir.0, &["--comm", &name, "--udp", &port.to_string()]);
    let pid0 = d.pid().unwrap();
    let rules = format!(
        r#"[
    {{ "name": "clamp-testd", "trigger": "backlog", "comm": "{name}", "action": "clamp", "rcvbuf": 65536 }},
    {{ "name": "drain-testd", "trigger": "backlog", "comm": "{name}", "action": "drain" }}
  ]"#
    );
    let cfg = write_config(&dir, "clamp.json", &unix_target(&log), "", &rules);
    flood(port, 300, 60_000);
    assert!(udp_rx_queue(port).unwrap() > 4 * MIB);

    let mut agent = AgentProc::start(&["-c", &cfg], &dir.0);
    let clamp =
        find_line(&log, &["event=action", "rule=clamp-testd"], 15_000).unwrap_or_else(|| {
            panic!(
                "no clamp line; syslog: {:?}\nstderr: {}",
                log_lines(&log),
                agent.stderr()
            )
        });
    assert_eq!(kv(&clamp, "result"), Some("ok"), "{clamp}");
    let drain = find_line(&log, &["event=action", "rule=drain-testd"], 5_000).expect("drain line");
    assert_eq!(kv(&drain, "result"), Some("ok"), "{drain}");
    find_line(&log, &["event=recovered", "trigger=backlog"], 5_000).unwrap_or_else(|| {
        panic!(
            "recovered line; sockets over the warn level on the box: {:?}",
            queues_over(MIB)
        )
    });

    assert_eq!(
        d.pid(),
        Some(pid0),
        "clamp/drain must not restart the daemon"
    );
    assert!(alive(pid0));
    let after = udp_rx_queue(port).unwrap();
    assert!(after < MIB, "backlog still {after} bytes after drain");
    assert_eq!(agent.stop(2_000), Some(0));

    // The socket stays capped: a new flood queues no more than the clamped buffer (the kernel
    // doubles SO_RCVBUF for bookkeeping and admits one datagram past the limit).
    flood(port, 300, 60_000);
    let refill = udp_rx_queue(port).unwrap();
    assert!(
        refill <= 2 * 65_536 + 70_000 * 2,
        "clamped socket queued {refill} bytes"
    );
}

#[test]
fn dry_run_audits_and_touches_nothing() {
    if !need_root("dry_run_audits_and_touches_nothing")
        || !require_program("rsyslogd", INSTALL_RSYSLOG)
    {
        return;
    }
    let _flood = one_flood_at_a_time();
    let name = testd_name("dry");
    let dir = TempDir::new("dry");
    let log = Rsyslogd::start();
    let port = free_udp_port();
    let d = Daemon::start(&dir.0, &["--comm", &name, "--udp", &port.to_string()]);
    let pid0 = d.pid().unwrap();
    let rules = format!(
        "[{{ \"name\": \"clamp-testd\", \"trigger\": \"backlog\", \"comm\": \"{name}\", \"action\": \"clamp\", \"rcvbuf\": 65536 }},\n    {{ \"name\": \"restart-testd\", \"trigger\": \"backlog\", \"comm\": \"{name}\", \"action\": \"restart\", \"argv\": {} }}]",
        json_argv(&d.init_argv("restart"))
    );
    let cfg = write_config(
        &dir,
        "dry.json",
        &unix_target(&log),
        "  \"dry_run\": true,\n",
        &rules,
    );
    flood(port, 300, 60_000);
    let before = udp_rx_queue(port).unwrap();

    let mut agent = AgentProc::start(&["-c", &cfg], &dir.0);
    let c = find_line(&log, &["event=action", "rule=clamp-testd"], 15_000).expect("clamp line");
    let r = find_line(&log, &["event=action", "rule=restart-testd"], 5_000).expect("restart line");
    assert_eq!(kv(&c, "result"), Some("dry-run"), "{c}");
    assert_eq!(kv(&r, "result"), Some("dry-run"), "{r}");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(agent.stop(2_000), Some(0));
    assert_eq!(d.pid(), Some(pid0));
    assert!(alive(pid0));
    assert!(
        udp_rx_queue(port).unwrap() >= before,
        "dry run changed the queue"
    );
}

#[test]
fn audit_over_udp_to_a_loopback_collector() {
    if !need_root("audit_over_udp_to_a_loopback_collector")
        || !require_program("rsyslogd", INSTALL_RSYSLOG)
    {
        return;
    }
    let dir = TempDir::new("udp");
    let log = Rsyslogd::start();
    // ghost_warn_kb 1: any box has more Ghost than that, so one poll yields a threshold line.
    let cfg = dir.path("udp.json");
    support::write_trusted(
        &cfg,
        format!(
            "{{\"syslog\": \"{}\", \"ghost_warn_kb\": 1, \"ghost_act_kb\": 2, \"mlock\": false, \"oom_score_adj\": 0, \"rules\": [{{\"name\": \"note\", \"trigger\": \"ghost\", \"action\": \"log\"}}]}}",
            udp_target(&log)
        ),
    );
    let out = std::process::Command::new(ghostwatch_bin())
        .args(["run", "--once", "-c", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let l = find_line(&log, &["event=action", "rule=note", "result=ok"], 5_000)
        .unwrap_or_else(|| panic!("{:?}", log_lines(&log)));
    assert!(kv(&l, "ghost_kb").is_some(), "{l}");
    find_line(&log, &["event=threshold", "trigger=ghost"], 1_000).expect("threshold line");
}

#[test]
fn sighup_reload_keeps_old_config_on_error_and_sigterm_exits_zero() {
    if !need_root("sighup_reload_keeps_old_config_on_error_and_sigterm_exits_zero")
        || !require_program("rsyslogd", INSTALL_RSYSLOG)
    {
        return;
    }
    let dir = TempDir::new("hup");
    let log = Rsyslogd::start();
    let status = dir.path("status.json");
    let extra = format!(
        "  \"status_file\": \"{}\",\n  \"interval_ms\": 2000,\n",
        status.display()
    );
    // interval_ms appears twice if written through write_config; build this one by hand.
    let text = format!(
        "{{\"syslog\": \"{}\", \"interval_ms\": 2000, \"mlock\": false, \"oom_score_adj\": 0, \"status_file\": \"{}\"}}",
        unix_target(&log),
        status.display()
    );
    let _ = extra;
    let cfg = dir.path("hup.json");
    support::write_trusted(&cfg, &text);
    let mut agent = AgentProc::start(&["-c", cfg.to_str().unwrap()], &dir.0);
    wait_for(5_000, || {
        std::fs::read_to_string(&status)
            .ok()
            .filter(|s| s.contains("\"cycles\":"))
    })
    .expect("status file written");

    support::write_trusted(&cfg, "{\"interval_ms\": \"fast\"}");
    // SAFETY: signalling our own child.
    unsafe { libc::kill(agent.pid() as i32, libc::SIGHUP) };
    let e = find_line(&log, &["event=error", "reload"], 5_000)
        .unwrap_or_else(|| panic!("{:?}", log_lines(&log)));
    assert!(e.contains("hup.json:1:"), "error names FILE:LINE:COL: {e}");
    assert!(alive(agent.pid()), "agent died on a bad reload");

    support::write_trusted(&cfg, &text);
    unsafe { libc::kill(agent.pid() as i32, libc::SIGHUP) };
    find_line(&log, &["event=reload", "result=ok"], 5_000).expect("reload ok line");

    // SIGTERM ends the 2 s sleep at once: exit 0 well within one interval.
    let t = std::time::Instant::now();
    assert_eq!(agent.stop(2_000), Some(0));
    assert!(
        t.elapsed() < Duration::from_millis(1_000),
        "took {:?}",
        t.elapsed()
    );
    let st = std::fs::read_to_string(&status).unwrap();
    assert!(st.starts_with('{') && st.trim_end().ends_with('}'), "{st}");
}

#[test]
fn run_refuses_a_bad_config_with_its_position() {
    let dir = TempDir::new("bad");
    let cfg = dir.path("bad.json");
    support::write_trusted(&cfg, "{\n  \"interval_ms\": 1000,\n  \"trigerr\": 1\n}\n");
    let out = std::process::Command::new(ghostwatch_bin())
        .args(["run", "--once", "-c", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with(&format!("{}:3:3: ", cfg.display())),
        "{err}"
    );
}
