//! The entry point: declare agents, start the tree, look up handles, subscribe, shut down.
//!
//! The public handles live here; beside them, the registry of agents by name
//! (`system/registry.rs`), an agent as a supervisor child (`system/agent_child.rs`) and the
//! running of the tree, from its start to its stop (`system/tree.rs`).

mod agent_child;
mod registry;
mod tree;

use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use overseer_breaker::BreakerRegistry;
use overseer_budget::Budget;
use overseer_journal::Journal;
use overseer_retry::RetryBudget;
use overseer_supervisor::{ChildSpec, StartError, SupervisionTree, SupervisorSpec, TreeError};
use tokio::sync::broadcast;

use self::agent_child::{agent_child, check};
use self::registry::Registry;
use crate::agent::Agent;
use crate::agent_ref::AgentRef;
use crate::ask_tally::AskTally;
use crate::dead_letters::DeadLetters;
use crate::error::{AskError, SystemError};
use crate::event::SystemEvent;
use crate::health::AgentHealth;
use crate::readiness::Readiness;
use crate::retry_runtime::RetryRuntime;
use crate::semantic_watch::{SemanticConfig, SemanticWatch};
use crate::shared::{Shared, SharedOptions, StepDurability};
use crate::spec::AgentSpec;

/// A system of agents under one supervision tree.
///
/// A `System` is a cheap handle ([`Clone`]); the handles together own the system. Shut it down
/// with [`shutdown`](Self::shutdown), which waits for the tree to stop in order within a
/// deadline. Dropping the last handle shuts it down without waiting: asks fail with
/// [`AskError::ShutDown`] from then on, the tree stops in order in the background (each child
/// under its shutdown spec), and the event stream ends once the root has stopped.
/// [`AgentRef`]s and [`WeakSystem`]s do not keep the system alive; an agent that needs the
/// system should hold a [`WeakSystem`], since a `System` held by one of its own agents would
/// keep it alive for ever.
///
/// ```
/// use overseer_agent::{Agent, AgentContext, AgentError, AgentSpec, System};
/// use overseer_supervisor::SupervisorSpec;
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
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let system = System::builder().ask_timeout(Duration::from_secs(10)).build()?;
/// let tree = SupervisorSpec::one_for_one("root").child(system.agent(AgentSpec::new("echo", || Echo))?);
/// system.start(tree).await?;
/// let echo = system.agent_ref::<Echo>("echo")?;
/// assert_eq!(echo.ask("hello".to_string()).await?, "hello");
/// system.shutdown(Duration::from_secs(5)).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct System {
    registry: Arc<Registry>,
}

impl std::fmt::Debug for System {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("System")
            .field("agents", &self.registry.agents())
            .field("started", &self.registry.tree.get().is_some())
            .field("shut_down", &self.registry.shared.is_shut_down())
            .finish()
    }
}

/// A handle to a [`System`] that does not keep it alive, from [`System::downgrade`].
///
/// An agent that looks up other agents of its own system should hold one of these rather than
/// a `System`: the system keeps its tree, the tree keeps each agent's factory, and a factory
/// that captured a `System` would keep the system alive (and running) after its last outside
/// handle is dropped, a reference cycle that only [`System::shutdown`] breaks. Handles from
/// [`agent_ref`](Self::agent_ref) hold only the agent's queue, never the system.
///
/// ```
/// # use overseer_agent::prelude::*;
/// # use overseer_supervisor::prelude::*;
/// # struct Echo;
/// # impl Agent for Echo {
/// #     type Task = String;
/// #     type Output = String;
/// #     async fn handle(&mut self, _: &mut AgentContext, task: String) -> Result<String, AgentError> { Ok(task) }
/// # }
/// struct Lead {
///     team: WeakSystem,
/// }
///
/// impl Agent for Lead {
///     type Task = String;
///     type Output = String;
///
///     async fn handle(&mut self, _: &mut AgentContext, task: String) -> Result<String, AgentError> {
///         let echo = self
///             .team
///             .agent_ref::<Echo>("echo")
///             .map_err(|error| AgentError::failed(error.to_string()))?;
///         echo.ask(task).await.map_err(|error| AgentError::failed(error.to_string()))
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let system = System::builder().build()?;
/// let team = system.downgrade();
/// system
///     .start(
///         SupervisorSpec::one_for_one("root")
///             .child(system.agent(AgentSpec::new("echo", || Echo))?)
///             .child(system.agent(AgentSpec::new("lead", move || Lead { team: team.clone() }))?),
///     )
///     .await?;
/// let lead = system.agent_ref::<Lead>("lead")?;
/// assert_eq!(lead.ask("hello".to_string()).await?, "hello");
/// let weak = system.downgrade();
/// drop(system); // the last handle: the system shuts down
/// assert!(weak.upgrade().is_none(), "the lead did not keep it alive");
/// assert_eq!(lead.ask("again".to_string()).await, Err(AskError::ShutDown));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct WeakSystem {
    registry: Weak<Registry>,
}

/// A reader of a system's ask tallies ([`System::ask_tallies`]): while one exists, the agents
/// count their asks. It does not keep the system alive.
pub struct AskTallies {
    registry: Weak<Registry>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for AskTallies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AskTallies")
            .field("system_alive", &(self.registry.strong_count() > 0))
            .finish()
    }
}

impl AskTallies {
    /// Every declared agent's tally, by name: the asks and tells that ended since the first
    /// reader was made, answered or failed, and a sample of their latencies. Two readings'
    /// difference ([`LatencyHistogram::since`](crate::LatencyHistogram::since)) is what ended
    /// between them. Each reading starts a period whose first ask of each agent is timed, so
    /// that a quiet agent's latencies are sampled too. Empty once the system is gone.
    pub fn read(&self) -> Vec<AskTally> {
        self.shared.start_tally_period();
        self.registry
            .upgrade()
            .map_or_else(Vec::new, |registry| registry.ask_tallies())
    }
}

impl Drop for AskTallies {
    fn drop(&mut self) {
        self.shared.drop_tally_reader();
    }
}

impl WeakSystem {
    /// The system, if a [`System`] handle to it still exists.
    pub fn upgrade(&self) -> Option<System> {
        self.registry.upgrade().map(|registry| System { registry })
    }

    /// A handle to the agent named `name` ([`System::agent_ref`]); [`AskError::ShutDown`] if
    /// the system is gone.
    pub fn agent_ref<A: Agent>(&self, name: &str) -> Result<AgentRef<A>, AskError> {
        self.upgrade().ok_or(AskError::ShutDown)?.agent_ref(name)
    }
}

impl std::fmt::Debug for WeakSystem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WeakSystem")
            .field("alive", &(self.registry.strong_count() > 0))
            .finish()
    }
}

/// Options for a [`System`].
#[derive(Debug)]
pub struct SystemBuilder {
    ask_timeout: Duration,
    event_capacity: usize,
    budget: Option<Budget>,
    breakers: Option<BreakerRegistry>,
    trip_shutdown_timeout: Duration,
    journal: Option<Journal>,
    step_durability: StepDurability,
    retry_seed: Option<u64>,
    retry_budget: Option<RetryBudget>,
    semantic: SemanticConfig,
    /// The bulkheads declared, in order (checked at build).
    bulkheads: Vec<(String, usize)>,
}

impl SystemBuilder {
    /// Seeds the random generator every retry's jitter draws from (from the operating
    /// system's entropy unless set), so that a test knows every delay.
    pub fn retry_seed(mut self, seed: u64) -> Self {
        self.retry_seed = Some(seed);
        self
    }

    /// Bounds the retries of every agent's [`RetryPolicy`](overseer_retry::RetryPolicy) by
    /// `budget`: each first attempt deposits, each retry withdraws, and a retry the budget
    /// refuses ends the ask with [`AskError::RetryRefused`] (no budget unless set: a policy's
    /// own bounds only).
    pub fn retry_budget(mut self, budget: RetryBudget) -> Self {
        self.retry_budget = Some(budget);
        self
    }

    /// The default deadline of every ask (60 s unless set). Zero is refused by
    /// [`build`](Self::build) ([`SystemError::ZeroDefaultAskTimeout`]); a duration too long
    /// for the clock (`Duration::MAX`) is a deadline that never comes.
    pub fn ask_timeout(mut self, timeout: Duration) -> Self {
        self.ask_timeout = timeout;
        self
    }

    /// How many events a slow subscriber may fall behind before it is told it lagged (16,384
    /// unless set). The buffer is allocated up front, so [`build`](Self::build) refuses 0 and
    /// anything over [`System::MAX_EVENT_CAPACITY`]
    /// ([`SystemError::EventCapacityOutOfRange`]).
    pub fn event_capacity(mut self, capacity: usize) -> Self {
        self.event_capacity = capacity;
        self
    }

    /// Governs every ask with `budget`: its limits are reserved before an ask reaches an
    /// agent, its kill switch stops the whole system when it trips.
    pub fn budget(mut self, budget: Budget) -> Self {
        self.budget = Some(budget);
        self
    }

    /// Guards every ask with the circuit breaker of its (agent, task type), made on first use
    /// from the registry's configuration. Breakers outlive agents' restarts.
    pub fn breakers(mut self, registry: BreakerRegistry) -> Self {
        self.breakers = Some(registry);
        self
    }

    /// Journals durable runs in `journal`: asks made with a run id
    /// ([`AgentRef::ask_run`](crate::AgentRef::ask_run)) record their steps and outcome there,
    /// a restarted agent replays them, and [`AgentRef::resume_unfinished`](crate::AgentRef::resume_unfinished) resumes the runs a dead process
    /// left unfinished.
    pub fn journal(mut self, journal: Journal) -> Self {
        self.journal = Some(journal);
        self
    }

    /// How durably each kind of step is journaled (all synchronously unless set).
    pub fn step_durability(mut self, durability: StepDurability) -> Self {
        self.step_durability = durability;
        self
    }

    /// Watches every agent for errors that don't crash: loops in handlers' calls, and
    /// over-confident agents (none unless set).
    pub fn semantic(mut self, semantic: SemanticConfig) -> Self {
        self.semantic = semantic;
        self
    }

    /// How long the tree may take to stop in order after the kill switch trips before the
    /// rest is killed (60 s unless set).
    pub fn trip_shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.trip_shutdown_timeout = timeout;
        self
    }

    /// Declares a bulkhead: at most `limit` calls enter it at once, across every agent of
    /// the system (none unless declared). A handler enters it with
    /// [`AgentContext::bulkhead`](crate::AgentContext::bulkhead), waiting for a permit at
    /// most until its task's deadline.
    pub fn bulkhead(mut self, name: impl Into<String>, limit: usize) -> Self {
        self.bulkheads.push((name.into(), limit));
        self
    }

    /// Checks the options and builds the system (nothing runs until [`System::start`]).
    ///
    /// # Errors
    ///
    /// [`SystemError::ZeroDefaultAskTimeout`], [`SystemError::EventCapacityOutOfRange`],
    /// [`SystemError::DuplicateBulkhead`] or [`SystemError::Bulkhead`] (a limit of 0).
    pub fn build(self) -> Result<System, SystemError> {
        if self.ask_timeout.is_zero() {
            return Err(SystemError::ZeroDefaultAskTimeout);
        }
        if !(1..=System::MAX_EVENT_CAPACITY).contains(&self.event_capacity) {
            return Err(SystemError::EventCapacityOutOfRange {
                capacity: self.event_capacity,
                max: System::MAX_EVENT_CAPACITY,
            });
        }
        let mut bulkheads = std::collections::HashMap::new();
        for (name, limit) in self.bulkheads {
            let bulkhead = overseer_fanout::Bulkhead::new(name.as_str(), limit)?;
            let name: Arc<str> = name.into();
            if bulkheads.contains_key(&name) {
                return Err(SystemError::DuplicateBulkhead(name.to_string()));
            }
            bulkheads.insert(name, Arc::new(bulkhead));
        }
        let bulkheads = crate::bulkheads::Bulkheads::new(bulkheads);
        let shared = Shared::new(SharedOptions {
            default_ask_timeout: self.ask_timeout,
            event_capacity: self.event_capacity,
            budget: self.budget,
            breakers: self.breakers,
            trip_shutdown_timeout: self.trip_shutdown_timeout,
            journal: self.journal,
            step_durability: self.step_durability,
            retries: RetryRuntime::new(self.retry_seed, self.retry_budget),
            semantic: SemanticWatch::new(self.semantic),
            bulkheads,
        });
        shared.restore_from_journal();
        Ok(System {
            registry: Arc::new(Registry::new(shared)),
        })
    }
}

impl System {
    /// The default ask deadline.
    pub const DEFAULT_ASK_TIMEOUT: Duration = Duration::from_secs(60);

    /// The largest [`event_capacity`](SystemBuilder::event_capacity): 1,048,576 events.
    pub const MAX_EVENT_CAPACITY: usize = 1 << 20;

    /// The wall-clock time when the system was built: the origin of every event's
    /// [`elapsed`](SystemEvent::elapsed), which counts on the tokio clock from then.
    pub fn created_at(&self) -> SystemTime {
        self.registry.shared.created_at
    }

    /// The wall-clock time of `event`: [`created_at`](Self::created_at) plus the event's
    /// [`elapsed`](SystemEvent::elapsed). Under a paused tokio clock it moves with the clock,
    /// not with the machine's. An `elapsed` too large for the wall clock (only in an event
    /// read back from elsewhere) gives [`created_at`](Self::created_at).
    ///
    /// ```
    /// # use overseer_agent::prelude::*;
    /// # use overseer_supervisor::prelude::*;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let system = System::builder().build()?;
    /// let mut events = system.subscribe();
    /// system.start(SupervisorSpec::one_for_one("root")).await?;
    /// let started = events.recv().await?;
    /// assert!(system.timestamp(&started) >= system.created_at());
    /// # Ok(())
    /// # }
    /// ```
    pub fn timestamp(&self, event: &SystemEvent) -> SystemTime {
        let created_at = self.created_at();
        created_at
            .checked_add(event.elapsed())
            .unwrap_or(created_at)
    }

    /// Options for a new system.
    pub fn builder() -> SystemBuilder {
        SystemBuilder {
            ask_timeout: Self::DEFAULT_ASK_TIMEOUT,
            event_capacity: 16 * 1024,
            budget: None,
            breakers: None,
            trip_shutdown_timeout: Duration::from_secs(60),
            journal: None,
            step_durability: StepDurability::default(),
            retry_seed: None,
            retry_budget: None,
            semantic: SemanticConfig::default(),
            bulkheads: Vec::new(),
        }
    }

    /// Declares an agent and returns the supervisor child that runs it.
    ///
    /// Names are unique in a system, across agents declared here and the dynamic children made
    /// from templates: a name in use is refused with [`SystemError::DuplicateAgent`]. The
    /// child is marked [`unique_in_tree`](ChildSpec::unique_in_tree), so a tree holding it
    /// twice (the same spec under two supervisors) is refused when it is validated; the agent
    /// runs at one place in the tree, the first it starts at, and starting its spec anywhere
    /// else fails with [`StartError::NameTaken`].
    pub fn agent<A: Agent>(&self, spec: AgentSpec<A>) -> Result<ChildSpec, SystemError> {
        check(&spec)?;
        self.registry
            .declare(&spec.name, spec.config.clone(), &spec.classifier)?;
        Ok(agent_child(&self.registry, spec, true))
    }

    /// Declares an agent template for a dynamic supervisor: each child added with
    /// [`SupervisorRef::start_dynamic_child`](overseer_supervisor::SupervisorRef::start_dynamic_child)
    /// becomes an agent named by its child id (the template's own name names no agent).
    ///
    /// A child's name must be free in the system: a name declared with [`agent`](Self::agent),
    /// or held by a dynamic child of any supervisor, makes the start fail with
    /// [`StartError::NameTaken`], and nothing is taken over. A dynamic child gives its name
    /// back once it is removed (terminated, exited for good, or gone with its supervisor);
    /// `AgentRef`s to it then keep failing with [`AskError::AgentStopped`], and a later child
    /// with the same name is a new agent.
    pub fn agent_template<A: Agent>(&self, spec: AgentSpec<A>) -> Result<ChildSpec, SystemError> {
        check(&spec)?;
        Ok(agent_child(&self.registry, spec, false))
    }

    /// Starts the supervision tree from `spec`: the root supervisor starts its children in
    /// order, each agent's first incarnation among them (its [`Agent::on_start`] included). A
    /// system starts once. From then on, agents declared but not in the tree refuse asks with
    /// [`AskError::NotInTree`] until they are added to it.
    ///
    /// # Errors
    /// * [`SystemError::AlreadyStarted`]: the system was started, or is starting.
    /// * [`SystemError::Tree`]: the spec is invalid ([`TreeError::InvalidSpec`]), or the root
    ///   supervisor failed to start ([`TreeError::StartFailed`]: a child's start failed and
    ///   the root gave up). A failed start may be retried.
    ///
    /// # Cancel safety
    /// The start runs on a task of its own, so dropping the future does not cancel it: the
    /// tree goes on starting and, once started, the system holds it as if the caller had
    /// waited (its agents serve asks; [`shutdown`](Self::shutdown), or dropping the last
    /// handle, stops it), and another start is refused with [`SystemError::AlreadyStarted`].
    /// Only the result is lost. A system shut down while its tree starts stops the tree as
    /// soon as it has started.
    ///
    /// # Panics
    /// Outside a Tokio runtime.
    ///
    /// [`TreeError::InvalidSpec`]: overseer_supervisor::TreeError::InvalidSpec
    /// [`TreeError::StartFailed`]: overseer_supervisor::TreeError::StartFailed
    pub async fn start(&self, spec: SupervisorSpec) -> Result<(), SystemError> {
        if !self.registry.claim_start() {
            return Err(SystemError::AlreadyStarted);
        }
        // On a task of its own: a caller that stops waiting must not leave a tree running that
        // the system does not hold (it could not stop it).
        let start = tokio::spawn(Arc::clone(&self.registry).start_tree(spec));
        match start.await {
            Ok(started) => started,
            Err(failed) if failed.is_panic() => std::panic::resume_unwind(failed.into_panic()),
            Err(_cancelled) => Err(SystemError::Tree(TreeError::StartFailed(
                StartError::failed("the runtime shut down while the tree was starting"),
            ))),
        }
    }

    /// The circuit breakers guarding this system's asks, if any (for snapshots and operator
    /// controls).
    pub fn breakers(&self) -> Option<&BreakerRegistry> {
        self.registry.shared.breakers.as_ref()
    }

    /// The figures of every bulkhead ([`SystemBuilder::bulkhead`]), by name: what metrics
    /// read.
    pub fn bulkheads(&self) -> Vec<overseer_fanout::BulkheadSnapshot> {
        self.registry.shared.bulkheads.snapshot()
    }

    /// The budget governing this system, if any.
    pub fn budget(&self) -> Option<&Budget> {
        self.registry.shared.budget.as_ref()
    }

    /// The journal of this system's durable runs, if any.
    pub fn journal(&self) -> Option<&Journal> {
        self.registry.shared.journal.as_ref()
    }

    /// What every ask of the system reads (for the saga runner).
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.registry.shared
    }

    /// The system's dead-letter queue: the tasks given up on, to list, inspect, remove and
    /// redrive ([`DeadLetters`]); durable with a journal.
    pub fn dead_letters(&self) -> DeadLetters {
        DeadLetters::new(Arc::clone(&self.registry.shared))
    }

    /// A handle to this system that does not keep it alive: what an agent of the system that
    /// looks up other agents should hold ([`WeakSystem`]).
    pub fn downgrade(&self) -> WeakSystem {
        WeakSystem {
            registry: Arc::downgrade(&self.registry),
        }
    }

    /// A handle to the agent named `name`.
    pub fn agent_ref<A: Agent>(&self, name: &str) -> Result<AgentRef<A>, AskError> {
        self.registry.lookup(name).map(AgentRef::new)
    }

    /// Every declared agent's queue, by name: the tasks waiting for its handler and its
    /// capacity ([`AgentSpec::queue_capacity`](crate::AgentSpec::queue_capacity)). What the
    /// metrics recorder exports as `overseer_queue_depth_tasks` and the live view shows.
    pub fn queue_depths(&self) -> Vec<QueueDepth> {
        self.registry.queue_depths()
    }

    /// Every declared agent's health, by name (as OTP's `which_children` lists children): what
    /// its health checks found ([`AgentSpec::health_check`](crate::AgentSpec::health_check)),
    /// the last progress its handler reported, and how long ago it last beat when its tasks
    /// are watched by a heartbeat timeout.
    pub fn health(&self) -> Vec<AgentHealth> {
        self.registry.health()
    }

    /// The tree now, depth first in start order (empty before [`start`](Self::start)): each
    /// supervisor with its strategy and restart intensity (the restarts it tolerates per
    /// period, and how many count now), each agent with its queue and health, each node's
    /// state. Each supervisor is asked in turn, so it is a walk, not an atomic picture: a
    /// supervisor that exits meanwhile is [`NodeState::Exited`](crate::NodeState::Exited).
    /// What the web console and the terminal view draw.
    ///
    /// ```
    /// use overseer_agent::{NodeKind, System};
    /// use overseer_supervisor::SupervisorSpec;
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let system = System::builder().build()?;
    /// system
    ///     .start(SupervisorSpec::one_for_one("root").intensity(3, Duration::from_secs(10)))
    ///     .await?;
    /// let tree = system.tree_snapshot().await;
    /// let root = tree[0].supervisor_status().expect("the root answered");
    /// assert_eq!((root.max_restarts, root.period), (3, Duration::from_secs(10)));
    /// assert_eq!(root.restarts_in_window, 0);
    /// assert!(matches!(tree[0].kind, NodeKind::Supervisor { .. }));
    /// system.shutdown(Duration::from_secs(5)).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn tree_snapshot(&self) -> Vec<crate::tree_snapshot::TreeNode> {
        let Some(root) = self.tree().map(|tree| tree.root().clone()) else {
            return Vec::new();
        };
        let agents = crate::tree_snapshot::AgentFacts {
            queues: self
                .queue_depths()
                .into_iter()
                .map(|depth| (depth.agent.to_string(), (depth.queued, depth.capacity)))
                .collect(),
            health: self
                .health()
                .into_iter()
                .map(|agent| (agent.agent.to_string(), agent))
                .collect(),
        };
        crate::tree_snapshot::walk(&root, &agents).await
    }

    /// Whether the system is up, for a readiness probe: the tree running (started, not shut
    /// down, its root not exited after an escalation), the kill switch not tripped, and how
    /// many agents are healthy ([`Readiness::is_ready`] with the share required).
    ///
    /// ```
    /// # use overseer_agent::System;
    /// # use overseer_supervisor::SupervisorSpec;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let system = System::builder().build()?;
    /// assert!(!system.readiness().running, "not started yet");
    /// system.start(SupervisorSpec::one_for_one("root")).await?;
    /// assert!(system.readiness().is_ready(1.0));
    /// system.shutdown(std::time::Duration::from_secs(1)).await?;
    /// assert!(!system.readiness().is_ready(0.0));
    /// # Ok(())
    /// # }
    /// ```
    pub fn readiness(&self) -> Readiness {
        let running = !self.is_shut_down() && self.tree().is_some_and(SupervisionTree::is_running);
        let tripped = self
            .budget()
            .and_then(|budget| budget.trip_report())
            .map(|report| report.reason.clone());
        let health = self.health();
        let healthy = health
            .iter()
            .filter(|agent| agent.health.is_serving())
            .count();
        Readiness::new(running, tripped, health.len(), healthy)
    }

    /// A new subscriber to the system's events (supervision and asks, in one stream).
    /// The stream ends (`RecvError::Closed`) once the system has shut down.
    pub fn subscribe(&self) -> broadcast::Receiver<SystemEvent> {
        self.registry.shared.subscribe()
    }

    /// A new subscriber to the system's events but those of asks and tells answered without
    /// error: every failed ask, crash, restart, escalation, breaker, budget and retry event,
    /// while an answered ask costs its caller no event at all. With
    /// [`ask_tallies`](Self::ask_tallies) for the answered asks' counts and latencies, it is
    /// what a console reads to watch a busy system at a few percent of the ask's cost (the web
    /// console does). The stream ends (`RecvError::Closed`) once the system has shut down.
    ///
    /// ```
    /// # use overseer_agent::{Agent, AgentContext, AgentError, AgentSpec, AskOutcome, System, SystemEvent};
    /// # use overseer_supervisor::SupervisorSpec;
    /// # struct Echo;
    /// # impl Agent for Echo {
    /// #     type Task = u32;
    /// #     type Output = u32;
    /// #     async fn handle(&mut self, _: &mut AgentContext, n: u32) -> Result<u32, AgentError> {
    /// #         if n == 0 { Err(AgentError::permanent("zero")) } else { Ok(n) }
    /// #     }
    /// # }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let system = System::builder().build()?;
    /// system
    ///     .start(SupervisorSpec::one_for_one("root").child(system.agent(AgentSpec::new("echo", || Echo))?))
    ///     .await?;
    /// let mut failures = system.subscribe_unanswered();
    /// let tallies = system.ask_tallies(); // while it lives, asks are counted
    /// let echo = system.agent_ref::<Echo>("echo")?;
    /// echo.ask(7).await?;
    /// assert!(echo.ask(0).await.is_err());
    /// // Only the failure is an event ...
    /// let SystemEvent::Ask(failed) = failures.recv().await? else { panic!("an ask's event") };
    /// assert!(failed.outcome != AskOutcome::Ok);
    /// assert!(failures.try_recv().is_err());
    /// // ... and both asks are counted.
    /// assert_eq!(tallies.read()[0].ended, 2);
    /// # system.shutdown(std::time::Duration::from_secs(5)).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn subscribe_unanswered(&self) -> broadcast::Receiver<SystemEvent> {
        self.registry.shared.subscribe_unanswered()
    }

    /// A reader of the agents' ask tallies: while one exists, every ask and tell that ends,
    /// answered or failed, is counted by its agent with a sample of latencies (one in four,
    /// and the first after each [`AskTallies::read`]); without one, nothing is counted and
    /// nothing costs the ask. Counting costs an ask's caller an atomic increment, and a clock
    /// read for the sampled ones. With [`subscribe_unanswered`](Self::subscribe_unanswered) it
    /// is what a console reads instead of an event per ask (the web console does).
    ///
    /// ```
    /// # use overseer_agent::{Agent, AgentContext, AgentError, AgentSpec, System};
    /// # use overseer_supervisor::SupervisorSpec;
    /// # struct Echo;
    /// # impl Agent for Echo {
    /// #     type Task = u32;
    /// #     type Output = u32;
    /// #     async fn handle(&mut self, _: &mut AgentContext, n: u32) -> Result<u32, AgentError> { Ok(n) }
    /// # }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let system = System::builder().build()?;
    /// # system.start(SupervisorSpec::one_for_one("root").child(system.agent(AgentSpec::new("echo", || Echo))?)).await?;
    /// let tallies = system.ask_tallies();
    /// let before = tallies.read();
    /// let echo = system.agent_ref::<Echo>("echo")?;
    /// for n in 0..10 {
    ///     echo.ask(n).await?;
    /// }
    /// let after = tallies.read();
    /// assert_eq!((before[0].ended, after[0].ended), (0, 10));
    /// let sampled = after[0].latency.since(&before[0].latency);
    /// assert!(sampled.count() >= 3 && sampled.quantile(0.99).is_some());
    /// drop(tallies); // the last reader gone: asks are no longer counted
    /// # system.shutdown(std::time::Duration::from_secs(5)).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn ask_tallies(&self) -> AskTallies {
        self.registry.shared.add_tally_reader();
        AskTallies {
            registry: Arc::downgrade(&self.registry),
            shared: Arc::clone(&self.registry.shared),
        }
    }

    /// The running tree, once started.
    pub fn tree(&self) -> Option<&SupervisionTree> {
        self.registry.tree.get()
    }

    /// Whether [`shutdown`](Self::shutdown) has been called.
    pub fn is_shut_down(&self) -> bool {
        self.registry.shared.is_shut_down()
    }

    /// Shuts the system down: from now on every ask fails with [`AskError::ShutDown`]; the tree
    /// stops in order within `deadline` (each child under its shutdown spec; what still runs at
    /// the deadline is killed); asks still queued fail with `ShutDown`; then the event stream
    /// ends (subscribers receive what was published, then `Closed`). Shutting down a system
    /// that was never started, or is already shut down, succeeds.
    ///
    /// # Errors
    /// [`SystemError::Tree`] when the tree did not stop in order within `deadline` and the rest
    /// was killed ([`TreeError::ShutdownTimedOut`]), or killed actors still ran shortly after
    /// ([`TreeError::ShutdownIncomplete`]: handlers that never yield to the runtime). The
    /// system is shut down all the same.
    ///
    /// # Cancel safety
    /// Dropping the future does not undo the shutdown: asks fail with `ShutDown` from its first
    /// poll, and the tree goes on stopping in order (each agent's queued asks fail as it
    /// stops), but nothing is killed at the deadline. What the call would have done once the
    /// tree stopped (fail what is still queued, end the event stream) is done by another
    /// `shutdown`, which does not wait for a tree still stopping
    /// ([`SupervisionTree::wait_for_exit`] does), or when the last handle is dropped (the
    /// stream then ends once the root has stopped).
    ///
    /// [`TreeError::ShutdownTimedOut`]: overseer_supervisor::TreeError::ShutdownTimedOut
    /// [`TreeError::ShutdownIncomplete`]: overseer_supervisor::TreeError::ShutdownIncomplete
    pub async fn shutdown(&self, deadline: Duration) -> Result<(), SystemError> {
        self.registry.shut_down(deadline).await
    }
}

/// One agent's queue, as [`System::queue_depths`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueueDepth {
    /// The agent.
    pub agent: crate::name::AgentName,
    /// Tasks waiting for its handler (the one being handled not counted; with
    /// [`AgentSpec::wait_for_room`](crate::AgentSpec::wait_for_room), the asks waiting for
    /// room too, so it may pass the capacity).
    pub queued: usize,
    /// The most its queue holds.
    pub capacity: usize,
}
