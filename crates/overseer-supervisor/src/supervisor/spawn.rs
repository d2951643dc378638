//! Spawning a supervisor instance: the actor type, what it is started with, and the task it
//! starts in. The actor's callbacks (`impl Actor for SupervisorActor`) are in `supervisor.rs`.

use std::sync::Arc;

use ractor::{Actor, ActorCell, ActorRef};

use crate::subtree_watchers::SubtreeWatchers;
use crate::supervisor::message::SupervisorMsg;
use crate::supervisor::tree_context::TreeContext;
use crate::worker::start_error_from_spawn;
use crate::{ChildPath, EventId, ExitCause, StartError, SupervisorSpec};

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

/// Spawns a supervisor instance for a child spec, linked to `parent`.
///
/// It runs in a task of its own so that starting a deep tree does not nest one `pre_start`
/// inside another on a single stack. Dropping the returned future does not stop that task: the
/// supervisor starts anyway.
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
