//! Starting worker actors under a supervisor, with panics told apart from errors.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError};

use futures::FutureExt;
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, SpawnErr, SupervisionEvent};

use crate::census::{Census, CensusGuard};
use crate::supervisor::in_place::{FailureReporter, InPlaceChild};
use crate::supervisor::mailbox::SupervisorMailbox;
use crate::supervisor::restarts::ChildRestarts;
use crate::{panic_message, ChildExit, ChildId, ChildPath, ExitCause, ExitReason, StartError};

/// What a start function is told about the child it starts.
#[derive(Debug, Clone)]
pub struct StartContext {
    /// The supervisor's actor, and where its in-place children report.
    pub(crate) mailbox: SupervisorMailbox,
    pub(crate) id: ChildId,
    pub(crate) path: ChildPath,
    pub(crate) previous_exit: Option<ExitReason>,
    pub(crate) census: Census,
    pub(crate) exit_cause: ExitCause,
    pub(crate) in_place: InPlaceRegistration,
    /// Set under a one_for_one supervisor: the worker may carry out its own restarts.
    pub(crate) restarts_here: Option<ChildRestarts>,
    /// How many times the supervisor has parked or rebuilt this child in place.
    pub(crate) generation: Arc<AtomicU64>,
    /// Where the worker's [`Supervised`] wrapper records why it failed.
    pub(crate) failure: FailureRecord,
}

/// Why a worker's actor failed, as its [`Supervised`] wrapper saw it. The supervisor reads it
/// when it stops the worker: one that dies of something else while being stopped (its
/// `post_stop` fails, or its handler fails before the stop is taken) is reported with that
/// reason, as OTP reports a `shutdown_error`, rather than as `shutdown`.
#[derive(Clone, Default, Debug)]
pub(crate) struct FailureRecord(Arc<Mutex<Option<ExitReason>>>);

impl FailureRecord {
    fn record(&self, error: &ActorProcessingErr) {
        if let Some(exit) = error.downcast_ref::<ChildExit>() {
            if !exit.reason.is_normal() {
                *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(exit.reason.clone());
            }
        }
    }

    /// Takes the recorded failure, leaving none.
    pub(crate) fn take(&self) -> Option<ExitReason> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

/// Where a start function registers its worker for restarts in place; shared by the
/// supervisor's record of the child and the start context.
#[derive(Clone, Default)]
pub(crate) struct InPlaceRegistration(Arc<Mutex<Option<Arc<dyn InPlaceChild>>>>);

impl InPlaceRegistration {
    pub(crate) fn set(&self, child: Option<Arc<dyn InPlaceChild>>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = child;
    }

    pub(crate) fn get(&self) -> Option<Arc<dyn InPlaceChild>> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl std::fmt::Debug for InPlaceRegistration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InPlaceRegistration")
            .field("registered", &self.get().is_some())
            .finish()
    }
}

impl StartContext {
    /// The child's id.
    pub fn id(&self) -> &ChildId {
        &self.id
    }

    /// The child's path in the tree.
    pub fn path(&self) -> &ChildPath {
        &self.path
    }

    /// Why the previous incarnation of this child exited; `None` on its first start under this
    /// supervisor instance.
    pub fn previous_exit(&self) -> Option<&ExitReason> {
        self.previous_exit.as_ref()
    }

    /// Where the child records the event it is working on, so that if it fails, its `stopped`
    /// event names that event as its cause (see [`EventId`](crate::EventId)). The cell is the
    /// same for every incarnation of the child and is cleared before each start.
    pub fn exit_cause(&self) -> &ExitCause {
        &self.exit_cause
    }

    /// Offers the worker this start function starts for restarts in place (see
    /// [`InPlaceChild`]): when it fails and reports it with its
    /// [`failure_reporter`](Self::failure_reporter), the supervisor rebuilds it instead of
    /// spawning a new actor. Call it after spawning; it applies to this incarnation.
    pub fn restart_in_place(&self, child: impl InPlaceChild) {
        self.in_place.set(Some(Arc::new(child)));
    }

    /// How the worker reports a failure it survived (see [`InPlaceChild`]).
    pub fn failure_reporter(&self) -> FailureReporter {
        FailureReporter {
            mailbox: self.mailbox.clone(),
            restarts_here: self.restarts_here.clone(),
            generation: Arc::clone(&self.generation),
        }
    }

    /// The supervisor's actor, for start functions that spawn and link actors themselves.
    pub fn supervisor_cell(&self) -> &ActorCell {
        self.mailbox.supervisor()
    }

    /// Spawns `actor` linked to the supervisor, wrapped in [`Supervised`] so that a panic in a
    /// handler is reported as [`ExitReason::Panicked`] and an error as [`ExitReason::Failed`].
    /// Fails with a [`StartError`] when `pre_start` fails or panics.
    pub async fn spawn<A: Actor>(
        &self,
        actor: A,
        arguments: A::Arguments,
    ) -> Result<ActorRef<A::Msg>, StartError> {
        Actor::spawn_linked(
            None,
            Supervised {
                inner: actor,
                census: Some(self.census.clone()),
                failure: Some(self.failure.clone()),
            },
            arguments,
            self.mailbox.supervisor().clone(),
        )
        .await
        .map(|(actor_ref, _)| actor_ref)
        .map_err(start_error_from_spawn)
    }
}

/// Reads why a ractor spawn failed.
pub(crate) fn start_error_from_spawn(error: SpawnErr) -> StartError {
    match error {
        SpawnErr::StartupFailed(cause) => {
            if let Some(start_error) = cause.downcast_ref::<StartError>() {
                return start_error.clone();
            }
            match cause.downcast_ref::<ChildExit>() {
                Some(ChildExit {
                    reason: ExitReason::Panicked(message),
                }) => StartError::Panicked(message.clone()),
                Some(ChildExit {
                    reason: ExitReason::Failed(message),
                }) => StartError::Failed(message.clone()),
                Some(exit) => StartError::Failed(exit.reason.to_string()),
                None => StartError::Failed(cause.to_string()),
            }
        }
        other => StartError::Failed(other.to_string()),
    }
}

/// Wraps any ractor actor so that its failures carry an exact [`ExitReason`]: a panic in any
/// callback becomes [`ExitReason::Panicked`] with the panic message, a returned error becomes
/// [`ExitReason::Failed`] (a returned [`ChildExit`] keeps its own reason).
///
/// The wrapper has the same message type, so `ActorRef<A::Msg>` works unchanged.
/// [`StartContext::spawn`] applies it for you.
#[derive(Debug)]
pub struct Supervised<A> {
    inner: A,
    census: Option<Census>,
    failure: Option<FailureRecord>,
}

impl<A> Supervised<A> {
    /// Wraps `actor`.
    pub fn new(actor: A) -> Self {
        Self {
            inner: actor,
            census: None,
            failure: None,
        }
    }
}

/// The state of a [`Supervised`] actor: the wrapped actor's state, and the actor's place in its
/// tree's count of live actors.
#[derive(Debug)]
pub struct SupervisedState<S> {
    inner: S,
    _alive: Option<CensusGuard>,
}

/// Runs one callback, turning a panic or an error into a [`ChildExit`], and records it in
/// `failure` for the supervisor (see [`FailureRecord`]).
///
/// A combinator rather than an `async fn`: an `async fn` would keep the callback's future twice
/// (its argument, and the future it awaits), and a handler's future is built for every message.
fn guarded<'f, T, F>(
    callback: F,
    failure: Option<&'f FailureRecord>,
) -> impl std::future::Future<Output = Result<T, ActorProcessingErr>> + use<'f, T, F>
where
    F: std::future::Future<Output = Result<T, ActorProcessingErr>>,
{
    AssertUnwindSafe(callback)
        .catch_unwind()
        .map(move |caught| {
            let error: ActorProcessingErr = match caught {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(error)) if error.is::<ChildExit>() => error,
                Ok(Err(error)) => ChildExit::new(ExitReason::Failed(error.to_string())).into(),
                Err(payload) => ChildExit::new(ExitReason::Panicked(panic_message(payload))).into(),
            };
            if let Some(failure) = failure {
                failure.record(&error);
            }
            Err(error)
        })
}

impl<A: Actor> Actor for Supervised<A> {
    type Msg = A::Msg;
    type State = SupervisedState<A::State>;
    type Arguments = A::Arguments;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        arguments: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        let inner = guarded(
            self.inner.pre_start(myself, arguments),
            self.failure.as_ref(),
        )
        .await?;
        Ok(SupervisedState {
            inner,
            _alive: self.census.as_ref().map(Census::enter),
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        guarded(
            self.inner.post_start(myself, &mut state.inner),
            self.failure.as_ref(),
        )
        .await
    }

    async fn post_stop(
        &self,
        myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        guarded(
            self.inner.post_stop(myself, &mut state.inner),
            self.failure.as_ref(),
        )
        .await
    }

    // Not an `async fn`: the guarded future is returned as it is, without one more state
    // machine around it (one is built for every message).
    fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> impl std::future::Future<Output = Result<(), ActorProcessingErr>> + Send {
        guarded(
            self.inner.handle(myself, message, &mut state.inner),
            self.failure.as_ref(),
        )
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        guarded(
            self.inner
                .handle_supervisor_evt(myself, event, &mut state.inner),
            self.failure.as_ref(),
        )
        .await
    }
}
