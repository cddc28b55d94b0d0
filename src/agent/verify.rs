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

/// The actions being verified: at most one per rule and socket (a newer action of a rule, or
/// on the same socket, replaces the older one's check).
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
        // A newer action on the same socket (drain right after clamp) supersedes the older
        // check: what comes back can no longer be told apart, so only the newer is judged.
        let same =
            |q: &Pending| q.rule_name == p.rule_name || q.aim.target.inode == p.aim.target.inode;
        self.pending.retain(|q| !same(q));
        // One slot per rule; a full table (rules renamed by reloads) drops the oldest.
        if self.pending.is_full() {
            self.pending.remove(0);
        }
        let _ = self.pending.push(p);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::act::executors::Target;
    use crate::agent::observe::observed_seed;
    use crate::config::ActionKind;
    use crate::decide::policy::Decision;
    use crate::decide::verify::Check;

    /// The step on the seed tree (no live peek: the suspects' queues are the reading): a check
    /// that sees the queue stay is ineffective at verify_s, policy learns it and the next rung
    /// acts on that poll although its escalate_after_s is 60 s; one that sees it go is verified.
    #[test]
    fn an_ineffective_action_lets_the_next_rung_act_on_the_same_poll() {
        let cfg = crate::config::parse(
            br#"{"syslog": "stderr", "verify_s": 3, "rules": [
                {"name": "clamp", "trigger": "ghost", "comm": "zebra", "uid": 92, "action": "clamp", "rcvbuf": 65536},
                {"name": "drain", "trigger": "ghost", "comm": "zebra", "uid": 92, "action": "drain", "escalate_after_s": 60}]}"#,
        )
        .unwrap();
        let (root, mut o, mut rec, m) = observed_seed(&cfg);
        let snap_at = |o: &mut Observer, t| o.snapshot(t, &m);
        let mut decide = Decider::default();
        let snap = snap_at(&mut o, 1000);
        decide.decide(&cfg, &snap);
        let acts = |d: &Decider| -> Vec<usize> {
            d.decisions()
                .iter()
                .filter_map(|d| match d {
                    Decision::Act { rule, .. } => Some(*rule),
                    _ => None,
                })
                .collect()
        };
        assert_eq!(acts(&decide), vec![0], "clamp first; drain waits 60 s");
        // The clamp "worked" (the act stage's Done, as for a live box).
        let s = &snap.suspects[0];
        let done = Done {
            rule: 0,
            trigger: Trigger::Ghost,
            acted_ms: 1000,
            learned: Learned::Worked,
            aim: Some(Aim {
                target: Target {
                    pid: s.owners[0].owner.pid,
                    fd: s.owners[0].owner.fd,
                    inode: s.socket.inode,
                    comm: s.owners[0].owner.comm,
                },
                proto: s.socket.proto,
                action: ActionKind::Clamp,
                check: Check::new(1000, s.socket.rx_queue, snap.available_kb, snap.ghost_kb),
            }),
        };
        decide.learn(&cfg, 0, 1000, Learned::Worked);
        let mut v = Verifier::default();
        v.start(&cfg, &done);
        o.give_back(snap);
        for t in [2000, 3999] {
            let snap = snap_at(&mut o, t);
            v.step(&cfg, &root, &snap, &o, &mut rec, &mut decide);
            assert!(v.busy(), "t={t}: still within verify_s");
            decide.decide(&cfg, &snap);
            assert!(acts(&decide).is_empty(), "t={t}");
            o.give_back(snap);
        }
        let snap = snap_at(&mut o, 4000);
        v.step(&cfg, &root, &snap, &o, &mut rec, &mut decide);
        assert!(!v.busy(), "ineffective ends the check");
        decide.decide(&cfg, &snap);
        assert_eq!(
            acts(&decide),
            vec![1],
            "drain at once, 3 s after the clamp, not 60"
        );
        // A drained queue is verified at the next reading, and the rung holds.
        v.start(&cfg, &Done { rule: 1, ..done });
        let mut snap = snap;
        snap.suspects[0].socket.rx_queue = 0;
        v.step(&cfg, &root, &snap, &o, &mut rec, &mut decide);
        assert!(!v.busy(), "verified ends the check");
        o.give_back(snap);
    }
}
