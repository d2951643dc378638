//! What a supervisor needs to know to start, restart and stop one child.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::FutureExt;
use ractor::{Actor, ActorCell};

use crate::fate::FateWatcher;
use crate::{
    ChildFate, ChildId, ChildPath, Restart, Shutdown, StartContext, StartError, SupervisorSpec,
};

/// A function that starts one incarnation of a worker.
pub(crate) type StartFn =
    Arc<dyn Fn(StartContext) -> BoxFuture<'static, Result<ActorCell, StartError>> + Send + Sync>;

/// Whether a child is a worker or a nested supervisor.
#[derive(Clone)]
pub(crate) enum ChildKind {
    Worker(StartFn),
    Supervisor(Arc<SupervisorSpec>),
}

/// The type of a child, as reported by [`which_children`](crate::SupervisorRef::which_children).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChildType {
    /// Any ractor actor.
    Worker,
    /// A nested supervisor.
    Supervisor,
}

/// One child of a supervisor: how to start it, whether to restart it, how to stop it.
///
/// Built like configuration. A worker is any ractor actor, started by an async function that
/// may fail; a nested supervisor is a [`SupervisorSpec`].
///
/// ```
/// use overseer_supervisor::{ChildSpec, Restart, Shutdown};
/// use ractor::{Actor, ActorProcessingErr, ActorRef};
/// use std::time::Duration;
///
/// struct Fetcher;
/// impl Actor for Fetcher {
///     type Msg = ();
///     type State = ();
///     type Arguments = ();
///     async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
///         Ok(())
///     }
/// }
///
/// let spec = ChildSpec::actor("fetcher", || (Fetcher, ()))
///     .restart(Restart::Transient)
///     .shutdown(Shutdown::Timeout(Duration::from_millis(500)));
/// assert_eq!(spec.id().as_str(), "fetcher");
/// assert_eq!(spec.restart_type(), Restart::Transient);
/// ```
#[derive(Clone)]
pub struct ChildSpec {
    pub(crate) id: ChildId,
    pub(crate) kind: ChildKind,
    pub(crate) restart: Restart,
    pub(crate) shutdown: Option<Shutdown>,
    pub(crate) significant: bool,
    pub(crate) unique_in_tree: bool,
    pub(crate) watcher: Option<FateWatcher>,
}

impl ChildSpec {
    /// A worker started by `start`, which is called for the first start and for every restart.
    ///
    /// `start` receives a [`StartContext`]; spawn the actor with [`StartContext::spawn`] so it is
    /// linked to the supervisor and its panics are told apart from its errors.
    pub fn worker<F, Fut, C>(id: impl Into<ChildId>, start: F) -> Self
    where
        F: Fn(StartContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<C, StartError>> + Send + 'static,
        C: Into<ActorCell>,
    {
        let start: StartFn = Arc::new(move |context| {
            start(context)
                .map(|started| started.map(Into::into))
                .boxed()
        });
        Self {
            id: id.into(),
            kind: ChildKind::Worker(start),
            restart: Restart::default(),
            shutdown: None,
            significant: false,
            unique_in_tree: false,
            watcher: None,
        }
    }

    /// A worker made from a ractor actor: `make` returns the actor and its start arguments for
    /// each incarnation.
    pub fn actor<A, F>(id: impl Into<ChildId>, make: F) -> Self
    where
        A: Actor,
        F: Fn() -> (A, A::Arguments) + Send + Sync + 'static,
    {
        let make = Arc::new(make);
        Self::worker(id, move |context: StartContext| {
            let make = Arc::clone(&make);
            async move {
                let (actor, arguments) = make();
                context.spawn(actor, arguments).await
            }
        })
    }

    /// A nested supervisor; its id is the spec's id.
    pub fn supervisor(spec: SupervisorSpec) -> Self {
        Self {
            id: spec.id.clone(),
            kind: ChildKind::Supervisor(Arc::new(spec)),
            restart: Restart::default(),
            shutdown: None,
            significant: false,
            unique_in_tree: false,
            watcher: None,
        }
    }

    /// Calls `watcher` with the child's path and every [`ChildFate`] the supervisor decides for
    /// it (for example, to keep work queued while a child restarts and fail it once the child
    /// is stopped for good). The path tells which placement of the spec the fate is about:
    /// its last segment ([`ChildPath::name`]) is the child's id, and on a dynamic supervisor's
    /// template, whose watcher is called for each child made from it, that is the id the child
    /// was added with. The callback runs inside the supervisor: keep it short.
    pub fn watch(
        mut self,
        watcher: impl Fn(&ChildPath, ChildFate) + Send + Sync + 'static,
    ) -> Self {
        self.watcher = Some(Arc::new(watcher));
        self
    }

    /// Sets the restart type (default [`Restart::Permanent`]).
    pub fn restart(mut self, restart: Restart) -> Self {
        self.restart = restart;
        self
    }

    /// Sets how the child is stopped (default: 5 s for a worker, infinity for a supervisor).
    pub fn shutdown(mut self, shutdown: Shutdown) -> Self {
        self.shutdown = Some(shutdown);
        self
    }

    /// Marks the child significant for its supervisor's [`AutoShutdown`](crate::AutoShutdown).
    pub fn significant(mut self, significant: bool) -> Self {
        self.significant = significant;
        self
    }

    /// Marks the child's id as naming it in the whole tree, not only under its supervisor (as
    /// an agent's name names it in its system): validating a tree refuses one where two
    /// children so marked have the same id, wherever they are
    /// ([`SpecError::DuplicateInTree`](crate::SpecError::DuplicateInTree), which also refuses
    /// the same spec placed under two supervisors), and such a child cannot be a dynamic
    /// supervisor's template ([`SpecError::UniqueTemplate`](crate::SpecError::UniqueTemplate)).
    /// A subtree added at run time is checked within itself; a start function that knows the
    /// names in use refuses a taken one with
    /// [`StartError::NameTaken`] (agents do).
    pub fn unique_in_tree(mut self, unique: bool) -> Self {
        self.unique_in_tree = unique;
        self
    }

    /// The same spec under another id (used for the children of a dynamic supervisor).
    pub fn with_id(mut self, id: impl Into<ChildId>) -> Self {
        self.id = id.into();
        self
    }

    /// The child's id.
    pub fn id(&self) -> &ChildId {
        &self.id
    }

    /// The restart type.
    pub fn restart_type(&self) -> Restart {
        self.restart
    }

    /// How the child is stopped, defaults applied.
    pub fn shutdown_spec(&self) -> Shutdown {
        self.shutdown.unwrap_or(match self.kind {
            ChildKind::Worker(_) => Shutdown::WORKER_DEFAULT,
            ChildKind::Supervisor(_) => Shutdown::SUPERVISOR_DEFAULT,
        })
    }

    /// Whether the child is significant.
    pub fn is_significant(&self) -> bool {
        self.significant
    }

    /// Whether the child's id must be unique in the whole tree
    /// ([`unique_in_tree`](Self::unique_in_tree)).
    pub fn is_unique_in_tree(&self) -> bool {
        self.unique_in_tree
    }

    /// Whether the child is a worker or a supervisor.
    pub fn child_type(&self) -> ChildType {
        match self.kind {
            ChildKind::Worker(_) => ChildType::Worker,
            ChildKind::Supervisor(_) => ChildType::Supervisor,
        }
    }
}

impl fmt::Debug for ChildSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildSpec")
            .field("id", &self.id)
            .field("type", &self.child_type())
            .field("restart", &self.restart)
            .field("shutdown", &self.shutdown_spec())
            .field("significant", &self.significant)
            .field("unique_in_tree", &self.unique_in_tree)
            .finish()
    }
}
