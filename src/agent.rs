//! `ghostwatch run`: the poll loop. Reads /proc, asks policy, runs actions, audits, writes
//! the status and metrics files, sleeps on CLOCK_MONOTONIC. Signals: HUP reloads, TERM/INT exit 0.
//!
//! OWNER: lead.

use crate::proc::ProcRoot;

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
pub fn run(opts: Options) -> u8 {
    let _ = opts;
    todo!()
}
