//! A fleet-wide budget: the committed and reserved spend of a shared limit, in the database,
//! reserved and committed transactionally, so that any number of processes together never
//! reserve past the limit.

use std::time::Duration;

use crate::{PgJournalError, PgStore};

/// An amount of a limit held for a spend not yet known: [`commit`](PgStore::commit_reservation)
/// it with the actual spend, or [`release`](PgStore::release_reservation) it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "a reservation holds budget until it is committed or released"]
pub struct Reservation {
    /// Its id in `overseer_budget_reservations`.
    pub id: i64,
    /// The amount held.
    pub amount: u64,
}

/// What [`PgStore::reserve`] got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reserve {
    /// The amount is held.
    Granted(Reservation),
    /// Held, it would take committed and reserved spend past the limit: nothing was held.
    Refused {
        /// What is still free (limit less committed and reserved).
        available: u64,
    },
    /// The limit has tripped ([`PgStore::trip_limit`], or a commit spent it): nothing is held
    /// any more.
    Tripped {
        /// Why, as recorded.
        reason: String,
    },
}

/// Why a limit tripped, as a commit that spends it records it.
pub(crate) const SPENT: &str = "committed spend reached the limit";

/// A limit's figures and its trip, read together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LimitRow {
    pub(crate) state: LimitState,
    /// Why it tripped, once it has.
    pub(crate) tripped: Option<String>,
}

impl LimitRow {
    /// From `limit_value, committed, reserved, tripped_reason`.
    fn of(row: &tokio_postgres::Row) -> Self {
        LimitRow {
            state: LimitState {
                limit: amount_of(row.get(0)),
                committed: amount_of(row.get(1)),
                reserved: amount_of(row.get(2)),
            },
            tripped: row.get(3),
        }
    }
}

/// Settles spend on a limit: `$2` less reserved, `$3` more committed, and the trip (`$4`) set
/// once, by the first settlement that takes committed spend to the limit (`committed` is the
/// old value in an `UPDATE`).
const SETTLE_SQL: &str = "UPDATE overseer_budget SET reserved = reserved - $2, \
     committed = committed + $3, \
     tripped_reason = CASE WHEN tripped_reason IS NULL AND committed + $3 >= limit_value \
       THEN $4 ELSE tripped_reason END, \
     tripped_at = CASE WHEN tripped_at IS NULL AND committed + $3 >= limit_value \
       THEN clock_timestamp() ELSE tripped_at END \
     WHERE limit_name = $1 RETURNING limit_value, committed, reserved, tripped_reason";

/// A limit's figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitState {
    /// The limit.
    pub limit: u64,
    /// Spent for good.
    pub committed: u64,
    /// Held by open reservations.
    pub reserved: u64,
}

impl LimitState {
    /// What is still free (never negative).
    pub fn available(&self) -> u64 {
        self.limit
            .saturating_sub(self.committed)
            .saturating_sub(self.reserved)
    }
}

fn amount_sql(what: &'static str, amount: u64) -> Result<i64, PgJournalError> {
    i64::try_from(amount).map_err(|_| PgJournalError::OutOfRange {
        what,
        value: amount.to_string(),
    })
}

fn amount_of(value: i64) -> u64 {
    // The table's CHECK constraints keep every figure non-negative.
    value.unsigned_abs()
}

impl PgStore {
    /// Sets the limit named `name` to `limit`, creating it with nothing spent if it is new
    /// (its committed and reserved spend are kept if it exists).
    ///
    /// # Errors
    ///
    /// [`OutOfRange`](PgJournalError::OutOfRange) above `i64::MAX`; when the statement fails.
    pub async fn define_limit(&self, name: &str, limit: u64) -> Result<(), PgJournalError> {
        let limit = amount_sql("budget limit", limit)?;
        let client = self.client().await?;
        client
            .execute(
                cached!(
                    client,
                    "INSERT INTO overseer_budget (limit_name, limit_value) VALUES ($1, $2) \
                 ON CONFLICT (limit_name) DO UPDATE SET limit_value = EXCLUDED.limit_value",
                    "preparing a statement"
                ),
                &[&name, &limit],
            )
            .await
            .map_err(PgJournalError::db("defining a budget limit"))?;
        Ok(())
    }

    /// The figures of the limit named `name`.
    ///
    /// # Errors
    ///
    /// [`UnknownLimit`](PgJournalError::UnknownLimit); when the query fails.
    pub async fn limit_state(&self, name: &str) -> Result<LimitState, PgJournalError> {
        Ok(self.read_limit(name).await?.state)
    }

    /// Why the limit named `name` tripped, once it has.
    ///
    /// # Errors
    ///
    /// [`UnknownLimit`](PgJournalError::UnknownLimit); when the query fails.
    pub async fn limit_trip(&self, name: &str) -> Result<Option<String>, PgJournalError> {
        Ok(self.read_limit(name).await?.tripped)
    }

    pub(crate) async fn read_limit(&self, name: &str) -> Result<LimitRow, PgJournalError> {
        let client = self.client().await?;
        read_limit_in(&client, name).await
    }

    /// Trips the limit named `name`, for `reason` (kept if it has tripped already): from now on
    /// every reservation of it is refused, and every [`FleetLimit`](crate::FleetLimit)
    /// watching it trips at its next heartbeat.
    ///
    /// # Errors
    ///
    /// [`UnknownLimit`](PgJournalError::UnknownLimit); when the statement fails.
    pub async fn trip_limit(&self, name: &str, reason: &str) -> Result<LimitState, PgJournalError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                cached!(
                    client,
                    "UPDATE overseer_budget SET tripped_reason = coalesce(tripped_reason, $2), \
                     tripped_at = coalesce(tripped_at, clock_timestamp()) WHERE limit_name = $1 \
                     RETURNING limit_value, committed, reserved, tripped_reason",
                    "preparing a statement"
                ),
                &[&name, &reason],
            )
            .await
            .map_err(PgJournalError::db("tripping a budget limit"))?
            .ok_or_else(|| PgJournalError::UnknownLimit { name: name.into() })?;
        Ok(LimitRow::of(&row).state)
    }

    /// Records `spent` of the limit named `name` that no reservation held: it happened, so it
    /// is committed even past the limit (and trips it when it reaches it).
    ///
    /// # Errors
    ///
    /// [`UnknownLimit`](PgJournalError::UnknownLimit), [`OutOfRange`](PgJournalError::OutOfRange);
    /// when the statement fails (then nothing changed).
    pub async fn charge_limit(&self, name: &str, spent: u64) -> Result<LimitState, PgJournalError> {
        let spent = amount_sql("charged spend", spent)?;
        let nothing = 0i64;
        let client = self.client().await?;
        let row = client
            .query_opt(
                cached!(client, SETTLE_SQL, "preparing a statement"),
                &[&name, &nothing, &spent, &SPENT],
            )
            .await
            .map_err(PgJournalError::db("charging a budget limit"))?
            .ok_or_else(|| PgJournalError::UnknownLimit { name: name.into() })?;
        Ok(LimitRow::of(&row).state)
    }

    /// Holds `amount` of the limit named `name`, if committed and reserved spend plus
    /// `amount` stay within the limit: checked and held in one transaction on the limit's row,
    /// so concurrent reservations from any number of processes never overshoot.
    ///
    /// # Errors
    ///
    /// [`UnknownLimit`](PgJournalError::UnknownLimit), [`OutOfRange`](PgJournalError::OutOfRange);
    /// when a statement fails (then nothing is held).
    pub async fn reserve(&self, name: &str, amount: u64) -> Result<Reserve, PgJournalError> {
        self.reserve_as(name, amount, None).await
    }

    /// [`reserve`](Self::reserve) for `holder`, whose hold expires `ttl` from now unless
    /// [`renew_holds`](Self::renew_holds) renews it: what a process that may die holds with.
    /// Expired holds of the limit (their holders died, or stopped renewing) are swept first,
    /// in the same transaction, and their amount is no longer reserved.
    ///
    /// # Errors
    ///
    /// As [`reserve`](Self::reserve).
    pub async fn reserve_for(
        &self,
        name: &str,
        amount: u64,
        holder: &str,
        ttl: Duration,
    ) -> Result<Reserve, PgJournalError> {
        self.reserve_as(name, amount, Some((holder, ttl))).await
    }

    /// Renews every hold of `holder` for `ttl` from now; returns how many.
    ///
    /// # Errors
    ///
    /// When the statement fails.
    pub async fn renew_holds(&self, holder: &str, ttl: Duration) -> Result<u64, PgJournalError> {
        let client = self.client().await?;
        client
            .execute(
                cached!(
                    client,
                    "UPDATE overseer_budget_reservations \
                     SET expires_at = clock_timestamp() + make_interval(secs => $2) \
                     WHERE holder = $1",
                    "preparing a statement"
                ),
                &[&holder, &ttl.as_secs_f64()],
            )
            .await
            .map_err(PgJournalError::db("renewing holds"))
    }

    async fn reserve_as(
        &self,
        name: &str,
        amount: u64,
        holder: Option<(&str, Duration)>,
    ) -> Result<Reserve, PgJournalError> {
        let wanted = amount_sql("budget reservation", amount)?;
        let (holder, ttl) = match holder {
            Some((holder, ttl)) => (Some(holder), Some(ttl.as_secs_f64())),
            None => (None, None),
        };
        self.in_transaction("committing a reservation", async |tx| {
            tx.execute(
                cached!(
                    tx,
                    "WITH gone AS (DELETE FROM overseer_budget_reservations \
                       WHERE limit_name = $1 AND expires_at < clock_timestamp() RETURNING amount) \
                     UPDATE overseer_budget \
                     SET reserved = reserved - (SELECT coalesce(sum(amount), 0)::bigint FROM gone) \
                     WHERE limit_name = $1 AND EXISTS (SELECT 1 FROM gone)",
                    "preparing a statement"
                ),
                &[&name],
            )
            .await
            .map_err(PgJournalError::db("sweeping expired holds"))?;
            let held = tx
                .query_opt(
                    cached!(
                        tx,
                        "UPDATE overseer_budget SET reserved = reserved + $2 \
                     WHERE limit_name = $1 AND tripped_reason IS NULL \
                       AND committed + reserved + $2 <= limit_value \
                     RETURNING limit_name",
                        "preparing a statement"
                    ),
                    &[&name, &wanted],
                )
                .await
                .map_err(PgJournalError::db("reserving budget"))?;
            if held.is_none() {
                let row = read_limit_in(tx, name).await?;
                return Ok(match row.tripped {
                    Some(reason) => Reserve::Tripped { reason },
                    None => Reserve::Refused {
                        available: row.state.available(),
                    },
                });
            }
            let id: i64 = tx
                .query_one(
                    cached!(tx, "INSERT INTO overseer_budget_reservations (limit_name, amount, holder, expires_at) \
                     VALUES ($1, $2, $3, clock_timestamp() + make_interval(secs => $4)) \
                     RETURNING id", "preparing a statement"),
                    &[&name, &wanted, &holder, &ttl],
                )
                .await
                .map_err(PgJournalError::db("recording a reservation"))?
                .get(0);
            Ok(Reserve::Granted(Reservation { id, amount }))
        })
        .await
    }

    /// Turns `reservation` into spend: its amount is no longer reserved and `actual` is
    /// committed, in one transaction. An `actual` above the amount reserved is recorded as it
    /// is (the spend happened) and may take the committed spend past the limit; the limit
    /// holds while every spend stays within its reservation.
    ///
    /// # Errors
    ///
    /// [`UnknownReservation`](PgJournalError::UnknownReservation) when it was already committed
    /// or released; when a statement fails (then nothing changed).
    pub async fn commit_reservation(
        &self,
        reservation: Reservation,
        actual: u64,
    ) -> Result<LimitState, PgJournalError> {
        Ok(self.commit_held(reservation, actual).await?.state)
    }

    /// [`commit_reservation`](Self::commit_reservation), with the limit's trip.
    pub(crate) async fn commit_held(
        &self,
        reservation: Reservation,
        actual: u64,
    ) -> Result<LimitRow, PgJournalError> {
        let actual = amount_sql("committed spend", actual)?;
        self.settle(reservation, actual).await
    }

    /// Gives `reservation` back unspent.
    ///
    /// # Errors
    ///
    /// As [`commit_reservation`](Self::commit_reservation).
    pub async fn release_reservation(
        &self,
        reservation: Reservation,
    ) -> Result<LimitState, PgJournalError> {
        Ok(self.settle(reservation, 0).await?.state)
    }

    async fn settle(
        &self,
        reservation: Reservation,
        actual: i64,
    ) -> Result<LimitRow, PgJournalError> {
        self.in_transaction("committing a settlement", async |tx| {
            let row = tx
                .query_opt(
                    cached!(
                        tx,
                        "DELETE FROM overseer_budget_reservations WHERE id = $1 \
                     RETURNING limit_name, amount",
                        "preparing a statement"
                    ),
                    &[&reservation.id],
                )
                .await
                .map_err(PgJournalError::db("closing a reservation"))?
                .ok_or(PgJournalError::UnknownReservation { id: reservation.id })?;
            let name: String = row.get(0);
            let amount: i64 = row.get(1);
            let row = tx
                .query_one(
                    cached!(tx, SETTLE_SQL, "preparing a statement"),
                    &[&name, &amount, &actual, &SPENT],
                )
                .await
                .map_err(PgJournalError::db("settling a reservation"))?;
            Ok(LimitRow::of(&row))
        })
        .await
    }
}

/// The limit named `name`, read on `client` (a connection or a transaction).
async fn read_limit_in(
    client: &impl deadpool_postgres::GenericClient,
    name: &str,
) -> Result<LimitRow, PgJournalError> {
    let row = client
        .query_opt(
            cached!(
                client,
                "SELECT limit_value, committed, reserved, tripped_reason FROM overseer_budget \
                 WHERE limit_name = $1",
                "preparing a statement"
            ),
            &[&name],
        )
        .await
        .map_err(PgJournalError::db("reading a budget limit"))?
        .ok_or_else(|| PgJournalError::UnknownLimit { name: name.into() })?;
    Ok(LimitRow::of(&row))
}
