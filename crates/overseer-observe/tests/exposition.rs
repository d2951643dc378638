//! The metrics as Prometheus sees them: two systems in one process, each with its own
//! recorder, rendered by the Prometheus exporter and read back by parsers that are not ours
//! (the `prometheus-parse` crate, and `promtool check metrics` when it is installed).
//!
//! The exporter is installed as the thread's local recorder and the runtime is
//! current-thread, so the recorder tasks record into it and no global state is shared with
//! other tests.

use std::collections::{BTreeSet, HashMap};
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use overseer_agent::prelude::*;
use overseer_breaker::{Backoff, BreakerConfig, BreakerRegistry};
use overseer_budget::{Budget, Limits};
use overseer_observe::{names, MetricsConfig, METRICS};
use overseer_supervisor::prelude::*;
use prometheus_parse::{Scrape, Value};

/// Answers `true` tasks (10 in, 5 out, 3 micro-USD), fails `false` ones.
struct Worker;

impl Agent for Worker {
    type Task = bool;
    type Output = ();

    fn task_type(ok: &bool) -> &'static str {
        if *ok {
            "work"
        } else {
            "flaky"
        }
    }

    async fn handle(&mut self, ctx: &mut AgentContext, ok: bool) -> Result<(), AgentError> {
        if ok {
            ctx.report_usage(Usage::new(10, 5, 3));
            Ok(())
        } else {
            Err(AgentError::failed("down"))
        }
    }
}

/// Runs one system named `name`: `work` good asks, then two failing ones (which open the
/// `flaky` breaker), then shuts it down and waits for its recorder.
async fn run(name: &str, work: usize) {
    let breakers = BreakerRegistry::new(
        BreakerConfig::default()
            .consecutive_failures(Some(2))
            .open_duration(Backoff::fixed(Duration::from_secs(600))),
    )
    .unwrap();
    let budget = Budget::builder()
        .process_limits(Limits::new().tokens(10_000).cost_micros(1_000))
        .build()
        .unwrap();
    let system = System::builder()
        .breakers(breakers)
        .budget(budget)
        .build()
        .unwrap();
    let recorder = MetricsConfig::new().system(name).spawn(&system);
    system
        .start(
            SupervisorSpec::one_for_one("root")
                .child(system.agent(AgentSpec::new("worker", || Worker)).unwrap()),
        )
        .await
        .unwrap();
    let worker = system.agent_ref::<Worker>("worker").unwrap();
    for _ in 0..work {
        worker.ask(true).await.unwrap();
    }
    for _ in 0..2 {
        assert!(worker.ask(false).await.is_err());
    }
    system.shutdown(Duration::from_secs(5)).await.unwrap();
    recorder.await.unwrap();
}

/// Two systems with the same tree, one process, one exporter: the exposition text.
fn two_systems_exposition() -> String {
    let recorder = PrometheusBuilder::new()
        .set_buckets(&[0.001, 0.01, 0.1, 1.0])
        .unwrap()
        .build_recorder();
    let handle: PrometheusHandle = recorder.handle();
    let _local = metrics::set_default_local_recorder(&recorder);
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            run("alpha", 3).await;
            run("beta", 1).await;
        });
    handle.render()
}

fn parse(text: &str) -> Scrape {
    Scrape::parse(text.lines().map(|line| Ok(line.to_string()))).expect("the exposition parses")
}

/// The value of the sample `name` whose labels include all of `labels`, if exactly one has.
fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let found: Vec<f64> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .filter_map(|s| match s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => Some(v),
            _ => None,
        })
        .collect();
    match found.as_slice() {
        [one] => Some(*one),
        _ => None,
    }
}

#[test]
fn the_exposition_parses_and_every_metric_has_help_type_and_the_system_label() {
    let text = two_systems_exposition();
    let scrape = parse(&text);
    assert!(!scrape.samples.is_empty(), "{text}");
    let typed: HashMap<&str, &str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .collect();
    let ours: HashMap<&str, _> = METRICS.iter().map(|m| (m.name, m)).collect();
    for sample in &scrape.samples {
        let name = sample.metric.as_str();
        // A histogram's `_sum` and `_count` samples belong to its family.
        let family = ["_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .filter(|base| ours.contains_key(base))
            .unwrap_or(name);
        let info = ours
            .get(family)
            .unwrap_or_else(|| panic!("{family} is not in METRICS:\n{text}"));
        assert!(
            scrape.docs.contains_key(family),
            "{family} has no # HELP:\n{text}"
        );
        assert!(typed.contains_key(family), "{family} has no # TYPE");
        let system = sample.labels.get("system");
        assert!(
            matches!(system, Some("alpha" | "beta")),
            "{family} without its system label:\n{text}"
        );
        // Each series carries exactly the documented labels (and `le` for buckets).
        let mut keys: BTreeSet<&str> = sample.labels.keys().map(String::as_str).collect();
        keys.remove("system");
        let documented: BTreeSet<&str> = info.labels.iter().copied().collect();
        assert_eq!(keys, documented, "{family}'s labels");
    }
}

#[test]
fn two_systems_in_one_process_do_not_add_into_one_series() {
    let scrape = parse(&two_systems_exposition());
    let asks = |system: &str| {
        value(
            &scrape,
            names::ASKS,
            &[
                ("system", system),
                ("agent", "worker"),
                ("task_type", "work"),
                ("outcome", "ok"),
            ],
        )
    };
    assert_eq!(asks("alpha"), Some(3.0));
    assert_eq!(asks("beta"), Some(1.0));
    let used = |system: &str| value(&scrape, names::BUDGET_USED_TOKENS, &[("system", system)]);
    assert_eq!(used("alpha"), Some(45.0));
    assert_eq!(used("beta"), Some(15.0));
    let cost = |system: &str| {
        value(
            &scrape,
            names::COST,
            &[("system", system), ("task_type", "work")],
        )
    };
    assert_eq!(cost("alpha"), Some(9.0));
    assert_eq!(cost("beta"), Some(3.0));
}

#[test]
fn a_breaker_is_one_series_per_state_with_exactly_the_current_one_set() {
    let scrape = parse(&two_systems_exposition());
    for (task_type, current) in [("flaky", "open"), ("work", "closed")] {
        for state in ["closed", "half_open", "open", "forced_open", "disabled"] {
            let expected = if state == current { 1.0 } else { 0.0 };
            assert_eq!(
                value(
                    &scrape,
                    names::BREAKER_STATE,
                    &[
                        ("system", "alpha"),
                        ("task_type", task_type),
                        ("state", state)
                    ],
                ),
                Some(expected),
                "{task_type} {state}"
            );
        }
    }
    assert_eq!(
        value(&scrape, names::BREAKERS_OPEN, &[("system", "beta")]),
        Some(1.0)
    );
}

/// `promtool check metrics` (Debian's `prometheus` package) lints the exposition: names,
/// units, `_total` on counters, HELP. Under `CI=1` a missing promtool fails the test;
/// elsewhere it is skipped with a message.
#[test]
fn promtool_finds_nothing_to_lint_in_the_exposition() {
    let text = two_systems_exposition();
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(error) if std::env::var_os("CI").is_some_and(|v| v == "1") => {
            panic!("CI=1 but promtool cannot run ({error}): apt-get install prometheus")
        }
        Err(error) => {
            eprintln!("skipped: promtool not found ({error}); apt-get install prometheus");
            return;
        }
    };
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool runs");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && report.trim().is_empty(),
        "promtool check metrics:\n{report}\n--- the exposition ---\n{text}"
    );
}
