//! Heartbeats: a handler that beats runs as long as its deadline allows; one that goes silent
//! is stopped one heartbeat timeout after its last beat (not before), restarted, and its ask
//! fails with `Stalled`. Model calls and journaled steps beat on their own. Paused clock.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use overseer_agent::{
    Agent, AgentContext, AgentError, AgentSpec, AskError, ModelRequest, Progress, ScriptedModel,
    System, SystemEvent,
};
use overseer_breaker::{BreakerConfig, BreakerKey, BreakerRegistry, State};
use overseer_journal::{Effect, Journal, JournalConfig, MemStorage, RunId};
use overseer_supervisor::{EventKind, ExitReason, SupervisorSpec};
use tokio::time::Instant;

const BEAT: Duration = Duration::from_secs(1);
const TIMEOUT: Duration = Duration::from_secs(3);

/// What a task does.
#[derive(Debug, Clone)]
enum Work {
    /// Beats every second, `n` times, then answers.
    Beating(u32),
    /// Reports progress 1..=n a second apart, then goes silent forever.
    GoesSilent(u32),
    /// `n` model calls of 2 s each (the model sleeps), no explicit beat.
    ModelCalls(u32),
    /// `n` journaled steps of 2 s each, no explicit beat.
    Steps(u32),
    /// `n` sleeps of 2 s each with no beat at all.
    SilentSleeps(u32),
    /// Answers at once, in the "quick" task type, after a long silence.
    QuickButSilent(Duration),
    /// Which incarnation this is.
    Incarnation,
}

struct Worker {
    incarnation: u32,
    model: SlowModel,
}

impl Worker {
    fn new(counter: &Arc<AtomicU32>) -> impl Fn() -> Worker + Send + Sync {
        let counter = Arc::clone(counter);
        move || Worker {
            incarnation: counter.fetch_add(1, Ordering::SeqCst) + 1,
            model: SlowModel(ScriptedModel::new().replies(["ok"; 16])),
        }
    }
}

impl Agent for Worker {
    type Task = Work;
    type Output = String;

    fn task_type(task: &Work) -> &'static str {
        match task {
            Work::QuickButSilent(_) => "quick",
            _ => "long",
        }
    }

    async fn handle(&mut self, ctx: &mut AgentContext, work: Work) -> Result<String, AgentError> {
        match work {
            Work::Beating(n) => {
                for _ in 0..n {
                    tokio::time::sleep(BEAT).await;
                    ctx.heartbeat();
                }
                Ok("done".into())
            }
            Work::GoesSilent(n) => {
                for step in 1..=n {
                    tokio::time::sleep(BEAT).await;
                    ctx.progress(u64::from(step));
                }
                std::future::pending().await
            }
            Work::ModelCalls(n) => {
                for _ in 0..n {
                    ctx.model(&self.model, ModelRequest::new("go")).await?;
                }
                Ok("called".into())
            }
            Work::Steps(n) => {
                for _ in 0..n {
                    ctx.step("slow", Effect::Pure, |_| async {
                        tokio::time::sleep(Duration::from_secs(2)).await;
                        Ok(1_u32)
                    })
                    .await?;
                }
                Ok("stepped".into())
            }
            Work::SilentSleeps(n) => {
                for _ in 0..n {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
                Ok("slept".into())
            }
            Work::QuickButSilent(silence) => {
                tokio::time::sleep(silence).await;
                Ok("quick".into())
            }
            Work::Incarnation => Ok(self.incarnation.to_string()),
        }
    }
}

/// A model that takes 2 s to answer.
struct SlowModel(ScriptedModel);

impl overseer_agent::ModelClient for SlowModel {
    async fn complete(
        &self,
        request: ModelRequest,
    ) -> Result<overseer_agent::ModelResponse, overseer_agent::ModelError> {
        tokio::time::sleep(Duration::from_secs(2)).await;
        self.0.complete(request).await
    }
}

async fn system_with(spec: AgentSpec<Worker>, breakers: Option<BreakerRegistry>) -> System {
    let mut builder = System::builder().ask_timeout(Duration::from_secs(600));
    if let Some(breakers) = breakers {
        builder = builder.breakers(breakers);
    }
    let system = builder.build().unwrap();
    let root = SupervisorSpec::one_for_one("root")
        .intensity(100, Duration::from_secs(1))
        .child(system.agent(spec).unwrap());
    system.start(root).await.unwrap();
    system
}

fn watched(counter: &Arc<AtomicU32>) -> AgentSpec<Worker> {
    AgentSpec::new("worker", Worker::new(counter)).heartbeat_timeout(TIMEOUT)
}

#[tokio::test(start_paused = true)]
async fn a_handler_that_beats_runs_past_many_heartbeat_periods() {
    let counter = Arc::new(AtomicU32::new(0));
    let system = system_with(watched(&counter), None).await;
    let worker = system.agent_ref::<Worker>("worker").unwrap();
    let asked = Instant::now();
    assert_eq!(worker.ask(Work::Beating(60)).await.as_deref(), Ok("done"));
    assert_eq!(
        asked.elapsed(),
        Duration::from_secs(60),
        "20 heartbeat timeouts"
    );
    assert_eq!(counter.load(Ordering::SeqCst), 1, "never restarted");
}

#[tokio::test(start_paused = true)]
async fn a_silent_handler_is_stopped_one_timeout_after_its_last_beat_and_restarted() {
    let counter = Arc::new(AtomicU32::new(0));
    let config = BreakerConfig::default().consecutive_failures(Some(1));
    let breakers = BreakerRegistry::new(config).unwrap();
    let system = system_with(watched(&counter), Some(breakers)).await;
    let mut events = system.subscribe();
    let worker = system.agent_ref::<Worker>("worker").unwrap();
    let asked = Instant::now();
    let outcome = worker.ask(Work::GoesSilent(4)).await;
    assert_eq!(
        outcome,
        Err(AskError::Stalled {
            agent: "worker".into(),
            silent_for: TIMEOUT,
            progress: Some(Progress::Step(4)),
        })
    );
    // The last beat was at 4 s; stopped exactly one timeout after it, long before the 600 s
    // deadline.
    assert_eq!(asked.elapsed(), Duration::from_secs(4) + TIMEOUT);

    // The incarnation was stopped as stalled, and restarted by its supervisor.
    let mut stopped = None;
    let mut ask_event = None;
    while let Ok(event) = events.try_recv() {
        match event {
            SystemEvent::Lifecycle(event) => {
                if let EventKind::Stopped { reason } = event.kind {
                    stopped = Some(reason);
                }
            }
            SystemEvent::Ask(event) => ask_event = Some(event),
            _ => {}
        }
    }
    assert_eq!(stopped, Some(ExitReason::Stalled(TIMEOUT)));
    let ask_event = ask_event.expect("the ask's event");
    assert_eq!(ask_event.outcome.kind(), Some("stalled"));
    assert_eq!(ask_event.progress, Some(Progress::Step(4)));
    // The breaker counted the failure (one failure opens it here), then the new incarnation
    // answers once it lets asks through again.
    let breaker = system
        .breakers()
        .expect("configured")
        .get(&BreakerKey::new("worker", "long"))
        .expect("the breaker was made");
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(counter.load(Ordering::SeqCst), 2, "restarted once");
}

#[tokio::test(start_paused = true)]
async fn model_calls_and_journaled_steps_beat_on_their_own() {
    let counter = Arc::new(AtomicU32::new(0));
    let system = system_with(watched(&counter), None).await;
    let worker = system.agent_ref::<Worker>("worker").unwrap();
    // Each call or step takes 2 s, under the 3 s timeout, ten of them: 20 s of work.
    assert_eq!(
        worker.ask(Work::ModelCalls(10)).await.as_deref(),
        Ok("called")
    );
    assert_eq!(worker.ask(Work::Steps(10)).await.as_deref(), Ok("stepped"));
    assert_eq!(counter.load(Ordering::SeqCst), 1);
    // The same 2 s waits with no call or step through the context: silent after 3 s.
    let asked = Instant::now();
    let outcome = worker.ask(Work::SilentSleeps(10)).await;
    assert!(
        matches!(outcome, Err(AskError::Stalled { silent_for, progress: None, .. }) if silent_for == TIMEOUT),
        "{outcome:?}"
    );
    assert_eq!(asked.elapsed(), TIMEOUT);
}

#[tokio::test(start_paused = true)]
async fn a_task_types_timeout_watches_its_tasks_only() {
    let counter = Arc::new(AtomicU32::new(0));
    let spec =
        AgentSpec::new("worker", Worker::new(&counter)).heartbeat_timeout_for("long", TIMEOUT);
    let system = system_with(spec, None).await;
    let worker = system.agent_ref::<Worker>("worker").unwrap();
    // A quick task is not watched: silent for a minute, it answers.
    let quick = worker
        .ask(Work::QuickButSilent(Duration::from_secs(60)))
        .await;
    assert_eq!(quick.as_deref(), Ok("quick"));
    // A long one is.
    let long = worker.ask(Work::SilentSleeps(2)).await;
    assert!(matches!(long, Err(AskError::Stalled { .. })), "{long:?}");
    // And an agent-wide timeout with a task type's override: the override wins for its type.
    let spec = AgentSpec::new("other", Worker::new(&counter))
        .heartbeat_timeout(Duration::from_secs(1))
        .heartbeat_timeout_for("quick", Duration::from_secs(100));
    let system = system_with(spec, None).await;
    let other = system.agent_ref::<Worker>("other").unwrap();
    let quick = other
        .ask(Work::QuickButSilent(Duration::from_secs(60)))
        .await;
    assert_eq!(quick.as_deref(), Ok("quick"));
    let asked = Instant::now();
    let long = other.ask(Work::SilentSleeps(1)).await;
    assert!(matches!(long, Err(AskError::Stalled { .. })), "{long:?}");
    assert_eq!(asked.elapsed(), Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn without_a_heartbeat_timeout_a_silent_handler_runs_to_its_deadline() {
    let counter = Arc::new(AtomicU32::new(0));
    let spec = AgentSpec::new("worker", Worker::new(&counter));
    let system = system_with(spec, None).await;
    let worker = system.agent_ref::<Worker>("worker").unwrap();
    assert_eq!(
        worker.ask(Work::SilentSleeps(10)).await.as_deref(),
        Ok("slept")
    );
    let hung = worker
        .ask_within(Work::GoesSilent(1), Duration::from_secs(30))
        .await;
    assert!(matches!(hung, Err(AskError::Timeout { .. })), "{hung:?}");
}

#[tokio::test(start_paused = true)]
async fn the_last_progress_and_beat_are_in_the_agents_health_listing() {
    let counter = Arc::new(AtomicU32::new(0));
    let system = system_with(watched(&counter), None).await;
    let worker = system.agent_ref::<Worker>("worker").unwrap();
    let asking = tokio::spawn({
        let worker = worker.clone();
        async move { worker.ask(Work::GoesSilent(2)).await }
    });
    // 2.5 s in: two progress reports, the last half a second ago.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let listed = system.health();
    let row = listed
        .iter()
        .find(|row| row.agent.as_str() == "worker")
        .unwrap();
    assert_eq!(row.progress, Some(Progress::Step(2)));
    assert_eq!(row.since_last_beat, Some(Duration::from_millis(500)));
    let stalled = asking.await.unwrap();
    assert!(matches!(stalled, Err(AskError::Stalled { .. })));
    // The next task's start clears it.
    assert_eq!(worker.ask(Work::Incarnation).await.as_deref(), Ok("2"));
    let row = system.health().into_iter().next().unwrap();
    assert_eq!(row.progress, None);
}

#[tokio::test]
async fn a_zero_heartbeat_timeout_is_refused_when_declared() {
    let counter = Arc::new(AtomicU32::new(0));
    let system = System::builder().build().unwrap();
    let spec = AgentSpec::new("worker", Worker::new(&counter)).heartbeat_timeout(Duration::ZERO);
    assert!(matches!(
        system.agent(spec),
        Err(overseer_agent::SystemError::ZeroTimeout(name)) if name == "worker"
    ));
}

/// Records progress as journaled steps, and crashes once after the second.
struct Resumer {
    crashed: Arc<AtomicBool>,
}

impl Agent for Resumer {
    type Task = u64;
    type Output = String;

    async fn handle(&mut self, ctx: &mut AgentContext, steps: u64) -> Result<String, AgentError> {
        let resumed = ctx.resumed_progress();
        for step in 1..=steps {
            ctx.record_progress(step).await?;
            if step == 2 && !self.crashed.swap(true, Ordering::SeqCst) {
                panic!("crash after step 2");
            }
        }
        Ok(format!("{resumed:?}"))
    }
}

#[tokio::test(start_paused = true)]
async fn journaled_progress_tells_a_resumed_run_how_far_it_got() {
    let journal = Journal::open(MemStorage::new(), JournalConfig::default())
        .unwrap()
        .0;
    let system = System::builder().journal(journal).build().unwrap();
    let crashed = Arc::new(AtomicBool::new(false));
    let spec = AgentSpec::new("resumer", {
        let crashed = Arc::clone(&crashed);
        move || Resumer {
            crashed: Arc::clone(&crashed),
        }
    });
    let root = SupervisorSpec::one_for_one("root").child(system.agent(spec).unwrap());
    system.start(root).await.unwrap();
    let resumer = system.agent_ref::<Resumer>("resumer").unwrap();
    let run = RunId::new("progress-1").unwrap();
    // The first attempt crashes after step 2; the replay starts knowing it got there.
    let answer = resumer.ask_run(run, 4).await;
    assert_eq!(answer.as_deref(), Ok("Some(Step(2))"));
    // A fresh run knows nothing.
    let fresh = resumer.ask_run(RunId::new("progress-2").unwrap(), 1).await;
    assert_eq!(fresh.as_deref(), Ok("None"));
}
