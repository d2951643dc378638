//! Raw ractor: the worker actor every ractor-based system here runs, and a minimal hand-rolled
//! supervisor (the "raw ractor" peer): on `ActorFailed` it spawns a new linked child and hands
//! the new `ActorRef` to whoever asks.

use std::time::{Duration, Instant};

use ractor::{call_t, Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};

use super::{check_new, Contender, Fault, Started, Starts, INJECTED_ERROR, INJECTED_PANIC};
use crate::measure::{fail, per_op_batches, within, Outcome, STEP_TIMEOUT, STEP_TIMEOUT_MS};

/// What a worker understands.
#[derive(Debug)]
pub(crate) enum WorkerMsg {
    /// Answer with this incarnation's number.
    Ping(RpcReplyPort<u64>),
    /// Panic.
    Crash,
    /// Return an error from the handler.
    Fail,
}

impl WorkerMsg {
    /// The message that injects `fault`.
    pub(crate) fn injecting(fault: Fault) -> Self {
        match fault {
            Fault::Panic => Self::Crash,
            Fault::Error => Self::Fail,
        }
    }
}

/// The child of every ractor-based system here (raw, ractor-supervisor, Overseer's tree), so
/// they differ only in how they supervise it. Its state is its incarnation number.
#[derive(Debug)]
pub(crate) struct Worker;

impl Actor for Worker {
    type Msg = WorkerMsg;
    type State = u64;
    type Arguments = Starts;

    async fn pre_start(
        &self,
        _: ActorRef<WorkerMsg>,
        starts: Starts,
    ) -> Result<u64, ActorProcessingErr> {
        Ok(starts.next())
    }

    async fn handle(
        &self,
        _: ActorRef<WorkerMsg>,
        message: WorkerMsg,
        incarnation: &mut u64,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            WorkerMsg::Ping(reply) => {
                let _ = reply.send(*incarnation);
                Ok(())
            }
            WorkerMsg::Crash => panic!("{INJECTED_PANIC}"),
            WorkerMsg::Fail => Err(INJECTED_ERROR.into()),
        }
    }
}

/// Asks a worker for its incarnation number (`call_t!`).
pub(crate) async fn ping(worker: &ActorRef<WorkerMsg>) -> Outcome<u64> {
    call_t!(worker, WorkerMsg::Ping, STEP_TIMEOUT_MS)
        .map_err(|error| fail(format!("ping: {error}")))
}

/// Sends a worker the message that injects `fault`.
pub(crate) fn inject(worker: &ActorRef<WorkerMsg>, fault: Fault) -> Outcome<()> {
    worker
        .cast(WorkerMsg::injecting(fault))
        .map_err(|error| fail(format!("inject: {error}")))
}

/// Which children the hand-rolled supervisor restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Strategy {
    /// The failed one.
    OneForOne,
    /// All of them: the others are killed (and waited for), then all are spawned again.
    OneForAll,
}

/// The supervisor's current children and how many times the set has changed.
#[derive(Debug, Clone)]
pub(crate) struct Generation {
    /// 1 for the first children, incremented by every restart.
    pub(crate) number: u64,
    /// The current children, in start order.
    pub(crate) children: Vec<ActorRef<WorkerMsg>>,
}

/// What the hand-rolled supervisor understands.
#[derive(Debug)]
pub(crate) enum SupervisorMsg {
    /// Answer with the current children once their generation is above `after` (at once if it
    /// already is).
    Children {
        /// The generation the caller already knows.
        after: u64,
        /// Where the answer goes.
        reply: RpcReplyPort<Generation>,
    },
}

/// How the hand-rolled supervisor starts.
#[derive(Debug)]
pub(crate) struct SupervisorArgs {
    /// How many workers.
    pub(crate) children: usize,
    /// What to restart.
    pub(crate) strategy: Strategy,
    /// Shared with the workers.
    pub(crate) starts: Starts,
}

/// The hand-rolled supervisor's state.
#[derive(Debug)]
pub(crate) struct SupervisorState {
    strategy: Strategy,
    starts: Starts,
    current: Generation,
    waiting: Vec<(u64, RpcReplyPort<Generation>)>,
}

/// A minimal supervisor written directly on ractor: what a ractor user writes by hand.
#[derive(Debug)]
pub(crate) struct HandRolled;

async fn spawn_worker(
    supervisor: &ActorRef<SupervisorMsg>,
    starts: &Starts,
) -> Result<ActorRef<WorkerMsg>, ActorProcessingErr> {
    let (worker, _) =
        Actor::spawn_linked(None, Worker, starts.clone(), supervisor.get_cell()).await?;
    Ok(worker)
}

impl Actor for HandRolled {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = SupervisorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<SupervisorMsg>,
        args: SupervisorArgs,
    ) -> Result<SupervisorState, ActorProcessingErr> {
        let mut children = Vec::with_capacity(args.children);
        for _ in 0..args.children {
            children.push(spawn_worker(&myself, &args.starts).await?);
        }
        Ok(SupervisorState {
            strategy: args.strategy,
            starts: args.starts,
            current: Generation {
                number: 1,
                children,
            },
            waiting: Vec::new(),
        })
    }

    async fn post_stop(
        &self,
        myself: ActorRef<SupervisorMsg>,
        _: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        myself
            .stop_children_and_wait(None, Some(STEP_TIMEOUT * 4))
            .await;
        Ok(())
    }

    async fn handle(
        &self,
        _: ActorRef<SupervisorMsg>,
        SupervisorMsg::Children { after, reply }: SupervisorMsg,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        if state.current.number > after {
            let _ = reply.send(state.current.clone());
        } else {
            state.waiting.push((after, reply));
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<SupervisorMsg>,
        event: SupervisionEvent,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        let exited = match event {
            SupervisionEvent::ActorFailed(cell, _) => cell.get_id(),
            SupervisionEvent::ActorTerminated(cell, _, _) => cell.get_id(),
            _ => return Ok(()),
        };
        // Exits of children this supervisor replaced itself are not current: ignored.
        let Some(index) = state
            .current
            .children
            .iter()
            .position(|child| child.get_id() == exited)
        else {
            return Ok(());
        };
        match state.strategy {
            Strategy::OneForOne => {
                state.current.children[index] = spawn_worker(&myself, &state.starts).await?;
            }
            Strategy::OneForAll => {
                let old = std::mem::take(&mut state.current.children);
                for child in &old {
                    child.kill();
                }
                for child in &old {
                    let _ = child.get_cell().wait(Some(STEP_TIMEOUT)).await;
                }
                for _ in 0..old.len() {
                    state
                        .current
                        .children
                        .push(spawn_worker(&myself, &state.starts).await?);
                }
            }
        }
        state.current.number += 1;
        let number = state.current.number;
        for (after, reply) in std::mem::take(&mut state.waiting) {
            if number > after {
                let _ = reply.send(state.current.clone());
            } else {
                state.waiting.push((after, reply));
            }
        }
        Ok(())
    }
}

/// The supervisor's children once their generation is above `after`.
async fn children(supervisor: &ActorRef<SupervisorMsg>, after: u64) -> Outcome<Generation> {
    call_t!(
        supervisor,
        |reply| SupervisorMsg::Children { after, reply },
        STEP_TIMEOUT_MS
    )
    .map_err(|error| fail(format!("children: {error}")))
}

async fn start(
    children_count: usize,
    strategy: Strategy,
    starts: &Starts,
) -> Outcome<(ActorRef<SupervisorMsg>, Generation)> {
    let args = SupervisorArgs {
        children: children_count,
        strategy,
        starts: starts.clone(),
    };
    let (supervisor, _) = Actor::spawn(None, HandRolled, args).await?;
    let current = children(&supervisor, 0).await?;
    Ok((supervisor, current))
}

async fn stop(supervisor: &ActorRef<SupervisorMsg>) -> Outcome<()> {
    supervisor
        .stop_and_wait(None, Some(STEP_TIMEOUT * 4))
        .await
        .map_err(|error| fail(format!("stop: {error}")))
}

/// Raw ractor, supervised by [`HandRolled`] or not supervised at all.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawRactor {
    supervised: bool,
}

impl RawRactor {
    /// Workers under the hand-rolled supervisor.
    pub(crate) const SUPERVISED: Self = Self { supervised: true };
    /// Bare workers, spawned with `Actor::spawn` and linked to nothing.
    pub(crate) const UNSUPERVISED: Self = Self { supervised: false };
}

impl Contender for RawRactor {
    async fn restart_latency(self, fault: Fault, cycles: usize) -> Outcome<Vec<Duration>> {
        let starts = Starts::default();
        let (supervisor, mut current) = start(1, Strategy::OneForOne, &starts).await?;
        let mut times = Vec::with_capacity(cycles);
        for _ in 0..cycles {
            let mark = starts.count();
            let started = Instant::now();
            inject(&current.children[0], fault)?;
            let next = children(&supervisor, current.number).await?;
            let incarnation = ping(&next.children[0]).await?;
            times.push(started.elapsed());
            check_new(incarnation, mark, "raw ractor")?;
            current = next;
        }
        stop(&supervisor).await?;
        Ok(times)
    }

    async fn restart_storm(self, children_count: usize, storms: usize) -> Outcome<Vec<Duration>> {
        let starts = Starts::default();
        let (supervisor, mut current) = start(children_count, Strategy::OneForAll, &starts).await?;
        let mut times = Vec::with_capacity(storms);
        for storm in 0..storms {
            let mark = starts.count();
            let started = Instant::now();
            inject(
                &current.children[storm * 7919 % children_count],
                Fault::Panic,
            )?;
            let next = children(&supervisor, current.number).await?;
            let answers = within(
                "pings",
                futures::future::join_all(next.children.iter().map(ping)),
            )
            .await?;
            times.push(started.elapsed());
            for incarnation in answers {
                check_new(incarnation?, mark, "raw ractor")?;
            }
            current = next;
        }
        stop(&supervisor).await?;
        Ok(times)
    }

    async fn ask_round_trip(self, batches: usize, per_batch: usize) -> Outcome<Vec<Duration>> {
        // A bare actor, as in benches/call_path.rs.
        let (worker, _) = Actor::spawn(None, Worker, Starts::default()).await?;
        let times = per_op_batches(batches, per_batch, || async {
            ping(&worker).await.map(|_| ())
        })
        .await?;
        worker.stop(None);
        Ok(times)
    }

    async fn spawn_children(self, children_count: usize) -> Outcome<Started> {
        let starts = Starts::default();
        if self.supervised {
            let started = Instant::now();
            let (supervisor, current) = start(children_count, Strategy::OneForOne, &starts).await?;
            let elapsed = started.elapsed();
            Ok(Started {
                elapsed,
                keep_alive: Box::new((supervisor, current)),
            })
        } else {
            let mut workers = Vec::with_capacity(children_count);
            let started = Instant::now();
            for _ in 0..children_count {
                workers.push(Actor::spawn(None, Worker, starts.clone()).await?.0);
            }
            if let Some(last) = workers.last() {
                ping(last).await?;
            }
            let elapsed = started.elapsed();
            Ok(Started {
                elapsed,
                keep_alive: Box::new(workers),
            })
        }
    }

    async fn stop_all(self, children_count: usize) -> Outcome<Duration> {
        let starts = Starts::default();
        let (supervisor, _current) = start(children_count, Strategy::OneForOne, &starts).await?;
        let started = Instant::now();
        stop(&supervisor).await?;
        Ok(started.elapsed())
    }
}
