//! Overseer's adapter, in two forms:
//!
//! * [`OverseerTree`]: a [`SupervisionTree`] over the same ractor [`Worker`] as the other
//!   ractor-based systems, made with [`ChildSpec::actor`] (so spawned inside Overseer's
//!   `Supervised` wrapper). A restarted worker is a new actor with a new `ActorRef`; the caller
//!   finds it with [`SupervisorRef::which_children`].
//! * [`OverseerAgents`]: a [`System`] of [`Agent`]s asked through [`AgentRef`], whose queue
//!   outlives incarnations, so the caller keeps its handle and asks again. Since commit
//!   0d87cba an agent is restarted in place (rebuilt in the same actor).
//!
//! The tree's workers are not restarted in place: that takes a worker that catches its own
//! failure and implements `InPlaceChild`. Switching to one changes three functions:
//! [`worker_child`] (how a worker is declared), [`restarted`] (how a caller learns that a
//! worker has been started again: its `Started` event on the tree's event bus) and
//! [`workers_other_than`] (how it then finds the current incarnations; with the actor kept,
//! the caller keeps its `ActorRef`, and the incarnation number in the answer tells a new
//! incarnation from the old one).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use ::overseer::agent::{Agent, AgentContext, AgentError, AgentRef, AgentSpec, System};
use ::overseer::breaker::{BreakerConfig, BreakerRegistry};
use ::overseer::budget::{Budget, Limits, TripReason};
use ::overseer::supervisor::{
    ChildSpec, ChildState, EventKind, LifecycleEvent, Shutdown, Strategy, SupervisionTree,
    SupervisorRef, SupervisorSpec,
};
use ractor::{ActorId, ActorRef};
use tokio::sync::broadcast::{error::RecvError, Receiver};

use super::raw_ractor::{inject, ping, Worker, WorkerMsg};
use super::{check_new, Contender, Fault, Started, Starts, INJECTED_PANIC};
use crate::measure::{fail, per_op_batches, poll_until, within, Outcome, STEP_TIMEOUT};

/// Restart intensity that no benchmark reaches, in the one-second period.
const NO_ESCALATION: u32 = u32::MAX;

/// A supervisor spec with Overseer's `strategy`, an intensity no benchmark reaches, and
/// `children`.
fn supervisor(strategy: Strategy, children: impl IntoIterator<Item = ChildSpec>) -> SupervisorSpec {
    SupervisorSpec::new("root", strategy)
        .intensity(NO_ESCALATION, Duration::from_secs(1))
        .children(children)
}

/// How a worker is declared: a ractor actor made fresh for each incarnation.
fn worker_child(index: usize, starts: &Starts, shutdown: Option<Shutdown>) -> ChildSpec {
    let starts = starts.clone();
    let child = ChildSpec::actor(worker_name(index), move || (Worker, starts.clone()));
    match shutdown {
        Some(shutdown) => child.shutdown(shutdown),
        None => child,
    }
}

/// The supervisor's workers in start order, once every one is running and none is one of the
/// actors in `old` (polls `which_children`: the supervisor answers between its own restarts).
async fn workers_other_than(
    root: &SupervisorRef,
    old: &HashSet<ActorId>,
) -> Outcome<Vec<ActorRef<WorkerMsg>>> {
    poll_until("which_children", || async {
        let children = root.which_children().await?;
        let fresh = children.iter().all(|child| {
            child.state == ChildState::Running
                && child
                    .cell
                    .as_ref()
                    .is_some_and(|cell| !old.contains(&cell.get_id()))
        });
        Ok(fresh.then(|| {
            children
                .into_iter()
                .filter_map(|child| child.cell.map(ActorRef::<WorkerMsg>::from))
                .collect()
        }))
    })
    .await
}

/// Waits for the `Started` event of the worker at `index` (events are published as the
/// supervisor acts; subscribe before the crash), then returns the workers as
/// [`workers_other_than`] does. Waiting on the bus instead of polling `which_children` keeps
/// the caller from spinning against the supervisor while the crashed worker is still exiting.
async fn restarted(
    events: &mut Receiver<LifecycleEvent>,
    root: &SupervisorRef,
    index: usize,
    old: &HashSet<ActorId>,
) -> Outcome<Vec<ActorRef<WorkerMsg>>> {
    let name = worker_name(index);
    within("restart event", async {
        loop {
            match events.recv().await {
                Ok(event) => {
                    if matches!(event.kind, EventKind::Started) && event.path.name() == name {
                        return Ok(());
                    }
                }
                // Fell behind: polling below still finds the new workers.
                Err(RecvError::Lagged(_)) => return Ok(()),
                Err(RecvError::Closed) => return Err(fail("the tree's event bus closed")),
            }
        }
    })
    .await??;
    workers_other_than(root, old).await
}

fn worker_name(index: usize) -> String {
    format!("w{index}")
}

fn ids(workers: &[ActorRef<WorkerMsg>]) -> HashSet<ActorId> {
    workers.iter().map(|worker| worker.get_id()).collect()
}

async fn shut_down(tree: &SupervisionTree) -> Outcome<()> {
    tree.shutdown(STEP_TIMEOUT * 4).await?;
    Ok(())
}

/// Overseer's supervision tree over plain ractor workers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OverseerTree {
    shutdown: Option<Shutdown>,
}

impl OverseerTree {
    /// Workers with the default shutdown (OTP's: asked to stop, killed after 5 s).
    pub(crate) const DEFAULT: Self = Self { shutdown: None };
    /// Workers with `Shutdown::BrutalKill`: killed at once when a group restart stops them.
    pub(crate) const BRUTAL_KILL: Self = Self {
        shutdown: Some(Shutdown::BrutalKill),
    };

    fn spec(self, strategy: Strategy, children: usize, starts: &Starts) -> SupervisorSpec {
        supervisor(
            strategy,
            (0..children).map(|index| worker_child(index, starts, self.shutdown)),
        )
    }
}

impl Contender for OverseerTree {
    async fn restart_latency(self, fault: Fault, cycles: usize) -> Outcome<Vec<Duration>> {
        let starts = Starts::default();
        let tree = SupervisionTree::start(self.spec(Strategy::OneForOne, 1, &starts)).await?;
        let root = tree.root().clone();
        let mut events = tree.subscribe();
        let mut current = workers_other_than(&root, &HashSet::new()).await?;
        let mut times = Vec::with_capacity(cycles);
        for _ in 0..cycles {
            let mark = starts.count();
            let started = Instant::now();
            inject(&current[0], fault)?;
            let next = restarted(&mut events, &root, 0, &ids(&current)).await?;
            let incarnation = ping(&next[0]).await?;
            times.push(started.elapsed());
            check_new(incarnation, mark, "overseer tree")?;
            current = next;
        }
        shut_down(&tree).await?;
        Ok(times)
    }

    async fn restart_storm(self, children: usize, storms: usize) -> Outcome<Vec<Duration>> {
        let starts = Starts::default();
        let tree =
            SupervisionTree::start(self.spec(Strategy::OneForAll, children, &starts)).await?;
        let root = tree.root().clone();
        let mut events = tree.subscribe();
        let mut current = workers_other_than(&root, &HashSet::new()).await?;
        let mut times = Vec::with_capacity(storms);
        for storm in 0..storms {
            let mark = starts.count();
            let started = Instant::now();
            inject(&current[storm * 7919 % children], Fault::Panic)?;
            // Children start again in order: the last one's start ends the group restart.
            let next = restarted(&mut events, &root, children - 1, &ids(&current)).await?;
            let answers = within("pings", futures::future::join_all(next.iter().map(ping))).await?;
            times.push(started.elapsed());
            for incarnation in answers {
                check_new(incarnation?, mark, "overseer tree")?;
            }
            current = next;
        }
        shut_down(&tree).await?;
        Ok(times)
    }

    async fn ask_round_trip(self, batches: usize, per_batch: usize) -> Outcome<Vec<Duration>> {
        // A ractor `call` to a worker inside Overseer's `Supervised` wrapper.
        let tree =
            SupervisionTree::start(self.spec(Strategy::OneForOne, 1, &Starts::default())).await?;
        let workers = workers_other_than(tree.root(), &HashSet::new()).await?;
        let times = per_op_batches(batches, per_batch, || async {
            ping(&workers[0]).await.map(|_| ())
        })
        .await?;
        shut_down(&tree).await?;
        Ok(times)
    }

    async fn spawn_children(self, children: usize) -> Outcome<Started> {
        let starts = Starts::default();
        let spec = self.spec(Strategy::OneForOne, children, &starts);
        let started = Instant::now();
        let tree = SupervisionTree::start(spec).await?;
        let counts = tree.root().count_children().await?;
        let elapsed = started.elapsed();
        if counts.active != children {
            return Err(fail(format!(
                "{} of {children} children running",
                counts.active
            )));
        }
        Ok(Started {
            elapsed,
            keep_alive: Box::new(tree),
        })
    }

    async fn stop_all(self, children: usize) -> Outcome<Duration> {
        let spec = self.spec(Strategy::OneForOne, children, &Starts::default());
        let tree = SupervisionTree::start(spec).await?;
        let started = Instant::now();
        shut_down(&tree).await?;
        Ok(started.elapsed())
    }
}

/// An agent's task.
#[derive(Debug)]
pub(crate) enum Task {
    /// Answer with the incarnation number.
    Ping,
    /// Panic.
    Crash,
    /// Return a fatal error (an `AgentError::Failed` would not stop the agent).
    Fail,
}

/// The agent: its state is its incarnation number, taken when its factory makes it.
#[derive(Debug)]
pub(crate) struct Probe {
    incarnation: u64,
}

impl Agent for Probe {
    type Task = Task;
    type Output = u64;

    async fn handle(&mut self, _: &mut AgentContext, task: Task) -> Result<u64, AgentError> {
        match task {
            Task::Ping => Ok(self.incarnation),
            Task::Crash => panic!("{INJECTED_PANIC}"),
            Task::Fail => Err(AgentError::fatal(super::INJECTED_ERROR)),
        }
    }
}

/// A system of `children` agents under one supervisor, not started yet, and its tree's spec.
fn system_of(
    strategy: Strategy,
    children: usize,
    starts: &Starts,
    budget: Option<Budget>,
) -> Outcome<(System, SupervisorSpec)> {
    let mut builder = System::builder();
    if let Some(budget) = budget {
        builder = builder.budget(budget);
    }
    let system = builder.build()?;
    let mut agents = Vec::with_capacity(children);
    for index in 0..children {
        let starts = starts.clone();
        agents.push(
            system.agent(AgentSpec::new(format!("a{index}"), move || Probe {
                incarnation: starts.next(),
            }))?,
        );
    }
    Ok((system, supervisor(strategy, agents)))
}

fn handles(system: &System, children: usize) -> Outcome<Vec<AgentRef<Probe>>> {
    (0..children)
        .map(|index| Ok(system.agent_ref::<Probe>(&format!("a{index}"))?))
        .collect()
}

/// Asks `agent` until a new incarnation (started after `mark`) answers.
async fn ask_new(agent: &AgentRef<Probe>, mark: u64) -> Outcome<u64> {
    poll_until("new incarnation", || async {
        let incarnation = agent.ask(Task::Ping).await?;
        Ok((incarnation > mark).then_some(incarnation))
    })
    .await
}

fn injecting(fault: Fault) -> Task {
    match fault {
        Fault::Panic => Task::Crash,
        Fault::Error => Task::Fail,
    }
}

/// Times `batches` batches of `per_batch` asks to the started `system`'s agent `a0`, then
/// shuts the system down.
async fn time_asks(system: &System, batches: usize, per_batch: usize) -> Outcome<Vec<Duration>> {
    let agent = system.agent_ref::<Probe>("a0")?;
    let times = per_op_batches(batches, per_batch, || async {
        agent.ask(Task::Ping).await.map(drop).map_err(Into::into)
    })
    .await?;
    shut_down_system(system).await?;
    Ok(times)
}

async fn shut_down_system(system: &System) -> Outcome<()> {
    system.shutdown(STEP_TIMEOUT * 4).await?;
    Ok(())
}

/// Overseer's system of agents.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OverseerAgents;

impl Contender for OverseerAgents {
    async fn restart_latency(self, fault: Fault, cycles: usize) -> Outcome<Vec<Duration>> {
        let starts = Starts::default();
        let (system, spec) = system_of(Strategy::OneForOne, 1, &starts, None)?;
        system.start(spec).await?;
        let agent = system.agent_ref::<Probe>("a0")?;
        let mut times = Vec::with_capacity(cycles);
        for _ in 0..cycles {
            let mark = starts.count();
            let started = Instant::now();
            agent.tell(injecting(fault))?;
            // Queued behind the crash, taken by the next incarnation.
            let incarnation = agent.ask(Task::Ping).await?;
            times.push(started.elapsed());
            check_new(incarnation, mark, "overseer agents")?;
        }
        shut_down_system(&system).await?;
        Ok(times)
    }

    async fn restart_storm(self, children: usize, storms: usize) -> Outcome<Vec<Duration>> {
        let starts = Starts::default();
        let (system, spec) = system_of(Strategy::OneForAll, children, &starts, None)?;
        system.start(spec).await?;
        let agents = handles(&system, children)?;
        let mut times = Vec::with_capacity(storms);
        for storm in 0..storms {
            let mark = starts.count();
            let started = Instant::now();
            let crashed = &agents[storm * 7919 % children];
            crashed.tell(Task::Crash)?;
            ask_new(crashed, mark).await?;
            within(
                "asks",
                futures::future::try_join_all(agents.iter().map(|agent| ask_new(agent, mark))),
            )
            .await??;
            times.push(started.elapsed());
        }
        shut_down_system(&system).await?;
        Ok(times)
    }

    async fn ask_round_trip(self, batches: usize, per_batch: usize) -> Outcome<Vec<Duration>> {
        let (system, spec) = system_of(Strategy::OneForOne, 1, &Starts::default(), None)?;
        system.start(spec).await?;
        time_asks(&system, batches, per_batch).await
    }

    async fn spawn_children(self, children: usize) -> Outcome<Started> {
        let starts = Starts::default();
        let (system, spec) = system_of(Strategy::OneForOne, children, &starts, None)?;
        let started = Instant::now();
        system.start(spec).await?;
        let tree = system.tree().ok_or_else(|| fail("no tree"))?;
        let counts = tree.root().count_children().await?;
        let elapsed = started.elapsed();
        if counts.active != children || starts.count() != children as u64 {
            return Err(fail(format!(
                "{} of {children} agents running, {} started",
                counts.active,
                starts.count()
            )));
        }
        Ok(Started {
            elapsed,
            keep_alive: Box::new(system),
        })
    }

    async fn stop_all(self, children: usize) -> Outcome<Duration> {
        let budget = Budget::builder().build()?;
        let (system, spec) = system_of(
            Strategy::OneForOne,
            children,
            &Starts::default(),
            Some(budget.clone()),
        )?;
        system.start(spec).await?;
        let tree = system.tree().ok_or_else(|| fail("no tree"))?;
        let started = Instant::now();
        budget.trip(TripReason::manual("benchmark"));
        if !tree.wait_for_exit(STEP_TIMEOUT * 4).await {
            return Err(fail("the tree did not stop after the trip"));
        }
        Ok(started.elapsed())
    }
}

/// Overseer's system of agents with a circuit breaker and a budget: the governed call path
/// (the breaker's permit and outcome, the budget's reservation and commit, the kill switch's
/// watch), asked as [`OverseerAgents`] is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OverseerAgentsGoverned;

impl Contender for OverseerAgentsGoverned {
    async fn ask_round_trip(self, batches: usize, per_batch: usize) -> Outcome<Vec<Duration>> {
        let budget = Budget::builder()
            .process_limits(Limits::new().tokens(u64::MAX / 2))
            .build()?;
        let system = System::builder()
            .breakers(BreakerRegistry::new(BreakerConfig::default())?)
            .budget(budget)
            .build()?;
        let agent = system.agent(AgentSpec::new("a0", || Probe { incarnation: 0 }))?;
        system
            .start(supervisor(Strategy::OneForOne, [agent]))
            .await?;
        time_asks(&system, batches, per_batch).await
    }
}
