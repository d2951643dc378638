//! Tasks a handler spawns with `AgentContext::spawn` end with its incarnation: on a crash,
//! on a restart, on a stop and on the system's shutdown. Paused clock.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::yield_until;
use overseer_agent::{Agent, AgentContext, AgentError, AgentSpec, System};
use overseer_supervisor::SupervisorSpec;

/// Counts the spawned tasks still alive: each holds a guard that decrements when its future
/// is dropped (which is what an abort does).
struct Alive(Arc<AtomicUsize>);

impl Alive {
    fn new(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Self(Arc::clone(count))
    }
}

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[derive(Debug, Clone)]
enum Order {
    /// Spawns this many tasks that never end, tied to the incarnation.
    SpawnTied(usize),
    Crash,
    Live,
}

struct Spawner {
    alive: Arc<AtomicUsize>,
}

impl Agent for Spawner {
    type Task = Order;
    type Output = usize;

    async fn handle(&mut self, ctx: &mut AgentContext, order: Order) -> Result<usize, AgentError> {
        match order {
            Order::SpawnTied(count) => {
                for _ in 0..count {
                    let alive = Alive::new(&self.alive);
                    ctx.spawn(async move {
                        let _alive = alive;
                        std::future::pending::<()>().await
                    });
                }
                Ok(ctx.live_tasks())
            }
            Order::Crash => panic!("crash"),
            Order::Live => Ok(ctx.live_tasks()),
        }
    }
}

async fn spawner_system(alive: &Arc<AtomicUsize>) -> System {
    let system = System::builder().build().unwrap();
    let alive = Arc::clone(alive);
    let spec = AgentSpec::new("spawner", move || Spawner {
        alive: Arc::clone(&alive),
    });
    let root = SupervisorSpec::one_for_one("root").intensity(10, Duration::from_secs(1));
    system
        .start(root.child(system.agent(spec).unwrap()))
        .await
        .unwrap();
    system
}

/// Lets aborted tasks be dropped: an abort takes effect when the runtime next polls them.
async fn settle_aborts(alive: &AtomicUsize, expected: usize) {
    let what = format!("{expected} spawned tasks alive");
    yield_until(&what, || alive.load(Ordering::SeqCst) == expected).await;
}

#[tokio::test(start_paused = true)]
async fn tasks_spawned_for_an_incarnation_are_aborted_when_it_crashes() {
    let alive = Arc::new(AtomicUsize::new(0));
    let system = spawner_system(&alive).await;
    let spawner = system.agent_ref::<Spawner>("spawner").unwrap();
    assert_eq!(spawner.ask(Order::SpawnTied(100)).await.unwrap(), 100);
    settle_aborts(&alive, 100).await;
    assert!(spawner.ask(Order::Crash).await.is_err());
    settle_aborts(&alive, 0).await;
    // The restarted incarnation starts with none, and its own tasks are its own.
    assert_eq!(spawner.ask(Order::Live).await.unwrap(), 0);
    assert_eq!(spawner.ask(Order::SpawnTied(3)).await.unwrap(), 3);
    system.shutdown(Duration::from_secs(5)).await.unwrap();
    settle_aborts(&alive, 0).await;
}

#[tokio::test(start_paused = true)]
async fn tasks_spawned_for_an_incarnation_are_aborted_when_it_is_stopped() {
    let alive = Arc::new(AtomicUsize::new(0));
    let system = spawner_system(&alive).await;
    let spawner = system.agent_ref::<Spawner>("spawner").unwrap();
    spawner.ask(Order::SpawnTied(10)).await.unwrap();
    system
        .tree()
        .unwrap()
        .root()
        .terminate_child("spawner")
        .await
        .unwrap();
    settle_aborts(&alive, 0).await;
    system.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn tasks_spawned_for_an_incarnation_are_aborted_when_the_system_is_dropped() {
    let alive = Arc::new(AtomicUsize::new(0));
    let system = spawner_system(&alive).await;
    let spawner = system.agent_ref::<Spawner>("spawner").unwrap();
    spawner.ask(Order::SpawnTied(10)).await.unwrap();
    drop(spawner);
    drop(system);
    settle_aborts(&alive, 0).await;
}
