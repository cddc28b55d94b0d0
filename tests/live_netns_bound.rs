//! Network namespaces cost the agent a bounded amount per poll whatever unprivileged users
//! make (issue 20): `unshare -Urn` is free, so 80 of them are made as `nobody` (more than the
//! 64 the agent used to track at all) and a flood is put in the last one. The agent reads its
//! own namespace and at most `NETNS_PER_POLL` others per poll, in turns, so it must still find
//! the flood within one rotation, audit the cap once (not once per poll) and show the
//! per-namespace cost in the status file. Root only; every process and socket goes with the
//! test.

mod support;

use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::json;
use support::*;

const NAMESPACES: usize = 80;
const PER_POLL: u64 = 16; // ghostwatch::observe::sockets::NETNS_PER_POLL
const INTERVAL_MS: u64 = 100;

fn netns_inode(pid: u32) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/proc/{pid}/ns/net"))
        .ok()
        .map(|m| m.ino())
}

/// A UDP socket on 127.0.0.1 inside `pid`'s network namespace (lo brought up), flooded with
/// 8 MB it never reads (more than the per-CPU reserve of udp's memory counter, so sockstat
/// moves and the agent reads the udp tables at once); made from a thread that setns()es there, so the socket is this
/// test's and closes with it.
fn flooded_socket_in(pid: u32) -> std::net::UdpSocket {
    let st = Command::new("nsenter")
        .args([
            "-t",
            &pid.to_string(),
            "-n",
            "ip",
            "link",
            "set",
            "lo",
            "up",
        ])
        .status()
        .unwrap();
    assert!(st.success(), "lo up in {pid}'s namespace");
    let f = std::fs::File::open(format!("/proc/{pid}/ns/net")).unwrap();
    std::thread::spawn(move || {
        // SAFETY: setns on an nsfs fd we hold; affects this thread only.
        assert_eq!(unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) }, 0);
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let big: libc::c_int = 64 << 20;
        // SAFETY: setsockopt(SO_RCVBUFFORCE) with a valid int on our own socket.
        let r = unsafe {
            libc::setsockopt(
                rx.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                (&big as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(r, 0);
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        for _ in 0..2000 {
            let _ = tx.send_to(&[0x5a; 4000], rx.local_addr().unwrap());
        }
        rx
    })
    .join()
    .unwrap()
}

#[test]
fn a_flood_in_the_last_of_many_unprivileged_namespaces_is_found_at_a_bounded_cost() {
    if !require_root("network namespaces made as nobody, setns")
        || !require_program("setpriv", "apt-get install util-linux")
        || !require_program("ip", "apt-get install iproute2")
    {
        return;
    }
    // NAMESPACES sleepers, each as unshare -Urn made it, as nobody.
    let mut kids = Vec::new();
    for _ in 0..NAMESPACES {
        let c = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .args(["unshare", "-Urn", "sleep", "600"])
            .stdin(Stdio::null())
            .spawn()
            .expect("setpriv unshare");
        kids.push(ChildGuard(c));
    }
    let ours = netns_inode(std::process::id()).unwrap();
    let last = kids.last().unwrap().pid();
    // unshare execs sleep once the namespaces are made: wait for the last one's.
    wait_for(Duration::from_secs(10), || {
        netns_inode(last).filter(|&i| i != ours)
    })
    .expect("the last sleeper in a namespace of its own");
    let rx = flooded_socket_in(last);
    let inode = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(format!("/proc/self/fd/{}", rx.as_raw_fd()))
            .unwrap()
            .ino()
    };

    let dir = TempDir::new("netnsbound");
    let cfg = dir.join("gw.json");
    let status = dir.join("status.json");
    write_trusted(
        &cfg,
        format!(
            r#"{{ "interval_ms": {INTERVAL_MS}, "syslog": "stderr", "status_file": "{}",
  "backlog_warn_bytes": 98304, "backlog_act_bytes": 1048576,
  "ghost_warn_kb": 536870912, "ghost_act_kb": 1073741824, "mlock": false, "oom_score_adj": 0,
  "rules": [] }}
"#,
            status.display()
        ),
    );
    let t0 = Instant::now();
    let agent = AgentProc::start(&["-c", cfg.to_str().unwrap()], dir.path());
    let found = wait_for(Duration::from_secs(20), || {
        agent
            .stderr()
            .lines()
            .find(|l| l.contains("event=threshold") && l.contains(&format!("inode={inode}")))
            .map(str::to_string)
    })
    .unwrap_or_else(|| panic!("flood in the last namespace not found:\n{}", agent.stderr()));
    println!("found after {:?}: {found}", t0.elapsed());
    // A few polls more: the cap is said once, not every poll.
    std::thread::sleep(Duration::from_millis(10 * INTERVAL_MS));
    let capped: Vec<String> = agent
        .stderr()
        .lines()
        .filter(|l| l.contains("event=netns_capped"))
        .map(str::to_string)
        .collect();
    assert_eq!(capped.len(), 1, "{capped:?}");
    assert!(
        field(&capped[0], "per_poll") == Some(&PER_POLL.to_string()),
        "{}",
        capped[0]
    );
    let st = json::parse(&std::fs::read_to_string(&status).unwrap()).unwrap();
    let ns = st.at("netns");
    println!(
        "status netns: known {} read {} deferred {} cost_us {} cost_per_ns_us {} rotation_polls {}",
        ns.at("known").i64(),
        ns.at("read").i64(),
        ns.at("deferred").i64(),
        ns.at("cost_us").i64(),
        ns.at("cost_per_ns_us").i64(),
        ns.at("rotation_polls").i64()
    );
    assert!(ns.at("known").i64() as usize > NAMESPACES, "{st:?}");
    // Ours is not counted; the suspect's namespace is pinned on top of the turns.
    assert!(ns.at("read").i64() as u64 <= PER_POLL + 1, "{st:?}");
    assert!(ns.at("deferred").i64() > 0, "{st:?}");
    assert!(ns.at("cost_per_ns_us").i64() > 0, "{st:?}");
    drop(agent);
    drop(rx);
    drop(kids);
}
