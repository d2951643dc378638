//! The budget ledger of one scope: committed and reserved spend per dimension, on atomics.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{BudgetConfigError, Refusal};
use crate::limits::Limits;
use crate::reservation::{CommitReport, LimitReached, Reservation};
use crate::scope::Scope;
use crate::tier::{BudgetWarning, Tier, Tiers};
use crate::usage::{Amounts, Dimension, Spend};

/// The budget of one scope (the process, or one agent): for each dimension, what has been
/// **committed** (really spent) and what is **reserved** (held by calls in flight).
///
/// A ledger is a cheap-to-clone handle; clones share the same counters. Every operation is
/// lock-free (compare-and-swap loops on atomics), so any number of threads may reserve and
/// commit at once.
///
/// **Guarantee.** For each limited dimension with limit `L`, at every instant,
/// `committed + reserved ≤ L + overrun`, where `overrun` is the sum of what commits
/// reported beyond their own estimate (see [`Reservation::commit`]). A reservation itself
/// never takes the ledger past `L`: it is a compare-and-swap that only succeeds when the new
/// total is at most `L`. If every call stays within its estimate (steps always do),
/// `committed + reserved ≤ L` holds at all times, under any concurrency.
///
/// ```
/// use overseer_budget::{Dimension, Ledger, Limits, Scope, Spend};
///
/// let ledger = Ledger::new(Scope::Process, Limits::new().tokens(10_000).steps(3))?;
///
/// let call = ledger.reserve(Spend::from_tokens(4_000))?; // before the call
/// assert_eq!(ledger.remaining().tokens, Some(6_000));
///
/// let report = call.commit(Spend::from_tokens(2_500)); // after: the rest is released
/// assert!(report.overrun.is_none());
/// assert_eq!(ledger.remaining().tokens, Some(7_500));
/// assert_eq!(ledger.remaining().steps, Some(2));
/// assert_eq!(ledger.status().tokens.committed, 2_500);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Ledger {
    inner: Arc<LedgerInner>,
}

struct LedgerInner {
    scope: Scope,
    limits: Limits,
    tiers: Tiers,
    cells: [Cell; 3],
}

/// One dimension's counters.
///
/// `claimed` is committed + reserved; keeping that sum in a single atomic is what lets a
/// reservation check and take budget in one compare-and-swap. `claimed ≥ committed` at all
/// times: a commit adds to `committed` before it shrinks `claimed`, and grows `claimed`
/// before it adds an overrun to `committed`.
struct Cell {
    dimension: Dimension,
    limit: Option<u64>,
    /// The limit, or `u64::MAX` when unlimited (only overflow refuses then).
    cap: u64,
    /// Committed figure at which each tier is reached; empty when unlimited.
    thresholds: Box<[u64]>,
    claimed: AtomicU64,
    committed: AtomicU64,
}

/// A dimension could not take a reservation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Shortfall {
    pub(crate) dimension: Dimension,
    pub(crate) requested: u64,
    pub(crate) remaining: u64,
    pub(crate) limit: u64,
    /// Committed spend alone, when refused.
    pub(crate) committed: u64,
}

impl Shortfall {
    /// Whether the request could not fit even if every reservation in flight were
    /// released: committed spend alone leaves too little. Committed spend never shrinks,
    /// so such a request can never be admitted again.
    pub(crate) fn is_exhausted(&self) -> bool {
        self.committed
            .checked_add(self.requested)
            .is_none_or(|total| total > self.limit)
    }

    pub(crate) fn into_refusal(self, scope: Scope) -> Refusal {
        Refusal::LimitExceeded {
            scope,
            dimension: self.dimension,
            requested: self.requested,
            remaining: self.remaining,
            limit: self.limit,
        }
    }
}

fn saturating_add(cell: &AtomicU64, amount: u64) -> u64 {
    match cell.fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
        Some(v.saturating_add(amount))
    }) {
        Ok(previous) | Err(previous) => previous,
    }
}

fn saturating_sub(cell: &AtomicU64, amount: u64) {
    // The closure always returns Some, so the result is always Ok.
    let _ = cell.fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
        Some(v.saturating_sub(amount))
    });
}

impl Cell {
    fn new(dimension: Dimension, limit: Option<u64>, tiers: &Tiers) -> Self {
        Self {
            dimension,
            limit,
            cap: limit.unwrap_or(u64::MAX),
            thresholds: limit.map(|l| tiers.thresholds(l)).unwrap_or_default(),
            claimed: AtomicU64::new(0),
            committed: AtomicU64::new(0),
        }
    }

    /// Takes `amount` if `claimed + amount ≤ cap`, in one compare-and-swap.
    fn try_claim(&self, amount: u64) -> Result<(), Shortfall> {
        let mut current = self.claimed.load(Ordering::Acquire);
        loop {
            let next = match current.checked_add(amount) {
                Some(next) if next <= self.cap => next,
                _ => {
                    return Err(Shortfall {
                        dimension: self.dimension,
                        requested: amount,
                        remaining: self.cap.saturating_sub(current),
                        limit: self.cap,
                        committed: self.committed.load(Ordering::Acquire),
                    })
                }
            };
            match self.claimed.compare_exchange_weak(
                current,
                next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok(()),
                Err(actual) => current = actual,
            }
        }
    }

    fn unclaim(&self, amount: u64) {
        if amount > 0 {
            saturating_sub(&self.claimed, amount);
        }
    }

    /// Turns a reservation of `reserved` into a spend of `actual`; returns committed spend
    /// before and after. Each commit owns the interval `(before, after]`: intervals of
    /// different commits never overlap, which is what makes each tier fire exactly once.
    fn settle(&self, reserved: u64, actual: u64) -> (u64, u64) {
        if actual <= reserved {
            let before = if actual > 0 {
                saturating_add(&self.committed, actual)
            } else {
                self.committed.load(Ordering::Acquire)
            };
            self.unclaim(reserved - actual);
            (before, before.saturating_add(actual))
        } else {
            saturating_add(&self.claimed, actual - reserved);
            let before = saturating_add(&self.committed, actual);
            (before, before.saturating_add(actual))
        }
    }

    /// Committed is read before claimed: `claimed` never drops below `committed`, and
    /// `committed` never shrinks, so `reserved` is never negative and
    /// `committed + reserved` is a value `claimed` really had.
    fn status(&self, tiers: &Tiers) -> DimensionStatus {
        let committed = self.committed.load(Ordering::Acquire);
        let claimed = self.claimed.load(Ordering::Acquire);
        DimensionStatus {
            committed,
            reserved: claimed.saturating_sub(committed),
            limit: self.limit,
            remaining: self.limit.map(|l| l.saturating_sub(claimed.max(committed))),
            tier: self.tier_at(committed, tiers),
        }
    }

    fn tier_at(&self, committed: u64, tiers: &Tiers) -> Option<Tier> {
        let reached = self.thresholds.iter().filter(|&&t| t <= committed).count();
        tiers.at_level(reached)
    }
}

impl Ledger {
    /// A ledger for `scope` with these limits and the [default tiers](crate::DEFAULT_TIERS).
    ///
    /// # Errors
    /// [`BudgetConfigError::ZeroLimit`] if a limit is 0.
    pub fn new(scope: Scope, limits: Limits) -> Result<Self, BudgetConfigError> {
        Self::with_tiers(scope, limits, Tiers::default())
    }

    /// A ledger for `scope` with these limits and tiers.
    ///
    /// # Errors
    /// [`BudgetConfigError::ZeroLimit`] if a limit is 0.
    pub fn with_tiers(
        scope: Scope,
        limits: Limits,
        tiers: Tiers,
    ) -> Result<Self, BudgetConfigError> {
        limits.validate(&scope.to_string())?;
        Ok(Self::unchecked(scope, limits, tiers))
    }

    /// A ledger with limits already validated.
    pub(crate) fn unchecked(scope: Scope, limits: Limits, tiers: Tiers) -> Self {
        let cells = Dimension::ALL.map(|d| Cell::new(d, limits.get(d), &tiers));
        Self {
            inner: Arc::new(LedgerInner {
                scope,
                limits,
                tiers,
                cells,
            }),
        }
    }

    /// Whose budget this is.
    pub fn scope(&self) -> &Scope {
        &self.inner.scope
    }

    /// The limits.
    pub fn limits(&self) -> Limits {
        self.inner.limits
    }

    /// The tiers.
    pub fn tiers(&self) -> &Tiers {
        &self.inner.tiers
    }

    /// Reserves `estimate` and one step in this ledger alone, before a billable call.
    ///
    /// To reserve in an agent's ledger and the process ledger together, and respect the
    /// kill switch, use [`Budget::admit`](crate::Budget::admit).
    ///
    /// # Errors
    /// [`Refusal::LimitExceeded`] if any dimension would go past its limit; nothing is then
    /// held.
    pub fn reserve(&self, estimate: Spend) -> Result<Reservation, Refusal> {
        let amounts = estimate.amounts(1);
        self.claim(amounts)
            .map_err(|s| s.into_refusal(self.scope().clone()))?;
        Ok(Reservation::new(estimate, [Some(self.clone()), None], None))
    }

    /// What this scope has committed, reserved and left, per dimension.
    ///
    /// Each dimension is read consistently; the three dimensions are read one after the
    /// other, not as one atomic snapshot.
    pub fn status(&self) -> LedgerStatus {
        let [tokens, cost, steps] = self.dimension_statuses();
        LedgerStatus {
            scope: self.scope().clone(),
            tokens,
            cost,
            steps,
        }
    }

    /// What could still be reserved in each dimension (`None` where unlimited).
    pub fn remaining(&self) -> Remaining {
        let [tokens, cost_micros, steps] = self.inner.cells.each_ref().map(|c| {
            let committed = c.committed.load(Ordering::Acquire);
            let claimed = c.claimed.load(Ordering::Acquire);
            c.limit.map(|l| l.saturating_sub(claimed.max(committed)))
        });
        Remaining {
            tokens,
            cost_micros,
            steps,
        }
    }

    /// The highest tier committed spend has reached in any dimension, `None` below the
    /// first tier.
    pub fn tier(&self) -> Option<Tier> {
        self.inner
            .cells
            .iter()
            .filter_map(|c| c.tier_at(c.committed.load(Ordering::Acquire), self.tiers()))
            .max()
    }

    /// Committed spend in one dimension.
    pub fn committed(&self, dimension: Dimension) -> u64 {
        self.cell(dimension).committed.load(Ordering::Acquire)
    }

    /// Spend reserved by calls in flight in one dimension.
    pub fn reserved(&self, dimension: Dimension) -> u64 {
        let cell = self.cell(dimension);
        let committed = cell.committed.load(Ordering::Acquire);
        cell.claimed
            .load(Ordering::Acquire)
            .saturating_sub(committed)
    }

    fn cell(&self, dimension: Dimension) -> &Cell {
        &self.inner.cells[dimension.index()]
    }

    fn dimension_statuses(&self) -> [DimensionStatus; 3] {
        self.inner.cells.each_ref().map(|c| c.status(self.tiers()))
    }

    /// Takes `amounts` in every dimension, or nothing: a refused dimension rolls back the
    /// ones already taken.
    pub(crate) fn claim(&self, amounts: Amounts) -> Result<(), Shortfall> {
        for (i, cell) in self.inner.cells.iter().enumerate() {
            if let Err(shortfall) = cell.try_claim(amounts[i]) {
                for (taken, &amount) in self.inner.cells[..i].iter().zip(&amounts) {
                    taken.unclaim(amount);
                }
                tracing::debug!(
                    scope = %self.scope(),
                    dimension = %shortfall.dimension,
                    requested = shortfall.requested,
                    remaining = shortfall.remaining,
                    limit = shortfall.limit,
                    "reservation refused"
                );
                return Err(shortfall);
            }
        }
        Ok(())
    }

    /// Returns `amounts` taken by [`claim`](Self::claim).
    pub(crate) fn unclaim(&self, amounts: Amounts) {
        for (cell, &amount) in self.inner.cells.iter().zip(&amounts) {
            cell.unclaim(amount);
        }
    }

    /// Turns a reservation of `reserved` into a spend of `actual`, recording the tiers and
    /// limits this commit reached in `report`.
    pub(crate) fn settle(&self, reserved: Amounts, actual: Amounts, report: &mut CommitReport) {
        for (i, cell) in self.inner.cells.iter().enumerate() {
            let (before, after) = cell.settle(reserved[i], actual[i]);
            if before == after {
                continue;
            }
            let Some(limit) = cell.limit else { continue };
            for (level, &threshold) in cell.thresholds.iter().enumerate() {
                if before < threshold && threshold <= after {
                    if let Some(tier) = self.tiers().at_level(level + 1) {
                        let warning = BudgetWarning {
                            scope: self.scope().clone(),
                            dimension: cell.dimension,
                            tier,
                            used: after,
                            limit,
                        };
                        warning.trace();
                        report.warnings.push(warning);
                    }
                }
            }
            if before < limit && limit <= after {
                tracing::warn!(
                    scope = %self.scope(),
                    dimension = %cell.dimension,
                    committed = after,
                    limit,
                    "budget limit reached"
                );
                report.limits_reached.push(LimitReached {
                    scope: self.scope().clone(),
                    dimension: cell.dimension,
                    committed: after,
                    limit,
                });
            }
        }
    }
}

impl fmt::Debug for Ledger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ledger")
            .field("scope", self.scope())
            .field("limits", &self.inner.limits)
            .field("status", &self.dimension_statuses())
            .finish()
    }
}

/// One dimension of a ledger, read at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DimensionStatus {
    /// Really spent.
    pub committed: u64,
    /// Held by calls in flight.
    pub reserved: u64,
    /// The limit, `None` if unlimited.
    pub limit: Option<u64>,
    /// What could still be reserved: `limit − committed − reserved`, 0 after an overrun;
    /// `None` if unlimited.
    pub remaining: Option<u64>,
    /// The highest tier committed spend has reached, `None` below the first.
    pub tier: Option<Tier>,
}

/// A ledger, read at one moment: what the agent reads to decide to wrap up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerStatus {
    /// Whose ledger.
    pub scope: Scope,
    /// Tokens.
    pub tokens: DimensionStatus,
    /// Cost, in micro-units.
    pub cost: DimensionStatus,
    /// Steps (asks).
    pub steps: DimensionStatus,
}

impl LedgerStatus {
    /// One dimension.
    pub fn dimension(&self, dimension: Dimension) -> &DimensionStatus {
        match dimension {
            Dimension::Tokens => &self.tokens,
            Dimension::Cost => &self.cost,
            Dimension::Steps => &self.steps,
        }
    }

    /// The highest tier reached in any dimension.
    pub fn tier(&self) -> Option<Tier> {
        [self.tokens.tier, self.cost.tier, self.steps.tier]
            .into_iter()
            .flatten()
            .max()
    }

    /// What could still be reserved in each dimension.
    pub fn remaining(&self) -> Remaining {
        Remaining {
            tokens: self.tokens.remaining,
            cost_micros: self.cost.remaining,
            steps: self.steps.remaining,
        }
    }
}

/// What could still be reserved, per dimension; `None` means unlimited.
///
/// ```
/// use overseer_budget::{Remaining, Spend};
///
/// let left = Remaining { tokens: Some(1_000), cost_micros: None, steps: Some(2) };
/// assert!(left.covers(Spend::new(800, 1_000_000)));
/// assert!(!left.covers(Spend::from_tokens(1_001)));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remaining {
    /// Tokens.
    pub tokens: Option<u64>,
    /// Cost, in micro-units.
    pub cost_micros: Option<u64>,
    /// Steps.
    pub steps: Option<u64>,
}

impl Remaining {
    /// One dimension.
    pub fn get(&self, dimension: Dimension) -> Option<u64> {
        match dimension {
            Dimension::Tokens => self.tokens,
            Dimension::Cost => self.cost_micros,
            Dimension::Steps => self.steps,
        }
    }

    /// Everything a ledger with these limits could reserve before any call.
    pub(crate) fn unused(limits: Limits) -> Remaining {
        Remaining {
            tokens: limits.get(Dimension::Tokens),
            cost_micros: limits.get(Dimension::Cost),
            steps: limits.get(Dimension::Steps),
        }
    }

    /// The tighter of two, per dimension (an agent's own budget and the process's).
    pub fn min(self, other: Remaining) -> Remaining {
        fn tighter(a: Option<u64>, b: Option<u64>) -> Option<u64> {
            match (a, b) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, None) => a,
                (None, b) => b,
            }
        }
        Remaining {
            tokens: tighter(self.tokens, other.tokens),
            cost_micros: tighter(self.cost_micros, other.cost_micros),
            steps: tighter(self.steps, other.steps),
        }
    }

    /// Whether a reservation of `estimate` (and one step) would fit, as of this reading.
    pub fn covers(&self, estimate: Spend) -> bool {
        let fits = |left: Option<u64>, want: u64| left.is_none_or(|l| want <= l);
        fits(self.tokens, estimate.tokens)
            && fits(self.cost_micros, estimate.cost_micros)
            && fits(self.steps, 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens_ledger(limit: u64) -> Ledger {
        Ledger::new(Scope::Process, Limits::new().tokens(limit)).unwrap()
    }

    #[test]
    fn a_refused_dimension_rolls_back_the_ones_already_taken() {
        let ledger =
            Ledger::new(Scope::Process, Limits::new().tokens(100).cost_micros(10)).unwrap();
        let err = ledger.claim([50, 11, 1]).unwrap_err();
        assert_eq!(err.dimension, Dimension::Cost);
        assert_eq!(ledger.reserved(Dimension::Tokens), 0);
        assert_eq!(ledger.reserved(Dimension::Steps), 0);
    }

    #[test]
    fn an_unlimited_dimension_refuses_only_on_overflow() {
        let ledger = Ledger::new(Scope::Process, Limits::new()).unwrap();
        ledger.claim([u64::MAX - 1, 0, 0]).unwrap();
        let err = ledger.claim([2, 0, 0]).unwrap_err();
        assert_eq!(err.limit, u64::MAX);
        assert_eq!(err.remaining, 1);
    }

    #[test]
    fn a_shortfall_is_exhaustion_only_when_committed_spend_alone_leaves_too_little() {
        let ledger = tokens_ledger(100);
        ledger.claim([60, 0, 0]).unwrap(); // in flight, not committed
        let busy = ledger.claim([50, 0, 0]).unwrap_err();
        assert!(!busy.is_exhausted(), "60 in flight could still be released");
        ledger.unclaim([60, 0, 0]);
        ledger.claim([60, 0, 0]).unwrap();
        ledger.settle(
            [60, 0, 0],
            [60, 0, 0],
            &mut CommitReport::empty(Spend::ZERO),
        );
        let spent = ledger.claim([50, 0, 0]).unwrap_err();
        assert!(spent.is_exhausted());
    }

    #[test]
    fn settle_reports_each_threshold_once_across_commits() {
        let ledger = tokens_ledger(100);
        let mut report = CommitReport::empty(Spend::ZERO);
        for _ in 0..10 {
            ledger.claim([10, 0, 0]).unwrap();
            ledger.settle([10, 0, 0], [10, 0, 0], &mut report);
        }
        let levels: Vec<u8> = report.warnings.iter().map(|w| w.tier.level).collect();
        assert_eq!(levels, [1, 2, 3]);
        assert_eq!(report.limits_reached.len(), 1);
        assert_eq!(ledger.tier().map(|t| t.level), Some(3));
    }

    #[test]
    fn remaining_is_zero_not_negative_after_an_overrun() {
        let ledger = tokens_ledger(100);
        ledger.claim([90, 0, 0]).unwrap();
        ledger.settle(
            [90, 0, 0],
            [130, 0, 0],
            &mut CommitReport::empty(Spend::ZERO),
        );
        assert_eq!(ledger.remaining().tokens, Some(0));
        assert_eq!(ledger.status().tokens.committed, 130);
        assert_eq!(ledger.status().tokens.reserved, 0);
    }

    #[test]
    fn remaining_min_prefers_the_tighter_limit() {
        let agent = Remaining {
            tokens: Some(10),
            cost_micros: None,
            steps: Some(5),
        };
        let process = Remaining {
            tokens: Some(50),
            cost_micros: Some(7),
            steps: None,
        };
        assert_eq!(
            agent.min(process),
            Remaining {
                tokens: Some(10),
                cost_micros: Some(7),
                steps: Some(5)
            }
        );
    }
}
