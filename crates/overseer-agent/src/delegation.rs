//! A handler asking another agent: the hand-off is recorded for the loop detector (so that a
//! delegation ping-pong between two agents is found without the handler reporting it), and the
//! other agent's failure comes back as the handler's own error, with its retry class.

use overseer_retry::{Classify, ErrorClass};

use crate::agent::Agent;
use crate::agent_ref::AgentRef;
use crate::context::AgentContext;
use crate::error::{AgentError, AskError};

impl AgentContext {
    /// Asks agent `to` to handle `task` for the current task (a delegation), under `to`'s
    /// default deadline, after telling the loop detector of the hand-off as
    /// [`delegated`](Self::delegated) does: two agents handing a task back and forth are caught
    /// as a ping-pong at the detector's threshold.
    ///
    /// ```
    /// use overseer_agent::{Agent, AgentContext, AgentError, AgentRef};
    ///
    /// struct Writer {
    ///     editor: AgentRef<Editor>,
    /// }
    /// struct Editor;
    ///
    /// impl Agent for Editor {
    ///     type Task = String;
    ///     type Output = String;
    ///     async fn handle(&mut self, _: &mut AgentContext, draft: String) -> Result<String, AgentError> {
    ///         Ok(draft.to_uppercase())
    ///     }
    /// }
    ///
    /// impl Agent for Writer {
    ///     type Task = String;
    ///     type Output = String;
    ///     async fn handle(&mut self, ctx: &mut AgentContext, topic: String) -> Result<String, AgentError> {
    ///         let draft = format!("a note on {topic}");
    ///         ctx.delegate(&self.editor, draft).await
    ///     }
    /// }
    /// ```
    ///
    /// # Errors
    ///
    /// The loop detector's error when the hand-off completes a ping-pong and the system's
    /// action is [`LoopAction::Fail`](crate::LoopAction::Fail) (`to` is not asked); otherwise
    /// the ask's [`AskError`] as an [`AgentError`] of the same retry class, its message
    /// naming `to`:
    ///
    /// | the ask's error class | the handler's error |
    /// |---|---|
    /// | rate-limited (an open breaker, a provider's 429) | [`AgentError::RateLimited`], with its retry-after |
    /// | invalid output | [`AgentError::InvalidOutput`] |
    /// | replay-unsafe (the ask may have had its effect) | [`AgentError::ReplayUnsafe`]: never retried |
    /// | permanent, budget exhausted, cancelled | [`AgentError::Permanent`] |
    /// | transient (a timeout, a crash, a restart) or any other | [`AgentError::Failed`] |
    ///
    /// # Cancel safety
    ///
    /// As [`AgentRef::ask`]'s: dropping the future gives the ask up.
    pub async fn delegate<B: Agent>(
        &self,
        to: &AgentRef<B>,
        task: B::Task,
    ) -> Result<B::Output, AgentError> {
        self.delegated(to.name(), B::task_type(&task))?;
        to.ask(task)
            .await
            .map_err(|error| delegation_error(to, &error))
    }
}

/// The handler's error for the failed ask of a delegation, of the same retry class.
fn delegation_error<B: Agent>(to: &AgentRef<B>, error: &AskError) -> AgentError {
    let message = format!("asking {}: {error}", to.name());
    match error.class() {
        ErrorClass::RateLimited { retry_after } => AgentError::RateLimited {
            message,
            retry_after,
        },
        ErrorClass::InvalidOutput => AgentError::InvalidOutput(message),
        ErrorClass::ReplayUnsafe => AgentError::ReplayUnsafe(message),
        ErrorClass::Permanent | ErrorClass::BudgetExhausted | ErrorClass::Cancelled => {
            AgentError::Permanent(message)
        }
        _ => AgentError::Failed(message),
    }
}
