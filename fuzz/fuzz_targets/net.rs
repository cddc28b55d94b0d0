//! /proc/net/{tcp,udp,raw,...,netlink,packet} text -> SocketEntry rows. The first byte picks
//! the table format and the read chunking; counts must add up, rows must render.
#![no_main]
use ghostwatch::observe::proc::SliceSource;
use ghostwatch::observe::proc::net::{self, Proto};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&k, text)) = data.split_first() else {
        return;
    };
    let proto = Proto::ALL[k as usize % Proto::ALL.len()];
    let mut buf = vec![0u8; if k & 0x80 != 0 { 128 } else { 4096 }];
    let chunk = 1 + (k >> 4) as usize * 61;
    let mut n = 0u32;
    let st = net::read_table(
        proto,
        SliceSource::chunked(text, chunk),
        &mut buf,
        &mut |e| {
            n += 1;
            let _ = e.local.to_string();
            let _ = e.remote.to_string();
        },
    )
    .expect("in-memory source never fails");
    assert_eq!(st.sockets, n);
    let lines = text.split(|&c| c == b'\n').count() as u32;
    assert!(st.sockets + st.malformed <= lines + 1);
    for line in text.split(|&c| c == b'\n') {
        let _ = net::parse_line(proto, line);
    }
});
