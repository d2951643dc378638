//! Watching a busy system at a few percent of the ask's cost: the stream of every event but
//! answered asks' (`System::subscribe_unanswered`), and the agents' counts of their asks with a
//! sample of latencies (`System::ask_tallies`). Paused clock.

mod common;

use std::time::Duration;

use common::*;
use overseer_agent::{
    Agent, AgentContext, AgentError, AgentRef, AgentSpec, AskOutcome, System, SystemEvent,
};
use overseer_supervisor::SupervisorSpec;

fn asks(events: &[SystemEvent]) -> Vec<&overseer_agent::AskEvent> {
    events
        .iter()
        .filter_map(|event| match event {
            SystemEvent::Ask(ask) => Some(ask),
            _ => None,
        })
        .collect()
}

/// Hands its task on to the tester and answers with the tester's answer.
struct Relay {
    tester: AgentRef<Tester>,
}

impl Agent for Relay {
    type Task = Task;
    type Output = String;

    async fn handle(&mut self, _: &mut AgentContext, task: Task) -> Result<String, AgentError> {
        self.tester
            .ask(task)
            .await
            .map_err(|error| AgentError::failed(error.to_string()))
    }
}

async fn relay_system() -> System {
    let system = System::builder()
        .ask_timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let tester_child = system.agent(AgentSpec::new("tester", Tester::new)).unwrap();
    let tester = system.agent_ref::<Tester>("tester").unwrap();
    let relay = AgentSpec::new("relay", move || Relay {
        tester: tester.clone(),
    });
    let root = SupervisorSpec::one_for_one("root")
        .child(tester_child)
        .child(system.agent(relay).unwrap());
    system.start(root).await.unwrap();
    system
}

#[tokio::test(start_paused = true)]
async fn the_unanswered_stream_leaves_out_answers_and_keeps_failures_with_their_parents() {
    let system = relay_system().await;
    let mut unanswered = system.subscribe_unanswered();
    let relay = system.agent_ref::<Relay>("relay").unwrap();
    relay.ask(Task::Echo("fine".into())).await.unwrap();
    let tester = system.agent_ref::<Tester>("tester").unwrap();
    tester.tell(Task::Echo("told".into())).unwrap();
    tester.ask(Task::Echo("direct".into())).await.unwrap();
    assert!(
        drain(&mut unanswered).is_empty(),
        "answered asks and tells publish nothing to it"
    );

    relay.ask(Task::Fail("no")).await.unwrap_err();
    let events = drain(&mut unanswered);
    let failed = asks(&events);
    assert_eq!(failed.len(), 2, "{events:?}");
    let nested = failed.iter().find(|ask| ask.agent.as_str() == "tester");
    let outer = failed.iter().find(|ask| ask.agent.as_str() == "relay");
    let (Some(nested), Some(outer)) = (nested, outer) else {
        panic!("the tester's and the relay's failures: {failed:?}")
    };
    assert!(failed.iter().all(|ask| ask.outcome != AskOutcome::Ok));
    assert_eq!(
        (nested.parent, nested.request),
        (Some(outer.id), Some(outer.id)),
        "a failed nested ask names the ask it served, with no subscriber to every event"
    );
}

#[tokio::test(start_paused = true)]
async fn a_subscriber_to_every_event_beside_it_still_gets_every_ask() {
    let system = relay_system().await;
    let mut unanswered = system.subscribe_unanswered();
    let mut every = system.subscribe();
    let relay = system.agent_ref::<Relay>("relay").unwrap();
    relay.ask(Task::Echo("fine".into())).await.unwrap();
    relay.ask(Task::Fail("no")).await.unwrap_err();
    assert_eq!(
        asks(&drain(&mut every)).len(),
        4,
        "two asks, each nested once"
    );
    let failures = drain(&mut unanswered);
    assert_eq!(asks(&failures).len(), 2, "{failures:?}");
    // The subscriber to every event gone, answers are built for nobody and published nowhere.
    drop(every);
    relay.ask(Task::Echo("fine".into())).await.unwrap();
    assert!(drain(&mut unanswered).is_empty());
}

#[tokio::test(start_paused = true)]
async fn tallies_count_every_ask_that_ended_from_their_first_reading_on() {
    let system = tester_system().await;
    let tester = system.agent_ref::<Tester>("tester").unwrap();
    for _ in 0..5 {
        tester.ask(Task::Echo("before".into())).await.unwrap();
    }
    let tallies = system.ask_tallies();
    let first = tallies.read();
    assert_eq!(first.len(), 1);
    assert_eq!(
        (first[0].agent.as_str(), first[0].ended),
        ("tester", 0),
        "nothing is counted before the first reading"
    );
    assert!(first[0].latency.is_empty());
    for _ in 0..8 {
        tester
            .ask(Task::Slow(Duration::from_millis(40)))
            .await
            .unwrap();
    }
    let slow = tallies.read().remove(0);
    assert_eq!(slow.ended, 8);
    let sampled = slow.latency.since(&first[0].latency);
    assert_eq!(
        sampled.count(),
        2,
        "one in four (the first of the reading among them)"
    );
    let p50 = sampled.quantile(0.5).unwrap();
    assert!(
        p50.abs_diff(Duration::from_millis(40)) <= Duration::from_millis(3),
        "the slow asks' latency: {p50:?}"
    );
    // Failures and tells count too; each reading's first ask is timed.
    tester.ask(Task::Fail("no")).await.unwrap_err();
    tester.tell(Task::Echo("told".into())).unwrap();
    yield_until("the tell is counted", || tallies.read()[0].ended == 10).await;
    let last = tallies.read().remove(0);
    assert_eq!(last.latency.since(&slow.latency).count(), 2);
    // With the last reader gone, nothing is counted; a new reader sees the count go on.
    drop(tallies);
    tester.ask(Task::Echo("uncounted".into())).await.unwrap();
    let again = system.ask_tallies();
    let two = system.ask_tallies();
    drop(two);
    tester.ask(Task::Echo("counted".into())).await.unwrap();
    assert_eq!(again.read()[0].ended, 11, "one reader left still counts");
    system.shutdown(Duration::from_secs(5)).await.unwrap();
    drop(system);
    assert!(again.read().is_empty(), "the system gone, nothing to read");
}

#[tokio::test(start_paused = true)]
async fn after_shutdown_a_new_subscriber_to_the_unanswered_stream_is_told_it_ended() {
    let system = tester_system().await;
    let mut before = system.subscribe_unanswered();
    system.shutdown(Duration::from_secs(5)).await.unwrap();
    let mut after = system.subscribe_unanswered();
    assert!(matches!(
        after.recv().await,
        Err(tokio::sync::broadcast::error::RecvError::Closed)
    ));
    loop {
        match before.recv().await {
            Ok(_) => continue,
            Err(error) => {
                assert_eq!(error, tokio::sync::broadcast::error::RecvError::Closed);
                break;
            }
        }
    }
}
