//! The journal on PostgreSQL: a shared [`Storage`] for `overseer-journal`'s [`Journal`], so
//! that a durable run's records live in the database every process opens.
//!
//! [`Journal`]: overseer_journal::Journal

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use overseer_journal::{
    CrashPlan, Entry, Epoch, RunBatch, RunId, SharedClaim, Storage, StorageError, Stored,
    FORMAT_VERSION,
};

use crate::shared::Batch;
use crate::{ClaimDecision, PgJournalError, PgOptions, PgStore};

/// How a [`PgStorage`] takes part in the fleet.
#[derive(Debug, Clone)]
pub struct PgStorageOptions {
    owner: String,
    lease: Duration,
    heartbeat: Option<Duration>,
    pg: PgOptions,
}

impl Default for PgStorageOptions {
    /// Owner `process-<pid>`, a lease of 30 s renewed every 10 s, [`PgOptions::default`].
    fn default() -> Self {
        Self {
            owner: format!("process-{}", std::process::id()),
            lease: Duration::from_secs(30),
            heartbeat: None,
            pg: PgOptions::default(),
        }
    }
}

impl PgStorageOptions {
    /// The name this process claims runs under: unique in the fleet, and the same when the
    /// process restarts on the same machine (it then takes its own runs back at once, without
    /// waiting for their leases).
    pub fn owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = owner.into();
        self
    }

    /// How long a claim holds a run without a renewal (at least 1 ms; default 30 s): a dead
    /// process's runs are taken up by another once it has run out.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Duration::from_millis(1));
        self
    }

    /// How often the held runs' leases are renewed (default: a third of the lease).
    pub fn heartbeat(mut self, every: Duration) -> Self {
        self.heartbeat = Some(every.max(Duration::from_millis(1)));
        self
    }

    /// The connection settings.
    pub fn pg(mut self, options: PgOptions) -> Self {
        self.pg = options;
        self
    }

    /// The owner name set.
    pub fn owner_name(&self) -> &str {
        &self.owner
    }

    /// The lease set.
    pub fn lease_period(&self) -> Duration {
        self.lease
    }

    fn heartbeat_period(&self) -> Duration {
        self.heartbeat.unwrap_or(self.lease / 3)
    }
}

/// The runs a storage holds, by epoch: what its heartbeat renews and its close hands back.
type Held = Arc<Mutex<HashMap<RunId, Epoch>>>;

fn lock(held: &Held) -> MutexGuard<'_, HashMap<RunId, Epoch>> {
    held.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A journal [`Storage`] in a shared PostgreSQL database ([`Storage::shared`]): open a
/// [`Journal`](overseer_journal::Journal) over it and durable runs live in the database.
///
/// - at open, the journal reads only what this process may take up: the dead letters, and the
///   unfinished runs nobody else holds under a live lease;
/// - a claim ([`Journal::claim`](overseer_journal::Journal::claim)) is the database's claim
///   (the next owner epoch, under a lease, the claim's record journaled in the same
///   transaction), and loads the run's records as stored;
/// - each group commit writes one transaction per run, fenced by the writer's epoch: a zombie's
///   records are refused ([`Refusal::Stale`](overseer_journal::Refusal::Stale)) and nothing of
///   them is stored;
/// - a heartbeat task renews the held runs' leases; a run whose renewal is refused is dropped
///   (its next write is refused too);
/// - [`Journal::close`](overseer_journal::Journal::close) hands the held runs back at once.
///
/// The database is driven by a small runtime of the storage's own (one thread), so that the
/// journal's writer thread and a caller on a paused tokio clock both wait on it safely.
pub struct PgStorage {
    store: PgStore,
    options: PgStorageOptions,
    url: String,
    runtime: Option<tokio::runtime::Runtime>,
    held: Held,
    heartbeat: Option<tokio::task::JoinHandle<()>>,
    crash: Option<CrashPlan>,
    /// Records the database held at open plus those appended since (for crash plans).
    written: u64,
    crashed: bool,
}

impl std::fmt::Debug for PgStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStorage")
            .field("owner", &self.options.owner)
            .field("lease", &self.options.lease)
            .field("held", &lock(&self.held).len())
            .field("crashed", &self.crashed)
            .finish_non_exhaustive()
    }
}

impl PgStorage {
    /// Connects to the database at `url` and migrates it; may be called from anywhere (it
    /// blocks the calling thread while it connects, within the connect timeout).
    ///
    /// # Errors
    ///
    /// As [`PgStore::open`]; [`Pool`](PgJournalError::Pool) when the storage's runtime cannot
    /// start.
    pub fn open(url: &str, options: PgStorageOptions) -> Result<Self, PgJournalError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("overseer-postgres")
            .enable_all()
            .build()
            .map_err(|e| PgJournalError::Pool {
                message: format!("starting the storage's runtime: {e}"),
            })?;
        let pg = options.pg.clone();
        let owned_url = url.to_string();
        let store = wait(&runtime, async move { PgStore::open(&owned_url, pg).await })
            .map_err(|message| PgJournalError::Pool { message })??;
        let written = wait(&runtime, {
            let store = store.clone();
            async move { store.records().await }
        })
        .map_err(|message| PgJournalError::Pool { message })??;
        let held = Held::default();
        let heartbeat = runtime.spawn(heartbeat(
            store.clone(),
            Arc::clone(&held),
            options.lease,
            options.heartbeat_period(),
        ));
        Ok(Self {
            store,
            options,
            url: url.to_string(),
            runtime: Some(runtime),
            held,
            heartbeat: Some(heartbeat),
            crash: None,
            written,
            crashed: false,
        })
    }

    /// The same storage, "crashing" as `plan` says, as [`MemStorage`](overseer_journal::MemStorage)
    /// does (for tests): once the database holds the plan's number of records, the write that
    /// would go past stores the records up to it and fails, and so does every later one. A
    /// database never tears a record: a torn plan stops at the same place.
    pub fn crash(mut self, plan: CrashPlan) -> Self {
        self.crash = Some(plan);
        self
    }

    /// A new storage over the same database with the same options, without crash plan: what
    /// the same process, restarted, opens.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open).
    pub fn reopen(&self) -> Result<Self, PgJournalError> {
        Self::open(&self.url, self.options.clone())
    }

    /// The store beneath (for the work queue, budgets, and tests).
    pub fn store(&self) -> &PgStore {
        &self.store
    }

    /// The options it was opened with.
    pub fn options(&self) -> &PgStorageOptions {
        &self.options
    }

    /// The runs this storage holds claimed and unfinished, with their epochs.
    pub fn held(&self) -> Vec<(RunId, Epoch)> {
        let mut held: Vec<_> = lock(&self.held)
            .iter()
            .map(|(run, epoch)| (run.clone(), *epoch))
            .collect();
        held.sort();
        held
    }

    /// How many records the database holds (journal records and dead letters).
    ///
    /// # Errors
    ///
    /// When it cannot be read.
    pub fn len(&self) -> Result<u64, PgJournalError> {
        let store = self.store.clone();
        self.wait(async move { store.records().await })
            .map_err(|message| PgJournalError::Pool { message })?
    }

    /// Every record the database holds ([`PgStore::all_records`]), read on this storage's
    /// runtime.
    ///
    /// # Errors
    ///
    /// When it cannot be read.
    pub fn all_records(&self) -> Result<Vec<Vec<u8>>, PgJournalError> {
        let store = self.store.clone();
        self.wait(async move { store.all_records().await })
            .map_err(|message| PgJournalError::Pool { message })?
    }

    /// Whether the database holds no record.
    ///
    /// # Errors
    ///
    /// When it cannot be read.
    pub fn is_empty(&self) -> Result<bool, PgJournalError> {
        self.len().map(|n| n == 0)
    }

    fn wait<T: Send + 'static>(
        &self,
        work: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, String> {
        match &self.runtime {
            Some(runtime) => wait(runtime, work),
            None => Err("the storage's runtime has stopped".into()),
        }
    }

    /// How many of `wanted` records fit before the crash plan's limit (`None`: no limit).
    fn room(&self, wanted: u64) -> Option<u64> {
        let limit = match self.crash? {
            CrashPlan::AfterRecords(limit) | CrashPlan::TornAfterRecords(limit) => limit,
            _ => return None,
        };
        (self.written + wanted > limit).then(|| limit.saturating_sub(self.written))
    }

    fn crashed(&mut self) -> StorageError {
        self.crashed = true;
        StorageError::Crashed {
            records: self.written,
        }
    }

    fn append_one(&mut self, batch: &RunBatch) -> Result<(), StorageError> {
        if self.crashed {
            return Err(self.crashed());
        }
        let wanted = (batch.records.len() + batch.letters.len()) as u64;
        let room = self.room(wanted);
        let (records, letters, finishes) = match room {
            None => (
                batch.records.clone(),
                batch.letters.clone(),
                batch.finishes.clone(),
            ),
            Some(room) => {
                let room = usize::try_from(room).unwrap_or(usize::MAX);
                let records: Vec<_> = batch.records.iter().take(room).cloned().collect();
                let letters: Vec<_> = batch
                    .letters
                    .iter()
                    .take(room.saturating_sub(records.len()))
                    .cloned()
                    .collect();
                // The outcome only if its record made it.
                let finishes = batch
                    .finishes
                    .clone()
                    .filter(|outcome| records.last() == Some(outcome));
                (records, letters, finishes)
            }
        };
        if room.is_none() || !(records.is_empty() && letters.is_empty()) {
            let store = self.store.clone();
            let run = batch.run.clone();
            let (epoch, starts) = (batch.epoch, batch.starts);
            let stored = (records.len() + letters.len()) as u64;
            let result = self
                .wait(async move {
                    store
                        .append_batch(Batch {
                            run: run.as_ref(),
                            epoch,
                            starts,
                            finishes: finishes.as_deref(),
                            records: &records,
                            letters: &letters,
                        })
                        .await
                })
                .map_err(|message| StorageError::Engine {
                    operation: "append a run's batch",
                    message,
                })?;
            match result {
                Ok(()) => self.written += stored,
                Err(error) => {
                    if let (
                        Some(run),
                        PgJournalError::Fenced { .. } | PgJournalError::Finished { .. },
                    ) = (&batch.run, &error)
                    {
                        lock(&self.held).remove(run);
                    }
                    return Err(storage_error("append a run's batch", error));
                }
            }
        }
        if room.is_some() {
            return Err(self.crashed());
        }
        if let (Some(run), Some(_)) = (&batch.run, &batch.finishes) {
            lock(&self.held).remove(run);
        }
        Ok(())
    }
}

impl Drop for PgStorage {
    fn drop(&mut self) {
        if let Some(heartbeat) = self.heartbeat.take() {
            heartbeat.abort();
        }
        if let Some(runtime) = self.runtime.take() {
            // Dropping a runtime blocks; in an async context that panics: shut down in the
            // background instead (the connections are closed as their tasks end).
            runtime.shutdown_background();
        }
    }
}

impl Storage for PgStorage {
    fn load(&mut self) -> Result<Stored, StorageError> {
        let store = self.store.clone();
        let owner = self.options.owner.clone();
        let records = self
            .wait(async move { store.load_claimable(&owner).await })
            .map_err(|message| StorageError::Engine {
                operation: "load the claimable runs",
                message,
            })?
            .map_err(|e| storage_error("load the claimable runs", e))?;
        Ok(Stored {
            format_version: Some(FORMAT_VERSION),
            records,
            torn_tail: false,
        })
    }

    fn initialize(&mut self, _format_version: u32) -> Result<(), StorageError> {
        Ok(())
    }

    fn append(&mut self, records: &[Vec<u8>], _sync: bool) -> Result<(), StorageError> {
        Err(StorageError::Engine {
            operation: "append records",
            message: format!(
                "a shared storage appends one batch per run ({} records)",
                records.len()
            ),
        })
    }

    fn truncate(&mut self, _keep: u64) -> Result<(), StorageError> {
        // A database commit is whole: there is never a torn record to drop.
        Ok(())
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        if self.crashed {
            return Err(self.crashed());
        }
        // Every commit is durable (`synchronous_commit` on) before it is acknowledged.
        Ok(())
    }

    fn shared(&self) -> bool {
        true
    }

    fn claim_run(&mut self, run: &RunId) -> Result<SharedClaim, StorageError> {
        if self.crashed || self.room(1) == Some(0) {
            return Err(self.crashed());
        }
        let store = self.store.clone();
        let owner = self.options.owner.clone();
        let lease = self.options.lease;
        let claimed = run.clone();
        let result = self
            .wait(async move {
                let record = |epoch: Epoch| {
                    serde_json::to_vec(&Entry::RunClaimed {
                        run: claimed.clone(),
                        epoch,
                    })
                    .unwrap_or_default()
                };
                store
                    .claim_recording(&claimed, &owner, lease, Some(&record))
                    .await
            })
            .map_err(|message| StorageError::Engine {
                operation: "claim a run",
                message,
            })?
            .map_err(|e| storage_error("claim a run", e))?;
        match result {
            (ClaimDecision::Claimed { epoch }, records) => {
                self.written += 1;
                lock(&self.held).insert(run.clone(), epoch);
                Ok(SharedClaim::Claimed { epoch, records })
            }
            (ClaimDecision::Finished, records) => Ok(SharedClaim::Finished { records }),
            (ClaimDecision::Busy { owner, remaining }, _) => {
                Ok(SharedClaim::Held { owner, remaining })
            }
        }
    }

    fn append_runs(&mut self, batches: &[RunBatch]) -> Vec<Result<(), StorageError>> {
        if self.crash.is_some() || batches.len() == 1 {
            return batches.iter().map(|batch| self.append_one(batch)).collect();
        }
        // Without a crash plan, the runs' transactions go to the database together, each on a
        // connection of its own.
        let store = self.store.clone();
        let owned: Vec<RunBatch> = batches.to_vec();
        let results = self.wait(async move {
            let mut tasks = tokio::task::JoinSet::new();
            for (at, batch) in owned.into_iter().enumerate() {
                let store = store.clone();
                tasks.spawn(async move {
                    let result = store
                        .append_batch(Batch {
                            run: batch.run.as_ref(),
                            epoch: batch.epoch,
                            starts: batch.starts,
                            finishes: batch.finishes.as_deref(),
                            records: &batch.records,
                            letters: &batch.letters,
                        })
                        .await;
                    (at, result)
                });
            }
            let mut results: Vec<Option<Result<(), PgJournalError>>> = Vec::new();
            while let Some(joined) = tasks.join_next().await {
                if let Ok((at, result)) = joined {
                    if results.len() <= at {
                        results.resize_with(at + 1, || None);
                    }
                    results[at] = Some(result);
                }
            }
            results
        });
        let results = match results {
            Ok(results) => results,
            Err(message) => {
                return batches
                    .iter()
                    .map(|_| {
                        Err(StorageError::Engine {
                            operation: "append a run's batch",
                            message: message.clone(),
                        })
                    })
                    .collect()
            }
        };
        batches
            .iter()
            .enumerate()
            .map(
                |(at, batch)| match results.get(at).and_then(Option::as_ref) {
                    Some(Ok(())) => {
                        self.written += (batch.records.len() + batch.letters.len()) as u64;
                        if let (Some(run), Some(_)) = (&batch.run, &batch.finishes) {
                            lock(&self.held).remove(run);
                        }
                        Ok(())
                    }
                    Some(Err(error)) => {
                        if let (
                            Some(run),
                            PgJournalError::Fenced { .. } | PgJournalError::Finished { .. },
                        ) = (&batch.run, error)
                        {
                            lock(&self.held).remove(run);
                        }
                        Err(storage_error_ref("append a run's batch", error))
                    }
                    None => Err(StorageError::Engine {
                        operation: "append a run's batch",
                        message: "the append's task ended without an answer".into(),
                    }),
                },
            )
            .collect()
    }

    fn load_run(&mut self, run: &RunId) -> Result<Option<Vec<Vec<u8>>>, StorageError> {
        let store = self.store.clone();
        let run = run.clone();
        self.wait(async move { store.load_existing(&run).await })
            .map_err(|message| StorageError::Engine {
                operation: "load a run",
                message,
            })?
            .map_err(|e| storage_error("load a run", e))
    }

    fn release(&mut self) -> Result<(), StorageError> {
        if let Some(heartbeat) = self.heartbeat.take() {
            heartbeat.abort();
        }
        let held: Vec<(RunId, Epoch)> = lock(&self.held).drain().collect();
        let store = self.store.clone();
        let handed = self
            .wait(async move {
                let mut failed = Vec::new();
                for (run, epoch) in held {
                    match store.hand_back(&run, epoch).await {
                        Ok(())
                        | Err(PgJournalError::Fenced { .. })
                        | Err(PgJournalError::Finished { .. }) => {}
                        Err(error) => failed.push(format!("{run}: {error}")),
                    }
                }
                failed
            })
            .map_err(|message| StorageError::Engine {
                operation: "hand runs back",
                message,
            })?;
        if handed.is_empty() {
            return Ok(());
        }
        Err(StorageError::Engine {
            operation: "hand runs back",
            message: handed.join("; "),
        })
    }
}

/// Renews the leases of the `held` runs every `every`, for as long as the storage lives; a run
/// whose renewal is refused (fenced, finished) is dropped from `held`.
async fn heartbeat(store: PgStore, held: Held, lease: Duration, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let runs: Vec<(RunId, Epoch)> = lock(&held)
            .iter()
            .map(|(run, epoch)| (run.clone(), *epoch))
            .collect();
        for (run, epoch) in runs {
            match store.renew(&run, epoch, lease).await {
                Ok(()) => {}
                Err(PgJournalError::Fenced { .. }) | Err(PgJournalError::Finished { .. }) => {
                    tracing::warn!(run = %run, epoch = %epoch, "postgres journal: lease lost; the run is no longer held");
                    let mut held = lock(&held);
                    if held.get(&run) == Some(&epoch) {
                        held.remove(&run);
                    }
                }
                Err(error) => {
                    tracing::warn!(run = %run, %error, "postgres journal: a lease renewal failed; retried at the next beat");
                }
            }
        }
    }
}

/// Runs `work` on `runtime` and waits for it on the calling thread, whatever that thread is
/// (the journal's writer thread, or a caller's async context: no `block_on`).
fn wait<T: Send + 'static>(
    runtime: &tokio::runtime::Runtime,
    work: impl Future<Output = T> + Send + 'static,
) -> Result<T, String> {
    let (done, answer) = std::sync::mpsc::sync_channel(1);
    runtime.spawn(async move {
        let _ = done.send(work.await);
    });
    answer
        .recv()
        .map_err(|_| "the storage's runtime stopped before answering".to_string())
}

/// A database error as the journal storage's: a fenced write as [`StorageError::Fenced`].
fn storage_error(operation: &'static str, error: PgJournalError) -> StorageError {
    storage_error_ref(operation, &error)
}

fn storage_error_ref(operation: &'static str, error: &PgJournalError) -> StorageError {
    match error {
        PgJournalError::Fenced {
            run,
            writer,
            current,
        } => StorageError::Fenced {
            run: run.clone(),
            writer: *writer,
            holder: *current,
        },
        other => StorageError::Engine {
            operation,
            message: other.to_string(),
        },
    }
}
