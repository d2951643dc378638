//! The journal on a disk that fails: full (a small tmpfs), or read-only.
//!
//! Apart from `tests/file.rs` on purpose: these tests spawn `mount` and `umount`, and a child
//! process holds a copy of every open file of the test process from its fork to its exec,
//! file locks included. A test reopening a journal in that moment on another thread of the same
//! process would find the file locked (`StorageError::Locked`): a lock is held while any copy
//! of its file's descriptor is open.

mod common;

use common::SmallDisk;
use overseer_journal::{Journal, JournalConfig, JournalError, LogStorage, Opened, StorageError};

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

#[tokio::test]
async fn a_full_disk_fails_the_append_and_keeps_what_was_acknowledged() {
    common::a_full_disk_keeps_what_was_acknowledged(open_file, true).await;
}
