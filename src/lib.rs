//! ghostwatch: finds "Ghost" kernel memory (pages no meminfo category and no process RSS shows,
//! typically unread socket receive queues), names the sockets and processes behind it, and
//! remediates before the OOM killer shoots an innocent process.
//!
//! The folders follow the data's way: `observe` reads the box, `decide` turns numbers into
//! decisions, `act` changes the box, `output` writes for others; `sys` is under them all,
//! `config` says what to do, `report` and `agent` are the two programs built from them.
//! See ARCHITECTURE.md for the code map and invariants.

pub mod act;
pub mod agent;
pub mod config;
pub mod decide;
pub mod observe;
pub mod output;
pub mod report;
pub mod sys;
