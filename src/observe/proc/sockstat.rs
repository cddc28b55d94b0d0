//! /proc/net/sockstat: socket counts and the memory (pages) TCP/UDP queues use.
//!
//! Format (net/ipv4/proc.c `sockstat_seq_show`, unchanged since 2.6):
//! `sockets: used N`, `TCP: inuse N orphan N tw N alloc N mem N`, `UDP: inuse N mem N`,
//! `UDPLITE: inuse N`, `RAW: inuse N`, `FRAG: inuse N memory N`. Parsed as "SECTION: key value
//! key value ..." so unknown sections and keys (future kernels) are ignored.

use super::{ProcError, Source, fields, parse_dec, read_lines};

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
    /// Lines that did not parse (a known key without a decimal value, or an over-long line).
    pub malformed: u32,
}

impl SockStat {
    /// The slot for `key` in `section` (e.g. "TCP:", "mem"), `None` for pairs we do not keep.
    fn slot(&mut self, section: &[u8], key: &[u8]) -> Option<&mut Option<u64>> {
        Some(match (section, key) {
            (b"sockets:", b"used") => &mut self.sockets_used,
            (b"TCP:", b"inuse") => &mut self.tcp_inuse,
            (b"TCP:", b"orphan") => &mut self.tcp_orphan,
            (b"TCP:", b"tw") => &mut self.tcp_tw,
            (b"TCP:", b"alloc") => &mut self.tcp_alloc,
            (b"TCP:", b"mem") => &mut self.tcp_mem_pages,
            (b"UDP:", b"inuse") => &mut self.udp_inuse,
            (b"UDP:", b"mem") => &mut self.udp_mem_pages,
            (b"UDPLITE:", b"inuse") => &mut self.udplite_inuse,
            (b"RAW:", b"inuse") => &mut self.raw_inuse,
            (b"FRAG:", b"inuse") => &mut self.frag_inuse,
            (b"FRAG:", b"memory") => &mut self.frag_memory,
            _ => return None,
        })
    }

    /// Parses one line into `self`. Err for a known key whose value is not a decimal number
    /// or is missing; unknown sections and keys are Ok and ignored.
    pub fn parse_line(&mut self, line: &[u8]) -> Result<(), &'static str> {
        let mut it = fields(line);
        let Some(section) = it.next() else {
            return Ok(());
        };
        while let Some(key) = it.next() {
            let value = it.next();
            if let Some(slot) = self.slot(section, key) {
                *slot = Some(value.and_then(parse_dec).ok_or("value")?);
            }
        }
        Ok(())
    }

    /// Reads a whole sockstat through `buf`; bad lines are skipped. Err(Io) if the source
    /// cannot be read, Err(Missing("sockstat values")) if no known value was found at all.
    pub fn read<S: Source>(src: S, buf: &mut [u8]) -> Result<SockStat, ProcError> {
        let mut s = SockStat::default();
        // A bad value only loses that line's remaining pairs.
        let read = read_lines(src, buf, &mut |line| s.parse_line(line));
        s.malformed = read.whole_file()?;
        let values = SockStat { malformed: 0, ..s };
        if values == SockStat::default() {
            return Err(ProcError::Missing("sockstat values"));
        }
        Ok(s)
    }
}

/// How far sockstat's `mem` may be from the memory its sockets really charge, in bytes.
///
/// Since Linux 6.0 each CPU batches its charges in a reserve of up to `mem_pcpu_rsv` pages
/// (sysctl net.core.mem_pcpu_rsv since 6.9; a fixed 1 MiB in 6.0-6.8) before it moves them to
/// the global counter sockstat prints, either way: `cpus × reserve`. Before 6.0 the counter is
/// exact: 0. `rsv_pages` is the sysctl if the kernel has it, `osrelease` the kernel release.
pub fn pcpu_lag_bytes(rsv_pages: Option<u64>, osrelease: &[u8], cpus: u64, page_size: u64) -> u64 {
    let major = osrelease
        .split(|&b| b == b'.')
        .next()
        .and_then(parse_dec)
        .unwrap_or(0);
    let rsv = match rsv_pages {
        Some(p) => p.saturating_mul(page_size),
        None if major >= 6 => 1 << 20,
        None => 0,
    };
    rsv.saturating_mul(cpus)
}

/// Counts the `cpuN` lines of a /proc/stat (the online CPUs).
pub fn count_cpus<S: Source>(src: S, buf: &mut [u8]) -> u64 {
    let mut n = 0u64;
    let _ = read_lines(src, buf, &mut |line| {
        if line.starts_with(b"cpu") && line.get(3).is_some_and(u8::is_ascii_digit) {
            n += 1;
        }
        Ok(())
    });
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::proc::SliceSource;

    #[test]
    fn per_cpu_reserve_bounds_the_lag() {
        // 6.18 with the sysctl (256 pages of 4 KiB) on 2 CPUs: 2 MiB.
        assert_eq!(pcpu_lag_bytes(Some(256), b"6.18.44-fc\n", 2, 4096), 2 << 20);
        // 6.1 has the reserve but no sysctl: 1 MiB per CPU.
        assert_eq!(pcpu_lag_bytes(None, b"6.1.0-28-arm64\n", 4, 4096), 4 << 20);
        // 5.10 and 3.10: the counter is exact.
        assert_eq!(pcpu_lag_bytes(None, b"5.10.0-23-amd64", 8, 4096), 0);
        assert_eq!(pcpu_lag_bytes(None, b"3.10.0-1160.el7", 8, 4096), 0);
        assert_eq!(
            pcpu_lag_bytes(None, b"", 8, 4096),
            0,
            "unknown: as old kernels"
        );
        assert_eq!(pcpu_lag_bytes(Some(u64::MAX), b"6.9", 2, 4096), u64::MAX);
        let stat = b"cpu  1 2 3\ncpu0 1 2 3\ncpu1 4 5 6\nintr 1 2 3\ncpufreq? no\nctxt 5\n";
        let mut buf = [0u8; 16];
        assert_eq!(count_cpus(SliceSource::chunked(stat, 3), &mut buf[..]), 2);
    }

    #[test]
    fn parses_kernel_text_and_tolerates_junk() {
        let text = b"sockets: used 14\nTCP: inuse 1 orphan 0 tw 0 alloc 1 mem 179\nUDP: inuse 0 mem 0\nUDPLITE: inuse 0\nRAW: inuse 0\nFRAG: inuse 0 memory 0\n";
        let mut buf = [0u8; 64];
        let s = SockStat::read(SliceSource::chunked(text, 5), &mut buf[..]).unwrap();
        assert_eq!(s.sockets_used, Some(14));
        assert_eq!(s.tcp_mem_pages, Some(179));
        assert_eq!(s.frag_memory, Some(0));
        let mut s = SockStat::default();
        assert_eq!(s.parse_line(b"TCP: inuse x"), Err("value"));
        assert_eq!(s.parse_line(b"TCP: inuse"), Err("value"));
        assert_eq!(s.parse_line(b"NEW: thing 3 other"), Ok(()));
        let got = SockStat::read(SliceSource::new(b"\x00\xff\n"), &mut buf[..]);
        assert_eq!(got, Err(ProcError::Missing("sockstat values")));
    }

    #[test]
    fn counts_bad_lines() {
        let text =
            b"sockets: used 14\nTCP: inuse x mem 3\nUDP: inuse 2 mem 7\nRAW inuse\nFRAG: inuse\n";
        let mut buf = [0u8; 64];
        let s = SockStat::read(SliceSource::new(text), &mut buf[..]).unwrap();
        assert_eq!((s.sockets_used, s.udp_mem_pages), (Some(14), Some(7)));
        assert_eq!(s.tcp_mem_pages, None);
        assert_eq!(s.malformed, 2);
        let got = SockStat::read(SliceSource::new(b"TCP: inuse x\n"), &mut buf[..]);
        assert_eq!(got, Err(ProcError::Missing("sockstat values")));
    }
}
