//! Deciding a critical step by voting over independent samples.
//!
//! A [`Vote`] is fed one sample at a time, each either a comparable answer key
//! ([`Vote::observe`]) or a [`RedFlag`] ([`Vote::observe_red_flag`]), and after each one
//! answers with a [`VoteState`]: decided, exhausted, or ask for another sample. It samples
//! nothing itself: the agent layer draws the samples and stops when the state says so.
//!
//! # Red flags and the sample cap
//!
//! A red-flagged sample (malformed, over-long, off-schema) is **never counted as a vote**, and
//! it **does count toward the cap** on samples. MAKER re-samples red flags instead of voting
//! on them, so the caller simply draws another sample; but the cap bounds the *total* number
//! of samples drawn, red-flagged or not, so that the worst-case cost of a vote is known before
//! it starts ([`Vote::worst_case_samples`]) and can be reserved in the budget. A model that
//! only ever produces red flags exhausts the vote at the cap instead of spending without end.
//!
//! # Example
//!
//! ```
//! use overseer_semantic::vote::{Vote, VoteRule, VoteState};
//! use overseer_semantic::red_flag::{RedFlag, RedFlagKind};
//!
//! let mut vote = Vote::new(VoteRule::FirstToAheadBy { k: 2, max_samples: 10 })?;
//! assert_eq!(vote.worst_case_samples(), 10); // reserve 10 × the estimate of one sample
//!
//! assert_eq!(vote.observe("42"), VoteState::Continue);
//! // An over-long answer: discarded, re-sampled, but it used one of the 10 samples.
//! let flag = RedFlag::new(RedFlagKind::TooLong, "812 tokens, limit 750");
//! assert_eq!(vote.observe_red_flag(flag), VoteState::Continue);
//! assert_eq!(vote.observe("41"), VoteState::Continue);
//! assert_eq!(vote.observe("42"), VoteState::Continue);
//! assert_eq!(
//!     vote.observe("42"),
//!     VoteState::Decided { winner: "42", margin: 2, samples_used: 5 }
//! );
//! # Ok::<(), overseer_semantic::vote::VoteError>(())
//! ```

mod answer_key;
mod theory;

pub use answer_key::AnswerKey;
pub use theory::{first_to_ahead_error, majority_error};

use std::collections::HashMap;
use std::hash::Hash;

use crate::red_flag::RedFlag;

/// How a [`Vote`] decides.
///
/// | rule | decided when | exhausted when | worst case samples |
/// |---|---|---|---|
/// | [`Majority`](Self::Majority) | `samples` votes are counted and one answer leads, or earlier once the remaining votes can no longer change the leader | `max_samples` drawn first, or a tie at `samples` votes | `max_samples` |
/// | [`FirstToAheadBy`](Self::FirstToAheadBy) | an answer leads every other by `k` votes | `max_samples` drawn first | `max_samples` |
///
/// In both rules red-flagged samples are drawn again and count toward `max_samples`
/// (see the [module documentation](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum VoteRule {
    /// Plurality over `samples` counted votes (Six Sigma Agent's "majority of n").
    ///
    /// With two possible answers and an odd `samples` this is a strict majority, and its
    /// error is [`majority_error`]. `max_samples` (at least `samples`) leaves room for
    /// red-flagged samples to be drawn again; [`VoteRule::majority`] sets it to `samples`,
    /// so that red flags are simply not counted.
    Majority {
        /// The number of counted (not red-flagged) votes to decide on.
        samples: u32,
        /// The cap on samples drawn, red-flagged ones included.
        max_samples: u32,
    },
    /// MAKER's first-to-ahead-by-k: keep sampling until one answer has `k` more votes than
    /// any other, within `max_samples` samples (red-flagged ones included).
    FirstToAheadBy {
        /// The lead that decides (at least 1).
        k: u32,
        /// The cap on samples drawn, red-flagged ones included (at least `k`).
        max_samples: u32,
    },
}

impl VoteRule {
    /// Majority over `samples` votes with no room for re-sampling red flags
    /// (`max_samples == samples`).
    pub fn majority(samples: u32) -> Self {
        Self::Majority {
            samples,
            max_samples: samples,
        }
    }

    /// First-to-ahead-by-`k` within `max_samples` samples.
    pub fn first_to_ahead_by(k: u32, max_samples: u32) -> Self {
        Self::FirstToAheadBy { k, max_samples }
    }

    /// The most samples a vote under this rule can draw, red-flagged ones included: what
    /// the caller reserves (times the estimated cost of one sample) before the vote starts.
    pub fn worst_case_samples(&self) -> u32 {
        match *self {
            Self::Majority { max_samples, .. } | Self::FirstToAheadBy { max_samples, .. } => {
                max_samples
            }
        }
    }

    /// Checks the rule's numbers.
    ///
    /// # Errors
    ///
    /// [`VoteError::InvalidRule`] when `samples` or `k` is zero, or the cap is below them.
    pub fn validate(&self) -> Result<(), VoteError> {
        let problem = match *self {
            Self::Majority { samples: 0, .. } => Some("majority needs at least one sample"),
            Self::Majority {
                samples,
                max_samples,
            } if max_samples < samples => Some("majority's max_samples is below samples"),
            Self::FirstToAheadBy { k: 0, .. } => Some("first-to-ahead-by needs k of at least 1"),
            Self::FirstToAheadBy { k, max_samples } if max_samples < k => {
                Some("first-to-ahead-by's max_samples is below k: it could never decide")
            }
            _ => None,
        };
        match problem {
            Some(reason) => Err(VoteError::InvalidRule {
                rule: *self,
                reason,
            }),
            None => Ok(()),
        }
    }
}

/// What a [`Vote`] says after a sample.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum VoteState<K> {
    /// The vote is over: `winner` leads the runner-up by `margin` votes after
    /// `samples_used` samples (red-flagged ones included).
    Decided {
        /// The answer key that won.
        winner: K,
        /// Its lead over the runner-up (its vote count when it had no rival).
        margin: u32,
        /// Samples drawn, red-flagged ones included.
        samples_used: u32,
    },
    /// Draw another sample.
    Continue,
    /// The cap was reached (or a majority vote tied) without a decision. `leader` is the
    /// answer with the most votes (the first to reach that count on a tie, `None` when no
    /// vote was counted) and `margin` its lead (0 on a tie). Whether to accept it is the
    /// caller's policy; the vote did not decide.
    Exhausted {
        /// The answer with the most votes, if any.
        leader: Option<K>,
        /// Its lead over the runner-up.
        margin: u32,
    },
}

/// A vote's rule was not usable.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum VoteError {
    /// The rule's numbers cannot work.
    #[error("invalid vote rule {rule:?}: {reason}")]
    InvalidRule {
        /// The rule given.
        rule: VoteRule,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A probability given to the theory functions was not in `[0, 1]`.
    #[error("probability {0} is not in [0, 1]")]
    InvalidProbability(f64),
}

/// One vote in progress: the tally so far and the rule that ends it.
///
/// The leader and the runner-up's count are kept up to date on every vote (counts only
/// grow, so this needs no scan), so an observation is one hash-map update and a few
/// comparisons. Once the vote is decided or exhausted, further observations are ignored
/// and return the same final state: a vote never counts more than its cap.
///
/// ```
/// use overseer_semantic::vote::{Vote, VoteRule, VoteState};
///
/// // Majority of 5 stops as soon as the remaining votes cannot change the winner.
/// let mut vote = Vote::new(VoteRule::majority(5))?;
/// vote.observe("yes");
/// vote.observe("no");
/// assert_eq!(vote.observe("yes"), VoteState::Continue); // 2 to 1, two votes to go
/// // 3 to 1 with one vote to go: decided without drawing the fifth sample.
/// assert_eq!(
///     vote.observe("yes"),
///     VoteState::Decided { winner: "yes", margin: 2, samples_used: 4 }
/// );
/// # Ok::<(), overseer_semantic::vote::VoteError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Vote<K> {
    rule: VoteRule,
    tally: HashMap<K, u32>,
    leader: Option<K>,
    top: u32,
    second: u32,
    votes: u32,
    samples: u32,
    red_flags: Vec<RedFlag>,
    outcome: Option<VoteState<K>>,
}

impl<K: Eq + Hash + Clone> Vote<K> {
    /// A new vote under `rule`.
    ///
    /// # Errors
    ///
    /// [`VoteError::InvalidRule`] when the rule cannot work (see [`VoteRule::validate`]).
    pub fn new(rule: VoteRule) -> Result<Self, VoteError> {
        rule.validate()?;
        Ok(Self {
            rule,
            tally: HashMap::new(),
            leader: None,
            top: 0,
            second: 0,
            votes: 0,
            samples: 0,
            red_flags: Vec::new(),
            outcome: None,
        })
    }

    /// Counts one sample's answer key and says whether the vote is over.
    pub fn observe(&mut self, key: K) -> VoteState<K> {
        if let Some(done) = &self.outcome {
            return done.clone();
        }
        self.samples += 1;
        self.votes += 1;
        // The key is cloned only when it becomes the leader, and moved into the tally when
        // it is new: a sample for a known answer allocates nothing.
        match self.tally.get_mut(&key) {
            Some(count) => {
                *count += 1;
                let count = *count;
                self.update_leader(&key, count);
            }
            None => {
                self.update_leader(&key, 1);
                self.tally.insert(key, 1);
            }
        }
        self.settle()
    }

    /// Records a red-flagged sample: not a vote, but one sample toward the cap.
    pub fn observe_red_flag(&mut self, reason: RedFlag) -> VoteState<K> {
        if let Some(done) = &self.outcome {
            return done.clone();
        }
        self.samples += 1;
        self.red_flags.push(reason);
        self.settle()
    }

    /// The rule of this vote.
    pub fn rule(&self) -> VoteRule {
        self.rule
    }

    /// The most samples this vote can draw (see [`VoteRule::worst_case_samples`]).
    pub fn worst_case_samples(&self) -> u32 {
        self.rule.worst_case_samples()
    }

    /// Samples observed so far, red-flagged ones included.
    pub fn samples_used(&self) -> u32 {
        self.samples
    }

    /// Votes counted so far (samples that were not red-flagged).
    pub fn votes_counted(&self) -> u32 {
        self.votes
    }

    /// The red flags observed, in order.
    pub fn red_flags(&self) -> &[RedFlag] {
        &self.red_flags
    }

    /// The votes counted for `key`.
    pub fn votes_for(&self, key: &K) -> u32 {
        self.tally.get(key).copied().unwrap_or(0)
    }

    /// Every answer key with its vote count, in no particular order.
    pub fn tally(&self) -> impl Iterator<Item = (&K, u32)> + '_ {
        self.tally.iter().map(|(key, count)| (key, *count))
    }

    /// The answer with the most votes so far and its lead over the runner-up.
    pub fn leader(&self) -> Option<(&K, u32)> {
        self.leader
            .as_ref()
            .map(|key| (key, self.top - self.second))
    }

    /// The final state, once the vote is decided or exhausted.
    pub fn outcome(&self) -> Option<&VoteState<K>> {
        self.outcome.as_ref()
    }

    /// Counts only grow, so the runner-up's count is the largest count that is not the
    /// leader's; on a tie the leader stays the first to reach the count.
    fn update_leader(&mut self, key: &K, count: u32) {
        if self.leader.as_ref() == Some(key) {
            self.top = count;
        } else if count > self.top {
            self.second = self.top;
            self.top = count;
            self.leader = Some(key.clone());
        } else if count > self.second {
            self.second = count;
        }
    }

    fn settle(&mut self) -> VoteState<K> {
        let margin = self.top - self.second;
        // A decision needs a counted vote, so a decided vote always has a leader.
        let state = match (decide(self.rule, self.progress()), self.leader.clone()) {
            (Decision::Continue, _) => VoteState::Continue,
            (Decision::Decided, Some(winner)) => VoteState::Decided {
                winner,
                margin,
                samples_used: self.samples,
            },
            (Decision::Decided | Decision::Exhausted, leader) => {
                VoteState::Exhausted { leader, margin }
            }
        };
        if state != VoteState::Continue {
            self.outcome = Some(state.clone());
        }
        state
    }

    fn progress(&self) -> Progress {
        Progress {
            top: self.top,
            second: self.second,
            votes: self.votes,
            samples: self.samples,
        }
    }
}

/// The counts a decision needs, apart from the answer keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Progress {
    top: u32,
    second: u32,
    votes: u32,
    samples: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    Decided,
    Continue,
    Exhausted,
}

/// The decision rule alone, on counts.
fn decide(rule: VoteRule, p: Progress) -> Decision {
    let margin = p.top - p.second;
    let (decided, cap) = match rule {
        VoteRule::FirstToAheadBy { k, max_samples } => (p.top > 0 && margin >= k, max_samples),
        VoteRule::Majority {
            samples,
            max_samples,
        } => {
            // The votes still to count cannot overturn a lead larger than their number.
            let remaining = samples.saturating_sub(p.votes);
            (p.top > 0 && margin > remaining, max_samples)
        }
    };
    if decided {
        Decision::Decided
    } else if p.samples >= cap || majority_tied(rule, p) {
        Decision::Exhausted
    } else {
        Decision::Continue
    }
}

fn majority_tied(rule: VoteRule, p: Progress) -> bool {
    matches!(rule, VoteRule::Majority { samples, .. } if p.votes >= samples)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::red_flag::RedFlagKind;

    fn flag() -> RedFlag {
        RedFlag::new(RedFlagKind::Parse, "not JSON")
    }

    #[test]
    fn invalid_rules_are_typed_errors() {
        for rule in [
            VoteRule::majority(0),
            VoteRule::Majority {
                samples: 5,
                max_samples: 4,
            },
            VoteRule::first_to_ahead_by(0, 10),
            VoteRule::first_to_ahead_by(3, 2),
        ] {
            assert!(matches!(
                Vote::<u8>::new(rule),
                Err(VoteError::InvalidRule { .. })
            ));
        }
    }

    #[test]
    fn first_to_ahead_decides_exactly_when_margin_reaches_k() {
        let mut vote = Vote::new(VoteRule::first_to_ahead_by(3, 100)).unwrap();
        for key in ["a", "b", "a", "a"] {
            assert_eq!(vote.observe(key), VoteState::Continue);
        }
        // a = 3, b = 1: margin 2.
        assert_eq!(vote.leader(), Some((&"a", 2)));
        assert_eq!(
            vote.observe("a"),
            VoteState::Decided {
                winner: "a",
                margin: 3,
                samples_used: 5
            }
        );
    }

    #[test]
    fn a_lone_answer_decides_at_k_votes() {
        let mut vote = Vote::new(VoteRule::first_to_ahead_by(2, 5)).unwrap();
        assert_eq!(vote.observe(7), VoteState::Continue);
        assert!(matches!(
            vote.observe(7),
            VoteState::Decided {
                winner: 7,
                margin: 2,
                ..
            }
        ));
    }

    #[test]
    fn red_flags_fill_the_cap_without_counting() {
        let mut vote = Vote::new(VoteRule::first_to_ahead_by(2, 3)).unwrap();
        assert_eq!(vote.observe("x"), VoteState::Continue);
        assert_eq!(vote.observe_red_flag(flag()), VoteState::Continue);
        assert_eq!(
            vote.observe_red_flag(flag()),
            VoteState::Exhausted {
                leader: Some("x"),
                margin: 1
            }
        );
        assert_eq!(vote.votes_counted(), 1);
        assert_eq!(vote.samples_used(), 3);
        assert_eq!(vote.red_flags().len(), 2);
    }

    #[test]
    fn observations_after_the_end_are_ignored() {
        let mut vote = Vote::new(VoteRule::first_to_ahead_by(1, 4)).unwrap();
        let done = vote.observe("a");
        assert!(matches!(done, VoteState::Decided { .. }));
        assert_eq!(vote.observe("b"), done);
        assert_eq!(vote.observe_red_flag(flag()), done);
        assert_eq!(vote.samples_used(), 1);
        assert_eq!(vote.votes_for(&"b"), 0);
    }

    #[test]
    fn majority_stops_once_the_rest_cannot_change_the_winner() {
        let mut vote = Vote::new(VoteRule::majority(5)).unwrap();
        assert_eq!(vote.observe("a"), VoteState::Continue);
        assert_eq!(vote.observe("a"), VoteState::Continue);
        // a = 3 with 2 votes to go: b can reach 2 at most.
        assert_eq!(
            vote.observe("a"),
            VoteState::Decided {
                winner: "a",
                margin: 3,
                samples_used: 3
            }
        );
    }

    #[test]
    fn majority_counts_all_votes_when_close() {
        let mut vote = Vote::new(VoteRule::majority(5)).unwrap();
        for key in ["a", "b", "a", "b"] {
            assert_eq!(vote.observe(key), VoteState::Continue);
        }
        assert_eq!(
            vote.observe("b"),
            VoteState::Decided {
                winner: "b",
                margin: 1,
                samples_used: 5
            }
        );
    }

    #[test]
    fn majority_tie_is_exhausted_with_the_first_leader() {
        let mut vote = Vote::new(VoteRule::majority(4)).unwrap();
        for key in ["a", "b", "b"] {
            assert_eq!(vote.observe(key), VoteState::Continue);
        }
        assert_eq!(
            vote.observe("a"),
            VoteState::Exhausted {
                leader: Some("b"),
                margin: 0
            }
        );
    }

    #[test]
    fn majority_resamples_red_flags_within_its_cap() {
        let mut vote = Vote::new(VoteRule::Majority {
            samples: 3,
            max_samples: 5,
        })
        .unwrap();
        assert_eq!(vote.observe_red_flag(flag()), VoteState::Continue);
        assert_eq!(vote.observe("a"), VoteState::Continue);
        assert_eq!(vote.observe_red_flag(flag()), VoteState::Continue);
        assert_eq!(vote.observe("b"), VoteState::Continue);
        // Fifth and last sample: a second "a" wins 2 to 1 at 3 votes.
        assert_eq!(
            vote.observe("a"),
            VoteState::Decided {
                winner: "a",
                margin: 1,
                samples_used: 5
            }
        );
    }

    #[test]
    fn all_red_flags_exhaust_with_no_leader() {
        let mut vote = Vote::<&str>::new(VoteRule::majority(2)).unwrap();
        vote.observe_red_flag(flag());
        assert_eq!(
            vote.observe_red_flag(flag()),
            VoteState::Exhausted {
                leader: None,
                margin: 0
            }
        );
    }

    #[test]
    fn the_runner_up_is_tracked_across_leader_changes() {
        let mut vote = Vote::new(VoteRule::first_to_ahead_by(10, 100)).unwrap();
        for key in ["a", "b", "b", "c", "c", "c", "a"] {
            vote.observe(key);
        }
        // a = 2, b = 2, c = 3.
        assert_eq!(vote.leader(), Some((&"c", 1)));
    }
}
