//! The journal over its storages: appends checked and committed in groups, reopened after
//! crashes with every acknowledged entry and nothing else, damaged journals refused with typed
//! errors.

use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use overseer_journal::{
    CrashPlan, Durability, Effect, Entry, Epoch, Journal, JournalConfig, JournalError, MemStorage,
    Payload, Recorded, Refusal, RunAdmission, StepDecision, StepId, Storage, StorageError, Stored,
};

mod entries;

use entries::{finished, run, started, step_done};

fn open(storage: MemStorage) -> Journal {
    Journal::open(storage, JournalConfig::default()).unwrap().0
}

#[tokio::test]
async fn a_reopened_journal_holds_every_run_as_it_was() {
    let storage = MemStorage::new();
    let journal = open(storage.clone());
    journal
        .append(vec![started("r1")], Durability::Sync)
        .await
        .unwrap();
    let epoch = journal.claim(&run("r1")).await.unwrap();
    journal
        .append(vec![step_done("r1", epoch, 0)], Durability::Sync)
        .await
        .unwrap();
    journal
        .append(vec![started("r2")], Durability::Sync)
        .await
        .unwrap();
    let r2 = journal.claim(&run("r2")).await.unwrap();
    journal
        .append(vec![finished("r2", r2)], Durability::Sync)
        .await
        .unwrap();
    let before_r1 = journal.with_run(&run("r1"), |r| r.cloned());
    let before_r2 = journal.with_run(&run("r2"), |r| r.cloned());
    drop(journal);

    let (reopened, opened) = Journal::open(storage.reopen(), JournalConfig::default()).unwrap();
    assert_eq!(opened.records, 6);
    assert_eq!(opened.runs, 2);
    assert_eq!(opened.unfinished, vec![run("r1")]);
    assert!(!opened.dropped_torn_record);
    assert_eq!(reopened.with_run(&run("r1"), |r| r.cloned()), before_r1);
    assert_eq!(reopened.with_run(&run("r2"), |r| r.cloned()), before_r2);
    let replayed = reopened.decide_step(
        &run("r1"),
        &StepId::new("root/a", 0, 0),
        "step 0",
        Effect::Idempotent,
    );
    assert!(matches!(replayed, StepDecision::Replay { spent, .. } if spent.input_tokens == 10));
    assert_eq!(
        reopened.decide_step(
            &run("r1"),
            &StepId::new("root/a", 0, 1),
            "step 1",
            Effect::Idempotent
        ),
        StepDecision::Execute
    );
}

#[tokio::test]
async fn a_stale_incarnation_cannot_write() {
    let journal = open(MemStorage::new());
    journal
        .append(vec![started("r1")], Durability::Sync)
        .await
        .unwrap();
    let zombie = journal.claim(&run("r1")).await.unwrap();
    let current = journal.claim(&run("r1")).await.unwrap();
    assert_eq!((zombie, current), (Epoch(1), Epoch(2)));

    let refused = journal
        .append(vec![step_done("r1", zombie, 0)], Durability::Sync)
        .await;
    assert!(matches!(
        refused,
        Err(JournalError::Refused(Refusal::Stale { writer, holder, .. }))
            if writer == zombie && holder == Some(current)
    ));
    let refused = journal
        .append(vec![finished("r1", zombie)], Durability::Sync)
        .await;
    assert!(matches!(
        refused,
        Err(JournalError::Refused(Refusal::Stale { .. }))
    ));
    assert!(journal.with_run(&run("r1"), |r| !r.unwrap().is_finished()));

    journal
        .append(vec![step_done("r1", current, 0)], Durability::Sync)
        .await
        .unwrap();
    journal
        .append(vec![finished("r1", current)], Durability::Sync)
        .await
        .unwrap();
}

#[tokio::test]
async fn an_append_is_all_or_nothing() {
    let journal = open(MemStorage::new());
    journal
        .append(vec![started("r1")], Durability::Sync)
        .await
        .unwrap();
    let epoch = journal.claim(&run("r1")).await.unwrap();
    // The second entry is refused (a step completed twice): the first is not written either.
    let refused = journal
        .append(
            vec![step_done("r1", epoch, 0), step_done("r1", epoch, 0)],
            Durability::Sync,
        )
        .await;
    assert!(matches!(
        refused,
        Err(JournalError::Refused(Refusal::StepAlreadyCompleted { .. }))
    ));
    assert!(journal.with_run(&run("r1"), |r| r.unwrap().steps().count() == 0));
}

#[tokio::test]
async fn a_crash_keeps_what_was_acknowledged_and_nothing_that_failed() {
    // Three records fit: the start, the claim and one step.
    let storage = MemStorage::new().crash(CrashPlan::AfterRecords(3));
    let journal = open(storage.clone());
    journal
        .append(vec![started("r1")], Durability::Sync)
        .await
        .unwrap();
    let epoch = journal.claim(&run("r1")).await.unwrap();
    journal
        .append(vec![step_done("r1", epoch, 0)], Durability::Sync)
        .await
        .unwrap();
    let failed = journal
        .append(vec![step_done("r1", epoch, 1)], Durability::Sync)
        .await;
    assert!(matches!(
        failed,
        Err(JournalError::Storage(ref error)) if matches!(**error, StorageError::Crashed { .. })
    ));
    assert!(
        !journal.with_run(&run("r1"), |r| r
            .unwrap()
            .is_completed(&StepId::new("root/a", 0, 1))),
        "a failed commit is not seen by readers"
    );
    assert!(matches!(
        journal
            .append(vec![finished("r1", epoch)], Durability::Sync)
            .await,
        Err(JournalError::Failed)
    ));

    let (reopened, opened) = Journal::open(storage.reopen(), JournalConfig::default()).unwrap();
    assert_eq!(opened.records, 3);
    assert!(reopened.with_run(&run("r1"), |r| {
        let r = r.unwrap();
        r.is_completed(&StepId::new("root/a", 0, 0))
            && !r.is_completed(&StepId::new("root/a", 0, 1))
    }));
    // The next incarnation claims the next epoch and goes on.
    assert_eq!(reopened.claim(&run("r1")).await.unwrap(), Epoch(2));
}

#[tokio::test]
async fn a_torn_last_record_is_dropped_and_the_journal_goes_on() {
    let storage = MemStorage::new().crash(CrashPlan::TornAfterRecords(2));
    let journal = open(storage.clone());
    journal
        .append(vec![started("r1")], Durability::Sync)
        .await
        .unwrap();
    let epoch = journal.claim(&run("r1")).await.unwrap();
    assert!(journal
        .append(vec![step_done("r1", epoch, 0)], Durability::Sync)
        .await
        .is_err());
    let torn = storage.reopen();
    assert_eq!(torn.len(), 3, "the torn record is in the storage");

    let (reopened, opened) = Journal::open(torn.clone(), JournalConfig::default()).unwrap();
    assert!(opened.dropped_torn_record);
    assert_eq!(opened.records, 2);
    assert_eq!(torn.len(), 2, "and dropped from it before anything follows");
    let epoch = reopened.claim(&run("r1")).await.unwrap();
    reopened
        .append(vec![step_done("r1", epoch, 0)], Durability::Sync)
        .await
        .unwrap();
    let (_, opened) = Journal::open(torn.reopen(), JournalConfig::default()).unwrap();
    assert_eq!(opened.records, 4);
    assert!(!opened.dropped_torn_record);
}

#[tokio::test]
async fn damaged_journals_do_not_open() {
    let storage = MemStorage::new();
    let journal = open(storage.clone());
    for id in ["r1", "r2", "r3"] {
        journal
            .append(vec![started(id)], Durability::Sync)
            .await
            .unwrap();
    }
    drop(journal);

    let garbled = storage.reopen();
    assert!(garbled.overwrite(1, b"{not json".to_vec()));
    let error = Journal::open(garbled, JournalConfig::default()).unwrap_err();
    assert!(matches!(error, JournalError::Corrupt { position: 1, .. }));

    // A record that reads but breaks the rules: a second start of an unfinished run.
    let duplicated = storage.reopen();
    let first = serde_json::to_vec(&started("r1")).unwrap();
    assert!(duplicated.overwrite(2, first));
    let error = Journal::open(duplicated, JournalConfig::default()).unwrap_err();
    assert!(
        matches!(error, JournalError::Corrupt { position: 2, ref reason } if reason.contains("already started"))
    );

    let future = storage.reopen();
    future.set_format_version(99);
    assert!(matches!(
        Journal::open(future, JournalConfig::default()).unwrap_err(),
        JournalError::UnsupportedVersion {
            found: 99,
            supported: 1
        }
    ));
}

#[tokio::test]
async fn an_id_asked_again_gets_the_first_outcome() {
    let journal = open(MemStorage::new());
    journal
        .append(vec![started("r1")], Durability::Sync)
        .await
        .unwrap();
    let same = Payload::encode("input of r1").unwrap().fingerprint();
    assert_eq!(
        journal.admit_run(&run("r1"), same, 2_000),
        RunAdmission::Unfinished
    );
    let epoch = journal.claim(&run("r1")).await.unwrap();
    journal
        .append(vec![finished("r1", epoch)], Durability::Sync)
        .await
        .unwrap();
    assert!(matches!(
        journal.admit_run(&run("r1"), same, 2_000),
        RunAdmission::Finished(Recorded::Value(_))
    ));
    let other = Payload::encode("another input").unwrap().fingerprint();
    assert!(matches!(
        journal.admit_run(&run("r1"), other, 2_000),
        RunAdmission::Conflict { .. }
    ));
    // Past the retention (24 h by default) the id is free again, and may start anew.
    let day_later = 1_000 + 24 * 3_600_000;
    assert_eq!(
        journal.admit_run(&run("r1"), other, day_later),
        RunAdmission::Start
    );
    journal
        .append(vec![started("r1")], Durability::Sync)
        .await
        .unwrap();
    assert_eq!(journal.claim(&run("r1")).await.unwrap(), Epoch::FIRST);
}

/// A storage whose first append waits until the test lets it go: appends sent meanwhile queue up
/// and must be committed together.
struct Gated {
    inner: MemStorage,
    gate: Arc<Mutex<Option<std_mpsc::Receiver<()>>>>,
    entered: std_mpsc::Sender<()>,
}

impl Storage for Gated {
    fn load(&mut self) -> Result<Stored, StorageError> {
        self.inner.load()
    }
    fn initialize(&mut self, version: u32) -> Result<(), StorageError> {
        self.inner.initialize(version)
    }
    fn append(&mut self, records: &[Vec<u8>], sync: bool) -> Result<(), StorageError> {
        if let Some(gate) = self.gate.lock().unwrap().take() {
            let _ = self.entered.send(());
            // Bounded: a test that never opens the gate fails here instead of hanging.
            gate.recv_timeout(Duration::from_secs(10))
                .expect("the test opens the gate");
        }
        self.inner.append(records, sync)
    }
    fn truncate(&mut self, keep: u64) -> Result<(), StorageError> {
        self.inner.truncate(keep)
    }
    fn sync(&mut self) -> Result<(), StorageError> {
        self.inner.sync()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_waiting_together_share_one_fsync() {
    let inner = MemStorage::new();
    let (open_gate, gate) = std_mpsc::channel();
    let (entered, writer_inside) = std_mpsc::channel();
    let storage = Gated {
        inner: inner.clone(),
        gate: Arc::new(Mutex::new(Some(gate))),
        entered,
    };
    let journal = Journal::open(storage, JournalConfig::default()).unwrap().0;
    let first = tokio::spawn({
        let journal = journal.clone();
        async move { journal.append(vec![started("r0")], Durability::Sync).await }
    });
    tokio::task::spawn_blocking(move || writer_inside.recv_timeout(Duration::from_secs(10)))
        .await
        .unwrap()
        .expect("the writer reaches the storage");
    let mut waiting = Vec::new();
    for n in 1..=16 {
        let journal = journal.clone();
        waiting.push(tokio::spawn(async move {
            journal
                .append(vec![started(&format!("r{n}"))], Durability::Sync)
                .await
        }));
    }
    // Each append is queued once its task has sent it: wait for all sixteen to be queued.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while journal.queued() < 16 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} appends queued",
            journal.queued()
        );
        tokio::task::yield_now().await;
    }
    open_gate.send(()).unwrap();
    first.await.unwrap().unwrap();
    for append in waiting {
        append.await.unwrap().unwrap();
    }
    assert_eq!(inner.len(), 17);
    assert_eq!(
        inner.syncs(),
        2,
        "the first commit, then the sixteen in one"
    );
}

#[tokio::test]
async fn an_async_append_is_made_durable_when_the_writer_is_idle() {
    let storage = MemStorage::new();
    let journal = open(storage.clone());
    journal
        .append(vec![started("r1")], Durability::Async)
        .await
        .unwrap();
    journal.sync().await.unwrap();
    assert_eq!(storage.syncs(), 1);
    assert_eq!(storage.len(), 1);
}

fn dead_lettered(id: u64, text: &str) -> Entry {
    Entry::DeadLettered {
        id,
        letter: Payload::encode(text).unwrap(),
    }
}

#[tokio::test]
async fn dead_letters_outlive_a_reopen_and_leave_when_removed() {
    let storage = MemStorage::new();
    let journal = open(storage.clone());
    journal
        .append(
            vec![dead_lettered(1, "first"), dead_lettered(2, "second")],
            Durability::Sync,
        )
        .await
        .unwrap();
    journal
        .append(vec![Entry::DeadLetterRemoved { id: 1 }], Durability::Sync)
        .await
        .unwrap();
    // A redrive that failed again replaces the letter under the same id.
    journal
        .append(vec![dead_lettered(2, "second, again")], Durability::Sync)
        .await
        .unwrap();
    journal.close().await.unwrap();

    let (reopened, opened) = Journal::open(storage.reopen(), JournalConfig::default()).unwrap();
    assert_eq!(opened.records, 4);
    assert_eq!(opened.runs, 0, "a dead letter is no run");
    assert!(opened.unfinished.is_empty());
    let letters: Vec<_> = reopened
        .dead_letters()
        .into_iter()
        .map(|(id, letter)| (id, letter.decode::<String>().unwrap()))
        .collect();
    assert_eq!(letters, vec![(2, "second, again".to_string())]);
    assert_eq!(reopened.highest_dead_letter_id(), 2);
}

#[tokio::test]
async fn dead_letters_and_runs_share_one_append() {
    let storage = MemStorage::new();
    let journal = open(storage.clone());
    journal
        .append(
            vec![started("r"), dead_lettered(7, "of r")],
            Durability::Sync,
        )
        .await
        .unwrap();
    assert_eq!(journal.unfinished(), vec![run("r")]);
    assert_eq!(journal.dead_letters().len(), 1);
    let json = String::from_utf8(storage.reopen().load().unwrap().records[1].clone()).unwrap();
    assert_eq!(json, r#"{"dead_lettered":{"id":7,"letter":"of r"}}"#);
}
