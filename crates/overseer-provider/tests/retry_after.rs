//! A 429 with `Retry-After: 7` through the HTTP client is a rate limit the agent's retry policy
//! honours: the second request waits at least 7 s of (paused) tokio time, then succeeds.
//!
//! A paused clock and a real socket do not mix on their own: a paused current-thread runtime
//! that waits on IO is idle, so tokio moves its clock to the next timer (the client's timeout,
//! the ask's deadline) before the stub's answer arrives, and the call times out at once. So the
//! HTTP calls here run on a runtime of their own, on the real clock, from a `spawn_blocking`
//! task, during which tokio does not auto-advance the paused clock; the retry loop's sleep is
//! then the only thing the paused clock skips, and the wait it measures is that sleep.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use overseer_agent::retry::{Jitter, RetryPolicy};
use overseer_agent::{
    Agent, AgentContext, AgentError, AgentSpec, ModelClient, ModelError, ModelRequest,
    ModelResponse, System,
};
use overseer_provider::OpenAiCompatible;
use overseer_supervisor::SupervisorSpec;
use serde_json::json;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The HTTP client, called on a real-clock runtime from a blocking task, recording when (in
/// paused tokio time) each call began.
#[derive(Clone)]
struct OnRealClock {
    client: OpenAiCompatible,
    runtime: tokio::runtime::Handle,
    began: Arc<Mutex<Vec<tokio::time::Instant>>>,
}

impl ModelClient for OnRealClock {
    async fn complete(&self, request: ModelRequest) -> Result<ModelResponse, ModelError> {
        self.began.lock().unwrap().push(tokio::time::Instant::now());
        let (client, runtime) = (self.client.clone(), self.runtime.clone());
        tokio::task::spawn_blocking(move || runtime.block_on(client.complete(request)))
            .await
            .unwrap_or_else(|error| Err(ModelError::Provider(error.to_string())))
    }

    fn model_name(&self) -> Option<&str> {
        self.client.model_name()
    }
}

struct Writer(OnRealClock);

impl Agent for Writer {
    type Task = String;
    type Output = String;

    async fn handle(
        &mut self,
        ctx: &mut AgentContext,
        topic: String,
    ) -> Result<String, AgentError> {
        Ok(ctx.model(&self.0, ModelRequest::new(topic)).await?.text)
    }
}

#[tokio::test(start_paused = true)]
async fn a_429_with_retry_after_is_retried_after_that_long_on_a_paused_clock() {
    let server = MockServer::start().await;
    // The first request is rate-limited for 7 s; the next one answers.
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "7")
                .set_body_json(json!({"error": {"message": "slow down", "type": "requests"}})),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "model": "m", "choices": [{"index": 0, "finish_reason": "stop",
            "message": {"role": "assistant", "content": "A poem."}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 3}})))
        .with_priority(2)
        .mount(&server)
        .await;

    let http = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let model = OnRealClock {
        client: OpenAiCompatible::builder(format!("{}/v1", server.uri()), "m")
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap(),
        runtime: http.handle().clone(),
        began: Arc::default(),
    };
    let system = System::builder()
        .ask_timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let policy = RetryPolicy::builder()
        .max_attempts(3)
        .base_delay(Duration::from_millis(100))
        .jitter(Jitter::None)
        .build()
        .unwrap();
    let writer_model = model.clone();
    let spec = AgentSpec::new("writer", move || Writer(writer_model.clone())).retry(policy);
    system
        .start(SupervisorSpec::one_for_one("root").child(system.agent(spec).unwrap()))
        .await
        .unwrap();

    let wall = std::time::Instant::now();
    let asked = tokio::time::Instant::now();
    let answer = system
        .agent_ref::<Writer>("writer")
        .unwrap()
        .ask("a poem".to_string())
        .await
        .unwrap();
    assert_eq!(answer, "A poem.");

    let began = model.began.lock().unwrap().clone();
    assert_eq!(began.len(), 2, "one rate-limited call, one retry");
    let waited = began[1] - began[0];
    assert!(
        waited >= Duration::from_secs(7),
        "the retry waited the provider's Retry-After: {waited:?}"
    );
    assert!(
        waited < Duration::from_secs(8),
        "and not much more (the backoff is 100 ms): {waited:?}"
    );
    assert!(asked.elapsed() >= Duration::from_secs(7));
    assert!(
        wall.elapsed() < Duration::from_secs(7),
        "the paused clock skipped the wait: {:?} of real time",
        wall.elapsed()
    );
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2, "the stub counted both requests");

    system.shutdown(Duration::from_secs(5)).await.unwrap();
    http.shutdown_background();
}
