//! The system's event stream: supervision and asks, in one typed, serializable stream.
//!
//! Every event carries the same four facts, whatever its kind ([`SystemEvent::id`],
//! [`caused_by`](SystemEvent::caused_by), [`elapsed`](SystemEvent::elapsed),
//! [`path`](SystemEvent::path)): a unique id, the event that caused it, the time since the
//! system was built, on the tokio clock ([`System::created_at`](crate::System::created_at)
//! gives the wall-clock time of that origin), and the path in the tree of the agent or
//! supervisor it is about.
//!
//! Causal links, beyond those between lifecycle events ([`EventId`] lists them):
//!
//! | event | `caused_by` |
//! |---|---|
//! | an agent's `stopped` after a crash, a fatal error or a hung handler | the [`AskEvent`] of the task it was handling |
//! | a [`BreakerEvent`] | the ask whose outcome (or admission) changed the breaker |
//! | a [`BudgetWarningEvent`] | the ask whose usage crossed the tier |
//! | a [`KillSwitchEvent`] | the ask whose usage or failure tripped it, if one did |
//! | an [`AskEvent`] refused because the kill switch tripped | the [`KillSwitchEvent`] |
//! | an [`AskEvent`] refused by an open breaker | the [`BreakerEvent`] of its latest opening |
//! | a `stopped` of the shutdown after a trip | the [`KillSwitchEvent`] |
//! | a [`RetryEvent`] (a retry, a policy giving up, a refused retry, a rung, a ladder's stop) | the [`AskEvent`] of the failed attempt |
//! | a [`CohortEvent`] of a member | the member's [`AskEvent`] |
//! | a [`CohortEvent`] of a decision | the [`AskEvent`] whose end decided it (none for a deadline); it lists every member's ask |
//!
//! An ask's id is assigned when the ask is made, so the crash it causes can be published (and
//! name it) before the ask's own event.
//!
//! Beside its cause, an ask or tell made inside another ask's handler (or in a task that
//! handler spawned through [`AgentContext::spawn`](crate::AgentContext::spawn)) names that ask
//! as its [`parent`](AskEvent::parent), and the first ask of the chain as its
//! [`request`](AskEvent::request): known when the ask is made, they need no later event, so a
//! consumer can place a nested ask in its request as soon as it ends, long before the request
//! does. [`SystemEvent::antecedent`] follows both: the cause, or an ask's parent.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use overseer_breaker::{State as BreakerState, Transition, Trigger};
use overseer_budget::{BudgetWarning, TripReport};
use overseer_supervisor::{ChildPath, EventId, LifecycleEvent};
use serde::{Deserialize, Serialize};

use crate::cohort_event::CohortEvent;
use crate::dead_letter::DeadLetterEvent;
use crate::health::HealthEvent;
use crate::heartbeat::Progress;
use crate::model_call::ModelCall;
use crate::name::AgentName;
use crate::retry_event::RetryEvent;
use crate::semantic_event::SemanticEvent;
use crate::usage::Usage;

/// One event of a [`System`](crate::System).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case")]
#[non_exhaustive]
pub enum SystemEvent {
    /// A supervisor or child started, stopped, failed to start, escalated.
    Lifecycle(LifecycleEvent),
    /// An ask or a tell ended (a tell's end is published by the agent, as nobody waits for it).
    Ask(AskEvent),
    /// A budget tier was reached (each tier fires once per limit and scope).
    BudgetWarning(BudgetWarningEvent),
    /// The kill switch tripped: the report holds the reason and the figures at that moment.
    KillSwitchTripped(KillSwitchEvent),
    /// A circuit breaker changed state.
    Breaker(BreakerEvent),
    /// The dead-letter queue changed (a letter pushed, updated or removed), with its size.
    DeadLetter(DeadLetterEvent),
    /// A retry policy or the escalation ladder acted on a failed ask.
    Retry(RetryEvent),
    /// An error that did not crash was found: a rejected output, an inspector's verdict, a
    /// vote, a red flag, an over-confident agent, a loop.
    Semantic(SemanticEvent),
    /// A cohort's barrier counted a member or decided ([`Cohort`](crate::Cohort)).
    Cohort(CohortEvent),
    /// An agent's health check failed, or passed after failures
    /// ([`AgentSpec::health_check`](crate::AgentSpec::health_check)).
    Health(HealthEvent),
}

impl SystemEvent {
    /// The event's id, unique within its system.
    pub fn id(&self) -> EventId {
        match self {
            Self::Lifecycle(event) => event.id,
            Self::Ask(event) => event.id,
            Self::BudgetWarning(event) => event.id,
            Self::KillSwitchTripped(event) => event.id,
            Self::Breaker(event) => event.id,
            Self::DeadLetter(event) => event.id,
            Self::Retry(event) => event.id,
            Self::Semantic(event) => event.id,
            Self::Cohort(event) => event.id,
            Self::Health(event) => event.id,
        }
    }

    /// The event that caused this one, if any.
    pub fn caused_by(&self) -> Option<EventId> {
        match self {
            Self::Lifecycle(event) => event.caused_by,
            Self::Ask(event) => event.caused_by,
            Self::BudgetWarning(event) => event.caused_by,
            Self::KillSwitchTripped(event) => event.caused_by,
            Self::Breaker(event) => event.caused_by,
            Self::DeadLetter(event) => event.caused_by,
            Self::Retry(event) => event.caused_by,
            Self::Semantic(event) => event.caused_by,
            Self::Cohort(event) => event.caused_by,
            Self::Health(event) => event.caused_by,
        }
    }

    /// For an ask or tell made inside another ask's handler: that ask
    /// ([`AskEvent::parent`]). `None` for every other event.
    pub fn parent(&self) -> Option<EventId> {
        match self {
            Self::Ask(event) => event.parent,
            _ => None,
        }
    }

    /// The event this one leads back to: its [cause](Self::caused_by), or, for an ask with
    /// none, its [parent](Self::parent). Followed from any event of a request (a restart, the
    /// crash before it, a refused ask), it reaches the user's question.
    ///
    /// ```
    /// use overseer_agent::{AgentName, AskEvent, AskOutcome, SystemEvent};
    /// use overseer_supervisor::EventId;
    ///
    /// let id = |n| EventId::new(n).expect("not 0");
    /// let mut nested = AskEvent::new(id(2), AgentName::new("tool"), "search", AskOutcome::Ok);
    /// nested.parent = Some(id(1));
    /// assert_eq!(SystemEvent::Ask(nested.clone()).antecedent(), Some(id(1)));
    /// nested.caused_by = Some(id(9));
    /// assert_eq!(SystemEvent::Ask(nested).antecedent(), Some(id(9)));
    /// ```
    pub fn antecedent(&self) -> Option<EventId> {
        self.caused_by().or_else(|| self.parent())
    }

    /// When it happened: the time since the system started, on the tokio clock.
    pub fn elapsed(&self) -> Duration {
        match self {
            Self::Lifecycle(event) => event.elapsed,
            Self::Ask(event) => event.elapsed,
            Self::BudgetWarning(event) => event.elapsed,
            Self::KillSwitchTripped(event) => event.elapsed,
            Self::Breaker(event) => event.elapsed,
            Self::DeadLetter(event) => event.elapsed,
            Self::Retry(event) => event.elapsed,
            Self::Semantic(event) => event.elapsed,
            Self::Cohort(event) => event.elapsed,
            Self::Health(event) => event.elapsed,
        }
    }

    /// The path in the tree of the supervisor or agent the event is about. `None` for an agent
    /// that has not started yet, and for a trip not caused by an ask (a deadline).
    pub fn path(&self) -> Option<&ChildPath> {
        match self {
            Self::Lifecycle(event) => Some(&event.path),
            Self::Ask(event) => event.path.as_ref(),
            Self::BudgetWarning(event) => event.path.as_ref(),
            Self::KillSwitchTripped(event) => event.path.as_ref(),
            Self::Breaker(event) => event.path.as_ref(),
            Self::DeadLetter(event) => event.path.as_ref(),
            Self::Retry(event) => event.path.as_ref(),
            Self::Semantic(event) => event.path.as_ref(),
            Self::Cohort(event) => event.path.as_ref(),
            Self::Health(event) => event.path.as_ref(),
        }
    }
}

/// One line for people: the lifecycle event (`team/writer stopped: panicked: boom`), an ask
/// (`ask writer/draft: crashed in 268.05µs, 0 tokens, injected panic`), a breaker change
/// (`breaker citations/verify: closed -> open (failures in a row, open for 30s)`), a budget
/// warning (`budget: process tokens reached tier 1 (70%): 570 of 800 tokens`) or the trip
/// (`kill switch tripped: ...`). Durations are written as [`Duration`]'s `Debug` writes them
/// (`30s`, `1.5ms`).
impl fmt::Display for SystemEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Lifecycle(event) => write!(f, "{event}"),
            Self::Ask(ask) => {
                write!(
                    f,
                    "ask {}/{}: {} in {:?}, {} tokens",
                    ask.agent,
                    ask.task_type,
                    ask.outcome.kind().unwrap_or("ok"),
                    ask.latency,
                    ask.usage.total_tokens()
                )?;
                match &ask.injected {
                    Some(fault) => write!(f, ", injected {fault}"),
                    None => Ok(()),
                }
            }
            Self::Breaker(moved) => {
                write!(
                    f,
                    "breaker {}/{}: {} -> {} ({}",
                    moved.agent, moved.task_type, moved.from, moved.to, moved.trigger
                )?;
                if let Some(open_for) = moved.open_for {
                    write!(f, ", open for {open_for:?}")?;
                }
                f.write_str(")")
            }
            Self::BudgetWarning(event) => write!(f, "budget: {}", event.warning),
            Self::KillSwitchTripped(event) => {
                write!(f, "kill switch tripped: {}", event.report.reason)
            }
            Self::DeadLetter(event) => write!(
                f,
                "dead letter {} {:?} ({}/{}): {} in the queue",
                event.letter, event.change, event.agent, event.task_type, event.queue_len
            ),
            Self::Retry(event) => write!(f, "{event}"),
            Self::Semantic(event) => write!(f, "{event}"),
            Self::Cohort(event) => write!(f, "{event}"),
            Self::Health(event) => write!(f, "{event}"),
        }
    }
}

/// A budget tier was reached.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BudgetWarningEvent {
    /// This event's id.
    pub id: EventId,
    /// The ask whose usage crossed the tier.
    pub caused_by: Option<EventId>,
    /// Time since the system started (tokio clock); `elapsed_ms` in JSON.
    #[serde(rename = "elapsed_ms", with = "overseer_serde::millis")]
    pub elapsed: Duration,
    /// The path of the agent whose usage crossed the tier (for a process-wide limit too).
    pub path: Option<ChildPath>,
    /// The tier, the limit and the figures.
    pub warning: BudgetWarning,
}

/// The kill switch tripped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct KillSwitchEvent {
    /// This event's id.
    pub id: EventId,
    /// The ask whose usage or failure tripped it, if one did.
    pub caused_by: Option<EventId>,
    /// Time since the system started (tokio clock); `elapsed_ms` in JSON.
    #[serde(rename = "elapsed_ms", with = "overseer_serde::millis")]
    pub elapsed: Duration,
    /// The path of the agent whose ask tripped it, if one did.
    pub path: Option<ChildPath>,
    /// The reason and the figures at that moment.
    pub report: TripReport,
}

/// A circuit breaker of one (agent, task type) changed state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BreakerEvent {
    /// This event's id.
    pub id: EventId,
    /// The ask whose outcome or admission changed the breaker.
    pub caused_by: Option<EventId>,
    /// Time since the system started (tokio clock); `elapsed_ms` in JSON.
    #[serde(rename = "elapsed_ms", with = "overseer_serde::millis")]
    pub elapsed: Duration,
    /// The agent's path in the tree (`None` before it started).
    pub path: Option<ChildPath>,
    /// The agent.
    pub agent: AgentName,
    /// The task type.
    pub task_type: String,
    /// The state it left.
    pub from: BreakerState,
    /// The state it entered.
    pub to: BreakerState,
    /// Why.
    pub trigger: Trigger,
    /// The failure rate that decided it.
    pub failure_rate: f64,
    /// Outcomes in the window when it happened.
    pub calls_in_window: u32,
    /// Failures in a row when it happened.
    pub consecutive_failures: u32,
    /// For an opening: how long it stays open; `open_for_ms` in JSON.
    #[serde(
        rename = "open_for_ms",
        with = "overseer_serde::millis::option",
        default
    )]
    pub open_for: Option<Duration>,
}

impl BudgetWarningEvent {
    /// A warning event with this id and warning, and nothing else (no cause, no path, at the
    /// system's start): events are made by the system; this is for testing what consumes
    /// them. Set the other fields as needed.
    pub fn new(id: EventId, warning: BudgetWarning) -> Self {
        Self::stamped(EventMeta::bare(id), warning)
    }

    pub(crate) fn stamped(meta: EventMeta, warning: BudgetWarning) -> Self {
        Self {
            id: meta.id,
            caused_by: meta.caused_by,
            elapsed: meta.elapsed,
            path: meta.path,
            warning,
        }
    }
}

impl KillSwitchEvent {
    /// A trip event with this id and report, and nothing else (no cause, no path, at the
    /// system's start): events are made by the system; this is for testing what consumes
    /// them. Set the other fields as needed.
    pub fn new(id: EventId, report: TripReport) -> Self {
        Self::stamped(EventMeta::bare(id), report)
    }

    pub(crate) fn stamped(meta: EventMeta, report: TripReport) -> Self {
        Self {
            id: meta.id,
            caused_by: meta.caused_by,
            elapsed: meta.elapsed,
            path: meta.path,
            report,
        }
    }
}

impl BreakerEvent {
    /// A breaker event with these facts, and nothing else (no cause, no path, at the system's
    /// start, no figures): events are made by the system; this is for testing what consumes
    /// them. Set the other fields as needed.
    pub fn new(
        id: EventId,
        agent: AgentName,
        task_type: impl Into<String>,
        from: BreakerState,
        to: BreakerState,
        trigger: Trigger,
    ) -> Self {
        Self {
            id,
            caused_by: None,
            elapsed: Duration::ZERO,
            path: None,
            agent,
            task_type: task_type.into(),
            from,
            to,
            trigger,
            failure_rate: 0.0,
            calls_in_window: 0,
            consecutive_failures: 0,
            open_for: None,
        }
    }

    pub(crate) fn stamped(transition: &Transition, meta: EventMeta) -> Self {
        Self {
            id: meta.id,
            caused_by: meta.caused_by,
            elapsed: meta.elapsed,
            path: meta.path,
            agent: AgentName::from(&*transition.key.agent),
            task_type: transition.key.task_type.to_string(),
            from: transition.from,
            to: transition.to,
            trigger: transition.trigger,
            failure_rate: transition.failure_rate,
            calls_in_window: transition.calls_in_window,
            consecutive_failures: transition.consecutive_failures,
            open_for: transition.open_for,
        }
    }
}

/// The facts every event carries, as the system stamps them.
pub(crate) struct EventMeta {
    pub(crate) id: EventId,
    pub(crate) caused_by: Option<EventId>,
    pub(crate) elapsed: Duration,
    pub(crate) path: Option<ChildPath>,
}

impl EventMeta {
    /// An id and nothing else: no cause, no path, at the system's start.
    fn bare(id: EventId) -> Self {
        Self {
            id,
            caused_by: None,
            elapsed: Duration::ZERO,
            path: None,
        }
    }
}

/// How one ask (or tell) ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AskEvent {
    /// This ask's id, assigned when the ask was made.
    pub id: EventId,
    /// What caused the outcome, if it was another event: the kill switch's trip that refused
    /// it, the breaker opening that refused it.
    pub caused_by: Option<EventId>,
    /// The ask whose handler made this ask or tell (directly, or in a task it spawned through
    /// [`AgentContext::spawn`](crate::AgentContext::spawn)); `None` for one made outside any
    /// handler: a request. Known when the ask is made. Set while the system has subscribers.
    #[serde(default)]
    pub parent: Option<EventId>,
    /// The request this ask serves: the first ask of its chain of handlers, the one made
    /// outside any handler (`None` for that ask itself, and whenever `parent` is `None`).
    #[serde(default)]
    pub request: Option<EventId>,
    /// When the ask ended: time since the system started (tokio clock); `elapsed_ms` in JSON.
    #[serde(rename = "elapsed_ms", with = "overseer_serde::millis")]
    pub elapsed: Duration,
    /// The agent's path in the tree (`None` if it never started).
    pub path: Option<ChildPath>,
    /// The agent asked.
    pub agent: AgentName,
    /// The task's type.
    pub task_type: Cow<'static, str>,
    /// Whether it answered, or the kind of error ([`AskError::kind`](crate::AskError::kind)).
    pub outcome: AskOutcome,
    /// From the ask to its outcome; `latency_ms` in JSON.
    #[serde(rename = "latency_ms", with = "overseer_serde::millis")]
    pub latency: Duration,
    /// What the handler reported.
    pub usage: Usage,
    /// The fault injected into this ask, if its outcome was caused by fault injection
    /// ([`AgentContext::mark_injected`](crate::AgentContext::mark_injected)).
    pub injected: Option<Cow<'static, str>>,
    /// The model the handler named
    /// ([`AgentContext::report_model`](crate::AgentContext::report_model)).
    #[serde(default)]
    pub model: Option<Cow<'static, str>>,
    /// The model calls the handler made through
    /// [`AgentContext::model`](crate::AgentContext::model), in order (not those replayed from
    /// the journal); absent from the JSON when there were none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub model_calls: Vec<ModelCall>,
    /// The last progress the handler reported
    /// ([`AgentContext::progress`](crate::AgentContext::progress)); absent from the JSON when
    /// it reported none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
}

impl AskEvent {
    /// An ask event with these facts, and nothing else (no cause, no path, at the system's
    /// start, no latency, no usage): events are made by the system; this is for testing what
    /// consumes them. Set the other fields as needed.
    pub fn new(
        id: EventId,
        agent: AgentName,
        task_type: impl Into<Cow<'static, str>>,
        outcome: AskOutcome,
    ) -> Self {
        Self {
            id,
            caused_by: None,
            parent: None,
            request: None,
            elapsed: Duration::ZERO,
            path: None,
            agent,
            task_type: task_type.into(),
            outcome,
            latency: Duration::ZERO,
            usage: Usage::default(),
            injected: None,
            model: None,
            model_calls: Vec::new(),
            progress: None,
        }
    }
}

/// The outcome in an [`AskEvent`].
///
/// Two-valued by definition, so not `#[non_exhaustive]`: an ask answered or it did not, and
/// what went wrong is in the error's open-ended [`kind`](Self::kind); match it exhaustively.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum AskOutcome {
    /// An output was returned.
    Ok,
    /// An error of this kind.
    Error {
        /// [`AskError::kind`](crate::AskError::kind).
        kind: Cow<'static, str>,
        /// The error's text.
        message: String,
    },
}

impl AskOutcome {
    /// Whether the ask answered.
    pub fn is_ok(&self) -> bool {
        matches!(self, Self::Ok)
    }

    /// The error's kind ([`AskError::kind`](crate::AskError::kind)), `None` if it answered.
    pub fn kind(&self) -> Option<&str> {
        match self {
            Self::Ok => None,
            Self::Error { kind, .. } => Some(kind),
        }
    }
}

#[cfg(test)]
mod tests {
    use overseer_supervisor::{ChildId, EventKind, ExitReason};

    use super::*;

    fn id(n: u64) -> EventId {
        EventId::new(n).expect("not 0")
    }

    fn path() -> ChildPath {
        ChildPath::root(&ChildId::new("team")).join(&ChildId::new("writer"))
    }

    fn crashed_ask() -> SystemEvent {
        SystemEvent::Ask(AskEvent {
            id: id(3),
            caused_by: None,
            parent: Some(id(1)),
            request: Some(id(1)),
            elapsed: Duration::from_nanos(110_946_454),
            path: Some(path()),
            agent: AgentName::new("writer"),
            task_type: Cow::Borrowed("draft"),
            outcome: AskOutcome::Error {
                kind: Cow::Borrowed("crashed"),
                message: "agent 'writer' crashed: panicked: injected panic".into(),
            },
            latency: Duration::from_micros(1500),
            usage: Usage::new(3, 1, 4),
            injected: Some(Cow::Borrowed("panic")),
            model: None,
            model_calls: Vec::new(),
            progress: None,
        })
    }

    fn opened_breaker() -> SystemEvent {
        SystemEvent::Breaker(BreakerEvent {
            id: id(9),
            caused_by: Some(id(8)),
            elapsed: Duration::from_secs(10),
            path: Some(path()),
            agent: AgentName::new("writer"),
            task_type: "draft".into(),
            from: BreakerState::Closed,
            to: BreakerState::Open,
            trigger: Trigger::ConsecutiveFailures,
            failure_rate: 1.0,
            calls_in_window: 2,
            consecutive_failures: 2,
            open_for: Some(Duration::from_secs(30)),
        })
    }

    fn hung() -> SystemEvent {
        SystemEvent::Lifecycle(LifecycleEvent::new(
            id(4),
            Some(id(3)),
            Duration::from_secs(10),
            path(),
            EventKind::Stopped {
                reason: ExitReason::TimedOut(Duration::from_secs(10)),
            },
        ))
    }

    #[test]
    fn durations_are_numbers_of_milliseconds_in_fields_named_for_their_unit() {
        let ask = serde_json::to_value(crashed_ask()).expect("serializes");
        assert_eq!(ask["elapsed_ms"], 110.946454);
        assert_eq!(ask["latency_ms"], 1.5);
        assert!(ask.get("elapsed").is_none() && ask.get("latency").is_none());

        let breaker = serde_json::to_value(opened_breaker()).expect("serializes");
        assert_eq!(breaker["elapsed_ms"], 10_000);
        assert_eq!(breaker["open_for_ms"], 30_000);
        assert_eq!(breaker["trigger"], "consecutive_failures");

        let stop = serde_json::to_value(hung()).expect("serializes");
        assert_eq!(stop["elapsed_ms"], 10_000);
        assert_eq!(
            stop["kind"]["reason"],
            serde_json::json!({"kind": "timed_out", "detail": 10_000})
        );

        for event in [crashed_ask(), opened_breaker(), hung()] {
            let text = serde_json::to_string(&event).expect("serializes");
            assert!(!text.contains("secs") && !text.contains("nanos"), "{text}");
            let back: SystemEvent = serde_json::from_str(&text).expect("reads back");
            assert_eq!(back, event);
        }
    }

    #[test]
    fn events_display_as_words_and_numbers_with_units() {
        assert_eq!(
            crashed_ask().to_string(),
            "ask writer/draft: crashed in 1.5ms, 4 tokens, injected panic"
        );
        assert_eq!(
            opened_breaker().to_string(),
            "breaker writer/draft: closed -> open (failures in a row, open for 30s)"
        );
        assert_eq!(
            hung().to_string(),
            "team/writer stopped: timed out after 10s"
        );
    }
}
