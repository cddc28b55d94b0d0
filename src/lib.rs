//! ghostwatch: finds "Ghost" kernel memory (pages no meminfo category and no process RSS shows,
//! typically unread socket receive queues), names the sockets and processes behind it, and
//! remediates before the OOM killer shoots an innocent process.
//!
//! See ARCHITECTURE.md for the code map and invariants.

pub mod act;
pub mod agent;
pub mod argv;
pub mod audit;
pub mod children;
pub mod config;
pub mod escape;
pub mod ghost;
pub mod identity;
pub mod lastresort;
pub mod owners;
pub mod policy;
pub mod proc;
pub mod protect;
pub mod report;
pub mod safefile;
pub mod schedule;
pub mod sink;
pub mod sockets;
pub mod status;
pub mod sys;
pub mod trust;
pub mod watchdog;
