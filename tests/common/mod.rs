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

/// How many times [`yield_until`] lets the other tasks run before it gives up. Each yield lets
/// every ready task run once, and what the tests wait for took at most one when measured: the
/// bound only turns a wait that would never end into a failure.
pub const MAX_YIELDS: usize = 1_000;

/// Lets the runtime's other tasks run, one [`tokio::task::yield_now`] at a time, until `done()`
/// holds, and fails the test naming `what` if it still does not after [`MAX_YIELDS`] yields.
///
/// A task that keeps yielding keeps the runtime busy, so a paused clock never moves while this
/// waits: a deadline on that clock would never pass (the test would hang instead of failing),
/// hence a bound in yields. What it waits for must therefore need no timer to fire.
pub async fn yield_until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..MAX_YIELDS {
        if done() {
            return;
        }
        tokio::task::yield_now().await;
    }
    assert!(
        done(),
        "{what}: not after {MAX_YIELDS} yields (no time passes on the paused clock meanwhile)"
    );
}
