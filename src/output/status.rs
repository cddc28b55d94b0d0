//! The status file (JSON) and the metrics file (Prometheus text format, for node_exporter's
//! textfile collector), rewritten after every poll.
//!
//! Both are formatted into fixed buffers and replaced atomically (write `PATH.tmp`, rename), so a
//! reader never sees half a file and the poll loop never allocates. No fsync: these files live on
//! tmpfs on a router, and flash must not be worn by a once-a-second write.

use crate::config::{Config, Trigger};
use crate::decide::correlate::Ratio;
use crate::decide::policy::Level;
use crate::observe::proc::net::SocketEntry;
use crate::observe::sockets::NsScan;
use crate::output::audit::ResultKind;
use crate::output::escape::JsonText;
use crate::output::sink;
use core::fmt::{self, Write};

/// Largest status or metrics text (bytes).
pub const MAX_TEXT: usize = 8192;

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
    /// The longest time between the ends of two consecutive polls since start (µs): what a
    /// stalled poll or a stalled loop costs the watchdog.
    pub max_poll_gap_us: u64,
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
    /// The socket that moves with Ghost, or holds a trusted pinning ratio (`decide::correlate`).
    pub culprit: Option<Culprit>,
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
    /// Seconds until MemAvailable reaches its floor at the current rate (the `oom_eta`
    /// estimate); None while memory is not falling or no estimate exists yet. The metric
    /// `ghostwatch_oom_eta_seconds` is absent while None.
    pub oom_eta_s: Option<u32>,
}

/// The socket the correlation blames, as the files show it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Culprit {
    pub socket: SocketEntry,
    /// How much of Ghost's growth over the window its queue's growth explains, per-mille.
    pub explains_pm: u16,
    /// Its pinning ratio once trusted.
    pub pin_ratio: Option<Ratio>,
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
    w.write_str(",\"oom_eta_s\":")?;
    match s.oom_eta_s {
        Some(e) => write!(w, "{e}")?,
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
    w.write_str(",\"culprit\":")?;
    match &s.culprit {
        Some(c) => {
            write!(
                w,
                "{{\"proto\":\"{}\",\"local\":{},\"rx_queue\":{},\"inode\":{},\"netns\":{},\"explains_pm\":{},\"pin_ratio\":",
                c.socket.proto.name(),
                JsonText(&c.socket.local),
                c.socket.rx_queue,
                c.socket.inode,
                c.socket.netns,
                c.explains_pm
            )?;
            match c.pin_ratio {
                Some(r) => write!(w, "{r}}}")?,
                None => w.write_str("null}")?,
            }
        }
        None => w.write_str("null")?,
    }
    w.write_str(",\"pin_ratio\":")?;
    match s.culprit.and_then(|c| c.pin_ratio) {
        Some(r) => write!(w, "{r}")?,
        None => w.write_str("null")?,
    }
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
        "\"max_poll_gap_us\":{},\"syslog\":{{\"lines_sent\":{},\"lines_to_stderr\":{},\"reconnects\":{},\"lines_queued\":{},\"lines_delivered_late\":{},\"lines_dropped\":{},\"queue_len\":{}}}}}",
        s.max_poll_gap_us,
        sk.lines_sent,
        sk.lines_to_stderr,
        sk.reconnects,
        sk.lines_queued,
        sk.lines_delivered_late,
        sk.lines_dropped,
        sk.queue_len
    )
}

/// Writes `us` microseconds as decimal seconds ("1.000250"), exactly, without floats.
struct Seconds(u64);

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:06}", self.0 / 1_000_000, self.0 % 1_000_000)
    }
}

/// One metric family of a single sample: HELP, TYPE, the sample.
fn family(
    w: &mut dyn Write,
    name: &str,
    kind: &str,
    help: &str,
    v: &dyn fmt::Display,
) -> fmt::Result {
    write!(
        w,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}\n"
    )
}

/// Prometheus text exposition format (version 0.0.4), named after the Prometheus conventions
/// (https://prometheus.io/docs/practices/naming): base units (`_bytes`, `_seconds`), counters
/// end in `_total`, labels only from closed sets (trigger, result; never a pid or an inode).
/// A value the agent does not know is absent, not 0. The full list is in docs/CONFIG.md
/// ("Metrics"); `tests/alert_rules.rs` runs `promtool check metrics` on a real agent's file.
pub fn format_metrics(w: &mut impl Write, s: &Stats) -> fmt::Result {
    let sk = sink::stats();
    // kB -> bytes in 128 bits: no counter value can overflow it.
    let bytes = |kb: i128| kb * 1024;
    if !s.ghost_unknown {
        family(
            w,
            "ghostwatch_ghost_bytes",
            "gauge",
            "Memory in no /proc/meminfo category and no process (Ghost).",
            &bytes(s.ghost_kb as i128),
        )?;
    }
    family(
        w,
        "ghostwatch_mem_total_bytes",
        "gauge",
        "MemTotal of /proc/meminfo.",
        &bytes(s.mem_total_kb as i128),
    )?;
    if let Some(a) = s.available_kb {
        family(
            w,
            "ghostwatch_mem_available_bytes",
            "gauge",
            "MemAvailable of /proc/meminfo.",
            &bytes(a as i128),
        )?;
    }
    if let Some(eta) = s.oom_eta_s {
        family(
            w,
            "ghostwatch_oom_eta_seconds",
            "gauge",
            "Estimated time until MemAvailable reaches min_available_kb; absent while memory is not falling.",
            &eta,
        )?;
    }
    family(
        w,
        "ghostwatch_worst_rx_queue_bytes",
        "gauge",
        "Largest socket receive queue in the last poll.",
        &s.worst.map_or(0, |x| x.rx_queue),
    )?;
    if let Some(r) = s.culprit.and_then(|c| c.pin_ratio) {
        family(
            w,
            "ghostwatch_pin_ratio",
            "gauge",
            "Ghost growth over the queue growth of the socket that moves with Ghost.",
            &r,
        )?;
    }
    family(
        w,
        "ghostwatch_sockets_seen",
        "gauge",
        "Sockets read in the last poll.",
        &s.sockets_seen,
    )?;
    family(
        w,
        "ghostwatch_last_poll_duration_seconds",
        "gauge",
        "Duration of the last poll.",
        &Seconds(s.last_cycle_us),
    )?;
    family(
        w,
        "ghostwatch_max_poll_duration_seconds",
        "gauge",
        "Longest poll since start.",
        &Seconds(s.max_cycle_us),
    )?;
    family(
        w,
        "ghostwatch_max_walk_slice_duration_seconds",
        "gauge",
        "Longest slice of owner walk since start, in a poll or between polls.",
        &Seconds(s.max_walk_slice_us),
    )?;
    family(
        w,
        "ghostwatch_last_walk_duration_seconds",
        "gauge",
        "Duration of the last complete owner walk, first slice to last (0: none yet).",
        &Seconds(s.last_walk_us),
    )?;
    w.write_str("# HELP ghostwatch_incident Incident level per trigger (0 none, 1 warn, 2 act).\n# TYPE ghostwatch_incident gauge\n")?;
    for (i, t) in Trigger::ALL.into_iter().enumerate() {
        let lvl = s.incidents[i] as u8;
        writeln!(w, "ghostwatch_incident{{trigger=\"{}\"}} {lvl}", t.name())?;
    }
    family(
        w,
        "ghostwatch_actions_last_hour",
        "gauge",
        "Disruptive actions decided in the last hour (dry-run included).",
        &s.actions_last_hour,
    )?;
    w.write_str("# HELP ghostwatch_actions_total Actions by result.\n# TYPE ghostwatch_actions_total counter\n")?;
    for (r, v) in ResultKind::ALL.into_iter().zip(s.actions) {
        writeln!(w, "ghostwatch_actions_total{{result=\"{}\"}} {v}", r.name())?;
    }
    family(
        w,
        "ghostwatch_polls_total",
        "counter",
        "Polls since start.",
        &s.cycles,
    )?;
    family(
        w,
        "ghostwatch_read_errors_total",
        "counter",
        "Failed /proc reads.",
        &s.read_errors,
    )?;
    family(
        w,
        "ghostwatch_write_errors_total",
        "counter",
        "Failed status/metrics file writes (each audited).",
        &s.write_errors,
    )?;
    family(
        w,
        "ghostwatch_syslog_lines_to_stderr_total",
        "counter",
        "Audit lines that could not reach syslog and went to stderr.",
        &sk.lines_to_stderr,
    )?;
    family(
        w,
        "ghostwatch_syslog_lines_queued_total",
        "counter",
        "Audit lines syslog did not take at once, kept in the delivery ring.",
        &sk.lines_queued,
    )?;
    family(
        w,
        "ghostwatch_syslog_lines_delivered_late_total",
        "counter",
        "Queued audit lines delivered later, with their original timestamps.",
        &sk.lines_delivered_late,
    )?;
    family(
        w,
        "ghostwatch_audit_lines_dropped_total",
        "counter",
        "Queued audit lines lost to a full delivery ring.",
        &sk.lines_dropped,
    )?;
    family(
        w,
        "ghostwatch_syslog_queue_lines",
        "gauge",
        "Audit lines waiting for syslog now.",
        &sk.queue_len,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_trigger_and_per_result_sections() {
        let s = Stats {
            incidents: [
                IncidentLevel::Act,
                IncidentLevel::None,
                IncidentLevel::Warn,
                IncidentLevel::None,
            ],
            actions: [1, 2, 3, 4],
            read_errors: 5,
            actions_last_hour: 6,
            ..Default::default()
        };
        let mut t = Text::new();
        format_status(&mut t, &s, false, 1000).unwrap();
        assert!(
            t.contains(r#","incidents":{"ghost":"act","backlog":"none","available":"warn","oom_eta":"none"},"actions":{"ok":1,"failed":2,"dry_run":3,"skipped":4},"read_errors":5,"#),
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
    fn the_culprit_and_its_pin_ratio() {
        use crate::observe::proc::net::{Endpoint, Proto};
        let socket = SocketEntry {
            proto: Proto::Raw6,
            local: Endpoint::Inet {
                ip: [0; 16],
                v6: true,
                port: 58,
            },
            remote: Endpoint::None,
            state: 7,
            tx_queue: 0,
            rx_queue: 12_582_912,
            drops: 0,
            uid: 0,
            inode: 27123,
            netns: 4026531840,
            charged: 0,
            rx_source: crate::observe::proc::net::RxSource::Text,
        };
        let mut s = Stats {
            culprit: Some(Culprit {
                socket,
                explains_pm: 930,
                pin_ratio: Some(Ratio(3412)),
            }),
            ..Default::default()
        };
        let mut t = Text::new();
        format_status(&mut t, &s, false, 1000).unwrap();
        assert!(
            t.contains(r#""culprit":{"proto":"raw6","local":":::58","rx_queue":12582912,"inode":27123,"netns":4026531840,"explains_pm":930,"pin_ratio":34.1},"pin_ratio":34.1,"#),
            "{t}"
        );
        let mut m = Text::new();
        format_metrics(&mut m, &s).unwrap();
        assert!(m.contains("\nghostwatch_pin_ratio 34.1\n"), "{m}");
        s.culprit = None;
        let mut t = Text::new();
        format_status(&mut t, &s, false, 1000).unwrap();
        assert!(t.contains(r#""culprit":null,"pin_ratio":null,"#), "{t}");
        let mut m = Text::new();
        format_metrics(&mut m, &s).unwrap();
        assert!(!m.contains("pin_ratio"), "{m}");
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
            oom_eta_s: Some(u32::MAX),
            culprit: Some(Culprit {
                socket: SocketEntry {
                    proto: crate::observe::proc::net::Proto::UdpLite6,
                    local: crate::observe::proc::net::Endpoint::Inet {
                        ip: [0xff; 16],
                        v6: true,
                        port: u16::MAX,
                    },
                    remote: crate::observe::proc::net::Endpoint::None,
                    state: 0,
                    tx_queue: u64::MAX,
                    rx_queue: u64::MAX,
                    drops: u64::MAX,
                    uid: u32::MAX,
                    inode: u64::MAX,
                    netns: u64::MAX,
                    charged: u64::MAX,
                    rx_source: crate::observe::proc::net::RxSource::Text,
                },
                explains_pm: u16::MAX,
                pin_ratio: Some(Ratio(u32::MAX)),
            }),
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
            t.contains("\nghostwatch_max_walk_slice_duration_seconds 18446744073709.551615\n"),
            "{t}"
        );
        assert!(
            t.contains("\nghostwatch_ghost_bytes -9444732965739290427392\n"),
            "{t}"
        );
        println!("status {status_len} bytes, metrics {} bytes", t.len());
    }

    /// The naming conventions, checked on the names the formatter really writes: base units,
    /// `_total` exactly on counters, labels from closed sets only. Values in base units.
    #[test]
    fn metrics_follow_the_prometheus_naming_conventions() {
        let s = Stats {
            ghost_kb: 2,
            mem_total_kb: 3,
            available_kb: Some(1),
            last_cycle_us: 1_250,
            max_cycle_us: 2_000_001,
            ..Default::default()
        };
        let mut t = Text::new();
        format_metrics(&mut t, &s).unwrap();
        let mut kinds = Vec::new();
        for l in t.lines() {
            if let Some(rest) = l.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                assert!(name.starts_with("ghostwatch_"), "{l}");
                assert_eq!(kind == "counter", name.ends_with("_total"), "{l}");
                for bad in ["_kb", "_us", "_ms", "x1e6", "_kilobytes"] {
                    assert!(!name.contains(bad), "{l}");
                }
                kinds.push(name.to_string());
            } else if !l.starts_with('#') {
                assert!(!l.contains("pid=") && !l.contains("inode="), "{l}");
            }
        }
        for line in [
            "ghostwatch_ghost_bytes 2048\n",
            "ghostwatch_mem_total_bytes 3072\n",
            "ghostwatch_mem_available_bytes 1024\n",
            "ghostwatch_last_poll_duration_seconds 0.001250\n",
            "ghostwatch_max_poll_duration_seconds 2.000001\n",
        ] {
            assert!(t.contains(line), "{line} missing from\n{t}");
        }
        // Unknown values are absent, not 0.
        assert!(!t.contains("ghostwatch_oom_eta_seconds"), "{t}");
        let s = Stats {
            ghost_unknown: true,
            available_kb: None,
            oom_eta_s: Some(42),
            ..Default::default()
        };
        let mut t = Text::new();
        format_metrics(&mut t, &s).unwrap();
        assert!(t.contains("\nghostwatch_oom_eta_seconds 42\n"), "{t}");
        assert!(
            t.contains("# TYPE ghostwatch_oom_eta_seconds gauge\n"),
            "{t}"
        );
        assert!(!t.contains("ghostwatch_ghost_bytes"), "{t}");
        assert!(!t.contains("ghostwatch_mem_available_bytes"), "{t}");
    }

    #[test]
    fn oom_eta_is_null_in_the_status_while_memory_is_not_falling() {
        let mut s = Stats::default();
        let mut t = Text::new();
        format_status(&mut t, &s, false, 1000).unwrap();
        assert!(t.contains(r#","oom_eta_s":null,"#), "{t}");
        s.oom_eta_s = Some(42);
        let mut t = Text::new();
        format_status(&mut t, &s, false, 1000).unwrap();
        assert!(t.contains(r#","oom_eta_s":42,"#), "{t}");
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
