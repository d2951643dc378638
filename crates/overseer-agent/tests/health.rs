//! Health checks and readiness: a failing check marks the agent unhealthy and refuses its
//! work, a passing one takes it back; N failures in a row restart it through its supervisor,
//! counting toward intensity; checks never run beside a task; readiness reflects a trip and an
//! escalated root. Paused clock.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use overseer_agent::{
    Agent, AgentContext, AgentError, AgentSpec, AskError, Health, HealthCheck, System, SystemEvent,
};
use overseer_budget::{Budget, TripReason};
use overseer_supervisor::{EventKind, ExitReason, SupervisorSpec};
use tokio::time::Instant;

const EVERY: Duration = Duration::from_secs(10);

/// The world a prober's checks see: whether its dependency is up, how many checks ran, and
/// whether one ever ran beside a task.
#[derive(Default)]
struct Probe {
    down: AtomicBool,
    /// The check hangs instead of failing.
    silent: AtomicBool,
    checks: AtomicU32,
    incarnations: AtomicU32,
    in_task: AtomicBool,
    overlapped: AtomicBool,
}

struct Prober {
    probe: Arc<Probe>,
}

impl Prober {
    fn new(probe: &Arc<Probe>) -> impl Fn() -> Prober + Send + Sync {
        let probe = Arc::clone(probe);
        move || {
            probe.incarnations.fetch_add(1, Ordering::SeqCst);
            Prober {
                probe: Arc::clone(&probe),
            }
        }
    }
}

impl Agent for Prober {
    /// How long the task works.
    type Task = Duration;
    type Output = u32;

    async fn handle(&mut self, _: &mut AgentContext, work: Duration) -> Result<u32, AgentError> {
        self.probe.in_task.store(true, Ordering::SeqCst);
        tokio::time::sleep(work).await;
        self.probe.in_task.store(false, Ordering::SeqCst);
        Ok(self.probe.incarnations.load(Ordering::SeqCst))
    }

    async fn health_check(&mut self, _: &mut AgentContext) -> Result<(), AgentError> {
        if self.probe.in_task.load(Ordering::SeqCst) {
            self.probe.overlapped.store(true, Ordering::SeqCst);
        }
        self.probe.checks.fetch_add(1, Ordering::SeqCst);
        if self.probe.silent.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        if self.probe.down.load(Ordering::SeqCst) {
            return Err(AgentError::failed("model endpoint unreachable"));
        }
        Ok(())
    }
}

async fn system_with(check: HealthCheck, probe: &Arc<Probe>, intensity: u32) -> System {
    system_over(System::builder().build().unwrap(), check, probe, intensity).await
}

async fn system_over(
    system: System,
    check: HealthCheck,
    probe: &Arc<Probe>,
    intensity: u32,
) -> System {
    let spec = AgentSpec::new("prober", Prober::new(probe))
        .health_check(check)
        .ask_timeout(Duration::from_secs(600));
    let root = SupervisorSpec::one_for_one("root")
        .intensity(intensity, Duration::from_secs(3600))
        .child(system.agent(spec).unwrap());
    system.start(root).await.unwrap();
    system
}

fn health_of(system: &System) -> Health {
    system.health()[0].health
}

/// Waits (on the paused clock) until `done` holds, for at most `limit` of tokio time.
async fn advance_until(limit: Duration, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < until, "not reached within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_failing_check_refuses_work_until_a_check_passes() {
    let probe = Arc::new(Probe::default());
    let check = HealthCheck::every(EVERY).restart_after(0);
    let system = system_with(check, &probe, 10).await;
    let mut events = system.subscribe();
    let prober = system.agent_ref::<Prober>("prober").unwrap();
    assert_eq!(health_of(&system), Health::Unchecked);

    // The first check, one interval in, passes.
    tokio::time::sleep(EVERY + Duration::from_millis(1)).await;
    assert_eq!(probe.checks.load(Ordering::SeqCst), 1);
    assert_eq!(health_of(&system), Health::Healthy);

    // The dependency goes down: the next check fails, the agent refuses work.
    probe.down.store(true, Ordering::SeqCst);
    tokio::time::sleep(EVERY).await;
    assert_eq!(health_of(&system), Health::Unhealthy { failures: 1 });
    assert_eq!(
        prober.ask(Duration::ZERO).await,
        Err(AskError::Unhealthy {
            agent: "prober".into()
        })
    );
    assert!(
        !system.readiness().is_ready(1.0),
        "one of one agents unhealthy"
    );
    assert!(system.readiness().is_ready(0.0));
    tokio::time::sleep(EVERY).await;
    assert_eq!(health_of(&system), Health::Unhealthy { failures: 2 });

    // Back up: the next check passes and work is taken again, by the same incarnation.
    probe.down.store(false, Ordering::SeqCst);
    tokio::time::sleep(EVERY).await;
    assert_eq!(health_of(&system), Health::Healthy);
    assert_eq!(prober.ask(Duration::ZERO).await, Ok(1));

    let mut seen = Vec::new();
    while let Ok(event) = events.try_recv() {
        if let SystemEvent::Health(event) = event {
            seen.push((event.health, event.failure.is_some(), event.restarting));
        }
    }
    assert_eq!(
        seen,
        [
            (Health::Unhealthy { failures: 1 }, true, false),
            (Health::Unhealthy { failures: 2 }, true, false),
            (Health::Healthy, false, false),
        ],
        "each failure and the recovery, not every pass"
    );
}

#[tokio::test(start_paused = true)]
async fn failures_in_a_row_restart_the_agent_through_its_supervisor() {
    let probe = Arc::new(Probe::default());
    let check = HealthCheck::every(EVERY).restart_after(3);
    let system = system_with(check, &probe, 10).await;
    let mut events = system.subscribe();
    let prober = system.agent_ref::<Prober>("prober").unwrap();
    probe.down.store(true, Ordering::SeqCst);
    // Three failures: at 10, 20 and 30 s; restarted at the third.
    tokio::time::sleep(3 * EVERY - Duration::from_millis(1)).await;
    assert_eq!(probe.incarnations.load(Ordering::SeqCst), 1, "not before");
    tokio::time::sleep(Duration::from_millis(2)).await;
    advance_until(Duration::from_secs(1), || {
        probe.incarnations.load(Ordering::SeqCst) == 2
    })
    .await;
    let mut stopped = None;
    while let Ok(event) = events.try_recv() {
        if let SystemEvent::Lifecycle(event) = event {
            if let EventKind::Stopped { reason } = event.kind {
                stopped = Some(reason);
            }
        }
    }
    assert_eq!(
        stopped,
        Some(ExitReason::Unhealthy("model endpoint unreachable".into()))
    );
    // The new incarnation is unchecked and takes work.
    assert_eq!(health_of(&system), Health::Unchecked);
    assert_eq!(prober.ask(Duration::ZERO).await, Ok(2));
}

#[tokio::test(start_paused = true)]
async fn health_restarts_count_toward_intensity_and_escalate() {
    let probe = Arc::new(Probe::default());
    // One failure restarts; the root allows one restart an hour.
    let check = HealthCheck::every(EVERY).restart_after(1);
    let system = system_with(check, &probe, 1).await;
    assert!(system.readiness().is_ready(1.0));
    probe.down.store(true, Ordering::SeqCst);
    let tree_stopped = || !system.readiness().running;
    advance_until(3 * EVERY, tree_stopped).await;
    assert_eq!(
        probe.incarnations.load(Ordering::SeqCst),
        2,
        "one restart, then escalated"
    );
    let readiness = system.readiness();
    assert!(!readiness.is_ready(0.0));
}

#[tokio::test(start_paused = true)]
async fn a_silent_check_fails_at_its_timeout() {
    let probe = Arc::new(Probe::default());
    let check = HealthCheck::every(EVERY)
        .timeout(Duration::from_secs(2))
        .restart_after(0);
    let system = system_with(check, &probe, 10).await;
    let mut events = system.subscribe();
    probe.silent.store(true, Ordering::SeqCst);
    tokio::time::sleep(EVERY + Duration::from_secs(2) - Duration::from_millis(1)).await;
    assert_eq!(
        health_of(&system),
        Health::Unchecked,
        "not before the timeout"
    );
    tokio::time::sleep(Duration::from_millis(2)).await;
    assert_eq!(health_of(&system), Health::Unhealthy { failures: 1 });
    let failure = loop {
        if let SystemEvent::Health(event) = events.try_recv().expect("a health event") {
            break event.failure;
        }
    };
    assert_eq!(failure.as_deref(), Some("no answer within 2s"));
}

#[tokio::test(start_paused = true)]
async fn checks_never_run_beside_a_task_and_wait_while_work_is_queued() {
    let probe = Arc::new(Probe::default());
    let check = HealthCheck::every(Duration::from_secs(1)).restart_after(0);
    let system = system_with(check, &probe, 10).await;
    let prober = system.agent_ref::<Prober>("prober").unwrap();
    // 30 s of back-to-back tasks, 2.5 s each: the checks that fall due meanwhile are skipped
    // (the agent is busy), never run beside one.
    let asked = Instant::now();
    let mut asks = Vec::new();
    for _ in 0..12 {
        let prober = prober.clone();
        asks.push(tokio::spawn(async move {
            prober.ask(Duration::from_millis(2_500)).await
        }));
    }
    for ask in asks {
        assert_eq!(ask.await.unwrap(), Ok(1));
    }
    assert_eq!(asked.elapsed(), Duration::from_secs(30));
    assert!(!probe.overlapped.load(Ordering::SeqCst));
    let during = probe.checks.load(Ordering::SeqCst);
    assert!(
        during <= 12,
        "at most one check between two tasks, ran {during}"
    );
    // Idle again: checks resume every second.
    tokio::time::sleep(Duration::from_millis(5_500)).await;
    let after = probe.checks.load(Ordering::SeqCst) - during;
    assert!(
        (5..=6).contains(&after),
        "idle checks ran {after} times in 5.5 s"
    );
    assert!(!probe.overlapped.load(Ordering::SeqCst));
}

#[tokio::test(start_paused = true)]
async fn readiness_reflects_a_trip() {
    let probe = Arc::new(Probe::default());
    let budget = Budget::builder().build().unwrap();
    let system = System::builder().budget(budget.clone()).build().unwrap();
    let check = HealthCheck::every(EVERY);
    let system = system_over(system, check, &probe, 10).await;
    let ready = system.readiness();
    assert!(ready.is_ready(1.0), "{ready:?}");
    assert_eq!((ready.agents, ready.healthy), (1, 1));
    budget.trip(TripReason::Manual {
        reason: "operator said stop".into(),
    });
    let tripped = system.readiness();
    assert!(tripped.tripped.is_some());
    assert!(!tripped.is_ready(0.0));
}

#[tokio::test]
async fn a_zero_interval_or_timeout_is_refused_when_declared() {
    let probe = Arc::new(Probe::default());
    let system = System::builder().build().unwrap();
    for check in [
        HealthCheck::every(Duration::ZERO),
        HealthCheck::every(EVERY).timeout(Duration::ZERO),
    ] {
        let spec = AgentSpec::new("prober", Prober::new(&probe)).health_check(check);
        assert!(matches!(
            system.agent(spec),
            Err(overseer_agent::SystemError::ZeroTimeout(name)) if name == "prober"
        ));
    }
}
