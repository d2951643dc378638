//! Scenario 2: a restart storm under a `one_for_all` supervisor.

use super::{repeat, Config};
use crate::measure::{median, nanos, on_fresh_runtime};
use crate::report::{count, Column, Row, Table, Unit};
use crate::systems::Subject;

/// What each subject's row measures.
fn note(subject: Subject) -> &'static str {
    match subject {
        Subject::Ractor => {
            "kills the others, waits for their exit, spawns all; hands out the new refs"
        }
        Subject::RactorSupervisor => {
            "kills all, sleeps 10 ms (its own), spawns all; found with `where_is`"
        }
        Subject::Kameo => "stops the others concurrently, restarts all in place",
        Subject::OverseerTree => {
            "stops the others one at a time, politely (OTP's default), starts all in order"
        }
        Subject::OverseerTreeBrutalKill => "the same with `Shutdown::BrutalKill` children",
        Subject::OverseerAgents => "agents with the default shutdown; asks wait in their queues",
        _ => "",
    }
}

/// Runs the scenario.
pub(crate) fn run(config: &Config) -> Vec<Table> {
    let subjects = [
        Subject::Ractor,
        Subject::RactorSupervisor,
        Subject::Kameo,
        Subject::OverseerTree,
        Subject::OverseerTreeBrutalKill,
        Subject::OverseerAgents,
    ];
    let mut rows: Vec<(Subject, Row)> = subjects
        .iter()
        .map(|&subject| (subject, Row::for_subject(subject, "", note(subject))))
        .collect();
    let (children, storms) = (config.storm_children, config.storms);
    let n = count(children as u64);
    repeat(
        config,
        "storm",
        &mut rows,
        |subject| {
            let times = on_fresh_runtime(subject.restart_storm(children, storms))?;
            Ok(vec![median(&nanos(&times))])
        },
        Unit::Nanos,
    );
    vec![Table {
        scenario: "storm",
        title: format!("2. Restart storm, one_for_all with {n} children"),
        what: format!(
            "{n} children under one `one_for_all` supervisor; one of them panics. \
             Measured until every child has been restarted and each has answered a request from \
             its new incarnation (the answers are awaited concurrently). {storms} storms per \
             repetition, their median, then the median over {} repetitions.",
            config.repetitions
        ),
        columns: vec![Column::with_ratio("median", Unit::Nanos)],
        rows: rows.into_iter().map(|(_, row)| row).collect(),
        notes: Vec::new(),
    }
    .finish()]
}
