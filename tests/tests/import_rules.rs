//! The import rules of the agent and the aggregator (ARCHITECTURE.md), read
//! from their source: which top-level module names which through `crate::`
//! paths, and which name the wire crate or tonic. Fails, naming the file
//! and the edge, on any circle between top-level modules and on every
//! forbidden edge. The checker is tested on small synthetic trees below, so
//! that it is known to be able to fail.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The crate root's node: `lib.rs` and `main.rs`, which wire the modules
/// together and may name any of them; nothing may name an item of theirs
/// (other than a re-export).
const ROOT: &str = "lib";
/// External crates that only one edge of each crate may name.
const EXTERNAL: [&str; 2] = ["fleetwatch_proto", "tonic"];

/// An edge nobody may add.
struct Forbidden {
    from: &'static str,
    to: &'static str,
    why: &'static str,
}

/// An edge that exists today and makes a circle, allowed until the named
/// work removes it. The test fails when it is gone, so that the allowance
/// goes too.
struct Allowed {
    from: &'static str,
    to: &'static str,
    why: &'static str,
}

struct Rules {
    /// Modules that may name the external crates; everything else may not.
    external_allowed_in: &'static [&'static str],
    forbidden: &'static [Forbidden],
    allowed: &'static [Allowed],
}

const AGGREGATOR: Rules = Rules {
    external_allowed_in: &["ingest"],
    forbidden: &[
        Forbidden {
            from: "hub",
            to: "alerts",
            why: "the hub carries events; alerting publishes on it",
        },
        Forbidden {
            from: "store",
            to: "alerts",
            why: "the store keeps rows for alerting, never the reverse",
        },
        Forbidden {
            from: "auth",
            to: "api",
            why: "HTTP authentication lives in api::auth; auth is protocol-neutral",
        },
        Forbidden {
            from: "api",
            to: "ingest",
            why: "who is connected is `connected`, host ids are `ids`",
        },
    ],
    allowed: &[],
};

const AGENT: Rules = Rules {
    // Where the agent ships: the stream (and its TLS connector), the spool
    // (which keeps encoded wire samples), and the one conversion file. The
    // collectors build `sample::Sample`.
    external_allowed_in: &["shipper", "spool", "tls", "wire"],
    forbidden: &[],
    allowed: &[],
};

/// Which top-level module names which, with the files that do.
#[derive(Debug, Default)]
struct Graph {
    /// (from, to) → files, relative to `src/`.
    edges: BTreeMap<(String, String), BTreeSet<String>>,
}

/// Builds the graph of one crate from its files (path relative to `src/`,
/// text).
fn graph(files: &[(String, String)]) -> Graph {
    let modules: BTreeSet<String> = files
        .iter()
        .map(|(path, _)| top_module(path))
        .filter(|m| m != ROOT)
        .collect();
    // `pub use config::Config;` in lib.rs: `crate::Config` is `config`.
    let mut reexports = BTreeMap::new();
    for (path, text) in files {
        if top_module(path) == ROOT {
            for line in code(text).lines() {
                if let Some(rest) = line.trim().strip_prefix("pub use ")
                    && let Some((module, item)) = rest.trim_end_matches(';').split_once("::")
                    && modules.contains(module)
                {
                    reexports.insert(item.to_owned(), module.to_owned());
                }
            }
        }
    }
    let mut g = Graph::default();
    for (path, text) in files {
        let from = top_module(path);
        let code = code(text);
        for name in crate_paths(&code) {
            let to = if modules.contains(&name) {
                name
            } else if let Some(module) = reexports.get(&name) {
                module.clone()
            } else {
                ROOT.to_owned()
            };
            if to != from {
                g.edges
                    .entry((from.clone(), to))
                    .or_default()
                    .insert(path.clone());
            }
        }
        for external in EXTERNAL {
            if has_word(&code, external) {
                g.edges
                    .entry((from.clone(), external.to_owned()))
                    .or_default()
                    .insert(path.clone());
            }
        }
    }
    g
}

/// `collect/cpu.rs` → `collect`; `lib.rs` and `main.rs` → the root.
fn top_module(path: &str) -> String {
    let first = path.split('/').next().unwrap_or(path);
    match first.strip_suffix(".rs") {
        Some("lib" | "main") => ROOT.to_owned(),
        Some(module) => module.to_owned(),
        None => first.to_owned(),
    }
}

/// The source without comments (so that a doc link is not an import).
/// Good enough for this code base: `//` inside a string on the same line is
/// kept, block comments are dropped.
fn code(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_block = false;
    for line in text.lines() {
        let mut kept = String::new();
        let mut in_string = false;
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            let next = chars.get(i + 1).copied();
            if in_block {
                if c == '*' && next == Some('/') {
                    in_block = false;
                    i += 1;
                }
            } else if in_string {
                kept.push(c);
                if c == '\\' {
                    if let Some(n) = next {
                        kept.push(n);
                    }
                    i += 1;
                } else if c == '"' {
                    in_string = false;
                }
            } else if c == '/' && next == Some('/') {
                break;
            } else if c == '/' && next == Some('*') {
                in_block = true;
                i += 1;
            } else {
                if c == '"' && (i == 0 || chars[i - 1] != '\'') {
                    in_string = true;
                }
                kept.push(c);
            }
            i += 1;
        }
        out.push_str(&kept);
        out.push('\n');
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Whether `word` occurs as a whole identifier.
fn has_word(code: &str, word: &str) -> bool {
    code.match_indices(word).any(|(at, _)| {
        let before = code[..at].chars().next_back();
        let after = code[at + word.len()..].chars().next();
        !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
    })
}

/// The first segment after every `crate::`, including each item of a
/// `crate::{a, b::c}` group.
fn crate_paths(code: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (at, m) in code.match_indices("crate::") {
        if code[..at].chars().next_back().is_some_and(is_ident) {
            continue;
        }
        let rest = &code[at + m.len()..];
        if let Some(group) = rest.strip_prefix('{') {
            names.extend(group_items(group));
        } else {
            let name: String = rest.chars().take_while(|&c| is_ident(c)).collect();
            if !name.is_empty() {
                names.insert(name);
            }
        }
    }
    names
}

/// The first identifier of each top-level item of `a, b::c, d::{e, f}}…`.
fn group_items(group: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut depth = 0usize;
    let mut current = String::new();
    let mut taking = true;
    for c in group.chars() {
        match c {
            '{' => {
                depth += 1;
                taking = false;
            }
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                if !current.is_empty() {
                    items.push(std::mem::take(&mut current));
                }
                taking = true;
            }
            c if depth == 0 && taking && is_ident(c) => current.push(c),
            c if depth == 0 && taking && !c.is_whitespace() && !current.is_empty() => {
                taking = false
            }
            _ => {}
        }
    }
    if !current.is_empty() {
        items.push(current);
    }
    items
}

/// Every violation of `rules` in `g`, one line each.
fn violations(crate_name: &str, g: &Graph, rules: &Rules) -> Vec<String> {
    let mut out = Vec::new();
    let files = |from: &str, to: &str| -> String {
        g.edges
            .get(&(from.to_owned(), to.to_owned()))
            .map(|f| f.iter().cloned().collect::<Vec<_>>().join(", "))
            .unwrap_or_default()
    };
    for ((from, to), paths) in &g.edges {
        let paths = paths.iter().cloned().collect::<Vec<_>>().join(", ");
        if EXTERNAL.contains(&to.as_str()) && !rules.external_allowed_in.contains(&from.as_str()) {
            out.push(format!(
                "{crate_name}: {paths}: {from} → {to} (only {} may name {to})",
                rules.external_allowed_in.join(", ")
            ));
        }
        for f in rules.forbidden {
            if f.from == from && f.to == to {
                out.push(format!(
                    "{crate_name}: {paths}: {from} → {to} is forbidden: {}",
                    f.why
                ));
            }
        }
        if to == ROOT && !rules.allowed.iter().any(|a| a.from == from && a.to == ROOT) {
            out.push(format!(
                "{crate_name}: {paths}: {from} names an item of the crate root; move it to a module"
            ));
        }
    }
    for a in rules.allowed {
        if !g.edges.contains_key(&(a.from.to_owned(), a.to.to_owned())) {
            out.push(format!(
                "{crate_name}: the allowed edge {} → {} is gone; remove its allowance ({})",
                a.from, a.to, a.why
            ));
        }
    }
    // Circles, with the allowed edges taken out.
    let mut adjacency: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (from, to) in g.edges.keys() {
        let allowed = rules.allowed.iter().any(|a| a.from == from && a.to == to);
        if !allowed && !EXTERNAL.contains(&to.as_str()) && from != ROOT {
            adjacency.entry(from).or_default().insert(to);
        }
    }
    for circle in circles(&adjacency) {
        let mut line = format!("{crate_name}: import circle {}", circle.join(" → "));
        for pair in circle.windows(2) {
            let _ = write!(
                line,
                "; {} → {} in {}",
                pair[0],
                pair[1],
                files(pair[0], pair[1])
            );
        }
        out.push(line);
    }
    out
}

/// One shortest circle through each module that is on any, each reported
/// once (from its smallest module), as `a → b → … → a`.
fn circles<'a>(adjacency: &BTreeMap<&'a str, BTreeSet<&'a str>>) -> Vec<Vec<&'a str>> {
    let mut found: BTreeSet<Vec<&str>> = BTreeSet::new();
    for &start in adjacency.keys() {
        // Breadth-first from `start` back to `start`.
        let mut previous: BTreeMap<&str, &str> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([start]);
        let mut closing = None;
        while let Some(node) = queue.pop_front() {
            for &next in adjacency.get(node).into_iter().flatten() {
                if next == start {
                    closing = Some(node);
                    break;
                }
                if !previous.contains_key(next) {
                    previous.insert(next, node);
                    queue.push_back(next);
                }
            }
            if closing.is_some() {
                break;
            }
        }
        if let Some(mut node) = closing {
            let mut path = vec![start];
            let mut back = vec![node];
            while node != start {
                node = previous[node];
                if node != start {
                    back.push(node);
                }
            }
            back.reverse();
            path.extend(back);
            // Rotate so the smallest module leads, to report each circle once.
            let min = path
                .iter()
                .enumerate()
                .min_by_key(|(_, m)| **m)
                .map_or(0, |(i, _)| i);
            path.rotate_left(min);
            let first = path[0];
            path.push(first);
            found.insert(path);
        }
    }
    found.into_iter().collect()
}

/// Every `.rs` file under `dir`, as (path relative to `dir`, text). A file
/// that cannot be read fails the test.
#[allow(clippy::expect_used)]
fn sources(dir: &Path) -> Vec<(String, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("readable source directory") {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut paths = Vec::new();
    walk(dir, &mut paths);
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let rel = p
                .strip_prefix(dir)
                .expect("under the directory")
                .to_string_lossy()
                .replace('\\', "/");
            let text = std::fs::read_to_string(&p).expect("readable source file");
            (rel, text)
        })
        .collect()
}

fn check(crate_dir: &str, rules: &Rules) -> Vec<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(crate_dir)
        .join("src");
    let files = sources(&src);
    assert!(
        files.len() > 10,
        "found only {} files in {}",
        files.len(),
        src.display()
    );
    violations(crate_dir, &graph(&files), rules)
}

#[test]
fn the_aggregator_keeps_its_import_rules() {
    let found = check("aggregator", &AGGREGATOR);
    assert!(found.is_empty(), "\n{}\n", found.join("\n"));
}

/// The WebSocket answers from the state kept in memory (`store::Latest`)
/// and the hub, never from a query: no file of `api/ws/` but its tests
/// names the store's query traits or its backend.
#[test]
fn the_websocket_never_queries_the_store() {
    let ws = Path::new(env!("CARGO_MANIFEST_DIR")).join("../aggregator/src/api/ws");
    let files = sources(&ws);
    assert!(files.len() >= 2, "found only {files:?}");
    let offenders: Vec<String> = files
        .iter()
        .filter(|(path, _)| path != "tests.rs")
        .filter(|(_, text)| {
            let code = code(text);
            ["SampleStore", "SqliteStore", "AlertStore", "GapStore"]
                .iter()
                .any(|name| has_word(&code, name))
        })
        .map(|(path, _)| format!("api/ws/{path}"))
        .collect();
    assert!(
        offenders.is_empty(),
        "store queries in the WebSocket: {offenders:?}"
    );
}

#[test]
fn the_agent_keeps_its_import_rules() {
    let found = check("agent", &AGENT);
    assert!(found.is_empty(), "\n{}\n", found.join("\n"));
}

// The checker itself, on synthetic trees.

fn tree(files: &[(&str, &str)]) -> Vec<(String, String)> {
    files
        .iter()
        .map(|(p, t)| ((*p).to_owned(), (*t).to_owned()))
        .collect()
}

const NO_RULES: Rules = Rules {
    external_allowed_in: &["edge"],
    forbidden: &[],
    allowed: &[],
};

#[test]
fn the_checker_finds_a_circle_and_names_its_files() {
    let files = tree(&[
        ("lib.rs", "pub mod a; pub mod b; pub mod c;"),
        ("a/mod.rs", "use crate::b::Thing;"),
        ("b.rs", "fn f() { crate::c::g() }"),
        ("c.rs", "use crate::{a::X, model};"),
        ("model.rs", ""),
    ]);
    let found = violations("demo", &graph(&files), &NO_RULES);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains("import circle a → b → c → a"),
        "{}",
        found[0]
    );
    assert!(found[0].contains("c → a in c.rs"), "{}", found[0]);
    assert!(found[0].contains("a → b in a/mod.rs"), "{}", found[0]);
}

#[test]
fn the_checker_ignores_comments_and_strings_and_allows_a_listed_edge() {
    let files = tree(&[
        (
            "a.rs",
            "//! See [`crate::b`].\nuse crate::b::X; // crate::b again",
        ),
        (
            "b.rs",
            "/// [`crate::a`]\nconst URL: &str = \"http://crate::a\";\nuse crate::a::Y;",
        ),
    ]);
    let g = graph(&files);
    assert_eq!(g.edges.len(), 2, "{:?}", g.edges);
    assert!(
        !violations("demo", &g, &NO_RULES).is_empty(),
        "a ↔ b is a circle"
    );
    const ALLOWING: Rules = Rules {
        external_allowed_in: &[],
        forbidden: &[],
        allowed: &[Allowed {
            from: "b",
            to: "a",
            why: "test",
        }],
    };
    assert_eq!(violations("demo", &g, &ALLOWING), Vec::<String>::new());
    // An allowance for an edge that is gone is itself reported.
    let gone = graph(&tree(&[("a.rs", ""), ("b.rs", "")]));
    let found = violations("demo", &gone, &ALLOWING);
    assert!(found[0].contains("is gone"), "{found:?}");
}

#[test]
fn the_checker_finds_forbidden_edges_external_crates_and_root_items() {
    const RULES: Rules = Rules {
        external_allowed_in: &["ingest"],
        forbidden: &[Forbidden {
            from: "hub",
            to: "alerts",
            why: "no",
        }],
        allowed: &[],
    };
    let files = tree(&[
        ("lib.rs", "pub use config::Config;\npub fn helper() {}"),
        ("config.rs", ""),
        ("alerts/mod.rs", ""),
        ("hub.rs", "use crate::alerts::AlertEvent;"),
        (
            "ingest/service.rs",
            "use tonic::Status;\nuse fleetwatch_proto as wire;",
        ),
        (
            "conn/guarded.rs",
            "impl tonic::transport::server::Connected for G {}",
        ),
        (
            "api/mod.rs",
            "use crate::Config;\nfn f() { crate::helper() }",
        ),
        ("store.rs", "let tonicity = 1; // tonic"),
    ]);
    let found = violations("demo", &graph(&files), &RULES);
    let text = found.join("\n");
    assert!(text.contains("hub.rs: hub → alerts is forbidden"), "{text}");
    assert!(text.contains("conn/guarded.rs: conn → tonic"), "{text}");
    assert!(
        text.contains("api/mod.rs: api names an item of the crate root"),
        "{text}"
    );
    assert!(!text.contains("ingest/"), "ingest may name tonic: {text}");
    assert!(
        !text.contains("store"),
        "neither a longer word nor a comment: {text}"
    );
    assert!(
        !text.contains("api → config"),
        "a re-export is its module, not a root item: {text}"
    );
    assert_eq!(found.len(), 3, "{text}");
}
