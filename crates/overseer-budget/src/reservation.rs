//! A call's hold on the budget: reserved before the call, committed or released after.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::budget::AgentAccount;
use crate::fleet::{Fleet, FleetHold};
use crate::kill_switch::{KillSwitch, TripReason};
use crate::ledger::Ledger;
use crate::scope::Scope;
use crate::tier::BudgetWarning;
use crate::usage::{Dimension, Spend};

/// Budget held by one billable call: its estimated tokens and cost, and one step, in every
/// scope it was admitted in (the agent's ledger and the process ledger, or one ledger).
///
/// How it ends:
///
/// | the call | do | committed | returned to the budget |
/// |---|---|---|---|
/// | succeeded | [`commit(actual)`](Self::commit) | `actual` and the step | `estimate − actual`, if positive |
/// | failed after using something | [`commit(partial)`](Self::commit) | `partial` and the step | `estimate − partial` |
/// | failed before using anything | [`release()`](Self::release) | nothing | all of it, step included |
/// | was abandoned (reservation dropped) | nothing: `Drop` releases | nothing | all of it, step included |
///
/// A reservation is consumed by `commit` and `release`, so it cannot be settled twice, and
/// dropping one never leaks budget.
///
/// ```
/// use overseer_budget::{Ledger, Limits, Scope, Spend};
///
/// let ledger = Ledger::new(Scope::Process, Limits::new().tokens(1_000))?;
/// {
///     let _abandoned = ledger.reserve(Spend::from_tokens(600))?;
///     assert_eq!(ledger.remaining().tokens, Some(400));
/// } // dropped: released
/// assert_eq!(ledger.remaining().tokens, Some(1_000));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "a reservation is released when dropped; commit the call's usage or release it"]
pub struct Reservation {
    estimate: Spend,
    /// Where budget is held; `None` once settled.
    held: Option<Holder>,
    /// Tiers this reservation reached; empty (no allocation) almost always.
    warnings: Vec<BudgetWarning>,
    /// Its part of the budget's shared limit, if the budget has one (boxed: a reservation
    /// without one stays as small as it was).
    fleet: Option<Box<FleetShare>>,
}

/// Where a reservation holds budget.
///
/// One reference either way (issue 24: the agent's ledger, the process ledger and the kill
/// switch each counted apart were six atomic read-modify-writes per call, a clone and a drop
/// each; the account holds all three).
enum Holder {
    /// One ledger alone ([`Ledger::reserve`]): no kill switch.
    Ledger(Ledger),
    /// An agent's account: its ledger, the process ledger and the kill switch.
    Account(AgentAccount),
}

impl Holder {
    /// The ledgers holding budget, agent first.
    fn ledgers(&self) -> impl Iterator<Item = &Ledger> {
        let (first, second) = match self {
            Self::Ledger(ledger) => (ledger, None),
            Self::Account(account) => (account.ledger(), Some(account.process())),
        };
        std::iter::once(first).chain(second)
    }

    /// Tripped when a commit takes the process ledger to a limit or its hard tier.
    fn switch(&self) -> Option<&KillSwitch> {
        match self {
            Self::Ledger(_) => None,
            Self::Account(account) => Some(account.switch()),
        }
    }
}

/// A reservation's part of a shared limit.
#[derive(Debug)]
enum FleetShare {
    /// Admitted without a hold (a synchronous admission): its spend is charged on commit.
    Unheld(Fleet),
    /// Held before the call: committed or given back with the reservation.
    Held(FleetHold),
}

impl Reservation {
    /// A reservation held in `ledger` alone.
    pub(crate) fn in_ledger(estimate: Spend, ledger: Ledger, warnings: Vec<BudgetWarning>) -> Self {
        Self::held(estimate, Holder::Ledger(ledger), warnings)
    }

    /// A reservation held in `account`'s ledger and the process ledger, under the kill switch.
    pub(crate) fn in_account(
        estimate: Spend,
        account: AgentAccount,
        warnings: Vec<BudgetWarning>,
    ) -> Self {
        Self::held(estimate, Holder::Account(account), warnings)
    }

    fn held(estimate: Spend, holder: Holder, warnings: Vec<BudgetWarning>) -> Self {
        Self {
            estimate,
            held: Some(holder),
            warnings,
            fleet: None,
        }
    }

    /// The budget's shared limit, to be charged on commit unless a hold is attached.
    pub(crate) fn with_fleet(mut self, fleet: Option<&Fleet>) -> Self {
        self.fleet = fleet
            .cloned()
            .map(|fleet| Box::new(FleetShare::Unheld(fleet)));
        self
    }

    /// Attaches `hold`, taken on the budget's shared limit for this call
    /// ([`Budget::hold_shared`](crate::Budget::hold_shared)): the reservation's commit turns it
    /// into the call's spend, its release or drop gives it back.
    pub fn attach_shared(&mut self, hold: FleetHold) {
        self.fleet = Some(Box::new(FleetShare::Held(hold)));
    }

    /// Whether a hold on the budget's shared limit is attached.
    pub fn holds_shared(&self) -> bool {
        matches!(self.fleet.as_deref(), Some(FleetShare::Held(_)))
    }

    /// What was reserved (besides the one step).
    pub fn estimate(&self) -> Spend {
        self.estimate
    }

    /// The tiers this reservation reached, in any scope: taking committed + reserved spend
    /// to a tier for the first time fires it here, **before the call runs**, so a warning
    /// comes before the refusal of a later call (see [`Tiers`](crate::Tiers)). Usually
    /// empty. Each tier fires once per dimension and scope over the ledger's life, in one
    /// reservation or in the [`CommitReport::warnings`] of an overrun; it is also logged.
    ///
    /// ```
    /// use overseer_budget::{Ledger, Limits, Scope, Spend};
    ///
    /// let ledger = Ledger::new(Scope::Process, Limits::new().tokens(150))?;
    /// ledger.reserve(Spend::from_tokens(70))?.commit(Spend::from_tokens(42));
    /// let call = ledger.reserve(Spend::from_tokens(70))?; // 42 + 70 = 112 ≥ 70 % of 150
    /// assert_eq!(call.warnings().len(), 1);
    /// assert_eq!(call.warnings()[0].used, 112);
    /// assert!(call.commit(Spend::from_tokens(42)).warnings.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn warnings(&self) -> &[BudgetWarning] {
        &self.warnings
    }

    /// The scopes holding budget for this call, agent first.
    pub fn scopes(&self) -> impl Iterator<Item = &Scope> + '_ {
        self.held
            .iter()
            .flat_map(Holder::ledgers)
            .map(|ledger| ledger.scope())
    }

    /// Records what the call really used (its `actual` usage, or the partial usage of a
    /// failed call) and returns the rest of the reservation.
    ///
    /// **Overrun.** If `actual` exceeds the estimate, the spend really happened, so the
    /// ledger records the truth: committed spend grows by `actual`, even past a limit. The
    /// excess is reported in [`CommitReport::overrun`] and logged. It is the only way
    /// `committed + reserved` can exceed a limit, and only by that excess; while it does,
    /// every reservation in that dimension is refused. The excess raises committed +
    /// reserved, so it can reach tiers: they are in [`CommitReport::warnings`].
    ///
    /// **Trip.** For a reservation from [`Budget::admit`](crate::Budget::admit), a commit
    /// that takes the *process* ledger's committed spend to (or past) a limit trips the kill
    /// switch with [`TripReason::LimitReached`], and one that takes it to the
    /// [hard tier](crate::BudgetBuilder::hard_tier) with [`TripReason::HardTierReached`]; an
    /// agent's limit refuses only that agent's later calls.
    pub fn commit(mut self, actual: Spend) -> CommitReport {
        let mut report = CommitReport::empty(self.estimate);
        report.usage = actual;
        let excess = actual.excess_over(self.estimate);
        report.overrun = (!excess.is_zero()).then_some(excess);
        let Some(holder) = self.held.take() else {
            return report;
        };
        let reserved = self.estimate.amounts(1);
        let spent = actual.amounts(1);
        let mut hard_tier = None;
        for ledger in holder.ledgers() {
            let reached = ledger.settle(reserved, spent, &mut report);
            hard_tier = hard_tier.or(reached);
        }
        if let Some(excess) = report.overrun {
            tracing::warn!(
                estimate_tokens = self.estimate.tokens,
                estimate_cost_micros = self.estimate.cost_micros,
                overrun_tokens = excess.tokens,
                overrun_cost_micros = excess.cost_micros,
                "call used more than it reserved"
            );
        }
        if let Some(share) = self.fleet.take() {
            match *share {
                FleetShare::Held(hold) => hold.commit(actual, 1),
                FleetShare::Unheld(fleet) => fleet.limit.charge(fleet.amount(actual, 1)),
            }
        }
        if let Some(switch) = holder.switch() {
            trip_on_process_limit(switch, &mut report, hard_tier);
        }
        report
    }

    /// Returns everything this call held, step included: for a call that failed before it
    /// used anything. Dropping the reservation does the same.
    pub fn release(mut self) {
        self.release_held();
    }

    fn release_held(&mut self) {
        // A hold on the shared limit is given back when dropped.
        self.fleet = None;
        if let Some(holder) = self.held.take() {
            let amounts = self.estimate.amounts(1);
            for ledger in holder.ledgers() {
                ledger.unclaim(amounts);
            }
        }
    }
}

/// Trips `switch` if this commit took the process ledger's committed spend to a limit, or
/// else to the hard tier (`hard_tier`, from the ledgers' settlement): a limit is the stronger
/// reason when one commit reaches both.
pub(crate) fn trip_on_process_limit(
    switch: &KillSwitch,
    report: &mut CommitReport,
    hard_tier: Option<TripReason>,
) {
    let reached = report.limits_reached.iter().find(|r| r.scope.is_process());
    let reason = match reached {
        Some(reached) => Some(TripReason::LimitReached {
            dimension: reached.dimension,
            committed: reached.committed,
            limit: reached.limit,
        }),
        None => hard_tier,
    };
    if let Some(reason) = reason {
        report.tripped = switch.trip(reason).tripped_now();
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.held.is_some() {
            tracing::debug!(
                tokens = self.estimate.tokens,
                cost_micros = self.estimate.cost_micros,
                "reservation dropped unsettled; released"
            );
            self.release_held();
        }
    }
}

impl fmt::Debug for Reservation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reservation")
            .field("estimate", &self.estimate)
            .field("scopes", &self.scopes().collect::<Vec<_>>())
            .finish()
    }
}

/// A limit that a commit's spend reached: committed spend went from below the limit to at
/// or above it with this commit. Reported once per limit and scope.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LimitReached {
    /// Whose limit.
    pub scope: Scope,
    /// Which limit.
    pub dimension: Dimension,
    /// Committed spend after the commit.
    pub committed: u64,
    /// The limit.
    pub limit: u64,
}

/// What a commit did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CommitReport {
    /// What had been reserved (besides the step).
    pub estimate: Spend,
    /// What was committed.
    pub usage: Spend,
    /// What the call used beyond its estimate, if anything.
    pub overrun: Option<Spend>,
    /// Tiers this commit reached, in any scope: only an overrun can (tiers are measured
    /// on committed + reserved, which a commit within its estimate does not raise; the
    /// reservation fired them, see [`Reservation::warnings`]). Each tier fires once per
    /// dimension and scope over the ledger's life.
    pub warnings: Vec<BudgetWarning>,
    /// Limits this commit reached, in any scope.
    pub limits_reached: Vec<LimitReached>,
    /// Whether this commit tripped the kill switch.
    pub tripped: bool,
}

impl CommitReport {
    pub(crate) fn empty(estimate: Spend) -> Self {
        Self {
            estimate,
            usage: Spend::ZERO,
            overrun: None,
            warnings: Vec::new(),
            limits_reached: Vec::new(),
            tripped: false,
        }
    }
}
