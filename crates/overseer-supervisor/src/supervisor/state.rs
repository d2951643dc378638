//! What one supervisor instance holds: its spec, its children in start order with their
//! state, its restart window, and what it is acting on.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use ractor::{ActorCell, ActorId};

use crate::census::CensusGuard;
use crate::child_spec::ChildKind;
use crate::subtree_watchers::SubtreeWatchers;
use crate::supervisor::mailbox::SupervisorMailbox;
use crate::supervisor::restarts::SharedRestarts;
use crate::supervisor::spawn::SupervisorArgs;
use crate::supervisor::tree_context::TreeContext;
use crate::worker::{FailureRecord, InPlaceRegistration};
use crate::{
    ChildFate, ChildId, ChildPath, ChildSpec, EventId, ExitCause, ExitReason, RestartWindow,
    Strategy, SupervisorSpec,
};

/// Whether a child runs.
pub(super) enum Status {
    Running(ActorCell),
    /// A restart attempt failed and a retry is queued.
    Restarting,
    NotRunning,
}

/// One child, as its supervisor keeps it.
pub(super) struct Child {
    pub(super) spec: ChildSpec,
    pub(super) path: ChildPath,
    pub(super) status: Status,
    pub(super) last_exit: Option<ExitReason>,
    /// Why the running incarnation is exiting, recorded by the child itself or by this
    /// supervisor when it stops it.
    pub(super) exit_cause: ExitCause,
    /// Set by a start function whose worker can be restarted in place.
    pub(super) in_place: InPlaceRegistration,
    /// The actor of an in-place worker that failed or was parked by a group restart: reused by
    /// the next start, stopped if there is none.
    pub(super) parked: Option<ActorCell>,
    /// How many times this supervisor has parked or rebuilt the child in place (shared with
    /// its `FailureReporter`): a failure report made before the latest of those is stale.
    pub(super) generation: Arc<AtomicU64>,
    /// Whether the supervisor's spec lists this child (a restarted supervisor starts only those).
    pub(super) in_spec: bool,
    /// For a nested supervisor: the watchers below it, which the nested supervisor keeps
    /// current and this supervisor settles when it decides the nested one's fate.
    pub(super) subtree: Option<SubtreeWatchers>,
    /// Why the running worker's actor failed, if it did (read when this supervisor stops it).
    pub(super) failure: FailureRecord,
}

impl Child {
    pub(super) fn new(spec: ChildSpec, parent: &ChildPath, in_spec: bool) -> Self {
        Self {
            path: parent.join(&spec.id),
            subtree: matches!(spec.kind, ChildKind::Supervisor(_)).then(SubtreeWatchers::default),
            spec,
            in_spec,
            failure: FailureRecord::default(),
            status: Status::NotRunning,
            last_exit: None,
            exit_cause: ExitCause::default(),
            in_place: InPlaceRegistration::default(),
            parked: None,
            generation: Arc::default(),
        }
    }

    /// Records this child in its supervisor's watchers.
    pub(super) fn record_in(&self, watchers: &SubtreeWatchers) {
        watchers.record(
            &self.path,
            self.spec.watcher.as_ref(),
            self.subtree.as_ref(),
            self.in_spec,
        );
    }

    pub(super) fn running_cell(&self) -> Option<&ActorCell> {
        match &self.status {
            Status::Running(cell) => Some(cell),
            _ => None,
        }
    }
}

/// One supervisor instance's state.
pub(crate) struct SupervisorState {
    pub(super) spec: Arc<SupervisorSpec>,
    pub(super) path: ChildPath,
    pub(super) tree: TreeContext,
    pub(super) is_root: bool,
    /// The restart window, and whether a child may carry out its own restart right now.
    pub(super) restarts: Arc<SharedRestarts>,
    /// In start order.
    pub(super) children: Vec<Child>,
    /// Set once this supervisor has decided to exit; events are ignored from then on.
    pub(super) exit_reason: Option<ExitReason>,
    /// The event this supervisor is acting on (an exit it handles, its own start): what the
    /// events it publishes meanwhile are caused by.
    pub(super) cause: Option<EventId>,
    /// Why this supervisor exits: set by itself (escalation, automatic shutdown), by its parent
    /// or by the tree's shutdown.
    pub(super) exit_cause: ExitCause,
    /// This supervisor's children's watchers (see `SupervisorArgs::watchers`).
    pub(super) watchers: SubtreeWatchers,
    /// Counts this supervisor among the tree's live actors while its state exists.
    _alive: CensusGuard,
}

impl SupervisorState {
    /// The state of an instance started with `args` whose `started` event is published, its
    /// in-place children reporting to `mailbox`: its spec's children, none running yet, each recorded in the watchers before any starts (so
    /// that a child's watcher hears its fate however the start ends).
    pub(super) fn new(args: SupervisorArgs, started: EventId, mailbox: SupervisorMailbox) -> Self {
        let alive = args.tree.census.enter();
        let mut state = SupervisorState {
            restarts: SharedRestarts::new(
                args.tree.clone(),
                mailbox,
                args.spec.strategy,
                RestartWindow::new(args.spec.intensity, args.spec.period),
            ),
            children: args
                .spec
                .children
                .iter()
                .map(|child| Child::new(child.clone(), &args.path, true))
                .collect(),
            spec: args.spec,
            path: args.path,
            tree: args.tree,
            is_root: args.is_root,
            exit_reason: None,
            cause: Some(started),
            exit_cause: args.exit_cause,
            watchers: args.watchers,
            _alive: alive,
        };
        for child in &mut state.children {
            if let (Some(subtree), Some(kept)) = (
                child.subtree.as_mut(),
                state.watchers.nested_of(&child.spec.id),
            ) {
                *subtree = kept;
            }
            child.record_in(&state.watchers);
        }
        state
    }

    /// Tells the child's watcher, if any, what was decided; for a nested supervisor, also
    /// settles the watchers below it with that fate (see `SubtreeWatchers`).
    pub(super) fn tell_fate(&self, index: usize, fate: ChildFate) {
        let child = &self.children[index];
        if let Some(watcher) = &child.spec.watcher {
            watcher(&child.path, fate);
        }
        if let Some(subtree) = &child.subtree {
            subtree.settle(fate);
        }
    }

    /// Deletes the child at `index` (its fate was told already).
    pub(super) fn forget(&mut self, index: usize) {
        let child = self.children.remove(index);
        self.watchers.remove(&child.spec.id);
    }

    pub(super) fn is_dynamic(&self) -> bool {
        self.spec.strategy == Strategy::Dynamic
    }

    pub(super) fn position(&self, id: &ChildId) -> Option<usize> {
        self.children.iter().position(|child| &child.spec.id == id)
    }

    pub(super) fn position_of_actor(&self, actor: ActorId) -> Option<usize> {
        self.children.iter().position(|child| {
            child
                .running_cell()
                .is_some_and(|cell| cell.get_id() == actor)
        })
    }
}
