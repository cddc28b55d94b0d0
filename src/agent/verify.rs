//! The verify step: after an action on a socket's owner worked, the polls that follow re-read
//! its target's queue (observe stage: a pidfd peek or the poll's table read) and hand the
//! figures to `decide::verify`; the verdict is audited (record stage: `event=verified` or
//! `event=ineffective`) and an ineffective action is fed back to policy, so the next rung acts
//! at once. Must not act. Idle (no pending check) it does nothing and allocates nothing.

use super::act::{Aim, Done};
use super::decide::Decider;
use super::observe::Observer;
use super::record::{Recorder, VerifyAbout};
use crate::config::{self, Config, Name, Trigger};
use crate::decide::policy::{Learned, Snapshot};
use crate::decide::verify::{Reading, Verdict};
use crate::observe::proc::ProcRoot;

/// One action being verified.
struct Pending {
    rule: usize,
    rule_name: Name,
    trigger: Trigger,
    acted_ms: u64,
    aim: Aim,
}

/// The actions being verified: at most one per rule (a newer action of a rule replaces the
/// check of its older one).
#[derive(Default)]
pub struct Verifier {
    pending: heapless::Vec<Pending, { config::MAX_RULES }>,
}

impl Verifier {
    /// Starts verifying `d` when it worked on a socket's owner.
    pub fn start(&mut self, cfg: &Config, d: &Done) {
        let (Some(aim), Some(r)) = (d.aim, cfg.rules.get(d.rule)) else {
            return;
        };
        let p = Pending {
            rule: d.rule,
            rule_name: r.name.clone(),
            trigger: d.trigger,
            acted_ms: d.acted_ms,
            aim,
        };
        match self.pending.iter_mut().find(|q| q.rule_name == p.rule_name) {
            Some(q) => *q = p,
            None => {
                // One slot per rule; a full table (rules renamed by reloads) drops the oldest.
                if self.pending.is_full() {
                    self.pending.remove(0);
                }
                let _ = self.pending.push(p);
            }
        }
    }

    /// True while an action is being verified.
    pub fn busy(&self) -> bool {
        !self.pending.is_empty()
    }

    /// One poll's step: each pending check gets a reading; a verdict is audited and ends it.
    pub fn step(
        &mut self,
        cfg: &Config,
        root: &ProcRoot,
        snap: &Snapshot,
        observe: &Observer,
        rec: &mut Recorder,
        decide: &mut Decider,
    ) {
        let verify_ms = u64::from(cfg.verify_s) * 1000;
        let mut i = 0;
        while let Some(p) = self.pending.get_mut(i) {
            let queue = observe.queue_of(root, &p.aim.target, p.aim.proto, &snap.suspects);
            let reading = Reading {
                now_ms: snap.now_ms,
                queue,
                available_kb: snap.available_kb,
                ghost_kb: snap.ghost_kb,
            };
            let v = p.aim.check.step(&reading, verify_ms);
            if v == Verdict::Pending {
                i += 1;
                continue;
            }
            let about = VerifyAbout {
                rule: p.rule_name.as_bytes(),
                action: p.aim.action.name(),
                trigger: p.trigger,
                proto: p.aim.proto.name(),
                inode: p.aim.target.inode,
                pid: p.aim.target.pid,
                comm: p.aim.target.comm.as_bytes(),
                check: &p.aim.check,
            };
            rec.verdict(&about, &v);
            let learned = match v {
                Verdict::Ineffective { .. } => Learned::Ineffective,
                _ => Learned::Worked,
            };
            // The rule's index still names it (a reload that moved it drops the lesson).
            if cfg.rules.get(p.rule).is_some_and(|r| r.name == p.rule_name) {
                decide.learn(cfg, p.rule, p.acted_ms, learned);
            }
            self.pending.remove(i);
        }
    }
}
