//! The client's overhead beyond the HTTP round trip: `OpenAiCompatible::chat` against a raw
//! `reqwest` call (the same JSON body posted, the answer read and parsed as JSON) to the same
//! loopback stub, a keep-alive HTTP/1.1 server answering every request with one canned
//! completion.
//!
//! `cargo run --release -p overseer-provider --example overhead [calls] [raw|client]`: with
//! one side named, only it runs, once (for `valgrind --tool=callgrind`, whose instruction
//! counts do not depend on the machine's load as times do).

use std::time::{Duration, Instant};

use overseer_agent::ModelRequest;
use overseer_provider::{OpenAiCompatible, Price, PriceTable};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const COMPLETION: &str = r#"{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"The capital of France is Paris."},"finish_reason":"stop"}],"usage":{"prompt_tokens":20,"completion_tokens":7,"total_tokens":27,"prompt_tokens_details":{"cached_tokens":0}}}"#;

async fn serve(mut socket: TcpStream) {
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{COMPLETION}",
        COMPLETION.len()
    );
    let mut buffer = Vec::with_capacity(8192);
    let mut chunk = [0u8; 8192];
    loop {
        // One request: headers, then content-length bytes of body.
        let (head_end, length) = loop {
            if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
                let length = head
                    .lines()
                    .find_map(|line| line.strip_prefix("content-length:"))
                    .and_then(|value| value.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                break (end + 4, length);
            }
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        };
        while buffer.len() < head_end + length {
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
        buffer.drain(..head_end + length);
        if socket.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

async fn time<F: std::future::Future<Output = ()>>(
    calls: u32,
    mut call: impl FnMut() -> F,
) -> Duration {
    for _ in 0..calls / 10 {
        call().await;
    }
    let started = Instant::now();
    for _ in 0..calls {
        call().await;
    }
    started.elapsed() / calls.max(1)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let calls: u32 = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(5_000);
    // The stub runs on its own thread and runtime (its own reactor), apart from the client's.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let base = format!("http://{}/v1", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = TcpListener::from_std(listener).unwrap();
            loop {
                let (socket, _) = listener.accept().await.unwrap();
                tokio::spawn(serve(socket));
            }
        });
    });

    let client = OpenAiCompatible::builder(base.as_str(), "m")
        .api_key("sk-bench")
        .prices(PriceTable::new().fallback(Price::per_million(1_000_000, 500_000, 2_000_000)))
        .build()
        .unwrap();
    let raw = reqwest::Client::new();
    let url = format!("{base}/chat/completions");
    let request = ModelRequest::new("What is the capital of France?")
        .system("Be brief.")
        .max_tokens(64);

    let which = std::env::args().nth(2).unwrap_or_default();
    let only = |side: &str| which.is_empty() || which == side;
    let rounds_wanted = if which.is_empty() { 3 } else { 1 };
    let mut rounds = Vec::new();
    for _ in 0..rounds_wanted {
        let mut raw_time = Duration::ZERO;
        let mut client_time = Duration::ZERO;
        if only("raw") {
            raw_time = time(calls, || async {
                let body = serde_json::json!({"model": "m", "max_tokens": 64, "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "What is the capital of France?"}]});
                let response = raw
                    .post(&url)
                    .bearer_auth("sk-bench")
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                let bytes = response.bytes().await.unwrap();
                let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                assert!(value["choices"][0]["message"]["content"].is_string());
            })
            .await;
        }
        if only("client") {
            client_time = time(calls, || async {
                let answer = client.chat(&request).await.unwrap();
                assert_eq!(answer.usage.input_tokens, 20);
            })
            .await;
        }
        rounds.push((raw_time, client_time));
    }
    for (raw_time, client_time) in &rounds {
        println!(
            "raw reqwest {:>7.1} us   OpenAiCompatible::chat {:>7.1} us   ratio {:.3}",
            raw_time.as_secs_f64() * 1e6,
            client_time.as_secs_f64() * 1e6,
            client_time.as_secs_f64() / raw_time.as_secs_f64()
        );
    }
}
