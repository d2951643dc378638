//! The scenario's world: the specs of its supervisors and workers, which worker incarnation is
//! current, which starts must fail and the fates the children were told.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use overseer_supervisor::{
    AutoShutdown as SupAutoShutdown, ChildFate, ChildSpec, Restart as SupRestart, Shutdown,
    StartContext, StartError, Strategy as SupStrategy, SupervisorSpec,
};
use ractor::{ActorRef, ActorStatus};

use super::failing_starts::FailingStarts;
use super::restarts::Restarts;
use super::worker::{InPlace, Worker, WorkerArgs, WorkerHandle, WorkerMsg};
use crate::scenario::{
    AutoShutdown, ChildOpts, Node, Restart, ShutdownSpec, Strategy, SupNode, WorkerNode,
};

/// The names of a scenario's world: which worker incarnation is current, which starts must fail.
#[derive(Debug, Default, Clone)]
pub(super) struct World {
    workers: Arc<Mutex<HashMap<String, ActorRef<WorkerMsg>>>>,
    failing_starts: FailingStarts,
    restarts: Restarts,
    /// The last fate each child was told.
    fates: Arc<Mutex<BTreeMap<String, ChildFate>>>,
}

impl World {
    /// A world whose workers are restarted as `restarts` says.
    pub(super) fn new(restarts: Restarts) -> Self {
        Self {
            restarts,
            ..Self::default()
        }
    }

    /// Makes the next `times` starts of `name` fail.
    pub(super) fn fail_starts(&self, name: &str, times: u32) {
        self.failing_starts.set(name, times);
    }

    /// The last fate each child was told, by child id.
    pub(super) fn last_fates(&self) -> BTreeMap<String, ChildFate> {
        self.fates
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Records the fates told to a child.
    fn watched(&self, spec: ChildSpec) -> ChildSpec {
        let fates = Arc::clone(&self.fates);
        spec.watch(move |path, fate| {
            fates
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(path.name().to_string(), fate);
        })
    }

    /// The running incarnation of the worker `name`.
    pub(super) fn worker(&self, name: &str) -> Option<ActorRef<WorkerMsg>> {
        let workers = self.workers.lock().unwrap_or_else(PoisonError::into_inner);
        workers
            .get(name)
            .filter(|worker| worker.get_status() == ActorStatus::Running)
            .cloned()
    }

    /// The spec of the supervisor `node`, its children's specs in it.
    pub(super) fn supervisor_spec(&self, node: &SupNode) -> SupervisorSpec {
        let strategy = match node.strategy {
            Strategy::OneForOne => SupStrategy::OneForOne,
            Strategy::OneForAll => SupStrategy::OneForAll,
            Strategy::RestForOne => SupStrategy::RestForOne,
            Strategy::SimpleOneForOne => SupStrategy::Dynamic,
        };
        let world = self.clone();
        let name = node.name.clone();
        let mut spec = SupervisorSpec::new(node.name.as_str(), strategy)
            .intensity(node.intensity, Duration::from_secs(node.period_secs))
            .auto_shutdown(match node.auto_shutdown {
                AutoShutdown::Never => SupAutoShutdown::Never,
                AutoShutdown::AnySignificant => SupAutoShutdown::AnySignificant,
                AutoShutdown::AllSignificant => SupAutoShutdown::AllSignificant,
            })
            .before_start(move || {
                if world.failing_starts.take(&name) {
                    Err(StartError::failed("start_failed"))
                } else {
                    Ok(())
                }
            });
        for child in &node.children {
            spec = spec.child(match child {
                Node::Worker(worker) => {
                    self.worker_spec(&worker.name, &worker.opts, worker.stubborn)
                }
                Node::Sup(sup) => self.watched(with_options(
                    ChildSpec::supervisor(self.supervisor_spec(sup)),
                    &sup.opts,
                )),
            });
        }
        if let Some(WorkerNode { opts, stubborn, .. }) = &node.template {
            spec = spec.template(self.worker_spec("template", opts, *stubborn));
        }
        spec
    }

    /// A worker spec; the worker's name is its child id (a dynamic child gets its id when added).
    pub(super) fn worker_spec(&self, id: &str, opts: &ChildOpts, stubborn: bool) -> ChildSpec {
        let world = self.clone();
        let spec = ChildSpec::worker(id, move |context: StartContext| {
            let world = world.clone();
            async move {
                let name = context.id().to_string();
                if world.failing_starts.take(&name) {
                    return Err(StartError::failed("start_failed"));
                }
                let in_place = world.restarts.in_place().then(|| InPlace {
                    reporter: context.failure_reporter(),
                    restarts_itself: world.restarts == Restarts::InPlaceHere,
                    failing_starts: world.failing_starts.clone(),
                    name: name.clone(),
                });
                let worker = context
                    .spawn(Worker, WorkerArgs { stubborn, in_place })
                    .await?;
                if world.restarts.in_place() {
                    context.restart_in_place(WorkerHandle(worker.clone()));
                }
                world
                    .workers
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(name, worker.clone());
                Ok(worker)
            }
        });
        self.watched(with_options(spec, opts))
    }
}

fn with_options(spec: ChildSpec, opts: &ChildOpts) -> ChildSpec {
    let spec = spec
        .restart(restart_type(opts.restart))
        .significant(opts.significant);
    match opts.shutdown {
        Some(shutdown) => spec.shutdown(shutdown_spec(shutdown)),
        None => spec,
    }
}

fn restart_type(restart: Restart) -> SupRestart {
    match restart {
        Restart::Permanent => SupRestart::Permanent,
        Restart::Transient => SupRestart::Transient,
        Restart::Temporary => SupRestart::Temporary,
    }
}

fn shutdown_spec(shutdown: ShutdownSpec) -> Shutdown {
    match shutdown {
        ShutdownSpec::BrutalKill => Shutdown::BrutalKill,
        ShutdownSpec::Millis(ms) => Shutdown::Timeout(Duration::from_millis(ms)),
        ShutdownSpec::Infinity => Shutdown::Infinity,
    }
}
