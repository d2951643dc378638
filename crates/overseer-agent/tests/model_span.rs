//! A model call through `AgentContext::model` runs in a tracing span `chat` carrying the
//! OpenTelemetry GenAI attributes with the numbers the model reported. Alone in its binary: a
//! test without a subscriber calling the model at the same time could leave the span's callsite
//! cached as uninteresting (tracing's callsite interest is global; this subscriber is set for
//! this thread only).

mod model_caller;

use model_caller::{start, Caller, Client};
use span_capture::Spans;

mod span_capture;

#[tokio::test(start_paused = true)]
async fn a_model_call_is_a_chat_span_with_the_gen_ai_attributes_of_its_usage() {
    let spans = Spans::named("chat");
    let _guard = spans.capture();

    let system = start(|| Client::Provider).await;
    let writer = system.agent_ref::<Caller>("writer").unwrap();
    writer.ask("draft").await.unwrap();
    let _ = writer.ask("fail").await.unwrap_err();

    let seen = spans.recorded();
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
