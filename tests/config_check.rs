//! `ghostwatch check -c FILE` against the real binary: every broken config must print exactly
//! `FILE:LINE:COL: message` on stderr and exit 2; every good one `FILE: ok (N rules)` and exit 0.
//! The messages are the product here (operators read them on a router console), so they are
//! asserted in full.

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_ghostwatch");

/// A scratch directory removed on drop, even when an assertion fails.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("gw-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // Configs in here must pass the trust check: mode 0755 whatever the umask.
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod temp dir");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `check -c path`; returns (exit code, stdout, stderr).
fn check(path: &Path) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(["check", "-c"])
        .arg(path)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const TOP_KEYS: &str = "interval_ms, syslog, facility, syslog_format, syslog_queue_lines, status_file, metrics_file, dry_run, \
ghost_warn_kb, ghost_act_kb, ghost_growth, backlog_warn_bytes, backlog_act_bytes, \
min_available_kb, available_warn_kb, eta_window_s, cooldown_s, max_actions_per_hour, \
oom_score_adj, mlock, breadcrumb_file, drain_max_packets, verify_s, protect, watchdog_device, \
watchdog_timeout_s, rules";

const RULE_KEYS: &str = "name, trigger, comm, exe, uid, user, action, argv, sysctl, value, \
rcvbuf, signal, timeout_s, escalate_after_s, eta_s";

/// (what is wrong, config text, expected "LINE:COL: message").
fn broken() -> Vec<(&'static str, Vec<u8>, String)> {
    let b = |s: &str| s.as_bytes().to_vec();
    let many_rules = format!(
        "{{\"rules\": [\n{}\n]}}",
        vec![r#"  {"trigger": "ghost", "action": "log"}"#; 17].join(",\n")
    );
    vec![
        (
            "missing comma",
            b("{\n  \"interval_ms\": 1000\n  \"dry_run\": true\n}\n"),
            "3:3: expected ',' or '}' after the value of \"interval_ms\", got '\"' (missing ','?)".into(),
        ),
        (
            "trailing comma in object",
            b("{\n  \"dry_run\": true,\n}\n"),
            "2:18: trailing comma before '}' (JSON does not allow one)".into(),
        ),
        (
            "trailing comma in rules",
            b("{\"rules\": [\n  {\"trigger\": \"ghost\", \"action\": \"log\"},\n]}"),
            "2:40: trailing comma before ']' (JSON does not allow one)".into(),
        ),
        (
            "unclosed object",
            b("{\n  \"dry_run\": true\n"),
            "3:1: unexpected end of file (the '{' at 1:1 is not closed)".into(),
        ),
        (
            "unclosed rule",
            b("{\"rules\": [\n  {\"trigger\": \"ghost\""),
            "2:22: unexpected end of file (the '{' at 2:3 is not closed)".into(),
        ),
        (
            "comment",
            b("{\n  // poll every second\n  \"interval_ms\": 1000\n}\n"),
            "2:3: JSON does not allow comments (expected a key in double quotes or '}')".into(),
        ),
        (
            "trailing garbage",
            b("{}\n}\n"),
            "2:1: unexpected text after the end of the config object".into(),
        ),
        (
            "not an object",
            b("[]"),
            "1:1: the config must be a JSON object ({ ... }), got an array".into(),
        ),
        (
            "unknown top-level key",
            b("{\n  \"intervall_ms\": 500\n}"),
            format!("2:3: unknown key \"intervall_ms\" (expected one of: {TOP_KEYS})"),
        ),
        (
            "unknown rule key",
            b("{\"rules\": [\n  {\"trigerr\": \"ghost\", \"action\": \"log\"}\n]}"),
            format!("2:4: unknown key \"trigerr\" in rules[0] (expected one of: {RULE_KEYS})"),
        ),
        (
            "number as string",
            b("{\"interval_ms\": \"1000\"}"),
            "1:17: \"interval_ms\" must be a number, got a string (remove the quotes)".into(),
        ),
        (
            "boolean as string",
            b("{\"dry_run\": \"yes\"}"),
            "1:13: \"dry_run\" must be true or false, got a string".into(),
        ),
        (
            "bare word",
            b("{\"dry_run\": yes}"),
            "1:13: unexpected \"yes\" (text needs double quotes; booleans are true or false)"
                .into(),
        ),
        (
            "single quotes",
            b("{\"syslog\": 'stderr'}"),
            "1:12: JSON strings need double quotes, not single quotes (in \"syslog\")".into(),
        ),
        (
            "units on a number",
            b("{\"ghost_act_kb\": 128M}"),
            "1:18: invalid number \"128M\" (numbers are plain decimal digits: no units, no hex)"
                .into(),
        ),
        (
            "fraction",
            b("{\"interval_ms\": 1.5}"),
            "1:17: \"interval_ms\" must be a whole number, got 1.5".into(),
        ),
        (
            "interval too small",
            b("{\n  \"interval_ms\": 5\n}"),
            "2:18: \"interval_ms\" must be between 10 and 3600000, got 5".into(),
        ),
        (
            "max_actions_per_hour too big",
            b("{\"max_actions_per_hour\": 65}"),
            "1:26: \"max_actions_per_hour\" must be between 0 and 64, got 65".into(),
        ),
        (
            "oom_score_adj too small",
            b("{\"oom_score_adj\": -1001}"),
            "1:19: \"oom_score_adj\" must be between -1000 and 1000, got -1001".into(),
        ),
        (
            "huge number",
            b("{\"ghost_act_kb\": 123456789012345678901234567890}"),
            "1:18: \"ghost_act_kb\" must be between 1 and 1073741824, got 123456789012345678901234567890".into(),
        ),
        (
            "warn above act",
            b("{\n  \"ghost_warn_kb\": 200000,\n  \"ghost_act_kb\": 100000\n}"),
            "2:20: \"ghost_warn_kb\" (200000) must not be above \"ghost_act_kb\" (100000)".into(),
        ),
        (
            "backlog warn above act",
            b("{\"backlog_act_bytes\": 1000, \"backlog_warn_bytes\": 2000}"),
            "1:51: \"backlog_warn_bytes\" (2000) must not be above \"backlog_act_bytes\" (1000)"
                .into(),
        ),
        (
            "available warn below min",
            b("{\"min_available_kb\": 20000, \"available_warn_kb\": 10000}"),
            "1:50: \"available_warn_kb\" (10000) must not be below \"min_available_kb\" (20000)"
                .into(),
        ),
        (
            "unknown facility",
            b("{\"facility\": \"deamon\"}"),
            "1:14: unknown facility \"deamon\" (expected one of: kern, user, mail, daemon, auth, \
             syslog, lpr, news, uucp, cron, authpriv, ftp, local0, local1, local2, local3, \
             local4, local5, local6, local7)"
                .into(),
        ),
        (
            "syslog without port",
            b("{\"syslog\": \"udp:10.0.0.1\"}"),
            "1:12: \"syslog\" needs HOST:PORT after the protocol, got \"udp:10.0.0.1\"".into(),
        ),
        (
            "syslog port 0",
            b("{\"syslog\": \"tcp:logs:0\"}"),
            "1:12: \"syslog\" port must be a number from 1 to 65535, got \"tcp:logs:0\"".into(),
        ),
        (
            "syslog scheme",
            b("{\"syslog\": \"/dev/log\"}"),
            "1:12: \"syslog\" must be \"unix:/PATH\", \"udp:HOST:PORT\", \"tcp:HOST:PORT\" or \
             \"stderr\", got \"/dev/log\""
                .into(),
        ),
        (
            "syslog IPv6 without brackets",
            b("{\"syslog\": \"udp:fd00::1:514\"}"),
            "1:12: \"syslog\" IPv6 hosts need brackets, e.g. \"udp:[::1]:514\", got \
             \"udp:fd00::1:514\""
                .into(),
        ),
        (
            "duplicate key",
            b("{\n  \"interval_ms\": 500,\n  \"interval_ms\": 2000\n}"),
            "3:3: duplicate key \"interval_ms\" (first set at 2:3)".into(),
        ),
        (
            "relative status_file",
            b("{\"status_file\": \"ghostwatch.status\"}"),
            "1:17: \"status_file\" must be an absolute path, got \"ghostwatch.status\"".into(),
        ),
        (
            "rules is an object",
            b("{\"rules\": {\"trigger\": \"ghost\"}}"),
            "1:11: \"rules\" must be an array of rule objects, got an object".into(),
        ),
        (
            "rule is a string",
            b("{\"rules\": [\"ghost\"]}"),
            "1:12: rules[0] must be an object, got a string".into(),
        ),
        ("too many rules", b(&many_rules), "18:3: too many rules (at most 16)".into()),
        (
            "comm too long",
            b("{\"rules\": [{\"trigger\": \"backlog\", \"action\": \"kill\", \"comm\": \"quagga-zebra-daemon\"}]}"),
            "1:61: \"comm\" in rules[0] is too long (19 bytes; at most 15)".into(),
        ),
        (
            "too many argv items",
            b("{\"rules\": [{\"trigger\": \"ghost\", \"action\": \"exec\",\n  \"argv\": [\"1\", \"2\", \"3\", \"4\", \"5\", \"6\", \"7\", \"8\", \"9\"]}]}"),
            "2:52: too many items in \"argv\" in rules[0] (at most 8)".into(),
        ),
        (
            "argv item not a string",
            b("{\"rules\": [{\"trigger\": \"ghost\", \"action\": \"exec\", \"argv\": [\"/bin/kill\", 9]}]}"),
            "1:73: rules[0].argv[1] must be a string, got a number".into(),
        ),
        (
            "unknown trigger",
            b("{\"rules\": [{\"trigger\": \"memory\", \"action\": \"log\"}]}"),
            "1:24: unknown trigger \"memory\" in rules[0] (expected one of: ghost, backlog, available, oom_eta)".into(),
        ),
        (
            "unknown action",
            b("{\"rules\": [\n  {\"trigger\": \"ghost\", \"action\": \"restat\", \"comm\": \"zebra\"}\n]}"),
            "2:34: unknown action \"restat\" in rules[0] (expected one of: log, exec, restart, \
             sysctl, clamp, drain, kill, reboot)"
                .into(),
        ),
        (
            "missing trigger",
            b("{\"rules\": [\n  {\"action\": \"log\"}\n]}"),
            "2:3: rules[0] needs \"trigger\" (one of: ghost, backlog, available, oom_eta)".into(),
        ),
        (
            "missing action",
            b("{\"rules\": [{\"trigger\": \"ghost\"}]}"),
            "1:12: rules[0] needs \"action\" (one of: log, exec, restart, sysctl, clamp, drain, \
             kill, reboot)"
                .into(),
        ),
        (
            "exec without argv",
            b("{\"rules\": [{\"trigger\": \"ghost\", \"action\": \"exec\"}]}"),
            "1:43: action \"exec\" in rules[0] needs \"argv\" (the program and its arguments, \
             e.g. [\"/etc/init.d/zebra\", \"restart\"])"
                .into(),
        ),
        (
            "restart with empty argv",
            b("{\"rules\": [{\"trigger\": \"backlog\", \"comm\": \"zebra\", \"action\": \"restart\", \"argv\": []}]}"),
            "1:81: \"argv\" in rules[0] must not be empty".into(),
        ),
        (
            "sysctl without value",
            b("{\"rules\": [{\"trigger\": \"ghost\", \"action\": \"sysctl\", \"sysctl\": \"net.core.rmem_max\"}]}"),
            "1:43: action \"sysctl\" in rules[0] needs \"value\" (the text to write, e.g. \"4194304\")".into(),
        ),
        (
            "sysctl path escape",
            b("{\"rules\": [{\"trigger\": \"ghost\", \"action\": \"sysctl\", \"sysctl\": \"../../etc/passwd\", \"value\": \"x\"}]}"),
            "1:63: \"sysctl\" in rules[0] must be a dotted name of a-z, 0-9, '_', '.', '-' (no '/' \
             or '..'), got \"../../etc/passwd\""
                .into(),
        ),
        (
            "clamp without rcvbuf",
            b("{\"rules\": [{\"trigger\": \"backlog\", \"comm\": \"zebra\", \"action\": \"clamp\"}]}"),
            "1:62: action \"clamp\" in rules[0] needs \"rcvbuf\" (bytes, 4096 to 1073741824)".into(),
        ),
        (
            "rcvbuf too small",
            b("{\"rules\": [{\"trigger\": \"backlog\", \"comm\": \"zebra\", \"action\": \"clamp\", \"rcvbuf\": 1024}]}"),
            "1:81: \"rcvbuf\" in rules[0] must be between 4096 and 1073741824, got 1024".into(),
        ),
        (
            "kill without a target",
            b("{\"rules\": [\n  {\"trigger\": \"backlog\", \"action\": \"kill\"}\n]}"),
            "2:36: action \"kill\" in rules[0] would act on whatever process owns the worst \
             socket; name its comm or exe"
                .into(),
        ),
        (
            "duplicate rule names",
            b("{\"rules\": [\n  {\"trigger\": \"ghost\", \"action\": \"log\"},\n  {\"name\": \"rule1\", \"trigger\": \"backlog\", \"action\": \"log\"}\n]}"),
            "3:12: duplicate rule name \"rule1\" in rules[1] (rules[0] has it too)".into(),
        ),
        (
            "unknown signal",
            b("{\"rules\": [{\"trigger\": \"backlog\", \"comm\": \"zebra\", \"action\": \"kill\", \"signal\": \"SIGTERMINATE\"}]}"),
            "1:80: unknown signal \"SIGTERMINATE\" in rules[0] (expected a number from 1 to 64 or \
             one of: HUP, INT, QUIT, ABRT, KILL, USR1, USR2, PIPE, ALRM, TERM, CONT, STOP, TSTP, \
             WINCH, PWR)"
                .into(),
        ),
        (
            "signal number out of range",
            b("{\"rules\": [{\"trigger\": \"backlog\", \"comm\": \"zebra\", \"action\": \"kill\", \"signal\": 99}]}"),
            "1:80: \"signal\" in rules[0] must be between 1 and 64, got 99".into(),
        ),
        (
            "key of another action",
            b("{\"rules\": [{\"trigger\": \"backlog\", \"comm\": \"zebra\", \"action\": \"drain\", \"rcvbuf\": 4096}]}"),
            "1:71: \"rcvbuf\" in rules[0] is only used by action \"clamp\" (this rule's action is \
             \"drain\")"
                .into(),
        ),
        (
            "timeout_s zero",
            b("{\"rules\": [{\"trigger\": \"ghost\", \"action\": \"exec\", \"argv\": [\"/bin/true\"], \"timeout_s\": 0}]}"),
            "1:87: \"timeout_s\" in rules[0] must be between 1 and 3600, got 0".into(),
        ),
        (
            "available trigger while off",
            b("{\"rules\": [{\"trigger\": \"available\", \"action\": \"log\"}]}"),
            "1:24: rules[0] has trigger \"available\" but \"min_available_kb\" is 0 (off), so it \
             would never fire; set min_available_kb"
                .into(),
        ),
        (
            "oom_eta without eta_s",
            b("{\"rules\": [{\"trigger\": \"oom_eta\", \"action\": \"log\"}]}"),
            "1:24: rules[0] has trigger \"oom_eta\" but no \"eta_s\" (act while the estimated \
             seconds until MemAvailable reaches min_available_kb are below it, 1 to 86400)"
                .into(),
        ),
        (
            "eta_s out of range",
            b("{\"rules\": [{\"trigger\": \"oom_eta\", \"eta_s\": 86401, \"action\": \"log\"}]}"),
            "1:44: \"eta_s\" in rules[0] must be between 1 and 86400, got 86401".into(),
        ),
        (
            "eta_s zero",
            b("{\"rules\": [{\"trigger\": \"oom_eta\", \"eta_s\": 0, \"action\": \"log\"}]}"),
            "1:44: \"eta_s\" in rules[0] must be between 1 and 86400, got 0".into(),
        ),
        (
            "eta_s on another trigger",
            b("{\"rules\": [{\"trigger\": \"available\", \"eta_s\": 30, \"action\": \"log\"}], \"min_available_kb\": 1}"),
            "1:37: \"eta_s\" in rules[0] is only used by trigger \"oom_eta\" (this rule's trigger is \"available\")"
                .into(),
        ),
        (
            "eta_window_s shorter than 4 polls",
            b("{\"interval_ms\": 10000, \"rules\": [{\"trigger\": \"oom_eta\", \"eta_s\": 60, \"action\": \"log\"}]}"),
            "1:46: rules[0] has trigger \"oom_eta\" but \"eta_window_s\" (30) holds fewer than 4 polls \
             of \"interval_ms\" (10000); make it at least 40"
                .into(),
        ),
        (
            "rule name with a space",
            b("{\"rules\": [{\"name\": \"drain zebra\", \"trigger\": \"ghost\", \"action\": \"log\"}]}"),
            "1:21: rule name \"drain zebra\" in rules[0] must be letters, digits, '_', '-' or '.' \
             (it appears in syslog lines as rule=NAME)"
                .into(),
        ),
        (
            "string broken across lines",
            b("{\n  \"status_file\": \"/var/run/\nghostwatch.status\"\n}"),
            "2:18: string not closed before the end of its line (missing '\"')".into(),
        ),
        (
            "invalid escape",
            b("{\"status_file\": \"C:\\temp\\x\"}"),
            "1:25: invalid escape \"\\\\x\" (JSON allows \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)"
                .into(),
        ),
        (
            "NUL escape",
            b("{\"rules\": [{\"trigger\": \"ghost\", \"action\": \"exec\", \"argv\": [\"/bin/x\\u0000\"]}]}"),
            "1:67: strings must not contain NUL (\\u0000)".into(),
        ),
        (
            "invalid UTF-8",
            b"{\"breadcrumb_file\": \"/data/\xff\"}".to_vec(),
            "1:28: invalid UTF-8 in a string (the config must be UTF-8)".into(),
        ),
        (
            "leading zero",
            b("{\"cooldown_s\": 060}"),
            "1:16: numbers must not have leading zeros".into(),
        ),
        (
            "protect: relative path",
            b("{\"protect\": [\"feeddog\",\n  \"sbin/feeddog\"]}"),
            "2:3: protect[1] \"sbin/feeddog\" must be a process name or an absolute exe path"
                .into(),
        ),
        (
            "protect: name longer than comm",
            b("{\"protect\": [\"a-watchdog-feeder\"]}"),
            "1:14: protect[0] \"a-watchdog-feeder\" is longer than a process name can be (15 bytes, as comm shows it)".into(),
        ),
        (
            "protect: not an array",
            b("{\"protect\": \"feeddog\"}"),
            "1:13: \"protect\" must be an array of strings, got a string".into(),
        ),
        (
            "protect: a number in the list",
            b("{\"protect\": [\"feeddog\", 7]}"),
            "1:25: protect[1] must be a string, got a number".into(),
        ),
        (
            "watchdog_device: relative",
            b("{\"watchdog_device\": \"dev/watchdog\"}"),
            "1:21: \"watchdog_device\" must be an absolute path, got \"dev/watchdog\"".into(),
        ),
        (
            "watchdog_timeout_s without a device",
            b("{\"watchdog_timeout_s\": 30}"),
            "1:24: \"watchdog_timeout_s\" needs \"watchdog_device\"".into(),
        ),
        (
            "watchdog_timeout_s shorter than two intervals and a drain",
            b("{\"interval_ms\": 2000, \"watchdog_device\": \"/dev/watchdog\",\n \"watchdog_timeout_s\": 5}"),
            "2:24: \"watchdog_timeout_s\" (5) must be at least 6: two intervals plus the longest action inside a poll (a drain, 2000 ms)".into(),
        ),
    ]
}

#[test]
fn broken_configs_print_file_line_col_and_exit_2() {
    let dir = Scratch::new("config-check");
    let cases = broken();
    assert!(cases.len() >= 25);
    let mut failures = Vec::new();
    for (i, (what, text, expected)) in cases.iter().enumerate() {
        let path = dir.0.join(format!("bad{i:02}.json"));
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .unwrap();
        let (code, stdout, stderr) = check(&path);
        let want = format!("{}:{expected}\n", path.display());
        if code != 2 || stderr != want || !stdout.is_empty() {
            failures.push(format!(
                "{what}: exit {code}\n   got: {stderr}  want: {want}  stdout: {stdout:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    println!(
        "{} broken configs rejected with exact messages",
        cases.len()
    );
}

#[test]
fn good_configs_exit_0() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cases = [
        ("init/ghostwatch.json", 5),
        ("tests/data/config/good_empty.json", 0),
        ("tests/data/config/good_braces.json", 0),
        ("tests/data/config/good_all_actions.json", 8),
        ("tests/data/config/good_bom_crlf.json", 1),
        ("tests/data/config/good_nulls.json", 1),
    ];
    for (rel, n) in cases {
        let path = root.join(rel);
        let (code, stdout, stderr) = check(&path);
        let rules = if n == 1 { "rule" } else { "rules" };
        assert_eq!(
            (code, stdout, stderr),
            (
                0,
                format!("{}: ok ({n} {rules})\n", path.display()),
                String::new()
            ),
            "{rel}"
        );
    }
}

#[test]
fn unreadable_and_oversized_files() {
    let dir = Scratch::new("config-check-io");
    let missing = dir.0.join("missing.json");
    let (code, _, stderr) = check(&missing);
    assert_eq!(code, 2);
    assert_eq!(
        stderr,
        format!(
            "{}:0:0: cannot read the config: No such file or directory (errno 2)\n",
            missing.display()
        )
    );

    let (code, _, stderr) = check(&dir.0);
    assert_eq!(code, 2);
    assert_eq!(
        stderr,
        format!(
            "{}:0:0: refusing a config that is a directory, not a regular file; fix: point -c at a regular file\n",
            dir.0.display()
        )
    );

    let big = dir.0.join("big.json");
    std::fs::write(&big, format!("{{}}{}", " ".repeat(16 * 1024))).unwrap();
    let (code, _, stderr) = check(&big);
    assert_eq!(code, 2);
    assert_eq!(
        stderr,
        format!(
            "{}:0:0: the config is larger than 16384 bytes (MAX_FILE); remove unused rules\n",
            big.display()
        )
    );
}
