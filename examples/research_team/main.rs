//! A research team that heals itself.
//!
//! A lead agent plans a question, fans the sub-questions out to a pool of researchers (under
//! their own one_for_one supervisor), has a citation agent cite and verify what they find, and
//! writes the answer. Fault injection makes researchers panic, hang and return confident
//! garbage, and makes every verification fail. The log shows the tree restarting agents, a
//! supervisor escalating, breakers opening per agent and task type, and budget tiers; the run
//! ends with a summary and the team's answer.
//!
//! ```text
//! cargo run --example research_team               # seed 42
//! cargo run --example research_team -- --seed 7   # another, equally reproducible, run
//! cargo run --example research_team -- --observe  # watch it in a terminal view (q quits)
//! cargo run --example research_team -- --observe-snapshot  # the view's last frame, as text
//! cargo run --example research_team -- --events events.jsonl  # every event, as JSON lines
//! cargo run --example research_team -- --journal team.journal  # durable: kill it, start it again
//! OPENAI_API_KEY=... cargo run --features overseer-provider/rustls --example research_team -- \
//!     --base-url https://api.openai.com/v1 --model gpt-4o-mini     # a real model
//! cargo run --example research_team -- --base-url http://localhost:11434/v1 --model llama3.2
//! ```
//!
//! The run uses a paused tokio clock: hangs and timeouts take no real time, and the same seed
//! always gives the same run.
//!
//! With `--base-url URL --model NAME` every agent asks that model through the OpenAI-compatible
//! client of `overseer-provider` (the key from `OPENAI_API_KEY`, if set; none for a local
//! server) instead of the scripted one, each call with instructions that keep its answer in
//! the shape the team reads, and the token budget is raised for a real model's answers. The
//! HTTP calls run on a runtime of their own, on the real clock, while the team's runtime waits
//! for them, so its paused clock stands still during a call (as with `--pace`).
//!
//! With `--journal FILE` each question is a durable run (`AgentRef::ask_run`, run id
//! `ID-q1`...`ID-q4` for `--run ID`): the lead's model calls are durable steps
//! (`AgentContext::model`) and so are its asks to the researchers and the citation agent
//! (`AgentContext::step`: a sub-ask is a step of its parent, and the sub-agent's own work is not
//! journaled). Each model call then also waits `--pace` of real time, so that there is time to
//! kill the process (Ctrl-C, `kill -9`) in the middle of a question. Started again on the same
//! file, it answers the questions that finished from the journal without running anything, and
//! resumes the one that was cut: the steps it had journaled are replayed, not run or billed
//! again, and the log says which.

#[allow(dead_code)] // each example uses part of it
#[path = "../support/cli.rs"]
mod cli;
mod observe;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use overseer::agent::{Answered, AskOutcome, BudgetWarningEvent, ModelError, ModelResponse};
use overseer::breaker::{Backoff, BreakerConfig, BreakerRegistry, State};
use overseer::budget::{Budget, Dimension, Limits};
use overseer::journal::{Opened, Storage, StorageError, Stored};
use overseer::prelude::*;
use overseer::supervisor::{ChildSpec, EventId, EventKind};
use overseer_chaos::{Chaos, Fault, FaultInjector, FaultPlan, Rule};
use overseer_observe::JsonLines;
use overseer_provider::OpenAiCompatible;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::time::Instant;

/// The token budget of the scripted run.
const TOKEN_BUDGET: u64 = 800;
/// The token budget with a real model, whose prompts and answers are longer.
const PROVIDER_TOKEN_BUDGET: u64 = 60_000;
/// The most tokens a real model's answer may have.
const PROVIDER_MAX_TOKENS: u32 = 200;
const RESEARCHERS: [&str; 3] = ["researcher-1", "researcher-2", "researcher-3"];
const QUESTIONS: [&str; 4] = [
    "How do supervision trees keep agent systems alive?",
    "When should an agent stop receiving a kind of task?",
    "How do you stop a runaway agent before it spends too much?",
    "What should a team do after a failure?",
];

/// The language model every agent uses: scripted, no network.
fn model() -> ScriptedModel {
    ScriptedModel::new()
        .when("plan:", |_| {
            Ok("restart strategies; restart intensity; circuit breakers; kill switches".into())
        })
        .when("search:", |prompt| {
            let topic = prompt.rsplit("search:").next().unwrap_or("").trim();
            Ok(format!(
                "finding: {topic} are documented in the Erlang/OTP design principles"
            ))
        })
        .when("cite:", |_| {
            Ok("source: J. Armstrong, Making reliable distributed systems (2003)".into())
        })
        .when("verify:", |_| Ok("verified".into()))
        .when("synthesize:", |_| {
            Ok(
                "Supervisors restart what fails, breakers isolate what keeps failing, \
                and a budget with a kill switch bounds what it all costs."
                    .into(),
            )
        })
        .price_per_token(5)
}

/// The team's model: the scripted one, each call taking `pace` of real time (none unless
/// `--pace` or `--journal` asks for it), or a real provider (`--base-url`). One model shared by
/// every agent, so that its call count is the whole team's.
#[derive(Debug, Clone)]
struct Model {
    scripted: ScriptedModel,
    pace: Duration,
    provider: Option<Provider>,
}

/// A real model, called on a runtime of its own (see [`Model::complete`]).
#[derive(Debug, Clone)]
struct Provider {
    client: OpenAiCompatible,
    runtime: Arc<Background>,
    calls: Arc<std::sync::atomic::AtomicUsize>,
}

/// A runtime on the real clock for the HTTP calls, shut down without waiting when dropped (it
/// is dropped inside the team's runtime, where a runtime may not block to stop).
#[derive(Debug)]
struct Background(Option<tokio::runtime::Runtime>);

impl Background {
    fn handle(&self) -> Option<&tokio::runtime::Handle> {
        self.0.as_ref().map(tokio::runtime::Runtime::handle)
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

impl Provider {
    /// A client of `model` at `base_url`, with the key in `OPENAI_API_KEY` if there is one.
    fn new(base_url: &str, model: &str) -> Result<Self, Box<dyn std::error::Error>> {
        let mut client =
            OpenAiCompatible::builder(base_url, model).timeout(Duration::from_secs(120));
        if let Some(key) = std::env::var("OPENAI_API_KEY")
            .ok()
            .filter(|k| !k.is_empty())
        {
            client = client.api_key(key);
        }
        // The HTTP calls' own runtime, on the real clock: one thread is enough, as the team
        // makes one call at a time.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        Ok(Self {
            client: client.build()?,
            runtime: Arc::new(Background(Some(runtime))),
            calls: Arc::default(),
        })
    }
}

/// What a real model is told for each kind of prompt, so that its answer has the shape the team
/// reads (the scripted model's rules answer in that shape).
fn instructions(prompt: &str) -> &'static str {
    let kind = prompt.split(':').next().unwrap_or("");
    match kind {
        "plan" => "Split the question into three or four research topics. Answer with the topics only, separated by semicolons, on one line.",
        "search" => "Answer in one sentence that starts with \"finding: \" and states what is known about the topic.",
        "cite" => "Answer with one real source for the finding, in one line that starts with \"source: \".",
        "verify" => "Answer \"verified\" if the finding is correct, else say what is wrong, in one line.",
        _ => "Answer the question in two or three sentences.",
    }
}

impl ModelClient for Model {
    async fn complete(&self, request: ModelRequest) -> Result<ModelResponse, ModelError> {
        if let Some(provider) = &self.provider {
            let system = instructions(&request.prompt);
            let request = request.system(system).max_tokens(PROVIDER_MAX_TOKENS);
            let client = provider.client.clone();
            let (answer, answered) = std::sync::mpsc::channel();
            provider
                .calls
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if let Some(runtime) = provider.runtime.handle() {
                runtime.spawn(async move {
                    let _ = answer.send(client.complete(request).await);
                });
            }
            // Waits blocking the team's one thread, as `--pace` does: its paused clock stays
            // still while the request is out (an idle runtime would jump to the next timer, and
            // every deadline would pass at once). The client's own timeout bounds the wait.
            return answered.recv().unwrap_or_else(|_| {
                Err(ModelError::Provider(
                    "the provider's runtime stopped".into(),
                ))
            });
        }
        if !self.pace.is_zero() {
            // Blocks the runtime's one thread on purpose: the run is on a paused tokio clock,
            // which an idle runtime would move on to the next timer (a tokio sleep would jump),
            // while a busy one keeps it still. So the story is the same at any pace, and only
            // the wall clock gives a person time to kill the process.
            std::thread::sleep(self.pace);
        }
        self.scripted.complete(request).await
    }

    fn model_name(&self) -> Option<&str> {
        match &self.provider {
            Some(provider) => provider.client.model_name(),
            None => self.scripted.model_name(),
        }
    }
}

impl Model {
    /// The model calls made by this process.
    fn calls(&self) -> usize {
        match &self.provider {
            Some(provider) => provider.calls.load(std::sync::atomic::Ordering::Relaxed),
            None => self.scripted.calls(),
        }
    }
}

/// Looks one topic up.
struct Researcher {
    model: Model,
}

#[derive(Debug, Clone)]
struct Search(String);

impl Agent for Researcher {
    type Task = Search;
    type Output = String;

    fn task_type(_: &Search) -> &'static str {
        "search"
    }

    async fn handle(
        &mut self,
        ctx: &mut AgentContext,
        Search(topic): Search,
    ) -> Result<String, AgentError> {
        let answer = self
            .model
            .complete(ModelRequest::new(format!("search: {topic}")))
            .await
            .map_err(|error| AgentError::failed(error.to_string()))?;
        ctx.report_usage(answer.usage);
        Ok(answer.text)
    }

    fn estimate(_: &Search) -> Usage {
        Usage::new(10, 20, 150)
    }
}

/// A finding is usable when it says what it found.
fn is_finding(text: &str) -> bool {
    text.starts_with("finding: ")
}

/// What a finding is about, for the log.
fn topic_of(finding: &str) -> &str {
    let text = finding.strip_prefix("finding: ").unwrap_or(finding);
    text.split(" are documented").next().unwrap_or(text)
}

/// Cites and verifies findings.
struct Citer {
    model: Model,
}

#[derive(Debug, Clone)]
enum CiteTask {
    Cite(String),
    Verify(String),
}

impl Agent for Citer {
    type Task = CiteTask;
    type Output = String;

    fn task_type(task: &CiteTask) -> &'static str {
        match task {
            CiteTask::Cite(_) => "cite",
            CiteTask::Verify(_) => "verify",
        }
    }

    async fn handle(
        &mut self,
        ctx: &mut AgentContext,
        task: CiteTask,
    ) -> Result<String, AgentError> {
        let prompt = match task {
            CiteTask::Cite(finding) => format!("cite: {finding}"),
            CiteTask::Verify(finding) => format!("verify: {finding}"),
        };
        let answer = self
            .model
            .complete(ModelRequest::new(prompt))
            .await
            .map_err(|error| AgentError::failed(error.to_string()))?;
        ctx.report_usage(answer.usage);
        Ok(answer.text)
    }

    fn estimate(_: &CiteTask) -> Usage {
        Usage::new(20, 12, 160)
    }
}

/// What the lead hands back for one question (journaled as the run's outcome with `--journal`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Report {
    answer: String,
    findings: Vec<(String, String)>,
    citations: usize,
    verified: usize,
}

/// Plans, delegates, and writes the answer.
///
/// Its model calls and its asks to the other agents are durable steps: with a journal they are
/// journaled and, when the run is taken up again after a crash, replayed; without one they are
/// plain calls.
struct Lead {
    model: Model,
    /// To find the other agents: a weak handle, so the lead does not keep its own system alive.
    system: WeakSystem,
    /// What the current run replayed and ran, for the log.
    steps: Arc<Mutex<RunSteps>>,
}

/// The steps of the lead's current run: how many were replayed from the journal, how many ran.
#[derive(Debug, Default, Clone, Copy)]
struct RunSteps {
    /// Whether the lead's handler ran for the run (not when it was answered from the journal).
    handled: bool,
    replayed: u32,
    ran: u32,
    /// What the replayed model calls had cost: paid once, not billed again.
    not_billed: Usage,
}

impl Lead {
    fn count(&self, replayed: bool) {
        let mut steps = self
            .steps
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if replayed {
            steps.replayed += 1;
        } else {
            steps.ran += 1;
        }
    }

    /// One model call, as a durable step: replayed (and not billed) if the journal has its
    /// answer.
    async fn think(&self, ctx: &mut AgentContext, prompt: String) -> Result<String, AgentError> {
        let before = ctx.replayed_usage();
        let what = prompt.split(':').next().unwrap_or("model").to_string();
        let answer = ctx.model(&self.model, ModelRequest::new(prompt)).await?;
        let after = ctx.replayed_usage();
        let replayed = after != before;
        if replayed {
            let (tokens, cost) = (
                after.total_tokens() - before.total_tokens(),
                after.cost_micros - before.cost_micros,
            );
            say(format!(
                "           lead replays its {what} (a model call) from the journal: {tokens} tokens, {cost} micro-units not billed again"
            ));
            let mut steps = self
                .steps
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            steps.not_billed += Usage::new(
                after.input_tokens - before.input_tokens,
                after.output_tokens - before.output_tokens,
                cost,
            );
        }
        self.count(replayed);
        Ok(answer.text)
    }

    /// A sub-ask as a durable step named `name`: replayed, without asking again, if the journal
    /// has its answer. `ask` gets the work done; its failure is journaled too (and replayed).
    async fn delegate<T, Fut>(
        &self,
        ctx: &mut AgentContext,
        name: &str,
        about: &str,
        ask: impl FnOnce() -> Fut,
    ) -> Result<T, AgentError>
    where
        T: Serialize + serde::de::DeserializeOwned,
        Fut: std::future::Future<Output = Result<T, AgentError>>,
    {
        let mut ran = false;
        let outcome = ctx
            .step(name, Effect::Idempotent, |_key| {
                ran = true;
                ask()
            })
            .await;
        if !ran {
            say(format!(
                "           lead replays its {name} of {about:?} from the journal: not asked again"
            ));
        }
        self.count(!ran);
        outcome
    }
}

impl Agent for Lead {
    type Task = String;
    type Output = Report;

    fn task_type(_: &String) -> &'static str {
        "investigate"
    }

    /// The lead's own model calls (a plan and a synthesis): the researchers' and the citation
    /// agent's calls reserve their own estimates.
    fn estimate(_: &String) -> Usage {
        Usage::new(40, 40, 400)
    }

    async fn handle(
        &mut self,
        ctx: &mut AgentContext,
        question: String,
    ) -> Result<Report, AgentError> {
        self.steps
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .handled = true;
        let lookup = |error: AskError| AgentError::failed(error.to_string());
        let researchers: Vec<AgentRef<Chaos<Researcher>>> = RESEARCHERS
            .iter()
            .map(|name| self.system.agent_ref(name))
            .collect::<Result<_, _>>()
            .map_err(lookup)?;
        let citer = self
            .system
            .agent_ref::<Chaos<Citer>>("citations")
            .map_err(lookup)?;

        let plan = self.think(ctx, format!("plan: {question}")).await?;
        let mut report = Report {
            answer: String::new(),
            findings: Vec::new(),
            citations: 0,
            verified: 0,
        };
        for (index, topic) in plan.split(';').map(str::trim).enumerate() {
            // Each topic goes to the next researcher; the others stand in if it fails.
            let primary = &researchers[index % researchers.len()];
            let alternates: Vec<_> = researchers
                .iter()
                .filter(|other| other.name() != primary.name())
                .cloned()
                .collect();
            let search = Search(topic.to_string());
            let found = self
                .delegate(ctx, "search", topic, || async {
                    match primary.ask_with_fallback(search, &alternates).await {
                        Ok(Answered { by, output, .. }) => Ok((by.to_string(), output)),
                        Err(error) => Err(AgentError::failed(error.to_string())),
                    }
                })
                .await;
            match found {
                Ok((by, output)) if is_finding(&output) => report.findings.push((by, output)),
                Ok((by, output)) => say(format!(
                    "           lead discards a bad finding from {by}: {output:?}"
                )),
                // The researchers' failure, journaled as the step's outcome.
                Err(AgentError::Failed(error)) => {
                    say(format!("           lead got nothing on {topic:?}: {error}"))
                }
                // The journal failed, or this incarnation was fenced off: the run stops here.
                Err(other) => return Err(other),
            }
        }
        for (_, finding) in &report.findings {
            let topic = topic_of(finding);
            let cited = self
                .delegate(ctx, "cite", topic, || async {
                    Ok(citer.ask(CiteTask::Cite(finding.clone())).await.is_ok())
                })
                .await?;
            report.citations += usize::from(cited);
            let verified = self
                .delegate(ctx, "verify", topic, || async {
                    Ok(citer.ask(CiteTask::Verify(finding.clone())).await.is_ok())
                })
                .await?;
            report.verified += usize::from(verified);
        }
        report.answer = self.think(ctx, format!("synthesize: {question}")).await?;
        Ok(report)
    }
}

/// Each researcher's name and its fault injector.
type ChaoticResearchers = Vec<(&'static str, FaultInjector<Researcher>)>;

/// The faults injected, by agent. Scheduled faults make every run tell the same story; the
/// seeded probabilities add some seed-dependent noise.
fn chaos_plans(seed: u64) -> Result<ChaoticResearchers, Box<dyn std::error::Error>> {
    let plans = [
        FaultPlan::builder()
            .on_call(2, Fault::Panic)
            .probability(Fault::Error, 0.05)
            .build()?,
        FaultPlan::builder()
            .on_call(2, Fault::Hang)
            .on_call(4, Fault::Panic)
            .probability(Fault::Panic, 0.05)
            .build()?,
        FaultPlan::builder()
            .on_calls(3..=4, Fault::Corrupt)
            .probability(Fault::Error, 0.05)
            .build()?,
    ];
    Ok(RESEARCHERS
        .into_iter()
        .zip(plans)
        .enumerate()
        .map(|(index, (name, plan))| {
            let injector = FaultInjector::with_corruptor(plan, seed + index as u64, |_, _| {
                "Nothing relevant exists on this topic; it is settled.".to_string()
            });
            (name, injector)
        })
        .collect())
}

/// The tallies for the summary.
#[derive(Debug, Default)]
struct Tally {
    restarts: BTreeMap<String, u32>,
    escalations: Vec<String>,
    breakers_opened: BTreeMap<String, u32>,
    asks_ok: u32,
    asks_failed: u32,
    asks_refused: u32,
}

/// The one place the log is written, so that its lines come in causal order.
///
/// Two things would otherwise put lines out of order. The lead and `main` print their own
/// lines (a discarded finding, an answer) while the events that led to them may still be
/// unread in the stream: so every such line first drains what was published before it. And
/// an ask's event is published when the ask ends, after the crash, breaker change or budget
/// warning it caused (whose `caused_by` names the ask): so [`CausalOrder`] holds an effect
/// back until its cause has been written. The `inject` line, which comes from the ask's event,
/// is then written before the crash it caused.
#[derive(Debug)]
struct Printer {
    events: broadcast::Receiver<SystemEvent>,
    order: CausalOrder,
    tally: Tally,
    starts: BTreeMap<String, u32>,
}

/// The printer of this run, once `main` has subscribed it.
static PRINTER: Mutex<Option<Printer>> = Mutex::new(None);

fn printer() -> std::sync::MutexGuard<'static, Option<Printer>> {
    PRINTER
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Printer {
    /// Writes every event published so far that its cause allows; returns `false` once the
    /// stream has ended.
    fn drain(&mut self) -> bool {
        loop {
            match self.events.try_recv() {
                Ok(event) => {
                    for event in self.order.push(event) {
                        self.write(&event);
                    }
                }
                Err(TryRecvError::Lagged(_)) => {
                    // The causes of what waits may be among the lost events.
                    for event in self.order.flush() {
                        self.write(&event);
                    }
                }
                Err(TryRecvError::Empty) => return true,
                Err(TryRecvError::Closed) => return false,
            }
        }
    }

    /// Drains the stream to its end and writes what still waits for a cause, oldest first.
    fn finish(&mut self) {
        while self.drain() {}
        for event in self.order.flush() {
            self.write(&event);
        }
    }

    fn write(&mut self, event: &SystemEvent) {
        let at = event.elapsed();
        let tally = &mut self.tally;
        match event {
            SystemEvent::Lifecycle(event) => {
                let path = event.path.to_string();
                match &event.kind {
                    EventKind::Started => {
                        let starts = self.starts.entry(path.clone()).or_default();
                        *starts += 1;
                        if *starts > 1 {
                            *tally
                                .restarts
                                .entry(event.path.name().to_string())
                                .or_default() += 1;
                            log_at(at, "restart", path);
                        }
                    }
                    EventKind::Stopped { reason } if !reason.is_normal() => {
                        log_at(at, "crash", format!("{path}: {reason}"))
                    }
                    EventKind::Escalated {
                        intensity,
                        period_secs,
                    } => {
                        tally.escalations.push(path.clone());
                        log_at(
                            at,
                            "escalate",
                            format!(
                                "{path} gave up: more than {intensity} restarts in {period_secs} s"
                            ),
                        );
                    }
                    _ => {}
                }
            }
            SystemEvent::Ask(ask) => {
                match &ask.outcome {
                    AskOutcome::Ok => tally.asks_ok += 1,
                    AskOutcome::Error { kind, .. } if kind == "breaker_open" => {
                        tally.asks_refused += 1
                    }
                    AskOutcome::Error { .. } => tally.asks_failed += 1,
                }
                if let Some(fault) = &ask.injected {
                    log_at(
                        at,
                        "inject",
                        format!("{fault} into {} ({})", ask.agent, ask.task_type),
                    );
                }
            }
            SystemEvent::Breaker(moved) => {
                if moved.to == State::Open {
                    *tally
                        .breakers_opened
                        .entry(format!("{}/{}", moved.agent, moved.task_type))
                        .or_default() += 1;
                }
                log_at(
                    at,
                    "breaker",
                    format!(
                        "{}/{}: {} -> {}",
                        moved.agent, moved.task_type, moved.from, moved.to
                    ),
                );
            }
            SystemEvent::BudgetWarning(BudgetWarningEvent { warning, .. }) => log_at(
                at,
                "budget",
                format!(
                    "{} reached: {} of {} {}",
                    warning.tier,
                    warning.used,
                    warning.limit,
                    warning.dimension.unit()
                ),
            ),
            SystemEvent::KillSwitchTripped(trip) => {
                log_at(at, "KILL", trip.report.reason.to_string())
            }
            _ => {}
        }
    }
}

/// Puts a system's events in causal order: an event whose cause has not been released yet
/// waits for it. Causes are numbered before their effects (an ask's id is assigned when it is
/// made), so the events a release frees are released in id order.
#[derive(Debug, Default)]
struct CausalOrder {
    released: HashSet<EventId>,
    waiting: HashMap<EventId, Vec<SystemEvent>>,
}

impl CausalOrder {
    /// `event` and whatever waited for it, in causal order; nothing if it must wait.
    fn push(&mut self, event: SystemEvent) -> Vec<SystemEvent> {
        // A nested ask's parent (`AskEvent::parent`) is no cause: its event, which ends long
        // before the request's, needs not wait for it.
        match event.caused_by() {
            Some(cause) if cause != event.id() && !self.released.contains(&cause) => {
                self.waiting.entry(cause).or_default().push(event);
                Vec::new()
            }
            _ => self.release(vec![event]),
        }
    }

    /// Everything still waiting (for causes that never came), in id order.
    fn flush(&mut self) -> Vec<SystemEvent> {
        let waiting: Vec<SystemEvent> = self.waiting.drain().flat_map(|(_, held)| held).collect();
        self.release(waiting)
    }

    fn release(&mut self, mut ready: Vec<SystemEvent>) -> Vec<SystemEvent> {
        let mut out = Vec::new();
        while !ready.is_empty() {
            for event in &ready {
                self.released.insert(event.id());
            }
            let freed: Vec<SystemEvent> = ready
                .iter()
                .filter_map(|event| self.waiting.remove(&event.id()))
                .flatten()
                .collect();
            out.append(&mut ready);
            ready = freed;
        }
        out.sort_by_key(SystemEvent::id);
        out
    }
}

/// Prints one line of the log (after the events published before it), or hands it to the
/// terminal view when one is on.
fn say(line: String) {
    if let Some(printer) = printer().as_mut() {
        printer.drain();
    }
    write_line(line);
}

fn write_line(line: String) {
    if !observe::capture(&line) {
        println!("{line}");
    }
}

/// A line of the log at `at` since the system started.
fn log_at(at: Duration, what: &str, detail: String) {
    write_line(format!("[{:>7.3}s] {what:<9} {detail}", at.as_secs_f64()));
}

/// A line of the log now.
fn log(started: Instant, what: &str, detail: String) {
    if let Some(printer) = printer().as_mut() {
        printer.drain();
    }
    log_at(started.elapsed(), what, detail);
}

/// What the command line asks for.
struct Options {
    seed: u64,
    mode: observe::Mode,
    /// Where to write every event as JSON lines.
    events: Option<PathBuf>,
    /// The journal file that makes the questions durable runs.
    journal: Option<PathBuf>,
    /// The prefix of the runs' ids.
    run: String,
    /// Real time each model call takes.
    pace: Option<Duration>,
    /// The OpenAI-compatible server to ask instead of the scripted model.
    base_url: Option<String>,
    /// The model to ask there.
    model: Option<String>,
}

const CLI: cli::Cli = cli::Cli {
    name: "research_team",
    about: "a research team that heals itself while faults are injected (on a paused clock)",
    synopsis: "[--seed N] [--observe | --observe-snapshot] [--events FILE] [--journal FILE [--run ID]] [--pace MS] [--base-url URL --model NAME]",
    options: &[
        (
            "--seed N",
            "the seed of the injected faults and breaker jitter (default 42)",
        ),
        ("--observe", "watch the run in a terminal view (q quits)"),
        (
            "--observe-snapshot",
            "print the terminal view's last frame as text, instead of the log",
        ),
        (
            "--events FILE",
            "also write every event to FILE, as JSON lines",
        ),
        (
            "--journal FILE",
            "make each question a durable run journaled in FILE: kill the run, start it again, it resumes",
        ),
        (
            "--run ID",
            "with --journal, the runs' ids are ID-q1 to ID-q4 (default research-team)",
        ),
        (
            "--pace MS",
            "each model call takes MS ms of real time (default 250 with --journal, else 0)",
        ),
        (
            "--base-url URL",
            "ask a real model at this OpenAI-compatible server (http://localhost:11434/v1, https://api.openai.com/v1) instead of the scripted one; the key from OPENAI_API_KEY",
        ),
        ("--model NAME", "with --base-url, the model to ask"),
    ],
};

/// The run id prefix when `--run` is not given.
const DEFAULT_RUN: &str = "research-team";
/// How long a model call takes, in real time, with `--journal` and no `--pace`.
const JOURNAL_PACE: Duration = Duration::from_millis(250);

fn options_from_args() -> Result<Options, String> {
    let mut options = Options {
        seed: 42,
        mode: observe::Mode::Plain,
        events: None,
        journal: None,
        run: DEFAULT_RUN.to_string(),
        pace: None,
        base_url: None,
        model: None,
    };
    let mut args = CLI.args().into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seed" => {
                let value = args.next().ok_or("--seed needs N")?;
                options.seed = value.parse().map_err(|_| format!("not a seed: {value}"))?;
            }
            "--events" => {
                let file = args.next().ok_or("--events needs FILE")?;
                options.events = Some(file.into());
            }
            "--journal" => {
                let file = args.next().ok_or("--journal needs FILE")?;
                options.journal = Some(file.into());
            }
            "--run" => {
                let id = args.next().ok_or("--run needs ID")?;
                RunId::new(format!("{id}-q1")).map_err(|error| format!("not a run id: {error}"))?;
                options.run = id;
            }
            "--pace" => {
                let value = args.next().ok_or("--pace needs MS")?;
                let ms = value
                    .parse()
                    .map_err(|_| format!("not a number of milliseconds: {value}"))?;
                options.pace = Some(Duration::from_millis(ms));
            }
            "--base-url" => {
                options.base_url = Some(args.next().ok_or("--base-url needs URL")?);
            }
            "--model" => {
                options.model = Some(args.next().ok_or("--model needs NAME")?);
            }
            "--observe" => options.mode = observe::Mode::Live,
            "--observe-snapshot" => options.mode = observe::Mode::Snapshot,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if options.journal.is_none() && options.run != DEFAULT_RUN {
        return Err("--run needs --journal".into());
    }
    if options.base_url.is_some() != options.model.is_some() {
        return Err("--base-url and --model go together".into());
    }
    Ok(options)
}

/// The journal file, written by a task on this example's runtime instead of the journal's own
/// thread (`blocks` is false): the run is on a paused tokio clock, which jumps to the next timer
/// whenever the runtime is idle, and would do so while a step waits for a writer thread's fsync.
/// Written here, the fsync keeps the runtime busy and the clock still. A program on a real
/// clock opens `LogStorage` as it is.
#[derive(Debug)]
struct OnThisRuntime(LogStorage);

impl Storage for OnThisRuntime {
    fn load(&mut self) -> Result<Stored, StorageError> {
        self.0.load()
    }

    fn initialize(&mut self, format_version: u32) -> Result<(), StorageError> {
        self.0.initialize(format_version)
    }

    fn append(&mut self, records: &[Vec<u8>], sync: bool) -> Result<(), StorageError> {
        self.0.append(records, sync)
    }

    fn truncate(&mut self, keep: u64) -> Result<(), StorageError> {
        self.0.truncate(keep)
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        self.0.sync()
    }

    fn blocks(&self) -> bool {
        false
    }
}

/// Opens the journal at `path` (creating it), or says why it cannot and exits.
fn open_journal(path: &Path) -> (Journal, Opened) {
    let opened = LogStorage::open(path)
        .map_err(overseer::journal::JournalError::from)
        .and_then(|file| Journal::open(OnThisRuntime(file), JournalConfig::default()));
    opened.unwrap_or_else(|error| {
        eprintln!(
            "research_team: cannot open the journal {}: {error}",
            path.display()
        );
        std::process::exit(1);
    })
}

/// How each question's run went, for the summary.
#[derive(Debug, Default)]
struct Runs {
    /// Answered from the journal: finished in an earlier process, nothing run.
    from_journal: u32,
    /// Taken up again after a crash, replaying what was journaled.
    resumed: u32,
    /// Run from their start.
    fresh: u32,
    replayed: u32,
    ran: u32,
    not_billed: Usage,
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Options {
        seed,
        mode,
        events: events_path,
        journal: journal_path,
        run,
        pace,
        base_url,
        model: model_name,
    } = options_from_args().unwrap_or_else(|error| CLI.fail(error));
    let provider = match (&base_url, &model_name) {
        (Some(url), Some(name)) => Some(Provider::new(url, name).unwrap_or_else(|error| {
            eprintln!("research_team: cannot ask {name} at {url}: {error}");
            std::process::exit(1);
        })),
        _ => None,
    };
    let token_budget = if provider.is_some() {
        PROVIDER_TOKEN_BUDGET
    } else {
        TOKEN_BUDGET
    };
    // Injected panics are reported as events; keep stderr for real problems.
    std::panic::set_hook(Box::new(|info| {
        let text = info.to_string();
        if !text.contains("injected") {
            eprintln!("{text}");
        }
    }));
    let budget = Budget::builder()
        .process_limits(Limits::new().tokens(token_budget))
        .build()?;
    let breakers = BreakerRegistry::new(
        BreakerConfig::default()
            .consecutive_failures(Some(2))
            .open_duration(Backoff::fixed(Duration::from_secs(30)))
            .seed(Some(seed)),
    )?;
    let journal = journal_path.as_deref().map(open_journal);
    let mut builder = System::builder()
        .ask_timeout(Duration::from_secs(60))
        .budget(budget.clone())
        .breakers(breakers);
    if let Some((journal, _)) = &journal {
        builder = builder.journal(journal.clone());
    }
    let system = builder.build()?;
    // A real model's calls take real time of their own.
    let pace = pace.unwrap_or(if journal.is_some() && provider.is_none() {
        JOURNAL_PACE
    } else {
        Duration::ZERO
    });
    let model = Model {
        scripted: model(),
        pace,
        provider,
    };
    let lead_steps = Arc::new(Mutex::new(RunSteps::default()));

    let injectors = chaos_plans(seed)?;
    let mut researchers =
        SupervisorSpec::one_for_one("researchers").intensity(2, Duration::from_secs(300));
    for (name, injector) in &injectors {
        let model = model.clone();
        let spec = AgentSpec::new(
            *name,
            injector.wrap(move || Researcher {
                model: model.clone(),
            }),
        )
        .ask_timeout(Duration::from_secs(10))
        .valid_output(|finding: &String| is_finding(finding));
        researchers = researchers.child(system.agent(spec)?);
    }
    let citations = FaultInjector::new(
        FaultPlan::builder()
            .rule(Rule::probability(Fault::Error, 1.0).for_task_type("verify"))
            .build()?,
        seed,
    )?;
    let lead_system = system.downgrade();
    let (lead_model, citer_model) = (model.clone(), model.clone());
    let steps = Arc::clone(&lead_steps);
    let team = SupervisorSpec::one_for_one("team")
        .intensity(3, Duration::from_secs(60))
        .child(system.agent(AgentSpec::new("lead", move || Lead {
            model: lead_model.clone(),
            system: lead_system.clone(),
            steps: Arc::clone(&steps),
        }))?)
        .child(ChildSpec::supervisor(researchers))
        .child(system.agent(AgentSpec::new(
            "citations",
            citations.wrap(move || Citer {
                model: citer_model.clone(),
            }),
        ))?);

    let started = Instant::now();
    // Woken by each event, the printer task writes them while nobody else prints.
    let mut wake = system.subscribe();
    *printer() = Some(Printer {
        events: system.subscribe(),
        order: CausalOrder::default(),
        tally: Tally::default(),
        starts: BTreeMap::new(),
    });
    let printing = tokio::spawn(async move {
        while !matches!(wake.recv().await, Err(RecvError::Closed)) {
            if let Some(printer) = printer().as_mut() {
                printer.drain();
            }
        }
    });

    let observer = observe::start(mode, seed, &system)?;
    let event_file = match &events_path {
        Some(path) => Some((
            path,
            JsonLines::spawn(&system, BufWriter::new(File::create(path)?)),
        )),
        None => None,
    };
    say(format!(
        "research team, seed {seed}: a lead, {} researchers and a citation agent",
        RESEARCHERS.len()
    ));
    if let (Some(url), Some(name)) = (&base_url, &model_name) {
        say(format!("model: {name} at {url} (OpenAI-compatible)"));
    }
    if let (Some((_, opened)), Some(path)) = (&journal, &journal_path) {
        let unfinished: Vec<&str> = opened.unfinished.iter().map(RunId::as_str).collect();
        say(format!(
            "journal {}: {} records, {} runs, unfinished: {}{}",
            path.display(),
            opened.records,
            opened.runs,
            if unfinished.is_empty() {
                "none".to_string()
            } else {
                unfinished.join(", ")
            },
            if opened.dropped_torn_record {
                " (a torn last record, never acknowledged, was dropped)"
            } else {
                ""
            }
        ));
    }
    system.start(team).await?;
    let lead = system.agent_ref::<Lead>("lead")?;
    let mut answers = Vec::new();
    let mut runs = Runs::default();
    for (number, question) in QUESTIONS.into_iter().enumerate() {
        log(started, "question", question.to_string());
        *lead_steps
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = RunSteps::default();
        let asked = match &journal {
            None => lead.ask(question.to_string()).await,
            Some((journal, opened)) => {
                let id = RunId::new(format!("{run}-q{}", number + 1))?;
                let unfinished = opened.unfinished.contains(&id);
                let known = journal.with_run(&id, |record| record.is_some());
                let asked = lead.ask_run(id.clone(), question.to_string()).await;
                let steps = *lead_steps
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                log(
                    started,
                    "journal",
                    journal_line(&id, known, unfinished, steps, &mut runs),
                );
                asked
            }
        };
        match asked {
            Ok(report) => {
                let by: Vec<&str> = report.findings.iter().map(|(by, _)| by.as_str()).collect();
                log(
                    started,
                    "answered",
                    format!(
                        "{} findings (from {}), {} cited, {} verified",
                        report.findings.len(),
                        by.join(", "),
                        report.citations,
                        report.verified
                    ),
                );
                answers.push(report.answer);
            }
            Err(error) => log(started, "failed", error.to_string()),
        }
        // The next question comes a minute later: open breakers let a probe through.
        tokio::time::sleep(Duration::from_secs(60)).await;
    }

    if let Some(observer) = observer {
        observer.finish().await?;
    }
    system.shutdown(Duration::from_secs(10)).await?;
    drop(system);
    let _ = printing.await;
    let tally = match printer().take() {
        Some(mut printer) => {
            printer.finish();
            printer.tally
        }
        None => Tally::default(),
    };
    if let Some((path, sink)) = event_file {
        let lines = sink.await??;
        if mode != observe::Mode::Snapshot {
            say(format!("{lines} events written to {}", path.display()));
        }
    }
    if mode == observe::Mode::Snapshot {
        return Ok(());
    }

    println!();
    println!("== summary (seed {seed})");
    println!(
        "asks: {} answered, {} failed, {} refused by open breakers",
        tally.asks_ok, tally.asks_failed, tally.asks_refused
    );
    let restarts: Vec<String> = tally
        .restarts
        .iter()
        .map(|(name, n)| format!("{name} x{n}"))
        .collect();
    println!(
        "restarts: {}",
        if restarts.is_empty() {
            "none".to_string()
        } else {
            restarts.join(", ")
        }
    );
    println!(
        "escalations: {}",
        if tally.escalations.is_empty() {
            "none".to_string()
        } else {
            tally.escalations.join(", ")
        }
    );
    println!(
        "breakers opened: {}",
        if tally.breakers_opened.is_empty() {
            "none".to_string()
        } else {
            let opened: Vec<String> = tally
                .breakers_opened
                .iter()
                .map(|(breaker, times)| format!("{breaker} x{times}"))
                .collect();
            opened.join(", ")
        }
    );
    for (name, injector) in &injectors {
        println!("injected into {name}: {}", injector.stats());
    }
    println!("injected into citations: {}", citations.stats());
    let spent = budget.process().committed(Dimension::Tokens);
    println!(
        "spend: {spent} of {token_budget} tokens ({}%), {} micro-units",
        spent * 100 / token_budget,
        budget.process().committed(Dimension::Cost)
    );
    if let Some((journal, _)) = journal {
        println!(
            "journal: {} runs answered from the journal, {} resumed, {} run from the start; {} steps replayed, {} run",
            runs.from_journal, runs.resumed, runs.fresh, runs.replayed, runs.ran
        );
        println!(
            "not billed again: {} tokens, {} micro-units of the lead's model calls; model calls made by this process: {}",
            runs.not_billed.total_tokens(),
            runs.not_billed.cost_micros,
            model.calls()
        );
        journal.close().await?;
    }
    if let Some(name) = &model_name {
        println!("model calls to {name}: {}", model.calls());
    }
    println!(
        "answer: {}",
        answers.last().map_or("(none)", String::as_str)
    );
    Ok(())
}

/// What the journal did for the run `id` of one question (`known`: the journal held it before
/// this ask; `unfinished`: a process that died left it unfinished), tallied into `runs`.
fn journal_line(
    id: &RunId,
    known: bool,
    unfinished: bool,
    steps: RunSteps,
    runs: &mut Runs,
) -> String {
    runs.replayed += steps.replayed;
    runs.ran += steps.ran;
    runs.not_billed += steps.not_billed;
    if !steps.handled {
        runs.from_journal += 1;
        return format!("{id}: finished before, answered from the journal, nothing run");
    }
    let replayed = steps.replayed > 0 || (known && unfinished);
    if replayed {
        runs.resumed += 1;
        format!(
            "{id}: resumed, {} steps replayed, {} run; not billed again: {} tokens, {} micro-units",
            steps.replayed,
            steps.ran,
            steps.not_billed.total_tokens(),
            steps.not_billed.cost_micros
        )
    } else {
        runs.fresh += 1;
        format!("{id}: {} steps run and journaled", steps.ran)
    }
}
