//! A cohort whose members are durable runs survives a process restart: run again on the same
//! journal, the members that had answered replay from it without asking their agents, and those
//! that had not are asked again. Paused clock, a MemStorage reopened as a new process would.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use overseer_agent::{
    Agent, AgentContext, AgentError, AgentRef, AgentSpec, AskError, Cohort, CohortDecision,
    MemberResult, System,
};
use overseer_journal::{Journal, JournalConfig, RunId};
use overseer_postgres::testing::TestStorage;
use overseer_supervisor::SupervisorSpec;

/// Answers its topic after a second, or (while `hang` is set) never; counts what it handled.
struct Researcher {
    hang: bool,
    handled: Arc<AtomicU32>,
}

impl Agent for Researcher {
    type Task = String;
    type Output = String;

    async fn handle(
        &mut self,
        ctx: &mut AgentContext,
        topic: String,
    ) -> Result<String, AgentError> {
        self.handled.fetch_add(1, Ordering::SeqCst);
        if self.hang {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        Ok(format!("{} on {topic}", ctx.name()))
    }
}

struct Process {
    system: System,
    researchers: Vec<AgentRef<Researcher>>,
}

/// A process: three researchers on `storage`'s journal, the second hanging if `hang`.
async fn process(storage: TestStorage, hang: bool, handled: &[Arc<AtomicU32>]) -> Process {
    let journal = Journal::open(storage, JournalConfig::default()).unwrap().0;
    let system = System::builder()
        .ask_timeout(Duration::from_secs(60))
        .journal(journal)
        .build()
        .unwrap();
    let mut root = SupervisorSpec::one_for_one("root");
    for (i, handled) in handled.iter().enumerate() {
        let handled = Arc::clone(handled);
        let hang = hang && i == 1;
        let spec = AgentSpec::new(format!("researcher-{}", i + 1), move || Researcher {
            hang,
            handled: Arc::clone(&handled),
        });
        root = root.child(system.agent(spec).unwrap());
    }
    system.start(root).await.unwrap();
    let researchers = (1..=handled.len())
        .map(|i| system.agent_ref(&format!("researcher-{i}")).unwrap())
        .collect();
    Process {
        system,
        researchers,
    }
}

/// The cohort of the job "survey-7": every researcher a durable member, all of them needed.
fn cohort(researchers: &[AgentRef<Researcher>]) -> Cohort<String> {
    researchers
        .iter()
        .enumerate()
        .fold(Cohort::all(), |cohort, (i, researcher)| {
            let run = RunId::new(format!("survey-7/researcher-{}", i + 1)).unwrap();
            cohort.member_run(researcher, run, "fan-in".to_string())
        })
}

#[tokio::test(start_paused = true)]
async fn a_durable_cohort_run_again_after_a_restart_replays_who_answered_and_asks_the_rest() {
    let handled: Vec<Arc<AtomicU32>> = (0..3).map(|_| Arc::default()).collect();
    let storage = TestStorage::new();

    // The first process: the second researcher hangs; the cohort ends at its deadline with two.
    let first = process(storage.clone(), true, &handled).await;
    let outcome = cohort(&first.researchers)
        .run_within(Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(outcome.decision, CohortDecision::DeadlinePartial);
    assert_eq!(outcome.answered(), 2);
    assert!(matches!(
        outcome.members[1].result,
        MemberResult::NotAnswered
    ));
    first.system.shutdown(Duration::from_secs(5)).await.unwrap();
    let counts = || {
        handled
            .iter()
            .map(|h| h.load(Ordering::SeqCst))
            .collect::<Vec<_>>()
    };
    assert_eq!(counts(), [1, 1, 1]);

    // Another process on the same journal: the answers replay, the second is asked again.
    let second = process(storage.reopen(), false, &handled).await;
    let outcome = cohort(&second.researchers)
        .run_within(Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(outcome.decision, CohortDecision::Complete);
    let answers: Vec<&String> = outcome.outputs().map(|(_, answer)| answer).collect();
    assert_eq!(
        answers,
        [
            "researcher-1 on fan-in",
            "researcher-2 on fan-in",
            "researcher-3 on fan-in"
        ]
    );
    assert_eq!(
        counts(),
        [1, 2, 1],
        "only the member that had not answered was asked again"
    );
    second
        .system
        .shutdown(Duration::from_secs(5))
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_durable_member_without_a_journal_fails_typed() {
    let system = System::builder().build().unwrap();
    let handled = Arc::new(AtomicU32::new(0));
    let h = Arc::clone(&handled);
    let spec = AgentSpec::new("researcher-1", move || Researcher {
        hang: false,
        handled: Arc::clone(&h),
    });
    system
        .start(SupervisorSpec::one_for_one("root").child(system.agent(spec).unwrap()))
        .await
        .unwrap();
    let researcher = system.agent_ref::<Researcher>("researcher-1").unwrap();
    let outcome = Cohort::all()
        .member_run(&researcher, RunId::new("job/1").unwrap(), "x".into())
        .run_within(Duration::from_secs(5))
        .await
        .unwrap();
    assert!(
        matches!(
            &outcome.members[0].result,
            MemberResult::Failed(AskError::NoJournal { .. })
        ),
        "{:?}",
        outcome.members[0].result
    );
    assert_eq!(handled.load(Ordering::SeqCst), 0);
    system.shutdown(Duration::from_secs(5)).await.unwrap();
}
