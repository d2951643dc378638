//! The task that turns a system's event stream into metrics.

use overseer_agent::{System, SystemEvent};
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;

use crate::metric::{
    breaker_gauges, budget_gauges, bulkhead_metrics, names, queue_gauges, EventMetrics, Update,
};

/// Records `system`'s events as metrics through the `metrics` facade, until the stream ends
/// (after [`System::shutdown`]); see the crate docs for the metrics. The task holds a handle
/// to the system (to read its budget and breakers), so it ends on shutdown, not on drop.
///
/// It subscribes before returning, so call it before [`System::start`] to see every event.
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
    let mut events = system.subscribe();
    let system = system.clone();
    tokio::spawn(async move {
        let mut mapper = EventMetrics::new();
        refresh_gauges(&system);
        loop {
            match events.recv().await {
                Ok(event) => {
                    mapper.updates(&event).iter().for_each(Update::apply);
                    if matches!(
                        event,
                        SystemEvent::Ask(_)
                            | SystemEvent::BudgetWarning(_)
                            | SystemEvent::Breaker(_)
                    ) {
                        refresh_gauges(&system);
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "metrics recorder fell behind the event stream");
                    metrics::counter!(names::EVENTS_LAGGED).increment(missed);
                    refresh_gauges(&system);
                }
                Err(RecvError::Closed) => break,
            }
        }
        refresh_gauges(&system);
    })
}

/// Sets the budget, breaker and bulkhead metrics from the system's current figures.
fn refresh_gauges(system: &System) {
    bulkhead_metrics(&system.bulkheads())
        .iter()
        .for_each(Update::apply);
    if let Some(budget) = system.budget() {
        budget_gauges(&budget.process().status(), budget.is_tripped())
            .iter()
            .for_each(Update::apply);
    }
    queue_gauges(&system.queue_depths())
        .iter()
        .for_each(Update::apply);
    if let Some(breakers) = system.breakers() {
        breaker_gauges(&breakers.snapshot())
            .iter()
            .for_each(Update::apply);
    }
}
