//! /proc/meminfo: every field of kernels 3.10 through 6.x, by name, in kB (HugePages_* are counts).
//!
//! Values live in a fixed array indexed by `Field`, so a read never allocates. Unknown
//! fields are ignored (newer kernels keep adding lines); absent ones read as `None`, which
//! is how callers tell "this kernel has no such counter" from "the counter is 0".

use super::{ProcError, Source, fields, parse_dec, read_lines};

/// Every meminfo field ghostwatch knows. `name()` is the kernel's spelling.
///
/// Each variant names the kernel release whose fs/proc/meminfo.c (or hugetlb/arch hook)
/// first printed it; "always" means it predates 3.10, the oldest kernel we support.
/// Fields behind a config option (HIGHMEM, CMA, MEMORY_FAILURE, ...) are only printed
/// by kernels built with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Field {
    /// Usable RAM (always).
    MemTotal,
    /// Free pages (always).
    MemFree,
    /// Estimate of memory available without swapping (3.14; backported to RHEL/CentOS 7's 3.10).
    MemAvailable,
    /// Block device buffers (always).
    Buffers,
    /// Page cache minus swap cache (always).
    Cached,
    /// Swap cache (always).
    SwapCached,
    /// Active LRU, anon + file (always).
    Active,
    /// Inactive LRU, anon + file (always).
    Inactive,
    /// "Active(anon)" (2.6.28).
    ActiveAnon,
    /// "Inactive(anon)" (2.6.28).
    InactiveAnon,
    /// "Active(file)" (2.6.28).
    ActiveFile,
    /// "Inactive(file)" (2.6.28).
    InactiveFile,
    /// Unevictable LRU (2.6.28).
    Unevictable,
    /// mlock()ed pages (2.6.28).
    Mlocked,
    /// Highmem total (CONFIG_HIGHMEM, 32-bit).
    HighTotal,
    /// Highmem free (CONFIG_HIGHMEM).
    HighFree,
    /// Lowmem total (CONFIG_HIGHMEM).
    LowTotal,
    /// Lowmem free (CONFIG_HIGHMEM).
    LowFree,
    /// Private mmap copies (no-MMU kernels only).
    MmapCopy,
    /// Swap size (always).
    SwapTotal,
    /// Free swap (always).
    SwapFree,
    /// zswap compressed pool size (5.19).
    Zswap,
    /// Uncompressed size of what zswap holds (5.19).
    Zswapped,
    /// Dirty page cache (always).
    Dirty,
    /// Page cache under writeback (always).
    Writeback,
    /// Anonymous pages mapped into user page tables (always).
    AnonPages,
    /// File pages mapped into user page tables (always).
    Mapped,
    /// shmem/tmpfs pages (2.6.32).
    Shmem,
    /// Reclaimable kernel memory: SReclaimable + other reclaimable (4.20).
    KReclaimable,
    /// Slab allocator total (always).
    Slab,
    /// Reclaimable slab (2.6.19).
    SReclaimable,
    /// Unreclaimable slab (2.6.19).
    SUnreclaim,
    /// Kernel thread stacks (2.6.32).
    KernelStack,
    /// Shadow call stacks (5.8, arm64 with CONFIG_SHADOW_CALL_STACK).
    ShadowCallStack,
    /// User page tables (always).
    PageTables,
    /// Secondary page tables, e.g. KVM's (6.0).
    SecPageTables,
    /// Page table quicklists (CONFIG_QUICKLIST; removed in 5.4).
    Quicklists,
    /// NFS unstable pages (always; always 0 since 5.8).
    NfsUnstable,
    /// Bounce buffers (always).
    Bounce,
    /// FUSE writeback temp pages (always).
    WritebackTmp,
    /// Overcommit limit (always).
    CommitLimit,
    /// Committed address space (always).
    CommittedAs,
    /// vmalloc address space size (always).
    VmallocTotal,
    /// vmalloc'd memory (always; reads 0 on 4.4 through 5.2, see `vmallocinfo`).
    VmallocUsed,
    /// Largest free vmalloc block (always; 0 since 4.4).
    VmallocChunk,
    /// Per-CPU allocator chunks (4.16).
    Percpu,
    /// Memory found bad by early memtest (6.3; only printed after memtest ran).
    EarlyMemtestBad,
    /// Pages poisoned by memory failure handling (2.6.32, CONFIG_MEMORY_FAILURE).
    HardwareCorrupted,
    /// Anonymous transparent huge pages (2.6.38).
    AnonHugePages,
    /// shmem/tmpfs transparent huge pages (4.8).
    ShmemHugePages,
    /// shmem huge pages mapped with PMDs (4.8).
    ShmemPmdMapped,
    /// Page-cache transparent huge pages (5.4).
    FileHugePages,
    /// Page-cache huge pages mapped with PMDs (5.4).
    FilePmdMapped,
    /// Contiguous memory allocator reserve (3.19, CONFIG_CMA).
    CmaTotal,
    /// Free CMA pages (3.19, CONFIG_CMA).
    CmaFree,
    /// Guest memory not yet accepted from the hypervisor (6.5, CONFIG_UNACCEPTED_MEMORY).
    Unaccepted,
    /// Pages held by a balloon driver (6.12).
    Balloon,
    /// GPU driver pages in active use (after 6.18).
    GpuActive,
    /// GPU driver pages kept for reuse (after 6.18).
    GpuReclaim,
    /// Persistent huge pages of the default size, a count (always).
    HugePagesTotal,
    /// Free huge pages, a count (always).
    HugePagesFree,
    /// Reserved huge pages, a count (2.6.17).
    HugePagesRsvd,
    /// Surplus huge pages, a count (2.6.24).
    HugePagesSurp,
    /// Default huge page size in kB (always).
    Hugepagesize,
    /// Memory in huge pages of every size (4.16).
    Hugetlb,
    /// Direct map in 4 kB pages (x86, 2.6.26).
    DirectMap4k,
    /// Direct map in 2 MB pages (x86-64 and PAE).
    DirectMap2M,
    /// Direct map in 4 MB pages (32-bit x86 without PAE).
    DirectMap4M,
    /// Direct map in 1 GB pages (x86-64).
    DirectMap1G,
    /// Direct map in 1 MB pages (s390).
    DirectMap1M,
    /// Direct map in 2 GB pages (s390).
    DirectMap2G,
}

/// Number of `Field` variants (the size of `MemInfo`'s value array).
pub const FIELD_COUNT: usize = Field::ALL.len();

impl Field {
    /// Every field, in the kernel's print order (arch lines last).
    pub const ALL: [Field; 71] = [
        Field::MemTotal,
        Field::MemFree,
        Field::MemAvailable,
        Field::Buffers,
        Field::Cached,
        Field::SwapCached,
        Field::Active,
        Field::Inactive,
        Field::ActiveAnon,
        Field::InactiveAnon,
        Field::ActiveFile,
        Field::InactiveFile,
        Field::Unevictable,
        Field::Mlocked,
        Field::HighTotal,
        Field::HighFree,
        Field::LowTotal,
        Field::LowFree,
        Field::MmapCopy,
        Field::SwapTotal,
        Field::SwapFree,
        Field::Zswap,
        Field::Zswapped,
        Field::Dirty,
        Field::Writeback,
        Field::AnonPages,
        Field::Mapped,
        Field::Shmem,
        Field::KReclaimable,
        Field::Slab,
        Field::SReclaimable,
        Field::SUnreclaim,
        Field::KernelStack,
        Field::ShadowCallStack,
        Field::PageTables,
        Field::SecPageTables,
        Field::Quicklists,
        Field::NfsUnstable,
        Field::Bounce,
        Field::WritebackTmp,
        Field::CommitLimit,
        Field::CommittedAs,
        Field::VmallocTotal,
        Field::VmallocUsed,
        Field::VmallocChunk,
        Field::Percpu,
        Field::EarlyMemtestBad,
        Field::HardwareCorrupted,
        Field::AnonHugePages,
        Field::ShmemHugePages,
        Field::ShmemPmdMapped,
        Field::FileHugePages,
        Field::FilePmdMapped,
        Field::CmaTotal,
        Field::CmaFree,
        Field::Unaccepted,
        Field::Balloon,
        Field::GpuActive,
        Field::GpuReclaim,
        Field::HugePagesTotal,
        Field::HugePagesFree,
        Field::HugePagesRsvd,
        Field::HugePagesSurp,
        Field::Hugepagesize,
        Field::Hugetlb,
        Field::DirectMap4k,
        Field::DirectMap2M,
        Field::DirectMap4M,
        Field::DirectMap1G,
        Field::DirectMap1M,
        Field::DirectMap2G,
    ];

    /// The kernel's name for the field, e.g. "Active(anon)", "HugePages_Total".
    pub fn name(self) -> &'static str {
        match self {
            Field::MemTotal => "MemTotal",
            Field::MemFree => "MemFree",
            Field::MemAvailable => "MemAvailable",
            Field::Buffers => "Buffers",
            Field::Cached => "Cached",
            Field::SwapCached => "SwapCached",
            Field::Active => "Active",
            Field::Inactive => "Inactive",
            Field::ActiveAnon => "Active(anon)",
            Field::InactiveAnon => "Inactive(anon)",
            Field::ActiveFile => "Active(file)",
            Field::InactiveFile => "Inactive(file)",
            Field::Unevictable => "Unevictable",
            Field::Mlocked => "Mlocked",
            Field::HighTotal => "HighTotal",
            Field::HighFree => "HighFree",
            Field::LowTotal => "LowTotal",
            Field::LowFree => "LowFree",
            Field::MmapCopy => "MmapCopy",
            Field::SwapTotal => "SwapTotal",
            Field::SwapFree => "SwapFree",
            Field::Zswap => "Zswap",
            Field::Zswapped => "Zswapped",
            Field::Dirty => "Dirty",
            Field::Writeback => "Writeback",
            Field::AnonPages => "AnonPages",
            Field::Mapped => "Mapped",
            Field::Shmem => "Shmem",
            Field::KReclaimable => "KReclaimable",
            Field::Slab => "Slab",
            Field::SReclaimable => "SReclaimable",
            Field::SUnreclaim => "SUnreclaim",
            Field::KernelStack => "KernelStack",
            Field::ShadowCallStack => "ShadowCallStack",
            Field::PageTables => "PageTables",
            Field::SecPageTables => "SecPageTables",
            Field::Quicklists => "Quicklists",
            Field::NfsUnstable => "NFS_Unstable",
            Field::Bounce => "Bounce",
            Field::WritebackTmp => "WritebackTmp",
            Field::CommitLimit => "CommitLimit",
            Field::CommittedAs => "Committed_AS",
            Field::VmallocTotal => "VmallocTotal",
            Field::VmallocUsed => "VmallocUsed",
            Field::VmallocChunk => "VmallocChunk",
            Field::Percpu => "Percpu",
            Field::EarlyMemtestBad => "EarlyMemtestBad",
            Field::HardwareCorrupted => "HardwareCorrupted",
            Field::AnonHugePages => "AnonHugePages",
            Field::ShmemHugePages => "ShmemHugePages",
            Field::ShmemPmdMapped => "ShmemPmdMapped",
            Field::FileHugePages => "FileHugePages",
            Field::FilePmdMapped => "FilePmdMapped",
            Field::CmaTotal => "CmaTotal",
            Field::CmaFree => "CmaFree",
            Field::Unaccepted => "Unaccepted",
            Field::Balloon => "Balloon",
            Field::GpuActive => "GPUActive",
            Field::GpuReclaim => "GPUReclaim",
            Field::HugePagesTotal => "HugePages_Total",
            Field::HugePagesFree => "HugePages_Free",
            Field::HugePagesRsvd => "HugePages_Rsvd",
            Field::HugePagesSurp => "HugePages_Surp",
            Field::Hugepagesize => "Hugepagesize",
            Field::Hugetlb => "Hugetlb",
            Field::DirectMap4k => "DirectMap4k",
            Field::DirectMap2M => "DirectMap2M",
            Field::DirectMap4M => "DirectMap4M",
            Field::DirectMap1G => "DirectMap1G",
            Field::DirectMap1M => "DirectMap1M",
            Field::DirectMap2G => "DirectMap2G",
        }
    }

    /// The field the kernel prints as `name` (without the colon); `None` for names we do not know.
    pub fn from_name(name: &[u8]) -> Option<Field> {
        // A linear scan over 71 short names costs well under a microsecond per file; a
        // perfect hash would not pay for its obscurity.
        Field::ALL
            .iter()
            .copied()
            .find(|f| f.name().as_bytes() == name)
    }

    /// True for the HugePages_* counts, which the kernel prints without a unit.
    pub fn is_count(self) -> bool {
        matches!(
            self,
            Field::HugePagesTotal
                | Field::HugePagesFree
                | Field::HugePagesRsvd
                | Field::HugePagesSurp
        )
    }
}

/// Parsed /proc/meminfo: one slot per `Field`, `None` where the kernel printed no such line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemInfo {
    values: [Option<u64>; FIELD_COUNT],
    /// Lines `read` skipped because they could not be parsed (0 on a healthy kernel).
    pub malformed: u32,
    /// Known fields whose line was there but did not parse (bit `Field as usize`).
    bad: u128,
}

const _: () = assert!(FIELD_COUNT <= 128);

impl Default for MemInfo {
    fn default() -> Self {
        MemInfo {
            values: [None; FIELD_COUNT],
            malformed: 0,
            bad: 0,
        }
    }
}

impl MemInfo {
    /// Value of `f` (kB, or a count for HugePages_*), `None` if the kernel has no such line.
    pub fn get(&self, f: Field) -> Option<u64> {
        // `f as usize` < FIELD_COUNT by construction of ALL; `get` keeps it panic-free anyway.
        self.values.get(f as usize).copied().flatten()
    }

    /// True if the kernel printed `f` but its value did not parse (e.g. `MemFree: -5 kB`):
    /// then `get(f)` is None although the field exists, and sums that need it are unknown.
    pub fn is_malformed(&self, f: Field) -> bool {
        self.bad & (1u128 << (f as usize)) != 0
    }

    /// Sets `f` (tests and synthetic snapshots).
    pub fn set(&mut self, f: Field, v: Option<u64>) {
        if let Some(slot) = self.values.get_mut(f as usize) {
            *slot = v;
        }
    }

    /// Parses one "Name:   value kB" line into `self`. Unknown names are Ok and ignored.
    /// Err (with what was wrong) for a line without a colon, or a known field whose value
    /// is not a decimal number, or carries a unit other than "kB".
    pub fn parse_line(&mut self, line: &[u8]) -> Result<(), &'static str> {
        let colon = line
            .iter()
            .position(|&c| c == b':')
            .ok_or("line without ':'")?;
        let (name, rest) = (&line[..colon], &line[colon + 1..]);
        let Some(field) = Field::from_name(name) else {
            return Ok(());
        };
        let mut it = fields(rest);
        let bad = 1u128 << (field as usize);
        let Some(value) = it.next().and_then(parse_dec) else {
            self.bad |= bad;
            self.values[field as usize] = None;
            return Err("value");
        };
        match (it.next(), it.next()) {
            (None, None) => {}
            // The kernel prints "kB" after every value except the HugePages_* counts; we
            // accept either form rather than guess at a unit.
            (Some(b"kB"), None) if !field.is_count() => {}
            _ => {
                self.bad |= bad;
                self.values[field as usize] = None;
                return Err("unit");
            }
        }
        self.values[field as usize] = Some(value);
        Ok(())
    }

    /// Reads a whole meminfo through `buf`, skipping (and counting in `malformed`) lines that
    /// do not parse. Err(Io) if the source cannot be read, Err(Missing("MemTotal")) if no
    /// valid MemTotal line was seen.
    pub fn read<S: Source>(src: S, buf: &mut [u8]) -> Result<MemInfo, ProcError> {
        let mut mi = MemInfo::default();
        let read = read_lines(src, buf, &mut |line| mi.parse_line(line));
        mi.malformed = read.whole_file()?;
        if mi.get(Field::MemTotal).is_none() {
            return Err(ProcError::Missing("MemTotal"));
        }
        Ok(mi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::proc::SliceSource;

    #[test]
    fn names_round_trip_and_are_unique() {
        for (i, f) in Field::ALL.iter().enumerate() {
            assert_eq!(*f as usize, i, "ALL must be in declaration order");
            assert_eq!(Field::from_name(f.name().as_bytes()), Some(*f));
        }
        assert_eq!(Field::ActiveAnon.name(), "Active(anon)");
        assert_eq!(Field::HugePagesTotal.name(), "HugePages_Total");
        assert_eq!(Field::from_name(b"Nonsense"), None);
    }

    #[test]
    fn parse_line_units_and_errors() {
        let mut mi = MemInfo::default();
        assert_eq!(mi.parse_line(b"MemTotal:        3788284 kB"), Ok(()));
        assert_eq!(mi.get(Field::MemTotal), Some(3788284));
        assert_eq!(mi.parse_line(b"HugePages_Total:       7"), Ok(()));
        assert_eq!(mi.get(Field::HugePagesTotal), Some(7));
        assert_eq!(mi.parse_line(b"HardwareCorrupted:     0 kB"), Ok(()));
        assert_eq!(mi.get(Field::HardwareCorrupted), Some(0));
        assert_eq!(mi.parse_line(b"ShadowCallStack:     12 kB"), Ok(()));
        assert_eq!(mi.get(Field::ShadowCallStack), Some(12));
        // Unknown names are ignored even when their value is junk.
        assert_eq!(mi.parse_line(b"FutureThing:   abc MB"), Ok(()));
        assert_eq!(mi.parse_line(b"MemFree:   12x kB"), Err("value"));
        assert_eq!(mi.parse_line(b"MemFree:"), Err("value"));
        assert_eq!(mi.parse_line(b"MemFree:  12 MB"), Err("unit"));
        assert_eq!(mi.parse_line(b"HugePages_Free:  1 kB"), Err("unit"));
        assert_eq!(mi.parse_line(b"MemFree:  12 kB extra"), Err("unit"));
        assert_eq!(
            mi.parse_line(b"MemFree:  99999999999999999999 kB"),
            Err("value")
        );
        assert_eq!(mi.parse_line(b"no colon here"), Err("line without ':'"));
        assert_eq!(mi.get(Field::MemFree), None);
    }

    #[test]
    fn read_requires_memtotal_and_skips_bad_lines() {
        let mut buf = [0u8; 128];
        let got = MemInfo::read(SliceSource::new(b"MemFree: 1 kB\n"), &mut buf[..]);
        assert_eq!(got, Err(ProcError::Missing("MemTotal")));
        let got = MemInfo::read(SliceSource::new(b""), &mut buf[..]);
        assert_eq!(got, Err(ProcError::Missing("MemTotal")));
        let mi = MemInfo::read(
            SliceSource::chunked(b"junk\nMemTotal: 10 kB\nMemFree: x kB\nSlab: 3 kB", 3),
            &mut buf[..],
        )
        .unwrap();
        assert_eq!(mi.get(Field::MemTotal), Some(10));
        assert_eq!(mi.get(Field::MemFree), None);
        assert_eq!(mi.get(Field::Slab), Some(3));
        assert_eq!(mi.malformed, 2);
    }
}
