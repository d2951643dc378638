//! What a handler can see and report while it works.

use std::time::Duration;

use overseer_budget::{Budget, Remaining, Tier};
use std::borrow::Cow;
use std::sync::Arc;

use overseer_supervisor::{ChildPath, EventId};
use tokio::time::Instant;

use std::future::Future;

use overseer_journal::{Effect, IdempotencyKey, RunId, Spent, StepId};
use serde::de::DeserializeOwned;
use serde::Serialize;

use overseer_semantic::loop_detect::{canonical_hash, CallOutcome, CanonicalHash};

use crate::bulkheads::{BulkheadCall, Bulkheads};
use crate::cause::Lineage;
use crate::durable::{DurableRun, Prepared};
use crate::error::AgentError;
use crate::feedback::Feedback;
use crate::heartbeat::{Progress, Pulse};
use crate::injected_mark::InjectedMark;
use crate::loop_watch::{Caller, Watching};
use crate::model::{ModelClient, ModelRequest, ModelResponse};
use crate::model_call::{self, ModelCall};
use crate::name::AgentName;
use crate::settlement::Settlement;
use crate::shared::Shared;
use crate::tasks::IncarnationTasks;
use crate::usage::Usage;

/// The name of the journaled step that [`AgentContext::record_progress`] writes.
pub const PROGRESS_STEP: &str = "overseer.progress";

/// The context a handler works in: who it is, how long it has, and where it reports usage.
#[derive(Debug)]
pub struct AgentContext {
    name: AgentName,
    path: ChildPath,
    deadline: Option<Instant>,
    usage: Usage,
    /// The current task's ask, while one runs.
    task: Option<EventId>,
    /// Where the current task was made: the ask whose handler made it, and its request.
    made_in: Option<Lineage>,
    /// What the current task reported beyond its usage (a fault marked, a model named, the
    /// model calls made): boxed, as most tasks report none of it.
    notes: Option<Box<TaskNotes>>,
    /// Where the mark is also left for a caller that stopped waiting.
    marks: Arc<InjectedMark>,
    /// The current task's settlement, where reported spend is also added (so that it is
    /// committed whatever ends the task).
    settlement: Option<Arc<Settlement>>,
    budget: Option<Budget>,
    tasks: Arc<IncarnationTasks>,
    /// The durable run the current task belongs to, if it was asked with a run id.
    durable: Option<Box<DurableRun>>,
    /// The failure of the current task's previous attempt, when it is a retry.
    feedback: Option<Feedback>,
    /// The system, when it watches handlers' calls for loops.
    watch: Option<Watching>,
    /// The current task's type.
    task_type: &'static str,
    /// Whether the current task is a vote's sample: its calls are not watched for loops.
    sample: bool,
    /// The system's bulkheads.
    bulkheads: Bulkheads,
    /// Where beats and progress land (the agent's, shared by its incarnations).
    pulse: Arc<Pulse>,
    /// Whether the current task is watched by a heartbeat timeout: only then is a beat's time
    /// taken.
    beating: bool,
}

/// What a user's check found of an unsafe effect whose intent was journaled but whose result
/// was not (the process died in between): see [`AgentContext::step_reconciled`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reconciled<T> {
    /// It happened, with this result: recorded, not run again.
    Happened(T),
    /// It did not happen: it is run now, with the same idempotency key.
    DidNotHappen,
    /// Nothing can tell: it is not run again, and goes to the dead letters
    /// ([`StepError::InDoubt`](crate::StepError::InDoubt)).
    Unknown,
}

/// What an agent's contexts share with its slot, whatever the incarnation.
pub(crate) struct SlotCells {
    /// Where a fault mark is also left.
    pub(crate) marks: Arc<InjectedMark>,
    /// The tasks the current incarnation spawned.
    pub(crate) tasks: Arc<IncarnationTasks>,
    /// Where beats and progress land.
    pub(crate) pulse: Arc<Pulse>,
}

impl AgentContext {
    pub(crate) fn new(
        name: AgentName,
        path: ChildPath,
        budget: Option<Budget>,
        cells: SlotCells,
        bulkheads: Bulkheads,
        watch: Option<Arc<Shared>>,
    ) -> Self {
        let watch = watch.map(Watching);
        let SlotCells {
            marks,
            tasks,
            pulse,
        } = cells;
        Self {
            name,
            path,
            deadline: None,
            usage: Usage::default(),
            task: None,
            made_in: None,
            notes: None,
            marks,
            settlement: None,
            budget,
            tasks,
            durable: None,
            feedback: None,
            watch,
            task_type: "",
            sample: false,
            bulkheads,
            pulse,
            beating: false,
        }
    }

    /// Says the handler is alive: with a heartbeat timeout
    /// ([`AgentSpec::heartbeat_timeout`](crate::AgentSpec::heartbeat_timeout)), a task whose
    /// handler has not beaten within it is treated as hung. Model calls and journaled steps
    /// made through this context beat on their own, before and after. Costs a branch when the
    /// task is not watched, a clock read and an atomic store when it is.
    #[inline]
    pub fn heartbeat(&self) {
        if self.beating {
            self.pulse.beat();
        }
    }

    /// Beats ([`heartbeat`](Self::heartbeat)) and reports how far the handler has got: the
    /// last progress is in the ask's event ([`AskEvent::progress`](crate::AskEvent::progress)),
    /// in the error of a task that stalls after it
    /// ([`AskError::Stalled`](crate::AskError::Stalled)) and in the agent's health listing
    /// ([`System::health`](crate::System::health)). In a durable run, use
    /// [`record_progress`](Self::record_progress) to journal it too.
    pub fn progress(&mut self, progress: impl Into<Progress>) {
        let progress = progress.into();
        self.heartbeat();
        self.pulse.set_progress(progress.clone());
        self.notes.get_or_insert_with(Box::default).progress = Some(progress);
    }

    /// As [`progress`](Self::progress), and in a durable run journaled as a step (named
    /// [`PROGRESS_STEP`]), so that after a crash the run resumed elsewhere knows how far it got
    /// ([`resumed_progress`](Self::resumed_progress)); replayed, the step passes without
    /// writing. Call it at the same places on every run of the task, as any step.
    ///
    /// # Errors
    ///
    /// As [`step`](Self::step): the journal failed, the run diverged, or this incarnation was
    /// fenced off.
    pub async fn record_progress(
        &mut self,
        progress: impl Into<Progress>,
    ) -> Result<(), AgentError> {
        let progress = progress.into();
        let recorded = progress.clone();
        self.step(
            PROGRESS_STEP,
            Effect::Pure,
            |_key| async move { Ok(recorded) },
        )
        .await?;
        self.progress(progress);
        Ok(())
    }

    /// In a durable run taken up again after a crash or a restart, the last progress its
    /// earlier attempts journaled with [`record_progress`](Self::record_progress); `None` for a
    /// fresh run, a run that recorded none, or outside a durable run.
    pub fn resumed_progress(&self) -> Option<Progress> {
        self.durable.as_deref()?.last_recorded(PROGRESS_STEP)
    }

    /// The current task is watched by a heartbeat timeout: its start is its first beat.
    pub(crate) fn watch_beats(&mut self, at: Instant) -> Arc<Pulse> {
        self.beating = true;
        self.pulse.restart_at(at);
        Arc::clone(&self.pulse)
    }

    /// The lineage of what the current task's handler asks or tells, while one runs: the
    /// task's ask as the parent, in the task's request.
    pub(crate) fn lineage(&self) -> Option<Lineage> {
        self.task.map(|ask| Lineage::under(ask, self.made_in))
    }

    /// The watched task has ended.
    pub(crate) fn stop_watching_beats(&mut self) {
        self.beating = false;
    }

    /// The last progress the current task reported.
    pub(crate) fn last_progress(&self) -> Option<Progress> {
        self.notes.as_deref()?.progress.clone()
    }

    /// The failure of the previous attempt of the current task, when the task is a retry (by
    /// the agent's [`RetryPolicy`](overseer_retry::RetryPolicy), see
    /// [`AgentSpec::retry`](crate::AgentSpec::retry)) or a rung of an escalation ladder
    /// ([`AgentRef::ask_escalating`](crate::AgentRef::ask_escalating)); `None` for a first
    /// attempt. Put it in the prompt: "the last answer failed because...".
    pub fn previous_failure(&self) -> Option<&Feedback> {
        self.feedback.as_ref()
    }

    /// The current task is a retry after `feedback` (or a first attempt: `None`).
    pub(crate) fn set_feedback(&mut self, feedback: Option<Feedback>) {
        self.feedback = feedback;
    }

    /// Whether the current task is a vote's sample (whose calls are not watched for loops).
    pub(crate) fn set_sample(&mut self, sample: bool) {
        self.sample = sample;
    }

    /// The current task's feedback, taken at its end.
    pub(crate) fn take_feedback(&mut self) -> Option<Feedback> {
        self.feedback.take()
    }

    /// The highest budget warning tier reached by this agent's or the process's spend, if
    /// any: a signal to wrap up. `None` without a budget or below the first tier.
    pub fn budget_tier(&self) -> Option<Tier> {
        self.budget.as_ref()?.tier(self.name.as_str())
    }

    /// What this agent may still spend (the smaller of its own and the process's remaining
    /// budget, per dimension; `None` in a dimension without a limit). `None` without a budget.
    pub fn budget_remaining(&self) -> Option<Remaining> {
        Some(self.budget.as_ref()?.remaining(self.name.as_str()))
    }

    /// The agent's name.
    pub fn name(&self) -> &AgentName {
        &self.name
    }

    /// The agent's path in the supervision tree.
    pub fn path(&self) -> &ChildPath {
        &self.path
    }

    /// When the current task must be answered; past it the handler is treated as hung.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// A call into the bulkhead named `name` ([`SystemBuilder::bulkhead`]), whose permit
    /// wait ends at the current task's deadline (no bound outside a task):
    ///
    /// ```text
    /// let draft = ctx.bulkhead("model-calls")?.run(write_draft(ctx, topic)).await?;
    /// ```
    ///
    /// The call borrows nothing of the context, so the work it runs may use it (the
    /// repository's `docs/coordination.md` has a compiled example).
    ///
    /// # Errors
    /// [`BulkheadError::Unknown`](overseer_fanout::BulkheadError::Unknown) at once for a name
    /// the system was not built with.
    ///
    /// [`SystemBuilder::bulkhead`]: crate::SystemBuilder::bulkhead
    pub fn bulkhead(&self, name: &str) -> Result<BulkheadCall, overseer_fanout::BulkheadError> {
        self.bulkheads.call(name, self.deadline)
    }

    /// How long the current task has left.
    pub fn time_left(&self) -> Option<Duration> {
        self.deadline
            .map(|deadline| deadline.saturating_duration_since(Instant::now()))
    }

    /// The run the current task belongs to, when it was asked as a durable run
    /// ([`AgentRef::ask_run`](crate::AgentRef::ask_run)).
    pub fn run_id(&self) -> Option<&RunId> {
        self.durable.as_deref().map(DurableRun::run)
    }

    /// Runs `work` as a durable step named `name` with `effect`: the first time it runs and
    /// its result is journaled; when the run is replayed (after a restart of the agent, or in
    /// a new process) the recorded result is returned and `work` is not run. `work` is given
    /// the step's idempotency key, derived from the run and the step's place in it, the same on
    /// every retry and replay: pass it to an external system that takes one.
    ///
    /// Steps are numbered in program order within the ask, so a handler must take the same
    /// steps in the same order on replay: one that asks for another step at a recorded place
    /// fails with [`StepError::Diverged`](crate::StepError::Diverged). Outside a durable run (a plain `ask`), `work` just
    /// runs, with a fresh key.
    ///
    /// After a crash between a step's start and its result: a [`Pure`](Effect::Pure) or
    /// [`Idempotent`](Effect::Idempotent) step runs again; a [`Keyed`](Effect::Keyed) one runs
    /// again with the same key; an [`Unsafe`](Effect::Unsafe) one is not run again: it fails
    /// with [`StepError::InDoubt`](crate::StepError::InDoubt) and goes to the dead letters (use
    /// [`step_reconciled`](Self::step_reconciled) to check whether it happened instead).
    ///
    /// # Errors
    ///
    /// What `work` returns (a [`AgentError::Failed`] is journaled and replayed as the same
    /// failure; a fatal error is not journaled), or an [`AgentError::Step`]: the journal
    /// failed, the run diverged, this incarnation was fenced off, or an unsafe effect is in
    /// doubt.
    ///
    /// # Cancel safety
    ///
    /// A step dropped while `work` runs has an intent (for keyed and unsafe effects) and no
    /// result: it is handled as after a crash.
    pub async fn step<T, F, Fut>(
        &mut self,
        name: &str,
        effect: Effect,
        work: F,
    ) -> Result<T, AgentError>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce(IdempotencyKey) -> Fut,
        Fut: Future<Output = Result<T, AgentError>>,
    {
        self.step_reconciled(name, effect, work, |_| async { Reconciled::Unknown })
            .await
    }

    /// As [`step`](Self::step), with a check for an unsafe effect left in doubt by a crash:
    /// `reconcile` is given the step's key and says whether the effect happened (its result is
    /// then journaled), did not (it runs now), or cannot tell (a dead letter).
    ///
    /// # Errors
    ///
    /// As [`step`](Self::step).
    pub async fn step_reconciled<T, F, Fut, R, RFut>(
        &mut self,
        name: &str,
        effect: Effect,
        work: F,
        reconcile: R,
    ) -> Result<T, AgentError>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce(IdempotencyKey) -> Fut,
        Fut: Future<Output = Result<T, AgentError>>,
        R: FnOnce(IdempotencyKey) -> RFut,
        RFut: Future<Output = Reconciled<T>>,
    {
        let work = |key| async move { work(key).await.map(|value| (value, Spent::NONE)) };
        self.journaled_step(name, effect, work, reconcile).await
    }

    /// As [`step`](Self::step), for work that spends through others, a sub-ask above all
    /// ([`AgentRef::ask_metered`](crate::AgentRef::ask_metered)): `work` returns its value and
    /// what it cost, and the cost is journaled with the step's result. The sub-ask's own
    /// admission has charged it to the budget already; what the journal adds is that a process
    /// that resumes the run after a crash restores it into its ledger (with the run's other
    /// spend), so the budget's limit still bounds the run. Replayed, the step returns its value
    /// and charges nothing.
    ///
    /// ```no_run
    /// # use overseer_agent::{AgentContext, AgentError, AgentRef, Agent};
    /// # use overseer_journal::Effect;
    /// # async fn research<R: Agent<Task = String, Output = String>>(ctx: &mut AgentContext, researcher: &AgentRef<R>) -> Result<String, AgentError> {
    /// let found = ctx
    ///     .step_with_spend("research", Effect::Idempotent, |_key| async {
    ///         let answer = researcher.ask_metered("prior work on X".to_string()).await;
    ///         let answer = answer.map_err(|error| AgentError::failed(error.to_string()))?;
    ///         Ok((answer.output, answer.usage))
    ///     })
    ///     .await?;
    /// # Ok(found) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`step`](Self::step).
    ///
    /// # Cancel safety
    ///
    /// As [`step`](Self::step).
    pub async fn step_with_spend<T, F, Fut>(
        &mut self,
        name: &str,
        effect: Effect,
        work: F,
    ) -> Result<T, AgentError>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce(IdempotencyKey) -> Fut,
        Fut: Future<Output = Result<(T, Usage), AgentError>>,
    {
        let work = |key| async move {
            work(key)
                .await
                .map(|(value, usage)| (value, Spent::from(usage)))
        };
        let reconcile = |_| async { Reconciled::Unknown };
        self.journaled_step(name, effect, work, reconcile).await
    }

    /// The body of every step: `work` returns the step's value and what it cost.
    async fn journaled_step<T, F, Fut, R, RFut>(
        &mut self,
        name: &str,
        effect: Effect,
        work: F,
        reconcile: R,
    ) -> Result<T, AgentError>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce(IdempotencyKey) -> Fut,
        Fut: Future<Output = Result<(T, Spent), AgentError>>,
        R: FnOnce(IdempotencyKey) -> RFut,
        RFut: Future<Output = Reconciled<T>>,
    {
        self.heartbeat();
        let Some(durable) = self.durable.as_deref_mut() else {
            let outcome = work(fresh_key(&self.path)).await.map(|(value, _)| value);
            self.heartbeat();
            return self.watched_step(name, outcome);
        };
        let (step, prepared) = durable
            .prepare::<T>(name, effect, Spent::NONE)
            .await
            .map_err(AgentError::step)?;
        let (key, reconciled) = match prepared {
            Prepared::Replayed(outcome) => return outcome,
            Prepared::Run(key) => (key, None),
            Prepared::Reconcile(key) => {
                let found = reconcile(key.clone()).await;
                (key, Some(found))
            }
        };
        let (outcome, spent) = match reconciled {
            None | Some(Reconciled::DidNotHappen) => match work(key).await {
                Ok((value, spent)) => (Ok(value), spent),
                Err(error) => (Err(error), Spent::NONE),
            },
            Some(Reconciled::Happened(value)) => (Ok(value), Spent::NONE),
            Some(Reconciled::Unknown) => {
                return Err(AgentError::step(durable.dead_letter(step, &key).await))
            }
        };
        durable
            .complete(step, name, effect, false, &outcome, spent)
            .await
            .map_err(AgentError::step)?;
        self.heartbeat();
        self.watched_step(name, outcome)
    }

    /// Calls the model as a durable step: journaled with what it cost, replayed from the
    /// journal without calling the model (or paying) again. Its usage is reported as by
    /// [`report_usage`](Self::report_usage) when the model is called, and not when the answer
    /// is replayed. Outside a durable run it is a plain call.
    ///
    /// A call made (not replayed) names its model in the ask's event
    /// ([`AskEvent::model`](crate::AskEvent::model): the client's
    /// [`model_name`](ModelClient::model_name), else the name the provider answered with; a
    /// later [`report_model`](Self::report_model) overrides it), is listed in
    /// [`AskEvent::model_calls`](crate::AskEvent::model_calls), and runs in a tracing span
    /// `chat` with the OpenTelemetry GenAI attributes: `gen_ai.operation.name` (`chat`),
    /// `gen_ai.request.model`, `gen_ai.response.model`, `gen_ai.response.finish_reasons`,
    /// `gen_ai.usage.input_tokens`, `gen_ai.usage.output_tokens`,
    /// `gen_ai.usage.cache_read.input_tokens`, and `error.type` (the failure's class) when it
    /// fails.
    ///
    /// # Errors
    ///
    /// The model's failure as an agent error of the same class (`From<ModelError>`): a
    /// transient [`AgentError::Failed`], [`AgentError::RateLimited`], a permanent
    /// [`AgentError::Permanent`], or [`AgentError::ReplayUnsafe`] when the request was
    /// processed and its answer lost (never retried; journaled, so a replay fails the same way
    /// without calling the model), or an [`AgentError::Step`] as for [`step`](Self::step).
    pub async fn model<C: ModelClient>(
        &mut self,
        client: &C,
        request: ModelRequest,
    ) -> Result<ModelResponse, AgentError> {
        let args = self.watch.is_some().then(|| request_hash(&request));
        self.heartbeat();
        let Some(durable) = self.durable.as_deref_mut() else {
            let (response, call) = call_model(&self.name, client, request).await;
            self.record_model_call(call);
            return self.watched_model(args, response);
        };
        let reserved = if self.budget.is_some() {
            client
                .estimate(&request)
                .map_or_else(|| reservation_for(&request), Spent::from)
        } else {
            Spent::NONE
        };
        let (step, prepared) = durable
            .prepare::<ModelResponse>("model", Effect::Idempotent, reserved)
            .await
            .map_err(AgentError::step)?;
        if let Prepared::Replayed(outcome) = prepared {
            return outcome;
        }
        let (outcome, call) = call_model(&self.name, client, request).await;
        let recorded = durable
            .complete(
                step,
                "model",
                Effect::Idempotent,
                true,
                &outcome,
                call.usage.into(),
            )
            .await;
        // Paid for, whether or not its answer could be journaled.
        self.record_model_call(call);
        recorded.map_err(AgentError::step)?;
        self.watched_model(args, outcome)
    }

    /// A model call made: its cost reported (as by [`report_usage`](Self::report_usage)), its
    /// model named for the ask's event, and the call listed in it.
    fn record_model_call(&mut self, call: ModelCall) {
        self.heartbeat();
        self.report_usage(call.usage);
        let notes = self.notes.get_or_insert_with(Box::default);
        if !call.model.is_empty() {
            notes.model = Some(Cow::Owned(call.model.clone()));
        }
        notes.model_calls.push(call);
    }

    /// Tells the loop detector of a tool call the handler made, `name` with `args` (compared
    /// by their canonical JSON: object keys in any order), and how it ended: with the tool's
    /// output, or failed (`None`). Without a loop detector
    /// ([`SemanticConfig::loops`](crate::SemanticConfig::loops)) it does nothing.
    /// [`step`](Self::step) and [`model`](Self::model) calls are observed without it.
    ///
    /// # Errors
    ///
    /// [`AgentError::Permanent`] (`loop detected: ...`, with the detector's explanation) when
    /// this call completes a loop and the system's action is
    /// [`LoopAction::Fail`](crate::LoopAction::Fail).
    pub fn tool_call(
        &self,
        name: &str,
        args: &serde_json::Value,
        output: Option<&serde_json::Value>,
    ) -> Result<(), AgentError> {
        let Some(caller) = self.caller() else {
            return Ok(());
        };
        let outcome = output.map_or(CallOutcome::Failure, CallOutcome::output);
        caller.observe_call(name, canonical_hash(args), 0, outcome)
    }

    /// Tells the loop detector that the handler handed a `task_type` task to agent `to`, so
    /// delegations back and forth between two agents are found (a ping-pong). Without a loop
    /// detector it does nothing.
    ///
    /// # Errors
    ///
    /// As [`tool_call`](Self::tool_call), for a ping-pong.
    pub fn delegated(&self, to: &AgentName, task_type: &str) -> Result<(), AgentError> {
        match self.caller() {
            Some(caller) => caller.observe_delegation(to.as_str(), task_type),
            None => Ok(()),
        }
    }

    /// Who makes the current calls, for the loop detector; `None` if nothing watches them (or
    /// the task is a vote's sample: a vote repeats one task on purpose).
    fn caller(&self) -> Option<Caller<'_>> {
        let shared = &self.watch.as_ref()?.0;
        if self.sample {
            return None;
        }
        Some(Caller {
            shared,
            agent: &self.name,
            path: &self.path,
            task: self.task,
            task_type: self.task_type,
        })
    }

    /// A step's outcome, once the loop detector has seen it.
    fn watched_step<T: Serialize>(
        &self,
        name: &str,
        outcome: Result<T, AgentError>,
    ) -> Result<T, AgentError> {
        let Some(caller) = self.caller() else {
            return outcome;
        };
        let seen = match &outcome {
            Ok(value) => serde_json::to_value(value)
                .map_or(CallOutcome::Failure, |value| CallOutcome::output(&value)),
            Err(_) => CallOutcome::Failure,
        };
        caller.observe_call(name, CanonicalHash::of_text(name), 0, seen)?;
        outcome
    }

    /// A model call's outcome, once the loop detector has seen it.
    fn watched_model(
        &self,
        args: Option<CanonicalHash>,
        outcome: Result<ModelResponse, AgentError>,
    ) -> Result<ModelResponse, AgentError> {
        let (Some(caller), Some(args)) = (self.caller(), args) else {
            return outcome;
        };
        let (seen, tokens) = match &outcome {
            Ok(response) => (
                CallOutcome::output_text(&response.text),
                response
                    .usage
                    .input_tokens
                    .saturating_add(response.usage.output_tokens),
            ),
            Err(_) => (CallOutcome::Failure, 0),
        };
        caller.observe_call("model", args, tokens, seen)?;
        outcome
    }

    /// Waits, durably, for the signal `name` of the current run (a person's approval before an
    /// irreversible step, say): once [`AgentRef::signal`](crate::AgentRef::signal) has delivered
    /// it, its value. Until then the handler stops here with
    /// [`StepError::Suspended`](crate::StepError::Suspended): the ask ends, the agent is free,
    /// and the run stays unfinished in the journal, through restarts of the process, until the
    /// signal resumes it (replaying the steps before this one).
    ///
    /// # Errors
    ///
    /// [`AgentError::Step`] with `Suspended` while the signal has not come;
    /// [`AgentError::Failed`] when its value does not read as a `T`, or outside a durable run
    /// (nothing could resume it).
    pub fn wait_for<T: DeserializeOwned>(&self, name: &str) -> Result<T, AgentError> {
        let Some(durable) = self.durable.as_deref() else {
            return Err(AgentError::failed(format!(
                "wait_for({name:?}) outside a durable run: nothing could resume it"
            )));
        };
        match durable.signal(name) {
            Some(value) => value.decode().map_err(|error| {
                AgentError::failed(format!(
                    "the signal {name:?} does not read as its type: {error}"
                ))
            }),
            None => Err(AgentError::step(crate::error::StepError::Suspended {
                run: durable.run().clone(),
                signal: name.to_string(),
            })),
        }
    }

    /// What the steps replayed in the current task had spent (already paid, not charged
    /// again).
    pub fn replayed_usage(&self) -> Usage {
        self.durable
            .as_deref()
            .map_or_else(Usage::default, DurableRun::replayed)
    }

    /// Adds usage (tokens, cost) to the current task's account. It is returned with the
    /// outcome of the ask, published in the ask's event, and charged to budgets.
    pub fn report_usage(&mut self, usage: Usage) {
        self.usage += usage;
        if let Some(settlement) = &self.settlement {
            settlement.report(usage);
        }
    }

    /// Spawns `task` on the current tokio runtime, tied to this incarnation of the agent: it
    /// is aborted when the incarnation ends (its agent crashes, fails a task fatally, hangs,
    /// is restarted with its group, stopped or killed, or the system shuts down), as an Erlang
    /// process linked to its parent dies with it. Use it for work a handler starts and does
    /// not wait for (a heartbeat, a prefetch, a watcher): a task spawned with `tokio::spawn`
    /// is not tied to anything and outlives the agent's crashes, restarts and the system
    /// itself.
    ///
    /// The handle can abort the task earlier; the task's output is not kept. Spawned during
    /// a task, what it asks or tells names the task's ask as its parent
    /// ([`AskEvent::parent`](crate::AskEvent::parent)), as the handler's own asks do.
    ///
    /// # Panics
    /// Outside a tokio runtime (a handler always runs inside one).
    ///
    /// ```
    /// use overseer_agent::{Agent, AgentContext, AgentError};
    ///
    /// struct Watcher;
    /// impl Agent for Watcher {
    ///     type Task = ();
    ///     type Output = ();
    ///     async fn handle(&mut self, ctx: &mut AgentContext, _: ()) -> Result<(), AgentError> {
    ///         // Ends with this incarnation, whatever ends it.
    ///         ctx.spawn(async {
    ///             loop {
    ///                 tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    ///             }
    ///         });
    ///         Ok(())
    ///     }
    /// }
    /// ```
    pub fn spawn<F>(&mut self, task: F) -> tokio::task::AbortHandle
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        match self.lineage() {
            Some(lineage) => self.tasks.spawn(crate::cause::handling(lineage, task)),
            None => self.tasks.spawn(task),
        }
    }

    /// How many tasks this incarnation spawned with [`spawn`](Self::spawn) are still running.
    pub fn live_tasks(&self) -> usize {
        self.tasks.live()
    }

    /// Names the model the current task used (`"gpt-4o"`, `"claude-sonnet-4"`; the last name
    /// counts if it used several: a call through [`model`](Self::model) names its client's). It is published in the ask's event
    /// ([`AskEvent::model`](crate::AskEvent::model)) and exported as `gen_ai.request.model` on
    /// the ask's OpenTelemetry span.
    pub fn report_model(&mut self, model: impl Into<Cow<'static, str>>) {
        self.notes.get_or_insert_with(Box::default).model = Some(model.into());
    }

    /// The usage reported so far for the current task.
    pub fn usage(&self) -> Usage {
        self.usage
    }

    /// Marks the current task's outcome as caused by an injected fault (fault injection does
    /// this), so events tell injected failures from real ones.
    /// The first mark of a task counts.
    pub fn mark_injected(&mut self, fault: &'static str) {
        let Some(task) = self.task else { return };
        let notes = self.notes.get_or_insert_with(Box::default);
        if notes.injected.is_none() {
            notes.injected = Some(fault);
            self.marks.set(task, fault);
        }
    }

    /// The current task's settlement, shared.
    pub(crate) fn settlement(&self) -> Option<Arc<Settlement>> {
        self.settlement.clone()
    }

    /// Starts the task `(ask, made_in, task_type)`.
    pub(crate) fn begin_task(
        &mut self,
        deadline: Instant,
        task: (EventId, Option<Lineage>, &'static str),
        settlement: Option<Arc<Settlement>>,
    ) {
        let (task, made_in, task_type) = task;
        self.made_in = made_in;
        self.task_type = task_type;
        if let Some(settlement) = &settlement {
            settlement.begin();
        }
        self.settlement = settlement;
        self.deadline = Some(deadline);
        self.usage = Usage::default();
        self.task = Some(task);
        self.notes = None;
    }

    /// The current task belongs to `run`, claimed by this incarnation.
    pub(crate) fn begin_durable(&mut self, run: DurableRun) {
        self.durable = Some(Box::new(run));
    }

    /// The durable run of the task that ended, for its finish.
    pub(crate) fn take_durable(&mut self) -> Option<Box<DurableRun>> {
        self.durable.take()
    }

    /// Ends the task: what it reported (usage, model) and the fault it was marked with.
    pub(crate) fn end_task(&mut self) -> TaskReport {
        self.deadline = None;
        self.task = None;
        TaskReport {
            usage: std::mem::take(&mut self.usage),
            notes: self.notes.take(),
            settlement: self.settlement.take(),
            made_in: self.made_in.take(),
        }
    }
}

/// A key for a step outside a durable run: unique, never retried.
fn fresh_key(path: &ChildPath) -> IdempotencyKey {
    IdempotencyKey::derive(&RunId::mint(), &StepId::new(path.to_string(), 0, 0))
}

/// What a model call may spend, journaled with its intent: its prompt's words as input tokens,
/// its answer limit as output tokens.
fn reservation_for(request: &ModelRequest) -> Spent {
    let words = |text: &str| text.split_whitespace().count() as u64;
    Spent {
        input_tokens: words(&request.prompt) + request.system.as_deref().map_or(0, words),
        output_tokens: u64::from(request.max_tokens),
        cost_micros: 0,
    }
}

/// The loop detector's key for a model request: its system prompt and prompt.
fn request_hash(request: &ModelRequest) -> CanonicalHash {
    canonical_hash(&serde_json::json!([request.system, request.prompt]))
}

/// What a finished task reported, for its answer.
pub(crate) struct TaskReport {
    pub(crate) usage: Usage,
    pub(crate) notes: Option<Box<TaskNotes>>,
    pub(crate) settlement: Option<Arc<Settlement>>,
    /// Where the task was made (a tell's event names it).
    pub(crate) made_in: Option<Lineage>,
}

/// What a task reports beyond its usage, which most tasks do not: kept boxed in the answer, so
/// that a plain answer moves one pointer for all of it.
#[derive(Debug, Default)]
pub(crate) struct TaskNotes {
    /// The fault marked on the task.
    pub(crate) injected: Option<&'static str>,
    /// The model the task named.
    pub(crate) model: Option<Cow<'static, str>>,
    /// The model calls it made, in order.
    pub(crate) model_calls: Vec<ModelCall>,
    /// The last progress it reported.
    pub(crate) progress: Option<Progress>,
}

impl TaskNotes {
    /// The notes of a task marked with `injected` alone; `None` if it was not marked.
    pub(crate) fn of_injected(injected: Option<&'static str>) -> Option<Box<Self>> {
        injected.map(|fault| {
            Box::new(Self {
                injected: Some(fault),
                ..Self::default()
            })
        })
    }
}

/// Calls `client` in its `chat` span: the outcome as the handler's, and the call as made.
async fn call_model<C: ModelClient>(
    agent: &AgentName,
    client: &C,
    request: ModelRequest,
) -> (Result<ModelResponse, AgentError>, ModelCall) {
    use tracing::Instrument;
    let requested = client.model_name();
    let span = model_call::span(agent, requested);
    let outcome = if span.is_disabled() {
        client.complete(request).await
    } else {
        client.complete(request).instrument(span.clone()).await
    };
    // What the call cost: the usage of its answer or, when a processed request's answer was
    // lost (replay-unsafe), what the client says it spent: never nothing.
    let call = model_call::record_outcome(&span, requested, &outcome);
    (outcome.map_err(AgentError::from), call)
}
