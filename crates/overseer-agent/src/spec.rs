//! How an agent is declared: name, factory, restart type, deadlines.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use overseer_supervisor::{Restart, Shutdown};

use overseer_breaker::Outcome;

use crate::agent::Agent;
use crate::error::AskError;
use crate::health::HealthCheck;
use crate::heartbeat::HeartbeatTimeouts;
use crate::name::AgentName;
use crate::output_checks::OutputChecks;
use crate::retry_plan::RetryPlan;
use crate::usage::Usage;
use overseer_retry::RetryPolicy;

/// Makes a fresh agent for each incarnation.
pub(crate) type Factory<A> = Arc<dyn Fn() -> A + Send + Sync>;

/// An agent's declaration. Turn it into a supervisor child with
/// [`System::agent`](crate::System::agent), so agents, plain workers and nested supervisors
/// mix in one tree.
///
/// ```
/// use overseer_agent::{Agent, AgentContext, AgentError, AgentSpec};
/// use overseer_supervisor::Restart;
/// use std::time::Duration;
///
/// struct Echo;
/// impl Agent for Echo {
///     type Task = String;
///     type Output = String;
///     async fn handle(&mut self, _: &mut AgentContext, task: String) -> Result<String, AgentError> {
///         Ok(task)
///     }
/// }
///
/// let spec = AgentSpec::new("echo", || Echo)
///     .restart(Restart::Transient)
///     .ask_timeout(Duration::from_secs(30));
/// assert_eq!(spec.name().as_str(), "echo");
/// ```
pub struct AgentSpec<A: Agent> {
    pub(crate) name: AgentName,
    pub(crate) factory: Factory<A>,
    pub(crate) restart: Restart,
    pub(crate) shutdown: Option<Shutdown>,
    pub(crate) config: AgentConfig,
    pub(crate) classifier: Classifier<A>,
}

/// Whether an error counts as a failure for breakers.
type FailureCheck = Arc<dyn Fn(&AskError) -> bool + Send + Sync>;
/// Whether an output is valid.
type OutputCheck<O> = Arc<dyn Fn(&O) -> bool + Send + Sync>;

/// Decides how an ask's outcome counts for the agent's circuit breakers, and whether a failed
/// ask is tried again.
pub(crate) struct Classifier<A: Agent> {
    /// Whether an error counts as a failure (else it is not counted at all).
    pub(crate) failure: FailureCheck,
    /// Whether an output is valid (an invalid one counts as a failure).
    pub(crate) valid_output: Option<OutputCheck<A::Output>>,
    /// The agent's retry policies; `None` (no retry, the call path unchanged) unless set.
    pub(crate) retry: Option<Arc<RetryPlan<A>>>,
    /// The validators outputs go through before they are returned, and how an output
    /// reports its confidence (`AgentSpec::validator`, in `validation`).
    pub(crate) checks: Option<Arc<OutputChecks<A::Output>>>,
}

impl<A: Agent> Clone for Classifier<A> {
    fn clone(&self) -> Self {
        Self {
            failure: Arc::clone(&self.failure),
            valid_output: self.valid_output.clone(),
            retry: self.retry.clone(),
            checks: self.checks.clone(),
        }
    }
}

impl<A: Agent> Classifier<A> {
    /// The breaker outcome of one ask.
    pub(crate) fn outcome(&self, result: &Result<A::Output, AskError>) -> Outcome {
        match result {
            Ok(output) => match &self.valid_output {
                Some(valid) if !valid(output) => Outcome::Failure,
                _ => Outcome::Success,
            },
            Err(error) => self.error_outcome(error),
        }
    }

    /// The breaker outcome of an ask that failed with `error`.
    pub(crate) fn error_outcome(&self, error: &AskError) -> Outcome {
        if (self.failure)(error) {
            Outcome::Failure
        } else {
            Outcome::Ignored
        }
    }
}

/// The per-agent settings the call path reads.
#[derive(Debug, Clone)]
pub(crate) struct AgentConfig {
    pub(crate) ask_timeout: Option<Duration>,
    pub(crate) fail_fast_while_restarting: bool,
    /// Reserved for a task whose agent declares no estimate.
    pub(crate) default_estimate: Usage,
    /// The most tasks the queue holds (tasks being handled not counted).
    pub(crate) queue_capacity: usize,
    /// Whether an ask that finds the queue full waits for room within its deadline (else it
    /// is refused at once).
    pub(crate) wait_for_room: bool,
    /// Heartbeat timeouts and the health check, if any is set.
    pub(crate) liveness: Option<Arc<Liveness>>,
}

/// How an agent is watched beyond its deadlines: heartbeat timeouts for its tasks, and a
/// health check between them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Liveness {
    pub(crate) heartbeats: HeartbeatTimeouts,
    pub(crate) health: Option<HealthCheck>,
}

/// The queue capacity of an agent that declares none: 256 tasks. An LLM task takes seconds, so
/// 256 queued tasks are minutes of work, past any ask's deadline: more could only time out in
/// the queue; a burst of fast tasks (tool calls, lookups) still fits.
pub const DEFAULT_QUEUE_CAPACITY: usize = 256;

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            ask_timeout: None,
            fail_fast_while_restarting: false,
            default_estimate: Usage::default(),
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            wait_for_room: false,
            liveness: None,
        }
    }
}

impl<A: Agent> AgentSpec<A> {
    /// An agent named `name` (its child id in the tree), made by `factory` for each
    /// incarnation.
    pub fn new(
        name: impl Into<AgentName>,
        factory: impl Fn() -> A + Send + Sync + 'static,
    ) -> Self {
        Self {
            name: name.into(),
            factory: Arc::new(factory),
            restart: Restart::Permanent,
            shutdown: None,
            config: AgentConfig::default(),
            classifier: Classifier {
                failure: Arc::new(AskError::reached_agent),
                valid_output: None,
                retry: None,
                checks: None,
            },
        }
    }

    /// Which errors count as failures for this agent's circuit breakers. By default those of
    /// asks that reached the agent: a timeout, a crash, a failed task (an invalid output
    /// included); errors of asks refused before (an open breaker, a budget, a shutdown) and
    /// asks the caller gave up on are not counted at all.
    pub fn breaker_failure(
        mut self,
        counts: impl Fn(&AskError) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.classifier.failure = Arc::new(counts);
        self
    }

    /// A check on successful outputs: an output it rejects counts as a failure for the
    /// circuit breakers (a confident but invalid answer). The caller still receives the
    /// output; to refuse it, set a [`validator`](Self::validator) (which fails the ask and
    /// counts for the breakers alike), or return
    /// [`AgentError::InvalidOutput`](crate::AgentError::InvalidOutput) from the handler.
    pub fn valid_output(
        mut self,
        valid: impl Fn(&A::Output) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.classifier.valid_output = Some(Arc::new(valid));
        self
    }

    /// The restart type (default permanent).
    pub fn restart(mut self, restart: Restart) -> Self {
        self.restart = restart;
        self
    }

    /// How the agent is stopped (default: asked, then killed after 5 s).
    pub fn shutdown(mut self, shutdown: Shutdown) -> Self {
        self.shutdown = Some(shutdown);
        self
    }

    /// The default deadline of asks to this agent (overrides the system default; a per-call
    /// timeout overrides this).
    pub fn ask_timeout(mut self, timeout: Duration) -> Self {
        self.config.ask_timeout = Some(timeout);
        self
    }

    /// The most tasks the agent's queue holds, waiting for its handler (default
    /// [`DEFAULT_QUEUE_CAPACITY`], 256). An ask or tell beyond it is refused at once with
    /// [`AskError::QueueFull`](crate::AskError::QueueFull), before anything is reserved for it
    /// (unless [`wait_for_room`](Self::wait_for_room)); a task already queued is never dropped
    /// for it, and a task put back after a crash is not counted against it. A capacity of zero
    /// is refused when the agent is declared ([`SystemError::ZeroQueueCapacity`](crate::SystemError::ZeroQueueCapacity)).
    ///
    /// ```
    /// use overseer_agent::{AgentSpec, DEFAULT_QUEUE_CAPACITY};
    /// # struct Echo;
    /// # impl overseer_agent::Agent for Echo {
    /// #     type Task = u32;
    /// #     type Output = u32;
    /// #     async fn handle(&mut self, _: &mut overseer_agent::AgentContext, n: u32) -> Result<u32, overseer_agent::AgentError> { Ok(n) }
    /// # }
    /// let spec = AgentSpec::new("echo", || Echo).queue_capacity(16);
    /// assert!(DEFAULT_QUEUE_CAPACITY > 16);
    /// ```
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.config.queue_capacity = capacity;
        self
    }

    /// Watches every task of this agent with a heartbeat timeout: a handler that has not beaten
    /// for `timeout` ([`AgentContext::heartbeat`](crate::AgentContext::heartbeat), a progress
    /// report, a model call or a journaled step through the context) is treated as hung at once,
    /// as at a deadline: the ask fails with [`AskError::Stalled`](crate::AskError::Stalled), the
    /// incarnation is stopped with [`ExitReason::Stalled`](overseer_supervisor::ExitReason::Stalled)
    /// and its supervisor restarts it, and the breaker counts the failure. The task's start is
    /// its first beat. A timeout of zero is refused when the agent is declared
    /// ([`SystemError::ZeroTimeout`](crate::SystemError::ZeroTimeout)). Without a heartbeat
    /// timeout, beats cost a branch and nothing watches them.
    ///
    /// ```
    /// use overseer_agent::{Agent, AgentContext, AgentError, AgentSpec};
    /// use std::time::Duration;
    ///
    /// struct Researcher;
    /// impl Agent for Researcher {
    ///     type Task = Vec<String>;
    ///     type Output = usize;
    ///     async fn handle(&mut self, ctx: &mut AgentContext, sources: Vec<String>) -> Result<usize, AgentError> {
    ///         for (read, _source) in sources.iter().enumerate() {
    ///             // ... read one source (seconds, not minutes) ...
    ///             ctx.progress(read as u64 + 1);
    ///         }
    ///         Ok(sources.len())
    ///     }
    /// }
    ///
    /// // A research task may take 15 minutes, but never 30 s without progress.
    /// let spec = AgentSpec::new("researcher", || Researcher)
    ///     .ask_timeout(Duration::from_secs(15 * 60))
    ///     .heartbeat_timeout(Duration::from_secs(30));
    /// # let _ = spec;
    /// ```
    pub fn heartbeat_timeout(mut self, timeout: Duration) -> Self {
        self.liveness().heartbeats.set_every_task(timeout);
        self
    }

    /// As [`heartbeat_timeout`](Self::heartbeat_timeout), for the tasks of `task_type` only
    /// ([`Agent::task_type`]); it overrides the agent's for them.
    pub fn heartbeat_timeout_for(mut self, task_type: &'static str, timeout: Duration) -> Self {
        self.liveness().heartbeats.set_task_type(task_type, timeout);
        self
    }

    /// Runs the agent's [`Agent::health_check`] as `check` says: every interval, while the agent
    /// is idle (never beside a task), within the check's timeout. A failure (an error, a panic,
    /// no answer in time) marks the agent unhealthy: a [`SystemEvent::Health`](crate::SystemEvent::Health),
    /// the agent's health in [`System::health`](crate::System::health) and its asks refused
    /// with [`AskError::Unhealthy`](crate::AskError::Unhealthy) (as an open breaker refuses them;
    /// those already queued are served) until a check passes; after
    /// [`restart_after`](HealthCheck::restart_after) failures in a row the incarnation is stopped
    /// with [`ExitReason::Unhealthy`](overseer_supervisor::ExitReason::Unhealthy) and its
    /// supervisor restarts it, which counts toward its restart intensity as any restart does.
    /// A zero interval or timeout is refused when the agent is declared
    /// ([`SystemError::ZeroTimeout`](crate::SystemError::ZeroTimeout)).
    pub fn health_check(mut self, check: HealthCheck) -> Self {
        self.liveness().health = Some(check);
        self
    }

    /// The liveness settings, made on first use.
    fn liveness(&mut self) -> &mut Liveness {
        Arc::make_mut(self.config.liveness.get_or_insert_with(Default::default))
    }

    /// An ask that finds the agent's queue full waits for room, until its deadline (when it
    /// fails with [`AskError::Timeout`](crate::AskError::Timeout), and what it reserved is
    /// released), instead of being refused at once with
    /// [`AskError::QueueFull`](crate::AskError::QueueFull): it waits in line behind the queue,
    /// in order, and one whose deadline passed is dropped unrun when its turn comes. A tell is
    /// still refused at once: nobody waits for it. The queue's length
    /// ([`AgentRef::queue_len`](crate::AgentRef::queue_len)) then counts the waiting asks too.
    pub fn wait_for_room(mut self, wait: bool) -> Self {
        self.config.wait_for_room = wait;
        self
    }

    /// While the agent restarts, fail asks at once with
    /// [`AskError::Restarting`](crate::AskError::Restarting) instead of queueing them for the
    /// new incarnation.
    pub fn fail_fast_while_restarting(mut self, fail_fast: bool) -> Self {
        self.config.fail_fast_while_restarting = fail_fast;
        self
    }

    /// What to reserve against budgets for a task when [`Agent::estimate`] declares nothing
    /// (returns zero usage). Default: nothing but the step.
    pub fn default_estimate(mut self, estimate: Usage) -> Self {
        self.config.default_estimate = estimate;
        self
    }

    /// The agent's name.
    pub fn name(&self) -> &AgentName {
        &self.name
    }

    /// Retries the asks of this agent by `policy` (task types with a policy of their own,
    /// [`retry_task_type`](Self::retry_task_type), keep theirs). Without one, an ask is never
    /// retried. A retry is made within the ask's one deadline, after the policy's delay on the
    /// tokio clock, only for transient and rate-limited failures (a rate limit's or an open
    /// breaker's `retry_after` is waited at least), never after the kill switch tripped or
    /// the system shut down, and only as the system's retry budget allows
    /// ([`SystemBuilder::retry_budget`](crate::SystemBuilder::retry_budget)). The next
    /// attempt's handler sees the failure in
    /// [`AgentContext::previous_failure`](crate::AgentContext::previous_failure).
    ///
    /// ```
    /// # use overseer_agent::{Agent, AgentContext, AgentError, AgentSpec};
    /// use overseer_agent::retry::RetryPolicy;
    /// # struct Echo;
    /// # impl Agent for Echo {
    /// #     type Task = String;
    /// #     type Output = String;
    /// #     async fn handle(&mut self, _: &mut AgentContext, t: String) -> Result<String, AgentError> { Ok(t) }
    /// # }
    /// let spec = AgentSpec::new("echo", || Echo)
    ///     .retry(RetryPolicy::default())
    ///     .retry_task_type("summary", RetryPolicy::never());
    /// ```
    pub fn retry(mut self, policy: RetryPolicy) -> Self
    where
        A::Task: Clone,
    {
        self.retry_plan().default = Some(policy);
        self
    }

    /// Retries the asks of tasks of `task_type` ([`Agent::task_type`]) by `policy`, instead
    /// of the agent's policy ([`retry`](Self::retry)).
    pub fn retry_task_type(mut self, task_type: &'static str, policy: RetryPolicy) -> Self
    where
        A::Task: Clone,
    {
        self.retry_plan().by_task_type.insert(task_type, policy);
        self
    }

    fn retry_plan(&mut self) -> &mut RetryPlan<A>
    where
        A::Task: Clone,
    {
        let plan = self
            .classifier
            .retry
            .get_or_insert_with(|| Arc::new(RetryPlan::new()));
        Arc::make_mut(plan)
    }
}

impl<A: Agent> fmt::Debug for AgentSpec<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentSpec")
            .field("name", &self.name)
            .field("agent", &std::any::type_name::<A>())
            .field("restart", &self.restart)
            .field("shutdown", &self.shutdown)
            .field("ask_timeout", &self.config.ask_timeout)
            .field(
                "fail_fast_while_restarting",
                &self.config.fail_fast_while_restarting,
            )
            .finish()
    }
}
