//! A handle to a running supervisor: OTP's child API.

use std::fmt;
use std::time::Duration;

use ractor::rpc::CallResult;
use ractor::{ActorCell, ActorRef, ActorStatus, RpcReplyPort};

use crate::supervisor::message::SupervisorMsg;
use crate::{
    ChildCounts, ChildId, ChildInfo, ChildOpError, ChildSpec, ChildType, SupervisorStatus,
};

/// A cloneable handle to a running supervisor.
///
/// Every call is a request in the supervisor's mailbox and its answer (ractor's `call`). Like
/// OTP's supervisor, it answers calls one at a time, in the order they arrive, between its own
/// restarts and shutdowns, so an answer reflects every request sent before it.
///
/// # Errors
/// Every call waits at most the handle's call timeout (the tree's default, or
/// [`with_call_timeout`](Self::with_call_timeout)) and fails with a typed [`ChildOpError`]:
/// OTP's `{error, _}` outcomes (listed on each method),
/// [`SupervisorNotRunning`](ChildOpError::SupervisorNotRunning) when the supervisor has exited
/// (or exits before it reaches the request), or [`Timeout`](ChildOpError::Timeout) when no
/// answer came in time. A timed-out request is not withdrawn: it waits in the mailbox and is
/// carried out when the supervisor reaches it.
///
/// # Cancel safety
/// A call's future sends nothing until it is first polled. From its first poll the request is
/// in the supervisor's mailbox: dropping the future then loses only the answer, and the
/// supervisor carries the request out anyway (a [`which_children`](Self::which_children) sent
/// after a dropped [`start_child`](Self::start_child) sees the child).
///
/// # Panics
/// The call timeout is a tokio timer: polled outside a Tokio runtime with timers enabled, a
/// call panics as [`tokio::time::timeout`] does (after sending its request).
#[derive(Clone)]
pub struct SupervisorRef {
    actor: ActorRef<SupervisorMsg>,
    call_timeout: Duration,
}

impl SupervisorRef {
    pub(crate) fn new(actor: ActorRef<SupervisorMsg>, call_timeout: Duration) -> Self {
        Self {
            actor,
            call_timeout,
        }
    }

    /// The same handle with another call timeout.
    pub fn with_call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// The supervisor's actor.
    pub fn cell(&self) -> ActorCell {
        self.actor.get_cell()
    }

    /// Whether the supervisor is still running.
    pub fn is_alive(&self) -> bool {
        !matches!(
            self.actor.get_status(),
            ActorStatus::Stopping | ActorStatus::Stopped
        )
    }

    /// Adds a child to a static supervisor and starts it (OTP `start_child/2`). The child is
    /// placed last in start order. The spec is kept only if the start succeeds.
    ///
    /// # Errors
    /// * [`NotAllowedOnDynamic`](ChildOpError::NotAllowedOnDynamic) on a dynamic supervisor
    ///   (use [`start_dynamic_child`](Self::start_dynamic_child));
    /// * [`InvalidSpec`](ChildOpError::InvalidSpec) when the spec is not valid for this
    ///   supervisor (its id, its options, a nested supervisor's spec or depth);
    /// * [`AlreadyStarted`](ChildOpError::AlreadyStarted) or
    ///   [`AlreadyPresent`](ChildOpError::AlreadyPresent) when a running or a stopped child
    ///   has the id;
    /// * [`StartFailed`](ChildOpError::StartFailed) when the start failed: nothing of the
    ///   child is left, and its watcher is told [`Removed`](crate::ChildFate::Removed);
    /// * [`SupervisorNotRunning`](ChildOpError::SupervisorNotRunning) and
    ///   [`Timeout`](ChildOpError::Timeout), as every call (see [`SupervisorRef`]).
    ///
    /// # Cancel safety
    /// Dropped after its first poll, the child is still added and started (and kept if the
    /// start succeeds); only its actor, the answer, is lost.
    pub async fn start_child(&self, spec: ChildSpec) -> Result<ActorCell, ChildOpError> {
        self.call(|reply| SupervisorMsg::StartChild(spec, reply))
            .await?
    }

    /// Adds a child to a dynamic supervisor from its template, under `id` (unique among its
    /// children), and starts it.
    ///
    /// # Errors
    /// [`OnlyOnDynamic`](ChildOpError::OnlyOnDynamic) on a static supervisor;
    /// [`InvalidSpec`](ChildOpError::InvalidSpec) for an invalid id;
    /// [`AlreadyStarted`](ChildOpError::AlreadyStarted) or
    /// [`AlreadyPresent`](ChildOpError::AlreadyPresent) (waiting for a restart retry) when a
    /// child has the id; [`StartFailed`](ChildOpError::StartFailed), the child then forgotten;
    /// [`SupervisorNotRunning`](ChildOpError::SupervisorNotRunning) and
    /// [`Timeout`](ChildOpError::Timeout), as every call (see [`SupervisorRef`]).
    ///
    /// # Cancel safety
    /// As [`start_child`](Self::start_child): once polled, the child is started anyway.
    pub async fn start_dynamic_child(
        &self,
        id: impl Into<ChildId>,
    ) -> Result<ActorCell, ChildOpError> {
        let id = id.into();
        self.call(|reply| SupervisorMsg::StartDynamicChild(id, reply))
            .await?
    }

    /// Stops a child through its shutdown spec (OTP `terminate_child/2`). A temporary child or a
    /// dynamic supervisor's child is then forgotten; any other keeps its spec for
    /// [`restart_child`](Self::restart_child). Not counted as a restart, never triggers
    /// automatic shutdown. Terminating a stopped child succeeds; terminating one that waits
    /// for a restart retry cancels the retry.
    ///
    /// # Errors
    /// [`NotFound`](ChildOpError::NotFound) when no child has the id;
    /// [`SupervisorNotRunning`](ChildOpError::SupervisorNotRunning) and
    /// [`Timeout`](ChildOpError::Timeout), as every call (see [`SupervisorRef`]). A child with a
    /// long shutdown spec can take longer than the call timeout to stop: it is stopped all the
    /// same.
    ///
    /// # Cancel safety
    /// Dropped after its first poll, the child is still stopped (and forgotten, as above).
    pub async fn terminate_child(&self, id: impl Into<ChildId>) -> Result<(), ChildOpError> {
        let id = id.into();
        self.call(|reply| SupervisorMsg::TerminateChild(id, reply))
            .await?
    }

    /// Starts a stopped child again (OTP `restart_child/2`); not counted toward intensity.
    ///
    /// # Errors
    /// [`NotAllowedOnDynamic`](ChildOpError::NotAllowedOnDynamic) on a dynamic supervisor;
    /// [`NotFound`](ChildOpError::NotFound); [`Running`](ChildOpError::Running) or
    /// [`Restarting`](ChildOpError::Restarting) when the child is not stopped;
    /// [`StartFailed`](ChildOpError::StartFailed), the child then stays stopped with its spec
    /// kept; [`SupervisorNotRunning`](ChildOpError::SupervisorNotRunning) and
    /// [`Timeout`](ChildOpError::Timeout), as every call (see [`SupervisorRef`]).
    ///
    /// # Cancel safety
    /// Dropped after its first poll, the child is still started.
    pub async fn restart_child(&self, id: impl Into<ChildId>) -> Result<ActorCell, ChildOpError> {
        let id = id.into();
        self.call(|reply| SupervisorMsg::RestartChild(id, reply))
            .await?
    }

    /// Forgets a stopped child's spec (OTP `delete_child/2`).
    ///
    /// # Errors
    /// [`NotAllowedOnDynamic`](ChildOpError::NotAllowedOnDynamic) on a dynamic supervisor;
    /// [`NotFound`](ChildOpError::NotFound); [`Running`](ChildOpError::Running) or
    /// [`Restarting`](ChildOpError::Restarting) when the child is not stopped;
    /// [`SupervisorNotRunning`](ChildOpError::SupervisorNotRunning) and
    /// [`Timeout`](ChildOpError::Timeout), as every call (see [`SupervisorRef`]).
    ///
    /// # Cancel safety
    /// Dropped after its first poll, the spec is still deleted.
    pub async fn delete_child(&self, id: impl Into<ChildId>) -> Result<(), ChildOpError> {
        let id = id.into();
        self.call(|reply| SupervisorMsg::DeleteChild(id, reply))
            .await?
    }

    /// Every child in start order, with its state (OTP `which_children/1`).
    ///
    /// # Errors
    /// [`SupervisorNotRunning`](ChildOpError::SupervisorNotRunning) and
    /// [`Timeout`](ChildOpError::Timeout), as every call (see [`SupervisorRef`]).
    ///
    /// # Cancel safety
    /// Cancel safe: it changes nothing, and a dropped call only leaves the supervisor an
    /// answer to throw away.
    pub async fn which_children(&self) -> Result<Vec<ChildInfo>, ChildOpError> {
        self.call(SupervisorMsg::WhichChildren).await
    }

    /// How many children there are, by kind and state (OTP `count_children/1`).
    ///
    /// # Errors
    /// [`SupervisorNotRunning`](ChildOpError::SupervisorNotRunning) and
    /// [`Timeout`](ChildOpError::Timeout), as every call (see [`SupervisorRef`]).
    ///
    /// # Cancel safety
    /// Cancel safe, as [`which_children`](Self::which_children).
    pub async fn count_children(&self) -> Result<ChildCounts, ChildOpError> {
        self.call(SupervisorMsg::CountChildren).await
    }

    /// Where the supervisor is, its strategy, and its restart intensity: the restarts it
    /// tolerates per period and how many count now, so that a view shows how close it is to
    /// giving up before it does. Not an OTP call.
    ///
    /// ```
    /// use overseer_supervisor::{SupervisionTree, SupervisorSpec};
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let spec = SupervisorSpec::one_for_one("root").intensity(3, Duration::from_secs(10));
    /// let tree = SupervisionTree::start(spec).await?;
    /// let status = tree.root().status().await?;
    /// assert_eq!((status.max_restarts, status.period), (3, Duration::from_secs(10)));
    /// assert_eq!(status.restarts_in_window, 0);
    /// assert_eq!(status.path.as_str(), "root");
    /// tree.shutdown(Duration::from_secs(5)).await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`SupervisorNotRunning`](ChildOpError::SupervisorNotRunning) and
    /// [`Timeout`](ChildOpError::Timeout), as every call (see [`SupervisorRef`]).
    ///
    /// # Cancel safety
    /// Cancel safe, as [`which_children`](Self::which_children).
    pub async fn status(&self) -> Result<SupervisorStatus, ChildOpError> {
        self.call(SupervisorMsg::Status).await
    }

    /// Sends a request and waits at most the call timeout for its answer. The request is sent
    /// when this is first polled (ractor's `call` sends before it waits).
    async fn call<T: Send + 'static>(
        &self,
        request: impl FnOnce(RpcReplyPort<T>) -> SupervisorMsg,
    ) -> Result<T, ChildOpError> {
        match self.actor.call(request, Some(self.call_timeout)).await {
            Ok(CallResult::Success(value)) => Ok(value),
            Ok(CallResult::Timeout) => Err(ChildOpError::Timeout(self.call_timeout)),
            // The request was refused (the supervisor had exited) or dropped unanswered (it
            // exited before reaching it).
            Ok(CallResult::SenderError) | Err(_) => Err(ChildOpError::SupervisorNotRunning),
        }
    }
}

impl fmt::Debug for SupervisorRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SupervisorRef")
            .field("actor", &self.actor.get_id())
            .field("call_timeout", &self.call_timeout)
            .finish()
    }
}

// With the handle it makes: `ChildInfo` is reported through the supervisor's messages, which
// this file lies above.
impl ChildInfo {
    /// A handle to this child when it is a running supervisor.
    pub fn supervisor(&self) -> Option<SupervisorRef> {
        match (&self.cell, self.child_type) {
            (Some(cell), ChildType::Supervisor) => Some(SupervisorRef::new(
                ActorRef::from(cell.clone()),
                self.call_timeout,
            )),
            _ => None,
        }
    }
}
