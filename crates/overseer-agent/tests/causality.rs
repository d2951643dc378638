//! Every event of a system has an id, a time, a path, and names its cause: the ask that
//! crashed an agent, the crash that restarted it, the restart that escalated, the ask that
//! opened a breaker or crossed a budget tier or tripped the kill switch, the trip that stopped
//! the tree. Paused clock.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use overseer_agent::{AgentSpec, System, SystemEvent, Usage};
use overseer_breaker::{Backoff, BreakerConfig, BreakerRegistry};
use overseer_budget::{Budget, Limits};
use overseer_supervisor::{EventId, EventKind, ExitReason, SupervisorSpec};
use tokio::sync::broadcast::Receiver;

/// What each event is, in a word, for following chains.
fn describe(event: &SystemEvent) -> String {
    let path = event.path().map_or("-", |path| path.as_str());
    let what = match event {
        SystemEvent::Lifecycle(event) => match &event.kind {
            EventKind::Started => "started".to_string(),
            EventKind::Stopped { reason } => match reason {
                ExitReason::Panicked(_) => "stopped(panicked)".to_string(),
                ExitReason::Shutdown => "stopped(shutdown)".to_string(),
                other => format!("stopped({other:?})"),
            },
            EventKind::Escalated { .. } => "escalated".to_string(),
            other => format!("{other:?}"),
        },
        SystemEvent::Ask(ask) => format!("ask({})", ask.outcome_kind()),
        SystemEvent::Breaker(moved) => format!("breaker({:?}->{:?})", moved.from, moved.to),
        SystemEvent::BudgetWarning(warning) => format!("warning({})", warning.warning.tier),
        SystemEvent::KillSwitchTripped(_) => "tripped".to_string(),
        _ => "other".to_string(),
    };
    format!("{path} {what}")
}

/// The chain of causes from `event` back to its origin (an ask's parent when it has no cause),
/// described.
fn chain(events: &[SystemEvent], event: &SystemEvent) -> Vec<String> {
    let by_id: HashMap<EventId, &SystemEvent> =
        events.iter().map(|event| (event.id(), event)).collect();
    let mut chain = vec![describe(event)];
    let mut seen = vec![event.id()];
    let mut at = event.antecedent();
    while let Some(id) = at {
        assert!(!seen.contains(&id), "causes form no cycle: {chain:?}");
        seen.push(id);
        let cause = by_id.get(&id).expect("a cause is an event of the stream");
        chain.push(describe(cause));
        at = cause.antecedent();
    }
    chain
}

trait OutcomeKind {
    fn outcome_kind(&self) -> String;
}

impl OutcomeKind for overseer_agent::AskEvent {
    fn outcome_kind(&self) -> String {
        match &self.outcome {
            overseer_agent::AskOutcome::Ok => "ok".to_string(),
            overseer_agent::AskOutcome::Error { kind, .. } => kind.to_string(),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_crash_names_its_ask_and_an_escalation_can_be_followed_back_to_it() {
    let system = System::builder()
        .ask_timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let team = SupervisorSpec::one_for_one("team")
        .intensity(1, Duration::from_secs(60))
        .child(system.agent(AgentSpec::new("worker", Tester::new)).unwrap());
    let root = SupervisorSpec::one_for_one("root")
        .intensity(5, Duration::from_secs(60))
        .child(overseer_supervisor::ChildSpec::supervisor(team));
    system.start(root).await.unwrap();
    let mut rx = system.subscribe();
    let worker = system.agent_ref::<Tester>("worker").unwrap();

    assert!(worker.ask(Task::Panic("first")).await.is_err());
    assert!(worker.ask(Task::Panic("second")).await.is_err());
    // The answer after the escalation comes from the restarted team.
    assert!(worker.ask(Task::Echo("hi".into())).await.is_ok());
    let events = drain(&mut rx);

    let restarted_team = events
        .iter()
        .rfind(|event| describe(event) == "root/team started")
        .expect("the team was restarted");
    assert_eq!(
        chain(&events, restarted_team),
        [
            "root/team started",
            "root/team stopped(shutdown)",
            "root/team escalated",
            "root/team/worker stopped(panicked)",
            "root/team/worker ask(crashed)",
        ]
    );
    let first_restart = events
        .iter()
        .find(|event| describe(event) == "root/team/worker started")
        .expect("the worker was restarted once by its team");
    assert_eq!(
        chain(&events, first_restart),
        [
            "root/team/worker started",
            "root/team/worker stopped(panicked)",
            "root/team/worker ask(crashed)",
        ]
    );
    system.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn every_event_has_a_unique_id_a_time_and_a_path_and_survives_json() {
    let budget = Budget::builder()
        .process_limits(Limits::new().tokens(1_000))
        .build()
        .unwrap();
    let breakers = BreakerRegistry::new(
        BreakerConfig::default()
            .consecutive_failures(Some(2))
            .open_duration(Backoff::fixed(Duration::from_secs(30))),
    )
    .unwrap();
    let system = System::builder()
        .ask_timeout(Duration::from_secs(10))
        .budget(budget)
        .breakers(breakers)
        .build()
        .unwrap();
    let root = SupervisorSpec::one_for_one("root")
        .intensity(100, Duration::from_secs(1))
        .child(system.agent(AgentSpec::new("a", Tester::new)).unwrap());
    let mut rx = system.subscribe();
    system.start(root).await.unwrap();
    let a = system.agent_ref::<Tester>("a").unwrap();

    tokio::time::advance(Duration::from_secs(3)).await;
    assert!(a.ask(Task::Fail("one")).await.is_err());
    assert!(a.ask(Task::Fail("two")).await.is_err()); // opens the breaker of "trouble"
    assert!(a.ask(Task::Fail("refused")).await.is_err()); // refused: the breaker is open
    assert!(a.ask(Task::Spend(Usage::new(400, 400, 0))).await.is_ok()); // 800: tiers crossed
                                                                        // A refused estimate trips nothing; spend that reaches the limit trips the switch.
    assert!(a.ask(Task::Spend(Usage::new(400, 400, 0))).await.is_err()); // refused: 1,600
    assert!(a.ask(Task::Spend(Usage::new(100, 100, 0))).await.is_ok()); // 1,000: trips
    assert!(a.ask(Task::Echo("late".into())).await.is_err()); // refused: tripped
    assert!(
        system
            .tree()
            .unwrap()
            .wait_for_exit(Duration::from_secs(60))
            .await
    );
    let events = drain(&mut rx);

    let mut ids: Vec<u64> = events.iter().map(|event| event.id().get()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), events.len(), "ids are unique");
    for event in &events {
        assert!(event.path().is_some(), "{event:?} has a path");
        let json = serde_json::to_string(event).expect("serializes");
        let back: SystemEvent = serde_json::from_str(&json).expect("deserializes");
        assert_eq!(&back, event);
    }
    let asks: Vec<&SystemEvent> = events
        .iter()
        .filter(|event| matches!(event, SystemEvent::Ask(_)))
        .collect();
    assert!(
        asks.iter()
            .all(|ask| ask.elapsed() >= Duration::from_secs(3)),
        "elapsed counts from when the system was built"
    );

    let described = |wanted: &str| -> Vec<Vec<String>> {
        events
            .iter()
            .filter(|event| describe(event).starts_with(wanted))
            .map(|event| chain(&events, event))
            .collect()
    };
    assert_eq!(
        described("root/a breaker(Closed->Open)"),
        [vec!["root/a breaker(Closed->Open)", "root/a ask(failed)"]]
    );
    assert_eq!(
        described("root/a ask(breaker_open)"),
        [vec![
            "root/a ask(breaker_open)",
            "root/a breaker(Closed->Open)",
            "root/a ask(failed)"
        ]],
        "a refusal names the breaker's opening"
    );
    let warnings = described("root/a warning");
    assert!(!warnings.is_empty());
    for warning in warnings {
        assert_eq!(warning[1], "root/a ask(ok)", "{warning:?}");
    }
    assert_eq!(
        described("root/a tripped"),
        [vec!["root/a tripped", "root/a ask(ok)"]]
    );
    let refused_after = events
        .iter()
        .rfind(|event| describe(event) == "root/a ask(kill_switch_tripped)")
        .unwrap();
    assert_eq!(
        chain(&events, refused_after),
        [
            "root/a ask(kill_switch_tripped)",
            "root/a tripped",
            "root/a ask(ok)"
        ],
        "the ask refused after the trip names the trip, which names the ask that tripped it"
    );
    assert_eq!(
        described("root/a stopped"),
        [vec![
            "root/a stopped(shutdown)",
            "root/a tripped",
            "root/a ask(ok)"
        ]]
    );
    assert!(system.created_at() <= std::time::SystemTime::now());
}

/// Asks the tester what its task says, from inside its own handler.
struct Lead {
    tester: overseer_agent::AgentRef<Tester>,
}

impl overseer_agent::Agent for Lead {
    type Task = Task;
    type Output = String;

    async fn handle(
        &mut self,
        _: &mut overseer_agent::AgentContext,
        task: Task,
    ) -> Result<String, overseer_agent::AgentError> {
        let first = self.tester.ask(Task::Echo("warm-up".into())).await;
        let second = self.tester.ask(task).await;
        Ok(format!("{first:?} {second:?}"))
    }
}

async fn lead_system() -> System {
    let system = System::builder()
        .ask_timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let tester_child = system.agent(AgentSpec::new("tester", Tester::new)).unwrap();
    let tester = system.agent_ref::<Tester>("tester").unwrap();
    let lead = AgentSpec::new("lead", {
        let tester = tester.clone();
        move || Lead {
            tester: tester.clone(),
        }
    });
    let lead_child = system.agent(lead).unwrap();
    let lead_ref = system.agent_ref::<Lead>("lead").unwrap();
    let dispatcher = AgentSpec::new("dispatcher", {
        move || Dispatcher {
            tester: tester.clone(),
            lead: lead_ref.clone(),
        }
    });
    let root = SupervisorSpec::one_for_one("root")
        .intensity(10, Duration::from_secs(1))
        .child(tester_child)
        .child(lead_child)
        .child(system.agent(dispatcher).unwrap());
    system.start(root).await.unwrap();
    system
}

#[tokio::test(start_paused = true)]
async fn an_ask_made_inside_a_handler_names_the_ask_it_serves() {
    let system = lead_system().await;
    let mut rx = system.subscribe();
    let lead = system.agent_ref::<Lead>("lead").unwrap();
    lead.ask(Task::Echo("hello".into())).await.unwrap();
    let events = drain(&mut rx);
    let asks: Vec<&overseer_agent::AskEvent> = events
        .iter()
        .filter_map(|event| match event {
            SystemEvent::Ask(ask) => Some(ask),
            _ => None,
        })
        .collect();
    let lead_ask = asks
        .iter()
        .find(|ask| ask.agent.as_str() == "lead")
        .unwrap();
    assert_eq!(
        (lead_ask.caused_by, lead_ask.parent, lead_ask.request),
        (None, None, None),
        "the user's question has no cause and no parent: it is a request"
    );
    let nested: Vec<_> = asks
        .iter()
        .filter(|ask| ask.agent.as_str() == "tester")
        .collect();
    assert_eq!(nested.len(), 2);
    for ask in nested {
        assert_eq!(ask.parent, Some(lead_ask.id), "{ask:?}");
        assert_eq!(ask.request, Some(lead_ask.id), "{ask:?}");
        assert_eq!(
            ask.caused_by, None,
            "nothing but its parent led to it: {ask:?}"
        );
    }
    // An ask from outside any handler names nothing.
    let tester = system.agent_ref::<Tester>("tester").unwrap();
    tester.ask(Task::Echo("direct".into())).await.unwrap();
    let direct = drain(&mut rx);
    let SystemEvent::Ask(direct) = &direct[0] else {
        panic!("{direct:?}")
    };
    assert_eq!((direct.caused_by, direct.parent), (None, None));
}

#[tokio::test(start_paused = true)]
async fn a_crash_deep_in_a_request_can_be_followed_back_to_the_users_question() {
    let system = lead_system().await;
    let mut rx = system.subscribe();
    let lead = system.agent_ref::<Lead>("lead").unwrap();
    // The lead's handler asks the tester to panic: the tester's crash and restart name the
    // tester's ask, which names the lead's.
    let answer = lead.ask(Task::Panic("bad retrieval")).await.unwrap();
    assert!(answer.contains("Crashed"), "{answer}");
    let events = drain(&mut rx);
    let restart = events
        .iter()
        .find(|event| {
            matches!(event, SystemEvent::Lifecycle(e)
                if e.kind == EventKind::Started
                    && e.path.as_str() == "root/tester"
                    && e.caused_by.is_some())
        })
        .expect("the tester was restarted");
    let followed = chain(&events, restart);
    assert_eq!(
        followed,
        [
            "root/tester started",
            "root/tester stopped(panicked)",
            "root/tester ask(crashed)",
            "root/lead ask(ok)",
        ],
        "{followed:?}"
    );
}

/// Tells the tester, spawns a task that asks it after the handler returned, and asks the lead
/// (whose handler asks the tester in turn).
struct Dispatcher {
    tester: overseer_agent::AgentRef<Tester>,
    lead: overseer_agent::AgentRef<Lead>,
}

impl overseer_agent::Agent for Dispatcher {
    type Task = ();
    type Output = ();

    async fn handle(
        &mut self,
        ctx: &mut overseer_agent::AgentContext,
        (): (),
    ) -> Result<(), overseer_agent::AgentError> {
        self.tester
            .tell(Task::Echo("told".into()))
            .map_err(|error| overseer_agent::AgentError::failed(error.to_string()))?;
        let tester = self.tester.clone();
        ctx.spawn(async move {
            // Well after the handler has returned.
            tokio::time::sleep(Duration::from_secs(1)).await;
            let _ = tester.ask(Task::Echo("spawned".into())).await;
        });
        self.lead
            .ask(Task::Echo("nested".into()))
            .await
            .map_err(|error| overseer_agent::AgentError::failed(error.to_string()))?;
        Ok(())
    }
}

/// The next `count` ask events (within 30 s of the paused clock).
async fn asks_until(rx: &mut Receiver<SystemEvent>, count: usize) -> Vec<overseer_agent::AskEvent> {
    let mut asks = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while asks.len() < count {
        let received = tokio::time::timeout_at(deadline, rx.recv()).await;
        match received.expect("every ask's event within 30 s") {
            Ok(SystemEvent::Ask(ask)) => asks.push(ask),
            Ok(_) => {}
            Err(error) => panic!("the stream: {error}"),
        }
    }
    asks
}

#[tokio::test(start_paused = true)]
async fn a_tell_and_an_ask_from_a_spawned_task_name_the_ask_being_handled_and_its_request() {
    let system = lead_system().await;
    let mut rx = system.subscribe();
    let dispatcher = system.agent_ref::<Dispatcher>("dispatcher").unwrap();
    dispatcher.ask(()).await.unwrap();
    // The tell, the lead's two asks of the tester, the lead's, the dispatcher's, the spawned.
    let asks = asks_until(&mut rx, 6).await;
    let of = |agent: &str| -> Vec<&overseer_agent::AskEvent> {
        asks.iter()
            .filter(|ask| ask.agent.as_str() == agent)
            .collect()
    };
    let request = of("dispatcher")[0];
    assert_eq!((request.parent, request.request), (None, None));
    let lead = of("lead")[0];
    assert_eq!(
        (lead.parent, lead.request),
        (Some(request.id), Some(request.id))
    );
    let testers = of("tester");
    assert_eq!(testers.len(), 4, "{asks:#?}");
    let (by_dispatcher, by_lead): (Vec<&overseer_agent::AskEvent>, Vec<_>) = testers
        .iter()
        .copied()
        .partition(|ask| ask.parent == Some(request.id));
    // The tell (published by the tester) and the spawned task's ask name the dispatcher's ask.
    assert_eq!(by_dispatcher.len(), 2, "{testers:#?}");
    assert_eq!(by_lead.len(), 2, "{testers:#?}");
    for ask in by_lead {
        assert_eq!(ask.parent, Some(lead.id), "{ask:?}");
    }
    for ask in testers {
        assert_eq!(ask.request, Some(request.id), "{ask:?}");
    }
    let spawned = asks.last().unwrap();
    assert_eq!(spawned.agent.as_str(), "tester");
    assert!(
        spawned.elapsed > request.elapsed,
        "the spawned task asked after the handler returned"
    );
}
