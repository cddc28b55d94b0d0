//! `ghostwatch report` end to end: the built binary on each fixture tree under
//! tests/fixtures/ (rebuilt by tests/fixtures/make_fixtures.py). The live /proc runs are in
//! live_report.rs.

mod support;

use std::path::PathBuf;
use std::process::{Command, Output};
use support::json::{self, Value, check_contract};

const BIN: &str = env!("CARGO_BIN_EXE_ghostwatch");

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("run ghostwatch")
}

/// Runs `report` on a fixture; asserts exit 0 and returns stdout.
fn report(name: &str, extra: &[&str]) -> String {
    let root = fixture(name);
    let mut args = vec!["report", "--proc-root", root.as_str()];
    args.extend_from_slice(extra);
    let out = run(&args);
    assert!(
        out.status.success(),
        "report on {name} failed: {:?}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("report output is UTF-8")
}

fn report_json(name: &str, extra: &[&str]) -> Value {
    let mut args = vec!["--json"];
    args.extend_from_slice(extra);
    let text = report(name, &args);
    assert_eq!(text.matches('\n').count(), 1, "one JSON object, one line");
    json::parse(&text).unwrap_or_else(|e| panic!("{name}: bad JSON ({e}):\n{text}"))
}

/// (pid, comm) of every owner of socket `i`.
fn owners(v: &Value, i: usize) -> Vec<(i64, String)> {
    v.at(&format!("sockets.{i}.owners"))
        .arr()
        .iter()
        .map(|o| (o.at("pid").i64(), o.at("comm").str().to_string()))
        .collect()
}

#[test]
fn seed_json_matches_the_field_report() {
    let v = report_json("seed", &[]);
    check_contract(&v);
    assert_eq!(v.at("ghost.ghost_kb").i64(), 2591452);
    assert_eq!(v.at("ghost.accounted_kb").i64(), 1196832);
    assert_eq!(v.at("ghost.terms.VmallocUsed").i64(), 641352);
    assert_eq!(v.at("ghost.terms.MemFree").i64(), 109316);
    assert_eq!(v.at("ghost.vmalloc_source").str(), "meminfo");
    assert_eq!(v.at("ghost.ghost_percent").f64(), 68.4);
    let s0 = v.at("sockets.0");
    assert_eq!(s0.at("proto").str(), "raw6");
    assert_eq!(s0.at("local").str(), ":::58");
    assert_eq!(s0.at("rx_queue").i64(), 76755840);
    assert_eq!(s0.at("inode").i64(), 27123);
    assert_eq!(s0.at("uid").i64(), 92);
    assert_eq!(owners(&v, 0), vec![(3218, "zebra".to_string())]);
    assert_eq!(v.at("sockets").arr().len(), 10, "default --top 10");
    // Every userland process of the ps listing (ps itself excluded).
    assert_eq!(v.at("processes.rss_total_kb").i64(), 110504);
    assert_eq!(v.at("processes.count").i64(), 38);
    assert_eq!(v.at("processes.kernel_threads").i64(), 6);
    assert_eq!(v.at("available_kb").i64(), 38224);
    assert_eq!(v.at("used_kb").i64(), 3788284 - 109316 - 258864 - 22104);
    assert_eq!(v.at("shmem_kb").i64(), 183316);
    assert_eq!(v.at("sockets_total.udp").i64(), 7);
    assert_eq!(v.at("sockets_total.netlink").i64(), 7);
    assert_eq!(v.at("rx_queue_total_bytes").i64(), 76755840);
    assert_eq!(v.at("verdict_kind").str(), "ghost_socket");
    assert!(v.at("skipped").arr().is_empty(), "{:?}", v.at("skipped"));
}

#[test]
fn seed_text_reads_in_ten_seconds() {
    let t = report("seed", &[]);
    let first = t.lines().next().unwrap();
    assert!(
        first.starts_with("VERDICT: GHOST MEMORY: 2.47 GiB (68% of RAM)"),
        "{first}"
    );
    assert!(first.contains("raw6 :::58 (inode 27123) held by zebra (pid 3218), 73.2 MiB"));
    assert!(first.contains("Restarting or stopping zebra frees it"));
    assert!(first.contains("OOM killer cannot see"));
    for want in [
        "MemTotal",
        "- VmallocUsed",
        "= accounted",
        "Ghost = MemTotal - accounted",
        "2591452",
        "68.4% of RAM",
        "process RSS total (32 processes)",
        "110504",
        "shared pages count once per process",
        "Shmem",
        "MemAvailable",
        "3218/zebra",
        "76755840",
        "Skipped: nothing",
    ] {
        assert!(t.contains(want), "missing {want:?} in:\n{t}");
    }
}

#[test]
fn seed_shared_listening_socket_lists_every_prefork_child() {
    let v = report_json("seed", &["--top", "30"]);
    let socks = v.at("sockets").arr();
    assert_eq!(socks.len(), 30);
    let i = socks
        .iter()
        .position(|s| s.at("inode").i64() == 26002)
        .expect("httpd's :::80 in the top 30");
    let o = owners(&v, i);
    let pids: Vec<i64> = o.iter().map(|(p, _)| *p).collect();
    assert_eq!(pids, vec![3007, 32452, 32453, 32454, 32455, 32456]);
    assert!(o.iter().all(|(_, c)| c == "httpd"));
    let one = report_json("seed", &["--top", "1"]);
    assert_eq!(one.at("sockets").arr().len(), 1);
}

#[test]
fn vmalloc0_takes_vmalloc_from_vmallocinfo() {
    let v = report_json("vmalloc0-4x", &[]);
    check_contract(&v);
    assert_eq!(v.at("ghost.vmalloc_source").str(), "vmallocinfo");
    // 8647 vmalloc'd pages of 4 KiB; ioremap and vmap areas carry no pages.
    assert_eq!(v.at("ghost.terms.VmallocUsed").i64(), 34588);
    assert_eq!(v.at("ghost.ghost_kb").i64(), 18000);
    assert_eq!(v.at("verdict_kind").str(), "healthy");
    let t = report("vmalloc0-4x", &[]);
    assert!(t.starts_with("VERDICT: OK"), "{t}");
    assert!(t.contains("from vmallocinfo"), "{t}");
}

#[test]
fn forked_udp_socket_lists_parent_and_child() {
    let v = report_json("forked", &[]);
    check_contract(&v);
    let s0 = v.at("sockets.0");
    assert_eq!(s0.at("proto").str(), "udp");
    assert_eq!(s0.at("local").str(), "0.0.0.0:514");
    assert_eq!(s0.at("rx_queue").i64(), 0x16D0_0000);
    assert_eq!(s0.at("drops").i64(), 91234);
    assert_eq!(
        owners(&v, 0),
        vec![(400, "syslogd".to_string()), (401, "syslogd".to_string())]
    );
    // The child holds it on fds 5 and 7: still one owner.
    assert_eq!(v.at("sockets.0.owners").arr().len(), 2);
    let t = report("forked", &[]);
    assert!(t.contains("syslogd (pids 400, 401)"), "{t}");
    assert!(t.contains("400/syslogd,401/syslogd"), "{t}");
}

#[test]
fn vanished_pids_are_skipped_and_said() {
    let v = report_json("vanished", &[]);
    check_contract(&v);
    assert_eq!(v.at("sockets.0.inode").i64(), 5101);
    assert_eq!(owners(&v, 0), vec![(610, "snmpd".to_string())]);
    // 620 has no fd/, 640 is an empty directory.
    assert_eq!(v.at("owner_walk.pids_vanished").i64(), 2);
    let skipped: Vec<&str> = v.at("skipped").arr().iter().map(|s| s.str()).collect();
    assert!(
        skipped.iter().any(|s| s.contains("fd of 2 processes gone")),
        "{skipped:?}"
    );
    assert!(
        skipped
            .iter()
            .any(|s| s.contains("status of 1 process gone")),
        "{skipped:?}"
    );
    let t = report("vanished", &[]);
    assert!(t.contains("\nSkipped\n"), "{t}");
    assert!(t.contains("gone during the walk"), "{t}");
}

#[test]
fn garbled_tables_are_counted_not_fatal() {
    let v = report_json("garbled", &[]);
    check_contract(&v);
    assert_eq!(v.at("malformed_lines.udp").i64(), 4);
    assert_eq!(v.at("malformed_lines.tcp").i64(), 1);
    assert_eq!(v.at("malformed_lines.raw6").i64(), 1);
    assert_eq!(v.at("sockets_total.udp").i64(), 2);
    assert_eq!(v.at("sockets.0.local").str(), "10.0.0.1:4789");
    // The process name with a quote, backslash, ESC and a non-UTF-8 byte survives as data.
    let weird = v
        .at("sockets")
        .arr()
        .iter()
        .find(|s| s.at("inode").i64() == 7002)
        .expect("udp :53");
    assert_eq!(
        weird.at("owners.0.comm").str(),
        "we\"ird\\\u{1b}[31m\u{fffd}"
    );
    let t = report("garbled", &[]);
    assert!(t.contains("net/udp: 4 malformed line(s) skipped"), "{t}");
    assert!(
        !t.contains('\u{1b}'),
        "no raw escape bytes reach the terminal"
    );
    assert!(t.contains("710/we\"ird\\\\\\x1b[31m\u{fffd}"), "{t}");
}

#[test]
fn healthy_box_says_ok() {
    let v = report_json("healthy", &[]);
    check_contract(&v);
    assert_eq!(v.at("verdict_kind").str(), "healthy");
    let t = report("healthy", &[]);
    assert!(t.starts_with("VERDICT: OK"), "{t}");
    assert!(t.contains("every receive queue is empty"), "{t}");
}

#[test]
fn missing_meminfo_is_an_error_naming_the_file() {
    let dir = std::env::temp_dir().join(format!("gw-report-empty-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = run(&["report", "--proc-root", dir.to_str().unwrap()]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("meminfo"), "{err}");
    assert!(err.contains("No such file"), "{err}");
}
