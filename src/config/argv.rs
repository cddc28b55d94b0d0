//! Command templates of `exec`/`restart` rules: which placeholders exist, where they may stand,
//! and how they are filled.
//!
//! `{comm}` is text the target process chose for itself (any 15 bytes, e.g.
//! `;id>/tmp/x;#`), so it must never be read as code. Commands run without a shell, and the
//! config is refused (`check_template`) where a placeholder could still become code or a
//! program name:
//! - argv[0], the program, holds no placeholder;
//! - `{comm}` stands only as a whole argv item, never inside a longer one (no `--name={comm}`,
//!   no `"kill $(pidof {comm})"`);
//! - when the program is a shell, `{comm}` is only a positional parameter after `-c SCRIPT
//!   NAME` (reach it as `"$1"` in the script), never the script or a script file.
//!
//! At run time a `{comm}` that starts with `-` (it would be read as an option) or is empty is
//! refused (`substitute_all`). `{pid}` and `{inode}` are numbers ghostwatch formats: they may
//! stand anywhere but argv[0].

/// The values placeholders are filled with: the target's PID, its name, its socket's inode.
#[derive(Clone, Copy, Debug)]
pub struct Fill<'a> {
    pub pid: u32,
    pub comm: &'a [u8],
    pub inode: u64,
}

/// Every placeholder, as written in a template.
pub const PLACEHOLDERS: [&str; 3] = ["{pid}", "{comm}", "{inode}"];

/// The placeholder whose value the target process chooses.
const COMM: &str = "{comm}";

/// Program names that read a script from their arguments (`busybox` runs `sh`/`ash` applets).
const SHELLS: [&str; 9] = [
    "sh", "ash", "bash", "dash", "ksh", "mksh", "zsh", "busybox", "hush",
];

/// Why a template is refused: the argv index and what to write instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TemplateError {
    pub item: usize,
    pub why: &'static str,
}

fn has_placeholder(s: &str) -> bool {
    PLACEHOLDERS.iter().any(|p| crate::sys::contains(s, p))
}

/// True if `prog` (argv[0]) names a shell, by its last path component.
fn is_shell(prog: &str) -> bool {
    let base = prog.rsplit('/').next().unwrap_or(prog);
    SHELLS.contains(&base)
}

/// Checks where placeholders stand in `argv` (see the module comment). Ok, or the first item
/// that breaks a rule with a message saying what to write instead.
pub fn check_template<S: AsRef<str>>(argv: &[S]) -> Result<(), TemplateError> {
    let Some((prog, _)) = argv.split_first() else {
        return Ok(());
    };
    let prog = prog.as_ref();
    if has_placeholder(prog) {
        return Err(TemplateError {
            item: 0,
            why: "the program (argv[0]) must be a fixed path, without placeholders",
        });
    }
    for (i, a) in argv.iter().map(AsRef::as_ref).enumerate() {
        if crate::sys::contains(a, COMM) && a != COMM {
            return Err(TemplateError {
                item: i,
                why: "{comm} (a name the process chose itself) must be a whole argv item, e.g. [\"/etc/init.d/restart-owner\", \"{comm}\"], never part of a longer one",
            });
        }
    }
    if is_shell(prog) {
        // The first option word holding 'c' (-c, -ec, -xc) takes the script and then $0.
        let applet = usize::from(prog.rsplit('/').next() == Some("busybox"));
        let script = argv
            .iter()
            .map(AsRef::as_ref)
            .enumerate()
            .skip(1 + applet)
            .take_while(|(_, a)| a.starts_with('-'))
            .find(|(_, a)| !a.starts_with("--") && a.contains('c'))
            .map(|(i, _)| i + 1);
        let first_param = script.map_or(usize::MAX, |s| s + 2);
        if let Some(i) = argv.iter().position(|a| a.as_ref() == COMM) {
            if i < first_param {
                return Err(TemplateError {
                    item: i,
                    why: "a shell may get {comm} only as a positional parameter: [\"/bin/sh\", \"-c\", \"... \\\"$1\\\" ...\", \"sh\", \"{comm}\"], never as the script or a script file",
                });
            }
        }
    }
    Ok(())
}

/// The argv to run: every item of `argv` with `{pid}`, `{comm}`, `{inode}` filled from
/// `target` (items unchanged without one). Err (the action's failure reason) if the template
/// breaks `check_template`, or `{comm}` would be empty or start with `-` (an option).
pub fn substitute_all<S: AsRef<str>>(
    argv: &[S],
    target: Option<&Fill>,
) -> Result<Vec<std::ffi::OsString>, &'static str> {
    use std::os::unix::ffi::OsStringExt;
    // Config validation already refused these; a caller that skipped it is refused here.
    check_template(argv).map_err(|e| e.why)?;
    if let Some(t) = target {
        let name = t.comm;
        let uses_comm = argv.iter().any(|a| crate::sys::contains(a.as_ref(), COMM));
        if uses_comm && (name.is_empty() || name.starts_with(b"-")) {
            return Err("refusing to pass the process name as {comm}: empty or starts with '-'");
        }
    }
    Ok(argv
        .iter()
        .map(|a| std::ffi::OsString::from_vec(substitute(a.as_ref(), target)))
        .collect())
}

/// `s` with `{pid}`, `{comm}`, `{inode}` replaced from `target` (unchanged without one).
pub fn substitute(s: &str, target: Option<&Fill>) -> Vec<u8> {
    let Some(t) = target else {
        return s.as_bytes().to_vec();
    };
    let mut out = Vec::with_capacity(s.len() + 16);
    let mut rest = s;
    while let Some(i) = rest.find('{') {
        out.extend_from_slice(&rest.as_bytes()[..i]);
        let tail = &rest[i..];
        if let Some(r) = tail.strip_prefix("{pid}") {
            out.extend_from_slice(t.pid.to_string().as_bytes());
            rest = r;
        } else if let Some(r) = tail.strip_prefix(COMM) {
            out.extend_from_slice(t.comm);
            rest = r;
        } else if let Some(r) = tail.strip_prefix("{inode}") {
            out.extend_from_slice(t.inode.to_string().as_bytes());
            rest = r;
        } else {
            out.push(b'{');
            rest = &tail[1..];
        }
    }
    out.extend_from_slice(rest.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v<'a>(items: &[&'a str]) -> Vec<&'a str> {
        items.to_vec()
    }

    fn target(comm: &[u8]) -> Fill<'_> {
        Fill {
            pid: 42,
            comm,
            inode: 77,
        }
    }

    #[test]
    fn templates_that_could_run_a_name_as_code_are_refused() {
        let bad = |items: &[&str]| check_template(&v(items)).unwrap_err().item;
        assert_eq!(bad(&["/bin/sh", "-c", "kill {comm}"]), 2);
        assert_eq!(bad(&["/bin/sh", "-c", "{comm}"]), 2);
        assert_eq!(bad(&["/bin/sh", "-ec", "{comm}"]), 2);
        assert_eq!(bad(&["/bin/sh", "-c", "x", "{comm}"]), 3);
        assert_eq!(bad(&["/bin/sh", "{comm}"]), 1);
        assert_eq!(bad(&["/bin/busybox", "sh", "{comm}"]), 2);
        assert_eq!(bad(&["/usr/bin/{comm}"]), 0);
        assert_eq!(bad(&["/etc/init.d/x", "--name={comm}"]), 1);
        assert_eq!(bad(&["/usr/sbin/{pid}"]), 0);
        let ok = |items: &[&str]| check_template(&v(items)).is_ok();
        assert!(ok(&["/bin/sh", "-c", "echo \"$1\"", "sh", "{comm}"]));
        assert!(ok(&["/etc/init.d/zebra", "restart"]));
        assert!(ok(&[
            "/usr/bin/logger",
            "--pid={pid}",
            "{comm}",
            "inode={inode}"
        ]));
        assert!(ok(&["/bin/sh", "-c", "kill -HUP {pid}"]));
        assert!(ok(&[
            "/bin/busybox",
            "sh",
            "-c",
            "echo \"$1\"",
            "sh",
            "{comm}"
        ]));
    }

    #[test]
    fn hostile_names_stay_one_inert_argument() {
        let t = target(b";id>/tmp/x;#");
        let out = substitute_all(&v(&["/bin/echo", "{comm}", "--pid={pid}"]), Some(&t)).unwrap();
        let out: Vec<&[u8]> = out.iter().map(|o| o.as_encoded_bytes()).collect();
        assert_eq!(out, [&b"/bin/echo"[..], b";id>/tmp/x;#", b"--pid=42"]);
        let t = target(b"-rf");
        assert!(substitute_all(&v(&["/bin/echo", "{comm}"]), Some(&t)).is_err());
        // A name starting with '-' is fine where {comm} is not used.
        assert!(substitute_all(&v(&["/bin/echo", "{pid}"]), Some(&t)).is_ok());
    }

    #[test]
    fn substitutes_placeholders() {
        let t = target(b"zeb ra");
        assert_eq!(
            substitute("--pid={pid} {comm}/{inode} {x} {", Some(&t)),
            b"--pid=42 zeb ra/77 {x} {".to_vec()
        );
        assert_eq!(substitute("{pid}", None), b"{pid}".to_vec());
    }
}
