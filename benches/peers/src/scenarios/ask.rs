//! Scenario 3: the ask round trip.

use super::{repeat, Config};
use crate::measure::{median, nanos, on_fresh_runtime};
use crate::report::{count, Column, Row, Table, Unit};
use crate::systems::Subject;

/// What each subject's row measures.
fn note(subject: Subject) -> &'static str {
    match subject {
        Subject::Ractor => "`call_t!` on a bare actor (with its timeout)",
        Subject::RactorSupervisor => {
            "no call path of its own: `call_t!` on a child it supervises (the same ractor call)"
        }
        Subject::Kameo => "`ask` on a bare actor (no deadline, kameo's default)",
        Subject::OverseerTree => "`call_t!` on a worker inside Overseer's `Supervised` wrapper",
        Subject::OverseerAgents => "`AgentRef::ask`, the full call path (no breaker, no budget)",
        Subject::OverseerAgentsGoverned => {
            "`AgentRef::ask` with a circuit breaker and a budget (permit, reservation, commit)"
        }
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
        Subject::OverseerAgentsGoverned,
    ];
    let mut rows: Vec<(Subject, Row)> = subjects
        .iter()
        .map(|&subject| (subject, Row::for_subject(subject, "", note(subject))))
        .collect();
    let (batches, per_batch) = (config.ask_batches, config.asks_per_batch);
    repeat(
        config,
        "ask",
        &mut rows,
        |subject| {
            let times = on_fresh_runtime(subject.ask_round_trip(batches, per_batch))?;
            Ok(vec![median(&nanos(&times))])
        },
        Unit::Nanos,
    );
    vec![Table {
        scenario: "ask",
        title: "3. Ask round trip".to_string(),
        what: format!(
            "One caller asks one child that answers at once, one ask at a time. Each repetition \
             times {batches} batches of {} asks (after one batch of warm-up); its \
             figure is the median batch's time per ask; the table gives the median over {} \
             repetitions.",
            count(per_batch as u64),
            config.repetitions
        ),
        columns: vec![Column::with_ratio("per ask", Unit::Nanos)],
        rows: rows.into_iter().map(|(_, row)| row).collect(),
        notes: Vec::new(),
    }
    .finish()]
}
