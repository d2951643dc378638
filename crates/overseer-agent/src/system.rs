//! The entry point: declare agents, start the tree, look up handles, subscribe, shut down.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use overseer_supervisor::{
    ChildSpec, EventBus, StartContext, StartError, SupervisionTree, SupervisorSpec,
};
use tokio::sync::broadcast;

use crate::actor::{AgentActor, AgentArgs};
use crate::slot::{AnySlot, Slot};
use crate::spec::AgentConfig;
use crate::{Agent, AgentName, AgentRef, AgentSpec, AskError, SystemError, SystemEvent};

/// What every agent of one system shares.
pub(crate) struct Shared {
    pub(crate) default_ask_timeout: Duration,
    shut_down: AtomicBool,
    events: broadcast::Sender<SystemEvent>,
    slots: DashMap<AgentName, Arc<dyn AnySlot>>,
    tree: OnceLock<SupervisionTree>,
}

impl Shared {
    pub(crate) fn is_shut_down(&self) -> bool {
        self.shut_down.load(Ordering::Acquire)
    }

    pub(crate) fn publish(&self, event: SystemEvent) {
        let _ = self.events.send(event);
    }

    /// The slot named `name`, made on first use; an existing slot of another agent type is an
    /// error.
    fn slot<A: Agent>(
        self: &Arc<Self>,
        name: &AgentName,
        config: AgentConfig,
    ) -> Result<Arc<Slot<A>>, String> {
        let slot = match self.slots.entry(name.clone()) {
            Entry::Occupied(existing) => Arc::clone(existing.get()),
            Entry::Vacant(vacant) => {
                let slot: Arc<dyn AnySlot> =
                    Arc::new(Slot::<A>::new(name.clone(), config, Arc::clone(self)));
                vacant.insert(Arc::clone(&slot));
                slot
            }
        };
        let found = slot.agent_type();
        slot.into_any().downcast::<Slot<A>>().map_err(|_| {
            format!(
                "the agent name '{name}' is used by a {found}, not a {}",
                std::any::type_name::<A>()
            )
        })
    }
}

/// A system of agents under one supervision tree.
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
/// let system = System::builder().ask_timeout(Duration::from_secs(10)).build();
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
    shared: Arc<Shared>,
}

impl std::fmt::Debug for System {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("System")
            .field("agents", &self.shared.slots.len())
            .field("started", &self.shared.tree.get().is_some())
            .field("shut_down", &self.shared.is_shut_down())
            .finish()
    }
}

/// Options for a [`System`].
#[derive(Debug, Clone)]
pub struct SystemBuilder {
    ask_timeout: Duration,
    event_capacity: usize,
}

impl SystemBuilder {
    /// The default deadline of every ask (60 s unless set).
    pub fn ask_timeout(mut self, timeout: Duration) -> Self {
        self.ask_timeout = timeout;
        self
    }

    /// How many events a slow subscriber may fall behind before it is told it lagged.
    pub fn event_capacity(mut self, capacity: usize) -> Self {
        self.event_capacity = capacity;
        self
    }

    /// Builds the system (nothing runs until [`System::start`]).
    pub fn build(self) -> System {
        let (events, _) = broadcast::channel(self.event_capacity.max(1));
        System {
            shared: Arc::new(Shared {
                default_ask_timeout: self.ask_timeout,
                shut_down: AtomicBool::new(false),
                events,
                slots: DashMap::new(),
                tree: OnceLock::new(),
            }),
        }
    }
}

impl System {
    /// The default ask deadline.
    pub const DEFAULT_ASK_TIMEOUT: Duration = Duration::from_secs(60);

    /// Options for a new system.
    pub fn builder() -> SystemBuilder {
        SystemBuilder {
            ask_timeout: Self::DEFAULT_ASK_TIMEOUT,
            event_capacity: 16 * 1024,
        }
    }

    /// Declares an agent and returns the supervisor child that runs it. Names are unique in a
    /// system.
    pub fn agent<A: Agent>(&self, spec: AgentSpec<A>) -> Result<ChildSpec, SystemError> {
        self.check(&spec)?;
        if self.shared.slots.contains_key(&spec.name) {
            return Err(SystemError::DuplicateAgent(spec.name.to_string()));
        }
        self.shared
            .slot::<A>(&spec.name, spec.config)
            .map_err(|_| SystemError::DuplicateAgent(spec.name.to_string()))?;
        Ok(self.child_spec(spec))
    }

    /// Declares an agent template for a dynamic supervisor: each child added with
    /// [`SupervisorRef::start_dynamic_child`](overseer_supervisor::SupervisorRef::start_dynamic_child)
    /// becomes an agent named by its child id.
    pub fn agent_template<A: Agent>(&self, spec: AgentSpec<A>) -> Result<ChildSpec, SystemError> {
        self.check(&spec)?;
        Ok(self.child_spec(spec))
    }

    fn check<A: Agent>(&self, spec: &AgentSpec<A>) -> Result<(), SystemError> {
        if spec.name.as_str().is_empty() {
            return Err(SystemError::EmptyAgentName);
        }
        if spec.config.ask_timeout == Some(Duration::ZERO) {
            return Err(SystemError::ZeroTimeout(spec.name.to_string()));
        }
        Ok(())
    }

    fn child_spec<A: Agent>(&self, spec: AgentSpec<A>) -> ChildSpec {
        let shared = Arc::clone(&self.shared);
        let factory = spec.factory;
        let config = spec.config;
        let start = move |context: StartContext| {
            let shared = Arc::clone(&shared);
            let factory = Arc::clone(&factory);
            async move {
                let slot = shared
                    .slot::<A>(context.id(), config)
                    .map_err(StartError::Failed)?;
                let args = AgentArgs {
                    factory,
                    path: context.path().clone(),
                    previous_exit: context.previous_exit().cloned(),
                };
                context.spawn(AgentActor { slot }, args).await
            }
        };
        let watcher = Arc::clone(&self.shared);
        let mut child = ChildSpec::worker(spec.name, start)
            .restart(spec.restart)
            .watch(move |id, fate| {
                if let Some(slot) = watcher.slots.get(id) {
                    slot.on_fate(fate);
                }
            });
        if let Some(shutdown) = spec.shutdown {
            child = child.shutdown(shutdown);
        }
        child
    }

    /// Starts the supervision tree. A system starts once.
    pub async fn start(&self, spec: SupervisorSpec) -> Result<(), SystemError> {
        if self.shared.tree.get().is_some() {
            return Err(SystemError::AlreadyStarted);
        }
        let sink = Arc::clone(&self.shared);
        let tree = SupervisionTree::builder(spec)
            .events(EventBus::new(16))
            .event_sink(move |event| sink.publish(SystemEvent::Lifecycle(event.clone())))
            .start()
            .await?;
        self.shared
            .tree
            .set(tree)
            .map_err(|_| SystemError::AlreadyStarted)
    }

    /// A handle to the agent named `name`.
    pub fn agent_ref<A: Agent>(&self, name: &str) -> Result<AgentRef<A>, AskError> {
        let slot = self
            .shared
            .slots
            .get(name)
            .map(|slot| Arc::clone(slot.value()))
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
    pub fn subscribe(&self) -> broadcast::Receiver<SystemEvent> {
        self.shared.events.subscribe()
    }

    /// The running tree, once started.
    pub fn tree(&self) -> Option<&SupervisionTree> {
        self.shared.tree.get()
    }

    /// Whether [`shutdown`](Self::shutdown) has been called.
    pub fn is_shut_down(&self) -> bool {
        self.shared.is_shut_down()
    }

    /// Shuts down: from now on every ask fails with [`AskError::ShutDown`]; the tree stops in
    /// order within `deadline` (the rest is killed after it); queued asks fail with `ShutDown`.
    pub async fn shutdown(&self, deadline: Duration) -> Result<(), SystemError> {
        self.shared.shut_down.store(true, Ordering::Release);
        let stopped = match self.shared.tree.get() {
            Some(tree) => tree.shutdown(deadline).await.map_err(SystemError::from),
            None => Ok(()),
        };
        for slot in self.shared.slots.iter() {
            slot.shut_down();
        }
        stopped
    }
}
