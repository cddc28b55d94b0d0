//! The parsers against the running kernel: a UDP socket this test opens on 127.0.0.1 must
//! show up in the live /proc/net/udp, read through `ProcNet`, with its inode, port and queue.

use ghostwatch::observe::ghost;
use ghostwatch::observe::proc::ProcRoot;
use ghostwatch::observe::proc::meminfo::MemInfo;
use ghostwatch::observe::proc::net::{Endpoint, ProcNet, Proto, SocketSource};
use ghostwatch::observe::proc::vmallocinfo::VmallocSummary;
use std::net::UdpSocket;
use std::os::fd::AsRawFd;

fn inode_of(sock: &UdpSocket) -> u64 {
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: valid fd and out-pointer.
    let rc = unsafe { libc::fstat(sock.as_raw_fd(), &mut st) };
    assert_eq!(rc, 0);
    st.st_ino as u64
}

#[test]
fn finds_own_udp_socket_with_queue() {
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = rx.local_addr().unwrap().port();
    for _ in 0..4 {
        tx.send_to(&[7u8; 1000], rx.local_addr().unwrap()).unwrap();
    }
    let inode = inode_of(&rx);

    let root = ProcRoot::live();
    let mut buf = [0u8; 4096];
    let mut src = ProcNet {
        root: &root,
        buf: &mut buf,
    };
    let mut found = None;
    let st = src.for_each(Proto::Udp, &mut |e| {
        if e.inode == inode {
            found = Some(*e);
        }
    });
    assert_eq!(st.malformed, 0);
    let e = found.expect("own socket in /proc/net/udp");
    match e.local {
        Endpoint::Inet {
            ip,
            v6: false,
            port: p,
        } => {
            assert_eq!(&ip[..4], &[127, 0, 0, 1]);
            assert_eq!(p, port);
        }
        other => panic!("unexpected endpoint {other:?}"),
    }
    assert_eq!(e.local.to_string(), format!("127.0.0.1:{port}"));
    // Four unread datagrams: the queue counts their truesize, so at least 4000 bytes.
    assert!(e.rx_queue >= 4000, "rx_queue {}", e.rx_queue);
    assert_eq!(e.uid, unsafe { libc::geteuid() });

    // Every live table parses without a malformed line.
    for p in Proto::ALL {
        let st = src.for_each(p, &mut |_| {});
        assert_eq!(st.malformed, 0, "{}", p.name());
    }
}

#[test]
fn live_meminfo_and_ghost() {
    let root = ProcRoot::live();
    let mut buf = [0u8; 4096];
    let fd = root.open(b"meminfo").unwrap();
    let mi = MemInfo::read(&fd, &mut buf).unwrap();
    assert_eq!(mi.malformed, 0, "this kernel prints a line we cannot parse");
    // vmallocinfo is root-only on most kernels; without it Ghost still computes.
    let vm = root
        .open(b"vmallocinfo")
        .ok()
        .and_then(|fd| VmallocSummary::read(&fd, &mut buf).ok())
        .map(|v| v.vmalloc_kb(4096));
    let g = ghost::compute(&mi, vm).unwrap();
    assert!(g.accounted_kb > 0 && g.accounted_kb <= g.mem_total_kb * 2);
}
