//! One timer per agent for its asks' deadlines (`src/deadlines.rs`): every caller still hears
//! at its own deadline, whatever the order its timeouts come in, and the agent's watcher ends
//! once no ask is in flight. Paused clock.

mod common;

use std::time::Duration;

use common::*;
use overseer_agent::AskError;
use tokio::time::Instant;

/// Asks `task` of the tester within `timeout` and returns how long the caller waited and what
/// it heard.
async fn timed(
    tester: &overseer_agent::AgentRef<Tester>,
    task: Task,
    timeout: Duration,
) -> (Duration, Result<String, AskError>) {
    let asked = Instant::now();
    let outcome = tester.ask_within(task, timeout).await;
    (asked.elapsed(), outcome)
}

#[tokio::test(start_paused = true)]
async fn asks_with_different_timeouts_each_end_at_their_own_deadline() {
    let system = tester_system().await;
    let tester = system.agent_ref::<Tester>("tester").unwrap();
    // A long deadline first, then shorter ones: each shorter one re-arms the agent's timer.
    let seconds = [30, 10, 20, 5, 5, 12];
    let asks = seconds
        .iter()
        .map(|&s| timed(&tester, Task::Hang, Duration::from_secs(s)));
    let heard = futures::future::join_all(asks).await;
    for (&s, (waited, outcome)) in seconds.iter().zip(heard) {
        assert_eq!(
            outcome,
            Err(AskError::Timeout {
                agent: "tester".into(),
                after: Duration::from_secs(s)
            })
        );
        assert_eq!(
            waited,
            Duration::from_secs(s),
            "the {s} s ask, not a moment later or sooner"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn an_answer_before_the_deadline_is_heard_at_once_and_the_timer_ends_after() {
    let system = tester_system().await;
    let tester = system.agent_ref::<Tester>("tester").unwrap();
    let metrics = tokio::runtime::Handle::current().metrics();
    let idle = metrics.num_alive_tasks();
    let (waited, outcome) = timed(
        &tester,
        Task::Slow(Duration::from_secs(3)),
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(outcome, Ok("slow".to_string()));
    assert_eq!(waited, Duration::from_secs(3));
    // The agent's watcher still sleeps until the answered ask's deadline, then ends: no task
    // is left for an agent nobody asks.
    assert_eq!(
        metrics.num_alive_tasks(),
        idle + 1,
        "the watcher, until the deadline"
    );
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(metrics.num_alive_tasks(), idle, "the watcher ended");
}
