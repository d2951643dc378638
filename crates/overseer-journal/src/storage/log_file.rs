//! The journal in a file: an append-only log of checksummed frames after a checksummed header.

mod frame;

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::{Storage, StorageError, Stored};

/// A journal file: an append-only log, one writer per file.
///
/// The file starts with a header (magic bytes, the layout's version and the journal's format
/// version, checksummed), then holds one frame per record: its length, a CRC-32 of the record
/// and its length, the record. An append writes the frames of its whole batch at the end of the
/// file in one write and, with `sync`, makes them durable with one `fdatasync`
/// ([`File::sync_data`]): a durable step costs one small sequential write and one flush, close to
/// the disk's floor.
///
/// Opening reads and checks every frame. What a crash in the middle of an append leaves (an
/// incomplete last frame, a last frame whose checksum does not match, zeros at the end) is a
/// *torn tail*: [`Storage::load`] returns the records before it with
/// [`Stored::torn_tail`] set, and the journal drops it ([`Storage::truncate`]) before it
/// appends. Damage anywhere else (a checksum or length before the last frame, the header) is
/// [`StorageError::Corrupted`]: the journal does not open rather than lose records. (So a
/// file system that, after a power cut, keeps a later block of an unacknowledged group but not
/// an earlier one, leaving zeros or stale bytes in front of whole frames, gives `Corrupted`
/// too: the file alone cannot tell that damage from damage to acknowledged records.)
///
/// A second [`LogStorage::open`] of a file that is open (in this process or another) fails with
/// [`StorageError::Locked`] (an advisory lock, [`File::try_lock`], released when the storage is
/// dropped). The lock belongs to the open file, and a child process holds a copy of the open
/// files of its parent from its fork to its exec: a journal reopened by one thread while another
/// spawns a process can find its file locked for that moment.
///
/// ```
/// use overseer_journal::{LogStorage, Storage};
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("runs.journal");
/// {
///     let mut file = LogStorage::open(&path)?;
///     file.initialize(1)?;
///     file.append(&[b"first".to_vec(), b"second".to_vec()], true)?;
/// }
/// let stored = LogStorage::open(&path)?.load()?;
/// assert_eq!(stored.format_version, Some(1));
/// assert_eq!(stored.records, vec![b"first".to_vec(), b"second".to_vec()]);
/// assert!(!stored.torn_tail);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct LogStorage {
    file: File,
    path: PathBuf,
    journal_version: Option<u32>,
    /// Where each record's frame starts, then where the last one ends: the file's position.
    boundaries: Vec<u64>,
    /// The file's length: more than the last record's end while a torn tail is there.
    len: u64,
    /// What the open read, handed over by the first load.
    loaded: Option<Stored>,
    /// The frames of an append, reused.
    frames: Vec<u8>,
}

impl LogStorage {
    /// Opens the journal file at `path`, creating it if it does not exist, and reads and checks
    /// it.
    ///
    /// # Errors
    ///
    /// [`StorageError::Io`] when the file cannot be created or read (a missing or unwritable
    /// directory), [`StorageError::Locked`] when it is already open,
    /// [`StorageError::Corrupted`] when it is not a journal file or is damaged before its last
    /// record, and [`StorageError::UnsupportedFormat`] for a file written in a layout this
    /// version does not read.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StorageError> {
        let path = path.as_ref().to_path_buf();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io("open the journal file"))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(StorageError::Locked),
            Err(std::fs::TryLockError::Error(source)) => {
                return Err(StorageError::Io {
                    operation: "lock the journal file",
                    source,
                })
            }
        }
        let mut storage = Self {
            file,
            path,
            journal_version: None,
            boundaries: Vec::new(),
            len: 0,
            loaded: None,
            frames: Vec::new(),
        };
        storage.loaded = Some(storage.read()?);
        Ok(storage)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads and checks the whole file, and takes its state (records' boundaries, length).
    fn read(&mut self) -> Result<Stored, StorageError> {
        let mut bytes = Vec::new();
        self.file
            .seek(SeekFrom::Start(0))
            .and_then(|_| self.file.read_to_end(&mut bytes))
            .map_err(io("read the journal file"))?;
        let scan = frame::scan(&bytes)?;
        let records = scan.payloads(&bytes).map(<[u8]>::to_vec).collect();
        if scan.journal_version.is_none() && !bytes.is_empty() {
            tracing::warn!(
                path = %self.path.display(),
                bytes = bytes.len(),
                "journal: a header cut short (a first initialization interrupted) is rewritten"
            );
        }
        self.journal_version = scan.journal_version;
        self.boundaries = scan.boundaries;
        self.len = bytes.len() as u64;
        self.seek_end()?;
        Ok(Stored {
            format_version: scan.journal_version,
            records,
            torn_tail: scan.torn_tail,
        })
    }

    /// The end of the last record, where the next is written.
    fn end(&self) -> u64 {
        self.boundaries
            .last()
            .copied()
            .unwrap_or(frame::HEADER_LEN as u64)
    }

    fn seek_end(&mut self) -> Result<(), StorageError> {
        let end = self.end();
        self.file
            .seek(SeekFrom::Start(end))
            .map(drop)
            .map_err(io("seek in the journal file"))
    }

    /// Cuts the file at `at` (dropping what follows), durably.
    fn cut(&mut self, at: u64) -> Result<(), StorageError> {
        self.file
            .set_len(at)
            .map_err(io("truncate the journal file"))?;
        self.file.sync_data().map_err(io("sync the journal file"))?;
        self.len = at;
        Ok(())
    }

    /// Writes the frames built in `self.frames` at the end, then flushes them with `sync`.
    fn write_frames(&mut self, sync: bool) -> Result<(), StorageError> {
        if self.len > self.end() {
            // A torn tail nobody truncated: written over, it could leave bytes of it after the
            // new frames.
            self.cut(self.end())?;
        }
        self.file
            .write_all(&self.frames)
            .map_err(io("append to the journal file"))?;
        if sync {
            self.file.sync_data().map_err(io("sync the journal file"))?;
        }
        Ok(())
    }
}

impl Storage for LogStorage {
    fn load(&mut self) -> Result<Stored, StorageError> {
        match self.loaded.take() {
            Some(stored) => Ok(stored),
            None => self.read(),
        }
    }

    fn initialize(&mut self, format_version: u32) -> Result<(), StorageError> {
        self.loaded = None;
        let header = frame::header(format_version);
        self.file
            .seek(SeekFrom::Start(0))
            .and_then(|_| self.file.write_all(&header))
            .map_err(io("write the journal file's header"))?;
        if self.boundaries.len() <= 1 {
            // No record: drop whatever an interrupted initialization left after the header.
            self.boundaries = vec![header.len() as u64];
            self.file
                .set_len(header.len() as u64)
                .map_err(io("truncate the journal file"))?;
            self.len = header.len() as u64;
        }
        self.file.sync_data().map_err(io("sync the journal file"))?;
        sync_directory(&self.path)?;
        self.journal_version = Some(format_version);
        self.seek_end()
    }

    fn append(&mut self, records: &[Vec<u8>], sync: bool) -> Result<(), StorageError> {
        if self.journal_version.is_none() {
            return Err(StorageError::NotInitialized);
        }
        self.loaded = None;
        self.frames.clear();
        let mut ends = Vec::with_capacity(records.len());
        let mut end = self.end();
        for record in records {
            end += frame::push_frame(&mut self.frames, record)?;
            ends.push(end);
        }
        if let Err(error) = self.write_frames(sync) {
            // Best effort: what was written of the failed batch goes (it would be a torn tail
            // at the next open anyway), and the next write starts at the last record's end.
            let _ = self.file.set_len(self.end());
            let _ = self.seek_end();
            return Err(error);
        }
        self.boundaries.extend(ends);
        self.len = end;
        Ok(())
    }

    fn truncate(&mut self, keep: u64) -> Result<(), StorageError> {
        self.loaded = None;
        let records = self.boundaries.len().saturating_sub(1);
        let keep = usize::try_from(keep).map_or(records, |keep| keep.min(records));
        let at = self.boundaries.get(keep).copied().unwrap_or(self.end());
        self.cut(at)?;
        self.boundaries.truncate(keep + 1);
        self.seek_end()
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        self.file.sync_data().map_err(io("sync the journal file"))
    }
}

/// Makes the file's entry in its directory durable (a new file survives a crash).
#[cfg(unix)]
fn sync_directory(path: &Path) -> Result<(), StorageError> {
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    File::open(parent)
        .and_then(|directory| directory.sync_all())
        .map_err(io("sync the journal's directory"))
}

/// Elsewhere a directory cannot be opened to be synced.
#[cfg(not(unix))]
fn sync_directory(_path: &Path) -> Result<(), StorageError> {
    Ok(())
}

fn io(operation: &'static str) -> impl FnOnce(std::io::Error) -> StorageError {
    move |source| StorageError::Io { operation, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(n: u8) -> Vec<Vec<u8>> {
        (0..n).map(|i| vec![i; usize::from(i) * 3]).collect()
    }

    #[test]
    fn a_torn_tail_is_dropped_by_truncate_and_appends_go_after_the_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        {
            let mut file = LogStorage::open(&path).unwrap();
            file.initialize(1).unwrap();
            file.append(&records(3), true).unwrap();
        }
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(&[9, 0, 0, 0, 1, 2]);
        std::fs::write(&path, &bytes).unwrap();
        let mut file = LogStorage::open(&path).unwrap();
        let stored = file.load().unwrap();
        assert!(stored.torn_tail);
        assert_eq!(stored.records, records(3));
        file.truncate(3).unwrap();
        file.append(&[b"after".to_vec()], true).unwrap();
        drop(file);
        let stored = LogStorage::open(&path).unwrap().load().unwrap();
        assert!(!stored.torn_tail);
        assert_eq!(stored.records.len(), 4);
        assert_eq!(stored.records[3], b"after");
    }

    #[test]
    fn an_append_over_an_untruncated_torn_tail_leaves_none_of_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        {
            let mut file = LogStorage::open(&path).unwrap();
            file.initialize(1).unwrap();
            file.append(&records(2), true).unwrap();
        }
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(&[0; 64]);
        std::fs::write(&path, &bytes).unwrap();
        let mut file = LogStorage::open(&path).unwrap();
        file.append(&[b"x".to_vec()], true).unwrap();
        drop(file);
        let stored = LogStorage::open(&path).unwrap().load().unwrap();
        assert!(!stored.torn_tail);
        assert_eq!(stored.records, [records(2), vec![b"x".to_vec()]].concat());
    }

    #[test]
    fn truncate_keeps_the_first_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let mut file = LogStorage::open(&path).unwrap();
        file.initialize(1).unwrap();
        file.append(&records(5), true).unwrap();
        file.truncate(2).unwrap();
        file.append(&[b"y".to_vec()], false).unwrap();
        file.sync().unwrap();
        assert_eq!(
            file.load().unwrap().records,
            [records(2), vec![b"y".to_vec()]].concat()
        );
        file.truncate(u64::MAX).unwrap();
        assert_eq!(file.load().unwrap().records.len(), 3);
    }

    #[test]
    fn an_append_before_initialize_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = LogStorage::open(dir.path().join("j")).unwrap();
        assert!(matches!(
            file.append(&records(1), true),
            Err(StorageError::NotInitialized)
        ));
    }
}
