//! The kill switch and budgets in the call path: every trigger, tiers, no overshoot, each
//! in-flight policy, the tree stopped after a trip; a refused reservation fails that ask
//! only, after a warning. Paused clock.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use overseer_agent::{
    Agent, AgentContext, AgentError, AgentSpec, AskError, AskOutcome, System, SystemEvent, Usage,
};
use overseer_budget::{
    Budget, Dimension, ErrorRateTrigger, InFlightPolicy, Limits, Refusal, Scope, Tiers, TripReason,
};
use overseer_supervisor::SupervisorSpec;
use tokio::time::Instant;

/// Estimates every task at 70 tokens and spends the tokens its task says (issue 14's agent).
struct Frugal;

impl Agent for Frugal {
    type Task = u64;
    type Output = u64;

    async fn handle(&mut self, ctx: &mut AgentContext, tokens: u64) -> Result<u64, AgentError> {
        ctx.report_usage(Usage::new(tokens, 0, 0));
        Ok(tokens)
    }

    fn estimate(_: &u64) -> Usage {
        Usage::new(70, 0, 0)
    }
}

/// What the stream says, in a word: warnings, asks (by agent and outcome kind), trips.
fn story(events: &[SystemEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|event| match event {
            SystemEvent::BudgetWarning(w) => Some(format!(
                "warning {} {} tier {} at {}",
                w.warning.scope, w.warning.dimension, w.warning.tier.level, w.warning.used
            )),
            SystemEvent::Ask(ask) => Some(match &ask.outcome {
                AskOutcome::Ok => format!("{} ok", ask.agent),
                AskOutcome::Error { kind, .. } => format!("{} {kind}", ask.agent),
            }),
            SystemEvent::KillSwitchTripped(_) => Some("tripped".to_string()),
            _ => None,
        })
        .collect()
}

async fn governed(budget: Budget, agents: &[&str]) -> System {
    let system = System::builder()
        .ask_timeout(Duration::from_secs(60))
        .budget(budget)
        .build()
        .unwrap();
    let mut root = SupervisorSpec::one_for_one("root").intensity(100, Duration::from_secs(1));
    for name in agents {
        root = root.child(system.agent(AgentSpec::new(*name, Tester::new)).unwrap());
    }
    system.start(root).await.unwrap();
    system
}

fn events(rx: &mut tokio::sync::broadcast::Receiver<SystemEvent>) -> Vec<SystemEvent> {
    std::iter::from_fn(|| rx.try_recv().ok()).collect()
}

/// Waits (paused clock) until the tree has stopped after a trip.
async fn tree_stops(system: &System) {
    assert!(
        system
            .tree()
            .unwrap()
            .wait_for_exit(Duration::from_secs(120))
            .await,
        "the tree stops after the trip"
    );
    assert!(!system.tree().unwrap().is_running());
}

#[tokio::test(start_paused = true)]
async fn a_token_limit_refuses_the_ask_that_would_cross_it_and_trips_once_spent() {
    let budget = Budget::builder()
        .process_limits(Limits::new().tokens(1_000))
        .build()
        .unwrap();
    let system = governed(budget.clone(), &["a", "b"]).await;
    let mut rx = system.subscribe();
    let a = system.agent_ref::<Tester>("a").unwrap();
    let b = system.agent_ref::<Tester>("b").unwrap();
    let spend = || Task::Spend(Usage::new(200, 100, 0)); // 300 tokens each
    assert!(a.ask(spend()).await.is_ok()); // 300
    assert!(b.ask(spend()).await.is_ok()); // 600
    assert!(a.ask(spend()).await.is_ok()); // 900: its reservation reaches 70, 85 and 90 %
    let refused = b.ask(spend()).await; // 1,200 would cross 1,000
    assert!(
        matches!(
            &refused,
            Err(AskError::BudgetExceeded {
                refusal: Refusal::LimitExceeded {
                    scope: Scope::Process,
                    dimension: Dimension::Tokens,
                    requested: 300,
                    remaining: 100,
                    committed: 900,
                    ..
                },
                ..
            })
        ),
        "{refused:?}"
    );
    assert!(!budget.is_tripped(), "a refusal refuses that ask only");
    assert!(system.tree().unwrap().is_running());
    assert_eq!(
        budget.process().committed(Dimension::Tokens),
        900,
        "never over the limit"
    );
    // Spend that reaches the limit trips the switch and stops the tree.
    assert!(a.ask(Task::Spend(Usage::new(60, 40, 0))).await.is_ok()); // 1,000
    assert!(matches!(
        budget.trip_report().map(|r| &r.reason),
        Some(TripReason::LimitReached {
            dimension: Dimension::Tokens,
            committed: 1_000,
            limit: 1_000
        })
    ));
    tree_stops(&system).await;
    assert!(matches!(
        a.ask(Task::Echo("after".into())).await,
        Err(AskError::KillSwitchTripped { .. })
    ));
    let seen = events(&mut rx);
    assert_eq!(
        story(&seen)[..8],
        [
            "a ok",
            "b ok",
            "warning process tokens tier 1 at 900",
            "warning process tokens tier 2 at 900",
            "warning process tokens tier 3 at 900",
            "a ok",
            "b budget_exceeded",
            "tripped",
        ],
        "each tier fires once, before the refusal; the trip comes with the spend"
    );
    let trips = seen
        .iter()
        .filter(|e| matches!(e, SystemEvent::KillSwitchTripped(_)))
        .count();
    assert_eq!(trips, 1);
}

/// Issue 14, in the call path: a process token limit of 150, estimates of 70, 42 spent per
/// ask. With 84 spent (56 %) and 66 left, the next ask is refused with a typed error naming
/// the limit, what it asked for and what is left; nothing trips, the other agents go on,
/// and a warning came first.
#[tokio::test(start_paused = true)]
async fn issue_14_a_refused_estimate_fails_that_ask_only_and_a_warning_came_first() {
    let budget = Budget::builder()
        .process_limits(Limits::new().tokens(150))
        .build()
        .unwrap();
    let system = System::builder()
        .ask_timeout(Duration::from_secs(60))
        .budget(budget.clone())
        .build()
        .unwrap();
    let root = SupervisorSpec::one_for_one("root")
        .child(system.agent(AgentSpec::new("a", || Frugal)).unwrap())
        .child(system.agent(AgentSpec::new("b", || Frugal)).unwrap())
        .child(system.agent(AgentSpec::new("c", Tester::new)).unwrap());
    system.start(root).await.unwrap();
    let mut rx = system.subscribe();
    let a = system.agent_ref::<Frugal>("a").unwrap();
    let b = system.agent_ref::<Frugal>("b").unwrap();
    let c = system.agent_ref::<Tester>("c").unwrap();

    assert_eq!(a.ask(42).await, Ok(42));
    assert_eq!(b.ask(42).await, Ok(42)); // reserved 42 + 70 = 112: past 70 % of 150
    assert_eq!(budget.process().committed(Dimension::Tokens), 84);
    let refused = a.ask(42).await.unwrap_err();
    assert_eq!(
        refused,
        AskError::BudgetExceeded {
            agent: "a".into(),
            refusal: Refusal::LimitExceeded {
                scope: Scope::Process,
                dimension: Dimension::Tokens,
                requested: 70,
                remaining: 66,
                limit: 150,
                committed: 84,
            },
        }
    );
    assert_eq!(
        refused.to_string(),
        "agent 'a' refused by its budget: process tokens limit: requested 70, remaining 66 of 150"
    );
    assert!(!budget.is_tripped(), "the run goes on");
    assert!(system.tree().unwrap().is_running());
    // Another agent whose estimate fits still works.
    assert!(c.ask(Task::Spend(Usage::new(30, 10, 0))).await.is_ok());
    assert_eq!(budget.process().committed(Dimension::Tokens), 124);
    assert!(!budget.is_tripped());

    assert_eq!(
        story(&events(&mut rx)),
        [
            "a ok",
            "warning process tokens tier 1 at 112",
            "b ok",
            "a budget_exceeded",
            "c ok", // 84 + 40 = 124: under 85 % (128)
        ]
    );
    system.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_hard_tier_trips_the_switch_once_committed_spend_reaches_it_and_stops_the_tree() {
    // The seeds' pattern: warnings at 70 % and 85 %, hard action at 90 %.
    let budget = Budget::builder()
        .process_limits(Limits::new().tokens(1_000))
        .tiers(Tiers::new(&[0.70, 0.85]).unwrap())
        .hard_tier(0.90)
        .build()
        .unwrap();
    let system = governed(budget.clone(), &["a", "b"]).await;
    let mut rx = system.subscribe();
    let a = system.agent_ref::<Tester>("a").unwrap();
    let b = system.agent_ref::<Tester>("b").unwrap();
    let spend = || Task::Spend(Usage::new(200, 100, 0)); // 300 tokens each
    assert!(a.ask(spend()).await.is_ok()); // 300
    assert!(b.ask(spend()).await.is_ok()); // 600
    assert!(!budget.is_tripped());
    assert!(a.ask(spend()).await.is_ok()); // 900 committed: the hard tier
    assert_eq!(
        budget.trip_report().map(|r| r.reason.clone()),
        Some(TripReason::HardTierReached {
            dimension: Dimension::Tokens,
            committed: 900,
            threshold: 900,
            limit: 1_000,
            fraction_ppm: 900_000,
        })
    );
    tree_stops(&system).await;
    assert!(matches!(
        b.ask(Task::Echo("after".into())).await,
        Err(AskError::KillSwitchTripped {
            reason: TripReason::HardTierReached { .. }
        })
    ));
    assert_eq!(
        story(&events(&mut rx))[..6],
        [
            "a ok",
            "b ok",
            "warning process tokens tier 1 at 900",
            "warning process tokens tier 2 at 900",
            "tripped",
            "a ok",
        ],
        "the warnings come with the reservation, the trip with the commit"
    );
}

#[tokio::test(start_paused = true)]
async fn a_cost_limit_and_a_step_limit_each_trip_the_switch() {
    for (limits, task) in [
        (
            Limits::new().cost_micros(1_000),
            Task::Spend(Usage::new(0, 0, 500)),
        ),
        (Limits::new().steps(3), Task::Echo("step".into())),
    ] {
        let budget = Budget::builder().process_limits(limits).build().unwrap();
        let system = governed(budget.clone(), &["a"]).await;
        let a = system.agent_ref::<Tester>("a").unwrap();
        let mut answered = 0;
        loop {
            let task = match &task {
                Task::Spend(usage) => Task::Spend(*usage),
                _ => Task::Echo("step".into()),
            };
            match a.ask(task).await {
                Ok(_) => answered += 1,
                Err(AskError::KillSwitchTripped { .. }) => break,
                Err(other) => panic!("unexpected {other:?}"),
            }
            assert!(answered < 10, "the switch never tripped");
        }
        assert_eq!(
            answered,
            2 + usize::from(matches!(task, Task::Echo(_))),
            "{limits:?}"
        );
        tree_stops(&system).await;
    }
}

#[tokio::test(start_paused = true)]
async fn the_wall_clock_deadline_trips_from_a_timer_with_no_call_flowing() {
    let budget = Budget::builder()
        .time_limit(Duration::from_secs(30))
        .build()
        .unwrap();
    let system = governed(budget.clone(), &["a"]).await;
    let started = Instant::now();
    tree_stops(&system).await;
    assert!(started.elapsed() >= Duration::from_secs(30));
    assert!(matches!(
        budget.trip_report().map(|r| &r.reason),
        Some(TripReason::DeadlinePassed { .. })
    ));
}

#[tokio::test(start_paused = true)]
async fn the_error_rate_over_all_agents_trips_the_switch() {
    let budget = Budget::builder()
        .error_rate(ErrorRateTrigger::new(0.6, 10, 4).unwrap())
        .build()
        .unwrap();
    let system = governed(budget.clone(), &["a", "b"]).await;
    let a = system.agent_ref::<Tester>("a").unwrap();
    let b = system.agent_ref::<Tester>("b").unwrap();
    assert!(a.ask(Task::Echo("ok".into())).await.is_ok());
    assert!(a.ask(Task::Fail("x")).await.is_err());
    assert!(b.ask(Task::Fail("y")).await.is_err());
    assert!(!budget.is_tripped(), "3 calls are under the minimum of 4");
    assert!(b.ask(Task::Echo("ok".into())).await.is_ok());
    assert!(!budget.is_tripped(), "2 of 4 failed: 50 % is under 60 %");
    assert!(b.ask(Task::Fail("z")).await.is_err());
    // 3 of 5 failed: 60 % reaches the threshold.
    assert!(budget.is_tripped());
    tree_stops(&system).await;
}

#[tokio::test(start_paused = true)]
async fn a_manual_trip_runs_on_trip_once_and_a_second_trip_is_harmless() {
    let budget = Budget::builder().build().unwrap();
    let calls = Arc::new(AtomicU32::new(0));
    budget.kill_switch().on_trip({
        let calls = Arc::clone(&calls);
        move |_| {
            calls.fetch_add(1, Ordering::SeqCst);
        }
    });
    let system = governed(budget.clone(), &["a"]).await;
    assert!(budget
        .trip(TripReason::manual("operator said stop"))
        .tripped_now());
    assert!(!budget.trip(TripReason::manual("again")).tripped_now());
    tree_stops(&system).await;
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(
        budget.trip_report().map(|r| r.reason.clone()),
        Some(TripReason::manual("operator said stop"))
    );
    let a = system.agent_ref::<Tester>("a").unwrap();
    assert_eq!(
        a.tell(Task::Echo("x".into())),
        Err(AskError::KillSwitchTripped {
            reason: TripReason::manual("operator said stop")
        })
    );
}

async fn trip_during_a_slow_task(policy: InFlightPolicy) -> (Result<String, AskError>, Duration) {
    let budget = Budget::builder().in_flight(policy).build().unwrap();
    let system = governed(budget.clone(), &["a"]).await;
    let a = system.agent_ref::<Tester>("a").unwrap();
    let slow = tokio::spawn(async move {
        let asked = Instant::now();
        let outcome = a.ask(Task::Slow(Duration::from_secs(3))).await;
        (outcome, asked.elapsed())
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    budget.trip(TripReason::manual("stop"));
    let result = slow.await.unwrap();
    tree_stops(&system).await;
    result
}

#[tokio::test(start_paused = true)]
async fn with_let_finish_a_task_in_flight_completes() {
    let (outcome, took) = trip_during_a_slow_task(InFlightPolicy::Finish).await;
    assert_eq!(outcome.as_deref(), Ok("slow"));
    assert_eq!(took, Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn with_cancel_now_a_task_in_flight_fails_at_the_trip() {
    let (outcome, took) = trip_during_a_slow_task(InFlightPolicy::CancelNow).await;
    assert!(
        matches!(outcome, Err(AskError::KillSwitchTripped { .. })),
        "{outcome:?}"
    );
    assert_eq!(took, Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn with_cancel_after_a_grace_a_task_in_flight_fails_when_the_grace_ends() {
    let (outcome, took) =
        trip_during_a_slow_task(InFlightPolicy::CancelAfter(Duration::from_millis(500))).await;
    assert!(
        matches!(outcome, Err(AskError::KillSwitchTripped { .. })),
        "{outcome:?}"
    );
    assert_eq!(took, Duration::from_millis(1500));
}

#[tokio::test(start_paused = true)]
async fn an_agent_over_its_own_limit_is_refused_while_the_others_go_on() {
    let budget = Budget::builder()
        .agent_limits("a", Limits::new().tokens(100))
        .build()
        .unwrap();
    let system = governed(budget.clone(), &["a", "b"]).await;
    let a = system.agent_ref::<Tester>("a").unwrap();
    let b = system.agent_ref::<Tester>("b").unwrap();
    assert!(a.ask(Task::Spend(Usage::new(60, 0, 0))).await.is_ok());
    let refused = a.ask(Task::Spend(Usage::new(60, 0, 0))).await;
    assert!(
        matches!(
            &refused,
            Err(AskError::BudgetExceeded {
                refusal: Refusal::LimitExceeded {
                    dimension: Dimension::Tokens,
                    ..
                },
                ..
            })
        ),
        "{refused:?}"
    );
    assert!(b.ask(Task::Spend(Usage::new(500, 0, 0))).await.is_ok());
    assert!(!budget.is_tripped(), "agent limits never trip the switch");
}

#[tokio::test(start_paused = true)]
async fn an_agent_reads_its_budget_tier_from_its_context() {
    let budget = Budget::builder()
        .process_limits(Limits::new().tokens(1_000))
        .build()
        .unwrap();
    let system = governed(budget, &["a"]).await;
    let a = system.agent_ref::<Tester>("a").unwrap();
    assert_eq!(a.ask(Task::Tier).await.as_deref(), Ok("none"));
    a.ask(Task::Spend(Usage::new(860, 0, 0))).await.unwrap();
    let tier = a.ask(Task::Tier).await.unwrap();
    assert!(tier.starts_with("tier 2"), "{tier}");
}

#[tokio::test(start_paused = true)]
async fn a_task_without_a_declared_estimate_reserves_the_agents_default() {
    let budget = Budget::builder()
        .process_limits(Limits::new().tokens(1_000))
        .build()
        .unwrap();
    let system = System::builder().budget(budget.clone()).build().unwrap();
    let spec = AgentSpec::new("a", Tester::new).default_estimate(Usage::new(400, 200, 0));
    system
        .start(SupervisorSpec::one_for_one("root").child(system.agent(spec).unwrap()))
        .await
        .unwrap();
    let a = system.agent_ref::<Tester>("a").unwrap();
    // Echo declares no estimate: 600 tokens are reserved for it, so a second one in flight
    // would not fit; alone, it fits and commits nothing.
    let slow = tokio::spawn({
        let a = a.clone();
        async move { a.ask(Task::Slow(Duration::from_secs(1))).await }
    });
    tokio::task::yield_now().await;
    assert_eq!(budget.process().reserved(Dimension::Tokens), 600);
    let refused = a.ask(Task::Echo("second".into())).await;
    assert!(
        matches!(refused, Err(AskError::BudgetExceeded { .. })),
        "{refused:?}"
    );
    assert!(slow.await.unwrap().is_ok());
    assert_eq!(
        budget.process().reserved(Dimension::Tokens),
        0,
        "released on commit"
    );
}
