//! The escalation ladder in the call path: "don't just retry: tell the agent what went wrong,
//! then try a different agent, then decompose, then a stronger model".
//!
//! [`Escalation`] holds the rungs a user composes, each with its action; the decision of which
//! rung comes next is the pure [`Ladder::next`]. [`AgentRef::ask_escalating`] climbs it, and
//! [`AgentRef::ask_with_fallback`] is the ladder of other agents.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use overseer_breaker::State as BreakerState;
use overseer_retry::{
    ClassSet, Classify, Conditions, ErrorClass, Ladder, LadderState, Next, RetryPolicy, Rung,
    StopReason,
};
use tokio::time::Instant;

use crate::agent::Agent;
use crate::agent_ref::{AgentRef, Answered};
use crate::error::{AgentError, AskError, AttemptRecord};
use crate::feedback::Feedback;
use crate::name::AgentName;
use crate::retry_event::RetryStep;
use crate::retry_loop::{Attempts, Failed, Notice, Tried};
use crate::retry_plan::CopyTask;
use crate::usage::Usage;

type Split<A> = Arc<dyn Fn(&<A as Agent>::Task) -> Vec<<A as Agent>::Task> + Send + Sync>;
type Merge<A> = Arc<
    dyn Fn(Vec<<A as Agent>::Output>) -> Result<<A as Agent>::Output, AgentError> + Send + Sync,
>;
type Upgrade<A> = Arc<dyn Fn(&<A as Agent>::Task, &Feedback) -> <A as Agent>::Task + Send + Sync>;

/// What a rung does.
enum Action<A: Agent> {
    /// Ask the same agent again, told why the last attempt failed.
    SameAgent,
    /// Ask another agent of the same type.
    OtherAgent(AgentRef<A>),
    /// Split the task, ask the parts, merge the answers.
    Decompose {
        split: Split<A>,
        merge: Merge<A>,
        concurrent: bool,
    },
    /// Rewrite the task for a stronger model and ask it of this agent or another.
    Upgrade {
        upgrade: Upgrade<A>,
        target: Option<AgentRef<A>>,
    },
}

impl<A: Agent> Clone for Action<A> {
    fn clone(&self) -> Self {
        match self {
            Self::SameAgent => Self::SameAgent,
            Self::OtherAgent(agent) => Self::OtherAgent(agent.clone()),
            Self::Decompose {
                split,
                merge,
                concurrent,
            } => Self::Decompose {
                split: Arc::clone(split),
                merge: Arc::clone(merge),
                concurrent: *concurrent,
            },
            Self::Upgrade { upgrade, target } => Self::Upgrade {
                upgrade: Arc::clone(upgrade),
                target: target.clone(),
            },
        }
    }
}

/// An escalation ladder of an agent type: rungs climbed in the order they were added, after
/// the first ask failed, until one answers (see [`AgentRef::ask_escalating`]).
///
/// | rung | what it asks | climbed on, by default |
/// |---|---|---|
/// | [`same_agent`](Self::same_agent) | the same agent and task again, the failure in [`AgentContext::previous_failure`](crate::AgentContext::previous_failure), by the rung's policy (else the agent's, else once; an invalid output is retried here) | transient, rate-limited, invalid output |
/// | [`other_agent`](Self::other_agent) | another agent of the type, skipped while its breaker for the task type is open | the classes named |
/// | [`decompose`](Self::decompose) | the parts of the user's split, concurrently ([`decompose_in_order`](Self::decompose_in_order): one after another), merged by the user's merger | every class but those that stop escalation |
/// | [`stronger_model`](Self::stronger_model) | the task rewritten by the user's upgrade (given the failure), of this agent or another | every class but those that stop escalation |
///
/// Replay-unsafe, cancelled and budget-exhausted failures stop the ladder; so does the kill
/// switch. Every rung runs within the first ask's one deadline.
///
/// ```
/// use overseer_agent::{Agent, AgentContext, AgentError, Escalation};
/// use overseer_agent::retry::ClassSet;
///
/// struct Writer;
/// impl Agent for Writer {
///     type Task = String;
///     type Output = String;
///     async fn handle(&mut self, ctx: &mut AgentContext, task: String) -> Result<String, AgentError> {
///         match ctx.previous_failure() {
///             Some(failure) => Ok(format!("{task}, fixed after: {}", failure.message())),
///             None => Err(AgentError::InvalidOutput("no title".into())),
///         }
///     }
/// }
///
/// let ladder = Escalation::<Writer>::new()
///     .same_agent("told-why")
///     .decompose(
///         "halves",
///         |task: &String| task.split(" and ").map(str::to_string).collect(),
///         |parts: Vec<String>| Ok(parts.join(" and ")),
///     )
///     .stronger_model("bigger", |task: &String, _failure| format!("[large] {task}"), None);
/// assert_eq!(ladder.ladder().rungs().len(), 3);
/// ```
pub struct Escalation<A: Agent> {
    ladder: Ladder,
    actions: Vec<Action<A>>,
}

impl<A: Agent> Clone for Escalation<A> {
    fn clone(&self) -> Self {
        Self {
            ladder: self.ladder.clone(),
            actions: self.actions.clone(),
        }
    }
}

impl<A: Agent> fmt::Debug for Escalation<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Escalation")
            .field("ladder", &self.ladder)
            .finish_non_exhaustive()
    }
}

impl<A: Agent> Default for Escalation<A> {
    fn default() -> Self {
        Self::new()
    }
}

impl<A: Agent> Escalation<A> {
    /// A ladder without rungs: only the first ask.
    pub fn new() -> Self {
        Self {
            ladder: Ladder::default(),
            actions: Vec::new(),
        }
    }

    fn rung(mut self, rung: Rung, action: Action<A>) -> Self {
        let mut rungs = self.ladder.rungs().to_vec();
        rungs.push(rung);
        self.ladder = Ladder::new(rungs);
        self.actions.push(action);
        self
    }

    /// A rung named `name` that asks the same agent again, with the failure fed back to it
    /// ([`AgentContext::previous_failure`](crate::AgentContext::previous_failure)), by the
    /// agent's retry policy for the task type (once without one).
    pub fn same_agent(self, name: impl Into<String>) -> Self {
        self.rung(Rung::same_agent_with_feedback(name), Action::SameAgent)
    }

    /// As [`same_agent`](Self::same_agent), by `policy` (its attempts count from the rung's
    /// first).
    pub fn same_agent_with_policy(self, name: impl Into<String>, policy: RetryPolicy) -> Self {
        let rung = Rung::same_agent_with_feedback(name).with_policy(policy);
        self.rung(rung, Action::SameAgent)
    }

    /// A rung named `name` that asks `agent` (of the same type), climbed on failures of the
    /// classes `on`, and skipped while `agent`'s breaker for the task type is open.
    pub fn other_agent(self, name: impl Into<String>, agent: AgentRef<A>, on: ClassSet) -> Self {
        let rung = Rung::other_agent(name, agent.name().to_string(), on);
        self.rung(rung, Action::OtherAgent(agent))
    }

    /// A rung named `name` that splits the task with `split`, asks the parts of the same agent
    /// concurrently, and merges their outputs with `merge`. The first part to fail fails the
    /// rung; a merger's error fails it as the agent's [`AskError::Failed`].
    pub fn decompose(
        self,
        name: impl Into<String>,
        split: impl Fn(&A::Task) -> Vec<A::Task> + Send + Sync + 'static,
        merge: impl Fn(Vec<A::Output>) -> Result<A::Output, AgentError> + Send + Sync + 'static,
    ) -> Self {
        self.decomposition(name, Arc::new(split), Arc::new(merge), true)
    }

    /// As [`decompose`](Self::decompose), the parts asked one after another (a part that
    /// fails stops the rest).
    pub fn decompose_in_order(
        self,
        name: impl Into<String>,
        split: impl Fn(&A::Task) -> Vec<A::Task> + Send + Sync + 'static,
        merge: impl Fn(Vec<A::Output>) -> Result<A::Output, AgentError> + Send + Sync + 'static,
    ) -> Self {
        self.decomposition(name, Arc::new(split), Arc::new(merge), false)
    }

    fn decomposition(
        self,
        name: impl Into<String>,
        split: Split<A>,
        merge: Merge<A>,
        concurrent: bool,
    ) -> Self {
        let action = Action::Decompose {
            split,
            merge,
            concurrent,
        };
        self.rung(Rung::decompose(name), action)
    }

    /// A rung named `name` that rewrites the task with `upgrade` (given the failure: a larger
    /// model named in the task, a longer context) and asks it of `target`, or of this agent
    /// with `None`.
    pub fn stronger_model(
        self,
        name: impl Into<String>,
        upgrade: impl Fn(&A::Task, &Feedback) -> A::Task + Send + Sync + 'static,
        target: Option<AgentRef<A>>,
    ) -> Self {
        let action = Action::Upgrade {
            upgrade: Arc::new(upgrade),
            target,
        };
        self.rung(Rung::stronger_model(name), action)
    }

    /// Sets the classes of failure the last rung added is climbed on.
    pub fn accepting(mut self, classes: ClassSet) -> Self {
        let mut rungs = self.ladder.rungs().to_vec();
        if let Some(last) = rungs.pop() {
            rungs.push(last.accepting(classes));
        }
        self.ladder = Ladder::new(rungs);
        self
    }

    /// The rungs, as data.
    pub fn ladder(&self) -> &Ladder {
        &self.ladder
    }
}

/// Which failures a climb acts on at all.
#[derive(Debug, Clone, Copy)]
enum Gate {
    /// [`AskError::may_fall_back`]'s (the default of `ask_with_fallback`).
    MayFallBack,
    /// Those of these classes.
    Classes(ClassSet),
    /// Every failure: the rungs' classes decide.
    Rungs,
}

impl Gate {
    /// The class the ladder decides on for `error`, or `None` when the climb stops here.
    fn class(self, error: &AskError) -> Option<ErrorClass> {
        match self {
            // The predicate decided already: the rungs accept whatever it lets through.
            Self::MayFallBack => error.may_fall_back().then_some(ErrorClass::Transient),
            Self::Classes(classes) => {
                let class = error.class();
                classes.contains(&class).then_some(class)
            }
            Self::Rungs => Some(error.class()),
        }
    }
}

/// How a climb ended without an answer.
struct Fell {
    /// The last failure.
    last: AskError,
    /// Every attempt's failure.
    attempts: Vec<AttemptRecord>,
    /// Whether every rung was tried or skipped.
    exhausted: bool,
}

impl<A: Agent> AgentRef<A>
where
    A::Task: Clone,
{
    /// Asks this agent (under its retry policy, if it has one), and while the answer is a
    /// failure, climbs `escalation`'s rungs in order, all within this agent's default
    /// deadline measured from this call; stops at the first answer, which says which agent
    /// gave it. Each rung climbed, and the ladder's stop, is a
    /// [`RetryEvent`](crate::RetryEvent) caused by the failed ask before it, with the rungs
    /// skipped (a breaker open, a class not accepted). Each rung's asks are admitted (budget,
    /// breaker) as any ask is.
    ///
    /// # Errors
    /// * [`AskError::Exhausted`], with every attempt's error, when every rung was tried or
    ///   skipped;
    /// * the last failure, when it stops the ladder (replay-unsafe, cancelled, budget
    ///   exhausted, or the kill switch tripped);
    /// * [`AskError::Timeout`] when the deadline passed before a rung could be climbed.
    ///
    /// # Cancel safety
    /// Dropping the future gives up the ask in progress, as dropping [`ask`](Self::ask)'s
    /// does; no rung is climbed after that.
    ///
    /// # Panics
    /// As [`ask`](Self::ask).
    pub async fn ask_escalating(
        &self,
        task: A::Task,
        escalation: &Escalation<A>,
    ) -> Result<Answered<A::Output>, AskError> {
        self.ask_escalating_within(task, escalation, self.default_timeout())
            .await
    }

    /// As [`ask_escalating`](Self::ask_escalating), every rung within `timeout` from this
    /// call instead of the agent's default deadline.
    ///
    /// # Errors
    /// As [`ask_escalating`](Self::ask_escalating); [`AskError::Timeout`] says `timeout`.
    ///
    /// # Cancel safety
    /// As [`ask_escalating`](Self::ask_escalating).
    ///
    /// # Panics
    /// As [`ask`](Self::ask).
    pub async fn ask_escalating_within(
        &self,
        task: A::Task,
        escalation: &Escalation<A>,
        timeout: Duration,
    ) -> Result<Answered<A::Output>, AskError> {
        self.climb(task, escalation, Gate::Rungs, timeout)
            .await
            .map_err(|fell| match fell {
                Fell {
                    attempts,
                    exhausted: true,
                    ..
                } => AskError::Exhausted {
                    agent: self.name().clone(),
                    attempts,
                },
                Fell { last, .. } => last,
            })
    }

    /// Asks this agent, and if it cannot take the task, asks each alternate in turn (agents of
    /// the same type that handle the same tasks), all within one deadline: the default
    /// deadline of this agent, measured from this call. The answer says which agent
    /// answered. It is the escalation ladder of other-agent rungs: an alternate whose breaker
    /// for the task type is open is skipped.
    ///
    /// It falls back only on the errors of [`AskError::may_fall_back`]: the task was refused
    /// before it reached a handler (an open breaker, an agent restarting, stopped or not in
    /// the tree, the agent's own budget) or its handler declined it with a task failure
    /// ([`AskError::Failed`]). A timeout or a crash is returned as it is, without re-sending
    /// the task: it may have had effects, and a task that crashed one agent may crash the
    /// next. A system-wide refusal (shut down, kill switch, the process budget) is returned
    /// at once. [`ask_with_fallback_on`](Self::ask_with_fallback_on) names the classes
    /// instead.
    ///
    /// # Errors
    /// The first error that does not fall back; if every agent was tried, the last error; an
    /// [`AskError::Timeout`] if the deadline passed before an alternate could be asked. Each
    /// error is one [`ask`](Self::ask) can return.
    ///
    /// # Cancel safety
    /// Dropping the future gives up the ask in progress, as dropping [`ask`](Self::ask)'s
    /// does (a task still queued never runs; a handler already running runs on, uncounted);
    /// no alternate is asked after that.
    ///
    /// # Panics
    /// As [`ask`](Self::ask).
    pub async fn ask_with_fallback(
        &self,
        task: A::Task,
        alternates: &[AgentRef<A>],
    ) -> Result<Answered<A::Output>, AskError> {
        let escalation = fallbacks(alternates, ClassSet::CLIMBABLE);
        self.climb(task, &escalation, Gate::MayFallBack, self.default_timeout())
            .await
            .map_err(|fell| fell.last)
    }

    /// As [`ask_with_fallback`](Self::ask_with_fallback), falling back only on failures of
    /// the classes `on` (for example `ClassSet::TRANSIENT | ClassSet::RATE_LIMITED`: a timeout
    /// falls back too, which `ask_with_fallback` does not do).
    ///
    /// # Errors
    /// As [`ask_with_fallback`](Self::ask_with_fallback).
    ///
    /// # Cancel safety
    /// As [`ask_with_fallback`](Self::ask_with_fallback).
    ///
    /// # Panics
    /// As [`ask`](Self::ask).
    pub async fn ask_with_fallback_on(
        &self,
        task: A::Task,
        alternates: &[AgentRef<A>],
        on: ClassSet,
    ) -> Result<Answered<A::Output>, AskError> {
        let escalation = fallbacks(alternates, on);
        self.climb(task, &escalation, Gate::Classes(on), self.default_timeout())
            .await
            .map_err(|fell| fell.last)
    }

    /// The first ask, then the rungs, as [`Ladder::next`] says.
    async fn climb(
        &self,
        task: A::Task,
        escalation: &Escalation<A>,
        gate: Gate,
        timeout: Duration,
    ) -> Result<Answered<A::Output>, Fell> {
        let deadline = overseer_supervisor::deadline_after(Instant::now(), timeout);
        let task_type = A::task_type(&task);
        let first = Attempts {
            policy: self.own_policy(task_type),
            deadline,
            timeout,
            first_deposits: true,
            retry_invalid_output: false,
            first_id: None,
        };
        let tried = self
            .attempts(task.clone(), first, Some(Clone::clone), None)
            .await;
        let mut attempts = Vec::new();
        let mut last = match settle_rung(tried, self.name(), None, &mut attempts) {
            Ok(output) => return Ok(answered(self.name(), output)),
            Err(last) => last,
        };
        let mut state = LadderState::new();
        loop {
            let stop = |last: Failed, attempts, exhausted| Fell {
                last: last.error,
                attempts,
                exhausted,
            };
            let Some(class) = gate.class(&last.error) else {
                return Err(stop(last, attempts, false));
            };
            if Instant::now() >= deadline {
                let timeout = AskError::Timeout {
                    agent: self.name().clone(),
                    after: timeout,
                };
                let last = Failed {
                    error: timeout,
                    ..last
                };
                return Err(stop(last, attempts, false));
            }
            let conditions = self.conditions(escalation, &state, class, task_type);
            let notice = Notice {
                slot: self.slot(),
                task_type,
                failed: &last,
            };
            let rung = match escalation.ladder.advance(&mut state, &conditions) {
                Next::Stop { reason, skipped } => {
                    notice.publish(RetryStep::LadderStopped {
                        reason,
                        skipped: skipped.clone(),
                    });
                    let exhausted = reason == StopReason::Exhausted;
                    return Err(stop(last, attempts, exhausted));
                }
                Next::Climb { rung, skipped } => {
                    let climbed = &escalation.ladder.rungs()[rung];
                    notice.publish(RetryStep::Rung {
                        rung,
                        name: climbed.name().to_string(),
                        kind: climbed.kind().clone(),
                        skipped,
                    });
                    tracing::debug!(agent = %self.name(), rung = climbed.name(), error = %last.error, "escalating");
                    rung
                }
            };
            let bounds = Bounds { deadline, timeout };
            let (by, tried) = self.run_rung(escalation, rung, &task, bounds, &last).await;
            last = match settle_rung(tried, &by, Some(rung), &mut attempts) {
                Ok(output) => return Ok(answered(&by, output)),
                Err(failed) => failed,
            };
        }
    }

    /// This agent's retry policy for `task_type`, if any.
    fn own_policy(&self, task_type: &str) -> Option<&RetryPolicy> {
        let plan = self.slot().classifier.retry.as_deref()?;
        plan.policy_for(task_type)
    }

    /// The failure's conditions for the ladder: its class, the kill switch, and the rungs
    /// whose agent's breaker for the task type is open.
    fn conditions(
        &self,
        escalation: &Escalation<A>,
        state: &LadderState,
        class: ErrorClass,
        task_type: &'static str,
    ) -> Conditions {
        let mut conditions = Conditions::new(class).kill_switch(!self.slot().shared.is_open());
        let from = state.current().map_or(0, |current| current + 1);
        for (index, action) in escalation.actions.iter().enumerate().skip(from) {
            let target = match action {
                Action::OtherAgent(agent) => agent,
                Action::Upgrade {
                    target: Some(agent),
                    ..
                } => agent,
                _ => self,
            };
            if breaker_open(target, task_type) {
                conditions = conditions.breaker_open(index);
            }
        }
        conditions
    }

    /// Climbs rung `index`: the agent that answers (or failed), and how.
    async fn run_rung(
        &self,
        escalation: &Escalation<A>,
        index: usize,
        task: &A::Task,
        bounds: Bounds,
        last: &Failed,
    ) -> (AgentName, Tried<A::Output>) {
        let rung = &escalation.ladder.rungs()[index];
        let feedback = Feedback::new(last.attempt, last.error.clone());
        let run = |policy, retry_invalid_output| {
            bounds.rung(rung.policy().or(policy), retry_invalid_output)
        };
        let copy: Option<CopyTask<A>> = Some(Clone::clone);
        match &escalation.actions[index] {
            Action::SameAgent => {
                let run = run(self.own_policy(A::task_type(task)), true);
                let tried = self.attempts(task.clone(), run, copy, Some(feedback)).await;
                (self.name().clone(), tried)
            }
            Action::OtherAgent(agent) => {
                let run = run(agent.own_policy(A::task_type(task)), false);
                let tried = agent
                    .attempts(task.clone(), run, copy, Some(feedback))
                    .await;
                (agent.name().clone(), tried)
            }
            Action::Upgrade { upgrade, target } => {
                let agent = target.as_ref().unwrap_or(self);
                let upgraded = upgrade(task, &feedback);
                let tried = agent
                    .attempts(upgraded, run(None, false), copy, Some(feedback))
                    .await;
                (agent.name().clone(), tried)
            }
            Action::Decompose {
                split,
                merge,
                concurrent,
            } => {
                let parts = split(task);
                let tried = self
                    .decomposed(parts, merge, *concurrent, run(None, false), feedback)
                    .await;
                (self.name().clone(), tried)
            }
        }
    }

    /// Asks the parts of a split task and merges their outputs.
    async fn decomposed(
        &self,
        parts: Vec<A::Task>,
        merge: &Merge<A>,
        concurrent: bool,
        run: Attempts<'_>,
        feedback: Feedback,
    ) -> Tried<A::Output> {
        let copy: Option<CopyTask<A>> = Some(Clone::clone);
        let ask = |part| self.attempts(part, run, copy, Some(feedback.clone()));
        let results = if concurrent {
            futures::future::join_all(parts.into_iter().map(ask)).await
        } else {
            let mut results = Vec::new();
            for part in parts {
                let tried = ask(part).await;
                let failed = tried.result.is_err();
                results.push(tried);
                if failed {
                    break;
                }
            }
            results
        };
        let mut failures = Vec::new();
        let mut outputs = Vec::new();
        let mut first_error = None;
        for tried in results {
            failures.extend(tried.failures);
            match tried.result {
                Ok(output) => outputs.push(output),
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        if let Some(error) = first_error {
            return Tried {
                result: Err(error),
                failures,
            };
        }
        let result = merge(outputs).map_err(|error| {
            let merged = AskError::Failed {
                agent: self.name().clone(),
                error,
            };
            failures.push(Failed {
                id: None,
                attempt: 1,
                error: merged.clone(),
                usage: Usage::default(),
            });
            merged
        });
        Tried { result, failures }
    }
}

/// The one deadline of a climb.
#[derive(Debug, Clone, Copy)]
struct Bounds {
    deadline: Instant,
    timeout: Duration,
}

impl Bounds {
    /// The bounds of a rung's attempts, by `policy`.
    fn rung(self, policy: Option<&RetryPolicy>, retry_invalid_output: bool) -> Attempts<'_> {
        Attempts {
            policy,
            deadline: self.deadline,
            timeout: self.timeout,
            first_deposits: false,
            retry_invalid_output,
            first_id: None,
        }
    }
}

/// The ladder of `ask_with_fallback`: one other-agent rung per alternate.
fn fallbacks<A: Agent>(alternates: &[AgentRef<A>], on: ClassSet) -> Escalation<A> {
    alternates
        .iter()
        .fold(Escalation::new(), |escalation, alternate| {
            let name = alternate.name().to_string();
            escalation.other_agent(name, alternate.clone(), on)
        })
}

/// Whether `agent`'s breaker for `task_type` refuses calls now: forced open, or open with
/// its open period not yet over. A breaker whose open period has passed still reads `Open`
/// until a call asks to be admitted; skipping its rung then would keep it open for good (no
/// call would ever be its probe), so the rung is climbed and its ask is admitted as the probe.
fn breaker_open<A: Agent>(agent: &AgentRef<A>, task_type: &'static str) -> bool {
    agent
        .slot()
        .breaker(task_type)
        .is_some_and(|breaker| match breaker.state() {
            BreakerState::ForcedOpen => true,
            BreakerState::Open => breaker
                .snapshot()
                .open_until
                .is_some_and(|until| Instant::now() < until),
            _ => false,
        })
}

fn answered<O>(by: &AgentName, output: O) -> Answered<O> {
    Answered {
        by: by.clone(),
        output,
    }
}

/// A rung's output, or its last failure (the error it ended with, as the last attempt's),
/// its attempts added to `attempts`.
fn settle_rung<O>(
    tried: Tried<O>,
    agent: &AgentName,
    rung: Option<usize>,
    attempts: &mut Vec<AttemptRecord>,
) -> Result<O, Failed> {
    attempts.extend(
        tried
            .failures
            .iter()
            .map(|failed| failed.record(rung, agent)),
    );
    let error = match tried.result {
        Ok(output) => return Ok(output),
        Err(error) => error,
    };
    let (id, attempt) = tried
        .failures
        .last()
        .map_or((None, 1), |last| (last.id, last.attempt));
    let usage = tried
        .failures
        .last()
        .map_or(Usage::default(), |last| last.usage);
    Err(Failed {
        id,
        attempt,
        error,
        usage,
    })
}
