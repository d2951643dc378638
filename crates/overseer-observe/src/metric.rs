//! Metric names and the pure mapping from events and snapshots to metric updates.

use std::collections::HashSet;

use overseer_agent::{AskOutcome, BulkheadSnapshot, QueueDepth, SystemEvent};
use overseer_breaker::{BreakerSnapshot, State};
use overseer_budget::{Dimension, LedgerStatus};
use overseer_supervisor::EventKind;

/// The names of the metrics this crate records (see the table in the crate docs).
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
    /// Counter `{agent, task_type}`: cost reported by handlers, in micro-units.
    pub const COST_MICROS: &str = "overseer_cost_micros_total";
    /// Counter `{agent, model, outcome}`: model calls made through `AgentContext::model`;
    /// `outcome` is `ok` or the failure's class (`transient`, `rate_limited`, `permanent`,
    /// `replay_unsafe`, ...).
    pub const MODEL_CALLS: &str = "overseer_model_calls_total";
    /// Counter `{agent, model, kind}`: tokens of those calls, `kind` `input`, `output` or
    /// `cached_input` (cached input tokens are counted in `input` too).
    pub const MODEL_TOKENS: &str = "overseer_model_tokens_total";
    /// Counter `{agent, task_type, fault}`: asks whose outcome was an injected fault.
    pub const INJECTED_FAULTS: &str = "overseer_injected_faults_total";
    /// Gauge `{agent, task_type}`: a breaker's state, coded by [`breaker_state_code`](super::breaker_state_code).
    pub const BREAKER_STATE: &str = "overseer_breaker_state";
    /// Counter `{agent, task_type, to}`: breaker state changes, by the state entered.
    pub const BREAKER_TRANSITIONS: &str = "overseer_breaker_transitions_total";
    /// Gauge: breakers rejecting calls (open or forced open).
    pub const BREAKERS_OPEN: &str = "overseer_breakers_open";
    /// Gauge `{dimension}`: committed spend of the process budget.
    pub const BUDGET_USED: &str = "overseer_budget_used";
    /// Gauge `{dimension}`: spend reserved by asks in flight.
    pub const BUDGET_RESERVED: &str = "overseer_budget_reserved";
    /// Gauge `{dimension}`: the process limit (absent for an unlimited dimension).
    pub const BUDGET_LIMIT: &str = "overseer_budget_limit";
    /// Counter `{scope, dimension, tier}`: budget warning tiers reached.
    pub const BUDGET_WARNINGS: &str = "overseer_budget_warnings_total";
    /// Gauge: 1 once the kill switch has tripped, else 0.
    pub const KILL_SWITCH_TRIPPED: &str = "overseer_kill_switch_tripped";
    /// Gauge `{agent}`: tasks waiting in an agent's queue, set after each ask.
    pub const QUEUE_DEPTH: &str = "overseer_queue_depth";
    /// Gauge `{agent}`: the most an agent's queue holds (asks beyond it are refused with
    /// `queue_full`, counted by `overseer_asks_total{outcome="queue_full"}`).
    pub const QUEUE_CAPACITY: &str = "overseer_queue_capacity";
    /// Gauge: tasks in the dead-letter queue, set on each push, update and removal.
    pub const DEAD_LETTERS: &str = "overseer_dead_letters";
    /// Gauge `{bulkhead}`: calls holding a permit of the bulkhead now.
    pub const BULKHEAD_IN_USE: &str = "overseer_bulkhead_in_use";
    /// Gauge `{bulkhead}`: the bulkhead's limit.
    pub const BULKHEAD_LIMIT: &str = "overseer_bulkhead_limit";
    /// Gauge `{bulkhead}`: calls waiting for a permit now.
    pub const BULKHEAD_WAITING: &str = "overseer_bulkhead_waiting";
    /// Counter `{bulkhead}`: calls that had to wait for a permit.
    pub const BULKHEAD_WAITS: &str = "overseer_bulkhead_waits_total";
    /// Counter `{bulkhead}`: permit waits that ended at their deadline without a permit.
    pub const BULKHEAD_TIMEOUTS: &str = "overseer_bulkhead_timeouts_total";
    /// Counter: events the recorder missed because it fell behind the stream.
    pub const EVENTS_LAGGED: &str = "overseer_observe_events_lagged_total";
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

    /// Hands the update to the globally installed `metrics` recorder (a no-op without one).
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

/// A breaker's state as a gauge value:
///
/// | state | value |
/// |---|---|
/// | closed | 0 |
/// | half-open | 1 |
/// | open | 2 |
/// | forced open | 3 |
/// | disabled | 4 |
pub fn breaker_state_code(state: State) -> f64 {
    match state {
        State::Closed => 0.0,
        State::HalfOpen => 1.0,
        State::Open => 2.0,
        State::ForcedOpen => 3.0,
        State::Disabled => 4.0,
    }
}

/// The label value of a budget dimension: `tokens`, `cost_micros` or `steps` (the unit).
pub fn dimension_label(dimension: Dimension) -> &'static str {
    match dimension {
        Dimension::Tokens => "tokens",
        Dimension::Cost => "cost_micros",
        Dimension::Steps => "steps",
    }
}

/// The gauges of a process ledger and the kill switch: used, reserved and (when limited)
/// limit per dimension, and whether the switch has tripped.
pub fn budget_gauges(status: &LedgerStatus, tripped: bool) -> Vec<Update> {
    let mut updates = Vec::with_capacity(10);
    for dimension in Dimension::ALL {
        let figures = status.dimension(dimension);
        let labels = || vec![("dimension", dimension_label(dimension).to_string())];
        updates.push(set(names::BUDGET_USED, labels(), figures.committed as f64));
        updates.push(set(
            names::BUDGET_RESERVED,
            labels(),
            figures.reserved as f64,
        ));
        if let Some(limit) = figures.limit {
            updates.push(set(names::BUDGET_LIMIT, labels(), limit as f64));
        }
    }
    updates.push(set(
        names::KILL_SWITCH_TRIPPED,
        Vec::new(),
        if tripped { 1.0 } else { 0.0 },
    ));
    updates
}

/// The gauges of a breaker registry's snapshot: each breaker's state, and how many reject
/// calls (open or forced open; half-open breakers admit probes and are not counted).
pub fn breaker_gauges(snapshots: &[BreakerSnapshot]) -> Vec<Update> {
    let mut updates: Vec<Update> = snapshots
        .iter()
        .map(|snapshot| {
            set(
                names::BREAKER_STATE,
                vec![
                    ("agent", snapshot.key.agent.to_string()),
                    ("task_type", snapshot.key.task_type.to_string()),
                ],
                breaker_state_code(snapshot.state),
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
                    increment(names::COST_MICROS, labels(), ask.usage.cost_micros),
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
                let mut with_to = labels.clone();
                with_to.push(("to", moved.to.as_str().to_string()));
                vec![
                    set(names::BREAKER_STATE, labels, breaker_state_code(moved.to)),
                    increment(names::BREAKER_TRANSITIONS, with_to, 1),
                ]
            }
            SystemEvent::DeadLetter(changed) => {
                vec![set(
                    names::DEAD_LETTERS,
                    Vec::new(),
                    changed.queue_len as f64,
                )]
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
                increment(names::COST_MICROS, labels(&base), 7),
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
    fn a_breaker_event_sets_its_state_and_counts_the_transition() {
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
        assert_eq!(
            EventMetrics::new().updates(&event),
            vec![
                set(names::BREAKER_STATE, labels(&key), 2.0),
                increment(
                    names::BREAKER_TRANSITIONS,
                    labels(&[key[0], key[1], ("to", "open")]),
                    1
                ),
            ]
        );
    }

    #[test]
    fn breaker_states_have_distinct_documented_codes() {
        let codes: Vec<f64> = [
            State::Closed,
            State::HalfOpen,
            State::Open,
            State::ForcedOpen,
            State::Disabled,
        ]
        .into_iter()
        .map(breaker_state_code)
        .collect();
        assert_eq!(codes, vec![0.0, 1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn budget_gauges_show_used_reserved_and_only_set_limits() {
        let ledger = Ledger::new(Scope::Process, Limits::new().tokens(1_000)).unwrap();
        let held = ledger.reserve(Spend::new(300, 0)).unwrap();
        let updates = budget_gauges(&ledger.status(), false);
        let dimension = |d: &str| labels(&[("dimension", d)]);
        assert!(updates.contains(&set(names::BUDGET_RESERVED, dimension("tokens"), 300.0)));
        assert!(updates.contains(&set(names::BUDGET_USED, dimension("tokens"), 0.0)));
        assert!(updates.contains(&set(names::BUDGET_LIMIT, dimension("tokens"), 1_000.0)));
        assert!(!updates.iter().any(|u| u.name() == names::BUDGET_LIMIT
            && u != &set(names::BUDGET_LIMIT, dimension("tokens"), 1_000.0)));
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
    fn no_breakers_means_none_open() {
        assert_eq!(
            breaker_gauges(&[]),
            vec![set(names::BREAKERS_OPEN, Vec::new(), 0.0)]
        );
    }
}
