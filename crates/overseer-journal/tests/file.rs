//! The journal in a real file (`LogStorage`, the append-only log): reopened, locked, cut,
//! damaged, from a future version. A full disk and an unwritable directory are in
//! `tests/disk.rs`.

mod common;

use std::path::Path;

use common::{run, started, step_done};

use overseer_journal::{
    Durability, Epoch, Journal, JournalConfig, JournalError, LogStorage, Opened, Storage,
    StorageError, FORMAT_VERSION,
};
use proptest::prelude::*;

/// The header's length, and a frame's length and checksum before its payload.
const HEADER: usize = 20;
const FRAME_HEADER: usize = 8;

fn open_file(path: &Path) -> Result<(Journal, Opened), JournalError> {
    Journal::open(LogStorage::open(path)?, JournalConfig::default())
}

/// Writes a journal of one run (its start, its claim, `steps` steps) at `path`; returns where
/// each record's frame starts, then where the last ends.
async fn write_run(path: &Path, steps: u32) -> Vec<usize> {
    let (journal, _) = open_file(path).unwrap();
    journal
        .append(vec![started("r1", 100)], Durability::Sync)
        .await
        .unwrap();
    let epoch = journal.claim(&run("r1")).await.unwrap();
    for ordinal in 0..steps {
        journal
            .append(vec![step_done("r1", epoch, ordinal)], Durability::Sync)
            .await
            .unwrap();
    }
    journal.close().await.unwrap();
    boundaries(path)
}

/// Where each record's frame starts in the file at `path`, then where the last ends.
fn boundaries(path: &Path) -> Vec<usize> {
    let records = LogStorage::open(path).unwrap().load().unwrap().records;
    let mut at = HEADER;
    let mut boundaries = vec![at];
    for record in records {
        at += FRAME_HEADER + record.len();
        boundaries.push(at);
    }
    boundaries
}

#[tokio::test]
async fn a_journal_file_is_reopened_with_its_runs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("runs.journal");
    let boundaries = write_run(&path, 5).await;
    assert_eq!(
        std::fs::metadata(&path).unwrap().len() as usize,
        *boundaries.last().unwrap(),
        "the file is its header and its frames, nothing more"
    );
    let (journal, opened) = open_file(&path).unwrap();
    assert_eq!(opened.records, 7);
    assert!(!opened.dropped_torn_record);
    assert_eq!(opened.unfinished, vec![run("r1")]);
    assert_eq!(journal.claim(&run("r1")).await.unwrap(), Epoch(2));
    journal.close().await.unwrap();
    assert_eq!(open_file(&path).unwrap().1.records, 8);
}

#[tokio::test]
async fn a_journal_file_has_one_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("runs.journal");
    let (journal, _) = open_file(&path).unwrap();
    let second = LogStorage::open(&path);
    assert!(matches!(second, Err(StorageError::Locked)), "{second:?}");
    journal.close().await.unwrap();
    assert!(LogStorage::open(&path).is_ok(), "released by close");
}

#[test]
fn a_missing_directory_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no/such/dir/runs.journal");
    let opened = LogStorage::open(&path);
    assert!(matches!(opened, Err(StorageError::Io { .. })), "{opened:?}");
    // A parent that is a file, not a directory.
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let opened = LogStorage::open(file.join("runs.journal"));
    assert!(matches!(opened, Err(StorageError::Io { .. })), "{opened:?}");
}

#[test]
fn a_file_that_is_not_a_journal_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    let text = "these are not the runs you are looking for\n".repeat(100);
    std::fs::write(&path, &text).unwrap();
    let opened = LogStorage::open(&path);
    assert!(
        matches!(opened, Err(StorageError::Corrupted(_))),
        "{opened:?}"
    );
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        text,
        "left as it was"
    );
}

#[tokio::test]
async fn a_journal_of_a_future_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.journal");
    {
        let mut file = LogStorage::open(&path).unwrap();
        file.initialize(FORMAT_VERSION + 1).unwrap();
        file.append(&[b"{}".to_vec()], true).unwrap();
    }
    assert!(matches!(
        open_file(&path),
        Err(JournalError::UnsupportedVersion { found, supported })
            if found == FORMAT_VERSION + 1 && supported == FORMAT_VERSION
    ));
}

#[tokio::test]
async fn a_file_of_a_future_layout_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("runs.journal");
    write_run(&path, 2).await;
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[8] = 2; // the layout's version, after the magic bytes
    std::fs::write(&path, &bytes).unwrap();
    let opened = LogStorage::open(&path);
    assert!(
        matches!(
            opened,
            Err(StorageError::UnsupportedFormat {
                found: 2,
                supported: 1
            })
        ),
        "{opened:?}"
    );
}

#[tokio::test]
async fn a_damaged_header_is_corrupted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("runs.journal");
    write_run(&path, 2).await;
    let whole = std::fs::read(&path).unwrap();
    for at in (0..8).chain(12..HEADER) {
        let mut bytes = whole.clone();
        bytes[at] ^= 0x10;
        std::fs::write(&path, &bytes).unwrap();
        let opened = LogStorage::open(&path);
        assert!(
            matches!(opened, Err(StorageError::Corrupted(_))),
            "byte {at}: {opened:?}"
        );
    }
}

#[tokio::test]
async fn a_flipped_byte_in_a_middle_record_is_corrupted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("runs.journal");
    let boundaries = write_run(&path, 6).await;
    let whole = std::fs::read(&path).unwrap();
    let damaged = dir.path().join("damaged.journal");
    // Every byte of the frame of record 3 (length, checksum, payload), each flipped alone.
    for at in boundaries[3]..boundaries[4] {
        for flip in [0x01, 0x80, 0xff] {
            let mut bytes = whole.clone();
            bytes[at] ^= flip;
            std::fs::write(&damaged, &bytes).unwrap();
            let opened = open_file(&damaged);
            assert!(
                matches!(&opened, Err(JournalError::Storage(error)) if matches!(**error, StorageError::Corrupted(_))),
                "byte {at} ^ {flip:#x}: {:?}",
                opened.map(|(_, opened)| opened)
            );
        }
    }
}

#[tokio::test]
async fn a_torn_last_record_is_dropped_at_every_byte_and_the_rest_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("runs.journal");
    let boundaries = write_run(&path, 4).await;
    let whole = std::fs::read(&path).unwrap();
    let records = boundaries.len() - 1;
    let (last_start, end) = (boundaries[records - 1], boundaries[records]);
    let torn = dir.path().join("torn.journal");
    for cut in last_start + 1..end {
        std::fs::write(&torn, &whole[..cut]).unwrap();
        let (journal, opened) = open_file(&torn).unwrap();
        assert_eq!(opened.records as usize, records - 1, "cut at {cut}");
        assert!(opened.dropped_torn_record, "cut at {cut}");
        journal.close().await.unwrap();
        // Dropped from the file: the next open finds the records before it, nothing torn.
        assert_eq!(std::fs::metadata(&torn).unwrap().len() as usize, last_start);
        let (journal, opened) = open_file(&torn).unwrap();
        assert_eq!(opened.records as usize, records - 1);
        assert!(!opened.dropped_torn_record);
        journal.close().await.unwrap();
    }
    // Cut at a frame's end, nothing is torn.
    std::fs::write(&torn, &whole[..last_start]).unwrap();
    let (_, opened) = open_file(&torn).unwrap();
    assert!(!opened.dropped_torn_record);
}

#[tokio::test]
async fn a_checksum_mismatch_in_the_last_record_is_a_torn_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("runs.journal");
    let boundaries = write_run(&path, 3).await;
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 2;
    bytes[last] ^= 0x55;
    std::fs::write(&path, &bytes).unwrap();
    let (journal, opened) = open_file(&path).unwrap();
    assert_eq!(opened.records as usize, boundaries.len() - 2);
    assert!(opened.dropped_torn_record);
    // The journal goes on after it.
    let epoch = journal.claim(&run("r1")).await.unwrap();
    journal
        .append(vec![step_done("r1", epoch, 2)], Durability::Sync)
        .await
        .unwrap();
    journal.close().await.unwrap();
    let (_, opened) = open_file(&path).unwrap();
    assert_eq!(opened.records as usize, boundaries.len());
    assert!(!opened.dropped_torn_record);
}

#[tokio::test]
async fn trailing_zeros_are_a_torn_tail_dropped_with_every_record_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("runs.journal");
    let boundaries = write_run(&path, 3).await;
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(&[0; 4096]);
    std::fs::write(&path, &bytes).unwrap();
    let (journal, opened) = open_file(&path).unwrap();
    assert_eq!(opened.records as usize, boundaries.len() - 1);
    assert!(opened.dropped_torn_record);
    journal.close().await.unwrap();
    assert_eq!(
        std::fs::metadata(&path).unwrap().len() as usize,
        *boundaries.last().unwrap()
    );
}

#[tokio::test]
async fn a_truncated_file_opens_to_the_records_before_the_cut() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("runs.journal");
    let boundaries = write_run(&path, 20).await;
    let whole = std::fs::read(&path).unwrap();
    let cut_file = dir.path().join("cut.journal");
    for cut in [
        whole.len() / 2,
        whole.len() - 1,
        400,
        100,
        HEADER + 3,
        HEADER,
        7,
        0,
    ] {
        std::fs::write(&cut_file, &whole[..cut]).unwrap();
        let (journal, opened) = open_file(&cut_file).unwrap();
        let complete = boundaries[1..].iter().filter(|&&end| end <= cut).count();
        assert_eq!(opened.records as usize, complete, "cut at {cut}");
        journal.close().await.unwrap();
    }
}

#[tokio::test]
async fn a_closed_journal_answers_closed() {
    common::a_closed_journal_answers_closed(open_file).await;
}

/// Writes `batches` to a new log file (one append each); returns its bytes and the records.
fn written(dir: &Path, batches: &[Vec<Vec<u8>>]) -> (Vec<u8>, Vec<Vec<u8>>) {
    let path = dir.join("whole.journal");
    let _ = std::fs::remove_file(&path);
    let mut file = LogStorage::open(&path).unwrap();
    file.initialize(FORMAT_VERSION).unwrap();
    for batch in batches {
        file.append(batch, false).unwrap();
    }
    file.sync().unwrap();
    drop(file);
    (std::fs::read(&path).unwrap(), batches.concat())
}

fn batches() -> impl Strategy<Value = Vec<Vec<Vec<u8>>>> {
    let record = prop::collection::vec(any::<u8>(), 0..40);
    prop::collection::vec(prop::collection::vec(record, 1..4), 1..6)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Cut anywhere, a log file gives back exactly the records whose frames end before the cut,
    /// and says whether something (a torn tail) followed them.
    #[test]
    fn a_cut_file_loads_exactly_the_records_whose_frames_are_complete(
        batches in batches(),
        cut in any::<prop::sample::Index>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let (bytes, records) = written(dir.path(), &batches);
        let cut = cut.index(bytes.len() + 1);
        let mut end = HEADER;
        let mut expected = Vec::new();
        for record in &records {
            end += FRAME_HEADER + record.len();
            if end > cut {
                break;
            }
            expected.push(record.clone());
        }
        let path = dir.path().join("cut.journal");
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let stored = LogStorage::open(&path).unwrap().load().unwrap();
        prop_assert_eq!(&stored.records, &expected);
        let at_a_boundary = cut == HEADER
            || records.iter().scan(HEADER, |end, r| { *end += FRAME_HEADER + r.len(); Some(*end) })
                .any(|end| end == cut);
        prop_assert_eq!(stored.torn_tail, cut > HEADER && !at_a_boundary);
        prop_assert_eq!(stored.format_version, (cut >= HEADER).then_some(FORMAT_VERSION));
    }
}
