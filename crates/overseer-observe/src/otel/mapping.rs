//! From one event to the span that records it: a pure function, so the mapping can be read
//! and tested without a tracer.

use std::time::{Duration, SystemTime};

use opentelemetry::trace::{SpanKind, Status};
use opentelemetry::KeyValue;
use overseer_agent::{
    AskEvent, AskOutcome, BreakerEvent, BudgetWarningEvent, KillSwitchEvent, SystemEvent,
};
use overseer_supervisor::{EventKind, LifecycleEvent};

use super::attribute as attr;
use crate::metric::dimension_label;

/// The span an event becomes, before it is started.
#[derive(Debug)]
pub(super) struct SpanPlan {
    pub(super) name: String,
    pub(super) kind: SpanKind,
    pub(super) start: SystemTime,
    pub(super) end: SystemTime,
    pub(super) attributes: Vec<KeyValue>,
    pub(super) status: Option<Status>,
}

/// What the mapping needs besides the event.
#[derive(Debug, Clone, Copy)]
pub(super) struct Facts<'a> {
    /// The wall-clock time of the system's origin (`System::created_at`).
    pub(super) origin: SystemTime,
    /// For a `started` event: whether its path had started before.
    pub(super) restart: bool,
    /// `gen_ai.provider.name`, when configured.
    pub(super) provider: Option<&'a str>,
}

/// The span that records `event`.
pub(super) fn plan(event: &SystemEvent, facts: Facts<'_>) -> SpanPlan {
    let at = instant(facts.origin, event.elapsed());
    let mut attributes = Vec::with_capacity(16);
    let what = match event {
        SystemEvent::Ask(_) => "ask",
        SystemEvent::Lifecycle(event) => lifecycle_event_name(&event.kind),
        SystemEvent::Breaker(_) => "breaker",
        SystemEvent::BudgetWarning(_) => "budget_warning",
        SystemEvent::KillSwitchTripped(_) => "kill_switch_tripped",
        _ => "event",
    };
    attributes.push(KeyValue::new(attr::EVENT, what));
    attributes.push(KeyValue::new(attr::EVENT_ID, int(event.id().get())));
    if let Some(cause) = event.caused_by() {
        attributes.push(KeyValue::new(attr::CAUSED_BY, int(cause.get())));
    }
    if let Some(path) = event.path() {
        attributes.push(KeyValue::new(attr::PATH, path.as_str().to_string()));
    }
    let mut plan = SpanPlan {
        name: what.to_string(),
        kind: SpanKind::Internal,
        start: at,
        end: at,
        attributes,
        status: None,
    };
    match event {
        SystemEvent::Ask(ask) => plan_ask(&mut plan, ask, facts),
        SystemEvent::Lifecycle(event) => plan_lifecycle(&mut plan, event, facts.restart),
        SystemEvent::Breaker(moved) => plan_breaker(&mut plan, moved),
        SystemEvent::BudgetWarning(warning) => plan_budget_warning(&mut plan, warning),
        SystemEvent::KillSwitchTripped(tripped) => plan_trip(&mut plan, tripped),
        _ => {}
    }
    plan
}

/// `invoke_agent {agent}`, from the ask to its outcome.
fn plan_ask(plan: &mut SpanPlan, ask: &AskEvent, facts: Facts<'_>) {
    plan.name = format!("{} {}", attr::INVOKE_AGENT, ask.agent);
    plan.start = instant(facts.origin, ask.elapsed.saturating_sub(ask.latency));
    let attributes = &mut plan.attributes;
    attributes.push(KeyValue::new(
        attr::GEN_AI_OPERATION_NAME,
        attr::INVOKE_AGENT,
    ));
    attributes.push(KeyValue::new(
        attr::GEN_AI_AGENT_NAME,
        ask.agent.to_string(),
    ));
    if let Some(provider) = facts.provider {
        attributes.push(KeyValue::new(
            attr::GEN_AI_PROVIDER_NAME,
            provider.to_string(),
        ));
    }
    if let Some(model) = &ask.model {
        attributes.push(KeyValue::new(attr::GEN_AI_REQUEST_MODEL, model.clone()));
    }
    attributes.push(KeyValue::new(
        attr::GEN_AI_USAGE_INPUT_TOKENS,
        int(ask.usage.input_tokens),
    ));
    attributes.push(KeyValue::new(
        attr::GEN_AI_USAGE_OUTPUT_TOKENS,
        int(ask.usage.output_tokens),
    ));
    if ask.usage.cached_input_tokens > 0 {
        attributes.push(KeyValue::new(
            attr::GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
            int(ask.usage.cached_input_tokens),
        ));
    }
    attributes.push(KeyValue::new(attr::TASK_TYPE, ask.task_type.clone()));
    if let Some(parent) = ask.parent {
        attributes.push(KeyValue::new(attr::PARENT, int(parent.get())));
    }
    if let Some(request) = ask.request {
        attributes.push(KeyValue::new(attr::REQUEST, int(request.get())));
    }
    attributes.push(KeyValue::new(attr::COST_MICROS, int(ask.usage.cost_micros)));
    if let Some(fault) = &ask.injected {
        attributes.push(KeyValue::new(attr::INJECTED_FAULT, fault.clone()));
    }
    match &ask.outcome {
        AskOutcome::Ok => attributes.push(KeyValue::new(attr::OUTCOME, "ok")),
        AskOutcome::Error { kind, message } => {
            attributes.push(KeyValue::new(attr::OUTCOME, kind.clone()));
            attributes.push(KeyValue::new(attr::ERROR_TYPE, kind.clone()));
            plan.status = Some(Status::error(message.clone()));
        }
    }
}

/// `{event} {path}`; a failure to start, an abnormal exit and an escalation are errors.
fn plan_lifecycle(plan: &mut SpanPlan, event: &LifecycleEvent, restart: bool) {
    let attributes = &mut plan.attributes;
    let what = match &event.kind {
        EventKind::Started => {
            attributes.push(KeyValue::new(attr::RESTART, restart));
            if restart {
                "restarted"
            } else {
                "started"
            }
        }
        EventKind::StartFailed { error } => {
            let reason = error.to_string();
            attributes.push(KeyValue::new(attr::REASON, reason.clone()));
            attributes.push(KeyValue::new(
                attr::ERROR_TYPE,
                variant_name(serde_json::to_value(error)),
            ));
            plan.status = Some(Status::error(reason));
            "start_failed"
        }
        EventKind::Stopped { reason } => {
            let text = reason.to_string();
            attributes.push(KeyValue::new(attr::REASON, text.clone()));
            if !reason.is_normal() {
                attributes.push(KeyValue::new(
                    attr::ERROR_TYPE,
                    variant_name(serde_json::to_value(reason)),
                ));
                plan.status = Some(Status::error(text));
            }
            "stopped"
        }
        EventKind::Escalated {
            intensity,
            period_secs,
        } => {
            attributes.push(KeyValue::new(attr::INTENSITY, i64::from(*intensity)));
            attributes.push(KeyValue::new(attr::PERIOD_SECS, int(*period_secs)));
            attributes.push(KeyValue::new(attr::ERROR_TYPE, "escalated"));
            plan.status = Some(Status::error(format!(
                "more than {intensity} restarts in {period_secs} s"
            )));
            "escalated"
        }
        EventKind::AutoShutdown => "auto_shutdown",
        other => lifecycle_event_name(other),
    };
    plan.name = format!("{what} {}", event.path);
}

/// The name of a lifecycle event's kind, as the event stream's JSON has it.
fn lifecycle_event_name(kind: &EventKind) -> &'static str {
    match kind {
        EventKind::Started => "started",
        EventKind::StartFailed { .. } => "start_failed",
        EventKind::Stopped { .. } => "stopped",
        EventKind::Escalated { .. } => "escalated",
        EventKind::AutoShutdown => "auto_shutdown",
        _ => "lifecycle",
    }
}

/// `breaker {to} {agent}/{task_type}`.
fn plan_breaker(plan: &mut SpanPlan, moved: &BreakerEvent) {
    plan.name = format!(
        "breaker {} {}/{}",
        moved.to.as_str(),
        moved.agent,
        moved.task_type
    );
    let attributes = &mut plan.attributes;
    attributes.push(KeyValue::new(attr::AGENT, moved.agent.to_string()));
    attributes.push(KeyValue::new(attr::TASK_TYPE, moved.task_type.clone()));
    attributes.push(KeyValue::new(attr::BREAKER_FROM, moved.from.as_str()));
    attributes.push(KeyValue::new(attr::BREAKER_TO, moved.to.as_str()));
    attributes.push(KeyValue::new(
        attr::BREAKER_TRIGGER,
        variant_name(serde_json::to_value(moved.trigger)),
    ));
    attributes.push(KeyValue::new(
        attr::BREAKER_FAILURE_RATE,
        moved.failure_rate,
    ));
    attributes.push(KeyValue::new(
        attr::BREAKER_CALLS_IN_WINDOW,
        i64::from(moved.calls_in_window),
    ));
    attributes.push(KeyValue::new(
        attr::BREAKER_CONSECUTIVE_FAILURES,
        i64::from(moved.consecutive_failures),
    ));
    if let Some(open_for) = moved.open_for {
        attributes.push(KeyValue::new(
            attr::BREAKER_OPEN_FOR_SECONDS,
            open_for.as_secs_f64(),
        ));
    }
}

/// `budget_warning {dimension}`.
fn plan_budget_warning(plan: &mut SpanPlan, event: &BudgetWarningEvent) {
    let warning = &event.warning;
    let dimension = dimension_label(warning.dimension);
    plan.name = format!("budget_warning {dimension}");
    let attributes = &mut plan.attributes;
    attributes.push(KeyValue::new(attr::BUDGET_SCOPE, warning.scope.to_string()));
    attributes.push(KeyValue::new(attr::BUDGET_DIMENSION, dimension));
    attributes.push(KeyValue::new(
        attr::BUDGET_TIER,
        i64::from(warning.tier.level),
    ));
    attributes.push(KeyValue::new(
        attr::BUDGET_TIER_FRACTION,
        warning.tier.fraction(),
    ));
    attributes.push(KeyValue::new(attr::BUDGET_USED, int(warning.used)));
    attributes.push(KeyValue::new(attr::BUDGET_LIMIT, int(warning.limit)));
}

/// `kill_switch_tripped`, an error.
fn plan_trip(plan: &mut SpanPlan, tripped: &KillSwitchEvent) {
    let report = &tripped.report;
    let reason = report.reason.to_string();
    let attributes = &mut plan.attributes;
    attributes.push(KeyValue::new(attr::KILL_SWITCH_REASON, reason.clone()));
    attributes.push(KeyValue::new(
        attr::ERROR_TYPE,
        variant_name(serde_json::to_value(&report.reason)),
    ));
    attributes.push(KeyValue::new(
        attr::KILL_SWITCH_AFTER_SECONDS,
        report.after.as_secs_f64(),
    ));
    attributes.push(KeyValue::new(
        attr::KILL_SWITCH_IN_FLIGHT,
        variant_name(serde_json::to_value(report.in_flight)),
    ));
    if let Some(process) = &report.process {
        for (key, figures) in [
            (attr::KILL_SWITCH_TOKENS_USED, &process.tokens),
            (attr::KILL_SWITCH_COST_MICROS_USED, &process.cost),
            (attr::KILL_SWITCH_STEPS_USED, &process.steps),
        ] {
            attributes.push(KeyValue::new(key, int(figures.committed)));
        }
    }
    plan.status = Some(Status::error(reason));
}

/// The wall-clock time `elapsed` after `origin` (`origin` itself if that would overflow).
pub(super) fn instant(origin: SystemTime, elapsed: Duration) -> SystemTime {
    origin.checked_add(elapsed).unwrap_or(origin)
}

/// A count as an OpenTelemetry int, which is signed: saturates at `i64::MAX`.
fn int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The snake-case name of an enum value as the event stream serializes it: a unit variant's
/// string, the `kind` tag of an internally or adjacently tagged enum, or the key of an
/// externally tagged variant with data. Taken from serde so that new variants of the
/// (non-exhaustive) enums get their right name without a change here.
fn variant_name(value: serde_json::Result<serde_json::Value>) -> String {
    match value {
        Ok(serde_json::Value::String(name)) => name,
        Ok(serde_json::Value::Object(map)) => match map.get("kind") {
            Some(serde_json::Value::String(kind)) => kind.clone(),
            _ if map.len() == 1 => map.keys().next().cloned().unwrap_or_default(),
            _ => "other".to_string(),
        },
        _ => "other".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use overseer_breaker::Trigger;
    use overseer_budget::{InFlightPolicy, TripReason};
    use overseer_supervisor::{ExitReason, StartError};

    use super::*;

    #[test]
    fn enum_values_are_named_as_in_the_event_stream_json() {
        use serde_json::to_value;
        let cases = [
            (to_value(ExitReason::Panicked("boom".into())), "panicked"),
            (to_value(ExitReason::Normal), "normal"),
            (
                to_value(ExitReason::TimedOut(Duration::from_secs(1))),
                "timed_out",
            ),
            (to_value(StartError::failed("no")), "failed"),
            (
                to_value(Trigger::ConsecutiveFailures),
                "consecutive_failures",
            ),
            (to_value(TripReason::manual("operator")), "manual"),
            (to_value(InFlightPolicy::CancelNow), "cancel_now"),
            (
                to_value(InFlightPolicy::CancelAfter(Duration::from_secs(2))),
                "cancel_after",
            ),
        ];
        for (value, name) in cases {
            assert_eq!(variant_name(value), name);
        }
    }

    #[test]
    fn times_and_counts_never_overflow() {
        let origin = SystemTime::UNIX_EPOCH;
        assert_eq!(instant(origin, Duration::MAX), origin);
        assert_eq!(int(u64::MAX), i64::MAX);
        assert_eq!(int(42), 42);
    }
}
