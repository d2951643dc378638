//! What the journal knows of each run, folded from its entries: the index a replay reads.

use std::collections::{BTreeMap, HashMap};

use crate::{Effect, Entry, Epoch, Fingerprint, Payload, Recorded, RunHead, RunId, Spent, StepId};

/// One run as the journal holds it: its start, the epoch that holds it, each step's intent and
/// result, the signals delivered to it, and its outcome once it has finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRecord {
    /// The run.
    pub run: RunId,
    /// The supervision path of the agent the run was asked of.
    pub agent: String,
    /// The run's input, as first asked.
    pub input: Payload,
    /// The input's fingerprint.
    pub fingerprint: Fingerprint,
    /// When it started, in milliseconds since the Unix epoch.
    pub started_at_ms: u64,
    /// The epoch that holds the run (the last claimed), if any.
    pub epoch: Option<Epoch>,
    /// How the run ended, once it has.
    pub outcome: Option<Recorded>,
    steps: BTreeMap<StepId, StepRecord>,
    signals: HashMap<String, Payload>,
}

/// What the journal holds of one step.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StepRecord {
    /// The step's name, as first recorded.
    pub name: String,
    /// Its effect, as first recorded.
    pub effect: Effect,
    /// Its intent, when one was written: what was reserved for it.
    pub intent: Option<Spent>,
    /// Its result and what it spent, once it completed.
    pub completed: Option<(Recorded, Spent)>,
    /// Why it was given up, when it went to the dead letters.
    pub dead_lettered: Option<String>,
}

impl RunRecord {
    /// The record of a run that has just started (`entry` is its `RunStarted`).
    fn started(entry: &Entry) -> Option<Self> {
        let Entry::RunStarted {
            run,
            agent,
            input,
            fingerprint,
            started_at_ms,
        } = entry
        else {
            return None;
        };
        Some(Self {
            run: run.clone(),
            agent: agent.clone(),
            input: input.clone(),
            fingerprint: *fingerprint,
            started_at_ms: *started_at_ms,
            epoch: None,
            outcome: None,
            steps: BTreeMap::new(),
            signals: HashMap::new(),
        })
    }

    /// What an append is checked against.
    pub fn head(&self) -> RunHead {
        RunHead {
            epoch: self.epoch,
            finished: self.outcome.is_some(),
        }
    }

    /// Whether the run has finished.
    pub fn is_finished(&self) -> bool {
        self.outcome.is_some()
    }

    /// The journal's record of `step`, if it holds any.
    pub fn step(&self, step: &StepId) -> Option<&StepRecord> {
        self.steps.get(step)
    }

    /// Whether `step` has a result.
    pub fn is_completed(&self, step: &StepId) -> bool {
        self.steps
            .get(step)
            .is_some_and(|record| record.completed.is_some())
    }

    /// The steps recorded, in program order.
    pub fn steps(&self) -> impl Iterator<Item = (&StepId, &StepRecord)> {
        self.steps.iter()
    }

    /// The value of signal `name`, once delivered.
    pub fn signal(&self, name: &str) -> Option<&Payload> {
        self.signals.get(name)
    }

    /// What the steps with a result spent.
    pub fn spent(&self) -> Spent {
        self.steps
            .values()
            .filter_map(|record| record.completed.as_ref().map(|(_, spent)| *spent))
            .fold(Spent::NONE, |total, spent| total + spent)
    }

    /// Budget reserved by intents that have no result yet: after a crash it stays reserved
    /// until the step is replayed, reconciled or released.
    pub fn open_reservations(&self) -> Spent {
        self.steps
            .values()
            .filter(|record| record.completed.is_none() && record.dead_lettered.is_none())
            .filter_map(|record| record.intent)
            .fold(Spent::NONE, |total, reserved| total + reserved)
    }

    /// Folds `entry`, already admitted, into the record.
    fn apply(&mut self, entry: &Entry) {
        match entry {
            Entry::RunClaimed { epoch, .. } => self.epoch = Some(*epoch),
            Entry::StepIntent {
                step,
                name,
                effect,
                reserved,
                ..
            } => {
                let record = self.step_entry(step, name, *effect);
                record.intent = Some(*reserved);
            }
            Entry::StepCompleted {
                step,
                name,
                effect,
                outcome,
                spent,
                ..
            } => {
                let record = self.step_entry(step, name, *effect);
                record.completed = Some((outcome.clone(), *spent));
            }
            Entry::StepDeadLettered { step, reason, .. } => {
                if let Some(record) = self.steps.get_mut(step) {
                    record.dead_lettered = Some(reason.clone());
                }
            }
            Entry::SignalDelivered { name, value, .. } => {
                self.signals.insert(name.clone(), value.clone());
            }
            Entry::RunFinished { outcome, .. } => self.outcome = Some(outcome.clone()),
            Entry::RunStarted { .. }
            | Entry::DeadLettered { .. }
            | Entry::DeadLetterRemoved { .. } => {}
        }
    }

    fn step_entry(&mut self, step: &StepId, name: &str, effect: Effect) -> &mut StepRecord {
        self.steps
            .entry(step.clone())
            .or_insert_with(|| StepRecord {
                name: name.to_string(),
                effect,
                intent: None,
                completed: None,
                dead_lettered: None,
            })
    }
}

/// Every run of a journal, folded from its entries, and the dead letters it holds.
#[derive(Debug, Default, Clone)]
pub struct Index {
    runs: HashMap<RunId, RunRecord>,
    dead_letters: BTreeMap<u64, Payload>,
    /// The highest dead-letter id ever journaled, removed or not: ids are never reused.
    highest_dead_letter: u64,
}

impl Index {
    /// The record of `run`.
    pub fn run(&self, run: &RunId) -> Option<&RunRecord> {
        self.runs.get(run)
    }

    /// The head of `run`, for [`admit_entry`](crate::admit_entry).
    pub fn head(&self, run: &RunId) -> Option<RunHead> {
        self.runs.get(run).map(RunRecord::head)
    }

    /// Runs that have not finished, oldest first.
    pub fn unfinished(&self) -> Vec<&RunRecord> {
        let mut runs: Vec<_> = self.runs.values().filter(|r| !r.is_finished()).collect();
        runs.sort_by(|a, b| (a.started_at_ms, &a.run).cmp(&(b.started_at_ms, &b.run)));
        runs
    }

    /// How many runs the index holds.
    pub fn len(&self) -> usize {
        self.runs.len()
    }

    /// Whether the index holds no run.
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// The dead letters journaled and not removed, by id (lowest first).
    pub fn dead_letters(&self) -> impl Iterator<Item = (u64, &Payload)> {
        self.dead_letters.iter().map(|(id, letter)| (*id, letter))
    }

    /// The highest dead-letter id journaled, removed since or not (0 if none): a new letter
    /// takes a higher one.
    pub fn highest_dead_letter_id(&self) -> u64 {
        self.highest_dead_letter
    }

    /// Folds `entry`, already admitted by [`admit_entry`](crate::admit_entry), into its run (or
    /// into the dead letters).
    pub fn apply(&mut self, entry: &Entry) {
        match entry {
            Entry::DeadLettered { id, letter } => {
                self.highest_dead_letter = self.highest_dead_letter.max(*id);
                self.dead_letters.insert(*id, letter.clone());
            }
            Entry::DeadLetterRemoved { id } => {
                self.highest_dead_letter = self.highest_dead_letter.max(*id);
                self.dead_letters.remove(id);
            }
            _ => self.apply_to_run(entry),
        }
    }

    /// Puts `run`'s record as `record` (from a shared storage's records of it): `None` removes it.
    /// Adds to `run`'s record the signals `stored` (the run as its storage holds it) has and it
    /// lacks: signals another process delivered to a run this one holds. How many were added.
    pub(crate) fn merge_signals(&mut self, run: &RunId, stored: Option<&RunRecord>) -> usize {
        let (Some(record), Some(stored)) = (self.runs.get_mut(run), stored) else {
            return 0;
        };
        let mut added = 0;
        for (name, value) in &stored.signals {
            if !record.signals.contains_key(name) {
                record.signals.insert(name.clone(), value.clone());
                added += 1;
            }
        }
        added
    }

    pub(crate) fn put_run(&mut self, run: &RunId, record: Option<RunRecord>) {
        match record {
            Some(record) => {
                self.runs.insert(run.clone(), record);
            }
            None => {
                self.runs.remove(run);
            }
        }
    }

    fn apply_to_run(&mut self, entry: &Entry) {
        if let Some(record) = RunRecord::started(entry) {
            self.runs.insert(record.run.clone(), record);
        } else if let Some(record) = entry.run().and_then(|run| self.runs.get_mut(run)) {
            record.apply(entry);
        }
    }
}
