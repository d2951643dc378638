//! Observability for Overseer systems: metrics derived from a system's event stream, a
//! JSON-lines sink for the events themselves, and a text picture of a running tree
//! ([`render_tree`]).
//!
//! The first two consume [`System::subscribe`](overseer_agent::System::subscribe) and end when
//! the system shuts down:
//! * [`record_metrics`] (or [`MetricsConfig::spawn`], to name the system) records counters,
//!   gauges and histograms through the [`metrics`] facade, so any exporter works
//!   (Prometheus, StatsD, ...): install one first;
//! * [`JsonLines::spawn`] writes every event as one JSON object per line.
//!
//! With the feature `console-tui`, `tui::run` draws a live terminal view of any system (the
//! tree with queues and throughput, breakers, budget, events).
//!
//! The mapping from events to metrics is pure ([`EventMetrics`], [`budget_gauges`],
//! [`breaker_gauges`], [`queue_gauges`] return [`Update`]s as data); the task only applies it.
//!
//! # Metrics
//!
//! The metrics follow Prometheus' [naming conventions](https://prometheus.io/docs/practices/naming/):
//! each has a help text ([`METRICS`], handed to the exporter by [`describe_metrics`], so the
//! exposition has `# HELP` and `# TYPE` for each), its unit in its name in the base unit
//! where one exists (`_seconds`), `_total` on counters (and only on them), and one unit per
//! metric. Counts of things are named by the thing (`_tasks`, `_calls`). Cost is in
//! **micro-USD** (`_micro_usd`: 1 USD = 1 000 000), the unit of
//! [`Usage::cost_micros`](overseer_agent::Usage) and of the budget, kept as an integer (as
//! the budget keeps it) rather than as float dollars, so sums never drift.
//!
//! Every series carries `system` ([`MetricsConfig::system`], `default` unless named), so two
//! systems of one process keep to series of their own.
//!
//! | name | type | labels (besides `system`) | meaning |
//! |---|---|---|---|
//! | `overseer_restarts_total` | counter | `path` | a child or supervisor started again (a `Started` event for a path that had started before) |
//! | `overseer_start_failures_total` | counter | `path` | a start attempt failed |
//! | `overseer_abnormal_exits_total` | counter | `path` | an exit whose reason is neither `normal` nor `shutdown` |
//! | `overseer_escalations_total` | counter | `supervisor` | a supervisor exceeded its restart intensity and gave up |
//! | `overseer_auto_shutdowns_total` | counter | `supervisor` | a supervisor shut down because of significant children |
//! | `overseer_asks_total` | counter | `agent`, `task_type`, `outcome` | finished asks and tells; `outcome` is `ok` or the error kind (`failed`, `crashed`, `timeout`, `breaker_open`, `budget_exceeded`, ...) |
//! | `overseer_ask_latency_seconds` | histogram | `agent`, `task_type` | from the ask to its outcome |
//! | `overseer_tokens_total` | counter | `agent`, `task_type`, `direction` (`input`, `output`) | tokens reported by handlers |
//! | `overseer_cost_micro_usd_total` | counter | `agent`, `task_type` | cost reported by handlers, in micro-USD |
//! | `overseer_model_calls_total` | counter | `agent`, `model`, `outcome` | model calls made through `AgentContext::model` (from the ask events' `model_calls`); `outcome` is `ok` or the failure's class (`transient`, `rate_limited`, `permanent`, `replay_unsafe`, ...); `model` is the model asked for, else the one that answered, else `unknown` |
//! | `overseer_model_tokens_total` | counter | `agent`, `model`, `kind` (`input`, `output`, `cached_input`) | those calls' tokens as the provider reported them (cached input tokens are counted in `input` too) |
//! | `overseer_injected_faults_total` | counter | `agent`, `task_type`, `fault` | asks whose outcome was caused by fault injection |
//! | `overseer_breaker_state` | gauge | `agent`, `task_type`, `state` (`closed`, `half_open`, `open`, `forced_open`, `disabled`) | 1 for the state the breaker is in, 0 for the other four ([`breaker_state_series`]) |
//! | `overseer_breaker_transitions_total` | counter | `agent`, `task_type`, `to` | breaker state changes, by the state entered |
//! | `overseer_breakers_open` | gauge | | breakers rejecting calls: open or forced open (half-open ones are not counted) |
//! | `overseer_budget_used_tokens`, `overseer_budget_used_micro_usd`, `overseer_budget_used_steps` | gauge | | committed spend of the process budget |
//! | `overseer_budget_reserved_tokens`, `_micro_usd`, `_steps` | gauge | | spend held by asks in flight |
//! | `overseer_budget_limit_tokens`, `_micro_usd`, `_steps` | gauge | | the process limit; absent for an unlimited dimension |
//! | `overseer_budget_warnings_total` | counter | `scope`, `dimension` (`tokens`, `cost`, `steps`), `tier` | budget warning tiers reached (a count of warnings: one unit) |
//! | `overseer_kill_switch_tripped` | gauge | | 1 once the kill switch has tripped, else 0 |
//! | `overseer_queue_depth_tasks` | gauge | `agent` | tasks waiting in the agent's queue (`System::queue_depths`) |
//! | `overseer_queue_capacity_tasks` | gauge | `agent` | the most its queue holds; asks beyond it count as `overseer_asks_total{outcome="queue_full"}` |
//! | `overseer_dead_letter_tasks` | gauge | | tasks in the dead-letter queue (`System::dead_letters`), set on each push and removal; alert when it passes 100 |
//! | `overseer_bulkhead_in_use_calls` | gauge | `bulkhead` | calls holding a permit of the bulkhead (`SystemBuilder::bulkhead`) |
//! | `overseer_bulkhead_limit_calls` | gauge | `bulkhead` | the bulkhead's limit |
//! | `overseer_bulkhead_waiting_calls` | gauge | `bulkhead` | calls waiting for a permit |
//! | `overseer_bulkhead_waits_total` | counter | `bulkhead` | calls that had to wait for a permit |
//! | `overseer_bulkhead_timeouts_total` | counter | `bulkhead` | permit waits that ended at their deadline |
//! | `overseer_observe_events_lagged_total` | counter | | events the recorder missed because it fell behind |
//! | `overseer_observe_label_overflows_total` | counter | `label` | label values recorded as `_other` because the label had reached its bound |
//!
//! Budget, breaker and bulkhead metrics exist only when the system has a budget, breakers or
//! bulkheads; they and the queue gauges are read from the system (not the events) when the recorder starts, after each ask, budget
//! warning and breaker event, and when the stream ends.
//!
//! ## Labels and their bounds
//!
//! | label | values | bounded by |
//! |---|---|---|
//! | `system` | [`MetricsConfig::system`] | one per recorder |
//! | `path`, `supervisor` | tree paths | the tree's size; dynamic children add one each |
//! | `agent` | agent names | the declared agents; dynamic children add one each |
//! | `task_type` | [`Agent::task_type`](overseer_agent::Agent::task_type) | `&'static str`s in code |
//! | `outcome`, `fault`, `direction`, `kind`, `state`, `to`, `dimension` | fixed vocabularies | code |
//! | `model` | model names | the models configured |
//! | `scope` | `process` or an agent | the agents |
//! | `tier` | warning tiers | the budget's configuration |
//! | `bulkhead` | bulkhead names | `SystemBuilder::bulkhead` calls |
//! | `label` | the label keys above | code |
//!
//! Dynamic children (one per session, say) would make `path`, `supervisor`, `agent` and
//! `scope` grow without end, so every label key is capped at
//! [`MetricsConfig::max_label_values`] distinct values (100 by default): later values are
//! recorded as [`OTHER_LABEL_VALUE`] (`_other`) and counted in
//! `overseer_observe_label_overflows_total{label}`. No label holds an id that is new for
//! each ask, event or session.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use overseer_agent::prelude::*;
//! use overseer_observe::{record_metrics, JsonLines};
//! use overseer_supervisor::prelude::*;
//!
//! struct Echo;
//! impl Agent for Echo {
//!     type Task = String;
//!     type Output = String;
//!     async fn handle(&mut self, _: &mut AgentContext, task: String) -> Result<String, AgentError> {
//!         Ok(task)
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Install a `metrics` exporter first (without one, recording is a no-op).
//! let system = System::builder().build()?;
//! let recorder = record_metrics(&system);
//! let events = JsonLines::spawn(&system, Vec::new());
//! system
//!     .start(SupervisorSpec::one_for_one("root").child(system.agent(AgentSpec::new("echo", || Echo))?))
//!     .await?;
//! system.agent_ref::<Echo>("echo")?.ask("hi".to_string()).await?;
//! system.shutdown(Duration::from_secs(5)).await?;
//! recorder.await?;
//! // root and echo started, one ask, echo and root stopped.
//! assert_eq!(events.await??, 5);
//! # Ok(())
//! # }
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]

mod json_lines;
mod metric;
#[cfg(feature = "otel")]
#[cfg_attr(docsrs, doc(cfg(feature = "otel")))]
pub mod otel;
mod recorder;
mod render;
#[cfg(feature = "console-tui")]
#[cfg_attr(docsrs, doc(cfg(feature = "console-tui")))]
pub mod tui;

pub use json_lines::JsonLines;
pub use metric::{
    breaker_gauges, breaker_state_series, budget_gauges, bulkhead_metrics, describe_metrics,
    dimension_label, health_gauges, names, queue_gauges, EventMetrics, Labels, MetricInfo,
    MetricKind, Update, BREAKER_STATES, METRICS,
};
#[cfg(feature = "otel")]
#[cfg_attr(docsrs, doc(cfg(feature = "otel")))]
pub use otel::{ExportStats, OtelExporter};
pub use recorder::{record_metrics, MetricsConfig, OTHER_LABEL_VALUE};
pub use render::render_tree;
