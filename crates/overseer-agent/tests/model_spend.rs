//! What a model call costs reaches the budget even when its answer is lost: a client that says
//! a processed request's answer was lost (`ModelError::ReplayUnsafe`) has what it spent
//! committed, never nothing; and a client's own estimate is what a durable model call reserves.

use std::time::Duration;

use overseer_agent::{
    Agent, AgentContext, AgentError, AgentSpec, ModelClient, ModelError, ModelRequest,
    ModelResponse, System, Usage,
};
use overseer_budget::{Budget, Dimension, Limits};
use overseer_supervisor::SupervisorSpec;

/// A provider whose answers are always lost after the request was processed.
#[derive(Clone)]
struct LosingModel;

impl ModelClient for LosingModel {
    async fn complete(&self, _: ModelRequest) -> Result<ModelResponse, ModelError> {
        Err(ModelError::ReplayUnsafe {
            message: "the stream was cut before its usage".into(),
            spent: Usage::new(300, 200, 9),
        })
    }

    fn estimate(&self, _: &ModelRequest) -> Option<Usage> {
        Some(Usage::new(300, 200, 9))
    }
}

struct Writer;

impl Agent for Writer {
    type Task = String;
    type Output = String;

    async fn handle(
        &mut self,
        ctx: &mut AgentContext,
        topic: String,
    ) -> Result<String, AgentError> {
        let answer = ctx.model(&LosingModel, ModelRequest::new(topic)).await?;
        Ok(answer.text)
    }
}

#[tokio::test(start_paused = true)]
async fn a_lost_answer_is_charged_what_the_client_says_it_spent() {
    let budget = Budget::builder()
        .process_limits(Limits::new().tokens(1_000_000))
        .build()
        .unwrap();
    let system = System::builder()
        .budget(budget.clone())
        .ask_timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let spec = SupervisorSpec::one_for_one("root")
        .child(system.agent(AgentSpec::new("writer", || Writer)).unwrap());
    system.start(spec).await.unwrap();
    let writer = system.agent_ref::<Writer>("writer").unwrap();

    let answer = writer.ask("news".into()).await;
    assert!(answer.is_err(), "{answer:?}");
    let process = budget.process();
    assert_eq!(
        process.committed(Dimension::Tokens),
        500,
        "the lost call's spend is committed"
    );
    assert_eq!(process.reserved(Dimension::Tokens), 0);
    system.shutdown(Duration::from_secs(5)).await.unwrap();
}
