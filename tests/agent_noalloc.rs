//! Proof of the invariant "the poll loop never allocates": a counting global allocator wraps
//! the system one, and polls with nothing to carry out must not touch it — neither on the live
//! /proc of this machine (quiet thresholds) nor on the seed box in a persistent incident once
//! its first decisions were audited, nor while a command it started is still running.

use ghostwatch::agent::Agent;
use ghostwatch::config::{Config, SyslogTarget};
use ghostwatch::observe::proc::ProcRoot;
#[path = "support/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::count;

/// Runs `polls` polls with the allocator counting; returns the number of allocations.
fn count_allocs(agent: &mut Agent, start_ms: u64, polls: u64) -> u64 {
    count(|| {
        for i in 0..polls {
            agent.poll(start_ms + i * 1000);
        }
    })
    .1
}

fn quiet_config(dir: &std::path::Path) -> Config {
    let mut cfg = Config::embedded_default();
    cfg.syslog = SyslogTarget::Stderr;
    cfg.mlock = false;
    cfg.status_file =
        Some(heapless::String::try_from(dir.join("status.json").to_str().unwrap()).unwrap());
    cfg.metrics_file =
        Some(heapless::String::try_from(dir.join("metrics.prom").to_str().unwrap()).unwrap());
    cfg
}

// One test function: the counter is process-global, so the two scenarios must not overlap.
#[test]
fn poll_loop_does_not_allocate() {
    let dir = std::env::temp_dir().join(format!("gw-noalloc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    ghostwatch::output::sink::init(&SyslogTarget::Stderr, "daemon").unwrap();

    // 1. The live box, thresholds far above anything here: the steady state of a healthy router.
    let mut cfg = quiet_config(&dir);
    cfg.ghost_warn_kb = u64::MAX / 4;
    cfg.ghost_act_kb = u64::MAX / 2;
    cfg.backlog_warn_bytes = u64::MAX / 4;
    cfg.backlog_act_bytes = u64::MAX / 2;
    // An oom_eta rule: the MemAvailable ring and its Theil-Sen fit run every poll (eta_s 1:
    // memory gone within a second, which does not happen here).
    let eta = br#"{"rules": [{"name": "eta", "trigger": "oom_eta", "eta_s": 1, "action": "log"}]}"#;
    let eta_rule = ghostwatch::config::parse(eta).unwrap().rules[0].clone();
    cfg.rules.push(eta_rule).unwrap();
    // The firmware duties run in the same loop: a protect list (names nothing here runs, so
    // every new PID is probed and none changed; an exe path exercises the stat match) and a
    // watchdog (the FIFO stand-in), petted after each poll as `run` does.
    let not_running = dir.join("not-running");
    std::fs::write(&not_running, b"").unwrap();
    cfg.protect
        .push("gw-noalloc-none".try_into().unwrap())
        .unwrap();
    cfg.protect
        .push(not_running.to_str().unwrap().try_into().unwrap())
        .unwrap();
    let fifo = dir.join("watchdog");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    // SAFETY: as above; the reader keeps the FIFO open for the agent's O_NONBLOCK writer.
    let reader = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_NONBLOCK) };
    assert!(reader >= 0);
    cfg.watchdog_device = Some(fifo.to_str().unwrap().try_into().unwrap());
    let mut agent = Agent::new(cfg, ProcRoot::live()).unwrap();
    agent.open_watchdog();
    agent.poll(1_000); // the first poll may set things up (and sweeps /proc for `protect`)
    agent.pet_watchdog();
    // 60 polls: one of them is the protector's periodic full sweep.
    let n = count(|| {
        for i in 0..60 {
            agent.poll(2_000 + i * 1000);
            agent.pet_watchdog();
        }
    })
    .1;
    assert_eq!(n, 0, "{n} allocations in 60 quiet polls of the live /proc");
    assert!(agent.stats().sockets_seen > 0 || agent.stats().tables_read > 0);
    assert_eq!(
        agent.stats().incidents[ghostwatch::config::Trigger::OomEta.index()] as u8,
        0
    );
    let mut pets = [0u8; 256];
    // SAFETY: reading into a stack buffer from our fd.
    let got = unsafe { libc::read(reader, pets.as_mut_ptr().cast(), pets.len()) };
    assert_eq!(got, 61, "one pet per healthy poll");
    assert_eq!(agent.close_watchdog(), Some("closed"));
    // SAFETY: as above, then closing our fd.
    let got = unsafe { libc::read(reader, pets.as_mut_ptr().cast(), pets.len()) };
    assert_eq!((got, pets[0]), (1, b'V'), "magic close");
    unsafe { libc::close(reader) };

    // 2. The seed box: Ghost 2.5 GB and zebra's 76 MB backlog keep an incident open. After the
    // first polls have audited the threshold crossings and the log rules (cooldown 60 s),
    // further polls within the cooldown decide nothing new and must not allocate.
    let root =
        ProcRoot::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/seed").as_bytes())
            .unwrap();
    let mut agent = Agent::new(quiet_config(&dir), root).unwrap();
    agent.poll(1_000);
    agent.poll(2_000);
    let n = count_allocs(&mut agent, 3_000, 30);
    assert_eq!(
        n, 0,
        "{n} allocations in 30 polls during a standing incident"
    );
    assert!(
        agent.stats().ghost_kb == 2_591_452,
        "seed Ghost: {}",
        agent.stats().ghost_kb
    );
    assert_eq!(agent.stats().worst.map(|w| w.rx_queue), Some(76_755_840));

    // 3. The live box with a standing backlog incident of our own: a UDP socket this process
    // holds and never reads. Every poll re-reads the tables through sock_diag (in every network
    // namespace) and re-validates the remembered owner with one readlink; none may allocate.
    let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for _ in 0..20 {
        tx.send_to(&[0u8; 10_000], rx.local_addr().unwrap())
            .unwrap();
    }
    let mut cfg = quiet_config(&dir);
    cfg.ghost_warn_kb = u64::MAX / 4;
    cfg.ghost_act_kb = u64::MAX / 2;
    cfg.backlog_warn_bytes = 65_536;
    cfg.backlog_act_bytes = u64::MAX / 2;
    let mut agent = Agent::new(cfg, ProcRoot::live()).unwrap();
    agent.poll(1_000);
    agent.poll(2_000);
    let n = count_allocs(&mut agent, 3_000, 30);
    assert_eq!(
        n, 0,
        "{n} allocations in 30 polls of a live standing incident"
    );
    assert!(agent.stats().worst.is_some_and(|w| w.rx_queue >= 65_536));
    drop((rx, tx));

    // 4. A command still running (a restart script that takes its time): each poll looks at
    // it with waitpid(WNOHANG) and the clock, and that allocates nothing either.
    let mut agent = Agent::new(quiet_config(&dir), ProcRoot::live()).unwrap();
    let argv = [
        ghostwatch::config::Str::try_from("sleep").unwrap(),
        ghostwatch::config::Str::try_from("30").unwrap(),
    ];
    let run = ghostwatch::act::children::Running::spawn(&argv, None, 60_000).unwrap();
    let pid = run.pid();
    let job = ghostwatch::act::children::Job {
        run,
        rule: "slow".try_into().unwrap(),
        line: ghostwatch::output::audit::AuditLine::new("action"),
    };
    assert!(agent.children().push(job).is_ok());
    agent.poll(1_000);
    let now = ghostwatch::sys::monotonic_ms();
    let n = count(|| {
        for i in 0..30 {
            agent.reap_children(now + i, false);
            agent.poll(2_000 + i * 1000);
        }
    })
    .1;
    assert_eq!(n, 0, "{n} allocations in 30 polls while a command runs");
    assert_eq!(agent.children().len(), 1, "the command is still running");
    // SAFETY: our own child (pid of the command we spawned).
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    agent.finish_children(true);

    // 5. A syslog target that takes nothing (a unix datagram socket nobody reads): lines fill
    // its queue, then the delivery ring, which overflows (oldest dropped); each goes to stderr.
    // Sending, queueing, dropping and the loop's ticks allocate nothing (the ring was
    // allocated by init).
    let full = dir.join("full.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&full).unwrap();
    let target = SyslogTarget::Unix(full.to_str().unwrap().try_into().unwrap());
    ghostwatch::output::sink::init(&target, "daemon").unwrap();
    let line = ghostwatch::output::audit::AuditLine::new("action");
    let before = ghostwatch::output::sink::stats();
    // SAFETY: fd 2 points at /dev/null while the 300 copies are written, then is restored.
    let saved = unsafe { libc::dup(2) };
    let null = std::fs::File::options()
        .write(true)
        .open("/dev/null")
        .unwrap();
    unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&null), 2) };
    let n = count(|| {
        for i in 0..300u64 {
            ghostwatch::output::sink::emit(
                ghostwatch::output::sink::Severity::Warning,
                line.as_str(),
            );
            ghostwatch::output::sink::tick(ghostwatch::sys::monotonic_ms() + i);
        }
    })
    .1;
    unsafe {
        libc::dup2(saved, 2);
        libc::close(saved);
    }
    let after = ghostwatch::output::sink::stats();
    ghostwatch::output::sink::init(&SyslogTarget::Stderr, "daemon").unwrap();
    drop(sock);
    assert_eq!(
        n, 0,
        "{n} allocations sending 300 lines to a full syslog target"
    );
    assert!(after.lines_dropped > before.lines_dropped, "{after:?}");
    assert!(after.lines_queued >= before.lines_queued + 200, "{after:?}");

    std::fs::remove_dir_all(&dir).unwrap();
}
