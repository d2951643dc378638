//! Dead letters: the tasks a system gave up on, each with its input, every attempt's error, its
//! run and place in the run's journal, and what it had cost, kept for a person to inspect,
//! remove or redrive ([`DeadLetters`](crate::DeadLetters)).
//!
//! The letter is untyped (its input is JSON), so one queue holds the letters of every agent;
//! the typed side (reading the input back as a task, asking it again) is the handle's. The
//! queue here is the store: letters by id, in the order they were given up, and the journal
//! entries that make it durable.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use overseer_journal::{Durability, Entry, Journal, Payload, RunId, StepId};
use overseer_retry::{Classify, ErrorClass};
use overseer_supervisor::{ChildPath, EventId};
use serde::{Deserialize, Serialize};

use crate::usage::Usage;

/// A dead letter's id: unique within its system and, with a journal, across its restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DeadLetterId(pub u64);

impl fmt::Display for DeadLetterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "dead-letter-{}", self.0)
    }
}

/// One attempt's failure, as a dead letter keeps it: its class and its message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FailedAttempt {
    /// What kind of failure it was.
    pub class: ErrorClass,
    /// The error's message.
    pub message: String,
}

impl FailedAttempt {
    /// A failure of `class` with `message`.
    pub fn new(class: ErrorClass, message: impl Into<String>) -> Self {
        Self {
            class,
            message: message.into(),
        }
    }

    /// `error`'s class and message.
    pub fn of<E: Classify + fmt::Display + ?Sized>(error: &E) -> Self {
        Self::new(error.class(), error.to_string())
    }
}

/// What was given up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum LetterOrigin {
    /// A task asked of an agent (pushed by the caller that gave up on it).
    Task,
    /// An unsafe step of a durable run left in doubt by a crash, that nothing could reconcile:
    /// its effect may or may not have happened.
    StepInDoubt {
        /// The step's name.
        step_name: String,
    },
    /// A saga's compensation that failed for good: the step it should have undone stays done.
    Compensation {
        /// The saga.
        saga: String,
        /// The step whose compensation failed.
        step: String,
    },
}

/// A task given up on, as the dead-letter queue holds it.
///
/// Built with [`DeadLetter::new`] and the setters below, then pushed with
/// [`DeadLetters::push`](crate::DeadLetters::push), which assigns its [`id`](Self::id) and, if
/// unset, when it was given up.
///
/// ```
/// use overseer_agent::{DeadLetter, ErrorClass, FailedAttempt, Usage};
/// use overseer_journal::Payload;
///
/// let letter = DeadLetter::new("root/writer", "draft", Payload::encode("write a haiku")?)
///     .attempt(FailedAttempt::new(ErrorClass::Transient, "503 from the provider"))
///     .attempt(FailedAttempt::new(ErrorClass::Transient, "503 again"))
///     .cost(Usage::new(120, 0, 40));
/// assert_eq!(letter.attempts.len(), 2);
/// assert_eq!(letter.input.decode::<String>()?, "write a haiku");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DeadLetter {
    /// Its id in the queue (`DeadLetterId(0)` until pushed).
    pub id: DeadLetterId,
    /// The agent it was asked of (its name or path).
    pub agent: String,
    /// The agent's Rust type (`std::any::type_name`), when pushed through the typed API: a
    /// redrive checks it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_type: Option<String>,
    /// The task's type ([`Agent::task_type`](crate::Agent::task_type)).
    pub task_type: String,
    /// The task, as JSON.
    pub input: Payload,
    /// Every attempt's failure, in order.
    pub attempts: Vec<FailedAttempt>,
    /// The durable run it belonged to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<RunId>,
    /// Its place in the run's journal: the step given up, if it was a step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<StepId>,
    /// What its attempts cost.
    pub cost: Usage,
    /// When it was given up, in milliseconds since the Unix epoch (wall clock, which outlives
    /// the process).
    pub given_up_at_ms: u64,
    /// What was given up.
    pub origin: LetterOrigin,
}

impl DeadLetter {
    /// A letter for the task `input` of type `task_type` asked of `agent`, with no attempt yet.
    pub fn new(agent: impl Into<String>, task_type: impl Into<String>, input: Payload) -> Self {
        Self {
            id: DeadLetterId(0),
            agent: agent.into(),
            agent_type: None,
            task_type: task_type.into(),
            input,
            attempts: Vec::new(),
            run: None,
            step: None,
            cost: Usage::default(),
            given_up_at_ms: 0,
            origin: LetterOrigin::Task,
        }
    }

    /// Adds a failed attempt.
    pub fn attempt(mut self, attempt: FailedAttempt) -> Self {
        self.attempts.push(attempt);
        self
    }

    /// Sets every attempt's failure.
    pub fn attempts(mut self, attempts: Vec<FailedAttempt>) -> Self {
        self.attempts = attempts;
        self
    }

    /// Sets the durable run it belonged to.
    pub fn run(mut self, run: RunId) -> Self {
        self.run = Some(run);
        self
    }

    /// Sets its place in the run's journal.
    pub fn step(mut self, step: StepId) -> Self {
        self.step = Some(step);
        self
    }

    /// Sets what its attempts cost.
    pub fn cost(mut self, cost: Usage) -> Self {
        self.cost = cost;
        self
    }

    /// Sets the agent's Rust type, checked by a redrive.
    pub fn agent_type(mut self, agent_type: impl Into<String>) -> Self {
        self.agent_type = Some(agent_type.into());
        self
    }

    /// Sets what was given up.
    pub fn origin(mut self, origin: LetterOrigin) -> Self {
        self.origin = origin;
        self
    }

    /// The last attempt's failure, if any.
    pub fn last_error(&self) -> Option<&FailedAttempt> {
        self.attempts.last()
    }
}

/// Why the dead-letter queue could not do what it was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeadLetterError {
    /// No letter has this id (never pushed, or removed since).
    #[error("no dead letter {0}")]
    NotFound(DeadLetterId),
    /// The task does not write as JSON.
    #[error("the task does not write as JSON: {0}")]
    Encoding(String),
    /// The letter's input does not read as the agent's task.
    #[error("dead letter {id}: its input does not read as the agent's task: {message}")]
    Decoding {
        /// The letter.
        id: DeadLetterId,
        /// Why.
        message: String,
    },
    /// The letter was given up by an agent of another type than the one asked to redrive it.
    #[error("dead letter {id} was given up by an agent of type {recorded}, not {asked}")]
    WrongAgentType {
        /// The letter.
        id: DeadLetterId,
        /// The type that gave it up.
        recorded: String,
        /// The type asked to redrive it.
        asked: String,
    },
    /// The journal could not record the change: the queue is left as it was.
    #[error("the journal could not record the dead letter: {0}")]
    Journal(String),
}

/// How the queue changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DeadLetterChange {
    /// A letter joined the queue.
    Pushed,
    /// A letter was updated in place (a redrive that failed again added its attempt).
    Updated,
    /// A letter left the queue (removed, or redriven with success).
    Removed,
}

/// The dead-letter queue changed: its size is the metric to alert on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DeadLetterEvent {
    /// This event's id.
    pub id: EventId,
    /// The event that caused it, if the system knows one.
    pub caused_by: Option<EventId>,
    /// Time since the system started (tokio clock); `elapsed_ms` in JSON.
    #[serde(rename = "elapsed_ms", with = "overseer_serde::millis")]
    pub elapsed: Duration,
    /// The path of the agent the letter is about, when it is known.
    pub path: Option<ChildPath>,
    /// How the queue changed.
    pub change: DeadLetterChange,
    /// The letter.
    pub letter: DeadLetterId,
    /// The agent it was asked of.
    pub agent: String,
    /// Its task type.
    pub task_type: String,
    /// The queue's size after the change.
    pub queue_len: usize,
}

impl DeadLetterEvent {
    /// An event with these facts, and nothing else (no cause, no path, at the system's start):
    /// events are made by the system; this is for testing what consumes them.
    pub fn new(
        id: EventId,
        change: DeadLetterChange,
        letter: &DeadLetter,
        queue_len: usize,
    ) -> Self {
        Self {
            id,
            caused_by: None,
            elapsed: Duration::ZERO,
            path: None,
            change,
            letter: letter.id,
            agent: letter.agent.clone(),
            task_type: letter.task_type.clone(),
            queue_len,
        }
    }
}

/// The queue itself: the letters by id, and the next id.
#[derive(Debug, Default)]
pub(crate) struct LetterQueue {
    letters: Mutex<BTreeMap<DeadLetterId, DeadLetter>>,
    next: AtomicU64,
}

impl LetterQueue {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<DeadLetterId, DeadLetter>> {
        self.letters.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Puts back the letters a journal holds, numbering new ones after `highest` (the highest
    /// id the journal ever held); one that does not read as a letter (written by a later
    /// version) is left in the journal and skipped, with a warning. Returns how many.
    pub(crate) fn restore(&self, journaled: Vec<(u64, Payload)>, highest: u64) -> usize {
        self.next.fetch_max(highest, Ordering::Relaxed);
        let mut letters = self.lock();
        for (id, payload) in journaled {
            self.next.fetch_max(id, Ordering::Relaxed);
            match payload.decode::<DeadLetter>() {
                Ok(mut letter) => {
                    letter.id = DeadLetterId(id);
                    letters.insert(letter.id, letter);
                }
                Err(error) => {
                    tracing::warn!(id, %error, "dead letters: a journaled letter does not read as one")
                }
            }
        }
        letters.len()
    }

    /// How many letters it holds.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// Every letter, oldest first.
    pub(crate) fn list(&self) -> Vec<DeadLetter> {
        self.lock().values().cloned().collect()
    }

    /// The letter `id`.
    pub(crate) fn get(&self, id: DeadLetterId) -> Option<DeadLetter> {
        self.lock().get(&id).cloned()
    }

    /// Adds `letter` under a new id, journaled first (with `with`, in the same append) when
    /// there is a journal. Returns the letter as queued and the queue's size.
    pub(crate) async fn push(
        &self,
        journal: Option<&Journal>,
        letter: DeadLetter,
        with: Vec<Entry>,
    ) -> Result<(DeadLetter, usize), DeadLetterError> {
        let letter = self.numbered(letter);
        self.write(journal, &letter, with).await?;
        Ok((letter.clone(), self.insert(letter)))
    }

    /// `letter` with a new id and, if unset, when it was given up: to be journaled
    /// ([`entry`](Self::entry)) and then [`insert`](Self::insert)ed.
    pub(crate) fn numbered(&self, mut letter: DeadLetter) -> DeadLetter {
        letter.id = DeadLetterId(self.next.fetch_add(1, Ordering::Relaxed) + 1);
        if letter.given_up_at_ms == 0 {
            letter.given_up_at_ms = now_ms();
        }
        letter
    }

    /// The journal entry that records `letter`.
    pub(crate) fn entry(letter: &DeadLetter) -> Result<Entry, DeadLetterError> {
        let payload = Payload::encode(letter)
            .map_err(|error| DeadLetterError::Encoding(error.to_string()))?;
        Ok(Entry::DeadLettered {
            id: letter.id.0,
            letter: payload,
        })
    }

    /// Queues `letter` (already journaled, if there is a journal). Returns the queue's size.
    pub(crate) fn insert(&self, letter: DeadLetter) -> usize {
        let mut letters = self.lock();
        letters.insert(letter.id, letter);
        letters.len()
    }

    /// Replaces the letter of the same id (journaled first). Returns the queue's size.
    pub(crate) async fn update(
        &self,
        journal: Option<&Journal>,
        letter: DeadLetter,
    ) -> Result<usize, DeadLetterError> {
        if self.get(letter.id).is_none() {
            return Err(DeadLetterError::NotFound(letter.id));
        }
        self.write(journal, &letter, Vec::new()).await?;
        Ok(self.insert(letter))
    }

    /// Removes the letter `id` (journaled first). Returns it and the queue's size.
    pub(crate) async fn remove(
        &self,
        journal: Option<&Journal>,
        id: DeadLetterId,
    ) -> Result<(DeadLetter, usize), DeadLetterError> {
        if self.get(id).is_none() {
            return Err(DeadLetterError::NotFound(id));
        }
        if let Some(journal) = journal {
            let removed = Entry::DeadLetterRemoved { id: id.0 };
            append(journal, vec![removed]).await?;
        }
        let mut letters = self.lock();
        let letter = letters.remove(&id).ok_or(DeadLetterError::NotFound(id))?;
        Ok((letter, letters.len()))
    }

    async fn write(
        &self,
        journal: Option<&Journal>,
        letter: &DeadLetter,
        mut with: Vec<Entry>,
    ) -> Result<(), DeadLetterError> {
        let Some(journal) = journal else {
            return Ok(());
        };
        with.push(Self::entry(letter)?);
        append(journal, with).await
    }
}

async fn append(journal: &Journal, entries: Vec<Entry>) -> Result<(), DeadLetterError> {
    journal
        .append(entries, Durability::Sync)
        .await
        .map(drop)
        .map_err(|error| DeadLetterError::Journal(error.to_string()))
}

/// Milliseconds since the Unix epoch (a clock before 1970 reads as 0).
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(agent: &str) -> DeadLetter {
        DeadLetter::new(agent, "t", Payload::encode(&1).unwrap())
    }

    #[tokio::test]
    async fn ids_grow_and_removal_leaves_the_rest_in_order() {
        let queue = LetterQueue::default();
        let (a, _) = queue.push(None, letter("a"), Vec::new()).await.unwrap();
        let (b, len) = queue.push(None, letter("b"), Vec::new()).await.unwrap();
        assert_eq!((a.id, b.id, len), (DeadLetterId(1), DeadLetterId(2), 2));
        assert!(a.given_up_at_ms > 0);
        let (removed, len) = queue.remove(None, a.id).await.unwrap();
        assert_eq!((removed.agent.as_str(), len), ("a", 1));
        assert_eq!(
            queue.remove(None, a.id).await,
            Err(DeadLetterError::NotFound(a.id))
        );
        let agents: Vec<_> = queue.list().into_iter().map(|l| l.agent).collect();
        assert_eq!(agents, ["b"]);
    }

    #[test]
    fn a_restored_queue_numbers_after_the_highest_journaled_id() {
        let queue = LetterQueue::default();
        let journaled = vec![
            (4, Payload::encode(&letter("x")).unwrap()),
            (9, Payload::encode(&"not a letter").unwrap()),
        ];
        assert_eq!(queue.restore(journaled, 3), 1);
        assert_eq!(queue.get(DeadLetterId(4)).unwrap().agent, "x");
        assert_eq!(queue.next.load(Ordering::Relaxed), 9);
    }
}
