//! Failover: the next deployment on the classes named, cooldowns for a deployment that keeps
//! failing, a breaker per (provider, model), one deadline over every attempt.

use std::time::Duration;

use overseer_agent::{ModelClient, ModelError, ModelRequest, ScriptedModel};
use overseer_breaker::{BreakerConfig, BreakerRegistry};
use overseer_provider::{Cooldown, Deployment, OpenAiCompatible, Router};
use overseer_retry::{ClassSet, Classify, ErrorClass};
use serde_json::json;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

fn completion(text: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"model": "m", "choices": [{"index": 0,
        "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1}}))
}

async fn server(template: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(template)
        .mount(&server)
        .await;
    server
}

fn client(server: &MockServer) -> OpenAiCompatible {
    OpenAiCompatible::builder(format!("{}/v1", server.uri()), "m")
        .build()
        .unwrap()
}

async fn requests(server: &MockServer) -> usize {
    server.received_requests().await.unwrap().len()
}

#[tokio::test]
async fn a_failing_deployment_fails_over_to_the_next_and_cools_down() {
    let primary = server(ResponseTemplate::new(503)).await;
    let backup = server(completion("from the backup")).await;
    let router = Router::new([
        Deployment::new("east", "m", client(&primary)),
        Deployment::new("west", "m", client(&backup)),
    ])
    .cooldown(Cooldown::new(
        1,
        Duration::from_secs(60),
        Duration::from_secs(60),
    ));

    for _ in 0..2 {
        let answer = router.complete(ModelRequest::new("hi")).await.unwrap();
        assert_eq!(answer.text, "from the backup");
    }
    assert_eq!(
        requests(&primary).await,
        2,
        "tried until its second failure"
    );
    assert!(router
        .cooling_until(0, tokio::time::Instant::now())
        .is_some());

    let answer = router.complete(ModelRequest::new("hi")).await.unwrap();
    assert_eq!(answer.text, "from the backup");
    assert_eq!(requests(&primary).await, 2, "skipped while cooling down");
    assert_eq!(requests(&backup).await, 3);
}

#[tokio::test]
async fn a_permanent_error_does_not_fail_over_unless_named() {
    let primary = server(ResponseTemplate::new(400).set_body_json(json!({"error": {
        "message": "too long", "code": "context_length_exceeded"}})))
    .await;
    let backup = server(completion("bigger context")).await;
    let deployments = || {
        [
            Deployment::new("a", "small", client(&primary)),
            Deployment::new("b", "large", client(&backup)),
        ]
    };
    let error = Router::new(deployments())
        .complete(ModelRequest::new("hi"))
        .await
        .unwrap_err();
    assert_eq!(error.class(), ErrorClass::Permanent);
    assert_eq!(requests(&backup).await, 0);

    let router = Router::new(deployments()).failover_on(ClassSet::PERMANENT);
    let answer = router.complete(ModelRequest::new("hi")).await.unwrap();
    assert_eq!(answer.text, "bigger context");
}

#[tokio::test]
async fn when_every_deployment_cools_down_the_error_says_how_long_to_wait() {
    let fails = |_: &str| Err(ModelError::Provider("down".into()));
    let router = Router::new([
        Deployment::new("a", "m", ScriptedModel::new().when("", fails)),
        Deployment::new("b", "m", ScriptedModel::new().when("", fails)),
    ])
    .cooldown(Cooldown::new(
        0,
        Duration::from_secs(60),
        Duration::from_secs(5),
    ));
    let first = router.complete(ModelRequest::new("hi")).await.unwrap_err();
    assert_eq!(
        first,
        ModelError::Provider("down".into()),
        "the last deployment's error"
    );
    let skipped = router.complete(ModelRequest::new("hi")).await.unwrap_err();
    match skipped {
        ModelError::RateLimited {
            retry_after: Some(wait),
            ..
        } => {
            assert!(
                wait <= Duration::from_secs(5) && wait > Duration::from_secs(4),
                "{wait:?}"
            )
        }
        other => panic!("expected a rate limit, got {other:?}"),
    }
}

#[tokio::test]
async fn an_open_breaker_skips_its_deployment() {
    let primary = ScriptedModel::new().when("", |_| Err(ModelError::Provider("down".into())));
    let backup = ScriptedModel::new().replies(["backup"]);
    let config = BreakerConfig::default()
        .minimum_calls(2)
        .failure_rate_threshold(0.5);
    let router = Router::new([
        Deployment::new("a", "m", primary.clone()),
        Deployment::new("b", "m", backup.clone()),
    ])
    .cooldown(Cooldown::new(
        u32::MAX,
        Duration::from_secs(60),
        Duration::ZERO,
    ))
    .breakers(BreakerRegistry::new(config).unwrap());
    for _ in 0..4 {
        assert_eq!(
            router.complete(ModelRequest::new("hi")).await.unwrap().text,
            "backup"
        );
    }
    assert_eq!(primary.calls(), 2, "its breaker opened after two failures");
    assert_eq!(backup.calls(), 4);
}

#[tokio::test]
async fn every_attempt_shares_the_requests_one_deadline() {
    let slow = server(completion("late").set_delay(Duration::from_secs(3))).await;
    let also_slow = server(completion("late too").set_delay(Duration::from_secs(3))).await;
    let router = Router::new([
        Deployment::new("a", "m", client(&slow)),
        Deployment::new("b", "m", client(&also_slow)),
    ]);
    let started = std::time::Instant::now();
    let error = router
        .complete(ModelRequest::new("hi").timeout(Duration::from_millis(300)))
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert_eq!(error.class(), ErrorClass::Transient, "{error}");
    assert!(
        took < Duration::from_secs(1),
        "two attempts within one 300 ms deadline: {took:?}"
    );
}
