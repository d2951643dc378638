//! The shared database: a pool of connections and the run operations (claim, renew, hand
//! back, append, load, finish, the work queue) as transactions over it.

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};
use overseer_journal::{Epoch, RunId};
use tokio_postgres::{GenericClient, NoTls, Row};

use crate::lease::{decide_claim, lease_ms, ClaimDecision, LeaseHead, RunStatus};
use crate::schema::{self, Migrated};
use crate::PgJournalError;

/// How a [`PgStore`] connects.
#[derive(Debug, Clone)]
pub struct PgOptions {
    pool_size: usize,
    connect_timeout: Duration,
    acquire_timeout: Duration,
    lock_timeout: Duration,
    idle_in_transaction_timeout: Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            pool_size: 8,
            connect_timeout: Duration::from_secs(5),
            acquire_timeout: Duration::from_secs(30),
            lock_timeout: Duration::from_secs(5),
            idle_in_transaction_timeout: Duration::from_secs(10),
        }
    }
}

impl PgOptions {
    /// At most this many connections at once (at least 1; default 8).
    pub fn pool_size(mut self, connections: usize) -> Self {
        self.pool_size = connections.max(1);
        self
    }

    /// How long making one connection may take before it is a
    /// [`ConnectTimeout`](PgJournalError::ConnectTimeout) (default 5 s): a server that does not
    /// answer never hangs the caller.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long an operation waits for a free connection of the pool (default 30 s).
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// How long an operation waits for a row another transaction holds locked (a run being
    /// claimed or appended to elsewhere, a budget limit) before it fails with
    /// [`LockTimeout`](PgJournalError::LockTimeout) (default 5 s; PostgreSQL's `lock_timeout`
    /// on each connection). A process stopped in the middle of a transaction never blocks the
    /// others for longer.
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// The server settings each connection starts with (PostgreSQL's `options` connection
    /// parameter): the lock and idle-in-transaction timeouts, in milliseconds.
    pub fn session_settings(&self) -> String {
        format!(
            "-c lock_timeout={} -c idle_in_transaction_session_timeout={}",
            self.lock_timeout.as_millis().max(1),
            self.idle_in_transaction_timeout.as_millis().max(1),
        )
    }

    /// How long a connection of this store may sit idle inside an open transaction before the
    /// server ends its session and rolls the transaction back, releasing its locks (default
    /// 10 s; PostgreSQL's `idle_in_transaction_session_timeout`): what bounds the locks of a
    /// process paused (or partitioned) mid-transaction.
    pub fn idle_in_transaction_timeout(mut self, timeout: Duration) -> Self {
        self.idle_in_transaction_timeout = timeout;
        self
    }
}

/// A run taken from the work queue by [`PgStore::next_claimable`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedRun {
    /// The run.
    pub run: RunId,
    /// The claimer's epoch.
    pub epoch: Epoch,
}

/// Runs shared through one PostgreSQL database by every process that opens it.
///
/// Each operation is one transaction; leases are judged by the **database's** clock
/// (`clock_timestamp()`), so the processes' clocks may disagree without effect. Writes to a
/// run carry the writer's epoch and are refused ([`PgJournalError::Fenced`]) once another
/// claim has bumped it.
#[derive(Clone)]
pub struct PgStore {
    pub(crate) pool: Pool,
    connect_timeout: Duration,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let status = self.pool.status();
        f.debug_struct("PgStore")
            .field("connections", &status.size)
            .field("max_connections", &status.max_size)
            .finish_non_exhaustive()
    }
}

/// The database's clock now, in milliseconds since the Unix epoch: the clock leases are judged by.
pub(crate) const NOW_MS: &str = "SELECT (extract(epoch from clock_timestamp()) * 1000)::bigint";

impl PgStore {
    /// Connects to the database at `url` (`postgres://user@host:port/db` or `key=value`
    /// form; no TLS) and checks that one connection can be made. Nothing is migrated: see
    /// [`open`](Self::open).
    ///
    /// # Errors
    ///
    /// [`InvalidUrl`](PgJournalError::InvalidUrl), [`Connect`](PgJournalError::Connect) (refused,
    /// authentication, no such database), [`ConnectTimeout`](PgJournalError::ConnectTimeout).
    pub async fn connect(url: &str, options: PgOptions) -> Result<Self, PgJournalError> {
        let mut config: tokio_postgres::Config =
            url.parse()
                .map_err(|e: tokio_postgres::Error| PgJournalError::InvalidUrl {
                    reason: e.to_string(),
                })?;
        config.connect_timeout(options.connect_timeout);
        // Session settings, after any the URL gives (the later one wins).
        let settings = options.session_settings();
        let settings = match config.get_options() {
            Some(given) if !given.is_empty() => format!("{given} {settings}"),
            _ => settings,
        };
        config.options(settings);
        if config.get_application_name().is_none() {
            config.application_name("overseer");
        }
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.pool_size)
            .runtime(Runtime::Tokio1)
            .create_timeout(Some(options.connect_timeout))
            .wait_timeout(Some(options.acquire_timeout))
            .build()
            .map_err(|e| PgJournalError::Pool {
                message: e.to_string(),
            })?;
        let store = PgStore {
            pool,
            connect_timeout: options.connect_timeout,
        };
        drop(store.client().await?);
        Ok(store)
    }

    /// [`connect`](Self::connect), then [`migrate`](Self::migrate): the usual way to start.
    ///
    /// # Errors
    ///
    /// As `connect` and `migrate`.
    pub async fn open(url: &str, options: PgOptions) -> Result<Self, PgJournalError> {
        let store = Self::connect(url, options).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Brings the database's tables to [`SCHEMA_VERSION`](crate::SCHEMA_VERSION), in one
    /// transaction under an advisory lock: a second process migrating at once waits, then finds
    /// nothing to do; a migration that fails leaves the database as it was.
    ///
    /// # Errors
    ///
    /// [`SchemaTooNew`](PgJournalError::SchemaTooNew) when a newer library has migrated the
    /// database; [`Database`](PgJournalError::Database) when a statement fails.
    pub async fn migrate(&self) -> Result<Migrated, PgJournalError> {
        self.in_transaction("committing a migration", async |tx| {
            schema::migrate_in(&**tx).await
        })
        .await
    }

    /// The schema version the database is at (0: no Overseer tables).
    ///
    /// # Errors
    ///
    /// When it cannot be read.
    pub async fn schema_version(&self) -> Result<i32, PgJournalError> {
        let client = self.client().await?;
        let exists: bool = client
            .query_one(
                cached!(
                    client,
                    "SELECT to_regclass('overseer_schema') IS NOT NULL",
                    "preparing a statement"
                ),
                &[],
            )
            .await
            .map_err(PgJournalError::db("looking for the schema version table"))?
            .get(0);
        if !exists {
            return Ok(0);
        }
        schema::current_version(&**client).await
    }

    /// The database's clock now, in milliseconds since the Unix epoch: the clock leases are
    /// judged by.
    ///
    /// # Errors
    ///
    /// When it cannot be read.
    pub async fn now_ms(&self) -> Result<i64, PgJournalError> {
        let client = self.client().await?;
        let row = client
            .query_one(cached!(client, NOW_MS, "preparing a statement"), &[])
            .await
            .map_err(PgJournalError::db("reading the clock"))?;
        Ok(row.get(0))
    }

    /// Adds `run` to the work queue, if the database has no row of it: `true` when it was
    /// added.
    ///
    /// # Errors
    ///
    /// When the statement fails.
    pub async fn enqueue(&self, run: &RunId) -> Result<bool, PgJournalError> {
        let client = self.client().await?;
        let added = client
            .execute(
                cached!(client, "INSERT INTO overseer_runs (run_id) VALUES ($1) ON CONFLICT (run_id) DO NOTHING", "preparing a statement"),
                &[&run.as_str()],
            )
            .await
            .map_err(PgJournalError::db("enqueueing a run"))?;
        Ok(added == 1)
    }

    /// Takes `run` for `owner` under a lease of `lease` ([`decide_claim`] decides, on the
    /// run's row locked `FOR UPDATE` and the database's clock): a run the database does not
    /// have yet is added and claimed at the first epoch. A claim bumps the run's epoch, which
    /// fences every earlier holder.
    ///
    /// # Errors
    ///
    /// When a statement fails; then nothing changed.
    pub async fn claim(
        &self,
        run: &RunId,
        owner: &str,
        lease: Duration,
    ) -> Result<ClaimDecision, PgJournalError> {
        self.claim_recording(run, owner, lease, None)
            .await
            .map(|(decision, _)| decision)
    }

    /// [`claim`](Self::claim); a granted claim also appends `record(epoch)` to the run's
    /// journal in the same transaction, and the run's records are returned (read under the
    /// lock, the claim's last) whenever `record` is given.
    pub(crate) async fn claim_recording(
        &self,
        run: &RunId,
        owner: &str,
        lease: Duration,
        record: Option<&(dyn Fn(Epoch) -> Vec<u8> + Sync)>,
    ) -> Result<(ClaimDecision, Vec<Vec<u8>>), PgJournalError> {
        self.in_transaction("committing a claim", async |tx| {
            tx.execute(
                cached!(
                    tx,
                    "INSERT INTO overseer_runs (run_id) VALUES ($1) ON CONFLICT (run_id) DO NOTHING",
                    "preparing a statement"
                ),
                &[&run.as_str()],
            )
            .await
            .map_err(PgJournalError::db("adding a claimed run"))?;
            let row = tx
                .query_one(
                    cached!(
                        tx,
                        "SELECT owner_epoch, owner_name, \
                     (extract(epoch from lease_expires_at) * 1000)::bigint, status \
                     FROM overseer_runs WHERE run_id = $1 FOR UPDATE",
                        "preparing a statement"
                    ),
                    &[&run.as_str()],
                )
                .await
                .map_err(PgJournalError::db("locking a claimed run"))?;
            let head = lease_head(&row)?;
            // Read after the lock is held: a claim that waited for it judges the lease as of now.
            let now: i64 = tx
                .query_one(cached!(tx, NOW_MS, "preparing a statement"), &[])
                .await
                .map_err(PgJournalError::db("reading the clock"))?
                .get(0);
            let decision = decide_claim(Some(&head), now, owner);
            if let ClaimDecision::Claimed { epoch } = &decision {
                tx.execute(
                    cached!(tx, "UPDATE overseer_runs SET owner_epoch = $2, owner_name = $3, status = 'running', \
                     lease_expires_at = clock_timestamp() + $4 * interval '1 millisecond', \
                     updated_at = clock_timestamp() WHERE run_id = $1", "preparing a statement"),
                    &[
                        &run.as_str(),
                        &epoch_sql(*epoch)?,
                        &owner,
                        &(lease_ms(lease) as f64),
                    ],
                )
                .await
                .map_err(PgJournalError::db("claiming a run"))?;
                if let Some(record) = record {
                    crate::shared::insert_records(tx, run, &[record(*epoch)]).await?;
                }
            }
            let records = match record {
                Some(_) => crate::shared::records_in(tx, run).await?,
                None => Vec::new(),
            };
            tracing::debug!(run = %run, owner, decision = ?decision, "claim");
            Ok((decision, records))
        })
        .await
    }

    /// Extends the lease of the holder of `run` under `epoch` to `lease` from now (a
    /// heartbeat). A holder whose lease has run out but whom nobody has replaced yet renews it.
    ///
    /// # Errors
    ///
    /// [`Fenced`](PgJournalError::Fenced) when `epoch` no longer holds the run;
    /// [`Finished`](PgJournalError::Finished), [`UnknownRun`](PgJournalError::UnknownRun).
    pub async fn renew(
        &self,
        run: &RunId,
        epoch: Epoch,
        lease: Duration,
    ) -> Result<(), PgJournalError> {
        let client = self.client().await?;
        let updated = client
            .execute(
                cached!(
                    client,
                    "UPDATE overseer_runs SET \
                 lease_expires_at = clock_timestamp() + $3 * interval '1 millisecond', \
                 updated_at = clock_timestamp() \
                 WHERE run_id = $1 AND owner_epoch = $2 AND status = 'running'",
                    "preparing a statement"
                ),
                &[&run.as_str(), &epoch_sql(epoch)?, &(lease_ms(lease) as f64)],
            )
            .await
            .map_err(PgJournalError::db("renewing a lease"))?;
        if updated == 1 {
            return Ok(());
        }
        Err(refusal(&**client, run, epoch).await)
    }

    /// Gives `run` back at once (a polite shutdown): its lease ends now and the next claim,
    /// by anyone, takes it without waiting. The epoch stays, so the next claim fences this one.
    ///
    /// # Errors
    ///
    /// As [`renew`](Self::renew).
    pub async fn hand_back(&self, run: &RunId, epoch: Epoch) -> Result<(), PgJournalError> {
        let client = self.client().await?;
        let updated = client
            .execute(
                cached!(
                    client,
                    "UPDATE overseer_runs SET status = 'queued', owner_name = NULL, \
                 lease_expires_at = NULL, updated_at = clock_timestamp() \
                 WHERE run_id = $1 AND owner_epoch = $2 AND status = 'running'",
                    "preparing a statement"
                ),
                &[&run.as_str(), &epoch_sql(epoch)?],
            )
            .await
            .map_err(PgJournalError::db("handing a run back"))?;
        if updated == 1 {
            return Ok(());
        }
        Err(refusal(&**client, run, epoch).await)
    }

    /// Marks `run` finished by its holder under `epoch`, with its `outcome` (encoded by the
    /// caller): nobody claims it again.
    ///
    /// # Errors
    ///
    /// As [`renew`](Self::renew).
    pub async fn finish(
        &self,
        run: &RunId,
        epoch: Epoch,
        outcome: &[u8],
    ) -> Result<(), PgJournalError> {
        let client = self.client().await?;
        let updated = client
            .execute(
                cached!(
                    client,
                    "UPDATE overseer_runs SET status = 'finished', outcome = $3, \
                 lease_expires_at = NULL, updated_at = clock_timestamp() \
                 WHERE run_id = $1 AND owner_epoch = $2 AND status = 'running'",
                    "preparing a statement"
                ),
                &[&run.as_str(), &epoch_sql(epoch)?, &outcome],
            )
            .await
            .map_err(PgJournalError::db("finishing a run"))?;
        if updated == 1 {
            return Ok(());
        }
        Err(refusal(&**client, run, epoch).await)
    }

    /// Appends `records` to the journal of `run`, after those it has, in one transaction that
    /// holds the run's row locked: only if `epoch` still holds the run. Returns the position
    /// of the first record (positions start at 0 and have no gaps).
    ///
    /// # Errors
    ///
    /// [`Fenced`](PgJournalError::Fenced) when another claim has bumped the epoch: nothing is
    /// written. [`Finished`](PgJournalError::Finished), [`UnknownRun`](PgJournalError::UnknownRun);
    /// [`Database`](PgJournalError::Database) when a statement fails or the connection drops,
    /// and then nothing of `records` is stored.
    pub async fn append(
        &self,
        run: &RunId,
        epoch: Epoch,
        records: &[Vec<u8>],
    ) -> Result<u64, PgJournalError> {
        self.append_checked(run, epoch, None, records).await
    }

    /// [`append`](Self::append), only if the run's next position is `at`: how a retry after
    /// an error whose commit may have happened (the connection dropped while the answer was on
    /// its way) learns that its batch is already stored ([`PositionMismatch`] with `found`
    /// past `at`) instead of storing it twice.
    ///
    /// [`PositionMismatch`]: PgJournalError::PositionMismatch
    ///
    /// # Errors
    ///
    /// As `append`, and [`PositionMismatch`] when the run's next position is not `at`
    /// (nothing is written).
    pub async fn append_at(
        &self,
        run: &RunId,
        epoch: Epoch,
        at: u64,
        records: &[Vec<u8>],
    ) -> Result<(), PgJournalError> {
        self.append_checked(run, epoch, Some(at), records)
            .await
            .map(drop)
    }

    async fn append_checked(
        &self,
        run: &RunId,
        epoch: Epoch,
        at: Option<u64>,
        records: &[Vec<u8>],
    ) -> Result<u64, PgJournalError> {
        self.in_transaction("committing an append", async |tx| {
            let (current, status, first) = crate::shared::lock_to_append(tx, run).await?;
            writer_holds(run, epoch, current, status)?;
            if let Some(at) = at {
                if u64::try_from(first).ok() != Some(at) {
                    return Err(PgJournalError::PositionMismatch {
                        run: run.clone(),
                        expected: at,
                        found: first.unsigned_abs(),
                    });
                }
            }
            let count = i64::try_from(records.len()).map_err(|_| PgJournalError::OutOfRange {
                what: "records in one append",
                value: records.len().to_string(),
            })?;
            if count > 0 {
                tx.execute(
                    cached!(
                        tx,
                        "INSERT INTO overseer_journal (run_id, seq, payload) \
                     SELECT $1, $2 + t.ord - 1, t.payload \
                     FROM unnest($3::bytea[]) WITH ORDINALITY AS t(payload, ord)",
                        "preparing a statement"
                    ),
                    &[&run.as_str(), &first, &records],
                )
                .await
                .map_err(PgJournalError::db("appending records"))?;
                tx.execute(
                    cached!(tx, "UPDATE overseer_runs SET next_seq = next_seq + $2, updated_at = clock_timestamp() \
                     WHERE run_id = $1", "preparing a statement"),
                    &[&run.as_str(), &count],
                )
                .await
                .map_err(PgJournalError::db("advancing a run's position"))?;
            }
            Ok(first.unsigned_abs())
        })
        .await
    }

    /// Every journal record of `run`, in the order appended (empty for a run with none, or
    /// one the database does not have).
    ///
    /// # Errors
    ///
    /// When the query fails.
    pub async fn load(&self, run: &RunId) -> Result<Vec<Vec<u8>>, PgJournalError> {
        let client = self.client().await?;
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

    /// The row of `run` as the claim rule sees it, if the database has it.
    ///
    /// # Errors
    ///
    /// When the query fails, or the row holds values the library does not write.
    pub async fn head(&self, run: &RunId) -> Result<Option<LeaseHead>, PgJournalError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                cached!(
                    client,
                    "SELECT owner_epoch, owner_name, \
                 (extract(epoch from lease_expires_at) * 1000)::bigint, status \
                 FROM overseer_runs WHERE run_id = $1",
                    "preparing a statement"
                ),
                &[&run.as_str()],
            )
            .await
            .map_err(PgJournalError::db("reading a run"))?;
        row.as_ref().map(lease_head).transpose()
    }

    /// Takes up to `limit` runs for `owner` from the work queue (queued or handed back, or
    /// whose lease has run out on the database's clock), each at its next epoch under a lease of
    /// `lease`. Rows another claimer is taking at the same moment are skipped
    /// (`FOR UPDATE SKIP LOCKED`), so concurrent claimers never take the same run and never
    /// wait on each other.
    ///
    /// # Errors
    ///
    /// When the statement fails; then nothing was taken.
    pub async fn next_claimable(
        &self,
        owner: &str,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<ClaimedRun>, PgJournalError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let client = self.client().await?;
        let rows = client
            .query(
                cached!(
                    client,
                    "WITH picked AS ( \
                   SELECT run_id FROM overseer_runs \
                   WHERE status = 'queued' OR (status = 'running' AND \
                     (lease_expires_at IS NULL OR lease_expires_at <= clock_timestamp())) \
                   ORDER BY lease_expires_at NULLS FIRST, created_at \
                   LIMIT $2 FOR UPDATE SKIP LOCKED) \
                 UPDATE overseer_runs AS r SET owner_epoch = r.owner_epoch + 1, \
                   owner_name = $1, status = 'running', \
                   lease_expires_at = clock_timestamp() + $3 * interval '1 millisecond', \
                   updated_at = clock_timestamp() \
                 FROM picked WHERE r.run_id = picked.run_id \
                 RETURNING r.run_id, r.owner_epoch",
                    "preparing a statement"
                ),
                &[&owner, &limit, &(lease_ms(lease) as f64)],
            )
            .await
            .map_err(PgJournalError::db("taking runs from the queue"))?;
        rows.iter()
            .map(|row| {
                let id: String = row.get(0);
                let run = RunId::new(id.clone()).map_err(|e| PgJournalError::Corrupt {
                    what: format!("run id {id:?}: {e}"),
                })?;
                let epoch = epoch_of(row.get(1))?.ok_or_else(|| PgJournalError::Corrupt {
                    what: format!("run {run} claimed at epoch 0"),
                })?;
                Ok(ClaimedRun { run, epoch })
            })
            .collect()
    }

    /// Runs `work` in one transaction on a connection of the pool: committed when it returns
    /// `Ok` (`committing` names the commit in its error), rolled back when it fails (the
    /// transaction is dropped), so that nothing of it is half-written.
    pub(crate) async fn in_transaction<T>(
        &self,
        committing: &'static str,
        work: impl AsyncFnOnce(&deadpool_postgres::Transaction<'_>) -> Result<T, PgJournalError>,
    ) -> Result<T, PgJournalError> {
        let mut client = self.client().await?;
        let tx = client
            .transaction()
            .await
            .map_err(PgJournalError::db("beginning a transaction"))?;
        let done = work(&tx).await?;
        tx.commit().await.map_err(PgJournalError::db(committing))?;
        Ok(done)
    }

    /// A connection of the pool, within the configured bounds.
    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Object, PgJournalError> {
        self.pool.get().await.map_err(|e| match e {
            PoolError::Backend(source) => PgJournalError::Connect { source },
            PoolError::Timeout(_) => PgJournalError::ConnectTimeout {
                after: self.connect_timeout,
            },
            other => PgJournalError::Pool {
                message: other.to_string(),
            },
        })
    }
}

/// Whether `writer` still holds `run`, whose row (locked) says `current` and `status`: the
/// check every fenced write makes before it writes.
pub(crate) fn writer_holds(
    run: &RunId,
    writer: Epoch,
    current: Option<Epoch>,
    status: RunStatus,
) -> Result<(), PgJournalError> {
    if current != Some(writer) {
        return Err(PgJournalError::Fenced {
            run: run.clone(),
            writer,
            current,
        });
    }
    match status {
        RunStatus::Running => Ok(()),
        RunStatus::Finished => Err(PgJournalError::Finished { run: run.clone() }),
        // Handed back by this very holder: it no longer holds the run.
        RunStatus::Queued => Err(PgJournalError::Fenced {
            run: run.clone(),
            writer,
            current: None,
        }),
    }
}

/// Why a write of `writer` to `run` matched no row: the run's state, read now.
pub(crate) async fn refusal(
    client: &impl GenericClient,
    run: &RunId,
    writer: Epoch,
) -> PgJournalError {
    let row = client
        .query_opt(
            "SELECT owner_epoch, status FROM overseer_runs WHERE run_id = $1",
            &[&run.as_str()],
        )
        .await;
    let row = match row {
        Ok(Some(row)) => row,
        Ok(None) => return PgJournalError::UnknownRun { run: run.clone() },
        Err(source) => {
            return PgJournalError::Database {
                operation: "reading why a write was refused",
                source,
            }
        }
    };
    let current = match epoch_of(row.get(0)) {
        Ok(current) => current,
        Err(e) => return e,
    };
    if current != Some(writer) {
        return PgJournalError::Fenced {
            run: run.clone(),
            writer,
            current,
        };
    }
    // The writer holds the epoch but the run is not running: finished, or handed back by it.
    match status_of(row.get(1)) {
        Ok(RunStatus::Finished) => PgJournalError::Finished { run: run.clone() },
        Ok(_) => PgJournalError::Fenced {
            run: run.clone(),
            writer,
            current: None,
        },
        Err(e) => e,
    }
}

pub(crate) fn lease_head(row: &Row) -> Result<LeaseHead, PgJournalError> {
    Ok(LeaseHead {
        epoch: epoch_of(row.get(0))?,
        owner: row.get(1),
        lease_expires_ms: row.get(2),
        status: status_of(row.get(3))?,
    })
}

pub(crate) fn epoch_of(value: i64) -> Result<Option<Epoch>, PgJournalError> {
    match u64::try_from(value) {
        Ok(0) => Ok(None),
        Ok(epoch) => Ok(Some(Epoch(epoch))),
        Err(_) => Err(PgJournalError::Corrupt {
            what: format!("owner epoch {value}"),
        }),
    }
}

pub(crate) fn epoch_sql(epoch: Epoch) -> Result<i64, PgJournalError> {
    i64::try_from(epoch.0).map_err(|_| PgJournalError::OutOfRange {
        what: "owner epoch",
        value: epoch.0.to_string(),
    })
}

pub(crate) fn status_of(text: &str) -> Result<RunStatus, PgJournalError> {
    RunStatus::parse(text).ok_or_else(|| PgJournalError::Corrupt {
        what: format!("run status {text:?}"),
    })
}
