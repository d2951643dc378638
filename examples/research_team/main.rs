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
//! ```
//!
//! The run uses a paused tokio clock: hangs and timeouts take no real time, and the same seed
//! always gives the same run.

#[allow(dead_code)] // each example uses part of it
#[path = "../support/cli.rs"]
mod cli;
mod observe;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use overseer::agent::{Answered, AskOutcome, BudgetWarningEvent};
use overseer::breaker::{Backoff, BreakerConfig, BreakerRegistry, State};
use overseer::budget::{Budget, Dimension, Limits};
use overseer::prelude::*;
use overseer::supervisor::{ChildSpec, EventId, EventKind};
use overseer_chaos::{Chaos, Fault, FaultInjector, FaultPlan, Rule};
use overseer_observe::JsonLines;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::time::Instant;

const TOKEN_BUDGET: u64 = 800;
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

/// Looks one topic up.
struct Researcher {
    model: ScriptedModel,
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

/// Cites and verifies findings.
struct Citer {
    model: ScriptedModel,
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

/// What the lead hands back for one question.
#[derive(Debug, Clone)]
struct Report {
    answer: String,
    findings: Vec<(String, String)>,
    citations: usize,
    verified: usize,
}

/// Plans, delegates, and writes the answer.
struct Lead {
    model: ScriptedModel,
    /// To find the other agents: a weak handle, so the lead does not keep its own system alive.
    system: WeakSystem,
}

impl Lead {
    async fn think(&self, ctx: &mut AgentContext, prompt: String) -> Result<String, AgentError> {
        let answer = self
            .model
            .complete(ModelRequest::new(prompt))
            .await
            .map_err(|error| AgentError::failed(error.to_string()))?;
        ctx.report_usage(answer.usage);
        Ok(answer.text)
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
            match primary
                .ask_with_fallback(Search(topic.to_string()), &alternates)
                .await
            {
                Ok(Answered { by, output, .. }) if is_finding(&output) => {
                    report.findings.push((by.to_string(), output))
                }
                Ok(Answered { by, output, .. }) => say(format!(
                    "           lead discards a bad finding from {by}: {output:?}"
                )),
                Err(error) => say(format!("           lead got nothing on {topic:?}: {error}")),
            }
        }
        for (_, finding) in &report.findings {
            if citer.ask(CiteTask::Cite(finding.clone())).await.is_ok() {
                report.citations += 1;
            }
            if citer.ask(CiteTask::Verify(finding.clone())).await.is_ok() {
                report.verified += 1;
            }
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
}

const CLI: cli::Cli = cli::Cli {
    name: "research_team",
    about: "a research team that heals itself while faults are injected (on a paused clock)",
    synopsis: "[--seed N] [--observe | --observe-snapshot] [--events FILE]",
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
    ],
};

fn options_from_args() -> Result<Options, String> {
    let mut options = Options {
        seed: 42,
        mode: observe::Mode::Plain,
        events: None,
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
            "--observe" => options.mode = observe::Mode::Live,
            "--observe-snapshot" => options.mode = observe::Mode::Snapshot,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(options)
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Options {
        seed,
        mode,
        events: events_path,
    } = options_from_args().unwrap_or_else(|error| CLI.fail(error));
    // Injected panics are reported as events; keep stderr for real problems.
    std::panic::set_hook(Box::new(|info| {
        let text = info.to_string();
        if !text.contains("injected") {
            eprintln!("{text}");
        }
    }));
    let budget = Budget::builder()
        .process_limits(Limits::new().tokens(TOKEN_BUDGET))
        .build()?;
    let breakers = BreakerRegistry::new(
        BreakerConfig::default()
            .consecutive_failures(Some(2))
            .open_duration(Backoff::fixed(Duration::from_secs(30)))
            .seed(Some(seed)),
    )?;
    let system = System::builder()
        .ask_timeout(Duration::from_secs(60))
        .budget(budget.clone())
        .breakers(breakers)
        .build()?;

    let injectors = chaos_plans(seed)?;
    let mut researchers =
        SupervisorSpec::one_for_one("researchers").intensity(2, Duration::from_secs(300));
    for (name, injector) in &injectors {
        let spec = AgentSpec::new(*name, injector.wrap(|| Researcher { model: model() }))
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
    let team = SupervisorSpec::one_for_one("team")
        .intensity(3, Duration::from_secs(60))
        .child(system.agent(AgentSpec::new("lead", move || Lead {
            model: model(),
            system: lead_system.clone(),
        }))?)
        .child(ChildSpec::supervisor(researchers))
        .child(system.agent(AgentSpec::new(
            "citations",
            citations.wrap(|| Citer { model: model() }),
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

    let observer = observe::start(mode, seed, started, TOKEN_BUDGET, &system)?;
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
    system.start(team).await?;
    let lead = system.agent_ref::<Lead>("lead")?;
    let mut answers = Vec::new();
    for question in QUESTIONS {
        log(started, "question", question.to_string());
        match lead.ask(question.to_string()).await {
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
        "spend: {spent} of {TOKEN_BUDGET} tokens ({}%), {} micro-units",
        spent * 100 / TOKEN_BUDGET,
        budget.process().committed(Dimension::Cost)
    );
    println!(
        "answer: {}",
        answers.last().map_or("(none)", String::as_str)
    );
    Ok(())
}
