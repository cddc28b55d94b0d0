//! /proc/meminfo text -> MemInfo -> the Ghost equation. The first byte picks the read chunk
//! size (lines split across reads) and a small buffer now and then (over-long lines).
#![no_main]
use ghostwatch::observe::ghost;
use ghostwatch::observe::proc::meminfo::MemInfo;
use ghostwatch::observe::proc::{ProcError, SliceSource};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&k, text)) = data.split_first() else {
        return;
    };
    let mut buf = vec![0u8; if k & 0x80 != 0 { 64 } else { 4096 }];
    let chunk = 1 + (k & 0x7f) as usize * 37;
    match MemInfo::read(SliceSource::chunked(text, chunk), &mut buf) {
        Ok(mi) => {
            let _ = ghost::compute(&mi, None);
            let _ = ghost::compute(&mi, Some(text.len() as u64));
        }
        Err(e) => assert!(matches!(e, ProcError::Missing(_)), "{e:?}"),
    }
    for line in text.split(|&c| c == b'\n') {
        let _ = MemInfo::default().parse_line(line);
    }
});
