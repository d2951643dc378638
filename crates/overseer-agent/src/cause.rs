//! The ask a thread is working on, for events raised synchronously inside library calls that do
//! not know about asks (the kill switch's trip callback runs inside a budget commit); and the
//! ask a handler is handling, for the asks it makes in turn (their events name it as their
//! cause).

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

tokio::task_local! {
    /// The ask whose handler the current task is running, while it runs.
    static HANDLING: EventId;
}

/// `work` (a handler's future) run with `ask` as the ask being handled: an ask made inside it
/// names `ask` as its cause ([`handled_ask`]).
pub(crate) fn handling<F: std::future::Future>(
    ask: EventId,
    work: F,
) -> impl std::future::Future<Output = F::Output> {
    HANDLING.scope(ask, work)
}

/// The ask whose handler is running on this task, if any: the cause of an ask made here.
pub(crate) fn handled_ask() -> Option<EventId> {
    HANDLING.try_with(|ask| *ask).ok()
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
