//! What makes a breaker open, how long it stays open, and how it closes again.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::backoff::{Backoff, MAX_DURATION};
use crate::error::BreakerConfigError;

/// The largest sliding window accepted (65 536 outcomes, 16 KiB of bitsets per breaker).
pub const MAX_WINDOW_SIZE: u32 = 1 << 16;

/// How one breaker decides. The defaults are tuned for LLM agents: few calls per minute, each
/// taking seconds (see `docs/breakers.md` for the reasoning and how they compare with
/// resilience4j, Polly and failsafe).
///
/// | setting | default | rule |
/// |---|---|---|
/// | [`window_size`](Self::window_size) | 20 | the last N outcomes are kept |
/// | [`minimum_calls`](Self::minimum_calls) | 5 | the failure rate is judged only from this many outcomes on |
/// | [`failure_rate_threshold`](Self::failure_rate_threshold) | 0.5 | opens when failures / outcomes ≥ this |
/// | [`consecutive_failures`](Self::consecutive_failures) | `Some(3)` | opens after this many failures in a row, whatever the volume |
/// | [`slow_call_threshold`](Self::slow_call_threshold) | `None` | a success this slow counts as a failure |
/// | [`open_duration`](Self::open_duration) | 30 s × 2ⁿ, capped at 5 min, 20 % jitter | how long it stays open |
/// | [`half_open_probes`](Self::half_open_probes) | 1 | probes admitted after the open duration; all must succeed to close |
/// | [`probe_timeout`](Self::probe_timeout) | 5 min | after this, unreported probes are presumed lost and their slots reclaimed |
/// | [`seed`](Self::seed) | `None` | seeds the jitter; `None` draws a random seed |
///
/// Fields are public and the methods of the same names set them, builder style. Nothing is
/// checked until the config is used ([`CircuitBreaker::new`](crate::CircuitBreaker::new),
/// the registry's constructors) or [`validate`](Self::validate) is called.
///
/// ```
/// use std::time::Duration;
/// use overseer_breaker::{Backoff, BreakerConfig, BreakerConfigError};
///
/// let config = BreakerConfig::default()
///     .window_size(50)
///     .minimum_calls(10)
///     .failure_rate_threshold(0.4)
///     .consecutive_failures(None)
///     .slow_call_threshold(Some(Duration::from_secs(90)))
///     .open_duration(Backoff::exponential(Duration::from_secs(10), 3.0, Duration::from_secs(600)).jitter(0.1))
///     .half_open_probes(2)
///     .seed(Some(7));
/// assert_eq!(config.validate(), Ok(()));
///
/// let bad = BreakerConfig::default().window_size(10).minimum_calls(11);
/// assert_eq!(
///     bad.validate(),
///     Err(BreakerConfigError::MinimumCallsExceedWindow { minimum_calls: 11, window_size: 10 })
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct BreakerConfig {
    /// How many of the most recent outcomes the sliding window keeps (1 ..= [`MAX_WINDOW_SIZE`]).
    pub window_size: u32,
    /// How many outcomes the window must hold before the failure rate can open the breaker
    /// (1 ..= `window_size`).
    pub minimum_calls: u32,
    /// The failure rate, in `(0, 1]`, at or above which the breaker opens.
    pub failure_rate_threshold: f64,
    /// Open after this many failures in a row even below `minimum_calls` (`None`: rule off).
    pub consecutive_failures: Option<u32>,
    /// A call at least this slow counts as a failure, even if it succeeded (`None`: rule off).
    /// `slow_call_threshold_ms` in JSON.
    #[serde(
        rename = "slow_call_threshold_ms",
        with = "overseer_serde::millis::option",
        default
    )]
    pub slow_call_threshold: Option<Duration>,
    /// How long the breaker stays open, growing on each re-open.
    pub open_duration: Backoff,
    /// How many probe calls half-open admits; all of them must succeed for it to close.
    pub half_open_probes: u32,
    /// How long half-open waits for outstanding probes before presuming them lost.
    /// `probe_timeout_ms` in JSON.
    #[serde(rename = "probe_timeout_ms", with = "overseer_serde::millis")]
    pub probe_timeout: Duration,
    /// Seed for the jitter generator. Each breaker mixes in a hash of its key, so breakers
    /// sharing a config still draw different durations. `None` seeds from the OS.
    pub seed: Option<u64>,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            window_size: 20,
            minimum_calls: 5,
            failure_rate_threshold: 0.5,
            consecutive_failures: Some(3),
            slow_call_threshold: None,
            open_duration: Backoff::default(),
            half_open_probes: 1,
            probe_timeout: Duration::from_secs(5 * 60),
            seed: None,
        }
    }
}

impl BreakerConfig {
    /// Sets [`window_size`](Self::window_size).
    pub fn window_size(mut self, outcomes: u32) -> Self {
        self.window_size = outcomes;
        self
    }

    /// Sets [`minimum_calls`](Self::minimum_calls).
    pub fn minimum_calls(mut self, calls: u32) -> Self {
        self.minimum_calls = calls;
        self
    }

    /// Sets [`failure_rate_threshold`](Self::failure_rate_threshold).
    pub fn failure_rate_threshold(mut self, rate: f64) -> Self {
        self.failure_rate_threshold = rate;
        self
    }

    /// Sets [`consecutive_failures`](Self::consecutive_failures).
    pub fn consecutive_failures(mut self, failures: Option<u32>) -> Self {
        self.consecutive_failures = failures;
        self
    }

    /// Sets [`slow_call_threshold`](Self::slow_call_threshold).
    pub fn slow_call_threshold(mut self, latency: Option<Duration>) -> Self {
        self.slow_call_threshold = latency;
        self
    }

    /// Sets [`open_duration`](Self::open_duration).
    pub fn open_duration(mut self, backoff: Backoff) -> Self {
        self.open_duration = backoff;
        self
    }

    /// Sets [`half_open_probes`](Self::half_open_probes).
    pub fn half_open_probes(mut self, probes: u32) -> Self {
        self.half_open_probes = probes;
        self
    }

    /// Sets [`probe_timeout`](Self::probe_timeout).
    pub fn probe_timeout(mut self, timeout: Duration) -> Self {
        self.probe_timeout = timeout;
        self
    }

    /// Sets [`seed`](Self::seed).
    pub fn seed(mut self, seed: Option<u64>) -> Self {
        self.seed = seed;
        self
    }

    /// Checks every rule; the first broken one is returned.
    pub fn validate(&self) -> Result<(), BreakerConfigError> {
        if self.window_size == 0 {
            return Err(BreakerConfigError::ZeroWindow);
        }
        if self.window_size > MAX_WINDOW_SIZE {
            return Err(BreakerConfigError::WindowTooLarge {
                size: self.window_size,
                limit: MAX_WINDOW_SIZE,
            });
        }
        if self.minimum_calls == 0 {
            return Err(BreakerConfigError::ZeroMinimumCalls);
        }
        if self.minimum_calls > self.window_size {
            return Err(BreakerConfigError::MinimumCallsExceedWindow {
                minimum_calls: self.minimum_calls,
                window_size: self.window_size,
            });
        }
        let rate = self.failure_rate_threshold;
        if !(rate > 0.0 && rate <= 1.0) {
            return Err(BreakerConfigError::FailureRateThreshold(rate));
        }
        if self.consecutive_failures == Some(0) {
            return Err(BreakerConfigError::ZeroConsecutiveFailures);
        }
        if self.slow_call_threshold == Some(Duration::ZERO) {
            return Err(BreakerConfigError::ZeroSlowCallThreshold);
        }
        self.open_duration.validate()?;
        if self.half_open_probes == 0 {
            return Err(BreakerConfigError::ZeroHalfOpenProbes);
        }
        if self.probe_timeout.is_zero() {
            return Err(BreakerConfigError::ZeroProbeTimeout);
        }
        if self.probe_timeout > MAX_DURATION {
            return Err(BreakerConfigError::DurationTooLong {
                what: "probe_timeout",
                value: self.probe_timeout,
                limit: MAX_DURATION,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(BreakerConfig::default().validate(), Ok(()));
    }

    #[test]
    fn every_invalid_setting_is_refused_with_a_typed_error() {
        let d = BreakerConfig::default;
        let cases: Vec<(BreakerConfig, BreakerConfigError)> = vec![
            (
                d().window_size(0).minimum_calls(0),
                BreakerConfigError::ZeroWindow,
            ),
            (
                d().window_size(MAX_WINDOW_SIZE + 1),
                BreakerConfigError::WindowTooLarge {
                    size: MAX_WINDOW_SIZE + 1,
                    limit: MAX_WINDOW_SIZE,
                },
            ),
            (d().minimum_calls(0), BreakerConfigError::ZeroMinimumCalls),
            (
                d().window_size(4),
                BreakerConfigError::MinimumCallsExceedWindow {
                    minimum_calls: 5,
                    window_size: 4,
                },
            ),
            (
                d().failure_rate_threshold(0.0),
                BreakerConfigError::FailureRateThreshold(0.0),
            ),
            (
                d().failure_rate_threshold(1.5),
                BreakerConfigError::FailureRateThreshold(1.5),
            ),
            (
                d().failure_rate_threshold(-0.5),
                BreakerConfigError::FailureRateThreshold(-0.5),
            ),
            (
                d().consecutive_failures(Some(0)),
                BreakerConfigError::ZeroConsecutiveFailures,
            ),
            (
                d().slow_call_threshold(Some(Duration::ZERO)),
                BreakerConfigError::ZeroSlowCallThreshold,
            ),
            (
                d().open_duration(Backoff {
                    base: Duration::ZERO,
                    ..Backoff::default()
                }),
                BreakerConfigError::ZeroOpenDuration,
            ),
            (
                d().open_duration(Backoff {
                    multiplier: 0.9,
                    ..Backoff::default()
                }),
                BreakerConfigError::Multiplier(0.9),
            ),
            (
                d().open_duration(Backoff::default().jitter(1.0)),
                BreakerConfigError::Jitter(1.0),
            ),
            (
                d().half_open_probes(0),
                BreakerConfigError::ZeroHalfOpenProbes,
            ),
            (
                d().probe_timeout(Duration::ZERO),
                BreakerConfigError::ZeroProbeTimeout,
            ),
            (
                d().probe_timeout(MAX_DURATION * 2),
                BreakerConfigError::DurationTooLong {
                    what: "probe_timeout",
                    value: MAX_DURATION * 2,
                    limit: MAX_DURATION,
                },
            ),
        ];
        for (config, expected) in cases {
            assert_eq!(config.validate(), Err(expected.clone()), "{expected}");
        }
        assert!(matches!(
            d().failure_rate_threshold(f64::NAN).validate(),
            Err(BreakerConfigError::FailureRateThreshold(_))
        ));
    }

    #[test]
    fn boundary_values_are_accepted() {
        let edge = BreakerConfig::default()
            .window_size(1)
            .minimum_calls(1)
            .failure_rate_threshold(1.0)
            .consecutive_failures(Some(1))
            .open_duration(Backoff::fixed(Duration::from_nanos(1)).jitter(0.0));
        assert_eq!(edge.validate(), Ok(()));
        let big = BreakerConfig::default()
            .window_size(MAX_WINDOW_SIZE)
            .minimum_calls(MAX_WINDOW_SIZE);
        assert_eq!(big.validate(), Ok(()));
    }

    #[test]
    fn a_partial_json_config_fills_in_the_defaults() {
        let config: BreakerConfig =
            serde_json::from_str(r#"{"window_size": 40, "minimum_calls": 8}"#).unwrap();
        assert_eq!(
            config,
            BreakerConfig::default().window_size(40).minimum_calls(8)
        );
    }
}
