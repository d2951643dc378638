//! A handle to a running supervisor: OTP's child API.

use std::fmt;
use std::time::Duration;

use ractor::rpc::CallResult;
use ractor::{ActorCell, ActorRef, ActorStatus, RpcReplyPort};
use serde::{Deserialize, Serialize};

use crate::supervisor::SupervisorMsg;
use crate::{ChildId, ChildOpError, ChildPath, ChildSpec, ChildType, Restart};

/// A cloneable handle to a running supervisor.
///
/// Each call waits at most the handle's call timeout (the tree's default, or
/// [`with_call_timeout`](Self::with_call_timeout)) and fails with a typed [`ChildOpError`]:
/// OTP's `{error, _}` outcomes, [`SupervisorNotRunning`](ChildOpError::SupervisorNotRunning)
/// after the supervisor exited, or [`Timeout`](ChildOpError::Timeout). Like OTP's supervisor, it
/// answers calls one at a time, between its own restarts and shutdowns.
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
    pub async fn start_child(&self, spec: ChildSpec) -> Result<ActorCell, ChildOpError> {
        self.call(|reply| SupervisorMsg::StartChild(spec, reply))
            .await?
    }

    /// Adds a child to a dynamic supervisor from its template, under `id` (unique among its
    /// children), and starts it.
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
    /// automatic shutdown.
    pub async fn terminate_child(&self, id: impl Into<ChildId>) -> Result<(), ChildOpError> {
        let id = id.into();
        self.call(|reply| SupervisorMsg::TerminateChild(id, reply))
            .await?
    }

    /// Starts a stopped child again (OTP `restart_child/2`); not counted toward intensity.
    pub async fn restart_child(&self, id: impl Into<ChildId>) -> Result<ActorCell, ChildOpError> {
        let id = id.into();
        self.call(|reply| SupervisorMsg::RestartChild(id, reply))
            .await?
    }

    /// Forgets a stopped child's spec (OTP `delete_child/2`).
    pub async fn delete_child(&self, id: impl Into<ChildId>) -> Result<(), ChildOpError> {
        let id = id.into();
        self.call(|reply| SupervisorMsg::DeleteChild(id, reply))
            .await?
    }

    /// Every child in start order, with its state (OTP `which_children/1`).
    pub async fn which_children(&self) -> Result<Vec<ChildInfo>, ChildOpError> {
        self.call(SupervisorMsg::WhichChildren).await
    }

    /// How many children there are, by kind and state (OTP `count_children/1`).
    pub async fn count_children(&self) -> Result<ChildCounts, ChildOpError> {
        self.call(SupervisorMsg::CountChildren).await
    }

    async fn call<T: Send + 'static>(
        &self,
        request: impl FnOnce(RpcReplyPort<T>) -> SupervisorMsg,
    ) -> Result<T, ChildOpError> {
        match self.actor.call(request, Some(self.call_timeout)).await {
            Ok(CallResult::Success(value)) => Ok(value),
            Ok(CallResult::Timeout) => Err(ChildOpError::Timeout(self.call_timeout)),
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

/// Whether a child is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChildState {
    /// Running.
    Running,
    /// A restart attempt failed; a retry is queued.
    Restarting,
    /// Stopped, spec kept.
    NotRunning,
}

/// One child, as [`SupervisorRef::which_children`] reports it.
#[derive(Clone)]
pub struct ChildInfo {
    /// The child's id.
    pub id: ChildId,
    /// Its path in the tree.
    pub path: ChildPath,
    /// Worker or supervisor.
    pub child_type: ChildType,
    /// Its restart type.
    pub restart: Restart,
    /// Whether it runs.
    pub state: ChildState,
    /// Its actor, when running.
    pub cell: Option<ActorCell>,
    pub(crate) call_timeout: Duration,
}

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

impl fmt::Debug for ChildInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildInfo")
            .field("id", &self.id)
            .field("path", &self.path)
            .field("child_type", &self.child_type)
            .field("restart", &self.restart)
            .field("state", &self.state)
            .field("actor", &self.cell.as_ref().map(ActorCell::get_id))
            .finish()
    }
}

/// Child counts, as OTP's `count_children/1` returns them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildCounts {
    /// All children, running or not.
    pub specs: usize,
    /// Running children.
    pub active: usize,
    /// Children that are supervisors.
    pub supervisors: usize,
    /// Children that are workers.
    pub workers: usize,
}
