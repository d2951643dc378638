//! Errors that don't crash, in the call path, part two (issue 18): delegation ping-pong and
//! stalls caught at their thresholds and not before, a flagged agent's outputs routed to an
//! inspector, and one confidence record per output. Paused clock throughout.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use overseer_agent::semantic::confidence::ConfidenceConfig;
use overseer_agent::semantic::loop_detect::{LoopConfig, LoopThresholds};
use overseer_agent::semantic::validator::from_predicate;
use overseer_agent::semantic::vote::VoteRule;
use overseer_agent::{
    Agent, AgentContext, AgentError, AgentName, AgentRef, AgentSpec, AskError, Finding, Inspection,
    InspectionOutcome, LoopAction, ModelClient, ModelError, ModelRequest, ModelResponse,
    RouteError, SemanticConfig, SemanticEvent, System, SystemEvent, Usage, Verdict, VoteSpec,
};
use overseer_breaker::{BreakerConfig, BreakerRegistry};
use overseer_supervisor::SupervisorSpec;
use serde_json::json;
use tokio::sync::mpsc;

fn semantic_events(rx: &mut tokio::sync::broadcast::Receiver<SystemEvent>) -> Vec<SemanticEvent> {
    std::iter::from_fn(|| rx.try_recv().ok())
        .filter_map(|event| match event {
            SystemEvent::Semantic(found) => Some(found),
            _ => None,
        })
        .collect()
}

fn loop_findings(events: &[SemanticEvent]) -> Vec<(String, String, LoopAction)> {
    events
        .iter()
        .filter_map(|event| match &event.finding {
            Finding::Loop {
                rule,
                explanation,
                action,
            } => Some((rule.clone(), explanation.clone(), *action)),
            _ => None,
        })
        .collect()
}

fn watching(thresholds: LoopThresholds, action: LoopAction) -> System {
    let loops = LoopConfig::new(thresholds);
    // Handlers wait minutes between calls here: longer than the default deadline.
    System::builder()
        .ask_timeout(Duration::from_secs(3600))
        .breakers(BreakerRegistry::new(BreakerConfig::default()).unwrap())
        .semantic(SemanticConfig::new().loops(loops, action).unwrap())
        .build()
        .unwrap()
}

// ---------------------------------------------------------------- delegation ping-pong

/// Hands a `Hop` to its peer with a `tell` (reporting the delegation first) until none are
/// left, waiting `pause` before each hand-off; says how the chain ended.
struct Relay {
    peer: Arc<OnceLock<AgentRef<Relay>>>,
    ended: mpsc::UnboundedSender<Result<u32, String>>,
}

#[derive(Debug, Clone)]
struct Hop {
    left: u32,
    made: u32,
    pause: Duration,
}

impl Agent for Relay {
    type Task = Hop;
    type Output = ();

    fn task_type(_: &Hop) -> &'static str {
        "draft"
    }

    async fn handle(&mut self, ctx: &mut AgentContext, hop: Hop) -> Result<(), AgentError> {
        if hop.left == 0 {
            let _ = self.ended.send(Ok(hop.made));
            return Ok(());
        }
        tokio::time::sleep(hop.pause).await;
        let peer = self.peer.get().expect("wired before the first hop");
        if let Err(error) = ctx.delegated(peer.name(), "draft") {
            let _ = self.ended.send(Err(error.to_string()));
            return Err(error);
        }
        let next = Hop {
            left: hop.left - 1,
            made: hop.made + 1,
            ..hop
        };
        peer.tell(next)
            .map_err(|error| AgentError::fatal(error.to_string()))
    }
}

struct Pair {
    system: System,
    writer: AgentRef<Relay>,
    ended: mpsc::UnboundedReceiver<Result<u32, String>>,
}

/// Starts "writer" and "editor", each made by `make` with a cell that will hold the other's
/// handle, and wires them: `(writer, editor)`.
async fn start_peers<A: Agent, F: Fn() -> A + Send + Sync + 'static>(
    system: &System,
    make: impl Fn(Arc<OnceLock<AgentRef<A>>>) -> F,
) -> (AgentRef<A>, AgentRef<A>) {
    let (to_editor, to_writer) = (Arc::new(OnceLock::new()), Arc::new(OnceLock::new()));
    let root = SupervisorSpec::one_for_one("root")
        .child(
            system
                .agent(AgentSpec::new("writer", make(Arc::clone(&to_editor))))
                .unwrap(),
        )
        .child(
            system
                .agent(AgentSpec::new("editor", make(Arc::clone(&to_writer))))
                .unwrap(),
        );
    system.start(root).await.unwrap();
    let writer = system.agent_ref::<A>("writer").unwrap();
    let editor = system.agent_ref::<A>("editor").unwrap();
    let _ = to_editor.set(editor.clone());
    let _ = to_writer.set(writer.clone());
    (writer, editor)
}

async fn pair(action: LoopAction) -> Pair {
    let system = watching(LoopThresholds::default(), action);
    let (tx, ended) = mpsc::unbounded_channel();
    let relay = |peer: Arc<OnceLock<AgentRef<Relay>>>| {
        let tx = tx.clone();
        move || Relay {
            peer: Arc::clone(&peer),
            ended: tx.clone(),
        }
    };
    let (writer, _editor) = start_peers(&system, relay).await;
    Pair {
        system,
        writer,
        ended,
    }
}

fn hops(left: u32, pause: Duration) -> Hop {
    Hop {
        left,
        made: 0,
        pause,
    }
}

#[tokio::test(start_paused = true)]
async fn a_ping_pong_is_caught_at_its_threshold_and_not_before() {
    let mut pair = pair(LoopAction::Fail).await;
    let mut rx = pair.system.subscribe();
    // Three hand-offs (writer, editor, writer): one short of the default threshold of 4.
    pair.writer.tell(hops(3, Duration::from_secs(10))).unwrap();
    assert_eq!(pair.ended.recv().await.unwrap(), Ok(3));
    assert!(loop_findings(&semantic_events(&mut rx)).is_empty());
    // A chain that would go on: the fourth alternating hand-off fails, with the detector's
    // words. (Starting again from the writer restarts the count.)
    pair.writer.tell(hops(10, Duration::from_secs(10))).unwrap();
    let failed = pair.ended.recv().await.unwrap().unwrap_err();
    assert!(
        failed.contains("loop detected: delegation ping-pong: writer and editor handed draft back and forth 4 times"),
        "{failed}"
    );
    assert!(failed.contains("(threshold 4 within 300s)"), "{failed}");
    let found = semantic_events(&mut rx);
    let loops = loop_findings(&found);
    assert_eq!(loops.len(), 1, "{found:?}");
    assert_eq!(loops[0].0, "ping_pong");
    assert_eq!(loops[0].2, LoopAction::Fail);
    // The event is about the agent that made the fourth hand-off, the editor.
    let event = found
        .iter()
        .find(|event| matches!(event.finding, Finding::Loop { .. }))
        .unwrap();
    assert_eq!(event.agent, "editor");
    assert_eq!(event.task_type, "draft");
    pair.system.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn hand_offs_spread_wider_than_the_window_are_no_ping_pong() {
    let mut pair = pair(LoopAction::Fail).await;
    let mut rx = pair.system.subscribe();
    // One hand-off every 3 minutes: never 4 within 5 minutes.
    pair.writer
        .tell(hops(12, Duration::from_secs(180)))
        .unwrap();
    assert_eq!(pair.ended.recv().await.unwrap(), Ok(12));
    assert!(loop_findings(&semantic_events(&mut rx)).is_empty());
    pair.system.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_reported_ping_pong_goes_on_with_an_event_per_hand_off_past_the_threshold() {
    let mut pair = pair(LoopAction::Report).await;
    let mut rx = pair.system.subscribe();
    pair.writer.tell(hops(6, Duration::from_secs(1))).unwrap();
    assert_eq!(pair.ended.recv().await.unwrap(), Ok(6));
    let loops = loop_findings(&semantic_events(&mut rx));
    // Hand-offs 4, 5 and 6 each reach the threshold (the chain keeps its last 4).
    assert_eq!(loops.len(), 3, "{loops:?}");
    assert!(loops
        .iter()
        .all(|(rule, _, action)| rule == "ping_pong" && *action == LoopAction::Report));
    pair.system.shutdown(Duration::from_secs(5)).await.unwrap();
}

/// Asks its peer to answer (`ctx.delegate`) or answers; counts the answers it gave.
struct Peer {
    peer: Arc<OnceLock<AgentRef<Peer>>>,
    answered: Arc<AtomicU32>,
}

#[derive(Debug, Clone)]
enum Turn {
    Delegate,
    Answer,
}

impl Agent for Peer {
    type Task = Turn;
    type Output = &'static str;

    fn task_type(_: &Turn) -> &'static str {
        "draft"
    }

    async fn handle(
        &mut self,
        ctx: &mut AgentContext,
        turn: Turn,
    ) -> Result<&'static str, AgentError> {
        match turn {
            Turn::Answer => {
                self.answered.fetch_add(1, Ordering::SeqCst);
                Ok("answered")
            }
            Turn::Delegate => {
                let peer = self.peer.get().expect("wired before the first turn");
                ctx.delegate(peer, Turn::Answer).await
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn asks_made_with_ctx_delegate_are_hand_offs_for_the_ping_pong_rule() {
    let system = watching(LoopThresholds::default(), LoopAction::Fail);
    let answered = Arc::new(AtomicU32::new(0));
    let peer = |to: Arc<OnceLock<AgentRef<Peer>>>| {
        let answered = Arc::clone(&answered);
        move || Peer {
            peer: Arc::clone(&to),
            answered: Arc::clone(&answered),
        }
    };
    let (writer, editor) = start_peers(&system, peer).await;
    // writer→editor, editor→writer, writer→editor: three hand-offs, each answered.
    for asker in [&writer, &editor, &writer] {
        assert_eq!(asker.ask(Turn::Delegate).await.unwrap(), "answered");
    }
    // The fourth (editor→writer) completes the ping-pong: the writer is not asked.
    let failed = editor.ask(Turn::Delegate).await.unwrap_err();
    assert!(
        failed.to_string().contains("delegation ping-pong"),
        "{failed}"
    );
    assert_eq!(answered.load(Ordering::SeqCst), 3);
    system.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_delegations_failure_keeps_its_retry_class() {
    let system = watching(LoopThresholds::default(), LoopAction::Report);
    let to = Arc::new(OnceLock::new());
    let t = Arc::clone(&to);
    let writer = system
        .agent(AgentSpec::new("writer", move || Peer {
            peer: Arc::clone(&t),
            answered: Arc::new(AtomicU32::new(0)),
        }))
        .unwrap();
    // The editor is declared but never placed in the tree: its asks are refused for good.
    let _editor = system
        .agent(AgentSpec::new("editor", || Peer {
            peer: Arc::new(OnceLock::new()),
            answered: Arc::new(AtomicU32::new(0)),
        }))
        .unwrap();
    system
        .start(SupervisorSpec::one_for_one("root").child(writer))
        .await
        .unwrap();
    let _ = to.set(system.agent_ref::<Peer>("editor").unwrap());
    let writer = system.agent_ref::<Peer>("writer").unwrap();
    let failed = writer.ask(Turn::Delegate).await.unwrap_err();
    let AskError::Failed {
        error: AgentError::Permanent(message),
        ..
    } = &failed
    else {
        panic!("{failed:?}");
    };
    assert!(message.starts_with("asking editor: "), "{message}");
    system.shutdown(Duration::from_secs(5)).await.unwrap();
}

// ---------------------------------------------------------------- stalls

/// Polls a status tool with new arguments each time (so no call repeats), `pause` apart;
/// the tool answers the same thing every time: no progress.
struct Poller;

#[derive(Debug, Clone)]
struct Poll {
    calls: u32,
    pause: Duration,
}

static POLLS: AtomicU32 = AtomicU32::new(0);

impl Agent for Poller {
    type Task = Poll;
    type Output = u32;

    fn task_type(_: &Poll) -> &'static str {
        "wait"
    }

    async fn handle(&mut self, ctx: &mut AgentContext, task: Poll) -> Result<u32, AgentError> {
        for _ in 0..task.calls {
            tokio::time::sleep(task.pause).await;
            let n = POLLS.fetch_add(1, Ordering::SeqCst);
            ctx.tool_call("status", &json!({"poll": n}), Some(&json!("pending")))?;
        }
        Ok(task.calls)
    }
}

async fn poller(thresholds: LoopThresholds, action: LoopAction) -> (System, AgentRef<Poller>) {
    let system = watching(thresholds, action);
    let root = SupervisorSpec::one_for_one("root")
        .child(system.agent(AgentSpec::new("poller", || Poller)).unwrap());
    system.start(root).await.unwrap();
    let poller = system.agent_ref::<Poller>("poller").unwrap();
    (system, poller)
}

fn polls(calls: u32, pause: Duration) -> Poll {
    Poll { calls, pause }
}

#[tokio::test(start_paused = true)]
async fn a_stall_by_calls_is_caught_at_its_threshold_and_not_before() {
    let thresholds = LoopThresholds::default().no_progress(4, None);
    let (system, poller) = poller(thresholds, LoopAction::Fail).await;
    let mut rx = system.subscribe();
    // The first answer is new; the next four are not: the fifth call reaches 4.
    assert_eq!(
        poller.ask(polls(4, Duration::from_secs(1))).await.unwrap(),
        4
    );
    assert!(loop_findings(&semantic_events(&mut rx)).is_empty());
    let failed = poller
        .ask(polls(1, Duration::from_secs(1)))
        .await
        .unwrap_err();
    let AskError::Failed {
        error: AgentError::Permanent(message),
        ..
    } = &failed
    else {
        panic!("{failed:?}");
    };
    assert!(
        message.starts_with("loop detected: no progress: poller's last 4 calls to status"),
        "{message}"
    );
    assert!(message.contains("(call threshold 4 reached)"), "{message}");
    let loops = loop_findings(&semantic_events(&mut rx));
    assert_eq!(loops.len(), 1, "{loops:?}");
    assert_eq!(loops[0].0, "no_progress");
    system.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_stall_by_time_is_caught_at_its_threshold_and_not_before() {
    let thresholds = LoopThresholds::default().no_progress(100, Some(Duration::from_secs(60)));
    let (system, poller) = poller(thresholds, LoopAction::Report).await;
    let mut rx = system.subscribe();
    // Calls at 20, 40, 60 s (the first answer new at 20 s): 40 s without progress.
    poller.ask(polls(3, Duration::from_secs(20))).await.unwrap();
    assert!(loop_findings(&semantic_events(&mut rx)).is_empty());
    // The call at 80 s is 60 s after the last new answer: reported, and the task goes on.
    poller.ask(polls(1, Duration::from_secs(20))).await.unwrap();
    let loops = loop_findings(&semantic_events(&mut rx));
    assert_eq!(loops.len(), 1, "{loops:?}");
    let (rule, explanation, action) = &loops[0];
    assert_eq!(
        (rule.as_str(), *action),
        ("no_progress", LoopAction::Report)
    );
    assert!(
        explanation.contains("over 60s produced no new output (time threshold 60s reached)"),
        "{explanation}"
    );
    system.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_stall_can_open_the_breaker_instead() {
    let thresholds = LoopThresholds::default().no_progress(3, None);
    let (system, poller) = poller(thresholds, LoopAction::OpenBreaker).await;
    let mut rx = system.subscribe();
    // The stall is reached at the fourth call; the task itself ends.
    assert_eq!(
        poller.ask(polls(4, Duration::from_secs(1))).await.unwrap(),
        4
    );
    let loops = loop_findings(&semantic_events(&mut rx));
    assert_eq!(loops.len(), 1, "{loops:?}");
    assert_eq!(loops[0].2, LoopAction::OpenBreaker);
    assert!(matches!(
        poller.ask(polls(1, Duration::from_secs(1))).await,
        Err(AskError::BreakerOpen { task_type, .. }) if task_type == "wait"
    ));
    system.shutdown(Duration::from_secs(5)).await.unwrap();
}

/// A model that answers every prompt with the same draft, at 40,000 tokens a call.
struct SameDraft;

impl ModelClient for SameDraft {
    async fn complete(&self, _: ModelRequest) -> Result<ModelResponse, ModelError> {
        Ok(ModelResponse::new(
            "the same draft",
            Usage::new(30_000, 10_000, 0),
        ))
    }
}

/// Asks its model `task` times, a new prompt each time, a second apart.
struct Drafter;

static DRAFTS: AtomicU32 = AtomicU32::new(0);

impl Agent for Drafter {
    type Task = u32;
    type Output = u32;

    async fn handle(&mut self, ctx: &mut AgentContext, calls: u32) -> Result<u32, AgentError> {
        for _ in 0..calls {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let n = DRAFTS.fetch_add(1, Ordering::SeqCst);
            ctx.model(&SameDraft, ModelRequest::new(format!("draft number {n}")))
                .await?;
        }
        Ok(calls)
    }
}

#[tokio::test(start_paused = true)]
async fn a_stall_by_token_velocity_is_caught_at_its_threshold_and_not_before() {
    // The default: 100,000 tokens within a minute by calls that bring nothing new.
    let system = watching(LoopThresholds::default(), LoopAction::Fail);
    let root = SupervisorSpec::one_for_one("root")
        .child(system.agent(AgentSpec::new("drafter", || Drafter)).unwrap());
    system.start(root).await.unwrap();
    let drafter = system.agent_ref::<Drafter>("drafter").unwrap();
    let mut rx = system.subscribe();
    // The first draft is new; the next two bring nothing new: 80,000 tokens.
    assert_eq!(drafter.ask(3).await.unwrap(), 3);
    assert!(loop_findings(&semantic_events(&mut rx)).is_empty());
    // The fourth makes 120,000 within 3 s: caught long before 8 calls or 10 minutes.
    let failed = drafter.ask(1).await.unwrap_err();
    let AskError::Failed {
        error: AgentError::Permanent(message),
        ..
    } = &failed
    else {
        panic!("{failed:?}");
    };
    assert!(
        message.starts_with("loop detected: token velocity: drafter's last 3 calls to model spent 120000 tokens in 2s"),
        "{message}"
    );
    let loops = loop_findings(&semantic_events(&mut rx));
    assert_eq!(loops.len(), 1, "{loops:?}");
    assert_eq!(loops[0].0, "token_velocity");
    system.shutdown(Duration::from_secs(5)).await.unwrap();
}

// ---------------------------------------------------------------- votes and the loop detector

/// Searches for its task with one tool call, and answers what it found.
struct Searcher;

impl Agent for Searcher {
    type Task = String;
    type Output = String;

    async fn handle(
        &mut self,
        ctx: &mut AgentContext,
        query: String,
    ) -> Result<String, AgentError> {
        ctx.tool_call("search", &json!({"q": query}), Some(&json!("found")))?;
        Ok("found".into())
    }
}

#[tokio::test(start_paused = true)]
async fn a_votes_samples_are_not_taken_for_a_loop_but_plain_asks_still_are() {
    let thresholds = LoopThresholds::default().repeats(3).no_progress(100, None);
    let system = watching(thresholds, LoopAction::Fail);
    let root = SupervisorSpec::one_for_one("root").child(
        system
            .agent(AgentSpec::new("searcher", || Searcher))
            .unwrap(),
    );
    system.start(root).await.unwrap();
    let searcher = system.agent_ref::<Searcher>("searcher").unwrap();
    let mut rx = system.subscribe();
    // Four samples make the same call on purpose: a vote, not a loop.
    let spec = VoteSpec::new(VoteRule::first_to_ahead_by(4, 10)).unwrap();
    let voted = searcher.ask_voting("rust".into(), &spec).await.unwrap();
    assert_eq!((voted.winner.as_str(), voted.samples_used), ("found", 4));
    assert!(loop_findings(&semantic_events(&mut rx)).is_empty());
    // The samples left no streak behind: the third plain ask is the loop, not the first.
    for _ in 0..2 {
        searcher.ask("rust".into()).await.unwrap();
    }
    let failed = searcher.ask("rust".into()).await.unwrap_err();
    assert!(failed.to_string().contains("loop detected"), "{failed}");
    assert_eq!(
        loop_findings(&semantic_events(&mut rx))[0].0,
        "repeated_call"
    );
    system.shutdown(Duration::from_secs(5)).await.unwrap();
}

// ---------------------------------------------------------------- flagged agents, inspected

/// Answers from a script, in turn ("good" when it runs out), claiming 99 % every time.
struct Oracle(Arc<Mutex<VecDeque<&'static str>>>);

impl Agent for Oracle {
    type Task = String;
    type Output = String;

    fn task_type(task: &String) -> &'static str {
        if task == "cite" {
            "cite"
        } else {
            "answer"
        }
    }

    async fn handle(&mut self, _: &mut AgentContext, _: String) -> Result<String, AgentError> {
        let next = self.0.lock().unwrap().pop_front();
        Ok(next.unwrap_or("good").to_string())
    }
}

/// What an inspector saw: the producer, the task type, the output.
type Seen = Arc<Mutex<Vec<(AgentName, &'static str, String)>>>;

/// Accepts everything, and keeps what it saw.
struct Reviewer(Seen);

impl Agent for Reviewer {
    type Task = Inspection<String, String>;
    type Output = Verdict<String>;

    async fn handle(
        &mut self,
        _: &mut AgentContext,
        seen: Self::Task,
    ) -> Result<Verdict<String>, AgentError> {
        self.0
            .lock()
            .unwrap()
            .push((seen.producer, seen.task_type, seen.output));
        Ok(Verdict::Accept)
    }
}

struct Watched {
    system: System,
    oracle: AgentRef<Oracle>,
    reviewer: AgentRef<Reviewer>,
    seen: Seen,
}

async fn watched(answers: &[&'static str], confidence: ConfidenceConfig) -> Watched {
    let system = System::builder()
        .semantic(SemanticConfig::new().confidence(confidence).unwrap())
        .build()
        .unwrap();
    let script = Arc::new(Mutex::new(answers.iter().copied().collect::<VecDeque<_>>()));
    let seen: Seen = Arc::default();
    let (s, v) = (Arc::clone(&script), Arc::clone(&seen));
    let oracle = AgentSpec::new("oracle", move || Oracle(Arc::clone(&s)))
        .validator(from_predicate("no garbage", |out: &String| {
            !out.contains("garbage")
        }))
        .confidence(|_: &String| Some(0.99));
    let root = SupervisorSpec::one_for_one("root")
        .child(system.agent(oracle).unwrap())
        .child(
            system
                .agent(AgentSpec::new("reviewer", move || Reviewer(Arc::clone(&v))))
                .unwrap(),
        );
    system.start(root).await.unwrap();
    Watched {
        oracle: system.agent_ref("oracle").unwrap(),
        reviewer: system.agent_ref("reviewer").unwrap(),
        system,
        seen,
    }
}

#[tokio::test(start_paused = true)]
async fn a_flagged_agents_outputs_go_to_the_inspector_until_the_flag_clears() {
    // Flagged once 2 or more outputs were judged and more than half were wrong.
    let confidence = ConfidenceConfig::default()
        .min_samples(2)
        .max_wrong_rate(0.5);
    let w = watched(&["garbage", "garbage", "good 3", "good 4"], confidence).await;
    w.oracle.inspect_when_flagged(&w.reviewer).unwrap();
    let mut rx = w.system.subscribe();
    // Not flagged yet: the two rejections go as plain asks do, and no inspector is asked.
    for _ in 0..2 {
        assert!(w.oracle.ask("q".into()).await.is_err());
    }
    assert!(w.seen.lock().unwrap().is_empty());
    let flag = w.oracle.calibration("answer").unwrap().1;
    assert_eq!(flag.map(|flag| flag.wrong), Some(2));
    assert!(semantic_events(&mut rx)
        .iter()
        .all(|event| !matches!(event.finding, Finding::RoutedToInspector { .. })));
    // Flagged: every output of an `answer` ask is inspected (2 of 3 wrong, then 2 of 4 is no
    // longer more than half: the flag clears after the fourth).
    assert_eq!(w.oracle.ask("q".into()).await.unwrap(), "good 3");
    assert_eq!(w.oracle.ask("q".into()).await.unwrap(), "good 4");
    let seen: Vec<_> = w.seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![
            ("oracle".into(), "answer", "good 3".to_string()),
            ("oracle".into(), "answer", "good 4".to_string())
        ]
    );
    let found = semantic_events(&mut rx);
    let routed: Vec<&String> = found
        .iter()
        .filter_map(|event| match &event.finding {
            Finding::RoutedToInspector { inspector, because } => {
                assert_eq!(inspector, "reviewer");
                Some(because)
            }
            _ => None,
        })
        .collect();
    assert_eq!(routed.len(), 2, "{found:?}");
    assert!(
        routed[0].starts_with("2 of 2 outputs claimed at confidence >= 0.9 were wrong"),
        "{}",
        routed[0]
    );
    assert!(routed[1].starts_with("2 of 3 outputs"), "{}", routed[1]);
    let accepted = found
        .iter()
        .filter(|event| {
            matches!(
                event.finding,
                Finding::Inspected {
                    verdict: InspectionOutcome::Accepted,
                    ..
                }
            )
        })
        .count();
    assert_eq!(accepted, 2);
    // The flag has cleared: asks go as plain asks again.
    assert!(w.oracle.calibration("answer").unwrap().1.is_none());
    assert_eq!(w.oracle.ask("q".into()).await.unwrap(), "good");
    assert_eq!(w.seen.lock().unwrap().len(), 2);
    w.system.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn only_the_flagged_task_type_is_routed() {
    let confidence = ConfidenceConfig::default()
        .min_samples(1)
        .max_wrong_rate(0.5);
    let w = watched(&["garbage"], confidence).await;
    w.oracle.inspect_when_flagged(&w.reviewer).unwrap();
    assert!(w.oracle.ask("q".into()).await.is_err());
    assert!(w.oracle.calibration("answer").unwrap().1.is_some());
    // `cite` is not flagged: not inspected.
    assert_eq!(w.oracle.ask("cite".into()).await.unwrap(), "good");
    assert!(w.seen.lock().unwrap().is_empty());
    assert_eq!(w.oracle.ask("q".into()).await.unwrap(), "good");
    assert_eq!(w.seen.lock().unwrap().len(), 1);
    w.system.shutdown(Duration::from_secs(5)).await.unwrap();
}

/// A started system of `builder` (as it configures confidence) with an oracle and a reviewer.
async fn oracle_and_reviewer(
    builder: overseer_agent::SystemBuilder,
) -> (System, AgentRef<Oracle>, AgentRef<Reviewer>) {
    let system = builder.build().unwrap();
    let root = SupervisorSpec::one_for_one("root")
        .child(
            system
                .agent(AgentSpec::new("oracle", || Oracle(Arc::default())))
                .unwrap(),
        )
        .child(
            system
                .agent(AgentSpec::new("reviewer", || Reviewer(Arc::default())))
                .unwrap(),
        );
    system.start(root).await.unwrap();
    let oracle = system.agent_ref::<Oracle>("oracle").unwrap();
    let reviewer = system.agent_ref::<Reviewer>("reviewer").unwrap();
    (system, oracle, reviewer)
}

#[tokio::test(start_paused = true)]
async fn a_route_that_could_never_be_taken_is_refused() {
    let (system, oracle, reviewer) = oracle_and_reviewer(System::builder()).await;
    assert_eq!(
        oracle.inspect_when_flagged(&reviewer),
        Err(RouteError::NoConfidenceTracker)
    );
    system.shutdown(Duration::from_secs(5)).await.unwrap();
    // A tracker, but an agent that reports no confidence.
    let builder = System::builder().semantic(
        SemanticConfig::new()
            .confidence(ConfidenceConfig::default())
            .unwrap(),
    );
    let (system, oracle, reviewer) = oracle_and_reviewer(builder).await;
    assert!(matches!(
        oracle.inspect_when_flagged(&reviewer),
        Err(RouteError::NoConfidence { agent }) if agent == "oracle"
    ));
    system.shutdown(Duration::from_secs(5)).await.unwrap();
}

// ---------------------------------------------------------------- one record per output

#[tokio::test(start_paused = true)]
async fn an_output_judged_by_a_validator_then_an_inspector_is_recorded_once() {
    let w = watched(&[], ConfidenceConfig::default()).await;
    // The validator accepts, then the inspector accepts: one output, one verdict.
    assert_eq!(
        w.oracle
            .ask_inspected("q".into(), &w.reviewer)
            .await
            .unwrap(),
        "good"
    );
    let (calibration, _) = w.oracle.calibration("answer").unwrap();
    assert_eq!((calibration.high_outputs, calibration.high_wrong), (1, 0));
    // A plain ask's validator verdict is still its final one.
    w.oracle.ask("q".into()).await.unwrap();
    let (calibration, _) = w.oracle.calibration("answer").unwrap();
    assert_eq!(calibration.high_outputs, 2);
    w.system.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_validated_vote_sample_is_recorded_once_by_the_vote() {
    let w = watched(&["a", "b", "a", "a"], ConfidenceConfig::default()).await;
    let spec = VoteSpec::new(VoteRule::first_to_ahead_by(2, 6)).unwrap();
    let voted = w.oracle.ask_voting("q".into(), &spec).await.unwrap();
    assert_eq!((voted.winner.as_str(), voted.samples_used), ("a", 4));
    // Four samples, each recorded once: the one for "b" as wrong.
    let (calibration, _) = w.oracle.calibration("answer").unwrap();
    assert_eq!((calibration.high_outputs, calibration.high_wrong), (4, 1));
    w.system.shutdown(Duration::from_secs(5)).await.unwrap();
}
