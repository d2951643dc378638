//! What the file tests share: entries to write, a small disk, and the full-disk check that
//! every file storage must pass.
#![allow(dead_code, unreachable_pub)]

use std::path::Path;

use overseer_journal::{
    Durability, Effect, Entry, Epoch, Journal, JournalError, Opened, Payload, Recorded, RunId,
    Spent, StepId, StorageError,
};

pub fn run(id: &str) -> RunId {
    RunId::new(id).unwrap()
}

/// A run's start with an input of `size` bytes.
pub fn started(id: &str, size: usize) -> Entry {
    let input = Payload::encode(&"x".repeat(size)).unwrap();
    Entry::RunStarted {
        run: run(id),
        agent: "root/a".into(),
        fingerprint: input.fingerprint(),
        input,
        started_at_ms: 0,
    }
}

pub fn step_done(id: &str, epoch: Epoch, ordinal: u32) -> Entry {
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

/// A small tmpfs mounted for one test, unmounted when dropped; `None` where mounting is not
/// allowed (not root).
pub struct SmallDisk {
    pub dir: tempfile::TempDir,
}

impl SmallDisk {
    /// Mounted with these tmpfs options (`size=1m`, `size=64k,ro`).
    pub fn mount(options: &str) -> Option<Self> {
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

/// Fills a 1 MiB disk through a journal opened by `open`: the append that does not fit fails
/// with a storage error, the journal refuses everything after, and the file, copied off the
/// disk, holds every acknowledged run. `strict`: the error is `StorageError::Io` and the file
/// holds exactly the acknowledged runs (a storage that writes nothing of a failed commit).
pub async fn a_full_disk_keeps_what_was_acknowledged(
    open: fn(&Path) -> Result<(Journal, Opened), JournalError>,
    strict: bool,
) {
    let Some(disk) = SmallDisk::mount("size=1m") else {
        eprintln!("SKIPPED: a_full_disk_fails_the_append: cannot mount a tmpfs (needs root)");
        return;
    };
    let path = disk.dir.path().join("runs.journal");
    let (journal, _) = open(&path).unwrap();
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
    let io = matches!(&error, JournalError::Storage(storage) if matches!(**storage, StorageError::Io { .. }));
    assert!(
        matches!(error, JournalError::Storage(_)) && (io || !strict),
        "a full disk is a storage error (an I/O error, strictly): {error}"
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
    let (reopened, opened) = open(&copy).unwrap();
    if strict {
        assert_eq!(opened.runs, acknowledged.len());
    } else {
        assert!(opened.runs >= acknowledged.len());
    }
    for id in &acknowledged {
        assert!(
            reopened.with_run(&run(id), |r| r.is_some()),
            "{id} was lost"
        );
    }
    reopened.close().await.unwrap();
}

/// A journal closed through one handle answers `Closed` on every handle, and its file is
/// released: it opens again at once.
pub async fn a_closed_journal_answers_closed(
    open: fn(&Path) -> Result<(Journal, Opened), JournalError>,
) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("runs.journal");
    let (journal, _) = open(&path).unwrap();
    let other_handle = journal.clone();
    journal.close().await.unwrap();
    assert!(matches!(
        other_handle
            .append(vec![started("r1", 1)], Durability::Sync)
            .await,
        Err(JournalError::Closed)
    ));
    assert!(matches!(journal.close().await, Err(JournalError::Closed)));
    let (again, opened) = open(&path).unwrap();
    assert_eq!(opened.records, 0);
    again.close().await.unwrap();
}
