//! Counting a tree's live actors, so tests and operators can check that nothing outlives it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A tree's count of live actors: its supervisors and the workers spawned through
/// [`StartContext::spawn`](crate::StartContext::spawn).
#[derive(Debug, Clone, Default)]
pub(crate) struct Census(Arc<AtomicUsize>);

impl Census {
    /// Counts one more live actor until the returned guard is dropped (with the actor's state,
    /// which ractor drops when the actor ends, killed or not).
    pub(crate) fn enter(&self) -> CensusGuard {
        self.0.fetch_add(1, Ordering::SeqCst);
        CensusGuard(Arc::clone(&self.0))
    }

    pub(crate) fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// Held in an actor's state: the actor counts as alive while it exists.
#[derive(Debug)]
pub(crate) struct CensusGuard(Arc<AtomicUsize>);

impl Drop for CensusGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
