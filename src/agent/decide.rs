//! The decide stage: the agent's side of `decide::policy` — the policy's history, and the
//! decisions of the current poll kept in a buffer made once.
//! Must not read, act or audit: it turns a `Snapshot` into `Decision`s and answers questions.

use crate::config::Config;
use crate::decide::policy::{self, Decision, Learned, Policy, Snapshot};

/// The decide stage's state: policy history and this poll's decisions.
pub struct Decider {
    policy: Policy,
    decisions: heapless::Vec<Decision, { policy::MAX_DECISIONS }>,
}

impl Default for Decider {
    fn default() -> Self {
        Decider {
            policy: Policy::new(),
            decisions: heapless::Vec::new(),
        }
    }
}

impl Decider {
    /// Decides on `snap`; the decisions are `decisions()` until the next call.
    pub fn decide(&mut self, cfg: &Config, snap: &Snapshot) {
        self.policy.evaluate(cfg, snap, &mut self.decisions);
    }

    /// This poll's decisions, in the order they are to be carried out.
    pub fn decisions(&self) -> &[Decision] {
        &self.decisions
    }

    /// The policy, read only: the incident levels and budget for the recorder, and whether the
    /// poll should read every table and resolve owners (`Policy::wants_owners`).
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// What became of rule `rule`'s action decided at `acted_ms` (`Policy::learn`).
    pub fn learn(&mut self, cfg: &Config, rule: usize, acted_ms: u64, what: Learned) {
        self.policy.learn(cfg, rule, acted_ms, what);
    }

    /// A reloaded config: rule histories that no longer match are dropped.
    pub fn reconfigured(&mut self, cfg: &Config) {
        self.policy.reconfigured(cfg);
    }
}
