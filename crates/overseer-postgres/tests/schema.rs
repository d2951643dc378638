//! The tables, migrated by the library, against a real server: a fresh database migrates,
//! twice is a no-op, concurrent migrations are safe, a newer schema is a typed error, and a
//! bad address is a typed error that does not hang.

mod common;

use std::time::Duration;

use overseer_postgres::testing::PgServer;
use overseer_postgres::{PgJournalError, PgOptions, PgStore, SCHEMA_VERSION};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_test_server_starts_on_loopback_and_stops_on_drop() {
    let Some(server) = PgServer::start_or_skip().await else {
        return;
    };
    let port = server.port();
    let url = server.url_of("postgres");
    let client = common::raw(&url).await;
    let fsync: String = client.query_one("SHOW fsync", &[]).await.unwrap().get(0);
    assert_eq!(fsync, "on");
    let listen: String = client
        .query_one("SHOW listen_addresses", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(listen, "127.0.0.1");
    drop(client);
    server.stop();
    let refused = PgStore::connect(&url, PgOptions::default()).await;
    assert!(
        matches!(refused, Err(PgJournalError::Connect { .. })),
        "port {port} after stop: {refused:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_database_migrates_and_migrating_again_is_a_no_op() {
    let Some((_server, url)) = common::database().await else {
        return;
    };
    let store = PgStore::connect(&url, PgOptions::default()).await.unwrap();
    assert_eq!(store.schema_version().await.unwrap(), 0);
    let first = store.migrate().await.unwrap();
    assert_eq!((first.from, first.to), (0, SCHEMA_VERSION));
    assert!(first.applied());
    let second = store.migrate().await.unwrap();
    assert_eq!((second.from, second.to), (SCHEMA_VERSION, SCHEMA_VERSION));
    assert!(!second.applied());
    assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
    let client = common::raw(&url).await;
    let tables: i64 = client
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_name IN \
             ('overseer_runs', 'overseer_journal', 'overseer_dead_letters', \
              'overseer_budget', 'overseer_budget_reservations')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(tables, 5);
    let versions: i64 = client
        .query_one("SELECT count(*) FROM overseer_schema", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(versions, i64::from(SCHEMA_VERSION));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_migrations_apply_the_schema_once() {
    let Some((_server, url)) = common::database().await else {
        return;
    };
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let store = PgStore::connect(&url, PgOptions::default().pool_size(1)).await?;
            store.migrate().await
        }));
    }
    let mut applied = 0;
    for task in tasks {
        let migrated = task.await.unwrap().expect("every migration succeeds");
        assert_eq!(migrated.to, SCHEMA_VERSION);
        applied += usize::from(migrated.applied());
    }
    assert_eq!(
        applied, 1,
        "exactly one of the concurrent migrations applied the schema"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_at_a_newer_schema_version_is_a_typed_error_and_is_left_alone() {
    let Some((_server, url)) = common::database().await else {
        return;
    };
    let store = PgStore::open(&url, PgOptions::default()).await.unwrap();
    let newer = SCHEMA_VERSION + 1;
    common::raw(&url)
        .await
        .execute(
            "INSERT INTO overseer_schema (version, name) VALUES ($1, 'from the future')",
            &[&newer],
        )
        .await
        .unwrap();
    let error = store.migrate().await.unwrap_err();
    assert!(
        matches!(error, PgJournalError::SchemaTooNew { found, supported } if found == newer && supported == SCHEMA_VERSION),
        "{error:?}"
    );
    let error = PgStore::open(&url, PgOptions::default()).await.unwrap_err();
    assert!(
        matches!(error, PgJournalError::SchemaTooNew { .. }),
        "{error:?}"
    );
    assert_eq!(store.schema_version().await.unwrap(), newer);
}

#[tokio::test]
async fn a_refused_connection_is_a_typed_error_within_the_connect_timeout() {
    // A port nothing listens on: bound, then closed.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("postgres://overseer@127.0.0.1:{port}/nothing");
    let options = PgOptions::default().connect_timeout(Duration::from_secs(2));
    let result = tokio::time::timeout(Duration::from_secs(20), PgStore::connect(&url, options))
        .await
        .expect("a refused connection does not hang");
    assert!(
        matches!(result, Err(PgJournalError::Connect { .. })),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_silent_server_is_a_connect_timeout_not_a_hang() {
    // Accepts TCP connections (the kernel's backlog) and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let url = format!("postgres://overseer@127.0.0.1:{port}/nothing");
    let options = PgOptions::default().connect_timeout(Duration::from_millis(300));
    let result = tokio::time::timeout(Duration::from_secs(20), PgStore::connect(&url, options))
        .await
        .expect("a silent server does not hang the caller");
    assert!(
        matches!(
            result,
            Err(PgJournalError::ConnectTimeout { .. } | PgJournalError::Connect { .. })
        ),
        "{result:?}"
    );
    drop(listener);
}

#[tokio::test]
async fn a_malformed_url_is_a_typed_error() {
    let result = PgStore::connect("postgres://[::1", PgOptions::default()).await;
    assert!(
        matches!(result, Err(PgJournalError::InvalidUrl { .. })),
        "{result:?}"
    );
    let result = PgStore::connect("host=127.0.0.1 port=notaport", PgOptions::default()).await;
    assert!(
        matches!(result, Err(PgJournalError::InvalidUrl { .. })),
        "{result:?}"
    );
}
