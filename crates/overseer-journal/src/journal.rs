//! The journal: an index of runs in memory over a [`Storage`], and a writer thread that checks
//! every append against the journal's rules and commits appends in groups.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::writer::{Request, Writer};
use crate::{
    admit_entry, admit_run, decide_step, Effect, Entry, Epoch, Fingerprint, Index, JournalError,
    RunAdmission, RunHead, RunId, RunRecord, StepDecision, StepId, Storage,
};

/// The journal format this version reads and writes.
///
/// Version 1 is the format of the first release, dead-letter entries included: entry kinds
/// added before that release did not bump it (no released binary reads version 1 without
/// them). From the first release on, a new entry kind bumps it, so that an older binary refuses
/// a newer journal with [`JournalError::UnsupportedVersion`] instead of reading a record it
/// does not know as damage.
pub const FORMAT_VERSION: u32 = 1;

/// The position of a record in the journal: 0 for the first.
pub type Lsn = u64;

/// Whether an append waits for its fsync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Acknowledged once on disk (fsynced, with whatever else was committed at the same
    /// moment): for effects and model calls, whose loss costs money or happens twice.
    #[default]
    Sync,
    /// Acknowledged once written, before the fsync, which follows as soon as the writer is
    /// idle: a crash loses at most the appends since the last fsync.
    Async,
}

/// How a journal behaves.
///
/// ```
/// use overseer_journal::JournalConfig;
/// use std::time::Duration;
///
/// let config = JournalConfig::default()
///     .retention(Some(Duration::from_secs(7 * 24 * 3600)))
///     .max_group(64);
/// assert_eq!(config.max_group_size(), 64);
/// ```
#[derive(Debug, Clone)]
pub struct JournalConfig {
    retention: Option<Duration>,
    max_group: usize,
    queue: usize,
}

impl Default for JournalConfig {
    /// Finished runs answer for 24 hours (Stripe's minimum), up to 256 appends per commit, up to
    /// 4,096 appends waiting.
    fn default() -> Self {
        Self {
            retention: Some(Duration::from_secs(24 * 3600)),
            max_group: 256,
            queue: 4096,
        }
    }
}

impl JournalConfig {
    /// How long the outcome of a finished run answers a second ask of its id; `None`: for ever.
    /// Keep it longer than any caller retries.
    pub fn retention(mut self, retention: Option<Duration>) -> Self {
        self.retention = retention;
        self
    }

    /// The most appends the writer commits together (at least 1).
    pub fn max_group(mut self, appends: usize) -> Self {
        self.max_group = appends.max(1);
        self
    }

    /// How many appends may wait for the writer before `append` waits for room (at least 1).
    pub fn queue(mut self, appends: usize) -> Self {
        self.queue = appends.max(1);
        self
    }

    /// The retention set.
    pub fn retention_period(&self) -> Option<Duration> {
        self.retention
    }

    /// The largest group set.
    pub fn max_group_size(&self) -> usize {
        self.max_group
    }
}

/// What the journal found when it opened.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Opened {
    /// Records read.
    pub records: u64,
    /// Runs held (finished or not).
    pub runs: usize,
    /// Runs that have not finished: to be resumed.
    pub unfinished: Vec<RunId>,
    /// Whether a torn last record (a write cut short by a crash, never acknowledged) was found
    /// and dropped.
    pub dropped_torn_record: bool,
}

/// The journal of runs: cheap to clone, shared by every agent of a process.
///
/// Appends go to one writer thread, which checks each against the rules of
/// [`admit_entry`](crate::admit_entry) (epochs, one result per step, nothing after the end) and
/// commits whatever is waiting in one storage commit: many agents' appends share one fsync.
///
/// ```
/// use overseer_journal::{Durability, Entry, Journal, JournalConfig, MemStorage, Payload, RunId};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let (journal, opened) = Journal::open(MemStorage::new(), JournalConfig::default())?;
/// assert_eq!(opened.records, 0);
/// let run = RunId::new("r1")?;
/// let input = Payload::encode("question")?;
/// journal
///     .append(vec![Entry::RunStarted {
///         run: run.clone(),
///         agent: "root/a".into(),
///         fingerprint: input.fingerprint(),
///         input,
///         started_at_ms: 0,
///     }], Durability::Sync)
///     .await?;
/// let epoch = journal.claim(&run).await?;
/// assert_eq!(epoch, overseer_journal::Epoch::FIRST);
/// assert_eq!(journal.unfinished(), vec![run]);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Journal {
    shared: Arc<Shared>,
    requests: mpsc::Sender<Request>,
}

/// What the handles and the writer share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) index: Mutex<Index>,
    pub(crate) config: JournalConfig,
    /// Whether the storage is shared (PostgreSQL): its answers are awaited on tokio's blocking
    /// pool, so that a paused tokio clock (in tests) does not jump while a database answers.
    pub(crate) shared_storage: bool,
}

impl Shared {
    pub(crate) fn index(&self) -> MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Journal {
    /// Opens the journal held by `storage`: reads every record, drops a torn last one, builds
    /// the index of runs and starts the writer thread.
    ///
    /// # Errors
    ///
    /// [`JournalError::Storage`] when the storage cannot be read,
    /// [`UnsupportedVersion`](JournalError::UnsupportedVersion) for a journal of another format, and
    /// [`Corrupt`](JournalError::Corrupt) for a record other than the last that cannot be read
    /// or breaks the journal's rules: a damaged journal does not open, rather than lose runs.
    pub fn open(
        mut storage: impl Storage,
        config: JournalConfig,
    ) -> Result<(Self, Opened), JournalError> {
        let stored = storage.load()?;
        match stored.format_version {
            Some(FORMAT_VERSION) => {}
            Some(found) => {
                return Err(JournalError::UnsupportedVersion {
                    found,
                    supported: FORMAT_VERSION,
                })
            }
            None if stored.records.is_empty() => storage.initialize(FORMAT_VERSION)?,
            None => {
                return Err(JournalError::Corrupt {
                    position: 0,
                    reason: "records without a format version".into(),
                })
            }
        }
        let (index, records, torn_record) = replay_records(&stored.records, storage.shared())?;
        let dropped_torn_record = torn_record || stored.torn_tail;
        if dropped_torn_record {
            tracing::warn!(
                position = records,
                "journal: dropped a torn last record (a write cut short, never acknowledged)"
            );
            storage.truncate(records)?;
        }
        let opened = Opened {
            records,
            runs: index.len(),
            unfinished: index
                .unfinished()
                .into_iter()
                .map(|r| r.run.clone())
                .collect(),
            dropped_torn_record,
        };
        let shared = Arc::new(Shared {
            index: Mutex::new(index),
            config: config.clone(),
            shared_storage: storage.shared(),
        });
        let (requests, queue) = mpsc::channel(config.queue);
        Writer::spawn(Box::new(storage), Arc::clone(&shared), queue, records)?;
        Ok((Self { shared, requests }, opened))
    }

    /// Appends `entries` together (all or none), checked against the journal's rules, and
    /// returns the position of the last one once it is written as `durability` says.
    ///
    /// # Errors
    ///
    /// [`JournalError::Refused`] when an entry breaks a rule (nothing is written),
    /// [`Storage`](JournalError::Storage) when the commit failed (nothing was acknowledged),
    /// [`Failed`](JournalError::Failed) after an earlier failed commit, and
    /// [`Closed`](JournalError::Closed) when the writer has stopped.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future after its first poll does not withdraw the append: it is committed
    /// (or refused) all the same, and only its acknowledgement is lost.
    pub async fn append(
        &self,
        entries: Vec<Entry>,
        durability: Durability,
    ) -> Result<Lsn, JournalError> {
        let (ack, acked) = oneshot::channel();
        self.send(Request::Append {
            entries,
            sync: durability == Durability::Sync,
            ack,
        })
        .await?;
        self.answer(acked).await
    }

    /// Claims `run` for a new incarnation: the next epoch, which fences every older one.
    ///
    /// # Errors
    ///
    /// As [`append`](Self::append); [`Refused`](JournalError::Refused) for a run the journal
    /// does not hold or that has finished.
    pub async fn claim(&self, run: &RunId) -> Result<Epoch, JournalError> {
        let (ack, acked) = oneshot::channel();
        self.send(Request::Claim {
            run: run.clone(),
            ack,
        })
        .await?;
        self.answer(acked).await
    }

    /// Of a journal over a shared storage ([`Storage::shared`](crate::Storage::shared)): reads
    /// `run` again from the storage, so that [`admit_run`](Self::admit_run) sees a run another
    /// process started or finished. A run this process holds unfinished keeps its record, and
    /// gains the signals another process delivered to it since (so that its
    /// `wait_for` sees them when it is asked again); over a storage that is not shared, nothing
    /// is done.
    ///
    /// # Errors
    ///
    /// As [`append`](Self::append).
    pub async fn refresh(&self, run: &RunId) -> Result<(), JournalError> {
        if !self.shared.shared_storage {
            return Ok(());
        }
        let (ack, acked) = oneshot::channel();
        self.send(Request::Refresh {
            run: run.clone(),
            ack,
        })
        .await?;
        self.answer(acked).await
    }

    /// Whether the journal's storage is shared by several processes
    /// ([`Storage::shared`](crate::Storage::shared)).
    pub fn is_shared(&self) -> bool {
        self.shared.shared_storage
    }

    /// The writer's answer to a request.
    async fn answer<T: Send + 'static>(
        &self,
        acked: oneshot::Receiver<Result<T, JournalError>>,
    ) -> Result<T, JournalError> {
        if self.shared.shared_storage {
            // A database's answer takes real time: waited for on the blocking pool, which keeps
            // a paused tokio clock from jumping past it (the time an append takes is not idle).
            return match tokio::task::spawn_blocking(move || acked.blocking_recv()).await {
                Ok(Ok(answer)) => answer,
                _ => Err(JournalError::Closed),
            };
        }
        acked.await.map_err(|_| JournalError::Closed)?
    }

    /// Waits until everything appended so far is on disk.
    ///
    /// # Errors
    ///
    /// As [`append`](Self::append).
    pub async fn sync(&self) -> Result<(), JournalError> {
        let (ack, acked) = oneshot::channel();
        self.send(Request::Sync { ack }).await?;
        self.answer(acked).await
    }

    /// Makes everything appended so far durable, stops the writer and releases the storage (a
    /// file can be opened again once this returns). Every handle is closed: later calls fail
    /// with [`JournalError::Closed`].
    ///
    /// # Errors
    ///
    /// [`Failed`](JournalError::Failed) if a write had failed (what was acknowledged is on
    /// disk); [`Closed`](JournalError::Closed) if it was already closed.
    pub async fn close(&self) -> Result<(), JournalError> {
        let (ack, acked) = oneshot::channel();
        self.send(Request::Close { ack }).await?;
        self.answer(acked).await
    }

    async fn send(&self, request: Request) -> Result<(), JournalError> {
        self.requests
            .send(request)
            .await
            .map_err(|_| JournalError::Closed)
    }

    /// How many appends, claims and syncs wait for the writer.
    pub fn queued(&self) -> usize {
        self.requests.max_capacity() - self.requests.capacity()
    }

    /// Reads the record of `run` (`None`: the journal holds no such run) under the index's lock:
    /// keep `read` short.
    pub fn with_run<R>(&self, run: &RunId, read: impl FnOnce(Option<&RunRecord>) -> R) -> R {
        read(self.shared.index().run(run))
    }

    /// What to do with step `step` of `run` ([`decide_step`](crate::decide_step)).
    pub fn decide_step(
        &self,
        run: &RunId,
        step: &StepId,
        name: &str,
        effect: Effect,
    ) -> StepDecision {
        self.with_run(run, |record| {
            decide_step(run, step, name, effect, record.and_then(|r| r.step(step)))
        })
    }

    /// What to do with an ask of `run` whose input has fingerprint `asked`, at `now_ms`
    /// ([`admit_run`](crate::admit_run), with the configured retention).
    pub fn admit_run(&self, run: &RunId, asked: Fingerprint, now_ms: u64) -> RunAdmission {
        let retention = self.shared.config.retention_period();
        self.with_run(run, |record| admit_run(record, asked, now_ms, retention))
    }

    /// The dead letters the journal holds (journaled with [`Entry::DeadLettered`] and not
    /// removed since), by id: what a restarted process puts back in its dead-letter queue.
    pub fn dead_letters(&self) -> Vec<(u64, crate::Payload)> {
        let index = self.shared.index();
        index
            .dead_letters()
            .map(|(id, letter)| (id, letter.clone()))
            .collect()
    }

    /// The highest dead-letter id journaled, removed since or not (0 if none): a restarted
    /// process numbers its new letters after it.
    pub fn highest_dead_letter_id(&self) -> u64 {
        self.shared.index().highest_dead_letter_id()
    }

    /// Runs that have not finished, oldest first: what a restarted process resumes.
    pub fn unfinished(&self) -> Vec<RunId> {
        let index = self.shared.index();
        index
            .unfinished()
            .into_iter()
            .map(|r| r.run.clone())
            .collect()
    }
}

/// Decodes and checks every record, in order: the index they build, how many are kept, and
/// whether a torn last record was dropped.
///
/// With `shared` (the records of a shared storage), a run's first claim after its start may
/// be at any epoch: the epochs are the database's, which never go back, so a run started again
/// under its id after it finished goes on from its last epoch.
pub(crate) fn replay_records(
    records: &[Vec<u8>],
    shared: bool,
) -> Result<(Index, u64, bool), JournalError> {
    let mut index = Index::default();
    for (position, record) in records.iter().enumerate() {
        let is_last = position + 1 == records.len();
        let entry = match serde_json::from_slice::<Entry>(record) {
            Ok(entry) => entry,
            Err(_) if is_last => return Ok((index, position as u64, true)),
            Err(error) => {
                return Err(JournalError::Corrupt {
                    position: position as u64,
                    reason: error.to_string(),
                })
            }
        };
        if let Some(run) = entry.run() {
            let mut head = index.head(run);
            if let (true, Entry::RunClaimed { epoch, .. }, Some(open)) = (shared, &entry, head) {
                if open.epoch.is_none() && !open.finished {
                    head = Some(RunHead {
                        epoch: Some(Epoch(epoch.0.saturating_sub(1))).filter(|e| e.0 > 0),
                        finished: false,
                    });
                }
            }
            let completed = step_of(&entry)
                .is_some_and(|step| index.run(run).is_some_and(|r| r.is_completed(step)));
            admit_entry(head, &entry, completed).map_err(|refusal| JournalError::Corrupt {
                position: position as u64,
                reason: refusal.to_string(),
            })?;
        }
        index.apply(&entry);
    }
    Ok((index, records.len() as u64, false))
}

/// The step an entry names, if any.
pub(crate) fn step_of(entry: &Entry) -> Option<&StepId> {
    match entry {
        Entry::StepIntent { step, .. }
        | Entry::StepCompleted { step, .. }
        | Entry::StepDeadLettered { step, .. } => Some(step),
        _ => None,
    }
}
