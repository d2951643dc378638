//! Circuit breakers per agent and task type in the call path. Paused clock.

mod common;

use std::time::Duration;

use common::*;
use overseer_agent::{AgentSpec, AskError, System, SystemEvent};
use overseer_breaker::{Backoff, BreakerConfig, BreakerRegistry, State};
use overseer_supervisor::SupervisorSpec;

fn registry() -> BreakerRegistry {
    BreakerRegistry::new(
        BreakerConfig::default()
            .consecutive_failures(Some(3))
            .open_duration(Backoff::fixed(Duration::from_secs(30)))
            .half_open_probes(1),
    )
    .unwrap()
}

async fn guarded(specs: Vec<AgentSpec<Tester>>) -> System {
    let system = System::builder()
        .ask_timeout(Duration::from_secs(10))
        .breakers(registry())
        .build()
        .unwrap();
    let mut root = SupervisorSpec::one_for_one("root").intensity(100, Duration::from_secs(1));
    for spec in specs {
        root = root.child(system.agent(spec).unwrap());
    }
    system.start(root).await.unwrap();
    system
}

fn breaker_moves(
    rx: &mut tokio::sync::broadcast::Receiver<SystemEvent>,
) -> Vec<(String, State, State)> {
    std::iter::from_fn(|| rx.try_recv().ok())
        .filter_map(|event| match event {
            SystemEvent::Breaker(moved) => Some((moved.task_type, moved.from, moved.to)),
            _ => None,
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn an_agent_failing_at_one_task_type_stops_getting_it_while_its_other_work_goes_on() {
    let system = guarded(vec![AgentSpec::new("a", Tester::new)]).await;
    let mut rx = system.subscribe();
    let a = system.agent_ref::<Tester>("a").unwrap();
    for _ in 0..3 {
        assert!(matches!(
            a.ask(Task::Fail("bad")).await,
            Err(AskError::Failed { .. })
        ));
    }
    // "trouble" tasks are now rejected without reaching the agent...
    let rejected = a.ask(Task::Slow(Duration::ZERO)).await;
    match &rejected {
        Err(AskError::BreakerOpen {
            agent,
            task_type,
            state,
            retry_after,
        }) => {
            assert_eq!(agent.as_str(), "a");
            assert_eq!(task_type, "trouble");
            assert_eq!(*state, State::Open);
            assert_eq!(*retry_after, Some(Duration::from_secs(30)));
        }
        other => panic!("expected BreakerOpen, got {other:?}"),
    }
    // ...while "echo" tasks still succeed.
    assert_eq!(
        a.ask(Task::Echo("fine".into())).await.as_deref(),
        Ok("fine")
    );

    // After the open duration, one probe is admitted; its success closes the breaker.
    tokio::time::advance(Duration::from_secs(30)).await;
    assert_eq!(
        a.ask(Task::Slow(Duration::ZERO)).await.as_deref(),
        Ok("slow")
    );
    assert_eq!(
        a.ask(Task::Slow(Duration::ZERO)).await.as_deref(),
        Ok("slow")
    );
    assert_eq!(
        breaker_moves(&mut rx),
        [
            ("trouble".to_string(), State::Closed, State::Open),
            ("trouble".to_string(), State::Open, State::HalfOpen),
            ("trouble".to_string(), State::HalfOpen, State::Closed),
        ]
    );
    let snapshot = system.breakers().unwrap().snapshot();
    assert_eq!(snapshot.len(), 2, "one breaker per task type used");
    assert!(snapshot
        .iter()
        .all(|breaker| breaker.state == State::Closed));
}

#[tokio::test(start_paused = true)]
async fn a_failed_probe_reopens_the_breaker() {
    let system = guarded(vec![AgentSpec::new("a", Tester::new)]).await;
    let a = system.agent_ref::<Tester>("a").unwrap();
    for _ in 0..3 {
        let _ = a.ask(Task::Fail("bad")).await;
    }
    tokio::time::advance(Duration::from_secs(30)).await;
    assert!(matches!(
        a.ask(Task::Fail("still bad")).await,
        Err(AskError::Failed { .. })
    ));
    assert!(matches!(
        a.ask(Task::Slow(Duration::ZERO)).await,
        Err(AskError::BreakerOpen {
            state: State::Open,
            ..
        })
    ));
}

#[tokio::test(start_paused = true)]
async fn restarting_an_agent_does_not_reset_its_breakers() {
    let system = guarded(vec![AgentSpec::new("a", Tester::new)]).await;
    let a = system.agent_ref::<Tester>("a").unwrap();
    for _ in 0..3 {
        let _ = a.ask(Task::Fail("bad")).await;
    }
    let root = system.tree().unwrap().root();
    root.terminate_child("a").await.unwrap();
    root.restart_child("a").await.unwrap();
    assert!(matches!(
        a.ask(Task::Slow(Duration::ZERO)).await,
        Err(AskError::BreakerOpen { .. })
    ));
}

#[tokio::test(start_paused = true)]
async fn a_crash_and_a_hang_count_as_failures_but_refusals_do_not() {
    let system = guarded(vec![AgentSpec::new("a", Tester::new)]).await;
    let a = system.agent_ref::<Tester>("a").unwrap();
    assert!(a.ask(Task::Panic("boom")).await.is_err());
    assert!(a
        .ask_within(Task::Hang, Duration::from_secs(1))
        .await
        .is_err());
    assert_eq!(
        a.ask(Task::Slow(Duration::ZERO)).await.as_deref(),
        Ok("slow"),
        "2 failures in a row: still closed"
    );
    let snapshot = &system.breakers().unwrap().snapshot()[0];
    assert_eq!(snapshot.failures_in_window, 2);
}

#[tokio::test(start_paused = true)]
async fn an_invalid_output_counts_as_a_failure_for_the_breaker() {
    let spec = AgentSpec::new("a", Tester::new).valid_output(|output: &String| output != "garbage");
    let system = guarded(vec![spec]).await;
    let a = system.agent_ref::<Tester>("a").unwrap();
    for _ in 0..3 {
        assert_eq!(
            a.ask(Task::Echo("garbage".into())).await.as_deref(),
            Ok("garbage")
        );
    }
    assert!(matches!(
        a.ask(Task::Echo("good".into())).await,
        Err(AskError::BreakerOpen { .. })
    ));
}

#[tokio::test(start_paused = true)]
async fn an_ask_falls_back_to_an_alternate_when_the_primary_breaker_is_open() {
    let system = guarded(vec![
        AgentSpec::new("primary", Tester::new),
        AgentSpec::new("backup", Tester::new),
    ])
    .await;
    let primary = system.agent_ref::<Tester>("primary").unwrap();
    let alternates = [system.agent_ref::<Tester>("backup").unwrap()];
    for _ in 0..3 {
        let _ = primary.ask(Task::Fail("bad")).await;
    }
    let answered = primary
        .ask_with_fallback(Task::Echo("routed".into()), &alternates)
        .await
        .unwrap();
    assert_eq!(
        (answered.by.as_str(), answered.output.as_str()),
        ("primary", "routed"),
        "echo is still closed"
    );
    let answered = primary
        .ask_with_fallback(Task::Incarnation, &alternates)
        .await
        .unwrap();
    assert_eq!(
        answered.by.as_str(),
        "backup",
        "the primary's trouble breaker is open"
    );
    // When every agent fails, the last error is returned.
    let failed = primary
        .ask_with_fallback(Task::Fail("x"), &alternates)
        .await;
    assert!(
        matches!(failed, Err(AskError::Failed { ref agent, .. }) if agent.as_str() == "backup")
    );
}
