//! Errors that don't crash, in the call path: validators, an inspector, votes with red flags,
//! confidence tracking and loop detection (issue 18). Paused clock unless a multi-thread
//! runtime is the point.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use overseer_agent::semantic::confidence::ConfidenceConfig;
use overseer_agent::semantic::loop_detect::{LoopConfig, LoopThresholds};
use overseer_agent::semantic::red_flag::RedFlagRules;
use overseer_agent::semantic::validator::from_predicate;
use overseer_agent::semantic::vote::{AnswerKey, VoteRule};
use overseer_agent::{
    Agent, AgentContext, AgentError, AgentSpec, AskError, Classify, ErrorClass, Finding,
    Inspection, InspectionOutcome, LoopAction, SemanticConfig, SemanticEvent, System, SystemEvent,
    Usage, Verdict, VoteSpec,
};
use overseer_breaker::{Backoff, BreakerConfig, BreakerRegistry, State};
use overseer_budget::{Budget, Dimension, Limits};
use overseer_supervisor::SupervisorSpec;
use serde_json::json;

/// Answers from a script, in turn ("ok" when it runs out), and counts the tasks it handled.
#[derive(Clone, Default)]
struct Script {
    answers: Arc<Mutex<VecDeque<String>>>,
    handled: Arc<AtomicU32>,
}

impl Script {
    fn of(answers: &[&str]) -> Self {
        let script = Self::default();
        script
            .answers
            .lock()
            .unwrap()
            .extend(answers.iter().map(|a| a.to_string()));
        script
    }

    fn handled(&self) -> u32 {
        self.handled.load(Ordering::SeqCst)
    }
}

/// The task: a topic, and the feedback of a rejection if this is a retry. `crash` panics.
#[derive(Debug, Clone, PartialEq)]
struct Ask {
    topic: String,
    feedback: Option<String>,
}

fn ask(topic: &str) -> Ask {
    Ask {
        topic: topic.into(),
        feedback: None,
    }
}

struct Scripted(Script);

impl Agent for Scripted {
    type Task = Ask;
    type Output = String;

    fn task_type(task: &Ask) -> &'static str {
        if task.topic == "cite" {
            "cite"
        } else {
            "answer"
        }
    }

    fn estimate(_: &Ask) -> Usage {
        Usage::new(10, 0, 0)
    }

    async fn handle(&mut self, ctx: &mut AgentContext, task: Ask) -> Result<String, AgentError> {
        self.0.handled.fetch_add(1, Ordering::SeqCst);
        ctx.report_usage(Usage::new(10, 0, 0));
        if task.topic == "crash" {
            panic!("crashed on purpose");
        }
        if let Some(feedback) = task.feedback {
            return Ok(format!("fixed: {feedback}"));
        }
        let next = self.0.answers.lock().unwrap().pop_front();
        Ok(next.unwrap_or_else(|| "ok".into()))
    }
}

fn breakers(consecutive: u32) -> BreakerRegistry {
    BreakerRegistry::new(
        BreakerConfig::default()
            .consecutive_failures(Some(consecutive))
            .open_duration(Backoff::fixed(Duration::from_secs(30)))
            .half_open_probes(1),
    )
    .unwrap()
}

async fn start(system: &System, specs: Vec<AgentSpec<Scripted>>) {
    let mut root = SupervisorSpec::one_for_one("root").intensity(100, Duration::from_secs(1));
    for spec in specs {
        root = root.child(system.agent(spec).unwrap());
    }
    system.start(root).await.unwrap();
}

fn semantic_events(rx: &mut tokio::sync::broadcast::Receiver<SystemEvent>) -> Vec<SemanticEvent> {
    std::iter::from_fn(|| rx.try_recv().ok())
        .filter_map(|event| match event {
            SystemEvent::Semantic(found) => Some(found),
            _ => None,
        })
        .collect()
}

fn breaker_moves(events: &[SystemEvent], agent: &str) -> Vec<(State, State)> {
    events
        .iter()
        .filter_map(|event| match event {
            SystemEvent::Breaker(moved) if moved.agent.as_str() == agent => {
                Some((moved.from, moved.to))
            }
            _ => None,
        })
        .collect()
}

fn no_garbage() -> impl overseer_agent::semantic::validator::Validator<String> {
    from_predicate("no garbage", |out: &String| !out.contains("garbage"))
}

#[tokio::test(start_paused = true)]
async fn validators_feed_breakers_exactly_as_crashes_do() {
    let system = System::builder().breakers(breakers(3)).build().unwrap();
    let liar = Script::of(&["garbage"; 10]);
    let crasher = Script::default();
    let (l, c) = (liar.clone(), crasher.clone());
    start(
        &system,
        vec![
            AgentSpec::new("liar", move || Scripted(l.clone())).validator(no_garbage()),
            AgentSpec::new("crasher", move || Scripted(c.clone())),
        ],
    )
    .await;
    let mut rx = system.subscribe();
    let liar_ref = system.agent_ref::<Scripted>("liar").unwrap();
    let crasher_ref = system.agent_ref::<Scripted>("crasher").unwrap();
    for _ in 0..3 {
        let rejected = liar_ref.ask(ask("q")).await.unwrap_err();
        assert!(
            matches!(&rejected, AskError::Failed { error: AgentError::InvalidOutput(reason), .. } if reason == "failed: no garbage"),
            "{rejected:?}"
        );
        assert_eq!(rejected.class(), ErrorClass::InvalidOutput);
        assert_eq!(rejected.kind(), "invalid_output");
        let crashed = crasher_ref.ask(ask("crash")).await.unwrap_err();
        assert!(matches!(crashed, AskError::Crashed { .. }), "{crashed:?}");
    }
    // Both breakers opened on the third failure, and refuse the fourth ask alike.
    for agent in [&liar_ref, &crasher_ref] {
        assert!(matches!(
            agent.ask(ask("q")).await,
            Err(AskError::BreakerOpen { .. })
        ));
    }
    assert_eq!((liar.handled(), crasher.handled()), (3, 3));
    let events: Vec<SystemEvent> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
    let opened = vec![(State::Closed, State::Open)];
    assert_eq!(breaker_moves(&events, "liar"), opened);
    assert_eq!(breaker_moves(&events, "crasher"), opened);
    let rejections = events
        .iter()
        .filter(|event| {
            matches!(event, SystemEvent::Semantic(SemanticEvent { finding: Finding::Rejected { reason, .. }, .. }) if reason == "failed: no garbage")
        })
        .count();
    assert_eq!(rejections, 3);
    system.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_task_type_validator_judges_that_type_only_and_an_accepted_output_is_returned() {
    let system = System::builder().build().unwrap();
    let script = Script::of(&["no link", "no link", "see https://x"]);
    let s = script.clone();
    start(
        &system,
        vec![
            AgentSpec::new("w", move || Scripted(s.clone())).task_validator(
                "cite",
                from_predicate("cites", |o: &String| o.contains("http")),
            ),
        ],
    )
    .await;
    let w = system.agent_ref::<Scripted>("w").unwrap();
    assert_eq!(w.ask(ask("q")).await.unwrap(), "no link");
    assert!(matches!(
        w.ask(ask("cite")).await,
        Err(AskError::Failed {
            error: AgentError::InvalidOutput(_),
            ..
        })
    ));
    assert_eq!(w.ask(ask("cite")).await.unwrap(), "see https://x");
    system.shutdown(Duration::from_secs(5)).await.unwrap();
}

/// Rejects outputs starting with "garbage" with a reason, corrects "typo", accepts the rest.
struct Inspector;

impl Agent for Inspector {
    type Task = Inspection<Ask, String>;
    type Output = Verdict<String>;

    async fn handle(
        &mut self,
        _: &mut AgentContext,
        seen: Self::Task,
    ) -> Result<Verdict<String>, AgentError> {
        Ok(if seen.output.starts_with("garbage") {
            Verdict::Reject(format!(
                "{} is not an answer to {}",
                seen.output, seen.task.topic
            ))
        } else if seen.output == "typo" {
            Verdict::Correct("typo fixed".into())
        } else {
            Verdict::Accept
        })
    }
}

#[tokio::test(start_paused = true)]
async fn an_inspectors_rejection_reaches_the_caller_with_its_reason_and_the_producer_on_retry() {
    let system = System::builder().breakers(breakers(5)).build().unwrap();
    let script = Script::of(&["garbage", "typo", "fine"]);
    let s = script.clone();
    let root = SupervisorSpec::one_for_one("root")
        .child(
            system
                .agent(AgentSpec::new("producer", move || Scripted(s.clone())))
                .unwrap(),
        )
        .child(
            system
                .agent(AgentSpec::new("inspector", || Inspector))
                .unwrap(),
        );
    system.start(root).await.unwrap();
    let mut rx = system.subscribe();
    let producer = system.agent_ref::<Scripted>("producer").unwrap();
    let inspector = system.agent_ref::<Inspector>("inspector").unwrap();

    let rejected = producer
        .ask_inspected(ask("why"), &inspector)
        .await
        .unwrap_err();
    let reason = match &rejected {
        AskError::Failed {
            agent,
            error: AgentError::InvalidOutput(reason),
        } if agent.as_str() == "producer" => reason.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(reason, "garbage is not an answer to why");
    assert_eq!(rejected.class(), ErrorClass::InvalidOutput);
    // A retry that feeds the reason back to the producer.
    let retried = Ask {
        topic: "why".into(),
        feedback: Some(reason),
    };
    assert_eq!(
        producer.ask_inspected(retried, &inspector).await.unwrap(),
        "fixed: garbage is not an answer to why"
    );
    assert_eq!(
        producer
            .ask_inspected(ask("why"), &inspector)
            .await
            .unwrap(),
        "typo fixed"
    );
    assert_eq!(
        producer
            .ask_inspected(ask("why"), &inspector)
            .await
            .unwrap(),
        "fine"
    );
    let verdicts: Vec<InspectionOutcome> = semantic_events(&mut rx)
        .into_iter()
        .filter_map(|event| match event.finding {
            Finding::Inspected { verdict, .. } => Some(verdict),
            _ => None,
        })
        .collect();
    use InspectionOutcome::*;
    assert_eq!(verdicts, [Rejected, Accepted, Corrected, Accepted]);
    // The rejection counted as one failure of the producer's breaker.
    let snapshot = system
        .breakers()
        .unwrap()
        .get(&overseer_breaker::BreakerKey::new("producer", "answer"))
        .unwrap()
        .snapshot();
    assert_eq!(snapshot.state, State::Closed);
    system.shutdown(Duration::from_secs(5)).await.unwrap();
}

async fn voter(answers: &[&str], consecutive: Option<u32>) -> (System, Script) {
    let mut builder = System::builder();
    if let Some(consecutive) = consecutive {
        builder = builder.breakers(breakers(consecutive));
    }
    let system = builder.build().unwrap();
    let script = Script::of(answers);
    let s = script.clone();
    start(
        &system,
        vec![AgentSpec::new("voter", move || Scripted(s.clone()))],
    )
    .await;
    (system, script)
}

#[tokio::test(start_paused = true)]
async fn first_to_ahead_by_k_stops_as_soon_as_the_margin_is_reached() {
    let (system, script) = voter(&["a", "b", "a", "a", "b", "b", "b"], None).await;
    let mut rx = system.subscribe();
    let v = system.agent_ref::<Scripted>("voter").unwrap();
    let spec = VoteSpec::new(VoteRule::first_to_ahead_by(2, 10)).unwrap();
    let voted = v.ask_voting(ask("q"), &spec).await.unwrap();
    assert_eq!(
        (voted.winner.as_str(), voted.margin, voted.samples_used),
        ("a", 2, 4)
    );
    assert_eq!(voted.output, "a");
    assert_eq!(voted.usage, Usage::new(40, 0, 0));
    // Not one sample after the decision.
    assert_eq!(script.handled(), 4);
    let ended = semantic_events(&mut rx)
        .into_iter()
        .find_map(|event| match event.finding {
            found @ Finding::Voted { .. } => Some(found),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        ended,
        Finding::Voted {
            decided: true,
            winner: Some("a".into()),
            margin: 2,
            samples_used: 4,
            red_flags: 0,
            cap: 10
        }
    );
    system.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_vote_never_exceeds_its_cap() {
    let alternating: Vec<&str> = ["a", "b"].iter().copied().cycle().take(20).collect();
    let (system, script) = voter(&alternating, None).await;
    let v = system.agent_ref::<Scripted>("voter").unwrap();
    let spec = VoteSpec::new(VoteRule::first_to_ahead_by(2, 6)).unwrap();
    let undecided = v.ask_voting(ask("q"), &spec).await.unwrap_err();
    assert!(
        matches!(&undecided, AskError::Failed { error: AgentError::Failed(message), .. } if message.contains("not decided within 6 samples")),
        "{undecided:?}"
    );
    assert_eq!(script.handled(), 6);
    system.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn red_flagged_samples_are_never_counted_as_votes() {
    let long = "x".repeat(50);
    let (system, script) = voter(
        &[&long, &long, "not json", r#"{"n": 4}"#, r#"{"n":4}"#],
        Some(10),
    )
    .await;
    let mut rx = system.subscribe();
    let v = system.agent_ref::<Scripted>("voter").unwrap();
    let spec = VoteSpec::new(VoteRule::first_to_ahead_by(2, 8))
        .unwrap()
        .key(AnswerKey::JsonPointer("/n".into()))
        .red_flags(RedFlagRules::new().max_chars(20));
    let voted = v.ask_voting(ask("q"), &spec).await.unwrap();
    // Counted, the two long answers would have won at once.
    assert_eq!((voted.winner.as_str(), voted.margin), ("4", 2));
    assert_eq!((voted.samples_used, voted.red_flags), (5, 3));
    assert_eq!(script.handled(), 5);
    let flags: Vec<String> = semantic_events(&mut rx)
        .into_iter()
        .filter_map(|event| match event.finding {
            Finding::RedFlagged { check, .. } => Some(check),
            _ => None,
        })
        .collect();
    assert_eq!(flags, ["too long", "too long", "parse"]);
    system.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn red_flags_count_as_failures_for_the_breaker() {
    let (system, script) = voter(&["garbage garbage garbage"; 10], Some(3)).await;
    let v = system.agent_ref::<Scripted>("voter").unwrap();
    let spec = VoteSpec::new(VoteRule::first_to_ahead_by(3, 10))
        .unwrap()
        .red_flags(RedFlagRules::new().max_chars(10));
    // Three red flags open the breaker: the vote ends refused, not after ten samples.
    let refused = v.ask_voting(ask("q"), &spec).await.unwrap_err();
    assert!(
        matches!(refused, AskError::BreakerOpen { .. }),
        "{refused:?}"
    );
    assert_eq!(script.handled(), 3);
    system.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vote_never_overshoots_the_budget_under_concurrency() {
    const LIMIT: u64 = 100;
    let budget = Budget::builder()
        .agent_limits("voter", Limits::new().tokens(LIMIT))
        .build()
        .unwrap();
    let system = System::builder().budget(budget.clone()).build().unwrap();
    let script = Script::default();
    let s = script.clone();
    start(
        &system,
        vec![AgentSpec::new("voter", move || Scripted(s.clone()))],
    )
    .await;
    let v = system.agent_ref::<Scripted>("voter").unwrap();
    // Each vote may take 4 samples of 10 tokens; it takes 2 (all answers agree).
    let spec = Arc::new(VoteSpec::new(VoteRule::first_to_ahead_by(2, 4)).unwrap());
    let votes: Vec<_> = (0..12)
        .map(|_| {
            let (v, spec) = (v.clone(), Arc::clone(&spec));
            tokio::spawn(async move { v.ask_voting(ask("q"), &spec).await })
        })
        .collect();
    let (mut decided, mut refused) = (0, 0);
    for vote in votes {
        match vote.await.unwrap() {
            Ok(voted) => {
                assert_eq!(voted.samples_used, 2);
                decided += 1;
            }
            Err(AskError::BudgetExceeded { .. }) => refused += 1,
            Err(other) => panic!("{other:?}"),
        }
    }
    let spent = budget.agent("voter").unwrap().committed(Dimension::Tokens);
    assert!(spent <= LIMIT, "spent {spent} of {LIMIT}");
    assert_eq!(spent, u64::from(script.handled()) * 10);
    assert_eq!(spent, decided * 20);
    assert!(
        decided >= 1 && refused >= 1,
        "{decided} decided, {refused} refused"
    );
    // Nothing stays reserved.
    assert_eq!(
        budget.agent("voter").unwrap().reserved(Dimension::Tokens),
        0
    );
    system.shutdown(Duration::from_secs(5)).await.unwrap();
}

/// Calls the tool `search` with the task's arguments `calls` times.
struct Looper;

#[derive(Debug, Clone)]
struct Loop {
    calls: u32,
    same_args: bool,
}

impl Agent for Looper {
    type Task = Loop;
    type Output = u32;

    async fn handle(&mut self, ctx: &mut AgentContext, task: Loop) -> Result<u32, AgentError> {
        for i in 0..task.calls {
            let query = if task.same_args { 0 } else { i };
            let args = json!({"q": query, "lang": "en"});
            ctx.tool_call("search", &args, Some(&json!(format!("result {query}"))))?;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        Ok(task.calls)
    }
}

async fn looper(action: LoopAction) -> System {
    let loops = LoopConfig::new(LoopThresholds::default().repeats(3).no_progress(100, None));
    let system = System::builder()
        .breakers(breakers(100))
        .semantic(SemanticConfig::new().loops(loops, action).unwrap())
        .build()
        .unwrap();
    let root = SupervisorSpec::one_for_one("root")
        .child(system.agent(AgentSpec::new("looper", || Looper)).unwrap());
    system.start(root).await.unwrap();
    system
}

#[tokio::test(start_paused = true)]
async fn a_loop_is_detected_at_its_threshold_and_not_before() {
    let system = looper(LoopAction::Fail).await;
    let mut rx = system.subscribe();
    let l = system.agent_ref::<Looper>("looper").unwrap();
    // Different arguments every time: no loop however many calls.
    assert_eq!(
        l.ask(Loop {
            calls: 10,
            same_args: false
        })
        .await
        .unwrap(),
        10
    );
    // Two identical calls in a row: below the threshold.
    assert_eq!(
        l.ask(Loop {
            calls: 2,
            same_args: true
        })
        .await
        .unwrap(),
        2
    );
    assert!(semantic_events(&mut rx).is_empty());
    // The third identical call in a row (the streak runs across tasks) fails, with the detector's explanation.
    let failed = l
        .ask(Loop {
            calls: 1,
            same_args: true,
        })
        .await
        .unwrap_err();
    let message = match &failed {
        AskError::Failed {
            error: AgentError::Permanent(message),
            ..
        } => message.clone(),
        other => panic!("{other:?}"),
    };
    assert!(
        message.starts_with("loop detected: repeated call: looper called search"),
        "{message}"
    );
    assert!(
        message.contains("3 times in a row (threshold 3)"),
        "{message}"
    );
    assert_eq!(failed.class(), ErrorClass::Permanent);
    let found = semantic_events(&mut rx);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(matches!(
        &found[0].finding,
        Finding::Loop { rule, action: LoopAction::Fail, .. } if rule == "repeated_call"
    ));
    system.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_loop_can_open_the_breaker_of_its_agent_and_task_type_instead() {
    let system = looper(LoopAction::OpenBreaker).await;
    let l = system.agent_ref::<Looper>("looper").unwrap();
    // The call goes on (the task ends), and the breaker is open from then on.
    assert_eq!(
        l.ask(Loop {
            calls: 4,
            same_args: true
        })
        .await
        .unwrap(),
        4
    );
    assert!(matches!(
        l.ask(Loop {
            calls: 1,
            same_args: false
        })
        .await,
        Err(AskError::BreakerOpen { .. })
    ));
    system.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn an_agent_confidently_wrong_too_often_is_flagged() {
    let system = System::builder()
        .semantic(
            SemanticConfig::new()
                .confidence(ConfidenceConfig::default().min_samples(4))
                .unwrap(),
        )
        .build()
        .unwrap();
    let script = Script::of(&["garbage", "right", "garbage", "garbage", "right"]);
    let s = script.clone();
    start(
        &system,
        vec![AgentSpec::new("oracle", move || Scripted(s.clone()))
            .validator(no_garbage())
            .confidence(|_: &String| Some(0.99))],
    )
    .await;
    let mut rx = system.subscribe();
    let oracle = system.agent_ref::<Scripted>("oracle").unwrap();
    for _ in 0..3 {
        let _ = oracle.ask(ask("q")).await;
    }
    assert!(
        oracle.calibration("answer").unwrap().1.is_none(),
        "3 judged: below min_samples"
    );
    let _ = oracle.ask(ask("q")).await;
    let (calibration, flag) = oracle.calibration("answer").unwrap();
    assert_eq!((calibration.high_outputs, calibration.high_wrong), (4, 3));
    assert_eq!(flag.unwrap().wrong, 3);
    let flagged: Vec<SemanticEvent> = semantic_events(&mut rx)
        .into_iter()
        .filter(|event| matches!(event.finding, Finding::OverConfident { .. }))
        .collect();
    assert_eq!(flagged.len(), 1);
    assert_eq!(flagged[0].task_type, "answer");
    system.shutdown(Duration::from_secs(5)).await.unwrap();
}
