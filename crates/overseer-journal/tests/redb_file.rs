//! The journal in a redb file (the `redb` feature): reopened, locked, damaged, full, unwritable.
#![cfg(feature = "redb")]

use std::path::Path;

use overseer_journal::{
    Durability, Effect, Entry, Epoch, Journal, JournalConfig, JournalError, Payload, Recorded,
    RedbStorage, RunId, Spent, StepId, StorageError,
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

fn step_done(id: &str, epoch: Epoch, ordinal: u32) -> Entry {
    Entry::StepCompleted {
        run: run(id),
        epoch,
        step: StepId::new("root/a", 0, ordinal),
        name: "model".into(),
        effect: Effect::Idempotent,
        outcome: Recorded::Value(Payload::encode(&ordinal).unwrap()),
        spent: Spent::NONE,
    }
}

fn open_file(path: &Path) -> Result<(Journal, overseer_journal::Opened), JournalError> {
    Journal::open(RedbStorage::open(path)?, JournalConfig::default())
}

#[tokio::test]
async fn a_journal_file_is_reopened_with_its_runs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("runs.journal");
    {
        let (journal, opened) = open_file(&path).unwrap();
        assert_eq!(opened.records, 0);
        journal
            .append(vec![started("r1", 10)], Durability::Sync)
            .await
            .unwrap();
        let epoch = journal.claim(&run("r1")).await.unwrap();
        for ordinal in 0..5 {
            journal
                .append(vec![step_done("r1", epoch, ordinal)], Durability::Sync)
                .await
                .unwrap();
        }
        journal.close().await.unwrap();
    }
    let (journal, opened) = open_file(&path).unwrap();
    assert_eq!(opened.records, 7);
    assert_eq!(opened.unfinished, vec![run("r1")]);
    assert_eq!(journal.claim(&run("r1")).await.unwrap(), Epoch(2));
}

#[tokio::test]
async fn a_journal_file_has_one_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("runs.journal");
    let _first = open_file(&path).unwrap();
    let second = RedbStorage::open(&path);
    assert!(matches!(second, Err(StorageError::Locked)), "{second:?}");
}

#[test]
fn a_missing_directory_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no/such/dir/runs.journal");
    assert!(matches!(
        RedbStorage::open(&path),
        Err(StorageError::Io { .. })
    ));
}

#[test]
fn a_file_that_is_not_a_journal_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(
        &path,
        "these are not the runs you are looking for\n".repeat(100),
    )
    .unwrap();
    let opened = RedbStorage::open(&path);
    assert!(opened.is_err(), "a text file opened as a journal");
}

#[tokio::test]
async fn a_truncated_file_opens_to_a_prefix_or_fails_typed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("runs.journal");
    {
        let (journal, _) = open_file(&path).unwrap();
        journal
            .append(vec![started("r1", 100)], Durability::Sync)
            .await
            .unwrap();
        let epoch = journal.claim(&run("r1")).await.unwrap();
        for ordinal in 0..20 {
            journal
                .append(vec![step_done("r1", epoch, ordinal)], Durability::Sync)
                .await
                .unwrap();
        }
        journal.close().await.unwrap();
    }
    let whole = std::fs::read(&path).unwrap();
    for keep in [whole.len() / 2, whole.len() - 1, 4096, 100, 0] {
        let cut = dir.path().join(format!("cut-{keep}.journal"));
        std::fs::write(&cut, &whole[..keep]).unwrap();
        // Never a panic: a prefix of the runs, or a typed error.
        match open_file(&cut) {
            Ok((journal, opened)) => {
                assert!(opened.records <= 22);
                journal.close().await.unwrap();
            }
            Err(JournalError::Storage(_) | JournalError::Corrupt { .. }) => {}
            Err(other) => panic!("unexpected error for a file cut at {keep}: {other}"),
        }
    }
}

#[tokio::test]
async fn a_closed_journal_answers_closed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("runs.journal");
    let (journal, _) = open_file(&path).unwrap();
    let other_handle = journal.clone();
    journal.close().await.unwrap();
    assert!(matches!(
        other_handle
            .append(vec![started("r1", 1)], Durability::Sync)
            .await,
        Err(JournalError::Closed)
    ));
    assert!(matches!(journal.close().await, Err(JournalError::Closed)));
    // Released: the file opens again at once.
    let (again, opened) = open_file(&path).unwrap();
    assert_eq!(opened.records, 0);
    again.close().await.unwrap();
}

/// A small tmpfs mounted for one test, unmounted when dropped; `None` where mounting is not
/// allowed (not root).
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().ok()?;
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
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
    let Some(disk) = SmallDisk::mount("1m") else {
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
        matches!(error, JournalError::Storage(_)),
        "a full disk is a storage error: {error}"
    );
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
    assert!(opened.runs >= acknowledged.len());
    for id in &acknowledged {
        assert!(
            reopened.with_run(&run(id), |r| r.is_some()),
            "{id} was lost"
        );
    }
    reopened.close().await.unwrap();
}
