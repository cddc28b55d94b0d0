//! The act stage: carries out `Decision::Act` — a dry run, an executor called at once, or a
//! command started and watched (`children`) — and hands every outcome to the recorder.
//! Must not decide whether to act (policy did) or wait for a command: the loop goes on.

use super::firmware::Firmware;
use super::record::{Recorder, measurement_pairs};
use crate::act::children::{Children, Job, MAX_RUNNING, Running};
use crate::act::executors::{self, Outcome, Target};
use crate::config::{self, ActionKind, Config, Name, Trigger};
use crate::decide::policy::{Decision, Learned, Snapshot};
use crate::decide::verify::Check;
use crate::observe::ghost::Ghost;
use crate::observe::proc::ProcRoot;
use crate::observe::proc::net::Proto;
use crate::output::audit::{AuditLine, ResultKind};

/// Why process actions are not carried out under `--proc-root` (start line and each action).
pub const FAKE_ROOT_NOTE: &str = "dry-run: --proc-root is for diagnosis";

/// True for actions that reach outside a `--proc-root` tree: they signal, ptrace
/// (pidfd_getfd), run commands or reboot. Log and sysctl (written inside the tree) are not.
fn touches_live_system(a: ActionKind) -> bool {
    !matches!(a, ActionKind::Log | ActionKind::Sysctl)
}

/// Most results one poll hands back (every rule acting, plus every command that ended).
const MAX_DONE: usize = config::MAX_RULES + MAX_RUNNING;

/// What an action on a socket's owner is verified against (`decide::verify`): the target, and
/// what the decision saw.
#[derive(Clone, Copy, Debug)]
pub struct Aim {
    pub target: Target,
    pub proto: Proto,
    pub action: ActionKind,
    pub check: Check,
}

/// An action's result for policy (`Policy::learn`) and, when it worked on a socket's owner,
/// what to verify.
#[derive(Clone, Copy, Debug)]
pub struct Done {
    pub rule: usize,
    pub trigger: Trigger,
    /// The snapshot clock of the decision (policy's key for it).
    pub acted_ms: u64,
    pub learned: Learned,
    pub aim: Option<Aim>,
}

/// A command started for a rule, with what its end is reported with.
struct Started {
    rule_name: Name,
    rule: usize,
    trigger: Trigger,
    acted_ms: u64,
    /// The aim, its check's clock still at the decision (reset when the command ends).
    aim: Option<Aim>,
    snapshot: AuditLine,
}

/// What the act stage keeps between polls: the commands still running, and the results not
/// yet handed back.
#[derive(Default)]
pub struct Actor {
    /// Commands (exec/restart) still running; polled at every wake-up of the loop.
    pub children: Children,
    started: heapless::Vec<Started, MAX_RUNNING>,
    done: heapless::Vec<Done, MAX_DONE>,
}

/// What a decision's carrying out needs to read: the config, the proc root, the snapshot and
/// the Ghost equation it was taken on.
pub struct Scene<'a> {
    pub cfg: &'a Config,
    pub root: &'a ProcRoot,
    pub snap: &'a Snapshot,
    pub ghost: &'a Ghost,
}

/// What policy learns from an outcome (None: nothing was tried: dry run, skipped).
fn learned(o: &Outcome) -> Option<Learned> {
    match o.result {
        ResultKind::Ok => Some(Learned::Worked),
        ResultKind::Failed if o.unsupported => Some(Learned::Unsupported),
        ResultKind::Failed => Some(Learned::Failed),
        ResultKind::DryRun | ResultKind::Skipped => None,
    }
}

impl Actor {
    /// Carries out one `Decision::Act` (other decisions are the recorder's): audits it with its
    /// outcome, or starts its command (audited when it ends). Returns true when an action ran
    /// that may have changed the sockets the observe stage tracks.
    pub fn carry_out(
        &mut self,
        d: &Decision,
        at: &Scene<'_>,
        fw: &mut Firmware,
        rec: &mut Recorder,
    ) -> bool {
        let Decision::Act {
            rule,
            trigger,
            suspect,
            owner,
            dry_run,
        } = *d
        else {
            return false;
        };
        let Some(r) = at.cfg.rules.get(rule).cloned() else {
            return false;
        };
        let snap = at.snap;
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
        // Actions on a socket's owner are verified: did its queue and memory come back?
        let aim = suspect
            .and_then(|si| snap.suspects.get(si))
            .zip(target)
            .filter(|(s, _)| r.action.targets_owner() && s.socket.rx_queue > 0)
            .map(|(s, target)| Aim {
                target,
                proto: s.socket.proto,
                action: r.action,
                check: Check::new(
                    snap.now_ms,
                    s.socket.rx_queue,
                    snap.available_kb,
                    snap.ghost_kb,
                ),
            });
        let snapshot = rec.snapshot_line(r.name.as_bytes(), trigger, snap, at.ghost);
        let mut l = AuditLine::new("action");
        l.kv("rule", r.name.as_bytes())
            .kv("action", r.action.name().as_bytes())
            .kv("trigger", trigger.name().as_bytes());
        measurement_pairs(&mut l, snap, trigger, suspect, owner, rec.eta());
        let outcome = if dry_run {
            Outcome::new(ResultKind::DryRun)
        } else if !at.root.is_live() && touches_live_system(r.action) {
            let mut o = Outcome::new(ResultKind::DryRun);
            o.set_reason(format_args!("{FAKE_ROOT_NOTE}"));
            o
        } else {
            match self.execute(&r, target.as_ref(), at, trigger, fw, rec) {
                Carried::Done(o) => o,
                Carried::Started(run) => {
                    // Audited when it ends (reap), with its duration.
                    let job = Job {
                        run,
                        rule: r.name.clone(),
                        line: l,
                    };
                    return match self.children.push(job) {
                        Ok(()) => {
                            // Room: `started` is as large as the children table.
                            let _ = self.started.push(Started {
                                rule_name: r.name.clone(),
                                rule,
                                trigger,
                                acted_ms: snap.now_ms,
                                aim,
                                snapshot,
                            });
                            false
                        }
                        Err(job) => {
                            // execute checked for room; never lose the line anyway.
                            let mut o = Outcome::new(ResultKind::Skipped);
                            o.set_reason(format_args!("too many commands running"));
                            rec.action_done(job.line, &o, Some(&snapshot))
                        }
                    };
                }
            }
        };
        finished(
            &mut self.done,
            rule,
            trigger,
            snap.now_ms,
            snap.now_ms,
            &outcome,
            aim,
        );
        rec.action_done(l, &outcome, Some(&snapshot))
    }

    /// The oldest result not yet taken, for policy and verification (in the order the actions
    /// ended: a later action on the same socket supersedes an earlier one's check).
    pub fn take_done(&mut self) -> Option<Done> {
        (!self.done.is_empty()).then(|| self.done.remove(0))
    }

    /// Polls the running commands without blocking; audits each that ended (or, with
    /// `shutting_down`, starts stopping them). Allocates nothing while none ends. Returns true
    /// when one that ended ran (see `carry_out`).
    pub fn reap(&mut self, now_ms: u64, shutting_down: bool, rec: &mut Recorder) -> bool {
        let mut ran = false;
        if !self.children.is_empty() {
            let (started, done) = (&mut self.started, &mut self.done);
            self.children.reap(now_ms, shutting_down, &mut |job, o| {
                let at = started.iter().position(|s| s.rule_name == job.rule);
                let s = at.map(|i| started.swap_remove(i));
                ran |= rec.action_done(job.line, &o, s.as_ref().map(|s| &s.snapshot));
                if let Some(s) = s {
                    finished(done, s.rule, s.trigger, s.acted_ms, now_ms, &o, s.aim);
                }
            });
        }
        ran
    }

    /// Runs rule `r` for real: done at once, or a command started (see `children`).
    fn execute(
        &mut self,
        r: &config::Rule,
        target: Option<&Target>,
        at: &Scene<'_>,
        trigger: Trigger,
        fw: &mut Firmware,
        rec: &mut Recorder,
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
                (Some(k), Some(v)) => executors::sysctl(at.root, k, v),
                _ => failed("sysctl rule without sysctl/value"),
            },
            (ActionKind::Clamp, Some(t)) => {
                executors::clamp(t, r.rcvbuf.unwrap_or(config::defaults::CLAMP_RCVBUF))
            }
            (ActionKind::Drain, Some(t)) => {
                executors::drain(t, at.cfg.drain_max_packets, config::defaults::DRAIN_MAX_MS)
            }
            (ActionKind::Kill, Some(t)) => executors::kill(at.root, t, r.signal),
            (ActionKind::Reboot, _) => fw.reboot(at.cfg, r, at.snap, trigger, rec),
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

/// Keeps an action's result for `Actor::take_done`; `done_ms` is when it ended (verification's
/// clock starts there).
fn finished(
    done: &mut heapless::Vec<Done, MAX_DONE>,
    rule: usize,
    trigger: Trigger,
    acted_ms: u64,
    done_ms: u64,
    o: &Outcome,
    aim: Option<Aim>,
) {
    let Some(learned) = learned(o) else {
        return;
    };
    // Only what worked is verified; the check's clock starts when the action ended.
    let aim = aim.filter(|_| learned == Learned::Worked).map(|mut a| {
        a.check.since_ms = done_ms;
        a
    });
    let _ = done.push(Done {
        rule,
        trigger,
        acted_ms,
        learned,
        aim,
    });
}

fn failed(reason: &str) -> Outcome {
    Outcome::failed(format_args!("{reason}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::observe::observed_seed;

    /// What policy learns from each outcome: an unsupported failure is told apart, and what
    /// was not tried (dry run, skipped) teaches nothing.
    #[test]
    fn outcomes_become_lessons() {
        let unsupported = Outcome::unsupported(format_args!("pidfd_getfd needs Linux >= 5.6"));
        let cases = [
            (Outcome::new(ResultKind::Ok), Some(Learned::Worked)),
            (failed("process 9 is gone"), Some(Learned::Failed)),
            (unsupported, Some(Learned::Unsupported)),
            (Outcome::new(ResultKind::DryRun), None),
            (Outcome::new(ResultKind::Skipped), None),
        ];
        for (o, want) in cases {
            assert_eq!(learned(&o), want, "{o:?}");
        }
    }

    /// The stage alone: a dry-run Act on the seed box is audited and counted as dry-run, and a
    /// process action under a fixture tree is never carried out for real.
    #[test]
    fn dry_run_and_fixture_trees_never_touch_the_box() {
        let cfg = config::parse(
            br#"{"syslog": "stderr", "rules": [{"name": "r", "trigger": "ghost", "comm": "zebra", "action": "kill"}]}"#,
        )
        .unwrap();
        let (root, mut o, mut rec, m) = observed_seed(&cfg);
        let snap = o.snapshot(1_000, &m);
        let (mut actor, mut fw) = (Actor::default(), Firmware::default());
        let at = Scene {
            cfg: &cfg,
            root: &root,
            snap: &snap,
            ghost: &m.ghost,
        };
        for dry_run in [true, false] {
            let d = Decision::Act {
                rule: 0,
                trigger: Trigger::Ghost,
                suspect: Some(0),
                owner: Some(0),
                dry_run,
            };
            assert!(!actor.carry_out(&d, &at, &mut fw, &mut rec), "nothing ran");
        }
        assert_eq!(rec.stats().actions[ResultKind::DryRun.index()], 2);
        assert_eq!(rec.stats().actions[ResultKind::Ok.index()], 0);
        assert!(actor.children.is_empty());
        // Decisions that are not actions are the recorder's.
        let t = Decision::Recovered {
            trigger: Trigger::Ghost,
            value: 0,
            held_ms: 5,
        };
        assert!(!actor.carry_out(&t, &at, &mut fw, &mut rec));
    }
}
