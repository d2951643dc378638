//! From a child's exit to its restart, as OTP's `supervisor.erl` walks it:
//!
//! | OTP (`supervisor.erl`) | here |
//! |---|---|
//! | `handle_info({'EXIT', Pid, Reason}, State)` | [`on_child_exit`](SupervisorState::on_child_exit) (from ractor's supervision event); an in-place child's report: [`on_child_failed_in_place`](SupervisorState::on_child_failed_in_place) |
//! | `restart_child(Pid, Reason, State)` | [`child_exited`](SupervisorState::child_exited): marked stopped, its `stopped` event published |
//! | `do_restart(RestartType, Reason, Child, State)` | [`do_restart`](SupervisorState::do_restart): the decision, [`decide_restart`](crate::decide_restart), with `add_restart` counted in it |
//! | `restart(Child, State)` (`restart/2`) | [`carry_out`](SupervisorState::carry_out): restart, give up (`{terminate, _}`: [`escalate`](SupervisorState::escalate)), or leave stopped |
//! | `restart(Strategy, Child, State)` (`restart/3`) | [`restart`](SupervisorState::restart), by the decision's scope |
//! | `restart_multiple_children` | [`restart_group`](SupervisorState::restart_group) |
//! | `try_again_restart` | [`retry_later`](SupervisorState::retry_later), then [`try_again`](SupervisorState::try_again) ([`count_restart`](crate::count_restart)) |
//! | `do_auto_shutdown` | [`after_exit_without_restart`](SupervisorState::after_exit_without_restart) |
//!
//! Starting and stopping the children is in `start.rs` and `stop.rs`.

use std::sync::atomic::Ordering;

use ractor::{ActorCell, ActorId};

use crate::supervisor::message::SupervisorMsg;
use crate::supervisor::state::{Status, SupervisorState};
use crate::supervisor::stop::stop_quietly;
use crate::{ChildFate, ChildId, EventKind, ExitReason, Restart, RestartDecision, RestartScope};

impl SupervisorState {
    /// A child's actor exited (by itself, or killed by someone else): OTP's
    /// `handle_info({'EXIT', ..})`. Exits of actors that are no longer children (this
    /// supervisor stopped them itself) are ignored, as OTP's `unlink_flush` drops them.
    pub(super) async fn on_child_exit(
        &mut self,
        myself: &ActorCell,
        actor: ActorId,
        reason: ExitReason,
    ) {
        if self.exit_reason.is_some() {
            return;
        }
        let Some(index) = self.position_of_actor(actor) else {
            // Not a current child: one this supervisor stopped itself.
            return;
        };
        self.child_exited(myself, index, reason).await;
    }

    /// An in-place worker failed and parked: the same walk as for an exit, with its actor kept
    /// for the restart.
    pub(super) async fn on_child_failed_in_place(
        &mut self,
        myself: &ActorCell,
        actor: ActorCell,
        reason: ExitReason,
        generation: u64,
    ) {
        let Some(index) = self.acting_on(&actor) else {
            return;
        };
        if self.children[index].generation.load(Ordering::Acquire) != generation {
            // Reported before a group restart parked and rebuilt it: already handled, as OTP
            // flushes the exit of a child it has terminated itself.
            return;
        }
        self.children[index].parked = Some(actor);
        self.child_exited(myself, index, reason).await;
    }

    /// OTP's `restart_child/3`: the child at `index` has exited (or parked).
    async fn child_exited(&mut self, myself: &ActorCell, index: usize, reason: ExitReason) {
        let child = &mut self.children[index];
        child.status = Status::NotRunning;
        child.last_exit = Some(reason.clone());
        let stopped = self.tree.emit(
            &child.path,
            EventKind::Stopped {
                reason: reason.clone(),
            },
            child.exit_cause.take(),
        );
        self.cause = Some(stopped);
        self.do_restart(myself, index, &reason).await;
        self.cause = None;
    }

    /// OTP's `do_restart/3`: the decision on the exit of the child at `index`, carried out.
    async fn do_restart(&mut self, myself: &ActorCell, index: usize, reason: &ExitReason) {
        let decision = self
            .restarts
            .decide(self.children[index].spec.restart, reason);
        if matches!(
            decision,
            RestartDecision::Restart(_) | RestartDecision::Escalate
        ) {
            // Its restart type says restart, even when the intensity then refuses it.
            self.tell_fate(index, ChildFate::Restarting);
        }
        self.carry_out(myself, index, decision).await;
    }

    /// OTP's `restart/2`, its `add_restart` counted by the decision: restart by strategy or give
    /// up; or leave the child stopped, as the decision says.
    async fn carry_out(&mut self, myself: &ActorCell, index: usize, decision: RestartDecision) {
        let significant = self.children[index].spec.significant;
        match decision {
            RestartDecision::Restart(scope) => self.restart(myself, index, scope).await,
            RestartDecision::Escalate => self.escalate(myself, index),
            RestartDecision::KeepSpec => {
                self.stop_parked(index).await;
                self.tell_fate(index, ChildFate::Stopped);
                self.after_exit_without_restart(myself, significant);
            }
            RestartDecision::DeleteSpec => {
                self.stop_parked(index).await;
                self.tell_fate(index, ChildFate::Removed);
                self.forget(index);
                self.after_exit_without_restart(myself, significant);
            }
        }
    }

    /// OTP's `restart/3`: the counted restart of the child at `index`, by strategy.
    async fn restart(&mut self, myself: &ActorCell, index: usize, scope: RestartScope) {
        match scope {
            RestartScope::Child => self.restart_one(myself, index).await,
            RestartScope::ChildAsNewest => {
                // A restarted dynamic child is the newest one, as a new pid is in OTP.
                let child = self.children.remove(index);
                self.children.push(child);
                let last = self.children.len() - 1;
                self.restart_one(myself, last).await;
            }
            RestartScope::All | RestartScope::Rest => {
                let affected = self.spec.strategy.affected(index, self.children.len());
                self.restart_group(myself, affected.start).await;
            }
        }
    }

    async fn restart_one(&mut self, myself: &ActorCell, index: usize) {
        if self.start_at(myself, index).await.is_err() {
            self.retry_later(myself, index);
        }
    }

    /// OTP's `restart_multiple_children/3`: stop the affected children in reverse start order,
    /// delete the temporary ones, then start the rest in start order up to the first failure.
    async fn restart_group(&mut self, myself: &ActorCell, from: usize) {
        for index in (from..self.children.len()).rev() {
            self.stop_for_restart(index).await;
            self.children[index].status = Status::NotRunning;
        }
        let mut index = from;
        while index < self.children.len() {
            if self.children[index].spec.restart == Restart::Temporary {
                self.stop_parked(index).await;
                self.tell_fate(index, ChildFate::Removed);
                self.forget(index);
            } else {
                self.tell_fate(index, ChildFate::Restarting);
                index += 1;
            }
        }

        for index in from..self.children.len() {
            if self.start_at(myself, index).await.is_err() {
                self.retry_later(myself, index);
                return;
            }
        }
    }

    /// The restart of the child at `index` would exceed the intensity: OTP's
    /// `reached_max_restart_intensity`, the supervisor exits with `shutdown`.
    fn escalate(&mut self, myself: &ActorCell, index: usize) {
        tracing::error!(
            supervisor = %self.path,
            child = %self.children[index].spec.id,
            intensity = self.spec.intensity,
            period_secs = self.spec.period.as_secs(),
            "reached maximum restart intensity"
        );
        let escalated = self.tree.emit(
            &self.path,
            EventKind::Escalated {
                intensity: self.spec.intensity,
                period_secs: self.spec.period.as_secs(),
            },
            self.cause,
        );
        self.exit_cause.set(Some(escalated));
        self.children[index].status = Status::NotRunning;
        self.exit(myself, ExitReason::Shutdown);
    }

    /// OTP's `do_auto_shutdown/2`.
    fn after_exit_without_restart(&mut self, myself: &ActorCell, significant: bool) {
        let significant_left = self
            .children
            .iter()
            .any(|child| child.spec.significant && !matches!(child.status, Status::NotRunning));
        if self
            .spec
            .auto_shutdown
            .shuts_down(significant, significant_left)
        {
            let auto_shutdown = self
                .tree
                .emit(&self.path, EventKind::AutoShutdown, self.cause);
            self.exit_cause.set(Some(auto_shutdown));
            self.exit(myself, ExitReason::Shutdown);
        }
    }

    /// Decides to exit: children are stopped in `post_stop`, in reverse start order.
    fn exit(&mut self, myself: &ActorCell, reason: ExitReason) {
        self.restarts.close_for_good();
        myself.stop(reason.to_stop_reason());
        self.exit_reason = Some(reason);
    }

    /// Marks the child at `index` as restarting and queues a retry (OTP's `try_again_restart`).
    fn retry_later(&mut self, myself: &ActorCell, index: usize) {
        let child = &mut self.children[index];
        child.status = Status::Restarting;
        let retry = SupervisorMsg::TryAgain(child.spec.id.clone());
        if myself.send_message(retry).is_err() {
            tracing::warn!(supervisor = %self.path, child = %child.spec.id, "could not queue a restart retry; the supervisor is stopping");
        }
    }

    /// A queued retry: the restart is counted again and carried out (OTP's `restart/2` from
    /// `try_again_restart`), unless the child stopped waiting for it meanwhile.
    pub(super) async fn try_again(&mut self, myself: &ActorCell, id: &ChildId) {
        if self.exit_reason.is_some() {
            return;
        }
        if let Some(index) = self.position(id) {
            if matches!(self.children[index].status, Status::Restarting) {
                let decision = self.restarts.decide_retry();
                self.carry_out(myself, index, decision).await;
            }
        }
    }

    /// An in-place worker restarted itself (see
    /// [`FailureReporter::failed`](crate::FailureReporter::failed)) and its rebuild failed,
    /// already reported as `start_failed`: as after any failed restart, its actor is stopped and
    /// the restart is tried again later with its start function.
    pub(super) async fn on_restart_in_place_failed(
        &mut self,
        myself: &ActorCell,
        actor: ActorCell,
        previous_exit: ExitReason,
    ) {
        let Some(index) = self.acting_on(&actor) else {
            return;
        };
        let child = &mut self.children[index];
        child.status = Status::NotRunning;
        child.last_exit = Some(previous_exit);
        stop_quietly(&actor).await;
        self.retry_later(myself, index);
    }

    /// The index of the in-place worker `actor`, if this supervisor still acts on what it
    /// reports: not while exiting (it is stopped with the others, as `shutdown`), and not if it
    /// is no longer a child (nothing will restart it, so it is stopped).
    fn acting_on(&self, actor: &ActorCell) -> Option<usize> {
        if self.exit_reason.is_some() {
            return None;
        }
        let index = self.position_of_actor(actor.get_id());
        if index.is_none() {
            actor.stop(None);
        }
        index
    }
}
