//! A model call through `AgentContext::model` runs in a tracing span `chat` carrying the
//! OpenTelemetry GenAI attributes with the numbers the model reported. Alone in its binary: a
//! test without a subscriber calling the model at the same time could leave the span's callsite
//! cached as uninteresting (tracing's callsite interest is global; this subscriber is set for
//! this thread only).

mod model_caller;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use model_caller::{start, Caller, Client};
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
