//! How long an open breaker stays open, and how that grows on each re-open.

use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::BreakerConfigError;

/// The longest duration any setting may have (7 days); longer is refused as a configuration
/// error, since a breaker meant to stay open for longer is better forced open by an operator.
pub const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// The open duration: exponential growth on each re-open, a cap, and jitter.
///
/// The `n`-th consecutive opening (counting from 0, reset when the breaker closes) lasts
///
/// ```text
/// nominal(n) = min(base × multiplierⁿ, max)
/// actual(n)  = nominal(n) × (1 − jitter × u),   u uniform in [0, 1)
/// ```
///
/// Jitter only ever *shortens* the duration, so `max` is a hard cap and breakers that reach
/// the cap together still spread out. The random draws come from the breaker's own seedable
/// generator (see [`BreakerConfig::seed`](crate::BreakerConfig::seed)).
///
/// ```
/// use std::time::Duration;
/// use overseer_breaker::Backoff;
///
/// let backoff = Backoff::exponential(Duration::from_secs(30), 2.0, Duration::from_secs(300));
/// assert_eq!(backoff.nominal(0), Duration::from_secs(30));
/// assert_eq!(backoff.nominal(1), Duration::from_secs(60));
/// assert_eq!(backoff.nominal(4), Duration::from_secs(300)); // 480 s, capped
/// assert_eq!(backoff.jitter, 0.0);
///
/// let jittered = backoff.jitter(0.2);
/// assert_eq!(jittered.bounds(1), (Duration::from_secs(48), Duration::from_secs(60)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Backoff {
    /// The first open duration after closing. Default 30 s. `base_ms` in JSON.
    #[serde(rename = "base_ms", with = "overseer_serde::millis")]
    pub base: Duration,
    /// Growth factor per re-open, at least 1. Default 2.
    pub multiplier: f64,
    /// The cap, at least `base`. Default 5 minutes. `max_ms` in JSON.
    #[serde(rename = "max_ms", with = "overseer_serde::millis")]
    pub max: Duration,
    /// Fraction in `[0, 1)` by which a duration may be shortened at random. Default 0.2.
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(30),
            multiplier: 2.0,
            max: Duration::from_secs(5 * 60),
            jitter: 0.2,
        }
    }
}

impl Backoff {
    /// `base × multiplierⁿ` capped at `max`, without jitter (add it with [`jitter`](Self::jitter)).
    pub fn exponential(base: Duration, multiplier: f64, max: Duration) -> Self {
        Self {
            base,
            multiplier,
            max,
            jitter: 0.0,
        }
    }

    /// Always the same duration: no growth, no jitter.
    pub fn fixed(duration: Duration) -> Self {
        Self::exponential(duration, 1.0, duration)
    }

    /// The same backoff with `fraction` of jitter (`0.2` = up to 20 % shorter).
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.jitter = fraction;
        self
    }

    /// Checks every rule in [`BreakerConfigError`]'s backoff variants.
    pub fn validate(&self) -> Result<(), BreakerConfigError> {
        if self.base.is_zero() {
            return Err(BreakerConfigError::ZeroOpenDuration);
        }
        if self.max < self.base {
            return Err(BreakerConfigError::MaxBelowBase {
                base: self.base,
                max: self.max,
            });
        }
        if self.max > MAX_DURATION {
            return Err(BreakerConfigError::DurationTooLong {
                what: "the maximum open duration",
                value: self.max,
                limit: MAX_DURATION,
            });
        }
        if !(self.multiplier.is_finite() && self.multiplier >= 1.0) {
            return Err(BreakerConfigError::Multiplier(self.multiplier));
        }
        if !(0.0..1.0).contains(&self.jitter) {
            return Err(BreakerConfigError::Jitter(self.jitter));
        }
        Ok(())
    }

    /// The un-jittered duration of the `opens`-th consecutive opening (0 = the first).
    pub fn nominal(&self, opens: u32) -> Duration {
        if opens == 0 {
            return self.base.min(self.max);
        }
        let exponent = i32::try_from(opens).unwrap_or(i32::MAX);
        let secs = self.base.as_secs_f64() * self.multiplier.powi(exponent);
        // Infinity (and NaN, which cannot happen with a validated config) end at the cap.
        if !secs.is_finite() || secs >= self.max.as_secs_f64() {
            return self.max;
        }
        Duration::try_from_secs_f64(secs).map_or(self.max, |d| d.min(self.max))
    }

    /// The shortest and longest duration the `opens`-th opening can last once jittered.
    pub fn bounds(&self, opens: u32) -> (Duration, Duration) {
        let nominal = self.nominal(opens);
        (scale(nominal, 1.0 - self.jitter), nominal)
    }

    /// The jittered duration of the `opens`-th opening, drawing from `rng`.
    pub(crate) fn sample<R: Rng + ?Sized>(&self, opens: u32, rng: &mut R) -> Duration {
        let nominal = self.nominal(opens);
        if self.jitter <= 0.0 {
            return nominal;
        }
        let u: f64 = rng.random();
        scale(nominal, 1.0 - self.jitter * u)
    }
}

/// `duration × factor` for a factor in `(0, 1]`, never panicking.
fn scale(duration: Duration, factor: f64) -> Duration {
    Duration::try_from_secs_f64(duration.as_secs_f64() * factor)
        .map_or(duration, |d| d.min(duration))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn nominal_duration_doubles_on_each_reopen_until_the_cap() {
        let b = Backoff::exponential(secs(30), 2.0, secs(300));
        let got: Vec<_> = (0..6).map(|n| b.nominal(n)).collect();
        assert_eq!(
            got,
            [
                secs(30),
                secs(60),
                secs(120),
                secs(240),
                secs(300),
                secs(300)
            ]
        );
    }

    #[test]
    fn nominal_duration_stays_at_the_cap_for_absurd_reopen_counts() {
        let b = Backoff::exponential(secs(30), 2.0, secs(300));
        assert_eq!(b.nominal(u32::MAX), secs(300));
        let huge = Backoff::exponential(secs(1), 10.0, MAX_DURATION);
        assert_eq!(huge.nominal(400), MAX_DURATION);
    }

    #[test]
    fn fixed_backoff_never_grows() {
        let b = Backoff::fixed(secs(10));
        assert!(b.validate().is_ok());
        assert_eq!(b.nominal(0), secs(10));
        assert_eq!(b.nominal(7), secs(10));
    }

    #[test]
    fn jittered_durations_stay_within_bounds_and_vary() {
        let b = Backoff::exponential(secs(30), 2.0, secs(300)).jitter(0.2);
        let mut rng = SmallRng::seed_from_u64(7);
        for opens in 0..6 {
            let (lo, hi) = b.bounds(opens);
            let draws: Vec<_> = (0..500).map(|_| b.sample(opens, &mut rng)).collect();
            assert!(draws.iter().all(|d| *d >= lo && *d <= hi), "opens={opens}");
            let distinct: std::collections::HashSet<_> = draws.iter().collect();
            assert!(
                distinct.len() > 400,
                "jitter should spread draws, got {}",
                distinct.len()
            );
        }
    }

    #[test]
    fn same_seed_gives_the_same_jitter() {
        let b = Backoff::default();
        let mut r1 = SmallRng::seed_from_u64(42);
        let mut r2 = SmallRng::seed_from_u64(42);
        let a: Vec<_> = (0..20).map(|n| b.sample(n % 5, &mut r1)).collect();
        let c: Vec<_> = (0..20).map(|n| b.sample(n % 5, &mut r2)).collect();
        assert_eq!(a, c);
    }

    #[test]
    fn invalid_backoffs_are_refused_with_the_reason() {
        let ok = Backoff::default();
        assert_eq!(ok.validate(), Ok(()));
        let cases = [
            (
                Backoff {
                    base: Duration::ZERO,
                    ..ok
                },
                BreakerConfigError::ZeroOpenDuration,
            ),
            (
                Backoff {
                    max: secs(10),
                    ..ok
                },
                BreakerConfigError::MaxBelowBase {
                    base: secs(30),
                    max: secs(10),
                },
            ),
            (
                Backoff {
                    multiplier: 0.5,
                    ..ok
                },
                BreakerConfigError::Multiplier(0.5),
            ),
            (
                Backoff { jitter: 1.0, ..ok },
                BreakerConfigError::Jitter(1.0),
            ),
            (
                Backoff { jitter: -0.1, ..ok },
                BreakerConfigError::Jitter(-0.1),
            ),
            (
                Backoff {
                    max: MAX_DURATION + secs(1),
                    ..ok
                },
                BreakerConfigError::DurationTooLong {
                    what: "the maximum open duration",
                    value: MAX_DURATION + secs(1),
                    limit: MAX_DURATION,
                },
            ),
        ];
        for (backoff, expected) in cases {
            assert_eq!(backoff.validate(), Err(expected));
        }
        assert!(matches!(
            Backoff {
                multiplier: f64::NAN,
                ..ok
            }
            .validate(),
            Err(BreakerConfigError::Multiplier(_))
        ));
        assert!(matches!(
            Backoff {
                multiplier: f64::INFINITY,
                ..ok
            }
            .validate(),
            Err(BreakerConfigError::Multiplier(_))
        ));
        assert!(matches!(
            Backoff {
                jitter: f64::NAN,
                ..ok
            }
            .validate(),
            Err(BreakerConfigError::Jitter(_))
        ));
    }
}
