//! What a dropped future does, as the `# Cancel safety` sections of `AgentRef::ask`,
//! `System::start` and `System::shutdown` say: an ask not polled did nothing; an ask given up
//! while queued never runs and gives back what it reserved; one given up while its handler runs
//! lets the handler finish under its deadline, uncounted; a dropped start still starts the tree
//! the system holds; a dropped shutdown still stops it. Public API only; paused clock.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::yield_until;
use overseer_agent::{
    Agent, AgentContext, AgentError, AgentSpec, AskError, System, SystemError, SystemEvent, Usage,
};
use overseer_breaker::{Backoff, BreakerConfig, BreakerKey, BreakerRegistry, State};
use overseer_budget::{Budget, Dimension, Limits};
use overseer_supervisor::{EventKind, ExitReason, Shutdown, SupervisorSpec, TreeError};
use tokio::sync::{broadcast, Semaphore};

/// What the test agent is asked to do.
#[derive(Debug, Clone)]
enum Job {
    /// Waits for a permit of the gate, then answers.
    Gated,
    /// Reports this many tokens, waits for a permit of the gate, then fails the task.
    SpendGatedFail(u64),
    /// Never answers.
    Hang,
    /// Answers at once.
    Quick,
}

/// Counts the handlers it starts and ends; gated jobs wait on a shared semaphore.
struct Worker {
    gate: Arc<Semaphore>,
    started: Arc<AtomicU32>,
    ended: Arc<AtomicU32>,
}

/// What a gated job reserves against the budget.
const GATED_ESTIMATE: u64 = 100;

impl Agent for Worker {
    type Task = Job;
    type Output = &'static str;

    fn task_type(_: &Job) -> &'static str {
        "work"
    }

    fn estimate(job: &Job) -> Usage {
        match job {
            Job::Gated => Usage::new(GATED_ESTIMATE, 0, 0),
            _ => Usage::default(),
        }
    }

    async fn handle(
        &mut self,
        ctx: &mut AgentContext,
        job: Job,
    ) -> Result<&'static str, AgentError> {
        self.started.fetch_add(1, Ordering::SeqCst);
        let answer = match job {
            Job::Gated => {
                let _permit = self.gate.acquire().await.expect("gate open");
                Ok("gated")
            }
            Job::SpendGatedFail(tokens) => {
                ctx.report_usage(Usage::new(tokens, 0, 0));
                let _permit = self.gate.acquire().await.expect("gate open");
                Err(AgentError::failed("declined"))
            }
            Job::Hang => std::future::pending().await,
            Job::Quick => Ok("quick"),
        };
        self.ended.fetch_add(1, Ordering::SeqCst);
        answer
    }
}

struct Fixture {
    system: System,
    budget: Budget,
    gate: Arc<Semaphore>,
    started: Arc<AtomicU32>,
    ended: Arc<AtomicU32>,
    events: broadcast::Receiver<SystemEvent>,
}

/// A system with a breaker that opens on one failure and a budget of 10,000 tokens, and one
/// worker agent `w` (asks time out after 10 s), not started yet.
fn fixture(shutdown: Option<Shutdown>) -> (Fixture, SupervisorSpec) {
    let breakers = BreakerRegistry::new(
        BreakerConfig::default()
            .consecutive_failures(Some(1))
            .open_duration(Backoff::fixed(Duration::from_secs(60))),
    )
    .unwrap();
    let budget = Budget::builder()
        .process_limits(Limits::new().tokens(10_000))
        .build()
        .unwrap();
    let system = System::builder()
        .ask_timeout(Duration::from_secs(10))
        .breakers(breakers)
        .budget(budget.clone())
        .build()
        .unwrap();
    let events = system.subscribe();
    let gate = Arc::new(Semaphore::new(0));
    let started = Arc::new(AtomicU32::new(0));
    let ended = Arc::new(AtomicU32::new(0));
    let (g, s, e) = (Arc::clone(&gate), Arc::clone(&started), Arc::clone(&ended));
    let mut spec = AgentSpec::new("w", move || Worker {
        gate: Arc::clone(&g),
        started: Arc::clone(&s),
        ended: Arc::clone(&e),
    });
    if let Some(shutdown) = shutdown {
        spec = spec.shutdown(shutdown);
    }
    let root = SupervisorSpec::one_for_one("root")
        .intensity(100, Duration::from_secs(1))
        .child(system.agent(spec).unwrap());
    let fixture = Fixture {
        system,
        budget,
        gate,
        started,
        ended,
        events,
    };
    (fixture, root)
}

async fn started(shutdown: Option<Shutdown>) -> Fixture {
    let (fixture, root) = fixture(shutdown);
    fixture.system.start(root).await.unwrap();
    fixture
}

impl Fixture {
    /// The process's committed and reserved tokens.
    fn tokens(&self) -> (u64, u64) {
        let status = self.budget.status();
        let tokens = status.process.dimension(Dimension::Tokens);
        (tokens.committed, tokens.reserved)
    }

    fn breaker(&self) -> State {
        let key = BreakerKey::new("w", "work");
        self.system.breakers().unwrap().get(&key).unwrap().state()
    }

    async fn until_handlers_started(&self, count: u32) {
        yield_until("the handlers started", || {
            self.started.load(Ordering::SeqCst) >= count
        })
        .await;
    }

    /// The outcome kinds of the asks published so far (`"ok"` for an answer).
    fn ask_outcomes(&mut self) -> Vec<String> {
        let mut outcomes = Vec::new();
        while let Ok(event) = self.events.try_recv() {
            if let SystemEvent::Ask(ask) = event {
                outcomes.push(ask.outcome.kind().unwrap_or("ok").to_string());
            }
        }
        outcomes
    }
}

/// Receives events until the stream ends, failing the test if it has not ended after `within`
/// on the (paused) clock.
async fn until_the_stream_ends(events: &mut broadcast::Receiver<SystemEvent>, within: Duration) {
    let ended = tokio::time::timeout(within, async {
        loop {
            match events.recv().await {
                Err(broadcast::error::RecvError::Closed) => return,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
            }
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "the event stream did not end within {within:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_ask_future_dropped_before_it_is_polled_did_nothing() {
    let mut fixture = started(None).await;
    let w = fixture.system.agent_ref::<Worker>("w").unwrap();
    let unpolled = w.ask(Job::Gated);
    assert_eq!(
        fixture.tokens(),
        (0, 0),
        "nothing is reserved before a poll"
    );
    drop(unpolled);
    assert_eq!(w.ask(Job::Quick).await, Ok("quick"));
    assert_eq!(
        fixture.started.load(Ordering::SeqCst),
        1,
        "only the quick job ran"
    );
    assert_eq!(fixture.ask_outcomes(), ["ok"], "one ask was made");
    fixture
        .system
        .shutdown(Duration::from_secs(5))
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn an_ask_dropped_while_queued_never_runs_and_gives_back_its_reservation() {
    let mut fixture = started(None).await;
    let w = fixture.system.agent_ref::<Worker>("w").unwrap();
    // The first ask holds the agent; the second waits in its queue and is given up.
    let first = tokio::spawn({
        let w = w.clone();
        async move { w.ask(Job::Gated).await }
    });
    fixture.until_handlers_started(1).await;
    let given_up = tokio::time::timeout(Duration::from_millis(50), w.ask(Job::Gated)).await;
    assert!(
        given_up.is_err(),
        "the second ask was still queued when dropped"
    );
    assert_eq!(
        fixture.tokens(),
        (0, 2 * GATED_ESTIMATE),
        "both asks hold their reservations while the first runs"
    );
    fixture.gate.add_permits(10);
    assert_eq!(first.await.unwrap(), Ok("gated"));
    assert_eq!(w.ask(Job::Quick).await, Ok("quick"));
    assert_eq!(
        fixture.started.load(Ordering::SeqCst),
        2,
        "the given-up ask's handler never ran"
    );
    assert_eq!(
        fixture.tokens(),
        (0, 0),
        "the given-up ask's reservation was released, nothing committed for it"
    );
    assert_eq!(fixture.breaker(), State::Closed);
    assert_eq!(
        fixture.ask_outcomes(),
        ["ok", "ok"],
        "no event for the ask given up"
    );
    fixture
        .system
        .shutdown(Duration::from_secs(5))
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn an_ask_dropped_while_its_handler_runs_lets_it_finish_uncounted_with_its_spend_committed() {
    let mut fixture = started(None).await;
    let w = fixture.system.agent_ref::<Worker>("w").unwrap();
    let given_up =
        tokio::time::timeout(Duration::from_millis(50), w.ask(Job::SpendGatedFail(40))).await;
    assert!(
        given_up.is_err(),
        "the ask was given up while its handler ran"
    );
    assert_eq!(fixture.started.load(Ordering::SeqCst), 1);
    assert_eq!(
        fixture.ended.load(Ordering::SeqCst),
        0,
        "the handler was not interrupted: it still waits at the gate"
    );
    fixture.gate.add_permits(1);
    // Served after the given-up task: by its answer, that task has ended and been settled.
    assert_eq!(w.ask(Job::Quick).await, Ok("quick"));
    assert_eq!(
        fixture.ended.load(Ordering::SeqCst),
        2,
        "the handler ran to its end"
    );
    assert_eq!(
        fixture.breaker(),
        State::Closed,
        "its failure was not counted (one failure opens this breaker)"
    );
    assert_eq!(
        fixture.tokens(),
        (40, 0),
        "the spend it reported is committed"
    );
    assert_eq!(
        fixture.ask_outcomes(),
        ["ok"],
        "no event for the ask given up"
    );
    fixture
        .system
        .shutdown(Duration::from_secs(5))
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_handler_whose_ask_was_dropped_is_still_stopped_as_hung_at_the_deadline() {
    let mut fixture = started(None).await;
    let w = fixture.system.agent_ref::<Worker>("w").unwrap();
    let given_up = tokio::time::timeout(Duration::from_millis(50), w.ask(Job::Hang)).await;
    assert!(given_up.is_err());
    let stopped = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match fixture.events.recv().await.expect("the stream is open") {
                SystemEvent::Lifecycle(event) if event.path.name() == "w" => {
                    if let EventKind::Stopped { reason } = event.kind {
                        return reason;
                    }
                }
                _ => {}
            }
        }
    })
    .await
    .expect("the agent was stopped");
    assert_eq!(stopped, ExitReason::TimedOut(Duration::from_secs(10)));
    assert_eq!(
        w.ask(Job::Quick).await,
        Ok("quick"),
        "restarted, it serves again"
    );
    fixture
        .system
        .shutdown(Duration::from_secs(5))
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_dropped_start_still_starts_the_tree_and_the_system_holds_it() {
    let (fixture, root) = fixture(None);
    let start = tokio::time::timeout(Duration::ZERO, fixture.system.start(root)).await;
    assert!(
        start.is_err(),
        "the start future was dropped before it finished"
    );
    yield_until("the tree started", || fixture.system.tree().is_some()).await;
    assert_eq!(
        fixture
            .system
            .start(SupervisorSpec::one_for_one("again"))
            .await,
        Err(SystemError::AlreadyStarted)
    );
    let w = fixture.system.agent_ref::<Worker>("w").unwrap();
    assert_eq!(w.ask(Job::Quick).await, Ok("quick"));
    fixture
        .system
        .shutdown(Duration::from_secs(5))
        .await
        .unwrap();
    assert!(
        !fixture.system.tree().unwrap().is_running(),
        "the shutdown stopped the tree the dropped start made"
    );
}

#[tokio::test(start_paused = true)]
async fn a_system_shut_down_while_its_tree_starts_stops_the_tree_once_started() {
    let (fixture, root) = fixture(None);
    let start = tokio::time::timeout(Duration::ZERO, fixture.system.start(root)).await;
    assert!(
        start.is_err(),
        "the start future was dropped before it finished"
    );
    fixture
        .system
        .shutdown(Duration::from_secs(5))
        .await
        .unwrap();
    yield_until("the tree started", || fixture.system.tree().is_some()).await;
    let tree = fixture.system.tree().unwrap();
    assert!(
        tree.wait_for_exit(Duration::from_secs(5)).await,
        "the tree was stopped once started"
    );
    let w = fixture.system.agent_ref::<Worker>("w").unwrap();
    assert_eq!(w.ask(Job::Quick).await, Err(AskError::ShutDown));
}

#[tokio::test(start_paused = true)]
async fn a_failed_start_may_be_retried() {
    let system = System::builder().build().unwrap();
    assert!(matches!(
        system
            .start(SupervisorSpec::one_for_one("team/alpha"))
            .await,
        Err(SystemError::Tree(TreeError::InvalidSpec(_)))
    ));
    system
        .start(SupervisorSpec::one_for_one("root"))
        .await
        .unwrap();
    assert!(system.tree().unwrap().is_running());
    system.shutdown(Duration::from_secs(5)).await.unwrap();
}

/// Starts a shutdown and drops it while the agent `w` is still stopping: it holds a task that
/// never ends, and is killed 1 s after it is asked to stop. Returns the in-flight ask.
async fn drop_a_shutdown_midway(
    fixture: &Fixture,
) -> tokio::task::JoinHandle<Result<&'static str, AskError>> {
    let w = fixture.system.agent_ref::<Worker>("w").unwrap();
    let in_flight = tokio::spawn(async move { w.ask(Job::Hang).await });
    fixture.until_handlers_started(1).await;
    let shutdown = tokio::time::timeout(
        Duration::from_millis(10),
        fixture.system.shutdown(Duration::from_secs(30)),
    )
    .await;
    assert!(shutdown.is_err(), "the shutdown future was dropped midway");
    in_flight
}

#[tokio::test(start_paused = true)]
async fn a_dropped_shutdown_still_refuses_asks_and_stops_the_tree_in_order() {
    let mut fixture = started(Some(Shutdown::Timeout(Duration::from_secs(1)))).await;
    let in_flight = drop_a_shutdown_midway(&fixture).await;
    let w = fixture.system.agent_ref::<Worker>("w").unwrap();
    assert_eq!(
        w.ask(Job::Quick).await,
        Err(AskError::ShutDown),
        "asks are refused from the first poll"
    );
    assert!(
        !in_flight.is_finished(),
        "the agent is still being stopped (it is killed 1 s after it was asked to stop)"
    );
    // Another shutdown finishes what the dropped one left: the stream ends.
    fixture
        .system
        .shutdown(Duration::from_secs(30))
        .await
        .unwrap();
    until_the_stream_ends(&mut fixture.events, Duration::from_secs(1)).await;
    let tree = fixture.system.tree().unwrap();
    assert!(
        tree.wait_for_exit(Duration::from_secs(30)).await,
        "the tree stopped in order"
    );
    assert_eq!(
        in_flight.await.unwrap(),
        Err(AskError::ShutDown),
        "the hung handler was killed by its shutdown spec"
    );
}

#[tokio::test(start_paused = true)]
async fn after_a_dropped_shutdown_the_stream_ends_once_the_last_handle_is_dropped() {
    let fixture = started(Some(Shutdown::Timeout(Duration::from_secs(1)))).await;
    let in_flight = drop_a_shutdown_midway(&fixture).await;
    let Fixture {
        system, mut events, ..
    } = fixture;
    let tree_stopped = {
        let tree = system.tree().unwrap();
        tree.wait_for_exit(Duration::from_secs(30)).await
    };
    assert!(
        tree_stopped,
        "the tree stopped in order without the dropped future"
    );
    assert_eq!(in_flight.await.unwrap(), Err(AskError::ShutDown));
    // A handle to an agent keeps its queue, not the system: the stream ends all the same.
    let w = system.agent_ref::<Worker>("w").unwrap();
    drop(system);
    until_the_stream_ends(&mut events, Duration::from_secs(1)).await;
    assert_eq!(w.ask(Job::Quick).await, Err(AskError::ShutDown));
}
