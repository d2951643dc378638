//! The restart window a supervisor shares with its children, and the gate that lets a child
//! restart itself: the one place the restart decision ([`decide_restart`]) is taken, by the
//! supervisor and by a child alike, under one lock.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::fate::FateWatcher;
use crate::supervisor::mailbox::SupervisorMailbox;
use crate::supervisor::tree_context::{BusyGuard, TreeContext};
use crate::{
    count_restart, decide_restart, ChildFate, ChildPath, Decider, EventId, EventKind, ExitCause,
    ExitReason, Restart, RestartDecision, RestartScope, RestartWindow, Strategy,
};

/// What a supervisor shares with its in-place children so that one of them can carry out its
/// own one_for_one restart: whether the supervisor is between messages, and its restart window.
pub(crate) struct SharedRestarts {
    pub(crate) tree: TreeContext,
    /// Where a child that restarted itself reports that its rebuild failed.
    pub(crate) mailbox: SupervisorMailbox,
    strategy: Strategy,
    state: Mutex<RestartsState>,
}

struct RestartsState {
    /// A child may restart itself: the supervisor is between messages and not exiting.
    open: bool,
    /// The supervisor has decided to exit (or is exiting): never open again.
    exiting: bool,
    window: RestartWindow,
}

impl SharedRestarts {
    /// Closed until the supervisor has started its children.
    pub(crate) fn new(
        tree: TreeContext,
        mailbox: SupervisorMailbox,
        strategy: Strategy,
        window: RestartWindow,
    ) -> Arc<Self> {
        Arc::new(Self {
            tree,
            mailbox,
            strategy,
            state: Mutex::new(RestartsState {
                open: false,
                exiting: false,
                window,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, RestartsState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The supervisor's decision on the exit of a child of type `restart`.
    pub(crate) fn decide(&self, restart: Restart, reason: &ExitReason) -> RestartDecision {
        let now = self.tree.now_secs();
        let window = &mut self.lock().window;
        decide_restart(
            restart,
            reason,
            self.strategy,
            window,
            now,
            Decider::Supervisor,
        )
    }

    /// The supervisor's decision on retrying a restart that failed to start.
    pub(crate) fn decide_retry(&self) -> RestartDecision {
        let now = self.tree.now_secs();
        count_restart(
            self.strategy,
            &mut self.lock().window,
            now,
            Decider::Supervisor,
        )
    }

    /// The restarts that count now.
    pub(crate) fn in_window(&self) -> u32 {
        let now = self.tree.now_secs();
        self.lock().window.in_window(now)
    }

    /// Lets children restart themselves (the supervisor is between messages).
    pub(crate) fn open(&self) {
        let mut state = self.lock();
        state.open = !state.exiting;
    }

    /// No child restarts itself until the returned guard drops (the supervisor is handling a
    /// message).
    pub(crate) fn close(self: &Arc<Self>) -> ClosedRestarts {
        self.lock().open = false;
        ClosedRestarts(Arc::clone(self))
    }

    /// The supervisor exits: no child restarts itself any more.
    pub(crate) fn close_for_good(&self) {
        let mut state = self.lock();
        state.open = false;
        state.exiting = true;
    }
}

/// Keeps a supervisor's children from restarting themselves while it handles a message.
pub(crate) struct ClosedRestarts(Arc<SharedRestarts>);

impl Drop for ClosedRestarts {
    fn drop(&mut self) {
        self.0.open();
    }
}

/// What one child of a one_for_one supervisor needs to restart itself.
#[derive(Clone)]
pub(crate) struct ChildRestarts {
    pub(crate) shared: Arc<SharedRestarts>,
    pub(crate) path: ChildPath,
    pub(crate) restart: Restart,
    pub(crate) exit_cause: ExitCause,
    pub(crate) watcher: Option<FateWatcher>,
}

impl std::fmt::Debug for ChildRestarts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChildRestarts")
            .field("path", &self.path)
            .field("restart", &self.restart)
            .finish()
    }
}

/// A restart a child took itself: its `stopped` event, and the tree counting it as an
/// operation in progress until it is finished.
pub(crate) struct OwnRestart {
    pub(crate) stopped: EventId,
    pub(crate) busy: BusyGuard,
}

impl ChildRestarts {
    /// The supervisor's decision, taken by the child that failed with `reason`
    /// ([`Decider::Child`]) while the supervisor is between messages: when it is this child's
    /// restart alone, the restart has been counted, its `stopped` event published and its
    /// watcher told; `None` leaves the decision to the supervisor, with nothing counted.
    pub(crate) fn take_own_restart(&self, reason: &ExitReason) -> Option<OwnRestart> {
        let tree = &self.shared.tree;
        let busy = tree.busy();
        let stopped = {
            let mut state = self.shared.lock();
            if !state.open {
                return None;
            }
            let now = tree.now_secs();
            let window = &mut state.window;
            let strategy = self.shared.strategy;
            let decision =
                decide_restart(self.restart, reason, strategy, window, now, Decider::Child);
            if decision != RestartDecision::Restart(RestartScope::Child) {
                return None;
            }
            let stopped = EventKind::Stopped {
                reason: reason.clone(),
            };
            // Under the lock: the supervisor publishes nothing of its own in between.
            tree.emit(&self.path, stopped, self.exit_cause.take())
        };
        if let Some(watcher) = &self.watcher {
            watcher(&self.path, ChildFate::Restarting);
        }
        Some(OwnRestart { stopped, busy })
    }
}
