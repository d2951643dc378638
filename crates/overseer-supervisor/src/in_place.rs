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
//! What differs from a restart with a new actor: messages queued in the mailbox survive the
//! restart, and the actor id stays the same. Anything else (events, order, counts, timing of
//! decisions) is the same, which the tests check by running the same scenarios both ways.

use futures::future::BoxFuture;
use futures::FutureExt;
use ractor::ActorCell;
use tokio::sync::oneshot;

use crate::supervisor::SupervisorMsg;
use crate::{ExitReason, StartError};

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
}

impl FailureReporter {
    /// Reports that the worker `child` (its own actor) failed with `reason` and has parked.
    /// Returns `false` if the supervisor is gone; the worker should then exit.
    pub fn report(&self, child: &ActorCell, reason: ExitReason) -> bool {
        self.supervisor
            .send_message(SupervisorMsg::ChildFailed(child.clone(), reason))
            .is_ok()
    }
}
