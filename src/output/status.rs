//! The status file (JSON) and the metrics file (Prometheus text format, for node_exporter's
//! textfile collector), rewritten after every poll.
//!
//! Both are formatted into fixed buffers and replaced atomically (write `PATH.tmp`, rename), so a
//! reader never sees half a file and the poll loop never allocates. No fsync: these files live on
//! tmpfs on a router, and flash must not be worn by a once-a-second write.

use crate::config::{Config, Trigger};
use crate::decide::policy::Level;
use crate::observe::proc::net::SocketEntry;
use crate::observe::sockets::NsScan;
use crate::output::audit::ResultKind;
use crate::output::escape::JsonText;
use crate::output::sink;
use core::fmt::{self, Write};

/// Largest status or metrics text (bytes).
pub const MAX_TEXT: usize = 4096;

type Text = heapless::String<MAX_TEXT>;

/// The state of one trigger as the status file shows it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IncidentLevel {
    #[default]
    None,
    Warn,
    Act,
}

impl IncidentLevel {
    pub fn name(self) -> &'static str {
        match self {
            IncidentLevel::None => "none",
            IncidentLevel::Warn => Level::Warn.name(),
            IncidentLevel::Act => Level::Act.name(),
        }
    }
}

impl From<Option<Level>> for IncidentLevel {
    /// The policy's level of a trigger's open incident (None: no incident).
    fn from(l: Option<Level>) -> IncidentLevel {
        match l {
            None => IncidentLevel::None,
            Some(Level::Warn) => IncidentLevel::Warn,
            Some(Level::Act) => IncidentLevel::Act,
        }
    }
}

/// Counters and last values the status and metrics files show.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub cycles: u64,
    pub last_cycle_us: u64,
    /// The longest poll since start (µs).
    pub max_cycle_us: u64,
    /// The longest slice of owner walk since start, in a poll or between polls (µs).
    pub max_walk_slice_us: u64,
    /// How long the last complete owner walk took, first slice to last (µs; 0: none yet).
    pub last_walk_us: u64,
    pub ghost_kb: i64,
    /// The last poll could not compute Ghost (a malformed meminfo term): the files show
    /// `null` / no gauge instead of a stale or inflated number.
    pub ghost_unknown: bool,
    pub mem_total_kb: u64,
    pub available_kb: Option<u64>,
    pub worst: Option<SocketEntry>,
    pub sockets_seen: u64,
    pub tables_read: u32,
    /// Network namespaces of the last socket read: known, read, deferred by the per-poll cap,
    /// and the cost of those other than ours.
    pub netns: NsScan,
    /// Actions carried out (or not) per result, in `ResultKind::ALL` order.
    pub actions: [u64; ResultKind::ALL.len()],
    /// Disruptive actions decided in the last hour (dry-run ones included): what
    /// `max_actions_per_hour` is compared with.
    pub actions_last_hour: u64,
    pub read_errors: u64,
    /// Failed status/metrics writes (each audited, rate-limited).
    pub write_errors: u64,
    /// Per trigger, in `Trigger::ALL` order.
    pub incidents: [IncidentLevel; Trigger::ALL.len()],
    pub seq: u64,
}

/// The config the two files need: where they go and the two settings the status file shows.
#[derive(Clone, Copy, Debug)]
pub struct Outputs<'a> {
    pub status_file: Option<&'a str>,
    pub metrics_file: Option<&'a str>,
    pub dry_run: bool,
    pub interval_ms: u32,
}

impl<'a> Outputs<'a> {
    pub fn of(cfg: &'a Config) -> Outputs<'a> {
        Outputs {
            status_file: cfg.status_file.as_deref(),
            metrics_file: cfg.metrics_file.as_deref(),
            dry_run: cfg.dry_run,
            interval_ms: cfg.interval_ms,
        }
    }
}

/// Writes whichever of the status and metrics files `out` names. Returns the first failure
/// (the file and the errno) for the agent to audit; the next poll retries either way.
pub fn write_all<'a>(stats: &Stats, out: &Outputs<'a>) -> Result<(), (&'a str, crate::sys::Errno)> {
    let mut first = Ok(());
    if let Some(path) = out.status_file {
        let mut t = Text::new();
        if format_status(&mut t, stats, out.dry_run, out.interval_ms).is_ok() {
            if let Err(e) = replace_file(path, t.as_bytes()) {
                first = first.and(Err((path, e)));
            }
        }
    }
    if let Some(path) = out.metrics_file {
        let mut t = Text::new();
        if format_metrics(&mut t, stats).is_ok() {
            if let Err(e) = replace_file(path, t.as_bytes()) {
                first = first.and(Err((path, e)));
            }
        }
    }
    first
}

/// Writes `data` to `path` atomically (PATH.tmp then rename). Returns Err(errno).
/// No planted symlink, FIFO or file at `PATH.tmp` is followed, waited on or reused: see
/// `safefile::replace`.
pub fn replace_file(path: &str, data: &[u8]) -> Result<(), crate::sys::Errno> {
    crate::sys::safefile::replace(path.as_bytes(), data, false)
}

/// The status file: one JSON object describing the last poll.
pub fn format_status(
    w: &mut impl Write,
    s: &Stats,
    dry_run: bool,
    interval_ms: u32,
) -> fmt::Result {
    let sk = sink::stats();
    write!(
        w,
        "{{\"version\":\"{}\",\"pid\":{},\"dry_run\":{},\"interval_ms\":{},\"cycles\":{},\"last_cycle_us\":{},\"max_cycle_us\":{},\"max_walk_slice_us\":{},\"last_walk_us\":{},\"seq\":{},",
        env!("CARGO_PKG_VERSION"),
        std::process::id(),
        dry_run,
        interval_ms,
        s.cycles,
        s.last_cycle_us,
        s.max_cycle_us,
        s.max_walk_slice_us,
        s.last_walk_us,
        s.seq
    )?;
    write!(w, "\"mem_total_kb\":{},\"ghost_kb\":", s.mem_total_kb)?;
    if s.ghost_unknown {
        w.write_str("null")?;
    } else {
        write!(w, "{}", s.ghost_kb)?;
    }
    w.write_str(",\"available_kb\":")?;
    match s.available_kb {
        Some(a) => write!(w, "{a}")?,
        None => w.write_str("null")?,
    }
    write!(
        w,
        ",\"sockets_seen\":{},\"tables_read\":{},\"worst_socket\":",
        s.sockets_seen, s.tables_read
    )?;
    match &s.worst {
        Some(x) => {
            write!(
                w,
                "{{\"proto\":\"{}\",\"local\":{},\"rx_queue\":{},\"rx_queue_source\":\"{}\",\"inode\":{}}}",
                x.proto.name(),
                JsonText(&x.local),
                x.rx_queue,
                x.rx_source.name(),
                x.inode
            )?;
        }
        None => w.write_str("null")?,
    }
    let n = &s.netns;
    write!(
        w,
        ",\"netns\":{{\"known\":{},\"dropped\":{},\"read\":{},\"deferred\":{},\"cost_us\":{},\"cost_per_ns_us\":{},\"rotation_polls\":{}}}",
        n.known,
        n.dropped,
        n.read,
        n.deferred,
        n.cost_us,
        n.cost_per_ns_us(),
        n.rotation_scans
    )?;
    w.write_str(",\"incidents\":{")?;
    for (i, t) in Trigger::ALL.into_iter().enumerate() {
        let sep = if i > 0 { "," } else { "" };
        write!(w, "{sep}\"{}\":\"{}\"", t.name(), s.incidents[i].name())?;
    }
    w.write_str("},\"actions\":{")?;
    for (i, r) in ResultKind::ALL.into_iter().enumerate() {
        let sep = if i > 0 { "," } else { "" };
        // JSON keys use '_' where the audit text has '-' ("dry-run" -> "dry_run").
        write!(w, "{sep}\"")?;
        for c in r.name().chars() {
            w.write_char(if c == '-' { '_' } else { c })?;
        }
        write!(w, "\":{}", s.actions[i])?;
    }
    write!(
        w,
        "}},\"read_errors\":{},\"actions_last_hour\":{},",
        s.read_errors, s.actions_last_hour
    )?;
    writeln!(
        w,
        "\"syslog\":{{\"lines_sent\":{},\"lines_to_stderr\":{},\"reconnects\":{}}}}}",
        sk.lines_sent, sk.lines_to_stderr, sk.reconnects
    )
}

/// Prometheus text exposition format (version 0.0.4).
pub fn format_metrics(w: &mut impl Write, s: &Stats) -> fmt::Result {
    let sk = sink::stats();
    let gauge = |w: &mut dyn Write, name: &str, help: &str, v: i64| -> fmt::Result {
        write!(w, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}\n")
    };
    if !s.ghost_unknown {
        gauge(
            w,
            "ghostwatch_ghost_kb",
            "Memory (kB) in no /proc/meminfo category and no process.",
            s.ghost_kb,
        )?;
    }
    gauge(
        w,
        "ghostwatch_mem_total_kb",
        "MemTotal (kB).",
        s.mem_total_kb as i64,
    )?;
    if let Some(a) = s.available_kb {
        gauge(w, "ghostwatch_available_kb", "MemAvailable (kB).", a as i64)?;
    }
    gauge(
        w,
        "ghostwatch_worst_rx_queue_bytes",
        "Largest socket receive queue (bytes).",
        s.worst.map_or(0, |x| x.rx_queue as i64),
    )?;
    gauge(
        w,
        "ghostwatch_sockets_seen",
        "Sockets read in the last poll.",
        s.sockets_seen as i64,
    )?;
    gauge(
        w,
        "ghostwatch_last_cycle_seconds_x1e6",
        "Duration of the last poll (microseconds).",
        s.last_cycle_us as i64,
    )?;
    gauge(
        w,
        "ghostwatch_max_cycle_seconds_x1e6",
        "Longest poll since start (microseconds).",
        s.max_cycle_us as i64,
    )?;
    gauge(
        w,
        "ghostwatch_max_walk_slice_seconds_x1e6",
        "Longest slice of owner walk since start (microseconds).",
        s.max_walk_slice_us as i64,
    )?;
    gauge(
        w,
        "ghostwatch_last_walk_seconds_x1e6",
        "Duration of the last complete owner walk, all slices (microseconds).",
        s.last_walk_us as i64,
    )?;
    w.write_str("# HELP ghostwatch_incident Incident level per trigger (0 none, 1 warn, 2 act).\n# TYPE ghostwatch_incident gauge\n")?;
    for (i, t) in Trigger::ALL.into_iter().enumerate() {
        let lvl = s.incidents[i] as u8;
        writeln!(w, "ghostwatch_incident{{trigger=\"{}\"}} {lvl}", t.name())?;
    }
    gauge(
        w,
        "ghostwatch_actions_last_hour",
        "Disruptive actions decided in the last hour (dry-run included).",
        s.actions_last_hour as i64,
    )?;
    w.write_str("# HELP ghostwatch_actions_total Actions by result.\n# TYPE ghostwatch_actions_total counter\n")?;
    for (r, v) in ResultKind::ALL.into_iter().zip(s.actions) {
        writeln!(w, "ghostwatch_actions_total{{result=\"{}\"}} {v}", r.name())?;
    }
    write!(
        w,
        "# HELP ghostwatch_polls_total Polls since start.\n# TYPE ghostwatch_polls_total counter\nghostwatch_polls_total {}\n",
        s.cycles
    )?;
    write!(
        w,
        "# HELP ghostwatch_read_errors_total Failed /proc reads.\n# TYPE ghostwatch_read_errors_total counter\nghostwatch_read_errors_total {}\n",
        s.read_errors
    )?;
    write!(
        w,
        "# HELP ghostwatch_write_errors_total Failed status/metrics file writes (each audited).\n# TYPE ghostwatch_write_errors_total counter\nghostwatch_write_errors_total {}\n",
        s.write_errors
    )?;
    write!(
        w,
        "# HELP ghostwatch_syslog_lines_to_stderr_total Audit lines that could not reach syslog and went to stderr.\n# TYPE ghostwatch_syslog_lines_to_stderr_total counter\nghostwatch_syslog_lines_to_stderr_total {}\n",
        sk.lines_to_stderr
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_trigger_and_per_result_sections() {
        let s = Stats {
            incidents: [IncidentLevel::Act, IncidentLevel::None, IncidentLevel::Warn],
            actions: [1, 2, 3, 4],
            read_errors: 5,
            actions_last_hour: 6,
            ..Default::default()
        };
        let mut t = Text::new();
        format_status(&mut t, &s, false, 1000).unwrap();
        assert!(
            t.contains(r#","incidents":{"ghost":"act","backlog":"none","available":"warn"},"actions":{"ok":1,"failed":2,"dry_run":3,"skipped":4},"read_errors":5,"#),
            "{t}"
        );
        assert!(
            t.contains(r#""read_errors":5,"actions_last_hour":6,"#),
            "{t}"
        );
        let mut t = Text::new();
        format_metrics(&mut t, &s).unwrap();
        for line in [
            "ghostwatch_incident{trigger=\"ghost\"} 2\n",
            "ghostwatch_incident{trigger=\"backlog\"} 0\n",
            "ghostwatch_incident{trigger=\"available\"} 1\n",
            "ghostwatch_actions_total{result=\"ok\"} 1\n",
            "ghostwatch_actions_total{result=\"failed\"} 2\n",
            "ghostwatch_actions_total{result=\"dry-run\"} 3\n",
            "ghostwatch_actions_total{result=\"skipped\"} 4\n",
            "ghostwatch_actions_last_hour 6\n",
        ] {
            assert!(t.contains(line), "{line} missing from\n{t}");
        }
    }

    #[test]
    fn both_files_fit_their_buffer_with_every_counter_at_its_widest() {
        let s = Stats {
            cycles: u64::MAX,
            last_cycle_us: u64::MAX,
            max_cycle_us: u64::MAX,
            max_walk_slice_us: u64::MAX,
            last_walk_us: u64::MAX,
            ghost_kb: i64::MIN,
            mem_total_kb: u64::MAX,
            available_kb: Some(u64::MAX),
            sockets_seen: u64::MAX,
            tables_read: u32::MAX,
            netns: NsScan {
                known: u32::MAX,
                dropped: u32::MAX,
                read: 1,
                deferred: u32::MAX,
                cost_us: u64::MAX,
                rotation_scans: u32::MAX,
            },
            actions: [u64::MAX; ResultKind::ALL.len()],
            actions_last_hour: u64::MAX,
            read_errors: u64::MAX,
            write_errors: u64::MAX,
            incidents: [IncidentLevel::Warn; Trigger::ALL.len()],
            seq: u64::MAX,
            ..Default::default()
        };
        let mut t = Text::new();
        format_status(&mut t, &s, true, u32::MAX).unwrap();
        assert!(
            t.contains(&format!("\"max_walk_slice_us\":{}", u64::MAX)),
            "{t}"
        );
        let status_len = t.len();
        let mut t = Text::new();
        format_metrics(&mut t, &s).unwrap();
        assert!(
            t.contains("\nghostwatch_max_walk_slice_seconds_x1e6 "),
            "{t}"
        );
        println!("status {status_len} bytes, metrics {} bytes", t.len());
    }

    #[test]
    fn replace_file_is_atomic_rename() {
        let dir = std::env::temp_dir().join(format!("gw-status-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("status.json");
        replace_file(p.to_str().unwrap(), b"{}\n").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"{}\n");
        assert!(!dir.join("status.json.tmp").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
