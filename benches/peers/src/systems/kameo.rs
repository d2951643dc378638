//! kameo 0.22: a supervisor actor and children spawned with `Spawn::supervise`.
//!
//! kameo restarts a child in place: its `ActorRef` and its mailbox survive the restart, and
//! messages queued behind the one that crashed are handled by the next incarnation. So a
//! caller keeps its reference and simply asks again; no lookup is needed.

use std::time::{Duration, Instant};

use ::kameo::actor::{Actor, ActorRef, Spawn};
use ::kameo::error::Infallible;
use ::kameo::message::{Context, Message};
use ::kameo::supervision::SupervisionStrategy;

use super::{check_new, Contender, Fault, Started, Starts, INJECTED_ERROR, INJECTED_PANIC};
use crate::measure::{fail, per_op_batches, poll_until, within, Outcome};

/// Asks for the incarnation number.
#[derive(Debug)]
pub(crate) struct Ping;

/// Makes the handler panic.
#[derive(Debug)]
pub(crate) struct Crash;

/// Makes the handler return an error (sent with `tell`, which kameo treats as a panic).
#[derive(Debug)]
pub(crate) struct Fail;

/// The error a [`Fail`] returns.
#[derive(Debug)]
pub(crate) struct InjectedError;

impl std::fmt::Display for InjectedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(INJECTED_ERROR)
    }
}

/// The child: its state is its incarnation number.
#[derive(Debug)]
pub(crate) struct Worker {
    incarnation: u64,
}

impl Actor for Worker {
    type Args = Starts;
    type Error = Infallible;

    async fn on_start(starts: Starts, _: ActorRef<Self>) -> Result<Self, Infallible> {
        Ok(Self {
            incarnation: starts.next(),
        })
    }
}

impl Message<Ping> for Worker {
    type Reply = u64;

    async fn handle(&mut self, _: Ping, _: &mut Context<Self, u64>) -> u64 {
        self.incarnation
    }
}

impl Message<Crash> for Worker {
    type Reply = ();

    async fn handle(&mut self, _: Crash, _: &mut Context<Self, ()>) {
        panic!("{INJECTED_PANIC}")
    }
}

impl Message<Fail> for Worker {
    type Reply = Result<(), InjectedError>;

    async fn handle(
        &mut self,
        _: Fail,
        _: &mut Context<Self, Result<(), InjectedError>>,
    ) -> Result<(), InjectedError> {
        Err(InjectedError)
    }
}

/// The supervisor: `one_for_all` when `ALL`, else `one_for_one`. It answers [`Ping`] with 0.
#[derive(Debug)]
pub(crate) struct Boss<const ALL: bool>;

impl<const ALL: bool> Actor for Boss<ALL> {
    type Args = ();
    type Error = Infallible;

    fn supervision_strategy() -> SupervisionStrategy {
        if ALL {
            SupervisionStrategy::OneForAll
        } else {
            SupervisionStrategy::OneForOne
        }
    }

    async fn on_start(_: (), _: ActorRef<Self>) -> Result<Self, Infallible> {
        Ok(Self)
    }
}

impl<const ALL: bool> Message<Ping> for Boss<ALL> {
    type Reply = u64;

    async fn handle(&mut self, _: Ping, _: &mut Context<Self, u64>) -> u64 {
        0
    }
}

/// A supervisor and its children.
struct Running<const ALL: bool> {
    boss: ActorRef<Boss<ALL>>,
    children: Vec<ActorRef<Worker>>,
}

/// Starts a supervisor with `children` children and waits until every child has started and
/// the supervisor has answered a ping.
async fn start<const ALL: bool>(children: usize, starts: &Starts) -> Outcome<Running<ALL>> {
    let boss = Boss::<ALL>::spawn(());
    let mut refs = Vec::with_capacity(children);
    for _ in 0..children {
        refs.push(
            Worker::supervise(&boss, starts.clone())
                // No restart limit during a benchmark.
                .restart_limit(u32::MAX, Duration::from_secs(1))
                .spawn()
                .await,
        );
    }
    poll_until("children started", || async {
        Ok((starts.count() >= children as u64).then_some(()))
    })
    .await?;
    within("supervisor ping", boss.ask(Ping))
        .await?
        .map_err(|error| fail(format!("supervisor ping: {error}")))?;
    Ok(Running {
        boss,
        children: refs,
    })
}

async fn stop<const ALL: bool>(running: &Running<ALL>) -> Outcome<()> {
    running
        .boss
        .stop_gracefully()
        .await
        .map_err(|error| fail(format!("stop: {error}")))?;
    within("supervisor exit", running.boss.wait_for_shutdown()).await
}

async fn ping(worker: &ActorRef<Worker>) -> Outcome<u64> {
    within("ping", worker.ask(Ping))
        .await?
        .map_err(|error| fail(format!("ping: {error}")))
}

async fn inject(worker: &ActorRef<Worker>, fault: Fault) -> Outcome<()> {
    let sent = match fault {
        Fault::Panic => worker.tell(Crash).await.map_err(|error| error.to_string()),
        Fault::Error => worker.tell(Fail).await.map_err(|error| error.to_string()),
    };
    sent.map_err(|error| fail(format!("inject: {error}")))
}

/// Pings `worker` until a new incarnation (started after `mark`) answers.
async fn ping_new(worker: &ActorRef<Worker>, mark: u64) -> Outcome<u64> {
    poll_until("new incarnation", || async {
        let incarnation = ping(worker).await?;
        Ok((incarnation > mark).then_some(incarnation))
    })
    .await
}

/// kameo.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Kameo;

impl Contender for Kameo {
    async fn restart_latency(self, fault: Fault, cycles: usize) -> Outcome<Vec<Duration>> {
        let starts = Starts::default();
        let running = start::<false>(1, &starts).await?;
        let worker = &running.children[0];
        let mut times = Vec::with_capacity(cycles);
        for _ in 0..cycles {
            let mark = starts.count();
            let started = Instant::now();
            inject(worker, fault).await?;
            // Queued behind the crash, answered by the next incarnation.
            let incarnation = ping(worker).await?;
            times.push(started.elapsed());
            check_new(incarnation, mark, "kameo")?;
        }
        stop(&running).await?;
        Ok(times)
    }

    async fn restart_storm(self, children: usize, storms: usize) -> Outcome<Vec<Duration>> {
        let starts = Starts::default();
        let running = start::<true>(children, &starts).await?;
        let mut times = Vec::with_capacity(storms);
        for storm in 0..storms {
            let mark = starts.count();
            let started = Instant::now();
            let crashed = &running.children[storm * 7919 % children];
            inject(crashed, Fault::Panic).await?;
            // The crashed child comes back once every sibling has stopped; then all of them.
            ping_new(crashed, mark).await?;
            within(
                "pings",
                futures::future::try_join_all(
                    running.children.iter().map(|child| ping_new(child, mark)),
                ),
            )
            .await??;
            times.push(started.elapsed());
        }
        stop(&running).await?;
        Ok(times)
    }

    async fn ask_round_trip(self, batches: usize, per_batch: usize) -> Outcome<Vec<Duration>> {
        let worker = Worker::spawn(Starts::default());
        // kameo's plain ask, which has no deadline (ractor's `call_t!` and Overseer's ask have
        // one, a timer each).
        let times = per_op_batches(batches, per_batch, || async {
            worker
                .ask(Ping)
                .await
                .map(drop)
                .map_err(|error| fail(format!("ask: {error}")))
        })
        .await?;
        worker.kill();
        Ok(times)
    }

    async fn spawn_children(self, children: usize) -> Outcome<Started> {
        let starts = Starts::default();
        let started = Instant::now();
        let running = start::<false>(children, &starts).await?;
        let elapsed = started.elapsed();
        Ok(Started {
            elapsed,
            keep_alive: Box::new((running.boss, running.children)),
        })
    }

    async fn stop_all(self, children: usize) -> Outcome<Duration> {
        let running = start::<false>(children, &Starts::default()).await?;
        let started = Instant::now();
        stop(&running).await?;
        Ok(started.elapsed())
    }
}
