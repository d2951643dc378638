//! Scenario 1: restart latency under a `one_for_one` supervisor, for a panic and for an error.

use super::{repeat, Config};
use crate::measure::{median, nanos, on_fresh_runtime, quantile};
use crate::report::{count, Column, Row, Table, Unit};
use crate::systems::{Fault, Subject};

/// What each subject's row measures.
fn note(subject: Subject) -> &'static str {
    match subject {
        Subject::Ractor => "cast, then the supervisor hands out the new `ActorRef`; `call_t!`",
        Subject::RactorSupervisor => "cast, then `registry::where_is` until a new actor; `call_t!`",
        Subject::Kameo => "`tell`, then `ask` on the same `ActorRef` (restarted in place)",
        Subject::OverseerTree => {
            "cast, then its `Started` event on the tree's bus, then `which_children`; `call_t!`"
        }
        Subject::OverseerAgents => "`tell`, then `ask` on the same `AgentRef`",
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
    let mut rows = Vec::new();
    for fault in [Fault::Panic, Fault::Error] {
        let mut group: Vec<(Subject, Row)> = subjects
            .iter()
            .map(|&subject| {
                (
                    subject,
                    Row::for_subject(subject, fault.label(), note(subject)),
                )
            })
            .collect();
        let cycles = config.restart_cycles;
        repeat(
            config,
            "restart",
            &mut group,
            |subject| {
                let times = on_fresh_runtime(subject.restart_latency(fault, cycles))?;
                let times = nanos(&times);
                Ok(vec![median(&times), quantile(&times, 0.99)])
            },
            Unit::Nanos,
        );
        rows.extend(group.into_iter().map(|(_, row)| row));
    }
    vec![Table {
        scenario: "restart",
        title: "1. Restart latency, one_for_one".to_string(),
        what: format!(
            "One child under a `one_for_one` supervisor. Each cycle sends it a message whose \
             handler panics (or returns an error), then measures until a new incarnation of the \
             child has answered a request (the answer carries the incarnation's start number, \
             so an answer from the old one cannot be mistaken for it). {} cycles per \
             repetition; the median and p99 of each repetition, then the median of those over \
             {} repetitions. Ratios compare with the fastest peer for the same fault.",
            count(config.restart_cycles as u64),
            config.repetitions
        ),
        columns: vec![
            Column::with_ratio("median", Unit::Nanos),
            Column::plain("p99", Unit::Nanos),
        ],
        rows,
        notes: Vec::new(),
    }
    .finish()]
}
