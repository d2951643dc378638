//! Steps: the journaled units of a run, identified in program order, each declaring its effect.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Where a step sits in its run: the agent that takes it (its supervision path), which of that
/// agent's asks within the run it belongs to, and its place among that ask's steps.
///
/// Ids follow program order, so a replay asks for the same ids in the same order; a replay that
/// asks for step `(path, ask, n)` under another name than was recorded has
/// [diverged](crate::StepDecision::Diverged).
///
/// ```
/// use overseer_journal::StepId;
///
/// let step = StepId::new("root/writer", 0, 2);
/// assert_eq!(step.to_string(), "root/writer#0.2");
/// assert!(StepId::new("root/writer", 0, 1) < step);
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct StepId {
    /// The supervision path of the agent that takes the step.
    pub path: Arc<str>,
    /// Which of the agent's asks within the run: 0 for the first.
    pub ask: u32,
    /// Which step of that ask: 0 for the first.
    pub ordinal: u32,
}

impl StepId {
    /// Step `ordinal` of ask `ask` of the agent at `path`.
    pub fn new(path: impl Into<Arc<str>>, ask: u32, ordinal: u32) -> Self {
        Self {
            path: path.into(),
            ask,
            ordinal,
        }
    }
}

impl fmt::Display for StepId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}.{}", self.path, self.ask, self.ordinal)
    }
}

impl fmt::Debug for StepId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StepId({self})")
    }
}

/// What running a step does to the world, which decides what a replay and a crash may do:
///
/// | effect | replayed (result recorded) | crash after the intent, before the result |
/// |---|---|---|
/// | [`Pure`](Self::Pure) | recorded result, not run | run again (no intent is written) |
/// | [`Idempotent`](Self::Idempotent) | recorded result, not run | run again (no intent is written) |
/// | [`Keyed`](Self::Keyed) | recorded result, not run | run again *with the same idempotency key* |
/// | [`Unsafe`](Self::Unsafe) | recorded result, not run | not run: reconciled by the user's check, or a dead letter |
///
/// A model call is [`Idempotent`](Self::Idempotent) for the world, but it costs money: its
/// intent records the reservation, and its result the usage, so that a replay restores the
/// usage instead of paying again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Effect {
    /// No effect outside the run (a computation, a read of the run's own data).
    Pure,
    /// Repeating it does no harm (a read, a model call, a PUT of the same value).
    Idempotent,
    /// The external system takes an idempotency key and applies a request once per key.
    Keyed,
    /// Repeating it would do harm and nothing outside can tell: it is never run twice without
    /// reconciliation.
    Unsafe,
}

impl Effect {
    /// Whether an intent is written, durably, before the step runs: for the effects a crash in
    /// the middle must not repeat blindly.
    ///
    /// ```
    /// use overseer_journal::Effect;
    /// assert!(Effect::Unsafe.needs_intent() && Effect::Keyed.needs_intent());
    /// assert!(!Effect::Pure.needs_intent() && !Effect::Idempotent.needs_intent());
    /// ```
    pub const fn needs_intent(self) -> bool {
        matches!(self, Self::Keyed | Self::Unsafe)
    }
}

impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pure => "pure",
            Self::Idempotent => "idempotent",
            Self::Keyed => "keyed",
            Self::Unsafe => "unsafe",
        })
    }
}
