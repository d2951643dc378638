//! State changes, returned as data and emitted as tracing events.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::key::BreakerKey;
use crate::state::State;

/// What caused a [`Transition`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Trigger {
    /// Closed → open: the window held at least `minimum_calls` outcomes and the failure rate
    /// reached `failure_rate_threshold`.
    FailureRate,
    /// Closed → open: `consecutive_failures` failures in a row.
    ConsecutiveFailures,
    /// Open → half-open: the open duration passed and a call asked to be admitted.
    OpenElapsed,
    /// Half-open → closed: every probe succeeded.
    ProbesSucceeded,
    /// Half-open → open: a probe failed (or was slow).
    ProbeFailed,
    /// Any → forced-open: an operator called `force_open`.
    ForcedOpen,
    /// Any → disabled: an operator called `disable`.
    Disabled,
    /// Any → closed: an operator called `reset`.
    Reset,
}

impl Trigger {
    /// The trigger's name as in JSON and tracing fields: `failure_rate`,
    /// `consecutive_failures`, `open_elapsed`, `probes_succeeded`, `probe_failed`,
    /// `forced_open`, `disabled`, `reset`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FailureRate => "failure_rate",
            Self::ConsecutiveFailures => "consecutive_failures",
            Self::OpenElapsed => "open_elapsed",
            Self::ProbesSucceeded => "probes_succeeded",
            Self::ProbeFailed => "probe_failed",
            Self::ForcedOpen => "forced_open",
            Self::Disabled => "disabled",
            Self::Reset => "reset",
        }
    }
}

/// In words, for people: `failures in a row`, `open duration elapsed`, ...
///
/// ```
/// use overseer_breaker::Trigger;
/// assert_eq!(Trigger::ConsecutiveFailures.to_string(), "failures in a row");
/// assert_eq!(Trigger::ConsecutiveFailures.as_str(), "consecutive_failures");
/// ```
impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::FailureRate => "failure rate",
            Self::ConsecutiveFailures => "failures in a row",
            Self::OpenElapsed => "open duration elapsed",
            Self::ProbesSucceeded => "probes succeeded",
            Self::ProbeFailed => "probe failed",
            Self::ForcedOpen => "forced open",
            Self::Disabled => "disabled",
            Self::Reset => "reset",
        })
    }
}

/// One state change of one breaker.
///
/// Every method that can change a breaker's state returns `Option<Transition>`, and every
/// transition is also emitted as a `tracing` event (`warn` when calls start being rejected,
/// `info` otherwise) with the fields `agent`, `task_type`, `from`, `to`, `trigger`,
/// `failure_rate`, `consecutive_failures` and `calls_in_window`.
///
/// It serializes for an event stream; [`at`](Self::at) is a monotonic instant and is left
/// out (stamp wall-clock time where the event is published).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Transition {
    /// Which breaker.
    pub key: BreakerKey,
    /// The state it left.
    pub from: State,
    /// The state it entered.
    pub to: State,
    /// Why.
    pub trigger: Trigger,
    /// The failure rate that decided it: the window's for closed-state triggers and operator
    /// actions, the probes' (failed / decided) for half-open ones.
    pub failure_rate: f64,
    /// Outcomes in the window when it happened.
    pub calls_in_window: u32,
    /// Failures in a row in the closed state when it happened.
    pub consecutive_failures: u32,
    /// For transitions to [`State::Open`]: how long it will stay open (jitter applied);
    /// `open_for_ms` in JSON.
    #[serde(
        rename = "open_for_ms",
        with = "overseer_serde::millis::option",
        default
    )]
    pub open_for: Option<Duration>,
    /// When it happened.
    #[serde(skip)]
    pub at: Instant,
}

impl Transition {
    /// Emits the transition as a structured `tracing` event: one field list for every state,
    /// at `warn` when the breaker leaves normal operation (open, forced open, disabled) and at
    /// `info` when it goes back towards it (half-open, closed). `open_for_ms` is there only for transitions to open.
    pub(crate) fn emit(&self) {
        // A tracing call site has one level, fixed when it is compiled: one call site a level,
        // each with the same fields.
        macro_rules! transition_event {
            ($level:expr, $message:expr) => {
                tracing::event!(
                    $level,
                    agent = &*self.key.agent,
                    task_type = &*self.key.task_type,
                    from = self.from.as_str(),
                    to = self.to.as_str(),
                    trigger = self.trigger.as_str(),
                    failure_rate = self.failure_rate,
                    consecutive_failures = self.consecutive_failures,
                    calls_in_window = self.calls_in_window,
                    open_for_ms = self.open_for_ms(),
                    "{}",
                    $message
                )
            };
        }
        let (warns, message) = match self.to {
            State::Open => (true, "breaker opened"),
            State::ForcedOpen => (true, "breaker forced open"),
            State::Disabled => (true, "breaker disabled"),
            State::HalfOpen => (false, "breaker half-open"),
            State::Closed => (false, "breaker closed"),
        };
        if warns {
            transition_event!(tracing::Level::WARN, message);
        } else {
            transition_event!(tracing::Level::INFO, message);
        }
    }

    /// The `open_for_ms` field: for a transition to open, how long it stays open (0 if not
    /// known); for any other, nothing (the field is left out).
    fn open_for_ms(&self) -> Option<u64> {
        (self.to == State::Open).then(|| {
            self.open_for
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        })
    }
}
