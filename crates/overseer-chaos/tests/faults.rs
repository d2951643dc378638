//! Each fault, end to end through a real `System`, on a paused clock: what the caller gets,
//! what happens to the agent, and how the ask's event marks it.

mod common;

use std::time::Duration;

use common::*;
use overseer_agent::{AgentError, AskError, AskOutcome, SystemError, Usage};
use overseer_chaos::{Fault, FaultInjector, FaultKind, FaultPlan};
use overseer_supervisor::{EventKind, ExitReason, SupervisorSpec};
use tokio::time::Instant;

fn injector(plan: FaultPlan) -> FaultInjector<Worker> {
    FaultInjector::new(plan, 7).expect("a valid injector")
}

fn on_call(call: u64, fault: Fault) -> FaultInjector<Worker> {
    injector(FaultPlan::builder().on_call(call, fault).build().unwrap())
}

fn reply(text: &str, incarnation: u32) -> Result<Reply, AskError> {
    Ok(Reply {
        text: text.to_string(),
        incarnation,
    })
}

fn stopped_reasons(harness: &mut Harness) -> Vec<ExitReason> {
    harness
        .lifecycle()
        .into_iter()
        .filter_map(|event| match event.kind {
            EventKind::Stopped { reason } => Some(reason),
            _ => None,
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn an_injected_panic_crashes_the_agent_and_it_is_restarted() {
    let injector = on_call(1, Fault::Panic);
    let mut harness = Harness::start(&injector).await;
    let asked = Instant::now();
    assert_eq!(
        harness.worker.ask(search("q")).await,
        Err(AskError::Crashed {
            agent: "worker".into(),
            reason: ExitReason::Panicked("injected panic (call 1)".into())
        })
    );
    assert_eq!(
        asked.elapsed(),
        Duration::ZERO,
        "at once, not at the deadline"
    );
    assert_eq!(harness.worker.ask(search("q")).await, reply("q", 2));

    let asks = harness.asks();
    assert_eq!(asks.len(), 2);
    assert_eq!(asks[0].injected.as_deref(), Some("panic"));
    assert_eq!(kind(&asks[0].outcome), Some("crashed"));
    assert_eq!(asks[1].injected, None);
    assert_eq!(injector.stats().count(FaultKind::Panic), 1);
}

#[tokio::test(start_paused = true)]
async fn an_injected_error_fails_the_task_and_the_agent_carries_on() {
    let injector = on_call(1, Fault::Error);
    let mut harness = Harness::start(&injector).await;
    assert_eq!(
        harness.worker.ask(search("q")).await,
        Err(AskError::Failed {
            agent: "worker".into(),
            error: AgentError::failed("injected error (call 1)")
        })
    );
    assert_eq!(
        harness.worker.ask(search("q")).await,
        reply("q", 1),
        "same incarnation"
    );
    let asks = harness.asks();
    assert_eq!(asks[0].injected.as_deref(), Some("error"));
    assert_eq!(asks[1].injected, None);
}

#[tokio::test(start_paused = true)]
async fn an_injected_fatal_error_crashes_the_agent() {
    let injector = on_call(1, Fault::Fatal);
    let mut harness = Harness::start(&injector).await;
    assert_eq!(
        harness.worker.ask(search("q")).await,
        Err(AskError::Crashed {
            agent: "worker".into(),
            reason: ExitReason::Failed("injected fatal error (call 1)".into())
        })
    );
    assert_eq!(harness.worker.ask(search("q")).await, reply("q", 2));
    assert_eq!(harness.asks()[0].injected.as_deref(), Some("fatal"));
}

#[tokio::test(start_paused = true)]
async fn an_injected_hang_times_out_at_the_deadline_and_the_agent_is_stopped_as_hung() {
    let injector = on_call(1, Fault::Hang);
    let mut harness = Harness::start(&injector).await;
    let asked = Instant::now();
    assert_eq!(
        harness
            .worker
            .ask_within(search("q"), Duration::from_secs(2))
            .await,
        Err(AskError::Timeout {
            agent: "worker".into(),
            after: Duration::from_secs(2)
        })
    );
    assert_eq!(asked.elapsed(), Duration::from_secs(2));
    assert_eq!(harness.worker.ask(search("q")).await, reply("q", 2));
    assert_eq!(
        stopped_reasons(&mut harness),
        [ExitReason::TimedOut(Duration::from_secs(2))]
    );
    assert_eq!(injector.stats().count(FaultKind::Hang), 1);
}

/// The hang is marked on the handler's context before it hangs, but the caller's deadline and
/// the handler's deadline fire at the same instant and the caller, answering its own timeout,
/// never sees the mark. Needs `overseer-agent` to carry the mark to the caller's timeout path.
#[tokio::test(start_paused = true)]
async fn an_injected_hang_is_marked_in_its_ask_event() {
    let injector = on_call(1, Fault::Hang);
    let mut harness = Harness::start(&injector).await;
    let outcome = harness
        .worker
        .ask_within(search("q"), Duration::from_secs(2))
        .await;
    assert!(matches!(outcome, Err(AskError::Timeout { .. })));
    assert_eq!(harness.asks()[0].injected.as_deref(), Some("hang"));
}

#[tokio::test(start_paused = true)]
async fn an_injected_delay_answers_after_the_delay() {
    let injector = on_call(1, Fault::Slow(Duration::from_secs(3)));
    let mut harness = Harness::start(&injector).await;
    let asked = Instant::now();
    assert_eq!(harness.worker.ask(search("q")).await, reply("q", 1));
    assert_eq!(asked.elapsed(), Duration::from_secs(3));
    let asked = Instant::now();
    assert_eq!(harness.worker.ask(search("q")).await, reply("q", 1));
    assert_eq!(asked.elapsed(), Duration::ZERO);

    let asks = harness.asks();
    assert_eq!(asks[0].injected.as_deref(), Some("slow"));
    assert_eq!(asks[0].latency, Duration::from_secs(3));
    assert!(asks[0].outcome.is_ok());
    assert_eq!(asks[0].usage, USAGE, "the agent still did the work");
    assert_eq!(asks[1].injected, None);
}

#[tokio::test(start_paused = true)]
async fn an_injected_delay_past_the_deadline_is_a_timeout() {
    let injector = on_call(1, Fault::Slow(Duration::from_secs(30)));
    let mut harness = Harness::start(&injector).await;
    let outcome = harness
        .worker
        .ask_within(search("q"), Duration::from_secs(1))
        .await;
    assert!(
        matches!(outcome, Err(AskError::Timeout { .. })),
        "{outcome:?}"
    );
    assert_eq!(stopped_reasons(&mut harness), []);
    assert_eq!(harness.worker.ask(search("q")).await, reply("q", 2));
    assert_eq!(
        stopped_reasons(&mut harness),
        [ExitReason::TimedOut(Duration::from_secs(1))]
    );
}

#[tokio::test(start_paused = true)]
async fn an_injected_corruption_answers_well_formed_but_wrong() {
    let plan = FaultPlan::builder()
        .on_call(2, Fault::Corrupt)
        .build()
        .unwrap();
    let injector = FaultInjector::with_corruptor(plan, 7, |reply: Reply, _rng| Reply {
        text: reply.text.chars().rev().collect(),
        ..reply
    });
    let mut harness = Harness::start(&injector).await;
    assert_eq!(harness.worker.ask(search("abc")).await, reply("abc", 1));
    assert_eq!(harness.worker.ask(search("abc")).await, reply("cba", 1));
    assert_eq!(harness.worker.ask(search("abc")).await, reply("abc", 1));

    let asks = harness.asks();
    let marks: Vec<_> = asks.iter().map(|ask| ask.injected.as_deref()).collect();
    assert_eq!(marks, [None, Some("corrupt"), None]);
    assert!(asks.iter().all(|ask| ask.outcome.is_ok()));
    assert_eq!(injector.stats().count(FaultKind::Corrupt), 1);
}

#[tokio::test(start_paused = true)]
async fn a_corruption_is_not_injected_into_a_task_the_agent_fails() {
    let plan = FaultPlan::builder()
        .on_call(1, Fault::Corrupt)
        .build()
        .unwrap();
    let injector = FaultInjector::with_corruptor(plan, 7, |reply: Reply, _rng| reply);
    let mut harness = Harness::start(&injector).await;
    assert_eq!(
        harness.worker.ask(Task::Fail).await,
        Err(AskError::Failed {
            agent: "worker".into(),
            error: AgentError::failed("a real failure")
        })
    );
    assert_eq!(harness.asks()[0].injected, None, "a real failure");
    assert_eq!(injector.stats().total_injected(), 0);
}

#[tokio::test(start_paused = true)]
async fn inflated_usage_is_reported_in_the_ask_event() {
    let injector = on_call(1, Fault::InflateUsage(3));
    let mut harness = Harness::start(&injector).await;
    assert_eq!(harness.worker.ask(search("q")).await, reply("q", 1));
    assert_eq!(harness.worker.ask(search("q")).await, reply("q", 1));

    let asks = harness.asks();
    assert_eq!(
        asks[0].usage,
        Usage::new(300, 60, 150),
        "3 x what the agent reported"
    );
    assert_eq!(asks[0].injected.as_deref(), Some("inflate_usage"));
    assert_eq!(asks[1].usage, USAGE);
    assert_eq!(asks[1].injected, None);
}

#[tokio::test(start_paused = true)]
async fn a_real_failure_is_not_marked_and_an_injected_one_is() {
    let injector = on_call(2, Fault::Error);
    let mut harness = Harness::start(&injector).await;
    let real = harness.worker.ask(Task::Fail).await;
    let injected = harness.worker.ask(Task::Fail).await;
    assert!(matches!(real, Err(AskError::Failed { .. })));
    assert!(matches!(injected, Err(AskError::Failed { .. })));

    let asks = harness.asks();
    assert_eq!(kind(&asks[0].outcome), Some("failed"));
    assert_eq!(kind(&asks[1].outcome), Some("failed"));
    assert_eq!(asks[0].injected, None);
    assert_eq!(asks[1].injected.as_deref(), Some("error"));
}

fn kind(outcome: &AskOutcome) -> Option<&str> {
    match outcome {
        AskOutcome::Ok => None,
        AskOutcome::Error { kind, .. } => Some(kind),
    }
}

#[tokio::test(start_paused = true)]
async fn injected_start_failures_are_retried_by_the_supervisor() {
    let plan = FaultPlan::builder()
        .on_call(1, Fault::Panic)
        .fail_start_on_attempts(2..=3)
        .build()
        .unwrap();
    let injector = injector(plan);
    let mut harness = Harness::start(&injector).await;
    assert!(matches!(
        harness.worker.ask(search("q")).await,
        Err(AskError::Crashed { .. })
    ));
    // Made for attempts 2 and 3 (both failed), then 4.
    assert_eq!(harness.worker.ask(search("q")).await, reply("q", 4));

    let start_failures: Vec<_> = harness
        .lifecycle()
        .into_iter()
        .filter_map(|event| match event.kind {
            EventKind::StartFailed { error } => Some(error),
            _ => None,
        })
        .collect();
    assert_eq!(start_failures.len(), 2, "{start_failures:?}");
    for (error, attempt) in start_failures.iter().zip(2..) {
        let text = error.to_string();
        assert!(
            text.contains(&format!("injected start failure (attempt {attempt})")),
            "{text}"
        );
    }
    let stats = injector.stats();
    assert_eq!(stats.count(FaultKind::FailStart), 2);
    assert_eq!(stats.start_attempts, 4);
}

#[tokio::test(start_paused = true)]
async fn an_injected_failure_of_the_first_start_fails_the_system_start() {
    let plan = FaultPlan::builder().fail_start_on(1).build().unwrap();
    let outcome = Harness::start_with(
        &injector(plan),
        SupervisorSpec::one_for_one("root").intensity(100, Duration::from_secs(1)),
    )
    .await;
    let Err(SystemError::Tree(error)) = outcome else {
        panic!("expected the tree to fail to start");
    };
    assert!(
        error
            .to_string()
            .contains("injected start failure (attempt 1)"),
        "{error}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_agent_that_never_restarts_is_given_up_on_and_asks_fail() {
    let plan = FaultPlan::builder()
        .on_call(1, Fault::Panic)
        .fail_start_on_attempts(2..=u64::MAX)
        .build()
        .unwrap();
    let injector = injector(plan);
    let mut harness = Harness::start_with(
        &injector,
        SupervisorSpec::one_for_one("root").intensity(3, Duration::from_secs(5)),
    )
    .await
    .unwrap();
    assert!(matches!(
        harness.worker.ask(search("q")).await,
        Err(AskError::Crashed { .. })
    ));
    let after = harness.worker.ask(search("q")).await;
    assert!(
        matches!(
            after,
            Err(AskError::AgentStopped { .. } | AskError::ShutDown)
        ),
        "{after:?}"
    );
    let kinds: Vec<_> = harness
        .lifecycle()
        .into_iter()
        .map(|event| event.kind)
        .collect();
    let start_failures = kinds
        .iter()
        .filter(|kind| matches!(kind, EventKind::StartFailed { .. }))
        .count();
    assert!(start_failures >= 3, "{kinds:?}");
    assert!(
        kinds
            .iter()
            .any(|kind| matches!(kind, EventKind::Escalated { .. })),
        "{kinds:?}"
    );
    assert_eq!(
        injector.stats().count(FaultKind::FailStart) as usize,
        start_failures
    );
}
