//! When a deployment that keeps failing is skipped: LiteLLM's router cooldowns, as a pure
//! state machine driven by the caller's clock.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// After `allowed_failures` failures within `window`, a deployment is skipped for `cooldown`
/// (longer when a rate limit asked for a longer wait). The defaults are LiteLLM's router's
/// (`allowed_fails` 3, `cooldown_time` 5 s): a fourth failure within a minute cools down.
///
/// ```
/// use std::time::Duration;
/// use tokio::time::Instant;
/// use overseer_provider::{Cooldown, Health};
///
/// let policy = Cooldown::default();
/// let mut health = Health::default();
/// let now = Instant::now();
/// for _ in 0..4 {
///     health.record_failure(&policy, now, None);
/// }
/// assert_eq!(health.cooling_until(now), Some(now + Duration::from_secs(5)));
/// assert_eq!(health.cooling_until(now + Duration::from_secs(5)), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Cooldown {
    /// Failures allowed within the window; one more starts a cooldown. Zero cools down on the
    /// first failure.
    pub allowed_failures: u32,
    /// The window failures are counted in.
    pub window: Duration,
    /// How long a deployment is skipped.
    pub cooldown: Duration,
}

impl Default for Cooldown {
    fn default() -> Self {
        Self::new(3, Duration::from_secs(60), Duration::from_secs(5))
    }
}

impl Cooldown {
    /// A cooldown of `cooldown` after more than `allowed_failures` failures within `window`.
    pub const fn new(allowed_failures: u32, window: Duration, cooldown: Duration) -> Self {
        Self {
            allowed_failures,
            window,
            cooldown,
        }
    }
}

/// One deployment's recent failures and cooldown.
#[derive(Debug, Clone, Default)]
pub struct Health {
    failures: VecDeque<Instant>,
    until: Option<Instant>,
}

impl Health {
    /// Records a failure at `now`; `retry_after` (a rate limit's) lengthens a cooldown it
    /// starts, never shortens it.
    pub fn record_failure(
        &mut self,
        policy: &Cooldown,
        now: Instant,
        retry_after: Option<Duration>,
    ) {
        while let Some(&oldest) = self.failures.front() {
            if now.saturating_duration_since(oldest) < policy.window {
                break;
            }
            self.failures.pop_front();
        }
        self.failures.push_back(now);
        if self.failures.len() > policy.allowed_failures as usize {
            let length = retry_after.map_or(policy.cooldown, |wait| wait.max(policy.cooldown));
            self.until = Some(now + length);
            self.failures.clear();
        }
    }

    /// Until when the deployment is skipped, if it is at `now`.
    pub fn cooling_until(&self, now: Instant) -> Option<Instant> {
        self.until.filter(|until| *until > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_outside_the_window_do_not_count() {
        let policy = Cooldown::new(1, Duration::from_secs(10), Duration::from_secs(5));
        let mut health = Health::default();
        let start = Instant::now();
        health.record_failure(&policy, start, None);
        health.record_failure(&policy, start + Duration::from_secs(10), None);
        assert_eq!(health.cooling_until(start + Duration::from_secs(10)), None);
        health.record_failure(&policy, start + Duration::from_secs(11), None);
        assert_eq!(
            health.cooling_until(start + Duration::from_secs(11)),
            Some(start + Duration::from_secs(16))
        );
    }

    #[test]
    fn a_rate_limit_lengthens_the_cooldown_never_shortens_it() {
        let policy = Cooldown::new(0, Duration::from_secs(60), Duration::from_secs(5));
        let now = Instant::now();
        let mut long = Health::default();
        long.record_failure(&policy, now, Some(Duration::from_secs(30)));
        assert_eq!(long.cooling_until(now), Some(now + Duration::from_secs(30)));
        let mut short = Health::default();
        short.record_failure(&policy, now, Some(Duration::from_secs(1)));
        assert_eq!(short.cooling_until(now), Some(now + Duration::from_secs(5)));
    }
}
