//! The interface contract of PRODUCT.md, checked name by name against the built binary, so a
//! merge cannot silently rename or drop what the product owner's acceptance tests rely on:
//! the commands and their exit codes, `report --json`'s keys, `--proc-root` as an exact mirror
//! of /proc, every config key, `FILE:LINE:COL` errors, the trust rules, the logfmt audit line
//! (through every `syslog` form), `last_reboot`, and the init scripts' names and defaults.
//! Fast (each run is one poll of a fixture tree); the live parts follow the root/CI skip policy.
//! Deeper behaviour is tested where it lives (report_fixtures, config_check, live_*).

mod support;

use std::io::Read;
use std::net::{TcpListener, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;
use support::json::{self, Value, check_contract};
use support::{TempDir, require_root, write_trusted};

const BIN: &str = env!("CARGO_BIN_EXE_ghostwatch");

/// The seed box's numbers (PRODUCT.md, "The problem").
const SEED_GHOST_KB: i64 = 2_591_452;
const SEED_RX_QUEUE: i64 = 76_755_840;
const SEED_ZEBRA_PID: i64 = 3218;

/// The ten /proc/net tables the contract names, in its order.
const NET_TABLES: [&str; 10] = [
    "tcp", "tcp6", "udp", "udp6", "raw", "raw6", "udplite", "udplite6", "netlink", "packet",
];
/// The per-process files the contract names (plus `fd/N`).
const PID_FILES: [&str; 5] = ["comm", "cmdline", "status", "stat", "exe"];

fn repo(p: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn seed() -> String {
    repo("tests/fixtures/seed").display().to_string()
}

fn gw(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run ghostwatch")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `report --json` with `args`; asserts exit 0 and one JSON object; checks the shared contract.
fn report_json(args: &[&str]) -> Value {
    let mut all = vec!["report", "--json"];
    all.extend_from_slice(args);
    let out = gw(&all);
    assert!(
        out.status.code() == Some(0),
        "report {args:?}: {:?}\n{}",
        out.status,
        text(&out.stderr)
    );
    let v = json::parse(&text(&out.stdout))
        .unwrap_or_else(|e| panic!("report {args:?}: bad JSON: {e}\n{}", text(&out.stdout)));
    check_contract(&v);
    v
}

/// The socket row of the seed's culprit: raw6 :::58 held by zebra 3218, first by rx_queue.
fn assert_seed_culprit(v: &Value) {
    let g = v.at("ghost");
    assert!(matches!(g.at("ghost_kb"), Value::Num(n) if !n.contains(['.', 'e', 'E'])));
    assert_eq!(g.at("ghost_kb").i64(), SEED_GHOST_KB);
    assert_eq!(g.at("accounted_kb").i64(), 1_196_832);
    assert!(!g.at("terms").obj().is_empty());
    assert_eq!(g.at("vmalloc_source").str(), "meminfo");
    let s = v.at("sockets.0");
    assert_eq!(s.at("proto").str(), "raw6");
    assert_eq!(s.at("local").str(), ":::58");
    assert_eq!(s.at("rx_queue").i64(), SEED_RX_QUEUE);
    assert_eq!(s.at("tx_queue").i64(), 0);
    assert_eq!(s.at("drops").i64(), 0);
    assert_eq!(s.at("inode").i64(), 27123);
    assert_eq!(s.at("uid").i64(), 92);
    assert_eq!(s.at("owners_more").i64(), 0);
    assert_eq!(s.at("owners.0.pid").i64(), SEED_ZEBRA_PID);
    assert_eq!(s.at("owners.0.comm").str(), "zebra");
    assert!(v.at("processes.rss_total_kb").i64() > 0);
}

#[test]
fn report_on_the_seed_names_zebra_and_exits_0() {
    let root = seed();
    let v = report_json(&["--proc-root", &root]);
    assert_seed_culprit(&v);
    // --top N bounds the rows; the order stays rx_queue descending (check_contract).
    let v = report_json(&["--proc-root", &root, "--top", "3"]);
    assert_eq!(v.at("sockets").arr().len(), 3);
    assert_seed_culprit(&v);
    // Any N exits 0: beyond what the report holds it lists that many and says so on stderr.
    let out = gw(&["report", "--json", "--proc-root", &root, "--top", "1000"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v = json::parse(&text(&out.stdout)).expect("JSON with --top 1000");
    assert_eq!(v.at("sockets").arr().len(), 32, "all the seed's sockets");
    assert!(
        text(&out.stderr).contains("--top 1000"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(gw(&["report", "--top", "0"]).status.code(), Some(2));
    let out = gw(&["report", "--proc-root", &root, "--top", "5"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let t = text(&out.stdout);
    for want in ["2591452", "raw6", ":::58", "76755840", "zebra", "3218"] {
        assert!(t.contains(want), "text report lacks {want}:\n{t}");
    }
}

/// Copies from `src` exactly the files the contract lists (meminfo, vmallocinfo, the ten
/// net tables, PID/{comm,cmdline,status,stat,exe}, PID/fd/N) and nothing else.
fn mirror_contract_files(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst.join("net")).unwrap();
    for f in ["meminfo", "vmallocinfo"] {
        std::fs::copy(src.join(f), dst.join(f)).unwrap();
    }
    for t in NET_TABLES {
        std::fs::copy(src.join("net").join(t), dst.join("net").join(t)).unwrap();
    }
    let copy_entry = |from: &Path, to: &Path| match std::fs::symlink_metadata(from) {
        Ok(m) if m.file_type().is_symlink() => {
            std::os::unix::fs::symlink(std::fs::read_link(from).unwrap(), to).unwrap()
        }
        Ok(_) => {
            std::fs::copy(from, to).unwrap();
        }
        Err(_) => {}
    };
    for e in std::fs::read_dir(src).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.parse::<u32>().is_err() || !e.file_type().unwrap().is_dir() {
            continue;
        }
        let (from, to) = (src.join(&name), dst.join(&name));
        std::fs::create_dir_all(to.join("fd")).unwrap();
        for f in PID_FILES {
            copy_entry(&from.join(f), &to.join(f));
        }
        if let Ok(fds) = std::fs::read_dir(from.join("fd")) {
            for fd in fds.flatten() {
                copy_entry(&fd.path(), &to.join("fd").join(fd.file_name()));
            }
        }
    }
}

#[test]
fn a_hand_built_tree_with_only_the_contract_files_works() {
    let t = TempDir::new("contract-tree");
    let root = t.join("proc");
    mirror_contract_files(Path::new(&seed()), &root);
    let root = root.display().to_string();
    let v = report_json(&["--proc-root", &root]);
    assert_seed_culprit(&v);
    let out = gw(&["report", "--proc-root", &root]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // The agent polls the same tree once and exits.
    let out = gw(&["run", "--proc-root", &root, "--once", "--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn report_with_proc_root_reads_no_live_socket() {
    // A live socket of ours with data queued: a report on a fake tree must not show it (no
    // live /proc/net, no sock_diag, no other namespace), only the tree's rows.
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    tx.send_to(&[7u8; 1000], rx.local_addr().unwrap()).unwrap();
    let port = rx.local_addr().unwrap().port();
    let inode = support::wait_for(Duration::from_secs(2), || {
        support::udp_row(port).filter(|r| r.rx_queue > 0)
    })
    .expect("our datagram queued")
    .inode as i64;
    let v = report_json(&["--proc-root", &seed(), "--top", "100"]);
    assert_eq!(v.at("socket_source").str(), "proc");
    let rows = v.at("sockets").arr();
    assert!(rows.iter().all(|s| s.at("inode").i64() != inode));
    let total: i64 = v
        .at("sockets_total")
        .obj()
        .iter()
        .map(|(_, n)| n.i64())
        .sum();
    // The seed's tables hold 32 sockets, the live box far more.
    assert_eq!(total, 32, "{:?}", v.at("sockets_total"));
    assert_eq!(rows.len(), 32);
    drop(rx);
}

/// A trusted config file in `dir` (root-owned under CI, mode 0644); returns its path.
fn config(dir: &TempDir, name: &str, body: &str) -> String {
    let p = dir.join(name);
    write_trusted(&p, body);
    p.display().to_string()
}

/// Every key PRODUCT.md names, each rule action once (the contract's rule keys all used).
fn every_key_config(dir: &TempDir, syslog: &str) -> String {
    let status = dir.join("status.json").display().to_string();
    let metrics = dir.join("metrics.prom").display().to_string();
    format!(
        r#"{{
  "interval_ms": 500,
  "syslog": "{syslog}",
  "facility": "local3",
  "status_file": "{status}",
  "metrics_file": "{metrics}",
  "dry_run": false,
  "ghost_warn_kb": 100000,
  "ghost_act_kb": 200000,
  "backlog_warn_bytes": 1048576,
  "backlog_act_bytes": 4194304,
  "min_available_kb": 20000,
  "cooldown_s": 30,
  "max_actions_per_hour": 10,
  "protect": ["feeddog", "/sbin/feeddog"],
  "watchdog_device": "{wd}",
  "watchdog_timeout_s": 30,
  "rules": [
    {{ "name": "log-ghost", "trigger": "ghost", "action": "log" }},
    {{ "name": "ex", "trigger": "backlog", "comm": "zebra", "exe": "/usr/sbin/zebra", "uid": 92,
       "action": "exec", "argv": ["/bin/true", "{{pid}}"], "timeout_s": 5 }},
    {{ "name": "rs", "trigger": "backlog", "comm": "zebra", "exe": "/usr/sbin/zebra", "uid": 92,
       "action": "restart", "argv": ["/etc/init.d/zebra", "restart"], "timeout_s": 10,
       "escalate_after_s": 30 }},
    {{ "name": "sy", "trigger": "ghost", "action": "sysctl", "sysctl": "net.core.rmem_max",
       "value": "212992" }},
    {{ "name": "cl", "trigger": "backlog", "comm": "zebra", "uid": 92, "action": "clamp",
       "rcvbuf": 262144 }},
    {{ "name": "dr", "trigger": "backlog", "comm": "zebra", "uid": 92, "action": "drain" }},
    {{ "name": "ki", "trigger": "backlog", "comm": "zebra", "uid": 92, "action": "kill",
       "signal": "TERM", "escalate_after_s": 60 }},
    {{ "name": "rb", "trigger": "available", "action": "reboot", "escalate_after_s": 120 }}
  ]
}}
"#,
        // A device that does not exist: the key is accepted, opening it is an audited error.
        wd = dir.join("no-watchdog").display()
    )
}

/// `FILE:LINE:COL: ` at the start of `line`, FILE being `file`.
fn has_position(line: &str, file: &str) -> bool {
    let Some(rest) = line.strip_prefix(file).and_then(|r| r.strip_prefix(':')) else {
        return false;
    };
    let mut parts = rest.splitn(3, ':');
    let num =
        |s: Option<&str>| s.is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()));
    num(parts.next()) && num(parts.next()) && parts.next().is_some_and(|m| m.starts_with(' '))
}

#[test]
fn every_contract_config_key_is_accepted() {
    let d = TempDir::new("contract-keys");
    let all = config(&d, "all.json", &every_key_config(&d, "stderr"));
    let out = gw(&["check", "-c", &all]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    for syslog in [
        "unix:/dev/log",
        "udp:127.0.0.1:514",
        "tcp:127.0.0.1:514",
        "stderr",
    ] {
        let c = config(&d, "s.json", &format!("{{\"syslog\": \"{syslog}\"}}"));
        let out = gw(&["check", "-c", &c]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{syslog}: {}",
            text(&out.stderr)
        );
    }
    // Every trigger and action word of the contract (the big config used them all but exec
    // on ghost and log on available).
    for (trigger, action) in [("available", "log"), ("ghost", "exec")] {
        let body = format!(
            r#"{{"min_available_kb":1000,"rules":[{{"name":"x","trigger":"{trigger}","action":"{action}","argv":["/bin/true"]}}]}}"#
        );
        let body = if action == "log" {
            body.replace(r#","argv":["/bin/true"]"#, "")
        } else {
            body
        };
        let c = config(&d, "t.json", &body);
        let out = gw(&["check", "-c", &c]);
        assert_eq!(out.status.code(), Some(0), "{body}: {}", text(&out.stderr));
    }
}

#[test]
fn config_errors_are_file_line_col_and_exit_2_for_check_and_run() {
    let d = TempDir::new("contract-errors");
    let cases: [(&str, &str); 7] = [
        ("{\"interval_ms\": 1000,\n  \"trigerr\": 1}", "trigerr"),
        (
            r#"{"rules": [{"name": "a", "trigger": "ghost", "action": "log", "bogus": 2}]}"#,
            "bogus",
        ),
        (r#"{"interval_ms": "x"}"#, "interval_ms"),
        (r#"{"interval_ms": 1000,,}"#, ""),
        (
            r#"{"rules": [{"trigger": "ghostly", "action": "log"}]}"#,
            "ghostly",
        ),
        (
            r#"{"rules": [{"trigger": "ghost", "action": "explode"}]}"#,
            "explode",
        ),
        (r#"{"syslog": "carrier-pigeon"}"#, "syslog"),
    ];
    for (body, names) in cases {
        let c = config(&d, "bad.json", body);
        let out = gw(&["check", "-c", &c]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "check {body}: {err}");
        let first = err.lines().next().unwrap_or("");
        assert!(
            has_position(first, &c),
            "check {body}: not FILE:LINE:COL: {err}"
        );
        assert!(
            first.contains(names),
            "check {body}: does not name {names}: {err}"
        );
        // run refuses it the same way, before polling anything.
        let out = gw(&["run", "-c", &c, "--once", "--proc-root", &seed()]);
        let run_err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "run {body}: {run_err}");
        assert!(run_err.lines().any(|l| l == first), "run {body}: {run_err}");
        assert!(
            !run_err.contains("event=start"),
            "run {body} started: {run_err}"
        );
    }
    // The position is right where it can be: line 2, column 3 for the first case.
    let c = config(&d, "pos.json", cases[0].0);
    let err = text(&gw(&["check", "-c", &c]).stderr);
    assert!(err.starts_with(&format!("{c}:2:3: ")), "{err}");
}

#[test]
fn untrusted_configs_are_refused_with_exit_2() {
    if !require_root("chown a config to nobody; only root's configs are trusted") {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let d = TempDir::new("contract-trust");
    let ok = config(&d, "ok.json", "{}\n");
    assert_eq!(gw(&["check", "-c", &ok]).status.code(), Some(0));
    let bad = |name: &str, setup: &dyn Fn(&Path)| {
        let p = d.join(name);
        setup(&p);
        let p = p.display().to_string();
        for cmd in [
            vec!["check", "-c", p.as_str()],
            vec!["run", "-c", p.as_str(), "--once", "--proc-root"],
        ] {
            let mut cmd = cmd;
            let s = seed();
            if cmd[0] == "run" {
                cmd.push(&s);
            }
            let out = gw(&cmd);
            let err = text(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{name} {cmd:?}: {err}");
            assert!(err.contains("refusing"), "{name} {cmd:?}: {err}");
            assert!(has_position(err.lines().next().unwrap_or(""), &p), "{err}");
        }
    };
    bad("nobody.json", &|p| {
        write_trusted(p, "{}\n");
        std::os::unix::fs::chown(p, Some(65534), None).unwrap();
    });
    bad("group-w.json", &|p| {
        write_trusted(p, "{}\n");
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o664)).unwrap();
    });
    bad("other-w.json", &|p| {
        write_trusted(p, "{}\n");
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o646)).unwrap();
    });
    bad("link.json", &|p| {
        std::os::unix::fs::symlink(&ok, p).unwrap()
    });
    bad("dir.json", &|p| std::fs::create_dir(p).unwrap());
    bad("fifo.json", &|p| {
        let c = std::ffi::CString::new(p.display().to_string()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    });
}

/// Every line of `out` that is an audit line (the stderr sink prefixes "ghostwatch: ").
fn audit_lines(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| l.strip_prefix("ghostwatch: "))
        .filter(|l| l.starts_with("event="))
        .map(str::to_string)
        .collect()
}

/// Splits a logfmt line into (key, raw value) pairs, asserting it is well formed: bare values
/// have no space, quote or control character; quoted values close and escape `"` and `\`.
fn logfmt(line: &str) -> Vec<(String, String)> {
    let b = line.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        let k0 = i;
        while i < b.len() && b[i] != b'=' {
            assert!(b[i] > b' ' && b[i] != b'"', "bad key byte in {line:?}");
            i += 1;
        }
        let key = line[k0..i].to_string();
        assert!(i < b.len() && !key.is_empty(), "key without = in {line:?}");
        i += 1;
        let v0 = i;
        if b.get(i) == Some(&b'"') {
            i += 1;
            loop {
                match b.get(i) {
                    None => panic!("unterminated quote in {line:?}"),
                    Some(b'\\') => i += 2,
                    Some(b'"') => break,
                    Some(c) => {
                        assert!(*c >= b' ' && *c != 0x7f, "raw control byte in {line:?}");
                        i += 1;
                    }
                }
            }
            i += 1;
        } else {
            while i < b.len() && b[i] != b' ' {
                assert!(
                    b[i] > b' ' && b[i] != b'"' && b[i] != 0x7f,
                    "bad bare value in {line:?}"
                );
                i += 1;
            }
        }
        out.push((key, line[v0..i].to_string()));
        if i < b.len() {
            assert_eq!(b[i], b' ', "one space between pairs in {line:?}");
            i += 1;
        }
    }
    out
}

fn get<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

#[test]
fn run_once_audits_the_seed_in_logfmt_with_the_contract_keys() {
    let d = TempDir::new("contract-audit");
    let c = config(&d, "all.json", &every_key_config(&d, "stderr"));
    let out = gw(&["run", "-c", &c, "--proc-root", &seed(), "--once"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let lines = audit_lines(&err);
    let events: Vec<String> = lines
        .iter()
        .map(|l| get(&logfmt(l), "event").unwrap().to_string())
        .collect();
    for want in ["start", "threshold", "action", "stop", "protect", "error"] {
        assert!(events.iter().any(|e| e == want), "no event={want}:\n{err}");
    }
    let seqs: Vec<u64> = lines
        .iter()
        .map(|l| get(&logfmt(l), "seq").expect("seq=").parse().unwrap())
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[1] > w[0]),
        "seq increases: {seqs:?}"
    );
    let backlog = lines
        .iter()
        .map(|l| logfmt(l))
        .find(|p| get(p, "event") == Some("threshold") && get(p, "trigger") == Some("backlog"))
        .expect("backlog threshold line");
    for (k, v) in [
        ("proto", "raw6"),
        ("inode", "27123"),
        ("pid", "3218"),
        ("comm", "zebra"),
        ("rx_queue", "76755840"),
        ("ghost_kb", "2591452"),
        ("available_kb", "38224"),
    ] {
        assert_eq!(get(&backlog, k), Some(v), "{k} in {backlog:?}");
    }
    let actions: Vec<_> = lines
        .iter()
        .map(|l| logfmt(l))
        .filter(|p| get(p, "event") == Some("action"))
        .collect();
    assert!(!actions.is_empty());
    for a in &actions {
        for k in ["rule", "action", "trigger", "result"] {
            assert!(get(a, k).is_some(), "{k} missing in {a:?}");
        }
        assert!(
            ["ok", "failed", "skipped", "dry-run"].contains(&get(a, "result").unwrap()),
            "{a:?}"
        );
    }
    // --proc-root never acts on a process: the clamp is dry-run or skipped, never ok.
    let clamp = actions
        .iter()
        .find(|a| get(a, "rule") == Some("cl"))
        .expect("cl line");
    assert!(
        ["dry-run", "skipped"].contains(&get(clamp, "result").unwrap()),
        "{clamp:?}"
    );
    // The log action is carried out, and reports duration_ms.
    let log = actions
        .iter()
        .find(|a| get(a, "rule") == Some("log-ghost"))
        .unwrap();
    assert_eq!(get(log, "result"), Some("ok"), "{log:?}");
    assert!(get(log, "duration_ms").is_some(), "{log:?}");

    // status_file is JSON; metrics_file is Prometheus text.
    let status = std::fs::read_to_string(d.join("status.json")).expect("status_file written");
    let sv = json::parse(&status).expect("status_file is JSON");
    assert_eq!(sv.at("ghost_kb").i64(), SEED_GHOST_KB);
    let metrics = std::fs::read_to_string(d.join("metrics.prom")).expect("metrics_file written");
    check_prometheus_text(&metrics);
    assert!(
        metrics
            .lines()
            .any(|l| l == format!("ghostwatch_ghost_bytes {}", SEED_GHOST_KB * 1024)),
        "{metrics}"
    );

    // --dry-run (and "dry_run": true) turns the carried-out actions into dry-run.
    let out = gw(&[
        "run",
        "-c",
        &c,
        "--proc-root",
        &seed(),
        "--once",
        "--dry-run",
    ]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let log = audit_lines(&err)
        .iter()
        .map(|l| logfmt(l))
        .find(|p| get(p, "rule") == Some("log-ghost"))
        .expect("log-ghost line");
    assert_eq!(get(&log, "result"), Some("dry-run"), "{log:?}");
}

/// Prometheus text exposition format 0.0.4, as much as a scraper relies on: HELP/TYPE
/// comments, a TYPE before a metric's samples, `name{labels} value` samples.
fn check_prometheus_text(t: &str) {
    let valid_name = |n: &str| {
        !n.is_empty()
            && !n.starts_with(|c: char| c.is_ascii_digit())
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    let mut typed = Vec::new();
    let mut samples = 0;
    assert!(t.ends_with('\n'), "ends with a newline");
    for l in t.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = l.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(valid_name(name), "{l}");
            assert!(
                ["gauge", "counter", "untyped", "histogram", "summary"].contains(&kind),
                "{l}"
            );
            typed.push(name.to_string());
        } else if let Some(rest) = l.strip_prefix("# HELP ") {
            assert!(valid_name(rest.split(' ').next().unwrap()), "{l}");
        } else {
            assert!(!l.starts_with('#'), "unknown comment {l}");
            let (series, value) = l.rsplit_once(' ').expect("sample: series value");
            let name = series.split('{').next().unwrap();
            assert!(valid_name(name), "{l}");
            if let Some(labels) = series.strip_prefix(name).filter(|s| !s.is_empty()) {
                assert!(labels.starts_with('{') && labels.ends_with('}'), "{l}");
                for kv in labels[1..labels.len() - 1].split(',') {
                    let (k, v) = kv.split_once('=').expect("label k=v");
                    assert!(
                        valid_name(k) && v.starts_with('"') && v.ends_with('"'),
                        "{l}"
                    );
                }
            }
            assert!(value.parse::<f64>().is_ok(), "value of {l}");
            assert!(
                typed.iter().any(|n| n == name),
                "{name} has no TYPE before it"
            );
            samples += 1;
        }
    }
    assert!(samples > 0, "no samples:\n{t}");
}

/// A copy of the contract tree whose zebra is named `comm`.
fn tree_with_comm(t: &TempDir, comm: &[u8]) -> String {
    let root = t.join("proc");
    mirror_contract_files(Path::new(&seed()), &root);
    let mut c = comm.to_vec();
    c.push(b'\n');
    std::fs::write(root.join("3218/comm"), c).unwrap();
    root.display().to_string()
}

#[test]
fn audit_values_with_spaces_are_quoted_and_control_characters_escaped() {
    let t = TempDir::new("contract-escape");
    let root = tree_with_comm(&t, b"ze bra\x1b[31m\x07\"\\");
    let out = gw(&["run", "--proc-root", &root, "--once"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let line = audit_lines(&err)
        .into_iter()
        .find(|l| l.starts_with("event=threshold trigger=backlog"))
        .expect("backlog threshold");
    assert!(!line.bytes().any(|b| b < b' ' || b == 0x7f), "{line:?}");
    let p = logfmt(&line);
    assert_eq!(
        get(&p, "comm"),
        Some(r#""ze bra\x1b[31m\x07\"\\""#),
        "{line}"
    );
    assert_eq!(get(&p, "pid"), Some("3218"));
    // The report escapes the name too, in text and in JSON.
    let out = gw(&["report", "--proc-root", &root]);
    assert!(!out.stdout.iter().any(|&b| b == 0x1b || b == 0x07));
    let v = report_json(&["--proc-root", &root]);
    assert_eq!(v.at("sockets.0.owners.0.pid").i64(), SEED_ZEBRA_PID);
    // A bidi override (U+202E) is escaped as its UTF-8 bytes in audit lines, and appears raw
    // nowhere.
    let t2 = TempDir::new("contract-bidi");
    let root = tree_with_comm(&t2, "a\u{202e}b".as_bytes());
    let out = gw(&["run", "--proc-root", &root, "--once"]);
    let err = text(&out.stderr);
    let line = audit_lines(&err)
        .into_iter()
        .find(|l| l.starts_with("event=threshold trigger=backlog"))
        .expect("backlog threshold");
    assert_eq!(
        get(&logfmt(&line), "comm"),
        Some(r#""a\xe2\x80\xaeb""#),
        "{line}"
    );
    let bidi = "\u{202e}".as_bytes();
    for args in [vec!["report"], vec!["report", "--json"]] {
        let mut args = args;
        args.extend(["--proc-root", root.as_str()]);
        let out = gw(&args);
        assert!(
            !out.stdout.windows(3).any(|w| w == bidi),
            "{args:?} passes U+202E through"
        );
    }
}

#[test]
fn start_line_carries_last_reboot_from_the_breadcrumb() {
    let d = TempDir::new("contract-crumb");
    let crumb = d.join("reboot-reason");
    // A breadcrumb from another boot (its boot_id is not this kernel's).
    std::fs::write(
        &crumb,
        "event=reboot rule=last-resort trigger=available ghost_kb=2591452 boot_id=0000\n",
    )
    .unwrap();
    let c = config(
        &d,
        "c.json",
        &format!(
            r#"{{"syslog": "stderr", "breadcrumb_file": "{}"}}"#,
            crumb.display()
        ),
    );
    let out = gw(&["run", "-c", &c, "--proc-root", &seed(), "--once"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let start = audit_lines(&err)
        .into_iter()
        .find(|l| l.starts_with("event=start"))
        .expect("start line");
    let p = logfmt(&start);
    assert_eq!(
        get(&p, "last_reboot"),
        Some(r#""event=reboot rule=last-resort trigger=available ghost_kb=2591452 boot_id=0000""#),
        "{start}"
    );
    assert!(!crumb.exists(), "breadcrumb removed after it was reported");
    // The next start has nothing to report.
    let out = gw(&["run", "-c", &c, "--proc-root", &seed(), "--once"]);
    assert!(!text(&out.stderr).contains("last_reboot"));
}

/// Runs one poll of the seed with `syslog` and returns what the listener got.
fn one_poll_to(d: &TempDir, syslog: &str) {
    let c = config(
        d,
        "sys.json",
        &format!(r#"{{"syslog": "{syslog}", "facility": "local3"}}"#),
    );
    let out = gw(&["run", "-c", &c, "--proc-root", &seed(), "--once"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{syslog}: {}",
        text(&out.stderr)
    );
    assert!(
        audit_lines(&text(&out.stderr)).is_empty(),
        "{syslog}: lines went to stderr: {}",
        text(&out.stderr)
    );
}

/// The syslog PRI's facility of `msg` ("<PRI>...") is local3 (19).
fn assert_local3(msg: &str) {
    let pri: u32 = msg
        .strip_prefix('<')
        .and_then(|r| r.split_once('>'))
        .and_then(|(p, _)| p.parse().ok())
        .unwrap_or_else(|| panic!("no <PRI> in {msg:?}"));
    assert_eq!(pri / 8, 19, "facility local3 in {msg:?}");
}

#[test]
fn each_syslog_form_delivers_the_audit_lines() {
    let d = TempDir::new("contract-syslog");
    let mut buf = vec![0u8; 65536];

    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    one_poll_to(&d, &format!("udp:{}", udp.local_addr().unwrap()));
    let mut got = Vec::new();
    udp.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    while let Ok(n) = udp.recv(&mut buf) {
        got.push(text(&buf[..n]));
    }
    assert!(
        got.iter().any(|m| m.contains("event=start")),
        "udp: {got:?}"
    );
    assert!(
        got.iter().any(|m| m.contains("event=threshold")),
        "udp: {got:?}"
    );
    got.iter().for_each(|m| assert_local3(m));

    let unix_path = d.join("log.sock");
    let unix = UnixDatagram::bind(&unix_path).unwrap();
    unix.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    one_poll_to(&d, &format!("unix:{}", unix_path.display()));
    let mut got = Vec::new();
    while let Ok(n) = unix.recv(&mut buf) {
        got.push(text(&buf[..n]));
    }
    assert!(
        got.iter().any(|m| m.contains("event=start")),
        "unix: {got:?}"
    );
    got.iter().for_each(|m| assert_local3(m));

    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    one_poll_to(&d, &format!("tcp:{}", tcp.local_addr().unwrap()));
    tcp.set_nonblocking(true).unwrap();
    let (mut conn, _) = support::wait_for(Duration::from_secs(5), || tcp.accept().ok())
        .expect("the agent connected over tcp");
    conn.set_nonblocking(false).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut all = String::new();
    conn.read_to_string(&mut all)
        .expect("read until the agent closed");
    // RFC 6587 octet counting: "LEN SP MSG", frames back to back.
    let mut frames = Vec::new();
    let mut rest = all.as_str();
    while !rest.is_empty() {
        let (len, tail) = rest.split_once(' ').expect("LEN SP");
        let len: usize = len
            .parse()
            .unwrap_or_else(|_| panic!("frame length in {rest:?}"));
        frames.push(&tail[..len]);
        rest = &tail[len..];
    }
    assert!(
        frames.iter().any(|m| m.contains("event=start")),
        "tcp: {all:?}"
    );
    assert!(
        frames.last().unwrap().contains("event=stop"),
        "tcp: {all:?}"
    );
    frames.iter().for_each(|m| assert_local3(m));
}

#[test]
fn init_scripts_have_the_contract_names_and_defaults() {
    let initd = std::fs::read_to_string(repo("init/ghostwatch.initd")).expect("initd");
    let procd = std::fs::read_to_string(repo("init/ghostwatch.procd")).expect("procd");
    let unit = std::fs::read_to_string(repo("init/ghostwatch.service")).expect("service");
    for (name, t) in [("initd", &initd), ("procd", &procd), ("service", &unit)] {
        assert!(
            t.contains("/usr/sbin/ghostwatch"),
            "{name}: no /usr/sbin/ghostwatch"
        );
        assert!(
            t.contains("/etc/ghostwatch.json"),
            "{name}: no /etc/ghostwatch.json"
        );
    }
    assert!(procd.contains("USE_PROCD=1"));
    assert!(unit.contains("ExecStart=/usr/sbin/ghostwatch run -c /etc/ghostwatch.json"));
    // The sysv script: the five commands, and its defaults when nothing overrides them.
    let d = TempDir::new("contract-initd");
    let run = |cmd: &str| {
        Command::new("/bin/sh")
            .arg(repo("init/ghostwatch.initd"))
            .arg(cmd)
            .env_remove("GHOSTWATCH_BIN")
            .env_remove("GHOSTWATCH_CONFIG")
            .env("GHOSTWATCH_PIDFILE", d.join("gw.pid"))
            .output()
            .expect("sh initd")
    };
    let usage = run("no-such-command");
    assert_ne!(usage.status.code(), Some(0));
    let u = text(&usage.stderr) + &text(&usage.stdout);
    for cmd in ["start", "stop", "restart", "reload", "status"] {
        assert!(u.contains(cmd), "usage lacks {cmd}: {u}");
    }
    let status = run("status");
    assert_eq!(
        status.status.code(),
        Some(3),
        "status when stopped (LSB: 3)"
    );
    if !Path::new("/usr/sbin/ghostwatch").exists() {
        let start = run("start");
        assert_ne!(start.status.code(), Some(0));
        let s = text(&start.stderr) + &text(&start.stdout);
        assert!(
            s.contains("/usr/sbin/ghostwatch"),
            "start names its default binary: {s}"
        );
    }
}

/// inode of the network namespace `pid` is in ("net:[N]").
fn netns_of(pid: &str) -> i64 {
    let l = std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    let l = l.to_string_lossy();
    l.trim_start_matches("net:[")
        .trim_end_matches(']')
        .parse()
        .unwrap()
}

#[test]
fn live_raw6_and_unix_rows_name_their_owner_and_netns() {
    if !require_root("a raw ICMPv6 socket and every process's fds") {
        return;
    }
    use std::os::unix::io::AsRawFd;
    // zebra's socket: raw ICMPv6, never read; ICMPv6 echo requests to ::1 (and the kernel's
    // replies) queue on it.
    // SAFETY: plain socket(2) calls; the fds are closed below.
    let raw = unsafe { libc::socket(libc::AF_INET6, libc::SOCK_RAW, libc::IPPROTO_ICMPV6) };
    assert!(raw >= 0, "raw6 socket");
    let snd = unsafe { libc::socket(libc::AF_INET6, libc::SOCK_RAW, libc::IPPROTO_ICMPV6) };
    assert!(snd >= 0);
    // A few MB queued, so that other tests' sockets on this box do not push ours out of the
    // top 100 (SO_RCVBUFFORCE: root may exceed rmem_max).
    let rcvbuf: libc::c_int = 16 << 20;
    // SAFETY: a valid int option on our own socket.
    let rc = unsafe {
        libc::setsockopt(
            raw,
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&rcvbuf as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "SO_RCVBUFFORCE");
    let mut to: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
    to.sin6_family = libc::AF_INET6 as libc::sa_family_t;
    to.sin6_addr.s6_addr[15] = 1;
    let mut echo = vec![0u8; 1000];
    echo[0] = 128; // echo request; the kernel fills in the checksum
    for _ in 0..500 {
        // SAFETY: valid buffer and address of the right length.
        unsafe {
            libc::sendto(
                snd,
                echo.as_ptr().cast(),
                echo.len(),
                0,
                (&to as *const libc::sockaddr_in6).cast(),
                std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
            )
        };
    }
    // A unix datagram socket with a datagram nobody reads.
    let d = TempDir::new("contract-live");
    let path = d.join("held.sock");
    let held = UnixDatagram::bind(&path).unwrap();
    UnixDatagram::unbound()
        .unwrap()
        .send_to(&[1u8; 150_000], &path)
        .unwrap();

    // And one with an abstract name, shown as "@name".
    use std::os::linux::net::SocketAddrExt;
    let name = format!("gw-contract-{}", std::process::id());
    let abs_addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let abs = UnixDatagram::bind_addr(&abs_addr).unwrap();
    UnixDatagram::unbound()
        .unwrap()
        .send_to_addr(&[2u8; 100_000], &abs_addr)
        .unwrap();

    let inode_of = |fd: i32| {
        let l = std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap();
        let l = l.to_string_lossy();
        l.trim_start_matches("socket:[")
            .trim_end_matches(']')
            .parse::<i64>()
            .unwrap()
    };
    let (raw_inode, unix_inode) = (inode_of(raw), inode_of(held.as_raw_fd()));
    let me = std::process::id() as i64;
    let ns = netns_of("self");
    let v = report_json(&["--top", "100"]);
    // SAFETY: closing the fds this test opened.
    unsafe {
        libc::close(raw);
        libc::close(snd);
    }
    let rows = v.at("sockets").arr();
    let row = |inode: i64| {
        rows.iter()
            .find(|s| s.at("inode").i64() == inode)
            .unwrap_or_else(|| panic!("socket {inode} not in the top 100: {:?}", v.at("sockets")))
    };
    let r = row(raw_inode);
    assert_eq!(r.at("proto").str(), "raw6");
    assert_eq!(r.at("local").str(), ":::58");
    assert!(r.at("rx_queue").i64() > 512 << 10, "{r:?}");
    assert_eq!(r.at("netns").i64(), ns);
    assert!(
        r.at("owners").arr().iter().any(|o| o.at("pid").i64() == me),
        "{r:?}"
    );
    let u = row(unix_inode);
    assert_eq!(u.at("proto").str(), "unix");
    assert_eq!(u.at("local").str(), path.display().to_string());
    // A datagram socket's queue reads as its first datagram (UNIX_DIAG_RQLEN).
    assert_eq!(u.at("rx_queue").i64(), 150_000, "{u:?}");
    assert_eq!(u.at("netns").i64(), ns);
    assert!(
        u.at("owners").arr().iter().any(|o| o.at("pid").i64() == me),
        "{u:?}"
    );
    let a = row(inode_of(abs.as_raw_fd()));
    assert_eq!(a.at("proto").str(), "unix");
    assert_eq!(a.at("local").str(), format!("@{name}"));
    assert_eq!(a.at("rx_queue").i64(), 100_000, "{a:?}");
    drop(held);
    drop(abs);
}

#[test]
fn live_report_as_nobody_exits_0() {
    if !require_root("setpriv to nobody") {
        return;
    }
    // nobody runs the binary and reads the seed tree from where nobody can reach them (a
    // checkout under root's 0700 home is out of reach: then they are copies).
    let bin = support::reachable_by_others(Path::new(BIN));
    let tree = support::reachable_by_others(Path::new(&seed()));
    let as_nobody = |args: &[&str]| {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&bin.path)
            .args(args)
            .output()
            .expect("setpriv")
    };
    let out = as_nobody(&["report", "--json", "--top", "5"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v = json::parse(&text(&out.stdout)).expect("JSON as nobody");
    check_contract(&v);
    // A fixture tree reads the same for anyone, and nobody may check root's config.
    let out = as_nobody(&[
        "report",
        "--json",
        "--proc-root",
        &tree.path.to_string_lossy(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_seed_culprit(&json::parse(&text(&out.stdout)).unwrap());
    let d = TempDir::new("contract-nobody");
    let c = config(&d, "c.json", "{\"interval_ms\": 1000}\n");
    let out = as_nobody(&["check", "-c", &c]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn live_run_without_c_reads_etc_ghostwatch_json_else_the_embedded_default() {
    if !require_root("a private mount namespace with an overlay on /etc") {
        return;
    }
    let tree = TempDir::new("contract-etc");
    let root = tree.join("proc");
    mirror_contract_files(Path::new(&seed()), &root);
    let root = root.display().to_string();
    let start_line = |out: &Output| {
        audit_lines(&text(&out.stderr))
            .into_iter()
            .find(|l| l.starts_with("event=start"))
            .unwrap_or_else(|| panic!("no start line: {}", text(&out.stderr)))
    };
    // Without /etc/ghostwatch.json: the embedded default, which only observes (log rules).
    if !Path::new("/etc/ghostwatch.json").exists() {
        let out = gw(&["run", "--proc-root", &root, "--once"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let start = start_line(&out);
        assert!(start.contains("config=embedded-default"), "{start}");
        for a in audit_lines(&text(&out.stderr)) {
            if a.starts_with("event=action") {
                assert!(a.contains(" action=log "), "the default only logs: {a}");
            }
        }
    }
    // With one (an overlay on /etc in a private mount namespace: the box's /etc is untouched).
    let up = tree.join("up");
    let work = tree.join("work");
    std::fs::create_dir_all(&up).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    std::fs::set_permissions(&up, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    write_trusted(
        up.join("ghostwatch.json"),
        r#"{"syslog": "stderr", "interval_ms": 777}"#,
    );
    let script = format!(
        "mount -t overlay overlay -o lowerdir=/etc,upperdir={},workdir={} /etc && exec {BIN} run --proc-root {root} --once",
        up.display(),
        work.display()
    );
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .output()
        .expect("unshare");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let start = start_line(&out);
    assert!(start.contains("config=/etc/ghostwatch.json"), "{start}");
    assert!(start.contains("interval_ms=777"), "{start}");
}

#[test]
fn sysctl_writes_go_under_proc_root_sys() {
    let t = TempDir::new("contract-sysctl");
    let root = t.join("proc");
    mirror_contract_files(Path::new(&seed()), &root);
    let knob = root.join("sys/net/core/rmem_max");
    std::fs::create_dir_all(knob.parent().unwrap()).unwrap();
    std::fs::write(&knob, "212992\n").unwrap();
    let c = config(
        &t,
        "c.json",
        r#"{"syslog": "stderr", "rules": [{"name": "sy", "trigger": "ghost", "action": "sysctl",
            "sysctl": "net.core.rmem_max", "value": "4194304"}]}"#,
    );
    let root = root.display().to_string();
    let out = gw(&["run", "-c", &c, "--proc-root", &root, "--once"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let line = audit_lines(&err)
        .into_iter()
        .find(|l| l.contains("rule=sy"))
        .expect("sysctl action line");
    assert_eq!(get(&logfmt(&line), "result"), Some("ok"), "{line}");
    assert_eq!(std::fs::read_to_string(&knob).unwrap().trim(), "4194304");
}

#[test]
fn a_backlog_that_drains_is_audited_recovered() {
    let t = TempDir::new("contract-recovered");
    let root = t.join("proc");
    mirror_contract_files(Path::new(&seed()), &root);
    let c = config(
        &t,
        "c.json",
        r#"{"syslog": "stderr", "interval_ms": 100, "backlog_warn_bytes": 1000000,
            "backlog_act_bytes": 2000000}"#,
    );
    let mut agent = support::AgentProc::start(
        &["-c", &c, "--proc-root", &root.display().to_string()],
        t.path(),
    );
    let seen = |what: &str| {
        support::wait_for(Duration::from_secs(10), || {
            audit_lines(&agent.stderr())
                .into_iter()
                .find(|l| l.starts_with(what))
        })
    };
    seen("event=threshold trigger=backlog").expect("backlog threshold");
    // zebra's queue empties (the kernel rewrites the table; so do we).
    let raw6 = root.join("net/raw6");
    let drained = std::fs::read_to_string(&raw6)
        .unwrap()
        .replace("00000000:04933380", "00000000:00000000");
    std::fs::write(&raw6, drained).unwrap();
    let rec = seen("event=recovered trigger=backlog").expect("recovered line");
    let p = logfmt(&rec);
    assert_eq!(get(&p, "value"), Some("0"), "{rec}");
    assert!(get(&p, "seq").is_some(), "{rec}");
    assert_eq!(agent.stop(5000), Some(0), "SIGTERM: exit 0");
}

#[test]
fn netlink_and_packet_rows_take_rx_queue_from_rmem() {
    let t = TempDir::new("contract-rmem");
    let root = t.join("proc");
    mirror_contract_files(Path::new(&seed()), &root);
    std::fs::write(
        root.join("net/netlink"),
        "sk       Eth Pid    Groups   Rmem     Wmem     Dump     Locks     Drops     Inode\n\
         ffff8800b5f42427 15  1      00000000 123456   789      0000000000000000 2        5        9255    \n",
    )
    .unwrap();
    std::fs::write(
        root.join("net/packet"),
        "sk       RefCnt Type Proto  Iface R Rmem   User   Inode\n\
         ffff8800b5f47531 3      2    8863   3     1 654321 7      30001 \n",
    )
    .unwrap();
    let v = report_json(&["--proc-root", &root.display().to_string()]);
    let row = |i: usize| v.at(&format!("sockets.{i}"));
    assert_eq!(row(0).at("proto").str(), "raw6");
    assert_eq!(row(1).at("proto").str(), "packet");
    assert_eq!(row(1).at("rx_queue").i64(), 654321);
    assert_eq!(row(1).at("inode").i64(), 30001);
    assert_eq!(row(1).at("uid").i64(), 7);
    assert_eq!(row(2).at("proto").str(), "netlink");
    assert_eq!(row(2).at("rx_queue").i64(), 123456);
    assert_eq!(row(2).at("tx_queue").i64(), 789);
    assert_eq!(row(2).at("drops").i64(), 5);
    assert_eq!(row(2).at("inode").i64(), 9255);
}

#[test]
fn watchdog_device_is_petted_each_poll_and_magic_closed_on_sigterm() {
    use std::os::unix::fs::OpenOptionsExt;
    let t = TempDir::new("contract-watchdog");
    // A FIFO stands in for /dev/watchdog; its read end is open before the agent starts.
    let fifo = t.join("watchdog");
    let c_path = std::ffi::CString::new(fifo.display().to_string()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    let mut reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    let c = config(
        &t,
        "c.json",
        &format!(
            r#"{{"syslog": "stderr", "interval_ms": 100, "watchdog_device": "{}",
                "watchdog_timeout_s": 10}}"#,
            fifo.display()
        ),
    );
    let root = t.join("proc");
    mirror_contract_files(Path::new(&seed()), &root);
    let mut agent = support::AgentProc::start(
        &["-c", &c, "--proc-root", &root.display().to_string()],
        t.path(),
    );
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    let mut drain = |got: &mut Vec<u8>| {
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
    };
    let petted = support::wait_for(Duration::from_secs(10), || {
        drain(&mut got);
        (got.len() >= 3).then_some(())
    });
    assert!(
        petted.is_some(),
        "3 pets in 10 s: {got:?}\n{}",
        agent.stderr()
    );
    assert!(!got.contains(&b'V'), "magic close while running: {got:?}");
    assert_eq!(agent.stop(5000), Some(0), "SIGTERM: exit 0");
    drain(&mut got);
    assert_eq!(got.last(), Some(&b'V'), "magic close on SIGTERM: {got:?}");
    let stop = audit_lines(&agent.stderr())
        .into_iter()
        .find(|l| l.starts_with("event=stop"))
        .expect("stop line");
    assert!(stop.contains("watchdog=closed"), "{stop}");
}

#[test]
fn a_socket_held_by_many_lists_a_bounded_number_and_counts_the_rest() {
    let t = TempDir::new("contract-crowd");
    let root = t.join("proc");
    mirror_contract_files(Path::new(&seed()), &root);
    // 40 forked workers share zebra's socket too (41 holders in all).
    let z = root.join("3218");
    for pid in 5000..5040u32 {
        let p = root.join(pid.to_string());
        std::fs::create_dir_all(p.join("fd")).unwrap();
        for f in ["comm", "cmdline", "status", "stat"] {
            std::fs::copy(z.join(f), p.join(f)).unwrap();
        }
        std::os::unix::fs::symlink("socket:[27123]", p.join("fd/9")).unwrap();
    }
    let v = report_json(&["--proc-root", &root.display().to_string()]);
    let s = v.at("sockets.0");
    assert_eq!(s.at("inode").i64(), 27123);
    let listed = s.at("owners").arr();
    assert!(
        !listed.is_empty() && listed.len() < 41,
        "bounded: {}",
        listed.len()
    );
    assert_eq!(
        listed.len() as i64 + s.at("owners_more").i64(),
        41,
        "listed + owners_more = every holder"
    );
    assert_eq!(listed[0].at("pid").i64(), SEED_ZEBRA_PID, "PID order");
    // Sockets nobody shares say 0.
    assert_eq!(v.at("sockets.1.owners_more").i64(), 0);
}

#[test]
fn free_pages_on_the_per_cpu_lists_are_not_ghost() {
    // An optional zoneinfo in the tree: its pagesets' count: lines are free memory.
    let t = TempDir::new("contract-pcp");
    let root = t.join("proc");
    mirror_contract_files(Path::new(&seed()), &root);
    std::fs::write(
        root.join("zoneinfo"),
        "Node 0, zone   Normal\n  pages free     27329\n  pagesets\n    cpu: 0\n              count:    1000\n              high:     1200\n    cpu: 1\n              count:    24\n              high:     1200\n",
    )
    .unwrap();
    let v = report_json(&["--proc-root", &root.display().to_string()]);
    let pcp_kb = 1024 * sys_page_kb();
    assert_eq!(v.at("ghost.terms.PcpFree").i64(), pcp_kb);
    assert_eq!(v.at("ghost.ghost_kb").i64(), SEED_GHOST_KB - pcp_kb);
}

/// This machine's page size in kB (the tree's page counts are read with it).
fn sys_page_kb() -> i64 {
    // SAFETY: sysconf has no preconditions.
    (unsafe { libc::sysconf(libc::_SC_PAGESIZE) } / 1024) as i64
}
