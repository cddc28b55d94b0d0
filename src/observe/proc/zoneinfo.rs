//! /proc/zoneinfo: the free pages parked on the per-CPU page lists ("pcp"). The page
//! allocator keeps them off the free lists, so MemFree leaves them out, and since 6.7 the lists
//! are auto-tuned up to a share of each zone: measured here (6.18, 24 GiB, 2 CPUs) they held
//! ~2 GB after a freed socket queue, and Ghost read ~2 GB on a healthy box. Ghost counts them
//! as accounted (term `PcpFree`).
//!
//! The lines that matter (mm/vmstat.c `zoneinfo_show_print`), under `pagesets`, one per CPU:
//! `    cpu: N` then `              count: PAGES`. `count:` appears nowhere else; every other
//! line is tolerated.

use super::{ProcError, Source, fields, parse_dec, read_lines};

/// Sum over every zone's per-CPU page lists.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PcpSummary {
    pub pages: u64,
    pub lists: u32,
    pub malformed: u32,
}

/// What one line contributes: `Some(pages)` for a `count:` line, `None` for any other line.
/// Err for a `count:` line whose value is not a number.
pub fn parse_line(line: &[u8]) -> Result<Option<u64>, &'static str> {
    let mut it = fields(line);
    if it.next() != Some(b"count:".as_slice()) {
        return Ok(None);
    }
    let n = it.next().and_then(parse_dec).ok_or("count:")?;
    Ok(Some(n))
}

impl PcpSummary {
    /// Streams a whole zoneinfo through `buf` (tens of kB on many-CPU boxes; never held at
    /// once). Bad `count:` lines are counted in `malformed` and skipped. Err(Io) only if the
    /// source fails.
    pub fn read<S: Source>(src: S, buf: &mut [u8]) -> Result<PcpSummary, ProcError> {
        let mut s = PcpSummary::default();
        let read = read_lines(src, buf, &mut |line| {
            if let Some(pages) = parse_line(line)? {
                s.pages = s.pages.saturating_add(pages);
                s.lists = s.lists.saturating_add(1);
            }
            Ok(())
        });
        s.malformed = read.whole_file()?;
        Ok(s)
    }

    /// kB for `page_size` bytes per page (saturating).
    pub fn free_kb(&self, page_size: u64) -> u64 {
        self.pages.saturating_mul(page_size) / 1024
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::proc::SliceSource;

    #[test]
    fn sums_the_per_cpu_counts() {
        // Abridged from this machine's 6.18 kernel.
        let text = b"Node 0, zone   Normal\n  pages free     2509877\n        min      9911\n        high     12388\n  pagesets\n    cpu: 0\n              count:    238376\n              high:     240616\n              batch:    63\n  vm stats threshold: 56\n    cpu: 1\n              count:    1000\n              high:     240616\n              batch:    63\n  node_unreclaimable:  0\n  start_pfn:           1048576\n    cpu: 2\n              count:    x\n";
        let mut buf = [0u8; 64];
        let s = PcpSummary::read(SliceSource::chunked(text, 7), &mut buf[..]).unwrap();
        assert_eq!(s.pages, 239_376);
        assert_eq!(s.lists, 2);
        assert_eq!(s.malformed, 1);
        assert_eq!(s.free_kb(4096), 957_504);
    }
}
