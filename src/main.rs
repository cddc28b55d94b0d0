//! The `ghostwatch` command line: report, run, check.
//!
//! The process starts at the C `main` below, not at std's `fn main`: see `main`.

// The test harness brings its own `main` (the binary has no unit tests of its own; tests/
// run the real binary), so the C entry point is left out of test builds.
#![cfg_attr(not(test), no_main)]
#![cfg_attr(test, allow(dead_code))]

use ghostwatch::sys::Out;
use ghostwatch::{agent, config, observe::proc::ProcRoot, report};

/// An exit status: 0 success, 1 runtime failure, 2 usage or config error.
type ExitCode = u8;
const SUCCESS: ExitCode = 0;

const USAGE: &str = "\
ghostwatch — find and fix Ghost memory (kernel pages no process owns) before the OOM killer fires

USAGE:
    ghostwatch report [--proc-root DIR] [--json] [--top N] [--watch S]
    ghostwatch run    [-c FILE] [--proc-root DIR] [--dry-run] [--once]
    ghostwatch check  -c FILE
    ghostwatch --help | --version

COMMANDS:
    report   One-shot diagnosis: the /proc/meminfo accounting equation term by term, Ghost
             (MemTotal minus every category meminfo counts), total process RSS, Shmem, the
             sockets with the largest receive queues and the processes that own them, and a
             verdict. Run it as root to see every socket's owner.
    run      The agent, in the foreground (let init supervise it). Polls /proc every
             interval_ms, logs one logfmt line per decision to syslog and runs the configured
             remediation. Without -c it reads /etc/ghostwatch.json if present, else an embedded
             default that only observes and logs. SIGHUP reloads the config (a bad new config
             is logged and the old one kept); SIGTERM/SIGINT exit 0.
    check    Validate a config file. Errors print as FILE:LINE:COL: message, exit status 2.

OPTIONS:
    --proc-root DIR   Read DIR instead of /proc (fixture trees, chroots); sysctl writes go to
                      DIR/sys/... too.
    --json            report: print one JSON object instead of text.
    --top N           report: how many sockets to list (default 10; more than 100 lists 100).
    --watch S         report: first sample Ghost, MemAvailable and the 64 largest receive
                      queues for S seconds (1-3600; every S/60 s, at least 250 ms apart),
                      then add which socket's queue grew in step with Ghost, how much of
                      Ghost's growth it explains, and its pinning ratio (Ghost growth / its
                      queue growth: how many bytes each queued byte really holds). A progress
                      line on stderr and sparklines when they are terminals; --json adds .watch.
    -c, --config FILE run/check: the JSON config file.
    --dry-run         run: decide and audit everything, touch nothing (result=dry-run).
    --once            run: one evaluation, then exit.

EXIT STATUS:
    0 success; 1 runtime failure (e.g. /proc/meminfo unreadable); 2 usage or config error.

EXAMPLES:
    ghostwatch report                      # what is eating memory on this box?
    ghostwatch report --json --top 5       # the same, for scripts
    ghostwatch report --watch 20           # which socket grows with Ghost, and by how much?
    ghostwatch check -c /etc/ghostwatch.json
    ghostwatch run --once --dry-run -c /etc/ghostwatch.json
";

fn usage_error(msg: &str) -> ExitCode {
    Out::STDERR.print(format_args!(
        "ghostwatch: {msg}\nTry 'ghostwatch --help'.\n"
    ));
    2
}

/// Takes the value of option `name` from the argument list.
fn value<'a>(
    args: &mut impl Iterator<Item = &'a String>,
    name: &str,
) -> Result<&'a String, String> {
    args.next().ok_or_else(|| format!("{name} needs a value"))
}

fn proc_root(dir: Option<&String>) -> Result<ProcRoot, String> {
    match dir {
        None => Ok(ProcRoot::live()),
        Some(d) => {
            let too_long = || format!("--proc-root {d}: path too long");
            let path = ghostwatch::sys::CPath::from_bytes(d.as_bytes()).map_err(|_| too_long())?;
            let is_dir = ghostwatch::sys::is_dir(&path)
                .map_err(|e| format!("--proc-root {d}: {}", ghostwatch::sys::strerror(e)))?;
            if !is_dir {
                return Err(format!("--proc-root {d}: not a directory"));
            }
            ProcRoot::new(d.as_bytes()).map_err(|_| too_long())
        }
    }
}

/// The process entry, called by the C runtime's start code (musl's crt1) with the
/// arguments. ghostwatch does without std's runtime start (`lang_start`): its stack-overflow
/// handler setup, thread and argument bookkeeping and exit-time flush of std's stdout (which
/// ghostwatch never uses) cost ~2.9 KiB of a router's flash. What of it ghostwatch relies on is
/// done here: descriptors 0-2 are opened on /dev/null when closed (so no file the agent opens
/// later becomes someone's stdout), and SIGPIPE is ignored (a write to a closed pipe is an
/// EPIPE error, not death; children get it back at exec, see act::children). An argument that
/// is not UTF-8 is a usage error, where std's `args()` would panic.
#[cfg(not(test))]
#[unsafe(no_mangle)]
extern "C" fn main(argc: libc::c_int, argv: *const *const libc::c_char) -> libc::c_int {
    ghostwatch::sys::sanitize_std_fds();
    // SAFETY: ignoring SIGPIPE is always valid.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    let mut args = Vec::new();
    for i in 1..usize::try_from(argc).unwrap_or(0) {
        // SAFETY: the C runtime passes argc valid NUL-terminated strings in argv.
        let arg = unsafe { core::ffi::CStr::from_ptr(*argv.add(i)) };
        match arg.to_str() {
            Ok(a) => args.push(String::from(a)),
            Err(_) => return usage_error(&format!("argument {i} is not valid UTF-8")).into(),
        }
    }
    cli(args).into()
}

fn cli(argv: Vec<String>) -> ExitCode {
    let Some(cmd) = argv.first() else {
        let _ = Out::STDERR.write_bytes(USAGE.as_bytes());
        return 2;
    };
    let mut rest = argv[1..].iter();
    match cmd.as_str() {
        "-h" | "--help" | "help" => {
            let _ = Out::STDOUT.write_bytes(USAGE.as_bytes());
            SUCCESS
        }
        "-V" | "--version" => {
            Out::STDOUT.print(format_args!("ghostwatch {}\n", env!("CARGO_PKG_VERSION")));
            SUCCESS
        }
        "report" => {
            let (mut root, mut json, mut top) = (None, false, 10usize);
            let mut watch_s = None;
            while let Some(a) = rest.next() {
                match a.as_str() {
                    "--proc-root" => match value(&mut rest, a) {
                        Ok(v) => root = Some(v),
                        Err(e) => return usage_error(&e),
                    },
                    "--json" => json = true,
                    "--top" => match value(&mut rest, a).map(|v| v.parse::<usize>()) {
                        Ok(Ok(n)) if (1..=report::MAX_TOP).contains(&n) => top = n,
                        // The contract's `report` exits 0 for any N: a larger ask gets the
                        // most the report holds, and says so on stderr (stdout stays clean).
                        Ok(Ok(n)) if n > report::MAX_TOP => {
                            Out::STDERR.print(format_args!(
                                "ghostwatch: --top {n}: listing at most {} sockets\n",
                                report::MAX_TOP
                            ));
                            top = report::MAX_TOP;
                        }
                        Ok(_) => {
                            return usage_error("--top takes a whole number of at least 1");
                        }
                        Err(e) => return usage_error(&e),
                    },
                    "--watch" => match value(&mut rest, a).map(|v| (v, v.parse::<u32>())) {
                        Ok((_, Ok(n))) if (1..=report::watch::MAX_WATCH_S).contains(&n) => {
                            watch_s = Some(n)
                        }
                        Ok((v, _)) => {
                            return usage_error(&format!(
                                "--watch {v}: takes a whole number of seconds from 1 to {}",
                                report::watch::MAX_WATCH_S
                            ));
                        }
                        Err(e) => return usage_error(&e),
                    },
                    "-h" | "--help" => {
                        let _ = Out::STDOUT.write_bytes(USAGE.as_bytes());
                        return SUCCESS;
                    }
                    other => return usage_error(&format!("report: unknown option '{other}'")),
                }
            }
            let root = match proc_root(root) {
                Ok(r) => r,
                Err(e) => return usage_error(&e),
            };
            // The report (a few KiB) is built in memory and written with one write: a
            // BufWriter over stdout costs ~1.3 KiB of a router's flash, and writing through
            // fmt::Write rather than io::Write keeps io::Error's formatting out (~2.5 KiB).
            let mut out = String::new();
            // SAFETY: isatty only inspects the descriptor.
            let tty = |fd| unsafe { libc::isatty(fd) } == 1;
            let opts = report::Options {
                top,
                json,
                watch_s,
                progress: tty(2),
                tty: tty(1),
            };
            let done = report::run(&root, opts, &mut out);
            let written = Out::STDOUT
                .write_bytes(out.as_bytes())
                .map_err(|e| format!("writing the report: {}", ghostwatch::sys::strerror(e)));
            match done.and(written) {
                Ok(()) => SUCCESS,
                Err(e) => {
                    Out::STDERR.print(format_args!("ghostwatch report: {e}\n"));
                    1
                }
            }
        }
        "check" => {
            let mut file = None;
            while let Some(a) = rest.next() {
                match a.as_str() {
                    "-c" | "--config" => match value(&mut rest, a) {
                        Ok(v) => file = Some(v),
                        Err(e) => return usage_error(&e),
                    },
                    other if file.is_none() && !other.starts_with('-') => file = Some(a),
                    other => return usage_error(&format!("check: unknown option '{other}'")),
                }
            }
            let Some(file) = file else {
                return usage_error("check needs -c FILE");
            };
            check(file)
        }
        "run" => {
            let mut opts = agent::Options::default();
            let mut root = None;
            while let Some(a) = rest.next() {
                match a.as_str() {
                    "-c" | "--config" => match value(&mut rest, a) {
                        Ok(v) => opts.config_path = Some(v.clone()),
                        Err(e) => return usage_error(&e),
                    },
                    "--proc-root" => match value(&mut rest, a) {
                        Ok(v) => root = Some(v),
                        Err(e) => return usage_error(&e),
                    },
                    "--dry-run" => opts.dry_run = true,
                    "--once" => opts.once = true,
                    other => return usage_error(&format!("run: unknown option '{other}'")),
                }
            }
            opts.proc_root = match proc_root(root) {
                Ok(r) => r,
                Err(e) => return usage_error(&e),
            };
            agent::run(opts)
        }
        other => usage_error(&format!("unknown command '{other}'")),
    }
}

/// `ghostwatch check`: a frame of its own (not inlined into `main`), so its Config is not on
/// the stack under `run`'s (mlockall keeps every stack page ever touched resident).
#[inline(never)]
fn check(file: &str) -> ExitCode {
    match config::load(file) {
        Ok(cfg) => {
            // Valid, but say where a process action could hit an impostor.
            for (i, r) in cfg.rules.iter().enumerate() {
                let reach = ghostwatch::observe::identity::reach(
                    r.action.targets_owner(),
                    r.exe.as_deref(),
                    r.uid,
                );
                if let Some(w) = reach {
                    Out::STDERR.print(format_args!(
                        "{file}: warning: rules[{i}] \"{}\" ({}): {w}\n",
                        r.name,
                        r.action.name()
                    ));
                }
                // Valid, but this kernel cannot carry it out (the ladder skips it at once).
                if let Some(c) = ghostwatch::act::executors::kernel_need(r.action) {
                    if !ghostwatch::sys::caps::has(c) {
                        Out::STDERR.print(format_args!(
                            "{file}: warning: rules[{i}] \"{}\" ({}): this kernel has no {} \
                             (Linux >= {}): the action fails here and hands over to the next rung\n",
                            r.name,
                            r.action.name(),
                            c.name(),
                            c.since()
                        ));
                    }
                }
            }
            if let Some(dev) = cfg.watchdog_device.as_deref() {
                watchdog_warning(file, dev);
            }
            Out::STDOUT.print(format_args!(
                "{file}: ok ({} rule{})\n",
                cfg.rules.len(),
                if cfg.rules.len() == 1 { "" } else { "s" }
            ));
            SUCCESS
        }
        Err(e) => {
            Out::STDERR.print(format_args!("{e}\n"));
            2
        }
    }
}

/// `check` with `watchdog_device` set: warns when another process already holds the device
/// (only one may; `run` would get EBUSY, report it once and run without the watchdog). Looks
/// through /proc instead of opening the device: opening a free watchdog arms it.
fn watchdog_warning(file: &str, dev: &str) {
    use ghostwatch::output::escape::Printable;
    let held = match ghostwatch::act::watchdog::holders(dev) {
        Ok(h) => h,
        Err(e) => {
            Out::STDERR.print(format_args!(
                "{file}: warning: watchdog_device \"{dev}\": {} (errno {e})\n",
                ghostwatch::sys::strerror(e)
            ));
            return;
        }
    };
    for h in held {
        Out::STDERR.print(format_args!(
            "{file}: warning: watchdog_device \"{dev}\" is held by pid {} ({}): only one process may hold a watchdog, so the agent would run without it (EBUSY, reported once). Where procd or a feeder feeds it, leave watchdog_device unset, or hand the watchdog over first (docs/CONFIG.md, \"The watchdog on OpenWrt\")\n",
            h.pid,
            Printable(h.comm.as_bytes())
        ));
    }
}
