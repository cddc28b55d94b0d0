//! Router in a box: boots a Debian kernel with a busybox router userland under qemu-system
//! (TCG, 256 MB) and floods an unread UDP socket of a leaky daemon, as in the field report.
//! Scenario A (no agent) must end in the OOM killer shooting the innocent process; B (the
//! agent started by init/ghostwatch.initd beside a watchdog feeder) must prevent it; C (the
//! agent owns the watchdog) must keep the box up, and only a SIGKILL of the agent may make
//! the watchdog fire. The guest side is tests/vm/ (see tests/vm/README.md).
//!
//! These tests take minutes of emulation, so they are `#[ignore]`d in a plain `cargo test`;
//! `tests/vm/run.sh` (called by `.ci/run`) runs them, each boot under `timeout`.

mod support;

use std::path::PathBuf;
use std::process::Command;

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
    let log = repo().join(format!("target/vm-logs/{}-{scenario}-{run}.log", g.name));
    let status = Command::new(repo().join("tests/vm/boot.sh"))
        .args([g.arch, &g.kernel, &g.initrd, scenario])
        .arg(&log)
        .arg(timeout_s.to_string())
        .arg(append)
        .status()
        .expect("run tests/vm/boot.sh");
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
