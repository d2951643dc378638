//! A cohort of asks under one fan-in barrier: await all, any or a quorum of them, with a
//! deadline, and go on with typed, possibly partial or degraded, results.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use overseer_fanout::{
    degrade, Barrier, BarrierError, BarrierSpec, Criticality, Decision, Mode, Observed, OnDeadline,
    Reached, Settled,
};
use overseer_supervisor::{ChildPath, EventId};
use tokio::time::Instant;

use crate::agent::Agent;
use crate::agent_ref::AgentRef;
use crate::cohort_event::{CohortDecision, CohortEvent, CohortStep};
use crate::error::AskError;
use crate::event::SystemEvent;
use crate::name::AgentName;
use crate::shared::Shared;
use crate::slot::{Answer, JobExtras, JobPart};

/// What one member of a [`CohortOutcome`] came to: [`Ok`](Settled::Ok) with its output,
/// [`Failed`](Settled::Failed) with its ask's error, [`Replaced`](Settled::Replaced) by its
/// declared default (an optional member that failed or did not answer, with why), or
/// [`NotAnswered`](Settled::NotAnswered) (still running at the decision, and cancelled, or at
/// the deadline).
pub type MemberResult<O> = Settled<O, AskError>;

/// A member's ask, made when the cohort runs: its timeout and its preassigned event id in,
/// its result and its agent's path out.
pub(crate) type MemberAsk<O> = Box<
    dyn FnOnce(Duration, EventId) -> BoxFuture<'static, (Result<O, AskError>, Option<ChildPath>)>
        + Send,
>;

struct Member<O> {
    agent: AgentName,
    criticality: Criticality<O>,
    ask: MemberAsk<O>,
}

/// A cohort of asks, all with outputs of type `O`, awaited under one barrier.
///
/// Members are ordinary asks ([`AgentRef::ask_within`] under the cohort's deadline): to
/// different agents, to one agent with different tasks, or to a pool built in a loop. Each
/// gets its agent's normal handling (breaker, budget, retry policy, supervision), so a member
/// whose agent crashes fails as that ask would, counted once, and its agent restarts as
/// usual.
///
/// | mode | decided when | impossible (decided at once) when |
/// |---|---|---|
/// | [`all`](Self::all) | every member answered, or was replaced by its default | a member (not optional) failed |
/// | [`any`](Self::any) | one member answered | none can answer any more |
/// | [`quorum(n)`](Self::quorum) | n members answered | fewer than n can still answer |
///
/// A default stands in for an optional member's answer in an `all` cohort; it is never a vote
/// in `any` or `quorum`. The deadline is [`run_within`](Self::run_within)'s; what the cohort
/// returns when its goal was not reached by it, or could not be, is its
/// [`on_deadline`](Self::on_deadline) policy's (return what arrived, by default, or fail).
///
/// When the barrier is decided the asks still running are dropped, settled as any dropped
/// ask is (a queued task never runs and gives back its reservation, a running handler
/// finishes uncounted by the breaker), unless [`cancel_rest(false)`](Self::cancel_rest).
///
/// ```
/// use overseer_agent::{Agent, AgentContext, AgentError, AgentSpec, Cohort, System};
/// use overseer_supervisor::SupervisorSpec;
/// use std::time::Duration;
///
/// struct Doubler;
/// impl Agent for Doubler {
///     type Task = u64;
///     type Output = u64;
///     async fn handle(&mut self, _: &mut AgentContext, n: u64) -> Result<u64, AgentError> {
///         Ok(2 * n)
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let system = System::builder().build()?;
/// system.start(SupervisorSpec::one_for_one("root")
///     .child(system.agent(AgentSpec::new("doubler", || Doubler))?)).await?;
/// let doubler = system.agent_ref::<Doubler>("doubler")?;
/// let outcome = Cohort::quorum(2)
///     .member(&doubler, 1)
///     .member(&doubler, 2)
///     .optional(&doubler, 3, 0)
///     .run_within(Duration::from_secs(5))
///     .await?;
/// assert!(outcome.decision.reached());
/// assert!(outcome.answered() >= 2);
/// system.shutdown(Duration::from_secs(5)).await?;
/// # Ok(())
/// # }
/// ```
pub struct Cohort<O> {
    mode: Mode,
    members: Vec<Member<O>>,
    on_deadline: OnDeadline,
    cancel_rest: bool,
    shared: Option<Arc<Shared>>,
}

impl<O> fmt::Debug for Cohort<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cohort")
            .field("mode", &self.mode)
            .field(
                "members",
                &self.members.iter().map(|m| &m.agent).collect::<Vec<_>>(),
            )
            .field("on_deadline", &self.on_deadline)
            .field("cancel_rest", &self.cancel_rest)
            .finish()
    }
}

impl<O: Send + 'static> Cohort<O> {
    fn new(mode: Mode) -> Self {
        Self {
            mode,
            members: Vec::new(),
            on_deadline: OnDeadline::default(),
            cancel_rest: true,
            shared: None,
        }
    }

    /// A cohort decided when every member has answered (or been replaced by its default).
    pub fn all() -> Self {
        Self::new(Mode::All)
    }

    /// A cohort decided by the first member that answers.
    pub fn any() -> Self {
        Self::new(Mode::Any)
    }

    /// A cohort decided when `n` members answered. `n` must be between 1 and the number of
    /// members ([`CohortError::Invalid`] from [`run_within`](Self::run_within) otherwise).
    pub fn quorum(n: usize) -> Self {
        Self::new(Mode::Quorum(n))
    }

    /// Adds a critical member: `task` asked of `agent`. Its failure fails an `all` cohort.
    pub fn member<A: Agent<Output = O>>(self, agent: &AgentRef<A>, task: A::Task) -> Self {
        self.push(agent, task, Criticality::Critical)
    }

    /// Adds an optional member: `task` asked of `agent`, whose failure (or silence at the
    /// decision) is replaced by `default` and marks the outcome degraded.
    pub fn optional<A: Agent<Output = O>>(
        self,
        agent: &AgentRef<A>,
        task: A::Task,
        default: O,
    ) -> Self {
        self.push(agent, task, Criticality::Optional { default })
    }

    /// What the cohort returns when its goal was not reached by the deadline, or became
    /// impossible: [`OnDeadline::Partial`] (the default) returns the outcome with what
    /// arrived; [`OnDeadline::Fail`] returns [`CohortError::DeadlineReached`] or
    /// [`CohortError::Impossible`].
    pub fn on_deadline(mut self, policy: OnDeadline) -> Self {
        self.on_deadline = policy;
        self
    }

    /// Whether the asks still running when the barrier is decided are dropped (`true`, the
    /// default: nobody needs them) or awaited up to the deadline, their results recorded in
    /// the outcome (`false`).
    pub fn cancel_rest(mut self, cancel: bool) -> Self {
        self.cancel_rest = cancel;
        self
    }

    /// The number of members so far.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether there are no members yet.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    fn push<A: Agent<Output = O>>(
        self,
        agent: &AgentRef<A>,
        task: A::Task,
        criticality: Criticality<O>,
    ) -> Self {
        let asked = agent.clone();
        let ask: MemberAsk<O> = Box::new(move |timeout, id| {
            Box::pin(async move {
                let result = asked
                    .ask_traced(task, timeout, Preassigned { id }, Answer::into_outcome)
                    .await;
                (result, asked.slot().path().cloned())
            })
        });
        self.push_ask(agent, criticality, ask)
    }

    /// Adds a member of `agent` asked by `ask` (given the cohort's timeout and the ask's id).
    pub(crate) fn push_ask<A: Agent<Output = O>>(
        mut self,
        agent: &AgentRef<A>,
        criticality: Criticality<O>,
        ask: MemberAsk<O>,
    ) -> Self {
        if self.shared.is_none() {
            self.shared = Some(Arc::clone(&agent.slot().shared));
        }
        self.members.push(Member {
            agent: agent.name().clone(),
            criticality,
            ask,
        });
        self
    }

    /// Asks every member at once and waits for the barrier's decision, at most `timeout`.
    ///
    /// # Errors
    /// * [`CohortError::Invalid`]: no members, or a quorum of 0 or above the member count;
    /// * with [`OnDeadline::Fail`], [`CohortError::DeadlineReached`] (the goal not reached by
    ///   the deadline) or [`CohortError::Impossible`] (it could no longer be reached), each
    ///   naming every member without an answer and why.
    ///
    /// A member's failure is no error of the cohort's: it is in the outcome.
    ///
    /// # Cancel safety
    /// Dropping the future drops the member asks still running, as the decision does (each
    /// is settled as a dropped ask is); no decision event is published.
    pub async fn run_within(self, timeout: Duration) -> Result<CohortOutcome<O>, CohortError> {
        let Self {
            mode,
            members,
            on_deadline,
            cancel_rest,
            shared,
        } = self;
        let started = Instant::now();
        let deadline = overseer_supervisor::deadline_after(started, timeout);
        let spec = BarrierSpec::new(mode, members.len(), deadline).on_deadline(on_deadline);
        let mut barrier = Barrier::new(spec)?;
        // Not empty: the barrier has at least one member, so one set the system.
        let Some(shared) = shared else {
            return Err(CohortError::Invalid(BarrierError::EmptyCohort));
        };
        let cohort = shared.ids.next();
        let mut agents = Vec::with_capacity(members.len());
        let mut asks = Vec::with_capacity(members.len());
        let mut criticalities = Vec::with_capacity(members.len());
        let mut running = FuturesUnordered::new();
        for (index, member) in members.into_iter().enumerate() {
            let id = shared.ids.next();
            let ask = (member.ask)(timeout, id);
            running.push(async move { (index, ask.await) });
            agents.push(member.agent);
            asks.push(id);
            criticalities.push(member.criticality);
        }
        let optional: Vec<bool> = criticalities
            .iter()
            .map(|c| matches!(c, Criticality::Optional { .. }))
            .collect();
        let mut run = Run {
            shared: &shared,
            cohort,
            barrier: &mut barrier,
            agents: &agents,
            asks: &asks,
            optional: &optional,
            results: (0..agents.len()).map(|_| None).collect(),
        };
        let sleep = tokio::time::sleep_until(deadline);
        let mut sleep = std::pin::pin!(sleep);
        let mut decided_by = None;
        // Biased to the deadline: a member whose ask ends at the deadline's instant is not
        // answered, and no barrier waits past it.
        let decision = loop {
            tokio::select! {
                biased;
                () = &mut sleep => break run.barrier.decide(deadline),
                next = running.next() => {
                    let Some((index, (result, path))) = next else {
                        break run.barrier.decide(Instant::now());
                    };
                    run.ended(index, result, path);
                    let decision = run.barrier.decide(Instant::now());
                    if decision.is_final() {
                        decided_by = Some(asks[index]);
                        break decision;
                    }
                }
            }
        };
        if !cancel_rest && !matches!(decision, Decision::DeadlineReached(_)) {
            loop {
                tokio::select! {
                    biased;
                    () = &mut sleep => break,
                    next = running.next() => match next {
                        Some((index, (result, path))) => run.ended(index, result, path),
                        None => break,
                    },
                }
            }
        }
        // What still runs is dropped here: each ask settled as a dropped ask is.
        drop(running);
        let decision = match decision {
            Decision::Decided(Reached::Complete) => CohortDecision::Complete,
            Decision::Decided(Reached::Any) => CohortDecision::Any,
            Decision::Decided(Reached::Quorum) => CohortDecision::Quorum,
            Decision::DeadlineReached(OnDeadline::Partial) => CohortDecision::DeadlinePartial,
            Decision::DeadlineReached(OnDeadline::Fail) => CohortDecision::DeadlineFail,
            // Never returned by a decided barrier; counted as impossible to be total.
            Decision::Impossible | Decision::Continue => CohortDecision::Impossible,
        };
        let answered = run.barrier.answered();
        let settled = degrade(criticalities.into_iter().zip(run.results));
        let degraded = settled.is_degraded();
        let members: Vec<CohortMember<O>> = settled
            .members
            .into_iter()
            .zip(agents)
            .zip(asks.iter().copied())
            .enumerate()
            .map(|(index, ((result, agent), ask))| CohortMember {
                index,
                agent,
                ask,
                result,
            })
            .collect();
        let missing: Vec<usize> = members
            .iter()
            .filter(|member| !matches!(member.result, Settled::Ok(_)))
            .map(|member| member.index)
            .collect();
        if shared.has_subscribers() {
            let meta = shared.meta_at(cohort, decided_by, None, Instant::now());
            shared.publish(SystemEvent::Cohort(CohortEvent {
                id: meta.id,
                caused_by: meta.caused_by,
                elapsed: meta.elapsed,
                path: meta.path,
                cohort,
                step: CohortStep::Decided {
                    decision,
                    members: asks,
                    answered,
                    missing: missing.clone(),
                },
            }));
        }
        let outcome = CohortOutcome {
            cohort,
            decision,
            members,
            degraded,
            missing,
        };
        match (decision, on_deadline) {
            (CohortDecision::DeadlineFail, _) => Err(CohortError::DeadlineReached {
                after: timeout,
                missing: outcome.missing_members(),
            }),
            (CohortDecision::Impossible, OnDeadline::Fail) => Err(CohortError::Impossible {
                missing: outcome.missing_members(),
            }),
            _ => Ok(outcome),
        }
    }
}

/// The state of one run: the barrier, and each member's result as it comes.
struct Run<'r, O> {
    shared: &'r Shared,
    cohort: EventId,
    barrier: &'r mut Barrier,
    agents: &'r [AgentName],
    asks: &'r [EventId],
    /// Whether each member is optional.
    optional: &'r [bool],
    results: Vec<Option<Result<O, AskError>>>,
}

impl<O> Run<'_, O> {
    /// Member `index`'s ask ended: the barrier counts it, its event is published.
    fn ended(&mut self, index: usize, result: Result<O, AskError>, path: Option<ChildPath>) {
        let observed = match (&result, self.optional[index]) {
            (Ok(_), _) => Observed::Answered,
            (Err(_), true) => Observed::Replaced,
            // A member's ask already made every attempt its agent's policy allows.
            (Err(_), false) => Observed::Failed { last: true },
        };
        // Each member ends once, and its index is its own: the barrier takes it.
        let _ = self.barrier.observe(index, observed);
        if self.shared.has_subscribers() {
            self.publish(index, &result, path);
        }
        self.results[index] = Some(result);
    }

    /// Publishes member `index`'s end.
    fn publish(&self, index: usize, result: &Result<O, AskError>, path: Option<ChildPath>) {
        let ask = self.asks[index];
        let meta = self.shared.meta(Some(ask), path);
        self.shared.publish(SystemEvent::Cohort(CohortEvent {
            id: meta.id,
            caused_by: meta.caused_by,
            elapsed: meta.elapsed,
            path: meta.path,
            cohort: self.cohort,
            step: CohortStep::Member {
                index,
                agent: self.agents[index].clone(),
                ask,
                error: result.as_ref().err().map(|error| error.kind().to_string()),
                answered: self.barrier.answered(),
            },
        }));
    }
}

/// A member's ask with the event id the cohort assigned it, so that the cohort's events can
/// name it before it ends. Otherwise a plain ask: it goes round its agent's retry loop, if
/// any (whose first attempt takes the id, and later attempts ids of their own).
struct Preassigned {
    id: EventId,
}

impl<A: Agent> JobPart<A> for Preassigned {
    fn preassigned_id(&self) -> Option<EventId> {
        Some(self.id)
    }

    fn retried_here(&self) -> bool {
        true
    }

    fn into_extras(self) -> Option<Box<JobExtras<A>>> {
        None
    }
}

/// One member of a [`CohortOutcome`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CohortMember<O> {
    /// Its index: the order it was added in.
    pub index: usize,
    /// Its agent.
    pub agent: AgentName,
    /// Its ask's id: its [`AskEvent`](crate::AskEvent)'s (its first attempt's, for an agent
    /// with a retry policy).
    pub ask: EventId,
    /// What it came to.
    pub result: MemberResult<O>,
}

/// What a cohort came to: the decision and every member's result.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CohortOutcome<O> {
    /// The cohort's id: its decision event's.
    pub cohort: EventId,
    /// How the barrier decided.
    pub decision: CohortDecision,
    /// Every member, by index.
    pub members: Vec<CohortMember<O>>,
    /// Whether an optional member was replaced by its default.
    pub degraded: bool,
    /// The members without an answer of their own (failed, replaced or not answered), by
    /// index.
    pub missing: Vec<usize>,
}

impl<O> CohortOutcome<O> {
    /// How many members answered.
    pub fn answered(&self) -> usize {
        self.members
            .iter()
            .filter(|member| matches!(member.result, Settled::Ok(_)))
            .count()
    }

    /// The members' values by index: their outputs, or the defaults standing in for them
    /// (`None` for a critical member without an answer).
    pub fn values(&self) -> impl Iterator<Item = Option<&O>> + '_ {
        self.members.iter().map(|member| member.result.value())
    }

    /// The outputs of the members that answered, by index.
    pub fn outputs(&self) -> impl Iterator<Item = (usize, &O)> + '_ {
        self.members
            .iter()
            .filter_map(|member| match &member.result {
                Settled::Ok(output) => Some((member.index, output)),
                _ => None,
            })
    }

    /// The members without an answer of their own, and why.
    pub fn missing_members(&self) -> Vec<MissingMember> {
        self.members
            .iter()
            .filter_map(|member| {
                let (error, replaced) = match &member.result {
                    Settled::Ok(_) => return None,
                    Settled::Failed(error) => (Some(error.clone()), false),
                    Settled::NotAnswered => (None, false),
                    Settled::Replaced { why, .. } => match why {
                        overseer_fanout::Missing::Failed(error) => (Some(error.clone()), true),
                        overseer_fanout::Missing::NotAnswered => (None, true),
                    },
                };
                Some(MissingMember {
                    index: member.index,
                    agent: member.agent.clone(),
                    error,
                    replaced,
                })
            })
            .collect()
    }
}

/// A member without an answer of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MissingMember {
    /// Its index in the cohort.
    pub index: usize,
    /// Its agent.
    pub agent: AgentName,
    /// Its ask's error; `None` if it had not answered.
    pub error: Option<AskError>,
    /// Whether its declared default stood in for it.
    pub replaced: bool,
}

/// Why a cohort returned no outcome.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CohortError {
    /// The cohort cannot run: no members, or a quorum of 0 or above the member count.
    #[error("invalid cohort: {0}")]
    Invalid(#[from] BarrierError),
    /// With [`OnDeadline::Fail`]: the deadline passed before the goal was reached.
    #[error("the cohort's goal was not reached within {after:?}: {} members missing", missing.len())]
    DeadlineReached {
        /// The cohort's timeout.
        after: Duration,
        /// Every member without an answer, and why.
        missing: Vec<MissingMember>,
    },
    /// With [`OnDeadline::Fail`]: the goal could no longer be reached.
    #[error("the cohort's goal can no longer be reached: {} members missing", missing.len())]
    Impossible {
        /// Every member without an answer, and why.
        missing: Vec<MissingMember>,
    },
}
