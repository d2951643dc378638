//! A model call through `AgentContext::model` runs in a tracing span `chat` carrying the
//! OpenTelemetry GenAI attributes with the numbers the model reported, names its model in the
//! ask's event, and is listed in the event's `model_calls`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use overseer_agent::{
    Agent, AgentContext, AgentError, AgentSpec, FinishReason, ModelCall, ModelClient, ModelError,
    ModelRequest, ModelResponse, ScriptedModel, System, SystemEvent, Usage,
};
use overseer_supervisor::SupervisorSpec;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

type Fields = BTreeMap<String, String>;

/// Records every field of every span named `name`, in the order the spans were made.
#[derive(Clone)]
struct Spans {
    name: &'static str,
    seen: Arc<Mutex<Vec<(u64, Fields)>>>,
}

struct Collect<'a>(&'a mut Fields);

impl Visit for Collect<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().to_string(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), value.to_string());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_string(), value.to_string());
    }
}

impl<S: tracing::Subscriber> Layer<S> for Spans {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _: Context<'_, S>) {
        if attrs.metadata().name() == self.name {
            let mut fields = Fields::new();
            attrs.record(&mut Collect(&mut fields));
            self.seen.lock().unwrap().push((id.into_u64(), fields));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        let mut seen = self.seen.lock().unwrap();
        if let Some((_, fields)) = seen.iter_mut().find(|(seen, _)| *seen == id.into_u64()) {
            values.record(&mut Collect(fields));
        }
    }
}

/// A provider-like model: asks for `gpt-4o-mini`, answers as its dated version, with cached
/// prompt tokens and a cut answer; fails when the prompt says so.
#[derive(Debug, Clone)]
struct Provider;

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

enum Client {
    Provider,
    Scripted(ScriptedModel),
}

struct Caller(Client);

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

async fn start(client: impl Fn() -> Client + Send + Sync + 'static) -> System {
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

fn ask_events(
    events: &mut tokio::sync::broadcast::Receiver<SystemEvent>,
) -> Vec<overseer_agent::AskEvent> {
    std::iter::from_fn(|| events.try_recv().ok())
        .filter_map(|event| match event {
            SystemEvent::Ask(ask) => Some(ask),
            _ => None,
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_model_call_is_a_chat_span_with_the_gen_ai_attributes_of_its_usage() {
    let spans = Spans {
        name: "chat",
        seen: Arc::default(),
    };
    let subscriber = tracing_subscriber::registry().with(spans.clone());
    let _guard = tracing::subscriber::set_default(subscriber);

    let system = start(|| Client::Provider).await;
    let writer = system.agent_ref::<Caller>("writer").unwrap();
    writer.ask("draft").await.unwrap();
    let _ = writer.ask("fail").await.unwrap_err();

    let seen = spans.seen.lock().unwrap();
    assert_eq!(seen.len(), 2, "{seen:#?}");
    let ok = &seen[0].1;
    assert_eq!(ok["gen_ai.operation.name"], "chat");
    assert_eq!(ok["otel.name"], "chat gpt-4o-mini");
    assert_eq!(ok["agent"], "writer");
    assert_eq!(ok["gen_ai.request.model"], "gpt-4o-mini");
    assert_eq!(ok["gen_ai.response.model"], "gpt-4o-mini-2024-07-18");
    assert_eq!(ok["gen_ai.response.finish_reasons"], "length");
    assert_eq!(ok["gen_ai.usage.input_tokens"], "120");
    assert_eq!(ok["gen_ai.usage.output_tokens"], "45");
    assert_eq!(ok["gen_ai.usage.cache_read.input_tokens"], "100");
    assert!(!ok.contains_key("error.type"), "{ok:?}");
    let failed = &seen[1].1;
    assert_eq!(failed["error.type"], "rate_limited");
    assert_eq!(failed["gen_ai.usage.input_tokens"], "0");
    assert!(!failed.contains_key("gen_ai.response.finish_reasons"));
}

#[tokio::test(start_paused = true)]
async fn a_model_call_names_its_model_in_the_asks_event_and_lists_the_call() {
    let system = start(|| Client::Provider).await;
    let mut events = system.subscribe();
    let writer = system.agent_ref::<Caller>("writer").unwrap();
    writer.ask("draft").await.unwrap();
    let _ = writer.ask("fail").await.unwrap_err();

    let asks = ask_events(&mut events);
    assert_eq!(asks.len(), 2, "{asks:#?}");
    assert_eq!(
        asks[0].model.as_deref(),
        Some("gpt-4o-mini"),
        "the model asked for"
    );
    assert_eq!(
        asks[0].model_calls,
        vec![ModelCall::new(
            "gpt-4o-mini",
            "ok",
            Usage::new(120, 45, 9).with_cached_input_tokens(100)
        )
        .with_finish_reason(FinishReason::Length)]
    );
    assert_eq!(asks[0].usage.input_tokens, 120);
    assert_eq!(
        asks[1].model.as_deref(),
        Some("gpt-4o-mini"),
        "named even when it failed"
    );
    assert_eq!(
        asks[1].model_calls,
        vec![ModelCall::new(
            "gpt-4o-mini",
            "rate_limited",
            Usage::default()
        )]
    );
}

#[tokio::test(start_paused = true)]
async fn a_scripted_model_names_the_asks_model_only_when_named() {
    let system = start(|| Client::Scripted(ScriptedModel::new().model("scripted-1"))).await;
    let mut events = system.subscribe();
    system
        .agent_ref::<Caller>("writer")
        .unwrap()
        .ask("draft")
        .await
        .unwrap();
    let asks = ask_events(&mut events);
    assert_eq!(asks[0].model.as_deref(), Some("scripted-1"));
    assert_eq!(asks[0].model_calls[0].model, "scripted-1");

    let unnamed = start(|| Client::Scripted(ScriptedModel::new())).await;
    let mut events = unnamed.subscribe();
    unnamed
        .agent_ref::<Caller>("writer")
        .unwrap()
        .ask("draft")
        .await
        .unwrap();
    let asks = ask_events(&mut events);
    assert_eq!(asks[0].model, None, "nothing to name");
    assert_eq!(
        asks[0].model_calls.len(),
        1,
        "the call is listed all the same"
    );
}
