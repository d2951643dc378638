//! The system's bulkheads by name, as handlers reach them.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use overseer_fanout::{Bulkhead, BulkheadError, BulkheadPermit, BulkheadSnapshot};
use tokio::time::Instant;

/// The bulkheads a system was built with ([`SystemBuilder::bulkhead`](crate::SystemBuilder::bulkhead)):
/// shared by every agent, one `Arc` per incarnation's context.
#[derive(Debug, Clone, Default)]
pub(crate) struct Bulkheads(Arc<HashMap<Arc<str>, Arc<Bulkhead>>>);

impl Bulkheads {
    pub(crate) fn new(bulkheads: HashMap<Arc<str>, Arc<Bulkhead>>) -> Self {
        Self(Arc::new(bulkheads))
    }

    /// The bulkhead named `name`, to be entered by `deadline`.
    pub(crate) fn call(
        &self,
        name: &str,
        deadline: Option<Instant>,
    ) -> Result<BulkheadCall, BulkheadError> {
        let bulkhead = self.0.get(name).ok_or_else(|| BulkheadError::Unknown {
            name: name.to_string(),
        })?;
        Ok(BulkheadCall {
            bulkhead: Arc::clone(bulkhead),
            deadline,
        })
    }

    /// Every bulkhead's figures, by name.
    pub(crate) fn snapshot(&self) -> Vec<BulkheadSnapshot> {
        let mut snapshots: Vec<_> = self.0.values().map(|b| b.snapshot()).collect();
        snapshots.sort_by(|a, b| a.name.cmp(&b.name));
        snapshots
    }
}

/// A call about to enter a bulkhead: its permit wait ends at the task's deadline
/// ([`AgentContext::bulkhead`](crate::AgentContext::bulkhead)). It holds no borrow of the
/// context, so the work it runs may use the context mutably.
#[derive(Debug)]
#[must_use = "a bulkhead call does nothing until it is run"]
pub struct BulkheadCall {
    bulkhead: Arc<Bulkhead>,
    deadline: Option<Instant>,
}

impl BulkheadCall {
    /// Waits for a permit at most `wait` from now, if that comes before the task's deadline:
    /// a handler that would rather do something else than wait its whole deadline (at which
    /// it is stopped as hung) sets it.
    pub fn wait_at_most(mut self, wait: std::time::Duration) -> Self {
        let bound = overseer_supervisor::deadline_after(Instant::now(), wait);
        self.deadline = Some(self.deadline.map_or(bound, |deadline| deadline.min(bound)));
        self
    }

    /// Takes a permit (waiting at most to the deadline), runs `work` holding it, and gives it
    /// back.
    ///
    /// # Errors
    /// [`BulkheadError::Timeout`] when no permit was free by the deadline; `work` is then not
    /// run.
    ///
    /// # Cancel safety
    /// Dropping the future drops `work` and gives back the permit, or the place in the queue.
    pub async fn run<F: Future>(self, work: F) -> Result<F::Output, BulkheadError> {
        let _permit = self.bulkhead.acquire_until(self.deadline).await?;
        Ok(work.await)
    }

    /// Takes a permit, waiting at most to the deadline; the permit is given back on drop.
    ///
    /// # Errors
    /// [`BulkheadError::Timeout`] when no permit was free by the deadline.
    pub async fn permit(self) -> Result<BulkheadPermit, BulkheadError> {
        self.bulkhead.acquire_until(self.deadline).await
    }
}
