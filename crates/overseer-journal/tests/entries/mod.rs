//! Entries the journal tests write: a run's start, a step, its end (shared with
//! overseer-postgres's journal tests, which include this file by path).
#![allow(dead_code, unreachable_pub)]

use overseer_journal::{Effect, Entry, Epoch, Payload, Recorded, RunId, Spent, StepId};

pub fn run(id: &str) -> RunId {
    RunId::new(id).unwrap()
}

pub fn started(id: &str) -> Entry {
    let input = Payload::encode(&format!("input of {id}")).unwrap();
    Entry::RunStarted {
        run: run(id),
        agent: "root/a".into(),
        fingerprint: input.fingerprint(),
        input,
        started_at_ms: 1_000,
    }
}

pub fn step_done(id: &str, epoch: Epoch, ordinal: u32) -> Entry {
    Entry::StepCompleted {
        run: run(id),
        epoch,
        step: StepId::new("root/a", 0, ordinal),
        name: format!("step {ordinal}"),
        effect: Effect::Idempotent,
        outcome: Recorded::Value(Payload::encode(&ordinal).unwrap()),
        spent: Spent {
            input_tokens: 10,
            ..Spent::NONE
        },
    }
}

pub fn finished(id: &str, epoch: Epoch) -> Entry {
    Entry::RunFinished {
        run: run(id),
        epoch,
        outcome: Recorded::Value(Payload::encode("done").unwrap()),
    }
}
