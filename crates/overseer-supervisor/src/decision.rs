//! The restart decision: what a supervisor does when one of its children exits.
//!
//! One pure function, [`decide_restart`], takes everything the decision depends on (the
//! child's restart type, its exit reason, the supervisor's strategy, its restart window and
//! the clock) and returns what happens as a [`RestartDecision`]. The supervisor calls it when a
//! child exits or reports a failure, and a child that may restart itself calls it too (see
//! [`FailureReporter::failed`](crate::FailureReporter::failed)): nothing else decides.
//!
//! It composes OTP's own steps, each also public: [`decide_on_exit`] (OTP's `do_restart/3`),
//! then [`count_restart`] (OTP's `restart/2`: [`RestartWindow`] counts the restart as
//! `add_restart/3` does, and the strategy scopes it, [`Strategy::affected`] giving the range).

use crate::{decide_on_exit, ExitDecision, ExitReason, Restart, RestartWindow, Strategy, Verdict};

/// What happens after a child exits, as [`decide_restart`] decides it:
///
/// | restart type | exit reason | strategy | the restart, counted | decision |
/// |---|---|---|---|---|
/// | [`Temporary`](Restart::Temporary) | any | any | not counted | [`DeleteSpec`](Self::DeleteSpec) |
/// | [`Transient`](Restart::Transient) | normal | `one_for_one`, `one_for_all`, `rest_for_one` | not counted | [`KeepSpec`](Self::KeepSpec) |
/// | [`Transient`](Restart::Transient) | normal | [`Dynamic`](Strategy::Dynamic) | not counted | [`DeleteSpec`](Self::DeleteSpec) |
/// | [`Permanent`](Restart::Permanent), or [`Transient`](Restart::Transient) after an abnormal exit | any | [`OneForOne`](Strategy::OneForOne) | within the intensity | [`Restart(Child)`](RestartScope::Child) |
/// | the same | any | [`Dynamic`](Strategy::Dynamic) | within the intensity | [`Restart(ChildAsNewest)`](RestartScope::ChildAsNewest) |
/// | the same | any | [`OneForAll`](Strategy::OneForAll) | within the intensity | [`Restart(All)`](RestartScope::All) |
/// | the same | any | [`RestForOne`](Strategy::RestForOne) | within the intensity | [`Restart(Rest)`](RestartScope::Rest) |
/// | the same | any | any | over the intensity | [`Escalate`](Self::Escalate) |
///
/// "Normal" is [`ExitReason::is_normal`]. The variants are OTP's outcomes and fixed by its
/// definition, so the enum is not `#[non_exhaustive]`: match on it exhaustively.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartDecision {
    /// Not restarted; its spec is kept, for
    /// [`restart_child`](crate::SupervisorRef::restart_child) or a later group restart.
    KeepSpec,
    /// Not restarted; its spec is deleted.
    DeleteSpec,
    /// Restarted, with these children (the restart was counted toward the intensity).
    Restart(RestartScope),
    /// The restart would exceed the intensity: it is not made, and the supervisor stops its
    /// children and exits with `shutdown` (its parent then decides by its restart type).
    Escalate,
}

/// Which children a restart restarts, by the supervisor's strategy (see [`Strategy`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartScope {
    /// The exited child alone (`one_for_one`).
    Child,
    /// The exited child alone, which becomes the newest child, last in start order (a
    /// [`Dynamic`](Strategy::Dynamic) supervisor: OTP's `simple_one_for_one` gives it a new pid).
    ChildAsNewest,
    /// Every child (`one_for_all`).
    All,
    /// The exited child and every child started after it (`rest_for_one`).
    Rest,
}

impl RestartScope {
    /// The scope of a restart under `strategy`.
    ///
    /// ```
    /// use overseer_supervisor::{RestartScope, Strategy};
    /// assert_eq!(RestartScope::of(Strategy::RestForOne), RestartScope::Rest);
    /// ```
    #[inline]
    pub fn of(strategy: Strategy) -> Self {
        match strategy {
            Strategy::OneForOne => Self::Child,
            Strategy::Dynamic => Self::ChildAsNewest,
            Strategy::OneForAll => Self::All,
            Strategy::RestForOne => Self::Rest,
        }
    }
}

/// Who takes a restart decision, which says what is recorded in the restart window.
///
/// | decider | a restart within the intensity | the restart over it | a group restart |
/// |---|---|---|---|
/// | [`Supervisor`](Self::Supervisor) | recorded | recorded ([`RestartWindow::record`], as OTP's `add_restart/3`) | recorded |
/// | [`Child`](Self::Child) | recorded if it is this child's alone ([`RestartWindow::record_if_allowed`]) | not recorded | not recorded |
///
/// A child takes only a decision it can carry out itself, `Restart(Child)`; any other answer
/// it leaves to its supervisor, which takes the same decision again and records it. So
/// whichever takes it, each restart is recorded once, and the window ends as the
/// supervisor's own decisions would leave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decider {
    /// The supervisor, which carries out whatever is decided.
    Supervisor,
    /// A child that may restart itself (see
    /// [`FailureReporter::failed`](crate::FailureReporter::failed)).
    Child,
}

/// The decision for a child of type `restart` that exited with `reason`, under `strategy`,
/// with the supervisor's restart `window` at second `now` (see [`RestartDecision`] for the
/// rules and [`Decider`] for what is recorded).
///
/// ```
/// use overseer_supervisor::{
///     decide_restart, Decider, ExitReason, Restart, RestartDecision, RestartScope, RestartWindow,
///     Strategy,
/// };
/// use std::time::Duration;
///
/// let mut window = RestartWindow::new(1, Duration::from_secs(5));
/// let crash = ExitReason::Panicked("boom".into());
/// let decide = |window: &mut RestartWindow, restart, reason: &ExitReason, now| {
///     decide_restart(restart, reason, Strategy::RestForOne, window, now, Decider::Supervisor)
/// };
/// assert_eq!(
///     decide(&mut window, Restart::Transient, &ExitReason::Normal, 0),
///     RestartDecision::KeepSpec
/// );
/// assert_eq!(
///     decide(&mut window, Restart::Permanent, &crash, 0),
///     RestartDecision::Restart(RestartScope::Rest)
/// );
/// // The second restart within 5 seconds exceeds an intensity of 1.
/// assert_eq!(decide(&mut window, Restart::Transient, &crash, 5), RestartDecision::Escalate);
/// ```
#[inline]
pub fn decide_restart(
    restart: Restart,
    reason: &ExitReason,
    strategy: Strategy,
    window: &mut RestartWindow,
    now: u64,
    decider: Decider,
) -> RestartDecision {
    match decide_on_exit(restart, reason) {
        ExitDecision::Restart => count_restart(strategy, window, now, decider),
        ExitDecision::KeepSpec if strategy != Strategy::Dynamic => RestartDecision::KeepSpec,
        // A dynamic supervisor keeps no spec of a child that is not running.
        ExitDecision::KeepSpec | ExitDecision::DeleteSpec => RestartDecision::DeleteSpec,
    }
}

/// OTP's `restart/2`: a restart already decided on (after an exit, or the retry of a restart
/// that failed to start) is counted in `window` at second `now` and scoped by `strategy`, or
/// refused with [`Escalate`](RestartDecision::Escalate). Returns only
/// [`Restart`](RestartDecision::Restart) or [`Escalate`](RestartDecision::Escalate).
///
/// ```
/// use overseer_supervisor::{count_restart, Decider, RestartDecision, RestartWindow, Strategy};
/// use std::time::Duration;
///
/// let mut window = RestartWindow::new(0, Duration::from_secs(5));
/// // A child leaves the refused restart to its supervisor, which records it.
/// assert_eq!(count_restart(Strategy::OneForOne, &mut window, 0, Decider::Child), RestartDecision::Escalate);
/// assert!(window.is_empty());
/// assert_eq!(count_restart(Strategy::OneForOne, &mut window, 0, Decider::Supervisor), RestartDecision::Escalate);
/// assert_eq!(window.len(), 1);
/// ```
#[inline]
pub fn count_restart(
    strategy: Strategy,
    window: &mut RestartWindow,
    now: u64,
    decider: Decider,
) -> RestartDecision {
    let scope = RestartScope::of(strategy);
    let verdict = match decider {
        Decider::Supervisor => window.record(now),
        Decider::Child if scope == RestartScope::Child => window.record_if_allowed(now),
        // Not one the child can carry out: its supervisor decides again, and records it.
        Decider::Child => return RestartDecision::Restart(scope),
    };
    match verdict {
        Verdict::Allowed => RestartDecision::Restart(scope),
        Verdict::Exceeded => RestartDecision::Escalate,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use proptest::arbitrary::any;
    use proptest::strategy::{Just, Strategy as Generator};
    use proptest::{prop_assert_eq, prop_oneof, proptest};

    use super::*;

    const STRATEGIES: [Strategy; 4] = [
        Strategy::OneForOne,
        Strategy::OneForAll,
        Strategy::RestForOne,
        Strategy::Dynamic,
    ];

    fn reasons() -> Vec<ExitReason> {
        vec![
            ExitReason::Normal,
            ExitReason::Shutdown,
            ExitReason::ShutdownWith("done".into()),
            ExitReason::Killed,
            ExitReason::Panicked("p".into()),
            ExitReason::Failed("e".into()),
            ExitReason::TimedOut(Duration::from_secs(1)),
            ExitReason::Abnormal("{error,boom}".into()),
        ]
    }

    fn roomy_window() -> RestartWindow {
        RestartWindow::new(100, Duration::from_secs(5))
    }

    #[test]
    fn a_temporary_child_is_deleted_and_nothing_is_counted() {
        for strategy in STRATEGIES {
            for reason in reasons() {
                let mut window = RestartWindow::new(0, Duration::from_secs(5));
                let decision = decide_restart(
                    Restart::Temporary,
                    &reason,
                    strategy,
                    &mut window,
                    0,
                    Decider::Supervisor,
                );
                assert_eq!(
                    decision,
                    RestartDecision::DeleteSpec,
                    "{strategy:?} {reason}"
                );
                assert!(window.is_empty());
            }
        }
    }

    #[test]
    fn a_transient_child_after_a_normal_exit_keeps_its_spec_except_under_a_dynamic_supervisor() {
        for strategy in STRATEGIES {
            for reason in reasons().into_iter().filter(ExitReason::is_normal) {
                let mut window = RestartWindow::new(0, Duration::from_secs(5));
                let expected = if strategy == Strategy::Dynamic {
                    RestartDecision::DeleteSpec
                } else {
                    RestartDecision::KeepSpec
                };
                let decision = decide_restart(
                    Restart::Transient,
                    &reason,
                    strategy,
                    &mut window,
                    0,
                    Decider::Supervisor,
                );
                assert_eq!(decision, expected, "{strategy:?} {reason}");
                assert!(window.is_empty());
            }
        }
    }

    #[test]
    fn a_restart_within_the_intensity_is_scoped_by_the_strategy() {
        let scopes = [
            (Strategy::OneForOne, RestartScope::Child),
            (Strategy::OneForAll, RestartScope::All),
            (Strategy::RestForOne, RestartScope::Rest),
            (Strategy::Dynamic, RestartScope::ChildAsNewest),
        ];
        for (strategy, scope) in scopes {
            for reason in reasons() {
                for restart in [Restart::Permanent, Restart::Transient] {
                    if restart == Restart::Transient && reason.is_normal() {
                        continue;
                    }
                    let mut window = roomy_window();
                    let decision = decide_restart(
                        restart,
                        &reason,
                        strategy,
                        &mut window,
                        0,
                        Decider::Supervisor,
                    );
                    assert_eq!(decision, RestartDecision::Restart(scope));
                    assert_eq!(window.len(), 1, "counted once");
                }
            }
        }
    }

    #[test]
    fn the_restart_over_the_intensity_escalates_and_is_recorded_by_the_supervisor() {
        for strategy in STRATEGIES {
            let mut window = RestartWindow::new(1, Duration::from_secs(5));
            let crash = ExitReason::Killed;
            let decide = |window: &mut RestartWindow| {
                decide_restart(
                    Restart::Permanent,
                    &crash,
                    strategy,
                    window,
                    3,
                    Decider::Supervisor,
                )
            };
            assert!(matches!(decide(&mut window), RestartDecision::Restart(_)));
            assert_eq!(decide(&mut window), RestartDecision::Escalate);
            assert_eq!(window.len(), 2);
        }
    }

    #[test]
    fn a_child_records_only_its_own_restart_within_the_intensity() {
        for strategy in STRATEGIES {
            let mut window = RestartWindow::new(1, Duration::from_secs(5));
            let first = count_restart(strategy, &mut window, 0, Decider::Child);
            let second = count_restart(strategy, &mut window, 0, Decider::Child);
            if strategy == Strategy::OneForOne {
                assert_eq!(first, RestartDecision::Restart(RestartScope::Child));
                assert_eq!(second, RestartDecision::Escalate);
                assert_eq!(window.len(), 1, "the refused restart is not recorded");
            } else {
                assert_eq!(first, RestartDecision::Restart(RestartScope::of(strategy)));
                assert_eq!(first, second);
                assert!(
                    window.is_empty(),
                    "a group restart is left to the supervisor"
                );
            }
        }
    }

    /// One exit of a random history: the child's restart type, whether the exit is normal,
    /// and how many seconds after the previous one it happens.
    fn exits() -> impl Generator<Value = Vec<(Restart, bool, u64)>> {
        let restart = prop_oneof![
            Just(Restart::Permanent),
            Just(Restart::Transient),
            Just(Restart::Temporary)
        ];
        proptest::collection::vec((restart, any::<bool>(), 0u64..3), 0..40)
    }

    fn strategy() -> impl Generator<Value = Strategy> {
        proptest::sample::select(STRATEGIES.to_vec())
    }

    proptest! {
        /// The fast path's subtlety: a child that decides first (and leaves to its supervisor
        /// whatever it does not carry out) ends with the same decisions and the same window as
        /// a supervisor deciding alone.
        #[test]
        fn a_child_deciding_first_changes_no_decision_and_no_count(
            strategy in strategy(),
            intensity in 0u32..4,
            period in 1u64..5,
            history in exits(),
        ) {
            let mut alone = RestartWindow::new(intensity, Duration::from_secs(period));
            let mut shared = alone.clone();
            let mut now = 0;
            for (restart, normal, after) in history {
                now += after;
                let reason = if normal { ExitReason::Normal } else { ExitReason::Killed };
                let expected =
                    decide_restart(restart, &reason, strategy, &mut alone, now, Decider::Supervisor);
                let by_child =
                    decide_restart(restart, &reason, strategy, &mut shared, now, Decider::Child);
                let decision = if by_child == RestartDecision::Restart(RestartScope::Child) {
                    by_child
                } else {
                    decide_restart(restart, &reason, strategy, &mut shared, now, Decider::Supervisor)
                };
                prop_assert_eq!(decision, expected);
                prop_assert_eq!(shared.len(), alone.len());
            }
        }
    }
}
