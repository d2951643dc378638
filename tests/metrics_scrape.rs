//! Records a system's metrics with `overseer_observe::record_metrics`, exports them with the
//! Prometheus exporter on a loopback port, scrapes the endpoint with a raw HTTP GET and checks
//! the exact figures. A process has one global recorder: only one test here installs it (the
//! other runs the example, in its own process).

mod common;
#[path = "../examples/support/scrape.rs"]
mod scrape;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusBuilder;
use overseer::agent::{ModelError, ModelResponse};
use overseer::breaker::{Backoff, BreakerConfig, BreakerRegistry};
use overseer::budget::{Budget, Limits};
use overseer::prelude::*;
use overseer_observe::record_metrics;

/// Answers `Work`, fails `Flaky`, panics on `Crash`.
struct Worker;

enum Task {
    Work,
    Flaky,
    Crash,
}

impl Agent for Worker {
    type Task = Task;
    type Output = ();

    fn task_type(task: &Task) -> &'static str {
        match task {
            Task::Work => "work",
            Task::Flaky => "flaky",
            Task::Crash => "crash",
        }
    }

    async fn handle(&mut self, ctx: &mut AgentContext, task: Task) -> Result<(), AgentError> {
        match task {
            Task::Work => {
                ctx.report_usage(Usage::new(10, 5, 3));
                Ok(())
            }
            Task::Flaky => Err(AgentError::failed("flaky dependency down")),
            Task::Crash => panic!("worker crashed"),
        }
    }
}

/// Asks its model: `gpt-4o-mini`, answering with cached prompt tokens, or rate-limited when
/// the prompt says so.
struct Drafter;

struct Mini;

impl ModelClient for Mini {
    async fn complete(&self, request: ModelRequest) -> Result<ModelResponse, ModelError> {
        if request.prompt.contains("busy") {
            return Err(ModelError::RateLimited {
                message: "429".into(),
                retry_after: None,
            });
        }
        Ok(ModelResponse::new(
            "a draft",
            Usage::new(120, 45, 9).with_cached_input_tokens(100),
        ))
    }

    fn model_name(&self) -> Option<&str> {
        Some("gpt-4o-mini")
    }
}

impl Agent for Drafter {
    type Task = &'static str;
    type Output = String;

    async fn handle(
        &mut self,
        ctx: &mut AgentContext,
        prompt: &'static str,
    ) -> Result<String, AgentError> {
        Ok(ctx.model(&Mini, ModelRequest::new(prompt)).await?.text)
    }
}

/// The exposition's samples: (name, sorted labels but `system`) → value.
type Samples = BTreeMap<(String, Vec<(String, String)>), f64>;

/// The samples of `text`, each of which must carry the label `system="{system_name}"`.
fn parse(text: &str, system_name: &str) -> Samples {
    let mut samples = Samples::new();
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (series, value) = line.rsplit_once(' ').expect("a sample line");
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => {
                let mut labels: Vec<(String, String)> = rest
                    .trim_end_matches('}')
                    .split(',')
                    .filter(|pair| !pair.is_empty())
                    .map(|pair| {
                        let (key, value) = pair.split_once('=').expect("label pair");
                        (key.to_string(), value.trim_matches('"').to_string())
                    })
                    .collect();
                labels.sort();
                let system = labels.iter().position(|(key, _)| key == "system");
                let system = system.map(|at| labels.remove(at).1);
                assert_eq!(system.as_deref(), Some(system_name), "{line}");
                (name.to_string(), labels)
            }
            None => panic!("a sample without labels, so without `system`: {line}"),
        };
        samples.insert((name, labels), value.parse().expect("a number"));
    }
    samples
}

fn sample(samples: &Samples, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut labels: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    labels.sort();
    samples.get(&(name.to_string(), labels)).copied()
}

async fn run_system() -> Result<(), Box<dyn std::error::Error>> {
    let breakers = BreakerRegistry::new(
        BreakerConfig::default()
            .consecutive_failures(Some(2))
            .open_duration(Backoff::fixed(Duration::from_secs(600))),
    )?;
    let budget = Budget::builder()
        .process_limits(Limits::new().tokens(10_000).cost_micros(1_000))
        .build()?;
    let system = System::builder()
        .ask_timeout(Duration::from_secs(5))
        .breakers(breakers)
        .budget(budget)
        .build()
        .unwrap();
    let recorder = record_metrics(&system);
    let mut events = system.subscribe();
    system
        .start(
            SupervisorSpec::one_for_one("root")
                .intensity(5, Duration::from_secs(10))
                .child(system.agent(AgentSpec::new("worker", || Worker))?)
                .child(system.agent(AgentSpec::new("drafter", || Drafter))?),
        )
        .await?;
    let worker = system.agent_ref::<Worker>("worker")?;
    let drafter = system.agent_ref::<Drafter>("drafter")?;
    drafter.ask("draft").await?;
    assert!(drafter.ask("busy").await.is_err());

    for _ in 0..3 {
        worker.ask(Task::Work).await?;
    }
    for _ in 0..2 {
        assert_eq!(worker.ask(Task::Flaky).await.unwrap_err().kind(), "failed");
    }
    assert_eq!(worker.ask(Task::Crash).await.unwrap_err().kind(), "crashed");
    // Wait (bounded) for the restart the crash causes: the second start of root/worker.
    let restarted = async {
        let mut starts = 0;
        while let Ok(event) = events.recv().await {
            if let SystemEvent::Lifecycle(event) = event {
                if event.path.as_str() == "root/worker" && event.kind == EventKind::Started {
                    starts += 1;
                    if starts == 2 {
                        return;
                    }
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), restarted).await?;

    system.shutdown(Duration::from_secs(5)).await?;
    // The recorder ends with the stream, so every event has been recorded.
    recorder.await?;
    Ok(())
}

#[test]
fn prometheus_scrape_shows_the_exact_figures_of_a_run() {
    let port = scrape::free_loopback_port().expect("a free loopback port");
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    // Installed outside any runtime: the exporter serves from its own thread.
    PrometheusBuilder::new()
        .with_http_listener(address)
        .install()
        .expect("install the Prometheus recorder");
    std::panic::set_hook(Box::new(|_| {})); // the worker's crash is expected
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(run_system())
        .expect("the system runs");
    let _ = std::panic::take_hook();

    // The listener may still be binding: poll the endpoint until it answers, with a deadline.
    let text = scrape::scrape_once_up(address, Duration::from_secs(10))
        .unwrap_or_else(|error| panic!("no scrape from {address}: {error}"));
    let samples = parse(&text, "default");
    let get = |name: &str, labels: &[(&str, &str)]| {
        sample(&samples, name, labels)
            .unwrap_or_else(|| panic!("no sample {name}{labels:?} in:\n{text}"))
    };
    let work = [("agent", "worker"), ("task_type", "work")];
    let flaky = [("agent", "worker"), ("task_type", "flaky")];

    let asks = |task_type: &str, outcome: &str| {
        get(
            "overseer_asks_total",
            &[
                ("agent", "worker"),
                ("task_type", task_type),
                ("outcome", outcome),
            ],
        )
    };
    assert_eq!(asks("work", "ok"), 3.0);
    assert_eq!(asks("flaky", "failed"), 2.0);
    assert_eq!(asks("crash", "crashed"), 1.0);
    assert_eq!(
        get("overseer_restarts_total", &[("path", "root/worker")]),
        1.0
    );
    assert_eq!(
        get("overseer_abnormal_exits_total", &[("path", "root/worker")]),
        1.0
    );
    assert!(
        !text.contains("overseer_escalations_total"),
        "nothing escalated:\n{text}"
    );
    assert_eq!(get("overseer_ask_latency_seconds_count", &work), 3.0);

    let tokens = |direction: &str| {
        get(
            "overseer_tokens_total",
            &[work[0], work[1], ("direction", direction)],
        )
    };
    assert_eq!(tokens("input"), 30.0);
    assert_eq!(tokens("output"), 15.0);
    assert_eq!(get("overseer_cost_micro_usd_total", &work), 9.0);

    // Two failures in a row opened the flaky breaker; the others stayed closed.
    let state = |key: [(&'static str, &'static str); 2], state: &'static str| {
        get(
            "overseer_breaker_state",
            &[key[0], key[1], ("state", state)],
        )
    };
    assert_eq!(state(flaky, "open"), 1.0);
    assert_eq!(state(flaky, "closed"), 0.0);
    assert_eq!(state(work, "closed"), 1.0);
    assert_eq!(state(work, "open"), 0.0);
    assert_eq!(get("overseer_breakers_open", &[]), 1.0);
    // Every queue drained, each at the default capacity.
    assert_eq!(
        get("overseer_queue_depth_tasks", &[("agent", "worker")]),
        0.0
    );
    assert_eq!(
        get("overseer_queue_capacity_tasks", &[("agent", "worker")]),
        256.0
    );
    assert_eq!(
        get(
            "overseer_breaker_transitions_total",
            &[flaky[0], flaky[1], ("to", "open")]
        ),
        1.0
    );

    // One metric per unit: tokens, micro-USD, steps.
    // The worker's 45 tokens and 9 micro-USD, and the drafter's model call's 165 and 9.
    assert_eq!(get("overseer_budget_used_tokens", &[]), 210.0);
    assert_eq!(get("overseer_budget_used_micro_usd", &[]), 18.0);
    assert_eq!(get("overseer_budget_reserved_tokens", &[]), 0.0);
    assert_eq!(get("overseer_budget_limit_tokens", &[]), 10_000.0);
    assert_eq!(get("overseer_budget_limit_micro_usd", &[]), 1_000.0);
    assert_eq!(
        sample(&samples, "overseer_budget_limit_steps", &[]),
        None,
        "steps are unlimited"
    );
    assert!(
        !samples
            .keys()
            .any(|(name, _)| name == "overseer_budget_used"),
        "no metric mixes units:\n{text}"
    );
    assert_eq!(get("overseer_kill_switch_tripped", &[]), 0.0);

    // Each model call, by the model asked for and its outcome, and its tokens by kind.
    let mini = |key: &'static str, value: &'static str| {
        [("agent", "drafter"), ("model", "gpt-4o-mini"), (key, value)]
    };
    assert_eq!(
        get("overseer_model_calls_total", &mini("outcome", "ok")),
        1.0
    );
    assert_eq!(
        get(
            "overseer_model_calls_total",
            &mini("outcome", "rate_limited")
        ),
        1.0
    );
    assert_eq!(
        get("overseer_model_tokens_total", &mini("kind", "input")),
        120.0
    );
    assert_eq!(
        get("overseer_model_tokens_total", &mini("kind", "output")),
        45.0
    );
    assert_eq!(
        get("overseer_model_tokens_total", &mini("kind", "cached_input")),
        100.0
    );
    assert!(
        !text.contains("overseer_model_calls_total{agent=\"worker\""),
        "the worker made no model call:\n{text}"
    );
}

/// The example prints its scrape URL and one scrape of its own endpoint, showing the crash's
/// restart and the breaker it opens. `cargo test` builds examples; when running this file
/// alone, build them first: `cargo build --examples`.
#[test]
fn metrics_prometheus_example_prints_one_scrape() {
    let (_, out) = common::run_example("metrics_prometheus", &[]);
    assert!(out.contains("scrape URL: http://127.0.0.1:"), "{out}");
    let samples = parse(out.split_once("---\n").expect("a scrape").1, "team");
    let get = |name: &str, labels: &[(&str, &str)]| {
        sample(&samples, name, labels).unwrap_or_else(|| panic!("no {name}{labels:?}:\n{out}"))
    };
    assert_eq!(
        get("overseer_restarts_total", &[("path", "team/writer")]),
        1.0
    );
    let cite = [("agent", "researcher"), ("task_type", "cite")];
    assert_eq!(
        get(
            "overseer_breaker_state",
            &[cite[0], cite[1], ("state", "open")]
        ),
        1.0
    );
    assert_eq!(get("overseer_breakers_open", &[]), 1.0);
    assert_eq!(
        get(
            "overseer_asks_total",
            &[cite[0], cite[1], ("outcome", "failed")]
        ),
        2.0
    );
    assert_eq!(
        get(
            "overseer_asks_total",
            &[cite[0], cite[1], ("outcome", "breaker_open")]
        ),
        2.0,
        "claims 3 and 4 failed in a row, claims 5 and 6 were rejected"
    );
}
