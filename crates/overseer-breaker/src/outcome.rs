//! What happened to a call that the breaker admitted.

use serde::{Deserialize, Serialize};

/// The result of an admitted call, as the breaker counts it.
///
/// Which errors count as failures is the caller's decision (a refusal by the model may be a
/// perfectly healthy answer; a timeout or a 5xx is not). The breaker only sees the verdict:
///
/// | outcome | closed: sliding window | closed: consecutive failures | half-open probe |
/// |---|---|---|---|
/// | [`Success`](Self::Success) | counted as a success (or a failure if slow) | reset to 0 (kept if slow) | succeeds (fails if slow) |
/// | [`Failure`](Self::Failure) | counted as a failure | incremented | fails: the breaker re-opens |
/// | [`Ignored`](Self::Ignored) | not counted | unchanged | slot released for another probe |
///
/// "Slow" means the latency passed to `record` reached
/// [`BreakerConfig::slow_call_threshold`](crate::BreakerConfig::slow_call_threshold), when one
/// is set.
///
/// ```
/// use overseer_breaker::Outcome;
///
/// let ok: Result<u32, &str> = Ok(3);
/// assert_eq!(Outcome::from_result(&ok), Outcome::Success);
///
/// // The caller decides: a cancelled call says nothing about the agent's health.
/// let cancelled: Result<u32, &str> = Err("cancelled");
/// let outcome = Outcome::from_result_with(&cancelled, |e| {
///     if *e == "cancelled" { Outcome::Ignored } else { Outcome::Failure }
/// });
/// assert_eq!(outcome, Outcome::Ignored);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The agent answered.
    Success,
    /// The agent failed in a way that says something about its health.
    Failure,
    /// Not counted at all: the caller cancelled, the kill switch fired, the input was invalid.
    Ignored,
}

impl Outcome {
    /// `Ok` is a success, every `Err` a failure.
    pub fn from_result<T, E>(result: &Result<T, E>) -> Self {
        match result {
            Ok(_) => Self::Success,
            Err(_) => Self::Failure,
        }
    }

    /// `Ok` is a success; an `Err` is whatever `classify` says it is.
    pub fn from_result_with<T, E>(
        result: &Result<T, E>,
        classify: impl FnOnce(&E) -> Self,
    ) -> Self {
        match result {
            Ok(_) => Self::Success,
            Err(e) => classify(e),
        }
    }
}
