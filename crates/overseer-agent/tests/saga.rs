//! Sagas: completed steps compensated in reverse order when a later step fails for good, a
//! compensation that fails retried by its policy and then a dead letter, and, with a journal, a
//! crash after any record of the run resumed with each compensation done exactly once.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use overseer_agent::retry::{Jitter, RetryPolicy};
use overseer_agent::{
    AgentError, DeadLetterChange, ErrorClass, LetterOrigin, Saga, SagaOutcome, SagaStep, System,
    SystemEvent,
};
use overseer_journal::{CrashPlan, Journal, JournalConfig, MemStorage, RunId};
use tokio::time::Instant;

/// A booking service that deduplicates by idempotency key, as a real one would: `calls` is
/// every request, `effects` what really happened.
#[derive(Debug, Default)]
struct Service {
    calls: Mutex<Vec<String>>,
    effects: Mutex<Vec<String>>,
    keys: Mutex<HashSet<String>>,
}

impl Service {
    fn call(&self, what: &str, key: &str) -> String {
        self.calls.lock().unwrap().push(what.to_string());
        if self.keys.lock().unwrap().insert(key.to_string()) {
            self.effects.lock().unwrap().push(what.to_string());
        }
        format!("{what} #{}", key.len())
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    fn effects(&self) -> Vec<String> {
        self.effects.lock().unwrap().clone()
    }
}

/// A step that books `what` and cancels it, both through `service`.
fn booking(service: &Arc<Service>, what: &'static str) -> SagaStep {
    let (book, cancel) = (Arc::clone(service), Arc::clone(service));
    SagaStep::new(
        what,
        move |ctx| {
            let service = Arc::clone(&book);
            async move { Ok::<_, AgentError>(service.call(&format!("book {what}"), &ctx.key)) }
        },
        move |ctx, _booking: String| {
            let service = Arc::clone(&cancel);
            async move {
                service.call(&format!("cancel {what}"), &ctx.key);
                Ok(())
            }
        },
    )
}

/// Flight, hotel, then a car that cannot be rented.
fn trip(service: &Arc<Service>) -> Saga {
    let car = Arc::clone(service);
    Saga::builder("book-trip")
        .then(booking(service, "flight"))
        .then(booking(service, "hotel"))
        .step(
            "car",
            move |_| {
                let service = Arc::clone(&car);
                async move {
                    service.calls.lock().unwrap().push("book car".into());
                    Err::<String, _>(AgentError::permanent("no car left at the airport"))
                }
            },
            |_, _: String| async { Ok(()) },
        )
        .build()
}

fn compensated_trip() -> SagaOutcome {
    SagaOutcome::Compensated {
        failed_step: "car".into(),
        failure: vec![overseer_agent::FailedAttempt::new(
            ErrorClass::Permanent,
            "permanent: no car left at the airport",
        )],
        compensated: vec!["hotel".into(), "flight".into()],
    }
}

#[tokio::test(start_paused = true)]
async fn a_step_failing_for_good_compensates_the_completed_ones_in_reverse_order() {
    let system = System::builder().build().unwrap();
    let service = Arc::new(Service::default());
    let outcome = trip(&service).run(&system).await.unwrap();
    assert_eq!(outcome, compensated_trip());
    assert_eq!(
        service.calls(),
        [
            "book flight",
            "book hotel",
            "book car",
            "cancel hotel",
            "cancel flight"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_saga_whose_steps_all_succeed_compensates_nothing() {
    let system = System::builder().build().unwrap();
    let service = Arc::new(Service::default());
    let saga = Saga::builder("two")
        .then(booking(&service, "flight"))
        .then(booking(&service, "hotel"))
        .build();
    assert_eq!(
        saga.run(&system).await.unwrap(),
        SagaOutcome::Completed {
            steps: vec!["flight".into(), "hotel".into()]
        }
    );
    assert_eq!(service.calls(), ["book flight", "book hotel"]);
}

#[tokio::test(start_paused = true)]
async fn a_flaky_step_is_retried_by_its_policy_on_the_tokio_clock() {
    let system = System::builder().build().unwrap();
    let tries = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&tries);
    let policy = RetryPolicy::builder()
        .max_attempts(3)
        .base_delay(Duration::from_millis(500))
        .jitter(Jitter::None)
        .build()
        .unwrap();
    let start = Instant::now();
    let saga = Saga::builder("flaky")
        .then(
            SagaStep::new(
                "quote",
                move |ctx| {
                    let seen = Arc::clone(&seen);
                    async move {
                        seen.lock().unwrap().push((ctx.attempt, start.elapsed()));
                        if ctx.attempt < 3 {
                            Err(AgentError::failed("503"))
                        } else {
                            Ok(42)
                        }
                    }
                },
                |_, _: u32| async { Ok(()) },
            )
            .retry(policy),
        )
        .build();
    assert!(matches!(
        saga.run(&system).await.unwrap(),
        SagaOutcome::Completed { .. }
    ));
    assert_eq!(
        *tries.lock().unwrap(),
        [
            (1, Duration::ZERO),
            (2, Duration::from_millis(500)),
            (3, Duration::from_millis(1500)),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_compensation_that_keeps_failing_is_a_dead_letter_and_an_event_never_skipped() {
    let system = System::builder().build().unwrap();
    let mut events = system.subscribe();
    let service = Arc::new(Service::default());
    let stubborn = Arc::new(Mutex::new(0_u32));
    let tries = Arc::clone(&stubborn);
    let policy = RetryPolicy::builder()
        .max_attempts(2)
        .jitter(Jitter::None)
        .build()
        .unwrap();
    let saga = Saga::builder("book-trip")
        .then(booking(&service, "flight"))
        .then(
            SagaStep::new(
                "hotel",
                |_| async { Ok::<_, AgentError>("H-77".to_string()) },
                move |_, booking: String| {
                    let tries = Arc::clone(&tries);
                    async move {
                        *tries.lock().unwrap() += 1;
                        Err(AgentError::failed(format!(
                            "{booking}: the hotel's line is busy"
                        )))
                    }
                },
            )
            .compensation_retry(policy),
        )
        .step(
            "car",
            |_| async { Err::<String, _>(AgentError::permanent("no car")) },
            |_, _: String| async { Ok(()) },
        )
        .build();

    let outcome = saga.run(&system).await.unwrap();
    let SagaOutcome::PartiallyCompensated {
        compensated,
        dead_lettered,
        ..
    } = outcome
    else {
        panic!("{outcome:?}")
    };
    assert_eq!(compensated, ["flight"], "the flight is still cancelled");
    assert_eq!(*stubborn.lock().unwrap(), 2, "its policy's two attempts");
    assert_eq!(service.effects(), ["book flight", "cancel flight"]);
    let (step, id) = &dead_lettered[0];
    assert_eq!(step, "hotel");

    let letter = system.dead_letters().get(*id).unwrap();
    assert_eq!(letter.attempts.len(), 2);
    assert_eq!(letter.input.decode::<String>().unwrap(), "H-77");
    assert_eq!(
        letter.origin,
        LetterOrigin::Compensation {
            saga: "book-trip".into(),
            step: "hotel".into()
        }
    );
    loop {
        if let SystemEvent::DeadLetter(event) = events.recv().await.unwrap() {
            assert_eq!(
                (event.change, event.letter),
                (DeadLetterChange::Pushed, *id)
            );
            break;
        }
    }
}

fn journaled(storage: MemStorage) -> System {
    let journal = Journal::open(storage, JournalConfig::default()).unwrap().0;
    System::builder().journal(journal).build().unwrap()
}

/// The records of the whole run: its start and claim, an intent and a result for each of the
/// three steps and the two compensations, and its end.
const RUN_RECORDS: u64 = 2 + 2 * 5 + 1;

#[tokio::test(start_paused = true)]
async fn a_crash_after_any_record_resumes_and_compensates_each_step_exactly_once_in_reverse() {
    let run = RunId::new("trip-42").unwrap();
    for crash_after in 0..=RUN_RECORDS {
        let service = Arc::new(Service::default());
        let storage = MemStorage::new().crash(CrashPlan::AfterRecords(crash_after));
        let system = journaled(storage.clone());
        let first = trip(&service).run_durable(&system, run.clone()).await;
        if crash_after < RUN_RECORDS {
            assert!(first.is_err(), "crash after {crash_after}: {first:?}");
        } else {
            assert_eq!(first, Ok(compensated_trip()));
        }
        drop(system);

        let next_process = storage.reopen();
        let system = journaled(next_process.clone());
        let resumed = trip(&service).run_durable(&system, run.clone()).await;
        assert_eq!(resumed, Ok(compensated_trip()), "crash after {crash_after}");
        assert_eq!(
            service.effects(),
            ["book flight", "book hotel", "cancel hotel", "cancel flight"],
            "crash after {crash_after}: every effect once, compensations last step first"
        );
        // An action is run again only if the crash came between it and its result.
        let calls = service.calls();
        let repeats = calls.len() - calls.iter().collect::<HashSet<_>>().len();
        assert!(repeats <= 1, "crash after {crash_after}: {calls:?}");
        if crash_after == 9 {
            // The hotel's cancellation ran, its result was lost: run again under its key.
            let cancels = calls.iter().filter(|c| *c == "cancel hotel").count();
            assert_eq!(cancels, 2, "{calls:?}");
        }
        assert!(system.dead_letters().is_empty());

        // Finished: asked again, the recorded outcome, and nothing runs.
        let before = service.calls().len();
        assert_eq!(
            trip(&service).run_durable(&system, run.clone()).await,
            Ok(compensated_trip())
        );
        assert_eq!(service.calls().len(), before);
    }
}

#[tokio::test(start_paused = true)]
async fn a_durable_saga_needs_a_journal_and_one_caller_at_a_time() {
    let system = System::builder().build().unwrap();
    let service = Arc::new(Service::default());
    let refused = trip(&service)
        .run_durable(&system, RunId::new("r").unwrap())
        .await;
    assert!(
        matches!(refused, Err(overseer_agent::SagaError::NoJournal { .. })),
        "{refused:?}"
    );
    assert!(service.calls().is_empty());

    // Another saga under the same run id conflicts.
    let system = journaled(MemStorage::new());
    let run = RunId::new("r").unwrap();
    trip(&service)
        .run_durable(&system, run.clone())
        .await
        .unwrap();
    let other = Saga::builder("other")
        .then(booking(&service, "flight"))
        .build();
    assert!(matches!(
        other.run_durable(&system, run).await,
        Err(overseer_agent::SagaError::RunConflict { .. })
    ));
}
