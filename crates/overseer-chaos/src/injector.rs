//! The injector: a plan, a seed, and the counters and random streams every incarnation of one
//! agent shares.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use overseer_agent::Agent;
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use serde::Serialize;

use crate::plan::Call;
use crate::{Chaos, Fault, FaultKind, FaultPlan, PlanError};

/// Makes a well-formed but wrong output from a right one, drawing any randomness it needs from
/// the generator it is given (seeded from the injector's seed and the call number).
type Corruptor<O> = Arc<dyn Fn(O, &mut dyn RngCore) -> O + Send + Sync>;

/// Separates the random stream of start attempts from that of calls, so restarts do not shift
/// the faults drawn for calls.
const START_STREAM: u64 = 0x5354_4152_545f_5354; // "START_ST"
/// Separates each call's corruption stream from the others.
const CORRUPT_STREAM: u64 = 0x434f_5252_5550_5421; // "CORRUPT!"

/// Injects the faults of one [`FaultPlan`] into one agent, deterministically for a seed.
///
/// Cloning an injector shares it. Its counters and random streams are shared by every
/// incarnation made by [`wrap`](Self::wrap), so call numbers run on across restarts and the
/// same seed with the same sequence of tasks gives the same faults. Use one injector per agent:
/// two agents sharing one would interleave their calls in whatever order they run.
///
/// ```
/// use overseer_agent::{Agent, AgentContext, AgentError, AgentSpec};
/// use overseer_chaos::{Chaos, Fault, FaultInjector, FaultPlan};
///
/// struct Echo;
/// impl Agent for Echo {
///     type Task = String;
///     type Output = String;
///     async fn handle(&mut self, _: &mut AgentContext, task: String) -> Result<String, AgentError> {
///         Ok(task)
///     }
/// }
///
/// let plan = FaultPlan::builder().on_call(3, Fault::Corrupt).build()?;
/// // Corrupt needs a corruptor: without one the injector is refused.
/// assert!(FaultInjector::<Echo>::new(plan.clone(), 7).is_err());
/// let injector = FaultInjector::<Echo>::with_corruptor(plan, 7, |text: String, _rng| text.to_uppercase());
/// let spec: AgentSpec<Chaos<Echo>> = AgentSpec::new("echo", injector.wrap(|| Echo));
/// assert_eq!(injector.stats().calls, 0);
/// # Ok::<(), overseer_chaos::PlanError>(())
/// ```
pub struct FaultInjector<A: Agent> {
    shared: Arc<Shared<A>>,
}

struct Shared<A: Agent> {
    plan: FaultPlan,
    seed: u64,
    corruptor: Option<Corruptor<A::Output>>,
    state: Mutex<State>,
}

/// What the incarnations of one agent share.
struct State {
    calls: u64,
    calls_by_type: HashMap<&'static str, u64>,
    start_attempts: u64,
    call_draws: StdRng,
    start_draws: StdRng,
    injected: BTreeMap<FaultKind, u64>,
}

/// The decision for one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Decision {
    /// The call's number (from 1).
    pub(crate) call: u64,
    /// The fault to inject, if any.
    pub(crate) fault: Option<Fault>,
}

impl<A: Agent> FaultInjector<A> {
    /// An injector of `plan`, its draws seeded by `seed`. Fails if the plan injects
    /// [`Fault::Corrupt`]: that needs a corruptor ([`with_corruptor`](Self::with_corruptor)).
    pub fn new(plan: FaultPlan, seed: u64) -> Result<Self, PlanError> {
        if plan.corrupts() {
            return Err(PlanError::CorruptWithoutCorruptor);
        }
        Ok(Self::make(plan, seed, None))
    }

    /// An injector of `plan` that corrupts outputs with `corruptor`: given a right output and a
    /// seeded generator, it returns a well-formed but wrong one.
    pub fn with_corruptor(
        plan: FaultPlan,
        seed: u64,
        corruptor: impl Fn(A::Output, &mut dyn RngCore) -> A::Output + Send + Sync + 'static,
    ) -> Self {
        Self::make(plan, seed, Some(Arc::new(corruptor)))
    }

    fn make(plan: FaultPlan, seed: u64, corruptor: Option<Corruptor<A::Output>>) -> Self {
        Self {
            shared: Arc::new(Shared {
                plan,
                seed,
                corruptor,
                state: Mutex::new(State {
                    calls: 0,
                    calls_by_type: HashMap::new(),
                    start_attempts: 0,
                    call_draws: StdRng::seed_from_u64(seed),
                    start_draws: StdRng::seed_from_u64(seed ^ START_STREAM),
                    injected: BTreeMap::new(),
                }),
            }),
        }
    }

    /// Wraps an agent factory: each incarnation it makes is wrapped in a [`Chaos`] sharing this
    /// injector. Give the result to [`AgentSpec::new`](overseer_agent::AgentSpec::new).
    pub fn wrap(
        &self,
        factory: impl Fn() -> A + Send + Sync + 'static,
    ) -> impl Fn() -> Chaos<A> + Send + Sync + 'static {
        let injector = self.clone();
        move || injector.chaos(factory())
    }

    /// Wraps one agent.
    pub fn chaos(&self, agent: A) -> Chaos<A> {
        Chaos::new(agent, self.clone())
    }

    /// What has been injected so far.
    pub fn stats(&self) -> ChaosStats {
        let state = self.state();
        ChaosStats {
            calls: state.calls,
            start_attempts: state.start_attempts,
            injected: state.injected.clone(),
        }
    }

    /// The plan.
    pub fn plan(&self) -> &FaultPlan {
        &self.shared.plan
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.shared.seed
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // No code panics while holding the lock; a poisoned lock still holds valid counters.
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Numbers the next call, draws for it, and decides its fault.
    pub(crate) fn next_call(&self, task_type: &'static str) -> Decision {
        let mut state = self.state();
        state.calls += 1;
        let number_of_type = {
            let count = state.calls_by_type.entry(task_type).or_default();
            *count += 1;
            *count
        };
        let draw: f64 = state.call_draws.random();
        let call = Call {
            number: state.calls,
            number_of_type,
            task_type,
        };
        Decision {
            call: call.number,
            fault: self.shared.plan.fault_for(&call, draw),
        }
    }

    /// Numbers the next start attempt, and decides whether it fails.
    pub(crate) fn next_start(&self) -> (u64, bool) {
        let mut state = self.state();
        state.start_attempts += 1;
        let draw: f64 = state.start_draws.random();
        let attempt = state.start_attempts;
        (attempt, self.shared.plan.start_fails(attempt, draw))
    }

    /// Counts one injected fault.
    pub(crate) fn record(&self, kind: FaultKind) {
        *self.state().injected.entry(kind).or_default() += 1;
    }

    /// Corrupts the output of call number `call`; without a corruptor, hands it back untouched.
    pub(crate) fn corrupt(&self, output: A::Output, call: u64) -> Result<A::Output, A::Output> {
        match &self.shared.corruptor {
            Some(corruptor) => {
                let seed = self.shared.seed ^ CORRUPT_STREAM ^ call.wrapping_mul(GOLDEN_GAMMA);
                Ok(corruptor(output, &mut StdRng::seed_from_u64(seed)))
            }
            None => Err(output),
        }
    }
}

/// Spreads consecutive call numbers apart before they are mixed into a seed.
const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

impl<A: Agent> Clone for FaultInjector<A> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<A: Agent> fmt::Debug for FaultInjector<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultInjector")
            .field("agent", &std::any::type_name::<A>())
            .field("seed", &self.shared.seed)
            .field("plan", &self.shared.plan)
            .field("corruptor", &self.shared.corruptor.is_some())
            .field("stats", &self.stats())
            .finish()
    }
}

/// What an injector has done so far: calls and start attempts seen, faults injected by kind.
///
/// ```
/// use overseer_chaos::{ChaosStats, FaultKind};
/// let stats = ChaosStats::default();
/// assert_eq!(stats.count(FaultKind::Panic), 0);
/// assert_eq!(stats.to_string(), "0 calls, 0 start attempts, no faults injected");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ChaosStats {
    /// Calls to `handle`, across incarnations.
    pub calls: u64,
    /// Start attempts (`on_start` and `on_restart`), across incarnations.
    pub start_attempts: u64,
    /// Faults injected, by kind (kinds never injected are absent).
    pub injected: BTreeMap<FaultKind, u64>,
}

impl ChaosStats {
    /// How many faults of `kind` were injected.
    pub fn count(&self, kind: FaultKind) -> u64 {
        self.injected.get(&kind).copied().unwrap_or_default()
    }

    /// How many faults were injected in all.
    pub fn total_injected(&self) -> u64 {
        self.injected.values().sum()
    }
}

impl fmt::Display for ChaosStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} calls, {} start attempts, ",
            self.calls, self.start_attempts
        )?;
        if self.injected.is_empty() {
            return f.write_str("no faults injected");
        }
        f.write_str("injected:")?;
        for (index, (kind, count)) in self.injected.iter().enumerate() {
            let separator = if index == 0 { " " } else { ", " };
            write!(f, "{separator}{kind} {count}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use overseer_agent::{AgentContext, AgentError};

    use super::*;

    struct Nothing;
    impl Agent for Nothing {
        type Task = ();
        type Output = u32;
        async fn handle(&mut self, _: &mut AgentContext, _: ()) -> Result<u32, AgentError> {
            Ok(0)
        }
    }

    fn drawn(seed: u64) -> FaultInjector<Nothing> {
        let plan = FaultPlan::builder()
            .probability(Fault::Error, 0.05)
            .probability(Fault::Panic, 0.10)
            .build()
            .unwrap();
        FaultInjector::new(plan, seed).unwrap()
    }

    fn faults(injector: &FaultInjector<Nothing>, calls: usize) -> Vec<Option<Fault>> {
        (0..calls)
            .map(|_| injector.next_call("default").fault)
            .collect()
    }

    #[test]
    fn the_same_seed_draws_the_same_faults_and_another_seed_does_not() {
        assert_eq!(faults(&drawn(3), 1_000), faults(&drawn(3), 1_000));
        assert_ne!(faults(&drawn(3), 1_000), faults(&drawn(4), 1_000));
    }

    #[test]
    fn ten_thousand_draws_hit_each_fault_about_as_often_as_its_probability() {
        for seed in [0, 1, 42, u64::MAX] {
            let injector = drawn(seed);
            let faults = faults(&injector, 10_000);
            let count = |fault| faults.iter().filter(|&&f| f == Some(fault)).count();
            // Within ±1% of 10,000 calls.
            assert!((400..=600).contains(&count(Fault::Error)), "seed {seed}");
            assert!((900..=1_100).contains(&count(Fault::Panic)), "seed {seed}");
        }
    }

    #[test]
    fn start_attempts_do_not_shift_the_faults_drawn_for_calls() {
        let quiet = drawn(9);
        let restarting = drawn(9);
        let mut interleaved = Vec::new();
        for n in 0..500 {
            if n % 7 == 0 {
                restarting.next_start();
            }
            interleaved.push(restarting.next_call("default").fault);
        }
        assert_eq!(faults(&quiet, 500), interleaved);
    }

    #[test]
    fn drawn_start_failures_are_deterministic_for_a_seed() {
        let plan = FaultPlan::builder()
            .fail_start_probability(0.3)
            .build()
            .unwrap();
        let starts = |seed| {
            let injector = FaultInjector::<Nothing>::new(plan.clone(), seed).unwrap();
            (0..1_000)
                .map(|_| injector.next_start().1)
                .collect::<Vec<_>>()
        };
        let failed = starts(5).iter().filter(|&&failed| failed).count();
        assert!((250..=350).contains(&failed), "{failed}");
        assert_eq!(starts(5), starts(5));
        assert_ne!(starts(5), starts(6));
    }

    #[test]
    fn each_call_corrupts_from_its_own_seeded_stream() {
        let plan = FaultPlan::builder()
            .probability(Fault::Corrupt, 1.0)
            .build()
            .unwrap();
        let injector = |seed| {
            FaultInjector::<Nothing>::with_corruptor(plan.clone(), seed, |_, rng| rng.next_u32())
        };
        let outputs = |injector: &FaultInjector<Nothing>| {
            (1..=50)
                .map(|call| injector.corrupt(0, call).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(outputs(&injector(1)), outputs(&injector(1)));
        assert_ne!(outputs(&injector(1)), outputs(&injector(2)));
        let first = outputs(&injector(1));
        assert!(first.windows(2).any(|pair| pair[0] != pair[1]));
    }

    #[test]
    fn stats_count_calls_starts_and_faults() {
        let injector = drawn(1);
        injector.next_call("default");
        injector.next_start();
        injector.record(FaultKind::Error);
        injector.record(FaultKind::Error);
        injector.record(FaultKind::FailStart);
        let stats = injector.stats();
        assert_eq!(stats.calls, 1);
        assert_eq!(stats.start_attempts, 1);
        assert_eq!(stats.count(FaultKind::Error), 2);
        assert_eq!(stats.total_injected(), 3);
        assert_eq!(
            stats.to_string(),
            "1 calls, 1 start attempts, injected: error 2, fail_start 1"
        );
    }
}
