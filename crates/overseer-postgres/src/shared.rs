//! The journal's operations on the shared database: a run's batch of records committed in one
//! fenced transaction, the runs a process may take up when it opens, one run's records.

use deadpool_postgres::GenericClient;
use overseer_journal::{Epoch, RunId};

use crate::lease::RunStatus;
use crate::store::{epoch_of, status_of, writer_holds};
use crate::{PgJournalError, PgStore};

/// What one group commit appends to one run, committed whole or not at all
/// ([`PgStore::append_batch`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Batch<'a> {
    /// The run (`None`: dead letters alone).
    pub(crate) run: Option<&'a RunId>,
    /// The writer's epoch, for fenced records.
    pub(crate) epoch: Option<Epoch>,
    /// Whether the batch starts the run.
    pub(crate) starts: bool,
    /// The run's outcome record, when the batch finishes it.
    pub(crate) finishes: Option<&'a [u8]>,
    /// The run's records.
    pub(crate) records: &'a [Vec<u8>],
    /// Records of no run (dead letters).
    pub(crate) letters: &'a [Vec<u8>],
}

impl PgStore {
    /// Commits `batch` in one transaction that holds the run's row locked: a start only for a
    /// run with no records (or a finished one, started again under its id), fenced records only
    /// while `batch.epoch` holds the run, nothing after the run's end; the dead letters with them.
    pub(crate) async fn append_batch(&self, batch: Batch<'_>) -> Result<(), PgJournalError> {
        self.in_transaction("committing an append", async |tx| {
            if let Some(run) = batch.run {
                append_run_in(tx, run, &batch).await?;
            }
            for letter in batch.letters {
                tx.execute(
                    cached!(
                        tx,
                        "INSERT INTO overseer_dead_letters (run_id, payload) VALUES ($1, $2)",
                        "preparing a statement"
                    ),
                    &[&batch.run.map(RunId::as_str), letter],
                )
                .await
                .map_err(PgJournalError::db("appending a dead letter"))?;
            }
            Ok(())
        })
        .await
    }

    /// What a process opening the journal may take up: every dead-letter record (in the order
    /// written), then the records of each unfinished run that nobody else holds under a live
    /// lease (queued, handed back, its lease run out, or held by `owner` itself), run by run.
    pub(crate) async fn load_claimable(&self, owner: &str) -> Result<Vec<Vec<u8>>, PgJournalError> {
        let client = self.client().await?;
        let letters = client
            .query(
                cached!(
                    client,
                    "SELECT payload FROM overseer_dead_letters ORDER BY id",
                    "preparing a statement"
                ),
                &[],
            )
            .await
            .map_err(PgJournalError::db("loading the dead letters"))?;
        let runs = client
            .query(
                cached!(
                    client,
                    "SELECT j.payload FROM overseer_journal j JOIN overseer_runs r USING (run_id) \
                     WHERE r.status <> 'finished' AND (r.status = 'queued' \
                       OR r.lease_expires_at IS NULL OR r.lease_expires_at <= clock_timestamp() \
                       OR r.owner_name = $1) \
                     ORDER BY r.created_at, r.run_id, j.seq",
                    "preparing a statement"
                ),
                &[&owner],
            )
            .await
            .map_err(PgJournalError::db("loading the claimable runs"))?;
        Ok(letters
            .iter()
            .chain(runs.iter())
            .map(|row| row.get(0))
            .collect())
    }

    /// The records of `run`, if the database has a row of it.
    pub(crate) async fn load_existing(
        &self,
        run: &RunId,
    ) -> Result<Option<Vec<Vec<u8>>>, PgJournalError> {
        let client = self.client().await?;
        let exists = client
            .query_opt(
                cached!(
                    client,
                    "SELECT 1 FROM overseer_runs WHERE run_id = $1",
                    "preparing a statement"
                ),
                &[&run.as_str()],
            )
            .await
            .map_err(PgJournalError::db("reading a run"))?
            .is_some();
        if !exists {
            return Ok(None);
        }
        records_in(&client, run).await.map(Some)
    }

    /// Every record the database holds, journal records and dead letters, in the order of the
    /// transactions that wrote them (by transaction id; a run's in its order): for inspection
    /// and tests. A process opening the journal reads only what it may take up.
    ///
    /// # Errors
    ///
    /// When the query fails.
    pub async fn all_records(&self) -> Result<Vec<Vec<u8>>, PgJournalError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT payload FROM ( \
                   SELECT payload, xmin::text::bigint AS tx, 0 AS kind, seq AS at FROM overseer_journal \
                   UNION ALL \
                   SELECT payload, xmin::text::bigint, 1, id FROM overseer_dead_letters) AS r \
                 ORDER BY tx, kind, at",
                &[],
            )
            .await
            .map_err(PgJournalError::db("reading every record"))?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    /// Up to `limit` runs a process could take from the work queue now, oldest first: started
    /// (they have records) and queued, handed back, or whose lease has run out on the
    /// database's clock. A look, not a claim: the claim
    /// ([`Journal::claim`](overseer_journal::Journal::claim) over a
    /// [`PgStorage`](crate::PgStorage)) decides, and of two processes taking the same run one
    /// is told it is held.
    ///
    /// # Errors
    ///
    /// When the query fails.
    pub async fn claimable_runs(&self, limit: usize) -> Result<Vec<RunId>, PgJournalError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let client = self.client().await?;
        let rows = client
            .query(
                cached!(
                    client,
                    "SELECT run_id FROM overseer_runs WHERE next_seq > 0 AND (status = 'queued' \
                       OR (status = 'running' AND (lease_expires_at IS NULL \
                         OR lease_expires_at <= clock_timestamp()))) \
                     ORDER BY lease_expires_at NULLS FIRST, created_at LIMIT $1",
                    "preparing a statement"
                ),
                &[&limit],
            )
            .await
            .map_err(PgJournalError::db("looking at the work queue"))?;
        rows.iter()
            .map(|row| {
                let id: String = row.get(0);
                RunId::new(id.clone()).map_err(|e| PgJournalError::Corrupt {
                    what: format!("run id {id:?}: {e}"),
                })
            })
            .collect()
    }

    /// The unfinished runs `owner` holds that have been signalled, each with how many signal
    /// batches were delivered to it so far: a holder that sees a count grow refreshes the run
    /// ([`Journal::refresh`](overseer_journal::Journal::refresh)) and asks it again.
    ///
    /// # Errors
    ///
    /// When the query fails.
    pub async fn signalled_runs(&self, owner: &str) -> Result<Vec<(RunId, u64)>, PgJournalError> {
        let client = self.client().await?;
        let rows = client
            .query(
                cached!(
                    client,
                    "SELECT run_id, signalled FROM overseer_runs \
                     WHERE owner_name = $1 AND status = 'running' AND signalled > 0",
                    "preparing a statement"
                ),
                &[&owner],
            )
            .await
            .map_err(PgJournalError::db("looking for signalled runs"))?;
        rows.iter()
            .map(|row| {
                let id: String = row.get(0);
                let count: i64 = row.get(1);
                RunId::new(id.clone())
                    .map(|run| (run, count.unsigned_abs()))
                    .map_err(|e| PgJournalError::Corrupt {
                        what: format!("run id {id:?}: {e}"),
                    })
            })
            .collect()
    }

    /// How many records the database holds: journal records and dead letters.
    ///
    /// # Errors
    ///
    /// When the query fails.
    pub async fn records(&self) -> Result<u64, PgJournalError> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT (SELECT count(*) FROM overseer_journal) + \
                 (SELECT count(*) FROM overseer_dead_letters)",
                &[],
            )
            .await
            .map_err(PgJournalError::db("counting records"))?;
        let count: i64 = row.get(0);
        Ok(count.unsigned_abs())
    }
}

/// The batch's run part, inside its transaction.
async fn append_run_in(
    tx: &impl GenericClient,
    run: &RunId,
    batch: &Batch<'_>,
) -> Result<(), PgJournalError> {
    if batch.starts {
        tx.execute(
            cached!(
                tx,
                "INSERT INTO overseer_runs (run_id) VALUES ($1) ON CONFLICT (run_id) DO NOTHING",
                "preparing a statement"
            ),
            &[&run.as_str()],
        )
        .await
        .map_err(PgJournalError::db("adding a started run"))?;
    }
    let (current, mut status, next_seq) = lock_to_append(tx, run).await?;
    if batch.starts {
        match status {
            RunStatus::Finished => {
                // Started again under its id (its retention over): the new run's records start
                // afresh; its epochs go on from the last, so that no writer of the old one is
                // taken for the new one's.
                tx.execute(
                    cached!(
                        tx,
                        "DELETE FROM overseer_journal WHERE run_id = $1",
                        "preparing a statement"
                    ),
                    &[&run.as_str()],
                )
                .await
                .map_err(PgJournalError::db("dropping a finished run's records"))?;
                tx.execute(
                    cached!(
                        tx,
                        "UPDATE overseer_runs SET status = 'queued', outcome = NULL, next_seq = 0, \
                         owner_name = NULL, lease_expires_at = NULL, \
                         updated_at = clock_timestamp() WHERE run_id = $1",
                        "preparing a statement"
                    ),
                    &[&run.as_str()],
                )
                .await
                .map_err(PgJournalError::db("starting a finished run again"))?;
                status = RunStatus::Queued;
            }
            _ if next_seq == 0 => {}
            _ => return Err(PgJournalError::AlreadyStarted { run: run.clone() }),
        }
    }
    if let Some(epoch) = batch.epoch {
        writer_holds(run, epoch, current, status)?;
    } else if status == RunStatus::Finished {
        return Err(PgJournalError::Finished { run: run.clone() });
    }
    insert_records(tx, run, batch.records).await?;
    if batch.epoch.is_none() && !batch.starts && !batch.records.is_empty() {
        // Records of no epoch after the start are signals: the run's holder polls the count.
        tx.execute(
            cached!(
                tx,
                "UPDATE overseer_runs SET signalled = signalled + 1 WHERE run_id = $1",
                "preparing a statement"
            ),
            &[&run.as_str()],
        )
        .await
        .map_err(PgJournalError::db("counting a signal"))?;
    }
    if let Some(outcome) = batch.finishes {
        tx.execute(
            cached!(
                tx,
                "UPDATE overseer_runs SET status = 'finished', outcome = $2, \
                 lease_expires_at = NULL, updated_at = clock_timestamp() WHERE run_id = $1",
                "preparing a statement"
            ),
            &[&run.as_str(), &outcome],
        )
        .await
        .map_err(PgJournalError::db("finishing a run"))?;
    }
    Ok(())
}

/// Locks `run`'s row for an append, inside the caller's transaction: its epoch, status and
/// next position.
pub(crate) async fn lock_to_append(
    tx: &impl GenericClient,
    run: &RunId,
) -> Result<(Option<Epoch>, RunStatus, i64), PgJournalError> {
    let row = tx
        .query_opt(
            cached!(
                tx,
                "SELECT owner_epoch, status, next_seq FROM overseer_runs \
                 WHERE run_id = $1 FOR UPDATE",
                "preparing a statement"
            ),
            &[&run.as_str()],
        )
        .await
        .map_err(PgJournalError::db("locking a run to append"))?
        .ok_or_else(|| PgJournalError::UnknownRun { run: run.clone() })?;
    Ok((epoch_of(row.get(0))?, status_of(row.get(1))?, row.get(2)))
}

/// Appends `records` after the run's last, inside the caller's transaction (which holds the
/// run's row locked).
pub(crate) async fn insert_records(
    tx: &impl GenericClient,
    run: &RunId,
    records: &[Vec<u8>],
) -> Result<(), PgJournalError> {
    if records.is_empty() {
        return Ok(());
    }
    let count = i64::try_from(records.len()).map_err(|_| PgJournalError::OutOfRange {
        what: "records in one append",
        value: records.len().to_string(),
    })?;
    tx.execute(
        cached!(
            tx,
            "WITH r AS (UPDATE overseer_runs SET next_seq = next_seq + $3, \
               updated_at = clock_timestamp() WHERE run_id = $1 RETURNING next_seq - $3 AS first) \
             INSERT INTO overseer_journal (run_id, seq, payload) \
             SELECT $1, r.first + t.ord - 1, t.payload \
             FROM r, unnest($2::bytea[]) WITH ORDINALITY AS t(payload, ord)",
            "preparing a statement"
        ),
        &[&run.as_str(), &records, &count],
    )
    .await
    .map_err(PgJournalError::db("appending records"))?;
    Ok(())
}

/// The records of `run`, in order, inside the caller's transaction or connection.
pub(crate) async fn records_in(
    client: &impl GenericClient,
    run: &RunId,
) -> Result<Vec<Vec<u8>>, PgJournalError> {
    let rows = client
        .query(
            cached!(
                client,
                "SELECT payload FROM overseer_journal WHERE run_id = $1 ORDER BY seq",
                "preparing a statement"
            ),
            &[&run.as_str()],
        )
        .await
        .map_err(PgJournalError::db("loading a run's records"))?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}
