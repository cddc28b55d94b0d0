//! The agent's syslog delivery against real daemons and hostile targets (issues 19 and 20):
//! `ghostwatch run` on the seed tree (a Ghost incident at act level, `log` rules with no
//! cooldown: audit lines every poll) sending to
//! (a) a private rsyslogd stopped for 10 s and started again, (b) the same over TCP (imtcp),
//! every line arriving once, in order, with its original timestamp;
//! (c) a TCP listener that never accepts, one that accepts and never reads and a unix datagram
//! socket nobody reads: the longest gap between polls stays within one interval + 50 ms;
//! (d) RFC 5424 parsed by rsyslogd (app-name, procid, msgid, structured data via mmpstrucdata).
//!
//! `GW_AGENT_BIN=PATH` runs another build of the agent (e.g. main's, for before figures).

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::*;

const INTERVAL_MS: u64 = 200;

fn agent_bin() -> PathBuf {
    std::env::var_os("GW_AGENT_BIN").map_or_else(ghostwatch_bin, PathBuf::from)
}

fn ready(test: &str) -> bool {
    require_program("rsyslogd", INSTALL_RSYSLOG) && require_root(test)
}

/// A config on the seed tree: `rules` log rules on the ghost trigger (one line each per poll).
fn config(dir: &TempDir, syslog: &str, extra: &str, rules: usize) -> PathBuf {
    let rules: Vec<String> = (0..rules)
        .map(|i| format!(r#"{{ "name": "ghost-log-{i}", "trigger": "ghost", "action": "log" }}"#))
        .collect();
    let p = dir.join("gw.json");
    // Another build (GW_AGENT_BIN, e.g. main's for before figures) may not know the ring's key.
    let extra = if std::env::var_os("GW_AGENT_BIN").is_some() {
        extra.replace(r#""syslog_queue_lines": 256,"#, "")
    } else {
        extra.to_string()
    };
    let text = format!(
        r#"{{ "interval_ms": {INTERVAL_MS}, "syslog": "{syslog}", "cooldown_s": 0, "mlock": false,
  "oom_score_adj": 0, "status_file": "{status}", {extra}
  "rules": [{rules}] }}
"#,
        status = dir.join("status.json").display(),
        rules = rules.join(", ")
    );
    write_trusted(&p, text);
    p
}

fn start_agent(dir: &TempDir, cfg: &Path, root: &Path) -> AgentProc {
    let (cfg, root) = (cfg.to_str().unwrap(), root.to_str().unwrap());
    AgentProc::start_bin(&agent_bin(), &["-c", cfg, "--proc-root", root], dir.path())
}

/// The status file's JSON (None until the first poll wrote it).
fn status(dir: &TempDir) -> Option<json::Value> {
    json::parse(&std::fs::read_to_string(dir.join("status.json")).ok()?).ok()
}

fn get<'a>(v: &'a json::Value, key: &str) -> Option<&'a json::Value> {
    match v {
        json::Value::Obj(kv) => kv.iter().find(|(k, _)| k == key).map(|(_, v)| v),
        _ => None,
    }
}

fn num(v: &json::Value, path: &[&str]) -> Option<u64> {
    let mut v = v;
    for k in path {
        v = get(v, k)?;
    }
    match v {
        json::Value::Num(n) => n.parse().ok(),
        _ => None,
    }
}

/// The rsyslog output lines of the agent: (time reported, time received, message), for
/// the `timed` template.
fn arrived(r: &Rsyslogd) -> Vec<(u64, u64, String)> {
    std::fs::read_to_string(&r.out)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, ' ');
            let rep = f.next()?.parse().ok()?;
            let got = f.next()?.parse().ok()?;
            Some((rep, got, f.next()?.trim_start().to_string()))
        })
        .collect()
}

const TIMED: &str =
    "%timereported:::date-unixtimestamp% %timegenerated:::date-unixtimestamp% %msg%\\n";

/// (a) and (b): the collector goes away for 10 s while the agent audits, then comes back.
fn collector_down_10s(tcp: bool) {
    let mut rs = Rsyslogd::start_with(TIMED, "", "");
    let dir = TempDir::new(if tcp { "deliver-tcp" } else { "deliver-unix" });
    let root = seed_copy(&dir);
    let target = if tcp {
        format!("tcp:127.0.0.1:{}", rs.tcp_port)
    } else {
        format!("unix:{}", rs.sock.display())
    };
    let cfg = config(&dir, &target, r#""syslog_queue_lines": 256,"#, 1);
    let mut agent = start_agent(&dir, &cfg, &root);
    let seq_of = |m: &str| field(m, "seq").and_then(|s| s.parse::<u64>().ok());
    let before = wait_for(Duration::from_secs(10), || {
        let a = arrived(&rs);
        (a.iter().filter(|l| l.2.contains("event=action")).count() >= 5).then_some(a.len())
    })
    .unwrap_or_else(|| panic!("no action lines; agent stderr: {}", agent.stderr()));
    rs.stop_gracefully();
    let down_at = Instant::now();
    std::thread::sleep(Duration::from_secs(10));
    rs.restart();
    let up_s = down_at.elapsed().as_secs_f64();
    // Lines wait at most a second for the next attempt, then go out back to back.
    std::thread::sleep(Duration::from_secs(3));
    let st = status(&dir).expect("status file");
    let code = agent.stop(5_000);
    assert_eq!(code, Some(0), "agent stderr: {}", agent.stderr());
    let sent = num(&st, &["seq"]).unwrap();
    // Every line the agent numbered, up to and including the stop line.
    let all = wait_for(Duration::from_secs(5), || {
        let a = arrived(&rs);
        a.iter().any(|l| l.2.starts_with("event=stop")).then_some(a)
    })
    .unwrap_or_else(|| {
        panic!(
            "no stop line; rsyslog has {:?}",
            std::fs::read_to_string(&rs.out)
        )
    });
    let seqs: Vec<u64> = all.iter().filter_map(|l| seq_of(&l.2)).collect();
    let last = *seqs.last().unwrap();
    let mut sorted = seqs.clone();
    sorted.sort_unstable();
    sorted.dedup();
    let dups = seqs.len() - sorted.len();
    let missing: Vec<u64> = (1..=last)
        .filter(|s| sorted.binary_search(s).is_err())
        .collect();
    let in_order = seqs.windows(2).all(|w| w[0] < w[1]);
    // Lines sent while it was down kept the time they were made: reported well before received.
    let late = all.iter().filter(|l| l.1 >= l.0 + 3).count();
    let sk = get(&st, "syslog").expect("syslog stats");
    println!(
        "{}: down {up_s:.1} s; agent numbered {last} lines (status seq {sent} before the stop line); \
         arrived {} (with seq {}), missing {missing:?}, duplicates {dups}, in order {in_order}; \
         {late} arrived >= 3 s after their timestamp; lines_before_stop={before}; status syslog {sk:?}",
        if tcp { "tcp" } else { "unix" },
        all.len(),
        seqs.len()
    );
    assert!(missing.is_empty(), "missing seq {missing:?}");
    assert_eq!(dups, 0, "duplicated lines");
    assert!(in_order, "out of order: {seqs:?}");
    assert!(
        late >= 20,
        "only {late} lines carry their original (earlier) timestamp"
    );
    assert!(num(sk, &["lines_delivered_late"]).unwrap() >= 20, "{sk:?}");
    assert_eq!(num(sk, &["lines_dropped"]), Some(0), "{sk:?}");
    assert!(
        agent.stderr().contains("event=action"),
        "stderr keeps its copy"
    );
}

#[test]
fn rsyslogd_stopped_10s_every_line_arrives_in_order_once() {
    if !ready("rsyslogd_stopped_10s_every_line_arrives_in_order_once") {
        return;
    }
    collector_down_10s(false);
}

#[test]
fn tcp_collector_restarted_every_line_arrives_in_order_once() {
    if !ready("tcp_collector_restarted_every_line_arrives_in_order_once") {
        return;
    }
    collector_down_10s(true);
}

/// A full ring: the oldest lines go, and one `event=dropped lines=N` line says so first once
/// delivery resumes.
#[test]
fn a_full_ring_drops_the_oldest_and_says_so_once() {
    if !ready("a_full_ring_drops_the_oldest_and_says_so_once") {
        return;
    }
    let mut rs = Rsyslogd::start_with(TIMED, "", "");
    let dir = TempDir::new("deliver-drop");
    let root = seed_copy(&dir);
    let target = format!("unix:{}", rs.sock.display());
    let cfg = config(&dir, &target, r#""syslog_queue_lines": 4,"#, 1);
    let mut agent = start_agent(&dir, &cfg, &root);
    rs.wait_line("event=action").expect("first action line");
    rs.stop_gracefully();
    std::thread::sleep(Duration::from_secs(4));
    rs.restart();
    let line = rs
        .wait_line("event=dropped")
        .unwrap_or_else(|| panic!("no dropped line; agent stderr: {}", agent.stderr()));
    std::thread::sleep(Duration::from_millis(1500));
    let st = status(&dir).unwrap();
    agent.stop(5_000);
    let n: u64 = field(&line, "lines").unwrap().parse().unwrap();
    let sk = get(&st, "syslog").unwrap();
    println!("{line}; status syslog {sk:?}");
    assert!(n >= 5, "{line}");
    assert_eq!(num(sk, &["lines_dropped"]), Some(n), "{sk:?}");
    let all = arrived(&rs);
    assert_eq!(
        all.iter().filter(|l| l.2.contains("event=dropped")).count(),
        1
    );
    // The notice comes first, then the 4 newest waiting lines (consecutive seq).
    let i = all
        .iter()
        .position(|l| l.2.contains("event=dropped"))
        .unwrap();
    let seqs: Vec<u64> = all[..i]
        .iter()
        .chain(&all[i + 1..])
        .filter_map(|l| field(&l.2, "seq")?.parse().ok())
        .collect();
    let gaps: Vec<u64> = seqs
        .windows(2)
        .map(|w| w[1] - w[0] - 1)
        .filter(|&g| g > 0)
        .collect();
    assert_eq!(gaps, [n], "the one gap is the dropped lines: {seqs:?}");
}

/// The hostile targets of (c), each kept alive while the agent runs against it.
#[allow(dead_code)] // held open, never read: that is the point
enum Target {
    /// A listener with its accept queue full: connects never complete.
    NeverAccepts(Vec<std::net::TcpStream>, std::os::fd::OwnedFd),
    /// Accepts, never reads; tiny receive buffer so the agent's sends soon find it full.
    NeverReads(std::net::TcpListener),
    /// A bound unix datagram socket nobody reads.
    FullUnix(std::os::unix::net::UnixDatagram),
}

fn never_accepts() -> (String, Target) {
    use std::os::fd::FromRawFd;
    // SAFETY: plain socket calls on a fresh fd owned from here on.
    let (fd, port) = unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0);
        let mut sa: libc::sockaddr_in = core::mem::zeroed();
        sa.sin_family = libc::AF_INET as _;
        sa.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
        let len = size_of::<libc::sockaddr_in>() as libc::socklen_t;
        assert_eq!(
            libc::bind(fd, (&sa as *const libc::sockaddr_in).cast(), len),
            0
        );
        assert_eq!(libc::listen(fd, 0), 0);
        let mut len = len;
        libc::getsockname(fd, (&mut sa as *mut libc::sockaddr_in).cast(), &mut len);
        (
            std::os::fd::OwnedFd::from_raw_fd(fd),
            u16::from_be(sa.sin_port),
        )
    };
    // Fill the accept queue (backlog 0 holds one); later SYNs are dropped.
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut fillers = Vec::new();
    for _ in 0..2 {
        if let Ok(s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
            fillers.push(s);
        }
    }
    assert!(!fillers.is_empty());
    (
        format!("tcp:127.0.0.1:{port}"),
        Target::NeverAccepts(fillers, fd),
    )
}

static STOP_ACCEPTING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn never_reads() -> (String, Target, std::thread::JoinHandle<()>) {
    use std::os::fd::AsRawFd;
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let small: libc::c_int = 2048;
    // SAFETY: valid fd and option value; accepted sockets inherit the small receive buffer.
    unsafe {
        libc::setsockopt(
            l.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&small as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
    let port = l.local_addr().unwrap().port();
    let l2 = l.try_clone().unwrap();
    l2.set_nonblocking(true).unwrap();
    // Accepts (and holds, unread) every connection until the listener is closed.
    let t = std::thread::spawn(move || {
        let mut held = Vec::new();
        let end = Instant::now() + Duration::from_secs(30);
        while Instant::now() < end {
            match l2.accept() {
                Ok((s, _)) => held.push(s),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Err(_) => break,
            }
            if STOP_ACCEPTING.load(std::sync::atomic::Ordering::Relaxed) {
                break;
            }
        }
    });
    (format!("tcp:127.0.0.1:{port}"), Target::NeverReads(l), t)
}

/// Runs the agent against `target` for `secs` with 16 rules (16 lines a poll); returns
/// (longest poll gap, longest poll) in µs from its status file (the gap as 0 where the build
/// has no `max_poll_gap_us`) and the status.
fn stall_run(tag: &str, target: &str, secs: u64) -> Option<(u64, u64, json::Value)> {
    let dir = TempDir::new(tag);
    let root = seed_copy(&dir);
    let cfg = config(&dir, target, "", 16);
    let mut agent = start_agent(&dir, &cfg, &root);
    // A second witness from outside: the longest time the status file's `cycles` stood still
    // (sampled every 5 ms), which works for any build.
    let end = Instant::now() + Duration::from_secs(secs);
    let (mut last, mut since, mut seen_gap) = (None, Instant::now(), Duration::ZERO);
    while Instant::now() < end {
        let c = status(&dir).and_then(|v| num(&v, &["cycles"]));
        if c.is_some() && c != last {
            if last.is_some() {
                seen_gap = seen_gap.max(since.elapsed());
            }
            (last, since) = (c, Instant::now());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let Some(st) = status(&dir) else {
        println!("{tag}: no poll completed in {secs} s (no status file)");
        agent.stop(5_000);
        return None;
    };
    agent.stop(5_000);
    let gap = num(&st, &["max_poll_gap_us"]).unwrap_or(0);
    let cycle = num(&st, &["max_cycle_us"]).unwrap();
    let cycles = num(&st, &["cycles"]).unwrap();
    println!(
        "{tag}: {cycles} polls in {secs} s (interval {INTERVAL_MS} ms), max_poll_gap_us {gap}, \
         max_cycle_us {cycle}, longest stand-still of `cycles` seen from outside {} ms, syslog {:?}",
        seen_gap.as_millis(),
        get(&st, "syslog")
    );
    Some((gap, cycle, st))
}

/// (c): no target, whatever it does, holds a poll up.
#[test]
fn syslog_targets_that_never_take_lines_do_not_stall_polls() {
    if !require_root("syslog_targets_that_never_take_lines_do_not_stall_polls") {
        return;
    }
    let dir = TempDir::new("full-unix");
    let path = dir.join("full.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    let (t1, never_acc) = never_accepts();
    let (t2, never_read, th) = never_reads();
    let cases = [
        ("never-accepts", t1, Some(never_acc)),
        ("never-reads", t2, Some(never_read)),
        (
            "full-unix-dgram",
            format!("unix:{}", path.display()),
            Some(Target::FullUnix(sock)),
        ),
    ];
    let mut failures = Vec::new();
    for (tag, target, keep) in cases {
        let Some((gap, cycle, st)) = stall_run(tag, &target, 6) else {
            failures.push(format!("{tag}: no poll completed"));
            continue;
        };
        let limit = (INTERVAL_MS + 50) * 1000;
        if gap == 0 || gap > limit || cycle > 50_000 {
            failures.push(format!(
                "{tag}: max_poll_gap_us {gap} (limit {limit}), max_cycle_us {cycle}"
            ));
        }
        if tag != "never-accepts" {
            // The target really was full: lines had to wait.
            let queued = num(&st, &["syslog", "lines_queued"]).unwrap_or(0);
            if queued == 0 {
                failures.push(format!(
                    "{tag}: nothing was queued, the target never filled"
                ));
            }
        }
        drop(keep);
    }
    STOP_ACCEPTING.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = th.join();
    assert!(failures.is_empty(), "{failures:#?}");
}

const SD: &str = "ghostwatch@32473";

/// (d): RFC 5424 as rsyslogd parses it, over the unix socket and over TCP (octet counting).
#[test]
fn rfc5424_fields_as_rsyslogd_parses_them() {
    if !ready("rfc5424_fields_as_rsyslogd_parses_them") {
        return;
    }
    let template = format!(
        "app=%app-name% procid=%procid% msgid=%msgid% sd_rule=%$!rfc5424-sd!{SD}!rule% sd_seq=%$!rfc5424-sd!{SD}!seq% sd_comm=%$!rfc5424-sd!{SD}!comm% prot=%protocol-version% MSG %msg%\\n"
    );
    let actions = r#"module(load="mmpstrucdata")
action(type="mmpstrucdata")"#;
    for tcp in [false, true] {
        let rs = Rsyslogd::start_with(&template, actions, r#"UseSpecialParser="off""#);
        let dir = TempDir::new("rfc5424");
        let root = seed_copy(&dir);
        let target = if tcp {
            format!("tcp:127.0.0.1:{}", rs.tcp_port)
        } else {
            format!("unix:{}", rs.sock.display())
        };
        let cfg = config(&dir, &target, r#""syslog_format": "rfc5424","#, 1);
        let mut agent = start_agent(&dir, &cfg, &root);
        let pid = agent.pid();
        let line = rs.wait_line("msgid=action").unwrap_or_else(|| {
            panic!(
                "no action line; rsyslog has {:?}; agent stderr {}",
                std::fs::read_to_string(&rs.out),
                agent.stderr()
            )
        });
        let start = rs.wait_line("msgid=start").expect("start line");
        agent.stop(5_000);
        println!("{}: {line}\n  {start}", if tcp { "tcp" } else { "unix" });
        assert!(
            line.starts_with(&format!(
                "app=ghostwatch procid={pid} msgid=action sd_rule=ghost-log-0 "
            )),
            "{line}"
        );
        let (_, msg) = line.split_once(" MSG ").unwrap();
        let msg = msg.trim_start();
        assert!(msg.starts_with("event=action rule=ghost-log-0 "), "{line}");
        assert_eq!(field(&line, "sd_seq"), field(msg, "seq"), "{line}");
        assert_eq!(field(&line, "prot"), Some("1"), "{line}");
        // The owner's comm from the seed tree, the same in both.
        if let Some(c) = field(msg, "comm") {
            assert_eq!(field(&line, "sd_comm"), Some(c.trim_matches('"')), "{line}");
        }
        assert!(
            start.contains("procid=") && start.contains(" MSG event=start ")
                || start.contains(" MSG  event=start "),
            "{start}"
        );
        // Frames stay separate over TCP: every line is one message.
        let text = std::fs::read_to_string(&rs.out).unwrap();
        assert!(
            text.lines().all(|l| l.starts_with("app=ghostwatch ")),
            "{text}"
        );
    }
}
