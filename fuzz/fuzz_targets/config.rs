//! The config file (JSON, hand-written by an operator or planted by an attacker) -> Config or
//! a FILE:LINE:COL error. Whatever the bytes: no panic, and an accepted config is in range.
#![no_main]
use ghostwatch::config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match config::parse(data) {
        Ok(cfg) => {
            assert!(cfg.interval_ms >= 1);
            assert!(cfg.ghost_warn_kb <= cfg.ghost_act_kb || cfg.ghost_act_kb == 0);
            let _ = format!("{cfg:?}");
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
