//! Runs a parsed [`Scenario`] against real Overseer supervisors on a paused tokio clock and
//! prints the trace in the format of OTP's recordings.
//!
//! The workers are small ractor actors that crash, exit with a given reason, ignore the polite
//! shutdown (`stubborn`) or fail to start, on command. Every batch of actions between two
//! `advance` lines runs at one instant of the paused clock; after each action the runner waits
//! until the tree has settled (no actor ready to run and no supervisor busy), so each action's
//! events are printed before the next action's echo.

use crate::scenario::Scenario;

// A run by its parts, each file naming only those below it: the world (specs, worker
// incarnations, failing starts) over the worker actor, the run over the world, and the
// Erlang forms the trace prints.
mod erlang;
mod error;
mod failing_starts;
mod report;
mod restarts;
mod run;
mod worker;
mod world;

pub use error::RunError;
pub use report::RunReport;
pub use restarts::Restarts;

use run::Run;

/// Parses and runs a scenario on a fresh single-threaded runtime with a paused clock; returns
/// the trace, one event per line, ending with the `alive:` line and a newline. Like
/// [`run_blocking`], it must not be called from inside a tokio runtime.
///
/// ```
/// let trace = overseer_conformance::runner::run_text(
///     "sup root one_for_one intensity=1 period=5\n  child a\ncrash a\n",
/// )?;
/// assert_eq!(trace, "start root\nstart a\n> crash a\nstop a crash\nrestart a\nalive: a root\n");
/// # Ok::<(), overseer_conformance::runner::RunError>(())
/// ```
pub fn run_text(text: &str) -> Result<String, RunError> {
    run_text_with(text, Restarts::NewActor)
}

/// [`run_text`] with workers restarted as `restarts` says.
pub fn run_text_with(text: &str, restarts: Restarts) -> Result<String, RunError> {
    let scenario = crate::parse(text)?;
    run_blocking_with(&scenario, restarts)
}

/// [`run_text_with`], reporting the alive set and each child's last fate too.
pub fn run_text_reporting(text: &str, restarts: Restarts) -> Result<RunReport, RunError> {
    let scenario = crate::parse(text)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()?;
    runtime.block_on(run_reporting(&scenario, restarts))
}

/// Runs a parsed scenario on a fresh single-threaded runtime with a paused clock. It builds
/// its own runtime, so it must not be called from inside a tokio runtime: use [`run`] there.
pub fn run_blocking(scenario: &Scenario) -> Result<String, RunError> {
    run_blocking_with(scenario, Restarts::NewActor)
}

/// [`run_blocking`] with workers restarted as `restarts` says.
pub fn run_blocking_with(scenario: &Scenario, restarts: Restarts) -> Result<String, RunError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()?;
    runtime.block_on(run_with(scenario, restarts))
}

/// Runs a parsed scenario. Must be called on a current-thread runtime whose clock is paused
/// (see [`run_blocking`]).
pub async fn run(scenario: &Scenario) -> Result<String, RunError> {
    run_with(scenario, Restarts::NewActor).await
}

/// [`run`] with workers restarted as `restarts` says.
pub async fn run_with(scenario: &Scenario, restarts: Restarts) -> Result<String, RunError> {
    Ok(run_reporting(scenario, restarts).await?.trace)
}

/// [`run_with`], reporting the alive set and each child's last fate too.
pub async fn run_reporting(scenario: &Scenario, restarts: Restarts) -> Result<RunReport, RunError> {
    let mut run = Run::start(scenario, restarts).await?;
    for line in &scenario.actions {
        run.play(line).await?;
    }
    Ok(run.report().await)
}
