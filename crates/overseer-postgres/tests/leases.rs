//! Leases and epochs against a real server: one claimer wins, an expired lease is taken over
//! at a higher epoch and the old holder's writes are refused, a hand-back frees the run at once,
//! and a connection dropped mid-transaction leaves nothing half-written.

mod common;

use std::time::Duration;

use overseer_journal::{Epoch, RunId};
use overseer_postgres::{ClaimDecision, PgJournalError, PgOptions, PgStore, RunStatus};
use tokio::time::Instant;

const LONG: Duration = Duration::from_secs(3600);

fn run(id: &str) -> RunId {
    RunId::new(id).unwrap()
}

/// Polls `claim` until it is granted, within 20 s.
async fn claim_when_free(store: &PgStore, run: &RunId, owner: &str, lease: Duration) -> Epoch {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match store.claim(run, owner, lease).await.unwrap() {
            ClaimDecision::Claimed { epoch } => return epoch,
            ClaimDecision::Busy { .. } if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            other => panic!("{owner} never got {run}: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_claim_one_run_one_wins_and_the_other_sees_it_busy() {
    let Some((_server, url, a)) = common::store().await else {
        return;
    };
    let b = PgStore::connect(&url, PgOptions::default()).await.unwrap();
    let r = run("order-1");
    let (got_a, got_b) = tokio::join!(a.claim(&r, "a", LONG), b.claim(&r, "b", LONG));
    let (got_a, got_b) = (got_a.unwrap(), got_b.unwrap());
    let (winner, loser) = match (&got_a, &got_b) {
        (ClaimDecision::Claimed { .. }, ClaimDecision::Busy { .. }) => ("a", &got_b),
        (ClaimDecision::Busy { .. }, ClaimDecision::Claimed { .. }) => ("b", &got_a),
        other => panic!("not one winner: {other:?}"),
    };
    let ClaimDecision::Busy { owner, remaining } = loser else {
        unreachable!()
    };
    assert_eq!(owner, winner);
    assert!(*remaining > Duration::from_secs(3000) && *remaining <= LONG);
    let head = a.head(&r).await.unwrap().unwrap();
    assert_eq!(head.epoch, Some(Epoch::FIRST));
    assert_eq!(head.owner.as_deref(), Some(winner));
    assert_eq!(head.status, RunStatus::Running);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_lease_runs_out_another_claims_at_a_higher_epoch_and_the_first_is_fenced() {
    let Some((_server, url, a)) = common::store().await else {
        return;
    };
    let b = PgStore::connect(&url, PgOptions::default()).await.unwrap();
    let r = run("order-2");
    let ClaimDecision::Claimed { epoch: first } =
        a.claim(&r, "a", Duration::from_millis(300)).await.unwrap()
    else {
        panic!("a new run is claimed")
    };
    assert_eq!(a.append(&r, first, &[b"a:0".to_vec()]).await.unwrap(), 0);
    // The lease runs out on the database's clock; then b takes the run.
    let second = claim_when_free(&b, &r, "b", LONG).await;
    assert_eq!(second, first.next());
    let refused = a
        .append(&r, first, &[b"a:late".to_vec()])
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, PgJournalError::Fenced { writer, current, .. } if *writer == first && *current == Some(second)),
        "{refused:?}"
    );
    let renewed = a.renew(&r, first, LONG).await.unwrap_err();
    assert!(
        matches!(renewed, PgJournalError::Fenced { .. }),
        "{renewed:?}"
    );
    let handed = a.hand_back(&r, first).await.unwrap_err();
    assert!(
        matches!(handed, PgJournalError::Fenced { .. }),
        "{handed:?}"
    );
    assert_eq!(b.append(&r, second, &[b"b:1".to_vec()]).await.unwrap(), 1);
    // b replays what a wrote, and sees none of a's late write.
    assert_eq!(
        b.load(&r).await.unwrap(),
        vec![b"a:0".to_vec(), b"b:1".to_vec()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_lease_keeps_the_run_past_its_first_expiry() {
    let Some((_server, url, a)) = common::store().await else {
        return;
    };
    let b = PgStore::connect(&url, PgOptions::default()).await.unwrap();
    let r = run("order-3");
    let lease = Duration::from_millis(400);
    let ClaimDecision::Claimed { epoch } = a.claim(&r, "a", lease).await.unwrap() else {
        panic!("claimed")
    };
    let first_expiry = a.head(&r).await.unwrap().unwrap().lease_expires_ms.unwrap();
    a.renew(&r, epoch, LONG).await.unwrap();
    // Wait (polling the database's clock) until the first lease would have run out.
    let deadline = Instant::now() + Duration::from_secs(20);
    while a.now_ms().await.unwrap() <= first_expiry {
        assert!(
            Instant::now() < deadline,
            "the database's clock did not move"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(matches!(
        b.claim(&r, "b", LONG).await.unwrap(),
        ClaimDecision::Busy { .. }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handed_back_run_is_claimed_by_another_at_once() {
    let Some((_server, url, a)) = common::store().await else {
        return;
    };
    let b = PgStore::connect(&url, PgOptions::default()).await.unwrap();
    let r = run("order-4");
    let ClaimDecision::Claimed { epoch } = a.claim(&r, "a", LONG).await.unwrap() else {
        panic!("claimed")
    };
    assert!(matches!(
        b.claim(&r, "b", LONG).await.unwrap(),
        ClaimDecision::Busy { .. }
    ));
    a.hand_back(&r, epoch).await.unwrap();
    assert_eq!(
        b.claim(&r, "b", LONG).await.unwrap(),
        ClaimDecision::Claimed {
            epoch: epoch.next()
        }
    );
    let late = a.append(&r, epoch, &[vec![1]]).await.unwrap_err();
    assert!(matches!(late, PgJournalError::Fenced { .. }), "{late:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_load_in_append_order_and_a_finished_run_takes_no_more() {
    let Some((_server, _url, store)) = common::store().await else {
        return;
    };
    let r = run("order-5");
    assert!(store.load(&r).await.unwrap().is_empty());
    let missing = store
        .append(&r, Epoch::FIRST, &[vec![0]])
        .await
        .unwrap_err();
    assert!(
        matches!(missing, PgJournalError::UnknownRun { .. }),
        "{missing:?}"
    );
    let ClaimDecision::Claimed { epoch } = store.claim(&r, "a", LONG).await.unwrap() else {
        panic!("claimed")
    };
    let batch: Vec<Vec<u8>> = (0u8..5).map(|i| vec![i; usize::from(i) + 1]).collect();
    assert_eq!(store.append(&r, epoch, &batch).await.unwrap(), 0);
    assert_eq!(store.append(&r, epoch, &[]).await.unwrap(), 5);
    assert_eq!(
        store.append(&r, epoch, &[b"last".to_vec()]).await.unwrap(),
        5
    );
    let mut expected = batch.clone();
    expected.push(b"last".to_vec());
    assert_eq!(store.load(&r).await.unwrap(), expected);
    store.finish(&r, epoch, b"done").await.unwrap();
    assert_eq!(
        store.claim(&r, "b", LONG).await.unwrap(),
        ClaimDecision::Finished
    );
    let after = store.append(&r, epoch, &[vec![9]]).await.unwrap_err();
    assert!(
        matches!(after, PgJournalError::Finished { .. }),
        "{after:?}"
    );
    assert_eq!(store.load(&r).await.unwrap(), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_dropped_mid_transaction_leaves_nothing_half_written() {
    let Some((_server, url, store)) = common::store().await else {
        return;
    };
    let r = run("order-6");
    let ClaimDecision::Claimed { epoch } = store.claim(&r, "a", LONG).await.unwrap() else {
        panic!("claimed")
    };
    // An append's statements, by hand, on a connection that is then killed before COMMIT.
    let doomed = common::raw(&url).await;
    let pid: i32 = doomed
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    doomed
        .batch_execute(
            "BEGIN; \
             SELECT next_seq FROM overseer_runs WHERE run_id = 'order-6' FOR UPDATE; \
             INSERT INTO overseer_journal (run_id, seq, payload) VALUES ('order-6', 0, '\\x01'); \
             UPDATE overseer_runs SET next_seq = next_seq + 1 WHERE run_id = 'order-6';",
        )
        .await
        .unwrap();
    let killer = common::raw(&url).await;
    let killed: bool = killer
        .query_one("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .unwrap()
        .get(0);
    assert!(killed);
    assert!(doomed.batch_execute("COMMIT").await.is_err());
    assert!(store.load(&r).await.unwrap().is_empty());
    // The row lock went with the connection: the holder appends at position 0.
    assert_eq!(store.append(&r, epoch, &[vec![2]]).await.unwrap(), 0);

    // The store's own connections killed under it (the pool holds up to 8): each operation
    // on a dying connection fails with a typed error, having written nothing, and the pool
    // replaces them, so that an append succeeds within a bounded number of attempts.
    killer
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE application_name = 'overseer' AND pid <> pg_backend_pid()",
            &[],
        )
        .await
        .unwrap();
    let mut attempts = 0;
    loop {
        attempts += 1;
        match store.append(&r, epoch, &[vec![3]]).await {
            Ok(position) => {
                assert_eq!(position, 1);
                break;
            }
            Err(PgJournalError::Database { .. }) if attempts <= 9 => {}
            Err(other) => panic!("attempt {attempts}: {other:?}"),
        }
    }
    assert_eq!(store.load(&r).await.unwrap(), vec![vec![2], vec![3]]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_at_a_position_already_taken_is_refused_so_a_retry_never_doubles_a_batch() {
    let Some((_server, _url, store)) = common::store().await else {
        return;
    };
    let r = run("order-7");
    let ClaimDecision::Claimed { epoch } = store.claim(&r, "a", LONG).await.unwrap() else {
        panic!("claimed")
    };
    let batch = vec![b"step-1".to_vec(), b"step-2".to_vec()];
    store.append_at(&r, epoch, 0, &batch).await.unwrap();
    // The same batch again, as a retry after a lost answer would send it.
    let again = store.append_at(&r, epoch, 0, &batch).await.unwrap_err();
    assert!(
        matches!(
            again,
            PgJournalError::PositionMismatch {
                expected: 0,
                found: 2,
                ..
            }
        ),
        "{again:?}"
    );
    let ahead = store.append_at(&r, epoch, 5, &batch).await.unwrap_err();
    assert!(matches!(
        ahead,
        PgJournalError::PositionMismatch {
            expected: 5,
            found: 2,
            ..
        }
    ));
    store
        .append_at(&r, epoch, 2, &[b"step-3".to_vec()])
        .await
        .unwrap();
    assert_eq!(store.load(&r).await.unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_locked_by_a_stalled_transaction_is_a_lock_timeout_not_a_hang() {
    let Some((_server, url, _store)) = common::store().await else {
        return;
    };
    let store = PgStore::connect(
        &url,
        PgOptions::default().lock_timeout(Duration::from_millis(200)),
    )
    .await
    .unwrap();
    let r = run("order-8");
    let ClaimDecision::Claimed { epoch } = store.claim(&r, "a", LONG).await.unwrap() else {
        panic!("claimed")
    };
    // Another process stopped in the middle of a transaction that holds the run's row.
    let stalled = common::raw(&url).await;
    stalled
        .batch_execute("BEGIN; SELECT 1 FROM overseer_runs WHERE run_id = 'order-8' FOR UPDATE")
        .await
        .unwrap();
    let started = Instant::now();
    let claim = tokio::time::timeout(Duration::from_secs(20), store.claim(&r, "b", LONG))
        .await
        .expect("a claim does not wait for the lock forever");
    assert!(
        matches!(claim, Err(PgJournalError::LockTimeout { .. })),
        "{claim:?}"
    );
    let append = store.append(&r, epoch, &[vec![1]]).await;
    assert!(
        matches!(append, Err(PgJournalError::LockTimeout { .. })),
        "{append:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    // The queue skips the locked run instead of waiting.
    assert!(store
        .next_claimable("b", 10, LONG)
        .await
        .unwrap()
        .is_empty());
    stalled.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(store.append(&r, epoch, &[vec![1]]).await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_paused_inside_a_transaction_is_ended_and_its_locks_released() {
    let Some((_server, url, store)) = common::store().await else {
        return;
    };
    let r = run("order-9");
    let ClaimDecision::Claimed { epoch } = store.claim(&r, "a", LONG).await.unwrap() else {
        panic!("claimed")
    };
    // A session with the store's settings, paused while it holds the run's row.
    let options = PgOptions::default().idle_in_transaction_timeout(Duration::from_millis(300));
    let mut config: tokio_postgres::Config = url.parse().unwrap();
    config.options(options.session_settings());
    let (paused, connection) = config.connect(tokio_postgres::NoTls).await.unwrap();
    let connection = tokio::spawn(connection);
    paused
        .batch_execute("BEGIN; SELECT 1 FROM overseer_runs WHERE run_id = 'order-9' FOR UPDATE")
        .await
        .unwrap();
    // The server ends the session: its connection closes, within a deadline.
    tokio::time::timeout(Duration::from_secs(20), connection)
        .await
        .expect("the server ended the idle transaction's session")
        .unwrap()
        .ok();
    assert!(paused.is_closed());
    // Its lock went with it: the holder appends without waiting for a lock timeout.
    assert_eq!(store.append(&r, epoch, &[vec![1]]).await.unwrap(), 0);
}
