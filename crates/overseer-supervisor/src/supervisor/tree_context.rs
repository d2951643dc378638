//! What every supervisor of one tree shares: its clock origin, its event stream and ids, its
//! count of operations in progress and of live actors.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::census::Census;
use crate::{ChildPath, EventBus, EventId, EventIds, EventKind, LifecycleEvent};

/// A function every lifecycle event is also given to, in order.
pub(crate) type EventSink = Arc<dyn Fn(&LifecycleEvent) + Send + Sync>;

/// What every supervisor of one tree shares.
#[derive(Clone)]
pub(crate) struct TreeContext {
    pub(crate) epoch: Instant,
    pub(crate) events: EventBus,
    pub(crate) sink: Option<EventSink>,
    pub(crate) activity: Arc<AtomicUsize>,
    pub(crate) census: Census,
    pub(crate) call_timeout: Duration,
    pub(crate) ids: EventIds,
}

impl std::fmt::Debug for TreeContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TreeContext")
            .field("epoch", &self.epoch)
            .field("has_sink", &self.sink.is_some())
            .field("activity", &self.activity)
            .field("call_timeout", &self.call_timeout)
            .finish()
    }
}

impl TreeContext {
    pub(crate) fn new(
        events: EventBus,
        sink: Option<EventSink>,
        call_timeout: Duration,
        ids: EventIds,
    ) -> Self {
        Self {
            ids,
            epoch: Instant::now(),
            events,
            sink,
            activity: Arc::new(AtomicUsize::new(0)),
            census: Census::default(),
            call_timeout,
        }
    }

    /// Whole seconds since the tree started: the clock restart intensity counts in.
    pub(crate) fn now_secs(&self) -> u64 {
        self.epoch.elapsed().as_secs()
    }

    /// Publishes an event and returns its id.
    pub(crate) fn emit(
        &self,
        path: &ChildPath,
        kind: EventKind,
        caused_by: Option<EventId>,
    ) -> EventId {
        let id = self.ids.next();
        let event = LifecycleEvent {
            id,
            caused_by,
            elapsed: self.epoch.elapsed(),
            path: path.clone(),
            kind,
        };
        if let Some(sink) = &self.sink {
            sink(&event);
        }
        self.events.publish(event);
        id
    }

    /// Marks a supervisor as busy until the guard drops.
    pub(crate) fn busy(&self) -> BusyGuard {
        self.activity.fetch_add(1, Ordering::SeqCst);
        BusyGuard(Arc::clone(&self.activity))
    }
}

/// Counts an operation of the tree as in progress while it exists.
#[derive(Debug)]
pub(crate) struct BusyGuard(Arc<AtomicUsize>);

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
