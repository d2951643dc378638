//! The supervisor actor: OTP's `supervisor` behaviour as a ractor actor.
//!
//! The decisions are pure functions elsewhere ([`decide_restart`](crate::decide_restart) and
//! the steps it composes, [`AutoShutdown::shuts_down`](crate::AutoShutdown::shuts_down)); this
//! module only carries them out: it starts and stops actors, reacts to their exits, and answers
//! the child API. This file holds the actor's callbacks, which hand each message or event to
//! the file that deals with it.
//!
//! # From a crash to its restart
//!
//! A child's failure reaches the one restart decision by one of two routes, and from there
//! the walk is the same. Paths are relative to the crate's `src/`; OTP's names are marked "OTP:".
//!
//! **An actor that exits** (any worker spawned with
//! [`StartContext::spawn`](crate::StartContext::spawn); an agent whose actor is lost):
//!
//! 1. a handler panics or returns an error; its [`Supervised`](crate::Supervised) wrapper
//!    (`guarded` in `worker.rs`) turns either into a `ChildExit` with an exact
//!    [`ExitReason`], and the actor stops;
//! 2. ractor tells the supervisor: `SupervisorActor::handle_supervisor_evt` (this file) reads
//!    the reason (`ExitReason::from_event`, `exit_reason.rs`) (OTP: `handle_info({'EXIT', ..})`);
//! 3. `on_child_exit` → `child_exited`, which publishes `stopped` (OTP: `restart_child/3`) →
//!    `do_restart` (OTP: `do_restart/3`) (`supervisor/restart_flow.rs`);
//! 4. the decision: `SharedRestarts::decide` (`supervisor/restarts.rs`) →
//!    [`decide_restart`](crate::decide_restart) (`decision.rs`), counting the restart in the
//!    window (OTP: `add_restart/3`);
//! 5. `carry_out` (OTP: `restart/2`) → `restart`, by the decision's scope (OTP: `restart/3`) →
//!    `restart_one` or `restart_group` (OTP: `restart_multiple_children`)
//!    (`supervisor/restart_flow.rs`) → `start_at` (`supervisor/start.rs`), after
//!    `stop_for_restart` (`supervisor/stop.rs`) for a group; or `escalate`, or the child is
//!    left stopped.
//!
//! **A worker restarted in place** (an agent's handler fails; see `supervisor/in_place.rs`):
//!
//! 1. the agent's actor catches the failure itself (`AgentActor::run` in
//!    `overseer-agent/src/actor.rs`: the handler under `catch_unwind` and its deadline, then
//!    `judge`) and drops the agent value (`AgentActor::failed`);
//! 2. it calls [`FailureReporter::failed`](crate::FailureReporter::failed)
//!    (`supervisor/in_place.rs`), which takes the decision itself while the supervisor is
//!    between messages: `ChildRestarts::take_own_restart` (`supervisor/restarts.rs`) → the same
//!    [`decide_restart`](crate::decide_restart), as [`Decider::Child`](crate::Decider::Child);
//! 3. if the decision is this child's restart alone, the worker is told
//!    [`AfterFailure::RebuildNow`](crate::AfterFailure::RebuildNow) and rebuilds in its own
//!    task (`build` in the agent's `actor.rs`), then
//!    [`InPlaceRestart::finish`](crate::InPlaceRestart::finish) publishes `started`;
//! 4. otherwise the failure is reported ([`AfterFailure::Reported`](crate::AfterFailure::Reported)):
//!    a message in the supervisor's mailbox (`supervisor/message.rs`),
//!    `SupervisorActor::handle` (this file) → `on_child_failed_in_place`
//!    (`supervisor/restart_flow.rs`) → step 3 of the first route. A restart then rebuilds the
//!    parked actor (`rebuild_at` in `supervisor/start.rs`, calling
//!    [`InPlaceChild::rebuild`](crate::InPlaceChild::rebuild)) instead of calling the start
//!    function.
//!
//! # Files, bottom to top
//!
//! Each names only files below it (the crate's own layering is in `docs/architecture.md`).
//!
//! * `supervisor/tree_context.rs`: what the supervisors of one tree share (clock origin,
//!   events, ids, the count of operations in progress);
//! * `supervisor/mailbox.rs`: where an in-place worker's reports reach its supervisor;
//! * `supervisor/restarts.rs`: the restart window a supervisor shares with its children, where
//!   the decision is taken;
//! * `supervisor/in_place.rs`: the protocol with workers restarted in place;
//! * (then, at the crate's level: `worker.rs`, `child_spec.rs` and `supervisor_spec.rs`,
//!   `child_info.rs`)
//! * `supervisor/message.rs`: what the supervisor's mailbox carries;
//! * `supervisor/spawn.rs`: the actor type, its arguments, and spawning an instance;
//! * `supervisor/state.rs`: one instance's state, its children in start order;
//! * `supervisor/stop.rs`, then `supervisor/start.rs`: stopping and starting children (parking
//!   and rebuilding in-place workers included);
//! * `supervisor/restart_flow.rs` and `supervisor/child_api.rs`: the walk above, and OTP's child
//!   API;
//! * this file: the actor's callbacks.
//!
//! # ractor behaviours designed around
//!
//! * ractor reports panics and returned errors alike (`ActorFailed`): workers are spawned inside
//!   [`Supervised`](crate::Supervised), which tags each failure with an exact
//!   [`ExitReason`].
//! * a failing `pre_start` produces no supervision event, only a failed spawn: start failures are
//!   read from the spawn result, never from events.
//! * ractor's default `handle_supervisor_evt` stops the parent on any child exit: this actor
//!   overrides it and applies OTP's rules instead. Exit events from actors that are no longer
//!   children (because this supervisor stopped them itself) are recognised by actor id and ignored,
//!   which is what OTP's `unlink_flush` achieves.

mod child_api;
pub(crate) mod in_place;
pub(crate) mod mailbox;
pub(crate) mod message;
mod restart_flow;
pub(crate) mod restarts;
pub(crate) mod spawn;
mod start;
mod state;
pub(crate) mod stop;
pub(crate) mod tree_context;

use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};

use crate::supervisor::mailbox::InPlaceReport;
use crate::supervisor::message::SupervisorMsg;
use crate::supervisor::spawn::{SupervisorActor, SupervisorArgs};
use crate::supervisor::start::catch_panicking_start;
use crate::supervisor::state::SupervisorState;
use crate::{EventKind, ExitReason};

impl Actor for SupervisorActor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = SupervisorArgs;

    /// OTP's `init/1`: the check before start, the `started` event, then the children in start
    /// order (a failure stops those started and fails the start).
    async fn pre_start(
        &self,
        myself: ActorRef<SupervisorMsg>,
        args: SupervisorArgs,
    ) -> Result<SupervisorState, ActorProcessingErr> {
        let _busy = args.tree.busy();
        if let Some(check) = &args.spec.before_start {
            if let Err(error) = catch_panicking_start(async { check() }).await {
                // Boxed as itself, so that the spawn's result reads it back (a `?` would box
                // the box, and the error would arrive as its text only).
                return Err(Box::new(error));
            }
        }
        let started = args
            .tree
            .emit(&args.path, EventKind::Started, args.start_cause);
        let cell = myself.get_cell();
        let mut state = SupervisorState::new(args, started, SupervisorMsg::mailbox(cell.clone()));
        if let Err(error) = state.start_children(&cell).await {
            return Err(Box::new(error));
        }
        state.cause = None;
        state.restarts.open();
        Ok(state)
    }

    /// OTP's `terminate/2`: the children stopped in reverse start order.
    async fn post_stop(
        &self,
        _myself: ActorRef<SupervisorMsg>,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        let _busy = state.tree.busy();
        state.restarts.close_for_good();
        let reason = state
            .exit_reason
            .get_or_insert(ExitReason::Shutdown)
            .clone();
        state.cause = state.exit_cause.get();
        state.terminate_all().await;
        if state.is_root {
            let cause = state.cause;
            state
                .tree
                .emit(&state.path, EventKind::Stopped { reason }, cause);
        }
        Ok(())
    }

    /// OTP's `handle_call/3` and `handle_cast/2`: the child API, retries, in-place reports.
    async fn handle(
        &self,
        myself: ActorRef<SupervisorMsg>,
        message: SupervisorMsg,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        let _busy = state.tree.busy();
        let _closed = state.restarts.close();
        let cell = myself.get_cell();
        match message {
            SupervisorMsg::TryAgain(id) => state.try_again(&cell, &id).await,
            SupervisorMsg::InPlace(InPlaceReport::Failed {
                child,
                reason,
                generation,
            }) => {
                state
                    .on_child_failed_in_place(&cell, child, reason, generation)
                    .await
            }
            SupervisorMsg::InPlace(InPlaceReport::RebuildFailed {
                child,
                previous_exit,
            }) => {
                state
                    .on_restart_in_place_failed(&cell, child, previous_exit)
                    .await
            }
            SupervisorMsg::StartChild(spec, reply) => {
                let _ = reply.send(state.add_static_child(&cell, spec).await);
            }
            SupervisorMsg::StartDynamicChild(id, reply) => {
                let _ = reply.send(state.add_dynamic_child(&cell, id).await);
            }
            SupervisorMsg::TerminateChild(id, reply) => {
                let _ = reply.send(state.terminate_child(&id).await);
            }
            SupervisorMsg::RestartChild(id, reply) => {
                let _ = reply.send(state.restart_child(&cell, &id).await);
            }
            SupervisorMsg::DeleteChild(id, reply) => {
                let _ = reply.send(state.delete_child(&id));
            }
            SupervisorMsg::WhichChildren(reply) => {
                let _ = reply.send(state.which_children());
            }
            SupervisorMsg::CountChildren(reply) => {
                let _ = reply.send(state.count_children());
            }
            SupervisorMsg::Status(reply) => {
                let _ = reply.send(state.status());
            }
        }
        Ok(())
    }

    /// OTP's `handle_info({'EXIT', ..})`: a child's actor exited.
    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<SupervisorMsg>,
        event: SupervisionEvent,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        let _busy = state.tree.busy();
        let _closed = state.restarts.close();
        if let Some((actor, reason)) = ExitReason::from_event(&event) {
            state.on_child_exit(&myself.get_cell(), actor, reason).await;
        }
        Ok(())
    }
}
