//! What the tests share: a throwaway server with a fresh database.

#![allow(dead_code, unreachable_pub)]

use overseer_postgres::testing::PgServer;
use overseer_postgres::{PgOptions, PgStore};

/// A server and the URL of a fresh database on it; `None` when the test is skipped
/// (PostgreSQL not installed, `CI` not set).
pub async fn database() -> Option<(PgServer, String)> {
    let server = PgServer::start_or_skip().await?;
    let url = server
        .create_database("overseer_test")
        .await
        .expect("a database");
    Some((server, url))
}

/// A migrated store on a fresh database, and the server it lives on.
pub async fn store() -> Option<(PgServer, String, PgStore)> {
    let (server, url) = database().await?;
    let store = PgStore::open(&url, PgOptions::default())
        .await
        .expect("a migrated store");
    Some((server, url, store))
}

/// A plain connection to `url`, its connection driven by a task.
pub async fn raw(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("a raw connection");
    tokio::spawn(connection);
    client
}

/// Starts `runs` runs (`run-0`..) of `agent` in the database, with inputs 0.., for workers to
/// take.
pub async fn start_runs(url: &str, agent: &str, runs: u32) -> Vec<overseer_journal::RunId> {
    use overseer_journal::{Durability, Entry, Journal, JournalConfig, Payload, RunId};
    use overseer_postgres::{PgStorage, PgStorageOptions};
    let storage = PgStorage::open(url, PgStorageOptions::default().owner("producer")).unwrap();
    let (journal, _) = Journal::open(storage, JournalConfig::default()).unwrap();
    let mut ids = Vec::new();
    for n in 0..runs {
        let run = RunId::new(format!("run-{n}")).unwrap();
        let input = Payload::encode(&n).unwrap();
        journal
            .append(
                vec![Entry::RunStarted {
                    run: run.clone(),
                    agent: agent.into(),
                    fingerprint: input.fingerprint(),
                    input,
                    started_at_ms: 1_000,
                }],
                Durability::Sync,
            )
            .await
            .unwrap();
        ids.push(run);
    }
    journal.close().await.unwrap();
    ids
}

/// Polls `check` (every 50 ms) until it holds, failing with `what` after `within`.
pub async fn eventually<F, Fut>(within: std::time::Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within {within:?}: {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
