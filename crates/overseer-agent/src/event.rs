//! The system's event stream: supervision and asks, in one typed, serializable stream.

use std::borrow::Cow;
use std::time::Duration;

use overseer_budget::{BudgetWarning, TripReport};
use overseer_supervisor::LifecycleEvent;
use serde::{Deserialize, Serialize};

use crate::{AgentName, Usage};

/// One event of a [`System`](crate::System).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
