//! gw-vmguest: the router-in-a-box guest's two helpers (tests/vm/). Not shipped; built
//! static for each guest architecture by tests/vm/build-initramfs.sh.
//!
//!   gw-vmguest hog MB
//!       The innocent memory user: touches MB of anonymous memory, prints
//!       `GWVM hog pid=N mb=MB`, then sleeps until killed. Its comm is "innocent".
//!   gw-vmguest flood PORT MB_PER_S TOTAL_MB [LOG]
//!       Sends 60 000-byte UDP datagrams to 127.0.0.1:PORT at MB_PER_S until TOTAL_MB are
//!       sent or the kernel's OOM killer fires (then it stops at once, so one victim is not
//!       hidden by a cascade). Every 50 ms it samples MemAvailable, /proc/vmstat oom_kill and,
//!       if LOG is given, the first line containing "event=action" appended to LOG (the
//!       guest's syslog). It ends with one line:
//!       `GWVM flood sent_mb= duration_ms= first_action_ms= min_avail_kb= max_rxq= oom_kills= stop=`
//!   gw-vmguest seed LOG MAX_S AFTER_S
//!       Scenario D's sampler (the flood comes from the host, through the guest's NIC): every
//!       50 ms it samples MemAvailable, /proc/vmstat oom_kill, the largest rx_queue of a raw6
//!       socket on protocol 58 (`:::58`, the unread one) and of udp6 port 7778 (the prompt
//!       reader), and LOG for the first "event=action". It stops AFTER_S seconds after that
//!       action, at the first OOM kill, or after MAX_S, printing a line a second and then
//!       `GWVM seed flood_ms= first_action_ms= min_avail_kb= avail_drop_kb= max_raw6_rxq=
//!       max_reader_rxq= oom_kills= stop=` (times from the first queued ICMPv6 packet).
//!
//! Lines starting with "GWVM " on stdout are the serial-console protocol the host test parses.

use std::io::{Read, Seek, SeekFrom};
use std::time::{Duration, Instant};

fn fail(msg: &str) -> ! {
    eprintln!("gw-vmguest: {msg}");
    std::process::exit(1)
}

fn set_comm(name: &std::ffi::CStr) {
    // SAFETY: prctl with a NUL-terminated name.
    unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr() as libc::c_ulong, 0, 0, 0) };
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize, what: &str) -> T {
    args.get(i)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fail(&format!("missing or bad {what}")))
}

fn hog(mb: usize) -> ! {
    set_comm(c"innocent");
    let mut v = vec![0u8; mb << 20];
    // Write every page (non-zero) so all of it is resident, like a real process's heap.
    for i in (0..v.len()).step_by(4096) {
        v[i] = 1 + (i / 4096) as u8 % 200;
    }
    println!("GWVM hog pid={} mb={mb}", std::process::id());
    loop {
        std::thread::sleep(Duration::from_secs(3600));
        std::hint::black_box(&v);
    }
}

/// `key` value (first number after the key) in a /proc text file such as meminfo or vmstat.
fn proc_value(path: &str, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(key)?;
        let rest = rest.strip_prefix(':').unwrap_or(rest);
        if !rest.starts_with([' ', '\t']) {
            return None;
        }
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// rx_queue of the 127.0.0.1:`port` row of /proc/net/udp (0 if absent).
fn udp_rx_queue(port: u16) -> u64 {
    let want = format!("0100007F:{port:04X}");
    let text = std::fs::read_to_string("/proc/net/udp").unwrap_or_default();
    text.lines()
        .skip(1)
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.get(1) != Some(&want.as_str()) {
                return None;
            }
            u64::from_str_radix(f.get(4)?.split_once(':')?.1, 16).ok()
        })
        .unwrap_or(0)
}

/// Reads what was appended to `path` since `*off`; true if it holds "event=action".
fn log_has_action(path: &str, off: &mut u64) -> bool {
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    let mut buf = String::new();
    if f.seek(SeekFrom::Start(*off)).is_err() || f.read_to_string(&mut buf).is_err() {
        return false;
    }
    // Only whole lines count; a half-written last line is read again next time.
    let Some(end) = buf.rfind('\n') else {
        return false;
    };
    *off += end as u64 + 1;
    buf[..end].lines().any(|l| l.contains("event=action"))
}

fn flood(port: u16, mb_per_s: u64, total_mb: u64, log: Option<&str>) {
    set_comm(c"flood");
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap_or_else(|e| fail(&e.to_string()));
    let dst = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let payload = vec![0x5au8; 60_000];
    let oom0 = proc_value("/proc/vmstat", "oom_kill").unwrap_or(0);
    let mut log_off = log
        .and_then(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .unwrap_or(0);
    let start = Instant::now();
    let total = total_mb << 20;
    let (mut sent, mut first_action_ms, mut max_rxq) = (0u64, None, 0u64);
    let mut min_avail = proc_value("/proc/meminfo", "MemAvailable").unwrap_or(0);
    let mut oom_kills = 0;
    let mut next_sample = start;
    let mut next_report = start + Duration::from_secs(1);
    println!("GWVM flood_start port={port} mb_per_s={mb_per_s} total_mb={total_mb}");
    let stop = loop {
        let now = Instant::now();
        if now >= next_sample {
            next_sample = now + Duration::from_millis(50);
            if let Some(a) = proc_value("/proc/meminfo", "MemAvailable") {
                min_avail = min_avail.min(a);
            }
            max_rxq = max_rxq.max(udp_rx_queue(port));
            oom_kills = proc_value("/proc/vmstat", "oom_kill").unwrap_or(oom0) - oom0;
            if first_action_ms.is_none() && log.is_some_and(|p| log_has_action(p, &mut log_off)) {
                first_action_ms = Some(start.elapsed().as_millis());
            }
            if oom_kills > 0 {
                break "oom";
            }
            if now >= next_report {
                next_report += Duration::from_secs(1);
                println!(
                    "GWVM flood_tick t_ms={} sent_mb={} avail_kb={} rxq={}",
                    start.elapsed().as_millis(),
                    sent >> 20,
                    proc_value("/proc/meminfo", "MemAvailable").unwrap_or(0),
                    udp_rx_queue(port)
                );
            }
        }
        if sent >= total {
            break "done";
        }
        // Pace: datagram k leaves no earlier than k * size / rate.
        let due = start + Duration::from_micros(sent * 1_000_000 / (mb_per_s << 20).max(1));
        if due > now {
            std::thread::sleep((due - now).min(Duration::from_millis(50)));
            continue;
        }
        match sock.send_to(&payload, dst) {
            Ok(n) => sent += n as u64,
            // ENOBUFS/ENOMEM under pressure: count nothing, try again after a short pause.
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    };
    // After the flood, keep watching the log briefly: the agent may act on the last sample.
    if first_action_ms.is_none() && stop == "done" {
        if let Some(p) = log {
            let end = Instant::now() + Duration::from_secs(3);
            while Instant::now() < end && first_action_ms.is_none() {
                if log_has_action(p, &mut log_off) {
                    first_action_ms = Some(start.elapsed().as_millis());
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
    println!(
        "GWVM flood sent_mb={} duration_ms={} first_action_ms={} min_avail_kb={min_avail} max_rxq={max_rxq} oom_kills={oom_kills} stop={stop}",
        sent >> 20,
        start.elapsed().as_millis(),
        first_action_ms.map_or("none".to_string(), |v| v.to_string()),
    );
}

/// The largest rx_queue of the rows of /proc/net/`table` whose local port is `port` (hex).
fn rx_queue_at(table: &str, port: u16) -> u64 {
    let want = format!(":{port:04X}");
    let text = std::fs::read_to_string(format!("/proc/net/{table}")).unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if !f.get(1)?.ends_with(&want) {
                return None;
            }
            u64::from_str_radix(f.get(4)?.split_once(':')?.1, 16).ok()
        })
        .max()
        .unwrap_or(0)
}

fn seed(log: &str, max_s: u64, after_s: u64) {
    set_comm(c"seedwatch");
    let oom0 = proc_value("/proc/vmstat", "oom_kill").unwrap_or(0);
    let mut log_off = std::fs::metadata(log).map(|m| m.len()).unwrap_or(0);
    let avail0 = proc_value("/proc/meminfo", "MemAvailable").unwrap_or(0);
    let (mut min_avail, mut max_raw, mut max_reader) = (avail0, 0u64, 0u64);
    let mut oom_kills;
    let begin = Instant::now();
    let (mut flood_start, mut action_at) = (None::<Instant>, None::<Instant>);
    let mut next_report = begin;
    println!("GWVM seed_start avail_kb={avail0}");
    let stop = loop {
        let now = Instant::now();
        let avail = proc_value("/proc/meminfo", "MemAvailable").unwrap_or(avail0);
        min_avail = min_avail.min(avail);
        let (raw, reader) = (rx_queue_at("raw6", 58), rx_queue_at("udp6", 7778));
        max_raw = max_raw.max(raw);
        max_reader = max_reader.max(reader);
        if flood_start.is_none() && raw > 0 {
            flood_start = Some(now);
        }
        oom_kills = proc_value("/proc/vmstat", "oom_kill").unwrap_or(oom0) - oom0;
        if action_at.is_none() && log_has_action(log, &mut log_off) {
            action_at = Some(now);
        }
        if now >= next_report {
            next_report += Duration::from_secs(1);
            println!(
                "GWVM seed_tick t_ms={} avail_kb={avail} raw6_rxq={raw} reader_rxq={reader}",
                begin.elapsed().as_millis()
            );
        }
        if oom_kills > 0 {
            break "oom";
        }
        if action_at.is_some_and(|a| now >= a + Duration::from_secs(after_s)) {
            break "done";
        }
        if now >= begin + Duration::from_secs(max_s) {
            break "timeout";
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let since = |t: Option<Instant>| match (t, flood_start) {
        (Some(t), Some(f)) => t.saturating_duration_since(f).as_millis().to_string(),
        _ => "none".to_string(),
    };
    println!(
        "GWVM seed flood_ms={} first_action_ms={} min_avail_kb={min_avail} avail_drop_kb={} max_raw6_rxq={max_raw} max_reader_rxq={max_reader} oom_kills={oom_kills} stop={stop}",
        since(Some(Instant::now())),
        since(action_at),
        avail0.saturating_sub(min_avail),
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("hog") => hog(arg(&args, 1, "MB")),
        Some("flood") => flood(
            arg(&args, 1, "PORT"),
            arg(&args, 2, "MB_PER_S"),
            arg(&args, 3, "TOTAL_MB"),
            args.get(4).map(String::as_str),
        ),
        Some("seed") => seed(
            args.get(1)
                .map_or_else(|| fail("missing LOG"), String::as_str),
            arg(&args, 2, "MAX_S"),
            arg(&args, 3, "AFTER_S"),
        ),
        _ => fail(
            "usage: gw-vmguest hog MB | flood PORT MB_PER_S TOTAL_MB [LOG] | seed LOG MAX_S AFTER_S",
        ),
    }
}
