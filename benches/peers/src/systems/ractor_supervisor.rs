//! ractor-supervisor 0.2: its static `Supervisor` over the same ractor [`Worker`] as the
//! other ractor-based systems.
//!
//! Children must be named; the supervisor registers them in ractor's global registry, and
//! that registry (`ractor::registry::where_is`) is how a caller finds a restarted child: the
//! supervisor has no call that returns its children. Names are made unique per run, since the
//! registry is process-wide.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ractor::{call_t, ActorCell, ActorId, ActorRef};
use ractor_supervisor::{
    ChildSpec, Restart, SpawnFn, Supervisor, SupervisorArguments, SupervisorMsg, SupervisorOptions,
    SupervisorStrategy,
};

use super::raw_ractor::{inject, ping, Worker, WorkerMsg};
use super::{check_new, Contender, Fault, Started, Starts};
use crate::measure::{
    fail, per_op_batches, poll_until, within, Outcome, STEP_TIMEOUT, STEP_TIMEOUT_MS,
};

/// ractor-supervisor's `Supervisor`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RactorSupervisor;

/// A supervisor with its children's names.
struct Running {
    supervisor: ActorRef<SupervisorMsg>,
    names: Vec<String>,
}

/// A prefix no earlier run of this process used.
fn unique_prefix() -> String {
    static RUNS: AtomicU64 = AtomicU64::new(0);
    format!("peers-rs{}", RUNS.fetch_add(1, Ordering::Relaxed))
}

fn child_spec(id: String, starts: &Starts) -> ChildSpec {
    let starts = starts.clone();
    ChildSpec {
        id,
        restart: Restart::Permanent,
        spawn_fn: SpawnFn::new(move |supervisor: ActorCell, id: String| {
            let starts = starts.clone();
            async move {
                let (worker, _) = Supervisor::spawn_linked(id, Worker, starts, supervisor).await?;
                Ok(worker.get_cell())
            }
        }),
        backoff_fn: None,
        reset_after: None,
    }
}

/// A supervisor's arguments, made before the clock starts.
struct Prepared {
    prefix: String,
    names: Vec<String>,
    args: SupervisorArguments,
}

fn prepare(children: usize, strategy: SupervisorStrategy, starts: &Starts) -> Prepared {
    let prefix = unique_prefix();
    let names: Vec<String> = (0..children).map(|i| format!("{prefix}-{i}")).collect();
    let child_specs = names
        .iter()
        .map(|name| child_spec(name.clone(), starts))
        .collect();
    let args = SupervisorArguments {
        child_specs,
        options: SupervisorOptions {
            strategy,
            // No meltdown during a benchmark.
            max_restarts: usize::MAX,
            max_window: Duration::from_secs(1),
            reset_after: None,
        },
    };
    Prepared {
        prefix,
        names,
        args,
    }
}

/// Starts the supervisor and waits until it has answered a request (after it has spawned
/// every child in `post_start` and handled their start events).
async fn launch(prepared: Prepared) -> Outcome<Running> {
    let (supervisor, _) =
        Supervisor::spawn(format!("{}-supervisor", prepared.prefix), prepared.args).await?;
    answered(&supervisor).await?;
    Ok(Running {
        supervisor,
        names: prepared.names,
    })
}

async fn start(children: usize, strategy: SupervisorStrategy, starts: &Starts) -> Outcome<Running> {
    launch(prepare(children, strategy, starts)).await
}

/// How long a supervisor may take to start and answer: its time grows with the square of its
/// children (each child's start event makes it scan its child specs), about 30 s for 100,000.
const START_TIMEOUT_MS: u64 = 10 * STEP_TIMEOUT_MS;

/// Waits until the supervisor answers a request.
async fn answered(supervisor: &ActorRef<SupervisorMsg>) -> Outcome<()> {
    call_t!(supervisor, SupervisorMsg::InspectState, START_TIMEOUT_MS)
        .map(drop)
        .map_err(|error| fail(format!("inspect state: {error}")))
}

/// The running child registered under `name`, once it is not the actor `old`.
async fn registered_other_than(name: &str, old: Option<ActorId>) -> Outcome<ActorRef<WorkerMsg>> {
    poll_until("registry lookup", || async {
        Ok(ractor::registry::where_is(name)
            .filter(|cell| Some(cell.get_id()) != old)
            .map(ActorRef::<WorkerMsg>::from))
    })
    .await
}

async fn stop(running: &Running) -> Outcome<()> {
    let children = running.supervisor.get_children();
    running
        .supervisor
        .stop_and_wait(None, Some(STEP_TIMEOUT * 4))
        .await
        .map_err(|error| fail(format!("stop: {error}")))?;
    // ractor kills a stopped actor's children as it exits, without waiting for them.
    for child in children {
        within("child exit", child.wait(None)).await?.ok();
    }
    Ok(())
}

impl Contender for RactorSupervisor {
    async fn restart_latency(self, fault: Fault, cycles: usize) -> Outcome<Vec<Duration>> {
        let starts = Starts::default();
        let running = start(1, SupervisorStrategy::OneForOne, &starts).await?;
        let name = &running.names[0];
        let mut current = registered_other_than(name, None).await?;
        let mut times = Vec::with_capacity(cycles);
        for _ in 0..cycles {
            let mark = starts.count();
            let started = Instant::now();
            inject(&current, fault)?;
            let next = registered_other_than(name, Some(current.get_id())).await?;
            let incarnation = ping(&next).await?;
            times.push(started.elapsed());
            check_new(incarnation, mark, "ractor-supervisor")?;
            current = next;
        }
        stop(&running).await?;
        Ok(times)
    }

    async fn restart_storm(self, children: usize, storms: usize) -> Outcome<Vec<Duration>> {
        let starts = Starts::default();
        let running = start(children, SupervisorStrategy::OneForAll, &starts).await?;
        let mut current = Vec::with_capacity(children);
        for name in &running.names {
            current.push(registered_other_than(name, None).await?);
        }
        let mut times = Vec::with_capacity(storms);
        for storm in 0..storms {
            let mark = starts.count();
            let started = Instant::now();
            inject(&current[storm * 7919 % children], Fault::Panic)?;
            // Children are spawned again in order: wait for each new one in that order.
            let mut next = Vec::with_capacity(children);
            for (name, old) in running.names.iter().zip(&current) {
                next.push(registered_other_than(name, Some(old.get_id())).await?);
            }
            let answers = within("pings", futures::future::join_all(next.iter().map(ping))).await?;
            times.push(started.elapsed());
            for incarnation in answers {
                check_new(incarnation?, mark, "ractor-supervisor")?;
            }
            current = next;
        }
        stop(&running).await?;
        Ok(times)
    }

    async fn ask_round_trip(self, batches: usize, per_batch: usize) -> Outcome<Vec<Duration>> {
        // ractor-supervisor has no call path of its own: a ractor `call` to a child it supervises.
        let running = start(1, SupervisorStrategy::OneForOne, &Starts::default()).await?;
        let worker = registered_other_than(&running.names[0], None).await?;
        let times = per_op_batches(batches, per_batch, || async {
            ping(&worker).await.map(|_| ())
        })
        .await?;
        stop(&running).await?;
        Ok(times)
    }

    async fn spawn_children(self, children: usize) -> Outcome<Started> {
        let starts = Starts::default();
        let prepared = prepare(children, SupervisorStrategy::OneForOne, &starts);
        let started = Instant::now();
        let running = launch(prepared).await?;
        let elapsed = started.elapsed();
        if starts.count() != children as u64 {
            return Err(fail(format!(
                "{} of {children} children started",
                starts.count()
            )));
        }
        Ok(Started {
            elapsed,
            keep_alive: Box::new(running.supervisor),
        })
    }

    async fn stop_all(self, children: usize) -> Outcome<Duration> {
        let running = start(children, SupervisorStrategy::OneForOne, &Starts::default()).await?;
        let started = Instant::now();
        stop(&running).await?;
        Ok(started.elapsed())
    }
}
