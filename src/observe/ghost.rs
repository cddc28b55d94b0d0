//! Ghost accounting: MemTotal minus everything /proc/meminfo accounts for, kernel-aware.
//!
//! Pure: takes parsed numbers, does no I/O. Pages the kernel takes straight from the page
//! allocator (`alloc_pages()`, e.g. the packet buffers a NIC driver hands to a socket
//! receive queue) appear in no meminfo category; they are the "Ghost" that remains:
//!
//! ```text
//! Ghost = MemTotal - ( MemFree + Slab + VmallocUsed + PageTables + SecPageTables
//!                      + KernelStack + ShadowCallStack + HardwareCorrupted + Bounce
//!                      + Active + Inactive + Unevictable + Hugetlb + Percpu + Zswap
//!                      + Unaccepted + PcpFree )
//! ```
//!
//! A term counts only when the running kernel prints its field; absent terms are left out of
//! `Ghost::terms` (not reported as 0). The terms, and the kernel that added each:
//!
//! | term | meaning | kernel |
//! |---|---|---|
//! | MemFree | free pages | all |
//! | Slab | slab allocator (SReclaimable + SUnreclaim) | all |
//! | VmallocUsed | vmalloc'd pages; reads 0 on 4.4–5.2, where the sum of `pages=` over `vmalloc` areas in /proc/vmallocinfo replaces it (`vmalloc_source = vmallocinfo`) | all |
//! | PageTables | user page tables | all |
//! | SecPageTables | secondary (KVM/IOMMU) page tables | 6.0 |
//! | KernelStack | kernel thread stacks | 2.6.32 |
//! | ShadowCallStack | arm64 shadow call stacks | 5.8 |
//! | HardwareCorrupted | pages poisoned by memory failure handling | 2.6.32 |
//! | Bounce | bounce buffers | all |
//! | Active, Inactive | the LRU lists: page cache, anonymous memory, shmem/tmpfs | all |
//! | Unevictable | mlocked and other unevictable LRU pages | 2.6.28 |
//! | Hugetlb | huge pages: the `Hugetlb:` line (4.16+, every huge page size), else HugePages_Total × Hugepagesize (default size only) | 4.16 / all |
//! | Percpu | per-CPU allocator chunks | 4.16 |
//! | Zswap | zswap's compressed pool | 5.19 |
//! | Unaccepted | confidential-VM memory not yet accepted | 6.5 |
//! | PcpFree | free pages parked on the per-CPU page lists (/proc/zoneinfo `count:`), which MemFree leaves out; auto-tuned to gigabytes since 6.7 (`Ghost::add_pcp_free`) | all, where zoneinfo is readable |
//!
//! Known limits: with CONFIG_VMAP_STACK (x86-64 since 4.9) kernel stacks are vmalloc'd, so
//! they count in both KernelStack and VmallocUsed and Ghost reads a little low; kernels
//! before 4.16 leave per-CPU chunks out, so Ghost reads a little high there. Neither error is
//! near the gigabytes an unread socket queue pins.

use crate::observe::proc::meminfo::{Field, MemInfo};

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

impl Ghost {
    /// Counts `kb` of free pages on the per-CPU page lists (proc::zoneinfo) as accounted:
    /// they are free memory MemFree does not show. Without this a 6.7+ kernel reads gigabytes
    /// of Ghost on a healthy box right after a big free (measured: Ghost - pcp ≈ 30 MB of 2 GB).
    pub fn add_pcp_free(&mut self, kb: u64) {
        if self
            .terms
            .push(Term {
                name: "PcpFree",
                kb,
            })
            .is_ok()
        {
            self.accounted_kb = self.accounted_kb.saturating_add(kb);
            let ghost = self.mem_total_kb as i128 - self.accounted_kb as i128;
            self.ghost_kb = ghost.clamp(i64::MIN as i128, i64::MAX as i128) as i64;
        }
    }

    /// kB of the term named `name` (kernel spelling, e.g. "Slab"), `None` if it was not counted.
    pub fn term(&self, name: &str) -> Option<u64> {
        self.terms.iter().find(|t| t.name == name).map(|t| t.kb)
    }
}

/// The plain meminfo fields that are terms, in equation order (VmallocUsed and Hugetlb are
/// special-cased in `compute` and slotted in at their places).
const BEFORE_VMALLOC: [Field; 2] = [Field::MemFree, Field::Slab];
const AFTER_VMALLOC: [Field; 9] = [
    Field::PageTables,
    Field::SecPageTables,
    Field::KernelStack,
    Field::ShadowCallStack,
    Field::HardwareCorrupted,
    Field::Bounce,
    Field::Active,
    Field::Inactive,
    Field::Unevictable,
];
const AFTER_HUGETLB: [Field; 3] = [Field::Percpu, Field::Zswap, Field::Unaccepted];

/// Why Ghost cannot be computed from a meminfo.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GhostError {
    /// No line for this field (only MemTotal is required).
    Missing(&'static str),
    /// The kernel printed this equation term but its value did not parse (e.g. `-5 kB`):
    /// leaving it out would inflate Ghost, so Ghost is unknown instead.
    Malformed(&'static str),
}

impl core::fmt::Display for GhostError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            GhostError::Missing(w) => write!(f, "no {w} line"),
            GhostError::Malformed(w) => {
                write!(f, "malformed {w} line, so Ghost is unknown")
            }
        }
    }
}

/// Every meminfo field the equation reads: MemTotal and the terms above, with VmallocUsed and
/// Hugetlb's fallback (HugePages_Total x Hugepagesize) at their places.
fn inputs() -> impl Iterator<Item = Field> {
    [Field::MemTotal]
        .into_iter()
        .chain(BEFORE_VMALLOC)
        .chain([Field::VmallocUsed])
        .chain(AFTER_VMALLOC)
        .chain([Field::Hugetlb, Field::HugePagesTotal, Field::Hugepagesize])
        .chain(AFTER_HUGETLB)
}

/// Computes Ghost. `vmallocinfo_kb` is the vmalloc'd total from /proc/vmallocinfo when it
/// could be read; it replaces VmallocUsed only where VmallocUsed is 0 or absent.
/// Err(Missing("MemTotal")) if meminfo lacks MemTotal; Err(Malformed(name)) if a line the
/// equation reads was printed but did not parse (a term silently dropped would be worse).
pub fn compute(mi: &MemInfo, vmallocinfo_kb: Option<u64>) -> Result<Ghost, GhostError> {
    if let Some(f) = inputs().find(|&f| mi.is_malformed(f)) {
        return Err(GhostError::Malformed(f.name()));
    }
    let mem_total_kb = mi
        .get(Field::MemTotal)
        .ok_or(GhostError::Missing("MemTotal"))?;
    let mut terms: heapless::Vec<Term, MAX_TERMS> = heapless::Vec::new();
    // 16 terms at most, MAX_TERMS is 24: the push cannot fail, and if it ever did we would
    // rather drop a term than panic.
    let mut add = |name: &'static str, kb: u64| {
        let _ = terms.push(Term { name, kb });
    };

    for f in BEFORE_VMALLOC {
        if let Some(kb) = mi.get(f) {
            add(f.name(), kb);
        }
    }

    let mut vmalloc_source = VmallocSource::Meminfo;
    match (mi.get(Field::VmallocUsed), vmallocinfo_kb) {
        (Some(kb), _) if kb > 0 => add(Field::VmallocUsed.name(), kb),
        // 4.4–5.2 print VmallocUsed as 0 (and a stripped-down kernel may omit it): the
        // vmallocinfo sum is the only number we have for what vmalloc holds.
        (_, Some(kb)) if kb > 0 => {
            add(Field::VmallocUsed.name(), kb);
            vmalloc_source = VmallocSource::Vmallocinfo;
        }
        (Some(kb), _) => add(Field::VmallocUsed.name(), kb),
        (None, _) => {}
    }

    for f in AFTER_VMALLOC {
        if let Some(kb) = mi.get(f) {
            add(f.name(), kb);
        }
    }

    // Hugetlb (4.16+) covers every huge page size; older kernels only show the default pool.
    let hugetlb = mi.get(Field::Hugetlb).or_else(|| {
        let n = mi.get(Field::HugePagesTotal)?;
        let size = mi.get(Field::Hugepagesize)?;
        Some(n.saturating_mul(size))
    });
    if let Some(kb) = hugetlb {
        add(Field::Hugetlb.name(), kb);
    }

    for f in AFTER_HUGETLB {
        if let Some(kb) = mi.get(f) {
            add(f.name(), kb);
        }
    }

    let accounted_kb = terms.iter().fold(0u64, |a, t| a.saturating_add(t.kb));
    let ghost = mem_total_kb as i128 - accounted_kb as i128;
    let ghost_kb = ghost.clamp(i64::MIN as i128, i64::MAX as i128) as i64;
    Ok(Ghost {
        mem_total_kb,
        accounted_kb,
        ghost_kb,
        terms,
        vmalloc_source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mi(pairs: &[(Field, u64)]) -> MemInfo {
        let mut m = MemInfo::default();
        for &(f, v) in pairs {
            m.set(f, Some(v));
        }
        m
    }

    #[test]
    fn missing_memtotal_is_an_error() {
        assert_eq!(
            compute(&MemInfo::default(), None),
            Err(GhostError::Missing("MemTotal"))
        );
    }

    #[test]
    fn pcp_free_is_accounted() {
        let mut g = compute(&mi(&[(Field::MemTotal, 100), (Field::MemFree, 40)]), None).unwrap();
        g.add_pcp_free(50);
        assert_eq!(g.term("PcpFree"), Some(50));
        assert_eq!((g.accounted_kb, g.ghost_kb), (90, 10));
    }

    #[test]
    fn absent_terms_are_left_out() {
        let g = compute(&mi(&[(Field::MemTotal, 100), (Field::MemFree, 40)]), None).unwrap();
        assert_eq!(g.terms.len(), 1);
        assert_eq!(g.accounted_kb, 40);
        assert_eq!(g.ghost_kb, 60);
        assert_eq!(g.term("Percpu"), None);
    }

    #[test]
    fn vmalloc_fallback_only_when_meminfo_reads_zero() {
        let base = [(Field::MemTotal, 1000), (Field::VmallocUsed, 0)];
        let g = compute(&mi(&base), Some(300)).unwrap();
        assert_eq!(g.term("VmallocUsed"), Some(300));
        assert_eq!(g.vmalloc_source, VmallocSource::Vmallocinfo);
        let g = compute(&mi(&base), Some(0)).unwrap();
        assert_eq!(g.term("VmallocUsed"), Some(0));
        assert_eq!(g.vmalloc_source, VmallocSource::Meminfo);
        let g = compute(&mi(&base), None).unwrap();
        assert_eq!(g.vmalloc_source, VmallocSource::Meminfo);
        // Absent VmallocUsed: vmallocinfo fills in; without it there is no term at all.
        let g = compute(&mi(&[(Field::MemTotal, 1000)]), Some(5)).unwrap();
        assert_eq!(g.term("VmallocUsed"), Some(5));
        let g = compute(&mi(&[(Field::MemTotal, 1000)]), None).unwrap();
        assert_eq!(g.term("VmallocUsed"), None);
        // A non-zero meminfo value wins over vmallocinfo.
        let g = compute(
            &mi(&[(Field::MemTotal, 1000), (Field::VmallocUsed, 7)]),
            Some(9),
        );
        let g = g.unwrap();
        assert_eq!(g.term("VmallocUsed"), Some(7));
        assert_eq!(g.vmalloc_source, VmallocSource::Meminfo);
    }

    #[test]
    fn hugetlb_line_wins_over_default_pool() {
        let old = [
            (Field::MemTotal, 100_000),
            (Field::HugePagesTotal, 3),
            (Field::Hugepagesize, 2048),
        ];
        assert_eq!(
            compute(&mi(&old), None).unwrap().term("Hugetlb"),
            Some(6144)
        );
        let mut new = mi(&old);
        new.set(Field::Hugetlb, Some(1_054_720));
        assert_eq!(
            compute(&new, None).unwrap().term("Hugetlb"),
            Some(1_054_720)
        );
    }

    #[test]
    fn overflow_saturates_and_ghost_can_go_negative() {
        let g = compute(
            &mi(&[
                (Field::MemTotal, 10),
                (Field::MemFree, u64::MAX),
                (Field::Slab, u64::MAX),
                (Field::HugePagesTotal, u64::MAX),
                (Field::Hugepagesize, u64::MAX),
            ]),
            None,
        )
        .unwrap();
        assert_eq!(g.accounted_kb, u64::MAX);
        assert!(g.ghost_kb < 0);
    }

    #[test]
    fn a_malformed_term_makes_ghost_unknown_not_inflated() {
        let mut m = MemInfo::default();
        for line in [
            "MemTotal: 3788284 kB",
            "MemFree: -5 kB",
            "Slab: 1000 kB",
            "Bogus: x kB",
        ] {
            let _ = m.parse_line(line.as_bytes());
        }
        assert_eq!(compute(&m, None), Err(GhostError::Malformed("MemFree")));
        assert_eq!(
            compute(&m, None).unwrap_err().to_string(),
            "malformed MemFree line, so Ghost is unknown"
        );
        // An unknown field's garbage does not matter; a unit the kernel never prints does.
        let mut m = MemInfo::default();
        for line in ["MemTotal: 100 kB", "Bogus: x kB", "Slab: 10 MB"] {
            let _ = m.parse_line(line.as_bytes());
        }
        assert_eq!(compute(&m, None), Err(GhostError::Malformed("Slab")));
        let mut m = MemInfo::default();
        let _ = m.parse_line(b"MemTotal: 100 kB");
        let _ = m.parse_line(b"Bogus: x kB");
        assert_eq!(compute(&m, None).map(|g| g.ghost_kb), Ok(100));
    }
}
