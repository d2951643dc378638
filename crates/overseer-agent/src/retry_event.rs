//! The events of retries and of the escalation ladder: a retry scheduled, a policy that gave
//! up, a retry the retry budget refused, a rung climbed, a ladder that stopped.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use overseer_retry::{ErrorClass, GiveUpReason, RungKind, Skip, StopReason};
use overseer_supervisor::{ChildPath, EventId};
use serde::{Deserialize, Serialize};

use crate::name::AgentName;

/// Something a retry policy or the escalation ladder did after a failed ask. Its
/// `caused_by` is the [`AskEvent`](crate::AskEvent) of the failed ask (the last one, for a
/// rung or a stop).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RetryEvent {
    /// This event's id.
    pub id: EventId,
    /// The failed ask this event answers.
    pub caused_by: Option<EventId>,
    /// Time since the system started (tokio clock); `elapsed_ms` in JSON.
    #[serde(rename = "elapsed_ms", with = "overseer_serde::millis")]
    pub elapsed: Duration,
    /// The path of the agent whose ask failed (`None` before it started).
    pub path: Option<ChildPath>,
    /// The agent whose ask failed.
    pub agent: AgentName,
    /// The task type.
    pub task_type: Cow<'static, str>,
    /// Which attempt failed, from 1 (the first ask), counted within the policy's run (a
    /// rung's attempts count from 1 again).
    pub attempt: u32,
    /// The failure's class.
    pub class: ErrorClass,
    /// The failure's text.
    pub message: String,
    /// What was done about it.
    pub step: RetryStep,
}

/// What a [`RetryEvent`] reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
#[non_exhaustive]
pub enum RetryStep {
    /// The policy retries after `delay` (`delay_ms` in JSON).
    Retrying {
        /// How long the caller waits before the next attempt.
        #[serde(rename = "delay_ms", with = "overseer_serde::millis")]
        delay: Duration,
    },
    /// The policy gave up: the failure is the ask's outcome (or the ladder's next input).
    GaveUp {
        /// Why.
        reason: GiveUpReason,
    },
    /// The policy would have retried, but the system's retry budget refused: the ask ends with
    /// [`AskError::RetryRefused`](crate::AskError::RetryRefused).
    Refused {
        /// The budget's balance, in thousandths of a retry.
        balance: i64,
    },
    /// The escalation ladder climbs to a rung.
    Rung {
        /// The rung's index in the ladder.
        rung: usize,
        /// The rung's name.
        name: String,
        /// What the rung does.
        kind: RungKind,
        /// The rungs passed over on the way, and why.
        skipped: Vec<Skip>,
    },
    /// The escalation ladder stopped without an answer.
    LadderStopped {
        /// Why.
        reason: StopReason,
        /// The rungs passed over on the way, and why.
        skipped: Vec<Skip>,
    },
}

impl fmt::Display for RetryEvent {
    /// `retry writer/draft: attempt 1 failed (Transient), retrying in 500ms`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "retry {}/{}: attempt {} failed ({:?}), ",
            self.agent, self.task_type, self.attempt, self.class
        )?;
        match &self.step {
            RetryStep::Retrying { delay } => write!(f, "retrying in {delay:?}"),
            RetryStep::GaveUp { reason } => write!(f, "given up ({reason:?})"),
            RetryStep::Refused { .. } => f.write_str("retry refused by the retry budget"),
            RetryStep::Rung { rung, name, .. } => write!(f, "climbing to rung {rung} ({name})"),
            RetryStep::LadderStopped { reason, .. } => write!(f, "ladder stopped ({reason:?})"),
        }
    }
}
