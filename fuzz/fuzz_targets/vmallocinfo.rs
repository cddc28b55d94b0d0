//! /proc/vmallocinfo text -> pages= sum (the vmalloc term where meminfo prints 0).
#![no_main]
use ghostwatch::observe::proc::SliceSource;
use ghostwatch::observe::proc::vmallocinfo::{self, VmallocSummary};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&k, text)) = data.split_first() else {
        return;
    };
    let mut buf = vec![0u8; if k & 0x80 != 0 { 48 } else { 4096 }];
    if let Ok(v) = VmallocSummary::read(
        SliceSource::chunked(text, 1 + (k & 0x7f) as usize * 13),
        &mut buf,
    ) {
        let _ = v.vmalloc_kb(4);
        let _ = v.vmalloc_kb(65536);
    }
    for line in text.split(|&c| c == b'\n') {
        let _ = vmallocinfo::parse_line(line);
    }
});
