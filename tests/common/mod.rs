//! Shared helpers for the live integration tests: the root/CI skip policy and a JSON reader.

#![allow(dead_code)]

pub mod json;

/// True when the test may go on as root. Not root: prints "SKIPPED (needs root): WHAT" and
/// returns false, except under CI=true, where a skip would hide a gap, so it panics instead.
pub fn need_root(what: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("SKIPPED (needs root) is a failure under CI=true: {what}");
    }
    println!("SKIPPED (needs root): {what}");
    false
}
