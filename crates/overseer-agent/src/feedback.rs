//! What the next attempt of a task is told about the one before it.

use overseer_retry::{Classify, ErrorClass};

use crate::error::AskError;

/// The failure of the previous attempt of the task a handler is working on, when the task is a
/// retry (by the agent's [`RetryPolicy`](overseer_retry::RetryPolicy)) or a rung of an
/// escalation ladder: "tell the agent what went wrong". Read it with
/// [`AgentContext::previous_failure`](crate::AgentContext::previous_failure), and put it in the
/// prompt.
///
/// ```
/// use overseer_agent::{AgentError, AskError, Feedback};
/// use overseer_agent::ErrorClass;
///
/// let failed = AskError::Failed {
///     agent: "writer".into(),
///     error: AgentError::InvalidOutput("missing field `title`".into()),
/// };
/// let feedback = Feedback::new(1, failed);
/// assert_eq!(feedback.attempt(), 1);
/// assert_eq!(feedback.class(), ErrorClass::InvalidOutput);
/// assert!(feedback.message().contains("missing field `title`"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feedback {
    attempt: u32,
    class: ErrorClass,
    message: String,
    error: AskError,
}

impl Feedback {
    /// The failure of attempt `attempt` (from 1), with `error`.
    pub fn new(attempt: u32, error: AskError) -> Self {
        Self {
            attempt,
            class: error.class(),
            message: error.to_string(),
            error,
        }
    }

    /// Which attempt failed, from 1 (the first ask).
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The failure's class.
    pub fn class(&self) -> ErrorClass {
        self.class
    }

    /// The failure's text, as the error displays it.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The failure itself.
    pub fn error(&self) -> &AskError {
        &self.error
    }
}
