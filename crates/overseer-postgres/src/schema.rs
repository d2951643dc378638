//! The tables, created and migrated by the library: a list of versioned migrations, applied
//! in one transaction under an advisory lock, so that two processes migrating at once are
//! safe (the second waits, then finds nothing to do).

use tokio_postgres::GenericClient;

use crate::PgJournalError;

/// The advisory lock key every migration takes (`pg_advisory_xact_lock`): "overseer" in ASCII.
pub(crate) const MIGRATION_LOCK: i64 = 0x6f76_6572_7365_6572;

/// One step of the schema.
struct Migration {
    version: i32,
    name: &'static str,
    sql: &'static str,
}

/// Every migration this library knows, in order. A migration, once released, never changes:
/// a change is a new one.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "runs, journal records, effects, dead letters, signals, fleet budget",
        // The shape follows DBOS's (a row per run with its owner; the run's steps keyed by run and
        // position): every write to a run is conditioned on its owner epoch.
        sql: r#"
CREATE TABLE overseer_runs (
    run_id           text        PRIMARY KEY,
    -- 0 until a first claim; each claim adds one.
    owner_epoch      bigint      NOT NULL DEFAULT 0 CHECK (owner_epoch >= 0),
    owner_name       text,
    -- Judged by the database's clock (clock_timestamp()), never by a process's.
    lease_expires_at timestamptz,
    status           text        NOT NULL DEFAULT 'queued'
                                 CHECK (status IN ('queued', 'running', 'finished')),
    -- The ask's fingerprint (a second ask of the same run id with other input is refused
    -- above this layer) and the run's recorded outcome, once finished.
    fingerprint      bytea,
    outcome          bytea,
    -- The position the next journal record of the run takes.
    next_seq         bigint      NOT NULL DEFAULT 0 CHECK (next_seq >= 0),
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at       timestamptz NOT NULL DEFAULT clock_timestamp()
);
-- The work queue: what is not finished, by when its lease runs out.
CREATE INDEX overseer_runs_claimable ON overseer_runs (lease_expires_at NULLS FIRST, created_at)
    WHERE status <> 'finished';

CREATE TABLE overseer_journal (
    run_id  text   NOT NULL REFERENCES overseer_runs (run_id) ON DELETE CASCADE,
    seq     bigint NOT NULL CHECK (seq >= 0),
    payload bytea  NOT NULL,
    PRIMARY KEY (run_id, seq)
);

-- Effect intents and idempotency keys: a keyed or unsafe effect's intent, then its result.
CREATE TABLE overseer_effects (
    idempotency_key text        PRIMARY KEY,
    run_id          text        NOT NULL REFERENCES overseer_runs (run_id) ON DELETE CASCADE,
    step            text        NOT NULL,
    owner_epoch     bigint      NOT NULL CHECK (owner_epoch >= 0),
    state           text        NOT NULL CHECK (state IN ('intent', 'done', 'failed')),
    fingerprint     bytea,
    result          bytea,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at      timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX overseer_effects_run ON overseer_effects (run_id);

CREATE TABLE overseer_dead_letters (
    id         bigserial   PRIMARY KEY,
    run_id     text,
    payload    bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE overseer_signals (
    id           bigserial   PRIMARY KEY,
    run_id       text        NOT NULL REFERENCES overseer_runs (run_id) ON DELETE CASCADE,
    name         text        NOT NULL,
    payload      bytea       NOT NULL,
    delivered_at timestamptz,
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX overseer_signals_pending ON overseer_signals (run_id, id) WHERE delivered_at IS NULL;

-- A fleet-wide budget: committed and reserved spend of one shared limit.
CREATE TABLE overseer_budget (
    limit_name  text   PRIMARY KEY,
    limit_value bigint NOT NULL CHECK (limit_value >= 0),
    committed   bigint NOT NULL DEFAULT 0 CHECK (committed >= 0),
    reserved    bigint NOT NULL DEFAULT 0 CHECK (reserved >= 0)
);
CREATE TABLE overseer_budget_reservations (
    id         bigserial   PRIMARY KEY,
    limit_name text        NOT NULL REFERENCES overseer_budget (limit_name) ON DELETE CASCADE,
    amount     bigint      NOT NULL CHECK (amount >= 0),
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
"#,
    },
    Migration {
        version: 2,
        name: "a fleet limit's trip, a run's signals, holds that expire",
        // The trip is set once, by the commit that spends the limit or by a process whose kill
        // switch tripped; every process's heartbeat reads it. `signalled` counts the signals
        // delivered to the run (records appended without an epoch): its holder polls it. A
        // reservation made for a holder expires unless its holder's heartbeat renews it: a dead
        // process's holds are swept by the next reservation of the limit. Effect intents,
        // idempotency keys and signals are records of the run's journal (`overseer_journal`),
        // appended under the run's epoch like its steps, as the embedded journal keeps them:
        // the tables version 1 made for them apart are dropped.
        sql: r#"
ALTER TABLE overseer_budget ADD COLUMN tripped_reason text, ADD COLUMN tripped_at timestamptz;
ALTER TABLE overseer_runs ADD COLUMN signalled bigint NOT NULL DEFAULT 0 CHECK (signalled >= 0);
ALTER TABLE overseer_budget_reservations ADD COLUMN holder text, ADD COLUMN expires_at timestamptz;
DROP TABLE overseer_effects;
DROP TABLE overseer_signals;
"#,
    },
];

/// The newest schema version this library knows.
pub const SCHEMA_VERSION: i32 = 2;

/// What [`PgStore::migrate`](crate::PgStore::migrate) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migrated {
    /// The version the database was at (0: no Overseer tables).
    pub from: i32,
    /// The version it is at now: [`SCHEMA_VERSION`].
    pub to: i32,
}

impl Migrated {
    /// Whether anything was applied.
    pub fn applied(&self) -> bool {
        self.from != self.to
    }
}

/// Applies the missing migrations in the transaction `tx` (the caller commits it).
pub(crate) async fn migrate_in(tx: &impl GenericClient) -> Result<Migrated, PgJournalError> {
    // Another process's migration may take longer than the lock timeout operations use.
    tx.batch_execute("SET LOCAL lock_timeout = '120s'")
        .await
        .map_err(PgJournalError::db("setting the migration's lock timeout"))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(PgJournalError::db("taking the migration lock"))?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS overseer_schema (
            version    integer     PRIMARY KEY,
            name       text        NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT clock_timestamp()
        )",
    )
    .await
    .map_err(PgJournalError::db("creating the schema version table"))?;
    let from = current_version(tx).await?;
    if from > SCHEMA_VERSION {
        return Err(PgJournalError::SchemaTooNew {
            found: from,
            supported: SCHEMA_VERSION,
        });
    }
    for migration in MIGRATIONS.iter().filter(|m| m.version > from) {
        tx.batch_execute(migration.sql)
            .await
            .map_err(PgJournalError::db("applying a migration"))?;
        tx.execute(
            "INSERT INTO overseer_schema (version, name) VALUES ($1, $2)",
            &[&migration.version, &migration.name],
        )
        .await
        .map_err(PgJournalError::db("recording a migration"))?;
        tracing::info!(
            version = migration.version,
            name = migration.name,
            "overseer schema migrated"
        );
    }
    Ok(Migrated {
        from,
        to: SCHEMA_VERSION,
    })
}

/// The version recorded in `overseer_schema` (0 when it is empty).
pub(crate) async fn current_version(client: &impl GenericClient) -> Result<i32, PgJournalError> {
    let row = client
        .query_one("SELECT coalesce(max(version), 0) FROM overseer_schema", &[])
        .await
        .map_err(PgJournalError::db("reading the schema version"))?;
    Ok(row.get(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_one_after_the_other_up_to_the_schema_version() {
        for (i, migration) in MIGRATIONS.iter().enumerate() {
            assert_eq!(migration.version, i as i32 + 1, "{}", migration.name);
        }
        assert_eq!(MIGRATIONS.last().map(|m| m.version), Some(SCHEMA_VERSION));
    }
}
