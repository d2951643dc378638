//! A vote of independent asks: samples red-flagged and drawn again, decided by majority or by
//! MAKER's first-to-ahead-by-k (arXiv 2511.09030), with the worst case reserved in the budget
//! before the first sample, so a vote never overshoots a limit.

use std::collections::HashMap;

use overseer_budget::Reservation;
use overseer_semantic::red_flag::{RedFlag, RedFlagKind, RedFlagRules};
use overseer_semantic::vote::{AnswerKey, Vote, VoteError, VoteRule, VoteState};
use overseer_supervisor::EventId;

use crate::agent::Agent;
use crate::agent_ref::AgentRef;
use crate::error::{AgentError, AskError};
use crate::semantic_event::Finding;
use crate::slot::{JobExtras, JobPart};
use crate::usage::Usage;
use crate::validation::{
    confidence_of, count_failure, judged, judged_later_extras, publish, record_judgement,
    tracks_confidence,
};

/// How a vote is run ([`AgentRef::ask_voting`]): its rule, the key its answers are compared by
/// (the text itself unless set), and the red flags that discard a sample before it can vote
/// (none unless set).
///
/// ```
/// use overseer_agent::VoteSpec;
/// use overseer_agent::semantic::red_flag::RedFlagRules;
/// use overseer_agent::semantic::vote::{AnswerKey, VoteRule};
///
/// let spec = VoteSpec::new(VoteRule::first_to_ahead_by(2, 8))?
///     .key(AnswerKey::JsonPointer("/answer".into()))
///     .red_flags(RedFlagRules::new().max_chars(200));
/// assert_eq!(spec.rule().worst_case_samples(), 8);
/// # Ok::<(), overseer_agent::semantic::vote::VoteError>(())
/// ```
#[derive(Debug, Clone)]
pub struct VoteSpec {
    rule: VoteRule,
    key: AnswerKey,
    red_flags: RedFlagRules,
}

impl VoteSpec {
    /// A vote under `rule`, comparing answers by their exact text, with no red flags.
    ///
    /// # Errors
    ///
    /// [`VoteError::InvalidRule`] when the rule cannot work ([`VoteRule::validate`]).
    pub fn new(rule: VoteRule) -> Result<Self, VoteError> {
        rule.validate()?;
        Ok(Self {
            rule,
            key: AnswerKey::Exact,
            red_flags: RedFlagRules::new(),
        })
    }

    /// Compares answers by `key`; a sample it cannot read (not JSON, for a pointer) is
    /// red-flagged.
    pub fn key(mut self, key: AnswerKey) -> Self {
        self.key = key;
        self
    }

    /// Discards samples that fail `rules` before they can vote.
    pub fn red_flags(mut self, rules: RedFlagRules) -> Self {
        self.red_flags = rules;
        self
    }

    /// The rule.
    pub fn rule(&self) -> VoteRule {
        self.rule
    }
}

/// The outcome of a decided vote.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Voted<O> {
    /// The first sample of the winning answer.
    pub output: O,
    /// The winning answer's key.
    pub winner: String,
    /// Its lead over the runner-up.
    pub margin: u32,
    /// Samples drawn, red-flagged ones included.
    pub samples_used: u32,
    /// Samples discarded by red flags (or failed).
    pub red_flags: u32,
    /// What the samples reported spending, together.
    pub usage: Usage,
}

/// A vote's sample: its budget reservation was made by the vote, before the first sample;
/// whether the confidence tracker records the agent's outputs (a sample's verdict is the
/// vote's, not its validators'); whether the system watches calls for loops (a sample's are
/// not: a vote repeats one task on purpose).
struct Prepaid(Option<Reservation>, bool, bool);

impl<A: Agent> JobPart<A> for Prepaid {
    const PREPAID: bool = true;

    fn take_reservation(&mut self) -> Option<Reservation> {
        self.0.take()
    }

    fn preassigned_id(&self) -> Option<overseer_supervisor::EventId> {
        None
    }

    /// A sample is asked once: a vote re-draws a failed sample itself, within its cap.
    fn retried_here(&self) -> bool {
        false
    }

    fn into_extras(self) -> Option<Box<JobExtras<A>>> {
        let Prepaid(_, tracked, watched) = self;
        match judged_later_extras(tracked) {
            Some(mut extras) => {
                extras.sample = true;
                Some(extras)
            }
            None => watched.then(|| {
                Box::new(JobExtras {
                    sample: true,
                    ..JobExtras::new()
                })
            }),
        }
    }
}

/// The fewest samples that could decide a vote from here (a sample raises a lead by one at
/// most, and the leader's path is the shortest), within what the cap leaves: how many a round
/// draws at once, so that no sample is drawn after the decision.
fn fewest_to_decide(rule: VoteRule, top: u32, second: u32, votes: u32, samples: u32) -> u32 {
    let left = rule.worst_case_samples().saturating_sub(samples);
    let lead = top - second;
    let needed = match rule {
        VoteRule::FirstToAheadBy { k, .. } => k.saturating_sub(lead),
        VoteRule::Majority { samples: n, .. } => {
            // Decided once the lead exceeds the votes still to come: x more for the leader
            // when lead + x > to_come - x.
            let to_come = n.saturating_sub(votes);
            (to_come.saturating_sub(lead) / 2 + 1).min(to_come)
        }
        _ => 1,
    };
    needed.max(1).min(left)
}

/// The vote's counts so far, for [`fewest_to_decide`].
fn round_size<K: Eq + std::hash::Hash + Clone>(vote: &Vote<K>) -> u32 {
    let top = vote.leader().map_or(0, |(key, _)| vote.votes_for(key));
    let lead = vote.leader().map_or(0, |(_, lead)| lead);
    fewest_to_decide(
        vote.rule(),
        top,
        top - lead,
        vote.votes_counted(),
        vote.samples_used(),
    )
}

/// What a vote has seen so far, apart from the tally.
struct Ballots<O> {
    /// The first sample of each answer.
    outputs: HashMap<String, O>,
    /// The confidence each counted sample claimed, with its answer.
    claims: Vec<(f64, String, EventId)>,
    usage: Usage,
}

impl<A: Agent> AgentRef<A> {
    /// Asks this agent the same task several times and returns the answer a vote decides on:
    /// [`VoteRule::majority`] of n, or MAKER's [`VoteRule::first_to_ahead_by`] k (keep sampling
    /// until one answer leads every other by k). Samples are drawn in rounds of the fewest
    /// that could decide the vote (k at first for first-to-ahead-by-k, then one per vote
    /// missing), concurrently within a round, so no sample is drawn after the decision and
    /// never more than the cap.
    ///
    /// Each sample is an ask of its own (its breaker admits it, its validators judge it, its
    /// event is published). A sample that fails the red flags, the answer key, or fails
    /// outright is not counted as a vote: it is published ([`Finding::RedFlagged`]), counted
    /// as a failure by the (agent, task type) breaker, and drawn again within the cap.
    ///
    /// Before the first sample, the vote reserves its worst case in the budget: the cap's
    /// number of the agent's estimate ([`Agent::estimate`], else
    /// [`AgentSpec::default_estimate`](crate::AgentSpec::default_estimate)), one reservation
    /// per sample, all or none. Each sample takes one, whose reported spend is committed when
    /// it ends; the ones not used are released when the vote ends. So concurrent votes can
    /// never overshoot a limit: a vote that cannot reserve its worst case is refused before it
    /// draws anything. The end is published ([`Finding::Voted`]) with the decision, the margin
    /// and the samples used; with a confidence tracker, each counted sample is recorded as
    /// accepted if it voted for the winner.
    ///
    /// # Errors
    /// * The refusals of [`ask`](Self::ask) before the first sample
    ///   ([`AskError::BudgetExceeded`] when the worst case does not fit, an open breaker, a
    ///   closed system...), and later those of a sample's ask that did not reach the agent
    ///   (the breaker opened by red flags, a shutdown): the vote ends there;
    /// * [`AskError::Failed`] with [`AgentError::Failed`] when the cap was reached (or a
    ///   majority tied) without a decision: a retry may decide.
    ///
    /// # Cancel safety
    /// Dropping the future gives up the samples in progress, as dropping [`ask`](Self::ask)'s
    /// does (a sample still running runs on and its spend is committed); the reservations not
    /// used by a sample are released.
    ///
    /// # Panics
    /// As [`ask`](Self::ask).
    pub async fn ask_voting(
        &self,
        task: A::Task,
        spec: &VoteSpec,
    ) -> Result<Voted<A::Output>, AskError>
    where
        A::Task: Clone,
        A::Output: AsRef<str>,
    {
        let task_type = A::task_type(&task);
        let id = self.slot().shared.ids.next();
        let cap = spec.rule.worst_case_samples();
        let mut prepaid = self.reserve_samples(&task, id, cap)?;
        let mut vote = Vote::new(spec.rule).map_err(|error| self.vote_failed(&error))?;
        let mut ballots = Ballots {
            outputs: HashMap::new(),
            claims: Vec::new(),
            usage: Usage::default(),
        };
        let tracked = tracks_confidence(self.slot());
        let watched = self
            .slot()
            .shared
            .semantic
            .as_ref()
            .is_some_and(|watch| watch.watches_loops());
        let mut state = VoteState::Continue;
        while state == VoteState::Continue {
            let round = (0..round_size(&vote)).map(|_| {
                let reservation = prepaid.pop().flatten();
                self.ask_answer(task.clone(), Prepaid(reservation, tracked, watched))
            });
            for (sample, answer) in futures::future::join_all(round).await {
                ballots.usage += answer.usage;
                let output = answer.outcome.map_err(|error| *error);
                state =
                    self.count_sample(spec, &mut vote, &mut ballots, sample, task_type, output)?;
            }
        }
        // The reservations not taken are released here.
        drop(prepaid);
        self.conclude_vote(id, task_type, cap, &vote, state, ballots)
    }

    /// One reservation of the task's estimate per sample, or none if one does not fit; `None`s
    /// without a budget.
    fn reserve_samples(
        &self,
        task: &A::Task,
        id: EventId,
        cap: u32,
    ) -> Result<Vec<Option<Reservation>>, AskError> {
        if let Some(refusal) = self.slot().refusal() {
            return Err(refusal);
        }
        if self.slot().shared.budget.is_none() {
            return Ok((0..cap).map(|_| None).collect());
        }
        let reservations = self.reserve_many(task, id, cap as usize)?;
        Ok(reservations.into_iter().map(Some).collect())
    }

    /// Counts one sample's answer (a vote, or a red flag); `Err` ends the vote with a sample's
    /// refusal.
    fn count_sample(
        &self,
        spec: &VoteSpec,
        vote: &mut Vote<String>,
        ballots: &mut Ballots<A::Output>,
        sample: EventId,
        task_type: &'static str,
        output: Result<A::Output, AskError>,
    ) -> Result<VoteState<String>, AskError>
    where
        A::Output: AsRef<str>,
    {
        let read = match output {
            Ok(output) => {
                let read = spec
                    .red_flags
                    .check(output.as_ref())
                    .and_then(|()| spec.key.key(output.as_ref()));
                if read.is_err() {
                    // A red flag is the sample's final verdict.
                    judged(self.slot(), sample, task_type, &output, false);
                }
                read.map(|key| (key, output))
            }
            // Failed, crashed or timed out: counted by the breaker already, not a vote.
            Err(error) if error.reached_agent() => {
                return Ok(vote.observe_red_flag(RedFlag::new(
                    RedFlagKind::Predicate,
                    format!("the sample failed: {error}"),
                )))
            }
            Err(refused) => return Err(refused),
        };
        match read {
            Ok((key, output)) => {
                if let Some(confidence) = confidence_of(self.slot(), &output) {
                    ballots.claims.push((confidence, key.clone(), sample));
                }
                ballots.outputs.entry(key.clone()).or_insert(output);
                Ok(vote.observe(key))
            }
            Err(flag) => {
                count_failure(self.slot(), sample, task_type);
                let finding = Finding::RedFlagged {
                    check: flag.kind.to_string(),
                    detail: flag.detail.clone(),
                };
                publish(self.slot(), sample, task_type, finding);
                Ok(vote.observe_red_flag(flag))
            }
        }
    }

    /// Publishes the vote's end and returns its winner.
    fn conclude_vote(
        &self,
        id: EventId,
        task_type: &'static str,
        cap: u32,
        vote: &Vote<String>,
        state: VoteState<String>,
        mut ballots: Ballots<A::Output>,
    ) -> Result<Voted<A::Output>, AskError> {
        let red_flags = u32::try_from(vote.red_flags().len()).unwrap_or(u32::MAX);
        let (decided, winner, margin) = match &state {
            VoteState::Decided { winner, margin, .. } => (true, Some(winner.clone()), *margin),
            VoteState::Exhausted { leader, margin } => (false, leader.clone(), *margin),
            _ => (false, None, 0),
        };
        let finding = Finding::Voted {
            decided,
            winner: winner.clone(),
            margin,
            samples_used: vote.samples_used(),
            red_flags,
            cap,
        };
        publish(self.slot(), id, task_type, finding);
        if decided {
            for (confidence, key, sample) in &ballots.claims {
                let accepted = winner.as_ref() == Some(key);
                record_judgement(self.slot(), *sample, task_type, *confidence, accepted);
            }
        }
        match (decided, winner) {
            (true, Some(winner)) => match ballots.outputs.remove(&winner) {
                Some(output) => Ok(Voted {
                    output,
                    winner,
                    margin,
                    samples_used: vote.samples_used(),
                    red_flags,
                    usage: ballots.usage,
                }),
                None => Err(self.undecided(cap, Some(&winner), margin)),
            },
            (_, leader) => Err(self.undecided(cap, leader.as_deref(), margin)),
        }
    }

    fn undecided(&self, cap: u32, leader: Option<&str>, margin: u32) -> AskError {
        let leader = leader.map_or_else(|| "no answer".to_owned(), |key| format!("{key:?}"));
        AskError::Failed {
            agent: self.name().clone(),
            error: AgentError::failed(format!(
                "the vote was not decided within {cap} samples (leader {leader}, by {margin})"
            )),
        }
    }

    fn vote_failed(&self, error: &VoteError) -> AskError {
        AskError::Failed {
            agent: self.name().clone(),
            error: AgentError::permanent(error.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_to_ahead_by_k_draws_k_then_what_the_lead_misses() {
        let rule = VoteRule::first_to_ahead_by(3, 10);
        assert_eq!(fewest_to_decide(rule, 0, 0, 0, 0), 3);
        assert_eq!(fewest_to_decide(rule, 2, 1, 3, 3), 2);
        assert_eq!(fewest_to_decide(rule, 4, 2, 6, 8), 1);
        // Never past the cap.
        assert_eq!(fewest_to_decide(rule, 1, 1, 2, 9), 1);
        assert_eq!(fewest_to_decide(rule, 1, 1, 2, 10), 0);
    }

    #[test]
    fn majority_draws_a_majority_then_what_could_still_decide() {
        let rule = VoteRule::majority(5);
        assert_eq!(fewest_to_decide(rule, 0, 0, 0, 0), 3);
        assert_eq!(fewest_to_decide(rule, 2, 1, 3, 3), 1);
        assert_eq!(fewest_to_decide(rule, 1, 1, 2, 2), 2);
    }

    /// Drawing rounds of `fewest_to_decide` never draws a sample after the decision, whatever
    /// the answers.
    #[test]
    fn no_round_draws_past_the_decision() {
        let rules = [
            VoteRule::first_to_ahead_by(2, 9),
            VoteRule::first_to_ahead_by(3, 12),
            VoteRule::majority(5),
            VoteRule::Majority {
                samples: 4,
                max_samples: 7,
            },
        ];
        for rule in rules {
            // Every sequence of answers from {a, b, red flag} up to the cap, by a counter.
            let cap = rule.worst_case_samples();
            for seed in 0..3u64.pow(cap.min(9)) {
                let mut vote: Vote<u8> = Vote::new(rule).expect("valid");
                let mut digits = seed;
                let mut state = VoteState::Continue;
                'vote: while state == VoteState::Continue {
                    let round = round_size(&vote);
                    assert!(round >= 1, "{rule:?}: an empty round");
                    for drawn in 0..round {
                        assert_eq!(
                            state,
                            VoteState::Continue,
                            "{rule:?}: sample {drawn} of the round came after the decision"
                        );
                        let answer = digits % 3;
                        digits /= 3;
                        state = match answer {
                            2 => vote.observe_red_flag(RedFlag::new(RedFlagKind::Parse, "x")),
                            a => vote.observe(u8::try_from(a).expect("small")),
                        };
                        if vote.samples_used() > cap {
                            panic!("{rule:?}: past the cap");
                        }
                        if state != VoteState::Continue && drawn + 1 < round {
                            panic!(
                                "{rule:?}: decided with {} samples of the round left",
                                round - drawn - 1
                            );
                        }
                        if state != VoteState::Continue {
                            break 'vote;
                        }
                    }
                }
            }
        }
    }
}
