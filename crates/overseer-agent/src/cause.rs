//! The ask a thread is working on, for events raised synchronously inside library calls that do
//! not know about asks (the kill switch's trip callback runs inside a budget commit); and the
//! ask a handler is handling, for the asks and tells it makes in turn (their events name it as
//! their parent, and its request).

use std::cell::{Cell, RefCell};

use overseer_supervisor::{ChildPath, EventId};

thread_local! {
    /// The ask this thread is working on, inside [`during_ask`].
    static ASK_IN_PROGRESS: Cell<Option<EventId>> = const { Cell::new(None) };
    /// The path of the agent of the latest ask this thread worked on: kept after the ask, so
    /// that the next ask of the same agent (the common case) does not clone it again.
    static PATH_OF_ASK: RefCell<Option<ChildPath>> = const { RefCell::new(None) };
}

/// Runs `work` with `ask` (of the agent at `path`) recorded as this thread's ask in progress.
// Inlined: it wraps the admission and the settlement of every governed ask, so it clones
// nothing for an agent whose path is kept already (two thread-local accesses, no atomics).
#[inline]
pub(crate) fn during_ask<T>(ask: EventId, path: Option<&ChildPath>, work: impl FnOnce() -> T) -> T {
    let replaced_path = PATH_OF_ASK.with(|kept| {
        let mut kept = kept.borrow_mut();
        let same = match (kept.as_ref(), path) {
            (Some(kept), Some(path)) => kept.is_same(path),
            (None, None) => true,
            _ => false,
        };
        (!same).then(|| std::mem::replace(&mut *kept, path.cloned()))
    });
    let restore = Restore {
        ask: ASK_IN_PROGRESS.replace(Some(ask)),
        path: replaced_path,
    };
    let result = work();
    drop(restore);
    result
}

/// Puts back the ask in progress before [`during_ask`] (its path too, when nested), also when
/// its work panics.
struct Restore {
    ask: Option<EventId>,
    /// The path kept before, if `during_ask` replaced it.
    path: Option<Option<ChildPath>>,
}

impl Drop for Restore {
    fn drop(&mut self) {
        ASK_IN_PROGRESS.set(self.ask);
        // An outer ask in progress gets its path back; otherwise the new one is kept.
        if let (Some(_), Some(path)) = (self.ask, self.path.take()) {
            PATH_OF_ASK.with(|kept| *kept.borrow_mut() = path);
        }
    }
}

/// Where a task stands in its request: the ask whose handler made it, and the request's first
/// ask (the one made outside any handler). Carried by a job from the caller to the agent, so
/// that what its handler asks or tells in turn, and a tell's event, name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lineage {
    /// The ask whose handler made the task.
    pub(crate) parent: EventId,
    /// The first ask of the request.
    pub(crate) request: EventId,
}

impl Lineage {
    /// The lineage of what the handler of `ask` makes, `ask` itself made in `made_in`.
    pub(crate) fn under(ask: EventId, made_in: Option<Lineage>) -> Self {
        Self {
            parent: ask,
            request: made_in.map_or(ask, |lineage| lineage.request),
        }
    }
}

thread_local! {
    /// The lineage of what is asked on the future being polled on this thread: the ask whose
    /// handler it runs (or which spawned it through its context), and that ask's request. Set
    /// by a [`HandledAs`] for each poll of the future it wraps, and put back after: a task-local
    /// value, kept in a `Cell` (a few instructions per poll, where tokio's `task_local!` takes
    /// about sixty).
    static HANDLING: Cell<Option<Lineage>> = const { Cell::new(None) };
}

/// `work` (a handler's future, or a task it spawned) run under `lineage`: an ask or tell made
/// inside it names `lineage.parent` as its parent ([`handled`]).
pub(crate) fn handling<F: std::future::Future>(lineage: Lineage, work: F) -> HandledAs<F> {
    handled_as(Some(lineage), work)
}

pin_project_lite::pin_project! {
    /// A future run as the ask it serves, if any ([`handled_as`]): each poll sets this thread's
    /// lineage for the asks made in it, and puts the one before back after (also if the poll
    /// panics). It holds the lineage and nothing else (16 bytes beside the future), since
    /// every agent's task keeps room for it.
    pub(crate) struct HandledAs<F> {
        lineage: Option<Lineage>,
        #[pin]
        work: F,
    }
}

impl<F: std::future::Future> std::future::Future for HandledAs<F> {
    type Output = F::Output;

    #[inline]
    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        let this = self.project();
        let Some(lineage) = *this.lineage else {
            return this.work.poll(cx);
        };
        let _restore = RestoreLineage(HANDLING.replace(Some(lineage)));
        this.work.poll(cx)
    }
}

/// Puts back the lineage of the future polled before, when a [`HandledAs`]'s poll ends.
struct RestoreLineage(Option<Lineage>);

impl Drop for RestoreLineage {
    fn drop(&mut self) {
        HANDLING.set(self.0);
    }
}

/// `work` run under `lineage` if there is one (as [`handling`] runs it), else as it is: not
/// boxed, so a handler watched by subscribers costs two thread-local writes per poll and no
/// allocation.
#[inline]
pub(crate) fn handled_as<F: std::future::Future>(
    lineage: Option<Lineage>,
    work: F,
) -> HandledAs<F> {
    HandledAs { lineage, work }
}

/// The lineage of an ask or tell made on this task, if a handler's work runs here.
#[inline]
pub(crate) fn handled() -> Option<Lineage> {
    HANDLING.get()
}

/// The ask this thread is working on, and its agent's path, if inside [`during_ask`].
pub(crate) fn ask_in_progress() -> Option<(EventId, Option<ChildPath>)> {
    let ask = ASK_IN_PROGRESS.get()?;
    Some((ask, PATH_OF_ASK.with(|kept| kept.borrow().clone())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use overseer_supervisor::EventIds;

    #[tokio::test]
    async fn work_under_a_lineage_sees_it_and_the_next_level_keeps_the_request() {
        let ids = EventIds::default();
        let (request, nested) = (ids.next(), ids.next());
        assert_eq!(handled(), None);
        let top = Lineage::under(request, None);
        assert_eq!(top.request, request);
        let seen = handling(top, async {
            let outer = handled().expect("inside");
            let inner = Lineage::under(nested, Some(outer));
            handling(inner, async { handled() }).await
        })
        .await;
        assert_eq!(
            seen,
            Some(Lineage {
                parent: nested,
                request
            })
        );
        assert_eq!(handled(), None);
    }

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

    #[test]
    fn a_nested_ask_of_another_agent_gives_the_outer_its_path_back() {
        use overseer_supervisor::ChildId;
        let ids = EventIds::default();
        let (outer, inner) = (ids.next(), ids.next());
        let root = ChildPath::root(&ChildId::from("root"));
        let (planner, coder) = (
            root.join(&ChildId::from("planner")),
            root.join(&ChildId::from("coder")),
        );
        during_ask(outer, Some(&planner), || {
            during_ask(inner, Some(&coder), || {
                assert_eq!(ask_in_progress(), Some((inner, Some(coder.clone()))));
            });
            assert_eq!(ask_in_progress(), Some((outer, Some(planner.clone()))));
        });
        assert_eq!(ask_in_progress(), None);
        // The next ask of another agent, or of none, names its own path.
        during_ask(inner, None, || {
            assert_eq!(ask_in_progress(), Some((inner, None)))
        });
    }

    #[test]
    fn a_panic_inside_leaves_no_ask_in_progress() {
        let ids = EventIds::default();
        let ask = ids.next();
        let panicked = std::panic::catch_unwind(|| during_ask(ask, None, || panic!("inside")));
        assert!(panicked.is_err());
        assert_eq!(ask_in_progress(), None);
    }
}
