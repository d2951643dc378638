//! Metric names and the pure mapping from events and snapshots to metric updates.

use std::collections::HashSet;

use overseer_agent::{AgentHealth, AskOutcome, BulkheadSnapshot, Health, QueueDepth, SystemEvent};
use overseer_breaker::{BreakerSnapshot, State};
use overseer_budget::{Dimension, LedgerStatus};
use overseer_supervisor::EventKind;

/// The names of the metrics this crate records (see the table in the crate docs and
/// [`METRICS`](super::METRICS) for their help texts). Every series also carries the
/// `system` label ([`MetricsConfig::system`](crate::MetricsConfig::system)).
pub mod names {
    /// Counter `{path}`: restarts of a child or supervisor.
    pub const RESTARTS: &str = "overseer_restarts_total";
    /// Counter `{path}`: failed start attempts.
    pub const START_FAILURES: &str = "overseer_start_failures_total";
    /// Counter `{path}`: abnormal exits (neither `normal` nor `shutdown`).
    pub const ABNORMAL_EXITS: &str = "overseer_abnormal_exits_total";
    /// Counter `{supervisor}`: escalations (restart intensity exceeded).
    pub const ESCALATIONS: &str = "overseer_escalations_total";
    /// Counter `{supervisor}`: automatic shutdowns because of significant children.
    pub const AUTO_SHUTDOWNS: &str = "overseer_auto_shutdowns_total";
    /// Counter `{agent, task_type, outcome}`: finished asks and tells.
    pub const ASKS: &str = "overseer_asks_total";
    /// Histogram `{agent, task_type}`: from the ask to its outcome, in seconds.
    pub const ASK_LATENCY: &str = "overseer_ask_latency_seconds";
    /// Counter `{agent, task_type, direction}`: tokens reported by handlers.
    pub const TOKENS: &str = "overseer_tokens_total";
    /// Counter `{agent, task_type}`: cost reported by handlers, in micro-USD
    /// (1 USD = 1 000 000, the unit of [`Usage::cost_micros`](overseer_agent::Usage)).
    pub const COST: &str = "overseer_cost_micro_usd_total";
    /// Counter `{agent, model, outcome}`: model calls made through `AgentContext::model`;
    /// `outcome` is `ok` or the failure's class (`transient`, `rate_limited`, `permanent`,
    /// `replay_unsafe`, ...).
    pub const MODEL_CALLS: &str = "overseer_model_calls_total";
    /// Counter `{agent, model, kind}`: tokens of those calls, `kind` `input`, `output` or
    /// `cached_input` (cached input tokens are counted in `input` too).
    pub const MODEL_TOKENS: &str = "overseer_model_tokens_total";
    /// Counter `{agent, task_type, fault}`: asks whose outcome was an injected fault.
    pub const INJECTED_FAULTS: &str = "overseer_injected_faults_total";
    /// Gauge `{agent, task_type, state}`: 1 for the state a breaker is in, 0 for the other
    /// four (`closed`, `half_open`, `open`, `forced_open`, `disabled`).
    pub const BREAKER_STATE: &str = "overseer_breaker_state";
    /// Counter `{agent, task_type, to}`: breaker state changes, by the state entered.
    pub const BREAKER_TRANSITIONS: &str = "overseer_breaker_transitions_total";
    /// Gauge: breakers rejecting calls (open or forced open).
    pub const BREAKERS_OPEN: &str = "overseer_breakers_open";
    /// Gauge: tokens committed to the process budget.
    pub const BUDGET_USED_TOKENS: &str = "overseer_budget_used_tokens";
    /// Gauge: cost committed to the process budget, in micro-USD.
    pub const BUDGET_USED_COST: &str = "overseer_budget_used_micro_usd";
    /// Gauge: steps committed to the process budget.
    pub const BUDGET_USED_STEPS: &str = "overseer_budget_used_steps";
    /// Gauge: tokens held by asks in flight.
    pub const BUDGET_RESERVED_TOKENS: &str = "overseer_budget_reserved_tokens";
    /// Gauge: cost held by asks in flight, in micro-USD.
    pub const BUDGET_RESERVED_COST: &str = "overseer_budget_reserved_micro_usd";
    /// Gauge: steps held by asks in flight.
    pub const BUDGET_RESERVED_STEPS: &str = "overseer_budget_reserved_steps";
    /// Gauge: the process token limit (absent when unlimited).
    pub const BUDGET_LIMIT_TOKENS: &str = "overseer_budget_limit_tokens";
    /// Gauge: the process cost limit in micro-USD (absent when unlimited).
    pub const BUDGET_LIMIT_COST: &str = "overseer_budget_limit_micro_usd";
    /// Gauge: the process step limit (absent when unlimited).
    pub const BUDGET_LIMIT_STEPS: &str = "overseer_budget_limit_steps";
    /// Counter `{scope, dimension, tier}`: budget warning tiers reached.
    pub const BUDGET_WARNINGS: &str = "overseer_budget_warnings_total";
    /// Gauge: 1 once the kill switch has tripped, else 0.
    pub const KILL_SWITCH_TRIPPED: &str = "overseer_kill_switch_tripped";
    /// Gauge `{agent}`: tasks waiting in an agent's queue, set after each ask.
    pub const QUEUE_DEPTH: &str = "overseer_queue_depth_tasks";
    /// Gauge `{agent}`: the most tasks an agent's queue holds (asks beyond it are refused
    /// with `queue_full`, counted by `overseer_asks_total{outcome="queue_full"}`).
    pub const QUEUE_CAPACITY: &str = "overseer_queue_capacity_tasks";
    /// Gauge: tasks in the dead-letter queue, set on each push, update and removal.
    pub const DEAD_LETTERS: &str = "overseer_dead_letter_tasks";
    /// Gauge `{agent, state}`: 1 for the health an agent's checks found (`unchecked`,
    /// `healthy`, `unhealthy`), 0 for the others.
    pub const AGENT_HEALTH: &str = "overseer_agent_health";
    /// Counter `{agent}`: health checks that failed (an error, a panic, no answer in time).
    pub const HEALTH_CHECK_FAILURES: &str = "overseer_health_check_failures_total";
    /// Gauge `{agent}`: seconds since an agent's handler last beat, for agents whose tasks are
    /// watched by a heartbeat timeout (a stall shows as a rising line before it is caught).
    pub const HEARTBEAT_AGE: &str = "overseer_heartbeat_age_seconds";
    /// Gauge `{bulkhead}`: calls holding a permit of the bulkhead now.
    pub const BULKHEAD_IN_USE: &str = "overseer_bulkhead_in_use_calls";
    /// Gauge `{bulkhead}`: the bulkhead's limit, in calls.
    pub const BULKHEAD_LIMIT: &str = "overseer_bulkhead_limit_calls";
    /// Gauge `{bulkhead}`: calls waiting for a permit now.
    pub const BULKHEAD_WAITING: &str = "overseer_bulkhead_waiting_calls";
    /// Counter `{bulkhead}`: calls that had to wait for a permit.
    pub const BULKHEAD_WAITS: &str = "overseer_bulkhead_waits_total";
    /// Counter `{bulkhead}`: permit waits that ended at their deadline without a permit.
    pub const BULKHEAD_TIMEOUTS: &str = "overseer_bulkhead_timeouts_total";
    /// Counter: events the recorder missed because it fell behind the stream.
    pub const EVENTS_LAGGED: &str = "overseer_observe_events_lagged_total";
    /// Counter `{label}`: label values replaced by `_other` because the label already had
    /// [`MetricsConfig::max_label_values`](crate::MetricsConfig::max_label_values) values.
    pub const LABEL_OVERFLOWS: &str = "overseer_observe_label_overflows_total";
}

/// What kind of metric a name is, as in the exposition's `# TYPE` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MetricKind {
    /// Only grows; its name ends in `_total`.
    Counter,
    /// Goes up and down.
    Gauge,
    /// Observations in buckets (or quantiles, if the exporter makes summaries).
    Histogram,
}

/// One metric this crate records: its name, kind, labels (besides `system`) and help text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct MetricInfo {
    /// The name, with its unit (`_seconds`, `_tokens`, `_micro_usd`, `_tasks`, ...) and
    /// `_total` for counters.
    pub name: &'static str,
    /// Counter, gauge or histogram.
    pub kind: MetricKind,
    /// The labels its series carry, besides `system`.
    pub labels: &'static [&'static str],
    /// The `# HELP` text.
    pub help: &'static str,
}

const fn info(
    name: &'static str,
    kind: MetricKind,
    labels: &'static [&'static str],
    help: &'static str,
) -> MetricInfo {
    MetricInfo {
        name,
        kind,
        labels,
        help,
    }
}

use MetricKind::{Counter, Gauge, Histogram};

/// Every metric this crate records, with its help text: what [`describe_metrics`] hands to
/// the exporter, so each one has `# HELP` and `# TYPE` lines.
pub const METRICS: &[MetricInfo] = &[
    info(
        names::RESTARTS,
        Counter,
        &["path"],
        "Restarts of a child or supervisor.",
    ),
    info(
        names::START_FAILURES,
        Counter,
        &["path"],
        "Failed start attempts of a child or supervisor.",
    ),
    info(
        names::ABNORMAL_EXITS,
        Counter,
        &["path"],
        "Exits whose reason is neither normal nor shutdown.",
    ),
    info(
        names::ESCALATIONS,
        Counter,
        &["supervisor"],
        "Supervisors that exceeded their restart intensity and gave up.",
    ),
    info(
        names::AUTO_SHUTDOWNS,
        Counter,
        &["supervisor"],
        "Supervisors that shut down because of significant children.",
    ),
    info(
        names::ASKS,
        Counter,
        &["agent", "task_type", "outcome"],
        "Finished asks and tells, by outcome (ok or the error kind).",
    ),
    info(
        names::ASK_LATENCY,
        Histogram,
        &["agent", "task_type"],
        "Time from an ask to its outcome, in seconds.",
    ),
    info(
        names::TOKENS,
        Counter,
        &["agent", "task_type", "direction"],
        "Input and output tokens reported by handlers.",
    ),
    info(
        names::COST,
        Counter,
        &["agent", "task_type"],
        "Handlers' reported cost, in micro-USD (1 USD = 1000000).",
    ),
    info(
        names::MODEL_CALLS,
        Counter,
        &["agent", "model", "outcome"],
        "Model calls made through AgentContext::model, by outcome.",
    ),
    info(
        names::MODEL_TOKENS,
        Counter,
        &["agent", "model", "kind"],
        "Model calls' tokens as the provider reported them (cached_input is part of input).",
    ),
    info(
        names::INJECTED_FAULTS,
        Counter,
        &["agent", "task_type", "fault"],
        "Asks whose outcome was caused by fault injection.",
    ),
    info(
        names::BREAKER_STATE,
        Gauge,
        &["agent", "task_type", "state"],
        "1 for the state a circuit breaker is in, 0 for the others.",
    ),
    info(
        names::BREAKER_TRANSITIONS,
        Counter,
        &["agent", "task_type", "to"],
        "Circuit breaker state changes, by the state entered.",
    ),
    info(
        names::BREAKERS_OPEN,
        Gauge,
        &[],
        "Circuit breakers rejecting calls (open or forced open).",
    ),
    info(
        names::BUDGET_USED_TOKENS,
        Gauge,
        &[],
        "Process budget: tokens committed.",
    ),
    info(
        names::BUDGET_USED_COST,
        Gauge,
        &[],
        "Process budget: cost committed, in micro-USD.",
    ),
    info(
        names::BUDGET_USED_STEPS,
        Gauge,
        &[],
        "Process budget: steps committed.",
    ),
    info(
        names::BUDGET_RESERVED_TOKENS,
        Gauge,
        &[],
        "Process budget: tokens held by asks in flight.",
    ),
    info(
        names::BUDGET_RESERVED_COST,
        Gauge,
        &[],
        "Process budget: cost held by asks in flight, in micro-USD.",
    ),
    info(
        names::BUDGET_RESERVED_STEPS,
        Gauge,
        &[],
        "Process budget: steps held by asks in flight.",
    ),
    info(
        names::BUDGET_LIMIT_TOKENS,
        Gauge,
        &[],
        "The process token limit (absent when unlimited).",
    ),
    info(
        names::BUDGET_LIMIT_COST,
        Gauge,
        &[],
        "The process cost limit in micro-USD (absent when unlimited).",
    ),
    info(
        names::BUDGET_LIMIT_STEPS,
        Gauge,
        &[],
        "The process step limit (absent when unlimited).",
    ),
    info(
        names::BUDGET_WARNINGS,
        Counter,
        &["scope", "dimension", "tier"],
        "Budget warning tiers reached.",
    ),
    info(
        names::KILL_SWITCH_TRIPPED,
        Gauge,
        &[],
        "1 once the kill switch has tripped, else 0.",
    ),
    info(
        names::QUEUE_DEPTH,
        Gauge,
        &["agent"],
        "Tasks waiting in an agent's queue.",
    ),
    info(
        names::QUEUE_CAPACITY,
        Gauge,
        &["agent"],
        "The most tasks an agent's queue holds.",
    ),
    info(
        names::DEAD_LETTERS,
        Gauge,
        &[],
        "Tasks in the dead-letter queue.",
    ),
    info(
        names::AGENT_HEALTH,
        Gauge,
        &["agent", "state"],
        "1 for the health an agent's checks found (unchecked, healthy, unhealthy), 0 for the others.",
    ),
    info(
        names::HEALTH_CHECK_FAILURES,
        Counter,
        &["agent"],
        "Health checks that failed: an error, a panic, or no answer within the check's timeout.",
    ),
    info(
        names::HEARTBEAT_AGE,
        Gauge,
        &["agent"],
        "Seconds since the agent's handler last beat, for agents watched by a heartbeat timeout.",
    ),
    info(
        names::BULKHEAD_IN_USE,
        Gauge,
        &["bulkhead"],
        "Calls holding a permit of the bulkhead.",
    ),
    info(
        names::BULKHEAD_LIMIT,
        Gauge,
        &["bulkhead"],
        "The bulkhead's limit, in calls.",
    ),
    info(
        names::BULKHEAD_WAITING,
        Gauge,
        &["bulkhead"],
        "Calls waiting for a permit of the bulkhead.",
    ),
    info(
        names::BULKHEAD_WAITS,
        Counter,
        &["bulkhead"],
        "Calls that had to wait for a permit of the bulkhead.",
    ),
    info(
        names::BULKHEAD_TIMEOUTS,
        Counter,
        &["bulkhead"],
        "Permit waits that ended at their deadline without a permit.",
    ),
    info(
        names::EVENTS_LAGGED,
        Counter,
        &[],
        "Events the metrics recorder missed because it fell behind.",
    ),
    info(
        names::LABEL_OVERFLOWS,
        Counter,
        &["label"],
        "Label values recorded as _other because the label had reached its bound.",
    ),
];

/// Hands every metric's help text ([`METRICS`]) to the installed `metrics` recorder, so the
/// exposition has a `# HELP` line for each; [`record_metrics`](crate::record_metrics) calls
/// it. Units are in the names, so none is passed (an exporter adding unit suffixes would
/// double them).
pub fn describe_metrics() {
    for metric in METRICS {
        let help = metric.help;
        match metric.kind {
            Counter => metrics::describe_counter!(metric.name, help),
            Gauge => metrics::describe_gauge!(metric.name, help),
            Histogram => metrics::describe_histogram!(metric.name, help),
        }
    }
}

/// Label pairs of one metric update.
pub type Labels = Vec<(&'static str, String)>;

/// One change to a metric, as data: what the recorder task hands to the `metrics` facade.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Update {
    /// Adds `by` to a counter.
    Increment {
        /// The metric's name.
        name: &'static str,
        /// Its labels.
        labels: Labels,
        /// How much to add.
        by: u64,
    },
    /// Sets a gauge.
    Set {
        /// The metric's name.
        name: &'static str,
        /// Its labels.
        labels: Labels,
        /// The new value.
        value: f64,
    },
    /// Sets a counter to a total read from a snapshot (it only grows).
    Absolute {
        /// The metric's name.
        name: &'static str,
        /// Its labels.
        labels: Labels,
        /// The total.
        value: u64,
    },
    /// Records one observation in a histogram.
    Record {
        /// The metric's name.
        name: &'static str,
        /// Its labels.
        labels: Labels,
        /// The observation.
        value: f64,
    },
}

impl Update {
    /// The metric's name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Increment { name, .. }
            | Self::Absolute { name, .. }
            | Self::Set { name, .. }
            | Self::Record { name, .. } => name,
        }
    }

    /// The update's labels.
    pub fn labels(&self) -> &Labels {
        match self {
            Self::Increment { labels, .. }
            | Self::Absolute { labels, .. }
            | Self::Set { labels, .. }
            | Self::Record { labels, .. } => labels,
        }
    }

    /// The update's labels, to change.
    pub fn labels_mut(&mut self) -> &mut Labels {
        match self {
            Self::Increment { labels, .. }
            | Self::Absolute { labels, .. }
            | Self::Set { labels, .. }
            | Self::Record { labels, .. } => labels,
        }
    }

    /// Hands the update to the globally installed `metrics` recorder (a no-op without one),
    /// with its labels as they are (the recorder task adds `system` first).
    pub fn apply(&self) {
        let to_labels = |labels: &Labels| -> Vec<metrics::Label> {
            labels
                .iter()
                .map(|(key, value)| metrics::Label::new(*key, value.clone()))
                .collect()
        };
        match self {
            Self::Increment { name, labels, by } => {
                metrics::counter!(*name, to_labels(labels)).increment(*by)
            }
            Self::Absolute {
                name,
                labels,
                value,
            } => metrics::counter!(*name, to_labels(labels)).absolute(*value),
            Self::Set {
                name,
                labels,
                value,
            } => metrics::gauge!(*name, to_labels(labels)).set(*value),
            Self::Record {
                name,
                labels,
                value,
            } => metrics::histogram!(*name, to_labels(labels)).record(*value),
        }
    }
}

fn increment(name: &'static str, labels: Labels, by: u64) -> Update {
    Update::Increment { name, labels, by }
}

fn set(name: &'static str, labels: Labels, value: f64) -> Update {
    Update::Set {
        name,
        labels,
        value,
    }
}

/// The breaker states, in the order their series are written: `closed`, `half_open`,
/// `open`, `forced_open`, `disabled` ([`State::as_str`]).
pub const BREAKER_STATES: [State; 5] = [
    State::Closed,
    State::HalfOpen,
    State::Open,
    State::ForcedOpen,
    State::Disabled,
];

/// The `overseer_breaker_state` series of one breaker in `state`: one per state, labelled
/// `state`, 1 for `state` and 0 for the other four, so `max by (state)` or
/// `overseer_breaker_state{state="open"} == 1` select without knowing a numeric code.
pub fn breaker_state_series(agent: &str, task_type: &str, state: State) -> Vec<Update> {
    BREAKER_STATES
        .iter()
        .map(|candidate| {
            set(
                names::BREAKER_STATE,
                vec![
                    ("agent", agent.to_string()),
                    ("task_type", task_type.to_string()),
                    ("state", candidate.as_str().to_string()),
                ],
                if *candidate == state { 1.0 } else { 0.0 },
            )
        })
        .collect()
}

/// The `dimension` label value of a budget warning: `tokens`, `cost` or `steps`.
pub fn dimension_label(dimension: Dimension) -> &'static str {
    match dimension {
        Dimension::Tokens => "tokens",
        Dimension::Cost => "cost",
        Dimension::Steps => "steps",
    }
}

/// The gauges of a process ledger and the kill switch: used, reserved and (when limited)
/// limit of each dimension, one metric per unit (`_tokens`, `_micro_usd`, `_steps`), and
/// whether the switch has tripped.
pub fn budget_gauges(status: &LedgerStatus, tripped: bool) -> Vec<Update> {
    let mut updates = Vec::with_capacity(10);
    for dimension in Dimension::ALL {
        let figures = status.dimension(dimension);
        let [used, reserved, limit] = budget_names(dimension);
        updates.push(set(used, Vec::new(), figures.committed as f64));
        updates.push(set(reserved, Vec::new(), figures.reserved as f64));
        if let Some(value) = figures.limit {
            updates.push(set(limit, Vec::new(), value as f64));
        }
    }
    updates.push(set(
        names::KILL_SWITCH_TRIPPED,
        Vec::new(),
        if tripped { 1.0 } else { 0.0 },
    ));
    updates
}

/// The used, reserved and limit gauges of one budget dimension.
fn budget_names(dimension: Dimension) -> [&'static str; 3] {
    match dimension {
        Dimension::Tokens => [
            names::BUDGET_USED_TOKENS,
            names::BUDGET_RESERVED_TOKENS,
            names::BUDGET_LIMIT_TOKENS,
        ],
        Dimension::Cost => [
            names::BUDGET_USED_COST,
            names::BUDGET_RESERVED_COST,
            names::BUDGET_LIMIT_COST,
        ],
        Dimension::Steps => [
            names::BUDGET_USED_STEPS,
            names::BUDGET_RESERVED_STEPS,
            names::BUDGET_LIMIT_STEPS,
        ],
    }
}

/// The gauges of a breaker registry's snapshot: each breaker's state, and how many reject
/// calls (open or forced open; half-open breakers admit probes and are not counted).
pub fn breaker_gauges(snapshots: &[BreakerSnapshot]) -> Vec<Update> {
    let mut updates: Vec<Update> = snapshots
        .iter()
        .flat_map(|snapshot| {
            breaker_state_series(
                snapshot.key.agent.as_ref(),
                snapshot.key.task_type.as_ref(),
                snapshot.state,
            )
        })
        .collect();
    let open = snapshots
        .iter()
        .filter(|snapshot| matches!(snapshot.state, State::Open | State::ForcedOpen))
        .count();
    updates.push(set(names::BREAKERS_OPEN, Vec::new(), open as f64));
    updates
}

/// The gauges of the agents' queues ([`System::queue_depths`](overseer_agent::System::queue_depths)):
/// each one's depth and capacity.
pub fn queue_gauges(depths: &[QueueDepth]) -> Vec<Update> {
    depths
        .iter()
        .flat_map(|depth| {
            let agent = vec![("agent", depth.agent.to_string())];
            [
                set(names::QUEUE_DEPTH, agent.clone(), depth.queued as f64),
                set(names::QUEUE_CAPACITY, agent, depth.capacity as f64),
            ]
        })
        .collect()
}

/// The health gauges of the agents ([`System::health`](overseer_agent::System::health)): one
/// `overseer_agent_health` series per state (1 for the agent's, 0 for the others), and the
/// time since the last beat of agents watched by a heartbeat timeout.
pub fn health_gauges(agents: &[AgentHealth]) -> Vec<Update> {
    const STATES: [&str; 3] = ["unchecked", "healthy", "unhealthy"];
    let mut updates = Vec::with_capacity(4 * agents.len());
    for agent in agents {
        let current = match agent.health {
            Health::Healthy => "healthy",
            Health::Unhealthy { .. } => "unhealthy",
            _ => "unchecked",
        };
        for state in STATES {
            let labels = vec![
                ("agent", agent.agent.to_string()),
                ("state", state.to_string()),
            ];
            let value = if state == current { 1.0 } else { 0.0 };
            updates.push(set(names::AGENT_HEALTH, labels, value));
        }
        if let Some(since) = agent.since_last_beat {
            let labels = vec![("agent", agent.agent.to_string())];
            updates.push(set(names::HEARTBEAT_AGE, labels, since.as_secs_f64()));
        }
    }
    updates
}

/// The metrics of a system's bulkheads ([`System::bulkheads`](overseer_agent::System::bulkheads)):
/// each one's permits in use, limit and waiters as gauges, its waits and timeouts as counters.
pub fn bulkhead_metrics(snapshots: &[BulkheadSnapshot]) -> Vec<Update> {
    let mut updates = Vec::with_capacity(5 * snapshots.len());
    for snapshot in snapshots {
        let labels = || vec![("bulkhead", snapshot.name.to_string())];
        updates.push(set(
            names::BULKHEAD_IN_USE,
            labels(),
            snapshot.in_use as f64,
        ));
        updates.push(set(names::BULKHEAD_LIMIT, labels(), snapshot.limit as f64));
        updates.push(set(
            names::BULKHEAD_WAITING,
            labels(),
            snapshot.waiting as f64,
        ));
        updates.push(Update::Absolute {
            name: names::BULKHEAD_WAITS,
            labels: labels(),
            value: snapshot.waits_total,
        });
        updates.push(Update::Absolute {
            name: names::BULKHEAD_TIMEOUTS,
            labels: labels(),
            value: snapshot.timeouts_total,
        });
    }
    updates
}

/// Maps events to metric updates. It remembers which paths have started, so that a second
/// `Started` of one path counts as a restart; otherwise each event maps on its own.
#[derive(Debug, Default)]
pub struct EventMetrics {
    started: HashSet<String>,
}

impl EventMetrics {
    /// A mapper that has seen no event.
    pub fn new() -> Self {
        Self::default()
    }

    /// The updates `event` causes (gauges read from the budget and breaker registry are not
    /// included: see [`budget_gauges`] and [`breaker_gauges`]).
    pub fn updates(&mut self, event: &SystemEvent) -> Vec<Update> {
        match event {
            SystemEvent::Lifecycle(event) => {
                let path = || vec![("path", event.path.as_str().to_string())];
                let supervisor = || vec![("supervisor", event.path.as_str().to_string())];
                match &event.kind {
                    EventKind::Started => {
                        if self.started.insert(event.path.as_str().to_string()) {
                            Vec::new()
                        } else {
                            vec![increment(names::RESTARTS, path(), 1)]
                        }
                    }
                    EventKind::StartFailed { .. } => {
                        vec![increment(names::START_FAILURES, path(), 1)]
                    }
                    EventKind::Stopped { reason } if !reason.is_normal() => {
                        vec![increment(names::ABNORMAL_EXITS, path(), 1)]
                    }
                    EventKind::Stopped { .. } => Vec::new(),
                    EventKind::Escalated { .. } => {
                        vec![increment(names::ESCALATIONS, supervisor(), 1)]
                    }
                    EventKind::AutoShutdown => {
                        vec![increment(names::AUTO_SHUTDOWNS, supervisor(), 1)]
                    }
                    // A kind no metric counts yet.
                    _ => Vec::new(),
                }
            }
            SystemEvent::Ask(ask) => {
                let agent = ask.agent.to_string();
                let task_type = ask.task_type.to_string();
                let labels = || vec![("agent", agent.clone()), ("task_type", task_type.clone())];
                let with = |key: &'static str, value: &str| {
                    let mut labels = labels();
                    labels.push((key, value.to_string()));
                    labels
                };
                let outcome = match &ask.outcome {
                    AskOutcome::Ok => "ok",
                    AskOutcome::Error { kind, .. } => kind,
                };
                let mut updates = vec![
                    increment(names::ASKS, with("outcome", outcome), 1),
                    Update::Record {
                        name: names::ASK_LATENCY,
                        labels: labels(),
                        value: ask.latency.as_secs_f64(),
                    },
                    increment(
                        names::TOKENS,
                        with("direction", "input"),
                        ask.usage.input_tokens,
                    ),
                    increment(
                        names::TOKENS,
                        with("direction", "output"),
                        ask.usage.output_tokens,
                    ),
                    increment(names::COST, labels(), ask.usage.cost_micros),
                ];
                if let Some(fault) = &ask.injected {
                    updates.push(increment(names::INJECTED_FAULTS, with("fault", fault), 1));
                }
                for call in &ask.model_calls {
                    let model = if call.model.is_empty() {
                        "unknown"
                    } else {
                        call.model.as_str()
                    };
                    let labels = |key: &'static str, value: &str| {
                        vec![
                            ("agent", agent.clone()),
                            ("model", model.to_string()),
                            (key, value.to_string()),
                        ]
                    };
                    updates.push(increment(
                        names::MODEL_CALLS,
                        labels("outcome", &call.outcome),
                        1,
                    ));
                    let usage = &call.usage;
                    for (kind, tokens) in [
                        ("input", usage.input_tokens),
                        ("output", usage.output_tokens),
                        ("cached_input", usage.cached_input_tokens),
                    ] {
                        updates.push(increment(names::MODEL_TOKENS, labels("kind", kind), tokens));
                    }
                }
                updates
            }
            SystemEvent::BudgetWarning(event) => {
                let warning = &event.warning;
                vec![increment(
                    names::BUDGET_WARNINGS,
                    vec![
                        ("scope", warning.scope.to_string()),
                        ("dimension", dimension_label(warning.dimension).to_string()),
                        ("tier", warning.tier.level.to_string()),
                    ],
                    1,
                )]
            }
            SystemEvent::KillSwitchTripped(tripped) => match &tripped.report.process {
                Some(status) => budget_gauges(status, true),
                None => vec![set(names::KILL_SWITCH_TRIPPED, Vec::new(), 1.0)],
            },
            SystemEvent::Breaker(moved) => {
                let labels = vec![
                    ("agent", moved.agent.to_string()),
                    ("task_type", moved.task_type.clone()),
                ];
                let mut with_to = labels;
                with_to.push(("to", moved.to.as_str().to_string()));
                let mut updates =
                    breaker_state_series(moved.agent.as_str(), &moved.task_type, moved.to);
                updates.push(increment(names::BREAKER_TRANSITIONS, with_to, 1));
                updates
            }
            SystemEvent::DeadLetter(changed) => {
                vec![set(
                    names::DEAD_LETTERS,
                    Vec::new(),
                    changed.queue_len as f64,
                )]
            }
            SystemEvent::Health(checked) if checked.failure.is_some() => {
                let agent = vec![("agent", checked.agent.to_string())];
                vec![increment(names::HEALTH_CHECK_FAILURES, agent, 1)]
            }
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::time::Duration;

    use overseer_agent::{AgentName, AskEvent, BreakerEvent, Usage};
    use overseer_breaker::Trigger;
    use overseer_budget::{Ledger, Limits, Scope, Spend};
    use overseer_supervisor::{ChildId, ChildPath, ExitReason, LifecycleEvent};

    use super::*;

    fn event_id() -> overseer_supervisor::EventId {
        overseer_supervisor::EventId::new(1).expect("non-zero")
    }

    fn lifecycle(path: &str, kind: EventKind) -> SystemEvent {
        let mut parts = path.split('/');
        let mut child_path = ChildPath::root(&ChildId::from(parts.next().unwrap()));
        for part in parts {
            child_path = child_path.join(&ChildId::from(part));
        }
        SystemEvent::Lifecycle(LifecycleEvent::new(
            event_id(),
            None,
            Duration::ZERO,
            child_path,
            kind,
        ))
    }

    fn ask(outcome: AskOutcome, injected: Option<&'static str>) -> SystemEvent {
        let mut ask = AskEvent::new(event_id(), AgentName::from("writer"), "draft", outcome);
        ask.latency = Duration::from_millis(250);
        ask.usage = Usage::new(10, 5, 7);
        ask.injected = injected.map(Cow::Borrowed);
        SystemEvent::Ask(ask)
    }

    fn labels(pairs: &[(&'static str, &str)]) -> Labels {
        pairs.iter().map(|(k, v)| (*k, v.to_string())).collect()
    }

    #[test]
    fn a_second_start_of_a_path_is_a_restart() {
        let mut mapper = EventMetrics::new();
        assert!(mapper
            .updates(&lifecycle("root", EventKind::Started))
            .is_empty());
        assert!(mapper
            .updates(&lifecycle("root/writer", EventKind::Started))
            .is_empty());
        let crash = EventKind::Stopped {
            reason: ExitReason::Panicked("boom".into()),
        };
        assert_eq!(
            mapper.updates(&lifecycle("root/writer", crash)),
            vec![increment(
                names::ABNORMAL_EXITS,
                labels(&[("path", "root/writer")]),
                1
            )]
        );
        assert_eq!(
            mapper.updates(&lifecycle("root/writer", EventKind::Started)),
            vec![increment(
                names::RESTARTS,
                labels(&[("path", "root/writer")]),
                1
            )]
        );
    }

    #[test]
    fn a_shutdown_stop_is_not_an_abnormal_exit() {
        let stop = EventKind::Stopped {
            reason: ExitReason::Shutdown,
        };
        assert!(EventMetrics::new()
            .updates(&lifecycle("root/writer", stop))
            .is_empty());
    }

    #[test]
    fn an_escalation_counts_for_its_supervisor() {
        let escalated = EventKind::Escalated {
            intensity: 3,
            period_secs: 5,
        };
        assert_eq!(
            EventMetrics::new().updates(&lifecycle("root/team", escalated)),
            vec![increment(
                names::ESCALATIONS,
                labels(&[("supervisor", "root/team")]),
                1
            )]
        );
    }

    #[test]
    fn an_ok_ask_counts_its_outcome_latency_tokens_and_cost() {
        let updates = EventMetrics::new().updates(&ask(AskOutcome::Ok, None));
        let base = [("agent", "writer"), ("task_type", "draft")];
        assert_eq!(
            updates,
            vec![
                increment(
                    names::ASKS,
                    labels(&[base[0], base[1], ("outcome", "ok")]),
                    1
                ),
                Update::Record {
                    name: names::ASK_LATENCY,
                    labels: labels(&base),
                    value: 0.25
                },
                increment(
                    names::TOKENS,
                    labels(&[base[0], base[1], ("direction", "input")]),
                    10
                ),
                increment(
                    names::TOKENS,
                    labels(&[base[0], base[1], ("direction", "output")]),
                    5
                ),
                increment(names::COST, labels(&base), 7),
            ]
        );
    }

    #[test]
    fn a_failed_ask_counts_by_error_kind_and_injected_fault() {
        let failed = AskOutcome::Error {
            kind: Cow::Borrowed("timeout"),
            message: "too slow".into(),
        };
        let updates = EventMetrics::new().updates(&ask(failed, Some("latency")));
        assert_eq!(
            updates[0],
            increment(
                names::ASKS,
                labels(&[
                    ("agent", "writer"),
                    ("task_type", "draft"),
                    ("outcome", "timeout")
                ]),
                1
            )
        );
        assert_eq!(
            updates.last(),
            Some(&increment(
                names::INJECTED_FAULTS,
                labels(&[
                    ("agent", "writer"),
                    ("task_type", "draft"),
                    ("fault", "latency")
                ]),
                1
            ))
        );
    }

    #[test]
    fn each_model_call_counts_its_outcome_and_its_tokens_by_kind() {
        use overseer_agent::ModelCall;
        let SystemEvent::Ask(mut event) = ask(AskOutcome::Ok, None) else {
            unreachable!()
        };
        event.model_calls = vec![
            ModelCall::new(
                "gpt-4o-mini",
                "ok",
                Usage::new(120, 45, 9).with_cached_input_tokens(100),
            ),
            ModelCall::new("", "replay_unsafe", Usage::new(30, 1024, 0)),
        ];
        let updates = EventMetrics::new().updates(&SystemEvent::Ask(event));
        let model: Vec<&Update> = updates
            .iter()
            .filter(|u| u.name() == names::MODEL_CALLS || u.name() == names::MODEL_TOKENS)
            .collect();
        let of = |model: &str, key: &'static str, value: &str| {
            labels(&[("agent", "writer"), ("model", model), (key, value)])
        };
        assert_eq!(
            model,
            vec![
                &increment(names::MODEL_CALLS, of("gpt-4o-mini", "outcome", "ok"), 1),
                &increment(names::MODEL_TOKENS, of("gpt-4o-mini", "kind", "input"), 120),
                &increment(names::MODEL_TOKENS, of("gpt-4o-mini", "kind", "output"), 45),
                &increment(
                    names::MODEL_TOKENS,
                    of("gpt-4o-mini", "kind", "cached_input"),
                    100
                ),
                &increment(
                    names::MODEL_CALLS,
                    of("unknown", "outcome", "replay_unsafe"),
                    1
                ),
                &increment(names::MODEL_TOKENS, of("unknown", "kind", "input"), 30),
                &increment(names::MODEL_TOKENS, of("unknown", "kind", "output"), 1024),
                &increment(
                    names::MODEL_TOKENS,
                    of("unknown", "kind", "cached_input"),
                    0
                ),
            ]
        );
    }

    #[test]
    fn a_dead_letter_event_sets_the_queue_size() {
        let letter = overseer_agent::DeadLetter::new(
            "writer",
            "draft",
            overseer_journal::Payload::encode("task").unwrap(),
        );
        let event = SystemEvent::DeadLetter(overseer_agent::DeadLetterEvent::new(
            event_id(),
            overseer_agent::DeadLetterChange::Pushed,
            &letter,
            101,
        ));
        assert_eq!(
            EventMetrics::new().updates(&event),
            vec![set(names::DEAD_LETTERS, Vec::new(), 101.0)]
        );
    }

    #[test]
    fn a_breaker_event_sets_one_series_per_state_and_counts_the_transition() {
        let mut opened = BreakerEvent::new(
            event_id(),
            AgentName::from("writer"),
            "draft",
            State::Closed,
            State::Open,
            Trigger::ConsecutiveFailures,
        );
        opened.failure_rate = 1.0;
        opened.calls_in_window = 3;
        opened.consecutive_failures = 3;
        opened.open_for = Some(Duration::from_secs(30));
        let event = SystemEvent::Breaker(opened);
        let key = [("agent", "writer"), ("task_type", "draft")];
        let state = |name: &str, value: f64| {
            set(
                names::BREAKER_STATE,
                labels(&[key[0], key[1], ("state", name)]),
                value,
            )
        };
        assert_eq!(
            EventMetrics::new().updates(&event),
            vec![
                state("closed", 0.0),
                state("half_open", 0.0),
                state("open", 1.0),
                state("forced_open", 0.0),
                state("disabled", 0.0),
                increment(
                    names::BREAKER_TRANSITIONS,
                    labels(&[key[0], key[1], ("to", "open")]),
                    1
                ),
            ]
        );
    }

    #[test]
    fn exactly_one_state_series_of_a_breaker_is_one() {
        for state in BREAKER_STATES {
            let series = breaker_state_series("a", "t", state);
            assert_eq!(series.len(), 5);
            let on: Vec<&Update> = series
                .iter()
                .filter(|u| matches!(u, Update::Set { value, .. } if *value == 1.0))
                .collect();
            assert_eq!(on.len(), 1);
            assert!(on[0]
                .labels()
                .contains(&("state", state.as_str().to_string())));
        }
    }

    #[test]
    fn every_metric_is_described_once_with_a_unit_or_total_suffix() {
        let mut seen = HashSet::new();
        for metric in METRICS {
            assert!(seen.insert(metric.name), "{} twice", metric.name);
            assert!(!metric.help.is_empty());
            // The examples' output is checked for Debug names; help texts are printed too.
            let words: Vec<&str> = metric
                .help
                .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .collect();
            for debug in ["Tokens", "Steps", "Cost", "Started", "Stopped", "None"] {
                assert!(!words.contains(&debug), "{}: {}", metric.name, metric.help);
            }
            assert_eq!(
                metric.kind == MetricKind::Counter,
                metric.name.ends_with("_total"),
                "{}: counters and only counters end in _total",
                metric.name
            );
        }
    }

    #[test]
    fn budget_gauges_show_used_reserved_and_only_set_limits() {
        let ledger = Ledger::new(Scope::Process, Limits::new().tokens(1_000)).unwrap();
        let held = ledger.reserve(Spend::new(300, 0)).unwrap();
        let updates = budget_gauges(&ledger.status(), false);
        assert!(updates.contains(&set(names::BUDGET_RESERVED_TOKENS, Vec::new(), 300.0)));
        assert!(updates.contains(&set(names::BUDGET_USED_TOKENS, Vec::new(), 0.0)));
        assert!(updates.contains(&set(names::BUDGET_USED_COST, Vec::new(), 0.0)));
        assert!(updates.contains(&set(names::BUDGET_LIMIT_TOKENS, Vec::new(), 1_000.0)));
        assert!(
            !updates
                .iter()
                .any(|u| u.name() == names::BUDGET_LIMIT_COST
                    || u.name() == names::BUDGET_LIMIT_STEPS)
        );
        assert!(updates.iter().all(|u| u.labels().is_empty()));
        assert_eq!(
            updates.last(),
            Some(&set(names::KILL_SWITCH_TRIPPED, Vec::new(), 0.0))
        );
        drop(held);
    }

    #[test]
    fn bulkhead_metrics_show_permits_in_use_waiters_and_totals() {
        let bulkhead = overseer_agent::fanout::Bulkhead::new("model-calls", 4).unwrap();
        let _held = bulkhead.try_acquire().unwrap();
        let updates = bulkhead_metrics(&[bulkhead.snapshot()]);
        let named = || labels(&[("bulkhead", "model-calls")]);
        assert_eq!(
            updates,
            vec![
                set(names::BULKHEAD_IN_USE, named(), 1.0),
                set(names::BULKHEAD_LIMIT, named(), 4.0),
                set(names::BULKHEAD_WAITING, named(), 0.0),
                Update::Absolute {
                    name: names::BULKHEAD_WAITS,
                    labels: named(),
                    value: 0
                },
                Update::Absolute {
                    name: names::BULKHEAD_TIMEOUTS,
                    labels: named(),
                    value: 0
                },
            ]
        );
    }

    #[test]
    fn health_gauges_set_one_state_and_the_heartbeat_age_of_watched_agents() {
        assert!(health_gauges(&[]).is_empty(), "no agents, no series");
        let mut writer =
            AgentHealth::new(AgentName::new("writer"), Health::Unhealthy { failures: 2 });
        writer.since_last_beat = Some(Duration::from_millis(1_500));
        let reader = AgentHealth::new(AgentName::new("reader"), Health::Healthy);
        let updates = health_gauges(&[writer, reader]);
        let value = |agent: &str, state: &str| {
            updates.iter().find_map(|update| match update {
                Update::Set {
                    name,
                    labels,
                    value,
                } if *name == names::AGENT_HEALTH
                    && labels.contains(&("agent", agent.to_string()))
                    && labels.contains(&("state", state.to_string())) =>
                {
                    Some(*value)
                }
                _ => None,
            })
        };
        assert_eq!(value("writer", "unhealthy"), Some(1.0));
        assert_eq!(value("writer", "healthy"), Some(0.0));
        assert_eq!(value("reader", "healthy"), Some(1.0));
        assert_eq!(value("reader", "unchecked"), Some(0.0));
        let ages: Vec<f64> = updates
            .iter()
            .filter_map(|update| match update {
                Update::Set { name, value, .. } if *name == names::HEARTBEAT_AGE => Some(*value),
                _ => None,
            })
            .collect();
        assert_eq!(ages, [1.5], "only the watched agent has an age");
    }

    #[test]
    fn no_breakers_means_none_open() {
        assert_eq!(
            breaker_gauges(&[]),
            vec![set(names::BREAKERS_OPEN, Vec::new(), 0.0)]
        );
    }
}
