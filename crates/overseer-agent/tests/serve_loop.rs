//! An incarnation serves its queue in one long-running handler, woken without a message: what
//! ractor takes between messages must still reach it. A polite stop, a group restart's park
//! and a terminate reach an agent that is waiting for work, at once. Paused clock.

mod common;

use std::time::Duration;

use common::*;
use overseer_agent::{AgentSpec, System, SystemEvent};
use overseer_supervisor::{EventKind, ExitReason, SupervisorSpec};
use tokio::time::Instant;

fn stops(events: &mut tokio::sync::broadcast::Receiver<SystemEvent>) -> Vec<(String, ExitReason)> {
    let mut stops = Vec::new();
    while let Ok(event) = events.try_recv() {
        if let SystemEvent::Lifecycle(event) = event {
            if let EventKind::Stopped { reason } = event.kind {
                stops.push((event.path.to_string(), reason));
            }
        }
    }
    stops
}

#[tokio::test(start_paused = true)]
async fn a_shutdown_stops_an_agent_waiting_for_work_politely_and_at_once() {
    let system = tester_system().await;
    let mut events = system.subscribe();
    let tester = system.agent_ref::<Tester>("tester").unwrap();
    // Its serve loop has started and waits for the next task.
    assert_eq!(
        tester.ask(Task::Echo("one".into())).await.as_deref(),
        Ok("one")
    );
    let asked = Instant::now();
    system.shutdown(Duration::from_secs(30)).await.unwrap();
    assert_eq!(
        asked.elapsed(),
        Duration::ZERO,
        "not at the shutdown deadline"
    );
    let stopped = stops(&mut events);
    assert!(
        stopped.contains(&("root/tester".to_string(), ExitReason::Shutdown)),
        "stopped politely, not killed: {stopped:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_group_restart_parks_a_waiting_agent_and_the_rebuilt_one_serves() {
    let system = System::builder()
        .ask_timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let root = SupervisorSpec::one_for_all("root")
        .intensity(10, Duration::from_secs(1))
        .child(system.agent(AgentSpec::new("tester", Tester::new)).unwrap())
        .child(
            system
                .agent(AgentSpec::new("crasher", Tester::new))
                .unwrap(),
        );
    system.start(root).await.unwrap();
    let tester = system.agent_ref::<Tester>("tester").unwrap();
    let crasher = system.agent_ref::<Tester>("crasher").unwrap();
    // Both loops are waiting for work when the crasher's crash restarts the group.
    assert_eq!(tester.ask(Task::Incarnation).await.as_deref(), Ok("first"));
    let asked = Instant::now();
    assert!(crasher.ask(Task::Panic("boom")).await.is_err());
    let rebuilt = tester.ask(Task::Incarnation).await;
    assert_eq!(
        rebuilt.as_deref(),
        Ok("after shutdown"),
        "rebuilt by the group restart"
    );
    assert_eq!(
        asked.elapsed(),
        Duration::ZERO,
        "parked at once, not at a deadline"
    );
}

#[tokio::test(start_paused = true)]
async fn a_terminated_agent_waiting_for_work_stops_at_once() {
    let system = tester_system().await;
    let tester = system.agent_ref::<Tester>("tester").unwrap();
    assert!(tester.ask(Task::Echo("x".into())).await.is_ok());
    let root = system.tree().unwrap().root().clone();
    let asked = Instant::now();
    root.terminate_child("tester").await.unwrap();
    assert_eq!(asked.elapsed(), Duration::ZERO);
    assert!(tester.ask(Task::Echo("y".into())).await.is_err());
}
