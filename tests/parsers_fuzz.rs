//! In-tree fuzzing until cargo-fuzz lands: deterministic mutations of real kernel text pushed
//! through every parser. The only assertion is the one that matters for untrusted /proc
//! text: no panic, whatever the bytes (and, where a parser returns counts, they stay sane).

use ghostwatch::observe::ghost;
use ghostwatch::observe::proc::meminfo::MemInfo;
use ghostwatch::observe::proc::net::{self, Proto};
use ghostwatch::observe::proc::sockstat::SockStat;
use ghostwatch::observe::proc::vmallocinfo::{self, VmallocSummary};
use ghostwatch::observe::proc::zoneinfo::{self, PcpSummary};
use ghostwatch::observe::proc::{ProcError, SliceSource};
use std::path::Path;

/// xorshift64*: tiny, deterministic, good enough to pick mutations.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Every real sample under tests/data/kernel.
fn corpus() -> Vec<Vec<u8>> {
    fn walk(dir: &Path, out: &mut Vec<Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_none() {
                out.push(std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = Vec::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/kernel"),
        &mut out,
    );
    assert!(out.len() >= 20, "corpus went missing");
    out
}

/// Bytes the kernel's formats give meaning to, so mutations hit parser edges more often.
const INTERESTING: &[u8] = b"0123456789abcdefABCDEFx:-= \n\t()kBsl\x00\xff";

fn mutate(rng: &mut Rng, src: &[u8]) -> Vec<u8> {
    let mut v = src.to_vec();
    for _ in 0..1 + rng.below(8) {
        let len = v.len();
        match rng.below(9) {
            0 if len > 0 => {
                let i = rng.below(len);
                v[i] ^= 1 << rng.below(8);
            }
            1 => {
                let i = rng.below(len + 1);
                let c = INTERESTING[rng.below(INTERESTING.len())];
                v.insert(i, c);
            }
            2 if len > 0 => {
                let i = rng.below(len);
                let n = rng.below(64).min(len - i);
                v.drain(i..i + n);
            }
            // Truncate, often mid-line: what a short read or a racing table looks like.
            3 => v.truncate(rng.below(len + 1)),
            4 if len > 0 => {
                let i = rng.below(len);
                let n = rng.below(200).min(len - i);
                let chunk = v[i..i + n].to_vec();
                let at = rng.below(len + 1);
                v.splice(at..at, chunk);
            }
            5 if len > 0 => {
                let i = rng.below(len);
                v[i] = rng.next() as u8;
            }
            // A very long digit run: overflow paths.
            6 => {
                let i = rng.below(len + 1);
                let n = 1 + rng.below(40);
                v.splice(i..i, std::iter::repeat_n(b'9', n));
            }
            // A line longer than the reader's buffer.
            7 => {
                let i = rng.below(len + 1);
                v.splice(i..i, std::iter::repeat_n(b'A', 300 + rng.below(5000)));
            }
            _ => {
                let i = rng.below(len + 1);
                v.insert(i, b'\n');
            }
        }
    }
    v
}

/// Runs every parser over `input` with the given buffer size and read chunking.
fn run_all(input: &[u8], bufsize: usize, chunk: usize) {
    let mut buf = vec![0u8; bufsize];
    match MemInfo::read(SliceSource::chunked(input, chunk), &mut buf) {
        Ok(mi) => {
            let _ = ghost::compute(&mi, Some(input.len() as u64));
            let _ = ghost::compute(&mi, None);
        }
        Err(e) => assert!(matches!(e, ProcError::Missing(_)), "{e:?}"),
    }
    let _ = SockStat::read(SliceSource::chunked(input, chunk), &mut buf);
    let v = VmallocSummary::read(SliceSource::chunked(input, chunk), &mut buf).unwrap();
    let _ = v.vmalloc_kb(65536);
    let z = PcpSummary::read(SliceSource::chunked(input, chunk), &mut buf).unwrap();
    let _ = z.free_kb(65536);
    let lines = input.split(|&c| c == b'\n').count() as u32;
    for p in Proto::ALL {
        let mut n = 0u32;
        let st = net::read_table(p, SliceSource::chunked(input, chunk), &mut buf, &mut |e| {
            n += 1;
            let _ = e.local.to_string();
            let _ = e.remote.to_string();
        })
        .unwrap();
        assert_eq!(st.sockets, n);
        assert!(st.sockets + st.malformed <= lines + 1);
    }
    for line in input.split(|&c| c == b'\n') {
        for p in Proto::ALL {
            let _ = net::parse_line(p, line);
        }
        let _ = MemInfo::default().parse_line(line);
        let _ = SockStat::default().parse_line(line);
        let _ = vmallocinfo::parse_line(line);
        let _ = zoneinfo::parse_line(line);
    }
}

#[test]
fn mutated_kernel_text_never_panics() {
    let corpus = corpus();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for i in 0..3000 {
        let base = &corpus[rng.below(corpus.len())];
        let input = mutate(&mut rng, base);
        // Mostly the production buffer, sometimes a tiny one so long-line skipping is hit.
        let bufsize = if i % 5 == 0 {
            16 + rng.below(200)
        } else {
            4096
        };
        let chunk = 1 + rng.below(700);
        run_all(&input, bufsize, chunk);
    }
}

#[test]
fn empty_truncated_and_garbage_inputs_are_clean_errors() {
    let mut buf = [0u8; 4096];
    assert_eq!(
        MemInfo::read(SliceSource::new(b""), &mut buf).unwrap_err(),
        ProcError::Missing("MemTotal")
    );
    let garbage: Vec<u8> = (0..20_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    run_all(&garbage, 4096, 333);
    run_all(b"", 4096, 1);
    run_all(&[0u8; 9000], 64, 100);
    // Every real sample, cut at every 7th byte (mid-line truncation).
    for text in corpus() {
        let mut at = 0;
        while at < text.len() {
            run_all(&text[..at], 4096, 4096);
            at += 7 + text.len() / 50;
        }
    }
    // A table cut mid-line keeps its whole sockets and counts the torn one.
    let udp = b"   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
  1: 0100007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 11 2 0 0\n\
  2: 0100007F:0035 0000";
    let st = net::read_table(Proto::Udp, SliceSource::new(udp), &mut buf, &mut |_| {}).unwrap();
    assert_eq!((st.sockets, st.malformed), (1, 1));
}
