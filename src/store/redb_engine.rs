//! The redb engine: one database file, a table per key space. A key's first byte (its
//! [`Space`](super::keys) prefix) names the table it lives in, so the event log's large values and
//! the indexes' small entries never share a B-tree: each index stays dense and shallow, and an
//! append to one space does not walk or split another's pages. A store written before this layout
//! keeps everything in one table, `main`, and is read and written that way.
//!
//! redb refuses all work after one I/O error ("Previous I/O error occurred") until reopened, so
//! the first such error is kept, and every refusal after it names that cause.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{LazyLock, Mutex};

use ::redb::{
    Database, Durability, ReadOnlyTable, ReadTransaction, ReadableTableMetadata, TableDefinition,
    TableError, WriteTransaction,
};

use super::kv::{self, KvError, Op};

type Table = TableDefinition<'static, &'static [u8], &'static [u8]>;
type ReadTable = ReadOnlyTable<&'static [u8], &'static [u8]>;

/// The one table of a store written before tables per key space.
const MAIN: Table = TableDefinition::new("main");

/// The table names of the key spaces, one per prefix byte.
static SPACE_NAMES: LazyLock<Vec<String>> =
    LazyLock::new(|| (0..=u8::MAX).map(|p| format!("space-{p:02x}")).collect());

/// How keys map to tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// Everything in `main` (a store written before tables per key space).
    Single,
    /// A table per key space, named for its prefix byte.
    PerSpace,
}

/// An open redb database.
pub struct Redb {
    db: Database,
    layout: Layout,
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
        let layout = {
            let tx = db.begin_read().map_err(redb_err)?;
            let single = match tx.open_table(MAIN) {
                Ok(main) => !main.is_empty().map_err(redb_err)?,
                Err(TableError::TableDoesNotExist(_)) => false,
                Err(e) => return Err(redb_err(e)),
            };
            if single {
                Layout::Single
            } else {
                Layout::PerSpace
            }
        };
        Ok(Redb {
            db,
            layout,
            first_io: Mutex::new(None),
        })
    }

    /// Which table holds keys with this first byte: its prefix byte, or 0 for `main`.
    fn slot(&self, key: &[u8]) -> u8 {
        match self.layout {
            Layout::Single => 0,
            Layout::PerSpace => key.first().copied().unwrap_or(0),
        }
    }

    /// The table of a slot.
    fn table(&self, slot: u8) -> Table {
        match self.layout {
            Layout::Single => MAIN,
            Layout::PerSpace => TableDefinition::new(&SPACE_NAMES[usize::from(slot)]),
        }
    }

    /// The slots whose tables can hold keys in `start..end`, in order.
    fn slots(&self, start: &[u8], end: &[u8]) -> std::ops::RangeInclusive<u8> {
        match self.layout {
            Layout::Single => 0..=0,
            Layout::PerSpace => {
                start.first().copied().unwrap_or(0)..=end.first().copied().unwrap_or(u8::MAX)
            }
        }
    }

    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        self.explain((|| {
            let tx = self.db.begin_read().map_err(redb_err)?;
            let mut tables = Tables::new(self, &tx);
            tables.get(key)
        })())
    }

    /// The values of many keys, in the order asked, in one read transaction.
    pub fn get_many(&self, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>, KvError> {
        self.explain((|| {
            let tx = self.db.begin_read().map_err(redb_err)?;
            let mut tables = Tables::new(self, &tx);
            keys.iter().map(|k| tables.get(k)).collect()
        })())
    }

    /// Apply `ops` in one write transaction, durable when it returns if `durability` says so.
    pub fn write(&self, ops: Vec<Op>, durability: Durability) -> Result<(), KvError> {
        self.explain((|| {
            let mut tx = self.db.begin_write().map_err(redb_err)?;
            tx.set_durability(durability);
            self.apply(&tx, ops)?;
            tx.commit().map_err(redb_err)
        })())
    }

    fn apply(&self, tx: &WriteTransaction, ops: Vec<Op>) -> Result<(), KvError> {
        let mut open = HashMap::new();
        for op in ops {
            let key = match &op {
                Op::Put(k, _) | Op::Delete(k) => k,
            };
            let slot = self.slot(key);
            let table = match open.entry(slot) {
                Entry::Occupied(t) => t.into_mut(),
                Entry::Vacant(v) => v.insert(tx.open_table(self.table(slot)).map_err(redb_err)?),
            };
            match op {
                Op::Put(k, v) => {
                    table.insert(k.as_slice(), v.as_slice()).map_err(redb_err)?;
                }
                Op::Delete(k) => {
                    table.remove(k.as_slice()).map_err(redb_err)?;
                }
            }
        }
        Ok(())
    }

    /// Make everything written so far durable.
    pub fn flush(&self) -> Result<(), KvError> {
        self.write(Vec::new(), Durability::Immediate)
    }

    /// Up to `limit` entries with `start <= key < end`, in key order.
    pub fn range(&self, start: &[u8], end: &[u8], limit: usize) -> Result<Vec<kv::Entry>, KvError> {
        self.explain((|| {
            let tx = self.db.begin_read().map_err(redb_err)?;
            let mut out = Vec::new();
            for slot in self.slots(start, end) {
                let Some(table) = open_read(&tx, self.table(slot))? else {
                    continue;
                };
                for r in table.range(start..end).map_err(redb_err)? {
                    if out.len() >= limit {
                        return Ok(out);
                    }
                    let (k, v) = r.map_err(redb_err)?;
                    out.push((k.value().to_vec(), v.value().to_vec()));
                }
            }
            Ok(out)
        })())
    }

    /// The last entry with `start <= key < end`.
    pub fn last(&self, start: &[u8], end: &[u8]) -> Result<Option<kv::Entry>, KvError> {
        self.explain((|| {
            let tx = self.db.begin_read().map_err(redb_err)?;
            for slot in self.slots(start, end).rev() {
                let Some(table) = open_read(&tx, self.table(slot))? else {
                    continue;
                };
                if let Some(r) = table.range(start..end).map_err(redb_err)?.next_back() {
                    let (k, v) = r.map_err(redb_err)?;
                    return Ok(Some((k.value().to_vec(), v.value().to_vec())));
                }
            }
            Ok(None)
        })())
    }

    /// The error as it goes out: a refusal after an I/O error names that first cause.
    pub(super) fn explain<T>(&self, result: Result<T, KvError>) -> Result<T, KvError> {
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

/// A read transaction's tables, each opened once; a key space never written has no table and
/// reads as empty.
struct Tables<'a> {
    redb: &'a Redb,
    tx: &'a ReadTransaction,
    open: HashMap<u8, Option<ReadTable>>,
}

impl<'a> Tables<'a> {
    fn new(redb: &'a Redb, tx: &'a ReadTransaction) -> Tables<'a> {
        Tables {
            redb,
            tx,
            open: HashMap::new(),
        }
    }

    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        let slot = self.redb.slot(key);
        let table = match self.open.entry(slot) {
            Entry::Occupied(t) => t.into_mut(),
            Entry::Vacant(v) => v.insert(open_read(self.tx, self.redb.table(slot))?),
        };
        let Some(table) = table else { return Ok(None) };
        Ok(table
            .get(key)
            .map_err(redb_err)?
            .map(|v| v.value().to_vec()))
    }
}

/// A table for reading, or `None` if it was never written.
fn open_read(
    tx: &ReadTransaction,
    table: Table,
) -> Result<Option<ReadTable>, KvError> {
    match tx.open_table(table) {
        Ok(t) => Ok(Some(t)),
        Err(TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(redb_err(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(k: &[u8], v: &[u8]) -> Op {
        Op::Put(k.to_vec(), v.to_vec())
    }

    /// Ranges and `last` across tables give what one ordered table would.
    #[test]
    fn ranges_cross_key_spaces_in_key_order() {
        let dir = tempfile::tempdir().unwrap();
        let db = Redb::open(&dir.path().join("t.redb"), 1 << 20).unwrap();
        assert_eq!(db.layout, Layout::PerSpace);
        db.write(
            vec![
                put(b"A1", b"a"),
                put(b"C1", b"c"),
                put(b"C2", b"d"),
                put(b"E", b"e"),
            ],
            Durability::Immediate,
        )
        .unwrap();
        let keys = |r: Vec<kv::Entry>| r.into_iter().map(|(k, _)| k).collect::<Vec<_>>();
        assert_eq!(
            keys(db.range(b"A", b"D", 10).unwrap()),
            [b"A1".to_vec(), b"C1".to_vec(), b"C2".to_vec()]
        );
        assert_eq!(keys(db.range(b"A", b"Z", 2).unwrap()).len(), 2);
        assert_eq!(db.last(b"A", b"D").unwrap().unwrap().0, b"C2");
        assert_eq!(db.last(b"B", b"C").unwrap(), None);
        assert_eq!(db.get(b"B").unwrap(), None);
        assert_eq!(
            db.get_many(&[b"E".to_vec(), b"Q".to_vec(), b"A1".to_vec()])
                .unwrap(),
            [Some(b"e".to_vec()), None, Some(b"a".to_vec())]
        );
    }

    /// A store written with the one table `main` is still read and written there.
    #[test]
    fn a_store_with_one_table_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.redb");
        {
            let db = Database::create(&path).unwrap();
            let tx = db.begin_write().unwrap();
            tx.open_table(MAIN)
                .unwrap()
                .insert(b"A1".as_slice(), b"old".as_slice())
                .unwrap();
            tx.commit().unwrap();
        }
        let db = Redb::open(&path, 1 << 20).unwrap();
        assert_eq!(db.layout, Layout::Single);
        assert_eq!(db.get(b"A1").unwrap(), Some(b"old".to_vec()));
        db.write(vec![put(b"B1", b"new")], Durability::Immediate)
            .unwrap();
        drop(db);
        let db = Redb::open(&path, 1 << 20).unwrap();
        assert_eq!(db.range(b"A", b"C", 10).unwrap().len(), 2);
    }
}
