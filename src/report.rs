//! `ghostwatch report`: the whole seed investigation in one command — the accounting equation
//! term by term, Ghost, process RSS vs used memory, Shmem, the top sockets by receive queue with
//! their owners, and a verdict in plain words. Human text by default, the contract JSON with --json.
//!
//! OWNER: processes.

use crate::proc::ProcRoot;
use std::io;

/// Most sockets `--top` may ask for.
pub const MAX_TOP: usize = 100;

#[derive(Clone, Copy, Debug)]
pub struct Options {
    pub top: usize,
    pub json: bool,
}

/// Collects everything from `root` and writes the report to `out`.
/// Unreadable parts are skipped and named in the report; only a missing/garbled meminfo is an Err.
pub fn run(
    root: &ProcRoot,
    opts: Options,
    out: &mut dyn io::Write,
) -> Result<(), std::string::String> {
    let _ = (root, opts, out);
    todo!()
}
