//! Architecture invariant: imports point down. The modules of `runtime/src` are layers, top to
//! bottom as [`LAYERS`] lists them (ARCHITECTURE.md, "Inside `runtime/`", gives the same
//! order), and a file may name a module only if it is its own or lies below it: as
//! `crate::module` (also in `use crate::{…}` groups, and `$crate::` in a macro), as a chain of
//! `super::` that climbs out to the crate root, or as a macro the module exports at the root
//! (`crate::kill_point!`). A `#[cfg(test)]` module is held to the rule like the code beside
//! it; `fuzz`, a module that exists only in tests, is a layer of its own. Comments and string
//! literals are not code: a doc link may mention any module.
//!
//! Every module under `src/` must be in the list, so a new one is placed before it is used.
//! `main.rs` is a crate of its own over the library (it names it `baton_runtime`) and sits on
//! top; `lib.rs` only declares the modules.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

/// Top to bottom. A module uses only modules after it here.
const LAYERS: [&str; 15] = [
    "main",
    "fuzz",
    "daemon",
    "cli",
    "demo",
    "mcp",
    "api",
    "engine",
    "agents",
    "adapters",
    "ports",
    "killpoint",
    "endpoints",
    "time",
    "core",
];

/// A root name one source file uses: where, and which.
#[derive(Debug, PartialEq, Eq)]
struct Use {
    line: usize,
    name: String,
}

/// `source` with comments and the contents of string and character literals blanked out,
/// newlines kept, so that what is left is code and line numbers still hold.
fn code_only(source: &str) -> Vec<char> {
    let text: Vec<char> = source.chars().collect();
    let mut out = text.clone();
    let blank = |out: &mut Vec<char>, from: usize, to: usize| {
        for c in &mut out[from..to] {
            if *c != '\n' {
                *c = ' ';
            }
        }
    };
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut i = 0;
    while i < text.len() {
        let rest = &text[i..];
        let after_ident = i > 0 && ident(text[i - 1]);
        if rest.starts_with(&['/', '/']) {
            let end = text[i..]
                .iter()
                .position(|&c| c == '\n')
                .map_or(text.len(), |n| i + n);
            blank(&mut out, i, end);
            i = end;
        } else if rest.starts_with(&['/', '*']) {
            let (mut depth, mut j) = (0, i);
            while j < text.len() {
                if text[j..].starts_with(&['/', '*']) {
                    depth += 1;
                    j += 2;
                } else if text[j..].starts_with(&['*', '/']) {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    j += 1;
                }
            }
            blank(&mut out, i, j);
            i = j;
        } else if text[i] == 'r'
            && (!after_ident || (i > 1 && text[i - 1] == 'b' && !ident(text[i - 2])))
            && matches!(rest.get(1), Some('"' | '#'))
        {
            // A raw string: r"…", r#"…"#, br#"…"#.
            let hashes = rest[1..].iter().take_while(|&&c| c == '#').count();
            if rest.get(1 + hashes) != Some(&'"') {
                i += 1;
                continue;
            }
            let open = i + 2 + hashes;
            let closes = |j: usize| {
                text[j] == '"'
                    && text
                        .get(j + 1..j + 1 + hashes)
                        .is_some_and(|tail| tail.iter().all(|&c| c == '#'))
            };
            let mut j = open;
            while j < text.len() && !closes(j) {
                j += 1;
            }
            blank(&mut out, open, j);
            i = j + 1 + hashes;
        } else if text[i] == '"' {
            let mut j = i + 1;
            while j < text.len() && text[j] != '"' {
                j += if text[j] == '\\' { 2 } else { 1 };
            }
            blank(&mut out, i + 1, j.min(text.len()));
            i = j + 1;
        } else if text[i] == '\'' {
            // A character literal ('x', '\n', '\u{1b}'); otherwise a lifetime or a label.
            let end = match rest.get(1) {
                Some('\\') => text[i + 3..]
                    .iter()
                    .position(|&c| c == '\'')
                    .map(|n| i + 3 + n),
                Some(_) if rest.get(2) == Some(&'\'') => Some(i + 2),
                _ => None,
            };
            match end {
                Some(end) => {
                    blank(&mut out, i + 1, end);
                    i = end + 1;
                }
                None => i += 1,
            }
        } else {
            i += 1;
        }
    }
    out
}

/// The crate-root names `source` uses, for a file `depth` modules below the root
/// (`src/api/mod.rs` is 1, `src/api/listen.rs` 2).
fn root_uses(source: &str, depth: usize) -> Vec<Use> {
    let code = code_only(source);
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let word_at = |i: usize| -> String {
        code[i..]
            .iter()
            .take_while(|&&c| ident(c))
            .collect::<String>()
    };
    let skip_space = |mut i: usize| {
        while i < code.len() && code[i].is_whitespace() {
            i += 1;
        }
        i
    };
    // After `::` at `i`: the next segment, or each first segment of a `{…}` group.
    let names_after = |i: usize, found: &mut Vec<(usize, String)>| {
        let i = skip_space(i);
        if code.get(i) != Some(&'{') {
            found.push((i, word_at(i)));
            return;
        }
        let (mut depth, mut j, mut expect) = (0, i, true);
        while j < code.len() {
            match code[j] {
                '{' => {
                    depth += 1;
                    expect = depth == 1;
                }
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                ',' if depth == 1 => expect = true,
                c if expect && ident(c) => {
                    found.push((j, word_at(j)));
                    expect = false;
                }
                _ => {}
            }
            j += 1;
        }
    };
    let mut found = Vec::new();
    // Inline `mod name {` blocks: the brace depth each opened at.
    let mut inline = Vec::new();
    let mut braces = 0;
    let mut i = 0;
    while i < code.len() {
        let c = code[i];
        if c == '{' {
            braces += 1;
        } else if c == '}' {
            braces -= 1;
            if inline.last() == Some(&braces) {
                inline.pop();
            }
        }
        if !ident(c) || (i > 0 && ident(code[i - 1])) {
            i += 1;
            continue;
        }
        let word = word_at(i);
        let next = i + word.len();
        let path_start = i < 2 || code[i - 2..i] != [':', ':'];
        match word.as_str() {
            "mod" => {
                let name = skip_space(next);
                let open = skip_space(name + word_at(name).len());
                if code.get(open) == Some(&'{') {
                    inline.push(braces);
                }
            }
            "crate" if code[next..].starts_with(&[':', ':']) => names_after(next + 2, &mut found),
            "super" if path_start => {
                let (mut climbs, mut j) = (0, i);
                while code[j..].starts_with(&['s', 'u', 'p', 'e', 'r', ':', ':']) {
                    climbs += 1;
                    j += 7;
                }
                if climbs > 0 && climbs == depth + inline.len() {
                    names_after(j, &mut found);
                }
            }
            _ => {}
        }
        i = next;
    }
    found
        .into_iter()
        .filter(|(_, name)| name != "self")
        .map(|(at, name)| Use {
            line: 1 + code[..at].iter().filter(|&&c| c == '\n').count(),
            name,
        })
        .collect()
}

/// How many modules below the crate root a file under `src/` is.
fn depth(relative: &Path) -> usize {
    let parts = relative.components().count();
    if relative.file_name().is_some_and(|name| name == "mod.rs") {
        parts - 1
    } else {
        parts
    }
}

#[test]
fn every_module_imports_only_modules_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut modules: Vec<String> = std::fs::read_dir(&src)
        .expect("readable src")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.file_name().is_some_and(|name| name != "lib.rs"))
        .filter_map(|path| Some(path.file_stem()?.to_str()?.to_owned()))
        .collect();
    modules.sort();
    modules.dedup();
    let mut layers = LAYERS.map(str::to_owned).to_vec();
    layers.sort();
    assert_eq!(
        modules, layers,
        "every module under src/ is a layer, and every layer a module"
    );

    let rank = |name: &str| LAYERS.iter().position(|layer| *layer == name);
    let mut files = BTreeMap::new();
    for layer in &LAYERS[1..] {
        let mut found = Vec::new();
        let single = src.join(format!("{layer}.rs"));
        if single.is_file() {
            found.push(single);
        }
        if src.join(layer).is_dir() {
            found.extend(common::rust_files(&src.join(layer)));
        }
        assert!(!found.is_empty(), "no source for layer {layer}");
        for file in found {
            let text = std::fs::read_to_string(&file).expect("UTF-8 source");
            files.insert(file, (*layer, text));
        }
    }
    // Macros exported at the root belong to the layer that defines them.
    let mut macros = BTreeMap::new();
    for (layer, text) in files.values() {
        for exported in text.split("#[macro_export]").skip(1) {
            let name = exported
                .split("macro_rules!")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .expect("an exported macro_rules!");
            macros.insert(name.to_owned(), *layer);
        }
    }
    assert!(macros.contains_key("kill_point"), "{macros:?}");

    let mut offences = Vec::new();
    let mut crossings = 0;
    for (file, (layer, text)) in &files {
        let relative = file.strip_prefix(&src).expect("under src");
        for used in root_uses(text, depth(relative)) {
            let target = macros
                .get(&used.name)
                .copied()
                .unwrap_or(used.name.as_str());
            let place = format!("src/{}:{}", relative.display(), used.line);
            match rank(target) {
                None => offences.push(format!(
                    "{place}: crate::{} is in no layer (name its module)",
                    used.name
                )),
                Some(to) if to < rank(layer).expect("a layer") => offences.push(format!(
                    "{place}: {layer} uses {target} (crate::{}), which is above it",
                    used.name
                )),
                Some(to) => crossings += usize::from(to != rank(layer).expect("a layer")),
            }
        }
    }
    assert!(
        offences.is_empty(),
        "imports must point down {LAYERS:?}:\n{}",
        offences.join("\n")
    );
    // The scan sees the crate's many downward imports (a scanner that saw none would pass).
    assert!(
        crossings > 100,
        "only {crossings} imports between layers seen"
    );
}

/// The scanner, on planted sources: `(source, depth, root names used with their lines)`.
#[test]
fn the_scanner_finds_every_form_of_import_and_nothing_else() {
    let check = |source: &str, depth: usize, expected: &[(usize, &str)]| {
        let found: Vec<(usize, String)> = root_uses(source, depth)
            .into_iter()
            .map(|Use { line, name }| (line, name))
            .collect();
        let expected: Vec<(usize, String)> = expected
            .iter()
            .map(|(line, name)| (*line, (*name).to_owned()))
            .collect();
        assert_eq!(found, expected, "in:\n{source}");
    };
    check("use crate::api::listen;", 1, &[(1, "api")]);
    check(
        "use crate::{\n    api::{a, b},\n    engine::X,\n    self,\n};",
        2,
        &[(2, "api"), (3, "engine")],
    );
    check("let x = crate::daemon::f();", 1, &[(1, "daemon")]);
    check("$crate::killpoint::reached($name);", 1, &[(1, "killpoint")]);
    check("crate::kill_point!(\"a.b\");", 2, &[(1, "kill_point")]);
    // `super::super` from `src/api/listen.rs` is the crate root; from its tests it is `api`.
    check("use super::super::daemon;", 2, &[(1, "daemon")]);
    check("mod tests {\n    use super::super::latest;\n}", 2, &[]);
    check(
        "mod tests {\n    use super::super::super::cli;\n}\nuse super::super::{a, b};",
        2,
        &[(2, "cli"), (4, "a"), (4, "b")],
    );
    check("use super::frames::Frame;", 2, &[]);
    check("use super::{cli, mcp};", 1, &[(1, "cli"), (1, "mcp")]);
    // Not code: comments, strings, raw strings; and no confusion from lifetimes or chars.
    check("// crate::daemon\n/* crate::cli */ let a = 1;", 1, &[]);
    check(
        "let s = \"crate::daemon \\\" crate::cli\"; let q = '\"'; crate::api::f();",
        1,
        &[(1, "api")],
    );
    check(
        "let s = r#\"crate::daemon \"\"#; fn f<'a>(x: &'a str) {} crate::engine::g();",
        1,
        &[(1, "engine")],
    );
    check(
        "let c = '\\''; crate::ports::p(); let d = '\\u{1b}';",
        1,
        &[(1, "ports")],
    );
    check(
        "let url = \"http://127.0.0.1\"; crate::mcp::h();",
        1,
        &[(1, "mcp")],
    );
    check("pub(crate) fn f() {}", 1, &[]);
}
