//! Durable runs under a retry policy: the step is retried, not the run. The steps recorded
//! before the failure replay (not run, not billed again), the failed step runs again, and only
//! the attempt the policy gives up on finishes the run. MemStorage, paused clock.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use overseer_agent::retry::{Jitter, RetryPolicy};
use overseer_agent::{
    Agent, AgentContext, AgentError, AgentSpec, AskError, ModelRequest, ScriptedModel, System,
};
use overseer_journal::{Effect, Journal, JournalConfig, RunId};
use overseer_postgres::testing::TestStorage;
use overseer_supervisor::SupervisorSpec;
use serde::{Deserialize, Serialize};

#[derive(Debug, Default)]
struct Counts {
    /// How many times each step really ran.
    step2: AtomicU32,
    step3: AtomicU32,
    /// Failures of step 2 still to come.
    step2_failures: AtomicU32,
    /// Whether step 2's failures are permanent.
    permanent: std::sync::atomic::AtomicBool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Job(String);

/// Step 1 asks the model, step 2 may fail, step 3 finishes.
struct ThreeSteps {
    counts: Arc<Counts>,
    model: ScriptedModel,
}

impl Agent for ThreeSteps {
    type Task = Job;
    type Output = String;

    async fn handle(&mut self, ctx: &mut AgentContext, job: Job) -> Result<String, AgentError> {
        let outline = ctx
            .model(&self.model, ModelRequest::new(format!("outline {}", job.0)))
            .await?;
        let counts = Arc::clone(&self.counts);
        let draft: String = ctx
            .step("draft", Effect::Idempotent, |_| async move {
                counts.step2.fetch_add(1, Ordering::SeqCst);
                let failing = counts
                    .step2_failures
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
                match (failing, counts.permanent.load(Ordering::SeqCst)) {
                    (false, _) => Ok(format!("draft of {}", outline.text)),
                    (true, false) => Err(AgentError::failed("provider hiccup")),
                    (true, true) => Err(AgentError::permanent("context too long")),
                }
            })
            .await?;
        let counts = Arc::clone(&self.counts);
        ctx.step("polish", Effect::Idempotent, |_| async move {
            counts.step3.fetch_add(1, Ordering::SeqCst);
            Ok(format!("{draft}, polished"))
        })
        .await
    }
}

async fn start(counts: &Arc<Counts>, model: &ScriptedModel, policy: RetryPolicy) -> System {
    let journal = Journal::open(TestStorage::new(), JournalConfig::default())
        .unwrap()
        .0;
    let system = System::builder()
        .ask_timeout(Duration::from_secs(30))
        .journal(journal)
        .build()
        .unwrap();
    let counts = Arc::clone(counts);
    let model = model.clone();
    let spec = AgentSpec::new("writer", move || ThreeSteps {
        counts: Arc::clone(&counts),
        model: model.clone(),
    })
    .retry(policy);
    system
        .start(SupervisorSpec::one_for_one("root").child(system.agent(spec).unwrap()))
        .await
        .unwrap();
    system
}

fn policy() -> RetryPolicy {
    RetryPolicy::builder()
        .max_attempts(3)
        .base_delay(Duration::from_millis(200))
        .jitter(Jitter::None)
        .build()
        .unwrap()
}

fn model() -> ScriptedModel {
    ScriptedModel::new().when("outline", |_| Ok("an outline".to_string()))
}

#[tokio::test(start_paused = true)]
async fn a_transient_step_failure_retries_the_step_and_replays_the_steps_before() {
    let counts = Arc::new(Counts::default());
    counts.step2_failures.store(1, Ordering::SeqCst);
    let model = model();
    let system = start(&counts, &model, policy()).await;
    let writer = system.agent_ref::<ThreeSteps>("writer").unwrap();
    let run = RunId::new("essay-1").unwrap();
    let output = writer
        .ask_run(run.clone(), Job("rust".into()))
        .await
        .unwrap();
    assert_eq!(output, "draft of an outline, polished");
    assert_eq!(
        model.calls(),
        1,
        "step 1 replayed on the retry, not called again"
    );
    assert_eq!(counts.step2.load(Ordering::SeqCst), 2, "step 2 ran twice");
    assert_eq!(counts.step3.load(Ordering::SeqCst), 1);
    // The run finished with its answer: asked again, it is returned without running.
    let again = writer.ask_run(run, Job("rust".into())).await.unwrap();
    assert_eq!(again, output);
    assert_eq!(counts.step2.load(Ordering::SeqCst), 2);
    assert_eq!(model.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn the_attempt_the_policy_gives_up_on_finishes_the_run() {
    let counts = Arc::new(Counts::default());
    counts.step2_failures.store(10, Ordering::SeqCst);
    let model = model();
    let system = start(&counts, &model, policy()).await;
    let writer = system.agent_ref::<ThreeSteps>("writer").unwrap();
    let run = RunId::new("essay-2").unwrap();
    let first = writer.ask_run(run.clone(), Job("rust".into())).await;
    assert!(matches!(first, Err(AskError::Failed { .. })), "{first:?}");
    assert_eq!(
        counts.step2.load(Ordering::SeqCst),
        3,
        "three attempts at step 2"
    );
    assert_eq!(model.calls(), 1);
    // The last attempt's failure is the run's outcome.
    let again = writer.ask_run(run.clone(), Job("rust".into())).await;
    assert_eq!(
        again,
        Err(AskError::RunFailed {
            run,
            error: "provider hiccup".into()
        })
    );
    assert_eq!(counts.step2.load(Ordering::SeqCst), 3, "not run again");
}

#[tokio::test(start_paused = true)]
async fn a_permanent_step_failure_is_journaled_at_once_and_not_retried() {
    let counts = Arc::new(Counts::default());
    counts.step2_failures.store(1, Ordering::SeqCst);
    counts.permanent.store(true, Ordering::SeqCst);
    let model = model();
    let system = start(&counts, &model, policy()).await;
    let writer = system.agent_ref::<ThreeSteps>("writer").unwrap();
    let run = RunId::new("essay-3").unwrap();
    let first = writer.ask_run(run.clone(), Job("rust".into())).await;
    assert!(
        matches!(
            first,
            Err(AskError::Failed {
                error: AgentError::Permanent(_),
                ..
            })
        ),
        "{first:?}"
    );
    assert_eq!(counts.step2.load(Ordering::SeqCst), 1);
    let again = writer.ask_run(run.clone(), Job("rust".into())).await;
    assert!(
        matches!(again, Err(AskError::RunFailed { .. })),
        "{again:?}"
    );
}
