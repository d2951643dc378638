//! Why a child exited, told apart precisely enough to apply OTP's restart rules.

use std::fmt;
use std::time::Duration;

use ractor::{ActorProcessingErr, SupervisionEvent};
use serde::{Deserialize, Serialize};

use crate::{ChildId, StartError};

/// Why a supervised actor exited.
///
/// OTP splits exit reasons into *normal* ones, after which a transient child is not restarted,
/// and *abnormal* ones:
///
/// | reason | normal? | produced by |
/// |---|---|---|
/// | [`Normal`](Self::Normal) | yes | the actor stopped itself with no reason, `"normal"`, or drained its mailbox |
/// | [`Shutdown`](Self::Shutdown) | yes | a polite stop with reason `"shutdown"`, e.g. from its supervisor |
/// | [`ShutdownWith`](Self::ShutdownWith) | yes | a stop reason `"shutdown:<detail>"` (OTP's `{shutdown, Term}`) |
/// | [`FailedToStartChild`](Self::FailedToStartChild) | yes | a supervisor whose own child failed to start while it was starting |
/// | [`Killed`](Self::Killed) | no | a kill (brutal kill, or a shutdown timeout that ran out) |
/// | [`Panicked`](Self::Panicked) | no | a panic in a handler of an actor spawned through [`StartContext::spawn`](crate::StartContext::spawn) or wrapped in [`Supervised`](crate::Supervised) |
/// | [`Failed`](Self::Failed) | no | a handler returned an error (for actors not wrapped in [`Supervised`](crate::Supervised), panics land here too: ractor reports both alike) |
/// | [`TimedOut`](Self::TimedOut) | no | a handler ran past its deadline and was treated as hung |
/// | [`Stalled`](Self::Stalled) | no | a handler gave no heartbeat within its heartbeat timeout and was treated as hung |
/// | [`Unhealthy`](Self::Unhealthy) | no | an agent's health checks failed as many times in a row as it allows |
/// | [`Abnormal`](Self::Abnormal) | no | any other stop reason string |
///
/// An actor chooses its exit reason by stopping itself with
/// [`ExitReason::to_stop_reason`] or by returning a [`ChildExit`] error from a handler.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ExitReason {
    /// A normal exit.
    Normal,
    /// An orderly shutdown.
    Shutdown,
    /// An orderly shutdown with a detail (OTP's `{shutdown, Term}`).
    ShutdownWith(String),
    /// A supervisor stopped because one of its children failed to start while it started
    /// (OTP's `{shutdown, {failed_to_start_child, Id, Reason}}`).
    FailedToStartChild {
        /// The child that failed to start.
        child: ChildId,
        /// Why it failed.
        cause: Box<StartError>,
    },
    /// The actor was killed.
    Killed,
    /// A handler panicked with this message.
    Panicked(String),
    /// A handler returned this error.
    Failed(String),
    /// A handler ran longer than its deadline allowed and was stopped as hung (in JSON, the
    /// deadline in milliseconds: `{"kind":"timed_out","detail":10000}`).
    #[serde(with = "overseer_serde::millis")]
    TimedOut(Duration),
    /// A handler went silent: no heartbeat within its heartbeat timeout, and it was stopped as
    /// hung before its deadline (in JSON, the timeout in milliseconds:
    /// `{"kind":"stalled","detail":5000}`).
    #[serde(with = "overseer_serde::millis")]
    Stalled(Duration),
    /// The agent's health checks failed as many times in a row as it allows, and it was
    /// stopped to be restarted; the detail is the last failure.
    Unhealthy(String),
    /// Any other reason.
    Abnormal(String),
}

const SHUTDOWN_PREFIX: &str = "shutdown:";

impl ExitReason {
    /// Whether OTP treats this reason as a normal exit (`normal`, `shutdown`, `{shutdown, _}`):
    /// a transient child is not restarted after one.
    pub fn is_normal(&self) -> bool {
        matches!(
            self,
            Self::Normal | Self::Shutdown | Self::ShutdownWith(_) | Self::FailedToStartChild { .. }
        )
    }

    /// Reads a ractor stop reason: `None`, `"normal"` and `"Drained"` are [`Normal`](Self::Normal),
    /// `"shutdown"` is [`Shutdown`](Self::Shutdown), `"shutdown:<detail>"` is
    /// [`ShutdownWith`](Self::ShutdownWith), `"killed"` is [`Killed`](Self::Killed), anything else
    /// is [`Abnormal`](Self::Abnormal).
    ///
    /// ```
    /// use overseer_supervisor::ExitReason;
    /// assert_eq!(ExitReason::from_stop_reason(Some("shutdown:done")), ExitReason::ShutdownWith("done".into()));
    /// assert!(!ExitReason::from_stop_reason(Some("boom")).is_normal());
    /// ```
    pub fn from_stop_reason(reason: Option<&str>) -> Self {
        match reason {
            None | Some("normal") | Some("Drained") => Self::Normal,
            Some("shutdown") => Self::Shutdown,
            Some("killed") => Self::Killed,
            Some(other) => match other.strip_prefix(SHUTDOWN_PREFIX) {
                Some(detail) => Self::ShutdownWith(detail.to_string()),
                None => Self::Abnormal(other.to_string()),
            },
        }
    }

    /// The ractor stop reason that [`from_stop_reason`](Self::from_stop_reason) reads back as
    /// this reason, for an actor that stops itself with `myself.stop(reason.to_stop_reason())`.
    pub fn to_stop_reason(&self) -> Option<String> {
        match self {
            Self::Normal => None,
            Self::Shutdown => Some("shutdown".to_string()),
            Self::ShutdownWith(detail) => Some(format!("{SHUTDOWN_PREFIX}{detail}")),
            Self::Killed => Some("killed".to_string()),
            other => Some(other.to_string()),
        }
    }

    /// Reads the error an actor failed with: a [`ChildExit`] keeps its reason, anything else is
    /// [`Failed`](Self::Failed) with the error's text.
    pub fn from_failure(error: &ActorProcessingErr) -> Self {
        match error.downcast_ref::<ChildExit>() {
            Some(exit) => exit.reason.clone(),
            None => Self::Failed(error.to_string()),
        }
    }

    /// The exit told by a ractor supervision event, if the event is an exit.
    pub(crate) fn from_event(event: &SupervisionEvent) -> Option<(ractor::ActorId, Self)> {
        match event {
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                Some((cell.get_id(), Self::from_stop_reason(reason.as_deref())))
            }
            SupervisionEvent::ActorFailed(cell, error) => {
                Some((cell.get_id(), Self::from_failure(error)))
            }
            _ => None,
        }
    }
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Normal => f.write_str("normal"),
            Self::Shutdown => f.write_str("shutdown"),
            Self::ShutdownWith(detail) => write!(f, "shutdown ({detail})"),
            Self::FailedToStartChild { child, cause } => {
                write!(f, "shutdown (child '{child}' failed to start: {cause})")
            }
            Self::Killed => f.write_str("killed"),
            Self::Panicked(message) => write!(f, "panicked: {message}"),
            Self::Failed(error) => write!(f, "failed: {error}"),
            Self::TimedOut(after) => write!(f, "timed out after {after:?}"),
            Self::Stalled(timeout) => write!(f, "stalled: no heartbeat within {timeout:?}"),
            Self::Unhealthy(failure) => write!(f, "unhealthy: {failure}"),
            Self::Abnormal(reason) => f.write_str(reason),
        }
    }
}

/// An error that carries an exact [`ExitReason`] out of a ractor handler.
///
/// Return it (boxed, as ractor's `ActorProcessingErr`) from a handler and the supervisor sees
/// that reason instead of a generic [`ExitReason::Failed`].
///
/// ```
/// use overseer_supervisor::{ChildExit, ExitReason};
/// let error: ractor::ActorProcessingErr = ChildExit::new(ExitReason::Abnormal("bad input".into())).into();
/// assert_eq!(ExitReason::from_failure(&error), ExitReason::Abnormal("bad input".into()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("child exited: {reason}")]
#[non_exhaustive]
pub struct ChildExit {
    /// The reason the supervisor will see.
    pub reason: ExitReason,
}

impl ChildExit {
    /// Wraps a reason.
    pub fn new(reason: ExitReason) -> Self {
        Self { reason }
    }
}

/// The text of a panic payload, as [`std::panic::catch_unwind`] or
/// [`FutureExt::catch_unwind`](futures::FutureExt::catch_unwind) returns it: the message of a
/// `panic!` with a string or a formatted message, or a fixed text for any other payload. It
/// takes the payload by value, so the message is moved out rather than copied.
///
/// ```
/// use overseer_supervisor::panic_message;
/// # std::panic::set_hook(Box::new(|_| {}));
///
/// let caught = std::panic::catch_unwind(|| panic!("out of {}", "tokens")).unwrap_err();
/// assert_eq!(panic_message(caught), "out of tokens");
/// let caught = std::panic::catch_unwind(|| std::panic::panic_any(7_u8)).unwrap_err();
/// assert_eq!(panic_message(caught), "panic with a non-string payload");
/// ```
pub fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(text) => *text,
        Err(payload) => match payload.downcast::<&'static str>() {
            Ok(text) => (*text).to_string(),
            Err(_) => "panic with a non-string payload".to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_shutdown_and_shutdown_with_detail_are_normal_exits() {
        for reason in [
            None,
            Some("normal"),
            Some("shutdown"),
            Some("shutdown:done"),
        ] {
            assert!(
                ExitReason::from_stop_reason(reason).is_normal(),
                "{reason:?}"
            );
        }
    }

    #[test]
    fn kills_panics_errors_and_other_reasons_are_abnormal() {
        for reason in [
            ExitReason::Killed,
            ExitReason::Panicked("x".into()),
            ExitReason::Failed("x".into()),
            ExitReason::TimedOut(Duration::from_secs(1)),
            ExitReason::Stalled(Duration::from_secs(1)),
            ExitReason::Unhealthy("model unreachable".into()),
            ExitReason::Abnormal("{error,boom}".into()),
        ] {
            assert!(!reason.is_normal(), "{reason:?}");
        }
    }

    #[test]
    fn stop_reason_round_trips_for_the_reasons_an_actor_can_choose() {
        for reason in [
            ExitReason::Normal,
            ExitReason::Shutdown,
            ExitReason::ShutdownWith("done".into()),
            ExitReason::Killed,
            ExitReason::Abnormal("{error,boom}".into()),
        ] {
            let text = reason.to_stop_reason();
            assert_eq!(ExitReason::from_stop_reason(text.as_deref()), reason);
        }
    }

    #[test]
    fn a_child_exit_error_keeps_its_reason_and_other_errors_become_failed() {
        let typed: ActorProcessingErr = ChildExit::new(ExitReason::Panicked("p".into())).into();
        assert_eq!(
            ExitReason::from_failure(&typed),
            ExitReason::Panicked("p".into())
        );
        let plain: ActorProcessingErr = "plain".into();
        assert_eq!(
            ExitReason::from_failure(&plain),
            ExitReason::Failed("plain".into())
        );
    }
}
