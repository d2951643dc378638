//! Starting children: with their start function, as a nested supervisor, or by rebuilding a
//! parked in-place worker. Every start publishes `started` or why it failed, caused by what the
//! supervisor is acting on.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt;
use ractor::ActorCell;

use crate::child_spec::{ChildKind, StartFn};
use crate::supervisor::message::SupervisorMsg;
use crate::supervisor::restarts::ChildRestarts;
use crate::supervisor::spawn::{spawn_supervisor, SupervisorArgs};
use crate::supervisor::state::{Status, SupervisorState};
use crate::supervisor::stop::stop_quietly;
use crate::{
    panic_message, EventKind, ExitReason, StartContext, StartError, Strategy, SupervisorSpec,
};

/// Runs a start (a worker's start function, an in-place rebuild, a supervisor's check before it
/// starts), a panic in it becoming [`StartError::Panicked`] with the panic's message.
pub(super) async fn catch_panicking_start<T>(
    start: impl Future<Output = Result<T, StartError>>,
) -> Result<T, StartError> {
    match AssertUnwindSafe(start).catch_unwind().await {
        Ok(started) => started,
        Err(payload) => Err(StartError::Panicked(panic_message(payload))),
    }
}

impl SupervisorState {
    /// Starts the spec's children in start order (OTP's `init_children`); if one fails, those
    /// started are stopped again and the failure is returned as
    /// [`StartError::ChildFailed`].
    pub(super) async fn start_children(&mut self, myself: &ActorCell) -> Result<(), StartError> {
        for index in 0..self.children.len() {
            if let Err(error) = self.start_at(myself, index).await {
                let child = self.children[index].spec.id.clone();
                self.terminate_all().await;
                return Err(StartError::ChildFailed {
                    child,
                    cause: Box::new(error),
                });
            }
        }
        Ok(())
    }

    /// Starts the child at `index` and records it as running, or reports why it could not start.
    pub(super) async fn start_at(
        &mut self,
        myself: &ActorCell,
        index: usize,
    ) -> Result<(), StartError> {
        // A failure of an earlier incarnation says nothing about this one.
        self.children[index].failure.take();
        if let Some(rebuilt) = self.rebuild_at(index).await {
            return rebuilt;
        }
        let started = match &self.children[index].spec.kind {
            ChildKind::Worker(start) => self.start_worker(myself, index, start).await,
            ChildKind::Supervisor(spec) => self.start_supervisor(myself, index, spec).await,
        };
        self.children[index].status = Status::Running(started?);
        Ok(())
    }

    /// Calls a worker's start function with a fresh [`StartContext`].
    async fn start_worker(
        &self,
        myself: &ActorCell,
        index: usize,
        start: &StartFn,
    ) -> Result<ActorCell, StartError> {
        let child = &self.children[index];
        let context = self.start_context(myself, index);
        child.exit_cause.set(None);
        child.in_place.set(None);
        let started = catch_panicking_start(start(context)).await;
        let kind = match &started {
            Ok(_) => EventKind::Started,
            Err(error) => EventKind::StartFailed {
                error: error.clone(),
            },
        };
        self.tree.emit(&child.path, kind, self.cause);
        started
    }

    /// What the start function of the worker at `index` is told.
    fn start_context(&self, myself: &ActorCell, index: usize) -> StartContext {
        let child = &self.children[index];
        StartContext {
            mailbox: SupervisorMsg::mailbox(myself.clone()),
            id: child.spec.id.clone(),
            path: child.path.clone(),
            previous_exit: child.last_exit.clone(),
            census: self.tree.census.clone(),
            exit_cause: child.exit_cause.clone(),
            in_place: child.in_place.clone(),
            generation: Arc::clone(&child.generation),
            failure: child.failure.clone(),
            // Only a one_for_one child can ever be told to restart itself (see `decide_restart`
            // with `Decider::Child`): the others report.
            restarts_here: (self.spec.strategy == Strategy::OneForOne).then(|| ChildRestarts {
                shared: Arc::clone(&self.restarts),
                path: child.path.clone(),
                restart: child.spec.restart,
                exit_cause: child.exit_cause.clone(),
                watcher: child.spec.watcher.clone(),
            }),
        }
    }

    /// Spawns a nested supervisor, linked to this one.
    async fn start_supervisor(
        &self,
        myself: &ActorCell,
        index: usize,
        spec: &Arc<SupervisorSpec>,
    ) -> Result<ActorCell, StartError> {
        let child = &self.children[index];
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

    /// Restarts a parked in-place worker by rebuilding it; `None` if the child has no parked
    /// actor (it is started with its start function).
    async fn rebuild_at(&mut self, index: usize) -> Option<Result<(), StartError>> {
        let child = &mut self.children[index];
        let handle = child.in_place.get()?;
        let cell = child.parked.take()?;
        child.exit_cause.set(None);
        let previous_exit = child.last_exit.clone().unwrap_or(ExitReason::Shutdown);
        let rebuilt = catch_panicking_start(handle.rebuild(previous_exit)).await;
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
}
