//! Streaming against loopback stubs: server-sent events with a final usage chunk (wiremock),
//! and a raw TCP server that cuts the stream in the middle.

use std::time::Duration;

use overseer_agent::{FinishReason, ModelRequest, Usage};
use overseer_provider::{OpenAiCompatible, Price, PriceTable, ProviderError};
use overseer_retry::{Classify, ErrorClass};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const PRICE: Price = Price::per_million(1_000_000, 500_000, 2_000_000);

fn client(base: &str) -> OpenAiCompatible {
    OpenAiCompatible::builder(format!("{base}/v1"), "m")
        .prices(PriceTable::new().fallback(PRICE))
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

fn sse(chunks: &[serde_json::Value], done: bool) -> String {
    let mut body: String = chunks.iter().map(|c| format!("data: {c}\n\n")).collect();
    if done {
        body.push_str("data: [DONE]\n\n");
    }
    body
}

fn text_chunks() -> Vec<serde_json::Value> {
    let delta = |content: &str| {
        json!({"id": "c", "object": "chat.completion.chunk", "model": "m-1",
        "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": null}], "usage": null})
    };
    vec![
        json!({"model": "m-1", "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}),
        delta("The capital "),
        delta("is Paris."),
        json!({"model": "m-1", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
    ]
}

fn usage_chunk() -> serde_json::Value {
    json!({"model": "m-1", "choices": [], "usage": {"prompt_tokens": 40, "completion_tokens": 6,
        "total_tokens": 46, "prompt_tokens_details": {"cached_tokens": 30}}})
}

async fn stub(body: String) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(body_partial_json(
            json!({"stream": true, "stream_options": {"include_usage": true}}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_raw(body, "text/event-stream"))
        .expect(1)
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn a_stream_accumulates_its_text_and_reports_the_usage_chunk() {
    let mut chunks = text_chunks();
    chunks.push(usage_chunk());
    let server = stub(sse(&chunks, true)).await;
    let mut pieces = Vec::new();
    let response = client(&server.uri())
        .chat_stream(&ModelRequest::new("Capital?"), |text| {
            pieces.push(text.to_string())
        })
        .await
        .unwrap();
    assert_eq!(pieces, ["The capital ", "is Paris."]);
    assert_eq!(response.text, "The capital is Paris.");
    assert_eq!(response.finish_reason, FinishReason::Stop);
    assert_eq!(response.model, "m-1");
    // 10 uncached x 1 + 30 cached x 0.5 + 6 out x 2 = 10 + 15 + 12
    assert_eq!(
        response.usage,
        Usage::new(40, 6, 37).with_cached_input_tokens(30)
    );
}

#[tokio::test]
async fn a_stream_that_ends_before_its_usage_is_replay_unsafe_and_costs_the_estimate() {
    let server = stub(sse(&text_chunks(), false)).await;
    let client = client(&server.uri());
    let request = ModelRequest::new("Capital?").max_tokens(100);
    let error = client.chat_stream(&request, |_| {}).await.unwrap_err();
    assert!(matches!(error, ProviderError::StreamCut { .. }), "{error}");
    assert_eq!(error.class(), ErrorClass::ReplayUnsafe);
    let estimate = client.estimate(&request);
    assert_eq!(error.spent(), estimate);
    assert!(
        estimate.cost_micros >= 200,
        "max_tokens priced: {estimate:?}"
    );
}

#[tokio::test]
async fn an_error_event_mid_stream_is_replay_unsafe() {
    let mut chunks = text_chunks();
    chunks.push(json!({"error": {"message": "overloaded", "type": "server_error"}}));
    let server = stub(sse(&chunks, false)).await;
    let error = client(&server.uri())
        .chat_stream(&ModelRequest::new("hi"), |_| {})
        .await
        .unwrap_err();
    assert!(error.to_string().contains("overloaded"), "{error}");
    assert_eq!(error.class(), ErrorClass::ReplayUnsafe);
}

#[tokio::test]
async fn a_429_before_the_stream_is_rate_limited() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "2"))
        .mount(&server)
        .await;
    let error = client(&server.uri())
        .chat_stream(&ModelRequest::new("hi"), |_| {})
        .await
        .unwrap_err();
    assert_eq!(
        error.class(),
        ErrorClass::RateLimited {
            retry_after: Some(Duration::from_secs(2))
        }
    );
}

/// A server that answers one request with a chunked event stream, sends `chunks`, then closes
/// the connection in the middle of the body (no terminating chunk).
async fn cutting_server(events: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = vec![0; 64 * 1024];
        let mut read = 0;
        // Read until the end of the headers and the JSON body (it ends with '}').
        while read == 0 || request[read - 1] != b'}' {
            let n = socket.read(&mut request[read..]).await.unwrap();
            if n == 0 {
                return;
            }
            read += n;
        }
        let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
        socket.write_all(head.as_bytes()).await.unwrap();
        let chunk = format!("{:x}\r\n{events}\r\n", events.len());
        socket.write_all(chunk.as_bytes()).await.unwrap();
        // Half an event, then the connection drops.
        socket
            .write_all(b"20\r\ndata: {\"choices\":[{\"delta\"")
            .await
            .unwrap();
        socket.shutdown().await.unwrap();
    });
    format!("http://{address}")
}

#[tokio::test]
async fn a_stream_cut_mid_body_is_replay_unsafe_with_the_text_so_far_lost() {
    let base = cutting_server(sse(&text_chunks(), false)).await;
    let client = client(&base);
    let request = ModelRequest::new("Capital?");
    let mut seen = String::new();
    let error = client
        .chat_stream(&request, |text| seen.push_str(text))
        .await
        .unwrap_err();
    assert_eq!(
        seen, "The capital is Paris.",
        "the deltas before the cut were delivered"
    );
    assert!(matches!(error, ProviderError::StreamCut { .. }), "{error}");
    assert_eq!(error.class(), ErrorClass::ReplayUnsafe);
    assert_eq!(error.spent(), client.estimate(&request));
}
