//! The kernel-emulation harness: examples/gw-oldkernel runs a program under a seccomp filter
//! that answers as an older kernel would (see that file), and the profiles the live tests run.

use std::path::{Path, PathBuf};

/// An emulated kernel: what ghostwatch's start line must say it lacks there.
#[derive(Clone, Copy, Debug)]
pub struct Profile {
    /// gw-oldkernel's PROFILE argument, e.g. "5.4".
    pub name: &'static str,
    /// Who runs it (the router fleets).
    pub who: &'static str,
    /// The start line's `missing=` (without sock_diag), in `sys::caps::Cap::ALL` order.
    pub missing: &'static [&'static str],
}

impl Profile {
    /// clamp and drain work on this kernel (pidfd_getfd).
    pub fn has_pidfd_getfd(&self) -> bool {
        !self.missing.contains(&"pidfd_getfd")
    }
}

pub const PROFILES: [Profile; 4] = [
    Profile {
        name: "3.10",
        who: "CentOS 7",
        missing: &["pidfd_open", "pidfd_getfd", "close_range"],
    },
    Profile {
        name: "4.14",
        who: "OpenWrt 19.07",
        missing: &["pidfd_open", "pidfd_getfd", "close_range"],
    },
    Profile {
        name: "5.4",
        who: "OpenWrt 21.02",
        missing: &["pidfd_getfd", "close_range"],
    },
    Profile {
        name: "5.10",
        who: "OpenWrt 22.03",
        missing: &["close_range_cloexec"],
    },
];

/// target/<profile>/examples/gw-oldkernel (cargo test builds examples).
pub fn oldkernel_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new("."));
    dir.join("examples").join("gw-oldkernel")
}

/// The argv prefix that runs a program under `p` (`no_sock_diag`: without NETLINK_SOCK_DIAG),
/// ending in "--". Panics if gw-oldkernel is not built.
pub fn under(p: &Profile, no_sock_diag: bool) -> Vec<String> {
    let bin = oldkernel_bin();
    assert!(
        bin.exists(),
        "{} missing: run the tests with `cargo test` (it builds examples)",
        bin.display()
    );
    let mut v = vec![bin.display().to_string(), p.name.to_string()];
    if no_sock_diag {
        v.push("--no-sock-diag".into());
    }
    v.push("--".into());
    v
}

/// The start line's `missing=` value (quoted or not), "" when the line has none.
pub fn missing_of(start_line: &str) -> String {
    let Some((_, rest)) = start_line.split_once(" missing=") else {
        return String::new();
    };
    match rest.strip_prefix('"') {
        Some(q) => q.split('"').next().unwrap_or("").to_string(),
        None => rest.split(' ').next().unwrap_or("").to_string(),
    }
}
