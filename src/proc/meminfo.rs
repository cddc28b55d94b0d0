//! /proc/meminfo: every field of kernels 3.10 through 6.x, by name, in kB (HugePages_* are counts).
//!
//! OWNER: parsers. Unknown fields are ignored; absent ones read as `None`.

use super::{LineReader, ProcError, Source};

/// Every meminfo field ghostwatch knows. `name()` is the kernel's spelling.
/// (Filled in by the parsers work: list each field with the kernel that added it.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Field {
    MemTotal,
    MemFree,
    MemAvailable,
    Buffers,
    Cached,
    Active,
    Inactive,
    Unevictable,
    Shmem,
    Slab,
    SReclaimable,
    KernelStack,
    PageTables,
    VmallocUsed,
    HardwareCorrupted,
    Bounce,
    HugePagesTotal,
    Hugepagesize,
}

impl Field {
    /// The kernel's name for the field, e.g. "Active(anon)", "HugePages_Total".
    pub fn name(self) -> &'static str {
        todo!()
    }
}

/// Parsed /proc/meminfo.
#[derive(Clone, Debug, Default)]
pub struct MemInfo {}

impl MemInfo {
    /// Value of `f` (kB, or a count for HugePages_*), `None` if the kernel has no such line.
    pub fn get(&self, f: Field) -> Option<u64> {
        let _ = f;
        todo!()
    }

    /// Parses one "Name:   value kB" line into `self`. Unknown names are Ok and ignored.
    pub fn parse_line(&mut self, line: &[u8]) -> Result<(), &'static str> {
        let _ = line;
        todo!()
    }

    /// Reads a whole meminfo through `buf`. Err(Missing("MemTotal")) if MemTotal is absent.
    pub fn read<S: Source>(src: S, buf: &mut [u8]) -> Result<MemInfo, ProcError> {
        let _ = LineReader::new(src, buf);
        todo!()
    }
}
