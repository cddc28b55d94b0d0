//! Decide: numbers in, decisions out — thresholds, hysteresis, cooldown, escalation, rate
//! limits (`policy`), the time until memory runs out (`eta`), whether an action brought
//! anything back (`verify`) and when the next poll is due (`schedule`).
//! Must not do I/O, sleep, log or read a clock: time comes in as a number.

pub mod correlate;
pub mod eta;
pub mod policy;
pub mod schedule;
pub mod verify;
