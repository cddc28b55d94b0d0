//! Signals and sleeping: HUP asks for a reload, TERM/INT for a clean stop, CHLD only wakes the
//! loop; the sleep is an absolute CLOCK_MONOTONIC deadline that a signal ends early.
//! Only flags are set in handlers (async-signal-safe); the loop does the rest.

use crate::sys;
use core::sync::atomic::{AtomicBool, Ordering};

static TERM: AtomicBool = AtomicBool::new(false);
static HUP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(sig: libc::c_int) {
    // Only async-signal-safe work here: set a flag; the loop does the rest.
    if sig == libc::SIGHUP {
        HUP.store(true, Ordering::SeqCst);
    } else {
        TERM.store(true, Ordering::SeqCst);
        sys::request_stop();
    }
}

extern "C" fn on_child(_: libc::c_int) {
    // Nothing to do: the signal itself ends the loop's sleep so a finished command is reaped
    // and audited at once.
}

/// Installs HUP/TERM/INT handlers without SA_RESTART, so the interval sleep returns at once,
/// and a SIGCHLD handler (SA_RESTART: it must not disturb other syscalls; the sleep ends anyway).
pub(super) fn install_signal_handlers() {
    for sig in [libc::SIGHUP, libc::SIGTERM, libc::SIGINT] {
        // SAFETY: a zeroed sigaction with a plain handler is valid; handler is async-signal-safe.
        unsafe {
            let mut sa: libc::sigaction = core::mem::zeroed();
            sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            sa.sa_flags = 0;
            libc::sigaction(sig, &sa, core::ptr::null_mut());
        }
    }
    // SAFETY: as above; the handler does nothing.
    unsafe {
        let mut sa: libc::sigaction = core::mem::zeroed();
        sa.sa_sigaction = on_child as extern "C" fn(libc::c_int) as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        sa.sa_flags = libc::SA_RESTART | libc::SA_NOCLDSTOP;
        libc::sigaction(libc::SIGCHLD, &sa, core::ptr::null_mut());
    }
    // A vanished syslog over TCP must not kill us.
    // SAFETY: ignoring SIGPIPE is always valid.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
}

/// True once SIGTERM/SIGINT arrived.
pub fn stopping() -> bool {
    TERM.load(Ordering::SeqCst)
}

/// True once (and then false until the next) SIGHUP arrived.
pub(super) fn take_hup() -> bool {
    HUP.swap(false, Ordering::SeqCst)
}

/// Sleeps on CLOCK_MONOTONIC until `deadline_ms`; returns early when a signal arrives.
pub(super) fn sleep_until_ms(deadline_ms: u64) {
    let ts = crate::sys::timespec(deadline_ms / 1000, (deadline_ms % 1000) as u32 * 1_000_000);
    // SAFETY: valid timespec; EINTR (a signal) simply ends the sleep.
    unsafe {
        libc::clock_nanosleep(
            libc::CLOCK_MONOTONIC,
            libc::TIMER_ABSTIME,
            &ts,
            core::ptr::null_mut(),
        )
    };
}
