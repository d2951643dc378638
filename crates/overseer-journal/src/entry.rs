//! What the journal records: the entries of a run, from its start to its outcome.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::{Effect, Fingerprint, RunId, StepId};

/// A value recorded in the journal (a run's input, a step's result, a signal), as JSON text.
///
/// ```
/// use overseer_journal::Payload;
///
/// let payload = Payload::encode(&vec![1, 2, 3])?;
/// assert_eq!(payload.as_json(), "[1,2,3]");
/// assert_eq!(payload.decode::<Vec<u32>>()?, vec![1, 2, 3]);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Payload(Box<RawValue>);

impl Payload {
    /// `value` as JSON.
    ///
    /// # Errors
    ///
    /// When `value` cannot be written as JSON (a map with non-string keys, a failing
    /// `Serialize` implementation).
    pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Self, serde_json::Error> {
        serde_json::value::to_raw_value(value).map(Self)
    }

    /// The recorded value, read back as a `T`.
    ///
    /// # Errors
    ///
    /// When the JSON is not a `T` (the type changed since it was recorded).
    pub fn decode<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.0.get())
    }

    /// The JSON text.
    pub fn as_json(&self) -> &str {
        self.0.get()
    }

    /// The payload's fingerprint.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(self.0.get().as_bytes())
    }
}

impl PartialEq for Payload {
    fn eq(&self, other: &Self) -> bool {
        self.0.get() == other.0.get()
    }
}

impl Eq for Payload {}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Payload({})", self.0.get())
    }
}

/// Which incarnation holds a run: each one that takes it up claims the next epoch, and the
/// journal refuses appends from any older one (a zombie: a hung handler that outlived its kill,
/// or a second process resuming the same run).
///
/// ```
/// use overseer_journal::Epoch;
/// assert!(Epoch::FIRST.next() > Epoch::FIRST);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Epoch(pub u64);

impl Epoch {
    /// The epoch of the first incarnation to take a run up.
    pub const FIRST: Epoch = Epoch(1);

    /// The epoch after this one.
    pub const fn next(self) -> Epoch {
        Epoch(self.0.saturating_add(1))
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "epoch {}", self.0)
    }
}

/// Tokens and cost recorded with a step: reserved by its intent, spent by its completion, and
/// restored into the budget ledger on replay instead of being charged again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spent {
    /// Prompt tokens.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub input_tokens: u64,
    /// Completion tokens.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub output_tokens: u64,
    /// Cost in millionths of the currency unit.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cost_micros: u64,
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

impl Spent {
    /// Nothing spent.
    pub const NONE: Spent = Spent {
        input_tokens: 0,
        output_tokens: 0,
        cost_micros: 0,
    };

    /// Whether nothing was spent.
    pub const fn is_none(&self) -> bool {
        self.input_tokens == 0 && self.output_tokens == 0 && self.cost_micros == 0
    }
}

impl std::ops::Add for Spent {
    type Output = Spent;

    /// Both together (saturating: a sum of spend never wraps around).
    fn add(self, other: Spent) -> Spent {
        Spent {
            input_tokens: self.input_tokens.saturating_add(other.input_tokens),
            output_tokens: self.output_tokens.saturating_add(other.output_tokens),
            cost_micros: self.cost_micros.saturating_add(other.cost_micros),
        }
    }
}

/// How a step or a run ended, as recorded: its value, or its error's text. A failure is
/// recorded too, so a replay fails the same way (Stripe replays a saved 500).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Recorded {
    /// It returned this value.
    Value(Payload),
    /// It failed with this error (one a retry may pass: a replay fails the same way, and a
    /// retry of the run may try again).
    Failed(String),
    /// It failed in a way a retry does not fix (a bad request, a context too long): a replay
    /// fails the same way, with the failure's class kept, so nothing retries it.
    Permanent(String),
    /// Its output was rejected (by a validator, a schema, a check): a replay fails the same
    /// way, with the failure's class kept.
    InvalidOutput(String),
    /// It failed after its effect was probably done (a model's answer lost once the request was
    /// processed): a replay fails the same way, with the failure's class kept, so nothing
    /// retries it.
    ReplayUnsafe(String),
}

/// One record of the journal. Every entry names its run; those written by an incarnation carry
/// its [`Epoch`] and are refused once a newer epoch holds the run.
///
/// Encoded as JSON, externally tagged (`{"run_started": {...}}`): serde's internally tagged enums
/// buffer their fields, which a [`Payload`]'s raw JSON cannot pass through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Entry {
    /// A run began: the agent that takes it and its input, written before its first ask is queued.
    RunStarted {
        /// The run.
        run: RunId,
        /// The supervision path of the agent the run was asked of.
        agent: String,
        /// The task, as asked.
        input: Payload,
        /// The input's fingerprint, compared with a later ask of the same run id.
        fingerprint: Fingerprint,
        /// When, in milliseconds since the Unix epoch (for the expiry of idempotency keys).
        started_at_ms: u64,
    },
    /// An incarnation took the run up under `epoch`.
    RunClaimed {
        /// The run.
        run: RunId,
        /// The epoch claimed: one more than the last.
        epoch: Epoch,
    },
    /// A step is about to run: written, durably, before a keyed or unsafe effect or a model call
    /// with a reservation, so that a crash before its result is not a blind re-run.
    StepIntent {
        /// The run.
        run: RunId,
        /// The epoch of the incarnation that writes it.
        epoch: Epoch,
        /// The step.
        step: StepId,
        /// The step's name, as the program gave it.
        name: String,
        /// What the step does to the world.
        effect: Effect,
        /// The budget reserved for it (none for a step that spends nothing).
        #[serde(default, skip_serializing_if = "Spent::is_none")]
        reserved: Spent,
    },
    /// A step finished, with its result and what it spent.
    StepCompleted {
        /// The run.
        run: RunId,
        /// The epoch of the incarnation that writes it.
        epoch: Epoch,
        /// The step.
        step: StepId,
        /// The step's name.
        name: String,
        /// What the step does to the world.
        effect: Effect,
        /// How it ended.
        outcome: Recorded,
        /// What it spent.
        #[serde(default, skip_serializing_if = "Spent::is_none")]
        spent: Spent,
    },
    /// A step in doubt (an unsafe effect whose intent has no result and that could not be
    /// reconciled) was given up and left for a person, with its place in the journal.
    StepDeadLettered {
        /// The run.
        run: RunId,
        /// The epoch of the incarnation that writes it.
        epoch: Epoch,
        /// The step.
        step: StepId,
        /// Why.
        reason: String,
    },
    /// A signal the run waits for (`wait_for(name)`) was delivered.
    SignalDelivered {
        /// The run.
        run: RunId,
        /// The signal's name.
        name: String,
        /// Its value.
        value: Payload,
    },
    /// The run ended: no entry of it follows.
    RunFinished {
        /// The run.
        run: RunId,
        /// The epoch of the incarnation that writes it.
        epoch: Epoch,
        /// How it ended.
        outcome: Recorded,
    },
    /// A task given up went to the system's dead-letter queue, or a letter already there was
    /// updated (a redrive that failed again): the letter `id` is now `letter`. Belongs to no run
    /// (the letter names its run, if it had one), so it is never fenced.
    DeadLettered {
        /// The letter's id, unique within the journal.
        id: u64,
        /// The letter, as the agent layer writes it.
        letter: Payload,
    },
    /// The dead letter `id` left the queue (removed, or redriven with success).
    DeadLetterRemoved {
        /// The letter's id.
        id: u64,
    },
}

impl Entry {
    /// The run the entry belongs to; `None` for the entries of the dead-letter queue, which
    /// belong to the system.
    pub fn run(&self) -> Option<&RunId> {
        match self {
            Self::RunStarted { run, .. }
            | Self::RunClaimed { run, .. }
            | Self::StepIntent { run, .. }
            | Self::StepCompleted { run, .. }
            | Self::StepDeadLettered { run, .. }
            | Self::SignalDelivered { run, .. }
            | Self::RunFinished { run, .. } => Some(run),
            Self::DeadLettered { .. } | Self::DeadLetterRemoved { .. } => None,
        }
    }

    /// The epoch an incarnation wrote it under, for the entries that are fenced.
    pub fn writer_epoch(&self) -> Option<Epoch> {
        match self {
            Self::StepIntent { epoch, .. }
            | Self::StepCompleted { epoch, .. }
            | Self::StepDeadLettered { epoch, .. }
            | Self::RunFinished { epoch, .. } => Some(*epoch),
            Self::RunStarted { .. }
            | Self::RunClaimed { .. }
            | Self::SignalDelivered { .. }
            | Self::DeadLettered { .. }
            | Self::DeadLetterRemoved { .. } => None,
        }
    }

    /// The entry's kind, for events and errors (`"step_completed"`).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::RunStarted { .. } => "run_started",
            Self::RunClaimed { .. } => "run_claimed",
            Self::StepIntent { .. } => "step_intent",
            Self::StepCompleted { .. } => "step_completed",
            Self::StepDeadLettered { .. } => "step_dead_lettered",
            Self::SignalDelivered { .. } => "signal_delivered",
            Self::RunFinished { .. } => "run_finished",
            Self::DeadLettered { .. } => "dead_lettered",
            Self::DeadLetterRemoved { .. } => "dead_letter_removed",
        }
    }
}
