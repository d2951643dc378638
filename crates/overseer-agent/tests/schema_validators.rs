//! JSON Schema validators on an agent's outputs, per task type (feature `schema`):
//! `cargo test -p overseer-agent --features schema --test schema_validators`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use overseer_agent::{Agent, AgentContext, AgentError, AgentSpec, AskError, System};
use overseer_breaker::{BreakerConfig, BreakerRegistry, State};
use overseer_supervisor::SupervisorSpec;
use serde_json::json;

/// Answers from a script, in turn; `report` tasks and `note` tasks.
struct Writer(Arc<Mutex<VecDeque<&'static str>>>);

impl Agent for Writer {
    type Task = &'static str;
    type Output = String;

    fn task_type(task: &&'static str) -> &'static str {
        task
    }

    async fn handle(
        &mut self,
        _: &mut AgentContext,
        _: &'static str,
    ) -> Result<String, AgentError> {
        let next = self.0.lock().unwrap().pop_front().unwrap_or("{}");
        Ok(next.to_string())
    }
}

fn report_schema() -> serde_json::Value {
    json!({
        "type": "object",
        "properties": {"sources": {"type": "array", "items": {"type": "string"}, "minItems": 1}},
        "required": ["sources"]
    })
}

#[tokio::test(start_paused = true)]
async fn a_task_types_schema_rejects_what_does_not_match_and_feeds_its_breaker() {
    let breakers =
        BreakerRegistry::new(BreakerConfig::default().consecutive_failures(Some(2))).unwrap();
    let system = System::builder().breakers(breakers).build().unwrap();
    let script = Arc::new(Mutex::new(VecDeque::from([
        r#"{"sources": ["https://example.org"]}"#,
        "not json at all",
        "plain words",
        r#"{"sources": [42]}"#,
    ])));
    let s = Arc::clone(&script);
    let spec = AgentSpec::new("writer", move || Writer(Arc::clone(&s)))
        .task_schema("report", &report_schema())
        .unwrap();
    system
        .start(SupervisorSpec::one_for_one("root").child(system.agent(spec).unwrap()))
        .await
        .unwrap();
    let writer = system.agent_ref::<Writer>("writer").unwrap();
    // A matching report is returned as it is.
    assert_eq!(
        writer.ask("report").await.unwrap(),
        r#"{"sources": ["https://example.org"]}"#
    );
    // Not JSON: refused, with why.
    match writer.ask("report").await.unwrap_err() {
        AskError::Failed {
            error: AgentError::InvalidOutput(reason),
            ..
        } => assert!(reason.starts_with("not JSON"), "{reason}"),
        other => panic!("{other:?}"),
    }
    // Another task type has no schema: plain words are fine.
    assert_eq!(writer.ask("note").await.unwrap(), "plain words");
    // A mismatch names its place; the second failure of `report` opens its breaker.
    match writer.ask("report").await.unwrap_err() {
        AskError::Failed {
            error: AgentError::InvalidOutput(reason),
            ..
        } => assert!(reason.contains("/sources/0"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        writer.ask("report").await,
        Err(AskError::BreakerOpen {
            state: State::Open,
            ..
        })
    ));
    assert_eq!(writer.ask("note").await.unwrap(), "{}");
    system.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[test]
fn an_invalid_schema_is_refused_when_the_spec_is_built() {
    let spec = AgentSpec::new("writer", || Writer(Arc::default()))
        .output_schema(&json!({"type": "no-such-type"}));
    assert!(spec.is_err());
}
