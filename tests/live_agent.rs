//! Live end-to-end tests of `ghostwatch run` on the real kernel (root): a throwaway daemon
//! (examples/gw-testd) holds a UDP socket it never reads, managed by an init-style script;
//! the test floods it on loopback; the agent, configured through a real JSON file, must
//! remediate, and its audit lines are read back from a real rsyslogd started by the test.

mod support;

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use support::*;

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
    let p = dir.join(name);
    // `extra` may set its own cooldown (keys must not repeat).
    let cooldown = if extra.contains("\"cooldown_s\"") {
        ""
    } else {
        "  \"cooldown_s\": 30,\n"
    };
    let text = format!(
        "{{\n  \"interval_ms\": 200,\n  \"syslog\": \"{syslog}\",\n  \"backlog_warn_bytes\": {},\n  \"backlog_act_bytes\": {},\n  \"ghost_warn_kb\": 536870912,\n  \"ghost_act_kb\": 1073741824,\n{cooldown}  \"mlock\": false,\n  \"oom_score_adj\": 0,\n{extra}  \"rules\": {rules}\n}}\n",
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
    wait_for(Duration::from_millis(ms), || {
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

/// Root and a syslog daemon to read the audit back from: every agent test needs both.
fn ready(test: &str) -> bool {
    require_root(test) && require_program("rsyslogd", INSTALL_RSYSLOG)
}

/// What every flood test sets up, in this order: the flood lock, a private rsyslogd, gw-testd
/// (with a comm of its own) behind its init script, the agent's config with the rules the test
/// builds from that comm and daemon, a flood of 300 x 60 000 bytes, and the agent. Fields drop
/// in order: agent first, the lock last.
struct FloodCase {
    agent: AgentProc,
    d: Daemon,
    log: Rsyslogd,
    _dir: TempDir,
    name: String,
    port: u16,
    pid0: u32,
    inode0: u64,
    /// rx_queue right after the flood, before the agent started.
    queued: u64,
    _flood: MutexGuard<'static, ()>,
}

impl FloodCase {
    fn start(tag: &str, extra: &str, rules: impl FnOnce(&str, &Daemon) -> String) -> FloodCase {
        FloodCase::start_under(&[], tag, extra, rules)
    }

    /// `start` with the agent run by `under` (see `AgentProc::start_under`).
    fn start_under(
        under: &[&str],
        tag: &str,
        extra: &str,
        rules: impl FnOnce(&str, &Daemon) -> String,
    ) -> FloodCase {
        let flood_lock = one_flood_at_a_time();
        let name = testd_name(tag);
        let dir = TempDir::new(tag);
        let log = Rsyslogd::start();
        let port = free_udp_port();
        let d = Daemon::start(dir.path(), &["--comm", &name, "--udp", &port.to_string()]);
        let pid0 = d.pid().expect("daemon pid");
        let inode0 = d.inode("udp").expect("daemon socket inode");
        let rules = rules(&name, &d);
        let cfg = write_config(
            &dir,
            &format!("{tag}.json"),
            &unix_target(&log),
            extra,
            &rules,
        );
        flood(port, 300, 60_000);
        let queued = udp_rx_queue(port).unwrap();
        let agent = AgentProc::start_under(under, &["-c", &cfg], dir.path());
        FloodCase {
            agent,
            d,
            log,
            _dir: dir,
            name,
            port,
            pid0,
            inode0,
            queued,
            _flood: flood_lock,
        }
    }

    fn rx_queue(&self) -> Option<u64> {
        udp_rx_queue(self.port)
    }

    /// Waits for the backlog's recovered line; on failure names what else holds it up.
    fn expect_recovered(&self) {
        find_line(&self.log, &["event=recovered", "trigger=backlog"], 5_000).unwrap_or_else(|| {
            panic!(
                "recovered line; sockets over the warn level here: {:?}; syslog: {:#?}",
                queues_over(MIB),
                log_lines(&self.log)
            )
        });
    }
}

#[test]
fn restart_rule_restarts_the_owner_and_frees_the_backlog() {
    if !ready("restart_rule_restarts_the_owner_and_frees_the_backlog") {
        return;
    }
    let mut c = FloodCase::start("restart", "", |name, d| {
        format!(
            "[{{ \"name\": \"restart-testd\", \"trigger\": \"backlog\", \"comm\": \"{name}\", \"action\": \"restart\", \"argv\": {}, \"timeout_s\": 20 }}]",
            json_argv(&d.init_argv("restart"))
        )
    });
    let (queued, pid0, inode0) = (c.queued, c.pid0, c.inode0);
    assert!(queued > 4 * MIB, "flood queued only {queued} bytes");

    // The line about the daemon's socket: a bigger foreign backlog on a shared box (another
    // test's flood) brings the incident to act first, and the rule's honest skip for it
    // ("no suspect socket owned by a matching process") names that socket, not ours.
    let ours = format!(" inode={inode0} ");
    let line = find_line(
        &c.log,
        &["event=action", "rule=restart-testd", "result=", &ours],
        15_000,
    )
    .unwrap_or_else(|| {
        panic!(
            "no action line; syslog has: {:?}\nagent stderr: {}",
            log_lines(&c.log),
            c.agent.stderr()
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
    assert_eq!(kv(&line, "comm"), Some(c.name.as_str()), "{line}");
    assert!(
        kv(&line, "duration_ms").is_some() && kv(&line, "seq").is_some(),
        "{line}"
    );

    let pid1 =
        c.d.wait_new_pid(pid0, 5_000)
            .expect("daemon came back with a new PID");
    assert_ne!(pid1, pid0);
    assert!(!alive(pid0), "old daemon still running");
    assert_eq!(c.rx_queue(), Some(0), "backlog not gone after restart");
    c.expect_recovered();
    assert_eq!(
        c.agent.stop(2_000),
        Some(0),
        "agent did not exit 0 on SIGTERM: {}",
        c.agent.stderr()
    );
}

#[test]
fn clamp_and_drain_keep_the_pid_and_cap_the_socket() {
    if !ready("clamp_and_drain_keep_the_pid_and_cap_the_socket") {
        return;
    }
    let mut c = FloodCase::start("clamp", "", |name, _| {
        format!(
            r#"[
    {{ "name": "clamp-testd", "trigger": "backlog", "comm": "{name}", "action": "clamp", "rcvbuf": 65536 }},
    {{ "name": "drain-testd", "trigger": "backlog", "comm": "{name}", "action": "drain" }}
  ]"#
        )
    });
    let pid0 = c.pid0;
    assert!(c.queued > 4 * MIB);
    // Lines about the daemon's socket (see restart_rule_restarts_the_owner_and_frees_the_backlog).
    let ours = format!(" inode={} ", c.inode0);

    let clamp = find_line(&c.log, &["event=action", "rule=clamp-testd", &ours], 15_000)
        .unwrap_or_else(|| {
            panic!(
                "no clamp line; syslog: {:?}\nstderr: {}",
                log_lines(&c.log),
                c.agent.stderr()
            )
        });
    assert_eq!(kv(&clamp, "result"), Some("ok"), "{clamp}");
    let drain =
        find_line(&c.log, &["event=action", "rule=drain-testd", &ours], 5_000).expect("drain line");
    assert_eq!(kv(&drain, "result"), Some("ok"), "{drain}");
    c.expect_recovered();

    assert_eq!(
        c.d.pid(),
        Some(pid0),
        "clamp/drain must not restart the daemon"
    );
    assert!(alive(pid0));
    let after = c.rx_queue().unwrap();
    assert!(after < MIB, "backlog still {after} bytes after drain");
    assert_eq!(c.agent.stop(2_000), Some(0));

    // The socket stays capped: a new flood queues no more than the clamped buffer (the kernel
    // doubles SO_RCVBUF for bookkeeping and admits one datagram past the limit).
    flood(c.port, 300, 60_000);
    let refill = c.rx_queue().unwrap();
    assert!(
        refill <= 2 * 65_536 + 70_000 * 2,
        "clamped socket queued {refill} bytes"
    );
}

/// Issue 17.2: every action is verified, and a rung that failed or freed nothing hands over at
/// once. Ladder: restart (a script that fails) -> clamp (escalate_after_s 60; caps the queue but
/// frees nothing) -> drain (60). Without results, clamp would wait 60 s and drain 60 s more;
/// here clamp acts one interval after the failed restart, drain one interval after clamp's
/// `event=ineffective` (verify_s 1), and the drain is `event=verified` with the freed bytes.
#[test]
fn failed_and_ineffective_rungs_hand_over_at_once_and_the_drain_is_verified() {
    if !ready("failed_and_ineffective_rungs_hand_over_at_once_and_the_drain_is_verified") {
        return;
    }
    let c = FloodCase::start("verify", "  \"verify_s\": 1,\n", |name, _| {
        format!(
            r#"[
    {{ "name": "restart-testd", "trigger": "backlog", "comm": "{name}", "action": "restart", "argv": ["/bin/sh", "-c", "exit 1"] }},
    {{ "name": "clamp-testd", "trigger": "backlog", "comm": "{name}", "action": "clamp", "rcvbuf": 65536, "escalate_after_s": 60 }},
    {{ "name": "drain-testd", "trigger": "backlog", "comm": "{name}", "action": "drain", "escalate_after_s": 60 }}
  ]"#
        )
    });
    assert!(c.queued > 4 * MIB, "flood queued only {} bytes", c.queued);
    let ours = format!(" inode={} ", c.inode0);
    // When each line was first seen (polled every 5 ms): the agent's own spacing of them.
    let t0 = std::time::Instant::now();
    let mut seen: Vec<(&str, Option<(Duration, String)>)> = vec![
        ("rule=restart-testd", None),
        ("rule=clamp-testd", None),
        ("event=ineffective", None),
        ("rule=drain-testd", None),
        ("event=verified", None),
    ];
    while t0.elapsed() < Duration::from_secs(20) && seen.iter().any(|(_, s)| s.is_none()) {
        let lines = log_lines(&c.log);
        for (needle, slot) in seen.iter_mut().filter(|(_, s)| s.is_none()) {
            let want_action = needle.starts_with("rule=");
            *slot = lines
                .iter()
                .find(|l| {
                    l.contains(*needle)
                        && l.contains(&ours)
                        && (!want_action || l.contains("event=action"))
                })
                .map(|l| (t0.elapsed(), l.clone()));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let all = log_lines(&c.log);
    let get = |i: usize| {
        seen[i].1.clone().unwrap_or_else(|| {
            panic!(
                "no {} line; syslog: {all:#?}\nstderr: {}",
                seen[i].0,
                c.agent.stderr()
            )
        })
    };
    let (t_restart, restart) = get(0);
    let (t_clamp, clamp) = get(1);
    let (t_ineff, ineffective) = get(2);
    let (t_drain, drain) = get(3);
    let (t_verified, verified) = get(4);
    assert_eq!(kv(&restart, "result"), Some("failed"), "{restart}");
    assert_eq!(kv(&clamp, "result"), Some("ok"), "{clamp}");
    assert_eq!(
        kv(&ineffective, "rule"),
        Some("clamp-testd"),
        "{ineffective}"
    );
    assert!(kv(&ineffective, "reason").is_some(), "{ineffective}");
    assert_eq!(kv(&drain, "result"), Some("ok"), "{drain}");
    assert_eq!(kv(&verified, "rule"), Some("drain-testd"), "{verified}");
    let freed_kb: u64 = kv(&verified, "freed_kb").unwrap().parse().unwrap();
    let before: u64 = kv(&verified, "queue_before").unwrap().parse().unwrap();
    let after: u64 = kv(&verified, "queue_after").unwrap().parse().unwrap();
    assert!(before > 4 * MIB && after < MIB, "{verified}");
    assert_eq!(freed_kb, (before - after).div_ceil(1024), "{verified}");
    // One interval (200 ms) plus the slack of a shared box, never escalate_after_s (60 s).
    let clamp_after_restart = t_clamp.saturating_sub(t_restart);
    let drain_after_ineffective = t_drain.saturating_sub(t_ineff);
    println!(
        "restart failed -> clamp: {} ms; clamp ineffective -> drain: {} ms; drain -> verified: {} ms; freed_kb={freed_kb} queue_before={before} queue_after={after}",
        clamp_after_restart.as_millis(),
        drain_after_ineffective.as_millis(),
        t_verified.saturating_sub(t_drain).as_millis()
    );
    assert!(
        clamp_after_restart < Duration::from_secs(2),
        "{clamp_after_restart:?}"
    );
    assert!(
        drain_after_ineffective < Duration::from_secs(2),
        "{drain_after_ineffective:?}"
    );
    // Each action line is followed by its snapshot line, which names it.
    for a in [&restart, &clamp, &drain] {
        let seq = kv(a, "seq").unwrap();
        let snap = all
            .iter()
            .find(|l| l.contains("event=snapshot") && l.contains(&format!("action_seq={seq} ")))
            .unwrap_or_else(|| panic!("no snapshot line for {a}; syslog: {all:#?}"));
        assert!(kv(snap, "top1_rx_queue").is_some(), "{snap}");
        assert!(kv(snap, "ghost_kb").is_some(), "{snap}");
    }
    c.expect_recovered();
    // The incident as syslog has it, threshold to recovery (README shows one such run).
    for l in log_lines(&c.log) {
        if l.contains(&c.name) || l.contains("trigger=backlog") {
            println!("{l}");
        }
    }
}

/// Issue 16's defect, on an emulated Linux 5.4 (gw-oldkernel: pidfd_getfd answers ENOSYS):
/// clamp -> drain (escalate_after_s 3) -> restart (10), cooldown 5 s, the default budget of 6.
/// Clamp and drain cannot work here: each is audited failed once, costs no budget, and hands
/// over at once, so the restart frees the queue within a few polls (before: clamp and drain
/// retried every cooldown until the budget was gone and the restart was skipped).
#[test]
fn unsupported_rungs_hand_over_to_the_restart_on_5_4() {
    if !ready("unsupported_rungs_hand_over_to_the_restart_on_5_4") {
        return;
    }
    let Some(old) = oldkernel_bin() else {
        println!("SKIPPED: examples/gw-oldkernel (issue 16's kernel emulation) is not built");
        return;
    };
    let old = old.display().to_string();
    let under = [old.as_str(), "5.4", "--"];
    let extra = "  \"cooldown_s\": 5,\n  \"max_actions_per_hour\": 6,\n";
    let c = FloodCase::start_under(&under, "old54", extra, |name, d| {
        format!(
            r#"[
    {{ "name": "clamp-testd", "trigger": "backlog", "comm": "{name}", "action": "clamp", "rcvbuf": 65536 }},
    {{ "name": "drain-testd", "trigger": "backlog", "comm": "{name}", "action": "drain", "escalate_after_s": 3 }},
    {{ "name": "restart-testd", "trigger": "backlog", "comm": "{name}", "action": "restart", "escalate_after_s": 10, "argv": {} }}
  ]"#,
            json_argv(&d.init_argv("restart"))
        )
    });
    assert!(c.queued > 4 * MIB, "flood queued only {} bytes", c.queued);
    let ours = format!(" inode={} ", c.inode0);
    let t0 = std::time::Instant::now();
    let restart = find_line(
        &c.log,
        &["event=action", "rule=restart-testd", &ours],
        15_000,
    )
    .unwrap_or_else(|| {
        panic!(
            "no restart line; syslog: {:#?}\nstderr: {}",
            log_lines(&c.log),
            c.agent.stderr()
        )
    });
    let took = t0.elapsed();
    assert_eq!(kv(&restart, "result"), Some("ok"), "{restart}");
    let verified = find_line(&c.log, &["event=verified", "rule=restart-testd"], 5_000)
        .unwrap_or_else(|| panic!("no verified line; syslog: {:#?}", log_lines(&c.log)));
    c.expect_recovered();
    let lines = log_lines(&c.log);
    for rule in ["clamp-testd", "drain-testd"] {
        let tried: Vec<&String> = lines
            .iter()
            .filter(|l| l.contains("event=action") && l.contains(&format!("rule={rule} ")))
            .collect();
        assert_eq!(tried.len(), 1, "{rule} tried once: {tried:#?}");
        assert_eq!(kv(tried[0], "result"), Some("failed"), "{}", tried[0]);
        assert!(
            tried[0].contains("pidfd_getfd needs Linux >= 5.6"),
            "{}",
            tried[0]
        );
    }
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("max_actions_per_hour reached")),
        "{lines:#?}"
    );
    println!(
        "5.4: restart line {} ms after the agent started (interval 200 ms, command included); {verified}",
        took.as_millis()
    );
}

#[test]
fn dry_run_audits_and_touches_nothing() {
    if !ready("dry_run_audits_and_touches_nothing") {
        return;
    }
    let mut c = FloodCase::start("dry", "  \"dry_run\": true,\n", |name, d| {
        format!(
            "[{{ \"name\": \"clamp-testd\", \"trigger\": \"backlog\", \"comm\": \"{name}\", \"action\": \"clamp\", \"rcvbuf\": 65536 }},\n    {{ \"name\": \"restart-testd\", \"trigger\": \"backlog\", \"comm\": \"{name}\", \"action\": \"restart\", \"argv\": {} }}]",
            json_argv(&d.init_argv("restart"))
        )
    });
    let (pid0, before) = (c.pid0, c.queued);
    // Lines about the daemon's socket (see restart_rule_restarts_the_owner_and_frees_the_backlog).
    let ours = format!(" inode={} ", c.inode0);

    let r1 = find_line(&c.log, &["event=action", "rule=clamp-testd", &ours], 15_000)
        .expect("clamp line");
    let r2 = find_line(
        &c.log,
        &["event=action", "rule=restart-testd", &ours],
        5_000,
    )
    .expect("restart line");
    assert_eq!(kv(&r1, "result"), Some("dry-run"), "{r1}");
    assert_eq!(kv(&r2, "result"), Some("dry-run"), "{r2}");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(c.agent.stop(2_000), Some(0));
    assert_eq!(c.d.pid(), Some(pid0));
    assert!(alive(pid0));
    assert!(c.rx_queue().unwrap() >= before, "dry run changed the queue");
}

#[test]
fn audit_over_udp_to_a_loopback_collector() {
    if !ready("audit_over_udp_to_a_loopback_collector") {
        return;
    }
    let dir = TempDir::new("udp");
    let log = Rsyslogd::start();
    // ghost_warn_kb 1: any box has more Ghost than that, so one poll yields a threshold line.
    let cfg = dir.join("udp.json");
    support::write_trusted(
        &cfg,
        format!(
            "{{\"syslog\": \"{}\", \"ghost_warn_kb\": 1, \"ghost_act_kb\": 2, \"mlock\": false, \"oom_score_adj\": 0, \"rules\": [{{\"name\": \"note\", \"trigger\": \"ghost\", \"action\": \"log\"}}]}}",
            udp_target(&log)
        ),
    );
    let (st, _, err) = ghostwatch(&["run", "--once", "-c", cfg.to_str().unwrap()]);
    assert!(st.success(), "{err}");
    let l = find_line(&log, &["event=action", "rule=note", "result=ok"], 5_000)
        .unwrap_or_else(|| panic!("{:?}", log_lines(&log)));
    assert!(kv(&l, "ghost_kb").is_some(), "{l}");
    find_line(&log, &["event=threshold", "trigger=ghost"], 1_000).expect("threshold line");
}

#[test]
fn sighup_reload_keeps_old_config_on_error_and_sigterm_exits_zero() {
    if !ready("sighup_reload_keeps_old_config_on_error_and_sigterm_exits_zero") {
        return;
    }
    let dir = TempDir::new("hup");
    let log = Rsyslogd::start();
    let status = dir.join("status.json");
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
    let cfg = dir.join("hup.json");
    support::write_trusted(&cfg, &text);
    let mut agent = AgentProc::start(&["-c", cfg.to_str().unwrap()], dir.path());
    wait_for(Duration::from_millis(5_000), || {
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
    let cfg = dir.join("bad.json");
    support::write_trusted(&cfg, "{\n  \"interval_ms\": 1000,\n  \"trigerr\": 1\n}\n");
    let (st, _, err) = ghostwatch(&["run", "--once", "-c", cfg.to_str().unwrap()]);
    assert_eq!(st.code(), Some(2));
    assert!(
        err.starts_with(&format!("{}:3:3: ", cfg.display())),
        "{err}"
    );
}
