//! The escalation ladder: what to try next when retrying the same thing has not worked.
//!
//! "Don't just retry: tell the agent what went wrong, then try a different agent, then
//! decompose, then a stronger model." A [`Ladder`] is that list, in the order the user
//! composes it; each [`Rung`] is data (a kind, a name for events, the classes of failure that
//! may climb to it, and optionally its own [`RetryPolicy`] for its attempts). The actions
//! behind the rungs (re-asking with feedback, routing to a sibling, splitting and merging,
//! upgrading the model) are the agent layer's; this module only says which rung is next.
//!
//! [`Ladder::next`] is a pure function of the [`LadderState`] (which rungs were climbed, and
//! whether one succeeded) and the [`Conditions`] of the failure that just happened:
//!
//! 1. after a success, stop ([`StopReason::Succeeded`]): the ladder stops at the first success;
//! 2. the kill switch tripped: stop ([`StopReason::KillSwitch`]);
//! 3. a failure that ends every escalation stops it: [`ReplayUnsafe`](ErrorClass::ReplayUnsafe)
//!    (the effect may have happened: no rung may redo it), [`Cancelled`](ErrorClass::Cancelled),
//!    [`BudgetExhausted`](ErrorClass::BudgetExhausted) (every rung costs money);
//! 4. otherwise the next rung after the current one (the first rung after the original ask's
//!    failure) that accepts the failure's class and whose target's breaker is not open is
//!    climbed; each rung passed over is reported as a [`Skip`] with its reason;
//! 5. no rung left: stop ([`StopReason::Exhausted`]); the task is a dead letter.
//!
//! Which classes a rung accepts by default:
//!
//! | rung | transient | rate-limited | invalid output | permanent |
//! |---|---|---|---|---|
//! | [`SameAgentWithFeedback`](RungKind::SameAgentWithFeedback) | yes | yes | yes | **no** |
//! | [`OtherAgent`](RungKind::OtherAgent) | as the user names them (`ask_with_fallback`'s classes) ||||
//! | [`Decompose`](RungKind::Decompose) | yes | yes | yes | yes |
//! | [`StrongerModel`](RungKind::StrongerModel) | yes | yes | yes | yes |
//!
//! A permanent failure (bad request, context too long) is one the same agent would repeat, even
//! told about it, so it skips the same-agent rung; another agent, a smaller task or a stronger
//! model may not repeat it. [`Rung::accepting`] overrides the defaults.
//!
//! The ladder never loops: every climb is to a rung strictly after the current one, so a ladder
//! of `n` rungs climbs at most `n` times. The state is serializable, so a journaled run resumes
//! its ladder where it was instead of at the first rung.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::{ErrorClass, RetryPolicy};

/// A set of error classes (a rate limit's `retry_after` is ignored for membership).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClassSet(u8);

impl ClassSet {
    /// No class.
    pub const NONE: Self = Self(0);
    /// [`ErrorClass::Transient`].
    pub const TRANSIENT: Self = Self(1);
    /// [`ErrorClass::RateLimited`].
    pub const RATE_LIMITED: Self = Self(1 << 1);
    /// [`ErrorClass::InvalidOutput`].
    pub const INVALID_OUTPUT: Self = Self(1 << 2);
    /// [`ErrorClass::Permanent`].
    pub const PERMANENT: Self = Self(1 << 3);
    /// Every class a ladder may climb on: transient, rate-limited, invalid output, permanent.
    pub const CLIMBABLE: Self = Self(0b1111);

    /// The union of two sets.
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// Whether `class` is in the set. The classes that stop every escalation are in no set.
    pub fn contains(self, class: &ErrorClass) -> bool {
        let bit = match class {
            ErrorClass::Transient => Self::TRANSIENT,
            ErrorClass::RateLimited { .. } => Self::RATE_LIMITED,
            ErrorClass::InvalidOutput => Self::INVALID_OUTPUT,
            ErrorClass::Permanent => Self::PERMANENT,
            _ => return false,
        };
        self.0 & bit.0 != 0
    }
}

impl std::ops::BitOr for ClassSet {
    type Output = Self;

    fn bitor(self, rhs: Self) -> Self {
        self.union(rhs)
    }
}

/// What a rung does; the agent layer carries it out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum RungKind {
    /// Ask the same agent again, with the previous attempt's failure in its context.
    SameAgentWithFeedback,
    /// Ask another agent of the same kind (a sibling or a fallback), named by `target`.
    OtherAgent {
        /// The agent to ask; also the breaker target checked before climbing.
        target: String,
    },
    /// Split the task with a user-supplied splitter and merge the parts' answers.
    Decompose,
    /// Ask with a user-supplied stronger model.
    StrongerModel,
}

/// One rung of a [`Ladder`]: a kind, a name (for events and for the user's code to find its
/// action), the classes of failure that may climb to it, and optionally its own retry policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rung {
    name: String,
    kind: RungKind,
    accepts: ClassSet,
    policy: Option<RetryPolicy>,
}

impl Rung {
    fn with_kind(name: impl Into<String>, kind: RungKind, accepts: ClassSet) -> Self {
        Self {
            name: name.into(),
            kind,
            accepts,
            policy: None,
        }
    }

    /// The same agent again, told what went wrong. Accepts every climbable class but
    /// [`Permanent`](ErrorClass::Permanent).
    pub fn same_agent_with_feedback(name: impl Into<String>) -> Self {
        let accepts = ClassSet::TRANSIENT | ClassSet::RATE_LIMITED | ClassSet::INVALID_OUTPUT;
        Self::with_kind(name, RungKind::SameAgentWithFeedback, accepts)
    }

    /// Another agent, `target`, for the failures in `on` only.
    pub fn other_agent(name: impl Into<String>, target: impl Into<String>, on: ClassSet) -> Self {
        let kind = RungKind::OtherAgent {
            target: target.into(),
        };
        Self::with_kind(name, kind, on)
    }

    /// Decompose the task. Accepts every climbable class.
    pub fn decompose(name: impl Into<String>) -> Self {
        Self::with_kind(name, RungKind::Decompose, ClassSet::CLIMBABLE)
    }

    /// A stronger model. Accepts every climbable class.
    pub fn stronger_model(name: impl Into<String>) -> Self {
        Self::with_kind(name, RungKind::StrongerModel, ClassSet::CLIMBABLE)
    }

    /// Replaces the classes of failure that may climb to this rung.
    pub fn accepting(mut self, classes: ClassSet) -> Self {
        self.accepts = classes;
        self
    }

    /// The retry policy for this rung's own attempts (the agent layer's default otherwise).
    pub fn with_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = Some(policy);
        self
    }

    /// The rung's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What the rung does.
    pub fn kind(&self) -> &RungKind {
        &self.kind
    }

    /// The classes of failure that may climb to this rung.
    pub fn accepts(&self) -> ClassSet {
        self.accepts
    }

    /// The rung's own retry policy, if it has one.
    pub fn policy(&self) -> Option<&RetryPolicy> {
        self.policy.as_ref()
    }
}

/// Where a task is on its ladder: the rung being tried (none while the original ask is), the
/// rungs skipped so far, and whether it succeeded. Serializable, to be journaled.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LadderState {
    current: Option<usize>,
    climbed: Vec<usize>,
    skipped: Vec<Skip>,
    succeeded: bool,
}

impl LadderState {
    /// The state before any rung: the original ask is being tried.
    pub fn new() -> Self {
        Self::default()
    }

    /// The rung being tried, or `None` for the original ask.
    pub fn current(&self) -> Option<usize> {
        self.current
    }

    /// The rungs climbed, in order.
    pub fn climbed(&self) -> &[usize] {
        &self.climbed
    }

    /// Every rung passed over, with why.
    pub fn skipped(&self) -> &[Skip] {
        &self.skipped
    }

    /// Whether the current attempt (original ask or rung) succeeded.
    pub fn has_succeeded(&self) -> bool {
        self.succeeded
    }

    /// Records that the current attempt succeeded: the ladder stops.
    pub fn succeed(&mut self) {
        self.succeeded = true;
    }

    /// Records a decision of [`Ladder::next`]: its skips, and the rung climbed if any.
    pub fn record(&mut self, next: &Next) {
        self.skipped.extend_from_slice(next.skipped());
        if let Next::Climb { rung, .. } = next {
            self.current = Some(*rung);
            self.climbed.push(*rung);
        }
    }
}

/// A rung passed over, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skip {
    /// The rung's index in the ladder.
    pub rung: usize,
    /// Why it was passed over.
    pub reason: SkipReason,
}

/// Why a rung was passed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum SkipReason {
    /// The rung's target has an open breaker.
    BreakerOpen,
    /// The rung does not accept this class of failure.
    ClassNotAccepted(ErrorClass),
}

/// Why the ladder stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum StopReason {
    /// The last attempt succeeded.
    Succeeded,
    /// The kill switch is tripped.
    KillSwitch,
    /// The failure ends every escalation (replay-unsafe, cancelled, budget exhausted).
    Unescalatable(ErrorClass),
    /// No rung left that accepts the failure: the task is a dead letter.
    Exhausted,
}

/// What the ladder says to do after a failure (or a success).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Climb to this rung (an index into the ladder), having passed over `skipped`.
    Climb {
        /// The rung to try.
        rung: usize,
        /// Rungs passed over on the way.
        skipped: Vec<Skip>,
    },
    /// Stop, having passed over `skipped`.
    Stop {
        /// Why.
        reason: StopReason,
        /// Rungs passed over before stopping.
        skipped: Vec<Skip>,
    },
}

impl Next {
    /// The rungs passed over.
    pub fn skipped(&self) -> &[Skip] {
        match self {
            Next::Climb { skipped, .. } | Next::Stop { skipped, .. } => skipped,
        }
    }
}

/// The facts about the failure that just happened, and about the system, that the ladder
/// decides on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conditions {
    class: ErrorClass,
    kill_switch: bool,
    open_breakers: BTreeSet<usize>,
}

impl Conditions {
    /// A failure of `class`, kill switch not tripped, no breaker open.
    pub fn new(class: ErrorClass) -> Self {
        Self {
            class,
            kill_switch: false,
            open_breakers: BTreeSet::new(),
        }
    }

    /// Sets whether the kill switch is tripped.
    pub fn kill_switch(mut self, tripped: bool) -> Self {
        self.kill_switch = tripped;
        self
    }

    /// Marks the target of rung `index` as behind an open breaker.
    pub fn breaker_open(mut self, index: usize) -> Self {
        self.open_breakers.insert(index);
        self
    }
}

/// An ordered list of rungs; see the [module documentation](self) for the rules.
///
/// # Example
///
/// ```
/// use overseer_retry::{ClassSet, Conditions, ErrorClass, Ladder, LadderState, Next, Rung, Skip, SkipReason, StopReason};
///
/// let ladder = Ladder::new(vec![
///     Rung::same_agent_with_feedback("tell-writer"),
///     Rung::other_agent("sibling", "writer-2", ClassSet::TRANSIENT | ClassSet::PERMANENT),
///     Rung::stronger_model("big-model"),
/// ]);
/// let mut state = LadderState::new();
///
/// // The original ask failed for good: the feedback rung does not take permanent failures.
/// let next = ladder.advance(&mut state, &Conditions::new(ErrorClass::Permanent));
/// assert_eq!(next, Next::Climb {
///     rung: 1,
///     skipped: vec![Skip { rung: 0, reason: SkipReason::ClassNotAccepted(ErrorClass::Permanent) }],
/// });
///
/// // The sibling failed too, and the stronger model's breaker is open: nothing is left.
/// let next = ladder.advance(&mut state, &Conditions::new(ErrorClass::Transient).breaker_open(2));
/// assert!(matches!(next, Next::Stop { reason: StopReason::Exhausted, .. }));
/// assert_eq!(state.skipped().len(), 2);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Ladder {
    rungs: Vec<Rung>,
}

impl Ladder {
    /// A ladder of these rungs, tried in this order.
    pub fn new(rungs: Vec<Rung>) -> Self {
        Self { rungs }
    }

    /// The rungs.
    pub fn rungs(&self) -> &[Rung] {
        &self.rungs
    }

    /// The rung at `index`, if there is one.
    pub fn rung(&self, index: usize) -> Option<&Rung> {
        self.rungs.get(index)
    }

    /// What to do next, from `state` and the latest failure's `conditions`. Pure: nothing is
    /// recorded (see [`LadderState::record`], or [`advance`](Self::advance) for both).
    pub fn next(&self, state: &LadderState, conditions: &Conditions) -> Next {
        let stop = |reason| Next::Stop {
            reason,
            skipped: Vec::new(),
        };
        if state.succeeded {
            return stop(StopReason::Succeeded);
        }
        if conditions.kill_switch {
            return stop(StopReason::KillSwitch);
        }
        if conditions.class.stops_escalation() {
            return stop(StopReason::Unescalatable(conditions.class));
        }
        let start = state.current.map_or(0, |i| i + 1);
        let mut skipped = Vec::new();
        for (index, rung) in self.rungs.iter().enumerate().skip(start) {
            match skip_reason(rung, index, conditions) {
                Some(reason) => skipped.push(Skip {
                    rung: index,
                    reason,
                }),
                None => {
                    return Next::Climb {
                        rung: index,
                        skipped,
                    }
                }
            }
        }
        Next::Stop {
            reason: StopReason::Exhausted,
            skipped,
        }
    }

    /// [`next`](Self::next), recorded in `state`.
    pub fn advance(&self, state: &mut LadderState, conditions: &Conditions) -> Next {
        let next = self.next(state, conditions);
        state.record(&next);
        next
    }
}

fn skip_reason(rung: &Rung, index: usize, conditions: &Conditions) -> Option<SkipReason> {
    if !rung.accepts.contains(&conditions.class) {
        return Some(SkipReason::ClassNotAccepted(conditions.class));
    }
    if conditions.open_breakers.contains(&index) {
        return Some(SkipReason::BreakerOpen);
    }
    None
}
