//! The events of errors that don't crash: a rejected output, an inspector's verdict, a vote's
//! decision, a red-flagged sample, an over-confident agent, a loop.

use std::fmt;
use std::time::Duration;

use overseer_supervisor::{ChildPath, EventId};
use serde::{Deserialize, Serialize};

/// What the loop detector does when it finds a loop
/// ([`SemanticConfig::loops`](crate::SemanticConfig::loops)). Whatever it does, the finding is
/// published as a [`SemanticEvent`] whose [`Finding::Loop`] explains it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum LoopAction {
    /// The call that completed the loop fails with [`AgentError::Permanent`](crate::AgentError::Permanent)
    /// (`loop detected: ...`): the handler gets the error back and, unless it handles it, the
    /// task fails with it (a retry of the same task would loop again).
    Fail,
    /// The (agent, task type) breaker is forced open (until an operator resets it), so the agent
    /// gets no more tasks of that type; the call itself goes on.
    OpenBreaker,
    /// Only the event.
    Report,
}

impl fmt::Display for LoopAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Fail => "the call fails",
            Self::OpenBreaker => "the breaker opens",
            Self::Report => "reported",
        })
    }
}

/// What an inspector said of an output ([`AgentRef::ask_inspected`](crate::AgentRef::ask_inspected)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum InspectionOutcome {
    /// Accepted as it was.
    Accepted,
    /// Rejected, with a reason.
    Rejected,
    /// Replaced by the inspector's correction.
    Corrected,
}

/// What a [`SemanticEvent`] found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "finding", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Finding {
    /// A validator rejected the output: the ask failed with
    /// [`AgentError::InvalidOutput`](crate::AgentError::InvalidOutput) and the breaker counted it
    /// as a failure.
    Rejected {
        /// Which check said no (`"predicate"`, `"parse"`, `"schema"`, `"too long"`).
        check: String,
        /// Why, as fed back to the producer.
        reason: String,
    },
    /// An inspector reviewed the output.
    Inspected {
        /// The inspecting agent.
        inspector: String,
        /// Its verdict.
        verdict: InspectionOutcome,
        /// Its reason, for a rejection.
        reason: Option<String>,
    },
    /// The agent is flagged as over-confident at this task type, so this output was sent to an
    /// inspector ([`AgentRef::inspect_when_flagged`](crate::AgentRef::inspect_when_flagged));
    /// the inspector's verdict follows as [`Finding::Inspected`].
    RoutedToInspector {
        /// The inspecting agent.
        inspector: String,
        /// The flag that routed it, in words.
        because: String,
    },
    /// A sample of a vote was discarded by a red flag (and counted as a failure by the
    /// breaker).
    RedFlagged {
        /// Which check (`"too long"`, `"parse"`, ...).
        check: String,
        /// What it found.
        detail: String,
    },
    /// A vote ended.
    Voted {
        /// Whether a winner was decided (else the cap was reached first).
        decided: bool,
        /// The winning answer key, or the leader of an undecided vote.
        winner: Option<String>,
        /// The winner's lead over the runner-up.
        margin: u32,
        /// Samples drawn, red-flagged ones included.
        samples_used: u32,
        /// Samples discarded by red flags.
        red_flags: u32,
        /// The cap on samples (what was reserved for).
        cap: u32,
    },
    /// The agent's high-confidence outputs are wrong more often than allowed.
    OverConfident {
        /// High-confidence outputs judged.
        outputs: u64,
        /// How many of them were rejected.
        wrong: u64,
        /// The explanation, in words.
        explanation: String,
    },
    /// The loop detector found a loop.
    Loop {
        /// Which rule (`"repeated_call"`, `"repeated_failure"`, `"ping_pong"`, `"no_progress"`,
        /// `"token_velocity"`).
        rule: String,
        /// The verdict, in words, with its counts and threshold.
        explanation: String,
        /// What was done.
        action: LoopAction,
    },
}

/// An error that did not crash, found by a validator, an inspector, a vote, the confidence
/// tracker or the loop detector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SemanticEvent {
    /// This event's id.
    pub id: EventId,
    /// The ask the finding is about (the vote's or the inspected ask's own id for those).
    pub caused_by: Option<EventId>,
    /// Time since the system started (tokio clock); `elapsed_ms` in JSON.
    #[serde(rename = "elapsed_ms", with = "overseer_serde::millis")]
    pub elapsed: Duration,
    /// The agent's path in the tree (`None` before it started).
    pub path: Option<ChildPath>,
    /// The agent the finding is about (the producer, for an inspection).
    pub agent: String,
    /// The task type.
    pub task_type: String,
    /// What was found.
    pub finding: Finding,
}

impl SemanticEvent {
    /// An event with these facts and nothing else (no cause, no path, at the system's start):
    /// events are made by the system; this is for testing what consumes them.
    pub fn new(
        id: EventId,
        agent: impl Into<String>,
        task_type: impl Into<String>,
        finding: Finding,
    ) -> Self {
        Self {
            id,
            caused_by: None,
            elapsed: Duration::ZERO,
            path: None,
            agent: agent.into(),
            task_type: task_type.into(),
            finding,
        }
    }
}

/// `semantic writer/draft: rejected (predicate): failed: cites a source`, and so on.
impl fmt::Display for SemanticEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "semantic {}/{}: ", self.agent, self.task_type)?;
        match &self.finding {
            Finding::Rejected { check, reason } => write!(f, "rejected ({check}): {reason}"),
            Finding::Inspected {
                inspector,
                verdict,
                reason,
            } => {
                let verdict = match verdict {
                    InspectionOutcome::Accepted => "accepted",
                    InspectionOutcome::Rejected => "rejected",
                    InspectionOutcome::Corrected => "corrected",
                };
                write!(f, "{verdict} by inspector {inspector}")?;
                match reason {
                    Some(reason) => write!(f, ": {reason}"),
                    None => Ok(()),
                }
            }
            Finding::RoutedToInspector { inspector, because } => {
                write!(f, "routed to inspector {inspector}: {because}")
            }
            Finding::RedFlagged { check, detail } => write!(f, "red flag ({check}): {detail}"),
            Finding::Voted {
                decided,
                winner,
                margin,
                samples_used,
                red_flags,
                cap,
            } => {
                let winner = winner.as_deref().unwrap_or("none");
                let how = if *decided { "decided" } else { "undecided" };
                write!(f, "vote {how}: {winner} by {margin} after {samples_used} of {cap} samples ({red_flags} red-flagged)")
            }
            Finding::OverConfident { explanation, .. } => {
                write!(f, "over-confident: {explanation}")
            }
            Finding::Loop {
                explanation,
                action,
                ..
            } => write!(f, "{explanation}; {action}"),
        }
    }
}
