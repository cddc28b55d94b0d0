//! Proves `config::parse` never touches the heap: a counting global allocator tallies the
//! allocations made by this thread while `parse` runs on the example router config (and on a
//! broken one, because error messages must not allocate either: the agent reparses on SIGHUP
//! with mlock'ed memory). Also proves `load` reads into a stack buffer without allocating.

// Config errors are large by design (inline messages, no heap).
#![allow(clippy::result_large_err)]

#[path = "support/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::count;

const EXAMPLE: &[u8] = include_bytes!("../init/ghostwatch.json");

#[test]
fn parse_and_load_do_not_allocate() {
    // The counter itself must see allocations, or a zero below proves nothing.
    let (_, n) = count(|| std::hint::black_box(vec![1u8; 64]));
    assert_eq!(n, 1, "the counting allocator does not count");

    let (cfg, n) = count(|| ghostwatch::config::parse(EXAMPLE));
    let cfg = cfg.expect("example config parses");
    assert_eq!(cfg.rules.len(), 5);
    assert_eq!(n, 0, "parse of init/ghostwatch.json allocated {n} times");

    let broken = br#"{"rules": [{"trigerr": "ghost", "action": "log"}]}"#;
    let (r, n) = count(|| ghostwatch::config::parse(broken));
    assert!(r.is_err());
    assert_eq!(n, 0, "a rejected config allocated {n} times");

    let (cfg, n) = count(ghostwatch::config::Config::embedded_default);
    assert_eq!(cfg.rules.len(), 2);
    assert_eq!(n, 0, "embedded_default allocated {n} times");

    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/init/ghostwatch.json");
    let (r, n) = count(|| ghostwatch::config::load(path));
    assert!(r.is_ok());
    assert_eq!(n, 0, "load allocated {n} times");

    let (r, n) = count(|| ghostwatch::config::load("/nonexistent/ghostwatch.json"));
    assert!(r.is_err());
    assert_eq!(n, 0, "a failed load allocated {n} times");
}
