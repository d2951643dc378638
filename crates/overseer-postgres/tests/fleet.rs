//! A fleet-wide budget in the agent layer, against a real server: two `System`s (each with its
//! own pool, as two processes have) share one limit through their budgets. Concurrent asks of
//! both never take the fleet past it; a trip in one (spent, or by hand) trips the other's kill
//! switch within one heartbeat: its asks are refused with `KillSwitchTripped` and its tree stops.

mod common;

use std::sync::Arc;
use std::time::Duration;

use overseer_agent::{Agent, AgentContext, AgentError, AgentSpec, AskError, System, Usage};
use overseer_budget::{Budget, Dimension, Refusal, SharedLimit, TripReason};
use overseer_postgres::{FleetLimit, PgOptions, PgStore};
use overseer_supervisor::SupervisorSpec;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

const HEARTBEAT: Duration = Duration::from_millis(200);

/// Estimates a task at its first figure, in tokens, and spends its second.
struct Spender;

impl Agent for Spender {
    type Task = (u64, u64);
    type Output = u64;

    async fn handle(
        &mut self,
        ctx: &mut AgentContext,
        (_, spent): (u64, u64),
    ) -> Result<u64, AgentError> {
        ctx.report_usage(Usage::new(spent, 0, 0));
        tokio::task::yield_now().await;
        Ok(spent)
    }

    fn estimate(&(estimate, _): &(u64, u64)) -> Usage {
        Usage::new(estimate, 0, 0)
    }
}

/// One "process": its own store, its handle on the shared limit, a budget built with it, and a
/// system governed by that budget.
struct Process {
    fleet: Arc<FleetLimit>,
    budget: Budget,
    system: System,
}

impl Process {
    async fn start(url: &str, limit: &str) -> Process {
        let store = PgStore::connect(url, PgOptions::default().pool_size(4))
            .await
            .expect("a store");
        let fleet = Arc::new(
            FleetLimit::watch_limit(store, limit, HEARTBEAT)
                .await
                .expect("the limit is defined"),
        );
        let shared: Arc<dyn SharedLimit> = fleet.clone();
        let budget = Budget::builder()
            .shared_limit(Dimension::Tokens, shared)
            .build()
            .expect("a budget");
        let system = System::builder()
            .ask_timeout(Duration::from_secs(30))
            .budget(budget.clone())
            .build()
            .expect("a system");
        let root = SupervisorSpec::one_for_one("root")
            .child(system.agent(AgentSpec::new("spender", || Spender)).unwrap());
        system.start(root).await.expect("the tree starts");
        Process {
            fleet,
            budget,
            system,
        }
    }

    async fn ask(&self, task: (u64, u64)) -> Result<u64, AskError> {
        let agent = self.system.agent_ref::<Spender>("spender").unwrap();
        agent.ask(task).await
    }

    /// Polls (every 5 ms, up to `within`) until this process's kill switch has tripped: how long
    /// it took, or `None`.
    async fn tripped_within(&self, within: Duration) -> Option<Duration> {
        let started = Instant::now();
        while started.elapsed() <= within {
            if self.budget.is_tripped() {
                return Some(started.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        None
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_systems_asking_concurrently_never_take_the_fleet_past_its_limit() {
    let Some((_server, url, admin)) = common::store().await else {
        return;
    };
    const LIMIT: u64 = 1_000;
    for seed in 0..3u64 {
        let name = format!("tokens-{seed}");
        admin.define_limit(&name, LIMIT).await.unwrap();
        let processes = [
            Arc::new(Process::start(&url, &name).await),
            Arc::new(Process::start(&url, &name).await),
        ];
        let mut askers = Vec::new();
        for (p, process) in processes.iter().enumerate() {
            for asker in 0..6u64 {
                let process = Arc::clone(process);
                let mut rng = StdRng::seed_from_u64(seed * 100 + p as u64 * 10 + asker);
                askers.push(tokio::spawn(async move {
                    let (mut spent, mut refused) = (0u64, 0u32);
                    for _ in 0..12 {
                        let estimate = rng.random_range(1..=70);
                        let spend = rng.random_range(estimate / 2..=estimate);
                        match process.ask((estimate, spend)).await {
                            Ok(tokens) => spent += tokens,
                            Err(AskError::BudgetExceeded {
                                refusal: Refusal::FleetLimitExceeded { .. },
                                ..
                            }) => refused += 1,
                            // The fleet's committed spend reached the limit exactly.
                            Err(AskError::KillSwitchTripped { .. }) => break,
                            Err(other) => panic!("seed {seed}: {other:?}"),
                        }
                    }
                    (spent, refused)
                }));
            }
        }
        let (mut spent, mut refused) = (0, 0);
        for asker in askers {
            let (s, r) = asker.await.unwrap();
            spent += s;
            refused += r;
        }
        for process in &processes {
            process.fleet.settled().await;
        }
        let state = admin.limit_state(&name).await.unwrap();
        assert!(state.committed <= LIMIT, "seed {seed}: {state:?}");
        assert_eq!(
            state.committed, spent,
            "seed {seed}: the database committed what the two systems' asks spent"
        );
        assert_eq!(state.reserved, 0, "seed {seed}: every hold settled");
        // 144 asks of up to 70 against 1,000: the limit was reached and held.
        assert!(
            refused > 0 || state.committed == LIMIT,
            "seed {seed}: the limit was never tested ({state:?})"
        );
        for process in &processes {
            process.system.shutdown(Duration::from_secs(5)).await.ok();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_trip_in_one_system_trips_the_other_within_a_heartbeat() {
    let Some((_server, url, admin)) = common::store().await else {
        return;
    };
    admin.define_limit("tokens", 1_000_000).await.unwrap();
    let a = Process::start(&url, "tokens").await;
    let b = Process::start(&url, "tokens").await;
    assert_eq!(b.ask((10, 10)).await.unwrap(), 10);

    a.budget
        .trip(TripReason::manual("operator: stop the fleet"));
    let took = b
        .tripped_within(HEARTBEAT * 5)
        .await
        .expect("the other system's kill switch trips");
    // The trip's write (a background round trip), at most one heartbeat, and scheduling on a
    // loaded machine.
    assert!(took <= HEARTBEAT * 3, "seen after {took:?}");

    let refused = b.ask((10, 10)).await.unwrap_err();
    match &refused {
        AskError::KillSwitchTripped {
            reason: TripReason::Fleet { limit, reason },
        } => {
            assert_eq!(&**limit, "tokens");
            assert!(reason.contains("operator: stop the fleet"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        b.system
            .tree()
            .unwrap()
            .wait_for_exit(Duration::from_secs(10))
            .await,
        "the other system's agents stop"
    );
    let trip = admin.limit_trip("tokens").await.unwrap();
    assert!(trip.is_some_and(|reason| reason.contains("operator")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spending_the_limit_in_one_system_trips_the_other_within_a_heartbeat() {
    let Some((_server, url, admin)) = common::store().await else {
        return;
    };
    admin.define_limit("tokens", 300).await.unwrap();
    let a = Process::start(&url, "tokens").await;
    let b = Process::start(&url, "tokens").await;
    for _ in 0..3 {
        assert_eq!(a.ask((100, 100)).await.unwrap(), 100);
    }
    let mut spent = a.fleet.watch();
    tokio::time::timeout(Duration::from_secs(5), spent.wait_for(Option::is_some))
        .await
        .expect("the committing process learns of the trip from its own commit")
        .unwrap();
    let took = b
        .tripped_within(HEARTBEAT * 5)
        .await
        .expect("the other system's kill switch trips");
    assert!(took <= HEARTBEAT * 3, "seen after {took:?}");
    assert!(a.budget.is_tripped());
    assert!(matches!(
        b.ask((1, 1)).await,
        Err(AskError::KillSwitchTripped {
            reason: TripReason::Fleet { .. }
        })
    ));
    let state = admin.limit_state("tokens").await.unwrap();
    assert_eq!((state.committed, state.reserved), (300, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_or_unreachable_fleet_limit_refuses_the_ask_and_holds_nothing() {
    let Some((server, url, admin)) = common::store().await else {
        return;
    };
    admin.define_limit("tokens", 100).await.unwrap();
    let a = Process::start(&url, "tokens").await;
    let refused = a.ask((150, 10)).await.unwrap_err();
    assert!(
        matches!(
            &refused,
            AskError::BudgetExceeded {
                refusal: Refusal::FleetLimitExceeded {
                    requested: 150,
                    remaining: 100,
                    limit: 100,
                    ..
                },
                ..
            }
        ),
        "{refused:?}"
    );
    assert!(!a.budget.is_tripped(), "a refusal refuses that ask only");
    // The server goes away: asks are refused (fail closed), nothing waits forever.
    server.stop();
    let unreachable = tokio::time::timeout(Duration::from_secs(20), a.ask((10, 10)))
        .await
        .expect("the refusal comes within the connect timeout")
        .unwrap_err();
    assert!(
        matches!(
            &unreachable,
            AskError::BudgetExceeded {
                refusal: Refusal::SharedLimitUnavailable { .. },
                ..
            }
        ),
        "{unreachable:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tells_of_two_systems_never_take_the_fleet_past_its_limit() {
    let Some((_server, url, admin)) = common::store().await else {
        return;
    };
    const LIMIT: u64 = 1_000;
    admin.define_limit("tell-tokens", LIMIT).await.unwrap();
    let processes = [
        Process::start(&url, "tell-tokens").await,
        Process::start(&url, "tell-tokens").await,
    ];
    // 2 x 15 tells of 100 tokens, queued at once: three times the limit. A tell does not wait,
    // so each holds its estimate in the database on the agent's side, before it runs.
    for process in &processes {
        let agent = process.system.agent_ref::<Spender>("spender").unwrap();
        for _ in 0..15 {
            match agent.tell((100, 100)) {
                Ok(()) | Err(AskError::KillSwitchTripped { .. }) => {}
                Err(other) => panic!("{other:?}"),
            }
        }
    }
    // An ask queued behind the tells is answered once they have run or failed.
    for process in &processes {
        let _ = process.ask((0, 0)).await;
    }
    for process in &processes {
        process.system.shutdown(Duration::from_secs(5)).await.ok();
        process.fleet.settled().await;
    }
    let state = admin.limit_state("tell-tokens").await.unwrap();
    assert!(
        state.committed <= LIMIT,
        "the tells spent past the limit: {state:?}"
    );
    assert!(state.committed >= 100, "no tell ran: {state:?}");
    assert_eq!(state.reserved, 0, "every hold settled: {state:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_processs_holds_expire_and_a_late_settlement_still_counts() {
    let Some((_server, url, admin)) = common::store().await else {
        return;
    };
    admin.define_limit("leased", 1_000).await.unwrap();
    let connect = || async {
        PgStore::connect(&url, PgOptions::default().pool_size(2))
            .await
            .expect("a store")
    };
    // Holds live three heartbeats (3 s here) unless the heartbeat renews them.
    let dead = FleetLimit::watch_limit(connect().await, "leased", Duration::from_secs(1))
        .await
        .unwrap();
    let orphan = dead.hold(600).await.expect("held");
    // The process dies: its heartbeat stops, and nothing settles its hold.
    drop(dead);
    let alive = FleetLimit::watch_limit(connect().await, "leased", HEARTBEAT)
        .await
        .unwrap();
    assert!(
        alive.hold(600).await.is_err(),
        "until it expires, the dead process's hold counts"
    );
    let started = Instant::now();
    let held = loop {
        match alive.hold(600).await {
            Ok(hold) => break hold,
            Err(_) if started.elapsed() < Duration::from_secs(15) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(refusal) => panic!("the dead process's hold never expired: {refusal:?}"),
        }
    };
    let state = admin.limit_state("leased").await.unwrap();
    assert_eq!(
        state.reserved, 600,
        "only the live hold is reserved: {state:?}"
    );
    // The live process's hold outlives its ttl: its heartbeat renews it.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert!(alive.hold(500).await.is_err(), "the live hold was renewed");
    // A late settlement of the swept hold still commits what it spent.
    alive.settle(orphan, Some(100));
    alive.settle(held, Some(600));
    alive.settled().await;
    let state = admin.limit_state("leased").await.unwrap();
    assert_eq!((state.committed, state.reserved), (700, 0), "{state:?}");
}
