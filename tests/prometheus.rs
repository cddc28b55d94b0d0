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
