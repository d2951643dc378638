//! A limit shared by every process of a fleet: the seam between this process's budget and
//! wherever the fleet keeps its spend (a database, in `overseer-postgres`).
//!
//! This crate does no I/O, so it does not know where a shared limit lives: it knows the
//! [`SharedLimit`] trait, which a backend implements, and the budget calls it. Configured on
//! the budget ([`BudgetBuilder::shared_limit`](crate::BudgetBuilder::shared_limit)), a shared
//! limit does three things:
//!
//! - **holds before a call**: [`Budget::admit_shared`](crate::Budget::admit_shared) (and the
//!   agent layer's asks) hold the call's estimate in the shared limit, then in the local ledgers;
//!   the [`Reservation`](crate::Reservation) carries the hold, and its commit turns the hold
//!   into spend, its release or drop gives it back;
//! - **trips every process**: when the shared limit trips (its committed spend reached it, or
//!   any process's kill switch tripped), the backend calls back and this process's kill switch
//!   trips with [`TripReason::Fleet`];
//! - **tells the fleet**: when this process's kill switch trips for any other reason, the
//!   shared limit is told ([`SharedLimit::trip`]), so that the others trip too.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::error::Refusal;
use crate::kill_switch::TripReason;
use crate::usage::{Dimension, Spend};

/// A hold on a shared limit, as its backend names it: settled once with
/// [`SharedLimit::settle`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedHold {
    /// The backend's id of the hold (a database row's, for one).
    pub id: i64,
    /// The amount held.
    pub amount: u64,
}

/// Why a shared limit would not hold an amount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SharedRefusal {
    /// Holding it would take the fleet's committed and reserved spend past the limit.
    Full {
        /// What is still free.
        available: u64,
        /// The limit.
        limit: u64,
        /// What the fleet has committed.
        committed: u64,
    },
    /// The shared limit has tripped.
    Tripped {
        /// Why, as the fleet recorded it.
        reason: String,
    },
    /// The backend could not be asked (a lost connection, a timeout): the call is refused,
    /// since it could not be counted.
    Unavailable {
        /// What went wrong.
        error: String,
    },
}

/// What a [`SharedLimit::hold`] returns.
pub type HoldFuture<'a> =
    Pin<Box<dyn Future<Output = Result<SharedHold, SharedRefusal>> + Send + 'a>>;

/// What a shared limit calls when it trips: with why, as the fleet recorded it.
pub type TripCallback = Box<dyn Fn(&str) + Send + Sync>;

/// A limit whose committed and reserved spend is shared by several processes. Implemented by
/// a backend (`overseer_postgres::FleetLimit`); the budget calls it.
///
/// Implementations must keep, under any concurrency of any number of processes, committed
/// plus reserved spend within the limit for holds that are settled within their amount.
/// [`settle`](Self::settle), [`charge`](Self::charge) and [`trip`](Self::trip) are called from
/// synchronous code (a reservation's commit, a kill switch's callback): they must not block,
/// and do their I/O in the background.
pub trait SharedLimit: Send + Sync + fmt::Debug + 'static {
    /// The limit's name, for refusals and trips.
    fn name(&self) -> &str;

    /// Holds `amount` of the limit, or says why not.
    fn hold(&self, amount: u64) -> HoldFuture<'_>;

    /// Settles `hold`: `Some(spent)` turns it into that spend, `None` gives it back.
    fn settle(&self, hold: SharedHold, spent: Option<u64>);

    /// Records spend that no hold covered (a call admitted without one): it happened, so it is
    /// counted, even past the limit.
    fn charge(&self, spent: u64);

    /// Tells the fleet that this process's kill switch tripped, and why: every process with
    /// this limit is to trip.
    fn trip(&self, reason: &TripReason);

    /// Calls `callback` once when the limit trips, wherever the trip came from (at once if it
    /// has tripped already).
    fn on_trip(&self, callback: TripCallback);
}

/// The budget's view of its shared limit: the backend and the dimension it limits.
#[derive(Clone, Debug)]
pub(crate) struct Fleet {
    pub(crate) limit: Arc<dyn SharedLimit>,
    pub(crate) dimension: Dimension,
}

impl Fleet {
    /// The part of `spend` (and `steps` steps) in the limited dimension.
    pub(crate) fn amount(&self, spend: Spend, steps: u64) -> u64 {
        spend.amounts(steps)[self.dimension.index()]
    }

    /// Holds `estimate` (and one step) in the shared limit.
    pub(crate) async fn hold(&self, estimate: Spend) -> Result<FleetHold, Refusal> {
        let requested = self.amount(estimate, 1);
        match self.limit.hold(requested).await {
            Ok(hold) => Ok(FleetHold {
                fleet: self.clone(),
                hold: Some(hold),
            }),
            Err(refusal) => Err(self.refusal(refusal, requested)),
        }
    }

    fn refusal(&self, refusal: SharedRefusal, requested: u64) -> Refusal {
        let name: Box<str> = self.limit.name().into();
        match refusal {
            SharedRefusal::Full {
                available,
                limit,
                committed,
            } => Refusal::FleetLimitExceeded {
                name,
                dimension: self.dimension,
                requested,
                remaining: available,
                limit,
                committed,
            },
            SharedRefusal::Tripped { reason } => Refusal::Tripped {
                reason: TripReason::Fleet {
                    limit: name,
                    reason: reason.into(),
                },
            },
            SharedRefusal::Unavailable { error } => Refusal::SharedLimitUnavailable {
                limit: name,
                error: error.into(),
            },
        }
    }
}

/// A reservation's hold on the shared limit: settled with the reservation, given back when
/// dropped unsettled.
#[derive(Debug)]
pub struct FleetHold {
    fleet: Fleet,
    /// `None` once settled.
    hold: Option<SharedHold>,
}

impl FleetHold {
    /// The amount held.
    pub fn amount(&self) -> u64 {
        self.hold.map_or(0, |hold| hold.amount)
    }

    /// Turns the hold into `spend` (and `steps` steps) in the limited dimension.
    pub(crate) fn commit(mut self, spend: Spend, steps: u64) {
        if let Some(hold) = self.hold.take() {
            let spent = self.fleet.amount(spend, steps);
            self.fleet.limit.settle(hold, Some(spent));
        }
    }
}

impl Drop for FleetHold {
    fn drop(&mut self) {
        if let Some(hold) = self.hold.take() {
            self.fleet.limit.settle(hold, None);
        }
    }
}
