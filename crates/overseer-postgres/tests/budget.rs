//! The fleet-wide budget against a real server: concurrent reservations from several
//! connections never take committed and reserved spend past the limit.

mod common;

use overseer_postgres::{PgJournalError, PgOptions, PgStore, Reserve};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_connections_reserving_at_random_never_overshoot_the_limit() {
    let Some((_server, url, store)) = common::store().await else {
        return;
    };
    const LIMIT: u64 = 1_000;
    for seed in 0..4u64 {
        let name = format!("fleet-{seed}");
        store.define_limit(&name, LIMIT).await.unwrap();
        let mut tasks = Vec::new();
        for worker in 0..4u64 {
            let (url, name) = (url.clone(), name.clone());
            tasks.push(tokio::spawn(async move {
                let store = PgStore::connect(&url, PgOptions::default().pool_size(1))
                    .await
                    .unwrap();
                let mut rng = StdRng::seed_from_u64(seed * 16 + worker);
                let (mut spent, mut refused) = (0u64, 0u32);
                for _ in 0..40 {
                    match store
                        .reserve(&name, rng.random_range(1..=120))
                        .await
                        .unwrap()
                    {
                        Reserve::Granted(reservation) => {
                            let state = if rng.random_bool(0.7) {
                                let actual = rng.random_range(0..=reservation.amount);
                                spent += actual;
                                store.commit_reservation(reservation, actual).await.unwrap()
                            } else {
                                store.release_reservation(reservation).await.unwrap()
                            };
                            assert!(state.committed + state.reserved <= state.limit, "{state:?}");
                        }
                        Reserve::Refused { available } => {
                            assert!(available <= LIMIT);
                            refused += 1;
                        }
                        // Committed spend reached the limit exactly: it tripped.
                        Reserve::Tripped { .. } => refused += 1,
                    }
                }
                (spent, refused)
            }));
        }
        let (mut spent, mut refused) = (0, 0);
        for task in tasks {
            let (s, r) = task.await.unwrap();
            spent += s;
            refused += r;
        }
        let state = store.limit_state(&name).await.unwrap();
        assert_eq!(
            state.reserved, 0,
            "seed {seed}: every reservation was settled"
        );
        assert_eq!(
            state.committed, spent,
            "seed {seed}: committed is what was spent"
        );
        assert!(state.committed <= LIMIT, "seed {seed}: {state:?}");
        // 160 reservations of up to 120 against 1000: the limit was reached and held.
        assert!(refused > 0, "seed {seed}: the limit was never tested");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reservation_past_the_limit_is_refused_and_settling_twice_is_a_typed_error() {
    let Some((_server, _url, store)) = common::store().await else {
        return;
    };
    store.define_limit("tokens", 100).await.unwrap();
    let Reserve::Granted(first) = store.reserve("tokens", 60).await.unwrap() else {
        panic!("60 of 100 is granted")
    };
    assert_eq!(
        store.reserve("tokens", 41).await.unwrap(),
        Reserve::Refused { available: 40 }
    );
    let state = store.commit_reservation(first, 50).await.unwrap();
    assert_eq!(
        (state.committed, state.reserved, state.available()),
        (50, 0, 50)
    );
    let twice = store.release_reservation(first).await.unwrap_err();
    assert!(
        matches!(twice, PgJournalError::UnknownReservation { .. }),
        "{twice:?}"
    );
    let unknown = store.reserve("cost", 1).await.unwrap_err();
    assert!(
        matches!(unknown, PgJournalError::UnknownLimit { .. }),
        "{unknown:?}"
    );
    let too_big = store.reserve("tokens", u64::MAX).await.unwrap_err();
    assert!(
        matches!(too_big, PgJournalError::OutOfRange { .. }),
        "{too_big:?}"
    );
}

/// Four "processes" (stores of their own, each with a fleet limit handle) reserve and commit
/// concurrently, for many seeds: the committed spend never passes the limit, and once it is
/// spent every handle sees the trip within one heartbeat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_limit_held_by_four_processes_never_overshoots_and_trips_them_all() {
    use overseer_postgres::FleetLimit;
    use rand::{Rng, SeedableRng};
    let Some((_server, url, admin)) = common::store().await else {
        return;
    };
    let heartbeat = std::time::Duration::from_millis(100);
    for seed in 0..12u64 {
        let name = format!("fleet-{seed}");
        let limit = 500;
        admin.define_limit(&name, limit).await.unwrap();
        let mut handles = Vec::new();
        for _ in 0..4 {
            let store = overseer_postgres::PgStore::connect(
                &url,
                overseer_postgres::PgOptions::default().pool_size(2),
            )
            .await
            .unwrap();
            handles.push(std::sync::Arc::new(
                FleetLimit::watch_limit(store, &name, heartbeat)
                    .await
                    .unwrap(),
            ));
        }
        let mut tasks = Vec::new();
        for (p, handle) in handles.iter().enumerate() {
            let handle = std::sync::Arc::clone(handle);
            tasks.push(tokio::spawn(async move {
                let mut rng = rand::rngs::StdRng::seed_from_u64(seed * 10 + p as u64);
                for _ in 0..200 {
                    let amount = rng.random_range(1..=40);
                    match handle.reserve(amount).await.unwrap() {
                        overseer_postgres::Reserve::Granted(reservation) => {
                            // Spend at most what was reserved, sometimes less.
                            let actual = rng.random_range(amount / 2..=amount);
                            handle.commit(reservation, actual).await.unwrap();
                        }
                        overseer_postgres::Reserve::Refused { .. } => {}
                        overseer_postgres::Reserve::Tripped { .. } => break,
                    }
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let state = admin.limit_state(&name).await.unwrap();
        assert!(state.committed <= limit, "seed {seed}: {state:?}");
        assert_eq!(
            state.reserved, 0,
            "seed {seed}: every reservation committed"
        );
        // Spend it all: every handle trips within one heartbeat (and a little scheduling).
        let rest = state.limit - state.committed;
        if rest > 0 {
            if let overseer_postgres::Reserve::Granted(r) =
                admin.reserve(&name, rest).await.unwrap()
            {
                admin.commit_reservation(r, rest).await.unwrap();
            }
        }
        let spent_at = tokio::time::Instant::now();
        for (p, handle) in handles.iter().enumerate() {
            let mut watch = handle.watch();
            tokio::time::timeout(heartbeat * 3, watch.wait_for(Option::is_some))
                .await
                .unwrap_or_else(|_| panic!("seed {seed}: process {p} did not see the trip"))
                .unwrap();
            assert!(matches!(
                handle.reserve(1).await.unwrap(),
                overseer_postgres::Reserve::Tripped { .. }
            ));
        }
        assert!(spent_at.elapsed() <= heartbeat * 3);
    }
}
