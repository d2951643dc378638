//! Property tests of the call path on a paused clock: random fault plans, breaker configs and
//! budgets, many asks at once. Each case builds and shuts down a whole [`System`].
//!
//! * **Every ask resolves by its deadline.** Agents wrapped in [`Chaos`] panic, fail, fail
//!   fatally, hang, answer slowly and fail to restart at random (seeded) and on scheduled
//!   calls, under a root of random intensity; asks with random per-call timeouts arrive at
//!   random times. Each ask returns, with its output or a typed error of an expected kind, no
//!   later than its timeout on the paused clock; a `Timeout` comes exactly at it. After
//!   `System::shutdown` every ask fails at once with `ShutDown`.
//! * **Half-open probes never exceed their configuration.** With 1 to 3 probes configured,
//!   bursts of asks arrive at random instants while the probes already admitted are still
//!   running: exactly `min(asks, probes left)` of them reach the agent (counted by the agent
//!   itself), the others are refused `BreakerOpen` in the half-open state; over a whole
//!   half-open episode no more than `probes` asks reach the agent; afterwards the breaker is
//!   closed if every probe succeeded and all were used, open if one failed, half-open else.
//! * **The budget ledger never exceeds a limit.** Random limits (process tokens, cost, steps;
//!   per-agent tokens), random estimates and actual usage at most the estimate, many asks in
//!   flight at once on several agents: at every observation (each handler's start and end,
//!   each ask's return, the end) `committed ≤ limit` and `committed + reserved ≤ limit` in
//!   every limited dimension of the process and each agent, refusals are typed, and at the
//!   end the committed spend is exactly the usage of the asks that answered.
mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Once, PoisonError};
use std::time::Duration;

use overseer_agent::{
    Agent, AgentContext, AgentError, AgentRef, AgentSpec, AskError, System, Usage,
};
use overseer_breaker::{Backoff, BreakerConfig, BreakerKey, BreakerRegistry, State};
use overseer_budget::{Budget, Dimension, Ledger, Limits};
use overseer_chaos::{Chaos, Fault, FaultInjector, FaultPlan};
use overseer_supervisor::{Restart, SupervisorSpec};
use proptest::prelude::*;
use proptest::sample::Index;
use tokio::time::Instant;

/// Cases per property (override with `PROPTEST_CASES`): each builds a system.
const CASES: u32 = 32;

/// [`CASES`] cases unless `PROPTEST_CASES` says otherwise.
fn config() -> ProptestConfig {
    common::proptest_config(CASES)
}

/// A paused, single-threaded runtime for one case.
fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a runtime")
}

/// Injected panics are expected by the thousand; keep them off the test output. Every other
/// panic is still reported.
fn quiet_injected_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let injected = info
                .payload()
                .downcast_ref::<String>()
                .is_some_and(|message| message.starts_with("injected panic"));
            if !injected {
                report(info);
            }
        }));
    });
}

// ---------------------------------------------------------------------------------------------
// Every ask resolves by its deadline
// ---------------------------------------------------------------------------------------------

/// Works for as long as its task says, then answers.
struct Steady;

impl Agent for Steady {
    type Task = Duration;
    type Output = ();

    async fn handle(&mut self, _: &mut AgentContext, work: Duration) -> Result<(), AgentError> {
        tokio::time::sleep(work).await;
        Ok(())
    }
}

#[derive(Debug, Clone)]
struct ChaosAgent {
    /// Percent probabilities of panic, error, fatal, hang and slow (each at most 12).
    percents: [u32; 5],
    slow: Duration,
    /// Scheduled faults: (call number, which of the five).
    scheduled: Vec<(u64, usize)>,
    /// Percent probability that a start attempt fails.
    fail_start: u32,
    seed: u64,
    restart: Restart,
    fail_fast: bool,
}

impl ChaosAgent {
    fn plan(&self) -> FaultPlan {
        let faults = |which: usize| match which {
            0 => Fault::Panic,
            1 => Fault::Error,
            2 => Fault::Fatal,
            3 => Fault::Hang,
            _ => Fault::Slow(self.slow),
        };
        let mut plan = FaultPlan::builder();
        for (which, percent) in self.percents.iter().enumerate() {
            plan = plan.probability(faults(which), f64::from(*percent) / 100.0);
        }
        for &(call, which) in &self.scheduled {
            plan = plan.on_call(call, faults(which));
        }
        plan.fail_start_probability(f64::from(self.fail_start) / 100.0)
            .build()
            .expect("a valid plan")
    }
}

#[derive(Debug, Clone)]
struct Ask {
    agent: Index,
    at: Duration,
    timeout: Duration,
    work: Duration,
}

#[derive(Debug, Clone)]
struct DeadlineCase {
    intensity: u32,
    period: u64,
    agents: Vec<ChaosAgent>,
    asks: Vec<Ask>,
}

fn millis(range: std::ops::RangeInclusive<u64>) -> impl Strategy<Value = Duration> {
    range.prop_map(Duration::from_millis)
}

fn chaos_agent() -> impl Strategy<Value = ChaosAgent> {
    (
        prop::array::uniform5(0..=12u32),
        millis(1..=3000),
        prop::collection::vec((1..=30u64, 0..5usize), 0..=3),
        0..=10u32,
        any::<u64>(),
        prop_oneof![
            3 => Just(Restart::Permanent),
            1 => Just(Restart::Transient),
            1 => Just(Restart::Temporary)
        ],
        prop::bool::weighted(0.25),
    )
        .prop_map(
            |(percents, slow, scheduled, fail_start, seed, restart, fail_fast)| ChaosAgent {
                percents,
                slow,
                scheduled,
                fail_start,
                seed,
                restart,
                fail_fast,
            },
        )
}

fn deadline_case() -> impl Strategy<Value = DeadlineCase> {
    let ask = (
        any::<Index>(),
        millis(0..=3000),
        millis(1..=4000),
        millis(0..=1500),
    )
        .prop_map(|(agent, at, timeout, work)| Ask {
            agent,
            at,
            timeout,
            work,
        });
    (
        0..=10u32,
        1..=5u64,
        prop::collection::vec(chaos_agent(), 1..=3),
        prop::collection::vec(ask, 1..=24),
    )
        .prop_map(|(intensity, period, agents, asks)| DeadlineCase {
            intensity,
            period,
            agents,
            asks,
        })
}

/// The error kinds an ask may end with here (no breakers, no budget, no shutdown yet).
const CHAOS_ERRORS: &[&str] = &[
    "timeout",
    "crashed",
    "failed",
    "restarting",
    "agent_stopped",
];

async fn every_ask_resolves_by_its_deadline(case: DeadlineCase) -> Result<(), String> {
    let system = System::builder().build().unwrap();
    let mut root = SupervisorSpec::one_for_one("root")
        .intensity(case.intensity, Duration::from_secs(case.period));
    for (n, agent) in case.agents.iter().enumerate() {
        let injector = FaultInjector::new(agent.plan(), agent.seed).map_err(|e| e.to_string())?;
        let spec = AgentSpec::new(format!("agent{n}"), injector.wrap(|| Steady))
            .restart(agent.restart)
            .fail_fast_while_restarting(agent.fail_fast);
        root = root.child(system.agent(spec).map_err(|e| e.to_string())?);
    }
    // A first start may fail (an injected start failure): the asks must still resolve.
    let _started = system.start(root).await;
    let agents: Vec<AgentRef<Chaos<Steady>>> = (0..case.agents.len())
        .map(|n| system.agent_ref(&format!("agent{n}")).expect("declared"))
        .collect();
    let mut asks = Vec::new();
    for ask in case.asks.iter().cloned() {
        let agent = agents[ask.agent.index(agents.len())].clone();
        asks.push(tokio::spawn(async move {
            tokio::time::sleep(ask.at).await;
            let asked = Instant::now();
            // The guard only ends the test if the library fails; it never fires otherwise.
            let outcome = tokio::time::timeout(
                ask.timeout + Duration::from_secs(60),
                agent.ask_within(ask.work, ask.timeout),
            )
            .await;
            (ask, asked.elapsed(), outcome)
        }));
    }
    for task in asks {
        let (ask, elapsed, outcome) = task.await.map_err(|e| format!("an ask task failed: {e}"))?;
        let Ok(result) = outcome else {
            return Err(format!(
                "{ask:?} was still pending a minute past its deadline"
            ));
        };
        if elapsed > ask.timeout {
            return Err(format!(
                "{ask:?} resolved after {elapsed:?} with {result:?}"
            ));
        }
        match result {
            Ok(()) => {}
            Err(AskError::Timeout { after, .. })
                if after != ask.timeout || elapsed != ask.timeout =>
            {
                return Err(format!(
                    "{ask:?} timed out after {elapsed:?}, reporting {after:?}"
                ))
            }
            Err(error) if !CHAOS_ERRORS.contains(&error.kind()) => {
                return Err(format!("{ask:?} ended with an unexpected {error:?}"))
            }
            Err(_) => {}
        }
    }
    system
        .shutdown(Duration::from_secs(30))
        .await
        .map_err(|e| format!("shutdown: {e}"))?;
    for agent in &agents {
        let asked = Instant::now();
        let after = agent
            .ask_within(Duration::ZERO, Duration::from_secs(5))
            .await;
        if after != Err(AskError::ShutDown) || asked.elapsed() != Duration::ZERO {
            return Err(format!("an ask after the shutdown got {after:?}"));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn every_ask_resolves_by_its_deadline_under_random_faults(case in deadline_case()) {
        quiet_injected_panics();
        let verdict = paused_runtime().block_on(every_ask_resolves_by_its_deadline(case));
        prop_assert!(verdict.is_ok(), "{}", verdict.unwrap_err());
    }
}

// ---------------------------------------------------------------------------------------------
// Half-open probes never exceed their configuration
// ---------------------------------------------------------------------------------------------

/// Counts the tasks that reach it; each works for a while, then succeeds or fails as told.
struct Prober {
    reached: Arc<AtomicU32>,
}

#[derive(Debug, Clone, Copy)]
struct Probe {
    work: Duration,
    succeed: bool,
}

impl Agent for Prober {
    type Task = Probe;
    type Output = ();

    async fn handle(&mut self, _: &mut AgentContext, probe: Probe) -> Result<(), AgentError> {
        self.reached.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(probe.work).await;
        if probe.succeed {
            Ok(())
        } else {
            Err(AgentError::failed("probe failed"))
        }
    }
}

#[derive(Debug, Clone)]
struct ProbeCase {
    probes: u32,
    consecutive_failures: u32,
    open_for: Duration,
    /// Bursts: each ask's arrival (0 to 40 ms into the burst) and what it does (50 to 200 ms
    /// of work, so every ask of a burst arrives before the first probe answers).
    bursts: Vec<Vec<(Duration, Probe)>>,
}

fn probe_case() -> impl Strategy<Value = ProbeCase> {
    let probe = (millis(50..=200), prop::bool::weighted(0.75))
        .prop_map(|(work, succeed)| Probe { work, succeed });
    let burst = prop::collection::vec((millis(0..=40), probe), 1..=6);
    (
        1..=3u32,
        1..=3u32,
        millis(1000..=30_000),
        prop::collection::vec(burst, 1..=6),
    )
        .prop_map(
            |(probes, consecutive_failures, open_for, bursts)| ProbeCase {
                probes,
                consecutive_failures,
                open_for,
                bursts,
            },
        )
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expected {
    Closed,
    Open,
    HalfOpen { succeeded: u32 },
}

async fn half_open_probes_never_exceed_their_configuration(case: ProbeCase) -> Result<(), String> {
    let config = BreakerConfig::default()
        .window_size(20)
        .minimum_calls(20)
        .failure_rate_threshold(1.0)
        .consecutive_failures(Some(case.consecutive_failures))
        .open_duration(Backoff::fixed(case.open_for))
        .half_open_probes(case.probes)
        .seed(Some(7));
    let registry = BreakerRegistry::new(config).map_err(|e| e.to_string())?;
    let system = System::builder().breakers(registry).build().unwrap();
    let reached = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&reached);
    let spec = AgentSpec::new("prober", move || Prober {
        reached: Arc::clone(&counter),
    });
    system
        .start(
            SupervisorSpec::one_for_one("root")
                .child(system.agent(spec).map_err(|e| e.to_string())?),
        )
        .await
        .map_err(|e| e.to_string())?;
    let prober = system
        .agent_ref::<Prober>("prober")
        .map_err(|e| e.to_string())?;
    let key = BreakerKey::new("prober", "default");
    let state = || {
        system
            .breakers()
            .and_then(|registry| registry.get(&key))
            .map_or(State::Closed, |breaker| breaker.state())
    };
    let reached_now = || reached.load(Ordering::SeqCst);
    let failing = Probe {
        work: Duration::ZERO,
        succeed: false,
    };

    let mut expected = Expected::Closed;
    let mut episode = 0;
    for (round, burst) in case.bursts.iter().enumerate() {
        let context = format!("round {round}, starting {expected:?}");
        let at = |what: &str| format!("{context}: {what}");
        if expected == Expected::Closed {
            for _ in 0..case.consecutive_failures {
                let before = reached_now();
                let outcome = prober.ask(failing).await;
                if !matches!(outcome, Err(AskError::Failed { .. })) || reached_now() != before + 1 {
                    return Err(at(&format!("opening: a failing ask gave {outcome:?}")));
                }
            }
            expected = Expected::Open;
        }
        if expected == Expected::Open {
            if state() != State::Open {
                return Err(at(&format!("the breaker is {:?}", state())));
            }
            let before = reached_now();
            match prober.ask(failing).await {
                Err(AskError::BreakerOpen {
                    state: State::Open,
                    retry_after: Some(wait),
                    ..
                }) if reached_now() == before => tokio::time::advance(wait).await,
                other => return Err(at(&format!("an ask while open gave {other:?}"))),
            }
        }
        let left = match expected {
            Expected::HalfOpen { succeeded } => case.probes - succeeded,
            _ => case.probes,
        };
        let before = reached_now();
        let started = Instant::now();
        let asks: Vec<_> = burst
            .iter()
            .map(|&(arrival, probe)| {
                let prober = prober.clone();
                tokio::spawn(async move {
                    tokio::time::sleep_until(started + arrival).await;
                    (probe, prober.ask(probe).await)
                })
            })
            .collect();
        let mut outcomes = Vec::new();
        for ask in asks {
            outcomes.push(ask.await.map_err(|e| e.to_string())?);
        }
        let admitted = reached_now() - before;
        let expected_admitted = left.min(burst.len() as u32);
        if admitted != expected_admitted {
            return Err(at(&format!(
                "{admitted} of {} asks reached the agent; {expected_admitted} expected \
                 with {} probe(s) left",
                burst.len(),
                left
            )));
        }
        episode += admitted;
        if episode > case.probes {
            return Err(at(&format!(
                "{episode} asks reached the agent in one half-open episode; {} probes configured",
                case.probes
            )));
        }
        let mut failed = false;
        let mut answered = 0;
        for (probe, outcome) in &outcomes {
            match outcome {
                Ok(()) if probe.succeed => answered += 1,
                Err(AskError::Failed { .. }) if !probe.succeed => {
                    answered += 1;
                    failed = true;
                }
                Err(AskError::BreakerOpen {
                    state: State::HalfOpen,
                    ..
                }) => {}
                other => return Err(at(&format!("{probe:?} gave {other:?}"))),
            }
        }
        if answered != admitted {
            return Err(at(&format!(
                "{answered} asks answered but {admitted} reached the agent"
            )));
        }
        expected = match expected {
            _ if failed => Expected::Open,
            Expected::HalfOpen { succeeded } if succeeded + admitted >= case.probes => {
                Expected::Closed
            }
            Expected::HalfOpen { succeeded } => Expected::HalfOpen {
                succeeded: succeeded + admitted,
            },
            _ if admitted >= case.probes => Expected::Closed,
            _ => Expected::HalfOpen {
                succeeded: admitted,
            },
        };
        if !matches!(expected, Expected::HalfOpen { .. }) {
            episode = 0;
        }
        let actual = state();
        let agrees = matches!(
            (expected, actual),
            (Expected::Closed, State::Closed)
                | (Expected::Open, State::Open)
                | (Expected::HalfOpen { .. }, State::HalfOpen)
        );
        if !agrees {
            return Err(at(&format!(
                "the breaker is {actual:?}, expected {expected:?}"
            )));
        }
    }
    system
        .shutdown(Duration::from_secs(5))
        .await
        .map_err(|e| e.to_string())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn half_open_probes_never_exceed_their_configuration_under_concurrent_asks(
        case in probe_case()
    ) {
        let verdict =
            paused_runtime().block_on(half_open_probes_never_exceed_their_configuration(case));
        prop_assert!(verdict.is_ok(), "{}", verdict.unwrap_err());
    }
}

// ---------------------------------------------------------------------------------------------
// The budget ledger never exceeds a limit
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
struct Spend {
    tokens: u64,
    cost: u64,
    used_tokens: u64,
    used_cost: u64,
    work: Duration,
}

/// Checks every limited dimension of the process ledger and each agent's ledger.
#[derive(Clone)]
struct Observer {
    budget: Budget,
    agents: Vec<String>,
    violations: Arc<Mutex<Vec<String>>>,
}

impl Observer {
    fn observe(&self, when: &str) {
        let ledgers = std::iter::once(self.budget.process().clone()).chain(
            self.agents
                .iter()
                .filter_map(|agent| self.budget.agent(agent)),
        );
        for ledger in ledgers {
            if let Some(violation) = over_limit(&ledger) {
                self.violations
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(format!("{when}: {violation}"));
            }
        }
    }

    fn violations(&self) -> Vec<String> {
        self.violations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

fn over_limit(ledger: &Ledger) -> Option<String> {
    let status = ledger.status();
    Dimension::ALL.into_iter().find_map(|dimension| {
        let figures = status.dimension(dimension);
        let limit = figures.limit?;
        (figures.committed > limit || figures.committed + figures.reserved > limit).then(|| {
            format!(
                "{} {dimension}: committed {} + reserved {} over the limit {limit}",
                ledger.scope(),
                figures.committed,
                figures.reserved
            )
        })
    })
}

/// Declares its task's estimate, works, then reports at most that much.
struct Spender {
    observer: Observer,
}

impl Agent for Spender {
    type Task = Spend;
    type Output = Spend;

    fn estimate(spend: &Spend) -> Usage {
        Usage::new(spend.tokens, 0, spend.cost)
    }

    async fn handle(&mut self, ctx: &mut AgentContext, spend: Spend) -> Result<Spend, AgentError> {
        self.observer.observe("a handler's start");
        tokio::time::sleep(spend.work).await;
        ctx.report_usage(Usage::new(spend.used_tokens, 0, spend.used_cost));
        self.observer.observe("a handler's end");
        Ok(spend)
    }
}

#[derive(Debug, Clone)]
struct BudgetCase {
    tokens: u64,
    cost: Option<u64>,
    steps: Option<u64>,
    agent_tokens: Option<u64>,
    agents: usize,
    asks: Vec<(Index, Duration, Spend)>,
}

fn budget_case() -> impl Strategy<Value = BudgetCase> {
    let spend = (
        1..=400u64,
        1..=400u64,
        0..=100u64,
        0..=100u64,
        millis(0..=300),
    )
        .prop_map(|(tokens, cost, token_share, cost_share, work)| Spend {
            tokens,
            cost,
            used_tokens: tokens * token_share / 100,
            used_cost: cost * cost_share / 100,
            work,
        });
    (
        100..=5000u64,
        prop::option::of(100..=5000u64),
        prop::option::of(1..=40u64),
        prop::option::of(50..=3000u64),
        1..=4usize,
        prop::collection::vec((any::<Index>(), millis(0..=500), spend), 1..=30),
    )
        .prop_map(
            |(tokens, cost, steps, agent_tokens, agents, asks)| BudgetCase {
                tokens,
                cost,
                steps,
                agent_tokens,
                agents,
                asks,
            },
        )
}

/// How an ask may be refused or cut short here.
const BUDGET_ERRORS: &[&str] = &[
    "budget_exceeded",
    "kill_switch_tripped",
    "agent_stopped",
    "shut_down",
];

async fn the_ledger_never_exceeds_a_limit(case: BudgetCase) -> Result<(), String> {
    let mut process = Limits::new().tokens(case.tokens);
    if let Some(cost) = case.cost {
        process = process.cost_micros(cost);
    }
    if let Some(steps) = case.steps {
        process = process.steps(steps);
    }
    let mut budget = Budget::builder().process_limits(process);
    if let Some(tokens) = case.agent_tokens {
        budget = budget.default_agent_limits(Limits::new().tokens(tokens));
    }
    let budget = budget.build().map_err(|e| e.to_string())?;
    let names: Vec<String> = (0..case.agents).map(|n| format!("spender{n}")).collect();
    let observer = Observer {
        budget: budget.clone(),
        agents: names.clone(),
        violations: Arc::default(),
    };
    let system = System::builder().budget(budget.clone()).build().unwrap();
    let mut root = SupervisorSpec::one_for_one("root");
    for name in &names {
        let observer = observer.clone();
        let spec = AgentSpec::new(name.as_str(), move || Spender {
            observer: observer.clone(),
        });
        root = root.child(system.agent(spec).map_err(|e| e.to_string())?);
    }
    system.start(root).await.map_err(|e| e.to_string())?;
    let agents: Vec<AgentRef<Spender>> = names
        .iter()
        .map(|name| system.agent_ref(name).expect("declared"))
        .collect();
    let asks: Vec<_> = case
        .asks
        .iter()
        .map(|&(agent, at, spend)| {
            let agent = agents[agent.index(agents.len())].clone();
            let observer = observer.clone();
            tokio::spawn(async move {
                tokio::time::sleep(at).await;
                let outcome = agent.ask(spend).await;
                observer.observe("an ask's return");
                outcome
            })
        })
        .collect();
    let (mut used_tokens, mut used_cost) = (0, 0);
    for ask in asks {
        match ask.await.map_err(|e| e.to_string())? {
            Ok(spend) => {
                used_tokens += spend.used_tokens;
                used_cost += spend.used_cost;
            }
            Err(error) if BUDGET_ERRORS.contains(&error.kind()) => {}
            Err(error) => return Err(format!("an ask ended with an unexpected {error:?}")),
        }
    }
    observer.observe("the end");
    let violations = observer.violations();
    if !violations.is_empty() {
        return Err(violations.join("\n"));
    }
    let process = budget.process();
    let committed = (
        process.committed(Dimension::Tokens),
        process.committed(Dimension::Cost),
    );
    if committed != (used_tokens, used_cost) {
        return Err(format!(
            "committed (tokens, cost) {committed:?}, but the asks that answered used {:?}",
            (used_tokens, used_cost)
        ));
    }
    system
        .shutdown(Duration::from_secs(30))
        .await
        .map_err(|e| e.to_string())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn the_budget_ledger_never_exceeds_a_limit_under_concurrent_asks(case in budget_case()) {
        let verdict = paused_runtime().block_on(the_ledger_never_exceeds_a_limit(case));
        prop_assert!(verdict.is_ok(), "{}", verdict.unwrap_err());
    }
}
