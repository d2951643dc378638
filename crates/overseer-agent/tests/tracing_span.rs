//! Each ask is one tracing span named `ask` carrying agent, task type, the ask event's id,
//! outcome, latency, usage and the model named as fields.

mod common;

use common::*;
use overseer_agent::Usage;
use span_capture::{Fields, Spans};

mod span_capture;

#[tokio::test(start_paused = true)]
async fn each_ask_is_one_span_with_its_outcome_latency_and_usage() {
    let spans = Spans::named("ask");
    let _guard = spans.capture();

    let system = tester_system().await;
    let mut events = system.subscribe();
    let tester = system.agent_ref::<Tester>("tester").unwrap();
    tester
        .ask(Task::Spend(Usage::new(12, 3, 40)))
        .await
        .unwrap();
    let _ = tester.ask(Task::Fail("no")).await;

    let spans = spans.recorded();
    let asks: Vec<&Fields> = spans.iter().map(|(_, fields)| fields).collect();
    assert_eq!(asks.len(), 2, "{asks:#?}");
    let spend = asks[0];
    assert_eq!(spend["agent"], "tester");
    assert_eq!(spend["task_type"], "spend");
    assert_eq!(spend["outcome"], "ok");
    assert_eq!(spend["input_tokens"], "12");
    assert_eq!(spend["output_tokens"], "3");
    assert_eq!(spend["cost_micros"], "40");
    assert_eq!(spend["model"], "test-model");
    assert!(spend.contains_key("latency_us"));
    assert_eq!(asks[1]["outcome"], "failed");
    assert!(!asks[1].contains_key("model"), "no model named: no field");
    assert_eq!(asks[1]["task_type"], "trouble");
    // Each span names its ask event's id (`event_id`), so its lines join the event stream.
    let mut ids = Vec::new();
    while let Ok(event) = events.try_recv() {
        if let overseer_agent::SystemEvent::Ask(ask) = event {
            ids.push(ask.id.get().to_string());
        }
    }
    let span_ids: Vec<&str> = asks
        .iter()
        .map(|fields| fields["event_id"].as_str())
        .collect();
    assert_eq!(span_ids, ids);
}

/// Asks the tester from inside its own handler.
struct Lead {
    tester: overseer_agent::AgentRef<Tester>,
}

impl overseer_agent::Agent for Lead {
    type Task = String;
    type Output = String;

    async fn handle(
        &mut self,
        _: &mut overseer_agent::AgentContext,
        text: String,
    ) -> Result<String, overseer_agent::AgentError> {
        let echoed = self.tester.ask(Task::Echo(text)).await;
        echoed.map_err(|error| overseer_agent::AgentError::failed(error.to_string()))
    }
}

#[tokio::test(start_paused = true)]
async fn an_ask_made_inside_a_handler_is_a_child_span_of_the_ask_it_serves() {
    let spans = Spans::named("ask");
    let _guard = spans.capture();

    let system = overseer_agent::System::builder().build().unwrap();
    let tester_child = system
        .agent(overseer_agent::AgentSpec::new("tester", Tester::new))
        .unwrap();
    let tester = system.agent_ref::<Tester>("tester").unwrap();
    let lead = overseer_agent::AgentSpec::new("lead", move || Lead {
        tester: tester.clone(),
    });
    let root = overseer_supervisor::SupervisorSpec::one_for_one("root")
        .child(tester_child)
        .child(system.agent(lead).unwrap());
    system.start(root).await.unwrap();
    let lead = system.agent_ref::<Lead>("lead").unwrap();
    assert_eq!(lead.ask("hi".into()).await.as_deref(), Ok("hi"));

    let spans = spans.recorded();
    let (lead_span, lead_fields) = spans
        .iter()
        .find(|(_, fields)| fields.get("agent").map(String::as_str) == Some("lead"))
        .expect("the lead's ask span");
    assert_eq!(
        lead_fields.get("parent_span"),
        None,
        "the request is a root"
    );
    let (_, tester_fields) = spans
        .iter()
        .find(|(_, fields)| fields.get("agent").map(String::as_str) == Some("tester"))
        .expect("the nested ask's span");
    assert_eq!(
        tester_fields.get("parent_span"),
        Some(&lead_span.to_string()),
        "{tester_fields:?}"
    );
}
