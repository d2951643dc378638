//! The supervisor actor: OTP's `supervisor` behaviour as a ractor actor.
//!
//! The decisions are pure functions elsewhere ([`decide_on_exit`], [`RestartWindow`],
//! [`Strategy::affected`], [`AutoShutdown::shuts_down`]); this module only carries them out:
//! it starts and stops actors, reacts to their exits, and answers the child API.
//!
//! Three ractor behaviours are designed around here:
//! * ractor reports panics and returned errors alike (`ActorFailed`): workers are spawned inside
//!   [`Supervised`](crate::Supervised), which tags each failure with an exact [`ExitReason`].
//! * a failing `pre_start` produces no supervision event, only a failed spawn: start failures are
//!   read from the spawn result, never from events.
//! * ractor's default `handle_supervisor_evt` stops the parent on any child exit: this actor
//!   overrides it and applies OTP's rules instead. Exit events from actors that are no longer
//!   children (because this supervisor stopped them itself) are recognised by actor id and ignored,
//!   which is what OTP's `unlink_flush` achieves.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ractor::{
    Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent,
};
use tokio::time::Instant;

use crate::census::{Census, CensusGuard};
use crate::child_spec::ChildKind;
use crate::in_place::{ChildRestarts, SharedRestarts};
use crate::subtree_watchers::SubtreeWatchers;
use crate::supervisor_ref::{ChildCounts, ChildInfo, ChildState};
use crate::supervisor_spec::check_id;
use crate::worker::{start_error_from_spawn, FailureRecord, InPlaceRegistration};
use crate::ChildFate;
use crate::{
    deadline_after, ChildId, ChildOpError, ChildPath, ChildSpec, EventBus, EventId, EventIds,
    EventKind, ExitCause, ExitReason, LifecycleEvent, Restart, RestartDecision, RestartScope,
    RestartWindow, Shutdown, SpecError, StartContext, StartError, Strategy, SupervisorSpec,
};

/// How long a supervisor waits for a killed actor to be gone before it moves on (a kill
/// interrupts any await, so this is only reached by an actor blocking its thread).
const KILL_WAIT: Duration = Duration::from_secs(5);

/// A function every lifecycle event is also given to, in order.
pub(crate) type EventSink = Arc<dyn Fn(&LifecycleEvent) + Send + Sync>;

/// What every supervisor of one tree shares.
#[derive(Clone)]
pub(crate) struct TreeContext {
    pub(crate) epoch: Instant,
    pub(crate) events: EventBus,
    pub(crate) sink: Option<EventSink>,
    pub(crate) activity: Arc<AtomicUsize>,
    pub(crate) census: Census,
    pub(crate) call_timeout: Duration,
    pub(crate) ids: EventIds,
}

impl std::fmt::Debug for TreeContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TreeContext")
            .field("epoch", &self.epoch)
            .field("has_sink", &self.sink.is_some())
            .field("activity", &self.activity)
            .field("call_timeout", &self.call_timeout)
            .finish()
    }
}

impl TreeContext {
    pub(crate) fn new(
        events: EventBus,
        sink: Option<EventSink>,
        call_timeout: Duration,
        ids: EventIds,
    ) -> Self {
        Self {
            ids,
            epoch: Instant::now(),
            events,
            sink,
            activity: Arc::new(AtomicUsize::new(0)),
            census: Census::default(),
            call_timeout,
        }
    }

    /// Whole seconds since the tree started: the clock restart intensity counts in.
    pub(crate) fn now_secs(&self) -> u64 {
        self.epoch.elapsed().as_secs()
    }

    /// Publishes an event and returns its id.
    pub(crate) fn emit(
        &self,
        path: &ChildPath,
        kind: EventKind,
        caused_by: Option<EventId>,
    ) -> EventId {
        let id = self.ids.next();
        let event = LifecycleEvent {
            id,
            caused_by,
            elapsed: self.epoch.elapsed(),
            path: path.clone(),
            kind,
        };
        if let Some(sink) = &self.sink {
            sink(&event);
        }
        self.events.publish(event);
        id
    }

    /// Marks a supervisor as busy until the guard drops.
    pub(crate) fn busy(&self) -> BusyGuard {
        self.activity.fetch_add(1, Ordering::SeqCst);
        BusyGuard(Arc::clone(&self.activity))
    }
}

/// Counts an operation of the tree as in progress while it exists.
#[derive(Debug)]
pub(crate) struct BusyGuard(Arc<AtomicUsize>);

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The supervisor actor.
#[derive(Debug)]
pub(crate) struct SupervisorActor;

/// How a supervisor instance is started.
#[derive(Debug)]
pub(crate) struct SupervisorArgs {
    pub(crate) spec: Arc<SupervisorSpec>,
    pub(crate) path: ChildPath,
    pub(crate) tree: TreeContext,
    pub(crate) is_root: bool,
    /// What caused this start (a restart's triggering exit), if anything.
    pub(crate) start_cause: Option<EventId>,
    /// Where this supervisor records why it exits, and its parent why it stops it.
    pub(crate) exit_cause: ExitCause,
    /// Where this supervisor keeps its children's watchers, for its parent to tell them what
    /// it decides once this supervisor has exited (shared with the parent's record of it).
    pub(crate) watchers: SubtreeWatchers,
}

/// Requests a supervisor handles.
pub(crate) enum SupervisorMsg {
    /// Retry a restart that failed (OTP's `try_again_restart` cast).
    TryAgain(ChildId),
    /// An in-place worker failed and parked (see [`InPlaceChild`](crate::InPlaceChild)).
    ChildFailed(ActorCell, ExitReason, u64),
    /// An in-place worker's own restart failed to rebuild it (after this exit).
    RestartInPlaceFailed(ActorCell, ExitReason),
    StartChild(ChildSpec, RpcReplyPort<Result<ActorCell, ChildOpError>>),
    StartDynamicChild(ChildId, RpcReplyPort<Result<ActorCell, ChildOpError>>),
    TerminateChild(ChildId, RpcReplyPort<Result<(), ChildOpError>>),
    RestartChild(ChildId, RpcReplyPort<Result<ActorCell, ChildOpError>>),
    DeleteChild(ChildId, RpcReplyPort<Result<(), ChildOpError>>),
    WhichChildren(RpcReplyPort<Vec<ChildInfo>>),
    CountChildren(RpcReplyPort<ChildCounts>),
}

enum Status {
    Running(ActorCell),
    /// A restart attempt failed and a retry is queued.
    Restarting,
    NotRunning,
}

struct Child {
    spec: ChildSpec,
    path: ChildPath,
    status: Status,
    last_exit: Option<ExitReason>,
    /// Why the running incarnation is exiting, recorded by the child itself or by this
    /// supervisor when it stops it.
    exit_cause: ExitCause,
    /// Set by a start function whose worker can be restarted in place.
    in_place: InPlaceRegistration,
    /// The actor of an in-place worker that failed or was parked by a group restart: reused by
    /// the next start, stopped if there is none.
    parked: Option<ActorCell>,
    /// How many times this supervisor has parked or rebuilt the child in place (shared with
    /// its `FailureReporter`): a failure report made before the latest of those is stale.
    generation: Arc<AtomicU64>,
    /// Whether the supervisor's spec lists this child (a restarted supervisor starts only those).
    in_spec: bool,
    /// For a nested supervisor: the watchers below it, which the nested supervisor keeps
    /// current and this supervisor settles when it decides the nested one's fate.
    subtree: Option<SubtreeWatchers>,
    /// Why the running worker's actor failed, if it did (read when this supervisor stops it).
    failure: FailureRecord,
}

impl Child {
    fn new(spec: ChildSpec, parent: &ChildPath, in_spec: bool) -> Self {
        Self {
            path: parent.join(&spec.id),
            subtree: matches!(spec.kind, ChildKind::Supervisor(_)).then(SubtreeWatchers::default),
            spec,
            in_spec,
            failure: FailureRecord::default(),
            status: Status::NotRunning,
            last_exit: None,
            exit_cause: ExitCause::default(),
            in_place: InPlaceRegistration::default(),
            parked: None,
            generation: Arc::default(),
        }
    }

    /// Records this child in its supervisor's watchers.
    fn record_in(&self, watchers: &SubtreeWatchers) {
        watchers.record(
            &self.path,
            self.spec.watcher.as_ref(),
            self.subtree.as_ref(),
            self.in_spec,
        );
    }

    fn running_cell(&self) -> Option<&ActorCell> {
        match &self.status {
            Status::Running(cell) => Some(cell),
            _ => None,
        }
    }
}

/// One supervisor instance's state.
pub(crate) struct SupervisorState {
    spec: Arc<SupervisorSpec>,
    path: ChildPath,
    tree: TreeContext,
    is_root: bool,
    /// The restart window, and whether a child may carry out its own restart right now.
    restarts: Arc<SharedRestarts>,
    /// In start order.
    children: Vec<Child>,
    /// Set once this supervisor has decided to exit; events are ignored from then on.
    exit_reason: Option<ExitReason>,
    /// The event this supervisor is acting on (an exit it handles, its own start): what the
    /// events it publishes meanwhile are caused by.
    cause: Option<EventId>,
    /// Why this supervisor exits: set by itself (escalation, automatic shutdown), by its parent
    /// or by the tree's shutdown.
    exit_cause: ExitCause,
    /// This supervisor's children's watchers (see `SupervisorArgs::watchers`).
    watchers: SubtreeWatchers,
    /// Counts this supervisor among the tree's live actors while its state exists.
    _alive: CensusGuard,
}

impl Actor for SupervisorActor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = SupervisorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<SupervisorMsg>,
        args: SupervisorArgs,
    ) -> Result<SupervisorState, ActorProcessingErr> {
        let _busy = args.tree.busy();
        if let Some(check) = &args.spec.before_start {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check()))
                .unwrap_or_else(|payload| {
                    Err(StartError::Panicked(crate::exit_reason::panic_message(
                        payload,
                    )))
                });
            outcome.map_err(Box::new)?;
        }
        let started = args
            .tree
            .emit(&args.path, EventKind::Started, args.start_cause);
        let alive = args.tree.census.enter();
        let mut state = SupervisorState {
            restarts: SharedRestarts::new(
                args.tree.clone(),
                args.spec.strategy,
                RestartWindow::new(args.spec.intensity, args.spec.period),
            ),
            children: args
                .spec
                .children
                .iter()
                .map(|child| Child::new(child.clone(), &args.path, true))
                .collect(),
            spec: args.spec,
            path: args.path,
            tree: args.tree,
            is_root: args.is_root,
            exit_reason: None,
            cause: Some(started),
            exit_cause: args.exit_cause,
            watchers: args.watchers,
            _alive: alive,
        };
        // Before any child starts: a child's watcher hears its fate however this ends.
        for child in &mut state.children {
            if let (Some(subtree), Some(kept)) = (
                child.subtree.as_mut(),
                state.watchers.nested_of(&child.spec.id),
            ) {
                *subtree = kept;
            }
            child.record_in(&state.watchers);
        }
        let cell = myself.get_cell();
        for index in 0..state.children.len() {
            if let Err(error) = state.start_at(&cell, index).await {
                let child = state.children[index].spec.id.clone();
                state.terminate_all().await;
                return Err(Box::new(StartError::ChildFailed {
                    child,
                    cause: Box::new(error),
                }));
            }
        }
        state.cause = None;
        state.restarts.open();
        Ok(state)
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<SupervisorMsg>,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        let _busy = state.tree.busy();
        state.restarts.close_for_good();
        let reason = state
            .exit_reason
            .get_or_insert(ExitReason::Shutdown)
            .clone();
        state.cause = state.exit_cause.get();
        state.terminate_all().await;
        if state.is_root {
            let cause = state.cause;
            state
                .tree
                .emit(&state.path, EventKind::Stopped { reason }, cause);
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<SupervisorMsg>,
        message: SupervisorMsg,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        let _busy = state.tree.busy();
        let _closed = state.restarts.close();
        let cell = myself.get_cell();
        match message {
            SupervisorMsg::TryAgain(id) => state.try_again(&cell, &id).await,
            SupervisorMsg::ChildFailed(child, reason, generation) => {
                state
                    .on_child_failed_in_place(&cell, child, reason, generation)
                    .await
            }
            SupervisorMsg::RestartInPlaceFailed(child, previous_exit) => {
                state
                    .on_restart_in_place_failed(&cell, child, previous_exit)
                    .await
            }
            SupervisorMsg::StartChild(spec, reply) => {
                let _ = reply.send(state.add_static_child(&cell, spec).await);
            }
            SupervisorMsg::StartDynamicChild(id, reply) => {
                let _ = reply.send(state.add_dynamic_child(&cell, id).await);
            }
            SupervisorMsg::TerminateChild(id, reply) => {
                let _ = reply.send(state.terminate_child(&id).await);
            }
            SupervisorMsg::RestartChild(id, reply) => {
                let _ = reply.send(state.restart_child(&cell, &id).await);
            }
            SupervisorMsg::DeleteChild(id, reply) => {
                let _ = reply.send(state.delete_child(&id));
            }
            SupervisorMsg::WhichChildren(reply) => {
                let _ = reply.send(state.which_children());
            }
            SupervisorMsg::CountChildren(reply) => {
                let _ = reply.send(state.count_children());
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<SupervisorMsg>,
        event: SupervisionEvent,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        let _busy = state.tree.busy();
        let _closed = state.restarts.close();
        if let Some((actor, reason)) = ExitReason::from_event(&event) {
            state.on_child_exit(&myself.get_cell(), actor, reason).await;
        }
        Ok(())
    }
}

/// Spawns a supervisor instance for a child spec, linked to `parent`.
///
/// It runs in a task of its own so that starting a deep tree does not nest one `pre_start`
/// inside another on a single stack.
pub(crate) async fn spawn_supervisor(
    args: SupervisorArgs,
    parent: Option<ActorCell>,
) -> Result<ActorRef<SupervisorMsg>, StartError> {
    let spawned = tokio::spawn(async move {
        match parent {
            Some(parent) => Actor::spawn_linked(None, SupervisorActor, args, parent).await,
            None => Actor::spawn(None, SupervisorActor, args).await,
        }
    })
    .await;
    match spawned {
        Ok(Ok((actor, _))) => Ok(actor),
        Ok(Err(error)) => Err(start_error_from_spawn(error)),
        Err(join_error) => Err(StartError::Failed(format!(
            "the supervisor's start task failed: {join_error}"
        ))),
    }
}

/// Stops an actor that is not serving (a parked in-place worker), waiting briefly for it to be
/// gone, and kills it if it does not stop.
async fn stop_quietly(cell: &ActorCell) {
    if let Err(ractor::RactorErr::Timeout) = cell
        .stop_and_wait(ExitReason::Shutdown.to_stop_reason(), Some(KILL_WAIT))
        .await
    {
        kill(cell).await;
    }
}

/// How a child stopped by its supervisor ended: the reason the stop gave, unless the child
/// died of something else meanwhile (OTP's `shutdown_error`), as its wrapper recorded.
fn died_of(stopped: ExitReason, failure: &FailureRecord) -> ExitReason {
    match stopped {
        ExitReason::Shutdown => failure.take().unwrap_or(ExitReason::Shutdown),
        other => other,
    }
}

/// Stops one actor as `shutdown` says and tells how it ended.
async fn shut_down(cell: &ActorCell, shutdown: Shutdown) -> ExitReason {
    match shutdown {
        Shutdown::BrutalKill => {
            kill(cell).await;
            ExitReason::Killed
        }
        Shutdown::Timeout(limit) => {
            let deadline = deadline_after(Instant::now(), limit);
            let stopped = match cell
                .stop_and_wait(ExitReason::Shutdown.to_stop_reason(), Some(limit))
                .await
            {
                Err(ractor::RactorErr::Timeout) => false,
                // Already stopping (its stop port is closed, e.g. a supervisor that gave up
                // and is stopping its own children): wait for it to be gone, so that its
                // children's stops are reported before its own.
                Err(_) => tokio::time::timeout_at(deadline, cell.wait(None))
                    .await
                    .is_ok(),
                Ok(()) => true,
            };
            if stopped {
                ExitReason::Shutdown
            } else {
                kill(cell).await;
                ExitReason::Killed
            }
        }
        Shutdown::Infinity => {
            if cell
                .stop_and_wait(ExitReason::Shutdown.to_stop_reason(), None)
                .await
                .is_err()
            {
                let _ = cell.wait(None).await;
            }
            ExitReason::Shutdown
        }
    }
}

/// Kills an actor and everything linked below it, and waits for them to be gone.
///
/// ractor's own cascade skips linked actors that are already stopping, so a child stuck in
/// `post_stop` under a killed supervisor would live on; this kills every descendant itself.
pub(crate) async fn kill(cell: &ActorCell) {
    for actor in &kill_subtree(cell) {
        if actor.wait(Some(KILL_WAIT)).await.is_err() {
            tracing::error!(actor = %actor.get_id(), "a killed actor did not stop; it may be blocking its thread");
        }
    }
}

/// Kills an actor and everything linked below it, as [`kill`] does, but waits at most
/// `grace` for them all to be gone, and returns those still running: an actor whose handler
/// never yields to the runtime cannot be stopped by a cooperative scheduler.
pub(crate) async fn kill_within(cell: &ActorCell, grace: Duration) -> Vec<ActorCell> {
    let subtree = kill_subtree(cell);
    let all_gone = futures::future::join_all(subtree.iter().map(|actor| actor.wait(None)));
    if tokio::time::timeout(grace, all_gone).await.is_ok() {
        return Vec::new();
    }
    let running: Vec<ActorCell> = subtree
        .into_iter()
        .filter(|actor| !matches!(actor.get_status(), ractor::ActorStatus::Stopped))
        .collect();
    for actor in &running {
        tracing::error!(actor = %actor.get_id(), "a killed actor did not stop; it may be blocking its thread");
    }
    running
}

/// Sends a kill to an actor and to everything linked below it, deepest first; returns them.
fn kill_subtree(cell: &ActorCell) -> Vec<ActorCell> {
    let mut subtree = vec![cell.clone()];
    let mut next = 0;
    while let Some(actor) = subtree.get(next) {
        let children = actor.get_children();
        subtree.extend(children);
        next += 1;
    }
    for actor in subtree.iter().rev() {
        actor.kill();
    }
    subtree
}

impl SupervisorState {
    /// Tells the child's watcher, if any, what was decided; for a nested supervisor, also
    /// settles the watchers below it with that fate (see `SubtreeWatchers`).
    fn tell_fate(&self, index: usize, fate: ChildFate) {
        let child = &self.children[index];
        if let Some(watcher) = &child.spec.watcher {
            watcher(&child.path, fate);
        }
        if let Some(subtree) = &child.subtree {
            subtree.settle(fate);
        }
    }

    /// Deletes the child at `index` (its fate was told already).
    fn forget(&mut self, index: usize) {
        let child = self.children.remove(index);
        self.watchers.remove(&child.spec.id);
    }

    fn is_dynamic(&self) -> bool {
        self.spec.strategy == Strategy::Dynamic
    }

    fn position(&self, id: &ChildId) -> Option<usize> {
        self.children.iter().position(|child| &child.spec.id == id)
    }

    fn position_of_actor(&self, actor: ActorId) -> Option<usize> {
        self.children.iter().position(|child| {
            child
                .running_cell()
                .is_some_and(|cell| cell.get_id() == actor)
        })
    }

    /// Starts the child at `index` and records it as running, or reports why it could not start.
    async fn start_at(&mut self, myself: &ActorCell, index: usize) -> Result<(), StartError> {
        // A failure of an earlier incarnation says nothing about this one.
        self.children[index].failure.take();
        if let Some(rebuilt) = self.rebuild_at(index).await {
            return rebuilt;
        }
        let child = &self.children[index];
        let started = match &child.spec.kind {
            ChildKind::Worker(start) => {
                let context = StartContext {
                    supervisor: myself.clone(),
                    id: child.spec.id.clone(),
                    path: child.path.clone(),
                    previous_exit: child.last_exit.clone(),
                    census: self.tree.census.clone(),
                    exit_cause: child.exit_cause.clone(),
                    in_place: child.in_place.clone(),
                    generation: Arc::clone(&child.generation),
                    failure: child.failure.clone(),
                    restarts_here: (self.spec.strategy == Strategy::OneForOne).then(|| {
                        ChildRestarts {
                            shared: Arc::clone(&self.restarts),
                            path: child.path.clone(),
                            restart: child.spec.restart,
                            exit_cause: child.exit_cause.clone(),
                            watcher: child.spec.watcher.clone(),
                        }
                    }),
                };
                child.exit_cause.set(None);
                child.in_place.set(None);
                let attempt = std::panic::AssertUnwindSafe(start(context));
                let started = match futures::FutureExt::catch_unwind(attempt).await {
                    Ok(started) => started,
                    Err(payload) => Err(StartError::Panicked(crate::exit_reason::panic_message(
                        payload,
                    ))),
                };
                let kind = match &started {
                    Ok(_) => EventKind::Started,
                    Err(error) => EventKind::StartFailed {
                        error: error.clone(),
                    },
                };
                self.tree.emit(&child.path, kind, self.cause);
                started
            }
            ChildKind::Supervisor(spec) => {
                let args = SupervisorArgs {
                    spec: Arc::clone(spec),
                    path: child.path.clone(),
                    tree: self.tree.clone(),
                    is_root: false,
                    start_cause: self.cause,
                    exit_cause: child.exit_cause.clone(),
                    watchers: child.subtree.clone().unwrap_or_default(),
                };
                child.exit_cause.set(None);
                let started = spawn_supervisor(args, Some(myself.clone()))
                    .await
                    .map(|actor| actor.get_cell());
                let kind = match &started {
                    Ok(_) => None,
                    // The supervisor ran and exited: OTP reports it as stopped with
                    // {shutdown, {failed_to_start_child, Id, Reason}}.
                    Err(StartError::ChildFailed {
                        child: failed,
                        cause,
                    }) => Some(EventKind::Stopped {
                        reason: ExitReason::FailedToStartChild {
                            child: failed.clone(),
                            cause: cause.clone(),
                        },
                    }),
                    Err(error) => Some(EventKind::StartFailed {
                        error: error.clone(),
                    }),
                };
                if let Some(kind) = kind {
                    self.tree.emit(&child.path, kind, self.cause);
                }
                started
            }
        };
        let cell = started?;
        self.children[index].status = Status::Running(cell);
        Ok(())
    }

    /// Stops the child at `index` if it is running, as its shutdown spec says, and marks it not
    /// running. Its own exit event will arrive later and be ignored.
    async fn stop_at(&mut self, index: usize) {
        self.stop_parked(index).await;
        let child = &mut self.children[index];
        if let Status::Running(cell) = std::mem::replace(&mut child.status, Status::NotRunning) {
            child.exit_cause.set(self.cause);
            let reason = shut_down(&cell, child.spec.shutdown_spec()).await;
            let reason = died_of(reason, &child.failure);
            child.last_exit = Some(reason.clone());
            self.tree
                .emit(&child.path, EventKind::Stopped { reason }, self.cause);
        }
    }

    /// Restarts a parked in-place worker by rebuilding it; `None` if the child has no parked
    /// actor (it is started with its start function).
    async fn rebuild_at(&mut self, index: usize) -> Option<Result<(), StartError>> {
        let child = &mut self.children[index];
        let handle = child.in_place.get()?;
        let cell = child.parked.take()?;
        child.exit_cause.set(None);
        let previous_exit = child.last_exit.clone().unwrap_or(ExitReason::Shutdown);
        let rebuilt = match futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(
            handle.rebuild(previous_exit),
        ))
        .await
        {
            Ok(rebuilt) => rebuilt,
            Err(payload) => Err(StartError::Panicked(crate::exit_reason::panic_message(
                payload,
            ))),
        };
        let child = &mut self.children[index];
        let kind = match &rebuilt {
            Ok(()) => {
                child.status = Status::Running(cell);
                EventKind::Started
            }
            Err(error) => {
                // As a failed start: no actor is left behind.
                stop_quietly(&cell).await;
                EventKind::StartFailed {
                    error: error.clone(),
                }
            }
        };
        self.tree.emit(&child.path, kind, self.cause);
        Some(rebuilt)
    }

    /// Stops the actor of a parked in-place worker that will not be rebuilt.
    async fn stop_parked(&mut self, index: usize) {
        if let Some(cell) = self.children[index].parked.take() {
            stop_quietly(&cell).await;
        }
    }

    /// Stops the child at `index` for a group restart: an in-place worker is parked under its
    /// shutdown deadline (and killed if it does not park in time), any other is stopped.
    async fn stop_for_restart(&mut self, index: usize) {
        let child = &mut self.children[index];
        let shutdown = child.spec.shutdown_spec();
        let handle = match (&child.status, child.in_place.get()) {
            (Status::Running(_), Some(handle)) if shutdown != Shutdown::BrutalKill => handle,
            (Status::Running(_), _) => return self.stop_at(index).await,
            // Not running (the child that failed, parked or not): nothing to stop.
            _ => return,
        };
        let Status::Running(cell) = std::mem::replace(&mut child.status, Status::NotRunning) else {
            return;
        };
        child.exit_cause.set(self.cause);
        let parked = match shutdown {
            Shutdown::Timeout(limit) => tokio::time::timeout(limit, handle.park())
                .await
                .unwrap_or(Err(StartError::failed("did not park in time"))),
            _ => handle.park().await,
        };
        let reason = match parked {
            Ok(()) => {
                // A failure the worker reported before it was parked is overtaken by this.
                child.generation.fetch_add(1, Ordering::AcqRel);
                child.parked = Some(cell);
                ExitReason::Shutdown
            }
            Err(_) => {
                kill(&cell).await;
                ExitReason::Killed
            }
        };
        child.last_exit = Some(reason.clone());
        self.tree
            .emit(&child.path, EventKind::Stopped { reason }, self.cause);
    }

    /// Stops every running child: one at a time in reverse start order, or all at once under one
    /// timer for a dynamic supervisor.
    async fn terminate_all(&mut self) {
        for index in 0..self.children.len() {
            self.tell_fate(index, ChildFate::SupervisorExiting);
        }
        if self.is_dynamic() {
            self.terminate_all_at_once().await;
        } else {
            for index in (0..self.children.len()).rev() {
                self.stop_at(index).await;
            }
        }
        if self.is_root {
            // No parent will decide: the tree is over.
            self.watchers.settle(ChildFate::Stopped);
        }
    }

    /// OTP's `terminate_dynamic_children`: ask all to stop, wait for all under one deadline, kill
    /// those still alive. Reported in start order, the killed ones last.
    async fn terminate_all_at_once(&mut self) {
        for index in 0..self.children.len() {
            self.stop_parked(index).await;
        }
        let cause = self.cause;
        let running: Vec<(ChildPath, ActorCell, Shutdown, FailureRecord)> = self
            .children
            .iter_mut()
            .filter_map(
                |child| match std::mem::replace(&mut child.status, Status::NotRunning) {
                    Status::Running(cell) => {
                        child.exit_cause.set(cause);
                        Some((
                            child.path.clone(),
                            cell,
                            child.spec.shutdown_spec(),
                            child.failure.clone(),
                        ))
                    }
                    _ => None,
                },
            )
            .collect();
        if running.is_empty() {
            return;
        }
        let shutdown = running[0].2;
        let mut stubborn = Vec::new();
        if shutdown == Shutdown::BrutalKill {
            stubborn = running
                .iter()
                .map(|(path, cell, _, _)| (path, cell))
                .collect();
        } else {
            for (_, cell, _, _) in &running {
                cell.stop(ExitReason::Shutdown.to_stop_reason());
            }
            let deadline = match shutdown {
                Shutdown::Timeout(limit) => Some(deadline_after(Instant::now(), limit)),
                _ => None,
            };
            for (path, cell, _, failure) in &running {
                let stopped = match deadline {
                    Some(deadline) => tokio::time::timeout_at(deadline, cell.wait(None))
                        .await
                        .is_ok(),
                    None => cell.wait(None).await.is_ok(),
                };
                if stopped {
                    self.tree.emit(
                        path,
                        EventKind::Stopped {
                            reason: died_of(ExitReason::Shutdown, failure),
                        },
                        cause,
                    );
                } else {
                    stubborn.push((path, cell));
                }
            }
        }
        for (path, cell) in stubborn {
            kill(cell).await;
            self.tree.emit(
                path,
                EventKind::Stopped {
                    reason: ExitReason::Killed,
                },
                cause,
            );
        }
        self.children.clear();
    }

    /// A child exited by itself (or was killed by someone else): OTP's `do_restart/3`.
    async fn on_child_exit(&mut self, myself: &ActorCell, actor: ActorId, reason: ExitReason) {
        if self.exit_reason.is_some() {
            return;
        }
        let Some(index) = self.position_of_actor(actor) else {
            // Not a current child: one this supervisor stopped itself.
            return;
        };
        self.child_exited(myself, index, reason).await;
    }

    /// The index of the in-place worker `actor`, if this supervisor still acts on what it
    /// reports: not while exiting (it is stopped with the others, as `shutdown`), and not if it
    /// is no longer a child (nothing will restart it, so it is stopped).
    fn acting_on(&self, actor: &ActorCell) -> Option<usize> {
        if self.exit_reason.is_some() {
            return None;
        }
        let index = self.position_of_actor(actor.get_id());
        if index.is_none() {
            actor.stop(None);
        }
        index
    }

    /// An in-place worker failed and parked: the same decision as for an exit, with its actor
    /// kept for the restart.
    async fn on_child_failed_in_place(
        &mut self,
        myself: &ActorCell,
        actor: ActorCell,
        reason: ExitReason,
        generation: u64,
    ) {
        let Some(index) = self.acting_on(&actor) else {
            return;
        };
        if self.children[index].generation.load(Ordering::Acquire) != generation {
            // Reported before a group restart parked and rebuilt it: already handled, as OTP
            // flushes the exit of a child it has terminated itself.
            return;
        }
        self.children[index].parked = Some(actor);
        self.child_exited(myself, index, reason).await;
    }

    /// An in-place worker restarted itself (see [`FailureReporter::failed`]) and its rebuild
    /// failed, already reported as `start_failed`: as after any failed restart, its actor is
    /// stopped and the restart is tried again later with its start function.
    ///
    /// [`FailureReporter::failed`]: crate::FailureReporter::failed
    async fn on_restart_in_place_failed(
        &mut self,
        myself: &ActorCell,
        actor: ActorCell,
        previous_exit: ExitReason,
    ) {
        let Some(index) = self.acting_on(&actor) else {
            return;
        };
        let child = &mut self.children[index];
        child.status = Status::NotRunning;
        child.last_exit = Some(previous_exit);
        stop_quietly(&actor).await;
        self.retry_later(myself, index);
    }

    /// OTP's `do_restart/3` for the child at `index`, which has exited (or parked).
    async fn child_exited(&mut self, myself: &ActorCell, index: usize, reason: ExitReason) {
        let child = &mut self.children[index];
        child.status = Status::NotRunning;
        child.last_exit = Some(reason.clone());
        let stopped = self.tree.emit(
            &child.path,
            EventKind::Stopped {
                reason: reason.clone(),
            },
            child.exit_cause.take(),
        );
        self.cause = Some(stopped);
        self.do_restart(myself, index, &reason).await;
        self.cause = None;
    }

    /// OTP's `do_restart/3`: the decision on the exit of the child at `index`, carried out.
    async fn do_restart(&mut self, myself: &ActorCell, index: usize, reason: &ExitReason) {
        let decision = self
            .restarts
            .decide(self.children[index].spec.restart, reason);
        if matches!(
            decision,
            RestartDecision::Restart(_) | RestartDecision::Escalate
        ) {
            // Its restart type says restart, even when the intensity then refuses it.
            self.tell_fate(index, ChildFate::Restarting);
        }
        self.carry_out(myself, index, decision).await;
    }

    /// OTP's `restart/2` after its `add_restart` (counted by the decision): restart by strategy
    /// or give up; or leave the child stopped, as the decision says.
    async fn carry_out(&mut self, myself: &ActorCell, index: usize, decision: RestartDecision) {
        let significant = self.children[index].spec.significant;
        match decision {
            RestartDecision::Restart(scope) => self.restart(myself, index, scope).await,
            RestartDecision::Escalate => self.escalate(myself, index),
            RestartDecision::KeepSpec => {
                self.stop_parked(index).await;
                self.tell_fate(index, ChildFate::Stopped);
                self.after_exit_without_restart(myself, significant)
            }
            RestartDecision::DeleteSpec => {
                self.stop_parked(index).await;
                self.tell_fate(index, ChildFate::Removed);
                self.forget(index);
                self.after_exit_without_restart(myself, significant);
            }
        }
    }

    /// OTP's `do_auto_shutdown/2`.
    fn after_exit_without_restart(&mut self, myself: &ActorCell, significant: bool) {
        let significant_left = self
            .children
            .iter()
            .any(|child| child.spec.significant && !matches!(child.status, Status::NotRunning));
        if self
            .spec
            .auto_shutdown
            .shuts_down(significant, significant_left)
        {
            let auto_shutdown = self
                .tree
                .emit(&self.path, EventKind::AutoShutdown, self.cause);
            self.exit_cause.set(Some(auto_shutdown));
            self.exit(myself, ExitReason::Shutdown);
        }
    }

    /// Decides to exit: children are stopped in `post_stop`, in reverse start order.
    fn exit(&mut self, myself: &ActorCell, reason: ExitReason) {
        self.restarts.close_for_good();
        myself.stop(reason.to_stop_reason());
        self.exit_reason = Some(reason);
    }

    /// The restart of the child at `index` would exceed the intensity: OTP's
    /// `reached_max_restart_intensity`, the supervisor exits with `shutdown`.
    fn escalate(&mut self, myself: &ActorCell, index: usize) {
        tracing::error!(
            supervisor = %self.path,
            child = %self.children[index].spec.id,
            intensity = self.spec.intensity,
            period_secs = self.spec.period.as_secs(),
            "reached maximum restart intensity"
        );
        let escalated = self.tree.emit(
            &self.path,
            EventKind::Escalated {
                intensity: self.spec.intensity,
                period_secs: self.spec.period.as_secs(),
            },
            self.cause,
        );
        self.exit_cause.set(Some(escalated));
        self.children[index].status = Status::NotRunning;
        self.exit(myself, ExitReason::Shutdown);
    }

    /// OTP's `restart/3`: the counted restart of the child at `index`, by strategy.
    async fn restart(&mut self, myself: &ActorCell, index: usize, scope: RestartScope) {
        match scope {
            RestartScope::Child => self.restart_one(myself, index).await,
            RestartScope::ChildAsNewest => {
                // A restarted dynamic child is the newest one, as a new pid is in OTP.
                let child = self.children.remove(index);
                self.children.push(child);
                let last = self.children.len() - 1;
                self.restart_one(myself, last).await;
            }
            RestartScope::All | RestartScope::Rest => {
                let affected = self.spec.strategy.affected(index, self.children.len());
                self.restart_group(myself, affected.start).await
            }
        }
    }

    async fn restart_one(&mut self, myself: &ActorCell, index: usize) {
        if self.start_at(myself, index).await.is_err() {
            self.retry_later(myself, index);
        }
    }

    /// OTP's `restart_multiple_children/3`: stop the affected children in reverse start order,
    /// delete the temporary ones, then start the rest in start order up to the first failure.
    async fn restart_group(&mut self, myself: &ActorCell, from: usize) {
        for index in (from..self.children.len()).rev() {
            self.stop_for_restart(index).await;
            self.children[index].status = Status::NotRunning;
        }
        let mut index = from;
        while index < self.children.len() {
            if self.children[index].spec.restart == Restart::Temporary {
                self.stop_parked(index).await;
                self.tell_fate(index, ChildFate::Removed);
                self.forget(index);
            } else {
                self.tell_fate(index, ChildFate::Restarting);
                index += 1;
            }
        }

        for index in from..self.children.len() {
            if self.start_at(myself, index).await.is_err() {
                self.retry_later(myself, index);
                return;
            }
        }
    }

    /// Marks the child at `index` as restarting and queues a retry (OTP's `try_again_restart`).
    fn retry_later(&mut self, myself: &ActorCell, index: usize) {
        let child = &mut self.children[index];
        child.status = Status::Restarting;
        let retry = SupervisorMsg::TryAgain(child.spec.id.clone());
        if myself.send_message(retry).is_err() {
            tracing::warn!(supervisor = %self.path, child = %child.spec.id, "could not queue a restart retry; the supervisor is stopping");
        }
    }

    async fn try_again(&mut self, myself: &ActorCell, id: &ChildId) {
        if self.exit_reason.is_some() {
            return;
        }
        if let Some(index) = self.position(id) {
            if matches!(self.children[index].status, Status::Restarting) {
                let decision = self.restarts.decide_retry();
                self.carry_out(myself, index, decision).await;
            }
        }
    }

    async fn add_static_child(
        &mut self,
        myself: &ActorCell,
        spec: ChildSpec,
    ) -> Result<ActorCell, ChildOpError> {
        if self.is_dynamic() {
            return Err(ChildOpError::NotAllowedOnDynamic);
        }
        self.validate_new_child(&spec)?;
        if let Some(index) = self.position(&spec.id) {
            return Err(match self.children[index].status {
                Status::Running(_) => ChildOpError::AlreadyStarted(spec.id),
                _ => ChildOpError::AlreadyPresent(spec.id),
            });
        }
        self.start_new_child(myself, spec).await
    }

    async fn add_dynamic_child(
        &mut self,
        myself: &ActorCell,
        id: ChildId,
    ) -> Result<ActorCell, ChildOpError> {
        let Some(template) = self.spec.templates.first().filter(|_| self.is_dynamic()) else {
            return Err(ChildOpError::OnlyOnDynamic);
        };
        let spec = template.clone().with_id(id);
        self.validate_new_child(&spec)?;
        if let Some(index) = self.position(&spec.id) {
            return Err(match self.children[index].status {
                Status::Running(_) => ChildOpError::AlreadyStarted(spec.id),
                _ => ChildOpError::AlreadyPresent(spec.id),
            });
        }
        self.start_new_child(myself, spec).await
    }

    fn validate_new_child(&self, spec: &ChildSpec) -> Result<(), SpecError> {
        check_id(&self.spec.id, &spec.id)?;
        self.spec.validate_child_options(spec)?;
        if let ChildKind::Supervisor(nested) = &spec.kind {
            nested.validate_at_depth(self.path.depth() + 1)?;
        }
        Ok(())
    }

    /// OTP's `handle_start_child/2`: the spec is kept only if the start succeeds.
    async fn start_new_child(
        &mut self,
        myself: &ActorCell,
        spec: ChildSpec,
    ) -> Result<ActorCell, ChildOpError> {
        let child = Child::new(spec, &self.path, false);
        child.record_in(&self.watchers);
        self.children.push(child);
        let index = self.children.len() - 1;
        match self.start_at(myself, index).await {
            Ok(()) => Ok(self.children[index]
                .running_cell()
                .cloned()
                .ok_or(ChildOpError::SupervisorNotRunning)?),
            Err(error) => {
                // Whatever of it started (a nested supervisor's children) is gone for good.
                self.tell_fate(index, ChildFate::Removed);
                self.forget(index);
                Err(ChildOpError::StartFailed(error))
            }
        }
    }

    /// OTP's `terminate_child/2`: stop it; a temporary or dynamic child is forgotten, any other
    /// keeps its spec. Terminating a stopped child succeeds.
    async fn terminate_child(&mut self, id: &ChildId) -> Result<(), ChildOpError> {
        let index = self
            .position(id)
            .ok_or_else(|| ChildOpError::NotFound(id.clone()))?;
        // Also drops a queued restart retry: stop_at leaves the child not running.
        self.stop_at(index).await;
        if self.is_dynamic() || self.children[index].spec.restart == Restart::Temporary {
            self.tell_fate(index, ChildFate::Removed);
            self.forget(index);
        } else {
            self.tell_fate(index, ChildFate::Stopped);
        }
        Ok(())
    }

    /// The index of the stopped static child `id`, or OTP's error for why it is not one.
    fn stopped_static_child(&self, id: &ChildId) -> Result<usize, ChildOpError> {
        if self.is_dynamic() {
            return Err(ChildOpError::NotAllowedOnDynamic);
        }
        let index = self
            .position(id)
            .ok_or_else(|| ChildOpError::NotFound(id.clone()))?;
        match self.children[index].status {
            Status::Running(_) => Err(ChildOpError::Running(id.clone())),
            Status::Restarting => Err(ChildOpError::Restarting(id.clone())),
            Status::NotRunning => Ok(index),
        }
    }

    /// OTP's `restart_child/2`: start a stopped static child again (not counted as a restart).
    async fn restart_child(
        &mut self,
        myself: &ActorCell,
        id: &ChildId,
    ) -> Result<ActorCell, ChildOpError> {
        let index = self.stopped_static_child(id)?;
        if let Err(error) = self.start_at(myself, index).await {
            // It stays stopped, and so does whatever of it started.
            self.tell_fate(index, ChildFate::Stopped);
            return Err(ChildOpError::StartFailed(error));
        }
        self.children[index]
            .running_cell()
            .cloned()
            .ok_or(ChildOpError::SupervisorNotRunning)
    }

    /// OTP's `delete_child/2`: forget a stopped static child's spec.
    fn delete_child(&mut self, id: &ChildId) -> Result<(), ChildOpError> {
        let index = self.stopped_static_child(id)?;
        self.tell_fate(index, ChildFate::Removed);
        self.forget(index);
        Ok(())
    }

    fn which_children(&self) -> Vec<ChildInfo> {
        self.children
            .iter()
            .map(|child| ChildInfo {
                id: child.spec.id.clone(),
                path: child.path.clone(),
                child_type: child.spec.child_type(),
                restart: child.spec.restart,
                state: match child.status {
                    Status::Running(_) => ChildState::Running,
                    Status::Restarting => ChildState::Restarting,
                    Status::NotRunning => ChildState::NotRunning,
                },
                cell: child.running_cell().cloned(),
                call_timeout: self.tree.call_timeout,
            })
            .collect()
    }

    fn count_children(&self) -> ChildCounts {
        let mut counts = ChildCounts::default();
        for child in &self.children {
            counts.specs += 1;
            if child.running_cell().is_some() {
                counts.active += 1;
            }
            match child.spec.child_type() {
                crate::ChildType::Worker => counts.workers += 1,
                crate::ChildType::Supervisor => counts.supervisors += 1,
            }
        }
        counts
    }
}
