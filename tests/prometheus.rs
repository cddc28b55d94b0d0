//! The metrics file and the shipped alert rules, checked by Prometheus' own tool: `promtool
//! check metrics` on files the agent really wrote (the seed incident and this box), `promtool
//! check rules` and `promtool test rules` on init/ghostwatch.rules.yml with the recorded series
//! of tests/data/prometheus/ghostwatch.rules.test.yml. promtool comes with Debian's
//! `prometheus` package (`.ci/run` installs it); without it these tests skip with one line.
//! The docs test (every metric the agent writes or the rules read is in docs/CONFIG.md) needs
//! nothing.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use support::*;

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

const RULES: &str = "init/ghostwatch.rules.yml";
const RULES_TEST: &str = "tests/data/prometheus/ghostwatch.rules.test.yml";

/// Runs `ghostwatch run --once` (on `proc_root`, or the live /proc) with a metrics file and
/// returns the file's text.
fn metrics_of_one_poll(tag: &str, proc_root: Option<&Path>) -> String {
    let d = TempDir::new(tag);
    let metrics = d.join("metrics.prom");
    let cfg = d.join("c.json");
    write_trusted(
        &cfg,
        format!(
            r#"{{"syslog": "stderr", "metrics_file": "{}",
  "rules": [{{"name": "log-ghost", "trigger": "ghost", "action": "log"}},
            {{"name": "log-backlog", "trigger": "backlog", "action": "log"}}]}}"#,
            metrics.display()
        ),
    );
    let mut args = vec![
        "run".to_string(),
        "--once".into(),
        "-c".into(),
        cfg.display().to_string(),
    ];
    if let Some(r) = proc_root {
        args.push("--proc-root".into());
        args.push(r.display().to_string());
    }
    let out = Command::new(ghostwatch_bin())
        .args(&args)
        .stdin(Stdio::null())
        .output()
        .expect("run ghostwatch");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(&metrics).expect("metrics_file written")
}

fn promtool(args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write;
    let mut c = Command::new("promtool")
        .args(args)
        .current_dir(repo(""))
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn promtool");
    if let Some(text) = stdin {
        c.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    }
    c.wait_with_output().unwrap()
}

fn both(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The metric names (`ghostwatch_*`, plus node_exporter's that the rules read) in `text`.
fn names_in(text: &str) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    let b = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("ghostwatch_").map(|a| a + i) {
        let boundary = at == 0 || !(b[at - 1].is_ascii_alphanumeric() || b[at - 1] == b'_');
        let mut end = at;
        while end < b.len() && (b[end].is_ascii_alphanumeric() || b[end] == b'_') {
            end += 1;
        }
        let name = &text[at..end];
        if boundary && !v.iter().any(|n| n == name) {
            v.push(name.to_string());
        }
        i = end;
    }
    v
}

#[test]
fn the_metrics_file_passes_promtool_check_metrics() {
    if !require_program("promtool", INSTALL_PROMTOOL) {
        return;
    }
    let seed = metrics_of_one_poll("prom-seed", Some(&repo("tests/fixtures/seed")));
    let live = metrics_of_one_poll("prom-live", None);
    for (what, text) in [("seed", &seed), ("live", &live)] {
        let o = promtool(&["check", "metrics"], Some(text));
        assert!(
            o.status.success() && both(&o).trim().is_empty(),
            "promtool check metrics on the {what} file: {}\n{text}",
            both(&o)
        );
    }
    // The seed incident in base units: 2 591 452 kB of Ghost, a 76 755 840-byte backlog.
    assert!(
        seed.contains("\nghostwatch_ghost_bytes 2653646848\n"),
        "{seed}"
    );
    assert!(
        seed.contains("\nghostwatch_worst_rx_queue_bytes 76755840\n"),
        "{seed}"
    );
    assert!(
        seed.contains("ghostwatch_incident{trigger=\"ghost\"} 2\n"),
        "{seed}"
    );
}

#[test]
fn the_alert_rules_pass_promtool_check_and_test_rules() {
    if !require_program("promtool", INSTALL_PROMTOOL) {
        return;
    }
    let o = promtool(&["check", "rules", RULES], None);
    assert!(o.status.success(), "{}", both(&o));
    assert!(both(&o).contains("SUCCESS: 5 rules found"), "{}", both(&o));
    let o = promtool(&["test", "rules", RULES_TEST], None);
    assert!(o.status.success(), "{}", both(&o));
    assert!(both(&o).contains("SUCCESS"), "{}", both(&o));
}

/// Every metric the agent writes and every ghostwatch metric the rules read is documented in
/// docs/CONFIG.md's metrics table, and the rules read no metric the agent does not have (or
/// reserve there). Needs no promtool.
#[test]
fn every_metric_and_every_metric_the_rules_read_is_documented() {
    let docs = std::fs::read_to_string(repo("docs/CONFIG.md")).unwrap();
    let table = docs
        .split_once("\n## Metrics")
        .map(|(_, t)| t.split("\n## ").next().unwrap())
        .expect("docs/CONFIG.md has a ## Metrics section");
    let documented = names_in(table);
    let seed = metrics_of_one_poll("prom-docs", Some(&repo("tests/fixtures/seed")));
    let written: Vec<String> = seed
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect();
    assert!(written.len() >= 10, "{seed}");
    for n in &written {
        assert!(
            documented.contains(n),
            "{n} is written but not in docs/CONFIG.md ## Metrics"
        );
    }
    let rules = std::fs::read_to_string(repo(RULES)).unwrap();
    let read = names_in(&rules);
    assert!(read.len() >= 4, "{read:?}");
    for n in &read {
        assert!(
            documented.contains(n),
            "{RULES} reads {n}, which docs/CONFIG.md ## Metrics does not list"
        );
    }
    assert!(rules.contains("node_textfile_mtime_seconds"));
}

/// The series of one recorded metrics file sample: `name{labels}` -> value, with an
/// `instance="rec"` label added (as a scrape would).
fn samples_of(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            let series = match series.split_once('{') {
                Some((n, rest)) => format!("{n}{{instance=\"rec\",{rest}"),
                None => format!("{series}{{instance=\"rec\"}}"),
            };
            (series, value.to_string())
        })
        .collect()
}

/// The rules on series recorded from a real agent: a UDP socket on loopback that nobody reads
/// (SO_RCVBUFFORCE 16 MiB) is flooded past `backlog_act_bytes`, the agent's metrics file is read after every poll, then
/// the agent is stopped and the file (still there, no longer rewritten) read on. One recorded
/// poll becomes one minute of promtool's clock; the file's mtime advances on that clock
/// whenever the real file changed. GhostwatchIncidentAtActLevel{trigger="backlog"} must fire
/// one minute after the first act-level sample, GhostwatchMetricsStale four minutes after the
/// last rewrite, and GhostwatchActionsFailing never (the rule only logs).
#[test]
fn the_alert_rules_fire_on_a_recorded_incident() {
    if !require_program("promtool", INSTALL_PROMTOOL)
        || !require_root("SO_RCVBUFFORCE: a backlog well above sockstat's per-CPU slack")
    {
        return;
    }
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::MetadataExt;
    use std::time::Duration;
    let d = TempDir::new("prom-rec");
    let metrics = d.join("ghostwatch.prom");
    let status = d.join("status.json");
    let cfg = d.join("c.json");
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = sock.local_addr().unwrap().port();
    let rcvbuf: libc::c_int = 16 << 20;
    // SAFETY: setsockopt with a valid int on a socket this test owns.
    let r = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&rcvbuf as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0, "SO_RCVBUFFORCE");
    write_trusted(
        &cfg,
        format!(
            r#"{{"syslog": "stderr", "interval_ms": 300, "mlock": false,
  "metrics_file": "{}", "status_file": "{}",
  "ghost_warn_kb": 1073741824, "ghost_act_kb": 1073741824,
  "backlog_warn_bytes": 1048576, "backlog_act_bytes": 2097152,
  "rules": [{{"name": "log-backlog", "trigger": "backlog", "action": "log"}}]}}"#,
            metrics.display(),
            status.display()
        ),
    );
    let mut agent = AgentProc::start(&["-c", cfg.to_str().unwrap()], d.path());
    let polls = |t: &str| -> Option<u64> {
        t.lines()
            .find_map(|l| l.strip_prefix("ghostwatch_polls_total "))
            .and_then(|v| v.parse().ok())
    };
    // One sample per poll: (file text, whether the file was rewritten since the last sample).
    let mut recorded: Vec<(String, bool)> = Vec::new();
    let mut last = (0u64, 0i64, 0i64);
    let mut next_poll = |recorded: &mut Vec<(String, bool)>| {
        let t = wait_for(Duration::from_secs(20), || {
            let t = std::fs::read_to_string(&metrics).ok()?;
            let p = polls(&t)?;
            (p > last.0).then_some((t, p))
        })
        .unwrap_or_else(|| panic!("no new poll: {}", agent_err(d.path())));
        let m = std::fs::metadata(&metrics).unwrap();
        last = (t.1, m.mtime(), m.mtime_nsec());
        recorded.push((t.0, true));
    };
    for _ in 0..3 {
        next_poll(&mut recorded);
    }
    // ~8 MB queued (truesize), four times backlog_act_bytes.
    let sent = flood(port, 2000, 4000);
    assert!(sent > 1000, "flood sent {sent}");
    for _ in 0..5 {
        next_poll(&mut recorded);
    }
    assert_eq!(agent.stop(3_000), Some(0), "{}", agent.stderr());
    let stopped_mtime = (last.1, last.2);
    for _ in 0..6 {
        std::thread::sleep(Duration::from_millis(300));
        let m = std::fs::metadata(&metrics).unwrap();
        let rewritten = (m.mtime(), m.mtime_nsec()) != stopped_mtime;
        assert!(
            !rewritten,
            "the metrics file changed after the agent stopped"
        );
        recorded.push((std::fs::read_to_string(&metrics).unwrap(), rewritten));
    }
    drop(sock);

    // Series in promtool's notation, one value per recorded sample.
    let mut names: Vec<String> = Vec::new();
    let per_sample: Vec<Vec<(String, String)>> =
        recorded.iter().map(|(t, _)| samples_of(t)).collect();
    for s in &per_sample {
        for (n, _) in s {
            if !names.contains(n) {
                names.push(n.clone());
            }
        }
    }
    let mut yaml = format!(
        "rule_files:\n  - {}\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n",
        repo(RULES).display()
    );
    for n in &names {
        let vals: Vec<&str> = per_sample
            .iter()
            .map(|s| {
                s.iter()
                    .find(|(k, _)| k == n)
                    .map_or("_", |(_, v)| v.as_str())
            })
            .collect();
        yaml += &format!(
            "      - series: '{n}'\n        values: '{}'\n",
            vals.join(" ")
        );
    }
    let mut mtime = 0;
    let mut mtimes = Vec::new();
    for (i, (_, rewritten)) in recorded.iter().enumerate() {
        if *rewritten {
            mtime = i * 60;
        }
        mtimes.push(mtime.to_string());
    }
    yaml += &format!(
        "      - series: 'node_textfile_mtime_seconds{{instance=\"rec\",file=\"ghostwatch.prom\"}}'\n        values: '{}'\n",
        mtimes.join(" ")
    );

    // What the recording says must happen.
    let level = |s: &Vec<(String, String)>| {
        s.iter()
            .find(|(k, _)| k == "ghostwatch_incident{instance=\"rec\",trigger=\"backlog\"}")
            .map(|(_, v)| v.clone())
    };
    let act = per_sample
        .iter()
        .position(|s| level(s).as_deref() == Some("2"))
        .unwrap_or_else(|| panic!("the backlog never reached act level:\n{yaml}"));
    assert!(act >= 3, "act level before the flood:\n{yaml}");
    assert_eq!(
        level(&per_sample[act + 1]).as_deref(),
        Some("2"),
        "act level did not hold:\n{yaml}"
    );
    let last_write = recorded.iter().rposition(|(_, w)| *w).unwrap();
    yaml += "    alert_rule_test:\n";
    yaml += &format!(
        "      - eval_time: {}m\n        alertname: GhostwatchIncidentAtActLevel\n        exp_alerts: []\n",
        act
    );
    yaml += &format!(
        "      - eval_time: {}m\n        alertname: GhostwatchIncidentAtActLevel\n        exp_alerts:\n          - exp_labels: {{ severity: critical, instance: rec, trigger: backlog }}\n            exp_annotations:\n              summary: \"ghostwatch: backlog incident at act level on rec\"\n              description: \"The backlog trigger has been at act level for over 1 minute: the agent is acting on it (see its event=action lines in syslog).\"\n",
        act + 1
    );
    yaml += &format!(
        "      - eval_time: {}m\n        alertname: GhostwatchMetricsStale\n        exp_alerts: []\n",
        last_write + 3
    );
    yaml += &format!(
        "      - eval_time: {}m\n        alertname: GhostwatchMetricsStale\n        exp_alerts:\n          - exp_labels: {{ severity: warning, instance: rec, file: ghostwatch.prom }}\n            exp_annotations:\n              summary: \"ghostwatch: metrics file on rec not rewritten for 4m 0s\"\n              description: \"ghostwatch.prom was last written 4m 0s ago: the agent is stopped, hung, or cannot write it (ghostwatch_write_errors_total).\"\n",
        last_write + 4
    );
    yaml += &format!(
        "      - eval_time: {}m\n        alertname: GhostwatchActionsFailing\n        exp_alerts: []\n",
        recorded.len() - 1
    );
    let test = d.join("recorded.test.yml");
    std::fs::write(&test, &yaml).unwrap();
    let o = promtool(&["test", "rules", test.to_str().unwrap()], None);
    assert!(o.status.success(), "{}\n{yaml}", both(&o));
    eprintln!(
        "recorded {} samples ({} series); backlog at act level from sample {act}, last rewrite at {last_write}: {}",
        recorded.len(),
        names.len() + 1,
        both(&o).trim().replace('\n', " ")
    );
}

fn agent_err(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("agent.stderr")).unwrap_or_default()
}
