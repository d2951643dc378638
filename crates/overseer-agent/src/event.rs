//! The system's event stream: supervision and asks, in one typed, serializable stream.

use std::borrow::Cow;
use std::time::Duration;

use overseer_breaker::{State as BreakerState, Transition, Trigger};
use overseer_budget::{BudgetWarning, TripReport};
use overseer_supervisor::LifecycleEvent;
use serde::{Deserialize, Serialize};

use crate::{AgentName, Usage};

/// One event of a [`System`](crate::System).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case")]
#[non_exhaustive]
pub enum SystemEvent {
    /// A supervisor or child started, stopped, failed to start, escalated.
    Lifecycle(LifecycleEvent),
    /// An ask or a tell finished.
    Ask(AskEvent),
    /// A budget tier was reached (each tier fires once per limit and scope).
    BudgetWarning(BudgetWarning),
    /// The kill switch tripped: the report holds the reason and the figures at that moment.
    KillSwitchTripped(TripReport),
    /// A circuit breaker changed state.
    Breaker(BreakerEvent),
}

/// A circuit breaker of one (agent, task type) changed state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BreakerEvent {
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
    /// For an opening: how long it stays open.
    pub open_for: Option<Duration>,
}

impl From<&Transition> for BreakerEvent {
    fn from(transition: &Transition) -> Self {
        Self {
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

/// How one ask (or tell) ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AskEvent {
    /// The agent asked.
    pub agent: AgentName,
    /// The task's type.
    pub task_type: Cow<'static, str>,
    /// Whether it answered, or the kind of error ([`AskError::kind`](crate::AskError::kind)).
    pub outcome: AskOutcome,
    /// From the ask to its outcome.
    pub latency: Duration,
    /// What the handler reported.
    pub usage: Usage,
    /// The fault injected into this ask, if its outcome was caused by fault injection
    /// ([`AgentContext::mark_injected`](crate::AgentContext::mark_injected)).
    pub injected: Option<Cow<'static, str>>,
}

/// The outcome in an [`AskEvent`].
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
}
