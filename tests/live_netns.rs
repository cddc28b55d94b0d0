//! A flooded socket one network namespace away (a container, a netns VRF): `report` must find
//! it, name its namespace and its owner, and the agent must drain it — even though neither
//! runs in that namespace. Root only; the namespace and every process are removed on exit.

mod support;

use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::process::Command;
use std::time::Duration;
use support::json::{self, Value};
use support::*;

const MIB: u64 = 1 << 20;
const PORT: u16 = 5353;

/// `ip netns add NAME`, deleted on drop.
struct Netns(String);

impl Netns {
    fn add(name: &str) -> Netns {
        let _ = Command::new("ip").args(["netns", "del", name]).status();
        let st = Command::new("ip").args(["netns", "add", name]).status();
        assert!(st.is_ok_and(|s| s.success()), "ip netns add {name}");
        let n = Netns(name.to_string());
        n.exec(&["ip", "link", "set", "lo", "up"]);
        n
    }
    fn exec(&self, argv: &[&str]) {
        let st = Command::new("ip")
            .args(["netns", "exec", &self.0])
            .args(argv)
            .status();
        assert!(st.is_ok_and(|s| s.success()), "ip netns exec {argv:?}");
    }
    fn inode(&self) -> u64 {
        std::fs::metadata(format!("/run/netns/{}", self.0))
            .expect("/run/netns entry")
            .ino()
    }
    /// Sends `count` datagrams of `size` bytes to 127.0.0.1:`port` inside the namespace, from
    /// a thread that setns()es there (setns(CLONE_NEWNET) moves only the calling thread).
    fn flood(&self, port: u16, count: usize, size: usize) {
        let f = std::fs::File::open(format!("/run/netns/{}", self.0)).unwrap();
        std::thread::spawn(move || {
            // SAFETY: setns on an nsfs fd we hold; affects this thread only.
            assert_eq!(unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) }, 0);
            let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let buf = vec![0x5au8; size];
            for _ in 0..count {
                let _ = s.send_to(&buf, ("127.0.0.1", port));
            }
        })
        .join()
        .unwrap();
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// rx_queue of 127.0.0.1:`port` as the namespace of `pid` shows it in /proc/PID/net/udp.
fn rx_queue_in(pid: u32, port: u16) -> Option<u64> {
    let want = format!("0100007F:{port:04X}");
    let text = std::fs::read_to_string(format!("/proc/{pid}/net/udp")).ok()?;
    text.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.get(1) == Some(&want.as_str()))
            .then(|| u64::from_str_radix(f.get(4)?.split(':').nth(1)?, 16).ok())
            .flatten()
    })
}

fn report_json() -> Value {
    let (st, text, err) = ghostwatch(&["report", "--json", "--top", "10"]);
    assert!(st.success(), "{err}");
    json::parse(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[test]
fn a_flooded_socket_in_another_namespace_is_found_attributed_and_drained() {
    if !require_root("network namespaces")
        || !support::require_program("ip", "apt-get install iproute2")
    {
        return;
    }
    let ns = Netns::add(&format!("gw-ns-{}", std::process::id()));
    let dir = TempDir::new("netns");
    let pidfile = dir.join("testd.pid");
    let testd = ChildGuard(
        Command::new("ip")
            .args(["netns", "exec", &ns.0])
            .arg(testd_bin())
            .args(["--udp", &PORT.to_string(), "--pidfile"])
            .arg(&pidfile)
            .spawn()
            .unwrap(),
    );
    let socks = pidfile.with_extension("pid.socks");
    let inode: u64 = support::wait_for(Duration::from_secs(5), || {
        let s = std::fs::read_to_string(&socks).ok()?;
        s.lines()
            .find_map(|l| l.strip_prefix("udp ")?.trim().parse().ok())
    })
    .expect("gw-testd came up inside the namespace");
    let pid = testd.pid(); // ip netns exec execs the daemon in place
    ns.flood(PORT, 300, 60_000);
    let queued = rx_queue_in(pid, PORT).expect("testd's socket in its namespace's udp table");
    assert!(queued > 4 * MIB, "flood queued only {queued} bytes");
    // Not visible from our own namespace's table: only a per-namespace read finds it.
    assert!(
        !std::fs::read_to_string("/proc/self/net/udp")
            .unwrap()
            .contains(&format!(" {inode} ")),
        "the test is not meant to run inside {}",
        ns.0
    );

    // report: found, with its namespace (inode and name) and its owner.
    let rep = report_json();
    assert_eq!(rep.at("socket_source").str(), "sock_diag");
    let row = rep
        .at("sockets")
        .arr()
        .iter()
        .find(|s| s.at("inode").i64() as u64 == inode)
        .unwrap_or_else(|| panic!("socket {inode} not in the report: {rep:?}"));
    assert_eq!(row.at("netns").i64() as u64, ns.inode());
    assert_eq!(row.at("netns_name").str(), ns.0);
    assert!(row.at("rx_queue").i64() as u64 > 4 * MIB);
    let owners: Vec<(u32, String)> = row
        .at("owners")
        .arr()
        .iter()
        .map(|o| (o.at("pid").i64() as u32, o.at("comm").str().to_string()))
        .collect();
    assert!(
        owners.contains(&(pid, "gw-testd".to_string())),
        "{owners:?}"
    );

    // The agent drains it through pidfd_getfd, which works across namespaces.
    let cfg = dir.join("netns.json");
    std::fs::write(
        &cfg,
        format!(
            r#"{{
  "interval_ms": 200,
  "syslog": "stderr",
  "backlog_warn_bytes": {},
  "backlog_act_bytes": {},
  "ghost_warn_kb": 536870912,
  "ghost_act_kb": 1073741824,
  "mlock": false,
  "oom_score_adj": 0,
  "rules": [ {{ "name": "drain-ns", "trigger": "backlog", "comm": "gw-testd", "action": "drain" }} ]
}}
"#,
            MIB,
            4 * MIB
        ),
    )
    .unwrap();
    let mut agent = AgentProc::start(&["-c", cfg.to_str().unwrap()], dir.path());
    let line = support::wait_for(Duration::from_secs(15), || {
        agent
            .stderr()
            .lines()
            .find(|l| l.contains("event=action") && l.contains("rule=drain-ns"))
            .map(str::to_string)
    })
    .unwrap_or_else(|| panic!("no drain line; stderr:\n{}", agent.stderr()));
    println!("{line}");
    assert!(line.contains("result=ok"), "{line}");
    assert!(line.contains(&format!("inode={inode}")), "{line}");
    assert!(line.contains(&format!("pid={pid}")), "{line}");
    assert_eq!(agent.stop(2_000), Some(0));
    let after = rx_queue_in(pid, PORT).unwrap();
    assert!(after < MIB, "still {after} bytes queued after the drain");
    drop(testd);
}
