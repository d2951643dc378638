//! Restarting a worker in place: the same actor, task and mailbox, with its state rebuilt.
//!
//! A restart in OTP is a new process. Spawning a ractor actor costs more than the rest of a
//! restart together (a task, two channels, registration), so a worker that can survive its
//! own failure may offer to be restarted in place instead. It then:
//!
//! 1. catches its failure itself and, instead of exiting, drops its state ("parks") and reports
//!    the failure with its [`FailureReporter`];
//! 2. lets its supervisor decide exactly as for an exit (the same events, restart types,
//!    intensity, strategies and escalation);
//! 3. rebuilds its state when the supervisor restarts it ([`InPlaceChild::rebuild`]), or is
//!    stopped for good when the supervisor does not restart it.
//!
//! In a group restart (`one_for_all`, `rest_for_one`) the supervisor parks its in-place
//! siblings ([`InPlaceChild::park`]) under their shutdown deadline instead of stopping them;
//! one that does not park in time is killed and started afresh with its start function.
//!
//! A one_for_one restart needs nothing of the supervisor but its restart intensity and its
//! event stream, so a worker that reports with [`FailureReporter::failed`] may be told to carry
//! it out itself, in its own task, without a message to its supervisor and back
//! ([`AfterFailure::RebuildNow`]): when the supervisor is between messages, the child's
//! restart type says restart, and the restart is within the intensity. The decision is taken
//! under the lock the supervisor takes to count its own restarts, and the same events are
//! published in the same order. In every other case the failure is reported as above.
//!
//! What differs from a restart with a new actor: messages queued in the mailbox survive the
//! restart, and the actor id stays the same. Anything else (events, order, counts, timing of
//! decisions) is the same, which the tests check by running the same scenarios both ways.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use futures::future::BoxFuture;
use futures::FutureExt;
use ractor::ActorCell;
use tokio::sync::oneshot;

use crate::child_spec::FateWatcher;
use crate::supervisor::{BusyGuard, SupervisorMsg, TreeContext};
use crate::{
    count_restart, decide_restart, ChildFate, ChildPath, Decider, EventId, EventKind, ExitCause,
    ExitReason, Restart, RestartDecision, RestartScope, RestartWindow, StartError, Strategy,
};

/// What a supervisor asks of a worker it restarts in place. Registered by the worker's start
/// function with [`StartContext::restart_in_place`](crate::StartContext::restart_in_place).
pub trait InPlaceChild: Send + Sync + 'static {
    /// Stop working and drop the state, as a stop would, but keep the actor: resolves once the
    /// worker is parked (after the message it is handling, if any). The supervisor waits at
    /// most the child's shutdown deadline, then kills the actor. `Err` if the actor is gone.
    fn park(&self) -> BoxFuture<'static, Result<(), StartError>>;

    /// Rebuild the state, as a start would, after `previous_exit`; resolves once the worker
    /// serves again, or with why it could not start (the supervisor then stops the actor and
    /// treats it as a failed start).
    fn rebuild(&self, previous_exit: ExitReason) -> BoxFuture<'static, Result<(), StartError>>;
}

/// The answer to a request an [`InPlaceChild`] sent its actor with a `oneshot` reply:
/// `sent` says whether the message was accepted. An actor that is gone (the message refused,
/// or the reply dropped) is a [`StartError`].
///
/// ```
/// use overseer_supervisor::{child_reply, StartError};
/// use tokio::sync::oneshot;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let (done, parked) = oneshot::channel::<()>();
/// done.send(()).unwrap();
/// assert!(child_reply(true, parked).await.is_ok());
/// let (_, never) = oneshot::channel::<()>();
/// assert!(matches!(child_reply(false, never).await, Err(StartError::Failed(_))));
/// # }
/// ```
pub fn child_reply<T: Send + 'static>(
    sent: bool,
    reply: oneshot::Receiver<T>,
) -> BoxFuture<'static, Result<T, StartError>> {
    async move {
        if !sent {
            return Err(StartError::failed("the worker's actor is gone"));
        }
        reply
            .await
            .map_err(|_| StartError::failed("the worker's actor is gone"))
    }
    .boxed()
}

/// How an in-place worker tells its supervisor that it failed and has parked. Given by
/// [`StartContext::failure_reporter`](crate::StartContext::failure_reporter).
#[derive(Debug, Clone)]
pub struct FailureReporter {
    pub(crate) supervisor: ActorCell,
    /// How many times the supervisor has parked or rebuilt the worker: a report names the
    /// count it saw, so one overtaken by a group restart is recognised as stale.
    pub(crate) generation: Arc<AtomicU64>,
    /// Set when the worker may carry out its own restarts (its supervisor is one_for_one).
    pub(crate) restarts_here: Option<ChildRestarts>,
}

/// What a worker does after [`FailureReporter::failed`].
///
/// | Variant | When | The worker then |
/// |---|---|---|
/// | [`RebuildNow`](Self::RebuildNow) | the supervisor is between messages, one_for_one, the child's restart type says restart, within the intensity | rebuilds its state now, in its own task, and hands the result to [`InPlaceRestart::finish`] |
/// | [`Reported`](Self::Reported) | any other case: the supervisor decides as for an exit | waits parked for [`InPlaceChild::rebuild`], [`InPlaceChild::park`] or a stop |
/// | [`SupervisorGone`](Self::SupervisorGone) | the supervisor has exited | exits |
#[derive(Debug)]
#[must_use = "a restart decided here must be carried out and finished"]
pub enum AfterFailure {
    /// Restart here: the `stopped` event is published and the restart counted.
    RebuildNow(InPlaceRestart),
    /// The supervisor was told and decides.
    Reported,
    /// The supervisor is gone.
    SupervisorGone,
}

impl FailureReporter {
    /// Reports that the worker `child` (its own actor) failed with `reason` and has parked.
    /// Returns `false` if the supervisor is gone; the worker should then exit.
    pub fn report(&self, child: &ActorCell, reason: ExitReason) -> bool {
        let generation = self.generation.load(Ordering::Acquire);
        self.supervisor
            .send_message(SupervisorMsg::ChildFailed(
                child.clone(),
                reason,
                generation,
            ))
            .is_ok()
    }

    /// Like [`report`](Self::report), but when the supervisor's decision can only be to restart
    /// this worker alone, the worker is told to carry it out itself
    /// ([`AfterFailure::RebuildNow`]): no message to the supervisor and back.
    pub fn failed(&self, child: &ActorCell, reason: ExitReason) -> AfterFailure {
        let reason = match &self.restarts_here {
            Some(restarts) => match restarts.try_restart(&self.supervisor, child, reason) {
                Ok(restart) => return AfterFailure::RebuildNow(restart),
                Err(reason) => reason,
            },
            None => reason,
        };
        if self.report(child, reason) {
            AfterFailure::Reported
        } else {
            AfterFailure::SupervisorGone
        }
    }
}

/// A restart a worker carries out itself (see [`FailureReporter::failed`]). Rebuild the state,
/// then call [`finish`](Self::finish) with the result: it publishes `started` (or
/// `start_failed`, after which the supervisor stops the actor and retries with a new one, as for
/// any failed restart). Dropped unfinished, it counts as a failed start.
#[derive(Debug)]
pub struct InPlaceRestart {
    restarts: ChildRestarts,
    supervisor: ActorCell,
    child: ActorCell,
    previous_exit: ExitReason,
    stopped: EventId,
    finished: bool,
    _busy: BusyGuard,
}

impl InPlaceRestart {
    /// Why the worker failed: what its rebuilt state is told, as `on_restart` would be.
    pub fn previous_exit(&self) -> &ExitReason {
        &self.previous_exit
    }

    /// Publishes the restart's outcome. `Err` is a failed start: the supervisor then stops the
    /// actor and tries again later with the worker's start function.
    pub fn finish(mut self, rebuilt: Result<(), StartError>) {
        self.conclude(rebuilt);
    }

    fn conclude(&mut self, rebuilt: Result<(), StartError>) {
        self.finished = true;
        let restarts = &self.restarts;
        let kind = match &rebuilt {
            Ok(()) => EventKind::Started,
            Err(error) => EventKind::StartFailed {
                error: error.clone(),
            },
        };
        restarts
            .shared
            .tree
            .emit(&restarts.path, kind, Some(self.stopped));
        if rebuilt.is_err() {
            let failed =
                SupervisorMsg::RestartInPlaceFailed(self.child.clone(), self.previous_exit.clone());
            if self.supervisor.send_message(failed).is_err() {
                self.child.stop(None);
            }
        }
    }
}

impl Drop for InPlaceRestart {
    fn drop(&mut self) {
        if !self.finished {
            self.conclude(Err(StartError::failed(
                "the restart in place was abandoned before it finished",
            )));
        }
    }
}

/// What a supervisor shares with its in-place children so that one of them can carry out its
/// own one_for_one restart: whether the supervisor is between messages, and its restart window.
/// Both take their restart decisions here, with [`decide_restart`], under one lock.
pub(crate) struct SharedRestarts {
    pub(crate) tree: TreeContext,
    strategy: Strategy,
    state: Mutex<RestartsState>,
}

struct RestartsState {
    /// A child may restart itself: the supervisor is between messages and not exiting.
    open: bool,
    /// The supervisor has decided to exit (or is exiting): never open again.
    exiting: bool,
    window: RestartWindow,
}

impl SharedRestarts {
    /// Closed until the supervisor has started its children.
    pub(crate) fn new(tree: TreeContext, strategy: Strategy, window: RestartWindow) -> Arc<Self> {
        Arc::new(Self {
            tree,
            strategy,
            state: Mutex::new(RestartsState {
                open: false,
                exiting: false,
                window,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, RestartsState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The supervisor's decision on the exit of a child of type `restart`.
    pub(crate) fn decide(&self, restart: Restart, reason: &ExitReason) -> RestartDecision {
        let now = self.tree.now_secs();
        let window = &mut self.lock().window;
        decide_restart(
            restart,
            reason,
            self.strategy,
            window,
            now,
            Decider::Supervisor,
        )
    }

    /// The supervisor's decision on retrying a restart that failed to start.
    pub(crate) fn decide_retry(&self) -> RestartDecision {
        let now = self.tree.now_secs();
        count_restart(
            self.strategy,
            &mut self.lock().window,
            now,
            Decider::Supervisor,
        )
    }

    /// Lets children restart themselves (the supervisor is between messages).
    pub(crate) fn open(&self) {
        let mut state = self.lock();
        state.open = !state.exiting;
    }

    /// No child restarts itself until the returned guard drops (the supervisor is handling a
    /// message).
    pub(crate) fn close(self: &Arc<Self>) -> ClosedRestarts {
        self.lock().open = false;
        ClosedRestarts(Arc::clone(self))
    }

    /// The supervisor exits: no child restarts itself any more.
    pub(crate) fn close_for_good(&self) {
        let mut state = self.lock();
        state.open = false;
        state.exiting = true;
    }
}

/// Keeps a supervisor's children from restarting themselves while it handles a message.
pub(crate) struct ClosedRestarts(Arc<SharedRestarts>);

impl Drop for ClosedRestarts {
    fn drop(&mut self) {
        self.0.open();
    }
}

/// What one child of a one_for_one supervisor needs to restart itself.
#[derive(Clone)]
pub(crate) struct ChildRestarts {
    pub(crate) shared: Arc<SharedRestarts>,
    pub(crate) path: ChildPath,
    pub(crate) restart: Restart,
    pub(crate) exit_cause: ExitCause,
    pub(crate) watcher: Option<FateWatcher>,
}

impl std::fmt::Debug for ChildRestarts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChildRestarts")
            .field("path", &self.path)
            .field("restart", &self.restart)
            .finish()
    }
}

impl ChildRestarts {
    /// The supervisor's decision, taken here when it can only be this child's restart: the
    /// `stopped` event is published and the restart counted; the reason back to report it
    /// instead.
    fn try_restart(
        &self,
        supervisor: &ActorCell,
        child: &ActorCell,
        reason: ExitReason,
    ) -> Result<InPlaceRestart, ExitReason> {
        let tree = &self.shared.tree;
        let busy = tree.busy();
        let stopped = {
            let mut state = self.shared.lock();
            if !state.open {
                return Err(reason);
            }
            let now = tree.now_secs();
            let window = &mut state.window;
            let strategy = self.shared.strategy;
            let decision =
                decide_restart(self.restart, &reason, strategy, window, now, Decider::Child);
            if decision != RestartDecision::Restart(RestartScope::Child) {
                return Err(reason);
            }
            let stopped = EventKind::Stopped {
                reason: reason.clone(),
            };
            // Under the lock: the supervisor publishes nothing of its own in between.
            tree.emit(&self.path, stopped, self.exit_cause.take())
        };
        if let Some(watcher) = &self.watcher {
            watcher(&self.path, ChildFate::Restarting);
        }
        Ok(InPlaceRestart {
            restarts: self.clone(),
            supervisor: supervisor.clone(),
            child: child.clone(),
            previous_exit: reason,
            stopped,
            finished: false,
            _busy: busy,
        })
    }
}
