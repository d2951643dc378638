//! Why a configuration was refused.

use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;

/// A [`BreakerConfig`](crate::BreakerConfig) or [`Backoff`](crate::Backoff) that cannot work.
///
/// Returned by [`BreakerConfig::validate`](crate::BreakerConfig::validate),
/// [`CircuitBreaker::new`](crate::CircuitBreaker::new) and the registry's constructors; nothing
/// in this crate panics on a bad configuration.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum BreakerConfigError {
    /// `window_size` was 0: there would be nowhere to count outcomes.
    #[error("window_size must be at least 1")]
    ZeroWindow,
    /// `window_size` was larger than [`MAX_WINDOW_SIZE`](crate::MAX_WINDOW_SIZE).
    #[error("window_size {size} exceeds the limit of {limit}")]
    WindowTooLarge {
        /// The size asked for.
        size: u32,
        /// The largest size accepted.
        limit: u32,
    },
    /// `minimum_calls` was 0.
    #[error("minimum_calls must be at least 1")]
    ZeroMinimumCalls,
    /// `minimum_calls` was larger than the window, so the failure-rate rule could never fire.
    #[error(
        "minimum_calls ({minimum_calls}) exceeds window_size ({window_size}): the failure-rate rule could never fire"
    )]
    MinimumCallsExceedWindow {
        /// The minimum asked for.
        minimum_calls: u32,
        /// The window it must fit in.
        window_size: u32,
    },
    /// `failure_rate_threshold` was not in `(0, 1]` (or was NaN).
    #[error("failure_rate_threshold must be in (0, 1], got {0}")]
    FailureRateThreshold(f64),
    /// `consecutive_failures` was `Some(0)`; use `None` to switch the rule off.
    #[error("consecutive_failures must be at least 1 (use None to switch the rule off)")]
    ZeroConsecutiveFailures,
    /// `slow_call_threshold` was `Some(0)`, which would count every call as slow.
    #[error("slow_call_threshold must be above zero (use None to switch slow-call detection off)")]
    ZeroSlowCallThreshold,
    /// The backoff's base open duration was zero.
    #[error("the base open duration must be above zero")]
    ZeroOpenDuration,
    /// The backoff's cap was below its base.
    #[error("the maximum open duration ({max:?}) is below the base open duration ({base:?})")]
    MaxBelowBase {
        /// The base open duration.
        base: Duration,
        /// The cap.
        max: Duration,
    },
    /// A duration was longer than [`MAX_DURATION`](crate::MAX_DURATION).
    #[error("{what} ({value:?}) exceeds the limit of {limit:?}")]
    DurationTooLong {
        /// Which setting.
        what: &'static str,
        /// The value asked for.
        value: Duration,
        /// The longest accepted.
        limit: Duration,
    },
    /// The backoff multiplier was below 1 (the open duration would shrink) or not finite.
    #[error("the backoff multiplier must be a finite number of at least 1, got {0}")]
    Multiplier(f64),
    /// The jitter fraction was not in `[0, 1)` (or was NaN).
    #[error("jitter must be in [0, 1), got {0}")]
    Jitter(f64),
    /// `half_open_probes` was 0: the breaker could never close again by itself.
    #[error("half_open_probes must be at least 1")]
    ZeroHalfOpenProbes,
    /// `probe_timeout` was zero.
    #[error("probe_timeout must be above zero")]
    ZeroProbeTimeout,
    /// A per-agent override in a registry was invalid.
    #[error("breaker config for agent `{agent}`: {source}")]
    ForAgent {
        /// The agent whose override was refused.
        agent: Arc<str>,
        /// What was wrong with it.
        source: Box<BreakerConfigError>,
    },
}
