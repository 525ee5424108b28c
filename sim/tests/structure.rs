//! The simulator's module structure: no two modules import each other, directly or round a
//! longer circle, so each can be read (and changed) knowing only what is below it; and no
//! source file grows past 1,000 lines (`run` is split by phase, each file under 500).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module name → the crate modules its files name (`crate::x`, `use crate::{x, y}`).
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            let module = path.file_name().unwrap().to_string_lossy().into_owned();
            for f in std::fs::read_dir(&path).unwrap() {
                files.push((module.clone(), f.unwrap().path()));
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            if stem != "main" && stem != "lib" {
                files.push((stem, path));
            }
        }
    }
    for (module, path) in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let deps = graph.entry(module.clone()).or_default();
        let mut rest = text.as_str();
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let names: Vec<String> = if let Some(list) = rest.strip_prefix('{') {
                let end = list.find('}').unwrap_or(list.len());
                list[..end]
                    .split(',')
                    .map(|n| n.trim().split("::").next().unwrap_or("").to_string())
                    .collect()
            } else {
                vec![
                    rest.chars()
                        .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                        .collect(),
                ]
            };
            for n in names {
                if !n.is_empty() && n != module {
                    deps.insert(n);
                }
            }
        }
    }
    // Names that are items of the crate root, not modules (`crate::run` is both: a module).
    let modules: BTreeSet<String> = graph.keys().cloned().collect();
    for deps in graph.values_mut() {
        deps.retain(|d| modules.contains(d));
    }
    graph
}

/// A circle of imports, if there is one.
fn circle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        g: &BTreeMap<String, BTreeSet<String>>,
        m: &str,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == m) {
            let mut c = path[i..].to_vec();
            c.push(m.to_string());
            return Some(c);
        }
        if done.contains(m) {
            return None;
        }
        path.push(m.to_string());
        for d in g.get(m).into_iter().flatten() {
            if let Some(c) = visit(g, d, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(m.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|m| visit(graph, m, &mut Vec::new(), &mut done))
}

#[test]
fn no_module_imports_round_a_circle() {
    let graph = imports();
    assert!(graph.contains_key("scenario") && graph.contains_key("users"));
    assert_eq!(circle(&graph), None, "{graph:#?}");
    // The scenario types are at the bottom: they import no other module.
    assert!(graph["scenario"].is_empty(), "{:?}", graph["scenario"]);
}

#[test]
fn the_run_is_split_by_phase_and_no_file_is_huge() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lines = |p: &Path| std::fs::read_to_string(p).unwrap().lines().count();
    let run: Vec<_> = std::fs::read_dir(src.join("run"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(run.len() >= 5, "{run:?}");
    for p in &run {
        assert!(lines(p) < 500, "{}: {} lines", p.display(), lines(p));
    }
    for e in std::fs::read_dir(&src).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            assert!(lines(&p) < 1_000, "{}: {} lines", p.display(), lines(&p));
        }
    }
}

#[test]
fn the_circle_finder_finds_circles() {
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    g.entry("a".into()).or_default().insert("b".into());
    g.entry("b".into()).or_default().insert("c".into());
    g.entry("c".into()).or_default();
    assert_eq!(circle(&g), None);
    g.get_mut("c").unwrap().insert("a".into());
    assert_eq!(
        circle(&g),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
}
