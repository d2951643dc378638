//! A model call whose request was processed and whose answer was lost
//! ([`ModelError::ReplayUnsafe`]) is an [`AgentError::ReplayUnsafe`]: never retried, counted by
//! breakers as a failure, and journaled, so a replay fails the same way without calling the
//! model again. A scripted model returns the error; paused clock, MemStorage.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use overseer_agent::retry::{Jitter, RetryPolicy};
use overseer_agent::{
    Agent, AgentContext, AgentError, AgentSpec, AskError, Classify, ErrorClass, ModelError,
    ModelRequest, ScriptedModel, System, Usage,
};
use overseer_breaker::{Backoff, BreakerConfig, BreakerRegistry, State};
use overseer_journal::{Journal, JournalConfig, MemStorage, RunId};
use overseer_supervisor::SupervisorSpec;

/// Calls the model once per task; crashes right after the call while `crash_once` is set
/// (clearing it), as a process killed between the model step and the run's end would.
struct Caller {
    model: ScriptedModel,
    crash_once: Arc<AtomicBool>,
}

impl Agent for Caller {
    type Task = String;
    type Output = String;

    async fn handle(
        &mut self,
        ctx: &mut AgentContext,
        prompt: String,
    ) -> Result<String, AgentError> {
        let answer = ctx.model(&self.model, ModelRequest::new(prompt)).await;
        if self.crash_once.swap(false, Ordering::SeqCst) {
            panic!("crashed after the model step");
        }
        Ok(answer?.text)
    }
}

/// A model whose stream is cut after its first chunk: the provider processed (and billed) it.
fn cut_model() -> ScriptedModel {
    ScriptedModel::new().when("draft", |_| {
        Err(ModelError::ReplayUnsafe {
            message: "stream cut after the first chunk".into(),
            spent: Usage::new(40, 1024, 900),
        })
    })
}

fn three_attempts() -> RetryPolicy {
    RetryPolicy::builder()
        .max_attempts(3)
        .base_delay(Duration::from_millis(100))
        .jitter(Jitter::None)
        .build()
        .unwrap()
}

async fn start(
    model: &ScriptedModel,
    crash_once: bool,
    journal: Option<Journal>,
    breakers: Option<BreakerRegistry>,
) -> System {
    let mut builder = System::builder().ask_timeout(Duration::from_secs(30));
    if let Some(journal) = journal {
        builder = builder.journal(journal);
    }
    if let Some(breakers) = breakers {
        builder = builder.breakers(breakers);
    }
    let system = builder.build().unwrap();
    let model = model.clone();
    let crash_once = Arc::new(AtomicBool::new(crash_once));
    let spec = AgentSpec::new("writer", move || Caller {
        model: model.clone(),
        crash_once: Arc::clone(&crash_once),
    })
    .retry(three_attempts());
    system
        .start(
            SupervisorSpec::one_for_one("root")
                .intensity(10, Duration::from_secs(1))
                .child(system.agent(spec).unwrap()),
        )
        .await
        .unwrap();
    system
}

fn journal() -> Journal {
    Journal::open(MemStorage::new(), JournalConfig::default())
        .unwrap()
        .0
}

#[tokio::test(start_paused = true)]
async fn a_replay_unsafe_model_call_is_tried_once_under_a_three_attempt_retry_policy() {
    let model = cut_model();
    let system = start(&model, false, None, None).await;
    let writer = system.agent_ref::<Caller>("writer").unwrap();
    let error = writer.ask("draft the essay".into()).await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::ReplayUnsafe, "{error}");
    assert!(
        matches!(
            &error,
            AskError::Failed {
                error: AgentError::ReplayUnsafe(message),
                ..
            } if message.contains("stream cut after the first chunk")
        ),
        "{error:?}"
    );
    assert_eq!(model.calls(), 1, "a replay-unsafe failure is never retried");
}

#[tokio::test(start_paused = true)]
async fn a_journaled_replay_unsafe_model_call_replays_as_the_same_error_without_calling_again() {
    let model = cut_model();
    // The first attempt crashes after the model step (journaled as a failure); the retry
    // policy retries the crash, and its attempt replays the step: the same error, no call.
    let system = start(&model, true, Some(journal()), None).await;
    let writer = system.agent_ref::<Caller>("writer").unwrap();
    let run = RunId::new("essay-1").unwrap();
    let error = writer
        .ask_run(run.clone(), "draft the essay".into())
        .await
        .unwrap_err();
    assert_eq!(error.class(), ErrorClass::ReplayUnsafe, "{error}");
    assert!(
        matches!(
            &error,
            AskError::Failed {
                error: AgentError::ReplayUnsafe(message),
                ..
            } if message.contains("stream cut after the first chunk")
        ),
        "{error:?}"
    );
    assert_eq!(model.calls(), 1, "the replayed step did not call the model");

    // The run finished with that failure: asked again, it answers from the journal.
    let again = writer
        .ask_run(run.clone(), "draft the essay".into())
        .await
        .unwrap_err();
    assert!(
        matches!(&again, AskError::RunFailed { error, .. } if error.contains("stream cut")),
        "{again:?}"
    );
    assert_eq!(
        model.calls(),
        1,
        "a finished run never calls the model again"
    );
}

#[tokio::test(start_paused = true)]
async fn a_replay_unsafe_failure_counts_for_the_breaker() {
    let registry = BreakerRegistry::new(
        BreakerConfig::default()
            .consecutive_failures(Some(2))
            .open_duration(Backoff::fixed(Duration::from_secs(30)))
            .half_open_probes(1),
    )
    .unwrap();
    let model = cut_model();
    let system = start(&model, false, None, Some(registry)).await;
    let writer = system.agent_ref::<Caller>("writer").unwrap();
    for _ in 0..2 {
        let error = writer.ask("draft".into()).await.unwrap_err();
        assert_eq!(error.class(), ErrorClass::ReplayUnsafe, "{error}");
    }
    let states: Vec<State> = system
        .breakers()
        .unwrap()
        .snapshot()
        .iter()
        .map(|s| s.state)
        .collect();
    assert_eq!(states, [State::Open], "two failures in a row open it");
    let refused = writer.ask("draft".into()).await.unwrap_err();
    assert!(
        matches!(refused, AskError::BreakerOpen { .. }),
        "{refused:?}"
    );
    assert_eq!(model.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_journaled_permanent_failure_replays_as_permanent_not_as_a_retryable_one() {
    // A context too long: permanent. Journaled with its class, the step replays as permanent
    // after the crash, so the retry policy does not try the run a third time.
    let model = ScriptedModel::new().when("draft", |_| {
        Err(ModelError::Rejected("context_length_exceeded".into()))
    });
    let system = start(&model, true, Some(journal()), None).await;
    let writer = system.agent_ref::<Caller>("writer").unwrap();
    let run = RunId::new("essay-2").unwrap();
    let error = writer
        .ask_run(run, "draft the essay".into())
        .await
        .unwrap_err();
    assert!(
        matches!(
            &error,
            AskError::Failed {
                error: AgentError::Permanent(message),
                ..
            } if message.contains("context_length_exceeded")
        ),
        "{error:?}"
    );
    assert_eq!(error.class(), ErrorClass::Permanent);
    assert_eq!(model.calls(), 1, "the replayed step did not call the model");
}
