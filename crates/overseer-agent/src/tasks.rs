//! Tasks a handler spawns for its incarnation: aborted when the incarnation ends, as an
//! Erlang process linked to a dying one dies with it.

use std::future::Future;
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::task::{AbortHandle, JoinSet};

/// The tasks of an agent's current incarnation
/// (spawned with [`AgentContext::spawn`](crate::AgentContext::spawn)).
///
/// An incarnation ends when its agent is parked after a failure or for a group restart, when
/// it is stopped or killed, and when the system shuts down or is dropped; every such path
/// calls [`abort_all`](Self::abort_all), and dropping the set aborts what is left.
#[derive(Debug, Default)]
pub(crate) struct IncarnationTasks {
    set: Mutex<JoinSet<()>>,
}

impl IncarnationTasks {
    fn set(&self) -> MutexGuard<'_, JoinSet<()>> {
        self.set.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Spawns `task` on the current runtime, tied to the incarnation.
    pub(crate) fn spawn<F>(&self, task: F) -> AbortHandle
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let mut set = self.set();
        // Forget the tasks that ended, so a long-lived incarnation does not accumulate them.
        while set.try_join_next().is_some() {}
        set.spawn(task)
    }

    /// Aborts every task of the incarnation that ended.
    pub(crate) fn abort_all(&self) {
        let ended = {
            let mut set = self.set();
            if set.is_empty() {
                return;
            }
            std::mem::take(&mut *set)
        };
        // Dropping a set aborts its tasks (outside the lock: nothing runs under it).
        drop(ended);
    }

    /// How many tasks of the incarnation are still running.
    pub(crate) fn live(&self) -> usize {
        let mut set = self.set();
        while set.try_join_next().is_some() {}
        set.len()
    }
}
