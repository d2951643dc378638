//! The documentation against the repository: every relative link and every file path it
//! names exists, every Rust block of a document is compiled as a doc test, and what
//! `docs/reliability.md` says of tests is true of the test files.

use std::fs;
use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// README.md and every `docs/*.md`, with their text.
fn documents() -> Vec<(PathBuf, String)> {
    let mut paths = vec![root().join("README.md")];
    let mut docs: Vec<PathBuf> = fs::read_dir(root().join("docs"))
        .expect("docs/")
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    docs.sort();
    paths.extend(docs);
    paths
        .into_iter()
        .map(|path| {
            let text = fs::read_to_string(&path).expect("readable");
            (path, text)
        })
        .collect()
}

/// The lines outside fenced code blocks.
fn prose(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut fenced = false;
    text.lines().enumerate().filter(move |(_, line)| {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            return false;
        }
        !fenced
    })
}

/// The targets of `[text](target)` links on a line.
fn link_targets(line: &str) -> Vec<&str> {
    let mut targets = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("](") {
        let after = &rest[at + 2..];
        match after.find(')') {
            Some(end) => {
                targets.push(&after[..end]);
                rest = &after[end..];
            }
            None => break,
        }
    }
    targets
}

/// Inline code spans (`like this`) on a line.
fn code_spans(line: &str) -> Vec<&str> {
    line.split('`').skip(1).step_by(2).collect()
}

/// A code span that names a file of the repository: a relative path with a file extension,
/// no wildcard and no placeholder.
fn names_a_file(span: &str) -> bool {
    const EXTENSIONS: [&str; 6] = [".rs", ".md", ".toml", ".scn", ".trace", ".jsonl"];
    const TOP: [&str; 7] = [
        "docs/",
        "examples/",
        "tests/",
        "crates/",
        "benches/",
        "fuzz/",
        "src/",
    ];
    TOP.iter().any(|top| span.starts_with(top))
        && EXTENSIONS.iter().any(|ext| span.ends_with(ext))
        && !span.contains(['*', '<', '{', ' '])
}

#[test]
fn every_relative_link_and_file_path_in_the_docs_exists() {
    let mut missing = Vec::new();
    for (path, text) in documents() {
        let dir = path.parent().expect("in a directory");
        let name = path
            .strip_prefix(root())
            .unwrap_or(&path)
            .display()
            .to_string();
        for (number, line) in prose(&text) {
            for target in link_targets(line) {
                let file = target.split('#').next().unwrap_or_default();
                if file.is_empty() || file.contains("://") || file.starts_with("mailto:") {
                    continue;
                }
                if !dir.join(file).exists() {
                    missing.push(format!("{name}:{}: link to {target}", number + 1));
                }
            }
            for span in code_spans(line)
                .into_iter()
                .filter(|span| names_a_file(span))
            {
                if !root().join(span).exists() {
                    missing.push(format!("{name}:{}: `{span}`", number + 1));
                }
            }
        }
    }
    assert!(missing.is_empty(), "missing files:\n{}", missing.join("\n"));
}

#[test]
fn every_document_with_rust_blocks_is_compiled_as_doc_tests() {
    let lib = fs::read_to_string(root().join("src/lib.rs")).expect("src/lib.rs");
    for (path, text) in documents() {
        let relative = path.strip_prefix(root()).expect("in the repository");
        let has_rust = text
            .lines()
            .map(str::trim_start)
            .any(|line| line == "```rust" || line.starts_with("```rust,"));
        let included = lib.contains(&format!(
            "#[doc = include_str!(\"../{}\")]",
            relative.display()
        ));
        assert!(
            !has_rust || included,
            "{} has Rust blocks but src/lib.rs does not include it as doc tests",
            relative.display()
        );
    }
}

/// The text of every `.rs` file under `tests/`.
fn test_sources() -> String {
    fn collect(dir: &Path, into: &mut String) {
        for entry in fs::read_dir(dir).expect("readable").flatten() {
            let path = entry.path();
            if path.is_dir() {
                collect(&path, into);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                into.push_str(&fs::read_to_string(&path).expect("readable"));
            }
        }
    }
    let mut text = String::new();
    collect(&root().join("tests"), &mut text);
    text
}

#[test]
fn the_tests_reliability_md_names_exist_and_it_mentions_ignored_tests_only_if_there_are_some() {
    let doc = fs::read_to_string(root().join("docs/reliability.md")).expect("reliability.md");
    let sources = test_sources();
    for (number, line) in prose(&doc) {
        for span in code_spans(line) {
            // Test names are snake case with at least five words (`simple_one_for_one` is not one).
            let is_test_name = span.matches('_').count() >= 4
                && span
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if is_test_name {
                assert!(
                    sources.contains(&format!("fn {span}(")),
                    "reliability.md:{}: no test named {span}",
                    number + 1
                );
            }
        }
    }
    let ignored = sources
        .lines()
        .any(|line| line.trim_start().starts_with("#[ignore"));
    for claim in ["--ignored", "an ignored test", "kept as an ignored"] {
        assert!(
            ignored || !doc.contains(claim),
            "reliability.md says {claim:?} but no test under tests/ is ignored"
        );
    }
}
