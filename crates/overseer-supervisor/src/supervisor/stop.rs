//! Stopping children: one under its shutdown spec, all of them in reverse start order (or at
//! once under a dynamic supervisor), a parked in-place worker, and parking one for a group
//! restart; killing a subtree.

use std::sync::atomic::Ordering;
use std::time::Duration;

use ractor::ActorCell;
use tokio::time::Instant;

use crate::supervisor::state::{Status, SupervisorState};
use crate::worker::FailureRecord;
use crate::{deadline_after, ChildFate, ChildPath, EventKind, ExitReason, Shutdown, StartError};

/// How long a supervisor waits for a killed actor to be gone before it moves on (a kill
/// interrupts any await, so this is only reached by an actor blocking its thread).
const KILL_WAIT: Duration = Duration::from_secs(5);

impl SupervisorState {
    /// Stops the child at `index` if it is running, as its shutdown spec says, and marks it not
    /// running. Its own exit event will arrive later and be ignored.
    pub(super) async fn stop_at(&mut self, index: usize) {
        self.stop_parked(index).await;
        let child = &mut self.children[index];
        if let Status::Running(cell) = std::mem::replace(&mut child.status, Status::NotRunning) {
            child.exit_cause.set(self.cause);
            let in_place = child.in_place.get();
            let stopping = || {
                if let Some(in_place) = &in_place {
                    in_place.stopping();
                }
            };
            let reason = shut_down(&cell, child.spec.shutdown_spec(), stopping).await;
            let reason = died_of(reason, &child.failure);
            child.last_exit = Some(reason.clone());
            self.tree
                .emit(&child.path, EventKind::Stopped { reason }, self.cause);
        }
    }

    /// Stops the actor of a parked in-place worker that will not be rebuilt.
    pub(super) async fn stop_parked(&mut self, index: usize) {
        if let Some(cell) = self.children[index].parked.take() {
            stop_quietly(&cell).await;
        }
    }

    /// Stops the child at `index` for a group restart: an in-place worker is parked under its
    /// shutdown deadline (and killed if it does not park in time), any other is stopped.
    pub(super) async fn stop_for_restart(&mut self, index: usize) {
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
    pub(super) async fn terminate_all(&mut self) {
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
        let in_place: Vec<_> = self
            .children
            .iter()
            .filter(|child| matches!(child.status, Status::Running(_)))
            .filter_map(|child| child.in_place.get())
            .collect();
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
            for child in &in_place {
                child.stopping();
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
}

/// Stops an actor that is not serving (a parked in-place worker), waiting briefly for it to be
/// gone, and kills it if it does not stop.
pub(super) async fn stop_quietly(cell: &ActorCell) {
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

/// Stops one actor as `shutdown` says and tells how it ended; `stopping` runs right after the
/// polite stop is sent (an in-place worker's [`InPlaceChild::stopping`](super::in_place::InPlaceChild::stopping)).
async fn shut_down(cell: &ActorCell, shutdown: Shutdown, stopping: impl Fn()) -> ExitReason {
    match shutdown {
        Shutdown::BrutalKill => {
            kill(cell).await;
            ExitReason::Killed
        }
        Shutdown::Timeout(limit) => {
            let deadline = deadline_after(Instant::now(), limit);
            // Already stopping (its stop port is closed, e.g. a supervisor that gave up and is
            // stopping its own children), the stop is a no-op: waiting for it to be gone is the
            // same, so that its children's stops are reported before its own.
            cell.stop(ExitReason::Shutdown.to_stop_reason());
            stopping();
            let stopped = tokio::time::timeout_at(deadline, cell.wait(None))
                .await
                .is_ok();
            if stopped {
                ExitReason::Shutdown
            } else {
                kill(cell).await;
                ExitReason::Killed
            }
        }
        Shutdown::Infinity => {
            cell.stop(ExitReason::Shutdown.to_stop_reason());
            stopping();
            let _ = cell.wait(None).await;
            ExitReason::Shutdown
        }
    }
}

/// Kills an actor and everything linked below it, and waits for them to be gone.
///
/// ractor's own cascade skips linked actors that are already stopping, so a child stuck in
/// `post_stop` under a killed supervisor would live on; this kills every descendant itself.
async fn kill(cell: &ActorCell) {
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
