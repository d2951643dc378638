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

mod observe;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use overseer::agent::{Answered, AskOutcome, BudgetWarningEvent};
use overseer::breaker::{Backoff, BreakerConfig, BreakerRegistry, State};
use overseer::budget::{Budget, Dimension, Limits};
use overseer::prelude::*;
use overseer::supervisor::{ChildSpec, EventKind};
use overseer_chaos::{Chaos, Fault, FaultInjector, FaultPlan, Rule};
use overseer_observe::JsonLines;
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
                Ok(Answered { by, output }) if is_finding(&output) => {
                    report.findings.push((by.to_string(), output))
                }
                Ok(Answered { by, output }) => say(format!(
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

/// Prints events as they happen and tallies them for the summary.
#[derive(Debug, Default)]
struct Tally {
    restarts: BTreeMap<String, u32>,
    escalations: Vec<String>,
    breakers_opened: BTreeMap<String, u32>,
    asks_ok: u32,
    asks_failed: u32,
    asks_refused: u32,
}

/// Prints one line of the log, or hands it to the terminal view when one is on.
fn say(line: String) {
    if !observe::capture(&line) {
        println!("{line}");
    }
}

fn log(started: Instant, what: &str, detail: String) {
    say(format!(
        "[{:>7.3}s] {what:<9} {detail}",
        started.elapsed().as_secs_f64()
    ));
}

fn watch(
    event: SystemEvent,
    started: Instant,
    tally: &Mutex<Tally>,
    seen: &mut BTreeMap<String, u32>,
) {
    let mut tally = tally
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match event {
        SystemEvent::Lifecycle(event) => {
            let path = event.path.to_string();
            match event.kind {
                EventKind::Started => {
                    let starts = seen.entry(path.clone()).or_default();
                    *starts += 1;
                    if *starts > 1 {
                        *tally
                            .restarts
                            .entry(event.path.name().to_string())
                            .or_default() += 1;
                        log(started, "restart", path);
                    }
                }
                EventKind::Stopped { reason } if !reason.is_normal() => {
                    log(started, "crash", format!("{path}: {reason}"))
                }
                EventKind::Escalated {
                    intensity,
                    period_secs,
                } => {
                    tally.escalations.push(path.clone());
                    log(
                        started,
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
                AskOutcome::Error { kind, .. } if kind == "breaker_open" => tally.asks_refused += 1,
                AskOutcome::Error { .. } => tally.asks_failed += 1,
            }
            if let Some(fault) = &ask.injected {
                log(
                    started,
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
            log(
                started,
                "breaker",
                format!(
                    "{}/{}: {} -> {}",
                    moved.agent, moved.task_type, moved.from, moved.to
                ),
            );
        }
        SystemEvent::BudgetWarning(BudgetWarningEvent { warning, .. }) => log(
            started,
            "budget",
            format!(
                "{} of {:?} ({} of {})",
                warning.tier, warning.dimension, warning.used, warning.limit
            ),
        ),
        SystemEvent::KillSwitchTripped(trip) => {
            log(started, "KILL", trip.report.reason.to_string())
        }
        _ => {}
    }
}

/// What the command line asks for.
struct Options {
    seed: u64,
    mode: observe::Mode,
    /// Where to write every event as JSON lines.
    events: Option<PathBuf>,
}

fn options_from_args() -> Result<Options, String> {
    let usage = "usage: research_team [--seed N] [--observe | --observe-snapshot] [--events FILE]";
    let mut options = Options {
        seed: 42,
        mode: observe::Mode::Plain,
        events: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seed" => {
                let value = args
                    .next()
                    .ok_or_else(|| format!("{usage} (--seed needs N)"))?;
                options.seed = value.parse().map_err(|_| format!("not a seed: {value}"))?;
            }
            "--events" => {
                let file = args
                    .next()
                    .ok_or_else(|| format!("{usage} (--events needs FILE)"))?;
                options.events = Some(file.into());
            }
            "--observe" => options.mode = observe::Mode::Live,
            "--observe-snapshot" => options.mode = observe::Mode::Snapshot,
            other => return Err(format!("{usage} (got {other})")),
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
    } = options_from_args()?;
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
    let tally = Arc::new(Mutex::new(Tally::default()));
    let mut events = system.subscribe();
    let printer = tokio::spawn({
        let tally = Arc::clone(&tally);
        async move {
            let mut seen = BTreeMap::new();
            while let Ok(event) = events.recv().await {
                watch(event, started, &tally, &mut seen);
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
    let _ = printer.await;
    if let Some((path, sink)) = event_file {
        let lines = sink.await??;
        if mode != observe::Mode::Snapshot {
            say(format!("{lines} events written to {}", path.display()));
        }
    }
    if mode == observe::Mode::Snapshot {
        return Ok(());
    }

    let tally = tally
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
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
