//! The crate's module layering: dependencies between the top-level modules of `src/` run one
//! way — the OKR domain ← the room core ← services ← transports/HTTP ← server — so the domain
//! stays pure, the room core knows nothing of HTTP, and any module can be read knowing only
//! the layers below it.
//!
//! The test reads every file of `src/` (not `lib.rs`, and not the binary, `main.rs`, which may
//! use anything), strips comments and the contents of string and char literals, and collects
//! each reference to another top-level module: `crate::NAME` (and each item of a grouped
//! `use crate::{a::b, c}`), or a `super::`… chain that climbs to the crate root. It fails if
//!
//! - the module graph has a cycle,
//! - a module uses one in a higher layer of [`LAYERS`] (same-layer edges are fine if acyclic),
//! - a top-level module is missing from [`LAYERS`] (place a new module deliberately), or
//!   [`LAYERS`] lists one that does not exist.
//!
//! Print the edges with `cargo test --test layers -- --nocapture`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The declared layers, lowest first: a module may use the modules of lower layers, and of its
/// own layer as long as that makes no cycle.
const LAYERS: &[(&str, &[&str])] = &[
    ("foundation", &["room_id", "identity", "metrics", "clock"]),
    ("domain", &["okr"]),
    ("wire formats", &["protocol"]),
    ("persistence", &["store"]),
    ("room core", &["room"]),
    ("registry", &["hub"]),
    ("services", &["service", "notify"]),
    ("WebSocket", &["ws"]),
    ("request edge", &["auth"]),
    (
        "endpoints",
        &[
            "sync",
            "live",
            "api",
            "web",
            "org_api",
            "robots_api",
            "transfer_api",
            "review_api",
        ],
    ),
    ("HTTP", &["http"]),
    ("config/CLI", &["config", "telemetry", "cli"]),
    ("server", &["server"]),
];

/// `from -> to` and the files (relative to `src/`) that make the edge.
type Edges = BTreeMap<(String, String), Vec<String>>;

fn at(c: &[char], i: usize) -> char {
    c.get(i).copied().unwrap_or('\0')
}

fn is_word_char(ch: char) -> bool {
    ch.is_alphanumeric() || ch == '_'
}

/// The index just past the `"` that closes a string whose contents start at `i`.
fn skip_string(c: &[char], mut i: usize) -> usize {
    while i < c.len() && c[i] != '"' {
        i += if c[i] == '\\' { 2 } else { 1 };
    }
    i + 1
}

/// The index just past a `/* */` comment (they nest) that starts at `i`.
fn skip_block_comment(c: &[char], mut i: usize) -> usize {
    let mut depth = 0;
    while i < c.len() {
        match (c[i], at(c, i + 1)) {
            ('/', '*') => (depth, i) = (depth + 1, i + 2),
            ('*', '/') if depth == 1 => return i + 2,
            ('*', '/') => (depth, i) = (depth - 1, i + 2),
            _ => i += 1,
        }
    }
    i
}

/// If a string, raw string (`r#".."#`, `br".."`), byte string or char literal starts at `i`,
/// the index just past it. A lifetime (`'a`) is not a literal.
fn literal_end(c: &[char], i: usize) -> Option<usize> {
    if matches!(c[i], 'b' | 'c' | 'r') && i > 0 && is_word_char(c[i - 1]) {
        return None; // the `r` of `for`, the `b` of `rb`
    }
    let mut j = i + usize::from(matches!(at(c, i), 'b' | 'c'));
    let raw = at(c, j) == 'r';
    j += usize::from(raw);
    let hashes = c[j.min(c.len())..]
        .iter()
        .take_while(|&&h| h == '#')
        .count();
    let closes = |k: usize| c[k] == '"' && (1..=hashes).all(|n| at(c, k + n) == '#');
    match at(c, j + hashes) {
        '"' if raw => (j + hashes + 1..c.len())
            .find(|&k| closes(k))
            .map(|k| k + 1 + hashes),
        '"' if hashes == 0 => Some(skip_string(c, j + 1)),
        '\'' if !raw && at(c, j + 1) == '\\' => {
            (j + 3..c.len()).find(|&k| c[k] == '\'').map(|k| k + 1)
        }
        '\'' if !raw && at(c, j + 2) == '\'' => Some(j + 3),
        _ => None,
    }
}

/// `src` without comments, every string and char literal replaced by `""`, so that neither
/// can hide or fake a path.
fn strip(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let (mut out, mut i) = (String::new(), 0);
    while i < c.len() {
        if (c[i], at(&c, i + 1)) == ('/', '/') {
            i += c[i..].iter().take_while(|&&ch| ch != '\n').count();
        } else if (c[i], at(&c, i + 1)) == ('/', '*') {
            (out, i) = (out + " ", skip_block_comment(&c, i));
        } else if let Some(end) = literal_end(&c, i) {
            (out, i) = (out + "\"\"", end);
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

/// Words (identifiers, keywords, numbers), `::`, and every other non-space character alone.
fn tokens(clean: &str) -> Vec<String> {
    let c: Vec<char> = clean.chars().collect();
    let (mut out, mut i) = (Vec::new(), 0);
    while i < c.len() {
        let start = i;
        if is_word_char(c[i]) {
            i += c[i..].iter().take_while(|&&ch| is_word_char(ch)).count();
        } else {
            i += 1 + usize::from(c[i] == ':' && at(&c, i + 1) == ':');
        }
        if !c[start].is_whitespace() {
            out.push(c[start..i].iter().collect());
        }
    }
    out
}

fn is_name(token: Option<&String>) -> bool {
    token.is_some_and(|w| w.starts_with(|c: char| c.is_alphabetic() || c == '_'))
}

/// For a group `{ a::b, c, d::{e, f} }` opening at `t[open]`: adds each item's first segment
/// (`a`, `c`, `d`) to `found` and returns the index of the closing brace.
fn group_heads(t: &[String], open: usize, found: &mut BTreeSet<String>) -> usize {
    let (mut depth, mut item_start, mut j) = (0, true, open + 1);
    while j < t.len() && !(depth == 0 && t[j] == "}") {
        match t[j].as_str() {
            "{" => depth += 1,
            "}" => depth -= 1,
            "," if depth == 0 => item_start = true,
            _ if depth == 0 && item_start && is_name(t.get(j)) => {
                found.insert(t[j].clone());
                item_start = false;
            }
            _ => item_start = false,
        }
        j += 1;
    }
    j
}

/// Follows the path that starts at `t[i]` (`crate::`, `super::super::`, `self::super::`) from
/// the module `path`. If it climbs to the crate root, adds the root name it names (or, for a
/// group, each item's). Returns the index of the first token it did not consume.
fn follow_path(t: &[String], i: usize, mut path: Vec<&str>, found: &mut BTreeSet<String>) -> usize {
    let mut j = i;
    while t.get(j + 1).is_some_and(|s| s == "::") {
        match t[j].as_str() {
            "crate" => path.clear(),
            "super" if path.pop().is_some() => {}
            "self" => {}
            _ => break,
        }
        j += 2;
    }
    if j == i || !path.is_empty() {
        return j.max(i + 1); // not a path, or one inside the module: a `{` here is a scope
    }
    if t.get(j).is_some_and(|s| s == "{") {
        return group_heads(t, j, found) + 1;
    }
    if is_name(t.get(j)) {
        found.insert(t[j].clone());
    }
    j
}

/// The crate-root names a file refers to: `NAME` in `crate::NAME`, each item's first segment in
/// `crate::{..}`, and the same after `super::` chains that climb to the root. `module` is the
/// file's module path (`["hub", "room"]`); inline `mod x { .. }` blocks extend it.
fn references(src: &str, module: &[&str]) -> BTreeSet<String> {
    let t = tokens(&strip(src));
    let (mut found, mut scopes, mut i) = (BTreeSet::new(), Vec::<Option<&str>>::new(), 0);
    while i < t.len() {
        match t[i].as_str() {
            "{" => scopes.push((i >= 2 && t[i - 2] == "mod").then(|| t[i - 1].as_str())),
            "}" => drop(scopes.pop()),
            "crate" | "super" | "self" if i == 0 || t[i - 1] != "::" => {
                let inline = scopes.iter().flatten().copied();
                let path = module.iter().copied().chain(inline).collect();
                i = follow_path(&t, i, path, &mut found);
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    found
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read a src directory") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `X.rs` and `X/mod.rs` are `X`; `X/Y.rs` is `X::Y`.
fn module_path(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into()).collect();
    let file = parts.pop().expect("a file name");
    if file != "mod.rs" {
        parts.push(file.trim_end_matches(".rs").to_owned());
    }
    parts
}

/// `src/X.rs` and `src/X/`, but not `lib.rs`, `main.rs` or `src/bin/` (binaries).
fn top_level_modules() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for entry in std::fs::read_dir(src_dir()).expect("read src/") {
        let path = entry.expect("a directory entry").path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let is_module = path.is_dir() || path.extension().is_some_and(|e| e == "rs");
        if is_module && !matches!(name.as_str(), "lib" | "main" | "bin") {
            names.insert(name);
        }
    }
    names
}

fn edges(modules: &BTreeSet<String>) -> Edges {
    let (src, mut files, mut edges) = (src_dir(), Vec::new(), Edges::new());
    rust_files(&src, &mut files);
    files.sort();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap();
        let module = module_path(rel);
        if !modules.contains(&module[0]) {
            continue; // lib.rs, main.rs, src/bin/
        }
        let text = std::fs::read_to_string(&file).expect("read a source file");
        let path: Vec<&str> = module.iter().map(String::as_str).collect();
        for to in references(&text, &path) {
            if modules.contains(&to) && to != module[0] {
                let by = edges.entry((module[0].clone(), to)).or_default();
                by.push(rel.display().to_string());
            }
        }
    }
    edges
}

/// Depth-first from `n`: a cycle through the modules on `path` (`a -> b -> .. -> a`), if any.
fn visit(
    n: &str,
    edges: &Edges,
    done: &mut BTreeSet<String>,
    path: &mut Vec<String>,
) -> Option<Vec<String>> {
    if let Some(p) = path.iter().position(|s| s == n) {
        return Some([&path[p..], &[n.to_owned()]].concat());
    }
    if !done.insert(n.to_owned()) {
        return None;
    }
    path.push(n.to_owned());
    let mut next = edges.keys().filter(|(from, _)| from == n);
    let cycle = next.find_map(|(_, to)| visit(to, edges, done, path));
    path.pop();
    cycle
}

fn find_cycle(edges: &Edges) -> Option<Vec<String>> {
    let mut done = BTreeSet::new();
    edges
        .keys()
        .find_map(|(from, _)| visit(from, edges, &mut done, &mut Vec::new()))
}

fn describe_cycle(cycle: &[String], edges: &Edges) -> String {
    let mut out = format!("cycle {}:", cycle.join(" -> "));
    for w in cycle.windows(2) {
        let by = &edges[&(w[0].clone(), w[1].clone())];
        out += &format!("\n    {} -> {}: {}", w[0], w[1], by.join(", "));
    }
    out
}

fn layer_of(module: &str) -> Option<(usize, &'static str)> {
    let mut layers = LAYERS.iter().enumerate();
    let (k, (name, _)) = layers.find(|(_, (_, ms))| ms.contains(&module))?;
    Some((k, *name))
}

/// The table's problems: modules it does not place, and modules it lists that do not exist.
fn table_problems(modules: &BTreeSet<String>) -> Vec<String> {
    let listed: BTreeSet<String> = LAYERS
        .iter()
        .flat_map(|(_, ms)| ms.iter())
        .map(|m| m.to_string())
        .collect();
    let unlisted = modules
        .difference(&listed)
        .map(|m| format!("module `{m}` is in no layer: place it in LAYERS"));
    let missing = listed
        .difference(modules)
        .map(|m| format!("LAYERS lists `{m}`, but there is no src/{m}.rs or src/{m}/"));
    unlisted.chain(missing).collect()
}

/// The problem with the edge `from -> to` (made by the files `by`) if it goes up a layer.
fn upward(from: &str, to: &str, by: &[String]) -> Option<String> {
    let ((lf, nf), (lt, nt)) = (layer_of(from)?, layer_of(to)?);
    let by = by.join(", ");
    (lt > lf).then(|| {
        format!("upward edge {from} (layer {lf}, {nf}) -> {to} (layer {lt}, {nt}), in {by}")
    })
}

#[test]
fn modules_depend_only_downward() {
    let modules = top_level_modules();
    let edges = edges(&modules);
    println!("module edges (from -> to: files making it):");
    for ((from, to), by) in &edges {
        println!("  {from} -> {to}: {}", by.len());
    }
    let mut problems = table_problems(&modules);
    let upward_edges = edges.iter().filter_map(|((f, t), by)| upward(f, t, by));
    problems.extend(upward_edges);
    problems.extend(find_cycle(&edges).map(|cycle| describe_cycle(&cycle, &edges)));
    let report = problems.join("\n- ");
    assert!(problems.is_empty(), "module layering broken:\n- {report}");
}

#[test]
fn comments_and_literals_hide_no_paths() {
    let src = "// crate::a\n/// crate::b\n//! crate::c\n/* crate::d /* nested */ crate::e */\n\
        let s = \"crate::f // \\\" crate::g\"; let r = r##\"crate::h \"# crate::i\"##;\n\
        let q = '\"'; let x = b\"crate::j\"; fn f<'a>(_: &'a str) {} use crate::k;";
    assert_eq!(references(src, &["m"]), names(&["k"]));
}

#[test]
fn grouped_uses_give_each_items_first_segment() {
    let src = "use crate::{a::b, c, d::{e, f}, self};\nuse crate::g::{h, i};";
    assert_eq!(
        references(src, &["m"]),
        names(&["a", "c", "d", "g", "self"])
    );
}

#[test]
fn super_chains_resolve_from_the_files_module() {
    let top = "use super::a; use super::{b, c::d}; mod t { use self::{q}; use super::x; use super::super::y; }";
    assert_eq!(references(top, &["m"]), names(&["a", "b", "c", "y"]));
    let nested =
        "use super::sib; use super::super::z; use self::super::super::w; pub(crate) fn f() {}";
    assert_eq!(references(nested, &["m", "n"]), names(&["w", "z"]));
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}
