//! A chaos soak: a million asks into a hundred agents that panic, hang, fail and lie, on the
//! real clock, checking that every ask ends and that memory does not grow.
//!
//! ```text
//! cargo run --release --example chaos_soak -- --asks 1000000 --agents 100 --seed 1
//! cargo run --example chaos_soak -- --asks 20000        # the short run `tests/chaos_soak.rs` makes
//! ```
//!
//! Flags (defaults in brackets): `--asks` [1000000], `--agents` [100], `--group-size` [20],
//! `--fragile-groups` [1], `--in-flight` [256], `--timeout-ms` [100], `--seed` [1].
//!
//! **The tree.** A permanent one_for_one root (`soak`, at most 1,000 restarts per second) over
//! one_for_one groups of `--group-size` agents. The robust groups allow 10,000 restarts per
//! second, so they absorb every crash. The last `--fragile-groups` groups allow only
//! 20 restarts per second: they escalate again and again, and the root restarts them, so asks
//! also meet whole groups going down and coming back.
//!
//! **The faults.** Every agent is wrapped in [`Chaos`] with its own injector (seeded from
//! `--seed` and the agent's index): on each call, 5 % panics, 1 % hangs, 2 % errors and 1 %
//! corrupted outputs. An agent answers a task `n` with a checksum of `n`, so the driver
//! recognises a corrupted output.
//!
//! **The load.** `--in-flight` driver tasks share the asks, so that many are in flight at any
//! time; ask number `n` goes to an agent picked from `n` and the seed, with a deadline of
//! `--timeout-ms`. A hang resolves as `timeout` at the deadline, and asks queued behind a hung
//! or crashing agent may time out too. An ask with no outcome 5 s after its deadline is
//! abandoned and counted as unresolved.
//!
//! **The report** gives the asks sent and resolved, outcomes by kind, the faults injected,
//! restarts (lifecycle `Started` events beyond the first per path, cross-checked against the
//! injectors' start counts), escalations, the wall time, and the resident memory (`VmRSS` of
//! `/proc/self/status`) at start, after warm-up (the first 10 % of asks) and at the end.
//!
//! It exits with status 1 unless all of these hold:
//! * every ask sent was resolved, with an output or a typed error;
//! * the root supervisor is still running when the load ends;
//! * end RSS ≤ warm-up RSS × 1.5 + 16 MiB (the memory check; allocator noise stays far below);
//! * after shutdown no actor of the tree is left alive.

use std::collections::{BTreeMap, HashMap};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use overseer::agent::AskError;
use overseer::prelude::*;
use overseer::supervisor::{ChildPath, ChildSpec};
use overseer_chaos::{Chaos, Fault, FaultInjector, FaultKind, FaultPlan};
use tokio::sync::broadcast::error::RecvError;

#[allow(dead_code)] // each example uses part of it
#[path = "support/cli.rs"]
mod cli;

const CLI: cli::Cli = cli::Cli {
    name: "chaos_soak",
    about: "asks into agents that panic, hang, fail and lie, checking every ask ends and memory stays flat",
    synopsis: "[--asks N] [--agents N] [--group-size N] [--fragile-groups N] [--in-flight N] [--timeout-ms N] [--seed N]",
    options: &[
        ("--asks N", "asks to send (default 1000000)"),
        ("--agents N", "agents, in supervised groups (default 100)"),
        ("--group-size N", "agents per group (default 20)"),
        ("--fragile-groups N", "groups that escalate to the root again and again (default 1)"),
        ("--in-flight N", "asks in flight at any time (default 256)"),
        ("--timeout-ms N", "each ask's deadline, in milliseconds (default 100)"),
        ("--seed N", "the seed of the faults and of the load (default 1)"),
    ],
};

/// The faults injected into every call, with their probabilities.
const FAULTS: [(Fault, f64); 4] = [
    (Fault::Panic, 0.05),
    (Fault::Hang, 0.01),
    (Fault::Error, 0.02),
    (Fault::Corrupt, 0.01),
];
/// Restarts per second a robust group absorbs: more than it will ever see.
const ROBUST_INTENSITY: u32 = 10_000;
/// Restarts per second a fragile group tolerates before it escalates to the root.
const FRAGILE_INTENSITY: u32 = 20;
/// Restarts per second of the root (fragile groups escalating count here).
const ROOT_INTENSITY: u32 = 1_000;
/// How long after its deadline an ask may still be resolving before it counts as stuck.
const STUCK_AFTER: Duration = Duration::from_secs(5);
/// The memory check: end RSS ≤ warm-up RSS × `GROWTH_FACTOR` + `GROWTH_SLACK_KIB`.
const GROWTH_FACTOR: f64 = 1.5;
const GROWTH_SLACK_KIB: u64 = 16 * 1024;
/// Salts the checksum agents answer with, so an output is never equal to its task.
const OUTPUT_SALT: u64 = 0x5eed_c0de_0ff5_e7a1;

/// The soak's knobs, read from the command line.
#[derive(Debug, Clone)]
struct Settings {
    asks: u64,
    agents: usize,
    group_size: usize,
    fragile_groups: usize,
    in_flight: usize,
    timeout: Duration,
    seed: u64,
}

impl Settings {
    fn from_args() -> Result<Self, String> {
        let mut settings = Self {
            asks: 1_000_000,
            agents: 100,
            group_size: 20,
            fragile_groups: 1,
            in_flight: 256,
            timeout: Duration::from_millis(100),
            seed: 1,
        };
        let mut args = CLI.args().into_iter();
        while let Some(flag) = args.next() {
            let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
            let number: u64 = value
                .parse()
                .map_err(|_| format!("{flag}: '{value}' is not a whole number"))?;
            let count = usize::try_from(number).map_err(|_| format!("{flag}: too large"))?;
            match flag.as_str() {
                "--asks" => settings.asks = number,
                "--agents" => settings.agents = count,
                "--group-size" => settings.group_size = count,
                "--fragile-groups" => settings.fragile_groups = count,
                "--in-flight" => settings.in_flight = count,
                "--timeout-ms" => settings.timeout = Duration::from_millis(number),
                "--seed" => settings.seed = number,
                other => return Err(format!("unknown flag {other}")),
            }
        }
        if settings.asks == 0
            || settings.agents == 0
            || settings.group_size == 0
            || settings.in_flight == 0
            || settings.timeout.is_zero()
        {
            return Err(
                "--asks, --agents, --group-size, --in-flight and --timeout-ms must be at least 1"
                    .into(),
            );
        }
        Ok(settings)
    }

    fn groups(&self) -> usize {
        self.agents.div_ceil(self.group_size)
    }

    fn warm_up_asks(&self) -> u64 {
        (self.asks / 10).max(1)
    }
}

/// A stand-in for an LLM agent: answers task `n` with a checksum of `n`.
struct Checksummer;

impl Agent for Checksummer {
    type Task = u64;
    type Output = u64;

    fn task_type(_: &u64) -> &'static str {
        "checksum"
    }

    async fn handle(&mut self, _: &mut AgentContext, task: u64) -> Result<u64, AgentError> {
        Ok(checksum(task))
    }
}

/// The right answer to task `n`.
fn checksum(n: u64) -> u64 {
    mix(n ^ OUTPUT_SALT)
}

/// SplitMix64's finaliser: a cheap, well-spread hash.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn agent_name(index: usize) -> String {
    format!("agent-{index:03}")
}

/// The soak's tree, declared: the root's spec, and each agent's injector (for its counts).
struct SoakTree {
    root: SupervisorSpec,
    injectors: Vec<FaultInjector<Checksummer>>,
}

/// Declares the agents under their groups.
fn build_tree(
    system: &System,
    settings: &Settings,
) -> Result<SoakTree, Box<dyn std::error::Error>> {
    let mut plan = FaultPlan::builder();
    for (fault, probability) in FAULTS {
        plan = plan.probability(fault, probability);
    }
    let plan = plan.build()?;
    let second = Duration::from_secs(1);
    let mut root = SupervisorSpec::one_for_one("soak").intensity(ROOT_INTENSITY, second);
    let mut injectors = Vec::with_capacity(settings.agents);
    let fragile_from = settings.groups().saturating_sub(settings.fragile_groups);
    for group_index in 0..settings.groups() {
        let intensity = if group_index >= fragile_from {
            FRAGILE_INTENSITY
        } else {
            ROBUST_INTENSITY
        };
        let mut group = SupervisorSpec::one_for_one(format!("group-{group_index}"))
            .intensity(intensity, second);
        let first = group_index * settings.group_size;
        let last = (first + settings.group_size).min(settings.agents);
        for index in first..last {
            let seed = mix(settings.seed ^ mix(index as u64));
            // A corrupted checksum is still a number, never the right one.
            let injector = FaultInjector::with_corruptor(plan.clone(), seed, |output: u64, rng| {
                output ^ (rng.next_u64() | 1)
            });
            let spec = AgentSpec::new(agent_name(index), injector.wrap(|| Checksummer));
            group = group.child(system.agent(spec)?);
            injectors.push(injector);
        }
        root = root.child(ChildSpec::supervisor(group));
    }
    Ok(SoakTree { root, injectors })
}

/// Resident memory of this process, in KiB: `VmRSS` (now) or `VmHWM` (the peak).
fn memory_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

fn rss_kib() -> Option<u64> {
    memory_kib("VmRSS")
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// What one driver saw.
#[derive(Debug, Default)]
struct Tally {
    outcomes: BTreeMap<&'static str, u64>,
    slowest: Duration,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        for (kind, count) in other.outcomes {
            *self.outcomes.entry(kind).or_default() += count;
        }
        self.slowest = self.slowest.max(other.slowest);
    }
}

/// The driver's view of an ask's outcome: a right output, a corrupted one, or the error's kind.
fn outcome_kind(task: u64, outcome: &Result<u64, AskError>) -> &'static str {
    match outcome {
        Ok(output) if *output == checksum(task) => "ok",
        Ok(_) => "corrupted",
        Err(error) => error.kind(),
    }
}

/// Counters the drivers share.
#[derive(Debug, Default)]
struct Progress {
    next_ask: AtomicU64,
    sent: AtomicU64,
    resolved: AtomicU64,
    warm_rss_kib: OnceLock<Option<u64>>,
}

/// Asks until the asks run out, one at a time.
async fn drive(
    refs: Arc<Vec<AgentRef<Chaos<Checksummer>>>>,
    progress: Arc<Progress>,
    settings: Arc<Settings>,
) -> Tally {
    let mut tally = Tally::default();
    let report_every = (settings.asks / 10).max(1);
    loop {
        let n = progress.next_ask.fetch_add(1, Ordering::Relaxed);
        if n >= settings.asks {
            return tally;
        }
        let agent = &refs[(mix(settings.seed.rotate_left(32) ^ n) % refs.len() as u64) as usize];
        progress.sent.fetch_add(1, Ordering::Relaxed);
        let asked_at = std::time::Instant::now();
        let ask = agent.ask_within(n, settings.timeout);
        let Ok(outcome) = tokio::time::timeout(settings.timeout + STUCK_AFTER, ask).await else {
            // Stuck: no outcome long after the deadline. Counted as sent, never as resolved.
            *tally.outcomes.entry("stuck").or_default() += 1;
            continue;
        };
        tally.slowest = tally.slowest.max(asked_at.elapsed());
        *tally.outcomes.entry(outcome_kind(n, &outcome)).or_default() += 1;
        let resolved = progress.resolved.fetch_add(1, Ordering::Relaxed) + 1;
        if resolved == settings.warm_up_asks() {
            let _ = progress.warm_rss_kib.set(rss_kib());
        }
        if resolved.is_multiple_of(report_every) {
            println!(
                "  {resolved:>9} resolved, rss {}",
                rss_kib().map_or("?".into(), mib)
            );
        }
    }
}

/// What the lifecycle events said.
#[derive(Debug, Default)]
struct Lifecycle {
    starts_by_path: HashMap<ChildPath, u64>,
    abnormal_exits: u64,
    escalations: BTreeMap<String, u64>,
    missed: u64,
}

impl Lifecycle {
    /// `Started` events beyond the first of each path, for paths at `depth`.
    fn restarts_at(&self, depth: usize) -> u64 {
        self.starts_by_path
            .iter()
            .filter(|(path, _)| path.depth() == depth)
            .map(|(_, starts)| starts - 1)
            .sum()
    }
}

/// Counts lifecycle events until the system's event stream ends (at shutdown).
async fn watch_lifecycle(mut events: tokio::sync::broadcast::Receiver<SystemEvent>) -> Lifecycle {
    let mut seen = Lifecycle::default();
    loop {
        match events.recv().await {
            Ok(SystemEvent::Lifecycle(event)) => match event.kind {
                EventKind::Started => {
                    *seen.starts_by_path.entry(event.path.clone()).or_default() += 1
                }
                EventKind::Stopped { reason } if !reason.is_normal() => seen.abnormal_exits += 1,
                EventKind::Escalated { .. } => {
                    *seen
                        .escalations
                        .entry(event.path.as_str().to_string())
                        .or_default() += 1
                }
                _ => {}
            },
            Ok(_) => {}
            Err(RecvError::Lagged(missed)) => seen.missed += missed,
            Err(RecvError::Closed) => return seen,
        }
    }
}

/// Silences the panic messages of injected panics (tens of thousands of them); other panics
/// are reported as usual.
fn quiet_injected_panics() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if !message.starts_with("injected panic") {
            report(info);
        }
    }));
}

async fn soak(settings: Settings) -> Result<bool, Box<dyn std::error::Error>> {
    let start_rss = rss_kib();
    let settings = Arc::new(settings);
    println!(
        "chaos soak: {} asks over {} agents in {} groups ({} fragile), {} in flight, \
         {:?} deadline, seed {}",
        settings.asks,
        settings.agents,
        settings.groups(),
        settings.fragile_groups.min(settings.groups()),
        settings.in_flight,
        settings.timeout,
        settings.seed
    );
    let faults: Vec<String> = FAULTS
        .iter()
        .map(|(fault, probability)| format!("{} {}%", fault.kind(), probability * 100.0))
        .collect();
    println!("faults per call: {}", faults.join(", "));

    let system = System::builder()
        .ask_timeout(settings.timeout)
        .event_capacity(1 << 16)
        .build()?;
    let lifecycle = tokio::spawn(watch_lifecycle(system.subscribe()));
    let SoakTree { root, injectors } = build_tree(&system, &settings)?;
    system.start(root).await?;
    let refs: Vec<_> = (0..settings.agents)
        .map(|index| system.agent_ref::<Chaos<Checksummer>>(&agent_name(index)))
        .collect::<Result<_, _>>()?;
    let refs = Arc::new(refs);

    let progress = Arc::new(Progress::default());
    let started = std::time::Instant::now();
    let drivers: Vec<_> = (0..settings.in_flight)
        .map(|_| {
            tokio::spawn(drive(
                Arc::clone(&refs),
                Arc::clone(&progress),
                Arc::clone(&settings),
            ))
        })
        .collect();
    let mut tally = Tally::default();
    for driver in drivers {
        tally.merge(driver.await?);
    }
    let wall = started.elapsed();
    let end_rss = rss_kib();
    let peak_rss = memory_kib("VmHWM");
    let tree = system.tree().ok_or("the system has no tree")?;
    let root_running = tree.is_running();

    system.shutdown(Duration::from_secs(10)).await?;
    let lifecycle = lifecycle.await?;
    let actors_gone = {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while tree.live_actors() > 0 && std::time::Instant::now() < deadline {
            tokio::task::yield_now().await;
        }
        tree.live_actors() == 0
    };

    let sent = progress.sent.load(Ordering::Relaxed);
    let resolved = progress.resolved.load(Ordering::Relaxed);
    let outcomes: Vec<String> = tally
        .outcomes
        .iter()
        .map(|(kind, count)| format!("{kind} {count}"))
        .collect();
    let mut injected: BTreeMap<FaultKind, u64> = BTreeMap::new();
    let mut start_attempts = 0;
    for injector in &injectors {
        let stats = injector.stats();
        start_attempts += stats.start_attempts;
        for kind in FaultKind::ALL {
            *injected.entry(kind).or_default() += stats.count(kind);
        }
    }
    let injected: Vec<String> = injected
        .iter()
        .filter(|(_, count)| **count > 0)
        .map(|(kind, count)| format!("{kind} {count}"))
        .collect();
    let agent_restarts = lifecycle.restarts_at(2);
    let group_restarts = lifecycle.restarts_at(1);
    let injector_restarts = start_attempts.saturating_sub(settings.agents as u64);
    let escalations: u64 = lifecycle.escalations.values().sum();

    println!("asks sent: {sent}");
    println!("asks resolved: {resolved}");
    println!("outcomes: {}", outcomes.join(", "));
    println!("injected: {}", injected.join(", "));
    println!(
        "restarts: {agent_restarts} (agents started again; the injectors counted \
         {injector_restarts})"
    );
    println!("abnormal exits: {}", lifecycle.abnormal_exits);
    println!(
        "escalations: {escalations}, groups restarted by the root: {group_restarts}{}",
        lifecycle
            .escalations
            .iter()
            .map(|(path, count)| format!(", {path} {count}"))
            .collect::<String>()
    );
    if lifecycle.missed > 0 {
        println!(
            "lifecycle events missed (subscriber lagged): {}",
            lifecycle.missed
        );
    }
    println!(
        "wall time: {:.1} s ({:.0} asks/s), slowest ask {:?}",
        wall.as_secs_f64(),
        resolved as f64 / wall.as_secs_f64(),
        tally.slowest
    );

    let mut failures = Vec::new();
    if sent != resolved {
        failures.push(format!(
            "{} of {sent} asks were never resolved",
            sent - resolved
        ));
    }
    if !root_running {
        failures.push("the root supervisor stopped under load".to_string());
    }
    if !actors_gone {
        failures.push(format!(
            "{} actors still alive after shutdown",
            tree.live_actors()
        ));
    }
    let show = |kib: Option<u64>| kib.map_or("unavailable".to_string(), mib);
    match (progress.warm_rss_kib.get().copied().flatten(), end_rss) {
        (Some(warm), Some(end)) => {
            let limit = (warm as f64 * GROWTH_FACTOR) as u64 + GROWTH_SLACK_KIB;
            let verdict = if end <= limit { "passed" } else { "FAILED" };
            println!(
                "rss: start {}, after warm-up ({} asks) {}, end {}, peak {}; \
                 limit {} (warm-up x {GROWTH_FACTOR} + {}): memory check {verdict}",
                show(start_rss),
                settings.warm_up_asks(),
                mib(warm),
                mib(end),
                show(peak_rss),
                mib(limit),
                mib(GROWTH_SLACK_KIB)
            );
            if end > limit {
                failures.push(format!("memory grew from {} to {}", mib(warm), mib(end)));
            }
        }
        _ => println!("rss: unavailable (no /proc/self/status): memory check skipped"),
    }
    println!(
        "live actors after shutdown: {}",
        system.tree().map_or(0, SupervisionTree::live_actors)
    );
    if failures.is_empty() {
        println!("result: PASS");
    } else {
        println!("result: FAIL: {}", failures.join("; "));
    }
    Ok(failures.is_empty())
}

fn main() -> ExitCode {
    let settings = match Settings::from_args() {
        Ok(settings) => settings,
        Err(error) => CLI.fail(error),
    };
    quiet_injected_panics();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("chaos_soak: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(soak(settings)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("chaos_soak: {error}");
            ExitCode::FAILURE
        }
    }
}
