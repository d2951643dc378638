//! The system's dead-letter queue as its users hold it: list, inspect, push, remove, redrive.

use std::fmt;
use std::sync::Arc;

use overseer_journal::{Payload, RunId};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::agent::Agent;
use crate::agent_ref::AgentRef;
use crate::dead_letter::{
    DeadLetter, DeadLetterChange, DeadLetterError, DeadLetterId, FailedAttempt,
};
use crate::error::AskError;
use crate::shared::Shared;
use crate::usage::Usage;

/// The tasks a system gave up on, from [`System::dead_letters`](crate::System::dead_letters):
/// cheap to clone, shared by the whole system.
///
/// A letter joins the queue when a caller gives a task up ([`push_task`](Self::push_task),
/// [`push`](Self::push)), when a durable run's unsafe step is left in doubt by a crash and
/// nothing can reconcile it, and when a [`Saga`](crate::Saga)'s compensation fails for good.
/// Each push, update and removal is a [`SystemEvent::DeadLetter`](crate::SystemEvent) carrying
/// the queue's size ([`len`](Self::len)), the metric to alert on.
///
/// With a journal ([`SystemBuilder::journal`](crate::SystemBuilder::journal)) the queue is
/// durable: every change is journaled (synchronously) before it is made, and a system built
/// over the same journal starts with the letters that were left.
///
/// ```
/// use overseer_agent::prelude::*;
/// use overseer_agent::{ErrorClass, FailedAttempt};
/// use overseer_supervisor::SupervisorSpec;
///
/// struct Echo;
/// impl Agent for Echo {
///     type Task = String;
///     type Output = String;
///     async fn handle(&mut self, _: &mut AgentContext, task: String) -> Result<String, AgentError> {
///         Ok(task)
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let system = System::builder().build()?;
/// system.start(SupervisorSpec::one_for_one("root")
///     .child(system.agent(AgentSpec::new("echo", || Echo))?)).await?;
/// let echo = system.agent_ref::<Echo>("echo")?;
///
/// let letters = system.dead_letters();
/// let failed = vec![FailedAttempt::new(ErrorClass::Transient, "503"); 3];
/// let id = letters.push_task(&echo, &"hello".to_string(), failed, Usage::default()).await?;
/// assert_eq!(letters.len(), 1);
/// assert_eq!(letters.get(id).unwrap().attempts.len(), 3);
///
/// // The provider is back: ask again, and the letter leaves the queue.
/// assert_eq!(letters.redrive(id, &echo).await?, "hello");
/// assert!(letters.is_empty());
/// # system.shutdown(std::time::Duration::from_secs(5)).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct DeadLetters {
    shared: Arc<Shared>,
}

impl fmt::Debug for DeadLetters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeadLetters")
            .field("len", &self.len())
            .finish()
    }
}

/// Why a redrive did not succeed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RedriveError {
    /// The letter could not be read or updated (no such letter, another agent type, an input
    /// that does not read as the task, a journal failure).
    #[error(transparent)]
    Letter(#[from] DeadLetterError),
    /// A durable redrive's run id, derived from the letter's run, is not a valid id (the
    /// original run id is too long to take the suffix): nothing was asked.
    #[error("dead letter {id} has no valid redrive run id: {error}")]
    RunId {
        /// The letter.
        id: DeadLetterId,
        /// Why the derived id is refused.
        error: overseer_journal::RunIdError,
    },
    /// The task was asked again and failed: the letter stays in the queue with this attempt
    /// added.
    #[error("dead letter {id} failed again: {error}")]
    Failed {
        /// The letter.
        id: DeadLetterId,
        /// The new attempt's error.
        error: AskError,
    },
}

impl DeadLetters {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// How many letters the queue holds.
    pub fn len(&self) -> usize {
        self.shared.dead_letters.len()
    }

    /// Whether the queue is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every letter, oldest first.
    pub fn list(&self) -> Vec<DeadLetter> {
        self.shared.dead_letters.list()
    }

    /// The letter `id`, if the queue holds it.
    pub fn get(&self, id: DeadLetterId) -> Option<DeadLetter> {
        self.shared.dead_letters.get(id)
    }

    /// Adds `letter` to the queue under a new id (journaled first, with a journal) and
    /// publishes the change. Returns the id.
    ///
    /// # Errors
    ///
    /// [`DeadLetterError::Encoding`] or [`DeadLetterError::Journal`] when the journal cannot
    /// record it: the letter is then not queued.
    ///
    /// # Cancel safety
    ///
    /// Dropped after its first poll, the journal append goes on but the letter may not be
    /// queued in memory until the system is rebuilt over the journal.
    pub async fn push(&self, letter: DeadLetter) -> Result<DeadLetterId, DeadLetterError> {
        let journal = self.shared.journal.as_ref();
        let (letter, len) = self
            .shared
            .dead_letters
            .push(journal, letter, Vec::new())
            .await?;
        self.shared
            .publish_dead_letter(DeadLetterChange::Pushed, &letter, len);
        Ok(letter.id)
    }

    /// Gives up `task`, asked of `agent`, after `attempts` that cost `cost`: the task is kept
    /// as JSON, with the agent's name and type, so that [`redrive`](Self::redrive) can ask it
    /// again. Returns the letter's id.
    ///
    /// # Errors
    ///
    /// [`DeadLetterError::Encoding`] when the task does not write as JSON; as
    /// [`push`](Self::push).
    ///
    /// # Cancel safety
    ///
    /// As [`push`](Self::push).
    pub async fn push_task<A: Agent>(
        &self,
        agent: &AgentRef<A>,
        task: &A::Task,
        attempts: Vec<FailedAttempt>,
        cost: Usage,
    ) -> Result<DeadLetterId, DeadLetterError>
    where
        A::Task: Serialize + DeserializeOwned,
    {
        let input =
            Payload::encode(task).map_err(|error| DeadLetterError::Encoding(error.to_string()))?;
        let letter = DeadLetter::new(agent.name().as_str(), A::task_type(task), input)
            .agent_type(std::any::type_name::<A>())
            .attempts(attempts)
            .cost(cost);
        self.push(letter).await
    }

    /// Removes the letter `id` (journaled first) and returns it: what an operator does once the
    /// task is handled by hand.
    ///
    /// # Errors
    ///
    /// [`DeadLetterError::NotFound`]; [`DeadLetterError::Journal`] when the journal cannot
    /// record the removal (the letter stays).
    ///
    /// # Cancel safety
    ///
    /// As [`push`](Self::push).
    pub async fn remove(&self, id: DeadLetterId) -> Result<DeadLetter, DeadLetterError> {
        let journal = self.shared.journal.as_ref();
        let (letter, len) = self.shared.dead_letters.remove(journal, id).await?;
        self.shared
            .publish_dead_letter(DeadLetterChange::Removed, &letter, len);
        Ok(letter)
    }

    /// Asks the letter's task again, of `to` (the agent that gave it up, from
    /// [`System::agent_ref`](crate::System::agent_ref) with the letter's
    /// [`agent`](DeadLetter::agent), or another agent of the same type), within `to`'s default
    /// deadline. On success the letter is removed and the output returned; on failure the
    /// letter stays, with the new attempt added.
    ///
    /// The task is asked as a plain ask, not as its durable run: a run's journaled outcome
    /// would answer instead of the agent ([`redrive_run`](Self::redrive_run) asks it as a new
    /// durable run).
    ///
    /// # Errors
    ///
    /// [`RedriveError::Letter`] with [`DeadLetterError::NotFound`],
    /// [`DeadLetterError::WrongAgentType`] (a letter pushed by an agent of another type),
    /// [`DeadLetterError::Decoding`], or a journal failure; [`RedriveError::Failed`] with the
    /// ask's error.
    ///
    /// # Cancel safety
    ///
    /// Dropped while the ask runs, the letter stays as it was; the ask's own cancel safety is
    /// [`AgentRef::ask`]'s.
    pub async fn redrive<A: Agent>(
        &self,
        id: DeadLetterId,
        to: &AgentRef<A>,
    ) -> Result<A::Output, RedriveError>
    where
        A::Task: DeserializeOwned,
    {
        let letter = self.get(id).ok_or(DeadLetterError::NotFound(id))?;
        let task = task_of::<A>(&letter)?;
        let answer = to.ask(task).await;
        self.settle_redrive(letter, answer).await
    }

    /// As [`redrive`](Self::redrive), the task asked as a durable run
    /// ([`AgentRef::ask_run`]) of its own: `"<run>/redrive-<n>"` for a letter of the run
    /// `<run>` (else `"dead-letter-<id>/redrive-<n>"`), `n` the number of attempts the letter
    /// holds. The redrive is then journaled like any run: a process that dies during it
    /// leaves the run unfinished, to be resumed
    /// ([`AgentRef::resume_unfinished`]), and redriving the letter again asks the same run, so
    /// its journaled steps replay and its effects happen once. The original run is not asked
    /// again: its outcome is journaled as failed.
    ///
    /// # Errors
    ///
    /// As [`redrive`](Self::redrive), and the errors of [`AgentRef::ask_run`] in
    /// [`RedriveError::Failed`] (no journal: [`AskError::NoJournal`]);
    /// [`RedriveError::RunId`] when the derived run id is too long.
    ///
    /// # Cancel safety
    ///
    /// Dropped while the run is asked, the letter stays as it was and the run is left
    /// unfinished in the journal.
    pub async fn redrive_run<A: Agent>(
        &self,
        id: DeadLetterId,
        to: &AgentRef<A>,
    ) -> Result<A::Output, RedriveError>
    where
        A::Task: Serialize + DeserializeOwned,
        A::Output: Serialize + DeserializeOwned,
    {
        let letter = self.get(id).ok_or(DeadLetterError::NotFound(id))?;
        let task = task_of::<A>(&letter)?;
        let origin = letter.run.as_ref().map_or_else(
            || format!("dead-letter-{}", letter.id),
            |run| run.to_string(),
        );
        let run = RunId::new(format!("{origin}/redrive-{}", letter.attempts.len()))
            .map_err(|error| RedriveError::RunId { id, error })?;
        let answer = to.ask_run(run, task).await;
        self.settle_redrive(letter, answer).await
    }

    /// A redrive's end: answered, the letter is removed; failed, it stays with the attempt.
    async fn settle_redrive<O>(
        &self,
        letter: DeadLetter,
        answer: Result<O, AskError>,
    ) -> Result<O, RedriveError> {
        let id = letter.id;
        match answer {
            Ok(output) => {
                self.remove(id).await?;
                Ok(output)
            }
            Err(error) => {
                let updated = letter.attempt(FailedAttempt::of(&error));
                let journal = self.shared.journal.as_ref();
                let len = self
                    .shared
                    .dead_letters
                    .update(journal, updated.clone())
                    .await?;
                self.shared
                    .publish_dead_letter(DeadLetterChange::Updated, &updated, len);
                Err(RedriveError::Failed { id, error })
            }
        }
    }
}

/// The letter's input as `A`'s task, if `A` may take it.
fn task_of<A: Agent>(letter: &DeadLetter) -> Result<A::Task, DeadLetterError>
where
    A::Task: DeserializeOwned,
{
    let asked = std::any::type_name::<A>();
    if let Some(recorded) = letter.agent_type.as_deref() {
        if recorded != asked {
            return Err(DeadLetterError::WrongAgentType {
                id: letter.id,
                recorded: recorded.to_string(),
                asked: asked.to_string(),
            });
        }
    }
    letter
        .input
        .decode()
        .map_err(|error| DeadLetterError::Decoding {
            id: letter.id,
            message: error.to_string(),
        })
}
