//! The dead-letter queue: letters hold every attempt, survive a restart over the same journal,
//! are redriven (to the same agent or another of its type) and removed; an unsafe step left in
//! doubt by a crash joins the queue with its run and place in the journal.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

mod mailer;

use mailer::{mailer_system, Mailer};
use overseer_agent::{
    Agent, AgentContext, AgentError, AgentSpec, DeadLetterChange, DeadLetterError, ErrorClass,
    FailedAttempt, LetterOrigin, RedriveError, System, SystemEvent, Usage,
};
use overseer_journal::{CrashPlan, Journal, JournalConfig, MemStorage, RunId};
use overseer_supervisor::SupervisorSpec;

/// Fails while `failing` is above zero (counting down), then answers the task's length.
struct Flaky {
    failing: Arc<AtomicU32>,
}

impl Agent for Flaky {
    type Task = String;
    type Output = usize;

    async fn handle(&mut self, _: &mut AgentContext, task: String) -> Result<usize, AgentError> {
        let left = self.failing.load(Ordering::SeqCst);
        if left > 0 {
            self.failing.store(left - 1, Ordering::SeqCst);
            return Err(AgentError::failed("the provider answered 503"));
        }
        Ok(task.len())
    }
}

/// Another agent type, for a redrive to the wrong type.
struct Other;

impl Agent for Other {
    type Task = String;
    type Output = usize;

    async fn handle(&mut self, _: &mut AgentContext, _: String) -> Result<usize, AgentError> {
        Ok(0)
    }
}

fn journal_over(storage: MemStorage) -> Journal {
    Journal::open(storage, JournalConfig::default()).unwrap().0
}

async fn system(journal: Option<Journal>, failing: &Arc<AtomicU32>) -> System {
    let builder = System::builder().ask_timeout(Duration::from_secs(30));
    let system = match journal {
        Some(journal) => builder.journal(journal),
        None => builder,
    }
    .build()
    .unwrap();
    let failing = Arc::clone(failing);
    let second = Arc::clone(&failing);
    let spec = SupervisorSpec::one_for_one("root")
        .child(
            system
                .agent(AgentSpec::new("flaky", move || Flaky {
                    failing: Arc::clone(&failing),
                }))
                .unwrap(),
        )
        .child(
            system
                .agent(AgentSpec::new("standby", move || Flaky {
                    failing: Arc::clone(&second),
                }))
                .unwrap(),
        )
        .child(system.agent(AgentSpec::new("other", || Other)).unwrap());
    system.start(spec).await.unwrap();
    system
}

fn three_503s() -> Vec<FailedAttempt> {
    (1..=3)
        .map(|i| FailedAttempt::new(ErrorClass::Transient, format!("503, attempt {i}")))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn letters_are_back_after_a_restart_over_the_same_journal() {
    let storage = MemStorage::new();
    let failing = Arc::new(AtomicU32::new(0));
    let sys = system(Some(journal_over(storage.clone())), &failing).await;
    let flaky = sys.agent_ref::<Flaky>("flaky").unwrap();
    let letters = sys.dead_letters();
    let first = letters
        .push_task(
            &flaky,
            &"first".to_string(),
            three_503s(),
            Usage::new(30, 0, 7),
        )
        .await
        .unwrap();
    let second = letters
        .push_task(
            &flaky,
            &"second".to_string(),
            three_503s(),
            Usage::default(),
        )
        .await
        .unwrap();
    letters.remove(second).await.unwrap();
    sys.shutdown(Duration::from_secs(5)).await.unwrap();
    drop(sys);

    let storage = storage.reopen();
    let sys = system(Some(journal_over(storage.clone())), &failing).await;
    let letters = sys.dead_letters();
    assert_eq!(letters.len(), 1, "the removed letter stays removed");
    let letter = letters.get(first).expect("the letter is back");
    assert_eq!(letter.agent, "flaky");
    assert_eq!(letter.task_type, "default");
    assert_eq!(letter.input.decode::<String>().unwrap(), "first");
    assert_eq!(letter.attempts, three_503s());
    assert_eq!(letter.cost, Usage::new(30, 0, 7));
    assert_eq!(letter.origin, LetterOrigin::Task);
    assert!(letter.given_up_at_ms > 0);

    // A new letter after the restart does not reuse an id.
    let flaky = sys.agent_ref::<Flaky>("flaky").unwrap();
    let third = letters
        .push_task(&flaky, &"third".to_string(), Vec::new(), Usage::default())
        .await
        .unwrap();
    assert!(third > second, "{third} after {second}");

    // Redriven: asked again, answered, removed, and removed for the next process too.
    assert_eq!(letters.redrive(first, &flaky).await, Ok(5));
    assert!(letters.get(first).is_none());
    sys.shutdown(Duration::from_secs(5)).await.unwrap();
    let sys = system(Some(journal_over(storage.reopen())), &failing).await;
    let ids: Vec<_> = sys.dead_letters().list().iter().map(|l| l.id).collect();
    assert_eq!(ids, vec![third]);
    sys.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_failed_redrive_keeps_the_letter_with_its_new_attempt() {
    let failing = Arc::new(AtomicU32::new(1));
    let sys = system(None, &failing).await;
    let flaky = sys.agent_ref::<Flaky>("flaky").unwrap();
    let standby = sys.agent_ref::<Flaky>("standby").unwrap();
    let letters = sys.dead_letters();
    let id = letters
        .push_task(&flaky, &"abc".to_string(), three_503s(), Usage::default())
        .await
        .unwrap();

    let again = letters.redrive(id, &flaky).await;
    assert!(
        matches!(again, Err(RedriveError::Failed { .. })),
        "{again:?}"
    );
    let letter = letters.get(id).unwrap();
    assert_eq!(letter.attempts.len(), 4);
    assert_eq!(
        letter.last_error().unwrap().message,
        "agent 'flaky' failed the task: the provider answered 503"
    );

    // Another agent of the same type takes it; an agent of another type may not.
    let other = sys.agent_ref::<Other>("other").unwrap();
    assert!(matches!(
        letters.redrive(id, &other).await,
        Err(RedriveError::Letter(DeadLetterError::WrongAgentType { .. }))
    ));
    assert_eq!(letters.redrive(id, &standby).await, Ok(3));
    assert!(letters.is_empty());
    assert_eq!(
        letters.redrive(id, &standby).await,
        Err(RedriveError::Letter(DeadLetterError::NotFound(id)))
    );
    sys.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn each_change_of_the_queue_is_an_event_with_its_size() {
    let failing = Arc::new(AtomicU32::new(0));
    let sys = system(None, &failing).await;
    let mut events = sys.subscribe();
    let flaky = sys.agent_ref::<Flaky>("flaky").unwrap();
    let letters = sys.dead_letters();
    let a = letters
        .push_task(&flaky, &"a".to_string(), three_503s(), Usage::default())
        .await
        .unwrap();
    letters
        .push_task(&flaky, &"b".to_string(), three_503s(), Usage::default())
        .await
        .unwrap();
    letters.remove(a).await.unwrap();

    let mut seen = Vec::new();
    while seen.len() < 3 {
        if let SystemEvent::DeadLetter(event) = events.recv().await.unwrap() {
            seen.push((event.change, event.letter, event.queue_len));
        }
    }
    assert_eq!(seen[0], (DeadLetterChange::Pushed, a, 1));
    assert_eq!(seen[1].0, DeadLetterChange::Pushed);
    assert_eq!(seen[1].2, 2);
    assert_eq!(seen[2], (DeadLetterChange::Removed, a, 1));
    sys.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn an_unsafe_step_in_doubt_joins_the_queue_with_its_run_and_step() {
    let run = RunId::new("mail-1").unwrap();
    // Start, claim and the email's intent are journaled; its result is not.
    let storage = MemStorage::new().crash(CrashPlan::AfterRecords(3));
    let sent = Arc::new(AtomicU32::new(0));
    let sys = mailer_system(journal_over(storage.clone()), &sent, None).await;
    let mailer = sys.agent_ref::<Mailer>("mailer").unwrap();
    assert!(mailer
        .ask_run(run.clone(), "ada@example.org".into())
        .await
        .is_err());
    sys.shutdown(Duration::from_secs(5)).await.unwrap();

    let sys = mailer_system(journal_over(storage.reopen()), &sent, None).await;
    let mailer = sys.agent_ref::<Mailer>("mailer").unwrap();
    assert!(mailer
        .ask_run(run.clone(), "ada@example.org".into())
        .await
        .is_err());
    let letters = sys.dead_letters().list();
    assert_eq!(letters.len(), 1, "{letters:?}");
    let letter = &letters[0];
    assert_eq!(letter.run.as_ref(), Some(&run));
    assert_eq!(
        letter.origin,
        LetterOrigin::StepInDoubt {
            step_name: "email".into()
        }
    );
    assert!(letter.step.is_some());
    assert_eq!(letter.attempts[0].class, ErrorClass::ReplayUnsafe);
    assert_eq!(letter.input.decode::<String>().unwrap(), "ada@example.org");
    sys.shutdown(Duration::from_secs(5)).await.unwrap();

    // The step's letter is durable too, and asking the run again does not queue it twice.
    let sys = mailer_system(journal_over(storage.reopen()), &sent, None).await;
    let mailer = sys.agent_ref::<Mailer>("mailer").unwrap();
    assert!(mailer.ask_run(run, "ada@example.org".into()).await.is_err());
    assert_eq!(sys.dead_letters().len(), 1);
    assert_eq!(sent.load(Ordering::SeqCst), 1, "never sent twice");
    sys.shutdown(Duration::from_secs(5)).await.unwrap();
}

/// The task "draft" of the agent "flaky", given up after three 503s.
async fn draft_given_up(
    sys: &System,
) -> (
    overseer_agent::AgentRef<Flaky>,
    overseer_agent::DeadLetters,
    overseer_agent::DeadLetterId,
) {
    let flaky = sys.agent_ref::<Flaky>("flaky").unwrap();
    let letters = sys.dead_letters();
    let id = letters
        .push_task(&flaky, &"draft".to_string(), three_503s(), Usage::default())
        .await
        .unwrap();
    (flaky, letters, id)
}

#[tokio::test(start_paused = true)]
async fn a_durable_redrive_is_a_run_of_its_own_asked_once() {
    let failing = Arc::new(AtomicU32::new(1));
    let sys = system(Some(journal_over(MemStorage::new())), &failing).await;
    let (flaky, letters, id) = draft_given_up(&sys).await;

    // The first redrive fails: the letter keeps it, a fourth attempt.
    let again = letters.redrive_run(id, &flaky).await;
    assert!(
        matches!(again, Err(RedriveError::Failed { .. })),
        "{again:?}"
    );
    assert_eq!(letters.get(id).unwrap().attempts.len(), 4);
    // The second is the run `dead-letter-<id>/redrive-4`: answered, the letter removed.
    assert_eq!(letters.redrive_run(id, &flaky).await, Ok(5));
    assert!(letters.get(id).is_none());

    // That run is journaled: asked again, the journal answers, not the (failing) agent.
    failing.store(5, Ordering::SeqCst);
    let run = RunId::new(format!("dead-letter-{id}/redrive-4")).unwrap();
    assert_eq!(flaky.ask_run(run, "draft".to_string()).await, Ok(5));
    assert_eq!(
        failing.load(Ordering::SeqCst),
        5,
        "the handler was not called"
    );
    sys.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_durable_redrive_without_a_journal_is_a_typed_failure() {
    let failing = Arc::new(AtomicU32::new(0));
    let sys = system(None, &failing).await;
    let (flaky, letters, id) = draft_given_up(&sys).await;
    let refused = letters.redrive_run(id, &flaky).await;
    assert!(
        matches!(
            refused,
            Err(RedriveError::Failed {
                error: overseer_agent::AskError::NoJournal { .. },
                ..
            })
        ),
        "{refused:?}"
    );
    assert_eq!(letters.len(), 1, "the letter stays");
    sys.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_durable_redrive_of_a_run_whose_id_is_too_long_is_refused_before_asking() {
    let failing = Arc::new(AtomicU32::new(0));
    let sys = system(Some(journal_over(MemStorage::new())), &failing).await;
    let flaky = sys.agent_ref::<Flaky>("flaky").unwrap();
    let longest = RunId::new("r".repeat(overseer_journal::MAX_RUN_ID_LEN)).unwrap();
    let input = overseer_journal::Payload::encode(&"draft".to_string()).unwrap();
    let letter = overseer_agent::DeadLetter::new("flaky", "default", input)
        .agent_type(std::any::type_name::<Flaky>())
        .run(longest);
    let letters = sys.dead_letters();
    let id = letters.push(letter).await.unwrap();
    let refused = letters.redrive_run(id, &flaky).await;
    assert!(
        matches!(refused, Err(RedriveError::RunId { id: refused_id, .. }) if refused_id == id),
        "{refused:?}"
    );
    assert_eq!(
        letters.get(id).unwrap().attempts.len(),
        0,
        "nothing was asked"
    );
    sys.shutdown(Duration::from_secs(5)).await.unwrap();
}
