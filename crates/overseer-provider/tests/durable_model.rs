//! A model call through the HTTP client is a durable step: an agent restarted after the call,
//! and a process restarted after the run, replay the journaled answer and never reach the
//! server again (the stub counts its requests).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use overseer_agent::{Agent, AgentContext, AgentError, AgentSpec, ModelRequest, System};
use overseer_journal::{Journal, JournalConfig, MemStorage, RunId};
use overseer_provider::{OpenAiCompatible, Price, PriceTable};
use overseer_supervisor::SupervisorSpec;
use serde_json::json;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

struct Writer {
    client: OpenAiCompatible,
    crash_after_model: Arc<AtomicBool>,
}

impl Agent for Writer {
    type Task = String;
    type Output = String;

    async fn handle(
        &mut self,
        ctx: &mut AgentContext,
        topic: String,
    ) -> Result<String, AgentError> {
        let answer = ctx
            .model(
                &self.client,
                ModelRequest::new(format!("Write about {topic}")),
            )
            .await?;
        if self.crash_after_model.swap(false, Ordering::SeqCst) {
            panic!("crashed after the model answered");
        }
        Ok(format!(
            "{} ({} micro-units)",
            answer.text, answer.usage.cost_micros
        ))
    }
}

async fn start(storage: MemStorage, client: &OpenAiCompatible, crash: &Arc<AtomicBool>) -> System {
    let journal = Journal::open(storage, JournalConfig::default()).unwrap().0;
    let system = System::builder()
        .ask_timeout(Duration::from_secs(30))
        .journal(journal)
        .build()
        .unwrap();
    let (client, crash) = (client.clone(), Arc::clone(crash));
    let spec = SupervisorSpec::one_for_one("root").child(
        system
            .agent(AgentSpec::new("writer", move || Writer {
                client: client.clone(),
                crash_after_model: Arc::clone(&crash),
            }))
            .unwrap(),
    );
    system.start(spec).await.unwrap();
    system
}

#[tokio::test]
async fn a_replayed_model_call_never_reaches_the_server() {
    let server = MockServer::start().await;
    let completion = json!({"model": "m", "choices": [{"index": 0, "finish_reason": "stop",
        "message": {"role": "assistant", "content": "A poem."}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 3}});
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion))
        .mount(&server)
        .await;
    let client = OpenAiCompatible::builder(format!("{}/v1", server.uri()), "m")
        .prices(PriceTable::new().fallback(Price::per_million(1_000_000, 0, 1_000_000)))
        .build()
        .unwrap();
    let requests = || async { server.received_requests().await.unwrap().len() };
    let crash = Arc::new(AtomicBool::new(true));
    let storage = MemStorage::new();
    let run = RunId::new("poem-1").unwrap();

    // The first incarnation calls the model, then crashes; the next replays the journaled
    // answer.
    let system = start(storage.clone(), &client, &crash).await;
    let writer = system.agent_ref::<Writer>("writer").unwrap();
    let answer = writer.ask_run(run.clone(), "the sea".into()).await.unwrap();
    assert_eq!(answer, "A poem. (13 micro-units)");
    assert_eq!(requests().await, 1, "the restart replayed the call");
    system.shutdown(Duration::from_secs(5)).await.unwrap();

    // A new process over the same journal: the run's outcome, no request.
    let system = start(storage.reopen(), &client, &crash).await;
    let writer = system.agent_ref::<Writer>("writer").unwrap();
    let again = writer.ask_run(run, "the sea".into()).await.unwrap();
    assert_eq!(again, answer);
    assert_eq!(
        requests().await,
        1,
        "the new process never called the provider"
    );
    system.shutdown(Duration::from_secs(5)).await.unwrap();
}
