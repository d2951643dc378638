//! The retry budget on a paused tokio clock.

use std::sync::Arc;
use std::time::Duration;

use overseer_retry::RetryBudget;
use tokio::time::{advance, Instant};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn granted(budget: &RetryBudget, tries: usize) -> usize {
    (0..tries).filter(|_| budget.withdraw().is_ok()).count()
}

#[tokio::test(start_paused = true)]
async fn retries_are_refused_beyond_their_share_of_requests() {
    let budget = RetryBudget::new(Duration::from_secs(10), 0, 0.2).unwrap();
    for _ in 0..10 {
        budget.deposit();
    }
    assert_eq!(granted(&budget, 5), 2, "20 % of 10 requests");
    assert_eq!(budget.withdraw().map_err(|r| r.balance), Err(0));
    // Each further request earns a fifth of a retry.
    for _ in 0..4 {
        budget.deposit();
        assert!(budget.withdraw().is_err());
    }
    budget.deposit();
    assert!(budget.withdraw().is_ok());
}

#[tokio::test(start_paused = true)]
async fn deposits_expire_after_the_window() {
    let budget = RetryBudget::new(Duration::from_secs(1), 0, 1.0).unwrap();
    budget.deposit();
    advance(Duration::from_secs(3)).await;
    assert!(
        budget.withdraw().is_err(),
        "a deposit older than the window is gone"
    );
}

#[tokio::test(start_paused = true)]
async fn the_window_is_ten_slots_as_in_tower() {
    // tower's `tps_slots` scenario.
    let budget = RetryBudget::new(Duration::from_secs(1), 0, 0.5).unwrap();
    budget.deposit();
    budget.deposit();
    advance(ms(901)).await;
    assert!(
        budget.withdraw().is_ok(),
        "900 ms later the deposits still count"
    );

    advance(ms(2001)).await; // a blank slate
    budget.deposit();
    advance(ms(301)).await;
    budget.deposit();
    advance(ms(801)).await;
    budget.deposit();
    // The first of the three has left the window; the second and third make one retry.
    assert!(budget.withdraw().is_ok());
    assert!(budget.withdraw().is_err());
}

#[tokio::test(start_paused = true)]
async fn a_spent_budget_recovers_once_its_withdrawals_leave_the_window() {
    // A floor of 2 retries a second over 1 s: 2 retries, then none until they expire.
    let budget = RetryBudget::new(Duration::from_secs(1), 2, 0.0).unwrap();
    assert_eq!(granted(&budget, 5), 2);
    advance(ms(500)).await;
    assert_eq!(
        granted(&budget, 5),
        0,
        "the withdrawals still count half a window later"
    );
    advance(ms(600)).await;
    assert_eq!(
        granted(&budget, 5),
        2,
        "after the window the floor is whole again"
    );
}

#[tokio::test(start_paused = true)]
async fn a_long_idle_spell_empties_the_window() {
    let budget = RetryBudget::new(Duration::from_secs(10), 0, 1.0).unwrap();
    for _ in 0..100 {
        budget.deposit();
    }
    advance(Duration::from_secs(24 * 3600)).await;
    assert_eq!(budget.balance_at(Instant::now()), 0);
    budget.deposit();
    assert_eq!(granted(&budget, 3), 1);
}

#[test]
fn concurrent_withdrawals_never_take_more_than_the_balance() {
    let budget = Arc::new(RetryBudget::new(Duration::from_secs(60), 0, 0.25).unwrap());
    let now = Instant::now();
    for _ in 0..4_000 {
        budget.deposit_at(now);
    }
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let budget = Arc::clone(&budget);
            std::thread::spawn(move || {
                (0..1_000)
                    .filter(|_| budget.withdraw_at(now).is_ok())
                    .count()
            })
        })
        .collect();
    let total: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(total, 1_000, "25 % of 4000 requests, no more and no fewer");
    assert_eq!(budget.balance_at(now), 0);
}

#[tokio::test(start_paused = true)]
async fn the_default_is_towers() {
    // 10 s window, 10 retries a second as a floor: 100 retries with no traffic at all.
    let budget = RetryBudget::default();
    assert_eq!(granted(&budget, 150), 100);
    for _ in 0..50 {
        budget.deposit();
    }
    assert_eq!(granted(&budget, 50), 10, "then 20 % of requests");
}
