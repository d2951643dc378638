//! Test actors and helpers shared by the supervisor tests. Only the public API is used.
#![allow(dead_code)]
#![allow(unreachable_pub)] // `pub` for the test files that include it: nothing here is API

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use overseer_supervisor::{
    ChildInfo, ChildSpec, EventKind, LifecycleEvent, StartContext, StartError, SupervisionTree,
    SupervisorRef,
};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::broadcast;

/// What a test worker does on command.
#[derive(Debug)]
pub enum Command {
    Panic,
    Fail,
    Stop(Option<String>),
}

/// Where a test worker fails, if anywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureSite {
    None,
    StartPanic,
    StartError,
    StopPanic,
    StopError,
    /// `post_stop` never returns: only a kill ends the actor.
    StopHang,
}

#[derive(Debug)]
pub struct TestWorker {
    pub site: FailureSite,
}

impl Actor for TestWorker {
    type Msg = Command;
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<Command>, _: ()) -> Result<(), ActorProcessingErr> {
        match self.site {
            FailureSite::StartPanic => panic!("boom in pre_start"),
            FailureSite::StartError => Err("error in pre_start".into()),
            _ => Ok(()),
        }
    }

    async fn handle(
        &self,
        myself: ActorRef<Command>,
        command: Command,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        match command {
            Command::Panic => panic!("boom in handle"),
            Command::Fail => Err("error in handle".into()),
            Command::Stop(reason) => {
                myself.stop(reason);
                Ok(())
            }
        }
    }

    async fn post_stop(&self, _: ActorRef<Command>, _: &mut ()) -> Result<(), ActorProcessingErr> {
        match self.site {
            FailureSite::StopPanic => panic!("boom in post_stop"),
            FailureSite::StopError => Err("error in post_stop".into()),
            FailureSite::StopHang => std::future::pending().await,
            _ => Ok(()),
        }
    }
}

/// A worker spec that behaves well.
pub fn worker(id: &str) -> ChildSpec {
    worker_failing_at(id, FailureSite::None)
}

pub fn worker_failing_at(id: &str, site: FailureSite) -> ChildSpec {
    ChildSpec::actor(id, move || (TestWorker { site }, ()))
}

/// A worker whose first `failures` starts fail; `starts` counts every attempt.
pub fn worker_failing_first(id: &str, failures: u32, starts: Arc<AtomicU32>) -> ChildSpec {
    ChildSpec::worker(id, move |context: StartContext| {
        let starts = Arc::clone(&starts);
        async move {
            if starts.fetch_add(1, Ordering::SeqCst) < failures {
                return Err(StartError::failed("not yet"));
            }
            context
                .spawn(
                    TestWorker {
                        site: FailureSite::None,
                    },
                    (),
                )
                .await
        }
    })
}

/// The running child at `path` (ids from the root's children down).
pub async fn child(tree: &SupervisionTree, path: &[&str]) -> Option<ChildInfo> {
    let (last, parents) = path.split_last()?;
    let mut supervisor: SupervisorRef = tree.root().clone();
    for name in parents {
        let children = supervisor.which_children().await.ok()?;
        supervisor = children
            .into_iter()
            .find(|c| c.id.as_str() == *name)?
            .supervisor()?;
    }
    supervisor
        .which_children()
        .await
        .ok()?
        .into_iter()
        .find(|c| c.id.as_str() == *last)
}

pub async fn send(tree: &SupervisionTree, path: &[&str], command: Command) {
    let info = child(tree, path).await.expect("child exists");
    let cell = info.cell.expect("child is running");
    cell.send_message(command).expect("child accepts messages");
}

/// Receives events until one matches, failing the test if none does within 10 s of (paused
/// or real) time. Returns every event seen, the matching one last.
pub async fn events_until(
    events: &mut broadcast::Receiver<LifecycleEvent>,
    matches: impl Fn(&LifecycleEvent) -> bool,
) -> Vec<LifecycleEvent> {
    let mut seen = Vec::new();
    let wait = async {
        loop {
            let event = events.recv().await.expect("event stream open");
            let done = matches(&event);
            seen.push(event);
            if done {
                return;
            }
        }
    };
    if tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .is_err()
    {
        panic!("no matching event within 10 s; saw {seen:#?}");
    }
    seen
}

pub fn is(path: &'static str, kind: fn(&EventKind) -> bool) -> impl Fn(&LifecycleEvent) -> bool {
    move |event| event.path.as_str() == path && kind(&event.kind)
}

pub fn started(kind: &EventKind) -> bool {
    matches!(kind, EventKind::Started)
}

pub fn stopped(kind: &EventKind) -> bool {
    matches!(kind, EventKind::Stopped { .. })
}

pub fn escalated(kind: &EventKind) -> bool {
    matches!(kind, EventKind::Escalated { .. })
}

pub fn start_failed(kind: &EventKind) -> bool {
    matches!(kind, EventKind::StartFailed { .. })
}

mod yield_until;
#[allow(unused_imports)] // each test file uses part of it
pub use yield_until::yield_until;
