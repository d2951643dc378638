//! Random runs crashed at random points: whatever the crash, the reopened journal holds every
//! acknowledged append, in order, and nothing but a prefix of the group that failed.

use overseer_journal::{
    CrashPlan, Durability, Effect, Entry, Epoch, Journal, JournalConfig, MemStorage, Payload,
    Recorded, RunId, Spent, StepId,
};
use proptest::prelude::*;

/// One thing a run does.
#[derive(Debug, Clone)]
enum Op {
    Start(u8),
    Claim(u8),
    Step(u8, u32),
    Finish(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..3).prop_map(Op::Start),
        (0u8..3).prop_map(Op::Claim),
        (0u8..3, 0u32..4).prop_map(|(r, s)| Op::Step(r, s)),
        (0u8..3).prop_map(Op::Finish),
    ]
}

fn run(n: u8) -> RunId {
    RunId::new(format!("r{n}")).unwrap()
}

/// What the runs look like to the test, to write entries the journal may accept (or refuse).
#[derive(Default)]
struct Model {
    epochs: [Option<Epoch>; 3],
}

async fn apply(journal: &Journal, model: &mut Model, op: &Op) -> Result<Vec<Entry>, ()> {
    let entries = match *op {
        Op::Start(r) => {
            let input = Payload::encode(&r).unwrap();
            vec![Entry::RunStarted {
                run: run(r),
                agent: "root/a".into(),
                fingerprint: input.fingerprint(),
                input,
                started_at_ms: 0,
            }]
        }
        Op::Claim(r) => {
            let epoch = journal.claim(&run(r)).await.map_err(drop)?;
            model.epochs[r as usize] = Some(epoch);
            return Ok(vec![Entry::RunClaimed { run: run(r), epoch }]);
        }
        Op::Step(r, ordinal) => vec![Entry::StepCompleted {
            run: run(r),
            epoch: model.epochs[r as usize].unwrap_or(Epoch::FIRST),
            step: StepId::new("root/a", 0, ordinal),
            name: "model".into(),
            effect: Effect::Idempotent,
            outcome: Recorded::Value(Payload::encode(&ordinal).unwrap()),
            spent: Spent::NONE,
        }],
        Op::Finish(r) => vec![Entry::RunFinished {
            run: run(r),
            epoch: model.epochs[r as usize].unwrap_or(Epoch::FIRST),
            outcome: Recorded::Failed("stopped".into()),
        }],
    };
    journal
        .append(entries.clone(), Durability::Sync)
        .await
        .map(|_| entries)
        .map_err(drop)
}

fn encoded(entries: &[Entry]) -> Vec<Vec<u8>> {
    entries
        .iter()
        .map(|entry| serde_json::to_vec(entry).unwrap())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn a_crash_loses_nothing_acknowledged(ops in prop::collection::vec(op(), 1..40), crash in 0u64..40) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(async {
            let storage = MemStorage::new().crash(CrashPlan::AfterRecords(crash));
            let (journal, _) = Journal::open(storage.clone(), JournalConfig::default()).unwrap();
            let mut model = Model::default();
            let mut acknowledged = Vec::new();
            for op in &ops {
                if let Ok(entries) = apply(&journal, &mut model, op).await {
                    acknowledged.extend(entries);
                }
            }
            drop(journal);
            let reopened = storage.reopen();
            let mut stored = reopened.clone();
            let records = overseer_journal::Storage::load(&mut stored).unwrap().records;
            let acknowledged = encoded(&acknowledged);
            prop_assert!(records.len() >= acknowledged.len());
            prop_assert_eq!(&records[..acknowledged.len()], &acknowledged[..]);
            prop_assert!(records.len() as u64 <= crash.max(acknowledged.len() as u64));
            // And it opens: every prefix is a journal.
            let (journal, opened) = Journal::open(reopened, JournalConfig::default()).unwrap();
            prop_assert_eq!(opened.records, records.len() as u64);
            drop(journal);
            Ok(())
        })?;
    }
}
