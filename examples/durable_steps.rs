//! What a durable step costs, and a run that resumes after `kill -9`: one run of N sequential
//! steps through an agent, each a (scripted) model call journaled synchronously in a journal
//! file before the next one starts.
//!
//! ```text
//! cargo run --release --example durable_steps -- --steps 500 --journal /tmp/steps.journal
//! cargo run --release --example durable_steps -- --steps 500 --agents 16      # 16 runs at once
//! cargo run --release --example durable_steps -- --steps 2000 --replay        # replaying steps
//! cargo run --release --example durable_steps -- --steps 500 --no-journal     # plain asks
//! ```
//!
//! **The run.** Each of `--agents` agents (`stepper-0`, `stepper-1`...) is asked the run
//! `durable-steps-K` with [`AgentRef::ask_run`]. Its handler takes `--steps` steps, each
//! [`AgentContext::model`]: a model call whose prompt holds the previous answer, so that every
//! answer depends on all the earlier ones, and whose answer is journaled (one fsync, shared by
//! the agents whose steps are committed at the same moment) before the handler goes on. The
//! run's output is the number of answers and the last one. It prints `N steps: X us/step` (the
//! run's ask from start to answer, over its steps) or, with more than one agent, steps per
//! second and microseconds per durable step.
//!
//! **Killed and started again** with the same `--journal`, it finds the runs the journal holds
//! unfinished, asks them again with the same ids, and they resume: the steps whose answers are
//! journaled are replayed (the model is not called, nothing is billed again), the rest run. It
//! prints `resumed: R replayed, E executed` (R + E = N for each run; E counts the model's real
//! calls, [`ScriptedModel::calls`]). A run that had finished answers with its recorded output.
//! `--progress` prints a line as each step's answer is journaled, to pick a moment to kill it
//! (`tests/durable_steps_kill.rs` does so with SIGKILL); `--calls-log FILE` appends a line to
//! FILE for every real model call, a count that outlives the process.
//!
//! **`--replay`** makes each run wait for a signal after its last step: the first ask runs the
//! N steps and stops there, unfinished; each of five more asks of the same run replays the N
//! recorded steps and stops there again; the time the handler spends in them is printed per
//! replayed step. A signal then lets the run finish.
//!
//! **`--no-journal`** takes the same steps as plain asks, in a system without a journal: what
//! the steps cost without durability.
//!
//! **`--fsync-floor`** also times the disk's floor for one durable step, in the same process:
//! as many 256-byte appends to a new file beside the journal as there are steps, each followed
//! by `fdatasync`, before the steps and after them; it prints the ratio of a step to it (not
//! with `--replay`). The figures of one machine are in `docs/benchmarks.md`.
//!
//! Without `--journal` the journal is a new file in the temporary directory, removed at the end.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use overseer::agent::{AgentRef, AskError, ModelError, StepError};
use overseer::journal::{Opened, Payload};
use overseer::prelude::*;

#[allow(dead_code)] // each example uses part of it
#[path = "support/cli.rs"]
mod cli;

const CLI: cli::Cli = cli::Cli {
    name: "durable_steps",
    about: "one run of N durable steps (journaled model calls) per agent: their cost, and a resume after kill -9",
    synopsis: "[--steps N] [--agents K] [--journal FILE] [--no-journal] [--replay] [--progress] [--calls-log FILE] [--fsync-floor] [--redb]",
    options: &[
        ("--steps N", "steps per run, each a journaled model call (default 200)"),
        ("--agents K", "runs at once, one per agent (default 1)"),
        ("--journal FILE", "the journal file; started again on the same file, the runs resume (default: a new file in the temporary directory, removed at the end)"),
        ("--no-journal", "the same steps as plain asks, without a journal"),
        ("--replay", "measure replay: the runs stop unfinished after their steps and are asked again"),
        ("--progress", "print a line as each step's answer is journaled"),
        ("--calls-log FILE", "append a line to FILE for each real model call"),
        ("--fsync-floor", "also time a raw fdatasync'd 256-byte append beside the journal, before and after the steps, and print the ratio"),
        ("--redb", "the journal in a redb database (RedbStorage) instead of the append-only log (LogStorage); built with --features redb"),
    ],
};

/// How many asks replay the recorded steps with `--replay`.
const REPLAY_ROUNDS: usize = 5;
/// The signal a run waits for after its steps with `--replay`.
const FINISH: &str = "finish";

/// What the command line asked for.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) steps: u32,
    pub(crate) agents: usize,
    pub(crate) journal: Option<PathBuf>,
    pub(crate) no_journal: bool,
    pub(crate) replay: bool,
    pub(crate) progress: bool,
    pub(crate) calls_log: Option<PathBuf>,
    pub(crate) fsync_floor: bool,
    /// The journal in a redb database instead of the log file (the `redb` feature).
    #[cfg_attr(not(feature = "redb"), allow(dead_code))]
    pub(crate) redb: bool,
}

impl Options {
    /// Reads the options from `args` (the arguments after the program's name); a bad one
    /// prints the usage and exits with status 2.
    pub(crate) fn parse(args: Vec<String>) -> Self {
        let mut options = Self {
            steps: 200,
            agents: 1,
            journal: None,
            no_journal: false,
            replay: false,
            progress: false,
            calls_log: None,
            fsync_floor: false,
            redb: false,
        };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let mut value = |name: &str| {
                args.next()
                    .unwrap_or_else(|| CLI.fail(format!("{name} needs a value")))
            };
            match arg.as_str() {
                "--steps" => options.steps = number(&value("--steps")),
                "--agents" => options.agents = number(&value("--agents")),
                "--journal" => options.journal = Some(value("--journal").into()),
                "--calls-log" => options.calls_log = Some(value("--calls-log").into()),
                "--no-journal" => options.no_journal = true,
                "--replay" => options.replay = true,
                "--progress" => options.progress = true,
                "--fsync-floor" => options.fsync_floor = true,
                "--redb" if cfg!(feature = "redb") => options.redb = true,
                "--redb" => CLI.fail("--redb needs the redb feature (--features redb)"),
                other => CLI.fail(format!("unexpected argument {other}")),
            }
        }
        if options.steps == 0 || options.agents == 0 {
            CLI.fail("--steps and --agents must be at least 1");
        }
        if options.no_journal
            && (options.journal.is_some() || options.replay || options.fsync_floor)
        {
            CLI.fail("--no-journal goes with none of --journal, --replay, --fsync-floor");
        }
        if options.replay && options.fsync_floor {
            CLI.fail("--fsync-floor goes with the steps' run, not with --replay");
        }
        options
    }
}

fn number<T: std::str::FromStr>(text: &str) -> T {
    text.parse()
        .unwrap_or_else(|_| CLI.fail(format!("{text:?} is not a number")))
}

fn main() -> ExitCode {
    let options = Options::parse(CLI.args());
    match run_blocking(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(problem) => {
            eprintln!("durable_steps: {problem}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the example on a multi-threaded tokio runtime of its own.
pub(crate) fn run_blocking(options: &Options) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("cannot start the runtime: {error}"))?;
    runtime.block_on(run(options))
}

/// Takes a run's steps: each a model call whose prompt holds the previous answer.
struct Stepper {
    model: ScriptedModel,
    /// With `--replay`: wait for the signal [`FINISH`] after the last step.
    hold: bool,
    progress: bool,
    /// How long the last task's steps took.
    timing: Arc<Mutex<Timing>>,
}

/// How long a task's steps took: all of them, and each.
#[derive(Debug, Default)]
struct Timing {
    steps: Duration,
    each: Vec<Duration>,
}

impl Agent for Stepper {
    type Task = u32;
    type Output = String;

    async fn handle(&mut self, ctx: &mut AgentContext, steps: u32) -> Result<String, AgentError> {
        let durable = ctx.run_id().is_some();
        let run = ctx
            .run_id()
            .map_or_else(|| "a plain ask".to_string(), ToString::to_string);
        let mut last = String::from("the start");
        let mut each = Vec::with_capacity(steps as usize);
        let started = Instant::now();
        for step in 0..steps {
            let step_started = Instant::now();
            let calls = self.model.calls();
            let prompt = format!("step {step} of {run} after {last}");
            let answer = ctx
                .model(&self.model, ModelRequest::new(prompt).max_tokens(8))
                .await?;
            if self.progress && durable && self.model.calls() > calls {
                println!("journaled step {step} of {run}");
            }
            last = answer.text;
            each.push(step_started.elapsed());
        }
        let took = started.elapsed();
        *lock(&self.timing) = Timing { steps: took, each };
        if self.hold {
            let _: bool = ctx.wait_for(FINISH)?;
        }
        Ok(format!("{steps} answers, the last: {last}"))
    }
}

/// A model that answers each prompt with a hash of it (deterministic, so a resumed run ends
/// as a run without a crash does), and logs each real call to `log`.
fn model(log: Option<Arc<Mutex<File>>>) -> ScriptedModel {
    ScriptedModel::new().when("step ", move |prompt| {
        if let Some(log) = &log {
            // One write per call (with O_APPEND), so a process killed mid-call leaves whole lines.
            let called = prompt.split(" after ").next().unwrap_or(prompt);
            let line = format!("{called}\n");
            let mut file = lock(log);
            file.write_all(line.as_bytes())
                .map_err(|error| ModelError::Provider(format!("cannot log the call: {error}")))?;
        }
        Ok(format!("answer-{:016x}", fnv1a(prompt)))
    })
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn run_id(agent: usize) -> Result<RunId, String> {
    RunId::new(format!("durable-steps-{agent}")).map_err(|error| error.to_string())
}

/// The agents, the system they run in, and what they share with the driver.
struct Team {
    system: System,
    steppers: Vec<AgentRef<Stepper>>,
    models: Vec<ScriptedModel>,
    timings: Vec<Arc<Mutex<Timing>>>,
}

impl Team {
    async fn start(options: &Options, journal: Option<Journal>) -> Result<Self, String> {
        let log = match &options.calls_log {
            None => None,
            Some(path) => {
                let file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|error| format!("cannot open {}: {error}", path.display()))?;
                Some(Arc::new(Mutex::new(file)))
            }
        };
        let mut builder = System::builder().ask_timeout(Duration::from_secs(3600));
        if let Some(journal) = journal {
            builder = builder.journal(journal);
        }
        let system = builder.build().map_err(|error| error.to_string())?;
        let mut tree = SupervisorSpec::one_for_one("steps");
        let mut models = Vec::new();
        let mut timings = Vec::new();
        for agent in 0..options.agents {
            let model = model(log.clone());
            let timing = Arc::new(Mutex::new(Timing::default()));
            models.push(model.clone());
            timings.push(Arc::clone(&timing));
            let (hold, progress) = (options.replay, options.progress);
            let spec = AgentSpec::new(format!("stepper-{agent}"), move || Stepper {
                model: model.clone(),
                hold,
                progress,
                timing: Arc::clone(&timing),
            });
            tree = tree.child(system.agent(spec).map_err(|error| error.to_string())?);
        }
        system
            .start(tree)
            .await
            .map_err(|error| error.to_string())?;
        let steppers = (0..options.agents)
            .map(|agent| system.agent_ref::<Stepper>(&format!("stepper-{agent}")))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| error.to_string())?;
        Ok(Self {
            system,
            steppers,
            models,
            timings,
        })
    }

    fn model_calls(&self) -> usize {
        self.models.iter().map(ScriptedModel::calls).sum()
    }

    /// Asks every agent its run at once (a plain ask without a journal); returns the outcomes
    /// in the agents' order and how long it took until the last one answered.
    async fn ask_all(
        &self,
        steps: u32,
        durable: bool,
    ) -> Result<(Vec<Result<String, AskError>>, Duration), String> {
        let runs = (0..self.steppers.len())
            .map(run_id)
            .collect::<Result<Vec<_>, _>>()?;
        let started = Instant::now();
        let handles: Vec<_> = self
            .steppers
            .iter()
            .zip(runs)
            .map(|(stepper, run)| {
                let stepper = stepper.clone();
                tokio::spawn(async move {
                    if durable {
                        stepper.ask_run(run, steps).await
                    } else {
                        stepper.ask(steps).await
                    }
                })
            })
            .collect();
        let mut outcomes = Vec::with_capacity(handles.len());
        for handle in handles {
            outcomes.push(
                handle
                    .await
                    .map_err(|error| format!("an ask's task failed: {error}"))?,
            );
        }
        Ok((outcomes, started.elapsed()))
    }

    async fn stop(self) -> Result<(), String> {
        self.system
            .shutdown(Duration::from_secs(10))
            .await
            .map_err(|error| error.to_string())
    }
}

async fn run(options: &Options) -> Result<(), String> {
    if options.no_journal {
        return plain(options).await;
    }
    let (path, temporary) = match &options.journal {
        Some(path) => (path.clone(), false),
        None => (
            std::env::temp_dir().join(format!("durable_steps-{}.journal", std::process::id())),
            true,
        ),
    };
    let (journal, opened) = open_journal(&path, options)
        .map_err(|error| format!("cannot open the journal {}: {error}", path.display()))?;
    report_opened(&path, &opened);
    let outcome = if options.replay {
        replay(options, &journal).await
    } else {
        steps(options, &journal, &path).await
    };
    journal
        .close()
        .await
        .map_err(|error| format!("closing the journal: {error}"))?;
    if temporary {
        let _ = std::fs::remove_file(&path);
    }
    outcome
}

/// Opens the journal at `path`: the append-only log file, or a redb database with `--redb`.
fn open_journal(
    path: &Path,
    options: &Options,
) -> Result<(Journal, Opened), overseer::journal::JournalError> {
    #[cfg(feature = "redb")]
    if options.redb {
        let storage = overseer::journal::RedbStorage::open(path)?;
        return Journal::open(storage, JournalConfig::default());
    }
    let _ = options;
    Journal::open(LogStorage::open(path)?, JournalConfig::default())
}

fn report_opened(path: &Path, opened: &Opened) {
    println!(
        "journal {}: {} records, {} runs, {} unfinished{}",
        path.display(),
        opened.records,
        opened.runs,
        opened.unfinished.len(),
        if opened.dropped_torn_record {
            " (a torn last record dropped)"
        } else {
            ""
        }
    );
}

/// Where a run stood in the journal before it was asked.
enum Before {
    New,
    Unfinished { journaled: usize },
    Finished,
    OtherInput,
}

fn before(journal: &Journal, run: &RunId, steps: u32) -> Result<Before, String> {
    let input = Payload::encode(&steps).map_err(|error| error.to_string())?;
    Ok(journal.with_run(run, |record| match record {
        None => Before::New,
        Some(record) if record.fingerprint != input.fingerprint() => Before::OtherInput,
        Some(record) if record.is_finished() => Before::Finished,
        Some(record) => Before::Unfinished {
            journaled: record
                .steps()
                .filter(|(_, step)| step.completed.is_some())
                .count(),
        },
    }))
}

/// The durable runs: started, or resumed from the journal.
async fn steps(options: &Options, journal: &Journal, path: &Path) -> Result<(), String> {
    let (mut unfinished, mut finished) = (0_u64, 0_u64);
    for agent in 0..options.agents {
        let run = run_id(agent)?;
        match before(journal, &run, options.steps)? {
            Before::New => {}
            Before::Unfinished { journaled } => {
                unfinished += 1;
                println!("resuming {run}: {journaled} steps journaled");
            }
            Before::Finished => {
                finished += 1;
                println!("{run} had finished: its recorded output, nothing run");
            }
            Before::OtherInput => {
                return Err(format!(
                    "the journal holds {run} with another number of steps: give the same --steps, or another journal file"
                ))
            }
        }
    }
    let floor_before = if options.fsync_floor {
        Some(tokio::task::block_in_place(|| {
            fsync_floor(path, options.steps)
        })?)
    } else {
        None
    };
    let team = Team::start(options, Some(journal.clone())).await?;
    let (outcomes, took) = team.ask_all(options.steps, true).await?;
    let executed = team.model_calls();
    let outputs = outputs(outcomes)?;
    let total = u64::from(options.steps) * options.agents as u64;
    if unfinished > 0 {
        // The steps of the runs that had not finished: replayed, or run here.
        let taken = total - u64::from(options.steps) * finished;
        let replayed = taken.saturating_sub(executed as u64);
        println!("resumed: {replayed} replayed, {executed} executed");
    } else if finished == 0 {
        let step = print_rate(options, took, &team, "");
        if executed as u64 != total {
            return Err(format!("{executed} model calls for {total} steps"));
        }
        if let Some(mut floor) = floor_before {
            let after = tokio::task::block_in_place(|| fsync_floor(path, options.steps))?;
            println!(
                "fdatasync floor (256 B append beside the journal, {} times before the steps and after): p50 {:.1} / {:.1} us, mean {:.1} / {:.1} us",
                after.len(),
                quantile(&mut floor, 0.5),
                quantile(&mut after.clone(), 0.5),
                mean(&floor),
                mean(&after),
            );
            floor.extend(after);
            let (floor_p50, floor_mean) = (quantile(&mut floor, 0.5), mean(&floor));
            match step.p50 {
                Some(step_p50) => println!(
                    "a durable step / a raw fdatasync append: {:.2}x by the mean, {:.2}x by the median",
                    step.mean / floor_mean,
                    step_p50 / floor_p50
                ),
                None => println!(
                    "a durable step / a raw fdatasync append: {:.3}x by the mean",
                    step.mean / floor_mean
                ),
            }
        }
    }
    for (agent, output) in outputs.iter().enumerate() {
        println!("output {}: {output}", run_id(agent)?);
    }
    team.stop().await
}

/// The runs' outputs, or the first failure.
fn outputs(outcomes: Vec<Result<String, AskError>>) -> Result<Vec<String>, String> {
    outcomes
        .into_iter()
        .enumerate()
        .map(|(agent, outcome)| outcome.map_err(|error| format!("stepper-{agent}: {error}")))
        .collect()
}

/// What a step cost, in microseconds.
struct StepCost {
    /// The asks' time from the first asked to the last answered, over the steps.
    mean: f64,
    /// With one agent, the median of one step inside the handler.
    p50: Option<f64>,
}

/// Prints what a step cost: the asks' time from the first asked to the last answered, over
/// the steps; with one agent also the median and 99th percentile of one step inside the handler.
fn print_rate(options: &Options, took: Duration, team: &Team, what: &str) -> StepCost {
    let steps = f64::from(options.steps) * options.agents as f64;
    let mean = took.as_secs_f64() * 1e6 / steps;
    if options.agents == 1 {
        let mut each = std::mem::take(&mut lock(&team.timings[0]).each);
        let (p50, p99) = (quantile(&mut each, 0.5), quantile(&mut each, 0.99));
        println!(
            "{} steps: {mean:.1} us/step{what}; one step: p50 {p50:.1} us, p99 {p99:.1} us",
            options.steps,
        );
        StepCost {
            mean,
            p50: Some(p50),
        }
    } else {
        println!(
            "{} agents x {} steps: {:.0} steps/s, {mean:.1} us per step{what}",
            options.agents,
            options.steps,
            steps / took.as_secs_f64()
        );
        StepCost { mean, p50: None }
    }
}

/// The `quantile` (0 to 1) of `times`, in microseconds (0 for none).
fn quantile(times: &mut [Duration], quantile: f64) -> f64 {
    times.sort_unstable();
    let Some(last) = times.len().checked_sub(1) else {
        return 0.0;
    };
    let place = ((times.len() as f64 * quantile) as usize).min(last);
    times[place].as_secs_f64() * 1e6
}

fn mean(times: &[Duration]) -> f64 {
    let total: Duration = times.iter().sum();
    total.as_secs_f64() * 1e6 / times.len().max(1) as f64
}

/// Times `times` appends of 256 bytes to a new file beside `journal`, each followed by an
/// fdatasync: the disk's floor for one durable step (what `fsync_floor.py` of the peers does).
fn fsync_floor(journal: &Path, times: u32) -> Result<Vec<Duration>, String> {
    let mut path = journal.as_os_str().to_owned();
    path.push(".floor");
    let path = PathBuf::from(path);
    let problem =
        |error: std::io::Error| format!("the fdatasync floor on {}: {error}", path.display());
    let mut file = File::create(&path).map_err(problem)?;
    let record = [b'x'; 256];
    let mut each = Vec::with_capacity(times as usize);
    for _ in 0..times {
        let started = Instant::now();
        file.write_all(&record).map_err(problem)?;
        file.sync_data().map_err(problem)?;
        each.push(started.elapsed());
    }
    drop(file);
    std::fs::remove_file(&path).map_err(problem)?;
    Ok(each)
}

/// The same steps as plain asks, without a journal.
async fn plain(options: &Options) -> Result<(), String> {
    let team = Team::start(options, None).await?;
    let (outcomes, took) = team.ask_all(options.steps, false).await?;
    let outputs = outputs(outcomes)?;
    print_rate(options, took, &team, " (no journal)");
    if let Some(output) = outputs.first() {
        println!("output of a plain ask: {output}");
    }
    team.stop().await
}

/// Runs whose steps are all journaled, asked again and again: what a replayed step costs.
async fn replay(options: &Options, journal: &Journal) -> Result<(), String> {
    let team = Team::start(options, Some(journal.clone())).await?;
    let suspended = |outcomes: Vec<Result<String, AskError>>| {
        for (agent, outcome) in outcomes.into_iter().enumerate() {
            match outcome {
                Err(error) if matches!(error.step_error(), Some(StepError::Suspended { .. })) => {}
                other => {
                    return Err(format!(
                        "stepper-{agent} was to wait for its signal, and answered {other:?}"
                    ))
                }
            }
        }
        Ok(())
    };
    let (outcomes, took) = team.ask_all(options.steps, true).await?;
    suspended(outcomes)?;
    let executed = team.model_calls();
    print_rate(
        options,
        took,
        &team,
        " (the first ask, its steps run and journaled)",
    );
    let mut rounds = Vec::with_capacity(REPLAY_ROUNDS);
    for _ in 0..REPLAY_ROUNDS {
        let (outcomes, took) = team.ask_all(options.steps, true).await?;
        suspended(outcomes)?;
        let in_steps: Duration = team.timings.iter().map(|timing| lock(timing).steps).sum();
        rounds.push((in_steps, took));
    }
    if team.model_calls() != executed {
        return Err(format!(
            "the replays called the model {} times",
            team.model_calls() - executed
        ));
    }
    rounds.sort_unstable();
    let (in_steps, whole) = rounds[rounds.len() / 2];
    let steps = f64::from(options.steps) * options.agents as f64;
    println!(
        "replay: {} steps: {:.2} us per replayed step (median of {REPLAY_ROUNDS} asks; the whole ask, with its claim of the run, {:.2} us/step); 0 model calls",
        options.steps,
        in_steps.as_secs_f64() * 1e6 / steps,
        whole.as_secs_f64() * 1e6 / steps,
    );
    // Let the runs finish.
    for (agent, stepper) in team.steppers.iter().enumerate() {
        let output = stepper
            .signal(run_id(agent)?, FINISH, &true)
            .await
            .map_err(|error| format!("stepper-{agent}: {error}"))?;
        println!("output {}: {output}", run_id(agent)?);
    }
    team.stop().await
}
