//! A worker: the loop a process runs to take runs from the shared queue, within its own
//! concurrency limit, and hand them back when it stops.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use overseer_journal::{Journal, Payload, RunId};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use crate::{PgStorage, PgStore};

/// A process's view of the shared queue: the database and the owner name its journal claims
/// runs under ([`PgStorage::queue`](crate::PgStorage::queue)).
#[derive(Debug, Clone)]
pub struct RunQueue {
    store: PgStore,
    owner: Arc<str>,
}

impl RunQueue {
    /// The queue of `store`'s database, for the process named `owner` (its journal's
    /// [`PgStorageOptions::owner`](crate::PgStorageOptions::owner)).
    pub fn new(store: PgStore, owner: &str) -> Self {
        Self {
            store,
            owner: Arc::from(owner),
        }
    }

    /// The owner name.
    pub fn owner(&self) -> &str {
        &self.owner
    }
}

/// A [`Worker`]'s settings.
#[derive(Debug, Clone, Copy)]
pub struct WorkerOptions {
    slots: usize,
    idle_poll: Duration,
}

impl Default for WorkerOptions {
    /// 8 runs at once; the queue looked at every 100 ms while there is room and nothing ends.
    fn default() -> Self {
        Self {
            slots: 8,
            idle_poll: Duration::from_millis(100),
        }
    }
}

impl WorkerOptions {
    /// How many runs this process runs at once (at least 1).
    pub fn slots(mut self, slots: usize) -> Self {
        self.slots = slots.max(1);
        self
    }

    /// How often the queue is looked at while there is room (a run ending looks at once).
    pub fn idle_poll(mut self, every: Duration) -> Self {
        self.idle_poll = every.max(Duration::from_millis(1));
        self
    }
}

/// What a worker did, so far or in all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerReport {
    /// Runs taken from the queue and given to the handler.
    pub taken: u64,
    /// Of those, the ones whose handler succeeded.
    pub succeeded: u64,
    /// Of those, the ones whose handler failed (a fenced run's among them: another process
    /// took it over, and this one stood down).
    pub failed: u64,
    /// Runs still running when the worker stopped, cut off and handed back.
    pub handed_back: u64,
    /// Runs this process held that another process signalled, given to the handler again.
    pub resumed: u64,
    /// The most runs it ran at once (never above its slots).
    pub most_at_once: usize,
}

#[derive(Debug, Default)]
struct Counts {
    taken: AtomicU64,
    succeeded: AtomicU64,
    failed: AtomicU64,
    handed_back: AtomicU64,
    resumed: AtomicU64,
    running: AtomicUsize,
    most_at_once: AtomicUsize,
}

impl Counts {
    fn report(&self) -> WorkerReport {
        WorkerReport {
            taken: self.taken.load(Ordering::Relaxed),
            succeeded: self.succeeded.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            handed_back: self.handed_back.load(Ordering::Relaxed),
            resumed: self.resumed.load(Ordering::Relaxed),
            most_at_once: self.most_at_once.load(Ordering::Relaxed),
        }
    }
}

/// A process's share of the fleet's work: takes runs from the shared queue
/// ([`PgStore::claimable_runs`]: queued, handed back, or whose owner's lease ran out), at most
/// `slots` at once, and gives each to a handler with its run id and its journaled input. The
/// handler runs the run, usually as `agent.ask_run(run, input.decode()?)`: the claim inside it
/// takes the run at the next epoch and replays what earlier owners recorded.
///
/// What it relies on: the journal's storage (a [`PgStorage`](crate::PgStorage)) renews the
/// held runs' leases by its heartbeat, and refuses the writes of a run another process has
/// taken over (the handler's ask then fails: this process stands down from that run, and the
/// worker counts it as failed). A run this process holds that another process signals (a run
/// waiting in `wait_for`, say: its ask ended, the run stays held here) is seen at the next look
/// at the queue ([`PgStore::signalled_runs`]): the worker refreshes it (its journal gains the
/// signal) and gives it to the handler again, which resumes it. [`stop`](Self::stop) stops
/// taking runs, lets the running ones end within a grace period, cuts off the rest, and closes
/// the journal, which hands every held run back to the queue at once.
///
/// ```no_run
/// use std::time::Duration;
///
/// use overseer_journal::{Journal, JournalConfig};
/// use overseer_postgres::{PgStorage, PgStorageOptions, Worker, WorkerOptions};
///
/// # async fn run(url: &str) -> Result<(), Box<dyn std::error::Error>> {
/// let storage = PgStorage::open(url, PgStorageOptions::default().owner("machine-a"))?;
/// let queue = storage.queue();
/// let (journal, _) = Journal::open(storage, JournalConfig::default())?;
/// // ... a `System` over `journal`, and `agent`, a durable agent's `AgentRef` ...
/// let worker = Worker::start(
///     journal,
///     queue,
///     WorkerOptions::default().slots(4),
///     move |run, input| async move {
///         let task: u32 = input.decode()?;
///         // agent.ask_run(run, task).await?;
///         let _ = (run, task);
///         Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
///     },
/// );
/// // ... until asked to stop:
/// let report = worker.stop(Duration::from_secs(5)).await;
/// println!("{} runs taken, {} handed back", report.taken, report.handed_back);
/// # Ok(())
/// # }
/// ```
pub struct Worker {
    journal: Journal,
    counts: Arc<Counts>,
    stop: watch::Sender<Option<Duration>>,
    taking: tokio::task::JoinHandle<()>,
}

impl fmt::Debug for Worker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Worker")
            .field("report", &self.counts.report())
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// Starts taking runs from `queue` (that of `journal`'s [`PgStorage`](crate::PgStorage)),
    /// each given to `handler`. Spawns on the current tokio runtime.
    pub fn start<H, F, E>(
        journal: Journal,
        queue: RunQueue,
        options: WorkerOptions,
        handler: H,
    ) -> Self
    where
        H: Fn(RunId, Payload) -> F + Send + Sync + 'static,
        F: Future<Output = Result<(), E>> + Send + 'static,
        E: fmt::Display + Send + 'static,
    {
        let counts = Arc::new(Counts::default());
        let (stop, stopping) = watch::channel(None);
        let taker = Taker {
            journal: journal.clone(),
            queue,
            options,
            handler: Arc::new(handler),
            counts: Arc::clone(&counts),
            slots: Arc::new(Semaphore::new(options.slots)),
            taken: Arc::new(Mutex::new(HashSet::new())),
            signals_seen: Mutex::new(HashMap::new()),
            to_resume: Mutex::new(HashSet::new()),
        };
        let taking = tokio::spawn(taker.run(stopping));
        Self {
            journal,
            counts,
            stop,
            taking,
        }
    }

    /// What it has done so far.
    pub fn report(&self) -> WorkerReport {
        self.counts.report()
    }

    /// Stops politely: takes no more runs, waits up to `grace` for the running ones to end,
    /// cuts off the rest, and closes the journal, which hands every run this process holds
    /// back to the queue at once (another process takes them without waiting for a lease to
    /// run out). Shut the system down after.
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: dropped midway, the runs may be left to their leases.
    pub async fn stop(self, grace: Duration) -> WorkerReport {
        self.stop.send_replace(Some(grace));
        if let Err(error) = self.taking.await {
            tracing::error!(%error, "worker: the taking loop ended abnormally");
        }
        if let Err(error) = self.journal.close().await {
            tracing::warn!(%error, "worker: closing the journal failed; runs are left to their leases");
        }
        self.counts.report()
    }
}

/// The worker's loop and what it needs.
struct Taker<H> {
    journal: Journal,
    queue: RunQueue,
    options: WorkerOptions,
    handler: Arc<H>,
    counts: Arc<Counts>,
    slots: Arc<Semaphore>,
    /// Runs given to the handler and not ended: not taken twice while their claim is on its way.
    taken: Arc<Mutex<HashSet<RunId>>>,
    /// How many signal batches each held run had when last looked at.
    signals_seen: Mutex<HashMap<RunId, u64>>,
    /// Held runs signalled while their handler ran: given to it again once it ends.
    to_resume: Mutex<HashSet<RunId>>,
}

impl<H, F, E> Taker<H>
where
    H: Fn(RunId, Payload) -> F + Send + Sync + 'static,
    F: Future<Output = Result<(), E>> + Send + 'static,
    E: fmt::Display + Send + 'static,
{
    async fn run(self, mut stopping: watch::Receiver<Option<Duration>>) {
        let mut running = JoinSet::new();
        loop {
            if stopping.borrow().is_some() {
                break;
            }
            self.resume_signalled(&mut running).await;
            self.take_what_fits(&mut running).await;
            tokio::select! {
                _ = stopping.changed() => {}
                Some(_) = running.join_next(), if !running.is_empty() => {}
                () = tokio::time::sleep(self.options.idle_poll) => {}
            }
        }
        let grace = stopping.borrow().unwrap_or_default();
        let drained = tokio::time::timeout(grace, async {
            while running.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            let cut = running.len() as u64;
            self.counts.handed_back.fetch_add(cut, Ordering::Relaxed);
            tracing::info!(
                runs = cut,
                "worker: stopping; cutting off the runs still running"
            );
            running.shutdown().await;
        }
    }

    /// Takes as many runs as there are free slots.
    async fn take_what_fits(&self, running: &mut JoinSet<()>) {
        let free = self.slots.available_permits();
        if free == 0 {
            return;
        }
        let runs = match self.queue.store.claimable_runs(free).await {
            Ok(runs) => runs,
            Err(error) => {
                tracing::warn!(%error, "worker: could not look at the queue");
                return;
            }
        };
        for run in runs {
            self.take(run, running).await;
        }
    }

    /// Gives again to the handler the runs this process holds that were signalled since it last
    /// looked (once their handler has ended, for those still running).
    async fn resume_signalled(&self, running: &mut JoinSet<()>) {
        let signalled = match self.queue.store.signalled_runs(&self.queue.owner).await {
            Ok(signalled) => signalled,
            Err(error) => {
                tracing::warn!(%error, "worker: could not look for signalled runs");
                return;
            }
        };
        {
            let mut seen = lock(&self.signals_seen);
            // Runs no longer held here (finished, taken over) are forgotten: the map stays as
            // small as what this process holds.
            seen.retain(|run, _| signalled.iter().any(|(held, _)| held == run));
            for (run, count) in signalled {
                let before = seen.insert(run.clone(), count);
                if before.is_none_or(|before| before < count) {
                    lock(&self.to_resume).insert(run);
                }
            }
        }
        let due: Vec<RunId> = {
            let taken = lock(&self.taken);
            lock(&self.to_resume)
                .iter()
                .filter(|run| !taken.contains(*run))
                .cloned()
                .collect()
        };
        for run in due {
            if self.take(run.clone(), running).await {
                lock(&self.to_resume).remove(&run);
                self.counts.resumed.fetch_add(1, Ordering::Relaxed);
                tracing::info!(run = %run, "worker: a held run was signalled; resuming it");
            }
        }
    }

    /// Gives `run` to the handler, if a slot is free and it is not being taken already: whether
    /// it did.
    async fn take(&self, run: RunId, running: &mut JoinSet<()>) -> bool {
        let Ok(slot) = Arc::clone(&self.slots).try_acquire_owned() else {
            return false;
        };
        if !lock(&self.taken).insert(run.clone()) {
            return false;
        }
        let input = match self.input_of(&run).await {
            Some(input) => input,
            None => {
                lock(&self.taken).remove(&run);
                return false;
            }
        };
        self.counts.taken.fetch_add(1, Ordering::Relaxed);
        let now = self.counts.running.fetch_add(1, Ordering::Relaxed) + 1;
        self.counts.most_at_once.fetch_max(now, Ordering::Relaxed);
        let (handler, counts, taken) = (
            Arc::clone(&self.handler),
            Arc::clone(&self.counts),
            Arc::clone(&self.taken),
        );
        running.spawn(async move {
            let _slot = slot;
            let _done = Done {
                run: run.clone(),
                counts: Arc::clone(&counts),
                taken,
            };
            match handler(run.clone(), input).await {
                Ok(()) => {
                    counts.succeeded.fetch_add(1, Ordering::Relaxed);
                }
                Err(error) => {
                    counts.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(run = %run, %error, "worker: the run's handler failed");
                }
            }
        });
        true
    }

    /// The journaled input of `run`, read again from the database; `None` when it cannot be
    /// (then it is left in the queue).
    async fn input_of(&self, run: &RunId) -> Option<Payload> {
        if let Err(error) = self.journal.refresh(run).await {
            tracing::warn!(run = %run, %error, "worker: could not read a run from the queue");
            return None;
        }
        self.journal
            .with_run(run, |record| record.map(|record| record.input.clone()))
    }
}

/// Marks a run ended (or cut off) when its task ends, whichever way.
struct Done {
    run: RunId,
    counts: Arc<Counts>,
    taken: Arc<Mutex<HashSet<RunId>>>,
}

impl Drop for Done {
    fn drop(&mut self) {
        self.counts.running.fetch_sub(1, Ordering::Relaxed);
        lock(&self.taken).remove(&self.run);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl PgStorage {
    /// This storage's view of the shared queue (its database and owner name), for a
    /// [`Worker`]: take it before the storage goes into its `Journal`.
    pub fn queue(&self) -> RunQueue {
        RunQueue::new(self.store().clone(), self.options().owner_name())
    }
}
