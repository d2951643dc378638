//! Retry policies in the call path: what is retried, when, how often, within which deadline,
//! under which budget, and what the next attempt is told. Paused clock.

mod flaky;

use std::time::Duration;

use flaky::*;
use overseer_agent::retry::{
    Attempt, GiveUpReason, Jitter, RetryBudget, RetryDecision, RetryPolicy,
};
use overseer_agent::{
    AgentError, AgentSpec, AskError, ErrorClass, RetryStep, System, SystemBuilder,
};
use overseer_budget::{Budget, TripReason};
use overseer_supervisor::SupervisorSpec;
use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::time::Instant;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

async fn start(builder: SystemBuilder, script: &Script, specs: Vec<AgentSpec<Flaky>>) -> System {
    let system = builder.build().unwrap();
    let mut root = SupervisorSpec::one_for_one("root").intensity(100, Duration::from_secs(1));
    for spec in specs {
        root = root.child(system.agent(spec).unwrap());
    }
    let _ = script;
    system.start(root).await.unwrap();
    system
}

fn flaky(name: &str, script: &Script) -> AgentSpec<Flaky> {
    let script = script.clone();
    AgentSpec::new(name, move || script.agent())
}

/// The gaps between consecutive calls.
fn gaps(calls: &[Call]) -> Vec<Duration> {
    calls.windows(2).map(|w| w[1].at - w[0].at).collect()
}

#[test]
fn an_ask_error_stays_72_bytes() {
    assert_eq!(std::mem::size_of::<AskError>(), 72);
}

#[tokio::test(start_paused = true)]
async fn delays_and_jitter_are_exactly_as_the_seed_and_the_policy_say() {
    let policy = RetryPolicy::builder()
        .max_attempts(4)
        .base_delay(ms(100))
        .jitter(Jitter::Full)
        .build()
        .unwrap();
    let script = Script::default().then("a", [transient(), transient(), transient()]);
    let builder = System::builder().retry_seed(7);
    let system = start(
        builder,
        &script,
        vec![flaky("a", &script).retry(policy.clone())],
    )
    .await;
    let mut events = system.subscribe();
    let a = system.agent_ref::<flaky::Flaky>("a").unwrap();
    assert_eq!(a.ask("job".into()).await.unwrap(), "job");

    // The same seed and policy, outside the system: the delays it must have waited.
    let mut rng = StdRng::seed_from_u64(7);
    let expected: Vec<Duration> = (1..=3)
        .map(
            |n| match policy.decide(&Attempt::new(n, ErrorClass::Transient), &mut rng) {
                RetryDecision::RetryAfter(delay) => delay,
                other => panic!("{other:?}"),
            },
        )
        .collect();
    assert!(expected.iter().all(|d| *d <= ms(100) * 4), "{expected:?}");
    let calls = script.calls_of("a");
    assert_eq!(calls.len(), 4);
    // The timer counts whole milliseconds: each retry starts at its delay, rounded up.
    let on_the_timer: Vec<Duration> = expected
        .iter()
        .map(|d| ms(d.as_nanos().div_ceil(1_000_000) as u64))
        .collect();
    assert_eq!(
        gaps(&calls),
        on_the_timer,
        "each retry starts exactly its delay later"
    );
    let retried: Vec<(u32, Duration)> = retry_events(&mut events)
        .into_iter()
        .filter_map(|e| match e.step {
            RetryStep::Retrying { delay } => Some((e.attempt, delay)),
            _ => None,
        })
        .collect();
    assert_eq!(
        retried,
        vec![(1, expected[0]), (2, expected[1]), (3, expected[2])]
    );
}

#[tokio::test(start_paused = true)]
async fn a_retry_event_names_the_failed_ask_as_its_cause() {
    let policy = RetryPolicy::builder().jitter(Jitter::None).build().unwrap();
    let script = Script::default().then("a", [transient()]);
    let system = start(
        System::builder(),
        &script,
        vec![flaky("a", &script).retry(policy)],
    )
    .await;
    let mut events = system.subscribe();
    let a = system.agent_ref::<flaky::Flaky>("a").unwrap();
    a.ask("job".into()).await.unwrap();
    let all: Vec<_> = std::iter::from_fn(|| events.try_recv().ok()).collect();
    let failed_ask = all
        .iter()
        .find_map(|e| match e {
            overseer_agent::SystemEvent::Ask(ask) if !ask.outcome.is_ok() => Some(ask.id),
            _ => None,
        })
        .expect("the failed attempt's ask event");
    let retry = all
        .iter()
        .find_map(|e| match e {
            overseer_agent::SystemEvent::Retry(retry) => Some(retry.clone()),
            _ => None,
        })
        .expect("a retry event");
    assert_eq!(retry.caused_by, Some(failed_ask));
    assert_eq!(retry.class, ErrorClass::Transient);
    assert_eq!(retry.task_type, "work");
    assert!(retry.message.contains("flaky"), "{}", retry.message);
    assert_eq!(retry.step, RetryStep::Retrying { delay: ms(500) });
}

#[tokio::test(start_paused = true)]
async fn a_permanent_error_is_never_retried() {
    let script = Script::default().then("a", [permanent(), permanent()]);
    let spec = flaky("a", &script).retry(RetryPolicy::default());
    let system = start(System::builder(), &script, vec![spec]).await;
    let mut events = system.subscribe();
    let a = system.agent_ref::<flaky::Flaky>("a").unwrap();
    let answer = a.ask("job".into()).await;
    assert!(
        matches!(
            &answer,
            Err(AskError::Failed {
                error: AgentError::Permanent(_),
                ..
            })
        ),
        "{answer:?}"
    );
    assert_eq!(script.calls_of("a").len(), 1);
    let steps: Vec<_> = retry_events(&mut events)
        .into_iter()
        .map(|e| e.step)
        .collect();
    assert_eq!(
        steps,
        vec![RetryStep::GaveUp {
            reason: GiveUpReason::Permanent
        }]
    );
}

#[tokio::test(start_paused = true)]
async fn without_a_policy_an_ask_is_not_retried() {
    let script = Script::default().then("a", [transient()]);
    let system = start(System::builder(), &script, vec![flaky("a", &script)]).await;
    let a = system.agent_ref::<flaky::Flaky>("a").unwrap();
    assert!(a.ask("job".into()).await.is_err());
    assert_eq!(script.calls_of("a").len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_task_type_policy_overrides_the_agents() {
    let script = Script::default().then("a", [transient(), transient()]);
    let spec = flaky("a", &script)
        .retry(RetryPolicy::builder().jitter(Jitter::None).build().unwrap())
        .retry_task_type("summary", RetryPolicy::never());
    let system = start(System::builder(), &script, vec![spec]).await;
    let a = system.agent_ref::<flaky::Flaky>("a").unwrap();
    assert!(
        a.ask("summary please".into()).await.is_err(),
        "never retried"
    );
    assert_eq!(script.calls_of("a").len(), 1);
    assert_eq!(a.ask("work".into()).await.unwrap(), "work", "retried");
    assert_eq!(script.calls_of("a").len(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_rate_limit_waits_at_least_its_retry_after() {
    let policy = RetryPolicy::builder()
        .base_delay(ms(100))
        .jitter(Jitter::None)
        .build()
        .unwrap();
    let limited = Step::Fail(AgentError::rate_limited(
        "slow down",
        Some(Duration::from_secs(3)),
    ));
    let script = Script::default().then("a", [limited]);
    let system = start(
        System::builder(),
        &script,
        vec![flaky("a", &script).retry(policy)],
    )
    .await;
    let a = system.agent_ref::<flaky::Flaky>("a").unwrap();
    assert_eq!(a.ask("job".into()).await.unwrap(), "job");
    assert_eq!(gaps(&script.calls_of("a")), vec![Duration::from_secs(3)]);
}

#[tokio::test(start_paused = true)]
async fn the_next_attempt_is_told_the_previous_failure() {
    let policy = RetryPolicy::builder().jitter(Jitter::None).build().unwrap();
    let script = Script::default().then("a", [transient()]);
    let system = start(
        System::builder(),
        &script,
        vec![flaky("a", &script).retry(policy)],
    )
    .await;
    let a = system.agent_ref::<flaky::Flaky>("a").unwrap();
    a.ask("job".into()).await.unwrap();
    let calls = script.calls_of("a");
    assert_eq!(calls[0].feedback, None);
    let (attempt, class, message) = calls[1].feedback.clone().expect("feedback");
    assert_eq!((attempt, class), (1, ErrorClass::Transient));
    assert_eq!(message, "agent 'a' failed the task: flaky");
}

#[tokio::test(start_paused = true)]
async fn the_retry_budget_refuses_retries_beyond_its_share() {
    // A fifth of requests may be retries, with no floor.
    let budget = RetryBudget::new(Duration::from_secs(10), 0, 0.2).unwrap();
    let script = Script::default();
    let policy = RetryPolicy::builder()
        .jitter(Jitter::None)
        .base_delay(ms(10))
        .build()
        .unwrap();
    let builder = System::builder().retry_budget(budget);
    let system = start(builder, &script, vec![flaky("a", &script).retry(policy)]).await;
    let mut events = system.subscribe();
    let a = system.agent_ref::<flaky::Flaky>("a").unwrap();
    for _ in 0..10 {
        a.ask("ok".into()).await.unwrap(); // ten requests: two retries' worth
    }
    let script = script.then(
        "a",
        [
            transient(),
            Step::Echo,
            transient(),
            Step::Echo,
            transient(),
        ],
    );
    assert_eq!(
        a.ask("one".into()).await.unwrap(),
        "one",
        "first retry granted"
    );
    assert_eq!(
        a.ask("two".into()).await.unwrap(),
        "two",
        "second retry granted"
    );
    let refused = a.ask("three".into()).await;
    match refused {
        Err(AskError::RetryRefused { agent, last }) => {
            assert_eq!(agent.as_str(), "a");
            assert!(matches!(*last, AskError::Failed { .. }), "{last:?}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(script.calls_of("a").len(), 10 + 2 * 2 + 1);
    let refusals = retry_events(&mut events)
        .into_iter()
        .filter(|e| matches!(e.step, RetryStep::Refused { .. }))
        .count();
    assert_eq!(refusals, 1);
}

#[tokio::test(start_paused = true)]
async fn no_retry_after_the_kill_switch_trips() {
    let budget = Budget::builder().build().unwrap();
    let policy = RetryPolicy::builder()
        .jitter(Jitter::None)
        .base_delay(Duration::from_secs(1))
        .build()
        .unwrap();
    let script = Script::default().then("a", [transient()]);
    let builder = System::builder().budget(budget.clone());
    let system = start(builder, &script, vec![flaky("a", &script).retry(policy)]).await;
    let mut events = system.subscribe();
    let a = system.agent_ref::<flaky::Flaky>("a").unwrap();
    let trip = tokio::spawn(async move {
        // While the ask waits its one second before the retry.
        tokio::time::sleep(ms(500)).await;
        budget.trip(TripReason::manual("stop"));
    });
    let asked = Instant::now();
    let answer = a.ask("job".into()).await;
    trip.await.unwrap();
    assert!(matches!(answer, Err(AskError::Failed { .. })), "{answer:?}");
    assert_eq!(script.calls_of("a").len(), 1, "not retried after the trip");
    assert_eq!(
        asked.elapsed(),
        ms(500),
        "the wait ends at the trip, not at 1 s"
    );
    let last = retry_events(&mut events).pop().expect("events");
    assert_eq!(
        last.step,
        RetryStep::GaveUp {
            reason: GiveUpReason::Cancelled
        }
    );
}

#[tokio::test(start_paused = true)]
async fn no_caller_waits_past_its_deadline() {
    let policy = RetryPolicy::builder()
        .max_attempts(10)
        .base_delay(ms(300))
        .jitter(Jitter::None)
        .build()
        .unwrap();
    let script = Script::default().then("a", std::iter::repeat_with(transient).take(10));
    let spec = flaky("a", &script)
        .retry(policy)
        .ask_timeout(Duration::from_secs(1));
    let system = start(System::builder(), &script, vec![spec]).await;
    let mut events = system.subscribe();
    let a = system.agent_ref::<flaky::Flaky>("a").unwrap();
    let asked = Instant::now();
    assert!(a.ask("job".into()).await.is_err());
    // Attempts at 0, 0.3 s and 0.9 s; the next wait (1.2 s) would pass the deadline.
    assert_eq!(asked.elapsed(), ms(900));
    assert_eq!(script.calls_of("a").len(), 3);
    let last = retry_events(&mut events).pop().unwrap();
    assert_eq!(
        last.step,
        RetryStep::GaveUp {
            reason: GiveUpReason::DeadlineTooClose
        }
    );
}

#[tokio::test(start_paused = true)]
async fn a_slow_failure_is_retried_only_within_the_deadline() {
    let policy = RetryPolicy::builder()
        .max_attempts(5)
        .base_delay(ms(100))
        .jitter(Jitter::None)
        .build()
        .unwrap();
    let slow = || Step::SlowFail(ms(400), AgentError::failed("slow"));
    let script = Script::default().then("a", std::iter::repeat_with(slow).take(5));
    let spec = flaky("a", &script)
        .retry(policy)
        .ask_timeout(Duration::from_secs(1));
    let system = start(System::builder(), &script, vec![spec]).await;
    let a = system.agent_ref::<flaky::Flaky>("a").unwrap();
    let asked = Instant::now();
    let answer = a.ask("job".into()).await;
    // 0–0.4 fails, 0.5–0.9 fails, 1.1 would be past: the second attempt's deadline is the ask's.
    assert!(answer.is_err());
    assert!(
        asked.elapsed() <= Duration::from_secs(1),
        "{:?}",
        asked.elapsed()
    );
    assert_eq!(script.calls_of("a").len(), 2);
}

mod property {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Outcome {
        Ok,
        Transient,
        Limited(u64),
        Permanent,
        Slow(u64),
    }

    fn outcome() -> impl Strategy<Value = Outcome> {
        prop_oneof![
            Just(Outcome::Ok),
            Just(Outcome::Transient),
            (0u64..2_000).prop_map(Outcome::Limited),
            Just(Outcome::Permanent),
            (0u64..1_500).prop_map(Outcome::Slow),
        ]
    }

    fn step(outcome: &Outcome) -> Step {
        match outcome {
            Outcome::Ok => Step::Echo,
            Outcome::Transient => transient(),
            Outcome::Limited(ms) => Step::Fail(AgentError::rate_limited(
                "429",
                Some(Duration::from_millis(*ms)),
            )),
            Outcome::Permanent => permanent(),
            Outcome::Slow(ms) => {
                Step::SlowFail(Duration::from_millis(*ms), AgentError::failed("slow"))
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        /// For random error sequences: attempts never exceed the policy's, the caller never
        /// waits past its deadline, and a permanent failure ends the ask.
        #[test]
        fn attempts_and_waiting_stay_within_the_policy_and_the_deadline(
            outcomes in proptest::collection::vec(outcome(), 1..8),
            max_attempts in 1u32..6,
            base_ms in 0u64..800,
            deadline_ms in 100u64..5_000,
            seed in any::<u64>(),
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .start_paused(true)
                .build()
                .unwrap();
            let (calls, waited) = runtime.block_on(async {
                let policy = RetryPolicy::builder()
                    .max_attempts(max_attempts)
                    .base_delay(Duration::from_millis(base_ms))
                    .max_delay(Duration::from_secs(2))
                    .build()
                    .unwrap();
                let script = Script::default().then("a", outcomes.iter().map(step));
                let spec = flaky("a", &script)
                    .retry(policy)
                    .ask_timeout(Duration::from_millis(deadline_ms));
                let system = start(System::builder().retry_seed(seed), &script, vec![spec]).await;
                let a = system.agent_ref::<flaky::Flaky>("a").unwrap();
                let asked = Instant::now();
                let _ = a.ask("job".into()).await;
                let waited = asked.elapsed();
                system.shutdown(Duration::from_secs(1)).await.unwrap();
                (script.calls_of("a").len(), waited)
            });
            prop_assert!(calls >= 1);
            prop_assert!(calls as u32 <= max_attempts, "{calls} calls, policy {max_attempts}");
            prop_assert!(waited <= Duration::from_millis(deadline_ms), "{waited:?}");
            if let Some(first_permanent) = outcomes.iter().position(|o| matches!(o, Outcome::Permanent)) {
                prop_assert!(calls <= first_permanent + 1, "nothing after a permanent failure");
            }
            if let Some(first_ok) = outcomes.iter().position(|o| matches!(o, Outcome::Ok)) {
                prop_assert!(calls <= first_ok + 1, "nothing after an answer");
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_hung_attempt_times_out_at_the_attempt_timeout_and_is_retried_within_the_deadline() {
    let policy = RetryPolicy::builder()
        .max_attempts(3)
        .base_delay(ms(100))
        .jitter(Jitter::None)
        .attempt_timeout(Some(Duration::from_secs(2)))
        .build()
        .unwrap();
    // The first attempt hangs; the next answers.
    let script = Script::default().then("a", [Step::Hang]);
    let system = start(
        System::builder().ask_timeout(Duration::from_secs(60)),
        &script,
        vec![flaky("a", &script).retry(policy)],
    )
    .await;
    let a = system.agent_ref::<flaky::Flaky>("a").unwrap();
    let asked = Instant::now();
    assert_eq!(a.ask("job".into()).await.unwrap(), "job");
    // 2 s for the hung attempt, 100 ms of backoff: not the 60 s deadline.
    assert_eq!(asked.elapsed(), Duration::from_millis(2_100));
    let calls = script.calls_of("a");
    assert_eq!(calls.len(), 2, "{calls:?}");
    let (number, class, _) = calls[1].feedback.clone().expect("the retry is told why");
    assert_eq!((number, class), (1, ErrorClass::Transient));
    system.shutdown(Duration::from_secs(10)).await.unwrap();
}

#[test]
fn a_zero_attempt_timeout_is_a_typed_error() {
    let built = RetryPolicy::builder()
        .attempt_timeout(Some(Duration::ZERO))
        .build();
    assert_eq!(
        built,
        Err(overseer_agent::retry::PolicyError::ZeroAttemptTimeout)
    );
}
