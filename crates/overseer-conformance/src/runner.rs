//! Runs a parsed [`Scenario`] against real Overseer supervisors on a paused tokio clock and
//! prints the trace in the format of OTP's recordings.
//!
//! The workers are small ractor actors that crash, exit with a given reason, ignore the polite
//! shutdown (`stubborn`) or fail to start, on command. Every batch of actions between two
//! `advance` lines runs at one instant of the paused clock; after each action the runner waits
//! until the tree has settled (no actor ready to run and no supervisor busy), so each action's
//! events are printed before the next action's echo.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use overseer_supervisor::{
    child_reply, AfterFailure, AutoShutdown as SupAutoShutdown, ChildExit, ChildFate, ChildId,
    ChildOpError, ChildSpec, ChildState, EventBus, EventKind, ExitReason, FailureReporter,
    InPlaceChild, LifecycleEvent, Restart as SupRestart, Shutdown, StartContext, StartError,
    Strategy as SupStrategy, SupervisionTree, SupervisorRef, SupervisorSpec, TreeError,
};
use ractor::{Actor, ActorProcessingErr, ActorRef, ActorStatus};
use tokio::sync::{broadcast, oneshot};
use tokio::time::Instant;

use crate::scenario::{
    Action, AutoShutdown, ChildOpts, Node, Restart, Scenario, ShutdownSpec, Strategy, SupNode,
    WorkerNode,
};
use crate::term::Term;

/// How long (on the paused clock) one action may take to settle before the run is abandoned.
const SETTLE_LIMIT: Duration = Duration::from_secs(3600);
/// The step by which the runner lets the paused clock move while it waits for quiescence.
const SETTLE_STEP: Duration = Duration::from_millis(1);

/// Why a scenario could not be run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The scenario text is malformed.
    #[error(transparent)]
    Parse(#[from] crate::ScenarioError),
    /// The supervisors rejected the tree or failed to start it.
    #[error("the tree could not start: {0}")]
    Tree(#[from] TreeError),
    /// The tokio runtime could not be built.
    #[error("could not build the tokio runtime: {0}")]
    Runtime(#[from] std::io::Error),
    /// An action did not settle within an hour of (paused) time.
    #[error("line {line}: the tree did not settle")]
    NeverSettled {
        /// The action's line.
        line: usize,
    },
}

/// Parses and runs a scenario on a fresh single-threaded runtime with a paused clock; returns
/// the trace, one event per line, ending with the `alive:` line and a newline. Like
/// [`run_blocking`], it must not be called from inside a tokio runtime.
///
/// ```
/// let trace = overseer_conformance::runner::run_text(
///     "sup root one_for_one intensity=1 period=5\n  child a\ncrash a\n",
/// )?;
/// assert_eq!(trace, "start root\nstart a\n> crash a\nstop a crash\nrestart a\nalive: a root\n");
/// # Ok::<(), overseer_conformance::runner::RunError>(())
/// ```
pub fn run_text(text: &str) -> Result<String, RunError> {
    run_text_with(text, Restarts::NewActor)
}

/// How the scenario's workers are restarted: the trace must be the same either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Restarts {
    /// Each restart spawns a new actor (OTP's way, and the default for any ractor actor).
    #[default]
    NewActor,
    /// Workers survive their failures and are rebuilt in place
    /// ([`InPlaceChild`]) when their supervisor decides so.
    InPlace,
    /// As [`InPlace`](Self::InPlace), and a worker carries out its own restart when its
    /// supervisor lets it ([`FailureReporter::failed`]).
    InPlaceHere,
}

impl Restarts {
    /// Whether workers are restarted in place.
    pub fn in_place(self) -> bool {
        matches!(self, Self::InPlace | Self::InPlaceHere)
    }
}

/// [`run_text`] with workers restarted as `restarts` says.
pub fn run_text_with(text: &str, restarts: Restarts) -> Result<String, RunError> {
    let scenario = crate::parse(text)?;
    run_blocking_with(&scenario, restarts)
}

/// What a run left behind, beyond its trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunReport {
    /// The trace, as [`run_text`] returns it.
    pub trace: String,
    /// The children running at the end (the trace's `alive:` line).
    pub alive: BTreeSet<String>,
    /// The last [`ChildFate`] each child (worker or supervisor) was told, by child id; a child
    /// never told one is absent.
    pub last_fates: BTreeMap<String, ChildFate>,
}

/// [`run_text_with`], reporting the alive set and each child's last fate too.
pub fn run_text_reporting(text: &str, restarts: Restarts) -> Result<RunReport, RunError> {
    let scenario = crate::parse(text)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()?;
    runtime.block_on(run_reporting(&scenario, restarts))
}

/// Runs a parsed scenario on a fresh single-threaded runtime with a paused clock. It builds
/// its own runtime, so it must not be called from inside a tokio runtime: use [`run`] there.
pub fn run_blocking(scenario: &Scenario) -> Result<String, RunError> {
    run_blocking_with(scenario, Restarts::NewActor)
}

/// [`run_blocking`] with workers restarted as `restarts` says.
pub fn run_blocking_with(scenario: &Scenario, restarts: Restarts) -> Result<String, RunError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()?;
    runtime.block_on(run_with(scenario, restarts))
}

/// Runs a parsed scenario. Must be called on a current-thread runtime whose clock is paused
/// (see [`run_blocking`]).
pub async fn run(scenario: &Scenario) -> Result<String, RunError> {
    run_with(scenario, Restarts::NewActor).await
}

/// [`run`] with workers restarted as `restarts` says.
pub async fn run_with(scenario: &Scenario, restarts: Restarts) -> Result<String, RunError> {
    Ok(run_reporting(scenario, restarts).await?.trace)
}

/// [`run_with`], reporting the alive set and each child's last fate too.
pub async fn run_reporting(scenario: &Scenario, restarts: Restarts) -> Result<RunReport, RunError> {
    let world = World {
        restarts,
        ..World::default()
    };
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
    for line in &scenario.actions {
        run.trace.push(format!("> {}", line.echo));
        run.act(&line.action, line.line).await?;
    }
    let alive = run.alive().await;
    run.trace.push(format!(
        "alive:{}",
        alive
            .iter()
            .fold(String::new(), |line, name| line + " " + name)
    ));
    let last_fates = run
        .world
        .fates
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    Ok(RunReport {
        trace: run.trace.into_text(),
        alive,
        last_fates,
    })
}

/// The names of a scenario's world: which worker incarnation is current, which starts must fail.
#[derive(Debug, Default, Clone)]
struct World {
    workers: Arc<Mutex<HashMap<String, ActorRef<WorkerMsg>>>>,
    failing_starts: Arc<Mutex<HashMap<String, u32>>>,
    restarts: Restarts,
    /// The last fate each child was told.
    fates: Arc<Mutex<BTreeMap<String, ChildFate>>>,
}

impl World {
    /// Whether the next start of `name` must fail (and counts that failure down).
    fn take_failing_start(&self, name: &str) -> bool {
        let mut failing = self
            .failing_starts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match failing.get_mut(name) {
            Some(left) if *left > 0 => {
                *left -= 1;
                true
            }
            _ => false,
        }
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

    fn worker(&self, name: &str) -> Option<ActorRef<WorkerMsg>> {
        let workers = self.workers.lock().unwrap_or_else(PoisonError::into_inner);
        workers
            .get(name)
            .filter(|worker| worker.get_status() == ActorStatus::Running)
            .cloned()
    }

    fn supervisor_spec(&self, node: &SupNode) -> SupervisorSpec {
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
                if world.take_failing_start(&name) {
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
    fn worker_spec(&self, id: &str, opts: &ChildOpts, stubborn: bool) -> ChildSpec {
        let world = self.clone();
        let spec = ChildSpec::worker(id, move |context: StartContext| {
            let world = world.clone();
            async move {
                let name = context.id().to_string();
                if world.take_failing_start(&name) {
                    return Err(StartError::failed("start_failed"));
                }
                let in_place = world.restarts.in_place().then(|| InPlace {
                    reporter: context.failure_reporter(),
                    restarts_itself: world.restarts == Restarts::InPlaceHere,
                    world: world.clone(),
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

/// The scenario worker: crashes or exits on command; a stubborn one never finishes a polite stop.
#[derive(Debug)]
struct Worker;

#[derive(Debug)]
struct WorkerArgs {
    stubborn: bool,
    in_place: Option<InPlace>,
}

/// What an in-place worker needs to report its failures and to rebuild.
#[derive(Debug)]
struct InPlace {
    reporter: FailureReporter,
    /// Carries out its own restarts when the supervisor lets it.
    restarts_itself: bool,
    world: World,
    name: String,
}

#[derive(Debug)]
struct WorkerState {
    stubborn: bool,
    exiting_by_itself: bool,
    in_place: Option<InPlace>,
    parked: bool,
    /// A stubborn worker keeps the park request unanswered, as it ignores a polite stop.
    ignored_park: Option<oneshot::Sender<()>>,
}

enum WorkerMsg {
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
struct WorkerHandle(ActorRef<WorkerMsg>);

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
            Some(in_place) if in_place.world.take_failing_start(&in_place.name) => {
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

/// An Erlang exit reason as the worker's exit reason.
fn exit_reason(term: &Term) -> ExitReason {
    match term {
        Term::Atom(atom) if atom == "normal" => ExitReason::Normal,
        Term::Atom(atom) if atom == "shutdown" => ExitReason::Shutdown,
        Term::Atom(atom) if atom == "killed" => ExitReason::Killed,
        Term::Tuple(items) if items.len() == 2 && items[0] == Term::atom("shutdown") => {
            ExitReason::ShutdownWith(items[1].to_string())
        }
        other => ExitReason::Abnormal(other.to_string()),
    }
}

/// An exit reason in Erlang form.
fn erlang_reason(reason: &ExitReason) -> String {
    match reason {
        ExitReason::Normal => "normal".into(),
        ExitReason::Shutdown => "shutdown".into(),
        ExitReason::ShutdownWith(detail) => format!("{{shutdown,{detail}}}"),
        ExitReason::FailedToStartChild { child, cause } => {
            format!(
                "{{shutdown,{{failed_to_start_child,{child},{}}}}}",
                erlang_start_error(cause)
            )
        }
        ExitReason::Killed => "killed".into(),
        ExitReason::Panicked(text) | ExitReason::Failed(text) | ExitReason::Abnormal(text) => {
            text.clone()
        }
        ExitReason::TimedOut(_) => "timeout".into(),
        other => other.to_string(),
    }
}

/// A start failure in Erlang form.
fn erlang_start_error(error: &StartError) -> String {
    match error {
        StartError::ChildFailed { child, cause } => format!(
            "{{shutdown,{{failed_to_start_child,{child},{}}}}}",
            erlang_start_error(cause)
        ),
        other => other.to_string(),
    }
}

/// The result of a child API call in Erlang form.
fn erlang_result<T>(result: Result<T, ChildOpError>, ok: impl FnOnce(T) -> String) -> String {
    let text = match result {
        Ok(value) => return ok(value),
        Err(ChildOpError::NotFound(_)) => "not_found".into(),
        Err(ChildOpError::Running(_)) => "running".into(),
        Err(ChildOpError::Restarting(_)) => "restarting".into(),
        Err(ChildOpError::AlreadyStarted(id)) => format!("{{already_started,{id}}}"),
        Err(ChildOpError::AlreadyPresent(_)) => "already_present".into(),
        Err(ChildOpError::NotAllowedOnDynamic) => "simple_one_for_one".into(),
        Err(ChildOpError::StartFailed(error)) => erlang_start_error(&error),
        Err(ChildOpError::InvalidSpec(error)) => format!("{{invalid_child_spec,\"{error}\"}}"),
        Err(ChildOpError::OnlyOnDynamic) => "not_simple_one_for_one".into(),
        Err(ChildOpError::SupervisorNotRunning) => "noproc".into(),
        Err(ChildOpError::Timeout(_)) => "timeout".into(),
        Err(other) => other.to_string(),
    };
    format!("{{error,{text}}}")
}

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

struct Run {
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
                self.world
                    .failing_starts
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(name.clone(), *times);
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
