//! A running supervision tree: its root, its events, its orderly shutdown.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use ractor::{ActorCell, ActorStatus};
use tokio::sync::broadcast;
use tokio::time::Instant;

use crate::subtree_watchers::SubtreeWatchers;
use crate::supervisor::spawn::{spawn_supervisor, SupervisorArgs};
use crate::supervisor::stop::kill_within;
use crate::supervisor::tree_context::{EventSink, TreeContext};
use crate::{
    ChildFate, ChildPath, EventBus, EventId, EventIds, EventKind, ExitCause, ExitReason,
    LifecycleEvent, StartError, SupervisorRef, SupervisorSpec, TreeError,
};

/// How long a shutdown past its deadline waits for the actors it killed to be gone before it
/// reports those still running (a kill takes effect at the actor's next poll, so this is a few
/// scheduler turns unless a handler never yields).
const KILL_GRACE: Duration = Duration::from_millis(50);

/// A running tree, started from its root [`SupervisorSpec`].
///
/// ```
/// use overseer_supervisor::{ChildSpec, EventKind, SupervisionTree, SupervisorSpec};
/// use ractor::{Actor, ActorProcessingErr, ActorRef};
/// use std::time::Duration;
///
/// struct Worker;
/// impl Actor for Worker {
///     type Msg = ();
///     type State = ();
///     type Arguments = ();
///     async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
///         Ok(())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let spec = SupervisorSpec::one_for_one("root").child(ChildSpec::actor("worker", || (Worker, ())));
/// let tree = SupervisionTree::builder(spec).start().await?;
/// let children = tree.root().which_children().await?;
/// assert_eq!(children.len(), 1);
/// tree.shutdown(Duration::from_secs(5)).await?;
/// assert!(!tree.is_running());
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct SupervisionTree {
    root: SupervisorRef,
    root_cell: ActorCell,
    context: TreeContext,
    root_exit_cause: ExitCause,
    /// The watchers below the root: settled by the root as it exits, and here if it is killed.
    root_watchers: SubtreeWatchers,
}

/// Options for starting a [`SupervisionTree`].
pub struct TreeBuilder {
    spec: SupervisorSpec,
    events: Option<EventBus>,
    sink: Option<EventSink>,
    call_timeout: Duration,
    ids: EventIds,
    epoch: Option<Instant>,
}

impl std::fmt::Debug for TreeBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TreeBuilder")
            .field("spec", &self.spec)
            .field("events", &self.events)
            .field("has_sink", &self.sink.is_some())
            .field("call_timeout", &self.call_timeout)
            .finish()
    }
}

impl TreeBuilder {
    /// Publishes events on `events` (subscribe to it before starting to see the first starts).
    pub fn events(mut self, events: EventBus) -> Self {
        self.events = Some(events);
        self
    }

    /// Also gives every event to `sink`, synchronously and in order, before it is published on
    /// the bus (for example, to merge lifecycle events into a wider event stream).
    pub fn event_sink(mut self, sink: impl Fn(&LifecycleEvent) + Send + Sync + 'static) -> Self {
        self.sink = Some(Arc::new(sink));
        self
    }

    /// Numbers the tree's events from `ids`, a sequence shared with other event sources, so that
    /// ids are unique across all of them and causal links can cross from one to another.
    pub fn event_ids(mut self, ids: EventIds) -> Self {
        self.ids = ids;
        self
    }

    /// Measures every event's `elapsed` from `epoch` instead of from the tree's start (so that
    /// the tree's events share a clock origin with other event sources).
    pub fn epoch(mut self, epoch: Instant) -> Self {
        self.epoch = Some(epoch);
        self
    }

    /// The default call timeout of the [`SupervisorRef`]s this tree hands out (60 s unless set;
    /// zero is refused by [`start`](Self::start) with [`TreeError::ZeroCallTimeout`]).
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// Validates the options and the spec and starts the root supervisor, which starts its
    /// children in order.
    ///
    /// # Errors
    /// [`TreeError::ZeroCallTimeout`] for a zero call timeout; [`TreeError::InvalidSpec`] for an
    /// invalid spec (nothing is started); [`TreeError::StartFailed`] when the root supervisor
    /// failed to start: its check before start failed, or a child failed to start
    /// ([`StartError::ChildFailed`], after the children started before it were stopped again).
    ///
    /// # Cancel safety
    /// Not cancel safe. The root supervisor starts in a task of its own (so that a deep tree's
    /// starts do not nest on one stack): dropped after its first poll, the future leaves that
    /// task running, and the tree starts and runs with no [`SupervisionTree`] to stop it. Keep
    /// the future until it finishes.
    ///
    /// # Panics
    /// Outside a Tokio runtime (the root supervisor is spawned on it).
    pub async fn start(self) -> Result<SupervisionTree, TreeError> {
        if self.call_timeout.is_zero() {
            return Err(TreeError::ZeroCallTimeout);
        }
        self.spec.validate()?;
        let mut context = TreeContext::new(
            self.events.unwrap_or_default(),
            self.sink,
            self.call_timeout,
            self.ids,
        );
        if let Some(epoch) = self.epoch {
            context.epoch = epoch;
        }
        let root_exit_cause = ExitCause::default();
        let root_watchers = SubtreeWatchers::default();
        let path = ChildPath::root(&self.spec.id);
        let args = SupervisorArgs {
            spec: Arc::new(self.spec),
            path: path.clone(),
            tree: context.clone(),
            is_root: true,
            start_cause: None,
            exit_cause: root_exit_cause.clone(),
            watchers: root_watchers.clone(),
        };
        match spawn_supervisor(args, None).await {
            Ok(actor) => Ok(SupervisionTree {
                root_cell: actor.get_cell(),
                root: SupervisorRef::new(actor, context.call_timeout),
                context,
                root_exit_cause,
                root_watchers,
            }),
            Err(error) => {
                if let StartError::ChildFailed { child, cause } = &error {
                    context.emit(
                        &path,
                        EventKind::Stopped {
                            reason: ExitReason::FailedToStartChild {
                                child: child.clone(),
                                cause: cause.clone(),
                            },
                        },
                        None,
                    );
                }
                Err(TreeError::StartFailed(error))
            }
        }
    }
}

impl SupervisionTree {
    /// The default call timeout of the tree's supervisor handles.
    pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(60);

    /// Options for starting a tree from `spec`.
    pub fn builder(spec: SupervisorSpec) -> TreeBuilder {
        TreeBuilder {
            spec,
            events: None,
            sink: None,
            call_timeout: Self::DEFAULT_CALL_TIMEOUT,
            ids: EventIds::default(),
            epoch: None,
        }
    }

    /// Starts a tree with default options: [`TreeBuilder::start`], with its errors, its
    /// cancel safety (not cancel safe: a dropped start leaves the tree starting) and its panics.
    pub async fn start(spec: SupervisorSpec) -> Result<Self, TreeError> {
        Self::builder(spec).start().await
    }

    /// The root supervisor.
    pub fn root(&self) -> &SupervisorRef {
        &self.root
    }

    /// The tree's event bus.
    pub fn events(&self) -> &EventBus {
        &self.context.events
    }

    /// A new subscriber to the tree's events.
    pub fn subscribe(&self) -> broadcast::Receiver<LifecycleEvent> {
        self.context.events.subscribe()
    }

    /// Whether the root supervisor is still running (it exits on escalation, automatic shutdown
    /// or [`shutdown`](Self::shutdown)).
    pub fn is_running(&self) -> bool {
        !matches!(
            self.root_cell.get_status(),
            ActorStatus::Stopping | ActorStatus::Stopped
        )
    }

    /// How many of the tree's supervisors are in the middle of handling something right now
    /// (an exit, a restart, a shutdown, a call). With no actor ready to run, 0 means the tree
    /// has settled; test harnesses on a paused clock use it to wait for quiescence.
    pub fn operations_in_progress(&self) -> usize {
        self.context.activity.load(Ordering::SeqCst)
    }

    /// How many actors of this tree are alive: its supervisors and the workers spawned through
    /// [`StartContext::spawn`](crate::StartContext::spawn) (so every agent). After the tree has
    /// stopped it reaches 0 as the last actors finish; a leak check polls it.
    pub fn live_actors(&self) -> usize {
        self.context.census.count()
    }

    /// Waits until the root supervisor has exited, for at most `timeout`; returns whether it has.
    ///
    /// # Cancel safety
    /// Cancel safe: it only waits.
    ///
    /// # Panics
    /// Outside a Tokio runtime with timers enabled, as [`tokio::time::timeout`].
    pub async fn wait_for_exit(&self, timeout: Duration) -> bool {
        self.root_cell.wait(Some(timeout)).await.is_ok()
    }

    /// Stops the whole tree in order: every supervisor stops its children in reverse start
    /// order, depth first, each child under its shutdown spec, and the root exits with reason
    /// `shutdown`. If that takes longer than `deadline`, the rest of the tree is killed and
    /// [`TreeError::ShutdownTimedOut`] is returned. Stopping a stopped tree succeeds.
    ///
    /// # Errors
    /// [`TreeError::ShutdownTimedOut`] when the deadline passed and the rest was killed;
    /// [`TreeError::ShutdownIncomplete`] when, 50 ms after those kills, some actors still ran
    /// (handlers that never yield to the runtime): it returns then rather than wait for them.
    ///
    /// # Cancel safety
    /// Dropped before its first poll, it does nothing. Dropped after, the stop has been sent:
    /// the tree goes on stopping in order, each child under its own shutdown spec, but nothing
    /// is killed at `deadline` (a child that never stops, under
    /// [`Shutdown::Infinity`](crate::Shutdown::Infinity), keeps the tree running), and the
    /// watchers below the root hear [`Stopped`](ChildFate::Stopped) only when the root exits.
    ///
    /// # Panics
    /// Outside a Tokio runtime with timers enabled (the deadline is a tokio timer).
    pub async fn shutdown(&self, deadline: Duration) -> Result<(), TreeError> {
        self.shutdown_caused_by(deadline, None).await
    }

    /// Starts stopping the whole tree in order, as [`shutdown`](Self::shutdown) does, without
    /// waiting for it and without a deadline (each child still has its own shutdown spec): for
    /// code that cannot wait, such as a `Drop`. Stopping a stopped tree does nothing.
    pub fn begin_shutdown(&self) {
        self.root_cell.stop(ExitReason::Shutdown.to_stop_reason());
    }

    /// [`shutdown`](Self::shutdown), recording `cause` as what caused it: the `stopped` events
    /// of the shutdown name it in `caused_by` (for example the kill switch's trip event).
    ///
    /// # Errors
    /// As [`shutdown`](Self::shutdown).
    ///
    /// # Cancel safety
    /// As [`shutdown`](Self::shutdown); the cause is recorded at the first poll.
    ///
    /// # Panics
    /// As [`shutdown`](Self::shutdown).
    pub async fn shutdown_caused_by(
        &self,
        deadline: Duration,
        cause: Option<EventId>,
    ) -> Result<(), TreeError> {
        if cause.is_some() {
            self.root_exit_cause.set(cause);
        }
        match self
            .root_cell
            .stop_and_wait(ExitReason::Shutdown.to_stop_reason(), Some(deadline))
            .await
        {
            Err(ractor::RactorErr::Timeout) => {
                let running = kill_within(&self.root_cell, KILL_GRACE).await;
                // The root did not get to tell its children: nothing will start them again.
                self.root_watchers.settle(ChildFate::Stopped);
                if running.is_empty() {
                    Err(TreeError::ShutdownTimedOut(deadline))
                } else {
                    Err(TreeError::ShutdownIncomplete {
                        deadline,
                        running: running
                            .iter()
                            .map(|actor| actor.get_id().to_string())
                            .collect(),
                    })
                }
            }
            _ => Ok(()),
        }
    }
}
