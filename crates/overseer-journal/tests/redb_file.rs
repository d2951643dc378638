//! The journal in a redb file (the `redb` feature): reopened, locked, damaged, full, unwritable.
#![cfg(feature = "redb")]

mod common;

use std::path::Path;

use common::{run, started, step_done};

use overseer_journal::{
    Durability, Epoch, Journal, JournalConfig, JournalError, RedbStorage, StorageError,
};

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
    common::a_closed_journal_answers_closed(open_file).await;
}

#[tokio::test]
async fn a_full_disk_fails_the_append_and_keeps_what_was_acknowledged() {
    common::a_full_disk_keeps_what_was_acknowledged(open_file, false).await;
}
