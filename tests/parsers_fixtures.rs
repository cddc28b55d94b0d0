//! Parsers against real /proc text from kernels 3.10 to 6.18 (tests/data/kernel/*/, see its
//! README for where each sample comes from).

use ghostwatch::observe::ghost::{self, VmallocSource};
use ghostwatch::observe::proc::meminfo::{Field, MemInfo};
use ghostwatch::observe::proc::net::{self, Endpoint, ProcNet, Proto, SocketEntry, SocketSource};
use ghostwatch::observe::proc::sockstat::SockStat;
use ghostwatch::observe::proc::vmallocinfo::VmallocSummary;
use ghostwatch::observe::proc::zoneinfo::PcpSummary;
use ghostwatch::observe::proc::{ProcError, ProcRoot, SliceSource};
use std::path::{Path, PathBuf};

fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/kernel")
        .join(rel)
}

fn meminfo(version: &str) -> MemInfo {
    let text = std::fs::read(data(version).join("meminfo")).unwrap();
    let mut buf = [0u8; 4096];
    let mi = MemInfo::read(SliceSource::chunked(&text, 61), &mut buf).unwrap();
    assert_eq!(mi.malformed, 0, "{version}: every real line must parse");
    mi
}

/// Every socket of one table, read from a fixture tree through `ProcNet`. A big-endian kernel
/// prints addresses byte-swapped: big-endian targets read tests/data/kernel-be/, derived from
/// these samples by tests/fixtures/make_big_endian.py.
fn table(version: &str, proto: Proto) -> (Vec<SocketEntry>, net::TableStats) {
    let dir = if cfg!(target_endian = "big") {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/kernel-be")
            .join(version)
    } else {
        data(version)
    };
    let root = ProcRoot::new(dir.to_str().unwrap().as_bytes()).unwrap();
    let mut buf = [0u8; 4096];
    let mut src = ProcNet {
        root: &root,
        buf: &mut buf,
    };
    let mut out = Vec::new();
    let stats = src.for_each(proto, &mut |e| out.push(*e));
    (out, stats)
}

#[test]
fn meminfo_3_10_seed() {
    let mi = meminfo("3.10-seed");
    assert_eq!(mi.get(Field::MemAvailable), Some(38224)); // RHEL 7 backport
    assert_eq!(mi.get(Field::Percpu), None);
    assert_eq!(mi.get(Field::Hugetlb), None);
    assert_eq!(mi.get(Field::ActiveAnon), Some(137388));
    assert_eq!(mi.get(Field::CommittedAs), Some(454600));
    assert_eq!(mi.get(Field::VmallocChunk), Some(34358947836));
    let g = ghost::compute(&mi, None).unwrap();
    assert_eq!((g.ghost_kb, g.accounted_kb), (2591452, 1196832));
    // The field report's numbers, worked by hand there (formerly parsers_seed.rs).
    assert_eq!(mi.get(Field::MemTotal), Some(3788284));
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

#[test]
fn meminfo_4_8_to_4_15_vmallocused_zero_era() {
    let mi = meminfo("4.8-4.15-x86");
    assert_eq!(mi.get(Field::ShmemHugePages), Some(0));
    assert_eq!(mi.get(Field::Percpu), None);
    assert_eq!(mi.get(Field::VmallocUsed), Some(0));
    let g = ghost::compute(&mi, None).unwrap();
    assert_eq!(g.ghost_kb, 87300);
    assert_eq!(g.vmalloc_source, VmallocSource::Meminfo);
    // Where VmallocUsed reads 0, the vmallocinfo sum stands in for it.
    let g2 = ghost::compute(&mi, Some(20_000)).unwrap();
    assert_eq!(g2.ghost_kb, 87300 - 20_000);
    assert_eq!(g2.term("VmallocUsed"), Some(20_000));
    assert_eq!(g2.vmalloc_source, VmallocSource::Vmallocinfo);
}

#[test]
fn meminfo_4_16_to_4_19_arm64_hugetlb_and_percpu() {
    let mi = meminfo("4.16-4.19-arm64");
    assert_eq!(mi.get(Field::HugePagesTotal), Some(6));
    assert_eq!(mi.get(Field::Hugetlb), Some(12288));
    assert_eq!(mi.get(Field::KReclaimable), None);
    assert_eq!(mi.get(Field::CmaTotal), Some(262144));
    assert_eq!(mi.get(Field::VmallocTotal), Some(135290290112));
    let g = ghost::compute(&mi, None).unwrap();
    assert_eq!(g.term("Hugetlb"), Some(12288));
    assert_eq!(g.term("Percpu"), Some(7232));
    assert_eq!(g.term("SecPageTables"), None);
    assert_eq!(g.ghost_kb, 1985540);
}

#[test]
fn meminfo_6_18_live_has_every_modern_term() {
    let mi = meminfo("6.18-live");
    for f in [
        Field::Zswap,
        Field::Zswapped,
        Field::KReclaimable,
        Field::SecPageTables,
        Field::Percpu,
        Field::FileHugePages,
        Field::Balloon,
        Field::Hugetlb,
        Field::DirectMap1G,
    ] {
        assert!(mi.get(f).is_some(), "{}", f.name());
    }
    let g = ghost::compute(&mi, None).unwrap();
    let names: Vec<&str> = g.terms.iter().map(|t| t.name).collect();
    assert_eq!(
        names,
        [
            "MemFree",
            "Slab",
            "VmallocUsed",
            "PageTables",
            "SecPageTables",
            "KernelStack",
            "Bounce",
            "Active",
            "Inactive",
            "Unevictable",
            "Hugetlb",
            "Percpu",
            "Zswap",
        ]
    );
    let sum: u64 = g.terms.iter().map(|t| t.kb).sum();
    assert_eq!(g.accounted_kb, sum);
    assert_eq!(g.ghost_kb, g.mem_total_kb as i64 - sum as i64);
    assert!(g.ghost_kb > 0);
}

#[test]
fn net_6_18_live_tables() {
    for p in Proto::ALL {
        let (_, st) = table("6.18-live", p);
        assert_eq!(st.malformed, 0, "{}", p.name());
        assert_eq!(st.first_error, None, "{}", p.name());
    }
    let (unix, _) = table("6.18-live", Proto::Unix);
    assert_eq!(unix.len(), 17);
    let shown = |ino: u64| {
        unix.iter()
            .find(|e| e.inode == ino)
            .unwrap()
            .local
            .to_string()
    };
    assert_eq!(shown(395014), "/tmp/gw corpus.sock"); // a path with a space
    assert_eq!(shown(395013), "@gw-abstract@x"); // abstract, NULs shown as @
    assert_eq!(shown(1660), "*"); // unbound, inode right-aligned
    let (udp, _) = table("6.18-live", Proto::Udp);
    assert_eq!(udp.len(), 2);
    let queued = udp.iter().find(|e| e.inode == 39587).unwrap();
    assert_eq!(queued.local.to_string(), "127.0.0.1:35353");
    assert_eq!(queued.remote.to_string(), "0.0.0.0:0");
    assert_eq!((queued.rx_queue, queued.state), (3 * 0x900, 7));

    let (raw6, _) = table("6.18-live", Proto::Raw6);
    assert_eq!(raw6[0].local.to_string(), ":::58");

    let (tcp, _) = table("6.18-live", Proto::Tcp);
    assert_eq!(tcp.len(), 6);
    // Time-wait lines are shorter and carry inode 0; they still parse.
    assert_eq!(tcp.iter().filter(|e| e.state == 6).count(), 2);
    let est = tcp.iter().find(|e| e.inode == 39592).unwrap();
    assert_eq!((est.rx_queue, est.state, est.drops), (5, 1, 0));
    assert_eq!(est.local.to_string(), "127.0.0.1:34019");

    let (ul6, _) = table("6.18-live", Proto::UdpLite6);
    assert_eq!(ul6[0].local.to_string(), "::1:59036");

    let (pk, _) = table("6.18-live", Proto::Packet);
    assert_eq!(
        pk[0].local,
        Endpoint::Packet {
            ptype: 3,
            proto: 3,
            ifindex: 1
        }
    );
    assert_eq!(pk[0].local.to_string(), "packet:0003:1");
    assert_eq!(pk[0].inode, 39598);

    let (nl, _) = table("6.18-live", Proto::Netlink);
    assert_eq!(nl.len(), 10);
    assert!(
        nl.iter()
            .all(|e| matches!(e.local, Endpoint::Netlink { .. }))
    );
}

#[test]
fn net_3_10_netlink_with_pointer_dump_column() {
    let (nl, st) = table("3.10-seed", Proto::Netlink);
    assert_eq!((st.sockets, st.malformed), (3, 0));
    assert_eq!(nl[0].local.to_string(), "netlink:0:4196011");
    assert_eq!(nl[0].inode, 11034);
    // A table this tree lacks is reported, not fatal.
    let (none, st) = table("3.10-seed", Proto::Udp);
    assert!(none.is_empty());
    assert_eq!(st.first_error, Some(ProcError::Io(libc::ENOENT)));
}

#[test]
fn sockstat_and_vmallocinfo_6_18() {
    let text = std::fs::read(data("6.18-live/net/sockstat")).unwrap();
    let mut buf = [0u8; 4096];
    let s = SockStat::read(SliceSource::new(&text), &mut buf).unwrap();
    assert!(s.sockets_used.is_some() && s.tcp_mem_pages.is_some());
    assert!(s.udp_mem_pages.is_some() && s.frag_memory.is_some());

    let text = std::fs::read(data("6.18-live/vmallocinfo")).unwrap();
    let v = VmallocSummary::read(SliceSource::chunked(&text, 100), &mut buf).unwrap();
    assert_eq!(v.malformed, 0);
    let want: u64 = text
        .split(|&c| c == b'\n')
        .filter(|l| l.split(|&c| c == b' ').any(|w| w == b"vmalloc"))
        .map(|l| {
            let s = std::str::from_utf8(l).unwrap();
            let p = s
                .split_whitespace()
                .find(|w| w.starts_with("pages="))
                .unwrap();
            p[6..].parse::<u64>().unwrap()
        })
        .sum();
    assert!(want > 0);
    assert_eq!(v.vmalloc_pages, want);
}

#[test]
fn debian_6_1_booted_under_qemu() {
    let mi = meminfo("6.1-qemu");
    assert_eq!(mi.get(Field::Balloon), None); // newer than 6.1
    assert_eq!(mi.get(Field::SecPageTables), Some(0));
    let g = ghost::compute(&mi, None).unwrap();
    assert_eq!(
        (g.mem_total_kb, g.accounted_kb, g.ghost_kb),
        (210752, 207856, 2896)
    );

    // That capture predates unix support: it has no net/unix.
    for p in Proto::ALL.into_iter().filter(|&p| p != Proto::Unix) {
        let (_, st) = table("6.1-qemu", p);
        assert_eq!((st.malformed, st.first_error), (0, None), "{}", p.name());
    }
    let (tcp6, _) = table("6.1-qemu", Proto::Tcp6);
    assert_eq!(tcp6[0].local.to_string(), "::ffff:127.0.0.1:8080");
    assert_eq!(tcp6[0].remote.to_string(), "::ffff:127.0.0.1:49300");
    let (tcp, _) = table("6.1-qemu", Proto::Tcp);
    assert_eq!(tcp[0].local.to_string(), "127.0.0.1:49300");
    let (raw6, _) = table("6.1-qemu", Proto::Raw6);
    assert_eq!(
        (raw6[0].local.to_string(), raw6[0].inode),
        (":::58".into(), 9927)
    );
    // Early in boot %pK prints "(____ptrval____)": the sk column must not be required to be hex.
    let (nl, _) = table("6.1-qemu", Proto::Netlink);
    assert_eq!(nl.len(), 8);
    let (pk, _) = table("6.1-qemu", Proto::Packet);
    assert_eq!(pk[0].local.to_string(), "packet:0800:1");

    let text = std::fs::read(data("6.1-qemu/vmallocinfo")).unwrap();
    let mut buf = [0u8; 4096];
    let v = VmallocSummary::read(SliceSource::new(&text), &mut buf).unwrap();
    assert_eq!(v.malformed, 0);
    assert!(v.vmalloc_areas > 0);
    let text = std::fs::read(data("6.1-qemu/net/sockstat")).unwrap();
    let s = SockStat::read(SliceSource::new(&text), &mut buf).unwrap();
    assert!(s.sockets_used.is_some() && s.tcp_inuse.is_some());
}

/// Debian 11's 5.10 (the kernel of OpenWrt 22.03), booted as the router-in-a-box guest
/// `x86_64-5.10` with `gwvm.dump=1`: the leaky daemon's UDP socket, the agent's netlink
/// sockets and syslogd's /dev/log open (see tests/data/kernel/README.md).
#[test]
fn debian_11_5_10_booted_under_qemu() {
    let mi = meminfo("5.10-qemu");
    assert_eq!(mi.get(Field::SecPageTables), None); // 6.0+
    assert!(mi.get(Field::KReclaimable).is_some()); // 4.20+
    let g = ghost::compute(&mi, None).unwrap();
    assert_eq!(
        (g.mem_total_kb, g.accounted_kb, g.ghost_kb),
        (214712, 213468, 1244)
    );

    // The capture has no udplite tables (the guest's dump list lacked them then).
    for p in Proto::ALL
        .into_iter()
        .filter(|&p| p != Proto::UdpLite && p != Proto::UdpLite6)
    {
        let (_, st) = table("5.10-qemu", p);
        assert_eq!((st.malformed, st.first_error), (0, None), "{}", p.name());
    }
    let (udp, _) = table("5.10-qemu", Proto::Udp);
    assert_eq!(
        (udp[0].local.to_string(), udp[0].inode),
        ("127.0.0.1:7777".into(), 8304)
    );
    let (unix, _) = table("5.10-qemu", Proto::Unix);
    assert!(
        unix.iter()
            .any(|e| e.local.to_string().contains("/dev/log"))
    );
    let (nl, _) = table("5.10-qemu", Proto::Netlink);
    assert_eq!(nl.len(), 9);

    let mut buf = [0u8; 4096];
    let text = std::fs::read(data("5.10-qemu/vmallocinfo")).unwrap();
    let v = VmallocSummary::read(SliceSource::new(&text), &mut buf).unwrap();
    assert_eq!(v.malformed, 0);
    assert!(v.vmalloc_areas > 0);
    let text = std::fs::read(data("5.10-qemu/zoneinfo")).unwrap();
    let z = PcpSummary::read(SliceSource::new(&text), &mut buf).unwrap();
    assert_eq!(z.malformed, 0);
    assert!(z.lists > 0 && z.pages > 0);
    let text = std::fs::read(data("5.10-qemu/net/sockstat")).unwrap();
    let s = SockStat::read(SliceSource::new(&text), &mut buf).unwrap();
    assert!(s.sockets_used.is_some() && s.tcp_inuse.is_some());
}

/// tests/data/kernel-be/ must stay a complete copy of every net/ sample: a sample added
/// without its derived big-endian twin fails here on every target, not only on mips.
/// (Regenerate with tests/fixtures/make_big_endian.py, see tests/data/kernel-be/README.md.)
#[test]
fn big_endian_copies_cover_every_net_sample() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    for dir in std::fs::read_dir(root.join("kernel")).unwrap() {
        let net = dir.unwrap().path().join("net");
        let Ok(files) = std::fs::read_dir(&net) else {
            continue;
        };
        for f in files {
            let f = f.unwrap().path();
            let rel = f.strip_prefix(root.join("kernel")).unwrap();
            let twin = root.join("kernel-be").join(rel);
            let (le, be) = (std::fs::read(&f).unwrap(), std::fs::read(&twin));
            let be = be.unwrap_or_else(|e| panic!("{}: {e}", twin.display()));
            assert_eq!(le.len(), be.len(), "{}", twin.display());
        }
    }
}
