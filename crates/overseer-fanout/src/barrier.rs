//! A fan-in barrier: when a cohort of members has answered enough to go on.
//!
//! A [`Barrier`] is fed what happened to each member ([`Observed`]) and asked for its
//! [`Decision`] at a given instant. The first decision other than
//! [`Continue`](Decision::Continue) is final: later observations are recorded but change
//! nothing, so a caller that acts on a decision never sees it taken back.
//!
//! | mode | decided when | impossible when |
//! |---|---|---|
//! | [`All`](Mode::All) | every member answered (or was [replaced](Observed::Replaced)) | a member failed for good |
//! | [`Any`](Mode::Any) | one member answered | every member failed for good or was replaced |
//! | [`Quorum(n)`](Mode::Quorum) | n members answered | fewer than n could still answer |
//!
//! An impossible barrier is decided at once, not at its deadline: waiting could not change the
//! answer. A replaced member (an optional member's final failure, replaced by its default)
//! counts for [`All`](Mode::All), which waits for every member to have a value, and not for
//! [`Any`](Mode::Any) or [`Quorum`](Mode::Quorum), which count real answers: a default is a
//! neutral value, never a vote.

use thiserror::Error;
use tokio::time::Instant;

/// How many members a barrier waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Every member.
    All,
    /// The first member that answers.
    Any,
    /// At least this many members (1 ≤ n ≤ the number of members).
    Quorum(usize),
}

/// What a barrier whose goal was not reached by its deadline stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnDeadline {
    /// Go on with what arrived: the caller gets typed partial results (the default, because a
    /// fan-out that waited its whole deadline usually has something worth keeping).
    #[default]
    Partial,
    /// Fail the cohort.
    Fail,
}

/// What one member did, as a barrier counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    /// The member answered with a value.
    Answered,
    /// The member failed. `last` says whether that is its final answer (`false`: it is being
    /// retried and may still answer).
    Failed {
        /// Whether no further attempt follows.
        last: bool,
    },
    /// An optional member failed for good and was replaced by its declared default.
    Replaced,
}

/// Where one member stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MemberState {
    /// Not answered yet (nothing observed, or only failures that are not its last).
    #[default]
    Pending,
    /// Answered with a value.
    Answered,
    /// Failed for good.
    Failed,
    /// Replaced by its declared default.
    Replaced,
}

/// Which goal a decided barrier reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reached {
    /// [`Mode::All`]: every member has a value.
    Complete,
    /// [`Mode::Any`]: a member answered.
    Any,
    /// [`Mode::Quorum`]: n members answered.
    Quorum,
}

/// A barrier's answer at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The goal is reached: go on.
    Decided(Reached),
    /// Not decided yet and the deadline is ahead: keep waiting.
    Continue,
    /// The deadline passed before the goal was reached; the policy says what that means.
    DeadlineReached(OnDeadline),
    /// The goal can no longer be reached, whatever the pending members do.
    Impossible,
}

impl Decision {
    /// Whether this decision ends the wait (everything but [`Continue`](Self::Continue)).
    pub fn is_final(&self) -> bool {
        !matches!(self, Self::Continue)
    }
}

/// A barrier's declaration: its mode, how many members, its deadline and policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BarrierSpec {
    mode: Mode,
    members: usize,
    deadline: Instant,
    on_deadline: OnDeadline,
}

impl BarrierSpec {
    /// A barrier over `members` members in `mode` that decides by `deadline`, with
    /// [`OnDeadline::Partial`].
    pub fn new(mode: Mode, members: usize, deadline: Instant) -> Self {
        Self {
            mode,
            members,
            deadline,
            on_deadline: OnDeadline::default(),
        }
    }

    /// What the deadline stands for when the goal was not reached.
    pub fn on_deadline(mut self, policy: OnDeadline) -> Self {
        self.on_deadline = policy;
        self
    }

    /// The mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The number of members.
    pub fn members(&self) -> usize {
        self.members
    }

    /// The deadline.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The deadline policy.
    pub fn deadline_policy(&self) -> OnDeadline {
        self.on_deadline
    }

    /// Checks the spec: at least one member, and a quorum between 1 and the member count.
    ///
    /// # Errors
    ///
    /// [`BarrierError::EmptyCohort`] or [`BarrierError::InvalidQuorum`].
    pub fn validate(&self) -> Result<(), BarrierError> {
        if self.members == 0 {
            return Err(BarrierError::EmptyCohort);
        }
        if let Mode::Quorum(n) = self.mode {
            if n == 0 || n > self.members {
                return Err(BarrierError::InvalidQuorum {
                    quorum: n,
                    members: self.members,
                });
            }
        }
        Ok(())
    }
}

/// A barrier that cannot be built or an observation it cannot take.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BarrierError {
    /// A barrier needs at least one member.
    #[error("a barrier needs at least one member")]
    EmptyCohort,
    /// A quorum must be between 1 and the number of members.
    #[error("a quorum of {quorum} is not between 1 and the {members} members")]
    InvalidQuorum {
        /// The quorum asked for.
        quorum: usize,
        /// The number of members.
        members: usize,
    },
    /// No member has this index.
    #[error("no member {index} in a barrier of {members}")]
    UnknownMember {
        /// The index observed.
        index: usize,
        /// The number of members.
        members: usize,
    },
    /// The member already has its final answer.
    #[error("member {index} already settled as {state:?}")]
    AlreadySettled {
        /// The index observed.
        index: usize,
        /// What it settled as.
        state: MemberState,
    },
}

/// A fan-in barrier over a fixed cohort: see the [module docs](self) for its rules.
#[derive(Debug, Clone)]
pub struct Barrier {
    spec: BarrierSpec,
    states: Vec<MemberState>,
    answered: usize,
    failed: usize,
    replaced: usize,
    decision: Option<Decision>,
}

impl Barrier {
    /// A barrier for `spec`, with every member pending.
    ///
    /// # Errors
    ///
    /// What [`BarrierSpec::validate`] finds wrong.
    pub fn new(spec: BarrierSpec) -> Result<Self, BarrierError> {
        spec.validate()?;
        Ok(Self {
            spec,
            states: vec![MemberState::Pending; spec.members],
            answered: 0,
            failed: 0,
            replaced: 0,
            decision: None,
        })
    }

    /// The spec it was built from.
    pub fn spec(&self) -> &BarrierSpec {
        &self.spec
    }

    /// Records what member `index` did. A failure that is not the member's last leaves it
    /// pending.
    ///
    /// # Errors
    ///
    /// [`BarrierError::UnknownMember`] for an index out of range,
    /// [`BarrierError::AlreadySettled`] for a member that already has its final answer.
    pub fn observe(&mut self, index: usize, observed: Observed) -> Result<(), BarrierError> {
        let members = self.spec.members;
        let state = self
            .states
            .get_mut(index)
            .ok_or(BarrierError::UnknownMember { index, members })?;
        if *state != MemberState::Pending {
            return Err(BarrierError::AlreadySettled {
                index,
                state: *state,
            });
        }
        match observed {
            Observed::Answered => {
                *state = MemberState::Answered;
                self.answered += 1;
            }
            Observed::Failed { last: true } => {
                *state = MemberState::Failed;
                self.failed += 1;
            }
            Observed::Failed { last: false } => {}
            Observed::Replaced => {
                *state = MemberState::Replaced;
                self.replaced += 1;
            }
        }
        Ok(())
    }

    /// Where member `index` stands (`None` out of range).
    pub fn state(&self, index: usize) -> Option<MemberState> {
        self.states.get(index).copied()
    }

    /// The members still pending, by index.
    pub fn pending(&self) -> impl Iterator<Item = usize> + '_ {
        self.states
            .iter()
            .enumerate()
            .filter(|(_, state)| **state == MemberState::Pending)
            .map(|(index, _)| index)
    }

    /// How many members answered with a value.
    pub fn answered(&self) -> usize {
        self.answered
    }

    /// The decision at `now`. The first final decision is kept: once decided, every later call
    /// returns it, whatever was observed since.
    pub fn decide(&mut self, now: Instant) -> Decision {
        if let Some(decision) = self.decision {
            return decision;
        }
        let decision = self.evaluate(now);
        if decision.is_final() {
            self.decision = Some(decision);
        }
        decision
    }

    /// The decision already taken, if any.
    pub fn decision(&self) -> Option<Decision> {
        self.decision
    }

    fn evaluate(&self, now: Instant) -> Decision {
        let members = self.spec.members;
        let pending = members - self.answered - self.failed - self.replaced;
        let (reached, impossible) = match self.spec.mode {
            Mode::All => (self.answered + self.replaced == members, self.failed > 0),
            Mode::Any => (self.answered > 0, pending == 0 && self.answered == 0),
            Mode::Quorum(n) => (self.answered >= n, self.answered + pending < n),
        };
        if reached {
            match self.spec.mode {
                Mode::All => Decision::Decided(Reached::Complete),
                Mode::Any => Decision::Decided(Reached::Any),
                Mode::Quorum(_) => Decision::Decided(Reached::Quorum),
            }
        } else if impossible {
            Decision::Impossible
        } else if now >= self.spec.deadline {
            Decision::DeadlineReached(self.spec.on_deadline)
        } else {
            Decision::Continue
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Duration;

    fn barrier(mode: Mode, members: usize) -> (Barrier, Instant) {
        let start = Instant::now();
        let spec = BarrierSpec::new(mode, members, start + Duration::from_secs(10));
        (Barrier::new(spec).unwrap(), start)
    }

    #[test]
    fn invalid_specs_are_typed_errors() {
        let at = Instant::now();
        assert_eq!(
            Barrier::new(BarrierSpec::new(Mode::All, 0, at)).unwrap_err(),
            BarrierError::EmptyCohort
        );
        assert_eq!(
            Barrier::new(BarrierSpec::new(Mode::Quorum(0), 3, at)).unwrap_err(),
            BarrierError::InvalidQuorum {
                quorum: 0,
                members: 3
            }
        );
        assert_eq!(
            Barrier::new(BarrierSpec::new(Mode::Quorum(4), 3, at)).unwrap_err(),
            BarrierError::InvalidQuorum {
                quorum: 4,
                members: 3
            }
        );
        assert!(Barrier::new(BarrierSpec::new(Mode::Quorum(3), 3, at)).is_ok());
    }

    #[test]
    fn all_is_decided_on_the_last_answer_and_not_before() {
        let (mut b, now) = barrier(Mode::All, 3);
        b.observe(0, Observed::Answered).unwrap();
        b.observe(1, Observed::Replaced).unwrap();
        assert_eq!(b.decide(now), Decision::Continue);
        b.observe(2, Observed::Answered).unwrap();
        assert_eq!(b.decide(now), Decision::Decided(Reached::Complete));
    }

    #[test]
    fn all_with_a_final_failure_is_impossible_at_once() {
        let (mut b, now) = barrier(Mode::All, 3);
        b.observe(1, Observed::Failed { last: false }).unwrap();
        assert_eq!(b.decide(now), Decision::Continue);
        assert_eq!(b.state(1), Some(MemberState::Pending));
        b.observe(1, Observed::Failed { last: true }).unwrap();
        assert_eq!(b.decide(now), Decision::Impossible);
    }

    #[test]
    fn any_is_decided_on_the_first_answer_and_impossible_when_none_can_answer() {
        let (mut b, now) = barrier(Mode::Any, 2);
        b.observe(0, Observed::Failed { last: true }).unwrap();
        assert_eq!(b.decide(now), Decision::Continue);
        b.observe(1, Observed::Answered).unwrap();
        assert_eq!(b.decide(now), Decision::Decided(Reached::Any));

        let (mut b, now) = barrier(Mode::Any, 2);
        b.observe(0, Observed::Failed { last: true }).unwrap();
        b.observe(1, Observed::Replaced).unwrap();
        assert_eq!(b.decide(now), Decision::Impossible);
    }

    #[test]
    fn a_quorum_that_can_no_longer_be_reached_is_decided_at_once() {
        let (mut b, now) = barrier(Mode::Quorum(3), 4);
        b.observe(0, Observed::Failed { last: true }).unwrap();
        assert_eq!(b.decide(now), Decision::Continue);
        b.observe(3, Observed::Failed { last: true }).unwrap();
        assert_eq!(b.decide(now), Decision::Impossible);
    }

    #[test]
    fn a_replaced_member_is_not_a_vote_in_a_quorum() {
        let (mut b, now) = barrier(Mode::Quorum(2), 2);
        b.observe(0, Observed::Answered).unwrap();
        b.observe(1, Observed::Replaced).unwrap();
        assert_eq!(b.decide(now), Decision::Impossible);
    }

    #[test]
    fn the_deadline_applies_the_policy_and_the_first_decision_is_kept() {
        let start = Instant::now();
        let deadline = start + Duration::from_secs(1);
        let spec = BarrierSpec::new(Mode::All, 2, deadline).on_deadline(OnDeadline::Fail);
        let mut b = Barrier::new(spec).unwrap();
        b.observe(0, Observed::Answered).unwrap();
        assert_eq!(
            b.decide(deadline - Duration::from_nanos(1)),
            Decision::Continue
        );
        assert_eq!(
            b.decide(deadline),
            Decision::DeadlineReached(OnDeadline::Fail)
        );
        b.observe(1, Observed::Answered).unwrap();
        assert_eq!(
            b.decide(deadline),
            Decision::DeadlineReached(OnDeadline::Fail)
        );
        assert_eq!(b.pending().count(), 0);
    }

    #[test]
    fn observations_out_of_range_or_after_settling_are_refused() {
        let (mut b, _) = barrier(Mode::All, 1);
        assert_eq!(
            b.observe(1, Observed::Answered),
            Err(BarrierError::UnknownMember {
                index: 1,
                members: 1
            })
        );
        b.observe(0, Observed::Answered).unwrap();
        assert_eq!(
            b.observe(0, Observed::Answered),
            Err(BarrierError::AlreadySettled {
                index: 0,
                state: MemberState::Answered
            })
        );
    }
}
