//! Proof that the /proc readers never allocate: a counting global allocator counts the heap
//! calls made by this thread while the live tables (with 1 000+ extra UDP sockets open, so there
//! are many lines), meminfo, vmallocinfo, zoneinfo, sockstat, every PID's status and a full owners walk
//! are streamed through the library API, and an owners walk cut into slices inside a process
//! (the agent's budgeted walk). The count must be zero.
//!
//! Only Rust's allocator is seen: glibc's opendir() buffer is malloc'd by libc itself, once per
//! directory, not per entry (that is sys::Dir's documented cost).

mod support;

use ghostwatch::observe::ghost;
use ghostwatch::observe::owners::{self, Owners, WalkMode};
use ghostwatch::observe::proc::meminfo::MemInfo;
use ghostwatch::observe::proc::net::{ProcNet, Proto, SocketSource};
use ghostwatch::observe::proc::sockstat::SockStat;
use ghostwatch::observe::proc::vmallocinfo::VmallocSummary;
use ghostwatch::observe::proc::zoneinfo::PcpSummary;
use ghostwatch::observe::proc::{ProcRoot, pid};
use std::os::unix::io::AsRawFd;
use std::os::unix::process::CommandExt;
use support::require_root;

#[path = "support/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::count;

const EXTRA_SOCKETS: usize = 1_000;
/// Children holding one shared socket: more than an owner list holds, so the walk counts.
const SHARERS: usize = 20;

/// The report's bound: owners of up to MAX_TOP sockets.
type ReportOwners = Owners<{ ghostwatch::report::MAX_TOP }>;

/// `sleep` children that inherited a copy of one socket; killed and reaped on drop.
struct Sharers(Vec<std::process::Child>);

impl Sharers {
    fn spawn(fd: i32, n: usize) -> Sharers {
        Sharers(
            (0..n)
                .map(|_| {
                    let mut cmd = std::process::Command::new("sleep");
                    cmd.arg("60");
                    // SAFETY: dup2 is async-signal-safe; the copy (fd 9) survives exec.
                    unsafe {
                        cmd.pre_exec(move || match libc::dup2(fd, 9) {
                            -1 => Err(std::io::Error::last_os_error()),
                            _ => Ok(()),
                        });
                    }
                    cmd.spawn().expect("spawn sleep")
                })
                .collect(),
        )
    }
}

impl Drop for Sharers {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn inode_of(fd: i32) -> u64 {
    // SAFETY: st is a valid out-pointer.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    assert_eq!(unsafe { libc::fstat(fd, &mut st) }, 0);
    st.st_ino
}

/// What one pass over everything saw, so the test can check the readers really read.
#[derive(Default, Debug)]
struct Seen {
    sockets: [u32; Proto::COUNT],
    ours_in_udp: u32,
    malformed: u32,
    mem_total_kb: u64,
    ghost_kb: i64,
    vmalloc_areas: u32,
    udp_inuse: u64,
    pids: u32,
    rss_total_kb: u64,
    owners_found: usize,
}

/// Streams every reader once through fixed buffers. No allocation may happen in here.
fn read_everything(root: &ProcRoot, ours: &[u64], owned: &mut ReportOwners) -> Seen {
    let mut seen = Seen::default();
    let mut buf = [0u8; 4096];

    let mut net = ProcNet {
        root,
        buf: &mut buf,
    };
    for (i, proto) in Proto::ALL.into_iter().enumerate() {
        let st = net.for_each(proto, &mut |s| {
            if proto == Proto::Udp && ours.contains(&s.inode) {
                seen.ours_in_udp += 1;
            }
        });
        seen.sockets[i] = st.sockets;
        seen.malformed += st.malformed;
    }

    let mi = root
        .open(b"meminfo")
        .map_err(|_| ())
        .and_then(|fd| MemInfo::read(&fd, &mut buf).map_err(|_| ()));
    let vm = root
        .open(b"vmallocinfo")
        .ok()
        .and_then(|fd| VmallocSummary::read(&fd, &mut buf).ok());
    if let Some(v) = vm {
        seen.vmalloc_areas = v.vmalloc_areas;
    }
    if let Ok(mi) = mi {
        if let Ok(mut g) = ghost::compute(&mi, vm.map(|v| v.vmalloc_kb(4096))) {
            if let Ok(pcp) = root
                .open(b"zoneinfo")
                .map_err(|_| ())
                .and_then(|fd| PcpSummary::read(&fd, &mut buf).map_err(|_| ()))
            {
                g.add_pcp_free(pcp.free_kb(4096));
            }
            seen.mem_total_kb = g.mem_total_kb;
            seen.ghost_kb = g.ghost_kb;
        }
    }
    if let Ok(fd) = root.open(b"net/sockstat") {
        if let Ok(s) = SockStat::read(&fd, &mut buf) {
            seen.udp_inuse = s.udp_inuse.unwrap_or(0);
        }
    }

    // Every process's status (the report's RSS total), then the owners of our sockets.
    let _ = pid::for_each_pid(root, &mut |p| {
        seen.pids += 1;
        if let Ok(st) = pid::read_status(root, p, &mut buf) {
            seen.rss_total_kb += st.vm_rss_kb.unwrap_or(0);
        }
    });
    owners::find_owners(root, ours, WalkMode::AllOwners, owned);
    seen.owners_found = ours
        .iter()
        .filter(|&&i| owned.of(i).next().is_some())
        .count();
    seen
}

#[test]
fn readers_and_owner_walk_do_not_allocate_on_the_live_proc() {
    if !require_root("vmallocinfo and every process's fds") {
        return;
    }
    // Raise the fd limit for the extra sockets (the hard limit here is 20 000).
    // SAFETY: rl is a valid in/out struct.
    unsafe {
        let mut rl: libc::rlimit = core::mem::zeroed();
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl);
        if rl.rlim_cur < 4096 {
            rl.rlim_cur = rl.rlim_max.min(4096);
            libc::setrlimit(libc::RLIMIT_NOFILE, &rl);
        }
    }
    let socks: Vec<std::net::UdpSocket> = (0..EXTRA_SOCKETS)
        .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").expect("bind extra socket"))
        .collect();
    // Ask owners for a sample (each has exactly one owner: us) plus one socket shared with
    // SHARERS children, so the walk both lists and counts.
    let shared = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind shared socket");
    let shared_inode = inode_of(shared.as_raw_fd());
    let sharers = Sharers::spawn(shared.as_raw_fd(), SHARERS);
    let mut ours: Vec<u64> = socks
        .iter()
        .step_by(EXTRA_SOCKETS / 50)
        .map(|s| inode_of(s.as_raw_fd()))
        .collect();
    ours.push(shared_inode);
    let all: Vec<u64> = socks.iter().map(|s| inode_of(s.as_raw_fd())).collect();
    let root = ProcRoot::live();
    let mut owned = Box::new(ReportOwners::default());

    // The counter itself works (a test that cannot fail proves nothing).
    let (_, n) = count(|| std::hint::black_box(vec![1u8; 16]));
    assert!(n >= 1, "the counting allocator saw no allocation");

    // Warm-up outside the count: lazily initialised libc/std state is not the readers' cost.
    read_everything(&root, &ours, &mut owned);

    let (seen, allocs) = count(|| read_everything(&root, &all[..0], &mut owned));
    assert_eq!(
        allocs, 0,
        "{allocs} allocations with no owners asked for: {seen:?}"
    );
    let (seen, allocs) = count(|| read_everything(&root, &ours, &mut owned));
    println!("{seen:?}");
    assert_eq!(
        allocs, 0,
        "{allocs} allocations while reading /proc: {seen:?}"
    );

    // The pass really streamed the big table and found our sockets and their owner.
    assert!(
        seen.sockets[2] as usize >= EXTRA_SOCKETS,
        "udp lines: {seen:?}"
    );
    assert_eq!(seen.ours_in_udp as usize, ours.len());
    assert_eq!(seen.malformed, 0);
    assert!(seen.mem_total_kb > 0 && seen.vmalloc_areas > 0 && seen.udp_inuse > 0);
    assert!(seen.pids > 1 && seen.rss_total_kb > 0);
    assert_eq!(seen.owners_found, ours.len());
    let me = std::process::id();
    for &i in &ours[..ours.len() - 1] {
        assert!(owned.of(i).all(|o| o.pid == me) && owned.more(i) == 0);
    }
    // The shared socket: us and SHARERS children, 16 listed and the rest counted.
    let listed = owned.of(shared_inode).count();
    assert_eq!(listed, owners::MAX_OWNERS_PER_SOCKET);
    assert_eq!(listed + owned.more(shared_inode) as usize, SHARERS + 1);

    // The agent's budgeted walk: cut every 64 steps, so it stops and resumes inside our own
    // table of 1 000+ sockets many times (owner_track), and still allocates nothing.
    let mut cut = Box::new(ReportOwners::default());
    let ((slices, resumed_inside), allocs) = count(|| {
        owners::start_walk(&ours, &mut cut);
        let (mut from, mut slices, mut asked) = (Some(owners::Cursor::START), 0u32, 0u32);
        let mut resumed_inside = 0u32;
        while let Some(f) = from {
            resumed_inside += u32::from(f.inside_a_process());
            from = owners::walk_from(
                &root,
                f,
                WalkMode::AllOwners,
                &mut || {
                    asked += 1;
                    asked % 64 != 0
                },
                &mut cut,
            );
            slices += 1;
        }
        (slices, resumed_inside)
    });
    assert_eq!(
        allocs, 0,
        "{allocs} allocations in a walk cut {slices} times"
    );
    assert!(
        resumed_inside >= 10,
        "{resumed_inside} of {slices} cuts inside a process"
    );
    for &i in &ours {
        let a: Vec<u32> = cut.of(i).map(|o| o.pid).collect();
        let b: Vec<u32> = owned.of(i).map(|o| o.pid).collect();
        assert!(a.contains(&std::process::id()), "{i}: {a:?}");
        if i != shared_inode {
            assert_eq!(a, b, "{i}");
        }
    }
    drop(sharers);
    drop(socks);
}
