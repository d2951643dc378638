//! The work queue against a real server: concurrent claimers never take the same run, and a
//! run comes back to the queue when its lease runs out or it is handed back, not before.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use overseer_journal::{Epoch, RunId};
use overseer_postgres::{ClaimDecision, PgOptions, PgStore};
use tokio::time::Instant;

const LONG: Duration = Duration::from_secs(3600);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_claimers_never_take_the_same_run() {
    let Some((_server, url, store)) = common::store().await else {
        return;
    };
    const RUNS: usize = 60;
    const CLAIMERS: usize = 6;
    for i in 0..RUNS {
        assert!(store
            .enqueue(&RunId::new(format!("run-{i}")).unwrap())
            .await
            .unwrap());
    }
    let mut tasks = Vec::new();
    for c in 0..CLAIMERS {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let store = PgStore::connect(&url, PgOptions::default().pool_size(1))
                .await
                .unwrap();
            let owner = format!("claimer-{c}");
            let mut taken = Vec::new();
            // Bounded: every round takes at least one run until the queue is empty.
            for _ in 0..RUNS {
                let batch = store.next_claimable(&owner, 3, LONG).await.unwrap();
                if batch.is_empty() {
                    break;
                }
                taken.extend(batch.into_iter().map(|claimed| (claimed, owner.clone())));
            }
            taken
        }));
    }
    let mut owners: HashMap<RunId, Vec<String>> = HashMap::new();
    for task in tasks {
        for (claimed, owner) in task.await.unwrap() {
            assert_eq!(claimed.epoch, Epoch::FIRST);
            owners.entry(claimed.run).or_default().push(owner);
        }
    }
    assert_eq!(owners.len(), RUNS, "every run was taken");
    for (run, by) in &owners {
        assert_eq!(by.len(), 1, "{run} taken by {by:?}");
        let head = store.head(run).await.unwrap().unwrap();
        assert_eq!(head.owner.as_ref(), Some(&by[0]));
    }
    assert!(store
        .next_claimable("late", 10, LONG)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_returns_to_the_queue_when_its_lease_runs_out_or_it_is_handed_back() {
    let Some((_server, _url, store)) = common::store().await else {
        return;
    };
    let held = RunId::new("held").unwrap();
    let expiring = RunId::new("expiring").unwrap();
    let handed = RunId::new("handed").unwrap();
    let finished = RunId::new("finished").unwrap();
    store.claim(&held, "a", LONG).await.unwrap();
    let ClaimDecision::Claimed { epoch: e_exp } = store
        .claim(&expiring, "a", Duration::from_millis(300))
        .await
        .unwrap()
    else {
        panic!("claimed")
    };
    let ClaimDecision::Claimed { epoch: e_hand } = store.claim(&handed, "a", LONG).await.unwrap()
    else {
        panic!("claimed")
    };
    let ClaimDecision::Claimed { epoch: e_fin } = store.claim(&finished, "a", LONG).await.unwrap()
    else {
        panic!("claimed")
    };
    store.finish(&finished, e_fin, b"ok").await.unwrap();
    store.hand_back(&handed, e_hand).await.unwrap();

    let first = store.next_claimable("b", 10, LONG).await.unwrap();
    assert_eq!(
        first
            .iter()
            .map(|c| (c.run.as_str(), c.epoch))
            .collect::<Vec<_>>(),
        vec![("handed", e_hand.next())],
        "only the handed-back run is free at once"
    );
    // Polled until the short lease runs out on the database's clock.
    let deadline = Instant::now() + Duration::from_secs(20);
    let recovered = loop {
        let batch = store.next_claimable("b", 10, LONG).await.unwrap();
        if !batch.is_empty() {
            break batch;
        }
        assert!(Instant::now() < deadline, "the expired run never came back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        recovered
            .iter()
            .map(|c| (c.run.as_str(), c.epoch))
            .collect::<Vec<_>>(),
        vec![("expiring", e_exp.next())]
    );
    assert!(store
        .next_claimable("b", 10, LONG)
        .await
        .unwrap()
        .is_empty());
}
