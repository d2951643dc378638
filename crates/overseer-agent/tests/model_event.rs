//! A model call through `AgentContext::model` names its model in the ask's event and is listed
//! in the event's `model_calls`.

mod model_caller;

use model_caller::{ask_events, start, Caller, Client};
use overseer_agent::{FinishReason, ModelCall, ScriptedModel, Usage};

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
