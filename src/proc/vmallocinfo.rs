//! /proc/vmallocinfo: the pages held by vmalloc'd areas (lines flagged `vmalloc` carrying
//! `pages=N`; ioremap areas carry none). Used where meminfo's VmallocUsed reads 0 (4.4–5.2).
//!
//! OWNER: parsers.

use super::{ProcError, Source};

/// Sum over vmalloc'd areas.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VmallocSummary {
    pub vmalloc_pages: u64,
    pub vmalloc_areas: u32,
    pub malformed: u32,
}

impl VmallocSummary {
    pub fn read<S: Source>(src: S, buf: &mut [u8]) -> Result<VmallocSummary, ProcError> {
        let _ = (src, buf);
        todo!()
    }

    /// kB for `page_size` bytes per page.
    pub fn vmalloc_kb(&self, page_size: u64) -> u64 {
        self.vmalloc_pages * page_size / 1024
    }
}
