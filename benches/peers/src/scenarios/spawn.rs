//! Scenario 4: spawning many supervised children, time per spawn and resident memory per
//! child. Each measurement runs in a fresh process (the harness binary re-executed with a
//! hidden subcommand), so one system's allocations never sit in another's heap.

use std::process::{Command, ExitCode, Stdio};

use serde::{Deserialize, Serialize};

use super::{repeat, Config};
use crate::measure::{fail, resident_bytes, set_worker_threads, worker_threads, Outcome};
use crate::report::{count, Column, Row, Table, Unit};
use crate::systems::Subject;

/// The hidden subcommand: `__spawn <subject key> <children>`.
pub(crate) const SUBCOMMAND: &str = "__spawn";

/// How the measuring process tells its child the runtime's worker threads.
const WORKERS_ENV: &str = "OVERSEER_PEERS_WORKERS";

/// Children spawned (and kept) before the memory is first read, so that lazily created
/// globals, the runtime's pools and the allocator's arenas are already there.
const WARM_UP: usize = 64;

/// What the child process reports, as one line of JSON.
#[derive(Debug, Serialize, Deserialize)]
struct Measured {
    /// How many children.
    children: usize,
    /// Time to start them all (see `Started::elapsed`), in nanoseconds.
    elapsed_ns: f64,
    /// Resident memory after minus before, in bytes.
    resident_delta: f64,
}

/// What each subject's row measures.
fn note(subject: Subject) -> &'static str {
    match subject {
        Subject::RactorBare => "`Actor::spawn`, unsupervised: the memory baseline, not a peer",
        Subject::Ractor => "`spawn_linked` by the hand-rolled supervisor in its `pre_start`",
        Subject::RactorSupervisor => {
            "one `Supervisor` with a `ChildSpec` per child, each named in ractor's registry"
        }
        Subject::Kameo => "`Spawn::supervise` under one supervisor actor",
        Subject::OverseerTree => "`SupervisionTree` with a `ChildSpec::actor` per child",
        Subject::OverseerAgents => "`System` with an `Agent` per child under one supervisor",
        _ => "",
    }
}

/// Runs the scenario.
pub(crate) fn run(config: &Config) -> Vec<Table> {
    let subjects = [
        Subject::RactorBare,
        Subject::Ractor,
        Subject::RactorSupervisor,
        Subject::Kameo,
        Subject::OverseerTree,
        Subject::OverseerAgents,
    ];
    let mut rows: Vec<(Subject, Row)> = subjects
        .iter()
        .map(|&subject| (subject, Row::for_subject(subject, "", note(subject))))
        .collect();
    let children = config.spawn_children;
    let n = count(children as u64);
    repeat(
        config,
        "spawn",
        &mut rows,
        |subject| {
            let measured = in_child_process(subject, children)?;
            let n = measured.children as f64;
            Ok(vec![measured.elapsed_ns / n, measured.resident_delta / n])
        },
        Unit::Nanos,
    );
    vec![Table {
        scenario: "spawn",
        title: format!("4. Spawn and memory, {n} children"),
        what: format!(
            "{n} children (agents for Overseer's `System`) started under one supervisor, \
             each system in a fresh process. Time per spawn: from the first start call until \
             every child has run its start hook and the supervisor has answered a request, \
             divided by {n} (building the specs is not timed). Memory per child: the \
             growth of resident memory (`/proc/self/statm`) over the same span, specs \
             included, divided by {n}. Median over {} repetitions.",
            config.repetitions
        ),
        columns: vec![
            Column::with_ratio("time per spawn", Unit::Nanos),
            Column::with_ratio("memory per child", Unit::Bytes),
        ],
        rows: rows.into_iter().map(|(_, row)| row).collect(),
        notes: Vec::new(),
    }
    .finish()]
}

/// Runs one measurement in a child process.
fn in_child_process(subject: Subject, children: usize) -> Outcome<Measured> {
    let output = Command::new(std::env::current_exe()?)
        .args([SUBCOMMAND, subject.key(), &children.to_string()])
        .env(WORKERS_ENV, worker_threads().to_string())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()?;
    if !output.status.success() {
        return Err(fail(format!(
            "the child process exited with {}",
            output.status
        )));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .last()
        .ok_or_else(|| fail("the child process printed nothing"))?;
    Ok(serde_json::from_str(line)?)
}

/// The hidden subcommand's entry point: measures, prints one line of JSON, and exits at once
/// without tearing anything down.
pub(crate) fn child_main(args: &[String]) -> ExitCode {
    if let Some(workers) = std::env::var(WORKERS_ENV)
        .ok()
        .and_then(|value| value.parse().ok())
    {
        set_worker_threads(workers);
    }
    let parsed = match args {
        [key, children] => Subject::from_key(key).zip(children.parse::<usize>().ok()),
        _ => None,
    };
    let Some((subject, children)) = parsed else {
        eprintln!("usage: {SUBCOMMAND} <subject> <children>");
        return ExitCode::FAILURE;
    };
    match measure_here(subject, children) {
        Ok(measured) => match serde_json::to_string(&measured) {
            Ok(line) => {
                println!("{line}");
                // Skip tearing down 100,000 actors: the process is done.
                std::process::exit(0)
            }
            Err(error) => {
                eprintln!("{error}");
                ExitCode::FAILURE
            }
        },
        Err(failure) => {
            eprintln!("{}: {failure}", subject.name());
            ExitCode::FAILURE
        }
    }
}

fn measure_here(subject: Subject, children: usize) -> Outcome<Measured> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(worker_threads())
        .enable_all()
        .build()?;
    let measured = runtime.block_on(async move {
        tokio::spawn(async move {
            let warm = subject.spawn_children(WARM_UP).await?;
            let before = resident_bytes()?;
            let started = subject.spawn_children(children).await?;
            let after = resident_bytes()?;
            let elapsed_ns = started.elapsed.as_nanos() as f64;
            // Kept alive until the process exits.
            std::mem::forget(started.keep_alive);
            std::mem::forget(warm.keep_alive);
            Ok::<_, crate::measure::Failure>(Measured {
                children,
                elapsed_ns,
                resident_delta: after as f64 - before as f64,
            })
        })
        .await
    });
    // The runtime is never dropped: the process exits after printing.
    std::mem::forget(runtime);
    measured.map_err(|error| fail(format!("the run's task failed: {error}")))?
}
