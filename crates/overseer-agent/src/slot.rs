//! An agent's slot: the mailbox and state that outlive its incarnations.
//!
//! Asks are queued here, not in an incarnation's ractor mailbox, so tasks queued behind one
//! that crashed are handled by the next incarnation. The current incarnation is woken with a
//! `Wake` message when work arrives (wakes coalesce while one is pending), takes one task at a
//! time, and wakes itself again while work remains, so a polite stop is handled between tasks.
//!
//! The slot also holds the current incarnation's agent value ([`Held`]): its actor takes it for
//! each task, and its supervisor parks an idle one or rebuilds a parked one without a message.

use std::any::Any;
use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};

use overseer_breaker::{BreakerHandle, BreakerKey, BreakerRegistry};
use overseer_budget::{AgentAccount, Budget};
use overseer_journal::{Payload, RunId};
use overseer_supervisor::{ChildFate, ChildPath, EventId, ExitCause, ExitReason};
use ractor::ActorRef;
use tokio::time::Instant;

use crate::agent::Agent;
use crate::ask_tally::{AskTally, LiveTally};
use crate::cause::Lineage;
use crate::context::AgentContext;
use crate::context::{SlotCells, TaskNotes};
use crate::deadlines::Deadlines;
use crate::error::AskError;
use crate::event::{AskEvent, AskOutcome, SystemEvent};
use crate::feedback::Feedback;
use crate::health::{AgentHealth, Health, HealthChange, HealthTally};
use crate::heartbeat::Pulse;
use crate::injected_mark::InjectedMark;
use crate::job_queue::JobQueue;
use crate::lifecycle::{Lifecycle, LifecycleCell};
use crate::message::AgentMsg;
use crate::name::AgentName;
use crate::semantic_watch::SemanticWatch;
use crate::settlement::{Settlement, Verdict};
use crate::shared::{Observers, Shared};
use crate::spec::{AgentConfig, Classifier};
use crate::tasks::IncarnationTasks;
use crate::usage::Usage;

/// The answer to an ask: the outcome, the usage and model reported, and the fault injected, if
/// any.
/// The error is boxed: an answer travels through a channel and is moved several times, and an
/// `AskError` is several times the size of a typical output.
pub(crate) struct Answer<O> {
    pub(crate) outcome: Result<O, Box<AskError>>,
    pub(crate) usage: Usage,
    /// The fault marked, the model named, the model calls made, if any.
    pub(crate) notes: Option<Box<TaskNotes>>,
}

impl<O> Answer<O> {
    pub(crate) fn error(error: AskError) -> Self {
        Self {
            outcome: Err(Box::new(error)),
            usage: Usage::default(),
            notes: None,
        }
    }

    /// An answer made of a result alone (what a retry loop ends with).
    pub(crate) fn of_result(result: Result<O, AskError>) -> Self {
        Self {
            outcome: result.map_err(Box::new),
            usage: Usage::default(),
            notes: None,
        }
    }

    /// The fault marked on the task, if any.
    pub(crate) fn injected(&self) -> Option<&'static str> {
        self.notes.as_ref().and_then(|notes| notes.injected)
    }

    /// The model the task named, if any.
    pub(crate) fn model(&self) -> Option<&str> {
        self.notes.as_ref().and_then(|notes| notes.model.as_deref())
    }

    /// The result of an ask with what it spent (failed or not): a retry loop's attempt.
    pub(crate) fn into_spent(self) -> (Result<O, AskError>, Usage) {
        (self.outcome.map_err(|error| *error), self.usage)
    }

    /// The caller's result of an ask: the output, or the error.
    #[inline(always)]
    pub(crate) fn into_outcome(self) -> Result<O, AskError> {
        self.outcome.map_err(|error| *error)
    }

    /// The output with what it cost, or the error.
    pub(crate) fn into_metered(self) -> Result<crate::usage::Metered<O>, AskError> {
        let usage = self.usage;
        self.into_outcome()
            .map(|output| crate::usage::Metered { output, usage })
    }
}

/// The current incarnation's agent, kept where both its actor and its supervisor reach it, so
/// that the supervisor can park an idle agent and rebuild a parked one without a message to
/// the actor and back.
pub(crate) enum Held<A> {
    /// No agent: not built yet, or parked (after a failure, or by a group restart).
    Parked,
    /// Between tasks.
    Idle(A),
    /// Taken by the actor for a task.
    InUse,
}

/// Whether a supervisor could park an agent itself.
pub(crate) enum ParkAttempt {
    Parked,
    /// The agent is working: its actor parks it after the task.
    InUse,
}

/// Where the answer to an ask goes.
pub(crate) type Reply<O> = crate::reply::Reply<Answer<O>>;

/// One queued task.
pub(crate) struct Job<A: Agent> {
    pub(crate) task: A::Task,
    pub(crate) reply: Option<Reply<A::Output>>,
    pub(crate) deadline: Instant,
    pub(crate) asked_at: Instant,
    /// What admitting the task took, if anything, shared with its caller: whichever learns
    /// of the task's end first settles it.
    pub(crate) settlement: Option<Arc<Settlement>>,
    /// The ask's event id, assigned when it was made.
    pub(crate) id: EventId,
    /// The ask whose handler made it, and its request, if it was made inside one while the
    /// system had subscribers ([`Shared::lineage_here`](crate::shared::Shared::lineage_here)).
    pub(crate) made_in: Option<Lineage>,
    /// What a few tasks carry beyond a plain one (a durable run, the previous attempt's
    /// failure): `None` for a plain ask, which so carries one null pointer for all of it.
    pub(crate) extras: Option<Box<JobExtras<A>>>,
}

/// A job's rare extras.
pub(crate) struct JobExtras<A: Agent> {
    /// The durable run the task belongs to, when it was asked with a run id.
    pub(crate) durable: Option<Box<DurableJob<A>>>,
    /// The failure of the task's previous attempt, when it is a retry.
    pub(crate) feedback: Option<Feedback>,
    /// Whether the output is judged again after its validators (by an inspector or a vote),
    /// so that the confidence tracker records the final verdict only (`validation`).
    pub(crate) judged_later: bool,
    /// Whether the task is a vote's sample, whose calls the loop detector does not watch: a
    /// vote repeats one task on purpose, and its sample cap bounds it.
    pub(crate) sample: bool,
    /// Whether the ask is observed (the system has subscribers, or a tracing subscriber is
    /// set): its handler then runs as the ask being handled, so the asks it makes name it as
    /// their parent, and inside the ask's span (`None` when disabled), so theirs are its
    /// children.
    pub(crate) observed: Option<tracing::Span>,
}

impl<A: Agent> JobExtras<A> {
    /// The extras of an ask that carries nothing else.
    pub(crate) fn new() -> Self {
        Self {
            durable: None,
            feedback: None,
            judged_later: false,
            sample: false,
            observed: None,
        }
    }
}

/// What an ask adds to its job: nothing for a plain ask (`()`, so that its future and its code
/// hold nothing of durable runs or retries), or the rare extras and the ask's event id,
/// assigned beforehand by the retry loop that made the attempt.
pub(crate) trait JobPart<A: Agent>: Send {
    /// The ask's event id, if it was assigned before the ask.
    fn preassigned_id(&self) -> Option<EventId>;
    /// Whether the ask goes round the agent's retry loop, if it has one (a plain ask does; an
    /// attempt the loop makes does not).
    fn retried_here(&self) -> bool;
    /// Whether the ask's budget reservation was made before it was asked (a vote reserves for
    /// all its samples before it starts): then its admission takes
    /// [`take_reservation`](Self::take_reservation)'s instead of reserving.
    const PREPAID: bool = false;
    /// The reservation made for the ask before it was asked.
    fn take_reservation(&mut self) -> Option<overseer_budget::Reservation> {
        None
    }
    fn into_extras(self) -> Option<Box<JobExtras<A>>>;
}

impl<A: Agent> JobPart<A> for () {
    #[inline(always)]
    fn preassigned_id(&self) -> Option<EventId> {
        None
    }

    #[inline(always)]
    fn retried_here(&self) -> bool {
        true
    }

    #[inline(always)]
    fn into_extras(self) -> Option<Box<JobExtras<A>>> {
        None
    }
}

/// An ask made once, whatever the agent's retry policy
/// ([`AgentRef::ask_metered`](crate::AgentRef::ask_metered)).
pub(crate) struct NotRetried;

impl<A: Agent> JobPart<A> for NotRetried {
    fn preassigned_id(&self) -> Option<EventId> {
        None
    }

    fn retried_here(&self) -> bool {
        false
    }

    fn into_extras(self) -> Option<Box<JobExtras<A>>> {
        None
    }
}

/// An attempt made by a retry loop: its event id, and what its job carries.
pub(crate) struct Attempted<A: Agent> {
    pub(crate) id: EventId,
    pub(crate) durable: Option<Box<DurableJob<A>>>,
    pub(crate) feedback: Option<Feedback>,
}

impl<A: Agent> JobPart<A> for Attempted<A> {
    #[inline(always)]
    fn preassigned_id(&self) -> Option<EventId> {
        Some(self.id)
    }

    #[inline(always)]
    fn retried_here(&self) -> bool {
        false
    }

    fn into_extras(self) -> Option<Box<JobExtras<A>>> {
        if self.durable.is_none() && self.feedback.is_none() {
            return None;
        }
        Some(Box::new(JobExtras {
            durable: self.durable,
            feedback: self.feedback,
            ..JobExtras::new()
        }))
    }
}

/// What a task of a durable run carries: its run, its input as journaled (to take the task
/// again after a crash), and how the agent's types are read and written, fixed where they are
/// known to be serializable ([`AgentRef::ask_run`](crate::AgentRef::ask_run)).
pub(crate) struct DurableJob<A: Agent> {
    pub(crate) run: RunId,
    pub(crate) input: Payload,
    pub(crate) decode_task: fn(&Payload) -> Result<A::Task, serde_json::Error>,
    pub(crate) encode_output: fn(&A::Output) -> Result<Payload, serde_json::Error>,
    /// Whether a retry policy may retry a failure of this attempt: a transient failure is then
    /// not journaled as the step's or the run's outcome (the retry replays the run and takes
    /// the failed step again).
    pub(crate) retryable: bool,
}

pub(crate) struct Slot<A: Agent> {
    pub(crate) name: AgentName,
    pub(crate) config: AgentConfig,
    pub(crate) classifier: Classifier<A>,
    /// Whether a plain ask may take another route than its round trip: the agent has a retry
    /// policy, or the system watches semantics (a flagged agent's asks go to an inspector).
    /// One flag, so that a plain ask of an agent with neither pays one branch for both.
    pub(crate) routed: bool,
    /// How many queued jobs refuse an ask: the capacity, or none for an agent that lets asks
    /// wait for room (they wait in line past the capacity, each until its deadline, and one
    /// whose deadline passed is dropped unrun when its turn comes). Computed once.
    pub(crate) ask_limit: usize,
    /// This agent's breakers, one per task type, kept so the call path skips the registry
    /// lookup. A list, not a map: an agent has a handful of task types, and finding one by
    /// the address of its name (the same `&'static str` every time) costs less than hashing it.
    breakers: RwLock<Vec<(&'static str, BreakerHandle)>>,
    /// The breaker of the first task type asked, read without a lock (most agents have one).
    first_breaker: OnceLock<(&'static str, BreakerHandle)>,
    pub(crate) shared: Arc<Shared>,
    /// The queued tasks. A plain deque under a lock: it costs nothing until used (a channel
    /// would allocate a block of 32 tasks per agent), and taking a task locks once.
    queue: JobQueue<Job<A>>,
    incarnation: RwLock<Option<ActorRef<AgentMsg>>>,
    last_exit: Mutex<Option<ExitReason>>,
    lifecycle: LifecycleCell,
    wake_pending: AtomicBool,
    /// Where the agent sits in the tree, known from its first start.
    placement: OnceLock<Placement>,
    /// The current incarnation's agent.
    held: Mutex<Held<A>>,
    /// The fault marked on the latest task, shared with the incarnations' contexts.
    pub(crate) injected: Arc<InjectedMark>,
    /// The tasks the current incarnation spawned, shared with its contexts.
    pub(crate) tasks: Arc<IncarnationTasks>,
    /// Whether the agent has heartbeat timeouts: its tasks run beside the heartbeat watch.
    pub(crate) beats_watched: bool,
    /// Whether the system's budget has a limit shared with other processes: a task admitted
    /// without a hold there (a tell, a vote's sample, a replay) takes one before it runs.
    pub(crate) fleet_wide: bool,
    /// Where the handler's beats and progress land, shared with the incarnations' contexts.
    pub(crate) pulse: Arc<Pulse>,
    /// What the current incarnation's health checks found.
    health: Mutex<HealthTally>,
    /// Whether a health check is waiting in the actor's mailbox (one at a time).
    health_pending: AtomicBool,
    /// Whether an incarnation's serve loop is running: then an ask wakes it through `waker`,
    /// not with a message.
    serving: AtomicBool,
    /// Whether the serve loop is asked back to ractor (a stop, a park, a health check).
    yield_requested: AtomicBool,
    /// The serve loop, while it waits for work.
    waker: futures::task::AtomicWaker,
    /// The deadlines of the asks in flight, under one timer; made on the first ask (an agent
    /// never asked costs one pointer for it).
    deadlines: OnceLock<Arc<Deadlines>>,
    /// The agent's account in the system's budget, found on its first admission.
    account: OnceLock<AgentAccount>,
    /// Its asks' ends, counted once someone reads the tallies; made then (an agent nobody
    /// tallies costs one pointer for it).
    tally: OnceLock<Box<LiveTally>>,
}

/// Whether two task type names are the same: by address first (a task type is a
/// `&'static str`, mostly the same one), else by text.
#[inline(always)]
fn same_task_type(kept: &'static str, asked: &'static str) -> bool {
    std::ptr::eq(kept, asked) || kept == asked
}

/// Marks a serve loop running until dropped.
pub(crate) struct ServingGuard<'a>(&'a AtomicBool);

impl Drop for ServingGuard<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// An agent's place in the tree.
pub(crate) struct Placement {
    pub(crate) path: ChildPath,
    /// Where an incarnation records the ask it handles, so a crash names it.
    pub(crate) exit_cause: ExitCause,
}

impl<A: Agent> Slot<A> {
    pub(crate) fn new(
        name: AgentName,
        config: AgentConfig,
        classifier: Classifier<A>,
        shared: Arc<Shared>,
    ) -> Self {
        let routed = classifier.retry.is_some() || shared.semantic.is_some();
        let beats_watched = config
            .liveness
            .as_ref()
            .is_some_and(|liveness| liveness.heartbeats.any());
        let fleet_wide = shared.budget.as_ref().is_some_and(Budget::has_shared_limit);
        let ask_limit = if config.wait_for_room {
            usize::MAX
        } else {
            config.queue_capacity
        };
        Self {
            name,
            config,
            classifier,
            routed,
            ask_limit,
            breakers: RwLock::new(Vec::new()),
            first_breaker: OnceLock::new(),
            shared,
            queue: JobQueue::new(),
            incarnation: RwLock::new(None),
            last_exit: Mutex::new(None),
            lifecycle: LifecycleCell::new(Lifecycle::Starting),
            wake_pending: AtomicBool::new(false),
            placement: OnceLock::new(),
            held: Mutex::new(Held::Parked),
            injected: Arc::default(),
            tasks: Arc::default(),
            beats_watched,
            fleet_wide,
            pulse: Arc::new(Pulse::new()),
            health: Mutex::new(HealthTally::default()),
            health_pending: AtomicBool::new(false),
            serving: AtomicBool::new(false),
            yield_requested: AtomicBool::new(false),
            waker: futures::task::AtomicWaker::new(),
            deadlines: OnceLock::new(),
            account: OnceLock::new(),
            tally: OnceLock::new(),
        }
    }

    /// A fresh context for an incarnation of this agent at `path`.
    pub(crate) fn context(&self, path: ChildPath) -> AgentContext {
        AgentContext::new(
            self.name.clone(),
            path,
            self.shared.budget.clone(),
            SlotCells {
                marks: Arc::clone(&self.injected),
                tasks: Arc::clone(&self.tasks),
                pulse: Arc::clone(&self.pulse),
            },
            self.shared.bulkheads.clone(),
            self.shared
                .semantic
                .as_ref()
                .is_some_and(SemanticWatch::watches_loops)
                .then(|| Arc::clone(&self.shared)),
        )
    }

    /// Records where the agent sits in the tree (its first start; the same every time).
    pub(crate) fn place(&self, path: &ChildPath, exit_cause: &ExitCause) {
        let _ = self.placement.set(Placement {
            path: path.clone(),
            exit_cause: exit_cause.clone(),
        });
        // Added to the running tree: asks wait for its first incarnation from now on.
        self.lifecycle
            .replace(Lifecycle::NotInTree, Lifecycle::Starting);
    }

    /// The agent's path in the tree, once it has started.
    pub(crate) fn path(&self) -> Option<&ChildPath> {
        self.placement.get().map(|placement| &placement.path)
    }

    /// Records the ask the agent is handling (or none), so a crash names it.
    pub(crate) fn set_exit_cause(&self, ask: Option<EventId>) {
        if let Some(placement) = self.placement.get() {
            placement.exit_cause.set(ask);
        }
    }

    /// Why asks to this agent are refused right now, if they are.
    #[inline]
    pub(crate) fn refusal(&self) -> Option<AskError> {
        // The common case first: open, and an incarnation serving.
        if self.lifecycle.get() == Lifecycle::Running && self.shared.is_open() {
            return None;
        }
        self.refusal_other()
    }

    /// [`refusal`](Self::refusal) when the system is closed or the agent is not running.
    #[cold]
    #[inline(never)]
    fn refusal_other(&self) -> Option<AskError> {
        if !self.shared.is_open() {
            if let Some(closed) = self.shared.closed() {
                return Some(closed);
            }
        }
        match self.lifecycle.get() {
            Lifecycle::Stopped => Some(AskError::AgentStopped {
                agent: self.name.clone(),
            }),
            Lifecycle::NotInTree => Some(AskError::NotInTree {
                agent: self.name.clone(),
            }),
            Lifecycle::Unhealthy => Some(AskError::Unhealthy {
                agent: self.name.clone(),
            }),
            Lifecycle::Restarting | Lifecycle::SupervisorExiting
                if self.config.fail_fast_while_restarting =>
            {
                Some(AskError::Restarting {
                    agent: self.name.clone(),
                })
            }
            _ => None,
        }
    }

    /// How the breaker and the error-rate window count an ask that ended with `result`.
    pub(crate) fn verdict(
        &self,
        result: &Result<A::Output, AskError>,
        latency: std::time::Duration,
    ) -> Verdict {
        Verdict {
            outcome: self.classifier.outcome(result),
            success: result.is_ok(),
            latency,
            at: None,
        }
    }

    /// How the breaker and the error-rate window count an ask that failed with `error`.
    pub(crate) fn error_verdict(&self, error: &AskError, latency: std::time::Duration) -> Verdict {
        Verdict {
            outcome: self.classifier.error_outcome(error),
            success: false,
            latency,
            at: None,
        }
    }

    /// The breaker of this agent for `task_type`, if the system has breakers. Inlined: the
    /// call path of an ask and the escalation ladder's breaker check share it, and a call
    /// would cost every governed ask.
    /// Borrowed for the first task type asked (no reference count taken per ask), owned for
    /// the others.
    #[inline(always)]
    pub(crate) fn breaker(&self, task_type: &'static str) -> Option<Cow<'_, BreakerHandle>> {
        let registry = self.shared.breakers.as_ref()?;
        if let Some((first, handle)) = self.first_breaker.get() {
            if same_task_type(first, task_type) {
                return Some(Cow::Borrowed(handle));
            }
        }
        Some(Cow::Owned(self.other_breaker(registry, task_type)))
    }

    /// The breaker of a task type other than the first asked (or of the first, on its first
    /// ask).
    #[cold]
    #[inline(never)]
    fn other_breaker(&self, registry: &BreakerRegistry, task_type: &'static str) -> BreakerHandle {
        let kept = self
            .breakers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .find(|(kept, _)| same_task_type(kept, task_type))
            .map(|(_, handle)| handle.clone());
        if let Some(kept) = kept {
            return kept;
        }
        let handle = registry.handle(&BreakerKey::new(self.name.as_str(), task_type));
        if self.first_breaker.set((task_type, handle.clone())).is_ok() {
            return handle;
        }
        let mut breakers = self
            .breakers
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if !breakers
            .iter()
            .any(|(kept, _)| same_task_type(kept, task_type))
        {
            breakers.push((task_type, handle.clone()));
        }
        handle
    }

    /// Queues a job and wakes the current incarnation. A job that races with the agent
    /// stopping for good is failed like the rest of the queue, never left waiting.
    /// What `task` is expected to spend: the agent's estimate of it, else the agent's default.
    #[inline]
    pub(crate) fn estimate(&self, task: &A::Task) -> Usage {
        let declared = A::estimate(task);
        if declared.is_zero() {
            self.config.default_estimate
        } else {
            declared
        }
    }

    /// The ask error of a budget refusal: a trip fails the task as tripped; a limit refusal
    /// trips nothing and fails this task only, unless the system closed meanwhile.
    #[cold]
    pub(crate) fn budget_refusal(&self, refusal: overseer_budget::Refusal) -> AskError {
        match refusal {
            overseer_budget::Refusal::Tripped { reason } => AskError::KillSwitchTripped { reason },
            refusal => self.shared.closed().unwrap_or(AskError::BudgetExceeded {
                agent: self.name.clone(),
                refusal,
            }),
        }
    }

    /// The deadlines of this agent's asks in flight, under one timer.
    #[inline]
    pub(crate) fn deadlines(&self) -> &Arc<Deadlines> {
        self.deadlines.get_or_init(Arc::default)
    }

    /// The agent's account in `budget` (the system's), found on the first admission: later
    /// admissions skip the lookup of its ledger by name.
    #[inline]
    pub(crate) fn account(&self, budget: &Budget) -> &AgentAccount {
        self.account
            .get_or_init(|| budget.account(self.name.as_str()))
    }

    /// Puts back, first in line, the task of a durable run whose incarnation crashed on it: the
    /// next incarnation takes it again and replays the run.
    pub(crate) fn requeue_first(&self, job: Job<A>) {
        self.queue.lock().push_front(job);
        if let Some(refusal) = self.refusal() {
            self.fail_queued(&refusal);
        }
    }

    /// Queues a newly admitted job, last in line, unless the queue holds `limit` jobs: then
    /// the job is dropped (which releases what admitting it took) and `false` returned.
    /// An ask passes the slot's `ask_limit`, a tell the capacity itself.
    #[must_use = "a job that found no room was dropped: its caller must be refused"]
    #[inline]
    pub(crate) fn enqueue(&self, job: Job<A>, limit: usize) -> bool {
        {
            let mut queue = self.queue.lock();
            if queue.len() >= limit {
                drop(queue);
                drop(job);
                return false;
            }
            queue.push_back(job);
        }
        if let Some(refusal) = self.refusal() {
            self.fail_queued(&refusal);
        } else {
            self.wake();
        }
        true
    }

    /// Tasks waiting in the queue (the one being handled not counted).
    pub(crate) fn queue_len(&self) -> usize {
        self.queue.len()
    }

    /// Sends the current incarnation a `Wake`, unless one is already pending or the agent is
    /// between incarnations (the next one drains the queue when it is installed).
    pub(crate) fn wake(&self) {
        if self.lifecycle.get() == Lifecycle::Restarting {
            return;
        }
        if self.serving.load(Ordering::SeqCst) {
            // The serve loop takes it, waiting or not: no message.
            self.waker.wake();
            return;
        }
        if self.wake_pending.swap(true, Ordering::AcqRel) {
            return;
        }
        let incarnation = self
            .incarnation
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let sent = incarnation
            .as_ref()
            .is_some_and(|actor| actor.send_message(AgentMsg::Wake).is_ok());
        if !sent {
            // No incarnation to wake: the next one drains the queue when it starts.
            self.wake_pending.store(false, Ordering::Release);
        }
    }

    /// An incarnation's serve loop starts: asks wake it through the waker until the guard
    /// drops (when the loop returns, or its future is dropped by a kill).
    pub(crate) fn begin_serving(&self) -> ServingGuard<'_> {
        self.serving.store(true, Ordering::SeqCst);
        ServingGuard(&self.serving)
    }

    /// Asks the serve loop back to ractor, after its current task: a stop, a park or a health
    /// check waits in its mailbox.
    pub(crate) fn request_yield(&self) {
        self.yield_requested.store(true, Ordering::SeqCst);
        self.waker.wake();
    }

    /// Whether the serve loop was asked back to ractor (the request is taken).
    pub(crate) fn take_yield(&self) -> bool {
        self.yield_requested.load(Ordering::Relaxed)
            && self.yield_requested.swap(false, Ordering::SeqCst)
    }

    /// Waits until there is work, the loop is asked back to ractor, or the system closed.
    pub(crate) fn work_or_yield(&self) -> impl std::future::Future<Output = ()> + '_ {
        std::future::poll_fn(move |cx| {
            // Asked before the waker is registered (woken for work, the loop need not register
            // again) and after (work queued meanwhile woke the waker registered before).
            if self.stops_waiting() {
                return std::task::Poll::Ready(());
            }
            self.waker.register(cx.waker());
            if self.stops_waiting() {
                std::task::Poll::Ready(())
            } else {
                std::task::Poll::Pending
            }
        })
    }

    /// Whether the serve loop has work, is asked back to ractor, or the system closed: three
    /// loads, no lock.
    fn stops_waiting(&self) -> bool {
        self.yield_requested.load(Ordering::SeqCst) || self.has_work() || !self.shared.is_open()
    }

    /// Called by an incarnation before it takes work.
    pub(crate) fn clear_wake(&self) {
        self.wake_pending.store(false, Ordering::Release);
    }

    pub(crate) fn take_job(&self) -> Option<Job<A>> {
        self.queue.lock().pop_front()
    }

    /// The next job, and whether more are waiting (one lock for both).
    pub(crate) fn next_job(&self) -> (Option<Job<A>>, bool) {
        let mut queue = self.queue.lock();
        let job = queue.pop_front();
        (job, !queue.is_empty())
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Held<A>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes the idle agent for a task; `None` if it is parked.
    pub(crate) fn take_agent(&self) -> Option<A> {
        let mut held = self.held();
        match std::mem::replace(&mut *held, Held::InUse) {
            Held::Idle(agent) => Some(agent),
            other => {
                *held = other;
                None
            }
        }
    }

    /// Gives the agent back after a task, or a newly built one.
    pub(crate) fn put_agent(&self, agent: A) {
        let previous = std::mem::replace(&mut *self.held(), Held::Idle(agent));
        drop(previous);
    }

    /// Parks: drops the agent (outside the lock: its `Drop` is the user's code) and aborts
    /// the tasks of its incarnation.
    pub(crate) fn drop_agent(&self) {
        let previous = std::mem::replace(&mut *self.held(), Held::Parked);
        drop(previous);
        self.tasks.abort_all();
    }

    /// Parks an idle agent here; an agent in use is parked by its actor after the task.
    pub(crate) fn park_idle(&self) -> ParkAttempt {
        let mut held = self.held();
        if matches!(*held, Held::InUse) {
            return ParkAttempt::InUse;
        }
        let previous = std::mem::replace(&mut *held, Held::Parked);
        drop(held);
        drop(previous);
        self.tasks.abort_all();
        // A serve loop waiting for work returns to ractor: it has no agent to serve with.
        self.request_yield();
        ParkAttempt::Parked
    }

    pub(crate) fn is_parked(&self) -> bool {
        matches!(*self.held(), Held::Parked)
    }

    pub(crate) fn has_work(&self) -> bool {
        !self.queue.is_empty()
    }

    /// A new incarnation starts serving.
    pub(crate) fn install(&self, actor: ActorRef<AgentMsg>) {
        *self
            .incarnation
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(actor);
        self.lifecycle.set(Lifecycle::Running);
        self.wake_pending.store(false, Ordering::Release);
        // A new incarnation is unchecked, whatever the last one's checks found, and has no
        // check waiting in its mailbox.
        *self.health.lock().unwrap_or_else(PoisonError::into_inner) = HealthTally::default();
        self.health_pending.store(false, Ordering::Release);
        if self.has_work() {
            self.wake();
        }
    }

    /// What the current incarnation's health checks found.
    pub(crate) fn health_tally(&self) -> HealthTally {
        *self.health.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts one health check of the current incarnation (`passed` or not) and moves the
    /// agent in or out of [`Lifecycle::Unhealthy`] as it says (only from `Running`, or back to
    /// it: a restart or a stop meanwhile is never undone).
    pub(crate) fn record_health(&self, passed: bool, restart_after: u32) -> (HealthChange, Health) {
        let (change, health) = {
            let mut tally = self.health.lock().unwrap_or_else(PoisonError::into_inner);
            let change = tally.record(passed, restart_after);
            (change, tally.health())
        };
        match change {
            HealthChange::BecameUnhealthy => {
                self.lifecycle
                    .replace(Lifecycle::Running, Lifecycle::Unhealthy);
            }
            HealthChange::Recovered => {
                self.lifecycle
                    .replace(Lifecycle::Unhealthy, Lifecycle::Running);
            }
            HealthChange::Unchanged | HealthChange::Restart => {}
        }
        (change, health)
    }

    /// Whether a health check may be sent to the incarnation now: none is waiting already.
    pub(crate) fn schedule_health_check(&self) -> bool {
        !self.health_pending.swap(true, Ordering::AcqRel)
    }

    /// The health check sent has been taken by the incarnation.
    pub(crate) fn health_check_taken(&self) {
        self.health_pending.store(false, Ordering::Release);
    }

    /// An incarnation is exiting: its agent is dropped unless a newer one is installed.
    pub(crate) fn uninstall(&self, actor: &ActorRef<AgentMsg>, reason: ExitReason) {
        let mut incarnation = self
            .incarnation
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let newer = incarnation
            .as_ref()
            .is_some_and(|current| current.get_id() != actor.get_id());
        if !newer {
            *incarnation = None;
            drop(incarnation);
            self.drop_agent();
        }
        *self
            .last_exit
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(reason);
    }

    /// An incarnation failed and parked (it keeps its place until rebuilt or stopped).
    pub(crate) fn record_exit(&self, reason: ExitReason) {
        *self
            .last_exit
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(reason);
    }

    /// Why the last incarnation exited.
    pub(crate) fn last_exit(&self) -> Option<ExitReason> {
        self.last_exit
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Ends a job with `error`: the asker is answered; a tell's end is published.
    pub(crate) fn fail_job(&self, job: Job<A>, error: AskError) {
        match job.reply {
            Some(reply) => {
                let _ = reply.send(Answer::error(error));
            }
            None => {
                let answer = Answer::<()>::error(error);
                let ended = (job.id, A::task_type(&job.task), job.asked_at);
                self.publish_tell_event(ended, job.made_in, &answer);
            }
        }
    }

    /// Publishes how an ask of this agent ended, on its caller's task (nothing is built if
    /// nobody subscribes): an ask made inside a handler names that handler's ask as its parent.
    /// Once tallies are read, the ask is counted.
    #[inline]
    pub(crate) fn publish_ask_event<O>(
        &self,
        id: EventId,
        task_type: &'static str,
        answer: &Answer<O>,
        asked_at: Instant,
    ) {
        if self.shared.observers() != 0 {
            self.observe_end((id, task_type, asked_at), None, answer);
        }
    }

    /// Publishes how a tell of this agent ended (its id, task type and time asked), on the
    /// agent's side: `made_in` is the lineage its job carried.
    pub(crate) fn publish_tell_event<O>(
        &self,
        ended: (EventId, &'static str, Instant),
        made_in: Option<Lineage>,
        answer: &Answer<O>,
    ) {
        if self.shared.observers() != 0 {
            self.observe_end(ended, Some(made_in), answer);
        }
    }

    /// An ask or tell ended while someone watches: it is tallied (if tallies are read); an
    /// answer is published to the subscribers of every event, a failure to every subscriber.
    /// `made_in`: a tell's lineage; `None` for an ask, whose caller's task has it.
    fn observe_end<O>(
        &self,
        ended: (EventId, &'static str, Instant),
        made_in: Option<Option<Lineage>>,
        answer: &Answer<O>,
    ) {
        if self.shared.observers() & Observers::TALLIED != 0 {
            self.tally().count(ended.2, self.shared.tally_period());
        }
        let answered = answer.outcome.is_ok();
        let published = if answered {
            self.shared.has_answered_subscribers()
        } else {
            self.shared.has_subscribers()
        };
        if published {
            let made_in = made_in.unwrap_or_else(crate::cause::handled);
            self.build_ask_event(ended, made_in, answer, answered);
        }
    }

    /// The agent's tally of asks, made on first use.
    fn tally(&self) -> &LiveTally {
        self.tally.get_or_init(|| Box::new(LiveTally::new()))
    }

    fn build_ask_event<O>(
        &self,
        (id, task_type, asked_at): (EventId, &'static str, Instant),
        made_in: Option<Lineage>,
        answer: &Answer<O>,
        answered: bool,
    ) {
        let outcome = match answer.outcome.as_ref().map_err(|error| &**error) {
            Ok(_) => AskOutcome::Ok,
            Err(error) => AskOutcome::Error {
                kind: Cow::Borrowed(error.kind()),
                message: error.to_string(),
            },
        };
        let caused_by = match answer.outcome.as_ref().map_err(|error| &**error) {
            Err(AskError::KillSwitchTripped { .. }) => self.shared.trip_event_causing(id),
            Err(AskError::BreakerOpen {
                agent, task_type, ..
            }) => self.shared.breaker_opening(agent.as_str(), task_type),
            _ => None,
        };
        // One clock read for both the latency and the event's time.
        let ended = Instant::now();
        let meta = self
            .shared
            .meta_at(id, caused_by, self.path().cloned(), ended);
        let latency = ended.saturating_duration_since(asked_at);
        let event = SystemEvent::Ask(AskEvent {
            id: meta.id,
            caused_by: meta.caused_by,
            parent: made_in.map(|lineage| lineage.parent),
            request: made_in.map(|lineage| lineage.request),
            elapsed: meta.elapsed,
            path: meta.path,
            agent: self.name.clone(),
            task_type: Cow::Borrowed(task_type),
            outcome,
            latency,
            usage: answer.usage,
            injected: answer.injected().map(Cow::Borrowed),
            model: answer.notes.as_ref().and_then(|notes| notes.model.clone()),
            model_calls: answer
                .notes
                .as_ref()
                .map_or_else(Vec::new, |notes| notes.model_calls.clone()),
            progress: answer
                .notes
                .as_ref()
                .and_then(|notes| notes.progress.clone()),
        });
        if answered {
            self.shared.publish_answered(event);
        } else {
            self.shared.publish(event);
        }
    }

    /// Fails every queued job with `error`.
    pub(crate) fn fail_queued(&self, error: &AskError) {
        while let Some(job) = self.take_job() {
            self.fail_job(job, error.clone());
        }
    }
}

/// What the system needs of a slot without knowing its agent type.
pub(crate) trait AnySlot: Send + Sync + 'static {
    /// The supervisor decided this about the agent.
    fn on_fate(&self, fate: ChildFate);
    /// Fails everything queued (the system shut down).
    fn shut_down(&self);
    /// The tree is running: if it did not start this agent, asks to it fail from now on (and
    /// those queued, with [`AskError::NotInTree`]) until it is added and starts.
    fn tree_started(&self);
    fn agent_type(&self) -> &'static str;
    /// Tasks waiting in the queue, and its capacity.
    fn queue_depth(&self) -> (usize, usize);
    /// The agent's health, as its checks and beats found it.
    fn health(&self) -> AgentHealth;
    /// Its asks, as its tally counted them.
    fn ask_tally(&self) -> AskTally;
    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
}

impl<A: Agent> AnySlot for Slot<A> {
    fn on_fate(&self, fate: ChildFate) {
        match fate {
            // Its supervisor may be restarted by its own parent: keep the queue, within each
            // ask's deadline. If the parent does not restart it, `Stopped` or `Removed` follows
            // (and when the whole tree stops, the system marks every agent stopped).
            ChildFate::Restarting => self.lifecycle.set(Lifecycle::Restarting),
            ChildFate::SupervisorExiting => self.lifecycle.set(Lifecycle::SupervisorExiting),
            ChildFate::Stopped | ChildFate::Removed => {
                self.lifecycle.set(Lifecycle::Stopped);
                self.tasks.abort_all();
                let error = self.shared.closed().unwrap_or(AskError::AgentStopped {
                    agent: self.name.clone(),
                });
                self.fail_queued(&error);
            }
        }
    }

    fn shut_down(&self) {
        self.lifecycle.set(Lifecycle::Stopped);
        self.tasks.abort_all();
        self.fail_queued(&self.shared.closed().unwrap_or(AskError::ShutDown));
    }

    fn tree_started(&self) {
        // An agent the tree started has been placed (its incarnation may still be installing
        // itself); only one never placed and still starting is out of the tree.
        if self.placement.get().is_some() {
            return;
        }
        if self
            .lifecycle
            .replace(Lifecycle::Starting, Lifecycle::NotInTree)
        {
            self.fail_queued(&AskError::NotInTree {
                agent: self.name.clone(),
            });
        }
    }

    fn agent_type(&self) -> &'static str {
        std::any::type_name::<A>()
    }

    fn queue_depth(&self) -> (usize, usize) {
        (self.queue_len(), self.config.queue_capacity)
    }

    fn health(&self) -> AgentHealth {
        let watched = self
            .config
            .liveness
            .as_ref()
            .is_some_and(|liveness| liveness.heartbeats.any());
        AgentHealth {
            agent: self.name.clone(),
            path: self.path().cloned(),
            health: self.health_tally().health(),
            progress: self.pulse.progress(),
            since_last_beat: watched.then(|| self.pulse.last_beat().elapsed()),
        }
    }

    fn ask_tally(&self) -> AskTally {
        let (ended, latency) = self
            .tally
            .get()
            .map(|tally| tally.read())
            .unwrap_or_default();
        AskTally {
            agent: self.name.clone(),
            ended,
            latency,
        }
    }

    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }
}
