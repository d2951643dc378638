//! The scenario's worker: a ractor actor that crashes, exits with a reason, ignores the polite
//! stop or is rebuilt in place, on command.

use futures::future::BoxFuture;
use futures::FutureExt;
use overseer_supervisor::{
    child_reply, AfterFailure, ChildExit, ExitReason, FailureReporter, InPlaceChild, StartError,
};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::oneshot;

use super::failing_starts::FailingStarts;

/// The scenario worker: crashes or exits on command; a stubborn one never finishes a polite stop.
#[derive(Debug)]
pub(super) struct Worker;

/// How the world starts a worker.
#[derive(Debug)]
pub(super) struct WorkerArgs {
    /// Ignores the polite stop.
    pub(super) stubborn: bool,
    /// Set when the run restarts workers in place.
    pub(super) in_place: Option<InPlace>,
}

/// What an in-place worker needs to report its failures and to rebuild.
#[derive(Debug)]
pub(super) struct InPlace {
    pub(super) reporter: FailureReporter,
    /// Carries out its own restarts when the supervisor lets it.
    pub(super) restarts_itself: bool,
    /// The starts that must fail, a rebuild among them.
    pub(super) failing_starts: FailingStarts,
    /// The worker's name in the scenario.
    pub(super) name: String,
}

#[derive(Debug)]
/// A worker's state between messages.
pub(super) struct WorkerState {
    stubborn: bool,
    exiting_by_itself: bool,
    in_place: Option<InPlace>,
    parked: bool,
    /// A stubborn worker keeps the park request unanswered, as it ignores a polite stop.
    ignored_park: Option<oneshot::Sender<()>>,
}

/// What the run and the supervisor tell a worker.
pub(super) enum WorkerMsg {
    Crash,
    Exit(ExitReason),
    Park(oneshot::Sender<()>),
    Rebuild(oneshot::Sender<Result<(), StartError>>),
}

impl std::fmt::Debug for WorkerMsg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Crash => "Crash",
            Self::Exit(_) => "Exit",
            Self::Park(_) => "Park",
            Self::Rebuild(_) => "Rebuild",
        })
    }
}

/// The supervisor's handle on an in-place worker.
pub(super) struct WorkerHandle(pub(super) ActorRef<WorkerMsg>);

impl InPlaceChild for WorkerHandle {
    fn park(&self) -> BoxFuture<'static, Result<(), StartError>> {
        let (done, parked) = oneshot::channel();
        child_reply(self.0.send_message(WorkerMsg::Park(done)).is_ok(), parked)
    }

    fn rebuild(&self, _previous_exit: ExitReason) -> BoxFuture<'static, Result<(), StartError>> {
        let (done, rebuilt) = oneshot::channel();
        let sent = self.0.send_message(WorkerMsg::Rebuild(done));
        child_reply(sent.is_ok(), rebuilt)
            .map(|answer| answer.and_then(std::convert::identity))
            .boxed()
    }
}

impl WorkerState {
    /// Rebuilds a parked worker, unless the scenario makes its start fail.
    fn rebuild(&mut self) -> Result<(), StartError> {
        match &self.in_place {
            Some(in_place) if in_place.failing_starts.take(&in_place.name) => {
                Err(StartError::failed("start_failed"))
            }
            _ => {
                self.parked = false;
                self.exiting_by_itself = false;
                Ok(())
            }
        }
    }
}

impl Actor for Worker {
    type Msg = WorkerMsg;
    type State = WorkerState;
    type Arguments = WorkerArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<WorkerMsg>,
        args: WorkerArgs,
    ) -> Result<WorkerState, ActorProcessingErr> {
        Ok(WorkerState {
            stubborn: args.stubborn,
            exiting_by_itself: false,
            in_place: args.in_place,
            parked: false,
            ignored_park: None,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<WorkerMsg>,
        message: WorkerMsg,
        state: &mut WorkerState,
    ) -> Result<(), ActorProcessingErr> {
        let failure = match message {
            WorkerMsg::Park(done) if state.stubborn => {
                state.ignored_park = Some(done);
                return Ok(());
            }
            WorkerMsg::Park(done) => {
                state.parked = true;
                let _ = done.send(());
                return Ok(());
            }
            WorkerMsg::Rebuild(done) => {
                let _ = done.send(state.rebuild());
                return Ok(());
            }
            // A parked worker has no state to act on.
            _ if state.parked => return Ok(()),
            WorkerMsg::Crash => (ExitReason::Abnormal("crash".into()), true),
            WorkerMsg::Exit(reason) => (reason, false),
        };
        match (&state.in_place, failure) {
            (Some(in_place), (reason, _)) => {
                // It has exited, as far as the scenario is concerned: a later stop of the
                // parked actor is not a polite stop it could ignore.
                state.parked = true;
                state.exiting_by_itself = true;
                let cell = myself.get_cell();
                if !in_place.restarts_itself {
                    if !in_place.reporter.report(&cell, reason) {
                        myself.stop(None);
                    }
                    return Ok(());
                }
                match in_place.reporter.failed(&cell, reason) {
                    AfterFailure::RebuildNow(restart) => restart.finish(state.rebuild()),
                    AfterFailure::Reported => {}
                    AfterFailure::SupervisorGone => myself.stop(None),
                }
                Ok(())
            }
            (None, (reason, true)) => Err(ChildExit::new(reason).into()),
            (None, (reason, false)) => {
                state.exiting_by_itself = true;
                myself.stop(reason.to_stop_reason());
                Ok(())
            }
        }
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<WorkerMsg>,
        state: &mut WorkerState,
    ) -> Result<(), ActorProcessingErr> {
        if state.stubborn && !state.exiting_by_itself {
            // Ignores the polite stop: only a kill ends it.
            std::future::pending::<()>().await;
        }
        Ok(())
    }
}
