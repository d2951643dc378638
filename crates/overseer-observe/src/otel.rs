//! OpenTelemetry export (feature `otel`): a system's events as spans, with token usage under
//! the GenAI semantic-convention attribute names.
//!
//! [`OtelExporter`] turns each [`SystemEvent`] into one span through any OpenTelemetry
//! [`Tracer`]; give it one from the SDK's provider, wired to the exporter of your backend
//! (OTLP for Jaeger, Tempo, ...).
//!
//! | event | span name | kind | time | status |
//! |---|---|---|---|---|
//! | [`Ask`](SystemEvent::Ask) | `invoke_agent {agent}` | internal | from the ask to its outcome | error with the message, if it failed |
//! | [`Lifecycle`](SystemEvent::Lifecycle) | `started`, `restarted`, `start_failed`, `stopped`, `escalated` or `auto_shutdown`, then the path | internal | zero-length, when it happened | error for a failed start, an abnormal exit, an escalation |
//! | [`Breaker`](SystemEvent::Breaker) | `breaker {to} {agent}/{task_type}` | internal | zero-length | unset |
//! | [`BudgetWarning`](SystemEvent::BudgetWarning) | `budget_warning {dimension}` | internal | zero-length | unset |
//! | [`KillSwitchTripped`](SystemEvent::KillSwitchTripped) | `kill_switch_tripped` | internal | zero-length | error with the reason |
//!
//! Ask spans are GenAI "invoke agent" spans: kind `INTERNAL`, the kind the conventions give
//! agents invoked within the same process (`CLIENT` is for remote agent services), with
//! `gen_ai.operation.name`, `gen_ai.agent.name`, `gen_ai.usage.input_tokens`,
//! `gen_ai.usage.output_tokens`, `gen_ai.usage.cache_read.input_tokens` when the provider read
//! prompt tokens from its cache, `error.type` on failure, `gen_ai.request.model` when the
//! ask's model is known ([`AgentContext::report_model`](overseer_agent::AgentContext::report_model),
//! or a call through [`AgentContext::model`](overseer_agent::AgentContext::model)),
//! and `gen_ai.provider.name` when you set it ([`provider_name`](OtelExporter::provider_name)). [`attribute`] lists every
//! attribute written.
//!
//! # Time
//!
//! A span's times are [`System::created_at`] (wall clock) plus the event's
//! [`elapsed`](SystemEvent::elapsed) (tokio clock); an ask starts its latency before that. On
//! a paused tokio clock, spans are laid out in virtual time from the system's creation.
//!
//! # Causes: links and traces
//!
//! A nested ask, made inside another ask's handler ([`AskEvent::parent`]), is a child of its
//! parent ask's span, in its request's trace: one trace per request, from the user's question
//! through every nested ask. An ask made outside any handler starts a trace. Any other event
//! that names its cause ([`SystemEvent::caused_by`]) becomes a child of the cause's span, in
//! the cause's trace. Every span whose event names a cause carries a span link to it (with
//! attribute `overseer.link = "caused_by"`), an ask's too (the breaker opening or the trip that
//! refused it). So a trace is a request and what it led to: an ask's span holds the crash it
//! caused, which holds the restart, then the escalation and everything the escalation stopped
//! and restarted; the kill switch's trip holds the shutdown it caused. An event with no cause
//! and no parent starts a trace of its own.
//!
//! An ask's id is assigned when the ask is made, and its event is published when it ends, so
//! the crash, the breaker change or the budget warning it causes arrives *before* the ask, and
//! a nested ask's event arrives before its parent's (which ends only with the whole request).
//!
//! **Nested asks.** With [`EventSpanIds`] as the SDK provider's id generator, the exporter
//! gives each span ids derived from its event's id, so a nested ask's span is exported as soon
//! as its event comes, naming its parent's span (and its request's trace) before they exist.
//! With any other generator, a nested ask waits for its parent's span as an effect waits for
//! its cause (below).
//!
//! **Effects.** The OpenTelemetry API gives no way to create a span with a span id chosen in
//! advance, so an event whose cause has not arrived is held back until it does, then exported
//! (with its own timestamps: holding changes nothing in the span). An event waits at most
//! [`max_wait`](OtelExporter::max_wait) of stream time (and at most that long idle in
//! [`run`](OtelExporter::run)); after that, or past [`capacity`](OtelExporter::capacity)
//! events waiting, or at the end of the stream, it is exported without link, as a root, with
//! `overseer.caused_by` (or `overseer.parent`) still naming what it waited for. That happens
//! when the cause is never published: an ask whose caller stopped waiting publishes nothing,
//! and an event missed in a lag is missing. Spans are remembered as link targets for the last
//! [`capacity`](OtelExporter::capacity) events.
//!
//! [`AskEvent::parent`]: overseer_agent::AskEvent::parent
//!
//! # Example
//!
//! See [`OtelExporter`].

use std::fmt;
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{
    Link, Span as _, SpanBuilder, SpanContext, TraceContextExt as _, TraceFlags, TraceState,
    Tracer, TracerProvider,
};
use opentelemetry::{Context, InstrumentationScope, KeyValue};
use overseer_agent::{System, SystemEvent};
use overseer_supervisor::{ChildPath, EventId, EventKind};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::task::JoinHandle;

pub mod attribute;
mod causes;
mod ids;
mod mapping;

use causes::{Held, Recent, Waiting};
pub use ids::EventSpanIds;
use ids::{building_with, Derivation};
use mapping::{plan, Facts};

/// The instrumentation scope name [`OtelExporter::from_provider`] gives its tracer.
pub const SCOPE_NAME: &str = "overseer";

/// What an [`OtelExporter`] has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExportStats {
    /// Spans started and ended (one per event exported).
    pub spans: u64,
    /// Events that arrived before their cause and were held back for it.
    pub held: u64,
    /// Events exported without a link to their cause, because its span was not there: the
    /// cause never arrived in time, or was too old to be remembered.
    pub unlinked: u64,
    /// Events missed because the receiver fell behind the stream.
    pub lagged: u64,
}

/// Exports a system's events as OpenTelemetry spans (see the [module](self) for the mapping).
///
/// [`export`](Self::export) maps one event, for use with any source of events;
/// [`run`](Self::run) drains a receiver until the stream ends; [`spawn`](Self::spawn)
/// subscribes to a system and runs on a task.
///
/// ```
/// use std::time::Duration;
/// use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
/// use overseer_agent::prelude::*;
/// use overseer_observe::OtelExporter;
/// use overseer_supervisor::prelude::*;
///
/// struct Echo;
/// impl Agent for Echo {
///     type Task = String;
///     type Output = String;
///     async fn handle(&mut self, ctx: &mut AgentContext, task: String) -> Result<String, AgentError> {
///         ctx.report_usage(Usage::new(12, 3, 40));
///         Ok(task)
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // In production, an OTLP exporter in a batch processor; here, spans kept in memory.
/// let spans = InMemorySpanExporter::default();
/// let provider = SdkTracerProvider::builder().with_simple_exporter(spans.clone()).build();
///
/// let system = System::builder().build()?;
/// let exporting = OtelExporter::from_provider(&provider, system.created_at())
///     .provider_name("openai")
///     .spawn(&system);
/// system
///     .start(SupervisorSpec::one_for_one("root").child(system.agent(AgentSpec::new("echo", || Echo))?))
///     .await?;
/// system.agent_ref::<Echo>("echo")?.ask("hi".to_string()).await?;
/// system.shutdown(Duration::from_secs(5)).await?;
///
/// // root and echo started, one ask, echo and root stopped.
/// assert_eq!(exporting.await?.spans, 5);
/// let ask = spans
///     .get_finished_spans()?
///     .into_iter()
///     .find(|span| span.name == "invoke_agent echo")
///     .expect("the ask's span");
/// assert!(ask
///     .attributes
///     .contains(&opentelemetry::KeyValue::new("gen_ai.usage.input_tokens", 12_i64)));
/// provider.shutdown()?;
/// # Ok(())
/// # }
/// ```
pub struct OtelExporter<T> {
    tracer: T,
    origin: SystemTime,
    provider: Option<String>,
    max_wait: Duration,
    /// The span of each recent event, by event id: what effects link to.
    spans: Recent<EventId, SpanContext>,
    /// Paths that have started, to tell a restart.
    started: Recent<ChildPath, ()>,
    waiting: Waiting,
    /// The span and trace ids this exporter gives its events' spans.
    ids: Derivation,
    /// Whether the tracer's spans take the derived ids ([`EventSpanIds`] is the provider's id
    /// generator): then a nested ask names its parent's span before that span exists. Learnt
    /// from the first span.
    derived_ids: bool,
    /// The latest stream time seen.
    now: Duration,
    stats: ExportStats,
}

impl<T> fmt::Debug for OtelExporter<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtelExporter")
            .field("origin", &self.origin)
            .field("provider", &self.provider)
            .field("max_wait", &self.max_wait)
            .field("waiting", &self.waiting.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl<T: Tracer> OtelExporter<T> {
    /// How many recent events are remembered as link targets, and how many may wait for
    /// their cause, by default: as many as a system's event channel holds by default.
    pub const DEFAULT_CAPACITY: usize = 16_384;

    /// How long, in stream time, an event waits for its cause by default.
    pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(60);

    /// An exporter starting spans with `tracer`, for the system created at `created_at`
    /// ([`System::created_at`]).
    pub fn new(tracer: T, created_at: SystemTime) -> Self {
        Self {
            tracer,
            origin: created_at,
            provider: None,
            max_wait: Self::DEFAULT_MAX_WAIT,
            spans: Recent::new(Self::DEFAULT_CAPACITY),
            started: Recent::new(Self::DEFAULT_CAPACITY),
            waiting: Waiting::new(Self::DEFAULT_CAPACITY),
            ids: Derivation::random(),
            derived_ids: false,
            now: Duration::ZERO,
            stats: ExportStats::default(),
        }
    }

    /// An exporter using a tracer of `provider` with the instrumentation scope
    /// [`SCOPE_NAME`] and this crate's version.
    pub fn from_provider<P>(provider: &P, created_at: SystemTime) -> Self
    where
        P: TracerProvider<Tracer = T>,
    {
        let scope = InstrumentationScope::builder(SCOPE_NAME)
            .with_version(env!("CARGO_PKG_VERSION"))
            .build();
        Self::new(provider.tracer_with_scope(scope), created_at)
    }

    /// Sets `gen_ai.provider.name` on every ask's span (`openai`, `anthropic`,
    /// `aws.bedrock`, ... as the GenAI conventions name them). The conventions require it,
    /// but Overseer cannot know which provider an agent's handler calls, so it is left out
    /// unless set here.
    pub fn provider_name(mut self, name: impl Into<String>) -> Self {
        self.provider = Some(name.into());
        self
    }

    /// How long (stream time) an event that arrived before its cause waits for it before it
    /// is exported unlinked; 60 s by default. A breaker's move to half-open names the probe
    /// ask it admitted, whose event comes when the ask ends: give at least your longest ask
    /// timeout for those links.
    pub fn max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = max_wait;
        self
    }

    /// How many recent events are remembered as link targets, how many paths as started (to
    /// tell restarts), and how many events may wait for their cause at once;
    /// [`DEFAULT_CAPACITY`](Self::DEFAULT_CAPACITY) by default, at least 1.
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.spans = Recent::new(capacity);
        self.started = Recent::new(capacity);
        self.waiting = Waiting::new(capacity);
        self
    }

    /// Exports `event`: starts and ends its span now, or, if it names a cause whose span does
    /// not exist yet, holds it until that cause is exported (then exports it, and whatever
    /// waited for it). Events that have waited longer than
    /// [`max_wait`](Self::max_wait) before `event` are exported unlinked first.
    pub fn export(&mut self, event: &SystemEvent) {
        self.now = self.now.max(event.elapsed());
        self.expire(self.now);
        let restart = match event {
            SystemEvent::Lifecycle(lifecycle) if lifecycle.kind == EventKind::Started => {
                !self.started.insert(lifecycle.path.clone(), ())
            }
            _ => false,
        };
        match self.awaited(event) {
            Some(awaited) => {
                self.stats.held += 1;
                let held = Held {
                    event: event.clone(),
                    restart,
                };
                if let Some(evicted) = self.waiting.hold(awaited, held) {
                    self.emit(&evicted.event, evicted.restart);
                }
            }
            None => self.emit(event, restart),
        }
    }

    /// The event whose span `event`'s must wait for, if its span is not there yet: a nested
    /// ask's parent ask, unless its span id is known in advance (derived ids); an ask made
    /// outside any handler waits for nothing (it starts a trace); any other event, its cause.
    fn awaited(&self, event: &SystemEvent) -> Option<EventId> {
        let awaited = match event {
            SystemEvent::Ask(ask) => ask.parent.filter(|_| !self.derived_ids)?,
            _ => event.caused_by()?,
        };
        (awaited != event.id() && !self.spans.contains(&awaited)).then_some(awaited)
    }

    /// Exports every event still waiting for its cause, unlinked, oldest first (an event that
    /// waited for one of those is then exported with its link). [`run`](Self::run) calls it
    /// when the stream ends.
    pub fn flush(&mut self) {
        while let Some(held) = self.waiting.pop_oldest() {
            self.emit(&held.event, held.restart);
        }
    }

    /// Records that the receiver missed `missed` events (`RecvError::Lagged`): a warning
    /// through `tracing` and the [`lagged`](ExportStats::lagged) count. Effects of the
    /// missed events are exported unlinked.
    pub fn lagged(&mut self, missed: u64) {
        tracing::warn!(
            missed,
            "OpenTelemetry exporter fell behind the event stream"
        );
        self.stats.lagged = self.stats.lagged.saturating_add(missed);
    }

    /// What it has done so far.
    pub fn stats(&self) -> ExportStats {
        self.stats
    }

    /// How many events are waiting for their cause.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// Exports every event of `events` until the stream ends (after
    /// [`System::shutdown`]), then flushes what still waits and returns the stats. A lag
    /// (`RecvError::Lagged`) is reported through [`lagged`](Self::lagged) and export goes
    /// on. While events wait for their cause, it also wakes when the oldest has waited
    /// [`max_wait`](Self::max_wait) on the tokio clock, so a quiet system does not hold them.
    pub async fn run(mut self, mut events: broadcast::Receiver<SystemEvent>) -> ExportStats {
        // The tokio instant at which stream time was `self.now`.
        let mut seen_at = tokio::time::Instant::now();
        loop {
            // When the oldest event waiting will have waited `max_wait`, if one waits.
            let deadline = self.waiting.oldest_elapsed().and_then(|oldest| {
                let due = oldest
                    .saturating_add(self.max_wait)
                    .saturating_sub(self.now);
                seen_at.checked_add(due)
            });
            let received = match deadline {
                None => events.recv().await,
                Some(deadline) => match tokio::time::timeout_at(deadline, events.recv()).await {
                    Ok(received) => received,
                    Err(_) => {
                        self.now = self.now.saturating_add(seen_at.elapsed());
                        seen_at = tokio::time::Instant::now();
                        self.expire(self.now);
                        continue;
                    }
                },
            };
            match received {
                Ok(event) => {
                    if event.elapsed() > self.now {
                        seen_at = tokio::time::Instant::now();
                    }
                    self.export(&event);
                }
                Err(RecvError::Lagged(missed)) => self.lagged(missed),
                Err(RecvError::Closed) => break,
            }
        }
        self.flush();
        self.stats
    }

    /// Subscribes to `system` and [`run`](Self::run)s on a new task, which ends after
    /// [`System::shutdown`] with the stats. It subscribes before returning: call it before
    /// [`System::start`] to export every event.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub fn spawn(self, system: &System) -> JoinHandle<ExportStats>
    where
        T: Send + 'static,
    {
        let events = system.subscribe();
        tokio::spawn(self.run(events))
    }

    /// The span a nested ask's span is a child of: its parent ask's, exported already or, with
    /// derived ids, named in advance (in its request's trace). `None` (counted unlinked) when
    /// neither: the parent's event did not come within `max_wait`.
    fn parent_ask_span(&mut self, ask: &overseer_agent::AskEvent) -> Option<SpanContext> {
        let parent = ask.parent?;
        if let Some(span) = self.spans.get(&parent) {
            return Some(span.clone());
        }
        if !self.derived_ids {
            self.stats.unlinked += 1;
            return None;
        }
        let request = ask.request.unwrap_or(parent);
        Some(SpanContext::new(
            self.ids.trace(request),
            self.ids.span(parent),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ))
    }

    /// Exports, unlinked, the events that have waited `max_wait` or more by stream time `now`.
    fn expire(&mut self, now: Duration) {
        while let Some(held) = self.waiting.pop_expired(now, self.max_wait) {
            self.emit(&held.event, held.restart);
        }
    }

    /// Exports `event`, then every event that was waiting for it, and so on down the chain.
    fn emit(&mut self, event: &SystemEvent, restart: bool) {
        self.emit_one(event, restart);
        let mut released = self.waiting.release(event.id());
        while !released.is_empty() {
            let mut next = Vec::new();
            for held in released {
                self.emit_one(&held.event, held.restart);
                next.extend(self.waiting.release(held.event.id()));
            }
            released = next;
        }
    }

    /// Starts and ends the span of one event, a child of its cause's span and linked to it
    /// when that span is known.
    fn emit_one(&mut self, event: &SystemEvent, restart: bool) {
        let plan = plan(
            event,
            Facts {
                origin: self.origin,
                restart,
                provider: self.provider.as_deref(),
            },
        );
        let cause = event
            .caused_by()
            .filter(|&cause| cause != event.id())
            .map(|cause| self.spans.get(&cause).cloned());
        let mut builder = SpanBuilder::from_name(plan.name)
            .with_kind(plan.kind)
            .with_start_time(plan.start)
            .with_attributes(plan.attributes);
        if let Some(Some(cause)) = &cause {
            builder = builder.with_links(vec![Link::new(
                cause.clone(),
                vec![KeyValue::new(attribute::LINK, attribute::CAUSED_BY_LINK)],
                0,
            )]);
        }
        let parent = match (event, cause) {
            (SystemEvent::Ask(ask), _) if ask.parent.is_some() => self.parent_ask_span(ask),
            // A request starts a trace of its own, linked to its cause if it has one.
            (SystemEvent::Ask(_), Some(None)) | (_, Some(None)) => {
                self.stats.unlinked += 1;
                None
            }
            (SystemEvent::Ask(_), _) | (_, None) => None,
            (_, Some(Some(cause))) => Some(cause),
        };
        let parent = parent.map_or_else(Context::new, |span| {
            Context::new().with_remote_span_context(span)
        });
        let chosen = self.ids.chosen(event.id());
        let mut span = building_with(chosen, || self.tracer.build_with_context(builder, &parent));
        if let Some(status) = plan.status {
            span.set_status(status);
        }
        let context = span.span_context().clone();
        if context.is_valid() {
            self.derived_ids = context.span_id() == chosen.span;
        }
        span.end_with_timestamp(plan.end);
        self.spans.insert(event.id(), context);
        self.stats.spans += 1;
    }
}
