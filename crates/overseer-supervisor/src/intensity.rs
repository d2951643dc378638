//! Restart intensity: how many restarts a supervisor tolerates within a period.

use std::collections::VecDeque;
use std::time::Duration;

/// Whether a restart may go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within the limit: restart.
    Allowed,
    /// This restart would exceed the limit: the supervisor gives up instead.
    Exceeded,
}

/// The restart history of one supervisor, counted exactly as OTP's `add_restart/3` counts it.
///
/// * Timestamps are **whole seconds** (the clock is read and rounded down), as OTP's
///   `erlang:monotonic_time(second)`.
/// * A restart at second `T` still counts at second `now` while `now - T <= period`: both edges
///   of the window are inclusive.
/// * The new restart is recorded first and then counted: the `(intensity + 1)`th restart inside
///   the window is [`Exceeded`](Verdict::Exceeded). An intensity of 0 makes the first restart fatal.
/// * One group restart (`one_for_all`, `rest_for_one`) is one record.
///
/// ```
/// use overseer_supervisor::{RestartWindow, Verdict};
/// use std::time::Duration;
///
/// let mut window = RestartWindow::new(2, Duration::from_secs(3));
/// assert_eq!(window.record(0), Verdict::Allowed);
/// assert_eq!(window.record(2), Verdict::Allowed);
/// // At second 3 the restart from second 0 still counts (3 - 0 <= 3): three restarts, over 2.
/// assert_eq!(window.record(3), Verdict::Exceeded);
/// ```
#[derive(Debug, Clone)]
pub struct RestartWindow {
    intensity: u32,
    period_secs: u64,
    /// Restart seconds, newest at the back.
    restarts: VecDeque<u64>,
}

impl RestartWindow {
    /// A window allowing `intensity` restarts per `period` (whole seconds are used; the spec
    /// validation rejects a period that is zero or not a whole number of seconds).
    pub fn new(intensity: u32, period: Duration) -> Self {
        Self {
            intensity,
            period_secs: period.as_secs(),
            restarts: VecDeque::new(),
        }
    }

    /// Records a restart at second `now` and says whether it may go ahead.
    pub fn record(&mut self, now: u64) -> Verdict {
        self.forget_before(now);
        self.restarts.push_back(now);
        if self.restarts.len() as u64 <= u64::from(self.intensity) {
            Verdict::Allowed
        } else {
            Verdict::Exceeded
        }
    }

    /// What [`record`](Self::record) would answer, but a restart that would exceed the limit
    /// is not recorded (for a caller that then leaves the decision to someone who will
    /// [`record`](Self::record) it). Amortised constant time.
    ///
    /// ```
    /// use overseer_supervisor::{RestartWindow, Verdict};
    /// use std::time::Duration;
    ///
    /// let mut window = RestartWindow::new(1, Duration::from_secs(5));
    /// assert_eq!(window.record_if_allowed(0), Verdict::Allowed);
    /// assert_eq!(window.record_if_allowed(5), Verdict::Exceeded);
    /// assert_eq!(window.len(), 1, "the refused restart was not recorded");
    /// assert_eq!(window.record_if_allowed(6), Verdict::Allowed);
    /// ```
    pub fn record_if_allowed(&mut self, now: u64) -> Verdict {
        self.forget_before(now);
        if (self.restarts.len() as u64) < u64::from(self.intensity) {
            self.restarts.push_back(now);
            Verdict::Allowed
        } else {
            Verdict::Exceeded
        }
    }

    /// Drops the restarts that no longer count at second `now` (oldest first: they are sorted).
    fn forget_before(&mut self, now: u64) {
        let threshold = now.saturating_sub(self.period_secs);
        while self.restarts.front().is_some_and(|&at| at < threshold) {
            self.restarts.pop_front();
        }
    }

    /// How many restarts are on record (including ones that may have aged out since the last
    /// [`record`](Self::record); pruning happens only when a restart is recorded, as in OTP).
    pub fn len(&self) -> usize {
        self.restarts.len()
    }

    /// How many restarts count at second `now`: those the next [`record`](Self::record) would
    /// count with itself (recorded no earlier than `now - period`).
    ///
    /// ```
    /// use overseer_supervisor::RestartWindow;
    /// use std::time::Duration;
    ///
    /// let mut window = RestartWindow::new(3, Duration::from_secs(5));
    /// window.record(0);
    /// window.record(4);
    /// assert_eq!(window.in_window(5), 2);
    /// assert_eq!(window.in_window(6), 1, "the restart at 0 no longer counts");
    /// ```
    pub fn in_window(&self, now: u64) -> u32 {
        let threshold = now.saturating_sub(self.period_secs);
        let counted = self.restarts.iter().filter(|&&at| at >= threshold).count();
        u32::try_from(counted).unwrap_or(u32::MAX)
    }

    /// The restarts it tolerates per period.
    pub fn intensity(&self) -> u32 {
        self.intensity
    }

    /// The period, in whole seconds.
    pub fn period_secs(&self) -> u64 {
        self.period_secs
    }

    /// Whether no restart is on record.
    pub fn is_empty(&self) -> bool {
        self.restarts.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_restart_that_exceeds_intensity_is_the_one_past_the_limit() {
        let mut window = RestartWindow::new(3, Duration::from_secs(5));
        for _ in 0..3 {
            assert_eq!(window.record(10), Verdict::Allowed);
        }
        assert_eq!(window.record(10), Verdict::Exceeded);
    }

    #[test]
    fn intensity_zero_makes_the_first_restart_fatal() {
        let mut window = RestartWindow::new(0, Duration::from_secs(5));
        assert_eq!(window.record(0), Verdict::Exceeded);
    }

    #[test]
    fn the_window_edge_is_inclusive_and_a_restart_ages_out_one_second_later() {
        let mut inclusive = RestartWindow::new(1, Duration::from_secs(3));
        assert_eq!(inclusive.record(0), Verdict::Allowed);
        assert_eq!(inclusive.record(3), Verdict::Exceeded);

        let mut aged = RestartWindow::new(1, Duration::from_secs(3));
        assert_eq!(aged.record(0), Verdict::Allowed);
        assert_eq!(aged.record(4), Verdict::Allowed);
        assert_eq!(aged.len(), 1);
    }

    #[test]
    fn restarts_before_the_epoch_second_do_not_underflow() {
        let mut window = RestartWindow::new(1, Duration::from_secs(100));
        assert_eq!(window.record(0), Verdict::Allowed);
        assert_eq!(window.record(1), Verdict::Exceeded);
    }

    #[test]
    fn record_if_allowed_answers_as_record_and_records_only_an_allowed_restart() {
        for intensity in 0..4u32 {
            let mut checked = RestartWindow::new(intensity, Duration::from_secs(3));
            for now in [0, 0, 1, 3, 4, 4, 8, 9, 9, 9, 20] {
                // What `record` answers from the same history.
                let verdict = checked.clone().record(now);
                let before = checked.len();
                assert_eq!(
                    checked.record_if_allowed(now),
                    verdict,
                    "intensity {intensity} at {now}"
                );
                if verdict == Verdict::Exceeded {
                    assert!(checked.len() <= before, "nothing recorded");
                }
            }
        }
    }

    #[test]
    fn a_huge_intensity_is_accepted() {
        let mut window = RestartWindow::new(u32::MAX, Duration::from_secs(1));
        for second in 0..1000 {
            assert_eq!(window.record(second), Verdict::Allowed);
        }
        assert!(window.len() <= 2);
    }
}
