//! `ghostwatch report` end to end: the built binary on each fixture tree under
//! tests/fixtures/ (rebuilt by tests/fixtures/make_fixtures.py), then on the live /proc as
//! root and as user nobody.

#[path = "common/json.rs"]
mod json;

use json::Value;
use std::os::unix::io::AsRawFd;
use std::path::PathBuf;
use std::process::{Command, Output};

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

/// The contract shape every report must have, whatever the box.
fn check_contract(v: &Value) {
    let g = v.at("ghost");
    let total = g.at("mem_total_kb").i64();
    assert_eq!(
        g.at("ghost_kb").i64(),
        total - g.at("accounted_kb").i64(),
        "ghost = total - accounted"
    );
    let sum: i64 = g.at("terms").obj().iter().map(|(_, kb)| kb.i64()).sum();
    assert_eq!(sum, g.at("accounted_kb").i64(), "terms add up to accounted");
    assert!(["meminfo", "vmallocinfo"].contains(&g.at("vmalloc_source").str()));
    let socks = v.at("sockets").arr();
    let protos = [
        "tcp", "tcp6", "udp", "udp6", "raw", "raw6", "udplite", "udplite6", "netlink", "packet",
    ];
    let mut last = i64::MAX;
    for s in socks {
        for k in [
            "proto", "local", "rx_queue", "tx_queue", "drops", "inode", "uid", "owners",
        ] {
            assert!(s.has(k), "socket lacks {k}: {s:?}");
        }
        assert!(protos.contains(&s.at("proto").str()));
        let rx = s.at("rx_queue").i64();
        assert!(rx <= last, "sockets sorted by rx_queue descending");
        last = rx;
        let pids: Vec<i64> = s
            .at("owners")
            .arr()
            .iter()
            .map(|o| o.at("pid").i64())
            .collect();
        let mut sorted = pids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(pids, sorted, "owners by pid, each once");
    }
    assert!(v.at("processes.rss_total_kb").i64() >= 0);
    assert!(v.at("processes.count").i64() >= 0);
    assert!(!v.at("verdict").str().is_empty());
    v.at("skipped").arr();
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

// ---------------------------------------------------------------------------- live /proc

fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

/// Returns true if the test must skip (not root); panics instead when CI=true.
fn skip_unless_root(what: &str) -> bool {
    if is_root() {
        return false;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("needs root, and CI=true forbids skipping: {what}");
    }
    println!("SKIPPED (needs root): {what}");
    true
}

#[test]
fn live_report_as_root() {
    if skip_unless_root("live report as root") {
        return;
    }
    let out = run(&["report"]);
    assert!(out.status.success(), "{:?}", out);
    let t = String::from_utf8(out.stdout).unwrap();
    assert!(t.starts_with("VERDICT: "), "{t}");
    let out = run(&["report", "--json"]);
    assert!(out.status.success());
    let v = json::parse(&String::from_utf8(out.stdout).unwrap()).unwrap();
    check_contract(&v);
    assert!(v.at("processes.count").i64() > 1);
    assert!(
        v.at("ghost.vmallocinfo_kb") != &Value::Null,
        "root reads vmallocinfo"
    );
}

#[test]
fn live_report_as_nobody_skips_and_says_so() {
    if skip_unless_root("setpriv to nobody") {
        return;
    }
    let nobody = |extra: &[&str]| {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            BIN,
            "report",
        ]);
        c.args(extra);
        c.output().expect("setpriv")
    };
    let out = nobody(&[]);
    assert!(
        out.status.success(),
        "{:?} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let t = String::from_utf8(out.stdout).unwrap();
    assert!(t.starts_with("VERDICT: "), "{t}");
    assert!(t.contains("\nSkipped\n"), "{t}");
    assert!(t.contains("vmallocinfo: Permission denied"), "{t}");
    assert!(t.contains("run as root to see owners"), "{t}");
    let out = nobody(&["--json"]);
    assert!(out.status.success());
    let v = json::parse(&String::from_utf8(out.stdout).unwrap()).unwrap();
    check_contract(&v);
    assert!(v.at("owner_walk.pids_denied").i64() > 0);
    assert_eq!(v.at("ghost.vmallocinfo_kb"), &Value::Null);
}

#[test]
fn live_unread_udp_socket_is_found_with_its_owner() {
    // A socket of ours with unread datagrams on loopback: report must list it and name us.
    let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = rx.local_addr().unwrap();
    for _ in 0..64 {
        tx.send_to(&[0x5a; 1000], addr).unwrap();
    }
    let mut sb: libc::stat = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::fstat(rx.as_raw_fd(), &mut sb) }, 0);
    let out = run(&["report", "--json", "--top", "100"]);
    assert!(out.status.success());
    let v = json::parse(&String::from_utf8(out.stdout).unwrap()).unwrap();
    let s = v
        .at("sockets")
        .arr()
        .iter()
        .find(|s| s.at("inode").i64() == sb.st_ino as i64)
        .expect("our socket is among the top 100");
    assert_eq!(s.at("proto").str(), "udp");
    assert_eq!(s.at("local").str(), addr.to_string());
    assert!(s.at("rx_queue").i64() >= 64_000, "{s:?}");
    let me = std::process::id() as i64;
    assert!(
        s.at("owners").arr().iter().any(|o| o.at("pid").i64() == me),
        "{s:?}"
    );
}
