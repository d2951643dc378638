//! The journal on a disk that fails: full (a small tmpfs), or read-only.
//!
//! Apart from `tests/file.rs` on purpose: these tests spawn `mount` and `umount`, and a child
//! process holds a copy of every open file of the test process from its fork to its exec,
//! file locks included. A test reopening a journal in that moment on another thread of the same
//! process would find the file locked (`StorageError::Locked`): a lock is held while any copy
//! of its file's descriptor is open.

use overseer_journal::{
    Durability, Entry, Journal, JournalConfig, JournalError, LogStorage, Opened, Payload, RunId,
    StorageError,
};

fn run(id: &str) -> RunId {
    RunId::new(id).unwrap()
}

fn started(id: &str, size: usize) -> Entry {
    let input = Payload::encode(&"x".repeat(size)).unwrap();
    Entry::RunStarted {
        run: run(id),
        agent: "root/a".into(),
        fingerprint: input.fingerprint(),
        input,
        started_at_ms: 0,
    }
}

fn open_file(path: &std::path::Path) -> Result<(Journal, Opened), JournalError> {
    Journal::open(LogStorage::open(path)?, JournalConfig::default())
}

#[cfg(unix)]
#[test]
fn an_unwritable_directory_is_an_io_error() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o555)).unwrap();
    let path = dir.path().join("runs.journal");
    let opened = LogStorage::open(&path);
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    if opened.is_ok() {
        // Root writes anywhere: a read-only file system instead, where mounting is allowed.
        drop(opened);
        let Some(disk) = SmallDisk::mount("size=64k,ro") else {
            eprintln!("SKIPPED: an_unwritable_directory: root, and no tmpfs can be mounted");
            return;
        };
        let opened = LogStorage::open(disk.dir.path().join("runs.journal"));
        assert!(matches!(opened, Err(StorageError::Io { .. })), "{opened:?}");
        return;
    }
    assert!(matches!(opened, Err(StorageError::Io { .. })), "{opened:?}");
}

/// A small tmpfs mounted for one test, unmounted when dropped; `None` where mounting is not
/// allowed (not root).
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(options: &str) -> Option<Self> {
        let dir = tempfile::tempdir().ok()?;
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        mounted.then_some(Self { dir })
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.dir.path())
            .status();
    }
}

#[tokio::test]
async fn a_full_disk_fails_the_append_and_keeps_what_was_acknowledged() {
    let Some(disk) = SmallDisk::mount("size=1m") else {
        eprintln!("SKIPPED: a_full_disk_fails_the_append: cannot mount a tmpfs (needs root)");
        return;
    };
    let path = disk.dir.path().join("runs.journal");
    let (journal, _) = open_file(&path).unwrap();
    let mut acknowledged = Vec::new();
    let error = loop {
        let id = format!("r{}", acknowledged.len());
        assert!(acknowledged.len() < 10_000, "a 1 MiB disk never filled");
        match journal
            .append(vec![started(&id, 4096)], Durability::Sync)
            .await
        {
            Ok(_) => acknowledged.push(id),
            Err(error) => break error,
        }
    };
    assert!(
        matches!(&error, JournalError::Storage(storage) if matches!(**storage, StorageError::Io { .. })),
        "a full disk is an I/O error: {error}"
    );
    assert!(acknowledged.len() > 100, "{} appends", acknowledged.len());
    assert!(matches!(
        journal
            .append(vec![started("late", 1)], Durability::Sync)
            .await,
        Err(JournalError::Failed)
    ));
    assert!(matches!(journal.close().await, Err(JournalError::Failed)));

    // Copied off the full disk, the file holds every acknowledged run.
    let copy_dir = tempfile::tempdir().unwrap();
    let copy = copy_dir.path().join("runs.journal");
    std::fs::copy(&path, &copy).unwrap();
    let (reopened, opened) = open_file(&copy).unwrap();
    assert_eq!(opened.runs, acknowledged.len());
    for id in &acknowledged {
        assert!(
            reopened.with_run(&run(id), |r| r.is_some()),
            "{id} was lost"
        );
    }
    reopened.close().await.unwrap();
}
