//! A shared budget limit as a fleet-wide kill switch: reservations and commits in the database,
//! and a heartbeat that tells every process once the limit is spent.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::{LimitState, PgJournalError, PgStore, Reservation, Reserve};

/// One process's handle on a shared limit: what it reserves and commits goes through the
/// database, so that the processes together never take committed and reserved spend past the
/// limit; a heartbeat reads the limit every `heartbeat` and trips [`tripped`](Self::tripped)
/// once its committed spend has reached it, so that **every** process sees the trip within one
/// heartbeat of the commit that caused it (the process that committed it, at once). Connect
/// [`watch`](Self::watch) to the process's kill switch to make it fleet-wide.
///
/// Dropping the handle stops its heartbeat.
#[derive(Debug)]
pub struct FleetLimit {
    store: PgStore,
    name: Arc<str>,
    tripped: watch::Sender<Option<LimitState>>,
    heartbeat: tokio::task::JoinHandle<()>,
}

impl Drop for FleetLimit {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

impl FleetLimit {
    /// Watches the limit `name` (defined already, with [`PgStore::define_limit`]) every
    /// `heartbeat`. Spawns its heartbeat on the current tokio runtime.
    ///
    /// # Errors
    ///
    /// [`UnknownLimit`](PgJournalError::UnknownLimit); when the limit cannot be read.
    pub async fn watch_limit(
        store: PgStore,
        name: &str,
        heartbeat: Duration,
    ) -> Result<Self, PgJournalError> {
        let state = store.limit_state(name).await?;
        let (tripped, _) = watch::channel(spent(state));
        let name: Arc<str> = Arc::from(name);
        let beat = {
            let (store, name, tripped) = (store.clone(), Arc::clone(&name), tripped.clone());
            tokio::spawn(async move {
                let mut ticks = tokio::time::interval(heartbeat.max(Duration::from_millis(1)));
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    ticks.tick().await;
                    match store.limit_state(&name).await {
                        Ok(state) => trip_if_spent(&tripped, state),
                        Err(error) => {
                            tracing::warn!(limit = %name, %error, "fleet limit: the heartbeat could not read the limit");
                        }
                    }
                }
            })
        };
        Ok(Self {
            store,
            name,
            tripped,
            heartbeat: beat,
        })
    }

    /// Holds `amount` of the limit ([`PgStore::reserve`]); refused once the limit is tripped.
    ///
    /// # Errors
    ///
    /// As [`PgStore::reserve`].
    pub async fn reserve(&self, amount: u64) -> Result<Reserve, PgJournalError> {
        if self.tripped.borrow().is_some() {
            return Ok(Reserve::Refused { available: 0 });
        }
        self.store.reserve(&self.name, amount).await
    }

    /// Turns `reservation` into `actual` spend ([`PgStore::commit_reservation`]), and trips
    /// at once if that spent the limit.
    ///
    /// # Errors
    ///
    /// As [`PgStore::commit_reservation`].
    pub async fn commit(
        &self,
        reservation: Reservation,
        actual: u64,
    ) -> Result<LimitState, PgJournalError> {
        let state = self.store.commit_reservation(reservation, actual).await?;
        trip_if_spent(&self.tripped, state);
        Ok(state)
    }

    /// Gives `reservation` back ([`PgStore::release_reservation`]).
    ///
    /// # Errors
    ///
    /// As [`PgStore::release_reservation`].
    pub async fn release(&self, reservation: Reservation) -> Result<LimitState, PgJournalError> {
        self.store.release_reservation(reservation).await
    }

    /// The limit's figures when it tripped, once it has (its committed spend reached it).
    pub fn tripped(&self) -> Option<LimitState> {
        *self.tripped.borrow()
    }

    /// A receiver that changes once, when the limit trips.
    pub fn watch(&self) -> watch::Receiver<Option<LimitState>> {
        self.tripped.subscribe()
    }
}

/// `Some(state)` when its committed spend has reached its limit.
fn spent(state: LimitState) -> Option<LimitState> {
    (state.committed >= state.limit).then_some(state)
}

fn trip_if_spent(tripped: &watch::Sender<Option<LimitState>>, state: LimitState) {
    if let Some(state) = spent(state) {
        tripped.send_if_modified(|held| {
            if held.is_some() {
                return false;
            }
            tracing::warn!(
                limit = state.limit,
                committed = state.committed,
                "fleet limit: spent; tripped"
            );
            *held = Some(state);
            true
        });
    }
}
