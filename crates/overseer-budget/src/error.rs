//! What can go wrong: an invalid configuration, or a call the budget refuses.

use serde::{Deserialize, Serialize};

use crate::kill_switch::TripReason;
use crate::scope::{AgentId, Scope};
use crate::usage::Dimension;

/// A configuration the budget will not run with. Returned when a ledger, kill switch or
/// budget is built, never later.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum BudgetConfigError {
    /// A limit of 0 (see [`Limits`](crate::Limits) for why that is refused).
    #[error("the {dimension} limit of {target} is 0; leave it unset for no limit")]
    ZeroLimit {
        /// Whose limits: `process`, `agent:NAME` or `default agent`.
        target: String,
        /// Which limit.
        dimension: Dimension,
    },
    /// A tier fraction that is not in the open interval (0, 1), or rounds to 0 or 1 at
    /// parts-per-million precision.
    #[error("tier {index} is {fraction}; tier fractions must be in (0, 1)")]
    TierOutOfRange {
        /// Position in the list, from 0.
        index: usize,
        /// The fraction given.
        fraction: f64,
    },
    /// A tier fraction not above the one before it.
    #[error("tier {index} is {fraction}, not above the tier before it; tiers must be strictly increasing")]
    TiersNotIncreasing {
        /// Position in the list, from 0.
        index: usize,
        /// The fraction given.
        fraction: f64,
    },
    /// A hard tier that is not in the half-open interval (0, 1], or rounds to 0 at
    /// parts-per-million precision.
    #[error("the hard tier is {fraction}; it must be in (0, 1]")]
    HardTierOutOfRange {
        /// The fraction given.
        fraction: f64,
    },
    /// More tiers than [`MAX_TIERS`](crate::MAX_TIERS).
    #[error("{count} tiers given; at most {max} are allowed")]
    TooManyTiers {
        /// How many were given.
        count: usize,
        /// The most allowed.
        max: usize,
    },
    /// An error-rate threshold not in (0, 1], or below one part per million.
    #[error("error-rate threshold is {threshold}; it must be in (0, 1]")]
    ErrorThresholdOutOfRange {
        /// The threshold given.
        threshold: f64,
    },
    /// An error-rate window of 0 calls, or one larger than
    /// [`MAX_WINDOW`](crate::MAX_WINDOW).
    #[error("error-rate window is {window} calls; it must be between 1 and {max}")]
    WindowOutOfRange {
        /// The window given.
        window: u32,
        /// The largest window allowed.
        max: u32,
    },
    /// A minimum number of calls of 0, or larger than the window (the trigger could
    /// then never fire).
    #[error("error-rate minimum of {min_calls} calls must be between 1 and the window ({window})")]
    MinCallsOutOfRange {
        /// The minimum given.
        min_calls: u32,
        /// The window it must fit in.
        window: u32,
    },
    /// A wall-clock time limit of zero.
    #[error("the time limit is zero; leave it unset for no deadline")]
    ZeroTimeLimit,
    /// A wall-clock time limit so long that the deadline cannot be represented.
    #[error("the time limit of {seconds} s is too long to represent a deadline")]
    TimeLimitTooLong {
        /// The time limit given, in whole seconds.
        seconds: u64,
    },
    /// Limits given twice for the same agent.
    #[error("agent {agent} already has limits")]
    AgentAlreadyRegistered {
        /// The agent.
        agent: AgentId,
    },
}

/// Why a call was not admitted. The call must not reach the agent.
///
/// Admission **fails closed**: any doubt (the switch tripped, a limit that would be crossed
/// in either scope, an arithmetic overflow) is a refusal. A refusal concerns **that call
/// only**: [`LimitExceeded`](Self::LimitExceeded) never trips the kill switch, and a
/// smaller estimate, or the same one once calls in flight have returned their
/// reservations, may still be admitted ([`may_fit_later`](Self::may_fit_later)).
///
/// ```
/// use overseer_budget::{Dimension, Ledger, Limits, Refusal, Scope, Spend};
///
/// let ledger = Ledger::new(Scope::Process, Limits::new().tokens(100))?;
/// let refusal = ledger.reserve(Spend::from_tokens(150)).unwrap_err();
/// assert_eq!(
///     refusal,
///     Refusal::LimitExceeded {
///         scope: Scope::Process,
///         dimension: Dimension::Tokens,
///         requested: 150,
///         remaining: 100,
///         limit: 100,
///         committed: 0,
///     }
/// );
/// assert_eq!(refusal.to_string(), "process tokens limit: requested 150, remaining 100 of 100");
/// assert!(!refusal.may_fit_later()); // larger than the whole limit
/// # Ok::<(), overseer_budget::BudgetConfigError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "refusal")]
#[non_exhaustive]
pub enum Refusal {
    /// The kill switch has tripped: nothing is admitted any more.
    #[error("kill switch tripped: {reason}")]
    Tripped {
        /// Why it tripped.
        reason: TripReason,
    },
    /// Reserving the estimate would take this scope's committed plus reserved spend past
    /// its limit. Only this call is refused: nothing trips.
    #[error("{scope} {dimension} limit: requested {requested}, remaining {remaining} of {limit}")]
    LimitExceeded {
        /// Process or agent.
        scope: Scope,
        /// Which limit.
        dimension: Dimension,
        /// What the call asked to reserve in that dimension.
        requested: u64,
        /// What could still be reserved (limit − committed − reserved) when it asked.
        remaining: u64,
        /// The limit (`u64::MAX` for an unlimited dimension whose total would overflow).
        limit: u64,
        /// What this scope had committed (really spent) when it asked; the rest of
        /// `limit − remaining` was held by calls in flight and may come back.
        committed: u64,
    },
    /// Holding the estimate would take the fleet's committed plus reserved spend past its
    /// [shared limit](crate::SharedLimit) (the spend of every process sharing it). Only this
    /// call is refused: nothing trips.
    #[error("fleet limit {name:?} on {dimension}: requested {requested}, remaining {remaining} of {limit}")]
    FleetLimitExceeded {
        /// The shared limit's name.
        name: Box<str>,
        /// The dimension it limits.
        dimension: Dimension,
        /// What the call asked to hold.
        requested: u64,
        /// What the fleet could still hold when it asked.
        remaining: u64,
        /// The limit.
        limit: u64,
        /// What the fleet had committed when it asked.
        committed: u64,
    },
    /// The budget's [shared limit](crate::SharedLimit) could not be asked (its backend was
    /// unreachable): the call is refused, since its spend could not be held. Nothing trips.
    #[error("fleet limit {limit:?} unavailable: {error}")]
    SharedLimitUnavailable {
        /// The shared limit's name.
        limit: Box<str>,
        /// What went wrong.
        error: Box<str>,
    },
}

impl Refusal {
    /// The scope whose limit refused the call, if it was a limit.
    pub fn scope(&self) -> Option<&Scope> {
        match self {
            Refusal::Tripped { .. }
            | Refusal::SharedLimitUnavailable { .. }
            | Refusal::FleetLimitExceeded { .. } => None,
            Refusal::LimitExceeded { scope, .. } => Some(scope),
        }
    }

    /// Whether the call was refused because the kill switch had tripped.
    pub fn is_tripped(&self) -> bool {
        matches!(self, Refusal::Tripped { .. })
    }

    /// Whether the same request could be admitted later, once calls in flight have
    /// returned what they hold: `committed + requested ≤ limit`. Committed spend never
    /// shrinks, so `false` means this estimate will never fit (a smaller one may). Always
    /// `false` after a trip.
    pub fn may_fit_later(&self) -> bool {
        match self {
            Refusal::Tripped { .. } => false,
            Refusal::SharedLimitUnavailable { .. } => true,
            Refusal::LimitExceeded {
                requested,
                limit,
                committed,
                ..
            }
            | Refusal::FleetLimitExceeded {
                requested,
                limit,
                committed,
                ..
            } => committed
                .checked_add(*requested)
                .is_some_and(|total| total <= *limit),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_message_names_scope_dimension_and_figures() {
        let refusal = Refusal::LimitExceeded {
            scope: Scope::Agent("critic".into()),
            dimension: Dimension::Cost,
            requested: 500,
            remaining: 120,
            limit: 1_000,
            committed: 600,
        };
        assert_eq!(
            refusal.to_string(),
            "agent:critic cost limit: requested 500, remaining 120 of 1000"
        );
    }

    #[test]
    fn a_refusal_may_fit_later_only_if_committed_spend_leaves_room() {
        let refusal = |committed| Refusal::LimitExceeded {
            scope: Scope::Process,
            dimension: Dimension::Tokens,
            requested: 70,
            remaining: 20,
            limit: 150,
            committed,
        };
        assert!(
            refusal(80).may_fit_later(),
            "50 of the 130 held are in flight"
        );
        assert!(
            !refusal(84).may_fit_later(),
            "84 spent: 66 can never hold 70"
        );
        let tripped = Refusal::Tripped {
            reason: TripReason::manual("stop"),
        };
        assert!(!tripped.may_fit_later());
    }

    #[test]
    fn refusal_round_trips_through_json() {
        let refusal = Refusal::Tripped {
            reason: TripReason::manual("operator"),
        };
        let json = serde_json::to_string(&refusal).unwrap();
        assert_eq!(serde_json::from_str::<Refusal>(&json).unwrap(), refusal);
    }
}
