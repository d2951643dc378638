//! The entry point: declare agents, start the tree, look up handles, subscribe, shut down.

use std::sync::{Arc, OnceLock, PoisonError, Weak};
use std::time::{Duration, SystemTime};

use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use overseer_breaker::BreakerRegistry;
use overseer_budget::{Budget, TripReport};
use overseer_supervisor::{
    ChildFate, ChildPath, ChildSpec, EventBus, EventKind, StartContext, StartError,
    SupervisionTree, SupervisorSpec,
};
use tokio::sync::broadcast;
use tokio::time::Instant;

use crate::actor::{AgentActor, AgentArgs, AgentInPlace};
use crate::agent::Agent;
use crate::agent_ref::AgentRef;
use crate::error::{AskError, SystemError};
use crate::event::SystemEvent;
use crate::name::AgentName;
use crate::shared::{Shared, SharedOptions};
use crate::slot::{AnySlot, Slot};
use crate::spec::{AgentConfig, AgentSpec, Classifier};

/// What only the [`System`] holds: the agents' slots, the tree, the deadline timer. Everything
/// the tree keeps (the event sink, watchers, start functions) refers back to it weakly, so a
/// stopped system is freed once its handles are dropped.
pub(crate) struct Registry {
    shared: Arc<Shared>,
    /// Every name in use, with its agent's slot: names are unique in a system.
    slots: DashMap<AgentName, Named>,
    tree: OnceLock<SupervisionTree>,
    deadline_timer: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// One agent name of a system, and what holds it.
struct Named {
    slot: Arc<dyn AnySlot>,
    /// Declared with [`System::agent`]: the name is that agent's for the system's life. Else
    /// taken by a dynamic child made from a template, and free again once the child is
    /// removed.
    declared: bool,
    /// Where the agent is placed in the tree: set by its first start (a declared agent's, for
    /// good), `None` for a declared agent not started yet. Fates told about other placements
    /// of the name (a start refused because the name was taken) are not the agent's.
    placed_at: Option<ChildPath>,
}

/// The last [`System`] handle is gone: shut the system down without waiting (asks fail with
/// `ShutDown`, the event stream ends, the tree stops in order in the background).
impl Drop for Registry {
    fn drop(&mut self) {
        if self.shared.mark_shut_down() {
            return;
        }
        self.stop_deadline_timer();
        for named in self.slots.iter() {
            named.slot.shut_down();
        }
        match self.tree.get() {
            Some(tree) if tree.is_running() => {
                tracing::debug!("the last System handle was dropped: shutting the tree down");
                // The root's `stopped` event ends the event stream (see `start`).
                tree.begin_shutdown();
            }
            _ => self.shared.close_events(),
        }
    }
}

impl Registry {
    /// The kill switch tripped: publish it, cancel what the policy says, stop the tree in
    /// order so nothing restarts.
    fn on_trip(self: &Arc<Self>, report: &TripReport, runtime: &tokio::runtime::Handle) {
        tracing::error!(reason = %report.reason, after = ?report.after, "kill switch tripped");
        let trip = self.shared.record_trip(report);
        let registry = Arc::clone(self);
        runtime.spawn(async move {
            if let Some(tree) = registry.tree.get() {
                let timeout = registry.shared.trip_shutdown_timeout;
                if let Err(error) = tree.shutdown_caused_by(timeout, Some(trip)).await {
                    tracing::error!(%error, "the tree did not stop in order after the trip");
                }
            }
            for named in registry.slots.iter() {
                named.slot.shut_down();
            }
        });
    }

    /// The root supervisor has exited: no agent of the tree will run again.
    fn tree_stopped(&self) {
        self.stop_deadline_timer();
        for named in self.slots.iter() {
            named.slot.on_fate(ChildFate::Stopped);
        }
    }

    /// The budget's wall-clock timer is not needed once the tree has stopped.
    fn stop_deadline_timer(&self) {
        if let Some(timer) = self
            .deadline_timer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            timer.abort();
        }
    }

    /// Takes the name `name` for the agent started at `path` and gives its slot (made on the
    /// first start of a dynamic child). `declared`: whether the start comes from the spec of an
    /// agent declared with [`System::agent`], else from a template. Refused, with nothing taken
    /// over, when the name is held by another placement, or declared by an agent not in the
    /// tree and asked for by a template.
    fn claim<A: Agent>(
        self: &Arc<Self>,
        name: &AgentName,
        path: &ChildPath,
        declared: bool,
        config: AgentConfig,
        classifier: &Classifier<A>,
    ) -> Result<Arc<Slot<A>>, StartError> {
        let taken = |holder: Option<&ChildPath>| StartError::NameTaken {
            name: name.clone(),
            holder: holder.cloned(),
        };
        let slot = match self.slots.entry(name.clone()) {
            Entry::Occupied(mut occupied) => {
                let named = occupied.get_mut();
                match &named.placed_at {
                    // The same child again (a restart, or added again where it was).
                    Some(at) if at == path => {}
                    Some(at) => return Err(taken(Some(at))),
                    None if !declared => return Err(taken(None)),
                    None => named.placed_at = Some(path.clone()),
                }
                Arc::clone(&named.slot)
            }
            Entry::Vacant(vacant) => {
                let slot: Arc<dyn AnySlot> = Arc::new(Slot::<A>::new(
                    name.clone(),
                    config,
                    classifier.clone(),
                    Arc::clone(&self.shared),
                ));
                vacant.insert(Named {
                    slot: Arc::clone(&slot),
                    declared,
                    placed_at: Some(path.clone()),
                });
                slot
            }
        };
        let found = slot.agent_type();
        slot.into_any().downcast::<Slot<A>>().map_err(|_| {
            StartError::Failed(format!(
                "the agent name '{name}' is used by a {found}, not a {}",
                std::any::type_name::<A>()
            ))
        })
    }

    /// A supervisor decided `fate` for the child at `path`: told to the agent placed there. A
    /// dynamic child removed gives its name back; its slot stays stopped for the `AgentRef`s
    /// still holding it.
    fn on_fate(&self, path: &ChildPath, fate: ChildFate) {
        let Some((slot, declared)) = self
            .slots
            .get(path.name())
            .filter(|named| named.placed_at.as_ref() == Some(path))
            .map(|named| (Arc::clone(&named.slot), named.declared))
        else {
            return;
        };
        slot.on_fate(fate);
        if fate == ChildFate::Removed && !declared {
            self.slots.remove_if(path.name(), |_, named| {
                !named.declared && named.placed_at.as_ref() == Some(path)
            });
        }
    }
}

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
            .field("agents", &self.registry.slots.len())
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
}

impl SystemBuilder {
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

    /// How long the tree may take to stop in order after the kill switch trips before the
    /// rest is killed (60 s unless set).
    pub fn trip_shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.trip_shutdown_timeout = timeout;
        self
    }

    /// Checks the options and builds the system (nothing runs until [`System::start`]).
    ///
    /// Fails with [`SystemError::ZeroDefaultAskTimeout`] or
    /// [`SystemError::EventCapacityOutOfRange`].
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
        Ok(System {
            registry: Arc::new(Registry {
                shared: Arc::new(Shared::new(SharedOptions {
                    default_ask_timeout: self.ask_timeout,
                    event_capacity: self.event_capacity,
                    budget: self.budget,
                    breakers: self.breakers,
                    trip_shutdown_timeout: self.trip_shutdown_timeout,
                })),
                slots: DashMap::new(),
                tree: OnceLock::new(),
                deadline_timer: std::sync::Mutex::new(None),
            }),
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
        self.check(&spec)?;
        let slot = match self.registry.slots.entry(spec.name.clone()) {
            Entry::Occupied(_) => return Err(SystemError::DuplicateAgent(spec.name.to_string())),
            Entry::Vacant(vacant) => {
                let slot = Arc::new(Slot::<A>::new(
                    spec.name.clone(),
                    spec.config,
                    spec.classifier.clone(),
                    Arc::clone(&self.registry.shared),
                ));
                vacant.insert(Named {
                    slot: Arc::clone(&slot) as Arc<dyn AnySlot>,
                    declared: true,
                    placed_at: None,
                });
                slot
            }
        };
        if self.registry.tree.get().is_some() {
            // Declared after the start: not in the tree until added to it.
            slot.tree_started();
        }
        Ok(self.child_spec(spec, true))
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
        self.check(&spec)?;
        Ok(self.child_spec(spec, false))
    }

    fn check<A: Agent>(&self, spec: &AgentSpec<A>) -> Result<(), SystemError> {
        spec.name
            .validate()
            .map_err(|error| SystemError::InvalidAgentName {
                name: spec.name.to_string(),
                error,
            })?;
        if spec.config.ask_timeout == Some(Duration::ZERO) {
            return Err(SystemError::ZeroTimeout(spec.name.to_string()));
        }
        Ok(())
    }

    /// The supervisor child running `spec`: a declared agent's (`declared`) or a template's.
    fn child_spec<A: Agent>(&self, spec: AgentSpec<A>, declared: bool) -> ChildSpec {
        // The tree keeps these closures: they refer to the system weakly.
        let registry = Arc::downgrade(&self.registry);
        let factory = spec.factory;
        let config = spec.config;
        let classifier = spec.classifier;
        let name = spec.name.clone();
        let start = move |context: StartContext| {
            let factory = Arc::clone(&factory);
            let slot = match registry.upgrade() {
                // A declared agent's spec names one agent: not a template, nor renamed.
                Some(_) if declared && context.id() != &name => {
                    Err(StartError::InvalidSpec(format!(
                        "agent '{name}' is declared with System::agent and cannot run as '{}'; \
                         use System::agent_template for a dynamic supervisor",
                        context.id()
                    )))
                }
                Some(registry) => {
                    registry.claim::<A>(context.id(), context.path(), declared, config, &classifier)
                }
                None => Err(StartError::failed("the system is gone")),
            };
            async move {
                let slot = slot?;
                slot.place(context.path(), context.exit_cause());
                let args = AgentArgs {
                    factory: Arc::clone(&factory),
                    path: context.path().clone(),
                    previous_exit: context.previous_exit().cloned(),
                };
                let reporter = context.failure_reporter();
                let in_place_slot = Arc::clone(&slot);
                let actor = context.spawn(AgentActor { slot, reporter }, args).await?;
                context.restart_in_place(AgentInPlace {
                    actor: actor.clone(),
                    slot: in_place_slot,
                    factory: Arc::clone(&factory),
                    path: context.path().clone(),
                });
                Ok(actor)
            }
        };
        let watcher = Arc::downgrade(&self.registry);
        let mut child = ChildSpec::worker(spec.name, start)
            .restart(spec.restart)
            .unique_in_tree(declared)
            .watch(move |path, fate| {
                if let Some(registry) = watcher.upgrade() {
                    registry.on_fate(path, fate);
                }
            });
        if let Some(shutdown) = spec.shutdown {
            child = child.shutdown(shutdown);
        }
        child
    }

    /// Starts the supervision tree. A system starts once.
    pub async fn start(&self, spec: SupervisorSpec) -> Result<(), SystemError> {
        if self.registry.tree.get().is_some() {
            return Err(SystemError::AlreadyStarted);
        }
        let shared = Arc::clone(&self.registry.shared);
        let registry = Arc::downgrade(&self.registry);
        let tree = SupervisionTree::builder(spec)
            .events(EventBus::new(16))
            .event_ids(self.registry.shared.ids.clone())
            .epoch(self.registry.shared.epoch)
            .event_sink(move |event| {
                if shared.has_subscribers() {
                    shared.publish(SystemEvent::Lifecycle(event.clone()));
                }
                if matches!(event.kind, EventKind::Stopped { .. }) && event.path.is_root() {
                    match registry.upgrade() {
                        Some(registry) => registry.tree_stopped(),
                        // Every System handle was dropped: nobody else will end the stream.
                        None => shared.close_events(),
                    }
                }
            })
            .start()
            .await?;
        self.registry
            .tree
            .set(tree)
            .map_err(|_| SystemError::AlreadyStarted)?;
        for named in self.registry.slots.iter() {
            named.slot.tree_started();
        }
        if let Some(budget) = &self.registry.shared.budget {
            let runtime = tokio::runtime::Handle::current();
            let registry = Arc::downgrade(&self.registry);
            budget.kill_switch().on_trip(move |report| {
                if let Some(registry) = registry.upgrade() {
                    registry.on_trip(report, &runtime);
                }
            });
            if let Some(deadline) = budget.deadline() {
                let budget = budget.clone();
                let timer = tokio::spawn(async move {
                    tokio::time::sleep_until(deadline).await;
                    budget.check_deadline(Instant::now());
                });
                *self
                    .registry
                    .deadline_timer
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(timer);
            }
        }
        Ok(())
    }

    /// The circuit breakers guarding this system's asks, if any (for snapshots and operator
    /// controls).
    pub fn breakers(&self) -> Option<&BreakerRegistry> {
        self.registry.shared.breakers.as_ref()
    }

    /// The budget governing this system, if any.
    pub fn budget(&self) -> Option<&Budget> {
        self.registry.shared.budget.as_ref()
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
        let slot = self
            .registry
            .slots
            .get(name)
            .map(|named| Arc::clone(&named.slot))
            .ok_or_else(|| AskError::UnknownAgent {
                name: name.to_string(),
            })?;
        let slot = slot
            .into_any()
            .downcast::<Slot<A>>()
            .map_err(|_| AskError::WrongAgentType {
                name: name.to_string(),
                expected: std::any::type_name::<A>(),
            })?;
        Ok(AgentRef::new(slot))
    }

    /// A new subscriber to the system's events (supervision and asks, in one stream).
    /// The stream ends (`RecvError::Closed`) once the system has shut down.
    pub fn subscribe(&self) -> broadcast::Receiver<SystemEvent> {
        self.registry.shared.subscribe()
    }

    /// The running tree, once started.
    pub fn tree(&self) -> Option<&SupervisionTree> {
        self.registry.tree.get()
    }

    /// Whether [`shutdown`](Self::shutdown) has been called.
    pub fn is_shut_down(&self) -> bool {
        self.registry.shared.is_shut_down()
    }

    /// Shuts down: from now on every ask fails with [`AskError::ShutDown`]; the tree stops in
    /// order within `deadline` (the rest is killed after it); queued asks fail with `ShutDown`.
    pub async fn shutdown(&self, deadline: Duration) -> Result<(), SystemError> {
        self.registry.shared.mark_shut_down();
        self.registry.stop_deadline_timer();
        let stopped = match self.registry.tree.get() {
            Some(tree) => tree.shutdown(deadline).await.map_err(SystemError::from),
            None => Ok(()),
        };
        for named in self.registry.slots.iter() {
            named.slot.shut_down();
        }
        self.registry.shared.close_events();
        stopped
    }
}
