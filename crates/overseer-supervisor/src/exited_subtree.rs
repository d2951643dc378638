//! What becomes of the children of a supervisor that has exited.
//!
//! A supervisor that exits (it escalated, shut down automatically, or was stopped by its
//! parent) tells each child [`ChildFate::SupervisorExiting`]: whether they run again is up to
//! the supervisor's parent, which has not decided yet. [`ExitedSubtree`] carries the children's
//! watchers (and those of their own children, for nested supervisors) up to that parent, which
//! tells them the outcome when it decides the supervisor's own fate:
//!
//! | the supervisor's fate | its children from its spec | its children added at runtime |
//! |---|---|---|
//! | [`Restarting`](ChildFate::Restarting) | wait: the new incarnation starts them again | [`Removed`](ChildFate::Removed): a new incarnation starts only its spec's children |
//! | [`Stopped`](ChildFate::Stopped) / [`Removed`](ChildFate::Removed) | the same fate | the same fate |
//! | [`SupervisorExiting`](ChildFate::SupervisorExiting) (the parent exits too) | passed on to the parent's parent | passed on |
//!
//! Without this, a watcher (an agent's queue) under a supervisor that is not restarted would
//! only ever have heard "supervisor exiting", and would keep waiting.

use std::sync::{Arc, Mutex, PoisonError};

use crate::child_spec::FateWatcher;
use crate::{ChildFate, ChildId};

/// The watchers of an exited supervisor's subtree that wait for its parent's decision.
/// Shared by the parent's record of the supervisor child and the supervisor itself, which
/// fills it as soon as it starts stopping its children, so that it is complete even if the
/// supervisor is killed half way.
///
/// Trees nest thousands deep, so nothing here recurses: settling walks the nested subtrees
/// with a work list, and dropping one takes its nested lists apart in a loop.
#[derive(Clone, Default)]
pub(crate) struct ExitedSubtree(Arc<WaitingList>);

#[derive(Default)]
struct WaitingList(Mutex<Vec<Waiting>>);

impl Drop for WaitingList {
    fn drop(&mut self) {
        let mut entries = std::mem::take(self.0.get_mut().unwrap_or_else(PoisonError::into_inner));
        while let Some(entry) = entries.pop() {
            if let Waiter::Subtree(nested) = entry.who {
                // The last owner of a nested list: take its entries before it drops.
                if let Some(mut list) = Arc::into_inner(nested.0) {
                    entries.append(list.0.get_mut().unwrap_or_else(PoisonError::into_inner));
                }
            }
        }
    }
}

/// One child waiting for the decision.
struct Waiting {
    who: Waiter,
    /// Whether restarting the exited supervisor starts this child again.
    back_on_restart: bool,
}

enum Waiter {
    /// A watched child.
    Child { id: ChildId, watcher: FateWatcher },
    /// A nested supervisor child: its own subtree waits with it.
    Subtree(ExitedSubtree),
}

impl ExitedSubtree {
    fn waiting(&self) -> std::sync::MutexGuard<'_, Vec<Waiting>> {
        self.0 .0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a watched child of the exiting supervisor. `in_spec`: whether the supervisor's
    /// spec starts it again when the supervisor is restarted.
    pub(crate) fn add(&self, id: &ChildId, watcher: &FateWatcher, in_spec: bool) {
        self.waiting().push(Waiting {
            who: Waiter::Child {
                id: id.clone(),
                watcher: Arc::clone(watcher),
            },
            back_on_restart: in_spec,
        });
    }

    /// Records a nested supervisor child of the exiting supervisor, whose own subtree (filled
    /// as it stops) waits with it; `in_spec` as for [`add`](Self::add).
    pub(crate) fn link(&self, nested: &ExitedSubtree, in_spec: bool) {
        if Arc::ptr_eq(&self.0, &nested.0) {
            return;
        }
        self.waiting().push(Waiting {
            who: Waiter::Subtree(nested.clone()),
            back_on_restart: in_spec,
        });
    }

    /// The exited supervisor's parent decided `fate` for it: tells the watchers it settles,
    /// and keeps those still waiting (see the module docs). Nested subtrees are settled in
    /// turn, breadth first.
    pub(crate) fn settle(&self, fate: ChildFate) {
        let mut pending = std::collections::VecDeque::from([(self.clone(), fate)]);
        while let Some((subtree, fate)) = pending.pop_front() {
            // Outside the lock: a watcher is the user's code.
            for (waiter, fate) in subtree.take_settled(fate) {
                match waiter {
                    Waiter::Child { id, watcher } => watcher(&id, fate),
                    Waiter::Subtree(nested) => pending.push_back((nested, fate)),
                }
            }
        }
    }

    /// The waiters `fate` settles here, with what each is told; those still waiting stay.
    fn take_settled(&self, fate: ChildFate) -> Vec<(Waiter, ChildFate)> {
        let mut waiting = self.waiting();
        match fate {
            ChildFate::SupervisorExiting => Vec::new(),
            ChildFate::Stopped | ChildFate::Removed => {
                waiting.drain(..).map(|entry| (entry.who, fate)).collect()
            }
            ChildFate::Restarting => {
                // Those that come back keep waiting (their restart may still fail); a nested
                // supervisor that comes back loses its own runtime additions.
                let mut settled = Vec::new();
                for entry in std::mem::take(&mut *waiting) {
                    match (&entry.who, entry.back_on_restart) {
                        (_, false) => settled.push((entry.who, ChildFate::Removed)),
                        (Waiter::Subtree(nested), true) => {
                            settled.push((Waiter::Subtree(nested.clone()), ChildFate::Restarting));
                            waiting.push(entry);
                        }
                        (Waiter::Child { .. }, true) => waiting.push(entry),
                    }
                }
                settled
            }
        }
    }

    /// The exited supervisor runs again: the children it was waiting for are started by the
    /// new incarnation and hear from it from now on.
    pub(crate) fn restarted(&self) {
        self.waiting().clear();
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.waiting().len()
    }
}

impl std::fmt::Debug for ExitedSubtree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExitedSubtree")
            .field("waiting", &self.waiting().len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Heard = Arc<Mutex<Vec<(String, ChildFate)>>>;

    fn recorder() -> (FateWatcher, Heard) {
        let heard = Heard::default();
        let sink = Arc::clone(&heard);
        let watcher: FateWatcher = Arc::new(move |id: &ChildId, fate| {
            sink.lock().unwrap().push((id.to_string(), fate));
        });
        (watcher, heard)
    }

    fn id(name: &str) -> ChildId {
        ChildId::new(name)
    }

    #[test]
    fn a_supervisor_that_stays_stopped_stops_every_child_it_was_holding() {
        let (watcher, heard) = recorder();
        let subtree = ExitedSubtree::default();
        subtree.add(&id("spec"), &watcher, true);
        subtree.add(&id("added"), &watcher, false);
        subtree.settle(ChildFate::Stopped);
        assert_eq!(
            *heard.lock().unwrap(),
            [
                ("spec".to_string(), ChildFate::Stopped),
                ("added".to_string(), ChildFate::Stopped)
            ]
        );
        assert_eq!(subtree.len(), 0);
        subtree.settle(ChildFate::Removed);
        assert_eq!(heard.lock().unwrap().len(), 2, "each is told once");
    }

    #[test]
    fn a_restart_removes_the_children_added_at_runtime_and_keeps_the_spec_ones_waiting() {
        let (watcher, heard) = recorder();
        let subtree = ExitedSubtree::default();
        subtree.add(&id("spec"), &watcher, true);
        subtree.add(&id("added"), &watcher, false);
        subtree.settle(ChildFate::Restarting);
        assert_eq!(
            *heard.lock().unwrap(),
            [("added".to_string(), ChildFate::Removed)]
        );
        // The restart failed and the parent gave up: the spec child hears it then.
        subtree.settle(ChildFate::Stopped);
        assert_eq!(
            heard.lock().unwrap().last(),
            Some(&("spec".to_string(), ChildFate::Stopped))
        );
    }

    #[test]
    fn a_successful_restart_forgets_the_waiting_children() {
        let (watcher, heard) = recorder();
        let subtree = ExitedSubtree::default();
        subtree.add(&id("spec"), &watcher, true);
        subtree.settle(ChildFate::Restarting);
        subtree.restarted();
        subtree.settle(ChildFate::Stopped);
        assert!(heard.lock().unwrap().is_empty());
    }

    #[test]
    fn a_nested_subtree_waits_with_its_supervisor_and_is_settled_through_it() {
        let (watcher, heard) = recorder();
        let nested = ExitedSubtree::default();
        let parent = ExitedSubtree::default();
        // The parent starts stopping: it links the nested supervisor's subtree, which fills
        // it as it stops (or is killed half way).
        parent.link(&nested, true);
        nested.add(&id("spec-of-nested"), &watcher, true);
        nested.add(&id("added-to-nested"), &watcher, false);
        nested.settle(ChildFate::SupervisorExiting);
        assert!(heard.lock().unwrap().is_empty());

        parent.settle(ChildFate::Restarting);
        assert_eq!(
            *heard.lock().unwrap(),
            [("added-to-nested".to_string(), ChildFate::Removed)],
            "the nested supervisor comes back with its spec's children only"
        );
        parent.settle(ChildFate::Stopped);
        assert_eq!(
            heard.lock().unwrap().last(),
            Some(&("spec-of-nested".to_string(), ChildFate::Stopped))
        );
        assert_eq!((parent.len(), nested.len()), (0, 0));
    }

    #[test]
    fn a_nested_supervisor_added_at_runtime_does_not_come_back_with_a_restart() {
        let (watcher, heard) = recorder();
        let nested = ExitedSubtree::default();
        nested.add(&id("spec-of-nested"), &watcher, true);
        let parent = ExitedSubtree::default();
        parent.link(&nested, false);
        parent.settle(ChildFate::Restarting);
        assert_eq!(
            *heard.lock().unwrap(),
            [("spec-of-nested".to_string(), ChildFate::Removed)]
        );
        assert_eq!(parent.len(), 0);
    }

    /// Deeper than any tree may nest: settling and dropping do not recurse.
    fn chain(depth: usize, watcher: &FateWatcher) -> ExitedSubtree {
        let top = ExitedSubtree::default();
        let mut level = top.clone();
        for _ in 0..depth {
            let nested = ExitedSubtree::default();
            level.link(&nested, true);
            level = nested;
        }
        level.add(&id("deepest"), watcher, true);
        top
    }

    #[test]
    fn a_very_deep_subtree_is_settled_and_dropped_without_recursion() {
        let (watcher, heard) = recorder();
        chain(200_000, &watcher).settle(ChildFate::Stopped);
        assert_eq!(
            *heard.lock().unwrap(),
            [("deepest".to_string(), ChildFate::Stopped)]
        );
        drop(chain(200_000, &watcher));
        assert_eq!(heard.lock().unwrap().len(), 1, "dropping tells nobody");
    }

    #[test]
    fn linking_itself_changes_nothing() {
        let (watcher, _) = recorder();
        let subtree = ExitedSubtree::default();
        subtree.add(&id("a"), &watcher, true);
        subtree.link(&subtree.clone(), true);
        assert_eq!(subtree.len(), 1);
    }
}
