//! gw-oldkernel: runs a program as if on an older kernel, for ghostwatch's live tests. Not
//! shipped; built by `cargo test`.
//!
//!   gw-oldkernel PROFILE [--no-sock-diag] -- PROG [ARGS...]
//!
//! PROFILE is 3.10, 4.14, 5.4 or 5.10 (the kernels of CentOS 7, OpenWrt 19.07, 21.02 and 22.03).
//! It installs a seccomp filter (prctl PR_SET_NO_NEW_PRIVS, then seccomp SECCOMP_SET_MODE_FILTER)
//! and execs PROG, so PROG and everything it starts (the filter is inherited over fork and exec)
//! get what that kernel would answer:
//! - every syscall numbered above the newest one of that kernel fails with ENOSYS (x86_64
//!   numbers grow with time: 3.10 ends at 313 finit_module, 4.14 at 332 statx, 5.4 at 435
//!   clone3, 5.10 at 440 process_madvise; 335–423 are unused on x86_64), as does any x32 call;
//! - 5.10 only: close_range with CLOSE_RANGE_CLOEXEC (5.11) fails with EINVAL, as 5.9/5.10's
//!   flag check answers;
//! - `--no-sock-diag`: socket(AF_NETLINK, *, NETLINK_SOCK_DIAG) fails with EPROTONOSUPPORT, what
//!   netlink_create answers when no sock_diag module is registered (OpenWrt without
//!   kmod-inet-diag and friends).
//!
//! What a filter cannot emulate: a diag module missing while sock_diag itself is there (the
//! kernel answers ENOENT inside the netlink reply; ghostwatch's tests reach that with
//! `Scanner::override_protocol_for_test`), /proc files an old kernel lacks (PSI's
//! /proc/pressure, which ghostwatch does not read), and older /proc text (the fixture corpus in
//! tests/data/kernel/ covers that). The arch is checked: a call under another ABI (i386 via
//! int 0x80) fails with ENOSYS. x86_64 only; elsewhere it exits 125 without running PROG.
//!
//! Exit status: PROG's (it is exec'd); 125 if the filter could not be installed or PROG not run.

use std::ffi::CString;

fn fail(msg: &str) -> ! {
    eprintln!("gw-oldkernel: {msg}");
    std::process::exit(125)
}

// Classic BPF as seccomp takes it (linux/filter.h, linux/seccomp.h).
/// BPF_LD | BPF_W | BPF_ABS (0x00 | 0x00 | 0x20).
const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JEQ_K: u16 = 0x05 | 0x10;
const BPF_JGT_K: u16 = 0x05 | 0x20;
const BPF_JGE_K: u16 = 0x05 | 0x30;
const BPF_JSET_K: u16 = 0x05 | 0x40;
const BPF_RET_K: u16 = 0x06;
const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;
const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;
/// seccomp_data: nr at 0, arch at 4, instruction_pointer at 8, args[6] (u64) from 16; the low
/// 32 bits of an argument come first on a little-endian machine.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
fn off_arg_lo(i: u32) -> u32 {
    16 + 8 * i
}
const SYS_SOCKET: u32 = 41;
const SYS_CLOSE_RANGE: u32 = 436;
const AF_NETLINK: u32 = 16;
const NETLINK_SOCK_DIAG: u32 = 4;
const CLOSE_RANGE_CLOEXEC: u32 = 1 << 2;

/// The newest x86_64 syscall of each profile's kernel.
fn last_syscall(profile: &str) -> Option<u32> {
    Some(match profile {
        "3.10" => 313, // finit_module (3.8); sched_setattr (314) is 3.14
        "4.14" => 332, // statx (4.11); io_pgetevents (333) is 4.18
        "5.4" => 435,  // clone3 (5.3); close_range (436) is 5.9, openat2/pidfd_getfd 5.6
        "5.10" => 440, // process_madvise (5.10); epoll_pwait2 (441) is 5.11
        _ => return None,
    })
}

/// A tiny assembler: jumps name labels, resolved to the forward offsets BPF wants.
enum Op {
    Stmt(u16, u32),
    Jump(u16, u32, &'static str, &'static str),
    Label(&'static str),
}

/// "" as a jump target means the next instruction.
fn assemble(ops: &[Op]) -> Vec<libc::sock_filter> {
    let mut at = std::collections::HashMap::new();
    let mut n = 0usize;
    for op in ops {
        match op {
            Op::Label(l) => {
                at.insert(*l, n);
            }
            _ => n += 1,
        }
    }
    let mut out = Vec::new();
    for op in ops {
        let here = out.len();
        let rel = |l: &str| -> u8 {
            if l.is_empty() {
                return 0;
            }
            let to = *at.get(l).unwrap_or_else(|| fail(&format!("no label {l}")));
            u8::try_from(to - here - 1).unwrap_or_else(|_| fail("jump too far"))
        };
        match op {
            Op::Stmt(code, k) => out.push(libc::sock_filter {
                code: *code,
                jt: 0,
                jf: 0,
                k: *k,
            }),
            Op::Jump(code, k, t, f) => out.push(libc::sock_filter {
                code: *code,
                jt: rel(t),
                jf: rel(f),
                k: *k,
            }),
            Op::Label(_) => {}
        }
    }
    out
}

fn program(last: u32, no_sock_diag: bool, cloexec_einval: bool) -> Vec<libc::sock_filter> {
    use Op::*;
    let mut ops = vec![
        Stmt(BPF_LD_W_ABS, OFF_ARCH),
        Jump(BPF_JEQ_K, AUDIT_ARCH_X86_64, "", "enosys"),
        Stmt(BPF_LD_W_ABS, OFF_NR),
        Jump(BPF_JGE_K, X32_SYSCALL_BIT, "enosys", ""),
    ];
    if no_sock_diag {
        ops.extend([
            Jump(BPF_JEQ_K, SYS_SOCKET, "", "not_socket"),
            Stmt(BPF_LD_W_ABS, off_arg_lo(0)),
            Jump(BPF_JEQ_K, AF_NETLINK, "", "reload"),
            Stmt(BPF_LD_W_ABS, off_arg_lo(2)),
            Jump(BPF_JEQ_K, NETLINK_SOCK_DIAG, "eprotonosupport", "reload"),
            Label("reload"),
            Stmt(BPF_LD_W_ABS, OFF_NR),
            Label("not_socket"),
        ]);
    }
    if cloexec_einval {
        ops.extend([
            Jump(BPF_JEQ_K, SYS_CLOSE_RANGE, "", "not_close_range"),
            Stmt(BPF_LD_W_ABS, off_arg_lo(2)),
            Jump(BPF_JSET_K, CLOSE_RANGE_CLOEXEC, "einval", "allow"),
            Label("not_close_range"),
        ]);
    }
    ops.extend([
        Jump(BPF_JGT_K, last, "enosys", ""),
        Label("allow"),
        Stmt(BPF_RET_K, SECCOMP_RET_ALLOW),
        Label("enosys"),
        Stmt(BPF_RET_K, SECCOMP_RET_ERRNO | libc::ENOSYS as u32),
        Label("eprotonosupport"),
        Stmt(BPF_RET_K, SECCOMP_RET_ERRNO | libc::EPROTONOSUPPORT as u32),
        Label("einval"),
        Stmt(BPF_RET_K, SECCOMP_RET_ERRNO | libc::EINVAL as u32),
    ]);
    assemble(&ops)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: gw-oldkernel 3.10|4.14|5.4|5.10 [--no-sock-diag] -- PROG [ARGS...]";
    let Some(sep) = args.iter().position(|a| a == "--") else {
        fail(usage)
    };
    let (opts, cmd) = (&args[..sep], &args[sep + 1..]);
    let Some(last) = opts.first().and_then(|p| last_syscall(p)) else {
        fail(usage)
    };
    let mut no_sock_diag = false;
    for o in &opts[1..] {
        match o.as_str() {
            "--no-sock-diag" => no_sock_diag = true,
            _ => fail(usage),
        }
    }
    if cmd.is_empty() {
        fail(usage)
    }
    if !cfg!(target_arch = "x86_64") {
        fail("x86_64 only (the syscall numbers are x86_64's)")
    }
    let cloexec_einval = last >= SYS_CLOSE_RANGE;
    let prog = program(last, no_sock_diag, cloexec_einval);
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    let argv: Vec<CString> = cmd
        .iter()
        .map(|a| CString::new(a.as_bytes()).unwrap_or_else(|_| fail("NUL in an argument")))
        .collect();
    let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    // SAFETY: prctl and seccomp with a filter that lives across the call; execvp with a
    // NULL-terminated array of NUL-terminated strings that outlive it.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            fail(&format!(
                "PR_SET_NO_NEW_PRIVS: {}",
                std::io::Error::last_os_error()
            ));
        }
        let fprog_ptr: *const libc::sock_fprog = &fprog;
        if libc::syscall(libc::SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, fprog_ptr) != 0 {
            fail(&format!("seccomp: {}", std::io::Error::last_os_error()));
        }
        libc::execvp(ptrs[0], ptrs.as_ptr());
    }
    fail(&format!(
        "exec {}: {}",
        cmd[0],
        std::io::Error::last_os_error()
    ))
}
