//! Restart types and the decision taken when a child exits.

use serde::{Deserialize, Serialize};

use crate::ExitReason;

/// When a child exits, whether it is restarted:
///
/// | restart type | normal exit (`normal`, `shutdown`, `shutdown:…`) | abnormal exit (error, panic, kill, timeout) |
/// |---|---|---|
/// | [`Permanent`](Self::Permanent) | restarted | restarted |
/// | [`Transient`](Self::Transient) | not restarted, spec kept | restarted |
/// | [`Temporary`](Self::Temporary) | not restarted, spec deleted | not restarted, spec deleted |
///
/// Every restart counts toward the supervisor's restart intensity; a child that is not
/// restarted counts nothing. A kept spec can be started again with
/// [`SupervisorRef::restart_child`](crate::SupervisorRef::restart_child), and a group restart
/// (`one_for_all`, `rest_for_one`) starts it again too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Restart {
    /// Always restarted (the default, as in OTP).
    #[default]
    Permanent,
    /// Restarted only after an abnormal exit.
    Transient,
    /// Never restarted.
    Temporary,
}

/// What a supervisor does with a child that exited by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitDecision {
    /// Restart it under the supervisor's strategy (this counts toward intensity).
    Restart,
    /// Leave it stopped but keep its spec.
    KeepSpec,
    /// Leave it stopped and delete its spec.
    DeleteSpec,
}

/// OTP's `do_restart/3`: the decision for a child of type `restart` that exited with `reason`.
///
/// ```
/// use overseer_supervisor::{decide_on_exit, ExitDecision, ExitReason, Restart};
/// assert_eq!(decide_on_exit(Restart::Permanent, &ExitReason::Normal), ExitDecision::Restart);
/// assert_eq!(decide_on_exit(Restart::Transient, &ExitReason::Shutdown), ExitDecision::KeepSpec);
/// assert_eq!(decide_on_exit(Restart::Transient, &ExitReason::Killed), ExitDecision::Restart);
/// assert_eq!(decide_on_exit(Restart::Temporary, &ExitReason::Killed), ExitDecision::DeleteSpec);
/// ```
pub fn decide_on_exit(restart: Restart, reason: &ExitReason) -> ExitDecision {
    match restart {
        Restart::Permanent => ExitDecision::Restart,
        Restart::Transient if reason.is_normal() => ExitDecision::KeepSpec,
        Restart::Transient => ExitDecision::Restart,
        Restart::Temporary => ExitDecision::DeleteSpec,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reasons() -> Vec<ExitReason> {
        vec![
            ExitReason::Normal,
            ExitReason::Shutdown,
            ExitReason::ShutdownWith("done".into()),
            ExitReason::Killed,
            ExitReason::Panicked("p".into()),
            ExitReason::Failed("e".into()),
            ExitReason::Abnormal("{error,boom}".into()),
        ]
    }

    #[test]
    fn permanent_children_are_restarted_whatever_the_reason() {
        for reason in reasons() {
            assert_eq!(
                decide_on_exit(Restart::Permanent, &reason),
                ExitDecision::Restart
            );
        }
    }

    #[test]
    fn transient_children_are_restarted_only_after_abnormal_exits() {
        for reason in reasons() {
            let expected = if reason.is_normal() {
                ExitDecision::KeepSpec
            } else {
                ExitDecision::Restart
            };
            assert_eq!(decide_on_exit(Restart::Transient, &reason), expected);
        }
    }

    #[test]
    fn temporary_children_are_never_restarted_and_lose_their_spec() {
        for reason in reasons() {
            assert_eq!(
                decide_on_exit(Restart::Temporary, &reason),
                ExitDecision::DeleteSpec
            );
        }
    }
}
