//! `overseer-journal`'s journal over PostgreSQL (`PgStorage`): runs loaded at claim, epochs from
//! the database, appends fenced by it, runs handed back at close.

mod common;

use std::time::Duration;

use overseer_journal::{
    Durability, Epoch, Journal, JournalConfig, JournalError, Payload, Refusal, RunAdmission,
    StepId, StorageError,
};
use overseer_postgres::{PgStorage, PgStorageOptions, RunStatus};

// The entries of overseer-journal's own journal tests: the same runs, on PostgreSQL.
#[path = "../../overseer-journal/tests/entries/mod.rs"]
mod entries;

use entries::{finished, run, started, step_done};

fn storage(url: &str, owner: &str, lease: Duration) -> PgStorage {
    PgStorage::open(url, PgStorageOptions::default().owner(owner).lease(lease)).unwrap()
}

fn journal(storage: PgStorage) -> Journal {
    Journal::open(storage, JournalConfig::default()).unwrap().0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_journaled_in_one_process_is_resumed_by_another_once_its_lease_runs_out() {
    let Some((_server, url)) = common::database().await else {
        return;
    };
    let a = journal(storage(&url, "machine-a", Duration::from_millis(400)));
    a.append(vec![started("r1")], Durability::Sync)
        .await
        .unwrap();
    let epoch = a.claim(&run("r1")).await.unwrap();
    assert_eq!(epoch, Epoch::FIRST);
    a.append(vec![step_done("r1", epoch, 0)], Durability::Sync)
        .await
        .unwrap();

    // Machine b opens while a's lease is live: the run is not b's to take.
    let b_storage = storage(&url, "machine-b", Duration::from_secs(30));
    let store = b_storage.store().clone();
    let (b, opened) = Journal::open(b_storage, JournalConfig::default()).unwrap();
    assert!(opened.unfinished.is_empty(), "a's run is held: {opened:?}");
    let held = b.claim(&run("r1")).await.unwrap_err();
    assert!(
        matches!(&held, JournalError::Storage(e) if matches!(**e, StorageError::Held { .. })),
        "{held:?}"
    );

    // a dies (its heartbeat with it); once its lease runs out, b takes the run up where a left.
    drop(a);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let epoch_b = loop {
        match b.claim(&run("r1")).await {
            Ok(epoch) => break epoch,
            Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(error) => panic!("never claimed: {error}"),
        }
    };
    assert_eq!(epoch_b, Epoch(2));
    assert!(b.with_run(&run("r1"), |r| r
        .unwrap()
        .is_completed(&StepId::new("root/a", 0, 0))));
    b.append(
        vec![step_done("r1", epoch_b, 1), finished("r1", epoch_b)],
        Durability::Sync,
    )
    .await
    .unwrap();
    let head = store.head(&run("r1")).await.unwrap().unwrap();
    assert_eq!(head.status, RunStatus::Finished);
    assert_eq!(store.load(&run("r1")).await.unwrap().len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zombies_appends_are_refused_by_the_database_and_nothing_of_them_is_stored() {
    let Some((_server, url)) = common::database().await else {
        return;
    };
    let lease = Duration::from_millis(300);
    // The heartbeat never comes in time: a process paused past its lease.
    let zombie = journal(
        PgStorage::open(
            &url,
            PgStorageOptions::default()
                .owner("machine-a")
                .lease(lease)
                .heartbeat(Duration::from_secs(3600)),
        )
        .unwrap(),
    );
    zombie
        .append(vec![started("r1")], Durability::Sync)
        .await
        .unwrap();
    let old = zombie.claim(&run("r1")).await.unwrap();
    tokio::time::sleep(lease + Duration::from_millis(100)).await;
    let current = journal(storage(&url, "machine-b", Duration::from_secs(30)));
    let new = current.claim(&run("r1")).await.unwrap();
    assert_eq!(new, old.next());

    // The zombie's local index still thinks it holds the run: the database says otherwise.
    let refused = zombie
        .append(vec![step_done("r1", old, 0)], Durability::Sync)
        .await
        .unwrap_err();
    assert!(
        matches!(
            refused,
            JournalError::Refused(Refusal::Stale { writer, holder: Some(holder), .. })
                if writer == old && holder == new
        ),
        "{refused:?}"
    );
    // Nothing of it stored; the zombie's journal still takes other runs' writes.
    let store = PgStorage::open(&url, PgStorageOptions::default()).unwrap();
    assert_eq!(store.store().load(&run("r1")).await.unwrap().len(), 3);
    zombie
        .append(vec![started("r2")], Durability::Sync)
        .await
        .unwrap();
    current
        .append(vec![step_done("r1", new, 0)], Durability::Sync)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_polite_close_hands_runs_back_at_once_and_a_second_ask_sees_the_outcome() {
    let Some((_server, url)) = common::database().await else {
        return;
    };
    let a = journal(storage(&url, "machine-a", Duration::from_secs(60)));
    a.append(vec![started("r1"), started("r2")], Durability::Sync)
        .await
        .unwrap();
    let e1 = a.claim(&run("r1")).await.unwrap();
    let e2 = a.claim(&run("r2")).await.unwrap();
    a.append(vec![finished("r2", e2)], Durability::Sync)
        .await
        .unwrap();
    a.append(vec![step_done("r1", e1, 0)], Durability::Sync)
        .await
        .unwrap();
    a.close().await.unwrap();

    // Without waiting for the 60 s lease: r1 is b's at once, with its step.
    let (b, opened) = Journal::open(
        storage(&url, "machine-b", Duration::from_secs(60)),
        JournalConfig::default(),
    )
    .unwrap();
    assert_eq!(opened.unfinished, vec![run("r1")]);
    assert_eq!(b.claim(&run("r1")).await.unwrap(), e1.next());
    // r2 finished in a: b did not load it, and sees its outcome once it reads it.
    let fingerprint = Payload::encode(&"input of r2".to_string())
        .unwrap()
        .fingerprint();
    assert_eq!(
        b.admit_run(&run("r2"), fingerprint, 2_000),
        RunAdmission::Start
    );
    b.refresh(&run("r2")).await.unwrap();
    assert!(matches!(
        b.admit_run(&run("r2"), fingerprint, 2_000),
        RunAdmission::Finished(_)
    ));
    // A start of a run another process holds unfinished is refused.
    let again = b.append(vec![started("r1")], Durability::Sync).await;
    assert!(again.is_err(), "{again:?}");
}
