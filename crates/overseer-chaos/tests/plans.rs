//! Invalid plans are refused with typed errors before anything runs; nothing panics on user
//! input.

mod common;

use std::time::Duration;

use common::Worker;
use overseer_chaos::{Fault, FaultInjector, FaultKind, FaultPlan, PlanError, Rule};

#[test]
fn a_probability_outside_zero_to_one_is_refused() {
    let error = FaultPlan::builder()
        .probability(Fault::Hang, 1.01)
        .build()
        .unwrap_err();
    assert_eq!(
        error,
        PlanError::ProbabilityOutOfRange {
            fault: FaultKind::Hang,
            probability: 1.01
        }
    );
    assert_eq!(
        error.to_string(),
        "the probability of hang is 1.01; it must be within [0, 1]"
    );
}

#[test]
fn probabilities_adding_up_to_more_than_one_are_refused() {
    let error = FaultPlan::builder()
        .probability(Fault::Error, 0.5)
        .probability(Fault::Slow(Duration::from_secs(1)), 0.3)
        .probability(Fault::Panic, 0.3)
        .build()
        .unwrap_err();
    assert!(
        matches!(error, PlanError::ProbabilitiesAboveOne { task_type: None, sum } if (sum - 1.1).abs() < 1e-9),
        "{error:?}"
    );
    // Rules for different task types never apply to the same call.
    assert!(FaultPlan::builder()
        .rule(Rule::probability(Fault::Error, 0.8).for_task_type("search"))
        .rule(Rule::probability(Fault::Error, 0.8).for_task_type("write"))
        .build()
        .is_ok());
}

#[test]
fn call_zero_and_empty_ranges_are_refused() {
    assert_eq!(
        FaultPlan::builder().on_call(0, Fault::Panic).build(),
        Err(PlanError::CallZero {
            fault: Fault::Panic
        })
    );
    let (first, last) = (4, 2);
    assert_eq!(
        FaultPlan::builder()
            .on_calls(first..=last, Fault::Error)
            .build(),
        Err(PlanError::EmptyCallRange {
            fault: Fault::Error,
            first: 4,
            last: 2
        })
    );
    assert_eq!(
        FaultPlan::builder().fail_start_on(0).build(),
        Err(PlanError::StartAttemptZero)
    );
}

#[test]
fn corrupt_without_a_corruptor_is_refused() {
    let plan = FaultPlan::builder()
        .rule(Rule::probability(Fault::Corrupt, 0.1).for_task_type("search"))
        .build()
        .unwrap();
    assert_eq!(
        FaultInjector::<Worker>::new(plan.clone(), 1).unwrap_err(),
        PlanError::CorruptWithoutCorruptor
    );
    let injector = FaultInjector::<Worker>::with_corruptor(plan, 1, |reply, _| reply);
    assert_eq!(injector.seed(), 1);
    assert_eq!(injector.plan().rules().len(), 1);
}

#[test]
fn an_inflation_that_inflates_nothing_is_refused() {
    assert_eq!(
        FaultPlan::builder()
            .probability(Fault::InflateUsage(0), 0.5)
            .build(),
        Err(PlanError::InflationBelowTwo { factor: 0 })
    );
}
