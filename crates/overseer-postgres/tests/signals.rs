//! A signal from another process, against a real server: process A's worker holds a run that
//! waits for a signal (its ask ended, the run stays held under a long lease); process B, with a
//! journal and store of its own, signals it. A sees the signal at its next look at the queue,
//! without waiting for a claim, and resumes and finishes the run itself.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use overseer_agent::{Agent, AgentContext, AgentError, AgentSpec, System};
use overseer_journal::{Effect, Journal, JournalConfig, RunId};
use overseer_postgres::{
    PgStorage, PgStorageOptions, PgStore, RunQueue, RunStatus, Worker, WorkerOptions, WorkerReport,
};
use overseer_supervisor::SupervisorSpec;

/// Doubles its input in a step, then waits for the signal "approve" and adds its length.
struct Approval;

impl Agent for Approval {
    type Task = u32;
    type Output = u64;

    async fn handle(&mut self, ctx: &mut AgentContext, n: u32) -> Result<u64, AgentError> {
        let doubled: u64 = ctx
            .step(
                "double",
                Effect::Pure,
                |_| async move { Ok(u64::from(n) * 2) },
            )
            .await?;
        let approval: String = ctx.wait_for("approve")?;
        Ok(doubled + approval.len() as u64)
    }
}

/// A process: a journal on the shared database under `owner`, a system with the agent.
async fn process(url: &str, owner: &str) -> (RunQueue, Journal, System) {
    let options = PgStorageOptions::default()
        .owner(owner)
        // Far longer than the test: only the holder can finish the run.
        .lease(Duration::from_secs(120));
    let storage = PgStorage::open(url, options).unwrap();
    let queue = storage.queue();
    let (journal, _) = Journal::open(storage, JournalConfig::default()).unwrap();
    let system = System::builder()
        .ask_timeout(Duration::from_secs(30))
        .journal(journal.clone())
        .build()
        .unwrap();
    let root = SupervisorSpec::one_for_one("root").child(
        system
            .agent(AgentSpec::new("approval", || Approval))
            .unwrap(),
    );
    system.start(root).await.unwrap();
    (queue, journal, system)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_from_another_process_is_seen_by_the_holder_which_resumes_the_run() {
    let Some((_server, url, store)) = common::store().await else {
        return;
    };
    let run: RunId = common::start_runs(&url, "approval", 1).await.remove(0);

    let (a_queue, a_journal, a_system) = process(&url, "a").await;
    let a_agent = a_system.agent_ref::<Approval>("approval").unwrap();
    let outcomes: Arc<Mutex<Vec<Result<u64, String>>>> = Arc::default();
    let worker = Worker::start(
        a_journal,
        a_queue,
        WorkerOptions::default().idle_poll(Duration::from_millis(50)),
        {
            let outcomes = Arc::clone(&outcomes);
            move |run, input| {
                let (agent, outcomes) = (a_agent.clone(), Arc::clone(&outcomes));
                async move {
                    let task: u32 = input.decode().map_err(|e| e.to_string())?;
                    let outcome = agent.ask_run(run, task).await.map_err(|e| e.to_string());
                    outcomes.lock().unwrap().push(outcome.clone());
                    outcome.map(|_| ())
                }
            }
        },
    );
    // A takes the run, which stops at its wait: the ask ends, the run stays A's.
    common::eventually(
        Duration::from_secs(20),
        "A's run waits for its signal",
        || {
            let outcomes = Arc::clone(&outcomes);
            async move { !outcomes.lock().unwrap().is_empty() }
        },
    )
    .await;
    let head = store.head(&run).await.unwrap().unwrap();
    assert_eq!(
        (head.status, head.owner.as_deref()),
        (RunStatus::Running, Some("a"))
    );

    // B signals it: recorded; B cannot take the run (A holds it).
    let (_b_storage, b_journal, b_system) = process(&url, "b").await;
    let b_agent = b_system.agent_ref::<Approval>("approval").unwrap();
    let signalled_at = tokio::time::Instant::now();
    let answer = b_agent.signal(run.clone(), "approve", &"yes").await;
    assert!(answer.is_err(), "B's ask is refused as held: {answer:?}");

    // A resumes and finishes it, well before its lease could run out.
    common::eventually(
        Duration::from_secs(20),
        "A finishes the signalled run",
        || {
            let (store, run) = (&store, &run);
            async move {
                store
                    .head(run)
                    .await
                    .ok()
                    .flatten()
                    .is_some_and(|head| head.status == RunStatus::Finished)
            }
        },
    )
    .await;
    assert!(signalled_at.elapsed() < Duration::from_secs(20));
    let last = outcomes.lock().unwrap().last().cloned();
    assert_eq!(
        last,
        Some(Ok(3)),
        "input 0 doubled, plus the length of \"yes\""
    );
    let report: WorkerReport = worker.stop(Duration::from_secs(1)).await;
    assert_eq!(report.resumed, 1, "{report:?}");
    assert_eq!(report.succeeded, 1, "{report:?}");
    let _ = a_system.shutdown(Duration::from_secs(5)).await;
    let _ = b_system.shutdown(Duration::from_secs(5)).await;
    let _ = b_journal.close().await;
    let _: &PgStore = &store;
}
