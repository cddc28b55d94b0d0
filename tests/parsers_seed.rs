//! The seed incident (CentOS 7, kernel 3.10): its /proc/meminfo, copied verbatim from the
//! field report, must give the numbers the report computed by hand.

use ghostwatch::ghost::{self, VmallocSource};
use ghostwatch::proc::SliceSource;
use ghostwatch::proc::meminfo::{Field, MemInfo};

const SEED_MEMINFO: &[u8] = include_bytes!("data/kernel/3.10-seed/meminfo");

#[test]
fn seed_ghost_matches_the_field_report() {
    let mut buf = [0u8; 4096];
    let mi = MemInfo::read(SliceSource::new(SEED_MEMINFO), &mut buf).unwrap();
    assert_eq!(mi.malformed, 0);
    assert_eq!(mi.get(Field::MemTotal), Some(3788284));
    let g = ghost::compute(&mi, None).unwrap();
    assert_eq!(g.accounted_kb, 1196832);
    assert_eq!(g.ghost_kb, 2591452);
    assert_eq!(g.vmalloc_source, VmallocSource::Meminfo);
    let names: Vec<&str> = g.terms.iter().map(|t| t.name).collect();
    assert_eq!(
        names,
        [
            "MemFree",
            "Slab",
            "VmallocUsed",
            "PageTables",
            "KernelStack",
            "HardwareCorrupted",
            "Bounce",
            "Active",
            "Inactive",
            "Unevictable",
            "Hugetlb",
        ]
    );
    // vmallocinfo never replaces a non-zero VmallocUsed.
    let g2 = ghost::compute(&mi, Some(1)).unwrap();
    assert_eq!(g2, g);
}
