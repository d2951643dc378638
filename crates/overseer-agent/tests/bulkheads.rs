//! Bulkheads: named concurrency limits shared across agents, entered from handlers.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use overseer_agent::{
    Agent, AgentContext, AgentError, AgentSpec, AskError, BulkheadError, Classify, ErrorClass,
    System, SystemError,
};
use overseer_supervisor::SupervisorSpec;

mod common;
use common::yield_until;
use tokio::time::Instant;

/// Enters a bulkhead and holds it for a while.
#[derive(Debug, Clone, Copy)]
struct Enter {
    bulkhead: &'static str,
    hold: Duration,
    /// How long to wait for a permit at most, if less than the deadline.
    wait: Option<Duration>,
}

#[derive(Default)]
struct Seen {
    holding: AtomicUsize,
    most: AtomicUsize,
    /// When each permit wait failed, and how.
    refusals: Mutex<Vec<(Instant, BulkheadError)>>,
}

struct Caller {
    seen: Arc<Seen>,
}

impl Agent for Caller {
    type Task = Enter;
    type Output = &'static str;

    async fn handle(
        &mut self,
        ctx: &mut AgentContext,
        task: Enter,
    ) -> Result<&'static str, AgentError> {
        let seen = Arc::clone(&self.seen);
        let entered = match ctx.bulkhead(task.bulkhead) {
            Ok(call) => {
                let call = match task.wait {
                    Some(wait) => call.wait_at_most(wait),
                    None => call,
                };
                call.run(async {
                    let now = seen.holding.fetch_add(1, Ordering::SeqCst) + 1;
                    seen.most.fetch_max(now, Ordering::SeqCst);
                    if task.hold.is_zero() {
                        tokio::task::yield_now().await;
                    } else {
                        tokio::time::sleep(task.hold).await;
                    }
                    seen.holding.fetch_sub(1, Ordering::SeqCst);
                })
                .await
            }
            Err(unknown) => Err(unknown),
        };
        match entered {
            Ok(()) => Ok("entered"),
            Err(error) => {
                seen.refusals
                    .lock()
                    .unwrap()
                    .push((Instant::now(), error.clone()));
                Err(error.into())
            }
        }
    }
}

async fn system(agents: usize, limit: usize) -> (System, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let system = System::builder()
        .ask_timeout(Duration::from_secs(60))
        .bulkhead("model-calls", limit)
        .build()
        .unwrap();
    let mut root = SupervisorSpec::one_for_one("root").intensity(100, Duration::from_secs(1));
    for i in 0..agents {
        let seen = Arc::clone(&seen);
        root = root.child(
            system
                .agent(AgentSpec::new(format!("c{i}"), move || Caller {
                    seen: Arc::clone(&seen),
                }))
                .unwrap(),
        );
    }
    system.start(root).await.unwrap();
    (system, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bulkheads_limit_is_never_exceeded_by_agents_on_a_multi_thread_runtime() {
    const LIMIT: usize = 2;
    let (system, seen) = system(6, LIMIT).await;
    let mut asks = Vec::new();
    for i in 0..6 {
        let caller = system.agent_ref::<Caller>(&format!("c{i}")).unwrap();
        asks.push(tokio::spawn(async move {
            for _ in 0..50 {
                let task = Enter {
                    bulkhead: "model-calls",
                    hold: Duration::ZERO,
                    wait: None,
                };
                assert_eq!(caller.ask(task).await.unwrap(), "entered");
            }
        }));
    }
    for ask in asks {
        ask.await.unwrap();
    }
    let most = seen.most.load(Ordering::SeqCst);
    assert!(most <= LIMIT, "{most} calls inside a bulkhead of {LIMIT}");
    let snapshot = &system.bulkheads()[0];
    assert_eq!(&*snapshot.name, "model-calls");
    assert_eq!(
        (snapshot.limit, snapshot.in_use, snapshot.waiting),
        (LIMIT, 0, 0)
    );
    assert_eq!(snapshot.timeouts_total, 0);
    system.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_permit_wait_ends_at_the_tasks_deadline_or_sooner_if_asked() {
    let (system, seen) = system(2, 1).await;
    let holder = system.agent_ref::<Caller>("c0").unwrap();
    let waiter = system.agent_ref::<Caller>("c1").unwrap();
    let hold = tokio::spawn(async move {
        let task = Enter {
            bulkhead: "model-calls",
            hold: Duration::from_secs(30),
            wait: None,
        };
        holder.ask(task).await
    });
    tokio::task::yield_now().await;
    assert_eq!(system.bulkheads()[0].in_use, 1);

    // Bounded by the task's deadline: the caller hears at the deadline, no waiter is left.
    let start = Instant::now();
    let task = Enter {
        bulkhead: "model-calls",
        hold: Duration::ZERO,
        wait: None,
    };
    let waited = waiter.ask_within(task, Duration::from_secs(5)).await;
    assert!(
        matches!(waited, Err(AskError::Timeout { .. })),
        "{waited:?}"
    );
    assert_eq!(start.elapsed(), Duration::from_secs(5));
    yield_until("the wait ended", || system.bulkheads()[0].waiting == 0).await;

    // Bounded sooner: the handler gets the typed error and fails its task as rate-limited.
    let start = Instant::now();
    let task = Enter {
        bulkhead: "model-calls",
        hold: Duration::ZERO,
        wait: Some(Duration::from_secs(1)),
    };
    let failed = waiter
        .ask_within(task, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    assert!(
        matches!(failed.class(), ErrorClass::RateLimited { .. }),
        "{failed}"
    );
    let refusals = seen.refusals.lock().unwrap().clone();
    let (at, error) = refusals.last().unwrap();
    assert_eq!(
        *at - start,
        Duration::from_secs(1),
        "the wait ended when asked"
    );
    assert!(matches!(error, BulkheadError::Timeout { name, .. } if name == "model-calls"));
    let snapshot = &system.bulkheads()[0];
    assert_eq!(
        (snapshot.in_use, snapshot.waiting, snapshot.waits_total),
        (1, 0, 2)
    );
    assert!(snapshot.timeouts_total >= 1);
    assert_eq!(hold.await.unwrap().unwrap(), "entered");
}

#[tokio::test(start_paused = true)]
async fn an_unknown_bulkhead_is_a_typed_error_at_once() {
    let (system, seen) = system(1, 1).await;
    let caller = system.agent_ref::<Caller>("c0").unwrap();
    let start = Instant::now();
    let failed = caller
        .ask(Enter {
            bulkhead: "tool-calls",
            hold: Duration::ZERO,
            wait: None,
        })
        .await
        .unwrap_err();
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert!(
        failed
            .to_string()
            .contains("no bulkhead named 'tool-calls'"),
        "{failed}"
    );
    let refusals = seen.refusals.lock().unwrap().clone();
    assert_eq!(
        refusals[0].1,
        BulkheadError::Unknown {
            name: "tool-calls".into()
        }
    );
}

#[test]
fn bulkheads_with_one_name_or_no_permits_are_refused_at_build() {
    let duplicate = System::builder().bulkhead("a", 1).bulkhead("a", 2).build();
    assert!(matches!(duplicate, Err(SystemError::DuplicateBulkhead(name)) if name == "a"));
    let empty = System::builder().bulkhead("a", 0).build();
    assert!(matches!(
        empty,
        Err(SystemError::Bulkhead(BulkheadError::InvalidLimit {
            limit: 0,
            ..
        }))
    ));
}
