//! The `use crate::…` graph between the top-level modules of src/ has no circle (ARCHITECTURE.md,
//! "Invariants"). A circle is where layering starts to rot: `status` reading `Agent`, `audit`
//! knowing `act`'s types. This reads the source as text, so it needs no build-time tooling.
//!
//! Two graphs, both checked. Folders: nodes are the top-level modules (`src/act/`, `src/report/`
//! …); an edge A -> B is any `crate::B` path in a file of A (in `use` lines or inline), comments
//! excluded, so no import runs back up between the layers. Files: nodes are every module file
//! (`report::text`, `observe::proc::net`); an edge A -> B is a `crate::` or `super::` path that
//! names B, except between a module and its own ancestors (a parent's shared types and its use of
//! its children are one unit), so two siblings never lean on each other both ways.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rs_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `src/report/text.rs` -> "report", `src/agent.rs` -> "agent", `src/lib.rs` -> "lib".
fn top_module(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

/// Every `crate::NAME` in `text` outside `//` comments.
fn crate_refs(text: &str) -> BTreeSet<String> {
    let mut refs = BTreeSet::new();
    for line in text.lines() {
        let code = match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        };
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            let before = rest[..i].chars().last();
            rest = &rest[i + "crate::".len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue; // e.g. `$crate::` or `foo_crate::`
            }
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                refs.insert(name);
            }
            // `use crate::{a, b::{c, d}}` names several modules at once: the first name of
            // each item at brace depth 1.
            if rest.starts_with('{') {
                let b = rest.as_bytes();
                let (mut depth, mut i) = (0, 0);
                let mut item_start = false;
                while i < b.len() {
                    match b[i] {
                        b'{' => {
                            depth += 1;
                            item_start = depth == 1;
                        }
                        b'}' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        b',' if depth == 1 => item_start = true,
                        c if item_start && (c.is_ascii_alphabetic() || c == b'_') => {
                            let n: String = rest[i..]
                                .chars()
                                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                                .collect();
                            i += n.len();
                            refs.insert(n);
                            item_start = false;
                            continue;
                        }
                        _ => {}
                    }
                    i += 1;
                }
            }
        }
    }
    refs
}

/// The module graph of `src`: module -> modules it names.
fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rs_files(src, &mut files);
    let modules: BTreeSet<String> = files.iter().map(|f| top_module(src, f)).collect();
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        let m = top_module(src, f);
        let text = std::fs::read_to_string(f).unwrap();
        let e = g.entry(m.clone()).or_default();
        for r in crate_refs(&text) {
            if r != m && modules.contains(&r) {
                e.insert(r);
            }
        }
    }
    g
}

/// One circle in `g` as a path `a -> b -> a`, if there is any.
fn find_circle(g: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    // 0 unvisited, 1 on the stack, 2 done.
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(n.to_string(), 1);
        stack.push(n.to_string());
        for m in g.get(n).into_iter().flatten() {
            match state.get(m.as_str()).copied().unwrap_or(0) {
                1 => {
                    let at = stack.iter().position(|s| s == m).unwrap();
                    let mut c = stack[at..].to_vec();
                    c.push(m.clone());
                    return Some(c);
                }
                0 => {
                    if let Some(c) = visit(m, g, state, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in g.keys() {
        if state.get(n.as_str()).copied().unwrap_or(0) == 0 {
            let mut stack = Vec::new();
            if let Some(c) = visit(n, g, &mut state, &mut stack) {
                return Some(c);
            }
        }
    }
    None
}

#[test]
fn finds_a_planted_circle() {
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    g.entry("a".into()).or_default().insert("b".into());
    g.entry("b".into()).or_default().insert("c".into());
    g.entry("c".into()).or_default().insert("a".into());
    assert_eq!(
        find_circle(&g).unwrap(),
        vec!["a".to_string(), "b".into(), "c".into(), "a".into()]
    );
    g.get_mut("c").unwrap().clear();
    assert_eq!(find_circle(&g), None);
    let refs = crate_refs(
        "use crate::{act::{self, X}, audit};\n// crate::agent\nlet x = crate::sys::errno();",
    );
    assert_eq!(
        refs.into_iter().collect::<Vec<_>>(),
        vec!["act".to_string(), "audit".into(), "sys".into()]
    );
}

#[test]
fn src_modules_import_without_circles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let g = graph(&src);
    for (m, deps) in &g {
        let deps: Vec<&str> = deps.iter().map(String::as_str).collect();
        println!("{m} -> {}", deps.join(", "));
    }
    if let Some(c) = find_circle(&g) {
        panic!("import circle between modules: {}", c.join(" -> "));
    }
}

/// `src/observe/proc/net.rs` -> "observe::proc::net", `src/report/mod.rs` -> "report".
fn module_path(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts.join("::")
}

/// Every module path named by a `crate::` or `super::` path in `text` (outside `//` comments),
/// resolved from module `me` (`super` is `me`'s parent, in a `mod.rs` as in any other file).
/// A `{...}` group contributes each item at depth 1.
fn path_refs(text: &str, me: &str) -> Vec<String> {
    let ident = |s: &str| -> usize {
        s.bytes()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == b'_')
            .count()
    };
    // `a::b::c` at the start of `s` (stops before `{` or any other character).
    let segs = |s: &str| -> (Vec<String>, usize) {
        let mut out = Vec::new();
        let mut i = 0;
        loop {
            let n = ident(&s[i..]);
            if n == 0 {
                break;
            }
            out.push(s[i..i + n].to_string());
            i += n;
            if s[i..].starts_with("::") && ident(&s[i + 2..]) > 0 {
                i += 2;
            } else {
                break;
            }
        }
        (out, i)
    };
    let mut base: Vec<String> = me
        .split("::")
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    base.pop();
    let mut refs = Vec::new();
    for line in text.lines() {
        let code = line.find("//").map_or(line, |i| &line[..i]);
        for root in ["crate::", "super::"] {
            let mut rest = code;
            while let Some(i) = rest.find(root) {
                let before = rest[..i].chars().last();
                rest = &rest[i + root.len()..];
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                    continue;
                }
                let mut prefix: Vec<String> = if root == "crate::" {
                    Vec::new()
                } else {
                    base.clone()
                };
                let mut r = rest;
                if root == "super::" {
                    while let Some(t) = r.strip_prefix("super::") {
                        prefix.pop();
                        r = t;
                    }
                    rest = r;
                }
                let (head, used) = segs(r);
                let mut p = prefix.clone();
                p.extend(head);
                let after = &r[used..];
                let group = after.strip_prefix("::{").or_else(|| {
                    if used == 0 {
                        after.strip_prefix('{')
                    } else {
                        None
                    }
                });
                if let Some(group) = group {
                    let mut depth = 1;
                    let mut at_item = true;
                    let b = group.as_bytes();
                    let mut j = 0;
                    while j < b.len() && depth > 0 {
                        match b[j] {
                            b'{' => depth += 1,
                            b'}' => depth -= 1,
                            b',' if depth == 1 => at_item = true,
                            c if at_item
                                && depth == 1
                                && (c.is_ascii_alphabetic() || c == b'_') =>
                            {
                                let (item, n) = segs(&group[j..]);
                                let mut q = p.clone();
                                q.extend(item);
                                refs.push(q.join("::"));
                                at_item = false;
                                j += n;
                                continue;
                            }
                            _ => {}
                        }
                        j += 1;
                    }
                } else {
                    refs.push(p.join("::"));
                }
            }
        }
    }
    refs
}

/// The file graph of `src`: module file -> module files it names (see the top of this file).
fn file_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rs_files(src, &mut files);
    let modules: BTreeSet<String> = files.iter().map(|f| module_path(src, f)).collect();
    let related = |a: &str, b: &str| {
        a == b
            || a.starts_with(&format!("{b}::"))
            || b.starts_with(&format!("{a}::"))
            || a.is_empty()
            || b.is_empty()
    };
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        let m = module_path(src, f);
        if m == "lib" || m == "main" {
            continue;
        }
        let text = std::fs::read_to_string(f).unwrap();
        let e = g.entry(m.clone()).or_default();
        for r in path_refs(&text, &m) {
            // The longest module path the reference starts with.
            let mut parts: Vec<&str> = r.split("::").collect();
            while !parts.is_empty() && !modules.contains(&parts.join("::")) {
                parts.pop();
            }
            let target = parts.join("::");
            if !target.is_empty() && !related(&m, &target) {
                e.insert(target);
            }
        }
    }
    g
}

#[test]
fn file_refs_resolve_super_and_groups() {
    let refs = path_refs(
        "use super::verdict::{Verdict, x};\nuse super::{Findings, text::Kb};\nuse crate::observe::proc::net::Proto; // crate::agent",
        "report::text",
    );
    assert_eq!(
        refs,
        vec![
            "report::verdict::Verdict".to_string(),
            "report::verdict::x".into(),
            "report::Findings".into(),
            "report::text::Kb".into(),
            "observe::proc::net::Proto".into(),
        ]
    );
    // In a mod.rs as anywhere, `super` is the module's parent.
    assert_eq!(
        path_refs("use super::pid;", "observe::proc"),
        vec!["observe::pid".to_string()]
    );
    assert_eq!(
        path_refs("use super::super::ghost;", "observe::proc::net"),
        vec!["observe::ghost".to_string()]
    );
}

#[test]
fn src_files_import_without_circles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let g = file_graph(&src);
    for (m, deps) in &g {
        let deps: Vec<&str> = deps.iter().map(String::as_str).collect();
        println!("{m} -> {}", deps.join(", "));
    }
    assert!(
        g.contains_key("report::text"),
        "the file graph found no report::text"
    );
    if let Some(c) = find_circle(&g) {
        panic!("import circle between files: {}", c.join(" -> "));
    }
}
