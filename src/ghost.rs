//! Ghost accounting: MemTotal minus everything meminfo accounts for, kernel-aware.
//!
//! OWNER: parsers. Pure: takes parsed numbers, does no I/O.

use crate::proc::meminfo::MemInfo;

/// Where the vmalloc term came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmallocSource {
    Meminfo,
    Vmallocinfo,
}

impl VmallocSource {
    /// "meminfo" or "vmallocinfo" (contract text).
    pub fn name(self) -> &'static str {
        match self {
            VmallocSource::Meminfo => "meminfo",
            VmallocSource::Vmallocinfo => "vmallocinfo",
        }
    }
}

/// One term of the accounting equation: kernel name and kB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Term {
    pub name: &'static str,
    pub kb: u64,
}

pub const MAX_TERMS: usize = 24;

/// The equation, term by term.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ghost {
    pub mem_total_kb: u64,
    pub accounted_kb: u64,
    /// mem_total_kb - accounted_kb (may be negative on kernels that double count).
    pub ghost_kb: i64,
    pub terms: heapless::Vec<Term, MAX_TERMS>,
    pub vmalloc_source: VmallocSource,
}

/// Computes Ghost. `vmallocinfo_kb` is the vmalloc'd total from /proc/vmallocinfo when it
/// could be read; it replaces VmallocUsed only where VmallocUsed is 0 or absent.
/// Err("MemTotal") if meminfo lacks MemTotal.
pub fn compute(mi: &MemInfo, vmallocinfo_kb: Option<u64>) -> Result<Ghost, &'static str> {
    let _ = (mi, vmallocinfo_kb);
    todo!()
}
