//! Scheduled faults: on the Nth call, on calls N to M, for one task type; numbering across
//! restarts; schedules before probabilities. Through a real `System`, paused clock.

mod common;

use std::time::Duration;

use common::*;
use overseer_agent::AskError;
use overseer_chaos::{Fault, FaultInjector, FaultKind, FaultPlan, Rule};
use tokio::time::Instant;

fn injector(plan: FaultPlan) -> FaultInjector<Worker> {
    FaultInjector::new(plan, 11).expect("a valid injector")
}

/// Asks each task in turn; for each, the fault marked in its event (`None` for none).
async fn marks(harness: &mut Harness, tasks: Vec<Task>) -> Vec<Option<String>> {
    for task in tasks {
        let _ = harness.worker.ask(task).await;
    }
    harness
        .asks()
        .into_iter()
        .map(|ask| ask.injected.map(String::from))
        .collect()
}

fn error() -> Option<String> {
    Some("error".to_string())
}

#[tokio::test(start_paused = true)]
async fn only_the_nth_call_gets_the_fault() {
    let plan = FaultPlan::builder()
        .on_call(3, Fault::Error)
        .build()
        .unwrap();
    let mut harness = Harness::start(&injector(plan)).await;
    let tasks = (0..5).map(|_| search("q")).collect();
    assert_eq!(
        marks(&mut harness, tasks).await,
        [None, None, error(), None, None]
    );
}

#[tokio::test(start_paused = true)]
async fn every_call_in_a_range_gets_the_fault() {
    let plan = FaultPlan::builder()
        .on_calls(2..=4, Fault::Error)
        .build()
        .unwrap();
    let injector = injector(plan);
    let mut harness = Harness::start(&injector).await;
    let tasks = (0..6).map(|_| search("q")).collect();
    assert_eq!(
        marks(&mut harness, tasks).await,
        [None, error(), error(), error(), None, None]
    );
    let stats = injector.stats();
    assert_eq!(stats.calls, 6);
    assert_eq!(stats.count(FaultKind::Error), 3);
    assert_eq!(stats.total_injected(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_rule_for_one_task_type_counts_and_faults_only_calls_of_that_type() {
    let plan = FaultPlan::builder()
        .rule(Rule::on_call(2, Fault::Error).for_task_type("search"))
        .build()
        .unwrap();
    let mut harness = Harness::start(&injector(plan)).await;
    // Call 2 is a write; the 2nd search is call 4.
    let tasks = vec![
        write("a"),
        search("b"),
        write("c"),
        search("d"),
        search("e"),
    ];
    assert_eq!(
        marks(&mut harness, tasks).await,
        [None, None, None, error(), None]
    );
}

#[tokio::test(start_paused = true)]
async fn a_probability_for_one_task_type_spares_the_others() {
    let plan = FaultPlan::builder()
        .rule(Rule::probability(Fault::Error, 1.0).for_task_type("write"))
        .build()
        .unwrap();
    let mut harness = Harness::start(&injector(plan)).await;
    let tasks = vec![search("a"), write("b"), search("c"), write("d")];
    assert_eq!(
        marks(&mut harness, tasks).await,
        [None, error(), None, error()]
    );
}

#[tokio::test(start_paused = true)]
async fn call_numbers_run_on_across_restarts() {
    let plan = FaultPlan::builder()
        .on_call(2, Fault::Panic)
        .on_call(4, Fault::Panic)
        .build()
        .unwrap();
    let injector = injector(plan);
    let harness = Harness::start(&injector).await;
    let mut answered_by = Vec::new();
    for _ in 0..5 {
        answered_by.push(
            harness
                .worker
                .ask(search("q"))
                .await
                .map(|reply| reply.incarnation),
        );
    }
    let crashed =
        |outcome: &Result<u32, AskError>| matches!(outcome, Err(AskError::Crashed { .. }));
    // Counted per incarnation, the second panic would have hit the new incarnation's 2nd call
    // (call 5) rather than call 4.
    assert_eq!(answered_by[0], Ok(1));
    assert!(crashed(&answered_by[1]));
    assert_eq!(answered_by[2], Ok(2));
    assert!(crashed(&answered_by[3]));
    assert_eq!(answered_by[4], Ok(3));
    let stats = injector.stats();
    assert_eq!(stats.calls, 5);
    assert_eq!(stats.start_attempts, 3);
    assert_eq!(stats.count(FaultKind::Panic), 2);
}

#[tokio::test(start_paused = true)]
async fn schedules_take_precedence_over_probabilities() {
    let plan = FaultPlan::builder()
        .probability(Fault::Error, 1.0)
        .on_call(2, Fault::Slow(Duration::from_secs(1)))
        .build()
        .unwrap();
    let mut harness = Harness::start(&injector(plan)).await;
    assert!(matches!(
        harness.worker.ask(search("q")).await,
        Err(AskError::Failed { .. })
    ));
    let asked = Instant::now();
    assert!(harness.worker.ask(search("q")).await.is_ok());
    assert_eq!(asked.elapsed(), Duration::from_secs(1));
    assert!(matches!(
        harness.worker.ask(search("q")).await,
        Err(AskError::Failed { .. })
    ));
    let marks: Vec<_> = harness.asks().into_iter().map(|ask| ask.injected).collect();
    assert_eq!(
        marks,
        [
            Some("error".into()),
            Some("slow".into()),
            Some("error".into())
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn an_empty_plan_injects_nothing() {
    let injector = injector(FaultPlan::none());
    let mut harness = Harness::start(&injector).await;
    let tasks = (0..20)
        .map(|n| if n % 2 == 0 { search("q") } else { write("w") })
        .collect();
    assert!(marks(&mut harness, tasks).await.iter().all(Option::is_none));
    assert_eq!(injector.stats().calls, 20);
    assert_eq!(injector.stats().total_injected(), 0);
}
