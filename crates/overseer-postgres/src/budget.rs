//! A fleet-wide budget: the committed and reserved spend of a shared limit, in the database,
//! reserved and committed transactionally, so that any number of processes together never
//! reserve past the limit.

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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reserve {
    /// The amount is held.
    Granted(Reservation),
    /// Held, it would take committed and reserved spend past the limit: nothing was held.
    Refused {
        /// What is still free (limit less committed and reserved).
        available: u64,
    },
}

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
        let client = self.client().await?;
        let row = client
            .query_opt(
                cached!(client, "SELECT limit_value, committed, reserved FROM overseer_budget WHERE limit_name = $1", "preparing a statement"),
                &[&name],
            )
            .await
            .map_err(PgJournalError::db("reading a budget limit"))?
            .ok_or_else(|| PgJournalError::UnknownLimit { name: name.into() })?;
        Ok(LimitState {
            limit: amount_of(row.get(0)),
            committed: amount_of(row.get(1)),
            reserved: amount_of(row.get(2)),
        })
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
        let wanted = amount_sql("budget reservation", amount)?;
        let mut client = self.client().await?;
        let tx = client
            .transaction()
            .await
            .map_err(PgJournalError::db("beginning a reservation"))?;
        let held = tx
            .query_opt(
                cached!(
                    tx,
                    "UPDATE overseer_budget SET reserved = reserved + $2 \
                 WHERE limit_name = $1 AND committed + reserved + $2 <= limit_value \
                 RETURNING limit_name",
                    "preparing a statement"
                ),
                &[&name, &wanted],
            )
            .await
            .map_err(PgJournalError::db("reserving budget"))?;
        if held.is_none() {
            let row = tx
                .query_opt(
                    cached!(
                        tx,
                        "SELECT limit_value, committed, reserved FROM overseer_budget \
                     WHERE limit_name = $1",
                        "preparing a statement"
                    ),
                    &[&name],
                )
                .await
                .map_err(PgJournalError::db("reading a budget limit"))?
                .ok_or_else(|| PgJournalError::UnknownLimit { name: name.into() })?;
            let state = LimitState {
                limit: amount_of(row.get(0)),
                committed: amount_of(row.get(1)),
                reserved: amount_of(row.get(2)),
            };
            return Ok(Reserve::Refused {
                available: state.available(),
            });
        }
        let id: i64 = tx
            .query_one(
                cached!(tx, "INSERT INTO overseer_budget_reservations (limit_name, amount) VALUES ($1, $2) \
                 RETURNING id", "preparing a statement"),
                &[&name, &wanted],
            )
            .await
            .map_err(PgJournalError::db("recording a reservation"))?
            .get(0);
        tx.commit()
            .await
            .map_err(PgJournalError::db("committing a reservation"))?;
        Ok(Reserve::Granted(Reservation { id, amount }))
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
        self.settle(reservation, 0).await
    }

    async fn settle(
        &self,
        reservation: Reservation,
        actual: i64,
    ) -> Result<LimitState, PgJournalError> {
        let mut client = self.client().await?;
        let tx = client
            .transaction()
            .await
            .map_err(PgJournalError::db("beginning a settlement"))?;
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
                cached!(tx, "UPDATE overseer_budget SET reserved = reserved - $2, committed = committed + $3 \
                 WHERE limit_name = $1 RETURNING limit_value, committed, reserved", "preparing a statement"),
                &[&name, &amount, &actual],
            )
            .await
            .map_err(PgJournalError::db("settling a reservation"))?;
        tx.commit()
            .await
            .map_err(PgJournalError::db("committing a settlement"))?;
        Ok(LimitState {
            limit: amount_of(row.get(0)),
            committed: amount_of(row.get(1)),
            reserved: amount_of(row.get(2)),
        })
    }
}
