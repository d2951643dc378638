//! The task that turns a system's event stream into metrics, and its configuration.

use std::collections::{HashMap, HashSet};

use overseer_agent::{System, SystemEvent};
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;

use crate::metric::{
    breaker_gauges, budget_gauges, bulkhead_metrics, describe_metrics, health_gauges, names,
    queue_gauges, EventMetrics, Update,
};

/// The value a label is recorded with once it has reached its bound
/// ([`MetricsConfig::max_label_values`]).
pub const OTHER_LABEL_VALUE: &str = "_other";

/// How [`MetricsConfig::spawn`] records a system's metrics: the `system` label its series
/// carry, and the bound on each label's values.
///
/// ```
/// use overseer_observe::MetricsConfig;
/// let config = MetricsConfig::new().system("research").max_label_values(50);
/// assert_eq!(config.system_name(), "research");
/// assert_eq!(MetricsConfig::new().system_name(), "default");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    system: String,
    max_label_values: usize,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            system: Self::DEFAULT_SYSTEM.to_string(),
            max_label_values: Self::DEFAULT_MAX_LABEL_VALUES,
        }
    }
}

impl MetricsConfig {
    /// The `system` label when none is given.
    pub const DEFAULT_SYSTEM: &'static str = "default";
    /// The default bound on one label's distinct values.
    pub const DEFAULT_MAX_LABEL_VALUES: usize = 100;

    /// The defaults: `system="default"`, at most 100 values per label.
    pub fn new() -> Self {
        Self::default()
    }

    /// The `system` label on every series, so that two systems in one process (each with
    /// its own recorder) keep apart instead of adding into one series. Give each system of
    /// a process its own name.
    pub fn system(mut self, name: impl Into<String>) -> Self {
        self.system = name.into();
        self
    }

    /// The most distinct values one label key (`agent`, `path`, `task_type`, `model`, ...)
    /// takes, over all metrics: past it, new values are recorded as
    /// [`OTHER_LABEL_VALUE`] and counted in `overseer_observe_label_overflows_total{label}`.
    /// This bounds the series of a system whose dynamic children (one agent per session,
    /// say) would otherwise add series without end. At least 1.
    pub fn max_label_values(mut self, bound: usize) -> Self {
        self.max_label_values = bound.max(1);
        self
    }

    /// The `system` label's value.
    pub fn system_name(&self) -> &str {
        &self.system
    }

    /// Records `system`'s events as metrics: see [`record_metrics`].
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub fn spawn(self, system: &System) -> JoinHandle<()> {
        let mut events = system.subscribe();
        let system = system.clone();
        describe_metrics();
        tokio::spawn(async move {
            let mut labels = LabelBound::new(self.system, self.max_label_values);
            let mut mapper = EventMetrics::new();
            refresh_gauges(&system, &mut labels);
            loop {
                match events.recv().await {
                    Ok(event) => {
                        labels.apply_all(mapper.updates(&event));
                        if matches!(
                            event,
                            SystemEvent::Ask(_)
                                | SystemEvent::BudgetWarning(_)
                                | SystemEvent::Breaker(_)
                                | SystemEvent::Health(_)
                        ) {
                            refresh_gauges(&system, &mut labels);
                        }
                    }
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "metrics recorder fell behind the event stream");
                        labels.apply_all(vec![Update::Increment {
                            name: names::EVENTS_LAGGED,
                            labels: Vec::new(),
                            by: missed,
                        }]);
                        refresh_gauges(&system, &mut labels);
                    }
                    Err(RecvError::Closed) => break,
                }
            }
            refresh_gauges(&system, &mut labels);
        })
    }
}

/// Records `system`'s events as metrics through the `metrics` facade, until the stream ends
/// (after [`System::shutdown`]), with the default [`MetricsConfig`] (`system="default"`);
/// see the crate docs for the metrics. The task holds a handle to the system (to read its
/// budget and breakers), so it ends on shutdown, not on drop. With two systems in one
/// process, name each with [`MetricsConfig::system`] and spawn its recorder from there.
///
/// It describes every metric ([`describe_metrics`]) and subscribes before returning, so
/// call it before [`System::start`] to see every event.
/// Budget, breaker and bulkhead metrics are read from [`System::budget`],
/// [`System::breakers`] and [`System::bulkheads`] when
/// the task starts, after each ask, budget warning and breaker event, after a lag, and once
/// more when the stream ends. Events missed because the task fell behind are counted in
/// `overseer_observe_events_lagged_total`.
///
/// # Panics
///
/// Outside a tokio runtime.
pub fn record_metrics(system: &System) -> JoinHandle<()> {
    MetricsConfig::new().spawn(system)
}

/// Sets the budget, breaker and bulkhead metrics from the system's current figures.
fn refresh_gauges(system: &System, labels: &mut LabelBound) {
    labels.apply_all(bulkhead_metrics(&system.bulkheads()));
    if let Some(budget) = system.budget() {
        labels.apply_all(budget_gauges(
            &budget.process().status(),
            budget.is_tripped(),
        ));
    }
    labels.apply_all(queue_gauges(&system.queue_depths()));
    labels.apply_all(health_gauges(&system.health()));
    if let Some(breakers) = system.breakers() {
        labels.apply_all(breaker_gauges(&breakers.snapshot()));
    }
}

/// Puts the `system` label first on each update and keeps each label key to a bounded set
/// of values, the rest recorded as [`OTHER_LABEL_VALUE`]. Pure but for [`apply_all`](Self::apply_all).
#[derive(Debug)]
pub(crate) struct LabelBound {
    system: String,
    max_values: usize,
    seen: HashMap<&'static str, HashSet<String>>,
}

impl LabelBound {
    pub(crate) fn new(system: String, max_values: usize) -> Self {
        Self {
            system,
            max_values: max_values.max(1),
            seen: HashMap::new(),
        }
    }

    /// `update` as it is recorded: `system` added, each label value kept if its key has
    /// seen it before or has room, else replaced. Returns the overflow counts it causes.
    pub(crate) fn bound(&mut self, update: &mut Update) -> Vec<Update> {
        let mut overflows = Vec::new();
        for (key, value) in update.labels_mut().iter_mut() {
            let values = self.seen.entry(key).or_default();
            if values.contains(value.as_str()) {
                continue;
            }
            if values.len() < self.max_values {
                values.insert(value.clone());
            } else {
                *value = OTHER_LABEL_VALUE.to_string();
                overflows.push(Update::Increment {
                    name: names::LABEL_OVERFLOWS,
                    labels: vec![("system", self.system.clone()), ("label", key.to_string())],
                    by: 1,
                });
            }
        }
        update
            .labels_mut()
            .insert(0, ("system", self.system.clone()));
        overflows
    }

    fn apply_all(&mut self, updates: Vec<Update>) {
        for mut update in updates {
            for overflow in self.bound(&mut update) {
                overflow.apply();
            }
            update.apply();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(agent: &str) -> Update {
        Update::Increment {
            name: names::ASKS,
            labels: vec![("agent", agent.to_string()), ("outcome", "ok".to_string())],
            by: 1,
        }
    }

    #[test]
    fn every_update_carries_the_system_label_first() {
        let mut bound = LabelBound::new("research".into(), 10);
        let mut update = ask("writer");
        assert!(bound.bound(&mut update).is_empty());
        assert_eq!(
            update.labels(),
            &vec![
                ("system", "research".to_string()),
                ("agent", "writer".to_string()),
                ("outcome", "ok".to_string())
            ]
        );
    }

    #[test]
    fn a_label_past_its_bound_is_recorded_as_other_and_counted() {
        let mut bound = LabelBound::new("s".into(), 2);
        for agent in ["session-1", "session-2"] {
            assert!(bound.bound(&mut ask(agent)).is_empty());
        }
        let mut third = ask("session-3");
        let overflows = bound.bound(&mut third);
        assert_eq!(third.labels()[1], ("agent", OTHER_LABEL_VALUE.to_string()));
        assert_eq!(
            overflows,
            vec![Update::Increment {
                name: names::LABEL_OVERFLOWS,
                labels: vec![("system", "s".to_string()), ("label", "agent".to_string())],
                by: 1,
            }]
        );
        // Values seen before keep their own series; other keys have their own bound.
        let mut again = ask("session-1");
        assert!(bound.bound(&mut again).is_empty());
        assert_eq!(again.labels()[1], ("agent", "session-1".to_string()));
        assert_eq!(again.labels()[2], ("outcome", "ok".to_string()));
    }
}
