//! `Policy::evaluate` must never touch the heap: the agent calls it on a box that is running out
//! of memory. A counting global allocator checks that over a few hundred evaluations that walk
//! every path (thresholds, actions, skips, escalation, recovery, reload).

use ghostwatch::config::{ActionKind, Config, Name, Rule, Str, SyslogTarget, Trigger};
use ghostwatch::decide::policy::{
    Decision, MAX_DECISIONS, Policy, Snapshot, Suspect, SuspectOwner,
};
use ghostwatch::observe::owners::Owner;
use ghostwatch::observe::proc::net::{Endpoint, Proto, SocketEntry};
use ghostwatch::observe::proc::pid::Comm;

#[path = "support/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::count;

fn rule(name: &str, trigger: Trigger, action: ActionKind, comm: Option<&str>) -> Rule {
    Rule {
        name: Name::try_from(name).unwrap(),
        trigger,
        comm: comm.map(|c| c.try_into().unwrap()),
        exe: None,
        uid: None,
        action,
        argv: heapless::Vec::new(),
        sysctl: None,
        value: None,
        rcvbuf: None,
        signal: 15,
        timeout_s: 10,
        escalate_after_s: None,
        eta_s: None,
    }
}

fn config() -> Config {
    let mut rules = heapless::Vec::new();
    let mut restart = rule(
        "restart",
        Trigger::Ghost,
        ActionKind::Restart,
        Some("zebra"),
    );
    restart.escalate_after_s = Some(30);
    let mut reboot = rule("reboot", Trigger::Ghost, ActionKind::Reboot, None);
    reboot.escalate_after_s = Some(120);
    let mut by_exe = rule("drain", Trigger::Backlog, ActionKind::Drain, None);
    by_exe.exe = Some("zebra".try_into().unwrap());
    let mut eta = rule("eta", Trigger::OomEta, ActionKind::Log, None);
    eta.eta_s = Some(3600);
    for r in [
        rule("clamp", Trigger::Ghost, ActionKind::Clamp, Some("zebra")),
        restart,
        reboot,
        by_exe,
        rule("nobody", Trigger::Backlog, ActionKind::Kill, Some("bgpd")),
        rule("note", Trigger::Available, ActionKind::Log, None),
        eta,
    ] {
        rules.push(r).unwrap();
    }
    Config {
        interval_ms: 1000,
        syslog: SyslogTarget::Stderr,
        facility: Name::try_from("daemon").unwrap(),
        syslog_format: Default::default(),
        syslog_queue_lines: 64,
        status_file: None,
        metrics_file: None,
        dry_run: false,
        ghost_warn_kb: 100_000,
        ghost_act_kb: 200_000,
        ghost_growth: true,
        backlog_warn_bytes: 1_000_000,
        backlog_act_bytes: 8_000_000,
        min_available_kb: 50_000,
        available_warn_kb: 100_000,
        eta_window_s: 300,
        cooldown_s: 60,
        max_actions_per_hour: 5,
        oom_score_adj: -1000,
        mlock: false,
        breadcrumb_file: Str::try_from("/var/lib/ghostwatch.reboot").unwrap(),
        drain_max_packets: 1000,
        verify_s: 3,
        protect: heapless::Vec::new(),
        watchdog_device: None,
        watchdog_timeout_s: None,
        rules,
    }
}

fn suspect(rx_queue: u64, inode: u64, pid: u32, comm: &str, exe: &str) -> Suspect {
    let mut owners = heapless::Vec::new();
    owners
        .push(SuspectOwner {
            owner: Owner {
                inode,
                pid,
                fd: 3,
                comm: Comm::from_bytes(comm.as_bytes()),
            },
            exe: exe.try_into().unwrap(),
            exe_id: None,
            uid: Some(0),
        })
        .unwrap();
    Suspect {
        socket: SocketEntry::queued(Proto::Raw6, Endpoint::None, rx_queue, inode),
        owners,
        blame: Default::default(),
    }
}

#[test]
fn evaluate_never_allocates() {
    let cfg = config();
    let mut reloaded = config();
    reloaded.rules[1].name = Name::try_from("restart2").unwrap();
    let mut snap = Snapshot {
        now_ms: 0,
        ghost_kb: 0,
        available_kb: Some(500_000),
        suspects: heapless::Vec::new(),
        rule_exe: [None; ghostwatch::config::MAX_RULES],
    };
    snap.suspects
        .push(suspect(76_755_840, 1, 1234, "zebra", "/usr/sbin/zebra"))
        .unwrap();
    snap.suspects
        .push(suspect(9_000_000, 2, 99, "sshd", "/usr/sbin/sshd"))
        .unwrap();
    let mut policy = Policy::new();
    let mut out: heapless::Vec<Decision, MAX_DECISIONS> = heapless::Vec::new();
    let mut seen = [0usize; 4];
    let mut eta_acted = 0;

    let ((), allocations) = count(|| {
        for i in 0..600u64 {
            // 10 s polls; a condition that holds, dips, recovers and returns.
            snap.now_ms = i * 10_000;
            let phase = i % 100;
            snap.ghost_kb = if phase < 60 { 900_000 } else { 150_000 };
            // Low, then a slow fall (500 kB/s) that the oom_eta trigger sees coming.
            snap.available_kb = Some(if phase < 40 {
                30_000
            } else {
                400_000 - (phase - 40) * 5_000
            });
            snap.suspects[0].socket.rx_queue = if phase < 70 { 76_755_840 } else { 0 };
            let c = if i % 200 < 100 { &cfg } else { &reloaded };
            if i == 300 {
                policy.reconfigured(c);
            }
            let _ = policy.wants_owners(c, snap.ghost_kb, 76_755_840, snap.available_kb);
            policy.evaluate(c, &snap, &mut out);
            for d in &out {
                let k = match d {
                    Decision::Threshold { .. } => 0,
                    Decision::Recovered { .. } => 1,
                    Decision::Act { trigger, .. } => {
                        eta_acted += usize::from(*trigger == Trigger::OomEta);
                        2
                    }
                    Decision::Skip { .. } => 3,
                };
                seen[k] += 1;
            }
        }
    });

    println!("600 evaluations: {allocations} allocations; decisions by kind {seen:?}");
    assert_eq!(allocations, 0);
    assert!(seen.iter().all(|&n| n > 0), "every path ran: {seen:?}");
    assert!(eta_acted > 0, "the oom_eta rule acted");
}
