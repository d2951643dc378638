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
