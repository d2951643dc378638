//! The ask a thread is working on, for events raised synchronously inside library calls that do
//! not know about asks (the kill switch's trip callback runs inside a budget commit).

use std::cell::RefCell;

use overseer_supervisor::{ChildPath, EventId};

thread_local! {
    static ASK_IN_PROGRESS: RefCell<Option<(EventId, Option<ChildPath>)>> =
        const { RefCell::new(None) };
}

/// Runs `work` with `ask` (of the agent at `path`) recorded as this thread's ask in progress.
// Inlined: it wraps the admission of every governed ask (two thread-local accesses).
#[inline]
pub(crate) fn during_ask<T>(ask: EventId, path: Option<&ChildPath>, work: impl FnOnce() -> T) -> T {
    let previous = ASK_IN_PROGRESS.with(|slot| slot.replace(Some((ask, path.cloned()))));
    let result = work();
    ASK_IN_PROGRESS.with(|slot| *slot.borrow_mut() = previous);
    result
}

/// The ask this thread is working on, and its agent's path, if inside [`during_ask`].
pub(crate) fn ask_in_progress() -> Option<(EventId, Option<ChildPath>)> {
    ASK_IN_PROGRESS.with(|slot| slot.borrow().clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use overseer_supervisor::EventIds;

    #[test]
    fn the_ask_in_progress_is_seen_inside_and_restored_after() {
        let ids = EventIds::default();
        let (outer, inner) = (ids.next(), ids.next());
        assert_eq!(ask_in_progress(), None);
        during_ask(outer, None, || {
            during_ask(inner, None, || {
                assert_eq!(ask_in_progress().map(|(id, _)| id), Some(inner))
            });
            assert_eq!(ask_in_progress().map(|(id, _)| id), Some(outer));
        });
        assert_eq!(ask_in_progress(), None);
    }
}
