//! `research_team --base-url URL --model NAME` asks a real OpenAI-compatible server instead of
//! the scripted model: here a wiremock stub on loopback that answers each kind of prompt in the
//! shape the team reads, and counts the requests. `cargo test` builds the examples first; when
//! running this file alone, build them too: `cargo build --examples`.

mod common;

use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

/// The stub's answer to one chat completion request: by the prompt's kind, as a model told the
/// example's instructions would answer; a 400 for a request without instructions.
fn answer(request: &Request) -> ResponseTemplate {
    let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
        return ResponseTemplate::new(400);
    };
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    let has_instructions = messages.first().is_some_and(|m| m["role"] == "system");
    let prompt = messages
        .last()
        .and_then(|m| m["content"].as_str())
        .unwrap_or("")
        .to_string();
    if !has_instructions {
        return ResponseTemplate::new(400).set_body_json(
            json!({"error": {"message": "no instructions", "type": "invalid_request_error"}}),
        );
    }
    let text = match prompt.split(':').next().unwrap_or("") {
        "plan" => "restart strategies; circuit breakers; kill switches".to_string(),
        "search" => {
            let topic = prompt.rsplit("search:").next().unwrap_or("").trim();
            format!("finding: {topic} are described in the stub's notes")
        }
        "cite" => "source: the stub's library".to_string(),
        "verify" => "verified".to_string(),
        _ => "The stub says: supervise, isolate, and bound the spend.".to_string(),
    };
    ResponseTemplate::new(200).set_body_json(json!({
        "id": "chatcmpl-stub", "object": "chat.completion", "created": 1, "model": "stub-model-1",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": 30, "completion_tokens": 12, "total_tokens": 42,
                  "prompt_tokens_details": {"cached_tokens": 10}}
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn research_team_asks_a_real_provider_when_given_one() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(answer)
        .mount(&server)
        .await;
    let base_url = format!("{}/v1", server.uri());
    assert!(base_url.starts_with("http://127.0.0.1:"), "{base_url}");
    let args = ["--base-url", base_url.as_str(), "--model", "stub-model"].map(str::to_string);
    let (_, out) = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        common::run_example("research_team", &args)
    })
    .await
    .expect("the example ran");

    assert!(
        out.contains(&format!("model: stub-model at {base_url}")),
        "{out}"
    );
    assert!(out.contains("== summary (seed 42)"), "{out}");
    assert!(
        out.contains("answer: The stub says: supervise, isolate, and bound the spend."),
        "the team's answer is the provider's:\n{out}"
    );
    let requests = server.received_requests().await.expect("recorded");
    let calls: usize = out
        .lines()
        .find_map(|line| line.strip_prefix("model calls to stub-model: "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no call count in:\n{out}"));
    assert!(
        calls > 4,
        "the lead plans and writes each of four answers:\n{out}"
    );
    assert_eq!(requests.len(), calls, "every call reached the stub, once");
    for request in &requests {
        let body: Value = serde_json::from_slice(&request.body).expect("JSON");
        assert_eq!(body["model"], "stub-model");
        assert_eq!(body["max_tokens"], 200);
    }
    // The spend is the stub's usage: 42 tokens a call, within the raised budget.
    let spend = out
        .lines()
        .find_map(|line| line.strip_prefix("spend: "))
        .expect("spend printed");
    let tokens: u64 = spend.split(' ').next().unwrap().parse().unwrap();
    assert_eq!(tokens, 42 * calls as u64, "{spend}");
}
