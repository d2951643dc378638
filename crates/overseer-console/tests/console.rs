//! The web console over real HTTP on loopback: the page, the live stream, causal chains, and
//! the actions, refused unless enabled and authorized.

mod support;

use std::time::Duration;

use overseer_agent::ErrorClass;
use overseer_agent::FailedAttempt;
use overseer_agent::Usage;
use overseer_console::{Actions, ConsoleConfig};
use serde_json::Value;
use support::{json, open_the_breaker, request, served, system, Flaky};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn the_page_and_its_script_and_style_are_served_from_the_binary() {
    let system = system().await;
    let console = served(&system, ConsoleConfig::default()).await;
    let (status, page) = request(&console, "GET", "/", &[]).await;
    assert_eq!(status, 200);
    assert!(page.contains("<title>Overseer console</title>"), "{page}");
    let (status, script) = request(&console, "GET", "/console.js", &[]).await;
    assert_eq!(status, 200);
    assert!(script.contains("new EventSource(\"/api/stream\")"));
    let (status, style) = request(&console, "GET", "/console.css", &[]).await;
    assert_eq!(status, 200);
    assert!(style.contains(".breaker-open") || style.contains("breaker-open"));
    let (status, _) = json(&console, "GET", "/readyz", &[]).await;
    assert_eq!(status, 200, "the probes still answer");
    console.shutdown().await;
}

#[tokio::test]
async fn the_snapshot_shows_the_tree_with_each_agents_figures_and_the_breakers() {
    let system = system().await;
    let console = served(&system, ConsoleConfig::default()).await;
    let flaky = system.agent_ref::<Flaky>("flaky").unwrap();
    for _ in 0..4 {
        flaky.ask("hello".to_string()).await.unwrap();
    }
    let _ = flaky.ask("fail".to_string()).await;
    // The console folds events in its own task: poll until it has seen the five asks.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let row = loop {
        let (status, snapshot) = json(&console, "GET", "/api/snapshot", &[]).await;
        assert_eq!(status, 200);
        let row = snapshot["tree"]
            .as_array()
            .unwrap()
            .iter()
            .find(|row| row["name"] == "flaky")
            .cloned()
            .expect("a row for flaky");
        if row["errors_total"] == 1 && row["asks_per_sec"].as_f64().unwrap() > 0.0 {
            assert_eq!(snapshot["tree"][0]["name"], "root");
            assert_eq!(snapshot["tree"][0]["supervisor"], true);
            assert!(snapshot["breakers"]
                .as_array()
                .unwrap()
                .iter()
                .any(|breaker| breaker["key"] == "flaky/work" && breaker["state"] == "closed"));
            assert_eq!(snapshot["budget"]["dimensions"][0]["dimension"], "tokens");
            assert_eq!(snapshot["actions"], false);
            break row;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "five asks counted: {row}"
        );
        tokio::task::yield_now().await;
    };
    assert_eq!(row["state"], "running");
    assert_eq!(row["queued"], 0);
    assert_eq!(row["errors"], 1);
    assert!(row["p99_ms"].as_f64().unwrap() >= row["p50_ms"].as_f64().unwrap());
    assert_eq!(row["health"], "unchecked");
    console.shutdown().await;
}

/// The kinds of the events the console keeps, once `done` holds for them (polled for 5 s).
async fn kept_kinds(
    console: &overseer_console::Console,
    done: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (status, kept) = json(console, "GET", "/api/events", &[]).await;
        assert_eq!(status, 200);
        let kinds: Vec<String> = kept["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|event| event["kind"].as_str().unwrap().to_string())
            .collect();
        if done(&kinds) {
            return kinds;
        }
        assert!(tokio::time::Instant::now() < deadline, "kept: {kinds:?}");
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn answered_asks_are_counted_not_listed_unless_every_ask_is_asked_for() {
    let system = system().await;
    let quiet = served(&system, ConsoleConfig::default()).await;
    let every = served(&system, ConsoleConfig::default().every_ask(true)).await;
    let flaky = system.agent_ref::<Flaky>("flaky").unwrap();
    for _ in 0..3 {
        flaky.ask("hello".to_string()).await.unwrap();
    }
    let _ = flaky.ask("fail".to_string()).await;
    let kinds = kept_kinds(&quiet, |kinds| kinds.iter().any(|kind| kind == "ask_error")).await;
    assert!(!kinds.iter().any(|kind| kind == "ask"), "{kinds:?}");
    let kinds = kept_kinds(&every, |kinds| {
        kinds.iter().filter(|kind| *kind == "ask").count() == 3
            && kinds.iter().any(|kind| kind == "ask_error")
    })
    .await;
    assert_eq!(kinds.iter().filter(|kind| *kind == "ask").count(), 3);
    quiet.shutdown().await;
    every.shutdown().await;
}

/// The row of the supervisor `name` in a snapshot.
fn supervisor_row(snapshot: &serde_json::Value, name: &str) -> serde_json::Value {
    snapshot["tree"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["name"] == name && row["supervisor"] == true)
        .cloned()
        .unwrap_or_else(|| panic!("a row for {name}: {snapshot}"))
}

#[tokio::test]
async fn each_supervisor_shows_its_intensity_and_its_use_from_the_start() {
    let system = system().await;
    let console = served(&system, ConsoleConfig::default()).await;
    let (_, snapshot) = json(&console, "GET", "/api/snapshot", &[]).await;
    // Before any restart or escalation: what each supervisor was configured with.
    let root = supervisor_row(&snapshot, "root");
    assert_eq!(
        root["intensity"],
        serde_json::json!({
            "strategy": "one_for_one",
            "max_restarts": 100,
            "period_secs": 1,
            "restarts_in_window": 0,
        })
    );
    let fragile = supervisor_row(&snapshot, "fragile");
    assert_eq!(fragile["intensity"]["max_restarts"], 0);
    assert_eq!(fragile["intensity"]["period_secs"], 60);
    assert_eq!(fragile["escalated_at"], serde_json::Value::Null);

    // A crash of root's agent is a restart counted in root's window: it counts for a whole
    // second at least (periods are whole seconds, both edges inclusive), and the supervisor
    // records it as it restarts the agent, so poll for it within that second.
    let flaky = system.agent_ref::<Flaky>("flaky").unwrap();
    assert!(flaky.ask("crash".to_string()).await.is_err());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    loop {
        let (_, snapshot) = json(&console, "GET", "/api/snapshot", &[]).await;
        let counted = supervisor_row(&snapshot, "root")["intensity"]["restarts_in_window"]
            .as_u64()
            .unwrap();
        if counted >= 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "root's window counts a restart"
        );
        tokio::task::yield_now().await;
    }
    console.shutdown().await;
}

/// Reads the live stream until `done` holds for what was read, or 10 s pass.
async fn stream_until(
    console: &overseer_console::Console,
    mut during: impl FnMut(&str) -> bool,
) -> String {
    let mut stream = TcpStream::connect(console.local_addr()).await.unwrap();
    let request =
        "GET /api/stream HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n";
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut read = String::new();
    let mut buffer = [0u8; 16 * 1024];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if during(&read) {
            return read;
        }
        let n = tokio::time::timeout_at(deadline, stream.read(&mut buffer))
            .await
            .unwrap_or_else(|_| panic!("not seen within 10 s in:\n{read}"))
            .unwrap();
        assert!(n > 0, "the stream ended:\n{read}");
        read.push_str(&String::from_utf8_lossy(&buffer[..n]));
    }
}

#[tokio::test]
async fn the_stream_pushes_snapshots_and_a_crash_as_a_restart() {
    let system = system().await;
    let console = served(
        &system,
        ConsoleConfig::default().refresh(Duration::from_millis(20)),
    )
    .await;
    let mut crashed = false;
    let flaky = system.agent_ref::<Flaky>("flaky").unwrap();
    let read = stream_until(&console, |read| {
        if !crashed && read.contains("event: snapshot") {
            crashed = true;
            let flaky = flaky.clone();
            tokio::spawn(async move { flaky.ask("crash".to_string()).await });
        }
        read.contains("\"kind\":\"restart\"") && read.contains("\"path\":\"root/flaky\"")
    })
    .await;
    assert!(read.contains("text/event-stream"), "{read}");
    assert!(read.contains("\"kind\":\"crash\""), "{read}");
    console.shutdown().await;
}

#[tokio::test]
async fn the_chain_of_an_escalation_leads_back_to_the_ask_that_crashed() {
    let system = system().await;
    let console = served(&system, ConsoleConfig::default()).await;
    let brittle = system.agent_ref::<Flaky>("brittle").unwrap();
    let crash = brittle.ask("crash".to_string()).await;
    assert!(crash.is_err());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let chain = loop {
        let (_, events) = json(&console, "GET", "/api/events", &[]).await;
        let escalation = events["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|event| event["kind"] == "escalation")
            .cloned();
        if let Some(escalation) = escalation {
            let id = escalation["id"].as_u64().unwrap();
            let (status, chain) = json(&console, "GET", &format!("/api/chain/{id}"), &[]).await;
            assert_eq!(status, 200);
            let chain = chain["chain"].as_array().unwrap().clone();
            if chain
                .first()
                .is_some_and(|root| root["kind"] != "gone" && root["caused_by"].is_null())
            {
                break chain;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "an escalation and its chain: {events}"
        );
        tokio::task::yield_now().await;
    };
    let kinds: Vec<&str> = chain
        .iter()
        .map(|event| event["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["ask_error", "crash", "escalation"], "{chain:?}");
    for pair in chain.windows(2) {
        assert_eq!(pair[1]["caused_by"], pair[0]["id"]);
    }
    let (status, missing) = json(&console, "GET", "/api/chain/999999", &[]).await;
    assert_eq!(status, 404);
    assert_eq!(missing["error"], "no_event");
    console.shutdown().await;
}

#[tokio::test]
async fn an_open_breaker_shows_its_time_to_half_open() {
    let system = system().await;
    let console = served(&system, ConsoleConfig::default()).await;
    open_the_breaker(&system).await;
    let (_, snapshot) = json(&console, "GET", "/api/snapshot", &[]).await;
    let breaker = snapshot["breakers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|breaker| breaker["key"] == "flaky/work")
        .cloned()
        .expect("the breaker of flaky/work");
    assert_eq!(breaker["state"], "open", "{breaker}");
    assert!(
        breaker["half_open_in_ms"].as_u64().unwrap() > 0,
        "{breaker}"
    );
    console.shutdown().await;
}

#[tokio::test]
async fn actions_are_refused_with_a_typed_403_unless_enabled() {
    let system = system().await;
    let console = served(&system, ConsoleConfig::default()).await;
    for path in ["/api/actions/trip", "/api/actions/redrive/1"] {
        let (status, body) = json(&console, "POST", path, &[]).await;
        assert_eq!(status, 403, "{path}: {body}");
        assert_eq!(body["error"], "actions_disabled");
    }
    assert!(!system.budget().unwrap().is_tripped());
    console.shutdown().await;
}

#[tokio::test]
async fn with_a_token_an_action_needs_it_even_on_loopback() {
    let system = system().await;
    let config = ConsoleConfig::default().actions(Actions::new().token("s3cret"));
    let console = served(&system, config).await;
    let (status, body) = json(&console, "POST", "/api/actions/trip", &[]).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("bad_token")));
    let wrong = [("Authorization", "Bearer guess")];
    let (status, body) = json(&console, "POST", "/api/actions/trip", &wrong).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("bad_token")));
    let elsewhere = [
        ("Authorization", "Bearer s3cret"),
        ("Origin", "https://evil.example"),
    ];
    let (status, body) = json(&console, "POST", "/api/actions/trip", &elsewhere).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("cross_origin"))
    );
    assert!(!system.budget().unwrap().is_tripped());
    let right = [("Authorization", "Bearer s3cret")];
    let (status, body) = json(&console, "POST", "/api/actions/trip", &right).await;
    assert_eq!(status, 200, "{body}");
    assert!(system.budget().unwrap().is_tripped());
    console.shutdown().await;
}

#[tokio::test]
async fn a_dead_letter_is_listed_and_redriven_only_for_an_agent_named_for_it() {
    let system = system().await;
    let config = ConsoleConfig::default().actions(Actions::new().redrive::<Flaky>("flaky"));
    let console = served(&system, config).await;
    let flaky = system.agent_ref::<Flaky>("flaky").unwrap();
    let brittle = system.agent_ref::<Flaky>("brittle").unwrap();
    let attempt = || vec![FailedAttempt::new(ErrorClass::Transient, "gave up")];
    let letters = system.dead_letters();
    let ok = letters
        .push_task(&flaky, &"again".to_string(), attempt(), Usage::default())
        .await
        .unwrap();
    let unnamed = letters
        .push_task(&brittle, &"again".to_string(), attempt(), Usage::default())
        .await
        .unwrap();
    let (_, snapshot) = json(&console, "GET", "/api/snapshot", &[]).await;
    let listed: Vec<&Value> = snapshot["dead_letters"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(listed.len(), 2, "{snapshot}");
    assert_eq!(listed[0]["last_error"], "gave up");
    let (status, body) = json(
        &console,
        "POST",
        &format!("/api/actions/redrive/{}", unnamed.0),
        &[],
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (409, Some("no_redriver")));
    let (status, body) = json(
        &console,
        "POST",
        &format!("/api/actions/redrive/{}", ok.0),
        &[],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(letters.len(), 1, "the redriven letter is removed");
    let (status, body) = json(&console, "POST", "/api/actions/redrive/424242", &[]).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("no_letter")));
    console.shutdown().await;
}

#[tokio::test]
async fn shutting_down_ends_the_live_streams_of_connected_pages() {
    let system = system().await;
    let console = served(&system, ConsoleConfig::default()).await;
    let mut page = TcpStream::connect(console.local_addr()).await.unwrap();
    let request = "GET /api/stream HTTP/1.1\r\nHost: localhost\r\n\r\n";
    page.write_all(request.as_bytes()).await.unwrap();
    let mut first = [0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(5), page.read(&mut first))
        .await
        .expect("the stream answers")
        .unwrap();
    assert!(String::from_utf8_lossy(&first[..n]).contains("200 OK"));
    tokio::time::timeout(Duration::from_secs(5), console.shutdown())
        .await
        .expect("the console stops with a page connected");
    // The page reads the rest of the stream, then its end.
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), page.read_to_end(&mut rest))
        .await
        .expect("the stream ends")
        .unwrap();
}
