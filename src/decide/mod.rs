//! Decide: numbers in, decisions out — thresholds, hysteresis, cooldown, escalation, rate
//! limits (`policy`), the time until memory runs out (`eta`) and when the next poll is due
//! (`schedule`).
//! Must not do I/O, sleep, log or read a clock: time comes in as a number.

pub mod eta;
pub mod policy;
pub mod schedule;
