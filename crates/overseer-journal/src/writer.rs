//! The journal's writer: one thread that owns the storage, checks appends in the order they
//! arrive, and commits every append waiting at that moment in one storage commit (group commit).
//!
//! The index seen by readers changes only after a commit: a reader never sees an entry the
//! storage has not taken. A failed commit fails every append of its group (none was
//! acknowledged) and every later one: after a failed write the journal must be reopened.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::journal::{replay_records, step_of, Lsn, Shared};
use crate::{
    admit_entry, Entry, Epoch, Index, JournalError, Refusal, RunBatch, RunHead, RunId, SharedClaim,
    StepId, Storage, StorageError,
};

/// What a journal handle asks of the writer.
#[derive(Debug)]
pub(crate) enum Request {
    /// Append entries, all or none.
    Append {
        entries: Vec<Entry>,
        sync: bool,
        ack: oneshot::Sender<Result<Lsn, JournalError>>,
    },
    /// Claim the next epoch of a run.
    Claim {
        run: RunId,
        ack: oneshot::Sender<Result<Epoch, JournalError>>,
    },
    /// Read a run again from a shared storage (another process may have written it).
    Refresh {
        run: RunId,
        ack: oneshot::Sender<Result<(), JournalError>>,
    },
    /// Make everything so far durable.
    Sync {
        ack: oneshot::Sender<Result<(), JournalError>>,
    },
    /// Make everything so far durable, release the storage and stop.
    Close {
        ack: oneshot::Sender<Result<(), JournalError>>,
    },
}

/// How an admitted request is answered once its group is committed.
enum Answer {
    Appended(oneshot::Sender<Result<Lsn, JournalError>>),
    Claimed(oneshot::Sender<Result<Epoch, JournalError>>, Epoch),
    Synced(oneshot::Sender<Result<(), JournalError>>),
}

impl Answer {
    // A caller that stopped waiting dropped its receiver: nothing to tell it, so the results
    // of `send` are ignored.
    fn succeed(self, last: Lsn) {
        match self {
            Self::Appended(ack) => drop(ack.send(Ok(last))),
            Self::Claimed(ack, epoch) => drop(ack.send(Ok(epoch))),
            Self::Synced(ack) => drop(ack.send(Ok(()))),
        }
    }

    fn fail(self, error: JournalError) {
        match self {
            Self::Appended(ack) => drop(ack.send(Err(error))),
            Self::Claimed(ack, _) => drop(ack.send(Err(error))),
            Self::Synced(ack) => drop(ack.send(Err(error))),
        }
    }
}

pub(crate) struct Writer {
    storage: Box<dyn Storage>,
    shared: Arc<Shared>,
    /// Records the storage holds.
    records: u64,
    /// Whether records were committed without an fsync since the last one.
    unsynced: bool,
    /// Whether a commit failed: no more writes.
    failed: bool,
    /// The closes asked for, answered once the storage is released.
    closing: Vec<oneshot::Sender<Result<(), JournalError>>>,
}

impl Writer {
    /// Starts the writer thread over `storage`, which holds `records` records.
    pub(crate) fn spawn(
        storage: Box<dyn Storage>,
        shared: Arc<Shared>,
        queue: mpsc::Receiver<Request>,
        records: u64,
    ) -> Result<(), JournalError> {
        let writer = Self {
            storage,
            shared,
            records,
            unsynced: false,
            failed: false,
            closing: Vec::new(),
        };
        if !writer.storage.blocks() {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(writer.run_on_runtime(queue));
                return Ok(());
            }
        }
        std::thread::Builder::new()
            .name("overseer-journal".into())
            .spawn(move || writer.run(queue))
            .map(drop)
            .map_err(|error| {
                JournalError::from(crate::StorageError::Io {
                    operation: "start the journal's writer thread",
                    source: error,
                })
            })
    }

    /// The writer of a storage that never blocks, as a task.
    async fn run_on_runtime(self, mut queue: mpsc::Receiver<Request>) {
        let mut writer = self;
        while let Some(first) = queue.recv().await {
            if writer.take_group(first, &mut queue) {
                break;
            }
        }
        writer.close(queue);
    }

    fn run(mut self, mut queue: mpsc::Receiver<Request>) {
        while let Some(first) = queue.blocking_recv() {
            if self.take_group(first, &mut queue) {
                break;
            }
        }
        self.close(queue);
    }

    /// Commits `first` and whatever waits behind it; `true` once a close was asked for.
    fn take_group(&mut self, first: Request, queue: &mut mpsc::Receiver<Request>) -> bool {
        let mut group = vec![first];
        while group.len() < self.shared.config.max_group_size() {
            match queue.try_recv() {
                Ok(request) => group.push(request),
                Err(_) => break,
            }
        }
        let closes = take_closes(&mut group);
        let closing = !closes.is_empty();
        self.closing.extend(closes);
        self.commit_group(group);
        if (queue.is_empty() || closing) && self.unsynced && !self.failed {
            self.sync_idle();
        }
        closing
    }

    /// Syncs what is left, releases the storage, and answers the closes and whatever was
    /// queued behind them.
    fn close(mut self, mut queue: mpsc::Receiver<Request>) {
        if self.unsynced && !self.failed {
            self.sync_idle();
        }
        let closed = if self.failed {
            Err(JournalError::Failed)
        } else {
            Ok(())
        };
        if !self.failed {
            if let Err(error) = self.storage.release() {
                tracing::warn!(%error, "journal: the storage could not hand its runs back");
            }
        }
        let closing = std::mem::take(&mut self.closing);
        // The storage (and the file's lock) goes before anyone is told the journal is closed.
        drop(self);
        queue.close();
        for ack in closing {
            let _ = ack.send(closed.clone());
        }
        while let Ok(request) = queue.try_recv() {
            answer_of(request).fail(JournalError::Closed);
        }
    }
    /// An fsync when nothing waits, for the appends acknowledged before theirs.
    fn sync_idle(&mut self) {
        match self.storage.sync() {
            Ok(()) => self.unsynced = false,
            Err(error) => {
                tracing::error!(%error, "journal: a sync failed; the journal takes no more writes");
                self.failed = true;
            }
        }
    }

    fn commit_group(&mut self, group: Vec<Request>) {
        if self.failed {
            for request in group {
                answer_of(request).fail(JournalError::Failed);
            }
            return;
        }
        if self.storage.shared() {
            self.commit_group_shared(group);
            return;
        }
        let mut staged = Staged::default();
        let mut admitted: Vec<(Answer, usize)> = Vec::with_capacity(group.len());
        let mut entries: Vec<Entry> = Vec::new();
        let mut records: Vec<Vec<u8>> = Vec::new();
        let mut sync = false;
        {
            let index = self.shared.index();
            for request in group {
                match staged.admit(&index, request, &mut entries, &mut records) {
                    Ok((answer, wants_sync)) => {
                        sync |= wants_sync;
                        admitted.push((answer, entries.len()));
                    }
                    Err((answer, error)) => answer.fail(error),
                }
            }
        }
        if admitted.is_empty() {
            return;
        }
        if let Err(error) = self.commit(&records, sync) {
            tracing::error!(%error, records = records.len(), "journal: a commit failed; the journal takes no more writes");
            self.failed = true;
            let error = JournalError::from(error);
            for (answer, _) in admitted {
                answer.fail(error.clone());
            }
            return;
        }
        let first = self.records;
        self.records += records.len() as u64;
        {
            let mut index = self.shared.index();
            for entry in &entries {
                index.apply(entry);
            }
        }
        tracing::trace!(
            records = records.len(),
            appends = admitted.len(),
            sync,
            "journal: group committed"
        );
        for (answer, end) in admitted {
            // The position of the request's last record (its first, for a claim or a sync).
            answer.succeed((first + end as u64).saturating_sub(1).max(first));
        }
    }

    /// The group of a shared storage: split at each claim (a claim loads the run, so what was
    /// staged before it is committed first), each part committed as one batch per run.
    fn commit_group_shared(&mut self, group: Vec<Request>) {
        let mut segment = Vec::new();
        for request in group {
            match request {
                Request::Claim { run, ack } => {
                    self.commit_segment(std::mem::take(&mut segment));
                    let claimed = self.claim_shared(&run);
                    drop(ack.send(claimed));
                }
                Request::Refresh { run, ack } => {
                    self.commit_segment(std::mem::take(&mut segment));
                    let refreshed = self.refresh_shared(&run);
                    drop(ack.send(refreshed));
                }
                other => segment.push(other),
            }
        }
        self.commit_segment(segment);
    }

    /// A storage failure as the journal's: an injected crash ends the journal's writes.
    fn storage_failed(&mut self, error: StorageError) -> JournalError {
        match error {
            StorageError::Fenced {
                run,
                writer,
                holder,
            } => JournalError::Refused(Refusal::Stale {
                run,
                writer,
                holder,
            }),
            error => {
                if matches!(error, StorageError::Crashed { .. }) {
                    self.failed = true;
                }
                JournalError::from(error)
            }
        }
    }

    /// Claims `run` in the shared storage and puts its records, as stored, in the index.
    fn claim_shared(&mut self, run: &RunId) -> Result<Epoch, JournalError> {
        if self.failed {
            return Err(JournalError::Failed);
        }
        match self.storage.claim_run(run) {
            Ok(SharedClaim::Claimed { epoch, records }) => {
                self.put_run(run, &records)?;
                self.records += 1;
                Ok(epoch)
            }
            Ok(SharedClaim::Finished { records }) => {
                self.put_run(run, &records)?;
                Err(JournalError::Refused(Refusal::Finished {
                    run: run.clone(),
                }))
            }
            Ok(SharedClaim::Held { owner, remaining }) => {
                Err(JournalError::from(StorageError::Held {
                    run: run.clone(),
                    owner,
                    remaining,
                }))
            }
            Err(error) => Err(self.storage_failed(error)),
        }
    }

    /// Reads `run` again from the shared storage, unless this process holds it unfinished.
    fn refresh_shared(&mut self, run: &RunId) -> Result<(), JournalError> {
        if self.failed {
            return Err(JournalError::Failed);
        }
        let held = self
            .shared
            .index()
            .run(run)
            .is_some_and(|record| !record.is_finished() && record.epoch.is_some());
        match self.storage.load_run(run) {
            // A run this process holds keeps its record, and gains the signals another process
            // delivered to it since.
            Ok(Some(records)) if held => {
                let (stored, _, _) = replay_records(&records, true)?;
                let added = self.shared.index().merge_signals(run, stored.run(run));
                if added > 0 {
                    tracing::info!(run = %run, signals = added, "journal: signals delivered by another process");
                }
                Ok(())
            }
            Ok(Some(records)) => self.put_run(run, &records),
            Ok(None) => Ok(()),
            Err(error) => Err(self.storage_failed(error)),
        }
    }

    /// Replays one run's `records` and puts the run's record in the index.
    fn put_run(&mut self, run: &RunId, records: &[Vec<u8>]) -> Result<(), JournalError> {
        let (index, _, _) = replay_records(records, true)?;
        self.shared.index().put_run(run, index.run(run).cloned());
        Ok(())
    }

    /// Admits `group` (appends and syncs), then commits one batch per run: a batch the storage
    /// refuses fails its own appends only.
    fn commit_segment(&mut self, group: Vec<Request>) {
        if group.is_empty() {
            return;
        }
        if self.failed {
            for request in group {
                answer_of(request).fail(JournalError::Failed);
            }
            return;
        }
        let mut staged = Staged::default();
        let mut admitted: Vec<(Answer, Range<usize>)> = Vec::with_capacity(group.len());
        let mut entries: Vec<Entry> = Vec::new();
        let mut records: Vec<Vec<u8>> = Vec::new();
        {
            let index = self.shared.index();
            for request in group {
                let start = entries.len();
                match staged.admit(&index, request, &mut entries, &mut records) {
                    Ok((answer, _)) => admitted.push((answer, start..entries.len())),
                    Err((answer, error)) => answer.fail(error),
                }
            }
        }
        let (batches, batch_of) = batches_of(&admitted, &entries, records);
        let results = if batches.is_empty() {
            Vec::new()
        } else {
            self.storage.append_runs(&batches)
        };
        let mut results: Vec<Result<(), JournalError>> = results
            .into_iter()
            .map(|result| result.map_err(|error| self.storage_failed(error)))
            .collect();
        results.resize_with(batches.len(), || {
            Err(JournalError::from(StorageError::Engine {
                operation: "append a run's batch",
                message: "the storage gave no answer for a batch".into(),
            }))
        });
        let first = self.records;
        self.records += batches
            .iter()
            .map(|batch| (batch.records.len() + batch.letters.len()) as u64)
            .sum::<u64>();
        for ((answer, range), touched) in admitted.into_iter().zip(batch_of) {
            match touched.iter().find_map(|&b| results[b].as_ref().err()) {
                Some(error) => answer.fail(error.clone()),
                None => {
                    {
                        let mut index = self.shared.index();
                        for entry in &entries[range.clone()] {
                            index.apply(entry);
                        }
                    }
                    answer.succeed(first + range.end.saturating_sub(1) as u64);
                }
            }
        }
    }

    fn commit(&mut self, records: &[Vec<u8>], sync: bool) -> Result<(), crate::StorageError> {
        if records.is_empty() {
            if sync && self.unsynced {
                self.storage.sync()?;
                self.unsynced = false;
            }
            return Ok(());
        }
        self.storage.append(records, sync)?;
        self.unsynced = !sync;
        Ok(())
    }
}

fn answer_of(request: Request) -> Answer {
    match request {
        Request::Append { ack, .. } => Answer::Appended(ack),
        Request::Claim { ack, .. } => Answer::Claimed(ack, Epoch::FIRST),
        Request::Sync { ack } | Request::Close { ack } | Request::Refresh { ack, .. } => {
            Answer::Synced(ack)
        }
    }
}

/// The admitted appends' entries as one batch per run (in the order runs first appear), and
/// which batches each append went to (none: it wrote nothing, a sync). An append's entries that
/// belong to no run (a dead letter) go with its first run's, so that both commit together; an
/// append that names several runs goes to each run's batch (one transaction each).
fn batches_of(
    admitted: &[(Answer, Range<usize>)],
    entries: &[Entry],
    records: Vec<Vec<u8>>,
) -> (Vec<RunBatch>, Vec<Vec<usize>>) {
    let mut batches: Vec<RunBatch> = Vec::new();
    let mut by_run: HashMap<Option<RunId>, usize> = HashMap::new();
    let mut batch_of = Vec::with_capacity(admitted.len());
    let mut records = records.into_iter();
    for (_, range) in admitted {
        let first_run = entries[range.clone()].iter().find_map(|e| e.run().cloned());
        let mut touched: Vec<usize> = Vec::new();
        for entry in &entries[range.clone()] {
            let bytes = records.next().unwrap_or_default();
            let key = entry.run().cloned().or_else(|| first_run.clone());
            let at = *by_run.entry(key.clone()).or_insert_with(|| {
                batches.push(RunBatch {
                    run: key,
                    ..RunBatch::default()
                });
                batches.len() - 1
            });
            if !touched.contains(&at) {
                touched.push(at);
            }
            let batch = &mut batches[at];
            if entry.run().is_none() {
                batch.letters.push(bytes);
                continue;
            }
            if let Some(epoch) = entry.writer_epoch() {
                batch.epoch = Some(batch.epoch.map_or(epoch, |e| e.max(epoch)));
            }
            match entry {
                Entry::RunStarted { .. } => batch.starts = true,
                Entry::RunFinished { .. } => batch.finishes = Some(bytes.clone()),
                _ => {}
            }
            batch.records.push(bytes);
        }
        batch_of.push(touched);
    }
    (batches, batch_of)
}

/// Takes the close requests out of `group`: they are answered once the storage is released.
fn take_closes(group: &mut Vec<Request>) -> Vec<oneshot::Sender<Result<(), JournalError>>> {
    let mut closes = Vec::new();
    let mut kept = Vec::with_capacity(group.len());
    for request in group.drain(..) {
        match request {
            Request::Close { ack } => closes.push(ack),
            other => kept.push(other),
        }
    }
    *group = kept;
    closes
}

/// What the appends admitted so far in a group change: run heads, and steps completed.
#[derive(Default)]
struct Staged {
    heads: HashMap<RunId, RunHead>,
    /// Runs started (again) in this group: the index's steps of an older run of the same id do
    /// not count.
    restarted: HashSet<RunId>,
    completed: HashSet<(RunId, StepId)>,
}

impl Staged {
    fn head(&self, index: &Index, run: &RunId) -> Option<RunHead> {
        self.heads.get(run).copied().or_else(|| index.head(run))
    }

    fn is_completed(&self, index: &Index, run: &RunId, step: &StepId) -> bool {
        if self.completed.contains(&(run.clone(), step.clone())) {
            return true;
        }
        !self.restarted.contains(run) && index.run(run).is_some_and(|r| r.is_completed(step))
    }

    /// Admits `request` against the index and what the group has admitted so far; its entries
    /// (encoded) join the group. The answer, and whether it wants an fsync; or the answer with
    /// why it was refused.
    fn admit(
        &mut self,
        index: &Index,
        request: Request,
        entries: &mut Vec<Entry>,
        records: &mut Vec<Vec<u8>>,
    ) -> Result<(Answer, bool), (Answer, JournalError)> {
        match request {
            Request::Sync { ack } | Request::Close { ack } => Ok((Answer::Synced(ack), true)),
            // Only a shared storage's journal sends it, and its writer takes it apart.
            Request::Refresh { ack, .. } => Ok((Answer::Synced(ack), false)),
            Request::Claim { run, ack } => {
                let epoch = self
                    .head(index, &run)
                    .and_then(|head| head.epoch)
                    .map_or(Epoch::FIRST, Epoch::next);
                let claim = Entry::RunClaimed { run, epoch };
                match self.admit_entries(index, vec![claim], entries, records) {
                    Ok(()) => Ok((Answer::Claimed(ack, epoch), true)),
                    Err(error) => Err((Answer::Claimed(ack, epoch), error)),
                }
            }
            Request::Append {
                entries: new,
                sync,
                ack,
            } => match self.admit_entries(index, new, entries, records) {
                Ok(()) => Ok((Answer::Appended(ack), sync)),
                Err(error) => Err((Answer::Appended(ack), error)),
            },
        }
    }

    /// Checks `new` in order, all or none; on success they join the group.
    fn admit_entries(
        &mut self,
        index: &Index,
        new: Vec<Entry>,
        entries: &mut Vec<Entry>,
        records: &mut Vec<Vec<u8>>,
    ) -> Result<(), JournalError> {
        // The request's own changes, apart until all of it passes.
        let mut trial = Staged::default();
        let mut encoded = Vec::with_capacity(new.len());
        for entry in &new {
            let Some(run) = entry.run() else {
                // The dead-letter queue's entries belong to no run: nothing to check.
                encoded.push(
                    serde_json::to_vec(entry)
                        .map_err(|error| JournalError::Encode(error.to_string()))?,
                );
                continue;
            };
            let head = trial
                .heads
                .get(run)
                .copied()
                .or_else(|| self.head(index, run));
            let completed = step_of(entry).is_some_and(|step| {
                trial.completed.contains(&(run.clone(), step.clone()))
                    || (!trial.restarted.contains(run) && self.is_completed(index, run, step))
            });
            let head = admit_entry(head, entry, completed)?;
            trial.heads.insert(run.clone(), head);
            match entry {
                Entry::RunStarted { .. } => {
                    trial.restarted.insert(run.clone());
                }
                Entry::StepCompleted { step, .. } => {
                    trial.completed.insert((run.clone(), step.clone()));
                }
                _ => {}
            }
            encoded.push(
                serde_json::to_vec(entry)
                    .map_err(|error| JournalError::Encode(error.to_string()))?,
            );
        }
        for run in trial.restarted {
            self.completed.retain(|(done, _)| done != &run);
            self.restarted.insert(run);
        }
        self.heads.extend(trial.heads);
        self.completed.extend(trial.completed);
        entries.extend(new);
        records.extend(encoded);
        Ok(())
    }
}
