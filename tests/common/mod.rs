//! Helpers shared by the facade's tests: waiting on a paused clock ([`yield_until`]), a
//! proptest configuration, and running the examples from tests, as a user would. `cargo test`
//! builds the examples before it runs the tests; when running one test file alone, build them
//! too: `cargo build --examples && cargo test --test NAME`.
#![allow(dead_code)] // each test file uses part of it
#![allow(unreachable_pub)] // `pub` for the test files that include it: nothing here is API

use std::path::PathBuf;
use std::process::{Command, Output};

/// The example binary built by `cargo test` next to this test's own binary.
pub fn example(name: &str) -> PathBuf {
    let test_binary = std::env::current_exe().expect("test binary path");
    let profile_dir = test_binary
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps");
    profile_dir.join("examples").join(name)
}

/// Runs the example with `args` from the repository root, asserts that it exits with 0, and
/// returns its output and its standard output as text.
pub fn run_example(name: &str, args: &[&str]) -> (Output, String) {
    let path = example(name);
    let output = Command::new(&path)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap_or_else(|error| {
            panic!(
                "cannot run {} (build the examples first): {error}",
                path.display()
            )
        });
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{name} failed: {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    (output, stdout)
}

/// A proptest configuration of `default_cases` cases unless `PROPTEST_CASES` says otherwise;
/// failures are not persisted to files (proptest prints the minimal failing case).
pub fn proptest_config(default_cases: u32) -> proptest::test_runner::Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(default_cases);
    proptest::test_runner::Config {
        cases,
        failure_persistence: None,
        ..proptest::test_runner::Config::default()
    }
}

#[path = "../../crates/overseer-supervisor/tests/common/yield_until.rs"]
mod yield_until;
#[allow(unused_imports)] // each test file uses part of it
pub use yield_until::yield_until;

/// Asserts that the lines of a document's excerpt appear in `out` in order, each run of lines
/// between `…` lines together; `what` names the document in the failure.
pub fn assert_excerpt_in(excerpt: &[String], out: &str, what: &str) {
    let lines: Vec<&str> = out.lines().collect();
    let mut from = 0;
    for chunk in excerpt.split(|line| line == "…") {
        assert!(!chunk.is_empty(), "an empty part in {what}'s excerpt");
        let found = (from..=lines.len().saturating_sub(chunk.len()))
            .find(|&at| lines[at..at + chunk.len()] == *chunk)
            .unwrap_or_else(|| {
                panic!(
                    "{what}'s lines\n{}\nare not in the run (after line {from}):\n{out}",
                    chunk.join("\n")
                )
            });
        from = found + chunk.len();
    }
}
