//! Goodput under faults: one research workload run four ways, with the same seeded faults.
//!
//! Each task is a question: a lead fans it out to three researchers, then asks a verifier to
//! check their findings and write the answer. Tasks arrive one every 0.2 s (spread over at
//! least 600 s in a shorter run). The models are scripted: every call's fate (answer, panic,
//! hang, corrupted answer) is drawn from the seed and the call's place (the task, the role, and
//! how many calls that role of that task made before), so each variant meets the same faults
//! in the same places:
//!
//! - 5 % of calls panic, 1 % hang, 2 % answer with a well-formed but wrong finding (its
//!   checksum no longer matches, so a validator can tell);
//! - the provider is down for 30 s from 120 s (every call started then gets a 503 at once);
//! - one researcher (`researcher-5`) loops on a fifth of its tasks: it searches for the same
//!   thing again and again, 40 times, each search billed, then gives up.
//!
//! The four variants:
//!
//! 1. **plain**: tokio tasks, no supervision, no timeouts, no retries;
//! 2. **naive retry**: every call retried up to 3 times, 1 s apart, on any error, panic or
//!    20 s timeout;
//! 3. **supervised**: Overseer agents under a supervisor (crashes restarted, hangs ended by
//!    the ask's deadline), nothing else;
//! 4. **everything**: supervision, breakers, a retry policy with a retry budget, the
//!    escalation ladder (the same agent told why, then a backup), validators on every finding
//!    and answer, a token budget, loop detection and a cohort per fan-out. A member the cohort
//!    did not get is asked again up the ladder in rounds of 15 s (at most 8): the attempts of a
//!    retry policy share one deadline, so one hung attempt would otherwise take all of it.
//!
//! The table gives, per variant, the tasks answered right, answered wrong and failed (a hang
//! past three hours counts as failed), the p50 and p99 time from a task's arrival to its
//! answer (answered tasks only, on the tokio clock), the model calls and tokens billed, the
//! tokens of calls whose result went into no answer, and how far the tokens went past the
//! run's limit (1.25 times what the tasks need without faults; only variant 4 enforces it).
//! `GOODPUT_DEBUG=1` prints variant 4's failures on stderr.
//!
//! ```text
//! cargo run --release --example goodput [-- --tasks N --seed S]
//! ```
//!
//! Runs each variant on its own current-thread runtime with a paused clock: the outage and the
//! hangs take no real time, and the figures are the same on every machine.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use overseer::agent::{Answered, Cohort, Escalation, Finding as Found, LoopAction, SemanticConfig};
use overseer::breaker::Backoff;
use overseer::breaker::State as BreakerState;
use overseer::prelude::*;
use overseer::retry::{ClassSet, Jitter, RetryBudget, RetryPolicy};
use overseer::semantic::loop_detect::{LoopConfig, LoopThresholds};
use overseer::semantic::validator::from_predicate;
use tokio::sync::broadcast;
use tokio::time::Instant;

#[allow(dead_code)] // each example uses part of it
#[path = "support/cli.rs"]
mod cli;

const CLI: cli::Cli = cli::Cli {
    name: "goodput",
    about: "a research workload under seeded faults, run plain, with naive retries, supervised, and with everything Overseer has",
    synopsis: "[--tasks N] [--seed S]",
    options: &[
        ("--tasks N", "how many research tasks (default 3000)"),
        ("--seed S", "the seed of the faults (default 42)"),
    ],
};

/// Researchers in the pool; each task goes to three of them.
const RESEARCHERS: usize = 24;
/// Backup researchers, for the escalation ladder (variant 4 only).
const BACKUPS: usize = 4;
/// Verifiers in the pool.
const VERIFIERS: usize = 6;
/// The researcher that loops.
const LOOPER: usize = 5;
/// How many identical searches the looper makes before it gives up on its own.
const LOOP_SEARCHES: u32 = 40;
/// A new task arrives this often at the most.
const ARRIVAL: Duration = Duration::from_millis(200);
/// The arrivals span at least this long: a short run gets fewer tasks a second, so the outage
/// always falls on the same share of them (5 %).
const SPAN: Duration = Duration::from_secs(600);
/// When the provider goes down, from the start of the run, and for how long.
const OUTAGE_START: Duration = Duration::from_secs(120);
const OUTAGE: Duration = Duration::from_secs(30);
/// Tokens of one call of each kind.
const RESEARCH_TOKENS: (u64, u64) = (300, 200);
const VERIFY_TOKENS: (u64, u64) = (900, 100);
const SEARCH_TOKENS: (u64, u64) = (400, 50);
/// A task not finished by then never finishes.
const HORIZON: Duration = Duration::from_secs(3 * 3600);
/// The token limit of the run: 25 % above what the tasks need without faults.
const LIMIT_FACTOR: f64 = 1.25;

/// What a call does, drawn from the seed and its place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Answers,
    Panics,
    Hangs,
    Corrupts,
}

/// splitmix64 of a value: the example's only source of randomness.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn hash(parts: &[u64]) -> u64 {
    parts.iter().fold(0x5EED, |acc, &part| mix(acc ^ mix(part)))
}

/// The fate of the `n`th call that reached the model for `role` of `task`.
fn fate(seed: u64, task: u64, role: u64, n: u64) -> Fate {
    match hash(&[seed, 1, task, role, n]) % 1000 {
        0..=49 => Fate::Panics,
        50..=59 => Fate::Hangs,
        60..=79 => Fate::Corrupts,
        _ => Fate::Answers,
    }
}

/// Whether the looping researcher loops on `task`.
fn loops_on(seed: u64, task: u64) -> bool {
    hash(&[seed, 2, task]).is_multiple_of(5)
}

/// The right finding of researcher slot `role` (0 to 2) on `task`.
fn right_value(seed: u64, task: u64, role: u64) -> u64 {
    hash(&[seed, 3, task, role]) % 10_000
}

/// A checksum of a value: a corrupted answer keeps the checksum of the right one.
fn checksum(task: u64, role: u64, value: u64) -> u64 {
    hash(&[4, task, role, value])
}

/// A researcher's finding, or the verifier's answer (role 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Finding {
    task: u64,
    role: u64,
    value: u64,
    check: u64,
    /// The tokens of the call that produced it.
    tokens: u64,
}

impl Finding {
    fn consistent(&self) -> bool {
        self.check == checksum(self.task, self.role, self.value)
    }
}

/// The verifier's role number.
const VERIFY: u64 = 3;

/// The scripted provider of one variant: decides each call's fate and counts what it billed.
struct Model {
    seed: u64,
    start: Instant,
    calls_so_far: Mutex<HashMap<(u64, u64), u64>>,
    calls: AtomicU64,
    tokens: AtomicU64,
}

/// Why a model call failed without panicking or hanging.
#[derive(Debug, Clone)]
enum ModelError {
    Unavailable,
    NoProgress(u32),
}

impl std::fmt::Display for ModelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unavailable => write!(f, "503 Service Unavailable: the provider is down"),
            Self::NoProgress(searches) => {
                write!(f, "no progress after {searches} identical searches")
            }
        }
    }
}

impl Model {
    fn new(seed: u64) -> Self {
        Self {
            seed,
            start: Instant::now(),
            calls_so_far: Mutex::new(HashMap::new()),
            calls: AtomicU64::new(0),
            tokens: AtomicU64::new(0),
        }
    }

    fn bill(&self, (input, output): (u64, u64)) -> u64 {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.tokens.fetch_add(input + output, Ordering::Relaxed);
        input + output
    }

    fn down(&self) -> bool {
        let now = self.start.elapsed();
        now >= OUTAGE_START && now < OUTAGE_START + OUTAGE
    }

    /// One call for `role` of `task`: a finding (right or corrupted), an outage error, a
    /// panic, or a hang, as the seed says.
    async fn call(&self, task: u64, role: u64, value: u64) -> Result<Finding, ModelError> {
        let (latency, tokens) = if role == VERIFY {
            (Duration::from_millis(500), VERIFY_TOKENS)
        } else {
            (Duration::from_secs(1), RESEARCH_TOKENS)
        };
        if self.down() {
            // A 503 comes back at once, and bills nothing.
            tokio::time::sleep(Duration::from_millis(50)).await;
            self.calls.fetch_add(1, Ordering::Relaxed);
            return Err(ModelError::Unavailable);
        }
        tokio::time::sleep(latency).await;
        let n = {
            let mut so_far = self.calls_so_far.lock().unwrap_or_else(|e| e.into_inner());
            let n = so_far.entry((task, role)).or_insert(0);
            *n += 1;
            *n - 1
        };
        let fate = fate(self.seed, task, role, n);
        if fate == Fate::Hangs {
            std::future::pending::<()>().await;
        }
        let tokens = self.bill(tokens);
        if fate == Fate::Panics {
            panic!("injected panic: {role} of task {task}");
        }
        let check = checksum(task, role, value);
        let value = if fate == Fate::Corrupts {
            value + 1 + hash(&[self.seed, 5, task, role, n]) % 100
        } else {
            value
        };
        Ok(Finding {
            task,
            role,
            value,
            check,
            tokens,
        })
    }

    /// The looper's searches: the same search again and again, each billed, `on_search`
    /// asked before each (the loop detector's hook in variant 4).
    async fn search_loop(
        &self,
        mut on_search: impl FnMut() -> Result<(), String>,
    ) -> Result<Finding, String> {
        for _ in 0..LOOP_SEARCHES {
            on_search()?;
            tokio::time::sleep(Duration::from_secs(1)).await;
            self.bill(SEARCH_TOKENS);
        }
        Err(ModelError::NoProgress(LOOP_SEARCHES).to_string())
    }

    /// Researcher number `who` (`RESEARCHERS` and above are backups) on `role` of `task`.
    async fn research(
        &self,
        who: usize,
        task: u64,
        role: u64,
        on_search: impl FnMut() -> Result<(), String>,
    ) -> Result<Finding, String> {
        if who == LOOPER && loops_on(self.seed, task) {
            return self.search_loop(on_search).await;
        }
        self.call(task, role, right_value(self.seed, task, role))
            .await
            .map_err(|e| e.to_string())
    }

    /// The verifier on `task`'s findings: it writes their sum as the answer (it does not
    /// check them: a scripted model that believes what it is given).
    async fn verify(&self, task: u64, findings: &[Finding]) -> Result<Finding, String> {
        let sum = findings.iter().map(|f| f.value).sum();
        self.call(task, VERIFY, sum)
            .await
            .map_err(|e| e.to_string())
    }
}

/// The right answer to `task`.
fn right_answer(seed: u64, task: u64) -> u64 {
    (0..3).map(|role| right_value(seed, task, role)).sum()
}

/// The three researchers of `task`.
fn assigned(task: u64) -> [usize; 3] {
    let first = (task as usize * 3) % RESEARCHERS;
    [first, (first + 1) % RESEARCHERS, (first + 2) % RESEARCHERS]
}

fn verifier_of(task: u64) -> usize {
    task as usize % VERIFIERS
}

/// How a task ended.
#[derive(Debug, Clone, Copy)]
enum Outcome {
    /// An answer, the tokens of the calls it was made of, and when (from the task's arrival).
    Answered {
        answer: Finding,
        used_tokens: u64,
        took: Duration,
    },
    Failed,
}

fn answered(answer: Finding, findings: &[Finding], arrived: Instant) -> Outcome {
    Outcome::Answered {
        answer,
        used_tokens: answer.tokens + findings.iter().map(|f| f.tokens).sum::<u64>(),
        took: arrived.elapsed(),
    }
}

/// One variant's figures.
struct Report {
    name: &'static str,
    correct: usize,
    wrong: usize,
    failed: usize,
    p50: Duration,
    p99: Duration,
    calls: u64,
    tokens: u64,
    wasted: u64,
    limit: u64,
}

fn report(
    name: &'static str,
    seed: u64,
    model: &Model,
    outcomes: &[Outcome],
    limit: u64,
) -> Report {
    let (mut correct, mut wrong, mut failed, mut used) = (0, 0, 0, 0);
    let mut times = Vec::new();
    for (task, outcome) in outcomes.iter().enumerate() {
        match outcome {
            Outcome::Answered {
                answer,
                used_tokens,
                took,
            } => {
                if answer.value == right_answer(seed, task as u64) {
                    correct += 1;
                } else {
                    wrong += 1;
                }
                used += used_tokens;
                times.push(*took);
            }
            Outcome::Failed => failed += 1,
        }
    }
    times.sort();
    let quantile = |q: f64| {
        if times.is_empty() {
            Duration::ZERO
        } else {
            times[((times.len() - 1) as f64 * q).round() as usize]
        }
    };
    let tokens = model.tokens.load(Ordering::Relaxed);
    Report {
        name,
        correct,
        wrong,
        failed,
        p50: quantile(0.5),
        p99: quantile(0.99),
        calls: model.calls.load(Ordering::Relaxed),
        tokens,
        wasted: tokens - used,
        limit,
    }
}

/// How often a task arrives in a run of `tasks`.
fn arrival(tasks: u64) -> Duration {
    ARRIVAL.max(SPAN / tasks as u32)
}

/// Runs `lead` for every task, one arriving each `arrival(tasks)`, until all are done or the horizon.
async fn run_tasks<F, Fut>(tasks: u64, lead: F) -> Vec<Outcome>
where
    F: Fn(u64, Instant) -> Fut,
    Fut: std::future::Future<Output = Outcome> + Send + 'static,
{
    let start = Instant::now();
    let every = arrival(tasks);
    let mut handles = Vec::new();
    for task in 0..tasks {
        tokio::time::sleep_until(start + every * task as u32).await;
        handles.push(tokio::spawn(lead(task, Instant::now())));
    }
    let deadline = start + HORIZON;
    let mut outcomes = Vec::new();
    for handle in handles {
        // A panic in the task (plain) is its failure; so is a hang past the horizon.
        let outcome = match tokio::time::timeout_at(deadline, handle).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) | Err(_) => Outcome::Failed,
        };
        outcomes.push(outcome);
    }
    outcomes
}

// ---- variants 1 and 2: plain tokio ----

/// Variant 1: each researcher call a tokio task; a panic or an error fails the task, a hang
/// holds it forever.
async fn plain(seed: u64, tasks: u64, limit: u64) -> Report {
    let model = Arc::new(Model::new(seed));
    let outcomes = run_tasks(tasks, |task, arrived| {
        let model = model.clone();
        async move {
            let mut calls = Vec::new();
            for (role, who) in assigned(task).into_iter().enumerate() {
                let model = model.clone();
                calls.push(tokio::spawn(async move {
                    model.research(who, task, role as u64, || Ok(())).await
                }));
            }
            let mut findings = Vec::new();
            for call in calls {
                match call.await {
                    Ok(Ok(finding)) => findings.push(finding),
                    _ => return Outcome::Failed,
                }
            }
            let verify = {
                let model = model.clone();
                let findings = findings.clone();
                tokio::spawn(async move { model.verify(task, &findings).await })
            };
            match verify.await {
                Ok(Ok(answer)) => answered(answer, &findings, arrived),
                _ => Outcome::Failed,
            }
        }
    })
    .await;
    report("plain tokio", seed, &model, &outcomes, limit)
}

/// Retries `call` up to 3 times (4 attempts) on an error, a panic or a 20 s timeout, 1 s apart.
async fn naive<F, Fut>(call: F) -> Option<Finding>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<Finding, String>> + Send + 'static,
{
    for attempt in 0..4 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let handle = tokio::spawn(call());
        let abort = handle.abort_handle();
        match tokio::time::timeout(Duration::from_secs(20), handle).await {
            Ok(Ok(Ok(finding))) => return Some(finding),
            Ok(_) => {}
            Err(_) => abort.abort(),
        }
    }
    None
}

/// Variant 2: variant 1 with every call retried.
async fn naive_retry(seed: u64, tasks: u64, limit: u64) -> Report {
    let model = Arc::new(Model::new(seed));
    let outcomes = run_tasks(tasks, |task, arrived| {
        let model = model.clone();
        async move {
            let mut calls = Vec::new();
            for (role, who) in assigned(task).into_iter().enumerate() {
                let model = model.clone();
                calls.push(tokio::spawn(async move {
                    naive(|| {
                        let model = model.clone();
                        async move { model.research(who, task, role as u64, || Ok(())).await }
                    })
                    .await
                }));
            }
            let mut findings = Vec::new();
            for call in calls {
                match call.await {
                    Ok(Some(finding)) => findings.push(finding),
                    _ => return Outcome::Failed,
                }
            }
            let answer = naive(|| {
                let model = model.clone();
                let findings = findings.clone();
                async move { model.verify(task, &findings).await }
            })
            .await;
            match answer {
                Some(answer) => answered(answer, &findings, arrived),
                None => Outcome::Failed,
            }
        }
    })
    .await;
    report("naive retry x3", seed, &model, &outcomes, limit)
}

// ---- variants 3 and 4: Overseer ----

/// A researcher's job: which role of which task.
#[derive(Debug, Clone, Copy)]
struct Job {
    task: u64,
    role: u64,
}

struct Researcher {
    who: usize,
    model: Arc<Model>,
}

impl Agent for Researcher {
    type Task = Job;
    type Output = Finding;

    fn task_type(_: &Job) -> &'static str {
        "research"
    }

    fn estimate(_: &Job) -> Usage {
        Usage::new(RESEARCH_TOKENS.0, RESEARCH_TOKENS.1, 0)
    }

    async fn handle(&mut self, ctx: &mut AgentContext, job: Job) -> Result<Finding, AgentError> {
        let args = serde_json::json!({"task": job.task, "role": job.role});
        let nothing = serde_json::json!("nothing new");
        let mut searches = 0;
        let result = self
            .model
            .research(self.who, job.task, job.role, || {
                searches += 1;
                ctx.tool_call("search", &args, Some(&nothing))
                    .map_err(|e| e.to_string())
            })
            .await;
        let (input, output) = SEARCH_TOKENS;
        ctx.report_usage(Usage::new(input * searches, output * searches, 0));
        match result {
            Ok(finding) => {
                ctx.report_usage(Usage::new(RESEARCH_TOKENS.0, RESEARCH_TOKENS.1, 0));
                Ok(finding)
            }
            // The loop detector's verdict: the same task would loop again.
            Err(message) if message.contains("loop detected") => {
                Err(AgentError::permanent(message))
            }
            Err(message) => Err(AgentError::failed(message)),
        }
    }
}

/// The verifier's job: the task and its three findings.
#[derive(Debug, Clone)]
struct Review {
    task: u64,
    findings: Vec<Finding>,
}

struct Verifier {
    model: Arc<Model>,
}

impl Agent for Verifier {
    type Task = Review;
    type Output = Finding;

    fn task_type(_: &Review) -> &'static str {
        "verify"
    }

    fn estimate(_: &Review) -> Usage {
        Usage::new(VERIFY_TOKENS.0, VERIFY_TOKENS.1, 0)
    }

    async fn handle(
        &mut self,
        ctx: &mut AgentContext,
        review: Review,
    ) -> Result<Finding, AgentError> {
        let answer = self
            .model
            .verify(review.task, &review.findings)
            .await
            .map_err(AgentError::failed)?;
        ctx.report_usage(Usage::new(VERIFY_TOKENS.0, VERIFY_TOKENS.1, 0));
        Ok(answer)
    }
}

/// The agents of a running system.
struct Team {
    researchers: Vec<AgentRef<Researcher>>,
    backups: Vec<AgentRef<Researcher>>,
    verifiers: Vec<AgentRef<Verifier>>,
}

/// Builds and starts the team; `full` adds everything of variant 4.
async fn team(
    seed: u64,
    model: &Arc<Model>,
    full: bool,
    limit: u64,
) -> Result<(System, Team), Box<dyn std::error::Error>> {
    let mut builder = System::builder()
        .ask_timeout(Duration::from_secs(20))
        .event_capacity(4096);
    if full {
        let loops = LoopConfig::new(LoopThresholds::default()).target(
            "model",
            LoopThresholds::default()
                .repeats(1000)
                .no_progress(1000, None),
        );
        builder = builder
            .retry_seed(seed)
            .retry_budget(RetryBudget::new(Duration::from_secs(10), 10, 0.5)?)
            .breakers(BreakerRegistry::new(
                BreakerConfig::default()
                    .consecutive_failures(Some(5))
                    .open_duration(Backoff::fixed(Duration::from_secs(5)))
                    .half_open_probes(1),
            )?)
            .budget(
                Budget::builder()
                    .process_limits(Limits::new().tokens(limit))
                    .build()?,
            )
            .semantic(SemanticConfig::new().loops(loops, LoopAction::Fail)?);
    }
    let system = builder.build()?;
    let policy = RetryPolicy::builder()
        .max_attempts(12)
        .base_delay(Duration::from_secs(1))
        .max_delay(Duration::from_secs(8))
        .jitter(Jitter::Full)
        .build()?;
    let consistent = || from_predicate("the checksum matches", Finding::consistent);
    let mut pool =
        SupervisorSpec::one_for_one("researchers").intensity(1000, Duration::from_secs(1));
    let count = if full {
        RESEARCHERS + BACKUPS
    } else {
        RESEARCHERS
    };
    for who in 0..count {
        let name = if who < RESEARCHERS {
            format!("researcher-{who}")
        } else {
            format!("backup-{}", who - RESEARCHERS)
        };
        let model = model.clone();
        let mut spec = AgentSpec::new(name, move || Researcher {
            who,
            model: model.clone(),
        });
        if full {
            spec = spec.retry(policy.clone()).validator(consistent());
        }
        pool = pool.child(system.agent(spec)?);
    }
    let mut verifiers =
        SupervisorSpec::one_for_one("verifiers").intensity(1000, Duration::from_secs(1));
    for n in 0..VERIFIERS {
        let model = model.clone();
        let mut spec = AgentSpec::new(format!("verifier-{n}"), move || Verifier {
            model: model.clone(),
        });
        if full {
            spec = spec.retry(policy.clone()).validator(consistent());
        }
        verifiers = verifiers.child(system.agent(spec)?);
    }
    system
        .start(
            SupervisorSpec::one_for_one("team")
                .child(ChildSpec::supervisor(pool))
                .child(ChildSpec::supervisor(verifiers)),
        )
        .await?;
    let team = Team {
        researchers: (0..RESEARCHERS)
            .map(|who| system.agent_ref(&format!("researcher-{who}")))
            .collect::<Result<_, _>>()?,
        backups: if full {
            (0..BACKUPS)
                .map(|n| system.agent_ref(&format!("backup-{n}")))
                .collect::<Result<_, _>>()?
        } else {
            Vec::new()
        },
        verifiers: (0..VERIFIERS)
            .map(|n| system.agent_ref(&format!("verifier-{n}")))
            .collect::<Result<_, _>>()?,
    };
    Ok((system, team))
}

/// Variant 3: supervised agents; any failed ask fails the task.
async fn supervised(
    seed: u64,
    tasks: u64,
    limit: u64,
) -> Result<Report, Box<dyn std::error::Error>> {
    let model = Arc::new(Model::new(seed));
    let (system, team) = team(seed, &model, false, limit).await?;
    let team = Arc::new(team);
    let outcomes = run_tasks(tasks, |task, arrived| {
        let team = team.clone();
        async move {
            let asks = assigned(task).into_iter().enumerate().map(|(role, who)| {
                team.researchers[who].ask(Job {
                    task,
                    role: role as u64,
                })
            });
            let mut findings = Vec::new();
            for result in futures::future::join_all(asks).await {
                match result {
                    Ok(finding) => findings.push(finding),
                    Err(_) => return Outcome::Failed,
                }
            }
            let review = Review {
                task,
                findings: findings.clone(),
            };
            match team.verifiers[verifier_of(task)].ask(review).await {
                Ok(answer) => answered(answer, &findings, arrived),
                Err(_) => Outcome::Failed,
            }
        }
    })
    .await;
    system.shutdown(Duration::from_secs(30)).await?;
    Ok(report(
        "overseer: supervision",
        seed,
        &model,
        &outcomes,
        limit,
    ))
}

/// What variant 4's machinery caught, counted from the system's events.
#[derive(Default)]
struct Caught {
    rejected: u64,
    loops: u64,
    breaker_opens: u64,
    lost: u64,
}

/// How long one round of escalation may take: the retry policy and the ladder run within it.
const ROUND: Duration = Duration::from_secs(15);
/// How many rounds a member or the verifier gets.
const ROUNDS: u32 = 8;

/// Asks `ask` in rounds of [`ROUND`] until one answers, at most [`ROUNDS`] times, a round
/// at most every [`ROUND`].
///
/// The retry policy's attempts share one deadline, so a hung attempt would take all of it
/// (and hold the agent's queue that long); a round bounds what one hang costs.
async fn in_rounds<O, F, Fut>(task: u64, ask: F) -> Option<Answered<O>>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<Answered<O>, AskError>>,
{
    for _ in 0..ROUNDS {
        let started = Instant::now();
        match ask().await {
            Ok(answered) => return Some(answered),
            Err(error) => debug(task, &error),
        }
        // A round refused early (the retry budget spent, a breaker open) is not asked again
        // before its time is up: the provider is given the time to come back.
        tokio::time::sleep_until(started + ROUND).await;
    }
    None
}

/// Variant 4: a cohort per fan-out, each member retried by its policy and checked by its
/// validator; a member still missing climbs the ladder (told why, then a backup researcher);
/// the verifier likewise.
async fn everything(
    seed: u64,
    tasks: u64,
    limit: u64,
) -> Result<Report, Box<dyn std::error::Error>> {
    let model = Arc::new(Model::new(seed));
    let (system, team) = team(seed, &model, true, limit).await?;
    let ladders: Vec<Escalation<Researcher>> = (0..RESEARCHERS)
        .map(|who| {
            Escalation::new().same_agent("told-why").other_agent(
                "backup",
                team.backups[who % BACKUPS].clone(),
                ClassSet::CLIMBABLE,
            )
        })
        .collect();
    let verifier_ladders: Vec<Escalation<Verifier>> = (0..VERIFIERS)
        .map(|n| {
            Escalation::new().same_agent("told-why").other_agent(
                "another-verifier",
                team.verifiers[(n + 1) % VERIFIERS].clone(),
                ClassSet::CLIMBABLE,
            )
        })
        .collect();
    let caught = Arc::new(Mutex::new(Caught::default()));
    let mut events = system.subscribe();
    let counting = caught.clone();
    tokio::spawn(async move {
        loop {
            let event = match events.recv().await {
                Ok(event) => event,
                Err(broadcast::error::RecvError::Lagged(lost)) => {
                    counting.lock().unwrap_or_else(|e| e.into_inner()).lost += lost;
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => break,
            };
            let mut caught = counting.lock().unwrap_or_else(|e| e.into_inner());
            match &event {
                SystemEvent::Semantic(found) => match found.finding {
                    Found::Rejected { .. } => caught.rejected += 1,
                    Found::Loop { .. } => caught.loops += 1,
                    _ => {}
                },
                SystemEvent::Breaker(moved) if moved.to == BreakerState::Open => {
                    caught.breaker_opens += 1;
                }
                _ => {}
            }
        }
    });
    let by_backup = Arc::new(AtomicU64::new(0));
    let shared = Arc::new((team, ladders, verifier_ladders, by_backup.clone()));
    let outcomes = run_tasks(tasks, |task, arrived| {
        let shared = shared.clone();
        async move {
            let (team, ladders, verifier_ladders, by_backup) = &*shared;
            let who = assigned(task);
            let job = |role: usize| Job {
                task,
                role: role as u64,
            };
            let mut cohort = Cohort::all();
            for (role, &r) in who.iter().enumerate() {
                cohort = cohort.member(&team.researchers[r], job(role));
            }
            let mut findings: Vec<Option<Finding>> =
                match cohort.run_within(Duration::from_secs(10)).await {
                    Ok(outcome) => outcome.values().map(|v| v.copied()).collect(),
                    Err(_) => vec![None; 3],
                };
            for (role, finding) in findings.iter_mut().enumerate() {
                if finding.is_none() {
                    let researcher = &team.researchers[who[role]];
                    let ladder = &ladders[who[role]];
                    let answered = in_rounds(task, || {
                        researcher.ask_escalating_within(job(role), ladder, ROUND)
                    })
                    .await;
                    if answered
                        .as_ref()
                        .is_some_and(|a| a.by.as_str().starts_with("backup"))
                    {
                        by_backup.fetch_add(1, Ordering::Relaxed);
                    }
                    *finding = answered.map(|answered| answered.output);
                }
            }
            let Some(findings) = findings.into_iter().collect::<Option<Vec<_>>>() else {
                return Outcome::Failed;
            };
            let v = verifier_of(task);
            let review = Review {
                task,
                findings: findings.clone(),
            };
            let verifier = &team.verifiers[v];
            let ladder = &verifier_ladders[v];
            match in_rounds(task, || {
                verifier.ask_escalating_within(review.clone(), ladder, ROUND)
            })
            .await
            {
                Some(answer) => answered(answer.output, &findings, arrived),
                None => Outcome::Failed,
            }
        }
    })
    .await;
    system.shutdown(Duration::from_secs(30)).await?;
    let caught = caught.lock().unwrap_or_else(|e| e.into_inner());
    println!(
        "overseer: everything caught: {} outputs refused by validators, {} loop verdicts, {} breaker openings, {} findings from a backup{}",
        caught.rejected,
        caught.loops,
        caught.breaker_opens,
        by_backup.load(Ordering::Relaxed),
        if caught.lost > 0 {
            format!(" ({} events not counted)", caught.lost)
        } else {
            String::new()
        }
    );
    Ok(report(
        "overseer: everything",
        seed,
        &model,
        &outcomes,
        limit,
    ))
}

fn debug(task: u64, error: &dyn std::fmt::Display) {
    if std::env::var_os("GOODPUT_DEBUG").is_some() {
        eprintln!("[{:?}] task {task}: {error}", Instant::now());
    }
}

fn args() -> (u64, u64) {
    let args = CLI.args();
    let (mut tasks, mut seed) = (3000, 42);
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        let value = rest
            .next()
            .unwrap_or_else(|| CLI.fail(format!("{flag} takes a value")));
        let number = value
            .parse()
            .unwrap_or_else(|_| CLI.fail(format!("{flag} takes a number, not {value:?}")));
        match flag.as_str() {
            "--tasks" if number > 0 => tasks = number,
            "--seed" => seed = number,
            _ => CLI.fail(format!("unexpected argument {flag} {value}")),
        }
    }
    (tasks, seed)
}

/// A fresh current-thread runtime with a paused clock.
fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (tasks, seed) = args();
    std::panic::set_hook(Box::new(|_| {})); // injected panics are counted, not printed
    let need =
        tasks * (3 * (RESEARCH_TOKENS.0 + RESEARCH_TOKENS.1) + VERIFY_TOKENS.0 + VERIFY_TOKENS.1);
    let limit = (need as f64 * LIMIT_FACTOR) as u64;
    println!("goodput: {tasks} tasks, seed {seed}; token limit {limit} ({LIMIT_FACTOR}x the {need} a fault-free run needs)");
    println!("faults: 5 % panics, 1 % hangs, 2 % corrupted answers, a 30 s outage at 120 s, tasks every {:.2} s, researcher-{LOOPER} loops on 1 task in 5", arrival(tasks).as_secs_f64());
    let reports = [
        runtime()?.block_on(plain(seed, tasks, limit)),
        runtime()?.block_on(naive_retry(seed, tasks, limit)),
        runtime()?.block_on(supervised(seed, tasks, limit))?,
        runtime()?.block_on(everything(seed, tasks, limit))?,
    ];
    println!();
    println!("| variant | correct | wrong | failed | p50 | p99 | model calls | tokens | wasted tokens | budget overshoot |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for r in &reports {
        let pct = |n: usize| 100.0 * n as f64 / tasks as f64;
        println!(
            "| {} | {} ({:.1} %) | {} ({:.1} %) | {} ({:.1} %) | {:.1} s | {:.1} s | {} | {} | {} ({:.1} %) | {} |",
            r.name,
            r.correct,
            pct(r.correct),
            r.wrong,
            pct(r.wrong),
            r.failed,
            pct(r.failed),
            r.p50.as_secs_f64(),
            r.p99.as_secs_f64(),
            r.calls,
            r.tokens,
            r.wasted,
            100.0 * r.wasted as f64 / r.tokens.max(1) as f64,
            r.tokens.saturating_sub(r.limit),
        );
    }
    println!();
    for r in &reports {
        println!(
            "{}: correct {} wrong {} failed {} tokens {}",
            r.name, r.correct, r.wrong, r.failed, r.tokens
        );
    }
    Ok(())
}
