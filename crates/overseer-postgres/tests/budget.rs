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
