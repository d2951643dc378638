//! Errors of agents, of asks, and of the system.

use std::borrow::Cow;
use std::time::Duration;

use overseer_breaker::State as BreakerState;
use overseer_budget::{Refusal, TripReason};
use overseer_journal::{RunId, StepId};
use overseer_retry::{Classify, ErrorClass};
use overseer_supervisor::{ExitReason, IdError, SpecError, TreeError};
use serde::{Deserialize, Serialize};

use crate::name::AgentName;

/// How an agent's handler fails a task.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", content = "message", rename_all = "snake_case")]
#[non_exhaustive]
pub enum AgentError {
    /// The task failed; the agent carries on. Unclassified: taken as
    /// [`ErrorClass::Transient`] (a retry may pass); return [`AgentError::Permanent`] or
    /// [`AgentError::RateLimited`] when the handler knows better.
    #[error("{0}")]
    Failed(String),
    /// The task failed in a way a retry of the same task does not fix (a bad request, a
    /// context too long, a refused credential): [`ErrorClass::Permanent`]. The agent carries on.
    #[error("permanent: {0}")]
    Permanent(String),
    /// The task failed because a provider asked to slow down, with the wait it asked for if it
    /// said: [`ErrorClass::RateLimited`]. The agent carries on.
    #[error("rate limited: {message}")]
    RateLimited {
        /// What the provider said.
        message: String,
        /// How long the provider asked to wait (its `Retry-After`), if it said.
        retry_after: Option<Duration>,
    },
    /// The task's request was processed but its answer was lost (a model's stream cut after
    /// it began, a malformed body): the effect, and its bill, probably happened, so running it
    /// again would do it twice: [`ErrorClass::ReplayUnsafe`]. Never retried, never escalated;
    /// journaled as a failure, so a replay fails the same way without running it again. It
    /// counts as a failure for breakers; the agent carries on.
    #[error("replay-unsafe: {0}")]
    ReplayUnsafe(String),
    /// The answer was produced but is not valid (counts as a failure for breakers).
    #[error("invalid output: {0}")]
    InvalidOutput(String),
    /// The agent cannot go on: it crashes and its supervisor decides what happens next.
    #[error("fatal: {0}")]
    Fatal(String),
    /// A durable step could not be taken (see [`StepError`]): the ask fails, the agent carries
    /// on, and the run stays unfinished in the journal, to be resumed. Boxed, so that every
    /// result a handler returns stays as small as a string; [`AgentError::step_error`] reads it.
    #[error("step: {0}")]
    Step(Box<StepError>),
}

/// Why a durable step ([`AgentContext::step`](crate::AgentContext::step)) could not be taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StepError {
    /// Another incarnation has taken the run up since this one did (this one is a zombie: a
    /// handler that outlived its kill, or a second process resuming the run): its writes are
    /// refused.
    #[error("run {run}: this incarnation ({epoch}) was fenced off by a newer one")]
    Fenced {
        /// The run.
        run: RunId,
        /// The epoch this incarnation held.
        epoch: u64,
    },
    /// The program asked for another step than the journal holds at this place: the code or its
    /// inputs changed since the run began.
    #[error("run {run}, step {step}: the journal holds {recorded:?}, the program asked for {requested:?}")]
    Diverged {
        /// The run.
        run: RunId,
        /// The step.
        step: StepId,
        /// The step recorded there.
        recorded: String,
        /// The step asked for.
        requested: String,
    },
    /// An unsafe effect was started before a crash and nothing can tell whether it happened:
    /// it was not run again, and went to the dead letters.
    #[error("run {run}, step {step}: an unsafe effect in doubt after a crash (key {key}); sent to the dead letters")]
    InDoubt {
        /// The run.
        run: RunId,
        /// The step.
        step: StepId,
        /// Its idempotency key.
        key: String,
    },
    /// The step was given up before (a dead letter).
    #[error("run {run}, step {step} was given up: {reason}")]
    DeadLettered {
        /// The run.
        run: RunId,
        /// The step.
        step: StepId,
        /// Why.
        reason: String,
    },
    /// The run waits for a signal that has not come: the handler stopped there, the run stays
    /// unfinished, and [`AgentRef::signal`](crate::AgentRef::signal) resumes it once the signal
    /// is sent.
    #[error("run {run} waits for the signal {signal:?}")]
    Suspended {
        /// The run.
        run: RunId,
        /// The signal it waits for.
        signal: String,
    },
    /// The journal could not record the step (a storage failure: the journal takes no more
    /// writes until it is reopened).
    #[error("the journal failed: {message}")]
    Journal {
        /// The journal's error.
        message: String,
    },
    /// The step's result could not be written as JSON, or a recorded one read back as its type.
    #[error("step {step}: {message}")]
    Encoding {
        /// The step.
        step: StepId,
        /// What failed.
        message: String,
    },
}

impl AgentError {
    /// A durable step that could not be taken.
    pub fn step(error: StepError) -> Self {
        Self::Step(Box::new(error))
    }

    /// Why a durable step could not be taken, if that is this error.
    ///
    /// ```
    /// use overseer_agent::{AgentError, StepError};
    ///
    /// let error = AgentError::step(StepError::Journal { message: "disk full".into() });
    /// assert!(matches!(error.step_error(), Some(StepError::Journal { .. })));
    /// assert_eq!(AgentError::failed("no").step_error(), None);
    /// ```
    pub fn step_error(&self) -> Option<&StepError> {
        match self {
            Self::Step(step) => Some(step),
            _ => None,
        }
    }

    /// A task failure with this message.
    pub fn failed(message: impl Into<String>) -> Self {
        Self::Failed(message.into())
    }

    /// A fatal error with this message.
    pub fn fatal(message: impl Into<String>) -> Self {
        Self::Fatal(message.into())
    }

    /// A task failure that a retry does not fix ([`ErrorClass::Permanent`]).
    pub fn permanent(message: impl Into<String>) -> Self {
        Self::Permanent(message.into())
    }

    /// A task failure after its request was processed and its answer lost
    /// ([`ErrorClass::ReplayUnsafe`]): running it again would repeat the effect.
    ///
    /// ```
    /// use overseer_agent::AgentError;
    /// use overseer_retry::{Classify, ErrorClass};
    ///
    /// let error = AgentError::replay_unsafe("stream cut after the first chunk");
    /// assert_eq!(error.class(), ErrorClass::ReplayUnsafe);
    /// assert!(!error.class().is_retryable());
    /// ```
    pub fn replay_unsafe(reason: impl Into<String>) -> Self {
        Self::ReplayUnsafe(reason.into())
    }

    /// A task failure because a provider asked to slow down, for `retry_after` if it said.
    pub fn rate_limited(message: impl Into<String>, retry_after: Option<Duration>) -> Self {
        Self::RateLimited {
            message: message.into(),
            retry_after,
        }
    }
}

/// | error | class |
/// |---|---|
/// | [`Failed`](AgentError::Failed) | transient (unclassified: a retry may pass) |
/// | [`Permanent`](AgentError::Permanent) | permanent |
/// | [`RateLimited`](AgentError::RateLimited) | rate-limited, with its `retry_after` |
/// | [`ReplayUnsafe`](AgentError::ReplayUnsafe) | replay-unsafe (never retried, never escalated) |
/// | [`InvalidOutput`](AgentError::InvalidOutput) | invalid output (the same agent, told why, may do better) |
/// | [`Fatal`](AgentError::Fatal) | transient (the agent is restarted; a retry meets the new incarnation) |
/// | [`Step`](AgentError::Step) | the [`StepError`]'s class |
impl Classify for AgentError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Failed(_) | Self::Fatal(_) => ErrorClass::Transient,
            Self::Permanent(_) => ErrorClass::Permanent,
            Self::RateLimited { retry_after, .. } => ErrorClass::RateLimited {
                retry_after: *retry_after,
            },
            Self::ReplayUnsafe(_) => ErrorClass::ReplayUnsafe,
            Self::InvalidOutput(_) => ErrorClass::InvalidOutput,
            Self::Step(step) => step.class(),
        }
    }
}

/// | step error | class |
/// |---|---|
/// | `Fenced` | permanent (a newer incarnation has the run; this one must not go on) |
/// | `Diverged` | permanent (the code no longer matches the journal) |
/// | `InDoubt` | replay-unsafe (the effect may have happened) |
/// | `DeadLettered` | replay-unsafe (given up on for that reason) |
/// | `Suspended` | cancelled (the run waits for a signal, not for a retry) |
/// | `Journal` | transient (the journal's storage failed) |
/// | `Encoding` | permanent |
impl Classify for StepError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Fenced { .. } | Self::Diverged { .. } | Self::Encoding { .. } => {
                ErrorClass::Permanent
            }
            Self::InDoubt { .. } | Self::DeadLettered { .. } => ErrorClass::ReplayUnsafe,
            Self::Suspended { .. } => ErrorClass::Cancelled,
            Self::Journal { .. } => ErrorClass::Transient,
        }
    }
}

/// Why an ask did not return an output. Every ask ends with an output or one of these, by its
/// deadline.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AskError {
    /// No answer by the deadline. If the handler was running, it was treated as hung: the agent
    /// was stopped with [`ExitReason::TimedOut`] and its supervisor decides what happens next.
    #[error("agent '{agent}' did not answer within {after:?}")]
    Timeout {
        /// The agent.
        agent: AgentName,
        /// The deadline that passed, measured from the ask.
        after: Duration,
    },
    /// The handler went silent: no heartbeat within its heartbeat timeout
    /// ([`AgentSpec::heartbeat_timeout`](crate::AgentSpec::heartbeat_timeout)), before its
    /// deadline. It was treated as hung, as at a deadline: the agent was stopped with
    /// [`ExitReason::Stalled`] and its supervisor decides what happens next.
    #[error("agent '{agent}' went silent: no heartbeat for {silent_for:?}{}", progress.as_ref().map(|progress| format!(" (last progress: {progress})")).unwrap_or_default())]
    Stalled {
        /// The agent.
        agent: AgentName,
        /// How long it had been silent when it was stopped (its heartbeat timeout).
        silent_for: Duration,
        /// The last progress the handler reported, if any.
        progress: Option<crate::heartbeat::Progress>,
    },
    /// The agent's health check failed ([`AgentSpec::health_check`](crate::AgentSpec::health_check)):
    /// it refuses work, as an open breaker does, until a check passes or it is restarted. The
    /// ask never reached the agent.
    #[error("agent '{agent}' is unhealthy: its health check failed")]
    Unhealthy {
        /// The agent.
        agent: AgentName,
    },
    /// The agent crashed while handling this task.
    #[error("agent '{agent}' crashed: {reason}")]
    Crashed {
        /// The agent.
        agent: AgentName,
        /// Why (the panic message, the fatal error, or a kill).
        reason: ExitReason,
    },
    /// The handler failed the task and the agent carries on.
    #[error("agent '{agent}' failed the task: {error}")]
    Failed {
        /// The agent.
        agent: AgentName,
        /// The handler's error.
        error: AgentError,
    },
    /// The agent is restarting and is configured to fail asks fast meanwhile.
    #[error("agent '{agent}' is restarting")]
    Restarting {
        /// The agent.
        agent: AgentName,
    },
    /// The agent's queue holds as many tasks as its capacity
    /// ([`AgentSpec::queue_capacity`](crate::AgentSpec::queue_capacity)): the ask is refused
    /// at once (load shed), and no handler sees it. Rate-limited: back off and retry, or ask
    /// another agent.
    #[error("agent '{agent}' is overloaded: its queue holds {capacity} tasks, its capacity")]
    QueueFull {
        /// The agent.
        agent: AgentName,
        /// Its queue capacity.
        capacity: usize,
    },
    /// The agent is stopped and its supervisor will not restart it.
    #[error("agent '{agent}' is stopped")]
    AgentStopped {
        /// The agent.
        agent: AgentName,
    },
    /// The agent was declared ([`System::agent`](crate::System::agent)) but the running tree
    /// did not start it: its child spec was never placed in the tree, or was not added yet
    /// (with [`SupervisorRef::start_child`](overseer_supervisor::SupervisorRef::start_child)).
    #[error("agent '{agent}' is declared but not in the running tree")]
    NotInTree {
        /// The agent.
        agent: AgentName,
    },
    /// No agent has this name.
    #[error("no agent named '{name}'")]
    UnknownAgent {
        /// The name asked for.
        name: String,
    },
    /// The agent exists but has another type.
    #[error("agent '{name}' is not a {expected}")]
    WrongAgentType {
        /// The name asked for.
        name: String,
        /// The type asked for.
        expected: &'static str,
    },
    /// The system has shut down.
    #[error("the system has shut down")]
    ShutDown,
    /// The kill switch has tripped: nothing is admitted any more, and tasks in flight are
    /// cancelled as the in-flight policy says.
    #[error("the kill switch has tripped: {reason}")]
    KillSwitchTripped {
        /// Why it tripped.
        reason: TripReason,
    },
    /// The circuit breaker of this agent and task type is open: the ask never reached the
    /// agent.
    #[error("agent '{agent}' is not taking '{task_type}' tasks (circuit breaker {state}){}", retry_after.map(|after| format!(", retry after {after:?}")).unwrap_or_default())]
    BreakerOpen {
        /// The agent.
        agent: AgentName,
        /// The task type.
        task_type: Cow<'static, str>,
        /// The breaker's state (open, half-open with its probes taken, forced open).
        state: BreakerState,
        /// When a call may be admitted again; `None` while forced open by an operator.
        retry_after: Option<Duration>,
    },
    /// The ask would cross a budget limit (the agent's or the process's); it never reached
    /// the agent.
    #[error("agent '{agent}' refused by its budget: {refusal}")]
    BudgetExceeded {
        /// The agent.
        agent: AgentName,
        /// Which limit, what was requested and what remained.
        refusal: Refusal,
    },
    /// A durable ask ([`AgentRef::ask_run`](crate::AgentRef::ask_run)) to a system without a
    /// journal ([`SystemBuilder::journal`](crate::SystemBuilder::journal)).
    #[error("agent '{agent}' was asked for a durable run, but the system has no journal")]
    NoJournal {
        /// The agent.
        agent: AgentName,
    },
    /// The run id is taken by a run with another input (Stripe answers the same idempotency key
    /// with other parameters the same way): nothing was run.
    #[error("run {run} was started with another input")]
    RunConflict {
        /// The run.
        run: RunId,
    },
    /// The run is being handled in this process by an earlier ask; ask again once it has ended
    /// (its outcome is then returned without running anything).
    #[error("run {run} is already in progress")]
    RunInProgress {
        /// The run.
        run: RunId,
    },
    /// The run finished with this failure before: it is not run again (a second ask of a
    /// finished run gets its recorded outcome, failure included).
    #[error("run {run} failed: {error}")]
    RunFailed {
        /// The run.
        run: RunId,
        /// The failure recorded.
        error: String,
    },
    /// The journal could not record the run (a storage failure, or the run's recorded input or
    /// outcome does not read as this agent's types).
    #[error("the journal failed for run {run}: {message}")]
    Journal {
        /// The run.
        run: RunId,
        /// What failed.
        message: String,
    },
    /// The agent's retry policy would have retried, but the system's retry budget
    /// ([`SystemBuilder::retry_budget`](crate::SystemBuilder::retry_budget)) refused: retries
    /// are a bounded share of requests. Holds the last attempt's error.
    #[error("agent '{agent}': retry refused by the retry budget after: {last}")]
    RetryRefused {
        /// The agent.
        agent: AgentName,
        /// The error of the last attempt made.
        last: Box<AskError>,
    },
    /// Every rung of an escalation ladder
    /// ([`AgentRef::ask_escalating`](crate::AgentRef::ask_escalating)) was tried or skipped,
    /// and none answered: every attempt's error, in order (the task is a dead letter).
    #[error("agent '{agent}': the escalation ladder is exhausted after {} attempts", attempts.len())]
    Exhausted {
        /// The agent first asked.
        agent: AgentName,
        /// Every attempt made, in order.
        attempts: Vec<AttemptRecord>,
    },
}

/// One attempt of an escalated ask that failed: where it was made and how it failed (see
/// [`AskError::Exhausted`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AttemptRecord {
    /// The ladder's rung the attempt was made on; `None` for the first ask.
    pub rung: Option<usize>,
    /// The agent asked.
    pub agent: AgentName,
    /// Which attempt of its rung (from 1).
    pub attempt: u32,
    /// The failure's class.
    pub class: ErrorClass,
    /// The failure.
    pub error: AskError,
    /// What the attempt spent before it failed, as its agent reported it (zero for a
    /// refusal, and for an attempt of a durable run, whose spend is journaled with its
    /// steps).
    pub usage: crate::usage::Usage,
}

impl AskError {
    /// Why a durable step of the ask's handler could not be taken, if that is why the ask
    /// failed ([`AskError::Failed`] with [`AgentError::Step`]).
    pub fn step_error(&self) -> Option<&StepError> {
        match self {
            Self::Failed { error, .. } => error.step_error(),
            _ => None,
        }
    }

    /// A short, stable name for the kind of error (for events, metrics and breakers).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Timeout { .. } => "timeout",
            Self::Stalled { .. } => "stalled",
            Self::Unhealthy { .. } => "unhealthy",
            Self::Crashed { .. } => "crashed",
            Self::Failed {
                error: AgentError::InvalidOutput(_),
                ..
            } => "invalid_output",
            Self::Failed { .. } => "failed",
            Self::Restarting { .. } => "restarting",
            Self::QueueFull { .. } => "queue_full",
            Self::AgentStopped { .. } => "agent_stopped",
            Self::NotInTree { .. } => "not_in_tree",
            Self::UnknownAgent { .. } => "unknown_agent",
            Self::WrongAgentType { .. } => "wrong_agent_type",
            Self::ShutDown => "shut_down",
            Self::KillSwitchTripped { .. } => "kill_switch_tripped",
            Self::BreakerOpen { .. } => "breaker_open",
            Self::BudgetExceeded { .. } => "budget_exceeded",
            Self::NoJournal { .. } => "no_journal",
            Self::RunConflict { .. } => "run_conflict",
            Self::RunInProgress { .. } => "run_in_progress",
            Self::RunFailed { .. } => "run_failed",
            Self::Journal { .. } => "journal",
            Self::RetryRefused { .. } => "retry_refused",
            Self::Exhausted { .. } => "exhausted",
        }
    }
}

/// A bulkhead's error as a handler's: a permit wait that ended at the deadline is
/// rate-limited (the capacity is taken; another agent or a later ask may find some), an
/// unknown bulkhead a plain failure (the system was built without it).
impl From<overseer_fanout::BulkheadError> for AgentError {
    fn from(error: overseer_fanout::BulkheadError) -> Self {
        match error {
            overseer_fanout::BulkheadError::Timeout { .. } => {
                Self::rate_limited(error.to_string(), None)
            }
            _ => Self::failed(error.to_string()),
        }
    }
}

/// Errors from building and running a [`System`](crate::System).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SystemError {
    /// Two agents were declared with one name, or the name is held by a dynamic child.
    #[error("an agent named '{0}' is already declared")]
    DuplicateAgent(String),
    /// An agent name is not a valid child id (see
    /// [`ChildId::validate`](overseer_supervisor::ChildId::validate)): names are ids in the
    /// tree, paths and metric labels.
    #[error("invalid agent name {name:?}: {error}")]
    InvalidAgentName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        error: IdError,
    },
    /// An agent's ask timeout, heartbeat timeout, health-check interval or health-check
    /// timeout is zero: every ask (or check) would time out at once.
    #[error("a timeout of '{0}' is zero (its ask or heartbeat timeout, or its health check's interval or timeout)")]
    ZeroTimeout(String),
    /// The system's default ask timeout ([`SystemBuilder::ask_timeout`]) is zero: every ask
    /// would time out at once.
    ///
    /// [`SystemBuilder::ask_timeout`]: crate::SystemBuilder::ask_timeout
    #[error("the default ask timeout is zero")]
    ZeroDefaultAskTimeout,
    /// An agent's queue capacity ([`AgentSpec::queue_capacity`](crate::AgentSpec::queue_capacity))
    /// is zero: it could take no task.
    #[error("the queue capacity of '{0}' is zero")]
    ZeroQueueCapacity(String),
    /// The event capacity ([`SystemBuilder::event_capacity`]) is zero or larger than
    /// [`System::MAX_EVENT_CAPACITY`].
    ///
    /// [`SystemBuilder::event_capacity`]: crate::SystemBuilder::event_capacity
    /// [`System::MAX_EVENT_CAPACITY`]: crate::System::MAX_EVENT_CAPACITY
    #[error("the event capacity must be between 1 and {max}; got {capacity}")]
    EventCapacityOutOfRange {
        /// The capacity given.
        capacity: usize,
        /// The largest allowed.
        max: usize,
    },
    /// Two bulkheads were declared with one name.
    #[error("a bulkhead named '{0}' is already declared")]
    DuplicateBulkhead(String),
    /// A bulkhead's limit is out of range.
    #[error(transparent)]
    Bulkhead(#[from] overseer_fanout::BulkheadError),
    /// The system was started twice.
    #[error("the system is already started")]
    AlreadyStarted,
    /// The tree's spec is invalid.
    #[error(transparent)]
    InvalidSpec(#[from] SpecError),
    /// The tree failed to start or to stop.
    #[error(transparent)]
    Tree(#[from] TreeError),
}

/// | ask error | class |
/// |---|---|
/// | `Timeout`, `Stalled`, `Crashed`, `Restarting` | transient (the agent is slow, or being restarted) |
/// | `Unhealthy` | rate-limited, without a retry-after (the agent refuses work until a check passes) |
/// | `Failed` | its [`AgentError`]'s class |
/// | `BreakerOpen` | rate-limited, for the breaker's `retry_after` (another agent may take it now) |
/// | `BudgetExceeded` | budget exhausted |
/// | `ShutDown`, `KillSwitchTripped` | cancelled |
/// | `RunInProgress`, `Journal` | transient |
/// | `AgentStopped`, `NotInTree`, `UnknownAgent`, `WrongAgentType`, `NoJournal`, `RunConflict`, `RunFailed` | permanent |
/// | `QueueFull` | rate-limited, without a retry-after (the agent sheds load: back off) |
/// | `RetryRefused` | budget exhausted (the retry budget is spent: no layer should retry) |
/// | `Exhausted` | permanent (everything the ladder holds was tried) |
impl Classify for AskError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Timeout { .. }
            | Self::Stalled { .. }
            | Self::Crashed { .. }
            | Self::Restarting { .. }
            | Self::RunInProgress { .. }
            | Self::Journal { .. } => ErrorClass::Transient,
            Self::Failed { error, .. } => error.class(),
            Self::BreakerOpen { retry_after, .. } => ErrorClass::RateLimited {
                retry_after: *retry_after,
            },
            Self::QueueFull { .. } | Self::Unhealthy { .. } => {
                ErrorClass::RateLimited { retry_after: None }
            }
            Self::BudgetExceeded { .. } | Self::RetryRefused { .. } => ErrorClass::BudgetExhausted,
            Self::ShutDown | Self::KillSwitchTripped { .. } => ErrorClass::Cancelled,
            Self::AgentStopped { .. }
            | Self::NotInTree { .. }
            | Self::UnknownAgent { .. }
            | Self::WrongAgentType { .. }
            | Self::NoJournal { .. }
            | Self::RunConflict { .. }
            | Self::RunFailed { .. }
            | Self::Exhausted { .. } => ErrorClass::Permanent,
        }
    }
}

impl AskError {
    /// Whether [`AgentRef::ask_with_fallback`](crate::AgentRef::ask_with_fallback) asks the
    /// next alternate after this error: the task was refused before it reached a handler by
    /// something that concerns this agent alone, or its handler declined it.
    ///
    /// | error | falls back |
    /// |---|---|
    /// | [`BreakerOpen`](Self::BreakerOpen), [`Unhealthy`](Self::Unhealthy), [`QueueFull`](Self::QueueFull), [`Restarting`](Self::Restarting), [`AgentStopped`](Self::AgentStopped), [`NotInTree`](Self::NotInTree), [`UnknownAgent`](Self::UnknownAgent) | yes: the task never reached a handler |
    /// | [`BudgetExceeded`](Self::BudgetExceeded) by the agent's own limit | yes |
    /// | [`Failed`](Self::Failed) | yes: the handler declined the task and the agent carries on |
    /// | [`Timeout`](Self::Timeout), [`Stalled`](Self::Stalled), [`Crashed`](Self::Crashed) | no: the task may have had effects, and may crash the next agent too |
    /// | [`BudgetExceeded`](Self::BudgetExceeded) by the process limit, [`KillSwitchTripped`](Self::KillSwitchTripped), [`ShutDown`](Self::ShutDown), [`WrongAgentType`](Self::WrongAgentType) | no: every alternate would be refused alike |
    pub fn may_fall_back(&self) -> bool {
        match self {
            Self::BreakerOpen { .. }
            | Self::Unhealthy { .. }
            | Self::QueueFull { .. }
            | Self::Restarting { .. }
            | Self::AgentStopped { .. }
            | Self::NotInTree { .. }
            | Self::UnknownAgent { .. }
            | Self::Failed { .. } => true,
            Self::BudgetExceeded { refusal, .. } => {
                refusal.scope().is_some_and(|scope| !scope.is_process())
            }
            Self::Timeout { .. }
            | Self::Stalled { .. }
            | Self::Crashed { .. }
            | Self::WrongAgentType { .. }
            | Self::ShutDown
            | Self::KillSwitchTripped { .. }
            | Self::NoJournal { .. }
            | Self::RunConflict { .. }
            | Self::RunInProgress { .. }
            | Self::RunFailed { .. }
            | Self::Journal { .. }
            | Self::RetryRefused { .. }
            | Self::Exhausted { .. } => false,
        }
    }

    /// Whether the ask reached an agent (its outcome says something about the agent), as
    /// opposed to being refused before (stopped, restarting, shut down, tripped, over budget).
    pub fn reached_agent(&self) -> bool {
        matches!(
            self,
            Self::Timeout { .. }
                | Self::Stalled { .. }
                | Self::Crashed { .. }
                | Self::Failed { .. }
        )
    }
}
