//! A point-in-time view of one breaker, for dashboards and operators.

use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use crate::key::BreakerKey;
use crate::state::State;

/// What one breaker looks like at one instant.
///
/// Serializes for a status endpoint; [`open_until`](Self::open_until) is a monotonic instant
/// and is left out, [`retry_after`](Self::retry_after) carries the same information.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct BreakerSnapshot {
    /// Which breaker.
    pub key: BreakerKey,
    /// Its state.
    pub state: State,
    /// Failures over outcomes in the window, in `[0, 1]` (0 when empty).
    pub failure_rate: f64,
    /// Outcomes in the window (at most `window_size`).
    pub calls_in_window: u32,
    /// Failures among them (slow successes included when slow calls are detected).
    pub failures_in_window: u32,
    /// Slow calls among them.
    pub slow_calls_in_window: u32,
    /// Failures in a row in the closed state.
    pub consecutive_failures: u32,
    /// Openings since the breaker last closed (the backoff exponent is this minus one).
    pub consecutive_opens: u32,
    /// While open: when the first probe will be admitted.
    #[serde(skip)]
    pub open_until: Option<Instant>,
    /// What a call rejected now would be told (`None` when calls are admitted, or forced open);
    /// `retry_after_ms` in JSON.
    #[serde(
        rename = "retry_after_ms",
        with = "overseer_serde::millis::option",
        default
    )]
    pub retry_after: Option<Duration>,
    /// While half-open: probes admitted and not yet reported.
    pub probes_in_flight: u32,
    /// While half-open: probes that succeeded so far.
    pub probes_succeeded: u32,
}
