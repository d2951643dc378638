//! A journal storage in memory, for tests: it can "crash" after the n-th record, and tear the
//! record it was writing.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::{Storage, StorageError, Stored};

/// Where a [`MemStorage`] crashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CrashPlan {
    /// Once it holds this many records it stores nothing more: the append that would go past
    /// keeps the records up to the limit and fails, and so does every later one.
    AfterRecords(u64),
    /// As [`AfterRecords`](Self::AfterRecords), but the first record past the limit is stored
    /// torn (its first half), as a power cut in the middle of a write leaves it.
    TornAfterRecords(u64),
}

/// Records in memory, shared by clones: a test crashes one journal over it, then opens another
/// journal over [`MemStorage::reopen`], as the next process would open the file.
///
/// ```
/// use overseer_journal::{CrashPlan, MemStorage, Storage};
///
/// let mut storage = MemStorage::new().crash(CrashPlan::AfterRecords(1));
/// storage.initialize(1)?;
/// assert!(storage.append(&[b"a".to_vec(), b"b".to_vec()], true).is_err());
/// let mut next_process = storage.reopen();
/// assert_eq!(next_process.load()?.records, vec![b"a".to_vec()]);
/// # Ok::<(), overseer_journal::StorageError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemStorage {
    shared: Arc<Mutex<Shared>>,
    crash: Option<CrashPlan>,
}

#[derive(Debug, Default)]
struct Shared {
    format_version: Option<u32>,
    records: Vec<Vec<u8>>,
    crashed: bool,
    syncs: u64,
}

impl MemStorage {
    /// An empty storage that never crashes.
    pub fn new() -> Self {
        Self::default()
    }

    /// The same storage, crashing as `plan` says.
    pub fn crash(mut self, plan: CrashPlan) -> Self {
        self.crash = Some(plan);
        self
    }

    /// The records as they are now, without crash plan and not crashed: what the next process
    /// finds.
    pub fn reopen(&self) -> Self {
        let records = self.lock();
        Self {
            shared: Arc::new(Mutex::new(Shared {
                format_version: records.format_version,
                records: records.records.clone(),
                crashed: false,
                syncs: 0,
            })),
            crash: None,
        }
    }

    /// How many records it holds.
    pub fn len(&self) -> usize {
        self.lock().records.len()
    }

    /// Whether it holds no record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many durable commits (appends with `sync`, and syncs) it has made.
    pub fn syncs(&self) -> u64 {
        self.lock().syncs
    }

    /// Replaces record `index` with `bytes`, as a damaged disk would (for tests of corruption).
    /// Returns `false` if there is no such record.
    pub fn overwrite(&self, index: usize, bytes: Vec<u8>) -> bool {
        match self.lock().records.get_mut(index) {
            Some(record) => {
                *record = bytes;
                true
            }
            None => false,
        }
    }

    /// Marks the storage as written by journal format `version` (for tests of versions).
    pub fn set_format_version(&self, version: u32) {
        self.lock().format_version = Some(version);
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn limit(&self) -> Option<(u64, bool)> {
        match self.crash? {
            CrashPlan::AfterRecords(limit) => Some((limit, false)),
            CrashPlan::TornAfterRecords(limit) => Some((limit, true)),
        }
    }
}

impl Storage for MemStorage {
    fn load(&mut self) -> Result<Stored, StorageError> {
        let shared = self.lock();
        Ok(Stored {
            format_version: shared.format_version,
            records: shared.records.clone(),
            torn_tail: false,
        })
    }

    fn initialize(&mut self, format_version: u32) -> Result<(), StorageError> {
        self.lock().format_version = Some(format_version);
        Ok(())
    }

    fn append(&mut self, records: &[Vec<u8>], sync: bool) -> Result<(), StorageError> {
        let limit = self.limit();
        let mut shared = self.lock();
        let held = shared.records.len() as u64;
        if shared.crashed {
            return Err(StorageError::Crashed { records: held });
        }
        let Some((limit, torn)) = limit.filter(|(limit, _)| held + records.len() as u64 > *limit)
        else {
            shared.records.extend_from_slice(records);
            shared.syncs += u64::from(sync);
            return Ok(());
        };
        let room = limit.saturating_sub(held) as usize;
        shared.records.extend_from_slice(&records[..room]);
        if torn {
            let record = &records[room];
            shared.records.push(record[..record.len() / 2].to_vec());
        }
        shared.crashed = true;
        Err(StorageError::Crashed { records: limit })
    }

    fn truncate(&mut self, keep: u64) -> Result<(), StorageError> {
        let mut shared = self.lock();
        let keep = usize::try_from(keep).unwrap_or(usize::MAX);
        shared.records.truncate(keep);
        shared.syncs += 1;
        Ok(())
    }

    fn blocks(&self) -> bool {
        false
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        let mut shared = self.lock();
        if shared.crashed {
            return Err(StorageError::Crashed {
                records: shared.records.len() as u64,
            });
        }
        shared.syncs += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(n: u8) -> Vec<Vec<u8>> {
        (0..n).map(|i| vec![i; 4]).collect()
    }

    #[test]
    fn it_keeps_the_records_up_to_the_crash() {
        let mut storage = MemStorage::new().crash(CrashPlan::AfterRecords(3));
        storage.append(&records(2), true).unwrap();
        assert!(matches!(
            storage.append(&records(2), true),
            Err(StorageError::Crashed { records: 3 })
        ));
        assert!(storage.append(&records(1), true).is_err(), "dead for good");
        assert!(storage.sync().is_err());
        assert_eq!(storage.reopen().len(), 3);
    }

    #[test]
    fn a_torn_record_is_half_written() {
        let mut storage = MemStorage::new().crash(CrashPlan::TornAfterRecords(0));
        assert!(storage.append(&records(2), true).is_err());
        let stored = storage.reopen().load().unwrap();
        assert_eq!(stored.records, vec![vec![0u8; 2]]);
    }

    #[test]
    fn a_reopened_storage_does_not_crash() {
        let mut storage = MemStorage::new().crash(CrashPlan::AfterRecords(0));
        assert!(storage.append(&records(1), true).is_err());
        let mut next = storage.reopen();
        next.append(&records(1), true).unwrap();
        assert_eq!(next.len(), 1);
        assert_eq!(storage.len(), 0, "the crashed one is not touched");
    }
}
