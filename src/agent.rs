//! `ghostwatch run`: the agent. Each poll goes through four stages, each a module of its own
//! with its own state: observe (read the box into a `Snapshot`), decide (policy), act (carry out
//! the decisions, commands in flight), record (audit lines, status and metrics files); `firmware`
//! keeps the box's own duties (protect, watchdog, reboot). This file is the loop and the wiring.
//!
//! Invariant: a poll with no decision to carry out allocates nothing (tests/agent_noalloc.rs).
//! Everything the loop needs lives in the stages, built once before the loop.

use crate::act::children::Children;
use crate::config::Config;
use crate::decide::policy::Suspect;
use crate::observe::proc::ProcRoot;
use crate::output::audit::{AuditLine, ResultKind};
use crate::output::sink::{self, Severity};
use crate::output::status::Stats;
use crate::sys;

mod act;
mod decide;
mod firmware;
mod observe;
mod owner_track;
mod record;
mod run_loop;
mod signals;
mod source;
mod verify;

pub use run_loop::{Options, run};
pub use signals::stopping;
use source::refuse_config;
pub use source::{ConfigSource, DEFAULT_CONFIG_PATH, choose_config, load_config, load_config_into};

/// The agent: the config, the proc root, and the four stages' state.
pub struct Agent {
    pub cfg: Config,
    pub root: ProcRoot,
    observe: observe::Observer,
    decide: decide::Decider,
    act: act::Actor,
    record: record::Recorder,
    verify: verify::Verifier,
    firmware: firmware::Firmware,
}

impl Agent {
    /// Builds the agent; Err if the proc root has no readable meminfo (nothing to watch).
    #[inline(never)] // its temporaries stay out of `run`'s frame (see `run`)
    pub fn new(cfg: Config, root: ProcRoot) -> Result<Agent, String> {
        Ok(Agent {
            observe: observe::Observer::new(&root)?,
            firmware: firmware::Firmware::new(&root, &cfg),
            decide: decide::Decider::default(),
            act: act::Actor::default(),
            record: record::Recorder::default(),
            verify: verify::Verifier::default(),
            cfg,
            root,
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
        self.cfg.dry_run |= dry_run;
        if let Err(e) = sink::configure(&self.cfg) {
            sys::Out::STDERR.print(format_args!(
                "ghostwatch: syslog unavailable ({e}); audit lines go to stderr until it is back\n"
            ));
        }
        signals::install_signal_handlers();
        self.firmware = firmware::Firmware::new(&self.root, &self.cfg);
        Ok(())
    }

    /// Re-reads the config after SIGHUP; a bad one is logged and the old one stays.
    #[inline(never)] // the new Config (~28 KiB) stays out of `run`'s frame (see `run`)
    pub fn reload(&mut self, source: &ConfigSource, force_dry_run: bool) {
        // One Config filled in place (not a Result and a copy of it); the running config
        // stays untouched until the new one is valid.
        let mut c = Config::default();
        if let Err(e) = load_config_into(source, &mut c) {
            let mut l = AuditLine::new("error");
            l.kv(
                "reason",
                b"config reload failed, keeping the running config",
            )
            .kv("error", e.as_bytes());
            return self.record.emit(Severity::Err, l);
        }
        c.dry_run |= force_dry_run;
        self.decide.reconfigured(&c);
        if let Err(e) = sink::reconfigure(&self.cfg, &c) {
            sys::Out::STDERR.print(format_args!(
                "ghostwatch: syslog unavailable after reload ({e})\n"
            ));
        }
        let old_watchdog = self.cfg.watchdog_device.take();
        self.cfg = c;
        self.firmware.reconfigure(
            &self.cfg,
            &self.root,
            old_watchdog.as_ref(),
            &mut self.record,
        );
        let mut l = AuditLine::new("reload");
        l.kv("config", source.describe().as_bytes())
            .kvd("rules", self.cfg.rules.len())
            .kv("result", ResultKind::Ok.name().as_bytes());
        self.record.emit(Severity::Notice, l);
    }

    /// One poll: observe, decide, act, record. Allocates nothing unless a decision is carried
    /// out. Each early end still records (status files) and ends healthy where the box was read.
    pub fn poll(&mut self, now_ms: u64) {
        let t0_us = sys::monotonic_us();
        self.reap_children(now_ms, false);
        let cycle = self.observe.begin_poll();
        self.firmware.set_healthy(false);
        self.firmware.protect_poll(&self.root, &mut self.record);
        let healthy = self.poll_stages(now_ms);
        let cycle_us = healthy.then(|| sys::monotonic_us().saturating_sub(t0_us));
        let (seen, walk) = (*self.observe.seen(), self.observe.walk_figures());
        self.record
            .end_poll(&self.cfg, cycle, &seen, walk, cycle_us);
        self.firmware.set_healthy(healthy);
    }

    /// The stages of one poll; false when the box could not be read (no meminfo or Ghost).
    fn poll_stages(&mut self, now_ms: u64) -> bool {
        let (cfg, root) = (&self.cfg, &self.root);
        let Some(m) = self.observe.measure(root, &mut self.record) else {
            return false;
        };
        // An owner walk split over polls goes on first: until it is complete there is nothing
        // new to decide about owners, so this poll only walks.
        if self.observe.owner_walk_pending() {
            self.observe.owner_walk_slice(root);
            if self.observe.owner_walk_pending() {
                return true;
            }
        }
        // Cheap screen first; a full table read once trouble shows or as the safety net.
        let (ghost_kb, avail) = (m.ghost.ghost_kb, m.available_kb);
        let full = self.decide.policy().wants_owners(cfg, ghost_kb, 0, avail)
            || self.observe.full_scan_due();
        self.observe.read_sockets(cfg, root, full, &mut self.record);
        self.observe.correlate(now_ms, &m);
        let max_rx = self.observe.worst_held();
        if self
            .decide
            .policy()
            .wants_owners(cfg, ghost_kb, max_rx, avail)
            && !self.observe.owners_known(cfg, root)
        {
            return true; // decide once the walk has found the owners
        }
        let snap = self.observe.snapshot(now_ms, &m);
        if self.verify.busy() {
            let (obs, rec) = (&self.observe, &mut self.record);
            self.verify
                .step(cfg, root, &snap, obs, rec, &mut self.decide);
        }
        self.decide.decide(cfg, &snap);
        self.record.decided(self.decide.policy(), now_ms, &m.ghost);
        let ghost = &m.ghost;
        let scene = act::Scene {
            cfg,
            root,
            snap: &snap,
            ghost,
        };
        let mut ran = false;
        for d in self.decide.decisions() {
            if !self.record.decision(cfg, d, &snap, ghost) {
                ran |= self
                    .act
                    .carry_out(d, &scene, &mut self.firmware, &mut self.record);
            }
            if stopping() {
                break;
            }
        }
        if ran {
            self.observe.forget_baselines();
        }
        self.observe.give_back(snap);
        self.learn_results();
        true
    }

    /// Hands the act stage's results to policy, and what worked to verification.
    fn learn_results(&mut self) {
        while let Some(d) = self.act.take_done() {
            self.decide.learn(&self.cfg, d.rule, d.acted_ms, d.learned);
            self.verify.start(&self.cfg, &d);
        }
    }

    /// Polls the running commands without blocking; audits each that ended (or, with
    /// `shutting_down`, starts stopping them). Allocates nothing while none ends.
    pub fn reap_children(&mut self, now_ms: u64, shutting_down: bool) {
        if self.act.reap(now_ms, shutting_down, &mut self.record) {
            self.observe.forget_baselines();
        }
        self.learn_results();
    }

    /// Before exit: with `stop`, every running command's group gets SIGTERM (SIGKILL after
    /// the grace) and is audited "stopped: agent shutting down"; without (`--once`), they are
    /// waited for up to their timeouts (a signal still stops them).
    pub fn finish_children(&mut self, stop: bool) {
        while !self.act.children.is_empty() {
            self.reap_children(sys::monotonic_ms(), stop || stopping());
            if !self.act.children.is_empty() {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
    }

    /// The suspects of the last poll, worst first (for tests and benches).
    pub fn suspects(&self) -> &[Suspect] {
        self.observe.suspects()
    }

    /// True while an owner walk is split over several slices (see `owner_track`).
    pub fn owner_walk_pending(&self) -> bool {
        self.observe.owner_walk_pending()
    }

    /// Walks owners for one budget's worth; decisions wait for the next poll.
    pub fn owner_walk_slice(&mut self) {
        self.observe.owner_walk_slice(&self.root);
    }

    /// The counters the status and metrics files show.
    pub fn stats(&self) -> &Stats {
        self.record.stats()
    }

    /// Polls so far.
    pub fn cycles(&self) -> u64 {
        self.observe.cycles()
    }

    /// At start: the agent's own oom_score_adj and mlockall (`firmware`).
    pub fn protect_self(&mut self) {
        self.firmware.protect_self(&self.cfg, &mut self.record);
    }

    /// At start: takes `watchdog_device` when configured (`firmware`).
    pub fn open_watchdog(&mut self) {
        self.firmware.open_watchdog(&self.cfg, &mut self.record);
    }

    /// From the loop, right after a poll: one pet if that poll was healthy.
    pub fn pet_watchdog(&mut self) {
        self.firmware.pet_watchdog(&mut self.record);
    }

    /// At a clean stop: the magic close; what the stop line says of the watchdog.
    pub fn close_watchdog(&mut self) -> Option<&'static str> {
        self.firmware.close_watchdog()
    }

    /// The start line's pairs: what the kernel lacks (observe), then watchdog, protect list,
    /// last reboot (firmware).
    fn start_pairs(&mut self, l: &mut AuditLine) {
        self.observe.missing_pairs(l);
        self.firmware.start_pairs(&self.cfg, l);
    }

    /// Sends an audit line with the next sequence number.
    fn emit(&mut self, sev: Severity, l: AuditLine) {
        self.record.emit(sev, l);
    }

    /// `run --once`: one poll must finish any owner walk, whatever it costs.
    fn lift_walk_budget(&mut self) {
        self.observe.owner_walk_budget_us = u64::MAX;
    }

    /// The commands still running (tests hand it one to watch).
    pub fn children(&mut self) -> &mut Children {
        &mut self.act.children
    }
}
