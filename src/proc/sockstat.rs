//! /proc/net/sockstat: socket counts and the memory (pages) TCP/UDP queues use.
//!
//! OWNER: parsers.

use super::{ProcError, Source};

/// Parsed /proc/net/sockstat; `None` where the kernel printed no such value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SockStat {
    pub sockets_used: Option<u64>,
    pub tcp_inuse: Option<u64>,
    pub tcp_orphan: Option<u64>,
    pub tcp_tw: Option<u64>,
    pub tcp_alloc: Option<u64>,
    pub tcp_mem_pages: Option<u64>,
    pub udp_inuse: Option<u64>,
    pub udp_mem_pages: Option<u64>,
    pub udplite_inuse: Option<u64>,
    pub raw_inuse: Option<u64>,
    pub frag_inuse: Option<u64>,
    pub frag_memory: Option<u64>,
}

impl SockStat {
    pub fn read<S: Source>(src: S, buf: &mut [u8]) -> Result<SockStat, ProcError> {
        let _ = (src, buf);
        todo!()
    }
}
