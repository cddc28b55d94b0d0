//! `ghostwatch run` from start to stop: the command line's options, building and configuring the
//! agent, the loop (an absolute poll deadline; signals, commands and owner walks wake it early,
//! never postpone a poll), and the clean stop. Must not poll anything itself: `Agent::poll` does.

use super::source::{ConfigSource, choose_config, load_config, refuse_config};
use super::{Agent, act, signals, stopping};
use crate::act::children;
use crate::decide::schedule::Schedule;
use crate::observe::proc::ProcRoot;
use crate::output::audit::AuditLine;
use crate::output::sink::{self, Severity};
use crate::sys;

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
        agent.lift_walk_budget();
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
            l.kv("process_actions", act::FAKE_ROOT_NOTE.as_bytes());
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
        // Waiting audit lines and syslog reconnects, in the background of the loop: never
        // blocks, at most one connect attempt a second.
        sink::tick(now);
        if !reloaded_since_poll && signals::take_hup() {
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
        let wake = [agent.children().next_wake_ms(now), sink::next_wake_ms(now)]
            .into_iter()
            .flatten()
            .fold(sched.next_ms(), u64::min);
        signals::sleep_until_ms(wake);
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
    .kvd("cycles", agent.cycles());
    agent.emit(Severity::Info, l);
    0
}

/// `run` when the agent cannot be built (no readable meminfo): loads the config the plain way
/// (2 if invalid), opens its sink and audits why the agent cannot start (1).
#[inline(never)]
fn start_failed(opts: &Options, source: &ConfigSource) -> u8 {
    let cfg = match load_config(source) {
        Ok(c) => c,
        Err(e) => return refuse_config(&e),
    };
    if let Err(e) = sink::configure(&cfg) {
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
