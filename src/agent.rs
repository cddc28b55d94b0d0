//! `ghostwatch run`: the poll loop. Reads /proc, asks policy, runs actions, audits, writes
//! the status and metrics files, sleeps on CLOCK_MONOTONIC. Signals: HUP reloads, TERM/INT exit 0.
//!
//! Invariant: a poll with no decision to carry out allocates nothing (tests/agent_noalloc.rs).
//! Everything the loop needs — read buffers, the suspect list, the owner table, the status and
//! metrics text — lives in `Agent`, built once before the loop.

use crate::act::children::{self, Children, Job, Running};
use crate::act::executors::{self, Outcome, Target};
use crate::config::{self, ActionKind, Config, Trigger};
use crate::decide::policy::{self, Decision, Level, Policy, Snapshot, Suspect, SuspectOwner};
use crate::decide::schedule::Schedule;
use crate::observe::ghost;
use crate::observe::identity::{self, FileId};
use crate::observe::proc::meminfo::{Field, MemInfo};
use crate::observe::proc::net::{Proto, SocketEntry, TableStats, insert_top};
use crate::observe::proc::sockstat::SockStat;
use crate::observe::proc::vmallocinfo::VmallocSummary;
use crate::observe::proc::zoneinfo::PcpSummary;
use crate::observe::proc::{ProcRoot, pid};
use crate::observe::sockets::Scanner;
use crate::output::audit::AuditLine;
use crate::output::audit::ResultKind;
use crate::output::sink::{self, Severity};
use crate::output::status::{self, IncidentLevel, Stats};
use crate::sys::{self, Fd};
use core::fmt::Write as _;
use core::sync::atomic::{AtomicBool, Ordering};

mod firmware;
mod owner_track;

/// Where `run` looks for a config when no -c is given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/ghostwatch.json";

/// What the command line asked for.
#[derive(Clone, Debug)]
pub struct Options {
    pub config_path: Option<String>,
    pub proc_root: ProcRoot,
    pub dry_run: bool,
    pub once: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            config_path: None,
            proc_root: ProcRoot::live(),
            dry_run: false,
            once: false,
        }
    }
}

static TERM: AtomicBool = AtomicBool::new(false);
static HUP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(sig: libc::c_int) {
    // Only async-signal-safe work here: set a flag; the loop does the rest.
    if sig == libc::SIGHUP {
        HUP.store(true, Ordering::SeqCst);
    } else {
        TERM.store(true, Ordering::SeqCst);
        sys::request_stop();
    }
}

extern "C" fn on_child(_: libc::c_int) {
    // Nothing to do: the signal itself ends the loop's sleep so a finished command is reaped
    // and audited at once.
}

/// Installs HUP/TERM/INT handlers without SA_RESTART, so the interval sleep returns at once,
/// and a SIGCHLD handler (SA_RESTART: it must not disturb other syscalls; the sleep ends anyway).
fn install_signal_handlers() {
    for sig in [libc::SIGHUP, libc::SIGTERM, libc::SIGINT] {
        // SAFETY: a zeroed sigaction with a plain handler is valid; handler is async-signal-safe.
        unsafe {
            let mut sa: libc::sigaction = core::mem::zeroed();
            sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            sa.sa_flags = 0;
            libc::sigaction(sig, &sa, core::ptr::null_mut());
        }
    }
    // SAFETY: as above; the handler does nothing.
    unsafe {
        let mut sa: libc::sigaction = core::mem::zeroed();
        sa.sa_sigaction = on_child as extern "C" fn(libc::c_int) as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        sa.sa_flags = libc::SA_RESTART | libc::SA_NOCLDSTOP;
        libc::sigaction(libc::SIGCHLD, &sa, core::ptr::null_mut());
    }
    // A vanished syslog over TCP must not kill us.
    // SAFETY: ignoring SIGPIPE is always valid.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
}

/// True once SIGTERM/SIGINT arrived.
pub fn stopping() -> bool {
    TERM.load(Ordering::SeqCst)
}

/// Why process actions are not carried out under `--proc-root` (start line and each action).
const FAKE_ROOT_NOTE: &str = "dry-run: --proc-root is for diagnosis";

/// True for actions that reach outside a `--proc-root` tree: they signal, ptrace
/// (pidfd_getfd), run commands or reboot. Log and sysctl (written inside the tree) are not.
fn touches_live_system(a: ActionKind) -> bool {
    !matches!(a, ActionKind::Log | ActionKind::Sysctl)
}

/// Which config the agent runs with, and where it came from (for reloads and the start line).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigSource {
    File(String),
    Embedded,
}

impl ConfigSource {
    fn describe(&self) -> &str {
        match self {
            ConfigSource::File(p) => p,
            ConfigSource::Embedded => "embedded-default",
        }
    }
}

/// Picks the config: -c FILE, else /etc/ghostwatch.json if it exists, else the embedded default.
pub fn choose_config(path: Option<&str>) -> ConfigSource {
    match path {
        Some(p) => ConfigSource::File(p.to_string()),
        None if sys::CPath::from_bytes(DEFAULT_CONFIG_PATH.as_bytes())
            .and_then(|p| sys::stat(&p))
            .is_ok() =>
        {
            ConfigSource::File(DEFAULT_CONFIG_PATH.to_string())
        }
        None => ConfigSource::Embedded,
    }
}

/// Loads `src`; the error text is `FILE:LINE:COL: message`.
pub fn load_config(src: &ConfigSource) -> Result<Config, String> {
    let mut cfg = Config::default();
    load_config_into(src, &mut cfg)?;
    Ok(cfg)
}

/// `load_config`, filling `cfg` in place (no Config-sized Result and copy on the stack; on
/// Err `cfg` is a mix of old, default and parsed values: don't use it).
pub fn load_config_into(src: &ConfigSource, cfg: &mut Config) -> Result<(), String> {
    match src {
        ConfigSource::File(p) => config::load_into(p, cfg).map_err(|e| e.to_string()),
        ConfigSource::Embedded => {
            cfg.set_embedded_default();
            Ok(())
        }
    }
}

/// Runs the agent; returns the process exit status (0 clean stop, 1 runtime failure, 2 bad config).
///
/// Stack economy (mlockall keeps every stack page the agent ever touched resident, so the
/// deepest frame chain is paid for the whole run): the `Agent` (~80 KiB) lives in this frame
/// exactly once, used through a reference to its `Result` rather than moved out of it, and
/// the config is loaded straight into it (`Agent::blank`, `Agent::configure`).
#[inline(never)]
pub fn run(opts: Options) -> u8 {
    // Before anything lowers it: the value the agent's commands get back.
    children::remember_oom_score_adj();
    let source = choose_config(opts.config_path.as_deref());
    let mut built = Agent::blank(opts.proc_root.clone());
    let agent = match &mut built {
        Ok(a) => a,
        // No meminfo: the slow path of before, so a bad config is still reported as one
        // (exit 2) first, and the failure audited through the configured sink.
        Err(_) => return start_failed(&opts, &source),
    };
    if let Err(code) = agent.configure(&source, opts.dry_run) {
        return code;
    }
    if opts.once {
        agent.owner_walk_budget_us = u64::MAX;
    }
    agent.protect_self();
    agent.open_watchdog();
    {
        let mut l = AuditLine::new("start");
        l.kv("version", env!("CARGO_PKG_VERSION").as_bytes())
            .kv("config", source.describe().as_bytes())
            .kvd("interval_ms", agent.cfg.interval_ms)
            .kvd("rules", agent.cfg.rules.len())
            .kvd("dry_run", agent.cfg.dry_run as u8)
            .kv("proc_root", agent.root.dir().as_bytes());
        agent.start_pairs(&mut l);
        if !agent.root.is_live() {
            l.kv("process_actions", FAKE_ROOT_NOTE.as_bytes());
        }
        agent.emit(Severity::Info, l);
    }

    // One absolute deadline: signals and commands wake the loop early, never postpone a poll.
    // A HUP storm reloads at most once per poll (the flag stays set until the next one).
    let mut sched = Schedule::new(sys::monotonic_ms(), agent.cfg.interval_ms);
    let mut reloaded_since_poll = false;
    loop {
        if stopping() {
            break;
        }
        let now = sys::monotonic_ms();
        agent.reap_children(now, false);
        if !reloaded_since_poll && HUP.swap(false, Ordering::SeqCst) {
            agent.reload(&source, opts.dry_run);
            reloaded_since_poll = true;
            sched.set_interval(agent.cfg.interval_ms, now);
        }
        if sched.due(now) {
            agent.poll(now);
            agent.pet_watchdog();
            reloaded_since_poll = false;
            if opts.once || stopping() {
                break;
            }
            sched.polled(sys::monotonic_ms());
        }
        if agent.owner_walk_pending() {
            // A long owner walk goes on in budgeted slices between polls, not inside one, and
            // right after the poll that started it (not one slice per poll): back to the top
            // after each slice, so signals and a due poll still come first.
            agent.owner_walk_slice();
            if !agent.owner_walk_pending() {
                // Complete: decide on its owners now, not up to an interval later.
                sched.poll_now(sys::monotonic_ms());
            }
            continue;
        }
        let now = sys::monotonic_ms();
        let wake = agent
            .children
            .next_wake_ms(now)
            .map_or(sched.next_ms(), |w| w.min(sched.next_ms()));
        sleep_until_ms(wake);
    }
    // The magic close first: waiting for commands below no longer pets the watchdog.
    let watchdog = agent.close_watchdog();
    // --once waits for its commands; a signal stops them (TERM, grace, KILL), audited.
    agent.finish_children(!opts.once);
    let mut l = AuditLine::new("stop");
    if let Some(w) = watchdog {
        l.kv("watchdog", w.as_bytes());
    }
    l.kv(
        "reason",
        if stopping() {
            b"signal".as_slice()
        } else {
            b"once".as_slice()
        },
    )
    .kvd("cycles", agent.cycles);
    agent.emit(Severity::Info, l);
    0
}

/// Prints why the config is invalid (the `run` and `reload` wording) and returns exit status 2.
fn refuse_config(e: &str) -> u8 {
    sys::Out::STDERR.print(format_args!("{e}\n"));
    sys::Out::STDERR.print(format_args!(
        "ghostwatch: refusing to run with an invalid config (check it with 'ghostwatch check -c FILE')\n"
    ));
    2
}

/// `run` when the agent cannot be built (no readable meminfo): loads the config the plain way
/// (2 if invalid), opens its sink and audits why the agent cannot start (1).
#[inline(never)]
fn start_failed(opts: &Options, source: &ConfigSource) -> u8 {
    let cfg = match load_config(source) {
        Ok(c) => c,
        Err(e) => return refuse_config(&e),
    };
    if let Err(e) = sink::init(&cfg.syslog, &cfg.facility) {
        sys::Out::STDERR.print(format_args!(
            "ghostwatch: syslog unavailable ({e}); audit lines go to stderr until it is back\n"
        ));
    }
    match Agent::new(cfg, opts.proc_root.clone()) {
        Ok(_) => 1, // meminfo appeared meanwhile; still a failed start
        Err(e) => {
            let mut l = AuditLine::new("error");
            l.kv("reason", e.as_bytes());
            sink::emit(Severity::Err, l.as_str());
            sys::Out::STDERR.print(format_args!("ghostwatch: {e}\n"));
            1
        }
    }
}

/// Sleeps on CLOCK_MONOTONIC until `deadline_ms`; returns early when a signal arrives.
fn sleep_until_ms(deadline_ms: u64) {
    let ts = crate::sys::timespec(deadline_ms / 1000, (deadline_ms % 1000) as u32 * 1_000_000);
    // SAFETY: valid timespec; EINTR (a signal) simply ends the sleep.
    unsafe {
        libc::clock_nanosleep(
            libc::CLOCK_MONOTONIC,
            libc::TIMER_ABSTIME,
            &ts,
            core::ptr::null_mut(),
        )
    };
}

/// What suspect tracking keeps of a sockstat family's last table read
/// (`policy::suspects_still_explain`).
#[derive(Clone, Copy, Debug, Default)]
struct Baseline {
    /// Bytes of the family's queued memory (sockstat `mem`) no socket in the tables explained.
    unexplained: Option<i64>,
    /// Bytes charged by the sockets tracking does not re-check, as they were at the read.
    untracked: u64,
    /// The charges came from sock_diag (exact), not the text tables (estimates).
    exact: bool,
}

/// The sockstat family a protocol's queued memory is counted in: 0 tcp, 1 udp (suspect
/// tracking); None for the tables read every poll (raw, netlink, packet) or with the periodic
/// scan (unix).
fn family(p: Proto) -> Option<usize> {
    match p {
        Proto::Tcp | Proto::Tcp6 => Some(0),
        Proto::Udp | Proto::Udp6 | Proto::UdpLite | Proto::UdpLite6 => Some(1),
        _ => None,
    }
}

/// The per-CPU slack of sockstat's `mem` on this kernel (`sockstat::pcpu_lag_bytes`), read once
/// from ROOT/sys/net/core/mem_pcpu_rsv, ROOT/sys/kernel/osrelease and the cpu lines of ROOT/stat.
fn sockstat_lag(root: &ProcRoot, page_size: u64) -> u64 {
    let mut buf = [0u8; 512];
    let read = |rel: &[u8], buf: &mut [u8; 512]| -> Option<usize> {
        root.open(rel).ok()?.read_full(buf).ok()
    };
    let cpus = root
        .open(b"stat")
        .map(|fd| crate::observe::proc::sockstat::count_cpus(fd, &mut buf[..]))
        .unwrap_or(0);
    let rsv = read(b"sys/net/core/mem_pcpu_rsv", &mut buf)
        .and_then(|n| crate::observe::proc::parse_dec(buf[..n].trim_ascii()));
    let n = read(b"sys/kernel/osrelease", &mut buf).unwrap_or(0);
    crate::observe::proc::sockstat::pcpu_lag_bytes(rsv, &buf[..n], cpus, page_size)
}

/// How often (in polls) /proc/vmallocinfo is re-read where meminfo's VmallocUsed is 0.
const VMALLOCINFO_EVERY: u64 = 10;

/// The agent: config, policy history and every buffer the loop uses.
pub struct Agent {
    pub cfg: Config,
    pub root: ProcRoot,
    policy: Policy,
    meminfo_fd: Option<Fd>,
    buf: [u8; 4096],
    suspects: heapless::Vec<Suspect, { policy::MAX_SUSPECTS }>,
    owners: owner_track::OwnerTrack,
    /// How far sockstat's `mem` may be from the truth, bytes (`sockstat::pcpu_lag_bytes`).
    sockstat_lag: u64,
    /// The poll (cycle) of the next periodic full scan (`policy::full_scan_spacing`).
    next_full_scan: u64,
    /// Suspect tracking, per sockstat family (tcp, udp), from its last table read.
    baseline: [Baseline; 2],
    /// Most time one poll (or one slice between polls) spends in the owner walk; `run --once`
    /// lifts it (one poll must finish the walk).
    pub owner_walk_budget_us: u64,
    /// Identity of each rule's absolute `exe`, re-stat()ed with every owner resolution.
    rule_exe: [Option<FileId>; config::MAX_RULES],
    scanner: Scanner,
    decisions: heapless::Vec<Decision, { policy::MAX_DECISIONS }>,
    vmalloc_kb: Option<u64>,
    page_size: u64,
    /// Commands (exec/restart) still running; polled at every wake-up of the loop.
    pub children: Children,
    pub stats: Stats,
    pub cycles: u64,
    firmware: firmware::Firmware,
}

impl Agent {
    /// Builds the agent; Err if the proc root has no readable meminfo (nothing to watch).
    #[inline(never)] // its temporaries stay out of `run`'s frame (see `run`)
    pub fn new(cfg: Config, root: ProcRoot) -> Result<Agent, String> {
        let meminfo_fd = root
            .open(b"meminfo")
            .map_err(|e| format!("{}/meminfo: {}", root.dir(), sys::strerror(e)))?;
        let firmware = firmware::Firmware::new(&root, &cfg);
        let scanner = Scanner::new(&root, Scanner::is_live_root(&root));
        let sockstat_lag = sockstat_lag(&root, sys::page_size());
        Ok(Agent {
            cfg,
            root,
            policy: Policy::new(),
            meminfo_fd: Some(meminfo_fd),
            buf: [0; 4096],
            suspects: heapless::Vec::new(),
            owners: owner_track::OwnerTrack::default(),
            next_full_scan: 1,
            sockstat_lag,
            baseline: [Baseline::default(); 2],
            owner_walk_budget_us: owner_track::WALK_BUDGET_US,
            rule_exe: [None; config::MAX_RULES],
            scanner,
            decisions: heapless::Vec::new(),
            vmalloc_kb: None,
            page_size: sys::page_size(),
            children: Children::default(),
            stats: Stats::default(),
            cycles: 0,
            firmware,
        })
    }

    /// `new` with the default config, for `run` to load the real one straight into `cfg`
    /// (`configure`): a frame of its own, so the Config temporary is not part of `run`'s.
    #[inline(never)]
    fn blank(root: ProcRoot) -> Result<Agent, String> {
        Agent::new(Config::default(), root)
    }

    /// `run`'s start on a `blank` agent: loads the config into `self.cfg` in place (an
    /// invalid one is reported: Err(2)), applies --dry-run, opens the syslog sink, installs
    /// the signal handlers and loads the `protect` list (what `new` does with its Config).
    #[inline(never)]
    fn configure(&mut self, source: &ConfigSource, dry_run: bool) -> Result<(), u8> {
        if let Err(e) = load_config_into(source, &mut self.cfg) {
            return Err(refuse_config(&e));
        }
        if dry_run {
            self.cfg.dry_run = true;
        }
        if let Err(e) = sink::init(&self.cfg.syslog, &self.cfg.facility) {
            sys::Out::STDERR.print(format_args!(
                "ghostwatch: syslog unavailable ({e}); audit lines go to stderr until it is back\n"
            ));
        }
        install_signal_handlers();
        self.firmware = firmware::Firmware::new(&self.root, &self.cfg);
        Ok(())
    }

    /// Re-reads the config after SIGHUP; a bad one is logged and the old one stays.
    #[inline(never)] // the new Config (~28 KiB) stays out of `run`'s frame (see `run`)
    pub fn reload(&mut self, source: &ConfigSource, force_dry_run: bool) {
        // One Config filled in place (not a Result and a copy of it); the running config
        // stays untouched until the new one is valid.
        let mut c = Config::default();
        match load_config_into(source, &mut c) {
            Ok(()) => {
                if force_dry_run {
                    c.dry_run = true;
                }
                self.policy.reconfigured(&c);
                if c.syslog != self.cfg.syslog || c.facility != self.cfg.facility {
                    if let Err(e) = sink::reconfigure(&c) {
                        sys::Out::STDERR.print(format_args!(
                            "ghostwatch: syslog unavailable after reload ({e})\n"
                        ));
                    }
                }
                let old_watchdog = self.cfg.watchdog_device.take();
                self.cfg = c;
                self.reconfigure_firmware(old_watchdog.as_ref());
                let mut l = AuditLine::new("reload");
                l.kv("config", source.describe().as_bytes())
                    .kvd("rules", self.cfg.rules.len())
                    .kv("result", ResultKind::Ok.name().as_bytes());
                self.emit(Severity::Notice, l);
            }
            Err(e) => {
                let mut l = AuditLine::new("error");
                l.kv(
                    "reason",
                    b"config reload failed, keeping the running config",
                )
                .kv("error", e.as_bytes());
                self.emit(Severity::Err, l);
            }
        }
    }

    /// Sends an audit line with the next sequence number.
    fn emit(&mut self, sev: Severity, mut line: AuditLine) {
        self.stats.seq += 1;
        line.kvd("seq", self.stats.seq);
        sink::emit(sev, line.as_str());
    }

    /// Rewrites the status and metrics files; a failure (read-only directory, a planted
    /// directory at the path, ...) is audited, the first 10 and then every 100th.
    fn write_outputs(&mut self) {
        self.stats.max_cycle_us = self.stats.max_cycle_us.max(self.stats.last_cycle_us);
        self.stats.max_walk_slice_us = self.owners.max_slice_us;
        self.stats.last_walk_us = self.owners.last_walk_us;
        let Err((path, e)) = status::write_all(&self.stats, &status::Outputs::of(&self.cfg)) else {
            return;
        };
        self.stats.write_errors += 1;
        let n = self.stats.write_errors;
        if n <= 10 || n % 100 == 0 {
            let mut msg = heapless::String::<192>::new();
            let _ = write!(msg, "cannot write {path}: {}", sys::strerror(e));
            let mut l = AuditLine::new("error");
            l.kv("reason", msg.as_bytes()).kvd("errors_total", n);
            self.emit(Severity::Err, l);
        }
    }

    fn read_error(&mut self, what: &str, err: impl core::fmt::Display) {
        self.stats.read_errors += 1;
        // One line per distinct failure would be ideal; a failing /proc read is rare enough
        // that one line per poll, rate-limited to the first 10 and then every 100th, is fine.
        let n = self.stats.read_errors;
        if n <= 10 || n % 100 == 0 {
            let mut l = AuditLine::new("error");
            let mut msg = heapless::String::<160>::new();
            let _ = write!(msg, "{what}: {err}");
            l.kv("reason", msg.as_bytes()).kvd("errors_total", n);
            self.emit(Severity::Err, l);
        }
    }

    /// Reads meminfo through the kept-open fd (reopened if it went bad).
    fn read_meminfo(&mut self) -> Option<MemInfo> {
        if self.meminfo_fd.is_none() {
            // A meminfo that cannot be reopened is counted and logged like any read error (a
            // blind agent also stops petting an owned watchdog: the operator must see why).
            match self.root.open(b"meminfo") {
                Ok(fd) => self.meminfo_fd = Some(fd),
                Err(e) => {
                    self.read_error("meminfo", sys::strerror(e));
                    return None;
                }
            }
        }
        let fd = self.meminfo_fd.as_ref()?;
        if let Err(e) = fd.rewind() {
            self.meminfo_fd = None;
            self.read_error("meminfo", sys::strerror(e));
            return None;
        }
        match MemInfo::read(fd, &mut self.buf) {
            Ok(m) => Some(m),
            Err(e) => {
                self.meminfo_fd = None;
                self.read_error("meminfo", e);
                None
            }
        }
    }

    /// Free pages on the per-CPU page lists (/proc/zoneinfo), read every poll (they move as
    /// fast as MemFree); None where zoneinfo is absent or shows no lists.
    fn pcp_free_kb(&mut self) -> Option<u64> {
        let s = self
            .root
            .open(b"zoneinfo")
            .ok()
            .and_then(|fd| PcpSummary::read(fd, &mut self.buf).ok())?;
        (s.lists > 0).then(|| s.free_kb(self.page_size))
    }

    /// Vmalloc from /proc/vmallocinfo, only where meminfo's VmallocUsed is 0/absent (4.4-5.2),
    /// refreshed every VMALLOCINFO_EVERY polls.
    fn vmallocinfo_kb(&mut self, mi: &MemInfo) -> Option<u64> {
        if mi.get(Field::VmallocUsed).unwrap_or(0) != 0 {
            return None;
        }
        if self.vmalloc_kb.is_none() || self.cycles % VMALLOCINFO_EVERY == 0 {
            self.vmalloc_kb = self
                .root
                .open(b"vmallocinfo")
                .ok()
                .and_then(|fd| VmallocSummary::read(fd, &mut self.buf).ok())
                .map(|s| s.vmalloc_kb(self.page_size));
        }
        self.vmalloc_kb
    }

    /// Reads the socket tables into `self.suspects` (top MAX_SUSPECTS by rx_queue).
    ///
    /// The tcp and udp tables cost milliseconds on hosts with large hash tables even when
    /// empty, so they are read only when /proc/net/sockstat says their protocol holds enough
    /// queued memory for one socket to reach the warn level, when Ghost or MemAvailable is in
    /// trouble anyway, or every policy::FULL_SCAN_EVERY polls. raw, netlink and packet (not covered by
    /// sockstat's memory counters, and cheap) are always read.
    fn read_sockets(&mut self, full: bool) {
        let periodic = self.full_scan_due();
        let mut read = [true, true];
        let is_tcp = |p: Proto| family(p) == Some(0);
        let is_udp = |p: Proto| family(p) == Some(1);
        // A family that has suspects is re-read when it cannot be tracked even if its queued
        // memory is now below the gate: else a drained socket stays the worst at its pre-drain
        // queue and the incident never ends (seen in tests/vm).
        let held = [0, 1].map(|f| {
            self.suspects
                .iter()
                .any(|s| family(s.socket.proto) == Some(f))
        });
        let mut mem = [None, None];
        if let Ok(ss) = self
            .root
            .open(b"net/sockstat")
            .map_err(crate::observe::proc::ProcError::Io)
            .and_then(|fd| SockStat::read(fd, &mut self.buf))
        {
            mem = [ss.tcp_mem_pages, ss.udp_mem_pages];
            if !full {
                for f in 0..2 {
                    read[f] = held[f]
                        || policy::sockstat_says_read(
                            &self.cfg,
                            mem[f],
                            self.page_size,
                            self.sockstat_lag,
                        );
                }
            }
        }
        // Suspect tracking: the suspects a family's last read tracked are re-checked through
        // their owners' fds; while they still explain the family's queued memory (a box-wide
        // total), they stand in for dumping every socket again (policy::suspects_still_explain).
        let tracked = self.tracked();
        let fresh = self.recheck_suspects(&tracked);
        for f in 0..2 {
            let b = self.baseline[f];
            let now = fresh[f].and_then(|c| {
                policy::unexplained_bytes(mem[f], self.page_size, c.saturating_add(b.untracked))
            });
            if read[f]
                && policy::suspects_still_explain(
                    &self.cfg,
                    self.sockstat_lag,
                    b.unexplained,
                    now,
                    b.exact,
                    periodic,
                )
            {
                read[f] = false;
            }
        }
        let (read_tcp, read_udp) = (read[0], read[1]);
        // Suspects of the families not re-read this poll stay if tracked and still queued; the
        // rest are found again. The kept ones are in order again after their re-check.
        let mut i = 0;
        self.suspects.retain(|s| {
            let keep = tracked[i]
                && s.socket.rx_queue > 0
                && family(s.socket.proto).is_some_and(|f| !read[f]);
            i += 1;
            keep
        });
        self.suspects
            .sort_unstable_by_key(|s| (core::cmp::Reverse(s.socket.rx_queue), s.socket.inode));
        let scan_start_us = sys::monotonic_us();
        // Network namespaces come and go: look for new ones with the periodic full scan.
        if full && periodic && self.cycles > 1 {
            self.scanner.discover(&self.root);
        }
        // Unix queues are small by construction (bounded by their senders' buffers), so the
        // unix dump rides along with the periodic full scans only.
        let want = |proto: Proto| match proto {
            p if is_tcp(p) => read_tcp,
            p if is_udp(p) => read_udp,
            Proto::Unix => periodic,
            _ => true,
        };
        let mut seen = 0u64;
        let mut all_charged = [0u64; 2];
        let suspects = &mut self.suspects;
        let mut per_table = [TableStats::default(); Proto::COUNT];
        self.scanner.scan(
            &self.root,
            &mut self.buf,
            &want,
            &mut per_table,
            &mut |s: &SocketEntry| {
                seen += 1;
                if let Some(f) = family(s.proto) {
                    all_charged[f] = all_charged[f].saturating_add(s.charged);
                }
                if s.rx_queue > 0 {
                    insert_top(
                        suspects,
                        policy::MAX_SUSPECTS,
                        s.rx_queue,
                        |x: &Suspect| x.socket.rx_queue,
                        || Suspect {
                            socket: *s,
                            owners: heapless::Vec::new(),
                        },
                    );
                }
            },
        );
        let tables = Proto::ALL.iter().filter(|&&p| want(p)).count() as u32;
        if periodic {
            // The safety net keeps to its share of the time however many sockets there are.
            let cost_us = sys::monotonic_us().saturating_sub(scan_start_us);
            self.next_full_scan = self.cycles.saturating_add(policy::full_scan_spacing(
                cost_us,
                u64::from(self.cfg.interval_ms),
            ));
        }
        // Suspect tracking's baseline: what each family read this poll leaves unexplained, and
        // what the sockets it will not re-check charge.
        let tracked = self.tracked();
        let diag = self.scanner.kind() == crate::observe::sockets::SourceKind::SockDiag;
        for f in (0..2).filter(|&f| read[f]) {
            let exact = diag && !self.scanner.unsupported().any(|p| family(p) == Some(f));
            let tracked_charged = self
                .suspects
                .iter()
                .zip(tracked)
                .filter(|(s, t)| *t && family(s.socket.proto) == Some(f))
                .map(|(s, _)| s.socket.charged)
                .fold(0u64, u64::saturating_add);
            self.baseline[f] = Baseline {
                unexplained: policy::unexplained_bytes(mem[f], self.page_size, all_charged[f]),
                untracked: all_charged[f].saturating_sub(tracked_charged),
                exact,
            };
        }
        // A table the kernel lacks (udplite without CONFIG_IP_UDPLITE) is normal; a garbled
        // or unreadable one is logged (read_error rate-limits) and the poll goes on.
        let bad = Proto::ALL
            .into_iter()
            .find_map(|p| match per_table[p.index()].first_error {
                None | Some(crate::observe::proc::ProcError::Io(libc::ENOENT)) => None,
                Some(e) => Some((p, e)),
            });
        // Source fallbacks and namespaces we cannot enter: each is noted once by the scanner.
        for n in self.scanner.take_notes() {
            let mut l = AuditLine::new("error");
            let mut msg = heapless::String::<160>::new();
            let _ = write!(msg, "{n}");
            l.kv("reason", msg.as_bytes());
            self.emit(Severity::Warning, l);
        }
        self.stats.sockets_seen = seen;
        self.stats.tables_read = tables;
        if let Some((proto, e)) = bad {
            let mut what = heapless::String::<16>::new();
            sys::push_lossy(&mut what, proto.file());
            self.read_error(&what, e);
        }
    }

    /// True on the polls that read every table whatever sockstat says (the safety net): the
    /// first, then FULL_SCAN_EVERY polls after the last or later (`policy::full_scan_spacing`).
    fn full_scan_due(&self) -> bool {
        self.cycles >= self.next_full_scan
    }

    /// Which suspects tracking follows between reads: those whose owners are sought
    /// (`policy::owner_worthy`), by position in `self.suspects`.
    fn tracked(&self) -> [bool; policy::MAX_SUSPECTS] {
        let mut t = [false; policy::MAX_SUSPECTS];
        for (i, s) in self.suspects.iter().enumerate() {
            t[i] = policy::owner_worthy(&self.cfg, i, s.socket.rx_queue);
        }
        t
    }

    /// Suspect tracking's re-check: each tracked tcp/udp suspect is read again through one of
    /// its remembered owners' fds (`executors::peek`), its queue, charge and drops updated in place.
    /// Returns per family (tcp, udp) what its tracked suspects charge now; None where one could
    /// not be re-checked (no owner known yet, owner gone, kernel < 5.6, not the live /proc):
    /// that family is read again.
    fn recheck_suspects(&mut self, tracked: &[bool; policy::MAX_SUSPECTS]) -> [Option<u64>; 2] {
        let mut sum = [Some(0u64); 2];
        let live = self.root.is_live();
        for (s, &t) in self.suspects.iter_mut().zip(tracked) {
            let Some(f) = family(s.socket.proto) else {
                continue;
            };
            if !t || sum[f].is_none() {
                continue;
            }
            let peeked = if live {
                self.owners
                    .of(&self.root, s.socket.inode)
                    .next()
                    .and_then(|o| {
                        executors::peek(&Target {
                            pid: o.pid,
                            fd: o.fd,
                            inode: o.inode,
                            comm: o.comm,
                        })
                        .ok()
                    })
            } else {
                None
            };
            sum[f] = match (sum[f], peeked) {
                (Some(c), Some(p)) => {
                    s.socket.rx_queue = p.rx_queue;
                    s.socket.charged = p.charged;
                    s.socket.drops = p.drops;
                    Some(c.saturating_add(p.charged))
                }
                _ => None,
            };
        }
        sum
    }

    /// Resolves owners (and their exe) of the current suspects through the owner cache: a
    /// remembered owner costs one readlink per poll; a walk runs under a budget (owner_track).
    fn resolve_owners(&mut self) {
        // Owners are sought for the sockets that can matter: the largest, and every one within
        // reach of the warn level. Small queues come and go; walking for them would never end.
        let mut inodes: heapless::Vec<u64, { policy::MAX_SUSPECTS }> = heapless::Vec::new();
        for (i, s) in self.suspects.iter().enumerate() {
            if policy::owner_worthy(&self.cfg, i, s.socket.rx_queue) {
                let _ = inodes.push(s.socket.inode);
            }
        }
        // Remembered owners re-validated by one readlink each; the fd walk only when one is
        // missing or moved (or periodically), under a per-poll time budget (owner_track).
        self.owners
            .update(&self.root, &inodes, self.cycles, self.owner_walk_budget_us);
        for s in self.suspects.iter_mut() {
            s.owners.clear();
            for o in self.owners.of(&self.root, s.socket.inode) {
                let mut exe = heapless::String::<128>::new();
                if let Ok(p) = pid::read_exe(&self.root, o.pid, &mut self.buf) {
                    sys::push_lossy(&mut exe, p);
                }
                // Who it is beyond its name: the file it runs and the account it runs as.
                let owner = SuspectOwner {
                    owner: *o,
                    exe,
                    exe_id: identity::exe_id(&self.root, o.pid),
                    uid: identity::uid_of(&self.root, o.pid, &mut self.buf),
                };
                if s.owners.push(owner).is_err() {
                    break;
                }
            }
        }
        // The rules' exe paths as root sees them now (a binary upgraded since the last walk
        // is a new inode).
        for (slot, r) in self.rule_exe.iter_mut().zip(self.cfg.rules.iter()) {
            *slot = r.exe.as_deref().and_then(identity::path_id);
        }
    }

    /// The suspects of the last poll, worst first (for tests and benches).
    pub fn suspects(&self) -> &[Suspect] {
        &self.suspects
    }

    /// True while an owner walk is split over several slices (see `owner_track`).
    pub fn owner_walk_pending(&self) -> bool {
        self.owners.walking()
    }

    /// Walks owners for one budget's worth; decisions wait for the next poll.
    pub fn owner_walk_slice(&mut self) {
        self.owners
            .resume_walk(&self.root, self.cycles, self.owner_walk_budget_us);
    }

    /// One poll: measure, decide, act, audit, write status. Allocates nothing unless a
    /// decision is carried out.
    pub fn poll(&mut self, now_ms: u64) {
        let t0_us = sys::monotonic_us();
        self.reap_children(now_ms, false);
        self.cycles += 1;
        self.stats.cycles = self.cycles;
        self.firmware.healthy = false;
        self.protect_poll();

        let Some(mi) = self.read_meminfo() else {
            self.write_outputs();
            return;
        };
        let vm = self.vmallocinfo_kb(&mi);
        let g = match ghost::compute(&mi, vm) {
            Ok(mut g) => {
                // Free pages parked on the per-CPU lists are not Ghost (proc::zoneinfo).
                if let Some(kb) = self.pcp_free_kb() {
                    g.add_pcp_free(kb);
                }
                g
            }
            Err(what) => {
                // Unknown, not a guess: no Ghost rule runs on it and the files say null.
                self.read_error("meminfo", what);
                self.stats.ghost_unknown = true;
                self.write_outputs();
                return;
            }
        };
        self.stats.ghost_unknown = false;
        let available_kb = mi.get(Field::MemAvailable);
        self.stats.ghost_kb = g.ghost_kb;
        self.stats.mem_total_kb = g.mem_total_kb;
        self.stats.available_kb = available_kb;

        // An owner walk split over polls (owner_track) goes on first: until it is complete
        // there is nothing new to decide about owners, so this poll only walks.
        if self.owners.walking() {
            self.owner_walk_slice();
            if self.owners.walking() {
                self.stats.last_cycle_us = sys::monotonic_us().saturating_sub(t0_us);
                self.write_outputs();
                self.firmware.healthy = true;
                return;
            }
        }

        // Cheap screen first; a full table read once trouble shows or as a periodic safety net.
        let trouble = self
            .policy
            .wants_owners(&self.cfg, g.ghost_kb, 0, available_kb);
        let full = trouble || self.full_scan_due();
        self.read_sockets(full);
        let max_rx = self.suspects.first().map_or(0, |s| s.socket.rx_queue);
        self.stats.worst = self.suspects.first().map(|s| s.socket);

        if self
            .policy
            .wants_owners(&self.cfg, g.ghost_kb, max_rx, available_kb)
        {
            self.resolve_owners();
            // An owner walk spanning polls (owner_track's budget) while a suspect has no known
            // owner: decide once the walk is complete, not on owner-less suspects (that would
            // audit a false "no matching owner"). The poll still ends healthy (watchdog, status).
            let unowned = |(i, s): (usize, &Suspect)| {
                policy::owner_worthy(&self.cfg, i, s.socket.rx_queue) && s.owners.is_empty()
            };
            if self.owners.walking() && self.suspects.iter().enumerate().any(unowned) {
                self.stats.last_cycle_us = sys::monotonic_us().saturating_sub(t0_us);
                self.write_outputs();
                self.firmware.healthy = true;
                return;
            }
        }

        let snap = Snapshot {
            now_ms,
            ghost_kb: g.ghost_kb,
            available_kb,
            suspects: core::mem::take(&mut self.suspects),
            rule_exe: self.rule_exe,
        };
        let mut decisions = core::mem::take(&mut self.decisions);
        self.policy.evaluate(&self.cfg, &snap, &mut decisions);
        // The status file shows the policy's own incident state: one source of truth.
        for t in Trigger::ALL {
            self.stats.incidents[t.index()] = IncidentLevel::from(self.policy.level(t));
        }
        self.stats.actions_last_hour = self.policy.actions_in_last_hour(now_ms) as u64;
        for d in decisions.iter() {
            self.carry_out(d, &snap);
            if stopping() {
                break;
            }
        }
        self.decisions = decisions;
        self.suspects = snap.suspects;
        self.stats.last_cycle_us = sys::monotonic_us().saturating_sub(t0_us);
        self.write_outputs();
        self.firmware.healthy = true;
    }

    /// Audits one decision and, for Act, runs the action.
    fn carry_out(&mut self, d: &Decision, snap: &Snapshot) {
        match *d {
            Decision::Threshold {
                trigger,
                level,
                value,
            } => {
                let mut l = AuditLine::new("threshold");
                l.kv("trigger", trigger.name().as_bytes())
                    .kv("level", level.name().as_bytes())
                    .kvd("value", value);
                measurement_pairs(
                    &mut l,
                    snap,
                    trigger,
                    snap.suspects.first().map(|_| 0),
                    None,
                );
                self.emit(
                    if level == Level::Act {
                        Severity::Warning
                    } else {
                        Severity::Notice
                    },
                    l,
                );
            }
            Decision::Recovered {
                trigger,
                value,
                held_ms,
            } => {
                let mut l = AuditLine::new("recovered");
                l.kv("trigger", trigger.name().as_bytes())
                    .kvd("value", value)
                    .kvd("held_ms", held_ms);
                measurement_pairs(&mut l, snap, trigger, None, None);
                self.emit(Severity::Notice, l);
            }
            Decision::Skip {
                rule,
                trigger,
                reason,
            } => {
                self.stats.actions[ResultKind::Skipped.index()] += 1;
                let Some(r) = self.cfg.rules.get(rule) else {
                    return;
                };
                let mut l = AuditLine::new("action");
                l.kv("rule", r.name.as_bytes())
                    .kv("action", r.action.name().as_bytes())
                    .kv("trigger", trigger.name().as_bytes());
                measurement_pairs(&mut l, snap, trigger, None, None);
                l.kv("result", ResultKind::Skipped.name().as_bytes())
                    .kv("reason", reason.text().as_bytes());
                self.emit(Severity::Warning, l);
            }
            Decision::Act {
                rule,
                trigger,
                suspect,
                owner,
                dry_run,
            } => {
                let Some(r) = self.cfg.rules.get(rule).cloned() else {
                    return;
                };
                let target = suspect.and_then(|si| {
                    let s = snap.suspects.get(si)?;
                    let o = s.owners.get(owner?)?;
                    Some(Target {
                        pid: o.owner.pid,
                        fd: o.owner.fd,
                        inode: s.socket.inode,
                        comm: o.owner.comm,
                    })
                });
                let mut l = AuditLine::new("action");
                l.kv("rule", r.name.as_bytes())
                    .kv("action", r.action.name().as_bytes())
                    .kv("trigger", trigger.name().as_bytes());
                measurement_pairs(&mut l, snap, trigger, suspect, owner);
                let outcome = if dry_run {
                    Outcome::new(ResultKind::DryRun)
                } else if !self.root.is_live() && touches_live_system(r.action) {
                    let mut o = Outcome::new(ResultKind::DryRun);
                    o.set_reason(format_args!("{FAKE_ROOT_NOTE}"));
                    o
                } else {
                    match self.execute(&r, target.as_ref(), snap, trigger) {
                        Carried::Done(o) => o,
                        Carried::Started(run) => {
                            // Audited when it ends (reap_children), with its duration.
                            let job = Job {
                                run,
                                rule: r.name.clone(),
                                line: l,
                            };
                            if let Err(job) = self.children.push(job) {
                                // execute checked for room; never lose the line anyway.
                                let mut o = Outcome::new(ResultKind::Skipped);
                                o.set_reason(format_args!("too many commands running"));
                                self.finish_action(job.line, &o);
                            }
                            return;
                        }
                    }
                };
                self.finish_action(l, &outcome);
            }
        }
    }

    /// Counts an action's outcome and emits its audit line (`l` holds the pairs up to the
    /// result: event, rule, action, trigger, measurements).
    fn finish_action(&mut self, mut l: AuditLine, outcome: &Outcome) {
        self.stats.actions[outcome.result.index()] += 1;
        // An action that ran changed the sockets it aimed at, yet sockstat's `mem` need not
        // move (a drained UDP socket keeps its forward allocation): forget the baseline so the
        // next poll re-reads the tables and sees the recovery instead of a stale suspect.
        if matches!(outcome.result, ResultKind::Ok | ResultKind::Failed) {
            self.baseline = [Baseline::default(); 2];
        }
        outcome.audit_pairs(&mut l);
        let sev = if outcome.result == ResultKind::Failed {
            Severity::Err
        } else {
            Severity::Warning
        };
        self.emit(sev, l);
    }

    /// Polls the running commands without blocking; audits each that ended (or, with
    /// `shutting_down`, starts stopping them). Allocates nothing while none ends.
    pub fn reap_children(&mut self, now_ms: u64, shutting_down: bool) {
        if self.children.is_empty() {
            return;
        }
        let mut kids = core::mem::take(&mut self.children);
        kids.reap(now_ms, shutting_down, &mut |job, o| {
            self.finish_action(job.line, &o)
        });
        self.children = kids;
    }

    /// Before exit: with `stop`, every running command's group gets SIGTERM (SIGKILL after
    /// the grace) and is audited "stopped: agent shutting down"; without (`--once`), they are
    /// waited for up to their timeouts (a signal still stops them).
    pub fn finish_children(&mut self, stop: bool) {
        while !self.children.is_empty() {
            self.reap_children(sys::monotonic_ms(), stop || stopping());
            if !self.children.is_empty() {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
    }

    /// Runs rule `r` for real: done at once, or a command started (see `children`).
    fn execute(
        &mut self,
        r: &config::Rule,
        target: Option<&Target>,
        snap: &Snapshot,
        trigger: Trigger,
    ) -> Carried {
        let no_owner = "no owner process known for the suspect socket";
        // Policy decides Act for an owner-targeting rule only with a matching owner (else it
        // skips: NoMatchingOwner); an Act without one is a broken invariant, failed, not run.
        let o = match (r.action, target) {
            (ActionKind::Log, _) => Outcome::new(ResultKind::Ok),
            (ActionKind::Exec, t) | (ActionKind::Restart, t @ Some(_)) => {
                return self.start_command(r, t);
            }
            (ActionKind::Sysctl, _) => match (&r.sysctl, &r.value) {
                (Some(k), Some(v)) => executors::sysctl(&self.root, k, v),
                _ => failed("sysctl rule without sysctl/value"),
            },
            (ActionKind::Clamp, Some(t)) => {
                executors::clamp(t, r.rcvbuf.unwrap_or(config::defaults::CLAMP_RCVBUF))
            }
            (ActionKind::Drain, Some(t)) => executors::drain(
                t,
                self.cfg.drain_max_packets,
                config::defaults::DRAIN_MAX_MS,
            ),
            (ActionKind::Kill, Some(t)) => executors::kill(&self.root, t, r.signal),
            (ActionKind::Reboot, _) => self.reboot(r, snap, trigger),
            (
                ActionKind::Restart | ActionKind::Clamp | ActionKind::Drain | ActionKind::Kill,
                None,
            ) => failed(no_owner),
        };
        Carried::Done(o)
    }

    /// Starts rule `r`'s command unless one of it still runs or the table is full (skipped).
    fn start_command(&mut self, r: &config::Rule, target: Option<&Target>) -> Carried {
        let why = if self.children.runs(&r.name) {
            "previous run of this rule still going"
        } else if self.children.is_full() {
            "too many commands running"
        } else {
            match Running::spawn(&r.argv, target, r.timeout_s as u64 * 1000) {
                Ok(run) => return Carried::Started(run),
                Err(o) => return Carried::Done(o),
            }
        };
        let mut o = Outcome::new(ResultKind::Skipped);
        o.set_reason(format_args!("{why}"));
        Carried::Done(o)
    }
}

/// What `execute` did: finished, or started a command that runs on. (Plain values, no Box:
/// nothing here may allocate in the loop.)
#[allow(clippy::large_enum_variant)]
enum Carried {
    Done(Outcome),
    Started(Running),
}

fn failed(reason: &str) -> Outcome {
    Outcome::failed(format_args!("{reason}"))
}

/// The measurement pairs every audit line carries: the suspect socket (when there is one),
/// its owner, ghost_kb and available_kb.
fn measurement_pairs(
    l: &mut AuditLine,
    snap: &Snapshot,
    trigger: Trigger,
    suspect: Option<usize>,
    owner: Option<usize>,
) {
    let s = suspect
        .and_then(|i| snap.suspects.get(i))
        .or(if trigger == Trigger::Backlog {
            snap.suspects.first()
        } else {
            None
        });
    if let Some(s) = s {
        l.kv("proto", s.socket.proto.name().as_bytes())
            .kvd("inode", s.socket.inode);
        let o = owner.and_then(|i| s.owners.get(i)).or(s.owners.first());
        if let Some(o) = o {
            l.kvd("pid", o.owner.pid)
                .kv("comm", o.owner.comm.as_bytes());
        }
        l.kvd("rx_queue", s.socket.rx_queue);
    }
    l.kvd("ghost_kb", snap.ghost_kb);
    if let Some(a) = snap.available_kb {
        l.kvd("available_kb", a);
    }
}
