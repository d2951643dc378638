//! Running a system's tree: starting it (the event sink, the kill switch's hook, the budget's
//! deadline timer) and stopping it (a shutdown, a trip, the last handle dropped).

use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use overseer_budget::TripReport;
use overseer_supervisor::{ChildFate, EventBus, EventKind, SupervisionTree, SupervisorSpec};
use tokio::time::Instant;

use super::registry::Registry;
use crate::error::SystemError;
use crate::event::SystemEvent;

impl Registry {
    /// Claims the system's one start: `false` if it was started, or is starting.
    pub(super) fn claim_start(&self) -> bool {
        !self.start_claimed.swap(true, Ordering::AcqRel)
    }

    /// Starts the tree from `spec` and records it (the start claimed); a failed start gives
    /// the claim back.
    pub(super) async fn start_tree(
        self: Arc<Self>,
        spec: SupervisorSpec,
    ) -> Result<(), SystemError> {
        let started = self.start_and_record(spec).await;
        if started.is_err() {
            self.start_claimed.store(false, Ordering::Release);
        }
        started
    }

    /// Starts the tree from `spec` and records it, then arms the kill switch's hook and the
    /// budget's deadline timer. A system shut down while its tree started stops the tree.
    async fn start_and_record(self: &Arc<Self>, spec: SupervisorSpec) -> Result<(), SystemError> {
        let shared = Arc::clone(&self.shared);
        let registry = Arc::downgrade(self);
        let tree = SupervisionTree::builder(spec)
            .events(EventBus::new(16))
            .event_ids(self.shared.ids.clone())
            .epoch(self.shared.epoch)
            .event_sink(move |event| {
                if shared.has_subscribers() {
                    shared.publish(SystemEvent::Lifecycle(event.clone()));
                }
                if matches!(event.kind, EventKind::Stopped { .. }) && event.path.is_root() {
                    match registry.upgrade() {
                        Some(registry) => registry.tree_stopped(),
                        // Every System handle was dropped: nobody else will end the stream.
                        None => shared.close_events(),
                    }
                }
            })
            .start()
            .await?;
        self.tree
            .set(tree)
            .map_err(|_| SystemError::AlreadyStarted)?;
        if self.shared.is_shut_down() {
            if let Some(tree) = self.tree.get() {
                tree.begin_shutdown();
            }
        }
        self.for_each_slot(|slot| slot.tree_started());
        self.arm_budget();
        Ok(())
    }

    /// Hooks the kill switch's trip, and starts the timer of the budget's deadline, if any.
    fn arm_budget(self: &Arc<Self>) {
        let Some(budget) = &self.shared.budget else {
            return;
        };
        let runtime = tokio::runtime::Handle::current();
        let registry = Arc::downgrade(self);
        budget.kill_switch().on_trip(move |report| {
            if let Some(registry) = registry.upgrade() {
                registry.on_trip(report, &runtime);
            }
        });
        if let Some(deadline) = budget.deadline() {
            let budget = budget.clone();
            let timer = tokio::spawn(async move {
                tokio::time::sleep_until(deadline).await;
                budget.check_deadline(Instant::now());
            });
            *self
                .deadline_timer
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(timer);
        }
    }

    /// The kill switch tripped: publish it, cancel what the policy says, stop the tree in
    /// order so nothing restarts.
    fn on_trip(self: &Arc<Self>, report: &TripReport, runtime: &tokio::runtime::Handle) {
        tracing::error!(reason = %report.reason, after = ?report.after, "kill switch tripped");
        let trip = self.shared.record_trip(report);
        let registry = Arc::clone(self);
        runtime.spawn(async move {
            if let Some(tree) = registry.tree.get() {
                let timeout = registry.shared.trip_shutdown_timeout;
                if let Err(error) = tree.shutdown_caused_by(timeout, Some(trip)).await {
                    tracing::error!(%error, "the tree did not stop in order after the trip");
                }
            }
            registry.for_each_slot(|slot| slot.shut_down());
        });
    }

    /// The root supervisor has exited: no agent of the tree will run again.
    fn tree_stopped(&self) {
        self.stop_deadline_timer();
        self.for_each_slot(|slot| slot.on_fate(ChildFate::Stopped));
    }

    /// The budget's wall-clock timer is not needed once the tree has stopped.
    fn stop_deadline_timer(&self) {
        if let Some(timer) = self
            .deadline_timer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            timer.abort();
        }
    }

    /// Shuts the system down: no ask is admitted from now on; the tree stops in order within
    /// `deadline` (the rest is killed after it); what is still queued fails; the event stream
    /// ends.
    pub(super) async fn shut_down(&self, deadline: Duration) -> Result<(), SystemError> {
        self.shared.mark_shut_down();
        self.stop_deadline_timer();
        let stopped = match self.tree.get() {
            Some(tree) => tree.shutdown(deadline).await.map_err(SystemError::from),
            None => Ok(()),
        };
        self.for_each_slot(|slot| slot.shut_down());
        self.shared.close_events();
        stopped
    }
}

/// The last `System` handle is gone: shut the system down without waiting (asks fail with
/// `ShutDown`, the tree stops in order in the background, the event stream ends once the root
/// has stopped). After a shutdown whose future was dropped, only the stream is left to end.
impl Drop for Registry {
    fn drop(&mut self) {
        if !self.shared.mark_shut_down() {
            self.stop_deadline_timer();
            self.for_each_slot(|slot| slot.shut_down());
        }
        match self.tree.get() {
            Some(tree) if tree.is_running() => {
                tracing::debug!("the last System handle was dropped: shutting the tree down");
                // The root's `stopped` event ends the event stream (see `start_tree`).
                tree.begin_shutdown();
            }
            _ => self.shared.close_events(),
        }
    }
}
