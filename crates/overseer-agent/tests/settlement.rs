//! How an ask's end is settled: by the time an ask returns its error, the breaker, the
//! error-rate window and the budget reservation have recorded it; an ask dropped before it
//! started never runs; spend reported before a kill is committed; an ask killed by a shutdown
//! says the system shut down. Public API only; paused clock unless said otherwise.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::yield_until;
use overseer_agent::{Agent, AgentContext, AgentError, AgentSpec, AskError, System, Usage};
use overseer_breaker::{Backoff, BreakerConfig, BreakerKey, BreakerRegistry, State};
use overseer_budget::{Budget, Dimension, InFlightPolicy, Limits};
use overseer_supervisor::{Shutdown, SupervisorSpec};
use tokio::sync::Semaphore;

/// What the test agent is asked to do.
#[derive(Debug, Clone)]
enum Job {
    /// Waits for a permit of the gate, then answers.
    Gated,
    /// Reports usage, then never answers.
    SpendThenHang(u64),
    /// Answers at once.
    Quick,
}

/// Counts the handlers it starts; gated jobs wait on a shared semaphore.
struct Worker {
    gate: Arc<Semaphore>,
    started: Arc<AtomicU32>,
}

impl Agent for Worker {
    type Task = Job;
    type Output = &'static str;

    fn task_type(_: &Job) -> &'static str {
        "work"
    }

    async fn handle(
        &mut self,
        ctx: &mut AgentContext,
        job: Job,
    ) -> Result<&'static str, AgentError> {
        self.started.fetch_add(1, Ordering::SeqCst);
        match job {
            Job::Gated => {
                let _permit = self.gate.acquire().await.expect("gate open");
                Ok("gated")
            }
            Job::SpendThenHang(tokens) => {
                ctx.report_usage(Usage::new(tokens, 0, 0));
                std::future::pending().await
            }
            Job::Quick => Ok("quick"),
        }
    }
}

struct Fixture {
    system: System,
    gate: Arc<Semaphore>,
    started: Arc<AtomicU32>,
}

fn one_failure_opens() -> BreakerRegistry {
    BreakerRegistry::new(
        BreakerConfig::default()
            .consecutive_failures(Some(1))
            .open_duration(Backoff::fixed(Duration::from_secs(60))),
    )
    .unwrap()
}

async fn start(builder: overseer_agent::SystemBuilder, shutdown: Option<Shutdown>) -> Fixture {
    let gate = Arc::new(Semaphore::new(0));
    let started = Arc::new(AtomicU32::new(0));
    let system = builder.build().unwrap();
    let (g, s) = (Arc::clone(&gate), Arc::clone(&started));
    let mut spec = AgentSpec::new("w", move || Worker {
        gate: Arc::clone(&g),
        started: Arc::clone(&s),
    });
    if let Some(shutdown) = shutdown {
        spec = spec.shutdown(shutdown);
    }
    let root = SupervisorSpec::one_for_one("root").intensity(100, Duration::from_secs(1));
    system
        .start(root.child(system.agent(spec).unwrap()))
        .await
        .unwrap();
    Fixture {
        system,
        gate,
        started,
    }
}

/// A budget of 10,000 process tokens, with `in_flight` as the policy for a trip.
fn token_budget(in_flight: Option<InFlightPolicy>) -> Budget {
    let mut builder = Budget::builder().process_limits(Limits::new().tokens(10_000));
    if let Some(policy) = in_flight {
        builder = builder.in_flight(policy);
    }
    builder.build().unwrap()
}

/// The process's committed and reserved tokens.
fn tokens(budget: &Budget) -> (u64, u64) {
    let status = budget.status();
    let tokens = status.process.dimension(Dimension::Tokens);
    (tokens.committed, tokens.reserved)
}

impl Fixture {
    async fn until_a_handler_started(&self) {
        yield_until("a handler started", || {
            self.started.load(Ordering::SeqCst) > 0
        })
        .await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_timed_out_ask_is_counted_by_its_breaker_before_it_returns() {
    let fixture = start(
        System::builder()
            .ask_timeout(Duration::from_secs(10))
            .breakers(one_failure_opens()),
        None,
    )
    .await;
    let w = fixture.system.agent_ref::<Worker>("w").unwrap();
    let timed_out = w.ask_within(Job::Gated, Duration::from_millis(200)).await;
    assert!(
        matches!(timed_out, Err(AskError::Timeout { .. })),
        "{timed_out:?}"
    );
    // No scheduler turn between the two asks: the timeout must already be recorded.
    let key = BreakerKey::new("w", "work");
    let state = fixture
        .system
        .breakers()
        .unwrap()
        .get(&key)
        .unwrap()
        .state();
    assert_eq!(
        state,
        State::Open,
        "the breaker counted the timeout before the ask returned"
    );
    let retried = w.ask(Job::Quick).await;
    assert!(
        matches!(retried, Err(AskError::BreakerOpen { .. })),
        "an immediate retry is refused, as after a crash: {retried:?}"
    );
    fixture
        .system
        .shutdown(Duration::from_secs(5))
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_timed_out_ask_has_settled_its_reservation_and_error_rate_before_it_returns() {
    let budget = token_budget(None);
    let fixture = start(
        System::builder()
            .ask_timeout(Duration::from_secs(10))
            .budget(budget.clone()),
        None,
    )
    .await;
    let w = fixture.system.agent_ref::<Worker>("w").unwrap();
    let timed_out = w
        .ask_within(Job::SpendThenHang(700), Duration::from_millis(200))
        .await;
    assert!(
        matches!(timed_out, Err(AskError::Timeout { .. })),
        "{timed_out:?}"
    );
    assert_eq!(
        tokens(&budget),
        (700, 0),
        "what was reported is committed, and nothing is left reserved"
    );
    fixture
        .system
        .shutdown(Duration::from_secs(5))
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn an_ask_dropped_before_it_started_never_runs_and_is_not_counted() {
    let fixture = start(
        System::builder()
            .ask_timeout(Duration::from_secs(10))
            .breakers(one_failure_opens()),
        None,
    )
    .await;
    let w = fixture.system.agent_ref::<Worker>("w").unwrap();
    // The first ask holds the agent; the second waits in its queue and is given up.
    let first = tokio::spawn({
        let w = w.clone();
        async move { w.ask(Job::Gated).await }
    });
    tokio::task::yield_now().await;
    let abandoned = tokio::time::timeout(Duration::from_millis(50), w.ask(Job::Gated)).await;
    assert!(
        abandoned.is_err(),
        "the second ask was still queued when dropped"
    );
    fixture.gate.add_permits(10);
    assert_eq!(first.await.unwrap(), Ok("gated"));
    assert_eq!(w.ask(Job::Quick).await, Ok("quick"));
    assert_eq!(
        fixture.started.load(Ordering::SeqCst),
        2,
        "the abandoned ask's handler never ran (only the first and the last did)"
    );
    let key = BreakerKey::new("w", "work");
    let breaker = fixture.system.breakers().unwrap().get(&key).unwrap();
    assert_eq!(
        breaker.state(),
        State::Closed,
        "nothing was counted as a failure"
    );
    fixture
        .system
        .shutdown(Duration::from_secs(5))
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn spend_reported_before_a_shutdown_kill_is_committed() {
    let budget = token_budget(None);
    let fixture = start(
        System::builder()
            .ask_timeout(Duration::from_secs(60))
            .budget(budget.clone()),
        Some(Shutdown::Timeout(Duration::from_millis(100))),
    )
    .await;
    let w = fixture.system.agent_ref::<Worker>("w").unwrap();
    let asked = tokio::spawn(async move { w.ask(Job::SpendThenHang(450)).await });
    fixture.until_a_handler_started().await;
    let _ = fixture.system.shutdown(Duration::from_secs(5)).await;
    let answer = asked.await.unwrap();
    assert_eq!(
        answer,
        Err(AskError::ShutDown),
        "a handler killed by the shutdown says so"
    );
    assert_eq!(
        tokens(&budget),
        (450, 0),
        "spend reported is spend committed, and nothing is left reserved"
    );
}

#[tokio::test(start_paused = true)]
async fn spend_reported_before_a_trip_cancels_the_task_is_committed() {
    let budget = token_budget(Some(InFlightPolicy::CancelAfter(Duration::from_secs(5))));
    let fixture = start(
        System::builder()
            .ask_timeout(Duration::from_secs(60))
            .budget(budget.clone()),
        None,
    )
    .await;
    let w = fixture.system.agent_ref::<Worker>("w").unwrap();
    let asked = tokio::spawn(async move { w.ask(Job::SpendThenHang(300)).await });
    fixture.until_a_handler_started().await;
    budget.trip(overseer_budget::TripReason::manual("operator"));
    let answer = asked.await.unwrap();
    assert!(
        matches!(answer, Err(AskError::KillSwitchTripped { .. })),
        "{answer:?}"
    );
    assert_eq!(
        tokens(&budget),
        (300, 0),
        "spend reported is spend committed, and nothing is left reserved"
    );
    let _ = fixture.system.shutdown(Duration::from_secs(5)).await;
}
