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
//! ([`AfterFailure::RebuildNow`]): when the supervisor is between messages and the restart
//! decision ([`decide_restart`](crate::decide_restart), taken by the child) is this child's
//! restart alone, within the intensity. The decision is taken under the lock the supervisor
//! takes its own with (`restarts.rs`), and the same events are published in the same order. In
//! every other case the failure is reported as above, and nothing is counted until the
//! supervisor decides.
//!
//! What differs from a restart with a new actor: messages queued in the mailbox survive the
//! restart, and the actor id stays the same. Anything else (events, order, counts, timing of
//! decisions) is the same, which the tests check by running the same scenarios both ways.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::FutureExt;
use ractor::ActorCell;
use tokio::sync::oneshot;

use crate::supervisor::mailbox::{InPlaceReport, SupervisorMailbox};
use crate::supervisor::restarts::{ChildRestarts, OwnRestart};
use crate::supervisor::tree_context::BusyGuard;
use crate::{EventId, EventKind, ExitReason, StartError};

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

    /// The supervisor has just asked the child's actor to stop politely. ractor takes a stop
    /// between messages: a worker that serves its work inside one long-running handler returns
    /// from it now, so the stop is taken. Does nothing by default.
    fn stopping(&self) {}
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
    pub(crate) mailbox: SupervisorMailbox,
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
/// | [`RebuildNow`](Self::RebuildNow) | the supervisor is between messages and its decision ([`decide_restart`](crate::decide_restart)) is this child's restart alone: one_for_one, the child's restart type says restart, within the intensity | rebuilds its state now, in its own task, and hands the result to [`InPlaceRestart::finish`] |
/// | [`Reported`](Self::Reported) | any other case: the supervisor decides as for an exit | waits parked for [`InPlaceChild::rebuild`], [`InPlaceChild::park`] or a stop |
/// | [`SupervisorGone`](Self::SupervisorGone) | the supervisor has exited | exits |
///
/// Each variant asks the worker for something different, so the enum is not
/// `#[non_exhaustive]`: a worker matches on it exhaustively, and a new case would have to be
/// handled by every worker.
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
        self.mailbox.post(InPlaceReport::Failed {
            child: child.clone(),
            reason,
            generation: self.generation.load(Ordering::Acquire),
        })
    }

    /// Like [`report`](Self::report), but while the supervisor is between messages the worker
    /// takes the supervisor's decision itself ([`decide_restart`](crate::decide_restart) as
    /// [`Decider::Child`](crate::Decider::Child)): when it is this worker's restart alone, the
    /// worker is told to carry it out ([`AfterFailure::RebuildNow`]), with no message to the
    /// supervisor and back; any other decision is left to the supervisor, nothing counted.
    pub fn failed(&self, child: &ActorCell, reason: ExitReason) -> AfterFailure {
        if let Some(restarts) = &self.restarts_here {
            if let Some(OwnRestart { stopped, busy }) = restarts.take_own_restart(&reason) {
                return AfterFailure::RebuildNow(InPlaceRestart {
                    restarts: restarts.clone(),
                    child: child.clone(),
                    previous_exit: reason,
                    stopped,
                    finished: false,
                    _busy: busy,
                });
            }
        }
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
            let failed = InPlaceReport::RebuildFailed {
                child: self.child.clone(),
                previous_exit: self.previous_exit.clone(),
            };
            if !self.restarts.shared.mailbox.post(failed) {
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
