//! /proc/vmallocinfo: the pages held by vmalloc'd areas (lines flagged `vmalloc` carrying
//! `pages=N`; ioremap areas carry none). Used where meminfo's VmallocUsed reads 0 (4.4–5.2).
//!
//! A line (mm/vmalloc.c `s_show`): `0xSTART-0xEND SIZE caller [pages=N] [phys=ADDR] FLAGS...
//! [N0=n N1=n ...]`, where FLAGS are words such as `ioremap`, `vmalloc`, `vmap`, `user`,
//! `vpages`, `dma-coherent`; "unpurged vm_area" and "vm_map_ram" lines have no caller.
//! Only the `vmalloc` word and `pages=` matter here; everything else is tolerated.

use super::{ProcError, Source, fields, parse_dec, read_lines};

/// Sum over vmalloc'd areas.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VmallocSummary {
    pub vmalloc_pages: u64,
    pub vmalloc_areas: u32,
    pub malformed: u32,
}

/// What one line contributes: `Some(pages)` for a vmalloc'd area, `None` for other areas.
/// Err for a line that is not an area (no `0x...-0x...` range) or whose `pages=` is not a number.
pub fn parse_line(line: &[u8]) -> Result<Option<u64>, &'static str> {
    let mut it = fields(line);
    let range = it.next().ok_or("empty line")?;
    if !range.starts_with(b"0x") || !range.contains(&b'-') {
        return Err("address range");
    }
    let mut pages = None;
    let mut is_vmalloc = false;
    for w in it {
        if w == b"vmalloc" {
            is_vmalloc = true;
        } else if let Some(n) = w.strip_prefix(b"pages=") {
            pages = Some(parse_dec(n).ok_or("pages=")?);
        }
    }
    // A vmalloc area without pages= (never printed by the kernels we know) holds nothing we
    // can count; treat it like any other area rather than guess.
    Ok(if is_vmalloc { pages } else { None })
}

impl VmallocSummary {
    /// Streams a whole vmallocinfo through `buf` (it can be megabytes; never held at once).
    /// Bad lines are counted in `malformed` and skipped. Err(Io) only if the source fails
    /// (EACCES for non-root on most kernels).
    pub fn read<S: Source>(src: S, buf: &mut [u8]) -> Result<VmallocSummary, ProcError> {
        let mut s = VmallocSummary::default();
        let read = read_lines(src, buf, &mut |line| {
            if let Some(pages) = parse_line(line)? {
                s.vmalloc_pages = s.vmalloc_pages.saturating_add(pages);
                s.vmalloc_areas = s.vmalloc_areas.saturating_add(1);
            }
            Ok(())
        });
        s.malformed = read.whole_file()?;
        Ok(s)
    }

    /// kB for `page_size` bytes per page (saturating; never panics on absurd sums).
    pub fn vmalloc_kb(&self, page_size: u64) -> u64 {
        self.vmalloc_pages.saturating_mul(page_size) / 1024
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::proc::SliceSource;

    #[test]
    fn sums_only_vmalloc_areas() {
        let text = b"0x00000000a0fa39e6-0x00000000fc82656d   12288 acpi_os_map_iomem+0x1bc/0x1e0 phys=0x000000000009f000 ioremap\n\
0x00000000c77161c7-0x0000000048035277   20480 kernel_clone+0x94/0x3e0 pages=4 vmalloc N0=4\n\
0xffffc90000000000-0xffffc90000004000   16384 bpf_prog_alloc+0x1e/0x90 pages=3 vmalloc vpages dma-coherent N0=1 N1=2\n\
0xffffc90000010000-0xffffc90000012000    8192 unpurged vm_area\n\
0xffffc90000020000-0xffffc90000022000    8192 vm_map_ram\n\
0xffffc90000030000-0xffffc90000032000    8192 foo+0x1 pages=x vmalloc\n\
not a line\n";
        let mut buf = [0u8; 256];
        let s = VmallocSummary::read(SliceSource::chunked(text, 9), &mut buf[..]).unwrap();
        assert_eq!(s.vmalloc_pages, 7);
        assert_eq!(s.vmalloc_areas, 2);
        assert_eq!(s.malformed, 2);
        assert_eq!(s.vmalloc_kb(4096), 28);
    }
}
