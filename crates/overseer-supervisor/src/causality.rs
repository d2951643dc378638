//! Event ids and causal links: which event led to which.

use std::num::NonZeroU64;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The id of one event, unique among the events sharing an [`EventIds`] allocator.
///
/// Every [`LifecycleEvent`](crate::LifecycleEvent) has an [`EventId`], unique within its tree
/// (or within every stream sharing one [`EventIds`] allocator), and may name the event that
/// caused it in `caused_by`:
///
/// | event | `caused_by` |
/// |---|---|
/// | a child's `stopped` (it exited by itself) | what the child recorded in its [`ExitCause`] before failing (for an agent: the ask whose handler crashed), else none |
/// | a child's `stopped` (its supervisor stopped it) | the event the supervisor was acting on: the exit that triggered a group restart, an escalation, an automatic shutdown, a shutdown request |
/// | `started` / `start_failed` of a restart | the `stopped` event that triggered the restart |
/// | `started` of a child during its supervisor's start | the supervisor's `started` |
/// | `escalated`, `auto_shutdown` | the child's `stopped` that led to it |
/// | a nested supervisor's `stopped` after it escalated | its `escalated` |
///
/// So a chain ask → crash → restart → escalation → the parent's restart can be followed from
/// any event back to its origin.
///
/// Ids are allocated when the thing they name begins: an ask gets its id when it is made, so an
/// ask's event can carry a smaller id than events published before it. Order events by their
/// position in the stream, not by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(NonZeroU64);

impl EventId {
    /// The id as a number (never 0).
    pub fn get(self) -> u64 {
        self.0.get()
    }

    /// The id for `value`, or `None` for 0.
    pub fn new(value: u64) -> Option<Self> {
        NonZeroU64::new(value).map(Self)
    }
}

impl std::fmt::Display for EventId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Hands out [`EventId`]s: 1, 2, 3, ... Clones share the sequence, so a tree and the system
/// around it can number their events in one sequence.
///
/// ```
/// use overseer_supervisor::EventIds;
/// let ids = EventIds::default();
/// let first = ids.next();
/// let second = ids.clone().next();
/// assert!(first < second);
/// ```
#[derive(Debug, Clone, Default)]
pub struct EventIds(Arc<AtomicU64>);

impl EventIds {
    /// The next id.
    pub fn next(&self) -> EventId {
        let value = self.0.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        // 2^64 events are never reached; 0 would only follow a wrap.
        EventId(NonZeroU64::new(value).unwrap_or(NonZeroU64::MIN))
    }
}

/// Where a child records why it is about to exit, so that its supervisor can link the
/// `stopped` event to the cause (for an agent: the ask being handled). A supervisor also
/// records here why it stops a child, for the child's own children.
///
/// One cell per child, kept across the child's restarts; cheap to clone (one `Arc`), and
/// setting it is one atomic store, so a worker can record the event it is working on before
/// every message.
#[derive(Debug, Clone, Default)]
pub struct ExitCause(Arc<AtomicU64>);

impl ExitCause {
    /// Records `cause` (or clears the record with `None`).
    pub fn set(&self, cause: Option<EventId>) {
        self.0
            .store(cause.map_or(0, EventId::get), Ordering::Release);
    }

    /// The recorded cause.
    pub fn get(&self) -> Option<EventId> {
        EventId::new(self.0.load(Ordering::Acquire))
    }

    /// Takes the recorded cause, leaving none.
    pub fn take(&self) -> Option<EventId> {
        EventId::new(self.0.swap(0, Ordering::AcqRel))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_increasing_across_clones() {
        let ids = EventIds::default();
        let other = ids.clone();
        let taken = [ids.next(), other.next(), ids.next()];
        assert_eq!(taken.map(EventId::get), [1, 2, 3]);
    }

    #[test]
    fn an_exit_cause_is_taken_once() {
        let cause = ExitCause::default();
        assert_eq!(cause.get(), None);
        let id = EventIds::default().next();
        cause.set(Some(id));
        assert_eq!(cause.clone().get(), Some(id));
        assert_eq!(cause.take(), Some(id));
        assert_eq!(cause.take(), None);
    }

    #[test]
    fn event_ids_serialize_as_plain_numbers() {
        let id = EventId::new(7).expect("non-zero");
        assert_eq!(serde_json::to_string(&id).expect("serializes"), "7");
        assert_eq!(
            serde_json::from_str::<EventId>("7").expect("deserializes"),
            id
        );
        assert!(serde_json::from_str::<EventId>("0").is_err());
        assert_eq!(id.to_string(), "#7");
    }
}
