//! Bounded queues and load shedding (issue 19): an agent's queue holds at most its capacity;
//! an ask or tell beyond it is refused at once with `AskError::QueueFull` and releases what
//! admitting it took, or (if the agent lets asks wait) waits for room within its deadline; what
//! was admitted always completes.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use overseer_agent::{
    Agent, AgentContext, AgentError, AgentSpec, AskError, Classify, ErrorClass, QueueDepth, System,
    SystemError, Usage,
};
use overseer_budget::{Budget, Dimension, Limits};
use overseer_supervisor::SupervisorSpec;
use tokio::sync::{mpsc, Semaphore};

/// Waits for a permit of `gate` before answering each task, and says when it has started one.
struct Gated {
    gate: Arc<Semaphore>,
    started: mpsc::UnboundedSender<u32>,
    handled: Arc<AtomicU32>,
}

impl Agent for Gated {
    type Task = u32;
    type Output = u32;

    fn estimate(_: &u32) -> Usage {
        Usage::new(10, 0, 0)
    }

    async fn handle(&mut self, _: &mut AgentContext, n: u32) -> Result<u32, AgentError> {
        let _ = self.started.send(n);
        let permit = self
            .gate
            .acquire()
            .await
            .map_err(|closed| AgentError::fatal(closed.to_string()))?;
        permit.forget();
        self.handled.fetch_add(1, Ordering::SeqCst);
        Ok(n)
    }
}

struct Harness {
    system: System,
    gate: Arc<Semaphore>,
    started: mpsc::UnboundedReceiver<u32>,
    handled: Arc<AtomicU32>,
    budget: Budget,
}

async fn gated(spec: impl FnOnce(AgentSpec<Gated>) -> AgentSpec<Gated>) -> Harness {
    let budget = Budget::builder()
        .process_limits(Limits::new().tokens(1_000_000))
        .build()
        .unwrap();
    let system = System::builder()
        .ask_timeout(Duration::from_secs(60))
        .budget(budget.clone())
        .build()
        .unwrap();
    let gate = Arc::new(Semaphore::new(0));
    let (tx, started) = mpsc::unbounded_channel();
    let handled = Arc::new(AtomicU32::new(0));
    let (g, h) = (Arc::clone(&gate), Arc::clone(&handled));
    let agent = AgentSpec::new("worker", move || Gated {
        gate: Arc::clone(&g),
        started: tx.clone(),
        handled: Arc::clone(&h),
    });
    let root = SupervisorSpec::one_for_one("root").child(system.agent(spec(agent)).unwrap());
    system.start(root).await.unwrap();
    Harness {
        system,
        gate,
        started,
        handled,
        budget,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_ten_times_the_capacity_is_shed_exactly_and_what_was_admitted_completes() {
    const CAPACITY: usize = 8;
    const BURST: usize = 10 * CAPACITY;
    let mut h = gated(|spec| spec.queue_capacity(CAPACITY)).await;
    let worker = h.system.agent_ref::<Gated>("worker").unwrap();
    // One task in the handler, so that the queue alone holds the burst.
    let first = tokio::spawn({
        let worker = worker.clone();
        async move { worker.ask(0).await }
    });
    assert_eq!(h.started.recv().await, Some(0));
    // The burst, from many tasks at once.
    let asks: Vec<_> = (1..=BURST as u32)
        .map(|n| {
            let worker = worker.clone();
            tokio::spawn(async move { worker.ask(n).await })
        })
        .collect();
    // Wait (bounded) until every ask is either queued or refused.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let finished = asks.iter().filter(|ask| ask.is_finished()).count();
        let queued = worker.queue_len();
        if finished + queued == BURST {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the burst never settled: {finished} refused, {queued} queued"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(worker.queue_len(), CAPACITY);
    let depths: Vec<(String, usize, usize)> = h
        .system
        .queue_depths()
        .into_iter()
        .map(
            |QueueDepth {
                 agent,
                 queued,
                 capacity,
                 ..
             }| (agent.to_string(), queued, capacity),
        )
        .collect();
    assert_eq!(depths, [("worker".to_string(), CAPACITY, CAPACITY)]);
    // The refused asks reserved nothing that stays reserved: only the admitted hold theirs.
    let reserved = h.budget.process().reserved(Dimension::Tokens);
    assert_eq!(reserved, 10 * (CAPACITY as u64 + 1));
    h.gate.add_permits(BURST + 1);
    let mut answered = 0;
    let mut refused = 0;
    for ask in asks {
        match ask.await.unwrap() {
            Ok(_) => answered += 1,
            Err(error @ AskError::QueueFull { .. }) => {
                assert_eq!(error.class(), ErrorClass::RateLimited { retry_after: None });
                assert!(error.may_fall_back());
                refused += 1;
            }
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(first.await.unwrap().unwrap(), 0);
    assert_eq!((answered, refused), (CAPACITY, BURST - CAPACITY));
    assert_eq!(h.handled.load(Ordering::SeqCst), CAPACITY as u32 + 1);
    assert_eq!(h.budget.process().reserved(Dimension::Tokens), 0);
    h.system.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_tell_beyond_the_capacity_is_refused_at_once() {
    let mut h = gated(|spec| spec.queue_capacity(1)).await;
    let worker = h.system.agent_ref::<Gated>("worker").unwrap();
    worker.tell(1).unwrap();
    assert_eq!(h.started.recv().await, Some(1));
    worker.tell(2).unwrap();
    let refused = worker.tell(3).unwrap_err();
    assert_eq!(
        refused,
        AskError::QueueFull {
            agent: "worker".into(),
            capacity: 1
        }
    );
    assert_eq!(
        refused.to_string(),
        "agent 'worker' is overloaded: its queue holds 1 tasks, its capacity"
    );
    h.gate.add_permits(2);
    assert_eq!(h.started.recv().await, Some(2));
    h.system.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn an_agent_that_lets_asks_wait_takes_them_when_room_comes_or_times_them_out() {
    let mut h = gated(|spec| spec.queue_capacity(1).wait_for_room(true)).await;
    let worker = h.system.agent_ref::<Gated>("worker").unwrap();
    let first = tokio::spawn({
        let worker = worker.clone();
        async move { worker.ask(1).await }
    });
    assert_eq!(h.started.recv().await, Some(1));
    let second = tokio::spawn({
        let worker = worker.clone();
        async move { worker.ask(2).await }
    });
    // The third finds the queue full and waits for room.
    let third = tokio::spawn({
        let worker = worker.clone();
        async move { worker.ask(3).await }
    });
    // A fourth with a short deadline never finds room in time.
    let timed_out = worker
        .ask_within(4, Duration::from_secs(2))
        .await
        .unwrap_err();
    assert!(
        matches!(timed_out, AskError::Timeout { after, .. } if after == Duration::from_secs(2)),
        "{timed_out:?}"
    );
    assert!(!third.is_finished());
    h.gate.add_permits(3);
    assert_eq!(first.await.unwrap().unwrap(), 1);
    assert_eq!(second.await.unwrap().unwrap(), 2);
    assert_eq!(third.await.unwrap().unwrap(), 3);
    assert_eq!(h.handled.load(Ordering::SeqCst), 3);
    assert_eq!(h.budget.process().reserved(Dimension::Tokens), 0);
    h.system.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn a_queue_capacity_of_zero_is_refused_when_the_agent_is_declared() {
    let system = System::builder().build().unwrap();
    let (tx, _rx) = mpsc::unbounded_channel();
    let spec = AgentSpec::new("worker", move || Gated {
        gate: Arc::new(Semaphore::new(0)),
        started: tx.clone(),
        handled: Arc::default(),
    })
    .queue_capacity(0);
    assert!(matches!(
        system.agent(spec),
        Err(SystemError::ZeroQueueCapacity(name)) if name == "worker"
    ));
}
