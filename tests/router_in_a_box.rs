//! Router in a box: boots a Debian kernel with a busybox router userland under qemu-system
//! (TCG, 256 MB) and floods an unread UDP socket of a leaky daemon, as in the field report.
//! Scenario A (no agent) must end in the OOM killer shooting the innocent process; B (the
//! agent started by init/ghostwatch.initd beside a watchdog feeder) must prevent it; C (the
//! agent owns the watchdog) must keep the box up, and only a SIGKILL of the agent may make
//! the watchdog fire. D (the seed, issue 18) feeds ICMPv6 to an unread raw6 socket, mixed with
//! UDP a daemon reads promptly, from the host through the guest's emulated virtio-net NIC; the
//! agent's `ghost` rules name no comm and must find the raw6 socket by correlation. The guest
//! side is tests/vm/ (see tests/vm/README.md).
//!
//! These tests take minutes of emulation, so they are `#[ignore]`d in a plain `cargo test`;
//! `tests/vm/run.sh` (called by `.ci/run`) runs them, each boot under `timeout`.

mod support;

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

/// Runs of scenario B whose figures are reported (GW_VM_RUNS overrides).
const B_RUNS: usize = 3;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The kernel and initramfs of one guest architecture.
struct Guest {
    /// The guest's name (prepare.sh's argument; logs are named by it), e.g. `x86_64-5.10`.
    name: &'static str,
    /// The QEMU architecture (boot.sh's argument).
    arch: &'static str,
    kernel: String,
    initrd: String,
}

/// Builds (or reuses from target/vm-cache) everything the guest needs. None = skipped
/// because QEMU for `arch` is not installed (a failure under CI=true).
fn prepare(name: &'static str) -> Option<Guest> {
    // x86_64-5.10: x86_64 with Debian 11's kernel (tests/vm/prepare.sh).
    let arch = name.split('-').next().unwrap_or(name);
    let (qemu, install) = match arch {
        "x86_64" => ("qemu-system-x86_64", "apt-get install qemu-system-x86"),
        "aarch64" => ("qemu-system-aarch64", "apt-get install qemu-system-arm"),
        "mipsel" => ("qemu-system-mipsel", "apt-get install qemu-system-mips"),
        _ => ("qemu-system-arm", "apt-get install qemu-system-arm"),
    };
    if !support::require_program(qemu, install)
        || !support::require_program("cpio", "apt-get install cpio")
    {
        return None;
    }
    let out = Command::new(repo().join("tests/vm/prepare.sh"))
        .arg(name)
        .output()
        .expect("run tests/vm/prepare.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "tests/vm/prepare.sh {name} failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let get = |k: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(k)?.strip_prefix('='))
            .unwrap_or_else(|| panic!("prepare.sh printed no {k}=: {stdout}"))
            .to_string()
    };
    Some(Guest {
        name,
        arch,
        kernel: get("KERNEL"),
        initrd: get("INITRD"),
    })
}

/// What one boot printed: the guest's serial console interleaved with QEMU's own messages.
struct Console {
    log: PathBuf,
    text: String,
}

impl Console {
    /// The `GWVM <tag> ...` lines.
    fn lines(&self, tag: &str) -> Vec<&str> {
        self.text
            .lines()
            .filter_map(|l| {
                let rest = l.trim_end_matches('\r').strip_prefix("GWVM ")?;
                let after = rest.strip_prefix(tag)?;
                (after.is_empty() || after.starts_with(' ')).then_some(rest)
            })
            .collect()
    }

    /// The first `GWVM <tag>` line; panics (with the log's path) if there is none.
    fn line(&self, tag: &str) -> &str {
        self.lines(tag).first().copied().unwrap_or_else(|| {
            panic!(
                "no \"GWVM {tag}\" line on the console; see {}",
                self.log.display()
            )
        })
    }

    fn num(&self, tag: &str, key: &str) -> u64 {
        let l = self.line(tag);
        support::field(l, key)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no numeric {key}= in \"{l}\" ({})", self.log.display()))
    }

    /// Line indices where QEMU reported the i6300esb firing (action=debug).
    fn watchdog_firings(&self) -> Vec<usize> {
        self.text
            .lines()
            .enumerate()
            .filter(|(_, l)| l.contains("watchdog: timer fired"))
            .map(|(i, _)| i)
            .collect()
    }

    /// Line index of `GWVM phase name=NAME <edge>_ms=...` (edge: start or end).
    fn phase(&self, name: &str, edge: &str) -> usize {
        let want = format!("GWVM phase name={name} {edge}_ms=");
        self.text
            .lines()
            .position(|l| l.starts_with(&want))
            .unwrap_or_else(|| panic!("no phase {name} {edge} ({})", self.log.display()))
    }

    fn syslog_has(&self, needle: &str) -> bool {
        self.lines("syslog").iter().any(|l| l.contains(needle))
    }

    /// The agent's `event=start` `missing=` value (what the kernel lacks), "" when absent.
    fn start_missing(&self) -> String {
        let lines = self.lines("syslog");
        let Some(l) = lines.iter().find(|l| l.contains("event=start")) else {
            return String::new();
        };
        let Some((_, rest)) = l.split_once(" missing=") else {
            return String::new();
        };
        match rest.strip_prefix('"') {
            Some(q) => q.split('"').next().unwrap_or("").to_string(),
            None => rest.split(' ').next().unwrap_or("").to_string(),
        }
    }
}

/// Boots `g` once in `scenario` under `timeout_s` and returns its console. The guest must
/// reach its final `GWVM done` line (it powers off right after).
fn boot(g: &Guest, scenario: &str, run: usize, timeout_s: u32, append: &str) -> Console {
    let log = vm_log(g, scenario, run);
    let status = boot_cmd(g, scenario, &log, timeout_s, append)
        .status()
        .expect("run tests/vm/boot.sh");
    booted(g, scenario, run, log, status)
}

fn vm_log(g: &Guest, scenario: &str, run: usize) -> PathBuf {
    repo().join(format!("target/vm-logs/{}-{scenario}-{run}.log", g.name))
}

fn boot_cmd(g: &Guest, scenario: &str, log: &Path, timeout_s: u32, append: &str) -> Command {
    let mut c = Command::new(repo().join("tests/vm/boot.sh"));
    c.args([g.arch, &g.kernel, &g.initrd, scenario])
        .arg(log)
        .arg(timeout_s.to_string())
        .arg(append);
    c
}

/// The console of a finished boot; panics unless it reached `GWVM done`.
fn booted(g: &Guest, scenario: &str, run: usize, log: PathBuf, status: ExitStatus) -> Console {
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let c = Console { log, text };
    let done = !c.lines("done").is_empty();
    assert!(
        status.success() && done,
        "{} scenario {scenario} run {run}: boot exit {status}, guest finished: {done}; console in {}",
        g.name,
        c.log.display()
    );
    if let Some(t) = c.text.lines().find(|l| l.starts_with("GWHOST ")) {
        println!("{} {scenario}#{run}: {t}", g.name);
    }
    c
}

/// The figures of one scenario-B run.
struct BRun {
    first_action_ms: u64,
    min_avail_kb: u64,
    oom_kills: u64,
    /// `held_ms` of the agent's `event=recovered trigger=backlog`, if it came before power-off.
    recovered_held_ms: Option<u64>,
}

/// Checks that the agent saved the box during the flood: it acted on the leaky daemon's
/// socket (audited in the guest's syslog), nothing was OOM-killed, the innocent process lives.
fn check_saved(c: &Console) -> BRun {
    check_saved_by(c, "clamp-leak", "backlog")
}

/// `check_saved` for a config whose clamp rule is `clamp_rule` and whose incident must end
/// with `event=recovered trigger=TRIGGER` before power-off.
fn check_saved_by(c: &Console, clamp_rule: &str, trigger: &str) -> BRun {
    let flood = c.line("flood");
    assert_eq!(support::field(flood, "stop"), Some("done"), "{flood}");
    let oom_kills = c.num("flood", "oom_kills");
    assert_eq!(oom_kills, 0, "OOM kill with the agent running: {flood}");
    assert_eq!(c.num("vmstat", "oom_kill"), 0);
    assert_eq!(
        support::field(c.line("innocent"), "alive"),
        Some("1"),
        "innocent process died; {}",
        c.log.display()
    );
    assert!(
        c.syslog_has("event=start"),
        "no event=start from the agent in the guest's syslog ({})",
        c.log.display()
    );
    assert!(
        c.syslog_has(&format!("event=action rule={clamp_rule} action=clamp"))
            && c.syslog_has("comm=gw-testd")
            && c.lines("syslog")
                .iter()
                .any(|l| l.contains("event=action") && l.contains("result=ok")),
        "no successful clamp of gw-testd's socket audited in syslog ({})",
        c.log.display()
    );
    let first = support::field(flood, "first_action_ms")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no action seen during the flood: {flood}"));
    let recovered = format!("event=recovered trigger={trigger} ");
    let recovered_held_ms = c.lines("syslog").iter().find_map(|l| {
        let l = &l[l.find(&recovered)?..];
        support::field(l, "held_ms")?.parse().ok()
    });
    // Once the clamp and drain have worked, the incident must end: a stale suspect held at
    // act would walk the rule ladder up to a needless restart.
    assert!(
        recovered_held_ms.is_some(),
        "no {recovered}before power-off ({})",
        c.log.display()
    );
    BRun {
        first_action_ms: first,
        min_avail_kb: c.num("flood", "min_avail_kb"),
        oom_kills,
        recovered_held_ms,
    }
}

/// Scenario B on top of `check_saved`: where the guest has a watchdog, the feeder ran, the
/// agent protected it from the OOM killer (`event=protect`), and the watchdog never fired.
fn check_b(c: &Console, expect_watchdog: bool) -> BRun {
    let r = check_saved(c);
    assert!(
        c.line("modules").contains("udp_diag") && !c.start_missing().contains("udp_diag"),
        "the agent did not read sockets through sock_diag ({})",
        c.log.display()
    );
    if expect_watchdog {
        assert!(
            c.line("watchdog").contains("device=/dev/watchdog"),
            "no /dev/watchdog in the guest ({})",
            c.log.display()
        );
        assert!(!c.lines("feeder").is_empty(), "feeder did not start");
        assert!(
            c.lines("syslog").iter().any(|l| l.contains("event=protect")
                && l.contains("comm=watchdog")
                && l.contains("oom_score_adj=-1000")),
            "the feeder was not protected ({})",
            c.log.display()
        );
    }
    assert!(
        c.watchdog_firings().is_empty(),
        "the watchdog fired ({})",
        c.log.display()
    );
    r
}

fn runs() -> usize {
    std::env::var("GW_VM_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(B_RUNS)
}

/// Runs scenario B `runs()` times on `arch` and prints the figures.
fn scenario_b(arch: &'static str, timeout_s: u32, expect_watchdog: bool) {
    scenario_b_with(arch, timeout_s, expect_watchdog, runs(), "");
}

/// `scenario_b` with the run count and extra kernel command line given.
fn scenario_b_with(
    arch: &'static str,
    timeout_s: u32,
    expect_watchdog: bool,
    n: usize,
    append: &str,
) {
    let Some(g) = prepare(arch) else { return };
    let mut all = Vec::new();
    for run in 1..=n {
        let c = boot(&g, "B", run, timeout_s, append);
        let r = check_b(&c, expect_watchdog);
        println!(
            "{arch} B#{run}: first_action_ms={} min_avail_kb={} oom_kills={} backlog_recovered_held_ms={} ({})",
            r.first_action_ms,
            r.min_avail_kb,
            r.oom_kills,
            r.recovered_held_ms
                .map_or("none-before-poweroff".to_string(), |v| v.to_string()),
            c.log.display()
        );
        all.push(r);
    }
    let max_first = all.iter().map(|r| r.first_action_ms).max().unwrap_or(0);
    let min_avail = all.iter().map(|r| r.min_avail_kb).min().unwrap_or(0);
    let ooms: u64 = all.iter().map(|r| r.oom_kills).sum();
    println!(
        "{arch} B over {} runs: flood start -> first action max {max_first} ms, lowest MemAvailable {min_avail} kB, OOM kills {ooms}",
        all.len()
    );
}

#[test]
#[ignore = "boots a qemu guest (about 15 s under TCG); run by tests/vm/run.sh"]
fn x86_64_a_without_agent_the_oom_killer_shoots_the_innocent() {
    let Some(g) = prepare("x86_64") else { return };
    let c = boot(&g, "A", 1, 180, "");
    let flood = c.line("flood");
    assert_eq!(
        support::field(flood, "stop"),
        Some("oom"),
        "the flood did not end in an OOM kill: {flood}"
    );
    assert!(c.num("flood", "oom_kills") >= 1);
    // The kernel names its victim: "Out of memory: Killed process 113 (innocent) ...".
    let victim = c
        .lines("dmesg")
        .iter()
        .find_map(|l| {
            let rest = &l[l.find("Killed process ")? + "Killed process ".len()..];
            let open = rest.find('(')?;
            let close = rest.find(')')?;
            Some((
                rest[..open].trim().to_string(),
                rest[open + 1..close].to_string(),
            ))
        })
        .unwrap_or_else(|| panic!("no 'Killed process' in dmesg ({})", c.log.display()));
    println!(
        "x86_64 A: OOM killer killed pid {} ({}) after {} MB sent; lowest MemAvailable {} kB; the leaky gw-testd (rx_queue up to {} bytes) lived",
        victim.0,
        victim.1,
        c.num("flood", "sent_mb"),
        c.num("flood", "min_avail_kb"),
        c.num("flood", "max_rxq"),
    );
    assert_eq!(victim.1, "innocent", "the OOM killer took another process");
    assert_eq!(support::field(c.line("innocent"), "alive"), Some("0"));
    assert_eq!(
        support::field(c.line("culprit"), "alive"),
        Some("1"),
        "the culprit should have outlived the OOM kill"
    );
}

#[test]
#[ignore = "boots a qemu guest 3 times (about 30 s each under TCG); run by tests/vm/run.sh"]
fn x86_64_b_agent_saves_the_box() {
    scenario_b("x86_64", 240, true);
}

#[test]
#[ignore = "boots a qemu guest with Debian 11's 5.10 kernel (about 30 s); run by tests/vm/run.sh x86_64-5.10"]
fn linux510_b_agent_saves_the_box() {
    // The field kernel (OpenWrt 22.03's 5.10): one run; x86_64 (6.1) has the three.
    scenario_b_with("x86_64-5.10", 240, true, 1, "");
}

#[test]
#[ignore = "boots a qemu guest (about 30 s under TCG); run by tests/vm/run.sh"]
fn x86_64_b_eta_oom_eta_alone_saves_the_box() {
    // Scenario B's flood with ghostwatch-B-eta.json: no backlog rule, only oom_eta rules (a
    // 4 s window at 500 ms polls: this 256 MB box has ~8 s of headroom at 20 MB/s), which
    // must clamp and drain gw-testd's socket before the OOM killer fires.
    let Some(g) = prepare("x86_64") else { return };
    let c = boot(&g, "B", 1, 240, "gwvm.config=B-eta gwvm.settle=8");
    let r = check_saved_by(&c, "eta-clamp", "oom_eta");
    let clamp = c
        .lines("syslog")
        .into_iter()
        .find(|l| l.contains("event=action rule=eta-clamp"))
        .unwrap_or_default();
    let clamp = &clamp[clamp.find("event=").unwrap_or(0)..];
    assert!(
        clamp.contains("trigger=oom_eta")
            && support::field(clamp, "eta_s").is_some()
            && support::field(clamp, "slope_kb_s").is_some_and(|s| s.starts_with('-')),
        "the clamp line lacks the estimate: {clamp} ({})",
        c.log.display()
    );
    assert!(
        !c.syslog_has("event=action rule=reboot-last-resort"),
        "the last resort ran ({})",
        c.log.display()
    );
    println!(
        "x86_64 B-eta: first_action_ms={} min_avail_kb={} oom_kills={} oom_eta_recovered_held_ms={} clamp: eta_s={} slope_kb_s={} ({})",
        r.first_action_ms,
        r.min_avail_kb,
        r.oom_kills,
        r.recovered_held_ms.unwrap_or(0),
        support::field(clamp, "eta_s").unwrap_or("-"),
        support::field(clamp, "slope_kb_s").unwrap_or("-"),
        c.log.display()
    );
}

#[test]
#[ignore = "boots a qemu-system-aarch64 guest (slow under TCG); run by tests/vm/run.sh aarch64"]
fn aarch64_b_agent_saves_the_box() {
    scenario_b("aarch64", 480, true);
}

#[test]
#[ignore = "boots a qemu-system-mipsel Malta guest (slow under TCG); run by tests/vm/run.sh mipsel"]
fn mipsel_b_agent_saves_the_box() {
    // MIPS 24Kc (the CPU of most MIPS routers) with Debian's 4kc-malta kernel, which has no
    // PCI watchdog driver: B without a hardware watchdog, once, with the CPU phases
    // (gwvm.cpu=1, tests/vm/guest/init) before the flood.
    let Some(g) = prepare("mipsel") else { return };
    let c = boot(&g, "B", 1, 540, "gwvm.cpu=1");
    let r = check_b(&c, false);
    let cpu = |phase: &str| {
        let want = format!("phase={phase} ");
        *c.lines("cpu")
            .iter()
            .find(|l| l.contains(&want))
            .unwrap_or_else(|| panic!("no cpu phase={phase} ({})", c.log.display()))
    };
    let num = |l: &str, k: &str| -> f64 {
        support::field(l, k)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {k}= in {l}"))
    };
    let (quiet, incident, cat) = (cpu("quiet"), cpu("incident"), cpu("cat"));
    let per_poll = |l: &str| num(l, "agent_ns") / num(l, "polls").max(1.0);
    let cat_ns = num(cat, "busy_jiffies") * 1e9 / num(cat, "hz") / num(cat, "runs");
    let (q, i) = (per_poll(quiet), per_poll(incident));
    assert!(
        num(quiet, "polls") >= 5.0 && num(incident, "polls") >= 5.0,
        "{quiet} / {incident}"
    );
    println!(
        "mipsel B#1: first_action_ms={} min_avail_kb={} oom_kills={} backlog_recovered_held_ms={} ({})",
        r.first_action_ms,
        r.min_avail_kb,
        r.oom_kills,
        r.recovered_held_ms.unwrap_or(0),
        c.log.display()
    );
    println!(
        "mipsel cpu: quiet poll {:.2} ms, incident poll {:.2} ms, one `cat /proc/meminfo /proc/net/sockstat` {:.2} ms: ratio quiet {:.2}, incident {:.2} ({quiet} | {incident} | {cat})",
        q / 1e6,
        i / 1e6,
        cat_ns / 1e6,
        q / cat_ns,
        i / cat_ns
    );
}

#[test]
#[ignore = "boots a qemu-system-arm guest (slow under TCG); run by tests/vm/run.sh armv7"]
fn armv7_b_agent_saves_the_box() {
    // Debian's armmp kernel has no i6300esb driver: this guest has no hardware watchdog.
    scenario_b("armv7", 480, false);
}

#[test]
#[ignore = "boots a qemu guest (about 100 s under TCG); run by tests/vm/run.sh"]
fn x86_64_c_agent_owns_the_watchdog() {
    let Some(g) = prepare("x86_64") else { return };
    // Without the sock_diag modules, so this boot covers the agent's /proc/net text path.
    let c = boot(&g, "C", 1, 300, "gwvm.diag=0");
    assert!(
        c.line("watchdog").contains("device=/dev/watchdog"),
        "no /dev/watchdog in the guest ({})",
        c.log.display()
    );
    assert!(
        c.lines("feeder").is_empty(),
        "scenario C must run without the feeder"
    );
    assert!(
        c.syslog_has("watchdog=/dev/watchdog") && c.syslog_has("watchdog_timeout_s=8"),
        "the agent's event=start does not name the watchdog ({})",
        c.log.display()
    );
    // The agent alone keeps the box up through the flood and the quiet phase after it.
    let r = check_saved(&c);
    assert!(
        c.start_missing().contains("udp_diag"),
        "expected the /proc text fallback without the diag modules ({})",
        c.log.display()
    );
    let firings = c.watchdog_firings();
    let held_end = c.phase("held", "end");
    assert!(
        c.text
            .lines()
            .nth(held_end)
            .unwrap_or("")
            .contains("agent_running=1"),
        "the agent died while owning the watchdog ({})",
        c.log.display()
    );
    let (term_start, term_end) = (c.phase("sigterm", "start"), c.phase("sigterm", "end"));
    let (kill_start, kill_end) = (c.phase("sigkill", "start"), c.phase("sigkill", "end"));
    assert!(
        firings.iter().all(|&i| i > kill_start),
        "the watchdog fired before the agent was SIGKILLed (console lines {firings:?}; sigterm {term_start}..{term_end}, sigkill from {kill_start}; {})",
        c.log.display()
    );
    assert!(
        firings.iter().any(|&i| i > kill_start && i < kill_end),
        "the watchdog did not fire after the agent was SIGKILLed ({})",
        c.log.display()
    );
    // The guest ticks once a second after the SIGKILL: the first tick after the firing
    // bounds when it happened.
    let lines: Vec<&str> = c.text.lines().collect();
    let kill_ms = support::field(lines[kill_start], "start_ms").and_then(|v| v.parse::<u64>().ok());
    let fired_ms = lines[firings[0]..].iter().find_map(|l| {
        support::field(l.strip_prefix("GWVM tick ")?, "ms")?
            .parse::<u64>()
            .ok()
    });
    let delay = match (kill_ms, fired_ms) {
        (Some(k), Some(f)) => format!("{} s", (f.saturating_sub(k) as f64 / 1000.0).ceil()),
        _ => "?".to_string(),
    };
    println!(
        "x86_64 C: no firing while the agent ran (flood: first action {} ms, lowest MemAvailable {} kB) nor after SIGTERM (magic close); fired within {delay} of SIGKILL (watchdog_timeout_s=8)",
        r.first_action_ms, r.min_avail_kb
    );
}

/// Scenario D's wire: Ethernet frames for the guest's virtio-net NIC (boot.sh's GW_VM_DGRAM),
/// from the host fd00::1 to the guest's fd00::2 (tests/vm/guest/init configures it).
mod wire {
    pub const GUEST_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
    pub const HOST_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x00, 0x00, 0x01];
    pub const HOST_IP: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    pub const GUEST_IP: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
    pub const ICMPV6: u8 = 58;
    pub const UDP: u8 = 17;

    /// The Internet checksum of the IPv6 pseudo-header and `upper` (RFC 8200 §8.1).
    pub fn checksum(src: &[u8; 16], dst: &[u8; 16], next: u8, upper: &[u8]) -> u16 {
        let len = upper.len() as u32;
        let mut sum = 0u32;
        let mut add = |b: &[u8]| {
            for c in b.chunks(2) {
                sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
            }
        };
        add(src);
        add(dst);
        add(&len.to_be_bytes());
        add(&[0, 0, 0, next]);
        add(upper);
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    /// Ethernet + IPv6 around `upper`, whose checksum at `ck` (offset in `upper`) is filled.
    fn frame(next: u8, mut upper: Vec<u8>, ck: usize) -> Vec<u8> {
        let c = checksum(&HOST_IP, &GUEST_IP, next, &upper);
        // UDP over IPv6 sends a computed 0 as 0xffff (0 means "no checksum", not allowed).
        let c = if next == UDP && c == 0 { 0xffff } else { c };
        upper[ck..ck + 2].copy_from_slice(&c.to_be_bytes());
        let mut f = Vec::with_capacity(14 + 40 + upper.len());
        f.extend_from_slice(&GUEST_MAC);
        f.extend_from_slice(&HOST_MAC);
        f.extend_from_slice(&0x86ddu16.to_be_bytes());
        f.extend_from_slice(&[0x60, 0, 0, 0]);
        f.extend_from_slice(&(upper.len() as u16).to_be_bytes());
        f.extend_from_slice(&[next, 64]);
        f.extend_from_slice(&HOST_IP);
        f.extend_from_slice(&GUEST_IP);
        f.extend_from_slice(&upper);
        f
    }

    /// An ICMPv6 echo request (type 128) with `payload` bytes of data.
    pub fn echo_request(id: u16, seq: u16, payload: usize) -> Vec<u8> {
        let mut u = vec![128, 0, 0, 0];
        u.extend_from_slice(&id.to_be_bytes());
        u.extend_from_slice(&seq.to_be_bytes());
        u.extend((0..payload).map(|i| (i % 251) as u8));
        frame(ICMPV6, u, 2)
    }

    /// A UDP datagram with `payload` bytes of data.
    pub fn udp(sport: u16, dport: u16, payload: usize) -> Vec<u8> {
        let mut u = Vec::with_capacity(8 + payload);
        u.extend_from_slice(&sport.to_be_bytes());
        u.extend_from_slice(&dport.to_be_bytes());
        u.extend_from_slice(&((8 + payload) as u16).to_be_bytes());
        u.extend_from_slice(&[0, 0]);
        u.extend((0..payload).map(|i| (i % 241) as u8));
        frame(UDP, u, 6)
    }
}

#[test]
fn d_frames_carry_valid_ipv6_checksums() {
    // The known answer: an echo request fd00::1 -> fd00::2, id 1, seq 1, no data.
    let f = wire::echo_request(1, 1, 0);
    assert_eq!(f.len(), 14 + 40 + 8);
    assert_eq!(&f[12..14], &[0x86, 0xdd]);
    assert_eq!(u16::from_be_bytes([f[18], f[19]]), 8, "payload length");
    // Sum over 0x8000 (type 128) + 0x0001 + 0x0001 + the pseudo-header (0xfd00 + 1, 0xfd00 +
    // 2, length 8, next header 58): 0x8000+2+0xfd01+0xfd02+8+0x3a = 0x27a47 -> 0x7a49, ~ 0x85b6.
    assert_eq!(u16::from_be_bytes([f[56], f[57]]), 0x85b6);
    // Any frame: the checksum over the upper layer with its checksum in place is 0.
    for f in [wire::echo_request(7, 99, 1001), wire::udp(40000, 7778, 333)] {
        let next = f[20];
        assert_eq!(
            wire::checksum(&wire::HOST_IP, &wire::GUEST_IP, next, &f[54..]),
            0
        );
    }
}

/// How the host feeds scenario D (GW_VM_SEED_* override, for measuring other mixes).
struct SeedPlan {
    /// Frames a second, all kinds.
    pps: u64,
    /// UDP datagrams (to the prompt reader) per ICMPv6 echo request. virtio-net carves its
    /// receive buffers (~1.5 kB each) out of 32 KiB pages, and a queued ICMPv6 packet keeps
    /// its whole page alive: with 20 reader datagrams per echo request about one page per
    /// queued packet (a ratio of ~17 measured; 8 gave ~7.7, 40 ~16-17).
    mix: u64,
    icmp_bytes: usize,
    udp_bytes: usize,
    /// Most seconds of flooding, whatever the guest says.
    max_s: u64,
}

impl SeedPlan {
    fn from_env() -> SeedPlan {
        let get = |k: &str, d: u64| {
            std::env::var(k)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(d)
        };
        SeedPlan {
            pps: get("GW_VM_SEED_PPS", 4000),
            mix: get("GW_VM_SEED_MIX", 20),
            icmp_bytes: get("GW_VM_SEED_ICMP_BYTES", 400) as usize,
            udp_bytes: get("GW_VM_SEED_UDP_BYTES", 200) as usize,
            max_s: get("GW_VM_SEED_MAX_S", 70),
        }
    }
}

/// What the host sent.
#[derive(Default)]
struct Fed {
    icmp: u64,
    udp: u64,
    /// Frames the guest sent back (its neighbour solicitations for fd00::1; echo replies
    /// wait for a neighbour that never answers).
    from_guest: u64,
    /// Sends that timed out (QEMU not reading: the guest's receive ring was full for 1 s).
    stalls: u64,
    ms: u128,
}

fn log_has(log: &Path, needle: &str) -> bool {
    std::fs::read_to_string(log).is_ok_and(|t| t.contains(needle))
}

/// Feeds the guest from its `GWVM seed_ready` line to its `GWVM seed_stop` line (or until it
/// powers off, or `plan.max_s`), through `sock` (bound to the wire's host end) to `qemu`.
fn feed(sock: &UnixDatagram, qemu: &Path, log: &Path, child: &mut Child, plan: &SeedPlan) -> Fed {
    let mut fed = Fed::default();
    let wait_until = Instant::now() + Duration::from_secs(240);
    while !log_has(log, "GWVM seed_ready") {
        if Instant::now() > wait_until || child.try_wait().ok().flatten().is_some() {
            return fed;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    sock.set_write_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let start = Instant::now();
    let (mut sent, mut next_check) = (0u64, start);
    let mut rx = [0u8; 2048];
    'flood: loop {
        let now = Instant::now();
        if now >= next_check {
            next_check = now + Duration::from_millis(100);
            if log_has(log, "GWVM seed_stop")
                || child.try_wait().ok().flatten().is_some()
                || now - start > Duration::from_secs(plan.max_s)
            {
                break;
            }
            sock.set_nonblocking(true).unwrap();
            while sock.recv(&mut rx).is_ok() {
                fed.from_guest += 1;
            }
            sock.set_nonblocking(false).unwrap();
        }
        let due = (now - start).as_micros() as u64 * plan.pps / 1_000_000;
        if sent >= due {
            std::thread::sleep(Duration::from_micros(500));
            continue;
        }
        while sent < due {
            let f = if sent % (plan.mix + 1) == 0 {
                fed.icmp += 1;
                wire::echo_request(0x5eed, fed.icmp as u16, plan.icmp_bytes)
            } else {
                fed.udp += 1;
                wire::udp(40000 + (sent % 1000) as u16, 7778, plan.udp_bytes)
            };
            sent += 1;
            match sock.send_to(&f, qemu) {
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    fed.stalls += 1;
                    // Behind by more than a second: let the schedule slip rather than burst.
                    sent = sent.max(due.saturating_sub(plan.pps));
                    continue 'flood;
                }
                // QEMU is gone (the guest powered off, or the boot failed).
                Err(_) => break 'flood,
            }
        }
    }
    fed.ms = start.elapsed().as_millis();
    fed
}

#[test]
#[ignore = "boots a qemu guest with a virtio NIC the host feeds (about 40 s under TCG); run by tests/vm/run.sh"]
fn x86_64_d_seed_raw6_through_a_nic_is_found_by_correlation() {
    let Some(g) = prepare("x86_64") else { return };
    let plan = SeedPlan::from_env();
    let dir = support::TempDir::new("vm-seed");
    let (host_end, qemu_end) = (dir.join("host.sock"), dir.join("qemu.sock"));
    let sock = UnixDatagram::bind(&host_end).expect("bind the wire's host end");
    let log = vm_log(&g, "D", 1);
    // The feeder waits for lines in this log: not the last boot's.
    let _ = std::fs::remove_file(&log);
    let mut child = boot_cmd(&g, "D", &log, 240, "")
        .env("GW_VM_DGRAM", dir.path())
        .spawn()
        .expect("run tests/vm/boot.sh");
    let fed = feed(&sock, &qemu_end, &log, &mut child, &plan);
    let status = child.wait().expect("wait for tests/vm/boot.sh");
    let c = booted(&g, "D", 1, log, status);
    for l in c.lines("watch") {
        eprintln!("{l}");
    }
    let seed = c.line("seed");
    println!(
        "x86_64 D: host fed {} ICMPv6 echo requests ({} B of data) + {} UDP ({} B) in {} ms ({} pps planned, {} stalls, {} frames back); guest: {seed}",
        fed.icmp,
        plan.icmp_bytes,
        fed.udp,
        plan.udp_bytes,
        fed.ms,
        plan.pps,
        fed.stalls,
        fed.from_guest
    );
    println!("x86_64 D: {}", c.line("nic"));
    // boot.sh's NIC: virtio-net-pci, or GW_VM_NIC (e1000).
    let driver = match std::env::var("GW_VM_NIC").as_deref() {
        Ok("e1000") => "e1000",
        _ => "virtio_net",
    };
    assert!(
        c.line("nic").contains(&format!("driver={driver} ")),
        "the guest's eth0 is not the {driver} NIC ({})",
        c.log.display()
    );
    assert!(
        fed.icmp > 100,
        "the host fed almost nothing ({})",
        c.log.display()
    );
    assert_eq!(support::field(seed, "oom_kills"), Some("0"), "{seed}");
    assert_eq!(c.num("vmstat", "oom_kill"), 0);
    assert_eq!(support::field(seed, "stop"), Some("done"), "{seed}");
    assert_eq!(support::field(c.line("innocent"), "alive"), Some("1"));
    let leaky = support::field(c.line("leaky"), "pid")
        .unwrap_or("?")
        .to_string();
    let reader = support::field(c.line("reader"), "pid")
        .unwrap_or("?")
        .to_string();
    // Every action line names the raw6 socket of gw-testd, never the reader's.
    let syslog = c.lines("syslog");
    let actions: Vec<&str> = syslog
        .iter()
        .filter_map(|l| Some(&l[l.find("event=action ")?..]))
        .collect();
    assert!(!actions.is_empty(), "no action ({})", c.log.display());
    for a in &actions {
        assert!(
            support::field(a, "proto") == Some("raw6")
                && support::field(a, "comm") == Some("gw-testd")
                && support::field(a, "pid") == Some(leaky.as_str()),
            "an action aimed elsewhere than gw-testd's raw6 socket (pid {leaky}; the reader is pid {reader}): {a}"
        );
    }
    let first = actions[0];
    assert!(
        first.contains("rule=blame") && first.contains("trigger=ghost"),
        "{first}"
    );
    assert!(
        actions
            .iter()
            .any(|a| a.contains("rule=clamp-ghost") && a.contains("result=ok"))
            && actions
                .iter()
                .any(|a| a.contains("action=drain") && a.contains("result=ok")),
        "no successful clamp and drain of the raw6 socket ({})",
        c.log.display()
    );
    let watch = c
        .lines("watch")
        .into_iter()
        .find(|l| l.starts_with("watch WATCH"))
        .unwrap_or_else(|| panic!("no WATCH line from report --watch ({})", c.log.display()));
    // The culprit's row of the watch's table: its RATIO column.
    let row = c
        .lines("watch")
        .into_iter()
        .find(|l| l.contains(" raw6 ") && l.contains("/gw-testd"))
        .unwrap_or("");
    let cols: Vec<&str> = row.split_whitespace().collect();
    // The guest's own cross-check, without ghostwatch: MemAvailable's drop over the raw6
    // queue at its largest (both sampled every 50 ms; the drop includes the slab the queue's
    // truesize already counts).
    let num = |k: &str| -> f64 {
        support::field(seed, k)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    eprintln!(
        "x86_64 D: pin ratio (Ghost growth / Recv-Q growth): agent {} (first action: {first}); report --watch 5: {} ({watch}); MemAvailable drop / largest raw6 Recv-Q: {:.1}",
        support::field(first, "pin_ratio").unwrap_or("untrusted"),
        cols.get(6).copied().unwrap_or("no raw6 row"),
        num("avail_drop_kb") * 1024.0 / num("max_raw6_rxq").max(1.0),
    );
    assert!(
        watch.contains("raw6") && watch.contains("gw-testd"),
        "report --watch did not name gw-testd's raw6 socket: {watch}"
    );
}
