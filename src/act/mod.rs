//! Act: what changes the box — the executors (`executors`: exec, restart, sysctl, clamp, drain,
//! kill, reboot), commands in flight (`children`), `protect`, the watchdog, the last resort.
//! Must not decide whether to act (that is `decide`) or send audit lines (it returns `Outcome`s).

pub mod children;
pub mod executors;
pub mod lastresort;
pub mod protect;
pub mod watchdog;
