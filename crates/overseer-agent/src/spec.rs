//! How an agent is declared: name, factory, restart type, deadlines.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use overseer_supervisor::{Restart, Shutdown};

use crate::{Agent, AgentName};

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
}

/// The per-agent settings the call path reads.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct AgentConfig {
    pub(crate) ask_timeout: Option<Duration>,
    pub(crate) fail_fast_while_restarting: bool,
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
        }
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

    /// While the agent restarts, fail asks at once with
    /// [`AskError::Restarting`](crate::AskError::Restarting) instead of queueing them for the
    /// new incarnation.
    pub fn fail_fast_while_restarting(mut self, fail_fast: bool) -> Self {
        self.config.fail_fast_while_restarting = fail_fast;
        self
    }

    /// The agent's name.
    pub fn name(&self) -> &AgentName {
        &self.name
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
