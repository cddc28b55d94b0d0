//! /proc/net/sockstat text -> SockStat (the prefilter that decides which tables to read).
#![no_main]
use ghostwatch::observe::proc::SliceSource;
use ghostwatch::observe::proc::sockstat::SockStat;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&k, text)) = data.split_first() else {
        return;
    };
    let mut buf = vec![0u8; if k & 0x80 != 0 { 32 } else { 4096 }];
    let _ = SockStat::read(
        SliceSource::chunked(text, 1 + (k & 0x7f) as usize),
        &mut buf,
    );
    for line in text.split(|&c| c == b'\n') {
        let _ = SockStat::default().parse_line(line);
    }
});
