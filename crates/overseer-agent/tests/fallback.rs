//! `ask_with_fallback`: alternates are asked only after the errors that say the task did not
//! reach a handler (or was declined), and all of them within the caller's one deadline.
//! Paused clock.

mod common;

use std::time::Duration;

use common::*;
use overseer_agent::{AgentSpec, AskError, System};
use overseer_supervisor::SupervisorSpec;

async fn three_agents(timeout: Duration) -> System {
    let system = System::builder().ask_timeout(timeout).build().unwrap();
    let mut root = SupervisorSpec::one_for_one("root").intensity(100, Duration::from_secs(1));
    for name in ["primary", "second", "third"] {
        root = root.child(system.agent(AgentSpec::new(name, Tester::new)).unwrap());
    }
    system.start(root).await.unwrap();
    system
}

#[tokio::test(start_paused = true)]
async fn a_timeout_is_returned_without_asking_an_alternate() {
    let system = three_agents(Duration::from_secs(10)).await;
    let mut events = system.subscribe();
    let primary = system.agent_ref::<Tester>("primary").unwrap();
    let alternates = [system.agent_ref::<Tester>("second").unwrap()];
    let answer = primary.ask_with_fallback(Task::Hang, &alternates).await;
    assert!(
        matches!(&answer, Err(AskError::Timeout { agent, .. }) if agent.as_str() == "primary"),
        "{answer:?}"
    );
    let asked: Vec<String> = std::iter::from_fn(|| events.try_recv().ok())
        .filter_map(|event| match event {
            overseer_agent::SystemEvent::Ask(ask) => Some(ask.agent.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(asked, ["primary"], "the hung task was not re-sent");
    system.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_crash_is_returned_without_asking_an_alternate() {
    let system = three_agents(Duration::from_secs(10)).await;
    let primary = system.agent_ref::<Tester>("primary").unwrap();
    let alternates = [system.agent_ref::<Tester>("second").unwrap()];
    let answer = primary
        .ask_with_fallback(Task::Panic("poison"), &alternates)
        .await;
    assert!(
        matches!(&answer, Err(AskError::Crashed { agent, .. }) if agent.as_str() == "primary"),
        "{answer:?}"
    );
    // The alternate never saw the poison task: it is still its first incarnation.
    assert_eq!(alternates[0].ask(Task::Incarnation).await.unwrap(), "first");
    system.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn every_alternate_shares_the_one_deadline_of_the_call() {
    let system = three_agents(Duration::from_secs(10)).await;
    let primary = system.agent_ref::<Tester>("primary").unwrap();
    let alternates = [
        system.agent_ref::<Tester>("second").unwrap(),
        system.agent_ref::<Tester>("third").unwrap(),
    ];
    // Each agent fails its task after 4 s: the third would start at 8 s and end at 12 s,
    // past the call's 10 s.
    let started = tokio::time::Instant::now();
    let answer = primary
        .ask_with_fallback(Task::SlowFail(Duration::from_secs(4)), &alternates)
        .await;
    assert!(
        matches!(&answer, Err(AskError::Timeout { agent, .. }) if agent.as_str() == "third"),
        "{answer:?}"
    );
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(10),
        "one deadline for the whole call"
    );
    system.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_refusal_or_a_declined_task_falls_back() {
    let system = three_agents(Duration::from_secs(10)).await;
    let primary = system.agent_ref::<Tester>("primary").unwrap();
    let alternates = [system.agent_ref::<Tester>("second").unwrap()];
    system
        .tree()
        .unwrap()
        .root()
        .terminate_child("primary")
        .await
        .unwrap();
    let answered = primary
        .ask_with_fallback(Task::Echo("hi".into()), &alternates)
        .await
        .unwrap();
    assert_eq!(
        answered.by.as_str(),
        "second",
        "a stopped primary falls back"
    );
    system.shutdown(Duration::from_secs(5)).await.unwrap();
}
