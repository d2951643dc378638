//! The console's probes over real HTTP on loopback: `/readyz` answers 200 while the system is
//! up and 503 once its kill switch trips or it shuts down; `/healthz` lists the agents.

use std::time::Duration;

use overseer_agent::{Agent, AgentContext, AgentError, AgentSpec, System};
use overseer_budget::{Budget, TripReason};
use overseer_console::{Console, ConsoleConfig, ConsoleError};
use overseer_supervisor::SupervisorSpec;
use serde_json::Value;

mod support;

struct Idle;

impl Agent for Idle {
    type Task = ();
    type Output = ();

    async fn handle(&mut self, _: &mut AgentContext, _: ()) -> Result<(), AgentError> {
        Ok(())
    }
}

/// One GET on loopback: the status code and the JSON body (the support module's client).
async fn get(console: &Console, path: &str) -> (u16, Value) {
    support::json(console, "GET", path, &[]).await
}

async fn system_with(budget: &Budget) -> System {
    let system = System::builder().budget(budget.clone()).build().unwrap();
    let root = SupervisorSpec::one_for_one("root")
        .child(system.agent(AgentSpec::new("idle", || Idle)).unwrap());
    system.start(root).await.unwrap();
    system
}

/// A system with a budget and one agent, and its console on a free loopback port.
async fn served() -> (Budget, System, Console) {
    let budget = Budget::builder().build().unwrap();
    let system = system_with(&budget).await;
    let addr = "127.0.0.1:0".parse().unwrap();
    let console = Console::serve(&system, addr, ConsoleConfig::default())
        .await
        .unwrap();
    (budget, system, console)
}

#[tokio::test]
async fn readyz_answers_200_while_up_and_503_after_a_trip() {
    let (budget, _system, console) = served().await;
    let (status, body) = get(&console, "/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ready"], true);
    assert_eq!(body["agents"], 1);

    let (status, body) = get(&console, "/healthz").await;
    assert_eq!(status, 200);
    assert_eq!(body["agents"][0]["agent"], "idle");
    assert_eq!(body["agents"][0]["health"], "unchecked");

    budget.trip(TripReason::Manual {
        reason: "operator".into(),
    });
    let (status, body) = get(&console, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["ready"], false);
    assert!(
        body["tripped"]
            .as_str()
            .is_some_and(|why| why.contains("operator")),
        "{body}"
    );
    console.shutdown().await;
}

#[tokio::test]
async fn readyz_answers_503_once_the_system_is_shut_down_or_gone() {
    let (_budget, system, console) = served().await;
    system.shutdown(Duration::from_secs(5)).await.unwrap();
    let (status, body) = get(&console, "/readyz").await;
    assert_eq!(status, 503);
    assert_eq!(body["running"], false);
    drop(system);
    let (status, body) = get(&console, "/readyz").await;
    assert_eq!(status, 503);
    assert_eq!(body["error"], "the system is gone");
}

#[tokio::test]
async fn an_address_in_use_is_a_typed_error() {
    let (_budget, system, first) = served().await;
    let taken = first.local_addr();
    let second = Console::serve(&system, taken, ConsoleConfig::default()).await;
    assert!(
        matches!(second, Err(ConsoleError::Bind { addr, .. }) if addr == taken),
        "{second:?}"
    );
    first.shutdown().await;
}
