//! Scenario 6: the kill switch, and the peers' nearest equivalent, stopping a supervisor.

use super::{repeat, Config};
use crate::measure::on_fresh_runtime;
use crate::report::{count, Column, Row, Table, Unit};
use crate::systems::Subject;

/// What each subject's row measures.
fn note(subject: Subject) -> &'static str {
    match subject {
        Subject::Ractor => {
            "supervisor stopped; its `post_stop` stops all children at once and waits"
        }
        Subject::RactorSupervisor => {
            "supervisor stopped; ractor kills its children as it exits; waited for each"
        }
        Subject::Kameo => "`stop_gracefully` on the supervisor: children stopped concurrently",
        Subject::OverseerTree => {
            "`SupervisionTree::shutdown`: one child at a time, reverse start order, politely"
        }
        Subject::OverseerAgents => "`Budget::trip` until the root supervisor has exited",
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
        Subject::OverseerAgents,
    ];
    let mut rows: Vec<(Subject, Row)> = subjects
        .iter()
        .map(|&subject| (subject, Row::for_subject(subject, "", note(subject))))
        .collect();
    let children = config.stop_children;
    let n = count(children as u64);
    repeat(
        config,
        "kill",
        &mut rows,
        |subject| {
            let elapsed = on_fresh_runtime(subject.stop_all(children))?;
            Ok(vec![elapsed.as_nanos() as f64])
        },
        Unit::Nanos,
    );
    vec![Table {
        scenario: "kill",
        title: format!("6. Kill switch: {n} agents, trip until all stopped"),
        what: format!(
            "Overseer: a `System` with a `Budget` and {n} idle agents under one \
             `one_for_one` root; the time from `Budget::trip` until the root supervisor has \
             exited (every agent stopped). The peers have no kill switch; the nearest \
             equivalent is stopping a supervisor of {n} children until every child has \
             stopped. Median over {} repetitions, each with a fresh tree.",
            config.repetitions
        ),
        columns: vec![Column::with_ratio(
            "trip / stop to all stopped",
            Unit::Nanos,
        )],
        rows: rows.into_iter().map(|(_, row)| row).collect(),
        notes: vec![
            "Not exactly comparable. Overseer stops children one at a time in reverse start \
             order, each asked to stop and waited for (OTP's ordered shutdown, so a child can \
             rely on the ones started before it); the trip also publishes an event and \
             refuses new asks first. ractor's hand-rolled supervisor and kameo stop all \
             children at once and wait; ractor-supervisor's children are killed, not asked, \
             by ractor as the supervisor exits."
                .to_string(),
        ],
    }
    .finish()]
}
