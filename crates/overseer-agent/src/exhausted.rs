//! A task that exhausts its escalation ladder goes to the dead letters: what is given up is
//! kept, with every attempt's error, to be inspected and redriven.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::agent::Agent;
use crate::agent_ref::{AgentRef, Answered};
use crate::dead_letter::FailedAttempt;
use crate::dead_letters::DeadLetters;
use crate::error::AskError;
use crate::escalation::Escalation;
use crate::usage::Usage;

impl<A: Agent> AgentRef<A>
where
    A::Task: Clone + Serialize + DeserializeOwned,
{
    /// As [`ask_escalating`](Self::ask_escalating), and a task that exhausts the ladder goes
    /// to the system's dead letters ([`System::dead_letters`](crate::System::dead_letters))
    /// with its input, every attempt's class and error, and what the attempts spent, before the error is returned: it
    /// is not lost, and can be redriven once the cause is fixed. With a journal, the letter is
    /// journaled. A failure that stops the climb early (a permanent error on the first ask,
    /// the kill switch) is returned as it is and not dead-lettered: nothing was given up by
    /// the ladder.
    ///
    /// # Errors
    /// As [`ask_escalating`](Self::ask_escalating): [`AskError::Exhausted`] once the letter
    /// is pushed (if the letter cannot be pushed, a journal that fails, the same error: the
    /// push's failure is logged).
    ///
    /// # Cancel safety
    /// As [`ask_escalating`](Self::ask_escalating); dropped while the letter is pushed, the
    /// letter may or may not be in the queue.
    ///
    /// # Panics
    /// As [`ask`](Self::ask).
    pub async fn ask_escalating_or_dead_letter(
        &self,
        task: A::Task,
        escalation: &Escalation<A>,
    ) -> Result<Answered<A::Output>, AskError> {
        let given_up = task.clone();
        let error = match self.ask_escalating(task, escalation).await {
            Ok(answered) => return Ok(answered),
            Err(error) => error,
        };
        let AskError::Exhausted { attempts, .. } = &error else {
            return Err(error);
        };
        let cost = attempts
            .iter()
            .fold(Usage::default(), |total, attempt| total + attempt.usage);
        let failed = attempts
            .iter()
            .map(|attempt| FailedAttempt::new(attempt.class, attempt.error.to_string()))
            .collect();
        let letters = DeadLetters::new(Arc::clone(&self.slot().shared));
        let pushed = letters.push_task(self, &given_up, failed, cost).await;
        if let Err(push_error) = pushed {
            tracing::warn!(agent = %self.name(), error = %push_error, "an exhausted task could not be dead-lettered");
        }
        Err(error)
    }
}
