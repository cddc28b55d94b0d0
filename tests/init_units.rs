//! init/ghostwatch.procd and init/ghostwatch.service, checked without their init systems.
//!
//! procd: the script is sourced by busybox `sh` (busybox applets only on PATH, as on OpenWrt)
//! after recorded stand-ins for the `procd_*` helpers and `logger`; its functions are called
//! and the recorded calls checked. The recorded `command` is then started for real and sent
//! the recorded signal, so the command line and the reload are proven on the real binary.
//!
//! systemd: `systemd-analyze verify` (works without a running systemd) on the unit with only
//! its two paths pointed at the built binary and a test config.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use support::{ChildGuard, Rsyslogd, TempDir};

fn repo(p: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn write_config(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
}

/// The stand-ins: each call appends one line, the helper's name and its arguments separated
/// by \x1f, to $REC.
const STANDINS: &str = r#"
rec() { printf '%s' "$1" >>"$REC"; shift; for a in "$@"; do printf '\037%s' "$a" >>"$REC"; done; printf '\n' >>"$REC"; }
procd_open_instance() { rec procd_open_instance "$@"; }
procd_set_param() { rec procd_set_param "$@"; }
procd_append_param() { rec procd_append_param "$@"; }
procd_close_instance() { rec procd_close_instance "$@"; }
procd_send_signal() { rec procd_send_signal "$@"; }
procd_add_config_trigger() { rec procd_add_config_trigger "$@"; }
procd_add_reload_trigger() { rec procd_add_reload_trigger "$@"; }
logger() { rec logger "$@"; }
"#;

struct Procd {
    dir: TempDir,
    applets: PathBuf,
    config: PathBuf,
    rec: PathBuf,
}

impl Procd {
    fn new() -> Procd {
        let dir = TempDir::new("procd");
        let applets = dir.path().join("bin");
        support::busybox_applets(&applets);
        Procd {
            config: dir.path().join("ghostwatch.json"),
            rec: dir.path().join("calls"),
            applets,
            dir,
        }
    }

    /// Sources the stand-ins and the script, runs `body`, prints `rc=N` of its last command.
    fn call(&self, body: &str) -> (Vec<Vec<String>>, Output) {
        let _ = std::fs::remove_file(&self.rec);
        let harness = format!(
            "{STANDINS}\n. '{}'\necho \"USE_PROCD=$USE_PROCD START=$START STOP=$STOP\"\n{body}\necho rc=$?\n",
            repo("init/ghostwatch.procd").display()
        );
        let out = Command::new(self.applets.join("busybox"))
            .args(["sh", "-c", &harness])
            .env_clear()
            .env("PATH", &self.applets)
            .env("REC", &self.rec)
            .env("GHOSTWATCH_BIN", env!("CARGO_BIN_EXE_ghostwatch"))
            .env("GHOSTWATCH_CONFIG", &self.config)
            .env("GHOSTWATCH_METRICS_DIR", self.dir.path().join("prometheus"))
            .output()
            .expect("busybox sh");
        eprintln!(
            "procd {body}: stdout {} stderr {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let calls = std::fs::read_to_string(&self.rec)
            .unwrap_or_default()
            .lines()
            .map(|l| l.split('\x1f').map(str::to_string).collect())
            .collect();
        (calls, out)
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn param<'a>(calls: &'a [Vec<String>], name: &str) -> Option<&'a [String]> {
    calls
        .iter()
        .find(|c| {
            c.first().map(String::as_str) == Some("procd_set_param")
                && c.get(1).map(String::as_str) == Some(name)
        })
        .map(|c| &c[2..])
}

#[test]
fn procd_start_service_records_a_supervised_instance() {
    if !support::require_program("busybox", support::INSTALL_BUSYBOX) {
        return;
    }
    let p = Procd::new();
    write_config(&p.config, "{ \"interval_ms\": 1000 }\n");
    let (calls, out) = p.call("start_service");
    let text = stdout(&out);
    assert!(text.contains("USE_PROCD=1"), "{text}");
    // OpenWrt's log daemon is START=12: ghostwatch must start after it.
    let start: u32 = text
        .split_whitespace()
        .find_map(|w| w.strip_prefix("START="))
        .and_then(|v| v.parse().ok())
        .expect("START set");
    assert!(start > 12, "START={start} is not after the log daemon (12)");
    assert!(text.contains("rc=0"), "{text}");

    let names: Vec<&str> = calls.iter().map(|c| c[0].as_str()).collect();
    assert_eq!(names.first(), Some(&"procd_open_instance"), "{calls:?}");
    assert_eq!(names.last(), Some(&"procd_close_instance"), "{calls:?}");
    let cmd = param(&calls, "command").expect("command param");
    assert_eq!(
        cmd,
        [
            env!("CARGO_BIN_EXE_ghostwatch").to_string(),
            "run".into(),
            "-c".into(),
            p.config.display().to_string()
        ]
    );
    // A crash-loop budget: threshold (s), timeout (s), retries, all positive and bounded.
    let respawn = param(&calls, "respawn").expect("respawn param");
    let n: Vec<u32> = respawn.iter().map(|v| v.parse().expect("number")).collect();
    assert_eq!(n.len(), 3, "{respawn:?}");
    assert!(n[0] >= 60 && n[1] >= 1 && n[2] >= 1 && n[2] <= 10, "{n:?}");
    assert_eq!(
        param(&calls, "file"),
        Some(&[p.config.display().to_string()][..]),
        "config not watched"
    );
}

#[test]
fn procd_bad_config_opens_no_instance() {
    if !support::require_program("busybox", support::INSTALL_BUSYBOX) {
        return;
    }
    let p = Procd::new();
    write_config(&p.config, "{\n  \"interval_ms\": 5\n}\n");
    let (calls, out) = p.call("start_service");
    assert!(
        stdout(&out).contains("rc=1"),
        "start_service accepted a bad config"
    );
    assert!(
        !calls.iter().any(|c| c[0] == "procd_open_instance"),
        "an instance was opened: {calls:?}"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    let pos = format!("{}:2:18:", p.config.display());
    assert!(err.contains(&pos), "no {pos} in {err}");
    let log = calls
        .iter()
        .find(|c| c[0] == "logger")
        .expect("logged to syslog");
    assert!(log.join(" ").contains(&pos), "{log:?}");

    // reload with a bad config sends no signal.
    let (calls, out) = p.call("reload_service");
    assert!(stdout(&out).contains("rc=1"));
    assert!(
        !calls.iter().any(|c| c[0] == "procd_send_signal"),
        "{calls:?}"
    );
}

#[test]
fn procd_triggers_reload_on_config_change() {
    if !support::require_program("busybox", support::INSTALL_BUSYBOX) {
        return;
    }
    let p = Procd::new();
    let (calls, _) = p.call("service_triggers");
    assert_eq!(
        calls,
        vec![vec![
            "procd_add_config_trigger".to_string(),
            "config.change".into(),
            "ghostwatch".into(),
            "/etc/init.d/ghostwatch".into(),
            "reload".into()
        ]]
    );
}

/// The recorded command really runs the agent, and the recorded reload signal really
/// reloads it (event=reload in syslog).
#[test]
fn procd_command_runs_and_recorded_signal_reloads() {
    if !support::require_root("procd command under a real agent")
        || !support::require_program("busybox", support::INSTALL_BUSYBOX)
        || !support::require_program("rsyslogd", support::INSTALL_RSYSLOG)
    {
        return;
    }
    let syslog = Rsyslogd::start();
    let p = Procd::new();
    write_config(
        &p.config,
        &format!(
            "{{ \"interval_ms\": 200, \"mlock\": false, \"syslog\": \"unix:{}\" }}\n",
            syslog.sock.display()
        ),
    );
    let (calls, _) = p.call("start_service");
    let cmd = param(&calls, "command").expect("command").to_vec();
    let agent = ChildGuard(
        Command::new(&cmd[0])
            .args(&cmd[1..])
            .stdin(Stdio::null())
            .spawn()
            .expect("run the recorded command"),
    );
    let start = syslog.wait_line("event=start").expect("agent started");
    assert!(start.contains(&format!("[{}]", agent.pid())), "{start}");

    let (calls, out) = p.call("reload_service");
    assert!(stdout(&out).contains("rc=0"));
    let sig = calls
        .iter()
        .find(|c| c[0] == "procd_send_signal")
        .expect("reload sends a signal");
    assert_eq!(
        sig[1..],
        ["ghostwatch".to_string(), "*".into(), "HUP".into()]
    );
    // What procd would do with it:
    let st = Command::new("kill")
        .args([format!("-{}", sig[3]), agent.pid().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let line = syslog
        .wait_line("event=reload")
        .expect("event=reload after HUP");
    assert!(line.contains("result=ok"), "{line}");
    drop(agent);
    let _ = p.dir.path();
}

#[test]
fn systemd_unit_verifies_clean() {
    if !support::require_program("systemd-analyze", support::INSTALL_SYSTEMD) {
        return;
    }
    let dir = TempDir::new("unit");
    let config = dir.path().join("ghostwatch.json");
    write_config(&config, "{}\n");
    let text = std::fs::read_to_string(repo("init/ghostwatch.service")).unwrap();
    // Only the two install paths change, so what is verified is the shipped unit.
    let unit = text
        .replace("/usr/sbin/ghostwatch", env!("CARGO_BIN_EXE_ghostwatch"))
        .replace("/etc/ghostwatch.json", &config.display().to_string());
    let path = dir.path().join("ghostwatch.service");
    std::fs::write(&path, &unit).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "systemd-analyze verify failed: {err}");
    // Verify prints problems with the unit (unknown keys, bad values) as warnings on stderr
    // and still exits 0: the unit is clean only if nothing names it.
    assert!(
        !err.contains("ghostwatch.service"),
        "systemd-analyze verify complained: {err}"
    );

    // The directives the firmware brief requires, and the hardening that would break the
    // agent, absent.
    let has = |k: &str| text.lines().any(|l| l.trim() == k);
    for k in [
        "Restart=always",
        "OOMScoreAdjust=-1000",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "ExecStart=/usr/sbin/ghostwatch run -c /etc/ghostwatch.json",
        "ExecStartPre=/usr/sbin/ghostwatch check -c /etc/ghostwatch.json",
    ] {
        assert!(has(k), "unit lacks {k}");
    }
    let caps: String = text
        .split("CapabilityBoundingSet=")
        .nth(1)
        .expect("a capability bounding set")
        .split("\n\n")
        .next()
        .unwrap()
        .to_string();
    for cap in [
        "CAP_SYS_PTRACE",
        "CAP_SYS_RESOURCE",
        "CAP_SYS_BOOT",
        "CAP_KILL",
        "CAP_IPC_LOCK",
    ] {
        assert!(caps.contains(cap), "bounding set lacks {cap}");
    }
    for bad in [
        "ProtectKernelTunables=yes",
        "ProtectProc=invisible",
        "ProcSubset=pid",
        "PrivateDevices=yes",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
    ] {
        assert!(!has(bad), "{bad} would stop the agent from working");
    }
}

/// Every example config in init/ passes `ghostwatch check` (the procd package ships one, the
/// README points at the others).
#[test]
fn example_configs_pass_check() {
    let mut n = 0;
    for e in std::fs::read_dir(repo("init")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().and_then(|x| x.to_str()) != Some("json") {
            continue;
        }
        n += 1;
        let out = Command::new(env!("CARGO_BIN_EXE_ghostwatch"))
            .arg("check")
            .arg("-c")
            .arg(&p)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{} fails check: {}",
            p.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for want in [
        "ghostwatch.json",
        "ghostwatch.zebra-box.json",
        "ghostwatch.openwrt.json",
    ] {
        assert!(repo("init").join(want).exists(), "init/{want} missing");
    }
    assert!(n >= 3);
}

/// issue 19: on OpenWrt procd feeds /dev/watchdog, so the shipped config and the procd script
/// never set `watchdog_device`; the metrics go where prometheus-node-exporter-lua-textfile
/// reads (`/var/prometheus/*.prom`; the temp file `PATH.tmp` does not match the glob), and
/// start_service makes that directory (nothing on OpenWrt does); `check` warnings are logged.
#[test]
fn procd_leaves_the_watchdog_to_procd_and_puts_metrics_where_node_exporter_lua_reads() {
    let json = std::fs::read_to_string(repo("init/ghostwatch.openwrt.json")).unwrap();
    let script = std::fs::read_to_string(repo("init/ghostwatch.procd")).unwrap();
    assert!(
        !json.contains("watchdog_device"),
        "the OpenWrt config takes procd's watchdog"
    );
    assert!(
        !script
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .any(|l| l.contains("watchdog")),
        "the procd script does something with the watchdog"
    );
    let metrics = json
        .split("\"metrics_file\": \"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("the OpenWrt config sets metrics_file");
    let (dir, name) = metrics.rsplit_once('/').unwrap();
    assert_eq!(dir, "/var/prometheus", "{metrics}");
    assert!(name.ends_with(".prom") && !format!("{name}.tmp").ends_with(".prom"));
    assert!(script.contains("METRICS_DIR=${GHOSTWATCH_METRICS_DIR:-/var/prometheus}"));

    if !support::require_program("busybox", support::INSTALL_BUSYBOX) {
        return;
    }
    let p = Procd::new();
    let dir = p.dir.path().join("prometheus");
    // A device held by another process (the FIFO seam, held read-write by a sleeper, as procd
    // holds /dev/watchdog): `check` warns, start_service logs the warning and goes on.
    let fifo = p.dir.path().join("wd");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: valid path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let mut holder = Command::new("sh")
        .args([
            "-c",
            &format!("exec 3<>'{}'; exec sleep 30", fifo.display()),
        ])
        .spawn()
        .unwrap();
    let ok = support::wait_for(std::time::Duration::from_secs(5), || {
        std::fs::read_link(format!("/proc/{}/fd/3", holder.id())).ok()
    });
    assert!(ok.is_some(), "holder did not open the FIFO");
    write_config(
        &p.config,
        &format!(
            "{{ \"interval_ms\": 1000, \"watchdog_device\": \"{}\" }}\n",
            fifo.display()
        ),
    );
    let (calls, out) = p.call("start_service");
    let _ = holder.kill();
    let _ = holder.wait();
    assert!(stdout(&out).contains("rc=0"), "{}", stdout(&out));
    let warned = calls
        .iter()
        .find(|c| c[0] == "logger" && c.join(" ").contains("is held by pid"))
        .unwrap_or_else(|| panic!("check's warning not logged: {calls:?}"));
    assert!(warned.contains(&"daemon.warn".to_string()), "{warned:?}");
    assert!(calls.iter().any(|c| c[0] == "procd_open_instance"));
    let m = std::fs::metadata(&dir).expect("metrics dir made");
    assert!(m.is_dir());
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o7777,
        0o755
    );
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        assert!(
            !calls
                .iter()
                .any(|c| c[0] == "logger" && c.join(" ").contains("can be faked")),
            "{calls:?}"
        );
    }
}
