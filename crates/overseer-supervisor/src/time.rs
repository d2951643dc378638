//! Deadlines from durations of any length.

use std::time::Duration;

use tokio::time::Instant;

/// How far ahead a deadline that never comes is set: about 30 years, as tokio's own timers
/// do for a duration they cannot add to the clock.
const FAR_FUTURE: Duration = Duration::from_secs(30 * 365 * 24 * 60 * 60);

/// The instant `duration` after `start`; a duration too long to add to the clock (such as
/// `Duration::MAX`) gives a deadline about 30 years ahead, which never comes in practice.
///
/// Every deadline the library computes from a caller's duration (an ask's timeout, a
/// shutdown timeout, a kill switch's grace period) goes through here, so no `Instant +
/// Duration` overflows and panics.
///
/// ```
/// use overseer_supervisor::deadline_after;
/// use std::time::Duration;
/// use tokio::time::Instant;
///
/// let now = Instant::now();
/// assert_eq!(deadline_after(now, Duration::from_secs(5)), now + Duration::from_secs(5));
/// assert!(deadline_after(now, Duration::MAX) > now + Duration::from_secs(20 * 365 * 24 * 3600));
/// ```
pub fn deadline_after(start: Instant, duration: Duration) -> Instant {
    start
        .checked_add(duration)
        .or_else(|| start.checked_add(FAR_FUTURE))
        // Unreachable where an instant 30 years ahead is representable (every platform tokio
        // runs on); a deadline of now is still better than a panic.
        .unwrap_or(start)
}
