//! The budget ledger of one scope: committed and reserved spend per dimension, on atomics.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{BudgetConfigError, Refusal};
use crate::kill_switch::TripReason;
use crate::limits::Limits;
use crate::reservation::{CommitReport, LimitReached, Reservation};
use crate::scope::Scope;
use crate::tier::{threshold, BudgetWarning, Tier, Tiers};
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
    /// The hard tier, in parts per million of each limit: only the process ledger of a
    /// [`Budget`](crate::Budget) built with one has it.
    hard_tier_ppm: Option<u32>,
    cells: [Cell; 3],
}

/// One dimension's counters.
///
/// `claimed` is committed + reserved; keeping that sum in a single atomic is what lets a
/// reservation check and take budget in one compare-and-swap. `claimed ≥ committed` at all
/// times: a commit adds to `committed` before it shrinks `claimed`, and grows `claimed`
/// before it adds an overrun to `committed`.
///
/// **Tiers** are measured on `claimed`. `peak` is the highest `claimed` figure a tier check
/// has seen: the tiers at or below it have fired. It only grows (`fetch_max`), so the
/// checks own disjoint intervals `(previous peak, new peak]` and each tier fires in exactly
/// one of them. `next_tier` lets the hot path skip the check with one load: it is never
/// above the lowest tier not yet fired, so a figure below it cannot reach a tier.
struct Cell {
    dimension: Dimension,
    limit: Option<u64>,
    /// The limit, or `u64::MAX` when unlimited (only overflow refuses then).
    cap: u64,
    /// Committed + reserved figure at which each tier is reached; empty when unlimited.
    thresholds: Box<[u64]>,
    /// Committed figure at which the hard tier trips the kill switch (process ledger only).
    hard: Option<u64>,
    claimed: AtomicU64,
    committed: AtomicU64,
    peak: AtomicU64,
    next_tier: AtomicU64,
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
    pub(crate) fn into_refusal(self, scope: Scope) -> Refusal {
        Refusal::LimitExceeded {
            scope,
            dimension: self.dimension,
            requested: self.requested,
            remaining: self.remaining,
            limit: self.limit,
            committed: self.committed,
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
    fn new(dimension: Dimension, limit: Option<u64>, tiers: &Tiers, hard_ppm: Option<u32>) -> Self {
        let thresholds: Box<[u64]> = limit.map(|l| tiers.thresholds(l)).unwrap_or_default();
        Self {
            dimension,
            limit,
            cap: limit.unwrap_or(u64::MAX),
            next_tier: AtomicU64::new(thresholds.first().copied().unwrap_or(u64::MAX)),
            thresholds,
            hard: limit.zip(hard_ppm).map(|(l, ppm)| threshold(l, ppm)),
            claimed: AtomicU64::new(0),
            committed: AtomicU64::new(0),
            peak: AtomicU64::new(0),
        }
    }

    /// Takes `amount` if `claimed + amount ≤ cap`, in one compare-and-swap; returns the new
    /// `claimed`.
    fn try_claim(&self, amount: u64) -> Result<u64, Shortfall> {
        let mut current = self.claimed.load(Ordering::Acquire);
        if amount == 0 && current <= self.cap {
            // Nothing to take (an estimate without tokens or cost): what the swap of `current`
            // for itself would do, without the atomic write.
            return Ok(current);
        }
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
                Ok(_) => return Ok(next),
                Err(actual) => current = actual,
            }
        }
    }

    fn unclaim(&self, amount: u64) {
        if amount > 0 {
            saturating_sub(&self.claimed, amount);
        }
    }

    /// Records that committed + reserved reached `claimed`; returns the peak before, if
    /// this raised it past a tier (the tiers in `(previous, claimed]` are this call's to
    /// fire). One relaxed load when no tier can be reached.
    #[inline]
    fn reach(&self, claimed: u64) -> Option<u64> {
        if claimed < self.next_tier.load(Ordering::Relaxed) {
            return None;
        }
        let previous = self.peak.fetch_max(claimed, Ordering::AcqRel);
        if previous >= claimed {
            return None;
        }
        let next = self
            .thresholds
            .iter()
            .copied()
            .find(|&t| t > claimed)
            .unwrap_or(u64::MAX);
        self.next_tier.fetch_max(next, Ordering::Relaxed);
        Some(previous)
    }

    /// Turns a reservation of `reserved` into a spend of `actual`; returns committed spend
    /// before and after, and the new committed + reserved if an overrun grew it. Each commit
    /// owns the interval `(before, after]` of committed spend: intervals of different
    /// commits never overlap, which is what makes a limit or the hard tier reached once.
    fn settle(&self, reserved: u64, actual: u64) -> (u64, u64, Option<u64>) {
        if actual <= reserved {
            let before = if actual > 0 {
                saturating_add(&self.committed, actual)
            } else {
                self.committed.load(Ordering::Acquire)
            };
            self.unclaim(reserved - actual);
            (before, before.saturating_add(actual), None)
        } else {
            let excess = actual - reserved;
            let claimed = saturating_add(&self.claimed, excess).saturating_add(excess);
            let before = saturating_add(&self.committed, actual);
            (before, before.saturating_add(actual), Some(claimed))
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
            tier: self.tier(tiers),
        }
    }

    /// The highest tier fired so far.
    fn tier(&self, tiers: &Tiers) -> Option<Tier> {
        let peak = self.peak.load(Ordering::Acquire);
        let reached = self.thresholds.iter().filter(|&&t| t <= peak).count();
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
        Ok(Self::unchecked(scope, limits, tiers, None))
    }

    /// A ledger with limits already validated; `hard_tier_ppm` for a budget's process
    /// ledger only.
    pub(crate) fn unchecked(
        scope: Scope,
        limits: Limits,
        tiers: Tiers,
        hard_tier_ppm: Option<u32>,
    ) -> Self {
        let cells = Dimension::ALL.map(|d| Cell::new(d, limits.get(d), &tiers, hard_tier_ppm));
        Self {
            inner: Arc::new(LedgerInner {
                scope,
                limits,
                tiers,
                hard_tier_ppm,
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
    /// The tiers this reservation reached are in [`Reservation::warnings`].
    ///
    /// # Errors
    /// [`Refusal::LimitExceeded`] if any dimension would go past its limit; nothing is then
    /// held.
    pub fn reserve(&self, estimate: Spend) -> Result<Reservation, Refusal> {
        let amounts = estimate.amounts(1);
        let claimed = self
            .claim(amounts)
            .map_err(|s| s.into_refusal(self.scope().clone()))?;
        let mut warnings = Vec::new();
        self.reach_tiers(claimed, &mut warnings);
        Ok(Reservation::in_ledger(estimate, self.clone(), warnings))
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

    /// The highest tier reached so far in any dimension (the highest warned), `None` below
    /// the first tier. Tiers are measured on committed + reserved spend and never go back,
    /// even when a reservation that reached one is later released.
    pub fn tier(&self) -> Option<Tier> {
        self.inner
            .cells
            .iter()
            .filter_map(|c| c.tier(self.tiers()))
            .max()
    }

    /// The hard tier, in parts per million of each limit, if this is the process ledger of
    /// a budget built with [`hard_tier`](crate::BudgetBuilder::hard_tier).
    pub fn hard_tier_ppm(&self) -> Option<u32> {
        self.inner.hard_tier_ppm
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
    /// ones already taken. Returns committed + reserved after the claim, per dimension, for
    /// [`reach_tiers`](Self::reach_tiers) once the whole admission has succeeded.
    pub(crate) fn claim(&self, amounts: Amounts) -> Result<Amounts, Shortfall> {
        let mut claimed = [0; 3];
        for (i, cell) in self.inner.cells.iter().enumerate() {
            match cell.try_claim(amounts[i]) {
                Ok(now) => claimed[i] = now,
                Err(shortfall) => {
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
        }
        Ok(claimed)
    }

    /// Fires the tiers that committed + reserved figures of `claimed` (from
    /// [`claim`](Self::claim) or an overrun) reach for the first time, into `warnings`.
    /// Nothing allocates unless a tier fires.
    #[inline]
    pub(crate) fn reach_tiers(&self, claimed: Amounts, warnings: &mut Vec<BudgetWarning>) {
        for (cell, &figure) in self.inner.cells.iter().zip(&claimed) {
            if let Some(previous) = cell.reach(figure) {
                self.fire(cell, previous, figure, warnings);
            }
        }
    }

    #[cold]
    fn fire(&self, cell: &Cell, previous: u64, claimed: u64, warnings: &mut Vec<BudgetWarning>) {
        let Some(limit) = cell.limit else { return };
        for (level, &threshold) in cell.thresholds.iter().enumerate() {
            if previous < threshold && threshold <= claimed {
                if let Some(tier) = self.tiers().at_level(level + 1) {
                    let warning = BudgetWarning {
                        scope: self.scope().clone(),
                        dimension: cell.dimension,
                        tier,
                        used: claimed,
                        limit,
                    };
                    warning.trace();
                    warnings.push(warning);
                }
            }
        }
    }

    /// Returns `amounts` taken by [`claim`](Self::claim).
    pub(crate) fn unclaim(&self, amounts: Amounts) {
        for (cell, &amount) in self.inner.cells.iter().zip(&amounts) {
            cell.unclaim(amount);
        }
    }

    /// Turns a reservation of `reserved` into a spend of `actual`, recording the tiers an
    /// overrun reached and the limits this commit reached in `report`. Returns the trip
    /// reason if this commit took committed spend to the hard tier.
    pub(crate) fn settle(
        &self,
        reserved: Amounts,
        actual: Amounts,
        report: &mut CommitReport,
    ) -> Option<TripReason> {
        let mut hard_tier = None;
        for (i, cell) in self.inner.cells.iter().enumerate() {
            if reserved[i] == 0 && actual[i] == 0 {
                // Nothing held, nothing spent (a dimension the call does not use).
                continue;
            }
            let (before, after, grown) = cell.settle(reserved[i], actual[i]);
            if let Some(claimed) = grown {
                if let Some(previous) = cell.reach(claimed) {
                    self.fire(cell, previous, claimed, &mut report.warnings);
                }
            }
            if before == after {
                continue;
            }
            let Some(limit) = cell.limit else { continue };
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
            if let (Some(hard), Some(fraction_ppm)) = (cell.hard, self.inner.hard_tier_ppm) {
                if before < hard && hard <= after && hard_tier.is_none() {
                    hard_tier = Some(TripReason::HardTierReached {
                        dimension: cell.dimension,
                        committed: after,
                        threshold: hard,
                        limit,
                        fraction_ppm,
                    });
                }
            }
        }
        hard_tier
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
#[non_exhaustive]
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
    /// The highest tier reached so far (measured on committed + reserved; it never goes
    /// back), `None` below the first.
    pub tier: Option<Tier>,
}

/// A ledger, read at one moment: what the agent reads to decide to wrap up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
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
/// use overseer_budget::{Ledger, Limits, Scope, Spend};
///
/// let ledger = Ledger::new(Scope::Process, Limits::new().tokens(1_000).steps(2))?;
/// let left = ledger.remaining();
/// assert_eq!((left.tokens, left.cost_micros, left.steps), (Some(1_000), None, Some(2)));
/// assert!(left.covers(Spend::new(800, 1_000_000)));
/// assert!(!left.covers(Spend::from_tokens(1_001)));
/// # Ok::<(), overseer_budget::BudgetConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
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
    fn a_shortfall_reports_committed_spend_apart_from_what_is_in_flight() {
        let ledger = tokens_ledger(100);
        ledger.claim([60, 0, 0]).unwrap(); // in flight, not committed
        let busy = ledger.claim([50, 0, 0]).unwrap_err();
        assert_eq!((busy.remaining, busy.committed), (40, 0));
        ledger.settle(
            [60, 0, 0],
            [60, 0, 0],
            &mut CommitReport::empty(Spend::ZERO),
        );
        let spent = ledger.claim([50, 0, 0]).unwrap_err();
        assert_eq!((spent.remaining, spent.committed), (40, 60));
    }

    #[test]
    fn claims_fire_each_threshold_once_on_committed_plus_reserved() {
        let ledger = tokens_ledger(100);
        let mut warnings = Vec::new();
        let mut report = CommitReport::empty(Spend::ZERO);
        for _ in 0..10 {
            let claimed = ledger.claim([10, 0, 0]).unwrap();
            ledger.reach_tiers(claimed, &mut warnings);
            ledger.settle([10, 0, 0], [10, 0, 0], &mut report);
        }
        let levels: Vec<(u8, u64)> = warnings.iter().map(|w| (w.tier.level, w.used)).collect();
        assert_eq!(levels, [(1, 70), (2, 90), (3, 90)]);
        assert!(
            report.warnings.is_empty(),
            "commits within estimates fire nothing"
        );
        assert_eq!(report.limits_reached.len(), 1);
        assert_eq!(ledger.tier().map(|t| t.level), Some(3));
    }

    #[test]
    fn the_tier_check_is_skipped_below_the_next_threshold_and_never_fires_twice() {
        let ledger = tokens_ledger(100);
        let cell = ledger.cell(Dimension::Tokens);
        assert_eq!(cell.next_tier.load(Ordering::Relaxed), 70);
        assert_eq!(cell.reach(69), None);
        assert_eq!(
            cell.peak.load(Ordering::Relaxed),
            0,
            "skipped: no atomic write"
        );
        assert_eq!(cell.reach(86), Some(0)); // 70 and 85
        assert_eq!(cell.next_tier.load(Ordering::Relaxed), 90);
        assert_eq!(cell.reach(80), None, "below the peak: already fired");
        assert_eq!(cell.reach(95), Some(86)); // 90
        assert_eq!(cell.next_tier.load(Ordering::Relaxed), u64::MAX);
        assert_eq!(cell.reach(100), None);
    }

    #[test]
    fn the_hard_tier_is_reached_by_committed_spend_once() {
        let ledger = Ledger::unchecked(
            Scope::Process,
            Limits::new().tokens(100),
            Tiers::none(),
            Some(900_000),
        );
        let mut report = CommitReport::empty(Spend::ZERO);
        ledger.claim([95, 0, 1]).unwrap();
        let none = ledger.settle([95, 0, 1], [89, 0, 1], &mut report);
        assert_eq!(none, None, "89 committed: under 90");
        ledger.claim([5, 0, 1]).unwrap();
        let hit = ledger.settle([5, 0, 1], [1, 0, 1], &mut report);
        assert_eq!(
            hit,
            Some(TripReason::HardTierReached {
                dimension: Dimension::Tokens,
                committed: 90,
                threshold: 90,
                limit: 100,
                fraction_ppm: 900_000,
            })
        );
        ledger.claim([5, 0, 1]).unwrap();
        assert_eq!(ledger.settle([5, 0, 1], [5, 0, 1], &mut report), None);
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
