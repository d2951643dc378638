//! Property tests: for random policies and random failure sequences, the policy never exceeds
//! its attempts, the waits never pass the deadline or `max_elapsed`, every backoff is under the
//! cap (a retry-after may exceed it, and then the wait is exactly the retry-after), and the
//! ladder never climbs back.

use std::time::Duration;

use overseer_retry::Attempt;
use overseer_retry::{
    ClassSet, Conditions, ErrorClass, Jitter, Ladder, LadderState, Next, RetryDecision,
    RetryPolicy, Rung,
};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::SeedableRng;

fn class() -> impl Strategy<Value = ErrorClass> {
    prop_oneof![
        6 => Just(ErrorClass::Transient),
        3 => proptest::option::of(0u64..20_000)
            .prop_map(|ms| ErrorClass::RateLimited { retry_after: ms.map(Duration::from_millis) }),
        1 => Just(ErrorClass::InvalidOutput),
        1 => Just(ErrorClass::Permanent),
        1 => Just(ErrorClass::ReplayUnsafe),
        1 => Just(ErrorClass::Cancelled),
        1 => Just(ErrorClass::BudgetExhausted),
    ]
}

fn jitter() -> impl Strategy<Value = Jitter> {
    prop_oneof![
        Just(Jitter::None),
        Just(Jitter::Full),
        Just(Jitter::Decorrelated)
    ]
}

fn policy() -> impl Strategy<Value = RetryPolicy> {
    (
        1u32..12,
        1u64..2_000,
        1.0f64..4.0,
        0u64..60_000,
        jitter(),
        proptest::option::of(1u64..120_000),
    )
        .prop_map(|(attempts, base, factor, extra_cap, jitter, max_elapsed)| {
            RetryPolicy::builder()
                .max_attempts(attempts)
                .base_delay(Duration::from_millis(base))
                .factor(factor)
                .max_delay(Duration::from_millis(base + extra_cap))
                .jitter(jitter)
                .max_elapsed(max_elapsed.map(Duration::from_millis))
                .build()
                .expect("generated settings are valid")
        })
}

/// One step retried to the end against scripted failures; returns (attempts made, waits, time
/// spent), time spent counting each attempt's work and every wait.
fn run(
    policy: &RetryPolicy,
    failures: &[ErrorClass],
    work: Duration,
    deadline: Option<Duration>,
    seed: u64,
) -> (u32, Vec<(ErrorClass, Duration)>, Duration) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut spent = Duration::ZERO;
    let mut waits = Vec::new();
    let mut previous = None;
    for (i, class) in failures.iter().enumerate() {
        let number = i as u32 + 1;
        spent += work;
        let remaining = deadline.map(|d| d.saturating_sub(spent));
        let attempt = Attempt::new(number, *class)
            .with_elapsed(spent)
            .with_remaining_deadline(remaining)
            .with_previous_delay(previous);
        match policy.decide(&attempt, &mut rng) {
            RetryDecision::RetryAfter(delay) => {
                waits.push((*class, delay));
                spent += delay;
                previous = Some(delay);
            }
            RetryDecision::GiveUp(_) => return (number, waits, spent),
        }
    }
    (failures.len() as u32, waits, spent)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn attempts_never_exceed_the_policy(
        policy in policy(),
        failures in proptest::collection::vec(class(), 1..40),
        seed in any::<u64>(),
    ) {
        let (attempts, waits, _) = run(&policy, &failures, Duration::ZERO, None, seed);
        prop_assert!(attempts <= policy.max_attempts());
        prop_assert!(waits.len() < policy.max_attempts() as usize);
    }

    #[test]
    fn only_transient_and_rate_limited_failures_are_retried(
        policy in policy(),
        failures in proptest::collection::vec(class(), 1..40),
        seed in any::<u64>(),
    ) {
        let (_, waits, _) = run(&policy, &failures, Duration::ZERO, None, seed);
        prop_assert!(waits.iter().all(|(class, _)| class.is_retryable()));
    }

    #[test]
    fn total_waiting_never_reaches_the_deadline_or_passes_max_elapsed(
        policy in policy(),
        failures in proptest::collection::vec(class(), 1..40),
        work_ms in 0u64..3_000,
        deadline_ms in 1u64..200_000,
        seed in any::<u64>(),
    ) {
        let deadline = Duration::from_millis(deadline_ms);
        let work = Duration::from_millis(work_ms);
        let (_, waits, _) = run(&policy, &failures, work, Some(deadline), seed);
        // Every retry starts before the deadline: work and waits up to it stay under it.
        let mut spent = Duration::ZERO;
        for (_, wait) in &waits {
            spent += work + *wait;
            prop_assert!(spent < deadline, "a retry would start at {spent:?}, deadline {deadline:?}");
            if let Some(bound) = policy.max_elapsed() {
                prop_assert!(spent <= bound, "a retry would start at {spent:?}, max_elapsed {bound:?}");
            }
        }
    }

    #[test]
    fn every_backoff_is_under_the_cap_unless_a_retry_after_says_longer(
        policy in policy(),
        failures in proptest::collection::vec(class(), 1..40),
        seed in any::<u64>(),
    ) {
        let (_, waits, _) = run(&policy, &failures, Duration::ZERO, None, seed);
        for (class, wait) in waits {
            match class {
                ErrorClass::RateLimited { retry_after: Some(floor) } if floor > policy.max_delay() => {
                    prop_assert_eq!(wait, floor);
                }
                ErrorClass::RateLimited { retry_after: Some(floor) } => {
                    prop_assert!(wait >= floor && wait <= policy.max_delay());
                }
                _ => prop_assert!(wait <= policy.max_delay()),
            }
        }
    }

    #[test]
    fn the_ladder_climbs_strictly_forward_and_at_most_once_per_rung(
        rungs in proptest::collection::vec(0u8..4, 0..8),
        failures in proptest::collection::vec((class(), any::<u8>(), any::<bool>()), 1..30),
    ) {
        let ladder = Ladder::new(rungs.iter().enumerate().map(|(i, kind)| match kind {
            0 => Rung::same_agent_with_feedback(format!("r{i}")),
            1 => Rung::other_agent(format!("r{i}"), "sibling", ClassSet::TRANSIENT | ClassSet::PERMANENT),
            2 => Rung::decompose(format!("r{i}")),
            _ => Rung::stronger_model(format!("r{i}")),
        }).collect());
        let mut state = LadderState::new();
        let mut last: Option<usize> = None;
        for (class, open_mask, kill) in failures {
            let mut conditions = Conditions::new(class).kill_switch(kill && open_mask % 7 == 0);
            for i in 0..8 {
                if open_mask & (1 << i) != 0 && i % 3 == 0 {
                    conditions = conditions.breaker_open(i);
                }
            }
            match ladder.advance(&mut state, &conditions) {
                Next::Climb { rung, skipped } => {
                    prop_assert!(last.is_none_or(|l| rung > l));
                    prop_assert!(rung < ladder.rungs().len());
                    prop_assert!(ladder.rungs()[rung].accepts().contains(&class));
                    prop_assert!(skipped.iter().all(|s| s.rung < rung));
                    last = Some(rung);
                }
                Next::Stop { .. } => {}
            }
        }
        prop_assert!(state.climbed().len() <= ladder.rungs().len());
        prop_assert!(state.climbed().windows(2).all(|w| w[0] < w[1]));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// For random step counts and random compensation results, every completed step ends
    /// exactly once, compensated or dead-lettered, in reverse order, and no compensation is
    /// tried more often than its policy allows.
    #[test]
    fn a_saga_accounts_for_every_step_once_in_reverse_order(
        steps in 0usize..12,
        attempts in 1u32..5,
        results in proptest::collection::vec((any::<bool>(), class()), 0..80),
        seed in any::<u64>(),
    ) {
        use overseer_retry::{CompensationNext, Failure, Saga, Step};
        let policy = RetryPolicy::builder().max_attempts(attempts).build().unwrap();
        let mut saga = Saga::new(policy);
        for i in 0..steps {
            saga.push(Step::new(format!("s{i}"), i)).unwrap();
        }
        saga.fail().unwrap();
        let mut rng = StdRng::seed_from_u64(seed);
        let mut results = results.into_iter();
        let mut tries_of_current = 0;
        while let Some(step) = saga.next_compensation() {
            let _ = step;
            let (ok, class) = results.next().unwrap_or((true, ErrorClass::Transient));
            tries_of_current += 1;
            prop_assert!(tries_of_current <= attempts);
            if ok {
                saga.compensation_succeeded().unwrap();
                tries_of_current = 0;
            } else if let CompensationNext::DeadLettered(_) =
                saga.compensation_failed(Failure::new(class, "failed"), &mut rng).unwrap()
            {
                tries_of_current = 0;
            }
        }
        let outcome = saga.outcome().unwrap();
        let mut ended: Vec<(usize, String)> = outcome
            .compensated
            .iter()
            .map(|name| (name[1..].parse().unwrap(), name.clone()))
            .chain(outcome.dead_lettered.iter().map(|d| (*d.step.compensation(), d.step.name().to_owned())))
            .collect();
        prop_assert_eq!(ended.len(), steps);
        ended.sort();
        ended.dedup();
        prop_assert_eq!(ended.len(), steps, "a step ended twice");
        // Each list keeps reverse order.
        let compensated: Vec<usize> = outcome.compensated.iter().map(|n| n[1..].parse().unwrap()).collect();
        prop_assert!(compensated.windows(2).all(|w| w[0] > w[1]));
        let dead: Vec<usize> = outcome.dead_lettered.iter().map(|d| *d.step.compensation()).collect();
        prop_assert!(dead.windows(2).all(|w| w[0] > w[1]));
        for letter in &outcome.dead_lettered {
            prop_assert!(!letter.errors.is_empty() && letter.errors.len() <= attempts as usize);
        }
    }

    /// However requests and retries interleave at one instant, the retries granted never exceed
    /// the floor plus the ratio's share of the requests so far.
    #[test]
    fn the_budget_never_grants_more_than_floor_plus_share(
        min_per_sec in 0u32..5,
        ratio_permille in 0u32..2_000,
        ops in proptest::collection::vec(any::<bool>(), 0..300),
    ) {
        use overseer_retry::RetryBudget;
        let ratio = f64::from(ratio_permille) / 1000.0;
        let budget = RetryBudget::new(Duration::from_secs(1), min_per_sec, ratio).unwrap();
        let now = tokio::time::Instant::now();
        let (mut deposits, mut granted) = (0u64, 0u64);
        for deposit in ops {
            if deposit {
                budget.deposit_at(now);
                deposits += 1;
            } else if budget.withdraw_at(now).is_ok() {
                granted += 1;
            }
            let allowed = u64::from(min_per_sec) * 1000 + deposits * u64::from(ratio_permille);
            prop_assert!(granted * 1000 <= allowed, "{granted} retries for {deposits} requests");
        }
    }
}
