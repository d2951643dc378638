//! Durable runs through agents: steps journaled and replayed, a restart that is a replay, a run
//! asked again, a dead process resumed, a zombie fenced off.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

mod mailer;

use mailer::{mailer_system, Mailer};
use overseer_agent::{
    Agent, AgentContext, AgentError, AgentSpec, AskError, ModelRequest, ScriptedModel, StepError,
    System,
};
use overseer_journal::{CrashPlan, Effect, Journal, JournalConfig, RunId};
use overseer_postgres::testing::TestStorage;
use overseer_supervisor::SupervisorSpec;
use serde::{Deserialize, Serialize};

/// What the world outside saw: how many times each effect really happened.
#[derive(Debug, Default)]
struct World {
    quotes: AtomicU32,
    charges: AtomicU32,
    emails: AtomicU32,
    /// When set, the next handler crashes once between the charge and the email.
    crash_before_email: AtomicBool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Order {
    amount: u64,
}

/// Quotes (idempotent), charges (keyed), asks the model for a note, sends an email (unsafe).
struct Payer {
    world: Arc<World>,
    model: ScriptedModel,
}

impl Agent for Payer {
    type Task = Order;
    type Output = String;

    async fn handle(&mut self, ctx: &mut AgentContext, order: Order) -> Result<String, AgentError> {
        let world = Arc::clone(&self.world);
        let quote: u64 = ctx
            .step("quote", Effect::Idempotent, |_| async {
                world.quotes.fetch_add(1, Ordering::SeqCst);
                Ok(order.amount * 2)
            })
            .await?;
        let charger = Arc::clone(&world);
        let charged: String = ctx
            .step("charge", Effect::Keyed, |key| async move {
                charger.charges.fetch_add(1, Ordering::SeqCst);
                Ok(format!("charged {quote} under {key}"))
            })
            .await?;
        let note = ctx
            .model(&self.model, ModelRequest::new(format!("thank for {quote}")))
            .await?;
        if world.crash_before_email.swap(false, Ordering::SeqCst) {
            panic!("crashed before the email");
        }
        let sent: bool = ctx
            .step("email", Effect::Unsafe, |_| async {
                world.emails.fetch_add(1, Ordering::SeqCst);
                Ok(true)
            })
            .await?;
        Ok(format!("{charged}; {}; sent {sent}", note.text))
    }
}

fn model() -> ScriptedModel {
    ScriptedModel::new().when("thank", |_| Ok("thanks!".to_string()))
}

async fn start(journal: Journal, world: &Arc<World>, model: &ScriptedModel) -> System {
    let system = System::builder()
        .ask_timeout(Duration::from_secs(30))
        .journal(journal)
        .build()
        .unwrap();
    let world = Arc::clone(world);
    let model = model.clone();
    let spec = SupervisorSpec::one_for_one("root").child(
        system
            .agent(AgentSpec::new("payer", move || Payer {
                world: Arc::clone(&world),
                model: model.clone(),
            }))
            .unwrap(),
    );
    system.start(spec).await.unwrap();
    system
}

fn journal_over(storage: TestStorage) -> Journal {
    Journal::open(storage, JournalConfig::default()).unwrap().0
}

fn counts(world: &World) -> (u32, u32, u32) {
    (
        world.quotes.load(Ordering::SeqCst),
        world.charges.load(Ordering::SeqCst),
        world.emails.load(Ordering::SeqCst),
    )
}

#[tokio::test(start_paused = true)]
async fn a_run_asked_again_returns_its_outcome_without_running_anything() {
    let world = Arc::new(World::default());
    let model = model();
    let system = start(journal_over(TestStorage::new()), &world, &model).await;
    let payer = system.agent_ref::<Payer>("payer").unwrap();
    let run = RunId::new("order-1").unwrap();

    let first = payer
        .ask_run(run.clone(), Order { amount: 5 })
        .await
        .unwrap();
    assert!(first.starts_with("charged 10 under "), "{first}");
    assert_eq!(counts(&world), (1, 1, 1));
    assert_eq!(model.calls(), 1);

    let again = payer
        .ask_run(run.clone(), Order { amount: 5 })
        .await
        .unwrap();
    assert_eq!(again, first);
    assert_eq!(counts(&world), (1, 1, 1), "nothing ran again");
    assert_eq!(model.calls(), 1, "the model was not called again");

    let conflict = payer.ask_run(run.clone(), Order { amount: 6 }).await;
    assert!(
        matches!(conflict, Err(AskError::RunConflict { .. })),
        "{conflict:?}"
    );
    system.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_restart_is_a_replay() {
    let world = Arc::new(World::default());
    world.crash_before_email.store(true, Ordering::SeqCst);
    let model = model();
    let system = start(journal_over(TestStorage::new()), &world, &model).await;
    let payer = system.agent_ref::<Payer>("payer").unwrap();

    // The first incarnation quotes, charges and asks the model, then crashes; the ask goes to
    // the next incarnation, which replays the three steps and sends the email.
    let answer = payer
        .ask_run(RunId::new("order-2").unwrap(), Order { amount: 7 })
        .await
        .unwrap();
    assert!(answer.ends_with("thanks!; sent true"), "{answer}");
    assert_eq!(counts(&world), (1, 1, 1), "each effect happened once");
    assert_eq!(model.calls(), 1, "the model was paid for once");
    system.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_dead_process_resumes_where_it_stopped() {
    let world = Arc::new(World::default());
    let model = model();
    let run = RunId::new("order-3").unwrap();
    // The first process dies after the start, the claim, the quote and the charge's intent and
    // result: the journal takes five records, then every write fails.
    let storage = TestStorage::new().crash(CrashPlan::AfterRecords(5));
    {
        let system = start(journal_over(storage.clone()), &world, &model).await;
        let payer = system.agent_ref::<Payer>("payer").unwrap();
        let died = payer.ask_run(run.clone(), Order { amount: 3 }).await;
        assert!(
            matches!(
                died.as_ref().map_err(AskError::step_error),
                Err(Some(StepError::Journal { .. }))
            ),
            "{died:?}"
        );
        system.shutdown(Duration::from_secs(5)).await.unwrap();
    }
    assert_eq!(counts(&world), (1, 1, 0));
    assert_eq!(
        model.calls(),
        1,
        "the model answered, but its answer was never journaled"
    );

    // The next process opens the same journal and asks the run again: it resumes.
    let system = start(journal_over(storage.reopen()), &world, &model).await;
    let payer = system.agent_ref::<Payer>("payer").unwrap();
    let answer = payer
        .ask_run(run.clone(), Order { amount: 3 })
        .await
        .unwrap();
    assert!(answer.starts_with("charged 6 under "), "{answer}");
    assert_eq!(
        counts(&world),
        (1, 1, 1),
        "the quote and the charge were not repeated"
    );
    assert_eq!(
        model.calls(),
        2,
        "only the call without a journaled answer was made again"
    );
    system.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn an_unsafe_effect_in_doubt_is_reconciled_or_dead_lettered_never_doubled() {
    let run = RunId::new("mail-1").unwrap();
    // Start, claim and the email's intent are journaled; its result is not.
    let storage = TestStorage::new().crash(CrashPlan::AfterRecords(3));
    let sent = Arc::new(AtomicU32::new(0));
    {
        let system = mailer_system(journal_over(storage.clone()), &sent, None).await;
        let mailer = system.agent_ref::<Mailer>("mailer").unwrap();
        assert!(mailer
            .ask_run(run.clone(), "ada@example.org".into())
            .await
            .is_err());
        system.shutdown(Duration::from_secs(5)).await.unwrap();
    }
    assert_eq!(sent.load(Ordering::SeqCst), 1);

    for (check, expected_sends, outcome_ok) in [
        (Some(true), 1, true),
        (Some(false), 2, true),
        (None, 1, false),
    ] {
        let sent = Arc::new(AtomicU32::new(1));
        let system = mailer_system(journal_over(storage.reopen()), &sent, check).await;
        let mailer = system.agent_ref::<Mailer>("mailer").unwrap();
        let answer = mailer.ask_run(run.clone(), "ada@example.org".into()).await;
        assert_eq!(answer.is_ok(), outcome_ok, "check {check:?}: {answer:?}");
        if check.is_none() {
            assert!(
                matches!(
                    answer.as_ref().map_err(AskError::step_error),
                    Err(Some(StepError::InDoubt { .. }))
                ),
                "{answer:?}"
            );
        }
        assert_eq!(
            sent.load(Ordering::SeqCst),
            expected_sends,
            "check {check:?}"
        );
        system.shutdown(Duration::from_secs(5)).await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn without_a_journal_a_durable_ask_is_refused() {
    let world = Arc::new(World::default());
    let system = System::builder().build().unwrap();
    let spec = SupervisorSpec::one_for_one("root").child(
        system
            .agent(AgentSpec::new("payer", move || Payer {
                world: Arc::clone(&world),
                model: model(),
            }))
            .unwrap(),
    );
    system.start(spec).await.unwrap();
    let payer = system.agent_ref::<Payer>("payer").unwrap();
    let refused = payer
        .ask_run(RunId::new("r").unwrap(), Order { amount: 1 })
        .await;
    assert!(
        matches!(refused, Err(AskError::NoJournal { .. })),
        "{refused:?}"
    );
    // A plain ask runs the steps as plain calls.
    assert!(payer.ask(Order { amount: 1 }).await.is_ok());
    system.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_restarted_process_resumes_its_unfinished_runs() {
    let world = Arc::new(World::default());
    let model = model();
    let storage = TestStorage::new().crash(CrashPlan::AfterRecords(5));
    {
        let system = start(journal_over(storage.clone()), &world, &model).await;
        let payer = system.agent_ref::<Payer>("payer").unwrap();
        assert!(payer
            .ask_run(RunId::new("order-4").unwrap(), Order { amount: 4 })
            .await
            .is_err());
        system.shutdown(Duration::from_secs(5)).await.unwrap();
    }
    let system = start(journal_over(storage.reopen()), &world, &model).await;
    let payer = system.agent_ref::<Payer>("payer").unwrap();
    let resumed = payer.resume_unfinished().await.unwrap();
    assert_eq!(resumed.len(), 1);
    let (run, outcome) = &resumed[0];
    assert_eq!(run.as_str(), "order-4");
    assert!(
        outcome
            .as_ref()
            .is_ok_and(|text| text.starts_with("charged 8 ")),
        "{outcome:?}"
    );
    assert_eq!(counts(&world), (1, 1, 1));
    assert!(
        payer.resume_unfinished().await.unwrap().is_empty(),
        "nothing left"
    );
    system.shutdown(Duration::from_secs(5)).await.unwrap();
}

/// Drafts, waits for a person's approval, then publishes.
struct Publisher {
    drafts: Arc<AtomicU32>,
    published: Arc<AtomicU32>,
}

impl Agent for Publisher {
    type Task = String;
    type Output = String;

    async fn handle(&mut self, ctx: &mut AgentContext, text: String) -> Result<String, AgentError> {
        let drafts = Arc::clone(&self.drafts);
        let draft: String = ctx
            .step("draft", Effect::Idempotent, |_| async move {
                drafts.fetch_add(1, Ordering::SeqCst);
                Ok(format!("draft of {text}"))
            })
            .await?;
        let approved: bool = ctx.wait_for("approval")?;
        if !approved {
            return Err(AgentError::failed("not approved"));
        }
        let published = Arc::clone(&self.published);
        ctx.step("publish", Effect::Unsafe, |_| async move {
            published.fetch_add(1, Ordering::SeqCst);
            Ok(format!("published {draft}"))
        })
        .await
    }
}

async fn publisher_system(
    journal: Journal,
    drafts: &Arc<AtomicU32>,
    published: &Arc<AtomicU32>,
) -> System {
    let system = System::builder().journal(journal).build().unwrap();
    let (drafts, published) = (Arc::clone(drafts), Arc::clone(published));
    let spec = SupervisorSpec::one_for_one("root").child(
        system
            .agent(AgentSpec::new("publisher", move || Publisher {
                drafts: Arc::clone(&drafts),
                published: Arc::clone(&published),
            }))
            .unwrap(),
    );
    system.start(spec).await.unwrap();
    system
}

#[tokio::test(start_paused = true)]
async fn a_run_waits_for_its_signal_across_a_process_restart() {
    let (drafts, published) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let storage = TestStorage::new();
    let run = RunId::new("post-1").unwrap();
    {
        let system = publisher_system(journal_over(storage.clone()), &drafts, &published).await;
        let publisher = system.agent_ref::<Publisher>("publisher").unwrap();
        let waiting = publisher.ask_run(run.clone(), "news".into()).await;
        assert!(
            matches!(waiting.as_ref().map_err(AskError::step_error), Err(Some(StepError::Suspended { signal, .. })) if signal == "approval"),
            "{waiting:?}"
        );
        system.shutdown(Duration::from_secs(5)).await.unwrap();
    }
    assert_eq!(
        (
            drafts.load(Ordering::SeqCst),
            published.load(Ordering::SeqCst)
        ),
        (1, 0)
    );

    // Another process, the same journal: the approval resumes the run.
    let system = publisher_system(journal_over(storage.reopen()), &drafts, &published).await;
    let publisher = system.agent_ref::<Publisher>("publisher").unwrap();
    let outcome = publisher.signal(run.clone(), "approval", &true).await;
    assert_eq!(outcome, Ok("published draft of news".to_string()));
    assert_eq!(
        (
            drafts.load(Ordering::SeqCst),
            published.load(Ordering::SeqCst)
        ),
        (1, 1)
    );
    system.shutdown(Duration::from_secs(5)).await.unwrap();
}

/// Takes one step that waits at a gate (in the process that holds the gate).
struct Gated {
    gate: Option<Arc<tokio::sync::Notify>>,
    entered: Arc<tokio::sync::Notify>,
}

impl Agent for Gated {
    type Task = u32;
    type Output = u32;

    async fn handle(&mut self, ctx: &mut AgentContext, n: u32) -> Result<u32, AgentError> {
        let gate = self.gate.clone();
        let entered = Arc::clone(&self.entered);
        ctx.step("slow", Effect::Idempotent, |_| async move {
            entered.notify_one();
            if let Some(gate) = gate {
                gate.notified().await;
            }
            Ok(n + 1)
        })
        .await
    }
}

async fn gated_system(
    journal: Journal,
    gate: Option<Arc<tokio::sync::Notify>>,
    entered: &Arc<tokio::sync::Notify>,
) -> System {
    let system = System::builder()
        .journal(journal)
        .ask_timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let entered = Arc::clone(entered);
    let spec = SupervisorSpec::one_for_one("root").child(
        system
            .agent(AgentSpec::new("gated", move || Gated {
                gate: gate.clone(),
                entered: Arc::clone(&entered),
            }))
            .unwrap(),
    );
    system.start(spec).await.unwrap();
    system
}

#[tokio::test(start_paused = true)]
async fn a_zombie_incarnation_cannot_record_its_step_or_outcome() {
    // Two processes share one journal: the first hangs in a step, the second takes the run up.
    let journal = journal_over(TestStorage::new());
    let gate = Arc::new(tokio::sync::Notify::new());
    let entered = Arc::new(tokio::sync::Notify::new());
    let first = gated_system(journal.clone(), Some(Arc::clone(&gate)), &entered).await;
    let second = gated_system(journal.clone(), None, &entered).await;
    let run = RunId::new("contended").unwrap();

    let zombie = tokio::spawn({
        let gated = first.agent_ref::<Gated>("gated").unwrap();
        let run = run.clone();
        async move { gated.ask_run(run, 1).await }
    });
    entered.notified().await;
    let taken_over = second
        .agent_ref::<Gated>("gated")
        .unwrap()
        .ask_run(run.clone(), 1)
        .await;
    assert_eq!(taken_over, Ok(2));

    gate.notify_one();
    let fenced = zombie.await.unwrap();
    assert!(
        matches!(
            fenced.as_ref().map_err(AskError::step_error),
            Err(Some(StepError::Fenced { epoch: 1, .. }))
        ),
        "{fenced:?}"
    );
    assert_eq!(
        journal.with_run(&run, |r| r.unwrap().epoch),
        Some(overseer_journal::Epoch(2))
    );
    first.shutdown(Duration::from_secs(5)).await.unwrap();
    second.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn spend_journaled_before_a_crash_is_restored_not_charged_twice() {
    use overseer_budget::{Budget, Limits};
    let world = Arc::new(World::default());
    let model = model();
    let budgeted = |journal: Journal| {
        let budget = Budget::builder()
            .process_limits(Limits::new().tokens(1_000))
            .build()
            .unwrap();
        let system = System::builder()
            .journal(journal)
            .budget(budget.clone())
            .build()
            .unwrap();
        (system, budget)
    };
    let start_payer = |system: &System| {
        let world = Arc::clone(&world);
        let model = model.clone();
        SupervisorSpec::one_for_one("root").child(
            system
                .agent(AgentSpec::new("payer", move || Payer {
                    world: Arc::clone(&world),
                    model: model.clone(),
                }))
                .unwrap(),
        )
    };
    // A crash-free run, for its spend.
    let (system, budget) = budgeted(journal_over(TestStorage::new()));
    system.start(start_payer(&system)).await.unwrap();
    let payer = system.agent_ref::<Payer>("payer").unwrap();
    payer
        .ask_run(RunId::new("a").unwrap(), Order { amount: 2 })
        .await
        .unwrap();
    let whole = 1_000 - budget.remaining("payer").tokens.unwrap();
    assert!(whole > 0, "the model call spent tokens");
    system.shutdown(Duration::from_secs(5)).await.unwrap();

    // The same run crashing after the model call's result was journaled (7 records: start,
    // claim, quote, charge intent and result, model intent and result), then resumed.
    let storage = TestStorage::new().crash(CrashPlan::AfterRecords(7));
    let (system, _) = budgeted(journal_over(storage.clone()));
    system.start(start_payer(&system)).await.unwrap();
    let payer = system.agent_ref::<Payer>("payer").unwrap();
    assert!(payer
        .ask_run(RunId::new("b").unwrap(), Order { amount: 2 })
        .await
        .is_err());
    system.shutdown(Duration::from_secs(5)).await.unwrap();
    let calls_before = model.calls();

    let (system, budget) = budgeted(journal_over(storage.reopen()));
    system.start(start_payer(&system)).await.unwrap();
    let payer = system.agent_ref::<Payer>("payer").unwrap();
    let resumed = payer.resume_unfinished().await.unwrap();
    assert!(resumed[0].1.is_ok(), "{resumed:?}");
    assert_eq!(
        model.calls(),
        calls_before,
        "the model call was replayed, not made again"
    );
    assert_eq!(
        1_000 - budget.remaining("payer").tokens.unwrap(),
        whole,
        "the new process's ledger holds the run's whole spend, once"
    );
    system.shutdown(Duration::from_secs(5)).await.unwrap();
}

/// Takes step "first", then waits at a gate in step "second".
struct TwoSteps {
    first_runs: Arc<AtomicU32>,
    gate: Option<Arc<tokio::sync::Notify>>,
    entered: Arc<tokio::sync::Notify>,
    second_name: &'static str,
}

impl Agent for TwoSteps {
    type Task = u32;
    type Output = u32;

    async fn handle(&mut self, ctx: &mut AgentContext, n: u32) -> Result<u32, AgentError> {
        let runs = Arc::clone(&self.first_runs);
        let one: u32 = ctx
            .step("first", Effect::Idempotent, |_| async move {
                runs.fetch_add(1, Ordering::SeqCst);
                Ok(n + 1)
            })
            .await?;
        let (gate, entered) = (self.gate.clone(), Arc::clone(&self.entered));
        ctx.step(self.second_name, Effect::Idempotent, |_| async move {
            entered.notify_one();
            if let Some(gate) = gate {
                gate.notified().await;
            }
            Ok(one + 1)
        })
        .await
    }
}

async fn two_steps_system(
    journal: Journal,
    budget: Option<overseer_budget::Budget>,
    agent: impl Fn() -> TwoSteps + Send + Sync + 'static,
) -> System {
    let mut builder = System::builder().journal(journal);
    if let Some(budget) = budget {
        builder = builder.budget(budget);
    }
    let system = builder.build().unwrap();
    let spec = SupervisorSpec::one_for_one("root")
        .child(system.agent(AgentSpec::new("two", agent)).unwrap());
    system.start(spec).await.unwrap();
    system
}

#[tokio::test(start_paused = true)]
async fn runs_cut_by_the_kill_switch_resume_once_the_cause_is_fixed() {
    use overseer_budget::{Budget, InFlightPolicy, KillSwitchConfig, TripReason};
    let journal = journal_over(TestStorage::new());
    let first_runs = Arc::new(AtomicU32::new(0));
    let gate = Arc::new(tokio::sync::Notify::new());
    let entered = Arc::new(tokio::sync::Notify::new());
    let budget = Budget::builder()
        .kill_switch(KillSwitchConfig::new().in_flight(InFlightPolicy::CancelNow))
        .build()
        .unwrap();
    let told = Arc::new(std::sync::Mutex::new(None));
    budget.kill_switch().on_trip({
        let told = Arc::clone(&told);
        move |report| *told.lock().unwrap() = Some(report.reason.to_string())
    });
    let agent = {
        let (first_runs, gate, entered) = (
            Arc::clone(&first_runs),
            Arc::clone(&gate),
            Arc::clone(&entered),
        );
        move || TwoSteps {
            first_runs: Arc::clone(&first_runs),
            gate: Some(Arc::clone(&gate)),
            entered: Arc::clone(&entered),
            second_name: "second",
        }
    };
    let system = two_steps_system(journal.clone(), Some(budget.clone()), agent).await;
    let two = system.agent_ref::<TwoSteps>("two").unwrap();
    let run = RunId::new("cut").unwrap();
    let asked = tokio::spawn({
        let (two, run) = (two.clone(), run.clone());
        async move { two.ask_run(run, 1).await }
    });
    entered.notified().await;
    budget
        .kill_switch()
        .trip(TripReason::manual("runaway spend"));
    let cut = asked.await.unwrap();
    assert!(
        matches!(cut, Err(AskError::KillSwitchTripped { .. })),
        "{cut:?}"
    );
    assert!(told
        .lock()
        .unwrap()
        .as_deref()
        .is_some_and(|reason| reason.contains("runaway spend")));
    assert_eq!(
        journal.unfinished(),
        vec![run.clone()],
        "the run's state is in the journal"
    );
    let _ = system.shutdown(Duration::from_secs(5)).await;

    // The cause fixed: a new system (a new budget) over the same journal resumes the run.
    let agent = {
        let (first_runs, entered) = (Arc::clone(&first_runs), Arc::clone(&entered));
        move || TwoSteps {
            first_runs: Arc::clone(&first_runs),
            gate: None,
            entered: Arc::clone(&entered),
            second_name: "second",
        }
    };
    let system = two_steps_system(journal.clone(), None, agent).await;
    let resumed = system
        .agent_ref::<TwoSteps>("two")
        .unwrap()
        .resume_unfinished()
        .await
        .unwrap();
    assert_eq!(resumed, vec![(run, Ok(3))]);
    assert_eq!(
        first_runs.load(Ordering::SeqCst),
        1,
        "the first step was replayed"
    );
    system.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_replay_that_asks_for_another_step_is_a_typed_divergence() {
    let storage = TestStorage::new();
    let first_runs = Arc::new(AtomicU32::new(0));
    let entered = Arc::new(tokio::sync::Notify::new());
    let run = RunId::new("changed").unwrap();
    let version = |second_name: &'static str| {
        let (first_runs, entered) = (Arc::clone(&first_runs), Arc::clone(&entered));
        move || TwoSteps {
            first_runs: Arc::clone(&first_runs),
            gate: None,
            entered: Arc::clone(&entered),
            second_name,
        }
    };
    // Version 1 runs both steps, but the process dies before the second step's result (3
    // records: start, claim, first).
    let crashing = storage.clone().crash(CrashPlan::AfterRecords(3));
    let system = two_steps_system(journal_over(crashing), None, version("second")).await;
    let two = system.agent_ref::<TwoSteps>("two").unwrap();
    assert!(two.ask_run(run.clone(), 1).await.is_err());
    system.shutdown(Duration::from_secs(5)).await.unwrap();

    // Version 2 of the code takes another second step: fine, nothing was recorded there. But
    // version 3 renamed the first step: the journal holds "first" at that place.
    let system = two_steps_system(journal_over(storage.reopen()), None, version("renamed")).await;
    let two = system.agent_ref::<TwoSteps>("two").unwrap();
    assert_eq!(two.ask_run(run.clone(), 1).await, Ok(3));
    system.shutdown(Duration::from_secs(5)).await.unwrap();

    struct Renamed;
    impl Agent for Renamed {
        type Task = u32;
        type Output = u32;
        async fn handle(&mut self, ctx: &mut AgentContext, n: u32) -> Result<u32, AgentError> {
            ctx.step("not first", Effect::Idempotent, |_| async move { Ok(n) })
                .await
        }
    }
    let crashing = TestStorage::new().crash(CrashPlan::AfterRecords(3));
    let system = two_steps_system(journal_over(crashing.clone()), None, version("second")).await;
    let two = system.agent_ref::<TwoSteps>("two").unwrap();
    assert!(two.ask_run(run.clone(), 1).await.is_err());
    system.shutdown(Duration::from_secs(5)).await.unwrap();
    let system = System::builder()
        .journal(journal_over(crashing.reopen()))
        .build()
        .unwrap();
    let spec = SupervisorSpec::one_for_one("root")
        .child(system.agent(AgentSpec::new("two", || Renamed)).unwrap());
    system.start(spec).await.unwrap();
    let renamed = system.agent_ref::<Renamed>("two").unwrap();
    let diverged = renamed.ask_run(run, 1).await;
    assert!(
        matches!(diverged.as_ref().map_err(AskError::step_error), Err(Some(StepError::Diverged { recorded, requested, .. }))
            if recorded.contains("first") && requested.contains("not first")),
        "{diverged:?}"
    );
    system.shutdown(Duration::from_secs(5)).await.unwrap();
}

/// Fails every task it is given, after one step.
struct Refuser {
    tries: Arc<AtomicU32>,
}

impl Agent for Refuser {
    type Task = String;
    type Output = String;

    async fn handle(&mut self, ctx: &mut AgentContext, card: String) -> Result<String, AgentError> {
        let tries = Arc::clone(&self.tries);
        ctx.step("authorize", Effect::Keyed, |_| async move {
            tries.fetch_add(1, Ordering::SeqCst);
            Err::<String, _>(AgentError::failed(format!("card {card} declined")))
        })
        .await
    }
}

#[tokio::test(start_paused = true)]
async fn a_failed_run_asked_again_fails_the_same_way_without_running() {
    let tries = Arc::new(AtomicU32::new(0));
    let system = System::builder()
        .journal(journal_over(TestStorage::new()))
        .step_durability(overseer_agent::StepDurability {
            other_steps: overseer_journal::Durability::Async,
            ..Default::default()
        })
        .build()
        .unwrap();
    let spec = SupervisorSpec::one_for_one("root").child(
        system
            .agent(AgentSpec::new("refuser", {
                let tries = Arc::clone(&tries);
                move || Refuser {
                    tries: Arc::clone(&tries),
                }
            }))
            .unwrap(),
    );
    system.start(spec).await.unwrap();
    let refuser = system.agent_ref::<Refuser>("refuser").unwrap();
    let run = RunId::new("pay-9").unwrap();
    let first = refuser.ask_run(run.clone(), "4242".into()).await;
    assert!(
        matches!(first, Err(AskError::Failed { error: AgentError::Failed(ref m), .. }) if m.contains("declined")),
        "{first:?}"
    );
    let again = refuser.ask_run(run.clone(), "4242".into()).await;
    assert_eq!(
        again,
        Err(AskError::RunFailed {
            run,
            error: "card 4242 declined".into()
        })
    );
    assert_eq!(
        tries.load(Ordering::SeqCst),
        1,
        "the failure was replayed, not retried"
    );
    system.shutdown(Duration::from_secs(5)).await.unwrap();
}
