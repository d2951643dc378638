//! OpenTelemetry export: a run's events become spans in the SDK's in-memory exporter, asks as
//! GenAI `invoke_agent` spans with token usage, every effect linked to (and a child of) its
//! cause, even when the cause arrives after it. Paused clock; no sleeps.
#![cfg(feature = "otel")]

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{SpanId, SpanKind, Status, TracerProvider as _};
use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracer, SdkTracerProvider, SpanData};
use overseer_agent::prelude::*;
use overseer_agent::{AgentName, AskEvent, AskOutcome, BreakerEvent, KillSwitchEvent};
use overseer_breaker::{State, Trigger};
use overseer_budget::{
    Budget, InFlightPolicy, KillSwitch, KillSwitchConfig, Limits, TripReason, TripReport,
};
use overseer_observe::otel::attribute;
use overseer_observe::{ExportStats, OtelExporter};
use overseer_supervisor::prelude::*;
use overseer_supervisor::{ChildId, ChildPath, EventId, EventKind, ExitReason, LifecycleEvent};
use tokio::sync::broadcast;

/// Drafts for 1.5 s (tokio clock) and reports the usage it is given.
struct Writer;

impl Agent for Writer {
    type Task = Usage;
    type Output = String;

    fn task_type(_: &Usage) -> &'static str {
        "draft"
    }

    async fn handle(&mut self, ctx: &mut AgentContext, usage: Usage) -> Result<String, AgentError> {
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        ctx.report_usage(usage);
        ctx.report_model("gpt-4o-mini");
        Ok("a draft".to_string())
    }
}

/// Panics on every task.
struct Crasher;

impl Agent for Crasher {
    type Task = String;
    type Output = String;

    fn task_type(_: &String) -> &'static str {
        "check"
    }

    async fn handle(&mut self, _: &mut AgentContext, _: String) -> Result<String, AgentError> {
        panic!("the model returned garbage")
    }
}

fn in_memory() -> (InMemorySpanExporter, SdkTracerProvider) {
    let spans = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(spans.clone())
        .build();
    (spans, provider)
}

fn tracer(provider: &SdkTracerProvider) -> SdkTracer {
    provider.tracer("test")
}

fn attributes(span: &SpanData) -> BTreeMap<String, Value> {
    span.attributes
        .iter()
        .map(|kv| (kv.key.as_str().to_string(), kv.value.clone()))
        .collect()
}

fn expected(pairs: Vec<(&str, Value)>) -> BTreeMap<String, Value> {
    pairs
        .into_iter()
        .map(|(key, value)| (key.to_string(), value))
        .collect()
}

fn named<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    let found: Vec<&SpanData> = spans.iter().filter(|span| span.name == name).collect();
    assert_eq!(
        found.len(),
        1,
        "one span named {name:?} in {:?}",
        names(spans)
    );
    found[0]
}

/// The span of the event with this id.
fn of_event(spans: &[SpanData], id: EventId) -> &SpanData {
    let id = int(id.get());
    spans
        .iter()
        .find(|span| attributes(span).get("overseer.event_id") == Some(&id))
        .expect("a span for every event")
}

fn names(spans: &[SpanData]) -> Vec<String> {
    spans.iter().map(|span| span.name.to_string()).collect()
}

fn int(value: u64) -> Value {
    Value::I64(i64::try_from(value).expect("small"))
}

/// `span` is a child of `cause`, in its trace, and links to it as its cause.
fn assert_caused_by(span: &SpanData, cause: &SpanData) {
    assert_eq!(
        span.parent_span_id,
        cause.span_context.span_id(),
        "{} is a child of {}",
        span.name,
        cause.name
    );
    assert_eq!(span.span_context.trace_id(), cause.span_context.trace_id());
    assert!(!span.parent_span_is_remote);
    assert_eq!(span.links.links.len(), 1, "{} has one link", span.name);
    let link = &span.links.links[0];
    assert_eq!(link.span_context, cause.span_context);
    assert_eq!(
        link.attributes,
        [KeyValue::new("overseer.link", "caused_by")]
    );
}

fn assert_root(span: &SpanData) {
    assert_eq!(
        span.parent_span_id,
        SpanId::INVALID,
        "{} is a root",
        span.name
    );
    assert!(span.links.links.is_empty(), "{} has no link", span.name);
}

fn path(text: &str) -> ChildPath {
    let mut parts = text.split('/');
    let mut path = ChildPath::root(&ChildId::from(parts.next().expect("a root")));
    for part in parts {
        path = path.join(&ChildId::from(part));
    }
    path
}

fn id(value: u64) -> EventId {
    EventId::new(value).expect("non-zero")
}

fn lifecycle(own: u64, cause: Option<u64>, secs: u64, at: &str, kind: EventKind) -> SystemEvent {
    SystemEvent::Lifecycle(LifecycleEvent::new(
        id(own),
        cause.map(id),
        Duration::from_secs(secs),
        path(at),
        kind,
    ))
}

fn ask(own: u64, secs: u64, latency_secs: u64, outcome: AskOutcome) -> SystemEvent {
    let mut ask = AskEvent::new(id(own), AgentName::from("worker"), "check", outcome);
    ask.elapsed = Duration::from_secs(secs);
    ask.path = Some(path("root/worker"));
    ask.latency = Duration::from_secs(latency_secs);
    ask.usage = Usage::new(7, 3, 11);
    ask.injected = Some(Cow::Borrowed("panic"));
    SystemEvent::Ask(ask)
}

fn panicked() -> EventKind {
    EventKind::Stopped {
        reason: ExitReason::Panicked("boom".into()),
    }
}

#[tokio::test(start_paused = true)]
async fn a_run_becomes_spans_with_gen_ai_usage_and_causal_links(
) -> Result<(), Box<dyn std::error::Error>> {
    let (spans, provider) = in_memory();
    let budget = Budget::builder()
        .process_limits(Limits::new().tokens(200))
        .build()?;
    let system = System::builder()
        .ask_timeout(Duration::from_secs(10))
        .budget(budget)
        .build()
        .unwrap();
    let exporting = OtelExporter::from_provider(&provider, system.created_at())
        .provider_name("openai")
        .spawn(&system);
    let mut stream = system.subscribe();
    let root = SupervisorSpec::one_for_one("root")
        .intensity(5, Duration::from_secs(60))
        .child(system.agent(AgentSpec::new("writer", || Writer))?)
        .child(system.agent(AgentSpec::new("crasher", || Crasher))?);
    system.start(root).await?;

    tokio::time::advance(Duration::from_secs(3)).await;
    // 165 of 200 tokens: the 70 % tier is crossed.
    let writer = system.agent_ref::<Writer>("writer")?;
    writer
        .ask(Usage::new(120, 45, 900).with_cached_input_tokens(100))
        .await?;
    let crasher = system.agent_ref::<Crasher>("crasher")?;
    let crash = crasher.ask("the draft".to_string()).await;
    assert!(matches!(crash, Err(AskError::Crashed { .. })), "{crash:?}");
    system.shutdown(Duration::from_secs(5)).await?;

    let stats = exporting.await?;
    let mut events = Vec::new();
    while let Ok(event) = stream.recv().await {
        events.push(event);
    }
    let finished = spans.get_finished_spans()?;
    assert_eq!(finished.len(), events.len(), "one span per event");
    assert_eq!(stats.spans, events.len() as u64);
    assert_eq!(stats.unlinked, 0, "every cause arrived");
    assert_eq!(stats.lagged, 0);
    assert!(
        stats.held >= 2,
        "the crash and its restart waited for the ask: {stats:?}"
    );
    let exported_ids: Vec<Value> = finished
        .iter()
        .map(|span| attributes(span)["overseer.event_id"].clone())
        .collect();
    for event in &events {
        assert!(exported_ids.contains(&int(event.id().get())), "{event:?}");
    }

    // The writer's ask: a GenAI invoke_agent span with its usage, timed by the tokio clock.
    let asked = events
        .iter()
        .find_map(|event| match event {
            SystemEvent::Ask(ask) if ask.agent.as_str() == "writer" => Some(ask),
            _ => None,
        })
        .expect("the writer's ask");
    assert_eq!(asked.latency, Duration::from_millis(1_500));
    let ask_span = named(&finished, "invoke_agent writer");
    assert_eq!(ask_span.span_kind, SpanKind::Internal);
    assert_eq!(ask_span.status, Status::Unset);
    assert_eq!(
        ask_span.start_time,
        system.created_at() + asked.elapsed - asked.latency
    );
    assert_eq!(ask_span.end_time, system.created_at() + asked.elapsed);
    assert!(asked.elapsed >= Duration::from_millis(4_500));
    assert_eq!(
        attributes(ask_span),
        expected(vec![
            ("gen_ai.operation.name", "invoke_agent".into()),
            ("gen_ai.agent.name", "writer".into()),
            ("gen_ai.provider.name", "openai".into()),
            ("gen_ai.request.model", "gpt-4o-mini".into()),
            ("gen_ai.usage.input_tokens", Value::I64(120)),
            ("gen_ai.usage.output_tokens", Value::I64(45)),
            ("gen_ai.usage.cache_read.input_tokens", Value::I64(100)),
            ("overseer.event", "ask".into()),
            ("overseer.event_id", int(asked.id.get())),
            ("overseer.path", "root/writer".into()),
            ("overseer.task_type", "draft".into()),
            ("overseer.outcome", "ok".into()),
            ("overseer.cost_micros", Value::I64(900)),
        ])
    );
    assert_eq!(
        ask_span.instrumentation_scope.name(),
        overseer_observe::otel::SCOPE_NAME
    );

    // The budget warning it caused: a zero-length child of the ask.
    let warning = named(&finished, "budget_warning tokens");
    assert_caused_by(warning, ask_span);
    assert_eq!(warning.start_time, warning.end_time);
    let warning_attributes = attributes(warning);
    for (key, value) in [
        ("overseer.event", Value::from("budget_warning")),
        ("overseer.caused_by", int(asked.id.get())),
        ("overseer.budget.scope", "process".into()),
        ("overseer.budget.dimension", "tokens".into()),
        ("overseer.budget.tier", Value::I64(1)),
        ("overseer.budget.tier_fraction", Value::F64(0.7)),
        ("overseer.budget.used", Value::I64(165)),
        ("overseer.budget.limit", Value::I64(200)),
    ] {
        assert_eq!(warning_attributes.get(key), Some(&value), "{key}");
    }

    // The crasher's ask failed: an error span with the message and error.type.
    let crashed = events
        .iter()
        .find_map(|event| match event {
            SystemEvent::Ask(ask) if ask.agent.as_str() == "crasher" => Some(ask),
            _ => None,
        })
        .expect("the crasher's ask");
    let AskOutcome::Error { message, .. } = &crashed.outcome else {
        panic!("the crasher's ask failed: {crashed:?}");
    };
    let crashed_span = named(&finished, "invoke_agent crasher");
    assert_eq!(crashed_span.status, Status::error(message.clone()));
    assert!(message.contains("the model returned garbage"), "{message}");
    let crashed_attributes = attributes(crashed_span);
    assert_eq!(crashed_attributes["error.type"], "crashed".into());
    assert_eq!(crashed_attributes["overseer.outcome"], "crashed".into());
    assert_eq!(
        crashed_attributes["gen_ai.usage.input_tokens"],
        Value::I64(0)
    );
    assert_root(crashed_span);

    // The crash was published before the ask that caused it; its span still links to it.
    let crash_position = events
        .iter()
        .position(|event| {
            matches!(event, SystemEvent::Lifecycle(lifecycle)
            if lifecycle.kind == EventKind::Stopped {
                reason: ExitReason::Panicked("the model returned garbage".into()),
            })
        })
        .expect("the crash");
    let ask_position = events
        .iter()
        .position(|event| event.id() == crashed.id)
        .expect("the ask");
    assert!(crash_position < ask_position, "the crash came first");
    let crash_span = of_event(&finished, events[crash_position].id());
    assert_eq!(crash_span.name, "stopped root/crasher");
    assert_caused_by(crash_span, crashed_span);
    assert_eq!(
        crash_span.status,
        Status::error("panicked: the model returned garbage")
    );
    let crash_attributes = attributes(crash_span);
    assert_eq!(crash_attributes["error.type"], "panicked".into());
    assert_eq!(
        crash_attributes["overseer.reason"],
        "panicked: the model returned garbage".into()
    );
    assert_eq!(
        crash_attributes["overseer.caused_by"],
        int(crashed.id.get())
    );

    // The restart links to the crash, in the same trace.
    let restart_span = named(&finished, "restarted root/crasher");
    assert_caused_by(restart_span, crash_span);
    assert_eq!(
        attributes(restart_span)["overseer.restart"],
        Value::Bool(true)
    );
    assert_eq!(restart_span.status, Status::Unset);

    // The first start: the root's span holds its children's.
    let root_started = named(&finished, "started root");
    assert_root(root_started);
    assert_eq!(
        attributes(root_started)["overseer.restart"],
        Value::Bool(false)
    );
    assert_caused_by(named(&finished, "started root/writer"), root_started);

    // An orderly shutdown is no error.
    let stopped = named(&finished, "stopped root/writer");
    assert_eq!(stopped.status, Status::Unset);
    assert_eq!(attributes(stopped)["overseer.reason"], "shutdown".into());
    assert!(!attributes(stopped).contains_key("error.type"));
    provider.shutdown()?;
    Ok(())
}

#[test]
fn an_effect_waits_for_a_cause_that_arrives_after_it() {
    let (spans, provider) = in_memory();
    let origin = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
    let mut exporter = OtelExporter::new(tracer(&provider), origin);

    // The ask (id 1) crashed the worker: the crash (2) and the restart (3) come first.
    exporter.export(&lifecycle(2, Some(1), 5, "root/worker", panicked()));
    exporter.export(&lifecycle(3, Some(2), 5, "root/worker", EventKind::Started));
    assert_eq!(exporter.waiting(), 2);
    assert!(spans.get_finished_spans().unwrap().is_empty());
    let outcome = AskOutcome::Error {
        kind: Cow::Borrowed("crashed"),
        message: "worker crashed".into(),
    };
    exporter.export(&ask(1, 5, 2, outcome));
    assert_eq!(exporter.waiting(), 0);

    let finished = spans.get_finished_spans().unwrap();
    assert_eq!(
        names(&finished),
        [
            "invoke_agent worker",
            "stopped root/worker",
            "started root/worker"
        ],
        "the cause is exported first, then what waited for it"
    );
    let [ask_span, crash, restart] = &finished[..] else {
        unreachable!()
    };
    assert_eq!(ask_span.start_time, origin + Duration::from_secs(3));
    assert_eq!(ask_span.end_time, origin + Duration::from_secs(5));
    assert_eq!(
        attributes(ask_span)["overseer.injected_fault"],
        "panic".into()
    );
    assert_caused_by(crash, ask_span);
    assert_eq!(crash.start_time, origin + Duration::from_secs(5));
    assert_caused_by(restart, crash);
    assert_eq!(
        attributes(restart)["overseer.restart"],
        Value::Bool(false),
        "this exporter never saw the first start"
    );
    let stats: ExportStats = exporter.stats();
    assert_eq!(
        (stats.spans, stats.held, stats.unlinked, stats.lagged),
        (3, 2, 0, 0)
    );
}

#[test]
fn an_effect_whose_cause_never_comes_is_exported_unlinked_after_max_wait() {
    let (spans, provider) = in_memory();
    let mut exporter = OtelExporter::new(tracer(&provider), SystemTime::UNIX_EPOCH)
        .max_wait(Duration::from_secs(30));

    // A tell (id 9) has an id but no event: the crash it caused waits in vain.
    exporter.export(&lifecycle(10, Some(9), 6, "root/worker", panicked()));
    exporter.export(&lifecycle(
        11,
        Some(10),
        6,
        "root/worker",
        EventKind::Started,
    ));
    exporter.export(&lifecycle(12, None, 35, "root/other", EventKind::Started));
    assert_eq!(
        exporter.waiting(),
        2,
        "6 s + 30 s is not yet reached at 35 s"
    );
    exporter.export(&lifecycle(13, None, 36, "root/other", EventKind::Started));
    assert_eq!(exporter.waiting(), 0);

    let finished = spans.get_finished_spans().unwrap();
    let crash = named(&finished, "stopped root/worker");
    assert_root(crash);
    assert_eq!(attributes(crash)["overseer.caused_by"], Value::I64(9));
    assert_caused_by(named(&finished, "started root/worker"), crash);
    assert_eq!(
        attributes(named(&finished, "restarted root/other"))["overseer.restart"],
        Value::Bool(true)
    );

    // At the end, whatever still waits is flushed, unlinked.
    exporter.export(&lifecycle(20, Some(19), 40, "root/worker", panicked()));
    exporter.flush();
    let stats = exporter.stats();
    assert_eq!((stats.spans, stats.held, stats.unlinked), (5, 3, 2));
}

#[tokio::test(start_paused = true)]
async fn a_quiet_stream_does_not_hold_an_effect_past_max_wait(
) -> Result<(), Box<dyn std::error::Error>> {
    let (spans, provider) = in_memory();
    let exporter = OtelExporter::new(tracer(&provider), SystemTime::UNIX_EPOCH)
        .max_wait(Duration::from_secs(30));
    let (sender, receiver) = broadcast::channel(16);
    let running = tokio::spawn(exporter.run(receiver));

    sender.send(lifecycle(10, Some(9), 0, "root/worker", panicked()))?;
    let finished = |spans: &InMemorySpanExporter| spans.get_finished_spans().unwrap().len();
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert_eq!(finished(&spans), 0, "waiting for its cause");
    tokio::time::advance(Duration::from_secs(30)).await;
    let mut polls = 0;
    while finished(&spans) == 0 {
        polls += 1;
        assert!(
            polls < 1_000,
            "exported once max_wait passed, with the stream still open"
        );
        tokio::task::yield_now().await;
    }

    drop(sender);
    let stats = running.await?;
    assert_eq!((stats.spans, stats.unlinked), (1, 1));
    Ok(())
}

#[tokio::test]
async fn a_lagging_receiver_is_counted_and_export_goes_on() {
    let (spans, provider) = in_memory();
    let exporter = OtelExporter::new(tracer(&provider), SystemTime::UNIX_EPOCH);
    let (sender, receiver) = broadcast::channel(2);
    for own in 1..=5 {
        sender
            .send(lifecycle(own, None, own, "root", EventKind::Started))
            .expect("a receiver");
    }
    drop(sender);

    let stats = exporter.run(receiver).await;
    assert_eq!((stats.lagged, stats.spans), (3, 2));
    let ids: Vec<Value> = spans
        .get_finished_spans()
        .unwrap()
        .iter()
        .map(|span| attributes(span)["overseer.event_id"].clone())
        .collect();
    assert_eq!(
        ids,
        [Value::I64(4), Value::I64(5)],
        "the two newest survived"
    );
}

/// The report of a switch tripped by an operator 5 s after it started, without a ledger or an
/// error-rate trigger, that cancels in-flight calls.
fn manual_trip_report() -> TripReport {
    let started = tokio::time::Instant::now();
    let config = KillSwitchConfig::new().in_flight(InFlightPolicy::CancelNow);
    let switch = KillSwitch::new_at(config, started).expect("a valid configuration");
    switch.trip_at(
        TripReason::manual("operator"),
        started + Duration::from_secs(5),
    );
    switch.report().expect("tripped").clone()
}

#[test]
fn breaker_and_kill_switch_spans_carry_their_figures() {
    let (spans, provider) = in_memory();
    let mut exporter = OtelExporter::new(tracer(&provider), SystemTime::UNIX_EPOCH);
    exporter.export(&ask(1, 5, 1, AskOutcome::Ok));
    let mut opened = BreakerEvent::new(
        id(2),
        AgentName::from("worker"),
        "check",
        State::Closed,
        State::Open,
        Trigger::ConsecutiveFailures,
    );
    opened.caused_by = Some(id(1));
    opened.elapsed = Duration::from_secs(5);
    opened.path = Some(path("root/worker"));
    opened.failure_rate = 0.5;
    opened.calls_in_window = 4;
    opened.consecutive_failures = 2;
    opened.open_for = Some(Duration::from_secs(30));
    exporter.export(&SystemEvent::Breaker(opened));
    let mut tripped = KillSwitchEvent::new(id(3), manual_trip_report());
    tripped.caused_by = Some(id(1));
    tripped.elapsed = Duration::from_secs(5);
    tripped.path = Some(path("root/worker"));
    exporter.export(&SystemEvent::KillSwitchTripped(tripped));

    let finished = spans.get_finished_spans().unwrap();
    let ask_span = named(&finished, "invoke_agent worker");
    let breaker = named(&finished, "breaker open worker/check");
    assert_caused_by(breaker, ask_span);
    assert_eq!(breaker.status, Status::Unset);
    assert_eq!(
        attributes(breaker),
        expected(vec![
            ("overseer.event", "breaker".into()),
            ("overseer.event_id", Value::I64(2)),
            ("overseer.caused_by", Value::I64(1)),
            ("overseer.path", "root/worker".into()),
            ("overseer.agent", "worker".into()),
            ("overseer.task_type", "check".into()),
            ("overseer.breaker.from", "closed".into()),
            ("overseer.breaker.to", "open".into()),
            ("overseer.breaker.trigger", "consecutive_failures".into()),
            ("overseer.breaker.failure_rate", Value::F64(0.5)),
            ("overseer.breaker.calls_in_window", Value::I64(4)),
            ("overseer.breaker.consecutive_failures", Value::I64(2)),
            ("overseer.breaker.open_for_seconds", Value::F64(30.0)),
        ])
    );

    let trip = named(&finished, "kill_switch_tripped");
    assert_caused_by(trip, ask_span);
    assert_eq!(trip.status, Status::error("manual trip: operator"));
    assert_eq!(
        attributes(trip),
        expected(vec![
            ("overseer.event", "kill_switch_tripped".into()),
            ("overseer.event_id", Value::I64(3)),
            ("overseer.caused_by", Value::I64(1)),
            ("overseer.path", "root/worker".into()),
            (
                "overseer.kill_switch.reason",
                "manual trip: operator".into()
            ),
            ("error.type", "manual".into()),
            ("overseer.kill_switch.after_seconds", Value::F64(5.0)),
            ("overseer.kill_switch.in_flight", "cancel_now".into()),
        ])
    );
}

#[test]
#[allow(deprecated)] // the GenAI names moved to their own conventions repository
fn the_gen_ai_attribute_names_are_the_semantic_conventions() {
    use opentelemetry_semantic_conventions::attribute as semconv;

    assert_eq!(
        attribute::GEN_AI_OPERATION_NAME,
        semconv::GEN_AI_OPERATION_NAME
    );
    assert_eq!(attribute::GEN_AI_AGENT_NAME, semconv::GEN_AI_AGENT_NAME);
    assert_eq!(
        attribute::GEN_AI_PROVIDER_NAME,
        semconv::GEN_AI_PROVIDER_NAME
    );
    assert_eq!(
        attribute::GEN_AI_USAGE_INPUT_TOKENS,
        semconv::GEN_AI_USAGE_INPUT_TOKENS
    );
    assert_eq!(
        attribute::GEN_AI_USAGE_OUTPUT_TOKENS,
        semconv::GEN_AI_USAGE_OUTPUT_TOKENS
    );
    assert_eq!(
        attribute::GEN_AI_REQUEST_MODEL,
        semconv::GEN_AI_REQUEST_MODEL
    );
    assert_eq!(attribute::ERROR_TYPE, semconv::ERROR_TYPE);
    assert_eq!(attribute::INVOKE_AGENT, "invoke_agent");
}

fn failed(error: AskError) -> AgentError {
    AgentError::failed(error.to_string())
}

/// Answers after 100 ms.
struct Tool;

impl Agent for Tool {
    type Task = ();
    type Output = ();

    async fn handle(&mut self, _: &mut AgentContext, (): ()) -> Result<(), AgentError> {
        tokio::time::sleep(Duration::from_millis(100)).await;
        Ok(())
    }
}

/// Asks the tool.
struct Researcher {
    tool: AgentRef<Tool>,
}

impl Agent for Researcher {
    type Task = ();
    type Output = ();

    async fn handle(&mut self, _: &mut AgentContext, (): ()) -> Result<(), AgentError> {
        self.tool.ask(()).await.map_err(failed)
    }
}

/// Asks the researcher (who asks the tool), thinks for 20 s, then asks the tool itself.
struct Lead {
    researcher: AgentRef<Researcher>,
    tool: AgentRef<Tool>,
}

impl Agent for Lead {
    type Task = ();
    type Output = ();

    async fn handle(&mut self, _: &mut AgentContext, (): ()) -> Result<(), AgentError> {
        self.researcher.ask(()).await.map_err(failed)?;
        tokio::time::sleep(Duration::from_secs(20)).await;
        self.tool.ask(()).await.map_err(failed)
    }
}

/// One request to the lead, 20 s long, whose nested asks end long before it, exported with a
/// `max_wait` of 1 s through `provider`: the finished spans of the asks (lead, researcher,
/// tool under the researcher, tool under the lead), and the exporter's stats.
async fn a_long_request_exported(
    spans: &InMemorySpanExporter,
    provider: &SdkTracerProvider,
) -> Result<(Vec<SpanData>, ExportStats), Box<dyn std::error::Error>> {
    let system = System::builder()
        .ask_timeout(Duration::from_secs(60))
        .build()?;
    let exporting = OtelExporter::from_provider(provider, system.created_at())
        .max_wait(Duration::from_secs(1))
        .spawn(&system);
    let tool = system.agent(AgentSpec::new("tool", || Tool))?;
    let tool_ref = system.agent_ref::<Tool>("tool")?;
    let researcher = system.agent(AgentSpec::new("researcher", {
        let tool = tool_ref.clone();
        move || Researcher { tool: tool.clone() }
    }))?;
    let researcher_ref = system.agent_ref::<Researcher>("researcher")?;
    let lead = system.agent(AgentSpec::new("lead", move || Lead {
        researcher: researcher_ref.clone(),
        tool: tool_ref.clone(),
    }))?;
    system
        .start(SupervisorSpec::one_for_one("root").children([tool, researcher, lead]))
        .await?;
    system.agent_ref::<Lead>("lead")?.ask(()).await?;
    system.shutdown(Duration::from_secs(5)).await?;
    let stats = exporting.await?;
    let mut asks: Vec<SpanData> = spans
        .get_finished_spans()?
        .into_iter()
        .filter(|span| span.name.starts_with("invoke_agent"))
        .collect();
    // In the order the asks were made: by event id.
    asks.sort_by_key(|span| match attributes(span)["overseer.event_id"] {
        Value::I64(id) => id,
        _ => 0,
    });
    Ok((asks, stats))
}

#[tokio::test(start_paused = true)]
async fn a_long_request_is_one_trace_whose_nested_asks_are_exported_as_they_end(
) -> Result<(), Box<dyn std::error::Error>> {
    let spans = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_id_generator(overseer_observe::otel::EventSpanIds::default())
        .with_simple_exporter(spans.clone())
        .build();
    let (asks, stats) = a_long_request_exported(&spans, &provider).await?;
    let names: Vec<&str> = asks.iter().map(|span| &*span.name).collect();
    assert_eq!(
        names,
        [
            "invoke_agent lead",
            "invoke_agent researcher",
            "invoke_agent tool",
            "invoke_agent tool"
        ]
    );
    let [lead, researcher, researchers_tool, leads_tool] = &asks[..] else {
        unreachable!()
    };
    assert_root(lead);
    let trace = lead.span_context.trace_id();
    for (child, parent) in [
        (researcher, lead),
        (researchers_tool, researcher),
        (leads_tool, lead),
    ] {
        assert_eq!(child.span_context.trace_id(), trace, "one trace");
        assert_eq!(
            child.parent_span_id,
            parent.span_context.span_id(),
            "{} under {}",
            child.name,
            parent.name
        );
        assert_eq!(
            attributes(child)["overseer.parent"],
            attributes(parent)["overseer.event_id"]
        );
        assert_eq!(
            attributes(child)["overseer.request"],
            attributes(lead)["overseer.event_id"]
        );
    }
    // The nested asks were exported when they ended: no span waited for its parent's, none
    // was cut loose; the lead's span was exported after all of them.
    let finished = spans.get_finished_spans()?;
    let exported: Vec<&str> = finished
        .iter()
        .filter(|span| span.name.starts_with("invoke_agent"))
        .map(|span| &*span.name)
        .collect();
    assert_eq!(exported.last(), Some(&"invoke_agent lead"), "{exported:?}");
    assert_eq!((stats.held, stats.unlinked), (0, 0), "{stats:?}");
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn without_derived_ids_a_nested_ask_waits_for_its_parent_at_most_max_wait(
) -> Result<(), Box<dyn std::error::Error>> {
    let (spans, provider) = in_memory();
    let (asks, stats) = a_long_request_exported(&spans, &provider).await?;
    let [lead, researcher, researchers_tool, leads_tool] = &asks[..] else {
        panic!("four asks: {}", asks.len())
    };
    // The researcher waited for the lead, and its tool for it, past `max_wait`: both were cut
    // loose, roots of traces of their own; the lead's own ask of the tool, which ended right
    // before the lead, waited and is its child.
    assert_root(researcher);
    assert_root(researchers_tool);
    assert_eq!(leads_tool.parent_span_id, lead.span_context.span_id());
    assert_eq!((stats.held, stats.unlinked), (3, 2), "{stats:?}");
    Ok(())
}
