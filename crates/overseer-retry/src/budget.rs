//! A budget shared by every caller, so that retries cannot multiply the load on a failing
//! provider.
//!
//! Per-call retry policies multiply: three attempts at each of three layers is nine calls per
//! request, all landing on the provider that is already failing. A [`RetryBudget`] caps
//! retries at a share of the requests seen recently, whatever the policies say: every request
//! [`deposit`](RetryBudget::deposit)s, every retry [`withdraw`](RetryBudget::withdraw)s, and a
//! withdrawal beyond the balance is refused ([`RetryRefused`]).
//!
//! The semantics are tower's `TpsBudget` (tower 0.5, `src/retry/budget/tps_budget.rs`, itself
//! from Finagle's `RetryBudget`):
//!
//! - `ttl` (1 to 60 s, default 10 s) is how long a deposit (and a withdrawal) counts. The window
//!   is ten slots of `ttl / 10`; a slot's net balance drops out once ten newer slots have
//!   closed, so an entry counts for at least `ttl` and at most `ttl + ttl/10`.
//! - `retry_ratio` (default 0.2) is the retries allowed per request: 0.2 is one retry per five
//!   requests; 2.0 is two per request (at most 1000).
//! - `min_per_sec` (default 10) is a floor, a reserve of `min_per_sec × ttl` retries that never
//!   expires, so a caller with little traffic (or just started) can still retry.
//!
//! Differences from tower, each on purpose: amounts are fixed-point (a deposit is `ratio ×
//! 1000` milli-retries, a withdrawal 1000), so a ratio of 0.3 allows 30 % rather than tower's
//! `1 / (1/0.3 as isize)` = 33 %; a bad setting is a typed [`BudgetError`] rather than a panic;
//! a long idle spell clears at most the ten slots instead of looping once per elapsed slot; the
//! slot boundaries stay on a fixed grid; and the common case (the current slot has not closed)
//! takes no lock: it is one clock read, one or two atomic loads and one atomic add or
//! compare-exchange. A slot closing takes a mutex, once per `ttl / 10`.
//!
//! Concurrent withdrawals within a slot never take more than the balance (a compare-exchange
//! on the open slot). A withdrawal racing the closing of a slot (a few nanoseconds once per
//! `ttl / 10`) may be judged against a balance that momentarily lacks the closing slot's net;
//! tower's check-then-add has the same window and a wider one. The budget bounds load; it is
//! not an account.
//!
//! Time is [`tokio::time::Instant`], so a paused tokio clock drives the window in tests. The
//! `_at` methods take the instant explicitly, for a caller that has already read the clock.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Milli-retries per retry: the unit of the fixed-point balance.
const UNIT: i64 = 1000;
/// Slots the window is divided into (tower's choice).
const SLOTS: usize = 10;

/// A retry budget with the semantics of tower's `TpsBudget`; see the [module
/// documentation](self).
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use overseer_retry::RetryBudget;
///
/// // One retry per two requests, no floor.
/// let budget = RetryBudget::new(Duration::from_secs(10), 0, 0.5)?;
/// budget.deposit();
/// assert!(budget.withdraw().is_err(), "half a retry is not a retry");
/// budget.deposit();
/// assert!(budget.withdraw().is_ok());
/// assert!(budget.withdraw().is_err());
/// # Ok::<(), overseer_retry::BudgetError>(())
/// ```
#[derive(Debug)]
pub struct RetryBudget {
    origin: Instant,
    slot_nanos: u64,
    deposit_amount: i64,
    reserve: i64,
    /// Net change in the open slot.
    current: AtomicI64,
    /// Sum of the closed slots still in the window.
    closed_sum: AtomicI64,
    /// Start of the open slot, in nanoseconds since `origin`.
    open_since: AtomicU64,
    ring: Mutex<Ring>,
}

#[derive(Debug)]
struct Ring {
    slots: [i64; SLOTS],
    /// The slot the open slot's balance is written to when it closes.
    next: usize,
}

/// A withdrawal was refused: retries are above their share of recent requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("retry refused: the retry budget is spent (balance {balance} milli-retries, a retry costs 1000)")]
#[non_exhaustive]
pub struct RetryRefused {
    /// The balance when the withdrawal was refused, in thousandths of a retry.
    pub balance: i64,
}

/// A retry budget's settings are out of range.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum BudgetError {
    /// The window was shorter than 1 s or longer than 60 s.
    #[error("ttl must be between 1 s and 60 s, got {0:?}")]
    Ttl(Duration),
    /// The ratio was negative, above 1000 or not a number.
    #[error("retry_ratio must be between 0 and 1000, got {0}")]
    Ratio(f64),
}

impl Default for RetryBudget {
    /// tower's default: a 10 s window, 10 retries a second as a floor, 20 % of requests.
    fn default() -> Self {
        Self::build(Duration::from_secs(10), 10, 200, Instant::now())
    }
}

impl RetryBudget {
    /// A budget counting entries for `ttl`, with a floor of `min_per_sec` retries a second and
    /// `retry_ratio` retries allowed per request.
    ///
    /// # Errors
    ///
    /// [`BudgetError::Ttl`] for a `ttl` outside 1–60 s, [`BudgetError::Ratio`] for a ratio
    /// outside 0–1000 (tower's bounds).
    pub fn new(ttl: Duration, min_per_sec: u32, retry_ratio: f64) -> Result<Self, BudgetError> {
        if !(Duration::from_secs(1)..=Duration::from_secs(60)).contains(&ttl) {
            return Err(BudgetError::Ttl(ttl));
        }
        if !(0.0..=1000.0).contains(&retry_ratio) {
            return Err(BudgetError::Ratio(retry_ratio));
        }
        let deposit = (retry_ratio * UNIT as f64).round() as i64;
        Ok(Self::build(ttl, min_per_sec, deposit, Instant::now()))
    }

    fn build(ttl: Duration, min_per_sec: u32, deposit_amount: i64, origin: Instant) -> Self {
        let ttl_nanos = ttl.as_nanos() as u64; // at most 60 s
                                               // At most 2^32 retries a second over 60 s: far below the clamp, which leaves room for
                                               // the window's sums to be added to the reserve without overflow.
        let floor = u128::from(min_per_sec) * u128::from(ttl_nanos) / 1_000_000_000;
        let reserve = i64::try_from(floor * UNIT as u128)
            .unwrap_or(i64::MAX)
            .min(i64::MAX / 4);
        Self {
            origin,
            slot_nanos: ttl_nanos / SLOTS as u64,
            deposit_amount,
            reserve,
            current: AtomicI64::new(0),
            closed_sum: AtomicI64::new(0),
            open_since: AtomicU64::new(0),
            ring: Mutex::new(Ring {
                slots: [0; SLOTS],
                next: 0,
            }),
        }
    }

    /// Records a request (a first attempt), earning `retry_ratio` of a retry.
    pub fn deposit(&self) {
        self.deposit_at(Instant::now());
    }

    /// [`deposit`](Self::deposit) at `now`.
    pub fn deposit_at(&self, now: Instant) {
        self.roll(now);
        self.current
            .fetch_add(self.deposit_amount, Ordering::AcqRel);
    }

    /// Takes one retry from the budget.
    ///
    /// # Errors
    ///
    /// [`RetryRefused`] when the balance (reserve plus the window's net deposits) is below one
    /// retry. Nothing is taken then.
    pub fn withdraw(&self) -> Result<(), RetryRefused> {
        self.withdraw_at(Instant::now())
    }

    /// [`withdraw`](Self::withdraw) at `now`.
    ///
    /// # Errors
    ///
    /// As [`withdraw`](Self::withdraw).
    pub fn withdraw_at(&self, now: Instant) -> Result<(), RetryRefused> {
        self.roll(now);
        let base = self
            .reserve
            .saturating_add(self.closed_sum.load(Ordering::Acquire));
        let mut current = self.current.load(Ordering::Acquire);
        loop {
            let balance = base.saturating_add(current);
            if balance < UNIT {
                return Err(RetryRefused { balance });
            }
            match self.current.compare_exchange_weak(
                current,
                current - UNIT,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok(()),
                Err(seen) => current = seen,
            }
        }
    }

    /// The balance at `now`, in thousandths of a retry (a withdrawal needs 1000).
    pub fn balance_at(&self, now: Instant) -> i64 {
        self.roll(now);
        self.reserve
            + self.closed_sum.load(Ordering::Acquire)
            + self.current.load(Ordering::Acquire)
    }

    /// Closes the open slot (and any wholly elapsed ones) if `now` is past its end.
    fn roll(&self, now: Instant) {
        let at = u64::try_from(now.saturating_duration_since(self.origin).as_nanos())
            .unwrap_or(u64::MAX);
        if at.saturating_sub(self.open_since.load(Ordering::Acquire)) < self.slot_nanos {
            return;
        }
        self.roll_slow(at);
    }

    #[cold]
    fn roll_slow(&self, at: u64) {
        // A poisoned lock only means another thread panicked mid-update of plain integers:
        // the ring is still usable.
        let mut ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        let open_since = self.open_since.load(Ordering::Acquire);
        let elapsed_slots = (at.saturating_sub(open_since) / self.slot_nanos) as usize;
        if elapsed_slots == 0 {
            return; // another thread rolled first
        }
        let closing = self.current.swap(0, Ordering::AcqRel);
        let index = ring.next;
        if elapsed_slots > SLOTS {
            // Idle for longer than the window: nothing in it is recent.
            ring.slots = [0; SLOTS];
        } else {
            ring.slots[index] = closing;
            // Slots that passed with no traffic at all hold nothing.
            for k in 1..elapsed_slots {
                ring.slots[(index + k) % SLOTS] = 0;
            }
        }
        ring.next = (index + elapsed_slots) % SLOTS;
        // The ring now holds the ten slots before the open one.
        let sum = ring
            .slots
            .iter()
            .fold(0i64, |sum, v| sum.saturating_add(*v));
        self.closed_sum.store(sum, Ordering::Release);
        self.open_since.store(
            open_since + elapsed_slots as u64 * self.slot_nanos,
            Ordering::Release,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(ttl_secs: u64, min: u32, ratio: f64) -> RetryBudget {
        RetryBudget::new(Duration::from_secs(ttl_secs), min, ratio).unwrap()
    }

    #[test]
    fn settings_out_of_range_are_typed_errors() {
        let ms = Duration::from_millis;
        assert_eq!(
            RetryBudget::new(ms(999), 0, 0.2).unwrap_err(),
            BudgetError::Ttl(ms(999))
        );
        assert_eq!(
            RetryBudget::new(ms(60_001), 0, 0.2).unwrap_err(),
            BudgetError::Ttl(ms(60_001))
        );
        assert_eq!(
            RetryBudget::new(ms(1000), 0, -0.1).unwrap_err(),
            BudgetError::Ratio(-0.1)
        );
        assert!(matches!(
            RetryBudget::new(ms(1000), 0, f64::NAN),
            Err(BudgetError::Ratio(_))
        ));
    }

    #[test]
    fn an_empty_budget_refuses() {
        let b = budget(1, 0, 1.0);
        assert_eq!(b.withdraw(), Err(RetryRefused { balance: 0 }));
    }

    #[test]
    fn a_ratio_of_three_tenths_allows_three_retries_per_ten_requests() {
        let b = budget(10, 0, 0.3);
        let now = Instant::now();
        for _ in 0..10 {
            b.deposit_at(now);
        }
        let granted = (0..10).filter(|_| b.withdraw_at(now).is_ok()).count();
        assert_eq!(granted, 3);
    }

    #[test]
    fn the_largest_settings_do_not_overflow() {
        let b = budget(60, u32::MAX, 1000.0);
        let now = Instant::now();
        b.deposit_at(now);
        assert!(b.withdraw_at(now).is_ok());
        assert!(b.balance_at(now) > 0);
    }

    #[test]
    fn the_floor_is_min_per_sec_times_ttl() {
        let b = budget(2, 5, 0.0);
        let now = Instant::now();
        let granted = (0..20).filter(|_| b.withdraw_at(now).is_ok()).count();
        assert_eq!(granted, 10);
    }
}
