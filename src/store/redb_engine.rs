//! The redb engine: one database file holding the store's one ordered table, `main`.
//!
//! Tried and measured (BENCHMARKS.md): a table per key space caught up 5–15 % faster but left
//! the B-trees' leaves about half full under appends, doubling the file (4.06× the raw JWS
//! against 2.03× at 200,000 events), so the store keeps one table.
//!
//! redb refuses all work after one I/O error ("Previous I/O error occurred") until reopened, so
//! the first such error is kept, and every refusal after it names that cause.

use std::path::Path;
use std::sync::Mutex;

use ::redb::{Database, Durability, ReadOnlyTable, TableDefinition};

use super::kv::{self, KvError, Op};
use crate::budget::Budget;

/// The store's one table.
const MAIN: TableDefinition<&[u8], &[u8]> = TableDefinition::new("main");

/// An open redb database.
pub struct Redb {
    db: Database,
    first_io: Mutex<Option<String>>,
}

fn redb_err(e: impl std::fmt::Display) -> KvError {
    KvError::Redb(e.to_string())
}

impl Redb {
    /// Open (or create) the database file at `path` with a page cache of `cache_bytes`.
    pub fn open(path: &Path, cache_bytes: u64) -> Result<Redb, KvError> {
        let db = ::redb::Builder::new()
            .set_cache_size(usize::try_from(cache_bytes).unwrap_or(usize::MAX))
            .create(path)
            .map_err(redb_err)?;
        let tx = db.begin_write().map_err(redb_err)?;
        tx.open_table(MAIN).map_err(redb_err)?;
        tx.commit().map_err(redb_err)?;
        Ok(Redb {
            db,
            first_io: Mutex::new(None),
        })
    }

    /// The table in a new read transaction.
    fn read(&self) -> Result<ReadOnlyTable<&'static [u8], &'static [u8]>, KvError> {
        let tx = self.db.begin_read().map_err(redb_err)?;
        tx.open_table(MAIN).map_err(redb_err)
    }

    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        self.get_many(&[key.to_vec()], &mut Budget::unlimited())
            .map(|mut v| v.pop().flatten())
    }

    /// The values of the first of `keys` that `budget` takes, in the order asked, in one read
    /// transaction (a value not taken is not copied).
    pub(crate) fn get_many(
        &self,
        keys: &[Vec<u8>],
        budget: &mut Budget,
    ) -> Result<Vec<Option<Vec<u8>>>, KvError> {
        self.explain((|| {
            let table = self.read()?;
            let mut values = Vec::with_capacity(keys.len());
            for k in keys {
                let v = table.get(k.as_slice()).map_err(redb_err)?;
                if v.as_ref().is_some_and(|v| !budget.take(v.value().len())) {
                    break;
                }
                values.push(v.map(|v| v.value().to_vec()));
            }
            Ok(values)
        })())
    }

    /// Apply `ops` in one write transaction, durable when it returns if `durability` says so.
    pub(crate) fn write(&self, mut ops: Vec<Op>, durability: Durability) -> Result<(), KvError> {
        // In key order (stable: a later op on the same key stays later), one B-tree leaf
        // after the other, each made dirty once, instead of the key spaces interleaved.
        ops.sort_by(|a, b| a.key().cmp(b.key()));
        self.explain((|| {
            let mut tx = self.db.begin_write().map_err(redb_err)?;
            tx.set_durability(durability);
            {
                let mut table = tx.open_table(MAIN).map_err(redb_err)?;
                for op in ops {
                    match op {
                        Op::Put(k, v) | Op::Append(k, v) => {
                            table.insert(k.as_slice(), v.as_slice()).map_err(redb_err)?;
                        }
                        Op::Delete(k) => {
                            table.remove(k.as_slice()).map_err(redb_err)?;
                        }
                    }
                }
            }
            tx.commit().map_err(redb_err)
        })())
    }

    /// Make everything written so far durable.
    pub fn flush(&self) -> Result<(), KvError> {
        self.write(Vec::new(), Durability::Immediate)
    }

    /// Up to `limit` entries with `start <= key < end`, in key order, as many as `budget` takes
    /// (a value not taken is not copied).
    pub fn range(
        &self,
        start: &[u8],
        end: &[u8],
        limit: usize,
        budget: &mut Budget,
    ) -> Result<Vec<kv::Entry>, KvError> {
        self.explain((|| {
            let table = self.read()?;
            let mut out = Vec::new();
            for r in table.range(start..end).map_err(redb_err)?.take(limit) {
                let (k, v) = r.map_err(redb_err)?;
                if !budget.take(v.value().len()) {
                    break;
                }
                out.push((k.value().to_vec(), v.value().to_vec()));
            }
            Ok(out)
        })())
    }

    /// The last entry with `start <= key < end`.
    pub(crate) fn last(&self, start: &[u8], end: &[u8]) -> Result<Option<kv::Entry>, KvError> {
        self.explain((|| {
            let table = self.read()?;
            match table.range(start..end).map_err(redb_err)?.next_back() {
                Some(r) => {
                    let (k, v) = r.map_err(redb_err)?;
                    Ok(Some((k.value().to_vec(), v.value().to_vec())))
                }
                None => Ok(None),
            }
        })())
    }

    /// The error as it goes out: a refusal after an I/O error names that first cause.
    fn explain<T>(&self, result: Result<T, KvError>) -> Result<T, KvError> {
        let Err(KvError::Redb(text)) = result else {
            return result;
        };
        let Ok(mut first) = self.first_io.lock() else {
            return Err(KvError::Redb(text));
        };
        if text.contains("Previous I/O error") {
            if let Some(cause) = first.as_ref() {
                return Err(KvError::Redb(format!("{text} (it was: {cause})")));
            }
        } else if text.contains("I/O error") {
            first.get_or_insert_with(|| text.clone());
        }
        Err(KvError::Redb(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// After redb met an I/O error, its later refusals name that first cause.
    #[test]
    fn refusals_after_an_io_error_name_its_cause() {
        let dir = tempfile::tempdir().unwrap();
        let db = Redb::open(&dir.path().join("t.redb"), 1 << 20).unwrap();
        let fail = |text: &str| db.explain::<()>(Err(KvError::Redb(text.into())));
        let previous = "Previous I/O error occurred. Please close and re-open the database.";
        assert_eq!(fail(previous).unwrap_err().to_string(), previous);
        fail("I/O error: No space left on device (os error 28)").unwrap_err();
        let later = fail(previous).unwrap_err().to_string();
        assert!(later.contains("No space left on device"), "{later}");
    }
}
