//! init/ghostwatch.initd run for real: under busybox `sh` with nothing but busybox applets on
//! PATH, and under bash with the host's tools. The agent is the built binary, the syslog a
//! private rsyslogd; the script is pointed at them through its GHOSTWATCH_* overrides.
//!
//! Needs root (the agent refuses a config root does not own) and busybox + rsyslogd.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;
use support::{Rsyslogd, TempDir, wait_for};

#[derive(Clone, Copy, Debug)]
enum Shell {
    /// `busybox sh`, PATH = a directory of busybox applet links only.
    Busybox,
    Bash,
}

struct Box_ {
    shell: Shell,
    dir: TempDir,
    applets: PathBuf,
    config: PathBuf,
    pidfile: PathBuf,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("init/ghostwatch.initd")
}

impl Box_ {
    fn new(shell: Shell, syslog_sock: &Path) -> Box_ {
        let dir = TempDir::new("initd");
        let applets = dir.path().join("bin");
        std::fs::create_dir(&applets).unwrap();
        if let Shell::Busybox = shell {
            support::busybox_applets(&applets);
        }
        let config = dir.path().join("ghostwatch.json");
        let b = Box_ {
            shell,
            pidfile: dir.path().join("run/ghostwatch.pid"),
            config,
            applets,
            dir,
        };
        b.write_config(&format!(
            "{{\n  \"interval_ms\": 200,\n  \"syslog\": \"unix:{}\",\n  \"status_file\": \"{}\",\n  \"mlock\": false\n}}\n",
            syslog_sock.display(),
            b.dir.path().join("status.json").display()
        ));
        b
    }

    fn write_config(&self, text: &str) {
        std::fs::write(&self.config, text).unwrap();
        std::fs::set_permissions(&self.config, std::fs::Permissions::from_mode(0o644)).unwrap();
    }

    /// Runs `ghostwatch.initd ARG` under the chosen shell.
    fn run(&self, arg: &str) -> Output {
        let out = self.command(arg).output().expect("run init script");
        eprintln!(
            "[{:?}] initd {arg}: exit {:?}\n  stdout: {}  stderr: {}",
            self.shell,
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// The command that runs `ghostwatch.initd ARG` under the chosen shell.
    fn command(&self, arg: &str) -> Command {
        let mut c = match self.shell {
            Shell::Busybox => {
                let mut c = Command::new(self.applets.join("busybox"));
                c.arg("sh").env_clear().env("PATH", &self.applets);
                c
            }
            Shell::Bash => Command::new("bash"),
        };
        c.arg(script())
            .arg(arg)
            .env("GHOSTWATCH_BIN", env!("CARGO_BIN_EXE_ghostwatch"))
            .env("GHOSTWATCH_CONFIG", &self.config)
            .env("GHOSTWATCH_PIDFILE", &self.pidfile)
            .env("GHOSTWATCH_STOP_TIMEOUT", "5")
            .env("GHOSTWATCH_REFUSE_DELAY", "1");
        c
    }

    fn pid(&self) -> Option<i32> {
        std::fs::read_to_string(&self.pidfile)
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for Box_ {
    /// Never leave an agent behind, whatever failed.
    fn drop(&mut self) {
        if let Some(pid) = self.pid() {
            if comm(pid).as_deref() == Some("ghostwatch") {
                // SAFETY: plain kill of the agent this test started.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

fn comm(pid: i32) -> Option<String> {
    Some(
        std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .ok()?
            .trim()
            .to_string(),
    )
}

fn ready(what: &str) -> bool {
    support::require_root(what)
        && support::require_program("busybox", support::INSTALL_BUSYBOX)
        && support::require_program("rsyslogd", support::INSTALL_RSYSLOG)
}

fn lifecycle(shell: Shell) {
    let syslog = Rsyslogd::start();
    let b = Box_::new(shell, &syslog.sock);

    // start -> running, pidfile, start line in syslog from that PID.
    let out = b.run("start");
    assert!(out.status.success(), "start failed");
    let pid = b.pid().expect("pidfile written");
    assert!(
        support::alive(pid as u32),
        "agent {pid} not running after start"
    );
    assert_eq!(comm(pid).as_deref(), Some("ghostwatch"));
    let line = syslog
        .wait_line("event=start")
        .expect("event=start in syslog");
    assert!(
        line.contains(&format!("[{pid}]")),
        "start line not from pid {pid}: {line}"
    );

    // start again: already running, same PID.
    assert!(b.run("start").status.success());
    assert_eq!(b.pid(), Some(pid));

    let st = b.run("status");
    assert_eq!(st.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&st.stdout).contains(&pid.to_string()));

    // reload -> SIGHUP -> event=reload.
    assert!(b.run("reload").status.success());
    let line = syslog
        .wait_line("event=reload")
        .expect("event=reload in syslog");
    assert!(line.contains("result=ok"), "{line}");

    // A bad config: reload refuses it with the position, the agent keeps running.
    let good = std::fs::read_to_string(&b.config).unwrap();
    b.write_config("{\n  \"interval_ms\": 200,\n  \"trigerr\": 1\n}\n");
    let out = b.run("reload");
    assert!(!out.status.success(), "reload accepted a bad config");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{}:3:3:", b.config.display())),
        "no FILE:LINE:COL in: {err}"
    );
    assert!(
        support::alive(pid as u32),
        "a refused reload must not stop the agent"
    );
    b.write_config(&good);

    // stop -> gone, pidfile removed, stop line in syslog.
    assert!(b.run("stop").status.success());
    assert!(!b.pidfile.exists(), "pidfile left behind");
    assert!(
        wait_for(Duration::from_secs(5), || (!support::alive(pid as u32))
            .then_some(()))
        .is_some(),
        "agent {pid} still running after stop"
    );
    syslog
        .wait_line("event=stop")
        .expect("event=stop in syslog");
    assert_eq!(b.run("status").status.code(), Some(3));

    // stop when stopped is fine (init systems call it blindly).
    assert!(b.run("stop").status.success());

    // restart from stopped starts it.
    assert!(b.run("restart").status.success());
    let pid2 = b.pid().expect("pidfile after restart");
    assert!(support::alive(pid2 as u32));
    assert!(b.run("stop").status.success());
    assert!(
        wait_for(Duration::from_secs(5), || (!support::alive(pid2 as u32))
            .then_some(()))
        .is_some()
    );
}

fn bad_config_refused(shell: Shell) {
    let syslog = Rsyslogd::start();
    let b = Box_::new(shell, &syslog.sock);
    b.write_config("{\n  \"interval_ms\": 1000,\n  \"rules\": [ { \"name\": \"x\", \"trigger\": \"ghots\", \"action\": \"log\" } ]\n}\n");
    let out = b.run("start");
    assert!(!out.status.success(), "start accepted a bad config");
    let err = String::from_utf8_lossy(&out.stderr);
    let pos = format!("{}:3:", b.config.display());
    assert!(err.contains(&pos), "stderr lacks {pos}: {err}");
    assert!(
        err.contains("ghots"),
        "stderr does not say what is wrong: {err}"
    );
    assert!(!b.pidfile.exists(), "pidfile written for a refused start");
    assert!(
        support::pids_with_cmdline(&b.config.display().to_string()).is_empty(),
        "an agent runs with the refused config"
    );

    // A missing config is refused the same way (with the OS reason).
    std::fs::remove_file(&b.config).unwrap();
    let out = b.run("start");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains(&b.config.display().to_string()));
}

fn stale_pidfile_not_signalled(shell: Shell) {
    let syslog = Rsyslogd::start();
    let b = Box_::new(shell, &syslog.sock);
    // The pidfile names a live process that is not ghostwatch (a PID reused after a crash).
    let mut other = support::ChildGuard(Command::new("sleep").arg("30").spawn().unwrap());
    std::fs::create_dir_all(b.pidfile.parent().unwrap()).unwrap();
    std::fs::write(&b.pidfile, format!("{}\n", other.pid())).unwrap();
    assert_eq!(b.run("status").status.code(), Some(1), "stale pidfile");
    assert!(b.run("stop").status.success());
    assert!(
        other.is_running(),
        "stop signalled a process that is not ghostwatch"
    );
    assert!(!b.pidfile.exists());
    assert!(!b.run("reload").status.success());
    assert!(
        other.is_running(),
        "reload signalled a process that is not ghostwatch"
    );
}

#[test]
fn busybox_start_reload_stop() {
    if ready("initd under busybox") {
        lifecycle(Shell::Busybox);
    }
}

#[test]
fn bash_start_reload_stop() {
    if ready("initd under bash") {
        lifecycle(Shell::Bash);
    }
}

#[test]
fn busybox_bad_config_refused() {
    if ready("initd bad config under busybox") {
        bad_config_refused(Shell::Busybox);
    }
}

#[test]
fn bash_bad_config_refused() {
    if ready("initd bad config under bash") {
        bad_config_refused(Shell::Bash);
    }
}

#[test]
fn busybox_stale_pidfile() {
    if ready("initd stale pidfile under busybox") {
        stale_pidfile_not_signalled(Shell::Busybox);
    }
}

#[test]
fn bash_stale_pidfile() {
    if ready("initd stale pidfile under bash") {
        stale_pidfile_not_signalled(Shell::Bash);
    }
}

/// The inittab mode: `foreground` becomes the agent (same PID, so init supervises the agent
/// itself); a bad config is refused, after a delay that keeps init from respawning in a loop.
fn foreground(shell: Shell) {
    let syslog = Rsyslogd::start();
    let b = Box_::new(shell, &syslog.sock);
    let child = b
        .command("foreground")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut g = support::ChildGuard(child);
    let pid = g.pid() as i32;
    let line = syslog.wait_line("event=start").expect("agent started");
    assert!(
        line.contains(&format!("[{pid}]")),
        "not exec'd in place: {line}"
    );
    assert_eq!(comm(pid).as_deref(), Some("ghostwatch"));
    // SAFETY: plain kill of our child.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let st = g.0.wait().unwrap();
    assert_eq!(st.code(), Some(0));

    b.write_config("{ \"interval_ms\": 5 }\n");
    let t0 = std::time::Instant::now();
    let out = b.run("foreground");
    assert_eq!(out.status.code(), Some(6));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(":1:18: \"interval_ms\" must be between")
    );
    assert!(
        t0.elapsed() >= Duration::from_millis(900),
        "refused without the delay"
    );
}

#[test]
fn busybox_foreground_for_inittab() {
    if ready("initd foreground under busybox") {
        foreground(Shell::Busybox);
    }
}

#[test]
fn bash_foreground_for_inittab() {
    if ready("initd foreground under bash") {
        foreground(Shell::Bash);
    }
}

/// Without arguments or with an unknown one: usage on stderr, exit 2, nothing started.
#[test]
fn usage() {
    let out = Command::new("sh")
        .arg(script())
        .arg("frobnicate")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage:"));
}
