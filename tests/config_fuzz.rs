//! Mutation test: random byte edits of valid configs must make `parse` return Ok or Err,
//! never panic, and every Err must carry a position inside the text and a message that is
//! ours (not the "serde-json-core rejected" fallback, which would mean the scanner let through
//! something serde-json-core refuses).

// Config errors are large by design (inline messages, no heap).
#![allow(clippy::result_large_err)]

use ghostwatch::config::{self, Config};

/// xorshift64*: small, deterministic, good enough to pick edits.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Bytes that matter to JSON and to our schema, so edits hit interesting paths often.
const ALPHABET: &[u8] = b"{}[]:,\"\\ \n\t-+.0123456789eEtrufalsn/#'u\x00\xff\xc3\xa9xyz_";

const SEEDS: &[&str] = &[
    include_str!("../init/ghostwatch.json"),
    include_str!("data/config/good_all_actions.json"),
    include_str!("data/config/good_nulls.json"),
    config::EMBEDDED_DEFAULT_JSON,
    r#"{"syslog": "udp:[::1]:514", "rules": [{"trigger": "backlog", "comm": "zebra", "action": "kill", "signal": "SIGKILL", "argv": null}]}"#,
    r#"{"status_file": "/run/g\u00e9\/s\n", "ghost_warn_kb": 1, "ghost_act_kb": 1}"#,
];

fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut t = seed.to_vec();
    let edits = 1 + rng.below(4);
    for _ in 0..edits {
        let at = rng.below(t.len() + 1);
        match rng.below(7) {
            0 | 1 => {
                if at < t.len() {
                    t[at] = ALPHABET[rng.below(ALPHABET.len())];
                }
            }
            2 => {
                if at < t.len() {
                    t.remove(at);
                }
            }
            3 => t.insert(at, ALPHABET[rng.below(ALPHABET.len())]),
            4 => t.truncate(at),
            5 => {
                // Duplicate a chunk: repeats keys, rules and argv items.
                let len = rng.below(64).min(t.len() - at.min(t.len()));
                let chunk: Vec<u8> = t[at..at + len].to_vec();
                let to = rng.below(t.len() + 1);
                t.splice(to..to, chunk);
            }
            _ => {
                if at < t.len() {
                    t[at] = rng.next() as u8;
                }
            }
        }
    }
    t
}

/// Properties every accepted config has, whatever the input looked like.
fn check_invariants(cfg: &Config) {
    assert!(cfg.ghost_warn_kb <= cfg.ghost_act_kb);
    assert!(cfg.backlog_warn_bytes <= cfg.backlog_act_bytes);
    assert!(cfg.available_warn_kb >= cfg.min_available_kb);
    assert!((10..=3_600_000).contains(&cfg.interval_ms));
    assert!(cfg.max_actions_per_hour <= 64);
    for r in &cfg.rules {
        assert!(!r.name.is_empty());
        if r.action.targets_owner() {
            assert!(r.comm.is_some() || r.exe.is_some());
        }
        assert!((1..=64).contains(&r.signal));
    }
}

#[test]
fn random_edits_never_panic() {
    // GW_FUZZ_CASES / GW_FUZZ_SEED run longer or different campaigns by hand.
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let cases = env("GW_FUZZ_CASES", 30_000) as usize;
    let mut rng = Rng(env("GW_FUZZ_SEED", 0x9E37_79B9_7F4A_7C15) | 1);
    let (mut ok, mut err) = (0usize, 0usize);
    for i in 0..cases {
        let seed = SEEDS[i % SEEDS.len()].as_bytes();
        let text = mutate(&mut rng, seed);
        let result = std::panic::catch_unwind(|| config::parse(&text));
        match result {
            Err(_) => panic!(
                "parse panicked on case {i}: {:?}",
                String::from_utf8_lossy(&text)
            ),
            Ok(Ok(cfg)) => {
                check_invariants(&cfg);
                ok += 1;
            }
            Ok(Err(e)) => {
                let lines = 1 + text.iter().filter(|&&b| b == b'\n').count() as u32;
                assert!(
                    e.line >= 1 && e.line <= lines && e.col >= 1,
                    "case {i}: position {}:{} outside the text: {:?}",
                    e.line,
                    e.col,
                    String::from_utf8_lossy(&text)
                );
                assert!(
                    !e.msg.contains("please report"),
                    "case {i}: scanner and serde-json-core disagree: {e}\n{:?}",
                    String::from_utf8_lossy(&text)
                );
                assert!(!e.msg.is_empty() && !e.msg.contains('\n'));
                err += 1;
            }
        }
    }
    println!("{cases} mutated configs: {ok} accepted, {err} rejected, no panic");
    assert!(
        ok > 100,
        "mutations too destructive to exercise the validator: {ok} ok"
    );
}

#[test]
fn truncations_of_every_length_are_handled() {
    for seed in SEEDS {
        let b = seed.as_bytes();
        for n in 0..=b.len() {
            let r = config::parse(&b[..n]);
            if n == b.len() {
                assert!(r.is_ok(), "seed must parse: {seed}");
            }
        }
    }
}
