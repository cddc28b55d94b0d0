//! /proc/PID/status and /proc/PID/stat text (a process controls its own comm: hostile by
//! definition) -> Status, Stat. The first byte picks which file and the chunking.
#![no_main]
use ghostwatch::observe::proc::SliceSource;
use ghostwatch::observe::proc::pid::{self, Comm};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&k, text)) = data.split_first() else {
        return;
    };
    if k & 1 == 0 {
        let mut buf = vec![0u8; if k & 0x80 != 0 { 64 } else { 1024 }];
        if let Ok(st) =
            pid::parse_status(SliceSource::chunked(text, 1 + (k >> 1) as usize), &mut buf)
        {
            assert!(st.name.as_bytes().len() <= 16);
        }
    } else if let Ok(st) = pid::parse_stat(text) {
        let _ = st.is_kernel_thread();
    }
    let c = Comm::from_bytes(text);
    assert!(c.as_bytes().len() <= 16);
});
