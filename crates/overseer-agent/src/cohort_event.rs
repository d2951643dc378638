//! The events of a cohort: each member's end as the barrier counted it, and the decision.

use std::fmt;
use std::time::Duration;

use overseer_supervisor::{ChildPath, EventId};
use serde::{Deserialize, Serialize};

use crate::name::AgentName;

/// Something a [`Cohort`](crate::Cohort)'s barrier counted or decided.
///
/// Every event of one cohort names it by [`cohort`](Self::cohort), the id of its decision
/// event (assigned when the cohort starts, as an ask's id is). A member's event is caused by
/// the member's [`AskEvent`](crate::AskEvent); the decision lists every member's ask.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CohortEvent {
    /// This event's id (for the decision: the cohort's id).
    pub id: EventId,
    /// A member's event: its ask. The decision: the ask whose end decided it (`None` when the
    /// deadline did).
    pub caused_by: Option<EventId>,
    /// Time since the system started (tokio clock); `elapsed_ms` in JSON.
    #[serde(rename = "elapsed_ms", with = "overseer_serde::millis")]
    pub elapsed: Duration,
    /// The path of the member's agent (`None` for the decision, which is no agent's).
    pub path: Option<ChildPath>,
    /// The cohort: the id of its decision event.
    pub cohort: EventId,
    /// What happened.
    pub step: CohortStep,
}

/// What a [`CohortEvent`] reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
#[non_exhaustive]
pub enum CohortStep {
    /// A member's ask ended and the barrier counted it.
    Member {
        /// The member's index in the cohort.
        index: usize,
        /// Its agent.
        agent: AgentName,
        /// Its ask's id.
        ask: EventId,
        /// `None` if it answered, else the error's kind
        /// ([`AskError::kind`](crate::AskError::kind)).
        error: Option<String>,
        /// Members answered so far.
        answered: usize,
    },
    /// The barrier decided.
    Decided {
        /// How.
        decision: CohortDecision,
        /// Every member's ask, by index.
        members: Vec<EventId>,
        /// How many answered by the decision.
        answered: usize,
        /// The members without an answer of their own at the decision (failed or not
        /// answered), by index.
        missing: Vec<usize>,
    },
}

/// How a cohort's barrier decided (`overseer_fanout::Decision`, without `Continue`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CohortDecision {
    /// Every member has a value (answered, or replaced by its default).
    Complete,
    /// A member answered (an `any` cohort).
    Any,
    /// The quorum answered.
    Quorum,
    /// The deadline passed first; the cohort returns what arrived.
    DeadlinePartial,
    /// The deadline passed first; the cohort fails.
    DeadlineFail,
    /// The goal could no longer be reached (decided at once, not at the deadline).
    Impossible,
}

impl CohortDecision {
    /// Whether the cohort's goal was reached.
    pub fn reached(&self) -> bool {
        matches!(self, Self::Complete | Self::Any | Self::Quorum)
    }
}

impl fmt::Display for CohortEvent {
    /// `cohort 12: member 0 (researcher) answered, 1 so far` or
    /// `cohort 12: decided Quorum, 2 answered, missing [1]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cohort {}: ", self.cohort)?;
        match &self.step {
            CohortStep::Member {
                index,
                agent,
                error,
                answered,
                ..
            } => {
                write!(f, "member {index} ({agent}) ")?;
                match error {
                    None => f.write_str("answered")?,
                    Some(kind) => write!(f, "failed ({kind})")?,
                }
                write!(f, ", {answered} so far")
            }
            CohortStep::Decided {
                decision,
                answered,
                missing,
                ..
            } => write!(
                f,
                "decided {decision:?}, {answered} answered, missing {missing:?}"
            ),
        }
    }
}
