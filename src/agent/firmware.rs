//! The agent's firmware duties, beside the poll: keeping itself and the `protect` list out of
//! the OOM killer's reach, owning the watchdog when configured, and the reboot sequence.
//! The mechanisms live in `act::{protect, watchdog, lastresort}`; this file wires them to the
//! agent's config and audit lines. Must not pet the watchdog from anywhere but the loop.

use super::record::{Recorder, measurement_pairs};
use crate::act::executors::{self, Outcome};
use crate::act::lastresort;
use crate::act::protect::{self, ProtectEvent, Protector};
use crate::act::watchdog::{self, OpenError, Watchdog};
use crate::config::{self, Config, Trigger};
use crate::decide::policy::Snapshot;
use crate::observe::proc::ProcRoot;
use crate::output::audit::AuditLine;
use crate::output::audit::ResultKind;
use crate::output::sink::Severity;
use crate::sys::{self, Fd};
use core::fmt::Write as _;

/// What the firmware side of the agent keeps between polls.
#[derive(Default)]
pub struct Firmware {
    protector: Protector,
    watchdog: Option<Watchdog>,
    /// The last poll completed (meminfo read, Ghost computed, decisions carried out).
    healthy: bool,
    /// A pet failed and was audited; the next failure is not (until a pet succeeds).
    pet_failed: bool,
}

impl Firmware {
    /// Loads the `protect` list; the watchdog is opened later (`Agent::open_watchdog`).
    pub(super) fn new(root: &ProcRoot, cfg: &config::Config) -> Firmware {
        let mut f = Firmware::default();
        f.protector.configure(root, &cfg.protect);
        f
    }

    /// Whether the poll that just ended was healthy (only a healthy one pets the watchdog).
    pub(super) fn set_healthy(&mut self, healthy: bool) {
        self.healthy = healthy;
    }

    /// At start: the agent's own oom_score_adj (`oom_score_adj`, -1000 by default) and
    /// mlockall; each audited, failures never fatal. (The `protect` list was loaded by
    /// `Agent::new`; the first poll sweeps /proc for it.)
    pub fn protect_self(&self, cfg: &Config, rec: &mut Recorder) {
        let me = std::process::id();
        let mut w = heapless::String::<12>::new();
        let _ = write!(w, "{}", cfg.oom_score_adj);
        // Always the real /proc: this is about the agent process, whatever --proc-root says.
        let res = sys::CPath::from_bytes(b"/proc/self/oom_score_adj")
            .and_then(|p| Fd::open(&p, libc::O_WRONLY))
            .and_then(|fd| fd.write_all(w.as_bytes()));
        let now = protect::read_adj(&crate::observe::proc::ProcRoot::live(), me);
        let mut l = AuditLine::new("protect");
        l.kvd("pid", me)
            .kv("comm", b"ghostwatch")
            .kv("target", b"self");
        if let Some(v) = now {
            l.kvd("oom_score_adj", v);
        }
        match res {
            Ok(()) => {
                l.kv("result", ResultKind::Ok.name().as_bytes());
                rec.emit(Severity::Info, l);
            }
            Err(e) => {
                l.kv("result", ResultKind::Failed.name().as_bytes())
                    .kv("reason", adj_failure(e).as_bytes())
                    .kv("error", sys::strerror(e).as_bytes());
                rec.emit(Severity::Warning, l);
            }
        }
        if cfg.mlock {
            // SAFETY: plain syscall.
            if unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) } != 0 {
                let e = sys::errno();
                let mut l = AuditLine::new("error");
                l.kv("reason", b"mlockall failed")
                    .kv("error", sys::strerror(e).as_bytes());
                rec.emit(Severity::Warning, l);
            }
        }
    }

    /// Called from the poll: protects new PIDs of the `protect` list (cheap when none
    /// appeared, see `protect`), one `event=protect` line per change or first failure.
    pub(super) fn protect_poll(&mut self, root: &ProcRoot, rec: &mut Recorder) {
        if self.protector.is_empty() {
            return;
        }
        self.protector.poll(root, &mut |ev| audit_protect(rec, &ev));
    }

    /// At start: takes `watchdog_device` when configured; a failure (EBUSY: the feeder holds
    /// it) is audited once, naming the holder when /proc shows it, and the agent runs on
    /// without it: the open is never retried (not at a reload either: a changed device waits
    /// for the next start), so a held device cannot become a line per poll.
    pub fn open_watchdog(&mut self, cfg: &Config, rec: &mut Recorder) {
        let Some(dev) = cfg.watchdog_device.clone() else {
            return;
        };
        match Watchdog::open(&dev, cfg.watchdog_timeout_s) {
            Ok(w) => {
                if let Err(e) = w.set_result {
                    let mut l = AuditLine::new("error");
                    l.kv(
                        "reason",
                        b"watchdog refused WDIOC_SETTIMEOUT; keeping its own timeout",
                    )
                    .kv("device", dev.as_bytes())
                    .kv("error", sys::strerror(e).as_bytes());
                    rec.emit(Severity::Warning, l);
                }
                self.watchdog = Some(w);
            }
            Err(e) => {
                let mut l = AuditLine::new("error");
                let mut why = heapless::String::<96>::new();
                let _ = write!(why, "cannot open the watchdog: {e}");
                l.kv("reason", why.as_bytes()).kv("device", dev.as_bytes());
                if e == OpenError::Open(libc::EBUSY) {
                    // Once, at start (it allocates): who holds it.
                    if let Some(h) = watchdog::holders(&dev)
                        .ok()
                        .and_then(|h| h.into_iter().next())
                    {
                        l.kvd("holder_pid", h.pid)
                            .kv("holder_comm", h.comm.as_bytes());
                    }
                }
                rec.emit(Severity::Err, l);
            }
        }
    }

    /// Pairs for the start line: the watchdog, the protect list, the last reboot.
    pub fn start_pairs(&self, cfg: &Config, l: &mut AuditLine) {
        if let Some(w) = &self.watchdog {
            l.kv(
                "watchdog",
                cfg.watchdog_device.as_deref().unwrap_or("").as_bytes(),
            );
            match w.timeout_s {
                Some(t) => l.kvd("watchdog_timeout_s", t),
                None => l,
            };
            if w.is_stand_in {
                l.kv("watchdog_kind", b"fifo-stand-in");
            }
        }
        if !cfg.protect.is_empty() {
            l.kvd("protect", cfg.protect.len());
        }
        let id = lastresort::boot_id();
        let mut buf = [0u8; lastresort::MAX_CRUMB];
        if let Some(c) = lastresort::take_breadcrumb(&cfg.breadcrumb_file, &id, &mut buf) {
            l.kv("last_reboot", c.text);
            if c.same_boot {
                l.kv("last_reboot_same_boot", b"1");
            }
        }
    }

    /// From the loop, right after a poll: one pet if that poll was healthy. Never from
    /// anywhere else, so a stuck loop stops the petting. Allocates nothing unless a failure
    /// is audited.
    pub fn pet_watchdog(&mut self, rec: &mut Recorder) {
        if !self.healthy {
            return;
        }
        let Some(w) = &self.watchdog else {
            return;
        };
        match w.pet() {
            Ok(_) => self.pet_failed = false,
            Err(e) if !self.pet_failed => {
                self.pet_failed = true;
                let mut l = AuditLine::new("error");
                l.kv("reason", b"watchdog write failed")
                    .kv("error", sys::strerror(e).as_bytes());
                rec.emit(Severity::Err, l);
            }
            Err(_) => {}
        }
    }

    /// At a clean stop: the magic close, so stopping the agent does not reset the box.
    /// Returns what the stop line says about the watchdog (None: there is none).
    pub fn close_watchdog(&mut self) -> Option<&'static str> {
        let w = self.watchdog.take()?;
        let petting = w.is_petting();
        Some(match w.close_clean() {
            Ok(()) if petting => "closed",
            Ok(()) => "left-running",
            Err(_) => "close-failed",
        })
    }

    /// After a reload: a new `protect` list is taken; a changed watchdog device needs a restart
    /// (the old one stays open and petted).
    pub(super) fn reconfigure(
        &mut self,
        cfg: &Config,
        root: &ProcRoot,
        old_device: Option<&config::Str>,
        rec: &mut Recorder,
    ) {
        self.protector.configure(root, &cfg.protect);
        if old_device != cfg.watchdog_device.as_ref() {
            let mut l = AuditLine::new("error");
            l.kv(
                "reason",
                b"watchdog_device changed: takes effect at the next start",
            );
            rec.emit(Severity::Warning, l);
        }
    }

    /// The last resort, in order: stop petting the watchdog, audit, breadcrumb (fsynced),
    /// sync, reboot(2) (see `lastresort`). Returns only if reboot(2) failed.
    pub(super) fn reboot(
        &mut self,
        cfg: &Config,
        r: &config::Rule,
        snap: &Snapshot,
        trigger: Trigger,
        rec: &mut Recorder,
    ) -> Outcome {
        let watchdog = match self.watchdog.as_mut() {
            Some(w) => {
                w.stop_petting();
                "stopped"
            }
            None => "none",
        };
        let mut l = AuditLine::new("reboot");
        l.kv("rule", r.name.as_bytes())
            .kv("trigger", trigger.name().as_bytes());
        let worst = (!snap.suspects.is_empty()).then_some(0);
        measurement_pairs(&mut l, snap, trigger, worst, None, rec.eta());
        l.kv("watchdog", watchdog.as_bytes());
        // The breadcrumb is the same line plus the boot it was written in.
        let mut crumb = AuditLine::new("reboot");
        crumb.raw_pairs(l.as_str().strip_prefix("event=reboot").unwrap_or(""));
        crumb.kv("boot_id", lastresort::boot_id().as_bytes());
        rec.emit(Severity::Err, l);
        let text: heapless::String<{ crate::output::audit::MAX_LINE }> =
            heapless::String::try_from(crumb.as_str()).unwrap_or_default();
        executors::reboot(&cfg.breadcrumb_file, &text)
    }
}

fn audit_protect(rec: &mut Recorder, ev: &ProtectEvent) {
    let mut l = AuditLine::new("protect");
    l.kvd("pid", ev.pid).kv("comm", ev.comm.as_bytes());
    if let Some(v) = ev.now_adj {
        l.kvd("oom_score_adj", v);
    }
    match ev.result {
        Ok(()) => {
            l.kv("result", ResultKind::Ok.name().as_bytes());
            rec.emit(Severity::Notice, l);
        }
        Err(e) => {
            l.kv("result", ResultKind::Failed.name().as_bytes())
                .kv("reason", ev.reason().unwrap_or("").as_bytes())
                .kv("error", sys::strerror(e).as_bytes());
            rec.emit(Severity::Warning, l);
        }
    }
}

/// Why writing oom_score_adj failed, in words.
fn adj_failure(e: sys::Errno) -> &'static str {
    match e {
        libc::EACCES | libc::EPERM => {
            "kernel refused: lowering oom_score_adj needs CAP_SYS_RESOURCE"
        }
        _ => "cannot set oom_score_adj",
    }
}
