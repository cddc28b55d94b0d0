//! The agent's owner cache: who holds each suspect socket, kept across polls.
//!
//! A remembered owner is re-validated each poll by one readlink of its `/proc/PID/fd/N`. The fd
//! walk (every fd of every process: ~4.5 µs per fd, over a second on a box with 200 000 fds)
//! runs only when a suspect has no remembered owner, a remembered one no longer holds it, or
//! every `policy::FULL_SCAN_EVERY` polls; and then under a time budget per poll, resuming where
//! it stopped (the next fd of the same process: one process with 200 000 fds is walked over
//! many slices), so no poll stalls on it. A walk in progress is finished before a new one
//! starts, so a suspect set that keeps changing cannot starve it.

use crate::decide::policy;
use crate::observe::owners::{self, Owner, Owners, WalkMode};
use crate::observe::proc::{ProcRoot, pid};
use crate::sys;

const N: usize = policy::MAX_SUSPECTS;

/// Most time one poll (or one slice between polls) spends in the fd walk. The clock is read
/// after every fd and every process, so a slice overruns it by one readlink or one process's
/// open and listing (microseconds), whatever the fd tables hold.
pub const WALK_BUDGET_US: u64 = 50_000;

/// Owners of the suspects, from the last complete walk, plus a walk in progress.
#[derive(Default)]
pub struct OwnerTrack {
    known: Owners<N>,
    known_for: heapless::Vec<u64, N>,
    known_at_cycle: u64,
    walk: Owners<N>,
    walk_for: heapless::Vec<u64, N>,
    /// Some(cursor) while a walk is in progress: it resumes there (`owners::walk_from`).
    resume: Option<owners::Cursor>,
    /// When the walk in progress started (CLOCK_MONOTONIC µs).
    walk_started_us: u64,
    /// Complete walks, and polls that walked (for the status file and the benches).
    pub walks: u64,
    pub walk_polls: u64,
    /// The longest slice of walking since start, and how long the last complete walk took
    /// from its first slice to its last (µs; the status file's `max_walk_slice_us` and
    /// `last_walk_us`).
    pub max_slice_us: u64,
    pub last_walk_us: u64,
}

/// True if `o` still holds its socket: `ROOT/PID/fd/N` reads `socket:[INODE]`.
pub fn still_holds(root: &ProcRoot, o: &Owner) -> bool {
    let mut link = [0u8; 64];
    let Ok(mut p) = root.pid_path(o.pid, b"fd") else {
        return false;
    };
    if p.join_u32(o.fd).is_err() {
        return false;
    }
    sys::readlink(&p, &mut link)
        .ok()
        .and_then(pid::parse_socket_link)
        == Some(o.inode)
}

impl OwnerTrack {
    /// True while a walk spans polls.
    pub fn walking(&self) -> bool {
        self.resume.is_some()
    }

    /// Brings the owners of `inodes` up to date as far as `budget_us` of walking allows.
    pub fn update(&mut self, root: &ProcRoot, inodes: &[u64], cycle: u64, budget_us: u64) {
        if self.resume.is_none() {
            let stale = self.walks == 0
                || cycle.saturating_sub(self.known_at_cycle) >= policy::FULL_SCAN_EVERY;
            let missing = inodes
                .iter()
                .any(|&i| i != 0 && !self.known_for.contains(&i));
            let moved = || {
                self.known
                    .sockets()
                    .iter()
                    .filter(|s| inodes.contains(&s.inode))
                    .flat_map(|s| s.listed.iter())
                    .any(|o| !still_holds(root, o))
            };
            if !(stale || missing || moved()) {
                return;
            }
            owners::start_walk(inodes, &mut self.walk);
            self.walk_for.clear();
            for &i in inodes.iter().take(N) {
                let _ = self.walk_for.push(i);
            }
            self.resume = Some(owners::Cursor::START);
            self.walk_started_us = sys::monotonic_us();
        }
        self.resume_walk(root, cycle, budget_us);
    }

    /// Continues a walk in progress for up to `budget_us` (nothing to do without one); the
    /// agent's loop calls it between polls so a long walk finishes without stalling any poll.
    pub fn resume_walk(&mut self, root: &ProcRoot, cycle: u64, budget_us: u64) {
        if self.resume.is_none() {
            return;
        }
        let t0 = sys::monotonic_us();
        let deadline = t0.saturating_add(budget_us);
        self.walk_polls += 1;
        self.resume = owners::walk_from(
            root,
            self.resume.unwrap_or(owners::Cursor::START),
            WalkMode::AllOwners,
            &mut || sys::monotonic_us() < deadline,
            &mut self.walk,
        );
        let t1 = sys::monotonic_us();
        self.max_slice_us = self.max_slice_us.max(t1.saturating_sub(t0));
        if self.resume.is_none() {
            self.last_walk_us = t1.saturating_sub(self.walk_started_us);
            core::mem::swap(&mut self.known, &mut self.walk);
            core::mem::swap(&mut self.known_for, &mut self.walk_for);
            self.known_at_cycle = cycle;
            self.walks += 1;
        }
    }

    /// Owners of `inode` from the last complete walk that still hold it.
    pub fn of<'a>(&'a self, root: &'a ProcRoot, inode: u64) -> impl Iterator<Item = &'a Owner> {
        self.known.of(inode).filter(move |o| still_holds(root, o))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> ProcRoot {
        let d = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        ProcRoot::new(d.as_bytes()).unwrap()
    }

    fn all_owners(o: &Owners<N>) -> Vec<(u64, u32, u32)> {
        o.sockets()
            .iter()
            .flat_map(|s| s.listed.iter().map(|o| (o.inode, o.pid, o.fd)))
            .collect()
    }

    #[test]
    fn a_walk_cut_after_every_process_and_every_fd_finds_what_one_walk_finds() {
        let root = fixture("forked");
        let mut inodes = Vec::new();
        let mut fds = 0;
        for p in [400u32, 401, 420, 430, 440] {
            let _ = pid::for_each_socket_fd(&root, p, &mut |_, ino| {
                inodes.push(ino);
                fds += 1;
            });
        }
        inodes.sort_unstable();
        inodes.dedup();
        assert!(!inodes.is_empty());
        let mut whole: Owners<N> = Owners::default();
        owners::find_owners(&root, &inodes, WalkMode::AllOwners, &mut whole);

        // Cut at every chance, then every 2nd, 3rd...: inside processes and between them.
        for every in 1..=4 {
            let mut cut: Owners<N> = Owners::default();
            owners::start_walk(&inodes, &mut cut);
            let (mut from, mut steps, mut asked) = (Some(owners::Cursor::START), 0, 0);
            while let Some(f) = from {
                let mut go_on = || {
                    asked += 1;
                    asked % every != 0
                };
                from = owners::walk_from(&root, f, WalkMode::AllOwners, &mut go_on, &mut cut);
                steps += 1;
                assert!(steps < 100);
            }
            if every == 1 {
                // Every fd and every process is a place to cut: more slices than processes.
                assert!(
                    steps > fds,
                    "the walk was not cut inside processes: {steps} steps"
                );
            }
            assert_eq!(all_owners(&cut), all_owners(&whole), "cut every {every}");
            assert_eq!(cut.pids_scanned, whole.pids_scanned, "cut every {every}");
        }
    }

    #[test]
    fn remembered_owners_are_revalidated_not_rewalked() {
        let root = fixture("forked");
        let mut inodes = Vec::new();
        let _ = pid::for_each_socket_fd(&root, 420, &mut |_, ino| inodes.push(ino));
        let mut t = OwnerTrack::default();
        t.update(&root, &inodes, 1, 1_000_000);
        assert_eq!((t.walks, t.walk_polls), (1, 1));
        assert!(t.of(&root, inodes[0]).any(|o| o.pid == 420));
        // Same suspects, owners still holding: no walk until FULL_SCAN_EVERY polls later.
        for c in 2..policy::FULL_SCAN_EVERY {
            t.update(&root, &inodes, c, 1_000_000);
        }
        assert_eq!(t.walk_polls, 1);
        t.update(&root, &inodes, 1 + policy::FULL_SCAN_EVERY, 1_000_000);
        assert_eq!(t.walks, 2);
        // A budget of zero still advances one process per poll and completes.
        let mut t = OwnerTrack::default();
        let mut c = 1;
        t.update(&root, &inodes, c, 0);
        while t.walking() {
            c += 1;
            t.update(&root, &inodes, c, 0);
            assert!(c < 100);
        }
        assert!(c > 1);
        assert!(t.of(&root, inodes[0]).any(|o| o.pid == 420));
    }
}
