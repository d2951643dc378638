//! Waiting on a paused clock, for the tests of `overseer-supervisor`, `overseer-agent` and the
//! facade: each crate's `tests/common/mod.rs` includes this one file (with `#[path]`).
#![allow(unreachable_pub)] // `pub` for the test files that include it: nothing here is API

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
