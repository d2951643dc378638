//! A model-calling test agent: a provider-like model that reports cached tokens and a finish
//! reason (or a rate limit), or a scripted one. Public API only.
#![allow(dead_code)]
#![allow(unreachable_pub)] // `pub` for the test files that include it: nothing here is API

use std::time::Duration;

use overseer_agent::{
    Agent, AgentContext, AgentError, AgentSpec, AskEvent, FinishReason, ModelClient, ModelError,
    ModelRequest, ModelResponse, ScriptedModel, System, SystemEvent, Usage,
};
use overseer_supervisor::SupervisorSpec;

/// A provider-like model: asks for `gpt-4o-mini`, answers as its dated version, with cached
/// prompt tokens and a cut answer; fails when the prompt says so.
#[derive(Debug, Clone)]
pub struct Provider;

impl ModelClient for Provider {
    async fn complete(&self, request: ModelRequest) -> Result<ModelResponse, ModelError> {
        if request.prompt.contains("fail") {
            return Err(ModelError::RateLimited {
                message: "429".into(),
                retry_after: None,
            });
        }
        Ok(ModelResponse::new(
            "a long answer",
            Usage::new(120, 45, 9).with_cached_input_tokens(100),
        )
        .with_finish_reason(FinishReason::Length)
        .with_model("gpt-4o-mini-2024-07-18"))
    }

    fn model_name(&self) -> Option<&str> {
        Some("gpt-4o-mini")
    }
}

pub enum Client {
    Provider,
    Scripted(ScriptedModel),
}

pub struct Caller(pub Client);

impl Agent for Caller {
    type Task = &'static str;
    type Output = String;

    async fn handle(
        &mut self,
        ctx: &mut AgentContext,
        prompt: &'static str,
    ) -> Result<String, AgentError> {
        let request = ModelRequest::new(prompt);
        let answer = match &self.0 {
            Client::Provider => ctx.model(&Provider, request).await,
            Client::Scripted(model) => ctx.model(model, request).await,
        };
        Ok(answer?.text)
    }
}

pub async fn start(client: impl Fn() -> Client + Send + Sync + 'static) -> System {
    let system = System::builder()
        .ask_timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let spec = AgentSpec::new("writer", move || Caller(client()));
    system
        .start(SupervisorSpec::one_for_one("root").child(system.agent(spec).unwrap()))
        .await
        .unwrap();
    system
}

pub fn ask_events(events: &mut tokio::sync::broadcast::Receiver<SystemEvent>) -> Vec<AskEvent> {
    std::iter::from_fn(|| events.try_recv().ok())
        .filter_map(|event| match event {
            SystemEvent::Ask(ask) => Some(ask),
            _ => None,
        })
        .collect()
}
