//! The six guarantees of an ask, each with its own test, plus hang detection. Paused clock.

mod common;

use std::time::Duration;

use common::*;
use overseer_agent::{AgentError, AgentSpec, AskError, SystemEvent};
use overseer_supervisor::{EventKind, ExitReason, Restart};
use tokio::time::Instant;

#[tokio::test(start_paused = true)]
async fn guarantee_1_an_ask_never_waits_past_its_deadline() {
    let system = tester_system().await;
    let tester = system.agent_ref::<Tester>("tester").unwrap();
    let asked = Instant::now();
    let outcome = tester.ask_within(Task::Hang, Duration::from_secs(2)).await;
    assert_eq!(
        outcome,
        Err(AskError::Timeout {
            agent: "tester".into(),
            after: Duration::from_secs(2)
        })
    );
    assert_eq!(
        asked.elapsed(),
        Duration::from_secs(2),
        "not a moment later"
    );
}

#[tokio::test(start_paused = true)]
async fn guarantee_2_an_ask_in_flight_when_the_agent_crashes_fails_at_once_with_the_panic() {
    let system = tester_system().await;
    let tester = system.agent_ref::<Tester>("tester").unwrap();
    let asked = Instant::now();
    let outcome = tester.ask(Task::Panic("model returned garbage")).await;
    assert_eq!(
        outcome,
        Err(AskError::Crashed {
            agent: "tester".into(),
            reason: ExitReason::Panicked("model returned garbage".into())
        })
    );
    assert_eq!(
        asked.elapsed(),
        Duration::ZERO,
        "promptly, not at the deadline"
    );
    let fatal = tester.ask(Task::Fatal("context lost")).await;
    assert_eq!(
        fatal,
        Err(AskError::Crashed {
            agent: "tester".into(),
            reason: ExitReason::Failed("context lost".into())
        })
    );
}

#[tokio::test(start_paused = true)]
async fn guarantee_3_asks_sent_while_the_agent_restarts_wait_for_the_new_incarnation() {
    let system = system_with(AgentSpec::new(
        "tester",
        Tester::slow_to_restart(Duration::from_secs(3)),
    ))
    .await;
    let tester = system.agent_ref::<Tester>("tester").unwrap();
    assert!(tester.ask(Task::Panic("boom")).await.is_err());
    let asked = Instant::now();
    let answer = tester
        .ask_within(Task::Incarnation, Duration::from_secs(5))
        .await;
    assert_eq!(answer.as_deref(), Ok("after panicked: boom"));
    assert_eq!(
        asked.elapsed(),
        Duration::from_secs(3),
        "waited for the restart"
    );

    // Within the deadline only.
    assert!(tester.ask(Task::Panic("boom")).await.is_err());
    let late = tester
        .ask_within(Task::Incarnation, Duration::from_secs(1))
        .await;
    assert!(matches!(late, Err(AskError::Timeout { .. })), "{late:?}");
}

#[tokio::test(start_paused = true)]
async fn guarantee_3_asks_fail_fast_while_restarting_when_configured() {
    let spec = AgentSpec::new("tester", Tester::slow_to_restart(Duration::from_secs(3)))
        .fail_fast_while_restarting(true);
    let system = system_with(spec).await;
    let tester = system.agent_ref::<Tester>("tester").unwrap();
    assert!(tester.ask(Task::Panic("boom")).await.is_err());
    let asked = Instant::now();
    assert_eq!(
        tester.ask(Task::Incarnation).await,
        Err(AskError::Restarting {
            agent: "tester".into()
        })
    );
    assert_eq!(asked.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn guarantee_4_asks_to_a_stopped_or_unknown_agent_fail_at_once() {
    let system = tester_system().await;
    assert_eq!(
        system.agent_ref::<Tester>("nobody").unwrap_err(),
        AskError::UnknownAgent {
            name: "nobody".into()
        }
    );
    struct Other;
    impl overseer_agent::Agent for Other {
        type Task = ();
        type Output = ();
        async fn handle(
            &mut self,
            _: &mut overseer_agent::AgentContext,
            _: (),
        ) -> Result<(), AgentError> {
            Ok(())
        }
    }
    assert!(matches!(
        system.agent_ref::<Other>("tester"),
        Err(AskError::WrongAgentType { .. })
    ));

    let tester = system.agent_ref::<Tester>("tester").unwrap();
    system
        .tree()
        .unwrap()
        .root()
        .terminate_child("tester")
        .await
        .unwrap();
    let asked = Instant::now();
    assert_eq!(
        tester.ask(Task::Echo("hi".into())).await,
        Err(AskError::AgentStopped {
            agent: "tester".into()
        })
    );
    assert_eq!(
        tester.tell(Task::Echo("hi".into())),
        Err(AskError::AgentStopped {
            agent: "tester".into()
        })
    );
    assert_eq!(asked.elapsed(), Duration::ZERO);

    system
        .tree()
        .unwrap()
        .root()
        .restart_child("tester")
        .await
        .unwrap();
    assert_eq!(
        tester.ask(Task::Echo("back".into())).await.as_deref(),
        Ok("back")
    );
}

#[tokio::test(start_paused = true)]
async fn guarantee_5_after_shutdown_every_ask_fails_with_shut_down() {
    let system = tester_system().await;
    let tester = system.agent_ref::<Tester>("tester").unwrap();
    let slow = tokio::spawn({
        let tester = tester.clone();
        async move { tester.ask(Task::Slow(Duration::from_secs(30))).await }
    });
    let queued = tokio::spawn({
        let tester = tester.clone();
        async move { tester.ask(Task::Echo("queued".into())).await }
    });
    tokio::task::yield_now().await;
    system.shutdown(Duration::from_secs(60)).await.unwrap();
    assert_eq!(
        tester.ask(Task::Echo("late".into())).await,
        Err(AskError::ShutDown)
    );
    assert_eq!(
        tester.tell(Task::Echo("late".into())),
        Err(AskError::ShutDown)
    );
    assert_eq!(queued.await.unwrap(), Err(AskError::ShutDown));
    // The task in flight had its 5 s polite stop, then was killed: its caller is told the
    // system shut down, not that the agent crashed.
    assert_eq!(slow.await.unwrap(), Err(AskError::ShutDown));
}

#[tokio::test(start_paused = true)]
async fn guarantee_6_tasks_queued_behind_a_crash_are_handled_by_the_new_incarnation() {
    let system = tester_system().await;
    let tester = system.agent_ref::<Tester>("tester").unwrap();
    let (crash, a, b, c) = tokio::join!(
        tester.ask(Task::Panic("boom")),
        tester.ask(Task::Incarnation),
        tester.ask(Task::Incarnation),
        tester.ask(Task::Echo("c".into())),
    );
    assert!(matches!(crash, Err(AskError::Crashed { .. })));
    assert_eq!(a.as_deref(), Ok("after panicked: boom"));
    assert_eq!(b.as_deref(), Ok("after panicked: boom"));
    assert_eq!(c.as_deref(), Ok("c"));
}

#[tokio::test(start_paused = true)]
async fn guarantee_6_queued_tasks_fail_with_a_typed_error_when_the_agent_is_stopped_for_good() {
    let system =
        system_with(AgentSpec::new("tester", Tester::new).restart(Restart::Temporary)).await;
    let tester = system.agent_ref::<Tester>("tester").unwrap();
    let asked = Instant::now();
    let (crash, queued_1, queued_2) = tokio::join!(
        tester.ask(Task::Panic("boom")),
        tester.ask(Task::Echo("1".into())),
        tester.ask(Task::Echo("2".into())),
    );
    assert!(matches!(crash, Err(AskError::Crashed { .. })));
    let stopped = Err(AskError::AgentStopped {
        agent: "tester".into(),
    });
    assert_eq!(queued_1, stopped);
    assert_eq!(queued_2, stopped);
    assert_eq!(asked.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn a_hung_handler_is_stopped_with_timed_out_and_restarted() {
    let system = tester_system().await;
    let mut events = system.subscribe();
    let tester = system.agent_ref::<Tester>("tester").unwrap();
    let outcome = tester.ask_within(Task::Hang, Duration::from_secs(1)).await;
    assert!(matches!(outcome, Err(AskError::Timeout { .. })));
    assert_eq!(
        tester.ask(Task::Incarnation).await.as_deref(),
        Ok("after timed out after 1s")
    );
    let mut reasons = Vec::new();
    while let Ok(event) = events.try_recv() {
        if let SystemEvent::Lifecycle(event) = event {
            if let EventKind::Stopped { reason } = event.kind {
                reasons.push(reason);
            }
        }
    }
    assert_eq!(reasons, [ExitReason::TimedOut(Duration::from_secs(1))]);
}

#[tokio::test(start_paused = true)]
async fn a_failed_task_leaves_the_agent_running() {
    let system = tester_system().await;
    let tester = system.agent_ref::<Tester>("tester").unwrap();
    assert_eq!(
        tester.ask(Task::Fail("no sources")).await,
        Err(AskError::Failed {
            agent: "tester".into(),
            error: AgentError::failed("no sources")
        })
    );
    assert_eq!(tester.ask(Task::Incarnation).await.as_deref(), Ok("first"));
}
