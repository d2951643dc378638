//! A throwaway PostgreSQL server for tests (the `test-server` feature): a cluster initialised
//! in a temporary directory, listening on `127.0.0.1` only at a free port, with `fsync` on,
//! stopped (`pg_ctl stop -m fast`) and removed when dropped. No mock: the real server.
//!
//! The binaries are looked for in `OVERSEER_PG_BIN`, on `PATH`, then in
//! `/usr/lib/postgresql/*/bin` (Debian's layout, newest first). PostgreSQL does not run as
//! root: when the tests do, the server runs as the `postgres` user.
//!
//! ```no_run
//! # async fn example() {
//! use overseer_postgres::testing::PgServer;
//!
//! // Skips (prints why) when PostgreSQL is not installed; fails instead when `CI` is set.
//! let Some(server) = PgServer::start_or_skip().await else { return };
//! let url = server.create_database("my_test").await.expect("a database");
//! # let _ = url;
//! # }
//! ```

use std::fs::File;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use overseer_journal::{
    CrashPlan, MemStorage, RunBatch, RunId, SharedClaim, Storage, StorageError, Stored,
};
use tokio_postgres::NoTls;

/// The superuser of a test cluster.
pub const SUPERUSER: &str = "overseer";

/// How long a started server has to accept connections.
const READY_WITHIN: Duration = Duration::from_secs(60);

/// Why a test server could not be had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestServerError {
    /// No `initdb` and `postgres` binaries were found.
    #[error("PostgreSQL not installed (no initdb/postgres in $OVERSEER_PG_BIN, $PATH or /usr/lib/postgresql/*/bin)")]
    NotInstalled,
    /// Running as root, but there is no `postgres` user to run the server as.
    #[error("running as root and there is no `postgres` user to run PostgreSQL as")]
    NoPostgresUser,
    /// A file or process operation failed.
    #[error("test server: {operation}: {source}")]
    Io {
        /// What was being done.
        operation: &'static str,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// `initdb` failed.
    #[error("initdb failed ({status}): {output}")]
    Initdb {
        /// Its exit status.
        status: std::process::ExitStatus,
        /// What it printed.
        output: String,
    },
    /// The server exited, or did not accept connections in time.
    #[error("the PostgreSQL test server did not come up: {reason}; its log:\n{log}")]
    NotReady {
        /// What happened.
        reason: String,
        /// The end of the server's log.
        log: String,
    },
    /// A statement on the test server failed.
    #[error("test server: {0}")]
    Sql(#[from] tokio_postgres::Error),
}

fn io(operation: &'static str) -> impl FnOnce(std::io::Error) -> TestServerError {
    move |source| TestServerError::Io { operation, source }
}

/// A running throwaway server. Dropping it stops the server and removes its files.
#[derive(Debug)]
pub struct PgServer {
    // Field order: the server is stopped (Drop) before the directory is removed.
    child: Option<Child>,
    bin: PathBuf,
    data: PathBuf,
    user: Option<(u32, u32)>,
    port: u16,
    dir: tempfile::TempDir,
}

/// The directory holding `initdb`, `postgres` and `pg_ctl`, if PostgreSQL is installed.
pub fn find_binaries() -> Option<PathBuf> {
    let has = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    if let Some(dir) = std::env::var_os("OVERSEER_PG_BIN").map(PathBuf::from) {
        return has(&dir).then_some(dir);
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if has(&dir) {
                return Some(dir);
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, dir)| has(dir))
        .collect();
    versions.sort();
    versions.pop().map(|(_, dir)| dir)
}

/// The `postgres` user's uid and gid, from `/etc/passwd`.
fn postgres_user() -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.len() > 3 && fields[0] == "postgres")
            .then(|| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))
            .flatten()
    })
}

impl PgServer {
    /// Like [`start`](Self::start), for a test: `None` (with `skipped: PostgreSQL not
    /// installed (...)` printed) when the binaries are missing and the `CI` environment
    /// variable is not set, so that a developer without PostgreSQL can still run the rest.
    ///
    /// # Panics
    ///
    /// When the server cannot be started: always when `CI` is set (a test that needs the server
    /// fails, never skips, in CI), otherwise for any reason but missing binaries.
    pub async fn start_or_skip() -> Option<PgServer> {
        match PgServer::start().await {
            Ok(server) => Some(server),
            Err(TestServerError::NotInstalled)
                if std::env::var_os("CI").is_none_or(|v| v.is_empty()) =>
            {
                println!("skipped: PostgreSQL not installed (set OVERSEER_PG_BIN, or install the postgresql package)");
                None
            }
            Err(error) => panic!("the PostgreSQL test server: {error}"),
        }
    }

    /// Initialises a cluster in a new temporary directory and starts a server on it,
    /// listening on `127.0.0.1` at a free port, `fsync` on, no Unix socket; returns once it
    /// accepts connections (polled, within 60 s).
    ///
    /// # Errors
    ///
    /// [`NotInstalled`](TestServerError::NotInstalled) when the binaries are missing; the
    /// others when initdb or the server fail.
    pub async fn start() -> Result<PgServer, TestServerError> {
        let bin = find_binaries().ok_or(TestServerError::NotInstalled)?;
        let root = std::fs::metadata("/proc/self")
            .map(|m| m.uid() == 0)
            .unwrap_or(false);
        let user = if root {
            Some(postgres_user().ok_or(TestServerError::NoPostgresUser)?)
        } else {
            None
        };
        let dir = tempfile::Builder::new()
            .prefix("overseer-pg-")
            .tempdir()
            .map_err(io("creating the cluster's directory"))?;
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .map_err(io("giving the cluster's directory to the postgres user"))?;
        }
        let data = dir.path().join("data");
        let mut initdb = Command::new(bin.join("initdb"));
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--no-locale"])
            .arg("--no-sync");
        as_user(&mut initdb, user, dir.path());
        let out = initdb.output().map_err(io("running initdb"))?;
        if !out.status.success() {
            return Err(TestServerError::Initdb {
                status: out.status,
                output: format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ),
            });
        }
        let mut server = PgServer {
            child: None,
            bin,
            data,
            user,
            port: 0,
            dir,
        };
        // The free port is released before postgres binds it: another process may take it in
        // between, and then postgres exits; a few attempts, each on a new port.
        let mut attempt = 1;
        loop {
            server.spawn()?;
            match server.wait_ready().await {
                Err(TestServerError::NotReady { .. }) if server.child.is_none() && attempt < 3 => {
                    attempt += 1;
                }
                ready => return ready.map(|()| server),
            }
        }
    }

    /// Starts postgres on the cluster, at a free port.
    fn spawn(&mut self) -> Result<(), TestServerError> {
        let port = free_port().map_err(io("finding a free port"))?;
        let log = File::create(self.log_path()).map_err(io("creating the server's log"))?;
        let log_err = log.try_clone().map_err(io("creating the server's log"))?;
        let mut postgres = Command::new(self.bin.join("postgres"));
        postgres
            .arg("-D")
            .arg(&self.data)
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args(["-c", &format!("port={port}")])
            .args(["-c", "unix_socket_directories="])
            .args(["-c", "fsync=on"])
            .args(["-c", "max_connections=64"])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        as_user(&mut postgres, self.user, self.dir.path());
        self.child = Some(postgres.spawn().map_err(io("starting postgres"))?);
        self.port = port;
        Ok(())
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// Polls until the server accepts a connection, within [`READY_WITHIN`].
    async fn wait_ready(&mut self) -> Result<(), TestServerError> {
        let log = self.log_path();
        let tail = || {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let start = text.len().saturating_sub(4000);
            text.get(start..).unwrap_or("").to_owned()
        };
        let deadline = tokio::time::Instant::now() + READY_WITHIN;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Err(TestServerError::NotReady {
                        reason: format!("postgres exited ({status})"),
                        log: tail(),
                    });
                }
            }
            match tokio_postgres::connect(&self.url_of("postgres"), NoTls).await {
                Ok((client, connection)) => {
                    drop(client);
                    let _ = connection.await;
                    return Ok(());
                }
                Err(error) if tokio::time::Instant::now() >= deadline => {
                    return Err(TestServerError::NotReady {
                        reason: format!("no connection within {READY_WITHIN:?}: {error}"),
                        log: tail(),
                    });
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// The port it listens on (on `127.0.0.1`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The connection URL of database `name` on this server.
    pub fn url_of(&self, name: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{name}", self.port)
    }

    /// Creates an empty database `name` (letters, digits and `_`) and returns its URL.
    ///
    /// # Errors
    ///
    /// When it cannot be created (it exists, a bad name).
    pub async fn create_database(&self, name: &str) -> Result<String, TestServerError> {
        let (client, connection) = tokio_postgres::connect(&self.url_of("postgres"), NoTls).await?;
        let connection = tokio::spawn(connection);
        client
            .batch_execute(&format!("CREATE DATABASE \"{}\"", name.replace('"', "")))
            .await?;
        drop(client);
        let _ = connection.await;
        Ok(self.url_of(name))
    }

    /// Stops the server now (`pg_ctl stop -m fast`), as dropping it does.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let mut pg_ctl = Command::new(self.bin.join("pg_ctl"));
        pg_ctl
            .arg("-D")
            .arg(&self.data)
            .args(["stop", "-m", "fast", "-w", "-s"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        as_user(&mut pg_ctl, self.user, self.dir.path());
        let stopped = pg_ctl.status().map(|s| s.success()).unwrap_or(false);
        if !stopped {
            let _ = child.kill();
        }
        let _ = child.wait();
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Runs `command` as `user` (when the tests run as root), in `dir`.
fn as_user(command: &mut Command, user: Option<(u32, u32)>, dir: &Path) {
    command.current_dir(dir).env("LC_ALL", "C");
    if let Some((uid, gid)) = user {
        command.uid(uid).gid(gid);
    }
}

/// A port free on 127.0.0.1 now (the kernel's pick; released before the server binds it).
fn free_port() -> std::io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

/// The environment variable that puts the durable-run tests on PostgreSQL: a URL
/// (`postgres://overseer@127.0.0.1:54329/overseer`, from `scripts/postgres-dev.sh`) for an empty
/// database per [`TestStorage::new`] on that server (the cheap way: a database a test is done
/// with is emptied and taken by the next, and those left when the process exits are dropped by
/// the next test process), or `1` for a throwaway server per `TestStorage::new`. Unset:
/// [`TestStorage`] is a [`MemStorage`].
pub const TEST_PG_ENV: &str = "OVERSEER_TEST_PG";

/// Whether [`TEST_PG_ENV`] puts the tests on PostgreSQL (set, and neither empty nor `0`).
pub fn on_postgres() -> bool {
    std::env::var(TEST_PG_ENV).is_ok_and(|value| !value.is_empty() && value != "0")
}

/// A journal storage for tests that is a [`MemStorage`], or — with [`TEST_PG_ENV`] set — a
/// [`PgStorage`](crate::PgStorage) on a fresh database, with `MemStorage`'s test API
/// ([`crash`](Self::crash), [`reopen`](Self::reopen), [`len`](Self::len)), so that one durable-run
/// test runs over either. A reopened PostgreSQL storage is the same process restarted (the
/// same owner name): it takes its own runs back at once.
#[derive(Debug, Clone)]
pub enum TestStorage {
    /// In memory.
    Mem(MemStorage),
    /// On PostgreSQL.
    Pg(Box<PgTestDatabase>),
}

/// A test database and how a [`TestStorage`] opens it.
#[derive(Debug)]
pub struct PgTestDatabase {
    url: String,
    /// The URL of the server's `postgres` database, where databases are created.
    admin_url: String,
    name: String,
    crash: Option<CrashPlan>,
    // Dropped in this order: the storage's sessions, the database, the server.
    storage: Option<crate::PgStorage>,
    /// Drops the database once the last handle of it is gone.
    guard: std::sync::Arc<DropDatabase>,
    server: Option<std::sync::Arc<PgServer>>,
}

/// Drops a test database when dropped (its sessions ended first), so that the copies a test
/// makes do not fill the disk.
#[derive(Debug)]
struct DropDatabase {
    admin_url: String,
    name: String,
    /// A storage of its own that reads the database for the test ([`TestStorage::len`],
    /// [`TestStorage::records`]), opened once, on first use: opening one per read (a runtime, a
    /// connection, the migration check) was most of what a test on PostgreSQL spent.
    reader: std::sync::OnceLock<crate::PgStorage>,
    /// On a server the tests share (a URL in [`TEST_PG_ENV`]): emptied and kept for the next
    /// [`TestStorage::new`] of this process instead of dropped (a `CREATE DATABASE` and a
    /// `DROP DATABASE` each wait for the disk; emptying a few small tables barely does).
    spare: bool,
}

/// This process's emptied databases on shared servers, by the server's admin URL: taken by the
/// next [`TestStorage::new`]. What is left at exit is dropped by the next process that creates
/// one ([`drop_stale`]).
static SPARE: std::sync::Mutex<Vec<(String, String)>> = std::sync::Mutex::new(Vec::new());

/// Whether the stale databases of dead test processes were dropped already.
static STALE_DROPPED: std::sync::Once = std::sync::Once::new();

fn spare_of(admin_url: &str) -> Option<String> {
    let mut spare = SPARE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let at = spare.iter().position(|(admin, _)| admin == admin_url)?;
    Some(spare.swap_remove(at).1)
}

impl DropDatabase {
    fn new(admin_url: String, name: String, spare: bool) -> Self {
        Self {
            admin_url,
            name,
            reader: std::sync::OnceLock::new(),
            spare,
        }
    }

    /// Ends the database's other sessions and empties its tables (the schema stays).
    async fn empty(&self) -> Result<(), String> {
        let url = url_with_database(&self.admin_url, &self.name);
        let (client, connection) = tokio_postgres::connect(&url, NoTls)
            .await
            .map_err(|e| e.to_string())?;
        let connection = tokio::spawn(connection);
        let emptied = async {
            client
                .execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE datname = current_database() AND pid <> pg_backend_pid()",
                    &[],
                )
                .await?;
            let tables: Vec<String> = client
                .query(
                    "SELECT format('%I', tablename) FROM pg_tables WHERE schemaname = 'public' \
                     AND tablename <> 'overseer_schema'",
                    &[],
                )
                .await?
                .iter()
                .map(|row| row.get(0))
                .collect();
            if !tables.is_empty() {
                client
                    .batch_execute(&format!(
                        "TRUNCATE {} RESTART IDENTITY CASCADE",
                        tables.join(", ")
                    ))
                    .await?;
            }
            Ok::<(), tokio_postgres::Error>(())
        }
        .await
        .map_err(|e| e.to_string());
        drop(client);
        let _ = connection.await;
        emptied
    }
}

impl Drop for DropDatabase {
    fn drop(&mut self) {
        // The reader's sessions end first.
        drop(self.reader.take());
        if self.spare {
            let emptied = std::thread::scope(|scope| {
                scope
                    .spawn(|| {
                        tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()
                            .map_err(|e| e.to_string())
                            .and_then(|runtime| runtime.block_on(self.empty()))
                    })
                    .join()
            });
            match emptied {
                Ok(Ok(())) => {
                    SPARE
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push((self.admin_url.clone(), self.name.clone()));
                    return;
                }
                Ok(Err(error)) => {
                    tracing::warn!(database = %self.name, %error, "test storage: the database could not be emptied; dropped");
                }
                Err(_) => {}
            }
        }
        let (admin, name) = (self.admin_url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async move {
                let (client, connection) = tokio_postgres::connect(&admin, NoTls)
                    .await
                    .map_err(|e| e.to_string())?;
                let connection = tokio::spawn(connection);
                let dropped = client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .await
                    .map_err(|e| e.to_string());
                drop(client);
                let _ = connection.await;
                dropped
            })
        })
        .join();
        if let Ok(Err(error)) = dropped {
            tracing::warn!(database = %self.name, %error, "test storage: the database was not dropped");
        }
    }
}

impl Clone for PgTestDatabase {
    /// The same database and crash plan; the clone opens a connection of its own.
    fn clone(&self) -> Self {
        Self {
            url: self.url.clone(),
            admin_url: self.admin_url.clone(),
            name: self.name.clone(),
            server: self.server.clone(),
            crash: self.crash,
            storage: None,
            guard: std::sync::Arc::clone(&self.guard),
        }
    }
}

/// The owner name of a test process: a reopened storage is the same process, restarted.
const TEST_OWNER: &str = "test-process";

impl Default for TestStorage {
    fn default() -> Self {
        Self::new()
    }
}

impl TestStorage {
    /// An empty storage: on PostgreSQL when [`TEST_PG_ENV`] is set (a fresh database), in memory
    /// otherwise. Blocks while a server starts or a database is created.
    ///
    /// # Panics
    ///
    /// When [`TEST_PG_ENV`] is set and no database can be had: a test run asked for PostgreSQL
    /// must not pass without it.
    #[allow(clippy::panic)]
    pub fn new() -> Self {
        match std::env::var(TEST_PG_ENV) {
            Ok(value) if !value.is_empty() && value != "0" => {
                match PgTestDatabase::create(&value) {
                    Ok(database) => Self::Pg(Box::new(database)),
                    Err(error) => panic!("{TEST_PG_ENV}={value}: no test database: {error}"),
                }
            }
            _ => Self::Mem(MemStorage::new()),
        }
    }

    /// Whether it is on PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        matches!(self, Self::Pg(_))
    }

    /// The same storage, crashing as `plan` says ([`MemStorage::crash`], [`PgStorage::crash`](crate::PgStorage::crash)).
    pub fn crash(self, plan: CrashPlan) -> Self {
        match self {
            Self::Mem(storage) => Self::Mem(storage.crash(plan)),
            Self::Pg(mut database) => {
                database.crash = Some(plan);
                database.storage = None;
                Self::Pg(database)
            }
        }
    }

    /// What the next process finds, without crash plan ([`MemStorage::reopen`]): on
    /// PostgreSQL, a copy of the database as it is now (`CREATE DATABASE ... TEMPLATE`, after
    /// ending the sessions of the earlier process, which has "died"), so that, as with
    /// `MemStorage`, each reopen starts from the same records and the earlier storage writes
    /// to its own copy. A test of several processes on one database opens
    /// [`PgStorage`](crate::PgStorage)s on one [`url`](Self::url) instead.
    ///
    /// # Panics
    ///
    /// When the copy cannot be made: a test asked for PostgreSQL must not pass without it.
    #[allow(clippy::panic)]
    pub fn reopen(&self) -> Self {
        match self {
            Self::Mem(storage) => Self::Mem(storage.reopen()),
            Self::Pg(database) => match database.copy() {
                Ok(copy) => Self::Pg(Box::new(copy)),
                Err(error) => panic!("copying test database {}: {error}", database.name),
            },
        }
    }

    /// What the next process finds once the earlier one is gone (shut down, its storage
    /// dropped): [`reopen`](Self::reopen) in memory; on PostgreSQL the same database, without a
    /// copy (a process that has died writes nothing more, so there is nothing to keep apart) and
    /// without crash plan. Much cheaper than `reopen` on PostgreSQL, where a copy is a `CREATE
    /// DATABASE`; use `reopen` when the earlier process's storage is still in use.
    pub fn restart(&self) -> Self {
        match self {
            Self::Mem(storage) => Self::Mem(storage.reopen()),
            Self::Pg(database) => {
                let mut next = database.as_ref().clone();
                next.crash = None;
                Self::Pg(Box::new(next))
            }
        }
    }

    /// How many records it holds (on PostgreSQL: journal records and dead letters; 0 when the
    /// database cannot be read, with an event).
    pub fn len(&self) -> usize {
        match self {
            Self::Mem(storage) => storage.len(),
            Self::Pg(database) => database.count(),
        }
    }

    /// Whether it holds no record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every record it holds, in the order written (on PostgreSQL, by the transactions that
    /// wrote them: [`PgStore::all_records`](crate::PgStore::all_records)); empty when they
    /// cannot be read, with an event.
    pub fn records(&self) -> Vec<Vec<u8>> {
        let read = match self {
            Self::Mem(storage) => storage
                .reopen()
                .load()
                .map(|stored| stored.records)
                .map_err(|e| e.to_string()),
            Self::Pg(database) => database.all_records(),
        };
        read.unwrap_or_else(|error| {
            tracing::error!(%error, "test storage: the records could not be read");
            Vec::new()
        })
    }

    /// How many durable commits it has made ([`MemStorage::syncs`]); on PostgreSQL, where every
    /// commit is durable, the records it holds.
    pub fn syncs(&self) -> u64 {
        match self {
            Self::Mem(storage) => storage.syncs(),
            Self::Pg(database) => database.count() as u64,
        }
    }

    /// The database's URL, on PostgreSQL.
    pub fn url(&self) -> Option<&str> {
        match self {
            Self::Mem(_) => None,
            Self::Pg(database) => Some(&database.url),
        }
    }
}

impl PgTestDatabase {
    fn create(setting: &str) -> Result<Self, String> {
        let name = next_name();
        let setting = setting.to_string();
        // Its own thread and runtime: callable from a test's async context or not.
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async move {
                if setting.starts_with("postgres://") || setting.contains("host=") {
                    let name = match spare_of(&setting) {
                        Some(spare) => spare,
                        None => {
                            let (client, connection) = tokio_postgres::connect(&setting, NoTls)
                                .await
                                .map_err(|e| e.to_string())?;
                            let connection = tokio::spawn(connection);
                            if !STALE_DROPPED.is_completed() {
                                drop_stale(&client).await;
                                STALE_DROPPED.call_once(|| ());
                            }
                            client
                                .batch_execute(&format!("CREATE DATABASE \"{name}\""))
                                .await
                                .map_err(|e| e.to_string())?;
                            drop(client);
                            let _ = connection.await;
                            name
                        }
                    };
                    let url = url_with_database(&setting, &name);
                    Ok(Self {
                        url,
                        guard: std::sync::Arc::new(DropDatabase::new(
                            setting.clone(),
                            name.clone(),
                            true,
                        )),
                        admin_url: setting.clone(),
                        name,
                        server: None,
                        crash: None,
                        storage: None,
                    })
                } else {
                    let server = PgServer::start().await.map_err(|e| e.to_string())?;
                    let url = server
                        .create_database(&name)
                        .await
                        .map_err(|e| e.to_string())?;
                    Ok(Self {
                        url,
                        guard: std::sync::Arc::new(DropDatabase::new(
                            server.url_of("postgres"),
                            name.clone(),
                            false,
                        )),
                        admin_url: server.url_of("postgres"),
                        name,
                        server: Some(std::sync::Arc::new(server)),
                        crash: None,
                        storage: None,
                    })
                }
            })
        })
        .join()
        .map_err(|_| "the thread creating the database panicked".to_string())?
    }

    /// A copy of the database as it is now, under a new name.
    fn copy(&self) -> Result<Self, String> {
        let name = next_name();
        let (admin, source, target) = (self.admin_url.clone(), self.name.clone(), name.clone());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async move {
                let (client, connection) = tokio_postgres::connect(&admin, NoTls)
                    .await
                    .map_err(|e| e.to_string())?;
                let connection = tokio::spawn(connection);
                let mut last = String::new();
                // The earlier process's pool may reconnect in between: a bounded few tries.
                for _ in 0..50 {
                    client
                        .execute(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity                              WHERE datname = $1 AND pid <> pg_backend_pid()",
                            &[&source],
                        )
                        .await
                        .map_err(|e| e.to_string())?;
                    match client
                        .batch_execute(&format!(
                            "CREATE DATABASE \"{target}\" TEMPLATE \"{source}\""
                        ))
                        .await
                    {
                        Ok(()) => {
                            last.clear();
                            break;
                        }
                        Err(error) => {
                            last = error.to_string();
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                }
                drop(client);
                let _ = connection.await;
                if last.is_empty() {
                    Ok(())
                } else {
                    Err(last)
                }
            })
        })
        .join()
        .map_err(|_| "the thread copying the database panicked".to_string())??;
        Ok(Self {
            url: url_with_database(&self.url, &name),
            guard: std::sync::Arc::new(DropDatabase::new(
                self.admin_url.clone(),
                name.clone(),
                self.server.is_none(),
            )),
            admin_url: self.admin_url.clone(),
            name,
            server: self.server.clone(),
            crash: None,
            storage: None,
        })
    }

    /// The database's reader (opened on first use, shared by every handle of the database).
    fn reader(&self) -> Result<&crate::PgStorage, crate::PgJournalError> {
        if let Some(reader) = self.guard.reader.get() {
            return Ok(reader);
        }
        let opened = crate::PgStorage::open(
            &self.url,
            crate::PgStorageOptions::default().owner("test-reader"),
        )?;
        Ok(self.guard.reader.get_or_init(|| opened))
    }

    fn all_records(&self) -> Result<Vec<Vec<u8>>, String> {
        self.reader()
            .and_then(crate::PgStorage::all_records)
            .map_err(|e| e.to_string())
    }

    fn count(&self) -> usize {
        let counted = match &self.storage {
            Some(storage) => storage.len(),
            None => self.reader().and_then(crate::PgStorage::len),
        };
        match counted {
            Ok(count) => usize::try_from(count).unwrap_or(usize::MAX),
            Err(error) => {
                tracing::error!(%error, "test storage: the records could not be counted");
                0
            }
        }
    }

    fn options(&self) -> crate::PgStorageOptions {
        crate::PgStorageOptions::default().owner(TEST_OWNER)
    }

    fn storage(&mut self) -> Result<&mut crate::PgStorage, StorageError> {
        if self.storage.is_none() {
            let mut storage =
                crate::PgStorage::open(&self.url, self.options()).map_err(|error| {
                    StorageError::Engine {
                        operation: "open the test database",
                        message: error.to_string(),
                    }
                })?;
            if let Some(plan) = self.crash {
                storage = storage.crash(plan);
            }
            self.storage = Some(storage);
        }
        self.storage.as_mut().ok_or(StorageError::Engine {
            operation: "open the test database",
            message: "not opened".into(),
        })
    }
}

/// Drops the test databases on the server of `client` left by test processes that have exited
/// (their spares, named `overseer_t<pid>_...`, whose process is gone from `/proc`).
async fn drop_stale(client: &tokio_postgres::Client) {
    let Ok(rows) = client
        .query(
            "SELECT datname FROM pg_database WHERE datname LIKE 'overseer\\_t%'",
            &[],
        )
        .await
    else {
        return;
    };
    for row in rows {
        let name: String = row.get(0);
        let pid = name
            .strip_prefix("overseer_t")
            .and_then(|rest| rest.split('_').next())
            .and_then(|pid| pid.parse::<u32>().ok());
        let Some(pid) = pid else { continue };
        if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        if let Err(error) = client
            .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .await
        {
            tracing::warn!(database = %name, %error, "test storage: a stale database was not dropped");
        }
    }
}

/// A database name no other test of this run has.
fn next_name() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "overseer_t{}_{}_{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

/// `url` with its database (the path after the host) replaced by `name`.
fn url_with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let after_scheme = base.find("://").map_or(0, |at| at + 3);
    let base = match base[after_scheme..].find('/') {
        Some(slash) => &base[..after_scheme + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

impl Storage for TestStorage {
    fn load(&mut self) -> Result<Stored, StorageError> {
        match self {
            Self::Mem(s) => s.load(),
            Self::Pg(d) => d.storage()?.load(),
        }
    }

    fn initialize(&mut self, format_version: u32) -> Result<(), StorageError> {
        match self {
            Self::Mem(s) => s.initialize(format_version),
            Self::Pg(d) => d.storage()?.initialize(format_version),
        }
    }

    fn append(&mut self, records: &[Vec<u8>], sync: bool) -> Result<(), StorageError> {
        match self {
            Self::Mem(s) => s.append(records, sync),
            Self::Pg(d) => d.storage()?.append(records, sync),
        }
    }

    fn truncate(&mut self, keep: u64) -> Result<(), StorageError> {
        match self {
            Self::Mem(s) => s.truncate(keep),
            Self::Pg(d) => d.storage()?.truncate(keep),
        }
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        match self {
            Self::Mem(s) => s.sync(),
            Self::Pg(d) => d.storage()?.sync(),
        }
    }

    fn blocks(&self) -> bool {
        match self {
            Self::Mem(s) => s.blocks(),
            Self::Pg(_) => true,
        }
    }

    fn shared(&self) -> bool {
        matches!(self, Self::Pg(_))
    }

    fn claim_run(&mut self, run: &RunId) -> Result<SharedClaim, StorageError> {
        match self {
            Self::Mem(s) => s.claim_run(run),
            Self::Pg(d) => d.storage()?.claim_run(run),
        }
    }

    fn append_runs(&mut self, batches: &[RunBatch]) -> Vec<Result<(), StorageError>> {
        match self {
            Self::Mem(s) => s.append_runs(batches),
            Self::Pg(d) => match d.storage() {
                Ok(storage) => storage.append_runs(batches),
                Err(error) => batches
                    .iter()
                    .map(|_| {
                        Err(StorageError::Engine {
                            operation: "append a run's batch",
                            message: error.to_string(),
                        })
                    })
                    .collect(),
            },
        }
    }

    fn load_run(&mut self, run: &RunId) -> Result<Option<Vec<Vec<u8>>>, StorageError> {
        match self {
            Self::Mem(s) => s.load_run(run),
            Self::Pg(d) => d.storage()?.load_run(run),
        }
    }

    fn release(&mut self) -> Result<(), StorageError> {
        match self {
            Self::Mem(s) => s.release(),
            Self::Pg(d) => d.storage()?.release(),
        }
    }
}
