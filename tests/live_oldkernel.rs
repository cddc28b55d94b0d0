//! Old kernels, emulated (issue 16): ghostwatch on the real kernel under examples/gw-oldkernel's
//! seccomp filter, which answers as Linux 3.10, 4.14, 5.4 or 5.10 would (newer syscalls ENOSYS;
//! `--no-sock-diag`: no NETLINK_SOCK_DIAG, EPROTONOSUPPORT). Under each profile: the start line
//! and `check` say what the kernel lacks, `report` still finds a flooded socket and names its
//! owner, commands inherit no descriptor, and the agent's ladder (clamp -> drain -> restart on
//! the gw-testd throwaway daemon) reaches a rung that works and frees the queue, without a
//! panic, a busy loop or repeated error lines. Prints the seconds from flood to the effective
//! action per profile. Root, x86_64 (the filter's syscall numbers). Audit lines go to the
//! agent's stderr (`"syslog": "stderr"`).
//!
//! Run with the team's flood lock: `flock /work/team/live.lock cargo test --test live_oldkernel`.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};
use support::oldkernel::{PROFILES, Profile, missing_of, under};
use support::*;

const MIB: u64 = 1 << 20;

/// The backlog trigger is box-wide: the flood tests of this file run one at a time.
static FLOOD: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> MutexGuard<'static, ()> {
    FLOOD.lock().unwrap_or_else(|e| e.into_inner())
}

fn ready(test: &str) -> bool {
    if !cfg!(target_arch = "x86_64") {
        eprintln!("SKIPPED {test}: gw-oldkernel knows x86_64 syscall numbers only");
        return false;
    }
    require_root(test)
}

/// `under(p) + [ghostwatch, args...]` to the end: (exit code, stdout, stderr).
fn run_under(p: Option<(&Profile, bool)>, args: &[&str]) -> (Option<i32>, String, String) {
    let mut argv = p.map_or_else(Vec::new, |(p, nd)| under(p, nd));
    argv.push(ghostwatch_bin().display().to_string());
    argv.extend(args.iter().map(|s| s.to_string()));
    let out = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .output()
        .expect("run gw-oldkernel");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn label(p: &Profile, no_sock_diag: bool) -> String {
    format!(
        "Linux {} ({}){}",
        p.name,
        p.who,
        if no_sock_diag {
            " without sock_diag"
        } else {
            ""
        }
    )
}

fn kv<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|f| f.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

/// Audit lines that say the same thing twice (`seq=` and `duration_ms=` aside): an error said
/// every poll instead of once.
fn repeated_errors(stderr: &str) -> Vec<String> {
    let mut seen = BTreeMap::new();
    for l in stderr.lines().filter(|l| l.contains("event=error")) {
        let key: Vec<&str> = l
            .split_whitespace()
            .filter(|f| !f.starts_with("seq=") && !f.starts_with("duration_ms="))
            .collect();
        *seen.entry(key.join(" ")).or_insert(0) += 1;
    }
    seen.into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(l, n)| format!("{n}x {l}"))
        .collect()
}

#[test]
fn start_line_and_check_say_what_each_kernel_lacks() {
    if !ready("start_line_and_check_say_what_each_kernel_lacks") {
        return;
    }
    let dir = TempDir::new("oldk-start");
    let cfg = dir.join("c.json");
    write_trusted(
        &cfg,
        r#"{"syslog": "stderr", "mlock": false, "oom_score_adj": 0, "rules": [
  {"name": "clamp-x", "trigger": "backlog", "comm": "gw-nobody-xyz", "action": "clamp", "rcvbuf": 65536},
  {"name": "drain-x", "trigger": "backlog", "comm": "gw-nobody-xyz", "action": "drain"},
  {"name": "kill-x", "trigger": "backlog", "comm": "gw-nobody-xyz", "action": "kill"}]}"#,
    );
    let cfg = cfg.display().to_string();
    // The real kernel (6.x here) lacks no syscall; at most some diag modules (this VM's 6.18
    // has no raw_diag), which every profile then lacks too.
    let (code, _, err) = run_under(None, &["run", "--once", "-c", &cfg]);
    assert_eq!(code, Some(0), "{err}");
    let start = err.lines().find(|l| l.contains("event=start")).unwrap();
    let real = missing_of(start);
    let real_diag: Vec<&str> = real.split_whitespace().collect();
    assert!(real_diag.iter().all(|m| m.ends_with("_diag")), "{start}");
    let (code, _, err) = run_under(None, &["check", "-c", &cfg]);
    assert_eq!((code, err.as_str()), (Some(0), ""));

    for p in &PROFILES {
        for nd in [false, true] {
            let what = label(p, nd);
            let (code, _, err) = run_under(Some((p, nd)), &["run", "--once", "-c", &cfg]);
            assert_eq!(code, Some(0), "{what}: {err}");
            let start = err.lines().find(|l| l.contains("event=start")).unwrap();
            let mut want: Vec<&str> = p.missing.to_vec();
            if nd {
                want.push("sock_diag");
            } else {
                want.extend(&real_diag);
            }
            assert_eq!(missing_of(start), want.join(" "), "{what}: {start}");
            // Said once, on the start line: no error line repeats it at the first poll.
            assert!(!err.contains("event=error"), "{what}: {err}");
            assert!(!err.contains("panicked"), "{what}: {err}");

            let (code, _, err) = run_under(Some((p, nd)), &["check", "-c", &cfg]);
            assert_eq!(code, Some(0), "{what}: a warning keeps exit 0: {err}");
            let warned: BTreeSet<&str> = err
                .lines()
                .filter(|l| l.contains("warning:") && l.contains("this kernel has no"))
                .filter_map(|l| l.split('"').nth(1))
                .collect();
            let want: BTreeSet<&str> = if p.has_pidfd_getfd() {
                BTreeSet::new()
            } else {
                BTreeSet::from(["clamp-x", "drain-x"])
            };
            assert_eq!(warned, want, "{what}: {err}");
        }
    }
}

#[test]
fn report_names_the_flooded_socket_and_its_owner_on_every_kernel() {
    if !ready("report_names_the_flooded_socket_and_its_owner_on_every_kernel") {
        return;
    }
    let _one = one_at_a_time();
    let dir = TempDir::new("oldk-report");
    let name = format!("gwok-{}", std::process::id() % 100_000);
    let port = free_udp_port();
    let d = Daemon::start(dir.path(), &["--comm", &name, "--udp", &port.to_string()]);
    let (pid, inode) = (d.pid().unwrap(), d.inode("udp").unwrap());
    flood(port, 300, 60_000);
    let queued = udp_rx_queue(port).unwrap();
    assert!(queued > 4 * MIB, "flood queued only {queued} bytes");
    for p in &PROFILES {
        for nd in [false, true] {
            let what = label(p, nd);
            let (code, out, err) = run_under(Some((p, nd)), &["report", "--json"]);
            assert_eq!(code, Some(0), "{what}: {err}");
            assert!(!err.contains("panicked"), "{what}: {err}");
            let v = json::parse(&out).unwrap_or_else(|e| panic!("{what}: {e}\n{out}"));
            let row = v
                .at("sockets")
                .arr()
                .iter()
                .find(|s| s.at("inode").i64() == inode as i64)
                .unwrap_or_else(|| panic!("{what}: socket {inode} not in the report:\n{out}"));
            assert!(row.at("rx_queue").i64() as u64 > 4 * MIB, "{what}: {row:?}");
            assert!(
                row.at("owners")
                    .arr()
                    .iter()
                    .any(|o| o.at("pid").i64() == pid as i64 && o.at("comm").str() == name),
                "{what}: owner {pid} {name} not named: {row:?}"
            );
            let skipped: Vec<&str> = v.at("skipped").arr().iter().map(|s| s.str()).collect();
            let says = |needle: &str| skipped.iter().any(|s| s.contains(needle));
            for c in p.missing {
                assert!(says(&format!("kernel: no {c} ")), "{what}: {skipped:?}");
            }
            assert_eq!(says("kernel: no pidfd_getfd"), !p.has_pidfd_getfd());
            assert_eq!(
                says("NETLINK_SOCK_DIAG unavailable"),
                nd,
                "{what}: {skipped:?}"
            );
            let source = v.at("socket_source").str();
            assert_eq!(source, if nd { "proc" } else { "sock_diag" }, "{what}");
        }
    }
}

#[test]
fn commands_inherit_no_descriptor_on_every_kernel() {
    if !ready("commands_inherit_no_descriptor_on_every_kernel") {
        return;
    }
    for p in &PROFILES {
        let what = label(p, false);
        let dir = TempDir::new("oldk-kids");
        let out = dir.join("probe.out");
        // `exec >OUT` makes the shell's own stdout the file; its fd list is then what it got.
        let script = format!("exec >{}; ls /proc/$$/fd", out.display());
        let cfg = dir.join("kids.json");
        write_trusted(
            &cfg,
            format!(
                r#"{{"interval_ms": 100, "syslog": "stderr", "mlock": false, "oom_score_adj": 0,
  "min_available_kb": 1073741824, "cooldown_s": 3600,
  "rules": [{{"name": "probe", "trigger": "available", "action": "exec",
              "argv": ["/bin/sh", "-c", "{script}"]}}]}}"#
            ),
        );
        let leak = std::fs::File::open("/dev/null").unwrap();
        let leak_fd = std::os::fd::AsRawFd::as_raw_fd(&leak);
        let mut argv = under(p, false);
        argv.push(ghostwatch_bin().display().to_string());
        let err = std::fs::File::create(dir.join("agent.stderr")).unwrap();
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .args(["run", "-c", &cfg.display().to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err);
        // SAFETY: one raw syscall between fork and exec: the agent starts with an fd 9 it did
        // not ask for (no CLOEXEC), as a careless init script might hand it.
        unsafe {
            cmd.pre_exec(move || {
                if libc::dup2(leak_fd, 9) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut agent = AgentProc {
            child: Some(cmd.spawn().unwrap()),
            stderr_path: dir.join("agent.stderr"),
        };
        let got = wait_for(Duration::from_millis(10_000), || {
            let s = std::fs::read_to_string(&out).ok()?;
            (s.lines().count() >= 3).then_some(s)
        })
        .unwrap_or_else(|| panic!("{what}: probe never ran; agent said:\n{}", agent.stderr()));
        let fds: BTreeSet<&str> = got.lines().collect();
        assert_eq!(
            fds,
            BTreeSet::from(["0", "1", "2"]),
            "{what}: a command inherits no fd above 2"
        );
        assert_eq!(agent.stop(3_000), Some(0), "{what}: {}", agent.stderr());
        assert!(!agent.stderr().contains("panicked"), "{what}");
    }
}

/// utime + stime of `pid`, seconds.
fn cpu_s(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = s.rsplit_once(") ").map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|t| t.parse::<u64>().ok()).unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    // Fields after "(comm) ": state is 0, utime 11, stime 12.
    (ticks(11) + ticks(12)) as f64 / hz
}

/// One ladder run: what the test measured.
struct LadderRun {
    what: String,
    /// Seconds from the flood's end to the queue found freed.
    freed_s: f64,
    /// The rung whose `result=ok` freed it.
    rung: String,
    /// `result=failed` lines per rung.
    failed: BTreeMap<String, usize>,
    cpu_per_wall: f64,
}

/// clamp -> drain (escalate_after_s 3) -> restart (10), cooldown_s 5, default
/// max_actions_per_hour, on gw-testd's flooded UDP socket, the agent under `p`.
fn ladder(p: &Profile, nd: bool) -> LadderRun {
    let what = label(p, nd);
    let dir = TempDir::new("oldk-ladder");
    let name = format!(
        "gwol{}-{}",
        p.name.replace('.', ""),
        std::process::id() % 10_000
    );
    let port = free_udp_port();
    let d = Daemon::start(dir.path(), &["--comm", &name, "--udp", &port.to_string()]);
    let (pid0, inode0) = (d.pid().unwrap(), d.inode("udp").unwrap());
    let restart: Vec<String> = d
        .init_argv("restart")
        .iter()
        .map(|a| format!("\"{a}\""))
        .collect();
    let cfg = dir.join("ladder.json");
    write_trusted(
        &cfg,
        format!(
            r#"{{"interval_ms": 200, "syslog": "stderr", "mlock": false, "oom_score_adj": 0,
  "backlog_warn_bytes": {warn}, "backlog_act_bytes": {act},
  "ghost_warn_kb": 536870912, "ghost_act_kb": 1073741824, "cooldown_s": 5,
  "rules": [
    {{"name": "clamp", "trigger": "backlog", "comm": "{name}", "action": "clamp", "rcvbuf": 65536}},
    {{"name": "drain", "trigger": "backlog", "comm": "{name}", "action": "drain", "escalate_after_s": 3}},
    {{"name": "restart", "trigger": "backlog", "comm": "{name}", "action": "restart",
      "argv": [{argv}], "timeout_s": 20, "escalate_after_s": 10}}]}}"#,
            warn = MIB,
            act = 4 * MIB,
            argv = restart.join(", ")
        ),
    );
    let mut argv = under(p, nd);
    argv.push(ghostwatch_bin().display().to_string());
    argv.extend(["run".into(), "-c".into(), cfg.display().to_string()]);
    let args: Vec<&str> = argv.iter().map(String::as_str).collect();
    // AgentProc runs ghostwatch itself; here the wrapper is the program.
    let err = std::fs::File::create(dir.join("agent.stderr")).unwrap();
    let mut agent = AgentProc {
        child: Some(
            Command::new(args[0])
                .args(&args[1..])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(err)
                .spawn()
                .unwrap(),
        ),
        stderr_path: dir.join("agent.stderr"),
    };
    wait_for(Duration::from_secs(5), || {
        agent.stderr().contains("event=start").then_some(())
    })
    .unwrap_or_else(|| panic!("{what}: no start line: {}", agent.stderr()));
    let (cpu0, wall0) = (cpu_s(agent.pid()), Instant::now());
    flood(port, 300, 60_000);
    let flooded = Instant::now();
    let freed = wait_for(Duration::from_secs(40), || {
        udp_rx_queue(port)
            .is_some_and(|q| q < MIB)
            .then(Instant::now)
    });
    let log = agent.stderr();
    let freed = freed.unwrap_or_else(|| {
        panic!(
            "{what}: the queue was never freed (rx_queue {:?}); agent said:\n{log}",
            udp_rx_queue(port)
        )
    });
    // A little longer: no busy loop once the incident is over either.
    std::thread::sleep(Duration::from_secs(2));
    let cpu_per_wall = (cpu_s(agent.pid()) - cpu0) / wall0.elapsed().as_secs_f64();
    let log = agent.stderr();
    let ours = format!(" inode={inode0} ");
    let actions: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("event=action") && l.contains(&ours))
        .collect();
    let rung = actions
        .iter()
        .find(|l| kv(l, "result") == Some("ok") && kv(l, "rule") != Some("clamp"))
        .and_then(|l| kv(l, "rule"))
        .unwrap_or("?")
        .to_string();
    let mut failed = BTreeMap::new();
    for l in actions.iter().filter(|l| kv(l, "result") == Some("failed")) {
        *failed
            .entry(kv(l, "rule").unwrap_or("?").to_string())
            .or_insert(0) += 1;
        if !p.has_pidfd_getfd() && matches!(kv(l, "rule"), Some("clamp" | "drain")) {
            assert!(
                l.contains("reason=\"pidfd_getfd needs Linux >= 5.6\""),
                "{what}: {l}"
            );
        }
    }
    assert_eq!(agent.stop(3_000), Some(0), "{what}: {log}");
    assert!(!log.contains("panicked"), "{what}: {log}");
    assert_eq!(repeated_errors(&log), Vec::<String>::new(), "{what}");
    assert!(
        cpu_per_wall < 0.5,
        "{what}: the agent used {cpu_per_wall:.2} s of CPU per second (busy loop?)\n{log}"
    );
    if p.has_pidfd_getfd() {
        assert_eq!(rung, "drain", "{what}: clamp and drain work here:\n{log}");
        assert_eq!(d.pid(), Some(pid0), "{what}: drained, not restarted");
    } else {
        assert_eq!(rung, "restart", "{what}: only restart works here:\n{log}");
        // A rung that cannot work hands over at once (not after restart's escalate_after_s
        // 10), is said once per incident, and is not retried every cooldown.
        let freed_s = freed.duration_since(flooded).as_secs_f64();
        assert!(
            freed_s < 8.0,
            "{what}: restart only after {freed_s:.1} s:\n{log}"
        );
        for rung in ["clamp", "drain"] {
            assert!(
                failed.get(rung).copied().unwrap_or(0) <= 1,
                "{what}: {failed:?}\n{log}"
            );
        }
    }
    LadderRun {
        what,
        freed_s: freed.duration_since(flooded).as_secs_f64(),
        rung,
        failed,
        cpu_per_wall,
    }
}

/// ~30 s of floods (five runs).
#[test]
fn the_ladder_reaches_a_rung_that_works_on_every_kernel() {
    if !ready("the_ladder_reaches_a_rung_that_works_on_every_kernel") {
        return;
    }
    let _one = one_at_a_time();
    // Old kernels as OpenWrt images often are (no kmod-inet-diag), 5.4 both ways.
    let runs = [
        (&PROFILES[0], true),
        (&PROFILES[1], true),
        (&PROFILES[2], false),
        (&PROFILES[2], true),
        (&PROFILES[3], false),
    ];
    let mut figures = String::new();
    for (p, nd) in runs {
        let r = ladder(p, nd);
        figures.push_str(&format!(
            "  {}: flood -> queue freed by {} in {:.1} s; failed attempts {:?}; agent CPU {:.3} s/s\n",
            r.what, r.rung, r.freed_s, r.failed, r.cpu_per_wall
        ));
    }
    // The figures for the closing note (visible with --nocapture; on stderr past the capture).
    use std::io::Write;
    let _ = std::io::stderr().write_all(format!("ladder figures:\n{figures}").as_bytes());
}
