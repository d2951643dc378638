//! One run of a scenario: its actions carried out in order, each followed by the events it
//! caused, printed as OTP's recordings print them.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

use overseer_supervisor::{
    ChildId, ChildState, EventBus, EventKind, LifecycleEvent, SupervisionTree, SupervisorRef,
};
use tokio::sync::broadcast;
use tokio::time::Instant;

use super::erlang::{erlang_reason, erlang_result, exit_reason};
use super::error::RunError;
use super::report::RunReport;
use super::restarts::Restarts;
use super::worker::WorkerMsg;
use super::world::World;
use crate::scenario::{Action, ActionLine, ChildOpts, Node, Scenario, Strategy, SupNode};

/// How long (on the paused clock) one action may take to settle before the run is abandoned.
const SETTLE_LIMIT: Duration = Duration::from_secs(3600);
/// The step by which the runner lets the paused clock move while it waits for quiescence.
const SETTLE_STEP: Duration = Duration::from_millis(1);

/// The trace's lines so far.
#[derive(Debug, Default)]
struct Trace {
    lines: Vec<String>,
}

impl Trace {
    fn push(&mut self, line: String) {
        self.lines.push(line);
    }

    fn into_text(self) -> String {
        let mut text = self.lines.join("\n");
        text.push('\n');
        text
    }
}

/// A scenario being run: its tree, the events not yet printed and the trace so far.
pub(super) struct Run {
    world: World,
    tree: SupervisionTree,
    events: broadcast::Receiver<LifecycleEvent>,
    trace: Trace,
    /// The instant the current batch of actions runs at.
    batch_start: Instant,
    /// Each name's supervisor.
    parents: HashMap<String, String>,
    dynamic_sups: HashSet<String>,
    root: String,
    /// Names already started once: their next start prints `restart`.
    started_once: HashSet<String>,
}

impl Run {
    /// Starts the scenario's tree and prints its start.
    pub(super) async fn start(scenario: &Scenario, restarts: Restarts) -> Result<Run, RunError> {
        let world = World::new(restarts);
        let root_spec = world.supervisor_spec(&scenario.root);
        let bus = EventBus::new(1 << 16);
        let events = bus.subscribe();
        let tree = SupervisionTree::builder(root_spec)
            .events(bus)
            .call_timeout(SETTLE_LIMIT)
            .start()
            .await?;
        let mut run = Run {
            world,
            tree,
            events,
            trace: Trace::default(),
            batch_start: Instant::now(),
            parents: HashMap::new(),
            dynamic_sups: HashSet::new(),
            root: scenario.root.name.clone(),
            started_once: HashSet::new(),
        };
        run.learn_tree(&scenario.root);
        run.settle(0).await?;
        run.drain_events();
        Ok(run)
    }

    /// Prints the action line's echo, carries it out and prints what followed.
    pub(super) async fn play(&mut self, line: &ActionLine) -> Result<(), RunError> {
        self.trace.push(format!("> {}", line.echo));
        self.act(&line.action, line.line).await
    }

    /// Ends the trace with the `alive:` line, and reports.
    pub(super) async fn report(mut self) -> RunReport {
        let alive = self.alive().await;
        self.trace.push(format!(
            "alive:{}",
            alive
                .iter()
                .fold(String::new(), |line, name| line + " " + name)
        ));
        RunReport {
            trace: self.trace.into_text(),
            alive,
            last_fates: self.world.last_fates(),
        }
    }

    fn learn_tree(&mut self, node: &SupNode) {
        if node.strategy == Strategy::SimpleOneForOne {
            self.dynamic_sups.insert(node.name.clone());
        }
        for child in &node.children {
            self.parents
                .insert(child.name().to_string(), node.name.clone());
            if let Node::Sup(sup) = child {
                self.learn_tree(sup);
            }
        }
    }

    /// Waits until nothing in the tree is ready to run and no supervisor is busy. On a paused
    /// current-thread runtime, the clock moves only when every task is idle, so a completed
    /// sleep means the runtime was idle when it woke; a busy supervisor at that point is waiting
    /// for a timer (a shutdown timeout), so the wait goes on.
    async fn settle(&mut self, line: usize) -> Result<(), RunError> {
        let started = Instant::now();
        loop {
            tokio::time::sleep(SETTLE_STEP).await;
            if self.tree.operations_in_progress() == 0 {
                return Ok(());
            }
            if started.elapsed() > SETTLE_LIMIT {
                return Err(RunError::NeverSettled { line });
            }
        }
    }

    fn drain_events(&mut self) {
        while let Ok(event) = self.events.try_recv() {
            let name = event.path.name().to_string();
            let line = match event.kind {
                EventKind::Started => {
                    if self.started_once.insert(name.clone()) {
                        format!("start {name}")
                    } else {
                        format!("restart {name}")
                    }
                }
                EventKind::StartFailed { .. } => format!("start_failed {name}"),
                EventKind::Stopped { reason } => format!("stop {name} {}", erlang_reason(&reason)),
                EventKind::Escalated { .. } => format!("escalate {name}"),
                EventKind::AutoShutdown => continue,
                // A kind OTP's trace has no line for.
                _ => continue,
            };
            self.trace.push(line);
        }
    }

    async fn act(&mut self, action: &Action, line: usize) -> Result<(), RunError> {
        let stopped_dynamic_child = match action {
            Action::Terminate(name) | Action::Restart(name) | Action::Delete(name)
                if self.is_stopped_dynamic_child(name).await =>
            {
                Some(name)
            }
            _ => None,
        };
        let result = if let Some(name) = stopped_dynamic_child {
            // OTP names a dynamic child by its pid, and one that is not running has none: the
            // recording prints that the action named a worker that is not running, as for
            // `crash`, and no `result` line.
            self.trace.push(format!("error not_running {name}"));
            None
        } else {
            self.call(action).await
        };
        self.settle(line).await?;
        self.drain_events();
        if let Some(result) = result {
            self.trace.push(format!("result {result}"));
        }
        Ok(())
    }

    /// Carries out one action; returns what an API action returned, in Erlang form.
    async fn call(&mut self, action: &Action) -> Option<String> {
        match action {
            Action::Crash(name) | Action::Kill(name) | Action::Exit { name, .. } => {
                match self.world.worker(name) {
                    None => self.trace.push(format!("error not_running {name}")),
                    Some(worker) => match action {
                        Action::Crash(_) => {
                            let _ = worker.send_message(WorkerMsg::Crash);
                        }
                        Action::Exit { reason, .. } => {
                            let _ = worker.send_message(WorkerMsg::Exit(exit_reason(reason)));
                        }
                        _ => worker.kill(),
                    },
                }
                None
            }
            Action::FailStart { name, times } => {
                self.world.fail_starts(name, *times);
                None
            }
            Action::Advance(seconds) => {
                let target = self.batch_start + Duration::from_secs(*seconds);
                let now = Instant::now();
                if target > now {
                    tokio::time::advance(target - now).await;
                }
                self.batch_start = target;
                None
            }
            Action::Terminate(name) => match self.parent_of(name).await {
                Some(parent) => Some(erlang_result(
                    parent.terminate_child(name.as_str()).await,
                    |()| "ok".into(),
                )),
                None => Some("{error,not_found}".into()),
            },
            Action::Restart(name) => match self.parent_of(name).await {
                Some(parent) => Some(erlang_result(
                    parent.restart_child(name.as_str()).await,
                    |_| format!("{{ok,{name}}}"),
                )),
                None => Some("{error,not_found}".into()),
            },
            Action::Delete(name) => match self.parent_of(name).await {
                Some(parent) => Some(erlang_result(
                    parent.delete_child(name.as_str()).await,
                    |()| "ok".into(),
                )),
                None => Some("{error,not_found}".into()),
            },
            Action::Add {
                sup,
                name,
                restart,
                shutdown,
                significant,
                stubborn,
            } => match self.supervisor(sup).await {
                None => {
                    if self.dynamic_sups.contains(sup) {
                        // Named as a dynamic child: one that never ran is not running either.
                        self.parents
                            .entry(name.clone())
                            .or_insert_with(|| sup.clone());
                    }
                    Some("{error,noproc}".into())
                }
                Some(supervisor) => {
                    self.parents.insert(name.clone(), sup.clone());
                    let added = if self.dynamic_sups.contains(sup) {
                        supervisor.start_dynamic_child(name.as_str()).await
                    } else {
                        let opts = ChildOpts {
                            restart: restart.unwrap_or_default(),
                            shutdown: *shutdown,
                            significant: *significant,
                        };
                        supervisor
                            .start_child(self.world.worker_spec(name, &opts, *stubborn))
                            .await
                    };
                    Some(erlang_result(added, |_| format!("{{ok,{name}}}")))
                }
            },
            Action::Shutdown => {
                let _ = self.tree.shutdown(SETTLE_LIMIT).await;
                None
            }
        }
    }

    /// Whether `name` is a dynamic child (added to a `simple_one_for_one` supervisor) that is
    /// not running now: it exited, was terminated, or went with its supervisor.
    async fn is_stopped_dynamic_child(&self, name: &str) -> bool {
        let Some(parent) = self.parents.get(name) else {
            return false;
        };
        if !self.dynamic_sups.contains(parent) {
            return false;
        }
        let Some(supervisor) = self.supervisor(parent).await else {
            return true;
        };
        let Ok(children) = supervisor.which_children().await else {
            return true;
        };
        let id = ChildId::from(name);
        !children
            .iter()
            .any(|child| child.id == id && child.state == ChildState::Running)
    }

    /// The running supervisor named `name`, found by walking the tree from the root.
    async fn supervisor(&self, name: &str) -> Option<SupervisorRef> {
        let mut chain = vec![name.to_string()];
        while let Some(parent) = self.parents.get(chain.last()?) {
            chain.push(parent.clone());
        }
        if chain.last()? != &self.root || !self.tree.root().is_alive() {
            return None;
        }
        let mut current = self.tree.root().clone();
        for step in chain.iter().rev().skip(1) {
            let children = current.which_children().await.ok()?;
            let child = children
                .iter()
                .find(|child| child.id == ChildId::from(step.as_str()))?;
            current = child.supervisor()?;
        }
        Some(current)
    }

    async fn parent_of(&self, name: &str) -> Option<SupervisorRef> {
        let parent = self.parents.get(name)?.clone();
        self.supervisor(&parent).await
    }

    /// Every live process of the tree, supervisors included, sorted.
    async fn alive(&self) -> BTreeSet<String> {
        let mut alive = BTreeSet::new();
        if !self.tree.root().is_alive() {
            return alive;
        }
        alive.insert(self.root.clone());
        let mut pending = vec![self.tree.root().clone()];
        while let Some(supervisor) = pending.pop() {
            let Ok(children) = supervisor.which_children().await else {
                continue;
            };
            for child in children {
                if child.state != ChildState::Running {
                    continue;
                }
                alive.insert(child.id.to_string());
                if let Some(nested) = child.supervisor() {
                    pending.push(nested);
                }
            }
        }
        alive
    }
}
