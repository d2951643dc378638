//! The retry policy's decisions, through the public API.

use std::time::Duration;

use overseer_retry::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn delay(decision: RetryDecision) -> Duration {
    match decision {
        RetryDecision::RetryAfter(d) => d,
        RetryDecision::GiveUp(reason) => panic!("expected a retry, gave up: {reason:?}"),
    }
}

#[test]
fn without_jitter_delays_are_exactly_exponential_then_attempts_run_out() {
    let policy = RetryPolicy::builder()
        .max_attempts(5)
        .base_delay(ms(100))
        .factor(3.0)
        .max_delay(ms(1000))
        .jitter(Jitter::None)
        .build()
        .unwrap();
    let mut rng = StdRng::seed_from_u64(0);
    let delays: Vec<_> = (1..5)
        .map(|n| delay(policy.decide(&Attempt::new(n, ErrorClass::Transient), &mut rng)))
        .collect();
    assert_eq!(delays, [ms(100), ms(300), ms(900), ms(1000)]);
    assert_eq!(
        policy.decide(&Attempt::new(5, ErrorClass::Transient), &mut rng),
        RetryDecision::GiveUp(GiveUpReason::AttemptsExhausted)
    );
}

#[test]
fn full_jitter_draws_uniformly_below_the_exponential_delay_from_the_given_seed() {
    let policy = RetryPolicy::builder().max_attempts(8).build().unwrap();
    let mut rng = StdRng::seed_from_u64(2026);
    let mut mirror = StdRng::seed_from_u64(2026);
    for n in 1..8 {
        let got = delay(policy.decide(&Attempt::new(n, ErrorClass::Transient), &mut rng));
        let top = policy.exponential_delay(n).as_nanos() as u64;
        let expected = Duration::from_nanos(mirror.random_range(0..=top));
        assert_eq!(got, expected, "attempt {n}");
        assert!(got <= policy.exponential_delay(n));
    }
    // The same seed gives the same delays: tests are exact.
    let again: Vec<_> = {
        let mut rng = StdRng::seed_from_u64(2026);
        (1..8)
            .map(|n| delay(policy.decide(&Attempt::new(n, ErrorClass::Transient), &mut rng)))
            .collect()
    };
    let first: Vec<_> = {
        let mut rng = StdRng::seed_from_u64(2026);
        (1..8)
            .map(|n| delay(policy.decide(&Attempt::new(n, ErrorClass::Transient), &mut rng)))
            .collect()
    };
    assert_eq!(again, first);
}

#[test]
fn decorrelated_jitter_grows_from_the_previous_delay_and_stays_under_the_cap() {
    let policy = RetryPolicy::builder()
        .max_attempts(50)
        .base_delay(ms(100))
        .max_delay(ms(5_000))
        .jitter(Jitter::Decorrelated)
        .build()
        .unwrap();
    let mut rng = StdRng::seed_from_u64(9);
    let mut mirror = StdRng::seed_from_u64(9);
    let mut previous: Option<Duration> = None;
    for n in 1..50 {
        let attempt = Attempt::new(n, ErrorClass::Transient).with_previous_delay(previous);
        let got = delay(policy.decide(&attempt, &mut rng));
        let low = 100_000_000u64;
        let high = previous.map_or(low, |p| p.as_nanos() as u64).max(low) * 3;
        let expected = Duration::from_nanos(mirror.random_range(low..=high)).min(ms(5_000));
        assert_eq!(got, expected, "attempt {n}");
        assert!(got >= ms(100) && got <= ms(5_000));
        previous = Some(got);
    }
}

#[test]
fn classes_other_than_transient_and_rate_limited_are_never_retried() {
    let policy = RetryPolicy::builder().max_attempts(100).build().unwrap();
    let mut rng = StdRng::seed_from_u64(1);
    let cases = [
        (ErrorClass::Permanent, GiveUpReason::Permanent),
        (ErrorClass::InvalidOutput, GiveUpReason::Permanent),
        (ErrorClass::ReplayUnsafe, GiveUpReason::ReplayUnsafe),
        (ErrorClass::Cancelled, GiveUpReason::Cancelled),
        (ErrorClass::BudgetExhausted, GiveUpReason::BudgetExhausted),
    ];
    for (class, reason) in cases {
        for n in 1..5 {
            assert_eq!(
                policy.decide(&Attempt::new(n, class), &mut rng),
                RetryDecision::GiveUp(reason),
                "{class:?} attempt {n}"
            );
        }
    }
}

#[test]
fn retry_after_is_a_floor_even_above_the_cap() {
    let policy = RetryPolicy::builder()
        .max_delay(ms(2_000))
        .jitter(Jitter::None)
        .build()
        .unwrap();
    let mut rng = StdRng::seed_from_u64(1);
    let limited = |secs| ErrorClass::RateLimited {
        retry_after: Some(Duration::from_secs(secs)),
    };
    assert_eq!(
        delay(policy.decide(&Attempt::new(1, limited(10)), &mut rng)),
        Duration::from_secs(10)
    );
    // A retry-after shorter than the backoff does not shorten it.
    let short = ErrorClass::RateLimited {
        retry_after: Some(ms(10)),
    };
    assert_eq!(
        delay(policy.decide(&Attempt::new(2, short), &mut rng)),
        ms(1_000)
    );
    // Without a retry-after a rate limit backs off like a transient error.
    let bare = ErrorClass::RateLimited { retry_after: None };
    assert_eq!(
        delay(policy.decide(&Attempt::new(1, bare), &mut rng)),
        ms(500)
    );
}

#[test]
fn retry_after_past_the_deadline_gives_up_rather_than_overrun() {
    let policy = RetryPolicy::default();
    let mut rng = StdRng::seed_from_u64(1);
    let attempt = Attempt::new(
        1,
        ErrorClass::RateLimited {
            retry_after: Some(Duration::from_secs(30)),
        },
    )
    .with_remaining_deadline(Some(Duration::from_secs(20)));
    assert_eq!(
        policy.decide(&attempt, &mut rng),
        RetryDecision::GiveUp(GiveUpReason::DeadlineTooClose)
    );
}

#[test]
fn a_delay_ending_exactly_at_the_deadline_gives_up() {
    let policy = RetryPolicy::builder().jitter(Jitter::None).build().unwrap();
    let mut rng = StdRng::seed_from_u64(1);
    let at =
        |remaining| Attempt::new(1, ErrorClass::Transient).with_remaining_deadline(Some(remaining));
    assert_eq!(
        policy.decide(&at(ms(500)), &mut rng),
        RetryDecision::GiveUp(GiveUpReason::DeadlineTooClose)
    );
    assert_eq!(
        policy.decide(&at(ms(501)), &mut rng),
        RetryDecision::RetryAfter(ms(500))
    );
}

#[test]
fn max_elapsed_bounds_the_time_until_the_last_retry_starts() {
    let policy = RetryPolicy::builder()
        .max_attempts(10)
        .jitter(Jitter::None)
        .max_elapsed(Some(Duration::from_secs(5)))
        .build()
        .unwrap();
    let mut rng = StdRng::seed_from_u64(1);
    let at = |elapsed| Attempt::new(3, ErrorClass::Transient).with_elapsed(elapsed);
    // The third failure waits 2 s: fine at 3 s spent, too late at 3.5 s.
    assert_eq!(
        policy.decide(&at(ms(3_000)), &mut rng),
        RetryDecision::RetryAfter(ms(2_000))
    );
    assert_eq!(
        policy.decide(&at(ms(3_500)), &mut rng),
        RetryDecision::GiveUp(GiveUpReason::ElapsedExhausted)
    );
}

/// A flaky call retried on a paused tokio clock: the waits are exactly the policy's and the
/// caller is never still waiting at its deadline.
#[tokio::test(start_paused = true)]
async fn on_a_paused_clock_the_waits_are_the_policys_and_stop_before_the_deadline() {
    let policy = RetryPolicy::builder()
        .max_attempts(10)
        .base_delay(ms(200))
        .jitter(Jitter::None)
        .build()
        .unwrap();
    let deadline = Duration::from_secs(3);
    let work = ms(100); // each attempt takes this long, then fails
    let mut rng = StdRng::seed_from_u64(3);
    let start = tokio::time::Instant::now();
    let mut waits = Vec::new();
    let mut number = 0;
    let reason = loop {
        number += 1;
        tokio::time::sleep(work).await;
        let elapsed = start.elapsed();
        let attempt = Attempt::new(number, ErrorClass::Transient)
            .with_elapsed(elapsed)
            .with_remaining_deadline(Some(deadline.saturating_sub(elapsed)));
        match policy.decide(&attempt, &mut rng) {
            RetryDecision::RetryAfter(d) => {
                waits.push(d);
                tokio::time::sleep(d).await;
            }
            RetryDecision::GiveUp(reason) => break reason,
        }
    };
    // 0.1 work, 0.2 wait, 0.1, 0.4, 0.1, 0.8 = 1.7 s; the fourth failure at 1.8 s would wait
    // 1.6 s, ending at 3.4 s, past the 3 s deadline.
    assert_eq!(waits, [ms(200), ms(400), ms(800)]);
    assert_eq!(reason, GiveUpReason::DeadlineTooClose);
    assert_eq!(start.elapsed(), ms(1_800));
    assert!(start.elapsed() < deadline);
}
