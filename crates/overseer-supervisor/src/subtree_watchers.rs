//! Who hears what becomes of a supervisor's children once the supervisor itself has exited.
//!
//! A supervisor that exits normally tells each child [`ChildFate::SupervisorExiting`]: whether
//! they run again is up to the supervisor's parent, which has not decided yet. A supervisor
//! that is killed tells them nothing. Either way the parent decides later, and the children's
//! watchers (an agent's queue among them) must hear the outcome. So every supervisor keeps a
//! [`SubtreeWatchers`] up to date as its children come and go (the watched ones, and the
//! watchers of each nested supervisor's own subtree), shared with its parent's record of it.
//! When the parent decides the supervisor's fate, it settles the watchers with it:
//!
//! | the supervisor's fate | its children from its spec | its children added at runtime |
//! |---|---|---|
//! | [`Restarting`](ChildFate::Restarting) | wait: the new incarnation starts them again | [`Removed`](ChildFate::Removed): a new incarnation starts only its spec's children |
//! | [`Stopped`](ChildFate::Stopped) / [`Removed`](ChildFate::Removed) | the same fate | the same fate |
//! | [`SupervisorExiting`](ChildFate::SupervisorExiting) (the parent exits too) | wait for the parent's own parent | wait |
//!
//! Once the root has exited (or been killed by a tree shutdown past its deadline) its watchers
//! are settled with [`Stopped`](ChildFate::Stopped): no one will start anything again.
//!
//! Trees nest thousands deep, so nothing here recurses: settling walks the nested subtrees
//! with a work list, and dropping one takes its nested lists apart in a loop.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use crate::fate::FateWatcher;
use crate::{ChildFate, ChildId, ChildPath};

/// The watchers below one supervisor, by child id. Shared by the supervisor, which keeps it
/// current, and its parent's record of it, which settles it.
#[derive(Clone, Default)]
pub(crate) struct SubtreeWatchers(Arc<WatcherList>);

#[derive(Default)]
struct WatcherList(Mutex<BTreeMap<ChildId, Entry>>);

/// One child: its path, its watcher, and for a nested supervisor the watchers below it.
struct Entry {
    path: ChildPath,
    watcher: Option<FateWatcher>,
    nested: Option<SubtreeWatchers>,
    /// Whether restarting the supervisor starts this child again (it is in the spec).
    back_on_restart: bool,
}

impl Drop for WatcherList {
    fn drop(&mut self) {
        let mut entries: Vec<Entry> =
            std::mem::take(self.0.get_mut().unwrap_or_else(PoisonError::into_inner))
                .into_values()
                .collect();
        while let Some(entry) = entries.pop() {
            // The last owner of a nested list: take its entries before it drops.
            if let Some(mut list) = entry.nested.and_then(|nested| Arc::into_inner(nested.0)) {
                let nested =
                    std::mem::take(list.0.get_mut().unwrap_or_else(PoisonError::into_inner));
                entries.extend(nested.into_values());
            }
        }
    }
}

/// What settling tells one child: its watcher hears `fate`, and the watchers below it are
/// settled with `fate` in turn.
struct Told {
    path: ChildPath,
    watcher: Option<FateWatcher>,
    nested: Option<SubtreeWatchers>,
    fate: ChildFate,
}

impl SubtreeWatchers {
    fn entries(&self) -> std::sync::MutexGuard<'_, BTreeMap<ChildId, Entry>> {
        self.0 .0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The child at `path` joined the supervisor, with its watcher if it has one and, for a
    /// nested supervisor, the watchers below it. `in_spec`: whether the supervisor's spec
    /// starts it again when the supervisor is restarted.
    pub(crate) fn record(
        &self,
        path: &ChildPath,
        watcher: Option<&FateWatcher>,
        nested: Option<&SubtreeWatchers>,
        in_spec: bool,
    ) {
        let nested = nested.filter(|nested| !Arc::ptr_eq(&self.0, &nested.0));
        if watcher.is_none() && nested.is_none() {
            return;
        }
        self.entries().insert(
            ChildId::from(path.name()),
            Entry {
                path: path.clone(),
                watcher: watcher.cloned(),
                nested: nested.cloned(),
                back_on_restart: in_spec,
            },
        );
    }

    /// The child `id` left the supervisor for good (its fate was told already).
    pub(crate) fn remove(&self, id: &ChildId) {
        self.entries().remove(id);
    }

    /// The supervisor's parent decided `fate` for it: tells the watchers it settles, and keeps
    /// those still waiting (see the module docs). Nested subtrees are settled in turn, breadth
    /// first.
    pub(crate) fn settle(&self, fate: ChildFate) {
        let mut pending = VecDeque::from([(self.clone(), fate)]);
        while let Some((subtree, fate)) = pending.pop_front() {
            // Outside the lock: a watcher is the user's code.
            for told in subtree.take_settled(fate) {
                if let Some(watcher) = told.watcher {
                    watcher(&told.path, told.fate);
                }
                if let Some(nested) = told.nested {
                    pending.push_back((nested, told.fate));
                }
            }
        }
    }

    /// The children `fate` settles here, with what each is told; those still waiting stay.
    fn take_settled(&self, fate: ChildFate) -> Vec<Told> {
        let mut entries = self.entries();
        match fate {
            ChildFate::SupervisorExiting => Vec::new(),
            ChildFate::Stopped | ChildFate::Removed => std::mem::take(&mut *entries)
                .into_values()
                .map(|entry| Told {
                    path: entry.path,
                    watcher: entry.watcher,
                    nested: entry.nested,
                    fate,
                })
                .collect(),
            ChildFate::Restarting => {
                // Those that come back keep waiting (their restart may still fail); a nested
                // supervisor that comes back loses its own runtime additions.
                let mut settled = Vec::new();
                entries.retain(|_, entry| {
                    if !entry.back_on_restart {
                        settled.push(Told {
                            path: entry.path.clone(),
                            watcher: entry.watcher.take(),
                            nested: entry.nested.take(),
                            fate: ChildFate::Removed,
                        });
                        return false;
                    }
                    if let Some(nested) = &entry.nested {
                        settled.push(Told {
                            path: entry.path.clone(),
                            watcher: None,
                            nested: Some(nested.clone()),
                            fate: ChildFate::Restarting,
                        });
                    }
                    true
                });
                settled
            }
        }
    }

    /// The watchers below the nested supervisor child `id`, if it was recorded: a new
    /// incarnation of this supervisor keeps them for that child, so that grandchildren still
    /// waiting are not lost if the new incarnation fails before the child starts again.
    pub(crate) fn nested_of(&self, id: &ChildId) -> Option<SubtreeWatchers> {
        self.entries().get(id)?.nested.clone()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries().len()
    }
}

impl std::fmt::Debug for SubtreeWatchers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.entries().keys()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Heard = Arc<Mutex<Vec<(String, ChildFate)>>>;

    fn recorder() -> (FateWatcher, Heard) {
        let heard = Heard::default();
        let sink = Arc::clone(&heard);
        let watcher: FateWatcher = Arc::new(move |path: &ChildPath, fate| {
            sink.lock().unwrap().push((path.name().to_string(), fate));
        });
        (watcher, heard)
    }

    fn id(name: &str) -> ChildId {
        ChildId::new(name)
    }

    /// The path of a child `name` (its supervisor's name does not matter here).
    fn path(name: &str) -> ChildPath {
        ChildPath::root(&id("sup")).join(&id(name))
    }

    #[test]
    fn a_supervisor_that_stays_stopped_stops_every_child_it_held() {
        let (watcher, heard) = recorder();
        let subtree = SubtreeWatchers::default();
        subtree.record(&path("added"), Some(&watcher), None, false);
        subtree.record(&path("spec"), Some(&watcher), None, true);
        subtree.settle(ChildFate::Stopped);
        assert_eq!(
            *heard.lock().unwrap(),
            [
                ("added".to_string(), ChildFate::Stopped),
                ("spec".to_string(), ChildFate::Stopped)
            ]
        );
        assert_eq!(subtree.len(), 0);
        subtree.settle(ChildFate::Removed);
        assert_eq!(heard.lock().unwrap().len(), 2, "each is told once");
    }

    #[test]
    fn a_removed_child_is_not_told_again() {
        let (watcher, heard) = recorder();
        let subtree = SubtreeWatchers::default();
        subtree.record(&path("gone"), Some(&watcher), None, false);
        subtree.record(&path("kept"), Some(&watcher), None, true);
        subtree.remove(&id("gone"));
        subtree.settle(ChildFate::Stopped);
        assert_eq!(
            *heard.lock().unwrap(),
            [("kept".to_string(), ChildFate::Stopped)]
        );
    }

    #[test]
    fn a_restart_removes_the_children_added_at_runtime_and_keeps_the_spec_ones_waiting() {
        let (watcher, heard) = recorder();
        let subtree = SubtreeWatchers::default();
        subtree.record(&path("added"), Some(&watcher), None, false);
        subtree.record(&path("spec"), Some(&watcher), None, true);
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
    fn a_new_incarnation_records_its_children_over_the_old_ones() {
        let (watcher, heard) = recorder();
        let subtree = SubtreeWatchers::default();
        let nested = SubtreeWatchers::default();
        subtree.record(&path("spec"), Some(&watcher), None, true);
        subtree.record(&path("nested"), None, Some(&nested), true);
        subtree.settle(ChildFate::Restarting);
        // The new incarnation records the same children, reusing the nested record.
        let kept = subtree.nested_of(&id("nested")).expect("kept");
        subtree.record(&path("spec"), Some(&watcher), None, true);
        subtree.record(&path("nested"), None, Some(&kept), true);
        assert_eq!(subtree.len(), 2);
        subtree.settle(ChildFate::Stopped);
        assert_eq!(
            *heard.lock().unwrap(),
            [("spec".to_string(), ChildFate::Stopped)],
            "told once"
        );
    }

    #[test]
    fn a_nested_subtree_is_settled_through_its_supervisor() {
        let (watcher, heard) = recorder();
        let nested = SubtreeWatchers::default();
        nested.record(&path("added-to-nested"), Some(&watcher), None, false);
        nested.record(&path("spec-of-nested"), Some(&watcher), None, true);
        let parent = SubtreeWatchers::default();
        parent.record(&path("nested"), None, Some(&nested), true);
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
        let nested = SubtreeWatchers::default();
        nested.record(&path("spec-of-nested"), Some(&watcher), None, true);
        let parent = SubtreeWatchers::default();
        parent.record(&path("nested"), None, Some(&nested), false);
        parent.settle(ChildFate::Restarting);
        assert_eq!(
            *heard.lock().unwrap(),
            [("spec-of-nested".to_string(), ChildFate::Removed)]
        );
        assert_eq!(parent.len(), 0);
    }

    /// Deeper than any tree may nest: settling and dropping do not recurse.
    fn chain(depth: usize, watcher: &FateWatcher) -> SubtreeWatchers {
        let top = SubtreeWatchers::default();
        let mut level = top.clone();
        for _ in 0..depth {
            let nested = SubtreeWatchers::default();
            level.record(&path("nested"), None, Some(&nested), true);
            level = nested;
        }
        level.record(&path("deepest"), Some(watcher), None, true);
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
        let subtree = SubtreeWatchers::default();
        subtree.record(&path("me"), None, Some(&subtree.clone()), true);
        assert_eq!(subtree.len(), 0);
    }
}
