//! The scenarios, their sizes, and the loop that runs every subject in every repetition.

use crate::measure::Outcome;
use crate::report::{format_value, Row, Table, Unit};
use crate::systems::Subject;

pub(crate) mod ask;
pub(crate) mod governance;
pub(crate) mod kill;
pub(crate) mod restart;
pub(crate) mod spawn;
pub(crate) mod storm;

/// Sizes and repetitions of a run.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// Whether this is the `--quick` smoke run.
    pub(crate) quick: bool,
    /// Repetitions of every measurement; tables report the median of their figures.
    pub(crate) repetitions: usize,
    /// Scenario 1: crash-and-answer cycles per repetition.
    pub(crate) restart_cycles: usize,
    /// Scenario 2: children under the `one_for_all` supervisor.
    pub(crate) storm_children: usize,
    /// Scenario 2: storms per repetition.
    pub(crate) storms: usize,
    /// Scenario 3: batches of asks per repetition.
    pub(crate) ask_batches: usize,
    /// Scenario 3: asks per batch.
    pub(crate) asks_per_batch: usize,
    /// Scenario 4: children spawned per repetition (each in a fresh process).
    pub(crate) spawn_children: usize,
    /// Scenario 5: operations per thread per repetition.
    pub(crate) governance_ops: u64,
    /// Scenario 6: children or agents stopped per repetition.
    pub(crate) stop_children: usize,
}

impl Config {
    /// The full run.
    pub(crate) fn full() -> Self {
        Self {
            quick: false,
            repetitions: 5,
            restart_cycles: 1_000,
            storm_children: 1_000,
            storms: 10,
            ask_batches: 200,
            asks_per_batch: 1_000,
            spawn_children: 100_000,
            governance_ops: 1_000_000,
            stop_children: 10_000,
        }
    }

    /// The `--quick` smoke run: fewer repetitions, smaller sizes.
    pub(crate) fn quick() -> Self {
        Self {
            quick: true,
            repetitions: 2,
            restart_cycles: 200,
            storm_children: 1_000,
            storms: 2,
            ask_batches: 20,
            asks_per_batch: 1_000,
            spawn_children: 10_000,
            governance_ops: 200_000,
            stop_children: 1_000,
        }
    }
}

/// A scenario: its key (matched by the command line's filters) and how to run it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scenario {
    /// What a filter matches.
    pub(crate) key: &'static str,
    /// Runs it and returns its tables.
    pub(crate) run: fn(&Config) -> Vec<Table>,
}

/// Every scenario, in the order they run.
pub(crate) const SCENARIOS: [Scenario; 6] = [
    Scenario {
        key: "restart",
        run: restart::run,
    },
    Scenario {
        key: "storm",
        run: storm::run,
    },
    Scenario {
        key: "ask",
        run: ask::run,
    },
    Scenario {
        key: "spawn",
        run: spawn::run,
    },
    Scenario {
        key: "governance",
        run: governance::run,
    },
    Scenario {
        key: "kill",
        run: kill::run,
    },
];

/// Runs `measure` for every row's subject in every repetition, the subjects interleaved
/// within a repetition so that drift over the run affects all alike. A repetition's figures
/// (one per column) go to the row; a failure is recorded in the row and the run goes on.
pub(crate) fn repeat(
    config: &Config,
    scenario: &str,
    rows: &mut [(Subject, Row)],
    mut measure: impl FnMut(Subject) -> Outcome<Vec<f64>>,
    first_unit: Unit,
) {
    for repetition in 1..=config.repetitions {
        for (subject, row) in rows.iter_mut() {
            let label = format!(
                "[{scenario}{}] repetition {repetition}/{}: {}",
                if row.group.is_empty() {
                    String::new()
                } else {
                    format!(", {}", row.group)
                },
                config.repetitions,
                row.system
            );
            match measure(*subject) {
                Ok(figures) => {
                    eprintln!("{label}: {}", format_value(figures[0], first_unit));
                    row.repetitions.push(figures);
                }
                Err(failure) => {
                    eprintln!("{label}: FAILED: {failure}");
                    row.failure = Some(failure.0);
                }
            }
        }
    }
}
