//! The syslog target's own resolver (issue 16: no musl getaddrinfo) against DNS servers on
//! loopback: a tiny responder thread on 127.0.0.1 (the resolver pointed at it through a
//! resolv.conf of the test's and its port), one that never answers on 127.0.0.2, and the
//! agent binary as root in a private mount namespace with its own /etc/hosts and
//! /etc/resolv.conf bind-mounted over the box's, sending a real audit line to a name.
//!
//! Everything stays on loopback; responder threads end with their test.

mod support;

use ghostwatch::output::resolve::{MAX_LOOKUP_MS, Sources, resolve_from};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use support::*;

const A: u16 = 1;
const CNAME: u16 = 5;
const AAAA: u16 = 28;

/// The question of a query: (lowercased dotted name, type).
fn question(q: &[u8]) -> Option<(String, u16)> {
    let mut i = 12;
    let mut name = Vec::new();
    loop {
        let n = *q.get(i)? as usize;
        if n == 0 {
            break;
        }
        if !name.is_empty() {
            name.push(b'.');
        }
        name.extend_from_slice(q.get(i + 1..i + 1 + n)?);
        i += 1 + n;
    }
    let t = u16::from_be_bytes([*q.get(i + 1)?, *q.get(i + 2)?]);
    Some((String::from_utf8(name).ok()?.to_ascii_lowercase(), t))
}

/// What a zone says of (name, type): records (type, rdata), or None for NXDOMAIN.
type Zone = fn(&str, u16) -> Option<Vec<(u16, Vec<u8>)>>;

/// An answer to query `q`: its id and question, QR|RD|RA, `rcode`, the records with owner a
/// pointer to the question's name (0xC00C).
fn reply(q: &[u8], rcode: u8, records: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let qend = q.len();
    let mut p = q[..2].to_vec();
    p.extend_from_slice(&[0x81, 0x80 | rcode, 0, 1]);
    p.extend_from_slice(&(records.len() as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 0]);
    p.extend_from_slice(&q[12..qend]);
    for (t, rdata) in records {
        p.extend_from_slice(&[0xC0, 12]);
        p.extend_from_slice(&t.to_be_bytes());
        p.extend_from_slice(&[0, 1, 0, 0, 0, 60]);
        p.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        p.extend_from_slice(rdata);
    }
    p
}

/// A DNS server thread on `addr` answering from `zone` (`answer`: false = reads and never
/// answers); every question it got, in order. Stops when dropped.
struct Responder {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<(String, u16)>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Responder {
    fn start(addr: &str, zone: Zone, answer: bool) -> Responder {
        let sock = UdpSocket::bind(addr).expect("bind responder");
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let addr = sock.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen2, stop2) = (seen.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while !stop2.load(Ordering::Relaxed) {
                let Ok((n, from)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                let q = &buf[..n];
                let Some((name, t)) = question(q) else {
                    continue;
                };
                seen2.lock().unwrap().push((name.clone(), t));
                if !answer {
                    continue;
                }
                let p = match zone(&name, t) {
                    Some(records) => reply(q, 0, &records),
                    None => reply(q, 3, &[]),
                };
                let _ = sock.send_to(&p, from);
            }
        });
        Responder {
            addr,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    fn seen(&self) -> Vec<(String, u16)> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The test zone.
fn zone(name: &str, t: u16) -> Option<Vec<(u16, Vec<u8>)>> {
    let v6 = vec![0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x53];
    let rec = |rt: u16, rdata: Vec<u8>| Some(if rt == t { vec![(rt, rdata)] } else { vec![] });
    match name {
        "loghost.test" => rec(A, vec![127, 0, 0, 1]),
        "loghost.corp.test" => rec(A, vec![10, 1, 1, 1]),
        "v6only.test" => rec(AAAA, v6),
        // A CNAME, then the address of its target (as a recursive server answers).
        "alias.test" if t == A => Some(vec![
            (CNAME, b"\x04real\x04test\x00".to_vec()),
            (A, vec![192, 0, 2, 9]),
        ]),
        "alias.test" => Some(vec![]),
        "noaddr.test" => Some(vec![]),
        _ => None,
    }
}

fn conf_file(dir: &TempDir, text: &str) -> Vec<u8> {
    let p = dir.join("resolv.conf");
    std::fs::write(&p, text).unwrap();
    p.into_os_string().into_encoded_bytes()
}

/// `host` resolved through `resolv_conf` (and an empty hosts file) with the DNS port `port`.
fn lookup(dir: &TempDir, resolv_conf: &str, host: &str, port: u16) -> Option<SocketAddr> {
    let rc = conf_file(dir, resolv_conf);
    let hosts = dir.join("hosts");
    std::fs::write(&hosts, "127.0.0.1 localhost\n").unwrap();
    let hosts = hosts.into_os_string().into_encoded_bytes();
    let src = Sources {
        hosts: &hosts,
        resolv_conf: &rc,
        dns_port: port,
    };
    resolve_from(&format!("{host}:514"), &src).ok()
}

fn addr(s: &str) -> Option<SocketAddr> {
    Some(s.parse().unwrap())
}

#[test]
fn names_resolve_through_a_dns_server_on_loopback() {
    let dns = Responder::start("127.0.0.1:0", zone, true);
    let port = dns.addr.port();
    let d = TempDir::new("resolve-dns");
    let rc = "nameserver 127.0.0.1\n";
    assert_eq!(lookup(&d, rc, "loghost.test", port), addr("127.0.0.1:514"));
    assert_eq!(lookup(&d, rc, "LogHost.Test.", port), addr("127.0.0.1:514"));
    // No A: the AAAA.
    assert_eq!(lookup(&d, rc, "v6only.test", port), addr("[fd00::53]:514"));
    // CNAME then A.
    assert_eq!(lookup(&d, rc, "alias.test", port), addr("192.0.2.9:514"));
    // NXDOMAIN, and a name with neither A nor AAAA.
    assert_eq!(lookup(&d, rc, "missing.test", port), None);
    assert_eq!(lookup(&d, rc, "noaddr.test", port), None);
    let seen = dns.seen();
    assert!(seen.contains(&("v6only.test".into(), A)), "{seen:?}");
    assert!(seen.contains(&("v6only.test".into(), AAAA)), "{seen:?}");
    // Found by its A: no AAAA question.
    assert!(!seen.contains(&("loghost.test".into(), AAAA)), "{seen:?}");
}

#[test]
fn search_domains_and_ndots_as_musl_uses_them() {
    let dns = Responder::start("127.0.0.1:0", zone, true);
    let port = dns.addr.port();
    let d = TempDir::new("resolve-search");
    let rc = "search nowhere.test corp.test\nnameserver 127.0.0.1\n";
    // No dot (< ndots 1): the suffixes first, in order, past an NXDOMAIN.
    assert_eq!(lookup(&d, rc, "loghost", port), addr("10.1.1.1:514"));
    let seen = dns.seen();
    assert_eq!(
        seen,
        [
            ("loghost.nowhere.test".to_string(), A),
            ("loghost.corp.test".to_string(), A)
        ]
    );
    // One dot (>= ndots 1): the name itself only.
    assert_eq!(lookup(&d, rc, "loghost.test", port), addr("127.0.0.1:514"));
    assert_eq!(dns.seen()[2..], [("loghost.test".to_string(), A)]);
    // ndots:2: a name with one dot tries the suffixes first, then itself.
    let rc2 = "search corp.test\noptions ndots:2\nnameserver 127.0.0.1\n";
    assert_eq!(lookup(&d, rc2, "loghost.test", port), addr("127.0.0.1:514"));
    assert_eq!(
        dns.seen()[3..],
        [
            ("loghost.test.corp.test".to_string(), A),
            ("loghost.test".to_string(), A)
        ]
    );
    // A trailing dot: no search.
    assert_eq!(lookup(&d, rc, "loghost.", port), None);
    assert_eq!(dns.seen()[5..], [("loghost".to_string(), A)]);
}

#[test]
fn a_dead_nameserver_next_to_a_live_one_costs_nothing() {
    let dns = Responder::start("127.0.0.1:0", zone, true);
    let port = dns.addr.port();
    let dead = Responder::start(&format!("127.0.0.2:{port}"), zone, false);
    let d = TempDir::new("resolve-dead");
    let t = Instant::now();
    let rc = "nameserver 127.0.0.2\nnameserver 127.0.0.1\n";
    assert_eq!(lookup(&d, rc, "loghost.test", port), addr("127.0.0.1:514"));
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    // Asked at once, both of them.
    assert_eq!(dead.seen(), [("loghost.test".to_string(), A)]);
}

#[test]
fn a_nameserver_that_never_answers_is_given_up_in_bounded_time() {
    let dead = Responder::start("127.0.0.1:0", zone, false);
    let port = dead.addr.port();
    let d = TempDir::new("resolve-silent");
    // timeout:1 attempts:2: two sends half a second apart, given up after 1 s.
    let t = Instant::now();
    let rc = "nameserver 127.0.0.1\noptions timeout:1 attempts:2\n";
    assert_eq!(lookup(&d, rc, "loghost.test", port), None);
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(950) && took < Duration::from_millis(1500),
        "{took:?}"
    );
    assert_eq!(dead.seen().len(), 2, "{:?}", dead.seen());
    // timeout:60 with a search list: the whole lookup is cut at MAX_LOOKUP_MS.
    let t = Instant::now();
    let rc = "search a.test b.test\nnameserver 127.0.0.1\noptions timeout:60 attempts:1\n";
    assert_eq!(lookup(&d, rc, "loghost", port), None);
    let took = t.elapsed();
    let max = Duration::from_millis(MAX_LOOKUP_MS);
    assert!(
        took >= max - Duration::from_millis(50) && took < max + Duration::from_millis(500),
        "{took:?}"
    );
}

/// Answers every query twice wrong (another id, then truncated) or right, per name.
#[test]
fn spoofed_and_truncated_answers() {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let port = sock.local_addr().unwrap().port();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let thread = std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while !stop2.load(Ordering::Relaxed) {
            let Ok((n, from)) = sock.recv_from(&mut buf) else {
                continue;
            };
            let q = &buf[..n];
            let Some((name, _)) = question(q) else {
                continue;
            };
            let good = reply(q, 0, &[(A, vec![127, 0, 0, 7])]);
            if name == "spoofed.test" {
                // A forged answer first (another id, another address), then the real one.
                let mut forged = reply(q, 0, &[(A, vec![6, 6, 6, 6])]);
                forged[1] ^= 0x55;
                let _ = sock.send_to(&forged, from);
                let _ = sock.send_to(&good, from);
            } else if name == "truncated.test" {
                let mut tc = good.clone();
                tc[2] |= 0x02;
                let _ = sock.send_to(&tc, from);
            } else if name == "huge.test" {
                // Over 512 bytes: more than a non-EDNS answer can be.
                let mut big = good.clone();
                big.resize(1400, 0);
                let _ = sock.send_to(&big, from);
            }
        }
    });
    let d = TempDir::new("resolve-spoof");
    let rc = "nameserver 127.0.0.1\n";
    assert_eq!(lookup(&d, rc, "spoofed.test", port), addr("127.0.0.7:514"));
    // Truncated or oversized: that nameserver failed, at once (no TCP retry, no waiting).
    for name in ["truncated.test", "huge.test"] {
        let t = Instant::now();
        assert_eq!(lookup(&d, rc, name, port), None, "{name}");
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "{name}: {:?}",
            t.elapsed()
        );
    }
    stop.store(true, Ordering::Relaxed);
    thread.join().unwrap();
}

/// The agent binary as root, in a private mount namespace whose /etc/hosts and
/// /etc/resolv.conf are the test's (bind mounts, gone with the namespace): one `--once`
/// poll of the seed tree with `syslog: udp:NAME:PORT`, the audit lines arriving on a
/// loopback socket: once for a name only DNS knows (a responder on 127.88.0.53:53), once for
/// a name only the hosts file has (DNS not asked).
#[test]
fn the_agent_resolves_its_syslog_name_from_etc() {
    if !require_root("binds port 53 and mounts over /etc/hosts in a private mount namespace")
        || !require_program("unshare", "apt-get install util-linux")
    {
        return;
    }
    let dns = Responder::start("127.88.0.53:53", zone, true);
    let d = TempDir::new("resolve-agent");
    let hosts = d.join("hosts");
    std::fs::write(&hosts, "127.0.0.1 localhost\n127.0.0.1 fromhosts.test\n").unwrap();
    let rc = d.join("resolv.conf");
    std::fs::write(&rc, "nameserver 127.88.0.53\noptions timeout:2\n").unwrap();
    let seed = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/seed");
    for (i, name) in ["loghost.test", "fromhosts.test"].into_iter().enumerate() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = rx.local_addr().unwrap().port();
        let cfg = d.join(&format!("gw{i}.json"));
        write_trusted(
            &cfg,
            format!(r#"{{"syslog": "udp:{name}:{port}", "facility": "local3"}}"#),
        );
        let script = format!(
            "mount --bind {h} /etc/hosts && mount --bind {r} /etc/resolv.conf && exec {gw} run -c {c} --proc-root {seed} --once",
            h = hosts.display(),
            r = rc.display(),
            gw = ghostwatch_bin().display(),
            c = cfg.display(),
        );
        let out = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", &script])
            .stdin(Stdio::null())
            .output()
            .expect("run unshare");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{name}: {stderr}");
        rx.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = rx.recv(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        assert!(
            got.iter().any(|m| m.contains("event=threshold")),
            "{name}: no audit line arrived: {got:?}\n{stderr}"
        );
    }
    assert_eq!(dns.seen(), [("loghost.test".to_string(), A)]);
}
