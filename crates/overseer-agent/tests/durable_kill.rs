//! A durable ask whose incarnation is killed while its handler runs (a group restart with a
//! brutal shutdown) goes to the next incarnation, which replays the run; and its caller's
//! deadline still holds when the replay does not finish.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use overseer_agent::{Agent, AgentContext, AgentError, AgentSpec, AskError, System};
use overseer_budget::{Budget, Limits};
use overseer_journal::{Effect, Journal, JournalConfig, RunId};
use overseer_postgres::testing::TestStorage;
use overseer_supervisor::{Shutdown, SupervisorSpec};
use tokio::sync::Notify;
use tokio::time::Instant;

/// What happened outside the process.
#[derive(Default)]
struct World {
    researched: AtomicU32,
    writes_started: AtomicU32,
    /// The write step hangs while this is set (the first incarnation's, or every one's).
    hang: AtomicBool,
    /// Once a write has started and hangs.
    hanging: Notify,
}

/// Researches (a step), then writes (a step that may hang).
struct Drafter {
    world: Arc<World>,
    hang_once: bool,
}

impl Agent for Drafter {
    type Task = u32;
    type Output = String;

    async fn handle(&mut self, ctx: &mut AgentContext, n: u32) -> Result<String, AgentError> {
        let world = Arc::clone(&self.world);
        let notes: String = ctx
            .step("research", Effect::Idempotent, |_| async {
                world.researched.fetch_add(1, Ordering::SeqCst);
                Ok(format!("notes on {n}"))
            })
            .await?;
        let hang_once = self.hang_once;
        ctx.step("write", Effect::Idempotent, |_| async {
            world.writes_started.fetch_add(1, Ordering::SeqCst);
            let hangs = if hang_once {
                world.hang.swap(false, Ordering::SeqCst)
            } else {
                world.hang.load(Ordering::SeqCst)
            };
            if hangs {
                world.hanging.notify_one();
                std::future::pending::<()>().await;
            }
            Ok(format!("a draft from {notes}"))
        })
        .await
    }
}

/// Fails fatally on every task: its crash restarts the group.
struct Crasher;

impl Agent for Crasher {
    type Task = ();
    type Output = ();

    async fn handle(&mut self, _: &mut AgentContext, (): ()) -> Result<(), AgentError> {
        Err(AgentError::fatal("down"))
    }
}

/// Waits for `what`, failing the test (not hanging it) if it does not come within a minute of
/// the test's clock.
async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), future)
        .await
        .unwrap_or_else(|_| panic!("{what}: did not happen within a minute"))
}

async fn team(world: &Arc<World>, hang_once: bool) -> System {
    let budget = Budget::builder()
        .process_limits(Limits::new().tokens(1_000_000))
        .build()
        .unwrap();
    let system = System::builder()
        .journal(
            Journal::open(TestStorage::new(), JournalConfig::default())
                .unwrap()
                .0,
        )
        .budget(budget)
        .ask_timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let world = Arc::clone(world);
    let drafter = AgentSpec::new("drafter", move || Drafter {
        world: Arc::clone(&world),
        hang_once,
    })
    .shutdown(Shutdown::BrutalKill);
    let spec = SupervisorSpec::one_for_all("team")
        .child(system.agent(drafter).unwrap())
        .child(system.agent(AgentSpec::new("crasher", || Crasher)).unwrap());
    system.start(spec).await.unwrap();
    system
}

#[tokio::test(start_paused = true)]
async fn a_durable_ask_killed_in_flight_is_replayed_by_the_next_incarnation() {
    let world = Arc::new(World::default());
    world.hang.store(true, Ordering::SeqCst);
    let system = team(&world, true).await;
    let drafter = system.agent_ref::<Drafter>("drafter").unwrap();
    let crasher = system.agent_ref::<Crasher>("crasher").unwrap();

    let asked =
        tokio::spawn(async move { drafter.ask_run(RunId::new("draft-1").unwrap(), 7).await });
    within("the first write", world.hanging.notified()).await;
    // The crasher's fatal error restarts the group: the drafter is killed mid-write.
    crasher.tell(()).unwrap();

    let answer = within("the answer", asked).await.unwrap();
    assert_eq!(answer, Ok("a draft from notes on 7".to_string()));
    assert_eq!(
        world.researched.load(Ordering::SeqCst),
        1,
        "the research step was replayed, not run again"
    );
    assert_eq!(
        world.writes_started.load(Ordering::SeqCst),
        2,
        "the write cut by the kill ran again"
    );
    system.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_caller_of_a_requeued_durable_ask_is_answered_by_its_deadline() {
    let world = Arc::new(World::default());
    // Every incarnation's write hangs.
    world.hang.store(true, Ordering::SeqCst);
    let system = team(&world, false).await;
    let drafter = system.agent_ref::<Drafter>("drafter").unwrap();
    let crasher = system.agent_ref::<Crasher>("crasher").unwrap();

    let asked_at = Instant::now();
    let timeout = Duration::from_secs(10);
    let asked = tokio::spawn(async move {
        let answer = drafter
            .ask_run_within(RunId::new("draft-2").unwrap(), 7, timeout)
            .await;
        (answer, Instant::now())
    });
    within("the first write", world.hanging.notified()).await;
    crasher.tell(()).unwrap();
    // The replay hangs in its write as well.
    within("the replayed write", world.hanging.notified()).await;

    let (answer, answered_at) = within("the answer", asked).await.unwrap();
    assert!(
        matches!(answer, Err(AskError::Timeout { .. })),
        "{answer:?}"
    );
    assert_eq!(
        answered_at - asked_at,
        timeout,
        "answered at its deadline, not after"
    );
    system.shutdown(Duration::from_secs(5)).await.unwrap();
}
