//! Crash-point enumeration and property tests for durable runs, through agents.
//!
//! A scripted multi-agent run (an orchestrator that calls a model, asks a researcher agent,
//! pays through a provider that takes idempotency keys, sends an email that nothing outside can
//! deduplicate, under a budget) is run once without a crash, then crashed after every record of
//! its journal (and with that record torn), shut down, and resumed by a new process over the
//! same journal (`resume_unfinished`, then the run asked again with its id); then crashed a
//! second time, after every record the resuming process writes. Property tests follow: random
//! plans crashed at random points in up to three processes, some also restarted in place by a
//! panic at a random step; and two or three runs at once, whose appends share commits. Each
//! case checks that:
//!
//! * the run ends with the crash-free run's output, and the journal holds the same steps with
//!   the same results;
//! * each payment was applied once by the provider, and each email sent once (an email in doubt
//!   is reconciled against the mailbox, never sent again);
//! * a model call, a sub-ask or a computation was made again only for the step in flight at the
//!   crash, whose result the journal did not hold;
//! * the ledger of the process that finished the run holds the run's whole spend once (what the
//!   dead process spent is restored, not charged again), and committed plus reserved spend never
//!   went past the budget's limit.
//!
//! Every case runs on a paused clock; the journal is in memory (`MemStorage`, with its crash
//! plans), as the next process would reopen a file, or with `OVERSEER_TEST_PG` set on
//! PostgreSQL (a database per case; the next process opens the same database, `restart`).
//!
//! Three tests at the end show, alone, what these tests found: spend after a restart in place,
//! and a new process's budget before its runs resume (both fixed), and a sub-ask's spend inside
//! a step (a known limit, documented in docs/durability.md: that test is ignored).

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use overseer::agent::{
    Agent, AgentContext, AgentError, AgentRef, AgentSpec, AskError, ModelRequest, Reconciled,
    ScriptedModel, StepError, System, Usage, WeakSystem,
};
use overseer::budget::{Budget, Dimension, Limits};
use overseer::journal::{
    CrashPlan, Effect, Entry, Journal, JournalConfig, Opened, Recorded, RunId, Spent, StepId,
};
use overseer::supervisor::SupervisorSpec;
use overseer_postgres::testing::TestStorage;
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------------
// The run: an orchestrator taking the steps of a plan, and a researcher it asks
// ---------------------------------------------------------------------------------------------

/// One step of the orchestrator's plan, and the effect it declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A model call (`AgentContext::model`): idempotent for the world, but paid for.
    Model,
    /// An ask of the researcher agent, wrapped in an idempotent step.
    Research,
    /// A computation (pure).
    Compute,
    /// A read of an outside system (idempotent).
    Lookup,
    /// A payment through a provider that applies one request per idempotency key (keyed).
    Payment,
    /// An email: sent twice, it is sent twice (unsafe), reconciled against the mailbox.
    Email,
}

impl Kind {
    const ALL: [Kind; 6] = [
        Kind::Model,
        Kind::Research,
        Kind::Compute,
        Kind::Lookup,
        Kind::Payment,
        Kind::Email,
    ];

    /// The code the plan (the run's journaled input) holds.
    fn code(self) -> u8 {
        Kind::ALL.iter().position(|&kind| kind == self).unwrap_or(0) as u8
    }

    fn of(code: u8) -> Option<Kind> {
        Kind::ALL.get(usize::from(code)).copied()
    }

    /// The name of its step in the journal.
    fn step_name(self) -> &'static str {
        match self {
            Kind::Model => "model",
            Kind::Research => "research",
            Kind::Compute => "compute",
            Kind::Lookup => "lookup",
            Kind::Payment => "payment",
            Kind::Email => "email",
        }
    }
}

/// Where an in-process crash (a panic of the orchestrator's handler) happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Before the step is taken: nothing of it has happened.
    Before,
    /// Inside the step, once its effect has happened and before its result is journaled: the
    /// worst place.
    AfterEffect,
}

/// The world outside the process, which survives its crashes: what really happened.
#[derive(Debug, Default)]
struct World {
    /// Per plan step: how many times its work really ran (a model answered, a sub-ask was
    /// made, a computation or lookup ran, a payment request reached the provider, an email was
    /// sent).
    runs: Mutex<BTreeMap<usize, u32>>,
    /// The payment provider: receipts by idempotency key (a request with a known key gets the
    /// first receipt back and charges nothing).
    receipts: Mutex<HashMap<String, String>>,
    /// How many charges the provider applied.
    charges_applied: AtomicU32,
    /// The mailbox: what was sent, by idempotency key, and how many times.
    mailbox: Mutex<HashMap<String, (String, u32)>>,
    /// Per plan step: how many times an email in doubt was reconciled.
    reconciliations: Mutex<BTreeMap<usize, u32>>,
    /// How many asks the researcher handled.
    researcher_asks: AtomicU32,
    /// Whether the researcher calls a model of its own for each question (in its plain ask).
    researcher_calls_a_model: AtomicBool,
    /// The one panic to inject, taken when it happens.
    panic_at: Mutex<Option<(usize, Phase)>>,
    /// How many panics were injected.
    panics: AtomicU32,
    /// Which process runs now, counting from 1.
    process: AtomicU32,
    /// The process the panic happened in, once it has.
    panicked_in: AtomicU32,
    /// The budget of the process running now, to sample.
    budget: Mutex<Option<Budget>>,
    /// The most tokens committed plus reserved in any sample, over all processes.
    peak_tokens: AtomicU64,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl World {
    fn ran(&self, step: usize) {
        *lock(&self.runs).entry(step).or_default() += 1;
        self.sample();
    }

    fn runs_of(&self, step: usize) -> u32 {
        lock(&self.runs).get(&step).copied().unwrap_or(0)
    }

    fn reconciliations_of(&self, step: usize) -> u32 {
        lock(&self.reconciliations).get(&step).copied().unwrap_or(0)
    }

    /// A payment request with `key`: charged once per key.
    fn charge(&self, step: usize, key: &str) -> String {
        self.ran(step);
        let mut receipts = lock(&self.receipts);
        let receipt = receipts.entry(key.to_string()).or_insert_with(|| {
            self.charges_applied.fetch_add(1, Ordering::SeqCst);
            format!("paid{step}-{:08x}", fnv(key))
        });
        receipt.clone()
    }

    /// Sends an email: every call sends one.
    fn send(&self, step: usize, key: &str, body: &str) -> String {
        self.ran(step);
        let receipt = format!("mail{step}-{:08x}", fnv(body));
        let mut mailbox = lock(&self.mailbox);
        let sent = mailbox
            .entry(key.to_string())
            .or_insert_with(|| (receipt.clone(), 0));
        sent.1 += 1;
        receipt
    }

    /// What the mailbox holds under `key`: how a check finds whether an email went out.
    fn reconcile(&self, step: usize, key: &str) -> Reconciled<String> {
        *lock(&self.reconciliations).entry(step).or_default() += 1;
        match lock(&self.mailbox).get(key) {
            Some((receipt, _)) => Reconciled::Happened(receipt.clone()),
            None => Reconciled::DidNotHappen,
        }
    }

    fn emails_sent(&self) -> Vec<u32> {
        lock(&self.mailbox)
            .values()
            .map(|(_, sent)| *sent)
            .collect()
    }

    /// Panics if the injected panic is due here (once).
    fn maybe_panic(&self, step: usize, phase: Phase) {
        let due = {
            let mut plan = lock(&self.panic_at);
            let due = *plan == Some((step, phase));
            if due {
                *plan = None;
            }
            due
        };
        if due {
            self.panics.fetch_add(1, Ordering::SeqCst);
            self.panicked_in
                .store(self.process.load(Ordering::SeqCst), Ordering::SeqCst);
            panic!("injected crash at step {step} ({phase:?})");
        }
    }

    /// Records the tokens committed plus reserved in the current process's budget.
    fn sample(&self) {
        let Some(budget) = lock(&self.budget).clone() else {
            return;
        };
        let ledger = budget.process();
        let held = ledger.committed(Dimension::Tokens) + ledger.reserved(Dimension::Tokens);
        self.peak_tokens.fetch_max(held, Ordering::SeqCst);
    }
}

/// FNV-1a: a deterministic fingerprint that chains each step's result into the next.
fn fnv(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    })
}

/// What the orchestrator's ask reserves against the budget until it ends.
const ESTIMATE: Usage = Usage::new(40, 20, 0);

/// Takes the steps of its plan in order, each fed the previous step's result; answers them all.
struct Orchestrator {
    world: Arc<World>,
    model: ScriptedModel,
    system: WeakSystem,
    /// The name of the researcher it asks.
    researcher: &'static str,
}

impl Agent for Orchestrator {
    /// A topic, and the plan's step kinds as codes.
    type Task = (String, Vec<u8>);
    type Output = String;

    fn estimate(_: &Self::Task) -> Usage {
        ESTIMATE
    }

    async fn handle(
        &mut self,
        ctx: &mut AgentContext,
        (topic, plan): Self::Task,
    ) -> Result<String, AgentError> {
        let world = &*self.world;
        let researcher: AgentRef<Researcher> = self
            .system
            .agent_ref(self.researcher)
            .map_err(|error| AgentError::Fatal(error.to_string()))?;
        let mut previous = topic;
        let mut results = Vec::with_capacity(plan.len());
        for (i, &code) in plan.iter().enumerate() {
            let kind =
                Kind::of(code).ok_or_else(|| AgentError::failed(format!("no step kind {code}")))?;
            world.maybe_panic(i, Phase::Before);
            let input = previous.clone();
            let result: String = match kind {
                Kind::Model => {
                    let request =
                        ModelRequest::new(format!("step {i} model on {input}")).max_tokens(8);
                    ctx.model(&self.model, request).await?.text
                }
                Kind::Research => {
                    let researcher = researcher.clone();
                    ctx.step_with_spend(kind.step_name(), Effect::Idempotent, |_| async move {
                        world.ran(i);
                        let found = researcher
                            .ask_metered(format!("{i} {input}"))
                            .await
                            .map_err(|error| AgentError::failed(error.to_string()))?;
                        world.maybe_panic(i, Phase::AfterEffect);
                        Ok((found.output, found.usage))
                    })
                    .await?
                }
                Kind::Compute | Kind::Lookup => {
                    let effect = if kind == Kind::Compute {
                        Effect::Pure
                    } else {
                        Effect::Idempotent
                    };
                    ctx.step(kind.step_name(), effect, |_| async move {
                        world.ran(i);
                        world.maybe_panic(i, Phase::AfterEffect);
                        Ok(format!("{}{i}-{:08x}", kind.step_name(), fnv(&input)))
                    })
                    .await?
                }
                Kind::Payment => {
                    ctx.step(kind.step_name(), Effect::Keyed, |key| async move {
                        let receipt = world.charge(i, key.as_str());
                        world.maybe_panic(i, Phase::AfterEffect);
                        Ok(receipt)
                    })
                    .await?
                }
                Kind::Email => {
                    ctx.step_reconciled(
                        kind.step_name(),
                        Effect::Unsafe,
                        |key| async move {
                            let receipt = world.send(i, key.as_str(), &input);
                            world.maybe_panic(i, Phase::AfterEffect);
                            Ok(receipt)
                        },
                        |key| async move { world.reconcile(i, key.as_str()) },
                    )
                    .await?
                }
            };
            world.sample();
            results.push(result.clone());
            previous = result;
        }
        Ok(results.join(" | "))
    }
}

/// The second agent: answers a research question from the question alone.
struct Researcher {
    world: Arc<World>,
}

impl Agent for Researcher {
    type Task = String;
    type Output = String;

    async fn handle(
        &mut self,
        ctx: &mut AgentContext,
        question: String,
    ) -> Result<String, AgentError> {
        self.world.researcher_asks.fetch_add(1, Ordering::SeqCst);
        if self.world.researcher_calls_a_model.load(Ordering::SeqCst) {
            // Not a durable run: a plain call, charged to this ask.
            ctx.model(&ScriptedModel::new(), ModelRequest::new(question.clone()))
                .await?;
        }
        Ok(format!("found-{:08x}", fnv(&question)))
    }
}

/// The model: answers a prompt `step {i} ...` with a word that depends on the whole prompt,
/// counting the call for step `i` (and crashing inside it when told to).
fn model(world: &Arc<World>) -> ScriptedModel {
    let world = Arc::clone(world);
    ScriptedModel::new()
        .when("model on", move |prompt| {
            let step: usize = prompt
                .split_whitespace()
                .nth(1)
                .and_then(|i| i.parse().ok())
                .unwrap_or(usize::MAX);
            world.ran(step);
            world.maybe_panic(step, Phase::AfterEffect);
            Ok(format!("said{step}-{:08x}", fnv(prompt)))
        })
        .price_per_token(3)
}

// ---------------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------------

/// One process: a system with a journal over `storage` and a budget of `limit` tokens.
struct Process {
    system: System,
    journal: Journal,
    budget: Budget,
    opened: Opened,
}

impl Process {
    /// A process running one crew per world: crew `j`'s agents are [`LEADS`]`[j]` and
    /// [`RESEARCHERS`]`[j]`.
    async fn start(storage: TestStorage, worlds: &[Arc<World>], limit: u64) -> Process {
        let (journal, opened) =
            Journal::open(storage, JournalConfig::default()).expect("the journal opens");
        let budget = Budget::builder()
            .process_limits(Limits::new().tokens(limit))
            .build()
            .expect("a valid budget");
        let system = System::builder()
            .ask_timeout(Duration::from_secs(60))
            .journal(journal.clone())
            .budget(budget.clone())
            .build()
            .expect("a valid system");
        let mut tree = SupervisorSpec::one_for_one("root").intensity(5, Duration::from_secs(5));
        for (j, world) in worlds.iter().enumerate() {
            *lock(&world.budget) = Some(budget.clone());
            world.process.fetch_add(1, Ordering::SeqCst);
            let lead = {
                let world = Arc::clone(world);
                let model = model(&world);
                let weak = system.downgrade();
                AgentSpec::new(LEADS[j], move || Orchestrator {
                    world: Arc::clone(&world),
                    model: model.clone(),
                    system: weak.clone(),
                    researcher: RESEARCHERS[j],
                })
            };
            let researcher = {
                let world = Arc::clone(world);
                AgentSpec::new(RESEARCHERS[j], move || Researcher {
                    world: Arc::clone(&world),
                })
            };
            tree = tree
                .child(system.agent(lead).expect("the lead's spec"))
                .child(system.agent(researcher).expect("the researcher's spec"));
        }
        system.start(tree).await.expect("the system starts");
        Process {
            system,
            journal,
            budget,
            opened,
        }
    }

    fn lead(&self, crew: usize) -> AgentRef<Orchestrator> {
        self.system
            .agent_ref(LEADS[crew])
            .expect("the lead is registered")
    }

    fn spent(&self) -> Spending {
        let ledger = self.budget.process();
        Spending {
            tokens: ledger.committed(Dimension::Tokens),
            cost: ledger.committed(Dimension::Cost),
            reserved_tokens: ledger.reserved(Dimension::Tokens),
        }
    }

    /// The journal's steps of `run`: name, effect, intent and result, in program order.
    fn steps(&self, run: &RunId) -> Vec<StepSummary> {
        self.journal.with_run(run, |record| {
            record.map_or_else(Vec::new, |record| {
                record
                    .steps()
                    .map(|(id, step)| StepSummary {
                        id: id.clone(),
                        name: step.name.clone(),
                        effect: step.effect,
                        intent: step.intent,
                        completed: step.completed.clone(),
                        dead_lettered: step.dead_lettered.clone(),
                    })
                    .collect()
            })
        })
    }

    fn outcome(&self, run: &RunId) -> Option<Recorded> {
        self.journal
            .with_run(run, |record| record.and_then(|r| r.outcome.clone()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Spending {
    tokens: u64,
    cost: u64,
    reserved_tokens: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct StepSummary {
    id: StepId,
    name: String,
    effect: Effect,
    intent: Option<Spent>,
    completed: Option<(Recorded, Spent)>,
    dead_lettered: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// A case: one run through processes that crash, until one finishes it
// ---------------------------------------------------------------------------------------------

const RUN: &str = "brief-7";
/// The run of each crew.
const RUNS: [&str; 3] = [RUN, "brief-8", "brief-9"];
/// The orchestrator and the researcher of each crew.
const LEADS: [&str; 3] = ["lead", "lead-2", "lead-3"];
const RESEARCHERS: [&str; 3] = ["researcher", "researcher-2", "researcher-3"];
const TOPIC: &str = "tides";

/// Where a process's journal storage crashes, counted from the records it opened with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Crash {
    /// After this many more records.
    After(u64),
    /// After this many more records, the next one torn.
    Torn(u64),
}

impl Crash {
    fn plan(self, held: u64) -> CrashPlan {
        match self {
            Crash::After(more) => CrashPlan::AfterRecords(held + more),
            Crash::Torn(more) => CrashPlan::TornAfterRecords(held + more),
        }
    }
}

/// What one process of a case did.
#[derive(Debug)]
struct Stage {
    /// What it found when it opened the journal.
    opened: Opened,
    /// What `resume_unfinished` gave back.
    resumed: Vec<(RunId, Result<String, AskError>)>,
    /// Its answer to the run asked with its id (after the resumption).
    answer: Result<String, AskError>,
    /// The records its storage held once it was gone (a torn one included).
    records_left: usize,
    /// Its ledger once its asks had ended.
    spent: Spending,
    /// How many durable commits its storage made (fewer than its records when appends were
    /// committed together).
    commits: u64,
}

impl Stage {
    fn finished_the_run(&self) -> bool {
        self.answer.is_ok() || self.resumed.iter().any(|(_, outcome)| outcome.is_ok())
    }
}

/// What one case did and found.
#[derive(Debug)]
struct Report {
    /// The run.
    run: RunId,
    /// The processes, in order: each crashed, but the last.
    stages: Vec<Stage>,
    /// A last process over the whole journal asked the run again with its id.
    asked_again: Result<String, AskError>,
    /// Its ledger.
    again_spent: Spending,
    /// The journal's record of the run at the end.
    steps: Vec<StepSummary>,
    outcome: Option<Recorded>,
    /// The first process's journal, decoded (for the crash-free run: the entries to crash
    /// after).
    entries: Vec<Entry>,
    world: Arc<World>,
}

/// Runs `plan` as run [`RUN`] through processes over one journal: process `k` crashes as
/// `crashes[k]` says; the one after the last crash does not. Each resumes what the journal
/// holds unfinished, then asks the run with its id; the first whose run finishes is the last.
/// Then one more process asks the run again.
async fn run_case(
    plan: &[Kind],
    crashes: &[Crash],
    panic: Option<(usize, Phase)>,
    limit: u64,
) -> Report {
    run_case_in(Arc::new(World::default()), plan, crashes, panic, limit).await
}

/// As [`run_case`], in `world`.
async fn run_case_in(
    world: Arc<World>,
    plan: &[Kind],
    crashes: &[Crash],
    panic: Option<(usize, Phase)>,
    limit: u64,
) -> Report {
    *lock(&world.panic_at) = panic;
    let mut reports = run_crews(vec![(world, plan.to_vec())], crashes, limit).await;
    reports.pop().expect("one report per crew")
}

/// What one crew's run did in one process.
struct CrewStage {
    resumed: Vec<(RunId, Result<String, AskError>)>,
    answer: Result<String, AskError>,
}

/// Runs the crews' plans at the same time, crew `j` as run [`RUNS`]`[j]`, through processes
/// over one journal as [`run_case`] does, until every run has finished; one report per crew,
/// with the processes up to the one that finished its run. The crews share each process's
/// journal (their appends are committed together) and budget.
async fn run_crews(
    crews: Vec<(Arc<World>, Vec<Kind>)>,
    crashes: &[Crash],
    limit: u64,
) -> Vec<Report> {
    let worlds: Vec<Arc<World>> = crews.iter().map(|(world, _)| Arc::clone(world)).collect();
    let runs: Vec<RunId> = (0..crews.len())
        .map(|j| RunId::new(RUNS[j]).expect("a valid run id"))
        .collect();
    let tasks: Vec<(String, Vec<u8>)> = crews
        .iter()
        .map(|(_, plan)| {
            (
                TOPIC.to_string(),
                plan.iter().map(|kind| kind.code()).collect::<Vec<u8>>(),
            )
        })
        .collect();
    let mut storage = TestStorage::new();
    let mut stages: Vec<Vec<Stage>> = crews.iter().map(|_| Vec::new()).collect();
    let mut finished = vec![false; crews.len()];
    let mut entries = Vec::new();
    for k in 0..=crashes.len() {
        let crash = crashes.get(k).copied();
        let held = storage.len() as u64;
        storage = match crash {
            // The earlier process is gone: the next finds its storage as it left it.
            Some(crash) => storage.restart().crash(crash.plan(held)),
            None => storage.restart(),
        };
        let process = Process::start(storage.clone(), &worlds, limit).await;
        // Every crew resumes and asks its run at the same time.
        let asks: Vec<_> = (0..crews.len())
            .filter(|&j| !finished[j])
            .map(|j| {
                let lead = process.lead(j);
                let (run, task) = (runs[j].clone(), tasks[j].clone());
                let ask = tokio::spawn(async move {
                    let resumed = lead
                        .resume_unfinished()
                        .await
                        .expect("the system has a journal");
                    let answer = lead.ask_run(run, task).await;
                    CrewStage { resumed, answer }
                });
                (j, ask)
            })
            .collect();
        let mut done = Vec::with_capacity(asks.len());
        for (j, ask) in asks {
            done.push((j, ask.await.expect("the crew's asks do not panic")));
        }
        for world in &worlds {
            world.sample();
        }
        let spent = process.spent();
        let opened = process.opened.clone();
        process
            .system
            .shutdown(Duration::from_secs(5))
            .await
            .expect("the system shuts down");
        if k == 0 {
            entries = storage
                .records()
                .iter()
                .filter_map(|record| serde_json::from_slice::<Entry>(record).ok())
                .collect();
        }
        for (j, crew) in done {
            let stage = Stage {
                opened: opened.clone(),
                resumed: crew.resumed,
                answer: crew.answer,
                records_left: storage.len(),
                spent,
                commits: storage.syncs(),
            };
            finished[j] = stage.finished_the_run();
            stages[j].push(stage);
        }
        if finished.iter().all(|&done| done) {
            break;
        }
    }
    let last = Process::start(storage.restart(), &worlds, limit).await;
    let mut asked_again = Vec::with_capacity(crews.len());
    for (j, (run, task)) in runs.iter().zip(tasks).enumerate() {
        asked_again.push(last.lead(j).ask_run(run.clone(), task).await);
    }
    let again_spent = last.spent();
    let steps: Vec<_> = runs.iter().map(|run| last.steps(run)).collect();
    let outcomes: Vec<_> = runs.iter().map(|run| last.outcome(run)).collect();
    last.system
        .shutdown(Duration::from_secs(5))
        .await
        .expect("the last system shuts down");
    let mut reports = Vec::with_capacity(crews.len());
    for (((((world, run), stages), asked_again), steps), outcome) in worlds
        .into_iter()
        .zip(runs)
        .zip(stages)
        .zip(asked_again)
        .zip(steps)
        .zip(outcomes)
    {
        *lock(&world.budget) = None;
        reports.push(Report {
            run,
            stages,
            asked_again,
            again_spent,
            steps,
            outcome,
            entries: entries.clone(),
            world,
        });
    }
    reports
}

// ---------------------------------------------------------------------------------------------
// What a recovered run must show
// ---------------------------------------------------------------------------------------------

/// The crash-free run of a plan: what every crashed case is compared with.
#[derive(Debug)]
struct Baseline {
    plan: Vec<Kind>,
    output: String,
    /// Records of the whole run: crash points are 0..=records.
    records: usize,
    entries: Vec<Entry>,
    steps: Vec<StepSummary>,
    outcome: Option<Recorded>,
    spent: Spending,
    /// The budget's limit for the crashed cases: the run's spend plus the estimate its ask
    /// holds, the most a process running it needs (a resuming process holds the restored spend
    /// and the ask's whole estimate together).
    limit: u64,
}

/// A limit no run here comes near, for the crash-free run.
const ROOMY: u64 = 1_000_000;

async fn baseline(plan: &[Kind]) -> Result<Baseline, String> {
    baseline_of(plan, &run_case(plan, &[], None, ROOMY).await)
}

/// The baseline of `plan` from the report of its crash-free run.
fn baseline_of(plan: &[Kind], report: &Report) -> Result<Baseline, String> {
    let [stage] = &report.stages[..] else {
        return Err(format!("the crash-free run took {:?}", report.stages));
    };
    let output = stage
        .answer
        .clone()
        .map_err(|error| format!("the crash-free run failed: {error:?}"))?;
    if stage.records_left != report.entries.len() {
        return Err(format!(
            "the crash-free journal holds {} records, {} of them readable",
            stage.records_left,
            report.entries.len()
        ));
    }
    let models = plan.iter().filter(|&&kind| kind == Kind::Model).count();
    if models > 0 && stage.spent.tokens == 0 {
        return Err(format!("{models} model calls spent {:?}", stage.spent));
    }
    for (i, _) in plan.iter().enumerate() {
        if report.world.runs_of(i) != 1 {
            return Err(format!(
                "step {i} ran {} times without a crash",
                report.world.runs_of(i)
            ));
        }
    }
    Ok(Baseline {
        plan: plan.to_vec(),
        output,
        records: stage.records_left,
        steps: report.steps.clone(),
        outcome: report.outcome.clone(),
        spent: stage.spent,
        limit: stage.spent.tokens + ESTIMATE.total_tokens(),
        entries: report.entries.clone(),
    })
}

/// The plan step whose result is the journal's record `n` of the crash-free run, if that record
/// is a step's result: the step in flight when a crash loses that record.
fn step_completed_at(baseline: &Baseline, n: usize) -> Option<usize> {
    match baseline.entries.get(n)? {
        Entry::StepCompleted { step, .. } => Some(step.ordinal as usize),
        _ => None,
    }
}

/// The typed error of an ask whose journal crashed under it.
fn is_journal_failure(error: &AskError) -> bool {
    matches!(error, AskError::Journal { .. })
        || matches!(error.step_error(), Some(StepError::Journal { .. }))
}

/// What every recovered case must show, whatever crashed it: the crash-free output and journal,
/// each payment applied once and each email sent once, the whole spend once in the ledger of
/// the process that finished the run, within the limit.
///
/// With several crews in each process (`exact_ledger` false) the ledgers hold their runs
/// together: they are only checked to stay within the limit and to charge nothing for finished
/// runs asked again.
fn check_recovered(
    baseline: &Baseline,
    report: &Report,
    limit: u64,
    exact_ledger: bool,
) -> Result<(), String> {
    let world = &report.world;
    let expected = Ok(baseline.output.clone());
    let Some(finisher) = report.stages.iter().position(Stage::finished_the_run) else {
        return Err(format!("no process finished the run: {:#?}", report.stages));
    };
    if finisher + 1 != report.stages.len() {
        return Err("a process ran after the run had finished".into());
    }
    for (k, stage) in report.stages.iter().enumerate() {
        let answers = stage
            .resumed
            .iter()
            .map(|(run, outcome)| (Some(run), outcome))
            .chain([(None, &stage.answer)]);
        for (run, outcome) in answers {
            let typed = match outcome {
                Ok(_) => *outcome == expected,
                Err(error) => is_journal_failure(error),
            };
            if !typed || run.is_some_and(|run| *run != report.run) {
                return Err(format!(
                    "process {k} answered {outcome:?} for {run:?}, not the crash-free {:?} or a \
                     journal failure",
                    baseline.output
                ));
            }
        }
    }
    if report.asked_again != expected
        || (report.again_spent.tokens, report.again_spent.cost) != (0, 0)
    {
        return Err(format!(
            "asked again once finished, the run answered {:?} and was charged {:?}",
            report.asked_again, report.again_spent
        ));
    }
    if report.outcome != baseline.outcome {
        return Err(format!(
            "the journal ends the run with {:?}, not {:?}",
            report.outcome, baseline.outcome
        ));
    }
    if report.steps != baseline.steps {
        return Err(format!(
            "the journal's steps differ from the crash-free run's:\n{:#?}\nvs\n{:#?}",
            report.steps, baseline.steps
        ));
    }
    let payments = baseline
        .plan
        .iter()
        .filter(|&&k| k == Kind::Payment)
        .count() as u32;
    let applied = world.charges_applied.load(Ordering::SeqCst);
    if applied != payments || lock(&world.receipts).len() as u32 != payments {
        return Err(format!(
            "{payments} payments, the provider applied {applied} charges"
        ));
    }
    let emails = baseline.plan.iter().filter(|&&k| k == Kind::Email).count();
    let sent = world.emails_sent();
    if sent.len() != emails || sent.iter().any(|&times| times != 1) {
        return Err(format!("{emails} emails, the mailbox holds {sent:?}"));
    }
    let research: u32 = baseline
        .plan
        .iter()
        .enumerate()
        .filter(|(_, &kind)| kind == Kind::Research)
        .map(|(i, _)| world.runs_of(i))
        .sum();
    if world.researcher_asks.load(Ordering::SeqCst) != research {
        return Err(format!(
            "{research} research steps ran, the researcher took {} asks",
            world.researcher_asks.load(Ordering::SeqCst)
        ));
    }
    let spent = report.stages[finisher].spent;
    let whole = (baseline.spent.tokens, baseline.spent.cost);
    if exact_ledger && (spent.tokens, spent.cost) != whole {
        return Err(format!(
            "the ledger of the process that finished the run holds {spent:?}, the crash-free run \
             spent {:?}",
            baseline.spent
        ));
    }
    for (k, stage) in report.stages.iter().enumerate() {
        if stage.spent.reserved_tokens != 0 || stage.spent.tokens > limit {
            return Err(format!(
                "after its asks the ledger of process {k} holds {:?} (limit {limit})",
                stage.spent
            ));
        }
    }
    let peak = world.peak_tokens.load(Ordering::SeqCst);
    if peak > limit {
        return Err(format!(
            "committed plus reserved tokens reached {peak}, past the limit of {limit}"
        ));
    }
    Ok(())
}

/// What one crash after record `n` (and nothing else) must show beyond [`check_recovered`],
/// exactly: the first process failed with a journal error unless the whole run fit; the second
/// found the records up to `n` (a torn one dropped) and the run unfinished if it had started
/// and not finished; only the step whose result was record `n` ran twice (an email in doubt was
/// reconciled instead): no model call was made again but the one whose answer was lost.
fn check_crash_after(
    baseline: &Baseline,
    report: &Report,
    n: usize,
    torn: bool,
) -> Result<(), String> {
    // A database never tears a record: on PostgreSQL a torn crash stops where a plain one does.
    let torn = torn && !overseer_postgres::testing::on_postgres();
    let whole = n >= baseline.records;
    let first = &report.stages[0];
    match (&first.answer, whole) {
        (Ok(_), true) => {}
        (Err(AskError::Journal { .. }), false) if n == 0 => {}
        (Err(error), false)
            if n > 0 && matches!(error.step_error(), Some(StepError::Journal { .. })) => {}
        (answer, _) => {
            return Err(format!(
                "crashed after {n} of {} records, the first process answered {answer:?}",
                baseline.records
            ))
        }
    }
    let kept = n.min(baseline.records);
    let torn_left = torn && !whole;
    if first.records_left != kept + usize::from(torn_left) {
        return Err(format!(
            "the crashed storage holds {} records, expected {kept}{}",
            first.records_left,
            if torn_left { " and a torn one" } else { "" }
        ));
    }
    if report.stages.len() != if whole { 1 } else { 2 } {
        return Err(format!("{} processes ran", report.stages.len()));
    }
    if let Some(second) = report.stages.get(1) {
        if second.opened.records != kept as u64 || second.opened.dropped_torn_record != torn_left {
            return Err(format!("the next process opened {:?}", second.opened));
        }
        let unfinished = n > 0;
        let found: Vec<&str> = second.opened.unfinished.iter().map(RunId::as_str).collect();
        let expected: &[&str] = if unfinished { &[RUN] } else { &[] };
        if found != expected || second.resumed.len() != usize::from(unfinished) {
            return Err(format!(
                "unfinished {found:?}, resumed {:?}",
                second.resumed
            ));
        }
    }
    let in_flight = step_completed_at(baseline, n);
    for (i, kind) in baseline.plan.iter().enumerate() {
        let again = u32::from(in_flight == Some(i));
        let (runs, reconciled) = (report.world.runs_of(i), report.world.reconciliations_of(i));
        let expected = match kind {
            Kind::Email => (1, again),
            _ => (1 + again, 0),
        };
        if (runs, reconciled) != expected {
            return Err(format!(
                "step {i} ({kind:?}) ran {runs} times and was reconciled {reconciled} times, \
                 expected {expected:?} (the record lost was {:?})",
                baseline.entries.get(n).map(Entry::kind)
            ));
        }
    }
    Ok(())
}

/// What any case must show beyond [`check_recovered`]: each interruption (a process whose
/// journal crashed, a panic) made at most one step's work run again, or one email in doubt be
/// reconciled.
fn check_interruptions(baseline: &Baseline, report: &Report) -> Result<(), String> {
    let world = &report.world;
    let failed = report
        .stages
        .iter()
        .filter(|stage| !stage.finished_the_run())
        .count() as u32;
    let interruptions = world.panics.load(Ordering::SeqCst) + failed;
    let mut again = 0;
    for (i, kind) in baseline.plan.iter().enumerate() {
        let runs = world.runs_of(i);
        if runs == 0 {
            return Err(format!("step {i} ({kind:?}) never ran"));
        }
        again += runs - 1 + world.reconciliations_of(i);
    }
    if again > interruptions {
        return Err(format!(
            "{again} steps ran again (or were reconciled) after {interruptions} interruptions: {:?}",
            lock(&world.runs)
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Every crash point of the scripted run
// ---------------------------------------------------------------------------------------------

/// The scripted multi-agent run: plan, research by the second agent, pay, draft, email, sum up.
const SCRIPT: [Kind; 6] = [
    Kind::Model,
    Kind::Research,
    Kind::Payment,
    Kind::Model,
    Kind::Email,
    Kind::Compute,
];

#[tokio::test(start_paused = true)]
async fn a_run_crashed_after_any_record_resumes_to_the_crash_free_outcome_with_each_effect_once() {
    let baseline = baseline(&SCRIPT).await.unwrap();
    // Start, claim, two model calls with intent and result, research, a payment and an email
    // with intent and result, a computation, the end.
    assert_eq!(baseline.records, 13, "{:#?}", baseline.entries);
    let mut failures = Vec::new();
    for n in 0..=baseline.records as u64 {
        for crash in [Crash::After(n), Crash::Torn(n)] {
            let report = run_case(&SCRIPT, &[crash], None, baseline.limit).await;
            let torn = matches!(crash, Crash::Torn(_));
            let verdict = check_recovered(&baseline, &report, baseline.limit, true)
                .and_then(|()| check_crash_after(&baseline, &report, n as usize, torn));
            if let Err(failure) = verdict {
                failures.push(format!("{crash:?}: {failure}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test(start_paused = true)]
async fn a_run_crashed_again_while_resuming_still_resumes_with_each_effect_once() {
    let baseline = baseline(&SCRIPT).await.unwrap();
    let mut failures = Vec::new();
    let mut cases = 0;
    // The first process crashes after n records, the one resuming after m more of its own
    // (it writes at most the whole run again, and a claim).
    for n in 0..baseline.records as u64 {
        for m in 0..=baseline.records as u64 + 1 {
            let crashes = [Crash::After(n), Crash::After(m)];
            let report = run_case(&SCRIPT, &crashes, None, baseline.limit).await;
            cases += 1;
            let verdict = check_recovered(&baseline, &report, baseline.limit, true)
                .and_then(|()| check_interruptions(&baseline, &report));
            if let Err(failure) = verdict {
                failures.push(format!("{crashes:?}: {failure}"));
            }
        }
    }
    assert_eq!(cases, 13 * 15);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// Random runs, random crash points, random restarts in place
// ---------------------------------------------------------------------------------------------

/// A random case: a plan, where the journal crashes in each process before the last, and where
/// the orchestrator's handler panics (once).
#[derive(Debug, Clone)]
struct RandomCase {
    plan: Vec<Kind>,
    /// Each crash's point is taken modulo the crash-free run's records plus two, so that every
    /// point of a process's own writes (which may add a claim) can be reached.
    crashes: Vec<(u64, bool)>,
    panic: Option<(usize, Phase)>,
}

fn random_case() -> impl Strategy<Value = RandomCase> {
    let kind = prop::sample::select(Kind::ALL.to_vec());
    let phase = prop::sample::select(vec![Phase::Before, Phase::AfterEffect]);
    (
        prop::collection::vec(kind, 1..=7),
        prop::collection::vec((0u64..64, any::<bool>()), 0..=2),
        prop::option::of((0usize..7, phase)),
    )
        .prop_map(|(plan, crashes, panic)| RandomCase {
            // A panic at a step the plan does not have never happens.
            panic: panic.filter(|(step, _)| *step < plan.len()),
            plan,
            crashes,
        })
}

async fn random_run(case: RandomCase) -> Result<(), String> {
    let baseline = baseline(&case.plan).await?;
    let points = baseline.records as u64 + 2;
    let crashes: Vec<Crash> = case
        .crashes
        .iter()
        .map(|&(at, torn)| {
            if torn {
                Crash::Torn(at % points)
            } else {
                Crash::After(at % points)
            }
        })
        .collect();
    let report = run_case(&case.plan, &crashes, case.panic, baseline.limit).await;
    let panics = report.world.panics.load(Ordering::SeqCst);
    let verdict = if panics != u32::from(case.panic.is_some()) {
        Err(format!(
            "{panics} panics injected, {:?} planned",
            case.panic
        ))
    } else {
        check_recovered(&baseline, &report, baseline.limit, true)
            .and_then(|()| check_interruptions(&baseline, &report))
            .and_then(|()| match (&crashes[..], case.panic) {
                // One crash at stage 0 and no panic: the exact expectations hold.
                ([Crash::After(n)], None) => {
                    check_crash_after(&baseline, &report, *n as usize, false)
                }
                ([Crash::Torn(n)], None) => {
                    check_crash_after(&baseline, &report, *n as usize, true)
                }
                _ => Ok(()),
            })
    };
    verdict.map_err(|failure| format!("crashes {crashes:?}: {failure}"))
}

proptest! {
    #![proptest_config(common::proptest_config(64))]

    #[test]
    fn random_runs_crashed_and_restarted_anywhere_resume_with_each_effect_once(case in random_case()) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .expect("a runtime");
        let verdict = runtime.block_on(random_run(case.clone()));
        prop_assert!(verdict.is_ok(), "{}\n{case:#?}", verdict.unwrap_err());
    }
}

// ---------------------------------------------------------------------------------------------
// Found here
// ---------------------------------------------------------------------------------------------

/// A durable ask whose handler panics before its model call is requeued and replayed by the
/// next incarnation (the answer is right, the model called once), and the replaying incarnation
/// is admitted by the budget again, so the model call it makes is committed to the budget
/// (found by these tests: it was requeued without a settlement, and its spend was lost).
#[tokio::test(start_paused = true)]
async fn spend_after_a_restart_in_place_is_committed_to_the_budget() {
    let plan = [Kind::Model];
    let baseline = baseline(&plan).await.unwrap();
    assert!(baseline.spent.tokens > 0);
    let report = run_case(&plan, &[], Some((0, Phase::Before)), ROOMY).await;
    let [stage] = &report.stages[..] else {
        panic!("one process: {:#?}", report.stages)
    };
    assert_eq!(stage.answer, Ok(baseline.output.clone()));
    assert_eq!(report.world.panics.load(Ordering::SeqCst), 1);
    assert_eq!(report.world.runs_of(0), 1, "the model was called once");
    assert_eq!(
        (stage.spent.tokens, stage.spent.cost),
        (baseline.spent.tokens, baseline.spent.cost),
        "the ledger holds the model call made after the restart"
    );
}

/// A sub-ask wrapped in a step (`ctx.step_with_spend("research", ..., |_|
/// researcher.ask_metered(..))`) whose agent calls a model: its spend is charged to the
/// researcher's ask and journaled with the step's result, so a process that resumes the run
/// after a crash replays the step and restores what it cost: its ledger holds what the run
/// spent, and the budget's limit still bounds the run.
#[tokio::test(start_paused = true)]
async fn the_spend_of_a_sub_ask_in_a_step_is_restored_after_a_crash() {
    let plan = [Kind::Research, Kind::Model];
    let spending_world = || {
        let world = World::default();
        world.researcher_calls_a_model.store(true, Ordering::SeqCst);
        Arc::new(world)
    };
    let whole = run_case_in(spending_world(), &plan, &[], None, ROOMY).await;
    let whole_spent = whole.stages[0].spent;
    // Start, claim, the research step's result: the process dies at the model call's intent.
    let report = run_case_in(spending_world(), &plan, &[Crash::After(3)], None, ROOMY).await;
    let [_, resumed] = &report.stages[..] else {
        panic!("two processes: {:#?}", report.stages)
    };
    assert_eq!(
        report.world.researcher_asks.load(Ordering::SeqCst),
        1,
        "replayed, not asked again"
    );
    assert_eq!(
        (resumed.spent.tokens, resumed.spent.cost),
        (whole_spent.tokens, whole_spent.cost),
        "the resuming process's ledger holds the researcher's spend"
    );
}

// ---------------------------------------------------------------------------------------------
// Several runs at once, their appends committed together
// ---------------------------------------------------------------------------------------------

/// Random crews running at the same time in each process, so that their appends share commits
/// (a crash keeps a prefix of a group of appends, none acknowledged), crashed at random points.
#[derive(Debug, Clone)]
struct CrewsCase {
    plans: Vec<Vec<Kind>>,
    panics: Vec<Option<(usize, Phase)>>,
    crashes: Vec<(u64, bool)>,
}

fn crews_case() -> impl Strategy<Value = CrewsCase> {
    let kind = prop::sample::select(Kind::ALL.to_vec());
    let phase = prop::sample::select(vec![Phase::Before, Phase::AfterEffect]);
    let crew = (
        prop::collection::vec(kind, 1..=5),
        prop::option::of((0usize..5, phase)),
    );
    (
        prop::collection::vec(crew, 2..=3),
        prop::collection::vec((0u64..96, any::<bool>()), 1..=2),
    )
        .prop_map(|(crews, crashes)| CrewsCase {
            panics: crews
                .iter()
                .map(|(plan, panic)| panic.filter(|(step, _)| *step < plan.len()))
                .collect(),
            plans: crews.into_iter().map(|(plan, _)| plan).collect(),
            crashes,
        })
}

async fn crews_run(case: CrewsCase) -> Result<(), String> {
    let fresh = |panics: &[Option<(usize, Phase)>]| -> Vec<(Arc<World>, Vec<Kind>)> {
        case.plans
            .iter()
            .zip(panics)
            .map(|(plan, panic)| {
                let world = Arc::new(World::default());
                *lock(&world.panic_at) = *panic;
                (world, plan.clone())
            })
            .collect()
    };
    let none = vec![None; case.plans.len()];
    let whole = run_crews(fresh(&none), &[], ROOMY).await;
    let baselines = case
        .plans
        .iter()
        .zip(&whole)
        .map(|(plan, report)| baseline_of(plan, report))
        .collect::<Result<Vec<_>, _>>()?;
    let crash_free = &whole[0].stages[0];
    // On PostgreSQL a group commit is one transaction per run: the crews' runs commit apart.
    if !overseer_postgres::testing::on_postgres()
        && crash_free.commits >= crash_free.records_left as u64
    {
        return Err(format!(
            "the crews' {} appends took {} commits: none were committed together",
            crash_free.records_left, crash_free.commits
        ));
    }
    // Each process holds at most every run's spend and every ask's estimate.
    let records = baselines[0].records as u64;
    let limit = whole[0].stages[0].spent.tokens + ESTIMATE.total_tokens() * case.plans.len() as u64;
    let crashes: Vec<Crash> = case
        .crashes
        .iter()
        .map(|&(at, torn)| {
            let at = at % (records + 2);
            if torn {
                Crash::Torn(at)
            } else {
                Crash::After(at)
            }
        })
        .collect();
    let reports = run_crews(fresh(&case.panics), &crashes, limit).await;
    for (j, (baseline, report)) in baselines.iter().zip(&reports).enumerate() {
        check_recovered(baseline, report, limit, false)
            .and_then(|()| check_interruptions(baseline, report))
            .map_err(|failure| format!("crew {j}, crashes {crashes:?}: {failure}"))?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(common::proptest_config(32))]

    #[test]
    fn runs_crashed_together_each_resume_with_each_effect_once(case in crews_case()) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .expect("a runtime");
        let verdict = runtime.block_on(crews_run(case.clone()));
        prop_assert!(verdict.is_ok(), "{}\n{case:#?}", verdict.unwrap_err());
    }
}

/// What a dead process spent on a run it did not finish is restored into the next process's
/// budget only when that run is taken up again (`AgentActor::restore_spend`, at the claim), and
/// the reservations its open intents journaled are never held: a new process admits asks as if
/// that spend had not happened until it resumes the run. Here a run spent 12 tokens before its
/// process died; the next process, with a 70-token limit, admits a fresh ask that reserves 60
/// (the 12 already spent leave room for 58), before resuming anything.
#[tokio::test(start_paused = true)]
async fn a_new_process_counts_the_journaled_spend_of_unfinished_runs_before_admitting_asks() {
    let plan = [Kind::Model, Kind::Model, Kind::Model];
    let (first, second) = (Arc::new(World::default()), Arc::new(World::default()));
    // Start, claim, two model calls with intent and result: the process dies at the third.
    let storage = TestStorage::new().crash(CrashPlan::AfterRecords(6));
    let process = Process::start(storage.clone(), &[Arc::clone(&first)], ROOMY).await;
    let task = (
        TOPIC.to_string(),
        plan.iter().map(|k| k.code()).collect::<Vec<u8>>(),
    );
    let died = process
        .lead(0)
        .ask_run(RunId::new(RUNS[0]).unwrap(), task.clone())
        .await;
    assert!(died.as_ref().is_err_and(is_journal_failure), "{died:?}");
    let spent_before = process.spent().tokens;
    assert_eq!(spent_before, 12, "two model calls journaled");
    process
        .system
        .shutdown(Duration::from_secs(5))
        .await
        .unwrap();

    let limit = spent_before + ESTIMATE.total_tokens() - 2;
    let process = Process::start(storage.reopen(), &[first, second], limit).await;
    assert_eq!(process.opened.unfinished.len(), 1);
    let fresh = process
        .lead(1)
        .ask_run(RunId::new(RUNS[1]).unwrap(), task)
        .await;
    let held = process.spent().tokens;
    process
        .system
        .shutdown(Duration::from_secs(5))
        .await
        .unwrap();
    assert!(
        matches!(fresh, Err(AskError::BudgetExceeded { .. })),
        "with {spent_before} tokens journaled and a limit of {limit}, an ask reserving {} was \
         admitted: {fresh:?} (the ledger then held {held})",
        ESTIMATE.total_tokens()
    );
}
