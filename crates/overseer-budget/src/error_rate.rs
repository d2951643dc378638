//! The error-rate trigger: a count-based sliding window over call outcomes.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::error::BudgetConfigError;
use crate::tier::{fraction_to_ppm, PPM};

/// The largest error-rate window, in calls.
pub const MAX_WINDOW: u32 = 100_000;

/// When the error rate trips the kill switch: over the last `window` calls (of all agents),
/// once at least `min_calls` have been seen, a failure rate at or above `threshold`.
///
/// ```
/// use overseer_budget::ErrorRateTrigger;
///
/// // Half of the last 20 calls failed, counting only once 10 calls were seen.
/// let trigger = ErrorRateTrigger::new(0.5, 20, 10)?;
/// assert_eq!(trigger.threshold_ppm(), 500_000);
/// assert!(ErrorRateTrigger::new(0.0, 20, 10).is_err());
/// assert!(ErrorRateTrigger::new(0.5, 20, 30).is_err()); // could never fire
/// # Ok::<(), overseer_budget::BudgetConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ErrorRateTrigger {
    threshold_ppm: u32,
    window: u32,
    min_calls: u32,
}

impl ErrorRateTrigger {
    /// A trigger at this failure rate over this many calls.
    ///
    /// # Errors
    /// - [`BudgetConfigError::ErrorThresholdOutOfRange`] unless `0 < threshold ≤ 1` (at
    ///   parts-per-million precision).
    /// - [`BudgetConfigError::WindowOutOfRange`] unless `1 ≤ window ≤` [`MAX_WINDOW`].
    /// - [`BudgetConfigError::MinCallsOutOfRange`] unless `1 ≤ min_calls ≤ window`.
    pub fn new(threshold: f64, window: u32, min_calls: u32) -> Result<Self, BudgetConfigError> {
        let threshold_ppm = fraction_to_ppm(threshold)
            .filter(|&p| p > 0)
            .ok_or(BudgetConfigError::ErrorThresholdOutOfRange { threshold })?;
        if window == 0 || window > MAX_WINDOW {
            return Err(BudgetConfigError::WindowOutOfRange {
                window,
                max: MAX_WINDOW,
            });
        }
        if min_calls == 0 || min_calls > window {
            return Err(BudgetConfigError::MinCallsOutOfRange { min_calls, window });
        }
        Ok(Self {
            threshold_ppm,
            window,
            min_calls,
        })
    }

    /// The failure-rate threshold, in parts per million.
    pub fn threshold_ppm(&self) -> u32 {
        self.threshold_ppm
    }

    /// How many recent calls the window holds.
    pub fn window(&self) -> u32 {
        self.window
    }

    /// How many calls must be in the window before the rate counts.
    pub fn min_calls(&self) -> u32 {
        self.min_calls
    }
}

/// The sliding window itself: a pure state machine, fed one outcome at a time.
///
/// | calls in window | failure rate | verdict |
/// |---|---|---|
/// | below `min_calls` | any | under threshold |
/// | at least `min_calls` | below threshold | under threshold |
/// | at least `min_calls` | at or above threshold | **over threshold** |
///
/// ```
/// use overseer_budget::{ErrorRateTrigger, ErrorWindow};
///
/// let mut window = ErrorWindow::new(ErrorRateTrigger::new(0.5, 4, 2)?);
/// assert!(!window.record(false)); // 1 failure in 1 call: too few calls to judge
/// assert!(window.record(false)); // 2 of 2
/// for _ in 0..4 {
///     window.record(true); // the failures slide out of the window
/// }
/// assert!(!window.is_over_threshold());
/// # Ok::<(), overseer_budget::BudgetConfigError>(())
/// ```
#[derive(Clone, Debug)]
pub struct ErrorWindow {
    trigger: ErrorRateTrigger,
    /// The most recent outcomes, oldest first; `true` is a failure.
    failed: VecDeque<bool>,
    failures: u32,
}

impl ErrorWindow {
    /// An empty window.
    pub fn new(trigger: ErrorRateTrigger) -> Self {
        Self {
            trigger,
            failed: VecDeque::with_capacity(trigger.window as usize),
            failures: 0,
        }
    }

    /// Records one call's outcome; returns whether the window is now over the threshold.
    pub fn record(&mut self, success: bool) -> bool {
        if self.failed.len() >= self.trigger.window as usize {
            if let Some(true) = self.failed.pop_front() {
                self.failures -= 1;
            }
        }
        self.failed.push_back(!success);
        if !success {
            self.failures += 1;
        }
        self.is_over_threshold()
    }

    /// Whether enough calls were seen and the failure rate is at or above the threshold.
    pub fn is_over_threshold(&self) -> bool {
        let calls = self.calls();
        calls >= self.trigger.min_calls
            && u64::from(self.failures) * PPM
                >= u64::from(self.trigger.threshold_ppm) * u64::from(calls)
    }

    /// Calls in the window now.
    pub fn calls(&self) -> u32 {
        // At most `window`, which is a u32.
        u32::try_from(self.failed.len()).unwrap_or(u32::MAX)
    }

    /// The window's figures.
    pub fn status(&self) -> ErrorRateStatus {
        ErrorRateStatus {
            calls: self.calls(),
            failures: self.failures,
            window: self.trigger.window,
            min_calls: self.trigger.min_calls,
            threshold_ppm: self.trigger.threshold_ppm,
        }
    }
}

/// An error-rate window's figures at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ErrorRateStatus {
    /// Calls in the window.
    pub calls: u32,
    /// Failed calls in the window.
    pub failures: u32,
    /// The window's size.
    pub window: u32,
    /// Calls needed before the rate counts.
    pub min_calls: u32,
    /// The threshold, in parts per million.
    pub threshold_ppm: u32,
}

impl ErrorRateStatus {
    /// The failure rate in the window, in parts per million (0 with no calls).
    pub fn rate_ppm(&self) -> u32 {
        if self.calls == 0 {
            return 0;
        }
        let rate = u64::from(self.failures) * PPM / u64::from(self.calls);
        u32::try_from(rate).unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_threshold_of_one_trips_only_when_every_call_failed() {
        let mut window = ErrorWindow::new(ErrorRateTrigger::new(1.0, 3, 3).unwrap());
        assert!(!window.record(false)); // fail: too few calls
        assert!(!window.record(false)); // fail fail: too few calls
        assert!(!window.record(true)); // fail fail ok
        assert!(!window.record(false)); // fail ok fail
        assert!(!window.record(false)); // ok fail fail
        assert!(window.record(false)); // fail fail fail
    }

    #[test]
    fn the_window_forgets_the_oldest_outcome() {
        let mut window = ErrorWindow::new(ErrorRateTrigger::new(0.5, 2, 1).unwrap());
        window.record(false);
        window.record(true);
        window.record(true);
        assert_eq!(window.status().failures, 0);
        assert_eq!(window.status().calls, 2);
    }

    #[test]
    fn invalid_triggers_are_rejected_with_typed_errors() {
        assert!(matches!(
            ErrorRateTrigger::new(f64::NAN, 10, 1),
            Err(BudgetConfigError::ErrorThresholdOutOfRange { .. })
        ));
        assert!(matches!(
            ErrorRateTrigger::new(1.01, 10, 1),
            Err(BudgetConfigError::ErrorThresholdOutOfRange { .. })
        ));
        assert!(matches!(
            ErrorRateTrigger::new(0.5, 0, 1),
            Err(BudgetConfigError::WindowOutOfRange { window: 0, .. })
        ));
        assert!(matches!(
            ErrorRateTrigger::new(0.5, MAX_WINDOW + 1, 1),
            Err(BudgetConfigError::WindowOutOfRange { .. })
        ));
        assert!(matches!(
            ErrorRateTrigger::new(0.5, 10, 0),
            Err(BudgetConfigError::MinCallsOutOfRange { min_calls: 0, .. })
        ));
        assert!(matches!(
            ErrorRateTrigger::new(0.5, 10, 11),
            Err(BudgetConfigError::MinCallsOutOfRange { min_calls: 11, .. })
        ));
    }

    #[test]
    fn rate_is_reported_in_parts_per_million() {
        let mut window = ErrorWindow::new(ErrorRateTrigger::new(0.9, 4, 4).unwrap());
        window.record(false);
        window.record(true);
        window.record(true);
        window.record(true);
        assert_eq!(window.status().rate_ppm(), 250_000);
    }
}
