//! Durable steps per second through the journal: each step one `StepCompleted` append, waited
//! for durably (`Durability::Sync`), with 1, 4 and 16 runs at once, over the journal on
//! PostgreSQL (`PgStorage`) and over the embedded journal file (`LogStorage`).
//!
//! ```sh
//! cargo run --release -p overseer-postgres --example steps -- postgres://overseer@127.0.0.1:54329/overseer
//! ```

use std::time::{Duration, Instant};

use overseer_journal::{
    Durability, Effect, Entry, Epoch, Journal, JournalConfig, LogStorage, Payload, Recorded, RunId,
    Spent, StepId, Storage,
};
use overseer_postgres::{PgStorage, PgStorageOptions};

const STEPS_PER_RUN: u32 = 200;

async fn one_run(
    journal: Journal,
    run: RunId,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let input = Payload::encode(&run.as_str())?;
    journal
        .append(
            vec![Entry::RunStarted {
                run: run.clone(),
                agent: "bench".into(),
                fingerprint: input.fingerprint(),
                input,
                started_at_ms: 0,
            }],
            Durability::Sync,
        )
        .await?;
    let epoch: Epoch = journal.claim(&run).await?;
    for i in 0..STEPS_PER_RUN {
        journal
            .append(
                vec![Entry::StepCompleted {
                    run: run.clone(),
                    epoch,
                    step: StepId::new("bench", 0, i),
                    name: "step".into(),
                    effect: Effect::Idempotent,
                    outcome: Recorded::Value(Payload::encode(&i)?),
                    spent: Spent::NONE,
                }],
                Durability::Sync,
            )
            .await?;
    }
    Ok(())
}

async fn measure(
    storage: impl Storage,
    label: &str,
    runs: usize,
    round: usize,
) -> Result<f64, Box<dyn std::error::Error + Send + Sync>> {
    let (journal, _) = Journal::open(storage, JournalConfig::default())?;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for r in 0..runs {
        let run = RunId::new(format!("bench-{label}-{round}-{runs}-{r}"))?;
        tasks.push(tokio::spawn(one_run(journal.clone(), run)));
    }
    for task in tasks {
        task.await??;
    }
    let elapsed = started.elapsed();
    journal.close().await?;
    Ok((runs as f64 * f64::from(STEPS_PER_RUN)) / elapsed.as_secs_f64())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let url = std::env::args().nth(1).ok_or("usage: steps POSTGRES_URL")?;
    let dir = tempfile::tempdir()?;
    for runs in [1usize, 4, 16] {
        let pg = PgStorage::open(
            &url,
            PgStorageOptions::default()
                .owner("bench")
                .lease(Duration::from_secs(60)),
        )?;
        let pg_rate = measure(pg, "pg", runs, 0).await?;
        let log = LogStorage::open(dir.path().join(format!("journal-{runs}")))?;
        let log_rate = measure(log, "log", runs, 0).await?;
        println!(
            "{runs:>2} runs: postgres {pg_rate:>8.0} steps/s, embedded log {log_rate:>8.0} steps/s"
        );
    }
    Ok(())
}
