//! The escalation ladder in the call path: rungs climbed in order, each an event caused by the
//! failure before it, skipped behind an open breaker, stopped by the first answer, by the kill
//! switch, or exhausted with every attempt's error; `ask_with_fallback_on`. Paused clock.

mod flaky;

use std::time::Duration;

use flaky::*;
use overseer_agent::retry::{ClassSet, Jitter, RetryPolicy, Skip, SkipReason, StopReason};
use overseer_agent::{
    AgentError, AgentRef, AgentSpec, AskError, ErrorClass, Escalation, RetryStep, System,
    SystemBuilder,
};
use overseer_breaker::{
    Backoff, BreakerConfig, BreakerKey, BreakerRegistry, State as BreakerState,
};
use overseer_budget::{Budget, TripReason};
use overseer_supervisor::SupervisorSpec;
use tokio::time::Instant;

async fn start(builder: SystemBuilder, script: &Script, names: &[&str]) -> System {
    let system = builder.build().unwrap();
    let mut root = SupervisorSpec::one_for_one("root").intensity(100, Duration::from_secs(1));
    for name in names {
        let script = script.clone();
        let spec =
            AgentSpec::new(*name, move || script.agent()).ask_timeout(Duration::from_secs(10));
        root = root.child(system.agent(spec).unwrap());
    }
    system.start(root).await.unwrap();
    system
}

fn agent(system: &System, name: &str) -> AgentRef<Flaky> {
    system.agent_ref::<Flaky>(name).unwrap()
}

/// The rungs climbed, in order, by the events.
fn climbed(events: &[overseer_agent::RetryEvent]) -> Vec<(usize, String)> {
    events
        .iter()
        .filter_map(|e| match &e.step {
            RetryStep::Rung { rung, name, .. } => Some((*rung, name.clone())),
            _ => None,
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn the_ladder_climbs_in_order_and_stops_at_the_first_success() {
    let script = Script::default()
        .then("primary", [invalid("no title"), invalid("still no title")])
        .then("second", [transient()]);
    let system = start(System::builder(), &script, &["primary", "second", "strong"]).await;
    let mut events = system.subscribe();
    let ladder = Escalation::new()
        .same_agent("told-why")
        .other_agent("sibling", agent(&system, "second"), ClassSet::CLIMBABLE)
        .stronger_model(
            "bigger",
            |task: &String, _| format!("[large] {task}"),
            Some(agent(&system, "strong")),
        )
        .decompose(
            "never",
            |task: &String| vec![task.clone()],
            |mut parts| Ok(parts.remove(0)),
        );
    let answered = agent(&system, "primary")
        .ask_escalating("draft".into(), &ladder)
        .await
        .unwrap();
    assert_eq!(answered.by.as_str(), "strong");
    assert_eq!(answered.output, "[large] draft");
    let order: Vec<String> = script.calls().into_iter().map(|c| c.agent).collect();
    assert_eq!(order, ["primary", "primary", "second", "strong"]);
    let events = retry_events(&mut events);
    assert_eq!(
        climbed(&events),
        vec![
            (0, "told-why".into()),
            (1, "sibling".into()),
            (2, "bigger".into())
        ],
        "in order, and not past the first answer"
    );
    // Each rung names the failure that sent the ladder there.
    let classes: Vec<ErrorClass> = events
        .iter()
        .filter(|e| matches!(e.step, RetryStep::Rung { .. }))
        .map(|e| e.class)
        .collect();
    assert_eq!(
        classes,
        [
            ErrorClass::InvalidOutput,
            ErrorClass::InvalidOutput,
            ErrorClass::Transient
        ]
    );
    assert!(events.iter().all(|e| e.caused_by.is_some()));
}

#[tokio::test(start_paused = true)]
async fn the_failure_text_reaches_the_agent_on_the_feedback_rung() {
    let script = Script::default().then("primary", [invalid("missing field `title`")]);
    let system = start(System::builder(), &script, &["primary"]).await;
    let ladder = Escalation::new().same_agent("told-why");
    let answered = agent(&system, "primary")
        .ask_escalating("draft".into(), &ladder)
        .await
        .unwrap();
    assert_eq!(answered.by.as_str(), "primary");
    let calls = script.calls();
    assert_eq!(calls[0].feedback, None);
    let (attempt, class, message) = calls[1].feedback.clone().unwrap();
    assert_eq!((attempt, class), (1, ErrorClass::InvalidOutput));
    assert!(message.contains("missing field `title`"), "{message}");
}

#[tokio::test(start_paused = true)]
async fn a_permanent_failure_skips_the_same_agent_rung() {
    let script = Script::default().then("primary", [permanent()]);
    let system = start(System::builder(), &script, &["primary", "second"]).await;
    let mut events = system.subscribe();
    let ladder = Escalation::new().same_agent("told-why").other_agent(
        "sibling",
        agent(&system, "second"),
        ClassSet::CLIMBABLE,
    );
    let answered = agent(&system, "primary")
        .ask_escalating("draft".into(), &ladder)
        .await
        .unwrap();
    assert_eq!(answered.by.as_str(), "second");
    let rung = retry_events(&mut events)
        .into_iter()
        .find_map(|e| match e.step {
            RetryStep::Rung { rung, skipped, .. } => Some((rung, skipped)),
            _ => None,
        });
    assert_eq!(
        rung,
        Some((
            1,
            vec![Skip {
                rung: 0,
                reason: SkipReason::ClassNotAccepted(ErrorClass::Permanent)
            }]
        ))
    );
}

#[tokio::test(start_paused = true)]
async fn a_rung_behind_an_open_breaker_is_skipped_and_the_skip_recorded() {
    let registry = BreakerRegistry::new(BreakerConfig::default()).unwrap();
    let builder = System::builder().breakers(registry);
    let script = Script::default().then("primary", [transient()]);
    let system = start(builder, &script, &["primary", "second", "third"]).await;
    let mut events = system.subscribe();
    let breakers = system.breakers().unwrap();
    breakers
        .handle(&BreakerKey::new("second", "work"))
        .force_open();
    let ladder = Escalation::new()
        .other_agent("second", agent(&system, "second"), ClassSet::CLIMBABLE)
        .other_agent("third", agent(&system, "third"), ClassSet::CLIMBABLE);
    let answered = agent(&system, "primary")
        .ask_escalating("draft".into(), &ladder)
        .await
        .unwrap();
    assert_eq!(answered.by.as_str(), "third");
    assert!(script.calls_of("second").is_empty(), "never asked");
    let skipped = retry_events(&mut events)
        .into_iter()
        .find_map(|e| match e.step {
            RetryStep::Rung { skipped, .. } => Some(skipped),
            _ => None,
        });
    assert_eq!(
        skipped,
        Some(vec![Skip {
            rung: 0,
            reason: SkipReason::BreakerOpen
        }])
    );
}

#[tokio::test(start_paused = true)]
async fn a_rung_whose_breaker_has_served_its_open_period_is_climbed_and_its_ask_is_the_probe() {
    let registry = BreakerRegistry::new(
        BreakerConfig::default()
            .consecutive_failures(Some(1))
            .open_duration(Backoff::fixed(Duration::from_secs(5)))
            .half_open_probes(1),
    )
    .unwrap();
    let builder = System::builder().breakers(registry);
    let script = Script::default()
        .then("second", [transient()])
        .then("primary", [transient(), transient()]);
    let system = start(builder, &script, &["primary", "second"]).await;
    let second = agent(&system, "second");
    let key = BreakerKey::new("second", "work");
    let breakers = system.breakers().unwrap();
    assert!(second.ask("opens it".into()).await.is_err());
    assert_eq!(breakers.handle(&key).state(), BreakerState::Open);
    let ladder = Escalation::new().other_agent("second", second.clone(), ClassSet::CLIMBABLE);

    // Within the open period the rung is skipped.
    let refused = agent(&system, "primary")
        .ask_escalating("early".into(), &ladder)
        .await;
    assert!(
        matches!(refused, Err(AskError::Exhausted { .. })),
        "{refused:?}"
    );
    assert_eq!(script.calls_of("second").len(), 1, "not asked while open");

    // After it, the rung is climbed: its ask is admitted as the probe, and closes the breaker.
    tokio::time::advance(Duration::from_secs(6)).await;
    let answered = agent(&system, "primary")
        .ask_escalating("late".into(), &ladder)
        .await
        .unwrap();
    assert_eq!(answered.by.as_str(), "second");
    assert_eq!(breakers.handle(&key).state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn an_exhausted_ladder_returns_every_attempts_error() {
    let script = Script::default()
        .then("primary", [transient(), transient(), transient()])
        .then("second", [permanent()]);
    let system = start(System::builder(), &script, &["primary", "second"]).await;
    let mut events = system.subscribe();
    let policy = RetryPolicy::builder()
        .max_attempts(2)
        .jitter(Jitter::None)
        .build()
        .unwrap();
    let ladder = Escalation::new()
        .same_agent_with_policy("again", policy)
        .other_agent("sibling", agent(&system, "second"), ClassSet::CLIMBABLE);
    let error = agent(&system, "primary")
        .ask_escalating("draft".into(), &ladder)
        .await
        .unwrap_err();
    let AskError::Exhausted {
        agent: first,
        attempts,
    } = error
    else {
        panic!("{error:?}");
    };
    assert_eq!(first.as_str(), "primary");
    let seen: Vec<(Option<usize>, String, u32, ErrorClass)> = attempts
        .iter()
        .map(|a| (a.rung, a.agent.to_string(), a.attempt, a.class))
        .collect();
    assert_eq!(
        seen,
        vec![
            (None, "primary".into(), 1, ErrorClass::Transient),
            (Some(0), "primary".into(), 1, ErrorClass::Transient),
            (Some(0), "primary".into(), 2, ErrorClass::Transient),
            (Some(1), "second".into(), 1, ErrorClass::Permanent),
        ]
    );
    let stop = retry_events(&mut events)
        .into_iter()
        .find_map(|e| match e.step {
            RetryStep::LadderStopped { reason, .. } => Some(reason),
            _ => None,
        });
    assert_eq!(stop, Some(StopReason::Exhausted));
}

#[tokio::test(start_paused = true)]
async fn decompose_asks_the_parts_and_merges_their_answers() {
    let script = Script::default().then("primary", [transient()]);
    let system = start(System::builder(), &script, &["primary"]).await;
    let ladder = Escalation::new().decompose(
        "halves",
        |task: &String| task.split(" and ").map(str::to_string).collect(),
        |parts: Vec<String>| Ok(parts.join(" + ")),
    );
    let answered = agent(&system, "primary")
        .ask_escalating("intro and outro".into(), &ladder)
        .await
        .unwrap();
    assert_eq!(answered.output, "intro + outro");
    let mut tasks: Vec<String> = script.calls().into_iter().map(|c| c.task).collect();
    tasks.sort();
    assert_eq!(tasks, ["intro", "intro and outro", "outro"]);
}

#[tokio::test(start_paused = true)]
async fn no_rung_is_climbed_after_the_kill_switch_trips() {
    let budget = Budget::builder().build().unwrap();
    let script = Script::default().then(
        "primary",
        [Step::SlowFail(
            Duration::from_secs(1),
            overseer_agent::AgentError::failed("late"),
        )],
    );
    let builder = System::builder().budget(budget.clone());
    let system = start(builder, &script, &["primary", "second"]).await;
    let mut events = system.subscribe();
    let ladder =
        Escalation::new().other_agent("sibling", agent(&system, "second"), ClassSet::CLIMBABLE);
    let trip = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        budget.trip(TripReason::manual("stop"));
    });
    let answer = agent(&system, "primary")
        .ask_escalating("draft".into(), &ladder)
        .await;
    trip.await.unwrap();
    assert!(answer.is_err(), "{answer:?}");
    assert!(
        script.calls_of("second").is_empty(),
        "the sibling was never asked"
    );
    assert!(climbed(&retry_events(&mut events)).is_empty());
}

#[tokio::test(start_paused = true)]
async fn every_rung_shares_the_one_deadline() {
    let slow = || {
        Step::SlowFail(
            Duration::from_secs(4),
            overseer_agent::AgentError::failed("slow"),
        )
    };
    let script = Script::default()
        .then("primary", [slow()])
        .then("second", [slow()])
        .then("third", [slow()]);
    let system = start(System::builder(), &script, &["primary", "second", "third"]).await;
    let ladder = Escalation::new()
        .other_agent("second", agent(&system, "second"), ClassSet::CLIMBABLE)
        .other_agent("third", agent(&system, "third"), ClassSet::CLIMBABLE);
    let asked = Instant::now();
    let answer = agent(&system, "primary")
        .ask_escalating("draft".into(), &ladder)
        .await;
    assert!(answer.is_err());
    assert_eq!(
        asked.elapsed(),
        Duration::from_secs(10),
        "the agent's 10 s, for all rungs"
    );
}

#[tokio::test(start_paused = true)]
async fn ask_escalating_within_bounds_every_rung_by_the_callers_deadline() {
    let slow = || Step::SlowFail(Duration::from_secs(4), AgentError::failed("slow"));
    let script = Script::default()
        .then("primary", [slow()])
        .then("second", [slow()]);
    let system = start(System::builder(), &script, &["primary", "second"]).await;
    let ladder =
        Escalation::new().other_agent("second", agent(&system, "second"), ClassSet::CLIMBABLE);
    let asked = Instant::now();
    let answer = agent(&system, "primary")
        .ask_escalating_within("draft".into(), &ladder, Duration::from_secs(6))
        .await;
    // The first ask fails at 4 s; the sibling's ask is cut at 6 s, not at its own 4 s + 4 s.
    assert!(
        matches!(&answer, Err(AskError::Timeout { after, .. }) if *after == Duration::from_secs(6)),
        "{answer:?}"
    );
    assert_eq!(asked.elapsed(), Duration::from_secs(6));
}

#[tokio::test(start_paused = true)]
async fn ask_with_fallback_on_falls_back_for_the_classes_named_only() {
    let script = Script::default().then("primary", [Step::Panic, Step::Panic, permanent()]);
    let system = start(System::builder(), &script, &["primary", "second"]).await;
    let primary = agent(&system, "primary");
    let alternates = [agent(&system, "second")];
    // A crash is not a case of `ask_with_fallback`: returned as it is.
    let crashed = primary.ask_with_fallback("a".into(), &alternates).await;
    assert!(
        matches!(crashed, Err(AskError::Crashed { .. })),
        "{crashed:?}"
    );
    // A crash is transient: named, it falls back.
    let transient = ClassSet::TRANSIENT | ClassSet::RATE_LIMITED;
    let answered = primary
        .ask_with_fallback_on("b".into(), &alternates, transient)
        .await
        .unwrap();
    assert_eq!(
        (answered.by.as_str(), answered.output.as_str()),
        ("second", "b")
    );
    // A permanent failure is not named: returned as it is, the alternate not asked.
    let kept = primary
        .ask_with_fallback_on("c".into(), &alternates, transient)
        .await;
    assert!(
        matches!(&kept, Err(AskError::Failed { agent, .. }) if agent.as_str() == "primary"),
        "{kept:?}"
    );
    assert_eq!(script.calls_of("second").len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_task_that_exhausts_its_ladder_goes_to_the_dead_letters_and_is_redriven() {
    let spent = |tokens, cost| overseer_agent::Usage::new(tokens, 0, cost);
    let script = Script::default()
        .then(
            "primary",
            [Step::CostlyFail(spent(100, 7), AgentError::failed("503"))],
        )
        .then(
            "second",
            [Step::CostlyFail(spent(40, 3), AgentError::permanent("400"))],
        );
    let system = start(System::builder(), &script, &["primary", "second"]).await;
    let ladder =
        Escalation::new().other_agent("sibling", agent(&system, "second"), ClassSet::CLIMBABLE);
    let error = agent(&system, "primary")
        .ask_escalating_or_dead_letter("draft".into(), &ladder)
        .await
        .unwrap_err();
    assert!(matches!(error, AskError::Exhausted { .. }), "{error:?}");

    let letters = system.dead_letters();
    let [letter] = &letters.list()[..] else {
        panic!("one letter: {:?}", letters.list())
    };
    assert_eq!(letter.agent, "primary");
    let classes: Vec<ErrorClass> = letter.attempts.iter().map(|a| a.class).collect();
    assert_eq!(classes, vec![ErrorClass::Transient, ErrorClass::Permanent]);
    assert_eq!(letter.input.decode::<String>().unwrap(), "draft");
    // Its cost so far: what both attempts spent.
    assert_eq!(letter.cost, spent(140, 10));
    let AskError::Exhausted { attempts, .. } = &error else {
        unreachable!()
    };
    let usage: Vec<_> = attempts.iter().map(|a| a.usage).collect();
    assert_eq!(usage, vec![spent(100, 7), spent(40, 3)]);

    // The cause fixed (the script's failures are used up), a redrive answers and removes it.
    let redriven = letters.redrive(letter.id, &agent(&system, "primary")).await;
    assert!(redriven.is_ok(), "{redriven:?}");
    assert!(letters.is_empty());
}
