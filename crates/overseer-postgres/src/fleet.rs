//! A shared budget limit as a fleet-wide kill switch: reservations and commits in the database,
//! and a heartbeat that tells every process once the limit has tripped.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use overseer_budget::{
    HoldFuture, SharedHold, SharedLimit, SharedRefusal, TripCallback, TripReason,
};
use tokio::sync::watch;

use crate::budget::LimitRow;
use crate::{LimitState, PgJournalError, PgStore, Reservation, Reserve};

/// A shared limit's trip, as the fleet recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetTrip {
    /// The limit's figures when this process learnt of the trip.
    pub state: LimitState,
    /// Why: the commit that spent it, or the kill switch of a process (its reason).
    pub reason: String,
}

/// One process's handle on a shared limit (defined with [`PgStore::define_limit`]): what it
/// reserves and commits goes through the database, so that the processes together never take
/// committed and reserved spend past the limit. A heartbeat reads the limit every `heartbeat`
/// and trips the handle once the limit has tripped in the database (a commit spent it, or a
/// process tripped it with [`PgStore::trip_limit`]), so that **every** process sees a trip
/// within one heartbeat (the process that caused it, at once).
///
/// It is an [`overseer_budget::SharedLimit`]: give it to a budget
/// ([`BudgetBuilder::shared_limit`](overseer_budget::BudgetBuilder::shared_limit)) and the
/// budget's asks hold their estimates here, and its kill switch becomes fleet-wide: it trips
/// when this handle does, and its own trips (a deadline, a manual trip) trip the limit for the
/// whole fleet.
///
/// ```no_run
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// use overseer_budget::{Budget, Dimension, Limits, Spend};
/// use overseer_postgres::{FleetLimit, PgOptions, PgStore};
///
/// # async fn run(url: &str) -> Result<(), Box<dyn std::error::Error>> {
/// let store = PgStore::open(url, PgOptions::default()).await?;
/// store.define_limit("tokens", 1_000_000).await?; // the same in every process
/// let fleet = FleetLimit::watch_limit(store, "tokens", Duration::from_secs(1)).await?;
/// let budget = Budget::builder()
///     .process_limits(Limits::new().tokens(400_000)) // this process's own share, if any
///     .shared_limit(Dimension::Tokens, Arc::new(fleet))
///     .build()?;
/// // Hand `budget` to `System::builder().budget(budget)`; or admit by hand:
/// let call = budget.admit_shared("scout", Spend::from_tokens(2_000)).await?;
/// call.commit(Spend::from_tokens(1_500));
/// # Ok(())
/// # }
/// ```
///
/// Dropping the handle stops its heartbeat.
#[derive(Debug)]
pub struct FleetLimit {
    inner: Arc<Fleet>,
    heartbeat: tokio::task::JoinHandle<()>,
}

#[derive(Debug)]
struct Fleet {
    store: PgStore,
    name: Arc<str>,
    /// Who this process's holds belong to, and how long one lives unless the heartbeat renews
    /// it: the holds of a process that died are swept when they expire.
    holder: String,
    hold_ttl: Duration,
    tripped: watch::Sender<Option<FleetTrip>>,
    /// What to call when the limit trips; emptied when it does.
    callbacks: Mutex<Callbacks>,
    /// Where the settlements the budget asks for from synchronous code run.
    runtime: tokio::runtime::Handle,
    /// How many of those are still running.
    settling: watch::Sender<usize>,
}

#[derive(Default)]
struct Callbacks {
    pending: Vec<TripCallback>,
}

impl std::fmt::Debug for Callbacks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Callbacks")
            .field("pending", &self.pending.len())
            .finish()
    }
}

impl Drop for FleetLimit {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

/// A name for one `FleetLimit`'s holds, unique among processes: the process id, the wall-clock
/// time it was made at, and a counter within the process.
fn new_holder() -> String {
    static MADE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let made = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos());
    format!("{}-{at:x}-{made}", std::process::id())
}

/// How long a hold lives without being renewed: three heartbeats, and never under a second,
/// so that a heartbeat late by a little never lets a live process's holds expire.
fn hold_ttl(heartbeat: Duration) -> Duration {
    (heartbeat * 3).max(Duration::from_secs(1))
}

impl FleetLimit {
    /// Watches the limit `name` (defined already, with [`PgStore::define_limit`]) every
    /// `heartbeat`. Spawns its heartbeat on the current tokio runtime, where the settlements of
    /// a budget's reservations run too.
    ///
    /// # Errors
    ///
    /// [`UnknownLimit`](PgJournalError::UnknownLimit); when the limit cannot be read.
    pub async fn watch_limit(
        store: PgStore,
        name: &str,
        heartbeat: Duration,
    ) -> Result<Self, PgJournalError> {
        let row = store.read_limit(name).await?;
        let inner = Arc::new(Fleet {
            store,
            name: Arc::from(name),
            holder: new_holder(),
            hold_ttl: hold_ttl(heartbeat),
            tripped: watch::channel(None).0,
            callbacks: Mutex::new(Callbacks::default()),
            runtime: tokio::runtime::Handle::current(),
            settling: watch::channel(0).0,
        });
        inner.see(row);
        let beat = {
            let fleet = Arc::clone(&inner);
            tokio::spawn(async move {
                let mut ticks = tokio::time::interval(heartbeat.max(Duration::from_millis(1)));
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    ticks.tick().await;
                    match fleet.store.read_limit(&fleet.name).await {
                        Ok(row) => fleet.see(row),
                        Err(error) => {
                            tracing::warn!(limit = %fleet.name, %error, "fleet limit: the heartbeat could not read the limit");
                        }
                    }
                    if let Err(error) = fleet.store.renew_holds(&fleet.holder, fleet.hold_ttl).await
                    {
                        tracing::warn!(limit = %fleet.name, %error, "fleet limit: the heartbeat could not renew this process's holds");
                    }
                }
            })
        };
        Ok(Self {
            inner,
            heartbeat: beat,
        })
    }

    /// Holds `amount` of the limit ([`PgStore::reserve`]); refused once the limit is tripped.
    ///
    /// # Errors
    ///
    /// As [`PgStore::reserve`].
    pub async fn reserve(&self, amount: u64) -> Result<Reserve, PgJournalError> {
        if let Some(trip) = self.tripped() {
            return Ok(Reserve::Tripped {
                reason: trip.reason,
            });
        }
        let inner = &self.inner;
        let reserved = inner
            .store
            .reserve_for(&inner.name, amount, &inner.holder, inner.hold_ttl)
            .await?;
        if let Reserve::Tripped { reason } = &reserved {
            // Tripped in the database since the last heartbeat: trip here now.
            let state = self.inner.store.limit_state(&self.inner.name).await?;
            self.inner.trip_here(state, reason.clone());
        }
        Ok(reserved)
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
        let row = self.inner.store.commit_held(reservation, actual).await?;
        let state = row.state;
        self.inner.see(row);
        Ok(state)
    }

    /// Gives `reservation` back ([`PgStore::release_reservation`]).
    ///
    /// # Errors
    ///
    /// As [`PgStore::release_reservation`].
    pub async fn release(&self, reservation: Reservation) -> Result<LimitState, PgJournalError> {
        self.inner.store.release_reservation(reservation).await
    }

    /// Trips the limit for the whole fleet, for `reason`: here at once, in the others within
    /// their heartbeat.
    ///
    /// # Errors
    ///
    /// As [`PgStore::trip_limit`] (then it has tripped here only).
    pub async fn trip(&self, reason: &str) -> Result<(), PgJournalError> {
        self.inner.trip_fleet(reason).await
    }

    /// The trip, once the limit has tripped (in the database, as this process last read it).
    pub fn tripped(&self) -> Option<FleetTrip> {
        self.inner.tripped.borrow().clone()
    }

    /// A receiver that changes once, when the limit trips.
    pub fn watch(&self) -> watch::Receiver<Option<FleetTrip>> {
        self.inner.tripped.subscribe()
    }

    /// Waits until every settlement a budget asked for (commits, releases, charges, trips,
    /// which run in the background) has reached the database: before reading the limit's
    /// figures, or on a polite stop.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: the settlements go on.
    pub async fn settled(&self) {
        let mut settling = self.inner.settling.subscribe();
        // The sender lives in `self`: `wait_for` ends when the count is zero.
        let _ = settling.wait_for(|count| *count == 0).await;
    }
}

impl Fleet {
    /// Trips this handle if `row` says the limit has tripped.
    fn see(&self, row: LimitRow) {
        if let Some(reason) = row.tripped {
            self.trip_here(row.state, reason);
        }
    }

    /// Trips this handle (once) and calls the callbacks.
    fn trip_here(&self, state: LimitState, reason: String) {
        let changed = self.tripped.send_if_modified(|held| {
            if held.is_some() {
                return false;
            }
            tracing::warn!(
                limit = %self.name,
                limit_value = state.limit,
                committed = state.committed,
                %reason,
                "fleet limit: tripped"
            );
            *held = Some(FleetTrip {
                state,
                reason: reason.clone(),
            });
            true
        });
        if changed {
            let callbacks = std::mem::take(
                &mut self
                    .callbacks
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .pending,
            );
            for callback in callbacks {
                callback(&reason);
            }
        }
    }

    async fn trip_fleet(&self, reason: &str) -> Result<(), PgJournalError> {
        let state = self.store.trip_limit(&self.name, reason).await?;
        self.trip_here(state, reason.to_owned());
        Ok(())
    }

    /// Runs `settle` in the background, counted by [`FleetLimit::settled`].
    fn in_background<F>(self: &Arc<Self>, what: &'static str, settle: F)
    where
        F: std::future::Future<Output = Result<(), PgJournalError>> + Send + 'static,
    {
        self.settling.send_modify(|count| *count += 1);
        let fleet = Arc::clone(self);
        self.runtime.spawn(async move {
            if let Err(error) = settle.await {
                tracing::error!(limit = %fleet.name, %error, what, "fleet limit: a settlement failed");
            }
            fleet.settling.send_modify(|count| *count -= 1);
        });
    }
}

impl SharedLimit for FleetLimit {
    fn name(&self) -> &str {
        &self.inner.name
    }

    fn hold(&self, amount: u64) -> HoldFuture<'_> {
        Box::pin(async move {
            let unavailable = |error: PgJournalError| SharedRefusal::Unavailable {
                error: error.to_string(),
            };
            match self.reserve(amount).await.map_err(unavailable)? {
                Reserve::Granted(reservation) => Ok(SharedHold {
                    id: reservation.id,
                    amount: reservation.amount,
                }),
                Reserve::Tripped { reason } => Err(SharedRefusal::Tripped { reason }),
                Reserve::Refused { available } => {
                    let state = self
                        .inner
                        .store
                        .limit_state(&self.inner.name)
                        .await
                        .map_err(unavailable)?;
                    Err(SharedRefusal::Full {
                        available,
                        limit: state.limit,
                        committed: state.committed,
                    })
                }
            }
        })
    }

    fn settle(&self, hold: SharedHold, spent: Option<u64>) {
        let reservation = Reservation {
            id: hold.id,
            amount: hold.amount,
        };
        let fleet = Arc::clone(&self.inner);
        self.inner.in_background("settling a hold", async move {
            match spent {
                Some(spent) => match fleet.store.commit_held(reservation, spent).await {
                    Ok(row) => fleet.see(row),
                    // Swept as expired (this process stopped renewing it for a while): what
                    // was spent happened, so it is charged.
                    Err(PgJournalError::UnknownReservation { .. }) => {
                        fleet.store.charge_limit(&fleet.name, spent).await?;
                    }
                    Err(error) => return Err(error),
                },
                None => {
                    fleet.store.release_reservation(reservation).await?;
                }
            }
            Ok(())
        });
    }

    fn charge(&self, spent: u64) {
        let fleet = Arc::clone(&self.inner);
        self.inner.in_background("charging spend", async move {
            let state = fleet.store.charge_limit(&fleet.name, spent).await?;
            if state.committed >= state.limit {
                fleet.see(fleet.store.read_limit(&fleet.name).await?);
            }
            Ok(())
        });
    }

    fn trip(&self, reason: &TripReason) {
        let reason = reason.to_string();
        let fleet = Arc::clone(&self.inner);
        self.inner.in_background("tripping the fleet", async move {
            fleet.trip_fleet(&reason).await
        });
    }

    fn on_trip(&self, callback: TripCallback) {
        let tripped = self.tripped();
        match tripped {
            Some(trip) => callback(&trip.reason),
            None => {
                let mut callbacks = self
                    .inner
                    .callbacks
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                // Tripped between the look and the lock: the callbacks were taken already.
                if let Some(trip) = self.inner.tripped.borrow().clone() {
                    drop(callbacks);
                    callback(&trip.reason);
                } else {
                    callbacks.pending.push(callback);
                }
            }
        }
    }
}
