//! Several worker processes on loopback sharing one database: each runs a `System` with a
//! durable agent over the journal on PostgreSQL and takes runs from the queue. One killed
//! (SIGKILL) mid-run: its runs are finished by the others once its lease runs out. One paused
//! (SIGSTOP) past its lease, then resumed: fenced, its late writes refused. One stopped
//! politely: its runs handed back at once.
//!
//! The workers are this test binary run again (`worker_process`, ignored unless asked for),
//! configured by environment variables. The effects go to tables of the same database: the
//! "external system" whose counts show what happened once.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::Duration;

use overseer_agent::{Agent, AgentContext, AgentError, AgentSpec, Reconciled, System};
use overseer_journal::{Effect, Entry, Journal, JournalConfig, Recorded, RunId};
use overseer_postgres::{
    PgOptions, PgStorage, PgStorageOptions, PgStore, RunStatus, WorkerOptions,
};
use overseer_supervisor::SupervisorSpec;
use tokio::time::Instant;

/// Keyed steps per run, with the unsafe one after the third.
const STEPS: u32 = 6;

/// The effects' tables: every call of a keyed effect, the keys it applied (the external
/// system's own deduplication), and every unsafe call (no deduplication: a double is seen).
const EXTERNAL: &str =
    "CREATE TABLE IF NOT EXISTS ext_calls (key text NOT NULL, owner text NOT NULL);
CREATE TABLE IF NOT EXISTS ext_applied (key text PRIMARY KEY);
CREATE TABLE IF NOT EXISTS ext_unsafe (key text NOT NULL, owner text NOT NULL);";

/// The output a run of `n` gives, crash or no crash.
fn expected(n: u32) -> u64 {
    (0..STEPS)
        .map(|i| u64::from(n) * 10 + u64::from(i))
        .sum::<u64>()
        + 1
}

struct Pipeline {
    external: Arc<tokio_postgres::Client>,
    owner: String,
    step_time: Duration,
}

impl Agent for Pipeline {
    type Task = u32;
    type Output = u64;

    async fn handle(&mut self, ctx: &mut AgentContext, n: u32) -> Result<u64, AgentError> {
        let mut total = 0;
        for i in 0..STEPS {
            let (external, owner, pause) = (
                Arc::clone(&self.external),
                self.owner.clone(),
                self.step_time,
            );
            let value: u64 = ctx
                .step(&format!("work-{i}"), Effect::Keyed, |key| async move {
                    tokio::time::sleep(pause).await;
                    let key = key.to_string();
                    external
                        .execute(
                            "INSERT INTO ext_calls (key, owner) VALUES ($1, $2)",
                            &[&key, &owner],
                        )
                        .await
                        .map_err(|e| AgentError::Failed(e.to_string()))?;
                    external
                        .execute(
                            "INSERT INTO ext_applied (key) VALUES ($1) ON CONFLICT DO NOTHING",
                            &[&key],
                        )
                        .await
                        .map_err(|e| AgentError::Failed(e.to_string()))?;
                    Ok(u64::from(n) * 10 + u64::from(i))
                })
                .await?;
            total += value;
            if i == 2 {
                let (sender, checker, owner) = (
                    Arc::clone(&self.external),
                    Arc::clone(&self.external),
                    self.owner.clone(),
                );
                let notified: bool = ctx
                    .step_reconciled(
                        "notify",
                        Effect::Unsafe,
                        |key| async move {
                            sender
                                .execute(
                                    "INSERT INTO ext_unsafe (key, owner) VALUES ($1, $2)",
                                    &[&key.to_string(), &owner],
                                )
                                .await
                                .map_err(|e| AgentError::Failed(e.to_string()))?;
                            Ok(true)
                        },
                        |key| async move {
                            let seen = checker
                                .query_one(
                                    "SELECT count(*) FROM ext_unsafe WHERE key = $1",
                                    &[&key.to_string()],
                                )
                                .await
                                .map(|row| row.get::<_, i64>(0));
                            match seen {
                                Ok(0) => Reconciled::DidNotHappen,
                                Ok(_) => Reconciled::Happened(true),
                                Err(_) => Reconciled::Unknown,
                            }
                        },
                    )
                    .await?;
                total += u64::from(notified);
            }
        }
        Ok(total)
    }
}

/// The worker: runs until its deadline, or until its stop file appears (then politely: the
/// system shut down, the journal closed, its runs handed back).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a worker process, started by the tests of this file"]
async fn worker_process() {
    let env = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is set"));
    let url = env("W_URL");
    let owner = env("W_OWNER");
    let lease = Duration::from_millis(env("W_LEASE_MS").parse().unwrap());
    let slots: usize = env("W_SLOTS").parse().unwrap();
    let step_time = Duration::from_millis(env("W_STEP_MS").parse().unwrap());
    let stop = PathBuf::from(env("W_STOP"));
    let deadline = Instant::now() + Duration::from_secs(120);

    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let external = Arc::new(client);
    let options = PgStorageOptions::default()
        .owner(&owner)
        .lease(lease)
        .pg(PgOptions::default()
            .lock_timeout(Duration::from_secs(1))
            .idle_in_transaction_timeout(Duration::from_secs(2)));
    let storage = PgStorage::open(&url, options).unwrap();
    let queue = storage.queue();
    let (journal, _) = Journal::open(storage, JournalConfig::default()).unwrap();
    let system = System::builder()
        .ask_timeout(Duration::from_secs(60))
        .journal(journal.clone())
        .build()
        .unwrap();
    let spec = SupervisorSpec::one_for_one("root").child(
        system
            .agent(AgentSpec::new("pipeline", {
                let (external, owner) = (Arc::clone(&external), owner.clone());
                move || Pipeline {
                    external: Arc::clone(&external),
                    owner: owner.clone(),
                    step_time,
                }
            }))
            .unwrap(),
    );
    system.start(spec).await.unwrap();
    let agent = system.agent_ref::<Pipeline>("pipeline").unwrap();
    // The library's worker loop: takes runs from the queue within `slots`, hands them back on
    // the polite stop.
    let worker = overseer_postgres::Worker::start(
        journal,
        queue,
        WorkerOptions::default()
            .slots(slots)
            .idle_poll(Duration::from_millis(50)),
        move |run, input| {
            let agent = agent.clone();
            async move {
                let task: u32 = input.decode().map_err(|e| e.to_string())?;
                match agent.ask_run(run.clone(), task).await {
                    Ok(output) => {
                        println!("done {run} {output}");
                        Ok(())
                    }
                    Err(error) => {
                        println!("failed {run} {error}");
                        Err(error.to_string())
                    }
                }
            }
        },
    );
    while Instant::now() < deadline && !stop.exists() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let report = worker.stop(Duration::ZERO).await;
    println!("max_inflight {}", report.most_at_once);
    let _ = system.shutdown(Duration::from_secs(5)).await;
    println!("stopped");
}

/// A worker process and where it writes.
struct WorkerProcess {
    owner: String,
    child: Child,
    log: PathBuf,
    stop: PathBuf,
}

impl WorkerProcess {
    fn start(
        dir: &Path,
        url: &str,
        owner: &str,
        lease_ms: u64,
        slots: usize,
        step_ms: u64,
    ) -> WorkerProcess {
        let log = dir.join(format!("{owner}.log"));
        let stop = dir.join(format!("{owner}.stop"));
        let child = Command::new(std::env::current_exe().unwrap())
            .args([
                "worker_process",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("W_URL", url)
            .env("W_OWNER", owner)
            .env("W_LEASE_MS", lease_ms.to_string())
            .env("W_SLOTS", slots.to_string())
            .env("W_STEP_MS", step_ms.to_string())
            .env("W_STOP", &stop)
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(dir.join(format!("{owner}.err"))).unwrap())
            .spawn()
            .unwrap();
        WorkerProcess {
            owner: owner.to_string(),
            child,
            log,
            stop,
        }
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {signal} {}", self.owner);
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Asks it to stop politely and waits (bounded) for it to exit.
    async fn stop(mut self) -> String {
        std::fs::write(&self.stop, b"stop").unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if self.child.try_wait().unwrap().is_some() {
                return self.output();
            }
            assert!(Instant::now() < deadline, "{} did not stop", self.owner);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Whether `owner` holds a run with at least `records` records, and which.
async fn holding(store: &PgStore, runs: &[RunId], owner: &str, records: usize) -> Option<RunId> {
    for run in runs {
        let head = store.head(run).await.ok().flatten()?;
        if head.status == RunStatus::Running
            && head.owner.as_deref() == Some(owner)
            && store.load(run).await.map_or(0, |r| r.len()) >= records
        {
            return Some(run.clone());
        }
    }
    None
}

async fn all_finished(store: &PgStore, runs: &[RunId]) -> bool {
    for run in runs {
        match store.head(run).await {
            Ok(Some(head)) if head.status == RunStatus::Finished => {}
            _ => return false,
        }
    }
    true
}

/// Each run's outcome equals a crash-free run's; each step completed once in its journal (no
/// step run again after its result, nothing re-billed); each keyed effect applied once and each
/// unsafe effect happened exactly once.
async fn check_runs(store: &PgStore, external: &tokio_postgres::Client, runs: &[RunId]) {
    for (n, run) in runs.iter().enumerate() {
        let entries: Vec<Entry> = store
            .load(run)
            .await
            .unwrap()
            .iter()
            .map(|record| serde_json::from_slice(record).unwrap())
            .collect();
        let outcome = entries.iter().find_map(|entry| match entry {
            Entry::RunFinished { outcome, .. } => Some(outcome.clone()),
            _ => None,
        });
        let Some(Recorded::Value(value)) = outcome else {
            panic!("{run} did not finish with a value: {outcome:?}");
        };
        assert_eq!(
            value.decode::<u64>().unwrap(),
            expected(n as u32),
            "{run}'s output"
        );
        let mut completed = std::collections::HashMap::new();
        for entry in &entries {
            if let Entry::StepCompleted { step, .. } = entry {
                *completed.entry(step.clone()).or_insert(0) += 1;
            }
        }
        assert_eq!(completed.len(), STEPS as usize + 1, "{run}'s steps");
        assert!(completed.values().all(|&n| n == 1), "{run}: {completed:?}");
    }
    let count = |sql: &'static str| async move {
        external.query_one(sql, &[]).await.unwrap().get::<_, i64>(0)
    };
    let runs = runs.len() as i64;
    assert_eq!(
        count("SELECT count(*) FROM ext_applied").await,
        runs * i64::from(STEPS)
    );
    assert_eq!(
        count("SELECT count(*) FROM ext_unsafe").await,
        runs,
        "each unsafe effect once"
    );
    assert_eq!(
        count(
            "SELECT count(*) FROM (SELECT key FROM ext_unsafe GROUP BY key HAVING count(*) > 1) d"
        )
        .await,
        0
    );
}

async fn setup() -> Option<(
    overseer_postgres::testing::PgServer,
    String,
    PgStore,
    tokio_postgres::Client,
    tempfile::TempDir,
)> {
    let (server, url) = common::database().await?;
    let store = PgStore::open(&url, PgOptions::default()).await.unwrap();
    let external = common::raw(&url).await;
    external.batch_execute(EXTERNAL).await.unwrap();
    Some((server, url, store, external, tempfile::tempdir().unwrap()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_workers_runs_are_finished_by_the_others_each_effect_once() {
    let Some((_server, url, store, external, dir)) = setup().await else {
        return;
    };
    let runs = common::start_runs(&url, "pipeline", 8).await;
    let lease_ms = 1_500;
    let victim = WorkerProcess::start(dir.path(), &url, "w1", lease_ms, 2, 120);
    let others = [
        WorkerProcess::start(dir.path(), &url, "w2", lease_ms, 2, 120),
        WorkerProcess::start(dir.path(), &url, "w3", lease_ms, 2, 120),
    ];
    let deadline = Instant::now() + Duration::from_secs(30);
    let held = loop {
        if let Some(run) = holding(&store, &runs, "w1", 6).await {
            break run;
        }
        assert!(Instant::now() < deadline, "w1 never held a run mid-way");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let killed_at = Instant::now();
    victim.signal("-KILL");
    common::eventually(Duration::from_secs(60), "every run finished", || {
        all_finished(&store, &runs)
    })
    .await;
    let head = store.head(&held).await.unwrap().unwrap();
    assert_ne!(
        head.owner.as_deref(),
        Some("w1"),
        "{held} was finished by another"
    );
    assert!(head.epoch.unwrap().0 >= 2);
    check_runs(&store, &external, &runs).await;
    println!("all runs finished {:?} after the kill", killed_at.elapsed());
    for worker in others {
        let output = worker.stop().await;
        let most: usize = output
            .lines()
            .find_map(|line| line.strip_prefix("max_inflight ")?.parse().ok())
            .unwrap_or_else(|| panic!("no max_inflight in {output}"));
        assert!(most <= 2, "the per-process limit of 2 held: {most}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_paused_past_its_lease_is_fenced_when_it_resumes() {
    let Some((_server, url, store, external, dir)) = setup().await else {
        return;
    };
    let runs = common::start_runs(&url, "pipeline", 1).await;
    let run = runs[0].clone();
    let lease_ms = 1_000;
    let paused = WorkerProcess::start(dir.path(), &url, "w1", lease_ms, 1, 300);
    common::eventually(Duration::from_secs(30), "w1 holds the run mid-way", || {
        let (store, runs) = (&store, &runs);
        async move { holding(store, runs, "w1", 5).await.is_some() }
    })
    .await;
    paused.signal("-STOP");
    let before = store.head(&run).await.unwrap().unwrap().epoch.unwrap();
    let other = WorkerProcess::start(dir.path(), &url, "w2", lease_ms, 1, 300);
    common::eventually(Duration::from_secs(30), "w2 takes the run over", || {
        let store = &store;
        let run = &run;
        async move {
            store
                .head(run)
                .await
                .ok()
                .flatten()
                .is_some_and(|head| head.owner.as_deref() == Some("w2"))
        }
    })
    .await;
    paused.signal("-CONT");
    common::eventually(Duration::from_secs(60), "the run finished", || {
        all_finished(&store, &runs)
    })
    .await;
    // Nothing of w1's epoch after w2's claim: its late writes were refused.
    let entries: Vec<Entry> = store
        .load(&run)
        .await
        .unwrap()
        .iter()
        .map(|record| serde_json::from_slice(record).unwrap())
        .collect();
    let taken_over = entries
        .iter()
        .position(|entry| matches!(entry, Entry::RunClaimed { epoch, .. } if *epoch > before))
        .expect("a claim after w1's");
    assert!(
        entries[taken_over..]
            .iter()
            .all(|entry| entry.writer_epoch().is_none_or(|epoch| epoch > before)),
        "a write of the paused worker after the takeover: {entries:?}"
    );
    check_runs(&store, &external, &runs).await;
    common::eventually(Duration::from_secs(30), "w1 learned it was fenced", || {
        let output = paused.output();
        let wanted = format!("failed {run}");
        async move { output.contains(&wanted) }
    })
    .await;
    let _ = other.stop().await;
    let output = paused.stop().await;
    assert!(!output.contains("done run-0"), "{output}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_stopped_politely_hands_its_runs_back_at_once() {
    let Some((_server, url, store, external, dir)) = setup().await else {
        return;
    };
    let runs = common::start_runs(&url, "pipeline", 2).await;
    // A lease far longer than the test: only a hand-back lets another take the runs.
    let lease_ms = 120_000;
    let polite = WorkerProcess::start(dir.path(), &url, "w1", lease_ms, 2, 200);
    common::eventually(Duration::from_secs(30), "w1 holds a run mid-way", || {
        let (store, runs) = (&store, &runs);
        async move { holding(store, runs, "w1", 4).await.is_some() }
    })
    .await;
    let _ = polite.stop().await;
    for run in &runs {
        let head = store.head(run).await.unwrap().unwrap();
        assert!(
            head.status != RunStatus::Running,
            "{run} was handed back: {head:?}"
        );
    }
    let started = Instant::now();
    let other = WorkerProcess::start(dir.path(), &url, "w2", lease_ms, 2, 200);
    common::eventually(Duration::from_secs(30), "w2 finished the runs", || {
        all_finished(&store, &runs)
    })
    .await;
    assert!(started.elapsed() < Duration::from_secs(30));
    check_runs(&store, &external, &runs).await;
    let _ = other.stop().await;
}
