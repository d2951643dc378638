//! The client against a stub OpenAI-compatible server on loopback (wiremock): every status
//! and body maps to its error and class, usage and cost are the server's.

use std::time::Duration;

use overseer_agent::{
    FinishReason, ModelClient, ModelError, ModelRequest, ResponseFormat, ToolCall, ToolDefinition,
    Usage,
};
use overseer_provider::{OpenAiCompatible, Price, PriceTable, ProviderError};
use overseer_retry::{Classify, ErrorClass};
use serde_json::json;
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const PRICE: Price = Price::per_million(2_500_000, 1_250_000, 10_000_000);

fn client(server: &MockServer) -> OpenAiCompatible {
    OpenAiCompatible::builder(format!("{}/v1", server.uri()), "gpt-4o")
        .api_key("sk-test")
        .prices(PriceTable::new().model("gpt-4o", PRICE))
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

fn completion() -> serde_json::Value {
    json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-2024-08-06",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": "Paris"}}],
        "usage": {"prompt_tokens": 1200, "completion_tokens": 30, "total_tokens": 1230,
                  "prompt_tokens_details": {"cached_tokens": 1000}}
    })
}

async fn answer_with(
    template: ResponseTemplate,
) -> (
    MockServer,
    Result<overseer_agent::ModelResponse, ProviderError>,
) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(template)
        .mount(&server)
        .await;
    let result = client(&server)
        .chat(&ModelRequest::new("Capital of France?"))
        .await;
    (server, result)
}

fn error_body(code: &str, message: &str) -> serde_json::Value {
    json!({"error": {"message": message, "type": "invalid_request_error", "param": null, "code": code}})
}

#[tokio::test]
async fn a_completion_reports_the_servers_usage_with_cached_tokens_and_its_cost() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(header("authorization", "Bearer sk-test"))
        .and(body_partial_json(json!({
            "model": "gpt-4o",
            "messages": [{"role": "user", "content": "Capital of France?"}],
            "max_tokens": 16,
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion()))
        .expect(1)
        .mount(&server)
        .await;
    let response = client(&server)
        .complete(ModelRequest::new("Capital of France?").max_tokens(16))
        .await
        .unwrap();
    assert_eq!(response.text, "Paris");
    assert_eq!(response.finish_reason, FinishReason::Stop);
    assert_eq!(response.model, "gpt-4o-2024-08-06");
    // 200 uncached x 2.5 + 1000 cached x 1.25 + 30 out x 10 = 500 + 1250 + 300
    assert_eq!(
        response.usage,
        Usage::new(1200, 30, 2050).with_cached_input_tokens(1000)
    );
}

#[tokio::test]
async fn tools_and_a_json_schema_go_out_and_tool_calls_come_back() {
    let server = MockServer::start().await;
    let answer = json!({
        "model": "gpt-4o",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant",
            "content": null, "tool_calls": [{"id": "call_9", "type": "function",
            "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}}]}}],
        "usage": {"prompt_tokens": 50, "completion_tokens": 10}
    });
    Mock::given(method("POST"))
        .and(body_partial_json(json!({
            "tools": [{"type": "function", "function": {"name": "weather"}}],
            "response_format": {"type": "json_object"},
            "temperature": 0.0,
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(answer))
        .expect(1)
        .mount(&server)
        .await;
    let request = ModelRequest::new("Weather?")
        .temperature(0.0)
        .response_format(ResponseFormat::JsonObject)
        .tool(ToolDefinition::new(
            "weather",
            "Looks it up",
            json!({"type": "object"}),
        ));
    let response = client(&server).chat(&request).await.unwrap();
    assert_eq!(response.finish_reason, FinishReason::ToolCalls);
    assert_eq!(
        response.tool_calls,
        [ToolCall::new("call_9", "weather", "{\"city\":\"Paris\"}")]
    );
    assert_eq!(response.usage, Usage::new(50, 10, 225));
}

#[tokio::test]
async fn a_429_is_rate_limited_with_its_retry_after() {
    let template = ResponseTemplate::new(429)
        .insert_header("retry-after", "7")
        .set_body_json(error_body("rate_limit_exceeded", "slow down"));
    let (_server, result) = answer_with(template).await;
    let error = result.unwrap_err();
    assert_eq!(
        error,
        ProviderError::RateLimited {
            message: "slow down".into(),
            retry_after: Some(Duration::from_secs(7))
        }
    );
    let model = ModelError::from(error);
    assert_eq!(
        model.class(),
        ErrorClass::RateLimited {
            retry_after: Some(Duration::from_secs(7))
        }
    );
}

#[tokio::test]
async fn retry_after_ms_is_read_first() {
    let template = ResponseTemplate::new(429)
        .insert_header("retry-after-ms", "1500")
        .insert_header("retry-after", "7")
        .set_body_json(error_body("", "slow down"));
    let (_server, result) = answer_with(template).await;
    assert_eq!(
        result.unwrap_err().class(),
        ErrorClass::RateLimited {
            retry_after: Some(Duration::from_millis(1500))
        }
    );
}

#[tokio::test]
async fn a_500_is_a_transient_server_error() {
    let template = ResponseTemplate::new(500).set_body_json(error_body("", "oops"));
    let (_server, result) = answer_with(template).await;
    let error = result.unwrap_err();
    assert!(
        matches!(error, ProviderError::Server { status: 500, .. }),
        "{error}"
    );
    assert_eq!(error.class(), ErrorClass::Transient);
    assert!(matches!(ModelError::from(error), ModelError::Provider(_)));
}

#[tokio::test]
async fn a_401_is_a_permanent_authentication_error() {
    let template =
        ResponseTemplate::new(401).set_body_json(error_body("invalid_api_key", "bad key"));
    let (_server, result) = answer_with(template).await;
    let error = result.unwrap_err();
    assert_eq!(
        error,
        ProviderError::Authentication {
            status: 401,
            message: "bad key".into()
        }
    );
    assert!(matches!(ModelError::from(error), ModelError::Rejected(_)));
}

#[tokio::test]
async fn a_context_length_400_is_context_too_long_and_permanent() {
    let template = ResponseTemplate::new(400).set_body_json(error_body(
        "context_length_exceeded",
        "This model's maximum context length is 128000 tokens.",
    ));
    let (_server, result) = answer_with(template).await;
    let error = result.unwrap_err();
    assert!(
        matches!(error, ProviderError::ContextTooLong { .. }),
        "{error}"
    );
    assert_eq!(error.class(), ErrorClass::Permanent);
}

#[tokio::test]
async fn another_400_is_a_permanent_bad_request() {
    let template = ResponseTemplate::new(400).set_body_json(error_body("invalid_value", "no"));
    let (_server, result) = answer_with(template).await;
    let error = result.unwrap_err();
    assert!(
        matches!(error, ProviderError::BadRequest { status: 400, .. }),
        "{error}"
    );
    assert_eq!(error.class(), ErrorClass::Permanent);
}

#[tokio::test]
async fn malformed_json_is_replay_unsafe_and_costs_the_estimate() {
    let template =
        ResponseTemplate::new(200).set_body_raw(r#"{"choices":[{"mess"#, "application/json");
    let (server, result) = answer_with(template).await;
    let error = result.unwrap_err();
    let expected = client(&server).estimate(&ModelRequest::new("Capital of France?"));
    assert!(matches!(error, ProviderError::Malformed { .. }), "{error}");
    assert_eq!(error.class(), ErrorClass::ReplayUnsafe);
    assert_eq!(error.spent(), expected);
    assert!(
        expected.cost_micros > 0,
        "an estimate is never free: {expected:?}"
    );
    assert_eq!(ModelError::from(error).spent(), expected);
}

#[tokio::test]
async fn a_slow_server_times_out_transiently_within_the_requests_timeout() {
    let template = ResponseTemplate::new(200)
        .set_body_json(completion())
        .set_delay(Duration::from_secs(3));
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(template)
        .mount(&server)
        .await;
    let request = ModelRequest::new("hi").timeout(Duration::from_millis(100));
    let started = std::time::Instant::now();
    let error = client(&server).chat(&request).await.unwrap_err();
    assert_eq!(
        error,
        ProviderError::Timeout {
            after: Duration::from_millis(100)
        }
    );
    assert_eq!(error.class(), ErrorClass::Transient);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_refused_connection_is_transient() {
    // A port just bound and released: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = OpenAiCompatible::builder(format!("http://127.0.0.1:{port}/v1"), "m")
        .build()
        .unwrap();
    let error = client.chat(&ModelRequest::new("hi")).await.unwrap_err();
    assert!(matches!(error, ProviderError::Connect { .. }), "{error}");
    assert_eq!(error.class(), ErrorClass::Transient);
}

#[tokio::test]
async fn a_retry_policy_waits_at_least_the_retry_after_of_a_429() {
    use overseer_retry::{Attempt, Jitter, RetryDecision, RetryPolicy};
    use rand::{rngs::StdRng, SeedableRng};
    let template = ResponseTemplate::new(429)
        .insert_header("retry-after", "9")
        .set_body_json(error_body("rate_limit_exceeded", "slow down"));
    let (_server, result) = answer_with(template).await;
    let class = ModelError::from(result.unwrap_err()).class();
    let policy = RetryPolicy::builder()
        .jitter(Jitter::Full)
        .max_attempts(4)
        .max_delay(Duration::from_secs(60))
        .build()
        .unwrap();
    let mut rng = StdRng::seed_from_u64(7);
    for attempt in 1..=3 {
        match policy.decide(&Attempt::new(attempt, class), &mut rng) {
            RetryDecision::RetryAfter(delay) => {
                assert!(
                    delay >= Duration::from_secs(9),
                    "attempt {attempt}: {delay:?}"
                )
            }
            other => panic!("attempt {attempt}: {other:?}"),
        }
    }
}
