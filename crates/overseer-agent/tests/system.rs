//! The system: usage and ask events, tells, templates, declaration errors.

mod common;

use std::time::Duration;

use common::*;
use overseer_agent::{
    Agent, AgentContext, AgentError, AgentSpec, AskError, AskOutcome, System, SystemError,
    SystemEvent, Usage, WeakSystem,
};
use overseer_supervisor::{
    ChildOpError, ChildSpec, Restart, SpecError, StartError, SupervisorRef, SupervisorSpec,
    TreeError,
};

#[tokio::test(start_paused = true)]
async fn each_ask_is_published_with_its_outcome_latency_and_usage() {
    let system = tester_system().await;
    let mut events = system.subscribe();
    let tester = system.agent_ref::<Tester>("tester").unwrap();
    tester
        .ask(Task::Spend(Usage::new(120, 30, 450)))
        .await
        .unwrap();
    tester
        .ask(Task::Slow(Duration::from_millis(250)))
        .await
        .unwrap();
    let _ = tester.ask(Task::Invalid).await;
    let asks: Vec<_> = std::iter::from_fn(|| events.try_recv().ok())
        .filter_map(|event| match event {
            SystemEvent::Ask(ask) => Some(ask),
            _ => None,
        })
        .collect();
    assert_eq!(asks.len(), 3);
    assert_eq!(asks[0].task_type, "spend");
    assert_eq!(asks[0].usage, Usage::new(120, 30, 450));
    assert!(asks[0].outcome.is_ok());
    assert_eq!(asks[1].latency, Duration::from_millis(250));
    assert!(matches!(&asks[2].outcome, AskOutcome::Error { kind, .. } if kind == "invalid_output"));
    let json = serde_json::to_string(&SystemEvent::Ask(asks[0].clone())).unwrap();
    let back: SystemEvent = serde_json::from_str(&json).unwrap();
    assert_eq!(back, SystemEvent::Ask(asks[0].clone()));
}

#[tokio::test(start_paused = true)]
async fn the_model_a_handler_names_is_in_its_asks_event_and_only_there() {
    struct Writer;
    impl Agent for Writer {
        type Task = Option<&'static str>;
        type Output = ();
        async fn handle(
            &mut self,
            ctx: &mut AgentContext,
            model: Option<&'static str>,
        ) -> Result<(), AgentError> {
            if let Some(model) = model {
                ctx.report_model("draft-model");
                ctx.report_model(model);
            }
            Ok(())
        }
    }
    let system = System::builder().build().unwrap();
    let writer = system.agent(AgentSpec::new("writer", || Writer)).unwrap();
    system
        .start(SupervisorSpec::one_for_one("root").child(writer))
        .await
        .unwrap();
    let mut events = system.subscribe();
    let writer = system.agent_ref::<Writer>("writer").unwrap();
    writer.ask(Some("gpt-4o-mini")).await.unwrap();
    writer.ask(None).await.unwrap();
    let models: Vec<_> = std::iter::from_fn(|| events.try_recv().ok())
        .filter_map(|event| match event {
            SystemEvent::Ask(ask) => Some(ask.model),
            _ => None,
        })
        .collect();
    assert_eq!(
        models,
        [Some("gpt-4o-mini".into()), None],
        "the last name counts, and the next task starts without one"
    );
}

#[tokio::test(start_paused = true)]
async fn a_tell_is_handled_without_waiting_for_it() {
    let system = tester_system().await;
    let mut events = system.subscribe();
    let tester = system.agent_ref::<Tester>("tester").unwrap();
    tester.tell(Task::Panic("told to crash")).unwrap();
    assert_eq!(
        tester.ask(Task::Incarnation).await.as_deref(),
        Ok("after panicked: told to crash")
    );
    let seen: Vec<SystemEvent> = std::iter::from_fn(|| events.try_recv().ok()).collect();
    let crash = seen
        .iter()
        .find_map(|event| match event {
            SystemEvent::Lifecycle(e) if e.path.as_str() == "root/tester" => Some(e),
            _ => None,
        })
        .expect("the crash is published");
    let told = seen
        .iter()
        .find_map(|event| match event {
            SystemEvent::Ask(ask) if Some(ask.id) == crash.caused_by => Some(ask),
            _ => None,
        })
        .expect("the tell's end is published, and the crash names it");
    assert_eq!(told.outcome.kind(), Some("crashed"));
    assert_eq!(told.path.as_ref().map(|p| p.as_str()), Some("root/tester"));
}

#[tokio::test(start_paused = true)]
async fn agents_made_from_a_template_are_looked_up_by_their_child_id() {
    let system = System::builder().build().unwrap();
    let pool = SupervisorSpec::dynamic(
        "researchers",
        system
            .agent_template(AgentSpec::new("researcher", Tester::new))
            .unwrap(),
    );
    system
        .start(
            SupervisorSpec::one_for_one("root")
                .child(overseer_supervisor::ChildSpec::supervisor(pool)),
        )
        .await
        .unwrap();
    let researchers = system
        .tree()
        .unwrap()
        .root()
        .which_children()
        .await
        .unwrap()[0]
        .supervisor()
        .unwrap();
    researchers.start_dynamic_child("r1").await.unwrap();
    researchers.start_dynamic_child("r2").await.unwrap();
    let r2 = system.agent_ref::<Tester>("r2").unwrap();
    assert_eq!(
        r2.ask(Task::Echo("from r2".into())).await.as_deref(),
        Ok("from r2")
    );
    assert_eq!(r2.name().as_str(), "r2");
}

#[tokio::test(start_paused = true)]
async fn declaration_errors_are_typed() {
    let system = System::builder().build().unwrap();
    system.agent(AgentSpec::new("a", Tester::new)).unwrap();
    assert_eq!(
        system.agent(AgentSpec::new("a", Tester::new)).unwrap_err(),
        SystemError::DuplicateAgent("a".into())
    );
    assert_eq!(
        system.agent(AgentSpec::new("", Tester::new)).unwrap_err(),
        SystemError::InvalidAgentName {
            name: String::new(),
            error: overseer_supervisor::IdError::Empty
        }
    );
    assert_eq!(
        system
            .agent(AgentSpec::new("z", Tester::new).ask_timeout(Duration::ZERO))
            .unwrap_err(),
        SystemError::ZeroTimeout("z".into())
    );
    system
        .start(SupervisorSpec::one_for_one("root"))
        .await
        .unwrap();
    assert_eq!(
        system
            .start(SupervisorSpec::one_for_one("root"))
            .await
            .unwrap_err(),
        SystemError::AlreadyStarted
    );
}

#[tokio::test(start_paused = true)]
async fn asks_to_an_agent_the_running_tree_did_not_start_fail_at_once() {
    let system = System::builder()
        .ask_timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let placed = system.agent(AgentSpec::new("placed", Tester::new)).unwrap();
    let _never_placed = system.agent(AgentSpec::new("stray", Tester::new)).unwrap();
    let stray = system.agent_ref::<Tester>("stray").unwrap();
    // Asked before the start: queued, as an ask to any agent that is starting.
    let early = tokio::spawn({
        let stray = stray.clone();
        async move { stray.ask(Task::Incarnation).await }
    });
    tokio::task::yield_now().await;
    let started = tokio::time::Instant::now();
    system
        .start(SupervisorSpec::one_for_one("root").child(placed))
        .await
        .unwrap();
    let not_in_tree = overseer_agent::AskError::NotInTree {
        agent: "stray".into(),
    };
    assert_eq!(
        early.await.unwrap(),
        Err(not_in_tree.clone()),
        "failed by the start, not by its 10 s deadline"
    );
    assert_eq!(stray.ask(Task::Incarnation).await, Err(not_in_tree.clone()));
    assert_eq!(not_in_tree.kind(), "not_in_tree");
    assert_eq!(started.elapsed(), Duration::ZERO);
    let placed = system.agent_ref::<Tester>("placed").unwrap();
    assert_eq!(placed.ask(Task::Incarnation).await.as_deref(), Ok("first"));
}

/// On a multi-threaded runtime an agent's incarnation may still be installing itself when
/// `start` returns (it does so on its own task): it is in the tree all the same, and an ask
/// made at once waits for it. The window is short, so the test starts many systems.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ask_right_after_the_start_reaches_the_agent() {
    for round in 0..300 {
        let system = System::builder().build().unwrap();
        let agent = system.agent(AgentSpec::new("agent", Tester::new)).unwrap();
        system
            .start(SupervisorSpec::one_for_one("root").child(agent))
            .await
            .unwrap();
        let agent = system.agent_ref::<Tester>("agent").unwrap();
        assert_eq!(
            agent.ask(Task::Incarnation).await.as_deref(),
            Ok("first"),
            "round {round}"
        );
        system.shutdown(Duration::from_secs(5)).await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn asks_to_an_agent_whose_start_child_failed_fail_at_once() {
    struct Broken;
    impl Agent for Broken {
        type Task = ();
        type Output = ();
        async fn on_start(&mut self, _: &mut AgentContext) -> Result<(), AgentError> {
            Err(AgentError::failed("no credentials"))
        }
        async fn handle(&mut self, _: &mut AgentContext, _: ()) -> Result<(), AgentError> {
            Ok(())
        }
    }
    let system = tester_system().await;
    let broken = system.agent(AgentSpec::new("broken", || Broken)).unwrap();
    let broken_ref = system.agent_ref::<Broken>("broken").unwrap();
    assert!(system
        .tree()
        .unwrap()
        .root()
        .start_child(broken)
        .await
        .is_err());
    let started = tokio::time::Instant::now();
    assert_eq!(
        broken_ref.ask(()).await,
        Err(overseer_agent::AskError::AgentStopped {
            agent: "broken".into()
        })
    );
    assert_eq!(started.elapsed(), Duration::ZERO, "not at the deadline");
}

#[tokio::test(start_paused = true)]
async fn an_agent_declared_after_the_start_serves_asks_once_added_to_the_tree() {
    let system = tester_system().await;
    let late = system.agent(AgentSpec::new("late", Tester::new)).unwrap();
    let late_ref = system.agent_ref::<Tester>("late").unwrap();
    assert_eq!(
        late_ref.ask(Task::Incarnation).await,
        Err(overseer_agent::AskError::NotInTree {
            agent: "late".into()
        })
    );
    system
        .tree()
        .unwrap()
        .root()
        .start_child(late)
        .await
        .unwrap();
    assert_eq!(
        late_ref.ask(Task::Incarnation).await.as_deref(),
        Ok("first")
    );
}

async fn nested(root_intensity: u32) -> System {
    nested_team(root_intensity, Restart::Permanent).await
}

/// `root` holds `team` (of restart type `team_restart`), which gives up at its first failure
/// and holds agent `a`.
async fn nested_team(root_intensity: u32, team_restart: Restart) -> System {
    let system = System::builder()
        .ask_timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let team = SupervisorSpec::one_for_one("team")
        .intensity(0, Duration::from_secs(5))
        .child(system.agent(AgentSpec::new("a", Tester::new)).unwrap());
    let root = SupervisorSpec::one_for_one("root")
        .intensity(root_intensity, Duration::from_secs(5))
        .child(overseer_supervisor::ChildSpec::supervisor(team).restart(team_restart));
    system.start(root).await.unwrap();
    system
}

#[tokio::test(start_paused = true)]
async fn asks_queued_while_the_agents_supervisor_escalates_are_served_after_its_restart() {
    let system = nested(5).await;
    let a = system.agent_ref::<Tester>("a").unwrap();
    let (crash, queued) = tokio::join!(a.ask(Task::Panic("boom")), a.ask(Task::Incarnation));
    assert!(matches!(
        crash,
        Err(overseer_agent::AskError::Crashed { .. })
    ));
    // The team supervisor gave up (intensity 0) and the root restarted it: a fresh instance,
    // so the agent starts as a first incarnation.
    assert_eq!(queued.as_deref(), Ok("first"));
}

#[tokio::test(start_paused = true)]
async fn asks_fail_at_once_when_the_whole_tree_has_stopped() {
    let system = nested(0).await;
    let a = system.agent_ref::<Tester>("a").unwrap();
    let started = tokio::time::Instant::now();
    let (crash, queued) = tokio::join!(a.ask(Task::Panic("boom")), a.ask(Task::Incarnation));
    assert!(crash.is_err());
    assert_eq!(
        queued,
        Err(overseer_agent::AskError::AgentStopped { agent: "a".into() })
    );
    assert_eq!(started.elapsed(), Duration::ZERO);
    assert!(!system.tree().unwrap().is_running());
}

#[tokio::test(start_paused = true)]
async fn asks_fail_at_once_when_the_agents_supervisor_escalates_and_is_not_restarted() {
    // A transient team that gives up exits with `shutdown`: its parent does not restart it,
    // while the root (and the rest of the tree) keeps running.
    let system = nested_team(5, Restart::Transient).await;
    let a = system.agent_ref::<Tester>("a").unwrap();
    let started = tokio::time::Instant::now();
    let (crash, queued) = tokio::join!(a.ask(Task::Panic("boom")), a.ask(Task::Incarnation));
    assert!(crash.is_err());
    let stopped = overseer_agent::AskError::AgentStopped { agent: "a".into() };
    assert_eq!(queued.as_ref(), Err(&stopped), "not a timeout after 10 s");
    assert_eq!(a.ask(Task::Incarnation).await, Err(stopped));
    assert_eq!(started.elapsed(), Duration::ZERO);
    assert!(system.tree().unwrap().is_running());
}

#[tokio::test(start_paused = true)]
async fn dropping_the_last_system_handle_shuts_the_system_down() {
    let system = tester_system().await;
    let tester = system.agent_ref::<Tester>("tester").unwrap();
    let weak = system.downgrade();
    let mut events = system.subscribe();
    let other_handle = system.clone();
    drop(system);
    assert_eq!(
        tester.ask(Task::Incarnation).await.as_deref(),
        Ok("first"),
        "another handle keeps it running"
    );
    drop(other_handle);
    assert!(weak.upgrade().is_none());
    assert_eq!(
        tester.ask(Task::Incarnation).await,
        Err(overseer_agent::AskError::ShutDown)
    );
    // The tree stops in order in the background; the stream ends after the root's stop.
    let drained = tokio::time::timeout(Duration::from_secs(5), async {
        let mut stopped = Vec::new();
        while let Ok(event) = events.recv().await {
            if let SystemEvent::Lifecycle(event) = event {
                stopped.push((event.path.to_string(), event.kind));
            }
        }
        stopped
    })
    .await
    .expect("the stream ends");
    let shutdown = overseer_supervisor::EventKind::Stopped {
        reason: overseer_supervisor::ExitReason::Shutdown,
    };
    assert_eq!(
        drained,
        [
            ("root/tester".to_string(), shutdown.clone()),
            ("root".to_string(), shutdown)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn an_agent_holding_a_weak_system_does_not_keep_it_running() {
    struct Lookup {
        system: WeakSystem,
    }
    impl Agent for Lookup {
        type Task = ();
        type Output = bool;
        async fn handle(&mut self, _: &mut AgentContext, _: ()) -> Result<bool, AgentError> {
            Ok(self.system.agent_ref::<Lookup>("lookup").is_ok())
        }
    }
    let system = System::builder().build().unwrap();
    let weak = system.downgrade();
    let lookup = system
        .agent(AgentSpec::new("lookup", move || Lookup {
            system: weak.clone(),
        }))
        .unwrap();
    system
        .start(SupervisorSpec::one_for_one("root").child(lookup))
        .await
        .unwrap();
    let lookup = system.agent_ref::<Lookup>("lookup").unwrap();
    assert_eq!(lookup.ask(()).await, Ok(true));
    let weak = system.downgrade();
    drop(system);
    assert!(weak.upgrade().is_none());
    assert_eq!(
        lookup.ask(()).await,
        Err(overseer_agent::AskError::ShutDown)
    );
    assert!(matches!(
        weak.agent_ref::<Lookup>("lookup"),
        Err(overseer_agent::AskError::ShutDown)
    ));
}

#[tokio::test(start_paused = true)]
async fn the_event_stream_ends_when_the_system_shuts_down() {
    let system = tester_system().await;
    let mut events = system.subscribe();
    system.shutdown(Duration::from_secs(5)).await.unwrap();
    let drained = tokio::time::timeout(Duration::from_secs(1), async {
        let mut seen = Vec::new();
        while let Ok(event) = events.recv().await {
            seen.push(event);
        }
        seen
    })
    .await
    .expect("the stream ends");
    let last = drained.last().expect("the shutdown's events came first");
    assert!(
        matches!(last, SystemEvent::Lifecycle(event) if event.path.as_str() == "root"),
        "{last:?}"
    );
}

/// The agent's actor id as its supervisor reports it.
async fn actor_id(system: &System, name: &str) -> ractor::ActorId {
    let children = system
        .tree()
        .unwrap()
        .root()
        .which_children()
        .await
        .unwrap();
    let child = children
        .iter()
        .find(|child| child.id.as_str() == name)
        .expect("the agent is a child of the root");
    child.cell.as_ref().expect("running").get_id()
}

#[tokio::test(start_paused = true)]
async fn a_crashed_agent_is_restarted_in_place_in_the_same_actor() {
    let system = tester_system().await;
    let tester = system.agent_ref::<Tester>("tester").unwrap();
    let before = actor_id(&system, "tester").await;
    let live = system.tree().unwrap().live_actors();
    for task in [Task::Panic("boom"), Task::Fatal("fatal"), Task::Hang] {
        assert!(tester
            .ask_within(task, Duration::from_secs(1))
            .await
            .is_err());
        let answer = tester.ask(Task::Incarnation).await.unwrap();
        assert!(
            answer.starts_with("after "),
            "rebuilt with on_restart: {answer}"
        );
        assert_eq!(actor_id(&system, "tester").await, before, "the same actor");
        assert_eq!(system.tree().unwrap().live_actors(), live);
    }
    system.shutdown(Duration::from_secs(5)).await.unwrap();
}

/// A one_for_all restart of agents: an idle sibling is parked and rebuilt by the supervisor
/// itself, a sibling in the middle of a task finishes it first; every agent keeps its actor and
/// runs `on_restart`, and the events are OTP's order.
#[tokio::test(start_paused = true)]
async fn a_group_restart_parks_idle_and_busy_agents_and_rebuilds_them_in_place() {
    let system = System::builder()
        .ask_timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let root = SupervisorSpec::one_for_all("root")
        .intensity(10, Duration::from_secs(1))
        .child(system.agent(AgentSpec::new("busy", Tester::new)).unwrap())
        .child(
            system
                .agent(AgentSpec::new("crashing", Tester::new))
                .unwrap(),
        )
        .child(system.agent(AgentSpec::new("idle", Tester::new)).unwrap());
    system.start(root).await.unwrap();
    let mut events = system.subscribe();
    let names = ["busy", "crashing", "idle"];
    let mut actors = Vec::new();
    for name in names {
        actors.push(actor_id(&system, name).await);
    }
    let busy = system.agent_ref::<Tester>("busy").unwrap();
    let crashing = system.agent_ref::<Tester>("crashing").unwrap();
    let slow = tokio::spawn({
        let busy = busy.clone();
        async move { busy.ask(Task::Slow(Duration::from_millis(300))).await }
    });
    // The slow task has started when the busy agent's queue is empty again.
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert!(crashing.ask(Task::Panic("boom")).await.is_err());
    assert_eq!(
        slow.await.unwrap().unwrap(),
        "slow",
        "the busy agent finished its task before it parked"
    );
    for name in names {
        let agent = system.agent_ref::<Tester>(name).unwrap();
        let answer = agent.ask(Task::Incarnation).await.unwrap();
        assert!(answer.starts_with("after "), "{name} rebuilt: {answer}");
    }
    for (name, before) in names.into_iter().zip(actors) {
        assert_eq!(
            actor_id(&system, name).await,
            before,
            "{name}: the same actor"
        );
    }
    let mut lifecycle = Vec::new();
    while lifecycle.len() < 6 {
        if let SystemEvent::Lifecycle(event) = events.recv().await.unwrap() {
            lifecycle.push(format!("{} {:?}", event.path, event.kind).replace("\"", ""));
        }
    }
    let order: Vec<_> = lifecycle
        .iter()
        .map(|line| line.split(['{', ' ']).take(2).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        order,
        [
            "root/crashing Stopped",
            "root/idle Stopped",
            "root/busy Stopped",
            "root/busy Started",
            "root/crashing Started",
            "root/idle Started",
        ],
        "{lifecycle:#?}"
    );
    system.shutdown(Duration::from_secs(5)).await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// Names: unique in a system, across declared agents, dynamic children and templates
// ---------------------------------------------------------------------------------------------

/// The supervisor of the dynamic child `id` of `system`'s root.
async fn dynamic_supervisor(system: &System, id: &str) -> SupervisorRef {
    system
        .tree()
        .unwrap()
        .root()
        .which_children()
        .await
        .unwrap()
        .iter()
        .find(|child| child.id.as_str() == id)
        .and_then(|child| child.supervisor())
        .expect("a supervisor child of the root")
}

/// A dynamic supervisor `id` whose children are testers.
fn pool(system: &System, id: &str) -> ChildSpec {
    ChildSpec::supervisor(SupervisorSpec::dynamic(
        id,
        system
            .agent_template(AgentSpec::new("member", Tester::new))
            .unwrap(),
    ))
}

/// The paths the ask events seen on `events` name.
fn asked_paths(events: &mut tokio::sync::broadcast::Receiver<SystemEvent>) -> Vec<String> {
    std::iter::from_fn(|| events.try_recv().ok())
        .filter_map(|event| match event {
            SystemEvent::Ask(ask) => ask.path.map(|path| path.to_string()),
            _ => None,
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_dynamic_child_cannot_take_the_name_of_a_static_agent() {
    let system = System::builder()
        .ask_timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let root = SupervisorSpec::one_for_one("root")
        .child(system.agent(AgentSpec::new("a", Tester::new)).unwrap())
        .child(pool(&system, "pool"));
    system.start(root).await.unwrap();
    let pool = dynamic_supervisor(&system, "pool").await;
    let a = system.agent_ref::<Tester>("a").unwrap();
    let mut events = system.subscribe();
    assert_eq!(
        pool.start_dynamic_child("a").await.unwrap_err(),
        ChildOpError::StartFailed(StartError::NameTaken {
            name: "a".into(),
            holder: Some(a_path("root/a")),
        })
    );
    assert_eq!(
        pool.count_children().await.unwrap().specs,
        0,
        "nothing added"
    );
    // Nothing was taken over: the static agent answers, from its own place.
    assert_eq!(a.ask(Task::Incarnation).await.as_deref(), Ok("first"));
    assert_eq!(asked_paths(&mut events), ["root/a"]);
    system.shutdown(Duration::from_secs(5)).await.unwrap();
}

/// The refused dynamic child is told `Removed` by its supervisor; the fate is about its own
/// placement, so the agent declared under the name (not in the tree yet) is not stopped by it.
#[tokio::test(start_paused = true)]
async fn a_dynamic_child_cannot_take_the_name_of_an_agent_declared_but_not_placed() {
    let system = System::builder()
        .ask_timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    system
        .start(SupervisorSpec::one_for_one("root").child(pool(&system, "pool")))
        .await
        .unwrap();
    let late = system.agent(AgentSpec::new("late", Tester::new)).unwrap();
    let pool = dynamic_supervisor(&system, "pool").await;
    assert_eq!(
        pool.start_dynamic_child("late").await.unwrap_err(),
        ChildOpError::StartFailed(StartError::NameTaken {
            name: "late".into(),
            holder: None,
        })
    );
    let late_ref = system.agent_ref::<Tester>("late").unwrap();
    assert_eq!(
        late_ref.ask(Task::Incarnation).await,
        Err(AskError::NotInTree {
            agent: "late".into()
        }),
        "still the declared agent, waiting to be placed"
    );
    system
        .tree()
        .unwrap()
        .root()
        .start_child(late)
        .await
        .unwrap();
    assert_eq!(
        late_ref.ask(Task::Incarnation).await.as_deref(),
        Ok("first")
    );
}

#[tokio::test(start_paused = true)]
async fn a_name_held_by_a_dynamic_child_is_free_again_once_the_child_is_removed() {
    let system = System::builder()
        .ask_timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let root = SupervisorSpec::one_for_one("root")
        .child(pool(&system, "left"))
        .child(pool(&system, "right"));
    system.start(root).await.unwrap();
    let left = dynamic_supervisor(&system, "left").await;
    let right = dynamic_supervisor(&system, "right").await;
    left.start_dynamic_child("x").await.unwrap();
    let first = system.agent_ref::<Tester>("x").unwrap();
    assert_eq!(
        right.start_dynamic_child("x").await.unwrap_err(),
        ChildOpError::StartFailed(StartError::NameTaken {
            name: "x".into(),
            holder: Some(a_path("root/left/x")),
        })
    );
    assert_eq!(first.ask(Task::Incarnation).await.as_deref(), Ok("first"));
    assert_eq!(
        system.agent(AgentSpec::new("x", Tester::new)).unwrap_err(),
        SystemError::DuplicateAgent("x".into()),
        "nor can an agent be declared under it"
    );
    left.terminate_child("x").await.unwrap();
    assert_eq!(
        first.ask(Task::Incarnation).await,
        Err(AskError::AgentStopped { agent: "x".into() })
    );
    right.start_dynamic_child("x").await.unwrap();
    let mut events = system.subscribe();
    let second = system.agent_ref::<Tester>("x").unwrap();
    assert_eq!(second.ask(Task::Incarnation).await.as_deref(), Ok("first"));
    assert_eq!(asked_paths(&mut events), ["root/right/x"], "a new agent");
    assert_eq!(
        first.ask(Task::Incarnation).await,
        Err(AskError::AgentStopped { agent: "x".into() }),
        "a handle to the removed child does not reach the new one"
    );
}

#[tokio::test(start_paused = true)]
async fn the_same_agent_spec_under_two_supervisors_is_refused() {
    let system = System::builder().build().unwrap();
    let a = system.agent(AgentSpec::new("a", Tester::new)).unwrap();
    let root = SupervisorSpec::one_for_one("root")
        .child(ChildSpec::supervisor(
            SupervisorSpec::one_for_one("left").child(a.clone()),
        ))
        .child(ChildSpec::supervisor(
            SupervisorSpec::one_for_one("right").child(a.clone()),
        ));
    assert_eq!(
        system.start(root).await.unwrap_err(),
        SystemError::Tree(TreeError::InvalidSpec(SpecError::DuplicateInTree {
            supervisor: "left".into(),
            child: "a".into(),
            other: "right".into(),
        }))
    );
    // Nor at run time: the agent runs at the first place it starts at.
    let root = SupervisorSpec::one_for_one("root").child(a.clone());
    system.start(root).await.unwrap();
    let refused = system
        .tree()
        .unwrap()
        .root()
        .start_child(ChildSpec::supervisor(
            SupervisorSpec::one_for_one("team").child(a),
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(
            &refused,
            ChildOpError::StartFailed(StartError::ChildFailed { cause, .. })
                if matches!(&**cause, StartError::NameTaken { holder: Some(holder), .. }
                    if holder.as_str() == "root/a")
        ),
        "{refused:?}"
    );
    let a = system.agent_ref::<Tester>("a").unwrap();
    assert_eq!(a.ask(Task::Incarnation).await.as_deref(), Ok("first"));
}

/// A root id holding a `/` is refused: its path would read as a child's (`team` then
/// `alpha`), and with it the event stream would never see the root stop.
#[tokio::test(start_paused = true)]
async fn a_root_id_with_a_slash_is_refused() {
    let system = System::builder().build().unwrap();
    assert!(matches!(
        system
            .start(SupervisorSpec::one_for_one("team/alpha"))
            .await
            .unwrap_err(),
        SystemError::Tree(TreeError::InvalidSpec(SpecError::InvalidId {
            error: overseer_supervisor::IdError::ForbiddenChar { found: '/', .. },
            ..
        }))
    ));
}

#[tokio::test(start_paused = true)]
async fn a_zero_default_ask_timeout_is_refused_as_an_agents_is() {
    assert_eq!(
        System::builder()
            .ask_timeout(Duration::ZERO)
            .build()
            .unwrap_err(),
        SystemError::ZeroDefaultAskTimeout
    );
    let system = System::builder().build().unwrap();
    assert_eq!(
        system
            .agent(AgentSpec::new("a", Tester::new).ask_timeout(Duration::ZERO))
            .unwrap_err(),
        SystemError::ZeroTimeout("a".into())
    );
}

/// The path `root/...` of ids joined by `/` (as written in the tests).
fn a_path(text: &str) -> overseer_supervisor::ChildPath {
    let mut ids = text.split('/').map(overseer_supervisor::ChildId::from);
    let root = overseer_supervisor::ChildPath::root(&ids.next().unwrap());
    ids.fold(root, |path, id| path.join(&id))
}

#[tokio::test(start_paused = true)]
async fn the_tree_snapshot_shows_each_supervisors_intensity_and_each_agents_queue() {
    use overseer_agent::{NodeKind, NodeState};
    let system = System::builder().build().unwrap();
    assert!(system.tree_snapshot().await.is_empty(), "not started");
    let team = SupervisorSpec::one_for_one("team")
        .intensity(2, Duration::from_secs(30))
        .child(system.agent(AgentSpec::new("tester", Tester::new)).unwrap());
    let root = SupervisorSpec::rest_for_one("root")
        .intensity(7, Duration::from_secs(5))
        .child(ChildSpec::supervisor(team));
    system.start(root).await.unwrap();
    let tester = system.agent_ref::<Tester>("tester").unwrap();
    assert!(tester.ask(Task::Panic("once")).await.is_err());
    tester.ask(Task::Echo("back".into())).await.unwrap();

    let tree = system.tree_snapshot().await;
    let names: Vec<(usize, &str, NodeState)> = tree
        .iter()
        .map(|node| (node.depth, node.name.as_str(), node.state))
        .collect();
    assert_eq!(
        names,
        [
            (0, "root", NodeState::Running),
            (1, "team", NodeState::Running),
            (2, "tester", NodeState::Running),
        ]
    );
    let root = tree[0].supervisor_status().expect("root answered");
    assert_eq!(
        (root.strategy, root.max_restarts, root.period),
        (
            overseer_supervisor::Strategy::RestForOne,
            7,
            Duration::from_secs(5)
        )
    );
    assert_eq!(
        root.restarts_in_window, 0,
        "the team restarted its child, not root"
    );
    let team = tree[1].supervisor_status().expect("team answered");
    assert_eq!(team.path.as_str(), "root/team");
    assert_eq!((team.max_restarts, team.restarts_in_window), (2, 1));
    assert_eq!(tree[1].restart, Some(Restart::Permanent));
    match &tree[2].kind {
        NodeKind::Agent {
            queued,
            capacity,
            health,
        } => {
            assert_eq!((*queued, *capacity), (0, 256));
            assert!(health.is_some());
        }
        other => panic!("an agent: {other:?}"),
    }
    assert_eq!(tree[2].path.as_str(), "root/team/tester");

    // Past the team's period, its restart no longer counts.
    tokio::time::advance(Duration::from_secs(32)).await;
    let tree = system.tree_snapshot().await;
    assert_eq!(tree[1].supervisor_status().unwrap().restarts_in_window, 0);
    system.shutdown(Duration::from_secs(5)).await.unwrap();
    let after = system.tree_snapshot().await;
    assert_eq!(after[0].state, NodeState::NotRunning, "{after:?}");
    assert_eq!(after.len(), 1);
}
