//! The journal in a file: a redb database with two tables, the records by position and the
//! format version.

use std::path::{Path, PathBuf};

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use super::{Storage, StorageError, Stored};

/// Records by position (0, 1, 2...), each an encoded entry.
const RECORDS: TableDefinition<'static, u64, &[u8]> = TableDefinition::new("records");
/// The journal format the file was written in, under the key `format_version`.
const META: TableDefinition<'static, &str, u32> = TableDefinition::new("meta");
const FORMAT_VERSION_KEY: &str = "format_version";

/// A journal file. One writer per file: a second [`RedbStorage::open`] of a file that is open
/// (in this process or another) fails with [`StorageError::Locked`].
///
/// Each append is one redb transaction: copy-on-write pages, checksummed, and with `sync` one
/// fsync before it returns; a commit cut short by a crash is rolled back when the file is next
/// opened, so the file always holds a prefix of what was appended.
pub struct RedbStorage {
    database: Database,
    path: PathBuf,
    next: u64,
}

impl std::fmt::Debug for RedbStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStorage")
            .field("path", &self.path)
            .field("records", &self.next)
            .finish()
    }
}

impl RedbStorage {
    /// Opens the journal file at `path`, creating it if it does not exist.
    ///
    /// # Errors
    ///
    /// [`StorageError::Io`] when the file cannot be created or read (a missing or unwritable
    /// directory), [`StorageError::Locked`] when it is already open, and
    /// [`StorageError::Corrupted`] when it is not a journal file.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StorageError> {
        let path = path.as_ref().to_path_buf();
        let database = Database::create(&path).map_err(|error| engine("open", error))?;
        Ok(Self {
            database,
            path,
            next: 0,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn commit(&mut self, records: &[Vec<u8>], durability: Durability) -> Result<(), StorageError> {
        let mut transaction = self
            .database
            .begin_write()
            .map_err(|error| engine("begin a commit", error))?;
        transaction
            .set_durability(durability)
            .map_err(|error| engine("set the durability", error))?;
        {
            let mut table = transaction
                .open_table(RECORDS)
                .map_err(|error| engine("open the records", error))?;
            for (offset, record) in records.iter().enumerate() {
                table
                    .insert(self.next + offset as u64, record.as_slice())
                    .map_err(|error| engine("write a record", error))?;
            }
        }
        transaction
            .commit()
            .map_err(|error| engine("commit", error))?;
        self.next += records.len() as u64;
        Ok(())
    }
}

impl Storage for RedbStorage {
    fn load(&mut self) -> Result<Stored, StorageError> {
        let read = self
            .database
            .begin_read()
            .map_err(|error| engine("begin a read", error))?;
        let format_version = match read.open_table(META) {
            Ok(meta) => meta
                .get(FORMAT_VERSION_KEY)
                .map_err(|error| engine("read the format version", error))?
                .map(|version| version.value()),
            Err(redb::TableError::TableDoesNotExist(_)) => None,
            Err(error) => return Err(engine("open the format version", error)),
        };
        let mut records = Vec::new();
        match read.open_table(RECORDS) {
            Ok(table) => {
                let rows = table
                    .iter()
                    .map_err(|error| engine("read the records", error))?;
                for row in rows {
                    let (position, record) = row.map_err(|error| engine("read a record", error))?;
                    if position.value() != records.len() as u64 {
                        return Err(StorageError::Corrupted(format!(
                            "record {} follows record {}",
                            position.value(),
                            records.len().saturating_sub(1)
                        )));
                    }
                    records.push(record.value().to_vec());
                }
            }
            Err(redb::TableError::TableDoesNotExist(_)) => {}
            Err(error) => return Err(engine("open the records", error)),
        }
        self.next = records.len() as u64;
        Ok(Stored {
            format_version,
            records,
            // A commit cut short is rolled back by redb at open.
            torn_tail: false,
        })
    }

    fn initialize(&mut self, format_version: u32) -> Result<(), StorageError> {
        let transaction = self
            .database
            .begin_write()
            .map_err(|error| engine("begin a commit", error))?;
        {
            let mut meta = transaction
                .open_table(META)
                .map_err(|error| engine("open the format version", error))?;
            meta.insert(FORMAT_VERSION_KEY, format_version)
                .map_err(|error| engine("write the format version", error))?;
            transaction
                .open_table(RECORDS)
                .map_err(|error| engine("create the records", error))?;
        }
        transaction
            .commit()
            .map_err(|error| engine("commit the format version", error))
    }

    fn append(&mut self, records: &[Vec<u8>], sync: bool) -> Result<(), StorageError> {
        let durability = if sync {
            Durability::Immediate
        } else {
            Durability::None
        };
        self.commit(records, durability)
    }

    fn truncate(&mut self, keep: u64) -> Result<(), StorageError> {
        let transaction = self
            .database
            .begin_write()
            .map_err(|error| engine("begin a commit", error))?;
        {
            let mut table = transaction
                .open_table(RECORDS)
                .map_err(|error| engine("open the records", error))?;
            table
                .retain(|position, _| position < keep)
                .map_err(|error| engine("drop records", error))?;
        }
        transaction
            .commit()
            .map_err(|error| engine("commit", error))?;
        self.next = self.next.min(keep);
        Ok(())
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        self.commit(&[], Durability::Immediate)
    }
}

/// A redb error as a storage error: the lock, corruption and I/O apart.
fn engine(operation: &'static str, error: impl Into<redb::Error>) -> StorageError {
    match error.into() {
        redb::Error::DatabaseAlreadyOpen => StorageError::Locked,
        redb::Error::Corrupted(message) => StorageError::Corrupted(message),
        redb::Error::Io(source) => StorageError::Io { operation, source },
        other => StorageError::Engine {
            operation,
            message: other.to_string(),
        },
    }
}
