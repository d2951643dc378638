//! Sagas: reverse-order compensation, retries by policy, dead letters, resume after a crash.

use std::time::Duration;

use overseer_retry::{
    CompensationNext, ErrorClass, Failure, GiveUpReason, Jitter, RetryPolicy, Saga, SagaError, Step,
};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum Undo {
    CancelFlight(String),
    CancelHotel(String),
    CancelCar(String),
    Refund(u32),
}

fn policy(attempts: u32) -> RetryPolicy {
    RetryPolicy::builder()
        .max_attempts(attempts)
        .base_delay(Duration::from_millis(100))
        .jitter(Jitter::None)
        .build()
        .unwrap()
}

fn booked() -> Saga<Undo> {
    let mut saga = Saga::new(policy(3));
    saga.push(Step::new("charge", Undo::Refund(420))).unwrap();
    saga.push(Step::new("flight", Undo::CancelFlight("AF1".into())))
        .unwrap();
    saga.push(Step::new("hotel", Undo::CancelHotel("H7".into())))
        .unwrap();
    saga.push(Step::new("car", Undo::CancelCar("C9".into())))
        .unwrap();
    saga
}

fn names(saga: &Saga<Undo>) -> Vec<String> {
    saga.compensations().map(|s| s.name().to_owned()).collect()
}

#[test]
fn a_failed_saga_compensates_its_steps_in_reverse_order() {
    let mut saga = booked();
    assert_eq!(
        names(&saga),
        Vec::<String>::new(),
        "nothing to undo while running"
    );
    saga.fail().unwrap();
    assert_eq!(names(&saga), ["car", "hotel", "flight", "charge"]);
    let mut ran = Vec::new();
    while let Some(step) = saga.next_compensation() {
        ran.push(step.compensation().clone());
        saga.compensation_succeeded().unwrap();
    }
    assert_eq!(
        ran,
        [
            Undo::CancelCar("C9".into()),
            Undo::CancelHotel("H7".into()),
            Undo::CancelFlight("AF1".into()),
            Undo::Refund(420)
        ]
    );
    let outcome = saga.outcome().unwrap();
    assert!(!outcome.completed);
    assert_eq!(outcome.compensated, ["car", "hotel", "flight", "charge"]);
    assert!(outcome.dead_lettered.is_empty());
}

#[test]
fn a_failing_compensation_is_retried_by_its_policy_then_dead_lettered_never_skipped() {
    let mut saga = booked();
    saga.fail().unwrap();
    let mut rng = StdRng::seed_from_u64(5);
    let fail = |msg: &str| Failure::new(ErrorClass::Transient, msg);
    assert_eq!(
        saga.compensation_failed(fail("car api 503"), &mut rng)
            .unwrap(),
        CompensationNext::RetryAfter(Duration::from_millis(100))
    );
    assert_eq!(
        saga.compensation_failed(fail("car api 503 again"), &mut rng)
            .unwrap(),
        CompensationNext::RetryAfter(Duration::from_millis(200))
    );
    assert_eq!(saga.attempts_so_far(), 2);
    assert_eq!(
        saga.compensation_failed(fail("car api down"), &mut rng)
            .unwrap(),
        CompensationNext::DeadLettered(GiveUpReason::AttemptsExhausted)
    );
    // The next compensation starts afresh.
    assert_eq!(saga.next_compensation().unwrap().name(), "hotel");
    assert_eq!(saga.attempts_so_far(), 0);
    for _ in 0..3 {
        saga.compensation_succeeded().unwrap();
    }
    let outcome = saga.outcome().unwrap();
    assert_eq!(outcome.compensated, ["hotel", "flight", "charge"]);
    assert_eq!(outcome.dead_lettered.len(), 1);
    let letter = &outcome.dead_lettered[0];
    assert_eq!(letter.step.name(), "car");
    assert_eq!(
        letter.errors,
        ["car api 503", "car api 503 again", "car api down"]
    );
    assert_eq!(letter.reason, GiveUpReason::AttemptsExhausted);
}

#[test]
fn a_step_may_carry_its_own_compensation_policy() {
    let mut saga = Saga::new(policy(5));
    saga.push(Step::new("charge", Undo::Refund(1)).with_policy(RetryPolicy::never()))
        .unwrap();
    saga.fail().unwrap();
    let mut rng = StdRng::seed_from_u64(5);
    let next = saga
        .compensation_failed(
            Failure::new(ErrorClass::Transient, "bank timeout"),
            &mut rng,
        )
        .unwrap();
    assert_eq!(
        next,
        CompensationNext::DeadLettered(GiveUpReason::AttemptsExhausted)
    );
}

#[test]
fn a_permanent_or_cancelled_compensation_failure_is_dead_lettered_at_once() {
    let mut saga = booked();
    saga.fail().unwrap();
    let mut rng = StdRng::seed_from_u64(5);
    let permanent = Failure::new(ErrorClass::Permanent, "no such booking");
    assert_eq!(
        saga.compensation_failed(permanent, &mut rng).unwrap(),
        CompensationNext::DeadLettered(GiveUpReason::Permanent)
    );
    let killed = Failure::new(ErrorClass::Cancelled, "kill switch");
    assert_eq!(
        saga.compensation_failed(killed, &mut rng).unwrap(),
        CompensationNext::DeadLettered(GiveUpReason::Cancelled)
    );
    assert_eq!(names(&saga), ["flight", "charge"]);
}

#[test]
fn a_saga_restored_mid_compensation_runs_exactly_the_remaining_compensations_in_reverse_order() {
    let mut saga = booked();
    saga.fail().unwrap();
    let mut rng = StdRng::seed_from_u64(5);
    saga.compensation_succeeded().unwrap(); // car
    let failure = Failure::new(ErrorClass::Transient, "hotel api 502");
    assert!(matches!(
        saga.compensation_failed(failure, &mut rng).unwrap(),
        CompensationNext::RetryAfter(_)
    ));

    // The agent layer journals the state after each report; the process dies here.
    let journaled = serde_json::to_string(&saga).unwrap();
    drop(saga);
    let mut restored: Saga<Undo> = serde_json::from_str(&journaled).unwrap();

    assert_eq!(names(&restored), ["hotel", "flight", "charge"]);
    assert_eq!(
        restored.attempts_so_far(),
        1,
        "the hotel's failed attempt is remembered"
    );
    let mut ran = Vec::new();
    // The hotel fails twice more: with the one before the crash, its three attempts are spent.
    for message in ["hotel api 502 again", "hotel api gone"] {
        ran.push(restored.next_compensation().unwrap().name().to_owned());
        restored
            .compensation_failed(Failure::new(ErrorClass::Transient, message), &mut rng)
            .unwrap();
    }
    while let Some(step) = restored.next_compensation() {
        ran.push(step.name().to_owned());
        restored.compensation_succeeded().unwrap();
    }
    assert_eq!(ran, ["hotel", "hotel", "flight", "charge"]);
    let outcome = restored.outcome().unwrap();
    assert_eq!(outcome.compensated, ["car", "flight", "charge"]);
    assert_eq!(
        outcome.dead_lettered[0].errors,
        ["hotel api 502", "hotel api 502 again", "hotel api gone"]
    );
}

#[test]
fn reports_out_of_phase_are_typed_errors() {
    let mut saga = booked();
    assert_eq!(
        saga.compensation_succeeded(),
        Err(SagaError::NotCompensating)
    );
    saga.finish().unwrap();
    assert_eq!(
        saga.push(Step::new("late", Undo::Refund(0))),
        Err(SagaError::NotRunning)
    );
    assert_eq!(saga.fail(), Err(SagaError::NotRunning));
    let outcome = saga.outcome().unwrap();
    assert!(outcome.completed);
    assert!(outcome.compensated.is_empty());

    let mut empty: Saga<Undo> = Saga::new(policy(1));
    empty.fail().unwrap();
    assert!(!empty.outcome().unwrap().completed);
    assert_eq!(
        empty.compensation_succeeded(),
        Err(SagaError::NotCompensating)
    );
}
