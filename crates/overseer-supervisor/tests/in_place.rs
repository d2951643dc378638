//! Workers restarted in place: the same actor, its state rebuilt, the same decisions and
//! events as a restart with a new actor. Public API only, paused clock.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{events_until, is, started, stopped, yield_until};
use futures::future::BoxFuture;
use futures::FutureExt;
use overseer_supervisor::{
    child_reply, AfterFailure, ChildSpec, EventKind, ExitReason, FailureReporter, InPlaceChild,
    Restart, Shutdown, StartContext, StartError, SupervisionTree, SupervisorSpec,
};
use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef};
use tokio::sync::oneshot;

enum Msg {
    Crash,
    ExitNormally,
    /// Answers with the number of rebuilds this actor has had.
    Rebuilds(oneshot::Sender<u32>),
    Park(oneshot::Sender<()>),
    Rebuild(oneshot::Sender<Result<(), StartError>>),
    /// Never finishes handling this message (a stop waits for it, then kills).
    Hang,
}

/// How a test worker behaves.
#[derive(Clone, Default)]
struct Behaviour {
    /// Never answers a park request (as a worker stuck in a long task).
    stuck: bool,
    /// Rebuilds fail while this is above zero (counted down).
    failing_rebuilds: Arc<AtomicU32>,
    /// Reports with `FailureReporter::failed`, and restarts itself when told to.
    restarts_itself: bool,
    /// Drops a restart it was told to carry out, unfinished.
    abandons_restarts: bool,
    /// How many failures it restarted itself from.
    restarted_here: Arc<AtomicU32>,
    /// How many failures it reported to its supervisor.
    reported: Arc<AtomicU32>,
}

impl Behaviour {
    fn restarting_itself() -> Self {
        Self {
            restarts_itself: true,
            ..Self::default()
        }
    }

    fn ways(&self) -> (u32, u32) {
        (
            self.restarted_here.load(Ordering::SeqCst),
            self.reported.load(Ordering::SeqCst),
        )
    }
}

struct Worker {
    reporter: FailureReporter,
    behaviour: Behaviour,
}

struct State {
    parked: bool,
    rebuilds: u32,
    unanswered: Vec<oneshot::Sender<()>>,
}

impl Actor for Worker {
    type Msg = Msg;
    type State = State;
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<Msg>, _: ()) -> Result<State, ActorProcessingErr> {
        Ok(State {
            parked: false,
            rebuilds: 0,
            unanswered: Vec::new(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Msg>,
        message: Msg,
        state: &mut State,
    ) -> Result<(), ActorProcessingErr> {
        let reason = match message {
            Msg::Rebuilds(reply) => {
                let _ = reply.send(state.rebuilds);
                return Ok(());
            }
            Msg::Park(done) if self.behaviour.stuck => {
                state.unanswered.push(done);
                return Ok(());
            }
            Msg::Park(done) => {
                state.parked = true;
                let _ = done.send(());
                return Ok(());
            }
            Msg::Rebuild(done) => {
                let _ = done.send(self.rebuild(state));
                return Ok(());
            }
            Msg::Hang => std::future::pending().await,
            Msg::Crash => ExitReason::Panicked("boom".into()),
            Msg::ExitNormally => ExitReason::Normal,
        };
        state.parked = true;
        let behaviour = &self.behaviour;
        if !behaviour.restarts_itself {
            behaviour.reported.fetch_add(1, Ordering::SeqCst);
            if !self.reporter.report(&myself.get_cell(), reason) {
                myself.stop(None);
            }
            return Ok(());
        }
        match self.reporter.failed(&myself.get_cell(), reason) {
            AfterFailure::RebuildNow(restart) => {
                behaviour.restarted_here.fetch_add(1, Ordering::SeqCst);
                if !behaviour.abandons_restarts {
                    restart.finish(self.rebuild(state));
                }
            }
            AfterFailure::Reported => {
                behaviour.reported.fetch_add(1, Ordering::SeqCst);
            }
            AfterFailure::SupervisorGone => myself.stop(None),
        }
        Ok(())
    }
}

impl Worker {
    fn rebuild(&self, state: &mut State) -> Result<(), StartError> {
        let failing = &self.behaviour.failing_rebuilds;
        if failing
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(StartError::failed("cannot rebuild"));
        }
        state.parked = false;
        state.rebuilds += 1;
        Ok(())
    }
}

struct Handle(ActorRef<Msg>);

impl InPlaceChild for Handle {
    fn park(&self) -> BoxFuture<'static, Result<(), StartError>> {
        let (done, parked) = oneshot::channel();
        child_reply(self.0.send_message(Msg::Park(done)).is_ok(), parked)
    }

    fn rebuild(&self, _: ExitReason) -> BoxFuture<'static, Result<(), StartError>> {
        let (done, rebuilt) = oneshot::channel();
        let sent = self.0.send_message(Msg::Rebuild(done)).is_ok();
        child_reply(sent, rebuilt)
            .map(|answer| answer.and_then(std::convert::identity))
            .boxed()
    }
}

fn in_place(id: &str, behaviour: Behaviour, spawns: Arc<AtomicU32>) -> ChildSpec {
    ChildSpec::worker(id, move |context: StartContext| {
        let behaviour = behaviour.clone();
        let spawns = Arc::clone(&spawns);
        async move {
            spawns.fetch_add(1, Ordering::SeqCst);
            let worker = Worker {
                reporter: context.failure_reporter(),
                behaviour,
            };
            let actor = context.spawn(worker, ()).await?;
            context.restart_in_place(Handle(actor.clone()));
            Ok(actor)
        }
    })
}

async fn actor(tree: &SupervisionTree, id: &str) -> ActorRef<Msg> {
    let info = common::child(tree, &[id]).await.expect("child exists");
    info.cell.expect("running").into()
}

async fn rebuilds(tree: &SupervisionTree, id: &str) -> (ActorId, u32) {
    let actor = actor(tree, id).await;
    let (reply, answer) = oneshot::channel();
    actor.send_message(Msg::Rebuilds(reply)).unwrap();
    (actor.get_id(), answer.await.unwrap())
}

/// A one_for_one tree of one in-place worker `w`, its event stream, and `w`'s actor id.
async fn one_worker(
    behaviour: Behaviour,
    spawns: &Arc<AtomicU32>,
) -> (
    SupervisionTree,
    tokio::sync::broadcast::Receiver<overseer_supervisor::LifecycleEvent>,
    ActorId,
) {
    let spec =
        SupervisorSpec::one_for_one("root").child(in_place("w", behaviour, Arc::clone(spawns)));
    let tree = SupervisionTree::start(spec).await.unwrap();
    let events = tree.subscribe();
    let (before, _) = rebuilds(&tree, "w").await;
    (tree, events, before)
}

#[tokio::test(start_paused = true)]
async fn a_failed_worker_is_rebuilt_in_the_same_actor_with_the_usual_events() {
    let spawns = Arc::new(AtomicU32::new(0));
    let (tree, mut events, before) = one_worker(Behaviour::default(), &spawns).await;
    actor(&tree, "w").await.send_message(Msg::Crash).unwrap();
    let seen = events_until(&mut events, is("root/w", started)).await;
    assert!(matches!(
        &seen[0].kind,
        EventKind::Stopped {
            reason: ExitReason::Panicked(_)
        }
    ));
    assert_eq!(
        rebuilds(&tree, "w").await,
        (before, 1),
        "same actor, rebuilt once"
    );
    assert_eq!(spawns.load(Ordering::SeqCst), 1, "no new actor was spawned");
    assert_eq!(tree.live_actors(), 2);
    tree.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_group_restart_parks_and_rebuilds_siblings_in_place() {
    let spawns = Arc::new(AtomicU32::new(0));
    let spec = SupervisorSpec::one_for_all("root")
        .child(in_place("a", Behaviour::default(), Arc::clone(&spawns)))
        .child(in_place("b", Behaviour::default(), Arc::clone(&spawns)))
        .child(in_place("c", Behaviour::default(), Arc::clone(&spawns)));
    let tree = SupervisionTree::start(spec).await.unwrap();
    let mut events = tree.subscribe();
    let ids_before = [
        rebuilds(&tree, "a").await.0,
        rebuilds(&tree, "b").await.0,
        rebuilds(&tree, "c").await.0,
    ];
    actor(&tree, "b").await.send_message(Msg::Crash).unwrap();
    let seen = events_until(&mut events, is("root/c", started)).await;
    let order: Vec<String> = seen
        .iter()
        .map(|event| {
            format!(
                "{} {}",
                event.path,
                if started(&event.kind) {
                    "started"
                } else {
                    "stopped"
                }
            )
        })
        .collect();
    assert_eq!(
        order,
        [
            "root/b stopped",
            "root/c stopped",
            "root/a stopped",
            "root/a started",
            "root/b started",
            "root/c started"
        ]
    );
    for (id, before) in ["a", "b", "c"].into_iter().zip(ids_before) {
        assert_eq!(
            rebuilds(&tree, id).await,
            (before, 1),
            "{id} rebuilt in place"
        );
    }
    assert_eq!(spawns.load(Ordering::SeqCst), 3);
    tree.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_sibling_that_does_not_park_in_time_is_killed_and_started_afresh() {
    let spawns = Arc::new(AtomicU32::new(0));
    let stuck = Behaviour {
        stuck: true,
        ..Behaviour::default()
    };
    let spec = SupervisorSpec::one_for_all("root")
        .child(
            in_place("a", stuck, Arc::clone(&spawns))
                .shutdown(Shutdown::Timeout(Duration::from_millis(500))),
        )
        .child(in_place("b", Behaviour::default(), Arc::clone(&spawns)));
    let tree = SupervisionTree::start(spec).await.unwrap();
    let mut events = tree.subscribe();
    let (a_before, _) = rebuilds(&tree, "a").await;
    actor(&tree, "b").await.send_message(Msg::Crash).unwrap();
    let seen = events_until(&mut events, is("root/b", started)).await;
    assert!(seen.iter().any(|event| event.path.as_str() == "root/a"
        && event.kind
            == EventKind::Stopped {
                reason: ExitReason::Killed
            }));
    let (a_after, a_rebuilds) = rebuilds(&tree, "a").await;
    assert_ne!(a_after, a_before, "a new actor");
    assert_eq!(a_rebuilds, 0);
    assert_eq!(spawns.load(Ordering::SeqCst), 3, "a was spawned again");
    assert_eq!(rebuilds(&tree, "b").await.1, 1, "b was rebuilt in place");
    tree.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_failed_rebuild_is_a_failed_start_and_the_retry_spawns_a_new_actor() {
    let spawns = Arc::new(AtomicU32::new(0));
    let behaviour = Behaviour {
        failing_rebuilds: Arc::new(AtomicU32::new(1)),
        ..Behaviour::default()
    };
    let spec = SupervisorSpec::one_for_one("root")
        .intensity(5, Duration::from_secs(5))
        .child(in_place("w", behaviour, Arc::clone(&spawns)));
    let tree = SupervisionTree::start(spec).await.unwrap();
    let mut events = tree.subscribe();
    let (before, _) = rebuilds(&tree, "w").await;
    actor(&tree, "w").await.send_message(Msg::Crash).unwrap();
    let seen = events_until(&mut events, is("root/w", started)).await;
    assert!(seen
        .iter()
        .any(|event| matches!(event.kind, EventKind::StartFailed { .. })));
    let (after, rebuilt) = rebuilds(&tree, "w").await;
    assert_ne!(after, before);
    assert_eq!(rebuilt, 0);
    assert_eq!(spawns.load(Ordering::SeqCst), 2);
    tree.shutdown(Duration::from_secs(5)).await.unwrap();
    assert_census_reaches_zero(&tree).await;
}

#[tokio::test(start_paused = true)]
async fn a_worker_that_is_not_restarted_has_its_actor_stopped() {
    let spawns = Arc::new(AtomicU32::new(0));
    let spec = SupervisorSpec::one_for_one("root").child(
        in_place("w", Behaviour::default(), Arc::clone(&spawns)).restart(Restart::Transient),
    );
    let tree = SupervisionTree::start(spec).await.unwrap();
    let mut events = tree.subscribe();
    actor(&tree, "w")
        .await
        .send_message(Msg::ExitNormally)
        .unwrap();
    let seen = events_until(&mut events, is("root/w", stopped)).await;
    assert_eq!(
        seen.last().unwrap().kind,
        EventKind::Stopped {
            reason: ExitReason::Normal
        }
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tree.live_actors() > 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the parked actor stops"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    tree.shutdown(Duration::from_secs(5)).await.unwrap();
    assert_census_reaches_zero(&tree).await;
}

#[tokio::test(start_paused = true)]
async fn a_worker_restarts_itself_under_one_for_one_with_the_usual_events() {
    let spawns = Arc::new(AtomicU32::new(0));
    let behaviour = Behaviour::restarting_itself();
    let (tree, mut events, before) = one_worker(behaviour.clone(), &spawns).await;
    actor(&tree, "w").await.send_message(Msg::Crash).unwrap();
    let seen = events_until(&mut events, is("root/w", started)).await;
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(
        seen[0].kind,
        EventKind::Stopped {
            reason: ExitReason::Panicked("boom".into())
        }
    );
    assert_eq!(
        seen[1].caused_by,
        Some(seen[0].id),
        "the restart names the exit"
    );
    assert_eq!(behaviour.ways(), (1, 0), "restarted here, nothing reported");
    assert_eq!(rebuilds(&tree, "w").await, (before, 1), "same actor");
    assert_eq!(spawns.load(Ordering::SeqCst), 1);
    tree.shutdown(Duration::from_secs(5)).await.unwrap();
    assert_census_reaches_zero(&tree).await;
}

#[tokio::test(start_paused = true)]
async fn a_restart_past_the_intensity_is_reported_and_the_supervisor_gives_up() {
    let behaviour = Behaviour::restarting_itself();
    let spec = SupervisorSpec::one_for_one("root")
        .intensity(1, Duration::from_secs(5))
        .child(in_place("w", behaviour.clone(), Arc::default()));
    let tree = SupervisionTree::start(spec).await.unwrap();
    let mut events = tree.subscribe();
    actor(&tree, "w").await.send_message(Msg::Crash).unwrap();
    events_until(&mut events, is("root/w", started)).await;
    actor(&tree, "w").await.send_message(Msg::Crash).unwrap();
    events_until(&mut events, is("root", common::escalated)).await;
    assert_eq!(
        behaviour.ways(),
        (1, 1),
        "the second restart was not its own"
    );
    assert!(tree.wait_for_exit(Duration::from_secs(5)).await);
}

#[tokio::test(start_paused = true)]
async fn under_one_for_all_a_failure_is_always_reported() {
    let behaviour = Behaviour::restarting_itself();
    let spec = SupervisorSpec::one_for_all("root")
        .child(in_place("a", behaviour.clone(), Arc::default()))
        .child(in_place("b", Behaviour::default(), Arc::default()));
    let tree = SupervisionTree::start(spec).await.unwrap();
    let mut events = tree.subscribe();
    actor(&tree, "a").await.send_message(Msg::Crash).unwrap();
    events_until(&mut events, is("root/b", started)).await;
    assert_eq!(behaviour.ways(), (0, 1));
    tree.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_worker_does_not_restart_itself_while_its_supervisor_is_busy() {
    let behaviour = Behaviour::restarting_itself();
    let spec = SupervisorSpec::one_for_one("root")
        .child(
            in_place("slow", Behaviour::default(), Arc::default())
                .shutdown(Shutdown::Timeout(Duration::from_millis(500))),
        )
        .child(in_place("w", behaviour.clone(), Arc::default()));
    let tree = SupervisionTree::start(spec).await.unwrap();
    let mut events = tree.subscribe();
    actor(&tree, "slow").await.send_message(Msg::Hang).unwrap();
    let w = actor(&tree, "w").await;
    let root = tree.root().clone();
    let terminating = tokio::spawn(async move { root.terminate_child("slow").await });
    // No time passes: slow's 500 ms shutdown timeout keeps the supervisor busy afterwards.
    yield_until("the supervisor gets busy terminating slow", || {
        tree.operations_in_progress() > 0
    })
    .await;
    w.send_message(Msg::Crash).unwrap();
    let seen = events_until(&mut events, is("root/w", started)).await;
    let slow_stopped = seen
        .iter()
        .position(|event| event.path.as_str() == "root/slow")
        .expect("slow was stopped first");
    let w_stopped = seen
        .iter()
        .position(|event| event.path.as_str() == "root/w")
        .expect("w stopped");
    assert!(slow_stopped < w_stopped, "{seen:?}");
    assert_eq!(
        behaviour.ways(),
        (0, 1),
        "reported, as the supervisor was busy"
    );
    terminating.await.unwrap().unwrap();
    tree.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_failed_restart_here_is_a_failed_start_and_the_retry_spawns_a_new_actor() {
    for abandons in [false, true] {
        let spawns = Arc::new(AtomicU32::new(0));
        let behaviour = Behaviour {
            failing_rebuilds: Arc::new(AtomicU32::new(u32::from(!abandons))),
            abandons_restarts: abandons,
            ..Behaviour::restarting_itself()
        };
        let spec = SupervisorSpec::one_for_one("root")
            .intensity(5, Duration::from_secs(5))
            .child(in_place("w", behaviour.clone(), Arc::clone(&spawns)));
        let tree = SupervisionTree::start(spec).await.unwrap();
        let mut events = tree.subscribe();
        let (before, _) = rebuilds(&tree, "w").await;
        actor(&tree, "w").await.send_message(Msg::Crash).unwrap();
        let seen = events_until(&mut events, is("root/w", started)).await;
        let kinds: Vec<_> = seen.iter().map(|event| &event.kind).collect();
        assert!(
            matches!(
                kinds[..],
                [
                    EventKind::Stopped { .. },
                    EventKind::StartFailed { .. },
                    EventKind::Started
                ]
            ),
            "abandons {abandons}: {kinds:?}"
        );
        let (after, rebuilt) = rebuilds(&tree, "w").await;
        assert_ne!(after, before, "a new actor");
        assert_eq!(rebuilt, 0);
        assert_eq!(spawns.load(Ordering::SeqCst), 2);
        assert_eq!(behaviour.ways(), (1, 0));
        tree.shutdown(Duration::from_secs(5)).await.unwrap();
        assert_census_reaches_zero(&tree).await;
    }
}

async fn assert_census_reaches_zero(tree: &SupervisionTree) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tree.live_actors() > 0 {
        assert!(tokio::time::Instant::now() < deadline, "every actor stops");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Two workers of a one_for_all group fail at once. The supervisor restarts the group for the
/// first report; by then the second worker was parked (and rebuilt) by that group restart, so
/// its report is stale and must not restart the group again: as in OTP, where the second
/// worker's exit is flushed when the supervisor terminates it for the group restart.
#[tokio::test(start_paused = true)]
async fn a_report_overtaken_by_a_group_restart_does_not_restart_the_group_again() {
    let spec = SupervisorSpec::one_for_all("root")
        .intensity(10, Duration::from_secs(5))
        .child(in_place("a", Behaviour::default(), Arc::default()))
        .child(in_place("b", Behaviour::default(), Arc::default()));
    let tree = SupervisionTree::start(spec).await.unwrap();
    let mut events = tree.subscribe();
    let (a, b) = (actor(&tree, "a").await, actor(&tree, "b").await);
    // Both fail before the supervisor runs: two reports in its mailbox.
    b.send_message(Msg::Crash).unwrap();
    a.send_message(Msg::Crash).unwrap();
    events_until(&mut events, is("root/b", started)).await;
    // Let everything settle, then look for a second group restart.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    let mut later = Vec::new();
    while tokio::time::Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_millis(50), events.recv()).await {
            Ok(Ok(event)) => later.push(event),
            Ok(Err(_)) => break,
            Err(_) => {}
        }
    }
    assert!(later.is_empty(), "no second group restart: {later:?}");
    assert_eq!(rebuilds(&tree, "a").await.1, 1, "a rebuilt once");
    assert_eq!(rebuilds(&tree, "b").await.1, 1, "b rebuilt once");
    tree.shutdown(Duration::from_secs(5)).await.unwrap();
}
